// SPDX-License-Identifier: GPL-3.0-or-later
// `maildsar affected` (issue 16 item 5, breach scoping) through the built binary: every data
// subject of a source, a folder or a date range, with item counts, roles, categories and dates;
// delivery-log transactions counted one by one; the bad-input paths.
#include "tests/e2e/e2e_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path make_estate(const fs::path &root) {
  const fs::path md = root / "mail/bob/Maildir";
  for (const char *sub : {"cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"}) {
    fs::create_directories(md / sub);
  }
  write_file(md / "cur/1700000000.M1P1.host:2,S",
             "From: Alice Smith <alice.smith@example.com>\nTo: bob@example.org\n"
             "Date: Tue, 14 Nov 2023 10:00:00 +0000\nMessage-ID: <a1@example.com>\nSubject: one\n\n"
             "Call me on +44 20 7946 0123.\n");
  write_file(md / "cur/1700000001.M2P1.host:2,S",
             "From: carol@example.net\nTo: bob@example.org\nCc: Alice Smith <alice.smith+news@example.com>\n"
             "Date: Wed, 15 Nov 2023 10:00:00 +0000\nMessage-ID: <c1@example.net>\nSubject: two\n\nhello\n");
  write_file(md / ".Sent/cur/1701424800.M3P1.host:2,S",
             "From: bob@example.org\nTo: dave@example.net\n"
             "Date: Fri, 01 Dec 2023 10:00:00 +0000\nMessage-ID: <b1@example.org>\nSubject: three\n\nhi\n");
  fs::create_directories(root / "logs");
  const std::string stamp = "Nov 14 10:00:01";
  write_file(root / "logs/mail.log",
             stamp + " mx postfix/smtpd[100]: 3F2A1B4C5D: client=a.example[203.0.113.45]\n" + stamp +
                 " mx postfix/cleanup[102]: 3F2A1B4C5D: message-id=<a1@example.com>\n" + stamp +
                 " mx postfix/qmgr[103]: 3F2A1B4C5D: from=<alice.smith@example.com>, size=20, nrcpt=1 (queue active)\n" +
                 stamp +
                 " mx postfix/smtp[104]: 3F2A1B4C5D: to=<erin@example.net>, relay=mx.example.net[198.51.100.7]:25, "
                 "delay=0.1, dsn=2.0.0, status=sent (250 ok)\n" +
                 stamp + " mx postfix/qmgr[103]: 3F2A1B4C5D: removed\n");
  fs::create_directories(root / "quarantine");
  write_file(root / "quarantine/spam-Xy12AbCd3456",
             "From: Frank <frank@spam.example>\nTo: bob@example.org\n"
             "Date: Thu, 16 Nov 2023 10:00:00 +0000\nMessage-ID: <q1@spam.example>\nSubject: offer\n\nbuy\n");
  const fs::path config = root / "maildsar.json";
  write_file(config, R"({"state_dir": "state", "identity": {"phone_region": "GB"}, "sources": [
      {"name": "mailboxes", "type": "maildir", "path": "mail/*/Maildir", "owner": "{1}@example.org"},
      {"name": "amavis", "type": "quarantine", "format": "amavis", "path": "quarantine"},
      {"name": "postfix", "type": "maillog", "format": "postfix", "path": "logs/mail.log*"}]})");
  return config;
}

std::map<std::string, json> by_identifier(const std::vector<json> &lines) {
  std::map<std::string, json> out;
  for (const json &j : lines) {
    if (!j.contains("summary")) {
      out[j.at("kind").get<std::string>() + ":" + j.at("identifier").get<std::string>()] = j;
    }
  }
  return out;
}

void expect_usage(const fs::path &config, const std::vector<std::string> &args) {
  auto r = ds(config, args);
  EXPECT_EQ(r.exit_code, 64) << r.out << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1U) << r.out;
  EXPECT_EQ(lines[0]["error"]["code"], "usage");
}

TEST(AffectedE2e, EverySubjectOfASourceFolderOrDateRange) {
  ScratchDir dir;
  const fs::path config = make_estate(dir.path());
  auto unindexed = ds(config, {"affected", "--source", "mailboxes"});
  EXPECT_EQ(unindexed.exit_code, 69) << unindexed.out; // never "nobody" for what was not searched
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);

  auto r = ds(config, {"affected", "--source", "mailboxes"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_FALSE(lines.empty());
  const json summary = lines.back()["summary"];
  EXPECT_EQ(summary["items"], 3);
  EXPECT_EQ(summary["items_per_category"], json({{"mail-content", 3}}));
  auto ids = by_identifier(lines);
  ASSERT_TRUE(ids.contains("email:alice.smith@example.com")) << r.out;
  const json alice = ids["email:alice.smith@example.com"];
  EXPECT_EQ(alice["items"], 2); // the subaddress is the same person
  EXPECT_EQ(alice["roles"], json::array({"cc", "from"}));
  EXPECT_EQ(alice["categories"], json::array({"mail-content"}));
  EXPECT_EQ(alice["first"], "2023-11-14T10:00:00Z");
  EXPECT_EQ(alice["last"], "2023-11-15T10:00:00Z");
  EXPECT_EQ(ids["email:bob@example.org"]["items"], 3);
  EXPECT_EQ(ids["email:carol@example.net"]["items"], 1);
  EXPECT_EQ(ids["email:dave@example.net"]["items"], 1);
  ASSERT_TRUE(ids.contains("phone:+442079460123")) << r.out;
  EXPECT_EQ(ids["phone:+442079460123"]["roles"], json::array({"body"}));
  bool alice_name = false;
  for (const auto &[key, j] : ids) {
    alice_name = alice_name || (j["kind"] == "name" && key.find("alice") != std::string::npos &&
                                key.find("smith") != std::string::npos);
  }
  EXPECT_TRUE(alice_name) << r.out;
  EXPECT_FALSE(ids.contains("email:erin@example.net")); // only in the log, not selected

  // A folder: only the Sent message.
  auto sent = by_identifier(json_lines(ds(config, {"affected", "--folder", ".Sent"}).out));
  EXPECT_TRUE(sent.contains("email:dave@example.net"));
  EXPECT_FALSE(sent.contains("email:alice.smith@example.com"));
  // A date range (whole days, UTC).
  auto late = json_lines(ds(config, {"affected", "--source", "mailboxes", "--since", "2023-11-15"}).out);
  EXPECT_EQ(late.back()["summary"]["items"], 2);
  auto day = json_lines(ds(config, {"affected", "--source", "mailboxes", "--since", "2023-11-14", "--until",
                                    "2023-11-14"})
                            .out);
  EXPECT_EQ(day.back()["summary"]["items"], 1);

  // Delivery records: each transaction of the log, re-read from its block.
  auto log = ds(config, {"affected", "--source", "postfix"});
  ASSERT_EQ(log.exit_code, 0) << log.err;
  auto log_lines = json_lines(log.out);
  EXPECT_EQ(log_lines.back()["summary"]["items_per_category"], json({{"delivery-record", 1}}));
  auto log_ids = by_identifier(log_lines);
  ASSERT_TRUE(log_ids.contains("email:alice.smith@example.com")) << log.out;
  EXPECT_EQ(log_ids["email:alice.smith@example.com"]["categories"], json::array({"delivery-record"}));
  EXPECT_TRUE(log_ids.contains("email:erin@example.net"));
  EXPECT_TRUE(log_ids.contains("ip:203.0.113.45"));

  // Quarantine, and every source at once (--folder alone selects from all sources).
  auto q = by_identifier(json_lines(ds(config, {"affected", "--source", "amavis"}).out));
  ASSERT_TRUE(q.contains("email:frank@spam.example"));
  EXPECT_EQ(q["email:frank@spam.example"]["categories"], json::array({"quarantine"}));
  auto everything = json_lines(ds(config, {"affected", "--folder", "*"}).out);
  EXPECT_EQ(everything.back()["summary"]["items_per_category"],
            json({{"mail-content", 3}, {"delivery-record", 1}, {"quarantine", 1}}));
  auto bob = by_identifier(everything)["email:bob@example.org"];
  EXPECT_EQ(bob["items"], 4);
  EXPECT_EQ(bob["categories"], json::array({"mail-content", "quarantine"}));

  // CSV for the spreadsheet of the breach notification.
  auto csv = maildsar_run({"-c", config.string(), "affected", "--source", "mailboxes", "--source", "postfix", "--csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_TRUE(csv.out.starts_with("kind,identifier,items,roles,categories,first,last,person\n")) << csv.out;
  EXPECT_NE(csv.out.find("email,alice.smith@example.com,3,body cc from log-from,delivery-record mail-content,"
                         "2023-11-14T10:00:00Z,"),
            std::string::npos)
      << csv.out;
  EXPECT_NE(csv.out.find("\nphone,+442079460123,1,body,mail-content,"), std::string::npos) << csv.out;
}

TEST(AffectedE2e, IdentifiersADisplayNameTiesTogetherAreOnePerson) {
  // Issue 16 item 5: "grouped by person where discovery links identifiers" — the display-name
  // link: Alice's two addresses under her name are one person; an address written with two
  // different names (a shared mailbox) links nobody.
  ScratchDir dir;
  const fs::path md = dir.path() / "mail/bob/Maildir";
  for (const char *sub : {"cur", "new", "tmp"}) {
    fs::create_directories(md / sub);
  }
  write_file(md / "cur/1700000000.M1P1.host:2,S",
             "From: Alice Smith <alice.smith@example.com>\nTo: Bob Jones <bob@example.org>\n"
             "Date: Tue, 14 Nov 2023 10:00:00 +0000\nSubject: one\n\nhi\n");
  write_file(md / "cur/1700000001.M2P1.host:2,S",
             "From: \"Smith, Alice\" <alice@home.example>\nTo: bob@example.org\n"
             "Date: Wed, 15 Nov 2023 10:00:00 +0000\nSubject: two\n\nhi\n");
  write_file(md / "cur/1700000002.M3P1.host:2,S",
             "From: Carol Jones <info@example.net>\nTo: bob@example.org\n"
             "Date: Thu, 16 Nov 2023 10:00:00 +0000\nSubject: three\n\nhi\n");
  write_file(md / "cur/1700000003.M4P1.host:2,S",
             "From: Dave Brown <info@example.net>\nTo: bob@example.org\n"
             "Date: Fri, 17 Nov 2023 10:00:00 +0000\nSubject: four\n\nhi\n");
  const fs::path config = dir.path() / "maildsar.json";
  write_file(config, R"({"state_dir": "state", "sources": [
      {"name": "mailboxes", "type": "maildir", "path": "mail/*/Maildir"}]})");
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);
  auto r = ds(config, {"affected", "--source", "mailboxes"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r.out);
  auto ids = by_identifier(lines);
  const json alice = ids["email:alice.smith@example.com"]["person"];
  ASSERT_TRUE(alice.is_number()) << r.out;
  EXPECT_EQ(ids["email:alice@home.example"]["person"], alice) << r.out;
  EXPECT_EQ(ids["name:alice smith"]["person"], alice) << r.out;
  const json bob = ids["email:bob@example.org"]["person"];
  ASSERT_TRUE(bob.is_number()) << r.out;
  EXPECT_NE(bob, alice);
  EXPECT_EQ(ids["name:bob jones"]["person"], bob);
  EXPECT_TRUE(ids["email:info@example.net"]["person"].is_null()) << "a shared mailbox merges nobody: " << r.out;
  EXPECT_TRUE(ids["name:carol jones"]["person"].is_null()) << r.out;
  EXPECT_TRUE(ids["name:brown dave"]["person"].is_null() || ids["name:dave brown"]["person"].is_null()) << r.out;
  EXPECT_EQ(lines.back()["summary"]["people"], 2) << r.out;
  auto human = run({MAILDSAR_BINARY, "-c", config.string(), "affected", "--source", "mailboxes"});
  EXPECT_NE(human.out.find("[person "), std::string::npos) << human.out;
}

TEST(AffectedE2e, BadSelectionsAreUsageErrors) {
  ScratchDir dir;
  const fs::path config = make_estate(dir.path());
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);
  expect_usage(config, {"affected"});
  expect_usage(config, {"affected", "--source", "nosuch"});
  expect_usage(config, {"affected", "--source", "mailboxes", "--since", "2023-02-30"});
  expect_usage(config, {"affected", "--source", "mailboxes", "--since", "2023-12-01", "--until", "2023-11-01"});
  expect_usage(config, {"affected", "--source", "mailboxes", "--csv"});
}

} // namespace
} // namespace maildsar::test
