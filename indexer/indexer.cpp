// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/indexer.hpp"

#include "connectors/limits.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "indexer/catalog.hpp"
#include "indexer/document.hpp"
#include "indexer/identity.hpp"
#include "indexer/index_store.hpp"
#include "indexer/log_index.hpp"
#include "indexer/pipeline.hpp"
#include "indexer/rotation.hpp"
#include "indexer/schema.hpp"
#include "indexer/suppression.hpp"
#include "indexer/writer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <variant>

// An index run (run_index): each source's files are listed and classified against the catalog,
// rotated logs are followed (rotation.cpp), the rest is scanned by worker threads and written
// by the single writer on this thread (writer.hpp: the crash-consistency rules).

namespace maildsar::index {

using connectors::Connector;
using connectors::FileEntry;
using connectors::Item;
using connectors::ScanError;
namespace fs = std::filesystem;

std::string index_path(const core::Config &config) {
  return (std::filesystem::path(config.state_dir) / "xapian").string();
}
std::string catalog_path(const core::Config &config) {
  return (std::filesystem::path(config.state_dir) / "catalog.sqlite3").string();
}
std::string lock_path(const core::Config &config) {
  return (std::filesystem::path(config.state_dir) / "index.lock").string();
}

namespace {

using namespace pipeline; // NOLINT(google-build-using-namespace): the indexer's own internals

/** Turns a worker's scan into messages. */
class WorkerSink final : public connectors::ItemSink {
public:
  WorkerSink(Queue &queue, std::size_t job, const DocumentContext &ctx)
      : m_queue(queue), m_job(job), m_ctx(ctx) {}

  /** An mbox's messages are numbered from `next` on (Locator::seq), in the order the scan
      gives them (the file's order; one worker reads a file). */
  void number_from(std::uint64_t next) { m_next_seq = next; }
  [[nodiscard]] std::uint64_t next_seq() const { return m_next_seq; }

  void item(Item &&item) override {
    if (m_queue.closed()) {
      return;
    }
    if (item.locator.store == connectors::StoreKind::mbox) {
      item.locator.seq = m_next_seq++;
    }
    // Notes of what was cut (each a warning below); a part that could not be read is a problem
    // instead, and both make the item one indexed in part (XTRUNC:1, `truncated` in its hits,
    // `verify` refuses a certificate while it remains: docs/reliability.md).
    const std::size_t cut_notes = item.truncated.size();
    for (std::string &problem : item.problems) {
      // A part that could not be read (attachment text): counted; the item is still indexed.
      item.truncated.push_back(problem);
      m_queue.push(MsgError{m_job, ScanError{item.locator.path, position_of(item.locator), std::move(problem)}});
    }
    // Per-role caps (limits.max_addresses_per_role) before the identities are extracted.
    connectors::bound_item(item);
    try {
      m_queue.push(MsgDoc{m_job, build_document(item, m_ctx)});
    } catch (...) {
      core::Error e = core::error_from_current_exception();
      m_queue.push(
          MsgError{m_job, ScanError{item.locator.path, position_of(item.locator), e.message}, true});
      return;
    }
    // Never silent: every cut or split is a warning naming the file and the item's position.
    if (!item.truncated.empty()) {
      m_queue.push(MsgPartial{m_job});
    }
    item.truncated.resize(cut_notes); // the problems were reported above
    for (std::vector<std::string> *notes : {&item.truncated, &item.bounded}) {
      for (std::string &note : *notes) {
        m_queue.push(MsgWarning{m_job, ScanError{item.locator.path, position_of(item.locator), std::move(note)}});
      }
    }
  }
  void error(ScanError &&error) override { m_queue.push(MsgError{m_job, std::move(error), true}); }

private:
  static std::string position_of(const connectors::Locator &loc) {
    if (loc.store == connectors::StoreKind::pst) {
      return fmt::format("node {:#x}", loc.node_id); // as the PST scan's own problems name an item
    }
    if (loc.store == connectors::StoreKind::archive) { // as the archive scan's own problems
      return loc.length > 0 ? fmt::format("member '{}' offset {}", loc.member, loc.offset)
                            : fmt::format("member '{}'", loc.member);
    }
    if (loc.offset > 0 || loc.store == connectors::StoreKind::mbox) {
      return fmt::format("offset {}", loc.offset);
    }
    if (!loc.lines.empty()) {
      return fmt::format("line {}", loc.lines.front());
    }
    return {};
  }
  Queue &m_queue;
  std::size_t m_job;
  const DocumentContext &m_ctx;
  std::uint64_t m_next_seq = 0;
};



void scan_one(const Connector &connector, const Job &job, std::size_t index, Queue &queue,
              const DocumentContext &ctx) {
  ScanMode mode = ScanMode::full;
  std::uint64_t from = 0;
  if (job.transition == Transition::grown && job.old) {
    auto fp = tail_fingerprint(job.entry.path, job.old->scanned_size);
    if (fp && *fp == job.old->tail_fingerprint) {
      mode = ScanMode::append;
      from = job.old->scanned_size;
    }
  }
  core::Status st;
  std::uint64_t next_seq = 0;
  if (connector.kind() == connectors::StoreKind::maillog && ctx.log_source != nullptr) {
    st = scan_log_blocks(job, index, queue, ctx, mode, from);
  } else {
    WorkerSink sink(queue, index, ctx);
    // Appended messages go on from the file's next number; a whole file is numbered from 0
    // (its documents are all written again, so the numbers of unchanged files stay the same).
    sink.number_from(mode == ScanMode::append ? job.old->next_seq : 0);
    queue.push(MsgBegin{index, mode, from});
    st = connector.scan(job.entry, from, sink);
    if (!st && mode == ScanMode::append && st.error().code == core::ErrorCode::data) {
      // The old end is not an item boundary any more: read the whole file again.
      mode = ScanMode::full;
      from = 0;
      sink.number_from(0);
      queue.push(MsgBegin{index, mode, from});
      st = connector.scan(job.entry, 0, sink);
    }
    next_seq = sink.next_seq();
  }
  MsgEnd end{index, std::nullopt, {}, {}, next_seq};
  if (!st) {
    end.failure = st.error();
  } else if (connector.supports_append() && job.entry.stat.size > 0) {
    auto fp = tail_fingerprint(job.entry.path, job.entry.stat.size);
    if (fp) {
      end.fingerprint = std::move(*fp);
    }
  }
  if (st && connector.kind() == connectors::StoreKind::maillog) {
    end.marks = content_marks(job.entry);
  }
  queue.push(std::move(end));
}

/** Progress of a source read in parts (a streamed listing): files done in earlier parts. */
struct ProgressBase {
  std::uint64_t done = 0;
};

/** Runs the workers over `jobs` and feeds the writer on this thread. */
core::Status index_files(const Connector &connector, const std::string &source,
                         std::int64_t source_id, const std::vector<Job> &jobs,
                         const DocumentContext &ctx, unsigned threads, Writer &writer,
                         const IndexOptions &options, SourceSummary &sum, ProgressBase base = {}) {
  if (jobs.empty()) {
    return {};
  }
  MAILDSAR_TRY(Normalizer::load_phone_module()); // before the workers need it
  Queue queue(1024, k_queue_bytes);
  std::atomic<std::size_t> next{0};
  unsigned n_threads = std::max(1U, std::min<unsigned>(threads, static_cast<unsigned>(jobs.size())));
  std::vector<std::thread> pool;
  pool.reserve(n_threads);
  for (unsigned t = 0; t < n_threads; ++t) {
    pool.emplace_back([&] {
      for (;;) {
        if (queue.closed()) {
          break;
        }
        std::size_t i = next.fetch_add(1);
        if (i >= jobs.size()) {
          break;
        }
        try {
          scan_one(connector, jobs[i], i, queue, ctx);
        } catch (...) {
          core::Error e = core::error_from_current_exception();
          queue.push(MsgEnd{i, e, {}, {}});
        }
      }
      queue.push_always(MsgWorkerDone{});
    });
  }

  // The state of the files being read (a few at a time: the workers' and the queue's), not one
  // per job for the whole run.
  std::unordered_map<std::size_t, FileState> states;
  std::uint64_t done_files = base.done;
  const std::uint64_t total = base.done + jobs.size();
  if (options.on_progress) {
    options.on_progress(source, done_files, total);
  }
  unsigned workers_left = n_threads;
  core::Status status;
  while (workers_left > 0) {
    Msg msg = queue.pop();
    if (std::holds_alternative<MsgWorkerDone>(msg)) {
      --workers_left;
      continue;
    }
    if (!status) {
      continue; // draining after a fatal error
    }
    core::Status st = std::visit(
        [&](auto &&m) -> core::Status {
          using T = std::decay_t<decltype(m)>;
          if constexpr (std::is_same_v<T, MsgBegin>) {
            FileState &fs = states[m.job];
            if (fs.started && fs.mode == ScanMode::append && m.mode == ScanMode::full) {
              fs.started = false; // restart: the full start drops what the append wrote
              fs.unsearched = 0;
              fs.first_unsearched.clear();
            }
            fs.mode = m.mode;
            return {};
          } else if constexpr (std::is_same_v<T, MsgDoc>) {
            sum.suppressed += m.log_lines.empty() ? (m.doc.suppressed.empty() ? 0U : 1U) : m.suppressed;
            return writer.write_doc(source, source_id, jobs[m.job], states[m.job], std::move(m.doc),
                                    sum, m.log_lines);
          } else if constexpr (std::is_same_v<T, MsgError>) {
            if (m.unsearched) {
              FileState &fs = states[m.job];
              if (fs.unsearched++ == 0) {
                fs.first_unsearched =
                    m.error.position.empty() ? m.error.cause : m.error.position + ": " + m.error.cause;
              }
            }
            writer.report(source, std::move(m.error), sum);
            return {};
          } else if constexpr (std::is_same_v<T, MsgWarning>) {
            writer.warn(source, std::move(m.warning), sum);
            return {};
          } else if constexpr (std::is_same_v<T, MsgPartial>) {
            ++sum.truncated;
            return {};
          } else if constexpr (std::is_same_v<T, MsgEnd>) {
            MAILDSAR_TRY(writer.finish(source, source_id, jobs[m.job], states[m.job], std::move(m),
                                       sum));
            states.erase(m.job);
            ++done_files;
            if (options.on_progress) {
              options.on_progress(source, done_files, total);
            }
            return {};
          } else {
            return {};
          }
        },
        msg);
    if (!st) {
      status = std::move(st);
      queue.close();
    }
  }
  for (std::thread &t : pool) {
    t.join();
  }
  return status;
}

core::Result<std::vector<const core::SourceConfig *>> select_sources(const core::Config &config,
                                                                     const IndexOptions &options) {
  std::vector<const core::SourceConfig *> out;
  std::vector<std::string> named = options.only_sources;
  named.insert(named.end(), options.accept_removal.begin(), options.accept_removal.end());
  for (const std::string &name : named) {
    auto it = std::find_if(config.sources.begin(), config.sources.end(),
                           [&](const core::SourceConfig &s) { return s.name == name; });
    if (it == config.sources.end()) {
      std::string known;
      for (const auto &s : config.sources) {
        known += known.empty() ? s.name : ", " + s.name;
      }
      return core::fail(core::ErrorCode::usage, fmt::format("unknown source '{}'", name),
                        known.empty() ? "the config defines no sources"
                                      : fmt::format("configured sources: {}", known));
    }
  }
  for (const core::SourceConfig &s : config.sources) {
    if (options.only_sources.empty() ||
        std::find(options.only_sources.begin(), options.only_sources.end(), s.name) !=
            options.only_sources.end()) {
      out.push_back(&s);
    }
  }
  return out;
}

/**
 * The removal guard (see RemovalGuard): why this run must not drop the vanished files of a
 * source, or "" when it may. `listed` = the files found now, `old_files` = those the catalog has.
 */
std::string removal_hold(const core::Config &config, std::size_t listed, std::size_t gone,
                         std::size_t old_files) {
  if (old_files == 0 || gone == 0) {
    return {};
  }
  if (listed == 0) {
    return fmt::format("matched {} file(s) before and none now (wrong path? unmounted share?)",
                       old_files);
  }
  if (gone * 100 > static_cast<std::size_t>(config.max_removal_percent) * old_files) {
    return fmt::format("{} of its {} file(s) vanished in one run, more than max_removal_percent "
                       "({}%)",
                       gone, old_files, config.max_removal_percent);
  }
  return {};
}

/** Collects list_files() problems and counts the files it skipped on purpose. */
class ListSink final : public connectors::ItemSink {
public:
  void item(Item &&) override {}
  void error(ScanError &&error) override {
    std::lock_guard lock(m_mutex);
    m_errors.push_back(std::move(error));
  }
  void skipped(const std::string & /*path*/, connectors::SkipReason reason) override {
    std::lock_guard lock(m_mutex);
    ++m_skipped[std::string(connectors::to_string(reason))];
  }
  std::vector<ScanError> take() {
    std::lock_guard lock(m_mutex);
    return std::move(m_errors);
  }
  std::map<std::string, std::uint64_t> skipped_counts() {
    std::lock_guard lock(m_mutex);
    return m_skipped;
  }

private:
  std::mutex m_mutex;
  std::vector<ScanError> m_errors;
  std::map<std::string, std::uint64_t> m_skipped;
};

/** SourceSummary::skipped as the catalog keeps it: "dotfile=2;mua-file=1". */
std::string encode_skipped(const std::map<std::string, std::uint64_t> &skipped) {
  std::string out;
  for (const auto &[reason, n] : skipped) {
    out += fmt::format("{}{}={}", out.empty() ? "" : ";", reason, n);
  }
  return out;
}

std::map<std::string, std::uint64_t> decode_skipped(std::string_view text) {
  std::map<std::string, std::uint64_t> out;
  while (!text.empty()) {
    auto semi = text.find(';');
    std::string_view one = text.substr(0, semi);
    text = semi == std::string_view::npos ? std::string_view() : text.substr(semi + 1);
    auto eq = one.find('=');
    std::uint64_t n = 0;
    if (eq == std::string_view::npos ||
        std::from_chars(one.data() + eq + 1, one.data() + one.size(), n).ec != std::errc()) {
      continue; // not written by encode_skipped: ignored
    }
    out[std::string(one.substr(0, eq))] += n;
  }
  return out;
}

/**
 * A run that wrote most of the index (a first index, a rebuild, an estate that doubled) leaves
 * the B-tree blocks part-filled: a compacted copy of a first Maildir index is a third smaller
 * (76.9 -> 51.4 MB of Xapian tables for 20,000 messages: docs/performance.md, "Index size") and
 * takes well under a second per 100 MB of index. Smaller
 * runs (the daily increment) leave the index as it is. A failed compaction leaves the committed
 * index untouched and is only logged.
 */
core::Status compact_after_bulk_write(const IndexStore &store, std::uint64_t docs_written) {
  constexpr std::uint64_t k_min_docs = 64;
  if (docs_written < k_min_docs) {
    return {};
  }
  MAILDSAR_TRY_ASSIGN(std::uint64_t docs, store.doc_count());
  if (docs_written * 2 < docs) {
    return {};
  }
  auto done = compact_index(store.path());
  if (!done) {
    MAILDSAR_LOG_WARN("index {}: not compacted: {}", store.path(), done.error().message);
  } else if (!*done) {
    MAILDSAR_LOG_WARN("index {}: not compacted: the file system cannot swap directories atomically",
                      store.path());
  } else {
    MAILDSAR_LOG_DEBUG("index {}: compacted after writing {} of its {} documents", store.path(),
                       docs_written, docs);
  }
  return {};
}

} // namespace

core::Result<IndexSummary> run_index(const core::Config &config, const IndexOptions &options) {
  return run_index(config, options, ConnectorFactory(connectors::make_connector));
}

core::Result<IndexSummary> run_index(const core::Config &config, const IndexOptions &options,
                                     const ConnectorFactory &factory) {
  auto t0 = std::chrono::steady_clock::now();
  MAILDSAR_TRY_ASSIGN(auto selected, select_sources(config, options));
  if (config.state_dir.empty()) {
    return core::fail(core::ErrorCode::config, "no state_dir configured");
  }
  MAILDSAR_TRY(core::ensure_private_dir(config.state_dir));
  MAILDSAR_TRY_ASSIGN(core::FileLock lock,
                      core::FileLock::try_acquire(lock_path(config),
                                                  "another `maildsar index` is running?"));
  MAILDSAR_TRY_ASSIGN(Catalog catalog, Catalog::open(catalog_path(config)));
  // The old index a compaction killed midway left behind (it may hold erased data).
  MAILDSAR_TRY(remove_compact_leftover(index_path(config)));
  auto opened = IndexStore::open(index_path(config), OpenMode::writable);
  bool rebuilt = false;
  if (!opened && opened.error().code == core::ErrorCode::data && options.full == FullScan::yes) {
    // Schema change (or a damaged index) with --full: start over, catalog included.
    MAILDSAR_LOG_WARN("index {}: rebuilding from scratch ({})", index_path(config),
                      opened.error().message);
    opened = IndexStore::open(index_path(config), OpenMode::overwrite);
    rebuilt = true;
  } else if (!opened && opened.error().code == core::ErrorCode::data) {
    // An index an earlier maildsar built (its documents or keys read differently): rebuilt from
    // the stores, said once; any other mismatch or damage still needs --full.
    if (std::optional<std::string> version = IndexStore::schema_version_of(index_path(config));
        version && schema::is_older_schema(*version)) {
      MAILDSAR_LOG_WARN("index {}: built by an older maildsar (schema version {}; this one writes {}): "
                        "rebuilding it from the stores",
                        index_path(config), *version, schema::k_schema_version);
      opened = IndexStore::open(index_path(config), OpenMode::overwrite);
      rebuilt = true;
    }
  }
  if (!opened) {
    return std::unexpected(opened.error());
  }
  IndexStore store = std::move(*opened);
  if (rebuilt) {
    MAILDSAR_TRY_ASSIGN(auto all, catalog.sources());
    MAILDSAR_TRY_ASSIGN(auto tx, catalog.begin());
    for (const SourceRecord &s : all) {
      MAILDSAR_TRY(catalog.delete_source_files(s.id));
      MAILDSAR_TRY(catalog.set_layout(s.id, ""));
    }
    MAILDSAR_TRY(tx.commit());
  }

  Normalizer normalizer(NormalizeOptions{config.identity.subaddress_separators,
                                         config.identity.phone_region});
  // Items that show the subject of a completed erasure are flagged (a restore from backup).
  MAILDSAR_TRY_ASSIGN(std::optional<SuppressionList> suppression, SuppressionList::load(config));
  // The writer (this thread) keeps one core busy: parse on the others (at least one).
  unsigned threads = options.threads != 0 ? options.threads
                                          : std::max(2U, std::thread::hardware_concurrency()) - 1;
  threads = std::max(1U, threads);

  IndexSummary summary;
  Writer writer(options, catalog, store);
  MAILDSAR_TRY(writer.begin_batch());
  std::vector<std::int64_t> succeeded;
  struct Layout {
    std::int64_t source_id;
    std::string digest;
    std::uint64_t files; // listed with it
  };
  std::vector<Layout> layouts;
  std::unordered_set<std::int64_t> unchanged_sources; // skipped by the layout shortcut
  for (const core::SourceConfig *src : selected) {
    SourceSummary sum;
    sum.name = src->name;
    sum.type = src->type;
    MAILDSAR_TRY_ASSIGN(std::unique_ptr<Connector> connector, factory(*src));
    MAILDSAR_TRY_ASSIGN(std::int64_t source_id, catalog.source_id(src->name, src->type));
    const bool guarded = options.removal_guard == RemovalGuard::on &&
                         std::ranges::find(options.accept_removal, src->name) ==
                             options.accept_removal.end();
    // The source ends the run with its indexed items as they are (held, or not listed).
    auto keep_items = [&]() -> core::Status {
      MAILDSAR_TRY_ASSIGN(sum.items, catalog.item_count(source_id));
      summary.errors += sum.errors;
      summary.warnings += sum.warnings;
      summary.truncated += sum.truncated;
      summary.suppressed += sum.suppressed;
      summary.sources.push_back(std::move(sum));
      return {};
    };
    // A held source keeps its documents and catalog rows as they are: nothing was searched.
    auto hold_source = [&](std::string why) -> core::Status {
      writer.report(src->name,
                    ScanError{src->path, {},
                              fmt::format("{}; its indexed items are kept until `maildsar index "
                                          "--accept-removal {}`",
                                          why, src->name)},
                    sum);
      sum.held_removal = std::move(why);
      return keep_items();
    };
    if (std::error_code ec; guarded && !src->root.empty() && !fs::exists(src->root, ec)) {
      MAILDSAR_TRY(hold_source(fmt::format("source root {} is missing (wrong path? unmounted share?)",
                                           src->root)));
      continue;
    }
    // Fast no-op: a store whose files only come and go (Maildir) and whose folder layout is
    // what it was after the last complete run without problems has nothing new to read.
    // The digest is taken before the files are listed, so a change during this run shows
    // up next time. --full always lists.
    MAILDSAR_TRY_ASSIGN(std::optional<connectors::LayoutDigest> layout,
                        connector->layout_fingerprint());
    if (options.full == FullScan::no && layout && layout->settled) {
      MAILDSAR_TRY_ASSIGN(std::string previous, catalog.layout(source_id));
      if (!previous.empty() && previous == layout->digest) {
        MAILDSAR_TRY_ASSIGN(sum.files, catalog.layout_file_count(source_id));
        unchanged_sources.insert(source_id);
        succeeded.push_back(source_id);
        summary.sources.push_back(std::move(sum));
        continue;
      }
    }
    // From here the recorded layout no longer describes the catalog: a kill mid-run must not
    // leave a digest that lets the next run skip the repair. (Part of the writer's open catalog
    // transaction, which is committed before any index commit.)
    MAILDSAR_TRY(catalog.set_layout(source_id, ""));
    AppendSupport append = connector->supports_append() ? AppendSupport::yes : AppendSupport::no;
    const bool logs = connector->kind() == connectors::StoreKind::maillog;
    DocumentContext ctx{src->name, &normalizer, logs ? src : nullptr, options.log_block_items};
    ctx.suppression = suppression ? &*suppression : nullptr;
    // A log's writer has one document per block to add: its thread can parse too.
    const unsigned workers = logs && options.threads == 0 ? threads + 1 : threads;
    // The source's catalog files, as much as classifying needs (a Maildir has hundreds of
    // thousands); a log source's whole records too (rotation reads their content marks; logs
    // are few). A job's whole record is read when the job is made.
    MAILDSAR_TRY_ASSIGN(auto old_briefs, catalog.file_briefs(source_id));
    std::unordered_map<std::string, FileRecord> old_files;
    if (logs) {
      MAILDSAR_TRY_ASSIGN(old_files, catalog.files(source_id));
    }
    std::vector<Job> jobs;
    // The paths listed, for a log source (rotation needs them); other sources mark their
    // catalog files as listed (FileBrief::listed).
    std::unordered_set<std::string> present;
    std::size_t listed_old = 0;
    // One listed file: classified against the catalog, and a job unless unchanged.
    auto admit = [&](FileEntry &&entry) -> core::Status {
      if (logs) {
        present.insert(entry.path);
      }
      auto it = old_briefs.find(entry.path);
      FileBrief *old = it == old_briefs.end() ? nullptr : &it->second;
      if (old != nullptr && !old->listed) {
        old->listed = true;
        ++listed_old;
      }
      Transition t = classify(old, entry.stat, append);
      if (old == nullptr) {
        // One file, one source: a file another source holds (or listed earlier in this run)
        // would be deleted for one and retained for the other. Checked for files new to this
        // source; config loading refuses overlapping paths, this catches what it cannot see.
        // The sources read earlier in this run are in the catalog by now: every file read ends
        // with its row (Writer::finish), in the writer's transaction this connection sees.
        MAILDSAR_TRY_ASSIGN(std::optional<std::string> other,
                            catalog.other_source_of(entry.path, source_id));
        if (other && std::ranges::none_of(config.sources, [&](const core::SourceConfig &c) {
              return c.name == *other;
            })) {
          other.reset(); // a source renamed or removed in the config: its rows are history
        }
        if (other) {
          return core::fail(core::ErrorCode::config,
                            fmt::format("sources '{}' and '{}' both cover {}", *other, src->name,
                                        entry.path),
                            fmt::format("every file must belong to exactly one source: make the "
                                        "paths disjoint in the config (if '{}' no longer covers "
                                        "it, run `maildsar index --source {}` first)",
                                        *other, *other));
        }
      }
      if (options.full == FullScan::yes && old != nullptr) {
        t = Transition::changed;
      }
      if (t == Transition::unchanged) {
        return {};
      }
      Job job;
      job.transition = t;
      if (auto loaded = old_files.find(entry.path); loaded != old_files.end()) {
        job.old = std::make_unique<FileRecord>(loaded->second); // a log's, loaded whole above
      } else if (old != nullptr) {
        MAILDSAR_TRY_ASSIGN(std::optional<FileRecord> whole, catalog.file(old->id));
        if (!whole) {
          return core::fail(core::ErrorCode::internal,
                            fmt::format("{}: its catalog row vanished during the run", entry.path));
        }
        job.old = std::make_unique<FileRecord>(std::move(*whole));
      }
      job.entry = std::move(entry);
      jobs.push_back(std::move(job));
      return {};
    };
    auto give_up = [&](core::Status st) -> core::Status {
      MAILDSAR_TRY(writer.abandon());
      return st;
    };
    ListSink list_sink;
    // The listing failed as a whole: report it and keep the source's documents.
    auto unlisted = [&](const core::Error &e) -> core::Status {
      writer.report(src->name, ScanError{src->path, {}, e.message}, sum);
      return keep_items();
    };
    // A source the catalog has no file of (a first index): nothing can have vanished, so its
    // files are read while they are listed, in parts of k_stream_jobs, and the listing is never
    // held whole (400,000 Maildir files were ~130 MB: docs/performance.md). A source the
    // catalog knows is classified while listed (the listing is not held either), but nothing is
    // read or written before the listing is complete: vanished files and the removal guard
    // are decided on all of it.
    const bool read_while_listing = old_briefs.empty() && !logs;
    if (read_while_listing && options.full == FullScan::yes) {
      MAILDSAR_TRY(writer.drop_source(src->name, source_id, old_briefs));
    }
    const std::size_t part_files =
        options.stream_part_files != 0 ? options.stream_part_files : k_stream_jobs;
    std::uint64_t listed_files = 0;
    core::Status failed;
    ProgressBase base;
    auto read_part = [&]() -> core::Status {
      auto st = index_files(*connector, src->name, source_id, jobs, ctx, workers, writer, options,
                            sum, base);
      base.done += jobs.size();
      jobs.clear();
      return st;
    };
    auto listed = connector->each_file(list_sink, [&](FileEntry &&entry) {
      if (!failed) {
        return; // the run stops: the rest of the listing is not read
      }
      ++listed_files;
      failed = admit(std::move(entry));
      if (read_while_listing && failed && jobs.size() >= part_files) {
        failed = read_part();
      }
    });
    if (read_while_listing && failed) {
      failed = read_part();
    }
    if (!failed) {
      return std::unexpected(give_up(std::move(failed)).error());
    }
    for (ScanError &e : list_sink.take()) {
      writer.report(src->name, std::move(e), sum);
    }
    sum.skipped = list_sink.skipped_counts();
    sum.files = listed_files;
    if (!listed) {
      // Files read before the failure stay; the source did not succeed (its layout and last
      // success are not recorded).
      MAILDSAR_TRY(unlisted(listed.error()));
      continue;
    }
    if (!read_while_listing) {
      if (guarded) {
        const std::size_t gone = old_briefs.size() - listed_old;
        if (std::string why = removal_hold(config, listed_files, gone, old_briefs.size());
            !why.empty()) {
          MAILDSAR_TRY(hold_source(std::move(why)));
          continue;
        }
      }
      if (options.full == FullScan::yes) {
        MAILDSAR_TRY(writer.drop_source(src->name, source_id, old_briefs));
        for (Job &job : jobs) {
          if (job.old) {
            job.old->status = FileStatus::pending; // as drop_source marked its record
          }
        }
      }
      std::unordered_set<std::string> moved_gone;
      if (options.full == FullScan::no && logs) {
        MAILDSAR_TRY(follow_rotation(src->name, source_id, old_files, present, jobs, writer, sum,
                                     moved_gone));
      }
      for (const auto &[path, brief] : old_briefs) {
        if (!brief.listed && !moved_gone.contains(path)) {
          FileRecord rec;
          rec.id = brief.id;
          rec.source_id = source_id;
          rec.path = path;
          MAILDSAR_TRY(writer.vanish(src->name, rec, sum));
        }
      }
      if (logs && !options.edited_in_place.empty() && options.full == FullScan::no) {
        // Logs that erasure edited in place: only their edited blocks are built again.
        std::vector<Job> rest;
        for (Job &job : jobs) {
          auto edited = options.edited_in_place.find(job.entry.path);
          bool patched = false;
          if (job.transition == Transition::changed && edited != options.edited_in_place.end()) {
            auto done = writer.patch_log(source_id, job, edited->second, ctx, sum);
            if (!done) {
              MAILDSAR_TRY(writer.abandon());
              return std::unexpected(done.error());
            }
            patched = *done;
          }
          if (!patched) {
            rest.push_back(std::move(job));
          }
        }
        jobs = std::move(rest);
      }
      if (auto st = read_part(); !st) {
        return std::unexpected(give_up(std::move(st)).error());
      }
    }
    succeeded.push_back(source_id);
    if (layout && sum.errors == 0) {
      // Recorded (with the final commit) only if the layout did not change while the files
      // were read, and has settled by now.
      MAILDSAR_TRY_ASSIGN(std::optional<connectors::LayoutDigest> after,
                          connector->layout_fingerprint());
      if (after && after->settled && after->digest == layout->digest) {
        layouts.push_back(Layout{source_id, std::move(after->digest), sum.files});
      }
    }
    summary.errors += sum.errors;
    summary.warnings += sum.warnings;
    summary.truncated += sum.truncated;
    summary.suppressed += sum.suppressed;
    summary.sources.push_back(std::move(sum));
  }
  if (auto st = writer.commit_batch(); !st) {
    MAILDSAR_TRY(writer.abandon());
    return std::unexpected(st.error());
  }
  MAILDSAR_TRY(compact_after_bulk_write(store, writer.docs_written()));
  bool changed_nothing = std::all_of(summary.sources.begin(), summary.sources.end(), [](const auto &x) {
    return x.new_items + x.changed + x.removed + x.moved + x.errors == 0;
  });
  if (changed_nothing) {
    MAILDSAR_TRY(catalog.relax_durability());
  }
  {
    MAILDSAR_TRY_ASSIGN(auto tx, catalog.begin());
    auto now = static_cast<std::int64_t>(std::time(nullptr));
    for (std::int64_t id : succeeded) {
      MAILDSAR_TRY(catalog.set_last_success(id, now));
    }
    for (const core::SourceConfig *src : selected) {
      // What the index now holds was searched with this configuration of the source (`find`
      // refuses to answer for a source whose configuration was never indexed).
      MAILDSAR_TRY_ASSIGN(std::int64_t id, catalog.source_id(src->name, src->type));
      if (std::ranges::find(succeeded, id) != succeeded.end()) {
        MAILDSAR_TRY(catalog.set_origin(id, source_origin(*src)));
      }
    }
    for (const Layout &l : layouts) {
      MAILDSAR_TRY(catalog.set_layout(l.source_id, l.digest, l.files));
    }
    MAILDSAR_TRY(tx.commit());
  }
  {
    // Counting the item rows costs tens of milliseconds on a large source: a source skipped by
    // the layout shortcut reuses the count recorded by the run that last changed it.
    MAILDSAR_TRY_ASSIGN(auto tx, catalog.begin());
    auto now = static_cast<std::int64_t>(std::time(nullptr));
    for (SourceSummary &sum : summary.sources) {
      MAILDSAR_TRY_ASSIGN(std::int64_t id, catalog.source_id(sum.name, sum.type));
      if (unchanged_sources.contains(id)) {
        MAILDSAR_TRY_ASSIGN(sum.items, catalog.recorded_item_count(id));
        MAILDSAR_TRY_ASSIGN(std::string skipped, catalog.recorded_skipped(id));
        sum.skipped = decode_skipped(skipped);
      } else {
        MAILDSAR_TRY_ASSIGN(sum.items, catalog.item_count(id));
        MAILDSAR_TRY(catalog.record_item_count(id, sum.items));
        MAILDSAR_TRY(catalog.record_skipped(id, encode_skipped(sum.skipped)));
      }
      MAILDSAR_TRY(catalog.record_run(id, now, sum.errors, sum.held_removal)); // `maildsar status`
    }
    MAILDSAR_TRY(tx.commit());
  }
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

} // namespace maildsar::index
