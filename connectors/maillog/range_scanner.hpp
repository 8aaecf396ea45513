// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// The scanner of a part of a log that the query side reads again (connectors/log_range.hpp): a
// FileScanner that, for a sink with needles (LogSink::needles) and a format whose lines carry
// their transaction's key (SourceFormat::keyed_lines), parses only the lines that can belong to
// a transaction holding a needle: the lines that hold a needle, and the lines that hold the key
// of one of those. Everything else passes straight through to the FileScanner.

#include "connectors/log_range.hpp"
#include "connectors/maillog/scanner.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors::maillog {

class RangeScanner {
public:
  /** As FileScanner's. */
  RangeScanner(const core::SourceConfig &source, const SourceFormat &format, std::string path,
               std::int64_t mtime, ItemSink &sink);

  /** As FileScanner::line. */
  void line(std::uint64_t number, std::string_view raw, std::uint64_t begin = 0, std::uint64_t end = 0);
  /** As FileScanner::finish; a filtering scanner parses the lines it selected first. */
  void finish();

  /** A range longer than this is not held back for filtering (it is parsed whole). */
  static constexpr std::size_t k_max_held_bytes = std::size_t{16} << 20U;

private:
  struct Held {
    std::uint64_t number;
    std::uint64_t begin;
    std::uint64_t end;
    std::size_t at; // in m_text
    std::size_t size;
  };
  [[nodiscard]] std::string_view text_of(const Held &h) const { return std::string_view(m_text).substr(h.at, h.size); }
  void pass_through(); // gives the held lines to the scanner; filtering is off from now on
  [[nodiscard]] std::vector<bool> selected() const;

  const SourceFormat &m_format;
  std::int64_t m_mtime;
  LogSink *m_log_sink;
  FileScanner m_scanner;
  const std::vector<std::string> *m_needles = nullptr; // null: not filtering
  std::string m_text;                                  // the held lines, each ending in '\n'
  std::vector<Held> m_held;
};

} // namespace maildsar::connectors::maillog
