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

/**
 * What a host's agent sends of its slice's items for the DPO host's summary (issue 15):
 * {item id: {"date": unix seconds or null, "subject": line, "correspondents": [[role, address],
 * ...]}}, for at most k_max_carried_details items, lines and lists clipped.
 */
[[nodiscard]] nlohmann::json details_json(const ApprovalView &view);
inline constexpr std::size_t k_max_carried_details = 20000;
/**
 * Adds details a host sent (untrusted): entries that are malformed, or for no item of the view's
 * manifest, are skipped; strings and lists are clipped as details_json clips them.
 * @return how many entries were skipped.
 */
std::size_t add_details(ApprovalView &view, const nlohmann::json &details);

/** An estate manifest as approvers read it (issue 15): the binding, then each host's slice. */
struct EstateApprovalView {
  std::string request;
  std::string created;
  std::string planner;
  std::string hash;                 // the estate manifest's hash: what is signed
  std::vector<std::string> subject; // as given (plan); empty: keyed only (approve --show)
  std::vector<Approval> approvals;  // recorded on the DPO host for `hash`
  struct Host {
    std::string name;
    std::string agent_host;
    std::string note; // e.g. why its items' details are missing
    ApprovalView view; // its slice and the details it sent
  };
  std::vector<Host> hosts;
  std::vector<std::pair<std::string, std::string>> not_searched; // host, why
};

/** The estate's self-contained HTML summary (no script, no external resource). */
[[nodiscard]] std::string estate_approval_html(const EstateApprovalView &view);
/** The same as plain text, for a terminal (`approve --show`). */
[[nodiscard]] std::string estate_approval_text(const EstateApprovalView &view);

/** Where `plan` writes the summary of the manifest at `manifest_path`: `x.json` -> `x.html`,
    anything else -> `<path>.html`. */
[[nodiscard]] std::string approval_html_path(const std::string &manifest_path);

} // namespace maildsar::erasure
