// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/indexer.hpp"

#include "connectors/limits.hpp"

#include "connectors/log_range.hpp"
#include "connectors/maillog.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "indexer/catalog.hpp"
#include "indexer/document.hpp"
#include "indexer/identity.hpp"
#include "indexer/index_store.hpp"
#include "indexer/log_block.hpp"
#include "indexer/log_index.hpp"
#include "indexer/pipeline.hpp"
#include "indexer/schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <variant>

// Crash consistency (a kill at any point leaves a state the next run repairs):
//  1. every file touched in a batch is written to the catalog as `pending` (with its items)
//     and that catalog transaction is committed BEFORE the Xapian transaction that holds its
//     documents;
//  2. only after the Xapian commit are the finished files marked `done` (and vanished files'
//     rows deleted);
//  3. a file that is not `done` is re-read from the start next time, and a full re-read first
//     deletes every document of the file through its XFILE: term, so no orphan survives.
//
// Rotation (logs): `mail.log` -> `mail.log.1` -> `mail.log.2.gz` keeps the lines and their
// numbers but changes the path (and maybe compresses). Every complete scan of a log records
// content marks (catalog: head_fingerprint, content_size, content_tail — over the *decompressed*
// bytes). Before scanning, a file whose path is new or whose content changed (a target) is
// compared with every fully indexed file that vanished or was replaced/rewritten (an origin):
// same head, at least content_size bytes, and the same 4096 bytes before content_size. A match
// *moves* the origin's documents to the target without re-parsing (Q term, XFILE: term and the
// locator path in the data are rewritten; line numbers stay). If the target holds more than
// the origin covered (mail.log grew after the last index, then was rotated), only the rest is
// read (plain file: from content_size; a compressed one is re-read in full). Moves run in
// dependency order (`.1 -> .2.gz` before `mail.log -> .1`), so a key never meets another file's
// document. A copytruncate'd mail.log is an origin too (its tail no longer matches) and is then
// re-read like any rewritten file.
//   Crash safety keeps rules 1-3: the origin's and the target's catalog rows are `pending`, and
// each moved item's catalog row is rewritten, in the catalog transaction that commits before the
// Xapian one; the rows become `done` (or a vanished origin's row is deleted) only afterwards. A
// kill in between leaves both paths pending (or vanished), so the next run re-reads/drops them.
//   Counts: moved items are reported as `moved`, neither new, changed nor removed; lines read
// after the old end are new; the items of a file that a move replaces (no longer anywhere) are
// removed; a compressed target that must be re-read in full reports its items as changed.

namespace maildsar::index {

using connectors::Connector;
using connectors::FileEntry;
using connectors::Item;
using connectors::ScanError;
namespace fs = std::filesystem;

std::string index_path(const core::Config &config) {
  return (std::filesystem::path(config.state_dir) / "xapian").string();
}
std::string catalog_path(const core::Config &config) {
  return (std::filesystem::path(config.state_dir) / "catalog.sqlite3").string();
}
std::string lock_path(const core::Config &config) {
  return (std::filesystem::path(config.state_dir) / "index.lock").string();
}

namespace {

using namespace pipeline; // NOLINT(google-build-using-namespace): the indexer's own internals

/** The catalog row of a listed file: its identity and stat, in `status`. */
FileRecord listed_file_record(std::int64_t source_id, const FileEntry &entry, FileStatus status) {
  FileRecord rec;
  rec.source_id = source_id;
  rec.path = entry.path;
  rec.dev = entry.stat.dev;
  rec.ino = entry.stat.ino;
  rec.size = entry.stat.size;
  rec.mtime_ns = entry.stat.mtime_ns;
  rec.status = status;
  return rec;
}

/** Turns a worker's scan into messages. */
class WorkerSink final : public connectors::ItemSink {
public:
  WorkerSink(Queue &queue, std::size_t job, const DocumentContext &ctx)
      : m_queue(queue), m_job(job), m_ctx(ctx) {}

  void item(Item &&item) override {
    if (m_queue.closed()) {
      return;
    }
    // Notes of what was cut (each a warning below); a part that could not be read is a problem
    // instead, and both make the item one indexed in part (XTRUNC:1, `truncated` in its hits,
    // `verify` refuses a certificate while it remains: docs/reliability.md).
    const std::size_t cut_notes = item.truncated.size();
    for (std::string &problem : item.problems) {
      // A part that could not be read (attachment text): counted; the item is still indexed.
      item.truncated.push_back(problem);
      m_queue.push(MsgError{m_job, ScanError{item.locator.path, position_of(item.locator), std::move(problem)}});
    }
    // Per-role caps (limits.max_addresses_per_role) before the identities are extracted.
    connectors::bound_item(item);
    try {
      m_queue.push(MsgDoc{m_job, build_document(item, m_ctx)});
    } catch (...) {
      core::Error e = core::error_from_current_exception();
      m_queue.push(
          MsgError{m_job, ScanError{item.locator.path, position_of(item.locator), e.message}, true});
      return;
    }
    // Never silent: every cut or split is a warning naming the file and the item's position.
    if (!item.truncated.empty()) {
      m_queue.push(MsgPartial{m_job});
    }
    item.truncated.resize(cut_notes); // the problems were reported above
    for (std::vector<std::string> *notes : {&item.truncated, &item.bounded}) {
      for (std::string &note : *notes) {
        m_queue.push(MsgWarning{m_job, ScanError{item.locator.path, position_of(item.locator), std::move(note)}});
      }
    }
  }
  void error(ScanError &&error) override { m_queue.push(MsgError{m_job, std::move(error), true}); }

private:
  static std::string position_of(const connectors::Locator &loc) {
    if (loc.store == connectors::StoreKind::pst) {
      return fmt::format("node {:#x}", loc.node_id); // as the PST scan's own problems name an item
    }
    if (loc.offset > 0 || loc.store == connectors::StoreKind::mbox) {
      return fmt::format("offset {}", loc.offset);
    }
    if (!loc.lines.empty()) {
      return fmt::format("line {}", loc.lines.front());
    }
    return {};
  }
  Queue &m_queue;
  std::size_t m_job;
  const DocumentContext &m_ctx;
};



void scan_one(const Connector &connector, const Job &job, std::size_t index, Queue &queue,
              const DocumentContext &ctx) {
  ScanMode mode = ScanMode::full;
  std::uint64_t from = 0;
  if (job.transition == Transition::grown && job.old) {
    auto fp = tail_fingerprint(job.entry.path, job.old->scanned_size);
    if (fp && *fp == job.old->tail_fingerprint) {
      mode = ScanMode::append;
      from = job.old->scanned_size;
    }
  }
  core::Status st;
  if (connector.kind() == connectors::StoreKind::maillog && ctx.log_source != nullptr) {
    st = scan_log_blocks(job, index, queue, ctx, mode, from);
  } else {
    WorkerSink sink(queue, index, ctx);
    queue.push(MsgBegin{index, mode, from});
    st = connector.scan(job.entry, from, sink);
    if (!st && mode == ScanMode::append && st.error().code == core::ErrorCode::data) {
      // The old end is not an item boundary any more: read the whole file again.
      mode = ScanMode::full;
      from = 0;
      queue.push(MsgBegin{index, mode, from});
      st = connector.scan(job.entry, 0, sink);
    }
  }
  MsgEnd end{index, std::nullopt, {}, {}};
  if (!st) {
    end.failure = st.error();
  } else if (connector.supports_append() && job.entry.stat.size > 0) {
    auto fp = tail_fingerprint(job.entry.path, job.entry.stat.size);
    if (fp) {
      end.fingerprint = std::move(*fp);
    }
  }
  if (st && connector.kind() == connectors::StoreKind::maillog) {
    end.marks = content_marks(job.entry);
  }
  queue.push(std::move(end));
}

/** Everything the writer tracks about a file being (re)indexed. */
struct FileState {
  ScanMode mode = ScanMode::full;
  bool started = false; // old documents dropped / catalog row marked pending
  std::int64_t file_id = 0;
  std::unordered_set<std::string> old_terms; // full mode: items before this run
  std::unordered_set<std::uint64_t> old_lines; // full mode, logs: first lines of the
                                               // transactions of the blocks before this run
  std::unordered_set<std::string> seen;      // full mode: keys written in this run
  std::uint64_t unsearched = 0;              // MsgError::unsearched problems of this scan
  std::string first_unsearched;              // the first of them, "position: message"
};

class Writer {
public:
  Writer(const IndexOptions &options, Catalog &catalog, IndexStore &store)
      : m_options(options), m_catalog(catalog), m_store(store) {}

  core::Status begin_batch() {
    MAILDSAR_TRY_ASSIGN(auto tx, m_catalog.begin());
    m_catalog_tx.emplace(std::move(tx));
    MAILDSAR_TRY_ASSIGN(auto itx, m_store.begin_transaction());
    m_index_tx.emplace(std::move(itx));
    m_docs_in_batch = 0;
    m_bytes_in_batch = 0;
    return {};
  }

  core::Status commit_batch() {
    if (fault("before_catalog_commit")) {
      return fault_error("before_catalog_commit");
    }
    MAILDSAR_TRY(m_catalog_tx->commit());
    m_catalog_tx.reset();
    if (fault("before_index_commit")) {
      return fault_error("before_index_commit");
    }
    MAILDSAR_TRY(m_index_tx->commit());
    m_index_tx.reset();
    if (fault("after_index_commit")) {
      return fault_error("after_index_commit");
    }
    if (!m_finished.empty() || !m_vanished.empty()) {
      MAILDSAR_TRY_ASSIGN(auto tx, m_catalog.begin());
      for (const auto &[id, note] : m_finished) {
        MAILDSAR_TRY(m_catalog.set_status(id, FileStatus::done, note));
      }
      for (std::int64_t id : m_vanished) {
        MAILDSAR_TRY(m_catalog.delete_file(id));
      }
      MAILDSAR_TRY(tx.commit());
      m_finished.clear();
      m_vanished.clear();
    }
    return {};
  }

  core::Status maybe_commit() {
    if (m_docs_in_batch >= std::max<std::uint64_t>(1, m_options.batch_size) ||
        m_bytes_in_batch >= k_batch_bytes) {
      MAILDSAR_TRY(commit_batch());
      MAILDSAR_TRY(begin_batch());
    }
    return {};
  }

  /** --full: every document of the source goes; every file is re-read. */
  core::Status drop_source(const std::string &source, std::int64_t source_id,
                           std::unordered_map<std::string, FileRecord> &files) {
    MAILDSAR_TRY(m_store.delete_by_term(schema::prefix_for("source") + source));
    for (auto &[path, rec] : files) {
      MAILDSAR_TRY(m_catalog.set_status(rec.id, FileStatus::pending, {}));
      rec.status = FileStatus::pending;
    }
    (void)source_id;
    return {};
  }

  core::Status vanish(const std::string &source, const FileRecord &rec, SourceSummary &sum) {
    MAILDSAR_TRY_ASSIGN(std::uint64_t n, m_catalog.item_count_of_file(rec.id));
    sum.removed += n;
    MAILDSAR_TRY(m_catalog.set_status(rec.id, FileStatus::pending, {}));
    MAILDSAR_TRY(m_store.delete_by_term(schema::file_term(source, rec.path)));
    m_vanished.push_back(rec.id);
    ++m_docs_in_batch;
    return maybe_commit();
  }

  /** Drops the file's old documents (full mode) and writes its catalog row as pending. */
  core::Status start(const std::string &source, std::int64_t source_id, const Job &job,
                     FileState &fs) {
    if (fs.started) {
      return {};
    }
    FileRecord rec = listed_file_record(source_id, job.entry, FileStatus::pending);
    if (fs.mode == ScanMode::append && job.old) {
      rec.scanned_size = job.old->scanned_size;
      rec.tail_fingerprint = job.old->tail_fingerprint;
    } else {
      if (job.old) {
        MAILDSAR_TRY_ASSIGN(auto rows, m_catalog.items_of_file(job.old->id));
        for (ItemRecord &row : rows) {
          MAILDSAR_TRY_ASSIGN(bool block, old_block_lines(m_store, row, fs.old_lines));
          if (!block) {
            fs.old_terms.insert(std::move(row.qterm));
          }
        }
        MAILDSAR_TRY(m_catalog.delete_items(job.old->id));
      }
      if (job.old || m_options.full == FullScan::yes || m_dirty_file_ids.contains(job.entry.path)) {
        MAILDSAR_TRY(m_store.delete_by_term(schema::file_term(source, job.entry.path)));
      }
      m_dirty_file_ids.insert(job.entry.path);
    }
    MAILDSAR_TRY_ASSIGN(fs.file_id, m_catalog.put_file(rec));
    fs.started = true;
    return {};
  }

  core::Status write_doc(const std::string &source, std::int64_t source_id, const Job &job,
                         FileState &fs, BuiltDocument &&built, SourceSummary &sum,
                         const std::vector<std::uint64_t> &log_lines) {
    MAILDSAR_TRY(start(source, source_id, job, fs));
    const std::string &qterm = built.doc.key();
    m_bytes_in_batch += built.doc.approx_bytes();
    if (!log_lines.empty()) {
      ++m_log_blocks_written;
      // Xapian holds the new postings of a block's hundreds of distinct boolean terms in several
      // times what approx_bytes counts for them (measured: a 1 GiB log set peaked at 257 MiB
      // with one commit per 64 MiB counted): blocks count k_block_bytes_factor times, so a log
      // run commits that much more often and its memory stays within the bound whatever the size.
      m_bytes_in_batch += (k_block_bytes_factor - 1) * built.doc.approx_bytes();
      // A block of log transactions: counted by transaction (a first line names one in its file).
      for (std::uint64_t line : log_lines) {
        if (fs.mode == ScanMode::full && fs.old_lines.erase(line) > 0) {
          ++sum.changed;
        } else {
          ++sum.new_items;
        }
      }
      if (fs.mode == ScanMode::full && fs.seen.insert(qterm).second) {
        MAILDSAR_TRY(m_store.add(std::move(built.doc)));
      } else {
        MAILDSAR_TRY(m_store.replace(std::move(built.doc)));
      }
    } else if (fs.mode == ScanMode::full) {
      if (fs.old_terms.erase(qterm) > 0) {
        ++sum.changed;
      } else if (!fs.seen.contains(qterm)) {
        ++sum.new_items;
      }
      if (fs.seen.insert(qterm).second) {
        MAILDSAR_TRY(m_store.add(std::move(built.doc)));
      } else {
        MAILDSAR_TRY(m_store.replace(std::move(built.doc)));
      }
    } else {
      MAILDSAR_TRY_ASSIGN(bool existed, m_catalog.has_item(qterm));
      if (existed) {
        ++sum.changed;
      } else {
        ++sum.new_items;
      }
      MAILDSAR_TRY(m_store.replace(std::move(built.doc)));
    }
    built.record.qterm = qterm;
    built.record.file_id = fs.file_id;
    MAILDSAR_TRY(m_catalog.put_item(built.record));
    ++m_docs_in_batch;
    return maybe_commit();
  }

  core::Status finish(const std::string &source, std::int64_t source_id, const Job &job,
                      FileState &fs, MsgEnd &&end, SourceSummary &sum) {
    if (end.failure) {
      report(source, ScanError{job.entry.path, {}, end.failure->message}, sum);
      if (fs.started) {
        sum.removed += fs.old_terms.size() + fs.old_lines.size();
        MAILDSAR_TRY(m_catalog.set_status(fs.file_id, FileStatus::error, end.failure->message));
      } else if (job.old) {
        // Nothing was written: keep the old documents, retry next time.
        MAILDSAR_TRY(m_catalog.set_status(job.old->id, FileStatus::error, end.failure->message));
      } else {
        FileRecord rec = listed_file_record(source_id, job.entry, FileStatus::error);
        rec.last_error = end.failure->message;
        MAILDSAR_TRY_ASSIGN([[maybe_unused]] std::int64_t id, m_catalog.put_file(rec));
      }
      return {};
    }
    MAILDSAR_TRY(start(source, source_id, job, fs));
    sum.removed += fs.old_terms.size() + fs.old_lines.size();
    FileRecord rec = listed_file_record(source_id, job.entry, FileStatus::pending);
    rec.scanned_size = job.entry.stat.size;
    rec.tail_fingerprint = std::move(end.fingerprint);
    rec.head_fingerprint = std::move(end.marks.head_fingerprint);
    rec.content_size = end.marks.content_size;
    rec.content_tail = std::move(end.marks.content_tail);
    rec.gz_points = std::move(end.marks.gz_points);
    rec.status = FileStatus::pending; // done once the Xapian commit holds its documents
    // A file read except for some of its parts (an mbox's bytes outside any message, a PST item
    // libpst could not read): indexed and done, but its last_error says what was not searched,
    // so `verify` gives no certificate while it stays so (docs/reliability.md). An append scan
    // keeps the mark of the part read before; a full scan sets it anew.
    if (fs.unsearched > 0) {
      rec.last_error = fmt::format("{} part(s) of this file could not be read and were not searched (first: {})",
                                   fs.unsearched, fs.first_unsearched);
    } else if (fs.mode == ScanMode::append && job.old) {
      rec.last_error = job.old->last_error;
    }
    MAILDSAR_TRY_ASSIGN(std::int64_t id, m_catalog.put_file(rec));
    m_finished.emplace_back(id, rec.last_error);
    return {};
  }

  /**
   * A plain log edited in place at `offsets` (IndexOptions::edited_in_place): the blocks whose
   * range holds an edited line are built again from the log as it is now, the others stay, and
   * the file's row gets the new stat and marks (pending until the Xapian commit, like a scan's).
   * False when that cannot be exact (another file or size than the catalog's, a block that
   * depends on its whole scan): nothing is written and the caller reads the log whole.
   */
  core::Result<bool> patch_log(std::int64_t source_id, const Job &job, const std::vector<std::uint64_t> &offsets,
                               const DocumentContext &ctx, SourceSummary &sum) {
    if (!job.old || job.old->status != FileStatus::done || job.old->dev != job.entry.stat.dev ||
        job.old->ino != job.entry.stat.ino || job.old->size != job.entry.stat.size ||
        job.old->content_size != job.entry.stat.size || offsets.empty()) {
      return false;
    }
    MAILDSAR_TRY_ASSIGN(auto rows, m_catalog.items_of_file(job.old->id));
    std::vector<MsgDoc> rebuilt;
    for (const ItemRecord &row : rows) {
      if (row.locator_key.find("##block@") == std::string::npos) {
        return false;
      }
      const bool edited = std::ranges::any_of(
          offsets, [&](std::uint64_t at) { return at >= row.offset && at < row.offset + row.length; });
      if (!edited) {
        continue;
      }
      MAILDSAR_TRY_ASSIGN(std::optional<MsgDoc> doc, rebuild_log_block(m_store, row, ctx, job.entry));
      if (!doc || doc->doc.doc.key() != row.qterm) {
        return false;
      }
      rebuilt.push_back(std::move(*doc));
    }
    ContentMarks marks = content_marks(job.entry);
    auto tail = tail_fingerprint(job.entry.path, job.entry.stat.size);
    if (rebuilt.empty() || marks.content_size != job.entry.stat.size || !tail) {
      return false;
    }
    FileRecord rec = listed_file_record(source_id, job.entry, FileStatus::pending);
    rec.scanned_size = job.entry.stat.size;
    rec.tail_fingerprint = std::move(*tail);
    rec.head_fingerprint = std::move(marks.head_fingerprint);
    rec.content_size = marks.content_size;
    rec.content_tail = std::move(marks.content_tail);
    rec.last_error = job.old->last_error;
    MAILDSAR_TRY_ASSIGN(std::int64_t id, m_catalog.put_file(rec));
    for (MsgDoc &msg : rebuilt) {
      sum.changed += msg.log_lines.size();
      m_bytes_in_batch += k_block_bytes_factor * msg.doc.doc.approx_bytes();
      ItemRecord record = std::move(msg.doc.record);
      record.qterm = msg.doc.doc.key();
      record.file_id = id;
      MAILDSAR_TRY(m_store.replace(std::move(msg.doc.doc)));
      MAILDSAR_TRY(m_catalog.put_item(record));
      ++m_docs_in_batch;
      ++m_log_blocks_patched;
      ++sum.log_blocks_rebuilt;
    }
    m_finished.emplace_back(id, rec.last_error);
    MAILDSAR_TRY(maybe_commit());
    return true;
  }

  [[nodiscard]] std::uint64_t log_blocks_patched() const { return m_log_blocks_patched; }

  /** What move_file() did. */
  struct MoveOutcome {
    FileRecord record;        // the target's catalog row (pending)
    std::uint64_t moved = 0;  // documents moved
    bool complete = true;     // false: some document was missing; re-read the target in full
  };

  /**
   * Moves the documents of `origin` (a fully indexed log whose content is now at `target`) to
   * the target's path, without re-parsing. `at_target` is the catalog row that held the target's
   * path before (its remaining items are dropped and counted as removed). See "Rotation" above.
   */
  core::Result<MoveOutcome> move_file(const std::string &source, std::int64_t source_id,
                                      const FileRecord &origin, bool origin_gone,
                                      const FileEntry &target, const FileRecord *at_target,
                                      const connectors::ContentProbe &probe, SourceSummary &sum) {
    const bool self = origin.path == target.path;
    MoveOutcome out;
    MAILDSAR_TRY(m_catalog.set_status(origin.id, FileStatus::pending, {}));
    const std::string target_term = schema::file_term(source, target.path);
    if (!self) {
      if (at_target != nullptr && at_target->id != origin.id) {
        MAILDSAR_TRY_ASSIGN(std::uint64_t n, m_catalog.item_count_of_file(at_target->id));
        sum.removed += n;
        MAILDSAR_TRY(m_catalog.delete_items(at_target->id));
      }
      MAILDSAR_TRY(m_store.delete_by_term(target_term));
    }
    out.record = listed_file_record(source_id, target, FileStatus::pending);
    FileRecord &rec = out.record;
    rec.head_fingerprint = origin.head_fingerprint;
    rec.content_size = origin.content_size;
    rec.content_tail = origin.content_tail;
    rec.gz_points = probe.gz_points; // the target's own (a rotation may have compressed it)
    rec.status = FileStatus::pending;
    if (!probe.compressed) {
      // Plain: raw bytes are the content, so an append scan can go on from the old end.
      rec.scanned_size = origin.content_size;
      rec.tail_fingerprint = origin.content_tail;
    } else if (target.stat.size > 0) {
      rec.scanned_size = target.stat.size;
      if (auto fp = tail_fingerprint(target.path, target.stat.size)) {
        rec.tail_fingerprint = std::move(*fp);
      }
    }
    MAILDSAR_TRY_ASSIGN(rec.id, m_catalog.put_file(rec));
    if (!self) {
      const std::string origin_term = schema::file_term(source, origin.path);
      MAILDSAR_TRY_ASSIGN(std::vector<ItemRecord> items, m_catalog.items_of_file(origin.id));
      for (ItemRecord &item : items) {
        MAILDSAR_TRY(m_catalog.delete_item(item.qterm));
        MAILDSAR_TRY_ASSIGN(std::optional<std::string> data, m_store.document_data(item.qterm));
        auto moved = !data ? core::Result<RelocatedData>(core::fail(core::ErrorCode::data, "no document"))
                     : is_log_block_data(*data) ? relocate_log_block(*data, target.path)
                                                : relocate_document_data(*data, target.path);
        if (!moved) {
          // Catalog and index disagree (or the data is damaged): drop it; the target is re-read.
          MAILDSAR_LOG_WARN("index: cannot move {} item {} to {}: {}", origin.path,
                            item.locator_key, target.path, moved.error().message);
          MAILDSAR_TRY(m_store.delete_by_term(item.qterm));
          out.complete = false;
          continue;
        }
        std::string new_qterm = schema::unique_term(source, moved->locator_key);
        MAILDSAR_TRY_ASSIGN(bool found, m_store.rekey(item.qterm, new_qterm, origin_term,
                                                      target_term, moved->data));
        if (!found) {
          out.complete = false;
          continue;
        }
        item.qterm = std::move(new_qterm);
        item.locator_key = std::move(moved->locator_key);
        item.file_id = rec.id;
        MAILDSAR_TRY(m_catalog.put_item(item));
        out.moved += item.n;
        ++m_docs_in_batch;
        MAILDSAR_TRY(maybe_commit());
      }
      // Anything the catalog did not know of (an earlier crash) must not stay at the old path.
      MAILDSAR_TRY(m_store.delete_by_term(origin_term));
      if (origin_gone) {
        m_vanished.push_back(origin.id); // no items left; its row goes after the Xapian commit
      }
    }
    return out;
  }

  /** Log block documents written in this run. */
  [[nodiscard]] std::uint64_t log_blocks_written() const { return m_log_blocks_written; }

  /** Marks a file done after the next Xapian commit. */
  void finished(std::int64_t file_id) { m_finished.emplace_back(file_id, std::string()); }

  void report(const std::string &source, ScanError &&error, SourceSummary &sum) {
    ++sum.errors;
    if (m_options.on_problem) {
      m_options.on_problem(IndexProblem{source, std::move(error)});
    }
  }

  void warn(const std::string &source, ScanError &&warning, SourceSummary &sum) {
    ++sum.warnings;
    if (m_options.on_warning) {
      m_options.on_warning(IndexProblem{source, std::move(warning)});
    }
  }

  core::Status abandon() {
    // Destroying the guards cancels the Xapian transaction and rolls the catalog back.
    m_index_tx.reset();
    m_catalog_tx.reset();
    return {};
  }

private:
  bool fault(std::string_view step) const { return m_options.fault_at && m_options.fault_at(step); }
  static std::unexpected<core::Error> fault_error(std::string_view step) {
    return core::fail(core::ErrorCode::internal, fmt::format("fault injected at {}", step));
  }

  const IndexOptions &m_options;
  Catalog &m_catalog;
  IndexStore &m_store;
  std::optional<core::sqlite::Transaction> m_catalog_tx;
  std::optional<IndexTransaction> m_index_tx;
  std::uint64_t m_docs_in_batch = 0;
  std::uint64_t m_bytes_in_batch = 0; // approx_bytes of the documents not yet committed
  std::uint64_t m_log_blocks_written = 0;
  std::uint64_t m_log_blocks_patched = 0;
  std::vector<std::pair<std::int64_t, std::string>> m_finished; // file id, its last_error
  std::vector<std::int64_t> m_vanished;
  std::unordered_set<std::string> m_dirty_file_ids; // paths written in this run (restarts)
};

/**
 * Recognises rotated logs (see "Rotation" above): moves the documents of every origin whose
 * content is found under a target path, and rewrites `jobs` (a moved target needs no scan, or
 * only of its new part). `moved_gone` receives the vanished paths whose rows the moves handle.
 */
core::Status follow_rotation(const std::string &source, std::int64_t source_id,
                             const std::unordered_map<std::string, FileRecord> &old_files,
                             const std::unordered_set<std::string> &present,
                             std::vector<Job> &jobs, Writer &writer, SourceSummary &sum,
                             std::unordered_set<std::string> &moved_gone) {
  // A log that "grew" but whose old end does not match any more was rewritten (copytruncate).
  std::unordered_map<std::string, std::size_t> job_of;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    Job &job = jobs[i];
    if (job.transition == Transition::grown && job.old) {
      auto fp = tail_fingerprint(job.entry.path, job.old->scanned_size);
      if (!fp || *fp != job.old->tail_fingerprint) {
        job.transition = Transition::changed;
      }
    }
    job_of.emplace(job.entry.path, i);
  }
  std::vector<const FileRecord *> origins;
  for (const auto &[path, rec] : old_files) {
    if (rec.status != FileStatus::done || rec.content_size == 0 || rec.head_fingerprint.empty() ||
        rec.content_tail.empty()) {
      continue;
    }
    auto it = job_of.find(path);
    bool gone = !present.contains(path);
    bool replaced = it != job_of.end() && jobs[it->second].transition == Transition::changed;
    if (gone || replaced) {
      origins.push_back(&rec);
    }
  }
  if (origins.empty()) {
    return {};
  }
  struct Candidate {
    std::size_t job = 0;
    const FileRecord *origin = nullptr;
    connectors::ContentProbe probe;
  };
  std::vector<Candidate> found;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const Job &job = jobs[i];
    if (job.transition != Transition::new_file && job.transition != Transition::changed) {
      continue;
    }
    auto head = connectors::read_content_head(job.entry.path);
    if (!head) {
      continue; // its scan reports the problem
    }
    for (const FileRecord *o : origins) {
      if (o->path == job.entry.path && o->dev == job.entry.stat.dev && o->ino == job.entry.stat.ino) {
        // The same file, changed in place (erase's same-length pseudonyms in the middle of a
        // log keep its head and the marks): it must be read again, not "moved" onto itself.
        continue;
      }
      if (head->size() < std::min<std::uint64_t>(connectors::k_content_probe_bytes, o->content_size) ||
          head_fingerprint_of(*head, o->content_size) != o->head_fingerprint) {
        continue;
      }
      auto probe = connectors::probe_content(job.entry.path, o->content_size);
      if (!probe || probe->size < o->content_size || probe->mark_fingerprint != o->content_tail) {
        continue;
      }
      found.push_back(Candidate{i, o, std::move(*probe)});
    }
  }
  // Most content first; then a file that kept its path; then by path (deterministic).
  std::sort(found.begin(), found.end(), [&](const Candidate &a, const Candidate &b) {
    if (a.origin->content_size != b.origin->content_size) {
      return a.origin->content_size > b.origin->content_size;
    }
    bool a_same = a.origin->path == jobs[a.job].entry.path;
    bool b_same = b.origin->path == jobs[b.job].entry.path;
    if (a_same != b_same) {
      return a_same;
    }
    if (jobs[a.job].entry.path != jobs[b.job].entry.path) {
      return jobs[a.job].entry.path < jobs[b.job].entry.path;
    }
    return a.origin->path < b.origin->path;
  });
  std::vector<Candidate> moves;
  std::unordered_set<std::size_t> used_jobs;
  std::unordered_set<const FileRecord *> used_origins;
  for (Candidate &c : found) {
    if (!used_jobs.contains(c.job) && !used_origins.contains(c.origin)) {
      used_jobs.insert(c.job);
      used_origins.insert(c.origin);
      moves.push_back(std::move(c));
    }
  }
  std::unordered_map<std::string, std::size_t> move_from; // origin path -> move
  for (std::size_t m = 0; m < moves.size(); ++m) {
    move_from.emplace(moves[m].origin->path, m);
  }
  enum class Visit { no, active, done };
  std::vector<Visit> state(moves.size(), Visit::no);
  // The documents at a target's path must have moved out before others move in.
  std::function<core::Status(std::size_t)> visit = [&](std::size_t m) -> core::Status {
    if (state[m] != Visit::no) {
      return {};
    }
    state[m] = Visit::active;
    Candidate &c = moves[m];
    Job &job = jobs[c.job];
    auto dep = move_from.find(job.entry.path);
    if (dep != move_from.end() && dep->second != m) {
      if (state[dep->second] == Visit::active) {
        state[m] = Visit::done; // a cycle (files swapped names): this target is re-read instead
        return {};
      }
      MAILDSAR_TRY(visit(dep->second));
    }
    const FileRecord &origin = *c.origin;
    bool gone = !present.contains(origin.path);
    auto at = old_files.find(job.entry.path);
    const FileRecord *at_target = at == old_files.end() ? nullptr : &at->second;
    MAILDSAR_TRY_ASSIGN(Writer::MoveOutcome outcome,
                        writer.move_file(source, source_id, origin, gone, job.entry, at_target,
                                         c.probe, sum));
    if (gone) {
      moved_gone.insert(origin.path);
    }
    std::uint64_t total = c.probe.compressed ? c.probe.size : job.entry.stat.size;
    bool rest = total > origin.content_size;
    if (outcome.complete && !rest) {
      sum.moved += outcome.moved;
      writer.finished(outcome.record.id);
      job.transition = Transition::unchanged; // nothing to read
    } else if (outcome.complete && !c.probe.compressed) {
      sum.moved += outcome.moved;
      job.transition = Transition::grown; // read what follows the old end
      job.old = outcome.record;
    } else {
      job.transition = Transition::changed; // read it all again (its moved items: "changed")
      job.old = outcome.record;
    }
    state[m] = Visit::done;
    return {};
  };
  for (std::size_t m = 0; m < moves.size(); ++m) {
    MAILDSAR_TRY(visit(m));
  }
  std::erase_if(jobs, [](const Job &job) { return job.transition == Transition::unchanged; });
  return {};
}

/** Runs the workers over `jobs` and feeds the writer on this thread. */
core::Status index_files(const Connector &connector, const std::string &source,
                         std::int64_t source_id, const std::vector<Job> &jobs,
                         const DocumentContext &ctx, unsigned threads, Writer &writer,
                         const IndexOptions &options, SourceSummary &sum) {
  if (jobs.empty()) {
    return {};
  }
  MAILDSAR_TRY(Normalizer::load_phone_module()); // before the workers need it
  Queue queue(1024, k_queue_bytes);
  std::atomic<std::size_t> next{0};
  unsigned n_threads = std::max(1U, std::min<unsigned>(threads, static_cast<unsigned>(jobs.size())));
  std::vector<std::thread> pool;
  pool.reserve(n_threads);
  for (unsigned t = 0; t < n_threads; ++t) {
    pool.emplace_back([&] {
      for (;;) {
        if (queue.closed()) {
          break;
        }
        std::size_t i = next.fetch_add(1);
        if (i >= jobs.size()) {
          break;
        }
        try {
          scan_one(connector, jobs[i], i, queue, ctx);
        } catch (...) {
          core::Error e = core::error_from_current_exception();
          queue.push(MsgEnd{i, e, {}, {}});
        }
      }
      queue.push_always(MsgWorkerDone{});
    });
  }

  std::vector<FileState> states(jobs.size());
  std::uint64_t done_files = 0;
  unsigned workers_left = n_threads;
  core::Status status;
  while (workers_left > 0) {
    Msg msg = queue.pop();
    if (std::holds_alternative<MsgWorkerDone>(msg)) {
      --workers_left;
      continue;
    }
    if (!status) {
      continue; // draining after a fatal error
    }
    core::Status st = std::visit(
        [&](auto &&m) -> core::Status {
          using T = std::decay_t<decltype(m)>;
          if constexpr (std::is_same_v<T, MsgBegin>) {
            FileState &fs = states[m.job];
            if (fs.started && fs.mode == ScanMode::append && m.mode == ScanMode::full) {
              fs.started = false; // restart: the full start drops what the append wrote
              fs.unsearched = 0;
              fs.first_unsearched.clear();
            }
            fs.mode = m.mode;
            return {};
          } else if constexpr (std::is_same_v<T, MsgDoc>) {
            return writer.write_doc(source, source_id, jobs[m.job], states[m.job], std::move(m.doc),
                                    sum, m.log_lines);
          } else if constexpr (std::is_same_v<T, MsgError>) {
            if (m.unsearched) {
              FileState &fs = states[m.job];
              if (fs.unsearched++ == 0) {
                fs.first_unsearched =
                    m.error.position.empty() ? m.error.cause : m.error.position + ": " + m.error.cause;
              }
            }
            writer.report(source, std::move(m.error), sum);
            return {};
          } else if constexpr (std::is_same_v<T, MsgWarning>) {
            writer.warn(source, std::move(m.warning), sum);
            return {};
          } else if constexpr (std::is_same_v<T, MsgPartial>) {
            ++sum.truncated;
            return {};
          } else if constexpr (std::is_same_v<T, MsgEnd>) {
            MAILDSAR_TRY(writer.finish(source, source_id, jobs[m.job], states[m.job], std::move(m),
                                       sum));
            states[m.job] = FileState{};
            ++done_files;
            if (options.on_progress) {
              options.on_progress(done_files, jobs.size());
            }
            return {};
          } else {
            return {};
          }
        },
        msg);
    if (!st) {
      status = std::move(st);
      queue.close();
    }
  }
  for (std::thread &t : pool) {
    t.join();
  }
  return status;
}

core::Result<std::vector<const core::SourceConfig *>> select_sources(const core::Config &config,
                                                                     const IndexOptions &options) {
  std::vector<const core::SourceConfig *> out;
  std::vector<std::string> named = options.only_sources;
  named.insert(named.end(), options.accept_removal.begin(), options.accept_removal.end());
  for (const std::string &name : named) {
    auto it = std::find_if(config.sources.begin(), config.sources.end(),
                           [&](const core::SourceConfig &s) { return s.name == name; });
    if (it == config.sources.end()) {
      std::string known;
      for (const auto &s : config.sources) {
        known += known.empty() ? s.name : ", " + s.name;
      }
      return core::fail(core::ErrorCode::usage, fmt::format("unknown source '{}'", name),
                        known.empty() ? "the config defines no sources"
                                      : fmt::format("configured sources: {}", known));
    }
  }
  for (const core::SourceConfig &s : config.sources) {
    if (options.only_sources.empty() ||
        std::find(options.only_sources.begin(), options.only_sources.end(), s.name) !=
            options.only_sources.end()) {
      out.push_back(&s);
    }
  }
  return out;
}

/**
 * The removal guard (see RemovalGuard): why this run must not drop the vanished files of a
 * source, or "" when it may. `listed` = the files found now, `old_files` = those the catalog has.
 */
std::string removal_hold(const core::Config &config, std::size_t listed, std::size_t gone,
                         std::size_t old_files) {
  if (old_files == 0 || gone == 0) {
    return {};
  }
  if (listed == 0) {
    return fmt::format("matched {} file(s) before and none now (wrong path? unmounted share?)",
                       old_files);
  }
  if (gone * 100 > static_cast<std::size_t>(config.max_removal_percent) * old_files) {
    return fmt::format("{} of its {} file(s) vanished in one run, more than max_removal_percent "
                       "({}%)",
                       gone, old_files, config.max_removal_percent);
  }
  return {};
}

/** Collects list_files() problems and counts the files it skipped on purpose. */
class ListSink final : public connectors::ItemSink {
public:
  void item(Item &&) override {}
  void error(ScanError &&error) override {
    std::lock_guard lock(m_mutex);
    m_errors.push_back(std::move(error));
  }
  void skipped(const std::string & /*path*/, connectors::SkipReason reason) override {
    std::lock_guard lock(m_mutex);
    ++m_skipped[std::string(connectors::to_string(reason))];
  }
  std::vector<ScanError> take() {
    std::lock_guard lock(m_mutex);
    return std::move(m_errors);
  }
  std::map<std::string, std::uint64_t> skipped_counts() {
    std::lock_guard lock(m_mutex);
    return m_skipped;
  }

private:
  std::mutex m_mutex;
  std::vector<ScanError> m_errors;
  std::map<std::string, std::uint64_t> m_skipped;
};

/** SourceSummary::skipped as the catalog keeps it: "dotfile=2;mua-file=1". */
std::string encode_skipped(const std::map<std::string, std::uint64_t> &skipped) {
  std::string out;
  for (const auto &[reason, n] : skipped) {
    out += fmt::format("{}{}={}", out.empty() ? "" : ";", reason, n);
  }
  return out;
}

std::map<std::string, std::uint64_t> decode_skipped(std::string_view text) {
  std::map<std::string, std::uint64_t> out;
  while (!text.empty()) {
    auto semi = text.find(';');
    std::string_view one = text.substr(0, semi);
    text = semi == std::string_view::npos ? std::string_view() : text.substr(semi + 1);
    auto eq = one.find('=');
    std::uint64_t n = 0;
    if (eq == std::string_view::npos ||
        std::from_chars(one.data() + eq + 1, one.data() + one.size(), n).ec != std::errc()) {
      continue; // not written by encode_skipped: ignored
    }
    out[std::string(one.substr(0, eq))] += n;
  }
  return out;
}

/**
 * A run that wrote most of the index as log blocks (a first index of a log estate, a rebuild)
 * leaves B-tree blocks part-filled; a compacted copy is about a third smaller and takes well
 * under a second per 100 MB of index (docs/performance.md "Log indexing"). Smaller runs (the
 * daily append) leave the index as it is. A failed compaction leaves the committed index
 * untouched and is only logged.
 */
core::Status compact_after_log_blocks(const IndexStore &store, std::uint64_t blocks_written) {
  constexpr std::uint64_t k_min_blocks = 64;
  if (blocks_written < k_min_blocks) {
    return {};
  }
  MAILDSAR_TRY_ASSIGN(std::uint64_t docs, store.doc_count());
  if (blocks_written * 2 < docs) {
    return {};
  }
  auto done = compact_index(store.path());
  if (!done) {
    MAILDSAR_LOG_WARN("index {}: not compacted: {}", store.path(), done.error().message);
  } else if (!*done) {
    MAILDSAR_LOG_WARN("index {}: not compacted: the file system cannot swap directories atomically",
                      store.path());
  }
  return {};
}

} // namespace

core::Result<IndexSummary> run_index(const core::Config &config, const IndexOptions &options) {
  return run_index(config, options, ConnectorFactory(connectors::make_connector));
}

core::Result<IndexSummary> run_index(const core::Config &config, const IndexOptions &options,
                                     const ConnectorFactory &factory) {
  auto t0 = std::chrono::steady_clock::now();
  MAILDSAR_TRY_ASSIGN(auto selected, select_sources(config, options));
  if (config.state_dir.empty()) {
    return core::fail(core::ErrorCode::config, "no state_dir configured");
  }
  MAILDSAR_TRY(core::ensure_private_dir(config.state_dir));
  MAILDSAR_TRY_ASSIGN(core::FileLock lock,
                      core::FileLock::try_acquire(lock_path(config),
                                                  "another `maildsar index` is running?"));
  MAILDSAR_TRY_ASSIGN(Catalog catalog, Catalog::open(catalog_path(config)));
  // The old index a compaction killed midway left behind (it may hold erased data).
  MAILDSAR_TRY(remove_compact_leftover(index_path(config)));
  auto opened = IndexStore::open(index_path(config), OpenMode::writable);
  bool rebuilt = false;
  if (!opened && opened.error().code == core::ErrorCode::data && options.full == FullScan::yes) {
    // Schema change (or a damaged index) with --full: start over, catalog included.
    MAILDSAR_LOG_WARN("index {}: rebuilding from scratch ({})", index_path(config),
                      opened.error().message);
    opened = IndexStore::open(index_path(config), OpenMode::overwrite);
    rebuilt = true;
  }
  if (!opened) {
    return std::unexpected(opened.error());
  }
  IndexStore store = std::move(*opened);
  if (rebuilt) {
    MAILDSAR_TRY_ASSIGN(auto all, catalog.sources());
    MAILDSAR_TRY_ASSIGN(auto tx, catalog.begin());
    for (const SourceRecord &s : all) {
      MAILDSAR_TRY(catalog.delete_source_files(s.id));
      MAILDSAR_TRY(catalog.set_layout(s.id, ""));
    }
    MAILDSAR_TRY(tx.commit());
  }

  Normalizer normalizer(NormalizeOptions{config.identity.subaddress_separators,
                                         config.identity.phone_region});
  // The writer (this thread) keeps one core busy: parse on the others (at least one).
  unsigned threads = options.threads != 0 ? options.threads
                                          : std::max(2U, std::thread::hardware_concurrency()) - 1;
  threads = std::max(1U, threads);

  IndexSummary summary;
  Writer writer(options, catalog, store);
  MAILDSAR_TRY(writer.begin_batch());
  std::vector<std::int64_t> succeeded;
  std::vector<std::pair<std::int64_t, std::string>> layouts;
  std::unordered_set<std::int64_t> unchanged_sources; // skipped by the layout shortcut
  // Files new in this run -> the source that listed them (by a hash of the path: a million new
  // files cost tens of megabytes, not the paths' size).
  std::unordered_map<std::size_t, std::string_view> new_paths;
  for (const core::SourceConfig *src : selected) {
    SourceSummary sum;
    sum.name = src->name;
    sum.type = src->type;
    MAILDSAR_TRY_ASSIGN(std::unique_ptr<Connector> connector, factory(*src));
    MAILDSAR_TRY_ASSIGN(std::int64_t source_id, catalog.source_id(src->name, src->type));
    const bool guarded = options.removal_guard == RemovalGuard::on &&
                         std::ranges::find(options.accept_removal, src->name) ==
                             options.accept_removal.end();
    // A held source keeps its documents and catalog rows as they are: nothing was searched.
    auto hold_source = [&](std::string why) -> core::Status {
      writer.report(src->name,
                    ScanError{src->path, {},
                              fmt::format("{}; its indexed items are kept until `maildsar index "
                                          "--accept-removal {}`",
                                          why, src->name)},
                    sum);
      sum.held_removal = std::move(why);
      MAILDSAR_TRY_ASSIGN(sum.items, catalog.item_count(source_id));
      summary.errors += sum.errors;
      summary.warnings += sum.warnings;
      summary.truncated += sum.truncated;
      summary.sources.push_back(std::move(sum));
      return {};
    };
    if (std::error_code ec; guarded && !src->root.empty() && !fs::exists(src->root, ec)) {
      MAILDSAR_TRY(hold_source(fmt::format("source root {} is missing (wrong path? unmounted share?)",
                                           src->root)));
      continue;
    }
    // Fast no-op: a store whose files only come and go (Maildir) and whose folder layout is
    // what it was after the last complete run without problems has nothing new to read.
    // The digest is taken before the files are listed, so a change during this run shows
    // up next time. --full always lists.
    MAILDSAR_TRY_ASSIGN(std::optional<connectors::LayoutDigest> layout,
                        connector->layout_fingerprint());
    if (options.full == FullScan::no && layout && layout->settled) {
      MAILDSAR_TRY_ASSIGN(std::string previous, catalog.layout(source_id));
      if (!previous.empty() && previous == layout->digest) {
        MAILDSAR_TRY_ASSIGN(sum.files, catalog.file_count(source_id));
        unchanged_sources.insert(source_id);
        succeeded.push_back(source_id);
        summary.sources.push_back(std::move(sum));
        continue;
      }
    }
    // From here the recorded layout no longer describes the catalog: a kill mid-run must not
    // leave a digest that lets the next run skip the repair. (Part of the writer's open catalog
    // transaction, which is committed before any index commit.)
    MAILDSAR_TRY(catalog.set_layout(source_id, ""));
    ListSink list_sink;
    auto listed = connector->list_files(list_sink);
    for (ScanError &e : list_sink.take()) {
      writer.report(src->name, std::move(e), sum);
    }
    sum.skipped = list_sink.skipped_counts();
    if (!listed) {
      // The source as a whole is unreadable: report it and keep its documents.
      writer.report(src->name, ScanError{src->path, {}, listed.error().message}, sum);
      MAILDSAR_TRY_ASSIGN(sum.items, catalog.item_count(source_id));
      summary.errors += sum.errors;
      summary.warnings += sum.warnings;
      summary.truncated += sum.truncated;
      summary.sources.push_back(std::move(sum));
      continue;
    }
    std::vector<FileEntry> &entries = *listed;
    sum.files = entries.size();
    MAILDSAR_TRY_ASSIGN(auto old_files, catalog.files(source_id));
    if (guarded) {
      std::unordered_set<std::string_view> now;
      now.reserve(entries.size());
      for (const FileEntry &e : entries) {
        now.insert(e.path);
      }
      std::size_t gone = 0;
      for (const auto &[path, rec] : old_files) {
        if (!now.contains(path)) {
          ++gone;
        }
      }
      if (std::string why = removal_hold(config, entries.size(), gone, old_files.size()); !why.empty()) {
        MAILDSAR_TRY(hold_source(std::move(why)));
        continue;
      }
    }
    if (options.full == FullScan::yes) {
      MAILDSAR_TRY(writer.drop_source(src->name, source_id, old_files));
    }
    AppendSupport append = connector->supports_append() ? AppendSupport::yes : AppendSupport::no;
    std::vector<Job> jobs;
    std::unordered_set<std::string> present;
    present.reserve(entries.size());
    for (FileEntry &entry : entries) {
      present.insert(entry.path);
      auto it = old_files.find(entry.path);
      const FileRecord *old = it == old_files.end() ? nullptr : &it->second;
      Transition t = classify(old, entry.stat, append);
      if (old == nullptr) {
        // One file, one source: a file another source holds (or listed earlier in this run)
        // would be deleted for one and retained for the other. Checked for files new to this
        // source; config loading refuses overlapping paths, this catches what it cannot see.
        MAILDSAR_TRY_ASSIGN(std::optional<std::string> other,
                            catalog.other_source_of(entry.path, source_id));
        if (other && std::ranges::none_of(config.sources, [&](const core::SourceConfig &c) {
              return c.name == *other;
            })) {
          other.reset(); // a source renamed or removed in the config: its rows are history
        }
        const std::size_t path_hash = std::hash<std::string>{}(entry.path);
        if (auto claimed = new_paths.find(path_hash);
            !other && claimed != new_paths.end() && claimed->second != src->name) {
          other = std::string(claimed->second);
        }
        if (other) {
          MAILDSAR_TRY(writer.abandon());
          return core::fail(core::ErrorCode::config,
                            fmt::format("sources '{}' and '{}' both cover {}", *other, src->name,
                                        entry.path),
                            fmt::format("every file must belong to exactly one source: make the "
                                        "paths disjoint in the config (if '{}' no longer covers "
                                        "it, run `maildsar index --source {}` first)",
                                        *other, *other));
        }
        new_paths.emplace(path_hash, src->name);
      }
      if (options.full == FullScan::yes && old != nullptr) {
        t = Transition::changed;
      }
      if (t == Transition::unchanged) {
        continue;
      }
      Job job;
      job.transition = t;
      if (old != nullptr) {
        job.old = *old;
      }
      job.entry = std::move(entry);
      jobs.push_back(std::move(job));
    }
    std::unordered_set<std::string> moved_gone;
    if (options.full == FullScan::no && connector->kind() == connectors::StoreKind::maillog) {
      MAILDSAR_TRY(follow_rotation(src->name, source_id, old_files, present, jobs, writer, sum,
                                   moved_gone));
    }
    for (const auto &[path, rec] : old_files) {
      if (!present.contains(path) && !moved_gone.contains(path)) {
        MAILDSAR_TRY(writer.vanish(src->name, rec, sum));
      }
    }
    DocumentContext ctx{src->name, &normalizer,
                        connector->kind() == connectors::StoreKind::maillog ? src : nullptr,
                        options.log_block_items};
    if (ctx.log_source != nullptr && !options.edited_in_place.empty() && options.full == FullScan::no) {
      // Logs that erasure edited in place: only their edited blocks are built again.
      std::vector<Job> rest;
      for (Job &job : jobs) {
        auto edited = options.edited_in_place.find(job.entry.path);
        bool patched = false;
        if (job.transition == Transition::changed && edited != options.edited_in_place.end()) {
          auto done = writer.patch_log(source_id, job, edited->second, ctx, sum);
          if (!done) {
            MAILDSAR_TRY(writer.abandon());
            return std::unexpected(done.error());
          }
          patched = *done;
        }
        if (!patched) {
          rest.push_back(std::move(job));
        }
      }
      jobs = std::move(rest);
    }
    // A log's writer has one document per block to add: its thread can parse too.
    const unsigned workers =
        connector->kind() == connectors::StoreKind::maillog && options.threads == 0 ? threads + 1 : threads;
    auto st = index_files(*connector, src->name, source_id, jobs, ctx, workers, writer, options, sum);
    if (!st) {
      MAILDSAR_TRY(writer.abandon());
      return std::unexpected(st.error());
    }
    succeeded.push_back(source_id);
    if (layout && sum.errors == 0) {
      // Recorded (with the final commit) only if the layout did not change while the files
      // were read, and has settled by now.
      MAILDSAR_TRY_ASSIGN(std::optional<connectors::LayoutDigest> after,
                          connector->layout_fingerprint());
      if (after && after->settled && after->digest == layout->digest) {
        layouts.emplace_back(source_id, std::move(after->digest));
      }
    }
    summary.errors += sum.errors;
      summary.warnings += sum.warnings;
      summary.truncated += sum.truncated;
    summary.sources.push_back(std::move(sum));
  }
  if (auto st = writer.commit_batch(); !st) {
    MAILDSAR_TRY(writer.abandon());
    return std::unexpected(st.error());
  }
  MAILDSAR_TRY(compact_after_log_blocks(store, writer.log_blocks_written()));
  bool changed_nothing = std::all_of(summary.sources.begin(), summary.sources.end(), [](const auto &x) {
    return x.new_items + x.changed + x.removed + x.moved + x.errors == 0;
  });
  if (changed_nothing) {
    MAILDSAR_TRY(catalog.relax_durability());
  }
  {
    MAILDSAR_TRY_ASSIGN(auto tx, catalog.begin());
    auto now = static_cast<std::int64_t>(std::time(nullptr));
    for (std::int64_t id : succeeded) {
      MAILDSAR_TRY(catalog.set_last_success(id, now));
    }
    for (const core::SourceConfig *src : selected) {
      // What the index now holds was searched with this configuration of the source (`find`
      // refuses to answer for a source whose configuration was never indexed).
      MAILDSAR_TRY_ASSIGN(std::int64_t id, catalog.source_id(src->name, src->type));
      if (std::ranges::find(succeeded, id) != succeeded.end()) {
        MAILDSAR_TRY(catalog.set_origin(id, source_origin(*src)));
      }
    }
    for (const auto &[id, digest] : layouts) {
      MAILDSAR_TRY(catalog.set_layout(id, digest));
    }
    MAILDSAR_TRY(tx.commit());
  }
  {
    // Counting the item rows costs tens of milliseconds on a large source: a source skipped by
    // the layout shortcut reuses the count recorded by the run that last changed it.
    MAILDSAR_TRY_ASSIGN(auto tx, catalog.begin());
    auto now = static_cast<std::int64_t>(std::time(nullptr));
    for (SourceSummary &sum : summary.sources) {
      MAILDSAR_TRY_ASSIGN(std::int64_t id, catalog.source_id(sum.name, sum.type));
      if (unchanged_sources.contains(id)) {
        MAILDSAR_TRY_ASSIGN(sum.items, catalog.recorded_item_count(id));
        MAILDSAR_TRY_ASSIGN(std::string skipped, catalog.recorded_skipped(id));
        sum.skipped = decode_skipped(skipped);
      } else {
        MAILDSAR_TRY_ASSIGN(sum.items, catalog.item_count(id));
        MAILDSAR_TRY(catalog.record_item_count(id, sum.items));
        MAILDSAR_TRY(catalog.record_skipped(id, encode_skipped(sum.skipped)));
      }
      MAILDSAR_TRY(catalog.record_run(id, now, sum.errors, sum.held_removal)); // `maildsar status`
    }
    MAILDSAR_TRY(tx.commit());
  }
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

} // namespace maildsar::index
