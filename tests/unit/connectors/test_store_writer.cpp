// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/item_reader.hpp"
#include "connectors/store_writer.hpp"

#include "connectors/connector.hpp"
#include "connectors/quarantine.hpp"
#include "core/config.hpp"
#include "core/hash.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

namespace maildsar::connectors {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;
using test::write_file;

using CollectSink = connectors::ItemCollector;

using test::gzip;

/** Scans every file of a source with the real connector. */
std::vector<Item> scan_source(const core::SourceConfig &source) {
  auto connector = make_connector(source);
  EXPECT_TRUE(connector.has_value()) << (connector ? "" : connector.error().message);
  if (!connector) {
    return {};
  }
  CollectSink sink;
  auto files = (*connector)->list_files(sink);
  EXPECT_TRUE(files.has_value()) << (files ? "" : files.error().message);
  if (!files) {
    return {};
  }
  for (const auto &f : *files) {
    auto st = (*connector)->scan(f, 0, sink);
    EXPECT_TRUE(st.has_value()) << f.path << ": " << (st ? "" : st.error().message);
  }
  return std::move(sink.items);
}

/** Every item's bytes, as read back, hash to the indexed sha256. */
void expect_bytes_match(const std::vector<Item> &items) {
  for (const auto &item : items) {
    auto bytes = read_item_bytes(item.locator);
    ASSERT_TRUE(bytes.has_value()) << item.locator.key() << ": " << bytes.error().message;
    EXPECT_EQ(core::sha256_hex(*bytes), item.sha256) << item.locator.key();
  }
}

const std::string k_message = "From: Alice <alice@example.com>\n"
                              "To: bob@example.org\n"
                              "Subject: hello\n"
                              "Message-ID: <m1@example.com>\n"
                              "\n"
                              "Hi Bob.\n";

std::string mbox_message(int i, std::string_view body = "Hello.\n") {
  return "From sender" + std::to_string(i) + "@example.com Mon Feb 26 10:00:00 2024\n" +
         "From: Sender " + std::to_string(i) + " <sender" + std::to_string(i) +
         "@example.com>\nTo: bob@example.org\nSubject: message " + std::to_string(i) +
         "\nMessage-ID: <m" + std::to_string(i) + "@example.com>\n\n" + std::string(body) + "\n";
}

// ---------------------------------------------------------------------------------------------
// ItemReader

TEST(ItemReader, MaildirCorpusHashesMatch) {
  fs::path corpus = test::corpus_dir();
  if (corpus.empty()) {
    GTEST_SKIP() << "corpus not found";
  }
  ScratchDir dir;
  test::copy_tree(corpus / "maildir/mu/testdir", dir / "Maildir");
  auto items = scan_source({"mail", "maildir", "", (dir / "Maildir").string(), "", ""});
  ASSERT_GE(items.size(), 5U);
  expect_bytes_match(items);
  for (const auto &item : items) {
    auto msg = read_message(item.locator);
    ASSERT_TRUE(msg.has_value());
    EXPECT_EQ(core::sha256_hex(*msg), item.sha256);
  }
}

TEST(ItemReader, MboxCorpusHashesMatch) {
  fs::path corpus = test::corpus_dir();
  if (corpus.empty()) {
    GTEST_SKIP() << "corpus not found";
  }
  ScratchDir dir;
  test::copy_tree(corpus / "mbox/mimekit", dir / "mbox");
  fs::remove_all(dir / "mbox/expected");
  auto items = scan_source({"archive", "mbox", "", (dir / "mbox/*.txt").string(), "", ""});
  ASSERT_GE(items.size(), 10U);
  expect_bytes_match(items);
}

TEST(ItemReader, MboxMessageIsUnquoted) {
  ScratchDir dir;
  write_file(dir / "box", mbox_message(1, ">From the start\n>>From x\n") + mbox_message(2));
  auto items = scan_source({"archive", "mbox", "", (dir / "box").string(), "", ""});
  ASSERT_EQ(items.size(), 2U);
  expect_bytes_match(items);
  auto msg = read_message(items[0].locator);
  ASSERT_TRUE(msg.has_value()) << msg.error().message;
  EXPECT_EQ(msg->rfind("From: Sender 1", 0), 0U) << *msg;
  EXPECT_NE(msg->find("\nFrom the start\n>From x\n"), std::string::npos) << *msg;
}

TEST(ItemReader, PostfixLogHashesMatchPlainAndGzip) {
  fs::path corpus = test::corpus_dir();
  if (corpus.empty()) {
    GTEST_SKIP() << "corpus not found";
  }
  ScratchDir dir;
  std::string log = test::read_file(corpus / "logs/postfix-log-parser/test.log");
  ASSERT_FALSE(log.empty());
  write_file(dir / "logs/mail.log", log);
  write_file(dir / "logs/mail.log.2.gz", gzip(log));
  core::SourceConfig src;
  src.name = "logs";
  src.type = "maillog";
  src.format = "postfix";
  src.path = (dir / "logs/*").string();
  auto items = scan_source(src);
  ASSERT_GE(items.size(), 4U);
  expect_bytes_match(items);
  EXPECT_TRUE(std::any_of(items.begin(), items.end(), [](const Item &i) {
    return i.locator.lines.size() > 1;
  }));
  auto msg = read_message(items[0].locator);
  EXPECT_FALSE(msg.has_value());
}

TEST(ItemReader, LogLinesWithCrlfAndNoFinalNewline) {
  ScratchDir dir;
  write_file(dir / "mail.log",
             "Feb 26 10:00:00 mx postfix/smtpd[1]: 4ABC: client=a.example[192.0.2.1]\r\n"
             "Feb 26 10:00:01 mx postfix/cleanup[2]: 4ABC: message-id=<x@example.com>\r\n"
             "Feb 26 10:00:02 mx postfix/qmgr[3]: 4ABC: from=<alice@example.com>, size=1");
  core::SourceConfig src;
  src.name = "logs";
  src.type = "maillog";
  src.format = "postfix";
  src.path = (dir / "mail.log").string();
  auto items = scan_source(src);
  ASSERT_FALSE(items.empty());
  expect_bytes_match(items);
}

TEST(ItemReader, LogLineBeyondEndIsDataError) {
  ScratchDir dir;
  write_file(dir / "mail.log", "one\ntwo\n");
  Locator loc;
  loc.store = StoreKind::maillog;
  loc.path = (dir / "mail.log").string();
  loc.lines = {2};
  auto two = read_item_bytes(loc);
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(*two, "two");
  loc.lines = {1, 3};
  auto r = read_item_bytes(loc);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, core::ErrorCode::data);
}

TEST(ItemReader, QuarantineShapesHashesMatch) {
  ScratchDir dir;
  std::string amavis_msg = "X-Quarantine-ID: <26W2lJY63nCZ>\nX-Envelope-From: <m@evil.example>\n" +
                           k_message;
  write_file(dir / "amavis/2/virus-26W2lJY63nCZ", amavis_msg);
  write_file(dir / "amavis/s/spam-sTrhSg0DE7Ld.gz", gzip(amavis_msg));
  write_file(dir / "amavis/a/archive-mbox", mbox_message(1) + mbox_message(2) + mbox_message(3));
  write_file(dir / "amavis/b/banned-gzmbox.gz", gzip(mbox_message(4) + mbox_message(5)));
  auto items = scan_source({"q", "quarantine", "amavis", (dir / "amavis").string(), "", ""});
  ASSERT_EQ(items.size(), 7U);
  expect_bytes_match(items);
  for (const auto &item : items) {
    auto msg = read_message(item.locator);
    ASSERT_TRUE(msg.has_value()) << msg.error().message;
    EXPECT_NE(msg->find("From: "), std::string::npos);
    EXPECT_NE(msg->rfind("From ", 0), 0U) << "mbox From line left in " << item.locator.key();
  }

  write_file(dir / "ms/20240226/4ABC/message", k_message);
  write_file(dir / "ms/20240226/spam/5DEF.header", "From: Bob <bob@example.org>\nSubject: x\n");
  write_file(dir / "ms/20240226/spam/5DEF.body", "body text\n");
  auto ms = scan_source({"q", "quarantine", "mailscanner", (dir / "ms").string(), "", ""});
  ASSERT_EQ(ms.size(), 2U);
  expect_bytes_match(ms);
  for (const auto &item : ms) {
    if (item.locator.path.ends_with(".header")) {
      auto msg = read_message(item.locator);
      ASSERT_TRUE(msg.has_value());
      EXPECT_EQ(*msg, "From: Bob <bob@example.org>\nSubject: x\n\nbody text\n");
    }
  }
}

TEST(ItemReader, MissingFileIsNoInput) {
  Locator loc;
  loc.store = StoreKind::maildir;
  loc.path = "/nonexistent/maildsar/cur/1";
  auto r = read_item_bytes(loc);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, core::ErrorCode::no_input);
}

TEST(ItemReader, SymlinkIsRefused) {
  ScratchDir dir;
  write_file(dir / "real", k_message);
  fs::create_symlink(dir / "real", dir / "link");
  Locator loc;
  loc.store = StoreKind::maildir;
  loc.path = (dir / "link").string();
  EXPECT_FALSE(read_item_bytes(loc).has_value());
}

TEST(ItemReader, PstIsNotSupported) {
  Locator loc;
  loc.store = StoreKind::pst;
  loc.path = "/x.pst";
  auto r = read_item_bytes(loc);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, core::ErrorCode::data);
  EXPECT_NE(r.error().message.find("not supported"), std::string::npos);
}


// ---------------------------------------------------------------------------------------------
// StoreWriter: mbox

struct MboxFixture {
  std::vector<std::string> messages;
  std::string path;
  std::string all;
  std::vector<MboxCut> cuts; // one per message
};

MboxFixture make_mbox(const ScratchDir &dir, int count, std::string_view body = "Hello.\n") {
  MboxFixture f;
  f.path = (dir / "box").string();
  for (int i = 0; i < count; ++i) {
    f.messages.push_back(mbox_message(i, body));
    MboxCut c;
    c.offset = f.all.size();
    c.length = f.messages.back().size();
    c.sha256 = core::sha256_hex(f.messages.back());
    f.cuts.push_back(c);
    f.all += f.messages.back();
  }
  write_file(f.path, f.all);
  return f;
}

std::string without(const MboxFixture &f, std::vector<int> removed) {
  std::string out;
  for (int i = 0; i < static_cast<int>(f.messages.size()); ++i) {
    if (std::find(removed.begin(), removed.end(), i) == removed.end()) {
      out += f.messages[static_cast<std::size_t>(i)];
    }
  }
  return out;
}

bool no_temp_left(const ScratchDir &dir) {
  for (const auto &e : fs::directory_iterator(dir.path())) {
    std::string name = e.path().filename().string();
    if (name.find("maildsar-tmp") != std::string::npos || name.find(".lock") != std::string::npos) {
      return false;
    }
  }
  return true;
}

TEST(StoreWriter, MboxCutsAtStartMiddleEndAndAdjacent) {
  for (std::vector<int> removed : std::vector<std::vector<int>>{
           {0}, {2}, {4}, {1, 2}, {3, 4}, {0, 4}, {0, 1, 2, 3, 4}}) {
    ScratchDir dir;
    MboxFixture f = make_mbox(dir, 5);
    ::chmod(f.path.c_str(), 0640);
    std::vector<MboxCut> cuts;
    for (int i : removed) {
      cuts.push_back(f.cuts[static_cast<std::size_t>(i)]);
    }
    std::reverse(cuts.begin(), cuts.end()); // any order
    auto r = rewrite_mbox(f.path, cuts, {});
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_TRUE(r->rewritten);
    EXPECT_EQ(std::count(r->removed.begin(), r->removed.end(), true),
              static_cast<long>(removed.size()));
    EXPECT_EQ(test::read_file(f.path), without(f, removed));
    EXPECT_EQ(r->size_before, f.all.size());
    EXPECT_EQ(r->size_after, without(f, removed).size());
    EXPECT_TRUE(fs::is_regular_file(f.path)); // an emptied mbox stays as an empty file
    EXPECT_EQ(fs::status(f.path).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    EXPECT_TRUE(no_temp_left(dir));
  }
}

TEST(StoreWriter, MboxRewrittenSplitsLikeTheConnector) {
  ScratchDir dir;
  MboxFixture f = make_mbox(dir, 4, ">From quoted\nbody\n");
  ASSERT_TRUE(rewrite_mbox(f.path, std::span(&f.cuts[1], 1), {}).has_value());
  auto items = scan_source({"archive", "mbox", "", f.path, "", ""});
  ASSERT_EQ(items.size(), 3U);
  EXPECT_EQ(items[0].sha256, f.cuts[0].sha256);
  EXPECT_EQ(items[1].sha256, f.cuts[2].sha256);
  EXPECT_EQ(items[2].sha256, f.cuts[3].sha256);
}

TEST(StoreWriter, MboxStaleCutIsLeftUntouched) {
  ScratchDir dir;
  MboxFixture f = make_mbox(dir, 3);
  std::vector<MboxCut> cuts{f.cuts[0], f.cuts[1], f.cuts[2]};
  cuts[1].sha256 = core::sha256_hex("something else");
  cuts[2].offset += 1; // shifted range
  MboxCut beyond{f.all.size() + 10, 20, f.cuts[0].sha256};
  cuts.push_back(beyond);
  auto r = rewrite_mbox(f.path, cuts, {});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->removed, (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(test::read_file(f.path), without(f, {0}));

  // nothing matches: the file is not touched at all
  struct stat before {};
  ::stat(f.path.c_str(), &before);
  auto again = rewrite_mbox(f.path, std::span(&f.cuts[0], 1), {});
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->rewritten);
  EXPECT_EQ(again->removed, std::vector<bool>{false});
  struct stat after {};
  ::stat(f.path.c_str(), &after);
  EXPECT_EQ(before.st_ino, after.st_ino);
}

TEST(StoreWriter, MboxOverlappingCutsAreRefused) {
  ScratchDir dir;
  MboxFixture f = make_mbox(dir, 2);
  std::vector<MboxCut> cuts{f.cuts[0], f.cuts[0]};
  auto r = rewrite_mbox(f.path, cuts, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, core::ErrorCode::data);
  EXPECT_EQ(test::read_file(f.path), f.all);
}

TEST(StoreWriter, MboxMissingAndSymlink) {
  ScratchDir dir;
  MboxFixture f = make_mbox(dir, 2);
  auto missing = rewrite_mbox((dir / "nope").string(), f.cuts, {});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, core::ErrorCode::no_input);
  fs::create_symlink(f.path, dir / "link");
  auto link = rewrite_mbox((dir / "link").string(), f.cuts, {});
  ASSERT_FALSE(link.has_value());
  EXPECT_EQ(test::read_file(f.path), f.all);
}

TEST(StoreWriter, MboxLeftoverTempIsRemoved) {
  ScratchDir dir;
  MboxFixture f = make_mbox(dir, 3);
  write_file(dir / ".box.maildsar-tmp", "half-written garbage");
  auto r = rewrite_mbox(f.path, std::span(&f.cuts[1], 1), {});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(test::read_file(f.path), without(f, {1}));
  EXPECT_TRUE(no_temp_left(dir));
}

TEST(StoreWriter, MboxFreshDotlockTimesOutStaleOneIsBroken) {
  ScratchDir dir;
  MboxFixture f = make_mbox(dir, 2);
  write_file(dir / "box.lock", "12345\n");
  MboxLockOptions opts;
  opts.dotlock_wait = std::chrono::milliseconds(200);
  auto r = rewrite_mbox(f.path, std::span(&f.cuts[0], 1), {}, opts);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, core::ErrorCode::temp_fail);
  EXPECT_EQ(core::exit_code(r.error().code), 75);
  EXPECT_EQ(test::read_file(f.path), f.all);
  EXPECT_TRUE(fs::exists(dir / "box.lock")); // someone else's lock is never removed

  // a lock older than the stale age is broken
  struct timespec old[2];
  old[0].tv_sec = old[1].tv_sec = ::time(nullptr) - 400;
  old[0].tv_nsec = old[1].tv_nsec = 0;
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir / "box.lock").c_str(), old, 0), 0);
  auto ok = rewrite_mbox(f.path, std::span(&f.cuts[0], 1), {}, opts);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(test::read_file(f.path), without(f, {0}));
  EXPECT_TRUE(no_temp_left(dir));
}

TEST(StoreWriter, MboxWaitsForDotlockReleasedMeanwhile) {
  ScratchDir dir;
  MboxFixture f = make_mbox(dir, 2);
  write_file(dir / "box.lock", "1\n");
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    fs::remove(dir / "box.lock");
  });
  auto r = rewrite_mbox(f.path, std::span(&f.cuts[1], 1), {});
  releaser.join();
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(test::read_file(f.path), without(f, {1}));
}

/** Takes an fcntl write lock on `path`; returns after the child holds it. */
pid_t fork_fcntl_holder(const std::string &path, std::chrono::milliseconds hold) {
  int pipefd[2];
  EXPECT_EQ(::pipe(pipefd), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(path.c_str(), O_RDWR);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    ::fcntl(fd, F_SETLKW, &fl);
    (void)!::write(pipefd[1], "x", 1);
    ::usleep(static_cast<useconds_t>(hold.count() * 1000));
    ::_exit(0);
  }
  char c = 0;
  ::close(pipefd[1]);
  EXPECT_EQ(::read(pipefd[0], &c, 1), 1);
  ::close(pipefd[0]);
  return pid;
}

TEST(StoreWriter, MboxWaitsForFcntlLock) {
  ScratchDir dir;
  MboxFixture f = make_mbox(dir, 3);
  pid_t child = fork_fcntl_holder(f.path, std::chrono::milliseconds(300));
  auto start = std::chrono::steady_clock::now();
  auto r = rewrite_mbox(f.path, std::span(&f.cuts[1], 1), {});
  auto waited = std::chrono::steady_clock::now() - start;
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_GE(waited, std::chrono::milliseconds(200));
  EXPECT_EQ(test::read_file(f.path), without(f, {1}));
}

// Issue 13 item 11: an fcntl lock held longer than we wait is a bounded temp_fail (exit 75),
// and the dotlock we took meanwhile is released.
TEST(StoreWriter, MboxFcntlLockHeldTooLongTimesOutAndReleasesTheDotlock) {
  ScratchDir dir;
  MboxFixture f = make_mbox(dir, 2);
  pid_t child = fork_fcntl_holder(f.path, std::chrono::milliseconds(3000));
  MboxLockOptions opts;
  opts.lock_wait = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  auto r = rewrite_mbox(f.path, std::span(&f.cuts[0], 1), {}, opts);
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, core::ErrorCode::temp_fail);
  EXPECT_NE(r.error().message.find("fcntl"), std::string::npos) << r.error().message;
  EXPECT_LT(waited, std::chrono::milliseconds(2500));
  EXPECT_FALSE(fs::exists(f.path + ".lock"));
  EXPECT_EQ(test::read_file(f.path), f.all);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

// Issue 13 item 5: erase takes flock too; a flock holder makes it wait, bounded.
TEST(StoreWriter, MboxTakesFlockToo) {
  ScratchDir dir;
  MboxFixture f = make_mbox(dir, 2);
  int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0); // a flock in this process conflicts with another open file
  MboxLockOptions opts;
  opts.lock_wait = std::chrono::milliseconds(200);
  auto r = rewrite_mbox(f.path, std::span(&f.cuts[0], 1), {}, opts);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, core::ErrorCode::temp_fail);
  EXPECT_NE(r.error().message.find("flock"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(f.path + ".lock"));
  // released meanwhile: the rewrite waits for it and goes through
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::close(fd);
  });
  opts.lock_wait = std::chrono::milliseconds(5000);
  auto ok = rewrite_mbox(f.path, std::span(&f.cuts[0], 1), {}, opts);
  releaser.join();
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(test::read_file(f.path), without(f, {0}));
}

/** A delivery agent: dotlock (link), then fcntl, append one message, unlock; `n` times. */
void deliver_like_postfix(const std::string &path, int n) {
  std::string lock = path + ".lock";
  for (int i = 0; i < n; ++i) {
    std::string tmp = lock + ".agent." + std::to_string(::getpid());
    int t = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::close(t);
    while (::link(tmp.c_str(), lock.c_str()) != 0) {
      ::usleep(1000);
    }
    ::unlink(tmp.c_str());
    int fd = ::open(path.c_str(), O_RDWR | O_APPEND);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    ::fcntl(fd, F_SETLKW, &fl);
    std::string msg = mbox_message(1000 + i);
    (void)!::write(fd, msg.data(), msg.size());
    ::fsync(fd);
    ::close(fd);
    ::unlink(lock.c_str());
    ::usleep(500);
  }
}

TEST(StoreWriter, MboxConcurrentDeliveryLosesNothing) {
  ScratchDir dir;
  MboxFixture f = make_mbox(dir, 3000, std::string(200, 'x') + "\n");
  pid_t child = ::fork();
  if (child == 0) {
    deliver_like_postfix(f.path, 50);
    ::_exit(0);
  }
  // run rewrites while the agent delivers: each removes one original message
  std::size_t removed_bytes = 0;
  for (int i = 0; i < 12; ++i) {
    const std::string &victim = f.messages[static_cast<std::size_t>(i * 7)];
    std::string now = test::read_file(f.path);
    std::size_t at = now.find(victim);
    ASSERT_NE(at, std::string::npos);
    MboxCut cut{at, victim.size(), core::sha256_hex(victim)};
    auto r = rewrite_mbox(f.path, std::span(&cut, 1), {});
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->removed, std::vector<bool>{true});
    removed_bytes += victim.size();
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  std::string final_box = test::read_file(f.path);
  std::size_t delivered_bytes = 0;
  for (int i = 0; i < 50; ++i) {
    EXPECT_NE(final_box.find(mbox_message(1000 + i)), std::string::npos) << "lost delivery " << i;
    delivered_bytes += mbox_message(1000 + i).size();
  }
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(final_box.find(f.messages[static_cast<std::size_t>(i * 7)]), std::string::npos);
  }
  EXPECT_EQ(final_box.size(), f.all.size() - removed_bytes + delivered_bytes);
  EXPECT_EQ(final_box.substr(0, f.messages[1].size()), f.messages[1]);
}

TEST(StoreWriter, MboxDiskFullLeavesOriginal) {
  ScratchDir dir;
  MboxFixture f = make_mbox(dir, 200);
  pid_t child = ::fork();
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl {};
    rl.rlim_cur = rl.rlim_max = 4096;
    ::setrlimit(RLIMIT_FSIZE, &rl);
    auto r = rewrite_mbox(f.path, std::span(&f.cuts[0], 1), {});
    ::_exit(r.has_value() ? 1 : (r.error().code == core::ErrorCode::io ? 0 : 2));
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(test::read_file(f.path), f.all);
  EXPECT_TRUE(no_temp_left(dir));
}

TEST(StoreWriter, MboxFaultAtEachStepConverges) {
  for (std::string_view step : {"mbox:locked", "mbox:temp-written", "mbox:temp-synced",
                                "mbox:renamed", "mbox:dir-synced"}) {
    ScratchDir dir;
    MboxFixture f = make_mbox(dir, 4);
    std::vector<MboxCut> cuts{f.cuts[1], f.cuts[2]};
    StepHook fault = [&](std::string_view s) -> core::Status {
      if (s == step) {
        return core::fail(core::ErrorCode::internal, "injected fault");
      }
      return {};
    };
    auto r = rewrite_mbox(f.path, cuts, fault);
    ASSERT_FALSE(r.has_value()) << step;
    std::string now = test::read_file(f.path);
    EXPECT_TRUE(now == f.all || now == without(f, {1, 2})) << step;
    EXPECT_FALSE(fs::exists(dir / "box.lock")) << step;
    auto again = rewrite_mbox(f.path, cuts, {});
    ASSERT_TRUE(again.has_value()) << step << ": " << again.error().message;
    EXPECT_EQ(test::read_file(f.path), without(f, {1, 2})) << step;
    EXPECT_TRUE(no_temp_left(dir)) << step;
  }
}

// ---------------------------------------------------------------------------------------------
// StoreWriter: logs

const std::string k_log = "line one alice@example.com\n"
                          "line two\n"
                          "line three alice@example.com\n"
                          "line four\n";

std::string lines_sha(std::vector<std::string> lines) {
  std::string joined;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    joined += (i ? "\n" : "") + lines[i];
  }
  return core::sha256_hex(joined);
}

TEST(StoreWriter, LogSameLengthEditsInPlace) {
  ScratchDir dir;
  std::string path = (dir / "mail.log").string();
  write_file(path, k_log);
  struct stat before {};
  ::stat(path.c_str(), &before);
  std::vector<LineEdit> edits{{3, "line three subj#0123456789ab"}, {1, "line one subj#0123456789ab"}};
  std::string expected = lines_sha({"line one alice@example.com", "line three alice@example.com"});
  auto r = rewrite_log_lines(path, edits, expected, {});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->rewritten_in_place);
  EXPECT_EQ(r->lines_changed, 2U);
  EXPECT_EQ(test::read_file(path), "line one subj#0123456789ab\nline two\n"
                                   "line three subj#0123456789ab\nline four\n");
  struct stat after {};
  ::stat(path.c_str(), &after);
  EXPECT_EQ(before.st_ino, after.st_ino);
  // a repeated run is idempotent, even with the original hash
  auto again = rewrite_log_lines(path, edits, expected, {});
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->lines_changed, 0U);
}

TEST(StoreWriter, LogPartialInPlaceResumesWithPerLineHashes) {
  ScratchDir dir;
  std::string path = (dir / "mail.log").string();
  write_file(path, k_log);
  std::vector<LineEdit> edits{
      {1, "line one subj#0123456789ab", core::sha256_hex("line one alice@example.com")},
      {3, "line three subj#0123456789ab", core::sha256_hex("line three alice@example.com")}};
  std::string expected = lines_sha({"line one alice@example.com", "line three alice@example.com"});
  StepHook fault = [](std::string_view s) -> core::Status {
    return s == "log:line-written" ? core::Status(core::fail(core::ErrorCode::internal, "crash"))
                                   : core::Status();
  };
  ASSERT_FALSE(rewrite_log_lines(path, edits, expected, fault).has_value());
  auto r = rewrite_log_lines(path, edits, expected, {});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->lines_changed, 1U);
  EXPECT_EQ(test::read_file(path), "line one subj#0123456789ab\nline two\n"
                                   "line three subj#0123456789ab\nline four\n");
}

TEST(StoreWriter, LogDeletionAndLengthChangeRewrite) {
  ScratchDir dir;
  std::string path = (dir / "mail.log").string();
  write_file(path, k_log + "last line without newline alice@example.com");
  ::chmod(path.c_str(), 0640);
  std::vector<LineEdit> edits{{2, std::nullopt}, {3, "x"}, {5, "y"}};
  auto r = rewrite_log_lines(path, edits, "", {});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_FALSE(r->rewritten_in_place);
  EXPECT_EQ(r->lines_changed, 3U);
  EXPECT_EQ(test::read_file(path), "line one alice@example.com\nx\nline four\ny");
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_TRUE(no_temp_left(dir));
}

TEST(StoreWriter, LogGzipRewrite) {
  ScratchDir dir;
  std::string path = (dir / "mail.log.2.gz").string();
  write_file(path, gzip(k_log));
  std::vector<LineEdit> edits{{3, "line three subj#0123456789ab"}, {4, std::nullopt}};
  std::string expected = lines_sha({"line three alice@example.com", "line four"});
  auto r = rewrite_log_lines(path, edits, expected, {});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_FALSE(r->rewritten_in_place);
  auto plain = gunzip(test::read_file(path));
  ASSERT_TRUE(plain.has_value()) << plain.error().message;
  EXPECT_EQ(*plain, "line one alice@example.com\nline two\nline three subj#0123456789ab\n");
  EXPECT_TRUE(no_temp_left(dir));
}

TEST(StoreWriter, LogLineBeyondEndChangesNothing) {
  ScratchDir dir;
  std::string path = (dir / "mail.log").string();
  write_file(path, k_log);
  std::vector<LineEdit> edits{{1, "LINE ONE alice@example.com"}, {9, std::nullopt}};
  auto r = rewrite_log_lines(path, edits, "", {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, core::ErrorCode::data);
  EXPECT_FALSE(is_stale(r.error()));
  EXPECT_EQ(test::read_file(path), k_log);
}

TEST(StoreWriter, LogBadEditsAreRefused) {
  ScratchDir dir;
  std::string path = (dir / "mail.log").string();
  write_file(path, k_log);
  std::vector<std::vector<LineEdit>> bad{{{0, "x"}}, {{1, "a\nb"}}, {{1, "x"}, {1, "y"}}};
  for (const auto &edits : bad) {
    auto r = rewrite_log_lines(path, edits, "", {});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, core::ErrorCode::data);
  }
  EXPECT_EQ(test::read_file(path), k_log);
}

TEST(StoreWriter, LogExpectedHashMismatchIsStale) {
  ScratchDir dir;
  std::string path = (dir / "mail.log").string();
  write_file(path, k_log);
  std::vector<LineEdit> edits{{1, "line one subj#0123456789ab"}, {2, std::nullopt}};
  auto r = rewrite_log_lines(path, edits, lines_sha({"line one alice@example.com", "other"}), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(is_stale(r.error())) << r.error().message;
  EXPECT_EQ(test::read_file(path), k_log);
}

TEST(StoreWriter, LogFaultAtEachRewriteStep) {
  for (std::string_view step :
       {"log:locked", "log:temp-written", "log:temp-synced", "log:renamed", "log:dir-synced"}) {
    ScratchDir dir;
    std::string path = (dir / "mail.log").string();
    write_file(path, k_log);
    std::vector<LineEdit> edits{{1, "x"}};
    StepHook fault = [&](std::string_view s) -> core::Status {
      return s == step ? core::Status(core::fail(core::ErrorCode::internal, "crash"))
                       : core::Status();
    };
    ASSERT_FALSE(rewrite_log_lines(path, edits, "", fault).has_value()) << step;
    std::string now = test::read_file(path);
    std::string done = "x\nline two\nline three alice@example.com\nline four\n";
    EXPECT_TRUE(now == k_log || now == done) << step;
    auto again = rewrite_log_lines(path, edits, "", {});
    ASSERT_TRUE(again.has_value()) << step << ": " << again.error().message;
    EXPECT_EQ(test::read_file(path), done) << step;
    EXPECT_TRUE(no_temp_left(dir)) << step;
  }
}

// ---------------------------------------------------------------------------------------------
// StoreWriter: message files and maildir

TEST(StoreWriter, RemoveMessageFile) {
  ScratchDir dir;
  write_file(dir / "Maildir/cur/1.host:2,S", k_message);
  std::string path = (dir / "Maildir/cur/1.host:2,S").string();
  auto wrong = remove_message_file(path, core::sha256_hex("other"), {});
  ASSERT_FALSE(wrong.has_value());
  EXPECT_TRUE(is_stale(wrong.error()));
  EXPECT_TRUE(fs::exists(path));

  fs::create_symlink(path, dir / "Maildir/cur/2.host:2,");
  auto link = remove_message_file((dir / "Maildir/cur/2.host:2,").string(), core::sha256_hex(k_message), {});
  ASSERT_FALSE(link.has_value());
  EXPECT_TRUE(fs::is_symlink(dir / "Maildir/cur/2.host:2,"));

  fs::create_directories(dir / "Maildir/cur/3.host");
  auto directory = remove_message_file((dir / "Maildir/cur/3.host").string(), core::sha256_hex(""), {});
  ASSERT_FALSE(directory.has_value());
  EXPECT_TRUE(fs::is_directory(dir / "Maildir/cur/3.host"));

  std::vector<std::string> steps;
  auto ok = remove_message_file(path, core::sha256_hex(k_message), [&](std::string_view s) {
    steps.emplace_back(s);
    return core::Status();
  });
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(steps, (std::vector<std::string>{"file:verified", "file:unlinked", "file:dir-synced"}));
  auto gone = remove_message_file(path, core::sha256_hex(k_message), {});
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code, core::ErrorCode::no_input);
}

TEST(StoreWriter, MaildirCurrentPathFollowsFlagRename) {
  ScratchDir dir;
  write_file(dir / "Maildir/new/1700000000.M1P2.host", k_message);
  write_file(dir / "Maildir/cur/1700000001.M1P2.host:2,", k_message);
  fs::create_directories(dir / "Maildir/tmp");
  std::string planned = (dir / "Maildir/new/1700000000.M1P2.host").string();
  auto same = maildir_current_path(planned);
  ASSERT_TRUE(same.has_value());
  EXPECT_EQ(*same, planned);

  fs::rename(planned, dir / "Maildir/cur/1700000000.M1P2.host:2,RS");
  auto moved = maildir_current_path(planned);
  ASSERT_TRUE(moved.has_value()) << moved.error().message;
  EXPECT_EQ(*moved, (dir / "Maildir/cur/1700000000.M1P2.host:2,RS").string());
  auto moved2 = maildir_current_path((dir / "Maildir/cur/1700000000.M1P2.host:2,S").string());
  ASSERT_TRUE(moved2.has_value());
  EXPECT_EQ(*moved2, *moved);

  fs::remove(*moved);
  auto gone = maildir_current_path(planned);
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code, core::ErrorCode::no_input);
}

TEST(StoreWriter, MaildirCurrentPathOfTmpAndStrayFiles) {
  ScratchDir dir;
  // An abandoned tmp/ delivery completed late: found again in new/ by its unique name.
  write_file(dir / "Maildir/tmp/1700000000.M9P9.host", k_message);
  fs::create_directories(dir / "Maildir/cur");
  std::string tmp = (dir / "Maildir/tmp/1700000000.M9P9.host").string();
  ASSERT_EQ(maildir_current_path(tmp).value_or(""), tmp);
  fs::create_directories(dir / "Maildir/new");
  fs::rename(tmp, dir / "Maildir/new/1700000000.M9P9.host");
  auto delivered = maildir_current_path(tmp);
  ASSERT_TRUE(delivered.has_value()) << delivered.error().message;
  EXPECT_EQ(*delivered, (dir / "Maildir/new/1700000000.M9P9.host").string());
  // A stray file is only ever its own path: a file of the same name in cur/ is another file.
  write_file(dir / "Maildir/cur/saved.eml", k_message);
  std::string stray = (dir / "Maildir/saved.eml").string();
  auto gone = maildir_current_path(stray);
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code, core::ErrorCode::no_input);
  write_file(stray, k_message);
  EXPECT_EQ(maildir_current_path(stray).value_or(""), stray);
  ASSERT_TRUE(remove_message_file(stray, core::sha256_hex(k_message), {}).has_value());
  EXPECT_FALSE(fs::exists(stray));
  EXPECT_TRUE(fs::exists(dir / "Maildir/cur/saved.eml"));
}

TEST(StoreWriter, MaildirCopiesFindsDuplicatesOnly) {
  ScratchDir dir;
  std::string other = k_message + "different\n";
  write_file(dir / "Maildir/cur/1.host:2,S", k_message);
  write_file(dir / "Maildir/.Sent/cur/2.host:2,S", k_message);
  write_file(dir / "Maildir/.Archive/new/3.host", k_message);
  write_file(dir / "Maildir/tmp/4.host", k_message);      // never tmp/
  write_file(dir / "Maildir/.Sent/cur/5.host:2,", other);  // other bytes
  fs::create_directories(dir / "Maildir/new");
  fs::create_symlink(dir / "Maildir/cur/1.host:2,S", dir / "Maildir/new/6.host"); // not followed
  auto copies = maildir_copies((dir / "Maildir").string(), core::sha256_hex(k_message),
                               k_message.size());
  ASSERT_TRUE(copies.has_value()) << copies.error().message;
  std::vector<std::string> expected{(dir / "Maildir/.Archive/new/3.host").string(),
                                    (dir / "Maildir/.Sent/cur/2.host:2,S").string(),
                                    (dir / "Maildir/cur/1.host:2,S").string()};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(*copies, expected);
}

} // namespace
} // namespace maildsar::connectors
