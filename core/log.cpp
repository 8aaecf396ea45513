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
    line = fmt::format("maildsar: {}: {}", level_name(level), message);
  }
  line.push_back('\n');
  std::lock_guard lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
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
