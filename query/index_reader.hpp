// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Internal to query/: open the index read-only, check its schema, run a lookup, and retry when
// a writer's commit overtakes the reader (Xapian::DatabaseModifiedError).

#include "core/config.hpp"
#include "core/result.hpp"
#include "query/query.hpp"
#include "indexer/document.hpp"
#include "indexer/index_store.hpp"
#include "indexer/indexer.hpp"
#include "indexer/schema.hpp"

#include <xapian.h>

#include <fmt/format.h>

#include <filesystem>
#include <span>
#include <type_traits>
#include <vector>

namespace maildsar::query {

/** A document's unique key term ("Q..."), or "" when it has none. */
inline std::string key_term_of(const Xapian::Document &doc) {
  Xapian::TermIterator it = doc.termlist_begin();
  it.skip_to("Q");
  if (it != doc.termlist_end() && (*it).starts_with("Q")) {
    return *it;
  }
  return {};
}

/** The hit a document stands for (without matches): its key term and its parsed data, whose
    locator, message id, subject and hash move into the hit (its identities stay). */
inline Hit hit_of(const std::string &qterm, index::StoredDocument &stored) {
  Hit hit;
  const auto colon = qterm.rfind(':');
  hit.id = colon == std::string::npos ? qterm : qterm.substr(colon + 1);
  hit.locator = std::move(stored.locator);
  hit.message_id = std::move(stored.message_id);
  hit.date = stored.date;
  hit.subject = std::move(stored.subject);
  hit.sha256 = std::move(stored.sha256);
  hit.truncated = stored.truncated;
  hit.evidence_capped = stored.evidence_capped;
  using connectors::Role;
  for (Role role : {Role::from, Role::sender, Role::reply_to, Role::to, Role::cc, Role::bcc}) {
    for (const index::Identity &id : stored.identities) {
      if (id.kind == index::IdentityKind::email && id.role == role) {
        hit.correspondents.emplace_back(connectors::to_string(role), id.value);
      }
    }
  }
  return hit;
}

/**
 * Sets where each mbox message of `hits` lies now: the offset and length its catalog row says.
 * An mbox document holds the message's number in its file, not its offset (Locator::seq), so
 * that an erasure before it leaves its document alone (indexer/shift.cpp). ErrorCode::not_indexed
 * when the catalog has no row for one (it and the index disagree: `index` repairs that).
 */
[[nodiscard]] core::Status place_mbox_hits(const core::Config &config, std::vector<Hit> &hits);
/** place_mbox_hits() of bare locators (their keys name their catalog rows). */
[[nodiscard]] core::Status place_mbox_locators(const core::Config &config,
                                               std::span<connectors::Locator *const> locators);

/**
 * Runs `lookup(db)` on the last committed state of the index. No index yet: an empty result
 * (nothing is held). `lookup` returns core::Result<std::vector<T>>; hits get their mbox
 * messages' places (place_mbox_hits).
 */
template <class T, class Lookup>
core::Result<std::vector<T>> read_index(const core::Config &config, Lookup &&lookup) {
  constexpr int k_retries = 3;
  const std::string path = index::index_path(config);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return std::vector<T>{};
  }
  const std::string ctx = fmt::format("index {}: ", path);
  for (int attempt = 0;; ++attempt) {
    try {
      Xapian::Database db(path);
      std::string version = db.get_metadata(std::string(index::schema::k_meta_schema_version));
      std::string features = db.get_metadata(std::string(index::schema::k_meta_features));
      if (!(version.empty() && features.empty() && db.get_doccount() == 0)) {
        MAILDSAR_TRY(index::schema::check_metadata(path, version, features));
      }
      core::Result<std::vector<T>> found = lookup(db);
      if constexpr (std::is_same_v<T, Hit>) {
        if (found) {
          MAILDSAR_TRY(place_mbox_hits(config, *found));
        }
      }
      return found;
    } catch (const Xapian::DatabaseModifiedError &) {
      if (attempt + 1 >= k_retries) {
        return std::unexpected(index::error_from_xapian_exception(ctx));
      }
    } catch (...) {
      return std::unexpected(index::error_from_xapian_exception(ctx));
    }
  }
}

} // namespace maildsar::query
