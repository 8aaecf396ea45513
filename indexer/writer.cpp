// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/writer.hpp"

#include "indexer/log_index.hpp"
#include "indexer/schema.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <malloc.h>

// jemalloc's control interface, when the program is linked with jemalloc (cli/CMakeLists.txt);
// null in builds that are not (the sanitizers', the tests' own binaries): glibc's malloc then.
extern "C" int mallctl(const char *name, void *oldp, std::size_t *oldlenp, void *newp, std::size_t newlen)
    __attribute__((weak));

namespace maildsar::index::pipeline {

namespace {

/**
 * Hands the pages the allocator holds free back to the kernel, so that a long run's RSS follows
 * one batch, not the sum of every thread's peak: jemalloc purges every arena (4096 is its
 * MALLCTL_ARENAS_ALL), glibc trims its arenas.
 */
void release_free_memory() {
  if (mallctl != nullptr) {
    (void)mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
    return;
  }
  ::malloc_trim(0);
}

std::unexpected<core::Error> fault_error(std::string_view step) {
  return core::fail(core::ErrorCode::internal, fmt::format("fault injected at {}", step));
}

} // namespace

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

core::Status Writer::begin_batch() {
  MAILDSAR_TRY_ASSIGN(auto tx, m_catalog.begin());
  m_catalog_tx.emplace(std::move(tx));
  MAILDSAR_TRY_ASSIGN(auto itx, m_store.begin_transaction());
  m_index_tx.emplace(std::move(itx));
  m_docs_in_batch = 0;
  m_bytes_in_batch = 0;
  return {};
}

core::Status Writer::commit_batch() {
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

core::Status Writer::maybe_commit() {
  if (m_docs_in_batch >= std::max<std::uint64_t>(1, m_options.batch_size) ||
      m_bytes_in_batch >= k_batch_bytes) {
    MAILDSAR_TRY(commit_batch());
    // The commit freed what Xapian buffered for the batch, and the allocator keeps freed memory
    // in each thread's arena (the workers build documents, this thread frees them).
    release_free_memory();
    MAILDSAR_TRY(begin_batch());
  }
  return {};
}

core::Status Writer::drop_source(const std::string &source, std::int64_t source_id,
                                 std::unordered_map<std::string, FileBrief> &files) {
  MAILDSAR_TRY(m_store.delete_by_term(schema::prefix_for("source") + source));
  for (auto &[path, rec] : files) {
    MAILDSAR_TRY(m_catalog.set_status(rec.id, FileStatus::pending, {}));
    rec.status = FileStatus::pending;
  }
  (void)source_id;
  return {};
}

core::Status Writer::vanish(const std::string &source, const FileRecord &rec, SourceSummary &sum) {
  MAILDSAR_TRY_ASSIGN(std::uint64_t n, m_catalog.item_count_of_file(rec.id));
  sum.removed += n;
  MAILDSAR_TRY(m_catalog.set_status(rec.id, FileStatus::pending, {}));
  MAILDSAR_TRY(m_store.delete_by_term(schema::file_term(source, rec.path)));
  m_vanished.push_back(rec.id);
  ++m_docs_in_batch;
  return maybe_commit();
}

core::Status Writer::start(const std::string &source, std::int64_t source_id, const Job &job,
                           FileState &fs) {
  if (fs.started) {
    return {};
  }
  FileRecord rec = listed_file_record(source_id, job.entry, FileStatus::pending);
  if (fs.mode == ScanMode::append && job.old) {
    rec.scanned_size = job.old->scanned_size;
    rec.tail_fingerprint = job.old->tail_fingerprint;
    rec.next_seq = job.old->next_seq;
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
    const std::size_t path_hash = std::hash<std::string>{}(job.entry.path);
    if (job.old || m_options.full == FullScan::yes || m_dirty_file_ids.contains(path_hash)) {
      MAILDSAR_TRY(m_store.delete_by_term(schema::file_term(source, job.entry.path)));
    }
    m_dirty_file_ids.insert(path_hash);
  }
  MAILDSAR_TRY_ASSIGN(fs.file_id, m_catalog.put_file(rec));
  fs.started = true;
  return {};
}

core::Status Writer::write_doc(const std::string &source, std::int64_t source_id, const Job &job,
                               FileState &fs, BuiltDocument &&built, SourceSummary &sum,
                               const std::vector<std::uint64_t> &log_lines) {
  MAILDSAR_TRY(start(source, source_id, job, fs));
  const std::string &qterm = built.doc.key();
  m_bytes_in_batch += built.doc.approx_bytes();
  ++m_docs_written;
  if (!log_lines.empty()) {
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

core::Status Writer::finish(const std::string &source, std::int64_t source_id, const Job &job,
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
  rec.next_seq = end.next_seq;
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

core::Result<bool> Writer::patch_log(std::int64_t source_id, const Job &job,
                                     const std::vector<std::uint64_t> &offsets,
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

void Writer::report(const std::string &source, ScanError &&error, SourceSummary &sum) {
  ++sum.errors;
  if (m_options.on_problem) {
    m_options.on_problem(IndexProblem{source, std::move(error)});
  }
}

void Writer::warn(const std::string &source, ScanError &&warning, SourceSummary &sum) {
  ++sum.warnings;
  if (m_options.on_warning) {
    m_options.on_warning(IndexProblem{source, std::move(warning)});
  }
}

core::Status Writer::abandon() {
  // Destroying the guards cancels the Xapian transaction and rolls the catalog back.
  m_index_tx.reset();
  m_catalog_tx.reset();
  return {};
}

} // namespace maildsar::index::pipeline
