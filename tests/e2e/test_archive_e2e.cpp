// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: backup archives (issue 17 item 2) through the built binary. The subject's mail is
// spread over a Postfix queue (samples/queue), a tar.gz backup of the sample Maildirs with an
// mbox inside (made here with the `tar` program) and a folder of loose messages: find returns
// each with its locator (the archive's items with their member path), export copies the archive
// items' exact bytes, plan makes them manual with the backup reason, erase leaves the archive
// untouched and verify does not claim the archive's items are gone.
#include "tests/e2e/e2e_support.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>

using maildsar::test::ds;
using maildsar::test::json_lines;
using maildsar::test::read_file;
using maildsar::test::ScratchDir;
using maildsar::test::write_file;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string k_alice = "alice.smith@example.com";
const std::string k_reason = "backup: cannot be changed in place; suppressed on restore";
const std::string k_inbox_member = "home/alice.smith/Maildir/cur/1700000000.M1P100.mx1:2,S";
const std::string k_mbox_member = "var/mail/2023.mbox";

struct Estate {
  fs::path config;
  fs::path backup;
};

Estate make_estate(const ScratchDir &dir, const std::string &archive_keys = "") {
  const fs::path samples = maildsar::test::source_dir() / "samples";
  // The backup: alice's and bob's Maildirs and the 2023 mbox archive, as tar.gz.
  const fs::path staging = dir / "staging";
  maildsar::test::copy_tree(samples / "mail/example.com", staging / "home");
  fs::create_directories(staging / "var/mail");
  fs::copy_file(samples / "archive/2023.mbox", staging / k_mbox_member);
  // and an old Outlook file (read through the PST worker from a temporary copy in the state dir)
  const fs::path corpus = maildsar::test::corpus_dir();
  if (!corpus.empty() && fs::exists(corpus / "pst/pstsdk/sample1.pst")) {
    fs::copy_file(corpus / "pst/pstsdk/sample1.pst", staging / "home/alice.smith/outlook.pst");
  }
  fs::create_directories(dir / "backups");
  const fs::path backup = dir / "backups/home-2023.tar.gz";
  auto tar = maildsar::test::run({maildsar::test::find_program("tar").string(), "-C", staging.string(), "-czf",
                                  backup.string(), "home", "var"});
  EXPECT_EQ(tar.exit_code, 0) << tar.err;
  // The queue and a folder of loose messages (a legal export).
  maildsar::test::copy_tree(samples / "queue/postfix", dir / "spool/postfix");
  write_file(dir / "exports/case-17/reply.eml",
             "From: Carol <carol@example.org>\nTo: Alice Smith <alice.smith@example.com>\nSubject: case 17\n"
             "Message-ID: <case-17@example.org>\nDate: Tue, 14 Nov 2023 10:00:00 +0000\n\nSee attached.\n");
  const fs::path config = dir / "maildsar.json";
  write_file(config, R"({"state_dir": "state", "sources": [
    {"name": "pfqueue", "type": "postfix-queue", "path": "spool/postfix"},
    {"name": "backups", "type": "archive", "path": "backups/*.tar.gz")" + archive_keys + R"(},
    {"name": "exports", "type": "emlfolder", "path": "exports"}]})");
  return {config, backup};
}

/** The hits of one store, by key (member or path). */
std::map<std::string, json> hits_of(const std::string &out, const std::string &store) {
  std::map<std::string, json> by;
  for (const json &h : json_lines(out)) {
    if (h.at("store") == store) {
      std::string key = store == "archive" ? h.at("member").get<std::string>() : h.at("path").get<std::string>();
      if (h.contains("offset")) {
        key += "@" + std::to_string(h.at("offset").get<std::uint64_t>());
      }
      by[key] = h;
    }
  }
  return by;
}

} // namespace

TEST(ArchiveE2e, FoundExportedPlannedManualAndNotChanged) {
  if (maildsar::test::find_program("tar").empty()) {
    GTEST_SKIP() << "no tar program";
  }
  ScratchDir dir;
  const Estate e = make_estate(dir);
  auto idx = maildsar::test::index_json(e.config);
  ASSERT_EQ(idx.at("errors"), 0) << idx.dump();
  // 6 Maildir messages, the 3 messages of the mbox member, the PST member's message.
  const bool with_pst = fs::exists(dir / "staging/home/alice.smith/outlook.pst");
  EXPECT_EQ(maildsar::test::source_counts(idx, "backups").at("items"), with_pst ? 10 : 9) << idx.dump();
  EXPECT_TRUE(!fs::exists(dir / "state/archive-tmp") || fs::is_empty(dir / "state/archive-tmp"));
  if (with_pst) {
    auto pst_hit = ds(e.config, {"find", "--email", "terrymah@microsoft.com"});
    auto in_pst = hits_of(pst_hit.out, "archive");
    ASSERT_EQ(in_pst.size(), 1U) << pst_hit.out;
    EXPECT_EQ(in_pst.begin()->second.at("member"), "home/alice.smith/outlook.pst");
    EXPECT_EQ(in_pst.begin()->second.at("node_id"), 0x200024);
    // export renders it from a temporary copy of the member, as a PST file's items are
    const fs::path pst_pkg = dir / "pst-package";
    auto px = ds(e.config, {"export", "--email", "terrymah@microsoft.com", "--out", pst_pkg.string(), "--operator", "dpo"});
    ASSERT_EQ(px.exit_code, 0) << px.err << px.out;
    const json summary = json_lines(px.out).back();
    EXPECT_EQ(summary.dump().find("\"problems\":[{"), std::string::npos) << summary.dump();
    std::size_t rendered = 0;
    for (const auto &f : fs::recursive_directory_iterator(pst_pkg / "items")) {
      rendered += f.is_regular_file() && read_file(f.path()).find("terrymah@microsoft.com") != std::string::npos ? 1U : 0U;
    }
    EXPECT_GE(rendered, 1U) << "no rendering of the PST member's item in the package";
    EXPECT_TRUE(fs::is_empty(dir / "state/archive-tmp")) << "the temporary copy was not removed";
  }

  auto found = ds(e.config, {"find", "--email", k_alice});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  auto archived = hits_of(found.out, "archive");
  ASSERT_TRUE(archived.contains(k_inbox_member)) << found.out;
  const json &inbox = archived.at(k_inbox_member);
  EXPECT_EQ(inbox.at("source"), "backups");
  EXPECT_EQ(inbox.at("path"), e.backup.string());
  EXPECT_FALSE(inbox.contains("folder")); // the inbox ("" folder)
  EXPECT_EQ(archived.at("home/alice.smith/Maildir/.Sent/cur/1700000200.M3P100.mx1:2,S").at("folder"), ".Sent");
  EXPECT_FALSE(inbox.contains("offset"));
  ASSERT_TRUE(archived.contains(k_mbox_member + "@0")) << found.out;
  const json &mboxed = archived.at(k_mbox_member + "@0");
  EXPECT_GT(mboxed.at("length").get<std::uint64_t>(), 0U);
  EXPECT_EQ(hits_of(found.out, "postfix-queue").size(), 2U) << found.out;
  EXPECT_EQ(hits_of(found.out, "emlfolder").size(), 1U) << found.out;

  // export: the archive item's bytes, exactly as the member holds them
  const fs::path pkg = dir / "package";
  auto ex = ds(e.config, {"export", "--email", k_alice, "--out", pkg.string(), "--operator", "dpo"});
  ASSERT_EQ(ex.exit_code, 0) << ex.err << ex.out;
  const std::string member_bytes =
      read_file(maildsar::test::source_dir() / "samples/mail/example.com/alice.smith/Maildir/cur/1700000000.M1P100.mx1:2,S");
  bool copied = false;
  for (const auto &f : fs::recursive_directory_iterator(pkg)) {
    copied = copied || (f.is_regular_file() && read_file(f.path()) == member_bytes);
  }
  EXPECT_TRUE(copied) << "no copy of " << k_inbox_member << " in the package";

  // plan: manual with the backup reason
  const fs::path manifest = dir / "manifest.json";
  auto plan = ds(e.config, {"plan", "--email", k_alice, "--out", manifest.string(), "--operator", "dpo-anna"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err << plan.out;
  json mj = json::parse(read_file(manifest));
  std::size_t manual = 0;
  for (const json &item : mj.at("items")) {
    if (item.at("locator").at("store") == "archive") {
      EXPECT_EQ(item.at("action"), "manual") << item.dump();
      EXPECT_EQ(item.at("reason"), k_reason) << item.dump();
      EXPECT_FALSE(item.at("locator").at("member").get<std::string>().empty());
      EXPECT_NE(item.at("instructions").get<std::string>().find(e.backup.string()), std::string::npos);
      ++manual;
    }
  }
  EXPECT_EQ(manual, archived.size());

  // erase: the emlfolder message goes, the backup stays byte for byte
  const std::string before = read_file(e.backup);
  ASSERT_EQ(ds(e.config, {"approve", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  auto erase = ds(e.config, {"erase", manifest.string(), "--operator", "ops-cleo"});
  ASSERT_EQ(erase.exit_code, 0) << erase.err << erase.out;
  EXPECT_FALSE(fs::exists(dir / "exports/case-17/reply.eml"));
  EXPECT_EQ(read_file(e.backup), before);
  auto after = ds(e.config, {"find", "--email", k_alice});
  EXPECT_EQ(hits_of(after.out, "archive").size(), archived.size()) << after.out;
  // verify: the archive's items are counted as manual (not as gone, not as residue); the
  // certificate names the reason
  auto verify = ds(e.config, {"verify", "--email", k_alice});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  json v = json_lines(verify.out).at(0);
  EXPECT_EQ(v.at("retained"), archived.size() + 2) << v.dump(); // and the two queued messages
  EXPECT_TRUE(v.at("remaining").empty()) << v.dump();
  EXPECT_NE(read_file(v.at("certificate").get<std::string>()).find("manual: " + k_reason), std::string::npos);
}

/** Every member of an archive: name -> bytes (read with the tar program, not with maildsar). */
std::map<std::string, std::string> members_of(const fs::path &archive, const fs::path &scratch) {
  fs::remove_all(scratch);
  fs::create_directories(scratch);
  auto tar = maildsar::test::run({maildsar::test::find_program("tar").string(), "-C", scratch.string(), "-xzf",
                                  archive.string()});
  EXPECT_EQ(tar.exit_code, 0) << tar.err;
  std::map<std::string, std::string> out;
  for (const auto &f : fs::recursive_directory_iterator(scratch)) {
    if (f.is_regular_file()) {
      out[fs::relative(f.path(), scratch).string()] = read_file(f.path());
    }
  }
  return out;
}

TEST(ArchiveE2e, RewriteRemovesTheSubjectsMembersAndMessagesAndKeepsTheRest) {
  if (maildsar::test::find_program("tar").empty()) {
    GTEST_SKIP() << "no tar program";
  }
  ScratchDir dir;
  const Estate e = make_estate(dir, R"(, "rewrite": true)");
  maildsar::test::index_json(e.config);
  auto found = ds(e.config, {"find", "--email", k_alice});
  auto archived = hits_of(found.out, "archive");
  ASSERT_TRUE(archived.contains(k_inbox_member)) << found.out;
  ASSERT_TRUE(archived.contains(k_mbox_member + "@0")) << found.out;

  const fs::path manifest = dir / "manifest.json";
  ASSERT_EQ(ds(e.config, {"plan", "--email", k_alice, "--out", manifest.string(), "--operator", "dpo-anna"}).exit_code, 0);
  json mj = json::parse(read_file(manifest));
  std::size_t deletes = 0;
  for (const json &item : mj.at("items")) {
    if (item.at("locator").at("store") == "archive" && !item.at("locator").contains("node_id")) {
      EXPECT_EQ(item.at("action"), "delete") << item.dump();
      ++deletes;
    }
  }
  EXPECT_GE(deletes, 2U);
  const auto before = members_of(e.backup, dir / "before");
  ASSERT_EQ(ds(e.config, {"approve", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  auto erase = ds(e.config, {"erase", manifest.string(), "--operator", "ops-cleo"});
  ASSERT_EQ(erase.exit_code, 0) << erase.err << erase.out;
  const auto after = members_of(e.backup, dir / "after");

  // alice's Maildir messages that name her are gone; every other member is byte for byte as it was
  EXPECT_FALSE(after.contains(k_inbox_member));
  for (const auto &[name, bytes] : after) {
    if (name == k_mbox_member) {
      continue;
    }
    ASSERT_TRUE(before.contains(name)) << name;
    EXPECT_EQ(bytes, before.at(name)) << name;
  }
  EXPECT_TRUE(after.contains("home/bob.jones/Maildir/cur/1700000400.M5P100.mx1:2,S"));
  // the mbox member lost the messages that name alice (the first and the third, by Reply-To) and
  // kept the other, unchanged
  const std::string &mbox_before = before.at(k_mbox_member);
  std::string expected;
  std::uint64_t pos = 0;
  std::size_t cut = 0;
  for (const auto &[key, hit] : archived) { // keys sort by member, then offset as text: one digit here
    if (hit.at("member") == k_mbox_member) {
      const std::uint64_t offset = hit.at("offset");
      expected += mbox_before.substr(pos, offset - pos);
      pos = offset + hit.at("length").get<std::uint64_t>();
      ++cut;
    }
  }
  expected += mbox_before.substr(pos);
  EXPECT_EQ(cut, 2U);
  EXPECT_EQ(after.at(k_mbox_member), expected);
  EXPECT_NE(expected.find("Invoice 2023-118"), std::string::npos);
  // still a gzip tar; nothing of the subject is found in it, and verify finds nothing left
  EXPECT_EQ(read_file(e.backup).substr(0, 2), "\x1f\x8b");
  EXPECT_TRUE(hits_of(ds(e.config, {"find", "--email", k_alice}).out, "archive").empty());
  auto verify = ds(e.config, {"verify", "--email", k_alice});
  json v = json_lines(verify.out).at(0);
  EXPECT_TRUE(v.at("remaining").empty()) << v.dump();
}
