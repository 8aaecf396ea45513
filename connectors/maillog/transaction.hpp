// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// A log transaction as the formats' parsers fill it: the lines of one queue id / message id /
// session, and the identities they name.

#include "connectors/item.hpp"
#include "connectors/maillog/text.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace maildsar::connectors::maillog {

struct Txn {
  std::string queue_id;
  std::vector<std::uint64_t> lines;
  std::vector<std::uint64_t> line_begins; // where each line begins (LogSpan::line_begins)
  std::string raw; // the lines joined with '\n'
  std::optional<std::int64_t> date;
  std::string message_id;
  /** Tokens of the lines that name nobody, blanked from the identity text like the Message-ID
      (amavis's "(PID-NN)" log id): digit runs a phone-number scan would otherwise weigh. */
  std::vector<std::string> log_ids;
  std::string subject;
  std::vector<RawAddress> addresses;
  std::vector<RawValue> ips;
  // Bounds (limits.max_addresses_per_role): what merge() has seen, and what it left out.
  std::unordered_set<std::string> seen;  // role + '\0' + value, addresses and IPs
  std::array<std::uint64_t, k_role_count> kept{};
  std::uint64_t dropped = 0;
  std::uint64_t part = 0;                // 0 = whole; 1, 2, ... = split at a limit
  std::uint64_t continues_at = 0;        // split: the line where the next part starts
  /** Emitted at the open-transactions budget: one note for the whole split (in `note`, on the
      first part emitted), not one per part, so a million open queue ids give one warning, not a
      million. (A queue id that goes on later is a part with a note of its own.) */
  bool budget_split = false;
  std::string note;
  /** Decompressed bytes [begin, end) of the file hold all its lines (connectors::LogSpan). */
  std::uint64_t begin = 0;
  std::uint64_t end = 0;

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

  void add_address(Role role, std::string_view value) {
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
  void add_ip(Role role, std::string_view value) {
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
  /** Most log_ids one transaction keeps (the rest are merely scanned like any text). */
  static constexpr std::size_t k_max_log_ids = 16;
  void add_log_id(std::string_view value) {
    if (value.empty() || log_ids.size() >= k_max_log_ids ||
        std::find(log_ids.begin(), log_ids.end(), value) != log_ids.end()) {
      return;
    }
    log_ids.emplace_back(value);
  }
  void set_message_id(std::string_view value) {
    value = trim(value);
    if (!value.empty() && value.front() == '<') {
      value.remove_prefix(1);
      if (auto e = value.find('>'); e != std::string_view::npos) {
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

/** Identities every kind of line may carry as key=value (generic extraction). */
void extract_common(std::string_view msg, Txn &t);

} // namespace maildsar::connectors::maillog
