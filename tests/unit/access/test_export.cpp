// SPDX-License-Identifier: GPL-3.0-or-later
// Unit tests of the access package's building blocks and of export_package on a tiny estate.
#include "access/export.hpp"

#include "core/config.hpp"
#include "core/hash.hpp"
#include "indexer/indexer.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

using maildsar::test::ScratchDir;
namespace fs = std::filesystem;
namespace q = maildsar::access;

namespace {

std::string slurp(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace

TEST(ExportSafeName, StripsTraversalAndSeparators) {
  EXPECT_EQ(q::safe_file_name("../../etc/passwd"), "etc_passwd");
  EXPECT_EQ(q::safe_file_name(".."), "item");
  EXPECT_EQ(q::safe_file_name("a\\b:c*d?e\"f<g>h|i"), "a_b_c_d_e_f_g_h_i");
  EXPECT_EQ(q::safe_file_name(""), "item");
  EXPECT_EQ(q::safe_file_name("Inbox/..\\..\\Windows"), "Inbox_._._Windows");
}

TEST(ExportSafeName, AvoidsWindowsReservedNames) {
  EXPECT_EQ(q::safe_file_name("CON"), "_CON");
  EXPECT_EQ(q::safe_file_name("nul.txt"), "_nul.txt");
  EXPECT_EQ(q::safe_file_name("com1"), "_com1");
  EXPECT_EQ(q::safe_file_name("CONTRACT"), "CONTRACT");
}

TEST(ExportSafeName, CapsLengthAndReplacesInvalidUtf8) {
  std::string long_subject(300, 'x');
  EXPECT_EQ(q::safe_file_name(long_subject, 60).size(), 60U);
  // Valid UTF-8 stays (issue 18 item 4); the invalid bytes become one '_'.
  EXPECT_EQ(q::safe_file_name("R\xC3\xA9sum\xC3\xA9 \xFF\xFE final", 60), "R\xC3\xA9sum\xC3\xA9 _ final");
  EXPECT_EQ(q::safe_file_name("trailing dots...   "), "trailing dots");
}

TEST(ExportSafeName, KeepsNonAsciiFolderNamesReadable) {
  // Issue 18 item 4: UTF-8 names on disk, only what is unsafe replaced.
  EXPECT_EQ(q::safe_file_name("Gesendete Objekte"), "Gesendete Objekte");
  EXPECT_EQ(q::safe_file_name("Entw\xC3\xBCrfe"), "Entw\xC3\xBCrfe");
  EXPECT_EQ(q::safe_file_name("\xD0\x92\xD1\x85\xD0\xBE\xD0\xB4\xD1\x8F\xD1\x89\xD0\xB8\xD0\xB5"),
            "\xD0\x92\xD1\x85\xD0\xBE\xD0\xB4\xD1\x8F\xD1\x89\xD0\xB8\xD0\xB5"); // Входящие
  EXPECT_EQ(q::safe_file_name("\xE5\x8F\x97\xE4\xBF\xA1\xE7\xAE\xB1 \xF0\x9F\x93\xA5"),
            "\xE5\x8F\x97\xE4\xBF\xA1\xE7\xAE\xB1 \xF0\x9F\x93\xA5"); // 受信箱 and an emoji
  // Separators, NUL and control characters, leading dots, "..": replaced or dropped.
  EXPECT_EQ(q::safe_file_name("Projekte/Entw\xC3\xBCrfe"), "Projekte_Entw\xC3\xBCrfe");
  EXPECT_EQ(q::safe_file_name(std::string_view("a\0b\x01\tc\n", 7)), "a_b_c");
  EXPECT_EQ(q::safe_file_name(".hidden"), "hidden");
  EXPECT_EQ(q::safe_file_name("../\xC3\xBC/../x"), "\xC3\xBC_._x");
  EXPECT_EQ(q::safe_file_name("  many   spaces  "), "many spaces");
  // C1 controls, bidirectional overrides (a name that displays reversed), BOM.
  EXPECT_EQ(q::safe_file_name("invoice\xE2\x80\xAE" "fdp.exe"), "invoice_fdp.exe");
  EXPECT_EQ(q::safe_file_name("a\xC2\x85" "b\xEF\xBB\xBF"), "a_b");
  // A cut never splits a character: 5 bytes of "Входящие" are two letters (4 bytes).
  EXPECT_EQ(q::safe_file_name("\xD0\x92\xD1\x85\xD0\xBE\xD0\xB4", 5), "\xD0\x92\xD1\x85");
  EXPECT_EQ(q::clean_utf8(q::safe_file_name("\xF0\x9F\x93\xA5\xF0\x9F\x93\xA5", 6)), "\xF0\x9F\x93\xA5");
  // Every result of hostile bytes is valid UTF-8, without '/', NUL or a leading dot.
  std::string bytes;
  for (int seed = 1; seed < 2000; ++seed) {
    bytes.clear();
    for (int k = 0; k < seed % 37; ++k) {
      bytes.push_back(static_cast<char>((seed * 7919 + k * 104729) % 256));
    }
    const std::string name = q::safe_file_name(bytes, 1 + static_cast<std::size_t>(seed % 70));
    ASSERT_EQ(q::clean_utf8(name), name) << seed;
    ASSERT_EQ(name.find('/'), std::string::npos) << seed;
    ASSERT_EQ(name.find('\0'), std::string::npos) << seed;
    ASSERT_EQ(name.find(".."), std::string::npos) << seed;
    ASSERT_NE(name.front(), '.') << seed;
  }
}

TEST(ExportEscape, EscapesMarkupAndRepairsUtf8) {
  EXPECT_EQ(q::html_escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
  EXPECT_EQ(q::clean_utf8("ok \xC3\xA9 bad \xFF\xC0\xAF end"),
            "ok \xC3\xA9 bad \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD end");
  EXPECT_EQ(q::clean_utf8("nul\x01\x7F"), "nul\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(q::clean_utf8("trunc \xE2\x82"), "trunc \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(ExportAddresses, FindsAddressesInHeadersAndLogs) {
  auto a = q::find_addresses("\"Smith, Alice\" <alice.smith@example.com>, bob+x@corp.example.org.");
  ASSERT_EQ(a.size(), 2U);
  EXPECT_EQ(a[0], "alice.smith@example.com");
  EXPECT_EQ(a[1], "bob+x@corp.example.org");
  auto b = q::find_addresses("sasl_username=alice.smith@example.com, to=<c@d.example>");
  ASSERT_EQ(b.size(), 2U);
  EXPECT_EQ(b[0], "alice.smith@example.com");
  EXPECT_TRUE(q::find_addresses("no address @ here, user@localhost").empty());
}

TEST(OthersMasker, MasksEveryoneButTheSubject) {
  maildsar::index::Normalizer norm(maildsar::index::NormalizeOptions{});
  q::SubjectProfile subject;
  subject.emails = {"Alice.Smith@example.com"};
  subject.ips = {"203.0.113.45"};
  q::OthersMasker m(norm, subject);
  std::string line = "Nov 15 09:14:02 mx1 smtpd[1]: 4Q: client=x[203.0.113.45], sasl_username="
                     "alice.smith+news@example.com to=<bob@corp.example>, relay=r[198.51.100.7]:25, "
                     "from=<carol@other.example> [2001:db8::5] delay=1.1 time 10:00:00";
  auto out = m.mask(line);
  EXPECT_NE(out.find("203.0.113.45"), std::string::npos);
  EXPECT_NE(out.find("alice.smith+news@example.com"), std::string::npos);
  EXPECT_EQ(out.find("bob@corp.example"), std::string::npos);
  EXPECT_EQ(out.find("carol@"), std::string::npos);
  EXPECT_EQ(out.find("198.51.100.7"), std::string::npos);
  EXPECT_EQ(out.find("2001:db8::5"), std::string::npos);
  EXPECT_NE(out.find("10:00:00"), std::string::npos);
  EXPECT_NE(out.find("delay=1.1"), std::string::npos);
  EXPECT_EQ(m.masked_addresses(), 2U);
  EXPECT_EQ(m.masked_ips(), 2U);
}

TEST(ExportZip, ProducesAnArchiveUnzipAccepts) {
  ScratchDir dir;
  std::string big(100000, 'a');
  auto zip = q::make_zip({{"pkg/a.txt", "hello\n", 1700000000}, {"pkg/items/b.eml", big, 1700000000},
                          {"pkg/empty", "", 0}});
  ASSERT_TRUE(zip) << zip.error().message;
  EXPECT_LT(zip->size(), 5000U); // deflated
  EXPECT_EQ(zip->substr(0, 4), std::string("PK\x03\x04", 4));
  maildsar::test::write_file(dir.path() / "p.zip", *zip);
  auto r = maildsar::test::run({maildsar::test::find_program("python3").string(), "-c",
                                "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1])\n"
                                "assert z.testzip() is None\nprint(len(z.namelist()), len(z.read('pkg/items/b.eml')),"
                                " z.read('pkg/a.txt').decode().strip())",
                                (dir.path() / "p.zip").string()});
  if (r.exit_code == 127) {
    GTEST_SKIP() << "python3 not available: " << r.err;
  }
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "3 100000 hello\n");
}

TEST(ExportZip, NonAsciiNamesCarryTheUtf8Flag) {
  // General purpose bit 11 in the local and central headers: unzip tools show UTF-8 names.
  ScratchDir dir;
  const std::string name = "pkg/items/Entw\xC3\xBCrfe/\xD0\x92\xD1\x85.eml";
  auto zip = q::make_zip({{name, "x\n", 1700000000}});
  ASSERT_TRUE(zip);
  EXPECT_EQ(static_cast<unsigned char>((*zip)[7]) & 0x08U, 0x08U) << "local header flag bit 11";
  EXPECT_NE(zip->find(name), std::string::npos) << "the name as UTF-8 bytes";
  maildsar::test::write_file(dir.path() / "u.zip", *zip);
  auto r = maildsar::test::run({maildsar::test::find_program("python3").string(), "-c",
                                "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1])\ni=z.infolist()[0]\n"
                                "sys.stdout.buffer.write(('%d ' % (i.flag_bits & 0x800)).encode() + i.filename.encode('utf-8'))",
                                (dir.path() / "u.zip").string()});
  if (r.exit_code == 127) {
    GTEST_SKIP() << "python3 not available: " << r.err;
  }
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "2048 " + name);
}

namespace {

/** A one-mailbox estate with hostile messages, indexed. */
struct TinyEstate {
  ScratchDir dir;
  maildsar::core::Config config;
  fs::path evil;
};

void make_tiny(TinyEstate &e) {
  auto root = e.dir.path();
  auto box = root / "mail" / "alice" / "Maildir";
  for (const char *sub : {"cur", "new", "tmp", ".CON/cur", ".CON/new", ".CON/tmp"}) {
    fs::create_directories(box / sub);
  }
  std::string long_subject(300, 'L');
  e.evil = box / ".CON" / "cur" / "1700000000.1.host:2,S";
  maildsar::test::write_file(
      e.evil, "From: Alice Smith <alice.smith@example.com>\r\nTo: bob@partner.example, "
              "\"Eve\" <eve@evil.example>\r\nSubject: <script>alert(1)</script> \xFF\xFE bad " +
                  long_subject + "\r\nDate: Tue, 14 Nov 2023 10:00:00 +0000\r\nMessage-ID: <m1@x>\r\n\r\nhello\r\n");
  maildsar::test::write_file(box / "cur" / "1700000001.2.host:2,S",
                             "From: Carol <carol@other.example>\r\nTo: alice.smith@example.com\r\n"
                             "Subject: plain\r\nDate: Wed, 15 Nov 2023 10:00:00 +0000\r\n\r\nhi\r\n");
  std::string cfg = R"({"state_dir": "state", "sources": [{"name": "mailboxes", "type": "maildir",
    "path": "mail/*/Maildir", "owner": "{1}@example.com"}],
    "access": {"controller": "Example Ltd", "purposes": "mail", "internal_domains": ["example.com"],
               "retention": {"mailboxes": "six years"}}})";
  maildsar::test::write_file(root / "maildsar.json", cfg);
  auto config = maildsar::core::load_config((root / "maildsar.json").string());
  ASSERT_TRUE(config) << config.error().message;
  e.config = *config;
  auto r = maildsar::index::run_index(e.config, maildsar::index::IndexOptions{});
  ASSERT_TRUE(r) << r.error().message;
}

} // namespace

TEST(ExportPackage, HostileInputsGiveSafeNamesAndAnEscapedReport) {
  TinyEstate e;
  make_tiny(e);
  q::SubjectProfile subject;
  subject.request = "DSAR-<1>";
  subject.emails = {"alice.smith@example.com"};
  q::ExportOptions opt;
  opt.out_dir = (e.dir.path() / "out").string();
  opt.operator_name = "dpo";
  opt.redact_others = q::RedactOthers::yes;
  auto s = q::export_package(e.config, subject, opt);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->items, 2U);
  EXPECT_EQ(s->copied, 2U);
  auto out = fs::path(opt.out_dir);
  bool saw_evil = false;
  for (const auto &f : fs::recursive_directory_iterator(out)) {
    auto rel = fs::relative(f.path(), out).string();
    EXPECT_EQ(rel.find(".."), std::string::npos) << rel;
    EXPECT_LE(f.path().filename().string().size(), 80U) << rel;
    EXPECT_NE(f.path().filename().string(), "CON");
    if (f.is_regular_file() && rel.find("_CON") != std::string::npos) {
      // The copy of the hostile message, redacted for other people (Art. 15(4)).
      saw_evil = true;
      const std::string copy = slurp(f.path());
      EXPECT_NE(copy, slurp(e.evil));
      EXPECT_EQ(copy.find("eve@evil.example"), std::string::npos) << copy;
      EXPECT_NE(copy.find("X-Maildsar-Redacted: "), std::string::npos) << copy;
    }
  }
  EXPECT_TRUE(saw_evil);
  auto report = slurp(out / "report.html");
  EXPECT_EQ(q::clean_utf8(report), report); // valid UTF-8, no control characters
  EXPECT_EQ(report.find("<script"), std::string::npos);
  EXPECT_NE(report.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(report.find("DSAR-&lt;1&gt;"), std::string::npos);
  EXPECT_NE(report.find("partner.example"), std::string::npos); // external domain
  EXPECT_EQ(report.find("eve@evil.example"), std::string::npos); // masked
  EXPECT_EQ(report.find("carol@other.example"), std::string::npos);
  EXPECT_NE(report.find("six years"), std::string::npos);
  EXPECT_NE(report.find("Example Ltd"), std::string::npos);
  auto manifest = nlohmann::json::parse(slurp(out / "manifest.json"));
  EXPECT_EQ(manifest["request"], "DSAR-<1>");
  for (const auto &f : manifest["files"]) {
    auto data = slurp(out / f["path"].get<std::string>());
    EXPECT_EQ(maildsar::core::sha256_hex(data), f["sha256"].get<std::string>());
    EXPECT_EQ(data.size(), f["size"].get<std::size_t>());
  }
  EXPECT_EQ(s->package_hash, maildsar::core::sha256_hex(slurp(out / "manifest.json")));
  auto audit = slurp(fs::path(e.config.state_dir) / "audit.log");
  EXPECT_NE(audit.find("\"export\""), std::string::npos);
  EXPECT_NE(audit.find(s->package_hash), std::string::npos);
  EXPECT_EQ(audit.find("alice.smith"), std::string::npos);
}

TEST(ExportPackage, RefusesANonEmptyDirectoryWithoutForce) {
  TinyEstate e;
  make_tiny(e);
  q::SubjectProfile subject;
  subject.emails = {"alice.smith@example.com"};
  q::ExportOptions opt;
  opt.out_dir = (e.dir.path() / "busy").string();
  maildsar::test::write_file(e.dir.path() / "busy" / "keep.txt", "x");
  auto s = q::export_package(e.config, subject, opt);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, maildsar::core::ErrorCode::cant_create);
  EXPECT_EQ(slurp(e.dir.path() / "busy" / "keep.txt"), "x");
  // --force replaces an earlier package of ours only, never someone else's files.
  opt.force = q::Overwrite::yes;
  auto refused = q::export_package(e.config, subject, opt);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, maildsar::core::ErrorCode::cant_create);
  EXPECT_NE(refused.error().message.find("no earlier maildsar package"), std::string::npos) << refused.error().message;
  EXPECT_EQ(slurp(e.dir.path() / "busy" / "keep.txt"), "x");
  opt.out_dir = (e.dir.path() / "pkg").string();
  opt.force = q::Overwrite::no;
  ASSERT_TRUE(q::export_package(e.config, subject, opt));
  opt.force = q::Overwrite::yes;
  opt.zip = q::ZipPackage::yes;
  auto forced = q::export_package(e.config, subject, opt);
  ASSERT_TRUE(forced) << forced.error().message;
  EXPECT_EQ(forced->zip_path, opt.out_dir + ".zip");
  EXPECT_EQ(forced->package_hash, maildsar::core::sha256_hex(slurp(forced->zip_path)));
}

TEST(ExportPackage, TheReportStatesWhatTheConfigSaysAndNeverInventsTheRest) {
  // Issue 18 item 4: automated decision-making and third-country transfers come from the
  // config; unset, the report says they are not stated (and export warns: missing_access_information).
  TinyEstate e;
  make_tiny(e);
  q::SubjectProfile subject;
  subject.emails = {"alice.smith@example.com"};
  auto missing = q::missing_access_information(e.config.access);
  EXPECT_NE(std::find(missing.begin(), missing.end(), "automated_decisions"), missing.end());
  EXPECT_NE(std::find(missing.begin(), missing.end(), "transfers"), missing.end());
  EXPECT_EQ(std::find(missing.begin(), missing.end(), "controller"), missing.end());
  q::ExportOptions opt;
  opt.out_dir = (e.dir.path() / "unset").string();
  ASSERT_TRUE(q::export_package(e.config, subject, opt));
  std::string report = slurp(fs::path(opt.out_dir) / "report.html");
  EXPECT_EQ(report.find("None: we make no automated decisions"), std::string::npos);
  EXPECT_NE(report.find("Automated decision-making</dt><dd>Not stated in this report."), std::string::npos);
  EXPECT_NE(report.find("Transfers to other countries</dt><dd>Not stated in this report."), std::string::npos);

  e.config.access.automated_decisions = "We make no automated decisions about you.";
  e.config.access.transfers = {"United States: Standard Contractual Clauses (backup provider)"};
  opt.out_dir = (e.dir.path() / "set").string();
  ASSERT_TRUE(q::export_package(e.config, subject, opt));
  e.config.sources.front().description = "Staff mailboxes";
  report = "";
  ASSERT_TRUE(q::export_package(e.config, subject, [&] {
    auto o = opt;
    o.out_dir = (e.dir.path() / "described").string();
    return o;
  }()));
  const std::string described = slurp(e.dir.path() / "described" / "report.html");
  EXPECT_NE(described.find("<td>Staff mailboxes</td>"), std::string::npos) << "plain words, not 'mailboxes'";
  EXPECT_NE(described.find("<li>Staff mailboxes: six years</li>"), std::string::npos);
  EXPECT_NE(described.find("<span class=\"small\">Staff mailboxes</span>"), std::string::npos) << "item rows too";
  EXPECT_EQ(described.find("<span class=\"small\">mailboxes</span>"), std::string::npos);
  report = slurp(fs::path(opt.out_dir) / "report.html");
  EXPECT_NE(report.find("<dd>We make no automated decisions about you.</dd>"), std::string::npos);
  EXPECT_NE(report.find("<li>United States: Standard Contractual Clauses (backup provider)</li>"), std::string::npos);
  EXPECT_EQ(report.find("entrys"), std::string::npos);
}
