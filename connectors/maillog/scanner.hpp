// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// The transaction assembler of one log file: fed the file's lines in order, it has the file's
// format parse each and turns the lines into log-transaction items for an ItemSink.

#include "connectors/connector.hpp"
#include "connectors/limits.hpp"
#include "connectors/log_range.hpp"
#include "connectors/maillog/format.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace maildsar::connectors::maillog {

class FileScanner final : private LineSink {
public:
  /** `mtime`: the file's modification time (Unix seconds), dates lines without a year. */
  FileScanner(const core::SourceConfig &source, const SourceFormat &format, std::string path,
              std::int64_t mtime, ItemSink &sink);
  FileScanner(const FileScanner &) = delete;
  FileScanner &operator=(const FileScanner &) = delete;
  ~FileScanner();

  /** Line `number` (1-based) of the file, without its '\n'; `raw` is kept verbatim in items.
      [begin, end): where the line (with its '\n') lies in the decompressed file. */
  void line(std::uint64_t number, std::string_view raw, std::uint64_t begin = 0,
            std::uint64_t end = 0);

  /** End of data: emits the open transactions (in the order of their first line) and summaries. */
  void finish();

private:
  struct Counter {
    std::uint64_t n = 0;
    std::uint64_t first = 0;
  };
  static void count(Counter &c, std::uint64_t line);
  void append_line(Txn &t, std::uint64_t number, std::string_view raw) const;

  // LineSink: what the parser makes of the current line (m_number, m_raw)
  void entry(LineInfo &&info, std::optional<std::int64_t> date, bool personal) override;
  bool continuation(std::string_view view) override;
  void header() override;
  void unparsed() override;

  void merge(Txn &into, Txn &&from) const;
  void bound_open(std::unordered_map<std::string, Txn>::iterator it, std::uint64_t next_line);
  void split_all_open(std::uint64_t next_line);
  void flush_single();
  void emit(Txn &&t);

  const core::SourceConfig &m_source;
  const SourceFormat &m_format;
  std::string_view m_format_name = m_format.name();
  std::string m_path;
  ItemSink &m_sink;
  LogSink *m_log_sink = dynamic_cast<LogSink *>(&m_sink); // learns each transaction's span
  std::unique_ptr<FileParser> m_parser;
  bool m_seen_line = false;
  std::uint64_t m_number = 0; // the line being parsed
  std::string_view m_raw;
  std::uint64_t m_begin = 0; // where the line being parsed lies
  std::uint64_t m_end = 0;
  std::unordered_map<std::string, Txn> m_open;
  ItemLimits m_limits = item_limits();
  std::size_t m_open_bytes = 0; // raw bytes of the open transactions
  std::unordered_map<std::string, std::uint64_t> m_parts_pending; // queue id -> next part number
  std::optional<Txn> m_single; // a stand-alone line, held back for continuation lines
  std::string m_last_key;
  Counter m_binary;
  Counter m_unparsed;
};

} // namespace maildsar::connectors::maillog
