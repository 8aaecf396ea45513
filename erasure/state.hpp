// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * The erasure state database (<state>/erasure.sqlite3, 0600): manifests that were planned,
 * approvals, and the execution journal. Internal to erasure/.
 */
#include "core/config.hpp"
#include "core/result.hpp"
#include "core/sqlite.hpp"
#include "erasure/erasure.hpp"
#include "indexer/identity.hpp"

#include <functional>
#include <optional>
#include <set>
#include <string_view>
#include <string>
#include <vector>

namespace maildsar::erasure {

struct JournalEntry {
  std::string step;
  std::string state; // started | done
  std::string detail; // JSON
};

class ErasureDb {
public:
  [[nodiscard]] static core::Result<ErasureDb> open(const core::Config &config);

  /** Remembers a manifest (idempotent). */
  [[nodiscard]] core::Status put_manifest(const Manifest &manifest);
  /** Every manifest remembered, oldest first. */
  [[nodiscard]] core::Result<std::vector<Manifest>> manifests() const;
  /** The stored JSON of the manifest with `hash`, as put_manifest wrote it; nullopt if none. */
  [[nodiscard]] core::Result<std::optional<std::string>> manifest_body(const std::string &hash) const;

  /** `os`: the OS account approving (recorded beside the operator's name). */
  [[nodiscard]] core::Status add_approval(const std::string &manifest_hash, const std::string &operator_name,
                                          const std::string &time, const std::string &signature,
                                          const core::OsUser &os);
  [[nodiscard]] core::Result<std::vector<Approval>> approvals(const std::string &manifest_hash) const;

  [[nodiscard]] core::Result<std::optional<JournalEntry>> journal(const std::string &manifest_hash,
                                                                  const std::string &step) const;
  /** Records a step's state durably (synchronous=FULL) before returning. */
  [[nodiscard]] core::Status set_journal(const std::string &manifest_hash, const std::string &step,
                                         const std::string &state, const std::string &detail);

private:
  explicit ErasureDb(core::sqlite::Db db) : m_db(std::move(db)) {}
  core::sqlite::Db m_db;
};

/**
 * A path erase or retention may touch: absolute, inside the source's configured root, with no
 * symlink on the way (its canonical form is the path itself). ErrorCode::permission otherwise.
 */
[[nodiscard]] core::Status check_inside_root(const core::Config &config, const std::string &source,
                                             const std::string &path);

/**
 * The kinds ("email", "name", ...) of the subject's identifiers that `item` shows, the mailbox
 * owner role excepted. `targets` holds "<kind>:<keyed hash>" of each subject identifier.
 */
[[nodiscard]] std::set<std::string> subject_kinds_in(const connectors::Item &item, const index::Normalizer &norm,
                                                     const std::string &key, const std::set<std::string> &targets);

/** The mbox source that would index `path` (its root and path pattern cover it), or nullptr. */
[[nodiscard]] const core::SourceConfig *mbox_source_for(const core::Config &config, const std::string &path);

/** Fault injection: kills the process (SIGKILL, as a crash would) when `fault_at(step)` says so. */
void kill_at(const std::function<bool(std::string_view)> &fault_at, const std::string &step);

/** "2026-11-28T20:00:00Z" for now. */
[[nodiscard]] std::string now_iso();

} // namespace maildsar::erasure
