// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Internal to query/: the transactions of matched log blocks (indexer/log_block.hpp), read again
// from the logs and indexed in an in-memory database, on which the caller runs its lookup once
// more: the answers are those of one document per transaction.

#include "core/config.hpp"
#include "core/result.hpp"
#include "connectors/item.hpp"
#include "indexer/document.hpp"
#include "indexer/identity.hpp"
#include "indexer/index_store.hpp"
#include "indexer/log_block.hpp"
#include "indexer/suppression.hpp"
#include "query/query.hpp"

#include <xapian.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace maildsar::query {

class LogExpander {
public:
  explicit LogExpander(const core::Config &config);

  /**
   * Notes the block whose document data is `data` (read by finish()). `mask`: the wdf of the
   * block term that matched it (the OR of several), i.e. the parts of the block that hold the
   * transactions with that term (indexer/log_block.hpp k_block_parts); with needles, only those
   * parts are read. 0: the whole block. `suppressed`: the block holds a transaction flagged by
   * suppression on restore (XSUPP:); its transactions are checked against the list again.
   */
  [[nodiscard]] core::Status add(std::string_view data, std::uint32_t mask = 0, bool suppressed = false);
  /**
   * Reads the transactions of the blocks added (each log once: a compressed one is decompressed
   * once for all its blocks) and adds one document per transaction, as the indexer builds it,
   * to the in-memory database. Once per expander, unless it has a visitor (set_item_visitor).
   * @errors the log's read errors; ErrorCode::temp_fail when a log no longer holds the
   *         transactions as they were indexed (changed since: run `maildsar index`).
   */
  [[nodiscard]] core::Status finish();

  /**
   * Lower-case ASCII strings of which every transaction that can match holds at least one in
   * its lines as connectors::holds_needle says (a whole word, ASCII case-insensitively), unless
   * a line has a non-ASCII byte: the local parts of the e-mail addresses searched for.
   * Transactions without any are not indexed in memory. Empty (the default): every transaction
   * is.
   */
  void set_needles(std::vector<std::string> needles) { m_needles = std::move(needles); }

  /**
   * Instead of indexing them in memory, gives each re-read transaction (bounded as the indexer
   * bounds it) to `visit` with the normaliser the indexer would use; db() stays empty. For
   * readers that want every transaction's identities, not a lookup (`affected`).
   */
  using ItemVisitor = std::function<void(const connectors::Item &, const index::Normalizer &)>;
  void set_item_visitor(ItemVisitor visit) { m_visit = std::move(visit); }

  /**
   * Instead of indexing them in memory, gives what each re-read transaction's document would
   * say (index::DocumentContext::identities_only: its key, stored data and every identity) to
   * `match`, on the reading threads: a lookup of addresses, phones or IPs needs no search to
   * tell whether a transaction holds one. Its hits are take_hits(); db() stays empty.
   * `match` must be thread-safe.
   */
  using Matcher = std::function<std::optional<Hit>(index::BuiltDocument &)>;
  void set_matcher(Matcher match) { m_match = std::move(match); }
  /** The hits of the matcher (set_matcher), moved out. */
  [[nodiscard]] std::vector<Hit> take_hits() { return std::exchange(m_hits, {}); }
  [[nodiscard]] bool empty() const { return m_docs == 0; }
  /** The transactions' documents (terms only: their data is stored(), not in the document). */
  [[nodiscard]] Xapian::Database &db() { return m_db; }
  /** The data of the document `docid` of db(), moved out (nullptr: none, or taken already). */
  [[nodiscard]] std::unique_ptr<index::StoredDocument> take_stored(Xapian::docid docid);

private:
  struct Raw { // as add() got it
    std::string data;
    std::uint32_t mask = 0;
    bool suppressed = false;
  };
  struct Pending {
    index::LogBlock block;
    std::uint32_t mask = 0;
    bool suppressed = false;
  };
  /** Reads the transactions of `blocks` (all of one log) into `items`, one vector per block. */
  [[nodiscard]] core::Status read_file(std::span<const Pending> blocks,
                                       std::vector<std::vector<connectors::Item>> &items) const;
  [[nodiscard]] core::Status load_normalizer();
  [[nodiscard]] index::NormalizeOptions normalize_options() const;
  /** The documents of the `items` that can match (set_needles), bounded as the indexer bounds
      them, built with `normalizer`; appended to `docs`. Thread-safe (const). */
  [[nodiscard]] core::Status build_documents(const Pending &block, std::vector<connectors::Item> &items,
                                             const index::Normalizer &normalizer,
                                             std::vector<index::BuiltDocument> &docs) const;
  /** Gives the `items` that can match to the visitor (set_item_visitor). */
  [[nodiscard]] core::Status visit_items(const index::LogBlock &block, std::vector<connectors::Item> &items);

  const core::Config &m_config;
  std::unique_ptr<index::Normalizer> m_normalizer;
  /** The suppression list, loaded when a flagged block is read (add()). */
  std::optional<index::SuppressionList> m_suppression;
  Xapian::Database m_db; // the in-memory databases of the logs read, as one
  std::size_t m_docs = 0;
  bool m_expanded = false; // finish() added databases to m_db
  std::vector<std::string> m_needles;
  ItemVisitor m_visit;
  Matcher m_match;
  std::vector<Hit> m_hits; // m_match's
  std::unordered_map<Xapian::docid, std::unique_ptr<index::StoredDocument>> m_stored;
  std::vector<Raw> m_pending;
};

/**
 * Every item indexed by `term` (an XMID:, XTRUNC: ... term) as a hit without matches; the log
 * blocks among them give their transactions that hold the term.
 */
[[nodiscard]] core::Result<std::vector<Hit>> lookup_term(const core::Config &config,
                                                         Xapian::Database &db,
                                                         const std::string &term);

} // namespace maildsar::query
