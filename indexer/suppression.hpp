// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Suppression on restore (issue 17, docs/workflow.md "After an erasure"): when an erasure
// completes, the subject's identifiers stay behind as keyed hashes (HMAC under state/secret.key,
// never in clear) with the request id and date — the one record the law lets us keep to honour
// the erasure. Every later index run checks the items it builds against that list: an item that
// matches an erased subject and is not one the erasure knowingly left in place (retained,
// manual, stale) is indexed with the term XSUPP:<request>, shown as `suppressed` by find,
// counted by index and status, and planned again by `plan --request ID --resurrected`.

#include "core/config.hpp"
#include "core/result.hpp"
#include "indexer/identity.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace maildsar::index {

/** `state/suppression.sqlite3` (mode 0600; a file made with the secret key). */
[[nodiscard]] std::string suppression_path(const core::Config &config);

/** One erased subject's identifier: kind ("email", "name", "phone", "ip") and keyed hash. */
struct SuppressedIdentifier {
  std::string kind;
  std::string hash; // core::keyed_hash(key, kind, normalised value)
  friend auto operator<=>(const SuppressedIdentifier &, const SuppressedIdentifier &) = default;
};

/** What one completed erasure leaves behind. */
struct Suppression {
  std::string request;  // the manifest's request id
  std::string manifest; // its hash
  std::string erased;   // ISO 8601 UTC time the erasure completed
  std::vector<SuppressedIdentifier> identifiers;
  /** The subject's items the erasure left where they were (retained, manual, not done), as
      (source, SHA-256): these are no restore, and are never flagged in that source. The same
      bytes in another source — a message restored from a backup archive the erasure could only
      mark `manual` — are flagged. */
  std::vector<std::pair<std::string, std::string>> kept;
};

/**
 * Adds `s` to the list (creating the file 0600). Recording the same request and manifest again
 * adds no identifier and replaces what that manifest left in place (`kept`: a resumed erase).
 * Crash-safe: one SQLite transaction.
 */
[[nodiscard]] core::Status record_suppression(const core::Config &config, const Suppression &s);

/** Every recorded suppression (without `kept`), oldest first; none when there is no list. */
[[nodiscard]] core::Result<std::vector<Suppression>> read_suppressions(const core::Config &config);

/**
 * "<kind>:<keyed hash>" of an identity as an erasure subject's identifier is kept (names: their
 * folded tokens sorted), or "" for the owner role (the mailbox's owner, not the item's content).
 */
[[nodiscard]] std::string keyed_identity(std::string_view key, const Identity &identity);

/** The suppression list in memory, for the index run and the query side. Thread-safe (const). */
class SuppressionList {
public:
  /**
   * The list of `config`'s state, or none when nothing was ever suppressed (no file, or empty).
   * @errors the list's read errors; the secret key's (a list without its key is an error, never
   *         an empty answer).
   */
  [[nodiscard]] static core::Result<std::optional<SuppressionList>> load(const core::Config &config);
  /** A list from records and a key (tests). */
  SuppressionList(std::string key, const std::vector<Suppression> &suppressions);

  /** The requests (sorted) whose erased subject `identities` show, unless the item (its bytes
      `sha256` in `source`) is one that request knowingly left in place. */
  [[nodiscard]] std::vector<std::string> match(const std::vector<Identity> &identities, std::string_view source,
                                               std::string_view sha256) const;
  [[nodiscard]] const std::vector<SuppressedIdentifier> *identifiers_of(const std::string &request) const;

private:
  /** The requests an identity's keyed form is listed for (nullptr: none), keyed anew only for
      values not seen lately: a log repeats the same addresses and IPs in most transactions, and
      one HMAC per identity made indexing logs 1.5x slower with a list (docs/performance.md). */
  [[nodiscard]] const std::set<std::string> *requests_of(const Identity &identity) const;
  struct Memo {
    std::shared_mutex mutex;
    std::unordered_map<std::string, const std::set<std::string> *> seen; // "<kind>\n<value>"
  };
  std::string m_key;
  std::unique_ptr<Memo> m_memo = std::make_unique<Memo>(); // bounded (k_memo_entries); shared by threads
  std::map<std::string, std::set<std::string>> m_requests; // "<kind>:<hash>" -> requests
  std::map<std::pair<std::string, std::string>, std::set<std::string>> m_kept; // (source, sha256) -> requests
  std::map<std::string, std::vector<SuppressedIdentifier>> m_identifiers; // request -> its identifiers
};

} // namespace maildsar::index
