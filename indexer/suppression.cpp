// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/suppression.hpp"

#include "core/fs.hpp"
#include "core/secret.hpp"
#include "core/sqlite.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace maildsar::index {

namespace {

constexpr std::string_view k_schema_v1 = R"(
CREATE TABLE suppressions (
  request TEXT NOT NULL,
  manifest TEXT NOT NULL,
  erased TEXT NOT NULL,
  PRIMARY KEY (request, manifest)
);
CREATE TABLE suppressed_identifiers (
  request TEXT NOT NULL,
  manifest TEXT NOT NULL,
  kind TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (request, manifest, kind, hash)
);
CREATE TABLE kept_items (
  request TEXT NOT NULL,
  manifest TEXT NOT NULL,
  source TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  PRIMARY KEY (request, manifest, source, sha256)
);
)";

core::Result<core::sqlite::Db> open_list(const core::Config &config, core::sqlite::Writable writable) {
  if (writable == core::sqlite::Writable::yes) {
    MAILDSAR_TRY(core::ensure_private_dir(config.state_dir));
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Db db, core::sqlite::Db::open(suppression_path(config), writable));
  if (writable == core::sqlite::Writable::yes) {
    MAILDSAR_TRY(db.exec("PRAGMA synchronous=FULL"));
    MAILDSAR_TRY(db.migrate({k_schema_v1}));
  } else {
    MAILDSAR_TRY_ASSIGN(std::int64_t version, db.user_version());
    if (version > 1) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: written by a newer maildsar (version {})", db.path(), version));
    }
  }
  return db;
}

std::string sorted_tokens(const std::string &folded) {
  std::vector<std::string> tokens;
  std::size_t begin = 0;
  while (begin <= folded.size()) {
    std::size_t end = folded.find(' ', begin);
    if (end == std::string::npos) {
      end = folded.size();
    }
    if (end > begin) {
      tokens.push_back(folded.substr(begin, end - begin));
    }
    begin = end + 1;
  }
  std::ranges::sort(tokens);
  std::string out;
  for (const std::string &t : tokens) {
    out += (out.empty() ? "" : " ") + t;
  }
  return out;
}

} // namespace

std::string suppression_path(const core::Config &config) {
  return (std::filesystem::path(config.state_dir) / "suppression.sqlite3").string();
}

core::Status record_suppression(const core::Config &config, const Suppression &s) {
  MAILDSAR_TRY_ASSIGN(core::sqlite::Db db, open_list(config, core::sqlite::Writable::yes));
  MAILDSAR_TRY_ASSIGN(core::sqlite::Transaction tx, core::sqlite::Transaction::begin(db));
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt head,
                      db.prepare("INSERT OR IGNORE INTO suppressions(request, manifest, erased) VALUES (?, ?, ?)"));
  MAILDSAR_TRY(head.bind(1, s.request));
  MAILDSAR_TRY(head.bind(2, s.manifest));
  MAILDSAR_TRY(head.bind(3, s.erased));
  MAILDSAR_TRY(head.run());
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt id, db.prepare("INSERT OR IGNORE INTO suppressed_identifiers(request, "
                                                        "manifest, kind, hash) VALUES (?, ?, ?, ?)"));
  for (const SuppressedIdentifier &i : s.identifiers) {
    MAILDSAR_TRY(id.bind(1, s.request));
    MAILDSAR_TRY(id.bind(2, s.manifest));
    MAILDSAR_TRY(id.bind(3, i.kind));
    MAILDSAR_TRY(id.bind(4, i.hash));
    MAILDSAR_TRY(id.run());
  }
  // What the erasure left in place is what its last run left: a resumed run that finished
  // items an earlier one could not replaces the earlier list.
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt forget, db.prepare("DELETE FROM kept_items WHERE request = ? AND manifest = ?"));
  MAILDSAR_TRY(forget.bind(1, s.request));
  MAILDSAR_TRY(forget.bind(2, s.manifest));
  MAILDSAR_TRY(forget.run());
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt kept, db.prepare("INSERT OR IGNORE INTO kept_items(request, manifest, "
                                                          "source, sha256) VALUES (?, ?, ?, ?)"));
  for (const auto &[source, sha] : s.kept) {
    MAILDSAR_TRY(kept.bind(1, s.request));
    MAILDSAR_TRY(kept.bind(2, s.manifest));
    MAILDSAR_TRY(kept.bind(3, source));
    MAILDSAR_TRY(kept.bind(4, sha));
    MAILDSAR_TRY(kept.run());
  }
  return tx.commit();
}

namespace {

/** Every suppression of the list at `db`; with `kept`, also what each request left in place. */
core::Result<std::vector<Suppression>> read_all(const core::sqlite::Db &db, bool with_kept) {
  std::vector<Suppression> out;
  std::map<std::pair<std::string, std::string>, std::size_t> at;
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt head,
                      db.prepare("SELECT request, manifest, erased FROM suppressions ORDER BY erased, rowid"));
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, head.step());
    if (!row) {
      break;
    }
    Suppression s;
    s.request = head.column_text(0);
    s.manifest = head.column_text(1);
    s.erased = head.column_text(2);
    at.emplace(std::pair{s.request, s.manifest}, out.size());
    out.push_back(std::move(s));
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt ids, db.prepare("SELECT request, manifest, kind, hash FROM "
                                                         "suppressed_identifiers ORDER BY rowid"));
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, ids.step());
    if (!row) {
      break;
    }
    auto it = at.find(std::pair{ids.column_text(0), ids.column_text(1)});
    if (it == at.end()) {
      return core::fail(core::ErrorCode::data, fmt::format("{}: identifiers without their suppression", db.path()));
    }
    out[it->second].identifiers.push_back(SuppressedIdentifier{ids.column_text(2), ids.column_text(3)});
  }
  if (with_kept) {
    MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt kept, db.prepare("SELECT request, source, sha256 FROM kept_items"));
    for (;;) {
      MAILDSAR_TRY_ASSIGN(bool row, kept.step());
      if (!row) {
        break;
      }
      const std::string request = kept.column_text(0);
      for (Suppression &s : out) {
        if (s.request == request) {
          s.kept.emplace_back(kept.column_text(1), kept.column_text(2));
          break; // to the request's first suppression: matching is per request
        }
      }
    }
  }
  return out;
}

bool list_exists(const core::Config &config) {
  std::error_code ec;
  return std::filesystem::exists(suppression_path(config), ec);
}

} // namespace

core::Result<std::vector<Suppression>> read_suppressions(const core::Config &config) {
  if (!list_exists(config)) {
    return std::vector<Suppression>{};
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Db db, open_list(config, core::sqlite::Writable::no));
  return read_all(db, false);
}

std::string keyed_identity(std::string_view key, const Identity &identity) {
  if (identity.role == connectors::Role::owner) {
    return {};
  }
  const std::string kind(to_string(identity.kind));
  const std::string value = identity.kind == IdentityKind::name ? sorted_tokens(identity.value) : identity.value;
  return kind + ":" + core::keyed_hash(key, kind, value);
}

core::Result<std::optional<SuppressionList>> SuppressionList::load(const core::Config &config) {
  if (!list_exists(config)) {
    return std::optional<SuppressionList>();
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Db db, open_list(config, core::sqlite::Writable::no));
  MAILDSAR_TRY_ASSIGN(std::vector<Suppression> all, read_all(db, true));
  if (all.empty()) {
    return std::optional<SuppressionList>();
  }
  MAILDSAR_TRY_ASSIGN(std::string key, core::load_or_create_secret(config.state_dir));
  return std::optional<SuppressionList>(SuppressionList(std::move(key), all));
}

SuppressionList::SuppressionList(std::string key, const std::vector<Suppression> &suppressions)
    : m_key(std::move(key)) {
  for (const Suppression &s : suppressions) {
    std::vector<SuppressedIdentifier> &ids = m_identifiers[s.request];
    for (const SuppressedIdentifier &i : s.identifiers) {
      m_requests[i.kind + ":" + i.hash].insert(s.request);
      if (std::ranges::find(ids, i) == ids.end()) {
        ids.push_back(i);
      }
    }
    for (const auto &item : s.kept) {
      m_kept[item].insert(s.request);
    }
  }
}

namespace {
/** Identities whose verdict SuppressionList remembers; then it forgets them all and starts again. */
constexpr std::size_t k_memo_entries = std::size_t{1} << 16U;
} // namespace

const std::set<std::string> *SuppressionList::requests_of(const Identity &identity) const {
  if (identity.role == connectors::Role::owner) {
    return nullptr; // never keyed (keyed_identity)
  }
  std::string memo_key(to_string(identity.kind));
  memo_key += '\n';
  memo_key += identity.value;
  {
    std::shared_lock lock(m_memo->mutex);
    if (auto it = m_memo->seen.find(memo_key); it != m_memo->seen.end()) {
      return it->second;
    }
  }
  const std::string keyed = keyed_identity(m_key, identity);
  auto it = keyed.empty() ? m_requests.end() : m_requests.find(keyed);
  const std::set<std::string> *requests = it == m_requests.end() ? nullptr : &it->second;
  std::unique_lock lock(m_memo->mutex);
  if (m_memo->seen.size() >= k_memo_entries) {
    m_memo->seen.clear();
  }
  m_memo->seen.emplace(std::move(memo_key), requests);
  return requests;
}

std::vector<std::string> SuppressionList::match(const std::vector<Identity> &identities, std::string_view source,
                                                std::string_view sha256) const {
  std::set<std::string> found;
  for (const Identity &identity : identities) {
    if (const std::set<std::string> *requests = requests_of(identity)) {
      found.insert(requests->begin(), requests->end());
    }
  }
  if (!found.empty()) {
    if (auto kept = m_kept.find({std::string(source), std::string(sha256)}); kept != m_kept.end()) {
      for (const std::string &request : kept->second) {
        found.erase(request);
      }
    }
  }
  return {found.begin(), found.end()};
}

const std::vector<SuppressedIdentifier> *SuppressionList::identifiers_of(const std::string &request) const {
  auto it = m_identifiers.find(request);
  return it == m_identifiers.end() ? nullptr : &it->second;
}

} // namespace maildsar::index
