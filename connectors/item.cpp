// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/item.hpp"

#include <fmt/format.h>

namespace maildsar::connectors {

namespace {

constexpr std::array<std::string_view, 9> k_store_names{"maildir",   "mbox",          "pst",
                                                        "quarantine", "maillog",       "emlfolder",
                                                        "postfix-queue", "exim-spool", "archive"};

/** A member path with '%', '#' and '@' percent-encoded, so "path#member@offset" splits one way. */
std::string escape_member(std::string_view member) {
  std::string out;
  out.reserve(member.size());
  for (char c : member) {
    if (c == '%' || c == '#' || c == '@') {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out;
}

constexpr std::array<std::string_view, k_role_count> k_role_names{
    "from",          "to",          "cc",         "bcc",        "reply-to",
    "sender",        "delivered-to", "return-path", "received",  "subject",
    "body",          "attachment-name", "attachment-body", "envelope-from", "envelope-to",
    "log-from",      "log-to",      "log-client", "log-user",   "resent-from",
    "resent-to",     "resent-cc",   "resent-bcc", "resent-sender", "notification",
    "header",        "owner"};

} // namespace

std::string_view to_string(StoreKind kind) { return k_store_names.at(static_cast<std::size_t>(kind)); }

std::optional<StoreKind> store_kind_from_string(std::string_view name) {
  for (std::size_t i = 0; i < k_store_names.size(); ++i) {
    if (k_store_names[i] == name) {
      return static_cast<StoreKind>(i);
    }
  }
  return std::nullopt;
}

std::string_view to_string(Role role) { return k_role_names.at(static_cast<std::size_t>(role)); }

std::optional<Role> role_from_string(std::string_view name) {
  for (std::size_t i = 0; i < k_role_names.size(); ++i) {
    if (k_role_names[i] == name) {
      return static_cast<Role>(i);
    }
  }
  return std::nullopt;
}

std::string Locator::key() const {
  switch (store) {
  case StoreKind::maildir:
  case StoreKind::postfix_queue: // one queued message per queue file
  case StoreKind::exim_spool:    // the -H file names the message (its -D file goes with it)
    return path;
  case StoreKind::quarantine: // a quarantine file may be an mbox that amavis appends to
  case StoreKind::emlfolder:  // as may a file of a folder of loose messages
    return length > 0 ? fmt::format("{}@{}", path, offset) : path;
  case StoreKind::mbox: // the message's number, not its offset: stable when bytes before it go
    return fmt::format("{}@#{}", path, seq);
  case StoreKind::pst:
    return fmt::format("{}#{}", path, node_id);
  case StoreKind::maillog:
    return fmt::format("{}#{}@{}", path, queue_id, lines.empty() ? 0 : lines.front());
  case StoreKind::archive: // a member; an mbox member's message adds its offset, a PST member's item its node
    if (node_id != 0) {
      return fmt::format("{}#{}#{}", path, escape_member(member), node_id);
    }
    return length > 0 ? fmt::format("{}#{}@{}", path, escape_member(member), offset)
                      : fmt::format("{}#{}", path, escape_member(member));
  }
  return path;
}

} // namespace maildsar::connectors
