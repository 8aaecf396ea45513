// SPDX-License-Identifier: GPL-3.0-or-later
#include "query/query.hpp"

#include "indexer/indexer.hpp"
#include "tests/test_support.hpp"
#include "tests/unit/indexer/fake_connector.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace maildsar;
using maildsar::test::FakeConnector;
using maildsar::test::ScratchDir;

namespace {

struct Estate {
  ScratchDir dir;
  core::Config config;

  Estate() {
    config.state_dir = (dir / "state").string();
    config.base_dir = dir.path().string();
    core::SourceConfig src;
    src.name = "archive";
    src.type = "mbox";
    src.path = (dir / "mail").string();
    src.root = src.path;
    config.sources.push_back(src);
    std::filesystem::create_directories(dir / "mail");
  }

  void add(const std::string &file, const std::string &lines) {
    test::write_file(dir / "mail" / file, lines);
  }

  index::IndexSummary index() {
    index::IndexOptions opts;
    opts.threads = 2;
    auto r = index::run_index(config, opts, [](const core::SourceConfig &s) {
      return core::Result<std::unique_ptr<connectors::Connector>>(
          std::make_unique<FakeConnector>(s, true));
    });
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : index::IndexSummary{};
  }

  std::vector<query::Hit> find(query::SubjectProfile p) {
    auto r = query::find(config, p);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : std::vector<query::Hit>{};
  }
};

query::SubjectProfile email(const std::string &e) {
  query::SubjectProfile p;
  p.emails = {e};
  return p;
}
query::SubjectProfile name(const std::string &n) {
  query::SubjectProfile p;
  p.names = {n};
  return p;
}

std::vector<std::string> roles_of(const query::Hit &h, const std::string &identifier) {
  for (const auto &m : h.matched) {
    if (m.identifier == identifier) {
      return m.roles;
    }
  }
  return {};
}

} // namespace

TEST(Query, NoIndexMeansZeroHits) {
  Estate e;
  auto hits = e.find(email("alice@example.com"));
  EXPECT_TRUE(hits.empty());
}

TEST(Query, InvalidIdentifierIsUsageError) {
  Estate e;
  query::SubjectProfile p;
  p.emails = {"not an address"};
  auto r = query::find(e.config, p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::usage);
  EXPECT_NE(r.error().message.find("not an address"), std::string::npos);
}

TEST(Query, EmailInEachRoleReportsThatRole) {
  Estate e;
  const std::vector<std::string> roles{"from", "to", "cc", "bcc", "reply-to", "sender",
                                       "delivered-to", "return-path", "owner"};
  std::string lines;
  for (const auto &r : roles) {
    lines += R"({"a": [[")" + r + R"(", "", "Alice.Smith@Example.com"]]})" "\n";
  }
  e.add("a.mbox", lines);
  e.index();
  auto hits = e.find(email("alice.smith@example.com"));
  ASSERT_EQ(hits.size(), roles.size());
  for (std::size_t i = 0; i < roles.size(); ++i) {
    EXPECT_EQ(roles_of(hits[i], "alice.smith@example.com"), std::vector<std::string>{roles[i]});
    EXPECT_EQ(hits[i].matched.front().kind, "email");
    EXPECT_EQ(hits[i].locator.source, "archive");
    EXPECT_EQ(hits[i].id.size(), 64U);
  }
  // Sorted by position in the file.
  EXPECT_TRUE(std::is_sorted(hits.begin(), hits.end(), [](const auto &a, const auto &b) {
    return a.locator.offset < b.locator.offset;
  }));
}

TEST(Query, EmailNearMissesDoNotMatch) {
  Estate e;
  e.add("a.mbox", R"({"a": [["to", "", "malice.smith@example.com"]]})" "\n"
                  R"({"a": [["to", "", "alice.smithson@example.com"]]})" "\n"
                  R"({"a": [["to", "", "alice.smith@example.co"]]})" "\n"
                  R"({"a": [["to", "", "bob+alice.smith@example.com"]]})" "\n"
                  R"({"a": [["to", "", "alice.smith+news@example.com"]]})" "\n");
  e.index();
  auto hits = e.find(email("alice.smith@example.com"));
  ASSERT_EQ(hits.size(), 1U); // only the subaddress variant
  EXPECT_EQ(hits[0].locator.offset > 0, true);
}

TEST(Query, NameInBothOrdersInHeaderAndBody) {
  Estate e;
  e.add("a.mbox",
        R"({"a": [["from", "Alice Smith", "a1@example.com"]]})" "\n"
        R"({"a": [["to", "Smith, Alice", "a2@example.com"]]})" "\n"
        R"({"t": [["body", "Hello, please forward this to ALICE SMITH today."]]})" "\n"
        R"({"t": [["body", "Regards, Smith Alice"]]})" "\n"
        R"({"t": [["body", "Alice went to see Bob Smith"]]})" "\n");
  e.index();
  auto hits = e.find(name("Alice Smith"));
  ASSERT_EQ(hits.size(), 4U);
  EXPECT_EQ(roles_of(hits[0], "Alice Smith"), std::vector<std::string>{"from"});
  EXPECT_EQ(roles_of(hits[1], "Alice Smith"), std::vector<std::string>{"to"});
  EXPECT_EQ(roles_of(hits[2], "Alice Smith"), std::vector<std::string>{"body"});
  EXPECT_EQ(roles_of(hits[3], "Alice Smith"), std::vector<std::string>{"body"});
  EXPECT_EQ(hits[0].matched.front().kind, "name");
}

TEST(Query, NameSplitAcrossTwoValuesDoesNotMatch) {
  Estate e;
  e.add("a.mbox", R"({"a": [["to", "Bob Alice", "b@example.com"], ["to", "Smith Carol", "c@example.com"]]})" "\n"
                  R"({"t": [["subject", "Alice"], ["body", "Smith"]]})" "\n");
  e.index();
  EXPECT_TRUE(e.find(name("Alice Smith")).empty());
}

// Free text does not index tokens of digits only (schema::drops_number_tokens): a name is still
// found there, a number between its tokens still breaks the phrase, a number in the name
// searched becomes a gap there, a handle that mixes letters and digits is indexed, and a
// display name keeps its numbers.
TEST(Query, NumbersInFreeTextAreGapsNotTerms) {
  Estate e;
  e.add("a.mbox",
        R"({"t": [["body", "Ticket 4711 for Jane Doe, build 2.6.32 failed"]]})" "\n"
        R"({"t": [["body", "Jane 4711 Doe"]]})" "\n"
        R"({"t": [["subject", "Henry 8 Tudor visits"]]})" "\n"
        R"({"t": [["attachment-body", "Signed: Jane Doe 2021"]]})" "\n"
        R"({"a": [["from", "Agent 007", "agent@example.com"]]})" "\n"
        R"({"t": [["body", "thanks, pste998903 via the list"]]})" "\n"
        R"({"t": [["body", "thanks, pste998904 via the list"]]})" "\n");
  e.index();
  auto jane = e.find(name("Jane Doe"));
  ASSERT_EQ(jane.size(), 2U); // not "Jane 4711 Doe": the number keeps its place
  EXPECT_EQ(roles_of(jane[0], "Jane Doe"), std::vector<std::string>{"body"});
  EXPECT_EQ(roles_of(jane[1], "Jane Doe"), std::vector<std::string>{"attachment-body"});
  auto henry = e.find(name("Henry 8 Tudor"));
  ASSERT_EQ(henry.size(), 1U);
  EXPECT_EQ(roles_of(henry[0], "Henry 8 Tudor"), std::vector<std::string>{"subject"});
  auto agent = e.find(name("Agent 007"));
  ASSERT_EQ(agent.size(), 1U);
  EXPECT_EQ(roles_of(agent[0], "Agent 007"), std::vector<std::string>{"from"});
  EXPECT_TRUE(e.find(name("4711")).empty()); // a number alone is no name in free text
  EXPECT_EQ(e.find(name("Ticket 4711")).size(), 1U);
  auto handle = e.find(name("pste998903 via"));
  ASSERT_EQ(handle.size(), 1U); // the handle is indexed: not the message of pste998904
  EXPECT_EQ(roles_of(handle[0], "pste998903 via"), std::vector<std::string>{"body"});
}

// Issue 11 class 1: addresses in any header field, with role and field name.
TEST(Query, HeaderFieldAddressesCarryRoleAndField) {
  Estate e;
  e.add("a.mbox",
        R"({"t": [["received", "from x by mx.example.com for <bcc.only@example.com>; Tue", "Received"]]})" "\n"
        R"({"t": [["header", "List-Post: <mailto:bcc.only@example.com>", "X-Mailing-List"]]})" "\n"
        R"({"t": [["received", "from x by mx.example.com for <xbcc.only@example.com>;", "Received"]]})" "\n"
        R"({"a": [["envelope-to", "", "bcc.only@example.com", "X-Original-To"]]})" "\n");
  e.index();
  auto hits = e.find(email("bcc.only@example.com"));
  ASSERT_EQ(hits.size(), 3U); // never the Received that names a different address
  EXPECT_EQ(roles_of(hits[0], "bcc.only@example.com"), std::vector<std::string>{"received"});
  EXPECT_EQ(hits[0].matched.front().fields, std::vector<std::string>{"Received"});
  EXPECT_EQ(roles_of(hits[1], "bcc.only@example.com"), std::vector<std::string>{"header"});
  EXPECT_EQ(hits[1].matched.front().fields, std::vector<std::string>{"X-Mailing-List"});
  EXPECT_EQ(roles_of(hits[2], "bcc.only@example.com"), std::vector<std::string>{"envelope-to"});
  EXPECT_EQ(hits[2].matched.front().fields, std::vector<std::string>{"X-Original-To"});
  // Header values give no name tokens: the host name is not a name.
  EXPECT_TRUE(e.find(name("mx example")).empty());
}

// Issue 11 class 2: obsolete forms are found as written and only as written.
TEST(Query, ObsoleteAddressesMatchOnlyThemselves) {
  Estate e;
  e.add("a.mbox", R"({"a": [["to", "", "d..steffes@enron.com"], ["to", "", "r@enron.com"]]})" "\n"
                  R"({"a": [["to", "", "xd..steffes@enron.com"]]})" "\n"
                  R"({"a": [["to", "", "steffes@enron.com.au"]]})" "\n"
                  R"({"a": [["cc", "", "john.@x.com"]]})" "\n");
  e.index();
  auto hits = e.find(email("d..steffes@enron.com"));
  ASSERT_EQ(hits.size(), 1U);
  EXPECT_EQ(hits[0].locator.offset, 0U);
  auto john = e.find(email("John.@X.com"));
  ASSERT_EQ(john.size(), 1U);
  EXPECT_EQ(roles_of(john[0], "John.@X.com"), std::vector<std::string>{"cc"});
  EXPECT_TRUE(e.find(email("john@x.com")).empty());
}

// Issue 11 class 4: transliteration, middle names, "Last, First", and no match across values.
TEST(Query, NameVariants) {
  Estate e;
  e.add("a.mbox",
        R"({"a": [["from", "Ralf B\u00e4chle", "r1@example.com"]]})" "\n"
        R"({"a": [["from", "Ralf Baechle", "r2@example.com"]]})" "\n"
        R"({"a": [["to", "David S. Miller", "d1@example.com"]]})" "\n"
        R"({"a": [["cc", "Miller, David", "d2@example.com"]]})" "\n"
        R"({"a": [["header", "Miller, David S.", "", "X-To"]]})" "\n"
        R"({"a": [["to", "David Jones", "d3@example.com"], ["to", "Miller Smith", "d4@example.com"]]})" "\n"
        R"({"t": [["body", "I told David that Miller was away"]]})" "\n"
        R"({"t": [["body", "Regards, S\u00f8ren Gro\u00df"]]})" "\n");
  e.index();
  auto baechle = e.find(name("Ralf Baechle"));
  ASSERT_EQ(baechle.size(), 2U);
  EXPECT_EQ(roles_of(baechle[0], "Ralf Baechle"), std::vector<std::string>{"from"});
  EXPECT_EQ(e.find(name("Ralf B\xC3\xA4" "chle")).size(), 2U);
  auto miller = e.find(name("David Miller"));
  ASSERT_EQ(miller.size(), 3U); // not across two values, not in prose with a word between
  EXPECT_EQ(roles_of(miller[0], "David Miller"), std::vector<std::string>{"to"});
  EXPECT_EQ(roles_of(miller[1], "David Miller"), std::vector<std::string>{"cc"});
  EXPECT_EQ(roles_of(miller[2], "David Miller"), std::vector<std::string>{"header"});
  EXPECT_EQ(miller[2].matched.front().fields, std::vector<std::string>{"X-To"});
  EXPECT_EQ(e.find(name("Soeren Gross")).size(), 1U);
  EXPECT_EQ(e.find(name("S\xC3\xB6ren Gross")).size(), 1U); // ö and ø both spell oe
  EXPECT_TRUE(e.find(name("Ralf Bachmann")).empty());
}

TEST(Query, PhoneAndIp) {
  Estate e;
  e.add("a.mbox", R"({"t": [["body", "Call me on 020 7946 0123 please"]]})" "\n"
                  R"({"ip": [["received", "203.0.113.45"]]})" "\n"
                  R"({"ip": [["received", "203.0.113.46"]]})" "\n");
  e.index();
  query::SubjectProfile p;
  p.phones = {"+44 20 7946 0123"};
  auto hits = e.find(p);
  ASSERT_EQ(hits.size(), 1U);
  EXPECT_EQ(roles_of(hits[0], "+44 20 7946 0123"), std::vector<std::string>{"body"});
  query::SubjectProfile q;
  q.ips = {"203.0.113.45"};
  hits = e.find(q);
  ASSERT_EQ(hits.size(), 1U);
  EXPECT_EQ(roles_of(hits[0], "203.0.113.45"), std::vector<std::string>{"received"});
}

TEST(Query, OnlyMatchedIdentifiersAreListed) {
  Estate e;
  e.add("a.mbox", R"({"a": [["from", "Alice Smith", "alice@example.com"]], "mid": "M1@X", "subject": "Hi", "date": 1700000000})" "\n");
  e.index();
  query::SubjectProfile p;
  p.emails = {"alice@example.com", "other@example.com"};
  p.names = {"Alice Smith"};
  auto hits = e.find(p);
  ASSERT_EQ(hits.size(), 1U);
  ASSERT_EQ(hits[0].matched.size(), 2U);
  EXPECT_EQ(hits[0].matched[0].identifier, "alice@example.com");
  EXPECT_EQ(hits[0].matched[1].identifier, "Alice Smith");
  EXPECT_EQ(hits[0].message_id, "M1@X");
  EXPECT_EQ(hits[0].subject, "Hi");
  ASSERT_TRUE(hits[0].date);
  EXPECT_EQ(*hits[0].date, 1700000000);
  EXPECT_EQ(hits[0].sha256.size(), 64U);
}

TEST(Query, ManyHitsAreAllReturned) {
  Estate e;
  std::string lines;
  for (int i = 0; i < 50; ++i) {
    lines += R"({"a": [["to", "", "alice@example.com"]]})" "\n";
  }
  e.add("a.mbox", lines);
  e.index();
  EXPECT_EQ(e.find(email("alice@example.com")).size(), 50U);
}

TEST(Subject, ParsesAllKeys) {
  auto p = query::parse_subject(R"({"request": "DSAR-1", "emails": ["a@b.c"], "names": ["A B"],
                                    "phones": ["+44 1"], "ips": ["1.2.3.4"]})",
                                "s.json");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->request, "DSAR-1");
  EXPECT_EQ(p->emails, std::vector<std::string>{"a@b.c"});
  EXPECT_EQ(p->names, std::vector<std::string>{"A B"});
  EXPECT_EQ(p->phones, std::vector<std::string>{"+44 1"});
  EXPECT_EQ(p->ips, std::vector<std::string>{"1.2.3.4"});
}

TEST(Subject, UnknownKeyIsNamed) {
  auto p = query::parse_subject(R"({"emails": [], "mails": []})", "s.json");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, core::ErrorCode::data);
  EXPECT_NE(p.error().message.find("mails"), std::string::npos);
}

TEST(Subject, WrongTypesAreDataErrors) {
  for (const char *text : {R"({"emails": "a@b.c"})", R"({"emails": [1]})", R"({"request": 5})",
                           R"([1, 2])", R"({"names": [)"}) {
    auto p = query::parse_subject(text, "s.json");
    ASSERT_FALSE(p) << text;
    EXPECT_EQ(p.error().code, core::ErrorCode::data) << text;
  }
}

TEST(Subject, MissingFileIsNoInput) {
  auto p = query::load_subject("/nonexistent/subject.json");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, core::ErrorCode::no_input);
}
