// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/log_index.hpp"

#include "connectors/limits.hpp"
#include "connectors/log_range.hpp"
#include "connectors/maillog.hpp"
#include "core/fs.hpp"
#include "indexer/log_block.hpp"
#include "indexer/schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace maildsar::index::pipeline {

using connectors::Item;

namespace {

/** One transaction of a block being built: its terms and where its lines lie. */
struct BlockTxn {
  std::vector<std::string> terms;
  std::vector<std::uint64_t> lines;
  std::vector<std::uint64_t> begins;
};

/**
 * A block's document and catalog row, for the writer: the parts of the block (divide_block),
 * and each of its transactions' terms, hashed, with the mask of the parts holding the
 * transactions that have it as the term's wdf.
 */
MsgDoc block_message(std::size_t job, const std::string &source, LogBlock &block,
                     const std::vector<BlockTxn> &txns) {
  std::vector<TxnLines> where;
  where.reserve(txns.size());
  for (const BlockTxn &t : txns) {
    where.push_back(TxnLines{t.lines, t.begins});
  }
  const std::vector<std::uint32_t> masks = divide_block(block, where);
  MsgDoc msg{job, {}, block.first_lines};
  PreparedDocument &doc = msg.doc.doc;
  doc.set_key(schema::unique_term(source, block.key()));
  std::unordered_map<std::string, std::uint32_t> hashed;
  for (std::size_t i = 0; i < txns.size(); ++i) {
    for (const std::string &t : txns[i].terms) {
      hashed[schema::block_term(t)] |= masks[i];
    }
  }
  for (const auto &[t, mask] : hashed) {
    if (block.parts.empty()) {
      doc.add_boolean_term(t);
    } else {
      doc.add_term(t, mask);
    }
  }
  doc.add_boolean_term(schema::log_block_term());
  doc.set_data(log_block_data(block));
  msg.doc.record.locator_key = block.key();
  msg.doc.record.sha256 = block.digest;
  msg.doc.record.offset = block.from;
  msg.doc.record.length = block.to - block.from;
  msg.doc.record.n = block.first_lines.size();
  return msg;
}

/**
 * Turns a log scan into block documents (indexer/log_block.hpp): transactions in the order the
 * connector gives them, at most k_block_items per block and lines spanning at most
 * k_block_span_bytes. A block's document holds the union of its transactions' terms as boolean
 * terms; memory is one block's items' terms, whatever the size of the log.
 */
class BlockSink final : public connectors::LogSink {
public:
  BlockSink(Queue &queue, std::size_t job, const DocumentContext &ctx, const FileEntry &entry,
            std::uint64_t seg_from, std::uint64_t seg_to)
      : m_queue(queue), m_job(job), m_ctx(ctx) {
    m_terms_ctx.terms_only = true;
    m_block.source = ctx.source;
    m_block.path = entry.path;
    m_block.seg_from = seg_from;
    m_block.seg_to = seg_to;
    m_block.mtime_ns = entry.stat.mtime_ns;
  }

  void started(std::uint64_t lines_before) override { m_block.seg_line = lines_before; }

  void log_item(Item &&item, connectors::LogSpan span) override {
    if (m_queue.closed()) {
      return;
    }
    connectors::bound_item(item);
    std::vector<std::string> terms;
    try {
      BuiltDocument built = build_document(item, m_terms_ctx);
      terms = built.doc.take_terms(); // all but the role-scoped ones (terms_only)
      std::erase(terms, built.doc.key());
      m_suppressed += built.suppressed.empty() ? 0U : 1U;
    } catch (...) {
      core::Error e = core::error_from_current_exception();
      m_queue.push(MsgError{m_job, ScanError{item.locator.path, position_of(item), e.message}});
      return;
    }
    for (std::vector<std::string> *notes : {&item.truncated, &item.bounded}) {
      for (std::string &note : *notes) {
        m_queue.push(MsgWarning{m_job, ScanError{item.locator.path, position_of(item), note}});
      }
    }
    const std::uint64_t first = item.locator.lines.empty() ? 0 : item.locator.lines.front();
    if (m_count > 0 && (std::max(m_to, span.end) - std::min(m_from, span.begin) > k_block_span_bytes)) {
      flush();
    }
    if (m_count == 0 || span.begin < m_from) {
      m_from = span.begin;
      m_line = first > 0 ? first - 1 : 0;
    }
    if (m_count == 0 || span.end > m_to) {
      m_to = span.end;
    }
    ++m_count;
    m_lines.push_back(first);
    m_digest.add(item);
    m_truncated = m_truncated || !item.truncated.empty();
    m_whole = m_whole && item.truncated.empty() && item.bounded.empty();
    std::sort(terms.begin(), terms.end());
    terms.erase(std::unique(terms.begin(), terms.end()), terms.end());
    m_txns.push_back(BlockTxn{std::move(terms), item.locator.lines, std::move(span.line_begins)});
    if (m_count >= (m_ctx.log_block_items > 0 ? m_ctx.log_block_items : k_block_items)) {
      flush();
    }
  }

  void error(ScanError &&error) override { m_queue.push(MsgError{m_job, std::move(error)}); }

  /** The scan is over: the last block goes. */
  void finish() { flush(); }

private:
  static std::string position_of(const Item &item) {
    return item.locator.lines.empty() ? std::string() : fmt::format("line {}", item.locator.lines.front());
  }



  void flush() {
    if (m_count == 0) {
      return;
    }
    LogBlock block = m_block;
    block.from = m_from;
    block.to = m_to;
    block.line = m_line;
    std::sort(m_lines.begin(), m_lines.end());
    block.first_lines = m_lines;
    block.digest = m_digest.hex();
    block.truncated = m_truncated;
    if (m_whole) {
      block.checks = m_digest.checks();
    }
    MsgDoc msg = block_message(m_job, m_ctx.source, block, m_txns);
    msg.suppressed = m_suppressed;
    m_queue.push(std::move(msg));
    m_suppressed = 0;
    m_txns.clear();
    m_lines = {};
    m_digest = BlockDigest{};
    m_count = 0;
    m_truncated = false;
    m_whole = true;
  }

  Queue &m_queue;
  std::size_t m_job;
  const DocumentContext &m_ctx;
  DocumentContext m_terms_ctx = m_ctx; // the same, for terms only
  LogBlock m_block; // the fields every block of this scan shares
  std::vector<BlockTxn> m_txns; // hashed once per block (flush)
  std::vector<std::uint64_t> m_lines;
  BlockDigest m_digest;
  std::size_t m_count = 0;
  std::uint64_t m_from = 0;
  std::uint64_t m_to = 0;
  std::uint64_t m_line = 0;
  bool m_truncated = false;
  bool m_whole = true; // no transaction of the block cut or split at a limit
  std::uint64_t m_suppressed = 0; // transactions of the block that show an erased subject
};

} // namespace

/** The marks of a log just scanned in full (plain: up to the listed size). Empty on failure. */
ContentMarks content_marks(const FileEntry &entry) {
  ContentMarks marks;
  auto probe = connectors::probe_content(entry.path, entry.stat.size);
  if (!probe) {
    return marks;
  }
  if (probe->compressed) {
    marks.content_size = probe->size;
    marks.content_tail = probe->end_fingerprint;
  } else if (!probe->mark_fingerprint.empty()) {
    marks.content_size = entry.stat.size;
    marks.content_tail = probe->mark_fingerprint;
  } else {
    return marks; // shrank under us: no marks, so never taken for an origin
  }
  if (marks.content_size == 0 ||
      probe->head.size() < std::min<std::uint64_t>(marks.content_size,
                                                    connectors::k_content_probe_bytes)) {
    return ContentMarks{};
  }
  marks.head_fingerprint = head_fingerprint_of(probe->head, marks.content_size);
  marks.gz_points = std::move(probe->gz_points);
  return marks;
}

core::Status scan_log_blocks(const Job &job, std::size_t index, Queue &queue,
                             const DocumentContext &ctx, ScanMode &mode, std::uint64_t &from) {
  // Logs: blocks of transactions (see log_block.hpp), read up to the size listed (plain).
  auto scan_log = [&](std::uint64_t at) {
    std::uint64_t to = connectors::k_content_end;
    if (auto head = core::open_read(job.entry.path);
        head && core::read_range(head->get(), 0, 2, job.entry.path).value_or("") != "\x1f\x8b") {
      to = job.entry.stat.size;
    }
    BlockSink sink(queue, index, ctx, job.entry, at, to);
    connectors::LogRange range;
    range.from = at;
    range.to = to;
    range.lines_before = at == 0 ? std::optional<std::uint64_t>(0) : std::nullopt;
    range.mtime_ns = job.entry.stat.mtime_ns;
    core::Status done = connectors::scan_log_range(*ctx.log_source, job.entry.path, range, sink);
    if (done) {
      sink.finish();
    }
    return done;
  };
  queue.push(MsgBegin{index, mode, from});
  core::Status st = scan_log(from);
  if (!st && mode == ScanMode::append && st.error().code == core::ErrorCode::data) {
    mode = ScanMode::full;
    from = 0;
    queue.push(MsgBegin{index, mode, from});
    st = scan_log(0);
  }
  return st;
}

core::Result<bool> old_block_lines(IndexStore &store, const ItemRecord &row,
                                   std::unordered_set<std::uint64_t> &lines) {
  if (row.locator_key.find("##block@") == std::string::npos) {
    return false;
  }
  MAILDSAR_TRY_ASSIGN(std::optional<std::string> data, store.document_data(row.qterm));
  if (!data || !is_log_block_data(*data)) {
    return false; // the document is gone (an earlier crash): counted like any other row
  }
  MAILDSAR_TRY_ASSIGN(LogBlock block, parse_log_block(*data));
  lines.insert(block.first_lines.begin(), block.first_lines.end());
  return true;
}

core::Result<std::optional<MsgDoc>> rebuild_log_block(IndexStore &store, const ItemRecord &row,
                                                     const DocumentContext &ctx, const FileEntry &entry) {
  MAILDSAR_TRY_ASSIGN(std::optional<std::string> data, store.document_data(row.qterm));
  if (!data || !is_log_block_data(*data)) {
    return std::nullopt;
  }
  MAILDSAR_TRY_ASSIGN(LogBlock block, parse_log_block(*data));
  if (block.checks.empty() || block.path != entry.path || !connectors::keyed_log_lines(*ctx.log_source)) {
    // a transaction cut or split at a limit, or one of a format whose lines depend on others
    // (an Exchange #Fields: header, continuation lines), depends on more than the block's range
    return std::nullopt;
  }
  BlockCollector reread(block); // its items only: the log was edited, the digest differs
  connectors::LogRange range;
  range.from = block.from;
  range.to = block.to;
  range.lines_before = block.line;
  range.mtime_ns = block.mtime_ns; // the dates as they were indexed
  MAILDSAR_TRY(connectors::scan_log_range(*ctx.log_source, entry.path, range, reread));
  if (reread.items.size() != block.first_lines.size()) {
    return std::nullopt; // not the same transactions (a key rewritten?): read the log whole
  }
  DocumentContext terms_ctx = ctx;
  terms_ctx.terms_only = true;
  std::vector<BlockTxn> txns;
  BlockDigest digest;
  block.truncated = false;
  for (std::size_t i = 0; i < reread.items.size(); ++i) {
    Item &item = reread.items[i];
    connectors::bound_item(item);
    if (!item.truncated.empty() || !item.bounded.empty()) {
      return std::nullopt;
    }
    BuiltDocument built = build_document(item, terms_ctx);
    std::vector<std::string> t = built.doc.take_terms();
    std::erase(t, built.doc.key());
    txns.push_back(BlockTxn{std::move(t), item.locator.lines, std::move(reread.line_begins[i])});
    digest.add(item);
  }
  block.digest = digest.hex();
  block.checks = digest.checks();
  return block_message(0, ctx.source, block, txns);
}

core::Result<RelocatedData> relocate_log_block(std::string_view data, const std::string &new_path) {
  MAILDSAR_TRY_ASSIGN(LogBlock block, parse_log_block(data));
  block.path = new_path;
  return RelocatedData{log_block_data(block), block.key()};
}

} // namespace maildsar::index::pipeline
