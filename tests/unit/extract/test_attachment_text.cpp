// SPDX-License-Identifier: GPL-3.0-or-later
// Attachment text through the real worker (maildsar-extract-worker extract-text): isolation, limits,
// counted failures, the SHA-256 cache and its pruning, and the MIME parser's hook.
#include "connectors/attachment_text.hpp"
#include "connectors/isolate.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"

#include "core/sanitizers.hpp"
#include "tests/doc_fixtures.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <csignal>
#include <string>
#include <thread>

namespace maildsar::connectors {
namespace {

using test::make_docx;
using test::make_tnef;
using test::make_zip;
using test::make_pdf;

class AttachmentTextTest : public ::testing::Test {
protected:
  void SetUp() override {
    auto dir = core::TempDir::create("maildsar-extract");
    ASSERT_TRUE(dir.has_value());
    m_dir.emplace(std::move(*dir));
    m_old = attachment_text_settings();
    settings.enabled = true;
    settings.cache_path = attachment_cache_path(m_dir->path().string());
    settings.worker = {.cpu_seconds = 20, .memory_mib = 512, .wall_seconds = 60};
    apply();
  }
  void TearDown() override {
    set_attachment_text(m_old);
    ::unsetenv("MAILDSAR_WORKER_TEST_FAULT");
    ::unsetenv("MAILDSAR_WORKER");
  }
  void apply() { set_attachment_text(settings); }

  static Attachment pdf(const std::string &name, const std::string &line) {
    return Attachment{name, "application/pdf", "2", make_pdf({{line}})};
  }

  AttachmentTextSettings settings;
  std::optional<core::TempDir> m_dir;

private:
  AttachmentTextSettings m_old;
};

TEST_F(AttachmentTextTest, ExtractsInTheWorkerAndCachesBySha256) {
  const std::vector<Attachment> in{pdf("payslip.pdf", "Net pay of Jane Roe"),
                                   Attachment{"note.docx", "application/octet-stream", "3", make_docx({"Jane Roe"})}};
  auto first = extract_attachments(in);
  ASSERT_EQ(first.size(), 2U);
  EXPECT_NE(first[0].text.find("Net pay of Jane Roe"), std::string::npos) << first[0].problem;
  EXPECT_NE(first[1].text.find("Jane Roe"), std::string::npos) << first[1].problem;
  EXPECT_EQ(first[0].sha256, core::sha256_hex(in[0].bytes));
  // With no worker at all, the same bytes still give their text: from the cache.
  ::setenv("MAILDSAR_WORKER", "/nonexistent/maildsar-worker", 1);
  auto second = extract_attachments(in);
  EXPECT_EQ(second[0].text, first[0].text);
  EXPECT_EQ(second[1].text, first[1].text);
  EXPECT_TRUE(second[0].problem.empty());
  // Not cached: a worker is needed, and its absence is this attachment's problem only.
  auto third = extract_attachments({pdf("other.pdf", "Someone else")});
  EXPECT_NE(third[0].problem.find("attachment \"other.pdf\" (MIME part 2, application/pdf)"), std::string::npos)
      << third[0].problem;
}

TEST_F(AttachmentTextTest, CrashIsOneProblemAndTheOthersAreExtracted) {
  ::setenv("MAILDSAR_WORKER_TEST_FAULT", "crash:evil.pdf", 1);
  auto out = extract_attachments({pdf("good.pdf", "Good text"), pdf("evil.pdf", "Evil text"),
                                  pdf("after.pdf", "After text")});
  ASSERT_EQ(out.size(), 3U);
  EXPECT_NE(out[0].text.find("Good text"), std::string::npos);
  EXPECT_TRUE(out[0].problem.empty());
  EXPECT_TRUE(out[1].text.empty());
  EXPECT_NE(out[1].problem.find("attachment \"evil.pdf\""), std::string::npos) << out[1].problem;
#if MAILDSAR_ASAN
  // AddressSanitizer catches the SIGSEGV in the worker and aborts (ASAN_OPTIONS=abort_on_error=1).
  EXPECT_NE(out[1].problem.find("crashed: killed by signal"), std::string::npos) << out[1].problem;
#else
  EXPECT_NE(out[1].problem.find("crashed: killed by signal SIGSEGV"), std::string::npos) << out[1].problem;
#endif
  EXPECT_NE(out[2].text.find("After text"), std::string::npos) << out[2].problem;
  // The failure is cached (a hostile file forwarded 500 times costs one worker) ...
  ::unsetenv("MAILDSAR_WORKER_TEST_FAULT");
  auto again = extract_attachments({pdf("evil.pdf", "Evil text")});
  EXPECT_NE(again[0].problem.find("crashed"), std::string::npos) << again[0].problem;
  // ... until the limits change.
  settings.worker.cpu_seconds = 21;
  apply();
  auto retried = extract_attachments({pdf("evil.pdf", "Evil text")});
  EXPECT_TRUE(retried[0].problem.empty()) << retried[0].problem;
  EXPECT_NE(retried[0].text.find("Evil text"), std::string::npos);
}

TEST_F(AttachmentTextTest, HangingExtractorIsStoppedByTheCpuLimit) {
  settings.worker.cpu_seconds = 1;
  apply();
  ::setenv("MAILDSAR_WORKER_TEST_FAULT", "spin:loop.pdf", 1);
  auto out = extract_attachments({pdf("loop.pdf", "x")});
  EXPECT_NE(out[0].problem.find("exceeded the CPU-time limit of 1 s"), std::string::npos) << out[0].problem;
}

TEST_F(AttachmentTextTest, BlockedExtractorIsStoppedByTheWallClockLimit) {
  settings.worker.wall_seconds = 1;
  apply();
  ::setenv("MAILDSAR_WORKER_TEST_FAULT", "sleep:stuck.pdf", 1);
  auto out = extract_attachments({pdf("stuck.pdf", "x")});
  EXPECT_NE(out[0].problem.find("exceeded the wall-clock limit of 1 s"), std::string::npos) << out[0].problem;
}

TEST_F(AttachmentTextTest, BloatingExtractorIsStoppedByTheMemoryLimit) {
  if (!isolate::memory_limit_supported()) {
    GTEST_SKIP() << "RLIMIT_AS is not set in AddressSanitizer builds";
  }
  settings.worker.memory_mib = 256;
  apply();
  ::setenv("MAILDSAR_WORKER_TEST_FAULT", "bloat:fat.pdf", 1);
  auto out = extract_attachments({pdf("fat.pdf", "x")});
  EXPECT_NE(out[0].problem.find("exceeded the memory limit of 256 MiB"), std::string::npos) << out[0].problem;
}

TEST_F(AttachmentTextTest, TruncatedPdfIsAProblemOrPartialTextNeverACrashOfTheCaller) {
  const std::string whole = make_pdf({{"First page Jane Roe"}, {"Second page"}});
  auto out = extract_attachments({Attachment{"cut.pdf", "application/pdf", "2", whole.substr(0, whole.size() / 3)}});
  ASSERT_EQ(out.size(), 1U);
  // poppler reconstructs what it can of a cut file; either way nothing reaches the caller but
  // text or one problem.
  EXPECT_TRUE(!out[0].problem.empty() || out[0].text.find("First page Jane Roe") != std::string::npos)
      << out[0].text;
}

TEST_F(AttachmentTextTest, PruneDropsEntriesAndLeavesNoTextInTheFile) {
  const Attachment secret = pdf("secret.pdf", "Residue Marker Quimby");
  const Attachment kept = pdf("kept.pdf", "Kept Text");
  auto out = extract_attachments({secret, kept});
  ASSERT_TRUE(out[0].problem.empty());
  ASSERT_TRUE(prune_attachment_cache(settings.cache_path, {out[1].sha256}));
  const std::string file = test::read_file(settings.cache_path);
  EXPECT_EQ(file.find("Residue Marker Quimby"), std::string::npos);
  ::setenv("MAILDSAR_WORKER", "/nonexistent/maildsar-worker", 1);
  auto after = extract_attachments({secret, kept});
  EXPECT_FALSE(after[0].problem.empty()) << "dropped: needs a worker again";
  EXPECT_NE(after[1].text.find("Kept Text"), std::string::npos) << "kept: from the cache";
}

TEST_F(AttachmentTextTest, MimeParserIndexesAttachmentTextWithTheNameAsField) {
  const std::string msg = test::make_message(
      "a@example.com", "b@example.com", "Papers", "papers@example.com", "See attached.",
      {{"payslip.pdf", "application/pdf", make_pdf({{"Payslip of Jane Roe", "jane.roe@example.org"}})},
       {"note.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        make_docx({"Meeting with Jane Roe"})},
       {"photo.png", "image/png", "\x89PNG\r\n\x1a\n not really"}});
  Item item;
  ASSERT_TRUE(mime::decode_message(msg, item));
  std::vector<std::string> fields;
  for (const RawText &t : item.texts) {
    if (t.role == Role::attachment_body) {
      fields.push_back(t.field);
    }
  }
  EXPECT_EQ(fields, (std::vector<std::string>{"payslip.pdf", "note.docx"}));
  EXPECT_EQ(item.attachment_hashes.size(), 2U);
  EXPECT_TRUE(item.problems.empty());
  // Off (the default of a library user): the attachments give their names only.
  settings.enabled = false;
  apply();
  Item plain;
  ASSERT_TRUE(mime::decode_message(msg, plain));
  for (const RawText &t : plain.texts) {
    EXPECT_NE(t.role, Role::attachment_body) << t.text;
  }
}

TEST_F(AttachmentTextTest, MimeParserCountsAFailureAndKeepsTheRest) {
  ::setenv("MAILDSAR_WORKER_TEST_FAULT", "crash:evil.pdf", 1);
  const std::string msg = test::make_message("a@example.com", "b@example.com", "Hello Jane", "m2@example.com",
                                             "Body names jane.roe@example.org",
                                             {{"evil.pdf", "application/pdf", make_pdf({{"boom"}})}});
  Item item;
  ASSERT_TRUE(mime::decode_message(msg, item));
  ASSERT_EQ(item.problems.size(), 1U);
  EXPECT_NE(item.problems[0].find("attachment \"evil.pdf\" (MIME part 2, application/pdf)"), std::string::npos)
      << item.problems[0];
  bool body = false;
  for (const RawText &t : item.texts) {
    body = body || (t.role == Role::body && t.text.find("jane.roe@example.org") != std::string::npos);
  }
  EXPECT_TRUE(body);
}

std::string uuencode(const std::string &name, const std::string &data) {
  std::string out = "begin 644 " + name + "\n";
  const auto enc = [](unsigned v) { return static_cast<char>(v == 0 ? '`' : ' ' + v); };
  for (std::size_t i = 0; i < data.size(); i += 45) {
    const std::string chunk = data.substr(i, 45);
    out.push_back(enc(static_cast<unsigned>(chunk.size())));
    for (std::size_t j = 0; j < chunk.size(); j += 3) {
      std::array<unsigned, 3> b{};
      for (std::size_t k = 0; k < 3; ++k) {
        b[k] = j + k < chunk.size() ? static_cast<unsigned char>(chunk[j + k]) : 0U;
      }
      out.push_back(enc(b[0] >> 2));
      out.push_back(enc(((b[0] & 3U) << 4) | (b[1] >> 4)));
      out.push_back(enc(((b[1] & 15U) << 2) | (b[2] >> 6)));
      out.push_back(enc(b[2] & 63U));
    }
    out.push_back('\n');
  }
  return out + "`\nend\n";
}

TEST_F(AttachmentTextTest, UuencodedFileInABodyIsExtracted) {
  const std::string msg = "From: a@example.com\nTo: b@example.com\nSubject: scan\nMessage-ID: <uu@example.com>\n\n"
                          "Here is the scan.\n\n" +
                          uuencode("scan.pdf", make_pdf({{"Scanned letter of Jane Roe"}})) + "\nBye\n";
  Item item;
  ASSERT_TRUE(mime::decode_message(msg, item));
  bool found = false;
  for (const RawText &t : item.texts) {
    if (t.role == Role::attachment_body && t.field == "scan.pdf") {
      found = t.text.find("Scanned letter of Jane Roe") != std::string::npos;
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(item.attachment_hashes.size(), 1U);
}

TEST_F(AttachmentTextTest, OneLongLivedWorkerPerThreadAndACrashBlamesOnlyItsAttachment) {
  // The fault is armed from the start, so the worker that meets evil.pdf has served requests before.
  ::setenv("MAILDSAR_WORKER_TEST_FAULT", "crash:evil.pdf", 1);
  std::optional<int> pid;
  for (int i = 0; i < 5; ++i) {
    auto out = extract_attachments({pdf("warm" + std::to_string(i) + ".pdf", "Warm text " + std::to_string(i))});
    ASSERT_TRUE(out[0].problem.empty()) << out[0].problem;
    EXPECT_NE(out[0].text.find("Warm text " + std::to_string(i)), std::string::npos);
    if (i == 0) {
      pid = extract_worker_pid();
      ASSERT_TRUE(pid.has_value());
    }
    EXPECT_EQ(extract_worker_pid(), pid) << "one worker process answers every call of the thread";
  }
  auto out = extract_attachments({pdf("evil.pdf", "Evil text"), pdf("next.pdf", "Next text")});
  EXPECT_NE(out[0].problem.find("attachment \"evil.pdf\""), std::string::npos) << out[0].problem;
  EXPECT_NE(out[0].problem.find("crashed"), std::string::npos) << out[0].problem;
  EXPECT_TRUE(out[1].problem.empty()) << out[1].problem;
  EXPECT_NE(out[1].text.find("Next text"), std::string::npos);
  EXPECT_NE(extract_worker_pid(), pid) << "a fresh worker goes on after the crash";
  EXPECT_NE(::kill(*pid, 0), 0) << "the crashed worker was reaped";

  // A worker started by a thread ends, and is reaped, with the thread.
  std::optional<int> thread_pid;
  std::string thread_text;
  std::thread thread([&] {
    auto r = extract_attachments({pdf("thread.pdf", "Thread text")});
    thread_text = r[0].text;
    thread_pid = extract_worker_pid();
  });
  thread.join();
  EXPECT_NE(thread_text.find("Thread text"), std::string::npos);
  ASSERT_TRUE(thread_pid.has_value());
  EXPECT_NE(thread_pid, extract_worker_pid());
  EXPECT_NE(::kill(*thread_pid, 0), 0) << "no zombie left by the thread's worker";
}

TEST_F(AttachmentTextTest, WinmailDatGivesItsBodyAddressesAndAttachments) {
  const std::string tnef = make_tnef("Payslip", "Body of the Outlook message", "payroll@example.com", "Jane Roe",
                                     {{"payslip.pdf", make_pdf({{"Net pay of jane.roe@example.org"}})}});
  const std::string msg = test::make_message("a@example.com", "b@example.com", "Outlook", "tnef@example.com",
                                             "See attached.", {{"winmail.dat", "application/ms-tnef", tnef}});
  Item item;
  ASSERT_TRUE(mime::decode_message(msg, item));
  std::string text;
  for (const RawText &t : item.texts) {
    if (t.role == Role::attachment_body && t.field == "winmail.dat") {
      text += t.text;
    }
  }
  EXPECT_TRUE(item.problems.empty());
  EXPECT_NE(text.find("Body of the Outlook message"), std::string::npos) << text;
  EXPECT_NE(text.find("payroll@example.com"), std::string::npos) << text;
  EXPECT_NE(text.find("payslip.pdf"), std::string::npos) << text;
  EXPECT_NE(text.find("Net pay of jane.roe@example.org"), std::string::npos) << text;
}

TEST_F(AttachmentTextTest, MessageInAZipIsMimeDecoded) {
  // The body is base64 and the display name an encoded word: found only when the .eml is decoded.
  const std::string eml = "From: =?utf-8?q?J=C3=B6rg_Roe?= <jorg.roe@example.org>\r\n"
                          "To: clerk@example.com\r\nSubject: =?utf-8?b?VGF4IHJldHVybg==?=\r\n"
                          "Message-ID: <inner@example.org>\r\nMIME-Version: 1.0\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                          "UGxlYXNlIGNhbGwgK0MgUm9lIGF0IG9mZmljZQ==\r\n"; // "Please call +C Roe at office"
  const std::string zip = make_zip({{"mail/forwarded.eml", eml}, {"readme.txt", "see the mail"}});
  auto out = extract_attachments({Attachment{"mails.zip", "application/zip", "2", zip}});
  ASSERT_TRUE(out[0].problem.empty()) << out[0].problem;
  EXPECT_NE(out[0].text.find("jorg.roe@example.org"), std::string::npos) << out[0].text;
  EXPECT_NE(out[0].text.find("Jörg Roe"), std::string::npos) << out[0].text;
  EXPECT_NE(out[0].text.find("Tax return"), std::string::npos) << out[0].text;
  EXPECT_NE(out[0].text.find("Please call +C Roe at office"), std::string::npos) << out[0].text;
  EXPECT_NE(out[0].text.find("see the mail"), std::string::npos) << out[0].text;
  // Messages inside messages inside zips stay within the depth bound (extract limits).
  std::string nested = zip;
  for (int i = 0; i < 6; ++i) {
    nested = make_zip({{"level.zip", nested}});
  }
  auto deep = extract_attachments({Attachment{"deep.zip", "application/zip", "3", nested}});
  EXPECT_EQ(deep[0].text.find("jorg.roe@example.org"), std::string::npos);
  EXPECT_NE(deep[0].warnings.size(), 0U);
}

} // namespace
} // namespace maildsar::connectors
