// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/mbox.hpp"
#include "connectors/pst.hpp"
#include "connectors/pst_export.hpp"
#include "core/fs.hpp"

#include "tests/corrupt_pst.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
using namespace maildsar;
using namespace maildsar::connectors;

namespace {

using Collector = connectors::ItemCollector;

fs::path pst_dir() {
  auto corpus = test::corpus_dir();
  return corpus.empty() ? fs::path() : corpus / "pst";
}

#define REQUIRE_PST_CORPUS()                                                                    \
  do {                                                                                         \
    if (pst_dir().empty() || !fs::exists(pst_dir())) {                                         \
      GTEST_SKIP() << "corpus pst/ not found";                                                 \
    }                                                                                          \
  } while (false)

std::vector<fs::path> corpus_psts() {
  std::vector<fs::path> out;
  for (const auto &entry : fs::recursive_directory_iterator(pst_dir())) {
    auto ext = entry.path().extension().string();
    if (entry.is_regular_file() && (ext == ".pst" || ext == ".ost")) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Scan {
  core::Result<PstScanStats> stats;
  Collector sink;
};

std::unique_ptr<Scan> scan(const fs::path &path) {
  auto s = std::make_unique<Scan>();
  s->stats = scan_pst_file("legacy", path.string(), s->sink);
  return s;
}

bool has_address(const Item &item, Role role, std::string_view needle) {
  return std::any_of(item.addresses.begin(), item.addresses.end(), [&](const RawAddress &a) {
    return a.role == role && (a.addr == needle || a.name == needle);
  });
}

bool has_text(const Item &item, Role role, std::string_view needle) {
  return std::any_of(item.texts.begin(), item.texts.end(), [&](const RawText &t) {
    return t.role == role && t.text.find(needle) != std::string::npos;
  });
}

using maildsar::test::find_program;

} // namespace

TEST(PstConnector, EmailCountMatchesReadpst) {
  REQUIRE_PST_CORPUS();
  auto readpst = find_program("readpst");
  if (readpst.empty()) {
    GTEST_SKIP() << "readpst (pst-utils) is not installed";
  }
  auto files = corpus_psts();
  ASSERT_FALSE(files.empty());
  for (const auto &file : files) {
    SCOPED_TRACE(file.string());
    test::ScratchDir out;
    // -D: deleted items too; -M: one file per item; -t e: e-mails only; -j 0: no forking
    auto rp = test::run({readpst.string(), "-D", "-M", "-t", "e", "-j", "0", "-q", "-o",
                         out.path().string(), file.string()});
    ASSERT_EQ(rp.exit_code, 0) << rp.err;
    std::uint64_t expected = 0;
    for (const auto &entry : fs::recursive_directory_iterator(out.path())) {
      if (entry.is_regular_file()) {
        ++expected;
      }
    }
    auto s = scan(file);
    ASSERT_TRUE(s->stats) << s->stats.error().message;
    EXPECT_EQ(s->stats->emails, expected);
    EXPECT_EQ(s->stats->items(), s->sink.items.size());
    for (const auto &item : s->sink.items) {
      EXPECT_EQ(item.locator.store, StoreKind::pst);
      EXPECT_EQ(item.locator.path, file.string());
      EXPECT_EQ(item.locator.source, "legacy");
      EXPECT_NE(item.locator.node_id, 0U);
      EXPECT_FALSE(item.locator.folder.empty());
      EXPECT_EQ(item.sha256.size(), 64U);
    }
  }
}

namespace {

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    if (c >= 0x80) {
      if ((c >> 5) == 0x6) {
        n = 1;
      } else if ((c >> 4) == 0xE) {
        n = 2;
      } else if ((c >> 3) == 0x1E) {
        n = 3;
      } else {
        return false;
      }
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) {
        return false;
      }
    }
    i += n + 1;
  }
  return true;
}

bool item_is_utf8(const Item &item) {
  bool ok = valid_utf8(item.subject) && valid_utf8(item.locator.folder) &&
            valid_utf8(item.message_id);
  for (const auto &a : item.addresses) {
    ok = ok && valid_utf8(a.name) && valid_utf8(a.addr);
  }
  for (const auto &t : item.texts) {
    ok = ok && valid_utf8(t.text);
  }
  return ok;
}

const Item *find_subject(const std::vector<Item> &items, std::string_view subject) {
  for (const auto &item : items) {
    if (item.subject == subject) {
      return &item;
    }
  }
  return nullptr;
}

} // namespace

TEST(PstConnector, FolderPathNodeIdAndIdentities) {
  REQUIRE_PST_CORPUS();
  auto s = scan(pst_dir() / "pstsdk/sample1.pst");
  ASSERT_TRUE(s->stats) << s->stats.error().message;
  EXPECT_TRUE(s->sink.errors.empty());
  ASSERT_EQ(s->sink.items.size(), 1U);
  const auto &item = s->sink.items.front();
  EXPECT_EQ(item.locator.folder, "Top of Outlook data file/Sample1");
  EXPECT_EQ(item.locator.node_id, 0x200024U);
  EXPECT_EQ(item.locator.key(), item.locator.path + "#" + std::to_string(0x200024));
  EXPECT_EQ(item.subject, "Here is a sample message");
  EXPECT_EQ(item.message_id,
            "B2FDDB8BE384C94794441DB4A7F3D8B804AE624B@TK5EX14MBXC114.redmond.corp.microsoft.com");
  ASSERT_TRUE(item.date.has_value());
  EXPECT_EQ(*item.date, 1268673127); // delivery time, 2010-03-15 17:12:07 UTC
  EXPECT_TRUE(has_address(item, Role::from, "terrymah@microsoft.com"));
  EXPECT_TRUE(has_address(item, Role::to, "terrymah@microsoft.com"));
  EXPECT_TRUE(has_address(item, Role::from, "Terry Mahaffey"));
  EXPECT_TRUE(std::any_of(item.ips.begin(), item.ips.end(), [](const RawValue &ip) {
    return ip.role == Role::received && ip.value == "157.54.79.174";
  }));
  EXPECT_TRUE(has_text(item, Role::body, "It’s my daughter and our puppy"));
  EXPECT_TRUE(has_text(item, Role::attachment_name, "leah_thumper.jpg"));
  EXPECT_TRUE(item_is_utf8(item));
}

TEST(PstConnector, AnsiAndUnicodeStoresAgree) {
  REQUIRE_PST_CORPUS();
  auto unicode = scan(pst_dir() / "pstsdk/sample1.pst");
  auto ansi = scan(pst_dir() / "pstsdk/sample2.pst");
  ASSERT_TRUE(unicode->stats && ansi->stats);
  ASSERT_EQ(unicode->sink.items.size(), 1U);
  ASSERT_EQ(ansi->sink.items.size(), 1U);
  const auto &u = unicode->sink.items.front();
  const auto &a = ansi->sink.items.front();
  EXPECT_EQ(a.subject, u.subject);
  EXPECT_EQ(a.message_id, u.message_id);
  EXPECT_EQ(a.date, u.date);
  EXPECT_EQ(a.locator.folder, "Top of Outlook data file/Sample2");
  EXPECT_TRUE(has_address(a, Role::from, "terrymah@microsoft.com"));
  EXPECT_TRUE(has_address(a, Role::from, "Terry Mahaffey"));
  EXPECT_TRUE(has_text(a, Role::body, "With a sample attachment."));
  EXPECT_TRUE(item_is_utf8(a));
}

TEST(PstConnector, ContactsGivePhonesAddressesAndNames) {
  REQUIRE_PST_CORPUS();
  auto s = scan(pst_dir() / "aspose/SampleContacts.pst");
  ASSERT_TRUE(s->stats) << s->stats.error().message;
  EXPECT_EQ(s->stats->contacts, 6U);
  EXPECT_EQ(s->stats->emails, 0U);
  const auto *tolle = find_subject(s->sink.items, "Margaret J. Tolle");
  ASSERT_NE(tolle, nullptr);
  EXPECT_EQ(tolle->locator.folder, "Top of Personal Folders/Contacts");
  EXPECT_TRUE(has_address(*tolle, Role::body, "MargaretJTolle@dayrep.com"));
  EXPECT_TRUE(has_address(*tolle, Role::body, "Margaret J. Tolle"));
  EXPECT_TRUE(has_text(*tolle, Role::body, "(08)9080-1183"));
  EXPECT_TRUE(has_text(*tolle, Role::body, "4 Darwinia Loop EIGHTY MILE BEACH WA 6725"));
  const auto *wilcox = find_subject(s->sink.items, "Matthew R. Wilcox");
  ASSERT_NE(wilcox, nullptr);
  // stored twice over by the writer: the single number is indexed too
  EXPECT_TRUE(std::any_of(wilcox->texts.begin(), wilcox->texts.end(), [](const RawText &t) {
    return t.role == Role::body && t.text == "(661)387-5382";
  }));
  EXPECT_TRUE(has_text(*wilcox, Role::body, "Horner Strasse 12 4421 SAASS"));
}

TEST(PstConnector, EmbeddedMessageIsAttachmentBody) {
  REQUIRE_PST_CORPUS();
  auto s = scan(pst_dir() / "pstsdk/submessage.pst");
  ASSERT_TRUE(s->stats) << s->stats.error().message;
  ASSERT_EQ(s->sink.items.size(), 1U);
  const auto &item = s->sink.items.front();
  EXPECT_TRUE(has_text(item, Role::body, "This is the body of the regular message"));
  EXPECT_TRUE(has_text(item, Role::attachment_name, "This is an embedded message"));
  EXPECT_TRUE(has_text(item, Role::attachment_body, "This is the body of an embedded message"));
  EXPECT_TRUE(has_text(item, Role::attachment_body, "terrymah@microsoft.com"));
  EXPECT_FALSE(has_text(item, Role::body, "This is the body of an embedded message"));
}

TEST(PstConnector, NonAsciiSenderIsUtf8) {
  REQUIRE_PST_CORPUS();
  auto s = scan(pst_dir() / "tika/testPST.pst");
  ASSERT_TRUE(s->stats) << s->stats.error().message;
  EXPECT_EQ(s->stats->emails, 7U);
  bool found = false;
  for (const auto &item : s->sink.items) {
    EXPECT_TRUE(item_is_utf8(item)) << item.subject;
    found = found || has_address(item, Role::from, "Jörn Kottmann");
  }
  EXPECT_TRUE(found);
}

TEST(PstConnector, HtmlAndRtfBodiesBecomeText) {
  REQUIRE_PST_CORPUS();
  for (const char *name : {"go-pst/support.pst", "tika/testPST_variousBodyTypes.pst"}) {
    SCOPED_TRACE(name);
    auto s = scan(pst_dir() / name);
    ASSERT_TRUE(s->stats) << s->stats.error().message;
    std::size_t with_body = 0;
    for (const auto &item : s->sink.items) {
      for (const auto &t : item.texts) {
        if (t.role == Role::body) {
          EXPECT_EQ(t.text.find("<html"), std::string::npos);
          EXPECT_EQ(t.text.find("\\rtf1"), std::string::npos);
          EXPECT_EQ(t.text.find("\\par"), std::string::npos);
        }
      }
      if (has_text(item, Role::body, "Dear Client") || has_text(item, Role::body, "original")) {
        ++with_body;
      }
    }
    EXPECT_GE(with_body + 1, s->stats->emails); // support.pst has one "test" message
  }
  auto various = scan(pst_dir() / "tika/testPST_variousBodyTypes.pst");
  ASSERT_TRUE(various->stats);
  ASSERT_EQ(various->sink.items.size(), 4U);
  // the third message has a plain and an RTF body: the RTF comes out as text, once per line
  const auto &rtf_item = various->sink.items[2];
  EXPECT_GE(std::count_if(rtf_item.texts.begin(), rtf_item.texts.end(),
                          [](const RawText &t) {
                            return t.role == Role::body && t.text.find("original email") !=
                                                               std::string::npos;
                          }),
            2);
  auto support = scan(pst_dir() / "go-pst/support.pst");
  ASSERT_TRUE(support->stats);
  EXPECT_TRUE(std::any_of(support->sink.items.begin(), support->sink.items.end(),
                          [](const Item &i) { return has_address(i, Role::from, "support@hackingteam.com"); }));
}

TEST(PstConnector, AllCorpusItemsAreUtf8AndHashesStable) {
  REQUIRE_PST_CORPUS();
  for (const auto &file : corpus_psts()) {
    SCOPED_TRACE(file.string());
    auto first = scan(file);
    auto second = scan(file);
    ASSERT_TRUE(first->stats && second->stats);
    ASSERT_EQ(first->sink.items.size(), second->sink.items.size());
    std::set<std::string> keys;
    for (std::size_t i = 0; i < first->sink.items.size(); ++i) {
      const auto &a = first->sink.items[i];
      EXPECT_TRUE(item_is_utf8(a));
      EXPECT_EQ(a.sha256, second->sink.items[i].sha256);
      EXPECT_TRUE(keys.insert(a.locator.key()).second) << "duplicate locator " << a.locator.key();
    }
  }
}

TEST(PstConnector, CorruptFilesAreReportedNotFatal) {
  REQUIRE_PST_CORPUS();
  test::ScratchDir dir;
  auto original = test::read_file(pst_dir() / "tika/testPST.pst");
  ASSERT_GT(original.size(), 4096U);
  std::mt19937 rng(42);
  std::string noise(65536, '\0');
  for (auto &c : noise) {
    c = static_cast<char>(rng() & 0xFF);
  }
  std::string header_then_noise = original.substr(0, 4096) + noise;
  std::vector<std::pair<std::string, std::string>> cases{
      {"empty.pst", ""},
      {"random.pst", noise},
      {"half.pst", original.substr(0, original.size() / 2)},
      {"quarter.pst", original.substr(0, original.size() / 4)},
      {"header-only.pst", original.substr(0, 512)},
      {"header-noise.pst", header_then_noise},
      {"text.pst", "From: a@b\n\nnot a pst at all, just some words that are long enough......"},
  };
  for (const auto &[name, bytes] : cases) {
    SCOPED_TRACE(name);
    test::write_file(dir / name, bytes);
    auto s = scan(dir / name);
    if (s->stats) {
      EXPECT_FALSE(s->sink.errors.empty()) << "a damaged file must give a ScanError";
      for (const auto &e : s->sink.errors) {
        EXPECT_EQ(e.path, (dir / name).string());
        EXPECT_FALSE(e.cause.empty());
      }
    } else {
      EXPECT_EQ(s->stats.error().code, core::ErrorCode::data);
      EXPECT_NE(s->stats.error().message.find((dir / name).string()), std::string::npos);
    }
  }
  // Bytes flipped inside the file: whatever libpst makes of it, no crash and no bad UTF-8.
  for (std::size_t offset : {std::size_t{0x4400}, std::size_t{0x10000}, original.size() / 3,
                             original.size() - 8192}) {
    auto damaged = original;
    for (std::size_t i = 0; i < 256 && offset + i < damaged.size(); ++i) {
      damaged[offset + i] = static_cast<char>(rng() & 0xFF);
    }
    auto path = dir / ("flipped-" + std::to_string(offset) + ".pst");
    test::write_file(path, damaged);
    auto s = scan(path);
    if (s->stats) {
      for (const auto &item : s->sink.items) {
        EXPECT_TRUE(item_is_utf8(item));
      }
    }
  }
}

TEST(PstConnector, MissingFileIsAnError) {
  test::ScratchDir dir;
  Collector sink;
  auto stats = scan_pst_file("legacy", (dir / "nope.pst").string(), sink);
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code, core::ErrorCode::no_input);
}

TEST(PstConnector, ListFilesSkipsSymlinksAndScans) {
  REQUIRE_PST_CORPUS();
  test::ScratchDir dir;
  fs::create_directories(dir / "pst");
  fs::copy_file(pst_dir() / "pstsdk/sample1.pst", dir / "pst/alice.pst");
  fs::copy_file(pst_dir() / "pstsdk/submessage.pst", dir / "pst/bob.pst");
  fs::create_symlink(dir / "pst/alice.pst", dir / "pst/link.pst");
  fs::create_directories(dir / "pst/dir.pst");
  core::SourceConfig source;
  source.name = "legacy";
  source.type = "pst";
  source.path = (dir / "pst/*.pst").string();
  source.owner = "{1}@example.com";
  source.root = (dir / "pst").string();
  auto connector = make_pst_connector(source);
  ASSERT_TRUE(connector) << connector.error().message;
  EXPECT_EQ((*connector)->kind(), StoreKind::pst);
  EXPECT_FALSE((*connector)->supports_append());
  Collector errors;
  auto files = (*connector)->list_files(errors);
  ASSERT_TRUE(files) << files.error().message;
  ASSERT_EQ(files->size(), 2U);
  EXPECT_EQ((*files)[0].path, (dir / "pst/alice.pst").string());
  EXPECT_EQ((*files)[0].owner, "alice@example.com");
  EXPECT_EQ((*files)[1].path, (dir / "pst/bob.pst").string());
  ASSERT_EQ(errors.errors.size(), 1U);
  EXPECT_EQ(errors.errors[0].path, (dir / "pst/link.pst").string());
  EXPECT_NE(errors.errors[0].cause.find("symbolic link"), std::string::npos);

  Collector sink;
  ASSERT_TRUE((*connector)->scan((*files)[1], 0, sink));
  ASSERT_EQ(sink.items.size(), 1U);
  EXPECT_EQ(sink.items[0].locator.path, (dir / "pst/bob.pst").string());
  EXPECT_FALSE((*connector)->scan((*files)[1], 100, sink));
}

TEST(PstConnector, ParallelScansAreSerialisedSafely) {
  REQUIRE_PST_CORPUS();
  auto a_path = pst_dir() / "tika/testPST.pst";
  auto b_path = pst_dir() / "aspose/Test_part1.pst";
  auto a_ref = scan(a_path);
  auto b_ref = scan(b_path);
  ASSERT_TRUE(a_ref->stats && b_ref->stats);
  std::unique_ptr<Scan> a;
  std::unique_ptr<Scan> b;
  std::thread ta([&] { a = scan(a_path); });
  std::thread tb([&] { b = scan(b_path); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a->stats && b->stats);
  ASSERT_EQ(a->sink.items.size(), a_ref->sink.items.size());
  ASSERT_EQ(b->sink.items.size(), b_ref->sink.items.size());
  for (std::size_t i = 0; i < a->sink.items.size(); ++i) {
    EXPECT_EQ(a->sink.items[i].sha256, a_ref->sink.items[i].sha256);
  }
  for (std::size_t i = 0; i < b->sink.items.size(); ++i) {
    EXPECT_EQ(b->sink.items[i].sha256, b_ref->sink.items[i].sha256);
  }
}

TEST(PstMbox, MessagesKeepTheirBytesAndQuoteFromLines) {
  PstRendering eml{"eml", "From: Terry <terry@example.com>\r\nSubject: plan\r\n\r\nFrom here on\r\n>From there\r\nend"};
  std::string entry = to_mbox_message(eml, PstMboxContext{"old.pst", "Top/Inbox", 2097188, 1700000000});
  EXPECT_TRUE(entry.starts_with("From MAILER-DAEMON Tue Nov 14 22:13:20 2023\n")) << entry;
  EXPECT_NE(entry.find("X-Maildsar-PST-File: old.pst\nX-Maildsar-PST-Folder: Top/Inbox\nX-Maildsar-PST-Node: 2097188\n"
                       "From: Terry <terry@example.com>\nSubject: plan\n\n>From here on\n>>From there\nend\n\n"),
            std::string::npos)
      << entry;
  EXPECT_EQ(entry.find('\r'), std::string::npos);
  EXPECT_TRUE(looks_like_mbox_from_line(entry.substr(0, entry.find('\n'))));
  // A non-ASCII folder name is RFC 2047-encoded, never raw in a header.
  std::string utf8 = to_mbox_message(eml, PstMboxContext{"old.pst", "Début/Boîte", 1, 1700000000});
  EXPECT_NE(utf8.find("X-Maildsar-PST-Folder: =?UTF-8?B?"), std::string::npos) << utf8;
}

TEST(PstMbox, ContactsAndOtherItemsBecomeReadableMessages) {
  test::ScratchDir dir;
  PstRendering vcf{"vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Margaret J. Tolle\r\n"
                          "EMAIL;TYPE=INTERNET:MargaretJTolle@dayrep.com\r\nEND:VCARD\r\n"};
  PstRendering txt{"txt", "Subject: note\n\nFrom the desk of someone: call 020 7946 0123\n"};
  const std::string mbox = to_mbox_message(vcf, PstMboxContext{"c.pst", "Top/Contacts", 7, 1700000000}) +
                           to_mbox_message(txt, PstMboxContext{"c.pst", "Top/Notes", 8, 1700000000});
  EXPECT_NE(mbox.find("Content-Type: text/vcard; charset=UTF-8"), std::string::npos);
  EXPECT_NE(mbox.find("Content-Type: text/plain; charset=UTF-8"), std::string::npos);
  const fs::path path = dir / "c.mbox";
  test::write_file(path, mbox);
  auto connector = make_mbox_connector(core::SourceConfig{"archive", "mbox", "", path.string(), "", dir.path().string()});
  ASSERT_TRUE(connector);
  Collector sink;
  auto st = core::lstat_file(path.string());
  ASSERT_TRUE(st);
  ASSERT_TRUE((*connector)->scan(FileEntry{path.string(), "", "", *st}, 0, sink));
  EXPECT_TRUE(sink.errors.empty());
  ASSERT_EQ(sink.items.size(), 2U);
  // The mbox connector finds the contact's address in the decoded vCard, and the note's text.
  bool address = false;
  for (const RawText &t : sink.items[0].texts) {
    address = address || t.text.find("MargaretJTolle@dayrep.com") != std::string::npos;
  }
  EXPECT_TRUE(address);
  bool note = false;
  for (const RawText &t : sink.items[1].texts) {
    note = note || t.text.find("020 7946 0123") != std::string::npos;
  }
  EXPECT_TRUE(note);
  EXPECT_EQ(sink.items[0].message_id, "pst-7-1700000000@maildsar.invalid");
}

// ---------------------------------------------------------------------------------------------
// libpst in the worker process (issue 13 item 8): a file that crashes, hangs or bloats libpst is
// one error naming it, and this process goes on.

/** Sets the PST worker limits (and a test fault) for one test. */
class ScopedPstLimits {
public:
  explicit ScopedPstLimits(isolate::Limits limits, const char *fault = nullptr) : m_old(pst_limits()) {
    set_pst_limits(limits);
    if (fault != nullptr) {
      ::setenv("MAILDSAR_WORKER_TEST_FAULT", fault, 1);
    }
  }
  ~ScopedPstLimits() {
    set_pst_limits(m_old);
    ::unsetenv("MAILDSAR_WORKER_TEST_FAULT");
  }
  ScopedPstLimits(const ScopedPstLimits &) = delete;
  ScopedPstLimits &operator=(const ScopedPstLimits &) = delete;

private:
  isolate::Limits m_old;
};

TEST(PstIsolation, FilesThatCrashLibpstAreOneErrorEachAndScanningGoesOn) {
  REQUIRE_PST_CORPUS();
  test::ScratchDir dir;
  for (auto kind : {test::CorruptPst::parse_item, test::CorruptPst::extended_attrs}) {
    auto path = dir / (kind == test::CorruptPst::parse_item ? "parse-item.pst" : "extended-attrs.pst");
    ASSERT_TRUE(test::make_corrupt_pst(test::corpus_dir(), path, kind));
    auto s = scan(path);
    ASSERT_FALSE(s->stats) << path;
    const auto &message = s->stats.error().message;
    EXPECT_EQ(s->stats.error().code, core::ErrorCode::data);
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("pst-scan worker crashed: killed by signal SIG"), std::string::npos) << message;
  }
  auto good = scan(pst_dir() / "pstsdk/sample1.pst");
  ASSERT_TRUE(good->stats) << good->stats.error().message;
  EXPECT_EQ(good->stats->emails, 1U);
  EXPECT_EQ(good->sink.items.size(), 1U);
}

TEST(PstIsolation, RenderingAFileThatCrashesLibpstIsAnError) {
  REQUIRE_PST_CORPUS();
  test::ScratchDir dir;
  auto path = dir / "extended-attrs.pst";
  ASSERT_TRUE(test::make_corrupt_pst(test::corpus_dir(), path, test::CorruptPst::extended_attrs));
  int handed = 0;
  auto st = for_each_pst_rendering(path.string(), {2097188}, [&](std::uint64_t, core::Result<PstRendering>) {
    ++handed;
    return core::Status{};
  });
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("pst-render worker crashed"), std::string::npos) << st.error().message;
  EXPECT_EQ(handed, 0);
  auto fine = render_pst_items((pst_dir() / "pstsdk/sample1.pst").string(), {2097188});
  ASSERT_TRUE(fine) << fine.error().message;
  ASSERT_TRUE(fine->at(2097188)) << fine->at(2097188).error().message;
  EXPECT_EQ(fine->at(2097188)->extension, "eml");
}

TEST(PstIsolation, FileThatBloatsLibpstHitsTheMemoryLimit) {
  REQUIRE_PST_CORPUS();
  if (!isolate::memory_limit_supported()) {
    GTEST_SKIP() << "RLIMIT_AS is not set in AddressSanitizer builds";
  }
  test::ScratchDir dir;
  auto path = dir / "bloat.pst";
  ASSERT_TRUE(test::make_corrupt_pst(test::corpus_dir(), path, test::CorruptPst::bloat));
  ScopedPstLimits limits({.cpu_seconds = 60, .memory_mib = 256, .wall_seconds = 60});
  auto s = scan(path);
  ASSERT_FALSE(s->stats);
  EXPECT_NE(s->stats.error().message.find("exceeded the memory limit of 256 MiB"), std::string::npos)
      << s->stats.error().message;
  EXPECT_NE(s->stats.error().message.find("Out Of memory"), std::string::npos) << "libpst's last words";
}

TEST(PstIsolation, HangingAndSpinningWorkersHitTheirLimits) {
  REQUIRE_PST_CORPUS();
  {
    ScopedPstLimits limits({.cpu_seconds = 60, .memory_mib = 1024, .wall_seconds = 1}, "sleep:sample1.pst");
    auto s = scan(pst_dir() / "pstsdk/sample1.pst");
    ASSERT_FALSE(s->stats);
    EXPECT_NE(s->stats.error().message.find("exceeded the wall-clock limit of 1 s"), std::string::npos)
        << s->stats.error().message;
    auto other = scan(pst_dir() / "pstsdk/sample2.pst"); // the fault names one file only
    EXPECT_TRUE(other->stats);
  }
  {
    ScopedPstLimits limits({.cpu_seconds = 1, .memory_mib = 1024, .wall_seconds = 60}, "spin:sample1.pst");
    auto s = scan(pst_dir() / "pstsdk/sample1.pst");
    ASSERT_FALSE(s->stats);
    EXPECT_NE(s->stats.error().message.find("exceeded the CPU-time limit of 1 s"), std::string::npos)
        << s->stats.error().message;
  }
}
