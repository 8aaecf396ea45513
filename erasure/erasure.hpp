// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * Art. 17 erasure (DESIGN §5): plan -> manifest -> approvals -> erase (journalled, resumable)
 * -> the index forgets -> verify -> certificate. Every step writes an audit record; no record,
 * manifest or state file holds the subject's identifiers in clear (keyed hashes only).
 */
#include "connectors/item.hpp"
#include "core/config.hpp"
#include "core/progress.hpp"
#include "core/identity.hpp"
#include "core/result.hpp"
#include "query/query.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::erasure {

class ErasureDb; // erasure/state.hpp

/** What erase does with one item. */
enum class Action { erase, redact, retain, manual, convert };
/** "delete" "redact" "retain" "manual" "convert" */
[[nodiscard]] std::string_view to_string(Action action);
[[nodiscard]] std::optional<Action> action_from_string(std::string_view name);

/** The reason of every `manual` item of a backup archive (store kind archive, issue 17 item 2). */
inline constexpr std::string_view k_archive_manual_reason =
    "backup: cannot be changed in place; suppressed on restore";

/** A subject identifier as a keyed hash (core::keyed_hash of its normalised form). */
struct KeyedIdentifier {
  std::string kind; // email | name | phone | ip
  std::string hash;
  friend bool operator==(const KeyedIdentifier &, const KeyedIdentifier &) = default;
};

/** The identity of a file when the plan was made. */
struct FileIdentity {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
};

struct ManifestItem {
  std::string id; // the item id of `find`
  Action action = Action::erase;
  std::string reason;    // why this action ("message in a mailbox", "hold: litigation 2026-17")
  std::string until;     // retain: YYYY-MM-DD, "" = indefinite
  std::string instructions; // manual: what an administrator must do, and where
  std::string convert_to;   // convert: the mbox archive that replaces the PST file
  /** redact of a message: what erase will change in it, naming no one ("To", "Received",
      "text/plain part", "attachment withheld (application/pdf)", ...), from a trial redaction
      at planning time. */
  std::vector<std::string> changes = {};
  connectors::Locator locator;
  std::string sha256; // of the item's bytes when indexed (checked again before any change)
  FileIdentity file;
};

/** An erasure manifest (docs/schemata.md "maildsar.manifest"). */
struct Manifest {
  std::string request;
  std::string created; // ISO 8601 UTC
  std::string planner;
  /** The OS account that planned it (core::current_os_user at `plan`); absent in manifests
      written before it was recorded. `approve` and `erase` refuse approvals by that account. */
  std::optional<core::OsUser> planner_os;
  std::vector<KeyedIdentifier> subject;
  nlohmann::json policy = nlohmann::json::object();
  std::string index_version;
  std::string tool_version;
  std::vector<ManifestItem> items;
  std::string hash; // SHA-256 of the canonical JSON without "manifest_sha256"

  [[nodiscard]] nlohmann::json to_json() const; // includes manifest_sha256 = hash
  /** Recomputes the hash over everything else. */
  [[nodiscard]] std::string compute_hash() const;
};

/** Parses a manifest; ErrorCode::data when malformed or when its hash does not match (altered). */
[[nodiscard]] core::Result<Manifest> parse_manifest(std::string_view text, const std::string &path);
[[nodiscard]] core::Result<Manifest> load_manifest(const std::string &path);
/** Writes it atomically with mode 0600; refuses to overwrite an existing file. */
[[nodiscard]] core::Status save_manifest(const Manifest &manifest, const std::string &path);

/** The subject's identifiers, normalised as the index does, as keyed hashes. */
[[nodiscard]] core::Result<std::vector<KeyedIdentifier>>
keyed_subject(const core::Config &config, const query::SubjectProfile &subject, const std::string &key);

// --------------------------------------------------------------------------------------------

/** What `plan` does with the subject's PST items. */
enum class PstMode {
  manual, // each item `manual`: instructions to delete it in Outlook
  convert // each item `convert`: the PST is replaced by an mbox archive without them
};

struct PlanOptions {
  std::string planner;
  std::string policy_path; // optional --policy FILE
  std::string today;       // YYYY-MM-DD; "" = the current UTC date (tests pin it)
  PstMode pst = PstMode::manual;
  /** `--resurrected`: the items flagged by suppression on restore for the subject's request
      (SubjectProfile::request; no identifier needed: the list keeps them keyed), planned under
      the same rules as any plan, for a new approval. */
  bool resurrected = false;
  core::OsUser planner_os = core::current_os_user(); // the OS account that really plans
  /** Progress: phase "items" (each found item's bytes read again and checked). */
  core::ProgressFn on_progress = {};
  /** The policy itself, already read (a DPO host's --policy sent to a host's agent, issue 15);
      when set, policy_path is not read. Checked as a policy file is. */
  std::optional<nlohmann::json> policy = std::nullopt;
};

struct PlanResult {
  Manifest manifest;
  /** The items found, as `find` gives them (dates, subject lines, correspondents: the approval
      summary, erasure/approval.hpp). */
  std::vector<query::Hit> hits;
  std::uint64_t stale = 0; // items whose bytes changed since they were indexed (re-index first)
};

/** `plan`: read-only; every item found gets an action and a reason. Writes an audit record. */
[[nodiscard]] core::Result<PlanResult> plan(const core::Config &config,
                                            const query::SubjectProfile &subject,
                                            const PlanOptions &options);

// --------------------------------------------------------------------------------------------

struct Approval {
  std::string operator_name;
  std::string time;
  std::string signature; // hex Ed25519 over approval_message(hash, operator); "" = unsigned
  /** The OS account that approved; nullopt for approvals recorded before it was. */
  std::optional<core::OsUser> os;
};

/**
 * The checks every approval passes before it is recorded, of a manifest or of an estate
 * manifest (hash `hash`, planned by `planner` from `planner_os`): an operator is named, neither
 * the planner nor the planner's OS account approves, one OS account approves under one name;
 * and its signature with the key at `signing_key_path` (checked against the operator's
 * configured key, if any; "" unsigned, refused when approver keys are configured).
 */
[[nodiscard]] core::Result<std::string> approval_signature(const core::Config &config, ErasureDb &db,
                                                           const std::string &hash, const std::string &planner,
                                                           const std::optional<core::OsUser> &planner_os,
                                                           const std::string &operator_name,
                                                           const std::string &signing_key_path,
                                                           const core::OsUser &approver_os);

/**
 * `approve`: records `operator_name`'s approval of the manifest's hash, signed with the
 * Ed25519 private key at `signing_key_path` when given (checked against the configured public
 * key of that operator, if any). The planner can never approve (ErrorCode::permission): not
 * under the planner's operator name, and not from the OS account that planned, whatever
 * `--operator` says; nor can one OS account approve under two names. Approving twice is a no-op.
 * Writes an audit record. `approver_os` is the OS account running the approval.
 */
[[nodiscard]] core::Result<std::vector<Approval>> approve(const core::Config &config,
                                                          const Manifest &manifest,
                                                          const std::string &operator_name,
                                                          const std::string &signing_key_path = {},
                                                          const core::OsUser &approver_os = core::current_os_user());
[[nodiscard]] core::Result<std::vector<Approval>> approvals(const core::Config &config,
                                                            const std::string &manifest_hash);

// --------------------------------------------------------------------------------------------

enum class DryRun { no, yes };

struct EraseOptions {
  std::string operator_name;
  DryRun dry_run = DryRun::no;
  /**
   * Fault injection (tests): called before and after every journalled step with
   * "<step>:<n>" names; returning true kills the process there (SIGKILL), as a crash would.
   */
  std::function<bool(std::string_view step)> fault_at;
  /** How long to wait for each mbox lock (dotlock, fcntl, flock) held by another program. */
  std::chrono::milliseconds lock_wait{30000};
  /** Progress: phase "files" (the manifest's files, one step each), then the re-index (its
      sources' names as phases). */
  core::ProgressFn on_progress = {};
  /** A slice of an estate manifest carried out by this host's agent (erasure/estate.hpp,
      erase_slice): the approvals that count are these, which came with the request, signed
      over `signed_hash` (the estate manifest's hash) and checked against this host's
      erasure.approver_keys; the approvals in this host's state play no part. */
  struct Carried {
    std::string signed_hash;
    std::string planner; // the estate manifest's planner (never an approver)
    std::vector<Approval> approvals;
    std::string client_operator; // who ran erase on the DPO host (their claim; audited)
  };
  std::optional<Carried> carried = {};
};

/** The outcome of one item. */
struct ItemOutcome {
  std::string id;
  Action action = Action::erase;
  std::string result; // done | stale | retained | manual | failed | would-delete | would-redact
  std::string detail;
  bool transient = false;   // failed, and trying again later may succeed (lock busy, EROFS, ENOSPC)
  std::uint64_t attempt = 1; // > 1: the item failed before and this run tried it again
};

struct EraseReport {
  std::string manifest_hash;
  std::string request;
  std::vector<ItemOutcome> items;
  std::map<std::string, std::map<std::string, std::uint64_t>> counts; // store -> result -> n
  std::uint64_t extra_copies = 0; // other copies of a deleted message removed from its Maildir
  std::uint64_t retried = 0;      // items that failed in an earlier run and were tried again
  /** Converted PST files: the replacing mbox and where the original file went. */
  struct Conversion {
    std::string pst;
    std::string mbox;
    std::string original; // the PST's new place, outside the stores
    std::uint64_t kept = 0; // items carried over into the mbox
  };
  std::vector<Conversion> conversions;
  bool index_updated = false;
  /** Blocks of logs edited in place that the index built again (the rest of those logs was not
      read: IndexOptions::edited_in_place); a log it could not do so for was read whole. */
  std::uint64_t log_blocks_rebuilt = 0;
  double stores_seconds = 0; // changing the stores (the journalled file steps)
  double index_seconds = 0;  // re-indexing the affected sources and compacting index + catalog
  [[nodiscard]] std::uint64_t count(std::string_view result) const;
};

/**
 * `erase`: carries out an approved manifest. Refuses (ErrorCode::data) an altered manifest or
 * one with too few approvals. Each file's step is journalled before and after it runs, so a
 * killed run resumes to the same end state. Items whose bytes changed since planning are
 * skipped and reported ("stale"). Afterwards the affected sources are re-indexed and the index
 * and catalog compacted so that no freed page keeps the subject's terms.
 */
[[nodiscard]] core::Result<EraseReport> erase(const core::Config &config, const Manifest &manifest,
                                              const EraseOptions &options);

// --------------------------------------------------------------------------------------------

struct Remaining {
  std::string where; // "index" or "file"
  connectors::Locator locator;
  std::string detail;
};

struct VerifyReport {
  std::vector<std::string> manifests; // hashes of the erased manifests for this subject
  std::vector<Remaining> remaining;   // empty = nothing of the subject remains
  /** Items and files not searched completely (indexed in part, unreadable at the last index)
      that no hold or exemption covers: they may hold the subject, so no certificate. */
  std::vector<Remaining> unsearched;
  std::uint64_t files_rescanned = 0;
  std::uint64_t retained = 0;
  nlohmann::json certificate; // written when nothing remains
  std::string certificate_path;
};

/**
 * `verify`: rescans the files the subject's executed manifests touched (not just the index)
 * and queries the index. When nothing remains (retained and manual items excepted) writes an
 * erasure certificate into the audit log and as a file (`certificate_path` or the state dir).
 */
[[nodiscard]] core::Result<VerifyReport> verify(const core::Config &config,
                                                const query::SubjectProfile &subject,
                                                const std::string &operator_name,
                                                const std::string &certificate_path,
                                                const core::ProgressFn &on_progress = {});

} // namespace maildsar::erasure
