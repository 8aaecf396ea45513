// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/sqlite.hpp"

#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

using namespace maildsar::core;
using namespace maildsar::core::sqlite;
using maildsar::test::ScratchDir;

TEST(Sqlite, CreatesFileWithMode0600) {
  ScratchDir dir;
  std::string path = (dir / "state.sqlite3").string();
  auto db = Db::open(path, Writable::yes);
  ASSERT_TRUE(db) << db.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
}

TEST(Sqlite, ReadOnlyOpenOfMissingFileIsNoInput) {
  ScratchDir dir;
  auto db = Db::open((dir / "missing.sqlite3").string(), Writable::no);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, ErrorCode::no_input);
}

TEST(Sqlite, BindStepAndColumns) {
  ScratchDir dir;
  auto db = Db::open((dir / "t.sqlite3").string(), Writable::yes);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t(i INTEGER, s TEXT, b BLOB, n TEXT)"));
  auto ins = db->prepare("INSERT INTO t(i, s, b, n) VALUES (?1, ?2, ?3, ?4)");
  ASSERT_TRUE(ins) << ins.error().message;
  std::vector<std::byte> blob{std::byte{0}, std::byte{0xff}, std::byte{7}};
  ASSERT_TRUE(ins->bind(1, std::int64_t{-42}));
  ASSERT_TRUE(ins->bind(2, std::string("h\0llo", 5)));
  ASSERT_TRUE(ins->bind_blob(3, blob));
  ASSERT_TRUE(ins->bind(4, Null{}));
  ASSERT_TRUE(ins->run());
  EXPECT_EQ(db->changes(), 1);
  EXPECT_EQ(db->last_insert_rowid(), 1);
  // Reuse after reset.
  ASSERT_TRUE(ins->bind(1, std::uint64_t{7}));
  ASSERT_TRUE(ins->bind(2, "x"));
  ASSERT_TRUE(ins->run());

  auto sel = db->prepare("SELECT i, s, b, n FROM t ORDER BY rowid");
  ASSERT_TRUE(sel);
  auto row = sel->step();
  ASSERT_TRUE(row && *row);
  EXPECT_EQ(sel->column_int64(0), -42);
  EXPECT_EQ(sel->column_text(1), std::string("h\0llo", 5));
  EXPECT_EQ(sel->column_blob(2), blob);
  EXPECT_TRUE(sel->column_is_null(3));
  EXPECT_EQ(sel->column_count(), 4);
  row = sel->step();
  ASSERT_TRUE(row && *row);
  EXPECT_EQ(sel->column_uint64(0), 7U);
  EXPECT_TRUE(sel->column_is_null(2));
  row = sel->step();
  ASSERT_TRUE(row);
  EXPECT_FALSE(*row);
}

TEST(Sqlite, BadSqlIsAnErrorNamingTheFile) {
  ScratchDir dir;
  std::string path = (dir / "t.sqlite3").string();
  auto db = Db::open(path, Writable::yes);
  ASSERT_TRUE(db);
  auto stmt = db->prepare("SELEKT 1");
  ASSERT_FALSE(stmt);
  EXPECT_NE(stmt.error().message.find(path), std::string::npos) << stmt.error().message;
}

TEST(Sqlite, ConstraintViolationIsDataError) {
  ScratchDir dir;
  auto db = Db::open((dir / "t.sqlite3").string(), Writable::yes);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t(k TEXT PRIMARY KEY)"));
  auto ins = db->prepare("INSERT INTO t(k) VALUES (?1)");
  ASSERT_TRUE(ins);
  ASSERT_TRUE(ins->bind(1, "a"));
  ASSERT_TRUE(ins->run());
  ASSERT_TRUE(ins->bind(1, "a"));
  auto r = ins->run();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::data);
}

TEST(Sqlite, TransactionRollsBackUnlessCommitted) {
  ScratchDir dir;
  auto db = Db::open((dir / "t.sqlite3").string(), Writable::yes);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t(i INTEGER)"));
  auto count = [&] {
    auto s = db->prepare("SELECT count(*) FROM t");
    EXPECT_TRUE(s);
    EXPECT_TRUE(s->step());
    return s->column_int64(0);
  };
  {
    auto tx = Transaction::begin(*db);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (1)"));
    EXPECT_EQ(count(), 1);
  } // rolled back
  EXPECT_EQ(count(), 0);
  {
    auto tx = Transaction::begin(*db);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (2)"));
    ASSERT_TRUE(tx->commit());
    EXPECT_FALSE(tx->commit()); // already finished
  }
  EXPECT_EQ(count(), 1);
}

TEST(Sqlite, ForeignKeysAreEnforced) {
  ScratchDir dir;
  auto db = Db::open((dir / "t.sqlite3").string(), Writable::yes);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE p(id INTEGER PRIMARY KEY);"
                       "CREATE TABLE c(p INTEGER REFERENCES p(id))"));
  EXPECT_FALSE(db->exec("INSERT INTO c VALUES (5)"));
}

TEST(Sqlite, MigrationsAreNumberedByUserVersion) {
  ScratchDir dir;
  std::string path = (dir / "t.sqlite3").string();
  {
    auto db = Db::open(path, Writable::yes);
    ASSERT_TRUE(db);
    EXPECT_EQ(*db->user_version(), 0);
    ASSERT_TRUE(db->migrate({"CREATE TABLE a(x)"}));
    EXPECT_EQ(*db->user_version(), 1);
  }
  {
    auto db = Db::open(path, Writable::yes);
    ASSERT_TRUE(db);
    // Migration 1 is not re-run (it would fail: table a exists); 2 is applied.
    ASSERT_TRUE(db->migrate({"CREATE TABLE a(x)", "CREATE TABLE b(y)"}));
    EXPECT_EQ(*db->user_version(), 2);
    // A failing migration leaves the version alone.
    auto r = db->migrate({"CREATE TABLE a(x)", "CREATE TABLE b(y)", "CREATE TABLE c(; bad"});
    EXPECT_FALSE(r);
    EXPECT_EQ(*db->user_version(), 2);
    // A database newer than the code is refused.
    auto older = db->migrate({"CREATE TABLE a(x)"});
    ASSERT_FALSE(older);
    EXPECT_EQ(older.error().code, ErrorCode::data);
  }
}
