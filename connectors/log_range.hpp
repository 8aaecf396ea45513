// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Reading a part of a delivery log (the log index, issue 12): the indexer scans a log (or what
// was appended to it) through scan_log_range() and learns where each transaction's lines lie;
// the query side reads only the parts of the matched blocks again.

#include "connectors/connector.hpp"
#include "connectors/maillog.hpp"
#include "core/config.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors {

/** A stretch of a LogRange that is read (LogRange::parts). */
struct LogPart {
  std::uint64_t from = 0;         // the start of a line
  std::uint64_t to = 0;           // the start of a line (or the range's end)
  std::uint64_t lines_before = 0; // lines before `from`
};

/** A part of a log's decompressed content. */
struct LogRange {
  std::uint64_t from = 0;            // the start of a line
  std::uint64_t to = k_content_end;  // no byte at or after this offset is read
  /** Lines before `from`; unknown: counted (and `from` checked to start a line: else
      ErrorCode::data). */
  std::optional<std::uint64_t> lines_before = std::uint64_t{0};
  /** The file's modification time the dates without a year are placed by; 0: the file's now. */
  std::int64_t mtime_ns = 0;
  /** Not empty: only the lines that begin in these stretches of [from, to) are read (ascending,
      disjoint; the first begins at `from` with `lines_before`, which must be known); the bytes
      between them are skipped (a plain log: not read at all). The query side reads only the
      parts of a log block that hold the identity searched for (indexer/log_block.hpp). */
  std::vector<LogPart> parts;
};

/** Where a transaction's lines lie: decompressed bytes [begin, end) hold them all. */
struct LogSpan {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  /** Where each of its lines begins, in the order of Locator::lines (empty: not known). */
  std::vector<std::uint64_t> line_begins;
};

/** A sink that also learns where each transaction lies and how many lines preceded the range. */
class LogSink : public ItemSink {
public:
  virtual void log_item(Item &&item, LogSpan span) = 0;
  virtual void started(std::uint64_t /*lines_before*/) {}
  /** False: the transaction whose first line is `first_line` is not wanted, and is not built
      (the query side reads a block's range for that block's transactions only). */
  [[nodiscard]] virtual bool wants(std::uint64_t /*first_line*/) const { return true; }
  /**
   * Not null: the sink wants only the transactions that hold one of these strings in a line as
   * holds_needle() says, or a line with a non-ASCII byte. A scan of
   * a format whose lines join a transaction by a key written in the line itself may then parse
   * only the lines that can belong to such a transaction, and says so by filtered() before its
   * first item; any other scan ignores this.
   */
  [[nodiscard]] virtual const std::vector<std::string> *needles() const { return nullptr; }
  /** The scan parsed only the lines needles() selects: transactions that hold none are missing,
      the others are whole. */
  virtual void filtered() {}
  void item(Item &&item) override { log_item(std::move(item), LogSpan{}); }
};

/**
 * True when `text` holds a byte >= 0x80 (case folding of other scripts may give ASCII) or one of
 * `needles` (lower-case ASCII, matched ASCII case-insensitively) as a whole word: neither
 * preceded nor followed by an ASCII letter or digit. A needle is an address's local part, and
 * an address holds it so: `<alice.smith@`, `prvs=…=alice.smith@`, `SRS0=…=alice.smith@`,
 * `alice.smith+tag@`, `"alice.smith"@` — never `malice.smith@` or `alice.smithson@`, whose local
 * parts are others (the query side refuses needles when a subaddress separator is a letter or
 * digit). An empty needle is held by any text.
 */
[[nodiscard]] bool holds_needle(std::string_view text, std::span<const std::string> needles);

/**
 * Scans `range` of the log at `path` exactly as the source's maillog connector scans a file
 * (Connector::scan from `range.from`), but stops at `range.to`. A compressed log is decompressed
 * from its start (the part before `range.from` is skipped, not parsed). When `sink` is a
 * LogSink, it gets each item with its LogSpan.
 * @errors as Connector::scan; ErrorCode::config for an unknown format; ErrorCode::data when
 *         `from` is past the end or (lines_before unknown) not the start of a line.
 */
[[nodiscard]] core::Status scan_log_range(const core::SourceConfig &source, const std::string &path,
                                          const LogRange &range, ItemSink &sink);

/**
 * scan_log_range() for several ranges of one log, each into its own sink (each range gets its own
 * scanner, as if read alone). A compressed log is decompressed in one pass up to the end of the
 * last range, parsing only the ranges' lines; with `gz_points` (ContentProbe::gz_points of this
 * file) the pass resumes at the restart point before each range instead of decompressing what
 * lies between. A plain log is read range by range. Line numbers of a compressed log are counted
 * (`lines_before` is not needed).
 * @errors as scan_log_range(); ErrorCode::usage when the spans differ in size; ErrorCode::data
 *         when `gz_points` are malformed, of another file (its size differs) or do not fit it
 *         (the caller reads without them).
 */
[[nodiscard]] core::Status scan_log_ranges(const core::SourceConfig &source, const std::string &path,
                                           std::span<const LogRange> ranges,
                                           std::span<ItemSink *const> sinks,
                                           std::string_view gz_points = {});

} // namespace maildsar::connectors
