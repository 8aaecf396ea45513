// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/quarantine.hpp"
#include "connectors/emlfolder.hpp"

#include "core/hash.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace maildsar::connectors {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;
using test::write_file;

class CollectSink : public ItemCollector {
public:
  [[nodiscard]] bool has_error(const std::string &path_part, const std::string &cause_part) const {
    return std::any_of(errors.begin(), errors.end(), [&](const ScanError &e) {
      return e.path.find(path_part) != std::string::npos &&
             e.cause.find(cause_part) != std::string::npos;
    });
  }
};

using test::gzip;

// An amavis virus quarantine file: envelope headers prepended, recipients folded over lines.
constexpr std::string_view k_virus_message =
    "Return-Path: <mallory@evil.example>\n"
    "Delivered-To: virus-quarantine\n"
    "X-Envelope-From: <mallory@evil.example>\n"
    "X-Envelope-To: <alice.smith@example.com>,\n"
    " <bob.jones@example.com>,\n"
    "\t<carol@example.org>\n"
    "X-Envelope-To-Blocked: <alice.smith@example.com>,\n"
    " <bob.jones@example.com>\n"
    "X-Quarantine-ID: <26W2lJY63nCZ>\n"
    "X-Amavis-Alert: INFECTED, message contains virus: Porcupine.Phishing.55542\n"
    "Received: from mx.evil.example ([192.0.2.7]) by mx.example.com\n"
    "From: Mallory <mallory@evil.example>\n"
    "To: undisclosed-recipients:;\n"
    "Subject: Your invoice\n"
    "Message-ID: <20240223075525.8CD9941B67@evil.example>\n"
    "Date: Fri, 23 Feb 2024 04:55:25 +0000\n"
    "\n"
    "Please open the attachment.\n";

std::string simple_message(std::string_view id, std::string_view to, std::string_view subject,
                           std::string_view extra_headers = {}) {
  return std::string(extra_headers) + "From: Sender <sender@example.net>\nTo: " + std::string(to) +
         "\nSubject: " + std::string(subject) + "\nMessage-ID: <" + std::string(id) +
         ">\nDate: Mon, 26 Feb 2024 10:00:00 +0000\n\nHello.\n";
}

core::SourceConfig source_for(std::string format, const fs::path &path) {
  core::SourceConfig s;
  s.name = "q-" + format;
  s.type = "quarantine";
  s.format = std::move(format);
  s.path = path.string();
  return s;
}

std::unique_ptr<Connector> make(const core::SourceConfig &source) {
  auto c = make_quarantine_connector(source);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
  return c ? std::move(*c) : nullptr;
}

/** Lists and scans every file; list errors and scan errors go to the same sink. */
std::vector<FileEntry> scan_all(const Connector &c, CollectSink &sink) {
  auto files = c.list_files(sink);
  EXPECT_TRUE(files.has_value()) << (files ? "" : files.error().message);
  if (!files) {
    return {};
  }
  for (const FileEntry &f : *files) {
    auto st = c.scan(f, 0, sink);
    EXPECT_TRUE(st.has_value()) << f.path << ": " << (st ? "" : st.error().message);
  }
  return *files;
}

const Item *find_item(const CollectSink &sink, std::string_view path_suffix) {
  for (const Item &i : sink.items) {
    if (i.locator.path.size() >= path_suffix.size() &&
        i.locator.path.compare(i.locator.path.size() - path_suffix.size(), path_suffix.size(),
                               path_suffix) == 0) {
      return &i;
    }
  }
  return nullptr;
}

std::set<std::string> addrs_with_role(const Item &item, Role role) {
  std::set<std::string> out;
  for (const RawAddress &a : item.addresses) {
    if (a.role == role) {
      out.insert(a.addr);
    }
  }
  return out;
}

std::size_t count_role(const Item &item, Role role, std::string_view addr) {
  return static_cast<std::size_t>(
      std::count_if(item.addresses.begin(), item.addresses.end(),
                    [&](const RawAddress &a) { return a.role == role && a.addr == addr; }));
}

/** A Debian-style amavis store: root files and quarantine_subdir_levels=1 folders. */
void make_amavis_store(const fs::path &root) {
  write_file(root / "2" / "virus-26W2lJY63nCZ", k_virus_message);
  write_file(root / "s" / "spam-sPaM0000000A.gz",
             gzip(simple_message("spam1@example.net", "dave@example.com", "Cheap pills",
                                 "X-Envelope-From: <sender@example.net>\n"
                                 "X-Envelope-To: <dave@example.com>\n"
                                 "X-Quarantine-ID: <sPaM0000000A>\n")));
  write_file(root / "banned-BaNnEd00000B",
             simple_message("banned1@example.net", "erin@example.com", "Banned attachment",
                            "X-Envelope-To: <erin@example.com>\n"));
  write_file(root / "badh-BaDh0000000C",
             simple_message("badh1@example.net", "frank@example.com", "Bad header"));
}

TEST(QuarantineConnector, KindFormatsAndAppend) {
  ScratchDir dir;
  for (const char *format : {"amavis", "mailscanner", "plain", "pmg"}) {
    auto c = make(source_for(format, dir.path()));
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->kind(), StoreKind::quarantine);
    EXPECT_FALSE(c->supports_append());
  }
  auto bad = make_quarantine_connector(source_for("sophos", dir.path()));
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, core::ErrorCode::config);
  EXPECT_NE(bad.error().message.find("sophos"), std::string::npos);
  EXPECT_FALSE(make_quarantine_connector(source_for("", dir.path())).has_value());
}

TEST(QuarantineConnector, AmavisListsRootAndOneLevelDown) {
  ScratchDir dir;
  fs::path root = dir / "virusmails";
  make_amavis_store(root);
  write_file(root / "a" / "deeper" / "virus-DeEpEr00000D", k_virus_message);
  write_file(root / "README", "not a quarantine file\n");
  auto c = make(source_for("amavis", root));
  CollectSink sink;
  auto files = c->list_files(sink);
  ASSERT_TRUE(files.has_value());
  std::map<std::string, std::string> folder_of;
  for (const FileEntry &f : *files) {
    EXPECT_EQ(f.path.rfind(root.string(), 0), 0U);
    EXPECT_NE(f.stat.ino, 0U);
    folder_of[fs::path(f.path).filename().string()] = f.folder;
  }
  EXPECT_EQ(folder_of, (std::map<std::string, std::string>{
                           {"virus-26W2lJY63nCZ", "virus"},
                           {"spam-sPaM0000000A.gz", "spam"},
                           {"banned-BaNnEd00000B", "banned"},
                           {"badh-BaDh0000000C", "badh"},
                       }));
  EXPECT_TRUE(sink.has_error("deeper", "quarantine_subdir_levels"));
  EXPECT_TRUE(sink.has_error("README", "not an amavis quarantine file name"));
  EXPECT_EQ(sink.errors.size(), 2U);
}

TEST(QuarantineConnector, AmavisEnvelopeRecipientsHaveTheirOwnRole) {
  ScratchDir dir;
  fs::path root = dir / "virusmails";
  make_amavis_store(root);
  auto c = make(source_for("amavis", root));
  CollectSink sink;
  scan_all(*c, sink);
  EXPECT_TRUE(sink.errors.empty()) << sink.errors.front().path << ": " << sink.errors.front().cause;
  ASSERT_EQ(sink.items.size(), 4U);

  const Item *virus = find_item(sink, "2/virus-26W2lJY63nCZ");
  ASSERT_NE(virus, nullptr);
  EXPECT_EQ(addrs_with_role(*virus, Role::envelope_to),
            (std::set<std::string>{"alice.smith@example.com", "bob.jones@example.com",
                                   "carol@example.org"}));
  // The recipients are blocked twice (X-Envelope-To and -Blocked) but listed once per role.
  EXPECT_EQ(count_role(*virus, Role::envelope_to, "alice.smith@example.com"), 1U);
  for (const char *rcpt : {"alice.smith@example.com", "bob.jones@example.com", "carol@example.org"}) {
    EXPECT_EQ(count_role(*virus, Role::to, rcpt), 0U) << rcpt;
  }
  EXPECT_EQ(addrs_with_role(*virus, Role::envelope_from),
            (std::set<std::string>{"mallory@evil.example"}));
  EXPECT_TRUE(addrs_with_role(*virus, Role::from).contains("mallory@evil.example"));
  EXPECT_EQ(virus->locator.store, StoreKind::quarantine);
  EXPECT_EQ(virus->locator.source, "q-amavis");
  EXPECT_EQ(virus->locator.folder, "virus");
  EXPECT_EQ(virus->locator.queue_id, "26W2lJY63nCZ");
  EXPECT_EQ(virus->locator.length, 0U);
  EXPECT_EQ(virus->locator.key(), virus->locator.path);
  EXPECT_EQ(virus->message_id, "20240223075525.8CD9941B67@evil.example");
  EXPECT_EQ(virus->subject, "Your invoice");
  ASSERT_TRUE(virus->date.has_value());
  EXPECT_EQ(*virus->date, 1708664125);
  EXPECT_EQ(virus->sha256, core::sha256_hex(k_virus_message));

  const Item *badh = find_item(sink, "badh-BaDh0000000C");
  ASSERT_NE(badh, nullptr);
  EXPECT_EQ(badh->locator.queue_id, "BaDh0000000C"); // from the file name: no X-Quarantine-ID
  EXPECT_TRUE(addrs_with_role(*badh, Role::envelope_to).empty());
  EXPECT_TRUE(addrs_with_role(*badh, Role::to).contains("frank@example.com"));
}

TEST(QuarantineConnector, AmavisGzipFileHashesStoredBytes) {
  ScratchDir dir;
  fs::path root = dir / "virusmails";
  make_amavis_store(root);
  auto c = make(source_for("amavis", root));
  CollectSink sink;
  scan_all(*c, sink);
  const Item *spam = find_item(sink, "s/spam-sPaM0000000A.gz");
  ASSERT_NE(spam, nullptr);
  EXPECT_EQ(spam->subject, "Cheap pills");
  EXPECT_EQ(spam->message_id, "spam1@example.net");
  EXPECT_EQ(spam->locator.folder, "spam");
  EXPECT_EQ(spam->locator.queue_id, "sPaM0000000A");
  EXPECT_EQ(spam->sha256, core::sha256_hex(test::read_file(root / "s" / "spam-sPaM0000000A.gz")));
  EXPECT_EQ(addrs_with_role(*spam, Role::envelope_to), (std::set<std::string>{"dave@example.com"}));
}

TEST(QuarantineConnector, AmavisMboxTargetGivesOneItemPerMessage) {
  ScratchDir dir;
  fs::path root = dir / "virusmails";
  std::string first = "From mallory@evil.example Fri Feb 23 04:55:57 2024\n" +
                      std::string(k_virus_message) + ">From the attachment: open it\n\n";
  std::string second = "From sender@example.net Mon Feb 26 10:00:00 2024\n" +
                       simple_message("m2@example.net", "gina@example.com", "Second",
                                      "X-Envelope-To: <gina@example.com>\n"
                                      "X-Quarantine-ID: <SeCoNd00000E>\n");
  write_file(root / "spam-quarantine", first + second);
  auto c = make(source_for("amavis", root));
  CollectSink sink;
  scan_all(*c, sink);
  EXPECT_TRUE(sink.errors.empty());
  ASSERT_EQ(sink.items.size(), 2U);
  const Item &a = sink.items[0];
  const Item &b = sink.items[1];
  EXPECT_EQ(a.locator.offset, 0U);
  EXPECT_EQ(a.locator.length, first.size());
  EXPECT_EQ(b.locator.offset, first.size());
  EXPECT_EQ(b.locator.length, second.size());
  EXPECT_NE(a.locator.key(), b.locator.key());
  EXPECT_EQ(a.sha256, core::sha256_hex(first));
  EXPECT_EQ(b.sha256, core::sha256_hex(second));
  EXPECT_EQ(a.locator.queue_id, "26W2lJY63nCZ"); // X-Quarantine-ID of each message
  EXPECT_EQ(b.locator.queue_id, "SeCoNd00000E");
  EXPECT_EQ(a.locator.folder, "spam");
  EXPECT_TRUE(addrs_with_role(a, Role::envelope_to).contains("carol@example.org"));
  EXPECT_EQ(addrs_with_role(b, Role::envelope_to), (std::set<std::string>{"gina@example.com"}));
  EXPECT_EQ(b.subject, "Second");
}

TEST(QuarantineConnector, AmavisCompressedMboxOffsetsReferToDecompressedBytes) {
  ScratchDir dir;
  fs::path root = dir / "virusmails";
  std::string first = "From a@example.net Mon Feb 26 10:00:00 2024\n" +
                      simple_message("z1@example.net", "xena@example.com", "Z one") + "\n";
  std::string second = "From b@example.net Mon Feb 26 11:00:00 2024\n" +
                       simple_message("z2@example.net", "yann@example.com", "Z two");
  write_file(root / "archive-mbox.gz", gzip(first + second));
  auto c = make(source_for("amavis", root));
  CollectSink sink;
  scan_all(*c, sink);
  EXPECT_TRUE(sink.errors.empty());
  ASSERT_EQ(sink.items.size(), 2U);
  EXPECT_EQ(sink.items[0].locator.folder, "archive");
  EXPECT_EQ(sink.items[0].locator.offset, 0U);
  EXPECT_EQ(sink.items[0].locator.length, first.size());
  EXPECT_EQ(sink.items[1].locator.offset, first.size());
  EXPECT_EQ(sink.items[1].sha256, core::sha256_hex(second));
  EXPECT_EQ(sink.items[1].subject, "Z two");
  EXPECT_TRUE(addrs_with_role(sink.items[0], Role::to).contains("xena@example.com"));
}

TEST(QuarantineConnector, TruncatedGzipIsAnErrorNotACrash) {
  ScratchDir dir;
  fs::path root = dir / "virusmails";
  std::string gz = gzip(k_virus_message);
  write_file(root / "spam-TrUnCaTeD000.gz", gz.substr(0, gz.size() / 2));
  write_file(root / "spam-CoRrUpT00000.gz", "\x1f\x8b\x08\x00garbage that is no deflate stream");
  write_file(root / "virus-26W2lJY63nCZ", k_virus_message);
  auto c = make(source_for("amavis", root));
  CollectSink sink;
  scan_all(*c, sink);
  ASSERT_EQ(sink.items.size(), 1U); // the run goes on
  EXPECT_TRUE(sink.has_error("spam-TrUnCaTeD000.gz", "truncated"));
  EXPECT_TRUE(sink.has_error("spam-CoRrUpT00000.gz", "gzip"));
  EXPECT_EQ(sink.errors.size(), 2U);
}

TEST(QuarantineConnector, GarbageFileIsAnErrorNamingTheFile) {
  ScratchDir dir;
  fs::path root = dir / "virusmails";
  std::string garbage;
  for (int i = 0; i < 4096; ++i) {
    garbage += static_cast<char>((i * 7919) % 256);
  }
  write_file(root / "virus-GaRbAgE0000F", garbage);
  write_file(root / "banned-EmPtY00000G", "");
  auto c = make(source_for("amavis", root));
  CollectSink sink;
  scan_all(*c, sink);
  EXPECT_TRUE(sink.items.empty());
  EXPECT_TRUE(sink.has_error("virus-GaRbAgE0000F", "not a mail message"));
  EXPECT_TRUE(sink.has_error("banned-EmPtY00000G", "not a mail message"));
}

TEST(QuarantineConnector, SymlinksAreReportedAndNotFollowed) {
  ScratchDir dir;
  fs::path root = dir / "virusmails";
  make_amavis_store(root);
  write_file(dir / "outside" / "virus-OuTsIdE0000H", k_virus_message);
  fs::create_symlink(dir / "outside" / "virus-OuTsIdE0000H", root / "virus-LiNk00000000");
  fs::create_directory_symlink(dir / "outside", root / "o");
  fs::create_directory_symlink(root, dir / "linked-root");
  auto c = make(source_for("amavis", root));
  CollectSink sink;
  auto files = scan_all(*c, sink);
  EXPECT_EQ(files.size(), 4U);
  EXPECT_TRUE(sink.has_error("virus-LiNk00000000", "symbolic link"));
  EXPECT_TRUE(sink.has_error("virusmails/o", "symbolic link"));
  EXPECT_EQ(find_item(sink, "virus-OuTsIdE0000H"), nullptr);

  auto via_link = make(source_for("amavis", dir / "linked-root"));
  CollectSink sink2;
  auto files2 = via_link->list_files(sink2);
  ASSERT_TRUE(files2.has_value());
  EXPECT_TRUE(files2->empty());
  EXPECT_TRUE(sink2.has_error("linked-root", "symbolic link"));

  // A file swapped for a symlink after listing is refused at scan time.
  FileEntry entry = files.front();
  fs::remove(entry.path);
  fs::create_symlink(dir / "outside" / "virus-OuTsIdE0000H", entry.path);
  CollectSink sink3;
  EXPECT_FALSE(c->scan(entry, 0, sink3).has_value());
  EXPECT_TRUE(sink3.items.empty());
}

TEST(QuarantineConnector, DotfilesAreSkippedSilently) {
  ScratchDir dir;
  fs::path root = dir / "virusmails";
  make_amavis_store(root);
  write_file(root / ".lock", "");
  write_file(root / ".virus-HiDdEn00000I", k_virus_message);
  write_file(root / ".cache" / "virus-HiDdEn00000J", k_virus_message);
  auto c = make(source_for("amavis", root));
  CollectSink sink;
  auto files = scan_all(*c, sink);
  EXPECT_EQ(files.size(), 4U);
  EXPECT_EQ(sink.items.size(), 4U);
  EXPECT_TRUE(sink.errors.empty());
}

TEST(QuarantineConnector, GlobPathAndOwner) {
  ScratchDir dir;
  make_amavis_store(dir / "hosts" / "mx1" / "virusmails");
  make_amavis_store(dir / "hosts" / "mx2" / "virusmails");
  auto source = source_for("amavis", dir / "hosts" / "*" / "virusmails");
  source.owner = "postmaster@{1}.example.com";
  auto c = make(source);
  CollectSink sink;
  auto files = scan_all(*c, sink);
  EXPECT_EQ(files.size(), 8U);
  ASSERT_EQ(sink.items.size(), 8U);
  const Item *mx2 = find_item(sink, "mx2/virusmails/2/virus-26W2lJY63nCZ");
  ASSERT_NE(mx2, nullptr);
  EXPECT_EQ(addrs_with_role(*mx2, Role::owner),
            (std::set<std::string>{"postmaster@mx2.example.com"}));

  auto missing = make(source_for("amavis", dir / "nowhere"));
  CollectSink sink2;
  auto none = missing->list_files(sink2);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, core::ErrorCode::no_input);
}

/** MailScanner v5 layout: day folders, message dirs, store-action folders. */
void make_mailscanner_store(const fs::path &root) {
  fs::path day = root / "20240223";
  // A virus: whole message plus the offending attachment (not a message: skipped).
  write_file(day / "4bsM5k4xJmz4rT6" / "message",
             simple_message("v1@example.net", "harry@example.com", "Virus inside"));
  write_file(day / "4bsM5k4xJmz4rT6" / "invoice.exe", "MZ\x90\x00binary");
  // Spam store actions.
  write_file(day / "spam" / "C6E0DDB74006",
             simple_message("s1@example.net", "ida@example.com", "Spam one"));
  write_file(day / "nonspam" / "0F5383D",
             simple_message("n1@example.net", "jack@example.com", "Not spam"));
  // A header/body pair: one message.
  write_file(day / "spam" / "3D74ADB7400B.header",
             "From: Sender <sender@example.net>\nTo: kate@example.com\nSubject: Paired\n"
             "Message-ID: <pair@example.net>\n");
  write_file(day / "spam" / "3D74ADB7400B.body", "Body of the pair, from luke@example.com\n");
  // An infected message whose whole message was not kept: attachments only.
  fs::path att = root / "20240224" / "E89FA2DEDA";
  write_file(att / "report.txt", "Contact mike@example.com or +44 20 7946 0123\n");
  write_file(att / "evil.bin", std::string("\x01\x02\x03\x00nina@example.com\x00\xff\xfe", 23));
}

TEST(QuarantineConnector, MailScannerLayout) {
  ScratchDir dir;
  fs::path root = dir / "quarantine";
  make_mailscanner_store(root);
  auto c = make(source_for("mailscanner", root));
  CollectSink sink;
  auto files = scan_all(*c, sink);
  EXPECT_TRUE(sink.errors.empty()) << sink.errors.front().path << ": " << sink.errors.front().cause;
  std::set<std::string> rel;
  for (const FileEntry &f : files) {
    rel.insert(fs::relative(f.path, root).string());
  }
  EXPECT_EQ(rel, (std::set<std::string>{"20240223/4bsM5k4xJmz4rT6/message",
                                        "20240223/spam/C6E0DDB74006",
                                        "20240223/nonspam/0F5383D",
                                        "20240223/spam/3D74ADB7400B.header",
                                        "20240224/E89FA2DEDA/report.txt",
                                        "20240224/E89FA2DEDA/evil.bin"}));
  ASSERT_EQ(sink.items.size(), 6U);

  const Item *virus = find_item(sink, "4bsM5k4xJmz4rT6/message");
  ASSERT_NE(virus, nullptr);
  EXPECT_EQ(virus->subject, "Virus inside");
  EXPECT_EQ(virus->locator.queue_id, "4bsM5k4xJmz4rT6");
  EXPECT_EQ(virus->locator.folder, "20240223/4bsM5k4xJmz4rT6");

  const Item *spam = find_item(sink, "spam/C6E0DDB74006");
  ASSERT_NE(spam, nullptr);
  EXPECT_EQ(spam->locator.folder, "20240223/spam");
  EXPECT_EQ(spam->locator.queue_id, "C6E0DDB74006");
  EXPECT_TRUE(addrs_with_role(*spam, Role::to).contains("ida@example.com"));

  const Item *pair = find_item(sink, "3D74ADB7400B.header");
  ASSERT_NE(pair, nullptr);
  EXPECT_EQ(pair->subject, "Paired");
  EXPECT_EQ(pair->locator.queue_id, "3D74ADB7400B");
  EXPECT_EQ(pair->sha256, core::sha256_hex(test::read_file(root / "20240223/spam/3D74ADB7400B.header") +
                                           test::read_file(root / "20240223/spam/3D74ADB7400B.body")));
  bool body_found = std::any_of(pair->texts.begin(), pair->texts.end(), [](const RawText &t) {
    return t.text.find("luke@example.com") != std::string::npos;
  });
  EXPECT_TRUE(body_found);

  const Item *report = find_item(sink, "E89FA2DEDA/report.txt");
  ASSERT_NE(report, nullptr);
  EXPECT_EQ(report->locator.queue_id, "E89FA2DEDA");
  EXPECT_TRUE(report->addresses.empty());
  EXPECT_TRUE(report->message_id.empty());
  ASSERT_EQ(report->texts.size(), 2U);
  EXPECT_EQ(report->texts[0].role, Role::attachment_name);
  EXPECT_EQ(report->texts[0].text, "report.txt");
  EXPECT_EQ(report->texts[1].role, Role::attachment_body);
  EXPECT_NE(report->texts[1].text.find("mike@example.com"), std::string::npos);

  const Item *bin = find_item(sink, "E89FA2DEDA/evil.bin");
  ASSERT_NE(bin, nullptr);
  for (const RawText &t : bin->texts) {
    EXPECT_TRUE(t.role == Role::attachment_name || t.role == Role::attachment_body);
  }
  bool runs_found = std::any_of(bin->texts.begin(), bin->texts.end(), [](const RawText &t) {
    return t.role == Role::attachment_body && t.text.find("nina@example.com") != std::string::npos;
  });
  EXPECT_TRUE(runs_found);
}

TEST(QuarantineConnector, PlainDirectoryEveryFileIsAMessage) {
  ScratchDir dir;
  fs::path root = dir / "plain";
  write_file(root / "one.eml", simple_message("p1@example.net", "olga@example.com", "One"));
  write_file(root / "sub" / "two", simple_message("p2@example.net", "paul@example.com", "Two"));
  write_file(root / "sub" / "deeper" / "three.gz",
             gzip(simple_message("p3@example.net", "quinn@example.com", "Three")));
  write_file(root / ".hidden", simple_message("p4@example.net", "rita@example.com", "Hidden"));
  auto c = make(source_for("plain", root));
  CollectSink sink;
  auto files = scan_all(*c, sink);
  EXPECT_EQ(files.size(), 3U);
  EXPECT_TRUE(sink.errors.empty());
  ASSERT_EQ(sink.items.size(), 3U);
  const Item *three = find_item(sink, "sub/deeper/three.gz");
  ASSERT_NE(three, nullptr);
  EXPECT_EQ(three->subject, "Three");
  EXPECT_EQ(three->locator.folder, "sub/deeper");
  const Item *one = find_item(sink, "one.eml");
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(one->locator.folder, "");
}

TEST(QuarantineConnector, PmgDeliveredToIsTheEnvelopeRecipientList) {
  ScratchDir dir;
  fs::path root = dir / "pmg";
  write_file(root / "spam" / "3C" / "1A2B3C65F0D2A10003C",
             simple_message("pmg1@example.net", "list@example.com", "PMG spam",
                            "Return-Path: <bounce@example.net>\n"
                            "Delivered-To: sam@example.com,tina@example.com, uma@example.org\n"));
  auto c = make(source_for("pmg", root));
  CollectSink sink;
  scan_all(*c, sink);
  ASSERT_EQ(sink.items.size(), 1U);
  const Item &item = sink.items[0];
  EXPECT_EQ(addrs_with_role(item, Role::envelope_to),
            (std::set<std::string>{"sam@example.com", "tina@example.com", "uma@example.org"}));
  EXPECT_EQ(addrs_with_role(item, Role::envelope_from),
            (std::set<std::string>{"bounce@example.net"}));
  EXPECT_EQ(item.locator.queue_id, "1A2B3C65F0D2A10003C");
  EXPECT_EQ(item.locator.folder, "spam/3C");
}

TEST(QuarantineConnector, GunzipConcatenatedMembersAndTrailingGarbage) {
  auto two = gunzip(gzip("hello ") + gzip("world"));
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(*two, "hello world");
  auto junk = gunzip(gzip("hello") + "junk");
  ASSERT_FALSE(junk.has_value());
  EXPECT_EQ(junk.error().code, core::ErrorCode::data);
  auto empty = gunzip("");
  EXPECT_FALSE(empty.has_value());
  auto bomb = gunzip(gzip(std::string(1 << 20, 'a')), 1000);
  ASSERT_FALSE(bomb.has_value());
  EXPECT_NE(bomb.error().message.find("exceeds"), std::string::npos);
}

} // namespace
} // namespace maildsar::connectors

namespace maildsar::connectors {
namespace {

// Issue 17: a folder of loose messages (exports, legal holds, ticket systems) is its own store
// kind: every file below the root, recursively and whatever its name, is a message; an mbox
// file gives one item per message; no queue id is taken from quarantine headers; dotfiles are
// skipped, symbolic links reported; a format is refused.
TEST(EmlFolderConnector, EveryFileBelowTheRootIsAMessageOfItsOwnKind) {
  ScratchDir dir;
  fs::path root = dir / "hold";
  write_file(root / "case-4711" / "0001.eml", simple_message("e1@example.net", "alice.smith@example.com", "One"));
  write_file(root / "case-4711" / "attachments" / "2",
             simple_message("e2@example.net", "bob@example.com", "Two", "X-Quarantine-ID: <NOTAQID>\n"));
  write_file(root / "archive",
             "From a@example.net Mon Feb 26 10:00:00 2024\n" + simple_message("m1@example.net", "carol@example.com", "M1") +
                 "\nFrom b@example.net Mon Feb 26 10:00:00 2024\n" +
                 simple_message("m2@example.net", "alice.smith@example.com", "M2"));
  write_file(root / "old.eml.gz", gzip(simple_message("e3@example.net", "dave@example.com", "Three")));
  write_file(root / ".index", "not a message");
  fs::create_symlink(root / "case-4711" / "0001.eml", root / "link.eml");
  core::SourceConfig s;
  s.name = "legal";
  s.type = "emlfolder";
  s.path = root.string();
  auto made = make_emlfolder_connector(s);
  ASSERT_TRUE(made.has_value()) << made.error().message;
  const Connector &c = **made;
  EXPECT_EQ(c.kind(), StoreKind::emlfolder);
  CollectSink sink;
  auto files = scan_all(c, sink);
  EXPECT_EQ(files.size(), 4U);
  EXPECT_TRUE(sink.has_error("link.eml", "symbolic link")) << (sink.errors.empty() ? "" : sink.errors[0].cause);
  ASSERT_EQ(sink.items.size(), 5U);
  for (const Item &item : sink.items) {
    EXPECT_EQ(item.locator.store, StoreKind::emlfolder) << item.locator.path;
    EXPECT_EQ(item.locator.source, "legal");
    EXPECT_TRUE(item.locator.queue_id.empty()) << item.locator.path << ": " << item.locator.queue_id;
  }
  const Item *two = find_item(sink, "case-4711/attachments/2");
  ASSERT_NE(two, nullptr);
  EXPECT_EQ(two->locator.folder, "case-4711/attachments");
  EXPECT_TRUE(is_message_file(two->locator));
  std::size_t in_archive = 0;
  for (const Item &item : sink.items) {
    if (item.locator.path.ends_with("/archive")) {
      ++in_archive;
      EXPECT_GT(item.locator.length, 0U);
      EXPECT_FALSE(is_message_file(item.locator));
    }
  }
  EXPECT_EQ(in_archive, 2U);
  EXPECT_NE(find_item(sink, "old.eml.gz"), nullptr);

  s.format = "plain";
  auto refused = make_emlfolder_connector(s);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, core::ErrorCode::config);
}

// Bad files in a folder of loose messages: a truncated and a corrupt gzip, binary garbage and an
// empty file are each one error naming the file; the good message is still read.
TEST(EmlFolderConnector, BadFilesAreCountedAndTheRestIsRead) {
  ScratchDir dir;
  fs::path root = dir / "export";
  const std::string gz = gzip(simple_message("g1@example.net", "alice.smith@example.com", "Gz"));
  write_file(root / "cut.eml.gz", gz.substr(0, gz.size() / 2));
  write_file(root / "corrupt.gz", "\x1f\x8b\x08\x00garbage that is no deflate stream");
  std::string garbage;
  for (int i = 0; i < 4096; ++i) {
    garbage += static_cast<char>((i * 7919) % 256);
  }
  write_file(root / "tickets" / "17", garbage);
  write_file(root / "tickets" / "18", "");
  write_file(root / "tickets" / "19", simple_message("g2@example.net", "bob@example.com", "Fine"));
  core::SourceConfig s;
  s.name = "export";
  s.type = "emlfolder";
  s.path = root.string();
  auto made = make_emlfolder_connector(s);
  ASSERT_TRUE(made.has_value());
  CollectSink sink;
  scan_all(**made, sink);
  ASSERT_EQ(sink.items.size(), 1U);
  EXPECT_EQ(sink.items[0].subject, "Fine");
  EXPECT_TRUE(sink.has_error("cut.eml.gz", "truncated"));
  EXPECT_TRUE(sink.has_error("corrupt.gz", "gzip"));
  EXPECT_TRUE(sink.has_error("tickets/17", "not a mail message"));
  EXPECT_TRUE(sink.has_error("tickets/18", "not a mail message"));
  EXPECT_EQ(sink.errors.size(), 4U);
}

} // namespace
} // namespace maildsar::connectors
