// SPDX-License-Identifier: GPL-3.0-or-later
// The configuration loader (JSON text -> core::Config, with every validation) and the duration
// parser it uses.
#include "core/config.hpp"
#include "fuzz/fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view text = maildsar::fuzz::as_view(data, size);
  (void)maildsar::core::parse_config(text, "/etc/maildsar/maildsar.json");
  if (auto seconds = maildsar::core::parse_duration(text)) {
    maildsar::fuzz::require(*seconds >= 0, "a duration is never negative");
  }
  return 0;
}
