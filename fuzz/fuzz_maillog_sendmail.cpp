// SPDX-License-Identifier: GPL-3.0-or-later
// Sendmail (connectors/maillog/sendmail.cpp): its line parser directly, then the connector with
// source format "sendmail".
#include "fuzz/maillog_common.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const auto bytes = maildsar::fuzz::as_view(data, size);
  maildsar::fuzz::parse_syslog_lines("sendmail", bytes);
  maildsar::fuzz::scan_log("sendmail", bytes);
  return 0;
}
