// SPDX-License-Identifier: GPL-3.0-or-later
// `erase`: carries out an approved manifest, one journalled step per file (each store's step:
// execute_stores.cpp; the executor's declaration: executor.hpp).
#include "connectors/connector.hpp"
#include "connectors/item_reader.hpp"
#include "connectors/maildir.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "connectors/store_writer.hpp"
#include "core/audit.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/secret.hpp"
#include "erasure/convert.hpp"
#include "erasure/executor.hpp"
#include "erasure/erasure.hpp"
#include "erasure/message_redaction.hpp"
#include "erasure/policy.hpp"
#include "erasure/redact.hpp"
#include "erasure/signing.hpp"
#include "erasure/state.hpp"
#include "indexer/identity.hpp"
#include "indexer/indexer.hpp"
#include "indexer/suppression.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <set>
#include <sys/stat.h>

namespace maildsar::erasure {

using nlohmann::json;
namespace fs = std::filesystem;

namespace execution {

core::Status Executor::run_file(std::size_t n, const FileStep &original) {
  const std::string key = "file:" + original.path;
  MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> entry, m_db.journal(m_manifest.hash, key));
  FileStep step = original;
  json carried = json::array(); // outcomes of an earlier attempt that stand (not retried)
  std::uint64_t attempt = 1;
  bool resumed = false;
  json started = json::object();
  if (entry && entry->state == "done") {
    // A finished step: replay it, unless some of its items failed. Those are tried again
    // (same approval; a lock that was busy, a file system that was read-only), up to
    // k_max_attempts attempts in all.
    json previous = json::parse(entry->detail, nullptr, false);
    if (!previous.is_array()) {
      return core::fail(core::ErrorCode::data, fmt::format("erase journal entry {} is damaged", key));
    }
    std::set<std::string> failed;
    for (const json &o : previous) {
      if (o.value("id", std::string()) == "+attempt") {
        attempt = o.value("count", std::uint64_t{1});
      } else if (o.value("result", std::string()) == "failed") {
        failed.insert(o.value("id", std::string()));
      }
    }
    if (failed.empty() || attempt >= k_max_attempts) {
      replay(entry->detail, attempt >= k_max_attempts && !failed.empty()
                                ? fmt::format(" (not retried: {} attempts made; plan again)", attempt)
                                : std::string());
      return {};
    }
    ++attempt;
    for (const json &o : previous) {
      const std::string id = o.value("id", std::string());
      if (!failed.contains(id) && id != "+attempt" && id != "+copies" && id != "+conversion") {
        carried.push_back(o);
      }
    }
    std::erase_if(step.items, [&](const ManifestItem *item) { return !failed.contains(item->id); });
    started["retry_ids"] = failed;
    started["carried"] = carried;
  } else if (entry) {
    resumed = true;
    started = json::parse(entry->detail, nullptr, false);
    if (!started.is_object()) {
      return core::fail(core::ErrorCode::data, fmt::format("erase journal entry {} is damaged", key));
    }
    attempt = started.value("attempt", std::uint64_t{1});
    if (started.contains("retry_ids")) {
      // An interrupted retry: the same items again, the earlier outcomes carried over.
      std::set<std::string> ids = started.at("retry_ids").get<std::set<std::string>>();
      std::erase_if(step.items, [&](const ManifestItem *item) { return !ids.contains(item->id); });
      carried = started.value("carried", json::array());
    }
  }
  if (!resumed) {
    if (auto st = core::lstat_file(step.path)) {
      started["inode"] = st->ino;
    }
    started["items"] = step.items.size();
    started["attempt"] = attempt;
    point(fmt::format("file:{}:before-journal", n));
    MAILDSAR_TRY(m_db.set_journal(m_manifest.hash, key, "started", started.dump()));
  }
  m_max_attempt = std::max(m_max_attempt, attempt);
  point(fmt::format("file:{}:started", n));
  const std::string prefix = fmt::format("file:{}:", n);
  connectors::StepHook hook = [this, prefix](std::string_view s) -> core::Status {
    point(prefix + std::string(s));
    return {};
  };

  json outcomes = json::array();
  Outcome outcome{[&](const ManifestItem &item, std::string result, std::string detail, bool transient) {
    json o{{"id", item.id}, {"result", result}, {"detail", detail}};
    if (transient) {
      o["transient"] = true;
    }
    outcomes.push_back(std::move(o));
  }};
  if (auto inside = check_inside_root(m_config, step.source, step.path); !inside) {
    for (const ManifestItem *item : step.items) {
      outcome(*item, inside.error());
    }
  } else {
    switch (step.store) {
    case connectors::StoreKind::maildir:
      if (std::uint64_t copies = step.items.front()->action == Action::redact
                                     ? redact_maildir(step, resumed, hook, outcome)
                                     : erase_maildir(step, resumed, hook, outcome);
          copies > 0) {
        outcomes.push_back({{"id", "+copies"}, {"count", copies}});
      }
      break;
    case connectors::StoreKind::quarantine:
    case connectors::StoreKind::emlfolder:
    case connectors::StoreKind::mbox:
      erase_file_or_ranges(step, resumed, started, hook, outcome);
      break;
    case connectors::StoreKind::maillog:
      redact_log(step, resumed, hook, outcome);
      confirm_redactions(step, outcomes);
      break;
    case connectors::StoreKind::postfix_queue:
    case connectors::StoreKind::exim_spool:
      erase_queued(step, resumed, hook, outcome);
      break;
    case connectors::StoreKind::archive:
      rewrite_archive(step, resumed, started, hook, outcome);
      break;
    case connectors::StoreKind::pst:
      if (step.items.front()->action == Action::convert) {
        MAILDSAR_TRY(convert(step, key, started, hook, outcome, outcomes));
      } else {
        for (const ManifestItem *item : step.items) {
          outcome(*item, "manual", item->instructions);
        }
      }
      break;
    }
  }
  for (json &o : outcomes) {
    // Where a redacted Maildir message lives now (verify reads it there).
    if (auto moved = m_new_paths.find(o.value("id", std::string())); moved != m_new_paths.end()) {
      o["path"] = moved->second;
    }
  }
  if (attempt > 1) {
    for (json &o : outcomes) {
      if (!o.value("id", std::string()).starts_with("+")) {
        o["attempt"] = attempt;
      }
    }
    for (const json &o : carried) {
      outcomes.push_back(o);
    }
    outcomes.push_back({{"id", "+attempt"}, {"count", attempt}});
  }
  point(fmt::format("file:{}:before-done", n));
  MAILDSAR_TRY(m_db.set_journal(m_manifest.hash, key, "done", outcomes.dump()));
  point(fmt::format("file:{}:done", n));
  replay(outcomes.dump(), {}, /*now=*/true);
  return {};
}

/** Reports a step's journalled outcomes; `now`: the step ran in this run (else: replayed). */
void Executor::replay(const std::string &detail, const std::string &failed_note, bool now) {
  json outcomes = json::parse(detail, nullptr, false);
  if (!outcomes.is_array()) {
    return;
  }
  for (const json &o : outcomes) {
    const std::string id = o.value("id", std::string());
    if (id == "+copies") {
      m_report.extra_copies += o.value("count", std::uint64_t{0});
      continue;
    }
    if (id == "+conversion") {
      m_report.conversions.push_back(EraseReport::Conversion{
          o.value("pst", std::string()), o.value("mbox", std::string()), o.value("original", std::string()),
          o.value("kept", std::uint64_t{0})});
      continue;
    }
    for (const ManifestItem &item : m_manifest.items) {
      if (item.id == id) {
        const std::string result = o.value("result", std::string());
        record(m_report, item, result,
               o.value("detail", std::string()) + (result == "failed" ? failed_note : std::string()),
               o.value("transient", false) && failed_note.empty(), o.value("attempt", std::uint64_t{1}), now);
        break;
      }
    }
  }
}

} // namespace execution

namespace {

using execution::Executor;
using execution::FileStep;
using execution::Protected;
using execution::current_path;
using execution::item_key;
using execution::record;


/**
 * The approvals of a slice of an estate manifest that came with the agent's request: only
 * signed ones count, each over the estate manifest's hash and verified against this host's
 * own approver keys; never the planner's; each approver once. An approval made on the DPO host
 * from an OS login (unsigned) cannot be checked here and never counts.
 */
core::Result<std::vector<Approval>> check_carried_approvals(const core::Config &config, const Manifest &manifest,
                                                            const EraseOptions::Carried &carried) {
  const std::string short_hash = carried.signed_hash.substr(0, 16);
  if (config.erasure.approver_keys.empty()) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("estate manifest {}: this host has no erasure.approver_keys, so it cannot check "
                                  "who approved on the DPO host (an OS login there proves nothing here); nothing "
                                  "was changed",
                                  short_hash),
                      "configure the approvers' public keys in this host's config (erasure.approver_keys) and "
                      "approve on the DPO host with --sign-key");
  }
  std::vector<Approval> valid;
  std::vector<std::string> rejected;
  std::set<std::string> counted;
  for (const Approval &a : carried.approvals) {
    if (a.operator_name == manifest.planner || a.operator_name == carried.planner) {
      rejected.push_back(a.operator_name + " (planned it)");
      continue;
    }
    if (counted.contains(a.operator_name)) {
      continue;
    }
    if (a.signature.empty()) {
      rejected.push_back(a.operator_name + " (unsigned: an OS-login approval cannot be verified on this host)");
      continue;
    }
    const auto key = config.erasure.approver_keys.find(a.operator_name);
    if (key == config.erasure.approver_keys.end()) {
      rejected.push_back(a.operator_name + " (no key configured for them on this host)");
      continue;
    }
    auto ok = verify_ed25519(key->second, approval_message(carried.signed_hash, a.operator_name), a.signature);
    if (!ok || !*ok) {
      rejected.push_back(a.operator_name + " (bad signature)");
      continue;
    }
    counted.insert(a.operator_name);
    valid.push_back(a);
  }
  if (valid.size() < config.erasure.approvals_required) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("estate manifest {} has {} of the {} signed approval(s) this host requires{}; "
                                  "nothing was changed",
                                  short_hash, valid.size(), config.erasure.approvals_required,
                                  rejected.empty() ? std::string()
                                                   : fmt::format(" (not counted: {})", fmt::join(rejected, ", "))),
                      "approve on the DPO host with --sign-key (this host checks the signatures against its own "
                      "erasure.approver_keys)");
  }
  return valid;
}

/** Why a manifest may not be carried out, or nothing. */
core::Result<std::vector<Approval>> check_approvals(const core::Config &config, const Manifest &manifest,
                                                    ErasureDb &db, const EraseOptions &options) {
  if (options.carried) {
    return check_carried_approvals(config, manifest, *options.carried);
  }
  MAILDSAR_TRY_ASSIGN(std::vector<Approval> all, db.approvals(manifest.hash));
  std::vector<Approval> valid;
  std::vector<std::string> rejected;
  std::set<std::uint32_t> os_counted;
  for (const Approval &a : all) {
    if (a.operator_name == manifest.planner) {
      continue;
    }
    // Checked again here, not only at `approve`: the OS account that planned never counts, and
    // one OS account counts once whatever names it approved under.
    if (a.os && manifest.planner_os && a.os->uid == manifest.planner_os->uid) {
      rejected.push_back(fmt::format("{} (approved from OS user '{}', who planned it)", a.operator_name, a.os->name));
      continue;
    }
    if (a.os && os_counted.contains(a.os->uid)) {
      rejected.push_back(fmt::format("{} (OS user '{}' already counted)", a.operator_name, a.os->name));
      continue;
    }
    if (!config.erasure.approver_keys.empty()) {
      // Signed approvals only, each checked against that approver's configured public key.
      auto key = config.erasure.approver_keys.find(a.operator_name);
      if (key == config.erasure.approver_keys.end() || a.signature.empty()) {
        rejected.push_back(a.operator_name + " (no configured key or unsigned)");
        continue;
      }
      MAILDSAR_TRY_ASSIGN(bool ok, verify_ed25519(key->second, approval_message(manifest.hash, a.operator_name),
                                                  a.signature));
      if (!ok) {
        rejected.push_back(a.operator_name + " (bad signature)");
        continue;
      }
    }
    if (a.os) {
      os_counted.insert(a.os->uid);
    }
    valid.push_back(a);
  }
  if (valid.size() < config.erasure.approvals_required) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("manifest {} has {} of the {} approvals required{}; nothing was changed",
                                  manifest.hash.substr(0, 16), valid.size(), config.erasure.approvals_required,
                                  rejected.empty() ? std::string()
                                                   : fmt::format(" (not counted: {})", fmt::join(rejected, ", "))),
                      "another operator runs: maildsar approve MANIFEST --operator NAME");
  }
  return valid;
}

} // namespace

std::uint64_t EraseReport::count(std::string_view result) const {
  std::uint64_t n = 0;
  for (const auto &[store, by_result] : counts) {
    if (auto it = by_result.find(std::string(result)); it != by_result.end()) {
      n += it->second;
    }
  }
  return n;
}

core::Result<EraseReport> erase(const core::Config &config, const Manifest &manifest,
                                const EraseOptions &options) {
  if (manifest.hash != manifest.compute_hash()) {
    return core::fail(core::ErrorCode::data, "the manifest was altered after planning; nothing was changed");
  }
  MAILDSAR_TRY(core::ensure_private_dir(config.state_dir));
  // One erase at a time: two runs of the same manifest must not interleave their file steps.
  auto lock = core::FileLock::try_acquire((fs::path(config.state_dir) / "erase.lock").string(),
                                          "another 'maildsar erase' is running; run this one when it ends");
  if (!lock) {
    core::Error e = lock.error();
    e.code = core::ErrorCode::temp_fail;
    return std::unexpected(e);
  }
  MAILDSAR_TRY_ASSIGN(ErasureDb db, ErasureDb::open(config));
  MAILDSAR_TRY_ASSIGN(std::vector<Approval> approvers, check_approvals(config, manifest, db, options));
  EraseReport report;
  report.manifest_hash = manifest.hash;
  report.request = manifest.request;

  if (options.dry_run == DryRun::yes) {
    for (const ManifestItem &item : manifest.items) {
      if (item.action == Action::retain || item.action == Action::manual) {
        record(report, item, item.action == Action::retain ? "retained" : "manual",
               item.action == Action::retain ? item.reason : item.instructions);
        continue;
      }
      if (auto hold = hold_for(config, item.locator.source, today_utc())) {
        record(report, item, "retained", hold->reason);
        continue;
      }
      if (auto inside = check_inside_root(config, item.locator.source, item.locator.path); !inside) {
        record(report, item, "failed", inside.error().message);
        continue;
      }
      if (item.action == Action::convert) {
        auto st = core::lstat_file(item.locator.path);
        const bool same = st && st->dev == item.file.dev && st->ino == item.file.ino && st->size == item.file.size &&
                          st->mtime_ns == item.file.mtime_ns;
        record(report, item, same ? "would-convert" : "stale", same ? item.convert_to : "the PST file changed since planning");
        continue;
      }
      auto bytes = connectors::read_item_bytes(item.locator);
      if (!bytes || core::sha256_hex(*bytes) != item.sha256) {
        record(report, item, "stale", bytes ? "bytes changed since planning" : bytes.error().message);
      } else {
        record(report, item, item.action == Action::erase ? "would-delete" : "would-redact", "");
      }
    }
    return report;
  }

  MAILDSAR_TRY_ASSIGN(std::string key, core::load_or_create_secret(config.state_dir));
  index::Normalizer normalizer(
      index::NormalizeOptions{config.identity.subaddress_separators, config.identity.phone_region});
  MAILDSAR_TRY(index::Normalizer::load_phone_module());
  std::vector<Target> targets;
  for (const KeyedIdentifier &k : manifest.subject) {
    targets.push_back(Target{k.kind, k.hash});
  }
  Redactor redactor(key, targets, normalizer);

  // Holds are checked again now: one added after approval wins. Exemptions come from the
  // manifest's policy and also protect files it does not list (other copies of a message).
  Protected protect;
  MAILDSAR_TRY_ASSIGN(protect.policy, parse_policy(manifest.policy, "of manifest " + manifest.hash.substr(0, 16)));
  protect.today = today_utc();
  std::map<const ManifestItem *, Protection> held_now;
  std::map<std::string, std::string> retained_keys; // item key -> why it is retained
  for (const ManifestItem &item : manifest.items) {
    const std::string path = current_path(item.locator);
    protect.listed.emplace(path, &item);
    if (item.action != Action::retain && item.action != Action::manual) {
      if (auto hold = hold_for(config, item.locator.source, protect.today)) {
        held_now.emplace(&item, *hold);
      }
    }
    if (item.action == Action::retain || item.action == Action::manual || held_now.contains(&item)) {
      protect.retained.insert(path);
      retained_keys.emplace(item_key(item.locator, path),
                            held_now.contains(&item) ? held_now.at(&item).reason : item.reason);
    }
  }
  std::set<std::string> hold_reasons;

  // One step per file, in manifest order of first appearance.
  std::vector<FileStep> steps;
  std::map<std::string, std::size_t> by_path;
  std::set<std::string> sources;
  for (const ManifestItem &item : manifest.items) {
    if (item.action == Action::retain) {
      record(report, item, "retained", item.reason);
      continue;
    }
    if (item.action == Action::manual) {
      record(report, item, "manual", item.instructions);
      continue;
    }
    if (auto held = held_now.find(&item); held != held_now.end()) {
      record(report, item, "retained", held->second.reason);
      hold_reasons.insert(held->second.reason);
      continue;
    }
    if (auto also = retained_keys.find(item_key(item.locator, current_path(item.locator)));
        also != retained_keys.end()) {
      // The same item is listed twice (two sources over one store), once retained: that wins.
      record(report, item, "retained", also->second);
      continue;
    }
    auto [it, fresh] = by_path.emplace(item.locator.path, steps.size());
    if (fresh) {
      steps.push_back(FileStep{item.locator.path, item.locator.store, item.locator.source, {}});
    }
    steps[it->second].items.push_back(&item);
    sources.insert(item.locator.source);
    if (item.action == Action::convert) {
      if (const core::SourceConfig *archive = mbox_source_for(config, item.convert_to)) {
        sources.insert(archive->name); // the new archive must become findable
      }
    }
  }
  std::set<std::string> target_set;
  for (const Target &t : targets) {
    target_set.insert(t.kind + ":" + t.hash);
  }
  SubjectCheck subject_check = [&normalizer, &key, target_set](const connectors::Item &item) {
    return subject_kinds_in(item, normalizer, key, target_set);
  };

  KeyedMasks masks(key, manifest.subject);
  connectors::mime::MimeLibrary mime; // redaction parses and writes messages
  Executor exec(config, manifest, options, db, redactor, masks, normalizer, std::move(subject_check), report,
                protect);
  exec.point("begin");
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t n = 0; n < steps.size(); ++n) {
    core::report_progress(options.on_progress, "files", n, steps.size());
    MAILDSAR_TRY(exec.run_file(n, steps[n]));
  }
  core::report_progress(options.on_progress, "files", steps.size(), steps.size());
  const auto t1 = std::chrono::steady_clock::now();
  // Index work done inside the file steps (shifting an mbox's documents) counts as index time.
  report.stores_seconds = std::chrono::duration<double>(t1 - t0).count() - report.index_seconds;

  // The index forgets: re-index what changed, then compact index and catalog.
  // A run that retried failed steps changed files again: the index and the audit log hear of it
  // under their own journal keys.
  const std::string round = exec.max_attempt() > 1 ? fmt::format(":attempt-{}", exec.max_attempt()) : "";
  MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> forgotten, db.journal(manifest.hash, "index" + round));
  if (!forgotten || forgotten->state != "done") {
    exec.point("index:before");
    MAILDSAR_TRY(db.set_journal(manifest.hash, "index" + round, "started", "{}"));
    index::IndexOptions io;
    io.only_sources.assign(sources.begin(), sources.end());
    io.removal_guard = index::RemovalGuard::off; // the files went by our own hand
    io.edited_in_place = exec.edited_in_place(); // only their edited blocks are built again
    io.on_progress = options.on_progress;
    if (!io.only_sources.empty()) {
      auto indexed = index::run_index(config, io);
      if (!indexed) {
        return std::unexpected(indexed.error().with_context("erase done, but updating the index failed: "));
      }
      for (const index::SourceSummary &s : indexed->sources) {
        report.log_blocks_rebuilt += s.log_blocks_rebuilt;
      }
    }
    exec.point("index:reindexed");
    MAILDSAR_TRY(index::compact_state(config));
    exec.point("index:compacted");
    MAILDSAR_TRY(db.set_journal(manifest.hash, "index" + round, "done", "{}"));
  }
  report.index_updated = true;
  report.index_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();

  // Suppression on restore: the subject's keyed identifiers stay, so that a later index run
  // flags their items when they come back (a restore from backup). Recorded after the index
  // forgot them (that run flags nothing of this request); again on every run of the manifest.
  index::Suppression suppression;
  suppression.request = manifest.request;
  suppression.manifest = manifest.hash;
  suppression.erased = now_iso();
  for (const KeyedIdentifier &k : manifest.subject) {
    suppression.identifiers.push_back(index::SuppressedIdentifier{k.kind, k.hash});
  }
  std::set<std::string> done;
  for (const ItemOutcome &o : report.items) {
    if (o.result == "done") {
      done.insert(o.id);
    }
  }
  for (const ManifestItem &item : manifest.items) {
    if (!done.contains(item.id)) {
      suppression.kept.emplace_back(item.locator.source, item.sha256); // retained, manual, stale, failed
    }
  }
  MAILDSAR_TRY(index::record_suppression(config, suppression));
  exec.point("suppressed");

  MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> audited, db.journal(manifest.hash, "audit" + round));
  if (!audited || audited->state != "done") {
    json approver_names = json::array();
    json approver_os_users = json::array();
    for (const Approval &a : approvers) {
      approver_names.push_back(a.operator_name);
      approver_os_users.push_back(a.os ? json(a.os->name) : json(nullptr));
    }
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    json details{{"manifest_sha256", manifest.hash},
                 {"approvers", approver_names},
                 {"approver_os_users", approver_os_users},
                 {"counts", report.counts},
                 {"extra_copies", report.extra_copies},
                 {"held_at_execution", held_now.size()},
                 {"attempt", exec.max_attempt()},
                 {"retried", report.retried},
                 {"hold_reasons", hold_reasons}};
    if (options.carried) {
      details["estate_sha256"] = options.carried->signed_hash; // a slice, approved on the DPO host
      details["client_operator"] = options.carried->client_operator;
    }
    MAILDSAR_TRY(audit.append("erase", options.operator_name, manifest.request, details));
    MAILDSAR_TRY(db.set_journal(manifest.hash, "audit" + round, "done", "{}"));
    if (!round.empty()) {
      MAILDSAR_TRY(db.set_journal(manifest.hash, "audit", "done", "{}")); // verify looks for it
    }
  }
  exec.point("end");
  return report;
}

} // namespace maildsar::erasure
