// SPDX-License-Identifier: GPL-3.0-or-later
#include "cli/progress.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

namespace maildsar::cli {

namespace {

constexpr auto k_terminal_interval = std::chrono::milliseconds(100);
constexpr auto k_json_interval = std::chrono::milliseconds(250);

double seconds(Progress::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

/** "9s", "4m05s", "2h03m". */
std::string short_duration(double s) {
  const double capped = std::isfinite(s) ? std::clamp(s, 0.0, 359999.0) : 359999.0; // < 100h
  const auto total = static_cast<std::uint64_t>(std::llround(capped));
  if (total < 60) {
    return fmt::format("{}s", total);
  }
  if (total < 3600) {
    return fmt::format("{}m{:02}s", total / 60, total % 60);
  }
  return fmt::format("{}h{:02}m", total / 3600, total % 3600 / 60);
}

} // namespace

core::Result<ProgressMode> progress_mode(std::string_view value, int verbosity, bool stderr_is_terminal) {
  if (value == "json") {
    return ProgressMode::json;
  }
  if (value == "none") {
    return ProgressMode::none;
  }
  if (value == "auto") {
    return verbosity >= 0 && stderr_is_terminal ? ProgressMode::terminal : ProgressMode::none;
  }
  return core::fail(core::ErrorCode::usage, fmt::format("--progress '{}': must be auto, json or none", value),
                    "auto (default): a line on a terminal; json: JSON lines on stderr; none");
}

Progress::Progress(ProgressMode mode, std::string command, Output &out)
    : m_mode(mode), m_command(std::move(command)), m_out(out) {}

Progress::~Progress() { end(); }

void Progress::begin(std::string phase, std::string unit, std::uint64_t total) {
  end();
  if (m_mode == ProgressMode::none) {
    return;
  }
  m_active = true;
  m_phase = std::move(phase);
  m_unit = std::move(unit);
  m_total = total;
  m_done = 0;
  m_started = m_now();
  m_last_shown = m_started;
  emit("begin");
}

void Progress::update(std::uint64_t done) {
  if (!m_active || done <= m_done) {
    return;
  }
  m_done = m_total > 0 ? std::min(done, m_total) : done;
  const auto now = m_now();
  const auto interval = m_mode == ProgressMode::json ? k_json_interval : k_terminal_interval;
  if (now - m_last_shown < interval) {
    return;
  }
  m_last_shown = now;
  emit("progress");
}

void Progress::end() {
  if (!m_active) {
    return;
  }
  emit("end");
  m_active = false;
  if (m_mode == ProgressMode::terminal) {
    m_out.progress_done();
  }
}

std::function<void(std::string_view, std::uint64_t, std::uint64_t)> Progress::callback(std::string unit) {
  return [this, unit = std::move(unit)](std::string_view phase, std::uint64_t done, std::uint64_t total) {
    if (m_mode == ProgressMode::none) {
      return;
    }
    if (!m_active || phase != m_phase) {
      begin(std::string(phase), unit, total);
    }
    if (m_total != total && total >= done) {
      m_total = total; // a total learnt on the way (listing finished)
    }
    update(done);
  };
}

std::string Progress::line() const {
  const double elapsed = seconds(m_now() - m_started);
  std::string text = m_total > 0 ? fmt::format("{} {}: {}/{} {}", m_command, m_phase, m_done, m_total, m_unit)
                                 : fmt::format("{} {}: {} {}", m_command, m_phase, m_done, m_unit);
  if (elapsed >= 1.0 && m_done > 0) {
    const double rate = static_cast<double>(m_done) / elapsed;
    text += rate >= 10 ? fmt::format(", {:.0f}/s", rate) : fmt::format(", {:.1f}/s", rate);
    if (m_total > m_done) {
      text += ", ETA " + short_duration(static_cast<double>(m_total - m_done) / rate);
    }
  }
  return text;
}

void Progress::emit(std::string_view event) {
  if (m_mode == ProgressMode::terminal) {
    if (event != "end") {
      m_out.progress(line());
    }
    return;
  }
  const double elapsed = seconds(m_now() - m_started);
  nlohmann::json j{{"schema", "maildsar.progress"}, {"version", 1},      {"command", m_command},
                   {"event", event},                {"phase", m_phase},  {"unit", m_unit},
                   {"done", m_done},                {"total", nullptr},  {"elapsed_seconds", std::round(elapsed * 1000) / 1000},
                   {"rate_per_second", nullptr},    {"eta_seconds", nullptr}};
  if (m_total > 0) {
    j["total"] = m_total;
  }
  if (elapsed > 0 && m_done > 0) {
    const double rate = static_cast<double>(m_done) / elapsed;
    j["rate_per_second"] = std::round(rate * 100) / 100;
    if (m_total > 0 && m_total >= m_done) {
      j["eta_seconds"] = std::round(static_cast<double>(m_total - m_done) / rate * 10) / 10;
    }
  }
  std::fflush(stdout);
  const std::string text = j.dump() + "\n";
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

} // namespace maildsar::cli
