// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/rotation.hpp"

#include "connectors/maillog.hpp"
#include "core/log.hpp"
#include "indexer/document.hpp"
#include "indexer/log_block.hpp"
#include "indexer/log_index.hpp"
#include "indexer/schema.hpp"

#include <algorithm>
#include <functional>

// Rotation (logs): `mail.log` -> `mail.log.1` -> `mail.log.2.gz` keeps the lines and their
// numbers but changes the path (and maybe compresses). Every complete scan of a log records
// content marks (catalog: head_fingerprint, content_size, content_tail — over the *decompressed*
// bytes). Before scanning, a file whose path is new or whose content changed (a target) is
// compared with every fully indexed file that vanished or was replaced/rewritten (an origin):
// same head, at least content_size bytes, and the same 4096 bytes before content_size. A match
// *moves* the origin's documents to the target without re-parsing (Q term, XFILE: term and the
// locator path in the data are rewritten; line numbers stay). If the target holds more than
// the origin covered (mail.log grew after the last index, then was rotated), only the rest is
// read (plain file: from content_size; a compressed one is re-read in full). Moves run in
// dependency order (`.1 -> .2.gz` before `mail.log -> .1`), so a key never meets another file's
// document. A copytruncate'd mail.log is an origin too (its tail no longer matches) and is then
// re-read like any rewritten file.
//   Crash safety keeps rules 1-3 (writer.hpp): the origin's and the target's catalog rows are
// `pending`, and each moved item's catalog row is rewritten, in the catalog transaction that
// commits before the Xapian one; the rows become `done` (or a vanished origin's row is deleted)
// only afterwards. A kill in between leaves both paths pending (or vanished), so the next run
// re-reads/drops them.
//   Counts: moved items are reported as `moved`, neither new, changed nor removed; lines read
// after the old end are new; the items of a file that a move replaces (no longer anywhere) are
// removed; a compressed target that must be re-read in full reports its items as changed.

namespace maildsar::index::pipeline {

core::Result<Writer::MoveOutcome> Writer::move_file(const std::string &source, std::int64_t source_id,
                                                    const FileRecord &origin, bool origin_gone,
                                                    const FileEntry &target, const FileRecord *at_target,
                                                    const connectors::ContentProbe &probe, SourceSummary &sum) {
  const bool self = origin.path == target.path;
  MoveOutcome out;
  MAILDSAR_TRY(m_catalog.set_status(origin.id, FileStatus::pending, {}));
  const std::string target_term = schema::file_term(source, target.path);
  if (!self) {
    if (at_target != nullptr && at_target->id != origin.id) {
      MAILDSAR_TRY_ASSIGN(std::uint64_t n, m_catalog.item_count_of_file(at_target->id));
      sum.removed += n;
      MAILDSAR_TRY(m_catalog.delete_items(at_target->id));
    }
    MAILDSAR_TRY(m_store.delete_by_term(target_term));
  }
  out.record = listed_file_record(source_id, target, FileStatus::pending);
  FileRecord &rec = out.record;
  rec.head_fingerprint = origin.head_fingerprint;
  rec.content_size = origin.content_size;
  rec.content_tail = origin.content_tail;
  rec.gz_points = probe.gz_points; // the target's own (a rotation may have compressed it)
  rec.next_seq = origin.next_seq;
  rec.status = FileStatus::pending;
  if (!probe.compressed) {
    // Plain: raw bytes are the content, so an append scan can go on from the old end.
    rec.scanned_size = origin.content_size;
    rec.tail_fingerprint = origin.content_tail;
  } else if (target.stat.size > 0) {
    rec.scanned_size = target.stat.size;
    if (auto fp = tail_fingerprint(target.path, target.stat.size)) {
      rec.tail_fingerprint = std::move(*fp);
    }
  }
  MAILDSAR_TRY_ASSIGN(rec.id, m_catalog.put_file(rec));
  if (!self) {
    const std::string origin_term = schema::file_term(source, origin.path);
    MAILDSAR_TRY_ASSIGN(std::vector<ItemRecord> items, m_catalog.items_of_file(origin.id));
    for (ItemRecord &item : items) {
      MAILDSAR_TRY(m_catalog.delete_item(item.qterm));
      MAILDSAR_TRY_ASSIGN(std::optional<std::string> data, m_store.document_data(item.qterm));
      auto moved = !data ? core::Result<RelocatedData>(core::fail(core::ErrorCode::data, "no document"))
                   : is_log_block_data(*data) ? relocate_log_block(*data, target.path)
                                              : relocate_document_data(*data, target.path);
      if (!moved) {
        // Catalog and index disagree (or the data is damaged): drop it; the target is re-read.
        MAILDSAR_LOG_WARN("index: cannot move {} item {} to {}: {}", origin.path,
                          item.locator_key, target.path, moved.error().message);
        MAILDSAR_TRY(m_store.delete_by_term(item.qterm));
        out.complete = false;
        continue;
      }
      std::string new_qterm = schema::unique_term(source, moved->locator_key);
      MAILDSAR_TRY_ASSIGN(bool found, m_store.rekey(item.qterm, new_qterm, origin_term,
                                                    target_term, moved->data));
      if (!found) {
        out.complete = false;
        continue;
      }
      item.qterm = std::move(new_qterm);
      item.locator_key = std::move(moved->locator_key);
      item.file_id = rec.id;
      MAILDSAR_TRY(m_catalog.put_item(item));
      out.moved += item.n;
      ++m_docs_in_batch;
      MAILDSAR_TRY(maybe_commit());
    }
    // Anything the catalog did not know of (an earlier crash) must not stay at the old path.
    MAILDSAR_TRY(m_store.delete_by_term(origin_term));
    if (origin_gone) {
      m_vanished.push_back(origin.id); // no items left; its row goes after the Xapian commit
    }
  }
  return out;
}

core::Status follow_rotation(const std::string &source, std::int64_t source_id,
                             const std::unordered_map<std::string, FileRecord> &old_files,
                             const std::unordered_set<std::string> &present,
                             std::vector<Job> &jobs, Writer &writer, SourceSummary &sum,
                             std::unordered_set<std::string> &moved_gone) {
  // A log that "grew" but whose old end does not match any more was rewritten (copytruncate).
  std::unordered_map<std::string, std::size_t> job_of;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    Job &job = jobs[i];
    if (job.transition == Transition::grown && job.old) {
      auto fp = tail_fingerprint(job.entry.path, job.old->scanned_size);
      if (!fp || *fp != job.old->tail_fingerprint) {
        job.transition = Transition::changed;
      }
    }
    job_of.emplace(job.entry.path, i);
  }
  std::vector<const FileRecord *> origins;
  for (const auto &[path, rec] : old_files) {
    if (rec.status != FileStatus::done || rec.content_size == 0 || rec.head_fingerprint.empty() ||
        rec.content_tail.empty()) {
      continue;
    }
    auto it = job_of.find(path);
    bool gone = !present.contains(path);
    bool replaced = it != job_of.end() && jobs[it->second].transition == Transition::changed;
    if (gone || replaced) {
      origins.push_back(&rec);
    }
  }
  if (origins.empty()) {
    return {};
  }
  struct Candidate {
    std::size_t job = 0;
    const FileRecord *origin = nullptr;
    connectors::ContentProbe probe;
  };
  std::vector<Candidate> found;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const Job &job = jobs[i];
    if (job.transition != Transition::new_file && job.transition != Transition::changed) {
      continue;
    }
    auto head = connectors::read_content_head(job.entry.path);
    if (!head) {
      continue; // its scan reports the problem
    }
    for (const FileRecord *o : origins) {
      if (o->path == job.entry.path && o->dev == job.entry.stat.dev && o->ino == job.entry.stat.ino) {
        // The same file, changed in place (erase's same-length pseudonyms in the middle of a
        // log keep its head and the marks): it must be read again, not "moved" onto itself.
        continue;
      }
      if (head->size() < std::min<std::uint64_t>(connectors::k_content_probe_bytes, o->content_size) ||
          head_fingerprint_of(*head, o->content_size) != o->head_fingerprint) {
        continue;
      }
      auto probe = connectors::probe_content(job.entry.path, o->content_size);
      if (!probe || probe->size < o->content_size || probe->mark_fingerprint != o->content_tail) {
        continue;
      }
      found.push_back(Candidate{i, o, std::move(*probe)});
    }
  }
  // Most content first; then a file that kept its path; then by path (deterministic).
  std::sort(found.begin(), found.end(), [&](const Candidate &a, const Candidate &b) {
    if (a.origin->content_size != b.origin->content_size) {
      return a.origin->content_size > b.origin->content_size;
    }
    bool a_same = a.origin->path == jobs[a.job].entry.path;
    bool b_same = b.origin->path == jobs[b.job].entry.path;
    if (a_same != b_same) {
      return a_same;
    }
    if (jobs[a.job].entry.path != jobs[b.job].entry.path) {
      return jobs[a.job].entry.path < jobs[b.job].entry.path;
    }
    return a.origin->path < b.origin->path;
  });
  std::vector<Candidate> moves;
  std::unordered_set<std::size_t> used_jobs;
  std::unordered_set<const FileRecord *> used_origins;
  for (Candidate &c : found) {
    if (!used_jobs.contains(c.job) && !used_origins.contains(c.origin)) {
      used_jobs.insert(c.job);
      used_origins.insert(c.origin);
      moves.push_back(std::move(c));
    }
  }
  std::unordered_map<std::string, std::size_t> move_from; // origin path -> move
  for (std::size_t m = 0; m < moves.size(); ++m) {
    move_from.emplace(moves[m].origin->path, m);
  }
  enum class Visit { no, active, done };
  std::vector<Visit> state(moves.size(), Visit::no);
  // The documents at a target's path must have moved out before others move in.
  std::function<core::Status(std::size_t)> visit = [&](std::size_t m) -> core::Status {
    if (state[m] != Visit::no) {
      return {};
    }
    state[m] = Visit::active;
    Candidate &c = moves[m];
    Job &job = jobs[c.job];
    auto dep = move_from.find(job.entry.path);
    if (dep != move_from.end() && dep->second != m) {
      if (state[dep->second] == Visit::active) {
        state[m] = Visit::done; // a cycle (files swapped names): this target is re-read instead
        return {};
      }
      MAILDSAR_TRY(visit(dep->second));
    }
    const FileRecord &origin = *c.origin;
    bool gone = !present.contains(origin.path);
    auto at = old_files.find(job.entry.path);
    const FileRecord *at_target = at == old_files.end() ? nullptr : &at->second;
    MAILDSAR_TRY_ASSIGN(Writer::MoveOutcome outcome,
                        writer.move_file(source, source_id, origin, gone, job.entry, at_target,
                                         c.probe, sum));
    if (gone) {
      moved_gone.insert(origin.path);
    }
    std::uint64_t total = c.probe.compressed ? c.probe.size : job.entry.stat.size;
    bool rest = total > origin.content_size;
    if (outcome.complete && !rest) {
      sum.moved += outcome.moved;
      writer.finished(outcome.record.id);
      job.transition = Transition::unchanged; // nothing to read
    } else if (outcome.complete && !c.probe.compressed) {
      sum.moved += outcome.moved;
      job.transition = Transition::grown; // read what follows the old end
      job.old = std::make_unique<FileRecord>(outcome.record);
    } else {
      job.transition = Transition::changed; // read it all again (its moved items: "changed")
      job.old = std::make_unique<FileRecord>(outcome.record);
    }
    state[m] = Visit::done;
    return {};
  };
  for (std::size_t m = 0; m < moves.size(); ++m) {
    MAILDSAR_TRY(visit(m));
  }
  std::erase_if(jobs, [](const Job &job) { return job.transition == Transition::unchanged; });
  return {};
}

} // namespace maildsar::index::pipeline
