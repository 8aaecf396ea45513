// SPDX-License-Identifier: GPL-3.0-or-later
// `maildsar retention [--apply]` on a generated estate with dated logs and quarantine on both sides
// of the retention boundary: only the expired data goes, everything else stays byte-identical.
#include "tests/e2e/e2e_support.hpp"
#include "tests/e2e/estate_connectors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <sys/time.h>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::int64_t k_day = 86400;
constexpr std::int64_t k_now = 1773964800; // 2026-03-20T00:00:00Z: --now 2026-03-20
constexpr std::int64_t k_jan10 = 1768003200; // 2026-01-10T00:00:00Z

void set_mtime(const fs::path &path, std::int64_t epoch) {
  timeval tv[2] = {{static_cast<time_t>(epoch), 0}, {static_cast<time_t>(epoch), 0}};
  ASSERT_EQ(::utimes(path.c_str(), tv), 0);
}

std::string transaction(const std::string &stamp, const std::string &qid, const std::string &from) {
  return stamp + " mx postfix/smtpd[100]: " + qid + ": client=a.example[203.0.113.45]\n" + //
         stamp + " mx postfix/cleanup[102]: " + qid + ": message-id=<" + qid + "@example.com>\n" +
         stamp + " mx postfix/qmgr[103]: " + qid + ": from=<" + from + ">, size=20, nrcpt=1 (queue active)\n" +
         stamp + " mx postfix/smtp[104]: " + qid +
         ": to=<bob@example.net>, relay=mx.example.net[198.51.100.7]:25, delay=0.1, dsn=2.0.0, status=sent (250 ok)\n" +
         stamp + " mx postfix/qmgr[103]: " + qid + ": removed\n";
}

std::string message(const std::string &date, const std::string &id) {
  return "From: Alice Smith <alice.smith@example.com>\nTo: bob@example.com\nDate: " + date +
         "\nMessage-ID: <" + id + "@example.com>\nSubject: " + id + "\n\nHello from Alice\n";
}

std::string gunzip_file(const fs::path &path) {
  auto r = run({find_program("gzip").string(), "-dc", path.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

std::vector<std::string> lines_of(const std::string &text) {
  std::vector<std::string> out;
  std::istringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    out.push_back(line);
  }
  return out;
}

struct Estate {
  fs::path config;
  fs::path log, gz, relay, q_old, q_new, mbox, maildir_msg;
  std::string log_kept, gz_kept, relay_before;
  std::map<fs::path, std::string> untouched; // file -> bytes that must stay identical
};

/**
 * postfix (delete after 90d): mail.log written 2026-01-10 with transactions of Dec 15 (2025,
 * expired), Dec 25 and Jan 5 (kept); mail.log.1.gz written 2025-12-31 with Nov 2 (expired) and
 * Dec 22 (kept). relay (anonymize after 30d): Jan 5 (expired) and Mar 10 (kept). amavis (30d): a
 * file quarantined 40 days ago and one 5 days ago. archive (1d, held) and mailboxes (no rule).
 */
Estate make_estate(const fs::path &root) {
  Estate e;
  e.config = root / "maildsar.json";
  write_file(e.config, R"({
    "state_dir": "state",
    "sources": [
      {"name": "mailboxes", "type": "maildir", "path": "mail/*/Maildir", "owner": "{1}@example.com"},
      {"name": "archive", "type": "mbox", "path": "archive/*.mbox"},
      {"name": "amavis", "type": "quarantine", "format": "amavis", "path": "quarantine/amavis"},
      {"name": "postfix", "type": "maillog", "format": "postfix", "path": "logs/mail.log*"},
      {"name": "relay", "type": "maillog", "format": "postfix", "path": "relay/mail.log"}
    ],
    "retention": {"postfix": "90d", "amavis": "30d", "archive": "1d",
                  "relay": {"max_age": "30d", "action": "anonymize"}},
    "holds": [{"source": "archive", "reason": "litigation 2026-17", "until": "2027-06-30"}]
  })");
  e.log = root / "logs/mail.log";
  e.log_kept = transaction("Dec 25 10:00:00", "BBBB222222", "alice.smith@example.com") +
               transaction("Jan  5 10:00:00", "CCCC333333", "alice.smith@example.com");
  write_file(e.log, transaction("Dec 15 10:00:00", "AAAA111111", "alice.smith@example.com") + e.log_kept);
  set_mtime(e.log, k_jan10);

  e.gz = root / "logs/mail.log.1.gz";
  e.gz_kept = transaction("Dec 22 09:00:00", "EEEE555555", "alice.smith@example.com");
  write_file(root / "logs/mail.log.1",
             transaction("Nov  2 09:00:00", "DDDD444444", "alice.smith@example.com") + e.gz_kept);
  EXPECT_TRUE(gzip_file(root / "logs/mail.log.1"));
  set_mtime(e.gz, k_jan10 - 10 * k_day);

  e.relay = root / "relay/mail.log";
  e.relay_before = transaction("Jan  5 11:00:00", "FFFF666666", "alice.smith@example.com") +
                   transaction("Mar 10 11:00:00", "9ABC777777", "alice.smith@example.com");
  write_file(e.relay, e.relay_before);
  set_mtime(e.relay, k_now - 5 * k_day);

  e.q_old = root / "quarantine/amavis/spam-Kx7mQ2pL9vR4";
  e.q_new = root / "quarantine/amavis/spam-A7xK2mQ9pL0s";
  write_file(e.q_old, message("Sun, 1 Feb 2026 10:00:00 +0000", "q-old"));
  write_file(e.q_new, message("Sun, 15 Mar 2026 10:00:00 +0000", "q-new"));
  set_mtime(e.q_old, k_now - 40 * k_day);
  set_mtime(e.q_new, k_now - 5 * k_day);

  e.mbox = root / "archive/2018.mbox";
  write_file(e.mbox, "From alice@example.com Mon Jan  1 10:00:00 2018\n" +
                         message("Mon, 1 Jan 2018 10:00:00 +0000", "arch") + "\n");
  e.maildir_msg = root / "mail/bob/Maildir/cur/1000.a.host:2,S";
  write_file(e.maildir_msg, message("Mon, 1 Jan 2018 10:00:00 +0000", "mbx"));
  for (const fs::path &p : {e.q_new, e.mbox, e.maildir_msg}) {
    e.untouched[p] = read_file(p);
  }
  return e;
}

TEST(RetentionE2E, DryRunListsAndChangesNothing) {
  ScratchDir dir;
  Estate e = make_estate(dir.path());
  const std::string log_before = read_file(e.log);
  const std::string gz_before = read_file(e.gz);
  auto r = ds(e.config, {"retention", "--now", "2026-03-20"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto lines = json_lines(r.out);
  ASSERT_FALSE(lines.empty());
  const json summary = lines.back().at("summary");
  EXPECT_TRUE(summary.at("dry_run").get<bool>());
  EXPECT_FALSE(summary.at("sources").contains("mailboxes"));
  std::map<std::string, std::string> actions; // queue id or file name -> action
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    const json &j = lines[i];
    const std::string key = j.contains("queue_id") ? j.at("queue_id").get<std::string>()
                                                   : fs::path(j.at("path").get<std::string>()).filename().string();
    actions[key] = j.at("action").get<std::string>();
    EXPECT_FALSE(j.at("reason").get<std::string>().empty());
    EXPECT_TRUE(j.contains("date") && j.contains("source") && j.contains("store"));
  }
  EXPECT_EQ(actions, (std::map<std::string, std::string>{{"AAAA111111", "delete"},
                                                          {"DDDD444444", "delete"},
                                                          {"FFFF666666", "anonymize"},
                                                          {"spam-Kx7mQ2pL9vR4", "delete"},
                                                          {"2018.mbox", "retain"}}));
  EXPECT_EQ(read_file(e.log), log_before);
  EXPECT_EQ(read_file(e.gz), gz_before);
  EXPECT_TRUE(fs::exists(e.q_old));
  // Human output: a table with the counts.
  auto h = run({MAILDSAR_BINARY, "-c", e.config.string(), "retention", "--now", "2026-03-20"});
  EXPECT_EQ(h.exit_code, 0) << h.err;
  EXPECT_NE(h.out.find("dry run"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("postfix"), std::string::npos) << h.out;
}

TEST(RetentionE2E, ApplyRemovesOnlyExpiredData) {
  ScratchDir dir;
  Estate e = make_estate(dir.path());
  ASSERT_EQ(ds(e.config, {"index"}).exit_code, 0);
  auto before = json_lines(ds(e.config, {"find", "--email", "alice.smith@example.com"}).out);
  std::set<std::string> before_qids;
  for (const json &h : before) {
    if (h.contains("queue_id")) {
      before_qids.insert(h.at("queue_id").get<std::string>());
    }
  }
  ASSERT_TRUE(before_qids.contains("AAAA111111") && before_qids.contains("DDDD444444")) << before.size();

  auto r = ds(e.config, {"retention", "--apply", "--now", "2026-03-20", "--operator", "ops-kim"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto lines = json_lines(r.out);
  ASSERT_FALSE(lines.empty());
  const json summary = lines.back().at("summary");
  EXPECT_FALSE(summary.at("dry_run").get<bool>());
  EXPECT_TRUE(summary.at("index_updated").get<bool>());
  EXPECT_EQ(summary.at("failed"), 0);
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    const std::string action = lines[i].at("action");
    EXPECT_EQ(lines[i].at("result"), action == "retain" ? "retained" : "done") << lines[i].dump();
  }

  // Logs: exactly the expired transactions' lines are gone; the rest is byte-identical.
  EXPECT_EQ(read_file(e.log), e.log_kept);
  EXPECT_EQ(gunzip_file(e.gz), e.gz_kept);
  struct stat st {};
  ASSERT_EQ(::stat(e.log.c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, k_jan10); // the year of its syslog lines is still inferred as before

  // Anonymised: same length per line, identities gone, everything else kept.
  const std::string relay_after = read_file(e.relay);
  const auto before_lines = lines_of(e.relay_before);
  const auto after_lines = lines_of(relay_after);
  ASSERT_EQ(relay_after.size(), e.relay_before.size());
  ASSERT_EQ(after_lines.size(), before_lines.size());
  for (std::size_t i = 0; i < before_lines.size(); ++i) {
    EXPECT_EQ(after_lines[i].size(), before_lines[i].size()) << i;
    if (i >= 5) {
      EXPECT_EQ(after_lines[i], before_lines[i]) << "kept transaction line " << i;
      continue;
    }
    EXPECT_EQ(after_lines[i].find("alice.smith@example.com"), std::string::npos) << after_lines[i];
    EXPECT_EQ(after_lines[i].find("203.0.113.45"), std::string::npos) << after_lines[i];
    EXPECT_EQ(after_lines[i].substr(0, 40), before_lines[i].substr(0, 40)); // time, host, program, queue id
  }
  EXPECT_NE(after_lines[1].find("message-id=<FFFF666666@example.com>"), std::string::npos);
  EXPECT_NE(after_lines[3].find("dsn=2.0.0, status=sent (250 ok)"), std::string::npos);

  // Quarantine: the expired file is gone, the other untouched; held archive and mailboxes untouched.
  EXPECT_FALSE(fs::exists(e.q_old));
  for (const auto &[path, bytes] : e.untouched) {
    EXPECT_EQ(read_file(path), bytes) << path;
  }

  // The index no longer returns the expired items.
  auto after = json_lines(ds(e.config, {"find", "--email", "alice.smith@example.com"}).out);
  std::set<std::string> after_qids;
  std::set<std::string> after_paths;
  for (const json &h : after) {
    after_paths.insert(h.at("path").get<std::string>());
    if (h.contains("queue_id")) {
      after_qids.insert(h.at("queue_id").get<std::string>());
    }
  }
  EXPECT_FALSE(after_qids.contains("AAAA111111"));
  EXPECT_FALSE(after_qids.contains("DDDD444444"));
  EXPECT_FALSE(after_qids.contains("FFFF666666")); // anonymised: no longer Alice's
  EXPECT_TRUE(after_qids.contains("BBBB222222") && after_qids.contains("CCCC333333") &&
              after_qids.contains("EEEE555555") && after_qids.contains("9ABC777777"))
      << json(after_qids).dump();
  EXPECT_FALSE(after_paths.contains(e.q_old.string()));
  EXPECT_TRUE(after_paths.contains(e.q_new.string()) && after_paths.contains(e.mbox.string()) &&
              after_paths.contains(e.maildir_msg.string()));

  // Audited without identities, chain intact.
  auto audit = ds(e.config, {"audit"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  bool found = false;
  for (const json &rec : json_lines(audit.out)) {
    if (rec.at("action") == "retention") {
      found = true;
      EXPECT_EQ(rec.at("operator"), "ops-kim");
      const std::string text = rec.dump();
      EXPECT_EQ(text.find("alice"), std::string::npos) << text;
      EXPECT_NE(text.find("postfix"), std::string::npos) << text;
    }
  }
  EXPECT_TRUE(found) << audit.out;
  EXPECT_EQ(ds(e.config, {"audit", "verify"}).exit_code, 0);

  // A second run finds nothing more to do (the held archive is listed again as retained).
  auto again = ds(e.config, {"retention", "--now", "2026-03-20"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto again_lines = json_lines(again.out);
  ASSERT_EQ(again_lines.size(), 2U) << again.out;
  EXPECT_EQ(again_lines[0].at("action"), "retain");
}

TEST(RetentionE2E, BadNowIsAUsageError) {
  ScratchDir dir;
  Estate e = make_estate(dir.path());
  auto r = ds(e.config, {"retention", "--now", "2026-02-30"});
  EXPECT_EQ(r.exit_code, 64) << r.out << r.err;
  EXPECT_NE(r.err.find("--now"), std::string::npos) << r.err;
}

} // namespace
} // namespace maildsar::test
