// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/fs.hpp"

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
