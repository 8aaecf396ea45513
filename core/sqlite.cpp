// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/sqlite.hpp"

#include "core/fs.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace maildsar::core::sqlite {

namespace {

ErrorCode code_from_sqlite(int rc) {
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return ErrorCode::temp_fail;
  case SQLITE_PERM:
  case SQLITE_AUTH:
  case SQLITE_READONLY:
    return ErrorCode::permission;
  case SQLITE_CANTOPEN:
    return ErrorCode::cant_create;
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
  case SQLITE_CONSTRAINT:
  case SQLITE_MISMATCH:
    return ErrorCode::data;
  case SQLITE_IOERR:
  case SQLITE_FULL:
    return ErrorCode::io;
  default:
    return ErrorCode::internal;
  }
}

Error make_error(sqlite3 *db, int rc, std::string_view what) {
  const char *file = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
  const char *msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Error{code_from_sqlite(rc),
               fmt::format("{}: {}: {}", file != nullptr && *file != '\0' ? file : "sqlite", what,
                           msg != nullptr ? msg : sqlite3_errstr(rc))};
}

} // namespace

// ---- Stmt ----

Stmt::Stmt(Stmt &&other) noexcept : m_stmt(other.m_stmt) { other.m_stmt = nullptr; }

Stmt &Stmt::operator=(Stmt &&other) noexcept {
  if (this != &other) {
    sqlite3_finalize(m_stmt);
    m_stmt = other.m_stmt;
    other.m_stmt = nullptr;
  }
  return *this;
}

Stmt::~Stmt() { sqlite3_finalize(m_stmt); }

Error Stmt::error_here(int rc, std::string_view what) const {
  return make_error(sqlite3_db_handle(m_stmt), rc, what);
}

Status Stmt::bind(int index, std::int64_t value) {
  int rc = sqlite3_bind_int64(m_stmt, index, static_cast<sqlite3_int64>(value));
  if (rc != SQLITE_OK) {
    return std::unexpected(error_here(rc, fmt::format("bind parameter {}", index)));
  }
  return {};
}

Status Stmt::bind(int index, std::uint64_t value) {
  return bind(index, static_cast<std::int64_t>(value));
}

Status Stmt::bind(int index, std::string_view text) {
  int rc = sqlite3_bind_text64(m_stmt, index, text.data(), text.size(), SQLITE_TRANSIENT,
                               SQLITE_UTF8);
  if (rc != SQLITE_OK) {
    return std::unexpected(error_here(rc, fmt::format("bind parameter {}", index)));
  }
  return {};
}

Status Stmt::bind_blob(int index, std::span<const std::byte> blob) {
  int rc = sqlite3_bind_blob64(m_stmt, index, blob.data(), blob.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) {
    return std::unexpected(error_here(rc, fmt::format("bind parameter {}", index)));
  }
  return {};
}

Status Stmt::bind(int index, Null) {
  int rc = sqlite3_bind_null(m_stmt, index);
  if (rc != SQLITE_OK) {
    return std::unexpected(error_here(rc, fmt::format("bind parameter {}", index)));
  }
  return {};
}

Result<bool> Stmt::step() {
  int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  Error e = error_here(rc, "step");
  sqlite3_reset(m_stmt);
  return std::unexpected(std::move(e));
}

Status Stmt::run() {
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, step());
    if (!row) {
      break;
    }
  }
  reset();
  return {};
}

void Stmt::reset() {
  sqlite3_reset(m_stmt);
  sqlite3_clear_bindings(m_stmt);
}

std::int64_t Stmt::column_int64(int col) const {
  return static_cast<std::int64_t>(sqlite3_column_int64(m_stmt, col));
}

std::string Stmt::column_text(int col) const {
  const unsigned char *p = sqlite3_column_text(m_stmt, col);
  int n = sqlite3_column_bytes(m_stmt, col);
  if (p == nullptr || n <= 0) {
    return {};
  }
  return std::string(reinterpret_cast<const char *>(p), static_cast<std::size_t>(n));
}

std::vector<std::byte> Stmt::column_blob(int col) const {
  const void *p = sqlite3_column_blob(m_stmt, col);
  int n = sqlite3_column_bytes(m_stmt, col);
  if (p == nullptr || n <= 0) {
    return {};
  }
  const auto *b = static_cast<const std::byte *>(p);
  return std::vector<std::byte>(b, b + n);
}

bool Stmt::column_is_null(int col) const { return sqlite3_column_type(m_stmt, col) == SQLITE_NULL; }

int Stmt::column_count() const { return sqlite3_column_count(m_stmt); }

// ---- Db ----

Result<Db> Db::open(const std::string &path, Writable writable) {
  if (writable == Writable::yes) {
    // Create the file ourselves so that it is born 0600 (SQLite would honour the umask).
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      Error e = errno_error(path, errno);
      if (e.code == ErrorCode::no_input || e.code == ErrorCode::io) {
        e.code = ErrorCode::cant_create;
      }
      return std::unexpected(std::move(e));
    }
    Fd guard(fd);
  } else if (struct stat st {}; ::stat(path.c_str(), &st) != 0) {
    // stat, not access(): access() checks with the real uid, the open below with the effective.
    return std::unexpected(errno_error(path, errno));
  }
  sqlite3 *raw = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX |
              (writable == Writable::yes ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                         : SQLITE_OPEN_READONLY);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error e = make_error(raw, rc, "open");
    e.message = fmt::format("{}: cannot open: {}", path, raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
    sqlite3_close_v2(raw);
    return std::unexpected(std::move(e));
  }
  Db db(raw, path);
  sqlite3_extended_result_codes(raw, 1);
  MAILDSAR_TRY(db.exec("PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000; PRAGMA secure_delete=ON;"));
  if (writable == Writable::yes) {
    MAILDSAR_TRY(db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
    // The -wal and -shm files are created by SQLite with the umask; tighten them.
    for (const char *suffix : {"-wal", "-shm"}) {
      std::string side = path + suffix;
      ::chmod(side.c_str(), 0600);
    }
  }
  return db;
}

Db::Db(Db &&other) noexcept : m_db(other.m_db), m_path(std::move(other.m_path)) {
  other.m_db = nullptr;
}

Db &Db::operator=(Db &&other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(m_db);
    m_db = other.m_db;
    m_path = std::move(other.m_path);
    other.m_db = nullptr;
  }
  return *this;
}

Db::~Db() { sqlite3_close_v2(m_db); }

Error Db::last_error(std::string_view what) const {
  return make_error(m_db, sqlite3_errcode(m_db), what);
}

Result<Stmt> Db::prepare(std::string_view sql) const {
  sqlite3_stmt *stmt = nullptr;
  int rc = sqlite3_prepare_v3(m_db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return std::unexpected(make_error(m_db, rc, fmt::format("prepare '{}'", sql)));
  }
  return Stmt(stmt);
}

Status Db::exec(std::string_view sql) const {
  std::string text(sql);
  char *errmsg = nullptr;
  int rc = sqlite3_exec(m_db, text.c_str(), nullptr, nullptr, &errmsg);
  if (rc != SQLITE_OK) {
    std::string msg = errmsg != nullptr ? errmsg : sqlite3_errstr(rc);
    sqlite3_free(errmsg);
    return std::unexpected(Error{code_from_sqlite(rc), fmt::format("{}: {}", m_path, msg)});
  }
  return {};
}

Result<std::int64_t> Db::user_version() const {
  MAILDSAR_TRY_ASSIGN(Stmt stmt, prepare("PRAGMA user_version"));
  MAILDSAR_TRY_ASSIGN(bool row, stmt.step());
  return row ? stmt.column_int64(0) : 0;
}

Status Db::set_user_version(std::int64_t version) const {
  // PRAGMA takes no parameters; the value is a number we format, never data.
  return exec(fmt::format("PRAGMA user_version={}", version));
}

Status Db::migrate(const std::vector<std::string_view> &migrations) const {
  MAILDSAR_TRY_ASSIGN(std::int64_t version, user_version());
  auto target = static_cast<std::int64_t>(migrations.size());
  if (version > target) {
    return fail(ErrorCode::data,
                fmt::format("{}: schema version {} is newer than this program supports ({})",
                            m_path, version, target),
                "upgrade maildsar");
  }
  for (auto v = version; v < target; ++v) {
    MAILDSAR_TRY_ASSIGN(Transaction tx, Transaction::begin(*this));
    if (auto st = exec(migrations[static_cast<std::size_t>(v)]); !st) {
      return std::unexpected(st.error().with_context(fmt::format("migration {}: ", v + 1)));
    }
    MAILDSAR_TRY(set_user_version(v + 1));
    MAILDSAR_TRY(tx.commit());
  }
  return {};
}

std::int64_t Db::last_insert_rowid() const {
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(m_db));
}

std::int64_t Db::changes() const { return sqlite3_changes64(m_db); }

// ---- Transaction ----

Result<Transaction> Transaction::begin(const Db &db) {
  MAILDSAR_TRY(db.exec("BEGIN IMMEDIATE"));
  return Transaction(db.m_db, db.m_path);
}

Transaction::~Transaction() {
  if (m_db != nullptr) {
    sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Status Transaction::commit() {
  if (m_db == nullptr) {
    return fail(ErrorCode::internal, fmt::format("{}: commit of a finished transaction", m_path));
  }
  char *errmsg = nullptr;
  int rc = sqlite3_exec(m_db, "COMMIT", nullptr, nullptr, &errmsg);
  if (rc != SQLITE_OK) {
    std::string msg = errmsg != nullptr ? errmsg : sqlite3_errstr(rc);
    sqlite3_free(errmsg);
    return std::unexpected(Error{code_from_sqlite(rc), fmt::format("{}: commit: {}", m_path, msg)});
  }
  m_db = nullptr;
  return {};
}

} // namespace maildsar::core::sqlite
