// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/index_store.hpp"

#include "indexer/schema.hpp"

#include "core/fs.hpp"

#include <fmt/format.h>
#include <xapian.h>

#include <fcntl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

namespace maildsar::index {

namespace {

/** Xapian refuses terms longer than this (the B-tree key limit is 245 bytes). */
constexpr std::size_t k_max_term_bytes = 240;
/**
 * What approx_bytes() counts for a positional term: each distinct term of a document costs a
 * node with its name in the document's term map, and again in Xapian's uncommitted postings
 * (a map keyed by the term, one per posting list and one per position list); each position a
 * few bytes more. Counting per position only (term + 8 bytes each, as before) undercounted real
 * mail, whose messages have many distinct terms each used once (patches, code, identifiers), by
 * about two: a 34,624-message mailing-list estate peaked at 197 MiB against the 150 MiB bound
 * (docs/performance.md "Real mail").
 */
constexpr std::size_t k_term_node_bytes = 128;
constexpr std::size_t k_position_bytes = 4;
constexpr int k_read_retries = 3;

} // namespace

core::Error error_from_xapian_exception(std::string_view context) {
  std::string prefix(context);
  try {
    throw;
  } catch (const Xapian::DatabaseLockError &e) {
    return core::Error{core::ErrorCode::index_locked, prefix + e.get_description(),
                       "another `maildsar index` is running?", std::nullopt};
  } catch (const Xapian::DatabaseModifiedError &e) {
    return core::Error{core::ErrorCode::temp_fail, prefix + e.get_description(),
                       "the index changed while reading it; try again", std::nullopt};
  } catch (const Xapian::DatabaseNotFoundError &e) {
    return core::Error{core::ErrorCode::no_input, prefix + e.get_description(),
                       "run maildsar index first", std::nullopt};
  } catch (const Xapian::DatabaseVersionError &e) {
    return core::Error{core::ErrorCode::data, prefix + e.get_description(),
                       "run maildsar index --full", std::nullopt};
  } catch (const Xapian::DatabaseCorruptError &e) {
    return core::Error{core::ErrorCode::data, prefix + e.get_description(),
                       "run maildsar index --full", std::nullopt};
  } catch (const Xapian::DatabaseCreateError &e) {
    return core::Error{core::ErrorCode::cant_create, prefix + e.get_description()};
  } catch (const Xapian::DatabaseOpeningError &e) {
    return core::Error{core::ErrorCode::io, prefix + e.get_description()};
  } catch (const Xapian::DatabaseError &e) {
    return core::Error{core::ErrorCode::io, prefix + e.get_description()};
  } catch (const Xapian::InvalidArgumentError &e) {
    return core::Error{core::ErrorCode::data, prefix + e.get_description()};
  } catch (const Xapian::Error &e) {
    return core::Error{core::ErrorCode::internal, prefix + e.get_description()};
  } catch (...) {
    return core::error_from_current_exception(context);
  }
}

// ---- PreparedDocument ----

struct PreparedDocument::Impl {
  Xapian::Document doc;
  bool collect_only = false;
  std::vector<std::string> terms; // collect_only
};

PreparedDocument::PreparedDocument() : m_impl(std::make_unique<Impl>()) {}
PreparedDocument::~PreparedDocument() = default;
PreparedDocument::PreparedDocument(PreparedDocument &&) noexcept = default;
PreparedDocument &PreparedDocument::operator=(PreparedDocument &&) noexcept = default;

void PreparedDocument::set_key(std::string qterm) {
  m_key = std::move(qterm);
  add_boolean_term(m_key);
}

void PreparedDocument::add_boolean_term(const std::string &term) {
  if (term.empty() || term.size() > k_max_term_bytes) {
    return; // callers hash long identities; anything else this long is never searched for
  }
  if (m_impl->collect_only) {
    m_impl->terms.push_back(term);
    return;
  }
  m_impl->doc.add_boolean_term(term);
  m_bytes += term.size() + 32;
}

void PreparedDocument::add_term(const std::string &term, std::uint32_t wdf) {
  if (term.empty() || term.size() > k_max_term_bytes) {
    return;
  }
  if (m_impl->collect_only) {
    m_impl->terms.push_back(term);
    return;
  }
  m_impl->doc.add_term(term, wdf);
  m_bytes += term.size() + 32;
}

void PreparedDocument::add_posting(const std::string &term, std::uint32_t position) {
  if (term.empty() || term.size() > k_max_term_bytes) {
    return; // a "word" this long is not part of a name
  }
  if (m_impl->collect_only) {
    m_impl->terms.push_back(term);
    return;
  }
  const Xapian::termcount before = m_impl->doc.termlist_count();
  m_impl->doc.add_posting(term, position);
  if (m_impl->doc.termlist_count() != before) {
    m_bytes += term.size() + k_term_node_bytes;
  }
  m_bytes += k_position_bytes;
}

void PreparedDocument::collect_terms_only() { m_impl->collect_only = true; }

std::vector<std::string> PreparedDocument::terms() const {
  if (m_impl->collect_only) {
    return m_impl->terms;
  }
  std::vector<std::string> out;
  for (auto it = m_impl->doc.termlist_begin(); it != m_impl->doc.termlist_end(); ++it) {
    out.push_back(*it);
  }
  return out;
}

std::vector<std::string> PreparedDocument::take_terms() {
  if (m_impl->collect_only) {
    return std::exchange(m_impl->terms, {});
  }
  return terms();
}

const Xapian::Document &PreparedDocument::xapian() const { return m_impl->doc; }

void PreparedDocument::set_data(const std::string &data) {
  m_impl->doc.set_data(data);
  m_bytes += data.size();
}

void PreparedDocument::set_date(std::int64_t seconds_since_epoch) {
  m_impl->doc.add_value(schema::k_slot_date,
                        Xapian::sortable_serialise(static_cast<double>(seconds_since_epoch)));
}

// ---- IndexStore ----

struct IndexStore::Impl {
  OpenMode mode = OpenMode::read_only;
  Xapian::Database rdb;          // read-only mode
  Xapian::WritableDatabase wdb;  // writable modes
  bool in_transaction = false;

  Xapian::Database &reader() { return mode == OpenMode::read_only ? rdb : wdb; }
};

IndexStore::IndexStore(std::unique_ptr<Impl> impl, std::string path)
    : m_impl(std::move(impl)), m_path(std::move(path)) {}
IndexStore::IndexStore(IndexStore &&) noexcept = default;
IndexStore &IndexStore::operator=(IndexStore &&) noexcept = default;
IndexStore::~IndexStore() {
  if (m_impl && m_impl->in_transaction) {
    cancel_transaction();
  }
}

core::Result<IndexStore> IndexStore::open(const std::string &path, OpenMode mode) {
  std::string ctx = fmt::format("index {}: ", path);
  auto impl = std::make_unique<Impl>();
  impl->mode = mode;
  if (mode == OpenMode::read_only) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return core::fail(core::ErrorCode::no_input, fmt::format("index {}: does not exist", path),
                        "run maildsar index first");
    }
  }
  for (int attempt = 0;; ++attempt) {
    try {
      switch (mode) {
      case OpenMode::read_only:
        impl->rdb = Xapian::Database(path);
        break;
      case OpenMode::writable:
        impl->wdb = Xapian::WritableDatabase(path, Xapian::DB_CREATE_OR_OPEN);
        break;
      case OpenMode::overwrite:
        impl->wdb = Xapian::WritableDatabase(path, Xapian::DB_CREATE_OR_OVERWRITE);
        break;
      }
      Xapian::Database &db = impl->reader();
      std::string version = db.get_metadata(std::string(schema::k_meta_schema_version));
      std::string features = db.get_metadata(std::string(schema::k_meta_features));
      if (version.empty() && features.empty() && db.get_doccount() == 0) {
        if (mode != OpenMode::read_only) {
          impl->wdb.set_metadata(std::string(schema::k_meta_schema_version),
                                 std::string(schema::k_schema_version));
          impl->wdb.set_metadata(std::string(schema::k_meta_features),
                                 std::string(schema::k_features));
          impl->wdb.commit();
        }
      } else {
        MAILDSAR_TRY(schema::check_metadata(path, version, features));
      }
      return IndexStore(std::move(impl), path);
    } catch (const Xapian::DatabaseModifiedError &) {
      if (mode != OpenMode::read_only || attempt + 1 >= k_read_retries) {
        return std::unexpected(error_from_xapian_exception(ctx));
      }
    } catch (...) {
      return std::unexpected(error_from_xapian_exception(ctx));
    }
  }
}

std::optional<std::string> IndexStore::schema_version_of(const std::string &path) {
  try {
    Xapian::Database db(path);
    return db.get_metadata(std::string(schema::k_meta_schema_version));
  } catch (...) {
    return std::nullopt;
  }
}

core::Result<IndexTransaction> IndexStore::begin_transaction() {
  if (m_impl->mode == OpenMode::read_only) {
    return core::fail(core::ErrorCode::internal, fmt::format("index {}: opened read-only", m_path));
  }
  try {
    m_impl->wdb.begin_transaction(true);
    m_impl->in_transaction = true;
    return IndexTransaction(this);
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: ", m_path)));
  }
}

core::Status IndexStore::commit_transaction() {
  try {
    m_impl->wdb.commit_transaction();
    m_impl->in_transaction = false;
    return {};
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: commit: ", m_path)));
  }
}

void IndexStore::cancel_transaction() noexcept {
  try {
    m_impl->in_transaction = false;
    m_impl->wdb.cancel_transaction();
  } catch (...) {
    // Nothing more we can do: the uncommitted changes are lost either way.
  }
}

IndexTransaction::~IndexTransaction() {
  if (m_store != nullptr) {
    m_store->cancel_transaction();
  }
}

core::Status IndexTransaction::commit() {
  if (m_store == nullptr) {
    return core::fail(core::ErrorCode::internal, "commit of a finished index transaction");
  }
  IndexStore *store = std::exchange(m_store, nullptr);
  return store->commit_transaction();
}

core::Status IndexStore::add(PreparedDocument &&doc) {
  try {
    m_impl->wdb.add_document(doc.m_impl->doc);
    return {};
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: add: ", m_path)));
  }
}

core::Status IndexStore::replace(PreparedDocument &&doc) {
  try {
    m_impl->wdb.replace_document(doc.m_key, doc.m_impl->doc);
    return {};
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: replace: ", m_path)));
  }
}

core::Status IndexStore::delete_by_term(const std::string &term) {
  try {
    m_impl->wdb.delete_document(term);
    return {};
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: delete: ", m_path)));
  }
}

core::Status IndexStore::commit() {
  try {
    m_impl->wdb.commit();
    return {};
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: commit: ", m_path)));
  }
}

core::Result<std::uint64_t> IndexStore::doc_count() const {
  try {
    return std::uint64_t{m_impl->reader().get_doccount()};
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: ", m_path)));
  }
}

core::Result<std::uint64_t> IndexStore::term_freq(const std::string &term) const {
  try {
    return std::uint64_t{m_impl->reader().get_termfreq(term)};
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: ", m_path)));
  }
}

core::Result<std::optional<std::string>> IndexStore::document_data(const std::string &qterm) const {
  try {
    Xapian::Database &db = m_impl->reader();
    Xapian::PostingIterator it = db.postlist_begin(qterm);
    if (it == db.postlist_end(qterm)) {
      return std::optional<std::string>{};
    }
    return std::optional<std::string>{db.get_document(*it).get_data()};
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: ", m_path)));
  }
}

core::Result<std::vector<std::string>> IndexStore::documents_data(const std::string &term) const {
  try {
    Xapian::Database &db = m_impl->reader();
    std::vector<std::string> out;
    for (auto it = db.postlist_begin(term); it != db.postlist_end(term); ++it) {
      out.push_back(db.get_document(*it).get_data());
    }
    return out;
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: ", m_path)));
  }
}

core::Result<bool> IndexStore::rekey(const std::string &old_qterm, const std::string &new_qterm,
                                     const std::string &old_file_term,
                                     const std::string &new_file_term,
                                     const std::string &new_data) {
  try {
    Xapian::WritableDatabase &db = m_impl->wdb;
    Xapian::PostingIterator it = db.postlist_begin(old_qterm);
    if (it == db.postlist_end(old_qterm)) {
      return false;
    }
    Xapian::docid id = *it;
    Xapian::Document doc = db.get_document(id);
    if (new_qterm != old_qterm) {
      std::vector<Xapian::docid> victims;
      for (auto other = db.postlist_begin(new_qterm); other != db.postlist_end(new_qterm); ++other) {
        if (*other != id) {
          victims.push_back(*other);
        }
      }
      for (Xapian::docid victim : victims) {
        db.delete_document(victim);
      }
      doc.remove_term(old_qterm);
      doc.add_boolean_term(new_qterm);
    }
    if (new_file_term != old_file_term) {
      try {
        doc.remove_term(old_file_term);
      } catch (const Xapian::InvalidArgumentError &) {
        // the document did not have it: nothing to remove
      }
      doc.add_boolean_term(new_file_term);
    }
    doc.set_data(new_data);
    db.replace_document(id, doc);
    return true;
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: rekey: ", m_path)));
  }
}

core::Result<std::string> IndexStore::metadata(const std::string &key) const {
  try {
    return m_impl->reader().get_metadata(key);
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: ", m_path)));
  }
}

core::Status IndexStore::set_metadata(const std::string &key, const std::string &value) {
  try {
    m_impl->wdb.set_metadata(key, value);
    return {};
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: ", m_path)));
  }
}

core::Status IndexStore::reopen() {
  try {
    m_impl->reader().reopen();
    return {};
  } catch (...) {
    return std::unexpected(error_from_xapian_exception(fmt::format("index {}: ", m_path)));
  }
}

core::Status remove_compact_leftover(const std::string &path) {
  std::error_code ec;
  std::filesystem::remove_all(path + ".compact", ec);
  if (ec) {
    return core::fail(core::ErrorCode::io, fmt::format("removing {}.compact: {}", path, ec.message()));
  }
  return {};
}

core::Result<bool> compact_index(const std::string &path) {
  namespace fs = std::filesystem;
  const std::string fresh = path + ".compact";
  MAILDSAR_TRY(remove_compact_leftover(path));
  try {
    Xapian::Database db(path);
    db.compact(fresh, Xapian::DBCOMPACT_NO_RENUMBER);
  } catch (...) {
    core::Error e = error_from_xapian_exception(fmt::format("compacting index {}", path));
    std::error_code ec;
    fs::remove_all(fresh, ec);
    return std::unexpected(std::move(e));
  }
  std::error_code ec;
  fs::permissions(fresh, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) != 0) {
    const int err = errno;
    fs::remove_all(fresh, ec);
    if (err == EINVAL || err == ENOSYS || err == EOPNOTSUPP) {
      return false; // no atomic swap here: keep the index as it is
    }
    return core::fail(core::ErrorCode::io, fmt::format("swapping in the compacted index {}: {}", path,
                                                       std::strerror(err)));
  }
  MAILDSAR_TRY(core::fsync_dir(fs::path(path).parent_path().string()));
  MAILDSAR_TRY(remove_compact_leftover(path)); // the old index
  return true;
}

} // namespace maildsar::index
