// SPDX-License-Identifier: GPL-3.0-or-later
// The program's side of attachment text: the cache (state/attachments.sqlite3, keyed by the
// SHA-256 of an attachment's decoded bytes) and the batches sent to `maildsar-extract-worker
// extract-text`. The extractors themselves (extract/) run only in the worker
// (attachment_worker.cpp). See attachment_text.hpp.
//
//   extract-text  request: max text, max inflated, max depth, max pages, count,
//                          count x (name, MIME type, bytes)
//                 answer:  'X' index, ok, text | error, truncated, warnings …, then 'D'
#include "connectors/attachment_text.hpp"

#include "connectors/attachment_wire.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/sqlite.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>

namespace maildsar::connectors {

namespace {

std::mutex g_settings_mutex;
AttachmentTextSettings g_settings;

/** Bumped when an extractor changes what it returns: older cache entries are then redone. */
constexpr int k_extractor_version = 1;

/** The limits that shaped a result: a truncated or failed entry is redone when they change. */
std::string signature(const AttachmentTextSettings &s) {
  return fmt::format("v{} cpu{} mem{} wall{} text{} inflate{} depth{} pages{}", k_extractor_version,
                     s.worker.cpu_seconds, s.worker.memory_mib, s.worker.wall_seconds, s.extract.max_text_bytes,
                     s.extract.max_inflated_bytes, s.extract.max_depth, s.extract.max_pages);
}

std::string join_lines(const std::vector<std::string> &lines) {
  std::string out;
  for (const std::string &line : lines) {
    out += line;
    out += '\n';
  }
  return out;
}

std::vector<std::string> split_lines(const std::string &text) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) {
      end = text.size();
    }
    if (end > begin) {
      out.push_back(text.substr(begin, end - begin));
    }
    begin = end + 1;
  }
  return out;
}

/** The cache: one connection per process, used under a mutex. */
class Cache {
public:
  struct Entry {
    bool failed = false;
    bool truncated = false;
    std::string text;
    std::string notes; // warnings (one per line) or the failure
  };

  std::optional<Entry> lookup(const std::string &path, const std::string &sha, const std::string &sig) {
    std::lock_guard lock(m_mutex);
    core::sqlite::Db *db = open(path);
    if (db == nullptr) {
      return std::nullopt;
    }
    auto stmt = db->prepare("SELECT failed, truncated, text, notes, signature FROM texts WHERE sha256 = ?1");
    if (!stmt || !stmt->bind(1, sha)) {
      return std::nullopt;
    }
    auto row = stmt->step();
    if (!row || !*row) {
      return std::nullopt;
    }
    Entry e{stmt->column_int64(0) != 0, stmt->column_int64(1) != 0, stmt->column_text(2), stmt->column_text(3)};
    if ((e.failed || e.truncated) && stmt->column_text(4) != sig) {
      return std::nullopt; // shaped by other limits: redo
    }
    return e;
  }

  void store(const std::string &path, const std::string &sha, const std::string &sig, const Entry &e) {
    std::lock_guard lock(m_mutex);
    core::sqlite::Db *db = open(path);
    if (db == nullptr) {
      return;
    }
    auto stmt = db->prepare("INSERT OR REPLACE INTO texts(sha256, signature, failed, truncated, text, notes) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    core::Status st = stmt ? core::Status{} : core::Status(std::unexpected(stmt.error()));
    if (st) {
      st = stmt->bind(1, sha);
    }
    if (st) {
      st = stmt->bind(2, sig);
    }
    if (st) {
      st = stmt->bind(3, e.failed ? 1 : 0);
    }
    if (st) {
      st = stmt->bind(4, e.truncated ? 1 : 0);
    }
    if (st) {
      st = stmt->bind(5, e.text);
    }
    if (st) {
      st = stmt->bind(6, e.notes);
    }
    if (st) {
      st = stmt->run();
    }
    if (!st) {
      MAILDSAR_LOG_WARN("attachment text cache {}: {}", path, st.error().message);
    }
  }

  core::Status prune(const std::string &path, const std::unordered_set<std::string> &keep) {
    std::lock_guard lock(m_mutex);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return {};
    }
    core::sqlite::Db *db = open(path);
    if (db == nullptr) {
      return core::fail(core::ErrorCode::io, fmt::format("attachment text cache {}: cannot be opened", path));
    }
    std::vector<std::string> drop;
    {
      MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt all, db->prepare("SELECT sha256 FROM texts"));
      for (;;) {
        MAILDSAR_TRY_ASSIGN(bool row, all.step());
        if (!row) {
          break;
        }
        std::string sha = all.column_text(0);
        if (!keep.contains(sha)) {
          drop.push_back(std::move(sha));
        }
      }
    }
    {
      MAILDSAR_TRY_ASSIGN(core::sqlite::Transaction tx, core::sqlite::Transaction::begin(*db));
      MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt del, db->prepare("DELETE FROM texts WHERE sha256 = ?1"));
      for (const std::string &sha : drop) {
        MAILDSAR_TRY(del.bind(1, sha));
        MAILDSAR_TRY(del.run());
      }
      MAILDSAR_TRY(tx.commit());
    }
    // secure_delete zeroed the freed cells; VACUUM rebuilds the file; the checkpoint empties the
    // write-ahead log of old page images.
    return db->exec("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);");
  }

private:
  core::sqlite::Db *open(const std::string &path) {
    if (path.empty()) {
      return nullptr;
    }
    if (m_db && m_path == path) {
      return &*m_db;
    }
    if (m_failed_path == path) {
      return nullptr; // reported once
    }
    m_db.reset();
    auto db = core::sqlite::Db::open(path, core::sqlite::Writable::yes);
    core::Status st = db ? db->migrate({"CREATE TABLE texts(sha256 TEXT PRIMARY KEY, signature TEXT NOT NULL, "
                                        "failed INTEGER NOT NULL, truncated INTEGER NOT NULL, text TEXT NOT NULL, "
                                        "notes TEXT NOT NULL) WITHOUT ROWID"})
                         : core::Status(std::unexpected(db.error()));
    if (!st) {
      MAILDSAR_LOG_WARN("attachment text cache {}: {}; attachments are extracted without it", path,
                        st.error().message);
      m_failed_path = path;
      return nullptr;
    }
    m_db = std::move(*db);
    m_path = path;
    return &*m_db;
  }

  std::mutex m_mutex;
  std::optional<core::sqlite::Db> m_db;
  std::string m_path;
  std::string m_failed_path;
};

Cache &cache() {
  static Cache instance;
  return instance;
}

/** Requests stay below the worker's request-frame limit (isolate::k_max_frame). */
constexpr std::uint64_t k_max_batch_bytes = 56U << 20;

struct Outcome {
  AttachmentText *out = nullptr;
  const Attachment *in = nullptr;
  bool answered = false;
  bool truncated = false;
  bool cacheable = false; // a result, or a failure of the file itself (not of this machine)
};

std::string describe(const Attachment &a) {
  return fmt::format("attachment \"{}\" ({} {}, {})", a.name.empty() ? "(no name)" : a.name, a.container, a.part,
                     a.mime_type.empty() ? "no MIME type" : a.mime_type);
}

/**
 * The extract worker of this thread: long-lived (isolate::Worker), so that a message with an
 * attachment costs a request, not a process start with poppler's loading. Ended and reaped when
 * the thread ends (the indexer's parse threads end with each source).
 */
isolate::Worker &thread_worker() {
  thread_local isolate::Worker worker;
  thread_local std::string fault; // the test hook is read by the worker at its start: a new one when it changes
  const char *now = std::getenv("MAILDSAR_WORKER_TEST_FAULT");
  if ((now != nullptr ? std::string_view(now) : std::string_view()) != fault) {
    worker.stop();
    fault = now != nullptr ? now : "";
  }
  return worker;
}

/** Extracts the batch in this thread's worker; `answered`: how many were answered. */
core::Status run_batch(const AttachmentTextSettings &s, std::vector<Outcome *> &batch, std::size_t &answered) {
  isolate::Encoder request(k_extract_frame_request);
  request.u64(s.extract.max_text_bytes).u64(s.extract.max_inflated_bytes).u64(s.extract.max_depth)
      .u64(s.extract.max_pages).u64(batch.size());
  for (const Outcome *o : batch) {
    request.str(o->in->name).str(o->in->mime_type).str(o->in->bytes);
  }
  isolate::Task task;
  task.name = "extract-text";
  task.program = std::string(isolate::k_extract_worker_program);
  task.subject = batch.size() == 1 ? describe(*batch.front()->in) : fmt::format("{} attachments", batch.size());
  task.request = request.take();
  task.limits = s.worker;
  task.max_frame = static_cast<std::uint32_t>(std::min<std::uint64_t>(s.extract.max_text_bytes + (4U << 20),
                                                                      isolate::k_max_frame));
  answered = 0;
  return thread_worker().run(task, [&](std::uint8_t type, isolate::Decoder &in) -> core::Status {
    if (type == isolate::k_frame_done) {
      if (answered != batch.size()) {
        return core::fail(core::ErrorCode::internal,
                          fmt::format("worker protocol error: {} of {} attachments answered", answered, batch.size()));
      }
      return in.finish();
    }
    if (type != k_extract_frame_text) {
      return core::fail(core::ErrorCode::internal, fmt::format("worker protocol error: frame type {}", type));
    }
    MAILDSAR_TRY_ASSIGN(std::uint64_t index, in.u64());
    if (index != answered) {
      return core::fail(core::ErrorCode::internal, "worker protocol error: attachments answered out of order");
    }
    MAILDSAR_TRY_ASSIGN(std::uint8_t ok, in.u8());
    MAILDSAR_TRY_ASSIGN(std::string text, in.str());
    MAILDSAR_TRY_ASSIGN(std::uint8_t truncated, in.u8());
    MAILDSAR_TRY_ASSIGN(std::uint64_t warnings, in.u64());
    if (warnings > 64) {
      return core::fail(core::ErrorCode::internal, "worker protocol error: too many warnings");
    }
    Outcome &o = *batch[index];
    for (std::uint64_t i = 0; i < warnings; ++i) {
      MAILDSAR_TRY_ASSIGN(std::string w, in.str());
      o.out->warnings.push_back(std::move(w));
    }
    MAILDSAR_TRY(in.finish());
    if (ok != 0) {
      o.out->text = std::move(text);
    } else {
      o.out->problem = fmt::format("{}: text not extracted: {}", describe(*o.in), text);
    }
    o.truncated = truncated != 0;
    o.out->truncated = o.truncated && ok != 0;
    o.answered = true;
    o.cacheable = true;
    ++answered;
    return {};
  });
}

} // namespace

void set_attachment_text(const AttachmentTextSettings &settings) {
  std::lock_guard lock(g_settings_mutex);
  g_settings = settings;
}

AttachmentTextSettings attachment_text_settings() {
  std::lock_guard lock(g_settings_mutex);
  return g_settings;
}

bool attachment_text_enabled() {
  std::lock_guard lock(g_settings_mutex);
  return g_settings.enabled;
}

std::string attachment_cache_path(const std::string &state_dir) {
  return (std::filesystem::path(state_dir) / "attachments.sqlite3").string();
}

std::vector<AttachmentText> extract_attachments(const std::vector<Attachment> &attachments) {
  const AttachmentTextSettings s = attachment_text_settings();
  const std::string sig = signature(s);
  std::vector<AttachmentText> out(attachments.size());
  std::vector<Outcome> outcomes(attachments.size());
  std::map<std::string, std::size_t> first_of; // the same bytes twice in a message: extracted once
  std::vector<Outcome *> todo;
  for (std::size_t i = 0; i < attachments.size(); ++i) {
    const Attachment &a = attachments[i];
    out[i].sha256 = core::sha256_hex(a.bytes);
    outcomes[i] = Outcome{&out[i], &a};
    if (a.bytes.size() > s.max_attachment_bytes) {
      out[i].warnings.push_back(fmt::format("{} bytes, more than limits.extract_max_attachment_mib: text not extracted",
                                            a.bytes.size()));
      out[i].truncated = true;
      continue;
    }
    if (first_of.contains(out[i].sha256)) {
      continue;
    }
    first_of.emplace(out[i].sha256, i);
    if (auto hit = cache().lookup(s.cache_path, out[i].sha256, sig)) {
      if (hit->failed) {
        out[i].problem = fmt::format("{}: text not extracted: {}", describe(a), hit->notes);
      } else {
        out[i].text = std::move(hit->text);
        out[i].warnings = split_lines(hit->notes);
        out[i].truncated = hit->truncated;
      }
      continue;
    }
    todo.push_back(&outcomes[i]);
  }
  std::size_t next = 0;
  std::size_t retried = todo.size(); // the head retried in a fresh worker (once)
  while (next < todo.size()) {
    std::vector<Outcome *> batch;
    std::uint64_t bytes = 0;
    for (std::size_t i = next; i < todo.size(); ++i) {
      if (!batch.empty() && bytes + todo[i]->in->bytes.size() > k_max_batch_bytes) {
        break;
      }
      bytes += todo[i]->in->bytes.size();
      batch.push_back(todo[i]);
    }
    std::size_t answered = 0;
    const bool fresh = thread_worker().served() == 0;
    core::Status st = run_batch(s, batch, answered);
    if (st || answered >= batch.size()) {
      next += batch.size();
      continue;
    }
    Outcome &culprit = *batch[answered];
    if (answered > 0 || (!fresh && retried != next)) {
      // The culprit runs again first, at the head of a request to a fresh worker, before it is
      // blamed: what earlier requests left in the process may be the cause.
      next += answered;
      retried = next;
      continue;
    }
    culprit.out->problem = fmt::format("{}: text not extracted: {}", describe(*culprit.in), st.error().message);
    culprit.cacheable = st.error().code == core::ErrorCode::data; // crash or limit: the file's fault
    culprit.answered = true;
    ++next;
  }
  for (Outcome &o : outcomes) {
    if (!o.answered || !o.cacheable) {
      continue;
    }
    Cache::Entry e;
    e.failed = !o.out->problem.empty();
    e.truncated = o.truncated;
    if (e.failed) {
      const std::string prefix = describe(*o.in) + ": text not extracted: ";
      e.notes = o.out->problem.substr(o.out->problem.starts_with(prefix) ? prefix.size() : 0);
    } else {
      e.text = o.out->text;
      e.notes = join_lines(o.out->warnings);
    }
    cache().store(s.cache_path, o.out->sha256, sig, e);
  }
  for (std::size_t i = 0; i < attachments.size(); ++i) {
    auto first = first_of.find(out[i].sha256);
    if (first != first_of.end() && first->second != i) {
      AttachmentText copy = out[first->second];
      copy.problem.clear(); // counted once, at the first copy
      out[i] = std::move(copy);
    }
  }
  return out;
}

std::optional<int> extract_worker_pid() { return thread_worker().pid(); }

core::Status prune_attachment_cache(const std::string &cache_path, const std::unordered_set<std::string> &keep) {
  return cache().prune(cache_path, keep);
}

} // namespace maildsar::connectors
