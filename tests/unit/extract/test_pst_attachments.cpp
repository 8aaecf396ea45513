// SPDX-License-Identifier: GPL-3.0-or-later
// Attachments of PST/OST messages (issue 11 class 5): the PST worker sets documents and attached
// messages aside and sends them to the parent, which extracts their text through the same extract
// worker and cache as MIME attachments.
//
// Test data: pst/aspose/SampleOstFile.ost of the shared corpus (aspose-email/Aspose.Email-for-.NET,
// Examples/Data/Outlook/SampleOstFile.ost @ 21cb169ac0f418fa6c473e90a3aae89341dc5f68, MIT;
// synthetic test mail of an Exchange test domain): its message "05 - test email - single meeting
// request" carries Invitation.pdf (10,642 bytes, one page), whose text is the only place of the
// store that names "sender@domain.com" in that message. Read from $MAILDSAR_CORPUS (or
// ../shared/corpus); the tests skip without it.
#include "connectors/attachment_text.hpp"
#include "connectors/isolate.hpp"
#include "connectors/pst.hpp"
#include "connectors/pst_export.hpp"
#include "connectors/pst_worker.hpp"
#include "core/fs.hpp"

#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

namespace maildsar::connectors {
namespace {

namespace fs = std::filesystem;

constexpr const char *k_invitation_subject = "05 - test email - single meeting request";

fs::path sample_ost() {
  const fs::path corpus = test::corpus_dir();
  return corpus.empty() ? fs::path() : corpus / "pst/aspose/SampleOstFile.ost";
}

class PstAttachments : public ::testing::Test {
protected:
  void SetUp() override {
    if (sample_ost().empty() || !fs::exists(sample_ost())) {
      GTEST_SKIP() << "corpus pst/aspose/SampleOstFile.ost not found (set MAILDSAR_CORPUS)";
    }
    auto dir = core::TempDir::create("maildsar-pst-attach");
    ASSERT_TRUE(dir.has_value());
    m_dir.emplace(std::move(*dir));
    m_old = attachment_text_settings();
    settings.enabled = true;
    settings.cache_path = attachment_cache_path(m_dir->path().string());
    settings.worker = {.cpu_seconds = 20, .memory_mib = 512, .wall_seconds = 60};
    set_attachment_text(settings);
  }
  void TearDown() override {
    set_attachment_text(m_old);
    ::unsetenv("MAILDSAR_WORKER_TEST_FAULT");
  }

  /** Scans the OST through the PST worker; the message carrying Invitation.pdf. */
  std::optional<Item> scan_invitation(std::size_t *errors = nullptr) {
    ItemCollector sink;
    auto stats = scan_pst_file("legacy", sample_ost().string(), sink);
    EXPECT_TRUE(stats) << stats.error().message;
    if (errors != nullptr) {
      *errors = sink.errors.size();
    }
    // Three items have that subject (the meeting request twice, the calendar item): the one in
    // Inbox that carries the PDF.
    for (Item &item : sink.items) {
      if (item.subject == k_invitation_subject && find_text(item, Role::attachment_name, "Invitation.pdf") != nullptr) {
        return std::move(item);
      }
    }
    ADD_FAILURE() << "no item with the subject " << k_invitation_subject << " and Invitation.pdf";
    return std::nullopt;
  }

  static const RawText *find_text(const Item &item, Role role, const std::string &needle) {
    auto it = std::find_if(item.texts.begin(), item.texts.end(), [&](const RawText &t) {
      return t.role == role && t.text.find(needle) != std::string::npos;
    });
    return it == item.texts.end() ? nullptr : &*it;
  }

  AttachmentTextSettings settings;
  std::optional<core::TempDir> m_dir;

private:
  AttachmentTextSettings m_old;
};

TEST_F(PstAttachments, PdfTextIsAttachmentBodyNamedByTheAttachment) {
  auto item = scan_invitation();
  ASSERT_TRUE(item);
  const RawText *text = find_text(*item, Role::attachment_body, "sender@domain.com");
  ASSERT_NE(text, nullptr) << "the PDF's text was not extracted";
  EXPECT_EQ(text->field, "Invitation.pdf");
  EXPECT_NE(text->text.find("Developers Conference 2008"), std::string::npos) << text->text;
  EXPECT_NE(find_text(*item, Role::attachment_name, "Invitation.pdf"), nullptr);
  ASSERT_EQ(item->attachment_hashes.size(), 1U) << "the cache entry is kept by the item";
  EXPECT_EQ(item->attachment_hashes[0].size(), 64U);
  EXPECT_TRUE(item->problems.empty()) << item->problems.front();
  EXPECT_TRUE(item->truncated.empty()) << item->truncated.front();
  EXPECT_FALSE(find_text(*item, Role::body, "sender@domain.com")) << "the PDF's text is not the body";
}

TEST_F(PstAttachments, WithoutAttachmentTextOnlyTheNameIsIndexed) {
  settings.enabled = false;
  set_attachment_text(settings);
  auto item = scan_invitation();
  ASSERT_TRUE(item);
  EXPECT_EQ(find_text(*item, Role::attachment_body, "sender@domain.com"), nullptr);
  EXPECT_NE(find_text(*item, Role::attachment_name, "Invitation.pdf"), nullptr);
  EXPECT_TRUE(item->attachment_hashes.empty());
}

TEST_F(PstAttachments, TheCacheServesTheSecondScanWithoutAWorker) {
  auto first = scan_invitation();
  ASSERT_TRUE(first);
  ASSERT_NE(find_text(*first, Role::attachment_body, "sender@domain.com"), nullptr);
  // An extractor that would crash on it is never asked: the text comes from the cache.
  ::setenv("MAILDSAR_WORKER_TEST_FAULT", "crash:Invitation.pdf", 1);
  std::size_t errors = 0;
  auto second = scan_invitation(&errors);
  ASSERT_TRUE(second);
  EXPECT_EQ(errors, 0U);
  EXPECT_TRUE(second->problems.empty());
  EXPECT_NE(find_text(*second, Role::attachment_body, "sender@domain.com"), nullptr);
  EXPECT_EQ(second->attachment_hashes, first->attachment_hashes);
  EXPECT_EQ(second->sha256, first->sha256);
}

TEST_F(PstAttachments, CrashingExtractorIsOneProblemNamingTheAttachmentAndTheItemStays) {
  settings.cache_path.clear(); // no cache: the worker is asked
  set_attachment_text(settings);
  ::setenv("MAILDSAR_WORKER_TEST_FAULT", "crash:Invitation.pdf", 1);
  auto item = scan_invitation();
  ASSERT_TRUE(item);
  ASSERT_EQ(item->problems.size(), 1U);
  const std::string &problem = item->problems[0];
  EXPECT_TRUE(problem.starts_with("attachment \"Invitation.pdf\" (PST attachment 1, ")) << problem;
  EXPECT_NE(problem.find("crashed"), std::string::npos) << problem;
  EXPECT_EQ(find_text(*item, Role::attachment_body, "sender@domain.com"), nullptr);
  // The rest of the message is there: its recipient and its body.
  EXPECT_TRUE(std::any_of(item->addresses.begin(), item->addresses.end(), [](const RawAddress &a) {
    return a.role == Role::to && a.name == "Saqib Razzaq";
  }));
  EXPECT_NE(find_text(*item, Role::body, "test email"), nullptr);
}

TEST_F(PstAttachments, HangingExtractorHitsItsLimitAndTheScanGoesOn) {
  settings.cache_path.clear();
  settings.worker = {.cpu_seconds = 1, .memory_mib = 512, .wall_seconds = 30};
  set_attachment_text(settings);
  ::setenv("MAILDSAR_WORKER_TEST_FAULT", "spin:Invitation.pdf", 1);
  ItemCollector sink;
  auto stats = scan_pst_file("legacy", sample_ost().string(), sink);
  ASSERT_TRUE(stats) << stats.error().message;
  // The meeting request, its copy and the calendar items carry the PDF: one problem each (no
  // cache here), nothing for any other item.
  std::size_t carriers = 0;
  for (const Item &item : sink.items) {
    if (find_text(item, Role::attachment_name, "Invitation.pdf") != nullptr) {
      ++carriers;
      ASSERT_EQ(item.problems.size(), 1U);
      EXPECT_NE(item.problems[0].find("CPU-time limit of 1 s"), std::string::npos) << item.problems[0];
    } else {
      EXPECT_TRUE(item.problems.empty()) << item.subject << ": " << item.problems.front();
    }
  }
  EXPECT_GE(carriers, 1U);
  EXPECT_EQ(sink.items.size(), stats->items()) << "every item is still read";
}

TEST_F(PstAttachments, AttachmentAboveTheLimitIsMarkedNotSilentlyDropped) {
  settings.max_attachment_bytes = 4096; // Invitation.pdf has 10,642 bytes
  set_attachment_text(settings);
  auto item = scan_invitation();
  ASSERT_TRUE(item);
  EXPECT_EQ(find_text(*item, Role::attachment_body, "sender@domain.com"), nullptr);
  ASSERT_EQ(item->truncated.size(), 1U);
  EXPECT_NE(item->truncated[0].find("attachment \"Invitation.pdf\" (PST attachment 1): 10642 bytes"),
            std::string::npos) << item->truncated[0];
  EXPECT_TRUE(item->problems.empty());
}

// A document inside an attached Outlook item (tika/testPST.pst, apache/tika test document,
// Apache-2.0: see ../shared/corpus/SOURCES.md): "FW: First email" carries the forwarded message as an
// Outlook item, which carries attachment.docx. Its text is found, named by the DOCX; a failure names
// its position inside the attached item.
TEST_F(PstAttachments, DocumentInsideAnAttachedOutlookItemIsExtracted) {
  const fs::path tika = test::corpus_dir() / "pst/tika/testPST.pst";
  if (!fs::exists(tika)) {
    GTEST_SKIP() << "corpus pst/tika/testPST.pst not found";
  }
  auto forwarded = [&]() -> std::optional<Item> {
    ItemCollector sink;
    auto stats = scan_pst_file("legacy", tika.string(), sink);
    EXPECT_TRUE(stats) << stats.error().message;
    for (Item &item : sink.items) {
      if (item.subject == "FW: First email") {
        return std::move(item);
      }
    }
    return std::nullopt;
  };
  auto item = forwarded();
  ASSERT_TRUE(item) << "no item FW: First email";
  const RawText *text = find_text(*item, Role::attachment_body, "This is a docx attachment");
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(text->field, "attachment.docx");
  EXPECT_NE(text->text.find("Luis Filipe da Cruz Nassif"), std::string::npos) << text->text;
  // The attached item's own header fields are attachment-body text named by the item.
  const RawText *from = find_text(*item, Role::attachment_body, "from: Luis Filipe da Cruz Nassif");
  ASSERT_NE(from, nullptr);
  EXPECT_EQ(from->field, "First email");
  EXPECT_EQ(item->attachment_hashes.size(), 1U);

  settings.cache_path.clear();
  set_attachment_text(settings);
  ::setenv("MAILDSAR_WORKER_TEST_FAULT", "crash:attachment.docx", 1);
  auto failed = forwarded();
  ASSERT_TRUE(failed);
  ASSERT_EQ(failed->problems.size(), 1U);
  EXPECT_TRUE(failed->problems[0].starts_with("attachment \"attachment.docx\" (PST attachment 1.1, "))
      << failed->problems[0];
  EXPECT_EQ(find_text(*failed, Role::attachment_body, "This is a docx attachment"), nullptr);
}

// The export of a message with an attached Outlook message (pstsdk/submessage.pst, Apache-2.0: see
// ../shared/corpus/SOURCES.md) carries the attached message as message/rfc822, not as the raw
// MAPI property block the PST stores, with boundaries of its own.
TEST(PstExportAttachments, AttachedOutlookMessageIsRenderedAsRfc822) {
  const fs::path corpus = test::corpus_dir();
  if (corpus.empty() || !fs::exists(corpus / "pst/pstsdk/submessage.pst")) {
    GTEST_SKIP() << "corpus pst/pstsdk/submessage.pst not found (set MAILDSAR_CORPUS)";
  }
  auto rendered = render_pst_items((corpus / "pst/pstsdk/submessage.pst").string(), {0x200024});
  ASSERT_TRUE(rendered) << rendered.error().message;
  ASSERT_TRUE(rendered->contains(0x200024));
  const auto &r = rendered->at(0x200024);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->extension, "eml");
  const std::string &eml = r->bytes;
  const auto part = eml.find("Content-Type: message/rfc822\r\nContent-Disposition: attachment; "
                             "filename=\"This is an embedded message.eml\"\r\n\r\n");
  ASSERT_NE(part, std::string::npos) << eml.substr(0, 4000);
  const std::string inner = eml.substr(part);
  EXPECT_NE(inner.find("Subject: This is an embedded message\r\n"), std::string::npos);
  EXPECT_NE(inner.find("boundary=\"=_maildsar_200024_e1_0\""), std::string::npos);
  EXPECT_NE(eml.find("boundary=\"=_maildsar_200024_0\""), std::string::npos);
  // The outer boundary closes after the inner message's.
  EXPECT_LT(eml.find("--=_maildsar_200024_e1_0--"), eml.rfind("--=_maildsar_200024_0--"));
}

TEST(PstAttachmentWire, RoundTripsAndRejectsMalformedFrames) {
  PstAttachment a;
  a.node_id = 0x200024;
  a.position = "3.1";
  a.name = "payslip.pdf";
  a.mime_type = "application/pdf";
  a.size = 5;
  a.bytes = "%PDF-";
  isolate::Encoder out(k_frame_attachment);
  encode_pst_attachment(out, a);
  std::string payload = out.take();
  isolate::Decoder in(std::string_view(payload).substr(1));
  auto back = decode_pst_attachment(in);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->node_id, a.node_id);
  EXPECT_EQ(back->position, "3.1");
  EXPECT_EQ(back->name, "payslip.pdf");
  EXPECT_EQ(back->bytes, "%PDF-");
  EXPECT_FALSE(back->withheld);
  EXPECT_FALSE(back->message);

  // "withheld" with bytes, and unknown flags, are protocol errors.
  PstAttachment bad = a;
  bad.withheld = true;
  isolate::Encoder lie(k_frame_attachment);
  encode_pst_attachment(lie, bad);
  payload = lie.take();
  isolate::Decoder lie_in(std::string_view(payload).substr(1));
  EXPECT_FALSE(decode_pst_attachment(lie_in));
  isolate::Encoder junk(k_frame_attachment);
  junk.u64(1).str("1").str("x").str("").u64(0).u8(7).str("");
  payload = junk.take();
  isolate::Decoder junk_in(std::string_view(payload).substr(1));
  EXPECT_FALSE(decode_pst_attachment(junk_in));
}

TEST(PstAttachmentMerge, WithheldAndMessageAttachmentsAreMerged) {
  Item item;
  std::vector<PstAttachment> pending(2);
  pending[0].position = "1";
  pending[0].name = "huge.pdf";
  pending[0].mime_type = "application/pdf";
  pending[0].size = 99U << 20;
  pending[0].withheld = true;
  pending[1].position = "2";
  pending[1].name = "fwd.eml";
  pending[1].mime_type = "message/rfc822";
  pending[1].message = true;
  pending[1].bytes = "From: Zelda Quimby <zelda@example.org>\r\nSubject: inner\r\n\r\nInner body text.\r\n";
  pending[1].size = pending[1].bytes.size();
  merge_pst_attachments(item, pending);
  ASSERT_EQ(item.truncated.size(), 1U);
  EXPECT_NE(item.truncated[0].find("attachment \"huge.pdf\" (PST attachment 1)"), std::string::npos)
      << item.truncated[0];
  bool address = false;
  bool body = false;
  for (const RawText &t : item.texts) {
    EXPECT_EQ(t.role, Role::attachment_body);
    EXPECT_EQ(t.field, "fwd.eml");
    address = address || t.text.find("zelda@example.org") != std::string::npos;
    body = body || t.text.find("Inner body text.") != std::string::npos;
  }
  EXPECT_TRUE(address);
  EXPECT_TRUE(body);
}

} // namespace
} // namespace maildsar::connectors
