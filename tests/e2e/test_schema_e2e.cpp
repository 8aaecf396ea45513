// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end (issue 14): an index an older maildsar built is refused by the read commands with
// one clear message, and the next `index` rebuilds it from the stores, saying so once.
#include "tests/e2e/e2e_support.hpp"
#include "indexer/index_store.hpp"
#include "indexer/schema.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::size_t count_of(const std::string &text, const std::string &what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

TEST(SchemaE2e, AnOlderIndexIsRefusedThenRebuiltByIndexWithOneMessage) {
  ScratchDir dir;
  fs::create_directories(dir.path() / "archive");
  std::string mbox;
  for (int i = 0; i < 20; ++i) {
    mbox += "From x@example.org Mon Nov 13 10:00:00 2023\nFrom: Bob <bob@example.org>\nSubject: m" +
            std::to_string(i) + "\n\nhello\n\n";
  }
  write_file(dir.path() / "archive/a.mbox", mbox);
  const fs::path config = dir.path() / "maildsar.json";
  write_file(config, R"({"state_dir": "state", "sources": [{"name": "archive", "type": "mbox", "path": "archive/*.mbox"}]})");
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);
  auto before = ds(config, {"find", "--email", "bob@example.org"});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  ASSERT_EQ(json_lines(before.out).size(), 20U);

  // What the previous schema version left: the same index, marked as written by it.
  const std::string index = (dir.path() / "state/xapian").string();
  {
    auto store = index::IndexStore::open(index, index::OpenMode::writable);
    ASSERT_TRUE(store) << store.error().message;
    ASSERT_TRUE(store->set_metadata(std::string(index::schema::k_meta_schema_version), "3"));
    ASSERT_TRUE(store->commit());
  }
  auto refused = ds(config, {"find", "--email", "bob@example.org"});
  EXPECT_EQ(refused.exit_code, 65);
  EXPECT_EQ(count_of(refused.err, "built by an older maildsar"), 1U) << refused.err;
  const json error = json::parse(refused.out).at("error"); // --json: the error as JSON, no hits
  EXPECT_EQ(error.at("code"), "data");
  EXPECT_NE(error.at("message").get<std::string>().find("schema version 3"), std::string::npos) << refused.out;
  EXPECT_EQ(error.at("hint"), "run maildsar index: it rebuilds the index from the stores");

  auto rebuilt = ds(config, {"index"});
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt.err;
  EXPECT_EQ(count_of(rebuilt.err, "built by an older maildsar"), 1U) << rebuilt.err;
  EXPECT_EQ(json::parse(rebuilt.out).at("sources").at(0).at("items").get<std::uint64_t>(), 20U);
  EXPECT_EQ(index::IndexStore::schema_version_of(index), std::optional<std::string>(std::string(index::schema::k_schema_version)));
  auto after = ds(config, {"find", "--email", "bob@example.org"});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(json_lines(after.out).size(), 20U);
  // Once rebuilt, nothing more to say.
  auto quiet = ds(config, {"index"});
  EXPECT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(count_of(quiet.err, "older maildsar"), 0U) << quiet.err;
}

} // namespace
} // namespace maildsar::test
