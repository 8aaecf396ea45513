// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: suppression on restore (issue 17). Erase a subject, restore a Maildir file and an
// mbox from a copy taken before, index again: exactly the restored items are flagged, status
// says so (exit 1), `plan --resurrected` plans exactly them, and after their erasure the estate
// is clean again.
#include "tests/e2e/e2e_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string k_request = "DSAR-2026-0042";

struct Samples {
  ScratchDir dir;
  fs::path root = dir.path() / "s";
  fs::path config = root / "maildsar.json";
  fs::path subject = root / "subject.json";
  fs::path backup = dir.path() / "backup";

  Samples() {
    copy_tree(fs::path(MAILDSAR_SOURCE_DIR) / "samples", root);
    fs::remove_all(root / "state");
    copy_tree(root, backup); // the night's backup, before any erasure
    fs::create_directories(dir.path() / "out");
  }
  fs::path out(const std::string &name) const { return dir.path() / "out" / name; }

  /** plan (dpo-anna) + approve (admin-ben) + erase; returns the erase report. */
  json erase(const std::vector<std::string> &who, const std::string &manifest) const {
    std::vector<std::string> plan{"plan", "--out", out(manifest).string(), "--operator", "dpo-anna"};
    plan.insert(plan.end(), who.begin(), who.end());
    auto p = ds(config, plan);
    EXPECT_EQ(p.exit_code, 0) << p.err << p.out;
    auto a = ds(config, {"approve", out(manifest).string(), "--operator", "admin-ben"});
    EXPECT_EQ(a.exit_code, 0) << a.err << a.out;
    auto e = ds(config, {"erase", out(manifest).string(), "--operator", "admin-ben"});
    EXPECT_EQ(e.exit_code, 0) << e.err << e.out;
    auto lines = json_lines(e.out);
    return lines.empty() ? json() : lines.back();
  }
  std::vector<json> find() const {
    auto r = ds(config, {"find", "--subject", subject.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json_lines(r.out);
  }
  json status(int expected_exit) const {
    auto r = ds(config, {"status"});
    EXPECT_EQ(r.exit_code, expected_exit) << r.err << r.out;
    auto lines = json_lines(r.out);
    return lines.empty() ? json() : lines.front();
  }
  void restore(const std::string &relative) const {
    fs::create_directories((root / relative).parent_path());
    fs::copy_file(backup / relative, root / relative, fs::copy_options::overwrite_existing);
  }
};

bool flagged(const json &hit) {
  return hit.contains("marks") && std::ranges::find(hit["marks"], "suppressed") != hit["marks"].end();
}

TEST(Suppression, RestoredItemsAreFlaggedPlannedAgainAndErased) {
  Samples s;
  index_json(s.config);
  ASSERT_FALSE(s.find().empty());
  json first = s.erase({"--subject", s.subject.string()}, "m1.json");
  EXPECT_TRUE(s.find().empty());
  json clean = s.status(0);
  EXPECT_EQ(clean["suppressed"]["erasures"], 1);
  EXPECT_EQ(clean["suppressed"]["unhandled"], 0);
  EXPECT_EQ(fs::status(s.root / "state/suppression.sqlite3").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  // A restore from backup: a colleague's message that copied the subject, and the whole mbox.
  const std::string maildir_file = "mail/example.com/bob.jones/Maildir/cur/1700000300.M4P100.mx1:2,RS";
  s.restore(maildir_file);
  s.restore("archive/2023.mbox");
  json summary = index_json(s.config);
  EXPECT_EQ(summary["suppressed"], 3);
  EXPECT_EQ(source_counts(summary, "mailboxes")["suppressed"], 1);
  EXPECT_EQ(source_counts(summary, "archive")["suppressed"], 2);

  std::vector<json> hits = s.find();
  ASSERT_EQ(hits.size(), 3U);
  std::set<std::string> restored;
  for (const json &h : hits) {
    EXPECT_TRUE(flagged(h)) << h.dump();
    EXPECT_EQ(h["suppressed_by"], json::array({k_request}));
    restored.insert(h["id"].get<std::string>());
  }
  // The other person's items are not flagged, the restored message that copies the subject is.
  auto bob = ds(s.config, {"find", "--email", "bob.jones@example.com"});
  ASSERT_EQ(bob.exit_code, 0) << bob.err;
  for (const json &h : json_lines(bob.out)) {
    EXPECT_EQ(flagged(h), restored.contains(h["id"].get<std::string>())) << h.dump();
  }

  json back = s.status(1);
  EXPECT_EQ(back["suppressed"]["unhandled"], 3);
  ASSERT_EQ(back["suppressed"]["requests"].size(), 1U);
  EXPECT_EQ(back["suppressed"]["requests"][0]["request"], k_request);
  EXPECT_EQ(back["suppressed"]["requests"][0]["items"], 3);
  EXPECT_EQ(back["suppressed"]["requests"][0]["sources"]["archive"], 2);

  // Under the original rules: `plan --resurrected` plans exactly the flagged items.
  auto none = ds(s.config, {"plan", "--request", "DSAR-1999-0001", "--resurrected", "--out",
                            s.out("none.json").string(), "--operator", "dpo-anna"});
  EXPECT_EQ(none.exit_code, 66) << none.err; // no completed erasure of that request
  auto both = ds(s.config, {"plan", "--request", k_request, "--resurrected", "--email", "alice.smith@example.com",
                            "--out", s.out("both.json").string(), "--operator", "dpo-anna"});
  EXPECT_EQ(both.exit_code, 64) << both.err;
  json again = s.erase({"--request", k_request, "--resurrected"}, "m2.json");
  std::ifstream in(s.out("m2.json"));
  json manifest = json::parse(in);
  std::set<std::string> planned;
  for (const json &item : manifest["items"]) {
    planned.insert(item["id"].get<std::string>());
    EXPECT_EQ(item["action"], "delete") << item.dump();
  }
  EXPECT_EQ(planned, restored);
  EXPECT_FALSE(manifest["subject"].empty()); // the keyed identifiers, as the list keeps them

  index_json(s.config);
  EXPECT_TRUE(s.find().empty());
  EXPECT_EQ(s.status(0)["suppressed"]["unhandled"], 0);
  auto v = ds(s.config, {"verify", "--subject", s.subject.string(), "--operator", "admin-ben", "--out",
                         s.out("cert.json").string()});
  EXPECT_EQ(v.exit_code, 0) << v.err << v.out;
}

TEST(Suppression, ARestoredLogIsFlaggedByTransaction) {
  Samples s;
  index_json(s.config);
  s.erase({"--subject", s.subject.string()}, "m1.json");
  s.restore("logs/mail.log");
  json summary = index_json(s.config);
  EXPECT_GE(source_counts(summary, "postfix")["suppressed"].get<int>(), 1);
  auto r = ds(s.config, {"find", "--email", "alice.smith@example.com"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<json> hits = json_lines(r.out);
  ASSERT_FALSE(hits.empty());
  std::set<std::string> subjects;
  for (const json &h : hits) {
    EXPECT_EQ(h["store"], "maillog");
    EXPECT_TRUE(flagged(h)) << h.dump();
    subjects.insert(h["id"].get<std::string>());
  }
  // Transactions of the restored log that are not the subject's are not flagged; the log has
  // one (the supplier relay's delivery).
  auto all = ds(s.config, {"find", "--ip", "198.51.100.20"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  std::size_t others = 0;
  for (const json &h : json_lines(all.out)) {
    if (h["store"] == "maillog" && !subjects.contains(h["id"].get<std::string>())) {
      ++others;
      EXPECT_FALSE(flagged(h)) << h.dump();
    }
  }
  EXPECT_GT(others, 0U);
  EXPECT_EQ(s.status(1)["suppressed"]["requests"][0]["sources"]["postfix"], hits.size());
  s.erase({"--request", k_request, "--resurrected"}, "m2.json");
  index_json(s.config);
  s.status(0);
  auto after = ds(s.config, {"find", "--email", "alice.smith@example.com"});
  EXPECT_TRUE(json_lines(after.out).empty()) << after.out;
}

TEST(Suppression, AHoldKeepsRestoredItemsWithoutAnAlert) {
  Samples s;
  index_json(s.config);
  s.erase({"--subject", s.subject.string()}, "m1.json");
  s.restore("archive/2023.mbox");
  index_json(s.config);
  EXPECT_EQ(s.status(1)["suppressed"]["unhandled"], 2);
  // Litigation hold on the archive: the restored messages are held, not an alarm.
  std::ifstream in(s.config);
  json config = json::parse(in, nullptr, true, true);
  config["holds"] = json::array({{{"source", "archive"}, {"reason", "litigation 2026-17"}, {"until", "2099-12-31"}}});
  std::ofstream(s.config) << config.dump(2);
  json held = s.status(0);
  EXPECT_EQ(held["suppressed"]["unhandled"], 0);
  EXPECT_EQ(held["suppressed"]["requests"][0]["held"], 2);
}

TEST(Suppression, AMessageRestoredFromABackupArchiveIsFlagged) {
  // The backup is a source too: erase can only mark its copy `manual` ("suppressed on restore").
  // Restoring that copy into the mailbox brings the same bytes into another source: flagged.
  const fs::path tar = find_program("tar");
  if (tar.empty()) {
    GTEST_SKIP() << "tar is needed to write the backup";
  }
  Samples s;
  const std::string file = "mail/example.com/bob.jones/Maildir/cur/1700000300.M4P100.mx1:2,RS";
  fs::create_directories(s.root / "backups");
  auto made = run({tar.string(), "-czf", (s.root / "backups/mail.tar.gz").string(), "-C", s.backup.string(), file});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  {
    std::ifstream in(s.config);
    json config = json::parse(in, nullptr, true, true);
    config["sources"].push_back({{"name", "backups"}, {"type", "archive"}, {"path", "backups/*.tar.gz"}});
    std::ofstream(s.config) << config.dump(2);
  }
  index_json(s.config);
  s.erase({"--subject", s.subject.string()}, "m1.json");
  std::ifstream in(s.out("m1.json"));
  const json manifest = json::parse(in);
  std::size_t manual = 0;
  for (const json &item : manifest["items"]) {
    manual += item["locator"]["store"] == "archive" && item["action"] == "manual" ? 1U : 0U;
  }
  EXPECT_EQ(manual, 1U);
  EXPECT_EQ(s.status(0)["suppressed"]["unhandled"], 0); // the backup's copy is known, not flagged

  s.restore(file); // from the backup
  json summary = index_json(s.config);
  EXPECT_EQ(source_counts(summary, "mailboxes")["suppressed"], 1);
  std::size_t flagged_items = 0;
  for (const json &h : s.find()) {
    if (flagged(h)) {
      ++flagged_items;
      EXPECT_EQ(h["source"], "mailboxes") << h.dump();
    }
  }
  EXPECT_EQ(flagged_items, 1U);
  EXPECT_EQ(s.status(1)["suppressed"]["unhandled"], 1);
}

} // namespace
} // namespace maildsar::test
