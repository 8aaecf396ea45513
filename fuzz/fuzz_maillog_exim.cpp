// SPDX-License-Identifier: GPL-3.0-or-later
// Exim main and reject logs (connectors/maillog/exim.cpp): its line parser directly, then the
// connector with source format "exim" (unprefixed lines continue the entry before them).
#include "fuzz/maillog_common.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const auto bytes = maildsar::fuzz::as_view(data, size);
  maildsar::fuzz::parse_syslog_lines("exim", bytes);
  maildsar::fuzz::scan_log("exim", bytes);
  return 0;
}
