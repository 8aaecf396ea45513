// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end tests of the delivery-log index (issue 12: blocks of transactions, re-read at query
// time) through the built binary: a kill -9 in the middle of a log index run is repaired by the
// next run; erasure in the middle of a 100 MB log; a log with a million queue ids that never
// complete stays under the memory target; find reads only the parts of a block that hold the
// address.
#include "core/sanitizers.hpp"
#include "tests/e2e/e2e_support.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using maildsar::test::ds;
using maildsar::test::json_lines;
using maildsar::test::read_file;
using maildsar::test::ScratchDir;
using maildsar::test::write_file;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string qid(std::uint64_t k) { return fmt::format("{:010X}", 0x100000 + k); }

/** One complete Postfix transaction (4 lines) for recipient `to`, padded with `pad` bytes. */
std::string txn(std::uint64_t k, const std::string &to, const std::string &pad = {}) {
  return fmt::format(
      "Nov 14 10:{:02}:01 mx postfix/smtpd[{}]: {}: client=c{}.example[192.0.2.{}]\n"
      "Nov 14 10:{:02}:02 mx postfix/qmgr[7]: {}: from=<sender{}@example.org>, size={}, nrcpt=1 (queue active)\n"
      "Nov 14 10:{:02}:03 mx postfix/smtp[8]: {}: to=<{}>, relay=mx.example[10.0.0.2]:25, status=sent (250 ok{})\n"
      "Nov 14 10:{:02}:04 mx postfix/qmgr[7]: {}: removed\n",
      k % 60, 100 + k % 900, qid(k), k, k % 250 + 1, k % 60, qid(k), k % 5000, 1000 + k, k % 60, qid(k), to,
      pad, k % 60, qid(k));
}

std::string recipient(std::uint64_t k) { return fmt::format("user{}@example.com", k % 20000); }

/** `find --email ADDR --json` lines, without the (run-dependent) nothing: they are the hits. */
std::string find_email(const fs::path &config, const std::string &address) {
  auto r = ds(config, {"find", "--email", address});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

/** Starts `maildsar -c CONFIG ARGS...` with stdout/stderr to /dev/null. */
pid_t spawn(const fs::path &config, const std::vector<std::string> &args) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    std::vector<std::string> all{MAILDSAR_BINARY, "-c", config.string()};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char *> argv;
    for (std::string &a : all) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    ::execv(MAILDSAR_BINARY, argv.data());
    ::_exit(127);
  }
  return pid;
}

fs::path log_config(const fs::path &dir, const std::string &state) {
  fs::path config = dir / (state + ".json");
  write_file(config, fmt::format(R"({{"state_dir": "{}", "sources": [{{"name": "postfix", "type": "maillog",
    "format": "postfix", "path": "logs/mail.log*"}}]}})",
                                 state));
  return config;
}

} // namespace

// kill -9 at random moments of `index` over a plain and a compressed log: the next run repairs
// the state, and find then answers exactly as an index built in one go.
TEST(LogIndexE2e, KilledIndexRunIsRepairedByTheNextRun) {
  ScratchDir dir;
  fs::create_directories(dir.path() / "logs");
  {
    std::ofstream plain(dir.path() / "logs/mail.log", std::ios::binary);
    for (std::uint64_t k = 0; k < 60000; ++k) {
      plain << txn(k, recipient(k));
    }
  }
  {
    std::string older;
    for (std::uint64_t k = 60000; k < 90000; ++k) {
      older += txn(k, recipient(k));
    }
    write_file(dir.path() / "logs/mail.log.1", older);
    ASSERT_EQ(std::system(fmt::format("gzip -n '{}'", (dir.path() / "logs/mail.log.1").string()).c_str()), 0);
  }
  fs::path reference = log_config(dir.path(), "reference");
  ASSERT_EQ(ds(reference, {"index"}).exit_code, 0);
  std::mt19937 rng(20261202);
  fs::path config = log_config(dir.path(), "state");
  for (int round = 0; round < 3; ++round) {
    pid_t pid = spawn(config, {"index"});
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 1500)(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  auto repaired = json_lines(ds(config, {"index"}).out);
  ASSERT_EQ(repaired.size(), 1U);
  EXPECT_EQ(repaired.front().at("errors"), 0);
  EXPECT_EQ(repaired.front().at("sources").at(0).at("items"), 90000) << repaired.front().dump();
  for (std::uint64_t k : {0ULL, 7ULL, 12345ULL, 19999ULL}) {
    const std::string who = recipient(k);
    std::string expected = find_email(reference, who);
    EXPECT_FALSE(expected.empty()) << who;
    EXPECT_EQ(find_email(config, who), expected) << who;
  }
  EXPECT_EQ(find_email(config, "sender42@example.org"), find_email(reference, "sender42@example.org"));
  // And a third run has nothing to do.
  auto again = json_lines(ds(config, {"index"}).out);
  ASSERT_EQ(again.size(), 1U);
  const json &s = again.front().at("sources").at(0);
  EXPECT_EQ(s.at("new").get<int>() + s.at("changed").get<int>() + s.at("removed").get<int>(), 0) << s.dump();
}

// Erasure of one transaction in the middle of a 100 MB log: only its lines change (same-length
// pseudonyms in place), the rest of the file is byte for byte what it was, and the index no
// longer finds the subject while it still finds everybody else.
// Under AddressSanitizer (CI's second tree; the binary runs several times slower) the sizes are a
// tenth: the behaviour is the same, the figures are the normal build's to prove.
constexpr std::uint64_t k_scale = MAILDSAR_ASAN ? 10 : 1;

TEST(LogIndexE2e, ErasureInTheMiddleOfA100MegabyteLog) {
  ScratchDir dir;
  fs::create_directories(dir.path() / "logs");
  const std::string pad = " " + std::string(900, 'p'); // long lines: 100 MB, few transactions
  const std::uint64_t n = 100ULL * 1000 * 1000 / k_scale / txn(0, recipient(0), pad).size() + 1;
  const std::uint64_t middle = n / 2;
  std::string before;
  std::string subject;
  std::string after;
  {
    std::ofstream out(dir.path() / "logs/mail.log", std::ios::binary);
    for (std::uint64_t k = 0; k < n; ++k) {
      std::string t = txn(k, k == middle ? std::string("alice.smith@example.com") : recipient(k), pad);
      if (k < middle) {
        before += t;
      } else if (k == middle) {
        subject = t;
      } else {
        after += t;
      }
      out << t;
    }
  }
  ASSERT_GT(fs::file_size(dir.path() / "logs/mail.log"), 100U * 1000 * 1000 / k_scale);
  fs::path config = log_config(dir.path(), "state");
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);
  auto hits = json_lines(find_email(config, "alice.smith@example.com"));
  ASSERT_EQ(hits.size(), 1U);
  const std::uint64_t first_line = middle * 4 + 1;
  EXPECT_EQ(hits[0].at("lines"), json({first_line, first_line + 1, first_line + 2, first_line + 3}));
  const std::vector<std::uint64_t> others{0, middle - 1, middle + 1, n - 1};
  std::vector<std::string> answers_before;
  for (std::uint64_t k : others) {
    answers_before.push_back(find_email(config, recipient(k)));
  }
  fs::path manifest = dir.path() / "m.json";
  auto plan = ds(config, {"plan", "--email", "alice.smith@example.com", "--out", manifest.string(),
                          "--operator", "dpo-anna"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  ASSERT_EQ(ds(config, {"approve", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  auto erase = ds(config, {"erase", manifest.string()});
  ASSERT_EQ(erase.exit_code, 0) << erase.err << erase.out;
  // the index built again only the block that holds the transaction, not the 100 MB
  const json report = json::parse(erase.out);
  EXPECT_EQ(report.at("log_blocks_rebuilt"), 1) << erase.out;
  const std::string now = read_file(dir.path() / "logs/mail.log");
  ASSERT_EQ(now.size(), before.size() + subject.size() + after.size());
  EXPECT_TRUE(now.compare(0, before.size(), before) == 0) << "bytes before the transaction changed";
  EXPECT_TRUE(now.compare(before.size() + subject.size(), after.size(), after) == 0)
      << "bytes after the transaction changed";
  const std::string redacted = now.substr(before.size(), subject.size());
  EXPECT_NE(redacted, subject);
  EXPECT_EQ(redacted.find("alice.smith@example.com"), std::string::npos);
  EXPECT_TRUE(json_lines(find_email(config, "alice.smith@example.com")).empty());
  EXPECT_FALSE(json_lines(find_email(config, recipient(middle + 1))).empty());
  auto v = ds(config, {"verify", "--email", "alice.smith@example.com"});
  EXPECT_EQ(v.exit_code, 0) << v.err << v.out;
  // the patched index is consistent with the log: a no-op run changes nothing, and the other
  // transactions are answered exactly as before the erasure
  const json noop = maildsar::test::source_counts(maildsar::test::index_json(config), "postfix");
  EXPECT_EQ(noop.at("changed"), 0) << noop.dump();
  EXPECT_EQ(noop.at("new"), 0) << noop.dump();
  for (std::size_t i = 0; i < others.size(); ++i) {
    EXPECT_EQ(find_email(config, recipient(others[i])), answers_before[i]) << recipient(others[i]);
  }
}

// A million queue ids that never complete: the open transactions are emitted in parts at the
// open-transactions budget, so the peak RSS of `index` stays under the target of issue 12
// (200 MiB), and a queue id of the middle is still found.
TEST(LogIndexE2e, AMillionNeverCompletingQueueIdsStayUnderTheMemoryTarget) {
  ScratchDir dir;
  fs::create_directories(dir.path() / "logs");
  {
    std::ofstream out(dir.path() / "logs/mail.log", std::ios::binary);
    for (std::uint64_t k = 0; k < 1000000 / k_scale; ++k) {
      out << fmt::format("Nov 14 10:00:00 mx postfix/qmgr[7]: {}: from=<s{}@example.org>, size=1, nrcpt=1 (queue active)\n",
                         qid(k), k % 1000);
    }
  }
  fs::path config = log_config(dir.path(), "state");
  pid_t pid = spawn(config, {"index"});
  ASSERT_GT(pid, 0);
  int status = 0;
  struct rusage usage {};
  ASSERT_EQ(::wait4(pid, &status, 0, &usage), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  if (!MAILDSAR_ASAN) { // ASan's shadow memory and quarantine make RSS meaningless there
    EXPECT_LE(usage.ru_maxrss, 200L * 1024) << "peak RSS (KiB) of index";
  }
  auto hits = json_lines(find_email(config, "s500@example.org"));
  EXPECT_EQ(hits.size(), 1000U / k_scale);
}

// A log changed since it was indexed (here rewritten, shorter) no longer holds the
// transactions of its blocks: find says so (exit 75, "run maildsar index") rather than answer
// from lines that are not there; after `index` it answers again.
TEST(LogIndexE2e, ALogChangedSinceIndexingIsRefusedUntilReindexed) {
  ScratchDir dir;
  fs::create_directories(dir.path() / "logs");
  std::string log;
  for (std::uint64_t k = 0; k < 200; ++k) {
    log += txn(k, k == 100 ? std::string("alice.smith@example.com") : recipient(k));
  }
  write_file(dir.path() / "logs/mail.log", log);
  fs::path config = log_config(dir.path(), "state");
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);
  ASSERT_EQ(json_lines(find_email(config, "alice.smith@example.com")).size(), 1U);
  std::string edited = log;
  const std::size_t at = edited.find("alice.smith@example.com");
  edited.replace(at, 23, "bob@example.com"); // the transaction's line is shorter, the file too
  write_file(dir.path() / "logs/mail.log", edited);
  auto r = ds(config, {"find", "--email", "alice.smith@example.com"});
  EXPECT_EQ(r.exit_code, 75) << r.out << r.err;
  EXPECT_NE(r.out.find("temp_fail"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("run maildsar index"), std::string::npos) << r.out;
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);
  EXPECT_TRUE(json_lines(find_email(config, "alice.smith@example.com")).empty());
  EXPECT_EQ(json_lines(find_email(config, "bob@example.com")).size(), 1U);
}

// `find --email` reads only the parts of a block that hold the address (the wdf of its block
// term): a transaction of the address whose lines lie in the first, second, middle and last
// parts of the block still comes out whole; another transaction of the block that holds the
// address's local part at another domain ("alice.smith@example.net") and lies partly in a part
// that is not read fails its check and sends its block to a read over the whole range; one (C)
// that holds it inside a longer local part ("malice.smith@") is not read at all — the answers
// stay those of a direct reading, in a plain and in a gzip log.
TEST(LogIndexE2e, FindReadsOnlyThePartsOfABlockThatHoldTheAddress) {
  ScratchDir dir;
  fs::create_directories(dir.path() / "logs");
  auto line = [](const std::string &id, const std::string &text) {
    return fmt::format("Nov 14 11:00:00 mx postfix/qmgr[7]: {}: {}\n", id, text);
  };
  const std::string a = "AAAA000001";
  const std::string m = "BBBB000002";
  const std::string c = "CCCC000003";
  std::string log;
  auto fillers = [&](std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t k = from; k < to; ++k) {
      log += txn(k, recipient(k), std::string(40, 'x'));
    }
  };
  log += line(a, "client=a.example[192.0.2.1]");
  fillers(0, 20);
  log += line(a, "from=<sender@example.org>, size=100, nrcpt=1 (queue active)");
  fillers(20, 40);
  log += line(m, "client=m.example[192.0.2.2]");
  log += line(m, "to=<alice.smith@example.net>, relay=local, status=sent");
  log += line(c, "client=n.example[192.0.2.3]");
  log += line(c, "to=<malice.smith@example.com>, relay=local, status=sent");
  log += line(a, "to=<alice.smith@example.com>, relay=local, status=sent");
  fillers(40, 55);
  log += line(m, "from=<other@example.org>, size=5, nrcpt=1 (queue active)");
  log += line(m, "removed");
  log += line(c, "from=<other@example.org>, size=5, nrcpt=1 (queue active)");
  log += line(c, "removed");
  fillers(55, 80);
  log += line(a, "removed");
  write_file(dir.path() / "logs/mail.log", log);
  write_file(dir.path() / "logs/mail.log.1.gz", maildsar::test::gzip(log));
  fs::path config = log_config(dir.path(), "state");
  auto idx = maildsar::test::index_json(config);
  ASSERT_EQ(idx.at("errors"), 0) << idx.dump();

  // the line numbers of a queue id's lines, as a direct reading gives them
  auto lines_of = [&](const std::string &id) {
    std::vector<std::uint64_t> out;
    std::uint64_t n = 0;
    for (std::size_t at = 0; at < log.size(); at = log.find('\n', at) + 1) {
      ++n;
      if (log.substr(at, log.find('\n', at) - at).find("]: " + id + ":") != std::string::npos) {
        out.push_back(n);
      }
    }
    return out;
  };
  ASSERT_EQ(lines_of(a).size(), 4U);
  ASSERT_EQ(lines_of(m).size(), 4U);
  ASSERT_EQ(lines_of(c).size(), 4U);
  // read_again: how many logs read a block over its whole range again (debug output)
  auto check = [&](const std::string &address, const std::string &id, std::size_t read_again) {
    auto r = ds(config, {"-v", "find", "--email", address});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<json> hits = json_lines(r.out);
    ASSERT_EQ(hits.size(), 2U) << address << "\n" << r.out;
    for (const json &h : hits) {
      EXPECT_EQ(h.at("queue_id"), id) << h.dump();
      EXPECT_EQ(h.at("lines").get<std::vector<std::uint64_t>>(), lines_of(id)) << h.dump();
    }
    std::size_t again = 0;
    for (std::size_t at = r.err.find("read again over their whole range"); at != std::string::npos;
         at = r.err.find("read again over their whole range", at + 1)) {
      ++again;
    }
    EXPECT_EQ(again, read_again) << address << "\n" << r.err;
    EXPECT_EQ(r.err.find("every line"), std::string::npos) << r.err;
  };
  check("alice.smith@example.com", a, 2);  // M holds "alice.smith" and lies partly outside
  check("alice.smith@example.net", m, 0);  // A's line in M's parts is not A's first: not A's read
  check("malice.smith@example.com", c, 0); // its parts hold all of C; nothing else holds "malice.smith"
  check(recipient(70), qid(70), 0);         // one part, nothing else with the needle
}

// The transactions of matched blocks are matched one by one as they are read (no search in
// memory) for addresses and IPs, with the answers of the search in memory they replace: a
// transaction whose evidence was capped (more recipients than limits.max_addresses_per_role) is
// still found for a recipient beyond the cap (from every identity, as its terms did), with the
// roles its capped evidence keeps (the log line's text, role body: the log-to evidence holds the
// first ten) and its evidence_capped count; a query for an address and an IP gives each its
// roles; a name query (searched in memory, positions) still finds nothing in logs.
TEST(LogIndexE2e, ReReadTransactionsMatchBeyondTheEvidenceCapWithTheirRoles) {
  ScratchDir dir;
  fs::create_directories(dir.path() / "logs");
  const std::string id = "DDDD000004";
  auto line = [&](const std::string &text) {
    return fmt::format("Nov 14 11:00:00 mx postfix/qmgr[7]: {}: {}\n", id, text);
  };
  std::string log;
  for (std::uint64_t k = 0; k < 30; ++k) {
    log += txn(k, recipient(k));
  }
  log += line("client=big.example[192.0.2.77]");
  log += line("from=<list@example.org>, size=100, nrcpt=12 (queue active)");
  for (int r = 1; r <= 11; ++r) { // the cap is 10 (the least it can be): r11 and alice beyond it
    log += line(fmt::format("to=<r{}@example.com>, relay=local, status=sent", r));
  }
  log += line("to=<alice.smith@example.com>, relay=local, status=sent");
  log += line("removed");
  for (std::uint64_t k = 30; k < 60; ++k) {
    log += txn(k, recipient(k));
  }
  write_file(dir.path() / "logs/mail.log", log);
  write_file(dir.path() / "logs/mail.log.1.gz", maildsar::test::gzip(log));
  fs::path config = dir.path() / "state.json";
  write_file(config, R"({"state_dir": "state", "limits": {"max_addresses_per_role": 10},
    "sources": [{"name": "postfix", "type": "maillog", "format": "postfix", "path": "logs/mail.log*"}]})");
  auto idx = maildsar::test::index_json(config);
  ASSERT_EQ(idx.at("errors"), 0) << idx.dump();

  auto roles_of = [](const json &hit, const std::string &identifier) {
    for (const json &m : hit.at("matched")) {
      if (m.at("identifier") == identifier) {
        return m.at("roles").get<std::vector<std::string>>();
      }
    }
    return std::vector<std::string>{};
  };
  std::vector<json> hits = json_lines(find_email(config, "alice.smith@example.com"));
  ASSERT_EQ(hits.size(), 2U); // the plain and the gzip log
  for (const json &h : hits) {
    EXPECT_EQ(h.at("queue_id"), id) << h.dump();
    EXPECT_GT(h.value("evidence_capped", 0), 0) << h.dump(); // r11 and alice left out of the evidence
    EXPECT_EQ(roles_of(h, "alice.smith@example.com"), std::vector<std::string>{"body"}) << h.dump();
  }
  auto both = ds(config, {"find", "--email", "r1@example.com", "--ip", "192.0.2.77"});
  ASSERT_EQ(both.exit_code, 0) << both.err;
  hits = json_lines(both.out);
  ASSERT_EQ(hits.size(), 2U) << both.out;
  for (const json &h : hits) {
    EXPECT_EQ(h.at("queue_id"), id) << h.dump();
    EXPECT_EQ(roles_of(h, "r1@example.com"), (std::vector<std::string>{"body", "log-to"})) << h.dump();
    EXPECT_EQ(roles_of(h, "192.0.2.77"), (std::vector<std::string>{"body", "log-client"})) << h.dump();
  }
  auto ip = ds(config, {"find", "--ip", "192.0.2.77"});
  ASSERT_EQ(ip.exit_code, 0) << ip.err;
  EXPECT_EQ(json_lines(ip.out).size(), 2U) << ip.out;
  auto name = ds(config, {"find", "--name", "Alice Smith"});
  ASSERT_EQ(name.exit_code, 0) << name.err;
  EXPECT_TRUE(json_lines(name.out).empty()) << name.out;
}
