// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/maildir.hpp"

#include "core/hash.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>
#include <filesystem>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using namespace maildsar;
using namespace maildsar::connectors;

namespace {

struct MaildirSink final : ItemSink {
  std::vector<Item> items;
  std::vector<ScanError> errors;
  std::map<std::string, SkipReason> skips; // path relative to nothing: as listed
  void item(Item &&it) override { items.push_back(std::move(it)); }
  void error(ScanError &&e) override { errors.push_back(std::move(e)); }
  void skipped(const std::string &path, SkipReason reason) override { skips[path] = reason; }
};

/** Sets a file's mtime `hours` into the past. */
void age(const fs::path &path, int hours) {
  struct timespec times[2] {};
  ::clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= static_cast<time_t>(hours) * 3600;
  times[1] = times[0];
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

/** The skips of a sink by path relative to `base`, with the reason's name. */
std::map<std::string, std::string> rel_skips(const MaildirSink &sink, const fs::path &base) {
  std::map<std::string, std::string> out;
  for (const auto &[path, reason] : sink.skips) {
    out[fs::path(path).lexically_relative(base).string()] = std::string(to_string(reason));
  }
  return out;
}

const std::string k_msg = "From: Alice <alice@example.com>\n"
                          "To: bob@example.org\n"
                          "Subject: hello\n"
                          "Message-ID: <m1@example.com>\n"
                          "\n"
                          "Hi Bob.\n";

std::unique_ptr<Connector> make(const std::string &pattern, const std::string &root,
                                const std::string &owner = {}) {
  core::SourceConfig src{"mail", "maildir", "", pattern, owner, root};
  auto c = make_maildir_connector(src);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
  return std::move(*c);
}

std::vector<FileEntry> list(const Connector &c, MaildirSink &sink) {
  auto files = c.list_files(sink);
  EXPECT_TRUE(files.has_value()) << (files ? "" : files.error().message);
  return files ? *files : std::vector<FileEntry>{};
}

std::vector<std::string> rel_paths(const std::vector<FileEntry> &files, const fs::path &base) {
  std::vector<std::string> out;
  for (const auto &f : files) {
    out.push_back(fs::path(f.path).lexically_relative(base).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool has_error(const MaildirSink &sink, const std::string &path_part, const std::string &cause_part) {
  return std::any_of(sink.errors.begin(), sink.errors.end(), [&](const ScanError &e) {
    return e.path.find(path_part) != std::string::npos &&
           e.cause.find(cause_part) != std::string::npos;
  });
}

} // namespace

TEST(MaildirConnector, ReadsCurAndNewAndStrayButNotYoungTmp) {
  test::ScratchDir dir;
  fs::path md = dir / "Maildir";
  test::write_file(md / "cur" / "1.host:2,S", k_msg);
  test::write_file(md / "new" / "2.host", k_msg);
  test::write_file(md / "tmp" / "3.host", k_msg); // a delivery in progress: not touched
  test::write_file(md / "cur" / ".keep", "");
  test::write_file(md / "loose-message", k_msg); // outside cur/new: a stray item
  auto c = make(md.string(), dir.path().string());
  EXPECT_EQ(c->kind(), StoreKind::maildir);
  EXPECT_FALSE(c->supports_append());
  MaildirSink sink;
  auto files = list(*c, sink);
  EXPECT_TRUE(sink.errors.empty());
  EXPECT_EQ(rel_paths(files, md),
            (std::vector<std::string>{"cur/1.host:2,S", "loose-message", "new/2.host"}));
  EXPECT_EQ(rel_skips(sink, md), (std::map<std::string, std::string>{
                                     {"cur/.keep", "dotfile"}, {"tmp/3.host", "in-delivery"}}));
  for (const auto &f : files) {
    EXPECT_EQ(f.folder, "");
    EXPECT_EQ(f.owner, "");
    EXPECT_EQ(f.mark, f.path.ends_with("loose-message") ? "stray" : "");
    EXPECT_EQ(f.stat.size, k_msg.size());
    ASSERT_TRUE(c->scan(f, 0, sink).has_value());
  }
  ASSERT_EQ(sink.items.size(), 3U);
  EXPECT_TRUE(sink.errors.empty());
  const Item &item = sink.items[0];
  EXPECT_EQ(item.locator.source, "mail");
  EXPECT_EQ(item.locator.store, StoreKind::maildir);
  EXPECT_EQ(item.locator.path, (md / "cur" / "1.host:2,S").string());
  EXPECT_EQ(item.sha256, core::sha256_hex(k_msg));
  EXPECT_TRUE(item.addresses.empty() || item.addresses[0].role != Role::owner);
}

TEST(MaildirConnector, WalksSubFolders) {
  test::ScratchDir dir;
  fs::path md = dir / "Maildir";
  test::write_file(md / "cur" / "a:2,S", k_msg);
  test::write_file(md / ".Sent" / "cur" / "b:2,S", k_msg);
  test::write_file(md / ".Archive" / "new" / "c", k_msg);
  test::write_file(md / ".Archive" / "tmp" / "ignored", k_msg);
  test::write_file(md / ".Foo.Bar" / "cur" / "d:2,", k_msg);
  test::write_file(md / "foo" / "baz" / "new" / "e", k_msg); // nested plain Maildir
  test::write_file(md / ".Sent" / "maildirfolder", "");
  test::write_file(md / "dovecot-uidlist", "3 V1 N2\n");
  auto c = make(md.string(), dir.path().string());
  MaildirSink sink;
  auto files = list(*c, sink);
  EXPECT_TRUE(sink.errors.empty());
  std::map<std::string, std::string> folder_of;
  for (const auto &f : files) {
    folder_of[fs::path(f.path).filename().string()] = f.folder;
  }
  EXPECT_EQ(folder_of, (std::map<std::string, std::string>{
                           {"a:2,S", ""}, {"b:2,S", ".Sent"}, {"c", ".Archive"},
                           {"d:2,", ".Foo.Bar"}, {"e", "foo/baz"}}));
  ASSERT_TRUE(c->scan(files[0], 0, sink).has_value());
  ASSERT_EQ(sink.items.size(), 1U);
  EXPECT_EQ(sink.items[0].locator.folder, files[0].folder);
}

TEST(MaildirConnector, AcceptsAllFlagSuffixStyles) {
  test::ScratchDir dir;
  fs::path md = dir / "Maildir";
  for (const char *name : {"1.x:2,S", "2.x!2,RS", "3.x,2,S", "4.x:2,", "5.x"}) {
    test::write_file(md / "cur" / name, k_msg);
  }
  auto c = make(md.string(), dir.path().string());
  MaildirSink sink;
  auto files = list(*c, sink);
  EXPECT_EQ(rel_paths(files, md), (std::vector<std::string>{"cur/1.x:2,S", "cur/2.x!2,RS",
                                                            "cur/3.x,2,S", "cur/4.x:2,",
                                                            "cur/5.x"}));
  for (const auto &f : files) {
    ASSERT_TRUE(c->scan(f, 0, sink).has_value());
  }
  ASSERT_EQ(sink.items.size(), 5U);
  EXPECT_EQ(sink.items[1].locator.path, (md / "cur" / "2.x!2,RS").string());
  EXPECT_TRUE(sink.errors.empty());
}

TEST(MaildirConnector, ReadsCrlfFile) {
  test::ScratchDir dir;
  fs::path md = dir / "Maildir";
  std::string crlf = "From: Carol <carol@example.com>\r\nTo: dave@example.org\r\n"
                     "Subject: crlf\r\n\r\nBody line\r\n";
  test::write_file(md / "new" / "crlf", crlf);
  test::write_file(md / "cur" / "tmp" / "x", k_msg); // a dir inside cur: skipped and counted
  auto c = make(md.string(), dir.path().string());
  MaildirSink sink;
  auto files = list(*c, sink);
  ASSERT_EQ(files.size(), 1U);
  EXPECT_TRUE(sink.errors.empty());
  EXPECT_EQ(rel_skips(sink, md), (std::map<std::string, std::string>{{"cur/tmp", "directory"}}));
  ASSERT_TRUE(c->scan(files[0], 0, sink).has_value());
  ASSERT_EQ(sink.items.size(), 1U);
  EXPECT_TRUE(sink.errors.empty());
  EXPECT_EQ(sink.items[0].sha256, core::sha256_hex(crlf));
  EXPECT_EQ(sink.items[0].subject, "crlf");
  EXPECT_TRUE(sink.items[0].warnings.empty());
}

TEST(MaildirConnector, SkipsAndReportsSymlinks) {
  test::ScratchDir dir;
  fs::path md = dir / "mail" / "Maildir";
  test::write_file(md / "cur" / "real", k_msg);
  test::write_file(dir / "mail" / "elsewhere" / "cur" / "m", k_msg);
  fs::create_symlink(md / "cur" / "real", md / "cur" / "link");
  fs::create_directories(md / ".Linked");
  fs::create_symlink(dir / "mail" / "elsewhere" / "cur", md / ".Linked" / "cur");
  auto c = make(md.string(), (dir / "mail").string());
  MaildirSink sink;
  auto files = list(*c, sink);
  EXPECT_EQ(rel_paths(files, md), (std::vector<std::string>{"cur/real"}));
  ASSERT_EQ(sink.errors.size(), 2U);
  EXPECT_TRUE(has_error(sink, "cur/link", "symbolic link skipped"));
  EXPECT_TRUE(has_error(sink, ".Linked/cur", "symbolic link skipped"));
  // a symlink handed to scan anyway is not followed
  FileEntry forged{(md / "cur" / "link").string(), "", "", {}};
  auto st = c->scan(forged, 0, sink);
  EXPECT_FALSE(st.has_value());
}

TEST(MaildirConnector, SkipsFilesEscapingTheRoot) {
  test::ScratchDir dir;
  fs::path root = dir / "mail";
  test::write_file(root / "alice" / "Maildir" / "cur" / "a", k_msg);
  test::write_file(dir / "outside" / "Maildir" / "cur" / "secret", k_msg);
  test::write_file(dir / "outside" / "cur" / "secret2", k_msg);
  fs::create_symlink(dir / "outside", root / "bob"); // bob's tree lives outside the root
  fs::create_symlink(dir / "outside" / "cur", root / "alice" / "Maildir" / ".Evil");
  auto c = make((root / "*" / "Maildir").string(), root.string());
  MaildirSink sink;
  auto files = list(*c, sink);
  ASSERT_EQ(files.size(), 1U);
  EXPECT_EQ(files[0].path, (root / "alice" / "Maildir" / "cur" / "a").string());
  EXPECT_TRUE(has_error(sink, "bob/Maildir", "outside the source root"));
  EXPECT_TRUE(has_error(sink, ".Evil", "points outside the source root"));
  EXPECT_EQ(sink.errors.size(), 2U);
}

TEST(MaildirConnector, BinaryFileIsOneError) {
  test::ScratchDir dir;
  fs::path md = dir / "Maildir";
  std::string binary("\x7f" "ELF\0\0\x01\x02\x03\nFrom: x\n\n", 18);
  test::write_file(md / "cur" / "binary:2,S", binary);
  test::write_file(md / "cur" / "empty:2,S", "");
  auto c = make(md.string(), dir.path().string());
  MaildirSink sink;
  auto files = list(*c, sink);
  ASSERT_EQ(files.size(), 2U);
  for (const auto &f : files) {
    ASSERT_TRUE(c->scan(f, 0, sink).has_value());
  }
  ASSERT_EQ(sink.errors.size(), 2U);
  EXPECT_EQ(sink.errors[0].path, files[0].path);
  EXPECT_NE(sink.errors[0].cause.find("not a mail message"), std::string::npos);
  EXPECT_NE(sink.errors[1].cause.find("empty"), std::string::npos);
  // still emitted (counted, findable by path) with the hash of the bytes
  ASSERT_EQ(sink.items.size(), 2U);
  EXPECT_EQ(sink.items[0].sha256, core::sha256_hex(binary));
}

TEST(MaildirConnector, MailboxStyleEnvelopeLineIsAccepted) {
  test::ScratchDir dir;
  fs::path md = dir / "Maildir";
  test::write_file(md / "cur" / "m.mbx", "From nobody Fri Mar  7 15:17:43 2014\n" + k_msg);
  auto c = make(md.string(), dir.path().string());
  MaildirSink sink;
  auto files = list(*c, sink);
  ASSERT_EQ(files.size(), 1U);
  ASSERT_TRUE(c->scan(files[0], 0, sink).has_value());
  EXPECT_TRUE(sink.errors.empty());
  ASSERT_EQ(sink.items.size(), 1U);
  EXPECT_EQ(sink.items[0].subject, "hello"); // the envelope line is not fed to the decoder
  EXPECT_EQ(sink.items[0].message_id, "m1@example.com");
}

TEST(MaildirConnector, Utf8ByteOrderMarkBeforeHeaderIsAccepted) {
  // Regression (corpus mime/mimekit/messages/feedback-report.txt): a message file starting with
  // a UTF-8 BOM was reported "not a mail message" and its identities were not decoded.
  test::ScratchDir dir;
  fs::path md = dir / "Maildir";
  const std::string bytes = "\xEF\xBB\xBF" + k_msg;
  test::write_file(md / "cur" / "bom:2,S", bytes);
  test::write_file(md / "cur" / "bom-envelope:2,S",
                   "\xEF\xBB\xBF" "From nobody Fri Mar  7 15:17:43 2014\n" + k_msg);
  auto c = make(md.string(), dir.path().string());
  MaildirSink sink;
  auto files = list(*c, sink);
  ASSERT_EQ(files.size(), 2U);
  for (const auto &f : files) {
    ASSERT_TRUE(c->scan(f, 0, sink).has_value());
  }
  EXPECT_TRUE(sink.errors.empty()) << sink.errors.front().cause;
  ASSERT_EQ(sink.items.size(), 2U);
  for (const auto &item : sink.items) {
    EXPECT_EQ(item.subject, "hello");
    EXPECT_EQ(item.message_id, "m1@example.com");
    EXPECT_TRUE(std::any_of(item.addresses.begin(), item.addresses.end(), [](const RawAddress &a) {
      return a.role == Role::from && a.addr == "alice@example.com";
    }));
  }
  EXPECT_EQ(sink.items[1].sha256, core::sha256_hex(bytes)); // the hash covers the BOM too
}

TEST(MaildirConnector, UnreadableFileIsOneError) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root can read a mode-000 file";
  }
  test::ScratchDir dir;
  fs::path md = dir / "Maildir";
  test::write_file(md / "cur" / "locked", k_msg);
  test::write_file(md / "cur" / "ok", k_msg);
  fs::permissions(md / "cur" / "locked", fs::perms::none);
  auto c = make(md.string(), dir.path().string());
  MaildirSink sink;
  auto files = list(*c, sink);
  ASSERT_EQ(files.size(), 2U);
  int failed = 0;
  for (const auto &f : files) {
    auto st = c->scan(f, 0, sink);
    if (!st) {
      ++failed;
      EXPECT_EQ(st.error().code, core::ErrorCode::permission);
      EXPECT_NE(st.error().message.find("locked"), std::string::npos);
    }
  }
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(sink.items.size(), 1U);
}

TEST(MaildirConnector, UnreadableFolderIsReportedAndWalkContinues) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root can read a mode-000 folder";
  }
  test::ScratchDir dir;
  fs::path md = dir / "Maildir";
  test::write_file(md / "cur" / "ok", k_msg);
  test::write_file(md / ".Locked" / "cur" / "hidden", k_msg);
  fs::permissions(md / ".Locked", fs::perms::none);
  auto c = make(md.string(), dir.path().string());
  MaildirSink sink;
  auto files = list(*c, sink);
  EXPECT_EQ(files.size(), 1U);
  EXPECT_EQ(sink.errors.size(), 1U);
  EXPECT_TRUE(has_error(sink, ".Locked", "cannot"));
}

TEST(MaildirConnector, OwnerTemplateFromGlob) {
  test::ScratchDir dir;
  fs::path root = dir / "mail" / "example.com";
  test::write_file(root / "alice" / "Maildir" / "cur" / "1", k_msg);
  test::write_file(root / "bob" / "Maildir" / ".Sent" / "cur" / "2", k_msg);
  auto c = make((root / "*" / "Maildir").string(), (dir / "mail").string(), "{1}@example.com");
  MaildirSink sink;
  auto files = list(*c, sink);
  ASSERT_EQ(files.size(), 2U);
  EXPECT_EQ(files[0].owner, "alice@example.com");
  EXPECT_EQ(files[1].owner, "bob@example.com");
  EXPECT_EQ(files[1].folder, ".Sent");
  ASSERT_TRUE(c->scan(files[1], 0, sink).has_value());
  ASSERT_EQ(sink.items.size(), 1U);
  const auto &addrs = sink.items[0].addresses;
  EXPECT_TRUE(std::any_of(addrs.begin(), addrs.end(), [](const RawAddress &a) {
    return a.role == Role::owner && a.addr == "bob@example.com";
  }));
}

TEST(MaildirConnector, RejectsRelativePattern) {
  core::SourceConfig src{"mail", "maildir", "", "relative/Maildir", "", ""};
  auto c = make_maildir_connector(src);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, core::ErrorCode::config);
}

TEST(MaildirConnector, MissingPathListsNothing) {
  test::ScratchDir dir;
  auto c = make((dir / "nope" / "Maildir").string(), dir.path().string());
  MaildirSink sink;
  EXPECT_TRUE(list(*c, sink).empty());
}

TEST(MaildirConnector, CorpusCountsMatchSources) {
  fs::path corpus = test::corpus_dir();
  if (corpus.empty()) {
    GTEST_SKIP() << "corpus not found";
  }
  // SOURCES.md "Message counts": cur + new per tree (sub-folder rows summed), dotfiles excluded;
  // plus the stray files (notmuch's default corpus has ten message files outside cur/ and new/)
  // and mu's tmp/ message once it is older than 36 hours (its mtime is that of the checkout).
  const fs::path mu_tmp = corpus / "maildir/mu/testdir/tmp/1220863087.12663.ignore";
  const bool mu_tmp_old = fs::last_write_time(mu_tmp) <
                          fs::file_time_type::clock::now() - std::chrono::hours(36);
  const std::map<std::string, std::size_t> expected = {
      {"maildir/mailpile/Maildir", 13},
      {"maildir/mu/cjk", 4},
      {"maildir/mu/testdir", 19 + (mu_tmp_old ? 1 : 0)},
      {"maildir/mu/testdir2", 3 + 8 + 3},
      {"maildir/notmuch/default", 26 + 4 + 4 + 5 + 4 + 10},
      {"maildir/notmuch/lkml", 210},
      {"maildir/notmuch/threading/parent-priority", 3},
  };
  for (const auto &[tree, count] : expected) {
    fs::path md = corpus / tree;
    auto c = make(md.string(), (corpus / "maildir").string());
    MaildirSink sink;
    auto files = list(*c, sink);
    EXPECT_EQ(files.size(), count) << tree;
    EXPECT_TRUE(sink.errors.empty()) << tree << ": " << sink.errors.front().path << ": "
                                     << sink.errors.front().cause;
    for (const auto &f : files) {
      EXPECT_EQ(f.path.find("/tmp/") != std::string::npos, f.mark == "tmp") << f.path;
      EXPECT_NE(fs::path(f.path).filename().string().front(), '.') << f.path;
      ASSERT_TRUE(c->scan(f, 0, sink).has_value()) << f.path;
    }
    EXPECT_EQ(sink.items.size(), count) << tree;
    if (tree == "maildir/notmuch/default") {
      std::map<std::string, std::size_t> per_folder;
      for (const auto &f : files) {
        ++per_folder[f.folder];
      }
      EXPECT_EQ(per_folder, (std::map<std::string, std::size_t>{{"", 26 + 2},
                                                                {"bar", 4 + 2},
                                                                {"bar/baz", 4 + 3},
                                                                {"foo", 5 + 1},
                                                                {"foo/baz", 4 + 2}}));
      std::size_t stray = 0;
      for (const auto &f : files) {
        stray += f.mark == "stray" ? 1U : 0U;
      }
      EXPECT_EQ(stray, 10U);
    }
  }
}

TEST(MaildirConnector, StrayAndAbandonedTmpFilesAreItemsOtherFilesAreSkippedAndCounted) {
  test::ScratchDir dir;
  fs::path md = dir / "Maildir";
  test::write_file(md / "cur" / "1.host:2,S", k_msg);
  test::write_file(md / "1700000000.stray.eml", k_msg);         // stray in the inbox folder
  test::write_file(md / ".Sent" / "cur" / "2.host:2,S", k_msg); // Maildir++ folder
  test::write_file(md / ".Sent" / "maildirfolder", "");
  test::write_file(md / ".Sent" / "draft-copy", k_msg);          // stray in .Sent
  test::write_file(md / "tmp" / "3.old", k_msg);                 // abandoned delivery
  age(md / "tmp" / "3.old", 72);
  test::write_file(md / "tmp" / "4.young", k_msg);               // delivery in progress
  age(md / "tmp" / "4.young", 35);
  test::write_file(md / "tmp" / "5.old-binary", std::string("\x00\x01\x02", 3));
  age(md / "tmp" / "5.old-binary", 72);
  fs::create_directories(md / "tmp" / "subdir");
  test::write_file(md / "dovecot-uidlist", "3 V1 N2\n1 a\n");
  test::write_file(md / "dovecot.index.cache", std::string("\x01\x00\x00\x00", 4));
  test::write_file(md / "dovecot-keywords", "0 Junk\n");
  test::write_file(md / "courierimapuiddb", "1 1234 5\n");
  test::write_file(md / "maildirsize", "1000000S,1000C\n");
  test::write_file(md / "subscriptions", "Sent\n");
  test::write_file(md / ".keep", "");
  test::write_file(md / "empty-file", "");
  test::write_file(md / "binary-blob", std::string("\x7f" "ELF\x00\x00", 6));
  test::write_file(md / "notes.txt", "Shopping list\nmilk\n");
  test::write_file(md / ".notmuch" / "xapian" / "postlist.glass", "Subject: no\n\nx\n");
  test::write_file(md / "courierimapkeywords" / ":list", "Junk\n");
  test::write_file(md / "archive" / "loose.eml", k_msg);  // a plain folder: no Maildir folder
  test::write_file(md / "new" / "sub" / "x", k_msg);       // a directory inside new/
  auto c = make(md.string(), dir.path().string(), "owner@example.com");
  MaildirSink sink;
  auto files = list(*c, sink);
  EXPECT_TRUE(sink.errors.empty()) << sink.errors.front().path << ": " << sink.errors.front().cause;
  std::map<std::string, std::pair<std::string, std::string>> listed; // rel path -> folder, mark
  for (const auto &f : files) {
    listed[fs::path(f.path).lexically_relative(md).string()] = {f.folder, f.mark};
    EXPECT_EQ(f.owner, "owner@example.com");
  }
  EXPECT_EQ(listed, (std::map<std::string, std::pair<std::string, std::string>>{
                        {"cur/1.host:2,S", {"", ""}},
                        {"1700000000.stray.eml", {"", "stray"}},
                        {".Sent/cur/2.host:2,S", {".Sent", ""}},
                        {".Sent/draft-copy", {".Sent", "stray"}},
                        {"tmp/3.old", {"", "tmp"}}}));
  EXPECT_EQ(rel_skips(sink, md), (std::map<std::string, std::string>{
                                     {".Sent/maildirfolder", "mua-file"},
                                     {"tmp/4.young", "in-delivery"},
                                     {"tmp/5.old-binary", "not-message"},
                                     {"tmp/subdir", "directory"},
                                     {"dovecot-uidlist", "mua-file"},
                                     {"dovecot.index.cache", "mua-file"},
                                     {"dovecot-keywords", "mua-file"},
                                     {"courierimapuiddb", "mua-file"},
                                     {"maildirsize", "mua-file"},
                                     {"subscriptions", "mua-file"},
                                     {".keep", "dotfile"},
                                     {"empty-file", "not-message"},
                                     {"binary-blob", "not-message"},
                                     {"notes.txt", "not-message"},
                                     {".notmuch", "mua-file"},
                                     {"courierimapkeywords", "mua-file"},
                                     {"archive/loose.eml", "outside-folder"},
                                     {"new/sub", "directory"}}));
  for (const auto &f : files) {
    ASSERT_TRUE(c->scan(f, 0, sink).has_value()) << f.path;
  }
  ASSERT_EQ(sink.items.size(), 5U);
  EXPECT_TRUE(sink.errors.empty());
  for (const Item &item : sink.items) {
    EXPECT_EQ(item.sha256, core::sha256_hex(k_msg));
    EXPECT_EQ(item.subject, "hello");
    EXPECT_TRUE(std::ranges::any_of(item.addresses, [](const RawAddress &a) {
      return a.role == Role::from && a.addr == "alice@example.com";
    })) << item.locator.path;
    const std::string rel = fs::path(item.locator.path).lexically_relative(md).string();
    EXPECT_EQ(item.locator.mark, listed.at(rel).second) << rel;
    EXPECT_EQ(item.locator.folder, listed.at(rel).first) << rel;
    EXPECT_EQ(item.locator.key(), item.locator.path);
  }
}

TEST(MaildirConnector, StateFolderNameHoldingAMaildirIsAFolder) {
  // An IMAP folder called "notmuch" is the Maildir++ folder .notmuch: cur/ makes it one.
  test::ScratchDir dir;
  fs::path md = dir / "Maildir";
  test::write_file(md / "cur" / "1:2,", k_msg);
  test::write_file(md / ".notmuch" / "cur" / "2:2,", k_msg);
  test::write_file(md / ".notmuch" / "loose", k_msg);
  auto c = make(md.string(), dir.path().string());
  MaildirSink sink;
  auto files = list(*c, sink);
  EXPECT_EQ(rel_paths(files, md), (std::vector<std::string>{".notmuch/cur/2:2,", ".notmuch/loose", "cur/1:2,"}));
  EXPECT_TRUE(sink.skips.empty());
}

TEST(MaildirConnector, LayoutDigestSeesTmpFilesAgeAndStrayFilesChange) {
  test::ScratchDir dir;
  fs::path md = dir / "Maildir";
  test::write_file(md / "cur" / "1:2,", k_msg);
  test::write_file(md / "stray", k_msg);
  test::write_file(md / "tmp" / "2.delivery", k_msg);
  test::write_file(md / "dovecot.index.log", "x");
  age(md / "tmp" / "2.delivery", 35);
  auto c = make(md.string(), dir.path().string());
  auto digest = [&] {
    auto d = c->layout_fingerprint();
    EXPECT_TRUE(d.has_value() && d->has_value());
    return d && *d ? (*d)->digest : std::string();
  };
  const std::string first = digest();
  EXPECT_EQ(digest(), first);
  // A mail server rewriting its state file in place changes nothing (no re-listing).
  test::write_file(md / "dovecot.index.log", "xy");
  EXPECT_EQ(digest(), first);
  // The delivery passes 36 hours: it becomes an item, so the layout differs.
  age(md / "tmp" / "2.delivery", 37);
  const std::string aged = digest();
  EXPECT_NE(aged, first);
  // A stray file edited in place (its folder's mtime does not change) differs too.
  struct stat st {};
  ASSERT_EQ(::stat(md.c_str(), &st), 0);
  test::write_file(md / "stray", k_msg + "more\n");
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, md.c_str(), times, 0), 0);
  EXPECT_NE(digest(), aged);
}

TEST(MaildirConnector, RootAndFolderDirOfStrayTmpAndCurItems) {
  auto locator = [](std::string path, std::string folder, std::string mark) {
    Locator l;
    l.source = "m";
    l.store = StoreKind::maildir;
    l.path = std::move(path);
    l.folder = std::move(folder);
    l.mark = std::move(mark);
    return l;
  };
  Locator cur = locator("/m/Maildir/.Sent/cur/1:2,S", ".Sent", "");
  EXPECT_EQ(maildir_folder_dir(cur), "/m/Maildir/.Sent");
  EXPECT_EQ(maildir_root(cur), "/m/Maildir");
  Locator stray = locator("/m/Maildir/.Sent/loose", ".Sent", "stray");
  EXPECT_EQ(maildir_folder_dir(stray), "/m/Maildir/.Sent");
  EXPECT_EQ(maildir_root(stray), "/m/Maildir");
  EXPECT_EQ(maildir_root(locator("/m/Maildir/loose", "", "stray")), "/m/Maildir");
  Locator nested_tmp = locator("/m/Maildir/foo/baz/tmp/1.x", "foo/baz", "tmp");
  EXPECT_EQ(maildir_folder_dir(nested_tmp), "/m/Maildir/foo/baz");
  EXPECT_EQ(maildir_root(nested_tmp), "/m/Maildir");
}
