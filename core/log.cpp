// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/log.hpp"

#include "core/hash.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace maildsar::core::log {

namespace {

std::atomic<Level> g_level{Level::info};
std::atomic<Format> g_format{Format::human};
std::mutex g_mutex;
std::string g_key = "maildsar-default-redaction-key";

std::string_view level_name(Level level) {
  switch (level) {
  case Level::debug:
    return "debug";
  case Level::info:
    return "info";
  case Level::warn:
    return "warning";
  case Level::error:
    return "error";
  }
  return "info";
}

} // namespace

void configure(Level min_level, Format format) {
  g_level = min_level;
  g_format = format;
}

bool enabled(Level level) { return static_cast<int>(level) >= static_cast<int>(g_level.load()); }

void write(Level level, std::string_view message) {
  std::string line;
  if (g_format.load() == Format::json) {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    nlohmann::json j{{"level", level_name(level)},
                     {"ts", std::chrono::duration_cast<std::chrono::milliseconds>(now).count()},
                     {"message", message}};
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = fmt::format("maildsar: {}: {}", level_name(level), printable(message));
  }
  line.push_back('\n');
  std::lock_guard lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  std::size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = byte(i);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    // A UTF-8 sequence: copied when well formed (no overlong form, no surrogate, <= U+10FFFF).
    const std::size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    bool ok = len != 0 && i + len <= text.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
      ok = (byte(i + k) & 0xC0) == 0x80;
    }
    if (ok && len == 3) {
      ok = !(c == 0xE0 && byte(i + 1) < 0xA0) && !(c == 0xED && byte(i + 1) >= 0xA0);
    }
    if (ok && len == 4) {
      ok = !(c == 0xF0 && byte(i + 1) < 0x90) && !(c == 0xF4 && byte(i + 1) >= 0x90);
    }
    if (!ok) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    if (len == 2 && c == 0xC2 && byte(i + 1) < 0xA0) {
      out += fmt::format("\\u{:04x}", byte(i + 1)); // C1 control, U+0080..U+009F (CSI, OSC...)
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

void set_redaction_key(std::string key) {
  std::lock_guard lock(g_mutex);
  g_key = std::move(key);
}

std::string redact_identity(std::string_view identity) {
  std::string key;
  {
    std::lock_guard lock(g_mutex);
    key = g_key;
  }
  return "subj#" + hmac_sha256_hex(key, identity).substr(0, 8);
}

} // namespace maildsar::core::log
