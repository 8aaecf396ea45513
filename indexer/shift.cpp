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
  MAILDSAR_TRY_ASSIGN(std::vector<ItemRecord> items, catalog.items_of_file(rec.id));
  if (std::ranges::any_of(items, [](const ItemRecord &i) { return i.locator_key.find("@#") == std::string::npos; })) {
    return false; // rows keyed by their offsets (an index from before stable keys): `index` reads it
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
  std::vector<ItemRecord> updated;
  std::vector<std::string> dropped;
  std::uint64_t gone_items = 0;
  {
    MAILDSAR_TRY_ASSIGN(IndexTransaction itx, store.begin_transaction());
    for (ItemRecord &item : items) {
      std::uint64_t shift = 0;
      bool gone = false;
      for (const RemovedRange &r : ranges) {
        if (item.offset >= r.offset + r.length) {
          shift += r.length;
        } else if (item.offset >= r.offset) {
          gone = true;
          break;
        } else {
          break;
        }
      }
      if (gone) {
        MAILDSAR_TRY(store.delete_by_term(item.qterm));
        dropped.push_back(item.qterm);
        ++gone_items;
        continue;
      }
      if (shift == 0) {
        continue;
      }
      item.offset -= shift;
      updated.push_back(item);
    }
    MAILDSAR_TRY(itx.commit());
  }
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
  for (const std::string &q : dropped) {
    MAILDSAR_TRY(catalog.delete_item(q));
  }
  for (const ItemRecord &item : updated) {
    MAILDSAR_TRY(catalog.move_item(item.row, item.offset));
  }
  MAILDSAR_TRY(catalog.put_file(rec));
  MAILDSAR_TRY_ASSIGN(std::uint64_t recorded, catalog.recorded_item_count(source_id));
  MAILDSAR_TRY(catalog.record_item_count(source_id, recorded >= gone_items ? recorded - gone_items : 0));
  MAILDSAR_TRY(tx.commit());
  return true;
}

} // namespace maildsar::index
