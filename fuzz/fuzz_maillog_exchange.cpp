// SPDX-License-Identifier: GPL-3.0-or-later
// Exchange message tracking (connectors/maillog/exchange.cpp, CSV under a #Fields: header): its
// file parser directly, then the connector with source format "exchange".
#include "fuzz/maillog_common.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const auto bytes = maildsar::fuzz::as_view(data, size);
  maildsar::fuzz::parse_file_lines("exchange", bytes);
  maildsar::fuzz::scan_log("exchange", bytes);
  return 0;
}
