// SPDX-License-Identifier: GPL-3.0-or-later
// After an mbox rewrite by erase: shift the index instead of re-reading the whole file.
#include "core/fs.hpp"
#include "core/log.hpp"
#include "indexer/catalog.hpp"
#include "indexer/index_store.hpp"
#include "indexer/indexer.hpp"
#include "indexer/schema.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace maildsar::index {

core::Result<bool> apply_mbox_cuts(const core::Config &config, const std::string &source, const std::string &path,
                                   std::uint64_t old_ino, const std::vector<RemovedRange> &removed) {
  MAILDSAR_TRY_ASSIGN(core::FileLock lock,
                      core::FileLock::try_acquire(lock_path(config), "an index run is in progress; retry when it ends"));
  MAILDSAR_TRY_ASSIGN(Catalog catalog, Catalog::open(catalog_path(config)));
  MAILDSAR_TRY_ASSIGN(std::int64_t source_id, catalog.source_id(source, "mbox"));
  MAILDSAR_TRY_ASSIGN(auto files, catalog.files(source_id));
  auto it = files.find(path);
  if (it == files.end() || it->second.status != FileStatus::done || it->second.ino != old_ino) {
    return false; // the catalog did not describe the file as it was: let `index` re-read it
  }
  FileRecord rec = it->second;
  std::vector<RemovedRange> ranges = removed;
  std::ranges::sort(ranges, {}, &RemovedRange::offset);
  std::uint64_t total = 0;
  for (const RemovedRange &r : ranges) {
    if (r.offset + r.length > rec.scanned_size) {
      return false; // a range the last scan did not cover
    }
    total += r.length;
  }
  MAILDSAR_TRY_ASSIGN(core::FileStat now, core::lstat_file(path));
  if (now.size < rec.scanned_size - total) {
    return false;
  }
  // Only where each row lies (a large mbox has tens of thousands of rows; their keys and hashes
  // stay as they are).
  MAILDSAR_TRY_ASSIGN(std::vector<Catalog::ItemPlace> places, catalog.item_places_of_file(rec.id));
  if (std::ranges::any_of(places, [](const Catalog::ItemPlace &p) { return !p.stable_key; })) {
    return false; // rows keyed by their offsets (an index from before stable keys): `index` reads it
  }
  // before[i]: the bytes removed in front of ranges[i]
  std::vector<std::uint64_t> before(ranges.size() + 1, 0);
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    before[i + 1] = before[i] + ranges[i].length;
  }

  // The catalog says "pending" until both stores agree: a crash in between makes `index`
  // re-read the file.
  {
    MAILDSAR_TRY_ASSIGN(core::sqlite::Transaction tx, catalog.begin());
    MAILDSAR_TRY(catalog.set_status(rec.id, FileStatus::pending, {}));
    MAILDSAR_TRY(tx.commit());
  }
  // The removed messages' documents go; the others keep theirs, whose keys hold their numbers in
  // the file and not their offsets (connectors::Locator::seq): only the catalog's rows move.
  MAILDSAR_TRY_ASSIGN(IndexStore store, IndexStore::open(index_path(config), OpenMode::writable));
  std::vector<std::pair<std::int64_t, std::uint64_t>> moved; // row, new offset
  std::vector<std::int64_t> dropped;                         // rows
  {
    MAILDSAR_TRY_ASSIGN(IndexTransaction itx, store.begin_transaction());
    for (const Catalog::ItemPlace &place : places) {
      // the first range that starts after the item; the one before it may hold the item
      const auto after = std::ranges::upper_bound(ranges, place.offset, {}, &RemovedRange::offset);
      const auto i = static_cast<std::size_t>(after - ranges.begin());
      if (i > 0 && place.offset < ranges[i - 1].offset + ranges[i - 1].length) {
        MAILDSAR_TRY_ASSIGN(std::string qterm, catalog.qterm_of_row(place.row));
        MAILDSAR_TRY(store.delete_by_term(qterm));
        dropped.push_back(place.row);
        continue;
      }
      if (before[i] > 0) {
        moved.emplace_back(place.row, place.offset - before[i]);
      }
    }
    MAILDSAR_TRY(itx.commit());
  }
  const std::uint64_t gone_items = dropped.size();
  rec.dev = now.dev;
  rec.ino = now.ino;
  rec.size = now.size;
  rec.mtime_ns = now.mtime_ns;
  rec.scanned_size -= total;
  rec.tail_fingerprint.clear();
  if (rec.scanned_size > 0) {
    MAILDSAR_TRY_ASSIGN(rec.tail_fingerprint, tail_fingerprint(path, rec.scanned_size));
  }
  rec.status = FileStatus::done;
  MAILDSAR_TRY_ASSIGN(core::sqlite::Transaction tx, catalog.begin());
  for (const std::int64_t row : dropped) {
    MAILDSAR_TRY(catalog.delete_row(row));
  }
  for (const auto &[row, offset] : moved) {
    MAILDSAR_TRY(catalog.move_item(row, offset));
  }
  MAILDSAR_TRY(catalog.put_file(rec));
  MAILDSAR_TRY_ASSIGN(std::uint64_t recorded, catalog.recorded_item_count(source_id));
  MAILDSAR_TRY(catalog.record_item_count(source_id, recorded >= gone_items ? recorded - gone_items : 0));
  MAILDSAR_TRY(tx.commit());
  return true;
}

} // namespace maildsar::index
