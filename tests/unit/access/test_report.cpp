// SPDX-License-Identifier: GPL-3.0-or-later
// The report's language (the catalogue, its plural rules, every msgid of the code translated)
// and its renderings: report.html and report.pdf in English and German (issue 18 item 4).
#include "access/export.hpp"
#include "access/i18n.hpp"

#include "core/config.hpp"
#include "indexer/indexer.hpp"
#include "tests/png_check.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

using maildsar::test::ScratchDir;
namespace fs = std::filesystem;
namespace q = maildsar::access;
namespace i18n = maildsar::access::i18n;

namespace {

std::string slurp(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/** The value of adjacent C++ string literals ("a " "b" -> "a b"; \" \\ \n escapes). */
std::string literal_value(const std::string &literals) {
  std::string out;
  bool in = false;
  for (std::size_t i = 0; i < literals.size(); ++i) {
    const char c = literals[i];
    if (!in) {
      in = c == '"';
      continue;
    }
    if (c == '"') {
      in = false;
    } else if (c == '\\' && i + 1 < literals.size()) {
      const char e = literals[++i];
      out.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

struct Msgid {
  std::string id;
  std::string plural; // "" for tr/trf/MAILDSAR_N_
  std::string where;
};

/** Every msgid the access code looks up, as xgettext would find them (keywords tr, trf, trn:1,2,
    trnf:1,2, MAILDSAR_N_). */
std::vector<Msgid> msgids_in_code() {
  static const std::string lit = R"("(?:[^"\\]|\\.)*")";
  static const std::regex call("\\b(tr|trf|trn|trnf|MAILDSAR_N_)\\(\\s*((?:" + lit + "\\s*)+)(?:,\\s*((?:" + lit +
                               "\\s*)+))?");
  std::vector<Msgid> out;
  for (const auto &f : fs::directory_iterator(fs::path(MAILDSAR_SOURCE_DIR) / "access")) {
    if (f.path().extension() != ".cpp" && f.path().extension() != ".hpp") {
      continue;
    }
    const std::string src = slurp(f.path());
    for (std::sregex_iterator m(src.begin(), src.end(), call), end; m != end; ++m) {
      const std::string kind = (*m)[1].str();
      if (kind == "tr" && (*m)[2].str().empty()) {
        continue;
      }
      Msgid id{literal_value((*m)[2].str()), "", f.path().filename().string()};
      if (kind == "trn" || kind == "trnf") {
        id.plural = literal_value((*m)[3].str());
      }
      out.push_back(std::move(id));
    }
  }
  return out;
}

/** The placeholders ({}, {0}, {day}) and marks (<b>, </code>) of a text, sorted. */
std::multiset<std::string> shape(const std::string &text) {
  static const std::regex token(R"(\{[a-z0-9]*\}|</?(?:b|code)>)");
  std::multiset<std::string> out;
  for (std::sregex_iterator m(text.begin(), text.end(), token), end; m != end; ++m) {
    out.insert(m->str());
  }
  return out;
}

/** The visible text of HTML (tags dropped, the style sheet too). */
std::string visible_text(const std::string &html) {
  std::string body = html.substr(html.find("<body>"));
  return std::regex_replace(body, std::regex("<[^>]*>"), " ");
}

struct Estate {
  ScratchDir dir;
  maildsar::core::Config config;
};

void make_estate(Estate &e, const std::string &language) {
  const fs::path box = e.dir.path() / "mail" / "alice" / "Maildir";
  for (const char *sub : {"cur", "new", "tmp", ".Entw&APw-rfe/cur", ".Entw&APw-rfe/new", ".Entw&APw-rfe/tmp"}) {
    fs::create_directories(box / sub);
  }
  maildsar::test::write_file(box / "cur" / "1700000001.2.host:2,S",
                             "From: Carol <carol@other.example>\r\nTo: alice.smith@example.com\r\n"
                             "Subject: Quartalszahlen\r\nDate: Wed, 15 Nov 2023 10:00:00 +0000\r\n\r\nhi\r\n");
  maildsar::test::write_file(box / ".Entw&APw-rfe" / "cur" / "1700000002.3.host:2,S",
                             "From: alice.smith@example.com\r\nTo: Bob <bob@partner.example>\r\n"
                             "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
                             "Date: Thu, 16 Nov 2023 10:00:00 +0000\r\n\r\nhallo\r\n");
  maildsar::test::write_file(e.dir.path() / "maildsar.json",
                             R"({"state_dir": "state", "sources": [{"name": "postfaecher", "type": "maildir",
    "path": "mail/*/Maildir", "owner": "{1}@example.com"}],
    "access": {"controller": "Beispiel GmbH", "language": ")" +
                                 language + R"(", "internal_domains": ["example.com"]}})");
  auto config = maildsar::core::load_config((e.dir.path() / "maildsar.json").string());
  ASSERT_TRUE(config) << config.error().message;
  e.config = *config;
  auto r = maildsar::index::run_index(e.config, maildsar::index::IndexOptions{});
  ASSERT_TRUE(r) << r.error().message;
}

q::ExportSummary export_in(Estate &e, const std::string &name, const std::string &language, bool draft = false) {
  q::SubjectProfile subject;
  subject.request = "DSAR-7";
  subject.emails = {"alice.smith@example.com"};
  q::ExportOptions opt;
  opt.out_dir = (e.dir.path() / name).string();
  opt.operator_name = "dpo";
  opt.redact_others = q::RedactOthers::yes;
  opt.language = language;
  opt.draft = draft;
  opt.now = 1700000000; // 14 November 2023, 22:13 UTC
  auto s = q::export_package(e.config, subject, opt);
  EXPECT_TRUE(s) << s.error().message;
  return s ? *s : q::ExportSummary{};
}

std::string pdf_text(const fs::path &pdf) {
  auto r = maildsar::test::run({maildsar::test::find_program("pdftotext").string(), "-enc", "UTF-8", pdf.string(), "-"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

} // namespace

TEST(ReportCatalog, GermanIsCompiledInAndUnknownLanguagesAreRefused) {
  auto de = i18n::Catalog::load("de");
  ASSERT_TRUE(de) << de.error().message;
  EXPECT_EQ(de->language(), "de");
  EXPECT_EQ(de->tr("Your rights"), "Ihre Rechte");
  EXPECT_EQ(de->tr("not in the catalogue"), "not in the catalogue");
  auto en = i18n::Catalog::load("en");
  ASSERT_TRUE(en);
  EXPECT_EQ(en->tr("Your rights"), "Your rights");
  auto fr = i18n::Catalog::load("fr");
  ASSERT_FALSE(fr);
  EXPECT_EQ(fr.error().code, maildsar::core::ErrorCode::usage);
  EXPECT_NE(fr.error().message.find("allowed: en, de"), std::string::npos) << fr.error().message;
  // Every language the config accepts has a catalogue (English needs none).
  for (std::string_view lang : maildsar::core::k_report_languages) {
    EXPECT_TRUE(i18n::Catalog::load(lang)) << lang;
    EXPECT_TRUE(lang == "en" || !i18n::embedded_catalogue(lang).empty()) << lang;
  }
}

TEST(ReportCatalog, EveryMsgidOfTheCodeHasAGermanTranslationOfTheSameShape) {
  auto de = i18n::Catalog::load("de");
  ASSERT_TRUE(de);
  const std::vector<Msgid> ids = msgids_in_code();
  ASSERT_GT(ids.size(), 100U) << "the scan finds the report's texts";
  for (const Msgid &m : ids) {
    auto it = de->messages().find(m.id);
    ASSERT_NE(it, de->messages().end()) << m.where << ": no German for \"" << m.id << "\"";
    const i18n::Message &t = it->second;
    EXPECT_EQ(t.plural_id, m.plural) << m.id;
    ASSERT_EQ(t.forms.size(), m.plural.empty() ? 1U : de->plural_count()) << m.id;
    for (const std::string &form : t.forms) {
      EXPECT_FALSE(form.empty()) << m.id;
      static const std::set<std::string> k_same_in_german{"April", "August", "September", "November"};
      EXPECT_TRUE(form != m.id || k_same_in_german.contains(m.id)) << "untranslated: " << m.id;
      EXPECT_EQ(shape(form), shape(m.id)) << "placeholders or marks differ: " << m.id << " -> " << form;
    }
  }
  // And nothing in the catalogue that the code no longer uses.
  std::set<std::string> used;
  for (const Msgid &m : ids) {
    used.insert(m.id);
  }
  for (const auto &[id, message] : de->messages()) {
    EXPECT_TRUE(used.contains(id)) << "stale msgid in de.po: " << id;
  }
}

TEST(ReportCatalog, PluralFormsFollowTheCataloguesRule) {
  auto de = i18n::Catalog::load("de");
  ASSERT_TRUE(de);
  EXPECT_EQ(de->trnf("{} item", "{} items", 1, 1), "1 Eintrag");
  EXPECT_EQ(de->trnf("{} item", "{} items", 0, 0), "0 Einträge");
  EXPECT_EQ(de->trnf("{} item", "{} items", 21, 21), "21 Einträge");
  const i18n::Catalog en;
  EXPECT_EQ(en.trnf("{} item", "{} items", 1, 1), "1 item");
  EXPECT_EQ(en.trnf("{} item", "{} items", 2, 2), "2 items");
  // A catalogue with three forms (Polish's rule) picks them by its own expression.
  auto pl = i18n::Catalog::parse_po(
      "msgid \"\"\nmsgstr \"Plural-Forms: nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || "
      "n%100>=20) ? 1 : 2);\\n\"\n\nmsgid \"{} file\"\nmsgid_plural \"{} files\"\nmsgstr[0] \"{} plik\"\n"
      "msgstr[1] \"{} pliki\"\nmsgstr[2] \"{} plik\\u00f3w\"\n",
      "pl");
  ASSERT_FALSE(pl) << "\\u is no PO escape";
  pl = i18n::Catalog::parse_po(
      "msgid \"\"\nmsgstr \"Plural-Forms: nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || "
      "n%100>=20) ? 1 : 2);\\n\"\n\nmsgid \"{} file\"\nmsgid_plural \"{} files\"\nmsgstr[0] \"{} plik\"\n"
      "msgstr[1] \"{} pliki\"\nmsgstr[2] \"{} \"\n\"plik\xC3\xB3w\"\n",
      "pl");
  ASSERT_TRUE(pl) << pl.error().message;
  EXPECT_EQ(pl->trnf("{} file", "{} files", 1, 1), "1 plik");
  EXPECT_EQ(pl->trnf("{} file", "{} files", 3, 3), "3 pliki");
  EXPECT_EQ(pl->trnf("{} file", "{} files", 5, 5), "5 plik\xC3\xB3w");
  EXPECT_EQ(pl->trnf("{} file", "{} files", 22, 22), "22 pliki");
  EXPECT_EQ(pl->trnf("{} file", "{} files", 12, 12), "12 plik\xC3\xB3w");
}

TEST(ReportCatalog, PluralExpressionsAndHostileInput) {
  EXPECT_EQ(i18n::eval_plural("n != 1", 1), 0U);
  EXPECT_EQ(i18n::eval_plural("n != 1", 7), 1U);
  EXPECT_EQ(i18n::eval_plural("(n > 1)", 1), 0U);
  EXPECT_EQ(i18n::eval_plural("n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2", 21),
            0U); // Russian
  EXPECT_EQ(i18n::eval_plural("n % 0", 5), 0U) << "no division trap";
  EXPECT_EQ(i18n::eval_plural("!n", 0), 1U);
  for (const char *bad : {"", "n !", "n ? 1", "(n", "n = 1", "x", "n 1", "99999999999999999999", "n != 1)"}) {
    EXPECT_EQ(i18n::eval_plural(bad, 1), std::nullopt) << bad;
  }
  EXPECT_EQ(i18n::eval_plural(std::string(5000, '(') + "n" + std::string(5000, ')'), 1), std::nullopt)
      << "nesting bounded, no stack overflow";
  EXPECT_EQ(i18n::eval_plural(std::string(5000, '!') + "n", 1), std::nullopt);
}

TEST(ReportCatalog, MalformedPoTextIsAnErrorWithItsLine) {
  const std::pair<const char *, const char *> cases[] = {
      {"msgid \"a\"\n", "line 1"},                                  // no msgstr (reported at the end)
      {"msgid \"a\"\nmsgstr \"b\nmsgid \"c\"\n", "line 2"},         // unterminated
      {"msgid \"a\"\nmsgstr \"\\q\"\n", "line 2"},                  // unknown escape
      {"msgstr \"b\"\n", "line 1"},                                 // msgstr without msgid
      {"\"orphan\"\n", "line 1"},                                   // continuation outside an entry
      {"msgid \"a\"\nmsgstr[1] \"b\"\n", "msgstr[] indices"},       // a gap
      {"msgid \"a\"\nmsgstr[x] \"b\"\n", "line 2"},                 // not a number
      {"msgctxt \"c\"\nmsgid \"a\"\nmsgstr \"b\"\n", "msgctxt"},    // not used here
      {"msgid \"\"\nmsgstr \"Plural-Forms: nplurals=2; plural=n ?;\\n\"\n", "Plural-Forms"},
      {"hello\n", "unknown keyword"},
  };
  for (const auto &[po, where] : cases) {
    auto cat = i18n::Catalog::parse_po(po, "xx");
    ASSERT_FALSE(cat) << po;
    EXPECT_EQ(cat.error().code, maildsar::core::ErrorCode::data);
    EXPECT_NE(cat.error().message.find(where), std::string::npos) << po << ": " << cat.error().message;
  }
  // A fuzzy entry is not a translation (as msgfmt); comments and CRLF are fine.
  auto cat = i18n::Catalog::parse_po("# c\r\n#, fuzzy\r\nmsgid \"a\"\r\nmsgstr \"A?\"\r\n\r\nmsgid \"b\"\r\nmsgstr \"B\"\r\n",
                                     "xx");
  ASSERT_TRUE(cat) << cat.error().message;
  EXPECT_EQ(cat->tr("a"), "a");
  EXPECT_EQ(cat->tr("b"), "B");
  // A translation whose placeholders do not fit falls back to English, never throws.
  auto odd = i18n::Catalog::parse_po("msgid \"{} item\"\nmsgstr \"{0} {1} {2}\"\n", "xx");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->trf("{} item", 3), "3 item");
}

TEST(ReportCatalog, DatesAreWrittenPerLanguage) {
  auto de = i18n::Catalog::load("de");
  ASSERT_TRUE(de);
  EXPECT_EQ(de->date_time(1700000000), "14. November 2023, 22:13 Uhr UTC");
  EXPECT_EQ(de->date_time(1709251200), "1. M\xC3\xA4rz 2024, 00:00 Uhr UTC");
  EXPECT_EQ(i18n::Catalog().date_time(1709251200), "1 March 2024, 00:00 UTC");
}

TEST(ReportRendering, GermanReportHasNoEnglishTemplateTextAndThePdfSaysTheSame) {
  Estate e;
  make_estate(e, "de");
  ASSERT_EQ(e.config.access.language, "de");
  const q::ExportSummary s = export_in(e, "de", "de");
  const fs::path out = e.dir.path() / "de";
  // The Maildir++ folder ".Entw&APw-rfe" and the RFC 2047 subject are UTF-8 names on disk.
  // (the number in front is the item's place in the report, the rest is the date and subject)
  std::set<std::string> copies;
  for (const auto &f : fs::recursive_directory_iterator(out / "items")) {
    if (f.is_regular_file()) {
      const std::string rel = fs::relative(f.path(), out / "items").string();
      copies.insert(rel.substr(0, rel.rfind('/') + 1) + f.path().filename().string().substr(5));
    }
  }
  EXPECT_EQ(copies, (std::set<std::string>{"postfaecher/alice/Entwürfe/2023-11-16-Grüße aus Köln.eml",
                                           "postfaecher/alice/Inbox/2023-11-15-Quartalszahlen.eml"}));
  const std::string html = slurp(out / "report.html");
  EXPECT_NE(html.find("<html lang=\"de\">"), std::string::npos);
  for (const char *german : {"Kopie Ihrer personenbezogenen Daten", "Ihre Rechte", "Alle Einträge", "Was wir durchsucht haben",
                             "Erstellt am</dt><dd>14. November 2023, 22:13 Uhr UTC von dpo", "Wir haben <strong>2</strong> Einträge",
                             "in 1 Speicherort unserer", "Übermittlung in andere Länder", "Kopie öffnen", "Entwürfe"}) {
    EXPECT_NE(html.find(german), std::string::npos) << german;
  }
  // No English word of the template is left (the mail data and config here hold none of them;
  // "items" is the package's folder name and "[person 1]" the copies' placeholder, both kept).
  const std::string text = visible_text(html);
  for (const char *english : {"Request", "Who asked", "Prepared", "In short", "What we searched", "Your rights",
                              "Every item", "open copy", "Purposes", "Transfers", "Not stated", "Automated",
                              "message", "mailboxes", "never indexed", "nothing", "Where", "Total", "Subject",
                              "Copy", "rights", "person identified", "Redacted", "replaced", "mention",
                              "data", "the", "and", "our", "you", "UTC by"}) {
    EXPECT_FALSE(std::regex_search(text, std::regex(std::string("\\b") + english + "\\b"))) << english;
  }
  // report.pdf: the same content, with the umlauts, found by poppler's pdftotext.
  ASSERT_TRUE(fs::exists(out / "report.pdf"));
  EXPECT_EQ(slurp(out / "report.pdf").substr(0, 5), "%PDF-");
  if (maildsar::test::find_program("pdftotext").empty()) {
    GTEST_SKIP() << "pdftotext not installed (poppler-utils: scripts/install-deps.sh)";
  }
  const std::string pdf = pdf_text(out / "report.pdf");
  for (const char *german : {"Kopie Ihrer personenbezogenen Daten", "Ihre Rechte", "Alle Einträge", "Kurz gesagt",
                             "Übermittlung in andere Länder", "Grüße aus Köln", "Quartalszahlen", "Beispiel GmbH",
                             "14. November 2023, 22:13 Uhr UTC von dpo", "Entwürfe", "Seite 1 von"}) {
    EXPECT_NE(pdf.find(german), std::string::npos) << german << " not in:\n" << pdf;
  }
  EXPECT_EQ(pdf.find("Your rights"), std::string::npos);
  EXPECT_EQ(pdf.find("carol@other.example"), std::string::npos) << "masked in the PDF as in the HTML";
  // The manifest lists report.pdf with its checksum; the summary counts it.
  const std::string manifest = slurp(out / "manifest.json");
  EXPECT_NE(manifest.find("\"path\": \"report.pdf\""), std::string::npos);
  EXPECT_NE(manifest.find("\"language\": \"de\""), std::string::npos);
  EXPECT_EQ(s.files, 6U) << "2 copies, report.html, report.pdf, summary.csv, manifest.json";
}

TEST(ReportRendering, EnglishPdfPagesAreNumberedAndNotBlank) {
  Estate e;
  make_estate(e, "en");
  (void)export_in(e, "en", "en");
  const fs::path out = e.dir.path() / "en";
  const std::string html = slurp(out / "report.html");
  EXPECT_NE(html.find("<html lang=\"en\">"), std::string::npos);
  EXPECT_NE(html.find("Prepared on</dt><dd>14 November 2023, 22:13 UTC by dpo"), std::string::npos);
  EXPECT_NE(html.find("We found <strong>2</strong> items about you in 1 place where"), std::string::npos);
  if (maildsar::test::find_program("pdftotext").empty() || maildsar::test::find_program("pdftoppm").empty()) {
    GTEST_SKIP() << "poppler-utils not installed (scripts/install-deps.sh)";
  }
  const std::string pdf = pdf_text(out / "report.pdf");
  for (const char *english : {"Copy of your personal data held in our e-mail", "Your rights", "Every item",
                              "What we searched", "Transfers to other countries", "Grüße aus Köln", "Quartalszahlen",
                              "open copy", "Page 1 of"}) {
    EXPECT_NE(pdf.find(english), std::string::npos) << english << " not in:\n" << pdf;
  }
  // The first page as an image: not one colour.
  auto r = maildsar::test::run({maildsar::test::find_program("pdftoppm").string(), "-png", "-r", "50", "-f", "1", "-l",
                                "1", (out / "report.pdf").string(), (e.dir.path() / "page").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  fs::path png;
  for (const auto &f : fs::directory_iterator(e.dir.path())) {
    if (f.path().extension() == ".png") {
      png = f.path();
    }
  }
  ASSERT_FALSE(png.empty());
  auto colours = maildsar::test::png_colours(slurp(png));
  ASSERT_TRUE(colours);
  EXPECT_EQ(colours->width, 414U) << "A4 at 50 dpi";
  EXPECT_GT(colours->distinct, 10U) << "text and rules on the page";
  if (const char *keep = std::getenv("MAILDSAR_KEEP_PDF_PAGE")) {
    fs::copy_file(png, keep, fs::copy_options::overwrite_existing);
  }
}

TEST(ReportRendering, TheReviewPageIsInTheReportsLanguage) {
  Estate e;
  make_estate(e, "de");
  (void)export_in(e, "draft", "de", /*draft=*/true);
  const std::string review = slurp(e.dir.path() / "draft.review.html");
  EXPECT_NE(review.find("Prüfung der Schwärzungen (Entwurf)"), std::string::npos);
  EXPECT_NE(review.find("Wofür die Platzhalter stehen"), std::string::npos);
  EXPECT_NE(review.find("carol@other.example"), std::string::npos) << "the DPO sees who [person N] is";
  EXPECT_EQ(review.find("Who the placeholders stand for"), std::string::npos);
  const std::string report = slurp(e.dir.path() / "draft" / "report.html");
  EXPECT_NE(report.find("ENTWURF zur Prüfung"), std::string::npos);
}

TEST(ReportRendering, AnUnknownLanguageIsRefusedBeforeAnythingIsWritten) {
  Estate e;
  make_estate(e, "en");
  q::SubjectProfile subject;
  subject.emails = {"alice.smith@example.com"};
  q::ExportOptions opt;
  opt.out_dir = (e.dir.path() / "fr").string();
  opt.language = "fr";
  auto s = q::export_package(e.config, subject, opt);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, maildsar::core::ErrorCode::usage);
  EXPECT_NE(s.error().message.find("allowed: en, de"), std::string::npos) << s.error().message;
  EXPECT_FALSE(fs::exists(opt.out_dir));
}

TEST(ReportRendering, OurProblemTextsAreTranslatedTooAndTheManifestKeepsEnglish) {
  Estate e;
  make_estate(e, "de");
  // A message that changed after indexing: copied as it is now, with a note.
  for (const auto &f : fs::recursive_directory_iterator(e.dir.path() / "mail")) {
    if (f.is_regular_file() && f.path().string().find("Entw") != std::string::npos) {
      std::ofstream(f.path(), std::ios::app) << "ein Nachtrag\r\n";
    }
  }
  (void)export_in(e, "changed", "de");
  const fs::path out = e.dir.path() / "changed";
  const std::string html = slurp(out / "report.html");
  EXPECT_NE(html.find("der Eintrag hat sich seit der Erfassung geändert"), std::string::npos);
  EXPECT_EQ(html.find("the item changed since it was indexed"), std::string::npos);
  EXPECT_NE(slurp(out / "manifest.json").find("\"problem\": \"the item changed since it was indexed"), std::string::npos)
      << "the manifest is for programs: English";
}
