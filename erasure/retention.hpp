// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * Retention enforcement (`maildsar retention [--apply]`): per source that a "retention" rule
 * names, the items older than the rule's maximum age are deleted or anonymised, with the same
 * journalled, stale-checked, atomic discipline as erasure. Holds win. A source without a rule is
 * never looked at (mailboxes and archives are only touched when a rule names them).
 */
#include "connectors/item.hpp"
#include "core/config.hpp"
#include "core/progress.hpp"
#include "core/result.hpp"
#include "erasure/erasure.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::erasure {

/** What retention does with one expired item. */
enum class RetentionAction { erase, anonymize, retain };
[[nodiscard]] std::string_view to_string(RetentionAction action); // "delete" "anonymize" "retain"

/** The decision for one expired item. */
struct RetentionDecision {
  RetentionAction action = RetentionAction::erase;
  std::string reason; // "older than 90d", "hold: litigation 2026-17 (until 2027-06-30)"
};

/**
 * The selection rule, without any file access: nullopt when `source` has no rule, the item has
 * no date, or it is not past its period (expired means date < now - max_age). An active hold on
 * the source (until empty or until >= the UTC date of `now`) turns the action into retain.
 */
[[nodiscard]] std::optional<RetentionDecision> retention_decision(const core::Config &config,
                                                                  const std::string &source,
                                                                  std::optional<std::int64_t> date,
                                                                  std::int64_t now);

/** "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDTHH:MM:SSZ" -> seconds; ErrorCode::usage otherwise. */
[[nodiscard]] core::Result<std::int64_t> parse_retention_now(std::string_view text);

/** One expired item. */
struct RetentionItem {
  connectors::Locator locator;
  std::string sha256;      // of the item's bytes when scanned (checked again before any change)
  std::int64_t date = 0;   // the age it was judged by (seconds since the epoch, UTC)
  RetentionDecision decision;
};

/** Per source: what was found. */
struct RetentionSourceCounts {
  std::string rule;             // "90d anonymize"
  std::uint64_t scanned = 0;    // items looked at
  std::uint64_t kept = 0;       // within the period
  std::uint64_t undated = 0;    // no date: never expired
  std::uint64_t already_anonymized = 0;
  std::map<std::string, std::uint64_t> actions; // delete / anonymize / retain -> n
};

struct RetentionPlan {
  std::int64_t now = 0;
  std::vector<RetentionItem> items; // expired items, in scan order per source
  std::map<std::string, RetentionSourceCounts> sources;
  std::vector<std::string> scan_errors; // "path: position: cause"
  /** SHA-256 over the items (locator keys, hashes, actions): the run id of the journal. */
  [[nodiscard]] std::string hash() const;
};

/**
 * Scans every source that has a retention rule (its files, not the index, so the decision does
 * not depend on index freshness) and lists what is past its period. Read-only.
 *
 * Dates: log transactions by their first line (syslog lines without a year take the year the
 * maillog connector infers); quarantine files by their modification time (when they were
 * quarantined); messages in Maildir/mbox (and messages inside a quarantine mbox) by their Date
 * header, else the file's modification time. An "anonymize" item whose lines hold nothing left
 * to pseudonymise is counted as already anonymised and not listed.
 * Progress: phase "scan SOURCE" per source with a rule, its files read.
 */
[[nodiscard]] core::Result<RetentionPlan> plan_retention(const core::Config &config, std::int64_t now,
                                                        const core::ProgressFn &on_progress = {});

struct RetentionOptions {
  std::string operator_name;
  /** Fault injection (tests): returning true at a step name kills the process (SIGKILL). */
  std::function<bool(std::string_view step)> fault_at;
  /** Progress: phase "files" (one step per file), then the re-index (sources as phases). */
  core::ProgressFn on_progress = {};
};

struct RetentionOutcome {
  const RetentionItem *item = nullptr;
  std::string result; // done | stale | retained | failed
  std::string detail;
};

struct RetentionReport {
  std::string run_id;
  std::vector<RetentionOutcome> outcomes; // one per plan item, in plan order
  /** source -> action ("delete" "anonymize" "retain") -> result -> n */
  std::map<std::string, std::map<std::string, std::map<std::string, std::uint64_t>>> counts;
  bool index_updated = false;
  [[nodiscard]] std::uint64_t count(std::string_view result) const;
};

/**
 * Carries out a plan: per file one journalled step (ErasureDb, manifest key
 * "retention:<plan hash>"), each item's bytes checked first (changed -> "stale", untouched);
 * log transactions deleted (lines removed) or anonymised in place (Redactor::anonymize_all,
 * same length); quarantine files unlinked; mbox messages cut; Maildir files removed. Then the
 * affected sources are re-indexed, index and catalog compacted, and a "retention" audit record
 * written with counts per source and action. Holds a lock (<state>/retention.lock) so two runs
 * never overlap (ErrorCode::index_locked).
 */
[[nodiscard]] core::Result<RetentionReport> apply_retention(const core::Config &config, const RetentionPlan &plan,
                                                            const RetentionOptions &options);

} // namespace maildsar::erasure
