// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/result.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// sqlite3.h stays out of this header: SQLite::SQLite3 is linked PRIVATE to maildsar_core.
struct sqlite3;
struct sqlite3_stmt;

namespace maildsar::core::sqlite {

enum class Writable { no, yes };

/** Explicit SQL NULL for Stmt::bind. */
struct Null {};

/**
 * A prepared statement. Move-only; finalized when it dies. Parameters are 1-based, columns
 * 0-based (as in SQLite). Errors name the database file.
 */
class Transaction;

class Stmt {
public:
  Stmt(Stmt &&) noexcept;
  Stmt &operator=(Stmt &&) noexcept;
  Stmt(const Stmt &) = delete;
  Stmt &operator=(const Stmt &) = delete;
  ~Stmt();

  [[nodiscard]] Status bind(int index, std::int64_t value);
  [[nodiscard]] Status bind(int index, std::uint64_t value); // stored as int64 (bit pattern kept below 2^63)
  [[nodiscard]] Status bind(int index, int value) { return bind(index, std::int64_t{value}); }
  [[nodiscard]] Status bind(int index, std::string_view text);
  [[nodiscard]] Status bind(int index, const char *text) { return bind(index, std::string_view(text)); }
  [[nodiscard]] Status bind(int index, const std::string &text) {
    return bind(index, std::string_view(text));
  }
  [[nodiscard]] Status bind_blob(int index, std::span<const std::byte> blob);
  [[nodiscard]] Status bind(int index, Null);

  /** Steps once: true when a row is available, false when done. */
  [[nodiscard]] Result<bool> step();
  /** Steps to completion (for INSERT/UPDATE/DELETE) and resets. */
  [[nodiscard]] Status run();
  /** Resets the statement and clears its bindings so it can be reused. */
  void reset();

  [[nodiscard]] std::int64_t column_int64(int col) const;
  [[nodiscard]] std::uint64_t column_uint64(int col) const {
    return static_cast<std::uint64_t>(column_int64(col));
  }
  [[nodiscard]] std::string column_text(int col) const;
  [[nodiscard]] std::vector<std::byte> column_blob(int col) const;
  [[nodiscard]] bool column_is_null(int col) const;
  [[nodiscard]] int column_count() const;

private:
  friend class Db;
  explicit Stmt(sqlite3_stmt *stmt) : m_stmt(stmt) {}
  [[nodiscard]] Error error_here(int rc, std::string_view what) const;
  sqlite3_stmt *m_stmt = nullptr; // owned; its Db must outlive it
};

/**
 * An open SQLite database. Move-only. PRAGMAs on open: foreign_keys=ON, busy_timeout=5000,
 * secure_delete=ON, journal_mode=WAL (writable only). New files are created with mode 0600.
 */
class Db {
public:
  /**
   * Opens (and with Writable::yes creates) the database at `path`.
   * @errors no_input (read-only and missing), cant_create, io, permission.
   */
  [[nodiscard]] static Result<Db> open(const std::string &path, Writable writable);

  Db(Db &&) noexcept;
  Db &operator=(Db &&) noexcept;
  Db(const Db &) = delete;
  Db &operator=(const Db &) = delete;
  ~Db();

  /** Compiles one statement. */
  [[nodiscard]] Result<Stmt> prepare(std::string_view sql) const;
  /** Runs fixed SQL (schema, PRAGMAs; never built from data). May hold several statements. */
  [[nodiscard]] Status exec(std::string_view sql) const;

  [[nodiscard]] Result<std::int64_t> user_version() const;
  [[nodiscard]] Status set_user_version(std::int64_t version) const;

  /**
   * Applies numbered migrations: migrations[i] upgrades user_version i to i+1. Each runs in its
   * own transaction together with the user_version bump. A database newer than the code is an
   * ErrorCode::data error.
   */
  [[nodiscard]] Status migrate(const std::vector<std::string_view> &migrations) const;

  [[nodiscard]] std::int64_t last_insert_rowid() const;
  [[nodiscard]] std::int64_t changes() const;
  [[nodiscard]] const std::string &path() const { return m_path; }

  /** Error for the last failing call, naming the file. */
  [[nodiscard]] Error last_error(std::string_view what) const;

private:
  friend class Transaction;
  Db(sqlite3 *db, std::string path) : m_db(db), m_path(std::move(path)) {}
  sqlite3 *m_db = nullptr; // owned
  std::string m_path;
};

/** RAII transaction: BEGIN IMMEDIATE on begin(), ROLLBACK on destruction unless commit(). */
class Transaction {
public:
  [[nodiscard]] static Result<Transaction> begin(const Db &db);
  Transaction(Transaction &&other) noexcept : m_db(other.m_db), m_path(std::move(other.m_path)) {
    other.m_db = nullptr;
  }
  Transaction &operator=(Transaction &&) = delete;
  Transaction(const Transaction &) = delete;
  Transaction &operator=(const Transaction &) = delete;
  ~Transaction();

  [[nodiscard]] Status commit();

private:
  Transaction(sqlite3 *db, std::string path) : m_db(db), m_path(std::move(path)) {}
  sqlite3 *m_db = nullptr; // not owned; null once committed or rolled back
  std::string m_path;
};

} // namespace maildsar::core::sqlite
