// SPDX-License-Identifier: GPL-3.0-or-later
// Backup archives (issue 17 item 2): tar (plain, gzip, bzip2, xz, zstd) and zip files holding
// Maildirs, mbox files and loose messages, read streamed with libarchive. The test archives are
// written here with libarchive's writer from the sample estate (samples/mail, samples/archive)
// and the shared corpus ($MAILDSAR_CORPUS, read only); bad inputs are made from them.
#include "connectors/archive.hpp"
#include "connectors/connector.hpp"
#include "connectors/item_reader.hpp"
#include "connectors/limits.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "tests/test_support.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

using namespace maildsar;
using namespace maildsar::connectors;
using maildsar::test::read_file;
using maildsar::test::ScratchDir;
using maildsar::test::write_file;
namespace fs = std::filesystem;

namespace {

const fs::path k_mail = maildsar::test::source_dir() / "samples" / "mail" / "example.com";
const fs::path k_mbox = maildsar::test::source_dir() / "samples" / "archive" / "2023.mbox";
const std::string k_alice_inbox = "alice.smith/Maildir/cur/1700000000.M1P100.mx1:2,S";
const std::string k_alice_sent = "alice.smith/Maildir/.Sent/cur/1700000200.M3P100.mx1:2,S";

struct Member {
  std::string name;
  std::string data;
  bool directory = false;
};

la_ssize_t append_to_string(struct archive * /*a*/, void *client, const void *buf, size_t n) {
  static_cast<std::string *>(client)->append(static_cast<const char *>(buf), n);
  return static_cast<la_ssize_t>(n);
}

struct Writer {
  int format = ARCHIVE_FORMAT_TAR_PAX_RESTRICTED;
  int filter = ARCHIVE_FILTER_NONE;
  std::string passphrase = {}; // zip: traditional PKWARE encryption
};

/** An archive of `members`, written with libarchive's writer. */
std::string make_archive(const std::vector<Member> &members, const Writer &w = {}) {
  std::string out;
  struct archive *a = archive_write_new();
  EXPECT_EQ(archive_write_set_format(a, w.format), ARCHIVE_OK) << archive_error_string(a);
  if (w.filter != ARCHIVE_FILTER_NONE) {
    EXPECT_EQ(archive_write_add_filter(a, w.filter), ARCHIVE_OK) << archive_error_string(a);
  }
  if (!w.passphrase.empty()) {
    EXPECT_EQ(archive_write_set_options(a, "zip:encryption=zipcrypt"), ARCHIVE_OK) << archive_error_string(a);
    EXPECT_EQ(archive_write_set_passphrase(a, w.passphrase.c_str()), ARCHIVE_OK);
  }
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, append_to_string, nullptr), ARCHIVE_OK) << archive_error_string(a);
  for (const Member &m : members) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, m.name.c_str());
    archive_entry_set_filetype(e, m.directory ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, m.directory ? 0755 : 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(m.data.size()));
    archive_entry_set_mtime(e, 1700000000, 0);
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (!m.directory && !m.data.empty()) {
      EXPECT_EQ(archive_write_data(a, m.data.data(), m.data.size()), static_cast<la_ssize_t>(m.data.size()));
    }
    archive_entry_free(e);
  }
  EXPECT_EQ(archive_write_close(a), ARCHIVE_OK) << archive_error_string(a);
  archive_write_free(a);
  return out;
}

/** Alice's two Maildir messages and a Dovecot state file, as a backup of /home would hold them. */
std::vector<Member> maildir_members() {
  return {{"home/", "", true},
          {"home/alice.smith/Maildir/dovecot-uidlist", "3 V1700000000 N4\n"},
          {"home/" + k_alice_inbox, read_file(k_mail / k_alice_inbox)},
          {"home/" + k_alice_sent, read_file(k_mail / k_alice_sent)}};
}

/** What a scan found (ItemCollector holds a mutex and cannot be returned). */
struct Found {
  std::vector<Item> items;
  std::vector<ScanError> errors;
  std::vector<std::pair<std::string, SkipReason>> skips;
};

Found found_in(ItemCollector &sink) {
  return Found{std::move(sink.items), std::move(sink.errors), std::move(sink.skips)};
}

/** Scans one archive file through a configured "archive" source. */
Found scan_file(const fs::path &file) {
  core::SourceConfig s;
  s.name = "backups";
  s.type = "archive";
  s.path = file.string();
  auto made = make_connector(s);
  EXPECT_TRUE(made.has_value()) << made.error().message;
  ItemCollector sink;
  ItemCollector listing;
  auto files = (*made)->list_files(listing);
  EXPECT_TRUE(files.has_value());
  EXPECT_EQ(files->size(), 1U);
  for (const FileEntry &f : *files) {
    auto scanned = (*made)->scan(f, 0, sink);
    EXPECT_TRUE(scanned.has_value()) << scanned.error().message;
  }
  std::sort(sink.items.begin(), sink.items.end(),
            [](const Item &a, const Item &b) { return a.locator.key() < b.locator.key(); });
  return found_in(sink);
}

Found scan_bytes(const std::string &bytes) {
  Locator base;
  base.source = "backups";
  base.path = "/backups/test.tar";
  ItemCollector sink;
  scan_archive_bytes(bytes, base, sink);
  return found_in(sink);
}

std::string errors_of(const Found &sink) {
  std::string out;
  for (const ScanError &e : sink.errors) {
    out += fmt::format("[{} | {} | {}]\n", e.path, e.position, e.cause);
  }
  return out;
}

bool has_address(const Item &item, const std::string &addr) {
  return std::any_of(item.addresses.begin(), item.addresses.end(),
                     [&](const RawAddress &a) { return a.addr == addr; });
}

/** Restores the default bounds after a test that narrows them. */
class LimitsGuard {
public:
  explicit LimitsGuard(const ArchiveLimits &limits) : m_saved(archive_limits()) { set_archive_limits(limits); }
  ~LimitsGuard() { set_archive_limits(m_saved); }
  LimitsGuard(const LimitsGuard &) = delete;
  LimitsGuard &operator=(const LimitsGuard &) = delete;

private:
  ArchiveLimits m_saved;
};

/** Bytes that deflate poorly (so a corrupted stream is noticed inside them, not after). */
std::string noise(std::size_t n, unsigned seed) {
  std::string out(n, '\0');
  unsigned x = seed;
  for (char &c : out) {
    x = x * 1103515245U + 12345U;
    c = static_cast<char>('a' + (x >> 16) % 26);
  }
  return out;
}

std::string message(const std::string &to, const std::string &body) {
  return fmt::format("From: Backup Robot <robot@example.net>\nTo: {}\nSubject: archived\nMessage-ID: "
                     "<{}@example.net>\n\n{}\n",
                     to, core::sha256_hex(body).substr(0, 16), body);
}

} // namespace

TEST(ArchiveConnector, MaildirInTarGzHasMemberLocatorsFoldersAndExactBytes) {
  ScratchDir dir;
  const fs::path file = dir / "home-2023.tar.gz";
  write_file(file, make_archive(maildir_members(), {.filter = ARCHIVE_FILTER_GZIP}));
  Found sink = scan_file(file);
  EXPECT_TRUE(sink.errors.empty()) << errors_of(sink);
  ASSERT_EQ(sink.items.size(), 2U);
  const Item &sent = sink.items[0]; // ".Sent" sorts before "cur"
  const Item &inbox = sink.items[1];
  EXPECT_EQ(inbox.locator.store, StoreKind::archive);
  EXPECT_EQ(inbox.locator.source, "backups");
  EXPECT_EQ(inbox.locator.path, file.string());
  EXPECT_EQ(inbox.locator.member, "home/" + k_alice_inbox);
  EXPECT_EQ(inbox.locator.folder, "");
  EXPECT_EQ(sent.locator.member, "home/" + k_alice_sent);
  EXPECT_EQ(sent.locator.folder, ".Sent");
  EXPECT_EQ(inbox.locator.key(), file.string() + "#home/" + k_alice_inbox);
  EXPECT_TRUE(has_address(inbox, "alice.smith@example.com") || has_address(sent, "alice.smith@example.com"));
  for (const Item &item : sink.items) {
    EXPECT_EQ(item.locator.length, 0U);
    EXPECT_EQ(item.sha256, core::sha256_hex(read_file(k_mail / item.locator.member.substr(5))));
    auto bytes = read_item_bytes(item.locator);
    ASSERT_TRUE(bytes.has_value()) << bytes.error().message;
    EXPECT_EQ(core::sha256_hex(*bytes), item.sha256);
    auto msg = read_message(item.locator);
    ASSERT_TRUE(msg.has_value());
    EXPECT_EQ(*msg, *bytes);
  }
  ASSERT_EQ(sink.skips.size(), 1U); // dovecot-uidlist: no message, skipped without an error
  EXPECT_EQ(sink.skips[0].first, file.string() + "#home/alice.smith/Maildir/dovecot-uidlist");
  EXPECT_EQ(sink.skips[0].second, SkipReason::not_message);
}

TEST(ArchiveConnector, MaildirInZip) {
  ScratchDir dir;
  const fs::path file = dir / "home.zip";
  write_file(file, make_archive(maildir_members(), {.format = ARCHIVE_FORMAT_ZIP}));
  Found sink = scan_file(file);
  EXPECT_TRUE(sink.errors.empty()) << errors_of(sink);
  ASSERT_EQ(sink.items.size(), 2U);
  EXPECT_EQ(sink.items[0].locator.folder, ".Sent");
  for (const Item &item : sink.items) {
    auto bytes = read_item_bytes(item.locator);
    ASSERT_TRUE(bytes.has_value()) << bytes.error().message;
    EXPECT_EQ(core::sha256_hex(*bytes), item.sha256);
  }
}

TEST(ArchiveConnector, EveryCompressionFilterReadsTheSame) {
  for (int filter : {ARCHIVE_FILTER_NONE, ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_BZIP2, ARCHIVE_FILTER_XZ,
                     ARCHIVE_FILTER_ZSTD}) {
    SCOPED_TRACE(filter);
    Found sink = scan_bytes(make_archive(maildir_members(), {.filter = filter}));
    EXPECT_TRUE(sink.errors.empty()) << errors_of(sink);
    EXPECT_EQ(sink.items.size(), 2U);
  }
}

TEST(ArchiveConnector, MboxInsideTarIsSplitWithOffsetsInTheMember) {
  ScratchDir dir;
  const fs::path file = dir / "mail-archive.tar";
  const std::string mbox = read_file(k_mbox);
  write_file(file, make_archive({{"var/mail/archive/2023.mbox", mbox}}));
  Found sink = scan_file(file);
  EXPECT_TRUE(sink.errors.empty()) << errors_of(sink);
  ASSERT_EQ(sink.items.size(), 3U);
  std::sort(sink.items.begin(), sink.items.end(),
            [](const Item &a, const Item &b) { return a.locator.offset < b.locator.offset; });
  EXPECT_EQ(sink.items[0].locator.offset, 0U);
  std::uint64_t next = 0;
  for (const Item &item : sink.items) {
    EXPECT_EQ(item.locator.member, "var/mail/archive/2023.mbox");
    EXPECT_EQ(item.locator.offset, next);
    EXPECT_GT(item.locator.length, 0U);
    next = item.locator.offset + item.locator.length;
    EXPECT_EQ(item.locator.key(),
              fmt::format("{}#var/mail/archive/2023.mbox@{}", file.string(), item.locator.offset));
    const std::string range = mbox.substr(item.locator.offset, item.locator.length);
    EXPECT_EQ(item.sha256, core::sha256_hex(range));
    auto bytes = read_item_bytes(item.locator);
    ASSERT_TRUE(bytes.has_value()) << bytes.error().message;
    EXPECT_EQ(*bytes, range);
    auto msg = read_message(item.locator);
    ASSERT_TRUE(msg.has_value());
    EXPECT_FALSE(msg->starts_with("From ")); // the envelope line is not part of the message
  }
  EXPECT_EQ(next, mbox.size());
  EXPECT_TRUE(has_address(sink.items[0], "alice.smith@example.com"));
}

TEST(ArchiveConnector, CorpusMaildirAndMboxInsideXzTar) {
  const fs::path corpus = maildsar::test::corpus_dir();
  if (corpus.empty()) {
    GTEST_SKIP() << "corpus not available ($MAILDSAR_CORPUS)";
  }
  std::vector<Member> members;
  std::size_t messages = 0;
  for (const auto &e : fs::directory_iterator(corpus / "maildir/notmuch/default/cur")) {
    if (e.is_regular_file() && messages < 20) {
      members.push_back({"backup/Maildir/cur/" + e.path().filename().string(), read_file(e.path())});
      ++messages;
    }
  }
  ASSERT_GT(messages, 0U);
  Found sink = scan_bytes(make_archive(members, {.filter = ARCHIVE_FILTER_XZ}));
  EXPECT_TRUE(sink.errors.empty()) << errors_of(sink);
  EXPECT_EQ(sink.items.size() + sink.skips.size(), messages);
  EXPECT_GE(sink.items.size(), messages - 2);
  for (const Item &item : sink.items) {
    EXPECT_EQ(item.locator.folder, "");
    EXPECT_FALSE(item.sha256.empty());
  }
}

TEST(ArchiveConnector, TruncatedTarMemberIsOneErrorAndEarlierItemsAreKept) {
  std::string tar = make_archive({{"mail/1.eml", message("a@example.com", "first")},
                                  {"mail/2.eml", message("b@example.com", noise(300000, 1))},
                                  {"mail/3.eml", message("c@example.com", "third")}});
  tar.resize(1024 + 512 + 512 + 100000); // inside the second member's data
  Found sink = scan_bytes(tar);
  ASSERT_EQ(sink.items.size(), 1U) << errors_of(sink);
  EXPECT_EQ(sink.items[0].locator.member, "mail/1.eml");
  ASSERT_EQ(sink.errors.size(), 1U) << errors_of(sink);
  EXPECT_EQ(sink.errors[0].path, "/backups/test.tar");
  EXPECT_EQ(sink.errors[0].position, "member 2 'mail/2.eml'");
  EXPECT_NE(sink.errors[0].cause.find("truncated or corrupt"), std::string::npos) << sink.errors[0].cause;
}

TEST(ArchiveConnector, CorruptGzipStreamInsideTarGz) {
  std::vector<Member> members;
  for (unsigned i = 0; i < 8; ++i) {
    members.push_back({fmt::format("mail/{}.eml", i), message("x@example.com", noise(100000, i))});
  }
  std::string tgz = make_archive(members, {.filter = ARCHIVE_FILTER_GZIP});
  const std::size_t middle = tgz.size() / 2;
  for (std::size_t i = middle; i < middle + 64; ++i) {
    tgz[i] = static_cast<char>(~tgz[i]);
  }
  Found sink = scan_bytes(tgz);
  EXPECT_GE(sink.items.size(), 1U);
  EXPECT_LT(sink.items.size(), 8U);
  ASSERT_EQ(sink.errors.size(), 1U) << errors_of(sink);
  EXPECT_NE(sink.errors[0].position.find("member "), std::string::npos);
  EXPECT_NE(sink.errors[0].cause.find("corrupt"), std::string::npos) << sink.errors[0].cause;
}

TEST(ArchiveConnector, ZipBombMemberIsBoundedCountedAndTheNextMemberRead) {
  // 64 MiB of zeros deflate to ~64 KiB; the member bound is 1 MiB here.
  std::string zip = make_archive({{"bomb.eml", "Subject: x\n\n" + std::string(64U << 20, '\0')},
                                  {"after.eml", message("after@example.com", "still read")}},
                                 {.format = ARCHIVE_FORMAT_ZIP});
  ASSERT_LT(zip.size(), 1U << 20);
  LimitsGuard guard({.max_member_bytes = 1U << 20});
  Found sink = scan_bytes(zip);
  ASSERT_EQ(sink.errors.size(), 1U) << errors_of(sink);
  EXPECT_EQ(sink.errors[0].position, "member 1 'bomb.eml'");
  EXPECT_NE(sink.errors[0].cause.find("limits.archive_max_member_mib"), std::string::npos) << sink.errors[0].cause;
  ASSERT_EQ(sink.items.size(), 1U);
  EXPECT_EQ(sink.items[0].locator.member, "after.eml");
}

TEST(ArchiveConnector, CompressionRatioBoundStopsABomb) {
  std::string tgz = make_archive({{"bomb.eml", "Subject: x\n\n" + std::string(96U << 20, 'A')},
                                  {"after.eml", message("after@example.com", "not reached")}},
                                 {.filter = ARCHIVE_FILTER_GZIP});
  ASSERT_LT(tgz.size(), 1U << 20);
  LimitsGuard guard({.max_member_bytes = 1ULL << 30, .max_ratio = 100});
  Found sink = scan_bytes(tgz);
  ASSERT_EQ(sink.errors.size(), 1U) << errors_of(sink);
  EXPECT_EQ(sink.errors[0].position, "member 1 'bomb.eml'");
  EXPECT_NE(sink.errors[0].cause.find("limits.archive_max_ratio"), std::string::npos) << sink.errors[0].cause;
  EXPECT_TRUE(sink.items.empty());
}

TEST(ArchiveConnector, TotalAndMemberCountBounds) {
  std::vector<Member> members;
  for (unsigned i = 0; i < 5; ++i) {
    members.push_back({fmt::format("m/{}.eml", i), message("x@example.com", noise(2000, i))});
  }
  const std::string tar = make_archive(members);
  {
    LimitsGuard guard({.max_members = 3});
    Found sink = scan_bytes(tar);
    EXPECT_EQ(sink.items.size(), 3U);
    ASSERT_EQ(sink.errors.size(), 1U) << errors_of(sink);
    EXPECT_EQ(sink.errors[0].position, "member 4");
    EXPECT_NE(sink.errors[0].cause.find("limits.archive_max_members"), std::string::npos);
  }
  {
    LimitsGuard guard({.max_total_bytes = 5000});
    Found sink = scan_bytes(tar);
    EXPECT_EQ(sink.items.size(), 2U);
    ASSERT_EQ(sink.errors.size(), 1U) << errors_of(sink);
    EXPECT_EQ(sink.errors[0].position, "member 3 'm/2.eml'");
    EXPECT_NE(sink.errors[0].cause.find("limits.archive_max_total_gib"), std::string::npos);
  }
}

TEST(ArchiveConnector, EncryptedZipMemberIsACountedError) {
  std::string zip = make_archive({{"secret.eml", message("hidden@example.com", "locked")}},
                                 {.format = ARCHIVE_FORMAT_ZIP, .passphrase = "pw"});
  std::string plain = make_archive({{"open.eml", message("open@example.com", "readable")}},
                                   {.format = ARCHIVE_FORMAT_ZIP});
  Found sink = scan_bytes(zip);
  EXPECT_TRUE(sink.items.empty());
  ASSERT_EQ(sink.errors.size(), 1U) << errors_of(sink);
  EXPECT_EQ(sink.errors[0].position, "member 1 'secret.eml'");
  EXPECT_NE(sink.errors[0].cause.find("encrypted"), std::string::npos);
  EXPECT_EQ(scan_bytes(plain).items.size(), 1U);
}

TEST(ArchiveConnector, NotAnArchiveAndEmptyArchive) {
  Found text = scan_bytes(message("a@example.com", "a plain message, not an archive"));
  EXPECT_TRUE(text.items.empty());
  ASSERT_EQ(text.errors.size(), 1U);
  EXPECT_EQ(text.errors[0].position, "");
  EXPECT_NE(text.errors[0].cause.find("not a readable tar or zip archive"), std::string::npos) << text.errors[0].cause;

  Found zero = scan_bytes("");
  EXPECT_TRUE(zero.items.empty());
  EXPECT_EQ(zero.errors.size(), 1U) << errors_of(zero); // an empty file is no archive

  for (int format : {ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FORMAT_ZIP}) {
    Found empty = scan_bytes(make_archive({}, {.format = format}));
    EXPECT_TRUE(empty.items.empty());
    EXPECT_TRUE(empty.errors.empty()) << errors_of(empty);
  }
}

TEST(ArchiveConnector, PstMemberIsReadThroughTheWorkerFromATemporaryCopy) {
  const fs::path corpus = maildsar::test::corpus_dir();
  if (corpus.empty()) {
    GTEST_SKIP() << "corpus not available ($MAILDSAR_CORPUS)";
  }
  ScratchDir state;
  set_archive_spool_dir((state / "archive-tmp").string());
  const std::string pst = read_file(corpus / "pst/pstsdk/sample1.pst");
  ASSERT_TRUE(pst.starts_with("!BDN"));
  Found sink = scan_bytes(make_archive({{"outlook/sample1.pst", pst},
                                        {"docs/readme.txt", "just some notes\n"},
                                        {"mail/1.eml", message("a@example.com", "kept")}},
                                       {.filter = ARCHIVE_FILTER_GZIP}));
  EXPECT_TRUE(sink.errors.empty()) << errors_of(sink);
  ASSERT_EQ(sink.items.size(), 2U);
  const Item &pst_item = sink.items[0].locator.member == "outlook/sample1.pst" ? sink.items[0] : sink.items[1];
  EXPECT_EQ(pst_item.locator.store, StoreKind::archive);
  EXPECT_EQ(pst_item.locator.path, "/backups/test.tar");
  EXPECT_EQ(pst_item.locator.member, "outlook/sample1.pst");
  EXPECT_EQ(pst_item.locator.folder, "Top of Outlook data file/Sample1");
  EXPECT_EQ(pst_item.locator.node_id, 0x200024U);
  EXPECT_EQ(pst_item.locator.key(), "/backups/test.tar#outlook/sample1.pst#" + std::to_string(0x200024));
  EXPECT_EQ(pst_item.subject, "Here is a sample message");
  EXPECT_EQ(pst_item.sha256.size(), 64U);
  ASSERT_EQ(sink.skips.size(), 1U);
  EXPECT_EQ(sink.skips[0].first, "/backups/test.tar#docs/readme.txt");
  // the temporary copy is gone; reading the bytes of a PST item is not supported, as for PST files
  EXPECT_TRUE(fs::is_empty(state / "archive-tmp"));
  auto bytes = read_item_bytes(pst_item.locator);
  ASSERT_FALSE(bytes.has_value());
  EXPECT_EQ(bytes.error().code, core::ErrorCode::data);

  // bounded: a PST member beyond limits.archive_max_pst_mib is one problem, nothing is kept
  {
    LimitsGuard guard({.max_pst_bytes = 64U << 10});
    Found big = scan_bytes(make_archive({{"outlook/sample1.pst", pst}}));
    EXPECT_TRUE(big.items.empty());
    ASSERT_EQ(big.errors.size(), 1U) << errors_of(big);
    EXPECT_EQ(big.errors[0].position, "member 1 'outlook/sample1.pst'");
    EXPECT_NE(big.errors[0].cause.find("limits.archive_max_pst_mib"), std::string::npos) << big.errors[0].cause;
    EXPECT_TRUE(fs::is_empty(state / "archive-tmp"));
  }
  // a corrupt PST: one problem naming the member, not the temporary file
  Found corrupt = scan_bytes(make_archive({{"old.pst", "!BDN" + noise(5000, 3)}}));
  EXPECT_TRUE(corrupt.items.empty());
  ASSERT_EQ(corrupt.errors.size(), 1U) << errors_of(corrupt);
  EXPECT_EQ(corrupt.errors[0].position, "member 1 'old.pst'");
  EXPECT_EQ(corrupt.errors[0].cause.find((state / "archive-tmp").string()), std::string::npos) << corrupt.errors[0].cause;
  // without a state directory for the copy: one problem per PST member
  set_archive_spool_dir("");
  Found nowhere = scan_bytes(make_archive({{"old.pst", pst}, {"mail/1.eml", message("a@example.com", "kept")}}));
  ASSERT_EQ(nowhere.errors.size(), 1U) << errors_of(nowhere);
  EXPECT_NE(nowhere.errors[0].cause.find("PST file inside an archive: not read"), std::string::npos);
  EXPECT_EQ(nowhere.items.size(), 1U);
}

TEST(ArchiveConnector, DuplicateMemberPathIsReportedAndTheFirstIsRead) {
  Found sink = scan_bytes(make_archive({{"mail/1.eml", message("first@example.com", "one")},
                                                {"mail/1.eml", message("second@example.com", "two")}}));
  ASSERT_EQ(sink.items.size(), 1U);
  EXPECT_TRUE(has_address(sink.items[0], "first@example.com"));
  ASSERT_EQ(sink.errors.size(), 1U);
  EXPECT_EQ(sink.errors[0].position, "member 2 'mail/1.eml'");
}

TEST(ArchiveConnector, ReadingAGoneMemberOrArchive) {
  ScratchDir dir;
  const fs::path file = dir / "b.tar";
  write_file(file, make_archive({{"mail/1.eml", message("a@example.com", "x")}}));
  Locator loc;
  loc.source = "backups";
  loc.store = StoreKind::archive;
  loc.path = file.string();
  loc.member = "mail/2.eml";
  auto missing = read_item_bytes(loc);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, core::ErrorCode::no_input);
  loc.path = (dir / "gone.tar").string();
  auto gone = read_item_bytes(loc);
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code, core::ErrorCode::no_input);
}

TEST(ArchiveLocator, KeysAreUniqueAndMaildirFoldersDerived) {
  Locator a;
  a.store = StoreKind::archive;
  a.path = "/b/x.tar";
  a.member = "mail/a#b@c%d";
  EXPECT_EQ(a.key(), "/b/x.tar#mail/a%23b%40c%25d");
  a.offset = 120;
  a.length = 50;
  EXPECT_EQ(a.key(), "/b/x.tar#mail/a%23b%40c%25d@120");
  Locator b = a;
  b.member = "mail/a#b@c%d@120"; // cannot collide with a's message at offset 120
  b.length = 0;
  EXPECT_NE(a.key(), b.key());
  EXPECT_EQ(store_kind_from_string("archive"), StoreKind::archive);
  EXPECT_EQ(to_string(StoreKind::archive), "archive");

  EXPECT_EQ(archive_maildir_folder("home/al/Maildir/cur/1:2,S"), std::optional<std::string>(""));
  EXPECT_EQ(archive_maildir_folder("./Maildir/.Sent/new/1"), std::optional<std::string>(".Sent"));
  EXPECT_EQ(archive_maildir_folder("Maildir/.A.B/tmp/1"), std::optional<std::string>(".A.B"));
  EXPECT_EQ(archive_maildir_folder("cur/1"), std::optional<std::string>(""));
  EXPECT_EQ(archive_maildir_folder("Maildir/cur"), std::nullopt);
  EXPECT_EQ(archive_maildir_folder("Maildir/cur/x/1"), std::nullopt);
  EXPECT_EQ(archive_maildir_folder("mbox/2023"), std::nullopt);
}

TEST(ArchiveConnector, EveryItemOfTheFuzzSeedsReadsBackAsHashed) {
  // fuzz/corpus/archive: the seed archives and the damaged ones the fuzzer found where the item
  // reader, skipping members the scan had read, lost its place or failed before the item.
  const fs::path seeds = maildsar::test::source_dir() / "fuzz" / "corpus" / "archive";
  std::size_t files = 0;
  std::size_t items = 0;
  for (const auto &entry : fs::directory_iterator(seeds)) {
    ScratchDir dir;
    const fs::path file = dir / "backup.tar";
    fs::copy_file(entry.path(), file);
    SCOPED_TRACE(entry.path().filename().string());
    Found sink = scan_file(file);
    ++files;
    for (const Item &item : sink.items) {
      auto bytes = read_item_bytes(item.locator);
      ASSERT_TRUE(bytes.has_value()) << item.locator.key() << ": " << bytes.error().message;
      EXPECT_EQ(core::sha256_hex(*bytes), item.sha256) << item.locator.key();
      ++items;
    }
  }
  EXPECT_GE(files, 10U);
  EXPECT_GE(items, 20U);
}

TEST(ArchiveRewrite, TheFuzzSeedsRewriteWithoutTheirFirstItemOrAreLeftAsTheyWere) {
  // regress-rewrite-*: an entry without a name made libarchive's writer dereference NULL, and the
  // writer, freed after its output's state, wrote through a dangling pointer (found by fuzzing)
  const fs::path seeds = maildsar::test::source_dir() / "fuzz" / "corpus" / "archive";
  std::size_t rewritten = 0;
  for (const auto &entry : fs::directory_iterator(seeds)) {
    ScratchDir dir;
    const fs::path file = dir / "backup.tar";
    fs::copy_file(entry.path(), file);
    SCOPED_TRACE(entry.path().filename().string());
    Found sink = scan_file(file);
    if (sink.items.empty()) {
      continue;
    }
    const Item &first = sink.items.front();
    const std::string original = read_file(file);
    std::vector<ArchiveCut> cuts{{first.locator.member, first.locator.offset, first.locator.length, first.sha256}};
    auto result = rewrite_archive(file.string(), cuts, {});
    if (!result || !result->rewritten) {
      EXPECT_EQ(read_file(file), original);
      continue;
    }
    ++rewritten;
    Found after = scan_file(file);
    EXPECT_EQ(after.items.size() + 1, sink.items.size());
  }
  EXPECT_GE(rewritten, 6U);
}

namespace {

/** Every member of an archive file, read with libarchive: name -> (bytes, mode, mtime). */
struct Entry {
  std::string bytes;
  int mode = 0;
  std::int64_t mtime = 0;
  friend bool operator==(const Entry &, const Entry &) = default;
};

std::map<std::string, Entry> entries_of(const std::string &bytes, int *format = nullptr, int *filter = nullptr) {
  std::map<std::string, Entry> out;
  struct archive *a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  EXPECT_EQ(archive_read_open_memory(a, bytes.data(), bytes.size()), ARCHIVE_OK);
  struct archive_entry *e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    Entry entry;
    entry.mode = static_cast<int>(archive_entry_mode(e));
    entry.mtime = archive_entry_mtime(e);
    char buf[8192];
    la_ssize_t n = 0;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
      entry.bytes.append(buf, static_cast<std::size_t>(n));
    }
    out[archive_entry_pathname(e)] = entry;
    if (format != nullptr) {
      *format = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
    }
  }
  if (filter != nullptr) {
    *filter = archive_filter_code(a, 0);
  }
  archive_read_free(a);
  return out;
}

} // namespace

TEST(ArchiveRewrite, RemovesMembersAndMboxMessagesKeepingFormatFilterAndTheRest) {
  const std::string mbox = read_file(k_mbox);
  for (const Writer &w : {Writer{.filter = ARCHIVE_FILTER_XZ}, Writer{.format = ARCHIVE_FORMAT_ZIP},
                          Writer{.filter = ARCHIVE_FILTER_ZSTD}}) {
    SCOPED_TRACE(w.format * 100 + w.filter);
    ScratchDir dir;
    const fs::path file = dir / "backup.tar";
    std::vector<Member> members = maildir_members();
    members.push_back({"var/mail/2023.mbox", mbox});
    write_file(file, make_archive(members, w));
    const auto before = entries_of(read_file(file));
    Found found = scan_file(file);
    ASSERT_EQ(found.items.size(), 5U) << errors_of(found);
    std::vector<ArchiveCut> cuts;
    std::uint64_t cut_offset = 0;
    std::uint64_t cut_length = 0;
    for (const Item &item : found.items) {
      if (item.locator.member == "home/" + k_alice_inbox || (item.locator.length > 0 && item.locator.offset > 0 &&
                                                            cut_length == 0)) {
        cuts.push_back({item.locator.member, item.locator.offset, item.locator.length, item.sha256});
        if (item.locator.length > 0) {
          cut_offset = item.locator.offset;
          cut_length = item.locator.length;
        }
      }
    }
    cuts.push_back({"home/" + k_alice_sent, 0, 0, std::string(64, '0')}); // stale: other bytes
    cuts.push_back({"no/such/member", 0, 0, std::string(64, '0')});
    ASSERT_EQ(cuts.size(), 4U);
    auto rewritten = rewrite_archive(file.string(), cuts, {});
    ASSERT_TRUE(rewritten.has_value()) << rewritten.error().message;
    EXPECT_TRUE(rewritten->rewritten);
    EXPECT_EQ(rewritten->removed, (std::vector<bool>{true, true, false, false}));
    int format = 0;
    int filter = 0;
    const auto after = entries_of(read_file(file), &format, &filter);
    EXPECT_EQ(format, w.format & ARCHIVE_FORMAT_BASE_MASK);
    EXPECT_EQ(filter, w.filter);
    EXPECT_FALSE(after.contains("home/" + k_alice_inbox));
    EXPECT_EQ(after.size(), before.size() - 1);
    for (const auto &[name, entry] : after) {
      if (name == "var/mail/2023.mbox") {
        EXPECT_EQ(entry.bytes, mbox.substr(0, cut_offset) + mbox.substr(cut_offset + cut_length));
        EXPECT_EQ(entry.mtime, before.at(name).mtime);
      } else {
        EXPECT_EQ(entry, before.at(name)) << name;
      }
    }
    EXPECT_FALSE(fs::exists(core::NewFile::temp_path_of(file.string())));
    // what is left reads as before, less the cut items
    EXPECT_EQ(scan_file(file).items.size(), 3U);
  }
}

TEST(ArchiveRewrite, NothingMatchingOrACrashBeforeTheRenameLeavesTheArchiveAsItWas) {
  ScratchDir dir;
  const fs::path file = dir / "backup.tar.gz";
  write_file(file, make_archive(maildir_members(), {.filter = ARCHIVE_FILTER_GZIP}));
  const std::string original = read_file(file);
  std::vector<ArchiveCut> stale{{"home/" + k_alice_inbox, 0, 0, std::string(64, 'f')}};
  auto none = rewrite_archive(file.string(), stale, {});
  ASSERT_TRUE(none.has_value()) << none.error().message;
  EXPECT_FALSE(none->rewritten);
  EXPECT_EQ(read_file(file), original);

  Found found = scan_file(file);
  ASSERT_FALSE(found.items.empty());
  std::vector<ArchiveCut> cuts{{found.items[0].locator.member, 0, 0, found.items[0].sha256}};
  for (const char *crash_at : {"archive:temp-written", "archive:temp-synced"}) {
    auto hook = [&](std::string_view step) -> core::Status {
      if (step == crash_at) {
        return core::fail(core::ErrorCode::internal, "injected fault");
      }
      return {};
    };
    auto failed = rewrite_archive(file.string(), cuts, hook);
    ASSERT_FALSE(failed.has_value());
    EXPECT_EQ(read_file(file), original) << crash_at;
    EXPECT_FALSE(fs::exists(core::NewFile::temp_path_of(file.string()))) << crash_at;
  }
  // a damaged archive is not rewritten at all
  write_file(file, original.substr(0, original.size() / 2));
  auto damaged = rewrite_archive(file.string(), cuts, {});
  ASSERT_FALSE(damaged.has_value());
  EXPECT_EQ(damaged.error().code, core::ErrorCode::data);
  EXPECT_EQ(read_file(file), original.substr(0, original.size() / 2));
}

TEST(ArchiveRewrite, AnAppendedCopyOfARemovedMemberGoesToo) {
  ScratchDir dir;
  const fs::path file = dir / "backup.tar";
  const std::string alice = message("alice.smith@example.com", "one");
  write_file(file, make_archive({{"mail/1.eml", alice}, {"mail/2.eml", message("bob@example.com", "two")},
                                 {"mail/1.eml", alice}}));
  Found found = scan_file(file);
  ASSERT_EQ(found.items.size(), 2U);
  const Item &first = found.items[0];
  ASSERT_EQ(first.locator.member, "mail/1.eml");
  std::vector<ArchiveCut> cuts{{first.locator.member, 0, 0, first.sha256}};
  auto rewritten = rewrite_archive(file.string(), cuts, {});
  ASSERT_TRUE(rewritten.has_value()) << rewritten.error().message;
  const auto after = entries_of(read_file(file));
  ASSERT_EQ(after.size(), 1U);
  EXPECT_TRUE(after.contains("mail/2.eml"));
}

TEST(ArchiveRewrite, TheArchiveBoundsHoldWhileRewriting) {
  ScratchDir dir;
  const fs::path file = dir / "backup.tar.gz";
  write_file(file, make_archive({{"mail/1.eml", message("alice.smith@example.com", "one")},
                                 {"bomb.bin", std::string(64U << 20, 'A')}},
                                {.filter = ARCHIVE_FILTER_GZIP}));
  const std::string original = read_file(file);
  Found found = scan_file(file);
  ASSERT_FALSE(found.items.empty());
  std::vector<ArchiveCut> cuts{{found.items[0].locator.member, 0, 0, found.items[0].sha256}};
  LimitsGuard guard({.max_ratio = 100});
  auto result = rewrite_archive(file.string(), cuts, {});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, core::ErrorCode::data);
  EXPECT_NE(result.error().message.find("archive_max_ratio"), std::string::npos) << result.error().message;
  EXPECT_EQ(read_file(file), original);
  EXPECT_FALSE(fs::exists(core::NewFile::temp_path_of(file.string())));
}
