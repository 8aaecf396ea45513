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
#include <memory>
#include <span>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace maildsar::query {

namespace {

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

/** True when `text` holds a byte >= 0x80 or one of the lower-case ASCII `needles`, ignoring case. */
bool may_hold(std::string_view text, const std::vector<std::string> &needles) {
  if (std::ranges::any_of(text, [](char c) { return static_cast<unsigned char>(c) >= 0x80U; })) {
    return true; // case folding of other scripts may give ASCII: no shortcut
  }
  return std::ranges::any_of(needles, [&](const std::string &needle) {
    auto hit = std::ranges::search(text, needle, [](char a, char b) {
      return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
    });
    return !hit.empty();
  });
}

/** Whether a transaction can hold an identifier with one of `needles` (see set_needles). */
bool may_match(const connectors::Item &item, const std::vector<std::string> &needles) {
  if (needles.empty()) {
    return true;
  }
  return std::ranges::any_of(item.texts, [&](const connectors::RawText &t) { return may_hold(t.text, needles); }) ||
         std::ranges::any_of(item.addresses, [&](const connectors::RawAddress &a) {
           return may_hold(a.addr, needles) || may_hold(a.name, needles);
         });
}

} // namespace

LogExpander::LogExpander(const core::Config &config)
    : m_config(config), m_db(std::string(), Xapian::DB_BACKEND_INMEMORY) {}

core::Status LogExpander::add(std::string_view data) {
  MAILDSAR_TRY_ASSIGN(index::LogBlock block, index::parse_log_block(data));
  auto src = std::find_if(m_config.sources.begin(), m_config.sources.end(),
                          [&](const core::SourceConfig &s) { return s.name == block.source; });
  if (src == m_config.sources.end()) {
    return core::fail(core::ErrorCode::not_indexed,
                      fmt::format("the index holds log blocks of source '{}', which the config no "
                                  "longer defines",
                                  block.source),
                      "run maildsar index");
  }
  m_pending.push_back(std::move(block));
  return {};
}

core::Status LogExpander::finish() {
  std::vector<index::LogBlock> blocks = std::move(m_pending);
  m_pending.clear();
  std::sort(blocks.begin(), blocks.end(), [](const index::LogBlock &a, const index::LogBlock &b) {
    return std::tie(a.source, a.path, a.from) < std::tie(b.source, b.path, b.from);
  });
  for (std::size_t first = 0; first < blocks.size();) {
    std::size_t last = first;
    while (last < blocks.size() && blocks[last].source == blocks[first].source &&
           blocks[last].path == blocks[first].path) {
      ++last;
    }
    MAILDSAR_TRY(read_file(std::span<const index::LogBlock>(blocks).subspan(first, last - first)));
    first = last;
  }
  return {};
}

core::Status LogExpander::read_file(std::span<const index::LogBlock> blocks) {
  const index::LogBlock &any = blocks.front();
  const core::SourceConfig &src = *std::find_if(
      m_config.sources.begin(), m_config.sources.end(),
      [&](const core::SourceConfig &s) { return s.name == any.source; });
  // The blocks' own lines first, all in one pass over the file (a compressed log is
  // decompressed once for all of them, from the restart point before each block when the
  // catalog has restart points for it).
  std::vector<std::unique_ptr<index::BlockCollector>> collectors;
  std::vector<connectors::LogRange> ranges;
  for (const index::LogBlock &block : blocks) {
    connectors::LogRange range;
    range.from = block.from;
    range.to = block.to;
    range.lines_before = block.line;
    range.mtime_ns = block.mtime_ns;
    ranges.push_back(range);
  }
  // With needles, a block whose transactions have checks is read for the lines that can hold
  // one (connectors RangeScanner): a fraction of its lines.
  auto scan = [&](std::string_view gz_points, bool filter) -> core::Status {
    collectors.clear();
    std::vector<connectors::ItemSink *> sinks;
    for (const index::LogBlock &block : blocks) {
      collectors.push_back(std::make_unique<index::BlockCollector>(block, filter ? &m_needles : nullptr));
      sinks.push_back(collectors.back().get());
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
  // The selected lines are checked transaction by transaction; that nothing else moved into or
  // out of the blocks' ranges, only a file as it was indexed (or grown at its end) says.
  core::Status scanned = scan(gz_points, !m_needles.empty() && as_indexed);
  if ((!scanned || !all_complete()) &&
      std::ranges::any_of(collectors, [](const auto &c) { return c->was_filtered(); })) {
    // A transaction read from the selected lines is not the one indexed: every line again.
    MAILDSAR_LOG_DEBUG("query: log {}: read again, every line of the blocks", any.path);
    scanned = scan(gz_points, false);
  }
  if (!gz_points.empty() && (!scanned || !all_complete())) {
    // Restart points that do not fit the file (stale or damaged): never an answer from them.
    MAILDSAR_LOG_DEBUG("query: log {}: read again from its start (restart points unusable)", any.path);
    scanned = scan({}, false);
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
    return std::tie(blocks[a].seg_from, blocks[a].seg_to, blocks[a].seg_line, blocks[a].mtime_ns) ==
           std::tie(blocks[b].seg_from, blocks[b].seg_to, blocks[b].seg_line, blocks[b].mtime_ns);
  };
  for (std::size_t first = 0; first < again.size();) {
    std::size_t last = first + 1;
    while (last < again.size() && same_segment(again[first], again[last])) {
      ++last;
    }
    SegmentCollector segment;
    for (std::size_t k = first; k < last; ++k) {
      collectors[again[k]] = std::make_unique<index::BlockCollector>(blocks[again[k]], nullptr);
      segment.add(collectors[again[k]].get(), blocks[again[k]]);
    }
    const index::LogBlock &block = blocks[again[first]];
    connectors::LogRange range;
    range.from = block.seg_from;
    range.to = block.seg_to;
    range.lines_before = block.seg_line;
    range.mtime_ns = block.mtime_ns;
    MAILDSAR_TRY(connectors::scan_log_range(src, block.path, range, segment));
    for (std::size_t k = first; k < last; ++k) {
      if (!collectors[again[k]]->complete()) {
        const index::LogBlock &changed = blocks[again[k]];
        return core::fail(core::ErrorCode::temp_fail,
                          fmt::format("log {} no longer holds the transactions indexed from it "
                                      "(lines {} and on)",
                                      changed.path, changed.first_lines.front()),
                          "it changed since the last index run: run maildsar index");
      }
    }
    first = last;
  }
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    MAILDSAR_TRY(index_items(blocks[b], collectors[b]->items));
  }
  return {};
}

core::Status LogExpander::index_items(const index::LogBlock &block, std::vector<connectors::Item> &items) {
  if (!m_normalizer) {
    m_normalizer = std::make_unique<index::Normalizer>(index::NormalizeOptions{
        m_config.identity.subaddress_separators, m_config.identity.phone_region});
    MAILDSAR_TRY(index::Normalizer::load_phone_module());
  }
  index::DocumentContext ctx{block.source, m_normalizer.get()};
  try {
    for (connectors::Item &item : items) {
      if (!may_match(item, m_needles)) {
        continue;
      }
      connectors::bound_item(item);
      if (m_visit) {
        m_visit(item, *m_normalizer);
        continue;
      }
      index::BuiltDocument built = index::build_document(item, ctx);
      m_db.replace_document(built.doc.key(), built.doc.xapian());
      ++m_docs;
    }
  } catch (...) {
    return std::unexpected(core::error_from_current_exception(fmt::format("log {}: ", block.path)));
  }
  return {};
}

core::Result<std::vector<Hit>> lookup_term(const core::Config &config, Xapian::Database &db,
                                           const std::string &term) {
  std::vector<Hit> hits;
  LogExpander logs(config);
  const std::string hashed = index::schema::block_term(term); // as log blocks hold it
  for (const std::string &t : hashed == term ? std::vector<std::string>{term}
                                             : std::vector<std::string>{term, hashed}) {
    for (Xapian::PostingIterator p = db.postlist_begin(t); p != db.postlist_end(t); ++p) {
      Xapian::Document doc = db.get_document(*p);
      const std::string data = doc.get_data();
      if (index::is_log_block_data(data)) {
        MAILDSAR_TRY(logs.add(data));
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
    MAILDSAR_TRY_ASSIGN(std::vector<Hit> more, lookup_term(config, logs.db(), term));
    hits.insert(hits.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  return hits;
}

} // namespace maildsar::query
