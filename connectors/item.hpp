// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors {

/** The kind of store an item lives in (DESIGN §3). */
enum class StoreKind { maildir, mbox, pst, quarantine, maillog, emlfolder, postfix_queue, exim_spool, archive };

[[nodiscard]] std::string_view to_string(StoreKind kind);
[[nodiscard]] std::optional<StoreKind> store_kind_from_string(std::string_view name);

/**
 * Where an identity was seen. The names (to_string) are those of DESIGN §3 and of the JSON
 * `roles` arrays.
 */
enum class Role {
  from,
  to,
  cc,
  bcc,
  reply_to,
  sender,
  delivered_to,
  return_path,
  received,
  subject,
  body,
  attachment_name,
  attachment_body,
  envelope_from,
  envelope_to,
  log_from,
  log_to,
  log_client,
  log_user,
  resent_from,
  resent_to,
  resent_cc,
  resent_bcc,
  resent_sender,
  notification, // Disposition-Notification-To, Return-Receipt-To, Errors-To
  header,       // any other header field; the field name goes with the evidence
  owner,
};
inline constexpr std::size_t k_role_count = static_cast<std::size_t>(Role::owner) + 1;

[[nodiscard]] std::string_view to_string(Role role); // "from", "reply-to", "log-client", ...
[[nodiscard]] std::optional<Role> role_from_string(std::string_view name);

/** Exactly where an item lives. */
struct Locator {
  std::string source;                 // source name from the config
  StoreKind store = StoreKind::maildir;
  std::string path;                   // absolute path of the file holding the item
  std::string folder;                 // maildir: sub-folder ("" = inbox, ".Sent"); pst: folder path
  /** maildir: where in its folder the file lies: "" (cur/ or new/), "stray" (in the folder
      itself, outside cur/ and new/) or "tmp" (an abandoned delivery in tmp/). Not part of key():
      the path says it too. */
  std::string mark;
  std::uint64_t offset = 0;           // mbox: byte offset of the "From " line
  std::uint64_t length = 0;           // mbox: bytes up to the next separator (or EOF)
  /** mbox: the message's number in its file, given by the indexer when it first read it (0, 1,
      ... in file order; appended messages go on from the file's next number) and kept when
      bytes before it are erased: the key holds it, not the offset, so an erasure changes only
      the erased items' documents. Where the message lies now (offset, length) the catalog says
      (indexer/catalog.hpp, ItemRecord); a connector's scan leaves it 0. */
  std::uint64_t seq = 0;
  std::uint64_t node_id = 0;          // pst: descriptor node id
  std::string queue_id;               // maillog: queue id / message id / session key; MTA queues:
                                      // the Postfix queue id or Exim message id
  std::vector<std::uint64_t> lines;   // maillog: 1-based line numbers in `path`
  /** archive: the member's path inside the archive file `path`, as the archive names it; an
      mbox member's message adds offset and length inside the member's content. */
  std::string member;

  /** A stable string unique within the source: "path", "path@offset", "path#node", "path@#seq" (mbox),
      "path#member", "path#member@offset", "path#member#node" (archive; '%', '#' and '@' of the member percent-encoded), ... */
  [[nodiscard]] std::string key() const;
};

/** True when the item is a whole file that holds one message (a quarantine or emlfolder file
    that is not an mbox): erased by removing the file. */
[[nodiscard]] inline bool is_message_file(const Locator &locator) {
  return (locator.store == StoreKind::quarantine || locator.store == StoreKind::emlfolder) && locator.length == 0;
}


/** An address seen in a header or envelope: decoded display name and the raw addr-spec. */
struct RawAddress {
  Role role = Role::from;
  std::string name;  // UTF-8, decoded (RFC 2047), may be empty
  std::string addr;  // addr-spec as written (decoded), may be empty when only a name is known
  std::string field = {}; // header field name as written ("X-To"); empty for classic roles
};

/** What the indexer looks for in a RawText. */
enum class TextScan {
  full,      // addresses, phones, IPs and name/text tokens (bodies, subjects, attachments)
  addresses, // e-mail addresses only (header field values: Received, X-*, List-*, ...)
};

/** Free text in which the indexer looks for addresses, phones, IPs and name phrases. */
struct RawText {
  Role role = Role::body;
  std::string text;  // UTF-8
  std::string field = {}; // header field name as written, for header values; the attachment's
                          // file name for attachment_body texts; else empty
  TextScan scan = TextScan::full;
};

/** An IP literal seen in a role (Received header, log client=). */
struct RawValue {
  Role role = Role::received;
  std::string value;
};

/**
 * One unit of personal data as a connector read it: raw, decoded evidence. The indexer does
 * identity extraction and normalisation.
 */
struct Item {
  Locator locator;
  std::string sha256;                   // hex SHA-256 of the item's bytes at the locator
  std::string message_id;               // without angle brackets; empty if none
  std::optional<std::int64_t> date;     // seconds since the epoch (UTC)
  std::string subject;                  // decoded, UTF-8
  std::vector<RawAddress> addresses;
  std::vector<RawValue> ips;
  std::vector<RawText> texts;
  std::vector<std::string> warnings;    // non-fatal decoding problems (counted, logged)
  /** Problems with a part that leave the rest of the item indexable (an attachment whose text
      could not be extracted: crash, limit, broken file). The indexer reports each as one
      ScanError and still indexes the item. */
  std::vector<std::string> problems;
  /** Hex SHA-256 of the attachments whose extracted text is in the attachment-text cache (the
      index keeps them so that compact_state can drop the entries of erased items). */
  std::vector<std::string> attachment_hashes;
  /** What was cut at a limit (connectors/limits.hpp): the item is indexed only in part. `index`
      reports each note as a warning; its hits carry `truncated` (docs/reliability.md). */
  std::vector<std::string> truncated;
  /** What was split at a limit with nothing left out (a log transaction indexed as several
      parts): `index` reports each note as a warning; `verify` is not affected. */
  std::vector<std::string> bounded;
};

} // namespace maildsar::connectors
