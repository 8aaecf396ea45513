// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end tests: run the built maildsar binary on copied/generated estates and check its
// --json output and exit codes.
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "tests/e2e/estate.hpp"
#include "tests/e2e/e2e_support.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

using maildsar::test::ScratchDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using maildsar::test::json_lines;
using maildsar::test::maildsar_run;

std::string key_of(const json &hit) {
  std::string key = hit.at("path").get<std::string>();
  if (hit.at("store") == "mbox") {
    key += "@" + std::to_string(hit.at("offset").get<std::uint64_t>());
  }
  return key;
}

std::map<std::string, json> hits_by_key(const std::string &out) {
  std::map<std::string, json> m;
  for (auto &h : json_lines(out)) {
    m[key_of(h)] = h;
  }
  return m;
}

using maildsar::test::index_json;
using maildsar::test::source_counts;

std::set<std::string> roles_of(const json &hit, const std::string &identifier) {
  std::set<std::string> roles;
  for (const auto &m : hit.at("matched")) {
    if (m.at("identifier") == identifier) {
      for (const auto &r : m.at("roles")) {
        roles.insert(r.get<std::string>());
      }
    }
  }
  return roles;
}

} // namespace

TEST(CliSampleEstate, IndexAndFindTheSampleSubject) {
  ScratchDir dir;
  maildsar::test::copy_tree(maildsar::test::source_dir() / "samples", dir.path());
  auto cfg = dir / "maildsar.json";
  json summary = index_json(cfg);
  EXPECT_EQ(summary.at("errors"), 0);
  EXPECT_EQ(source_counts(summary, "mailboxes").at("items"), 6);
  EXPECT_EQ(source_counts(summary, "archive").at("items"), 3);
  EXPECT_EQ(source_counts(summary, "amavis").at("items"), 2);
  EXPECT_EQ(source_counts(summary, "postfix").at("items"), 4);

  auto r = maildsar_run({"-c", cfg.string(), "find", "--subject", (dir / "subject.json").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto hits = hits_by_key(r.out);
  std::set<std::string> keys;
  for (auto &[k, v] : hits) {
    keys.insert(k.substr(dir.path().string().size() + 1));
  }
  std::set<std::string> want{
      "archive/2023.mbox@0",
      "mail/example.com/alice.smith/Maildir/.Sent/cur/1700000200.M3P100.mx1:2,S",
      "mail/example.com/alice.smith/Maildir/cur/1700000000.M1P100.mx1:2,S",
      "mail/example.com/alice.smith/Maildir/new/1700000100.M2P100.mx1",
      "mail/example.com/bob.jones/Maildir/.Archive/cur/1700000500.M6P100.mx1:2,S",
      "mail/example.com/bob.jones/Maildir/cur/1700000300.M4P100.mx1:2,RS",
      "quarantine/amavis/spam-Qw3eR5tY7uI9",
      "quarantine/amavis/s/spam-sP4dF6gH8jK0.gz",
      "logs/mail.log",   // the postfix transaction she sent from 203.0.113.45
      "logs/mail.log.1", // her dovecot IMAP session
  };
  // the third archive message (Reply-To + body name) is hers too
  for (auto &[k, v] : hits) {
    if (v.at("store") == "mbox" && v.at("offset") != 0) {
      want.insert(k.substr(dir.path().string().size() + 1));
      EXPECT_TRUE(roles_of(v, "alice.smith@example.com").contains("reply-to")) << v.dump();
    }
  }
  EXPECT_EQ(keys, want);
  EXPECT_EQ(hits.size(), 11U);
}

class CliPlanted : public ::testing::Test {
protected:
  void SetUp() override { estate = maildsar::test::make_planted_estate(dir.path()); }
  maildsar::test::RunResult find_json() {
    return maildsar_run({"-c", estate.config.string(), "find", "--subject", estate.subject.string(), "--json"});
  }
  ScratchDir dir;
  maildsar::test::PlantedEstate estate;
};

TEST_F(CliPlanted, FullRecallAndNoFalsePositives) {
  json summary = index_json(estate.config);
  EXPECT_EQ(summary.at("errors"), 0) << summary.dump();
  auto r = find_json();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto hits = hits_by_key(r.out);
  for (const auto &want : estate.expected) {
    EXPECT_TRUE(hits.contains(want)) << "missed: " << want;
  }
  for (const auto &miss : estate.near_misses) {
    EXPECT_FALSE(hits.contains(miss)) << "false positive: " << miss << " " << hits[miss].dump();
  }
  EXPECT_EQ(hits.size(), estate.expected.size());
}

TEST_F(CliPlanted, HitsCarryLocatorsAndRoles) {
  index_json(estate.config);
  auto hits = hits_by_key(find_json().out);
  auto carol = (estate.root / "mail/example.com/carol.white/Maildir/cur").string();
  auto find_by_mid = [&](const std::string &stem) -> json {
    for (auto &[k, v] : hits) {
      if (v.value("message_id", "").rfind(stem + "-", 0) == 0) {
        return v;
      }
    }
    ADD_FAILURE() << "no hit for " << stem;
    return json::object({{"matched", json::array()}});
  };
  const std::string email = "alice.smith@example.com";
  EXPECT_TRUE(roles_of(find_by_mid("from"), email).contains("from"));
  EXPECT_TRUE(roles_of(find_by_mid("to"), email).contains("to"));
  EXPECT_TRUE(roles_of(find_by_mid("cc"), email).contains("cc"));
  EXPECT_TRUE(roles_of(find_by_mid("bcc"), email).contains("bcc"));
  EXPECT_TRUE(roles_of(find_by_mid("replyto"), email).contains("reply-to"));
  EXPECT_TRUE(roles_of(find_by_mid("sender"), email).contains("sender"));
  EXPECT_TRUE(roles_of(find_by_mid("deliveredto"), email).contains("delivered-to"));
  EXPECT_TRUE(roles_of(find_by_mid("returnpath"), email).contains("return-path"));
  EXPECT_TRUE(roles_of(find_by_mid("received4"), "203.0.113.45").contains("received"));
  EXPECT_TRUE(roles_of(find_by_mid("bodyaddr"), email).contains("body"));
  EXPECT_TRUE(roles_of(find_by_mid("subaddr"), email).contains("to"));
  EXPECT_TRUE(roles_of(find_by_mid("rfc2047name"), "Alice Smith").contains("from"));
  EXPECT_TRUE(roles_of(find_by_mid("attname"), "Alice Smith").contains("attachment-name"));
  EXPECT_TRUE(roles_of(find_by_mid("attbody"), "+44 20 7946 0123").contains("attachment-body"));

  json from = find_by_mid("from");
  EXPECT_EQ(from.at("store"), "maildir");
  EXPECT_EQ(from.at("source"), "mailboxes");
  EXPECT_EQ(from.at("path").get<std::string>().rfind(carol, 0), 0U);
  EXPECT_EQ(from.at("date"), "2023-11-14T10:00:00Z");
  EXPECT_EQ(from.at("subject"), "hello");
  EXPECT_EQ(from.at("sha256").get<std::string>().size(), 64U);
  EXPECT_FALSE(from.at("id").get<std::string>().empty());

  auto owned = hits.at((estate.root / "mail/example.com/alice.smith/Maildir/cur/1700088888.M1P1.gen:2,S").string());
  EXPECT_TRUE(roles_of(owned, email).contains("owner")) << owned.dump();

  auto mbox_hit = hits.at(estate.mbox.string() + "@0");
  EXPECT_EQ(mbox_hit.at("store"), "mbox");
  EXPECT_GT(mbox_hit.at("length").get<std::uint64_t>(), 0U);
  std::string bytes = maildsar::test::read_file(estate.mbox).substr(0, mbox_hit.at("length").get<std::size_t>());
  EXPECT_EQ(mbox_hit.at("sha256"), maildsar::core::sha256_hex(bytes));
}

TEST_F(CliPlanted, SingleIdentifierFlagsAndHumanOutput) {
  index_json(estate.config);
  auto r = maildsar_run({"find", "--ip", "203.0.113.45", "-c", estate.config.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_lines(r.out).size(), 1U);
  auto human = maildsar_run({"-c", estate.config.string(), "find", "--phone", "020 7946 0123"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("item(s) held for"), std::string::npos) << human.out;
  auto none = maildsar_run({"-c", estate.config.string(), "find", "--email", "nobody@nowhere.example", "--json"});
  EXPECT_EQ(none.exit_code, 0);
  EXPECT_TRUE(none.out.empty());
}

TEST_F(CliPlanted, IncrementalAddRemoveAppendNoop) {
  json first = index_json(estate.config);
  auto mb = source_counts(first, "mailboxes");
  EXPECT_EQ(mb.at("new"), mb.at("items"));
  json noop = index_json(estate.config);
  for (const auto &s : noop.at("sources")) {
    EXPECT_EQ(s.at("new"), 0) << s.dump();
    EXPECT_EQ(s.at("changed"), 0) << s.dump();
    EXPECT_EQ(s.at("removed"), 0) << s.dump();
  }
  auto carol = estate.root / "mail/example.com/carol.white/Maildir";
  maildsar::test::write_file(carol / "new/1800000000.M1P1.gen",
                             "From: Alice Smith <alice.smith@example.com>\nSubject: late\n\nNew.\n");
  for (const auto &k : estate.expected) {
    if (k.find("carol.white/Maildir/cur/") != std::string::npos) {
      fs::remove(k);
      break;
    }
  }
  {
    std::ofstream f(estate.mbox, std::ios::app | std::ios::binary);
    f << "From alice.smith@example.com Thu Oct  5 08:00:00 2023\nFrom: alice.smith@example.com\n"
         "Subject: appended\nMessage-ID: <mb-4@gen.example>\n\nAppended.\n\n";
  }
  json second = index_json(estate.config);
  auto mb2 = source_counts(second, "mailboxes");
  EXPECT_EQ(mb2.at("new"), 1);
  EXPECT_EQ(mb2.at("removed"), 1);
  EXPECT_EQ(mb2.at("items"), mb.at("items"));
  auto ar = source_counts(second, "archive");
  EXPECT_EQ(ar.at("new"), 1) << ar.dump();
  EXPECT_EQ(ar.at("changed"), 0) << "an mbox that only grew is indexed from its old end";
  EXPECT_EQ(ar.at("items"), 4);
  auto hits = hits_by_key(find_json().out);
  EXPECT_EQ(hits.size(), estate.expected.size() + 1); // one removed, two added

  // rewriting the mbox (not an append) re-indexes it
  std::string content = maildsar::test::read_file(estate.mbox);
  maildsar::test::write_file(estate.mbox, content.substr(content.find("\nFrom dave") + 1));
  json third = index_json(estate.config);
  auto ar3 = source_counts(third, "archive");
  EXPECT_EQ(ar3.at("items"), 3) << ar3.dump();
}

TEST(CliBadInput, ProblemsAreCountedAndIndexingGoesOn) {
  ScratchDir dir;
  auto md = dir / "mail/example.com/eve/Maildir";
  maildsar::test::write_file(md / "cur/1.good:2,S", "From: eve@example.com\nTo: alice.smith@example.com\nSubject: ok\n\nfine\n");
  std::string binary(4096, '\0');
  for (std::size_t i = 0; i < binary.size(); ++i) {
    binary[i] = static_cast<char>((i * 131) % 256);
  }
  maildsar::test::write_file(md / "cur/2.binary:2,S", binary);
  maildsar::test::write_file(md / "cur/3.badutf8:2,S", "From: \xff\xfe Eve <eve@example.com>\nTo: alice.smith@example.com\nSubject: \xc3\x28 bad\n\nbody \xff\n");
  maildsar::test::write_file(md / "cur/4.longheader:2,S",
                             "From: eve@example.com\nX-Long: " + std::string(10 << 20, 'a') +
                                 "\nTo: alice.smith@example.com\nSubject: long\n\nbody\n");
  maildsar::test::write_file(dir / "outside/secret", "From: x@example.com\n\nx\n");
  fs::create_symlink(dir / "outside/secret", md / "cur/5.symlink:2,S");
  maildsar::test::write_file(md / "cur/6.unreadable:2,S", "From: eve@example.com\nTo: alice.smith@example.com\n\nx\n");
  fs::permissions(md / "cur/6.unreadable:2,S", fs::perms::none);
  maildsar::test::write_file(dir / "archive/truncated.mbox",
                             "From a@example.com Mon Oct  2 09:00:00 2023\nFrom: a@example.com\nTo: alice.smith@example.com\n"
                             "Subject: one\n\nbody\n\nFrom b@example.com Mon Oct  2 09:00:00 2023\nFrom: b@exa");
  maildsar::test::write_file(dir / "archive/notanmbox.mbox", binary);
  maildsar::test::write_file(dir / "maildsar.json", R"({"sources": [
    {"name": "mailboxes", "type": "maildir", "path": "mail/example.com/*/Maildir"},
    {"name": "archive", "type": "mbox", "path": "archive/*.mbox"}]})");
  auto r = maildsar_run({"-c", (dir / "maildsar.json").string(), "index", "--json"});
  EXPECT_EQ(r.exit_code, 1) << "a run with problems is not a green run\n" << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1U) << r.out;
  EXPECT_GE(lines[0].at("errors").get<int>(), 3) << r.err;
  EXPECT_NE(r.err.find("2.binary"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("5.symlink"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("notanmbox.mbox"), std::string::npos) << r.err;
  if (::geteuid() != 0) {
    EXPECT_NE(r.err.find("6.unreadable"), std::string::npos) << r.err;
  }
  auto f = maildsar_run({"-c", (dir / "maildsar.json").string(), "find", "--email", "alice.smith@example.com", "--json"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  auto hits = hits_by_key(f.out);
  EXPECT_TRUE(hits.contains((md / "cur/1.good:2,S").string()));
  EXPECT_TRUE(hits.contains((md / "cur/3.badutf8:2,S").string()));
  EXPECT_TRUE(hits.contains((md / "cur/4.longheader:2,S").string()));
  EXPECT_TRUE(hits.contains((dir / "archive/truncated.mbox").string() + "@0"));
  for (auto &[k, v] : hits) {
    EXPECT_EQ(k.find("outside"), std::string::npos) << "followed a symlink out of the root";
  }
}

TEST(CliUsage, ExitCodesAndErrors) {
  ScratchDir dir;
  maildsar::test::write_file(dir / "maildsar.json", R"({"sources": []})");
  auto cfg = (dir / "maildsar.json").string();
  EXPECT_EQ(maildsar_run({"-c", cfg, "find"}).exit_code, 64);
  EXPECT_EQ(maildsar_run({"frobnicate"}).exit_code, 64);
  EXPECT_EQ(maildsar_run({"-c", cfg, "index", "--no-such-option"}).exit_code, 64);
  EXPECT_EQ(maildsar_run({"--help"}).exit_code, 0);
  auto help = maildsar_run({"find", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--email"), std::string::npos);
  EXPECT_NE(help.out.find("Examples"), std::string::npos);
  auto version = maildsar_run({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.out.find("GMime"), std::string::npos);
  EXPECT_NE(version.out.find("Xapian"), std::string::npos);

  auto missing = maildsar_run({"-c", (dir / "nope.json").string(), "index"});
  EXPECT_EQ(missing.exit_code, 66);
  EXPECT_NE(missing.err.find("nope.json"), std::string::npos);

  maildsar::test::write_file(dir / "bad.json", "{\n  \"sources\": [],\n  \"stat_dir\": \"x\"\n}\n");
  auto bad = maildsar_run({"index", "--json", "-c", (dir / "bad.json").string()});
  EXPECT_EQ(bad.exit_code, 78);
  EXPECT_NE(bad.err.find("bad.json:3:3"), std::string::npos) << bad.err;
  auto err = json_lines(bad.out);
  ASSERT_EQ(err.size(), 1U);
  EXPECT_EQ(err[0].at("error").at("code"), "config");

  // no index yet: zero hits, success
  auto empty = maildsar_run({"-c", cfg, "find", "--email", "a@example.com", "--json"});
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_TRUE(empty.out.empty());
  // an identifier that is not one
  EXPECT_EQ(maildsar_run({"-c", cfg, "find", "--email", "not an address"}).exit_code, 64);
  // $MAILDSAR_CONFIG and ./maildsar.json defaults
  EXPECT_EQ(maildsar_run({"index"}, dir.path()).exit_code, 0);
}

TEST(CliLocking, SecondIndexerGetsTempFail) {
  ScratchDir dir;
  maildsar::test::copy_tree(maildsar::test::source_dir() / "samples", dir.path());
  auto cfg = (dir / "maildsar.json").string();
  ASSERT_EQ(maildsar_run({"-c", cfg, "index"}).exit_code, 0);
  auto lock = maildsar::core::FileLock::try_acquire((dir / "state/index.lock").string(), "");
  ASSERT_TRUE(lock);
  auto r = maildsar_run({"-c", cfg, "index"});
  EXPECT_EQ(r.exit_code, 75);
  EXPECT_NE(r.err.find("lock"), std::string::npos) << r.err;
  // find keeps answering from the last committed state while the indexer lock is held
  auto f = maildsar_run({"-c", cfg, "find", "--subject", (dir / "subject.json").string(), "--json"});
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(json_lines(f.out).size(), 11U);
}

// The libraries loaded on first use (core/module.hpp, connectors/libarchive.hpp) stay out of
// the runs that need none of them: a no-op index and a find map neither OpenSSL (signing),
// libphonenumber (phone numbers), Pango and cairo (report.pdf), libxml2 (HTML redaction) nor
// libarchive (backup archives); each cost milliseconds of every start.
TEST(CliStartUp, ANoOpIndexAndAFindLoadNoModuleLibrary) {
  ScratchDir dir;
  maildsar::test::copy_tree(maildsar::test::source_dir() / "samples", dir.path());
  const auto cfg = dir / "maildsar.json";
  ASSERT_EQ(index_json(cfg).at("errors"), 0);
  const std::vector<std::vector<std::string>> runs{
      {"-c", cfg.string(), "--json", "index"},
      {"-c", cfg.string(), "find", "--email", "alice.smith@example.com", "--json"}};
  for (const auto &args : runs) {
    auto r = maildsar::test::run(maildsar::test::maildsar_argv(args), {}, {"LD_DEBUG=files"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_NE(r.err.find("file=libc.so.6"), std::string::npos) << "the dynamic loader wrote no trace";
    if (r.err.find("libasan") != std::string::npos) {
      GTEST_SKIP() << "sanitizer builds link the modules in";
    }
    for (const char *lib : {"libcrypto.so", "libmaildsar-sign.so", "libphonenumber.so", "libmaildsar-phone.so",
                            "libpango", "libcairo.so", "libmaildsar-pdf.so", "libxml2.so", "libicuuc.so",
                            "libmaildsar-html.so", "libarchive.so", "liblzma.so"}) {
      EXPECT_EQ(r.err.find(lib), std::string::npos) << args[3] << " loaded " << lib;
    }
  }
}
