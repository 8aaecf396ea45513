// SPDX-License-Identifier: GPL-3.0-or-later
// `erase`: carries out an approved manifest, one journalled step per file.
#include "connectors/item_reader.hpp"
#include "connectors/store_writer.hpp"
#include "core/audit.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/secret.hpp"
#include "erasure/convert.hpp"
#include "erasure/erasure.hpp"
#include "erasure/redact.hpp"
#include "erasure/signing.hpp"
#include "erasure/state.hpp"
#include "indexer/identity.hpp"
#include "indexer/indexer.hpp"

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

namespace {

/** Every item of one file that erase changes, and what came out of it. */
struct FileStep {
  std::string path;
  connectors::StoreKind store = connectors::StoreKind::maildir;
  std::string source;
  std::vector<const ManifestItem *> items;
};

/** Counts one outcome. */
void record(EraseReport &report, const ManifestItem &item, std::string result, std::string detail) {
  ++report.counts[std::string(connectors::to_string(item.locator.store))][result];
  report.items.push_back(ItemOutcome{item.id, item.action, std::move(result), std::move(detail)});
}



/** The Maildir that holds a message file: the directory above cur/ or new/ (and above .Folder). */
std::string maildir_root(const connectors::Locator &loc) {
  fs::path p = fs::path(loc.path).parent_path().parent_path(); // .../Maildir[/.Folder]
  if (!loc.folder.empty() && p.filename() == loc.folder) {
    p = p.parent_path();
  }
  return p.string();
}

class Executor {
public:
  Executor(const core::Config &config, const Manifest &manifest, const EraseOptions &options, ErasureDb &db,
           Redactor &redactor, SubjectCheck subject, EraseReport &report)
      : m_config(config), m_manifest(manifest), m_options(options), m_db(db), m_redactor(redactor),
        m_subject(std::move(subject)), m_report(report) {}

  /** Kills the process at `step` when the fault-injection hook asks for it. */
  void point(const std::string &step) const {
    kill_at(m_options.fault_at, step);
  }

  core::Status run_file(std::size_t n, const FileStep &step) {
    const std::string key = "file:" + step.path;
    MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> entry, m_db.journal(m_manifest.hash, key));
    if (entry && entry->state == "done") {
      replay(entry->detail);
      return {};
    }
    const bool resumed = entry.has_value();
    json started = resumed ? json::parse(entry->detail, nullptr, false) : json::object();
    if (!resumed) {
      if (auto st = core::lstat_file(step.path)) {
        started["inode"] = st->ino;
      }
      started["items"] = step.items.size();
      point(fmt::format("file:{}:before-journal", n));
      MAILDSAR_TRY(m_db.set_journal(m_manifest.hash, key, "started", started.dump()));
    }
    point(fmt::format("file:{}:started", n));
    const std::string prefix = fmt::format("file:{}:", n);
    connectors::StepHook hook = [this, prefix](std::string_view s) -> core::Status {
      point(prefix + std::string(s));
      return {};
    };

    json outcomes = json::array();
    auto outcome = [&](const ManifestItem &item, std::string result, std::string detail) {
      outcomes.push_back({{"id", item.id}, {"result", result}, {"detail", detail}});
    };
    if (auto inside = check_inside_root(m_config, step.source, step.path); !inside) {
      for (const ManifestItem *item : step.items) {
        outcome(*item, "failed", inside.error().message);
      }
    } else {
      switch (step.store) {
      case connectors::StoreKind::maildir:
        if (std::uint64_t copies = erase_maildir(step, resumed, hook, outcome); copies > 0) {
          outcomes.push_back({{"id", "+copies"}, {"count", copies}});
        }
        break;
      case connectors::StoreKind::quarantine:
      case connectors::StoreKind::mbox:
        erase_file_or_ranges(step, resumed, started, hook, outcome);
        break;
      case connectors::StoreKind::maillog:
        redact_log(step, resumed, hook, outcome);
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
    point(fmt::format("file:{}:before-done", n));
    MAILDSAR_TRY(m_db.set_journal(m_manifest.hash, key, "done", outcomes.dump()));
    point(fmt::format("file:{}:done", n));
    replay(outcomes.dump());
    return {};
  }

private:
  using Outcome = std::function<void(const ManifestItem &, std::string, std::string)>;

  void replay(const std::string &detail) {
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
          record(m_report, item, o.value("result", std::string()), o.value("detail", std::string()));
          break;
        }
      }
    }
  }

  /** Returns how many other copies of the message it removed. */
  std::uint64_t erase_maildir(const FileStep &step, bool resumed, const connectors::StepHook &hook,
                              const Outcome &outcome) {
    const ManifestItem &item = *step.items.front();
    auto current = connectors::maildir_current_path(item.locator.path);
    if (!current) {
      // Gone: deleted by our interrupted run, or by the user since planning.
      outcome(item, resumed ? "done" : "stale", resumed ? "" : "message file no longer exists");
      return 0;
    }
    if (auto inside = check_inside_root(m_config, step.source, *current); !inside) {
      outcome(item, "failed", inside.error().message);
      return 0;
    }
    auto removed = connectors::remove_message_file(*current, item.sha256, hook);
    if (!removed) {
      outcome(item, connectors::is_stale(removed.error()) ? "stale" : "failed", removed.error().message);
      return 0;
    }
    outcome(item, "done", "");
    // Other copies of the same message in that Maildir (a copy to .Archive, a duplicate delivery).
    auto copies = connectors::maildir_copies(maildir_root(item.locator), item.sha256, item.file.size);
    std::uint64_t n = 0;
    if (copies) {
      for (const std::string &copy : *copies) {
        if (check_inside_root(m_config, step.source, copy) &&
            connectors::remove_message_file(copy, item.sha256, hook)) {
          ++n;
        }
      }
    }
    return n;
  }

  void erase_file_or_ranges(const FileStep &step, bool resumed, const json &started,
                            const connectors::StepHook &hook, const Outcome &outcome) {
    std::vector<connectors::MboxCut> cuts;
    std::vector<const ManifestItem *> ranged;
    for (const ManifestItem *item : step.items) {
      if (item->locator.store == connectors::StoreKind::quarantine && item->locator.length == 0) {
        // A whole quarantine file.
        if (!fs::exists(fs::symlink_status(item->locator.path))) {
          outcome(*item, resumed ? "done" : "stale", resumed ? "" : "quarantine file no longer exists");
          continue;
        }
        auto removed = connectors::remove_message_file(item->locator.path, item->sha256, hook);
        outcome(*item, removed ? "done" : (connectors::is_stale(removed.error()) ? "stale" : "failed"),
                removed ? "" : removed.error().message);
        continue;
      }
      cuts.push_back(connectors::MboxCut{item->locator.offset, item->locator.length, item->sha256});
      ranged.push_back(item);
    }
    if (cuts.empty()) {
      return;
    }
    // Resuming after the rename: the file is a new inode and the cuts are already gone.
    bool replaced = false;
    if (resumed && started.contains("inode")) {
      auto st = core::lstat_file(step.path);
      replaced = st && st->ino != started.value("inode", std::uint64_t{0});
    }
    auto rewritten = connectors::rewrite_mbox(step.path, cuts, hook);
    if (!rewritten) {
      for (const ManifestItem *item : ranged) {
        outcome(*item, "failed", rewritten.error().message);
      }
      return;
    }
    if (rewritten->rewritten && step.store == connectors::StoreKind::mbox && started.contains("inode")) {
      // Shift the index instead of re-reading the whole mbox; if the catalog cannot vouch for
      // the old file, the re-index after the file steps reads it again.
      std::vector<index::RemovedRange> removed;
      for (std::size_t i = 0; i < cuts.size() && i < rewritten->removed.size(); ++i) {
        if (rewritten->removed[i]) {
          removed.push_back(index::RemovedRange{cuts[i].offset, cuts[i].length});
        }
      }
      const auto t0 = std::chrono::steady_clock::now();
      auto shifted = index::apply_mbox_cuts(m_config, step.source, step.path,
                                            started.value("inode", std::uint64_t{0}), removed);
      m_report.index_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!shifted) {
        MAILDSAR_LOG_WARN("erase: updating the index for {} in place failed ({}); it is re-read instead",
                          step.path, shifted.error().message);
      }
    }
    for (std::size_t i = 0; i < ranged.size(); ++i) {
      const bool removed = i < rewritten->removed.size() && rewritten->removed[i];
      if (removed || replaced) {
        outcome(*ranged[i], "done", "");
      } else {
        outcome(*ranged[i], "stale", "bytes changed since planning; not touched");
      }
    }
  }

  /** `--pst convert`: the PST becomes an mbox archive without the subject's items. */
  core::Status convert(const FileStep &step, const std::string &key, json &started, const connectors::StepHook &hook,
                       const Outcome &outcome, json &outcomes) {
    const ManifestItem &first = *step.items.front();
    PstConversionJob job;
    job.pst_path = step.path;
    job.pst_source = step.source;
    job.planned = first.file;
    job.mbox_path = first.convert_to;
    job.mbox_source = mbox_source_for(m_config, first.convert_to);
    job.original_to = original_destination(m_config, step.path, m_manifest.hash);
    for (const ManifestItem *item : step.items) {
      job.leave_out.insert(item->locator.node_id);
      if (item->convert_to != job.mbox_path || item->file.ino != job.planned.ino) {
        for (const ManifestItem *i : step.items) {
          outcome(*i, "failed", "the manifest names two archives or two file versions for one PST");
        }
        return {};
      }
    }
    if (m_config.erasure.pst_originals_dir.empty()) {
      for (const ManifestItem *item : step.items) {
        outcome(*item, "failed", "erasure.pst_convert.originals_dir is not configured; nothing was changed");
      }
      return {};
    }
    if (auto inside = check_inside_root(m_config, job.mbox_source != nullptr ? job.mbox_source->name : "",
                                        job.mbox_path);
        !inside) {
      for (const ManifestItem *item : step.items) {
        outcome(*item, "failed", inside.error().message);
      }
      return {};
    }
    auto save = [&](const json &detail) { return m_db.set_journal(m_manifest.hash, key, "started", detail.dump()); };
    MAILDSAR_TRY_ASSIGN(PstConversionOutcome result, convert_pst(job, m_subject, started, save, hook));
    for (const ManifestItem *item : step.items) {
      outcome(*item, result.result,
              result.result == "done" ? fmt::format("converted into {}; original moved to {}", job.mbox_path,
                                                    job.original_to)
                                      : result.detail);
    }
    if (result.result == "done") {
      outcomes.push_back({{"id", "+conversion"},
                          {"pst", job.pst_path},
                          {"mbox", job.mbox_path},
                          {"original", job.original_to},
                          {"kept", result.kept}});
    }
    return {};
  }

  void redact_log(const FileStep &step, bool resumed, const connectors::StepHook &hook, const Outcome &outcome) {
    std::vector<connectors::LineEdit> edits;
    std::map<std::uint64_t, std::string> originals;
    std::vector<const ManifestItem *> changing;
    for (const ManifestItem *item : step.items) {
      auto bytes = connectors::read_item_bytes(item->locator);
      if (!bytes) {
        outcome(*item, "failed", bytes.error().message);
        continue;
      }
      if (core::sha256_hex(*bytes) != item->sha256 && !resumed) {
        outcome(*item, "stale", "log lines changed since planning; not touched");
        continue;
      }
      std::size_t begin = 0;
      std::size_t replaced = 0;
      for (std::size_t i = 0; i < item->locator.lines.size(); ++i) {
        std::size_t end = bytes->find('\n', begin);
        if (end == std::string::npos) {
          end = bytes->size();
        }
        std::string_view line(bytes->data() + begin, end - begin);
        Redactor::Redacted r = m_redactor.redact(line);
        if (r.replaced > 0 && originals.emplace(item->locator.lines[i], std::string(line)).second) {
          edits.push_back(connectors::LineEdit{item->locator.lines[i], std::move(r.line), core::sha256_hex(line)});
          replaced += r.replaced;
        }
        begin = end + 1;
      }
      if (replaced == 0) {
        // Nothing of the subject left in the lines: redacted by an interrupted run, or the
        // match was a name in the index only.
        outcome(*item, "done", resumed ? "" : "no identifier of the subject in the lines");
      } else {
        changing.push_back(item);
      }
    }
    if (edits.empty()) {
      return;
    }
    std::ranges::sort(edits, {}, &connectors::LineEdit::line);
    std::string joined;
    for (const auto &[line, text] : originals) {
      joined += (joined.empty() ? "" : "\n") + text;
    }
    // A resumed run may find some lines already pseudonymised: then each line's own hash guards it.
    auto rewritten = connectors::rewrite_log_lines(step.path, edits, resumed ? std::string() : core::sha256_hex(joined), hook);
    for (const ManifestItem *item : changing) {
      if (rewritten) {
        outcome(*item, "done", "");
      } else {
        outcome(*item, "failed", rewritten.error().message);
      }
    }
  }

  const core::Config &m_config;
  const Manifest &m_manifest;
  const EraseOptions &m_options;
  ErasureDb &m_db;
  Redactor &m_redactor;
  SubjectCheck m_subject;
  EraseReport &m_report;
};

/** Why a manifest may not be carried out, or nothing. */
core::Result<std::vector<Approval>> check_approvals(const core::Config &config, const Manifest &manifest,
                                                    ErasureDb &db) {
  MAILDSAR_TRY_ASSIGN(std::vector<Approval> all, db.approvals(manifest.hash));
  std::vector<Approval> valid;
  std::vector<std::string> rejected;
  for (const Approval &a : all) {
    if (a.operator_name == manifest.planner) {
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
  MAILDSAR_TRY_ASSIGN(std::vector<Approval> approvers, check_approvals(config, manifest, db));
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

  Executor exec(config, manifest, options, db, redactor, std::move(subject_check), report);
  exec.point("begin");
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t n = 0; n < steps.size(); ++n) {
    MAILDSAR_TRY(exec.run_file(n, steps[n]));
  }
  const auto t1 = std::chrono::steady_clock::now();
  // Index work done inside the file steps (shifting an mbox's documents) counts as index time.
  report.stores_seconds = std::chrono::duration<double>(t1 - t0).count() - report.index_seconds;

  // The index forgets: re-index what changed, then compact index and catalog.
  MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> forgotten, db.journal(manifest.hash, "index"));
  if (!forgotten || forgotten->state != "done") {
    exec.point("index:before");
    MAILDSAR_TRY(db.set_journal(manifest.hash, "index", "started", "{}"));
    index::IndexOptions io;
    io.only_sources.assign(sources.begin(), sources.end());
    io.removal_guard = index::RemovalGuard::off; // the files went by our own hand
    if (!io.only_sources.empty()) {
      auto indexed = index::run_index(config, io);
      if (!indexed) {
        return std::unexpected(indexed.error().with_context("erase done, but updating the index failed: "));
      }
    }
    exec.point("index:reindexed");
    MAILDSAR_TRY(index::compact_state(config));
    exec.point("index:compacted");
    MAILDSAR_TRY(db.set_journal(manifest.hash, "index", "done", "{}"));
  }
  report.index_updated = true;
  report.index_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();

  MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> audited, db.journal(manifest.hash, "audit"));
  if (!audited || audited->state != "done") {
    json approver_names = json::array();
    for (const Approval &a : approvers) {
      approver_names.push_back(a.operator_name);
    }
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    MAILDSAR_TRY(audit.append("erase", options.operator_name, manifest.request,
                              json{{"manifest_sha256", manifest.hash},
                                   {"approvers", approver_names},
                                   {"counts", report.counts},
                                   {"extra_copies", report.extra_copies}}));
    MAILDSAR_TRY(db.set_journal(manifest.hash, "audit", "done", "{}"));
  }
  exec.point("end");
  return report;
}

} // namespace maildsar::erasure
