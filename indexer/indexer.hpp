// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"
#include "core/config.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::index {

/** Per-source counts of one `index` run. */
struct SourceSummary {
  std::string name;
  std::string type;
  std::uint64_t files = 0;     // files the source covers now
  std::uint64_t items = 0;     // items in the index for this source after the run
  std::uint64_t new_items = 0; // items added
  std::uint64_t changed = 0;   // items re-indexed because their file changed
  std::uint64_t removed = 0;   // items dropped (file vanished or item gone)
  std::uint64_t moved = 0;     // items kept, found in another file (rotated logs; not in new/removed)
  std::uint64_t log_blocks_rebuilt = 0; // blocks of logs edited in place, built again (their
                                        // transactions count as changed); the rest not read
  std::uint64_t errors = 0;    // problems reported (file or item level)
  /** Files the source's listing skipped on purpose, by connectors::SkipReason name (Maildir:
      dotfiles, mail-program state, files that are no message, deliveries in progress, ...).
      A run that does not list (unchanged layout) gives those of the last listing. */
  std::map<std::string, std::uint64_t> skipped;
  std::uint64_t warnings = 0;  // items indexed only in part, or split, at a limit (limits.*)
  /** Items indexed only in part this run (cut at a limit, attachment text cut or not
      extracted): `verify` gives no certificate while such items remain. */
  std::uint64_t truncated = 0;
  /** Items indexed this run that show the subject of a completed erasure (indexer/suppression.hpp;
      a log's transactions one by one): flagged `suppressed` until handled. */
  std::uint64_t suppressed = 0;
  /** Why the removal guard kept files this run no longer found ("" = it kept none). */
  std::string held_removal;
};

struct IndexSummary {
  std::vector<SourceSummary> sources;
  std::uint64_t errors = 0; // total
  std::uint64_t warnings = 0; // total
  std::uint64_t truncated = 0; // total
  std::uint64_t suppressed = 0; // total
  double seconds = 0;
};

/** A problem met while indexing (already counted in the summary). */
struct IndexProblem {
  std::string source;
  connectors::ScanError error;
};

enum class FullScan { no, yes };

/**
 * The removal guard: a source whose root is missing, whose files all vanished, or more than
 * Config::max_removal_percent of whose files vanished in one run is not changed (its items are
 * kept; a problem is reported) unless the source is in IndexOptions::accept_removal. `off` is for
 * callers that removed the files themselves (erase, retention).
 */
enum class RemovalGuard { on, off };

struct IndexOptions {
  std::vector<std::string> only_sources; // empty = all
  FullScan full = FullScan::no;          // yes: ignore the catalog, re-read every file
  RemovalGuard removal_guard = RemovalGuard::on;
  std::vector<std::string> accept_removal; // sources whose vanished files may go this run
  unsigned threads = 0;                  // parser threads; 0 = one per core but the writer's
  /** Called for every problem as it happens (from the writer thread). */
  std::function<void(const IndexProblem &)> on_problem;
  /** Called for every warning (an item indexed only in part, or split, at a limit), from the
      writer thread. Warnings do not make the run fail. */
  std::function<void(const IndexProblem &)> on_warning;
  /** Called with a source's name and its files done / files to read: once with 0 before its
      first file, then after every file (from the writer thread). Sources with nothing to read
      are not reported. */
  std::function<void(std::string_view source, std::uint64_t done, std::uint64_t total)> on_progress;
  /** Transactions per log block (indexer/log_block.hpp); 0 = k_block_items. Tests make it small
      to get many blocks out of a few lines. */
  std::size_t log_block_items = 0;
  /**
   * Plain delivery logs that the caller (erase) has just edited in place, lines replaced by lines
   * of the same length: path -> the byte offsets of the edited lines. Such a log, otherwise as
   * the catalog has it (same file, same size), has only the blocks holding an edited line built
   * again (rebuild_log_block), not the whole log read (docs/ARCHITECTURE.md "The log index").
   * Only a hint: a log it does not fit is read whole.
   */
  std::map<std::string, std::vector<std::uint64_t>> edited_in_place;
  /** Files per part of a first index read while it is listed (see Connector::each_file);
      0 = pipeline k_stream_jobs. Tests make it small. */
  std::size_t stream_part_files = 0;
  /** Documents per commit (Xapian transaction + catalog transaction). */
  std::uint64_t batch_size = 20000;
  /**
   * Test hook (fault injection, STYLE §45): called at "before_catalog_commit",
   * "before_index_commit" and "after_index_commit"; returning true makes run_index stop right
   * there with ErrorCode::internal, as if the process had been killed.
   */
  std::function<bool(std::string_view step)> fault_at;
};

/** Creates the connector of a source (tests inject fakes). */
using ConnectorFactory = std::function<core::Result<std::unique_ptr<connectors::Connector>>(
    const core::SourceConfig &)>;

/**
 * `maildsar index`: scans the configured sources, indexes new and changed items and drops
 * vanished ones. Holds the state dir's index lock (ErrorCode::index_locked when another indexer
 * runs). Readers keep working on the last committed state meanwhile.
 */
[[nodiscard]] core::Result<IndexSummary> run_index(const core::Config &config,
                                                   const IndexOptions &options);
/** As above with connectors from `factory` instead of connectors::make_connector. */
[[nodiscard]] core::Result<IndexSummary> run_index(const core::Config &config,
                                                   const IndexOptions &options,
                                                   const ConnectorFactory &factory);

/**
 * After an erasure: rewrites the index as a compacted copy (only live documents; the freed
 * blocks of deleted ones, which may still hold their terms, are not carried over) and VACUUMs
 * the catalog. Takes the index lock (ErrorCode::index_locked while an index run is going on).
 */
[[nodiscard]] core::Status compact_state(const core::Config &config);

/** A byte range [offset, offset + length) that erase removed from an mbox. */
struct RemovedRange {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

/**
 * After erase removed `removed` from the mbox at `path` (which had inode `old_ino`; every byte
 * after a range moved left by its length): brings the index and catalog up to date without
 * re-reading the file — the removed items' documents are deleted; the others keep theirs (their
 * keys hold their numbers in the file, connectors::Locator::seq) and only their catalog rows get
 * their new offsets; the file's record is updated so the next `index` finds it unchanged. Returns false
 * (changing nothing) when the catalog did not describe that file completely (then a normal
 * `index` re-reads it). Takes the index lock.
 */
[[nodiscard]] core::Result<bool> apply_mbox_cuts(const core::Config &config, const std::string &source,
                                                 const std::string &path, std::uint64_t old_ino,
                                                 const std::vector<RemovedRange> &removed);

/** Paths inside the state directory. */
[[nodiscard]] std::string index_path(const core::Config &config);   // <state>/xapian
[[nodiscard]] std::string catalog_path(const core::Config &config); // <state>/catalog.sqlite3
[[nodiscard]] std::string lock_path(const core::Config &config);    // <state>/index.lock

/** "Xapian 1.4.22, SQLite 3.40.1, libphonenumber, libidn2 2.3.3" (for --version). */
[[nodiscard]] std::string library_versions();

} // namespace maildsar::index
