// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: evidence outside the classic address headers (issue 11 class 1 and 2, issue 13
// item 13) is found by `find`, erased by `erase` and checked by `verify`.
#include "tests/e2e/e2e_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/** plan (dpo-anna) + approve (admin-ben) + erase (ops-cleo) for one address; expects success. */
void erase_subject(const fs::path &config, const fs::path &dir, const std::string &address) {
  fs::create_directories(dir / "out");
  const fs::path manifest = dir / "out/manifest.json";
  auto p = ds(config, {"plan", "--email", address, "--out", manifest.string(), "--operator", "dpo-anna"});
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  auto a = ds(config, {"approve", manifest.string(), "--operator", "admin-ben"});
  ASSERT_EQ(a.exit_code, 0) << a.err << a.out;
  auto e = ds(config, {"erase", manifest.string(), "--operator", "ops-cleo"});
  ASSERT_EQ(e.exit_code, 0) << e.err << e.out;
}

// A Bcc recipient leaves its trace only in Received ("for <x>"): find lists the message with
// role received and the field name; erase removes it; verify is clean. A Received that names a
// different address is not a hit.
TEST(HeadersE2e, BccRecipientVisibleOnlyInReceived) {
  ScratchDir dir;
  const fs::path md = dir / "mail/example.com/ann/Maildir";
  const std::string bcc_message =
      "Return-Path: <ann@example.com>\r\n"
      "Received: from mail.example.org (mail.example.org [192.0.2.7])\r\n"
      "\tby mx.example.com (Postfix) with ESMTPS id 4QxYz1\r\n"
      "\tfor <bcc.person@example.com>; Tue, 14 Nov 2023 10:00:00 +0000\r\n"
      "From: Ann <ann@example.com>\r\n"
      "To: Team <team@example.com>\r\n"
      "Subject: budget\r\n"
      "Message-ID: <budget.1@example.com>\r\n"
      "\r\n"
      "see attachment\r\n";
  const std::string other_message =
      "Received: from mail.example.org by mx.example.com id 4QxYz2\r\n"
      "\tfor <xbcc.person@example.com>; Tue, 14 Nov 2023 10:01:00 +0000\r\n"
      "X-Original-To: bcc.person@example.com.au\r\n"
      "From: Ann <ann@example.com>\r\n"
      "To: team@example.com\r\n"
      "Subject: other\r\n"
      "\r\n"
      "nothing\r\n";
  write_file(md / "cur/1.bcc:2,S", bcc_message);
  write_file(md / "cur/2.other:2,S", other_message);
  const fs::path config = dir / "maildsar.json";
  write_file(config, R"({"sources": [
    {"name": "mailboxes", "type": "maildir", "path": "mail/example.com/*/Maildir"}]})");
  EXPECT_EQ(ds(config, {"index"}).exit_code, 0);

  auto f = ds(config, {"find", "--email", "Bcc.Person@example.com"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  auto hits = json_lines(f.out);
  ASSERT_EQ(hits.size(), 1U) << f.out;
  EXPECT_EQ(hits[0].at("path"), (md / "cur/1.bcc:2,S").string());
  const json &match = hits[0].at("matched").at(0);
  EXPECT_EQ(match.at("roles"), json::array({"received"})) << hits[0].dump();
  EXPECT_EQ(match.at("fields"), json::array({"Received"})) << hits[0].dump();

  erase_subject(config, dir.path(), "bcc.person@example.com");
  EXPECT_FALSE(fs::exists(md / "cur/1.bcc:2,S"));
  EXPECT_EQ(read_file(md / "cur/2.other:2,S"), other_message);
  EXPECT_TRUE(json_lines(ds(config, {"find", "--email", "bcc.person@example.com"}).out).empty());
  auto v = ds(config, {"verify", "--email", "bcc.person@example.com"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

// Issue 13 item 13: the envelope sender of an mbox From_ line is the subject's data: found
// (role envelope-from), erased with its message, and seen by verify.
TEST(HeadersE2e, MboxFromLineSenderIsFoundAndErased) {
  ScratchDir dir;
  const std::string first = "From env.only@example.org Mon Oct  2 09:00:00 2023\n"
                            "From: list@example.com\n"
                            "To: members@example.com\n"
                            "Subject: digest\n"
                            "\n"
                            "no other trace\n"
                            "\n";
  const std::string second = "From keep@example.org Mon Oct  2 09:05:00 2023\n"
                             "From: keep@example.org\n"
                             "To: members@example.com\n"
                             "Subject: keep me\n"
                             "\n"
                             "stays\n";
  write_file(dir / "archive/list.mbox", first + second);
  const fs::path config = dir / "maildsar.json";
  write_file(config, R"({"sources": [{"name": "archive", "type": "mbox", "path": "archive/*.mbox"}]})");
  EXPECT_EQ(ds(config, {"index"}).exit_code, 0);

  auto f = ds(config, {"find", "--email", "env.only@example.org"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  auto hits = json_lines(f.out);
  ASSERT_EQ(hits.size(), 1U) << f.out;
  EXPECT_EQ(hits[0].at("offset"), 0);
  EXPECT_EQ(hits[0].at("matched").at(0).at("roles"), json::array({"envelope-from"}));

  erase_subject(config, dir.path(), "env.only@example.org");
  EXPECT_EQ(read_file(dir / "archive/list.mbox"), second);
  auto v = ds(config, {"verify", "--email", "env.only@example.org"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

// Issue 11 class 2: obsolete forms may be named by the DPO (they used to be a usage error) and
// are found as one of several recipients; near misses are not.
TEST(HeadersE2e, ObsoleteAddressesAreSubjects) {
  ScratchDir dir;
  const fs::path md = dir / "mail/example.com/ann/Maildir";
  write_file(md / "cur/1.list:2,S",
             "From: james.steffes@enron.com\n"
             "To: richard.shapiro@enron.com, d..steffes@enron.com,\n"
             "\tjohn.@x.com, kean@enron.com\n"
             "Subject: obsolete\n\nbody\n");
  write_file(md / "cur/2.near:2,S",
             "From: james.steffes@enron.com\n"
             "To: xd..steffes@enron.com, steffes@enron.com.au\n"
             "Subject: near\n\nbody\n");
  const fs::path config = dir / "maildsar.json";
  write_file(config, R"({"sources": [
    {"name": "mailboxes", "type": "maildir", "path": "mail/example.com/*/Maildir"}]})");
  EXPECT_EQ(ds(config, {"index"}).exit_code, 0);
  for (const std::string address : {"d..steffes@enron.com", "john.@x.com"}) {
    auto f = ds(config, {"find", "--email", address});
    ASSERT_EQ(f.exit_code, 0) << address << ": " << f.err;
    auto hits = json_lines(f.out);
    ASSERT_EQ(hits.size(), 1U) << address << ": " << f.out;
    EXPECT_EQ(hits[0].at("path"), (md / "cur/1.list:2,S").string());
    EXPECT_EQ(hits[0].at("matched").at(0).at("roles"), json::array({"to"}));
  }
  write_file(dir / "subject.json", R"({"emails": ["D..Steffes@Enron.com"]})");
  auto s = ds(config, {"find", "--subject", (dir / "subject.json").string()});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(json_lines(s.out).size(), 1U) << s.out;
}

} // namespace
} // namespace maildsar::test
