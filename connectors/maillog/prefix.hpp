// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// The prefix of a syslog-style log line: its time, host and program tag, split from the message.

#include <cstdint>
#include <optional>
#include <string_view>

namespace maildsar::connectors::maillog {

/** One line split into its prefix and its message. */
struct Prefix {
  /**
   * none: no prefix understood; syslog: RFC 3164 ("Mmm dd hh:mm:ss host prog[pid]: ") or RFC
   * 5424/ISO time; exim_native: exim's own "YYYY-MM-DD HH:MM:SS [+zone] [[pid]] "; tai64:
   * daemontools/s6 "@4000... ".
   */
  enum class Kind { none, syslog, exim_native, tai64 } kind = Kind::none;
  std::optional<std::int64_t> date;
  std::string_view tag; // program (without [pid])
  std::string_view msg;
};

/**
 * Splits `line`. RFC 3164 times have no year: the year of `mtime` (the file's modification time,
 * Unix seconds) is taken, or the year before when that puts the line more than a day after it.
 */
[[nodiscard]] Prefix parse_prefix(std::string_view line, std::int64_t mtime);

} // namespace maildsar::connectors::maillog
