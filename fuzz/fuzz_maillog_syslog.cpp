// SPDX-License-Identifier: GPL-3.0-or-later
// The syslog-style log readers (postfix, exim, sendmail, dovecot, amavis, ... lines). Every line
// parser is active in each of these formats (the format names what a source mainly holds), so
// one harness covers them all: the first byte picks the format the source is configured with.
#include "fuzz/maillog_common.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  static constexpr std::array<std::string_view, 5> k_formats{"postfix", "exim", "sendmail",
                                                             "syslog", "auto"};
  if (size == 0) {
    return 0;
  }
  maildsar::fuzz::scan_log(k_formats[data[0] % k_formats.size()],
                           maildsar::fuzz::as_view(data + 1, size - 1));
  return 0;
}
