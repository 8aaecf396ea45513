// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/maillog/transaction.hpp"

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace maildsar::connectors::maillog {

using std::string_view;

namespace {

/** How a key's values are used, in the order extract_common applies them. */
enum class Use : std::uint8_t { from, to, user, client, ip, message_id };

struct Key {
  string_view name; // without the '='
  Use use;
  bool all;         // every value (else the first)
};

// The order is the order in which values are applied (first from=, then to=, ...).
constexpr std::array<Key, 13> k_keys{{
    {"from", Use::from, true},
    {"to", Use::to, true},
    {"orig_to", Use::to, true},
    {"sasl_username", Use::user, true},
    {"user", Use::user, true},
    {"set_id", Use::user, true},
    {"authentication_id", Use::user, true},
    {"us", Use::user, true},
    {"client", Use::client, false},
    {"rip", Use::ip, false},
    {"ip", Use::ip, false},
    {"message-id", Use::message_id, false},
    {"msgid", Use::message_id, false},
}};
constexpr std::size_t k_longest_key = 17; // "authentication_id"

[[nodiscard]] bool is_key_char(char c) { return is_alpha(c) || c == '_' || c == '-'; }

/** The index in k_keys of `word`, or k_keys.size(). */
[[nodiscard]] std::size_t key_index(string_view word) {
  for (std::size_t i = 0; i < k_keys.size(); ++i) {
    if (k_keys[i].name == word) {
      return i;
    }
  }
  return k_keys.size();
}

struct Found {
  std::uint8_t key;
  string_view value;
};

/**
 * Every `key=value` of k_keys in `msg`, as field()/fields() would find them, in one pass over
 * the '=' signs: a key is the whole run of letters, '_' and '-' before a '=', at the start or
 * after a field boundary; a key's next value is looked for after the end of its previous one.
 */
void collect_fields(string_view msg, std::vector<Found> &out) {
  std::array<std::size_t, k_keys.size()> resume{};
  std::array<bool, k_keys.size()> done{};
  for (std::size_t e = msg.find('='); e != string_view::npos; e = msg.find('=', e + 1)) {
    std::size_t k = e;
    while (k > 0 && e - k <= k_longest_key && is_key_char(msg[k - 1])) {
      --k;
    }
    if (k == e || e - k > k_longest_key || (k > 0 && !is_field_boundary(msg[k - 1]))) {
      continue;
    }
    const std::size_t i = key_index(msg.substr(k, e - k));
    if (i == k_keys.size() || done[i] || k < resume[i]) {
      continue;
    }
    const string_view value = field_value(msg, e + 1);
    out.push_back(Found{static_cast<std::uint8_t>(i), value});
    resume[i] = static_cast<std::size_t>(value.data() - msg.data()) + value.size();
    done[i] = !k_keys[i].all;
  }
}

} // namespace

/** Identities every kind of line may carry as key=value (generic extraction). */
void extract_common(string_view msg, Txn &t) {
  thread_local std::vector<Found> found;
  found.clear();
  collect_fields(msg, found);
  for (std::size_t i = 0; i < k_keys.size(); ++i) {
    for (const Found &f : found) {
      if (f.key != i) {
        continue;
      }
      string_view val = f.value;
      switch (k_keys[i].use) {
      case Use::from:
        t.add_address(Role::log_from, val);
        break;
      case Use::to:
        t.add_address(Role::log_to, val);
        break;
      case Use::user:
        t.add_address(Role::log_user, val);
        break;
      case Use::client:
        if (auto ip = bracket_ip(val)) {
          t.add_ip(Role::log_client, *ip);
        } else {
          t.add_ip(Role::log_client, val);
        }
        break;
      case Use::ip:
        if (!val.empty() && val.front() == '[') {
          // courier: ip=[::ffff:1.2.3.4]
          const auto at = static_cast<std::size_t>(val.data() - msg.data());
          if (std::size_t e = msg.find(']', at); e != string_view::npos) {
            val = msg.substr(at, e + 1 - at);
          }
        }
        t.add_ip(Role::log_client, val);
        break;
      case Use::message_id:
        t.set_message_id(val);
        break;
      }
    }
  }
  if (auto v = field(msg, "Message-ID: ")) {
    t.set_message_id(*v);
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
