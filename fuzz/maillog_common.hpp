// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// The maillog harnesses: the bytes become one log file (plain, or gzip when they start with the
// gzip magic) that the maillog connector of the given format scans from the start.
#include "connectors/connector.hpp"
#include "connectors/maillog.hpp"
#include "core/config.hpp"
#include "core/fs.hpp"
#include "fuzz/fuzz_support.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace maildsar::fuzz {

inline void scan_log(std::string_view format, std::string_view bytes) {
  static const ScratchDir scratch;
  core::SourceConfig source;
  source.name = "logs";
  source.type = "maillog";
  source.format = std::string(format);
  source.path = scratch.path() + "/mail.log";
  source.root = scratch.path();
  auto connector = connectors::make_maillog_connector(source);
  require(connector.has_value(), "the maillog formats are known");

  connectors::FileEntry file;
  file.path = scratch.write("mail.log", bytes);
  auto st = core::lstat_file(file.path);
  require(st.has_value(), "lstat of the scratch log");
  file.stat = *st;
  connectors::ItemCollector sink;
  (void)(*connector)->scan(file, 0, sink);
  for (const connectors::Item &item : sink.items) {
    require(!item.locator.lines.empty(), "a log item names its lines");
    for (std::uint64_t line : item.locator.lines) {
      require(line >= 1 && line <= bytes.size() + 1, "a log item's lines are lines of the file");
    }
  }
}

} // namespace maildsar::fuzz
