// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Erasure by redaction (issue 18 item 3): a message that stays in someone else's mailbox with
// the data subject masked in it — the redaction primitive of redaction/message.hpp driven by
// the manifest's keyed identifiers, and the item given back in its store's form (a Maildir
// file, an mbox entry with its "From " line and quoting, a quarantine file, gzip again when it
// was). `plan` runs it once to show the approver what will change; `erase` runs it again on the
// bytes it has just checked against the plan.

#include "connectors/item.hpp"
#include "core/config.hpp"
#include "core/result.hpp"
#include "erasure/erasure.hpp"
#include "indexer/identity.hpp"
#include "redaction/message.hpp"

#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::erasure {

/** What stands for the subject in a redacted message ("erased-person@redacted.invalid" in
    address fields). */
inline constexpr std::string_view k_erased_label = "[erased person]";

/** Masks the data subject, known only by keyed hashes (a manifest's subject). */
class KeyedMasks final : public redaction::Masks {
public:
  KeyedMasks(std::string key, const std::vector<KeyedIdentifier> &subject);
  std::optional<std::string> mailbox(const std::string &email, const std::string &name) override;
  std::optional<std::string> identifier(std::string_view kind, const std::string &normalised) override;
  [[nodiscard]] redaction::Search kinds() const override { return m_kinds; }

private:
  [[nodiscard]] bool has(std::string_view kind, const std::string &normalised) const;
  std::string m_key;
  std::set<std::string> m_targets; // kind + ':' + keyed hash
  redaction::Search m_kinds;
};

/** Why erase cannot rewrite this item with the subject masked ("" = it can). */
[[nodiscard]] std::string redaction_unsupported(const core::Config &config, const connectors::Locator &locator);

struct StoredRedaction {
  std::string stored; // replaces the item's stored bytes (the form connectors::read_item_bytes gives)
  redaction::MessageReport report;
};

/**
 * The item whose stored bytes are `stored` (connectors::read_item_bytes of `locator`) with the
 * subject masked, in the store's form again: line ends as the message had them (CRLF stays
 * CRLF), an mbox entry keeps its "From " line, gets mboxrd quoting and its separating blank line
 * and a correct Content-Length when it has one; a gzip file is compressed again.
 * ErrorCode::data when it cannot be redacted (not a message, over the item limit; the reason
 * says which), ErrorCode::internal when the result would still show the subject.
 */
[[nodiscard]] core::Result<StoredRedaction> redact_stored_item(const connectors::Locator &locator,
                                                               std::string_view stored, KeyedMasks &masks,
                                                               const index::Normalizer &normalizer);

/** The manifest's `changes` of a redaction (MessageReport::places and what was withheld). */
[[nodiscard]] std::vector<std::string> change_list(const redaction::MessageReport &report);

/**
 * The unique part of the new name of a Maildir message rewritten by the manifest
 * `manifest_hash`: the old name's leading time (so that clients sorting by name keep its
 * place), "R" and 16 hex digits of a hash of the manifest and the old unique part (the same on
 * a resumed run, different for every copy), ".maildsar". No ",S=" size field: Dovecot reads the
 * size from the file when the name has none.
 */
[[nodiscard]] std::string redacted_maildir_unique(const std::string &old_path, const std::string &manifest_hash);

} // namespace maildsar::erasure
