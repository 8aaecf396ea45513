// SPDX-License-Identifier: GPL-3.0-or-later
// Sendmail (tags sendmail, sm-mta, sm-msp-queue, ...): lines of one queue id are a transaction;
// from=/to=/ctladdr=/relay= and the ruleset reject lines name the identities.
#include "connectors/maillog/format.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

namespace maildsar::connectors::maillog {

using std::string_view;

namespace {

bool is_sendmail_qid(string_view t) {
  return t.size() >= 8 && t.size() <= 20 && std::all_of(t.begin(), t.end(), is_alnum) &&
         std::any_of(t.begin(), t.end(), is_digit) && std::any_of(t.begin(), t.end(), is_alpha);
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

bool claims(const Prefix &pre) {
  return starts_with(pre.tag, "sendmail") || starts_with(pre.tag, "sm-");
}

void parse(const Prefix &pre, string_view /*line*/, LineInfo &info) {
  parse_sendmail(pre.msg, info);
}

} // namespace

const SyslogProgram &sendmail_program() {
  static const SyslogProgram k_program{"sendmail", true, false, claims, parse};
  return k_program;
}

} // namespace maildsar::connectors::maillog
