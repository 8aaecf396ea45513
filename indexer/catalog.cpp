// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/catalog.hpp"

#include "core/hash.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <span>

namespace maildsar::index {

using core::sqlite::Stmt;

namespace {

constexpr std::string_view k_migration_1 = R"sql(
CREATE TABLE sources (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  last_success INTEGER
);
CREATE TABLE files (
  id INTEGER PRIMARY KEY,
  source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  dev INTEGER NOT NULL,
  ino INTEGER NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  scanned_size INTEGER NOT NULL DEFAULT 0,
  tail_fingerprint TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'error')),
  last_error TEXT NOT NULL DEFAULT '',
  UNIQUE (source_id, path)
);
CREATE TABLE items (
  qterm TEXT PRIMARY KEY,
  file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
  locator_key TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  offset INTEGER NOT NULL DEFAULT 0,
  length INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX items_by_file ON items(file_id);
)sql";

// Content marks for rotation detection (logs).
constexpr std::string_view k_migration_2 = R"sql(
ALTER TABLE files ADD COLUMN head_fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN content_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN content_tail TEXT NOT NULL DEFAULT '';
)sql";

// The directory layout digest of a source (see Connector::layout_fingerprint).
constexpr std::string_view k_migration_3 = R"sql(
ALTER TABLE sources ADD COLUMN layout TEXT NOT NULL DEFAULT '';
ALTER TABLE sources ADD COLUMN items INTEGER NOT NULL DEFAULT 0;
)sql";

// The outcome of the last run that reached a source (`maildsar status`).
constexpr std::string_view k_migration_4 = R"sql(
ALTER TABLE sources ADD COLUMN last_run INTEGER;
ALTER TABLE sources ADD COLUMN last_errors INTEGER NOT NULL DEFAULT 0;
)sql";

// Freshness and removal guard (issue 13): the configuration each source was last indexed with
// ("type format path", so a changed path means "not indexed yet"), and why the last run kept
// files it no longer found ('' = it did not; see "The removal guard" in indexer.cpp).
constexpr std::string_view k_migration_5 = R"sql(
ALTER TABLE sources ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE sources ADD COLUMN held_removal TEXT NOT NULL DEFAULT '';
CREATE INDEX files_by_path ON files(path);
)sql";

// Files each source skipped on purpose in its last listing, by reason ("dotfile=2;mua-file=1";
// issue 11 class 6: reported in the index summary, also by a run that does not list).
constexpr std::string_view k_migration_6 = R"sql(
ALTER TABLE sources ADD COLUMN skipped TEXT NOT NULL DEFAULT '';
)sql";

// The log index (issue 12): one row per block of log transactions, whose transaction count is
// `n` (1 for every other item). Item counts are sums of `n`.
constexpr std::string_view k_migration_7 = R"sql(
ALTER TABLE items ADD COLUMN n INTEGER NOT NULL DEFAULT 1;
)sql";

// Restart points into compressed logs (connectors/maillog/gz_access.hpp), for the query side.
constexpr std::string_view k_migration_8 = R"sql(
ALTER TABLE files ADD COLUMN gz_points BLOB NOT NULL DEFAULT x'';
)sql";

// mbox items are keyed by their number in the file (Locator::seq), which is never given twice in
// a file: the next one to give. Their offsets and lengths are the items rows' (indexer/shift.cpp).
constexpr std::string_view k_migration_9 = R"sql(
ALTER TABLE files ADD COLUMN next_seq INTEGER NOT NULL DEFAULT 0;
)sql";

// One row once every deletion since the catalog was made or last rebuilt with VACUUM zeroed what
// it freed (PRAGMA secure_delete, set on every connection since this version): Catalog::scrub()
// then needs no VACUUM. A catalog made before holds no row until its first scrub.
constexpr std::string_view k_migration_10 = R"sql(
CREATE TABLE zeroed_since_vacuum (one INTEGER PRIMARY KEY CHECK (one = 1));
)sql";
// The file count of the listing that recorded a source's layout (NULL: none recorded): a run that
// skips the source because its layout is unchanged reports it without counting the rows.
constexpr std::string_view k_migration_11 = R"sql(
ALTER TABLE sources ADD COLUMN layout_files INTEGER;
)sql";

// files_by_path (migration 5) repeated the (source_id, path) unique index without its first
// column: every file's path a third time, 2.5 % of a million-item estate's state. The lookups by
// path alone name the sources instead (`source_id IN (SELECT id FROM sources ...)`), one probe of
// the unique index per source.
constexpr std::string_view k_migration_12 = R"sql(
DROP INDEX IF EXISTS files_by_path;
)sql";

constexpr const char *k_mark_zeroed = "INSERT OR IGNORE INTO zeroed_since_vacuum VALUES (1)";

enum StmtId {
  s_source_get,
  s_source_add,
  s_sources,
  s_last_success,
  s_files,
  s_file_put,
  s_file_status,
  s_file_delete,
  s_source_files_delete,
  s_item_terms,
  s_item_count_file,
  s_items_delete,
  s_item_has,
  s_item_put,
  s_item_move,
  s_item_places,
  s_item_delete_row,
  s_item_qterm_of_row,
  s_item_get,
  s_item_count,
  s_items_of_file,
  s_item_delete,
  s_layout_get,
  s_layout_set,
  s_file_count,
  s_items_get,
  s_items_set,
  s_skipped_get,
  s_skipped_set,
  s_run_set,
  s_origin_set,
  s_path_owner,
  s_zeroed,
  s_checkpoint,
  s_layout_files,
  s_file_briefs,
  s_file_get,
};

FileStatus status_from(std::string_view s) {
  if (s == "done") {
    return FileStatus::done;
  }
  if (s == "error") {
    return FileStatus::error;
  }
  return FileStatus::pending;
}

} // namespace

std::string_view to_string(FileStatus status) {
  switch (status) {
  case FileStatus::pending:
    return "pending";
  case FileStatus::done:
    return "done";
  case FileStatus::error:
    return "error";
  }
  return "pending";
}

std::string_view to_string(Transition transition) {
  switch (transition) {
  case Transition::new_file:
    return "new";
  case Transition::unchanged:
    return "unchanged";
  case Transition::changed:
    return "changed";
  case Transition::grown:
    return "grown";
  }
  return "changed";
}

namespace {

template <typename Record>
Transition classify_record(const Record *old, const core::FileStat &now, AppendSupport append) {
  if (old == nullptr) {
    return Transition::new_file;
  }
  if (old->status != FileStatus::done) {
    return Transition::changed; // interrupted or failed earlier: read it again from the start
  }
  bool same_inode = old->dev == now.dev && old->ino == now.ino;
  if (same_inode && old->size == now.size && old->mtime_ns == now.mtime_ns) {
    return Transition::unchanged;
  }
  if (append == AppendSupport::yes && same_inode && now.size > old->size &&
      old->scanned_size > 0 && old->scanned_size <= old->size) {
    return Transition::grown;
  }
  return Transition::changed;
}

} // namespace

Transition classify(const FileRecord *old, const core::FileStat &now, AppendSupport append) {
  return classify_record(old, now, append);
}
Transition classify(const FileBrief *old, const core::FileStat &now, AppendSupport append) {
  return classify_record(old, now, append);
}

core::Result<std::string> tail_fingerprint(const std::string &path, std::uint64_t end) {
  MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(path));
  std::uint64_t start = end > k_fingerprint_bytes ? end - k_fingerprint_bytes : 0;
  MAILDSAR_TRY_ASSIGN(std::string bytes, core::read_range(fd.get(), start, end - start, path));
  if (bytes.size() != end - start) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("{}: shorter than the {} bytes scanned before", path, end));
  }
  return core::sha256_hex(bytes);
}

std::string head_fingerprint_of(const std::string &head, std::uint64_t content_size) {
  auto n = static_cast<std::size_t>(std::min<std::uint64_t>(content_size, head.size()));
  return core::sha256_hex(std::string_view(head).substr(0, n));
}

core::Result<Catalog> Catalog::open(const std::string &path) {
  MAILDSAR_TRY_ASSIGN(core::sqlite::Db db, core::sqlite::Db::open(path, core::sqlite::Writable::yes));
  // FULL: a catalog commit must be durable before the Xapian commit that relies on it.
  // secure_delete: what a deletion frees is zeroed (an erased item's row leaves no bytes).
  MAILDSAR_TRY(db.exec("PRAGMA synchronous=FULL; PRAGMA secure_delete=ON"));
  MAILDSAR_TRY_ASSIGN(std::int64_t version, db.user_version());
  MAILDSAR_TRY(db.migrate({k_migration_1, k_migration_2, k_migration_3, k_migration_4, k_migration_5,
                           k_migration_6, k_migration_7, k_migration_8, k_migration_9, k_migration_10,
                           k_migration_11, k_migration_12}));
  if (version == 0) {
    // A new catalog: every byte it ever frees is freed by a connection like this one.
    MAILDSAR_TRY(db.exec(k_mark_zeroed));
  }
  return Catalog(std::move(db));
}

core::Result<Stmt *> Catalog::stmt(int which, std::string_view sql) {
  auto it = m_stmts.find(which);
  if (it == m_stmts.end()) {
    MAILDSAR_TRY_ASSIGN(Stmt s, m_db.prepare(sql));
    it = m_stmts.emplace(which, std::move(s)).first;
  } else {
    it->second.reset();
  }
  return &it->second;
}

core::Result<core::sqlite::Transaction> Catalog::begin() {
  return core::sqlite::Transaction::begin(m_db);
}

core::Result<std::int64_t> Catalog::source_id(const std::string &name, const std::string &type) {
  {
    MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_source_get, "SELECT id FROM sources WHERE name = ?1"));
    MAILDSAR_TRY(s->bind(1, name));
    MAILDSAR_TRY_ASSIGN(bool row, s->step());
    if (row) {
      std::int64_t id = s->column_int64(0);
      s->reset();
      return id;
    }
  }
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_source_add, "INSERT INTO sources(name, type) VALUES (?1, ?2)"));
  MAILDSAR_TRY(s->bind(1, name));
  MAILDSAR_TRY(s->bind(2, type));
  MAILDSAR_TRY(s->run());
  return m_db.last_insert_rowid();
}

core::Result<std::vector<SourceRecord>> Catalog::sources() {
  MAILDSAR_TRY_ASSIGN(
      Stmt * s,
      stmt(s_sources,
           "SELECT s.id, s.name, s.type, s.last_success,"
           " (SELECT count(*) FROM files f WHERE f.source_id = s.id),"
           " (SELECT coalesce(sum(i.n), 0) FROM items i JOIN files f ON i.file_id = f.id"
           "  WHERE f.source_id = s.id)"
           " FROM sources s ORDER BY s.name"));
  std::vector<SourceRecord> out;
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, s->step());
    if (!row) {
      break;
    }
    SourceRecord r;
    r.id = s->column_int64(0);
    r.name = s->column_text(1);
    r.type = s->column_text(2);
    if (!s->column_is_null(3)) {
      r.last_success = s->column_int64(3);
    }
    r.files = s->column_uint64(4);
    r.items = s->column_uint64(5);
    out.push_back(std::move(r));
  }
  s->reset();
  return out;
}

core::Status Catalog::set_last_success(std::int64_t source_id, std::int64_t when) {
  MAILDSAR_TRY_ASSIGN(Stmt * s,
                      stmt(s_last_success, "UPDATE sources SET last_success = ?2 WHERE id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  MAILDSAR_TRY(s->bind(2, when));
  return s->run();
}

core::Result<std::string> Catalog::layout(std::int64_t source_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_layout_get, "SELECT layout FROM sources WHERE id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  MAILDSAR_TRY_ASSIGN(bool row, s->step());
  std::string out = row ? std::string(s->column_text(0)) : std::string();
  s->reset();
  return out;
}

core::Status Catalog::set_layout(std::int64_t source_id, const std::string &layout,
                                 std::optional<std::uint64_t> files) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_layout_set, "UPDATE sources SET layout = ?2, layout_files = ?3 WHERE id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  MAILDSAR_TRY(s->bind(2, layout));
  MAILDSAR_TRY(files ? s->bind(3, *files) : s->bind(3, core::sqlite::Null{}));
  return s->run();
}

core::Result<std::uint64_t> Catalog::layout_file_count(std::int64_t source_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_layout_files, "SELECT layout_files FROM sources WHERE id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  MAILDSAR_TRY_ASSIGN(bool row, s->step());
  const bool recorded = row && !s->column_is_null(0);
  const std::uint64_t n = recorded ? s->column_uint64(0) : 0;
  s->reset();
  if (recorded) {
    return n;
  }
  return file_count(source_id); // recorded by a version before schema 11
}

core::Result<std::uint64_t> Catalog::recorded_item_count(std::int64_t source_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_items_get, "SELECT items FROM sources WHERE id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  MAILDSAR_TRY_ASSIGN(bool row, s->step());
  std::uint64_t n = row ? s->column_uint64(0) : 0;
  s->reset();
  return n;
}

core::Status Catalog::record_item_count(std::int64_t source_id, std::uint64_t items) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_items_set, "UPDATE sources SET items = ?2 WHERE id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  MAILDSAR_TRY(s->bind(2, items));
  return s->run();
}

core::Result<std::string> Catalog::recorded_skipped(std::int64_t source_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_skipped_get, "SELECT skipped FROM sources WHERE id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  MAILDSAR_TRY_ASSIGN(bool row, s->step());
  std::string out = row ? s->column_text(0) : std::string();
  s->reset();
  return out;
}

core::Status Catalog::record_skipped(std::int64_t source_id, const std::string &skipped) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_skipped_set, "UPDATE sources SET skipped = ?2 WHERE id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  MAILDSAR_TRY(s->bind(2, skipped));
  return s->run();
}

core::Result<std::uint64_t> Catalog::file_count(std::int64_t source_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s,
                      stmt(s_file_count, "SELECT count(*) FROM files WHERE source_id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  MAILDSAR_TRY_ASSIGN(bool row, s->step());
  std::uint64_t n = row ? s->column_uint64(0) : 0;
  s->reset();
  return n;
}

namespace {

constexpr const char *k_file_columns = "id, path, dev, ino, size, mtime_ns, scanned_size,"
                                       " tail_fingerprint, status, last_error, head_fingerprint,"
                                       " content_size, content_tail, next_seq, source_id";

/** A row of k_file_columns. */
FileRecord file_record_of(Stmt &s) {
  FileRecord f;
  f.id = s.column_int64(0);
  f.source_id = s.column_int64(14);
  f.path = s.column_text(1);
  f.dev = s.column_uint64(2);
  f.ino = s.column_uint64(3);
  f.size = s.column_uint64(4);
  f.mtime_ns = s.column_int64(5);
  f.scanned_size = s.column_uint64(6);
  f.tail_fingerprint = s.column_text(7);
  f.status = status_from(s.column_text(8));
  f.last_error = s.column_text(9);
  f.head_fingerprint = s.column_text(10);
  f.content_size = s.column_uint64(11);
  f.content_tail = s.column_text(12);
  f.next_seq = s.column_uint64(13);
  return f;
}

} // namespace

core::Result<std::unordered_map<std::string, FileBrief>> Catalog::file_briefs(std::int64_t source_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_file_briefs,
                                     "SELECT id, path, dev, ino, size, mtime_ns, scanned_size,"
                                     " status FROM files WHERE source_id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  std::unordered_map<std::string, FileBrief> out;
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, s->step());
    if (!row) {
      break;
    }
    FileBrief b;
    b.id = s->column_int64(0);
    b.dev = s->column_uint64(2);
    b.ino = s->column_uint64(3);
    b.size = s->column_uint64(4);
    b.mtime_ns = s->column_int64(5);
    b.scanned_size = s->column_uint64(6);
    b.status = status_from(s->column_text(7));
    out.emplace(s->column_text(1), b);
  }
  s->reset();
  return out;
}

core::Result<std::optional<FileRecord>> Catalog::file(std::int64_t file_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_file_get, fmt::format("SELECT {} FROM files WHERE id = ?1",
                                                             k_file_columns)));
  MAILDSAR_TRY(s->bind(1, file_id));
  MAILDSAR_TRY_ASSIGN(bool row, s->step());
  std::optional<FileRecord> out;
  if (row) {
    out = file_record_of(*s);
  }
  s->reset();
  return out;
}

core::Result<std::unordered_map<std::string, FileRecord>> Catalog::files(std::int64_t source_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_files, fmt::format("SELECT {} FROM files WHERE source_id = ?1",
                                                          k_file_columns)));
  MAILDSAR_TRY(s->bind(1, source_id));
  std::unordered_map<std::string, FileRecord> out;
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, s->step());
    if (!row) {
      break;
    }
    FileRecord f = file_record_of(*s);
    std::string key = f.path;
    out.emplace(std::move(key), std::move(f));
  }
  s->reset();
  return out;
}

core::Result<std::int64_t> Catalog::put_file(const FileRecord &file) {
  MAILDSAR_TRY_ASSIGN(
      Stmt * s,
      stmt(s_file_put,
           "INSERT INTO files(source_id, path, dev, ino, size, mtime_ns, scanned_size,"
           " tail_fingerprint, status, last_error, head_fingerprint, content_size, content_tail,"
           " gz_points, next_seq)"
           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
           " ON CONFLICT(source_id, path) DO UPDATE SET dev = excluded.dev, ino = excluded.ino,"
           " size = excluded.size, mtime_ns = excluded.mtime_ns,"
           " scanned_size = excluded.scanned_size, tail_fingerprint = excluded.tail_fingerprint,"
           " status = excluded.status, last_error = excluded.last_error,"
           " head_fingerprint = excluded.head_fingerprint, content_size = excluded.content_size,"
           " content_tail = excluded.content_tail, gz_points = excluded.gz_points,"
           " next_seq = excluded.next_seq RETURNING id"));
  MAILDSAR_TRY(s->bind(1, file.source_id));
  MAILDSAR_TRY(s->bind(2, file.path));
  MAILDSAR_TRY(s->bind(3, file.dev));
  MAILDSAR_TRY(s->bind(4, file.ino));
  MAILDSAR_TRY(s->bind(5, file.size));
  MAILDSAR_TRY(s->bind(6, file.mtime_ns));
  MAILDSAR_TRY(s->bind(7, file.scanned_size));
  MAILDSAR_TRY(s->bind(8, file.tail_fingerprint));
  MAILDSAR_TRY(s->bind(9, to_string(file.status)));
  MAILDSAR_TRY(s->bind(10, file.last_error));
  MAILDSAR_TRY(s->bind(11, file.head_fingerprint));
  MAILDSAR_TRY(s->bind(12, file.content_size));
  MAILDSAR_TRY(s->bind(13, file.content_tail));
  MAILDSAR_TRY(s->bind_blob(14, std::as_bytes(std::span(file.gz_points.data(), file.gz_points.size()))));
  MAILDSAR_TRY(s->bind(15, file.next_seq));
  MAILDSAR_TRY_ASSIGN(bool row, s->step());
  std::int64_t id = row ? s->column_int64(0) : 0;
  s->reset();
  if (!row) {
    return core::fail(core::ErrorCode::internal,
                      fmt::format("{}: no id for file {}", m_db.path(), file.path));
  }
  return id;
}

core::Status Catalog::set_status(std::int64_t file_id, FileStatus status,
                                 const std::string &last_error) {
  MAILDSAR_TRY_ASSIGN(
      Stmt * s,
      stmt(s_file_status, "UPDATE files SET status = ?2, last_error = ?3 WHERE id = ?1"));
  MAILDSAR_TRY(s->bind(1, file_id));
  MAILDSAR_TRY(s->bind(2, to_string(status)));
  MAILDSAR_TRY(s->bind(3, last_error));
  return s->run();
}

core::Status Catalog::delete_file(std::int64_t file_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_file_delete, "DELETE FROM files WHERE id = ?1"));
  MAILDSAR_TRY(s->bind(1, file_id));
  return s->run();
}

core::Status Catalog::delete_source_files(std::int64_t source_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s,
                      stmt(s_source_files_delete, "DELETE FROM files WHERE source_id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  return s->run();
}

core::Result<std::vector<std::string>> Catalog::item_terms(std::int64_t file_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_item_terms, "SELECT qterm FROM items WHERE file_id = ?1"));
  MAILDSAR_TRY(s->bind(1, file_id));
  std::vector<std::string> out;
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, s->step());
    if (!row) {
      break;
    }
    out.push_back(s->column_text(0));
  }
  s->reset();
  return out;
}

core::Result<std::vector<ItemRecord>> Catalog::items_of_file(std::int64_t file_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_items_of_file,
                                     "SELECT qterm, locator_key, sha256, offset, length, n, rowid"
                                     " FROM items WHERE file_id = ?1 ORDER BY rowid"));
  MAILDSAR_TRY(s->bind(1, file_id));
  std::vector<ItemRecord> out;
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, s->step());
    if (!row) {
      break;
    }
    ItemRecord r;
    r.qterm = s->column_text(0);
    r.file_id = file_id;
    r.locator_key = s->column_text(1);
    r.sha256 = s->column_text(2);
    r.offset = s->column_uint64(3);
    r.length = s->column_uint64(4);
    r.n = s->column_uint64(5);
    r.row = s->column_int64(6);
    out.push_back(std::move(r));
  }
  s->reset();
  return out;
}

core::Status Catalog::delete_item(const std::string &qterm) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_item_delete, "DELETE FROM items WHERE qterm = ?1"));
  MAILDSAR_TRY(s->bind(1, qterm));
  return s->run();
}

core::Result<std::uint64_t> Catalog::item_count_of_file(std::int64_t file_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s,
                      stmt(s_item_count_file,
                           "SELECT coalesce(sum(n), 0) FROM items WHERE file_id = ?1"));
  MAILDSAR_TRY(s->bind(1, file_id));
  MAILDSAR_TRY_ASSIGN(bool row, s->step());
  std::uint64_t n = row ? s->column_uint64(0) : 0;
  s->reset();
  return n;
}

core::Status Catalog::delete_items(std::int64_t file_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_items_delete, "DELETE FROM items WHERE file_id = ?1"));
  MAILDSAR_TRY(s->bind(1, file_id));
  return s->run();
}

core::Result<bool> Catalog::has_item(const std::string &qterm) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_item_has, "SELECT 1 FROM items WHERE qterm = ?1"));
  MAILDSAR_TRY(s->bind(1, qterm));
  MAILDSAR_TRY_ASSIGN(bool row, s->step());
  s->reset();
  return row;
}

core::Status Catalog::put_item(const ItemRecord &item) {
  MAILDSAR_TRY_ASSIGN(
      Stmt * s,
      stmt(s_item_put, "INSERT OR REPLACE INTO items(qterm, file_id, locator_key, sha256, offset,"
                       " length, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  MAILDSAR_TRY(s->bind(1, item.qterm));
  MAILDSAR_TRY(s->bind(2, item.file_id));
  MAILDSAR_TRY(s->bind(3, item.locator_key));
  MAILDSAR_TRY(s->bind(4, item.sha256));
  MAILDSAR_TRY(s->bind(5, item.offset));
  MAILDSAR_TRY(s->bind(6, item.length));
  MAILDSAR_TRY(s->bind(7, item.n));
  return s->run();
}

core::Status Catalog::move_item(std::int64_t row, std::uint64_t offset) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_item_move, "UPDATE items SET offset = ?2 WHERE rowid = ?1"));
  MAILDSAR_TRY(s->bind(1, row));
  MAILDSAR_TRY(s->bind(2, offset));
  return s->run();
}

core::Result<std::vector<Catalog::ItemPlace>> Catalog::item_places_of_file(std::int64_t file_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_item_places,
                                     "SELECT rowid, offset, instr(locator_key, '@#') > 0"
                                     " FROM items WHERE file_id = ?1 ORDER BY rowid"));
  MAILDSAR_TRY(s->bind(1, file_id));
  std::vector<ItemPlace> out;
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, s->step());
    if (!row) {
      break;
    }
    out.push_back(ItemPlace{s->column_int64(0), s->column_uint64(1), s->column_int64(2) != 0});
  }
  s->reset();
  return out;
}

core::Status Catalog::delete_row(std::int64_t row) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_item_delete_row, "DELETE FROM items WHERE rowid = ?1"));
  MAILDSAR_TRY(s->bind(1, row));
  return s->run();
}

core::Result<std::string> Catalog::qterm_of_row(std::int64_t row) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_item_qterm_of_row, "SELECT qterm FROM items WHERE rowid = ?1"));
  MAILDSAR_TRY(s->bind(1, row));
  MAILDSAR_TRY_ASSIGN(bool found, s->step());
  std::string qterm = found ? s->column_text(0) : std::string();
  s->reset();
  return qterm;
}

core::Result<std::optional<ItemRecord>> Catalog::item(const std::string &qterm) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_item_get,
                                     "SELECT file_id, locator_key, sha256, offset, length, n"
                                     " FROM items WHERE qterm = ?1"));
  MAILDSAR_TRY(s->bind(1, qterm));
  MAILDSAR_TRY_ASSIGN(bool row, s->step());
  if (!row) {
    return std::optional<ItemRecord>{};
  }
  ItemRecord r;
  r.qterm = qterm;
  r.file_id = s->column_int64(0);
  r.locator_key = s->column_text(1);
  r.sha256 = s->column_text(2);
  r.offset = s->column_uint64(3);
  r.length = s->column_uint64(4);
  r.n = s->column_uint64(5);
  s->reset();
  return std::optional<ItemRecord>{std::move(r)};
}

core::Result<std::uint64_t> Catalog::item_count(std::int64_t source_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_item_count,
                                     "SELECT coalesce(sum(i.n), 0) FROM items i"
                                     " JOIN files f ON i.file_id = f.id WHERE f.source_id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  MAILDSAR_TRY_ASSIGN(bool row, s->step());
  std::uint64_t n = row ? s->column_uint64(0) : 0;
  s->reset();
  return n;
}

core::Status Catalog::record_run(std::int64_t source_id, std::int64_t when, std::uint64_t errors,
                                 const std::string &held_removal) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_run_set, "UPDATE sources SET last_run = ?2, last_errors = ?3,"
                                                " held_removal = ?4 WHERE id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  MAILDSAR_TRY(s->bind(2, when));
  MAILDSAR_TRY(s->bind(3, errors));
  MAILDSAR_TRY(s->bind(4, held_removal));
  return s->run();
}

core::Status Catalog::set_origin(std::int64_t source_id, const std::string &origin) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_origin_set, "UPDATE sources SET origin = ?2 WHERE id = ?1"));
  MAILDSAR_TRY(s->bind(1, source_id));
  MAILDSAR_TRY(s->bind(2, origin));
  return s->run();
}

core::Result<std::optional<std::string>> Catalog::other_source_of(const std::string &path,
                                                                  std::int64_t source_id) {
  MAILDSAR_TRY_ASSIGN(Stmt * s, stmt(s_path_owner, "SELECT s.name FROM files f JOIN sources s"
                                                   " ON s.id = f.source_id WHERE f.path = ?1"
                                                   " AND f.source_id IN (SELECT id FROM sources"
                                                   " WHERE id != ?2) LIMIT 1"));
  MAILDSAR_TRY(s->bind(1, path));
  MAILDSAR_TRY(s->bind(2, source_id));
  MAILDSAR_TRY_ASSIGN(bool row, s->step());
  std::optional<std::string> name;
  if (row) {
    name = s->column_text(0);
  }
  s->reset();
  return name;
}

std::string source_origin(const core::SourceConfig &source) {
  return fmt::format("{} {} {}", source.type, source.format, source.path);
}

core::Result<std::vector<SourceStatus>> read_source_status(const std::string &path, CountFiles count) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return std::vector<SourceStatus>{}; // never indexed
  }
  // Read-only, no lock, no migration: `index` may be writing (WAL readers see the last commit).
  MAILDSAR_TRY_ASSIGN(core::sqlite::Db db, core::sqlite::Db::open(path, core::sqlite::Writable::no));
  MAILDSAR_TRY_ASSIGN(std::int64_t version, db.user_version());
  // A catalog from before migration 4 has no run outcome yet; one from before 3 no item count.
  std::string_view sql =
      version >= 5 && count == CountFiles::no
                     ? "SELECT s.name, s.type, s.last_success, s.last_run, s.last_errors, s.items, 0,"
                       " s.origin, s.held_removal"
                       " FROM sources s ORDER BY s.name"
      : version >= 5 ? "SELECT s.name, s.type, s.last_success, s.last_run, s.last_errors, s.items,"
                       " (SELECT count(*) FROM files f WHERE f.source_id = s.id AND f.status != 'pending'),"
                       " s.origin, s.held_removal"
                       " FROM sources s ORDER BY s.name"
      : version >= 4 ? "SELECT s.name, s.type, s.last_success, s.last_run, s.last_errors, s.items,"
                       " (SELECT count(*) FROM files f WHERE f.source_id = s.id AND f.status != 'pending')"
                       " FROM sources s ORDER BY s.name"
      : version >= 3 ? "SELECT s.name, s.type, s.last_success, NULL, 0, s.items,"
                       " (SELECT count(*) FROM files f WHERE f.source_id = s.id AND f.status != 'pending')"
                       " FROM sources s ORDER BY s.name"
      : version >= 1 ? "SELECT s.name, s.type, s.last_success, NULL, 0,"
                       " (SELECT count(*) FROM items i JOIN files f ON i.file_id = f.id"
                       "  WHERE f.source_id = s.id),"
                       " (SELECT count(*) FROM files f WHERE f.source_id = s.id AND f.status != 'pending')"
                       " FROM sources s ORDER BY s.name"
                     : "";
  std::vector<SourceStatus> out;
  if (sql.empty()) {
    return out; // created but never migrated: nothing recorded
  }
  MAILDSAR_TRY_ASSIGN(Stmt s, db.prepare(sql));
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, s.step());
    if (!row) {
      break;
    }
    SourceStatus r;
    r.name = s.column_text(0);
    r.type = s.column_text(1);
    if (!s.column_is_null(2)) {
      r.last_success = s.column_int64(2);
    }
    if (!s.column_is_null(3)) {
      r.last_run = s.column_int64(3);
    }
    r.errors = s.column_uint64(4);
    r.items = s.column_uint64(5);
    r.files = s.column_uint64(6);
    if (version >= 5) {
      r.origin = s.column_text(7);
      r.held_removal = s.column_text(8);
    }
    out.push_back(std::move(r));
  }
  return out;
}

core::Result<std::optional<LogFileState>> read_log_file(const std::string &path, const std::string &file) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return std::nullopt;
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Db db, core::sqlite::Db::open(path, core::sqlite::Writable::no));
  MAILDSAR_TRY_ASSIGN(std::int64_t version, db.user_version());
  if (version < 8) {
    return std::nullopt;
  }
  MAILDSAR_TRY_ASSIGN(Stmt s, db.prepare("SELECT size, mtime_ns, head_fingerprint, content_size, content_tail, "
                                         "gz_points FROM files WHERE source_id IN (SELECT id FROM sources)"
                                         " AND path = ?1 AND status = 'done'"));
  MAILDSAR_TRY(s.bind(1, file));
  MAILDSAR_TRY_ASSIGN(bool row, s.step());
  if (!row) {
    return std::nullopt;
  }
  LogFileState st;
  st.size = static_cast<std::uint64_t>(s.column_int64(0));
  st.mtime_ns = s.column_int64(1);
  st.head_fingerprint = s.column_text(2);
  st.content_size = static_cast<std::uint64_t>(s.column_int64(3));
  st.content_tail = s.column_text(4);
  const std::vector<std::byte> blob = s.column_blob(5);
  st.gz_points.assign(reinterpret_cast<const char *>(blob.data()), blob.size());
  return st;
}

core::Result<std::unordered_map<std::string, ItemPlace>> read_item_places(const std::string &path,
                                                                          std::span<const std::string> qterms) {
  std::unordered_map<std::string, ItemPlace> out;
  if (qterms.empty()) {
    return out;
  }
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return out;
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Db db, core::sqlite::Db::open(path, core::sqlite::Writable::no));
  MAILDSAR_TRY_ASSIGN(std::int64_t version, db.user_version());
  if (version < 9) {
    return out; // older than stable mbox keys: the index is rebuilt (schema version)
  }
  MAILDSAR_TRY_ASSIGN(Stmt s, db.prepare("SELECT offset, length FROM items WHERE qterm = ?1"));
  for (const std::string &qterm : qterms) {
    MAILDSAR_TRY(s.bind(1, qterm));
    MAILDSAR_TRY_ASSIGN(bool row, s.step());
    if (row) {
      out.emplace(qterm, ItemPlace{s.column_uint64(0), s.column_uint64(1)});
    }
    s.reset();
  }
  return out;
}

core::Result<std::vector<UnreadFile>> read_unread_files(const std::string &path) {
  std::vector<UnreadFile> out;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return out;
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Db db, core::sqlite::Db::open(path, core::sqlite::Writable::no));
  MAILDSAR_TRY_ASSIGN(std::int64_t version, db.user_version());
  if (version < 1) {
    return out; // created but never migrated: nothing recorded
  }
  MAILDSAR_TRY_ASSIGN(Stmt s, db.prepare("SELECT s.name, f.path, f.last_error FROM files f"
                                         " JOIN sources s ON s.id = f.source_id"
                                         " WHERE f.status = 'error' OR (f.status = 'done' AND f.last_error != '')"
                                         " ORDER BY s.name, f.path"));
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, s.step());
    if (!row) {
      break;
    }
    out.push_back(UnreadFile{s.column_text(0), s.column_text(1), s.column_text(2)});
  }
  return out;
}

core::Result<bool> Catalog::scrub() {
  MAILDSAR_TRY_ASSIGN(Stmt * q, stmt(s_zeroed, "SELECT count(*) FROM zeroed_since_vacuum"));
  MAILDSAR_TRY_ASSIGN(bool row, q->step());
  const bool zeroed = row && q->column_int64(0) > 0;
  q->reset();
  if (!zeroed) {
    // Bytes freed before secure_delete may remain: rebuild the file without its free pages.
    MAILDSAR_TRY(m_db.exec("VACUUM"));
    MAILDSAR_TRY(m_db.exec(k_mark_zeroed));
  }
  // The write-ahead log holds page images from before the deletions were zeroed into the file.
  // A reader's open snapshot keeps them (the checkpoint waits busy_timeout for it, then says
  // "busy" in its first column): then they are still there, and the caller must not go on.
  MAILDSAR_TRY_ASSIGN(Stmt * c, stmt(s_checkpoint, "PRAGMA wal_checkpoint(TRUNCATE)"));
  MAILDSAR_TRY_ASSIGN(bool done, c->step());
  const bool busy = done && c->column_int64(0) != 0;
  c->reset();
  if (busy) {
    return core::fail(core::ErrorCode::temp_fail,
                      fmt::format("catalog {}: a reader kept its write-ahead log, which still holds "
                                  "rows from before the deletions, from being emptied",
                                  m_db.path()),
                      "run the command again when no find or export is running");
  }
  return !zeroed;
}

} // namespace maildsar::index
