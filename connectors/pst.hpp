// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace maildsar::connectors {

/** What one PST/OST scan found, by libpst item kind (readpst's classification). */
struct PstScanStats {
  std::uint64_t folders = 0;      // folders walked (the top of folders included)
  std::uint64_t emails = 0;       // messages: IPM.Note, meeting requests (schedule), reports
  std::uint64_t contacts = 0;     // contacts
  std::uint64_t appointments = 0; // calendar items
  std::uint64_t journals = 0;     // journal entries
  std::uint64_t others = 0;       // tasks, sticky notes, distribution lists, anything else
  std::uint64_t unreadable = 0;   // items libpst could not parse (each reported as ScanError)

  [[nodiscard]] std::uint64_t items() const {
    return emails + contacts + appointments + journals + others;
  }
};

/**
 * Reads every item of one PST/OST file (all folders, recursively, Deleted Items included) and
 * hands each to `sink` as an Item with locator {source, pst, path, folder path, node id}.
 * Items libpst cannot parse go to sink.error and the scan goes on.
 *
 * @param source  the source name put into each locator
 * @param path    absolute path of the file
 * @param sink    receives items and per-item problems
 * @return the counts by item kind
 * @errors ErrorCode::data when the file is not a PST/OST or its indexes cannot be read;
 *         ErrorCode::no_input / permission / io when it cannot be opened.
 * Thread-safe: libpst keeps global state (debug call stack, iconv handles), so scans of PST
 * files are serialised by a process-wide mutex.
 */
[[nodiscard]] core::Result<PstScanStats> scan_pst_file(const std::string &source,
                                                       const std::string &path, ItemSink &sink);

/** Creates the pst connector for a configured source (type "pst"). */
[[nodiscard]] core::Result<std::unique_ptr<Connector>>
make_pst_connector(const core::SourceConfig &source);

} // namespace maildsar::connectors
