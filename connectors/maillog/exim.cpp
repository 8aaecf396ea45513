// SPDX-License-Identifier: GPL-3.0-or-later
// Exim main log and reject log (own timestamps, or via syslog with tag "exim"): lines of one
// message id are a transaction, closed by "ID Completed". The reject log continues an entry with a
// header dump on unprefixed lines.
#include "connectors/maillog/format.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

namespace maildsar::connectors::maillog {

using std::string_view;

namespace {

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

bool claims(const Prefix &pre) {
  return pre.kind == Prefix::Kind::exim_native || starts_with(pre.tag, "exim");
}

void parse(const Prefix &pre, string_view /*line*/, LineInfo &info) { parse_exim(pre.msg, info); }

} // namespace

const SyslogProgram &exim_program() {
  static const SyslogProgram k_program{"exim", true, true, claims, parse};
  return k_program;
}

} // namespace maildsar::connectors::maillog
