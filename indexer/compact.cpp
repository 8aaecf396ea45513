// SPDX-License-Identifier: GPL-3.0-or-later
// After an erasure: rewrite the index and the catalog so that no freed page keeps what was erased.
#include "connectors/attachment_text.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "indexer/catalog.hpp"
#include "indexer/document.hpp"
#include "indexer/index_store.hpp"
#include "indexer/indexer.hpp"

#include <xapian.h>

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <unordered_set>
#include <unistd.h>

namespace maildsar::index {

namespace fs = std::filesystem;

namespace {

/**
 * compact_index() for a file system that cannot swap two directories atomically: the index is
 * renamed to `old`, the compacted copy to the index, `old` removed. A kill between the two
 * renames leaves the index at `old` only; compact_state() puts it back before anything else.
 */
core::Status compact_by_two_renames(const std::string &index, const std::string &old) {
  const std::string fresh = index + ".compact";
  std::error_code ec;
  fs::remove_all(fresh, ec);
  fs::remove_all(old, ec);
  try {
    Xapian::Database db(index);
    db.compact(fresh, Xapian::DBCOMPACT_NO_RENUMBER);
  } catch (...) {
    fs::remove_all(fresh, ec);
    return std::unexpected(core::error_from_current_exception(fmt::format("compacting index {}: ", index)));
  }
  fs::permissions(fresh, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (::rename(index.c_str(), old.c_str()) != 0 || ::rename(fresh.c_str(), index.c_str()) != 0) {
    int err = errno;
    if (!fs::exists(index, ec) && fs::exists(old, ec)) {
      ::rename(old.c_str(), index.c_str()); // put the uncompacted index back
    }
    return core::fail(core::ErrorCode::io, fmt::format("replacing index {} by its compacted copy: {}",
                                                       index, std::strerror(err)));
  }
  fs::remove_all(old, ec);
  return core::fsync_dir(fs::path(index).parent_path().string());
}

} // namespace

core::Status compact_state(const core::Config &config) {
  MAILDSAR_TRY_ASSIGN(core::FileLock lock,
                      core::FileLock::try_acquire(lock_path(config), "an index run is in progress; retry when it ends"));
  const std::string index = index_path(config);
  const std::string old = index + ".old";
  std::error_code ec;
  if (!fs::exists(index, ec) && fs::exists(old, ec)) {
    // Killed between the two renames of the fallback below: the index is the ".old" copy.
    if (::rename(old.c_str(), index.c_str()) != 0) {
      return core::fail(core::ErrorCode::io, fmt::format("restoring index {} from {}: {}", index, old,
                                                         std::strerror(errno)));
    }
    MAILDSAR_TRY(core::fsync_dir(fs::path(index).parent_path().string()));
  }
  if (fs::exists(index, ec)) {
    // A compacted copy holds only live documents: the terms of deleted ones are not carried.
    // Swapped in atomically where the file system can (the path always holds a whole index).
    MAILDSAR_TRY_ASSIGN(bool swapped, compact_index(index));
    if (!swapped) {
      MAILDSAR_TRY(compact_by_two_renames(index, old));
    }
    fs::remove_all(old, ec); // a copy an earlier kill left, with what was erased: never kept
  }
  // The attachment-text cache keeps only the attachments of items still indexed: the text of an
  // erased message's PDF goes with it (the cache is personal data too).
  std::unordered_set<std::string> keep;
  const std::string cache = connectors::attachment_cache_path(config.state_dir);
  // (Without a cache, nothing to prune: no need to read every document's data for the list.)
  if (fs::exists(cache, ec) && fs::exists(index, ec)) {
    try {
      Xapian::Database db(index);
      for (auto it = db.postlist_begin(""); it != db.postlist_end(""); ++it) {
        if (auto doc = parse_document_data(db.get_document(*it).get_data())) {
          keep.insert(doc->attachment_hashes.begin(), doc->attachment_hashes.end());
        } // an unreadable document's attachments are extracted again when next met

      }
    } catch (...) {
      return std::unexpected(core::error_from_current_exception(fmt::format("reading index {}: ", index)));
    }
  }
  MAILDSAR_TRY(connectors::prune_attachment_cache(cache, keep));
  const std::string catalog = catalog_path(config);
  if (fs::exists(catalog, ec)) {
    MAILDSAR_TRY_ASSIGN(Catalog db, Catalog::open(catalog));
    MAILDSAR_TRY_ASSIGN(bool vacuumed, db.scrub());
    MAILDSAR_LOG_DEBUG("catalog {}: {}", catalog, vacuumed ? "rebuilt (VACUUM)" : "checkpointed");
  }
  return {};
}

} // namespace maildsar::index
