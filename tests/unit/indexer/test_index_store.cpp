// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/index_store.hpp"
#include "indexer/indexer.hpp"

#include "indexer/schema.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <xapian.h>

#include <filesystem>

using namespace maildsar;
using namespace maildsar::index;
using maildsar::test::ScratchDir;

// The schema table guards (compile time).
static_assert(schema::detail::prefixes_are_well_formed());
static_assert(schema::detail::prefixes_are_unambiguous());
static_assert(schema::role_code(connectors::Role::reply_to) == "REPLYTO");
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

TEST(Schema, RoleCodesAreRoleNamesUppercasedWithoutDashes) {
  for (std::size_t i = 0; i < connectors::k_role_count; ++i) {
    std::string name(connectors::to_string(static_cast<connectors::Role>(i)));
    std::string code;
    for (char c : name) {
      if (c != '-') {
        code.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
      }
    }
    EXPECT_EQ(schema::k_role_codes[i], code);
  }
}

TEST(Schema, TermsAreNeverTruncated) {
  std::string long_addr(250, 'a');
  long_addr += "@example.com";
  auto t = schema::any_role_term("email", long_addr);
  EXPECT_TRUE(t.starts_with("XIDH:"));
  EXPECT_EQ(t.size(), 5U + 64U);
  EXPECT_EQ(schema::role_term("email-role", connectors::Role::from, "a@b"), "XEFROM:a@b");
  EXPECT_TRUE(schema::role_term("email-role", connectors::Role::from, long_addr).starts_with("XEFROM:#"));
  auto q = schema::unique_term("src", "/a/b@1");
  EXPECT_TRUE(q.starts_with("Qsrc:"));
  EXPECT_EQ(q.size(), 5U + 64U);
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
    ASSERT_TRUE(store->set_metadata("maildsar.schema_version", "0"));
    ASSERT_TRUE(store->commit());
  }
  for (OpenMode mode : {OpenMode::read_only, OpenMode::writable}) {
    auto again = IndexStore::open(path, mode);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, core::ErrorCode::data);
    EXPECT_EQ(again.error().hint, "run maildsar index --full");
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
