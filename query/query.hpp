// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/item.hpp"
#include "core/config.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace maildsar::query {

/** Who a request is about (DESIGN §4 subject file, or --email/--name/--phone/--ip). */
struct SubjectProfile {
  std::string request; // e.g. "DSAR-2026-0042", may be empty
  std::vector<std::string> emails;
  std::vector<std::string> names;
  std::vector<std::string> phones;
  std::vector<std::string> ips;

  [[nodiscard]] bool empty() const {
    return emails.empty() && names.empty() && phones.empty() && ips.empty();
  }
};

/** Reads a subject JSON file; unknown keys and wrong types are ErrorCode::data errors. */
[[nodiscard]] core::Result<SubjectProfile> load_subject(const std::string &path);
[[nodiscard]] core::Result<SubjectProfile> parse_subject(std::string_view json_text,
                                                         const std::string &path_for_errors);

/** One identifier of the subject that matched an item, and in which roles. */
struct Match {
  std::string identifier; // as the DPO gave it
  std::string kind;       // email | name | phone | ip
  std::vector<std::string> roles;
  /** Header fields the identifier was seen in, as written ("Received", "X-Original-To"), for
      the roles that keep their field (received, envelope-*, resent-*, notification, header). */
  std::vector<std::string> fields = {};
};

/** One item held for the subject. */
struct Hit {
  std::string id; // stable item id (hex)
  connectors::Locator locator;
  std::string message_id;
  std::optional<std::int64_t> date;
  std::string subject;
  std::string sha256;
  std::vector<Match> matched;
  /** What was cut at a limit while indexing (docs/reliability.md); empty = indexed whole. */
  std::vector<std::string> truncated = {};
  /** Identities left out of the item's stored evidence (limits.max_addresses_per_role); its
      terms are all indexed, so it is found, and the roles of a match come from the terms. */
  std::uint64_t evidence_capped = 0;
  /** The completed erasure requests whose subject this item shows although it was indexed
      after them (a restore; indexer/suppression.hpp): marked `suppressed` until handled. */
  std::vector<std::string> suppressed = {};
  /** The item's correspondents as its stored evidence holds them: (role, normalised address)
      for the roles from, sender, reply-to, to, cc and bcc, in that order (approval summaries). */
  std::vector<std::pair<std::string, std::string>> correspondents = {};
};

/**
 * Every item the index holds for the subject, in (source, path, position) order. An empty
 * index or no index yet is not an error (zero hits); an unreadable index is.
 */
[[nodiscard]] core::Result<std::vector<Hit>> find(const core::Config &config,
                                                  const SubjectProfile &subject);

/**
 * Every item the index holds that was indexed only in part (cut at a limit, XTRUNC:1), with its
 * notes in Hit::truncated and no matches. `verify` refuses to certify while there are any.
 */
[[nodiscard]] core::Result<std::vector<Hit>> truncated_items(const core::Config &config);

/**
 * The items of the index with these ids (Hit::id) in `source`, as hits without matches; ids
 * that name no document (a log transaction: its block is the document; an item gone) are
 * left out.
 */
[[nodiscard]] core::Result<std::vector<Hit>> items_by_id(const core::Config &config,
                                                         const std::vector<std::pair<std::string, std::string>> &source_ids);

/**
 * Every item the index holds that is flagged by suppression on restore (XSUPP:) for `request`,
 * or for any request when it is empty, each with Hit::suppressed and no matches.
 */
[[nodiscard]] core::Result<std::vector<Hit>> suppressed_items(const core::Config &config,
                                                              const std::string &request = {});

} // namespace maildsar::query
