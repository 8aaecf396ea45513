// SPDX-License-Identifier: GPL-3.0-or-later
// Retention: the selection rule (ages, holds, sources without a rule) and the plan over files.
#include "core/config.hpp"
#include "erasure/retention.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sys/stat.h>
#include <sys/time.h>

namespace maildsar::erasure {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;
using test::write_file;

constexpr std::int64_t k_day = 86400;
constexpr std::int64_t k_now = 1773964800; // 2026-03-20T00:00:00Z

void set_mtime(const fs::path &path, std::int64_t epoch) {
  timeval tv[2] = {{static_cast<time_t>(epoch), 0}, {static_cast<time_t>(epoch), 0}};
  ASSERT_EQ(::utimes(path.c_str(), tv), 0);
}

core::Config make_config(const fs::path &dir, const std::string &retention, const std::string &holds = "[]") {
  const std::string text = R"({
    "state_dir": "state",
    "sources": [
      {"name": "mailboxes", "type": "maildir", "path": "mail/*/Maildir", "owner": "{1}@example.com"},
      {"name": "archive", "type": "mbox", "path": "archive/*.mbox"},
      {"name": "amavis", "type": "quarantine", "format": "amavis", "path": "quarantine"},
      {"name": "postfix", "type": "maillog", "format": "postfix", "path": "logs/mail.log*"}
    ],
    "retention": )" + retention + R"(,
    "holds": )" + holds + "}";
  auto config = core::parse_config(text, (dir / "maildsar.json").string());
  EXPECT_TRUE(config.has_value()) << (config ? "" : config.error().message);
  return config ? *config : core::Config{};
}

std::string postfix_transaction(const std::string &stamp, const std::string &qid, const std::string &from) {
  return stamp + " mx postfix/smtpd[100]: " + qid + ": client=a.example[203.0.113.45]\n" + //
         stamp + " mx postfix/cleanup[102]: " + qid + ": message-id=<" + qid + "@example.com>\n" +
         stamp + " mx postfix/qmgr[103]: " + qid + ": from=<" + from + ">, size=20, nrcpt=1 (queue active)\n" +
         stamp + " mx postfix/local[104]: " + qid +
         ": to=<bob@example.com>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered)\n" +
         stamp + " mx postfix/qmgr[103]: " + qid + ": removed\n";
}

std::string message(const std::string &date, const std::string &subject) {
  return "From: Alice Smith <alice.smith@example.com>\nTo: bob@example.com\nDate: " + date +
         "\nMessage-ID: <" + subject + "@example.com>\nSubject: " + subject + "\n\nHello\n";
}

std::set<std::string> queue_ids(const RetentionPlan &plan) {
  std::set<std::string> out;
  for (const RetentionItem &item : plan.items) {
    out.insert(item.locator.queue_id);
  }
  return out;
}

TEST(RetentionDecision, BoundaryIsStrictlyOlderThanMaxAge) {
  ScratchDir dir;
  core::Config config = make_config(dir.path(), R"({"postfix": "90d"})");
  const std::int64_t cutoff = k_now - 90 * k_day;
  EXPECT_FALSE(retention_decision(config, "postfix", cutoff, k_now).has_value());
  EXPECT_FALSE(retention_decision(config, "postfix", cutoff + 1, k_now).has_value());
  auto d = retention_decision(config, "postfix", cutoff - 1, k_now);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->action, RetentionAction::erase);
  EXPECT_EQ(d->reason, "older than 90d");
}

TEST(RetentionDecision, NoRuleOrNoDateNeverExpires) {
  ScratchDir dir;
  core::Config config = make_config(dir.path(), R"({"postfix": "90d"})");
  EXPECT_FALSE(retention_decision(config, "mailboxes", 0, k_now).has_value());
  EXPECT_FALSE(retention_decision(config, "archive", 0, k_now).has_value());
  EXPECT_FALSE(retention_decision(config, "postfix", std::nullopt, k_now).has_value());
}

TEST(RetentionDecision, AnonymizeAction) {
  ScratchDir dir;
  core::Config config = make_config(dir.path(), R"({"postfix": {"max_age": "30d", "action": "anonymize"}})");
  auto d = retention_decision(config, "postfix", k_now - 31 * k_day, k_now);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->action, RetentionAction::anonymize);
  EXPECT_EQ(to_string(d->action), "anonymize");
}

TEST(RetentionDecision, ActiveHoldsWin) {
  ScratchDir dir;
  core::Config config = make_config(dir.path(), R"({"postfix": "90d", "amavis": "30d", "archive": "1d"})",
                                    R"([{"source": "postfix", "reason": "litigation 17", "until": "2026-03-20"},
                                        {"source": "amavis", "reason": "audit", "until": "2026-03-19"},
                                        {"source": "archive", "reason": "forever"}])");
  const std::int64_t old = k_now - 400 * k_day;
  auto held = retention_decision(config, "postfix", old, k_now); // until == today: still active
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->action, RetentionAction::retain);
  EXPECT_EQ(held->reason, "hold: litigation 17 (until 2026-03-20)");
  auto lapsed = retention_decision(config, "amavis", old, k_now); // until yesterday: lapsed
  ASSERT_TRUE(lapsed.has_value());
  EXPECT_EQ(lapsed->action, RetentionAction::erase);
  auto indefinite = retention_decision(config, "archive", old, k_now);
  ASSERT_TRUE(indefinite.has_value());
  EXPECT_EQ(indefinite->action, RetentionAction::retain);
  EXPECT_EQ(indefinite->reason, "hold: forever");
  // A hold never makes something expire that is within its period.
  EXPECT_FALSE(retention_decision(config, "postfix", k_now - k_day, k_now).has_value());
}

TEST(RetentionNow, ParsesDatesAndRejectsGarbage) {
  EXPECT_EQ(parse_retention_now("2026-03-20").value_or(-1), k_now);
  EXPECT_EQ(parse_retention_now("2026-03-20T01:02:03Z").value_or(-1), k_now + 3723);
  for (const char *bad : {"", "2026-3-20", "2026-02-30", "20260320", "2026-03-20T25:00:00Z", "yesterday",
                          "2026-03-20T01:02:03"}) {
    auto r = parse_retention_now(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, core::ErrorCode::usage) << bad;
  }
}

TEST(RetentionPlan, SyslogWithoutYearAcrossNewYear) {
  ScratchDir dir;
  core::Config config = make_config(dir.path(), R"({"postfix": "90d"})");
  // Written 2026-01-10: the December lines are from 2025, the January lines from 2026.
  const fs::path log = dir / "logs/mail.log";
  write_file(log, postfix_transaction("Dec 15 10:00:00", "AAAA111111", "old@example.org") +
                      postfix_transaction("Dec 25 10:00:00", "BBBB222222", "mid@example.org") +
                      postfix_transaction("Jan  5 10:00:00", "CCCC333333", "new@example.org"));
  set_mtime(log, 1768003200); // 2026-01-10T00:00:00Z
  // Cutoff 2025-12-20: only the transaction of 2025-12-15 is past 90 days.
  auto plan = plan_retention(config, k_now);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_TRUE(plan->scan_errors.empty());
  EXPECT_EQ(queue_ids(*plan), (std::set<std::string>{"AAAA111111"}));
  ASSERT_EQ(plan->items.size(), 1U);
  EXPECT_EQ(plan->items[0].date, 1765792800); // 2025-12-15T10:00:00Z
  EXPECT_EQ(plan->items[0].locator.lines, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(plan->sources.at("postfix").kept, 2U);
  // A month later the December 25 transaction goes too, the January one stays.
  auto later = plan_retention(config, k_now + 10 * k_day);
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(queue_ids(*later), (std::set<std::string>{"AAAA111111", "BBBB222222"}));
}

TEST(RetentionPlan, MailboxesUntouchedWithoutRule) {
  ScratchDir dir;
  core::Config config = make_config(dir.path(), R"({"postfix": "1d", "amavis": "30d"})");
  write_file(dir / "mail/alice/Maildir/cur/1000.a.host:2,S", message("Mon, 1 Jan 2018 10:00:00 +0000", "ancient"));
  write_file(dir / "archive/2018.mbox",
             "From alice@example.com Mon Jan  1 10:00:00 2018\n" + message("Mon, 1 Jan 2018 10:00:00 +0000", "a1"));
  fs::create_directories(dir / "logs");
  auto plan = plan_retention(config, k_now);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_TRUE(plan->items.empty());
  EXPECT_FALSE(plan->sources.contains("mailboxes"));
  EXPECT_FALSE(plan->sources.contains("archive"));
  EXPECT_TRUE(plan->sources.contains("amavis"));
}

TEST(RetentionPlan, ArchiveMessagesExpireOnlyWhenNamed) {
  ScratchDir dir;
  core::Config config = make_config(dir.path(), R"({"archive": "365d", "mailboxes": {"max_age": "365d", "action": "anonymize"}})");
  const std::string old_msg = "From alice@example.com Mon Jan  1 10:00:00 2018\n" +
                              message("Mon, 1 Jan 2018 10:00:00 +0000", "old") + "\n";
  const std::string new_msg = "From alice@example.com Sun Mar  1 10:00:00 2026\n" +
                              message("Sun, 1 Mar 2026 10:00:00 +0000", "new") + "\n";
  write_file(dir / "archive/all.mbox", old_msg + new_msg);
  write_file(dir / "mail/alice/Maildir/cur/1000.a.host:2,S", message("Mon, 1 Jan 2018 10:00:00 +0000", "ancient"));
  write_file(dir / "mail/alice/Maildir/cur/2000.b.host:2,S", message("Sun, 1 Mar 2026 10:00:00 +0000", "recent"));
  auto plan = plan_retention(config, k_now);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  ASSERT_EQ(plan->items.size(), 2U);
  for (const RetentionItem &item : plan->items) {
    // Messages cannot be anonymised: the rule's anonymize deletes them.
    EXPECT_EQ(item.decision.action, RetentionAction::erase);
    if (item.locator.store == connectors::StoreKind::mbox) {
      EXPECT_EQ(item.locator.offset, 0U);
      EXPECT_EQ(item.locator.length, old_msg.size());
    } else {
      EXPECT_EQ(fs::path(item.locator.path).filename(), "1000.a.host:2,S");
    }
  }
}

TEST(RetentionPlan, QuarantineByFileTimeAndHeldItemsListed) {
  ScratchDir dir;
  core::Config config = make_config(dir.path(), R"({"amavis": "30d"})",
                                    R"([{"source": "amavis", "reason": "incident 9", "until": ""}])");
  const fs::path old_file = dir / "quarantine/spam-Kx7mQ2pL9vR4";
  const fs::path new_file = dir / "quarantine/spam-A7xK2mQ9pL0s";
  // The Date header says 2026; the file is 40 days old: the quarantine time counts.
  write_file(old_file, message("Sun, 1 Mar 2026 10:00:00 +0000", "q1"));
  write_file(new_file, message("Mon, 1 Jan 2018 10:00:00 +0000", "q2"));
  set_mtime(old_file, k_now - 40 * k_day);
  set_mtime(new_file, k_now - 5 * k_day);
  auto plan = plan_retention(config, k_now);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  ASSERT_EQ(plan->items.size(), 1U);
  EXPECT_EQ(plan->items[0].locator.path, old_file.string());
  EXPECT_EQ(plan->items[0].decision.action, RetentionAction::retain);
  EXPECT_EQ(plan->items[0].decision.reason, "hold: incident 9");
  EXPECT_EQ(plan->sources.at("amavis").actions.at("retain"), 1U);
}

TEST(RetentionApply, StaleItemIsSkippedAndUntouched) {
  ScratchDir dir;
  core::Config config = make_config(dir.path(), R"({"amavis": "30d"})");
  const fs::path file = dir / "quarantine/spam-Kx7mQ2pL9vR4";
  write_file(file, message("Sun, 1 Mar 2026 10:00:00 +0000", "q1"));
  set_mtime(file, k_now - 40 * k_day);
  auto plan = plan_retention(config, k_now);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  ASSERT_EQ(plan->items.size(), 1U);
  const std::string changed = message("Sun, 1 Mar 2026 10:00:00 +0000", "q9");
  write_file(file, changed); // changed after the scan
  auto report = apply_retention(config, *plan, RetentionOptions{"tester", {}});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->count("stale"), 1U);
  EXPECT_EQ(report->count("done"), 0U);
  EXPECT_EQ(report->outcomes[0].result, "stale");
  EXPECT_EQ(test::read_file(file), changed);
  EXPECT_FALSE(report->index_updated);
}

TEST(RetentionApply, AnonymizedLogIsNotListedAgain) {
  ScratchDir dir;
  core::Config config = make_config(dir.path(), R"({"postfix": {"max_age": "30d", "action": "anonymize"}})");
  const fs::path log = dir / "logs/mail.log";
  const std::string before = postfix_transaction("Jan  5 10:00:00", "AAAA111111", "alice.smith@example.com");
  write_file(log, before);
  set_mtime(log, 1768003200); // 2026-01-10
  auto plan = plan_retention(config, k_now);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  ASSERT_EQ(plan->items.size(), 1U);
  auto report = apply_retention(config, *plan, RetentionOptions{"tester", {}});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->count("done"), 1U);
  EXPECT_TRUE(report->index_updated);
  const std::string after = test::read_file(log);
  ASSERT_EQ(after.size(), before.size());
  EXPECT_EQ(after.find("alice.smith@example.com"), std::string::npos);
  EXPECT_EQ(after.find("203.0.113.45"), std::string::npos);
  EXPECT_NE(after.find("message-id=<AAAA111111@example.com>"), std::string::npos);
  EXPECT_NE(after.find("status=sent (delivered)"), std::string::npos);
  // The modification time stays (one second later: in place, `index` must see a change), so the
  // year of the syslog lines is inferred as before.
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, 1768003201);
  auto again = plan_retention(config, k_now);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->items.empty());
  EXPECT_EQ(again->sources.at("postfix").already_anonymized, 1U);
}

} // namespace
} // namespace maildsar::erasure
