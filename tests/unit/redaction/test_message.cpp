// SPDX-License-Identifier: GPL-3.0-or-later
// The message redaction primitive (issue 18 item 1): hand-made messages for each encoding a
// name or address can hide in, and every message of the MIME corpus redacted for one of its
// addresses, checked by an independent scanner (Python's email package).
#include "redaction/message.hpp"

#include "connectors/attachment_text.hpp"
#include "connectors/item.hpp"
#include "connectors/limits.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "core/fs.hpp"
#include "tests/doc_fixtures.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace maildsar::redaction {
namespace {

namespace fs = std::filesystem;

/** RFC 2045 base64 in lines of 76 characters. */
std::string base64(const std::string &bytes) {
  static constexpr std::string_view k_digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t line = 0;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16U;
    if (i + 1 < bytes.size()) {
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8U;
    }
    if (i + 2 < bytes.size()) {
      v |= static_cast<unsigned char>(bytes[i + 2]);
    }
    out += k_digits[(v >> 18U) & 63U];
    out += k_digits[(v >> 12U) & 63U];
    out += i + 1 < bytes.size() ? k_digits[(v >> 6U) & 63U] : '=';
    out += i + 2 < bytes.size() ? k_digits[v & 63U] : '=';
    if ((line += 4) >= 76) {
      out += '\n';
      line = 0;
    }
  }
  return out;
}

const std::set<std::pair<std::string, std::string>> k_alice{
    {"email", "alice.smith@example.com"}, {"name", "alice smith"}, {"phone", "+442079460123"}};

class RedactMessage : public ::testing::Test {
protected:
  static void SetUpTestSuite() { ASSERT_TRUE(index::Normalizer::load_phone_module()); }

  RedactedMessage redact(const std::string &raw, Masks &masks, const MessageOptions &options = {}) {
    auto r = redact_message(raw, masks, m_norm, options);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
    return r ? *r : RedactedMessage{};
  }

  /** Every text the indexer's decoder reads from `bytes`, joined (lower-case). */
  static std::string decoded(const std::string &bytes) {
    connectors::Item item;
    EXPECT_TRUE(connectors::mime::decode_message(bytes, item));
    std::string all;
    for (const auto &a : item.addresses) {
      all += a.name + " <" + a.addr + ">\n";
    }
    for (const auto &t : item.texts) {
      all += t.text + "\n";
    }
    std::ranges::transform(all, all.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return all;
  }

  index::Normalizer m_norm{index::NormalizeOptions{{"+"}, "GB"}};
};

const std::string k_message = "Received: from mx.example.net (mx.example.net [192.0.2.7])\n"
                              "\tby mail.example.com with ESMTP id 1234\n"
                              "\tfor <alice.smith@example.com>; Tue, 14 Nov 2023 10:00:00 +0000\n"
                              "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; b=AAAA\n"
                              "From: =?utf-8?q?Alice_Smith?= <alice.smith@example.com>\n"
                              "To: Bob Jones <bob@example.org>, alice.smith@example.com\n"
                              "Cc: \"Smith, Alice\" <ALICE.SMITH@EXAMPLE.COM>\n"
                              "Subject: =?utf-8?q?Lunch_with_Alice_Smith?=\n"
                              "X-Original-To: alice.smith@example.com\n"
                              "Message-ID: <m1@example.com>\n"
                              "MIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"b1\"\n"
                              "\n"
                              "--b1\n"
                              "Content-Type: text/plain; charset=utf-8\n"
                              "Content-Transfer-Encoding: quoted-printable\n"
                              "\n"
                              "Hi Bob, write to alice.smith@exam=\n"
                              "ple.com or call +44 20 7946 0123. Regards, Alice Smith\n"
                              "--b1\n"
                              "Content-Type: text/html; charset=utf-8\n"
                              "Content-Transfer-Encoding: base64\n"
                              "\n"
                              "PHA+TWFpbCA8YSBocmVmPSJtYWlsdG86YWxpY2Uuc21pdGhAZXhhbXBsZS5jb20iPmFsaWNl\n"
                              "LnNtaXRoJiM2NDtleGFtcGxlLmNvbTwvYT4gb3IgQm9iPC9wPgo=\n"
                              "--b1\n"
                              "Content-Type: text/plain; charset=utf-8\n"
                              "Content-Disposition: attachment; filename*=utf-8''Alice%20Smith%20CV.txt\n"
                              "\n"
                              "Curriculum vitae of Alice Smith, bob@example.org knows her.\n"
                              "--b1--\n";

TEST_F(RedactMessage, MasksTheSubjectInEveryHeaderPartAndEncoding) {
  // (The base64 HTML part is <p>Mail <a href="mailto:alice.smith@example.com">
  //  alice.smith&#64;example.com</a> or Bob</p>.)
  ListedMasks masks(k_alice);
  const RedactedMessage r = redact(k_message, masks);
  const std::string text = decoded(r.bytes);
  for (const char *gone : {"alice.smith@example.com", "alice smith", "smith, alice", "7946", "alice%20smith"}) {
    EXPECT_EQ(text.find(gone), std::string::npos) << gone << " in\n" << text;
    EXPECT_EQ(r.bytes.find(gone), std::string::npos) << gone << " in\n" << r.bytes;
  }
  EXPECT_NE(text.find("bob@example.org"), std::string::npos) << "another person is kept";
  EXPECT_NE(text.find("[redacted]"), std::string::npos);
  EXPECT_NE(text.find("redacted@redacted.invalid"), std::string::npos) << "address fields stay addresses";
  EXPECT_NE(r.bytes.find("X-Maildsar-Redacted: "), std::string::npos);
  EXPECT_EQ(r.bytes.find("\nDKIM-Signature:"), std::string::npos);
  EXPECT_EQ(r.report.removed_headers, std::vector<std::string>{"DKIM-Signature"});
  EXPECT_GE(r.report.header_replacements, 6U); // Received, From, To, Cc, Subject, X-Original-To
  EXPECT_GE(r.report.text_replacements, 5U);   // QP body (3), HTML (2), file name
  EXPECT_NE(r.bytes.find("[redacted] CV.txt"), std::string::npos) << r.bytes;
  EXPECT_NE(text.find("mx.example.net"), std::string::npos) << "the rest of Received is kept";
}

TEST_F(RedactMessage, AMessageThatNamesNobodyMaskedIsReturnedByteForByte) {
  ListedMasks masks(std::set<std::pair<std::string, std::string>>{{"email", "carol@example.net"}});
  const RedactedMessage r = redact(k_message, masks);
  EXPECT_EQ(r.bytes, k_message);
  EXPECT_FALSE(r.report.changed());
}

TEST_F(RedactMessage, EveryoneButTheSubjectBecomesANumberedPersonAcrossMessages) {
  PersonLabels people(std::set<std::pair<std::string, std::string>>{{"email", "alice.smith@example.com"},
                                                                     {"name", "alice smith"}});
  const RedactedMessage first = redact(k_message, people);
  const std::string text = decoded(first.bytes);
  EXPECT_NE(text.find("alice.smith@example.com"), std::string::npos) << "the subject is kept";
  EXPECT_EQ(text.find("bob@example.org"), std::string::npos) << text;
  EXPECT_EQ(text.find("bob jones"), std::string::npos) << "Bob's name, known from To:, is masked";
  EXPECT_NE(text.find("[person 1]"), std::string::npos);
  EXPECT_NE(text.find("[phone 1]"), std::string::npos) << "a phone number not kept is masked";
  const std::string second_raw = "From: Bob Jones <bob@example.org>\nTo: Carol <carol@example.net>\n"
                                 "Subject: hi\n\nBob here; Carol (carol@example.net) says hi.\n";
  const RedactedMessage second = redact(second_raw, people);
  EXPECT_NE(second.bytes.find("From: \"[person 1]\" <person-1@redacted.invalid>"), std::string::npos)
      << "Bob is person 1 in every message\n"
      << second.bytes;
  // Carol's address in the text gets her number; her first name alone is no recognisable name.
  EXPECT_NE(second.bytes.find("Carol ([person 2]) says hi"), std::string::npos) << second.bytes;
  EXPECT_EQ(people.legend().at("[person 1]"), "bob@example.org");
}

TEST_F(RedactMessage, AnAttachmentWhoseTextNamesAMaskedPersonIsWithheld) {
  connectors::AttachmentTextSettings old = connectors::attachment_text_settings();
  connectors::AttachmentTextSettings on = old;
  on.enabled = true;
  on.cache_path.clear();
  connectors::set_attachment_text(on);
  const std::string pdf_names = test::make_pdf({{"Reference for Alice Smith"}});
  const std::string pdf_clean = test::make_pdf({{"Quarterly figures"}});
  auto b64 = [](const std::string &bytes) { return base64(bytes); };
  const std::string raw = "From: bob@example.org\nTo: carol@example.net\nSubject: files\nMIME-Version: 1.0\n"
                          "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
                          "--b\nContent-Type: text/plain\n\nsee attached\n"
                          "--b\nContent-Type: application/pdf; name=\"ref.pdf\"\nContent-Disposition: attachment; "
                          "filename=\"ref.pdf\"\nContent-Transfer-Encoding: base64\n\n" +
                          b64(pdf_names) +
                          "\n--b\nContent-Type: application/pdf; name=\"q3.pdf\"\nContent-Disposition: attachment; "
                          "filename=\"q3.pdf\"\nContent-Transfer-Encoding: base64\n\n" +
                          b64(pdf_clean) + "\n--b--\n";
  ListedMasks masks(k_alice);
  const RedactedMessage r = redact(raw, masks);
  connectors::set_attachment_text(old);
  ASSERT_EQ(r.report.withheld.size(), 1U);
  EXPECT_NE(r.report.withheld.front().find("ref.pdf (application/pdf, "), std::string::npos) << r.report.withheld.front();
  EXPECT_NE(r.bytes.find("An attachment was removed from this copy."), std::string::npos);
  EXPECT_NE(r.bytes.find("q3.pdf"), std::string::npos) << "the other attachment is kept";
  EXPECT_EQ(r.bytes.find("ref.pdf\"\nContent-Transfer-Encoding: base64"), std::string::npos);
}

TEST_F(RedactMessage, NotAMessageIsADataError) {
  ListedMasks masks(k_alice);
  std::string huge(static_cast<std::size_t>(connectors::item_limits().max_item_bytes) + 1, 'x');
  auto r = redact_message(huge, masks, m_norm);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::data);
}

TEST_F(RedactMessage, HostileHtmlNestingStaysBounded) {
  std::string html;
  for (int i = 0; i < 100000; ++i) {
    html += "<div>";
  }
  html += "alice.smith@example.com";
  const std::string raw = "From: bob@example.org\nSubject: x\nContent-Type: text/html\n\n" + html + "\n";
  ListedMasks masks(k_alice);
  auto r = redact_message(raw, masks, m_norm);
  ASSERT_TRUE(r) << r.error().message;
  // libxml2 stops at its nesting limit: the part it could not read whole is withheld.
  EXPECT_EQ(decoded(r->bytes).find("alice.smith@example.com"), std::string::npos);
  ASSERT_EQ(r->report.withheld.size(), 1U);
  EXPECT_NE(r->report.withheld.front().find("HTML that could not be parsed"), std::string::npos);
}

/** Every message of the MIME corpus, redacted for its first address, independently checked. */
TEST_F(RedactMessage, EveryCorpusMessageLosesTheAddressItIsRedactedFor) {
  const fs::path corpus = test::corpus_dir();
  if (corpus.empty()) {
    GTEST_SKIP() << "../shared/corpus is not there";
  }
  auto dir = core::TempDir::create("maildsar-redact");
  ASSERT_TRUE(dir);
  // As the access package will: attachments are checked by their text (the extract worker).
  const connectors::AttachmentTextSettings old = connectors::attachment_text_settings();
  connectors::AttachmentTextSettings on = old;
  on.enabled = true;
  on.cache_path.clear();
  connectors::set_attachment_text(on);
  struct Restore {
    connectors::AttachmentTextSettings settings;
    ~Restore() { connectors::set_attachment_text(settings); }
  } restore{old};
  std::ofstream listing(dir->path() / "list.tsv");
  std::size_t redacted = 0;
  std::size_t not_messages = 0;
  std::size_t without_address = 0;
  std::vector<fs::path> files;
  for (const auto &e : fs::recursive_directory_iterator(corpus / "mime")) {
    if (e.is_regular_file()) {
      files.push_back(e.path());
    }
  }
  std::ranges::sort(files);
  for (const fs::path &file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    connectors::Item item;
    if (!connectors::mime::decode_message(raw, item)) {
      ++not_messages;
      continue;
    }
    std::optional<std::string> address;
    for (const auto &a : item.addresses) {
      if (auto n = m_norm.email(a.addr); n && !address) {
        address = *n;
      }
    }
    if (!address) {
      ++without_address;
      continue;
    }
    ListedMasks masks(std::set<std::pair<std::string, std::string>>{{"email", *address}});
    auto r = redact_message(raw, masks, m_norm);
    ASSERT_TRUE(r) << file << ": " << r.error().message;
    const fs::path out =
        dir->path() / (std::to_string(redacted++) + "-" + file.parent_path().filename().string() + "-" + file.filename().string());
    std::ofstream(out, std::ios::binary) << r->bytes;
    listing << out.string() << '\t' << *address << '\n';
  }
  listing.close();
  EXPECT_GE(redacted, 150U) << "most of the corpus names an address";
  const std::string script = std::string(MAILDSAR_SOURCE_DIR) + "/tests/unit/redaction/check_redacted.py";
  const std::string command = "python3 " + script + " " + (dir->path() / "list.tsv").string() + " > " +
                              (dir->path() / "check.txt").string() + " 2>&1";
  const int rc = std::system(command.c_str());
  std::ifstream report(dir->path() / "check.txt");
  const std::string findings((std::istreambuf_iterator<char>(report)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << findings;
  EXPECT_NE(findings.find(fmt::format("checked {} message(s), 0 finding(s)", redacted)), std::string::npos) << findings;
  RecordProperty("redacted", static_cast<int>(redacted));
  std::cout << "corpus: " << redacted << " redacted, " << not_messages << " not messages, " << without_address
            << " without an address; " << findings;
}

} // namespace
} // namespace maildsar::redaction
