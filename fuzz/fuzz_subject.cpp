// SPDX-License-Identifier: GPL-3.0-or-later
// The subject loader (DESIGN §4 subject JSON file -> query::SubjectProfile).
#include "fuzz/fuzz_support.hpp"
#include "query/query.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  (void)maildsar::query::parse_subject(maildsar::fuzz::as_view(data, size), "subject.json");
  return 0;
}
