// SPDX-License-Identifier: GPL-3.0-or-later
#include "query/log_blocks.hpp"

#include "connectors/limits.hpp"
#include "connectors/log_range.hpp"
#include "indexer/document.hpp"
#include "indexer/index_store.hpp"
#include "indexer/log_block.hpp"
#include "indexer/schema.hpp"
#include "query/index_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <span>
#include <tuple>
#include <vector>

namespace maildsar::query {

namespace {

/** Keeps the transactions of one block (by first line) and their digest. */
class BlockCollector final : public connectors::ItemSink {
public:
  explicit BlockCollector(const index::LogBlock &block) : m_block(block) {}

  void item(connectors::Item &&item) override {
    if (item.locator.lines.empty() ||
        !std::binary_search(m_block.first_lines.begin(), m_block.first_lines.end(),
                            item.locator.lines.front())) {
      return; // another block's transaction, or a part of one that began before the range
    }
    m_digest.add(item);
    items.push_back(std::move(item));
  }
  void error(connectors::ScanError && /*error*/) override {} // reported when it was indexed

  [[nodiscard]] bool complete() const {
    return items.size() == m_block.first_lines.size() && m_digest.hex() == m_block.digest;
  }

  std::vector<connectors::Item> items;

private:
  const index::LogBlock &m_block;
  index::BlockDigest m_digest;
};

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
  // decompressed once for all of them).
  std::vector<std::unique_ptr<BlockCollector>> collectors;
  std::vector<connectors::ItemSink *> sinks;
  std::vector<connectors::LogRange> ranges;
  for (const index::LogBlock &block : blocks) {
    collectors.push_back(std::make_unique<BlockCollector>(block));
    sinks.push_back(collectors.back().get());
    connectors::LogRange range;
    range.from = block.from;
    range.to = block.to;
    range.lines_before = block.line;
    range.mtime_ns = block.mtime_ns;
    ranges.push_back(range);
  }
  MAILDSAR_TRY(connectors::scan_log_ranges(src, any.path, ranges, sinks));
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const index::LogBlock &block = blocks[b];
    std::vector<connectors::Item> items;
    if (collectors[b]->complete()) {
      items = std::move(collectors[b]->items);
    } else {
      // A transaction depends on what came before the block's lines (a split at the
      // open-transactions budget, an Exchange header): the whole scan that indexed it.
      BlockCollector again(block);
      connectors::LogRange range;
      range.from = block.seg_from;
      range.to = block.seg_to;
      range.lines_before = block.seg_line;
      range.mtime_ns = block.mtime_ns;
      MAILDSAR_TRY(connectors::scan_log_range(src, block.path, range, again));
      if (!again.complete()) {
        return core::fail(core::ErrorCode::temp_fail,
                          fmt::format("log {} no longer holds the transactions indexed from it "
                                      "(lines {} and on)",
                                      block.path, block.first_lines.front()),
                          "it changed since the last index run: run maildsar index");
      }
      items = std::move(again.items);
    }
    MAILDSAR_TRY(index_items(block, items));
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
