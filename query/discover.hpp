// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * Identity discovery (issue 16 item 4): from the index, read-only, the identifiers that are
 * probably the subject's too, each with its evidence and a score, for a person to confirm at
 * intake. Nothing is added by discovery itself (`discover --add` writes what a person chose).
 *
 * Evidence rules (each counts distinct items; docs/cli.md "discover"):
 *  - display-name: another address under the subject's name ("Jane Doe <jane.doe@b.example>");
 *  - reply-to: the Reply-To of a message sent from one of the subject's addresses;
 *  - mailbox: an address mail was delivered to (Delivered-To, envelope recipient) in a mailbox
 *    the subject owns (a source's `owner`), or the From of its Sent folders;
 *  - signature: an address or phone number in the body of messages the subject sent (from one
 *    of their addresses, or under their name) — where signatures are;
 *  - subaddress: an address of the subject's local part and domain with a separator the config
 *    does not fold (`jane-news@a.example` when only '+' is a separator).
 * Scores: per rule a base that grows with the items (up to 3 more), combined as
 * 1 - prod(1 - s), at most 0.99. Delivery-log blocks are not read (they carry neither names nor Reply-To).
 */
#include "connectors/item.hpp"
#include "core/config.hpp"
#include "core/result.hpp"
#include "indexer/identity.hpp"
#include "query/query.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace maildsar::query {

/** One piece of evidence for a candidate: a rule and the items it was seen in. */
struct DiscoveryEvidence {
  std::string rule; // display-name | reply-to | mailbox | signature | subaddress
  std::uint64_t items = 0;
  double score = 0; // this rule's part of the score
};

/** An identifier proposed as the subject's. */
struct Candidate {
  std::string kind;       // email | phone
  std::string identifier; // normalised as the index holds it
  double score = 0;       // 0..1, rounded to two decimals
  std::vector<DiscoveryEvidence> evidence; // by score, highest first
  std::uint64_t items = 0; // distinct items with any evidence
  std::optional<std::int64_t> first;
  std::optional<std::int64_t> last;
  std::vector<connectors::Locator> examples; // up to two items with evidence
};

struct DiscoveryReport {
  std::vector<Candidate> candidates; // score descending, then kind and identifier
  std::uint64_t items_read = 0;      // index documents examined
};

/**
 * The e-mail addresses (indices into `ids`) that the display name `ids[name]` was given with in
 * an address field ("Jane Doe <jane@a.example>"): the addresses just before it in the same role
 * (Normalizer::extract emits an address, its BATV/SRS unwrapping, then its name). Empty when
 * `ids[name]` is not a name in From, To, Cc, Bcc, Reply-To or Sender. Used by discovery's
 * display-name rule and by `affected` to group a person's identifiers.
 */
[[nodiscard]] std::vector<std::size_t> addresses_named(const std::vector<index::Identity> &ids, std::size_t name);

/** A name identity's value ("smith alice") as its folded tokens sorted: the same person's name
    whatever the order it was written in ("Smith, Alice" / "Alice Smith"). */
[[nodiscard]] std::string name_key_of_value(std::string_view value);

/** Score of one rule seen in `items` distinct items (the table in docs/cli.md). */
[[nodiscard]] double rule_score(std::string_view rule, std::uint64_t items);
/** 1 - prod(1 - s) over `parts`, rounded to two decimals, at most 0.99. */
[[nodiscard]] double combined_score(const std::vector<double> &parts);

/**
 * Proposes identifiers linked to `subject` (its emails, names and phones; IPs are not used).
 * Identifiers the subject already has (after normalisation) are never proposed.
 * @errors usage when the subject has no email or name; the index's read errors.
 */
[[nodiscard]] core::Result<DiscoveryReport> discover(const core::Config &config, const SubjectProfile &subject);

} // namespace maildsar::query
