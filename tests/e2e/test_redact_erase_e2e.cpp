// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: erasure by redaction (issue 18 item 3) on a copy of samples/. Alice's own mailbox
// and what she wrote go; Bob's mail that only names her stays with her masked — in a Maildir
// (new name, same flags), an mbox (within the locked rewrite) and a gzip quarantine file — and
// verify certifies. Plus: the approver sees what changes; a hold wins; a crash at any step
// of a redaction resumes to the same end state.
#include "tests/e2e/e2e_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string k_policy = R"({"messages": {"owner|from": "delete", "default": "redact"}})";
const fs::path k_bob_cc = "mail/example.com/bob.jones/Maildir/cur/1700000300.M4P100.mx1:2,RS";

struct Sample {
  fs::path root;
  fs::path config;
  fs::path subject;
  fs::path policy;
};

Sample copy_samples(const fs::path &dir) {
  Sample s{dir / "s", {}, {}, {}};
  copy_tree(fs::path(MAILDSAR_SOURCE_DIR) / "samples", s.root);
  fs::remove_all(s.root / "state");
  s.config = s.root / "maildsar.json";
  s.subject = s.root / "subject.json";
  s.policy = dir / "policy.json";
  write_file(s.policy, k_policy);
  return s;
}

/** index + plan with the policy (by alice-dpo) + approve (by admin-ben); the manifest. */
fs::path plan_and_approve(const Sample &s, std::vector<std::string> extra = {}) {
  EXPECT_EQ(ds(s.config, {"index"}).exit_code, 0);
  const fs::path manifest = s.root.parent_path() / "manifest.json";
  std::vector<std::string> args{"plan", "--subject", s.subject.string(), "--out", manifest.string(),
                                "--operator", "alice-dpo"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = ds(s.config, args);
  EXPECT_EQ(p.exit_code, 0) << p.err;
  auto a = ds(s.config, {"approve", manifest.string(), "--operator", "admin-ben"});
  EXPECT_EQ(a.exit_code, 0) << a.err;
  return manifest;
}

/** Every regular file under the estate (state excluded) -> its bytes, by relative path. */
std::map<std::string, std::string> snapshot(const fs::path &root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory() && it->path().filename() == "state") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) {
      out[fs::relative(it->path(), root).string()] = read_file(it->path());
    }
  }
  return out;
}

/** True when `text` shows Alice: her address as a whole address (not the near misses
    malice.smith@, alice.smithson@, alice.smith@example.co that the samples plant), her name,
    IP or phone. */
bool names_alice(const std::string &text) {
  std::string lower = text;
  std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::string address = "alice.smith@example.com";
  for (std::size_t at = lower.find(address); at != std::string::npos; at = lower.find(address, at + 1)) {
    const bool glued_before = at > 0 && (std::isalnum(static_cast<unsigned char>(lower[at - 1])) != 0 || lower[at - 1] == '.');
    const std::size_t end = at + address.size();
    const bool glued_after = end < lower.size() && std::isalnum(static_cast<unsigned char>(lower[end])) != 0;
    if (!glued_before && !glued_after) {
      return true;
    }
  }
  return lower.find("alice smith") != std::string::npos || lower.find("smith, alice") != std::string::npos ||
         lower.find("203.0.113.45") != std::string::npos || lower.find("7946 0123") != std::string::npos;
}

/** The snapshot with what differs between two runs of the same plan left out: the new Maildir
    names (they hash the manifest, whose creation time differs) and the log pseudonyms (keyed
    by each state directory's own secret; logs are checked for Alice instead). */
std::map<std::string, std::string> comparable(const std::map<std::string, std::string> &files) {
  std::map<std::string, std::string> out;
  for (const auto &[file, contents] : files) {
    std::string path = file;
    std::string bytes = contents;
    if (const std::size_t r = path.find(".R"); r != std::string::npos && path.find(".maildsar", r) != std::string::npos) {
      path.replace(r + 2, path.find(".maildsar", r) - r - 2, "*");
    }
    if (path.starts_with("logs/")) {
      bytes = names_alice(bytes) ? "names Alice" : "clean";
    }
    out.emplace(path, bytes);
  }
  return out;
}

/** The paths that differ between two snapshots (short failure messages). */
std::string differences(const std::map<std::string, std::string> &a, const std::map<std::string, std::string> &b) {
  std::string out;
  for (const auto &[path, bytes] : a) {
    out += !b.contains(path) ? "  only expected: " + path + "\n" : b.at(path) != bytes ? "  differs: " + path + "\n" : "";
  }
  for (const auto &[path, bytes] : b) {
    out += !a.contains(path) ? "  only got: " + path + "\n" : "";
  }
  return out;
}

/** Lines of `before` that do not name Alice and are missing from `after`. */
std::vector<std::string> lost_lines(const std::string &before, const std::string &after) {
  std::set<std::string> kept;
  std::size_t at = 0;
  while (at < after.size()) {
    std::size_t end = after.find('\n', at);
    end = end == std::string::npos ? after.size() : end;
    kept.insert(after.substr(at, end - at));
    at = end + 1;
  }
  std::vector<std::string> lost;
  at = 0;
  while (at < before.size()) {
    std::size_t end = before.find('\n', at);
    end = end == std::string::npos ? before.size() : end;
    std::string line = before.substr(at, end - at);
    if (!names_alice(line) && !kept.contains(line)) {
      lost.push_back(line);
    }
    at = end + 1;
  }
  return lost;
}

std::string gunzip_file(const fs::path &path) {
  return run({find_program("gzip").string(), "-dc", path.string()}).out;
}

TEST(RedactErase, BobKeepsHisMailWithAliceMaskedAndVerifyCertifies) {
  ScratchDir dir;
  Sample s = copy_samples(dir.path());
  const std::string bob_before = read_file(s.root / k_bob_cc);
  const std::string mbox_before = read_file(s.root / "archive/2023.mbox");
  const fs::path manifest = plan_and_approve(s, {"--policy", s.policy.string()});

  const json m = json::parse(read_file(manifest));
  EXPECT_EQ(m.at("policy").at("messages"), json::parse(k_policy).at("messages"));
  std::map<std::string, std::vector<std::string>> changes; // relative path -> changes of its redact item
  std::size_t deletes = 0;
  for (const json &item : m.at("items")) {
    const std::string path = fs::relative(item.at("locator").at("path").get<std::string>(), s.root).string();
    if (item.at("action") == "delete") {
      ++deletes;
      EXPECT_TRUE(path.find("alice.smith/") != std::string::npos || path == "archive/2023.mbox") << path;
    }
    if (item.at("action") == "redact" && item.at("locator").at("store") != "maillog") {
      changes[path] = item.at("changes").get<std::vector<std::string>>();
      EXPECT_NE(item.at("reason").get<std::string>().find("policy = redact"), std::string::npos) << item.dump();
    }
  }
  EXPECT_EQ(deletes, 4U) << "Alice's three own messages and the one she wrote to the team";
  ASSERT_TRUE(changes.contains(k_bob_cc.string())) << m.dump(1);
  EXPECT_EQ(changes.at(k_bob_cc.string()),
            (std::vector<std::string>{"Cc", "text/html part", "X-Maildsar-Redacted header added"}));
  EXPECT_TRUE(changes.contains("quarantine/amavis/s/spam-sP4dF6gH8jK0.gz"));

  // The approver reads what will change and under which policy.
  auto shown = maildsar_run({"-c", s.config.string(), "approve", "--show", manifest.string()});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("changes: Cc; text/html part"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find(R"(message policy {"default":"redact","owner|from":"delete"})"), std::string::npos)
      << shown.out;
  const std::string html = read_file(manifest.parent_path() / "manifest.html");
  EXPECT_NE(html.find("changes: Cc; text/html part"), std::string::npos);

  auto erased = ds(s.config, {"erase", manifest.string(), "--operator", "admin-ben"});
  ASSERT_EQ(erased.exit_code, 0) << erased.err << erased.out;

  // Bob's message: a new name with the same flags, Alice masked, every other line as it was.
  EXPECT_FALSE(fs::exists(s.root / k_bob_cc));
  std::vector<fs::path> bob_now;
  for (const auto &e : fs::directory_iterator(s.root / "mail/example.com/bob.jones/Maildir/cur")) {
    if (e.path().filename().string().starts_with("1700000300.")) {
      bob_now.push_back(e.path());
    }
  }
  ASSERT_EQ(bob_now.size(), 1U);
  EXPECT_TRUE(bob_now[0].filename().string().ends_with(".maildsar:2,RS")) << bob_now[0];
  const std::string bob_after = read_file(bob_now[0]);
  EXPECT_FALSE(names_alice(bob_after)) << bob_after;
  EXPECT_NE(bob_after.find("Cc: \"[erased person]\" <erased-person@redacted.invalid>"), std::string::npos);
  EXPECT_NE(bob_after.find("X-Maildsar-Redacted: "), std::string::npos);
  EXPECT_TRUE(lost_lines(bob_before, bob_after).empty()) << bob_after;

  // The mbox: Alice's own message gone, the one naming her masked in place, the rest as it was.
  const std::string mbox_after = read_file(s.root / "archive/2023.mbox");
  EXPECT_FALSE(names_alice(mbox_after)) << mbox_after;
  EXPECT_EQ(mbox_after.find("Away next week"), std::string::npos) << "her own message is deleted";
  EXPECT_NE(mbox_after.find("Approved. [erased person] will handle payment."), std::string::npos) << mbox_after;
  // Only the lines of her own (first) message may go; the other messages keep every line that
  // does not name her, and gain no header field but X-Maildsar-Redacted.
  const std::string others = mbox_before.substr(mbox_before.find("\nFrom dave@") + 1);
  EXPECT_TRUE(lost_lines(others, mbox_after).empty()) << mbox_after;
  EXPECT_EQ(lost_lines(mbox_after, others), (std::vector<std::string>{
                                                 "Reply-To: \"[erased person]\" <erased-person@redacted.invalid>",
                                                 "X-Maildsar-Redacted: maildsar; 1 identifier(s) replaced in header "
                                                 "fields, 1 in",
                                                 " texts and attachment names",
                                                 "Approved. [erased person] will handle payment."}))
      << mbox_after;

  // The gzip quarantine file: still gzip, Alice gone from it.
  const std::string spam = gunzip_file(s.root / "quarantine/amavis/s/spam-sP4dF6gH8jK0.gz");
  EXPECT_NE(spam.find("Subject: Last chance: 90% off"), std::string::npos) << spam;
  EXPECT_FALSE(names_alice(spam)) << spam;

  auto found = ds(s.config, {"find", "--subject", s.subject.string()});
  EXPECT_TRUE(json_lines(found.out).empty()) << found.out;
  auto verified = ds(s.config, {"verify", "--subject", s.subject.string(), "--operator", "admin-ben"});
  EXPECT_EQ(verified.exit_code, 0) << verified.err << verified.out;
  EXPECT_NE(verified.out.find("certificate"), std::string::npos) << verified.out;
}

TEST(RedactErase, PolicyFromTheConfigAndAHoldThatWins) {
  ScratchDir dir;
  Sample s = copy_samples(dir.path());
  std::string config = read_file(s.config);
  config.insert(config.rfind('}'),
                R"(, "erasure": {"message_policy": {"owner|from": "delete", "default": "redact"}},
                    "holds": [{"source": "archive", "reason": "litigation 2026-17"}])");
  write_file(s.config, config);
  const std::string mbox_before = read_file(s.root / "archive/2023.mbox");
  const fs::path manifest = plan_and_approve(s);
  const json m = json::parse(read_file(manifest));
  std::size_t redact = 0;
  for (const json &item : m.at("items")) {
    if (item.at("locator").at("source") == "archive") {
      EXPECT_EQ(item.at("action"), "retain") << item.dump();
    } else if (item.at("action") == "redact" && item.at("locator").at("store") == "maildir") {
      ++redact;
    }
  }
  EXPECT_EQ(redact, 2U) << m.dump(1);
  ASSERT_EQ(ds(s.config, {"erase", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  EXPECT_EQ(read_file(s.root / "archive/2023.mbox"), mbox_before) << "the hold wins over the policy";
  EXPECT_FALSE(fs::exists(s.root / k_bob_cc));

  // A policy the config cannot have: refused before anything is planned (exit 78).
  config = read_file(s.config);
  const std::string good = R"("default": "redact"}})";
  config.replace(config.find(good), good.size(), R"("carbon-copy": "redact"}})");
  write_file(s.config, config);
  auto bad = ds(s.config, {"plan", "--subject", s.subject.string(), "--out", (dir.path() / "m2.json").string()});
  EXPECT_EQ(bad.exit_code, 78) << bad.err;
  EXPECT_NE(bad.err.find("carbon-copy"), std::string::npos) << bad.err;
}

TEST(RedactErase, CrashAtEveryStepOfARedactionResumesToTheSameEnd) {
  std::map<std::string, std::string> expected;
  std::vector<std::string> steps{"begin", "index:reindexed", "end"};
  {
    ScratchDir dir;
    Sample s = copy_samples(dir.path());
    const fs::path manifest = plan_and_approve(s, {"--policy", s.policy.string()});
    ASSERT_EQ(ds(s.config, {"erase", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
    expected = comparable(snapshot(s.root));
    // The file steps in erase's order (the manifest's, by first appearance of each file).
    const json m = json::parse(read_file(manifest));
    std::vector<std::string> files;
    std::map<std::string, std::string> store_of;
    for (const json &item : m.at("items")) {
      const std::string path = item.at("locator").at("path");
      if (item.at("action") != "retain" && item.at("action") != "manual" &&
          std::ranges::find(files, path) == files.end()) {
        files.push_back(path);
        store_of[path] = item.at("action") == "redact" ? item.at("locator").at("store").get<std::string>() : "";
      }
    }
    for (std::size_t n = 0; n < files.size(); ++n) {
      const std::string prefix = "file:" + std::to_string(n) + ":";
      const std::string &store = store_of[files[n]];
      if (store == "maildir") {
        for (const char *point : {"started", "maildir:temp-synced", "maildir:linked", "maildir:old-unlinked", "done"}) {
          steps.push_back(prefix + point);
        }
      } else if (store == "mbox") {
        for (const char *point : {"mbox:temp-synced", "mbox:renamed"}) {
          steps.push_back(prefix + point);
        }
      } else if (store == "quarantine") {
        for (const char *point : {"file:verified", "file:temp-synced", "file:renamed"}) {
          steps.push_back(prefix + point);
        }
      }
    }
  }
  std::size_t killed = 0;
  for (const std::string &step : steps) {
    ScratchDir dir;
    Sample s = copy_samples(dir.path());
    const fs::path manifest = plan_and_approve(s, {"--policy", s.policy.string()});
    auto first = ds(s.config, {"erase", manifest.string(), "--operator", "admin-ben"}, {"MAILDSAR_FAULT_AT=" + step});
    killed += first.exit_code == 128 + SIGKILL ? 1U : 0U;
    auto second = ds(s.config, {"erase", manifest.string(), "--operator", "admin-ben"});
    EXPECT_EQ(second.exit_code, 0) << step << ": " << second.err << second.out;
    const auto got = comparable(snapshot(s.root));
    EXPECT_TRUE(got == expected) << step << ":\n" << differences(expected, got);
    auto verified = ds(s.config, {"verify", "--subject", s.subject.string(), "--operator", "admin-ben"});
    EXPECT_EQ(verified.exit_code, 0) << step << ": " << verified.err << verified.out;
  }
  EXPECT_EQ(killed, steps.size()) << "some fault-injection points were not reached";
}

} // namespace
} // namespace maildsar::test
