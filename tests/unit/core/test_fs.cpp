// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/fs.hpp"
#include "core/hash.hpp"

#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

using namespace maildsar::core;
using maildsar::test::ScratchDir;

TEST(Fs, AtomicWriteCreatesPrivateFile) {
  ScratchDir dir;
  auto path = (dir / "out.json").string();
  ASSERT_TRUE(write_file_atomic(path, "one"));
  ASSERT_TRUE(write_file_atomic(path, "two"));
  EXPECT_EQ(maildsar::test::read_file(path), "two");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  // no temp files left behind
  std::size_t n = 0;
  for ([[maybe_unused]] auto &e : std::filesystem::directory_iterator(dir.path())) {
    ++n;
  }
  EXPECT_EQ(n, 1U);
}

TEST(Fs, AtomicWriteIntoMissingDirFails) {
  ScratchDir dir;
  auto r = write_file_atomic((dir / "no/such/dir/f").string(), "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::cant_create);
}

TEST(Fs, OpenReadRefusesSymlink) {
  ScratchDir dir;
  maildsar::test::write_file(dir / "real", "data");
  std::filesystem::create_symlink(dir / "real", dir / "link");
  EXPECT_TRUE(open_read((dir / "real").string()));
  auto r = open_read((dir / "link").string());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("symbolic link"), std::string::npos);
  auto missing = open_read((dir / "missing").string());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::no_input);
}

TEST(Fs, ReadRangeAndWholeFile) {
  ScratchDir dir;
  maildsar::test::write_file(dir / "f", "0123456789");
  auto fd = open_read((dir / "f").string());
  ASSERT_TRUE(fd);
  EXPECT_EQ(*read_range(fd->get(), 3, 4, "f"), "3456");
  EXPECT_EQ(*read_range(fd->get(), 8, 10, "f"), "89");
  EXPECT_EQ(*read_file((dir / "f").string()), "0123456789");
  EXPECT_FALSE(read_file((dir / "f").string(), 5));
  EXPECT_FALSE(read_file(dir.path().string()));
}

TEST(Fs, PrivateDirAndLock) {
  ScratchDir dir;
  auto state = (dir / "state/sub").string();
  ASSERT_TRUE(ensure_private_dir(state));
  struct stat st {};
  ASSERT_EQ(::stat(state.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700U);
  auto lock = FileLock::try_acquire(state + "/lock", "hint");
  ASSERT_TRUE(lock);
  // flock locks are per open file description: a second acquisition must fail
  auto second = FileLock::try_acquire(state + "/lock", "another run?");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::index_locked);
  EXPECT_EQ(second.error().hint, "another run?");
}

TEST(Fs, TempDirRemovedOnDestruction) {
  std::filesystem::path p;
  {
    auto t = TempDir::create("maildsar-fs-test");
    ASSERT_TRUE(t);
    p = t->path();
    maildsar::test::write_file(p / "a/b", "x");
    EXPECT_TRUE(std::filesystem::exists(p / "a/b"));
  }
  EXPECT_FALSE(std::filesystem::exists(p));
}

TEST(Fs, NewFileAppearsOnlyWhenCommittedAndNeverReplaces) {
  ScratchDir dir;
  const std::string path = (dir / "new.mbox").string();
  {
    auto f = NewFile::create(path, 0640);
    ASSERT_TRUE(f) << f.error().message;
    ASSERT_TRUE(f->write("From a\n"));
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_TRUE(std::filesystem::exists(f->temp_path()));
    // destroyed uncommitted: the temp file goes, nothing appears
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()), 0);

  auto f = NewFile::create(path, 0640);
  ASSERT_TRUE(f);
  ASSERT_TRUE(f->write("one"));
  ASSERT_TRUE(f->commit());
  EXPECT_EQ(maildsar::test::read_file(path), "one");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640U);

  auto g = NewFile::create(path);
  ASSERT_TRUE(g);
  ASSERT_TRUE(g->write("two"));
  auto refused = g->commit();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::cant_create);
  EXPECT_EQ(maildsar::test::read_file(path), "one");
}

TEST(Fs, MoveFileDurablyNeverOverwritesAndFinishesAnInterruptedMove) {
  ScratchDir dir;
  const auto from = dir / "store/a.pst";
  const auto to = dir / "originals/a-1.pst";
  maildsar::test::write_file(from, "PST bytes");
  std::filesystem::create_directories(to.parent_path());
  ASSERT_TRUE(move_file_durably(from.string(), to.string()));
  EXPECT_FALSE(std::filesystem::exists(from));
  EXPECT_EQ(maildsar::test::read_file(to), "PST bytes");
  // Gone source: no_input.
  auto gone = move_file_durably(from.string(), to.string());
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::no_input);
  // A complete copy already at the destination (crash after copy, before unlink): the source goes.
  maildsar::test::write_file(from, "PST bytes");
  ASSERT_TRUE(move_file_durably(from.string(), to.string()));
  EXPECT_FALSE(std::filesystem::exists(from));
  // Other contents at the destination: refused, both kept.
  maildsar::test::write_file(from, "other PST");
  auto clash = move_file_durably(from.string(), to.string());
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().code, ErrorCode::cant_create);
  EXPECT_EQ(maildsar::test::read_file(from), "other PST");
  EXPECT_EQ(maildsar::test::read_file(to), "PST bytes");
  // A symlink is never moved.
  std::filesystem::remove(from);
  std::filesystem::create_symlink(to, from);
  auto link = move_file_durably(from.string(), (dir / "originals/b.pst").string());
  ASSERT_FALSE(link);
  EXPECT_TRUE(std::filesystem::is_symlink(from));
  EXPECT_EQ(*sha256_file(to.string()), sha256_hex("PST bytes"));
}
