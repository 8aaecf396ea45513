// SPDX-License-Identifier: GPL-3.0-or-later
#include "erasure/state.hpp"

#include "indexer/suppression.hpp"
#include "core/time.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/secret.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>

namespace maildsar::erasure {

namespace {

constexpr std::string_view k_schema_v1 = R"(
CREATE TABLE manifests (
  hash TEXT PRIMARY KEY,
  request TEXT NOT NULL,
  planner TEXT NOT NULL,
  created TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE TABLE approvals (
  manifest_hash TEXT NOT NULL,
  operator TEXT NOT NULL,
  time TEXT NOT NULL,
  PRIMARY KEY (manifest_hash, operator)
);
CREATE TABLE journal (
  manifest_hash TEXT NOT NULL,
  step TEXT NOT NULL,
  state TEXT NOT NULL,
  detail TEXT NOT NULL,
  time TEXT NOT NULL,
  PRIMARY KEY (manifest_hash, step)
);
)";

constexpr std::string_view k_schema_v2 = R"(
ALTER TABLE approvals ADD COLUMN signature TEXT NOT NULL DEFAULT '';
)";

// The OS account of each approval (NULL uid: recorded before it was).
constexpr std::string_view k_schema_v3 = R"(
ALTER TABLE approvals ADD COLUMN os_uid INTEGER;
ALTER TABLE approvals ADD COLUMN os_user TEXT NOT NULL DEFAULT '';
)";

} // namespace

std::string now_iso() { return core::iso8601_now(); }

core::Result<ErasureDb> ErasureDb::open(const core::Config &config) {
  MAILDSAR_TRY(core::ensure_private_dir(config.state_dir));
  const std::string path = (std::filesystem::path(config.state_dir) / "erasure.sqlite3").string();
  MAILDSAR_TRY_ASSIGN(core::sqlite::Db db, core::sqlite::Db::open(path, core::sqlite::Writable::yes));
  MAILDSAR_TRY(db.exec("PRAGMA synchronous=FULL"));
  MAILDSAR_TRY(db.migrate({k_schema_v1, k_schema_v2, k_schema_v3}));
  return ErasureDb(std::move(db));
}

core::Status ErasureDb::put_manifest(const Manifest &manifest) {
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st,
                      m_db.prepare("INSERT OR IGNORE INTO manifests(hash, request, planner, created, body) "
                                   "VALUES (?, ?, ?, ?, ?)"));
  MAILDSAR_TRY(st.bind(1, manifest.hash));
  MAILDSAR_TRY(st.bind(2, manifest.request));
  MAILDSAR_TRY(st.bind(3, manifest.planner));
  MAILDSAR_TRY(st.bind(4, manifest.created));
  MAILDSAR_TRY(st.bind(5, manifest.to_json().dump()));
  MAILDSAR_TRY(st.step());
  return {};
}

core::Result<std::optional<std::string>> ErasureDb::manifest_body(const std::string &hash) const {
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st, m_db.prepare("SELECT body FROM manifests WHERE hash = ?"));
  MAILDSAR_TRY(st.bind(1, hash));
  MAILDSAR_TRY_ASSIGN(bool row, st.step());
  if (!row) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(st.column_text(0));
}

core::Result<std::vector<Manifest>> ErasureDb::manifests() const {
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st, m_db.prepare("SELECT body FROM manifests ORDER BY rowid"));
  std::vector<Manifest> out;
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, st.step());
    if (!row) {
      break;
    }
    MAILDSAR_TRY_ASSIGN(Manifest m, parse_manifest(st.column_text(0), m_db.path()));
    out.push_back(std::move(m));
  }
  return out;
}

core::Status ErasureDb::add_approval(const std::string &manifest_hash, const std::string &operator_name,
                                     const std::string &time, const std::string &signature,
                                     const core::OsUser &os) {
  // A signed approval replaces an unsigned one by the same operator; nothing else is changed.
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st,
                      m_db.prepare("INSERT INTO approvals(manifest_hash, operator, time, signature, os_uid, os_user) "
                                   "VALUES (?, ?, ?, ?, ?, ?) "
                                   "ON CONFLICT(manifest_hash, operator) DO UPDATE SET "
                                   "signature = excluded.signature, time = excluded.time "
                                   "WHERE approvals.signature = '' AND excluded.signature != ''"));
  MAILDSAR_TRY(st.bind(1, manifest_hash));
  MAILDSAR_TRY(st.bind(2, operator_name));
  MAILDSAR_TRY(st.bind(3, time));
  MAILDSAR_TRY(st.bind(4, signature));
  MAILDSAR_TRY(st.bind(5, std::int64_t{os.uid}));
  MAILDSAR_TRY(st.bind(6, os.name));
  MAILDSAR_TRY(st.step());
  return {};
}

core::Result<std::vector<Approval>> ErasureDb::approvals(const std::string &manifest_hash) const {
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st,
                      m_db.prepare("SELECT operator, time, signature, os_uid, os_user FROM approvals "
                                   "WHERE manifest_hash = ? ORDER BY time, operator"));
  MAILDSAR_TRY(st.bind(1, manifest_hash));
  std::vector<Approval> out;
  for (;;) {
    MAILDSAR_TRY_ASSIGN(bool row, st.step());
    if (!row) {
      break;
    }
    Approval a{st.column_text(0), st.column_text(1), st.column_text(2), std::nullopt};
    if (!st.column_is_null(3)) {
      a.os = core::OsUser{static_cast<std::uint32_t>(st.column_int64(3)), st.column_text(4)};
    }
    out.push_back(std::move(a));
  }
  return out;
}

core::Result<std::optional<JournalEntry>> ErasureDb::journal(const std::string &manifest_hash,
                                                             const std::string &step) const {
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st,
                      m_db.prepare("SELECT state, detail FROM journal WHERE manifest_hash = ? AND step = ?"));
  MAILDSAR_TRY(st.bind(1, manifest_hash));
  MAILDSAR_TRY(st.bind(2, step));
  MAILDSAR_TRY_ASSIGN(bool row, st.step());
  if (!row) {
    return std::optional<JournalEntry>();
  }
  return std::optional<JournalEntry>(JournalEntry{step, st.column_text(0), st.column_text(1)});
}

core::Status ErasureDb::set_journal(const std::string &manifest_hash, const std::string &step,
                                    const std::string &state, const std::string &detail) {
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st,
                      m_db.prepare("INSERT INTO journal(manifest_hash, step, state, detail, time) "
                                   "VALUES (?, ?, ?, ?, ?) ON CONFLICT(manifest_hash, step) DO UPDATE SET "
                                   "state = excluded.state, detail = excluded.detail, time = excluded.time"));
  MAILDSAR_TRY(st.bind(1, manifest_hash));
  MAILDSAR_TRY(st.bind(2, step));
  MAILDSAR_TRY(st.bind(3, state));
  MAILDSAR_TRY(st.bind(4, detail));
  MAILDSAR_TRY(st.bind(5, now_iso()));
  MAILDSAR_TRY(st.step());
  return {};
}

core::Status check_inside_root(const core::Config &config, const std::string &source, const std::string &path) {
  namespace fs = std::filesystem;
  const core::SourceConfig *src = nullptr;
  for (const core::SourceConfig &candidate : config.sources) {
    if (candidate.name == source) {
      src = &candidate;
    }
  }
  if (src == nullptr) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: source '{}' is not configured", path, source));
  }
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(path, ec);
  if (ec) {
    return core::fail(core::ErrorCode::io, fmt::format("{}: {}", path, ec.message()));
  }
  const std::string root = fs::weakly_canonical(src->root, ec).string();
  const std::string c = canonical.string();
  if (c != fs::path(path).lexically_normal().string() || !(c.starts_with(root + "/"))) {
    return core::fail(core::ErrorCode::permission,
                      fmt::format("{}: outside the store root {} of source '{}' (or reached through a "
                                  "symlink); not touched",
                                  path, root, source));
  }
  return {};
}

void kill_at(const std::function<bool(std::string_view)> &fault_at, const std::string &step) {
  if (fault_at && fault_at(step)) {
    std::fflush(nullptr);
    ::raise(SIGKILL);
  }
}


std::set<std::string> subject_kinds_in(const connectors::Item &item, const index::Normalizer &norm,
                                       const std::string &key, const std::set<std::string> &targets) {
  std::set<std::string> found;
  for (const index::Identity &id : norm.extract(item)) {
    const std::string keyed = index::keyed_identity(key, id); // "" for the mailbox's owner
    if (!keyed.empty() && targets.contains(keyed)) {
      found.insert(std::string(index::to_string(id.kind)));
    }
  }
  return found;
}

const core::SourceConfig *mbox_source_for(const core::Config &config, const std::string &path) {
  for (const core::SourceConfig &s : config.sources) {
    if (s.type == "mbox" && path.starts_with(s.root + "/") && core::glob_matches(s.path, path)) {
      return &s;
    }
  }
  return nullptr;
}

} // namespace maildsar::erasure
