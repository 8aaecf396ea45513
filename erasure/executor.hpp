// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Internal to erasure/: the executor of `erase` (execute.cpp runs and journals each file step;
// execute_stores.cpp holds the steps of each store: Maildir, mbox and message files, MTA
// queues, backup archives, PST conversion, delivery logs).

#include "connectors/item.hpp"
#include "connectors/store_writer.hpp"
#include "core/config.hpp"
#include "core/result.hpp"
#include "erasure/convert.hpp"
#include "erasure/erasure.hpp"
#include "erasure/message_redaction.hpp"
#include "erasure/policy.hpp"
#include "erasure/redact.hpp"
#include "erasure/state.hpp"
#include "indexer/identity.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace maildsar::erasure::execution {

using nlohmann::json;

/** Every item of one file that erase changes, and what came out of it. */
struct FileStep {
  std::string path;
  connectors::StoreKind store = connectors::StoreKind::maildir;
  std::string source;
  std::vector<const ManifestItem *> items;
};

/** How many times erase carries out one file step in all when items of it fail. */
inline constexpr std::uint64_t k_max_attempts = 5;

/** Counts one outcome. */
inline void record(EraseReport &report, const ManifestItem &item, std::string result, std::string detail,
            bool transient = false, std::uint64_t attempt = 1, bool retried_now = false) {
  ++report.counts[std::string(connectors::to_string(item.locator.store))][result];
  if (retried_now && attempt > 1) {
    ++report.retried;
  }
  report.items.push_back(
      ItemOutcome{item.id, item.action, std::move(result), std::move(detail), transient, attempt});
}



/**
 * What protects files from erase beyond the items' own actions: the manifest's exemptions and
 * the holds of the config as of today, and the files of every item the manifest lists (by their
 * current path), so that removing "other copies" of a message never takes a retained item or one
 * that its own step handles.
 */
struct Protected {
  Policy policy;
  std::string today;
  std::map<std::string, const ManifestItem *> listed; // current path -> the item listing it
  std::set<std::string> retained;                    // current paths of retained/manual items
};

/** The current path of an item's file (Maildir files move between new/ and cur/). */
inline std::string current_path(const connectors::Locator &loc) {
  if (loc.store == connectors::StoreKind::maildir) {
    if (auto current = connectors::maildir_current_path(loc.path)) {
      return *current;
    }
  }
  return loc.path;
}

/** What distinguishes an item within its file: the file itself, an mbox range, log lines, a node. */
inline std::string item_key(const connectors::Locator &loc, const std::string &path) {
  switch (loc.store) {
  case connectors::StoreKind::maildir:
  case connectors::StoreKind::postfix_queue:
  case connectors::StoreKind::exim_spool:
    return path;
  case connectors::StoreKind::quarantine:
  case connectors::StoreKind::emlfolder:
  case connectors::StoreKind::mbox:
    return fmt::format("{}@{}+{}", path, loc.offset, loc.length);
  case connectors::StoreKind::maillog:
    return fmt::format("{}#{}", path, fmt::join(loc.lines, ","));
  case connectors::StoreKind::pst:
    return fmt::format("{}!{}", path, loc.node_id);
  case connectors::StoreKind::archive:
    return loc.key();
  }
  return path;
}

/** Records one item's outcome of a file step (into the journal's list). */
struct Outcome {
  std::function<void(const ManifestItem &, std::string, std::string, bool)> add;
  void operator()(const ManifestItem &item, std::string result, std::string detail) const {
    add(item, std::move(result), std::move(detail), false);
  }
  /** A failure: stale when the bytes changed, else failed; transient when retrying may help
      (a lock held too long, a read-only or full file system). */
  void operator()(const ManifestItem &item, const core::Error &error) const {
    if (connectors::is_stale(error)) {
      add(item, "stale", error.message, false);
    } else {
      add(item, "failed", error.message, core::info(error.code).retryable);
    }
  }
};

class Executor {
public:
  Executor(const core::Config &config, const Manifest &manifest, const EraseOptions &options, ErasureDb &db,
           Redactor &redactor, KeyedMasks &masks, const index::Normalizer &normalizer, SubjectCheck subject,
           EraseReport &report, const Protected &protect)
      : m_config(config), m_manifest(manifest), m_options(options), m_db(db), m_redactor(redactor), m_masks(masks),
        m_normalizer(normalizer), m_subject(std::move(subject)), m_report(report), m_protected(protect) {}

  /** Kills the process at `step` when the fault-injection hook asks for it. */
  void point(const std::string &step) const {
    kill_at(m_options.fault_at, step);
  }

  core::Status run_file(std::size_t n, const FileStep &original);

  /** The highest attempt of a file step in this run (> 1: failed steps were retried). */
  [[nodiscard]] std::uint64_t max_attempt() const { return m_max_attempt; }
  /** Logs this run edited in place, and where (IndexOptions::edited_in_place). */
  [[nodiscard]] const std::map<std::string, std::vector<std::uint64_t>> &edited_in_place() const {
    return m_edited_in_place;
  }

private:

  /** Reports a step's journalled outcomes; `now`: the step ran in this run (else: replayed). */
  void replay(const std::string &detail, const std::string &failed_note = {}, bool now = false);

  /** Whether a Maildir step may change the message file now at `current`: inside its source's
      root and not also listed as retained (else the item's outcome says why not). */
  bool may_change(const FileStep &step, const ManifestItem &item, const std::string &current,
                  const Outcome &outcome) const;

  /** The other copies of the item's message in its Maildir (same size and SHA-256) that the
      manifest does not list, that no hold or exemption covers and that lie inside the root. */
  std::vector<std::string> unlisted_copies(const FileStep &step, const ManifestItem &item,
                                           const std::string &current) const;

  /** Returns how many other copies of the message it removed. */
  std::uint64_t erase_maildir(const FileStep &step, bool resumed, const connectors::StepHook &hook,
                              const Outcome &outcome);

  /**
   * A Maildir message kept with the subject masked (action redact): written under a new name
   * with the same flags, the old file removed (connectors::replace_maildir_message, which makes
   * a resumed run finish what a crash interrupted: the new name is a function of the manifest
   * and the old name). Other copies of the same message in that Maildir that the manifest does
   * not list (a copy filed since the index, a duplicate delivery) get the same redacted
   * contents, unless a hold or exemption covers them. Returns how many copies it rewrote.
   */
  std::uint64_t redact_maildir(const FileStep &step, bool resumed, const connectors::StepHook &hook,
                               const Outcome &outcome);

  /**
   * A queued message of a source that allows it (`allow_remove`): the MTA's own command removes
   * it (connectors::remove_queued_message checks the bytes first and the file's absence after).
   * Gone on a resumed step: done (the interrupted run removed it); gone otherwise: stale (the MTA
   * delivered or expired it since planning, which the re-index records).
   */
  void erase_queued(const FileStep &step, bool resumed, const connectors::StepHook &hook, const Outcome &outcome);

  void erase_file_or_ranges(const FileStep &step, bool resumed, const json &started,
                            const connectors::StepHook &hook, const Outcome &outcome);

  /**
   * A quarantine file or loose message file kept with the subject masked: the same name with the
   * redacted contents (temp + fsync + rename; gzip again when it was). Resuming after the rename:
   * the file is a new inode and holds the redaction already.
   */
  void redact_message_file(const ManifestItem &item, bool resumed, const json &started,
                           const connectors::StepHook &hook, const Outcome &outcome);

  /**
   * Items of a backup archive: manual ones are recorded as such (the archive is never changed
   * in place); with the source's "rewrite", the archive is rewritten without the erase items
   * (connectors::rewrite_archive: same format and filter, temp file + fsync + rename). Resuming
   * after the rename: the archive is a new inode and the items are already gone.
   */
  void rewrite_archive(const FileStep &step, bool resumed, const json &started, const connectors::StepHook &hook,
                       const Outcome &outcome);

  /**
   * An mbox cut must be exactly one message as the file splits now (the source's dialect): an
   * index made by an older splitter that trusted a sender's Content-Length may hold a range that
   * spans the next person's message too. Such cuts fail and are dropped, nothing is changed.
   */
  void keep_whole_messages(const FileStep &step, std::vector<connectors::MboxCut> &cuts,
                           std::vector<const ManifestItem *> &ranged, const Outcome &outcome);

  /** `--pst convert`: the PST becomes an mbox archive without the subject's items. */
  core::Status convert(const FileStep &step, const std::string &key, json &started, const connectors::StepHook &hook,
                       const Outcome &outcome, json &outcomes);

  void redact_log(const FileStep &step, bool resumed, const connectors::StepHook &hook, const Outcome &outcome);

  /**
   * "done" for a redaction is only true when the file, read again by its connector and searched
   * as the index searches, shows nothing of the subject in the item's lines (the redactor and
   * the indexer could disagree about a token; a wrong key would make the redactor blind).
   * Turns each such "done" into "failed", naming what remains.
   */
  void confirm_redactions(const FileStep &step, json &outcomes);

  /** Per item of the step: the kinds of the subject's identifiers its lines still show. */
  core::Result<std::map<std::string, std::set<std::string>>> rescan_log(const FileStep &step);

  const core::Config &m_config;
  const Manifest &m_manifest;
  const EraseOptions &m_options;
  ErasureDb &m_db;
  Redactor &m_redactor;
  KeyedMasks &m_masks;
  const index::Normalizer &m_normalizer;
  std::map<std::string, std::string> m_new_paths; // item id -> its redacted Maildir file
  SubjectCheck m_subject;
  EraseReport &m_report;
  const Protected &m_protected;
  std::uint64_t m_max_attempt = 1;
  std::map<std::string, std::vector<std::uint64_t>> m_edited_in_place; // path -> offsets of the lines edited
};

} // namespace maildsar::erasure::execution
