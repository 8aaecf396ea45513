// SPDX-License-Identifier: GPL-3.0-or-later
// What a host's agent parses of an `erase` request and the DPO host of a manifest file (issue
// 15): the estate manifest and its binding. An accepted manifest must write back to the same
// hash and parse again; an accepted binding must hash the same after a round trip.
#include "erasure/estate.hpp"
#include "fuzz/fuzz_support.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  using maildsar::fuzz::require;
  const std::string_view text = maildsar::fuzz::as_view(data, size);
  if (auto m = maildsar::erasure::parse_estate_manifest(text, "fuzz")) {
    auto again = maildsar::erasure::parse_estate_manifest(m->to_json().dump(), "fuzz");
    require(again.has_value() && again->hash == m->hash, "an accepted estate manifest parses again to its hash");
  }
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (auto b = maildsar::erasure::parse_estate_binding(j, "fuzz")) {
    auto again = maildsar::erasure::parse_estate_binding(b->to_json(), "fuzz");
    require(again.has_value() && again->compute_hash() == b->compute_hash(), "a binding round-trips to its hash");
  }
  return 0;
}
