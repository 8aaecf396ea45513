// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: a folder of loose messages (issue 17, source type emlfolder) through the built
// binary: find covers every file below the root whatever its name, and an mbox file in it;
// plan -> approve -> erase removes the subject's message files and rewrites the mbox file
// without the subject's message; everything else stays byte-identical; verify is clean.
#include "tests/e2e/e2e_support.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <string>

using maildsar::test::ds;
using maildsar::test::json_lines;
using maildsar::test::read_file;
using maildsar::test::ScratchDir;
using maildsar::test::write_file;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string message(const std::string &id, const std::string &from, const std::string &to, const std::string &subject) {
  return "From: " + from + "\nTo: " + to + "\nSubject: " + subject + "\nMessage-ID: <" + id +
         ">\nDate: Mon, 26 Feb 2024 10:00:00 +0000\n\nRegarding the file.\n";
}

} // namespace

TEST(EmlFolderE2e, FoundPlannedErasedAndVerified) {
  ScratchDir dir;
  const fs::path hold = dir.path() / "hold";
  const std::string alice = "alice.smith@example.com";
  write_file(hold / "case-4711/0001.eml", message("h1@example.net", alice, "bob@example.com", "Complaint"));
  write_file(hold / "case-4711/attachments/2", message("h2@example.net", "bob@example.com", "Cc <" + alice + ">", "Re"));
  const std::string keep1 = message("h3@example.net", "carol@example.com", "dave@example.com", "Other");
  const std::string kept_mbox_message = message("h5@example.net", "erin@example.com", "frank@example.com", "Kept");
  write_file(hold / "archive", "From x@example.net Mon Feb 26 10:00:00 2024\n" + kept_mbox_message +
                                   "\nFrom y@example.net Mon Feb 26 10:00:00 2024\n" +
                                   message("h4@example.net", alice, "frank@example.com", "In the mbox"));
  write_file(hold / "other.eml", keep1);
  const fs::path config = dir.path() / "maildsar.json";
  write_file(config, R"({"state_dir": "state", "sources": [{"name": "legal", "type": "emlfolder", "path": "hold"}]})");

  auto idx = maildsar::test::index_json(config);
  ASSERT_EQ(idx.at("errors"), 0) << idx.dump();
  auto found = ds(config, {"find", "--email", alice});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  std::set<std::string> paths;
  for (const json &h : json_lines(found.out)) {
    EXPECT_EQ(h.at("store"), "emlfolder") << h.dump();
    EXPECT_EQ(h.at("source"), "legal");
    paths.insert(fs::path(h.at("path").get<std::string>()).lexically_relative(hold).string());
  }
  EXPECT_EQ(paths, (std::set<std::string>{"case-4711/0001.eml", "case-4711/attachments/2", "archive"})) << found.out;
  EXPECT_EQ(json_lines(found.out).size(), 3U);

  fs::create_directories(dir.path() / "out");
  const fs::path manifest = dir.path() / "out/manifest.json";
  auto plan = ds(config, {"plan", "--email", alice, "--out", manifest.string(), "--operator", "dpo-anna"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err << plan.out;
  json mj = json::parse(read_file(manifest));
  ASSERT_EQ(mj.at("items").size(), 3U) << mj.dump(1);
  for (const json &item : mj.at("items")) {
    EXPECT_EQ(item.at("locator").at("store"), "emlfolder");
    EXPECT_NE(item.at("reason").get<std::string>().find("loose messages"), std::string::npos) << item.dump();
  }
  ASSERT_EQ(ds(config, {"approve", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  auto erase = ds(config, {"erase", manifest.string(), "--operator", "ops-cleo"});
  ASSERT_EQ(erase.exit_code, 0) << erase.err << erase.out;

  EXPECT_FALSE(fs::exists(hold / "case-4711/0001.eml"));
  EXPECT_FALSE(fs::exists(hold / "case-4711/attachments/2"));
  EXPECT_EQ(read_file(hold / "other.eml"), keep1);
  const std::string archive = read_file(hold / "archive");
  EXPECT_EQ(archive.find(alice), std::string::npos) << archive;
  EXPECT_NE(archive.find(kept_mbox_message), std::string::npos) << archive;
  EXPECT_TRUE(json_lines(ds(config, {"find", "--email", alice}).out).empty());
  EXPECT_EQ(json_lines(ds(config, {"find", "--email", "carol@example.com"}).out).size(), 1U);
  auto verify = ds(config, {"verify", "--email", alice});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}
