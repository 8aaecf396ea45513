// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/index_store.hpp"
#include "indexer/indexer.hpp"

#include "indexer/document.hpp"
#include "indexer/identity.hpp"

#include "indexer/schema.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <xapian.h>

#include <filesystem>
#include <set>

using namespace maildsar;
using namespace maildsar::index;
using maildsar::test::ScratchDir;

// The schema table guards (compile time).
static_assert(schema::detail::prefixes_are_well_formed());
static_assert(schema::detail::prefixes_are_unambiguous());
static_assert(schema::role_code(connectors::Role::reply_to) == "R");
static_assert(schema::field("email").prefix == "XID:");

namespace {

PreparedDocument doc(const std::string &key, const std::string &term) {
  PreparedDocument d;
  d.set_key(schema::unique_term("src", key));
  d.add_boolean_term(term);
  d.set_data("data-" + key);
  return d;
}

} // namespace

// The role codes are short (they are in every per-role term, and positional terms are most of
// the index), distinct, and name no role twice.
TEST(Schema, RoleCodesAreShortAndDistinct) {
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < connectors::k_role_count; ++i) {
    std::string_view code = schema::role_code(static_cast<connectors::Role>(i));
    EXPECT_GE(code.size(), 1U);
    EXPECT_LE(code.size(), 2U) << connectors::to_string(static_cast<connectors::Role>(i));
    EXPECT_TRUE(seen.insert(code).second) << code;
  }
  EXPECT_EQ(schema::prefix_for("name-role", connectors::Role::body), "XNB:");
  EXPECT_EQ(schema::prefix_for("email-role", connectors::Role::attachment_body), "XEAB:");
}

TEST(Schema, TermsAreNeverTruncated) {
  std::string long_addr(250, 'a');
  long_addr += "@example.com";
  auto t = schema::any_role_term("email", long_addr);
  EXPECT_TRUE(t.starts_with("XIDH:"));
  EXPECT_EQ(t.size(), 5U + 64U);
  EXPECT_EQ(schema::role_term("email-role", connectors::Role::from, "a@b"), "XEF:a@b");
  EXPECT_TRUE(schema::role_term("email-role", connectors::Role::from, long_addr).starts_with("XEF:#"));
  auto q = schema::unique_term("src", "/a/b@1");
  EXPECT_TRUE(q.starts_with("Qsrc:"));
  EXPECT_EQ(q.size(), 5U + 64U);
}

// DocumentContext::stored_only (the query side's re-read log transactions) gives exactly what
// parse_document_data reads back from the JSON data, invalid UTF-8 included (replaced as the
// JSON dump replaces it), so find answers the same either way.
TEST(Document, StoredOnlyIsWhatTheDataReadsBackAs) {
  connectors::Item item;
  item.locator.source = "postfix";
  item.locator.store = connectors::StoreKind::maillog;
  item.locator.path = "/var/log/mail.log.2";
  item.locator.queue_id = "4Qx\xff\xfe" "Z";
  item.locator.lines = {10, 12, 19};
  item.sha256 = std::string(64, 'a');
  item.message_id = "abc\xc3" "(@example.com";
  item.date = 1700000000;
  item.subject = "Caf\xe9" " \xe2\x82\xac order";
  item.addresses.push_back(connectors::RawAddress{connectors::Role::log_to, "Alice Smith", "alice.smith@example.com", "to"});
  item.addresses.push_back(connectors::RawAddress{connectors::Role::log_from, "B\xf6" "b", "bob@example.org", "from"});
  item.truncated = {"cut \xff" " here"};
  const Normalizer norm(NormalizeOptions{"+", "GB"});
  DocumentContext json_ctx{"postfix", &norm};
  DocumentContext stored_ctx{"postfix", &norm};
  stored_ctx.stored_only = true;
  const BuiltDocument with_json = build_document(item, json_ctx);
  const BuiltDocument with_stored = build_document(item, stored_ctx);
  ASSERT_TRUE(with_stored.stored);
  EXPECT_TRUE(with_stored.doc.xapian().get_data().empty());
  auto parsed = parse_document_data(with_json.doc.xapian().get_data());
  ASSERT_TRUE(parsed) << parsed.error().message;
  const StoredDocument &a = *parsed;
  const StoredDocument &b = *with_stored.stored;
  EXPECT_EQ(a.locator.key(), b.locator.key());
  EXPECT_EQ(a.locator.source, b.locator.source);
  EXPECT_EQ(a.locator.store, b.locator.store);
  EXPECT_EQ(a.locator.path, b.locator.path);
  EXPECT_EQ(a.locator.queue_id, b.locator.queue_id);
  EXPECT_NE(b.locator.queue_id, item.locator.queue_id); // the invalid bytes were replaced
  EXPECT_EQ(a.locator.lines, b.locator.lines);
  EXPECT_EQ(a.message_id, b.message_id);
  EXPECT_EQ(a.subject, b.subject);
  EXPECT_EQ(a.date, b.date);
  EXPECT_EQ(a.sha256, b.sha256);
  EXPECT_EQ(a.truncated, b.truncated);
  EXPECT_EQ(a.evidence_capped, b.evidence_capped);
  ASSERT_EQ(a.identities.size(), b.identities.size());
  ASSERT_FALSE(a.identities.empty());
  for (std::size_t i = 0; i < a.identities.size(); ++i) {
    EXPECT_EQ(a.identities[i].kind, b.identities[i].kind) << i;
    EXPECT_EQ(a.identities[i].role, b.identities[i].role) << i;
    EXPECT_EQ(a.identities[i].value, b.identities[i].value) << i;
    EXPECT_EQ(a.identities[i].field, b.identities[i].field) << i;
    EXPECT_EQ(a.identities[i].alternate, b.identities[i].alternate) << i;
  }
  // The terms are the same: only where the data lives differs.
  std::vector<std::string> ta;
  std::vector<std::string> tb;
  for (auto t = with_json.doc.xapian().termlist_begin(); t != with_json.doc.xapian().termlist_end(); ++t) {
    ta.push_back(*t);
  }
  for (auto t = with_stored.doc.xapian().termlist_begin(); t != with_stored.doc.xapian().termlist_end(); ++t) {
    tb.push_back(*t);
  }
  EXPECT_EQ(ta, tb);
}

// approx_bytes bounds the indexer's queue and uncommitted batch: what Xapian holds grows with the
// distinct terms of a document (a map node each), not only with its positions. A message of
// 2,000 different words (a patch) must count several times one that repeats a word 2,000 times,
// and at least a node per distinct term.
TEST(PreparedDocument, ApproxBytesCountsEachDistinctTermAsANode) {
  PreparedDocument repeated;
  PreparedDocument distinct;
  for (std::uint32_t i = 1; i <= 2000; ++i) {
    repeated.add_posting("XNB:word", i);
    distinct.add_posting("XNB:word" + std::to_string(i), i);
  }
  EXPECT_GE(distinct.approx_bytes(), 2000U * 128U);
  EXPECT_GT(distinct.approx_bytes(), 10 * repeated.approx_bytes());
  EXPECT_GE(repeated.approx_bytes(), 2000U * 4U); // positions still count
  const std::size_t before = repeated.approx_bytes();
  repeated.add_posting("XNB:word", 2001);
  EXPECT_LT(repeated.approx_bytes() - before, 16U); // a position of a term already there
}

TEST(IndexStore, ReplaceAndDeleteByUniqueTerm) {
  ScratchDir dir;
  std::string path = (dir / "xapian").string();
  auto store = IndexStore::open(path, OpenMode::writable);
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE(store->replace(doc("k1", "XID:a@b")));
  ASSERT_TRUE(store->replace(doc("k2", "XID:a@b")));
  ASSERT_TRUE(store->replace(doc("k1", "XID:c@d"))); // replaces, not adds
  ASSERT_TRUE(store->commit());
  EXPECT_EQ(*store->doc_count(), 2U);
  EXPECT_EQ(*store->term_freq("XID:a@b"), 1U);
  auto data = store->document_data(schema::unique_term("src", "k1"));
  ASSERT_TRUE(data && *data);
  EXPECT_EQ(**data, "data-k1");
  ASSERT_TRUE(store->delete_by_term(schema::unique_term("src", "k2")));
  ASSERT_TRUE(store->commit());
  EXPECT_EQ(*store->doc_count(), 1U);
  auto gone = store->document_data(schema::unique_term("src", "k2"));
  ASSERT_TRUE(gone);
  EXPECT_FALSE(*gone);
}

TEST(IndexStore, TransactionIsCancelledUnlessCommitted) {
  ScratchDir dir;
  auto store = IndexStore::open((dir / "xapian").string(), OpenMode::writable);
  ASSERT_TRUE(store);
  {
    auto tx = store->begin_transaction();
    ASSERT_TRUE(tx);
    ASSERT_TRUE(store->add(doc("k1", "XID:a@b")));
  }
  EXPECT_EQ(*store->doc_count(), 0U);
  {
    auto tx = store->begin_transaction();
    ASSERT_TRUE(tx);
    ASSERT_TRUE(store->add(doc("k1", "XID:a@b")));
    ASSERT_TRUE(tx->commit());
  }
  EXPECT_EQ(*store->doc_count(), 1U);
}

TEST(IndexStore, SecondWriterIsIndexLocked) {
  ScratchDir dir;
  std::string path = (dir / "xapian").string();
  auto first = IndexStore::open(path, OpenMode::writable);
  ASSERT_TRUE(first);
  auto second = IndexStore::open(path, OpenMode::writable);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, core::ErrorCode::index_locked);
  EXPECT_NE(second.error().hint.find("maildsar index"), std::string::npos);
  // Readers are fine meanwhile.
  auto reader = IndexStore::open(path, OpenMode::read_only);
  EXPECT_TRUE(reader) << reader.error().message;
}

TEST(IndexStore, SchemaVersionMismatchNeedsFullReindex) {
  ScratchDir dir;
  std::string path = (dir / "xapian").string();
  {
    auto store = IndexStore::open(path, OpenMode::writable);
    ASSERT_TRUE(store);
    EXPECT_EQ(*store->metadata("maildsar.schema_version"), schema::k_schema_version);
    ASSERT_TRUE(store->set_metadata("maildsar.schema_version", "99"));
    ASSERT_TRUE(store->commit());
  }
  for (OpenMode mode : {OpenMode::read_only, OpenMode::writable}) {
    auto again = IndexStore::open(path, mode);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, core::ErrorCode::data);
    EXPECT_EQ(again.error().hint, "run maildsar index --full"); // a newer maildsar's: not ours to drop
  }
  EXPECT_EQ(IndexStore::schema_version_of(path), std::optional<std::string>("99"));
  EXPECT_FALSE(schema::is_older_schema("99"));
  {
    auto store = IndexStore::open(path, OpenMode::overwrite);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->set_metadata("maildsar.schema_version", "3"));
    ASSERT_TRUE(store->commit());
  }
  EXPECT_TRUE(schema::is_older_schema("3"));
  EXPECT_FALSE(schema::is_older_schema(schema::k_schema_version));
  EXPECT_FALSE(schema::is_older_schema("3a"));
  EXPECT_FALSE(schema::is_older_schema(""));
  for (OpenMode mode : {OpenMode::read_only, OpenMode::writable}) {
    auto again = IndexStore::open(path, mode);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, core::ErrorCode::data);
    EXPECT_NE(again.error().message.find("older maildsar"), std::string::npos) << again.error().message;
    EXPECT_EQ(again.error().hint, "run maildsar index: it rebuilds the index from the stores");
  }
  auto rebuilt = IndexStore::open(path, OpenMode::overwrite);
  ASSERT_TRUE(rebuilt);
  EXPECT_EQ(*rebuilt->metadata("maildsar.schema_version"), schema::k_schema_version);
}

TEST(IndexStore, ReadOnlyOpenOfMissingIndexIsNoInput) {
  ScratchDir dir;
  auto store = IndexStore::open((dir / "nope").string(), OpenMode::read_only);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, core::ErrorCode::no_input);
}

// docs/term-prefixes.md is the human copy of the schema table: it must name every field and
// every global prefix, and every role code used in per-role prefixes.
TEST(SchemaDocs, ListsEveryField) {
  std::string doc = maildsar::test::read_file(maildsar::test::source_dir() / "docs/term-prefixes.md");
  ASSERT_FALSE(doc.empty());
  for (const schema::Field &f : schema::k_fields) {
    EXPECT_NE(doc.find("| " + std::string(f.name) + " |"), std::string::npos) << f.name;
    if (f.prefix.empty()) {
      continue;
    }
    std::string shown = f.scope == schema::Scope::per_role ? std::string(f.prefix) + "<ROLE>:"
                                                            : std::string(f.prefix);
    EXPECT_NE(doc.find("`" + shown + "`"), std::string::npos) << shown;
  }
  std::string flat; // whitespace folded, so the role-code list may wrap
  for (char c : doc) {
    bool space = c == ' ' || c == '\n';
    if (!space || (!flat.empty() && flat.back() != ' ')) {
      flat.push_back(space ? ' ' : c);
    }
  }
  std::string codes;
  for (std::string_view code : schema::k_role_codes) {
    codes += (codes.empty() ? "" : " ") + std::string(code);
  }
  EXPECT_NE(flat.find("`" + codes + "`"), std::string::npos) << codes;
  EXPECT_NE(doc.find("Schema version: " + std::string(schema::k_schema_version)), std::string::npos);
}

// compact_state after an erasure: a kill between the two renames of its fallback (the index
// renamed to ".old", the compacted copy not yet in place) must not lose the index — the next
// run puts it back and compacts it; no ".old" or ".compact" copy (which holds what was erased)
// stays behind.
TEST(CompactState, AKillBetweenTheTwoRenamesLosesNoIndex) {
  ScratchDir dir;
  core::Config config;
  config.state_dir = (dir / "state").string();
  std::filesystem::create_directories(config.state_dir);
  const std::string path = index_path(config);
  {
    auto store = IndexStore::open(path, OpenMode::writable);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->replace(doc("k1", "XID:a@b")));
    ASSERT_TRUE(store->replace(doc("k2", "XID:c@d")));
    ASSERT_TRUE(store->replace(doc("k3", "XID:e@f")));
    ASSERT_TRUE(store->commit());
  }
  std::filesystem::rename(path, path + ".old");
  std::filesystem::create_directories(path + ".compact"); // the copy being written
  auto done = compact_state(config);
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(Xapian::Database(path).get_doccount(), 3U);
  EXPECT_FALSE(std::filesystem::exists(path + ".old"));
  EXPECT_FALSE(std::filesystem::exists(path + ".compact"));
  // a copy left beside a complete index is removed too
  std::filesystem::create_directories(path + ".old");
  ASSERT_TRUE(compact_state(config));
  EXPECT_EQ(Xapian::Database(path).get_doccount(), 3U);
  EXPECT_FALSE(std::filesystem::exists(path + ".old"));
}
