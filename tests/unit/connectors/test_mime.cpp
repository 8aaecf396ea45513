// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/mime/mime_parser.hpp"

#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace maildsar::connectors::mime {
namespace {

bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    if (c < 0x80) {
      length = 1;
    } else if ((c & 0xE0U) == 0xC0U && c >= 0xC2) {
      length = 2;
    } else if ((c & 0xF0U) == 0xE0U) {
      length = 3;
    } else if ((c & 0xF8U) == 0xF0U && c <= 0xF4) {
      length = 4;
    } else {
      return false;
    }
    if (i + length > text.size()) {
      return false;
    }
    for (std::size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0U) != 0x80U) {
        return false;
      }
    }
    i += length;
  }
  return true;
}

/** Every string the decoder stored is valid UTF-8. */
void expect_all_utf8(const Item &item) {
  EXPECT_TRUE(is_valid_utf8(item.message_id));
  EXPECT_TRUE(is_valid_utf8(item.subject));
  for (const RawAddress &address : item.addresses) {
    EXPECT_TRUE(is_valid_utf8(address.name)) << address.name;
    EXPECT_TRUE(is_valid_utf8(address.addr)) << address.addr;
  }
  for (const RawText &text : item.texts) {
    EXPECT_TRUE(is_valid_utf8(text.text));
  }
  for (const RawValue &value : item.ips) {
    EXPECT_TRUE(is_valid_utf8(value.value));
  }
  for (const std::string &warning : item.warnings) {
    EXPECT_TRUE(is_valid_utf8(warning));
  }
}

Item decode_ok(std::string_view bytes) {
  Item item;
  const core::Status status = decode_message(bytes, item);
  EXPECT_TRUE(status.has_value()) << (status ? "" : status.error().message);
  expect_all_utf8(item);
  return item;
}

bool has_address(const Item &item, Role role, std::string_view name, std::string_view addr) {
  return std::any_of(item.addresses.begin(), item.addresses.end(), [&](const RawAddress &a) {
    return a.role == role && a.name == name && a.addr == addr;
  });
}

bool has_addr(const Item &item, Role role, std::string_view addr) {
  return std::any_of(item.addresses.begin(), item.addresses.end(),
                     [&](const RawAddress &a) { return a.role == role && a.addr == addr; });
}

bool has_any_addr(const Item &item, std::string_view addr) {
  return std::any_of(item.addresses.begin(), item.addresses.end(),
                     [&](const RawAddress &a) { return a.addr == addr; });
}

/** Some text of `role` contains `needle`. */
bool text_contains(const Item &item, Role role, std::string_view needle) {
  return std::any_of(item.texts.begin(), item.texts.end(), [&](const RawText &t) {
    return t.role == role && t.text.find(needle) != std::string::npos;
  });
}

bool any_text_contains(const Item &item, std::string_view needle) {
  return std::any_of(item.texts.begin(), item.texts.end(), [&](const RawText &t) {
    return t.text.find(needle) != std::string::npos;
  });
}

bool has_ip(const Item &item, std::string_view ip) {
  return std::any_of(item.ips.begin(), item.ips.end(), [&](const RawValue &v) {
    return v.role == Role::received && v.value == ip;
  });
}

std::string dump(const Item &item) {
  std::string out;
  for (const RawAddress &a : item.addresses) {
    out += std::string(to_string(a.role)) + ": [" + a.name + "] <" + a.addr + ">\n";
  }
  for (const RawText &t : item.texts) {
    out += std::string(to_string(t.role)) + ": " + t.text.substr(0, 200) + "\n";
  }
  for (const std::string &w : item.warnings) {
    out += "warning: " + w + "\n";
  }
  return out;
}

TEST(MimeDecoder, HeadersMessageIdDateSubject) {
  const Item item = decode_ok("From: Alice Smith <alice.smith@example.com>\n"
                              "To: bob@example.net\n"
                              "Subject: Hello there\n"
                              "Date: Tue, 14 Nov 2023 10:00:00 +0000\n"
                              "Message-ID: <abc.123@example.com>\n"
                              "\n"
                              "Hi Bob\n");
  EXPECT_EQ(item.message_id, "abc.123@example.com");
  ASSERT_TRUE(item.date.has_value());
  EXPECT_EQ(*item.date, 1699956000);
  EXPECT_EQ(item.subject, "Hello there");
  EXPECT_TRUE(has_address(item, Role::from, "Alice Smith", "alice.smith@example.com"));
  EXPECT_TRUE(has_address(item, Role::to, "", "bob@example.net"));
  EXPECT_TRUE(text_contains(item, Role::subject, "Hello there"));
  EXPECT_TRUE(text_contains(item, Role::body, "Hi Bob"));
  EXPECT_TRUE(item.warnings.empty()) << dump(item);
}

TEST(MimeDecoder, Rfc2047QAndBWordsInFromToSubject) {
  const Item item = decode_ok("From: =?ISO-8859-1?Q?Andr=E9_M=FCller?= <andre@example.com>\n"
                              "To: =?UTF-8?B?SsO2cmcgU2NobWlkdA==?= <joerg@example.com>,\n"
                              " \"=?utf-8?q?Bob_Jones?=\" <bob@example.com>\n"
                              "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=\n"
                              "\n"
                              "body\n");
  EXPECT_TRUE(has_address(item, Role::from, "André Müller", "andre@example.com")) << dump(item);
  EXPECT_TRUE(has_address(item, Role::to, "Jörg Schmidt", "joerg@example.com")) << dump(item);
  EXPECT_TRUE(has_address(item, Role::to, "Bob Jones", "bob@example.com")) << dump(item);
  EXPECT_EQ(item.subject, "Grüße aus München");
}

// GMime #133: adjacent encoded words in a display name lose text.
TEST(MimeDecoder, AdjacentEncodedWordsKeepAllText) {
  const Item item = decode_ok("From: =?UTF-8?Q?Al?= =?UTF-8?Q?ice_Smith?= <a@b.example>\n"
                              "To: =?UTF-8?B?QWxpY2U=?= =?UTF-8?B?IFNtaXRo?= <alice@example.com>\n"
                              "Cc: =?UTF-8?B?SsO2?=\n =?UTF-8?B?cmc=?= <joerg@example.com>\n"
                              "Subject: =?UTF-8?B?QWxpY2U=?= =?UTF-8?B?IFNtaXRo?=\n"
                              "\n"
                              "body\n");
  EXPECT_TRUE(has_address(item, Role::from, "Alice Smith", "a@b.example")) << dump(item);
  EXPECT_TRUE(has_address(item, Role::to, "Alice Smith", "alice@example.com")) << dump(item);
  // A UTF-8 sequence split across two words ("ö" = C3 B6) survives.
  EXPECT_TRUE(has_address(item, Role::cc, "Jörg", "joerg@example.com")) << dump(item);
  EXPECT_EQ(item.subject, "Alice Smith");
}

TEST(MimeDecoder, Rfc2231FilenameContinuationsWithCharset) {
  const Item item = decode_ok(
      "From: a@example.com\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=\"b1\"\n"
      "\n"
      "--b1\n"
      "Content-Type: text/plain\n"
      "\n"
      "see attachment\n"
      "--b1\n"
      "Content-Type: application/pdf\n"
      "Content-Disposition: attachment;\n"
      " filename*0*=iso-8859-1'fr'R%E9sum%E9%20;\n"
      " filename*1*=M%FCller.pdf\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "JVBERi0xLjQKJcfsj6IK\n"
      "--b1--\n");
  EXPECT_TRUE(text_contains(item, Role::attachment_name, "Résumé Müller.pdf")) << dump(item);
  EXPECT_TRUE(text_contains(item, Role::body, "see attachment"));
  EXPECT_FALSE(any_text_contains(item, "PDF-1.4")) << "binary attachment bodies are skipped";
}

TEST(MimeDecoder, Rfc2047EncodedContentTypeName) {
  const Item item = decode_ok("From: a@example.com\n"
                              "MIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"b1\"\n"
                              "\n"
                              "--b1\n"
                              "Content-Type: image/png; name=\"=?UTF-8?Q?J=C3=B6rg=2Epng?=\"\n"
                              "Content-Transfer-Encoding: base64\n"
                              "\n"
                              "iVBORw0KGgo=\n"
                              "--b1--\n");
  EXPECT_TRUE(text_contains(item, Role::attachment_name, "Jörg.png")) << dump(item);
}

TEST(MimeDecoder, QuotedPrintableSoftBreakInsideAddress) {
  const Item item = decode_ok("From: a@example.com\n"
                              "MIME-Version: 1.0\n"
                              "Content-Type: text/plain; charset=utf-8\n"
                              "Content-Transfer-Encoding: quoted-printable\n"
                              "\n"
                              "Please write to alice.smi=\n"
                              "th@example.com or call =E2=80=9Cme=E2=80=9D.\n");
  EXPECT_TRUE(text_contains(item, Role::body, "alice.smith@example.com")) << dump(item);
  EXPECT_TRUE(text_contains(item, Role::body, "\xE2\x80\x9Cme\xE2\x80\x9D"));
}

TEST(MimeDecoder, Base64Body) {
  // "Contact alice.smith@example.com, phone +44 20 7946 0123."
  const Item item = decode_ok("From: a@example.com\n"
                              "Content-Type: text/plain; charset=us-ascii\n"
                              "Content-Transfer-Encoding: base64\n"
                              "\n"
                              "Q29udGFjdCBhbGljZS5zbWl0aEBleGFtcGxlLmNvbSwgcGhvbmUgKzQ0IDIwIDc5\n"
                              "NDYgMDEyMy4=\n");
  EXPECT_TRUE(text_contains(item, Role::body, "Contact alice.smith@example.com, phone +44 20 7946 0123."))
      << dump(item);
}

TEST(MimeDecoder, Latin1Body) {
  const Item item = decode_ok("From: a@example.com\n"
                              "Content-Type: text/plain; charset=ISO-8859-1\n"
                              "Content-Transfer-Encoding: 8bit\n"
                              "\n"
                              "Gr\xFC\xDF"
                              "e, Herr M\xFCller\n");
  EXPECT_TRUE(text_contains(item, Role::body, "Grüße, Herr Müller")) << dump(item);
}

TEST(MimeDecoder, Latin2AndWindows1252Bodies) {
  const Item latin2 = decode_ok("From: a@example.com\n"
                                "Content-Type: text/plain; charset=iso-8859-2\n"
                                "\n"
                                "\xA3\xF3"
                                "d\xBC\n");
  EXPECT_TRUE(text_contains(latin2, Role::body, "Łódź")) << dump(latin2);
  const Item cp1252 = decode_ok("From: a@example.com\n"
                                "Content-Type: text/plain; charset=windows-1252\n"
                                "\n"
                                "\x93quoted\x94 \x80 5\n");
  EXPECT_TRUE(text_contains(cp1252, Role::body, "“quoted” € 5")) << dump(cp1252);
}

TEST(MimeDecoder, Gb2312AndIso2022JpBodies) {
  const Item gb = decode_ok("From: a@example.com\n"
                            "Content-Type: text/plain; charset=gb2312\n"
                            "Content-Transfer-Encoding: 8bit\n"
                            "\n"
                            "\xC4\xE3\xBA\xC3 \xCA\xC0\xBD\xE7\n");
  EXPECT_TRUE(text_contains(gb, Role::body, "你好 世界")) << dump(gb);
  const Item jp = decode_ok("From: a@example.com\n"
                            "Content-Type: text/plain; charset=ISO-2022-JP\n"
                            "Content-Transfer-Encoding: 7bit\n"
                            "\n"
                            "\x1B$B$3$s$K$A$O\x1B(B\n");
  EXPECT_TRUE(text_contains(jp, Role::body, "こんにちは")) << dump(jp);
}

TEST(MimeDecoder, Utf16BodyIsTextNotBinary) {
  // "Hi alice@example.com" in UTF-16LE with a byte order mark, base64-encoded.
  const Item item = decode_ok("From: a@example.com\n"
                              "Content-Type: text/plain; charset=utf-16\n"
                              "Content-Transfer-Encoding: base64\n"
                              "\n"
                              "//5IAGkAIABhAGwAaQBjAGUAQABlAHgAYQBtAHAAbABlAC4AYwBvAG0A\n");
  EXPECT_TRUE(text_contains(item, Role::body, "Hi alice@example.com")) << dump(item);
}

TEST(MimeDecoder, WrongCharsetFallsBackToValidUtf8) {
  // Declared UTF-8 but Latin-1 bytes; and an unknown charset name.
  const Item wrong = decode_ok("From: a@example.com\n"
                               "Content-Type: text/plain; charset=utf-8\n"
                               "\n"
                               "M\xFCller\n");
  EXPECT_TRUE(text_contains(wrong, Role::body, "Müller")) << dump(wrong);
  EXPECT_FALSE(wrong.warnings.empty());
  const Item unknown = decode_ok("From: a@example.com\n"
                                 "Content-Type: text/plain; charset=x-no-such-charset\n"
                                 "\n"
                                 "plain ascii alice@example.com\n");
  EXPECT_TRUE(text_contains(unknown, Role::body, "alice@example.com")) << dump(unknown);
}

TEST(MimeDecoder, HtmlOnlyBodyWithEntities) {
  const Item item = decode_ok(
      "From: a@example.com\n"
      "Content-Type: text/html; charset=utf-8\n"
      "\n"
      "<html><head><title>T</title><style>p { color: red; }</style>"
      "<script>var secret = 'x';</script></head>\n"
      "<body><p>Dear Ren&eacute;e &amp; Jos&#233; &#xE9;t&eacute;,</p>"
      "<p>Al<b>ice</b> Smith &lt;alice.smith&#64;example.com&gt;</p>"
      "<!-- hidden comment -->"
      "<a href=\"mailto:carol%2Bx@example.org?subject=hi\">write to us</a>"
      "</body></html>\n");
  EXPECT_TRUE(text_contains(item, Role::body, "Dear Renée & José été,")) << dump(item);
  EXPECT_TRUE(text_contains(item, Role::body, "Alice Smith <alice.smith@example.com>"))
      << dump(item);
  EXPECT_TRUE(text_contains(item, Role::body, "carol+x@example.org")) << dump(item);
  EXPECT_FALSE(any_text_contains(item, "color: red"));
  EXPECT_FALSE(any_text_contains(item, "secret"));
  EXPECT_FALSE(any_text_contains(item, "hidden comment"));
  EXPECT_FALSE(any_text_contains(item, "<p>"));
}

TEST(MimeDecoder, AttachedMessageIsAttachmentEvidence) {
  const Item item = decode_ok("From: Outer <outer@example.com>\n"
                              "To: dpo@example.com\n"
                              "Subject: Fwd: hello\n"
                              "MIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"b1\"\n"
                              "\n"
                              "--b1\n"
                              "Content-Type: text/plain\n"
                              "\n"
                              "forwarding\n"
                              "--b1\n"
                              "Content-Type: message/rfc822\n"
                              "\n"
                              "From: =?UTF-8?Q?Alice_Sm?= =?UTF-8?Q?ith?= <alice.smith@example.com>\n"
                              "To: Bob <bob@example.net>\n"
                              "Subject: inner subject\n"
                              "Received: from mx (mx [198.51.100.7])\n"
                              "\n"
                              "Inner body, call +44 20 7946 0123\n"
                              "--b1--\n");
  EXPECT_TRUE(has_address(item, Role::from, "Outer", "outer@example.com"));
  EXPECT_FALSE(has_any_addr(item, "alice.smith@example.com"))
      << "the outer message's header roles stay truthful";
  EXPECT_TRUE(text_contains(item, Role::attachment_body, "Alice Smith <alice.smith@example.com>"))
      << dump(item);
  EXPECT_TRUE(text_contains(item, Role::attachment_body, "Bob <bob@example.net>"));
  EXPECT_TRUE(text_contains(item, Role::attachment_body, "inner subject"));
  EXPECT_TRUE(text_contains(item, Role::attachment_body, "198.51.100.7"));
  EXPECT_TRUE(text_contains(item, Role::attachment_body, "Inner body, call +44 20 7946 0123"));
  EXPECT_FALSE(has_ip(item, "198.51.100.7"));
  EXPECT_TRUE(text_contains(item, Role::body, "forwarding"));
}

TEST(MimeDecoder, Base64EncodedAttachedMessageNested) {
  // base64 of: "From: Inner <inner@example.org>\nTo: x@example.net\nSubject: deep\n\n"
  //            "inner text alice@example.com\n"
  const Item item = decode_ok(
      "From: outer@example.com\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=\"b1\"\n"
      "\n"
      "--b1\n"
      "Content-Type: message/rfc822\n"
      "Content-Transfer-Encoding: base64\n"
      "Content-Disposition: attachment; filename=\"fwd.eml\"\n"
      "\n"
      "RnJvbTogSW5uZXIgPGlubmVyQGV4YW1wbGUub3JnPgpUbzogeEBleGFtcGxlLm5ldApTdWJqZWN0\n"
      "OiBkZWVwCgppbm5lciB0ZXh0IGFsaWNlQGV4YW1wbGUuY29tCg==\n"
      "--b1--\n");
  EXPECT_TRUE(text_contains(item, Role::attachment_body, "Inner <inner@example.org>")) << dump(item);
  EXPECT_TRUE(text_contains(item, Role::attachment_body, "inner text alice@example.com"));
  EXPECT_TRUE(text_contains(item, Role::attachment_name, "fwd.eml"));
  EXPECT_FALSE(has_any_addr(item, "inner@example.org"));
}

TEST(MimeDecoder, TextAttachmentBodies) {
  const Item item = decode_ok("From: a@example.com\n"
                              "MIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"b1\"\n"
                              "\n"
                              "--b1\n"
                              "Content-Type: text/plain\n"
                              "\n"
                              "main text\n"
                              "--b1\n"
                              "Content-Type: text/csv; name=\"contacts.csv\"\n"
                              "Content-Disposition: attachment; filename=\"contacts.csv\"\n"
                              "\n"
                              "name,email\nAlice Smith,alice.smith@example.com\n"
                              "--b1\n"
                              "Content-Type: text/calendar; method=REQUEST\n"
                              "\n"
                              "BEGIN:VCALENDAR\nORGANIZER:mailto:carol@example.org\nEND:VCALENDAR\n"
                              "--b1\n"
                              "Content-Type: application/json\n"
                              "Content-Disposition: attachment; filename=data.json\n"
                              "\n"
                              "{\"email\": \"dave@example.org\"}\n"
                              "--b1--\n");
  EXPECT_TRUE(text_contains(item, Role::body, "main text"));
  EXPECT_TRUE(text_contains(item, Role::attachment_name, "contacts.csv"));
  EXPECT_TRUE(text_contains(item, Role::attachment_body, "Alice Smith,alice.smith@example.com"))
      << dump(item);
  EXPECT_TRUE(text_contains(item, Role::attachment_body, "carol@example.org"));
  EXPECT_TRUE(text_contains(item, Role::attachment_body, "dave@example.org"));
  EXPECT_FALSE(text_contains(item, Role::body, "alice.smith@example.com"));
}

TEST(MimeDecoder, ReceivedIpv4AndIpv6) {
  const Item item = decode_ok(
      "Received: from host.example (host.example [203.0.113.45])\n"
      "\tby mx.example.com (Postfix) with ESMTP id 4Q1abc\n"
      "\tfor <alice@example.com>; Tue, 14 Nov 2023 10:00:00 +0000\n"
      "Received: from v6.example ([IPv6:2001:db8::1]) by mx; Tue, 14 Nov 2023 10:00:00 +0000\n"
      "Received: from x (unknown [2001:DB8:0:0:8:800:200C:417A]) by y with SMTP id 1.2.3\n"
      "X-Originating-IP: [198.51.100.23]\n"
      "From: a@example.com\n"
      "\n"
      "body 192.0.2.99\n");
  EXPECT_TRUE(has_ip(item, "203.0.113.45"));
  EXPECT_TRUE(has_ip(item, "2001:db8::1"));
  EXPECT_TRUE(has_ip(item, "2001:DB8:0:0:8:800:200C:417A"));
  EXPECT_TRUE(has_ip(item, "198.51.100.23"));
  EXPECT_FALSE(has_ip(item, "192.0.2.99")) << "body IPs are text, not Received evidence";
  for (const RawValue &ip : item.ips) {
    EXPECT_NE(ip.value, "10:00:00");
    EXPECT_NE(ip.value, "1.2.3");
  }
  EXPECT_EQ(item.ips.size(), 4U);
}

TEST(MimeDecoder, EnvelopeAndDeliveryHeaders) {
  const Item item = decode_ok("Return-Path: <bounce@example.org>\n"
                              "Delivered-To: alice+lists@example.com\n"
                              "X-Original-To: alice@example.com\n"
                              "X-Envelope-From: <sender@example.org>\n"
                              "X-Envelope-To: <alice@example.com>, <bob@example.com>\n"
                              "X-Envelope-To-Blocked: <carol@example.com>\n"
                              "Resent-From: Dave <dave@example.org>\n"
                              "Reply-To: replies@example.org\n"
                              "Sender: list@example.org\n"
                              "Bcc: hidden@example.com\n"
                              "From: a@example.com\n"
                              "\n"
                              "body\n");
  EXPECT_TRUE(has_addr(item, Role::return_path, "bounce@example.org")) << dump(item);
  EXPECT_TRUE(has_addr(item, Role::delivered_to, "alice+lists@example.com"));
  EXPECT_TRUE(has_addr(item, Role::envelope_to, "alice@example.com")); // X-Original-To
  EXPECT_TRUE(has_addr(item, Role::envelope_from, "sender@example.org"));
  EXPECT_TRUE(has_addr(item, Role::envelope_to, "alice@example.com"));
  EXPECT_TRUE(has_addr(item, Role::envelope_to, "bob@example.com"));
  EXPECT_TRUE(has_addr(item, Role::envelope_to, "carol@example.com"));
  EXPECT_TRUE(has_address(item, Role::resent_from, "Dave", "dave@example.org"));
  EXPECT_TRUE(has_addr(item, Role::reply_to, "replies@example.org"));
  EXPECT_TRUE(has_addr(item, Role::sender, "list@example.org"));
  EXPECT_TRUE(has_addr(item, Role::bcc, "hidden@example.com"));
}

TEST(MimeDecoder, NullReturnPathIsNotAnAddress) {
  const Item item = decode_ok("Return-Path: <>\nFrom: a@example.com\n\nbody\n");
  EXPECT_FALSE(std::any_of(item.addresses.begin(), item.addresses.end(),
                           [](const RawAddress &a) { return a.role == Role::return_path; }))
      << dump(item);
}

TEST(MimeDecoder, CrlfMessage) {
  const Item item = decode_ok("From: Alice Smith <alice.smith@example.com>\r\n"
                              "To: bob@example.net\r\n"
                              "Subject: crlf\r\n"
                              "MIME-Version: 1.0\r\n"
                              "Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
                              "\r\n"
                              "--b1\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Transfer-Encoding: quoted-printable\r\n"
                              "\r\n"
                              "write to carol.jo=\r\n"
                              "nes@example.org now\r\n"
                              "--b1\r\n"
                              "Content-Type: text/html\r\n"
                              "\r\n"
                              "<p>html part</p>\r\n"
                              "--b1--\r\n");
  EXPECT_TRUE(has_address(item, Role::from, "Alice Smith", "alice.smith@example.com"));
  EXPECT_EQ(item.subject, "crlf");
  EXPECT_TRUE(text_contains(item, Role::body, "carol.jones@example.org now")) << dump(item);
  EXPECT_TRUE(text_contains(item, Role::body, "html part"));
  for (const RawText &text : item.texts) {
    EXPECT_EQ(text.text.find('\r'), std::string::npos);
  }
}

TEST(MimeDecoder, GroupSyntax) {
  const Item item = decode_ok("From: a@example.com\n"
                              "To: Team: Alice Smith <alice@example.com>, bob@example.com;, "
                              "carol@example.com\n"
                              "Cc: undisclosed-recipients:;\n"
                              "\n"
                              "body\n");
  EXPECT_TRUE(has_address(item, Role::to, "Alice Smith", "alice@example.com")) << dump(item);
  EXPECT_TRUE(has_addr(item, Role::to, "bob@example.com"));
  EXPECT_TRUE(has_addr(item, Role::to, "carol@example.com"));
  EXPECT_FALSE(std::any_of(item.addresses.begin(), item.addresses.end(),
                           [](const RawAddress &a) { return a.role == Role::cc; }));
}

TEST(MimeDecoder, AddressHeaderWithoutMailboxKeepsAddressesAndNames) {
  const Item item = decode_ok("From: a@example.com\n"
                              "Delivered-To: mailing list dev@lists.example.org\n"
                              "To: Alan Aronowitz, Sandi M Braband,\n\t Robert Bruce\n"
                              "Cc: unlisted-recipients:; (no To-header on input)\n"
                              "\n"
                              "body\n");
  EXPECT_TRUE(has_addr(item, Role::delivered_to, "dev@lists.example.org")) << dump(item);
  EXPECT_TRUE(has_address(item, Role::to, "Alan Aronowitz", ""));
  EXPECT_TRUE(has_address(item, Role::to, "Sandi M Braband", ""));
  EXPECT_TRUE(has_address(item, Role::to, "Robert Bruce", ""));
  EXPECT_FALSE(std::any_of(item.addresses.begin(), item.addresses.end(),
                           [](const RawAddress &a) { return a.role == Role::cc; }))
      << dump(item);
  EXPECT_FALSE(item.warnings.empty());
}

TEST(MimeDecoder, LeadingBlankLinesAndBomAreSkipped) {
  const Item item = decode_ok("\xEF\xBB\xBF\r\n\nFrom: Alice <alice@example.com>\nSubject: s\n\nbody\n");
  EXPECT_TRUE(has_address(item, Role::from, "Alice", "alice@example.com")) << dump(item);
  EXPECT_EQ(item.subject, "s");
  EXPECT_FALSE(item.warnings.empty());
}

TEST(MimeDecoder, ConcurrentDecodesAreIndependent) {
  std::vector<std::thread> threads;
  std::array<bool, 4> ok{};
  for (std::size_t t = 0; t < ok.size(); ++t) {
    threads.emplace_back([t, &ok] {
      bool all = true;
      for (int i = 0; i < 50; ++i) {
        const std::string addr = "user" + std::to_string(t) + "." + std::to_string(i) + "@example.com";
        Item item;
        const core::Status status = decode_message(
            "From: =?UTF-8?B?SsO2cmc=?= <" + addr + ">\nSubject: =?ISO-8859-1?Q?caf=E9?=\n"
            "Content-Type: text/html; charset=utf-8\n\n<p>caf&eacute; " + addr + "</p>\n",
            item);
        all = all && status.has_value() && has_address(item, Role::from, "Jörg", addr) &&
              item.subject == "café" && text_contains(item, Role::body, "café " + addr);
      }
      ok[t] = all;
    });
  }
  for (std::thread &thread : threads) {
    thread.join();
  }
  for (const bool result : ok) {
    EXPECT_TRUE(result);
  }
}

TEST(MimeDecoder, InvalidUtf8InHeadersBecomesValidUtf8) {
  const Item item = decode_ok("From: Andr\xE9 M\xFCller <andre@example.com>\n"
                              "To: \xFF\xFE broken <x@example.com>\n"
                              "Subject: caf\xE9 \xC3(\n"
                              "\n"
                              "body\n");
  EXPECT_TRUE(has_address(item, Role::from, "André Müller", "andre@example.com")) << dump(item);
  EXPECT_TRUE(has_addr(item, Role::to, "x@example.com"));
  EXPECT_EQ(item.subject.rfind("caf", 0), 0U);
  EXPECT_TRUE(is_valid_utf8(item.subject));
}

TEST(MimeDecoder, TenMegabyteHeaderLine) {
  std::string message = "From: a@example.com\nX-Long: ";
  message.append(10U << 20U, 'x');
  message += "\nTo: Alice Smith <alice.smith@example.com>\nSubject: long\n\nbody text\n";
  const Item item = decode_ok(message);
  EXPECT_TRUE(has_address(item, Role::to, "Alice Smith", "alice.smith@example.com"));
  EXPECT_EQ(item.subject, "long");
  EXPECT_TRUE(text_contains(item, Role::body, "body text"));
}

TEST(MimeDecoder, EmptyInputIsDataError) {
  Item item;
  const core::Status empty = decode_message("", item);
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code, core::ErrorCode::data);
  const core::Status blank = decode_message("\n\r\n  \n", item);
  ASSERT_FALSE(blank.has_value());
  EXPECT_EQ(blank.error().code, core::ErrorCode::data);
}

TEST(MimeDecoder, BinaryGarbageIsDataErrorOrWarnings) {
  std::string garbage;
  unsigned state = 12345;
  for (int i = 0; i < 4096; ++i) {
    state = state * 1103515245U + 12345U;
    garbage.push_back(static_cast<char>((state >> 16U) & 0xFFU));
  }
  garbage[10] = '\0';
  Item item;
  const core::Status status = decode_message(garbage, item);
  if (status) {
    EXPECT_FALSE(item.warnings.empty());
  } else {
    EXPECT_EQ(status.error().code, core::ErrorCode::data);
  }
  expect_all_utf8(item);
}

TEST(MimeDecoder, HeaderlessTextIsBodyWithWarning) {
  const Item item = decode_ok("just some text mentioning alice@example.com\nand more\n");
  EXPECT_TRUE(text_contains(item, Role::body, "alice@example.com"));
  EXPECT_FALSE(item.warnings.empty());
}

TEST(MimeDecoder, DeepNestingIsBounded) {
  std::string message = "From: a@example.com\nMIME-Version: 1.0\n";
  constexpr int k_levels = 200;
  for (int i = 0; i < k_levels; ++i) {
    message += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\n\n--b" +
               std::to_string(i) + "\n";
  }
  message += "Content-Type: text/plain\n\ndeep text\n";
  for (int i = k_levels - 1; i >= 0; --i) {
    message += "--b" + std::to_string(i) + "--\n";
  }
  const Item item = decode_ok(message);
  EXPECT_FALSE(item.warnings.empty()) << dump(item);
}

TEST(MimeDecoder, DeeplyNestedAttachedMessagesAreBounded) {
  std::string message;
  for (int i = 0; i < 100; ++i) {
    message += "From: level" + std::to_string(i) + "@example.com\nContent-Type: message/rfc822\n\n";
  }
  message += "From: last@example.com\n\ninnermost\n";
  const Item item = decode_ok(message);
  EXPECT_TRUE(has_addr(item, Role::from, "level0@example.com"));
}

TEST(MimeDecoder, DigestAndPartialDoNotCrash) {
  const Item digest = decode_ok("From: list@example.org\n"
                                "MIME-Version: 1.0\n"
                                "Content-Type: multipart/digest; boundary=\"d\"\n"
                                "\n"
                                "--d\n"
                                "\n"
                                "From: alice@example.com\nSubject: one\n\nfirst message\n"
                                "--d\n"
                                "\n"
                                "From: bob@example.com\nSubject: two\n\nsecond message\n"
                                "--d--\n");
  EXPECT_TRUE(text_contains(digest, Role::attachment_body, "alice@example.com")) << dump(digest);
  EXPECT_TRUE(text_contains(digest, Role::attachment_body, "second message"));
  const Item partial = decode_ok("From: a@example.com\n"
                                 "MIME-Version: 1.0\n"
                                 "Content-Type: message/partial; id=\"abc@example\"; number=1; "
                                 "total=2\n"
                                 "\n"
                                 "From: carol@example.org\nSubject: split\n\nfirst half\n");
  EXPECT_TRUE(any_text_contains(partial, "first half")) << dump(partial);
}

TEST(MimeDecoder, TextIsCappedAt16MiB) {
  std::string message = "From: a@example.com\nContent-Type: text/plain\n\n";
  const std::string line(99, 'a');
  while (message.size() < (17U << 20U)) {
    message += line;
    message += '\n';
  }
  const Item item = decode_ok(message);
  std::size_t total = 0;
  for (const RawText &text : item.texts) {
    total += text.text.size();
  }
  EXPECT_LE(total, 16U << 20U);
  EXPECT_GT(total, 15U << 20U);
  EXPECT_TRUE(std::any_of(item.warnings.begin(), item.warnings.end(), [](const std::string &w) {
    return w.find("16 MiB") != std::string::npos;
  }));
}

TEST(MimeCorpus, DecodesEveryFile) {
  const std::filesystem::path corpus = test::corpus_dir();
  if (corpus.empty() || !std::filesystem::is_directory(corpus / "mime")) {
    GTEST_SKIP() << "corpus not found";
  }
  std::size_t files = 0;
  std::size_t ok = 0;
  std::vector<std::string> failed;
  for (const auto &entry : std::filesystem::recursive_directory_iterator(corpus / "mime")) {
    if (!entry.is_regular_file()) {
      continue;
    }
    ++files;
    const std::string bytes = test::read_file(entry.path());
    Item item;
    const core::Status status = decode_message(bytes, item);
    if (status) {
      ++ok;
      expect_all_utf8(item);
    } else {
      EXPECT_EQ(status.error().code, core::ErrorCode::data) << entry.path();
      failed.push_back(entry.path().string());
    }
  }
  ASSERT_GT(files, 0U);
  std::string list;
  for (const std::string &path : failed) {
    list += path + "\n";
  }
  EXPECT_GT(ok * 100, files * 95) << ok << " of " << files << " decoded; failed:\n" << list;
}

} // namespace
} // namespace maildsar::connectors::mime

namespace maildsar::connectors::mime {
namespace {

/** A header-value text (scanned for addresses only) of `role` from field `field` holds `needle`. */
bool header_text(const Item &item, Role role, std::string_view field, std::string_view needle) {
  return std::any_of(item.texts.begin(), item.texts.end(), [&](const RawText &t) {
    return t.role == role && t.field == field && t.scan == TextScan::addresses &&
           t.text.find(needle) != std::string::npos;
  });
}

bool has_field_addr(const Item &item, Role role, std::string_view field, std::string_view addr) {
  return std::any_of(item.addresses.begin(), item.addresses.end(), [&](const RawAddress &a) {
    return a.role == role && a.field == field && a.addr == addr;
  });
}

// Issue 11 class 1: every header field is evidence, with a role and its field name.
TEST(MimeHeaders, EveryFieldIsScannedWithItsRole) {
  const Item item = decode_ok(
      "Received: from mail.example.org (mail.example.org [192.0.2.7])\r\n"
      "\tby mx.example.com (Postfix) with ESMTPS id 4QxYz\r\n"
      "\tfor <hidden.bcc@example.com>; Tue, 14 Nov 2023 10:00:00 +0000\r\n"
      "X-Received: by 2002:a05:6000:1 with SMTP id x; (ORCPT rfc822;orcpt@example.net)\r\n"
      "ARC-Authentication-Results: i=1; mx.example.com; smtp.mailfrom=arc.sender@example.org\r\n"
      "Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=spf@example.org\r\n"
      "Envelope-to: exim.rcpt@example.com\r\n"
      "X-Forwarded-To: fwd@example.net\r\n"
      "X-Delivered-to: xdeliv@example.net\r\n"
      "Resent-To: Rita <resent.to@example.com>\r\n"
      "Resent-Cc: resent.cc@example.com\r\n"
      "Resent-Bcc: resent.bcc@example.com\r\n"
      "Resent-Sender: resent.sender@example.com\r\n"
      "Disposition-Notification-To: <dnt@example.com>\r\n"
      "Return-Receipt-To: rrt@example.com\r\n"
      "Errors-To: errors@example.com\r\n"
      "List-Unsubscribe: <mailto:leave-list@lists.example.org?subject=unsubscribe>\r\n"
      "X-Mailer-Recipient: Someone <xheader@example.com>\r\n"
      "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; i=@example.org; s=s1;\r\n"
      "\tbh=abc=; b=ZGtpbUBleGFtcGxlLm9yZw==\r\n"
      "Message-ID: <CAF+id.part@mail.example.com>\r\n"
      "References: <ref.part@mail.example.com>\r\n"
      "From: a@example.org\r\n"
      "To: b@example.org\r\n"
      "Subject: headers\r\n"
      "\r\n"
      "body\r\n");
  EXPECT_TRUE(header_text(item, Role::received, "Received", "hidden.bcc@example.com")) << dump(item);
  EXPECT_TRUE(header_text(item, Role::received, "X-Received", "orcpt@example.net"));
  EXPECT_TRUE(header_text(item, Role::received, "ARC-Authentication-Results",
                          "arc.sender@example.org"));
  EXPECT_TRUE(header_text(item, Role::received, "Authentication-Results", "spf@example.org"));
  EXPECT_TRUE(has_field_addr(item, Role::envelope_to, "Envelope-to", "exim.rcpt@example.com"));
  EXPECT_TRUE(has_field_addr(item, Role::envelope_to, "X-Forwarded-To", "fwd@example.net"));
  EXPECT_TRUE(has_field_addr(item, Role::envelope_to, "X-Delivered-to", "xdeliv@example.net"));
  EXPECT_TRUE(has_address(item, Role::resent_to, "Rita", "resent.to@example.com"));
  EXPECT_TRUE(has_field_addr(item, Role::resent_cc, "Resent-Cc", "resent.cc@example.com"));
  EXPECT_TRUE(has_field_addr(item, Role::resent_bcc, "Resent-Bcc", "resent.bcc@example.com"));
  EXPECT_TRUE(has_field_addr(item, Role::resent_sender, "Resent-Sender", "resent.sender@example.com"));
  EXPECT_TRUE(has_field_addr(item, Role::notification, "Disposition-Notification-To", "dnt@example.com"));
  EXPECT_TRUE(has_field_addr(item, Role::notification, "Return-Receipt-To", "rrt@example.com"));
  EXPECT_TRUE(has_field_addr(item, Role::notification, "Errors-To", "errors@example.com"));
  EXPECT_TRUE(header_text(item, Role::header, "List-Unsubscribe", "leave-list@lists.example.org"));
  EXPECT_TRUE(header_text(item, Role::header, "X-Mailer-Recipient", "xheader@example.com"));
  EXPECT_TRUE(header_text(item, Role::header, "DKIM-Signature", "@example.org"));
  // Identifiers and signature data are not scanned: a Message-ID is no address.
  EXPECT_FALSE(any_text_contains(item, "id.part@mail.example.com"));
  EXPECT_FALSE(any_text_contains(item, "ref.part@mail.example.com"));
  EXPECT_FALSE(any_text_contains(item, "ZGtpbUBleGFtcGxlLm9yZw"));
  // The classic roles keep no field name (their output is unchanged).
  EXPECT_TRUE(has_field_addr(item, Role::from, "", "a@example.org"));
}

TEST(MimeHeaders, DisplayNameHeadersOfArchivesAreNames) {
  const Item item = decode_ok(
      "Message-ID: <1.JavaMail.evans@thyme>\n"
      "From: james.steffes@enron.com\n"
      "To: richard.shapiro@enron.com\n"
      "X-From: Steffes, James D. </O=ENRON/OU=NA/CN=RECIPIENTS/CN=JSTEFFE>\n"
      "X-To: Jeff Dasovich, Kean, Steven J. </O=ENRON/OU=NA/CN=RECIPIENTS/CN=SKEAN>, "
      "\"Shapiro, Richard\" <richard.shapiro@enron.com>\n"
      "X-cc: Ralf B\xC3\xA4" "chle\n"
      "X-bcc: \n"
      "Subject: status\n"
      "\n"
      "body\n");
  const auto name = [&](std::string_view field, std::string_view display) {
    return std::any_of(item.addresses.begin(), item.addresses.end(), [&](const RawAddress &a) {
      return a.role == Role::header && a.field == field && a.name == display && a.addr.empty();
    });
  };
  EXPECT_TRUE(name("X-From", "Steffes, James D.")) << dump(item);
  EXPECT_TRUE(name("X-To", "Jeff Dasovich")) << dump(item);
  EXPECT_TRUE(name("X-To", "Kean, Steven J."));
  EXPECT_TRUE(name("X-To", "Shapiro, Richard"));
  EXPECT_TRUE(name("X-cc", "Ralf B\xC3\xA4" "chle"));
  EXPECT_TRUE(header_text(item, Role::header, "X-To", "richard.shapiro@enron.com"));
}

// Issue 11 class 2: real-but-invalid addresses, also one of several in a list.
TEST(MimeHeaders, ObsoleteAddressesInListsAreKept) {
  const Item item = decode_ok(
      "From: \"Steffes, James\" <james.steffes@enron.com>\n"
      "To: richard.shapiro@enron.com, d..steffes@enron.com, john.@example.com,\n"
      "\t\"john doe\"@example.com, Paul <paul@example.com (old <paul.old@example.com>)>\n"
      "Cc: alice@example.com (Alice, formerly <alice.former@example.org>), bob@exam\n"
      " ple.com, carol.smith@\n"
      " example.net\n"
      "Subject: obsolete forms\n"
      "\n"
      "body\n");
  EXPECT_TRUE(has_addr(item, Role::to, "richard.shapiro@enron.com")) << dump(item);
  EXPECT_TRUE(has_addr(item, Role::to, "d..steffes@enron.com")) << dump(item);
  EXPECT_TRUE(has_addr(item, Role::to, "john.@example.com")) << dump(item);
  EXPECT_TRUE(has_addr(item, Role::to, "\"john doe\"@example.com")) << dump(item);
  EXPECT_TRUE(has_addr(item, Role::cc, "alice@example.com")) << dump(item);
  EXPECT_TRUE(has_addr(item, Role::cc, "alice.former@example.org")) << dump(item);
  EXPECT_TRUE(has_addr(item, Role::cc, "bob@example.com")) << dump(item);
  EXPECT_TRUE(has_addr(item, Role::cc, "carol.smith@example.net")) << dump(item);
  // Never a different address: the obsolete form is not rewritten into a valid one.
  EXPECT_FALSE(has_any_addr(item, "d.steffes@enron.com"));
  EXPECT_FALSE(has_any_addr(item, "steffes@enron.com"));
}

// Issue 11 class 3: malformed encoded words still give their addresses and names.
TEST(MimeHeaders, MalformedEncodedWords) {
  const Item item = decode_ok(
      "From: =?utf-8?Q?J=C3=B6rg_Bauer?= <jb@example.de>\n"
      "To: =?utf-8?Q?Anna_M=C3=BCller_<anna@example.de>,_Ben_<ben@example.de>?=\n"
      "Cc: =?utf-8?Q?Zo=C3=AB_Wei <zoe@example.de>\n"
      "Reply-To: =?iso-8859-1?Q?Fran=C3=A7ois_Roux?= <fr@example.fr>\n"
      "Subject: =?x-unknown?Q?caf=E9?=\n"
      "\n"
      "body\n");
  EXPECT_TRUE(has_address(item, Role::from, "J\xC3\xB6rg Bauer", "jb@example.de")) << dump(item);
  EXPECT_TRUE(has_address(item, Role::to, "Anna M\xC3\xBCller", "anna@example.de")) << dump(item);
  EXPECT_TRUE(has_address(item, Role::to, "Ben", "ben@example.de")) << dump(item);
  EXPECT_TRUE(has_addr(item, Role::cc, "zoe@example.de")) << dump(item);
  EXPECT_TRUE(std::any_of(item.addresses.begin(), item.addresses.end(), [](const RawAddress &a) {
    return a.role == Role::cc && a.name.find("Zo\xC3\xAB") != std::string::npos;
  })) << dump(item);
  EXPECT_TRUE(has_address(item, Role::reply_to, "Fran\xC3\xA7ois Roux", "fr@example.fr")) << dump(item);
  EXPECT_EQ(item.subject, "caf\xC3\xA9");
}

// An attached message's header fields are evidence too (as attachment-body text).
TEST(MimeHeaders, AttachedMessageHeaderFieldsAreKept) {
  const Item item = decode_ok("From: a@example.com\n"
                              "MIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"b\"\n"
                              "\n"
                              "--b\n"
                              "Content-Type: message/rfc822\n"
                              "\n"
                              "Received: by mx.example.com for <inner.bcc@example.com>; Tue\n"
                              "X-Original-To: inner.env@example.com\n"
                              "Message-ID: <inner.id@example.com>\n"
                              "From: inner@example.com\n"
                              "Subject: inner\n"
                              "\n"
                              "inner body\n"
                              "--b--\n");
  EXPECT_TRUE(text_contains(item, Role::attachment_body, "inner.bcc@example.com")) << dump(item);
  EXPECT_TRUE(text_contains(item, Role::attachment_body, "inner.env@example.com")) << dump(item);
  EXPECT_FALSE(any_text_contains(item, "inner.id@example.com")) << dump(item);
}

// A part with "Content-Type: text" and no subtype is text/plain to a mail reader.
TEST(MimeDecoder, TextWithoutSubtypeIsPlainText) {
  const Item item = decode_ok("From: a@example.com\n"
                              "MIME-Version: 1.0\n"
                              "Content-Type: text\n"
                              "\n"
                              "please write to bare.text@example.org\n");
  EXPECT_TRUE(text_contains(item, Role::body, "bare.text@example.org")) << dump(item);
}

} // namespace
} // namespace maildsar::connectors::mime
