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
 * `text` made safe for a terminal: C0 controls (also newline and tab), DEL, C1 controls and
 * bytes that are not UTF-8 are shown as `\xNN` / `\u00NN`, so a Subject or file name carrying
 * ESC or OSC sequences cannot move the cursor, retitle the window or forge output lines. Valid
 * UTF-8 text passes unchanged. For human output only; JSON output stays exact.
 */
[[nodiscard]] std::string printable(std::string_view text);

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
