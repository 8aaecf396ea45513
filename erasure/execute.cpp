// SPDX-License-Identifier: GPL-3.0-or-later
// `erase`: carries out an approved manifest, one journalled step per file.
#include "connectors/connector.hpp"
#include "connectors/item_reader.hpp"
#include "connectors/maildir.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "connectors/mbox.hpp"
#include "connectors/archive.hpp"
#include "connectors/mta_queue.hpp"
#include "connectors/store_writer.hpp"
#include "core/audit.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/secret.hpp"
#include "erasure/convert.hpp"
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

namespace {

/** Every item of one file that erase changes, and what came out of it. */
struct FileStep {
  std::string path;
  connectors::StoreKind store = connectors::StoreKind::maildir;
  std::string source;
  std::vector<const ManifestItem *> items;
};

/** How many times erase carries out one file step in all when items of it fail. */
constexpr std::uint64_t k_max_attempts = 5;

/** Counts one outcome. */
void record(EraseReport &report, const ManifestItem &item, std::string result, std::string detail,
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
std::string current_path(const connectors::Locator &loc) {
  if (loc.store == connectors::StoreKind::maildir) {
    if (auto current = connectors::maildir_current_path(loc.path)) {
      return *current;
    }
  }
  return loc.path;
}

/** What distinguishes an item within its file: the file itself, an mbox range, log lines, a node. */
std::string item_key(const connectors::Locator &loc, const std::string &path) {
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

  core::Status run_file(std::size_t n, const FileStep &original) {
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

  /** The highest attempt of a file step in this run (> 1: failed steps were retried). */
  [[nodiscard]] std::uint64_t max_attempt() const { return m_max_attempt; }
  /** Logs this run edited in place, and where (IndexOptions::edited_in_place). */
  [[nodiscard]] const std::map<std::string, std::vector<std::uint64_t>> &edited_in_place() const {
    return m_edited_in_place;
  }

private:

  /** Reports a step's journalled outcomes; `now`: the step ran in this run (else: replayed). */
  void replay(const std::string &detail, const std::string &failed_note = {}, bool now = false) {
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
      outcome(item, inside.error());
      return 0;
    }
    if (m_protected.retained.contains(*current)) {
      // The same file is listed again as retained (two sources over one Maildir): the hold wins.
      outcome(item, "retained", "the same file is also listed as retained; it is kept");
      return 0;
    }
    auto removed = connectors::remove_message_file(*current, item.sha256, hook);
    if (!removed) {
      outcome(item, removed.error());
      return 0;
    }
    outcome(item, "done", "");
    // Other copies of the same message in that Maildir (a copy to .Archive, a duplicate delivery)
    // that the manifest does not list: never one that a hold or an exemption covers, and never a
    // listed item (a retained one stays; an erased one is its own step's business).
    auto copies = connectors::maildir_copies(connectors::maildir_root(item.locator), item.sha256, item.file.size);
    std::uint64_t n = 0;
    if (copies) {
      for (const std::string &copy : *copies) {
        if (copy == *current || m_protected.listed.contains(copy)) {
          continue;
        }
        if (auto p = protection_for(m_config, m_protected.policy, step.source, "", copy, m_protected.today)) {
          MAILDSAR_LOG_INFO("erase: copy {} kept ({})", copy, p->reason);
          continue;
        }
        if (check_inside_root(m_config, step.source, copy) &&
            connectors::remove_message_file(copy, item.sha256, hook)) {
          ++n;
        }
      }
    }
    return n;
  }

  /**
   * A Maildir message kept with the subject masked (action redact): written under a new name
   * with the same flags, the old file removed (connectors::replace_maildir_message, which makes
   * a resumed run finish what a crash interrupted: the new name is a function of the manifest
   * and the old name). Other copies of the same message in that Maildir that the manifest does
   * not list (a copy filed since the index, a duplicate delivery) get the same redacted
   * contents, unless a hold or exemption covers them. Returns how many copies it rewrote.
   */
  std::uint64_t redact_maildir(const FileStep &step, bool resumed, const connectors::StepHook &hook,
                               const Outcome &outcome) {
    const ManifestItem &item = *step.items.front();
    auto current = connectors::maildir_current_path(item.locator.path);
    std::string stored;
    if (current) {
      if (auto inside = check_inside_root(m_config, step.source, *current); !inside) {
        outcome(item, inside.error());
        return 0;
      }
      if (m_protected.retained.contains(*current)) {
        outcome(item, "retained", "the same file is also listed as retained; it is kept");
        return 0;
      }
      connectors::Locator now = item.locator;
      now.path = *current;
      auto bytes = connectors::read_item_bytes(now);
      if (!bytes) {
        outcome(item, bytes.error());
        return 0;
      }
      stored = std::move(*bytes);
    }
    if (!current) {
      // Gone: a run interrupted after the new file was linked finished here (the primitive finds
      // the new name); else the message went since planning.
      auto done = resumed ? connectors::replace_maildir_message(
                                item.locator.path, item.sha256, "",
                                redacted_maildir_unique(item.locator.path, m_manifest.hash), hook)
                          : core::Result<std::string>(std::unexpected(current.error()));
      if (done) {
        m_new_paths[item.id] = *done;
        outcome(item, "done", "");
      } else {
        outcome(item, "stale", "message file no longer exists");
      }
      return 0;
    }
    if (core::sha256_hex(stored) != item.sha256) {
      outcome(item, "stale", "bytes changed since planning; not touched");
      return 0;
    }
    auto redacted = redact_stored_item(item.locator, stored, m_masks, m_normalizer);
    if (!redacted) {
      outcome(item, "failed", "not redacted: " + redacted.error().message);
      return 0;
    }
    auto written = connectors::replace_maildir_message(
        *current, item.sha256, redacted->stored,
        redacted_maildir_unique(item.locator.path, m_manifest.hash), hook);
    if (!written) {
      outcome(item, written.error());
      return 0;
    }
    m_new_paths[item.id] = *written;
    outcome(item, "done", "");
    auto copies = connectors::maildir_copies(connectors::maildir_root(item.locator), item.sha256, item.file.size);
    std::uint64_t n = 0;
    for (const std::string &copy : copies ? *copies : std::vector<std::string>{}) {
      if (copy == *current || m_protected.listed.contains(copy)) {
        continue;
      }
      if (auto p = protection_for(m_config, m_protected.policy, step.source, "", copy, m_protected.today)) {
        MAILDSAR_LOG_INFO("erase: copy {} kept ({})", copy, p->reason);
        continue;
      }
      if (check_inside_root(m_config, step.source, copy) &&
          connectors::replace_maildir_message(copy, item.sha256, redacted->stored,
                                              redacted_maildir_unique(copy, m_manifest.hash), hook)) {
        ++n;
      }
    }
    return n;
  }

  /**
   * A queued message of a source that allows it (`allow_remove`): the MTA's own command removes
   * it (connectors::remove_queued_message checks the bytes first and the file's absence after).
   * Gone on a resumed step: done (the interrupted run removed it); gone otherwise: stale (the MTA
   * delivered or expired it since planning, which the re-index records).
   */
  void erase_queued(const FileStep &step, bool resumed, const connectors::StepHook &hook, const Outcome &outcome) {
    const core::SourceConfig *source = nullptr;
    for (const core::SourceConfig &s : m_config.sources) {
      if (s.name == step.source) {
        source = &s;
      }
    }
    for (const ManifestItem *item : step.items) {
      if (source == nullptr || !source->allow_remove) {
        outcome(*item, "failed",
                fmt::format("source '{}' no longer allows maildsar to remove queued messages (allow_remove); run `{}` "
                            "by hand",
                            step.source,
                            connectors::command_line(connectors::queue_removal_command(
                                item->locator, source != nullptr ? source->command : std::string()))));
        continue;
      }
      auto removed = connectors::remove_queued_message(item->locator, item->sha256, source->command, hook);
      if (removed) {
        outcome(*item, "done", "");
      } else if (removed.error().code == core::ErrorCode::no_input) {
        outcome(*item, resumed ? "done" : "stale",
                resumed ? "" : "the message is no longer in the queue (delivered, expired or removed since planning)");
      } else {
        outcome(*item, removed.error());
      }
    }
  }

  void erase_file_or_ranges(const FileStep &step, bool resumed, const json &started,
                            const connectors::StepHook &hook, const Outcome &outcome) {
    std::vector<connectors::MboxCut> cuts;
    std::vector<const ManifestItem *> ranged;
    for (const ManifestItem *item : step.items) {
      if (connectors::is_message_file(item->locator)) {
        // A whole message file (quarantine, folder of loose messages).
        if (item->action == Action::redact) {
          redact_message_file(*item, resumed, started, hook, outcome);
          continue;
        }
        if (!fs::exists(fs::symlink_status(item->locator.path))) {
          outcome(*item, resumed ? "done" : "stale", resumed ? "" : "message file no longer exists");
          continue;
        }
        if (auto removed = connectors::remove_message_file(item->locator.path, item->sha256, hook); removed) {
          outcome(*item, "done", "");
        } else {
          outcome(*item, removed.error());
        }
        continue;
      }
      connectors::MboxCut cut{item->locator.offset, item->locator.length, item->sha256};
      if (item->action == Action::redact) {
        // Redacted in its place within the same crash-safe rewrite; a message whose bytes
        // changed is left to rewrite_mbox, which reports it stale.
        auto stored = connectors::read_item_bytes(item->locator);
        if (stored && core::sha256_hex(*stored) == item->sha256) {
          auto redacted = redact_stored_item(item->locator, *stored, m_masks, m_normalizer);
          if (!redacted) {
            outcome(*item, "failed", "not redacted: " + redacted.error().message);
            continue;
          }
          cut.replacement = std::move(redacted->stored);
        }
      }
      cuts.push_back(std::move(cut));
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
    if (step.store == connectors::StoreKind::mbox && !replaced) {
      keep_whole_messages(step, cuts, ranged, outcome);
      if (cuts.empty()) {
        return;
      }
    }
    connectors::MboxLockOptions locks;
    locks.dotlock_wait = m_options.lock_wait;
    locks.lock_wait = m_options.lock_wait;
    auto rewritten = connectors::rewrite_mbox(step.path, cuts, hook, locks);
    if (!rewritten) {
      for (const ManifestItem *item : ranged) {
        outcome(*item, rewritten.error());
      }
      return;
    }
    const bool replaced_any = std::ranges::any_of(cuts, [](const connectors::MboxCut &c) { return c.replacement.has_value(); });
    if (rewritten->rewritten && step.store == connectors::StoreKind::mbox && started.contains("inode") &&
        !replaced_any) {
      // (Messages replaced by their redaction change the offsets of what follows by other
      // amounts: the re-index after the file steps reads such an mbox again.)
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

  /**
   * A quarantine file or loose message file kept with the subject masked: the same name with the
   * redacted contents (temp + fsync + rename; gzip again when it was). Resuming after the rename:
   * the file is a new inode and holds the redaction already.
   */
  void redact_message_file(const ManifestItem &item, bool resumed, const json &started,
                           const connectors::StepHook &hook, const Outcome &outcome) {
    auto st = core::lstat_file(item.locator.path);
    if (!st) {
      outcome(item, "stale", "message file no longer exists");
      return;
    }
    if (resumed && started.contains("inode") && st->ino != started.value("inode", std::uint64_t{0})) {
      outcome(item, "done", "");
      return;
    }
    auto stored = connectors::read_item_bytes(item.locator);
    if (!stored) {
      outcome(item, stored.error());
      return;
    }
    if (core::sha256_hex(*stored) != item.sha256) {
      outcome(item, "stale", "bytes changed since planning; not touched");
      return;
    }
    auto redacted = redact_stored_item(item.locator, *stored, m_masks, m_normalizer);
    if (!redacted) {
      outcome(item, "failed", "not redacted: " + redacted.error().message);
      return;
    }
    if (auto written = connectors::replace_message_file(item.locator.path, item.sha256, redacted->stored, hook);
        !written) {
      outcome(item, written.error());
      return;
    }
    outcome(item, "done", "");
  }

  /**
   * Items of a backup archive: manual ones are recorded as such (the archive is never changed
   * in place); with the source's "rewrite", the archive is rewritten without the erase items
   * (connectors::rewrite_archive: same format and filter, temp file + fsync + rename). Resuming
   * after the rename: the archive is a new inode and the items are already gone.
   */
  void rewrite_archive(const FileStep &step, bool resumed, const json &started, const connectors::StepHook &hook,
                       const Outcome &outcome) {
    std::vector<connectors::ArchiveCut> cuts;
    std::vector<const ManifestItem *> cut_items;
    for (const ManifestItem *item : step.items) {
      if (item->action != Action::erase) {
        outcome(*item, "manual", item->instructions);
        continue;
      }
      cuts.push_back(connectors::ArchiveCut{item->locator.member, item->locator.offset, item->locator.length,
                                            item->sha256});
      cut_items.push_back(item);
    }
    if (cuts.empty()) {
      return;
    }
    if (resumed && started.contains("inode")) {
      auto st = core::lstat_file(step.path);
      if (st && st->ino != started.value("inode", std::uint64_t{0})) {
        for (const ManifestItem *item : cut_items) {
          outcome(*item, "done", "");
        }
        return;
      }
    }
    auto rewritten = connectors::rewrite_archive(step.path, cuts, hook);
    if (!rewritten) {
      for (const ManifestItem *item : cut_items) {
        outcome(*item, rewritten.error());
      }
      return;
    }
    for (std::size_t i = 0; i < cut_items.size(); ++i) {
      if (i < rewritten->removed.size() && rewritten->removed[i]) {
        outcome(*cut_items[i], "done", "");
      } else {
        outcome(*cut_items[i], "stale", "bytes changed since planning, or the member is gone; not touched");
      }
    }
  }

  /**
   * An mbox cut must be exactly one message as the file splits now (the source's dialect): an
   * index made by an older splitter that trusted a sender's Content-Length may hold a range that
   * spans the next person's message too. Such cuts fail and are dropped, nothing is changed.
   */
  void keep_whole_messages(const FileStep &step, std::vector<connectors::MboxCut> &cuts,
                           std::vector<const ManifestItem *> &ranged, const Outcome &outcome) {
    connectors::MboxDialect dialect = connectors::MboxDialect::separators;
    for (const core::SourceConfig &s : m_config.sources) {
      if (s.name == step.source) {
        dialect = connectors::mbox_dialect_of(s.format).value_or(connectors::MboxDialect::separators);
      }
    }
    std::set<std::pair<std::uint64_t, std::uint64_t>> messages;
    std::uint64_t size = 0;
    auto split = [&]() -> core::Status {
      MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(step.path));
      MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd.get(), step.path));
      size = st.size;
      return connectors::split_mbox(
          fd.get(), step.path, 0, st.size,
          [&](const connectors::MboxMessage &m) { messages.emplace(m.offset, m.length); },
          [](connectors::ScanError &&) {}, dialect);
    };
    if (auto st = split(); !st) {
      if (st.error().code == core::ErrorCode::no_input) {
        return; // gone: rewrite_mbox reports it per cut
      }
      for (const ManifestItem *item : ranged) {
        outcome(*item, st.error());
      }
      cuts.clear();
      ranged.clear();
      return;
    }
    std::vector<connectors::MboxCut> kept_cuts;
    std::vector<const ManifestItem *> kept_items;
    for (std::size_t i = 0; i < cuts.size(); ++i) {
      bool keep = messages.contains({cuts[i].offset, cuts[i].length}) || cuts[i].offset + cuts[i].length > size;
      if (!keep) {
        // Not one message now: if its bytes changed anyway, rewrite_mbox reports it stale and
        // leaves it; only a range that still holds exactly the planned bytes is dangerous.
        auto bytes = connectors::read_item_bytes(ranged[i]->locator);
        keep = bytes && core::sha256_hex(*bytes) != cuts[i].sha256;
      }
      if (keep) {
        // one whole message, or stale (beyond the end, other bytes): rewrite_mbox leaves it
        kept_cuts.push_back(cuts[i]);
        kept_items.push_back(ranged[i]);
      } else {
        outcome(*ranged[i], "failed",
                fmt::format("the planned range (offset {}, {} bytes) is not exactly one message of {} as it is "
                            "split now; nothing was changed: re-index (maildsar index --full) and plan again",
                            cuts[i].offset, cuts[i].length, step.path));
      }
    }
    cuts = std::move(kept_cuts);
    ranged = std::move(kept_items);
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
        outcome(*item, inside.error());
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
        outcome(*item, bytes.error());
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
    if (rewritten && rewritten->rewritten_in_place) {
      std::vector<std::uint64_t> &at = m_edited_in_place[step.path];
      at.insert(at.end(), rewritten->edited_offsets.begin(), rewritten->edited_offsets.end());
    }
    for (const ManifestItem *item : changing) {
      if (rewritten) {
        outcome(*item, "done", "");
      } else {
        outcome(*item, rewritten.error());
      }
    }
  }

  /**
   * "done" for a redaction is only true when the file, read again by its connector and searched
   * as the index searches, shows nothing of the subject in the item's lines (the redactor and
   * the indexer could disagree about a token; a wrong key would make the redactor blind).
   * Turns each such "done" into "failed", naming what remains.
   */
  void confirm_redactions(const FileStep &step, json &outcomes) {
    std::set<std::string> done_ids;
    for (const json &o : outcomes) {
      if (o.value("result", std::string()) == "done") {
        done_ids.insert(o.value("id", std::string()));
      }
    }
    if (done_ids.empty()) {
      return;
    }
    auto remaining = rescan_log(step);
    for (json &o : outcomes) {
      const std::string id = o.value("id", std::string());
      if (!done_ids.contains(id)) {
        continue;
      }
      if (!remaining) {
        o["result"] = "failed";
        o["detail"] = "redacted, but the file cannot be read again to confirm it: " + remaining.error().message;
        continue;
      }
      if (auto it = remaining->find(id); it != remaining->end() && !it->second.empty()) {
        o["result"] = "failed";
        o["detail"] = fmt::format("the subject's {} still in the lines after redaction; the file keeps them",
                                  fmt::join(it->second, ", "));
      }
    }
  }

  /** Per item of the step: the kinds of the subject's identifiers its lines still show. */
  core::Result<std::map<std::string, std::set<std::string>>> rescan_log(const FileStep &step) {
    const core::SourceConfig *src = nullptr;
    for (const core::SourceConfig &s : m_config.sources) {
      if (s.name == step.source) {
        src = &s;
      }
    }
    if (src == nullptr) {
      return core::fail(core::ErrorCode::config, fmt::format("source '{}' is no longer configured", step.source));
    }
    MAILDSAR_TRY_ASSIGN(std::unique_ptr<connectors::Connector> connector, connectors::make_connector(*src));
    MAILDSAR_TRY_ASSIGN(core::FileStat st, core::lstat_file(step.path));
    connectors::ItemCollector found;
    MAILDSAR_TRY(connector->scan(connectors::FileEntry{step.path, "", "", st}, 0, found));
    std::map<std::string, std::set<std::string>> out;
    for (const ManifestItem *item : step.items) {
      std::set<std::uint64_t> lines(item->locator.lines.begin(), item->locator.lines.end());
      for (const connectors::Item &scanned : found.items) {
        if (std::ranges::any_of(scanned.locator.lines, [&](std::uint64_t l) { return lines.contains(l); })) {
          std::set<std::string> kinds = m_subject(scanned);
          out[item->id].insert(kinds.begin(), kinds.end());
        }
      }
    }
    return out;
  }

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

/** Why a manifest may not be carried out, or nothing. */
core::Result<std::vector<Approval>> check_approvals(const core::Config &config, const Manifest &manifest,
                                                    ErasureDb &db) {
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
    MAILDSAR_TRY(exec.run_file(n, steps[n]));
  }
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
    MAILDSAR_TRY(audit.append("erase", options.operator_name, manifest.request,
                              json{{"manifest_sha256", manifest.hash},
                                   {"approvers", approver_names},
                                   {"approver_os_users", approver_os_users},
                                   {"counts", report.counts},
                                   {"extra_copies", report.extra_copies},
                                   {"held_at_execution", held_now.size()},
                                   {"attempt", exec.max_attempt()},
                                   {"retried", report.retried},
                                   {"hold_reasons", hold_reasons}}));
    MAILDSAR_TRY(db.set_journal(manifest.hash, "audit" + round, "done", "{}"));
    if (!round.empty()) {
      MAILDSAR_TRY(db.set_journal(manifest.hash, "audit", "done", "{}")); // verify looks for it
    }
  }
  exec.point("end");
  return report;
}

} // namespace maildsar::erasure
