// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/maillog/prefix.hpp"

#include "connectors/maillog/text.hpp"

#include <algorithm>
#include <cstddef>

namespace maildsar::connectors::maillog {

using std::string_view;

namespace {

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

} // namespace

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

} // namespace maildsar::connectors::maillog
