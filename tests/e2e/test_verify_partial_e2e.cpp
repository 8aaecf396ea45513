// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end (issue 13 item 12, the erasure side): an item indexed only in part (cut at
// limits.max_item_mib) may name the subject in the part that was not read, so `verify` gives no
// certificate while such an item remains (exit 69, the item named, what to do) — until the limit
// is raised and the estate re-indexed — but items a hold or exemption retains still certify as
// before. A file the last `index` could not read stops the certificate the same way. `index`
// counts the items indexed in part and `find` marks their hits (never silent).
#include "tests/doc_fixtures.hpp"
#include "tests/e2e/e2e_support.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char *k_alice = "alice.smith@example.com";

/** A small message from `from` to `to`. */
std::string small_message(const std::string &from, const std::string &to, const std::string &id) {
  return fmt::format("From: {}\r\nTo: {}\r\nSubject: note\r\nMessage-ID: <{}@example.org>\r\n"
                     "Date: Tue, 14 Nov 2023 10:00:00 +0000\r\n\r\nhello\r\n",
                     from, to, id);
}

/** A message of about 2 MiB whose only mention of `late` comes after the first 1.5 MiB. */
void write_big_message(const fs::path &path, const std::string &from, const std::string &id,
                       const std::string &late) {
  std::ofstream f(path, std::ios::binary);
  f << fmt::format("From: {}\r\nTo: carol@example.com\r\nSubject: big report\r\nMessage-ID: "
                   "<{}@example.org>\r\nDate: Tue, 14 Nov 2023 11:00:00 +0000\r\n\r\n",
                   from, id);
  const std::string line = std::string(78, 'x') + "\r\n";
  for (int i = 0; i < 20000; ++i) { // 1.6 MB
    f << line;
  }
  if (!late.empty()) {
    f << "Please forward this to " << late << " tomorrow.\r\n";
  }
  for (int i = 0; i < 5000; ++i) {
    f << line;
  }
}

void make_maildir(const fs::path &dir) {
  for (const char *sub : {"cur", "new", "tmp"}) {
    fs::create_directories(dir / sub);
  }
}

/** The config: a "mail" Maildir, an "archive" Maildir, `extra` (JSON members) and the limit. */
void write_config(const fs::path &cfg, int max_item_mib, const std::string &extra = "") {
  write_file(cfg, fmt::format(R"({{"state_dir": "state", "sources": [
    {{"name": "mail", "type": "maildir", "path": "mail"}},
    {{"name": "archive", "type": "maildir", "path": "archive"}}],
    "limits": {{"max_item_mib": {}}}{}}})",
                              max_item_mib, extra.empty() ? "" : ", " + extra));
}

/** plan -> approve -> erase for Alice; returns the erase result. */
RunResult erase_alice(const fs::path &cfg, const fs::path &manifest) {
  auto p = ds(cfg, {"plan", "--email", k_alice, "--out", manifest.string(), "--operator", "dpo-anna"});
  EXPECT_EQ(p.exit_code, 0) << p.err << p.out;
  auto a = ds(cfg, {"approve", manifest.string(), "--operator", "admin-ben"});
  EXPECT_EQ(a.exit_code, 0) << a.err << a.out;
  return ds(cfg, {"erase", manifest.string(), "--operator", "ops-cleo"});
}

std::size_t certificate_files(const fs::path &state) {
  std::size_t n = 0;
  if (fs::exists(state / "certificates")) {
    for ([[maybe_unused]] const auto &e : fs::directory_iterator(state / "certificates")) {
      ++n;
    }
  }
  return n;
}

class VerifyPartial : public ::testing::Test {
protected:
  void SetUp() override {
    make_maildir(dir / "mail");
    make_maildir(dir / "archive");
    write_file(dir / "mail/cur/1.M1P1.mx:2,S", small_message(k_alice, "bob@example.org", "small"));
    big = dir / "mail/cur/2.M2P1.mx:2,S";
    write_big_message(big, "Bob Sender <bob@example.org>", "big", k_alice);
    cfg = dir / "maildsar.json";
  }
  ScratchDir dir;
  fs::path cfg;
  fs::path big;
};

// A message cut at max_item_mib names Alice only after the cut: find cannot see her there, so
// verify refuses (exit 69, the file named, what to do) and writes no certificate. After raising
// the limit and `index --full`, find sees her, a second erasure removes it, verify certifies.
TEST_F(VerifyPartial, TruncatedItemStopsTheCertificateUntilReindexedWhole) {
  write_config(cfg, 1);
  json summary = index_json(cfg);
  EXPECT_EQ(summary.at("truncated"), 1) << summary.dump();
  EXPECT_EQ(source_counts(summary, "mail").at("truncated"), 1) << summary.dump();
  EXPECT_GE(summary.at("warnings").get<int>(), 1);

  auto found = ds(cfg, {"find", "--email", k_alice});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  ASSERT_EQ(json_lines(found.out).size(), 1U) << found.out; // the small message only
  EXPECT_NE(found.err.find("1 item(s) indexed only in part"), std::string::npos) << found.err;

  ASSERT_EQ(erase_alice(cfg, dir / "m1.json").exit_code, 0);
  EXPECT_FALSE(fs::exists(dir / "mail/cur/1.M1P1.mx:2,S"));
  EXPECT_TRUE(fs::exists(big));

  auto v = ds(cfg, {"verify", "--email", k_alice, "--operator", "dpo-anna"});
  EXPECT_EQ(v.exit_code, 69) << v.out << v.err;
  json vj = json_lines(v.out).at(0);
  EXPECT_FALSE(vj.at("clean").get<bool>());
  EXPECT_TRUE(vj.at("remaining").empty()) << vj.dump();
  ASSERT_EQ(vj.at("unsearched").size(), 1U) << vj.dump();
  EXPECT_EQ(vj.at("unsearched")[0].at("path"), big.string());
  const std::string detail = vj.at("unsearched")[0].at("detail");
  EXPECT_NE(detail.find("max_item_mib"), std::string::npos) << detail;
  EXPECT_NE(detail.find("index --full"), std::string::npos) << detail;
  EXPECT_EQ(vj.at("certificate"), "");
  EXPECT_NE(v.err.find("no certificate"), std::string::npos) << v.err;
  EXPECT_EQ(certificate_files(dir / "state"), 0U);
  // The human output names the item too, with the same exit status.
  auto human = maildsar_run({"-c", cfg.string(), "verify", "--email", k_alice});
  EXPECT_EQ(human.exit_code, 69) << human.out << human.err;
  EXPECT_NE(human.out.find("UNSEARCHED"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find(big.string()), std::string::npos) << human.out;
  EXPECT_EQ(human.out.find("nothing of the subject remains"), std::string::npos) << human.out;

  // Raise the limit and re-index: the whole message is read, and Alice is found in it.
  write_config(cfg, 8);
  summary = index_json(cfg, {"--full"});
  EXPECT_EQ(summary.at("truncated"), 0) << summary.dump();
  found = ds(cfg, {"find", "--email", k_alice});
  auto hits = json_lines(found.out);
  ASSERT_EQ(hits.size(), 1U) << found.out;
  EXPECT_EQ(hits[0].at("path"), big.string());
  EXPECT_FALSE(hits[0].contains("truncated"));
  EXPECT_EQ(found.err.find("indexed only in part"), std::string::npos) << found.err;

  ASSERT_EQ(erase_alice(cfg, dir / "m2.json").exit_code, 0);
  EXPECT_FALSE(fs::exists(big));
  v = ds(cfg, {"verify", "--email", k_alice, "--operator", "dpo-anna"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  vj = json_lines(v.out).at(0);
  EXPECT_TRUE(vj.at("clean").get<bool>()) << vj.dump();
  EXPECT_TRUE(vj.at("unsearched").empty());
  EXPECT_TRUE(fs::exists(vj.at("certificate").get<std::string>()));
  EXPECT_EQ(certificate_files(dir / "state"), 1U);
}

// Holds win: an item cut at the limit in a source under hold is retained whatever it holds, so
// it does not stop the certificate (it is counted as retained, with the hold's reason); nor does
// an item the subject's manifest itself retains that is also cut. The certificate says both.
TEST_F(VerifyPartial, RetainedItemsStillCertify) {
  fs::remove(big); // nothing cut outside the archive
  write_big_message(dir / "archive/cur/3.M3P1.mx:2,S", "Alice Smith <alice.smith@example.com>", "kept", "");
  write_big_message(dir / "archive/cur/4.M4P1.mx:2,S", "Bob Sender <bob@example.org>", "unread", k_alice);
  write_config(cfg, 1,
               R"("holds": [{"source": "archive", "reason": "litigation 2026-17", "until": "2099-12-31"}])");
  json summary = index_json(cfg);
  EXPECT_EQ(summary.at("truncated"), 2) << summary.dump();

  auto er = erase_alice(cfg, dir / "m.json");
  ASSERT_EQ(er.exit_code, 0) << er.err << er.out;
  EXPECT_FALSE(fs::exists(dir / "mail/cur/1.M1P1.mx:2,S"));
  EXPECT_TRUE(fs::exists(dir / "archive/cur/3.M3P1.mx:2,S"));
  EXPECT_TRUE(fs::exists(dir / "archive/cur/4.M4P1.mx:2,S"));

  auto v = ds(cfg, {"verify", "--email", k_alice, "--operator", "dpo-anna"});
  ASSERT_EQ(v.exit_code, 0) << v.out << v.err;
  json vj = json_lines(v.out).at(0);
  EXPECT_TRUE(vj.at("clean").get<bool>()) << vj.dump();
  EXPECT_EQ(vj.at("retained"), 2) << vj.dump();
  json cert = json::parse(read_file(vj.at("certificate").get<std::string>()));
  std::map<std::string, int> by_reason;
  for (const json &r : cert.at("retained")) {
    by_reason[r.at("reason")] = r.at("items");
  }
  EXPECT_EQ(by_reason["hold: litigation 2026-17"], 1) << cert.dump();
  EXPECT_EQ(by_reason["hold: litigation 2026-17 (not searched completely)"], 1) << cert.dump();

  // Without the hold the unread archive item stops the certificate (the manifest's retained
  // item stays retained: the manifest says so).
  write_config(cfg, 1);
  v = ds(cfg, {"verify", "--email", k_alice, "--operator", "dpo-anna"});
  EXPECT_EQ(v.exit_code, 69) << v.out << v.err;
  vj = json_lines(v.out).at(0);
  ASSERT_EQ(vj.at("unsearched").size(), 1U) << vj.dump();
  EXPECT_EQ(vj.at("unsearched")[0].at("path"), (dir / "archive/cur/4.M4P1.mx:2,S").string());
}

// `find` marks a hit indexed in part, in JSON and in the human output; `index` counts it in
// its summary line; find, plan and export warn while the index holds such an item.
TEST_F(VerifyPartial, IndexAndFindReportItemsIndexedInPart) {
  write_config(cfg, 1);
  auto idx = maildsar_run({"-c", cfg.string(), "index"});
  EXPECT_EQ(idx.exit_code, 0) << idx.err;
  EXPECT_NE(idx.out.find("1 item(s) indexed only in part"), std::string::npos) << idx.out;
  EXPECT_NE(idx.err.find("max_item_mib"), std::string::npos) << idx.err; // the warning line

  auto found = ds(cfg, {"find", "--email", "bob@example.org"});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  bool marked = false;
  for (const json &hit : json_lines(found.out)) {
    if (hit.at("path") == big.string()) {
      ASSERT_TRUE(hit.contains("truncated")) << hit.dump();
      EXPECT_NE(hit.at("truncated")[0].get<std::string>().find("max_item_mib"), std::string::npos);
      marked = true;
    } else {
      EXPECT_FALSE(hit.contains("truncated")) << hit.dump();
    }
  }
  EXPECT_TRUE(marked) << found.out;
  auto human = maildsar_run({"-c", cfg.string(), "find", "--email", "bob@example.org"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("INDEXED IN PART: item cut at limits.max_item_mib"), std::string::npos) << human.out;
  EXPECT_NE(human.err.find("indexed only in part"), std::string::npos) << human.err;
  // plan and export warn the same way (their answer may miss what was not read).
  auto plan = ds(cfg, {"plan", "--email", k_alice, "--out", (dir / "m.json").string()});
  EXPECT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.err.find("1 item(s) indexed only in part"), std::string::npos) << plan.err;
  auto ex = ds(cfg, {"export", "--email", k_alice, "--out", (dir / "pkg").string()});
  EXPECT_EQ(ex.exit_code, 0) << ex.err;
  EXPECT_NE(ex.err.find("1 item(s) indexed only in part"), std::string::npos) << ex.err;
}

// An attachment too large to extract (limits.extract_max_attachment_mib) leaves its text
// unsearched: the message is indexed in part (marked, counted) and stops the certificate.
TEST_F(VerifyPartial, AttachmentNotExtractedMarksTheMessageAndStopsTheCertificate) {
  fs::remove(big);
  const fs::path msg = dir / "mail/cur/5.M5P1.mx:2,S";
  std::string pdf = "%PDF-1.4\n" + std::string(1536U << 10U, 'A') + "\n%%EOF\n";
  write_file(msg, make_message("Dave <dave@example.org>", "carol@example.com", "scan", "scan@example.org",
                               "see the attachment", {{"scan.pdf", "application/pdf", pdf}}));
  write_file(cfg, R"({"state_dir": "state", "sources": [
    {"name": "mail", "type": "maildir", "path": "mail"},
    {"name": "archive", "type": "maildir", "path": "archive"}],
    "limits": {"extract_max_attachment_mib": 1}})");
  json summary = index_json(cfg);
  EXPECT_EQ(summary.at("truncated"), 1) << summary.dump();
  auto found = ds(cfg, {"find", "--email", "dave@example.org"});
  auto hits = json_lines(found.out);
  ASSERT_EQ(hits.size(), 1U) << found.out;
  ASSERT_TRUE(hits[0].contains("truncated")) << hits[0].dump();
  const std::string note = hits[0].at("truncated")[0];
  EXPECT_NE(note.find("scan.pdf"), std::string::npos) << note;
  EXPECT_NE(note.find("extract_max_attachment_mib"), std::string::npos) << note;

  ASSERT_EQ(erase_alice(cfg, dir / "m.json").exit_code, 0);
  auto v = ds(cfg, {"verify", "--email", k_alice});
  EXPECT_EQ(v.exit_code, 69) << v.out << v.err;
  json vj = json_lines(v.out).at(0);
  ASSERT_EQ(vj.at("unsearched").size(), 1U) << vj.dump();
  EXPECT_EQ(vj.at("unsearched")[0].at("path"), msg.string());
}

// A file the last index could not read (here a PST libpst cannot open) was not searched:
// verify names it and gives no certificate.
TEST_F(VerifyPartial, FileTheIndexCouldNotReadStopsTheCertificate) {
  fs::remove(big);
  fs::create_directories(dir / "pst");
  write_file(dir / "pst/broken.pst", std::string(4096, '\x5a'));
  write_file(cfg, R"({"state_dir": "state", "sources": [
    {"name": "mail", "type": "maildir", "path": "mail"},
    {"name": "legacy", "type": "pst", "path": "pst/*.pst"}]})");
  auto idx = ds(cfg, {"index"});
  EXPECT_EQ(idx.exit_code, 1) << idx.out << idx.err; // a counted problem
  ASSERT_EQ(erase_alice(cfg, dir / "m.json").exit_code, 0);
  auto v = ds(cfg, {"verify", "--email", k_alice});
  EXPECT_EQ(v.exit_code, 69) << v.out << v.err;
  json vj = json_lines(v.out).at(0);
  ASSERT_EQ(vj.at("unsearched").size(), 1U) << vj.dump();
  EXPECT_EQ(vj.at("unsearched")[0].at("path"), (dir / "pst/broken.pst").string());
  EXPECT_NE(vj.at("unsearched")[0].at("detail").get<std::string>().find("could not read"), std::string::npos);
  EXPECT_EQ(certificate_files(dir / "state"), 0U);
}

// Item-level, not file-level: an mbox whose bytes before the first "From " line (outside any
// message) name Alice is indexed (its messages are found), but those bytes were not searched.
// verify names the file and gives no certificate; an append to the file keeps the mark; once the
// file is whole again and re-read, the mark goes and the certificate is given.
TEST_F(VerifyPartial, FileReadExceptForSomeBytesStopsTheCertificate) {
  fs::remove(big);
  fs::create_directories(dir / "mbox");
  const fs::path box = dir / "mbox/old.mbox";
  const std::string message = "From bob@example.org Tue Nov 14 10:00:00 2023\n" +
                              small_message("bob@example.org", "carol@example.com", "m1") + "\n";
  write_file(box, "stray note for " + std::string(k_alice) + " before any separator line\n\n" + message);
  write_file(cfg, R"({"state_dir": "state", "sources": [
    {"name": "mail", "type": "maildir", "path": "mail"},
    {"name": "archive", "type": "mbox", "path": "mbox/*.mbox"}]})");
  auto idx = ds(cfg, {"index"});
  EXPECT_EQ(idx.exit_code, 1) << idx.out << idx.err; // a counted problem naming file and offset
  EXPECT_NE(idx.err.find("offset 0"), std::string::npos) << idx.err;
  auto carol = ds(cfg, {"find", "--email", "carol@example.com"});
  ASSERT_EQ(carol.exit_code, 0) << carol.err;
  EXPECT_EQ(json_lines(carol.out).size(), 1U) << "the file's message is indexed: " << carol.out;

  ASSERT_EQ(erase_alice(cfg, dir / "m.json").exit_code, 0);
  auto v = ds(cfg, {"verify", "--email", k_alice});
  EXPECT_EQ(v.exit_code, 69) << v.out << v.err;
  json vj = json_lines(v.out).at(0);
  ASSERT_EQ(vj.at("unsearched").size(), 1U) << vj.dump();
  EXPECT_EQ(vj.at("unsearched")[0].at("path"), box.string());
  const std::string detail = vj.at("unsearched")[0].at("detail");
  EXPECT_NE(detail.find("1 part(s) of this file could not be read"), std::string::npos) << detail;
  EXPECT_NE(detail.find("offset 0"), std::string::npos) << detail;
  EXPECT_EQ(certificate_files(dir / "state"), 0U);

  // Appended to (an append scan): the part read before is still not searched.
  {
    std::ofstream f(box, std::ios::binary | std::ios::app);
    f << "From dave@example.org Tue Nov 14 11:00:00 2023\n"
      << small_message("dave@example.org", "carol@example.com", "m2") << "\n";
  }
  json again = index_json(cfg);
  EXPECT_EQ(source_counts(again, "archive").at("new"), 1) << again.dump();
  auto v2 = ds(cfg, {"verify", "--email", k_alice});
  EXPECT_EQ(v2.exit_code, 69) << v2.out << v2.err;

  // The stray bytes removed by hand: the file is read again whole, and verify certifies.
  std::string whole = read_file(box);
  write_file(box, whole.substr(whole.find("From bob@")));
  auto idx3 = ds(cfg, {"index"});
  EXPECT_EQ(idx3.exit_code, 0) << idx3.out << idx3.err;
  auto v3 = ds(cfg, {"verify", "--email", k_alice});
  EXPECT_EQ(v3.exit_code, 0) << v3.out << v3.err;
  EXPECT_TRUE(json_lines(v3.out).at(0).at("unsearched").empty()) << v3.out;
  EXPECT_EQ(certificate_files(dir / "state"), 1U);
}

} // namespace
} // namespace maildsar::test
