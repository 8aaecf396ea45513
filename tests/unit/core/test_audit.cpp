// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/audit.hpp"
#include "core/hash.hpp"
#include "core/secret.hpp"

#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace maildsar::core;
using maildsar::test::ScratchDir;

namespace {

std::uint32_t file_mode(const std::filesystem::path &p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777U;
}

std::vector<std::string> read_lines(const std::filesystem::path &p) {
  std::vector<std::string> lines;
  std::istringstream in(maildsar::test::read_file(p));
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

void write_lines(const std::filesystem::path &p, const std::vector<std::string> &lines) {
  std::string data;
  for (const auto &l : lines) {
    data += l + "\n";
  }
  maildsar::test::write_file(p, data);
}

/** A state dir holding a log of `n` records. */
AuditLog make_log(const ScratchDir &dir, int n) {
  auto log = AuditLog::open((dir / "state").string());
  EXPECT_TRUE(log) << log.error().message;
  for (int i = 0; i < n; ++i) {
    auto r = log->append("erase", "alice", "DSAR-2026-0042",
                         {{"items", i}, {"subject", keyed_hash("k", "email", "a@b.example")}});
    EXPECT_TRUE(r) << r.error().message;
  }
  return std::move(*log);
}

/** A record someone else appends after `last`: self-consistent, its prev set to `prev`. */
AuditRecord forged_after(const AuditRecord &last, const std::string &prev) {
  AuditRecord forged = last;
  forged.seq = last.seq + 1;
  forged.action = "approve";
  forged.prev = prev;
  forged.hash = sha256_hex(forged.canonical_json());
  return forged;
}

AuditProblem expect_problem(const AuditLog &log) {
  auto v = log.verify();
  EXPECT_TRUE(v) << v.error().message;
  if (!v || !v->has_value()) {
    ADD_FAILURE() << "tampering not detected";
    return {};
  }
  return **v;
}

} // namespace

TEST(AuditLog, AbsentLogIsEmptyAndIntact) {
  ScratchDir dir;
  auto log = AuditLog::open((dir / "state").string());
  ASSERT_TRUE(log);
  auto v = log->verify();
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->has_value());
  auto r = log->records();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(file_mode(dir / "state"), 0700U);
}

TEST(AuditLog, AppendsChainedRecordsAndVerifiesIntact) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 3);
  auto recs = log.records();
  ASSERT_TRUE(recs) << recs.error().message;
  ASSERT_EQ(recs->size(), 3U);
  EXPECT_EQ((*recs)[0].prev, std::string(k_audit_genesis));
  for (std::size_t i = 0; i < recs->size(); ++i) {
    const auto &r = (*recs)[i];
    EXPECT_EQ(r.seq, i + 1);
    EXPECT_EQ(r.operator_name, "alice");
    EXPECT_EQ(r.action, "erase");
    EXPECT_EQ(r.request, "DSAR-2026-0042");
    EXPECT_EQ(r.details["items"], static_cast<int>(i));
    EXPECT_EQ(r.time.size(), 20U);
    EXPECT_EQ(r.time.back(), 'Z');
    EXPECT_EQ(r.hash, sha256_hex(r.canonical_json()));
    if (i > 0) {
      EXPECT_EQ(r.prev, (*recs)[i - 1].hash);
    }
  }
  // The line is the canonical JSON: sorted keys, "hash" included.
  const auto lines = read_lines(dir / "state/audit.log");
  ASSERT_EQ(lines.size(), 3U);
  EXPECT_EQ(lines[0].rfind("{\"action\":\"erase\",\"details\":", 0), 0U) << lines[0];
  EXPECT_EQ(lines[0].find("a@b.example"), std::string::npos); // only keyed hashes
  auto v = log.verify();
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_FALSE(v->has_value()) << (*v)->cause;
  EXPECT_EQ(file_mode(dir / "state/audit.log"), 0600U);
  EXPECT_EQ(file_mode(dir / "state/audit.head"), 0600U);
}

TEST(AuditLog, ReopenContinuesTheChain) {
  ScratchDir dir;
  make_log(dir, 2);
  AuditLog again = make_log(dir, 1);
  auto recs = again.records();
  ASSERT_TRUE(recs);
  ASSERT_EQ(recs->size(), 3U);
  EXPECT_EQ(recs->back().seq, 3U);
  EXPECT_FALSE(again.verify()->has_value());
}

TEST(AuditLog, BadUtf8InOperatorStillVerifies) {
  ScratchDir dir;
  auto log = AuditLog::open((dir / "state").string());
  ASSERT_TRUE(log);
  ASSERT_TRUE(log->append("approve", std::string("bob\xff\xfe"), "R1", nlohmann::json::object()));
  ASSERT_TRUE(log->append("approve", "bob", "R1", nullptr));
  auto v = log->verify();
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->has_value()) << (*v)->cause;
}

TEST(AuditLog, DetectsOneEditedByte) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 3);
  auto lines = read_lines(dir / "state/audit.log");
  const auto at = lines[1].find("alice");
  ASSERT_NE(at, std::string::npos);
  lines[1][at + 4] = 'f'; // alice -> alicf
  write_lines(dir / "state/audit.log", lines);
  const AuditProblem p = expect_problem(log);
  EXPECT_EQ(p.line, 2U);
  EXPECT_EQ(p.seq, 2U);
  EXPECT_NE(p.cause.find("hash mismatch"), std::string::npos) << p.cause;
}

TEST(AuditLog, DetectsAnEditThatKeepsTheJsonEqual) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 2);
  auto lines = read_lines(dir / "state/audit.log");
  lines[0].insert(1, " "); // whitespace only
  write_lines(dir / "state/audit.log", lines);
  const AuditProblem p = expect_problem(log);
  EXPECT_EQ(p.line, 1U);
  EXPECT_NE(p.cause.find("canonical"), std::string::npos) << p.cause;
}

TEST(AuditLog, DetectsAnUnparseableLine) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 3);
  auto lines = read_lines(dir / "state/audit.log");
  lines[1] = "not json at all";
  write_lines(dir / "state/audit.log", lines);
  const AuditProblem p = expect_problem(log);
  EXPECT_EQ(p.line, 2U);
  EXPECT_EQ(p.seq, 2U);
  EXPECT_NE(p.cause.find("unparseable"), std::string::npos) << p.cause;
  auto recs = log.records();
  ASSERT_FALSE(recs);
  EXPECT_EQ(recs.error().code, ErrorCode::data);
  EXPECT_NE(recs.error().message.find(":2:"), std::string::npos) << recs.error().message;
}

TEST(AuditLog, DetectsAnAddedKey) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 2);
  auto lines = read_lines(dir / "state/audit.log");
  lines[0].insert(1, "\"extra\":1,");
  write_lines(dir / "state/audit.log", lines);
  const AuditProblem p = expect_problem(log);
  EXPECT_EQ(p.line, 1U);
  EXPECT_NE(p.cause.find("unexpected key"), std::string::npos) << p.cause;
}

TEST(AuditLog, DetectsADeletedMiddleRecord) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 4);
  auto lines = read_lines(dir / "state/audit.log");
  lines.erase(lines.begin() + 1);
  write_lines(dir / "state/audit.log", lines);
  const AuditProblem p = expect_problem(log);
  EXPECT_EQ(p.line, 2U);
  EXPECT_EQ(p.seq, 3U);
  EXPECT_NE(p.cause.find("expected seq 2"), std::string::npos) << p.cause;
}

TEST(AuditLog, DetectsDeletedLastRecords) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 3);
  auto lines = read_lines(dir / "state/audit.log");
  lines.pop_back();
  write_lines(dir / "state/audit.log", lines);
  const AuditProblem p = expect_problem(log);
  EXPECT_EQ(p.line, 3U);
  EXPECT_EQ(p.seq, 3U);
  EXPECT_NE(p.cause.find("last records removed"), std::string::npos) << p.cause;
  // And an append refuses to paper over it.
  auto r = log.append("erase", "alice", "R", nlohmann::json::object());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::data);
}

TEST(AuditLog, DetectsAnEmptiedLog) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 2);
  std::filesystem::remove(dir / "state/audit.log");
  const AuditProblem p = expect_problem(log);
  EXPECT_EQ(p.line, 1U);
  EXPECT_EQ(p.seq, 1U);
  ASSERT_FALSE(log.append("erase", "alice", "R", nlohmann::json::object()));
}

TEST(AuditLog, DetectsARemovedHead) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 2);
  std::filesystem::remove(dir / "state/audit.head");
  const AuditProblem p = expect_problem(log);
  EXPECT_NE(p.cause.find("audit.head is missing"), std::string::npos) << p.cause;
}

TEST(AuditLog, DetectsSwappedRecords) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 4);
  auto lines = read_lines(dir / "state/audit.log");
  std::swap(lines[1], lines[2]);
  write_lines(dir / "state/audit.log", lines);
  const AuditProblem p = expect_problem(log);
  EXPECT_EQ(p.line, 2U);
  EXPECT_EQ(p.seq, 3U);
}

TEST(AuditLog, DetectsTruncationMidLine) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 3);
  const std::string data = maildsar::test::read_file(dir / "state/audit.log");
  const std::size_t cut = data.rfind('\n', data.size() - 2) + 20;
  std::filesystem::resize_file(dir / "state/audit.log", cut);
  const AuditProblem p = expect_problem(log);
  EXPECT_EQ(p.line, 3U);
  EXPECT_EQ(p.seq, 3U);
  EXPECT_NE(p.cause.find("truncated"), std::string::npos) << p.cause;
}

TEST(AuditLog, DetectsAForgedAppendedRecord) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 2);
  auto recs = log.records();
  ASSERT_TRUE(recs);
  AuditRecord forged = forged_after(recs->back(), sha256_hex("something else")); // does not link
  auto lines = read_lines(dir / "state/audit.log");
  lines.push_back(forged.to_json().dump());
  write_lines(dir / "state/audit.log", lines);
  AuditProblem p = expect_problem(log);
  EXPECT_EQ(p.line, 3U);
  EXPECT_EQ(p.seq, 3U);
  EXPECT_NE(p.cause.find("chain broken"), std::string::npos) << p.cause;

  // A forgery that links properly is still caught by the head.
  forged = forged_after(recs->back(), recs->back().hash);
  lines.back() = forged.to_json().dump();
  write_lines(dir / "state/audit.log", lines);
  p = expect_problem(log);
  EXPECT_EQ(p.line, 4U);
  EXPECT_NE(p.cause.find("audit.head records seq 2"), std::string::npos) << p.cause;
}

namespace {

/** The head as a crash inside append() leaves it: at `seq`/`hash`, naming `pending` as written. */
void write_pending_head(const ScratchDir &dir, const AuditRecord &at, const std::string &pending_hash) {
  maildsar::test::write_file(dir / "state/audit.head",
                             nlohmann::json{{"seq", at.seq},
                                            {"hash", at.hash},
                                            {"pending", {{"seq", at.seq + 1}, {"hash", pending_hash}}}}
                                     .dump() +
                                 "\n");
}

void expect_intact(const AuditLog &log) {
  auto v = log.verify();
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_FALSE(v->has_value()) << (*v)->cause;
}

} // namespace

// A kill between writing a record and advancing the head (an `erase` killed while it records its
// progress) must not stop the next run: the head names the record before it is written, so the
// log ending at exactly that record is the interrupted append, which the next append completes
// and `audit verify` accepts. Found by Erasure.RealSigkillOnALargeMboxLosesNothing (1 run in 12).
TEST(AuditLog, AnAppendKilledBeforeTheHeadMovedIsCompletedByTheNext) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 3);
  auto recs = log.records();
  ASSERT_TRUE(recs);
  write_pending_head(dir, (*recs)[1], (*recs)[2].hash); // the log has record 3, the head 2
  expect_intact(log);
  auto next = log.append("erase", "alice", "DSAR-2026-0042", nlohmann::json::object());
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(next->seq, 4U);
  EXPECT_EQ(next->prev, (*recs)[2].hash);
  expect_intact(log);
  const std::string head = maildsar::test::read_file(dir / "state/audit.head");
  EXPECT_EQ(head.find("pending"), std::string::npos) << head;
}

// Killed while the line was being written: the torn line after the head's record is dropped by
// the next append (it was never complete), and the chain goes on from the head.
TEST(AuditLog, ALineTornByAKilledAppendIsDroppedByTheNext) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 3);
  auto recs = log.records();
  ASSERT_TRUE(recs);
  const std::string data = maildsar::test::read_file(dir / "state/audit.log");
  const std::size_t third = data.rfind('\n', data.size() - 2) + 1;
  std::filesystem::resize_file(dir / "state/audit.log", third + 20);
  write_pending_head(dir, (*recs)[1], (*recs)[2].hash);
  expect_intact(log);
  auto next = log.append("approve", "bob", "DSAR-2026-0042", nlohmann::json::object());
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(next->seq, 3U);
  EXPECT_EQ(next->prev, (*recs)[1].hash);
  expect_intact(log);
  auto after = log.records();
  ASSERT_TRUE(after);
  ASSERT_EQ(after->size(), 3U);
  EXPECT_EQ(after->back().action, "approve");

  // Killed before the first record's line: an empty log whose head names seq 1 as pending.
  ScratchDir fresh;
  auto first = AuditLog::open((fresh / "state").string());
  ASSERT_TRUE(first);
  maildsar::test::write_file(fresh / "state/audit.log", "");
  AuditRecord genesis;
  genesis.hash = std::string(k_audit_genesis);
  write_pending_head(fresh, genesis, sha256_hex("the record that was not written"));
  expect_intact(*first);
  auto one = first->append("plan", "alice", "R", nlohmann::json::object());
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->seq, 1U);
  expect_intact(*first);
}

// The pending mark does not open a door: a record appended by someone else, even one that links,
// is not the record the head names, so it is still found and appends still refuse; a torn line
// after a record the head does not name is still a truncation.
TEST(AuditLog, APendingHeadStillCatchesAForgedOrCutLog) {
  ScratchDir dir;
  AuditLog log = make_log(dir, 2);
  auto recs = log.records();
  ASSERT_TRUE(recs);
  const AuditRecord forged = forged_after(recs->back(), recs->back().hash); // links
  auto lines = read_lines(dir / "state/audit.log");
  lines.push_back(forged.to_json().dump());
  write_lines(dir / "state/audit.log", lines);
  write_pending_head(dir, recs->back(), sha256_hex("the record maildsar was writing"));
  AuditProblem p = expect_problem(log);
  EXPECT_NE(p.cause.find("log and head disagree"), std::string::npos) << p.cause;
  EXPECT_FALSE(log.append("erase", "alice", "R", nlohmann::json::object()));

  ScratchDir cut;
  AuditLog three = make_log(cut, 3);
  auto rs = three.records();
  ASSERT_TRUE(rs);
  const std::string data = maildsar::test::read_file(cut / "state/audit.log");
  std::filesystem::resize_file(cut / "state/audit.log", data.rfind('\n', data.size() - 2) + 20);
  write_pending_head(cut, (*rs)[0], (*rs)[1].hash); // names seq 1, but the log holds 2 and a cut 3
  p = expect_problem(three);
  EXPECT_NE(p.cause.find("truncated"), std::string::npos) << p.cause;
  EXPECT_FALSE(three.append("erase", "alice", "R", nlohmann::json::object()));
}

TEST(AuditLog, ConcurrentAppendsFromTwoProcessesKeepTheChain) {
  ScratchDir dir;
  const std::string state = (dir / "state").string();
  ASSERT_TRUE(AuditLog::open(state));
  constexpr int k_per_child = 25;
  std::vector<pid_t> children;
  for (int c = 0; c < 2; ++c) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto log = AuditLog::open(state);
      int bad = log ? 0 : 1;
      for (int i = 0; log && i < k_per_child; ++i) {
        bad += log->append("erase", c == 0 ? "left" : "right", "R", {{"i", i}}) ? 0 : 1;
      }
      ::_exit(bad == 0 ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (const pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  auto log = AuditLog::open(state);
  ASSERT_TRUE(log);
  auto v = log->verify();
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->has_value()) << (*v)->cause;
  auto recs = log->records();
  ASSERT_TRUE(recs);
  EXPECT_EQ(recs->size(), 2U * k_per_child);
}

// ---------------------------------------------------------------------------------------------

TEST(Secret, CreatedOnceWithPrivateMode) {
  ScratchDir dir;
  const std::string state = (dir / "state").string();
  auto key = load_or_create_secret(state);
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(key->size(), k_secret_bytes);
  EXPECT_EQ(file_mode(dir / "state/secret.key"), 0600U);
  EXPECT_EQ(file_mode(dir / "state"), 0700U);
  auto again = load_or_create_secret(state);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *key);
  // No temporary files left behind.
  std::size_t n = 0;
  for ([[maybe_unused]] auto &e : std::filesystem::directory_iterator(dir / "state")) {
    ++n;
  }
  EXPECT_EQ(n, 1U);
}

TEST(Secret, DifferentInstallationsGetDifferentKeys) {
  ScratchDir a;
  ScratchDir b;
  auto ka = load_or_create_secret((a / "s").string());
  auto kb = load_or_create_secret((b / "s").string());
  ASSERT_TRUE(ka && kb);
  EXPECT_NE(*ka, *kb);
}

TEST(Secret, RejectsAKeyOfTheWrongSize) {
  ScratchDir dir;
  maildsar::test::write_file(dir / "state/secret.key", "short");
  ASSERT_EQ(::chmod((dir / "state/secret.key").c_str(), 0600), 0);
  auto key = load_or_create_secret((dir / "state").string());
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code, ErrorCode::data);
  EXPECT_NE(key.error().message.find("secret.key"), std::string::npos);
  EXPECT_EQ(maildsar::test::read_file(dir / "state/secret.key"), "short"); // never replaced
}

TEST(Secret, RejectsAKeyReadableByOthers) {
  ScratchDir dir;
  maildsar::test::write_file(dir / "state/secret.key", std::string(32, 'k'));
  ASSERT_EQ(::chmod((dir / "state/secret.key").c_str(), 0644), 0);
  auto key = load_or_create_secret((dir / "state").string());
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code, ErrorCode::permission);
  EXPECT_NE(key.error().message.find("0644"), std::string::npos) << key.error().message;
}

TEST(Secret, RejectsASymlinkedKey) {
  ScratchDir dir;
  maildsar::test::write_file(dir / "elsewhere", std::string(32, 'k'));
  std::filesystem::create_directories(dir / "state");
  std::filesystem::create_symlink(dir / "elsewhere", dir / "state/secret.key");
  auto key = load_or_create_secret((dir / "state").string());
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code, ErrorCode::permission);
}

TEST(Secret, RacingCreatorsAgreeOnOneKey) {
  ScratchDir dir;
  const std::string state = (dir / "state").string();
  std::vector<pid_t> children;
  for (int c = 0; c < 4; ++c) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto key = load_or_create_secret(state);
      if (!key) {
        ::_exit(1);
      }
      std::ofstream((dir / ("key" + std::to_string(c))).string()) << to_hex(*key);
      ::_exit(0);
    }
    children.push_back(pid);
  }
  for (const pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::set<std::string> keys;
  for (int c = 0; c < 4; ++c) {
    keys.insert(maildsar::test::read_file(dir / ("key" + std::to_string(c))));
  }
  EXPECT_EQ(keys.size(), 1U);
  auto key = load_or_create_secret(state);
  ASSERT_TRUE(key);
  EXPECT_EQ(*keys.begin(), to_hex(*key));
}

TEST(Secret, KeyedHashIsDeterministicAndSeparatesKindsAndKeys) {
  const std::string h = keyed_hash("key1", "email", "alice@example.com");
  EXPECT_EQ(h.size(), 64U);
  EXPECT_EQ(h, keyed_hash("key1", "email", "alice@example.com"));
  EXPECT_NE(h, keyed_hash("key2", "email", "alice@example.com"));
  EXPECT_NE(h, keyed_hash("key1", "name", "alice@example.com"));
  EXPECT_EQ(h, hmac_sha256_hex("key1", std::string("email\0alice@example.com", 23)));
  // The separator keeps kind and value apart.
  EXPECT_NE(keyed_hash("k", "ip", "v6"), keyed_hash("k", "ipv", "6"));
}
