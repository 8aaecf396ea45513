// SPDX-License-Identifier: GPL-3.0-or-later
// Erasure by redaction (issue 18 item 3): the message policy, the subject masked by keyed
// hashes, and the redacted item in each store's form (mbox entry, CRLF file, gzip file) — plus
// every message of the MIME corpus redacted for one of its addresses as erase would, checked
// by an independent script: the address is gone and everything that did not hold it kept
// its bytes.
#include "erasure/message_redaction.hpp"
#include "erasure/policy.hpp"

#include "connectors/mbox.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "connectors/quarantine.hpp"
#include "core/fs.hpp"
#include "core/secret.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace maildsar::erasure {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string k_key = "0123456789abcdef0123456789abcdef";

std::vector<KeyedIdentifier> alice() {
  return {KeyedIdentifier{"email", core::keyed_hash(k_key, "email", "alice.smith@example.com")},
          KeyedIdentifier{"name", core::keyed_hash(k_key, "name", "alice smith")}};
}

class MessageRedaction : public ::testing::Test {
protected:
  static void SetUpTestSuite() { ASSERT_TRUE(index::Normalizer::load_phone_module()); }
  index::Normalizer m_norm{index::NormalizeOptions{"+", "GB"}};
};

const std::string k_message = "From: Bob Jones <bob@example.com>\n"
                              "To: team@example.com\n"
                              "Cc: Alice Smith <alice.smith@example.com>\n"
                              "Subject: Friday\n"
                              "Message-ID: <m1@example.com>\n"
                              "Content-Type: text/plain; charset=utf-8\n"
                              "\n"
                              "Hello all,\n"
                              "From now on Alice Smith chairs the meeting.\n"
                              "Bob\n";

// ---------------------------------------------------------------------------------------------
// The message policy

TEST(MessagePolicy, OwnerFirstThenTheStrictestRole) {
  auto p = parse_message_policy(json{{"owner|from", "delete"}, {"to|cc|bcc|body", "redact"}, {"default", "redact"}},
                                "test");
  ASSERT_TRUE(p) << p.error().message;
  std::string why;
  EXPECT_EQ(p->decide({"owner", "to"}, why), MessageRule::erase);
  EXPECT_NE(why.find("the mailbox is the subject's"), std::string::npos) << why;
  EXPECT_EQ(p->decide({"cc", "body"}, why), MessageRule::redact);
  EXPECT_NE(why.find("cc, body"), std::string::npos) << why;
  EXPECT_EQ(p->decide({"cc", "from"}, why), MessageRule::erase) << "delete wins over redact";
  EXPECT_NE(why.find("from"), std::string::npos) << why;
  EXPECT_EQ(p->decide({"received"}, why), MessageRule::redact);
  EXPECT_NE(why.find("received (default)"), std::string::npos) << why;
}

TEST(MessagePolicy, OwnerNotNamedCountsAsTheDefault) {
  auto p = parse_message_policy(json{{"cc", "redact"}}, "test");
  ASSERT_TRUE(p);
  std::string why;
  EXPECT_EQ(p->decide({"cc"}, why), MessageRule::redact);
  EXPECT_EQ(p->decide({"owner", "cc"}, why), MessageRule::erase) << "an unnamed default is delete";
  EXPECT_EQ(p->decide({}, why), MessageRule::erase);
}

TEST(MessagePolicy, BuiltInPolicyDeletesEverything) {
  const MessagePolicy builtin;
  EXPECT_EQ(builtin.raw, json({{"default", "delete"}}));
  std::string why;
  EXPECT_EQ(builtin.decide({"cc", "body"}, why), MessageRule::erase);
}

TEST(MessagePolicy, BadPoliciesAreRefused) {
  for (const json &bad : {json::array(), json::object(), json{{"cc", "keep"}}, json{{"cc", 1}},
                          json{{"carbon-copy", "redact"}}, json{{"cc|cc", "redact"}},
                          json{{"cc", "redact"}, {"to|cc", "delete"}}}) {
    auto p = parse_message_policy(bad, "test");
    EXPECT_FALSE(p) << bad.dump();
    if (!p) {
      EXPECT_EQ(p.error().code, core::ErrorCode::data) << bad.dump();
    }
  }
  auto policy = parse_policy(json{{"messages", {{"cc", "maybe"}}}}, "file.json");
  ASSERT_FALSE(policy);
  EXPECT_NE(policy.error().message.find("messages"), std::string::npos) << policy.error().message;
}

TEST(MessagePolicy, RequestOverridesConfigOverridesBuiltIn) {
  core::Config config;
  auto builtin = effective_message_policy(config, json::object());
  ASSERT_TRUE(builtin);
  EXPECT_EQ(builtin->raw, json({{"default", "delete"}}));
  config.erasure.message_policy = {{"cc", "redact"}};
  auto configured = effective_message_policy(config, json::object());
  ASSERT_TRUE(configured);
  EXPECT_EQ(configured->raw, json({{"cc", "redact"}}));
  auto requested = effective_message_policy(config, json{{"messages", {{"default", "redact"}}}});
  ASSERT_TRUE(requested);
  EXPECT_EQ(requested->raw, json({{"default", "redact"}}));
  config.erasure.message_policy = {{"nobody", "redact"}};
  auto bad = effective_message_policy(config, json::object());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, core::ErrorCode::config);
}

// ---------------------------------------------------------------------------------------------
// The redacted item in its store's form

TEST_F(MessageRedaction, MaildirFileMasksTheSubjectAndKeepsTheRest) {
  KeyedMasks masks(k_key, alice());
  connectors::Locator loc;
  loc.store = connectors::StoreKind::maildir;
  loc.path = "/m/cur/1.x:2,S";
  auto r = redact_stored_item(loc, k_message, masks, m_norm);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->stored.find("alice"), std::string::npos) << r->stored;
  EXPECT_EQ(r->stored.find("Alice"), std::string::npos) << r->stored;
  EXPECT_NE(r->stored.find("Cc: \"[erased person]\" <erased-person@redacted.invalid>\n"), std::string::npos)
      << r->stored;
  EXPECT_NE(r->stored.find("From now on [erased person] chairs the meeting.\n"), std::string::npos) << r->stored;
  for (std::string_view kept : {"From: Bob Jones <bob@example.com>\n", "To: team@example.com\n",
                                "Subject: Friday\n", "Message-ID: <m1@example.com>\n",
                                "Content-Type: text/plain; charset=utf-8\n", "Hello all,\n", "Bob\n"}) {
    EXPECT_NE(r->stored.find(kept), std::string::npos) << kept << "\n" << r->stored;
  }
  EXPECT_EQ(change_list(r->report),
            (std::vector<std::string>{"Cc", "text/plain part", "X-Maildsar-Redacted header added"}));
}

TEST_F(MessageRedaction, MessageEndingInsideItsLastHeaderLineKeepsThatField) {
  // Found on the corpus: no body and no final newline; GMime would write the added field onto
  // the last line ("Subject: No SubjectX-Maildsar-Redacted: ...").
  KeyedMasks masks(k_key, alice());
  connectors::Locator loc;
  loc.store = connectors::StoreKind::maildir;
  auto r = redact_stored_item(loc, "From: Alice Smith <alice.smith@example.com>\nSubject: No Subject", masks, m_norm);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_NE(r->stored.find("\nSubject: No Subject\n"), std::string::npos) << r->stored;
  EXPECT_NE(r->stored.find("\nX-Maildsar-Redacted: "), std::string::npos) << r->stored;
}

TEST_F(MessageRedaction, AddressesHiddenAsListArchivesWriteThemAreMaskedToo) {
  // Real list mail quotes "Name <user at example.com> wrote:"; verify certified while these
  // stayed in the redacted copies, because neither the index nor the redaction read them.
  KeyedMasks masks(k_key, {KeyedIdentifier{"email", core::keyed_hash(k_key, "email", "alice.smith@example.com")}});
  connectors::Locator loc;
  loc.store = connectors::StoreKind::maildir;
  const std::string quoted = "From: bob@example.com\nTo: list@example.org\nSubject: Re: x\n\n"
                             "On Monday, A. <alice.smith at example.com> wrote:\n> hi\n"
                             "Also alice.smith (at) example.com and alice.smithson at example.com.\n";
  auto r = redact_stored_item(loc, quoted, masks, m_norm);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_NE(r->stored.find("On Monday, A. <[erased person]> wrote:\n"), std::string::npos) << r->stored;
  EXPECT_NE(r->stored.find("Also [erased person] and alice.smithson at example.com.\n"), std::string::npos)
      << r->stored;
}

TEST_F(MessageRedaction, MessageWithoutTheSubjectIsUnchanged) {
  KeyedMasks masks(k_key, alice());
  connectors::Locator loc;
  loc.store = connectors::StoreKind::maildir;
  const std::string other = "From: bob@example.com\nTo: carol@example.com\nSubject: x\n\nNothing here.\n";
  auto r = redact_stored_item(loc, other, masks, m_norm);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->report.changed());
  EXPECT_EQ(r->stored, other);
}

TEST_F(MessageRedaction, MboxEntryKeepsItsFromLineQuotingSeparatorAndLength) {
  KeyedMasks masks(k_key, alice());
  std::string message = k_message;
  message.insert(message.find("\n\n"), "\nContent-Length: 61");
  message += ">From the archive\n"; // an unquoted-on-read ">From " line: quoted again on write
  std::string quoted;
  for (std::size_t at = 0; at < message.size();) {
    std::size_t end = message.find('\n', at) + 1;
    std::string line = message.substr(at, end - at);
    quoted += (line.find_first_not_of('>') != std::string::npos &&
               std::string_view(line).substr(line.find_first_not_of('>')).starts_with("From "))
                  ? ">" + line
                  : line;
    at = end;
  }
  const std::string from_line = "From bob@example.com Mon Oct  2 09:00:00 2023\n";
  const std::string entry = from_line + quoted + "\n";
  connectors::Locator loc;
  loc.store = connectors::StoreKind::mbox;
  loc.offset = 100;
  loc.length = entry.size();
  auto r = redact_stored_item(loc, entry, masks, m_norm);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->stored.starts_with(from_line)) << r->stored;
  EXPECT_TRUE(r->stored.ends_with("Bob\n>>From the archive\n\n")) << r->stored;
  EXPECT_NE(r->stored.find("\n>From now on [erased person] chairs"), std::string::npos) << r->stored;
  // The file splits into exactly this one message, which reads back as the redaction.
  const std::string box = r->stored + from_line + "From: x@example.com\n\nnext\n";
  core::TempDir dir = *core::TempDir::create("maildsar-mbox");
  const std::string path = (dir.path() / "box").string();
  test::write_file(path, box);
  auto fd = core::open_read(path);
  ASSERT_TRUE(fd);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> split;
  ASSERT_TRUE(connectors::split_mbox(
      fd->get(), path, 0, box.size(), [&](const connectors::MboxMessage &m) { split.emplace_back(m.offset, m.length); },
      [](connectors::ScanError &&) {}));
  ASSERT_EQ(split.size(), 2U);
  EXPECT_EQ(split[0], (std::pair<std::uint64_t, std::uint64_t>{0, r->stored.size()}));
  // Content-Length counts the body as stored, without the separating blank line.
  const std::size_t body = r->stored.find("\n\n") + 2;
  const std::size_t length = r->stored.size() - 1 - body;
  EXPECT_NE(r->stored.find("Content-Length: " + std::to_string(length) + "\n"), std::string::npos) << r->stored;
}

TEST_F(MessageRedaction, CrlfMessageStaysCrlf) {
  KeyedMasks masks(k_key, alice());
  std::string crlf;
  for (char c : k_message) {
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  }
  connectors::Locator loc;
  loc.store = connectors::StoreKind::emlfolder;
  auto r = redact_stored_item(loc, crlf, masks, m_norm);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->stored.find("alice"), std::string::npos);
  for (std::size_t at = r->stored.find('\n'); at != std::string::npos; at = r->stored.find('\n', at + 1)) {
    ASSERT_GT(at, 0U);
    EXPECT_EQ(r->stored[at - 1], '\r') << "bare LF at " << at << ":\n" << r->stored;
  }
  EXPECT_NE(r->stored.find("To: team@example.com\r\n"), std::string::npos);
}

TEST_F(MessageRedaction, GzipQuarantineFileIsCompressedAgain) {
  KeyedMasks masks(k_key, alice());
  auto packed = connectors::gzip_compress(k_message);
  ASSERT_TRUE(packed);
  connectors::Locator loc;
  loc.store = connectors::StoreKind::quarantine;
  loc.path = "/q/spam-abc.gz";
  auto r = redact_stored_item(loc, *packed, masks, m_norm);
  ASSERT_TRUE(r) << r.error().message;
  auto unpacked = connectors::gunzip(r->stored);
  ASSERT_TRUE(unpacked) << unpacked.error().message;
  EXPECT_NE(unpacked->find("[erased person]"), std::string::npos);
  EXPECT_EQ(unpacked->find("alice"), std::string::npos);
  auto again = redact_stored_item(loc, *packed, masks, m_norm);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->stored, r->stored) << "the same input gives the same bytes (a resumed erase relies on it)";
}

TEST(MessageRedactionStores, WhatEraseCannotRewriteIsNamed) {
  core::Config config;
  core::SourceConfig cl2;
  cl2.name = "old";
  cl2.type = "mbox";
  cl2.format = "mboxcl2";
  config.sources.push_back(cl2);
  connectors::Locator loc;
  loc.source = "old";
  loc.store = connectors::StoreKind::mbox;
  EXPECT_NE(redaction_unsupported(config, loc).find("Content-Length"), std::string::npos);
  loc.source = "other";
  EXPECT_EQ(redaction_unsupported(config, loc), "");
  for (connectors::StoreKind store : {connectors::StoreKind::pst, connectors::StoreKind::archive,
                                      connectors::StoreKind::postfix_queue, connectors::StoreKind::exim_spool}) {
    loc.store = store;
    EXPECT_NE(redaction_unsupported(config, loc), "") << connectors::to_string(store);
  }
  loc.store = connectors::StoreKind::quarantine;
  loc.path = "/q/box.gz";
  loc.length = 10;
  EXPECT_NE(redaction_unsupported(config, loc), "");
  core::TempDir dir = *core::TempDir::create("maildsar-q");
  test::write_file(dir.path() / "m.header", "From: a@example.com\n");
  test::write_file(dir.path() / "m.body", "x\n");
  loc.path = (dir.path() / "m.header").string();
  loc.length = 0;
  EXPECT_NE(redaction_unsupported(config, loc).find(".header"), std::string::npos);
}

TEST(MessageRedactionStores, NewMaildirNamesAreStableAndDistinct) {
  const std::string a = redacted_maildir_unique("/m/cur/1700000300.M4P100.mx1:2,RS", "hash1");
  EXPECT_EQ(a, redacted_maildir_unique("/m/cur/1700000300.M4P100.mx1:2,S", "hash1")) << "flags are not part of it";
  EXPECT_NE(a, redacted_maildir_unique("/m/cur/1700000300.M4P100.mx1:2,S", "hash2"));
  EXPECT_NE(a, redacted_maildir_unique("/m/.Archive/cur/1700000300.M5P100.mx1:2,S", "hash1"));
  EXPECT_TRUE(a.starts_with("1700000300.R")) << a;
  EXPECT_TRUE(a.ends_with(".maildsar")) << a;
  EXPECT_EQ(a.find_first_of("/:"), std::string::npos);
  EXPECT_TRUE(redacted_maildir_unique("/m/cur/weird-name", "h").starts_with("0.R"));
}

// ---------------------------------------------------------------------------------------------
// The corpus, checked by an independent script

TEST_F(MessageRedaction, EveryCorpusMessageKeepsWhatDidNotNameTheSubject) {
  const fs::path corpus = test::corpus_dir();
  if (corpus.empty()) {
    GTEST_SKIP() << "../shared/corpus is not there";
  }
  auto dir = core::TempDir::create("maildsar-erase-redact");
  ASSERT_TRUE(dir);
  std::ofstream listing(dir->path() / "list.tsv");
  std::vector<fs::path> files;
  for (const auto &e : fs::recursive_directory_iterator(corpus / "mime")) {
    if (e.is_regular_file()) {
      files.push_back(e.path());
    }
  }
  std::ranges::sort(files);
  std::size_t redacted = 0;
  std::size_t unchanged = 0;
  std::size_t refused = 0;
  for (const fs::path &file : files) {
    const std::string raw = test::read_file(file);
    connectors::Item item;
    if (!connectors::mime::decode_message(raw, item)) {
      continue;
    }
    std::optional<std::string> address;
    for (const auto &a : item.addresses) {
      if (auto n = m_norm.email(a.addr); n && !address) {
        address = *n;
      }
    }
    if (!address) {
      continue;
    }
    KeyedMasks masks(k_key, {KeyedIdentifier{"email", core::keyed_hash(k_key, "email", *address)}});
    connectors::Locator loc;
    loc.store = connectors::StoreKind::maildir;
    auto r = redact_stored_item(loc, raw, masks, m_norm);
    if (!r) {
      // Refused whole (the redaction would leave the address somewhere): erase then fails the
      // item and changes nothing, which is safe; counted, and must stay rare.
      ++refused;
      continue;
    }
    if (!r->report.changed()) {
      ++unchanged;
      continue;
    }
    const std::string n = std::to_string(redacted++);
    test::write_file(dir->path() / (n + ".orig"), raw);
    test::write_file(dir->path() / (n + ".redacted"), r->stored);
    listing << (dir->path() / (n + ".orig")).string() << '\t' << (dir->path() / (n + ".redacted")).string() << '\t'
            << *address << '\n';
  }
  listing.close();
  EXPECT_GE(redacted, 150U);
  EXPECT_LE(refused, 2U);
  const std::string script = std::string(MAILDSAR_SOURCE_DIR) + "/tests/unit/erasure/check_preserved.py";
  const std::string command = "python3 " + script + " " + (dir->path() / "list.tsv").string() + " > " +
                              (dir->path() / "check.txt").string() + " 2>&1";
  const int rc = std::system(command.c_str());
  const std::string report = test::read_file(dir->path() / "check.txt");
  if (const char *keep = std::getenv("MAILDSAR_KEEP_REDACTED")) {
    fs::copy(dir->path(), keep, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  }
  EXPECT_EQ(rc, 0) << report;
  EXPECT_NE(report.find("0 finding(s)"), std::string::npos) << report;
  std::cout << "[ corpus ] " << redacted << " redacted, " << unchanged << " unchanged, " << refused << " refused; "
            << report.substr(report.rfind("checked")) << std::flush;
}

} // namespace
} // namespace maildsar::erasure
