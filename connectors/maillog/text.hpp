// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Text helpers every log format's parser shares: character classes, UTF-8, IP literals,
// addresses, `key=value` fields and timestamps. Small predicates are inline: they run for every
// byte of every log line.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors::maillog {

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
inline bool is_upper_hex(char c) { return is_digit(c) || (c >= 'A' && c <= 'F'); }
inline bool is_hex(char c) { return is_upper_hex(c) || (c >= 'a' && c <= 'f'); }
inline bool is_space(char c) { return c == ' ' || c == '\t'; }

/** `s` without leading and trailing blanks and CRs. */
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (is_space(s.front()) || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

inline bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

/** Parses exactly `n` digits at `s[pos]`. */
[[nodiscard]] std::optional<int> digits(std::string_view s, std::size_t pos, std::size_t n);

/** Length of a valid UTF-8 sequence at s[i], 0 if invalid. */
[[nodiscard]] std::size_t utf8_sequence(std::string_view s, std::size_t i);

/** Valid UTF-8 copy of `s`: each invalid byte becomes U+FFFD. */
[[nodiscard]] std::string sanitize_utf8(std::string_view s);

/** The number of '\n' bytes in `s` (eight bytes at a time: it counts every line of a log). */
[[nodiscard]] std::uint64_t count_newlines(std::string_view s);

/** A line that is binary garbage: has NUL bytes or is mostly invalid UTF-8 / control bytes. */
[[nodiscard]] bool is_binary_line(std::string_view s);

/** Canonical text of an IP literal in `s` ("[1.2.3.4]", "::ffff:1.2.3.4" -> "1.2.3.4"). */
[[nodiscard]] std::optional<std::string> as_ip(std::string_view s);

/** `s` shows an IPv4 or IPv6 literal somewhere. */
[[nodiscard]] bool contains_ip(std::string_view s);

/** `s` shows something shaped like an e-mail address somewhere. */
[[nodiscard]] bool contains_email(std::string_view s);

/** The test for a line without a transaction key: does it name anyone (address or IP)? */
[[nodiscard]] inline bool mentions_identity(std::string_view s) {
  return contains_email(s) || contains_ip(s);
}

/** What may come right before a `key=` for field() to take it as a key. */
[[nodiscard]] inline bool is_field_boundary(char c) {
  return is_space(c) || c == ',' || c == ';' || c == '(' || c == '[' || c == ':';
}

/** The value that starts at `s[v]` (after a `key=`): angle brackets and quotes removed. */
[[nodiscard]] std::string_view field_value(std::string_view s, std::size_t v);

/** Value of `key=` in `s` when the key starts a word; angle brackets and quotes removed. */
[[nodiscard]] std::optional<std::string_view> field(std::string_view s, std::string_view key,
                                                    std::size_t from = 0);

/** All values of `key=` in s. */
[[nodiscard]] std::vector<std::string_view> fields(std::string_view s, std::string_view key);

/** IP inside the first "[...]" of `s` ("host[1.2.3.4]:25" -> 1.2.3.4). */
[[nodiscard]] std::optional<std::string_view> bracket_ip(std::string_view s);

/** "ID: rest" -> ID when `accept` says the token before the first colon is an id. */
template <class Pred>
std::optional<std::string_view> leading_id(std::string_view msg, Pred accept) {
  std::size_t colon = msg.find(':');
  if (colon == std::string_view::npos || colon + 1 > msg.size()) {
    return std::nullopt;
  }
  std::string_view tok = msg.substr(0, colon);
  if (!accept(tok)) {
    return std::nullopt;
  }
  return tok;
}

// Time ----------------------------------------------------------------------------------------

inline constexpr std::int64_t k_day = 86400;

/** The calendar year of a Unix time. */
[[nodiscard]] std::int64_t year_of(std::int64_t seconds);

/** Unix time of a civil UTC date and time; nullopt when a field is out of range. */
[[nodiscard]] std::optional<std::int64_t> make_time(std::int64_t y, int mo, int d, int h, int mi,
                                                    int s);

/** 1..12 for "Jan".."Dec", 0 otherwise. */
[[nodiscard]] int month_from_name(std::string_view s);

/** Skips ".digits" (or ",digits") at pos. */
[[nodiscard]] std::size_t skip_fraction(std::string_view s, std::size_t pos);

/** Parses "Z", "+hh:mm", "+hhmm", "+hh" at pos; returns the offset in seconds and advances pos. */
[[nodiscard]] std::optional<std::int64_t> parse_zone(std::string_view s, std::size_t &pos);

/** "YYYY-MM-DD?HH:MM:SS" at the start of s, with `sep` between date and time. */
[[nodiscard]] std::optional<std::int64_t> parse_date_time(std::string_view s, char sep,
                                                          std::size_t &pos);

/** ISO 8601 / RFC 3339 timestamp at the start of `s` ("2023-11-14T10:00:00.123+01:00"). */
[[nodiscard]] std::optional<std::int64_t> parse_iso(std::string_view s, std::size_t &pos);

/** ASCII case-insensitive search for a lower-case needle (16 positions at a time with SSE2,
    else Boyer-Moore-Horspool). */
class NoCaseSearch {
public:
  explicit NoCaseSearch(std::string_view needle);
  /** The offset of the first match at or after `from`, or npos. */
  [[nodiscard]] std::size_t find(std::string_view text, std::size_t from) const;
  /** find() of a match neither preceded nor followed by an ASCII letter or digit
      (connectors::holds_needle). */
  [[nodiscard]] std::size_t find_word(std::string_view text, std::size_t from) const;

private:
  /** Whether `part` is the needle's bytes from `offset` on, ASCII case-insensitively. */
  [[nodiscard]] bool matches(std::string_view part, std::size_t offset = 0) const;
  std::string_view m_needle;
  std::array<std::size_t, 256> m_skip{};
};

} // namespace maildsar::connectors::maillog
