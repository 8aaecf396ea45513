// SPDX-License-Identifier: GPL-3.0-or-later
// Postfix (and its postscreen, smtpd, qmgr, ... daemons): lines of one queue id are a transaction,
// closed by "QID: removed". Identities come from the key=value fields every line may carry.
#include "connectors/maillog/format.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

namespace maildsar::connectors::maillog {

using std::string_view;

namespace {

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

void parse_postfix(string_view msg, LineInfo &info) {
  extract_common(msg, info.found);
  if (auto qid = leading_id(msg, is_postfix_qid)) {
    info.key = "postfix:" + std::string(*qid);
    info.queue_id = std::string(*qid);
    string_view rest = trim(msg.substr(qid->size() + 1));
    info.closes = rest == "removed";
  }
}

bool claims(const Prefix &pre) { return starts_with(pre.tag, "postfix"); }

void parse(const Prefix &pre, string_view /*line*/, LineInfo &info) {
  parse_postfix(pre.msg, info);
}

} // namespace

const SyslogProgram &postfix_program() {
  static const SyslogProgram k_program{"postfix", true, false, claims, parse};
  return k_program;
}

} // namespace maildsar::connectors::maillog
