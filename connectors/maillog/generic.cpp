// SPDX-License-Identifier: GPL-3.0-or-later
// Lines no registered program claims: content filters (amavis "[ip]:port [ip] <from> -> <to>",
// MailScanner "Message QID from 1.2.3.4 (sender@x)") and any key=value line. Such lines have no
// transaction key: each that names someone is an item of its own.
#include "connectors/maillog/format.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace maildsar::connectors::maillog {

using std::string_view;

namespace {

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

/**
 * amavisd-new's log id at the start of its messages: "(PID-NN)", or "(PID-NN-M)" for the M-th
 * message of one SMTP session. It names nobody; the scanner blanks it from the identity text.
 */
std::optional<string_view> amavis_log_id(string_view msg) {
  if (msg.size() < 5 || msg.front() != '(') {
    return std::nullopt;
  }
  std::size_t i = 1;
  std::size_t groups = 0;
  while (groups < 3) {
    const std::size_t start = i;
    while (i < msg.size() && is_digit(msg[i]) && i - start < 10) {
      ++i;
    }
    if (i == start || i >= msg.size()) {
      return std::nullopt;
    }
    ++groups;
    if (msg[i] == ')') {
      return groups >= 2 ? std::optional<string_view>(msg.substr(0, i + 1)) : std::nullopt;
    }
    if (msg[i] != '-') {
      return std::nullopt;
    }
    ++i;
  }
  return std::nullopt;
}

bool claims(const Prefix & /*pre*/) { return true; }

void parse(const Prefix &pre, string_view /*line*/, LineInfo &info) {
  parse_other(pre.msg, info.found);
  if (starts_with(pre.tag, "amavis")) {
    if (auto id = amavis_log_id(pre.msg)) {
      info.found.add_log_id(*id);
    }
  }
}

} // namespace

const SyslogProgram &generic_program() {
  static const SyslogProgram k_program{"other", false, false, claims, parse};
  return k_program;
}

} // namespace maildsar::connectors::maillog
