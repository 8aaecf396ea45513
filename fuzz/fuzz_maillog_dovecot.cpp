// SPDX-License-Identifier: GPL-3.0-or-later
// Dovecot (connectors/maillog/dovecot.cpp): its line parser directly, then the connector with
// source format "auto" (the syslog reader with every program and the generic amavis/key=value
// parser; a file starting with an Exchange header is read as Exchange).
#include "fuzz/maillog_common.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const auto bytes = maildsar::fuzz::as_view(data, size);
  maildsar::fuzz::parse_syslog_lines("dovecot", bytes);
  maildsar::fuzz::scan_log("auto", bytes);
  return 0;
}
