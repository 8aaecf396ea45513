// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: attachment text (issue 11 class 5). A PDF and a DOCX naming the subject are found
// by `find` (role attachment-body, the attachment's name in `fields`), packaged by `export`,
// removed by `erase` and checked by `verify`, and the attachment-text cache keeps nothing of
// them afterwards. TNEF (winmail.dat) and a message inside a zip are found too. A crashing extractor is one counted problem; the message is still indexed.
#include "tests/doc_fixtures.hpp"
#include "tests/e2e/e2e_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct AttachmentEstate {
  fs::path config;
  fs::path subject;
  fs::path maildir;
};

std::string payslip() { return make_pdf({{"Payslip November 2023", "Employee: Zelda Quimby", "zelda.quimby@example.org"}}); }
std::string note() { return make_docx({"Meeting notes: Zelda Quimby will call back on +44 20 7946 0321."}); }

AttachmentEstate make_estate(const fs::path &root, const std::string &limits = "{}") {
  AttachmentEstate e;
  e.maildir = root / "Maildir";
  for (const char *sub : {"cur", "new", "tmp"}) {
    fs::create_directories(e.maildir / sub);
  }
  // 1: the subject only in the attachments; 2: the payslip forwarded (same bytes); 3: unrelated.
  write_file(e.maildir / "cur/1700000001.1.host:2,S",
             make_message("payroll@example.com", "boss@example.com", "Documents", "m1@example.com",
                          "Please file the attached.",
                          {{"payslip.pdf", "application/pdf", payslip()},
                           {"note.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                            note()}}));
  write_file(e.maildir / "cur/1700000002.1.host:2,S",
             make_message("boss@example.com", "audit@example.com", "Fwd: Documents", "m2@example.com", "FYI",
                          {{"payslip.pdf", "application/pdf", payslip()}}));
  write_file(e.maildir / "cur/1700000003.1.host:2,S",
             make_message("boss@example.com", "audit@example.com", "Budget", "m3@example.com", "Numbers.",
                          {{"budget.pdf", "application/pdf", make_pdf({{"Budget 2024: Carlo Other"}})}}));
  e.config = root / "maildsar.json";
  write_file(e.config, R"({"state_dir": "state",
    "sources": [{"name": "mail", "type": "maildir", "path": "Maildir"}],
    "identity": {"phone_region": "GB"},
    "access": {"controller": "Example Ltd", "contact": "dpo@example.com", "purposes": ["mail"],
               "categories": ["messages"], "recipients": ["none"], "source_of_data": "mail",
               "retention": {"mail": "6 years"}, "supervisory_authority": "ICO"},
    "limits": )" + limits + "}\n");
  e.subject = root / "subject.json";
  write_file(e.subject, R"({"request": "DSAR-7", "emails": ["zelda.quimby@example.org"], "names": ["Zelda Quimby"],
    "phones": ["+44 20 7946 0321"]})");
  return e;
}

std::set<std::string> strings(const json &array) {
  std::set<std::string> out;
  for (const json &v : array) {
    out.insert(v.get<std::string>());
  }
  return out;
}

bool state_holds(const fs::path &state, const std::string &needle) {
  for (auto it = fs::recursive_directory_iterator(state); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file()) {
      continue;
    }
    std::string bytes = read_file(it->path());
    std::transform(bytes.begin(), bytes.end(), bytes.begin(), [](unsigned char c) { return std::tolower(c); });
    if (bytes.find(needle) != std::string::npos) {
      ADD_FAILURE() << it->path() << " holds " << needle;
      return true;
    }
  }
  return false;
}

TEST(AttachmentsE2E, PdfAndDocxAreFoundExportedErasedAndVerified) {
  ScratchDir dir;
  AttachmentEstate e = make_estate(dir.path());
  json summary = index_json(e.config);
  EXPECT_EQ(summary.at("errors"), 0) << summary.dump();
  EXPECT_TRUE(fs::exists(dir.path() / "state/attachments.sqlite3"));
  EXPECT_EQ(fs::status(dir.path() / "state/attachments.sqlite3").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  auto found = ds(e.config, {"find", "--subject", e.subject.string()});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  auto hits = json_lines(found.out);
  ASSERT_EQ(hits.size(), 2U) << found.out;
  for (const json &hit : hits) {
    const bool first = hit.at("message_id") == "m1@example.com";
    for (const json &m : hit.at("matched")) {
      EXPECT_EQ(strings(m.at("roles")), (std::set<std::string>{"attachment-body"})) << m.dump();
      const std::string id = m.at("identifier");
      std::set<std::string> want;
      if (id == "zelda.quimby@example.org") {
        want = {"payslip.pdf"};
      } else if (id == "Zelda Quimby") {
        want = first ? std::set<std::string>{"payslip.pdf", "note.docx"} : std::set<std::string>{"payslip.pdf"};
      } else {
        want = {"note.docx"}; // the phone number
      }
      EXPECT_EQ(strings(m.value("fields", json::array())), want) << hit.dump();
    }
    EXPECT_EQ(hit.at("matched").size(), first ? 3U : 2U) << hit.dump();
  }

  auto out = dir.path() / "package";
  auto ex = ds(e.config, {"export", "--subject", e.subject.string(), "--out", out.string(), "--operator", "dpo"});
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  EXPECT_EQ(json_lines(ex.out).at(0).at("items"), 2);

  fs::create_directories(dir.path() / "out");
  const fs::path manifest = dir.path() / "out/manifest.json";
  auto plan = ds(e.config, {"plan", "--subject", e.subject.string(), "--out", manifest.string(), "--operator", "dpo-anna"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err << plan.out;
  ASSERT_EQ(ds(e.config, {"approve", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  auto er = ds(e.config, {"erase", manifest.string(), "--operator", "ops-cleo"});
  ASSERT_EQ(er.exit_code, 0) << er.err << er.out;
  EXPECT_FALSE(fs::exists(e.maildir / "cur/1700000001.1.host:2,S"));
  EXPECT_FALSE(fs::exists(e.maildir / "cur/1700000002.1.host:2,S"));
  EXPECT_TRUE(fs::exists(e.maildir / "cur/1700000003.1.host:2,S"));

  auto after = ds(e.config, {"find", "--subject", e.subject.string()});
  EXPECT_EQ(after.exit_code, 0);
  EXPECT_TRUE(json_lines(after.out).empty()) << after.out;
  auto v = ds(e.config, {"verify", "--subject", e.subject.string(), "--operator", "dpo-anna"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_TRUE(json_lines(v.out).at(0).at("clean").get<bool>()) << v.out;
  // Nothing of the subject in the state directory, the attachment-text cache included; the
  // unrelated attachment's text is still cached.
  EXPECT_FALSE(state_holds(dir.path() / "state", "quimby"));
  EXPECT_NE(read_file(dir.path() / "state/attachments.sqlite3").find("Carlo Other"), std::string::npos);
}

TEST(AttachmentsE2E, CrashingExtractorIsOneCountedProblemAndTheMessageIsIndexed) {
  ScratchDir dir;
  AttachmentEstate e = make_estate(dir.path(), R"({"extract_cpu_seconds": 5})");
  auto r = ds(e.config, {"index"}, {"MAILDSAR_WORKER_TEST_FAULT=crash:budget.pdf"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  json summary = json_lines(r.out).at(0);
  EXPECT_EQ(summary.at("errors"), 1) << summary.dump();
  const json &problem = summary.at("problems").at(0);
  EXPECT_NE(problem.at("path").get<std::string>().find("1700000003"), std::string::npos) << problem.dump();
  const std::string cause = problem.at("cause");
  EXPECT_NE(cause.find("attachment \"budget.pdf\" (MIME part 2, application/pdf)"), std::string::npos) << cause;
  EXPECT_NE(cause.find("crashed"), std::string::npos) << cause;
  EXPECT_EQ(source_counts(summary, "mail").at("items"), 3) << "the message is still indexed";
  // Its other parts are searchable: the sender's address.
  write_file(dir.path() / "boss.json", R"({"emails": ["boss@example.com"]})");
  auto found = ds(e.config, {"find", "--subject", (dir.path() / "boss.json").string()});
  EXPECT_EQ(json_lines(found.out).size(), 3U) << found.out;
}

TEST(AttachmentsE2E, HangingExtractorIsStoppedByTheConfiguredCpuLimit) {
  ScratchDir dir;
  AttachmentEstate e = make_estate(dir.path(), R"({"extract_cpu_seconds": 1})");
  auto r = ds(e.config, {"index"}, {"MAILDSAR_WORKER_TEST_FAULT=spin:note.docx"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  json summary = json_lines(r.out).at(0);
  ASSERT_EQ(summary.at("errors"), 1) << summary.dump();
  const std::string cause = summary.at("problems").at(0).at("cause");
  EXPECT_NE(cause.find("attachment \"note.docx\""), std::string::npos) << cause;
  EXPECT_NE(cause.find("exceeded the CPU-time limit of 1 s"), std::string::npos) << cause;
  // The PDF of the same message was extracted: the subject is still found in it.
  auto found = ds(e.config, {"find", "--subject", e.subject.string()});
  EXPECT_EQ(json_lines(found.out).size(), 2U) << found.out;
}

TEST(AttachmentsE2E, ExtractionCanBeTurnedOffAndLimitsAreChecked) {
  ScratchDir dir;
  AttachmentEstate e = make_estate(dir.path(), R"({"extract_attachments": 0})");
  index_json(e.config);
  auto found = ds(e.config, {"find", "--subject", e.subject.string()});
  EXPECT_TRUE(json_lines(found.out).empty()) << found.out;
  ScratchDir bad;
  AttachmentEstate b = make_estate(bad.path(), R"({"extract_max_text_mib": 100})");
  auto r = ds(b.config, {"index"});
  EXPECT_EQ(r.exit_code, 78) << r.err;
  EXPECT_NE(r.err.find("limits.extract_max_text_mib must be a whole number from 1 to 16"), std::string::npos) << r.err;
}

TEST(AttachmentsE2E, WinmailDatAndAMessageInAZipAreFound) {
  ScratchDir dir;
  const fs::path maildir = dir.path() / "Maildir";
  for (const char *sub : {"cur", "new", "tmp"}) {
    fs::create_directories(maildir / sub);
  }
  // 1: an Outlook message whose only trace of the subject is a PDF inside winmail.dat;
  // 2: a zip holding a forwarded .eml whose sender is the subject (encoded word, base64 body).
  const std::string tnef = make_tnef("Contract", "See the contract.", "legal@example.com", "Legal",
                                     {{"contract.pdf", make_pdf({{"Contract of vera.tnef@example.org"}})}});
  write_file(maildir / "cur/1700000011.1.host:2,S",
             make_message("legal@example.com", "boss@example.com", "Outlook", "t1@example.com", "Attached.",
                          {{"winmail.dat", "application/ms-tnef", tnef}}));
  const std::string eml = "From: =?utf-8?q?Vera_T=C3=B6rn?= <vera.tnef@example.org>\r\nTo: hr@example.com\r\n"
                          "Subject: Leave\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                          "Content-Transfer-Encoding: base64\r\n\r\nSSB3aWxsIGJlIGF3YXku\r\n";
  write_file(maildir / "cur/1700000012.1.host:2,S",
             make_message("hr@example.com", "boss@example.com", "Archive", "t2@example.com", "Old mails.",
                          {{"mails.zip", "application/zip", make_zip({{"2019/leave.eml", eml}})}}));
  write_file(maildir / "cur/1700000013.1.host:2,S",
             make_message("hr@example.com", "boss@example.com", "Other", "t3@example.com", "Nothing.",
                          {{"winmail.dat", "application/ms-tnef",
                            make_tnef("Other", "Other body", "x@example.com", "X", {})}}));
  const fs::path config = dir.path() / "maildsar.json";
  write_file(config, R"({"state_dir": "state", "sources": [{"name": "mail", "type": "maildir", "path": "Maildir"}]})");
  json summary = index_json(config);
  EXPECT_EQ(summary.at("errors"), 0) << summary.dump();
  auto found = ds(config, {"find", "--email", "vera.tnef@example.org"});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  auto hits = json_lines(found.out);
  ASSERT_EQ(hits.size(), 2U) << found.out;
  std::set<std::string> fields;
  for (const json &hit : hits) {
    for (const json &m : hit.at("matched")) {
      EXPECT_EQ(strings(m.at("roles")), (std::set<std::string>{"attachment-body"})) << m.dump();
      for (const std::string &f : strings(m.value("fields", json::array()))) {
        fields.insert(f);
      }
    }
  }
  EXPECT_EQ(fields, (std::set<std::string>{"winmail.dat", "mails.zip"}));
  // The display name inside the zipped message, decoded from its encoded word.
  auto by_name = ds(config, {"find", "--name", "Vera Törn"});
  EXPECT_EQ(json_lines(by_name.out).size(), 1U) << by_name.out;
}

// Erasure by redaction (issue 18 item 3): the subject is only in the attachments of two
// messages that stay (policy "redact"): each loses the attachments that name her, replaced by a
// note, and keeps everything else; the unrelated message is untouched; verify certifies.
TEST(AttachmentsE2E, RedactedMessagesLoseOnlyTheAttachmentsThatNameTheSubject) {
  ScratchDir dir;
  AttachmentEstate e = make_estate(dir.path());
  ASSERT_EQ(ds(e.config, {"index"}).exit_code, 0);
  const std::string unrelated = read_file(e.maildir / "cur/1700000003.1.host:2,S");
  write_file(dir.path() / "policy.json", R"({"messages": {"default": "redact"}})");
  const fs::path manifest = dir.path() / "m.json";
  auto planned = ds(e.config, {"plan", "--subject", e.subject.string(), "--out", manifest.string(), "--policy",
                               (dir.path() / "policy.json").string(), "--operator", "dpo"});
  ASSERT_EQ(planned.exit_code, 0) << planned.err;
  const json m = json::parse(read_file(manifest));
  ASSERT_EQ(m.at("items").size(), 2U) << m.dump(1);
  for (const json &item : m.at("items")) {
    EXPECT_EQ(item.at("action"), "redact") << item.dump();
    const std::set<std::string> changes = strings(item.at("changes"));
    EXPECT_TRUE(changes.contains("attachment withheld (application/pdf)")) << item.dump();
  }
  ASSERT_EQ(ds(e.config, {"approve", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  auto erased = ds(e.config, {"erase", manifest.string(), "--operator", "admin-ben"});
  ASSERT_EQ(erased.exit_code, 0) << erased.err << erased.out;
  EXPECT_EQ(read_file(e.maildir / "cur/1700000003.1.host:2,S"), unrelated);
  std::size_t rewritten = 0;
  for (const auto &f : fs::directory_iterator(e.maildir / "cur")) {
    const std::string name = f.path().filename().string();
    if (name.find(".maildsar:2,S") == std::string::npos) {
      continue;
    }
    ++rewritten;
    const std::string bytes = read_file(f.path());
    EXPECT_NE(bytes.find("An attachment was removed from this copy."), std::string::npos) << name;
    EXPECT_NE(bytes.find("payslip.pdf (application/pdf"), std::string::npos) << name;
    EXPECT_EQ(bytes.find("JVBERi0"), std::string::npos) << name << ": the PDF's base64 is gone";
  }
  EXPECT_EQ(rewritten, 2U);
  for (const auto &f : fs::directory_iterator(e.maildir / "cur")) {
    if (f.path().filename().string().starts_with("1700000001.")) {
      EXPECT_NE(read_file(f.path()).find("Please file the attached."), std::string::npos) << "the rest stays";
    }
  }
  auto verified = ds(e.config, {"verify", "--subject", e.subject.string(), "--operator", "admin-ben"});
  EXPECT_EQ(verified.exit_code, 0) << verified.err << verified.out;
  EXPECT_FALSE(state_holds(dir.path() / "state", "zelda"));
}

} // namespace
} // namespace maildsar::test
