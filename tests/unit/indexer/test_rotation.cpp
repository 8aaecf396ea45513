// SPDX-License-Identifier: GPL-3.0-or-later
// Rotated delivery logs (mail.log -> mail.log.1 -> mail.log.2.gz, copytruncate) through
// run_index with the real maillog connector: no duplicates, locators at the current file.
#include "connectors/log_range.hpp"
#include "connectors/maillog.hpp"
#include "core/hash.hpp"
#include "connectors/maillog/gz_access.hpp"
#include "core/sqlite.hpp"
#include "indexer/catalog.hpp"
#include "indexer/document.hpp"
#include "indexer/index_store.hpp"
#include "indexer/indexer.hpp"
#include "indexer/log_block.hpp"
#include "indexer/schema.hpp"
#include "query/query.hpp"
#include "tests/log_needle_sink.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>
#include <optional>
#include <sstream>

using namespace maildsar;
using maildsar::test::ScratchDir;
namespace fs = std::filesystem;

namespace {

std::string qid(int k) { return fmt::format("{:010X}", 0xA0000 + k); }
std::string user(int k) { return fmt::format("user{}@example.com", k); }

/** Postfix lines of transactions first..first+count-1, interleaved two by two. */
std::string txns(int first, int count) {
  std::string out;
  for (int k = first; k < first + count; k += 2) {
    int pair = std::min(2, first + count - k);
    auto each = [&](auto &&line) {
      for (int j = k; j < k + pair; ++j) {
        out += line(j);
      }
    };
    each([](int j) {
      return fmt::format("Nov 14 10:{:02}:01 mx postfix/smtpd[{}]: {}: client=c{}.example[192.0.2.{}]\n",
                         j % 60, 100 + j, qid(j), j, j % 250 + 1);
    });
    each([](int j) {
      return fmt::format("Nov 14 10:{:02}:02 mx postfix/qmgr[7]: {}: from=<sender{}@example.org>, "
                         "size={}, nrcpt=1 (queue active)\n",
                         j % 60, qid(j), j, 1000 + j);
    });
    each([](int j) {
      return fmt::format("Nov 14 10:{:02}:03 mx postfix/smtp[8]: {}: to=<{}>, relay=mx.example[10.0.0.2]:25, "
                         "status=sent (250 ok)\n",
                         j % 60, qid(j), user(j));
    });
    each([](int j) { return fmt::format("Nov 14 10:{:02}:04 mx postfix/qmgr[7]: {}: removed\n", j % 60, qid(j)); });
  }
  return out;
}

std::string read_all(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void append_to(const fs::path &p, const std::string &s) {
  std::ofstream out(p, std::ios::app | std::ios::binary);
  out << s;
}

void write_gz(const fs::path &p, const std::string &data) {
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, data.data(), static_cast<unsigned>(data.size())), static_cast<int>(data.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

struct Where {
  std::string path;
  std::vector<std::uint64_t> lines;
  bool operator==(const Where &) const = default;
};

std::ostream &operator<<(std::ostream &os, const Where &w) {
  os << w.path << " [";
  for (auto l : w.lines) {
    os << l << ' ';
  }
  return os << ']';
}

struct LogEstate {
  ScratchDir dir;
  core::Config config;

  LogEstate() {
    config.state_dir = (dir / "state").string();
    core::SourceConfig src;
    src.name = "postfix";
    src.type = "maillog";
    src.format = "postfix";
    src.path = (dir / "logs" / "mail.log*").string();
    config.sources.push_back(src);
    fs::create_directories(dir / "logs");
  }
  [[nodiscard]] fs::path log(const std::string &name) const { return dir / "logs" / name; }

  core::Result<index::IndexSummary> run(index::IndexOptions opts = {}) {
    opts.threads = 2;
    return index::run_index(config, opts);
  }
  index::SourceSummary ok_run(index::IndexOptions opts = {}) {
    auto r = run(std::move(opts));
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    if (r) {
      EXPECT_EQ(r->errors, 0U);
    }
    return r && !r->sources.empty() ? r->sources[0] : index::SourceSummary{};
  }
  // The log index keeps blocks of transactions (indexer/log_block.hpp): these helpers count and
  // locate transactions, through the query side, which re-reads the blocks.
  /** Transactions in the index (with `term`: those holding it; an XFILE: term: the file's). */
  std::uint64_t docs(const std::string &term = {}) {
    if (term.starts_with("XID:")) {
      return where(term).size();
    }
    auto store = index::IndexStore::open(index::index_path(config), index::OpenMode::read_only);
    EXPECT_TRUE(store);
    if (!store) {
      return 0;
    }
    auto data = store->documents_data(term.empty() ? index::schema::log_block_term() : term);
    EXPECT_TRUE(data);
    std::uint64_t n = 0;
    for (const std::string &d : data ? *data : std::vector<std::string>{}) {
      auto block = index::parse_log_block(d);
      EXPECT_TRUE(block);
      n += block ? block->first_lines.size() : 0;
    }
    return n;
  }
  /** Where the index says each transaction holding `term` (an "XID:" address term) lives. */
  std::vector<Where> where(const std::string &term) {
    std::vector<Where> out;
    query::SubjectProfile subject;
    subject.emails.push_back(term.substr(4));
    auto hits = query::find(config, subject);
    EXPECT_TRUE(hits) << (hits ? "" : hits.error().message);
    if (!hits) {
      return out;
    }
    for (const query::Hit &hit : *hits) {
      out.push_back(Where{hit.locator.path, hit.locator.lines});
      // The item id is that of its (moved) locator.
      EXPECT_EQ(hit.id, core::sha256_hex(hit.locator.key())) << hit.locator.key();
    }
    return out;
  }
  std::optional<Where> where_user(int k) {
    auto w = where("XID:" + user(k));
    EXPECT_EQ(w.size(), 1U) << user(k);
    return w.size() == 1 ? std::optional<Where>(w[0]) : std::nullopt;
  }
  std::uint64_t file_docs(const std::string &name) {
    return docs(index::schema::file_term("postfix", log(name).string()));
  }
  std::size_t catalog_files() {
    auto cat = index::Catalog::open(index::catalog_path(config));
    EXPECT_TRUE(cat);
    auto id = cat->source_id("postfix", "maillog");
    auto files = cat->files(*id);
    return files->size();
  }
  /** Every transaction in [first, first+count) is in the index exactly once, in file `name`. */
  void expect_in(const std::string &name, int first, int count) {
    for (int k = first; k < first + count; ++k) {
      auto w = where_user(k);
      if (w) {
        EXPECT_EQ(w->path, log(name).string()) << user(k);
      }
    }
  }
};

} // namespace

TEST(Rotation, ContentProbeSeesThroughGzip) {
  ScratchDir dir;
  std::string text = txns(0, 24);
  ASSERT_GT(text.size(), 8192U);
  test::write_file(dir / "plain", text);
  write_gz(dir / "packed", text);
  auto a = connectors::probe_content((dir / "plain").string(), 5000);
  auto b = connectors::probe_content((dir / "packed").string(), 5000);
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(a->compressed);
  EXPECT_TRUE(b->compressed);
  EXPECT_EQ(a->size, text.size());
  EXPECT_EQ(b->size, text.size());
  EXPECT_EQ(a->head, text.substr(0, 4096));
  EXPECT_EQ(b->head, a->head);
  EXPECT_EQ(a->mark_fingerprint, core::sha256_hex(text.substr(5000 - 4096, 4096)));
  EXPECT_EQ(b->mark_fingerprint, a->mark_fingerprint);
  EXPECT_EQ(b->end_fingerprint, core::sha256_hex(text.substr(text.size() - 4096)));
  EXPECT_EQ(a->end_fingerprint, b->end_fingerprint);
  auto past = connectors::probe_content((dir / "packed").string(), text.size() + 1);
  ASSERT_TRUE(past);
  EXPECT_TRUE(past->mark_fingerprint.empty());
  EXPECT_EQ(*connectors::content_fingerprint((dir / "packed").string()),
            core::sha256_hex(text.substr(0, 4096)));
  auto missing = connectors::probe_content((dir / "nope").string(), 1);
  EXPECT_FALSE(missing);
}

TEST(Rotation, GrowingLogIsReadFromItsOldEnd) {
  LogEstate e;
  test::write_file(e.log("mail.log"), txns(0, 6));
  EXPECT_EQ(e.ok_run().new_items, 6U);
  auto before = e.where_user(5);
  append_to(e.log("mail.log"), txns(6, 2));
  auto s = e.ok_run();
  EXPECT_EQ(s.new_items, 2U);
  EXPECT_EQ(s.changed, 0U);
  EXPECT_EQ(s.removed, 0U);
  EXPECT_EQ(s.moved, 0U);
  EXPECT_EQ(s.items, 8U);
  EXPECT_EQ(e.docs(), 8U);
  EXPECT_EQ(e.where_user(5), before);
  // 6 transactions of 4 lines: the new ones start at line 25, interleaved.
  auto w6 = e.where_user(6);
  ASSERT_TRUE(w6);
  EXPECT_EQ(w6->lines, (std::vector<std::uint64_t>{25, 27, 29, 31}));
  // Nothing changed: nothing to do.
  s = e.ok_run();
  EXPECT_EQ(s.new_items + s.changed + s.removed + s.moved, 0U);
}

TEST(Rotation, RenameAndGzipRotationMovesDocuments) {
  LogEstate e;
  test::write_file(e.log("mail.log"), txns(0, 16));
  ASSERT_GT(fs::file_size(e.log("mail.log")), 4096U);
  auto s = e.ok_run();
  EXPECT_EQ(s.new_items, 16U);
  std::map<int, Where> first;
  for (int k = 0; k < 16; ++k) {
    first[k] = *e.where_user(k);
  }

  // logrotate "create": mail.log -> mail.log.1, a fresh mail.log.
  fs::rename(e.log("mail.log"), e.log("mail.log.1"));
  test::write_file(e.log("mail.log"), txns(16, 4));
  s = e.ok_run();
  EXPECT_EQ(s.moved, 16U);
  EXPECT_EQ(s.new_items, 4U);
  EXPECT_EQ(s.changed, 0U);
  EXPECT_EQ(s.removed, 0U);
  EXPECT_EQ(s.items, 20U);
  EXPECT_EQ(e.docs(), 20U);
  EXPECT_EQ(e.file_docs("mail.log.1"), 16U);
  EXPECT_EQ(e.file_docs("mail.log"), 4U);
  for (int k = 0; k < 16; ++k) {
    Where expected{e.log("mail.log.1").string(), first[k].lines};
    EXPECT_EQ(e.where_user(k), expected);
  }
  e.expect_in("mail.log", 16, 4);
  std::map<int, Where> second;
  for (int k = 16; k < 20; ++k) {
    second[k] = *e.where_user(k);
  }

  // Next rotation, compressed: .1 -> .2.gz, mail.log -> .1, a fresh mail.log.
  write_gz(e.log("mail.log.2.gz"), read_all(e.log("mail.log.1")));
  fs::remove(e.log("mail.log.1"));
  fs::rename(e.log("mail.log"), e.log("mail.log.1"));
  test::write_file(e.log("mail.log"), txns(20, 2));
  s = e.ok_run();
  EXPECT_EQ(s.moved, 20U);
  EXPECT_EQ(s.new_items, 2U);
  EXPECT_EQ(s.changed + s.removed, 0U);
  EXPECT_EQ(s.items, 22U);
  EXPECT_EQ(e.docs(), 22U);
  for (int k = 0; k < 16; ++k) {
    Where expected{e.log("mail.log.2.gz").string(), first[k].lines};
    EXPECT_EQ(e.where_user(k), expected);
  }
  for (int k = 16; k < 20; ++k) {
    Where expected{e.log("mail.log.1").string(), second[k].lines};
    EXPECT_EQ(e.where_user(k), expected);
  }
  e.expect_in("mail.log", 20, 2);
  EXPECT_EQ(e.catalog_files(), 3U);

  // Unchanged (the .gz too): skipped by stat.
  s = e.ok_run();
  EXPECT_EQ(s.new_items + s.changed + s.removed + s.moved, 0U);

  // rotate 2: the oldest (.2.gz) is dropped, .1 -> .2.gz, mail.log -> .1.
  write_gz(e.log("mail.log.2.gz"), read_all(e.log("mail.log.1")));
  fs::rename(e.log("mail.log"), e.log("mail.log.1"));
  test::write_file(e.log("mail.log"), txns(22, 2));
  s = e.ok_run();
  EXPECT_EQ(s.moved, 6U);
  EXPECT_EQ(s.removed, 16U);
  EXPECT_EQ(s.new_items, 2U);
  EXPECT_EQ(s.changed, 0U);
  EXPECT_EQ(s.items, 8U);
  EXPECT_EQ(e.docs(), 8U);
  EXPECT_EQ(e.docs("XID:" + user(3)), 0U);
  e.expect_in("mail.log.2.gz", 16, 4);
  e.expect_in("mail.log.1", 20, 2);
  e.expect_in("mail.log", 22, 2);
  EXPECT_EQ(e.catalog_files(), 3U);
}

TEST(Rotation, LogThatGrewBeforeRotationReadsOnlyTheRest) {
  LogEstate e;
  test::write_file(e.log("mail.log"), txns(0, 8));
  e.ok_run();
  auto w0 = *e.where_user(0);
  append_to(e.log("mail.log"), txns(8, 2)); // written after the last index ...
  fs::rename(e.log("mail.log"), e.log("mail.log.1")); // ... then rotated
  test::write_file(e.log("mail.log"), txns(10, 1));
  auto s = e.ok_run();
  EXPECT_EQ(s.moved, 8U);
  EXPECT_EQ(s.new_items, 3U);
  EXPECT_EQ(s.changed + s.removed, 0U);
  EXPECT_EQ(e.docs(), 11U);
  EXPECT_EQ(e.where_user(0), (Where{e.log("mail.log.1").string(), w0.lines}));
  auto w8 = e.where_user(8);
  ASSERT_TRUE(w8);
  EXPECT_EQ(*w8, (Where{e.log("mail.log.1").string(), {33, 35, 37, 39}}));
  e.expect_in("mail.log", 10, 1);

  // Grown again before being compressed: a compressed file cannot be read from an offset, so it
  // is read in full; its items are reported as changed, nothing is duplicated.
  append_to(e.log("mail.log.1"), txns(11, 1));
  write_gz(e.log("mail.log.2.gz"), read_all(e.log("mail.log.1")));
  fs::remove(e.log("mail.log.1"));
  s = e.ok_run();
  EXPECT_EQ(s.changed, 10U);
  EXPECT_EQ(s.new_items, 1U);
  EXPECT_EQ(s.removed, 0U);
  EXPECT_EQ(e.docs(), 12U);
  e.expect_in("mail.log.2.gz", 0, 10);
  e.expect_in("mail.log.2.gz", 11, 1);
  e.expect_in("mail.log", 10, 1);
}

TEST(Rotation, CopyTruncateKeepsTheOldContentAndRereadsTheLog) {
  for (int fresh : {2, 30}) { // the new mail.log is shorter / longer than the old one
    SCOPED_TRACE(fresh);
    LogEstate e;
    test::write_file(e.log("mail.log"), txns(0, 10));
    e.ok_run();
    std::map<int, Where> first;
    for (int k = 0; k < 10; ++k) {
      first[k] = *e.where_user(k);
    }
    fs::copy_file(e.log("mail.log"), e.log("mail.log.1"));
    {
      std::ofstream trunc(e.log("mail.log"), std::ios::trunc | std::ios::binary); // same inode
      trunc << txns(100, fresh);
    }
    auto s = e.ok_run();
    EXPECT_EQ(s.moved, 10U);
    EXPECT_EQ(s.new_items, static_cast<std::uint64_t>(fresh));
    EXPECT_EQ(s.changed + s.removed, 0U);
    EXPECT_EQ(e.docs(), static_cast<std::uint64_t>(10 + fresh));
    for (int k = 0; k < 10; ++k) {
      EXPECT_EQ(e.where_user(k), (Where{e.log("mail.log.1").string(), first[k].lines}));
    }
    e.expect_in("mail.log", 100, fresh);
    s = e.ok_run();
    EXPECT_EQ(s.new_items + s.changed + s.removed + s.moved, 0U);
  }
}

TEST(Rotation, UnrelatedLogsAreNotTakenForRotatedOnes) {
  LogEstate e;
  test::write_file(e.log("mail.log"), txns(0, 16));
  e.ok_run();
  // Another file with other content is new.
  test::write_file(e.log("mail.log.other"), txns(50, 3));
  auto s = e.ok_run();
  EXPECT_EQ(s.new_items, 3U);
  EXPECT_EQ(s.moved, 0U);
  // The same first 4096 bytes but different afterwards: not the same data.
  std::string text = read_all(e.log("mail.log"));
  std::string other = text.substr(0, 5000);
  other.resize(other.rfind('\n') + 1);
  other += txns(60, 4);
  fs::remove(e.log("mail.log"));
  test::write_file(e.log("mail.log.1"), other);
  s = e.ok_run();
  EXPECT_EQ(s.moved, 0U);
  EXPECT_EQ(s.removed, 16U);
  EXPECT_GT(s.new_items, 4U);
  e.expect_in("mail.log.1", 60, 4);
  for (int k = 0; k < 16; ++k) {
    EXPECT_LE(e.docs("XID:" + user(k)), 1U);
  }
}

TEST(Rotation, FullRunAfterRotationGivesTheSameIndex) {
  LogEstate e;
  test::write_file(e.log("mail.log"), txns(0, 6));
  e.ok_run();
  fs::rename(e.log("mail.log"), e.log("mail.log.1"));
  test::write_file(e.log("mail.log"), txns(6, 2));
  e.ok_run();
  std::map<int, Where> moved;
  for (int k = 0; k < 8; ++k) {
    moved[k] = *e.where_user(k);
  }
  index::IndexOptions full;
  full.full = index::FullScan::yes;
  auto s = e.ok_run(full);
  EXPECT_EQ(s.items, 8U);
  EXPECT_EQ(e.docs(), 8U);
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(e.where_user(k), moved[k]);
  }
}

TEST(Rotation, KilledDuringAMoveConverges) {
  for (std::string_view step : {"before_catalog_commit", "before_index_commit", "after_index_commit"}) {
    for (int nth : {1, 2, 4}) {
      SCOPED_TRACE(fmt::format("{} #{}", step, nth));
      LogEstate e;
      test::write_file(e.log("mail.log"), txns(0, 12));
      test::write_file(e.log("mail.log.1"), txns(40, 6));
      index::IndexOptions one_per_block;
      one_per_block.log_block_items = 1; // one document per transaction: many moves to interrupt
      e.ok_run(one_per_block);
      // One rotation with compression: .1 -> .2.gz, mail.log -> .1, fresh mail.log.
      write_gz(e.log("mail.log.2.gz"), read_all(e.log("mail.log.1")));
      fs::remove(e.log("mail.log.1"));
      fs::rename(e.log("mail.log"), e.log("mail.log.1"));
      test::write_file(e.log("mail.log"), txns(20, 3));
      index::IndexOptions opts;
      opts.batch_size = 5; // commits in the middle of a move
      opts.log_block_items = 1;
      int seen = 0;
      opts.fault_at = [&](std::string_view s) { return s == step && ++seen == nth; };
      auto killed = e.run(opts);
      ASSERT_FALSE(killed);
      // The next run converges: every transaction once, where it is now.
      auto s = e.ok_run();
      EXPECT_EQ(s.items, 21U);
      EXPECT_EQ(e.docs(), 21U);
      e.expect_in("mail.log.2.gz", 40, 6);
      e.expect_in("mail.log.1", 0, 12);
      e.expect_in("mail.log", 20, 3);
      EXPECT_EQ(e.catalog_files(), 3U);
      // And a third run has nothing to do.
      s = e.ok_run();
      EXPECT_EQ(s.new_items + s.changed + s.removed + s.moved, 0U);
      EXPECT_EQ(e.docs(), 21U);
    }
  }
}

// ---- Maildir: a no-op re-index skips the per-file work when no folder changed ----

namespace {

/** Sets the mtime of every folder under `root` (and root) to the same moment an hour ago. */
void age_folders(const fs::path &root) {
  static const auto old = fs::file_time_type::clock::now() - std::chrono::hours(1);
  fs::last_write_time(root, old);
  for (const auto &e : fs::recursive_directory_iterator(root)) {
    if (e.is_directory()) {
      fs::last_write_time(e.path(), old);
    }
  }
}

} // namespace

TEST(MaildirLayout, UnchangedFoldersSkipTheFilesAndChangesAreStillSeen) {
  ScratchDir dir;
  auto md = dir / "mail/alice/Maildir";
  for (int i = 0; i < 5; ++i) {
    test::write_file(md / "cur" / fmt::format("{}.M1P1.host:2,S", i),
                     fmt::format("From: a{}@example.com\nSubject: {}\n\nbody\n", i, i));
  }
  fs::create_directories(md / "new");
  fs::create_directories(md / ".Sent/cur");
  fs::create_directories(md / ".Sent/new");
  auto cfg = core::parse_config(R"({"sources":[{"name":"mb","type":"maildir","path":"mail/*/Maildir"}]})",
                                (dir / "m.json").string());
  ASSERT_TRUE(cfg) << cfg.error().message;
  age_folders(dir / "mail");

  auto first = index::run_index(*cfg, index::IndexOptions{});
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->sources[0].new_items, 5U);
  auto fp = connectors::make_connector(cfg->sources[0]);
  ASSERT_TRUE(fp);
  auto layout = (*fp)->layout_fingerprint();
  ASSERT_TRUE(layout && layout->has_value() && (*layout)->settled);
  {
    auto catalog = index::Catalog::open(index::catalog_path(*cfg));
    ASSERT_TRUE(catalog);
    auto id = catalog->source_id("mb", "maildir");
    ASSERT_TRUE(id);
    EXPECT_EQ(*catalog->layout(*id), (*layout)->digest) << "recorded after a clean complete run";
  }

  // A message edited in place without any folder change is not looked at (Maildir files are
  // immutable; --full reads everything): proof that the fast path skipped the files.
  auto victim = md / "cur/0.M1P1.host:2,S";
  auto mtime = fs::last_write_time(victim);
  test::write_file(victim, "From: changed@example.com\nSubject: 0\n\nbody\n");
  fs::last_write_time(victim, mtime);
  age_folders(dir / "mail");
  auto noop = index::run_index(*cfg, index::IndexOptions{});
  ASSERT_TRUE(noop) << noop.error().message;
  EXPECT_EQ(noop->sources[0].new_items + noop->sources[0].changed + noop->sources[0].removed, 0U);
  EXPECT_EQ(noop->sources[0].files, 5U);
  EXPECT_EQ(noop->sources[0].items, 5U);

  // The skipped source's file count is the one recorded with its layout, not a count of its
  // catalog rows (which reads the whole index of files); a catalog from before migration 11,
  // with none recorded, counts the rows.
  const auto set_recorded_files = [&](std::uint64_t before, std::optional<std::uint64_t> files) {
    auto catalog = index::Catalog::open(index::catalog_path(*cfg));
    ASSERT_TRUE(catalog);
    auto id = catalog->source_id("mb", "maildir");
    ASSERT_TRUE(id);
    EXPECT_EQ(*catalog->layout_file_count(*id), before);
    ASSERT_TRUE(catalog->set_layout(*id, (*layout)->digest, files));
  };
  set_recorded_files(5, 7);
  auto recorded = index::run_index(*cfg, index::IndexOptions{});
  ASSERT_TRUE(recorded) << recorded.error().message;
  EXPECT_EQ(recorded->sources[0].files, 7U);
  set_recorded_files(7, std::nullopt);
  auto counted = index::run_index(*cfg, index::IndexOptions{});
  ASSERT_TRUE(counted) << counted.error().message;
  EXPECT_EQ(counted->sources[0].files, 5U);

  // A delivery changes new/'s mtime: the next run lists and finds it.
  test::write_file(md / "new/9.M1P1.host", "From: late@example.com\nSubject: 9\n\nbody\n");
  auto added = index::run_index(*cfg, index::IndexOptions{});
  ASSERT_TRUE(added) << added.error().message;
  EXPECT_EQ(added->sources[0].new_items, 1U);
  EXPECT_EQ(added->sources[0].items, 6U);

  // A folder changed just now is not trusted: the layout is not recorded.
  auto catalog = index::Catalog::open(index::catalog_path(*cfg));
  ASSERT_TRUE(catalog);
  EXPECT_EQ(*catalog->layout(*catalog->source_id("mb", "maildir")), "");

  // --full reads everything, including the message edited in place.
  index::IndexOptions full;
  full.full = index::FullScan::yes;
  auto again = index::run_index(*cfg, full);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->sources[0].items, 6U);
}

// Raw log lines are searched for addresses and IPs but not indexed as name tokens.
TEST(MaillogDocuments, LogLinesAreNotNameTokens) {
  ScratchDir dir;
  test::write_file(dir / "logs/mail.log",
                   "Nov 14 10:00:01 mx postfix/smtpd[1]: 4B2F1C0A7D: client=c.example[203.0.113.45]\n"
                   "Nov 14 10:00:02 mx postfix/qmgr[7]: 4B2F1C0A7D: from=<alice.smith@example.com>, "
                   "size=1, nrcpt=1 (queue active) Alice Smith\n");
  auto cfg = core::parse_config(
      R"({"sources":[{"name":"pf","type":"maillog","format":"postfix","path":"logs/mail.log*"}]})",
      (dir / "m.json").string());
  ASSERT_TRUE(cfg) << cfg.error().message;
  auto r = index::run_index(*cfg, index::IndexOptions{});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->sources[0].items, 1U);
  auto store = index::IndexStore::open(index::index_path(*cfg), index::OpenMode::read_only);
  ASSERT_TRUE(store) << store.error().message;
  // (A log block holds its terms hashed: schema::block_term.)
  EXPECT_EQ(*store->term_freq(index::schema::block_term(index::schema::any_role_term("email", "alice.smith@example.com"))), 1U);
  EXPECT_EQ(*store->term_freq(index::schema::block_term(index::schema::any_role_term("ip", "203.0.113.45"))), 1U);
  EXPECT_EQ(*store->term_freq(index::schema::block_term(index::schema::prefix_for("name-role", connectors::Role::body) + "alice")), 0U);
}

// ---- The log index (issue 12): blocks of transactions, re-read at query time ----

namespace {

/** Every transaction a direct scan of `path` finds, as Where, by the address it sends to. */
std::map<std::string, Where> scanned(const core::SourceConfig &src, const fs::path &path) {
  connectors::ItemCollector sink;
  auto connector = connectors::make_connector(src);
  EXPECT_TRUE(connector);
  connectors::FileEntry entry;
  entry.path = path.string();
  EXPECT_TRUE((*connector)->scan(entry, 0, sink));
  std::map<std::string, Where> out;
  for (const connectors::Item &item : sink.items) {
    for (const connectors::RawAddress &a : item.addresses) {
      if (a.role == connectors::Role::log_to) {
        out[a.addr] = Where{item.locator.path, item.locator.lines};
      }
    }
  }
  return out;
}

} // namespace

// A queue id whose lines are far apart (it opens first and closes last, with transactions that
// complete in between) comes out whole, in whichever block it ended up; so does every other.
TEST(LogBlocks, ATransactionSpanningOtherBlocksComesOutWhole) {
  LogEstate e;
  std::string log = "Nov 14 09:00:00 mx postfix/smtpd[1]: 0FFFFFFFFF: client=early.example[192.0.2.200]\n"
                    "Nov 14 09:00:01 mx postfix/qmgr[7]: 0FFFFFFFFF: from=<early@example.org>, size=1, nrcpt=1 (queue active)\n";
  log += txns(0, 10);
  log += "Nov 14 11:00:00 mx postfix/smtp[8]: 0FFFFFFFFF: to=<late@example.com>, relay=mx.example[10.0.0.2]:25, "
         "status=sent (250 ok)\n"
         "Nov 14 11:00:01 mx postfix/qmgr[7]: 0FFFFFFFFF: removed\n";
  test::write_file(e.log("mail.log"), log);
  index::IndexOptions opts;
  opts.log_block_items = 3; // blocks end between the other transactions
  auto s = e.ok_run(opts);
  EXPECT_EQ(s.new_items, 11U);
  EXPECT_EQ(e.docs(), 11U);
  auto w = e.where("XID:late@example.com");
  ASSERT_EQ(w.size(), 1U);
  EXPECT_EQ(w[0].lines, (std::vector<std::uint64_t>{1, 2, 43, 44}));
  EXPECT_EQ(e.where("XID:early@example.org"), w);
  auto direct = scanned(e.config.sources[0], e.log("mail.log"));
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(e.where_user(k), direct[user(k)]) << user(k);
  }
}

// A compressed log (two gzip members) whose blocks end inside a member: every transaction is
// found whole, as a direct scan gives it.
TEST(LogBlocks, BlockBoundariesInsideGzipMembers) {
  LogEstate e;
  const fs::path gz = e.log("mail.log.1.gz");
  write_gz(gz, txns(0, 14));
  {
    const fs::path second = e.log("second.tmp");
    write_gz(second, txns(14, 6));
    append_to(gz, read_all(second));
    fs::remove(second);
  }
  index::IndexOptions opts;
  opts.log_block_items = 4;
  auto s = e.ok_run(opts);
  EXPECT_EQ(s.new_items, 20U);
  EXPECT_EQ(e.docs(), 20U);
  auto direct = scanned(e.config.sources[0], gz);
  ASSERT_EQ(direct.size(), 20U);
  for (int k = 0; k < 20; ++k) {
    EXPECT_EQ(e.where_user(k), direct[user(k)]) << user(k);
  }
}

// A compressed log of several MiB (two gzip members, so restart points lie in both) keeps its
// restart points in the catalog; find reads the matched blocks from them: a transaction that
// spans two blocks and the whole content, and blocks far from the start, come out exactly as a
// direct scan gives them, even with the compressed bytes before the first point destroyed.
// Restart points that do not fit the file (stale, damaged) are not an answer: find reads the
// log from its start instead and answers the same.
TEST(LogBlocks, GzipRestartPointsReadOnlyTheMatchedSpans) {
  LogEstate e;
  const fs::path gz = e.log("mail.log.2.gz");
  const std::string early = "Nov 14 09:00:00 mx postfix/smtpd[1]: 0FFFFFFFFF: client=early.example[192.0.2.200]\n"
                            "Nov 14 09:00:01 mx postfix/qmgr[7]: 0FFFFFFFFF: from=<early@example.org>, size=1, nrcpt=1 (queue active)\n";
  const std::string late = "Nov 14 11:00:00 mx postfix/smtp[8]: 0FFFFFFFFF: to=<late@example.com>, relay=mx.example[10.0.0.2]:25, "
                           "status=sent (250 ok)\n"
                           "Nov 14 11:00:01 mx postfix/qmgr[7]: 0FFFFFFFFF: removed\n";
  const int n = 8000; // about 3.3 MiB of lines
  write_gz(gz, early + txns(0, n / 2));
  {
    const fs::path second = e.log("second.tmp");
    write_gz(second, txns(n / 2, n / 2) + late);
    append_to(gz, read_all(second));
    fs::remove(second);
  }
  e.ok_run();
  auto state = index::read_log_file(index::catalog_path(e.config), gz.string());
  ASSERT_TRUE(state) << state.error().message;
  ASSERT_TRUE(*state);
  const std::string points = (*state)->gz_points;
  auto parsed = connectors::gz::Index::parse(points);
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_GE(parsed->points.size(), 2U);
  EXPECT_LT(points.size(), 3U * 12000U); // a few KiB per MiB of content

  auto direct = scanned(e.config.sources[0], gz);
  ASSERT_EQ(direct.size(), static_cast<std::size_t>(n) + 1);
  const std::vector<int> sample{1, 777, 3999, 4000, 4001, 6543, n - 1};
  auto check = [&](const char *when) {
    for (int k : sample) {
      EXPECT_EQ(e.where_user(k), direct[user(k)]) << user(k) << " " << when;
    }
    auto w = e.where("XID:late@example.com");
    ASSERT_EQ(w.size(), 1U) << when;
    EXPECT_EQ(w[0], direct["late@example.com"]) << when;
    EXPECT_EQ(w[0].lines.front(), 1U);
    EXPECT_EQ(w[0].lines.size(), 4U);
  };
  check("with restart points");

  // Damaged points (a window flipped, then every offset shifted): read from the start.
  auto put_points = [&](const std::string &blob) {
    auto db = core::sqlite::Db::open(index::catalog_path(e.config), core::sqlite::Writable::yes);
    ASSERT_TRUE(db);
    auto s = db->prepare("UPDATE files SET gz_points = ?1 WHERE path = ?2");
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->bind_blob(1, std::as_bytes(std::span(blob.data(), blob.size()))));
    ASSERT_TRUE(s->bind(2, gz.string()));
    ASSERT_TRUE(s->step());
  };
  connectors::gz::Index bad = *parsed;
  for (auto &p : bad.points) {
    p.window[p.window.size() / 2] ^= 0x21;
  }
  put_points(bad.serialise());
  check("damaged windows");
  bad = *parsed;
  for (auto &p : bad.points) {
    p.out += 7; // valid windows at the wrong offsets: the block digests tell
  }
  put_points(bad.serialise());
  check("shifted offsets");
  put_points("not an index");
  check("malformed");

  // The points are really used: with the compressed bytes of the first member's start destroyed
  // (same size), a transaction after the first point is still found from its block alone.
  put_points(points);
  std::string z = read_all(gz);
  ASSERT_GT(parsed->points.front().in, 3000U);
  for (std::size_t i = 2000; i < 2500; ++i) {
    z[i] = static_cast<char>(z[i] ^ 0x3c);
  }
  test::write_file(gz, z);
  EXPECT_EQ(e.where_user(6543), direct[user(6543)]);
}

// Block terms are XH: + the first 3 bytes of the term's SHA-256 (docs/term-prefixes.md); the
// file, source, kind, block and truncation terms stay as they are.
TEST(LogBlocks, BlockTermsAreThreeBytesOfTheirSha256) {
  const std::string term = index::schema::any_role_term("email", "alice.smith@example.com");
  const std::string hashed = index::schema::block_term(term);
  ASSERT_EQ(hashed.size(), 3U + index::schema::k_block_hash_bytes);
  EXPECT_TRUE(hashed.starts_with("XH:"));
  EXPECT_EQ(core::to_hex(std::string_view(hashed).substr(3)), core::sha256_hex(term).substr(0, 6));
  EXPECT_NE(index::schema::block_term(index::schema::any_role_term("email", "bob@example.com")), hashed);
  const std::string file = index::schema::file_term("postfix", "/var/log/mail.log");
  EXPECT_EQ(index::schema::block_term(file), file);
  EXPECT_EQ(index::schema::block_term(index::schema::log_block_term()), index::schema::log_block_term());
}

namespace {

using test::NeedleSink;

bool mentions(const connectors::Item &item, const std::string &needle) {
  std::string raw;
  for (const connectors::RawText &t : item.texts) {
    raw += t.text;
  }
  std::transform(raw.begin(), raw.end(), raw.begin(), [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  return raw.find(needle) != std::string::npos ||
         std::ranges::any_of(raw, [](char c) { return static_cast<unsigned char>(c) >= 0x80U; });
}

} // namespace

// The query side reads a matched block for the lines that can hold the address only
// (connectors RangeScanner): the lines with the local part, in any case, or with a non-ASCII
// byte, and every line of their transactions (by the queue id written in each; a line of another
// transaction that quotes that queue id stays out). Each transaction it gives is exactly the one
// a scan of every line gives; the others are left out.
TEST(LogBlocks, ARangeIsReadForTheLinesThatCanHoldTheAddress) {
  LogEstate e;
  std::string log = txns(0, 40);
  // the address only in the last line but one of a transaction that spans the others
  log = "Nov 14 09:00:00 mx postfix/smtpd[1]: 0FFFFFFFFF: client=early.example[192.0.2.200]\n" + log +
        "Nov 14 11:00:00 mx postfix/smtp[8]: 0FFFFFFFFF: to=<Alice.Smith@Example.com>, relay=mx.example[10.0.0.2]:25, "
        "status=sent (250 ok)\n"
        "Nov 14 11:00:01 mx postfix/qmgr[7]: 0FFFFFFFFF: removed\n"
        // a line of its own (no queue id) and a line with a non-ASCII byte
        "Nov 14 11:00:02 mx postfix/smtpd[9]: NOQUEUE: reject: RCPT from x[192.0.2.9]: 554 5.7.1; "
        "from=<ALICE.SMITH@example.com> to=<bob@example.org> proto=ESMTP\n"
        "Nov 14 11:00:03 mx postfix/cleanup[5]: 0EEEEEEEEE: warning: header Subject: Gr\xC3\xBC\xC3\x9F" "e from x\n"
        "Nov 14 11:00:04 mx postfix/qmgr[7]: 0EEEEEEEEE: removed\n"
        // another transaction that quotes the queue id of the address's one: not read in part
        "Nov 14 11:00:05 mx postfix/cleanup[5]: 0DDDDDDDDD: message-id=<bounce@mx.example>\n"
        "Nov 14 11:00:06 mx postfix/bounce[9]: 0DDDDDDDDD: sender non-delivery notification: 0FFFFFFFFF\n"
        "Nov 14 11:00:07 mx postfix/qmgr[7]: 0DDDDDDDDD: removed\n";
  test::write_file(e.log("mail.log"), log);
  const core::SourceConfig &src = e.config.sources[0];
  connectors::LogRange all;
  NeedleSink whole({});
  ASSERT_TRUE(connectors::scan_log_range(src, e.log("mail.log").string(), all, whole));
  EXPECT_FALSE(whole.was_filtered);
  NeedleSink some({"alice.smith"});
  ASSERT_TRUE(connectors::scan_log_range(src, e.log("mail.log").string(), all, some));
  EXPECT_TRUE(some.was_filtered);

  std::map<std::uint64_t, std::string> want; // first line -> item digest
  for (const connectors::Item &item : whole.items) {
    if (mentions(item, "alice.smith")) {
      want[item.locator.lines.front()] = index::item_digest(item);
    }
  }
  ASSERT_EQ(want.size(), 3U); // the spanning transaction, the reject, the non-ASCII one
  std::map<std::uint64_t, std::string> got;
  for (const connectors::Item &item : some.items) {
    got[item.locator.lines.front()] = index::item_digest(item);
  }
  EXPECT_EQ(got, want);
  ASSERT_TRUE(got.contains(1));
  EXPECT_LT(some.items.size(), whole.items.size() / 4);

  // a format whose lines are not grouped by a key they carry (auto: a file format is recognised
  // by its first line) is read whole
  core::SourceConfig any = src;
  any.format = "auto";
  NeedleSink unfiltered({"alice.smith"});
  ASSERT_TRUE(connectors::scan_log_range(any, e.log("mail.log").string(), all, unfiltered));
  EXPECT_FALSE(unfiltered.was_filtered);
  EXPECT_EQ(unfiltered.items.size(), whole.items.size());
}

// find answers from the lines that can hold the address of a log as it was indexed (same size
// and mtime, or grown at its end), and every answer is checked against the index: a log changed
// in place since (same length, so offsets still fit), even with its old mtime put back, is not
// answered from, neither from the selected lines nor in full.
TEST(LogBlocks, ALogChangedSinceIndexingIsNotAnsweredFrom) {
  LogEstate e;
  test::write_file(e.log("mail.log"), txns(0, 200));
  index::IndexOptions opts;
  opts.log_block_items = 16;
  e.ok_run(opts);
  auto direct = scanned(e.config.sources[0], e.log("mail.log"));
  EXPECT_EQ(e.where_user(7), direct[user(7)]);
  EXPECT_EQ(e.where_user(150), direct[user(150)]);

  std::string log = read_all(e.log("mail.log"));
  const std::string line = fmt::format("{}: to=<{}>, relay=mx.example[10.0.0.2]:25, status=sent", qid(7), user(7));
  const std::size_t at = log.find(line);
  ASSERT_NE(at, std::string::npos);
  log.replace(log.find("status=sent", at), 11, "status=SENT");
  query::SubjectProfile subject;
  subject.emails.push_back(user(7));
  const auto mtime = fs::last_write_time(e.log("mail.log"));
  test::write_file(e.log("mail.log"), log);
  {
    auto hits = query::find(e.config, subject); // a new mtime: every line is read
    ASSERT_FALSE(hits);
    EXPECT_EQ(hits.error().code, core::ErrorCode::temp_fail) << hits.error().message;
  }
  // the old mtime put back: the file looks as indexed, the selected lines are read, and the
  // transaction's check against the index still tells
  fs::last_write_time(e.log("mail.log"), mtime);
  auto hits = query::find(e.config, subject);
  ASSERT_FALSE(hits);
  EXPECT_EQ(hits.error().code, core::ErrorCode::temp_fail) << hits.error().message;
  subject.emails = {user(150)}; // another block: answered
  auto other = query::find(e.config, subject);
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_EQ(other->size(), 1U);
}

namespace {

/** Writes `text` over the bytes of `path` at `at` (an edit in place, as erase's pwrite). */
void write_at(const fs::path &path, std::uint64_t at, const std::string &text) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
}

} // namespace

// A plain log that erase edited in place (same-length pseudonym) is not read again whole: with
// the edited lines' offsets (IndexOptions::edited_in_place), only the block that holds them is
// built again; the index then answers as a full re-index does, and holds nothing of the old
// address. A hint that does not fit the file (it also grew) makes the run read it whole.
TEST(LogBlocks, ALogEditedInPlaceHasOnlyTheEditedBlockBuiltAgain) {
  LogEstate e;
  const fs::path log = e.log("mail.log");
  test::write_file(log, txns(0, 400));
  index::IndexOptions opts;
  opts.log_block_items = 16;
  EXPECT_EQ(e.ok_run(opts).new_items, 400U);

  const std::string text = read_all(log);
  const std::string addr = user(123);
  const std::string pseudo = std::string(addr.size() - 12, 'z') + "@example.com";
  const std::size_t at = text.find("<" + addr + ">");
  ASSERT_NE(at, std::string::npos);
  const std::uint64_t line_start = text.rfind('\n', at) + 1;
  write_at(log, at + 1, pseudo);

  index::IndexOptions patch = opts;
  patch.edited_in_place[log.string()] = {line_start};
  const index::SourceSummary s = e.ok_run(patch);
  EXPECT_EQ(s.log_blocks_rebuilt, 1U);
  EXPECT_LE(s.changed, 16U);
  EXPECT_EQ(s.new_items, 0U);
  EXPECT_EQ(s.removed, 0U);
  EXPECT_TRUE(e.where("XID:" + addr).empty());
  auto direct = scanned(e.config.sources[0], log);
  ASSERT_EQ(e.where("XID:" + pseudo).size(), 1U);
  EXPECT_EQ(e.where("XID:" + pseudo)[0], direct[pseudo]);
  for (int k : {0, 122, 124, 399}) {
    EXPECT_EQ(e.where_user(k), direct[user(k)]) << user(k);
  }
  {
    // nothing of the old address left in the index's terms (compaction then drops the freed pages)
    auto store = index::IndexStore::open(index::index_path(e.config), index::OpenMode::read_only);
    ASSERT_TRUE(store);
    auto data = store->documents_data(index::schema::block_term(index::schema::any_role_term("email", addr)));
    ASSERT_TRUE(data);
    EXPECT_TRUE(data->empty());
  }
  const index::SourceSummary noop = e.ok_run(opts);
  EXPECT_EQ(noop.changed + noop.new_items + noop.removed, 0U);

  // the same hint on a log that also grew: read whole (every transaction counted again)
  const std::string addr2 = user(300);
  const std::string again = read_all(log);
  const std::size_t at2 = again.find("<" + addr2 + ">");
  ASSERT_NE(at2, std::string::npos);
  write_at(log, at2 + 1, std::string(addr2.size() - 12, 'y') + "@example.com");
  append_to(log, txns(400, 2));
  index::IndexOptions stale = opts;
  stale.edited_in_place[log.string()] = {again.rfind('\n', at2) + 1};
  const index::SourceSummary whole = e.ok_run(stale);
  EXPECT_EQ(whole.log_blocks_rebuilt, 0U);
  EXPECT_TRUE(e.where("XID:" + addr2).empty());
  EXPECT_EQ(e.where_user(401), scanned(e.config.sources[0], log)[user(401)]);
}

// A run that rebuilds edited blocks and is killed between its catalog and its index commit (or
// after both, before the file is marked done) leaves the log's row pending: the next run, which
// has no hint, reads the log whole, and the index holds the log as it is.
TEST(LogBlocks, AKilledBlockRebuildIsRepairedByTheNextRun) {
  for (const char *step : {"before_index_commit", "after_index_commit"}) {
    SCOPED_TRACE(step);
    LogEstate e;
    const fs::path log = e.log("mail.log");
    test::write_file(log, txns(0, 200));
    index::IndexOptions opts;
    opts.log_block_items = 16;
    e.ok_run(opts);
    const std::string text = read_all(log);
    const std::string addr = user(77);
    const std::string pseudo = std::string(addr.size() - 12, 'z') + "@example.com";
    const std::size_t at = text.find("<" + addr + ">");
    ASSERT_NE(at, std::string::npos);
    write_at(log, at + 1, pseudo);
    index::IndexOptions patch = opts;
    patch.edited_in_place[log.string()] = {text.rfind('\n', at) + 1};
    patch.fault_at = [step = std::string(step)](std::string_view where) { return where == step; };
    EXPECT_FALSE(e.run(patch));
    const index::SourceSummary next = e.ok_run(opts);
    EXPECT_EQ(next.log_blocks_rebuilt, 0U);
    EXPECT_TRUE(e.where("XID:" + addr).empty());
    auto direct = scanned(e.config.sources[0], log);
    ASSERT_EQ(e.where("XID:" + pseudo).size(), 1U);
    EXPECT_EQ(e.where("XID:" + pseudo)[0], direct[pseudo]);
    EXPECT_EQ(e.where_user(78), direct[user(78)]);
    const index::SourceSummary noop = e.ok_run(opts);
    EXPECT_EQ(noop.changed + noop.new_items + noop.removed, 0U);
  }
}

// A run that writes most of the index as log blocks swaps in a compacted copy (a new directory
// at the same path); the daily append does not. What a compaction killed midway left beside the
// index (the old copy, which may hold erased data) is removed by the next run. Answers unchanged.
TEST(LogBlocks, ABigLogRunCompactsTheIndexAndASmallOneDoesNot) {
  LogEstate e;
  index::IndexOptions opts;
  opts.log_block_items = 2;
  test::write_file(e.log("mail.log"), txns(0, 4));
  EXPECT_EQ(e.ok_run(opts).new_items, 4U); // 2 blocks: not compacted
  const fs::path xapian = index::index_path(e.config);
  const std::uint64_t before = test::inode_of(xapian);

  append_to(e.log("mail.log"), txns(4, 200)); // 100 blocks of 102
  const fs::path leftover = xapian.string() + ".compact";
  fs::create_directories(leftover);
  test::write_file(leftover / "postlist.glass", "stale copy");
  EXPECT_EQ(e.ok_run(opts).new_items, 200U);
  EXPECT_FALSE(fs::exists(leftover));
  const std::uint64_t compacted = test::inode_of(xapian);
  EXPECT_NE(compacted, before);

  append_to(e.log("mail.log"), txns(204, 4));
  EXPECT_EQ(e.ok_run(opts).new_items, 4U);
  EXPECT_EQ(test::inode_of(xapian), compacted);
  EXPECT_FALSE(fs::exists(leftover));

  EXPECT_EQ(e.docs(), 208U);
  auto direct = scanned(e.config.sources[0], e.log("mail.log"));
  for (int k : {0, 3, 4, 100, 203, 204, 207}) {
    EXPECT_EQ(e.where_user(k), direct[user(k)]) << user(k);
  }
}
