// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/suppression.hpp"

#include "core/secret.hpp"
#include "indexer/document.hpp"
#include "indexer/identity.hpp"
#include "indexer/schema.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sys/stat.h>

using namespace maildsar;
using maildsar::test::ScratchDir;

namespace {

const std::string k_key(32, 'k');

index::Identity email(std::string value, connectors::Role role = connectors::Role::from) {
  return index::Identity{index::IdentityKind::email, role, std::move(value)};
}

index::Suppression erased(std::string request, std::vector<index::SuppressedIdentifier> ids,
                          std::vector<std::pair<std::string, std::string>> kept = {}) {
  return index::Suppression{std::move(request), "m-" + std::to_string(ids.size()), "2026-12-01T10:00:00Z",
                            std::move(ids), std::move(kept)};
}

index::SuppressedIdentifier keyed(std::string_view kind, std::string_view value) {
  return index::SuppressedIdentifier{std::string(kind), core::keyed_hash(k_key, kind, value)};
}

TEST(Suppression, MatchesTheKeyedIdentifiersOfAnErasedSubject) {
  index::SuppressionList list(k_key, {erased("DSAR-1", {keyed("email", "alice@example.com")}),
                                      erased("DSAR-2", {keyed("ip", "203.0.113.45")})});
  EXPECT_EQ(list.match({email("alice@example.com", connectors::Role::cc)}, "mail", "sha-a"),
            std::vector<std::string>{"DSAR-1"});
  EXPECT_EQ(list.match({email("bob@example.com"), index::Identity{index::IdentityKind::ip, connectors::Role::received,
                                                                  "203.0.113.45"}},
                       "mail", "sha-b"),
            std::vector<std::string>{"DSAR-2"});
  EXPECT_TRUE(list.match({email("malice@example.com"), email("bob@example.com")}, "mail", "sha-c").empty());
  ASSERT_NE(list.identifiers_of("DSAR-1"), nullptr);
  EXPECT_EQ(list.identifiers_of("DSAR-1")->size(), 1U);
  EXPECT_EQ(list.identifiers_of("DSAR-9"), nullptr);
}

TEST(Suppression, NamesMatchWhateverTheOrderOfTheirTokens) {
  // erasure::keyed_subject keeps a name as its folded tokens sorted
  index::SuppressionList list(k_key, {erased("DSAR-1", {keyed("name", "alice smith")})});
  const index::Identity written{index::IdentityKind::name, connectors::Role::from, "smith alice"};
  EXPECT_EQ(list.match({written}, "mail", "sha"), std::vector<std::string>{"DSAR-1"});
}

TEST(Suppression, TheMailboxOwnerIsNoMatch) {
  // the owner role says whose mailbox it is, not what the item holds
  index::SuppressionList list(k_key, {erased("DSAR-1", {keyed("email", "alice@example.com")})});
  EXPECT_TRUE(list.match({email("alice@example.com", connectors::Role::owner)}, "mail", "sha").empty());
  EXPECT_EQ(index::keyed_identity(k_key, email("alice@example.com", connectors::Role::owner)), "");
}

TEST(Suppression, RememberedVerdictsStayRightAcrossRolesKindsAndAFullMemo) {
  // match() remembers each identity's verdict (kind and value) and forgets them all when it
  // holds too many: the answers must not depend on what was asked before.
  index::SuppressionList list(k_key, {erased("DSAR-1", {keyed("email", "alice@example.com")})});
  const std::vector<std::string> dsar1{"DSAR-1"};
  EXPECT_TRUE(list.match({email("alice@example.com", connectors::Role::owner)}, "mail", "s").empty());
  EXPECT_EQ(list.match({email("alice@example.com", connectors::Role::to)}, "mail", "s"), dsar1);
  EXPECT_TRUE(list.match({email("alice@example.com", connectors::Role::owner)}, "mail", "s").empty());
  // the same value as another kind is another identity
  EXPECT_TRUE(list.match({index::Identity{index::IdentityKind::name, connectors::Role::from, "alice@example.com"}},
                         "mail", "s")
                  .empty());
  EXPECT_EQ(list.match({email("alice@example.com")}, "mail", "s"), dsar1);
  for (int i = 0; i < 70000; ++i) { // past the memo's bound: it starts again, same answers
    ASSERT_TRUE(list.match({email("user" + std::to_string(i) + "@example.com")}, "mail", "s").empty());
    if (i % 9973 == 0) {
      ASSERT_EQ(list.match({email("alice@example.com", connectors::Role::cc)}, "mail", "s"), dsar1) << i;
    }
  }
  EXPECT_EQ(list.match({email("alice@example.com", connectors::Role::cc)}, "mail", "s"), dsar1);
  // moved (the index run keeps it in an optional): the remembered verdicts move along
  index::SuppressionList moved = std::move(list);
  EXPECT_EQ(moved.match({email("alice@example.com")}, "mail", "s"), dsar1);
}

TEST(Suppression, ItemsTheErasureLeftInPlaceAreNotFlagged) {
  // retained, manual or stale at the erasure: no restore, whatever file they are read from
  index::SuppressionList list(k_key,
                              {erased("DSAR-1", {keyed("email", "alice@example.com")}, {{"mail", "sha-kept"}}),
                               erased("DSAR-2", {keyed("email", "alice@example.com")})});
  EXPECT_EQ(list.match({email("alice@example.com")}, "mail", "sha-kept"), std::vector<std::string>{"DSAR-2"});
  EXPECT_EQ(list.match({email("alice@example.com")}, "mail", "sha-new"), (std::vector<std::string>{"DSAR-1", "DSAR-2"}));
}

TEST(Suppression, AKeptBackupCopyRestoredIntoAMailboxIsFlagged) {
  // The erasure could only mark the backup's copy `manual` (kept, in source "backups"); the same
  // bytes restored into a mailbox are a restore, and flagged.
  index::SuppressionList list(k_key,
                              {erased("DSAR-1", {keyed("email", "alice@example.com")}, {{"backups", "sha-a"}})});
  EXPECT_TRUE(list.match({email("alice@example.com")}, "backups", "sha-a").empty());
  EXPECT_EQ(list.match({email("alice@example.com")}, "mailboxes", "sha-a"), std::vector<std::string>{"DSAR-1"});
}

TEST(Suppression, RecordedPrivatelyOnceAndReadBack) {
  ScratchDir dir;
  core::Config config;
  config.state_dir = (dir / "state").string();
  auto none = index::read_suppressions(config);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_TRUE(none->empty());
  auto no_list = index::SuppressionList::load(config);
  ASSERT_TRUE(no_list) << no_list.error().message;
  EXPECT_FALSE(no_list->has_value()); // nothing suppressed: no key needed, nothing checked

  auto key = core::load_or_create_secret(config.state_dir);
  ASSERT_TRUE(key) << key.error().message;
  index::Suppression s{"DSAR-1", "m1", "2026-12-01T10:00:00Z",
                       {index::SuppressedIdentifier{"email", core::keyed_hash(*key, "email", "alice@example.com")}},
                       {{"mail", "sha-retained"}, {"mail", "sha-failed"}}};
  ASSERT_TRUE(index::record_suppression(config, s));
  // a resumed erase of the same manifest finished the failed item: only the retained one stays
  s.kept = {{"mail", "sha-retained"}};
  ASSERT_TRUE(index::record_suppression(config, s));

  struct stat st {};
  ASSERT_EQ(::stat(index::suppression_path(config).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777U, 0600U);
  auto all = index::read_suppressions(config);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 1U);
  EXPECT_EQ((*all)[0].request, "DSAR-1");
  EXPECT_EQ((*all)[0].erased, "2026-12-01T10:00:00Z");
  ASSERT_EQ((*all)[0].identifiers.size(), 1U);
  EXPECT_EQ((*all)[0].identifiers[0].hash, core::keyed_hash(*key, "email", "alice@example.com"));

  auto list = index::SuppressionList::load(config);
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_TRUE(list->has_value());
  EXPECT_TRUE((*list)->match({email("alice@example.com")}, "mail", "sha-retained").empty());
  EXPECT_EQ((*list)->match({email("alice@example.com")}, "mail", "sha-failed"), std::vector<std::string>{"DSAR-1"});
}

TEST(Suppression, AListWithoutItsKeyIsAnError) {
  // keyed hashes under a lost key match nothing: never an empty answer, and never a new key
  ScratchDir dir;
  core::Config config;
  config.state_dir = (dir / "state").string();
  ASSERT_TRUE(core::load_or_create_secret(config.state_dir));
  ASSERT_TRUE(index::record_suppression(config, erased("DSAR-1", {keyed("email", "alice@example.com")})));
  std::filesystem::remove(std::filesystem::path(config.state_dir) / core::k_secret_file);
  auto list = index::SuppressionList::load(config);
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().code, core::ErrorCode::no_input);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(config.state_dir) / core::k_secret_file));
}

TEST(Suppression, AFlaggedItemCarriesItsRequestsTerm) {
  index::Normalizer norm(index::NormalizeOptions{});
  index::SuppressionList list(k_key, {erased("DSAR-1", {keyed("email", "alice@example.com")})});
  index::DocumentContext ctx{"mail", &norm};
  ctx.suppression = &list;
  connectors::Item item;
  item.locator.source = "mail";
  item.locator.path = "/m/1";
  item.sha256 = "sha";
  item.addresses.push_back(connectors::RawAddress{connectors::Role::to, "", "Alice@Example.com"});
  index::BuiltDocument flagged = index::build_document(item, ctx);
  EXPECT_EQ(flagged.suppressed, std::vector<std::string>{"DSAR-1"});
  const auto terms = flagged.doc.take_terms();
  EXPECT_NE(std::ranges::find(terms, index::schema::suppressed_term("DSAR-1")), terms.end());

  item.addresses[0].addr = "bob@example.com";
  index::BuiltDocument other = index::build_document(item, ctx);
  EXPECT_TRUE(other.suppressed.empty());
  const auto other_terms = other.doc.take_terms();
  EXPECT_EQ(std::ranges::find_if(other_terms, [](const std::string &t) { return t.starts_with("XSUPP:"); }),
            other_terms.end());
}

} // namespace
