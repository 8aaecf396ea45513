// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end tests of the quarantine, maillog and PST connectors: run the built maildsar binary
// on a generated estate (tests/e2e/estate_connectors.cpp) and check its --json output.
#include "tests/e2e/estate_connectors.hpp"
#include "tests/e2e/e2e_support.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

using maildsar::test::ScratchDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using maildsar::test::hit_key;
using maildsar::test::json_lines;
using maildsar::test::maildsar_run;

std::map<std::string, json> hits_by_key(const std::string &out) {
  std::map<std::string, json> m;
  for (auto &h : json_lines(out)) {
    auto key = hit_key(h);
    EXPECT_FALSE(m.contains(key)) << "listed twice: " << key;
    m[key] = h;
  }
  return m;
}

using maildsar::test::index_json;
using maildsar::test::source_counts;

/** Roles in which any of `identifiers` matched the hit. */
std::set<std::string> roles_of(const json &hit, const std::set<std::string> &identifiers) {
  std::set<std::string> roles;
  for (const auto &m : hit.at("matched")) {
    if (identifiers.contains(m.at("identifier").get<std::string>())) {
      for (const auto &r : m.at("roles")) {
        roles.insert(r.get<std::string>());
      }
    }
  }
  return roles;
}

std::string dump_keys(const std::map<std::string, json> &hits) {
  std::string s;
  for (const auto &[k, v] : hits) {
    s += "  " + k + "\n";
  }
  return s;
}

class ConnectorsE2e : public ::testing::Test {
protected:
  void SetUp() override { estate = maildsar::test::make_connector_estate(dir.path(), maildsar::test::corpus_dir()); }
  maildsar::test::RunResult find_json(const fs::path &subject) {
    return maildsar_run({"-c", estate.config.string(), "find", "--subject", subject.string(), "--json"});
  }
  ScratchDir dir;
  maildsar::test::ConnectorEstate estate;
};

} // namespace

TEST_F(ConnectorsE2e, EstateIsWhatTheTestsThinkItIs) {
  // the generator's gzip step worked and the rotated files are real gzip files
  for (const char *rel : {"logs/postfix/mail.log.2.gz", "logs/exim/mainlog.2.gz", "logs/sendmail/maillog.2.gz",
                          "quarantine/amavis/spam-Kx7mQ2pL9vR4.gz", "quarantine/amavis/b/spam-b3Rt6Yh8Jk2W.gz"}) {
    auto bytes = maildsar::test::read_file(dir / rel);
    ASSERT_GE(bytes.size(), 2U) << rel;
    EXPECT_EQ(bytes.substr(0, 2), "\x1f\x8b") << rel;
  }
  EXPECT_EQ(estate.expected.size(), 23U);
  EXPECT_EQ(estate.near_misses.size(), 22U);
  for (const auto &k : estate.near_misses) {
    EXPECT_FALSE(estate.expected.contains(k)) << k;
  }
}

TEST_F(ConnectorsE2e, FullRecallAndNoFalsePositivesAcrossStores) {
  json summary = index_json(estate.config);
  EXPECT_EQ(summary.at("errors"), 0) << summary.dump();
  EXPECT_EQ(source_counts(summary, "amavis").at("items"), 6);
  EXPECT_EQ(source_counts(summary, "mailscanner").at("items"), 4);
  EXPECT_EQ(source_counts(summary, "postfix").at("files"), 3);
  EXPECT_EQ(source_counts(summary, "exim").at("files"), 3);
  EXPECT_EQ(source_counts(summary, "sendmail").at("files"), 3);

  auto r = find_json(estate.subject);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto hits = hits_by_key(r.out);
  for (const auto &want : estate.expected) {
    EXPECT_TRUE(hits.contains(want)) << "missed: " << want << "\nfound:\n" << dump_keys(hits);
  }
  for (const auto &miss : estate.near_misses) {
    EXPECT_FALSE(hits.contains(miss)) << "false positive: " << miss << " " << hits[miss].dump();
  }
  for (const auto &[k, v] : hits) {
    EXPECT_TRUE(estate.expected.contains(k)) << "unexpected hit: " << v.dump();
  }
  EXPECT_EQ(hits.size(), estate.expected.size());
}

TEST_F(ConnectorsE2e, HitsCarryRolesAndLocators) {
  index_json(estate.config);
  auto hits = hits_by_key(find_json(estate.subject).out);
  const std::set<std::string> me{"alice.smith@example.com", "203.0.113.45"};
  for (const auto &[key, roles] : estate.roles) {
    ASSERT_TRUE(hits.contains(key)) << key;
    auto got = roles_of(hits.at(key), me);
    for (const auto &role : roles) {
      EXPECT_TRUE(got.contains(role)) << key << " lacks role " << role << ": " << hits.at(key).dump();
    }
  }

  // the hand-checked Postfix transaction: its lines, queue id, message id and date
  const json &t = hits.at(estate.checked_key);
  EXPECT_EQ(t.at("store"), "maillog");
  EXPECT_EQ(t.at("source"), "postfix");
  EXPECT_EQ(t.at("queue_id"), "4B2F1C0A7D");
  EXPECT_EQ(t.at("lines").get<std::vector<std::uint64_t>>(), estate.checked_lines);
  EXPECT_EQ(t.at("message_id"), "pf-4@gen.example");
  EXPECT_EQ(t.at("sha256").get<std::string>().size(), 64U);
  EXPECT_NE(t.at("date").get<std::string>().find("-11-14T09:59:59"), std::string::npos) << t.dump();
  // a stand-alone connect line is an item of its own
  auto connect = hits.at((estate.root / "logs/postfix/mail.log").string() + "#line-1");
  EXPECT_EQ(connect.at("lines"), json::array({1}));

  // transactions in a rotated, compressed file carry that file's path and their own lines
  auto gz = hits.at((estate.root / "logs/postfix/mail.log.2.gz").string() + "#8B2C3D4E01");
  EXPECT_EQ(gz.at("lines").size(), 5U) << gz.dump();
  auto exim = hits.at((estate.root / "logs/exim/mainlog.2.gz").string() + "#1r3Vc3-000C01-De");
  EXPECT_EQ(exim.at("message_id"), "1r3Vc3-000C01-De@gen.example");
  EXPECT_EQ(exim.at("lines").size(), 3U) << exim.dump();

  // quarantine hits: path and message id; the envelope-only one matched on nothing else
  auto env = hits.at((estate.root / "quarantine/amavis/spam-Kx7mQ2pL9vR4.gz").string());
  EXPECT_EQ(env.at("store"), "quarantine");
  EXPECT_EQ(env.at("source"), "amavis");
  EXPECT_EQ(env.at("message_id"), "q-spam-1@spam.example");
  EXPECT_EQ(roles_of(env, me), std::set<std::string>{"envelope-to"}) << env.dump();
  auto ms = hits.at((estate.root / "quarantine/mailscanner/20231114/3Pt2mN2VXxznjll/message").string());
  EXPECT_EQ(ms.at("source"), "mailscanner");
  EXPECT_EQ(ms.at("message_id"), "ms-1@partner.example");
  EXPECT_EQ(ms.at("subject"), "contract");
  auto phone = hits.at((estate.root / "quarantine/mailscanner/20231114/spam/4bsM5k4xJmz4rT6").string());
  EXPECT_FALSE(roles_of(phone, {"+44 20 7946 0123"}).empty()) << phone.dump();

  // one merged list: every store kind and every source in one answer, each item once
  std::set<std::string> stores;
  std::set<std::string> sources;
  std::set<std::string> ids;
  for (const auto &[k, v] : hits) {
    stores.insert(v.at("store").get<std::string>());
    sources.insert(v.at("source").get<std::string>());
    ids.insert(v.at("id").get<std::string>());
  }
  EXPECT_EQ(stores, (std::set<std::string>{"maildir", "quarantine", "maillog"}));
  EXPECT_EQ(sources, (std::set<std::string>{"mailboxes", "amavis", "mailscanner", "postfix", "exim", "sendmail"}));
  EXPECT_EQ(ids.size(), hits.size());
}

TEST_F(ConnectorsE2e, SingleIdentifiersFindTheirLogRoles) {
  index_json(estate.config);
  auto ip = maildsar_run({"-c", estate.config.string(), "find", "--ip", "203.0.113.45", "--json"});
  ASSERT_EQ(ip.exit_code, 0) << ip.err;
  auto hits = hits_by_key(ip.out);
  std::set<std::string> want;
  for (const auto &[key, roles] : estate.roles) {
    if (roles.contains("log-client") || roles.contains("received")) {
      want.insert(key);
    }
  }
  std::set<std::string> got;
  for (const auto &[k, v] : hits) {
    got.insert(k);
  }
  EXPECT_EQ(got, want);
  auto near = maildsar_run({"-c", estate.config.string(), "find", "--ip", "203.0.113.4", "--json"});
  ASSERT_EQ(near.exit_code, 0) << near.err;
  for (const auto &[k, v] : hits_by_key(near.out)) {
    EXPECT_FALSE(estate.expected.contains(k)) << "203.0.113.4 matched a subject item: " << k;
  }
  EXPECT_FALSE(near.out.empty()) << "the near-miss IP is in the estate";
}

TEST_F(ConnectorsE2e, ReindexIsANoop) {
  index_json(estate.config);
  json again = index_json(estate.config);
  for (const auto &s : again.at("sources")) {
    EXPECT_EQ(s.at("new"), 0) << s.dump();
    EXPECT_EQ(s.at("changed"), 0) << s.dump();
    EXPECT_EQ(s.at("removed"), 0) << s.dump();
  }
  auto hits = hits_by_key(find_json(estate.subject).out);
  EXPECT_EQ(hits.size(), estate.expected.size());
}

TEST_F(ConnectorsE2e, PstItemsOfCorpusIdentities) {
  if (!estate.has_pst) {
    GTEST_SKIP() << "corpus PST files not found (set MAILDSAR_CORPUS)";
  }
  json summary = index_json(estate.config);
  EXPECT_EQ(summary.at("errors"), 0) << summary.dump();
  EXPECT_EQ(source_counts(summary, "legacy").at("files"), 3);
  auto r = find_json(estate.pst_subject);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto hits = hits_by_key(r.out);
  std::set<std::string> got;
  for (const auto &[k, v] : hits) {
    got.insert(k);
    EXPECT_EQ(v.at("store"), "pst") << v.dump();
    EXPECT_EQ(v.at("source"), "legacy") << v.dump();
    EXPECT_FALSE(v.at("folder").get<std::string>().empty()) << v.dump();
    EXPECT_GT(v.at("node_id").get<std::uint64_t>(), 0U) << v.dump();
    EXPECT_EQ(v.at("sha256").get<std::string>().size(), 64U);
  }
  EXPECT_EQ(got, estate.pst_expected);
  auto s1 = hits.at((estate.root / "pst/sample1.pst").string() + "#2097188");
  EXPECT_EQ(s1.at("folder"), "Top of Outlook data file/Sample1");
  EXPECT_EQ(s1.at("subject"), "Here is a sample message");
  EXPECT_TRUE(roles_of(s1, {"terrymah@microsoft.com"}).contains("from")) << s1.dump();
  EXPECT_TRUE(roles_of(s1, {"Terry Mahaffey"}).contains("from")) << s1.dump();
  auto s2 = hits.at((estate.root / "pst/sample2.pst").string() + "#2097188");
  EXPECT_EQ(s2.at("folder"), "Top of Outlook data file/Sample2");
  EXPECT_EQ(s2.at("message_id"), s1.at("message_id")) << "the ANSI and Unicode copies are the same message";
  auto contact = hits.at((estate.root / "pst/SampleContacts.pst").string() + "#2097284");
  EXPECT_EQ(contact.at("folder"), "Top of Personal Folders/Contacts");
  EXPECT_EQ(contact.at("subject"), "Margaret J. Tolle");

  // the PST identities are nowhere else, and the synthetic subject is in no PST
  auto alice = hits_by_key(find_json(estate.subject).out);
  for (const auto &[k, v] : alice) {
    EXPECT_NE(v.at("store"), "pst") << k;
  }
}

TEST(ConnectorsE2eBadInput, ProblemsNameTheFilesAndGoodItemsAreFound) {
  ScratchDir dir;
  const std::string me = "alice.smith@example.com";
  auto txn = [&](const std::string &qid, const std::string &who, int minute) {
    return fmt::format("Nov 14 10:{0:02}:01 mx1 postfix/smtpd[1]: {1}: client=unknown[198.51.100.{0}]\n"
                       "Nov 14 10:{0:02}:02 mx1 postfix/qmgr[2]: {1}: from=<{2}>, size=1, nrcpt=1 (queue active)\n"
                       "Nov 14 10:{0:02}:03 mx1 postfix/smtp[3]: {1}: to=<bob.jones@partner.example>, relay=none, "
                       "delay=1, dsn=2.0.0, status=sent (250 ok)\n"
                       "Nov 14 10:{0:02}:04 mx1 postfix/qmgr[2]: {1}: removed\n",
                       minute, qid, who);
  };
  auto logs = dir / "logs";
  // binary garbage and a line over 1 MiB between good transactions
  std::string garbage(512, '\0');
  for (std::size_t i = 0; i < garbage.size(); ++i) {
    garbage[i] = static_cast<char>((i * 151 + 7) % 256);
  }
  garbage.erase(std::remove(garbage.begin(), garbage.end(), '\n'), garbage.end());
  maildsar::test::write_file(logs / "mail.log", txn("A1A1A1A1A1", me, 1) + garbage + "\n" + txn("A2A2A2A2A2", me, 2));
  maildsar::test::write_file(logs / "mail.log.1", txn("B1B1B1B1B1", me, 3) + "Nov 14 10:04:00 mx1 postfix/smtpd[9]: " +
                                                      std::string((1U << 20U) + 4096U, 'x') + "\n" +
                                                      txn("B2B2B2B2B2", me, 5));
  // a gzip log cut short: the transaction at its start is still read
  std::string big = txn("C1C1C1C1C1", me, 6);
  for (int i = 0; i < 400; ++i) { // other people's mail, so that the cut lands well after C1...
    auto qid = fmt::format("D{:09X}", static_cast<unsigned>(i) * 2654435761U % 0xFFFFFFFU);
    big += txn(qid, fmt::format("user{}@example.org", i * 7919 % 1000), i % 60);
  }
  maildsar::test::write_file(logs / "mail.log.2", big);
  ASSERT_TRUE(maildsar::test::gzip_file(logs / "mail.log.2"));
  std::string gz = maildsar::test::read_file(logs / "mail.log.2.gz");
  ASSERT_GT(gz.size(), 2000U);
  maildsar::test::write_file(logs / "mail.log.2.gz", gz.substr(0, gz.size() / 2));

  bool pst = false;
  auto corpus = maildsar::test::corpus_dir();
  if (!corpus.empty() && fs::exists(corpus / "pst/pstsdk/sample1.pst")) {
    std::string bytes = maildsar::test::read_file(corpus / "pst/pstsdk/sample1.pst");
    maildsar::test::write_file(dir / "pst/good.pst", bytes);
    maildsar::test::write_file(dir / "pst/truncated.pst", bytes.substr(0, bytes.size() / 3));
    pst = true;
  }
  std::string sources = R"({"name": "postfix", "type": "maillog", "format": "postfix", "path": "logs/mail.log*"})";
  if (pst) {
    sources = R"({"name": "legacy", "type": "pst", "path": "pst/*.pst"}, )" + sources;
  }
  maildsar::test::write_file(dir / "maildsar.json", R"({"sources": [)" + sources + "]}");
  auto r = maildsar_run({"-c", (dir / "maildsar.json").string(), "index", "--json"});
  EXPECT_EQ(r.exit_code, 1) << "a run with problems is not a green run\n" << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1U) << r.out;
  EXPECT_GE(lines[0].at("errors").get<int>(), pst ? 4 : 3) << r.err;
  // each problem names the file and the line
  EXPECT_NE(r.err.find((logs / "mail.log").string() + ": line 5: "), std::string::npos) << r.err; // garbage
  EXPECT_NE(r.err.find((logs / "mail.log.1").string() + ": line 5: line longer"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find((logs / "mail.log.2.gz").string() + ": line "), std::string::npos) << r.err; // cut gzip
  if (pst) {
    EXPECT_NE(r.err.find((dir / "pst/truncated.pst").string()), std::string::npos) << r.err;
    EXPECT_EQ(source_counts(lines[0], "legacy").at("items"), 1) << "the good PST is read";
  }
  EXPECT_GE(source_counts(lines[0], "postfix").at("errors").get<int>(), 3);

  auto f = maildsar_run({"-c", (dir / "maildsar.json").string(), "find", "--email", me, "--json"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  auto hits = hits_by_key(f.out);
  const std::string l0 = (logs / "mail.log").string();
  const std::string l1 = (logs / "mail.log.1").string();
  const std::string l2 = (logs / "mail.log.2.gz").string();
  for (const auto &key : {l0 + "#A1A1A1A1A1", l0 + "#A2A2A2A2A2", l1 + "#B1B1B1B1B1", l1 + "#B2B2B2B2B2",
                          l2 + "#C1C1C1C1C1"}) {
    EXPECT_TRUE(hits.contains(key)) << "missed " << key << "\nfound:\n" << dump_keys(hits);
  }
  EXPECT_EQ(hits.size(), 5U) << dump_keys(hits);
  // the transaction after the long line keeps its true line numbers
  auto b2 = hits.at(l1 + "#B2B2B2B2B2");
  EXPECT_EQ(b2.at("lines"), json::array({6, 7, 8, 9})) << b2.dump();
  if (pst) {
    auto terry = maildsar_run(
        {"-c", (dir / "maildsar.json").string(), "find", "--email", "terrymah@microsoft.com", "--json"});
    ASSERT_EQ(terry.exit_code, 0) << terry.err;
    auto th = hits_by_key(terry.out);
    EXPECT_TRUE(th.contains((dir / "pst/good.pst").string() + "#2097188")) << dump_keys(th);
  }
}
