// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: plan -> approve -> erase -> verify on generated estates, with refusals and crashes.
#include "tests/e2e/e2e_support.hpp"
#include "core/sanitizers.hpp"
#include "tests/e2e/estate.hpp"
#include "tests/e2e/estate_connectors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/** Every regular file under `root` (state dir excluded) -> its bytes. */
std::map<std::string, std::string> snapshot(const fs::path &root) {
  std::map<std::string, std::string> files;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    if ((it->path().filename() == "state" || it->path().filename() == "out") && it->is_directory()) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && !it->is_symlink()) {
      files[it->path().string()] = read_file(it->path());
    }
  }
  return files;
}

std::string gunzip(const fs::path &path) {
  auto r = run({find_program("gzip").string(), "-dc", path.string()});
  return r.out;
}

std::vector<std::string> split_lines(const std::string &text) {
  std::vector<std::string> lines;
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) {
      end = text.size();
    }
    lines.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

/** The paths whose bytes differ between two snapshots (for short failure messages). */
std::string differences(const std::map<std::string, std::string> &a, const std::map<std::string, std::string> &b) {
  std::string out;
  for (const auto &[path, bytes] : a) {
    if (!b.contains(path)) {
      out += "  only before: " + path + "\n";
    } else if (b.at(path) != bytes) {
      out += "  changed: " + path + "\n";
    }
  }
  for (const auto &[path, bytes] : b) {
    if (!a.contains(path)) {
      out += "  only after: " + path + "\n";
    }
  }
  return out;
}

/** True when `bytes` (lower-cased) hold `address` as a whole address, not inside another one
    (the near miss malice.smith@example.com legitimately stays). */
bool holds_address(const std::string &bytes, const std::string &address) {
  auto part_of_address = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '+' || c == '-';
  };
  for (std::size_t at = bytes.find(address); at != std::string::npos; at = bytes.find(address, at + 1)) {
    const bool before = at > 0 && part_of_address(bytes[at - 1]);
    const std::size_t end = at + address.size();
    const bool after = end < bytes.size() && std::isalnum(static_cast<unsigned char>(bytes[end])) != 0;
    if (!before && !after) {
      return true;
    }
  }
  return false;
}

/** index + plan (by alice-dpo) + approve (by bob-dpo); returns the manifest path. */
fs::path plan_and_approve(const fs::path &config, const fs::path &subject, const fs::path &dir) {
  EXPECT_EQ(ds(config, {"index"}).exit_code, 0);
  fs::create_directories(dir / "out");
  fs::path manifest = dir / "out/manifest.json";
  auto p = ds(config, {"plan", "--subject", subject.string(), "--out", manifest.string(), "--operator", "dpo-anna"});
  EXPECT_EQ(p.exit_code, 0) << p.err << p.out;
  auto a = ds(config, {"approve", manifest.string(), "--operator", "admin-ben"});
  EXPECT_EQ(a.exit_code, 0) << a.err << a.out;
  return manifest;
}

/** What the independent scanner (Python, no maildsar code) says about `root`. */
RunResult independent_scan(const fs::path &root) {
  fs::path script = fs::path(MAILDSAR_SOURCE_DIR) / "tests/e2e/independent_scan.py";
  // Skipped: our state and outputs, the subject file itself, and Maildir tmp/ (deliveries in
  // progress, which no reader and no erasure touches).
  return run({find_program("python3").string(), script.string(), root.string(), "--skip",
              (root / "state").string(), "--skip", (root / "out").string(), "--skip",
              (root / "subject.json").string(), "--skip-maildir-tmp"});
}

class Erasure : public ::testing::Test {
protected:
  void SetUp() override {
    if (find_program("python3").empty() || find_program("gzip").empty()) {
      GTEST_SKIP() << "python3 and gzip are needed for the independent scan";
    }
  }
};

TEST_F(Erasure, PlannedEstateEndToEnd) {
  ScratchDir dir;
  PlantedEstate e = make_planted_estate(dir.path());
  fs::create_directories(dir.path() / "out");
  EXPECT_EQ(ds(e.config, {"index"}).exit_code, 0);
  auto before = snapshot(dir.path());
  auto hits = json_lines(ds(e.config, {"find", "--subject", e.subject.string()}).out);
  ASSERT_FALSE(hits.empty());

  fs::path manifest = dir.path() / "out/manifest.json";
  auto p = ds(e.config, {"plan", "--subject", e.subject.string(), "--out", manifest.string(), "--operator", "dpo-anna"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  json plan = json_lines(p.out).at(0);
  EXPECT_EQ(plan.at("items"), hits.size());
  // The manifest holds no identifier in clear.
  std::string text = read_file(manifest);
  EXPECT_EQ(text.find("alice.smith@example.com"), std::string::npos);
  json mj = json::parse(text);
  for (const json &k : mj.at("subject")) {
    EXPECT_EQ(k.at("hash").get<std::string>().size(), 64U);
  }

  // Refusals: unapproved, self-approval, altered.
  auto unapproved = ds(e.config, {"erase", manifest.string(), "--operator", "admin-ben"});
  EXPECT_EQ(unapproved.exit_code, 65) << unapproved.err;
  auto self = ds(e.config, {"approve", manifest.string(), "--operator", "dpo-anna"});
  EXPECT_EQ(self.exit_code, 77) << self.err;
  ASSERT_EQ(ds(e.config, {"approve", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  fs::path altered = dir.path() / "out/altered.json";
  {
    json a = mj;
    a["items"][0]["action"] = "retain";
    write_file(altered, a.dump(2));
  }
  auto alt = ds(e.config, {"erase", altered.string(), "--operator", "admin-ben"});
  EXPECT_EQ(alt.exit_code, 65) << alt.err;
  EXPECT_NE(alt.err.find("altered"), std::string::npos) << alt.err;
  EXPECT_EQ(differences(before, snapshot(dir.path())), "") << "a refused erase changed something";

  // Dry run changes nothing.
  auto dry = ds(e.config, {"erase", manifest.string(), "--dry-run", "--operator", "ops-cleo"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(differences(before, snapshot(dir.path())), "");

  auto er = ds(e.config, {"erase", manifest.string(), "--operator", "ops-cleo"});
  ASSERT_EQ(er.exit_code, 0) << er.err << er.out;
  json report = json_lines(er.out).at(0);
  EXPECT_TRUE(report.at("index_updated").get<bool>());

  // Nothing of the subject anywhere, by a scanner that shares no code with maildsar.
  auto scan = independent_scan(dir.path());
  EXPECT_EQ(scan.exit_code, 0) << scan.out << scan.err;
  // Every other message is byte-identical: files not planned are unchanged; the mbox is the
  // original without exactly the planned ranges.
  std::set<std::string> touched;
  std::map<std::string, std::vector<std::pair<std::uint64_t, std::uint64_t>>> cuts;
  for (const json &item : mj.at("items")) {
    const json &l = item.at("locator");
    touched.insert(l.at("path").get<std::string>());
    if (l.at("store") == "mbox") {
      cuts[l.at("path")].emplace_back(l.at("offset").get<std::uint64_t>(), l.at("length").get<std::uint64_t>());
    }
  }
  auto after = snapshot(dir.path());
  for (const auto &[path, bytes] : before) {
    if (path.find("/out/") != std::string::npos) {
      continue;
    }
    if (!touched.contains(path)) {
      ASSERT_TRUE(after.contains(path)) << path << " vanished";
      EXPECT_EQ(after.at(path), bytes) << path << " changed";
    } else if (cuts.contains(path)) {
      std::string expected;
      std::uint64_t pos = 0;
      auto ranges = cuts.at(path);
      std::sort(ranges.begin(), ranges.end());
      for (const auto &[off, len] : ranges) {
        expected += bytes.substr(pos, off - pos);
        pos = off + len;
      }
      expected += bytes.substr(pos);
      EXPECT_EQ(after.at(path), expected) << path;
    } else {
      EXPECT_FALSE(after.contains(path)) << path << " should be deleted";
    }
  }

  auto found = ds(e.config, {"find", "--subject", e.subject.string()});
  EXPECT_EQ(found.exit_code, 0);
  EXPECT_TRUE(json_lines(found.out).empty()) << found.out;
  auto v = ds(e.config, {"verify", "--subject", e.subject.string(), "--operator", "dpo-anna"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  json vj = json_lines(v.out).at(0);
  EXPECT_TRUE(vj.at("clean").get<bool>());
  EXPECT_TRUE(fs::exists(vj.at("certificate").get<std::string>()));
  auto audit = ds(e.config, {"audit", "verify"});
  EXPECT_EQ(audit.exit_code, 0) << audit.out << audit.err;
  auto records = json_lines(ds(e.config, {"audit"}).out);
  std::set<std::string> actions;
  for (const json &r : records) {
    actions.insert(r.at("action").get<std::string>());
  }
  EXPECT_TRUE(actions.contains("plan") && actions.contains("approve") && actions.contains("erase") &&
              actions.contains("certificate"));

  // The state directory (index, catalog, journal, audit log) keeps no address of the subject.
  for (auto it = fs::recursive_directory_iterator(dir.path() / "state"); it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_regular_file()) {
      std::string bytes = read_file(it->path());
      std::transform(bytes.begin(), bytes.end(), bytes.begin(), [](unsigned char c) { return std::tolower(c); });
      EXPECT_FALSE(holds_address(bytes, "alice.smith@example.com")) << it->path();
    }
  }
}

TEST_F(Erasure, OtherStoresEndToEnd) {
  ScratchDir dir;
  ConnectorEstate e = make_connector_estate(dir.path(), corpus_dir());
  fs::create_directories(dir.path() / "out");
  EXPECT_EQ(ds(e.config, {"index"}).exit_code, 0);
  auto before = snapshot(dir.path());
  fs::path manifest = plan_and_approve(e.config, e.subject, dir.path());
  json mj = json::parse(read_file(manifest));
  std::set<std::string> actions;
  for (const json &item : mj.at("items")) {
    actions.insert(item.at("action").get<std::string>());
  }
  EXPECT_TRUE(actions.contains("delete") && actions.contains("redact")) << mj.dump(1);

  auto er = ds(e.config, {"erase", manifest.string(), "--operator", "ops-cleo"});
  ASSERT_EQ(er.exit_code, 0) << er.err << er.out;
  auto scan = independent_scan(dir.path());
  EXPECT_EQ(scan.exit_code, 0) << scan.out << scan.err;

  // Logs: every line outside the redacted transactions is byte-identical, and the redacted
  // lines keep their length (the pseudonym replaces the identifier in place).
  std::map<std::string, std::set<std::uint64_t>> redacted;
  for (const json &item : mj.at("items")) {
    const json &l = item.at("locator");
    if (l.at("store") == "maillog") {
      for (auto n : l.at("lines")) {
        redacted[l.at("path")].insert(n.get<std::uint64_t>());
      }
    }
  }
  ASSERT_FALSE(redacted.empty());
  auto after = snapshot(dir.path());
  for (const auto &[path, bytes] : before) {
    if (redacted.contains(path)) {
      const bool gz = path.ends_with(".gz");
      fs::path old_copy = dir.path() / "out/old.gz";
      write_file(old_copy, bytes);
      auto old_lines = split_lines(gz ? gunzip(old_copy) : bytes);
      auto new_lines = split_lines(gz ? gunzip(path) : after.at(path));
      ASSERT_EQ(old_lines.size(), new_lines.size()) << path;
      for (std::size_t i = 0; i < old_lines.size(); ++i) {
        if (redacted.at(path).contains(i + 1)) {
          EXPECT_EQ(old_lines[i].size(), new_lines[i].size()) << path << ":" << i + 1;
        } else {
          EXPECT_EQ(old_lines[i], new_lines[i]) << path << ":" << i + 1;
        }
      }
    }
  }
  auto found = ds(e.config, {"find", "--subject", e.subject.string()});
  EXPECT_TRUE(json_lines(found.out).empty()) << found.out;
  auto v = ds(e.config, {"verify", "--subject", e.subject.string()});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_EQ(ds(e.config, {"audit", "verify"}).exit_code, 0);
}

/** Sets a file's mtime `hours` into the past. */
void age_file(const fs::path &path, int hours) {
  const auto when = fs::file_time_type::clock::now() - std::chrono::hours(hours);
  fs::last_write_time(path, when);
}

// Issue 11 class 6: files of a Maildir outside cur/ and new/ (stray files, abandoned tmp/
// deliveries) are found, exported, erased and verified; a delivery in progress and the files of
// mail servers are never touched, and are counted as skipped.
TEST_F(Erasure, StrayAndAbandonedMaildirFilesEndToEnd) {
  ScratchDir dir;
  const fs::path md = dir.path() / "mail/example.com/erin/Maildir";
  auto message = [](const std::string &from, const std::string &subject) {
    return "From: " + from + "\nTo: team@example.com\nSubject: " + subject +
           "\nMessage-ID: <" + subject + "@example.com>\n\nHello.\n";
  };
  const std::string subject_addr = "stray.subject@example.com";
  write_file(md / "cur/1.host:2,S", message(subject_addr, "in-cur"));
  write_file(md / "cur/2.host:2,S", message("other@example.com", "not-the-subject"));
  write_file(md / "1700000000.saved.eml", message(subject_addr, "stray-inbox"));
  write_file(md / ".Sent/cur/3.host:2,S", message("erin@example.com", "sent"));
  write_file(md / ".Sent/maildirfolder", "");
  write_file(md / ".Sent/draft.eml", message(subject_addr, "stray-sent"));
  write_file(md / "tmp/4.host", message(subject_addr, "abandoned"));
  write_file(md / "tmp/5.host", message(subject_addr, "in-delivery"));
  // What servers and clients keep in a Maildir: skipped and counted, never touched.
  write_file(md / "dovecot-uidlist", "3 V1700000000 N5\n1 1.host\n");
  write_file(md / "dovecot.index", std::string("\x02\x00\x01\x00stray.subject@example.com", 29));
  write_file(md / "dovecot.index.log", "log");
  write_file(md / "cur/.keep", "");
  write_file(md / "courierimapuiddb", "1 1 1\n");
  write_file(md / "maildirsize", "1000000S,1000C\n");
  write_file(md / "empty", "");
  write_file(md / "blob.bin", std::string("\x7f" "ELF\x00stray.subject@example.com", 30));
  fs::create_directories(md / "cur/subdir");
  // Everything settled two hours ago (so the second `index` may take the layout shortcut),
  // but the two tmp/ files, whose age is the point.
  for (const auto &entry : fs::recursive_directory_iterator(md)) {
    age_file(entry.path(), 2);
  }
  age_file(md, 2);
  age_file(md / "tmp/4.host", 72);
  age_file(md / "tmp/5.host", 30);
  const fs::path config = dir.path() / "maildsar.json";
  write_file(config, R"({"state_dir": "state",
  "sources": [{"name": "mailboxes", "type": "maildir", "path": "mail/example.com/*/Maildir",
               "owner": "{1}@example.com"}]})");
  const fs::path subject = dir.path() / "subject.json";
  write_file(subject, R"({"request": "DSAR-STRAY-1", "emails": ["stray.subject@example.com"]})");

  // index: items and skipped files in the --json summary and in the table
  auto summary = index_json(config);
  auto counts = source_counts(summary, "mailboxes");
  EXPECT_EQ(counts.at("items"), 6);
  EXPECT_EQ(counts.at("errors"), 0);
  EXPECT_EQ(counts.at("skipped"), 11) << counts.dump();
  EXPECT_EQ(counts.at("skipped_reasons"),
            json({{"mua-file", 6}, {"dotfile", 1}, {"not-message", 2}, {"directory", 1},
                  {"in-delivery", 1}}))
      << counts.dump();
  auto table = maildsar_run({"-c", config.string(), "index"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("SKIPPED"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("mailboxes: skipped 1 directory, 1 dotfile, 1 in-delivery, 6 mua-file, "
                           "2 not-message"),
            std::string::npos)
      << table.out;
  // the layout shortcut (nothing changed) reports the same counts
  EXPECT_EQ(source_counts(index_json(config), "mailboxes").at("skipped"), 11);

  // find: the stray and tmp/ files with their marks and folders
  auto found = ds(config, {"find", "--subject", subject.string()});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  std::map<std::string, json> by_subject;
  for (const json &h : json_lines(found.out)) {
    by_subject[h.at("subject").get<std::string>()] = h;
  }
  ASSERT_EQ(by_subject.size(), 4U) << found.out;
  EXPECT_FALSE(by_subject.at("in-cur").contains("marks"));
  EXPECT_EQ(by_subject.at("stray-inbox").at("marks"), json::array({"stray"}));
  EXPECT_EQ(by_subject.at("stray-inbox").at("path"), (md / "1700000000.saved.eml").string());
  EXPECT_FALSE(by_subject.at("stray-inbox").contains("folder"));
  EXPECT_EQ(by_subject.at("stray-sent").at("marks"), json::array({"stray"}));
  EXPECT_EQ(by_subject.at("stray-sent").at("folder"), ".Sent");
  EXPECT_EQ(by_subject.at("abandoned").at("marks"), json::array({"tmp"}));
  EXPECT_FALSE(by_subject.contains("in-delivery"));
  auto human = maildsar_run({"-c", config.string(), "find", "--subject", subject.string()});
  EXPECT_NE(human.out.find((md / "tmp/4.host").string() + " [tmp]"), std::string::npos) << human.out;

  // export: every one of them packaged byte-identical, in the mailbox's folders
  const fs::path package = dir.path() / "out/package";
  auto ex = ds(config, {"export", "--subject", subject.string(), "--out", package.string(),
                        "--operator", "dpo"});
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  json export_manifest = json::parse(read_file(package / "manifest.json"));
  std::size_t copies = 0;
  for (const json &item : export_manifest.at("items")) {
    for (const auto &[name, hit] : by_subject) {
      if (hit.at("id") == item.at("id")) {
        const std::string copy = item.at("copy").get<std::string>();
        EXPECT_EQ(read_file(package / copy), read_file(hit.at("path").get<std::string>())) << copy;
        EXPECT_NE(copy.find("/erin/"), std::string::npos) << copy; // the mailbox, not "example.com"
        ++copies;
      }
    }
  }
  EXPECT_EQ(copies, 4U);

  // plan, approve, erase: exactly the subject's files go
  auto before = snapshot(dir.path());
  fs::path manifest = plan_and_approve(config, subject, dir.path());
  json mj = json::parse(read_file(manifest));
  std::size_t marked = 0;
  for (const json &item : mj.at("items")) {
    EXPECT_EQ(item.at("action"), "delete") << item.dump();
    if (item.at("locator").contains("mark")) {
      ++marked;
    }
  }
  EXPECT_EQ(marked, 3U);
  auto erased = ds(config, {"erase", manifest.string()});
  ASSERT_EQ(erased.exit_code, 0) << erased.err << erased.out;
  auto after = snapshot(dir.path());
  std::set<std::string> gone;
  for (const auto &[path, bytes] : before) {
    if (!after.contains(path)) {
      gone.insert(fs::path(path).lexically_relative(md).string());
    } else {
      EXPECT_EQ(after.at(path), bytes) << path;
    }
  }
  EXPECT_EQ(gone, (std::set<std::string>{"cur/1.host:2,S", "1700000000.saved.eml",
                                         ".Sent/draft.eml", "tmp/4.host"}));
  EXPECT_TRUE(fs::exists(md / "tmp/5.host")); // a delivery in progress is never touched

  // verify: nothing of the subject remains (the young tmp/ file is no item yet)
  auto v = ds(config, {"verify", "--subject", subject.string()});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_EQ(json_lines(v.out).at(0).at("clean"), true);
  EXPECT_TRUE(json_lines(ds(config, {"find", "--subject", subject.string()}).out).empty());
}

TEST_F(Erasure, HoldsAndManualItemsAreRetained) {
  ScratchDir dir;
  PlantedEstate e = make_planted_estate(dir.path());
  // A litigation hold on the archive: its messages must be retained, with the reason.
  std::string config = read_file(e.config);
  config.insert(config.rfind('}'), R"(, "holds": [{"source": "archive", "reason": "litigation 2026-17", "until": "2099-12-31"}])");
  write_file(e.config, config);
  auto mbox_before = read_file(e.mbox);
  fs::path manifest = plan_and_approve(e.config, e.subject, dir.path());
  json mj = json::parse(read_file(manifest));
  std::size_t retained = 0;
  for (const json &item : mj.at("items")) {
    if (item.at("locator").at("store") == "mbox") {
      EXPECT_EQ(item.at("action"), "retain");
      EXPECT_EQ(item.at("reason"), "hold: litigation 2026-17");
      EXPECT_EQ(item.at("until"), "2099-12-31");
      ++retained;
    }
  }
  EXPECT_GT(retained, 0U);
  ASSERT_EQ(ds(e.config, {"erase", manifest.string()}).exit_code, 0);
  EXPECT_EQ(read_file(e.mbox), mbox_before);
  // What is retained is still found, and verify accepts it as retained.
  auto found = json_lines(ds(e.config, {"find", "--subject", e.subject.string()}).out);
  EXPECT_EQ(found.size(), retained);
  auto v = ds(e.config, {"verify", "--subject", e.subject.string()});
  EXPECT_EQ(v.exit_code, 0) << v.out;
  EXPECT_EQ(json_lines(v.out).at(0).at("retained"), retained);
}

TEST_F(Erasure, StaleItemsAndSymlinksAreNeverTouched) {
  ScratchDir dir;
  PlantedEstate e = make_planted_estate(dir.path());
  fs::path manifest = plan_and_approve(e.config, e.subject, dir.path());
  json mj = json::parse(read_file(manifest));
  std::vector<std::string> maildir_files;
  for (const json &item : mj.at("items")) {
    if (item.at("locator").at("store") == "maildir") {
      maildir_files.push_back(item.at("locator").at("path"));
    }
  }
  ASSERT_GE(maildir_files.size(), 2U);
  // 1. Changed since planning.
  const std::string stale = maildir_files[0];
  write_file(stale, read_file(stale) + "edited after planning\n");
  const std::string stale_bytes = read_file(stale);
  // 2. Replaced by a symlink to a file outside the store with the same bytes.
  const std::string linked = maildir_files[1];
  fs::path outside = dir.path() / "outside.eml";
  write_file(outside, read_file(linked));
  fs::remove(linked);
  fs::create_symlink(outside, linked);

  auto er = ds(e.config, {"erase", manifest.string()});
  EXPECT_EQ(er.exit_code, 1) << er.err << er.out;
  json report = json_lines(er.out).at(0);
  std::map<std::string, std::string> results;
  for (const json &o : report.at("items")) {
    results[o.at("id")] = o.at("result");
  }
  for (const json &item : mj.at("items")) {
    if (item.at("locator").at("path") == stale) {
      EXPECT_EQ(results[item.at("id")], "stale");
    }
    if (item.at("locator").at("path") == linked) {
      EXPECT_EQ(results[item.at("id")], "failed");
    }
  }
  EXPECT_EQ(read_file(stale), stale_bytes);
  EXPECT_TRUE(fs::exists(outside));
  EXPECT_TRUE(fs::is_symlink(linked));
}

/** The end state of a clean erase, to compare interrupted runs against. */
std::map<std::string, std::string> relative(const std::map<std::string, std::string> &files, const fs::path &root) {
  std::map<std::string, std::string> out;
  for (const auto &[path, bytes] : files) {
    std::string rel = fs::relative(path, root).string();
    if (!rel.starts_with("out/")) {
      out[rel] = bytes;
    }
  }
  return out;
}

TEST_F(Erasure, KilledAtEveryStepResumesToTheSameEnd) {
  // Reference: one uninterrupted run.
  ScratchDir ref;
  PlantedEstate re = make_planted_estate(ref.path());
  fs::path rm = plan_and_approve(re.config, re.subject, ref.path());
  ASSERT_EQ(ds(re.config, {"erase", rm.string()}).exit_code, 0);
  const auto expected = relative(snapshot(ref.path()), ref.path());
  // The files in the executor's order (first appearance of a changed item), and the mbox's place.
  std::vector<std::string> files;
  {
    json mj = json::parse(read_file(rm));
    for (const json &item : mj.at("items")) {
      const std::string path = item.at("locator").at("path");
      if ((item.at("action") == "delete" || item.at("action") == "redact") &&
          std::find(files.begin(), files.end(), path) == files.end()) {
        files.push_back(path);
      }
    }
  }
  ASSERT_GE(files.size(), 2U);
  std::size_t mbox = files.size();
  for (std::size_t n = 0; n < files.size(); ++n) {
    if (files[n].ends_with(".mbox")) {
      mbox = n;
    }
  }
  ASSERT_LT(mbox, files.size());

  std::vector<std::string> steps{"begin", "index:before", "index:reindexed", "index:compacted", "end"};
  for (std::size_t n : {std::size_t{0}, mbox, files.size() - 1}) {
    for (const char *s : {"before-journal", "started", "before-done", "done"}) {
      steps.push_back("file:" + std::to_string(n) + ":" + s);
    }
  }
  // The writers' own steps: removing a message file, rewriting the mbox.
  for (const char *s : {"file:verified", "file:unlinked", "file:dir-synced"}) {
    steps.push_back(std::string(files[0].ends_with(".mbox") ? "file:1:" : "file:0:") + s);
  }
  for (const char *s : {"mbox:locked", "mbox:temp-written", "mbox:temp-synced", "mbox:renamed", "mbox:dir-synced"}) {
    steps.push_back("file:" + std::to_string(mbox) + ":" + s);
  }
  std::size_t killed = 0;
  for (const std::string &step : steps) {
    ScratchDir dir;
    PlantedEstate e = make_planted_estate(dir.path());
    fs::path m = plan_and_approve(e.config, e.subject, dir.path());
    auto first = ds(e.config, {"erase", m.string()}, {"MAILDSAR_FAULT_AT=" + step});
    if (first.exit_code == 128 + SIGKILL) {
      ++killed;
    }
    auto second = ds(e.config, {"erase", m.string()});
    EXPECT_EQ(second.exit_code, 0) << step << ": " << second.err << second.out;
    auto got = relative(snapshot(dir.path()), dir.path());
    EXPECT_EQ(got.size(), expected.size()) << step;
    for (const auto &[path, bytes] : expected) {
      EXPECT_TRUE(got.contains(path) && got.at(path) == bytes) << step << ": " << path;
    }
    auto found = ds(e.config, {"find", "--subject", e.subject.string()});
    EXPECT_TRUE(json_lines(found.out).empty()) << step << ": " << found.out;
    EXPECT_EQ(ds(e.config, {"audit", "verify"}).exit_code, 0) << step;
  }
  EXPECT_EQ(killed, steps.size()) << "some fault-injection points were not reached";
}

TEST_F(Erasure, RealSigkillOnALargeMboxLosesNothing) {
  std::mt19937 rng(20261128);
  // Four kills at random moments in the normal build; one under AddressSanitizer, where a round
  // takes ~60 s and the property checked (no message lost) does not depend on the sanitizer.
#if MAILDSAR_ASAN
  constexpr int rounds = 1;
#else
  constexpr int rounds = 4;
#endif
  for (int round = 0; round < rounds; ++round) {
    ScratchDir dir;
    fs::create_directories(dir.path() / "archive");
    // ~20 MB mbox, 1% of its messages about the subject.
    std::string mbox;
    std::string expected;
    const std::string filler(2000, 'x');
    for (int i = 0; i < 8000; ++i) {
      const bool subject = i % 100 == 37;
      std::string msg = "From sender@example.org Mon Nov 13 10:00:00 2023\n"
                        "From: " + std::string(subject ? "Alice Smith <alice.smith@example.com>" : "Bob <bob@example.org>") +
                        "\nTo: team@example.org\nSubject: message " + std::to_string(i) +
                        "\nMessage-ID: <m" + std::to_string(i) + "@example.org>\n\n" + filler + "\n\n";
      mbox += msg;
      if (!subject) {
        expected += msg;
      }
    }
    write_file(dir.path() / "archive/big.mbox", mbox);
    fs::path config = dir.path() / "maildsar.json";
    write_file(config, R"({"state_dir": "state", "sources": [{"name": "archive", "type": "mbox", "path": "archive/*.mbox"}]})");
    ASSERT_EQ(ds(config, {"index"}).exit_code, 0);
    fs::path manifest = dir.path() / "m2.json";
    ASSERT_EQ(ds(config, {"plan", "--email", "alice.smith@example.com", "--out", manifest.string(),
                          "--operator", "dpo-anna"}).exit_code, 0);
    ASSERT_EQ(ds(config, {"approve", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execl(MAILDSAR_BINARY, MAILDSAR_BINARY, "-c", config.c_str(), "erase", manifest.c_str(),
              static_cast<char *>(nullptr));
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(5, 400)(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    auto resumed = ds(config, {"erase", manifest.string()});
    EXPECT_EQ(resumed.exit_code, 0) << resumed.err << resumed.out;
    EXPECT_TRUE(read_file(dir.path() / "archive/big.mbox") == expected) << "round " << round;
    std::size_t leftovers = 0;
    for (const auto &entry : fs::directory_iterator(dir.path() / "archive")) {
      leftovers += entry.path().filename() != "big.mbox" ? 1U : 0U;
    }
    EXPECT_EQ(leftovers, 0U) << "temp or lock files left behind";
  }
}

// Issue 14: an mbox message's key is its number in the file, not its offset. Erasing messages
// before others moves those others without changing their ids: each id then names the same
// message at its new place, nothing is read again, and a number is never given twice.
TEST_F(Erasure, MboxErasureKeepsTheOtherMessagesIdsAndMovesTheirPlaces) {
  ScratchDir dir;
  fs::create_directories(dir.path() / "archive");
  std::string mbox;
  for (int i = 0; i < 300; ++i) {
    const bool subject = i % 10 == 3;
    mbox += "From sender@example.org Mon Nov 13 10:00:00 2023\nFrom: " +
            std::string(subject ? "Alice Smith <alice.smith@example.com>" : "Bob <bob@example.org>") +
            "\nTo: team@example.org\nSubject: message " + std::to_string(i) + "\nMessage-ID: <m" +
            std::to_string(i) + "@example.org>\n\n" + std::string(static_cast<std::size_t>(100 + 37 * (i % 13)), 'x') +
            "\n\n";
  }
  const fs::path file = dir.path() / "archive/big.mbox";
  write_file(file, mbox);
  fs::path config = dir.path() / "maildsar.json";
  write_file(config, R"({"state_dir": "state", "sources": [{"name": "archive", "type": "mbox", "path": "archive/*.mbox"}]})");
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);
  // id -> the message's bytes, as find places them
  auto messages_of = [&](const std::string &address) {
    auto r = ds(config, {"find", "--email", address});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string bytes = read_file(file);
    std::map<std::string, std::string> out;
    for (const json &hit : json_lines(r.out)) {
      const auto offset = hit.at("offset").get<std::size_t>();
      const auto length = hit.at("length").get<std::size_t>();
      EXPECT_LE(offset + length, bytes.size());
      out[hit.at("id").get<std::string>()] = bytes.substr(offset, length);
    }
    return out;
  };
  const std::map<std::string, std::string> bob_before = messages_of("bob@example.org");
  const std::map<std::string, std::string> alice_before = messages_of("alice.smith@example.com");
  ASSERT_EQ(bob_before.size(), 270U);
  ASSERT_EQ(alice_before.size(), 30U);

  fs::path manifest = dir.path() / "m.json";
  ASSERT_EQ(ds(config, {"plan", "--email", "alice.smith@example.com", "--out", manifest.string(), "--operator",
                        "dpo-anna"}).exit_code, 0);
  ASSERT_EQ(ds(config, {"approve", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  auto erased = ds(config, {"erase", manifest.string()});
  ASSERT_EQ(erased.exit_code, 0) << erased.err << erased.out;
  EXPECT_EQ(messages_of("alice.smith@example.com").size(), 0U);
  // The same ids, each at its new place holding the same bytes.
  EXPECT_EQ(messages_of("bob@example.org"), bob_before);
  // The index agrees without reading the file again: nothing new, changed or removed.
  auto again = ds(config, {"index"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const json summary = json::parse(again.out);
  for (const char *count : {"new", "changed", "removed"}) {
    EXPECT_EQ(summary.at("sources").at(0).at(count).get<std::uint64_t>(), 0U) << count << ": " << again.out;
  }
  // Appended messages get new numbers: never an erased message's id.
  std::string more;
  for (int i = 0; i < 40; ++i) {
    more += "From sender@example.org Mon Nov 13 11:00:00 2023\nFrom: Bob <bob@example.org>\nSubject: later " +
            std::to_string(i) + "\n\nlater\n\n";
  }
  { std::ofstream(file, std::ios::app | std::ios::binary) << more; }
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);
  const std::map<std::string, std::string> bob_after = messages_of("bob@example.org");
  EXPECT_EQ(bob_after.size(), 310U);
  for (const auto &[id, bytes] : bob_before) {
    EXPECT_EQ(bob_after.count(id), 1U);
  }
  for (const auto &[id, bytes] : alice_before) {
    EXPECT_EQ(bob_after.count(id), 0U) << "an erased message's id was given again";
  }
  auto verified = ds(config, {"verify", "--email", "alice.smith@example.com"});
  EXPECT_EQ(verified.exit_code, 0) << verified.err << verified.out;
}

TEST_F(Erasure, AuditTamperingIsDetected) {
  ScratchDir dir;
  PlantedEstate e = make_planted_estate(dir.path());
  fs::path m = plan_and_approve(e.config, e.subject, dir.path());
  ASSERT_EQ(ds(e.config, {"erase", m.string()}).exit_code, 0);
  const fs::path log = dir.path() / "state/audit.log";
  const std::string original = read_file(log);
  auto lines = split_lines(original);
  ASSERT_GE(lines.size(), 3U);
  auto join = [](const std::vector<std::string> &v) {
    std::string s;
    for (const auto &l : v) {
      s += l + "\n";
    }
    return s;
  };
  // Edit one byte, delete a record, reorder two records.
  std::vector<std::string> edited = lines;
  edited[1][edited[1].find("approve") != std::string::npos ? edited[1].find("approve") : 10] ^= 1;
  std::vector<std::string> deleted = lines;
  deleted.erase(deleted.begin() + 1);
  std::vector<std::string> reordered = lines;
  std::swap(reordered[0], reordered[1]);
  for (const auto &variant : {edited, deleted, reordered}) {
    write_file(log, join(variant));
    auto r = ds(e.config, {"audit", "verify"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  }
  write_file(log, original);
  EXPECT_EQ(ds(e.config, {"audit", "verify"}).exit_code, 0);
}

} // namespace
} // namespace maildsar::test
