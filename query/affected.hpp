// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * Breach scoping (issue 16 item 5, Art. 33/34): every data subject whose data is in a selection
 * of items — a source, a folder, a date range — read from the index: per normalised identifier
 * (address, name, phone, IP) the items it is in, its roles, the categories of data and the
 * first and last date. Delivery-log blocks are read again (query/log_blocks.hpp) so each
 * transaction counts as one item with its own identities and date.
 */
#include "core/config.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace maildsar::query {

/** Which items: all conditions hold (an empty list / glob: no condition). */
struct AffectedSelection {
  std::vector<std::string> sources; // source names
  std::string folder_glob;          // fnmatch(3) against the item's folder or its path
  std::optional<std::int64_t> since; // item date >= since (seconds, UTC)
  std::optional<std::int64_t> until; // item date < until
};

/** One identifier found in the selection. */
struct AffectedIdentifier {
  std::string kind;       // email | name | phone | ip
  std::string identifier; // normalised: addr-spec, folded name tokens, E.164, canonical IP
  std::uint64_t items = 0;
  std::set<std::string> roles;
  std::set<std::string> categories; // mail-content | delivery-record | quarantine
  std::optional<std::int64_t> first;
  std::optional<std::int64_t> last;
  /** The person this identifier is grouped with (1, 2, ...): names and the addresses a display
      name was given with in any selected item are one person (discovery's display-name link);
      0: linked to no other identifier. */
  std::uint64_t person = 0;
};

struct AffectedReport {
  std::vector<AffectedIdentifier> identifiers; // by kind, then identifier
  std::uint64_t items = 0;                     // items selected
  std::uint64_t people = 0;                    // groups of linked identifiers (`person`)
  std::map<std::string, std::uint64_t> items_per_category;
  std::uint64_t undated_excluded = 0; // items without a date left out by --since/--until
  std::uint64_t evidence_capped = 0;  // items whose stored identities were capped (see schemata)
  std::uint64_t truncated = 0;        // items indexed only in part
};

/** The category of data of a store kind name ("maildir" -> "mail-content"). */
[[nodiscard]] std::string category_of_store(std::string_view store);

/**
 * Scans the index for the selection.
 * @errors the index's and the logs' read errors; ErrorCode::temp_fail when a log changed since
 *         it was indexed.
 */
[[nodiscard]] core::Result<AffectedReport> affected(const core::Config &config, const AffectedSelection &selection);

} // namespace maildsar::query
