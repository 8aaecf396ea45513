// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// The Xapian index, behind a PIMPL so that <xapian.h> stays out of our public headers
// (STYLE §3, §22, §28). Every Xapian exception is caught here and turned into an Error.

#include "core/result.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace Xapian {
class Document;
}

namespace maildsar::index {

/**
 * A document ready to be written, built without a database (so worker threads can build them
 * while the single writer writes). Move-only.
 */
class PreparedDocument {
public:
  PreparedDocument();
  ~PreparedDocument();
  PreparedDocument(PreparedDocument &&) noexcept;
  PreparedDocument &operator=(PreparedDocument &&) noexcept;
  PreparedDocument(const PreparedDocument &) = delete;
  PreparedDocument &operator=(const PreparedDocument &) = delete;

  /** Sets the unique key term (also added as a boolean term). */
  void set_key(std::string qterm);
  [[nodiscard]] const std::string &key() const { return m_key; }
  /** A boolean term (wdf 0, no position). */
  void add_boolean_term(const std::string &term);
  /** A term without position with `wdf` (log blocks: the parts of the block that hold it). */
  void add_term(const std::string &term, std::uint32_t wdf);
  /** A positional term. */
  void add_posting(const std::string &term, std::uint32_t position);
  void set_data(const std::string &data);
  void set_date(std::int64_t seconds_since_epoch);
  /** About how much memory the document takes (terms, positions, data): bounds the indexer's
      queue and its uncommitted batch (docs/reliability.md "Bounded memory"). */
  [[nodiscard]] std::size_t approx_bytes() const { return m_bytes; }
  /** From now on the terms are only collected (terms() gives them; no Xapian document). */
  void collect_terms_only();
  /** Every term of the document (log blocks take the union of their items'). */
  [[nodiscard]] std::vector<std::string> terms() const;
  /** terms(), moved out of a document that only collects terms (a copy otherwise). */
  [[nodiscard]] std::vector<std::string> take_terms();
  /** The Xapian document itself (the query side puts re-read log transactions into an
      in-memory database). */
  [[nodiscard]] const Xapian::Document &xapian() const;

private:
  friend class IndexStore;
  struct Impl;
  std::unique_ptr<Impl> m_impl;
  std::string m_key;
  std::size_t m_bytes = 0;
};

class IndexStore;

/** Guard around a Xapian transaction: cancel_transaction() unless commit() was called. */
class IndexTransaction {
public:
  IndexTransaction(IndexTransaction &&other) noexcept : m_store(other.m_store) {
    other.m_store = nullptr;
  }
  IndexTransaction &operator=(IndexTransaction &&) = delete;
  IndexTransaction(const IndexTransaction &) = delete;
  IndexTransaction &operator=(const IndexTransaction &) = delete;
  ~IndexTransaction();

  /** commit_transaction(): the changes are durable when this returns. */
  [[nodiscard]] core::Status commit();

private:
  friend class IndexStore;
  explicit IndexTransaction(IndexStore *store) : m_store(store) {}
  IndexStore *m_store = nullptr; // not owned; null once finished
};

enum class OpenMode {
  read_only, // the directory must exist; ErrorCode::no_input otherwise
  writable,  // create if missing; the single writer (lock contention -> index_locked)
  overwrite, // writable, discarding whatever is there (index --full after a schema change)
};

/** Owns one Xapian database (STYLE §22). Move-only. */
class IndexStore {
public:
  /**
   * Opens the index in `path`. Checks maildsar.schema_version / maildsar.features (a new, empty
   * database gets them written). Read-only opens retry on DatabaseModifiedError (3 times).
   * @errors no_input (read-only, no index), index_locked (another writer), data (schema
   *         mismatch, hint "run maildsar index --full"; corrupt database), io.
   */
  [[nodiscard]] static core::Result<IndexStore> open(const std::string &path, OpenMode mode);

  /** The maildsar.schema_version of the index in `path` ("" when it has none), read without
      checking it; nullopt when it cannot be opened (none, or damaged). */
  [[nodiscard]] static std::optional<std::string> schema_version_of(const std::string &path);

  IndexStore(IndexStore &&) noexcept;
  IndexStore &operator=(IndexStore &&) noexcept;
  IndexStore(const IndexStore &) = delete;
  IndexStore &operator=(const IndexStore &) = delete;
  ~IndexStore();

  /** Starts a (flushed) transaction; nothing becomes visible or durable until its commit(). */
  [[nodiscard]] core::Result<IndexTransaction> begin_transaction();

  /** Adds a document whose key is known not to exist (its file's docs were just deleted). */
  [[nodiscard]] core::Status add(PreparedDocument &&doc);
  /** replace_document(Qterm): adds or replaces the document with the same key. */
  [[nodiscard]] core::Status replace(PreparedDocument &&doc);
  /** delete_document(term): every document indexed by `term` (a Q term, an XFILE: term...). */
  [[nodiscard]] core::Status delete_by_term(const std::string &term);
  /** Commits outside a transaction. */
  [[nodiscard]] core::Status commit();

  [[nodiscard]] core::Result<std::uint64_t> doc_count() const;
  /** Number of documents indexed by `term`. */
  [[nodiscard]] core::Result<std::uint64_t> term_freq(const std::string &term) const;
  /** The data blob of the document with unique term `qterm`, if any. */
  [[nodiscard]] core::Result<std::optional<std::string>> document_data(const std::string &qterm) const;
  /** The data blobs of every document indexed by `term` (an XFILE: term, ...), in docid order. */
  [[nodiscard]] core::Result<std::vector<std::string>> documents_data(const std::string &term) const;
  /**
   * Moves a document to another key without rebuilding it (a rotated log): the document with
   * unique term `old_qterm` gets `new_qterm` instead, `new_file_term` instead of
   * `old_file_term`, and `new_data`; every other term and value is kept. A document already
   * holding `new_qterm` is replaced. Returns false (and changes nothing) when no document has
   * `old_qterm`.
   */
  [[nodiscard]] core::Result<bool> rekey(const std::string &old_qterm, const std::string &new_qterm,
                                         const std::string &old_file_term,
                                         const std::string &new_file_term,
                                         const std::string &new_data);
  [[nodiscard]] core::Result<std::string> metadata(const std::string &key) const;
  [[nodiscard]] core::Status set_metadata(const std::string &key, const std::string &value);
  /** Re-opens a read-only database at its latest revision. */
  [[nodiscard]] core::Status reopen();

  [[nodiscard]] const std::string &path() const { return m_path; }

private:
  friend class IndexTransaction;
  struct Impl;
  IndexStore(std::unique_ptr<Impl> impl, std::string path);
  [[nodiscard]] core::Status commit_transaction();
  void cancel_transaction() noexcept;
  std::unique_ptr<Impl> m_impl;
  std::string m_path;
};

/**
 * Replaces the committed index in `path` by a compacted copy (full B-tree blocks; same document
 * ids), written to `path` + ".compact" and swapped in with one atomic rename (RENAME_EXCHANGE):
 * at every moment `path` holds a complete index, and the old copy left at ".compact" (after a
 * kill: until remove_compact_leftover()) is removed. A writer may hold `path` open; it must have
 * nothing uncommitted. Returns false when the file system cannot swap directories atomically
 * (nothing changed).
 * @errors io, data (Xapian).
 */
[[nodiscard]] core::Result<bool> compact_index(const std::string &path);
/** Removes what a compact_index() killed midway left at `path` + ".compact". */
[[nodiscard]] core::Status remove_compact_leftover(const std::string &path);

/**
 * Maps the Xapian (or std) exception in flight to an Error: DatabaseLockError -> index_locked,
 * DatabaseCorruptError/DatabaseVersionError -> data, DatabaseOpeningError -> no_input/io ...
 * Call only inside a catch block.
 */
[[nodiscard]] core::Error error_from_xapian_exception(std::string_view context);

} // namespace maildsar::index
