// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end tests of the operational duties (issue 6): `status`, the index lock, a kill at any
// point of `index`, `find` during `index`, and `trace`.
#include "tests/e2e/e2e_support.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

using maildsar::test::json_lines;
using maildsar::test::maildsar_run;
using maildsar::test::RunResult;
using maildsar::test::ScratchDir;
using maildsar::test::write_file;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char *k_alice = "alice.smith@example.com";

/** Runs maildsar with extra environment entries ("NAME=value"). */
RunResult run_env(const std::vector<std::string> &args, const std::vector<std::string> &env) {
  std::vector<std::string> argv{MAILDSAR_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return maildsar::test::run(argv, {}, env);
}

/** Starts maildsar in the background (output discarded); returns its pid. */
pid_t spawn(const std::vector<std::string> &args, const std::vector<std::string> &env) {
  std::vector<std::string> argv{MAILDSAR_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    for (const auto &e : env) {
      ::putenv(const_cast<char *>(e.c_str()));
    }
    std::vector<char *> a;
    for (auto &s : argv) {
      a.push_back(s.data());
    }
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    ::_exit(127);
  }
  return pid;
}

/** Waits for a child; its exit code, or 128 + signal. */
int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string message(int n, bool to_alice) {
  return fmt::format("From: Bob Jones <bob.jones@example.com>\n"
                     "To: {}\n"
                     "Subject: note {}\n"
                     "Message-ID: <note-{}@gen.example>\n"
                     "Date: Tue, 14 Nov 2023 10:{:02}:00 +0000\n"
                     "\n"
                     "Body of note {}.\n",
                     to_alice ? "Alice Smith <alice.smith@example.com>" : "carol@example.com", n,
                     n, n % 60, n);
}

/**
 * A generated estate: `count` Maildir messages over two mailboxes and an mbox of count/4
 * messages; every third one is addressed to Alice. `expected` holds the keys find must list
 * for her ("<path>" or "<path>@<offset>").
 */
struct Estate {
  fs::path root;
  fs::path config;
  std::set<std::string> expected;
  int next = 0; // next message number
};

void add_maildir_messages(Estate &e, int count) {
  for (int i = 0; i < count; ++i, ++e.next) {
    bool alice = e.next % 3 == 0;
    std::string box = e.next % 2 == 0 ? "bob.jones" : "dave.brown";
    fs::path p = e.root / "mail" / box / "Maildir" / "cur" /
                 fmt::format("{}.M{}P1.mx1:2,S", 1700000000 + e.next, e.next);
    write_file(p, message(e.next, alice));
    if (alice) {
      e.expected.insert(p.string());
    }
  }
}

Estate make_estate(const fs::path &root, int count, const std::string &max_age = "1h") {
  Estate e;
  e.root = root;
  for (const char *box : {"bob.jones", "dave.brown"}) {
    for (const char *sub : {"cur", "new", "tmp"}) {
      fs::create_directories(root / "mail" / box / "Maildir" / sub);
    }
  }
  add_maildir_messages(e, count);
  std::string mbox;
  fs::path mbox_path = root / "archive" / "2023.mbox";
  for (int i = 0; i < count / 4; ++i, ++e.next) {
    bool alice = e.next % 3 == 0;
    if (alice) {
      e.expected.insert(fmt::format("{}@{}", mbox_path.string(), mbox.size()));
    }
    mbox += "From bob.jones@example.com Tue Nov 14 10:00:00 2023\n" + message(e.next, alice) + "\n";
  }
  write_file(mbox_path, mbox);
  e.config = root / "maildsar.json";
  write_file(e.config, fmt::format(R"({{
  "state_dir": "state",
  "max_index_age": "{}",
  "sources": [
    {{"name": "mailboxes", "type": "maildir", "path": "mail/*/Maildir"}},
    {{"name": "archive", "type": "mbox", "path": "archive/*.mbox"}}
  ]
}})",
                                   max_age));
  return e;
}

std::string key_of(const json &hit) {
  std::string key = hit.at("path").get<std::string>();
  if (hit.at("store") == "mbox") {
    key += "@" + std::to_string(hit.at("offset").get<std::uint64_t>());
  }
  return key;
}

/** find's keys for Alice; a duplicate is a test failure. */
std::set<std::string> found(const fs::path &config, int *exit_code = nullptr) {
  auto r = maildsar_run({"-c", config.string(), "find", "--email", k_alice, "--json"});
  if (exit_code != nullptr) {
    *exit_code = r.exit_code;
  } else {
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  std::set<std::string> keys;
  for (const json &h : json_lines(r.out)) {
    if (h.contains("error")) {
      continue; // no answer (the exit code says why)
    }
    EXPECT_TRUE(keys.insert(key_of(h)).second) << "duplicate hit " << key_of(h);
  }
  return keys;
}

json status_json(const fs::path &config, int expected_exit) {
  auto r = maildsar_run({"-c", config.string(), "status", "--json"});
  EXPECT_EQ(r.exit_code, expected_exit) << r.err << r.out;
  auto lines = json_lines(r.out);
  EXPECT_EQ(lines.size(), 1U) << r.out;
  return lines.empty() ? json::object() : lines.front();
}

const json &source_of(const json &status, const std::string &name) {
  for (const json &s : status.at("sources")) {
    if (s.at("name") == name) {
      return s;
    }
  }
  static const json none = json::object();
  ADD_FAILURE() << "no source " << name << " in " << status.dump();
  return none;
}

} // namespace

// ---- status ----

TEST(OpsStatus, NeverIndexedThenFreshThenStale) {
  ScratchDir dir;
  Estate e = make_estate(dir.path(), 12);
  // before any index: every source "never", exit 1 so that monitoring alerts
  json before = status_json(e.config, 1);
  EXPECT_EQ(before.at("stale"), true);
  EXPECT_EQ(before.at("max_index_age_seconds"), 3600);
  ASSERT_EQ(before.at("sources").size(), 2U);
  for (const json &s : before.at("sources")) {
    EXPECT_TRUE(s.at("last_success").is_null());
    EXPECT_EQ(s.at("stale"), true);
    EXPECT_EQ(s.at("items"), 0);
  }
  auto human = maildsar_run({"-c", e.config.string(), "status"});
  EXPECT_EQ(human.exit_code, 1);
  EXPECT_NE(human.out.find("never"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("STALE"), std::string::npos) << human.out;

  // after an index: fresh, with the counts of the run
  maildsar::test::index_json(e.config);
  json after = status_json(e.config, 0);
  EXPECT_EQ(after.at("stale"), false);
  const json &mb = source_of(after, "mailboxes");
  EXPECT_EQ(mb.at("type"), "maildir");
  EXPECT_EQ(mb.at("items"), 12);
  EXPECT_EQ(mb.at("files"), 12);
  EXPECT_EQ(mb.at("errors"), 0);
  EXPECT_EQ(mb.at("stale"), false);
  std::string when = mb.at("last_success").get<std::string>();
  EXPECT_EQ(when.size(), 20U) << when; // 2026-01-01T00:00:00Z
  EXPECT_EQ(when.back(), 'Z');
  EXPECT_EQ(source_of(after, "archive").at("items"), 3);
  EXPECT_EQ(source_of(after, "archive").at("files"), 1);

  // the same state against a 1 s maximum age, 2 s later: stale
  std::string text = maildsar::test::read_file(e.config);
  text.replace(text.find("\"1h\""), 4, "\"1s\"");
  write_file(e.config, text);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  json stale = status_json(e.config, 1);
  EXPECT_EQ(stale.at("stale"), true);
  EXPECT_EQ(stale.at("max_index_age_seconds"), 1);
  EXPECT_EQ(source_of(stale, "mailboxes").at("stale"), true);
  EXPECT_EQ(source_of(stale, "mailboxes").at("items"), 12);
}

TEST(OpsStatus, ErrorsOfTheLastRunAreShown) {
  ScratchDir dir;
  Estate e = make_estate(dir.path(), 3);
  // an mbox that is not one: one problem, the run goes on (exit 1), the source still indexed
  fs::path broken = dir / "archive" / "broken.mbox";
  write_file(broken, std::string("\0\1\2binary\0", 10));
  auto r = maildsar_run({"-c", e.config.string(), "index", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  json st = status_json(e.config, 0);
  EXPECT_EQ(source_of(st, "mailboxes").at("errors"), 0);
  EXPECT_EQ(source_of(st, "archive").at("errors"), 1);
  EXPECT_EQ(source_of(st, "archive").at("files"), 2);
  // the next run without the problem: errors of the last run only
  fs::remove(broken);
  EXPECT_EQ(maildsar_run({"-c", e.config.string(), "index"}).exit_code, 0);
  EXPECT_EQ(source_of(status_json(e.config, 0), "archive").at("errors"), 0);
}

// ---- the lock, find during index, kill at any point ----

TEST(OpsLock, SecondIndexExits75AndFindAnswersWhileIndexRuns) {
  ScratchDir dir;
  Estate e = make_estate(dir.path(), 300);
  // The first indexer stops itself (SIGSTOP) after two committed batches of 40 documents:
  // it holds the lock and an open, uncommitted batch.
  pid_t pid = spawn({"-c", e.config.string(), "index", "--threads", "1"},
                    {"MAILDSAR_TEST_BATCH_SIZE=40", "MAILDSAR_TEST_STOP_AT=before_index_commit:3"});
  ASSERT_GT(pid, 0);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(wstatus)) << "index ended before the stop point: " << wstatus;

  auto second = maildsar_run({"-c", e.config.string(), "index"});
  EXPECT_EQ(second.exit_code, 75) << second.err;
  EXPECT_NE(second.err.find("locked by another process"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("another `maildsar index` is running"), std::string::npos) << second.err;

  // During the very first run no source has been searched completely: find gives no answer
  // (exit 69, issue 13 item 9) rather than a partial one, and does not wait for the lock.
  int code = -1;
  std::set<std::string> partial = found(e.config, &code);
  EXPECT_EQ(code, 69);
  EXPECT_TRUE(partial.empty());
  // status reads the catalog without the lock
  auto st = maildsar_run({"-c", e.config.string(), "status", "--json"});
  EXPECT_NE(st.exit_code, 75) << st.err;
  EXPECT_EQ(json_lines(st.out).size(), 1U) << st.out << st.err;

  ::kill(pid, SIGCONT);
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_EQ(found(e.config), e.expected);
  json fresh = status_json(e.config, 0);
  EXPECT_EQ(source_of(fresh, "mailboxes").at("items"), 300);

  // A later run holds the lock with an open batch (a --full run has dropped every document in
  // it): find answers from the last committed state, complete, without waiting.
  pid = spawn({"-c", e.config.string(), "index", "--full", "--threads", "1"},
              {"MAILDSAR_TEST_BATCH_SIZE=40", "MAILDSAR_TEST_STOP_AT=before_index_commit:1"});
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::waitpid(pid, &wstatus, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(wstatus)) << "index ended before the stop point: " << wstatus;
  EXPECT_EQ(maildsar_run({"-c", e.config.string(), "index"}).exit_code, 75);
  code = -1;
  EXPECT_EQ(found(e.config, &code), e.expected);
  EXPECT_EQ(code, 0);
  ::kill(pid, SIGCONT);
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_EQ(found(e.config), e.expected);
}

TEST(OpsCrash, KillAtEveryCommitStepThenTheNextRunCompletes) {
  ScratchDir dir;
  Estate e = make_estate(dir.path(), 90);
  for (const char *step : {"before_catalog_commit", "before_index_commit", "after_index_commit"}) {
    for (int nth : {1, 2}) {
      SCOPED_TRACE(fmt::format("{}:{}", step, nth));
      fs::remove_all(dir / "state");
      auto killed = run_env({"-c", e.config.string(), "index", "--threads", "1"},
                            {"MAILDSAR_TEST_BATCH_SIZE=25",
                             fmt::format("MAILDSAR_TEST_KILL_AT={}:{}", step, nth)});
      EXPECT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
      auto again = maildsar_run({"-c", e.config.string(), "index"});
      EXPECT_EQ(again.exit_code, 0) << again.err;
      EXPECT_EQ(found(e.config), e.expected);
      json st = status_json(e.config, 0);
      EXPECT_EQ(source_of(st, "mailboxes").at("items"), 90);
    }
  }
  // A killed incremental run: files removed and added since the last complete run.
  std::vector<std::string> gone;
  for (const auto &k : e.expected) {
    if (k.find("@") == std::string::npos && gone.size() < 5) {
      gone.push_back(k);
    }
  }
  for (const auto &k : gone) {
    fs::remove(k);
    e.expected.erase(k);
  }
  add_maildir_messages(e, 30);
  for (const char *step : {"before_index_commit", "after_index_commit"}) {
    SCOPED_TRACE(step);
    auto killed = run_env({"-c", e.config.string(), "index", "--threads", "1"},
                          {"MAILDSAR_TEST_BATCH_SIZE=10", fmt::format("MAILDSAR_TEST_KILL_AT={}", step)});
    EXPECT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
  }
  auto again = maildsar_run({"-c", e.config.string(), "index"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(found(e.config), e.expected);
}

TEST(OpsCrash, RandomSigkillDuringIndexThenTheNextRunCompletes) {
  ScratchDir dir;
  Estate e = make_estate(dir.path(), 1200);
  std::mt19937 rng(20261106U);
  std::uniform_int_distribution<int> delay_ms(5, 400);
  int killed_runs = 0;
  for (int round = 0; round < 4; ++round) {
    int delay = delay_ms(rng);
    SCOPED_TRACE(fmt::format("round {}, SIGKILL after {} ms", round, delay));
    pid_t pid = spawn({"-c", e.config.string(), "index"}, {"MAILDSAR_TEST_BATCH_SIZE=100"});
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    ::kill(pid, SIGKILL);
    int code = wait_exit(pid);
    EXPECT_TRUE(code == 128 + SIGKILL || code == 0) << code;
    killed_runs += code == 128 + SIGKILL ? 1 : 0;
    if (code == 0 && round < 3) {
      // It finished before the kill (a fast machine): the next run starts from no state at all,
      // so that it too has a whole run's work to be killed in, not a no-op.
      fs::remove_all(e.root / "state");
    }
    if (round == 1) {
      add_maildir_messages(e, 20); // the next killed run is an incremental one
    }
  }
  EXPECT_GT(killed_runs, 0);
  auto again = maildsar_run({"-c", e.config.string(), "index"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(found(e.config), e.expected);
  // and a no-op run after it changes nothing
  json noop = maildsar::test::index_json(e.config);
  EXPECT_EQ(maildsar::test::source_counts(noop, "mailboxes").at("new"), 0);
  EXPECT_EQ(maildsar::test::source_counts(noop, "mailboxes").at("removed"), 0);
}

// ---- trace ----

namespace {

// The path of the traced message, newest field first as stored (RFC 5321 §4.4).
constexpr const char *k_hop_store =
    "Received: from localhost (localhost [192.0.2.10])\n"
    "\tby store.example.com (Dovecot) with LMTP id mHq0Kx\n"
    "\tfor <{rcpt}>; Tue, 14 Nov 2023 10:00:{sec} +0000\n";
constexpr const char *k_hops_common =
    "Received: from mx1.example.com ([127.0.0.1])\n"
    "\tby scan.example.com with esmtps (TLS1.3) tls TLS_AES_256_GCM_SHA384\n"
    "\t(Exim 4.96) id 1r2s3t; Tue, 14 Nov 2023 10:00:06 +0000\n"
    "Received: from mail.origin.example (mail.origin.example [198.51.100.7])\n"
    "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n"
    "\t(No client certificate requested)\n"
    "\tby mx1.example.com (Postfix) with ESMTPS id 7C1D2E3F40\n"
    "\tfor <alice.smith@example.com>; Tue, 14 Nov 2023 10:00:05 +0000 (UTC)\n"
    "Received: from [10.1.2.3] (dsl.isp.example [203.0.113.45])\n"
    "\tby mail.origin.example with ESMTPSA id 42\n"
    "\t(version=TLS1_3 cipher=TLS_AES_128_GCM_SHA256 bits=128/128);\n"
    "\tTue, 14 Nov 2023 10:00:02 +0000\n";
constexpr const char *k_traced_rest =
    "From: Erin Example <erin@origin.example>\n"
    "To: Alice Smith <alice.smith@example.com>, bob.jones@example.com\n"
    "Subject: the traced message\n"
    "Message-ID: <Trace-0001@Origin.Example>\n"
    "Date: Tue, 14 Nov 2023 10:00:00 +0000\n"
    "\n"
    "Hello Alice and Bob.\n";

std::string traced(const std::string &rcpt, const std::string &sec) {
  std::string store = k_hop_store;
  store.replace(store.find("{rcpt}"), 6, rcpt);
  store.replace(store.find("{sec}"), 5, sec);
  return store + k_hops_common + k_traced_rest;
}

std::string other_message(int n) {
  return fmt::format("From: Bob <bob.jones@example.com>\nTo: carol@example.com\nSubject: other\n"
                     "Message-ID: <other-{}@example.com>\nDate: Tue, 14 Nov 2023 09:00:00 +0000\n\n"
                     "Other.\n",
                     n);
}

} // namespace

TEST(OpsTrace, FindsTheMessageInFourStoresAndItsLogTransaction) {
  ScratchDir dir;
  const fs::path root = dir.path();
  // two mailboxes (Alice's inbox, Bob's .Archive folder)
  fs::path alice = root / "mail/alice.smith/Maildir/cur/1699956007.M1P1.store:2,S";
  fs::path bob = root / "mail/bob.jones/Maildir/.Archive/cur/1699956008.M2P1.store:2,S";
  write_file(alice, traced("alice.smith@example.com", "07"));
  write_file(bob, traced("bob.jones@example.com", "08"));
  write_file(root / "mail/alice.smith/Maildir/cur/1699950000.M3P1.store:2,S", other_message(1));
  for (const char *box : {"alice.smith/Maildir", "bob.jones/Maildir", "bob.jones/Maildir/.Archive"}) {
    for (const char *sub : {"cur", "new", "tmp"}) {
      fs::create_directories(root / "mail" / box / sub);
    }
  }
  // an mbox archive: another message, then the traced one (as archived by a journal hop)
  std::string first = "From bob.jones@example.com Tue Nov 14 09:00:00 2023\n" + other_message(2) + "\n";
  std::string mbox = first + "From alice.smith@example.com Tue Nov 14 10:00:09 2023\n" +
                     traced("journal@example.com", "09") + "\n";
  write_file(root / "archive/2023.mbox", mbox);
  // the amavis quarantine copy (quarantined at the scanning hop: 3 Received fields)
  write_file(root / "quarantine/amavis/banned-Kx9mQ2wE4rT6",
             std::string("Return-Path: <erin@origin.example>\n"
                         "Delivered-To: banned-quarantine\n"
                         "X-Envelope-From: <erin@origin.example>\n"
                         "X-Envelope-To: <alice.smith@example.com>\n"
                         "X-Quarantine-ID: <Kx9mQ2wE4rT6>\n") +
                 k_hops_common + k_traced_rest);
  // the Postfix transaction that carried it, between two others
  fs::path log = root / "logs/mail.log";
  write_file(log,
             "Nov 14 09:59:58 mx1 postfix/smtpd[100]: 1A2B3C4D5E: client=other.example[198.51.100.99]\n"
             "Nov 14 09:59:58 mx1 postfix/cleanup[101]: 1A2B3C4D5E: message-id=<other-9@example.com>\n"
             "Nov 14 10:00:05 mx1 postfix/smtpd[100]: 7C1D2E3F40: client=mail.origin.example[198.51.100.7]\n"
             "Nov 14 10:00:05 mx1 postfix/cleanup[101]: 7C1D2E3F40: message-id=<Trace-0001@Origin.Example>\n"
             "Nov 14 10:00:05 mx1 postfix/qmgr[102]: 7C1D2E3F40: from=<erin@origin.example>, size=1800, nrcpt=2 (queue active)\n"
             "Nov 14 10:00:05 mx1 postfix/smtp[103]: 7C1D2E3F40: to=<alice.smith@example.com>, relay=scan.example.com[192.0.2.20]:10024, delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n"
             "Nov 14 10:00:05 mx1 postfix/qmgr[102]: 7C1D2E3F40: removed\n"
             "Nov 14 10:01:00 mx1 postfix/smtpd[100]: 9F8E7D6C5B: client=unknown[203.0.113.9]\n"
             "Nov 14 10:01:00 mx1 postfix/cleanup[101]: 9F8E7D6C5B: message-id=<other-10@example.com>\n");
  // syslog lines have no year: the file's mtime says 2023
  fs::last_write_time(log, fs::file_time_type::clock::now() -
                               std::chrono::duration_cast<fs::file_time_type::duration>(
                                   std::chrono::system_clock::now() -
                                   std::chrono::system_clock::from_time_t(1700049600))); // 2023-11-15
  fs::path cfg = root / "maildsar.json";
  write_file(cfg, R"({
  "state_dir": "state",
  "sources": [
    {"name": "mailboxes", "type": "maildir", "path": "mail/*/Maildir"},
    {"name": "archive", "type": "mbox", "path": "archive/*.mbox"},
    {"name": "amavis", "type": "quarantine", "format": "amavis", "path": "quarantine/amavis"},
    {"name": "postfix", "type": "maillog", "format": "postfix", "path": "logs/mail.log*"}
  ]
})");
  std::vector<std::string> utc{"TZ=UTC"};
  auto idx = run_env({"-c", cfg.string(), "index"}, utc);
  ASSERT_EQ(idx.exit_code, 0) << idx.err;

  // case-insensitive, angle brackets optional
  auto r = run_env({"-c", cfg.string(), "trace", "trace-0001@origin.example", "--json"}, utc);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<json> hops;
  std::vector<json> copies;
  for (json &j : json_lines(r.out)) {
    (j.at("kind") == "hop" ? hops : copies).push_back(std::move(j));
  }
  ASSERT_EQ(copies.size(), 5U) << r.out;
  // in time order: log (10:00:05), quarantine (10:00:06), Alice (:07), Bob (:08), archive (:09)
  std::vector<std::string> where;
  for (const json &c : copies) {
    where.push_back(c.at("source").get<std::string>() + "/" + c.at("store").get<std::string>());
    EXPECT_EQ(c.at("message_id"), "Trace-0001@Origin.Example") << c.dump();
    EXPECT_EQ(c.at("sha256").get<std::string>().size(), 64U);
    EXPECT_TRUE(c.contains("id") && c.contains("path") && c.contains("date")) << c.dump();
  }
  EXPECT_EQ(where, (std::vector<std::string>{"postfix/maillog", "amavis/quarantine",
                                             "mailboxes/maildir", "mailboxes/maildir",
                                             "archive/mbox"}));
  EXPECT_EQ(copies[0].at("queue_id"), "7C1D2E3F40");
  EXPECT_EQ(copies[0].at("lines"), (std::vector<int>{3, 4, 5, 6, 7}));
  EXPECT_EQ(copies[2].at("path"), alice.string());
  EXPECT_EQ(copies[3].at("path"), bob.string());
  EXPECT_EQ(copies[3].at("folder"), ".Archive");
  EXPECT_EQ(copies[4].at("offset"), first.size());
  EXPECT_EQ(copies[2].at("arrived"), "2023-11-14T10:00:07Z");
  // the path: origin first
  ASSERT_EQ(hops.size(), 4U) << r.out;
  for (std::size_t i = 0; i < hops.size(); ++i) {
    EXPECT_EQ(hops[i].at("index"), i + 1);
  }
  EXPECT_EQ(hops[0].at("from"), "[10.1.2.3]");
  EXPECT_EQ(hops[0].at("by"), "mail.origin.example");
  EXPECT_EQ(hops[0].at("ip"), "203.0.113.45");
  EXPECT_EQ(hops[0].at("protocol"), "ESMTPSA");
  EXPECT_EQ(hops[0].at("tls"), "TLS1_3 TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(hops[0].at("date"), "2023-11-14T10:00:02Z");
  EXPECT_EQ(hops[1].at("from"), "mail.origin.example");
  EXPECT_EQ(hops[1].at("by"), "mx1.example.com");
  EXPECT_EQ(hops[1].at("ip"), "198.51.100.7");
  EXPECT_EQ(hops[1].at("tls"), "TLSv1.3 TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(hops[2].at("by"), "scan.example.com");
  EXPECT_EQ(hops[2].at("ip"), "127.0.0.1");
  EXPECT_EQ(hops[2].at("tls"), "TLS1.3 TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(hops[3].at("by"), "store.example.com");
  EXPECT_EQ(hops[3].at("protocol"), "LMTP");
  EXPECT_TRUE(hops[3].at("tls").is_null());
  EXPECT_EQ(hops[3].at("date"), "2023-11-14T10:00:07Z");

  // human output: the hops, then the copies
  auto h = run_env({"-c", cfg.string(), "trace", "<Trace-0001@Origin.Example>"}, utc);
  ASSERT_EQ(h.exit_code, 0) << h.err;
  auto hop_at = h.out.find("mx1.example.com -> scan.example.com");
  auto copy_at = h.out.find(alice.string());
  EXPECT_NE(hop_at, std::string::npos) << h.out;
  EXPECT_NE(copy_at, std::string::npos) << h.out;
  EXPECT_LT(hop_at, copy_at);
  EXPECT_NE(h.out.find("7C1D2E3F40 lines 3-7"), std::string::npos) << h.out;

  // an unknown id: nothing, exit 0; no id: usage
  auto none = run_env({"-c", cfg.string(), "trace", "nobody@nowhere.example", "--json"}, utc);
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_TRUE(none.out.empty()) << none.out;
  auto none_h = run_env({"-c", cfg.string(), "trace", "<nobody@nowhere.example>"}, utc);
  EXPECT_EQ(none_h.exit_code, 0);
  EXPECT_NE(none_h.out.find("no copy found"), std::string::npos) << none_h.out;
  EXPECT_EQ(run_env({"-c", cfg.string(), "trace"}, utc).exit_code, 64);
  EXPECT_EQ(run_env({"-c", cfg.string(), "trace", "<>"}, utc).exit_code, 64);

  // a copy that vanished since indexing is named on stderr; the others are still listed
  fs::remove(bob);
  auto gone = run_env({"-c", cfg.string(), "trace", "trace-0001@origin.example", "--json"}, utc);
  EXPECT_EQ(gone.exit_code, 0) << gone.err;
  EXPECT_NE(gone.err.find(bob.string()), std::string::npos) << gone.err;
  EXPECT_EQ(json_lines(gone.out).size(), 9U);
}
