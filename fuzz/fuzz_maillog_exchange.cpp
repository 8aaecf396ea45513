// SPDX-License-Identifier: GPL-3.0-or-later
// The Exchange message-tracking (CSV with #Fields: header) log reader.
#include "fuzz/maillog_common.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  maildsar::fuzz::scan_log("exchange", maildsar::fuzz::as_view(data, size));
  return 0;
}
