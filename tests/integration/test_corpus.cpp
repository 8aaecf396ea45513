// SPDX-License-Identifier: GPL-3.0-or-later
//
// Integration over ../shared/corpus: real Maildirs, mboxes, MIME fixtures, PST/OST files and MTA
// logs from public projects, indexed with index::run_index and spot-checked with query::find.
// The corpus is read-only: every test works on a copy in a ScratchDir.
#include "indexer/indexer.hpp"
#include "query/query.hpp"

#include "core/config.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
using namespace maildsar;
using maildsar::test::ScratchDir;

namespace {

// ---- helpers -------------------------------------------------------------------------------

/** Copies a tree as plain, writable files and folders (the corpus is read-only). */
void copy_writable(const fs::path &from, const fs::path &to) {
  fs::create_directories(to);
  for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator();
       ++it) {
    fs::path target = to / fs::relative(it->path(), from);
    if (it->is_symlink()) {
      fs::copy_symlink(it->path(), target);
    } else if (it->is_directory()) {
      fs::create_directories(target);
    } else if (it->is_regular_file()) {
      fs::copy_file(it->path(), target, fs::copy_options::overwrite_existing);
      fs::permissions(target, fs::perms::owner_read | fs::perms::owner_write,
                      fs::perm_options::add);
    }
  }
}

/** A source entry of the config JSON. */
nlohmann::json source(const std::string &name, const std::string &type, const fs::path &path,
                      const std::string &format = {}) {
  nlohmann::json s = {{"name", name}, {"type", type}, {"path", path.string()}};
  if (!format.empty()) {
    s["format"] = format;
  }
  return s;
}

core::Config make_config(const fs::path &dir, const nlohmann::json &sources) {
  nlohmann::json cfg = {{"state_dir", (dir / "state").string()}, {"sources", sources}};
  std::string file = (dir / "maildsar.json").string();
  auto parsed = core::parse_config(cfg.dump(2), file);
  if (!parsed) {
    ADD_FAILURE() << "config: " << parsed.error().message;
    return {};
  }
  return *parsed;
}

/** One run_index with the problems it reported. */
struct IndexRun {
  index::IndexSummary summary;
  std::vector<index::IndexProblem> problems;
  std::string failure; // run_index returned an error

  [[nodiscard]] const index::SourceSummary *source(const std::string &name) const {
    for (const auto &s : summary.sources) {
      if (s.name == name) {
        return &s;
      }
    }
    return nullptr;
  }
  [[nodiscard]] std::vector<connectors::ScanError> problems_of(const std::string &name) const {
    std::vector<connectors::ScanError> out;
    for (const auto &p : problems) {
      if (p.source == name) {
        out.push_back(p.error);
      }
    }
    return out;
  }
  [[nodiscard]] std::string describe(const std::string &name) const {
    std::string out;
    for (const auto &e : problems_of(name)) {
      out += "  " + e.path + (e.position.empty() ? "" : " (" + e.position + ")") + ": " + e.cause +
             "\n";
    }
    return out;
  }
};

IndexRun index_now(const core::Config &config, const std::vector<std::string> &only = {}) {
  IndexRun run;
  std::mutex mutex;
  index::IndexOptions opts;
  opts.threads = 2;
  opts.only_sources = only;
  opts.on_problem = [&](const index::IndexProblem &p) {
    std::lock_guard lock(mutex);
    run.problems.push_back(p);
  };
  auto r = index::run_index(config, opts);
  if (r) {
    run.summary = std::move(*r);
  } else {
    run.failure = r.error().message;
  }
  return run;
}

query::SubjectProfile by_email(const std::string &e) {
  query::SubjectProfile p;
  p.emails = {e};
  return p;
}
query::SubjectProfile by_name(const std::string &n) {
  query::SubjectProfile p;
  p.names = {n};
  return p;
}
query::SubjectProfile by_ip(const std::string &ip) {
  query::SubjectProfile p;
  p.ips = {ip};
  return p;
}

std::vector<std::string> roles_of(const query::Hit &hit) {
  std::vector<std::string> out;
  for (const auto &m : hit.matched) {
    out.insert(out.end(), m.roles.begin(), m.roles.end());
  }
  return out;
}
bool has_role(const query::Hit &hit, const std::string &role) {
  auto roles = roles_of(hit);
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

/** The hits whose path is `path` (all items of the file). */
std::vector<query::Hit> hits_in(const std::vector<query::Hit> &hits, const fs::path &path) {
  std::vector<query::Hit> out;
  for (const auto &h : hits) {
    if (h.locator.path == path.string()) {
      out.push_back(h);
    }
  }
  return out;
}

using maildsar::test::find_program;

std::size_t regular_files_under(const fs::path &dir) {
  std::size_t n = 0;
  for (const auto &e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && !e.is_symlink()) {
      ++n;
    }
  }
  return n;
}

// ---- the corpus estate, indexed once for the whole suite ------------------------------------

/** Expected items per Maildir source: cur + new of SOURCES.md "Message counts" (no dotfiles),
    plus the stray files outside cur/ and new/ (issue 11 class 6). */
const std::map<std::string, std::uint64_t> k_maildir_counts = {
    {"mu-testdir", 15 + 4},     // the file in tmp/ is not indexed: copied now, it is young
    {"mu-testdir2", 3 + 8 + 3}, // Foo, bar, wom_bat through one glob
    {"mu-cjk", 4},
    {"notmuch-default", 25 + 1 + 2 + 2 + 2 + 2 + 2 + 3 + 2 + 2 + 10}, // nested foo/baz, bar/baz; 10 stray
    {"notmuch-lkml", 210},
    {"notmuch-parent-priority", 3},
    {"mailpile", 13},
};

/** Expected messages per mbox source (directories of SOURCES.md's mbox table). */
const std::map<std::string, std::uint64_t> k_mbox_counts = {
    {"mbox-aspose", 1},
    {"mbox-gmime", 3},
    {"mbox-mailpile", 9},
    {"mbox-mime4j", 5},
    // content-length 29 + issue1189 4 + simple 3 + unmunged 2 (it has 3 "From " lines: the
    // first, after a UTF-8 BOM, and one more are separators; "From Russia with love" is
    // unescaped body text)
    {"mbox-mimekit", 29 + 4 + 3 + 2},
    {"mbox-tika", 3 + 1 + 1 + 1 + 1 + 2 + 1 + 1 + 1},
};

class Corpus : public ::testing::Test {
protected:
  struct Estate {
    ScratchDir dir;
    fs::path copy;     // the corpus copy
    fs::path mime_box; // the Maildir made of mime/ files
    std::size_t mime_files = 0;
    std::vector<std::string> mime_names; // names given in mime_box/cur
    core::Config config;
    IndexRun first;
  };
  static std::unique_ptr<Estate> s_estate;

  static void SetUpTestSuite() {
    fs::path corpus = test::corpus_dir();
    if (corpus.empty() || !fs::exists(corpus / "SOURCES.md")) {
      return;
    }
    auto e = std::make_unique<Estate>();
    e->copy = e->dir / "corpus";
    for (const char *part : {"maildir", "mbox", "pst", "logs"}) {
      copy_writable(corpus / part, e->copy / part);
    }
    // mime/: every single-message file becomes one message of a Maildir's cur/.
    e->mime_box = e->dir / "mimebox";
    fs::create_directories(e->mime_box / "cur");
    fs::create_directories(e->mime_box / "new");
    fs::create_directories(e->mime_box / "tmp");
    std::vector<fs::path> mime;
    for (const auto &f : fs::recursive_directory_iterator(corpus / "mime")) {
      if (f.is_regular_file() && !f.is_symlink()) {
        mime.push_back(f.path());
      }
    }
    std::sort(mime.begin(), mime.end());
    for (std::size_t i = 0; i < mime.size(); ++i) {
      std::string rel = fs::relative(mime[i], corpus / "mime").string();
      std::replace(rel.begin(), rel.end(), '/', '_');
      std::string name = std::to_string(1000 + i) + "_" + rel; // unique, never a dotfile
      fs::copy_file(mime[i], e->mime_box / "cur" / name);
      e->mime_names.push_back(name);
    }
    e->mime_files = mime.size();

    const fs::path &c = e->copy;
    nlohmann::json sources = nlohmann::json::array();
    sources.push_back(source("mu-testdir", "maildir", c / "maildir/mu/testdir"));
    sources.push_back(source("mu-testdir2", "maildir", c / "maildir/mu/testdir2/*"));
    sources.push_back(source("mu-cjk", "maildir", c / "maildir/mu/cjk"));
    sources.push_back(source("notmuch-default", "maildir", c / "maildir/notmuch/default"));
    sources.push_back(source("notmuch-lkml", "maildir", c / "maildir/notmuch/lkml"));
    sources.push_back(source("notmuch-parent-priority", "maildir",
                             c / "maildir/notmuch/threading/parent-priority"));
    sources.push_back(source("mailpile", "maildir", c / "maildir/mailpile/Maildir"));
    sources.push_back(source("mbox-aspose", "mbox", c / "mbox/aspose/*"));
    sources.push_back(source("mbox-gmime", "mbox", c / "mbox/gmime/*"));
    sources.push_back(source("mbox-mailpile", "mbox", c / "mbox/mailpile/*"));
    sources.push_back(source("mbox-mime4j", "mbox", c / "mbox/mime4j/*"));
    sources.push_back(source("mbox-mimekit", "mbox", c / "mbox/mimekit/*.txt")); // not expected/
    sources.push_back(source("mbox-tika", "mbox", c / "mbox/tika/*"));
    // The exim tree at three depths (globs have no **): files only at depth 1 are mboxes; the
    // folders beside them are reported and skipped.
    sources.push_back(source("exim-1", "mbox", c / "mbox/exim-testsuite/*"));
    sources.push_back(source("exim-2", "mbox", c / "mbox/exim-testsuite/*/*"));
    sources.push_back(source("exim-3", "mbox", c / "mbox/exim-testsuite/*/*/*"));
    sources.push_back(source("mime", "maildir", e->mime_box));
    sources.push_back(source("pst", "pst", c / "pst/*/*.?st"));
    sources.push_back(source("logs-fail2ban", "maillog", c / "logs/fail2ban/*", "syslog"));
    sources.push_back(source("logs-crowdsec", "maillog", c / "logs/crowdsec-hub/*", "auto"));
    sources.push_back(source("logs-exchange", "maillog", c / "logs/exchange/*", "exchange"));
    // mainlog/ and rejectlog/ are folders of per-test logs
    sources.push_back(source("logs-exim", "maillog", c / "logs/exim-testsuite/*/*", "exim"));
    sources.push_back(
        source("logs-postfix", "maillog", c / "logs/postfix-log-parser/*", "postfix"));
    sources.push_back(
        source("logs-grok", "maillog", c / "logs/postfix-grok-patterns/*", "postfix"));
    e->config = make_config(e->dir.path(), sources);
    e->first = index_now(e->config);
    s_estate = std::move(e);
  }

  static void TearDownTestSuite() { s_estate.reset(); }

  void SetUp() override {
    if (!s_estate) {
      GTEST_SKIP() << "corpus not found (../shared/corpus or $MAILDSAR_CORPUS)";
    }
    ASSERT_TRUE(s_estate->first.failure.empty()) << s_estate->first.failure;
  }

  static const Estate &estate() { return *s_estate; }
  static const IndexRun &first() { return s_estate->first; }

  static std::vector<query::Hit> find(const query::SubjectProfile &p) {
    auto r = query::find(s_estate->config, p);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : std::vector<query::Hit>{};
  }
};
std::unique_ptr<Corpus::Estate> Corpus::s_estate;

} // namespace

// ---- 1. Maildir ---------------------------------------------------------------------------

TEST_F(Corpus, MaildirSourcesIndexEveryMessageOfCurAndNew) {
  for (const auto &[name, count] : k_maildir_counts) {
    SCOPED_TRACE(name);
    const auto *s = first().source(name);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->type, "maildir");
    EXPECT_EQ(s->files, count); // tmp/, loose files outside cur/new and dotfiles are not listed
    EXPECT_EQ(s->items, count);
    EXPECT_EQ(s->new_items, count);
    EXPECT_EQ(s->changed, 0U);
    EXPECT_EQ(s->removed, 0U);
    EXPECT_EQ(s->errors, 0U) << first().describe(name);
  }
}

TEST_F(Corpus, NestedNotmuchMaildirsKeepTheirFolder) {
  // jan@ryngle.com is an address of default/cur/32 and default/foo/baz/{cur/14,new/15,new/16};
  // default/cur/44 and 45 quote him as the list archive wrote it, "Jan Janak <jan at
  // ryngle.com> wrote:" (an address since 2026-12-04); 44's In-Reply-To/References hold it only
  // inside Message-IDs, which are not identities.
  auto hits = find(by_email("jan@ryngle.com"));
  const fs::path root = estate().copy / "maildir/notmuch/default";
  std::map<std::string, std::string> want = {
      {(root / "cur/32:2,").string(), ""},
      {(root / "cur/44:2,").string(), ""},
      {(root / "cur/45:2,").string(), ""},
      {(root / "foo/baz/cur/14:2,").string(), "foo/baz"},
      {(root / "foo/baz/new/15:2,").string(), "foo/baz"},
      {(root / "foo/baz/new/16:2,").string(), "foo/baz"},
  };
  std::erase_if(hits, [](const query::Hit &h) { return h.locator.source != "notmuch-default"; });
  std::map<std::string, std::string> got;
  for (const auto &h : hits) {
    got[h.locator.path] = h.locator.folder;
    EXPECT_EQ(h.locator.store, connectors::StoreKind::maildir);
  }
  EXPECT_EQ(got, want);
  for (const auto &h : hits) {
    if (h.locator.path.find("/foo/baz/") != std::string::npos) {
      EXPECT_TRUE(has_role(h, "from")) << h.locator.path;
    }
    if (h.locator.path.ends_with("/cur/44:2,") || h.locator.path.ends_with("/cur/45:2,")) {
      EXPECT_TRUE(has_role(h, "body")) << h.locator.path;
    }
  }
}

// ---- 2. mbox ------------------------------------------------------------------------------

TEST_F(Corpus, MboxSourcesIndexEveryRealMessage) {
  for (const auto &[name, count] : k_mbox_counts) {
    SCOPED_TRACE(name);
    const auto *s = first().source(name);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->type, "mbox");
    EXPECT_EQ(s->items, count);
    EXPECT_EQ(s->new_items, count);
    EXPECT_EQ(s->errors, 0U) << first().describe(name);
  }
  EXPECT_EQ(first().source("mbox-mimekit")->files, 4U); // expected/ is not matched
  EXPECT_EQ(first().source("mbox-tika")->files, 9U);
}

TEST_F(Corpus, EximTestsuiteMailboxesGive863Messages) {
  const auto *d1 = first().source("exim-1");
  const auto *d2 = first().source("exim-2");
  const auto *d3 = first().source("exim-3");
  ASSERT_TRUE(d1 != nullptr && d2 != nullptr && d3 != nullptr);
  // SOURCES.md counts 869 "From " lines in the 523 files: 867 in the 500 top-level files and
  // one each in 0075.subdir/userx and 0240.subdir/userx. 6 of them are not separators ("From :
  // p@q" header lines in 0095.userx/0101.userx, "From should not be escaped" body lines in the
  // BSMTP files 0100.user{w,y,z}/0101.userz).
  EXPECT_EQ(d1->files, 500U);
  EXPECT_EQ(d1->items, 861U);
  EXPECT_EQ(d2->items, 2U);
  EXPECT_EQ(d3->items, 0U);
  EXPECT_EQ(d1->items + d2->items + d3->items, 863U);

  // Every problem is a folder beside the mailboxes ("not a regular file") or a file that is no
  // mbox (BSMTP batches, pipe outputs, maildirsize, maildir message files): reported, not fatal.
  std::size_t folders = 0;
  std::size_t not_mbox = 0;
  for (const char *name : {"exim-1", "exim-2", "exim-3"}) {
    for (const auto &e : first().problems_of(name)) {
      SCOPED_TRACE(e.path + ": " + e.cause);
      if (fs::is_directory(e.path)) {
        ++folders;
        EXPECT_NE(e.cause.find("not a regular file"), std::string::npos);
      } else {
        ++not_mbox;
        EXPECT_NE(e.cause.find("not an mbox file"), std::string::npos);
        EXPECT_EQ(e.position, "offset 0");
        // no "From " line at the start (after blank lines) of any of them
        std::string data = test::read_file(e.path);
        auto start = data.find_first_not_of("\r\n");
        EXPECT_TRUE(start == std::string::npos || data.compare(start, 5, "From ") != 0);
      }
    }
  }
  EXPECT_EQ(folders, 12U + 4U); // 12 folders at depth 1 and 4 "*/new" folders at depth 2
  EXPECT_EQ(not_mbox, 22U + 17U + 4U);
  EXPECT_EQ(d1->errors + d2->errors + d3->errors, folders + not_mbox);
}

// ---- 3. mime/ fixtures as one Maildir ----------------------------------------------------

TEST_F(Corpus, MimeFixturesAreAllIndexedAndOnlyNonMessagesReported) {
  const auto *s = first().source("mime");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(estate().mime_files, 248U);
  EXPECT_EQ(s->files, estate().mime_files);
  EXPECT_EQ(s->items, estate().mime_files); // not-a-message files are still items (by path)
  // The files that are not RFC 5322 messages, each reported once by name.
  const std::set<std::string> known = {
      "mail-parser_mail_outlook_1",                             // Outlook .msg (CDFV2 binary)
      "mimekit_tnef_body.tnef",                                 // raw TNEF (winmail.dat) streams
      "mimekit_tnef_unicode-mapi-attr-name.tnef",               //
      "mimekit_tnef_unicode-mapi-attr.tnef",                    //
      "mimekit_tnef_winmail.tnef",                              //
      "mime4j_mimetools-testmsgs_ARTISTIC-LICENSE.txt",         // licence text of the test suite
      "mime4j_mimetools-testmsgs_README.txt",                   // its README
      "mime4j_testmsgs_malformedHeader-noheader.msg",           // body text without any header
      "mime4j_testmsgs_malformedHeaderStartsBody-noheader.msg", // (mime4j "no header" cases)
  };
  std::set<std::string> reported;
  for (const auto &e : first().problems_of("mime")) {
    SCOPED_TRACE(e.path + ": " + e.cause);
    fs::path p(e.path);
    EXPECT_EQ(p.parent_path(), estate().mime_box / "cur"); // names its file
    EXPECT_TRUE(fs::is_regular_file(p));
    EXPECT_NE(e.cause.find("not a mail message"), std::string::npos);
    std::string name = p.filename().string();
    reported.insert(name.substr(name.find('_') + 1)); // drop the "1234_" uniqueness prefix
  }
  EXPECT_EQ(reported, known);
  EXPECT_EQ(s->errors, known.size());
}

TEST_F(Corpus, MessageWithByteOrderMarkIsDecoded) {
  // Regression: mimekit/messages/feedback-report.txt starts with a UTF-8 BOM; the Maildir
  // connector used to call it "not a mail message" and lose its identities.
  auto hits = find(by_email("abusedesk@example.com"));
  auto it = std::find_if(hits.begin(), hits.end(), [](const query::Hit &h) {
    return h.locator.path.ends_with("_mimekit_messages_feedback-report.txt");
  });
  ASSERT_NE(it, hits.end());
  EXPECT_TRUE(has_role(*it, "from"));
  EXPECT_EQ(it->subject, "FW: Earn money");
}

// ---- 4. second run ------------------------------------------------------------------------

TEST_F(Corpus, SecondRunOverTheWholeCorpusIsANoOp) {
  IndexRun again = index_now(estate().config);
  ASSERT_TRUE(again.failure.empty()) << again.failure;
  ASSERT_EQ(again.summary.sources.size(), first().summary.sources.size());
  for (const auto &s : again.summary.sources) {
    SCOPED_TRACE(s.name);
    EXPECT_EQ(s.new_items, 0U);
    EXPECT_EQ(s.changed, 0U);
    EXPECT_EQ(s.removed, 0U);
    EXPECT_EQ(s.items, first().source(s.name)->items);
    EXPECT_EQ(s.files, first().source(s.name)->files);
  }
}

// ---- 5. spot checks -----------------------------------------------------------------------

TEST_F(Corpus, LkmlSenderIsFoundAsFromInEveryMessageHeSent) {
  const std::string addr = "broonie@opensource.wolfsonmicro.com";
  const fs::path cur = estate().copy / "maildir/notmuch/lkml/cur";
  std::set<std::string> sent;      // From: header is his
  std::set<std::string> mentioned; // the address appears anywhere
  for (const auto &e : fs::directory_iterator(cur)) {
    std::string data = test::read_file(e.path());
    std::string header = data.substr(0, data.find("\n\n"));
    if (header.starts_with("From: Mark Brown <" + addr + ">") ||
        header.find("\nFrom: Mark Brown <" + addr + ">") != std::string::npos) {
      sent.insert(e.path().string());
    }
    if (data.find(addr) != std::string::npos) {
      mentioned.insert(e.path().string());
    }
  }
  ASSERT_EQ(sent.size(), 13U);
  ASSERT_EQ(mentioned.size(), 35U);
  auto hits = find(by_email(addr));
  std::set<std::string> from_hits;
  std::set<std::string> lkml_hits;
  for (const auto &h : hits) {
    if (h.locator.source != "notmuch-lkml") {
      continue;
    }
    lkml_hits.insert(h.locator.path);
    if (has_role(h, "from")) {
      from_hits.insert(h.locator.path);
    }
  }
  EXPECT_EQ(from_hits, sent);
  EXPECT_EQ(lkml_hits, mentioned); // Cc, To and quoted mentions count too
}

TEST_F(Corpus, MuCcRecipientIsFoundWithRoleCc) {
  auto hits = find(by_email("d@example.com"));
  const std::string path = (estate().copy / "maildir/mu/testdir/cur/multirecip!2,S").string();
  auto found = hits_in(hits, path);
  ASSERT_EQ(found.size(), 1U);
  EXPECT_TRUE(has_role(found[0], "cc"));
  EXPECT_FALSE(has_role(found[0], "to"));
  EXPECT_EQ(found[0].locator.source, "mu-testdir");
  EXPECT_EQ(found[0].subject, "test with multi to and cc");
}

TEST_F(Corpus, TikaMboxSenderIsFoundAtTheRightOffsets) {
  const fs::path mbox = estate().copy / "mbox/tika/complex.mbox";
  std::string data = test::read_file(mbox);
  // separators at the starts of lines 1, 78 and 177
  std::vector<std::uint64_t> seps = {0};
  for (auto p = data.find("\nFrom core-user"); p != std::string::npos;
       p = data.find("\nFrom core-user", p + 1)) {
    seps.push_back(p + 1);
  }
  ASSERT_EQ(seps.size(), 3U);
  auto hits = hits_in(find(by_email("JothiPN@Yahoo-Inc.com")), mbox); // case folded
  std::map<std::uint64_t, const query::Hit *> by_offset;
  for (const auto &h : hits) {
    by_offset[h.locator.offset] = &h;
    EXPECT_EQ(h.locator.store, connectors::StoreKind::mbox);
    EXPECT_EQ(h.locator.source, "mbox-tika");
  }
  ASSERT_TRUE(by_offset.contains(seps[0]));
  ASSERT_TRUE(by_offset.contains(seps[2]));
  EXPECT_TRUE(has_role(*by_offset[seps[0]], "from"));
  EXPECT_TRUE(has_role(*by_offset[seps[2]], "from"));
  EXPECT_EQ(by_offset[seps[0]]->locator.length, seps[1]);
  if (by_offset.contains(seps[1])) { // Jianmin Woo's reply quotes him
    EXPECT_FALSE(has_role(*by_offset[seps[1]], "from"));
  }
}

TEST_F(Corpus, PstSenderIsFoundInUnicodeAndAnsiStores) {
  auto hits = find(by_email("terrymah@microsoft.com"));
  const fs::path pst = estate().copy / "pst/pstsdk";
  for (const char *file : {"sample1.pst", "sample2.pst"}) {
    SCOPED_TRACE(file);
    auto found = hits_in(hits, pst / file);
    ASSERT_EQ(found.size(), 1U);
    EXPECT_TRUE(has_role(found[0], "from"));
    EXPECT_EQ(found[0].locator.store, connectors::StoreKind::pst);
    EXPECT_NE(found[0].locator.node_id, 0U);
    EXPECT_EQ(found[0].subject, "Here is a sample message");
  }
  auto sub = hits_in(hits, pst / "submessage.pst");
  ASSERT_EQ(sub.size(), 1U);
  EXPECT_TRUE(has_role(sub[0], "attachment-body")); // inside the embedded message
  // the relay IP of sample1's transport headers
  auto relay = hits_in(find(by_ip("157.54.79.174")), pst / "sample1.pst");
  ASSERT_EQ(relay.size(), 1U);
  EXPECT_TRUE(has_role(relay[0], "received"));
}

TEST_F(Corpus, NonAsciiPstSenderNameIsFound) {
  auto hits = hits_in(find(by_name("Jörn Kottmann")), estate().copy / "pst/tika/testPST.pst");
  ASSERT_FALSE(hits.empty());
  EXPECT_TRUE(std::any_of(hits.begin(), hits.end(),
                          [](const query::Hit &h) { return has_role(h, "from"); }));
  // the accent-folded, reversed form finds the same items
  auto folded = hits_in(find(by_name("kottmann, jorn")), estate().copy / "pst/tika/testPST.pst");
  EXPECT_EQ(folded.size(), hits.size());
}

TEST_F(Corpus, PostfixLogSenderIsFoundInItsTransaction) {
  auto hits = find(by_email("test2@example.info"));
  for (const char *file : {"test.log", "test-iso8601.log"}) {
    SCOPED_TRACE(file);
    auto found = hits_in(hits, estate().copy / "logs/postfix-log-parser" / file);
    ASSERT_EQ(found.size(), 1U);
    const auto &h = found[0];
    EXPECT_EQ(h.locator.store, connectors::StoreKind::maillog);
    EXPECT_EQ(h.locator.queue_id, "3D74ADB7400B");
    EXPECT_TRUE(has_role(h, "log-from"));
    EXPECT_NE(std::find(h.locator.lines.begin(), h.locator.lines.end(), 10U),
              h.locator.lines.end());
  }
}

// ---- 6. PST and logs ----------------------------------------------------------------------

TEST_F(Corpus, PstStoresIndexAtLeastWhatReadpstExtracts) {
  const auto *s = first().source("pst");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->files, 17U); // 15 .pst + 2 .ost (pst/*/*.?st)
  EXPECT_GT(s->items, 0U);
  EXPECT_EQ(s->errors, 0U) << first().describe("pst");
  auto readpst = find_program("readpst");
  if (readpst.empty()) {
    GTEST_SKIP() << "readpst (pst-utils) is not installed: count comparison skipped";
  }
  std::uint64_t emails = 0;
  for (const auto &e : fs::recursive_directory_iterator(estate().copy / "pst")) {
    auto ext = e.path().extension().string();
    if (!e.is_regular_file() || (ext != ".pst" && ext != ".ost")) {
      continue;
    }
    ScratchDir out;
    // -D: deleted items too; -M: one file per item; -t e: e-mails only; -j 0: no forking
    auto rp = test::run({readpst.string(), "-D", "-M", "-t", "e", "-j", "0", "-q", "-o",
                         out.path().string(), e.path().string()});
    ASSERT_EQ(rp.exit_code, 0) << e.path() << ": " << rp.err;
    emails += regular_files_under(out.path());
  }
  EXPECT_GT(emails, 0U);
  EXPECT_GE(s->items, emails); // contacts, appointments, ... are items too
}

TEST_F(Corpus, LogSourcesIndexWithProblemsCountedNotFatal) {
  std::uint64_t items = 0;
  for (const char *name : {"logs-fail2ban", "logs-crowdsec", "logs-exchange", "logs-exim",
                           "logs-postfix", "logs-grok"}) {
    SCOPED_TRACE(name);
    const auto *s = first().source(name);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->type, "maillog");
    EXPECT_GT(s->files, 0U);
    EXPECT_GT(s->items, 0U);
    items += s->items;
    auto problems = first().problems_of(name);
    EXPECT_EQ(problems.size(), s->errors);
    for (const auto &e : problems) {
      EXPECT_TRUE(fs::is_regular_file(e.path)) << e.path; // each names its file ...
      EXPECT_TRUE(e.position.starts_with("line ")) << e.path << ": " << e.cause; // ... and line
    }
  }
  EXPECT_EQ(first().source("logs-exim")->files, 835U + 154U);
  EXPECT_GT(items, 0U);
}

TEST_F(Corpus, SummaryTotalsAddUp) {
  const auto &sum = first().summary;
  EXPECT_EQ(sum.sources.size(), estate().config.sources.size());
  std::uint64_t errors = 0;
  for (const auto &s : sum.sources) {
    errors += s.errors;
    EXPECT_EQ(s.new_items, s.items) << s.name; // first run: everything is new
  }
  EXPECT_EQ(sum.errors, errors);
  EXPECT_EQ(first().problems.size(), errors);
}

// ---- 4b. incremental changes on a copy -----------------------------------------------------

TEST(CorpusIncremental, DeletedFilesAndAppendedMessageAreTheOnlyChanges) {
  fs::path corpus = test::corpus_dir();
  if (corpus.empty() || !fs::exists(corpus / "SOURCES.md")) {
    GTEST_SKIP() << "corpus not found (../shared/corpus or $MAILDSAR_CORPUS)";
  }
  ScratchDir dir;
  const fs::path c = dir / "corpus";
  copy_writable(corpus / "maildir", c / "maildir");
  for (const char *part : {"tika", "gmime", "mimekit"}) {
    copy_writable(corpus / "mbox" / part, c / "mbox" / part);
  }
  nlohmann::json sources = nlohmann::json::array();
  sources.push_back(source("lkml", "maildir", c / "maildir/notmuch/lkml"));
  sources.push_back(source("default", "maildir", c / "maildir/notmuch/default"));
  sources.push_back(source("mu", "maildir", c / "maildir/mu/testdir"));
  sources.push_back(source("tika", "mbox", c / "mbox/tika/*.mbox"));
  sources.push_back(source("others", "mbox", c / "mbox/*/*.mbox.txt"));
  sources.push_back(source("gmime", "mbox", c / "mbox/gmime/*"));
  core::Config config = make_config(dir.path(), sources);

  IndexRun run1 = index_now(config);
  ASSERT_TRUE(run1.failure.empty()) << run1.failure;
  std::map<std::string, std::uint64_t> items1;
  for (const auto &s : run1.summary.sources) {
    items1[s.name] = s.items;
  }
  EXPECT_EQ(items1["lkml"], 210U);
  EXPECT_EQ(items1["default"], 43U + 10U); // cur/new + the ten stray files
  EXPECT_EQ(items1["mu"], 19U);
  EXPECT_EQ(items1["tika"], 12U);
  EXPECT_EQ(items1["others"], 38U);
  EXPECT_EQ(items1["gmime"], 3U);

  IndexRun run2 = index_now(config);
  ASSERT_TRUE(run2.failure.empty()) << run2.failure;
  for (const auto &s : run2.summary.sources) {
    SCOPED_TRACE(s.name);
    EXPECT_EQ(s.new_items, 0U);
    EXPECT_EQ(s.changed, 0U);
    EXPECT_EQ(s.removed, 0U);
    EXPECT_EQ(s.errors, 0U);
    EXPECT_EQ(s.items, items1[s.name]);
  }

  // Delete 3 Maildir files (two lkml, one nested notmuch) and append one message to an mbox.
  std::vector<fs::path> lkml;
  for (const auto &e : fs::directory_iterator(c / "maildir/notmuch/lkml/cur")) {
    lkml.push_back(e.path());
  }
  std::sort(lkml.begin(), lkml.end());
  ASSERT_GE(lkml.size(), 2U);
  fs::remove(lkml[0]);
  fs::remove(lkml[1]);
  fs::remove(c / "maildir/notmuch/default/foo/baz/new/16:2,");
  // complex.mbox ends with a blank line, as a delivery agent leaves it: the new message starts
  // exactly at the old end, so only the new message is read (and the old ones stay unchanged).
  const fs::path mbox = c / "mbox/tika/complex.mbox";
  const std::uint64_t old_size = fs::file_size(mbox);
  ASSERT_TRUE(test::read_file(mbox).ends_with("\n\n"));
  {
    std::ofstream f(mbox, std::ios::binary | std::ios::app);
    f << "From carol@example.net Mon Jan  5 10:00:00 2026\n"
         "From: Carol Corpus <carol.corpus@example.net>\n"
         "To: dpo@example.org\n"
         "Subject: appended after the first index\n"
         "Message-ID: <appended-1@example.net>\n"
         "\n"
         "Please tell me what you hold.\n"
         "\n";
  }

  IndexRun run3 = index_now(config);
  ASSERT_TRUE(run3.failure.empty()) << run3.failure;
  std::uint64_t removed = 0;
  std::uint64_t added = 0;
  std::uint64_t changed = 0;
  for (const auto &s : run3.summary.sources) {
    removed += s.removed;
    added += s.new_items;
    changed += s.changed;
    EXPECT_EQ(s.errors, 0U) << s.name << "\n" << run3.describe(s.name);
  }
  EXPECT_EQ(removed, 3U);
  EXPECT_EQ(added, 1U);
  EXPECT_EQ(changed, 0U);
  EXPECT_EQ(run3.source("lkml")->removed, 2U);
  EXPECT_EQ(run3.source("lkml")->items, 208U);
  EXPECT_EQ(run3.source("default")->removed, 1U);
  EXPECT_EQ(run3.source("default")->items, 42U + 10U);
  EXPECT_EQ(run3.source("tika")->new_items, 1U);
  EXPECT_EQ(run3.source("tika")->items, 13U);

  // The appended message is findable at its offset; the deleted files are not any more.
  query::SubjectProfile carol = by_email("carol.corpus@example.net");
  auto hits = query::find(config, carol);
  ASSERT_TRUE(hits) << hits.error().message;
  ASSERT_EQ(hits->size(), 1U);
  const auto &h = hits->front();
  EXPECT_EQ(h.locator.path, mbox.string());
  EXPECT_EQ(h.locator.offset, old_size);
  EXPECT_EQ(h.locator.offset + h.locator.length, fs::file_size(mbox));
  EXPECT_TRUE(has_role(h, "from"));
  EXPECT_EQ(h.message_id, "appended-1@example.net");

  auto jan = query::find(config, by_email("jan@ryngle.com"));
  ASSERT_TRUE(jan) << jan.error().message;
  for (const auto &hit : *jan) {
    EXPECT_FALSE(hit.locator.path.ends_with("/new/16:2,")) << hit.locator.path;
  }
}
