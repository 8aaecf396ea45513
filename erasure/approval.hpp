// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Readable approvals (issue 16 item 2): what an approver must see to know what they approve —
// the request, whom it is about, counts per source and action, every item with its date,
// folder, correspondents, subject line, action and reason, the holds and exemptions that won,
// and what erase will not touch. `plan` writes it as a self-contained HTML file beside the
// manifest; `approve --show` prints it as text. Both read the manifest (the binding part: its
// hash is what is approved) and the index for each item's date, subject line and
// correspondents, which the manifest does not hold.

#include "core/config.hpp"
#include "core/result.hpp"
#include "erasure/erasure.hpp"
#include "query/query.hpp"

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace maildsar::erasure {

/** A manifest with what the index says about its items. */
struct ApprovalView {
  Manifest manifest;
  /** The subject as the planner gave it ("email: alice@example.com"); empty: only the keyed
      identifiers are known (an approver's view, `plan --resurrected`). */
  std::vector<std::string> subject;
  /** Per manifest item id: date, subject line and correspondents from the index (absent for a
      log transaction, or an item no longer indexed). */
  std::map<std::string, query::Hit> details;
  std::vector<Approval> approvals;
  std::uint32_t approvals_required = 1;
};

/**
 * The manifest's items' details — from `known` (the hits `plan` just found, log transactions
 * among them) and, for the rest, from the index — and its approvals so far.
 */
[[nodiscard]] core::Result<ApprovalView> approval_view(const core::Config &config, const Manifest &manifest,
                                                       std::vector<std::string> subject = {},
                                                       std::vector<query::Hit> known = {});

/** "email: alice@example.com", ... for each identifier of `subject` as given. */
[[nodiscard]] std::vector<std::string> subject_lines(const query::SubjectProfile &subject);

/** Groups of more than this many items are collapsed in the HTML summary. */
inline constexpr std::size_t k_open_group_items = 100;

/** The self-contained HTML summary (no script, no external resource). */
[[nodiscard]] std::string approval_html(const ApprovalView &view);
/** The same as plain text, for a terminal (`approve --show`). */
[[nodiscard]] std::string approval_text(const ApprovalView &view);

/** Where `plan` writes the summary of the manifest at `manifest_path`: `x.json` -> `x.html`,
    anything else -> `<path>.html`. */
[[nodiscard]] std::string approval_html_path(const std::string &manifest_path);

} // namespace maildsar::erasure
