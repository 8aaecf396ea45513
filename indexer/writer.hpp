// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// The indexer's single writer (internal to indexer/): it owns the catalog and Xapian
// transactions of a run and writes what the workers scanned (indexer.cpp), the blocks of a log
// edited in place (log_index.hpp) and the documents a rotated log moves (rotation.cpp).
//
// Crash consistency (a kill at any point leaves a state the next run repairs):
//  1. every file touched in a batch is written to the catalog as `pending` (with its items)
//     and that catalog transaction is committed BEFORE the Xapian transaction that holds its
//     documents;
//  2. only after the Xapian commit are the finished files marked `done` (and vanished files'
//     rows deleted);
//  3. a file that is not `done` is re-read from the start next time, and a full re-read first
//     deletes every document of the file through its XFILE: term, so no orphan survives.

#include "connectors/connector.hpp"
#include "connectors/maillog.hpp"
#include "core/result.hpp"
#include "core/sqlite.hpp"
#include "indexer/catalog.hpp"
#include "indexer/document.hpp"
#include "indexer/index_store.hpp"
#include "indexer/indexer.hpp"
#include "indexer/pipeline.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace maildsar::index::pipeline {

/** The catalog row of a listed file: its identity and stat, in `status`. */
[[nodiscard]] FileRecord listed_file_record(std::int64_t source_id, const FileEntry &entry,
                                            FileStatus status);

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

/**
 * The single writer of an index run (on run_index's thread): batches of catalog rows and Xapian
 * documents, committed in the order above, counted in each source's SourceSummary.
 * `options`, `catalog` and `store` are not owned and must outlive it.
 */
class Writer {
public:
  Writer(const IndexOptions &options, Catalog &catalog, IndexStore &store)
      : m_options(options), m_catalog(catalog), m_store(store) {}

  /** Opens a batch: a catalog transaction and a Xapian one. */
  [[nodiscard]] core::Status begin_batch();

  /** Commits the batch (catalog, then Xapian, then the finished files done; see above). */
  [[nodiscard]] core::Status commit_batch();

  /** Commits and opens the next batch once this one holds batch_size documents or k_batch_bytes. */
  [[nodiscard]] core::Status maybe_commit();

  /** --full: every document of the source goes; every file is re-read. */
  [[nodiscard]] core::Status drop_source(const std::string &source, std::int64_t source_id,
                                         std::unordered_map<std::string, FileBrief> &files);

  /** A file no longer listed: its documents go, its row after the Xapian commit (removed). */
  [[nodiscard]] core::Status vanish(const std::string &source, const FileRecord &rec, SourceSummary &sum);

  /** Drops the file's old documents (full mode) and writes its catalog row as pending. */
  [[nodiscard]] core::Status start(const std::string &source, std::int64_t source_id, const Job &job,
                                   FileState &fs);

  /**
   * Writes one document of the file of `job` and its catalog row, counted as new or changed
   * (by transaction for a log block, whose transactions' first lines are `log_lines`).
   */
  [[nodiscard]] core::Status write_doc(const std::string &source, std::int64_t source_id, const Job &job,
                                       FileState &fs, BuiltDocument &&built, SourceSummary &sum,
                                       const std::vector<std::uint64_t> &log_lines);

  /**
   * The scan of the file of `job` is over: a failed one is reported (the file's row in error,
   * its old documents kept if none was written); else its row gets the new stat and marks,
   * done after the next Xapian commit.
   */
  [[nodiscard]] core::Status finish(const std::string &source, std::int64_t source_id, const Job &job,
                                    FileState &fs, MsgEnd &&end, SourceSummary &sum);

  /**
   * A plain log edited in place at `offsets` (IndexOptions::edited_in_place): the blocks whose
   * range holds an edited line are built again from the log as it is now, the others stay, and
   * the file's row gets the new stat and marks (pending until the Xapian commit, like a scan's).
   * False when that cannot be exact (another file or size than the catalog's, a block that
   * depends on its whole scan): nothing is written and the caller reads the log whole.
   */
  [[nodiscard]] core::Result<bool> patch_log(std::int64_t source_id, const Job &job,
                                             const std::vector<std::uint64_t> &offsets,
                                             const DocumentContext &ctx, SourceSummary &sum);

  /** Log blocks built again by patch_log() in this run. */
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
   * path before (its remaining items are dropped and counted as removed). See rotation.cpp.
   */
  [[nodiscard]] core::Result<MoveOutcome> move_file(const std::string &source, std::int64_t source_id,
                                                    const FileRecord &origin, bool origin_gone,
                                                    const FileEntry &target, const FileRecord *at_target,
                                                    const connectors::ContentProbe &probe, SourceSummary &sum);

  /** Documents (items and log blocks) written in this run. */
  [[nodiscard]] std::uint64_t docs_written() const { return m_docs_written; }

  /** Marks a file done after the next Xapian commit. */
  void finished(std::int64_t file_id) { m_finished.emplace_back(file_id, std::string()); }

  /** A problem (SourceSummary::errors), passed to IndexOptions::on_problem. */
  void report(const std::string &source, ScanError &&error, SourceSummary &sum);

  /** A warning (SourceSummary::warnings), passed to IndexOptions::on_warning. */
  void warn(const std::string &source, ScanError &&warning, SourceSummary &sum);

  /** Gives up the open batch: the Xapian transaction is cancelled, the catalog's rolled back. */
  [[nodiscard]] core::Status abandon();

private:
  bool fault(std::string_view step) const { return m_options.fault_at && m_options.fault_at(step); }

  const IndexOptions &m_options;
  Catalog &m_catalog;
  IndexStore &m_store;
  std::optional<core::sqlite::Transaction> m_catalog_tx;
  std::optional<IndexTransaction> m_index_tx;
  std::uint64_t m_docs_in_batch = 0;
  std::uint64_t m_bytes_in_batch = 0; // approx_bytes of the documents not yet committed
  std::uint64_t m_docs_written = 0;
  std::uint64_t m_log_blocks_patched = 0;
  std::vector<std::pair<std::int64_t, std::string>> m_finished; // file id, its last_error
  std::vector<std::int64_t> m_vanished;
  /** Paths written in this run (restarts), by std::hash: a million paths cost ~40 MB less than
      their strings. A collision only costs a needless delete of a path that has no documents. */
  std::unordered_set<std::size_t> m_dirty_file_ids;
};

} // namespace maildsar::index::pipeline
