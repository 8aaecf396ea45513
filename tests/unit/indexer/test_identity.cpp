// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/identity.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace maildsar::index {
namespace {

using connectors::Role;

const Normalizer &gb() {
  static const Normalizer normalizer{NormalizeOptions{}};
  return normalizer;
}

// A case's test name: its number and the letters and digits of its input ("7_alicesmithexamplecom"),
// the same in every build (the default prints the case's bytes, pointers included).
template <class Case> std::string case_name(const ::testing::TestParamInfo<Case> &info) {
  std::string name = std::to_string(info.index) + "_";
  for (char c : info.param.raw) {
    if (name.size() >= 40) {
      break;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      name.push_back(c);
    }
  }
  return name;
}

// ---------------------------------------------------------------------------------------------
// Email addresses.

struct EmailCase {
  std::string_view raw;
  std::optional<std::string_view> expected; // nullopt: rejected
};

void PrintTo(const EmailCase &c, std::ostream *os) { *os << '"' << c.raw << '"'; }

class NormalizerEmail : public ::testing::TestWithParam<EmailCase> {};

TEST_P(NormalizerEmail, Normalises) {
  const EmailCase &c = GetParam();
  const std::optional<std::string> got = gb().email(c.raw);
  if (c.expected) {
    ASSERT_TRUE(got.has_value()) << "rejected: " << c.raw;
    EXPECT_EQ(*got, *c.expected) << "input: " << c.raw;
  } else {
    EXPECT_FALSE(got.has_value()) << "accepted: " << c.raw << " as " << got.value_or("");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Normalizer, NormalizerEmail,
    ::testing::Values(
        // case folding and the accepted wrappers
        EmailCase{"alice.smith@example.com", "alice.smith@example.com"},
        EmailCase{"Alice.Smith@EXAMPLE.COM", "alice.smith@example.com"},
        EmailCase{"  alice.smith@example.com \r\n", "alice.smith@example.com"},
        EmailCase{"Alice Smith <Alice.Smith@Example.com>", "alice.smith@example.com"},
        EmailCase{"\"Smith, Alice\" <alice.smith@example.com>", "alice.smith@example.com"},
        EmailCase{"<alice.smith@example.com>", "alice.smith@example.com"},
        EmailCase{"< alice.smith@example.com >", "alice.smith@example.com"},
        EmailCase{"mailto:alice.smith@example.com", "alice.smith@example.com"},
        EmailCase{"MAILTO:alice.smith@example.com?subject=hi", "alice.smith@example.com"},
        EmailCase{"'alice.smith@example.com'", "alice.smith@example.com"},
        EmailCase{"\"alice.smith@example.com\"", "alice.smith@example.com"},
        EmailCase{"alice.smith@example.com.", "alice.smith@example.com"},
        EmailCase{"\"alice.smith\"@example.com", "alice.smith@example.com"},
        EmailCase{"alice.smith@example.com (Alice Smith)", "alice.smith@example.com"},
        EmailCase{"o'brien@example.ie", "o'brien@example.ie"},
        EmailCase{"first..last@example.jp", "first..last@example.jp"}, // seen in the wild
        // obsolete forms real archives hold (issue 11 class 2): kept as written
        EmailCase{"d..steffes@enron.com", "d..steffes@enron.com"},
        EmailCase{"D..Steffes@Enron.com", "d..steffes@enron.com"},
        EmailCase{"john.@x.com", "john.@x.com"},
        EmailCase{"John.+list@X.com", "john.@x.com"},
        EmailCase{".alice@example.com", ".alice@example.com"},
        EmailCase{"alice.@example.com", "alice.@example.com"},
        // quoted local parts that need their quotes keep them
        EmailCase{"\"John Doe\"@Example.com", "\"john doe\"@example.com"},
        EmailCase{"<\"john doe\"@example.com>", "\"john doe\"@example.com"},
        EmailCase{"\"john+doe x\"@example.com", "\"john+doe x\"@example.com"},
        // Unicode local part: case folded
        EmailCase{"JÖRG@example.de", "jörg@example.de"},
        // IDN, both directions
        EmailCase{"Alice@BÜCHER.example", "alice@xn--bcher-kva.example"},
        EmailCase{"alice@bücher.example", "alice@xn--bcher-kva.example"},
        EmailCase{"alice@xn--bcher-kva.example", "alice@xn--bcher-kva.example"},
        EmailCase{"alice@XN--BCHER-KVA.example", "alice@xn--bcher-kva.example"},
        // domain literals
        EmailCase{"root@[192.0.2.1]", "root@[192.0.2.1]"},
        EmailCase{"root@[IPv6:2001:DB8::1]", "root@[ipv6:2001:db8::1]"},
        // subaddress folding with the default "+"
        EmailCase{"alice+news@example.com", "alice@example.com"},
        EmailCase{"Alice+News+More@Example.com", "alice@example.com"},
        EmailCase{"alice-news@example.com", "alice-news@example.com"},
        EmailCase{"bob+alice.smith@example.com", "bob@example.com"},
        EmailCase{"+alice@example.com", "+alice@example.com"},
        // near misses keep their identity
        EmailCase{"malice.smith@example.com", "malice.smith@example.com"},
        EmailCase{"alice.smithson@example.com", "alice.smithson@example.com"},
        EmailCase{"alice.smith@example.co", "alice.smith@example.co"},
        // rejected
        EmailCase{"", std::nullopt}, EmailCase{"alice", std::nullopt},
        EmailCase{"@example.com", std::nullopt}, EmailCase{"alice@", std::nullopt},
        EmailCase{"alice smith@example.com", std::nullopt},
        EmailCase{"alice@exa mple.com", std::nullopt},
        EmailCase{"alice@@example.com", std::nullopt},
        EmailCase{"alice@example..com", std::nullopt},
        EmailCase{"alice@-example.com", std::nullopt},
        EmailCase{"alice@example_x.com", std::nullopt},
        EmailCase{".@example.com", std::nullopt},
        EmailCase{"\"\"@example.com", std::nullopt},
        EmailCase{"\"a\"b\"@example.com", std::nullopt},
        EmailCase{"ali(ce@example.com", std::nullopt},
        EmailCase{"alice@example.com>", std::nullopt},
        EmailCase{"Alice <alice@example.com", std::nullopt},
        EmailCase{"ali\xff" "ce@example.com", std::nullopt},
        EmailCase{"root@[999.1.1.1]", std::nullopt},
        EmailCase{"alice@example.com (unclosed", std::nullopt},
        EmailCase{"alice@exam(ple).com", std::nullopt}),
    case_name<EmailCase>);

TEST(Normalizer, RejectsOverlongAddresses) {
  EXPECT_FALSE(gb().email(std::string(300, 'a') + "@example.com").has_value());
  EXPECT_FALSE(gb().email("a@" + std::string(64, 'b') + ".example").has_value());
  std::string many_labels = "a@";
  for (int i = 0; i < 100; ++i) {
    many_labels += "abc.";
  }
  EXPECT_FALSE(gb().email(many_labels + "com").has_value());
  EXPECT_TRUE(gb().email("a@" + std::string(63, 'b') + ".example").has_value());
  EXPECT_FALSE(gb().email(std::string(5000, '<')).has_value());
}

TEST(Normalizer, NearMissesDifferFromTheSubject) {
  const std::string subject = gb().email("alice.smith@example.com").value();
  for (const std::string_view near : {"malice.smith@example.com", "alice.smithson@example.com",
                                      "alice.smith@example.co", "bob+alice.smith@example.com"}) {
    const std::optional<std::string> other = gb().email(near);
    ASSERT_TRUE(other.has_value()) << near;
    EXPECT_NE(*other, subject) << near;
  }
}

TEST(Normalizer, ObsoleteFormsNeverMatchAnotherAddress) {
  const std::string subject = *gb().email("d..steffes@enron.com");
  for (std::string_view other : {"xd..steffes@enron.com", "steffes@enron.com.au",
                                 "d.steffes@enron.com", "dsteffes@enron.com",
                                 "d..steffes@enron.co", "d...steffes@enron.com"}) {
    EXPECT_NE(gb().email(other).value_or(""), subject) << other;
  }
  EXPECT_NE(*gb().email("john.@x.com"), *gb().email("john@x.com"));
  EXPECT_NE(*gb().email("\"john doe\"@x.com"), *gb().email("johndoe@x.com"));
  // In text, the obsolete form is found whole, and near misses stay apart.
  std::vector<Identity> out;
  gb().extract_emails_from_text("for <d..steffes@enron.com>; by xd..steffes@enron.com.au",
                                Role::received, "Received", out);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[0].value, "d..steffes@enron.com");
  EXPECT_EQ(out[0].field, "Received");
  EXPECT_EQ(out[1].value, "xd..steffes@enron.com.au");
}

TEST(Normalizer, HeaderValuesKeepEqualsSignsInLocalParts) {
  std::vector<Identity> out;
  gb().extract_emails_from_text(
      "(envelope-from <bounces+1733-3461-list=lists.example.net@em5045.example.com>)",
      Role::received, "Received", out);
  gb().extract_emails_from_text("06237f065c=j.rognskog@example.com", Role::header, "X-Mailfrom", out);
  std::vector<std::string> values;
  for (const Identity &id : out) {
    values.push_back(id.value);
  }
  EXPECT_NE(std::find(values.begin(), values.end(), "bounces@em5045.example.com"), values.end());
  EXPECT_NE(std::find(values.begin(), values.end(), "06237f065c=j.rognskog@example.com"), values.end());
}

TEST(Normalizer, UrlPathSegmentsAndPartReferencesAreNotAddresses) {
  std::vector<Identity> out;
  gb().extract_from_text("Link: https://lore.kernel.org/r/20251008181027.1-1-a.b@example.de/T/#t\n"
                         "<img src=\"cid:part1.abc@example.com\"> mid:msg.1@example.com\n"
                         "list: clueless@example.org/majordomo@example.org, write to ok@example.org",
                         Role::body, out);
  std::vector<std::string> values;
  for (const Identity &id : out) {
    if (id.kind == IdentityKind::email) {
      values.push_back(id.value);
    }
  }
  EXPECT_EQ(values, (std::vector<std::string>{"clueless@example.org", "ok@example.org"}));
}

TEST(Normalizer, NameVariantsTransliterateGermanAndNordicLetters) {
  using V = std::vector<std::vector<std::string>>;
  EXPECT_EQ(gb().name_token_variants("Ralf B\xC3\xA4" "chle"),
            (V{{"ralf"}, {"bachle", "baechle"}}));
  EXPECT_EQ(gb().name_token_variants("Ralf Baechle"), (V{{"ralf"}, {"baechle"}}));
  EXPECT_EQ(gb().name_token_variants("S\xC3\xB8ren Gro\xC3\x9F \xC3\x85se"),
            (V{{"soren", "soeren"}, {"gross"}, {"ase", "aase"}}));
  // Decomposed input (a + U+0308) spells the same.
  EXPECT_EQ(gb().name_token_variants("Ba\xCC\x88" "chle"), (V{{"bachle", "baechle"}}));
  EXPECT_EQ(gb().name_token_variants("Jos\xC3\xA9"), (V{{"jose"}}));
}

TEST(Normalizer, ConfiguredSubaddressSeparators) {
  const Normalizer plus_minus(
      NormalizeOptions{.subaddress_separators = "+-", .phone_region = "GB"});
  EXPECT_EQ(plus_minus.email("alice-news@example.com"), "alice@example.com");
  EXPECT_EQ(plus_minus.email("alice+news@example.com"), "alice@example.com");
  EXPECT_EQ(plus_minus.email("alice-news+x@example.com"), "alice@example.com");
  EXPECT_EQ(plus_minus.email("mary-jane.smith@example.com"), "mary@example.com");
  const Normalizer none(NormalizeOptions{.subaddress_separators = "", .phone_region = "GB"});
  EXPECT_EQ(none.email("alice+news@example.com"), "alice+news@example.com");
}

TEST(Normalizer, IdnAndAsciiFormsAreTheSame) {
  EXPECT_EQ(gb().email("Alice@BÜCHER.example"), gb().email("alice@xn--bcher-kva.example"));
  EXPECT_EQ(gb().email("user@münchen.de"), gb().email("user@xn--mnchen-3ya.de"));
}

// ---------------------------------------------------------------------------------------------
// Names.

TEST(Normalizer, NameTokens) {
  using Tokens = std::vector<std::string>;
  EXPECT_EQ(gb().name_tokens("Alice Smith"), (Tokens{"alice", "smith"}));
  EXPECT_EQ(gb().name_tokens("Smith, Alice"), (Tokens{"smith", "alice"}));
  EXPECT_EQ(gb().name_tokens("ALICE SMITH"), (Tokens{"alice", "smith"}));
  EXPECT_EQ(gb().name_tokens("Ålice Smíth"), (Tokens{"alice", "smith"}));
  EXPECT_EQ(gb().name_tokens("\"Smith, Alice\""), (Tokens{"smith", "alice"}));
  EXPECT_EQ(gb().name_tokens("O'Brien-Jones"), (Tokens{"o", "brien", "jones"}));
  EXPECT_EQ(gb().name_tokens("Jörg Straße"), (Tokens{"jorg", "strasse"}));
  EXPECT_EQ(gb().name_tokens("Søren Kierkegaard"), (Tokens{"soren", "kierkegaard"}));
  EXPECT_EQ(gb().name_tokens("Łukasz Đorđević"), (Tokens{"lukasz", "dordevic"}));
  EXPECT_EQ(gb().name_tokens("Æsa Œuvre"), (Tokens{"aesa", "oeuvre"}));
  EXPECT_EQ(gb().name_tokens("François  Müller\t(HR)"), (Tokens{"francois", "muller", "hr"}));
  EXPECT_EQ(gb().name_tokens("ｆｕｌｌｗｉｄｔｈ"), (Tokens{"fullwidth"}));
  EXPECT_EQ(gb().name_tokens("山田 太郎"), (Tokens{"山田", "太郎"}));
  EXPECT_TRUE(gb().name_tokens("").empty());
  EXPECT_TRUE(gb().name_tokens(" , ' - ").empty());
  EXPECT_EQ(gb().name_tokens("Al\xffice \xc3"), (Tokens{"alice"}));
}

TEST(Normalizer, NameOrderAndAccentsGiveTheSameTokenSet) {
  auto sorted = [](std::vector<std::string> tokens) {
    std::ranges::sort(tokens);
    return tokens;
  };
  EXPECT_EQ(sorted(gb().name_tokens("Smith, Alice")), sorted(gb().name_tokens("Alice Smith")));
  EXPECT_EQ(sorted(gb().name_tokens("SMÍTH, ÁLICE")), sorted(gb().name_tokens("alice smith")));
}

// ---------------------------------------------------------------------------------------------
// Phones.

TEST(Normalizer, PhoneNotations) {
  for (const std::string_view raw :
       {"+44 20 7946 0123", "020 7946 0123", "(020) 7946-0123", "0044 20 7946 0123",
        "+44 (0)20 7946 0123", "+442079460123", "tel:+44-20-7946-0123", " 020.7946.0123 "}) {
    EXPECT_EQ(gb().phone(raw), "+442079460123") << raw;
  }
  const Normalizer us(NormalizeOptions{.subaddress_separators = "+", .phone_region = "US"});
  EXPECT_EQ(us.phone("(650) 253-0000"), "+16502530000");
  EXPECT_EQ(us.phone("650.253.0000"), "+16502530000");
  EXPECT_EQ(us.phone("+44 20 7946 0123"), "+442079460123");
  const Normalizer lower_region(
      NormalizeOptions{.subaddress_separators = "+", .phone_region = "us"});
  EXPECT_EQ(lower_region.phone("(650) 253-0000"), "+16502530000");
}

TEST(Normalizer, PhoneRejects) {
  for (const std::string_view raw :
       {"", "12345", "123 456", "alice", "+44", "+44 20", "not a number at all",
        "999999999999999999999999", "0\xff" "20 7946 0123"}) {
    EXPECT_FALSE(gb().phone(raw).has_value()) << raw;
  }
}

// ---------------------------------------------------------------------------------------------
// IP addresses.

struct IpCase {
  std::string_view raw;
  std::optional<std::string_view> expected;
};

void PrintTo(const IpCase &c, std::ostream *os) { *os << '"' << c.raw << '"'; }

class NormalizerIp : public ::testing::TestWithParam<IpCase> {};

TEST_P(NormalizerIp, Normalises) {
  const IpCase &c = GetParam();
  const std::optional<std::string> got = gb().ip(c.raw);
  if (c.expected) {
    ASSERT_TRUE(got.has_value()) << "rejected: " << c.raw;
    EXPECT_EQ(*got, *c.expected) << "input: " << c.raw;
  } else {
    EXPECT_FALSE(got.has_value()) << "accepted: " << c.raw << " as " << got.value_or("");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Normalizer, NormalizerIp,
    ::testing::Values(IpCase{"203.0.113.45", "203.0.113.45"},
                      IpCase{" 203.0.113.45\n", "203.0.113.45"},
                      IpCase{"[203.0.113.45]", "203.0.113.45"},
                      IpCase{"203.000.113.045", "203.0.113.45"},
                      IpCase{"0.0.0.0", "0.0.0.0"},
                      IpCase{"255.255.255.255", "255.255.255.255"},
                      IpCase{"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
                      IpCase{"2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"},
                      IpCase{"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},
                      IpCase{"[2001:db8::1]", "2001:db8::1"},
                      IpCase{"IPv6:2001:db8::1", "2001:db8::1"},
                      IpCase{"[IPv6:2001:DB8::1]", "2001:db8::1"},
                      IpCase{"::1", "::1"},
                      IpCase{"::ffff:192.0.2.1", "192.0.2.1"},
                      IpCase{"::FFFF:C000:0201", "192.0.2.1"},
                      IpCase{"", std::nullopt},
                      IpCase{"999.1.1.1", std::nullopt},
                      IpCase{"256.1.1.1", std::nullopt},
                      IpCase{"1.2.3", std::nullopt},
                      IpCase{"1.2.3.4.5", std::nullopt},
                      IpCase{"1..2.3", std::nullopt},
                      IpCase{"1.2.3.4.", std::nullopt},
                      IpCase{"1.2.3.1234", std::nullopt},
                      IpCase{"a.b.c.d", std::nullopt},
                      IpCase{"fe80::1%eth0", std::nullopt},
                      IpCase{"2001:db8::1::2", std::nullopt},
                      IpCase{"2001:db8:g::1", std::nullopt},
                      IpCase{"1:2:3:4:5:6:7:8:9", std::nullopt},
                      IpCase{"localhost", std::nullopt}),
    case_name<IpCase>);

// ---------------------------------------------------------------------------------------------
// Extraction from free text.

std::vector<std::string> values_of(const std::vector<Identity> &ids, IdentityKind kind) {
  std::vector<std::string> values;
  for (const Identity &id : ids) {
    if (id.kind == kind) {
      values.push_back(id.value);
    }
  }
  return values;
}

std::vector<Identity> scan(std::string_view text, const Normalizer &normalizer = gb()) {
  std::vector<Identity> out;
  normalizer.extract_from_text(text, Role::body, out);
  return out;
}

using Values = std::vector<std::string>;

TEST(Normalizer, ExtractsEmailsFromProse) {
  const auto ids = scan(
      "Hi, please write to Alice.Smith@Example.com, or (bob@example.org). "
      "Ask \"carol@example.net\"; also <dave@example.co.uk>! Mail eve@example.com.\n"
      "Use mailto:frank+list@example.com?subject=x and sasl_username=grace@example.com "
      "or see https://x.example/?email=heidi@example.com&x=1 and 'ivan@example.com'.");
  EXPECT_EQ(values_of(ids, IdentityKind::email),
            (Values{"alice.smith@example.com", "bob@example.org", "carol@example.net",
                    "dave@example.co.uk", "eve@example.com", "frank@example.com",
                    "grace@example.com", "heidi@example.com", "ivan@example.com"}));
  for (const Identity &id : ids) {
    EXPECT_EQ(id.role, Role::body);
  }
}

TEST(Normalizer, ExtractsUnicodeAndIdnEmails) {
  const auto ids = scan("Schreiben Sie an jörg@bücher.example oder an xn@xn--bcher-kva.example.");
  EXPECT_EQ(values_of(ids, IdentityKind::email),
            (Values{"jörg@xn--bcher-kva.example", "xn@xn--bcher-kva.example"}));
}

TEST(Normalizer, IgnoresNonAddressesInProse) {
  const auto ids = scan("meet @ noon; a@b; x@localhost; user@host.123; @handle; foo@ bar.com; "
                        "x@example..com");
  EXPECT_TRUE(values_of(ids, IdentityKind::email).empty())
      << ::testing::PrintToString(values_of(ids, IdentityKind::email));
}

TEST(Normalizer, EmailsInTextMatchWhole) {
  const auto ids = scan("from malice.smith@example.com and alice.smithson@example.com and "
                        "alice.smith@example.co, bob+alice.smith@example.com.");
  const Values emails = values_of(ids, IdentityKind::email);
  EXPECT_EQ(emails, (Values{"malice.smith@example.com", "alice.smithson@example.com",
                            "alice.smith@example.co", "bob@example.com"}));
  EXPECT_EQ(std::ranges::count(emails, "alice.smith@example.com"), 0);
}

TEST(Normalizer, ExtractsPhonesFromProse) {
  const auto ids = scan("Call me on +44 20 7946 0123 (office) or 020 7946 0124, mobile "
                        "07911 123456. Fax: (020) 7946-0125. Order no. 12345, ref 2023-11-14.");
  EXPECT_EQ(values_of(ids, IdentityKind::phone),
            (Values{"+442079460123", "+442079460124", "+447911123456", "+442079460125"}));
}

TEST(Normalizer, ExtractsPhonesNextToOtherNumbers) {
  const auto ids = scan("+44 20 7946 0123 203.0.113.45\n"
                        "12 020 7946 0124 020 7946 0125 / 2023-11-14 13:00\n"
                        "1000 1001 1002 1003 1004 1005 1006 1007 1008 1009 (020) 7946 0126 1010");
  EXPECT_EQ(values_of(ids, IdentityKind::phone),
            (Values{"+442079460123", "+442079460124", "+442079460125", "+442079460126"}));
}

TEST(Normalizer, ExtractsPhonesWithTheConfiguredRegion) {
  const Normalizer us(NormalizeOptions{.subaddress_separators = "+", .phone_region = "US"});
  const auto ids = scan("Ring (650) 253-0000 or +44 20 7946 0123 tomorrow.", us);
  EXPECT_EQ(values_of(ids, IdentityKind::phone), (Values{"+16502530000", "+442079460123"}));
}

TEST(Normalizer, ExtractsIpsFromProse) {
  const auto ids = scan("Login from 203.0.113.45, then [198.51.100.7]:25 and 2001:DB8::1. "
                        "Also IPv6:2001:db8::2 and ::ffff:192.0.2.33 (mapped); client=192.0.2.9.");
  EXPECT_EQ(values_of(ids, IdentityKind::ip),
            (Values{"203.0.113.45", "198.51.100.7", "192.0.2.33", "192.0.2.9", "2001:db8::1",
                    "2001:db8::2"}));
}

TEST(Normalizer, IgnoresVersionStringsAndNonIps) {
  const auto ids = scan("version 1.2.3.4.5 and v10.0.0.1 build 1.2.3 999.1.1.1 "
                        "3.14159 at 10:30:45, mac 00:1a:2b:3c:4d:5e, std::string, a::b, "
                        "fe80::1%eth0 and 4.3.2.1.in-addr.arpa");
  EXPECT_TRUE(values_of(ids, IdentityKind::ip).empty())
      << ::testing::PrintToString(values_of(ids, IdentityKind::ip));
}

TEST(Normalizer, ReportsEachValueOncePerText) {
  const auto ids = scan("alice@example.com ALICE@example.com alice+x@example.com "
                        "1.2.3.4 1.2.3.4 ::ffff:1.2.3.4 020 7946 0123 +44 20 7946 0123");
  EXPECT_EQ(values_of(ids, IdentityKind::email), (Values{"alice@example.com"}));
  EXPECT_EQ(values_of(ids, IdentityKind::ip), (Values{"1.2.3.4"}));
  EXPECT_EQ(values_of(ids, IdentityKind::phone), (Values{"+442079460123"}));
}

TEST(Normalizer, AppendsToExistingOutput) {
  std::vector<Identity> out{Identity{IdentityKind::email, Role::from, "x@example.com"}};
  gb().extract_from_text("x@example.com", Role::subject, out);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[1], (Identity{IdentityKind::email, Role::subject, "x@example.com"}));
}

TEST(Normalizer, InvalidUtf8DoesNotCrash) {
  std::string text = "\xff\xfe alice@exa\xc3mple.com \xe2\x82 bob@example.com \xc3";
  text += std::string("\0\x80\xbf 203.0.113.45 \xf4\x90\x80\x80 +44 20 7946 0123 \xed\xa0\x80", 40);
  text += "@\xff@\xc3\xa9@";
  const auto ids = scan(text);
  EXPECT_EQ(values_of(ids, IdentityKind::email), (Values{"bob@example.com"}));
  EXPECT_EQ(values_of(ids, IdentityKind::ip), (Values{"203.0.113.45"}));
  EXPECT_EQ(values_of(ids, IdentityKind::phone), (Values{"+442079460123"}));
  std::string garbage;
  for (int i = 0; i < 20000; ++i) {
    garbage.push_back(static_cast<char>((i * 131 + 7) % 256));
  }
  EXPECT_NO_FATAL_FAILURE((void)scan(garbage));
  EXPECT_NO_FATAL_FAILURE((void)gb().name_tokens(garbage));
  EXPECT_NO_FATAL_FAILURE((void)gb().email(garbage));
  EXPECT_NO_FATAL_FAILURE((void)gb().phone(garbage));
  EXPECT_NO_FATAL_FAILURE((void)gb().ip(garbage));
}

TEST(Normalizer, HugeTextFinishes) {
  // 16 MB: prose with identities, long runs of digits, separators and pathological '@'s.
  std::string text;
  text.reserve(16U << 20U);
  int line = 0;
  while (text.size() < (16U << 20U)) {
    text += "Dear customer, contact alice.smith@example.com or call 020 7946 0123 from ";
    text += "203.0.113." + std::to_string(line % 256) + " ticket " + std::to_string(line) + ".\n";
    if (line % 1000 == 0) {
      text += std::string(4096, '@') + std::string(4096, 'a') + std::string(2048, '.');
      text += std::string(4096, '7') + " " + std::string(1000, ':') + "\n";
      for (int i = 0; i < 200; ++i) {
        text += std::to_string(1000 + i) + " ";
      }
      text += "\n";
    }
    ++line;
  }
  const auto ids = scan(text);
  EXPECT_EQ(values_of(ids, IdentityKind::email), (Values{"alice.smith@example.com"}));
  EXPECT_EQ(values_of(ids, IdentityKind::phone), (Values{"+442079460123"}));
  EXPECT_EQ(values_of(ids, IdentityKind::ip).size(), 256U);
}

// ---------------------------------------------------------------------------------------------
// Delivery logs: digit runs everywhere, phone numbers almost never.

constexpr std::string_view k_mta_log =
    "Nov 14 10:00:00 mx1 postfix/smtpd[12345]: 4B2F1C0A7D: client=mail.example.net"
    "[203.0.113.45]:52314, sasl_method=PLAIN, sasl_username=alice@example.com\n"
    "Nov 14 10:00:01 mx1 postfix/qmgr[2345]: 4B2F1C0A7D: from=<alice@example.com>, "
    "size=12345678, nrcpt=1 (queue active)\n"
    "Nov 14 10:00:01 mx1 postfix/cleanup[2346]: 4B2F1C0A7D: "
    "message-id=<1234567.89012@mail.example.net>\n"
    "2023-11-14T10:00:00.123+01:00 mx1 postfix/smtp[1234567]: 4B2F1C0A7D: to=<bob@example.org>, "
    "relay=mx.example.org[198.51.100.7]:25, delay=1234567, delays=0.01/0/0.02/0.05, dsn=2.0.0, "
    "status=sent (250 2.0.0 Ok: queued as 1234567890AB)\n"
    "Nov 14 10:00:02 mx1 postfix/smtpd[12345]: disconnect from mail.example.net[203.0.113.45] "
    "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n"
    "2023-11-14 10:00:00 1r2uXk-000ABC-12 <= carol@example.net H=mail.example.net "
    "[203.0.113.45]:54321 P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no S=1234567 "
    "id=20231114100000.12345678@example.net\n"
    "2023-11-14 10:00:01 1r2uXk-000ABC-12 => bob@example.org R=dnslookup T=remote_smtp "
    "H=mx.example.org [198.51.100.7] C=\"250 2.0.0 OK 1699956001 "
    "a1-20020a170906b20100b009a1c0ab1c2si1234567ejb.123 - gsmtp\" QT=1.234s DT=0.567s\n"
    "Nov 14 2023 10:00:03 mx1 dovecot: imap-login: Login: user=<alice@example.com>, "
    "method=PLAIN, rip=203.0.113.45, lip=192.0.2.10, mpid=1234567, TLS, session=<AbCdEf123456>\n"
    "Nov 14 10:00:04 mx1 dovecot: imap(alice@example.com)<1234567><AbCdEf123456>: Disconnected: "
    "Logged out in=1234567 out=5678901 deleted=0 expunged=0 hdr_bytes=0 body_bytes=0\n"
    "14.11.2023 10:00:05 uid=1000 gid=1000 pid [1234567] port 25 2001:db8::25 queue 4B2F1C0A7D "
    "1234 5678 ok\n";

TEST(Normalizer, MtaLogLinesHoldNoPhones) {
  for (const std::string_view region : {"GB", "US", "DE", "IN"}) {
    const Normalizer normalizer(
        NormalizeOptions{.subaddress_separators = "+", .phone_region = std::string(region)});
    const auto ids = scan(k_mta_log, normalizer);
    EXPECT_TRUE(values_of(ids, IdentityKind::phone).empty())
        << region << ": " << ::testing::PrintToString(values_of(ids, IdentityKind::phone));
    EXPECT_EQ(values_of(ids, IdentityKind::email),
              (Values{"alice@example.com", "1234567.89012@mail.example.net", "bob@example.org",
                      "carol@example.net", "20231114100000.12345678@example.net"}))
        << region;
    EXPECT_EQ(values_of(ids, IdentityKind::ip),
              (Values{"203.0.113.45", "198.51.100.7", "192.0.2.10", "2001:db8::25"}))
        << region;
  }
}

TEST(Normalizer, FindsPhonesInLogLines) {
  const auto ids = scan(
      "Nov 14 10:00:00 mx1 postfix/cleanup[12345]: 4B2F1C0A7D: warning: header Subject: "
      "Call me from=<alice@example.com> to=<bob@example.org> proto=ESMTP helo=<mail.example.net> "
      "\"Call +44 20 7946 0123\"\n"
      "2023-11-14 10:00:00 1r2uXk-000ABC-12 <= carol@example.net H=(host) [203.0.113.45]:25 "
      "T=\"Ring 020 7946 0124 or [+442079460125] or phone=+44 20 7946 0126\" S=1234567\n");
  EXPECT_EQ(values_of(ids, IdentityKind::phone),
            (Values{"+442079460123", "+442079460124", "+442079460125", "+442079460126"}));
  EXPECT_EQ(values_of(ids, IdentityKind::email),
            (Values{"alice@example.com", "bob@example.org", "carol@example.net"}));
  EXPECT_EQ(values_of(ids, IdentityKind::ip), (Values{"203.0.113.45"}));
}

TEST(Normalizer, LogFieldsAreNotPhones) {
  // Each of these is a valid US number once its digits are taken alone.
  const Normalizer us(NormalizeOptions{.subaddress_separators = "+", .phone_region = "US"});
  for (const std::string_view text :
       {"size=6502530000, nrcpt=1", "pid [6502530000]: started", "<6502530000.1@example.net>",
        "queue 6502530000AB: removed", "id=6502530000", "x6502530000 ok", "#6502530000",
        "at 10:00:00.6502530000+01:00", "uid 6502530000_x", "ref 650.253.0000.1"}) {
    EXPECT_TRUE(values_of(scan(text, us), IdentityKind::phone).empty())
        << text << ": " << ::testing::PrintToString(values_of(scan(text, us), IdentityKind::phone));
  }
  // Dates, times and addresses next to a number are not part of it.
  EXPECT_EQ(values_of(scan("2023-11-14 (650) 253-0000 10:30", us), IdentityKind::phone),
            (Values{"+16502530000"}));
  EXPECT_EQ(values_of(scan("on 14.11.2023 0049 30 12345678 10:00"), IdentityKind::phone),
            (Values{"+493012345678"}));
  EXPECT_EQ(values_of(scan("from 192.0.2.1 020 7946 0123 192.0.2.2"), IdentityKind::phone),
            (Values{"+442079460123"}));
  // A number written in groups, or in international form, keeps its brackets and keys.
  EXPECT_EQ(values_of(scan("[020 7946 0123] (+44 20 7946 0124) [+442079460125] "
                           "phone=+44 20 7946 0126 tel:+44-20-7946-0127"),
                      IdentityKind::phone),
            (Values{"+442079460123", "+442079460124", "+442079460125", "+442079460126",
                    "+442079460127"}));
}

TEST(Normalizer, ExtractsPhonesWithNoBreakSpaces) {
  const auto ids = scan("Tel.\u00a0020\u00a07946\u00a00123, portable +33\u202f6\u202f12\u202f34"
                        "\u202f56\u202f78.");
  EXPECT_EQ(values_of(ids, IdentityKind::phone), (Values{"+442079460123", "+33612345678"}));
}

TEST(Normalizer, ManyLogTransactions) {
  // 20,000 lines in 2,000 transactions of 10 lines, as the delivery-log connector passes them.
  constexpr int k_transactions = 2000;
  std::size_t emails = 0;
  std::size_t ips = 0;
  std::size_t phones = 0;
  std::string text;
  std::vector<Identity> out;
  for (int t = 0; t < k_transactions; ++t) {
    const std::string n = std::to_string(t);
    const std::string pid = std::to_string(10000 + t * 7);
    const std::string queue = "4B2F" + std::to_string(100000 + t) + "D";
    const std::string client = "198.51.100." + std::to_string(t % 250 + 1);
    const std::string relay = "192.0.2." + std::to_string(t % 250 + 1);
    const std::string time = "10:" + std::to_string(10 + t % 50) + ":" + std::to_string(10 + t % 49);
    const std::string syslog = "Nov 14 " + time + " mx1 postfix/";
    text.clear();
    text += syslog + "smtpd[" + pid + "]: connect from unknown[" + client + "]\n";
    text += syslog + "smtpd[" + pid + "]: " + queue + ": client=unknown[" + client + "]:" +
            std::to_string(1024 + t) + "\n";
    text += syslog + "cleanup[" + pid + "]: " + queue + ": message-id=<" +
            std::to_string(1699956000 + t) + "." + pid + "@mail.example.net>\n";
    text += syslog + "qmgr[" + pid + "]: " + queue + ": from=<user" + n +
            "@example.net>, size=" + std::to_string(1234567 + t) + ", nrcpt=1 (queue active)\n";
    text += "2023-11-14T" + time + ".123456+01:00 mx1 postfix/smtp[" + pid + "]: " + queue +
            ": to=<rcpt" + n + "@example.com>, relay=mx.example.com[" + relay +
            "]:25, delay=1.2, delays=0.01/0/0.02/1.1, dsn=2.0.0, status=sent (250 2.0.0 OK " +
            std::to_string(1699956000 + t) + " a1si" + pid + "ejb.123 - gsmtp)\n";
    text += syslog + "qmgr[" + pid + "]: " + queue + ": removed\n";
    text += syslog + "smtpd[" + pid + "]: disconnect from unknown[" + client +
            "] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n";
    text += "2023-11-14 " + time + " 1r2uXk-" + pid + "-12 <= sender" + n +
            "@example.org H=(helo) [" + client + "]:54321 P=esmtps S=" + pid + " id=" + pid +
            "@example.org\n";
    text += "Nov 14 " + time + " mx1 dovecot: imap-login: Login: user=<user" + n +
            "@example.net>, method=PLAIN, rip=" + client + ", lip=10.0.0.1, mpid=" + pid +
            ", session=<AbCd" + pid + ">\n";
    text += syslog + "cleanup[" + pid + "]: " + queue + ": warning: header Subject: " +
            (t % 100 == 0 ? "call +44 20 7946 " + std::to_string(1000 + t / 100)
                          : "order " + std::to_string(1000000 + t)) +
            "\n";
    out.clear();
    gb().extract_from_text(text, Role::body, out);
    emails += values_of(out, IdentityKind::email).size();
    ips += values_of(out, IdentityKind::ip).size();
    phones += values_of(out, IdentityKind::phone).size();
  }
  // user, rcpt, message-id, sender and id= addresses; client, relay and local IPs; one phone in
  // every 100th transaction.
  EXPECT_EQ(emails, 5U * k_transactions);
  EXPECT_EQ(ips, 3U * k_transactions);
  EXPECT_EQ(phones, k_transactions / 100U);
}

// ---------------------------------------------------------------------------------------------
// Whole items.

TEST(Normalizer, ExtractFromItemMapsRolesAndDedupes) {
  connectors::Item item;
  item.addresses = {
      {Role::from, "Smith, Alice", "Alice.Smith+news@Example.com"},
      {Role::to, "Bob", "bob@example.org"},
      {Role::cc, "", "bob@example.org"},
      {Role::to, "bob@example.org", "bob@example.org"},  // name is the address again
      {Role::reply_to, "'alice.smith@example.com'", "alice.smith@example.com"},
      {Role::from, "ALICE SMITH", "alice.smith@example.com"}, // duplicate of the first
      {Role::bcc, "Carol Ø", ""},                            // name only
      {Role::cc, "Dave Jones (dave@example.net)", "dave@example.net"},
      {Role::cc, "@", "x@example.net"},
      {Role::to, "", "not an address"},
  };
  item.ips = {{Role::received, "[203.0.113.45]"},
              {Role::received, "203.0.113.45"},
              {Role::log_client, "2001:DB8::1"},
              {Role::received, "unknown"}};
  item.texts = {{Role::subject, "Re: call 020 7946 0123"},
                {Role::body, "Mail alice.smith@example.com or eve@example.net from 203.0.113.45"}};

  const std::vector<Identity> ids = gb().extract(item);
  const std::vector<Identity> expected{
      {IdentityKind::email, Role::from, "alice.smith@example.com"},
      {IdentityKind::name, Role::from, "smith alice"},
      {IdentityKind::email, Role::to, "bob@example.org"},
      {IdentityKind::name, Role::to, "bob"},
      {IdentityKind::email, Role::cc, "bob@example.org"},
      {IdentityKind::email, Role::reply_to, "alice.smith@example.com"},
      {IdentityKind::name, Role::from, "alice smith"},
      {IdentityKind::name, Role::bcc, "carol o", "carol oe"}, // ø is also spelt oe
      {IdentityKind::email, Role::cc, "dave@example.net"},
      {IdentityKind::name, Role::cc, "dave jones"},
      {IdentityKind::email, Role::cc, "x@example.net"},
      {IdentityKind::ip, Role::received, "203.0.113.45"},
      {IdentityKind::ip, Role::log_client, "2001:db8::1"},
      {IdentityKind::phone, Role::subject, "+442079460123"},
      {IdentityKind::email, Role::body, "alice.smith@example.com"},
      {IdentityKind::email, Role::body, "eve@example.net"},
      {IdentityKind::ip, Role::body, "203.0.113.45"},
  };
  EXPECT_EQ(ids, expected);
}

TEST(Normalizer, ExtractFromEmptyItem) { EXPECT_TRUE(gb().extract(connectors::Item{}).empty()); }

TEST(Normalizer, IsUsableFromSeveralThreads) {
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (std::size_t t = 0; t < ok.size(); ++t) {
    threads.emplace_back([&ok, t] {
      for (int i = 0; i < 50; ++i) {
        const auto ids = scan("alice@bücher.example +44 20 7946 0123 203.0.113.45 Ålice");
        if (ids.size() == 3 && gb().phone("020 7946 0123") == "+442079460123") {
          ++ok[t];
        }
      }
    });
  }
  for (std::thread &thread : threads) {
    thread.join();
  }
  EXPECT_EQ(ok, std::vector<int>(4, 50));
}

TEST(Normalizer, KindNames) {
  EXPECT_EQ(to_string(IdentityKind::email), "email");
  EXPECT_EQ(to_string(IdentityKind::name), "name");
  EXPECT_EQ(to_string(IdentityKind::phone), "phone");
  EXPECT_EQ(to_string(IdentityKind::ip), "ip");
}

TEST(Normalizer, MovedNormalizerStillWorks) {
  Normalizer a(NormalizeOptions{});
  Normalizer b(std::move(a));
  EXPECT_EQ(b.email("A@B.example"), "a@b.example");
  Normalizer c(NormalizeOptions{.subaddress_separators = "-", .phone_region = "GB"});
  c = std::move(b);
  EXPECT_EQ(c.email("a+x@b.example"), "a@b.example");
}

// ---------------------------------------------------------------------------------------------
// BATV and SRS rewritten senders (issue 11): indexed also as the address they wrap.

TEST(Normalizer, BatvAndSrsUnwrapToTheOriginalSender) {
  const std::vector<std::pair<std::string_view, std::string_view>> cases{
      {"prvs=1234abcd=local@dom.example", "local@dom.example"},
      {"prvs=06237f065c=j.rognskog@fugro.com", "j.rognskog@fugro.com"},
      {"PRVS=06237F065C=J.Rognskog@Fugro.com", "j.rognskog@fugro.com"},
      {"<prvs=06237f065c=alice+news@example.com>", "alice@example.com"},
      {"SRS0=HHH0=TT=orig.example=local@fwd.example", "local@orig.example"},
      {"SRS0=x8+/=zB=orig.example.co.uk=alice.smith@fwd.example", "alice.smith@orig.example.co.uk"},
      {"SRS0+HHH0=TT=orig.example=local@fwd.example", "local@orig.example"},
      {"SRS0-HHH0=TT=orig.example=local@fwd.example", "local@orig.example"},
      {"srs0=hhh0=tt=orig.example=a=b@fwd.example", "a=b@orig.example"}, // '=' in the original
      {"SRS1=HHH1=fwd1.example==HHH0=TT=orig.example=local@fwd2.example", "local@orig.example"},
      {"SRS1=HHH1=fwd1.example=+HHH0=TT=orig.example=local@fwd2.example", "local@orig.example"},
  };
  for (const auto &[raw, expected] : cases) {
    EXPECT_EQ(gb().wrapped_email(raw), std::optional<std::string>(expected)) << raw;
  }
}

TEST(Normalizer, EqualsSignsAloneDoNotMakeAnotherAddress) {
  for (std::string_view raw : {
           "a=b@example.com",                                 // '=' in a plain local part
           "bounces+1733-3461-list=lists.example.net@em.example.com", // VERP, not SRS
           "prvs@example.com", "prvs=@example.com", "prvs=1234abcd=@example.com",
           "prvs=12345=local@example.com",                    // tag too short
           "prvs=1234abcdxyz=local@example.com",              // tag not hex
           "prvs=0123456789abcdef0=local@example.com",        // tag too long
           "xprvs=1234abcd=local@example.com",                // not at the start
           "srs0=hhh=tt=nodot=local@fwd.example",             // original domain without a dot
           "srs0=hhh=t=orig.example=local@fwd.example",       // timestamp of one character
           "srs0=hhh=t1=orig.example=local@fwd.example",      // '1' is no base32 character
           "srs0=hhh=tt=orig.example=@fwd.example",           // empty original local part
           "srs0=hhh=tt=orig.example@fwd.example",            // no original local part
           "srs0hhh=tt=orig.example=local@fwd.example",       // no separator after SRS0
           "srs0=hh!h=tt=orig.example=local@fwd.example",     // hash not base64
           "srs0=hhh=tt=-orig.example=local@fwd.example",     // bad label
           "srs2=hhh=tt=orig.example=local@fwd.example",      // no such SRS
           "srs1=hhh=fwd1.example=hhh=tt=orig.example=local@fwd.example", // no second separator
           "not an address", ""}) {
    EXPECT_EQ(gb().wrapped_email(raw), std::nullopt) << raw;
  }
}

TEST(Normalizer, ItemsIndexTheWrappedSenderInTheSameRole) {
  connectors::Item item;
  item.addresses = {{Role::return_path, "", "SRS0=ab+C=ZQ=example.com=alice.smith@forwarder.example"},
                    {Role::from, "", "prvs=06237f065c=bob@example.org"},
                    {Role::to, "", "a=b@example.net"}};
  item.texts = {{Role::header, "prvs=1234abcd=carol@example.org", "X-Mailfrom",
                 connectors::TextScan::addresses},
                {Role::body, "bounced: <SRS0=HHH0=TT=example.net=dave@fwd.example> and "
                             "from=prvs=1234abcd=erin@example.net, not a=frank@example.net", {},
                 connectors::TextScan::full}};
  const std::vector<Identity> ids = gb().extract(item);
  auto has = [&](Role role, std::string_view value) {
    return std::ranges::any_of(ids, [&](const Identity &id) {
      return id.kind == IdentityKind::email && id.role == role && id.value == value;
    });
  };
  EXPECT_TRUE(has(Role::return_path, "alice.smith@example.com"));
  EXPECT_TRUE(has(Role::from, "prvs=06237f065c=bob@example.org"));
  EXPECT_TRUE(has(Role::from, "bob@example.org"));
  EXPECT_TRUE(has(Role::header, "carol@example.org"));
  EXPECT_TRUE(has(Role::body, "dave@example.net"));
  EXPECT_TRUE(has(Role::body, "erin@example.net"));
  EXPECT_TRUE(has(Role::to, "a=b@example.net"));
  EXPECT_FALSE(std::ranges::any_of(ids, [](const Identity &id) { return id.value == "b@example.net"; }));
}

// Found on real list mail (notmuch's test corpus, a 2009 thread): quoted attributions as Mailman's
// archives write them, "Keith Packard <keithp at keithp.com> wrote:". find missed them and
// `erase` left them in messages it redacted.
TEST(Normalizer, ObfuscatedAddressesOfListArchivesAreAddresses) {
  EXPECT_EQ(gb().email("keithp at keithp.com").value_or(""), "keithp@keithp.com");
  EXPECT_EQ(gb().email("Alice.Smith AT Example.COM").value_or(""), "alice.smith@example.com");
  EXPECT_EQ(gb().email("alice (at) example.com").value_or(""), "alice@example.com");
  EXPECT_EQ(gb().email("alice[at]example.com").value_or(""), "alice@example.com");
  EXPECT_EQ(gb().email("alice+news at example.com (Alice Smith)").value_or(""), "alice@example.com");
  for (std::string_view no : {"look at this", "at example.com", "alice at example", "alice at 10.30.45",
                              "alice at example.c", "alice at example..com", "meet alice at example.com",
                              "alice at example.com today"}) {
    EXPECT_FALSE(gb().email(no).has_value()) << no;
  }
  const std::string text = "On Wed, 18 Nov 2009, Keith Packard <keithp at keithp.com> wrote:\n"
                           "> see bob (at) example.org, carol[at]example.net and dave at 10.0.0.1.\n"
                           "Meet at the station at 10.30; mail x@example.com.";
  EXPECT_EQ(values_of(scan(text), IdentityKind::email),
            (Values{"x@example.com", "keithp@keithp.com", "bob@example.org", "carol@example.net"}));
  std::vector<TextSpan> spans = obfuscated_email_spans(text);
  ASSERT_EQ(spans.size(), 3U);
  EXPECT_EQ(text.substr(spans[0].begin, spans[0].end - spans[0].begin), "keithp at keithp.com");
  EXPECT_EQ(text.substr(spans[1].begin, spans[1].end - spans[1].begin), "bob (at) example.org");
  EXPECT_EQ(text.substr(spans[2].begin, spans[2].end - spans[2].begin), "carol[at]example.net");
  // Not in delivery logs: " at " there is the log's own word.
  std::vector<Identity> log;
  gb().extract_from_text("relay=mx at example.com status=sent", Role::log_to, log);
  EXPECT_TRUE(log.empty());
}

} // namespace
} // namespace maildsar::index
