// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace maildsar::core::log {

enum class Level { debug, info, warn, error };
enum class Format { human, json };

/** Process-wide settings; set once by main() before threads start. */
void configure(Level min_level, Format format);
[[nodiscard]] bool enabled(Level level);
/** Writes one line to stderr (thread-safe). Never pass identities or message content. */
void write(Level level, std::string_view message);

/**
 * The one place an identity is turned into something loggable: `subj#<8 hex of HMAC>` under
 * the installation key set with set_redaction_key().
 */
[[nodiscard]] std::string redact_identity(std::string_view identity);
void set_redaction_key(std::string key);

} // namespace maildsar::core::log

#define MAILDSAR_LOG_AT_(level, ...)                                                             \
  do {                                                                                         \
    if (::maildsar::core::log::enabled(level)) {                                               \
      ::maildsar::core::log::write(level, fmt::format(__VA_ARGS__));                           \
    }                                                                                          \
  } while (false)
#define MAILDSAR_LOG_DEBUG(...) MAILDSAR_LOG_AT_(::maildsar::core::log::Level::debug, __VA_ARGS__)
#define MAILDSAR_LOG_INFO(...) MAILDSAR_LOG_AT_(::maildsar::core::log::Level::info, __VA_ARGS__)
#define MAILDSAR_LOG_WARN(...) MAILDSAR_LOG_AT_(::maildsar::core::log::Level::warn, __VA_ARGS__)
#define MAILDSAR_LOG_ERROR(...) MAILDSAR_LOG_AT_(::maildsar::core::log::Level::error, __VA_ARGS__)
