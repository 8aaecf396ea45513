// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: erase never removes what a hold or exemption protects, never loses another
// person's message, and leaves no lock behind (issue 13).
#include "tests/e2e/e2e_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <fcntl.h>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string k_alice_message = "From: Alice Smith <alice.smith@example.com>\n"
                                    "To: Bob <bob@example.org>\n"
                                    "Subject: the contract\n"
                                    "Message-ID: <contract-1@example.com>\n"
                                    "Date: Tue, 14 Nov 2023 10:00:00 +0000\n"
                                    "\n"
                                    "Please keep this.\n";

/** A Maildir of bob with one message of Alice in INBOX and an identical copy in .Archive. */
struct CopiesEstate {
  fs::path config;
  fs::path inbox_copy;
  fs::path archive_copy;
};

CopiesEstate make_copies_estate(const fs::path &root) {
  CopiesEstate e;
  const fs::path md = root / "mail/bob/Maildir";
  for (const char *sub : {"cur", "new", "tmp", ".Archive/cur", ".Archive/new", ".Archive/tmp"}) {
    fs::create_directories(md / sub);
  }
  e.inbox_copy = md / "cur/1700000000.M1P1.host:2,S";
  e.archive_copy = md / ".Archive/cur/1700000001.M2P1.host:2,S";
  write_file(e.inbox_copy, k_alice_message);
  write_file(e.archive_copy, k_alice_message);
  e.config = root / "maildsar.json";
  write_file(e.config, R"({"state_dir": "state", "sources": [)"
                       R"({"name": "mailboxes", "type": "maildir", "path": "mail/*/Maildir", "owner": "{1}@example.org"}]})");
  return e;
}

/** plan (dpo-anna, extra args) + approve (admin-ben); returns the manifest. */
json plan_approve(const fs::path &config, const fs::path &dir, const std::vector<std::string> &extra = {}) {
  EXPECT_EQ(ds(config, {"index"}).exit_code, 0);
  const fs::path manifest = dir / "manifest.json";
  std::vector<std::string> args{"plan", "--email", "alice.smith@example.com", "--out", manifest.string(),
                                "--operator", "dpo-anna"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = ds(config, args);
  EXPECT_EQ(p.exit_code, 0) << p.err << p.out;
  auto a = ds(config, {"approve", manifest.string(), "--operator", "admin-ben"});
  EXPECT_EQ(a.exit_code, 0) << a.err << a.out;
  return json::parse(read_file(manifest));
}

std::map<std::string, json> outcomes_by_id(const json &report) {
  std::map<std::string, json> out;
  for (const json &o : report.at("items")) {
    out[o.at("id").get<std::string>()] = o;
  }
  return out;
}

/** The last audit record with `action`. */
json last_audit(const fs::path &config, const std::string &action) {
  json found;
  for (const json &r : json_lines(ds(config, {"audit"}).out)) {
    if (r.value("action", "") == action) {
      found = r;
    }
  }
  return found;
}

// Issue 13 item 1: an exempted copy is not one of the "other copies" erase removes.
TEST(EraseTrust, ExemptedMaildirCopyIsNeverRemovedAsAnotherCopy) {
  ScratchDir dir;
  CopiesEstate e = make_copies_estate(dir.path());
  const fs::path policy = dir / "policy.json";
  write_file(policy, json{{"exemptions", {{{"path_prefix", (dir / "mail/bob/Maildir/.Archive").string()},
                                           {"reason", "Art. 17(3)(e) legal claims"}}}}}
                         .dump());
  json mj = plan_approve(e.config, dir.path(), {"--policy", policy.string()});
  ASSERT_EQ(mj.at("items").size(), 2U) << mj.dump(1);
  std::string exempted_id;
  for (const json &item : mj.at("items")) {
    if (item.at("locator").at("path") == e.archive_copy.string()) {
      EXPECT_EQ(item.at("action"), "retain");
      exempted_id = item.at("id");
    } else {
      EXPECT_EQ(item.at("action"), "delete");
    }
  }
  ASSERT_FALSE(exempted_id.empty());
  auto er = ds(e.config, {"erase", (dir / "manifest.json").string(), "--operator", "ops-cleo"});
  ASSERT_EQ(er.exit_code, 0) << er.err << er.out;
  json report = json_lines(er.out).at(0);
  EXPECT_EQ(outcomes_by_id(report)[exempted_id].at("result"), "retained");
  EXPECT_EQ(report.at("extra_copies"), 0);
  EXPECT_FALSE(fs::exists(e.inbox_copy));
  ASSERT_TRUE(fs::exists(e.archive_copy)) << "the exempted copy was removed";
  EXPECT_EQ(read_file(e.archive_copy), k_alice_message);
}

// Item 1, the same class: a copy that a hold covers (a copy not in the manifest at all, e.g.
// delivered after planning) survives too, while an unprotected extra copy is still removed.
TEST(EraseTrust, OnlyUnprotectedExtraCopiesAreRemoved) {
  ScratchDir dir;
  CopiesEstate e = make_copies_estate(dir.path());
  const fs::path policy = dir / "policy.json";
  write_file(policy, json{{"exemptions", {{{"path_prefix", (dir / "mail/bob/Maildir/.Archive").string()},
                                           {"reason", "legal claims"}}}}}
                         .dump());
  json mj = plan_approve(e.config, dir.path(), {"--policy", policy.string()});
  // Delivered after planning: one more copy under the exempted folder, one in INBOX.
  const fs::path late_exempt = dir / "mail/bob/Maildir/.Archive/new/1700000009.M9P1.host";
  const fs::path late_plain = dir / "mail/bob/Maildir/new/1700000010.M10P1.host";
  write_file(late_exempt, k_alice_message);
  write_file(late_plain, k_alice_message);
  auto er = ds(e.config, {"erase", (dir / "manifest.json").string(), "--operator", "ops-cleo"});
  ASSERT_EQ(er.exit_code, 0) << er.err << er.out;
  json report = json_lines(er.out).at(0);
  EXPECT_EQ(report.at("extra_copies"), 1) << er.out;
  EXPECT_TRUE(fs::exists(e.archive_copy));
  EXPECT_TRUE(fs::exists(late_exempt)) << "a copy under an exemption was removed";
  EXPECT_FALSE(fs::exists(late_plain));
  EXPECT_FALSE(fs::exists(e.inbox_copy));
}

// Issue 13 item 3: a hold added to the config after approval wins at execution time.
TEST(EraseTrust, HoldAddedAfterApprovalIsHonoured) {
  ScratchDir dir;
  CopiesEstate e = make_copies_estate(dir.path());
  json mj = plan_approve(e.config, dir.path());
  ASSERT_EQ(mj.at("items").size(), 2U);
  for (const json &item : mj.at("items")) {
    ASSERT_EQ(item.at("action"), "delete");
  }
  write_file(e.config, R"({"state_dir": "state", "sources": [)"
                       R"({"name": "mailboxes", "type": "maildir", "path": "mail/*/Maildir", "owner": "{1}@example.org"}],)"
                       R"( "holds": [{"source": "mailboxes", "reason": "litigation 2026-99"}]})");
  auto er = ds(e.config, {"erase", (dir / "manifest.json").string(), "--operator", "ops-cleo"});
  ASSERT_EQ(er.exit_code, 0) << er.err << er.out;
  json report = json_lines(er.out).at(0);
  for (const json &item : mj.at("items")) {
    json o = outcomes_by_id(report)[item.at("id").get<std::string>()];
    EXPECT_EQ(o.at("result"), "retained") << o.dump();
    EXPECT_EQ(o.at("detail"), "hold: litigation 2026-99") << o.dump();
  }
  EXPECT_EQ(read_file(e.inbox_copy), k_alice_message);
  EXPECT_EQ(read_file(e.archive_copy), k_alice_message);
  json audit = last_audit(e.config, "erase");
  ASSERT_TRUE(audit.is_object());
  EXPECT_EQ(audit.at("details").at("counts").at("maildir").at("retained"), 2) << audit.dump();
  EXPECT_EQ(audit.at("details").at("held_at_execution"), 2) << audit.dump();
  EXPECT_EQ(audit.at("details").at("hold_reasons").at(0), "hold: litigation 2026-99") << audit.dump();
}


/** An archive mbox: Alice's message between two other people's messages. */
struct MboxEstate {
  fs::path config;
  fs::path mbox;
  std::string before;  // Bob's message
  std::string alice;   // the subject's message
  std::string after;   // Carol's message
};

std::string mbox_message(const std::string &from, const std::string &subject, const std::string &extra_headers = {},
                         const std::string &body = "Hello.\n") {
  return "From " + from + " Mon Nov 13 10:00:00 2023\nFrom: " + from + "\nTo: team@example.org\nSubject: " +
         subject + "\nMessage-ID: <" + subject + "@example.org>\n" + extra_headers + "\n" + body + "\n";
}

MboxEstate make_mbox_estate(const fs::path &root, const std::string &format = {}) {
  MboxEstate e;
  fs::create_directories(root / "archive");
  e.before = mbox_message("bob@example.org", "bob-1");
  e.after = mbox_message("carol@example.org", "carol-1");
  e.alice = mbox_message("alice.smith@example.com", "alice-1");
  e.mbox = root / "archive/team.mbox";
  write_file(e.mbox, e.before + e.alice + e.after);
  e.config = root / "maildsar.json";
  write_file(e.config, std::string(R"({"state_dir": "state", "sources": [{"name": "archive", "type": "mbox", )") +
                           (format.empty() ? "" : R"("format": ")" + format + R"(", )") +
                           R"("path": "archive/*.mbox"}]})");
  return e;
}

// Issue 13 item 4: a sender-controlled Content-Length that spans the next, properly separated
// message must not make erase remove that message too.
TEST(EraseTrust, HostileContentLengthDoesNotTakeTheNextMessage) {
  ScratchDir dir;
  MboxEstate e = make_mbox_estate(dir.path());
  // Alice's message claims a body that runs over Carol's message, to EOF.
  const std::string body = "Hello.\n";
  const std::string hostile = "Content-Length: " + std::to_string(body.size() + 1 + e.after.size()) + "\n";
  e.alice = mbox_message("alice.smith@example.com", "alice-1", hostile, body);
  write_file(e.mbox, e.before + e.alice + e.after);
  json mj = plan_approve(e.config, dir.path());
  ASSERT_EQ(mj.at("items").size(), 1U) << mj.dump(1);
  EXPECT_EQ(mj.at("items").at(0).at("locator").at("length"), e.alice.size());
  auto er = ds(e.config, {"erase", (dir / "manifest.json").string(), "--operator", "ops-cleo"});
  ASSERT_EQ(er.exit_code, 0) << er.err << er.out;
  EXPECT_EQ(read_file(e.mbox), e.before + e.after) << "another person's message was lost";
  // Carol's message is still found.
  auto carol = ds(e.config, {"find", "--email", "carol@example.org"});
  EXPECT_EQ(json_lines(carol.out).size(), 1U) << carol.out << carol.err;
}

/** Runs maildsar in a child process (stdout/stderr to files under `dir`); returns its pid. */
pid_t spawn(const fs::path &dir, const std::vector<std::string> &args, const std::vector<std::string> &env) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open((dir / "child.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open((dir / "child.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out, 1);
    ::dup2(err, 2);
    for (const std::string &e : env) {
      ::putenv(const_cast<char *>(e.c_str()));
    }
    std::vector<char *> argv{const_cast<char *>(MAILDSAR_BINARY)};
    for (const std::string &a : args) {
      argv.push_back(const_cast<char *>(a.c_str()));
    }
    argv.push_back(nullptr);
    ::execv(MAILDSAR_BINARY, argv.data());
    ::_exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool wait_for(const std::function<bool()> &condition, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

// Issue 13 item 5: a client that appends under flock (no dotlock, no fcntl) while erase holds
// the mailbox keeps its message: erase takes flock too, so the client waits, then finds the new
// file (a well-behaved client re-opens the path when its inode changed while it waited).
TEST(EraseTrust, FlockAppenderDuringEraseKeepsItsMessage) {
  ScratchDir dir;
  MboxEstate e = make_mbox_estate(dir.path());
  json mj = plan_approve(e.config, dir.path());
  ASSERT_EQ(mj.at("items").size(), 1U);
  // Erase pauses after its last look for appended bytes, right before the rename.
  pid_t pid = spawn(dir.path(), {"-c", e.config.string(), "erase", (dir / "manifest.json").string()},
                    {"MAILDSAR_TEST_PAUSE_AT=file:0:mbox:ready:1500"});
  const fs::path temp = dir / "archive/.team.mbox.maildsar-tmp";
  ASSERT_TRUE(wait_for([&] { return fs::exists(temp); }, std::chrono::seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300)); // well inside the pause
  const std::string appended = mbox_message("dave@example.org", "dave-late");
  for (int tries = 0; tries < 20; ++tries) {
    int fd = ::open(e.mbox.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);
    struct stat by_fd {};
    struct stat by_path {};
    ::fstat(fd, &by_fd);
    if (::stat(e.mbox.c_str(), &by_path) != 0 || by_path.st_ino != by_fd.st_ino) {
      ::close(fd); // replaced while we waited: append to the new file
      continue;
    }
    ASSERT_EQ(::write(fd, appended.data(), appended.size()), static_cast<ssize_t>(appended.size()));
    ::fsync(fd);
    ::close(fd);
    break;
  }
  EXPECT_EQ(wait_exit(pid), 0) << read_file(dir / "child.err");
  EXPECT_EQ(read_file(e.mbox), e.before + e.after + appended) << "the appended message was lost";
}

/** Holds an fcntl write lock on `path` from a child process until `release` is written. */
struct FcntlHolder {
  pid_t pid = -1;
  int pipe_w = -1;
  explicit FcntlHolder(const fs::path &path) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    int ready[2];
    EXPECT_EQ(::pipe(ready), 0);
    pid = ::fork();
    if (pid == 0) {
      ::close(fds[1]);
      ::close(ready[0]);
      int fd = ::open(path.c_str(), O_RDWR);
      struct flock fl {};
      fl.l_type = F_WRLCK;
      fl.l_whence = SEEK_SET;
      if (fd < 0 || ::fcntl(fd, F_SETLK, &fl) != 0) {
        ::_exit(1);
      }
      (void)!::write(ready[1], "x", 1);
      char c = 0;
      (void)!::read(fds[0], &c, 1);
      ::_exit(0);
    }
    ::close(fds[0]);
    ::close(ready[1]);
    char c = 0;
    EXPECT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);
    pipe_w = fds[1];
  }
  void release() {
    if (pipe_w >= 0) {
      (void)!::write(pipe_w, "x", 1);
      ::close(pipe_w);
      pipe_w = -1;
      ::waitpid(pid, nullptr, 0);
    }
  }
  ~FcntlHolder() { release(); }
  FcntlHolder(const FcntlHolder &) = delete;
  FcntlHolder &operator=(const FcntlHolder &) = delete;
};

// Issue 13 items 11 and 16: an fcntl lock held by another program makes erase give up after a
// bounded wait with exit 75, leaving no dotlock; the next run retries the failed step (same
// approval, journalled) and says so; the audit log records the retry.
TEST(EraseTrust, BusyFcntlLockGivesExit75AndTheNextRunRetries) {
  ScratchDir dir;
  MboxEstate e = make_mbox_estate(dir.path());
  json mj = plan_approve(e.config, dir.path());
  ASSERT_EQ(mj.at("items").size(), 1U);
  const std::string id = mj.at("items").at(0).at("id");
  const std::string original = read_file(e.mbox);
  {
    FcntlHolder holder(e.mbox);
    const auto t0 = std::chrono::steady_clock::now();
    auto er = ds(e.config, {"erase", (dir / "manifest.json").string()}, {"MAILDSAR_TEST_LOCK_WAIT_MS=800"});
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(60));
    EXPECT_EQ(er.exit_code, 75) << er.err << er.out;
    json o = outcomes_by_id(json_lines(er.out).at(0))[id];
    EXPECT_EQ(o.at("result"), "failed") << o.dump();
    EXPECT_EQ(o.value("transient", false), true) << o.dump();
    EXPECT_FALSE(fs::exists(e.mbox.string() + ".lock")) << "dotlock left behind";
    EXPECT_EQ(read_file(e.mbox), original);
    holder.release();
  }
  auto again = ds(e.config, {"erase", (dir / "manifest.json").string()});
  ASSERT_EQ(again.exit_code, 0) << again.err << again.out;
  json report = json_lines(again.out).at(0);
  EXPECT_EQ(report.at("retried"), 1);
  json o = outcomes_by_id(report)[id];
  EXPECT_EQ(o.at("result"), "done") << o.dump();
  EXPECT_EQ(o.at("attempt"), 2) << o.dump();
  EXPECT_EQ(read_file(e.mbox), e.before + e.after);
  json audit = last_audit(e.config, "erase");
  EXPECT_EQ(audit.at("details").at("attempt"), 2) << audit.dump();
  EXPECT_EQ(audit.at("details").at("retried"), 1) << audit.dump();
  EXPECT_EQ(ds(e.config, {"audit", "verify"}).exit_code, 0);
  // A third run has nothing to retry: the step is replayed as done.
  auto third = ds(e.config, {"erase", (dir / "manifest.json").string()});
  EXPECT_EQ(third.exit_code, 0) << third.err;
  EXPECT_EQ(json_lines(third.out).at(0).at("retried"), 0);
}

// Item 16: retries are bounded; after the last attempt the failure stands (exit 1, not 75).
TEST(EraseTrust, RetriesStopAfterTheLimit) {
  ScratchDir dir;
  MboxEstate e = make_mbox_estate(dir.path());
  json mj = plan_approve(e.config, dir.path());
  const std::string id = mj.at("items").at(0).at("id");
  FcntlHolder holder(e.mbox);
  for (int attempt = 1; attempt <= 5; ++attempt) {
    auto er = ds(e.config, {"erase", (dir / "manifest.json").string()}, {"MAILDSAR_TEST_LOCK_WAIT_MS=100"});
    EXPECT_EQ(er.exit_code, 75) << attempt << er.err;
  }
  auto last = ds(e.config, {"erase", (dir / "manifest.json").string()}, {"MAILDSAR_TEST_LOCK_WAIT_MS=100"});
  EXPECT_EQ(last.exit_code, 1) << last.err << last.out;
  json o = outcomes_by_id(json_lines(last.out).at(0))[id];
  EXPECT_EQ(o.at("result"), "failed");
  EXPECT_NE(o.at("detail").get<std::string>().find("not retried: 5 attempts"), std::string::npos) << o.dump();
}

// Item 11: a dotlock held by another program for longer than erase waits gives exit 75 (not 1),
// and the other program's lock stays.
TEST(EraseTrust, BusyDotlockGivesExit75) {
  ScratchDir dir;
  MboxEstate e = make_mbox_estate(dir.path());
  json mj = plan_approve(e.config, dir.path());
  const fs::path lock = e.mbox.string() + ".lock";
  write_file(lock, "12345\n"); // a delivery agent's lock (not ours, fresh)
  auto er = ds(e.config, {"erase", (dir / "manifest.json").string()}, {"MAILDSAR_TEST_LOCK_WAIT_MS=500"});
  EXPECT_EQ(er.exit_code, 75) << er.err << er.out;
  EXPECT_TRUE(fs::exists(lock));
  EXPECT_EQ(read_file(e.mbox), e.before + e.alice + e.after);
}

// Item 11: SIGTERM or SIGINT while erase holds the dotlock removes the dotlock.
TEST(EraseTrust, TerminatedEraseLeavesNoDotlock) {
  for (int sig : {SIGTERM, SIGINT}) {
    ScratchDir dir;
    MboxEstate e = make_mbox_estate(dir.path());
    json mj = plan_approve(e.config, dir.path());
    const fs::path lock = e.mbox.string() + ".lock";
    pid_t pid = spawn(dir.path(), {"-c", e.config.string(), "erase", (dir / "manifest.json").string()},
                      {"MAILDSAR_TEST_PAUSE_AT=file:0:mbox:locked:20000"});
    ASSERT_TRUE(wait_for([&] { return fs::exists(lock); }, std::chrono::seconds(20))) << sig;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(pid, sig);
    EXPECT_EQ(wait_exit(pid), 128 + sig);
    EXPECT_FALSE(fs::exists(lock)) << "signal " << sig << " left the dotlock behind";
    EXPECT_EQ(read_file(e.mbox), e.before + e.alice + e.after);
    // and the next run completes
    auto er = ds(e.config, {"erase", (dir / "manifest.json").string()});
    EXPECT_EQ(er.exit_code, 0) << er.err << er.out;
    EXPECT_EQ(read_file(e.mbox), e.before + e.after);
  }
}


// Issue 13 item 7: export --out never follows a symlink, never chmods a directory it did not
// create, and --force writes only into an earlier package of ours.
TEST(EraseTrust, ExportOutIsNeverASymlinkOrSomeoneElsesDirectory) {
  ScratchDir dir;
  CopiesEstate e = make_copies_estate(dir.path());
  ASSERT_EQ(ds(e.config, {"index"}).exit_code, 0);
  const fs::path victim = dir / "victim";
  fs::create_directories(victim);
  fs::permissions(victim, fs::perms(0755));
  write_file(victim / "important.conf", "keep me\n");
  auto mode = [](const fs::path &p) {
    struct stat st {};
    ::lstat(p.c_str(), &st);
    return st.st_mode & 07777U;
  };
  auto listing = [](const fs::path &p) {
    std::vector<std::string> names;
    for (const auto &entry : fs::directory_iterator(p)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  };
  // 1. A symlink as --out, with and without --force: refused, the target untouched.
  const fs::path link = dir / "pkg-link";
  fs::create_directory_symlink(victim, link);
  for (bool force : {false, true}) {
    std::vector<std::string> args{"export", "--email", "alice.smith@example.com", "--out", link.string()};
    if (force) {
      args.push_back("--force");
    }
    auto r = ds(e.config, args);
    EXPECT_EQ(r.exit_code, 73) << r.err;
    EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
  }
  EXPECT_EQ(mode(victim), 0755U);
  EXPECT_EQ(listing(victim), std::vector<std::string>{"important.conf"});
  // 2. A non-empty directory that holds no package of ours: refused even with --force.
  auto r = ds(e.config, {"export", "--email", "alice.smith@example.com", "--out", victim.string(), "--force"});
  EXPECT_EQ(r.exit_code, 73) << r.err;
  EXPECT_EQ(mode(victim), 0755U);
  EXPECT_EQ(listing(victim), std::vector<std::string>{"important.conf"});
  // 3. An existing empty directory is used but keeps its mode; a new one is made 0700.
  const fs::path empty = dir / "empty";
  fs::create_directories(empty);
  fs::permissions(empty, fs::perms(0750));
  ASSERT_EQ(ds(e.config, {"export", "--email", "alice.smith@example.com", "--out", empty.string()}).exit_code, 0);
  EXPECT_EQ(mode(empty), 0750U);
  EXPECT_TRUE(fs::exists(empty / "manifest.json"));
  const fs::path fresh = dir / "fresh";
  ASSERT_EQ(ds(e.config, {"export", "--email", "alice.smith@example.com", "--out", fresh.string()}).exit_code, 0);
  EXPECT_EQ(mode(fresh), 0700U);
  // 4. --force over an earlier package of ours works.
  auto again = ds(e.config, {"export", "--email", "alice.smith@example.com", "--out", fresh.string(), "--force"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
}


/** A Postfix log with one transaction of Alice's (lines 1-4) and one of Carol's (5-7). */
fs::path make_log_estate(const fs::path &root, const std::string &alice_line_tail = "") {
  fs::create_directories(root / "logs");
  write_file(root / "logs/mail.log",
             "Nov 14 10:00:00 mx1 postfix/smtpd[2101]: 4B2F1C0A7D: client=unknown[192.0.2.10]\n"
             "Nov 14 10:00:00 mx1 postfix/cleanup[2110]: 4B2F1C0A7D: message-id=<a1@example.com>\n"
             "Nov 14 10:00:00 mx1 postfix/qmgr[900]: 4B2F1C0A7D: from=<alice.smith@example.com>" + alice_line_tail +
                 ", size=2345, nrcpt=1 (queue active)\n"
             "Nov 14 10:00:02 mx1 postfix/qmgr[900]: 4B2F1C0A7D: removed\n"
             "Nov 14 10:00:03 mx1 postfix/smtpd[2103]: 6D4F3E2C9F: client=unknown[192.0.2.11]\n"
             "Nov 14 10:00:04 mx1 postfix/qmgr[900]: 6D4F3E2C9F: from=<carol@example.org>, size=1234, nrcpt=1 (queue active)\n"
             "Nov 14 10:00:05 mx1 postfix/qmgr[900]: 6D4F3E2C9F: removed\n");
  const fs::path config = root / "maildsar.json";
  write_file(config, R"({"state_dir": "state", "sources": [{"name": "postfix", "type": "maillog", "format": "postfix", "path": "logs/mail.log*"}]})");
  return config;
}

// Issue 13 item 15: a lost secret.key is never replaced silently once the state holds erasure
// records made with it; erase refuses, naming the backup procedure, and changes nothing.
TEST(EraseTrust, LostSecretKeyIsAnErrorNotANewKey) {
  ScratchDir dir;
  const fs::path config = make_log_estate(dir.path());
  json mj = plan_approve(config, dir.path());
  ASSERT_EQ(mj.at("items").size(), 1U) << mj.dump(1);
  const std::string log_before = read_file(dir / "logs/mail.log");
  fs::remove(dir / "state/secret.key");
  auto er = ds(config, {"erase", (dir / "manifest.json").string()});
  EXPECT_EQ(er.exit_code, 66) << er.err << er.out;
  EXPECT_NE(er.err.find("secret key is missing"), std::string::npos) << er.err;
  EXPECT_NE(er.err.find("docs/operations.md"), std::string::npos) << er.err;
  EXPECT_FALSE(fs::exists(dir / "state/secret.key")) << "a new key was made";
  EXPECT_EQ(read_file(dir / "logs/mail.log"), log_before);
  // plan and verify refuse the same way.
  auto p = ds(config, {"plan", "--email", "alice.smith@example.com", "--out", (dir / "m2.json").string(),
                       "--operator", "dpo-anna"});
  EXPECT_EQ(p.exit_code, 66) << p.err;
  auto v = ds(config, {"verify", "--email", "alice.smith@example.com"});
  EXPECT_EQ(v.exit_code, 66) << v.err;
  EXPECT_FALSE(fs::exists(dir / "state/secret.key"));
}

// Item 15: a redaction is "done" only when the file, read again, shows nothing of the subject.
// An address directly followed by a non-ASCII byte is the case the issue found: whatever the
// redactor does with it, erase never says "done" while the address stays in the file.
TEST(EraseTrust, RedactionIsDoneOnlyWhenARescanFindsNoTrace) {
  ScratchDir dir;
  const fs::path config = make_log_estate(dir.path(), " alice.smith@example.com\xE2\x80\x99s");
  json mj = plan_approve(config, dir.path());
  ASSERT_EQ(mj.at("items").size(), 1U) << mj.dump(1);
  const std::string id = mj.at("items").at(0).at("id");
  auto er = ds(config, {"erase", (dir / "manifest.json").string()});
  json o = outcomes_by_id(json_lines(er.out).at(0))[id];
  const std::string after = read_file(dir / "logs/mail.log");
  const bool remains = after.find("alice.smith@example.com") != std::string::npos;
  if (remains) {
    EXPECT_EQ(o.at("result"), "failed") << o.dump();
    EXPECT_EQ(er.exit_code, 1) << er.err;
  } else {
    EXPECT_EQ(o.at("result"), "done") << o.dump();
    EXPECT_EQ(er.exit_code, 0) << er.err;
  }
  // Carol's transaction is untouched either way.
  EXPECT_NE(after.find("from=<carol@example.org>"), std::string::npos);
}

// Issue 13 item 14: an address directly followed (or preceded) by non-ASCII text, or by ')' or
// '>', in a log line is found by the index and, with the same tokeniser, redacted: erase says
// done with exit 0, the file no longer holds the address, and verify certifies.
TEST(EraseTrust, AddressNextToNonAsciiInALogLineIsRedacted) {
  ScratchDir dir;
  const fs::path config = make_log_estate(
      dir.path(), " alice.smith@example.com\xE2\x80\x99s reply (\xE2\x80\x98" "alice.smith@example.com)");
  json mj = plan_approve(config, dir.path());
  ASSERT_EQ(mj.at("items").size(), 1U) << mj.dump(1);
  const std::string id = mj.at("items").at(0).at("id");
  const std::string before = read_file(dir / "logs/mail.log");
  auto er = ds(config, {"erase", (dir / "manifest.json").string()});
  EXPECT_EQ(er.exit_code, 0) << er.err << er.out;
  json o = outcomes_by_id(json_lines(er.out).at(0))[id];
  EXPECT_EQ(o.at("result"), "done") << o.dump();
  const std::string after = read_file(dir / "logs/mail.log");
  EXPECT_EQ(after.size(), before.size());
  EXPECT_EQ(after.find("alice.smith@example.com"), std::string::npos) << after;
  // The text around each address is kept byte for byte.
  EXPECT_NE(after.find("\xE2\x80\x99s reply (\xE2\x80\x98"), std::string::npos) << after;
  EXPECT_NE(after.find("from=<carol@example.org>"), std::string::npos);
  auto v = ds(config, {"verify", "--email", "alice.smith@example.com"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  json vj = json_lines(v.out).at(0);
  EXPECT_TRUE(vj.at("clean").get<bool>()) << vj.dump();
  EXPECT_TRUE(fs::exists(vj.at("certificate").get<std::string>()));
}

} // namespace
} // namespace maildsar::test
