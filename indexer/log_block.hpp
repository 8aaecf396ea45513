// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// The delivery-log index (issue 12, docs/ARCHITECTURE.md "The log index"): the transactions of a
// log are indexed in blocks. One Xapian document per block carries the union of its
// transactions' terms (boolean: no positions, no wdf) and, as its data, a LogBlock: where the
// transactions lie in the log and how to read exactly them again. The query side re-reads the
// matched blocks (query/log_blocks.*) and gets the transactions as the indexer saw them; the
// digest proves it.

#include "connectors/item.hpp"
#include "connectors/log_range.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::index {

/** At most this many transactions per block. */
inline constexpr std::size_t k_block_items = 128;
/** A block is closed before its lines would span more than this many bytes of the log. */
inline constexpr std::uint64_t k_block_span_bytes = std::uint64_t{4} << 20U;
/**
 * A block's range is divided into this many parts of about equal size; the wdf of each of its
 * terms is a mask of the parts where lines of the transactions holding the term begin (bit k:
 * part k), so `find` reads only those parts (docs/ARCHITECTURE.md "The log index"). Five parts
 * keep every mask below 32, where Xapian's glass termlist stores the wdf in the byte it already
 * spends on the term (measured: ~1 % of the state; a sixth part would cost ~5 %).
 */
inline constexpr std::size_t k_block_parts = 5;
/** The mask that reads every part. */
inline constexpr std::uint32_t k_all_parts = (1U << k_block_parts) - 1U;

/** A block of log transactions (the data of its document; docs/schemata.md "log block"). */
struct LogBlock {
  std::string source;
  std::string path;
  /** The scan that indexed the block: decompressed offsets [seg_from, seg_to) of the log, the
      number of lines before seg_from, and the file's mtime it saw (dates without a year). */
  std::uint64_t seg_from = 0;
  std::uint64_t seg_to = 0;
  std::uint64_t seg_line = 0;
  std::int64_t mtime_ns = 0;
  /** The lines of the block's transactions lie within decompressed bytes [from, to);
      `line` lines come before `from`. */
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  std::uint64_t line = 0;
  /** Each transaction's first line number, ascending (a line belongs to one transaction). */
  std::vector<std::uint64_t> first_lines;
  /** block_digest() of the transactions. */
  std::string digest;
  /** Notes of transactions indexed only in part (Item::truncated), for `find` and `verify`. */
  bool truncated = false;
  /** Each transaction's check: the first k_txn_check_hex hex digits of its item_digest(), in
      first_lines order, concatenated. Empty when a transaction of the block was cut or split at
      a limit (or the block was indexed before checks existed): the query side then reads every
      transaction of the block, never only the ones that can match (query/log_blocks.cpp). */
  std::string checks;
  /** The k_block_parts parts of [from, to): part k holds the lines of the block's transactions
      that begin in it; each begins at one of those lines (`lines_before` its number less one)
      or, holding none, where the next one does (then it is empty: from == to). Empty: the block
      was indexed before parts existed, and is always read whole. */
  std::vector<connectors::LogPart> parts;

  /** The block's locator key, unique within the source: "<path>##block@<first line>". */
  [[nodiscard]] std::string key() const;
};

/** Where the lines of one transaction of a block lie (divide_block). */
struct TxnLines {
  std::span<const std::uint64_t> lines;  // Locator::lines
  std::span<const std::uint64_t> begins; // LogSpan::line_begins (same size, else unknown)
};

/**
 * Sets `block.parts` for its range [from, to) (set, with `line`) from where its transactions'
 * lines begin, and gives each transaction's mask of parts (bit k: a line of it begins in part
 * k; k_all_parts when its line begins are not known). Parts stay empty when no transaction's
 * line begins are known.
 */
[[nodiscard]] std::vector<std::uint32_t> divide_block(LogBlock &block, std::span<const TxnLines> txns);

/**
 * The stretches of `block` to read for a term whose wdf is `mask` (adjacent parts joined), or
 * none when the whole range must be read: a mask of 0 (a block term without parts) or with
 * bits beyond k_all_parts, or a block without parts.
 */
[[nodiscard]] std::vector<connectors::LogPart> parts_to_read(const LogBlock &block, std::uint32_t mask);

/** The document data of a block (JSON object with the key "log_block"). */
[[nodiscard]] std::string log_block_data(const LogBlock &block);
/** True when a document's data is a log block's. */
[[nodiscard]] bool is_log_block_data(std::string_view data);
/** ErrorCode::data for malformed data. */
[[nodiscard]] core::Result<LogBlock> parse_log_block(std::string_view data);
/** parse_log_block by the general JSON reader only, never the fast path for the data as
    log_block_data writes it: the fuzzing harness checks that both read the same. */
[[nodiscard]] core::Result<LogBlock> parse_log_block_as_json(std::string_view data);

/** Hex digits of a transaction's digest kept per transaction in LogBlock::checks (12 bits). */
inline constexpr std::size_t k_txn_check_hex = 3;

/** Hex SHA-256 of what a block promises of a transaction: queue id, lines, bytes, Message-ID, date. */
[[nodiscard]] std::string item_digest(const connectors::Item &item);

/** Accumulates the digest of a set of transactions (order-independent). */
class BlockDigest {
public:
  void add(const connectors::Item &item);
  [[nodiscard]] std::string hex() const;
  /** LogBlock::checks of the transactions added (one per first line). */
  [[nodiscard]] std::string checks() const;

private:
  std::vector<std::pair<std::uint64_t, std::string>> m_items; // first line, sha256 of the fields
};

/**
 * The transactions of one block read again from the log (connectors::scan_log_range or
 * scan_log_ranges over the block's range, or over the whole scan it came from): keeps those of
 * the block (by first line) and checks them against it: all of them against its digest, or,
 * when the scan parsed only the lines that can hold one of `needles` (LogSink::filtered), each
 * one it got against the block's check of that transaction. The query side reads matched blocks
 * with it (query/log_blocks.cpp), rebuild_log_block an edited one (indexer/log_index.cpp).
 */
class BlockCollector final : public connectors::LogSink {
public:
  /**
   * @param block the block read again; not owned, must outlive the collector.
   * @param needles not owned, may be null: LogSink::needles() of the scan (null for a block
   *        without checks, which is always read whole).
   */
  explicit BlockCollector(const LogBlock &block, const std::vector<std::string> *needles = nullptr)
      : m_block(block), m_needles(block.checks.empty() ? nullptr : needles), m_expect_before(block.line) {}

  /** The scan reads only parts of the block's range, the first with `lines_before` lines
      before it (LogRange::parts; only a scan with needles, whose transactions are checked one
      by one). */
  void reads_parts_from(std::uint64_t lines_before) { m_expect_before = lines_before; }

  [[nodiscard]] bool wants(std::uint64_t first_line) const override;
  [[nodiscard]] const std::vector<std::string> *needles() const override { return m_needles; }
  void filtered() override { m_filtered = true; }
  void started(std::uint64_t lines_before) override { m_lines_before = lines_before; }
  void log_item(connectors::Item &&item, connectors::LogSpan span) override;
  void error(connectors::ScanError && /*error*/) override {} // reported when it was indexed

  /** True when the transactions kept are those indexed in the block (digest or checks). */
  [[nodiscard]] bool complete() const;
  /** True when the scan parsed only the lines that can hold a needle. */
  [[nodiscard]] bool was_filtered() const { return m_filtered; }

  /** The block's transactions, in the order the scan gave them. */
  std::vector<connectors::Item> items;
  /** Where each of their lines begins (LogSpan::line_begins), in the order of `items`. */
  std::vector<std::vector<std::uint64_t>> line_begins;

private:
  const LogBlock &m_block;
  const std::vector<std::string> *m_needles;
  BlockDigest m_digest;
  bool m_filtered = false;
  bool m_mismatch = false;
  std::uint64_t m_lines_before = 0;
  std::uint64_t m_expect_before = 0;
};

} // namespace maildsar::index
