// SPDX-License-Identifier: GPL-3.0-or-later
#include "erasure/redact.hpp"

#include "core/secret.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace maildsar::erasure {
namespace {

const std::string k_key(32, 'k');

class RedactorTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() { ASSERT_TRUE(index::Normalizer::load_phone_module()); }

  index::Normalizer m_norm{index::NormalizeOptions{"+", "GB"}};

  /** The subject of DESIGN §4, as the manifest keys it. */
  static std::vector<Target> alice() {
    return {Target{"email", core::keyed_hash(k_key, "email", "alice.smith@example.com")},
            Target{"name", core::keyed_hash(k_key, "name", "alice smith")},
            Target{"phone", core::keyed_hash(k_key, "phone", "+442079460123")},
            Target{"ip", core::keyed_hash(k_key, "ip", "203.0.113.45")},
            Target{"ip", core::keyed_hash(k_key, "ip", "2001:db8::45")}};
  }

  /** Redacts `line`, checks the length is kept, and returns the result. */
  Redactor::Redacted redact(std::string_view line) const {
    Redactor r(k_key, alice(), m_norm);
    Redactor::Redacted out = r.redact(line);
    EXPECT_EQ(out.line.size(), line.size()) << line;
    return out;
  }
};

/** True when `out` equals `in` outside [begin, begin+len) and differs at every byte inside
 * except the kept separators. */
void expect_only_changed(std::string_view in, std::string_view out, std::string_view part) {
  const std::size_t at = in.find(part);
  ASSERT_NE(at, std::string_view::npos) << part;
  EXPECT_EQ(out.substr(0, at), in.substr(0, at));
  EXPECT_EQ(out.substr(at + part.size()), in.substr(at + part.size()));
  EXPECT_NE(out.substr(at, part.size()), part);
}

TEST_F(RedactorTest, BatvAndSrsSendersWrappingTheSubjectAreReplacedWhole) {
  const std::string srs = "SRS0=HHH0=TT=example.com=alice.smith@fwd.example";
  const std::string batv = "prvs=06237f065c=alice.smith@example.com";
  const std::string line = "Nov 14 10:00:01 mx postfix/qmgr[812]: 4QXYZ12AB: from=<" + srs +
                           ">, size=1, nrcpt=1; orig <" + batv + ">";
  auto r = redact(line);
  EXPECT_EQ(r.replaced, 2U) << r.line;
  expect_only_changed(line.substr(0, line.find(" orig")), r.line.substr(0, line.find(" orig")), srs);
  EXPECT_EQ(r.line.find("alice.smith"), std::string::npos) << r.line;
  EXPECT_EQ(r.line.find("HHH0"), std::string::npos) << r.line;
  // Another sender's SRS address and a plain '=' address stay as they are.
  const std::string other = "from=<SRS0=HHH0=TT=example.com=bob@fwd.example> to=<a=alice.smith@example.org>";
  EXPECT_EQ(redact(other).line, other);
}

TEST_F(RedactorTest, PostfixFromAndToAddresses) {
  const std::string line =
      "Nov 14 10:00:01 mx postfix/qmgr[812]: 4QXYZ12AB: from=<alice.smith@example.com>, "
      "size=1234, nrcpt=1 (queue active)";
  auto r = redact(line);
  EXPECT_EQ(r.replaced, 1U);
  expect_only_changed(line, r.line, "alice.smith@example.com");
  EXPECT_EQ(r.line.find("alice"), std::string::npos);
  // The '@' and the domain's dots stay, so the line still parses as an address.
  const std::size_t at = line.find("alice.smith@");
  EXPECT_EQ(r.line[at + 11], '@');
  EXPECT_EQ(r.line.substr(at + 19, 1), ".");

  const std::string to =
      "Nov 14 10:00:02 mx postfix/smtp[900]: 4QXYZ12AB: to=<bob@example.net>, "
      "orig_to=<alice.smith@example.com>, relay=mx.example.net[198.51.100.7]:25, "
      "delay=0.52, delays=0.1/0/0.1/0.3, dsn=2.0.0, status=sent (250 2.0.0 Ok)";
  auto r2 = redact(to);
  EXPECT_EQ(r2.replaced, 1U);
  expect_only_changed(to, r2.line, "alice.smith@example.com");
}

TEST_F(RedactorTest, SubaddressAndCaseVariants) {
  for (const std::string variant :
       {"alice.smith+news@example.com", "ALICE.SMITH@EXAMPLE.COM", "Alice.Smith+X@Example.Com"}) {
    const std::string line = "postfix/smtp[1]: 4Q: to=<" + variant + ">, status=sent";
    auto r = redact(line);
    EXPECT_EQ(r.replaced, 1U) << variant;
    expect_only_changed(line, r.line, variant);
  }
}

TEST_F(RedactorTest, AddressWithoutBracketsAfterAKey) {
  const std::string line = "amavis[9]: Passed CLEAN, to=alice.smith@example.com, size=10";
  auto r = redact(line);
  EXPECT_EQ(r.replaced, 1U);
  expect_only_changed(line, r.line, "alice.smith@example.com");
}

TEST_F(RedactorTest, NearMissesAreNotTouched) {
  for (const std::string other :
       {"malice.smith@example.com", "alice.smithson@example.com", "alice.smith@example.co",
        "bob+alice.smith@example.com", "alice.smith@example.com.au", "xalice.smith@example.com"}) {
    const std::string line = "postfix/smtp[1]: 4Q: to=<" + other + ">, status=sent";
    auto r = redact(line);
    EXPECT_EQ(r.replaced, 0U) << other;
    EXPECT_EQ(r.line, line) << other;
  }
}

TEST_F(RedactorTest, OtherPeopleAreUntouched) {
  const std::string line =
      "postfix/cleanup[5]: 4Q: milter-reject: from unknown[99.88.77.66]; from=<bob@example.net> "
      "to=<alice.smith@example.com> to=<carol@example.org> helo=<host.example.net>";
  auto r = redact(line);
  EXPECT_EQ(r.replaced, 1U);
  expect_only_changed(line, r.line, "alice.smith@example.com");
  EXPECT_NE(r.line.find("bob@example.net"), std::string::npos);
  EXPECT_NE(r.line.find("carol@example.org"), std::string::npos);
  EXPECT_NE(r.line.find("99.88.77.66"), std::string::npos);
}

TEST_F(RedactorTest, ClientIpv4) {
  const std::string line = "postfix/smtpd[59633]: D6DDA23B0F: client=host.example[203.0.113.45]";
  auto r = redact(line);
  EXPECT_EQ(r.replaced, 1U);
  expect_only_changed(line, r.line, "203.0.113.45");
  EXPECT_EQ(r.line.back(), ']');
  EXPECT_EQ(r.line[line.find('[')], '[');
  // The dots stay in place.
  const std::string p = r.line.substr(line.find("203."), 12);
  EXPECT_EQ(p[3], '.');
  EXPECT_EQ(p[5], '.');
  EXPECT_EQ(p[9], '.');
  // A longer dotted number or a near IP is not the subject's.
  for (const std::string other : {"203.0.113.450", "1.203.0.113.45", "203.0.113.4", "v203.0.113.45"}) {
    const std::string l = "client=x[" + other + "]";
    EXPECT_EQ(redact(l).line, l) << other;
  }
}

TEST_F(RedactorTest, ClientIpv6InEveryNotation) {
  for (const std::string form :
       {"2001:db8::45", "2001:DB8:0:0:0:0:0:45", "2001:0db8::0045"}) {
    const std::string line = "postfix/smtpd[1]: 4Q: client=host[" + form + "]";
    auto r = redact(line);
    EXPECT_EQ(r.replaced, 1U) << form;
    expect_only_changed(line, r.line, form);
  }
  const std::string prefixed = "connect from host[IPv6:2001:db8::45]";
  auto r = redact(prefixed);
  EXPECT_EQ(r.replaced, 1U);
  expect_only_changed(prefixed, r.line, "2001:db8::45");
  EXPECT_NE(r.line.find("[IPv6:"), std::string::npos);
  // Other addresses and times stay.
  const std::string other = "Nov 14 10:00:01 client=host[2001:db8::46]";
  EXPECT_EQ(redact(other).line, other);
}

TEST_F(RedactorTest, PhoneNumbers) {
  for (const std::string form : {"+44 20 7946 0123", "020 7946 0123", "+442079460123",
                                 "(020) 7946-0123"}) {
    const std::string line = "amavis[3]: X-Phone: " + form + " ; queued";
    auto r = redact(line);
    EXPECT_EQ(r.replaced, 1U) << form;
    expect_only_changed(line, r.line, form);
    // Punctuation and spaces of the number stay.
    const std::string p = r.line.substr(line.find(form), form.size());
    for (std::size_t i = 0; i < form.size(); ++i) {
      if (form[i] < '0' || form[i] > '9') {
        EXPECT_EQ(p[i], form[i]) << form;
      }
    }
  }
  const std::string other = "amavis[3]: X-Phone: +44 20 7946 0999 ; queued";
  EXPECT_EQ(redact(other).line, other);
  // Digits glued to a word are a field.
  const std::string glued = "id=x02079460123y";
  EXPECT_EQ(redact(glued).line, glued);
}

TEST_F(RedactorTest, NamesInEitherOrder) {
  for (const std::string form : {"Alice Smith", "Smith, Alice", "ALICE  SMITH", "smith alice"}) {
    const std::string line = "header Subject: note from " + form + " about the invoice";
    auto r = redact(line);
    EXPECT_EQ(r.replaced, 1U) << form;
    expect_only_changed(line, r.line, form);
    EXPECT_NE(r.line.find("about the invoice"), std::string::npos);
  }
  for (const std::string other : {"Malice Smith", "Alice Smithson", "Alice-Smith", "Alice"}) {
    const std::string line = "header Subject: note from " + other + " about it";
    EXPECT_EQ(redact(line).line, line) << other;
  }
}

TEST_F(RedactorTest, NameIsNotMatchedInsideAnotherAddress) {
  const std::string line = "to=<alice.smith@example.co>, to=<alice smith@example.net>";
  EXPECT_EQ(redact(line).line, line);
}

TEST_F(RedactorTest, EverythingAtOnceKeepsTheLength) {
  const std::string line =
      "Nov 14 10:00:01 mx postfix/smtpd[1]: 4Q: client=a[203.0.113.45], from=<Alice.Smith+x@"
      "example.com> (Alice Smith, tel +44 20 7946 0123) via [IPv6:2001:db8::45]";
  auto r = redact(line);
  EXPECT_EQ(r.replaced, 5U);
  EXPECT_EQ(r.line.find("203.0.113.45"), std::string::npos);
  EXPECT_EQ(r.line.find("Alice"), std::string::npos);
  EXPECT_EQ(r.line.find("7946"), std::string::npos);
  EXPECT_EQ(r.line.find("2001:db8"), std::string::npos);
  EXPECT_EQ(r.line.substr(0, 45), line.substr(0, 45));
  // Redacting again changes nothing: the pseudonyms are not the subject.
  Redactor again(k_key, alice(), m_norm);
  auto twice = again.redact(r.line);
  EXPECT_EQ(twice.replaced, 0U);
  EXPECT_EQ(twice.line, r.line);
}

TEST_F(RedactorTest, NonAsciiAndEdgeLines) {
  for (const std::string &line :
       {std::string(), std::string("@"), std::string("@@@ a@ @b ..@.. [::] :: 1.2.3."),
        std::string("to=<alice.smith@example.com"), std::string("\xff\xfe alice.smith@example.com \xc3"),
        std::string("Zoë Smith <alice.smith@example.com>"), std::string(5000, '9')}) {
    auto r = redact(line);
    EXPECT_EQ(r.line.size(), line.size());
  }
  auto r = redact("Zoë <alice.smith@example.com>");
  EXPECT_EQ(r.replaced, 1U);
  EXPECT_EQ(r.line.substr(0, 6), "Zoë <");
}

TEST_F(RedactorTest, SamePersonSamePseudonymAcrossLines) {
  auto a = redact("from=<alice.smith@example.com>");
  auto b = redact("to=<ALICE.SMITH@example.com>, relay=x");
  EXPECT_EQ(a.line.substr(6, 23), b.line.substr(4, 23));
}

TEST(Pseudonym, DeterministicSameLengthAndKeyed) {
  const std::string p1 = pseudonym("key1", "email", "alice.smith@example.com", "alice.smith@example.com");
  EXPECT_EQ(p1, pseudonym("key1", "email", "alice.smith@example.com", "alice.smith@example.com"));
  EXPECT_NE(p1, pseudonym("key2", "email", "alice.smith@example.com", "alice.smith@example.com"));
  EXPECT_NE(p1, pseudonym("key1", "email", "bob@example.com", "alice.smith@example.com"));
  EXPECT_EQ(p1.size(), 23U);
  EXPECT_EQ(p1[11], '@');
  EXPECT_EQ(p1[19], '.');
  EXPECT_EQ(p1.find("alice"), std::string::npos);
  for (std::size_t i = 0; i < p1.size(); ++i) {
    if (i > 19) { // the top-level label: digits, so the pseudonym is no address
      EXPECT_TRUE(p1[i] >= '0' && p1[i] <= '9') << p1;
    } else if (i != 11 && i != 19) {
      EXPECT_TRUE((p1[i] >= '0' && p1[i] <= '9') || (p1[i] >= 'a' && p1[i] <= 'f')) << p1;
    }
  }
  // Longer than one digest: still the same length, no visible repetition of the first block.
  const std::string long_original = std::string(150, 'x') + "@example.com";
  const std::string lp = pseudonym("k", "email", "x@example.com", long_original);
  EXPECT_EQ(lp.size(), long_original.size());
  EXPECT_NE(lp.substr(0, 64), lp.substr(64, 64));
  // IPs keep their separators.
  const std::string ip = pseudonym("k", "ip", "2001:db8::45", "2001:db8::45");
  EXPECT_EQ(ip.size(), 12U);
  EXPECT_EQ(ip.substr(4, 1), ":");
  EXPECT_EQ(ip.substr(8, 2), "::");
  for (const char c : ip) {
    EXPECT_TRUE(c == ':' || (c >= 'g' && c <= 'v')) << ip; // never an IP address again
  }
  const std::string phone = pseudonym("k", "phone", "+442079460123", "+44 20 7946 0123");
  EXPECT_EQ(phone.substr(0, 1), "+");
  EXPECT_EQ(phone.find_first_of("0123456789"), std::string::npos) << phone;
  // Multi-byte characters become one hex digit per byte.
  EXPECT_EQ(pseudonym("k", "name", "zoe", "Zoë").size(), std::string("Zoë").size());
}

TEST_F(RedactorTest, AnonymizeAllReplacesEveryone) {
  Redactor r(k_key, {}, m_norm);
  const std::string line =
      "2021-02-06T10:57:58+01:00 mail.server.com postfix/cleanup[59586]: D6DDA23B0F: "
      "milter-reject: END-OF-MESSAGE from unknown[99.88.77.66]: 4.7.1 Greylisting; "
      "from=<user2@example.com> to=<some.dest@destdomain.com> proto=ESMTP "
      "helo=<host.sender.domain> client=[2001:db8::1] phone +44 20 7946 0123 size=12345678 "
      "delays=0.1/0/0.1/0.3, dsn=2.0.0";
  auto out = r.anonymize_all(line);
  EXPECT_EQ(out.line.size(), line.size());
  EXPECT_EQ(out.replaced, 5U) << out.line;
  for (const std::string gone :
       {"99.88.77.66", "user2@example.com", "some.dest@destdomain.com", "2001:db8::1", "7946 0123"}) {
    EXPECT_EQ(out.line.find(gone), std::string::npos) << gone;
  }
  for (const std::string kept :
       {"2021-02-06T10:57:58+01:00 mail.server.com postfix/cleanup[59586]: D6DDA23B0F:",
        "4.7.1 Greylisting", "helo=<host.sender.domain>", "size=12345678",
        "delays=0.1/0/0.1/0.3, dsn=2.0.0"}) {
    EXPECT_NE(out.line.find(kept), std::string::npos) << kept << "\n" << out.line;
  }
  // The same address gets the same pseudonym in targeted redaction and in anonymisation.
  Redactor targeted(k_key, {Target{"email", core::keyed_hash(k_key, "email", "user2@example.com")}},
                    m_norm);
  EXPECT_EQ(targeted.redact("from=<user2@example.com>").line,
            r.anonymize_all("from=<user2@example.com>").line);
}

/** The tokens address_spans yields for `line`, as "email:..." / "ip:...". */
std::vector<std::string> spans_of(std::string_view line) {
  std::vector<std::string> out;
  for (const index::TextSpan &s : index::address_spans(line)) {
    out.push_back(std::string(index::to_string(s.kind)) + ":" +
                  std::string(line.substr(s.begin, s.end - s.begin)));
  }
  return out;
}

using Spans = std::vector<std::string>;

// Issue 13 item 14: the one tokeniser that finding and redacting share, at its boundaries.
TEST(AddressSpans, EndAtNonAsciiAndPunctuation) {
  // U+2019 (E2 80 99) after an address or IP: not part of it.
  EXPECT_EQ(spans_of("alice@example.com\xE2\x80\x99s mail"), Spans{"email:alice@example.com"});
  EXPECT_EQ(spans_of("from 203.0.113.45\xE2\x80\x99s host"), Spans{"ip:203.0.113.45"});
  EXPECT_EQ(spans_of("from 2001:db8::45\xE2\x80\x99s host"), Spans{"ip:2001:db8::45"});
  EXPECT_EQ(spans_of("an address\xC2\xA0" "alice@example.com\xC2\xA0here"),
            Spans{"email:alice@example.com"}); // no-break spaces around
  // Non-ASCII before: a non-word character ends the token, a letter belongs to it.
  EXPECT_EQ(spans_of("\xE2\x80\x98" "alice@example.com\xE2\x80\x99"), Spans{"email:alice@example.com"});
  EXPECT_EQ(spans_of("\xC3\xA9lise@example.com"), Spans{"email:\xC3\xA9lise@example.com"});
  EXPECT_EQ(spans_of("\xE2\x80\x9C" "198.51.100.7\xE2\x80\x9D"), Spans{"ip:198.51.100.7"});
  // ASCII punctuation around.
  for (const std::string around : {"<>", "()", "[]", "''", "\"\""}) {
    EXPECT_EQ(spans_of(around.substr(0, 1) + "alice@example.com" + around.substr(1)),
              Spans{"email:alice@example.com"}) << around;
  }
  EXPECT_EQ(spans_of("to=<alice@example.com>, relay=mx.example.net[198.51.100.7]:25, "
                     "client=[IPv6:2001:db8::1], x=2001:db8::2."),
            (Spans{"email:alice@example.com", "ip:198.51.100.7", "ip:2001:db8::1",
                   "ip:2001:db8::2"}));
  EXPECT_EQ(spans_of("alice@example.com. bob@example.org; 192.0.2.1,"),
            (Spans{"email:alice@example.com", "email:bob@example.org", "ip:192.0.2.1"}));
  // IPv4-mapped IPv6: both spans, the dotted quad inside the IPv6 one.
  EXPECT_EQ(spans_of("ip=[::ffff:192.0.2.9]"), (Spans{"ip:192.0.2.9", "ip:::ffff:192.0.2.9"}));
}

TEST(AddressSpans, NearMissesAreNotMatched) {
  for (const std::string line :
       {"version 1.2.3.4.5", "build v1.2.3.4", "x1.2.3.4", "1.2.3.4x", "1.2.3.4_5", "999.1.1.1",
        "at 10:00:00 today", "id=abc:def:0123", "alice@example", "alice@example.c",
        "user@host.123", "@example.com", "fe80::1%eth0"}) {
    EXPECT_EQ(spans_of(line), Spans{}) << line;
  }
}

// Whatever the indexer finds in a line, the redactor replaces: a line redacted for every address
// and IP the indexer extracts from it holds none of them afterwards.
TEST_F(RedactorTest, RedactsWhateverTheIndexerFinds) {
  const std::vector<std::string> lines = {
      "Nov 14 10:00:01 mx postfix/smtp[9]: 4Q: to=<alice.smith@example.com\xE2\x80\x99s>, status=sent",
      "note: alice.smith@example.com\xE2\x80\x99s box; client 203.0.113.45\xE2\x80\x99s; 2001:db8::45\xE2\x80\x99s",
      "\xE2\x80\x98" "alice.smith@example.com\xE2\x80\x99 (203.0.113.45) [2001:db8::45]:25 <alice.smith@example.com>,",
      "\xC2\xA0" "alice.smith@example.com\xC2\xA0" "203.0.113.45\xC2\xA0",
      "bounce: alice.smith@example.com\xC3\xA9 and 203.0.113.45\xC3\xA9",
      "mapped ip=[::ffff:203.0.113.45] and IPv6:2001:db8::45.",
  };
  for (const std::string &line : lines) {
    std::vector<index::Identity> found;
    m_norm.extract_from_text(line, connectors::Role::log_to, found);
    std::vector<Target> targets;
    for (const index::Identity &id : found) {
      if (id.kind == index::IdentityKind::email || id.kind == index::IdentityKind::ip) {
        const std::string kind(index::to_string(id.kind));
        targets.push_back(Target{kind, core::keyed_hash(k_key, kind, id.value)});
      }
    }
    ASSERT_FALSE(targets.empty()) << line;
    const Redactor r(k_key, targets, m_norm);
    const Redactor::Redacted out = r.redact(line);
    EXPECT_EQ(out.line.size(), line.size());
    EXPECT_GT(out.replaced, 0U) << line;
    std::vector<index::Identity> after;
    m_norm.extract_from_text(out.line, connectors::Role::log_to, after);
    for (const index::Identity &id : after) {
      EXPECT_TRUE(std::ranges::none_of(found, [&](const index::Identity &f) {
        return f.kind == id.kind && f.value == id.value;
      })) << id.value << " left in: " << out.line;
    }
  }
  // The subject's address before U+2019 is replaced, the "’s" kept.
  const std::string line = "to=<alice.smith@example.com\xE2\x80\x99s>";
  auto r = redact(line);
  EXPECT_EQ(r.replaced, 1U);
  expect_only_changed(line, r.line, "alice.smith@example.com");
}

TEST_F(RedactorTest, CorpusLogLinesKeepTheirLength) {
  const auto dir = test::corpus_dir() / "logs";
  if (test::corpus_dir().empty() || !std::filesystem::is_directory(dir)) {
    GTEST_SKIP() << "corpus not found";
  }
  Redactor everyone(k_key, {}, m_norm);
  std::size_t lines = 0;
  std::size_t replaced = 0;
  for (const auto &e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().extension() == ".gz") {
      continue;
    }
    std::ifstream in(e.path(), std::ios::binary);
    for (std::string line; std::getline(in, line) && lines < 20000; ++lines) {
      const auto all = everyone.anonymize_all(line);
      ASSERT_EQ(all.line.size(), line.size()) << e.path() << ": " << line;
      replaced += all.replaced;
      const auto none = redact(line); // the subject is not in the corpus
      EXPECT_EQ(none.line, line) << e.path();
      // What anonymisation left holds no address that is still recognised.
      if (all.replaced > 0) {
        EXPECT_EQ(everyone.anonymize_all(all.line).line, all.line) << line;
      }
    }
  }
  EXPECT_GT(replaced, 100U);
}

} // namespace
} // namespace maildsar::erasure
