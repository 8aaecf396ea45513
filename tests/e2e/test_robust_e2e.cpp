// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end regression tests of issue 13's robustness items: no answer without a search
// (never-indexed sources), the removal guard, overlapping sources, the state directory inside a
// store, and input validation. Each runs the built binary on a copy of samples/.
#include "tests/e2e/e2e_support.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

using maildsar::test::ds;
using maildsar::test::json_lines;
using maildsar::test::maildsar_run;
using maildsar::test::RunResult;
using maildsar::test::ScratchDir;
using maildsar::test::write_file;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char *k_alice = "alice.smith@example.com";

/** A copy of samples/ in a scratch directory. */
struct Samples {
  ScratchDir dir;
  fs::path cfg;
  Samples() {
    maildsar::test::copy_tree(maildsar::test::source_dir() / "samples", dir.path());
    cfg = dir / "maildsar.json";
  }
  [[nodiscard]] fs::path operator/(const std::string &rel) const { return dir / rel; }
};

/** The "error" object of a --json failure (null if none). */
json error_of(const RunResult &r) {
  for (const json &j : json_lines(r.out)) {
    if (j.contains("error")) {
      return j.at("error");
    }
  }
  return nullptr;
}

/** Writes a config with `sources` (a JSON array text) and `extra` top-level members. */
fs::path write_config(const fs::path &dir, const std::string &sources, const std::string &extra = {}) {
  fs::path cfg = dir / "robust.json";
  write_file(cfg, fmt::format(R"({{"state_dir": "state", "sources": {}{}}})", sources,
                              extra.empty() ? "" : ", " + extra));
  return cfg;
}

/** A minimal Maildir message from `from`. */
std::string message(const std::string &from, int n) {
  return fmt::format("From: {}\r\nTo: someone@example.org\r\nSubject: note {}\r\nMessage-ID: "
                     "<n{}@example.org>\r\nDate: Tue, 14 Nov 2023 10:00:00 +0000\r\n\r\nhello {}\r\n",
                     from, n, n, n);
}

/** A Maildir at `dir` holding `count` messages from Alice. */
void make_maildir(const fs::path &dir, int count) {
  fs::create_directories(dir / "cur");
  fs::create_directories(dir / "new");
  fs::create_directories(dir / "tmp");
  for (int i = 0; i < count; ++i) {
    write_file(dir / "cur" / fmt::format("17000000{:02}.M{}P1.mx:2,S", i, i), message(k_alice, i));
  }
}

std::size_t hit_count(const RunResult &r) { return json_lines(r.out).size(); }

} // namespace

// ---- Item 9: no answer for what was not searched ----------------------------------------------

TEST(NotIndexed, FindWithoutAnyIndexIsAnErrorNamingEverySource) {
  Samples s;
  auto r = ds(s.cfg, {"find", "--email", k_alice});
  EXPECT_EQ(r.exit_code, 69) << r.err;
  EXPECT_NE(r.err.find("never indexed: mailboxes, archive, amavis, postfix"), std::string::npos) << r.err;
  EXPECT_EQ(error_of(r).at("code"), "not_indexed");
  auto human = maildsar_run({"-c", s.cfg.string(), "find", "--email", k_alice});
  EXPECT_EQ(human.exit_code, 69);
  EXPECT_EQ(human.out.find("item(s) held"), std::string::npos) << human.out;
}

TEST(NotIndexed, PlanWithoutIndexWritesNoManifest) {
  Samples s;
  auto r = ds(s.cfg, {"plan", "--email", k_alice, "--out", (s / "m.json").string()});
  EXPECT_EQ(r.exit_code, 69) << r.err;
  EXPECT_FALSE(fs::exists(s / "m.json"));
}

TEST(NotIndexed, ExportVerifyAndTraceWithoutIndexRefuse) {
  Samples s;
  auto e = ds(s.cfg, {"export", "--email", k_alice, "--out", (s / "pkg").string()});
  EXPECT_EQ(e.exit_code, 69) << e.err;
  EXPECT_FALSE(fs::exists(s / "pkg"));
  auto v = ds(s.cfg, {"verify", "--email", k_alice, "--out", (s / "cert.json").string()});
  EXPECT_EQ(v.exit_code, 69) << v.err;
  EXPECT_FALSE(fs::exists(s / "cert.json"));
  auto t = ds(s.cfg, {"trace", "20231114100000.1234@mx1.example.com"});
  EXPECT_EQ(t.exit_code, 69) << t.err;
}

TEST(NotIndexed, ASourceAddedAfterIndexingIsNamedUntilIndexed) {
  ScratchDir dir;
  make_maildir(dir / "a", 1);
  make_maildir(dir / "b", 1);
  auto cfg = write_config(dir.path(), R"([{"name": "a", "type": "maildir", "path": "a"}])");
  ASSERT_EQ(maildsar_run({"-c", cfg.string(), "index"}).exit_code, 0);
  EXPECT_EQ(hit_count(ds(cfg, {"find", "--email", k_alice})), 1U);
  cfg = write_config(dir.path(), R"([{"name": "a", "type": "maildir", "path": "a"},
                                     {"name": "b", "type": "maildir", "path": "b"}])");
  auto r = ds(cfg, {"find", "--email", k_alice});
  EXPECT_EQ(r.exit_code, 69) << r.err;
  EXPECT_NE(r.err.find("never indexed: b"), std::string::npos) << r.err;
  auto status = ds(cfg, {"status"});
  EXPECT_EQ(status.exit_code, 1);
  ASSERT_EQ(maildsar_run({"-c", cfg.string(), "index"}).exit_code, 0);
  auto ok = ds(cfg, {"find", "--email", k_alice});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(hit_count(ok), 2U);
}

TEST(NotIndexed, ASourceWhosePathChangedIsNotIndexedAsConfigured) {
  ScratchDir dir;
  make_maildir(dir / "a", 1);
  make_maildir(dir / "b", 2);
  auto cfg = write_config(dir.path(), R"([{"name": "m", "type": "maildir", "path": "a"}])");
  ASSERT_EQ(maildsar_run({"-c", cfg.string(), "index"}).exit_code, 0);
  cfg = write_config(dir.path(), R"([{"name": "m", "type": "maildir", "path": "b"}])");
  auto r = ds(cfg, {"find", "--email", k_alice});
  EXPECT_EQ(r.exit_code, 69) << r.err;
  EXPECT_NE(r.err.find("configuration changed: m"), std::string::npos) << r.err;
  // The old path's one file vanishing is all of what the source had: accepted explicitly.
  ASSERT_EQ(maildsar_run({"-c", cfg.string(), "index", "--accept-removal", "m"}).exit_code, 0);
  auto ok = ds(cfg, {"find", "--email", k_alice});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(hit_count(ok), 2U);
}

// ---- Item 10: the removal guard ------------------------------------------------------------------

TEST(RemovalGuard, AMissingSourceRootKeepsItsItemsUntilAccepted) {
  Samples s;
  ASSERT_EQ(maildsar_run({"-c", s.cfg.string(), "index"}).exit_code, 0);
  const std::size_t before = hit_count(ds(s.cfg, {"find", "--email", k_alice}));
  ASSERT_GT(before, 0U);
  fs::rename(s / "mail", s / "mail.unmounted"); // the share is gone

  auto r = ds(s.cfg, {"index"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("is missing"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--accept-removal mailboxes"), std::string::npos) << r.err;
  auto summary = json_lines(r.out).at(0);
  for (const json &src : summary.at("sources")) {
    if (src.at("name") == "mailboxes") {
      EXPECT_EQ(src.at("removed"), 0);
      EXPECT_EQ(src.at("items"), 6);
      EXPECT_TRUE(src.contains("held_removal"));
    }
  }
  EXPECT_EQ(hit_count(ds(s.cfg, {"find", "--email", k_alice})), before);

  auto status = ds(s.cfg, {"status"});
  EXPECT_EQ(status.exit_code, 1);
  json st = json_lines(status.out).at(0);
  EXPECT_TRUE(st.at("degraded").get<bool>());
  auto human = maildsar_run({"-c", s.cfg.string(), "status"});
  EXPECT_NE(human.out.find("DEGRADED"), std::string::npos) << human.out;

  // A second run still refuses; accepting drops them.
  EXPECT_EQ(ds(s.cfg, {"index"}).exit_code, 1);
  auto accepted = ds(s.cfg, {"index", "--accept-removal", "mailboxes"});
  EXPECT_EQ(accepted.exit_code, 0) << accepted.err;
  const json accepted_summary = json_lines(accepted.out).at(0);
  for (const json &src : accepted_summary.at("sources")) {
    if (src.at("name") == "mailboxes") {
      EXPECT_EQ(src.at("removed"), 6);
    }
  }
  EXPECT_EQ(ds(s.cfg, {"status"}).exit_code, 0);
}

TEST(RemovalGuard, AGlobThatMatchesNothingAnyMoreKeepsTheItems) {
  Samples s;
  ASSERT_EQ(maildsar_run({"-c", s.cfg.string(), "index"}).exit_code, 0);
  fs::rename(s / "archive/2023.mbox", s / "archive/2023.mbox.moved"); // the glob is *.mbox
  auto r = ds(s.cfg, {"index"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("matched 1 file(s) before and none now"), std::string::npos) << r.err;
  const json summary = json_lines(r.out).at(0);
  for (const json &src : summary.at("sources")) {
    if (src.at("name") == "archive") {
      EXPECT_EQ(src.at("removed"), 0);
      EXPECT_EQ(src.at("items"), 3);
    }
  }
  EXPECT_EQ(json_lines(ds(s.cfg, {"status"}).out).at(0).at("degraded"), true);
  // When the file comes back, all is well again without accepting anything.
  fs::rename(s / "archive/2023.mbox.moved", s / "archive/2023.mbox");
  EXPECT_EQ(ds(s.cfg, {"index"}).exit_code, 0);
  EXPECT_EQ(ds(s.cfg, {"status"}).exit_code, 0);
}

TEST(RemovalGuard, ADropOfMoreThanTheConfiguredShareIsHeld) {
  ScratchDir dir;
  make_maildir(dir / "m", 4);
  const std::string sources = R"([{"name": "m", "type": "maildir", "path": "m"}])";
  auto cfg = write_config(dir.path(), sources);
  ASSERT_EQ(maildsar_run({"-c", cfg.string(), "index"}).exit_code, 0);
  auto files = std::vector<fs::path>(fs::directory_iterator(dir / "m/cur"), fs::directory_iterator());
  std::sort(files.begin(), files.end());
  fs::remove(files[0]); // 1 of 4 (25%): fine
  auto one = ds(cfg, {"index"});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(json_lines(one.out).at(0).at("sources").at(0).at("removed"), 1);
  fs::remove(files[1]);
  fs::remove(files[2]); // 2 of 3 (67%): held
  auto two = ds(cfg, {"index"});
  EXPECT_EQ(two.exit_code, 1) << two.err;
  EXPECT_NE(two.err.find("2 of its 3 file(s) vanished"), std::string::npos) << two.err;
  EXPECT_EQ(json_lines(two.out).at(0).at("sources").at(0).at("items"), 3);
  // With max_removal_percent 100 only a total loss is held.
  cfg = write_config(dir.path(), sources, R"("max_removal_percent": 100)");
  auto three = ds(cfg, {"index"});
  EXPECT_EQ(three.exit_code, 0) << three.err;
  EXPECT_EQ(json_lines(three.out).at(0).at("sources").at(0).at("removed"), 2);
  auto bad = ds(write_config(dir.path(), sources, R"("max_removal_percent": 101)"), {"index"});
  EXPECT_EQ(bad.exit_code, 78) << bad.err;
}

TEST(RemovalGuard, AcceptRemovalNamesAConfiguredSource) {
  Samples s;
  auto r = ds(s.cfg, {"index", "--accept-removal", "nosuch"});
  EXPECT_EQ(r.exit_code, 64) << r.err;
}

// ---- Item 2: one file, one source ----------------------------------------------------------------

TEST(OverlappingSources, AreRefusedAtConfigLoadNamingBoth) {
  Samples s;
  // The legal hold's source covers Alice's Maildir, which "mailboxes" covers too.
  std::string text = maildsar::test::read_file(s.cfg);
  auto at = text.find(R"({"name": "archive")");
  ASSERT_NE(at, std::string::npos);
  text.insert(at, R"({"name": "legal", "type": "maildir", "path": "mail/example.com/alice.smith/Maildir"},
    )");
  write_file(s.cfg, text);
  for (const std::vector<std::string> &cmd :
       {std::vector<std::string>{"index"}, {"find", "--email", k_alice}, {"status"}}) {
    auto r = ds(s.cfg, cmd);
    EXPECT_EQ(r.exit_code, 78) << cmd[0] << ": " << r.err;
    EXPECT_NE(r.err.find("sources 'mailboxes' and 'legal' cover the same files"), std::string::npos)
        << r.err;
  }
  EXPECT_FALSE(fs::exists(s / "state/xapian"));
}

// ---- Item 6: nothing of ours inside a store --------------------------------------------------

TEST(StateInsideStore, IsRefusedAtConfigLoad) {
  Samples s;
  std::string text = maildsar::test::read_file(s.cfg);
  const std::string key = R"("state_dir": "state")";
  auto at = text.find(key);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, key.size(), R"("state_dir": "mail/example.com/alice.smith/Maildir")");
  write_file(s.cfg, text);
  const auto mode_before = fs::status(s / "mail/example.com/alice.smith/Maildir").permissions();
  auto r = ds(s.cfg, {"index"});
  EXPECT_EQ(r.exit_code, 78) << r.err;
  EXPECT_NE(r.err.find("state_dir"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("source 'mailboxes'"), std::string::npos) << r.err;
  EXPECT_EQ(fs::status(s / "mail/example.com/alice.smith/Maildir").permissions(), mode_before);
  EXPECT_FALSE(fs::exists(s / "mail/example.com/alice.smith/Maildir/xapian"));
}

TEST(StateInsideStore, ExportOutInsideAStoreIsRefused) {
  Samples s;
  ASSERT_EQ(maildsar_run({"-c", s.cfg.string(), "index"}).exit_code, 0);
  const fs::path inside = s / "mail/example.com/bob.jones/Maildir/pkg";
  auto r = ds(s.cfg, {"export", "--email", k_alice, "--out", inside.string()});
  EXPECT_EQ(r.exit_code, 73) << r.err;
  EXPECT_NE(r.err.find("is inside the root"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(inside));
  // A symlink outside the stores that leads into one is inside too.
  fs::create_directory_symlink(s / "archive", s / "exports");
  auto via_link = ds(s.cfg, {"export", "--email", k_alice, "--out", (s / "exports/pkg").string()});
  EXPECT_EQ(via_link.exit_code, 73) << via_link.err;
  EXPECT_FALSE(fs::exists(s / "archive/pkg"));
  auto ok = ds(s.cfg, {"export", "--email", k_alice, "--out", (s / "pkg").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// ---- Input validation ----------------------------------------------------------------------------

TEST(InputValidation, ADuplicateKeyInASubjectFileIsAnError) {
  Samples s;
  ASSERT_EQ(maildsar_run({"-c", s.cfg.string(), "index"}).exit_code, 0);
  // Two "emails" lists: nlohmann would keep the last (nobody's) and answer "0 items".
  write_file(s / "dup.json", R"({"request": "DSAR-1", "emails": ["alice.smith@example.com"],
  "emails": ["nobody@example.org"]})");
  auto r = ds(s.cfg, {"find", "--subject", (s / "dup.json").string()});
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("key \"emails\" is given twice"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dup.json:2:3"), std::string::npos) << r.err;
}

TEST(InputValidation, ADuplicateKeyInTheConfigIsAnError) {
  Samples s;
  std::string text = maildsar::test::read_file(s.cfg);
  text.insert(text.find("\"sources\""), R"("state_dir": "state2", )");
  write_file(s.cfg, text);
  auto r = ds(s.cfg, {"status"});
  EXPECT_EQ(r.exit_code, 78) << r.err;
  EXPECT_NE(r.err.find("key \"state_dir\" is given twice"), std::string::npos) << r.err;
}

TEST(InputValidation, AHugeNumberIsBadInputNotAnInternalError) {
  ScratchDir dir;
  make_maildir(dir / "m", 1);
  auto cfg = write_config(dir.path(), R"([{"name": "m", "type": "maildir", "path": "m"}])",
                          R"("erasure": {"approvals_required": 1e400})");
  auto r = ds(cfg, {"status"});
  EXPECT_EQ(r.exit_code, 78) << r.err;
  cfg = write_config(dir.path(), R"([{"name": "m", "type": "maildir", "path": "m"}])");
  write_file(dir / "subject.json", R"({"emails": ["a@example.com"], "request": 1e400})");
  auto subject = ds(cfg, {"find", "--subject", (dir / "subject.json").string()});
  EXPECT_EQ(subject.exit_code, 65) << subject.err;
}

TEST(InputValidation, BadCommandLineValuesAreUsageErrors) {
  Samples s;
  ASSERT_EQ(maildsar_run({"-c", s.cfg.string(), "index"}).exit_code, 0);
  for (const char *threads : {"-1", "x", "100000", ""}) {
    auto r = ds(s.cfg, {"index", "--threads", threads});
    EXPECT_EQ(r.exit_code, 64) << threads << ": " << r.err;
  }
  EXPECT_EQ(ds(s.cfg, {"index", "--threads", "1"}).exit_code, 0);
  for (const char *today : {"yesterday", "2027-13-45", "2027-02-29"}) {
    auto r = ds(s.cfg, {"plan", "--email", k_alice, "--today", today, "--out", (s / "m.json").string()});
    EXPECT_EQ(r.exit_code, 64) << today << ": " << r.err;
    EXPECT_FALSE(fs::exists(s / "m.json"));
  }
  for (const char *phone : {"+44 20 7946 CALL", "call me", "++--"}) {
    auto r = ds(s.cfg, {"find", "--phone", phone});
    EXPECT_EQ(r.exit_code, 64) << phone << ": " << r.err;
  }
  write_file(s / "phone.json", R"({"phones": ["0800 FLOWERS"]})");
  EXPECT_EQ(ds(s.cfg, {"find", "--subject", (s / "phone.json").string()}).exit_code, 64);
  EXPECT_EQ(ds(s.cfg, {"find", "--phone", "+44 (0)20 7946-0123"}).exit_code, 0);
}

TEST(InputValidation, AnOwnerTemplateBeyondTheGlobsStarsIsAConfigError) {
  ScratchDir dir;
  make_maildir(dir / "mail/alice/Maildir", 1);
  auto cfg = write_config(
      dir.path(), R"([{"name": "m", "type": "maildir", "path": "mail/*/Maildir", "owner": "{7}@example.com"}])");
  auto r = ds(cfg, {"status"});
  EXPECT_EQ(r.exit_code, 78) << r.err;
  EXPECT_NE(r.err.find("uses {7} but the path has 1 '*'"), std::string::npos) << r.err;
}

TEST(InputValidation, AHoldUntilANonDateIsAConfigError) {
  ScratchDir dir;
  make_maildir(dir / "m", 1);
  for (const char *until : {"2027-13-45", "2027-02-30", "2027-00-10"}) {
    auto cfg = write_config(dir.path(), R"([{"name": "m", "type": "maildir", "path": "m"}])",
                            fmt::format(R"("holds": [{{"source": "m", "reason": "x", "until": "{}"}}])", until));
    auto r = ds(cfg, {"status"});
    EXPECT_EQ(r.exit_code, 78) << until << ": " << r.err;
  }
  auto leap = write_config(dir.path(), R"([{"name": "m", "type": "maildir", "path": "m"}])",
                           R"("holds": [{"source": "m", "reason": "x", "until": "2028-02-29"}])");
  EXPECT_NE(ds(leap, {"status"}).exit_code, 78);
}

TEST(InputValidation, FourEyesTreatsCaseAndSpacesAsTheSamePerson) {
  Samples s;
  ASSERT_EQ(maildsar_run({"-c", s.cfg.string(), "index"}).exit_code, 0);
  const auto manifest = (s / "m.json").string();
  auto plan = ds(s.cfg, {"plan", "--email", k_alice, "--out", manifest, "--operator", "ann"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  for (const char *same : {"ANN", " ann ", "Ann\t"}) {
    auto r = ds(s.cfg, {"approve", manifest, "--operator", same});
    EXPECT_EQ(r.exit_code, 77) << "'" << same << "': " << r.err;
  }
  EXPECT_EQ(ds(s.cfg, {"approve", manifest, "--operator", "   "}).exit_code, 64);
  auto bob = ds(s.cfg, {"approve", manifest, "--operator", "Bob"});
  EXPECT_EQ(bob.exit_code, 0) << bob.err;
}

TEST(InputValidation, BothAuditFilesDeletedAfterAnErasureIsTampering) {
  Samples s;
  ASSERT_EQ(maildsar_run({"-c", s.cfg.string(), "index"}).exit_code, 0);
  EXPECT_EQ(ds(s.cfg, {"audit", "verify"}).exit_code, 0); // nothing audited yet: intact
  auto plan = ds(s.cfg, {"plan", "--email", k_alice, "--out", (s / "m.json").string(), "--operator", "ann"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_EQ(ds(s.cfg, {"audit", "verify"}).exit_code, 0);
  fs::remove(s / "state/audit.log");
  fs::remove(s / "state/audit.head");
  auto r = ds(s.cfg, {"audit", "verify"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  json j = json_lines(r.out).at(0);
  EXPECT_FALSE(j.at("intact").get<bool>());
  EXPECT_NE(j.at("cause").get<std::string>().find("audit log was removed"), std::string::npos) << j;
}

TEST(InputValidation, ControlSequencesNeverReachTheTerminal) {
  ScratchDir dir;
  fs::create_directories(dir / "m/cur");
  fs::create_directories(dir / "m/new");
  // ESC ] 0 ; title BEL (OSC) in an encoded Subject, and a CSI sequence in the file name.
  const std::string name = "1700000000.M1P1.mx\x1b[2J:2,S";
  write_file(dir / "m/cur" / name,
             "From: alice.smith@example.com\r\nSubject: =?utf-8?q?hi=1B]0;owned=07there?=\r\n"
             "Message-ID: <esc@example.org>\r\n\r\nbody\r\n");
  auto cfg = write_config(dir.path(), R"([{"name": "m", "type": "maildir", "path": "m"}])");
  ASSERT_EQ(maildsar_run({"-c", cfg.string(), "index"}).exit_code, 0);
  auto human = maildsar_run({"-c", cfg.string(), "find", "--email", k_alice});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_EQ(human.out.find('\x1b'), std::string::npos) << human.out;
  EXPECT_EQ(human.out.find('\x07'), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("\\x1b[2J"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("hi\\x1b]0;owned\\x07there"), std::string::npos) << human.out;
  // JSON stays exact.
  auto j = ds(cfg, {"find", "--email", k_alice});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  json hit = json_lines(j.out).at(0);
  EXPECT_EQ(hit.at("path").get<std::string>(), (dir / "m/cur" / name).string());
  EXPECT_EQ(hit.at("subject").get<std::string>(), "hi\x1b]0;owned\x07there");
  // Diagnostics too: an unknown source name carrying ESC is shown escaped.
  auto diag = maildsar_run({"-c", cfg.string(), "index", "--source", "x\x1b]0;t\x07"});
  EXPECT_EQ(diag.exit_code, 64);
  EXPECT_EQ(diag.err.find('\x1b'), std::string::npos) << diag.err;
}
