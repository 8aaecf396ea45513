// SPDX-License-Identifier: GPL-3.0-or-later
// What the DPO host parses of an agent's export answers (issue 15): the base64 of a chunk and a
// package file path; a decoded chunk must encode back to the same text.
#include "fuzz/fuzz_support.hpp"
#include "remote/protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view text = maildsar::fuzz::as_view(data, size);
  if (auto bytes = maildsar::remote::base64_decode(text); bytes && maildsar::remote::base64_encode(*bytes) != text) {
    std::abort();
  }
  (void)maildsar::remote::is_package_path(text);
  return 0;
}
