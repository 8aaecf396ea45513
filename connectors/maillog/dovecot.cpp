// SPDX-License-Identifier: GPL-3.0-or-later
// Dovecot (via syslog, or its own log_path file): lines of one session ("session=<S>",
// "lmtp(user)<pid><S>") are a transaction, closed by "Logged out", "Disconnected", "Connection
// closed" or "Aborted login", a delivery's by its result ("saved mail to"); login, delivery and
// passdb lines name users and client IPs.
#include "connectors/maillog/format.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

namespace maildsar::connectors::maillog {

using std::string_view;

namespace {

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
  bool delivery = false;
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
    delivery = svc == "lmtp(" || svc == "lda(" || svc == "deliver(";
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
  // The session ends: "imap(u)<pid><S>: Logged out ...", "... Disconnected: ...", "imap-login:
  // Disconnected (auth failed ...) ..., session=<S>", "imap-login: Aborted login ..."; a
  // delivery's ends with its result ("lmtp(u)<pid><S>: msgid=<m>: saved mail to INBOX", "sieve:
  // ... stored mail into mailbox"). Without this a busy server's sessions would all stay open
  // until the open-transactions budget splits them into parts.
  if (!info.key.empty()) {
    static constexpr std::array<string_view, 4> k_session_ends{": Logged out", ": Disconnected",
                                                               ": Connection closed", ": Aborted login"};
    static constexpr std::array<string_view, 4> k_delivery_ends{": saved mail to ", "stored mail into mailbox",
                                                                ": rejected: ", ": discarded"};
    const auto ends = [&](const auto &marks) {
      return std::ranges::any_of(marks, [&](string_view m) { return msg.find(m) != string_view::npos; });
    };
    info.closes = ends(k_session_ends) || (delivery && ends(k_delivery_ends));
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

bool claims(const Prefix &pre) {
  const string_view tag = pre.tag;
  if (starts_with(tag, "dovecot")) {
    return true;
  }
  // dovecot's own log file (log_path): "imap-login: Info: ...", "lmtp(user)<pid><session>: ..."
  for (auto p : {"imap-login", "pop3-login", "managesieve-login", "submission-login", "lmtp(",
                 "lda(", "deliver(", "imap(", "pop3(", "auth-worker(", "auth:"}) {
    if (starts_with(tag, p)) {
      return true;
    }
  }
  if (tag.empty() || tag == "-") {
    for (auto p : {"imap-login:", "pop3-login:", "managesieve-login:", "submission-login:",
                   "lmtp(", "lda(", "deliver(", "imap(", "pop3(", "dovecot"}) {
      if (starts_with(pre.msg, p)) {
        return true;
      }
    }
  }
  return false;
}

void parse(const Prefix &pre, string_view line, LineInfo &info) {
  // the service part ("lmtp(user)<pid><session>") may have been taken for the tag
  parse_dovecot(pre.tag.empty() || starts_with(pre.tag, "dovecot")
                    ? pre.msg
                    : line.substr(static_cast<std::size_t>(pre.tag.data() - line.data())),
                info);
}

} // namespace

const SyslogProgram &dovecot_program() {
  static const SyslogProgram k_program{"dovecot", false, false, claims, parse};
  return k_program;
}

} // namespace maildsar::connectors::maillog
