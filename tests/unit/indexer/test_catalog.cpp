// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/catalog.hpp"

#include "core/sqlite.hpp"
#include "indexer/index_store.hpp"
#include "indexer/indexer.hpp"
#include "indexer/schema.hpp"
#include "tests/test_support.hpp"
#include "tests/unit/indexer/fake_connector.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fstream>

using namespace maildsar;
using maildsar::test::FakeConnector;
using maildsar::test::ScratchDir;

namespace {

const std::string k_line_a = R"({"a": [["to", "", "alice@example.com"]]})" "\n";
const std::string k_line_b = R"({"a": [["to", "", "bob@example.com"]]})" "\n";

struct Estate {
  ScratchDir dir;
  core::Config config;
  std::atomic<int> scans{0};
  bool append = true;
  test::ListingProbe *probe = nullptr;

  Estate() {
    config.state_dir = (dir / "state").string();
    core::SourceConfig src;
    src.name = "archive";
    src.type = "mbox";
    src.path = (dir / "mail").string();
    config.sources.push_back(src);
    std::filesystem::create_directories(dir / "mail");
  }
  std::filesystem::path file(const std::string &name) { return dir / "mail" / name; }

  core::Result<index::IndexSummary> run(index::IndexOptions opts = {}) {
    opts.threads = 2;
    return index::run_index(config, opts, [this](const core::SourceConfig &s) {
      return core::Result<std::unique_ptr<connectors::Connector>>(
          std::make_unique<FakeConnector>(s, append, &scans, probe));
    });
  }
  index::SourceSummary ok_run(index::IndexOptions opts = {}) {
    auto r = run(std::move(opts));
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r && !r->sources.empty() ? r->sources[0] : index::SourceSummary{};
  }
  std::uint64_t docs(const std::string &term = {}) {
    auto store = index::IndexStore::open(index::index_path(config), index::OpenMode::read_only);
    EXPECT_TRUE(store);
    return term.empty() ? *store->doc_count() : *store->term_freq(term);
  }
};

void append_to(const std::filesystem::path &p, const std::string &s) {
  std::ofstream out(p, std::ios::app | std::ios::binary);
  out << s;
}

} // namespace

TEST(Catalog, ClassifyTransitions) {
  index::FileRecord old;
  old.dev = 1;
  old.ino = 2;
  old.size = 100;
  old.mtime_ns = 5;
  old.scanned_size = 100;
  old.status = index::FileStatus::done;
  core::FileStat now{1, 2, 100, 5, 0100600, 1};
  using index::AppendSupport;
  using index::Transition;
  EXPECT_EQ(index::classify(static_cast<const index::FileRecord *>(nullptr), now, AppendSupport::yes),
            Transition::new_file);
  EXPECT_EQ(index::classify(&old, now, AppendSupport::yes), Transition::unchanged);
  now.mtime_ns = 6;
  EXPECT_EQ(index::classify(&old, now, AppendSupport::yes), Transition::changed);
  now.size = 150;
  EXPECT_EQ(index::classify(&old, now, AppendSupport::yes), Transition::grown);
  EXPECT_EQ(index::classify(&old, now, AppendSupport::no), Transition::changed);
  now.ino = 3;
  EXPECT_EQ(index::classify(&old, now, AppendSupport::yes), Transition::changed);
  now = core::FileStat{1, 2, 100, 5, 0100600, 1};
  old.status = index::FileStatus::pending;
  EXPECT_EQ(index::classify(&old, now, AppendSupport::yes), Transition::changed);

  // The brief a run holds per catalog file classifies alike.
  index::FileBrief brief{7, 1, 2, 100, 5, 100, index::FileStatus::done, false};
  EXPECT_EQ(index::classify(static_cast<const index::FileBrief *>(nullptr), now, AppendSupport::yes),
            Transition::new_file);
  EXPECT_EQ(index::classify(&brief, now, AppendSupport::yes), Transition::unchanged);
  now.size = 150;
  now.mtime_ns = 6;
  EXPECT_EQ(index::classify(&brief, now, AppendSupport::yes), Transition::grown);
  EXPECT_EQ(index::classify(&brief, now, AppendSupport::no), Transition::changed);
  brief.status = index::FileStatus::error;
  EXPECT_EQ(index::classify(&brief, now, AppendSupport::yes), Transition::changed);
}

TEST(Catalog, NewThenUnchangedSkipsWithoutOpening) {
  Estate e;
  test::write_file(e.file("a.mbox"), k_line_a + k_line_b);
  auto s = e.ok_run();
  EXPECT_EQ(s.files, 1U);
  EXPECT_EQ(s.new_items, 2U);
  EXPECT_EQ(s.items, 2U);
  EXPECT_EQ(e.scans.load(), 1);
  s = e.ok_run();
  EXPECT_EQ(e.scans.load(), 1); // not scanned again
  EXPECT_EQ(s.new_items + s.changed + s.removed, 0U);
  EXPECT_EQ(s.items, 2U);
  EXPECT_EQ(e.docs(), 2U);
}

// A run that writes most of the index (a first index, a rebuild, an estate that doubled) swaps
// in a compacted copy, a new directory at the same path: the B-tree blocks it filled in part
// take a third less space compacted. A small run (under 64 documents, or under half the index)
// leaves the index as it is. Nothing is lost either way.
TEST(Catalog, ARunThatWroteMostOfTheIndexCompactsIt) {
  Estate e;
  const auto inode = [&] {
    const std::uint64_t ino = test::inode_of(index::index_path(e.config));
    EXPECT_NE(ino, 0U);
    return ino;
  };
  std::string few;
  for (int i = 0; i < 10; ++i) {
    few += k_line_a;
  }
  test::write_file(e.file("a.mbox"), few);
  EXPECT_EQ(e.ok_run().new_items, 10U);
  const std::uint64_t first = inode(); // 10 documents: not compacted

  std::string many;
  for (int i = 0; i < 100; ++i) {
    many += k_line_b;
  }
  test::write_file(e.file("b.mbox"), many);
  EXPECT_EQ(e.ok_run().new_items, 100U);
  const std::uint64_t compacted = inode();
  EXPECT_NE(compacted, first);
  EXPECT_FALSE(std::filesystem::exists(index::index_path(e.config) + ".compact"));

  test::write_file(e.file("c.mbox"), few);
  EXPECT_EQ(e.ok_run().new_items, 10U); // 10 of 120: left as it is
  EXPECT_EQ(inode(), compacted);
  EXPECT_EQ(e.docs(), 120U);
  EXPECT_EQ(e.docs("XID:alice@example.com"), 20U);
  EXPECT_EQ(e.docs("XID:bob@example.com"), 100U);
}

std::string line_to(int i) {
  return fmt::format(R"({{"a": [["to", "", "user{}@example.com"]]}})" "\n", i);
}

// A first index of a source reads its files while they are listed, a part at a time
// (IndexOptions::stream_part_files; 8,192 files by default), so a million-file Maildir's
// listing is never held whole. Every file is read, progress counts on across the parts, and
// the next run (the catalog has the files now) reads nothing before its listing is complete.
TEST(Catalog, AFirstIndexReadsTheFilesWhileTheyAreListed) {
  Estate e;
  test::ListingProbe probe;
  e.probe = &probe;
  for (int i = 0; i < 10; ++i) {
    test::write_file(e.file(fmt::format("f{:02}.mbox", i)), line_to(i));
  }
  index::IndexOptions opts;
  opts.stream_part_files = 3;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> progress;
  opts.on_progress = [&](std::string_view, std::uint64_t done, std::uint64_t total) {
    progress.emplace_back(done, total);
  };
  auto s = e.ok_run(opts);
  EXPECT_EQ(s.files, 10U);
  EXPECT_EQ(s.new_items, 10U);
  EXPECT_EQ(s.items, 10U);
  EXPECT_EQ(s.errors, 0U);
  EXPECT_EQ(e.docs(), 10U);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(e.docs(fmt::format("XID:user{}@example.com", i)), 1U) << i;
  }
  // The parts were read between the files handed out: 3 done when the 4th came, 9 at the 10th.
  ASSERT_EQ(probe.scans_at_emit.size(), 10U);
  EXPECT_EQ(probe.scans_at_emit[0], 0);
  EXPECT_EQ(probe.scans_at_emit[3], 3);
  EXPECT_EQ(probe.scans_at_emit[6], 6);
  EXPECT_EQ(probe.scans_at_emit[9], 9);
  ASSERT_FALSE(progress.empty());
  for (std::size_t i = 1; i < progress.size(); ++i) {
    EXPECT_LE(progress[i - 1].first, progress[i].first);
    EXPECT_LE(progress[i].first, progress[i].second);
  }
  EXPECT_EQ(progress.back(), std::make_pair(std::uint64_t{10}, std::uint64_t{10}));
  auto sources = index::read_source_status(index::catalog_path(e.config));
  ASSERT_TRUE(sources);
  ASSERT_EQ(sources->size(), 1U);
  EXPECT_TRUE((*sources)[0].last_success.has_value());

  probe.scans_at_emit.clear();
  test::write_file(e.file("f10.mbox"), line_to(10));
  s = e.ok_run(opts);
  EXPECT_EQ(s.new_items, 1U);
  EXPECT_EQ(s.items, 11U);
  // A source the catalog knows is classified while listed, but nothing is read (or written)
  // before the listing is complete: vanished files and the removal guard need all of it.
  ASSERT_EQ(probe.scans_at_emit.size(), 11U);
  for (int seen : probe.scans_at_emit) {
    EXPECT_EQ(seen, 10);
  }
  EXPECT_EQ(e.scans.load(), 11);
}

// A streamed listing that breaks off: the files handed out before are indexed, the failure is
// a counted problem naming the source, and the source is not recorded as indexed (`find`
// refuses to answer for it); the next run reads the rest.
TEST(Catalog, AListingThatBreaksOffKeepsWhatItReadAndIsNoSuccess) {
  Estate e;
  test::ListingProbe probe;
  probe.fail_after = 3;
  e.probe = &probe;
  for (int i = 0; i < 5; ++i) {
    test::write_file(e.file(fmt::format("f{}.mbox", i)), line_to(i));
  }
  index::IndexOptions opts;
  opts.stream_part_files = 2;
  std::vector<std::string> problems;
  opts.on_problem = [&](const index::IndexProblem &p) { problems.push_back(p.error.cause); };
  auto s = e.ok_run(opts);
  EXPECT_EQ(s.errors, 1U);
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_NE(problems[0].find("listing broke off"), std::string::npos) << problems[0];
  EXPECT_EQ(e.docs(), 3U);
  auto sources = index::read_source_status(index::catalog_path(e.config));
  ASSERT_TRUE(sources);
  ASSERT_EQ(sources->size(), 1U);
  EXPECT_FALSE((*sources)[0].last_success.has_value());
  EXPECT_EQ((*sources)[0].origin, "");

  probe.fail_after = 0;
  s = e.ok_run(opts);
  EXPECT_EQ(s.errors, 0U);
  EXPECT_EQ(s.new_items, 2U);
  EXPECT_EQ(s.items, 5U);
  EXPECT_EQ(e.docs(), 5U);
  sources = index::read_source_status(index::catalog_path(e.config));
  ASSERT_TRUE(sources);
  EXPECT_TRUE((*sources)[0].last_success.has_value());
}

TEST(Catalog, ChangedFileIsReindexed) {
  Estate e;
  test::write_file(e.file("a.mbox"), k_line_a + k_line_b);
  e.ok_run();
  test::write_file(e.file("a.mbox"), k_line_b); // rewritten: one item left
  auto s = e.ok_run();
  EXPECT_EQ(s.changed, 1U);
  EXPECT_EQ(s.removed, 1U);
  EXPECT_EQ(s.items, 1U);
  EXPECT_EQ(e.docs(), 1U);
  EXPECT_EQ(e.docs("XID:bob@example.com"), 1U);
  EXPECT_EQ(e.docs("XID:alice@example.com"), 0U);
}

TEST(Catalog, GrownFileScansOnlyTheAppendedPart) {
  Estate e;
  test::write_file(e.file("a.mbox"), k_line_a);
  e.ok_run();
  append_to(e.file("a.mbox"), k_line_b);
  auto s = e.ok_run();
  EXPECT_EQ(s.new_items, 1U);
  EXPECT_EQ(s.changed, 0U);
  EXPECT_EQ(s.items, 2U);
  EXPECT_EQ(e.docs(), 2U);
  EXPECT_EQ(e.docs("XID:alice@example.com"), 1U);
}

TEST(Catalog, GrownButRewrittenIsReadFromTheStart) {
  Estate e;
  test::write_file(e.file("a.mbox"), k_line_a);
  e.ok_run();
  // Same size prefix replaced, then grown: the tail fingerprint differs.
  std::string other = R"({"a": [["to", "", "carol@example.com"]]})" "\n";
  ASSERT_EQ(other.size(), k_line_a.size() + 0U);
  {
    std::fstream f(e.file("a.mbox"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f << other << k_line_b;
  }
  auto s = e.ok_run();
  EXPECT_EQ(s.items, 2U);
  EXPECT_EQ(e.docs("XID:alice@example.com"), 0U);
  EXPECT_EQ(e.docs("XID:carol@example.com"), 1U);
  EXPECT_EQ(e.docs("XID:bob@example.com"), 1U);
}

TEST(Catalog, VanishedFileIsDropped) {
  Estate e;
  test::write_file(e.file("a.mbox"), k_line_a);
  test::write_file(e.file("b.mbox"), k_line_b);
  e.ok_run();
  std::filesystem::remove(e.file("a.mbox"));
  auto s = e.ok_run();
  EXPECT_EQ(s.removed, 1U);
  EXPECT_EQ(s.files, 1U);
  EXPECT_EQ(s.items, 1U);
  EXPECT_EQ(e.docs(), 1U);
  EXPECT_EQ(e.docs("XID:alice@example.com"), 0U);
}

TEST(Catalog, BadLinesAreReportedAndCounted) {
  Estate e;
  test::write_file(e.file("a.mbox"), k_line_a + "garbage\n" + k_line_b);
  std::vector<index::IndexProblem> problems;
  index::IndexOptions opts;
  opts.on_problem = [&](const index::IndexProblem &p) { problems.push_back(p); };
  auto s = e.ok_run(opts);
  EXPECT_EQ(s.errors, 1U);
  EXPECT_EQ(s.items, 2U);
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0].source, "archive");
  EXPECT_NE(problems[0].error.position.find("offset"), std::string::npos);
}

TEST(Catalog, UnknownSourceIsUsageError) {
  Estate e;
  index::IndexOptions opts;
  opts.only_sources = {"nope"};
  auto r = e.run(opts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::usage);
}

TEST(Catalog, SecondIndexerIsLockedOut) {
  Estate e;
  ASSERT_TRUE(core::ensure_private_dir(e.config.state_dir));
  auto lock = core::FileLock::try_acquire(index::lock_path(e.config), "");
  ASSERT_TRUE(lock);
  auto r = e.run();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::index_locked);
  EXPECT_FALSE(r.error().hint.empty());
}

TEST(Catalog, KillAtAnyCommitStepIsRepairedByTheNextRun) {
  for (const char *step : {"before_catalog_commit", "before_index_commit", "after_index_commit"}) {
    SCOPED_TRACE(step);
    Estate e;
    test::write_file(e.file("a.mbox"), k_line_a);
    test::write_file(e.file("b.mbox"), k_line_b);
    e.ok_run();
    // Change a, drop b, add c; die at `step`.
    test::write_file(e.file("a.mbox"), k_line_b);
    std::filesystem::remove(e.file("b.mbox"));
    test::write_file(e.file("c.mbox"), R"({"a": [["to", "", "carol@example.com"]]})" "\n");
    index::IndexOptions opts;
    opts.fault_at = [&](std::string_view s) { return s == step; };
    auto killed = e.run(opts);
    ASSERT_FALSE(killed);
    // The next run converges to the right state.
    auto s = e.ok_run();
    EXPECT_EQ(s.items, 2U);
    EXPECT_EQ(e.docs(), 2U);
    EXPECT_EQ(e.docs("XID:alice@example.com"), 0U);
    EXPECT_EQ(e.docs("XID:bob@example.com"), 1U);
    EXPECT_EQ(e.docs("XID:carol@example.com"), 1U);
    // And a third run has nothing to do.
    int before = e.scans.load();
    e.ok_run();
    EXPECT_EQ(e.scans.load(), before);
  }
}

TEST(Catalog, FullRunRebuildsTheSource) {
  Estate e;
  test::write_file(e.file("a.mbox"), k_line_a);
  e.ok_run();
  index::IndexOptions opts;
  opts.full = index::FullScan::yes;
  auto s = e.ok_run(opts);
  EXPECT_EQ(s.items, 1U);
  EXPECT_EQ(e.docs(), 1U);
  EXPECT_EQ(e.scans.load(), 2);
}

// Issue 13 item 2: one file, one source. Config loading refuses overlapping paths; the indexer
// refuses a file that another configured source lists or holds, naming both.
TEST(Catalog, TwoSourcesListingTheSameFileIsAConfigError) {
  Estate e;
  test::write_file(e.file("a.mbox"), k_line_a);
  core::SourceConfig twin = e.config.sources[0];
  twin.name = "twin";
  e.config.sources.push_back(twin);
  auto r = e.run();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::config);
  EXPECT_NE(r.error().message.find("sources 'archive' and 'twin' both cover"), std::string::npos)
      << r.error().message;
  // Also when the other source was indexed in an earlier run.
  e.config.sources.pop_back();
  e.ok_run();
  e.config.sources.push_back(twin);
  index::IndexOptions only_twin;
  only_twin.only_sources = {"twin"};
  auto again = e.run(only_twin);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, core::ErrorCode::config);
  EXPECT_NE(again.error().message.find("'archive' and 'twin'"), std::string::npos);
}

TEST(Catalog, ASourceRenamedInTheConfigIsNoOverlap) {
  Estate e;
  test::write_file(e.file("a.mbox"), k_line_a);
  e.ok_run();
  e.config.sources[0].name = "renamed";
  auto s = e.ok_run();
  EXPECT_EQ(s.items, 1U);
}

// Issue 13 item 10: the removal guard.
TEST(Catalog, AllFilesVanishingKeepsTheItemsUntilAccepted) {
  Estate e;
  test::write_file(e.file("a.mbox"), k_line_a);
  e.ok_run();
  std::filesystem::remove(e.file("a.mbox"));
  auto s = e.ok_run();
  EXPECT_EQ(s.removed, 0U);
  EXPECT_EQ(s.errors, 1U);
  EXPECT_EQ(s.items, 1U);
  EXPECT_NE(s.held_removal.find("matched 1 file(s) before and none now"), std::string::npos);
  EXPECT_EQ(e.docs("XID:alice@example.com"), 1U);
  auto status = index::read_source_status(index::catalog_path(e.config));
  ASSERT_TRUE(status);
  ASSERT_EQ(status->size(), 1U);
  EXPECT_FALSE(status->front().held_removal.empty());
  index::IndexOptions accept;
  accept.accept_removal = {"archive"};
  s = e.ok_run(accept);
  EXPECT_EQ(s.removed, 1U);
  EXPECT_EQ(s.errors, 0U);
  EXPECT_EQ(e.docs("XID:alice@example.com"), 0U);
  status = index::read_source_status(index::catalog_path(e.config));
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->front().held_removal.empty());
}

TEST(Catalog, RemovalGuardOffDropsWhatTheCallerRemoved) {
  Estate e;
  test::write_file(e.file("a.mbox"), k_line_a);
  e.ok_run();
  std::filesystem::remove(e.file("a.mbox"));
  index::IndexOptions off;
  off.removal_guard = index::RemovalGuard::off;
  auto s = e.ok_run(off);
  EXPECT_EQ(s.removed, 1U);
  EXPECT_EQ(s.errors, 0U);
}

// An erasure moving an mbox's messages reads only where each row lies (indexer/shift.cpp).
TEST(Catalog, ItemPlacesRowsAndTheirDeletion) {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "state");
  auto catalog = index::Catalog::open((dir / "state/catalog.sqlite3").string());
  ASSERT_TRUE(catalog) << catalog.error().message;
  auto source = catalog->source_id("archive", "mbox");
  ASSERT_TRUE(source);
  index::FileRecord file;
  file.source_id = *source;
  file.path = "/srv/archive/a.mbox";
  auto file_id = catalog->put_file(file);
  ASSERT_TRUE(file_id);
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"Qone", "/srv/archive/a.mbox@#0"}, {"Qtwo", "/srv/archive/a.mbox@#1"}, {"Qold", "/srv/archive/a.mbox@200"}};
  std::uint64_t offset = 0;
  for (const auto &[qterm, key] : rows) {
    index::ItemRecord item;
    item.qterm = qterm;
    item.file_id = *file_id;
    item.locator_key = key;
    item.sha256 = std::string(64, 'a');
    item.offset = offset;
    item.length = 100;
    ASSERT_TRUE(catalog->put_item(item));
    offset += 100;
  }
  auto places = catalog->item_places_of_file(*file_id);
  ASSERT_TRUE(places) << places.error().message;
  ASSERT_EQ(places->size(), 3U);
  EXPECT_EQ((*places)[1].offset, 100U);
  EXPECT_TRUE((*places)[0].stable_key);
  EXPECT_TRUE((*places)[1].stable_key);
  EXPECT_FALSE((*places)[2].stable_key); // keyed by its offset: an index from before stable keys
  EXPECT_EQ(*catalog->qterm_of_row((*places)[1].row), "Qtwo");
  ASSERT_TRUE(catalog->move_item((*places)[2].row, 100));
  ASSERT_TRUE(catalog->delete_row((*places)[1].row));
  EXPECT_FALSE(*catalog->has_item("Qtwo"));
  EXPECT_EQ(*catalog->qterm_of_row((*places)[1].row), "");
  auto old = catalog->item("Qold");
  ASSERT_TRUE(old && *old);
  EXPECT_EQ((*old)->offset, 100U);
  EXPECT_EQ(catalog->item_places_of_file(*file_id)->size(), 2U);
}

namespace {

// Whether any file under `dir` (the catalog, its write-ahead log and shared memory) holds `text`.
bool any_file_holds(const std::filesystem::path &dir, const std::string &text) {
  for (const auto &entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file() && maildsar::test::read_file(entry.path()).find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// A catalog with 300 items of one file, each key holding a marker of its own.
void fill_catalog(index::Catalog &catalog) {
  auto source = catalog.source_id("archive", "mbox");
  ASSERT_TRUE(source);
  index::FileRecord file;
  file.source_id = *source;
  file.path = "/srv/archive/a.mbox";
  auto file_id = catalog.put_file(file);
  ASSERT_TRUE(file_id);
  auto tx = catalog.begin();
  ASSERT_TRUE(tx);
  for (int i = 0; i < 300; ++i) {
    index::ItemRecord item;
    item.qterm = fmt::format("Q{}", i);
    item.file_id = *file_id;
    item.locator_key = fmt::format("/srv/archive/a.mbox@#{} marker-{:04}", i, i);
    item.sha256 = std::string(64, 'a');
    item.offset = static_cast<std::uint64_t>(i) * 100;
    item.length = 100;
    ASSERT_TRUE(catalog.put_item(item));
  }
  ASSERT_TRUE(tx->commit());
}

} // namespace

// A state directory whose catalog holds fill_catalog()'s 300 items.
class CatalogScrub : public ::testing::Test {
protected:
  void SetUp() override {
    std::filesystem::create_directories(m_dir / "state");
    auto catalog = index::Catalog::open(m_path);
    ASSERT_TRUE(catalog) << catalog.error().message;
    fill_catalog(*catalog);
  }
  ScratchDir m_dir;
  std::filesystem::path m_state = m_dir / "state";
  std::string m_path = (m_dir / "state/catalog.sqlite3").string();
};

// After erasure the catalog's files keep nothing of a deleted row. A catalog made by this
// version zeroes what it frees, so scrub() needs only a checkpoint, not a VACUUM of the file.
TEST_F(CatalogScrub, ANewCatalogZeroesDeletedRowsAndIsScrubbedWithoutVacuum) {
  {
    auto catalog = index::Catalog::open(m_path);
    ASSERT_TRUE(catalog) << catalog.error().message;
    auto row = catalog->item_places_of_file(1);
    ASSERT_TRUE(row && row->size() == 300U);
    ASSERT_TRUE(catalog->delete_row((*row)[123].row));
    auto scrubbed = catalog->scrub();
    ASSERT_TRUE(scrubbed) << scrubbed.error().message;
    EXPECT_FALSE(*scrubbed); // no VACUUM
  }
  EXPECT_FALSE(any_file_holds(m_state, "marker-0123"));
  EXPECT_TRUE(any_file_holds(m_state, "marker-0122")); // the search does find what stays
  auto again = index::Catalog::open(m_path);
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again->has_item("Q123"));
  EXPECT_TRUE(*again->has_item("Q124"));
}

// A catalog from before schema 10 may hold bytes freed without zeroing: its first scrub rebuilds
// it (VACUUM) and marks it, later ones need not.
TEST_F(CatalogScrub, ACatalogThatMayHoldFreedBytesIsRebuiltOnceByScrub) {
  {
    // What an older version left: a deletion that did not zero, and no mark.
    auto db = core::sqlite::Db::open(m_path, core::sqlite::Writable::yes);
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(db->exec("PRAGMA secure_delete=OFF; DELETE FROM items WHERE qterm = 'Q123'; "
                         "DELETE FROM zeroed_since_vacuum"));
  }
  ASSERT_TRUE(any_file_holds(m_state, "marker-0123")); // the old bytes are there to find
  auto catalog = index::Catalog::open(m_path);
  ASSERT_TRUE(catalog);
  auto first = catalog->scrub();
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE(*first); // VACUUM
  EXPECT_FALSE(any_file_holds(m_state, "marker-0123"));
  EXPECT_TRUE(any_file_holds(m_state, "marker-0122"));
  auto second = catalog->scrub();
  ASSERT_TRUE(second);
  EXPECT_FALSE(*second);
}

// A reader whose open snapshot keeps the write-ahead log (a `find` reading the catalog) keeps the
// page images of a deleted row there: scrub() must say so (temp_fail, so erase stops before its
// certificate and resumes on the next run), not report the catalog clean. Once the reader ends,
// the same scrub succeeds and the row's bytes are gone.
TEST_F(CatalogScrub, AReaderHoldingTheLogMakesScrubFailUntilItEnds) {
  auto catalog = index::Catalog::open(m_path);
  ASSERT_TRUE(catalog) << catalog.error().message;
  auto reader = core::sqlite::Db::open(m_path, core::sqlite::Writable::no);
  ASSERT_TRUE(reader) << reader.error().message;
  ASSERT_TRUE(reader->exec("PRAGMA busy_timeout=100; BEGIN; SELECT count(*) FROM items"));
  auto row = catalog->item_places_of_file(1);
  ASSERT_TRUE(row && row->size() == 300U);
  ASSERT_TRUE(catalog->delete_row((*row)[123].row));
  auto held = catalog->scrub();
  ASSERT_FALSE(held);
  EXPECT_EQ(held.error().code, core::ErrorCode::temp_fail);
  EXPECT_NE(held.error().message.find(m_path), std::string::npos) << held.error().message;
  ASSERT_TRUE(reader->exec("COMMIT"));
  auto freed = catalog->scrub();
  ASSERT_TRUE(freed) << freed.error().message;
  EXPECT_FALSE(any_file_holds(m_state, "marker-0123"));
  EXPECT_TRUE(any_file_holds(m_state, "marker-0122"));
}

namespace {

bool has_index(const std::string &path, const std::string &name) {
  auto db = core::sqlite::Db::open(path, core::sqlite::Writable::no);
  EXPECT_TRUE(db) << db.error().message;
  auto s = db->prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?1");
  EXPECT_TRUE(s);
  EXPECT_TRUE(s->bind(1, name));
  auto row = s->step();
  EXPECT_TRUE(row && *row);
  return s->column_int64(0) > 0;
}

} // namespace

// The path-only index of migration 5 repeated the (source_id, path) unique index: migration 12
// drops it from older catalogs, and the lookups by path alone still answer (the one that stops
// two sources covering the same file is TwoSourcesListingTheSameFileIsAConfigError).
TEST_F(CatalogScrub, AnOlderCatalogsPathIndexIsDroppedAndPathLookupsStillAnswer) {
  EXPECT_FALSE(has_index(m_path, "files_by_path")); // a new catalog never keeps it
  {
    auto db = core::sqlite::Db::open(m_path, core::sqlite::Writable::yes);
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(db->exec("CREATE INDEX files_by_path ON files(path)"));
    ASSERT_TRUE(db->set_user_version(11));
  }
  ASSERT_TRUE(has_index(m_path, "files_by_path"));
  auto catalog = index::Catalog::open(m_path);
  ASSERT_TRUE(catalog) << catalog.error().message;
  EXPECT_FALSE(has_index(m_path, "files_by_path"));
  EXPECT_TRUE(has_index(m_path, "sqlite_autoindex_files_1")); // UNIQUE (source_id, path)
  auto archive = catalog->source_id("archive", "mbox");
  ASSERT_TRUE(archive);
  auto other = catalog->other_source_of("/srv/archive/a.mbox", *archive + 1);
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_EQ(*other, std::optional<std::string>("archive")) << "another source holds the file";
  auto none = catalog->other_source_of("/srv/archive/a.mbox", *archive);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_FALSE(none->has_value()) << "its own source is no other";
  auto unknown = catalog->other_source_of("/srv/archive/b.mbox", *archive + 1);
  ASSERT_TRUE(unknown) << unknown.error().message;
  EXPECT_FALSE(unknown->has_value());
}
