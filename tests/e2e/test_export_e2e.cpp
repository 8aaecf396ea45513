// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end tests of `maildsar export`: the Art. 15 package for generated estates with the
// subject in every store, headless-Chromium renderings of the sample estate's report and of a
// draft's review page, non-ASCII folder names, the report in German and as PDF.
#include "core/hash.hpp"
#include "tests/e2e/e2e_support.hpp"
#include "tests/e2e/estate.hpp"
#include "tests/e2e/estate_connectors.hpp"
#include "tests/png_check.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

using maildsar::test::ScratchDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using maildsar::test::index_json;
using maildsar::test::json_lines;
using maildsar::test::maildsar_run;

std::string slurp(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string range(const std::string &path, std::uint64_t offset, std::uint64_t length) {
  auto all = slurp(path);
  return all.substr(offset, length);
}

/** mbox range -> message: drop the "From " line, undo >From quoting. */
std::string mbox_message(const std::string &bytes) {
  auto nl = bytes.find('\n');
  std::string body = nl == std::string::npos ? std::string() : bytes.substr(nl + 1);
  return std::regex_replace(body, std::regex("(^|\n)>(>*From )"), "$1$2");
}

/** Checks every manifest checksum; returns the manifest. */
json verify_manifest(const fs::path &out) {
  auto manifest = json::parse(slurp(out / "manifest.json"));
  EXPECT_EQ(manifest.at("schema"), "maildsar.export-manifest");
  std::size_t files = 0;
  for (const auto &f : manifest.at("files")) {
    auto data = slurp(out / f.at("path").get<std::string>());
    EXPECT_EQ(maildsar::core::sha256_hex(data), f.at("sha256").get<std::string>()) << f.at("path");
    EXPECT_EQ(data.size(), f.at("size").get<std::size_t>());
    ++files;
  }
  std::size_t on_disk = 0;
  for (const auto &e : fs::recursive_directory_iterator(out)) {
    on_disk += e.is_regular_file() ? 1U : 0U;
  }
  EXPECT_EQ(files + 1, on_disk) << "every file but manifest.json is listed";
  return manifest;
}

} // namespace

TEST(ExportE2E, PlantedEstatePackageIsCompleteAndVerifies) {
  ScratchDir dir;
  auto estate = maildsar::test::make_planted_estate(dir.path());
  index_json(estate.config);
  auto found = maildsar_run({"-c", estate.config.string(), "find", "--subject", estate.subject.string(), "--json"});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  auto hits = json_lines(found.out);
  ASSERT_FALSE(hits.empty());
  auto out = dir.path() / "package";
  auto r = maildsar_run({"-c", estate.config.string(), "export", "--subject", estate.subject.string(),
                         "--out", out.string(), "--json", "--operator", "dpo"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto summary = json_lines(r.out).at(0);
  EXPECT_EQ(summary.at("items").get<std::size_t>(), hits.size());
  auto manifest = verify_manifest(out);
  std::map<std::string, json> by_id;
  for (const auto &it : manifest.at("items")) {
    by_id[it.at("id").get<std::string>()] = it;
  }
  for (const auto &h : hits) {
    auto id = h.at("id").get<std::string>();
    ASSERT_TRUE(by_id.contains(id)) << h.dump();
    auto copy = by_id[id].at("copy").get<std::string>();
    ASSERT_FALSE(copy.empty()) << h.dump();
    auto bytes = slurp(out / copy);
    auto path = h.at("path").get<std::string>();
    if (h.at("store") == "maildir") {
      EXPECT_EQ(bytes, slurp(path)) << copy;
    } else if (h.at("store") == "mbox") {
      EXPECT_EQ(bytes, mbox_message(range(path, h.at("offset"), h.at("length")))) << copy;
    }
  }
  auto report = slurp(out / "report.html");
  auto subject = json::parse(slurp(estate.subject));
  if (subject.contains("request")) {
    EXPECT_NE(report.find(subject.at("request").get<std::string>()), std::string::npos);
  }
  auto config = json::parse(slurp(estate.config), nullptr, true, true);
  for (const auto &s : config.at("sources")) {
    EXPECT_NE(report.find(s.at("name").get<std::string>()), std::string::npos) << s;
  }
  EXPECT_TRUE(fs::exists(out / "summary.csv"));
  // A second export into the same directory is refused (73) unless --force.
  auto again = maildsar_run({"-c", estate.config.string(), "export", "--subject", estate.subject.string(),
                             "--out", out.string()});
  EXPECT_EQ(again.exit_code, 73) << again.err;
  auto audit = maildsar_run({"-c", estate.config.string(), "audit", "--json"});
  EXPECT_NE(audit.out.find(summary.at("package_sha256").get<std::string>()), std::string::npos) << audit.out;
}

TEST(ExportE2E, ConnectorEstateWithRedactOthersMasksEveryOtherAddress) {
  ScratchDir dir;
  auto estate = maildsar::test::make_connector_estate(dir.path(), maildsar::test::corpus_dir());
  index_json(estate.config);
  auto found = maildsar_run({"-c", estate.config.string(), "find", "--subject", estate.subject.string(), "--json"});
  auto hits = json_lines(found.out);
  ASSERT_FALSE(hits.empty());
  auto out = dir.path() / "pkg";
  auto r = maildsar_run({"-c", estate.config.string(), "export", "--subject", estate.subject.string(),
                         "--out", out.string(), "--redact-others", "--keep-originals", "--zip", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto manifest = verify_manifest(out);
  EXPECT_EQ(manifest.at("items").size(), hits.size());
  auto subject = json::parse(slurp(estate.subject));
  std::set<std::string> own;
  for (const auto &e : subject.at("emails")) {
    own.insert(e.get<std::string>());
  }
  std::regex addr(R"([A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,})");
  std::size_t logs = 0;
  for (const auto &it : manifest.at("items")) {
    if (it.at("store") != "maillog") {
      continue;
    }
    ++logs;
    auto text = slurp(out / it.at("copy").get<std::string>());
    for (std::sregex_iterator m(text.begin(), text.end(), addr), end; m != end; ++m) {
      auto a = m->str();
      std::string folded = a;
      std::transform(folded.begin(), folded.end(), folded.begin(), ::tolower);
      if (auto plus = folded.find('+'); plus != std::string::npos) {
        folded.erase(plus, folded.find('@') - plus);
      }
      EXPECT_TRUE(own.contains(folded)) << "other person's address left in " << it.at("copy") << ": " << a;
    }
    EXPECT_TRUE(fs::exists(fs::path(out.string() + ".originals") / it.at("copy").get<std::string>()) ||
                text.find("[other") == std::string::npos);
  }
  EXPECT_GT(logs, 0U);
  // Message copies (issue 18 item 2): every other person named in an original's From, To or Cc
  // is gone from the copy in every decoding, as Python's email package reads it (an
  // independent check); the subject's own addresses stay.
  const fs::path originals = out.string() + ".originals";
  std::ofstream listing(dir.path() / "others.tsv");
  std::size_t messages = 0;
  std::size_t pairs = 0;
  std::regex field(R"((?:^|\n)(?:From|To|Cc):((?:[^\n]|\n[ \t])*))", std::regex::icase);
  for (const auto &it : manifest.at("items")) {
    const std::string copy = it.at("copy").get<std::string>();
    if (it.at("store") == "maillog" || copy.empty() || fs::path(copy).extension() != ".eml" ||
        !fs::exists(originals / copy)) {
      continue;
    }
    ++messages;
    EXPECT_TRUE(it.contains("redaction")) << copy;
    const std::string original = slurp(originals / copy);
    const std::string head = original.substr(0, original.find("\n\n"));
    std::set<std::string> others;
    for (std::sregex_iterator f(head.begin(), head.end(), field), end; f != end; ++f) {
      const std::string value = (*f)[1].str();
      for (std::sregex_iterator m(value.begin(), value.end(), addr), end2; m != end2; ++m) {
        std::string folded = m->str();
        std::transform(folded.begin(), folded.end(), folded.begin(), ::tolower);
        std::string base = folded;
        if (auto plus = base.find('+'); plus != std::string::npos) {
          base.erase(plus, base.find('@') - plus);
        }
        if (!own.contains(base)) {
          others.insert(folded);
        }
      }
    }
    for (const std::string &o : others) {
      listing << (out / copy).string() << '\t' << o << '\n';
      ++pairs;
    }
  }
  listing.close();
  EXPECT_GT(messages, 0U) << "the estate has messages with other people in them";
  EXPECT_GT(pairs, 0U);
  auto check = maildsar::test::run(
      {maildsar::test::find_program("python3").string(), std::string(MAILDSAR_SOURCE_DIR) + "/tests/unit/redaction/check_redacted.py",
       (dir.path() / "others.tsv").string()});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find(", 0 finding(s)"), std::string::npos) << check.out;
  auto report = slurp(out / "report.html");
  EXPECT_NE(report.find("Other people"), std::string::npos);
  EXPECT_NE(report.find("Redacted: "), std::string::npos);
  EXPECT_TRUE(fs::exists(out.string() + ".zip"));
  auto summary = json_lines(r.out).at(0);
  EXPECT_EQ(summary.at("package_sha256"), maildsar::core::sha256_hex(slurp(out.string() + ".zip")));
  if (estate.has_pst) {
    auto pst = maildsar_run({"-c", estate.config.string(), "export", "--subject", estate.pst_subject.string(),
                             "--out", (dir.path() / "pst-package").string(), "--json"});
    EXPECT_LE(pst.exit_code, 1) << pst.err;
    auto pm = verify_manifest(dir.path() / "pst-package");
    std::size_t rendered = 0;
    for (const auto &it : pm.at("items")) {
      if (it.at("store") == "pst" && !it.at("copy").get<std::string>().empty()) {
        ++rendered;
        auto bytes = slurp(dir.path() / "pst-package" / it.at("copy").get<std::string>());
        auto ext = fs::path(it.at("copy").get<std::string>()).extension();
        if (ext == ".eml") {
          EXPECT_NE(bytes.find("MIME-Version: 1.0"), std::string::npos);
        } else if (ext == ".vcf") {
          EXPECT_EQ(bytes.rfind("BEGIN:VCARD", 0), 0U);
        } else if (ext == ".ics") {
          EXPECT_EQ(bytes.rfind("BEGIN:VCALENDAR", 0), 0U);
        }
      }
    }
    EXPECT_GT(rendered, 0U);
  }
}

TEST(ExportE2E, ADraftIsReviewedThenMasksAreAddedAndLifted) {
  // Issue 18 item 2, the review step: --draft writes the package marked DRAFT and
  // DIR.review.html (who each placeholder is); the final build takes --mask / --unmask.
  ScratchDir dir;
  const fs::path md = dir.path() / "mail/alice/Maildir";
  for (const char *sub : {"cur", "new", "tmp"}) {
    fs::create_directories(md / sub);
  }
  maildsar::test::write_file(md / "cur/1700000000.M1P1.host:2,S",
                             "From: Bob Jones <bob@example.org>\nTo: Alice Smith <alice.smith@example.com>\n"
                             "Date: Tue, 14 Nov 2023 10:00:00 +0000\nSubject: notes\n\n"
                             "Alice, Carol Jones asked for the minutes; write to bob@example.org.\n");
  const fs::path config = dir.path() / "maildsar.json";
  maildsar::test::write_file(config, R"({"state_dir": "state", "sources": [
      {"name": "mailboxes", "type": "maildir", "path": "mail/*/Maildir", "owner": "{1}.smith@example.com"}]})");
  ASSERT_EQ(maildsar_run({"-c", config.string(), "index"}).exit_code, 0);
  const fs::path out = dir.path() / "pkg";
  auto draft = maildsar_run({"-c", config.string(), "export", "--email", "alice.smith@example.com", "--out",
                             out.string(), "--redact-others", "--draft", "--json"});
  ASSERT_EQ(draft.exit_code, 0) << draft.err;
  EXPECT_EQ(json_lines(draft.out).at(0).at("review"), out.string() + ".review.html");
  const std::string review = slurp(out.string() + ".review.html");
  EXPECT_NE(review.find("bob@example.org"), std::string::npos) << "the DPO sees who [person 1] is";
  EXPECT_NE(review.find("[person 1]"), std::string::npos);
  EXPECT_EQ(fs::status(out.string() + ".review.html").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_NE(slurp(out / "report.html").find("DRAFT for review"), std::string::npos);
  auto manifest = verify_manifest(out);
  ASSERT_EQ(manifest.at("items").size(), 1U);
  std::string copy = slurp(out / manifest.at("items")[0].at("copy").get<std::string>());
  EXPECT_EQ(copy.find("bob@example.org"), std::string::npos) << copy;
  EXPECT_NE(copy.find("Carol Jones"), std::string::npos) << "a name no header ties to anyone stays: " << copy;

  auto final = maildsar_run({"-c", config.string(), "export", "--email", "alice.smith@example.com", "--out",
                             out.string(), "--force", "--redact-others", "--mask", "Carol Jones", "--unmask",
                             "bob@example.org", "--json"});
  ASSERT_EQ(final.exit_code, 0) << final.err;
  manifest = verify_manifest(out);
  copy = slurp(out / manifest.at("items")[0].at("copy").get<std::string>());
  EXPECT_EQ(copy.find("Carol Jones"), std::string::npos) << copy;
  EXPECT_NE(copy.find("bob@example.org"), std::string::npos) << copy;
  EXPECT_NE(copy.find("Bob Jones"), std::string::npos) << "unmasked: his name too" << copy;
  EXPECT_EQ(slurp(out / "report.html").find("DRAFT"), std::string::npos);
  EXPECT_EQ(manifest.at("options").at("masked_on_request"), 1);
  auto bad = maildsar_run({"-c", config.string(), "export", "--email", "alice.smith@example.com", "--out",
                           (dir.path() / "other").string(), "--mask", "Carol Jones"});
  EXPECT_EQ(bad.exit_code, 64) << "--mask without redaction";
  auto one_word = maildsar_run({"-c", config.string(), "export", "--email", "alice.smith@example.com", "--out",
                                (dir.path() / "other").string(), "--redact-others", "--mask", "Carol"});
  EXPECT_EQ(one_word.exit_code, 64) << one_word.err;
}

TEST(ExportE2E, SampleReportRendersInHeadlessChromium) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "chromium not installed (scripts/install-deps.sh)";
  }
  ScratchDir dir;
  auto samples = fs::path(MAILDSAR_SOURCE_DIR) / "samples";
  maildsar::test::copy_tree(samples, dir.path() / "s");
  fs::remove_all(dir.path() / "s" / "state");
  auto config = dir.path() / "s" / "maildsar.json";
  index_json(config);
  auto out = dir.path() / "pkg";
  auto r = maildsar_run({"-c", config.string(), "export", "--subject", (dir.path() / "s" / "subject.json").string(),
                         "--out", out.string(), "--redact-others"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto png = dir.path() / "report.png";
  auto shot = maildsar::test::run({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                   "--hide-scrollbars", "--user-data-dir=" + (dir.path() / "chr").string(),
                                   "--screenshot=" + png.string(), "--window-size=1200,1600",
                                   "file://" + (out / "report.html").string()});
  ASSERT_TRUE(fs::exists(png)) << shot.err;
  EXPECT_GT(fs::file_size(png), 20U * 1024U);
  if (const char *keep = std::getenv("MAILDSAR_KEEP_SCREENSHOT")) {
    fs::copy_file(png, keep, fs::copy_options::overwrite_existing);
  }
}

namespace {

/** A Maildir with folders named as IMAP servers and mail programs write them (issue 18 item 4). */
fs::path make_multilingual_estate(const fs::path &root, const std::string &access) {
  const fs::path md = root / "mail/alice/Maildir";
  const std::vector<std::pair<std::string, std::string>> folders{
      {"", "Posteingang"},
      {".Entw&APw-rfe", "Entwurf"},                                                  // modified UTF-7
      {".Gesendete Objekte", "Gesendet"},                                            // Outlook's name, plain
      {".\xD0\x92\xD1\x85\xD0\xBE\xD0\xB4\xD1\x8F\xD1\x89\xD0\xB8\xD0\xB5", "Privet"}, // Входящие, UTF-8 on disk
  };
  int n = 0;
  for (const auto &[folder, word] : folders) {
    for (const char *sub : {"cur", "new", "tmp"}) {
      fs::create_directories(md / folder / sub);
    }
    ++n;
    maildsar::test::write_file(md / folder / "cur" / ("170000000" + std::to_string(n) + ".M1P1.host:2,S"),
                               "From: Bob Jones <bob@example.org>\nTo: Alice Smith <alice.smith@example.com>\n"
                               "Date: Tue, 14 Nov 2023 10:0" + std::to_string(n) + ":00 +0000\n"
                               "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_" + word + "?=\n\nHallo Alice.\n");
  }
  const fs::path config = root / "maildsar.json";
  maildsar::test::write_file(config, R"({"state_dir": "state", "sources": [
      {"name": "mailboxes", "type": "maildir", "path": "mail/*/Maildir", "owner": "{1}.smith@example.com"}])" +
                                         access + "}");
  return config;
}

std::string pdf_text(const fs::path &pdf) {
  auto r = maildsar::test::run({maildsar::test::find_program("pdftotext").string(), "-enc", "UTF-8", pdf.string(), "-"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

/** A headless-Chromium screenshot of `page`; "" when Chromium wrote none. */
fs::path chromium_screenshot(const fs::path &work, const fs::path &page) {
  const fs::path png = work / (page.stem().string() + ".png");
  auto shot = maildsar::test::run({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                   "--hide-scrollbars", "--user-data-dir=" + (work / "chr").string(),
                                   "--screenshot=" + png.string(), "--window-size=1200,1600",
                                   "file://" + page.string()});
  EXPECT_TRUE(fs::exists(png)) << shot.err;
  return fs::exists(png) ? png : fs::path();
}

} // namespace

TEST(ExportE2E, NonAsciiMaildirFoldersKeepTheirNamesOnDiskInTheReportAndInTheZip) {
  ScratchDir dir;
  const fs::path config = make_multilingual_estate(dir.path(), "");
  index_json(config);
  const fs::path out = dir.path() / "Auskunft Müller";
  auto r = maildsar_run({"-c", config.string(), "export", "--email", "alice.smith@example.com", "--out", out.string(),
                         "--zip", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json summary = json_lines(r.out).at(0);
  EXPECT_EQ(summary.at("out"), out.string());
  EXPECT_EQ(summary.at("report_pdf"), (out / "report.pdf").string());
  EXPECT_EQ(summary.at("language"), "en");
  const json manifest = verify_manifest(out);
  std::set<std::string> copies;
  for (const auto &it : manifest.at("items")) {
    copies.insert(it.at("copy").get<std::string>());
  }
  std::set<std::string> folders;
  for (const std::string &c : copies) {
    folders.insert(fs::path(c).parent_path().filename().string());
    EXPECT_TRUE(fs::is_regular_file(out / c)) << c;
  }
  EXPECT_EQ(folders, (std::set<std::string>{"Inbox", "Entwürfe", "Gesendete Objekte", "Входящие"}));
  // The report names the folders in UTF-8 and links the copies (percent-encoded UTF-8).
  const std::string report = slurp(out / "report.html");
  for (const char *folder : {"alice/Entwürfe", "alice/Gesendete Objekte", "alice/Входящие"}) {
    EXPECT_NE(report.find(std::string("<span class=\"small\">") + folder + "</span>"), std::string::npos) << folder;
  }
  EXPECT_NE(report.find("href=\"items/mailboxes/alice/Entw%C3%BCrfe/"), std::string::npos);
  // The zip: the same UTF-8 names, flagged as UTF-8 (bit 11), as Python's zipfile reads them.
  auto names = maildsar::test::run(
      {maildsar::test::find_program("python3").string(), "-c",
       "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\n"
       "for i in z.infolist():\n  sys.stdout.buffer.write(b'%d ' % (i.flag_bits & 0x800) + i.filename.encode() + b'\\n')",
       out.string() + ".zip"});
  ASSERT_EQ(names.exit_code, 0) << names.err;
  for (const std::string &c : copies) {
    EXPECT_NE(names.out.find("2048 Auskunft Müller/" + c + "\n"), std::string::npos) << c << " in\n" << names.out;
  }
  EXPECT_NE(names.out.find("2048 Auskunft Müller/report.pdf\n"), std::string::npos) << names.out;
}

TEST(ExportE2E, TheReportIsGermanFromTheConfigAndEnglishOnRequest) {
  ScratchDir dir;
  const fs::path config = make_multilingual_estate(
      dir.path(), R"(, "access": {"controller": "Beispiel GmbH", "language": "de", "supervisory_authority": "LDI NRW"})");
  index_json(config);
  const fs::path de = dir.path() / "de";
  auto r = maildsar_run({"-c", config.string(), "export", "--email", "alice.smith@example.com", "--out", de.string(),
                         "--redact-others", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_lines(r.out).at(0).at("language"), "de");
  const std::string html = slurp(de / "report.html");
  EXPECT_NE(html.find("<html lang=\"de\">"), std::string::npos);
  EXPECT_NE(html.find("<h2>Ihre Rechte</h2>"), std::string::npos);
  EXPECT_NE(html.find("Aufsichtsbehörde beschweren: LDI NRW"), std::string::npos) << html;
  EXPECT_EQ(html.find("<h2>Your rights</h2>"), std::string::npos);
  EXPECT_EQ(json::parse(slurp(de / "manifest.json")).at("language"), "de");
  if (!maildsar::test::find_program("pdftotext").empty()) {
    const std::string pdf = pdf_text(de / "report.pdf");
    for (const char *text : {"Kopie Ihrer personenbezogenen Daten", "Ihre Rechte", "Übermittlung in andere Länder",
                             "Wir haben 4 Einträge über Sie", "Grüße Entwurf", "Seite 1 von", "alice/Entwürfe",
                             "[person 1]"}) {
      EXPECT_NE(pdf.find(text), std::string::npos) << text << " not in\n" << pdf;
    }
    EXPECT_EQ(pdf.find("bob@example.org"), std::string::npos) << "redacted in the PDF too";
  }
  // --language en overrides the config.
  const fs::path en = dir.path() / "en";
  r = maildsar_run({"-c", config.string(), "export", "--email", "alice.smith@example.com", "--out", en.string(),
                    "--language", "en"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(slurp(en / "report.html").find("<h2>Your rights</h2>"), std::string::npos);
  if (!maildsar::test::find_program("pdftotext").empty()) {
    EXPECT_NE(pdf_text(en / "report.pdf").find("Your rights"), std::string::npos);
  }
  // An unknown language: a usage error (64) from the option, a config error (78) from the config,
  // each listing the allowed values; nothing is written.
  r = maildsar_run({"-c", config.string(), "export", "--email", "alice.smith@example.com", "--out",
                    (dir.path() / "fr").string(), "--language", "fr"});
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("allowed: en, de"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.path() / "fr"));
  const fs::path bad = make_multilingual_estate(dir.path() / "bad", R"(, "access": {"language": "fr"})");
  r = maildsar_run({"-c", bad.string(), "export", "--email", "alice.smith@example.com", "--out",
                    (dir.path() / "fr").string()});
  EXPECT_EQ(r.exit_code, 78) << r.err;
  EXPECT_NE(r.err.find("access.language 'fr' is not a report language (allowed: en, de)"), std::string::npos) << r.err;
}

TEST(ExportE2E, TheReportPdfHasTheReportsContentAndAVisibleFirstPage) {
  if (maildsar::test::find_program("pdftotext").empty() || maildsar::test::find_program("pdftoppm").empty()) {
    GTEST_SKIP() << "poppler-utils not installed (scripts/install-deps.sh)";
  }
  ScratchDir dir;
  auto samples = fs::path(MAILDSAR_SOURCE_DIR) / "samples";
  maildsar::test::copy_tree(samples, dir.path() / "s");
  fs::remove_all(dir.path() / "s" / "state");
  auto config = dir.path() / "s" / "maildsar.json";
  index_json(config);
  auto out = dir.path() / "pkg";
  auto r = maildsar_run({"-c", config.string(), "export", "--subject", (dir.path() / "s" / "subject.json").string(),
                         "--out", out.string(), "--redact-others", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json manifest = verify_manifest(out);
  const std::string pdf = pdf_text(out / "report.pdf");
  for (const char *heading : {"Copy of your personal data held in our e-mail", "In short", "What we searched",
                              "Why we hold this data and what we do with it", "Your rights", "Other people's data",
                              "Every item", "Page 1 of"}) {
    EXPECT_NE(pdf.find(heading), std::string::npos) << heading;
  }
  // Every item's subject line as the HTML report shows it (short ones: a table cell wraps long ones).
  std::size_t checked = 0;
  const std::string html = slurp(out / "report.html");
  std::regex subj("<td class=\"subj\">([^<&]{3,18})</td>");
  for (std::sregex_iterator m(html.begin(), html.end(), subj), end; m != end; ++m) {
    EXPECT_NE(pdf.find((*m)[1].str()), std::string::npos) << (*m)[1].str();
    ++checked;
  }
  EXPECT_GT(checked, 0U);
  auto render = maildsar::test::run({maildsar::test::find_program("pdftoppm").string(), "-png", "-r", "50", "-f", "1",
                                     "-l", "1", (out / "report.pdf").string(), (dir.path() / "page").string()});
  ASSERT_EQ(render.exit_code, 0) << render.err;
  fs::path png;
  for (const auto &f : fs::directory_iterator(dir.path())) {
    png = f.path().extension() == ".png" ? f.path() : png;
  }
  ASSERT_FALSE(png.empty());
  auto colours = maildsar::test::png_colours(slurp(png));
  ASSERT_TRUE(colours);
  EXPECT_GT(colours->distinct, 10U) << "not a blank page";
  if (const char *keep = std::getenv("MAILDSAR_KEEP_PDF_PAGE")) {
    fs::copy_file(png, keep, fs::copy_options::overwrite_existing);
  }
}

TEST(ExportE2E, DraftReviewPageRendersInHeadlessChromium) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "chromium not installed (scripts/install-deps.sh)";
  }
  ScratchDir dir;
  const fs::path config = make_multilingual_estate(dir.path(), "");
  index_json(config);
  const fs::path out = dir.path() / "pkg";
  auto r = maildsar_run({"-c", config.string(), "export", "--email", "alice.smith@example.com", "--out", out.string(),
                         "--redact-others", "--draft", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path review = json_lines(r.out).at(0).at("review").get<std::string>();
  ASSERT_TRUE(fs::exists(review));
  EXPECT_NE(slurp(review).find("bob@example.org"), std::string::npos);
  const fs::path png = chromium_screenshot(dir.path(), review);
  ASSERT_FALSE(png.empty());
  auto colours = maildsar::test::png_colours(slurp(png));
  ASSERT_TRUE(colours) << "a PNG";
  EXPECT_EQ(colours->width, 1200U);
  EXPECT_GT(colours->distinct, 10U) << "not a blank page";
  if (const char *keep = std::getenv("MAILDSAR_KEEP_REVIEW_SCREENSHOT")) {
    fs::copy_file(png, keep, fs::copy_options::overwrite_existing);
  }
}
