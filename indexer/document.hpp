// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Item -> index document (terms per indexer/schema.hpp) and the document data (JSON) that the
// query side reads back. Thread-safe: worker threads build documents in parallel.

#include "connectors/item.hpp"
#include "core/config.hpp"
#include "core/result.hpp"
#include "indexer/catalog.hpp"
#include "indexer/identity.hpp"
#include "indexer/index_store.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::index {

class SuppressionList;

struct DocumentContext {
  std::string source;
  const Normalizer *normalizer = nullptr; // not owned
  /** The source's configuration when it is a delivery log (indexed in blocks); not owned. */
  const core::SourceConfig *log_source = nullptr;
  std::size_t log_block_items = 0; // transactions per log block (0: k_block_items)
  /** Only the terms are wanted (a log block's): no document data, no record. */
  bool terms_only = false;
  /** The document data is wanted as it reads back (BuiltDocument::stored), not as JSON in the
      document: re-read log transactions searched in memory (query/log_blocks.hpp). */
  bool stored_only = false;
  /** With stored_only: no document at all (no terms, no positions), only what it would say
      (BuiltDocument::stored, ::identities, ::suppressed and the key): re-read log transactions
      matched one by one by a lookup of addresses, phones or IPs (query/log_blocks.hpp). */
  bool identities_only = false;
  /** Not null: items that show an erased subject get XSUPP:<request> (indexer/suppression.hpp). */
  const SuppressionList *suppression = nullptr;
};

struct StoredDocument;

struct BuiltDocument {
  PreparedDocument doc;
  ItemRecord record; // qterm and file_id are filled in by the writer
  /** DocumentContext::stored_only: what parse_document_data() would read from the data. */
  std::unique_ptr<StoredDocument> stored;
  /** The requests whose erased subject the item shows (DocumentContext::suppression). */
  std::vector<std::string> suppressed;
  /** DocumentContext::identities_only: every identity found in the item, before the evidence
      cap of `stored` — what the document's any-role and role-scoped terms would say. */
  std::vector<Identity> identities;
};

/** Extracts the item's identities and builds its document. May throw (callers catch). */
[[nodiscard]] BuiltDocument build_document(const connectors::Item &item, const DocumentContext &ctx);

/** What a document's data holds (JSON; see docs/schemata.md "index document data"). */
/** The token positions of one attachment's text (role attachment-body) in the document. */
struct PartSpan {
  std::string name;       // the attachment's file name ("part N" without one)
  std::uint32_t from = 0; // first and last position of its tokens
  std::uint32_t to = 0;
};

struct StoredDocument {
  connectors::Locator locator;
  std::string message_id;
  std::optional<std::int64_t> date;
  std::string subject;
  std::string sha256;
  std::vector<Identity> identities;
  std::vector<PartSpan> parts;                // attachment texts, for the evidence of name matches
  std::vector<std::string> attachment_hashes; // Item::attachment_hashes
  std::vector<std::string> truncated; // what was cut at a limit; empty = indexed whole
  std::uint64_t evidence_capped = 0;  // identities left out of `identities` (terms are all there)
};

/** What document_data_json() holds, as parse_document_data() reads it back (without JSON). */
[[nodiscard]] StoredDocument stored_document(const connectors::Item &item, std::vector<Identity> identities,
                                             std::vector<PartSpan> parts = {}, std::uint64_t evidence_capped = 0);
/** `evidence_capped`: identities of the item left out of `identities` (limits.max_addresses_per_role). */
[[nodiscard]] std::string document_data_json(const connectors::Item &item,
                                             const std::vector<Identity> &identities,
                                             const std::vector<PartSpan> &parts = {},
                                             std::uint64_t evidence_capped = 0);
/** ErrorCode::data for malformed data. */
[[nodiscard]] core::Result<StoredDocument> parse_document_data(std::string_view json);

/** A document's data with its locator moved to another file (a rotated log). */
struct RelocatedData {
  std::string data;        // the data with locator.path replaced, all else kept
  std::string locator_key; // Locator::key() of the moved locator
};
/** ErrorCode::data for malformed data. */
[[nodiscard]] core::Result<RelocatedData> relocate_document_data(std::string_view json,
                                                                 const std::string &new_path);

} // namespace maildsar::index
