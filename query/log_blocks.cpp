// SPDX-License-Identifier: GPL-3.0-or-later
#include "query/log_blocks.hpp"

#include "connectors/limits.hpp"
#include "connectors/log_range.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "connectors/maillog.hpp"
#include "indexer/catalog.hpp"
#include "indexer/document.hpp"
#include "indexer/index_store.hpp"
#include "indexer/indexer.hpp"
#include "indexer/log_block.hpp"
#include "indexer/schema.hpp"
#include "query/index_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace maildsar::query {

namespace {

/** Logs read at the same time by one query (LogExpander::finish). */
constexpr std::size_t k_read_threads = 2;

/** One scan of a segment for several blocks: each transaction goes to the block that holds it. */
class SegmentCollector final : public connectors::LogSink {
public:
  void add(index::BlockCollector *block, const index::LogBlock &data) {
    m_blocks.push_back(block);
    for (std::uint64_t line : data.first_lines) {
      m_owner.emplace(line, block);
    }
  }
  [[nodiscard]] bool wants(std::uint64_t first_line) const override { return owner(first_line) != nullptr; }
  void started(std::uint64_t lines_before) override {
    for (index::BlockCollector *b : m_blocks) {
      b->started(lines_before);
    }
  }
  void log_item(connectors::Item &&item, connectors::LogSpan span) override {
    if (index::BlockCollector *b = item.locator.lines.empty() ? nullptr : owner(item.locator.lines.front())) {
      b->log_item(std::move(item), span);
    }
  }
  void error(connectors::ScanError && /*error*/) override {} // reported when it was indexed

private:
  [[nodiscard]] index::BlockCollector *owner(std::uint64_t first_line) const {
    auto it = m_owner.find(first_line);
    return it == m_owner.end() ? nullptr : it->second;
  }
  std::vector<index::BlockCollector *> m_blocks;
  std::unordered_map<std::uint64_t, index::BlockCollector *> m_owner; // first line -> its block
};

/**
 * True when the log at `path` is as its last complete scan saw it: the same size and mtime, or
 * (a plain file) grown at its end with the same head and the same bytes at its old end, as the
 * index itself tells an appended log from a rewritten one.
 */
bool unchanged_since_indexed(const std::string &path, const index::LogFileState &state) {
  auto st = core::lstat_file(path);
  if (!st) {
    return false;
  }
  if (st->size == state.size && st->mtime_ns == state.mtime_ns) {
    return true;
  }
  if (!state.gz_points.empty() || st->size <= state.size || state.content_size != state.size) {
    return false; // compressed (a probe would decompress it all), shrunk, or not a plain file
  }
  auto probe = connectors::probe_content(path, state.content_size);
  return probe && !probe->compressed && probe->size >= state.content_size &&
         probe->mark_fingerprint == state.content_tail &&
         index::head_fingerprint_of(probe->head, state.content_size) == state.head_fingerprint;
}

/** Whether a transaction can hold an identifier with one of `needles` (see set_needles). */
bool may_match(const connectors::Item &item, const std::vector<std::string> &needles) {
  if (needles.empty()) {
    return true;
  }
  return std::ranges::any_of(item.texts,
                             [&](const connectors::RawText &t) { return connectors::holds_needle(t.text, needles); }) ||
         std::ranges::any_of(item.addresses, [&](const connectors::RawAddress &a) {
           return connectors::holds_needle(a.addr, needles) || connectors::holds_needle(a.name, needles);
         });
}

} // namespace

LogExpander::LogExpander(const core::Config &config) : m_config(config) {}

core::Status LogExpander::add(std::string_view data, std::uint32_t mask, bool suppressed) {
  if (suppressed && !m_suppression) {
    MAILDSAR_TRY_ASSIGN(m_suppression, index::SuppressionList::load(m_config));
  }
  m_pending.push_back(Raw{std::string(data), mask, suppressed}); // parsed by finish(), on its threads
  return {};
}

namespace {

/**
 * Calls `fn(i, worker)` for each i in [0, count) on up to k_read_threads threads (this one
 * among them); `worker` (< k_read_threads) tells the thread. `fn` must not throw.
 */
template <class Fn> void on_threads(std::size_t count, Fn &&fn) {
  std::atomic<std::size_t> next{0};
  auto work = [&](std::size_t worker) {
    for (std::size_t i = next++; i < count; i = next++) {
      fn(i, worker);
    }
  };
  const std::size_t threads =
      std::min<std::size_t>({k_read_threads, count, std::max(1U, std::thread::hardware_concurrency())});
  std::vector<std::thread> helpers;
  for (std::size_t t = 1; t < threads; ++t) {
    try {
      helpers.emplace_back(work, t);
    } catch (const std::system_error &e) { // no thread to be had (a limit): fewer, same answer
      MAILDSAR_LOG_DEBUG("query: logs read on {} thread(s): {}", helpers.size() + 1, e.what());
      break;
    }
  }
  work(0);
  for (std::thread &t : helpers) {
    t.join();
  }
}

} // namespace

core::Status LogExpander::finish() {
  if (!m_visit && m_expanded) {
    // db() numbers the documents of its databases by their count: it cannot take more later
    return core::fail(core::ErrorCode::internal, "query: log transactions expanded twice into one database");
  }
  std::vector<Raw> raw = std::move(m_pending);
  m_pending.clear();
  // The blocks' data (JSON, a few hundred bytes each) parsed on the threads too.
  std::vector<Pending> blocks(raw.size());
  std::vector<core::Status> parsed(raw.size());
  on_threads(raw.size(), [&](std::size_t i, std::size_t /*worker*/) {
    try {
      auto block = index::parse_log_block(raw[i].data);
      if (!block) {
        parsed[i] = std::unexpected(block.error());
        return;
      }
      blocks[i] = Pending{std::move(*block), raw[i].mask, raw[i].suppressed};
      raw[i].data.clear();
    } catch (...) {
      parsed[i] = std::unexpected(core::error_from_current_exception("query: log block: "));
    }
  });
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    MAILDSAR_TRY(parsed[i]);
    const std::string &source = blocks[i].block.source;
    if (std::ranges::none_of(m_config.sources, [&](const core::SourceConfig &s) { return s.name == source; })) {
      return core::fail(core::ErrorCode::not_indexed,
                        fmt::format("the index holds log blocks of source '{}', which the config no "
                                    "longer defines",
                                    source),
                        "run maildsar index");
    }
  }
  std::sort(blocks.begin(), blocks.end(), [](const Pending &a, const Pending &b) {
    return std::tie(a.block.source, a.block.path, a.block.from) < std::tie(b.block.source, b.block.path, b.block.from);
  });
  // One job per log; the logs are read on up to k_read_threads threads (reading is
  // decompressing and searching: CPU). Each thread also builds its transactions' documents
  // (build_document is thread-safe, with a normaliser of its own) into an in-memory database
  // of the log's own; db() searches them all as one.
  struct Job {
    std::span<const Pending> blocks;
    std::vector<std::vector<connectors::Item>> items;
    std::unique_ptr<Xapian::WritableDatabase> db; // without a visitor: the items' documents
    std::vector<std::pair<Xapian::docid, std::unique_ptr<index::StoredDocument>>> stored; // by docid in db
    std::vector<Hit> hits; // with a matcher: instead of db
    core::Status status;
  };
  std::vector<Job> jobs;
  for (std::size_t first = 0; first < blocks.size();) {
    std::size_t last = first;
    while (last < blocks.size() && blocks[last].block.source == blocks[first].block.source &&
           blocks[last].block.path == blocks[first].block.path) {
      ++last;
    }
    jobs.push_back(Job{std::span<const Pending>(blocks).subspan(first, last - first), {}, {}, {}, {}, {}});
    first = last;
  }
  if (jobs.empty()) {
    return {};
  }
  if (m_visit) {
    MAILDSAR_TRY(load_normalizer()); // the visitor's, with the phone module
  }
  std::vector<std::optional<index::Normalizer>> normalizers(k_read_threads); // one per thread
  on_threads(jobs.size(), [&](std::size_t j, std::size_t worker) {
    Job &job = jobs[j];
    try {
      job.status = read_file(job.blocks, job.items);
      if (!job.status || m_visit) {
        return;
      }
      if (!normalizers[worker]) {
        // The phone module loads on the first phone-like text a block holds (most delivery logs
        // have none: a search then never maps libphonenumber); if it cannot load, the
        // Normalizer throws and the catch below makes it this job's error.
        normalizers[worker].emplace(normalize_options());
      }
      std::vector<index::BuiltDocument> docs;
      for (std::size_t b = 0; job.status && b < job.blocks.size(); ++b) {
        job.status = build_documents(job.blocks[b], job.items[b], *normalizers[worker], docs);
      }
      if (m_match) {
        for (std::size_t d = 0; job.status && d < docs.size(); ++d) {
          if (std::optional<Hit> hit = m_match(docs[d])) {
            job.hits.push_back(std::move(*hit));
          }
        }
        return;
      }
      job.db = std::make_unique<Xapian::WritableDatabase>(std::string(), Xapian::DB_BACKEND_INMEMORY);
      for (index::BuiltDocument &built : docs) {
        const Xapian::docid id = job.db->replace_document(built.doc.key(), built.doc.xapian());
        job.stored.emplace_back(id, std::move(built.stored));
      }
    } catch (...) {
      job.status = std::unexpected(core::error_from_current_exception("query: log: "));
    }
  });
  std::size_t dbs = 0;
  for (Job &job : jobs) {
    MAILDSAR_TRY(job.status);
    dbs += job.db ? 1U : 0U;
  }
  std::size_t shard = 0;
  for (Job &job : jobs) {
    if (m_match) {
      m_docs += job.hits.size();
      m_hits.insert(m_hits.end(), std::make_move_iterator(job.hits.begin()), std::make_move_iterator(job.hits.end()));
      continue;
    }
    if (m_visit) {
      for (std::size_t b = 0; b < job.blocks.size(); ++b) {
        MAILDSAR_TRY(visit_items(job.blocks[b].block, job.items[b]));
      }
      continue;
    }
    if (!job.db) {
      continue;
    }
    try {
      m_expanded = true;
      m_db.add_database(*job.db);
    } catch (...) {
      return std::unexpected(core::error_from_current_exception("query: log: "));
    }
    // Xapian numbers the documents of several databases searched as one in turn: the docid
    // of document d of the shard-th of n is (d - 1) * n + shard + 1.
    for (auto &[docid, stored] : job.stored) {
      m_stored[static_cast<Xapian::docid>((docid - 1) * dbs + shard + 1)] = std::move(stored);
      ++m_docs;
    }
    ++shard;
  }
  return {};
}

core::Status LogExpander::read_file(std::span<const Pending> blocks,
                                    std::vector<std::vector<connectors::Item>> &items) const {
  const index::LogBlock &any = blocks.front().block;
  const core::SourceConfig &src = *std::find_if(
      m_config.sources.begin(), m_config.sources.end(),
      [&](const core::SourceConfig &s) { return s.name == any.source; });
  // The blocks' own lines first, all in one pass over the file (a compressed log is decompressed
  // once for all of them, from the restart point before each block when the catalog has restart
  // points for it).
  std::vector<std::unique_ptr<index::BlockCollector>> collectors(blocks.size());
  std::vector<std::size_t> all(blocks.size());
  for (std::size_t b = 0; b < all.size(); ++b) {
    all[b] = b;
  }
  // How a block is read: with needles, a block whose transactions have checks is read for the
  // lines that can hold one (connectors RangeScanner), a fraction of its lines; of a format whose
  // lines carry their transaction's key, only in the parts of the block that hold the matched
  // term (`parts`); else every line of its range (`whole`).
  enum class Read { parts, filtered, whole };
  const bool keyed = connectors::keyed_log_lines(src);
  auto scan = [&](const std::vector<std::size_t> &which, std::string_view gz_points, Read how) -> core::Status {
    std::vector<connectors::LogRange> ranges;
    std::vector<connectors::ItemSink *> sinks;
    for (std::size_t b : which) {
      const index::LogBlock &block = blocks[b].block;
      collectors[b] = std::make_unique<index::BlockCollector>(block, how == Read::whole ? nullptr : &m_needles);
      sinks.push_back(collectors[b].get());
      connectors::LogRange range;
      range.from = block.from;
      range.to = block.to;
      range.lines_before = block.line;
      range.mtime_ns = block.mtime_ns;
      if (how == Read::parts && keyed && !block.checks.empty()) {
        range.parts = index::parts_to_read(block, blocks[b].mask);
        if (!range.parts.empty()) {
          range.from = range.parts.front().from;
          range.to = range.parts.back().to;
          range.lines_before = range.parts.front().lines_before;
          collectors[b]->reads_parts_from(range.parts.front().lines_before);
        }
      }
      ranges.push_back(std::move(range));
    }
    return connectors::scan_log_ranges(src, any.path, ranges, sinks, gz_points);
  };
  std::string gz_points;
  bool as_indexed = false;
  if (auto state = index::read_log_file(index::catalog_path(m_config), any.path); state && *state) {
    gz_points = std::move((*state)->gz_points);
    as_indexed = unchanged_since_indexed(any.path, **state);
  } // else: read from the start, every line (the catalog is only a shortcut here)
  const auto all_complete = [&] {
    return std::ranges::all_of(collectors, [](const auto &c) { return c->complete(); });
  };
  const auto filtered_incomplete = [&] {
    std::vector<std::size_t> out;
    for (std::size_t b = 0; b < collectors.size(); ++b) {
      if (collectors[b]->was_filtered() && !collectors[b]->complete()) {
        out.push_back(b);
      }
    }
    return out;
  };
  // The selected lines are checked transaction by transaction; that nothing else moved into or
  // out of the blocks' ranges, only a file as it was indexed (or grown at its end) says.
  const bool filter = !m_needles.empty() && as_indexed;
  core::Status scanned = scan(all, gz_points, filter ? Read::parts : Read::whole);
  if (scanned && filter) {
    // A transaction of the block that holds a needle but not the term searched for (the local
    // part inside a longer address) may lie partly outside the parts read, and fails its check:
    // its block is read again over its whole range, still for the selected lines only.
    if (std::vector<std::size_t> again = filtered_incomplete(); !again.empty()) {
      MAILDSAR_LOG_DEBUG("query: log {}: {} block(s) read again over their whole range", any.path, again.size());
      scanned = scan(again, gz_points, Read::filtered);
    }
    if (std::vector<std::size_t> again = filtered_incomplete(); scanned && !again.empty()) {
      // A transaction read from the selected lines is not the one indexed: every line again.
      MAILDSAR_LOG_DEBUG("query: log {}: {} block(s) read again, every line", any.path, again.size());
      scanned = scan(again, gz_points, Read::whole);
    }
  }
  if (!scanned && filter) {
    MAILDSAR_LOG_DEBUG("query: log {}: read again, every line of the blocks", any.path);
    scanned = scan(all, gz_points, Read::whole);
  }
  if (!gz_points.empty() && (!scanned || !all_complete())) {
    // Restart points that do not fit the file (stale or damaged): never an answer from them.
    MAILDSAR_LOG_DEBUG("query: log {}: read again from its start (restart points unusable)", any.path);
    scanned = scan(all, {}, Read::whole);
  }
  MAILDSAR_TRY(scanned);
  // A transaction that depends on what came before the block's lines (a split at the
  // open-transactions budget, an Exchange header) needs the whole scan that indexed it: one scan
  // of each such segment for all its blocks.
  std::vector<std::size_t> again;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    if (!collectors[b]->complete()) {
      again.push_back(b);
    }
  }
  const auto same_segment = [&](std::size_t a, std::size_t b) {
    const index::LogBlock &x = blocks[a].block;
    const index::LogBlock &y = blocks[b].block;
    return std::tie(x.seg_from, x.seg_to, x.seg_line, x.mtime_ns) == std::tie(y.seg_from, y.seg_to, y.seg_line, y.mtime_ns);
  };
  for (std::size_t first = 0; first < again.size();) {
    std::size_t last = first + 1;
    while (last < again.size() && same_segment(again[first], again[last])) {
      ++last;
    }
    SegmentCollector segment;
    for (std::size_t k = first; k < last; ++k) {
      collectors[again[k]] = std::make_unique<index::BlockCollector>(blocks[again[k]].block, nullptr);
      segment.add(collectors[again[k]].get(), blocks[again[k]].block);
    }
    const index::LogBlock &block = blocks[again[first]].block;
    connectors::LogRange range;
    range.from = block.seg_from;
    range.to = block.seg_to;
    range.lines_before = block.seg_line;
    range.mtime_ns = block.mtime_ns;
    MAILDSAR_TRY(connectors::scan_log_range(src, block.path, range, segment));
    for (std::size_t k = first; k < last; ++k) {
      if (!collectors[again[k]]->complete()) {
        const index::LogBlock &changed = blocks[again[k]].block;
        return core::fail(core::ErrorCode::temp_fail,
                          fmt::format("log {} no longer holds the transactions indexed from it "
                                      "(lines {} and on)",
                                      changed.path, changed.first_lines.front()),
                          "it changed since the last index run: run maildsar index");
      }
    }
    first = last;
  }
  items.clear();
  for (auto &c : collectors) {
    items.push_back(std::move(c->items));
  }
  return {};
}

core::Status LogExpander::load_normalizer() {
  if (!m_normalizer) {
    m_normalizer = std::make_unique<index::Normalizer>(normalize_options());
    MAILDSAR_TRY(index::Normalizer::load_phone_module());
  }
  return {};
}

index::NormalizeOptions LogExpander::normalize_options() const {
  return index::NormalizeOptions{m_config.identity.subaddress_separators, m_config.identity.phone_region};
}

core::Status LogExpander::build_documents(const Pending &pending, std::vector<connectors::Item> &items,
                                          const index::Normalizer &normalizer,
                                          std::vector<index::BuiltDocument> &docs) const {
  const index::LogBlock &block = pending.block;
  index::DocumentContext ctx{block.source, &normalizer};
  ctx.stored_only = true; // read back by take_stored(), without a JSON round trip
  ctx.identities_only = static_cast<bool>(m_match); // no document: the matcher reads the identities
  // A block indexed with a flagged transaction: its transactions are flagged as the index run
  // flagged them (the same list, the same rule); those of other blocks never are.
  ctx.suppression = pending.suppressed && m_suppression ? &*m_suppression : nullptr;
  try {
    for (connectors::Item &item : items) {
      if (!may_match(item, m_needles)) {
        continue;
      }
      connectors::bound_item(item);
      docs.push_back(index::build_document(item, ctx));
    }
  } catch (...) {
    return std::unexpected(core::error_from_current_exception(fmt::format("log {}: ", block.path)));
  }
  items.clear();
  return {};
}

core::Status LogExpander::visit_items(const index::LogBlock &block, std::vector<connectors::Item> &items) {
  try {
    for (connectors::Item &item : items) {
      if (!may_match(item, m_needles)) {
        continue;
      }
      connectors::bound_item(item);
      m_visit(item, *m_normalizer);
    }
  } catch (...) {
    return std::unexpected(core::error_from_current_exception(fmt::format("log {}: ", block.path)));
  }
  return {};
}

std::unique_ptr<index::StoredDocument> LogExpander::take_stored(Xapian::docid docid) {
  auto it = m_stored.find(docid);
  return it == m_stored.end() ? nullptr : std::move(it->second);
}

namespace {

core::Result<std::vector<Hit>> lookup_term(const core::Config &config, Xapian::Database &db,
                                           const std::string &term, LogExpander *transactions) {
  std::vector<Hit> hits;
  if (transactions != nullptr) { // the re-read transactions: their data is kept beside the db
    for (Xapian::PostingIterator p = db.postlist_begin(term); p != db.postlist_end(term); ++p) {
      std::unique_ptr<index::StoredDocument> stored = transactions->take_stored(*p);
      if (!stored) {
        return core::fail(core::ErrorCode::internal, "query: a re-read log transaction without its data");
      }
      hits.push_back(hit_of(key_term_of(db.get_document(*p)), *stored));
    }
    return hits;
  }
  LogExpander logs(config);
  // A flag of suppression on restore: the blocks' transactions are flagged again as indexed.
  const bool suppressed = term.starts_with(index::schema::prefix_for("suppressed"));
  const std::string hashed = index::schema::block_term(term); // as log blocks hold it
  for (const std::string &t : hashed == term ? std::vector<std::string>{term}
                                             : std::vector<std::string>{term, hashed}) {
    for (Xapian::PostingIterator p = db.postlist_begin(t); p != db.postlist_end(t); ++p) {
      Xapian::Document doc = db.get_document(*p);
      const std::string data = doc.get_data();
      if (index::is_log_block_data(data)) {
        MAILDSAR_TRY(logs.add(data, p.get_wdf(), suppressed));
        continue;
      }
      if (t != term) {
        continue; // only log blocks hold hashed terms
      }
      MAILDSAR_TRY_ASSIGN(index::StoredDocument stored, index::parse_document_data(data));
      hits.push_back(hit_of(key_term_of(doc), stored));
    }
  }
  MAILDSAR_TRY(logs.finish());
  if (!logs.empty()) {
    MAILDSAR_TRY_ASSIGN(std::vector<Hit> more, lookup_term(config, logs.db(), term, &logs));
    hits.insert(hits.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  return hits;
}

} // namespace

core::Result<std::vector<Hit>> lookup_term(const core::Config &config, Xapian::Database &db,
                                           const std::string &term) {
  return lookup_term(config, db, term, nullptr);
}

} // namespace maildsar::query
