// SPDX-License-Identifier: GPL-3.0-or-later
// `plan --pst convert`: a PST becomes an mbox archive without the subject's items.
#include "connectors/mbox.hpp"
#include "connectors/pst.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "erasure/convert.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <mutex>

namespace maildsar::erasure {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::ScratchDir;

using Collect = connectors::ItemCollector;

constexpr std::string_view k_subject = "margaretjtolle@dayrep.com";

/** A stand-in for the keyed-hash check: the subject is whoever shows Margaret's address. */
std::set<std::string> shows_subject(const connectors::Item &item) {
  auto lower = [](std::string s) {
    for (char &c : s) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return s;
  };
  for (const connectors::RawText &t : item.texts) {
    if (lower(t.text).find(k_subject) != std::string::npos) {
      return {"email"};
    }
  }
  for (const connectors::RawAddress &a : item.addresses) {
    if (lower(a.addr) == k_subject) {
      return {"email"};
    }
  }
  return {};
}

/** A copied corpus PST, its planned job and the simulated journal. */
class PstConvert : public ::testing::Test {
protected:
  void SetUp() override {
    const fs::path corpus = test::corpus_dir();
    source = corpus.empty() ? fs::path() : corpus / "pst/aspose/SampleContacts.pst";
    if (source.empty() || !fs::exists(source)) {
      GTEST_SKIP() << "corpus pst/aspose/SampleContacts.pst not found";
    }
    pst = dir / "pst/SampleContacts.pst";
    fs::create_directories(pst.parent_path());
    fs::copy_file(source, pst);
    fs::permissions(pst, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
    fs::create_directories(dir / "archive");
    mbox_source = core::SourceConfig{"archive", "mbox", "", (dir / "archive/*.mbox").string(), "",
                                     (dir / "archive").string()};
    Collect all;
    ASSERT_TRUE(connectors::scan_pst_file("legacy", pst.string(), all));
    ASSERT_TRUE(all.errors.empty());
    items = all.items.size();
    for (const connectors::Item &item : all.items) {
      if (!shows_subject(item).empty()) {
        job.leave_out.insert(item.locator.node_id);
      }
    }
    ASSERT_EQ(job.leave_out.size(), 1U);
    auto st = core::lstat_file(pst.string());
    ASSERT_TRUE(st);
    job.pst_path = pst.string();
    job.pst_source = "legacy";
    job.planned = FileIdentity{st->dev, st->ino, st->size, st->mtime_ns};
    job.mbox_path = (dir / "archive/SampleContacts.mbox").string();
    job.mbox_source = &mbox_source;
    job.original_to = (dir / "originals/SampleContacts-0123.pst").string();
  }

  /** Runs a conversion as execute.cpp does: the journal detail survives only through save(). */
  PstConversionOutcome convert(const connectors::StepHook &hook = {}, const SubjectCheck &check = shows_subject) {
    json journal = persisted;
    auto save = [this](const json &j) -> core::Status {
      persisted = j;
      return {};
    };
    connectors::StepHook h = hook ? hook : [](std::string_view) -> core::Status { return {}; };
    auto r = convert_pst(job, check, journal, save, h); // an error only from the hook or the file system
    return r ? *r : PstConversionOutcome{"error", r.error().message, 0};
  }

  /** The archive as the indexer reads it. */
  std::unique_ptr<Collect> read_archive() {
    auto c = std::make_unique<Collect>();
    auto connector = connectors::make_mbox_connector(mbox_source);
    EXPECT_TRUE(connector);
    auto st = core::lstat_file(job.mbox_path);
    EXPECT_TRUE(st);
    if (connector && st) {
      EXPECT_TRUE((*connector)->scan(connectors::FileEntry{job.mbox_path, "", "", *st}, 0, *c));
    }
    return c;
  }

  void expect_converted() {
    EXPECT_FALSE(fs::exists(pst)) << "the original must leave the store";
    ASSERT_TRUE(fs::exists(job.original_to));
    EXPECT_EQ(test::read_file(job.original_to), test::read_file(source)) << "the original is kept byte for byte";
    std::unique_ptr<Collect> archive = read_archive();
    EXPECT_TRUE(archive->errors.empty());
    EXPECT_EQ(archive->items.size(), items - 1);
    for (const connectors::Item &item : archive->items) {
      EXPECT_TRUE(shows_subject(item).empty()) << item.subject;
    }
    EXPECT_EQ(persisted.value("mbox_sha256", std::string()), *core::sha256_file(job.mbox_path));
    for (const auto &e : fs::directory_iterator(dir / "archive")) {
      EXPECT_FALSE(e.path().filename().string().ends_with(".maildsar-tmp")) << e.path();
    }
  }

  ScratchDir dir;
  fs::path source;
  fs::path pst;
  core::SourceConfig mbox_source;
  PstConversionJob job;
  std::size_t items = 0;
  json persisted = json::object();
};

TEST_F(PstConvert, EveryOtherItemMovesIntoTheArchiveAndTheOriginalLeavesTheStore) {
  PstConversionOutcome r = convert();
  EXPECT_EQ(r.result, "done") << r.detail;
  EXPECT_EQ(r.kept, items - 1);
  expect_converted();
  // Each message says where in the PST it came from.
  const std::string text = test::read_file(job.mbox_path);
  EXPECT_NE(text.find("X-Maildsar-PST-Folder: Top of Personal Folders/Contacts"), std::string::npos);
  // Running the finished step again changes nothing.
  const std::string before = text;
  PstConversionOutcome again = convert();
  EXPECT_EQ(again.result, "done");
  EXPECT_EQ(test::read_file(job.mbox_path), before);
}

TEST_F(PstConvert, InterruptedAtEveryStepResumesToTheSameEnd) {
  for (const char *step : {"convert:temp-synced", "convert:verified", "convert:published", "convert:original-moved"}) {
    SCOPED_TRACE(step);
    fs::remove_all(dir / "pst");
    fs::remove_all(dir / "archive");
    fs::remove_all(dir / "originals");
    job = PstConversionJob{};
    persisted = json::object();
    SetUp();
    std::string wanted = step;
    PstConversionOutcome first = convert([wanted](std::string_view s) -> core::Status {
      if (s == wanted) {
        return core::fail(core::ErrorCode::io, "injected fault at " + wanted);
      }
      return {};
    });
    EXPECT_NE(first.result, "done");
    PstConversionOutcome second = convert();
    EXPECT_EQ(second.result, "done") << second.detail;
    expect_converted();
  }
}

TEST_F(PstConvert, AnArchiveThatStillHoldsTheSubjectIsNeverPublished) {
  const std::string before = test::read_file(pst);
  // The check sees the subject everywhere: the archive cannot verify.
  PstConversionOutcome r = convert({}, [](const connectors::Item &) { return std::set<std::string>{"name"}; });
  EXPECT_EQ(r.result, "failed");
  EXPECT_NE(r.detail.find("did not verify"), std::string::npos) << r.detail;
  EXPECT_EQ(test::read_file(pst), before);
  EXPECT_FALSE(fs::exists(job.mbox_path));
  EXPECT_FALSE(fs::exists(job.original_to));
  EXPECT_TRUE(fs::is_empty(dir / "archive"));
  EXPECT_FALSE(persisted.contains("mbox_sha256"));
}

TEST_F(PstConvert, ChangedMissingOrUnreadablePstsAreLeftAlone) {
  // Changed since planning.
  const std::string before = test::read_file(pst);
  job.planned.mtime_ns -= 1'000'000'000;
  EXPECT_EQ(convert().result, "stale");
  EXPECT_FALSE(fs::exists(job.mbox_path));
  job.planned.mtime_ns += 1'000'000'000;
  // A planned item that is not in the file.
  job.leave_out.insert(999999);
  EXPECT_EQ(convert().result, "stale");
  EXPECT_FALSE(fs::exists(job.mbox_path));
  job.leave_out.erase(999999);
  // An archive of that name that is not ours.
  test::write_file(job.mbox_path, "From x Thu Jan  1 00:00:00 1970\nSubject: mine\n\nkeep\n");
  PstConversionOutcome clash = convert();
  EXPECT_EQ(clash.result, "failed");
  EXPECT_NE(clash.detail.find("not written by this erasure"), std::string::npos) << clash.detail;
  EXPECT_EQ(test::read_file(job.mbox_path), "From x Thu Jan  1 00:00:00 1970\nSubject: mine\n\nkeep\n");
  fs::remove(job.mbox_path);
  // Truncated PST (planned that way): libpst cannot read it all, nothing may be lost.
  {
    std::string cut = before.substr(0, before.size() / 3);
    test::write_file(pst, cut);
    auto st = core::lstat_file(pst.string());
    job.planned = FileIdentity{st->dev, st->ino, st->size, st->mtime_ns};
    PstConversionOutcome broken = convert();
    EXPECT_EQ(broken.result, "failed") << broken.detail;
    EXPECT_EQ(test::read_file(pst), cut);
    EXPECT_FALSE(fs::exists(job.mbox_path));
  }
  // Gone.
  fs::remove(pst);
  EXPECT_EQ(convert().result, "stale");
  EXPECT_FALSE(fs::exists(job.original_to));
}

} // namespace
} // namespace maildsar::erasure
