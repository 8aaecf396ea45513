// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/maillog/transaction.hpp"

namespace maildsar::connectors::maillog {

using std::string_view;

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

} // namespace maildsar::connectors::maillog
