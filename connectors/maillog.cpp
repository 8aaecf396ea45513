// SPDX-License-Identifier: GPL-3.0-or-later
// The maillog connector: MTA delivery logs and access logs (postfix, exim, sendmail, dovecot,
// Exchange message tracking, anything else in a mail.log) read into log-transaction items.
//
// Reading: the file is streamed in chunks (plain or gzip, detected by magic bytes) and split into
// lines of at most k_max_line bytes. Each line is parsed into a prefix (time, host, program) and
// a message; the message goes to the parser of its program, which yields a grouping key
// ("postfix:QID", "exim:MSGID", "sendmail:QID", "dovecot:SESSION") and the identities it names.
// Lines with the same key are one transaction; transactions are emitted when they end ("removed",
// "Completed") or at the end of the file. Lines without a key become an item of their own when
// they show an address or an IP literal, so nothing personal in a log stays invisible.
#include "connectors/maillog.hpp"
#include "connectors/limits.hpp"
#include "core/time.hpp"

#include "core/hash.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <optional>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace maildsar::connectors {

namespace {

using std::string_view;

constexpr std::size_t k_max_line = std::size_t{1} << 20; // longer lines are skipped (ScanError)
constexpr std::size_t k_chunk = std::size_t{1} << 16;
constexpr std::size_t k_fingerprint_bytes = 4096;
constexpr std::int64_t k_day = 86400;
/** All open transactions together hold at most this many times limits.max_transaction_kib. */
constexpr std::size_t k_open_budget_factor = 8;
constexpr std::size_t k_max_pending_parts = 100000; // part numbers remembered across such splits

enum class LogFormat { postfix, exim, sendmail, exchange, syslog, automatic };

std::optional<LogFormat> format_from_string(string_view name) {
  if (name == "postfix") {
    return LogFormat::postfix;
  }
  if (name == "exim") {
    return LogFormat::exim;
  }
  if (name == "sendmail") {
    return LogFormat::sendmail;
  }
  if (name == "exchange") {
    return LogFormat::exchange;
  }
  if (name == "syslog") {
    return LogFormat::syslog;
  }
  if (name == "auto" || name.empty()) {
    return LogFormat::automatic;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Small text helpers

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
bool is_upper_hex(char c) { return is_digit(c) || (c >= 'A' && c <= 'F'); }
bool is_hex(char c) { return is_upper_hex(c) || (c >= 'a' && c <= 'f'); }
bool is_space(char c) { return c == ' ' || c == '\t'; }

string_view trim(string_view s) {
  while (!s.empty() && (is_space(s.front()) || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool starts_with(string_view s, string_view p) { return s.substr(0, p.size()) == p; }

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

bool is_local_part_char(char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '=' ||
         static_cast<unsigned char>(c) >= 0x80;
}

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
  for (std::size_t i = 0; i < k_months.size(); ++i) {
    if (s == k_months[i]) {
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

// ---------------------------------------------------------------------------------------------
// Transactions

enum class Program { none, postfix, exim, sendmail, dovecot, other };

struct Txn {
  std::string queue_id;
  std::vector<std::uint64_t> lines;
  std::string raw; // the lines joined with '\n'
  std::optional<std::int64_t> date;
  std::string message_id;
  std::string subject;
  std::vector<RawAddress> addresses;
  std::vector<RawValue> ips;
  // Bounds (limits.max_addresses_per_role): what merge() has seen, and what it left out.
  std::unordered_set<std::string> seen;  // role + '\0' + value, addresses and IPs
  std::array<std::uint64_t, k_role_count> kept{};
  std::uint64_t dropped = 0;
  std::uint64_t part = 0;                // 0 = whole; 1, 2, ... = split at a limit
  std::uint64_t continues_at = 0;        // split: the line where the next part starts

  /** As add_address/add_ip for a long-lived transaction: hashed de-duplication, capped per role. */
  void add_bounded(Role role, const std::string &value, bool ip, std::uint64_t cap) {
    if (value.empty()) {
      return;
    }
    std::string key;
    key.reserve(value.size() + 3);
    key += static_cast<char>('a' + static_cast<int>(role));
    key += ip ? 'i' : 'a';
    key += value;
    if (seen.contains(key)) {
      return;
    }
    auto &n = kept[static_cast<std::size_t>(role)];
    if (n >= cap) {
      ++dropped;
      return;
    }
    ++n;
    seen.insert(std::move(key));
    if (ip) {
      ips.push_back(RawValue{role, value});
    } else {
      addresses.push_back(RawAddress{role, {}, value});
    }
  }

  void add_address(Role role, string_view value) {
    value = trim(value);
    if (value.empty() || value == "<>") {
      return;
    }
    std::string v = sanitize_utf8(value);
    for (const auto &a : addresses) {
      if (a.role == role && a.addr == v) {
        return;
      }
    }
    addresses.push_back(RawAddress{role, {}, std::move(v)});
  }
  void add_ip(Role role, string_view value) {
    auto ip = as_ip(value);
    if (!ip) {
      return;
    }
    for (const auto &v : ips) {
      if (v.role == role && v.value == *ip) {
        return;
      }
    }
    ips.push_back(RawValue{role, std::move(*ip)});
  }
  void set_message_id(string_view value) {
    value = trim(value);
    if (!value.empty() && value.front() == '<') {
      value.remove_prefix(1);
      if (auto e = value.find('>'); e != string_view::npos) {
        value = value.substr(0, e);
      }
    }
    if (message_id.empty() && !value.empty()) {
      message_id = sanitize_utf8(value);
    }
  }
};

/** What a parser found in one line. */
struct LineInfo {
  std::string key;      // grouping key; empty = the line stands alone
  std::string queue_id; // id shown in the locator
  bool closes = false;  // "removed", "Completed": the transaction ends here
  Txn found;            // identities found in this line (lines/raw unused)
};

/** Value of `key=` in `s` when the key starts a word; angle brackets and quotes removed. */
std::optional<string_view> field(string_view s, string_view key, std::size_t from = 0) {
  for (std::size_t p = s.find(key, from); p != string_view::npos; p = s.find(key, p + 1)) {
    if (p > 0) {
      char c = s[p - 1];
      if (!(is_space(c) || c == ',' || c == ';' || c == '(' || c == '[' || c == ':')) {
        continue;
      }
    }
    std::size_t v = p + key.size();
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
  return std::nullopt;
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

/** Identities every kind of line may carry as key=value (generic extraction). */
void extract_common(string_view msg, Txn &t) {
  for (auto v : fields(msg, "from=")) {
    t.add_address(Role::log_from, v);
  }
  for (auto key : {string_view("to="), string_view("orig_to=")}) {
    for (auto v : fields(msg, key)) {
      t.add_address(Role::log_to, v);
    }
  }
  for (auto key : {string_view("sasl_username="), string_view("user="), string_view("set_id="),
                   string_view("authentication_id="), string_view("us=")}) {
    for (auto v : fields(msg, key)) {
      t.add_address(Role::log_user, v);
    }
  }
  if (auto v = field(msg, "client=")) {
    if (auto ip = bracket_ip(*v)) {
      t.add_ip(Role::log_client, *ip);
    } else {
      t.add_ip(Role::log_client, *v);
    }
  }
  for (auto key : {string_view("rip="), string_view("ip=")}) {
    if (auto v = field(msg, key)) {
      std::string_view val = *v;
      if (!val.empty() && val.front() == '[') {
        // courier: ip=[::ffff:1.2.3.4]
        std::size_t e = msg.find(']', static_cast<std::size_t>(val.data() - msg.data()));
        if (e != string_view::npos) {
          val = msg.substr(static_cast<std::size_t>(val.data() - msg.data()),
                           e + 1 - static_cast<std::size_t>(val.data() - msg.data()));
        }
      }
      t.add_ip(Role::log_client, val);
    }
  }
  for (auto key :
       {string_view("message-id="), string_view("msgid="), string_view("Message-ID: ")}) {
    if (auto v = field(msg, key)) {
      t.set_message_id(*v);
    }
  }
  // "... from host[1.2.3.4]" (postfix connect/NOQUEUE/postscreen, cyrus, sieve)
  for (std::size_t p = msg.find("from "); p != string_view::npos; p = msg.find("from ", p + 1)) {
    string_view rest = msg.substr(p + 5);
    std::size_t end = rest.find_first_of(" ,;");
    string_view tok = rest.substr(0, end);
    if (auto ip = bracket_ip(tok)) {
      t.add_ip(Role::log_client, *ip);
    }
  }
}

bool is_postfix_qid(string_view t) {
  if (t.size() < 5 || t.size() > 20) {
    return false;
  }
  if (std::all_of(t.begin(), t.end(), is_upper_hex)) {
    return true;
  }
  return t.size() >= 10 && std::all_of(t.begin(), t.end(), is_alnum) &&
         t.find('z') != string_view::npos && std::any_of(t.begin(), t.end(), is_digit);
}

bool is_sendmail_qid(string_view t) {
  return t.size() >= 8 && t.size() <= 20 && std::all_of(t.begin(), t.end(), is_alnum) &&
         std::any_of(t.begin(), t.end(), is_digit) && std::any_of(t.begin(), t.end(), is_alpha);
}

/** Exim message id: 6-6-2 (old) or 6-11-4 (4.97+), base62. */
bool is_exim_id(string_view t) {
  auto part = [&](std::size_t pos, std::size_t len) {
    return pos + len <= t.size() &&
           std::all_of(t.begin() + static_cast<std::ptrdiff_t>(pos),
                       t.begin() + static_cast<std::ptrdiff_t>(pos + len), is_alnum);
  };
  if (t.size() == 16) {
    return part(0, 6) && t[6] == '-' && part(7, 6) && t[13] == '-' && part(14, 2);
  }
  if (t.size() == 23) {
    return part(0, 6) && t[6] == '-' && part(7, 11) && t[18] == '-' && part(19, 4);
  }
  return false;
}

/** "QID: rest" -> QID when `accept` says the token is an id. */
template <class Pred> std::optional<string_view> leading_id(string_view msg, Pred accept) {
  std::size_t colon = msg.find(':');
  if (colon == string_view::npos || colon + 1 > msg.size()) {
    return std::nullopt;
  }
  string_view tok = msg.substr(0, colon);
  if (!accept(tok)) {
    return std::nullopt;
  }
  return tok;
}

void parse_postfix(string_view msg, LineInfo &info) {
  extract_common(msg, info.found);
  if (auto qid = leading_id(msg, is_postfix_qid)) {
    info.key = "postfix:" + std::string(*qid);
    info.queue_id = std::string(*qid);
    string_view rest = trim(msg.substr(qid->size() + 1));
    info.closes = rest == "removed";
  }
}

/** Exim "H=host (helo) [1.2.3.4]:port": the bracket after a space is the peer's address. */
void exim_host_ip(string_view s, Txn &t) {
  std::size_t h = s.find("H=");
  if (h == string_view::npos || (h > 0 && !is_space(s[h - 1]))) {
    return;
  }
  string_view hs = s.substr(h);
  std::size_t sb = hs.find(" [");
  std::size_t next_field = hs.find('=', 2);
  if (sb != string_view::npos && (next_field == string_view::npos || sb < next_field)) {
    if (auto ip = bracket_ip(hs.substr(sb + 1))) {
      t.add_ip(Role::log_client, *ip);
      return;
    }
  }
  if (auto ip = bracket_ip(hs.substr(0, hs.find(' ')))) {
    t.add_ip(Role::log_client, *ip);
  }
}

void parse_exim(string_view msg, LineInfo &info) {
  Txn &t = info.found;
  string_view rest = msg;
  std::size_t sp = rest.find(' ');
  string_view first = rest.substr(0, sp);
  if (is_exim_id(first)) {
    info.key = "exim:" + std::string(first);
    info.queue_id = std::string(first);
    rest = sp == string_view::npos ? string_view() : trim(rest.substr(sp + 1));
    if (rest == "Completed") {
      info.closes = true;
    }
    std::size_t fsp = rest.find(' ');
    string_view flag = rest.substr(0, fsp);
    string_view after = fsp == string_view::npos ? string_view() : trim(rest.substr(fsp + 1));
    string_view addr = after.substr(0, after.find(' '));
    while (!addr.empty() && (addr.back() == ':' || addr.back() == ',')) {
      addr.remove_suffix(1); // "** carol@example.net: unrouteable"
    }
    if (flag == "<=" || flag == "(=") {
      t.add_address(Role::log_from, addr);
      if (auto id = field(after, "id=")) {
        t.set_message_id(*id);
      }
      if (auto a = field(after, "A=")) {
        string_view v = *a;
        if (auto c = v.find(':'); c != string_view::npos) {
          t.add_address(Role::log_user, v.substr(c + 1));
        }
      }
      exim_host_ip(after, t);
    } else if (flag == "=>" || flag == "->" || flag == ">>" || flag == "*>" || flag == "**" ||
               flag == "==") {
      t.add_address(Role::log_to, addr);
      std::size_t lt = after.find('<');
      if (lt != string_view::npos && lt <= addr.size() + 1) {
        std::size_t gt = after.find('>', lt);
        if (gt != string_view::npos) {
          t.add_address(Role::log_to, after.substr(lt + 1, gt - lt - 1));
        }
      }
    }
  }
  // fields of reject lines (with or without an id)
  if (auto f = field(rest, "F=")) {
    t.add_address(Role::log_from, *f);
  }
  for (string_view kw : {string_view("rejected RCPT "), string_view("RCPT "),
                         string_view("verify fail for "), string_view("rejected MAIL ")}) {
    if (auto p = rest.find(kw); p != string_view::npos) {
      const Role role = kw == "rejected RCPT " || kw == "RCPT " ? Role::log_to : Role::log_from;
      string_view v = rest.substr(p + kw.size());
      if (!v.empty() && v.front() == '<') {
        std::size_t e = v.find('>');
        t.add_address(role, v.substr(1, e == string_view::npos ? v.size() - 1 : e - 1));
      } else {
        t.add_address(role, v.substr(0, v.find_first_of(" :")));
      }
      break;
    }
  }
  if (auto u = field(rest, "U=")) { // local user (or ident) that submitted the message
    t.add_address(Role::log_user, *u);
  }
  if (info.key.empty()) {
    exim_host_ip(rest, t);
    // "authenticator failed for host ([helo]) [ip]:port"
    if (auto p = rest.find("failed for "); p != string_view::npos) {
      string_view fs = rest.substr(p);
      std::size_t sb = fs.find(" [");
      if (sb != string_view::npos) {
        if (auto ip = bracket_ip(fs.substr(sb + 1))) {
          t.add_ip(Role::log_client, *ip);
        }
      }
    }
  }
  for (auto v : fields(rest, "set_id=")) {
    t.add_address(Role::log_user, v);
  }
}

void parse_sendmail(string_view msg, LineInfo &info) {
  Txn &t = info.found;
  if (auto qid = leading_id(msg, is_sendmail_qid)) {
    info.key = "sendmail:" + std::string(*qid);
    info.queue_id = std::string(*qid);
  }
  if (auto v = field(msg, "from=")) {
    t.add_address(Role::log_from, *v);
    if (auto relay = field(msg, "relay=")) {
      // on the from= line relay= is the sending client: "relay=host [1.2.3.4]"
      std::size_t p = static_cast<std::size_t>(relay->data() - msg.data());
      string_view tail = msg.substr(p);
      if (auto ip = bracket_ip(tail.substr(0, tail.find(','))); ip) {
        t.add_ip(Role::log_client, *ip);
      }
    }
  }
  if (auto v = field(msg, "to=")) {
    // to=<a@b>,<c@d>, delay=...  or  to=a@b,c@d, ...
    std::size_t p = static_cast<std::size_t>(v->data() - msg.data());
    if (p > 0 && msg[p - 1] == '<') {
      --p;
    }
    string_view list = msg.substr(p);
    std::size_t end = list.find(", ");
    list = list.substr(0, end);
    std::size_t start = 0;
    while (start <= list.size()) {
      std::size_t comma = list.find(',', start);
      string_view one = list.substr(start, comma == string_view::npos ? string_view::npos
                                                                      : comma - start);
      one = trim(one);
      if (!one.empty() && one.front() == '<') {
        one.remove_prefix(1);
      }
      if (!one.empty() && one.back() == '>') {
        one.remove_suffix(1);
      }
      t.add_address(Role::log_to, one);
      if (comma == string_view::npos) {
        break;
      }
      start = comma + 1;
    }
  }
  if (auto v = field(msg, "ctladdr=")) {
    t.add_address(Role::log_user, *v);
  }
  if (auto v = field(msg, "msgid=")) {
    t.set_message_id(*v);
  }
  if (auto v = field(msg, "arg1=")) {
    Role role = msg.find("ruleset=check_mail") != string_view::npos ? Role::log_from : Role::log_to;
    if (msg.find("ruleset=check_relay") == string_view::npos) {
      t.add_address(role, *v);
    }
  }
  if (auto r = field(msg, "relay="); r && msg.find("ruleset=") != string_view::npos) {
    std::size_t p = static_cast<std::size_t>(r->data() - msg.data());
    string_view tail = msg.substr(p);
    if (auto ip = bracket_ip(tail.substr(0, tail.find(','))); ip) {
      t.add_ip(Role::log_client, *ip);
    }
  }
  if (auto p = msg.find(": ["); p != string_view::npos && info.key.size() > 0) {
    if (auto ip = bracket_ip(msg.substr(p + 2))) {
      t.add_ip(Role::log_client, *ip);
    }
  }
}

/** Dovecot: "imap-login: ... user=<u>, rip=1.2.3.4, session=<S>", "lmtp(u)<pid><S>: msgid=..." */
void parse_dovecot(string_view msg, LineInfo &info) {
  Txn &t = info.found;
  extract_common(msg, t);
  if (auto s = field(msg, "session=")) {
    if (!s->empty()) {
      info.key = "dovecot:" + std::string(*s);
      info.queue_id = std::string(*s);
    }
  }
  // service(user)<pid><session>: ...
  static constexpr std::array<string_view, 8> k_services{"lmtp(", "lda(", "deliver(", "imap(",
                                                         "pop3(", "managesieve(", "submission(",
                                                         "sieve("};
  for (auto svc : k_services) {
    std::size_t p = msg.find(svc);
    if (p == string_view::npos) {
      continue;
    }
    std::size_t ue = msg.find(')', p);
    if (ue == string_view::npos) {
      break;
    }
    string_view user = msg.substr(p + svc.size(), ue - p - svc.size());
    if (auto c = user.find(", "); c != string_view::npos) { // older "lmtp(pid, user)"
      user = user.substr(c + 2);
    }
    bool delivery = svc == "lmtp(" || svc == "lda(" || svc == "deliver(";
    t.add_address(delivery ? Role::log_to : Role::log_user, user);
    string_view after = msg.substr(ue + 1);
    // <pid><session>
    if (starts_with(after, "<")) {
      std::size_t e1 = after.find('>');
      if (e1 != string_view::npos && e1 + 1 < after.size() && after[e1 + 1] == '<') {
        std::size_t e2 = after.find('>', e1 + 2);
        if (e2 != string_view::npos && info.key.empty() && e2 > e1 + 2) {
          string_view sess = after.substr(e1 + 2, e2 - e1 - 2);
          info.key = "dovecot:" + std::string(sess);
          info.queue_id = std::string(sess);
        }
      }
    }
    break;
  }
  // auth-worker(pid): pam(user,1.2.3.4,...): ...
  static constexpr std::array<string_view, 7> k_passdbs{"pam(", "passwd(", "shadow(", "sql(",
                                                        "ldap(", "passwd-file(",
                                                        "checkpassword("};
  for (auto db : k_passdbs) {
    std::size_t p = msg.find(db);
    if (p == string_view::npos || (p > 0 && is_alnum(msg[p - 1]))) {
      continue;
    }
    std::size_t e = msg.find(')', p);
    if (e == string_view::npos) {
      break;
    }
    string_view args = msg.substr(p + db.size(), e - p - db.size());
    std::size_t c = args.find(',');
    t.add_address(Role::log_user, args.substr(0, c));
    if (c != string_view::npos) {
      string_view ip = args.substr(c + 1);
      t.add_ip(Role::log_client, ip.substr(0, ip.find(',')));
    }
    break;
  }
}

/** "<a@b>" list items: "<a@b>,<c@d>" -> each address. */
void angle_list(string_view s, Role role, Txn &t) {
  while (!s.empty() && s.front() == '<') {
    std::size_t e = s.find('>');
    if (e == string_view::npos) {
      return;
    }
    t.add_address(role, s.substr(1, e - 1));
    s.remove_prefix(e + 1);
    if (!s.empty() && s.front() == ',') {
      s.remove_prefix(1);
    }
  }
}

/** Content filters: amavis "[ip]:port [ip] <from> -> <to>,<to2>", MailScanner
 * "Message QID from 1.2.3.4 (sender@x) to domain". */
void parse_other(string_view msg, Txn &t) {
  extract_common(msg, t);
  if (auto arrow = msg.find("> -> <"); arrow != string_view::npos) {
    std::size_t lt = msg.rfind(" <", arrow);
    if (lt != string_view::npos) {
      t.add_address(Role::log_from, msg.substr(lt + 2, arrow - lt - 2));
      string_view before = msg.substr(0, lt);
      if (std::size_t b = before.rfind(" ["); b != string_view::npos) {
        if (auto ip = bracket_ip(before.substr(b + 1))) {
          t.add_ip(Role::log_client, *ip);
        }
      }
    }
    angle_list(msg.substr(arrow + 5), Role::log_to, t);
  }
  if (starts_with(msg, "Message ")) {
    std::size_t from = msg.find(" from ");
    if (from != string_view::npos) {
      string_view rest = msg.substr(from + 6);
      std::size_t sp = rest.find(' ');
      t.add_ip(Role::log_client, rest.substr(0, sp));
      if (sp != string_view::npos && sp + 1 < rest.size() && rest[sp + 1] == '(') {
        std::size_t e = rest.find(')', sp);
        if (e != string_view::npos) {
          t.add_address(Role::log_from, rest.substr(sp + 2, e - sp - 2));
        }
      }
    }
  }
}

Program program_of(string_view tag, string_view msg) {
  if (starts_with(tag, "postfix")) {
    return Program::postfix;
  }
  if (starts_with(tag, "exim")) {
    return Program::exim;
  }
  if (starts_with(tag, "sendmail") || starts_with(tag, "sm-")) {
    return Program::sendmail;
  }
  if (starts_with(tag, "dovecot")) {
    return Program::dovecot;
  }
  // dovecot's own log file (log_path): "imap-login: Info: ...", "lmtp(user)<pid><session>: ..."
  for (auto p : {"imap-login", "pop3-login", "managesieve-login", "submission-login", "lmtp(",
                 "lda(", "deliver(", "imap(", "pop3(", "auth-worker(", "auth:"}) {
    if (starts_with(tag, p)) {
      return Program::dovecot;
    }
  }
  if (tag.empty() || tag == "-") {
    for (auto p : {"imap-login:", "pop3-login:", "managesieve-login:", "submission-login:",
                   "lmtp(", "lda(", "deliver(", "imap(", "pop3(", "dovecot"}) {
      if (starts_with(msg, p)) {
        return Program::dovecot;
      }
    }
  }
  return Program::other;
}

/** One line split into its prefix and its message. */
struct Prefix {
  enum class Kind { none, syslog, exim_native, tai64 } kind = Kind::none;
  std::optional<std::int64_t> date;
  string_view tag; // program (without [pid])
  string_view msg;
};

/** "prog[pid]:", "prog:", "prog[pid]" -> prog; nullopt if `tok` is not a tag. */
std::optional<string_view> tag_of(string_view tok) {
  if (tok.empty()) {
    return std::nullopt;
  }
  if (tok.back() == ':') {
    tok.remove_suffix(1);
    if (auto b = tok.find('['); b != string_view::npos) {
      return tok.substr(0, b);
    }
    return tok;
  }
  if (tok.back() == ']') {
    if (auto b = tok.find('['); b != string_view::npos && b > 0) {
      auto pid = tok.substr(b + 1, tok.size() - b - 2);
      if (!pid.empty() && std::all_of(pid.begin(), pid.end(), is_digit)) {
        return tok.substr(0, b);
      }
    }
  }
  return std::nullopt;
}

/** Host and tag after a syslog timestamp. */
void parse_host_tag(string_view rest, Prefix &out) {
  rest = trim(rest);
  if (starts_with(rest, "<") && rest.find('>') != string_view::npos &&
      rest.find('>') < rest.find(' ')) { // "<mail.info> host prog[pid]: ..."
    rest = trim(rest.substr(rest.find('>') + 1));
  }
  std::size_t sp = rest.find(' ');
  if (sp == string_view::npos) {
    out.msg = rest;
    return;
  }
  string_view host = rest.substr(0, sp);
  string_view after = trim(rest.substr(sp + 1));
  if (auto t = tag_of(host); t && host.back() == ':') { // no host: "prog[pid]: msg"
    out.tag = *t;
    out.msg = after;
    return;
  }
  std::size_t sp2 = after.find(' ');
  string_view tok = after.substr(0, sp2);
  if (auto t = tag_of(tok)) {
    out.tag = *t;
    out.msg = sp2 == string_view::npos ? string_view() : trim(after.substr(sp2 + 1));
  } else {
    out.msg = after;
  }
}

Prefix parse_prefix(string_view line, std::int64_t mtime) {
  Prefix out;
  // RFC 3164: "Mmm dd hh:mm:ss " (day padded with a space or not)
  if (line.size() > 15 && line[3] == ' ' && month_from_name(line.substr(0, 3)) != 0) {
    int mo = month_from_name(line.substr(0, 3));
    std::size_t p = 4;
    while (p < line.size() && line[p] == ' ') {
      ++p;
    }
    int day = 0;
    std::size_t dstart = p;
    while (p < line.size() && is_digit(line[p]) && p - dstart < 2) {
      day = day * 10 + (line[p] - '0');
      ++p;
    }
    if (p > dstart && p < line.size() && line[p] == ' ') {
      ++p;
      auto h = digits(line, p, 2);
      auto mi = digits(line, p + 3, 2);
      auto s = digits(line, p + 6, 2);
      if (h && mi && s && line[p + 2] == ':' && line[p + 5] == ':') {
        // No year in RFC 3164: take the file's mtime year, or the year before when that would
        // put the line more than a day after the file was last written (a log crossing New
        // Year). The time has no zone either: treated as UTC.
        std::int64_t y = year_of(mtime);
        auto t = make_time(y, mo, day, *h, *mi, *s);
        if (t && *t > mtime + k_day) {
          t = make_time(y - 1, mo, day, *h, *mi, *s);
        }
        out.kind = Prefix::Kind::syslog;
        out.date = t;
        parse_host_tag(line.substr(skip_fraction(line, p + 8)), out);
        return out;
      }
    }
  }
  if (line.size() >= 19 && is_digit(line[0])) {
    std::size_t p = 0;
    if (auto t = parse_iso(line, p)) { // RFC 5424 / rsyslog high precision
      out.kind = Prefix::Kind::syslog;
      out.date = t;
      parse_host_tag(line.substr(p), out);
      return out;
    }
    // exim: "YYYY-MM-DD HH:MM:SS[.mmm] [+zone] [[pid]] rest"
    if (auto t = parse_date_time(line, ' ', p)) {
      string_view rest = line.substr(p);
      if (rest.size() > 1 && rest[0] == ' ' && (rest[1] == '+' || rest[1] == '-')) {
        std::size_t zp = 1;
        if (auto z = parse_zone(rest, zp)) {
          *t -= *z;
          rest = rest.substr(zp);
        }
      }
      rest = trim(rest);
      if (starts_with(rest, "[")) {
        std::size_t e = rest.find(']');
        if (e != string_view::npos &&
            std::all_of(rest.begin() + 1, rest.begin() + static_cast<std::ptrdiff_t>(e),
                        [](char c) { return is_digit(c) || c == ':'; })) {
          rest = trim(rest.substr(e + 1));
        }
      }
      out.kind = Prefix::Kind::exim_native;
      out.date = t;
      out.msg = rest;
      return out;
    }
  }
  // daemontools/s6 TAI64N label: "@4000000050d3f5c70d0c2d34 msg"
  if (line.size() > 26 && line[0] == '@' && line[25] == ' ' &&
      std::all_of(line.begin() + 1, line.begin() + 25, is_hex)) {
    std::uint64_t secs = 0;
    for (std::size_t i = 1; i <= 16; ++i) {
      char c = line[i];
      unsigned v = is_digit(c) ? static_cast<unsigned>(c - '0')
                               : static_cast<unsigned>((c | 0x20) - 'a' + 10);
      secs = (secs << 4U) | v;
    }
    out.kind = Prefix::Kind::tai64;
    constexpr std::uint64_t k_tai_base = std::uint64_t{1} << 62U;
    if (secs >= k_tai_base) {
      out.date = static_cast<std::int64_t>(secs - k_tai_base) - 10; // TAI is 10 s ahead (approx.)
    }
    string_view rest = trim(line.substr(26));
    std::size_t sp = rest.find(' ');
    if (auto t = tag_of(rest.substr(0, sp)); t && sp != string_view::npos) {
      out.tag = *t;
      out.msg = trim(rest.substr(sp + 1));
    } else {
      out.msg = rest;
    }
    return out;
  }
  out.msg = line;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Exchange message tracking CSV

const std::vector<std::string> &default_exchange_fields() {
  static const std::vector<std::string> k_fields{
      "date-time",          "client-ip",          "client-hostname",
      "server-ip",          "server-hostname",    "source-context",
      "connector-id",       "source",             "event-id",
      "internal-message-id", "message-id",        "network-message-id",
      "recipient-address",  "recipient-status",   "total-bytes",
      "recipient-count",    "related-recipient-address", "reference",
      "message-subject",    "sender-address",     "return-path",
      "message-info",       "directionality",     "tenant-id",
      "original-client-ip", "original-server-ip", "custom-data",
      "transport-traffic-type", "log-id",         "schema-version"};
  return k_fields;
}

/** RFC 4180 fields of one line. */
std::vector<std::string> split_csv(string_view line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur += c;
      }
    } else if (c == '"' && cur.empty()) {
      quoted = true;
    } else if (c == ',') {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(std::move(cur));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading (plain or gzip)

struct GzClose {
  void operator()(gzFile_s *f) const { gzclose(f); }
};

class ByteReader {
public:
  /** Opens `path`; `from_offset` > 0 is only allowed for plain files. */
  static core::Result<ByteReader> open(const std::string &path) {
    MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(path));
    MAILDSAR_TRY_ASSIGN(std::string magic, core::read_range(fd.get(), 0, 2, path));
    ByteReader r;
    r.m_path = path;
    if (magic == "\x1f\x8b") {
      int raw = fd.release();
      gzFile f = gzdopen(raw, "rb");
      if (f == nullptr) {
        ::close(raw);
        return core::fail(core::ErrorCode::io, "maillog " + path + ": cannot open gzip stream");
      }
      gzbuffer(f, 1U << 17U);
      r.m_gz.reset(f);
    } else {
      r.m_fd = std::move(fd);
    }
    return r;
  }

  [[nodiscard]] bool compressed() const { return m_gz != nullptr; }
  [[nodiscard]] int fd() const { return m_fd.get(); }

  /** Positions a plain file at `offset`. */
  core::Status seek(std::uint64_t offset) {
    if (::lseek(m_fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) {
      return std::unexpected(core::errno_error("maillog " + m_path, errno));
    }
    return {};
  }

  /**
   * Reads up to n bytes; 0 = end. A gzip stream that ends early or is corrupt gives an
   * ErrorCode::data error (what was decompressed before it has been returned already).
   */
  core::Result<std::size_t> read(char *buf, std::size_t n) {
    if (m_gz) {
      int got = gzread(m_gz.get(), buf, static_cast<unsigned>(n));
      int errnum = Z_OK;
      const char *msg = gzerror(m_gz.get(), &errnum);
      if (got < 0 || (got == 0 && errnum != Z_OK)) {
        return core::fail(core::ErrorCode::data,
                          fmt::format("compressed data truncated or corrupt ({})",
                                      msg != nullptr ? msg : "zlib error"));
      }
      return static_cast<std::size_t>(got);
    }
    for (;;) {
      ssize_t got = ::read(m_fd.get(), buf, n);
      if (got < 0) {
        if (errno == EINTR) {
          continue;
        }
        return std::unexpected(core::errno_error("maillog " + m_path, errno));
      }
      return static_cast<std::size_t>(got);
    }
  }

private:
  ByteReader() = default;
  std::string m_path;
  core::Fd m_fd;
  std::unique_ptr<gzFile_s, GzClose> m_gz;
};

// ---------------------------------------------------------------------------------------------
// The per-file scanner

class FileScanner {
public:
  FileScanner(const core::SourceConfig &source, LogFormat format, std::string path,
              std::int64_t mtime, ItemSink &sink)
      : m_source(source), m_format(format), m_path(std::move(path)), m_mtime(mtime), m_sink(sink) {}

  void line(std::uint64_t number, string_view raw) {
    string_view view = raw;
    if (!view.empty() && view.back() == '\r') {
      view.remove_suffix(1);
    }
    if (!m_seen_line && starts_with(view, "\xEF\xBB\xBF")) {
      view.remove_prefix(3);
    }
    const bool first = !m_seen_line;
    m_seen_line = true;
    if (trim(view).empty()) {
      flush_single();
      m_last_key.clear();
      return;
    }
    if (is_binary_line(view)) {
      count(m_binary, number);
      return;
    }
    if (first && m_format == LogFormat::automatic &&
        (starts_with(view, "#Software: Microsoft Exchange") || starts_with(view, "#Fields:"))) {
      m_format = LogFormat::exchange;
    }
    if (m_format == LogFormat::exchange) {
      exchange_line(number, raw, view);
    } else {
      syslog_line(number, raw, view);
    }
  }

  /** End of data: emits the open transactions (in the order of their first line) and summaries. */
  void finish() {
    flush_single();
    std::vector<Txn> rest;
    rest.reserve(m_open.size());
    for (auto &[key, txn] : m_open) {
      if (!txn.lines.empty()) { // empty: the part after a split that got no line
        rest.push_back(std::move(txn));
      }
    }
    m_open.clear();
    std::sort(rest.begin(), rest.end(),
              [](const Txn &a, const Txn &b) { return a.lines.front() < b.lines.front(); });
    for (auto &t : rest) {
      emit(std::move(t));
    }
    if (m_binary.n > 0) {
      m_sink.error(ScanError{m_path, fmt::format("line {}", m_binary.first),
                             fmt::format("{} binary line(s) skipped (NUL bytes or not text)",
                                         m_binary.n)});
    }
    if (m_unparsed.n > 0) {
      m_sink.error(ScanError{
          m_path, fmt::format("line {}", m_unparsed.first),
          fmt::format("{} line(s) not understood as {} log lines", m_unparsed.n, format_name())});
    }
  }

private:
  struct Counter {
    std::uint64_t n = 0;
    std::uint64_t first = 0;
  };
  static void count(Counter &c, std::uint64_t line) {
    if (c.n++ == 0) {
      c.first = line;
    }
  }

  [[nodiscard]] string_view format_name() const {
    switch (m_format) {
    case LogFormat::postfix:
      return "postfix";
    case LogFormat::exim:
      return "exim";
    case LogFormat::sendmail:
      return "sendmail";
    case LogFormat::exchange:
      return "exchange";
    case LogFormat::syslog:
    case LogFormat::automatic:
      break;
    }
    return "syslog";
  }

  static void append_line(Txn &t, std::uint64_t number, string_view raw) {
    if (!t.lines.empty()) {
      t.raw += '\n';
    }
    t.raw.append(raw);
    t.lines.push_back(number);
  }

  void merge(Txn &into, Txn &&from) const {
    if (!into.date) {
      into.date = from.date;
    }
    if (into.message_id.empty()) {
      into.message_id = std::move(from.message_id);
    }
    if (into.subject.empty()) {
      into.subject = std::move(from.subject);
    }
    for (auto &a : from.addresses) {
      into.add_bounded(a.role, a.addr, false, m_limits.max_addresses_per_role);
    }
    for (auto &v : from.ips) {
      into.add_bounded(v.role, v.value, true, m_limits.max_addresses_per_role);
    }
  }

  /**
   * A transaction beyond limits.max_transaction_lines / _kib (one queue id with millions of
   * lines) is emitted as a part, and the lines after it go to the next part: memory stays
   * bounded and no line is left out (each part is an item; erase redacts the lines of each part
   * that names the subject). Also bounds all open transactions together.
   */
  void bound_open(std::unordered_map<std::string, Txn>::iterator it, std::uint64_t next_line) {
    Txn &t = it->second;
    if (t.lines.size() < m_limits.max_transaction_lines && t.raw.size() < m_limits.max_transaction_bytes) {
      if (m_open_bytes > k_open_budget_factor * m_limits.max_transaction_bytes) {
        split_all_open(next_line);
      }
      return;
    }
    m_open_bytes -= std::min(m_open_bytes, t.raw.size());
    Txn next;
    next.queue_id = t.queue_id;
    next.date = t.date;
    next.message_id = t.message_id;
    next.subject = t.subject;
    next.part = (t.part == 0 ? 1 : t.part) + 1;
    if (t.part == 0) {
      t.part = 1;
    }
    t.continues_at = next_line;
    Txn done = std::move(t);
    t = std::move(next);
    emit(std::move(done));
  }

  /** All open transactions together exceed the budget: each is emitted as a part. */
  void split_all_open(std::uint64_t next_line) {
    std::vector<std::string> keys;
    keys.reserve(m_open.size());
    for (const auto &[key, txn] : m_open) {
      keys.push_back(key);
    }
    for (const std::string &key : keys) {
      auto it = m_open.find(key);
      Txn done = std::move(it->second);
      m_open.erase(it);
      if (done.part == 0) {
        done.part = 1;
      }
      done.continues_at = next_line; // or later: its next line opens a new part
      if (m_parts_pending.size() < k_max_pending_parts) { // else the next part is numbered anew
        m_parts_pending[done.queue_id] = done.part + 1;
      }
      emit(std::move(done));
    }
    m_open_bytes = 0;
  }

  /** Adds a line with what it names to its transaction (key) or as an item of its own. */
  void add(std::uint64_t number, string_view raw, LineInfo &&info,
           std::optional<std::int64_t> date, bool personal) {
    info.found.date = date;
    if (info.key.empty()) {
      flush_single();
      m_last_key.clear();
      bool named = !info.found.addresses.empty() || !info.found.ips.empty();
      if (!personal && !named) {
        return; // nothing about anyone in this line
      }
      Txn t = std::move(info.found);
      t.queue_id = fmt::format("line-{}", number);
      append_line(t, number, raw);
      m_single = std::move(t);
      return;
    }
    flush_single();
    auto [it, inserted] = m_open.try_emplace(info.key);
    Txn &t = it->second;
    if (inserted) {
      t.queue_id = info.queue_id;
      if (auto p = m_parts_pending.find(t.queue_id); p != m_parts_pending.end()) {
        t.part = p->second; // continues a transaction split by the open-transactions budget
        m_parts_pending.erase(p);
      }
    }
    append_line(t, number, raw);
    m_open_bytes += raw.size() + 1;
    merge(t, std::move(info.found));
    m_last_key = info.key;
    if (info.closes) {
      Txn done = std::move(t);
      m_open.erase(it);
      m_open_bytes -= std::min(m_open_bytes, done.raw.size());
      m_last_key.clear();
      emit(std::move(done));
      return;
    }
    bound_open(it, number + 1);
  }

  /** A continuation line (exim rejectlog header dump) joins the entry before it. */
  bool continuation(std::uint64_t number, string_view raw, string_view view) {
    if (m_single) {
      append_line(*m_single, number, raw);
      extract_common(view, *m_single);
      return true;
    }
    if (!m_last_key.empty()) {
      auto it = m_open.find(m_last_key);
      if (it != m_open.end()) {
        append_line(it->second, number, raw);
        m_open_bytes += raw.size() + 1;
        extract_common(view, it->second);
        bound_open(it, number + 1);
        return true;
      }
    }
    return false;
  }

  void syslog_line(std::uint64_t number, string_view raw, string_view view) {
    if (view.front() == '#') {
      return; // comments (fail2ban test files: "# failJSON: ...")
    }
    Prefix pre = parse_prefix(view, m_mtime);
    // only a line without a transaction key needs this test (it decides whether it is an item)
    auto personal = [view] { return contains_email(view) || contains_ip(view); };
    LineInfo info;
    switch (pre.kind) {
    case Prefix::Kind::none: {
      // Exim rejectlog entries continue with a header dump; any log may hold wrapped lines.
      if (m_format == LogFormat::exim && continuation(number, raw, view)) {
        return;
      }
      count(m_unparsed, number);
      extract_common(view, info.found);
      add(number, raw, std::move(info), std::nullopt, personal());
      return;
    }
    case Prefix::Kind::exim_native:
      parse_exim(pre.msg, info);
      break;
    case Prefix::Kind::syslog:
    case Prefix::Kind::tai64:
      switch (program_of(pre.tag, pre.msg)) {
      case Program::postfix:
        parse_postfix(pre.msg, info);
        break;
      case Program::exim:
        parse_exim(pre.msg, info);
        break;
      case Program::sendmail:
        parse_sendmail(pre.msg, info);
        break;
      case Program::dovecot:
        // the service part ("lmtp(user)<pid><session>") may have been taken for the tag
        parse_dovecot(pre.tag.empty() || starts_with(pre.tag, "dovecot")
                          ? pre.msg
                          : view.substr(static_cast<std::size_t>(pre.tag.data() - view.data())),
                      info);
        break;
      case Program::none:
      case Program::other:
        parse_other(pre.msg, info.found);
        break;
      }
      break;
    }
    add(number, raw, std::move(info), pre.date, info.key.empty() && personal());
  }

  void exchange_line(std::uint64_t number, string_view raw, string_view view) {
    if (view.front() == '#') {
      flush_single();
      if (starts_with(view, "#Fields:")) {
        m_fields.clear();
        for (auto &f : split_csv(trim(view.substr(8)))) {
          m_fields.emplace_back(trim(f));
        }
      }
      return;
    }
    const auto &names = m_fields.empty() ? default_exchange_fields() : m_fields;
    auto values = split_csv(view);
    auto get = [&](string_view name) -> string_view {
      for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
        if (names[i] == name) {
          return trim(values[i]);
        }
      }
      return {};
    };
    LineInfo info;
    Txn &t = info.found;
    string_view mid = get("message-id");
    string_view internal = get("internal-message-id");
    if (!mid.empty()) {
      info.key = "exchange:" + std::string(mid);
      t.set_message_id(mid);
      info.queue_id = t.message_id;
    } else if (!internal.empty()) {
      info.key = "exchange-internal:" + std::string(internal);
      info.queue_id = std::string(internal);
    }
    t.add_address(Role::log_from, get("sender-address"));
    t.add_address(Role::log_from, get("return-path"));
    for (string_view col :
         {string_view("recipient-address"), string_view("related-recipient-address")}) {
      string_view list = get(col);
      while (!list.empty()) {
        std::size_t semi = list.find(';');
        t.add_address(Role::log_to, list.substr(0, semi));
        if (semi == string_view::npos) {
          break;
        }
        list.remove_prefix(semi + 1);
      }
    }
    for (string_view col : {string_view("client-ip"), string_view("original-client-ip")}) {
      t.add_ip(Role::log_client, get(col));
    }
    t.subject = sanitize_utf8(get("message-subject"));
    std::optional<std::int64_t> date;
    string_view dt = get("date-time");
    std::size_t p = 0;
    if (dt.size() >= 19) {
      date = parse_iso(dt, p);
    }
    if (values.size() < 3 || !date) {
      count(m_unparsed, number);
    }
    bool personal =
        info.key.empty() && (!t.subject.empty() || contains_email(view) || contains_ip(view));
    add(number, raw, std::move(info), date, personal);
  }

  void flush_single() {
    if (m_single) {
      Txn t = std::move(*m_single);
      m_single.reset();
      emit(std::move(t));
    }
  }

  void emit(Txn &&t) {
    Item item;
    item.locator.source = m_source.name;
    item.locator.store = StoreKind::maillog;
    item.locator.path = m_path;
    item.locator.queue_id = std::move(t.queue_id);
    item.locator.lines = std::move(t.lines);
    item.sha256 = core::sha256_hex(t.raw);
    item.message_id = std::move(t.message_id);
    item.date = t.date;
    item.subject = std::move(t.subject);
    item.addresses = std::move(t.addresses);
    item.ips = std::move(t.ips);
    item.texts.push_back(RawText{Role::body, sanitize_utf8(t.raw)});
    if (t.part > 0) {
      item.bounded.push_back(
          t.continues_at > 0
              ? fmt::format("log transaction {} split at limits.max_transaction_lines/_kib: part {} "
                            "(lines {}-{}); the next part starts at line {} or later",
                            item.locator.queue_id, t.part, item.locator.lines.front(),
                            item.locator.lines.back(), t.continues_at)
              : fmt::format("log transaction {} split at limits.max_transaction_lines/_kib: part {} "
                            "(lines {}-{}), the last",
                            item.locator.queue_id, t.part, item.locator.lines.front(),
                            item.locator.lines.back()));
    }
    if (t.dropped > 0) {
      item.truncated.push_back(fmt::format("{} address(es)/IP(s) beyond limits.max_addresses_per_role ({}) per "
                                           "role not indexed",
                                           t.dropped, m_limits.max_addresses_per_role));
    }
    m_sink.item(std::move(item));
  }

  const core::SourceConfig &m_source;
  LogFormat m_format;
  std::string m_path;
  std::int64_t m_mtime;
  ItemSink &m_sink;
  bool m_seen_line = false;
  std::unordered_map<std::string, Txn> m_open;
  ItemLimits m_limits = item_limits();
  std::size_t m_open_bytes = 0;  // raw bytes of the open transactions
  std::unordered_map<std::string, std::uint64_t> m_parts_pending; // queue id -> next part number
  std::optional<Txn> m_single; // a stand-alone line, held back for continuation lines
  std::string m_last_key;
  std::vector<std::string> m_fields;
  Counter m_binary;
  Counter m_unparsed;
};

/** Counts '\n' in the first `offset` bytes and checks that `offset` starts a line. */
core::Result<std::uint64_t> lines_before(ByteReader &reader, std::uint64_t offset,
                                         const std::string &path) {
  std::string buf(k_chunk, '\0');
  std::uint64_t done = 0;
  std::uint64_t lines = 0;
  char last = '\n';
  while (done < offset) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(k_chunk, offset - done));
    MAILDSAR_TRY_ASSIGN(std::size_t got, reader.read(buf.data(), want));
    if (got == 0) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("maillog {}: offset {} is past the end of the file", path,
                                    offset));
    }
    lines += static_cast<std::uint64_t>(std::count(buf.data(), buf.data() + got, '\n'));
    last = buf[got - 1];
    done += got;
  }
  if (last != '\n') {
    return core::fail(core::ErrorCode::data,
                      fmt::format("maillog {}: offset {} is not at the start of a line", path,
                                  offset));
  }
  return lines;
}

class MaillogConnector final : public Connector {
public:
  MaillogConnector(core::SourceConfig source, LogFormat format)
      : m_source(std::move(source)), m_format(format) {}

  [[nodiscard]] StoreKind kind() const override { return StoreKind::maillog; }
  [[nodiscard]] bool supports_append() const override { return true; }

  [[nodiscard]] core::Result<std::vector<FileEntry>> list_files(ItemSink &errors) const override {
    MAILDSAR_TRY_ASSIGN(auto matches, core::expand_glob(m_source.path));
    std::vector<FileEntry> out;
    for (auto &m : matches) {
      auto st = core::lstat_file(m.path);
      if (!st) {
        errors.error(ScanError{m.path, "", st.error().message});
        continue;
      }
      if (S_ISLNK(st->mode)) {
        errors.error(ScanError{m.path, "", "symbolic link skipped"});
        continue;
      }
      if (!S_ISREG(st->mode)) {
        if (!S_ISDIR(st->mode)) {
          errors.error(ScanError{m.path, "", "not a regular file, skipped"});
        }
        continue;
      }
      if (!m_source.root.empty()) {
        std::string root = m_source.root;
        if (root.back() != '/') {
          root += '/';
        }
        if (!starts_with(m.path, root)) {
          errors.error(ScanError{m.path, "", "outside the source root " + m_source.root +
                                                 ", skipped"});
          continue;
        }
      }
      FileEntry e;
      e.path = m.path;
      e.owner = core::expand_owner(m_source.owner, m.captures);
      e.stat = *st;
      out.push_back(std::move(e));
    }
    return out;
  }

  [[nodiscard]] core::Status scan(const FileEntry &file, std::uint64_t from_offset,
                                  ItemSink &sink) const override {
    try {
      return scan_impl(file, from_offset, sink);
    } catch (...) {
      return std::unexpected(core::error_from_current_exception("maillog " + file.path + ": "));
    }
  }

private:
  core::Status scan_impl(const FileEntry &file, std::uint64_t from_offset, ItemSink &sink) const {
    MAILDSAR_TRY_ASSIGN(ByteReader reader, ByteReader::open(file.path));
    std::int64_t mtime_ns = file.stat.mtime_ns;
    if (mtime_ns == 0 && !reader.compressed()) {
      if (auto st = core::fstat_fd(reader.fd(), file.path)) {
        mtime_ns = st->mtime_ns;
      }
    } else if (mtime_ns == 0) {
      if (auto st = core::lstat_file(file.path)) {
        mtime_ns = st->mtime_ns;
      }
    }
    std::uint64_t line_no = 0;
    if (from_offset > 0) {
      if (reader.compressed()) {
        return core::fail(core::ErrorCode::data,
                          fmt::format("maillog {}: a compressed log cannot be read from offset {}",
                                      file.path, from_offset));
      }
      MAILDSAR_TRY(reader.seek(0));
      MAILDSAR_TRY_ASSIGN(line_no, lines_before(reader, from_offset, file.path));
      // Transactions that began before the offset are split: the new lines of such a queue id
      // become an item of their own (same queue id, only the new line numbers).
    } else if (!reader.compressed()) {
      MAILDSAR_TRY(reader.seek(0));
    }
    FileScanner scanner(m_source, m_format, file.path, mtime_ns / 1000000000, sink);
    std::string buf(k_chunk, '\0');
    std::string line;
    bool overlong = false;
    auto finish_line = [&]() {
      ++line_no;
      if (overlong) {
        sink.error(ScanError{file.path, fmt::format("line {}", line_no),
                             fmt::format("line longer than {} bytes skipped", k_max_line)});
      } else {
        scanner.line(line_no, line);
      }
      line.clear();
      overlong = false;
    };
    for (;;) {
      auto got = reader.read(buf.data(), buf.size());
      if (!got) {
        if (got.error().code == core::ErrorCode::data) { // damaged gzip: keep what was read
          sink.error(ScanError{file.path, fmt::format("line {}", line_no + 1),
                               got.error().message});
          break;
        }
        return std::unexpected(got.error());
      }
      if (*got == 0) {
        break;
      }
      string_view chunk(buf.data(), *got);
      while (!chunk.empty()) {
        std::size_t nl = chunk.find('\n');
        string_view part = chunk.substr(0, nl);
        if (!overlong) {
          if (line.size() + part.size() > k_max_line) {
            overlong = true;
            line.clear();
            line.shrink_to_fit();
          } else {
            line.append(part);
          }
        }
        if (nl == string_view::npos) {
          break;
        }
        finish_line();
        chunk.remove_prefix(nl + 1);
      }
    }
    if (!line.empty() || overlong) {
      finish_line(); // last line without a newline
    }
    scanner.finish();
    return {};
  }

  core::SourceConfig m_source;
  LogFormat m_format;
};

} // namespace

core::Result<std::unique_ptr<Connector>> make_maillog_connector(const core::SourceConfig &source) {
  auto format = format_from_string(source.format);
  if (!format) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': unknown maillog format '{}'", source.name,
                                  source.format),
                      "formats are postfix, exim, sendmail, exchange, syslog and auto");
  }
  return std::make_unique<MaillogConnector>(source, *format);
}

core::Result<std::string> content_fingerprint(const std::string &path) {
  MAILDSAR_TRY_ASSIGN(std::string head, read_content_head(path));
  return core::sha256_hex(head);
}

core::Result<std::string> read_content_head(const std::string &path) {
  MAILDSAR_TRY_ASSIGN(ByteReader reader, ByteReader::open(path));
  if (!reader.compressed()) {
    MAILDSAR_TRY(reader.seek(0));
  }
  std::string data(k_fingerprint_bytes, '\0');
  std::size_t have = 0;
  while (have < data.size()) {
    auto got = reader.read(data.data() + have, data.size() - have);
    if (!got) {
      return std::unexpected(got.error().with_context("maillog " + path + ": "));
    }
    if (*got == 0) {
      break;
    }
    have += *got;
  }
  data.resize(have);
  return data;
}

core::Result<ContentProbe> probe_content(const std::string &path, std::uint64_t mark) {
  static_assert(k_content_probe_bytes == k_fingerprint_bytes);
  MAILDSAR_TRY_ASSIGN(ByteReader reader, ByteReader::open(path));
  ContentProbe probe;
  probe.compressed = reader.compressed();
  auto window_start = [](std::uint64_t end) {
    return end > k_fingerprint_bytes ? end - k_fingerprint_bytes : 0;
  };
  if (!reader.compressed()) {
    MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(reader.fd(), path));
    probe.size = st.size;
    auto read_hash = [&](std::uint64_t end) -> core::Result<std::string> {
      std::uint64_t start = window_start(end);
      MAILDSAR_TRY_ASSIGN(std::string bytes, core::read_range(reader.fd(), start, end - start, path));
      if (bytes.size() != end - start) {
        return core::fail(core::ErrorCode::data,
                          fmt::format("maillog {}: shorter than {} bytes", path, end));
      }
      return core::sha256_hex(bytes);
    };
    MAILDSAR_TRY_ASSIGN(probe.head,
                        core::read_range(reader.fd(), 0,
                                         std::min<std::uint64_t>(k_fingerprint_bytes, probe.size),
                                         path));
    std::uint64_t at = mark == k_content_end ? probe.size : mark;
    if (at <= probe.size) {
      MAILDSAR_TRY_ASSIGN(probe.mark_fingerprint, read_hash(at));
    }
    MAILDSAR_TRY_ASSIGN(probe.end_fingerprint, read_hash(probe.size));
    return probe;
  }
  // Compressed: stream it, keeping the last 4096 bytes before each chunk.
  std::string buf(k_chunk, '\0');
  std::string window; // bytes [pos - window.size(), pos)
  std::uint64_t pos = 0;
  for (;;) {
    auto got = reader.read(buf.data(), buf.size());
    if (!got) {
      return std::unexpected(got.error().with_context("maillog " + path + ": "));
    }
    if (*got == 0) {
      break;
    }
    std::string_view chunk(buf.data(), *got);
    if (probe.head.size() < k_fingerprint_bytes) {
      probe.head.append(chunk.substr(0, k_fingerprint_bytes - probe.head.size()));
    }
    std::string combined = window;
    combined.append(chunk);
    std::uint64_t start = pos - window.size(); // offset of combined[0]
    std::uint64_t end = pos + *got;
    if (mark != k_content_end && mark > pos && mark <= end) {
      std::uint64_t from = window_start(mark);
      probe.mark_fingerprint = core::sha256_hex(std::string_view(combined).substr(
          static_cast<std::size_t>(from - start), static_cast<std::size_t>(mark - from)));
    }
    pos = end;
    std::size_t keep = std::min<std::size_t>(combined.size(), k_fingerprint_bytes);
    window.assign(combined, combined.size() - keep, keep);
  }
  probe.size = pos;
  probe.end_fingerprint = core::sha256_hex(window);
  if (mark == 0) {
    probe.mark_fingerprint = core::sha256_hex(std::string_view());
  } else if (mark == k_content_end) {
    probe.mark_fingerprint = probe.end_fingerprint;
  }
  return probe;
}

} // namespace maildsar::connectors
