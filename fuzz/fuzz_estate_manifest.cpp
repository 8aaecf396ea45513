// SPDX-License-Identifier: GPL-3.0-or-later
// What a host's agent parses of an `erase` request and the DPO host of a manifest file (issue
// 15): the estate manifest and its binding. An accepted manifest must write back to the same
// hash and parse again; an accepted binding must hash the same after a round trip. Also the
// items' details a host sends with its slice (plan, show): whatever is kept, and rendered in
// the approvers' summary, is clipped and escaped.
#include "erasure/approval.hpp"
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
  // Details for a slice whose item ids are the input's keys (so that some are kept).
  maildsar::erasure::ApprovalView view;
  if (j.is_object()) {
    for (const auto &[id, unused] : j.items()) {
      maildsar::erasure::ManifestItem item;
      item.id = id;
      item.locator.store = maildsar::connectors::StoreKind::maildir;
      view.manifest.items.push_back(std::move(item));
    }
  }
  const std::size_t skipped = maildsar::erasure::add_details(view, j);
  require(view.details.size() + skipped == (j.is_object() ? j.size() : (j.is_null() ? 0 : 1)),
          "every entry is kept or counted as skipped");
  for (const auto &[id, hit] : view.details) {
    require(hit.subject.size() <= 512 && hit.correspondents.size() <= 32, "details are clipped");
  }
  maildsar::erasure::EstateApprovalView estate;
  estate.hosts.push_back({"h", "h", "", view});
  const std::string html = maildsar::erasure::estate_approval_html(estate);
  require(html.find("<script") == std::string::npos, "nothing a host sends becomes markup");
  (void)maildsar::erasure::details_json(view);
  return 0;
}
