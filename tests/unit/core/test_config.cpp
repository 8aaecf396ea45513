// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/config.hpp"

#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

using maildsar::core::ErrorCode;
using maildsar::core::parse_config;
using maildsar::test::ScratchDir;
using maildsar::test::write_file;

TEST(Config, ParsesDesignExampleWithComments) {
  const char *text = R"({
    "state_dir": "state",                       // index, catalog
    /* block comment */
    "sources": [
      {"name": "mailboxes", "type": "maildir", "path": "mail/example.com/*/Maildir",
       "owner": "{1}@example.com"},
      {"name": "archive",   "type": "mbox",     "path": "archive/*.mbox"},
      {"name": "legacy",    "type": "pst",      "path": "pst/*.pst"},
      {"name": "amavis",    "type": "quarantine", "format": "amavis", "path": "quarantine/amavis"},
      {"name": "postfix",   "type": "maillog",  "format": "postfix",  "path": "logs/mail.log*"}
    ],
    "identity": {"subaddress_separators": "+", "phone_region": "GB"},
    "retention": {"postfix": "90d", "amavis": {"max_age": "30d", "action": "anonymize"}},
    "holds": [{"source": "archive", "reason": "litigation 2026-17", "until": "2027-06-30"}]
  })";
  auto c = parse_config(text, "/srv/dsar/maildsar.json");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->state_dir, "/srv/dsar/state");
  ASSERT_EQ(c->sources.size(), 5U);
  EXPECT_EQ(c->sources[0].path, "/srv/dsar/mail/example.com/*/Maildir");
  EXPECT_EQ(c->sources[0].root, "/srv/dsar/mail/example.com");
  EXPECT_EQ(c->sources[0].owner, "{1}@example.com");
  EXPECT_EQ(c->sources[1].root, "/srv/dsar/archive");
  EXPECT_EQ(c->sources[3].format, "amavis");
  EXPECT_EQ(c->identity.phone_region, "GB");
  EXPECT_EQ(c->sources[3].root, "/srv/dsar/quarantine/amavis");
  EXPECT_EQ(c->sources[4].root, "/srv/dsar/logs");
  ASSERT_EQ(c->retention.size(), 2U);
  for (const auto &r : c->retention) {
    if (r.source == "postfix") {
      EXPECT_EQ(r.max_age_seconds, 90 * 86400);
      EXPECT_EQ(r.action, "delete");
    } else {
      EXPECT_EQ(r.source, "amavis");
      EXPECT_EQ(r.max_age_seconds, 30 * 86400);
      EXPECT_EQ(r.action, "anonymize");
    }
  }
  ASSERT_EQ(c->holds.size(), 1U);
  EXPECT_EQ(c->holds[0].until, "2027-06-30");
}

TEST(Config, UnknownKeyNamesKeyAndPosition) {
  const char *text = "{\n  \"sources\": [\n    {\"name\": \"a\", \"type\": \"mbox\", \"path\": \"x\",\n"
                     "     \"ownr\": \"y\"}\n  ]\n}\n";
  auto c = parse_config(text, "/etc/m.json");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::config);
  EXPECT_NE(c.error().message.find("/etc/m.json:4:6"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("ownr"), std::string::npos);
}

TEST(Config, UnknownTopLevelKey) {
  auto c = parse_config("{\"state\": \"x\"}", "/c.json");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("/c.json:1:2"), std::string::npos) << c.error().message;
}

TEST(Config, InvalidJsonGivesPosition) {
  auto c = parse_config("{\n \"sources\": [,]\n}", "/c.json");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::config);
  EXPECT_NE(c.error().message.find("/c.json:2:"), std::string::npos) << c.error().message;
}

TEST(Config, TheReportLanguageIsOneOfTheCataloguedOnes) {
  // Issue 18 item 4: access.language, "en" by default; anything else names the allowed values.
  auto unset = parse_config(R"({"access": {"controller": "X"}})", "/c.json");
  ASSERT_TRUE(unset) << unset.error().message;
  EXPECT_EQ(unset->access.language, "en");
  auto de = parse_config(R"({"access": {"language": "de"}})", "/c.json");
  ASSERT_TRUE(de) << de.error().message;
  EXPECT_EQ(de->access.language, "de");
  for (const char *bad : {R"({"access": {"language": "fr"}})", R"({"access": {"language": "DE"}})",
                          R"({"access": {"language": 7}})"}) {
    auto c = parse_config(bad, "/c.json");
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().code, ErrorCode::config) << bad;
    EXPECT_EQ(maildsar::core::exit_code(c.error().code), 78);
    EXPECT_NE(c.error().message.find("/c.json:1:"), std::string::npos) << c.error().message;
  }
  auto fr = parse_config(R"({"access": {"language": "fr"}})", "/c.json");
  EXPECT_NE(fr.error().message.find("(allowed: en, de)"), std::string::npos) << fr.error().message;
}

TEST(Config, RejectsBadValues) {
  EXPECT_FALSE(parse_config(R"({"sources":[{"name":"a","type":"nfs","path":"x"}]})", "/c"));
  EXPECT_FALSE(parse_config(R"({"sources":[{"name":"a b","type":"mbox","path":"x"}]})", "/c"));
  EXPECT_FALSE(parse_config(R"({"sources":[{"name":"a","type":"mbox"}]})", "/c"));
  EXPECT_FALSE(parse_config(R"({"sources":[{"name":"a","type":"mbox","path":1}]})", "/c"));
  EXPECT_FALSE(parse_config(
      R"({"sources":[{"name":"a","type":"mbox","path":"x"},{"name":"a","type":"mbox","path":"y"}]})",
      "/c"));
  EXPECT_FALSE(parse_config(R"({"sources":[{"name":"a","type":"maillog","format":"qmailx","path":"x"}]})",
                            "/c"));
  EXPECT_FALSE(parse_config(R"({"retention":{"nosuch":"9d"}})", "/c"));
  EXPECT_FALSE(parse_config(R"({"sources":[{"name":"a","type":"mbox","path":"x"}],"retention":{"a":"9q"}})",
                            "/c"));
  EXPECT_FALSE(parse_config(R"({"sources":[{"name":"a","type":"mbox","path":"x"}],
      "holds":[{"source":"a","reason":"r","until":"next year"}]})", "/c"));
  EXPECT_FALSE(parse_config(R"({"identity":{"phone_region":"GBR"}})", "/c"));
  EXPECT_FALSE(parse_config("[]", "/c"));
}

TEST(Config, MtaQueueSourcesTakeAllowRemoveAndAnAbsoluteCommand) {
  auto c = parse_config(R"({"sources":[{"name":"q","type":"postfix-queue","path":"/var/spool/postfix"},
      {"name":"e","type":"exim-spool","path":"/var/spool/exim4","allow_remove":true,"command":"/usr/sbin/exim4"}]})",
                        "/c");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_FALSE(c->sources[0].allow_remove);
  EXPECT_EQ(c->sources[0].command, "/usr/sbin/postsuper");
  EXPECT_EQ(c->sources[0].root, "/var/spool/postfix");
  EXPECT_TRUE(c->sources[1].allow_remove);
  EXPECT_EQ(c->sources[1].command, "/usr/sbin/exim4");
  auto relative = parse_config(R"({"sources":[{"name":"q","type":"exim-spool","path":"/s","command":"exim"}]})", "/c");
  ASSERT_FALSE(relative.has_value());
  EXPECT_NE(relative.error().message.find("absolute"), std::string::npos) << relative.error().message;
  EXPECT_FALSE(parse_config(R"({"sources":[{"name":"q","type":"exim-spool","path":"/s","allow_remove":"yes"}]})", "/c"));
  EXPECT_FALSE(parse_config(R"({"sources":[{"name":"q","type":"exim-spool","path":"/s","format":"exim"}]})", "/c"));
  auto elsewhere = parse_config(R"({"sources":[{"name":"m","type":"mbox","path":"/x","allow_remove":true}]})", "/c");
  ASSERT_FALSE(elsewhere.has_value());
  EXPECT_NE(elsewhere.error().message.find("MTA queues"), std::string::npos) << elsewhere.error().message;
}

TEST(Config, ArchiveSourcesAndTheirLimits) {
  auto c = parse_config(R"({"sources":[{"name":"b","type":"archive","path":"/srv/backup/mail-*.tar.gz"}],
      "limits": {"archive_max_member_mib": 64, "archive_max_total_gib": 2, "archive_max_ratio": 50,
                 "archive_max_members": 1000, "archive_timeout_seconds": 60, "archive_max_pst_mib": 100}})",
                        "/c");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->sources[0].type, "archive");
  EXPECT_EQ(c->sources[0].root, "/srv/backup");
  EXPECT_EQ(c->limits.archive_max_member_mib, 64U);
  EXPECT_EQ(c->limits.archive_max_total_gib, 2U);
  EXPECT_EQ(c->limits.archive_max_ratio, 50U);
  EXPECT_EQ(c->limits.archive_max_members, 1000U);
  EXPECT_EQ(c->limits.archive_timeout_seconds, 60U);
  EXPECT_EQ(c->limits.archive_max_pst_mib, 100U);
  auto defaults = parse_config(R"({"sources":[{"name":"b","type":"archive","path":"/b/*.zip"}]})", "/c");
  ASSERT_TRUE(defaults.has_value());
  EXPECT_EQ(defaults->limits.archive_max_member_mib, 512U);
  EXPECT_EQ(defaults->limits.archive_max_ratio, 200U);
  auto ratio = parse_config(R"({"sources":[], "limits": {"archive_max_ratio": 2}})", "/c");
  ASSERT_FALSE(ratio.has_value());
  EXPECT_NE(ratio.error().message.find("limits.archive_max_ratio"), std::string::npos) << ratio.error().message;
  EXPECT_FALSE(parse_config(R"({"sources":[{"name":"b","type":"archive","path":"/b/*.tar","owner":"x@y"}]})", "/c"));
  EXPECT_FALSE(parse_config(R"({"sources":[{"name":"b","type":"archive","path":"/b/*.tar","format":"tar"}]})", "/c"));
  EXPECT_FALSE(defaults->sources[0].rewrite);
  auto rewrite = parse_config(R"({"sources":[{"name":"b","type":"archive","path":"/b/*.tar","rewrite":true}]})", "/c");
  ASSERT_TRUE(rewrite.has_value()) << rewrite.error().message;
  EXPECT_TRUE(rewrite->sources[0].rewrite);
  EXPECT_FALSE(parse_config(R"({"sources":[{"name":"b","type":"archive","path":"/b/*.tar","rewrite":"yes"}]})", "/c"));
  auto elsewhere = parse_config(R"({"sources":[{"name":"m","type":"mbox","path":"/m","rewrite":true}]})", "/c");
  ASSERT_FALSE(elsewhere.has_value());
  EXPECT_NE(elsewhere.error().message.find("archive sources"), std::string::npos) << elsewhere.error().message;
}

TEST(Config, LoadMissingFileIsNoInput) {
  auto c = maildsar::core::load_config("/nonexistent/maildsar.json");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::no_input);
  EXPECT_NE(c.error().message.find("/nonexistent/maildsar.json"), std::string::npos);
}

TEST(Config, Durations) {
  EXPECT_EQ(*maildsar::core::parse_duration("45s"), 45);
  EXPECT_EQ(*maildsar::core::parse_duration("2w"), 14 * 86400);
  EXPECT_FALSE(maildsar::core::parse_duration("d"));
  EXPECT_FALSE(maildsar::core::parse_duration("-1d"));
  EXPECT_FALSE(maildsar::core::parse_duration("10"));
}

// Seen while writing fuzz/fuzz_config, which reproduces it: the number times the unit overflowed
// std::int64_t (undefined behaviour; UBSan aborted) instead of being refused.
TEST(Config, DurationTooLongIsAnErrorNotAnOverflow) {
  EXPECT_EQ(*maildsar::core::parse_duration("292471208677y"), 292471208677LL * 365 * 86400);
  auto too_long = maildsar::core::parse_duration("292471208678y");
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, ErrorCode::config);
  EXPECT_NE(too_long.error().message.find("too long"), std::string::npos);
  EXPECT_FALSE(maildsar::core::parse_duration("99999999999999999y"));
  EXPECT_EQ(*maildsar::core::parse_duration("9223372036854775807s"), 9223372036854775807LL);
  auto c = parse_config(
      R"({"sources":[{"name":"a","type":"mbox","path":"/x/*.mbox"}],"retention":{"a":"99999999999999999y"}})",
      "/c.json");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::config);
}

TEST(Config, ExpandOwner) {
  EXPECT_EQ(maildsar::core::expand_owner("{1}@example.com", {"alice"}), "alice@example.com");
  EXPECT_EQ(maildsar::core::expand_owner("{2}.{1}@x", {"a", "b"}), "b.a@x");
  EXPECT_EQ(maildsar::core::expand_owner("{3}@x", {"a"}), "@x");
  EXPECT_EQ(maildsar::core::expand_owner("plain@x", {}), "plain@x");
}

TEST(Config, ExpandGlobCapturesStars) {
  ScratchDir dir;
  write_file(dir / "mail/example.com/alice/Maildir/cur/1", "x");
  write_file(dir / "mail/example.com/bob/Maildir/cur/1", "x");
  write_file(dir / "mail/example.com/.hidden/Maildir/cur/1", "x");
  write_file(dir / "archive/a.mbox", "x");
  write_file(dir / "archive/b.txt", "x");
  auto m = maildsar::core::expand_glob((dir / "mail/example.com/*/Maildir").string());
  ASSERT_TRUE(m);
  ASSERT_EQ(m->size(), 2U);
  EXPECT_EQ((*m)[0].captures, std::vector<std::string>{"alice"});
  EXPECT_EQ((*m)[1].path, (dir / "mail/example.com/bob/Maildir").string());
  auto m2 = maildsar::core::expand_glob((dir / "archive/*.mbox").string());
  ASSERT_TRUE(m2);
  ASSERT_EQ(m2->size(), 1U);
  auto m3 = maildsar::core::expand_glob((dir / "archive/[ab].*").string());
  ASSERT_TRUE(m3);
  EXPECT_EQ(m3->size(), 2U);
  auto none = maildsar::core::expand_glob((dir / "nothing/*").string());
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(maildsar::core::expand_glob("relative/*"));
  EXPECT_FALSE(maildsar::core::expand_glob((dir / "../x/*").string()));
}

TEST(Config, GlobMatchesWhatExpandGlobWouldList) {
  using maildsar::core::glob_matches;
  EXPECT_TRUE(glob_matches("/srv/archive/*.mbox", "/srv/archive/legacy.mbox"));
  EXPECT_TRUE(glob_matches("/srv/archive/*.mbox", "/srv//archive/./legacy.mbox"));
  EXPECT_FALSE(glob_matches("/srv/archive/*.mbox", "/srv/archive/legacy.pst"));
  EXPECT_FALSE(glob_matches("/srv/archive/*.mbox", "/srv/archive/sub/legacy.mbox"));
  EXPECT_FALSE(glob_matches("/srv/archive/*.mbox", "/srv/archive/.hidden.mbox")); // as the shell
  EXPECT_TRUE(glob_matches("/srv/*/[ab]?.mbox", "/srv/x/a1.mbox"));
  EXPECT_FALSE(glob_matches("/srv/*/[ab]?.mbox", "/srv/x/c1.mbox"));
  EXPECT_TRUE(glob_matches("/srv/archive/2023.mbox", "/srv/archive/2023.mbox"));
  EXPECT_FALSE(glob_matches("srv/archive/*.mbox", "/srv/archive/a.mbox"));
}

TEST(Config, PstConvertFoldersAreCheckedAtLoad) {
  const std::string sources = R"("sources": [{"name": "legacy", "type": "pst", "path": "/srv/pst/*.pst"},
      {"name": "archive", "type": "mbox", "path": "/srv/archive/*.mbox"}])";
  auto ok = parse_config("{" + sources + R"(, "erasure": {"pst_convert": {"mbox_dir": "/srv/archive",
      "originals_dir": "dsar/pst-originals"}}})",
                         "/etc/maildsar/m.json");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->erasure.pst_mbox_dir, "/srv/archive");
  EXPECT_EQ(ok->erasure.pst_originals_dir, "/etc/maildsar/dsar/pst-originals");
  // Originals inside a store root would be indexed (and found) again.
  auto inside = parse_config("{" + sources + R"(, "erasure": {"pst_convert": {"mbox_dir": "/srv/archive",
      "originals_dir": "/srv/pst/old"}}})",
                             "/etc/m.json");
  ASSERT_FALSE(inside);
  EXPECT_EQ(inside.error().code, ErrorCode::config);
  EXPECT_NE(inside.error().message.find("legacy"), std::string::npos) << inside.error().message;
  auto missing = parse_config("{" + sources + R"(, "erasure": {"pst_convert": {"mbox_dir": "/srv/archive"}}})",
                              "/etc/m.json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("originals_dir"), std::string::npos) << missing.error().message;
  auto unknown = parse_config("{" + sources + R"(, "erasure": {"pst_convert": {"mbox": "/srv/archive"}}})",
                              "/etc/m.json");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("mbox"), std::string::npos);
}

// ---- Issue 13 item 2: one file, one source ---------------------------------------------------

namespace {

/** Parses `sources` (a JSON array) with state_dir "state", as if the config were in `dir`. */
maildsar::core::Result<maildsar::core::Config> with_sources(const ScratchDir &dir,
                                                            const std::string &sources,
                                                            const std::string &state = "state") {
  std::string text = R"({"state_dir": ")" + state + R"(", "sources": )" + sources + "}";
  return parse_config(text, (dir / "maildsar.json").string());
}

void make_dirs(const ScratchDir &dir, std::initializer_list<const char *> rels) {
  for (const char *rel : rels) {
    std::filesystem::create_directories(dir / rel);
  }
}

} // namespace

TEST(Config, SourcesCoveringTheSameMaildirAreRefusedNamingBoth) {
  ScratchDir dir;
  make_dirs(dir, {"mail/alice/Maildir/cur", "mail/bob/Maildir/cur"});
  auto c = with_sources(dir, R"([{"name": "all", "type": "maildir", "path": "mail/*/Maildir"},
                                  {"name": "legal", "type": "maildir", "path": "mail/alice/Maildir"}])");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::config);
  EXPECT_NE(c.error().message.find("sources 'all' and 'legal' cover the same files"), std::string::npos)
      << c.error().message;
}

TEST(Config, ASourceInsideAnotherSourcesFolderIsRefused) {
  ScratchDir dir;
  make_dirs(dir, {"q/amavis/sub"});
  write_file(dir / "q/amavis/sub/x.mbox", "From a@b Thu Jan  1 00:00:00 2026\n\nx\n");
  auto c = with_sources(dir, R"([{"name": "quar", "type": "quarantine", "path": "q/amavis"},
                                  {"name": "arch", "type": "mbox", "path": "q/amavis/sub/*.mbox"}])");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("'quar' and 'arch'"), std::string::npos) << c.error().message;
}

TEST(Config, ASymlinkToAnotherSourceIsAnOverlap) {
  ScratchDir dir;
  make_dirs(dir, {"mail/alice/Maildir/cur", "legal"});
  std::filesystem::create_directory_symlink(dir / "mail/alice/Maildir", dir / "legal/alice");
  auto c = with_sources(dir, R"([{"name": "all", "type": "maildir", "path": "mail/*/Maildir"},
                                  {"name": "legal", "type": "maildir", "path": "legal/alice"}])");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("'all' and 'legal'"), std::string::npos) << c.error().message;
}

TEST(Config, AFolderMatchedByAFileSourceCoversNothing) {
  // The exim test-suite layout: mboxes at three depths, one source per depth. `box/*` also
  // matches the folder `box/sub`, which an mbox source never reads: no overlap with `box/*/*`.
  ScratchDir dir;
  make_dirs(dir, {"box/sub"});
  write_file(dir / "box/top", "From a@b Thu Jan  1 00:00:00 2026\n\nx\n");
  write_file(dir / "box/sub/inner", "From a@b Thu Jan  1 00:00:00 2026\n\ny\n");
  auto c = with_sources(dir, R"([{"name": "d1", "type": "mbox", "path": "box/*"},
                                  {"name": "d2", "type": "mbox", "path": "box/*/*"}])");
  EXPECT_TRUE(c) << c.error().message;
  // A folder-reading source (maildir, quarantine) still covers everything below what it matches.
  auto q = with_sources(dir, R"([{"name": "q", "type": "quarantine", "path": "box/sub"},
                                  {"name": "d2", "type": "mbox", "path": "box/*/*"}])");
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().message.find("'q' and 'd2'"), std::string::npos) << q.error().message;
}

TEST(Config, IdenticalPatternsAreRefusedEvenBeforeTheyMatchAnything) {
  ScratchDir dir;
  auto c = with_sources(dir, R"([{"name": "a", "type": "mbox", "path": "arch/*.mbox"},
                                  {"name": "b", "type": "mbox", "path": "arch/../arch/*.mbox"}])");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::config);
}

TEST(Config, DisjointSourcesSideBySideAreAccepted) {
  ScratchDir dir;
  make_dirs(dir, {"mail/alice/Maildir/cur", "archive", "logs"});
  write_file(dir / "archive/2023.mbox", "From a@b Thu Jan  1 00:00:00 2026\n\nx\n");
  write_file(dir / "logs/mail.log", "");
  auto c = with_sources(dir, R"([{"name": "m", "type": "maildir", "path": "mail/*/Maildir"},
                                  {"name": "a", "type": "mbox", "path": "archive/*.mbox"},
                                  {"name": "p", "type": "pst", "path": "archive/*.pst"},
                                  {"name": "l", "type": "maillog", "path": "logs/mail.log*"}])");
  EXPECT_TRUE(c) << c.error().message;
}

// ---- Issue 13 item 6: the state directory lies outside every store ----------------------------

TEST(Config, StateDirInsideOrEqualToAStoreRootIsRefused) {
  ScratchDir dir;
  make_dirs(dir, {"mail/alice/Maildir/cur"});
  const std::string src = R"([{"name": "m", "type": "maildir", "path": "mail/alice/Maildir"}])";
  for (const char *state : {"mail/alice/Maildir", "mail/alice/Maildir/.maildsar", "mail"}) {
    auto c = with_sources(dir, src, state);
    ASSERT_FALSE(c) << state;
    EXPECT_EQ(c.error().code, ErrorCode::config);
    EXPECT_NE(c.error().message.find("state_dir"), std::string::npos) << c.error().message;
    EXPECT_NE(c.error().message.find("source 'm'"), std::string::npos) << c.error().message;
  }
  EXPECT_TRUE(with_sources(dir, src, "state"));
}

TEST(Config, StateDirReachedThroughASymlinkIsStillInsideTheStore) {
  ScratchDir dir;
  make_dirs(dir, {"mail/alice/Maildir/cur"});
  std::filesystem::create_directory_symlink(dir / "mail/alice/Maildir", dir / "st");
  auto c = with_sources(dir, R"([{"name": "m", "type": "maildir", "path": "mail/alice/Maildir"}])",
                        "st/x");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::config);
}

// ---- Issue 13: input validation --------------------------------------------------------------

TEST(Config, ADuplicateKeyIsAnErrorAtItsSecondPlace) {
  auto c = parse_config("{\"state_dir\": \"a\",\n  \"state_dir\": \"b\"}", "/etc/m.json");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::config);
  EXPECT_NE(c.error().message.find("/etc/m.json:2:3: key \"state_dir\" is given twice"), std::string::npos)
      << c.error().message;
  // Nested objects have their own keys: the same key in two objects is fine.
  EXPECT_TRUE(parse_config(R"({"identity": {"phone_region": "GB"}, "access": {"contact": "x"}})",
                           "/etc/m.json"));
  auto nested = parse_config(R"({"identity": {"phone_region": "GB", "phone_region": "DE"}})", "/etc/m.json");
  ASSERT_FALSE(nested);
  EXPECT_NE(nested.error().message.find("phone_region"), std::string::npos);
}

TEST(Config, AnOutOfRangeNumberIsAConfigError) {
  auto c = parse_config(R"({"erasure": {"approvals_required": 1e400}})", "/etc/m.json");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::config);
}

TEST(Config, OwnerTemplateMustNameAStarOfThePath) {
  auto bad = parse_config(
      R"({"sources": [{"name": "m", "type": "maildir", "path": "/srv/*/Maildir", "owner": "{2}@x.org"}]})",
      "/etc/m.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::config);
  auto zero = parse_config(
      R"({"sources": [{"name": "m", "type": "maildir", "path": "/srv/*/Maildir", "owner": "{0}@x.org"}]})",
      "/etc/m.json");
  EXPECT_FALSE(zero);
  auto ok = parse_config(
      R"({"sources": [{"name": "m", "type": "maildir", "path": "/srv/*/*/Maildir", "owner": "{2}@{1}"}]})",
      "/etc/m.json");
  EXPECT_TRUE(ok) << ok.error().message;
}

TEST(Config, CalendarDates) {
  using maildsar::core::is_calendar_date;
  EXPECT_TRUE(is_calendar_date("2027-06-30"));
  EXPECT_TRUE(is_calendar_date("2028-02-29"));
  EXPECT_TRUE(is_calendar_date("2000-02-29"));
  EXPECT_FALSE(is_calendar_date("1900-02-29"));
  EXPECT_FALSE(is_calendar_date("2027-02-29"));
  EXPECT_FALSE(is_calendar_date("2027-13-45"));
  EXPECT_FALSE(is_calendar_date("2027-04-31"));
  EXPECT_FALSE(is_calendar_date("2027-00-01"));
  EXPECT_FALSE(is_calendar_date("yesterday"));
  EXPECT_FALSE(is_calendar_date("2027-6-30"));
}

TEST(Config, OperatorNamesAreTrimmedAndCaseFolded) {
  using maildsar::core::normalise_operator;
  EXPECT_EQ(normalise_operator("ANN"), "ann");
  EXPECT_EQ(normalise_operator(" ann \t"), "ann");
  EXPECT_EQ(normalise_operator("   "), "");
  auto c = parse_config(R"({"erasure": {"approver_keys": {"Bob": "/k/bob.pem", "bob ": "/k/b2.pem"}}})",
                        "/etc/m.json");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::config);
  auto ok = parse_config(R"({"erasure": {"approver_keys": {"Bob": "/k/bob.pem"}}})", "/etc/m.json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->erasure.approver_keys.count("bob"), 1U);
}

// Issue 15: remote hosts of the estate.
TEST(ConfigHosts, ParsesSshAndProgramHostsWithoutLocalSources) {
  const char *text = R"({
    "hosts": [
      {"name": "mx1", "transport": "ssh", "ssh": "maildsar@mx1.example.com",
       "config": "/etc/maildsar/maildsar.json", "timeout": "2m"},
      {"name": "imap", "transport": "program", "command": ["/usr/bin/maildsar", "-c", "/x/imap.json", "agent"]}
    ],
    "host_name": "dpo"
  })";
  auto c = parse_config(text, "/srv/dsar/maildsar.json");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->sources.empty());
  EXPECT_EQ(c->host_name, "dpo");
  ASSERT_EQ(c->hosts.size(), 2U);
  EXPECT_EQ(c->hosts[0].name, "mx1");
  EXPECT_EQ(c->hosts[0].timeout_seconds, 120);
  EXPECT_EQ(c->hosts[0].argv(), (std::vector<std::string>{"ssh", "-o", "BatchMode=yes", "--",
                                                         "maildsar@mx1.example.com", "maildsar", "-c",
                                                         "/etc/maildsar/maildsar.json", "agent"}));
  EXPECT_EQ(c->hosts[1].timeout_seconds, 60);
  EXPECT_EQ(c->hosts[1].argv(), (std::vector<std::string>{"/usr/bin/maildsar", "-c", "/x/imap.json", "agent"}));
}

TEST(ConfigHosts, SshWithoutConfigRunsTheAgentsDefault) {
  auto c = parse_config(R"({"hosts": [{"name": "a", "transport": "ssh", "ssh": "u@h"}]})", "/x/m.json");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->hosts[0].argv(), (std::vector<std::string>{"ssh", "-o", "BatchMode=yes", "--", "u@h", "maildsar", "agent"}));
}

TEST(ConfigHosts, InvalidHostsAreConfigErrorsNamingTheKey) {
  struct Case {
    const char *hosts;
    const char *expect;
  };
  const Case cases[] = {
      {R"({"hosts": {}})", "'hosts' must be an array"},
      {R"({"hosts": [{"name": "../x", "transport": "ssh", "ssh": "u@h"}]})", "host name '../x'"},
      {R"({"hosts": [{"name": "-o", "transport": "ssh", "ssh": "u@h"}]})", "host name '-o'"},
      {R"({"hosts": [{"name": "a", "transport": "ssh", "ssh": "u@h"}, {"name": "a", "transport": "ssh", "ssh": "v@h"}]})",
       "host name 'a' is used twice"},
      {R"({"hosts": [{"name": "a", "transport": "telnet"}]})", "unknown transport 'telnet'"},
      {R"({"hosts": [{"name": "a"}]})", "missing required key 'transport'"},
      {R"({"hosts": [{"name": "a", "transport": "ssh", "ssh": "-oProxyCommand=x@h"}]})", "'ssh' must be user@host"},
      {R"({"hosts": [{"name": "a", "transport": "ssh", "ssh": "u@h;rm -rf"}]})", "'ssh' must be user@host"},
      {R"({"hosts": [{"name": "a", "transport": "ssh", "ssh": "mx1"}]})", "'ssh' must be user@host"},
      {R"({"hosts": [{"name": "a", "transport": "ssh", "ssh": "u@h", "config": "/etc/x y.json"}]})",
       "'config' must be an absolute path"},
      {R"({"hosts": [{"name": "a", "transport": "ssh", "ssh": "u@h", "config": "rel.json"}]})",
       "'config' must be an absolute path"},
      {R"({"hosts": [{"name": "a", "transport": "ssh", "ssh": "u@h", "command": ["/bin/true"]}]})",
       "'command' belongs to the program transport"},
      {R"({"hosts": [{"name": "a", "transport": "program"}]})", "'command' must be a non-empty array"},
      {R"({"hosts": [{"name": "a", "transport": "program", "command": []}]})", "'command' must be a non-empty array"},
      {R"({"hosts": [{"name": "a", "transport": "program", "command": "/bin/sh -c x"}]})",
       "'command' must be a non-empty array"},
      {R"({"hosts": [{"name": "a", "transport": "program", "command": ["maildsar"]}]})",
       "command[0] 'maildsar' must be an absolute path"},
      {R"({"hosts": [{"name": "a", "transport": "program", "command": ["/bin/x"], "ssh": "u@h"}]})",
       "belong to the ssh transport"},
      {R"({"hosts": [{"name": "a", "transport": "program", "command": ["/bin/x"], "timeout": "0s"}]})",
       "timeout '0s' must be a positive duration"},
      {R"({"hosts": [{"name": "a", "transport": "program", "command": ["/bin/x"], "port": 22}]})",
       "unknown key 'port'"},
      {R"({"host_name": "a b"})", "host_name 'a b'"},
  };
  for (const Case &k : cases) {
    auto c = parse_config(k.hosts, "/x/m.json");
    ASSERT_FALSE(c) << k.hosts;
    EXPECT_EQ(c.error().code, ErrorCode::config) << k.hosts;
    EXPECT_NE(c.error().message.find(k.expect), std::string::npos) << k.hosts << " -> " << c.error().message;
  }
}
