// SPDX-License-Identifier: GPL-3.0-or-later
// The store writer's replacements (erasure by redaction, issue 18 item 3): a Maildir message
// under a new name with its flags, a message file under its own name, an mbox message in its
// place — each checked, crash-safe at every step, and idempotent so that erase can resume.
#include "connectors/store_writer.hpp"

#include "connectors/mbox.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace maildsar::connectors {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

const std::string k_old = "From: a@example.com\nTo: alice@example.com\n\nHello\n";
const std::string k_new = "From: a@example.com\nTo: x@redacted.invalid\n\nHello\n";

/** Every regular file under `root`, relative, sorted. */
std::vector<std::string> files_under(const fs::path &root) {
  std::vector<std::string> out;
  for (const auto &e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) {
      out.push_back(fs::relative(e.path(), root).string());
    }
  }
  std::ranges::sort(out);
  return out;
}

StepHook fail_at(std::string step) {
  return [step](std::string_view s) -> core::Status {
    if (s == step) {
      return core::fail(core::ErrorCode::internal, "injected fault");
    }
    return {};
  };
}

struct Maildir {
  fs::path root;
  fs::path file;
};

Maildir make_maildir(const ScratchDir &dir, bool with_tmp = true, std::string_view sub = "cur",
                     std::string_view name = "1700000300.M4P100.mx1:2,RS") {
  Maildir m{dir / "Maildir", {}};
  fs::create_directories(m.root / "cur");
  fs::create_directories(m.root / "new");
  if (with_tmp) {
    fs::create_directories(m.root / "tmp");
  }
  m.file = m.root / sub / name;
  test::write_file(m.file, k_old);
  ::chmod(m.file.c_str(), 0640);
  return m;
}

TEST(ReplaceMaildirMessage, NewNameSameFlagsOldGone) {
  ScratchDir dir;
  Maildir m = make_maildir(dir);
  auto r = replace_maildir_message(m.file.string(), core::sha256_hex(k_old), k_new, "1700000300.Rabc.maildsar", {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, (m.root / "cur" / "1700000300.Rabc.maildsar:2,RS").string());
  EXPECT_EQ(test::read_file(*r), k_new);
  EXPECT_EQ(files_under(m.root), (std::vector<std::string>{"cur/1700000300.Rabc.maildsar:2,RS"}));
  struct stat st {};
  ASSERT_EQ(::stat(r->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777U, 0640U) << "the mode of the message it replaces";
  // Asked again (a resumed run after the old file went): the new file, nothing changed.
  auto again = replace_maildir_message(m.file.string(), core::sha256_hex(k_old), k_new, "1700000300.Rabc.maildsar", {});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, *r);
  EXPECT_EQ(files_under(m.root), (std::vector<std::string>{"cur/1700000300.Rabc.maildsar:2,RS"}));
}

TEST(ReplaceMaildirMessage, InNewStaysInNewAndFollowsAFlagRename) {
  ScratchDir dir;
  Maildir m = make_maildir(dir, true, "new", "1700000100.M2P100.mx1");
  auto r = replace_maildir_message(m.file.string(), core::sha256_hex(k_old), k_new, "1700000100.Rdef.maildsar", {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(files_under(m.root), (std::vector<std::string>{"new/1700000100.Rdef.maildsar"}));

  ScratchDir dir2;
  Maildir m2 = make_maildir(dir2);
  // The client set a flag since planning: the planned name is gone, the message is the same.
  const fs::path renamed = m2.root / "cur" / "1700000300.M4P100.mx1:2,FRS";
  fs::rename(m2.file, renamed);
  auto r2 = replace_maildir_message(m2.file.string(), core::sha256_hex(k_old), k_new, "1700000300.Rabc.maildsar", {});
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_EQ(files_under(m2.root), (std::vector<std::string>{"cur/1700000300.Rabc.maildsar:2,FRS"}));
}

TEST(ReplaceMaildirMessage, WithoutTmpLeavesNoTempAndCreatesNoFolder) {
  ScratchDir dir;
  Maildir m = make_maildir(dir, false);
  auto r = replace_maildir_message(m.file.string(), core::sha256_hex(k_old), k_new, "1700000300.Rabc.maildsar", {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(fs::exists(m.root / "tmp"));
  EXPECT_EQ(files_under(m.root), (std::vector<std::string>{"cur/1700000300.Rabc.maildsar:2,RS"}));
}

TEST(ReplaceMaildirMessage, ChangedMessageIsStaleAndUntouched) {
  ScratchDir dir;
  Maildir m = make_maildir(dir);
  auto r = replace_maildir_message(m.file.string(), core::sha256_hex("other"), k_new, "1700000300.Rabc.maildsar", {});
  ASSERT_FALSE(r);
  EXPECT_TRUE(is_stale(r.error())) << r.error().message;
  EXPECT_EQ(files_under(m.root), (std::vector<std::string>{"cur/1700000300.M4P100.mx1:2,RS"}));
  EXPECT_EQ(test::read_file(m.file), k_old);
  auto gone = replace_maildir_message((m.root / "cur" / "9.x:2,").string(), core::sha256_hex(k_old), k_new,
                                      "9.Rabc.maildsar", {});
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, core::ErrorCode::no_input);
  auto bad = replace_maildir_message(m.file.string(), core::sha256_hex(k_old), k_new, "../x", {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, core::ErrorCode::data);
}

TEST(ReplaceMaildirMessage, FaultAtEachStepConverges) {
  for (const char *step : {"maildir:temp-synced", "maildir:linked", "maildir:old-unlinked"}) {
    for (bool with_tmp : {true, false}) {
      ScratchDir dir;
      Maildir m = make_maildir(dir, with_tmp);
      auto r = replace_maildir_message(m.file.string(), core::sha256_hex(k_old), k_new, "1700000300.Rabc.maildsar",
                                       fail_at(step));
      ASSERT_FALSE(r) << step;
      // Never neither: the old file, the new file, or both (then both complete).
      const std::vector<std::string> now = files_under(m.root);
      const bool old_there = fs::exists(m.file);
      const bool new_there = fs::exists(m.root / "cur" / "1700000300.Rabc.maildsar:2,RS");
      EXPECT_TRUE(old_there || new_there) << step;
      if (new_there) {
        EXPECT_EQ(test::read_file(m.root / "cur" / "1700000300.Rabc.maildsar:2,RS"), k_new) << step;
      }
      auto again = replace_maildir_message(m.file.string(), core::sha256_hex(k_old), k_new,
                                           "1700000300.Rabc.maildsar", {});
      ASSERT_TRUE(again) << step << ": " << again.error().message;
      EXPECT_EQ(files_under(m.root), (std::vector<std::string>{"cur/1700000300.Rabc.maildsar:2,RS"}))
          << step << " with_tmp=" << with_tmp;
    }
  }
}

TEST(ReplaceMaildirMessage, StrayFileIsReplacedUnderItsName) {
  ScratchDir dir;
  Maildir m = make_maildir(dir);
  const fs::path stray = m.root / "stray-message";
  test::write_file(stray, k_old);
  auto r = replace_maildir_message(stray.string(), core::sha256_hex(k_old), k_new, "1.Rabc.maildsar", {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, stray.string());
  EXPECT_EQ(test::read_file(stray), k_new);
}

TEST(ReplaceMessageFile, SameNameNewContentsCheckedFirst) {
  ScratchDir dir;
  const fs::path file = dir / "spam-abc";
  test::write_file(file, k_old);
  ::chmod(file.c_str(), 0604);
  auto stale = replace_message_file(file.string(), core::sha256_hex("other"), k_new, {});
  ASSERT_FALSE(stale);
  EXPECT_TRUE(is_stale(stale.error()));
  EXPECT_EQ(test::read_file(file), k_old);
  for (const char *step : {"file:verified", "file:temp-synced"}) {
    auto r = replace_message_file(file.string(), core::sha256_hex(k_old), k_new, fail_at(step));
    ASSERT_FALSE(r) << step;
    EXPECT_EQ(test::read_file(file), k_old) << step;
  }
  ASSERT_TRUE(replace_message_file(file.string(), core::sha256_hex(k_old), k_new, {}));
  EXPECT_EQ(test::read_file(file), k_new);
  EXPECT_EQ(files_under(dir.path()), (std::vector<std::string>{"spam-abc"})) << "no temp file left";
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777U, 0604U);
  auto gone = replace_message_file((dir / "nothing").string(), core::sha256_hex(k_old), k_new, {});
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, core::ErrorCode::no_input);
}

TEST(StoreWriterReplace, MboxMessageReplacedInPlaceAmongOthers) {
  ScratchDir dir;
  const std::string m0 = "From a@example.com Mon Oct  2 09:00:00 2023\nFrom: a@example.com\n\none\n\n";
  const std::string m1 = "From b@example.com Mon Oct  2 09:00:00 2023\nFrom: b@example.com\nCc: alice@example.com\n\ntwo\n\n";
  const std::string m2 = "From c@example.com Mon Oct  2 09:00:00 2023\nFrom: c@example.com\n\nthree\n\n";
  const std::string r1 = "From b@example.com Mon Oct  2 09:00:00 2023\nFrom: b@example.com\nCc: [erased]\n\ntwo\n\n";
  const std::string path = (dir / "box").string();
  for (const char *step : {"mbox:locked", "mbox:temp-written", "mbox:temp-synced", "mbox:renamed", ""}) {
    test::write_file(path, m0 + m1 + m2);
    std::vector<MboxCut> cuts{MboxCut{m0.size(), m1.size(), core::sha256_hex(m1), r1},
                              MboxCut{m0.size() + m1.size(), m2.size(), core::sha256_hex(m2), std::nullopt}};
    auto r = rewrite_mbox(path, cuts, std::string(step).empty() ? StepHook{} : fail_at(step));
    if (!std::string(step).empty()) {
      ASSERT_FALSE(r) << step;
      const std::string now = test::read_file(path);
      EXPECT_TRUE(now == m0 + m1 + m2 || now == m0 + r1) << step;
      r = rewrite_mbox(path, cuts, {});
    }
    ASSERT_TRUE(r) << step << ": " << r.error().message;
    EXPECT_EQ(test::read_file(path), m0 + r1) << step << ": one message replaced, the next removed";
    EXPECT_EQ(files_under(dir.path()), (std::vector<std::string>{"box"})) << step;
  }
}

} // namespace
} // namespace maildsar::connectors
