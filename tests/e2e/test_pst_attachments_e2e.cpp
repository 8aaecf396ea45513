// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: attachments inside PST/OST messages (issue 11 class 5, the PST part). A PDF attached
// to an OST message is extracted through the extract worker and its cache: `find` lists the message
// with role attachment-body and the PDF's name in `fields`, `export` packages the message with the
// PDF, `plan --pst convert` -> `approve` -> `erase` removes it and `verify` certifies. A crashing
// extractor is one counted problem naming the file, the message and the attachment; the message is
// still indexed and `verify` refuses while its attachment is unread.
//
// Test data: pst/aspose/SampleOstFile.ost of the shared corpus (aspose-email/Aspose.Email-for-.NET,
// Examples/Data/Outlook/SampleOstFile.ost @ 21cb169ac0f418fa6c473e90a3aae89341dc5f68, MIT;
// synthetic mail of an Exchange test domain), copied into a scratch estate; skipped without it.
#include "tests/e2e/e2e_support.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char *k_subject_line = "05 - test email - single meeting request";

struct OstEstate {
  fs::path config;
  fs::path ost;
  fs::path subject;
  fs::path archive;
};

/** The OST as the only PST source, with an mbox source and pst_convert set up for erasure. */
OstEstate make_estate(const fs::path &root) {
  OstEstate e;
  e.ost = root / "pst/SampleOstFile.ost";
  fs::create_directories(e.ost.parent_path());
  fs::copy_file(corpus_dir() / "pst/aspose/SampleOstFile.ost", e.ost);
  fs::permissions(e.ost, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
  e.archive = root / "archive";
  fs::create_directories(e.archive);
  e.config = root / "maildsar.json";
  write_file(e.config, R"({"state_dir": "state",
    "sources": [{"name": "legacy", "type": "pst", "path": "pst/*.ost"},
                {"name": "converted", "type": "mbox", "path": "archive/*.mbox"}],
    "erasure": {"pst_convert": {"mbox_dir": "archive", "originals_dir": "dsar/pst-originals"}},
    "access": {"controller": "Example Ltd", "contact": "dpo@example.com", "purposes": ["mail"],
               "categories": ["messages"], "recipients": ["none"], "source_of_data": "mail",
               "retention": {"legacy": "6 years"}, "supervisory_authority": "ICO"}}
)");
  // The address is in the PDF's text ("Regards, Sender Name, sender@domain.com").
  e.subject = root / "subject.json";
  write_file(e.subject, R"({"request": "DSAR-PST-1", "emails": ["sender@domain.com"]})");
  return e;
}

std::set<std::string> strings(const json &array) {
  std::set<std::string> out;
  for (const json &v : array) {
    out.insert(v.get<std::string>());
  }
  return out;
}

/** Base64 to bytes (characters outside the alphabet, line breaks and padding, are skipped). */
std::string unbase64(std::string_view text) {
  static const std::string k_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (char c : text) {
    const auto pos = k_alphabet.find(c);
    if (pos == std::string::npos) {
      continue;
    }
    bits = (bits << 6U) | static_cast<unsigned>(pos);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> static_cast<unsigned>(count)) & 0xFFU));
    }
  }
  return out;
}

/** The decoded bytes of the base64 part named `name` in an exported .eml ("" when absent). */
std::string attachment_in_eml(const std::string &eml, const std::string &name) {
  const auto at = eml.find("filename=\"" + name + "\"");
  if (at == std::string::npos) {
    return {};
  }
  const auto body = eml.find("\r\n\r\n", at);
  const auto end = eml.find("\r\n--", body);
  return body == std::string::npos ? std::string() : unbase64(std::string_view(eml).substr(body, end - body));
}

/** The decoded ATTACH value named `name` in an exported .ics ("" when absent). */
std::string attachment_in_ics(std::string ics, const std::string &name) {
  for (auto fold = ics.find("\r\n "); fold != std::string::npos; fold = ics.find("\r\n ", fold)) {
    ics.erase(fold, 3); // unfold (RFC 5545 3.1)
  }
  const std::string key = "X-FILENAME=\"" + name + "\":";
  const auto at = ics.find(key);
  if (at == std::string::npos || !ics.substr(ics.rfind("\r\n", at) + 2).starts_with("ATTACH;")) {
    return {};
  }
  const auto start = at + key.size();
  return unbase64(std::string_view(ics).substr(start, ics.find("\r\n", start) - start));
}

class PstAttachmentsE2e : public ::testing::Test {
protected:
  void SetUp() override {
    if (corpus_dir().empty() || !fs::exists(corpus_dir() / "pst/aspose/SampleOstFile.ost")) {
      GTEST_SKIP() << "corpus pst/aspose/SampleOstFile.ost not found (set MAILDSAR_CORPUS)";
    }
    e = make_estate(dir.path());
  }
  ScratchDir dir;
  OstEstate e;
};

TEST_F(PstAttachmentsE2e, PdfInAnOstMessageIsFoundExportedErasedAndVerified) {
  json summary = index_json(e.config);
  EXPECT_EQ(summary.at("errors"), 0) << summary.dump();
  EXPECT_EQ(summary.value("truncated", 0), 0) << summary.dump();

  // The meeting request carries the PDF in Inbox and in Deleted Items (twice), and so does its
  // calendar item: four items, each found only through the PDF's text.
  auto found = ds(e.config, {"find", "--subject", e.subject.string()});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  const auto hits = json_lines(found.out);
  ASSERT_EQ(hits.size(), 4U) << found.out;
  std::set<std::string> folders;
  for (const json &hit : hits) {
    EXPECT_EQ(hit.at("subject"), k_subject_line) << hit.dump();
    EXPECT_EQ(hit.at("store"), "pst");
    EXPECT_EQ(hit.at("path"), e.ost.string());
    folders.insert(hit.at("folder").get<std::string>());
    ASSERT_EQ(hit.at("matched").size(), 1U) << hit.dump();
    const json &m = hit.at("matched")[0];
    EXPECT_EQ(m.at("identifier"), "sender@domain.com");
    EXPECT_EQ(strings(m.at("roles")), (std::set<std::string>{"attachment-body"})) << m.dump();
    EXPECT_EQ(strings(m.value("fields", json::array())), (std::set<std::string>{"Invitation.pdf"})) << m.dump();
    EXPECT_FALSE(hit.contains("truncated")) << hit.dump();
  }
  EXPECT_EQ(folders, (std::set<std::string>{"IPM_SUBTREE/Inbox", "IPM_SUBTREE/Deleted Items", "IPM_SUBTREE/Calendar"}));

  // Export: each message as .eml with the PDF, byte for byte what the OST holds (a PDF of one page).
  const fs::path package = dir.path() / "package";
  auto ex = ds(e.config, {"export", "--subject", e.subject.string(), "--out", package.string(), "--operator", "dpo"});
  ASSERT_EQ(ex.exit_code, 0) << ex.err << ex.out;
  // The messages come as .eml (the PDF a base64 part), the calendar item and the meeting request
  // libpst reads as one as .ics (the PDF an inline ATTACH): byte for byte what the OST holds.
  std::size_t exported = 0;
  std::size_t ics = 0;
  for (const auto &f : fs::recursive_directory_iterator(package / "items")) {
    if (!f.is_regular_file()) {
      continue;
    }
    const std::string text = read_file(f.path());
    std::string pdf;
    if (f.path().extension() == ".eml") {
      pdf = attachment_in_eml(text, "Invitation.pdf");
      // The OST stores no MIME type for it: the export names one by the file name.
      EXPECT_NE(text.find("Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"Invitation.pdf\""),
                std::string::npos) << f.path();
    } else if (f.path().extension() == ".ics") {
      pdf = attachment_in_ics(text, "Invitation.pdf");
      ++ics;
    }
    EXPECT_EQ(pdf.size(), 10642U) << f.path();
    EXPECT_TRUE(pdf.starts_with("%PDF-1.4")) << f.path();
    EXPECT_NE(pdf.find("%%EOF"), std::string::npos) << f.path();
    ++exported;
  }
  EXPECT_EQ(exported, hits.size()) << "every item with the PDF is in the package, with the PDF";
  EXPECT_GE(ics, 1U);

  // Erasure: PST items are converted away (plan --pst convert), then verify certifies.
  fs::create_directories(dir.path() / "out");
  const fs::path manifest = dir.path() / "out/manifest.json";
  auto plan = ds(e.config, {"plan", "--subject", e.subject.string(), "--out", manifest.string(), "--pst", "convert",
                            "--operator", "dpo-anna"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err << plan.out;
  ASSERT_EQ(ds(e.config, {"approve", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  auto er = ds(e.config, {"erase", manifest.string(), "--operator", "ops-cleo"});
  ASSERT_EQ(er.exit_code, 0) << er.err << er.out;
  EXPECT_FALSE(fs::exists(e.ost)) << "the OST leaves the store";
  EXPECT_TRUE(fs::exists(e.archive / "SampleOstFile.mbox"));

  auto after = ds(e.config, {"find", "--subject", e.subject.string()});
  EXPECT_EQ(after.exit_code, 0) << after.err;
  EXPECT_TRUE(json_lines(after.out).empty()) << after.out;
  // The OST's other messages are in the archive, and so are their attachments' texts.
  auto admin = ds(e.config, {"find", "--email", "Administrator@ex2010.local"});
  EXPECT_FALSE(json_lines(admin.out).empty()) << admin.out;
  auto v = ds(e.config, {"verify", "--subject", e.subject.string(), "--operator", "dpo-anna"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_TRUE(json_lines(v.out).at(0).at("clean").get<bool>()) << v.out;

  // The attachment-text cache no longer holds the PDF's text; it keeps the text of a DOCX that a
  // kept item (a delivery report, now in the archive with its attachments) carries.
  const std::string cache = read_file(dir.path() / "state/attachments.sqlite3");
  EXPECT_EQ(cache.find("sender@domain.com"), std::string::npos);
  EXPECT_EQ(cache.find("Developers Conference"), std::string::npos);
  EXPECT_NE(cache.find("Partially Passed"), std::string::npos);
  write_file(dir.path() / "kept.json", R"({"names": ["Partially Passed"]})");
  auto kept = ds(e.config, {"find", "--subject", (dir.path() / "kept.json").string()});
  const auto kept_hits = json_lines(kept.out);
  ASSERT_EQ(kept_hits.size(), 1U) << kept.out;
  EXPECT_EQ(kept_hits[0].at("store"), "mbox") << kept_hits[0].dump();
  EXPECT_EQ(strings(kept_hits[0].at("matched")[0].at("roles")), (std::set<std::string>{"attachment-body"}));
}

TEST_F(PstAttachmentsE2e, CrashingExtractorIsOneCountedProblemAndVerifyRefuses) {
  // A fresh state each: the cache would answer without the extractor.
  auto r = ds(e.config, {"index"}, {"MAILDSAR_WORKER_TEST_FAULT=crash:Invitation.pdf"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  json summary = json_lines(r.out).at(0);
  // One problem per message carrying the PDF (four; the failure is cached, not redone), each naming
  // the OST, the message's node and the attachment.
  ASSERT_EQ(summary.at("errors"), 4) << summary.dump();
  std::set<std::string> nodes;
  for (const json &problem : summary.at("problems")) {
    EXPECT_EQ(problem.at("path"), e.ost.string()) << problem.dump();
    nodes.insert(problem.at("position").get<std::string>());
    EXPECT_TRUE(problem.at("position").get<std::string>().starts_with("node 0x")) << problem.dump();
    const std::string cause = problem.at("cause");
    EXPECT_TRUE(cause.starts_with("attachment \"Invitation.pdf\" (PST attachment 1, ")) << cause;
    EXPECT_NE(cause.find("crashed"), std::string::npos) << cause;
  }
  EXPECT_EQ(nodes.size(), 4U);
  EXPECT_EQ(summary.at("truncated"), 4) << summary.dump();

  ScratchDir other;
  OstEstate f = make_estate(other.path());
  json clean = index_json(f.config);
  EXPECT_EQ(source_counts(summary, "legacy").at("items"), source_counts(clean, "legacy").at("items"))
      << "every item is still indexed";

  // The messages are found by their other parts, marked as indexed in part.
  write_file(dir.path() / "saqib.json", R"({"names": ["Saqib Razzaq"]})");
  auto saqib = ds(e.config, {"find", "--subject", (dir.path() / "saqib.json").string()});
  ASSERT_EQ(saqib.exit_code, 0) << saqib.err;
  std::size_t partial = 0;
  for (const json &hit : json_lines(saqib.out)) {
    if (hit.contains("truncated")) {
      ++partial;
      EXPECT_EQ(hit.at("subject"), k_subject_line) << hit.dump();
      const std::string note = hit.at("truncated").at(0);
      EXPECT_TRUE(note.starts_with("attachment \"Invitation.pdf\" (PST attachment 1, ")) << note;
    }
  }
  EXPECT_EQ(partial, 4U) << saqib.out;

  // verify gives no certificate while the attachment is unread, naming the OST.
  auto v = ds(e.config, {"verify", "--subject", e.subject.string(), "--operator", "dpo-anna"});
  EXPECT_EQ(v.exit_code, 69) << v.out << v.err;
  json vj = json_lines(v.out).at(0);
  EXPECT_FALSE(vj.at("clean").get<bool>());
  EXPECT_EQ(vj.at("certificate"), "");
  ASSERT_FALSE(vj.at("unsearched").empty()) << vj.dump();
  for (const json &u : vj.at("unsearched")) {
    EXPECT_EQ(u.at("path"), e.ost.string()) << vj.dump();
  }
}

} // namespace
} // namespace maildsar::test
