// SPDX-License-Identifier: GPL-3.0-or-later
#include "cli/output.hpp"

#include <fmt/format.h>

#include <unistd.h>

namespace maildsar::cli {

namespace {

void write_all(std::FILE *f, std::string_view s) {
  std::fwrite(s.data(), 1, s.size(), f);
}

} // namespace

void Output::line(std::string_view text) {
  write_all(stdout, text);
  write_all(stdout, "\n");
}

void Output::json_line(const nlohmann::json &value) {
  line(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void Output::diag(std::string_view level, std::string_view text) {
  progress_done();
  std::fflush(stdout);
  write_all(stderr, fmt::format("maildsar: {}: {}\n", level, text));
}

void Output::error(const core::Error &error) {
  diag("error", error.message);
  if (!error.hint.empty()) {
    diag("hint", error.hint);
  }
  if (json()) {
    nlohmann::json j{{"error",
                      {{"code", core::to_string(error.code)},
                       {"exit_code", core::exit_code(error.code)},
                       {"message", error.message},
                       {"hint", error.hint}}}};
    json_line(j);
  }
  std::fflush(stdout);
}

bool Output::stderr_is_terminal() const { return ::isatty(2) == 1; }

void Output::progress(std::string_view text) {
  if (!stderr_is_terminal()) {
    return;
  }
  write_all(stderr, fmt::format("\r\033[K{}", text));
  std::fflush(stderr);
  m_progress_shown = true;
}

void Output::progress_done() {
  if (m_progress_shown) {
    write_all(stderr, "\r\033[K");
    std::fflush(stderr);
    m_progress_shown = false;
  }
}

} // namespace maildsar::cli
