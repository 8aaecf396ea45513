// SPDX-License-Identifier: GPL-3.0-or-later
// `erase`: the file step of each store (erasure/executor.hpp): Maildir messages deleted or
// rewritten with the subject masked, mbox messages and message files, queued messages through
// the MTA's own command, backup archives, PST conversion, delivery-log lines.
#include "erasure/executor.hpp"

#include "connectors/archive.hpp"
#include "connectors/connector.hpp"
#include "connectors/item_reader.hpp"
#include "connectors/maildir.hpp"
#include "connectors/mbox.hpp"
#include "connectors/mta_queue.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "erasure/convert.hpp"
#include "indexer/indexer.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>

namespace maildsar::erasure::execution {

namespace fs = std::filesystem;

bool Executor::may_change(const FileStep &step, const ManifestItem &item, const std::string &current,
                          const Outcome &outcome) const {
  if (auto inside = check_inside_root(m_config, step.source, current); !inside) {
    outcome(item, inside.error());
    return false;
  }
  if (m_protected.retained.contains(current)) {
    // The same file is listed again as retained (two sources over one Maildir): the hold wins.
    outcome(item, "retained", "the same file is also listed as retained; it is kept");
    return false;
  }
  return true;
}

std::vector<std::string> Executor::unlisted_copies(const FileStep &step, const ManifestItem &item,
                                                   const std::string &current) const {
  std::vector<std::string> out;
  auto copies = connectors::maildir_copies(connectors::maildir_root(item.locator), item.sha256, item.file.size);
  for (const std::string &copy : copies ? *copies : std::vector<std::string>{}) {
    if (copy == current || m_protected.listed.contains(copy)) {
      continue;
    }
    if (auto p = protection_for(m_config, m_protected.policy, step.source, "", copy, m_protected.today)) {
      MAILDSAR_LOG_INFO("erase: copy {} kept ({})", copy, p->reason);
      continue;
    }
    if (check_inside_root(m_config, step.source, copy)) {
      out.push_back(copy);
    }
  }
  return out;
}

/** Returns how many other copies of the message it removed. */
std::uint64_t Executor::erase_maildir(const FileStep &step, bool resumed, const connectors::StepHook &hook,
                            const Outcome &outcome) {
  const ManifestItem &item = *step.items.front();
  auto current = connectors::maildir_current_path(item.locator.path);
  if (!current) {
    // Gone: deleted by our interrupted run, or by the user since planning.
    outcome(item, resumed ? "done" : "stale", resumed ? "" : "message file no longer exists");
    return 0;
  }
  if (!may_change(step, item, *current, outcome)) {
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
  std::uint64_t n = 0;
  for (const std::string &copy : unlisted_copies(step, item, *current)) {
    n += connectors::remove_message_file(copy, item.sha256, hook) ? 1U : 0U;
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
std::uint64_t Executor::redact_maildir(const FileStep &step, bool resumed, const connectors::StepHook &hook,
                             const Outcome &outcome) {
  const ManifestItem &item = *step.items.front();
  auto current = connectors::maildir_current_path(item.locator.path);
  std::string stored;
  if (current) {
    if (!may_change(step, item, *current, outcome)) {
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
  std::uint64_t n = 0;
  for (const std::string &copy : unlisted_copies(step, item, *current)) {
    n += connectors::replace_maildir_message(copy, item.sha256, redacted->stored,
                                             redacted_maildir_unique(copy, m_manifest.hash), hook)
             ? 1U
             : 0U;
  }
  return n;
}

/**
 * A queued message of a source that allows it (`allow_remove`): the MTA's own command removes
 * it (connectors::remove_queued_message checks the bytes first and the file's absence after).
 * Gone on a resumed step: done (the interrupted run removed it); gone otherwise: stale (the MTA
 * delivered or expired it since planning, which the re-index records).
 */
void Executor::erase_queued(const FileStep &step, bool resumed, const connectors::StepHook &hook, const Outcome &outcome) {
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


void Executor::erase_file_or_ranges(const FileStep &step, bool resumed, const json &started,
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
void Executor::redact_message_file(const ManifestItem &item, bool resumed, const json &started,
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
void Executor::rewrite_archive(const FileStep &step, bool resumed, const json &started, const connectors::StepHook &hook,
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
 *
 * In the separators dialect each cut is checked where it lies: the split resumed at its offset
 * and stopped after one message gives the same message as a split of the whole file
 * (`mbox_message_length_at`), so erasing a few messages of a large mbox reads those messages, not
 * the file. A cut that does not pass that check, and every cut under mboxcl/mboxcl2 (an earlier
 * message's Content-Length can hide a separator), is decided by a split of the whole file.
 */
void Executor::keep_whole_messages(const FileStep &step, std::vector<connectors::MboxCut> &cuts,
                         std::vector<const ManifestItem *> &ranged, const Outcome &outcome) {
  connectors::MboxDialect dialect = connectors::MboxDialect::separators;
  for (const core::SourceConfig &s : m_config.sources) {
    if (s.name == step.source) {
      dialect = connectors::mbox_dialect_of(s.format).value_or(connectors::MboxDialect::separators);
    }
  }
  auto fail_all = [&](const core::Error &error) {
    for (const ManifestItem *item : ranged) {
      outcome(*item, error);
    }
    cuts.clear();
    ranged.clear();
  };
  auto fd = core::open_read(step.path);
  if (!fd) {
    if (fd.error().code != core::ErrorCode::no_input) {
      fail_all(fd.error());
    }
    return; // gone: rewrite_mbox reports it per cut
  }
  auto st = core::fstat_fd(fd->get(), step.path);
  if (!st) {
    fail_all(st.error());
    return;
  }
  const std::uint64_t size = st->size;

  std::optional<std::set<std::pair<std::uint64_t, std::uint64_t>>> messages; // the whole split, when needed
  auto whole_message = [&](const connectors::MboxCut &cut) -> core::Result<bool> {
    if (dialect == connectors::MboxDialect::separators) {
      MAILDSAR_TRY_ASSIGN(std::optional<std::uint64_t> length,
                          connectors::mbox_message_length_at(fd->get(), step.path, size, cut.offset));
      if (length == cut.length) {
        return true;
      }
    }
    if (!messages) {
      MAILDSAR_LOG_DEBUG("erase: {}: the cut at offset {} is not confirmed where it lies; the whole file is split",
                         step.path, cut.offset);
      std::set<std::pair<std::uint64_t, std::uint64_t>> all;
      MAILDSAR_TRY(connectors::split_mbox(
          fd->get(), step.path, 0, size, [&](const connectors::MboxMessage &m) { all.emplace(m.offset, m.length); },
          [](connectors::ScanError &&) {}, dialect, connectors::MboxSplitContent::boundaries));
      messages = std::move(all);
    }
    return messages->contains({cut.offset, cut.length});
  };

  std::vector<connectors::MboxCut> kept_cuts;
  std::vector<const ManifestItem *> kept_items;
  for (std::size_t i = 0; i < cuts.size(); ++i) {
    bool keep = cuts[i].offset + cuts[i].length > size;
    if (!keep) {
      auto whole = whole_message(cuts[i]);
      if (!whole) {
        fail_all(whole.error());
        return;
      }
      keep = *whole;
    }
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
core::Status Executor::convert(const FileStep &step, const std::string &key, json &started, const connectors::StepHook &hook,
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


void Executor::redact_log(const FileStep &step, bool resumed, const connectors::StepHook &hook, const Outcome &outcome) {
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
void Executor::confirm_redactions(const FileStep &step, json &outcomes) {
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
core::Result<std::map<std::string, std::set<std::string>>> Executor::rescan_log(const FileStep &step) {
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

} // namespace maildsar::erasure::execution
