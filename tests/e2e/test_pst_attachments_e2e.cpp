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

/** The hit of the message carrying Invitation.pdf, or null. */
json invitation_hit(const std::vector<json> &hits) {
  for (const json &hit : hits) {
    if (hit.value("subject", "") == k_subject_line) {
      return hit;
    }
  }
  return nullptr;
}

/** The decoded bytes of the base64 part named `name` in an exported .eml. */
std::string attachment_in_eml(const std::string &eml, const std::string &name) {
  const auto at = eml.find("filename=\"" + name + "\"");
  if (at == std::string::npos) {
    return {};
  }
  const auto body = eml.find("\r\n\r\n", at);
  const auto end = eml.find("\r\n--", body);
  static const std::string k_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (std::size_t i = body + 4; i < end; ++i) {
    const auto pos = k_alphabet.find(eml[i]);
    if (pos == std::string::npos) {
      continue; // line breaks, padding
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

  auto found = ds(e.config, {"find", "--subject", e.subject.string()});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  const json hit = invitation_hit(json_lines(found.out));
  ASSERT_FALSE(hit.is_null()) << "the PDF's text is not found: " << found.out;
  EXPECT_EQ(hit.at("store"), "pst");
  EXPECT_EQ(hit.at("path"), e.ost.string());
  ASSERT_EQ(hit.at("matched").size(), 1U) << hit.dump();
  const json &m = hit.at("matched")[0];
  EXPECT_EQ(m.at("identifier"), "sender@domain.com");
  EXPECT_EQ(strings(m.at("roles")), (std::set<std::string>{"attachment-body"})) << m.dump();
  EXPECT_EQ(strings(m.value("fields", json::array())), (std::set<std::string>{"Invitation.pdf"})) << m.dump();
  EXPECT_FALSE(hit.value("truncated", false)) << hit.dump();

  // Export: the message as .eml with the PDF, byte for byte what the OST holds (a PDF of one page).
  const fs::path package = dir.path() / "package";
  auto ex = ds(e.config, {"export", "--subject", e.subject.string(), "--out", package.string(), "--operator", "dpo"});
  ASSERT_EQ(ex.exit_code, 0) << ex.err << ex.out;
  bool exported = false;
  for (const auto &f : fs::recursive_directory_iterator(package / "items")) {
    if (!f.is_regular_file() || f.path().extension() != ".eml") {
      continue;
    }
    const std::string eml = read_file(f.path());
    if (eml.find(k_subject_line) == std::string::npos) {
      continue;
    }
    const std::string pdf = attachment_in_eml(eml, "Invitation.pdf");
    EXPECT_EQ(pdf.size(), 10642U) << f.path();
    EXPECT_TRUE(pdf.starts_with("%PDF-1.4")) << f.path();
    EXPECT_NE(eml.find("Content-Type: application/pdf"), std::string::npos);
    exported = true;
  }
  EXPECT_TRUE(exported) << "the message with the PDF is not in the package";

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
}

TEST_F(PstAttachmentsE2e, CrashingExtractorIsOneCountedProblemAndVerifyRefuses) {
  auto baseline = ds(e.config, {"index"});
  ASSERT_EQ(baseline.exit_code, 0) << baseline.err;
  const auto items = source_counts(json_lines(baseline.out).at(0), "legacy").at("items");

  // A fresh state: the cache would answer without the extractor.
  ScratchDir other;
  OstEstate f = make_estate(other.path());
  auto r = ds(f.config, {"index"}, {"MAILDSAR_WORKER_TEST_FAULT=crash:Invitation.pdf"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  json summary = json_lines(r.out).at(0);
  ASSERT_EQ(summary.at("errors"), 1) << summary.dump();
  const json &problem = summary.at("problems").at(0);
  EXPECT_EQ(problem.at("path"), f.ost.string()) << problem.dump();
  EXPECT_TRUE(problem.at("position").get<std::string>().starts_with("node 0x")) << problem.dump();
  const std::string cause = problem.at("cause");
  EXPECT_NE(cause.find("attachment \"Invitation.pdf\" (PST attachment 1, application/pdf)"), std::string::npos)
      << cause;
  EXPECT_NE(cause.find("crashed"), std::string::npos) << cause;
  EXPECT_EQ(source_counts(summary, "legacy").at("items"), items) << "every item is still indexed";
  EXPECT_EQ(summary.at("truncated"), 1) << summary.dump();

  // The message is found by its other parts, marked as indexed in part.
  auto admin = ds(f.config, {"find", "--email", "Administrator@ex2010.local", "--json"});
  ASSERT_EQ(admin.exit_code, 0) << admin.err;
  std::vector<json> partial;
  for (const json &hit : json_lines(admin.out)) {
    if (hit.value("truncated", false)) {
      partial.push_back(hit);
    }
  }
  ASSERT_EQ(partial.size(), 1U) << admin.out;
  EXPECT_EQ(partial[0].at("subject"), k_subject_line) << partial[0].dump();
  EXPECT_EQ(partial[0].at("path"), f.ost.string());

  // verify gives no certificate while the attachment is unread, naming the OST.
  auto v = ds(f.config, {"verify", "--subject", f.subject.string(), "--operator", "dpo-anna"});
  EXPECT_EQ(v.exit_code, 69) << v.out << v.err;
  json vj = json_lines(v.out).at(0);
  EXPECT_FALSE(vj.at("clean").get<bool>());
  ASSERT_FALSE(vj.at("unsearched").empty()) << vj.dump();
  EXPECT_EQ(vj.at("unsearched")[0].at("path"), f.ost.string()) << vj.dump();
}

} // namespace
} // namespace maildsar::test
