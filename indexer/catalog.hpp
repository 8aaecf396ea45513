// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// The SQLite catalog (<state>/catalog.sqlite3): which files of which source were indexed, in
// what state, and which items (Q terms) each holds. It lets a re-index cost little more than
// stat() calls, and it is kept consistent with the Xapian commits (see writer.hpp).

#include "connectors/connector.hpp"
#include "core/config.hpp"
#include "core/fs.hpp"
#include "core/result.hpp"
#include "core/sqlite.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace maildsar::index {

/** done: its docs are committed; pending: being (re)indexed; error: last scan failed. */
enum class FileStatus { pending, done, error };
[[nodiscard]] std::string_view to_string(FileStatus status);

struct FileRecord {
  std::int64_t id = 0;
  std::int64_t source_id = 0;
  std::string path;
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t scanned_size = 0;    // bytes covered by the last complete scan
  std::string tail_fingerprint;      // sha256 of bytes [scanned_size-4096, scanned_size)
  // Content marks (logs only; empty/0 otherwise), over the *decompressed* content that the last
  // complete scan covered: they let a re-index recognise a rotated log (mail.log -> mail.log.1
  // -> mail.log.2.gz) as data it already holds (see rotation.cpp, "Rotation").
  std::string head_fingerprint;      // sha256 of decompressed bytes [0, min(4096, content_size))
  std::uint64_t content_size = 0;    // decompressed bytes covered by the last complete scan
  std::string content_tail;          // sha256 of decompressed [content_size-4096, content_size)
  /** Compressed logs: restart points (connectors::ContentProbe::gz_points), written by put_file
      only (a listing does not read them back); read by read_log_file(). */
  std::string gz_points;
  /** mbox: the number the next message found in the file gets (connectors::Locator::seq). */
  std::uint64_t next_seq = 0;
  FileStatus status = FileStatus::pending;
  std::string last_error;
};

struct ItemRecord {
  std::string qterm;
  std::int64_t file_id = 0;
  std::string locator_key;
  std::string sha256;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  /** Items the row stands for: 1, or the transactions of a log block (indexer/log_block.hpp). */
  std::uint64_t n = 1;
  /** The row's SQLite rowid, as items_of_file read it (0 otherwise; put_item ignores it). */
  std::int64_t row = 0;
};

struct SourceRecord {
  std::int64_t id = 0;
  std::string name;
  std::string type;
  std::optional<std::int64_t> last_success; // seconds since the epoch
  std::uint64_t files = 0;
  std::uint64_t items = 0;
};

/** What happened to a file since the catalog last saw it. */
enum class Transition {
  new_file,  // not in the catalog
  unchanged, // same dev/ino/size/mtime and fully indexed: skip without opening
  changed,   // re-read from the start, replacing its items
  grown,     // append-only store, same inode, larger: maybe scan only the new part
             // (the caller confirms with the tail fingerprint)
};
[[nodiscard]] std::string_view to_string(Transition transition);

enum class AppendSupport { no, yes };

/**
 * What classifying a listed file needs of its catalog record (Catalog::file_briefs): the
 * indexer holds one per file of a source for the whole run, a fifth of a FileRecord's memory
 * (docs/performance.md "A million items").
 */
struct FileBrief {
  std::int64_t id = 0;
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t scanned_size = 0;
  FileStatus status = FileStatus::pending;
  bool listed = false; // the indexer's mark: the run's listing has the file
};

/** Classifies a file (pure: no I/O). */
[[nodiscard]] Transition classify(const FileRecord *old, const core::FileStat &now,
                                  AppendSupport append);
[[nodiscard]] Transition classify(const FileBrief *old, const core::FileStat &now,
                                  AppendSupport append);

/** Bytes hashed by tail_fingerprint. */
inline constexpr std::uint64_t k_fingerprint_bytes = 4096;

/** sha256 hex of bytes [max(0, end-4096), end) of `path`; ErrorCode::data if shorter than `end`. */
[[nodiscard]] core::Result<std::string> tail_fingerprint(const std::string &path, std::uint64_t end);

/**
 * FileRecord::head_fingerprint (and LogFileState's) of a log whose last complete scan covered
 * `content_size` decompressed bytes: the sha256 hex of the first min(content_size, head.size())
 * bytes of `head`, the start of its decompressed content (connectors::ContentProbe::head).
 */
[[nodiscard]] std::string head_fingerprint_of(const std::string &head, std::uint64_t content_size);

class Catalog {
public:
  /** Opens or creates the catalog (mode 0600), applying migrations. */
  [[nodiscard]] static core::Result<Catalog> open(const std::string &path);

  Catalog(Catalog &&) noexcept = default;
  Catalog &operator=(Catalog &&) noexcept = default;
  Catalog(const Catalog &) = delete;
  Catalog &operator=(const Catalog &) = delete;
  ~Catalog() = default;

  [[nodiscard]] core::Result<core::sqlite::Transaction> begin();

  /** The id of a source, created if new. */
  [[nodiscard]] core::Result<std::int64_t> source_id(const std::string &name, const std::string &type);
  [[nodiscard]] core::Result<std::vector<SourceRecord>> sources();
  [[nodiscard]] core::Status set_last_success(std::int64_t source_id, std::int64_t when);

  /** All files of a source, keyed by path. */
  [[nodiscard]] core::Result<std::unordered_map<std::string, FileRecord>> files(std::int64_t source_id);
  /** All files of a source, keyed by path, as much as classify() needs. */
  [[nodiscard]] core::Result<std::unordered_map<std::string, FileBrief>> file_briefs(std::int64_t source_id);
  /** One file's whole record (nullopt: no such row). */
  [[nodiscard]] core::Result<std::optional<FileRecord>> file(std::int64_t file_id);
  /**
   * The source's item count as recorded by the last run that changed it (item_count() counts
   * the rows, which a no-op run need not pay for).
   */
  [[nodiscard]] core::Result<std::uint64_t> recorded_item_count(std::int64_t source_id);
  [[nodiscard]] core::Status record_item_count(std::int64_t source_id, std::uint64_t items);
  /** The files the source's last listing skipped on purpose, by reason, as record_skipped
      stored them ("dotfile=2;mua-file=1"; "" = none or never listed). */
  [[nodiscard]] core::Result<std::string> recorded_skipped(std::int64_t source_id);
  [[nodiscard]] core::Status record_skipped(std::int64_t source_id, const std::string &skipped);
  /**
   * Records the end time and problem count of a run that reached the source (`status`), and
   * why that run kept files it no longer found ("" = it kept none; see the removal guard).
   */
  [[nodiscard]] core::Status record_run(std::int64_t source_id, std::int64_t when,
                                        std::uint64_t errors, const std::string &held_removal);
  /** The name of another source than `source_id` whose files include `path`, if any. */
  [[nodiscard]] core::Result<std::optional<std::string>> other_source_of(const std::string &path,
                                                                         std::int64_t source_id);
  /** Records the configuration (source_origin) the source was last indexed with. */
  [[nodiscard]] core::Status set_origin(std::int64_t source_id, const std::string &origin);
  /** Files of a source in the catalog. */
  [[nodiscard]] core::Result<std::uint64_t> file_count(std::int64_t source_id);
  /**
   * The layout digest (Connector::layout_fingerprint) recorded after the source's last complete
   * run without problems; "" when none may be trusted.
   */
  [[nodiscard]] core::Result<std::string> layout(std::int64_t source_id);
  /** Records the layout digest and the file count of the listing it describes (none with ""). */
  [[nodiscard]] core::Status set_layout(std::int64_t source_id, const std::string &layout,
                                        std::optional<std::uint64_t> files = std::nullopt);
  /**
   * The file count recorded with the source's layout: what a run that skips the source for its
   * unchanged layout reports, without counting the rows (file_count() where none was recorded).
   */
  [[nodiscard]] core::Result<std::uint64_t> layout_file_count(std::int64_t source_id);
  /** Inserts or updates by (source, path); returns the id. */
  [[nodiscard]] core::Result<std::int64_t> put_file(const FileRecord &file);
  [[nodiscard]] core::Status set_status(std::int64_t file_id, FileStatus status,
                                        const std::string &last_error);
  /** Deletes a file and its items. */
  [[nodiscard]] core::Status delete_file(std::int64_t file_id);
  /** Deletes every file (and item) of a source. */
  [[nodiscard]] core::Status delete_source_files(std::int64_t source_id);

  [[nodiscard]] core::Result<std::vector<std::string>> item_terms(std::int64_t file_id);
  /** All item rows of a file. */
  [[nodiscard]] core::Result<std::vector<ItemRecord>> items_of_file(std::int64_t file_id);
  /** Deletes one item row. */
  [[nodiscard]] core::Status delete_item(const std::string &qterm);
  [[nodiscard]] core::Result<std::uint64_t> item_count_of_file(std::int64_t file_id);
  [[nodiscard]] core::Status delete_items(std::int64_t file_id);
  [[nodiscard]] core::Result<bool> has_item(const std::string &qterm);
  /** Inserts or replaces by qterm. */
  [[nodiscard]] core::Status put_item(const ItemRecord &item);
  /** Sets where an item's bytes begin now (an mbox message moved by an erasure before it); `row`
      is its ItemRecord::row from items_of_file or ItemPlace::row. */
  [[nodiscard]] core::Status move_item(std::int64_t row, std::uint64_t offset);
  /** Where a file's items lie, and no more (an erasure moving them: indexer/shift.cpp reads
      40,000 rows of a large mbox, so not their hashes and keys). */
  struct ItemPlace {
    std::int64_t row = 0;
    std::uint64_t offset = 0;
    bool stable_key = false; // its key holds its number in the file ("@#"), not its offset
  };
  [[nodiscard]] core::Result<std::vector<ItemPlace>> item_places_of_file(std::int64_t file_id);
  /** Deletes the item in `row` (ItemPlace::row). */
  [[nodiscard]] core::Status delete_row(std::int64_t row);
  /** The qterm of the item in `row` ("" when there is none). */
  [[nodiscard]] core::Result<std::string> qterm_of_row(std::int64_t row);
  [[nodiscard]] core::Result<std::optional<ItemRecord>> item(const std::string &qterm);
  [[nodiscard]] core::Result<std::uint64_t> item_count(std::int64_t source_id);

  [[nodiscard]] const core::sqlite::Db &db() const { return m_db; }

  /**
   * Leaves nothing deleted from the catalog readable in its files (after erasure: the erased
   * items' rows). Every connection opened here zeroes what a deletion frees (PRAGMA
   * secure_delete), so a catalog written only that way needs just a checkpoint that empties the
   * write-ahead log; one that may hold bytes freed without it (made by a version before schema
   * 10) is rebuilt once with VACUUM, after which it is marked as zeroed.
   * @return true when a VACUUM was needed.
   */
  [[nodiscard]] core::Result<bool> scrub();

  /**
   * Commits need not reach the disk before returning (PRAGMA synchronous=NORMAL). Only for
   * a run that changed nothing but the last-success times: losing those to a power cut is
   * harmless, and it spares a no-op re-index the one fsync it would otherwise wait for.
   */
  [[nodiscard]] core::Status relax_durability() { return m_db.exec("PRAGMA synchronous=NORMAL"); }

private:
  explicit Catalog(core::sqlite::Db db) : m_db(std::move(db)) {}
  [[nodiscard]] core::Result<core::sqlite::Stmt *> stmt(int which, std::string_view sql);
  core::sqlite::Db m_db;
  // Prepared once, reused (declared after m_db so they are finalized first).
  std::unordered_map<int, core::sqlite::Stmt> m_stmts;
};

/** What `maildsar status` shows of one source, as the catalog recorded it. */
struct SourceStatus {
  std::string name;
  std::string type;
  std::optional<std::int64_t> last_success; // end of the last run that indexed it (epoch s)
  std::optional<std::int64_t> last_run;     // end of the last run that reached it, even failed
  std::uint64_t files = 0;                  // files read completely (done or failed)
  std::uint64_t items = 0;                  // items recorded by the last run that changed it
  std::uint64_t errors = 0;                 // problems of the last run
  std::string origin;       // source_origin() of the config last indexed ("" = not recorded)
  std::string held_removal; // why the last run kept files it no longer found ("" = it did not)
};

/**
 * What of a source's configuration its index entries depend on ("type format path"): a source
 * whose recorded origin differs has not been indexed as configured now.
 */
[[nodiscard]] std::string source_origin(const core::SourceConfig &source);

/** Whether read_source_status counts each source's files (SourceStatus::files), which reads
    every file row: with a million files, most of a `find`'s time when it only needs to know that
    every source was indexed. */
enum class CountFiles { yes, no };

/**
 * Every source the catalog at `path` knows, by name. Read-only: takes no lock and applies no
 * migration, so it answers while `index` runs (it sees the last commit). A missing catalog
 * gives an empty list. With CountFiles::no, SourceStatus::files is 0.
 */
[[nodiscard]] core::Result<std::vector<SourceStatus>> read_source_status(const std::string &path,
                                                                         CountFiles count = CountFiles::yes);

/** What the last complete scan of a log saw of it (read_log_file). */
struct LogFileState {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::string head_fingerprint;
  std::uint64_t content_size = 0;
  std::string content_tail;
  std::string gz_points; // "" for a plain or small log (connectors::ContentProbe::gz_points)
};

/**
 * The done row of the log `file` in the catalog at `path`. Read-only like read_source_status;
 * nullopt when there is none (a missing catalog, an older one, no done row for `file`).
 */
[[nodiscard]] core::Result<std::optional<LogFileState>> read_log_file(const std::string &path,
                                                                      const std::string &file);

/** Where an item lies in its file now (an mbox message: its key does not say). */
struct ItemPlace {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

/**
 * The places of the items `qterms` (Q terms) as the catalog at `path` records them; an item it
 * has no row for is left out. Read-only like read_log_file; empty for a missing or older catalog.
 */
[[nodiscard]] core::Result<std::unordered_map<std::string, ItemPlace>>
read_item_places(const std::string &path, std::span<const std::string> qterms);

/** A file whose last scan failed (FileStatus::error), or read except for some parts (done with a
    last_error: an mbox's bytes outside any message, a PST item libpst could not read): what it
    holds there was not searched. */
struct UnreadFile {
  std::string source;
  std::string path;
  std::string last_error;
};

/**
 * Every file of the catalog at `path` in the error state or read in part, by source and path. Read-only like
 * read_source_status; a missing catalog gives an empty list. `verify` refuses a certificate
 * while any remains (docs/reliability.md).
 */
[[nodiscard]] core::Result<std::vector<UnreadFile>> read_unread_files(const std::string &path);

} // namespace maildsar::index
