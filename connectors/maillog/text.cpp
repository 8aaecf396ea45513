// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/maillog/text.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/time.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cstring>

namespace maildsar::connectors::maillog {

using std::string_view;

/** Parses exactly `n` digits at `s[pos]`. */
std::optional<int> digits(string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) {
    return std::nullopt;
  }
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!is_digit(s[i])) {
      return std::nullopt;
    }
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/** Length of a valid UTF-8 sequence at s[i], 0 if invalid. */
std::size_t utf8_sequence(string_view s, std::size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    return 1;
  }
  std::size_t len = 0;
  unsigned min = 0;
  unsigned cp = 0;
  if ((b & 0xE0U) == 0xC0U) {
    len = 2;
    cp = b & 0x1FU;
    min = 0x80;
  } else if ((b & 0xF0U) == 0xE0U) {
    len = 3;
    cp = b & 0x0FU;
    min = 0x800;
  } else if ((b & 0xF8U) == 0xF0U) {
    len = 4;
    cp = b & 0x07U;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) {
    return 0;
  }
  for (std::size_t k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0U) != 0x80U) {
      return 0;
    }
    cp = (cp << 6U) | (c & 0x3FU);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return len;
}

/** Valid UTF-8 copy of `s`: each invalid byte becomes U+FFFD. */
std::string sanitize_utf8(string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    // A run of ASCII (most of a log) is copied as it is.
    std::size_t ascii = i;
    while (ascii < s.size() && static_cast<unsigned char>(s[ascii]) < 0x80U) {
      ++ascii;
    }
    if (ascii > i) {
      out.append(s.substr(i, ascii - i));
      i = ascii;
      continue;
    }
    std::size_t n = utf8_sequence(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

/** A line that is binary garbage: has NUL bytes or is mostly invalid UTF-8 / control bytes. */
std::uint64_t count_newlines(string_view s) {
  constexpr std::uint64_t k_low7 = 0x7F7F7F7F7F7F7F7FULL;
  constexpr std::uint64_t k_newlines = 0x0A0A0A0A0A0A0A0AULL;
  std::uint64_t n = 0;
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, s.data() + i, 8);
    const std::uint64_t v = word ^ k_newlines; // a zero byte where there was a newline
    // exactly the zero bytes get their high bit set (no borrow between bytes)
    const std::uint64_t zero = ~(((v & k_low7) + k_low7) | v | k_low7);
    n += ((zero >> 7U) * 0x0101010101010101ULL) >> 56U; // the high bits summed (no popcnt needed)
  }
  for (; i < s.size(); ++i) {
    n += s[i] == '\n' ? 1U : 0U;
  }
  return n;
}

bool is_binary_line(string_view s) {
  if (s.find('\0') != string_view::npos) {
    return true;
  }
  std::size_t bad = 0;
  for (std::size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x20 && b != '\t' && b != '\r') {
      ++bad;
      ++i;
      continue;
    }
    if (b < 0x80U) { // printable ASCII (or tab, CR): always a valid sequence of one byte
      ++i;
      // Then eight bytes at a time while they are all printable ASCII (no byte < 0x20 or
      // >= 0x80): most log lines are nothing else.
      while (i + 8 <= s.size()) {
        std::uint64_t v = 0;
        std::memcpy(&v, s.data() + i, 8);
        constexpr std::uint64_t k_ones = 0x0101010101010101ULL;
        constexpr std::uint64_t k_highs = 0x8080808080808080ULL;
        if (((v | (v - k_ones * 0x20U)) & k_highs) != 0) {
          break;
        }
        i += 8;
      }
      continue;
    }
    std::size_t n = utf8_sequence(s, i);
    if (n == 0) {
      ++bad;
      ++i;
    } else {
      i += n;
    }
  }
  return s.size() >= 4 && bad * 4 > s.size();
}

// ---------------------------------------------------------------------------------------------
// IPs and addresses

/** Canonical text of an IP literal in `s` ("[1.2.3.4]", "::ffff:1.2.3.4" -> "1.2.3.4"). */
std::optional<std::string> as_ip(string_view s) {
  s = trim(s);
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
    s = s.substr(1, s.size() - 2);
  }
  if (starts_with(s, "IPv6:")) {
    s.remove_prefix(5);
  }
  if (s.empty() || s.size() > 45) {
    return std::nullopt;
  }
  std::string text(s);
  std::array<unsigned char, 16> buf{};
  if (inet_pton(AF_INET, text.c_str(), buf.data()) == 1) {
    return text;
  }
  if (inet_pton(AF_INET6, text.c_str(), buf.data()) == 1) {
    constexpr string_view k_mapped = "::ffff:";
    if (text.size() > k_mapped.size() &&
        (starts_with(text, k_mapped) || starts_with(text, "::FFFF:"))) {
      std::string v4 = text.substr(k_mapped.size());
      if (inet_pton(AF_INET, v4.c_str(), buf.data()) == 1) {
        return v4;
      }
    }
    return text;
  }
  return std::nullopt;
}

bool contains_ip(string_view s) {
  // IPv4: runs of digits and dots
  for (std::size_t i = 0; i < s.size();) {
    if (!is_digit(s[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && (is_digit(s[j]) || s[j] == '.')) {
      ++j;
    }
    string_view tok = s.substr(i, j - i);
    while (!tok.empty() && tok.back() == '.') {
      tok.remove_suffix(1);
    }
    if (std::count(tok.begin(), tok.end(), '.') == 3 && as_ip(tok)) {
      return true;
    }
    i = j;
  }
  // IPv6: runs of hex digits and colons with at least two colons
  for (std::size_t i = 0; i < s.size();) {
    if (!is_hex(s[i]) && s[i] != ':') {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && (is_hex(s[j]) || s[j] == ':' || s[j] == '.')) {
      ++j;
    }
    string_view tok = s.substr(i, j - i);
    if (std::count(tok.begin(), tok.end(), ':') >= 2 &&
        std::any_of(tok.begin(), tok.end(), is_hex) && as_ip(tok)) {
      return true;
    }
    i = j;
  }
  return false;
}

namespace {

bool is_local_part_char(char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '=' ||
         static_cast<unsigned char>(c) >= 0x80;
}

} // namespace

bool contains_email(string_view s) {
  for (std::size_t at = s.find('@'); at != string_view::npos; at = s.find('@', at + 1)) {
    if (at == 0 || !is_local_part_char(s[at - 1])) {
      continue;
    }
    std::size_t j = at + 1;
    bool dot = false;
    bool label = false;
    while (j < s.size() && (is_alnum(s[j]) || s[j] == '-' || s[j] == '.' ||
                            static_cast<unsigned char>(s[j]) >= 0x80)) {
      if (s[j] == '.' && label) {
        dot = true;
      } else if (s[j] != '.') {
        label = true;
      }
      ++j;
    }
    if (label && (dot || (at + 1 < s.size() && s[at + 1] == '['))) {
      return true;
    }
  }
  return false;
}

/** Value of `key=` in `s` when the key starts a word; angle brackets and quotes removed. */
std::optional<string_view> field(string_view s, string_view key, std::size_t from) {
  for (std::size_t p = s.find(key, from); p != string_view::npos; p = s.find(key, p + 1)) {
    if (p > 0 && !is_field_boundary(s[p - 1])) {
      continue;
    }
    return field_value(s, p + key.size());
  }
  return std::nullopt;
}

string_view field_value(string_view s, std::size_t v) {
  if (v < s.size() && s[v] == '<') {
    std::size_t e = s.find('>', v);
    if (e == string_view::npos) {
      return s.substr(v + 1);
    }
    return s.substr(v + 1, e - v - 1);
  }
  if (v < s.size() && s[v] == '"') {
    std::size_t e = s.find('"', v + 1);
    return e == string_view::npos ? s.substr(v + 1) : s.substr(v + 1, e - v - 1);
  }
  std::size_t e = v;
  while (e < s.size() && !is_space(s[e]) && s[e] != ',' && s[e] != ';' && s[e] != ')') {
    ++e;
  }
  return s.substr(v, e - v);
}

/** All values of `key=` in s. */
std::vector<string_view> fields(string_view s, string_view key) {
  std::vector<string_view> out;
  std::size_t from = 0;
  while (from < s.size()) {
    auto v = field(s, key, from);
    if (!v) {
      break;
    }
    out.push_back(*v);
    from = static_cast<std::size_t>(v->data() - s.data()) + v->size();
  }
  return out;
}

/** IP inside the first "[...]" of `s` ("host[1.2.3.4]:25" -> 1.2.3.4). */
std::optional<string_view> bracket_ip(string_view s) {
  std::size_t b = s.find('[');
  if (b == string_view::npos) {
    return std::nullopt;
  }
  std::size_t e = s.find(']', b);
  if (e == string_view::npos) {
    return std::nullopt;
  }
  return s.substr(b + 1, e - b - 1);
}
// ---------------------------------------------------------------------------------------------
// Time

using core::days_from_civil;

std::int64_t year_of(std::int64_t seconds) {
  std::int64_t z = (seconds >= 0 ? seconds : seconds - (k_day - 1)) / k_day + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return m <= 2 ? y + 1 : y;
}

std::optional<std::int64_t> make_time(std::int64_t y, int mo, int d, int h, int mi, int s) {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 || h < 0 || mi < 0 ||
      s < 0) {
    return std::nullopt;
  }
  return days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * k_day +
         h * 3600 + mi * 60 + s;
}

int month_from_name(string_view s) {
  static constexpr std::array<string_view, 12> k_months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() != 3) {
    return 0;
  }
  // Every line's prefix asks: compare three bytes as one word, not twelve string compares.
  const auto word = [](string_view m) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(m[0])) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(m[1])) << 8U |
           static_cast<std::uint32_t>(static_cast<unsigned char>(m[2])) << 16U;
  };
  const std::uint32_t w = word(s);
  for (std::size_t i = 0; i < k_months.size(); ++i) {
    if (w == word(k_months[i])) {
      return static_cast<int>(i) + 1;
    }
  }
  return 0;
}

/** Skips ".digits" at pos. */
std::size_t skip_fraction(string_view s, std::size_t pos) {
  if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
    std::size_t j = pos + 1;
    while (j < s.size() && is_digit(s[j])) {
      ++j;
    }
    if (j > pos + 1) {
      return j;
    }
  }
  return pos;
}

/** Parses "Z", "+hh:mm", "+hhmm", "+hh" at pos; returns the offset in seconds and advances pos. */
std::optional<std::int64_t> parse_zone(string_view s, std::size_t &pos) {
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
    return 0;
  }
  if (pos >= s.size() || (s[pos] != '+' && s[pos] != '-')) {
    return std::nullopt;
  }
  const std::int64_t sign = s[pos] == '-' ? -1 : 1;
  auto hh = digits(s, pos + 1, 2);
  if (!hh) {
    return std::nullopt;
  }
  std::size_t p = pos + 3;
  int mm = 0;
  if (p < s.size() && s[p] == ':') {
    auto m = digits(s, p + 1, 2);
    if (!m) {
      return std::nullopt;
    }
    mm = *m;
    p += 3;
  } else if (auto m = digits(s, p, 2)) {
    mm = *m;
    p += 2;
  }
  pos = p;
  return sign * (*hh * 3600 + mm * 60);
}

/** "YYYY-MM-DD?HH:MM:SS" at the start of s, with `sep` between date and time. */
std::optional<std::int64_t> parse_date_time(string_view s, char sep, std::size_t &pos) {
  auto y = digits(s, 0, 4);
  auto mo = digits(s, 5, 2);
  auto d = digits(s, 8, 2);
  auto h = digits(s, 11, 2);
  auto mi = digits(s, 14, 2);
  auto sec = digits(s, 17, 2);
  if (!y || !mo || !d || !h || !mi || !sec || s[4] != '-' || s[7] != '-' || s[10] != sep ||
      s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  pos = skip_fraction(s, 19);
  return make_time(*y, *mo, *d, *h, *mi, *sec);
}

/** ISO 8601 / RFC 3339 timestamp at the start of `s` ("2023-11-14T10:00:00.123+01:00"). */
std::optional<std::int64_t> parse_iso(string_view s, std::size_t &pos) {
  std::size_t p = 0;
  auto t = parse_date_time(s, 'T', p);
  if (!t) {
    return std::nullopt;
  }
  if (auto z = parse_zone(s, p)) {
    *t -= *z;
  } // no zone: treated as UTC
  pos = p;
  return t;
}

namespace {
char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
} // namespace

NoCaseSearch::NoCaseSearch(std::string_view needle) : m_needle(needle) {
  m_skip.fill(needle.size());
  for (std::size_t i = 0; i + 1 < needle.size(); ++i) {
    const auto c = static_cast<unsigned char>(needle[i]);
    m_skip[c] = needle.size() - 1 - i;
    if (c >= 'a' && c <= 'z') {
      m_skip[c - 'a' + 'A'] = needle.size() - 1 - i;
    }
  }
}

std::size_t NoCaseSearch::find(std::string_view text, std::size_t from) const {
  const std::size_t n = m_needle.size();
  if (n == 0) {
    return from <= text.size() ? from : std::string_view::npos;
  }
  if (text.size() < n) {
    return std::string_view::npos;
  }
#if defined(__SSE2__)
  const auto upper = [](char c) { return c >= 'A' && c <= 'Z'; }; // never matches (lower-case needle)
  if (n >= 2 && !upper(m_needle[0]) && !upper(m_needle[n - 1])) {
    // 16 positions at a time: the needle's first and last bytes compared at once (an ASCII
    // letter of the needle, lower case, matches either case: byte | 0x20), each candidate then
    // checked whole. `find` reads the matched blocks' lines of every `find --email`.
    const char head = m_needle[0];
    const char tail = m_needle[n - 1];
    const auto fold_of = [](char c) { return static_cast<char>(c >= 'a' && c <= 'z' ? 0x20 : 0); };
    const __m128i want_head = _mm_set1_epi8(head);
    const __m128i want_tail = _mm_set1_epi8(tail);
    const __m128i fold_head = _mm_set1_epi8(fold_of(head));
    const __m128i fold_tail = _mm_set1_epi8(fold_of(tail));
    std::size_t at = from;
    for (; at + n - 1 + 16 <= text.size(); at += 16) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i *>(text.data() + at));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i *>(text.data() + at + n - 1));
      auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_and_si128(
          _mm_cmpeq_epi8(_mm_or_si128(a, fold_head), want_head), _mm_cmpeq_epi8(_mm_or_si128(b, fold_tail), want_tail))));
      while (mask != 0) {
        const auto bit = static_cast<std::size_t>(__builtin_ctz(mask));
        if (matches(text.substr(at + bit + 1, n - 2), 1)) {
          return at + bit;
        }
        mask &= mask - 1;
      }
    }
    for (; at + n <= text.size(); ++at) {
      if (lower_ascii(text[at + n - 1]) == tail && matches(text.substr(at, n - 1))) {
        return at;
      }
    }
    return std::string_view::npos;
  }
#endif
  for (std::size_t at = from; at + n <= text.size();) {
    const char last = text[at + n - 1];
    if (lower_ascii(last) == m_needle[n - 1] && matches(text.substr(at, n - 1))) {
      return at;
    }
    at += m_skip[static_cast<unsigned char>(last)];
  }
  return std::string_view::npos;
}

std::size_t NoCaseSearch::find_word(std::string_view text, std::size_t from) const {
  const std::size_t n = m_needle.size();
  for (std::size_t at = find(text, from); at != std::string_view::npos; at = find(text, at + 1)) {
    const bool open = at == 0 || !is_alnum(text[at - 1]);
    const bool closed = at + n >= text.size() || !is_alnum(text[at + n]);
    if ((open && closed) || n == 0) {
      return at;
    }
  }
  return std::string_view::npos;
}

bool NoCaseSearch::matches(std::string_view part, std::size_t offset) const {
  for (std::size_t i = 0; i < part.size(); ++i) {
    if (lower_ascii(part[i]) != m_needle[offset + i]) {
      return false;
    }
  }
  return true;
}

} // namespace maildsar::connectors::maillog
