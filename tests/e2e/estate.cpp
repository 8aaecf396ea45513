// SPDX-License-Identifier: GPL-3.0-or-later
#include "tests/e2e/estate.hpp"

#include "tests/test_support.hpp"

#include <fmt/format.h>

#include <vector>

namespace maildsar::test {

namespace {

struct Message {
  std::string name;    // file name stem
  std::string headers; // without Message-ID/Date/MIME-Version
  std::string body;    // everything after the blank line (may include MIME parts)
  std::string content_type = "text/plain; charset=us-ascii";
  std::string cte = {};
};

std::string render(const Message &m, int n) {
  std::string s = m.headers;
  s += fmt::format("Message-ID: <{}-{}@gen.example>\n", m.name, n);
  s += fmt::format("Date: Tue, 14 Nov 2023 10:{:02}:00 +0000\n", n % 60);
  s += "MIME-Version: 1.0\n";
  s += "Content-Type: " + m.content_type + "\n";
  if (!m.cte.empty()) {
    s += "Content-Transfer-Encoding: " + m.cte + "\n";
  }
  s += "\n" + m.body;
  if (s.back() != '\n') {
    s += "\n";
  }
  return s;
}

const char *k_other = "From: Carol White <carol.white@partner.example>\nTo: Bob Jones <bob.jones@example.com>\n";

} // namespace

PlantedEstate make_planted_estate(const std::filesystem::path &root) {
  PlantedEstate e;
  e.root = root;
  // Matches: one message per variant, in carol's mailbox (the owner is not the subject).
  std::vector<Message> hits = {
      {"from", "From: Alice Smith <alice.smith@example.com>\nTo: team@example.com\nSubject: hello\n", "Hi all.\n"},
      {"to", "From: Bob <bob.jones@example.com>\nTo: alice.smith@example.com\nSubject: hi\n", "Hi.\n"},
      {"cc", "From: Bob <bob.jones@example.com>\nTo: team@example.com\nCc: x@example.com, Alice <alice.smith@example.com>\nSubject: cc\n", "Hi.\n"},
      {"bcc", "From: Bob <bob.jones@example.com>\nTo: team@example.com\nBcc: alice.smith@example.com\nSubject: bcc\n", "Hi.\n"},
      {"replyto", "From: Bob <bob.jones@example.com>\nTo: team@example.com\nReply-To: alice.smith@example.com\nSubject: rt\n", "Hi.\n"},
      {"sender", "From: Team <team@example.com>\nSender: alice.smith@example.com\nTo: all@example.com\nSubject: s\n", "Hi.\n"},
      {"deliveredto", "Delivered-To: alice.smith@example.com\nFrom: Bob <bob.jones@example.com>\nTo: list@example.com\nSubject: d\n", "Hi.\n"},
      {"returnpath", "Return-Path: <alice.smith@example.com>\nFrom: Team <team@example.com>\nTo: list@example.com\nSubject: r\n", "Hi.\n"},
      {"received4", "Received: from laptop (unknown [203.0.113.45])\n\tby mx.example.com with ESMTPSA; Tue, 14 Nov 2023 10:00:00 +0000\nFrom: Team <team@example.com>\nTo: list@example.com\nSubject: ip\n", "Hi.\n"},
      {"received6", "Received: from laptop ([IPv6:2001:0db8:0000:0000:0000:0000:0000:0045])\n\tby mx.example.com with ESMTPSA; Tue, 14 Nov 2023 10:00:00 +0000\nFrom: Team <team@example.com>\nTo: list@example.com\nSubject: ip6\n", "Hi.\n"},
      {"bodyaddr", k_other + std::string("Subject: contacts\n"), "Please write to alice.smith@example.com, thanks.\n"},
      {"upper", "From: Bob <bob.jones@example.com>\nTo: ALICE.SMITH@EXAMPLE.COM\nSubject: upper\n", "Hi.\n"},
      {"subaddr", "From: Shop <news@shop.example>\nTo: alice.smith+shop@example.com\nSubject: offers\n", "Offers.\n"},
      {"idn", "From: Books <info@books.example>\nTo: alice@xn--bcher-kva.example\nSubject: idn\n", "Hi.\n"},
      {"rfc2047name", "From: =?UTF-8?B?QWxpY2UgU21pdGg=?= <asmith@other.example>\nTo: team@example.com\nSubject: name only\n", "Hi.\n"},
      {"adjacentwords", "From: =?UTF-8?Q?Al?= =?UTF-8?Q?ice_Smith?= <a.s@other.example>\nTo: team@example.com\nSubject: gmime 133\n", "Hi.\n"},
      {"reversedname", "From: Bob <bob.jones@example.com>\nTo: \"Smith, Alice\" <as@third.example>\nSubject: reversed\n", "Hi.\n"},
      {"subjectname", k_other + std::string("Subject: =?ISO-8859-1?Q?Contract_for_Alice_Sm=EDth?=\n"), "See subject.\n"},
      {"qpsoftbreak", k_other + std::string("Subject: qp\n"), "Contact: alice.smi=\nth@example.com today.\n", "text/plain; charset=utf-8", "quoted-printable"},
      {"base64phone", k_other + std::string("Subject: b64\n"), "Q2FsbCBtZSBvbiArNDQgMjAgNzk0NiAwMTIzIHRvbW9ycm93Lgo=\n", "text/plain; charset=utf-8", "base64"},
      {"latin1name", k_other + std::string("Subject: latin1\n"), "Regards, Alice Sm\xEDth\n", "text/plain; charset=iso-8859-1", "8bit"},
      {"htmlonly", k_other + std::string("Subject: html\n"), "<html><body><p>Meeting with <b>Smith,&nbsp;Alice</b> on Friday.</p></body></html>\n", "text/html; charset=utf-8"},
      // A real one-page PDF ("Draft"): since attachment text is extracted, a broken PDF is a counted problem.
      {"attname", k_other + std::string("Subject: attachment name\n"),
       "--B\nContent-Type: text/plain\n\nSee attached.\n--B\nContent-Type: application/pdf\nContent-Disposition: attachment; filename*=UTF-8''Alice%20Smith%20contract.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQKMSAwIG9iago8PCAvVHlwZSAvQ2F0YWxvZyAvUGFnZXMgMiAwIFIgPj4KZW5kb2Jq\nCjIgMCBvYmoKPDwgL1R5cGUgL1BhZ2VzIC9LaWRzIFszIDAgUl0gL0NvdW50IDEgPj4KZW5kb2Jq\nCjMgMCBvYmoKPDwgL1R5cGUgL1BhZ2UgL1BhcmVudCAyIDAgUiAvTWVkaWFCb3ggWzAgMCA2MTIg\nNzkyXSAvUmVzb3VyY2VzIDw8IC9Gb250IDw8IC9GMSA1IDAgUiA+PiA+PiAvQ29udGVudHMgNCAw\nIFIgPj4KZW5kb2JqCjQgMCBvYmoKPDwgL0xlbmd0aCA0NiA+PgpzdHJlYW0KQlQgL0YxIDEyIFRm\nIDcyIDcyMCBUZCAxNCBUTAooRHJhZnQpIFRqIFQqCkVUCmVuZHN0cmVhbQplbmRvYmoKNSAwIG9i\nago8PCAvVHlwZSAvRm9udCAvU3VidHlwZSAvVHlwZTEgL0Jhc2VGb250IC9IZWx2ZXRpY2EgPj4K\nZW5kb2JqCnhyZWYKMCA2CjAwMDAwMDAwMDAgNjU1MzUgZiAKMDAwMDAwMDAwOSAwMDAwMCBuIAow\nMDAwMDAwMDU4IDAwMDAwIG4gCjAwMDAwMDAxMTUgMDAwMDAgbiAKMDAwMDAwMDI0MSAwMDAwMCBu\nIAowMDAwMDAwMzM2IDAwMDAwIG4gCnRyYWlsZXIKPDwgL1NpemUgNiAvUm9vdCAxIDAgUiA+Pgpz\ndGFydHhyZWYKNDA2CiUlRU9GCg==\n--B--\n",
       "multipart/mixed; boundary=\"B\""},
      {"attbody", k_other + std::string("Subject: attachment body\n"),
       "--B\nContent-Type: text/plain\n\nSee attached.\n--B\nContent-Type: text/plain; name=\"list.txt\"\nContent-Disposition: attachment; filename=\"list.txt\"\n\nPhone list: 020 7946 0123 (mobile)\n--B--\n",
       "multipart/mixed; boundary=\"B\""},
      {"rfc822", k_other + std::string("Subject: Fwd: old mail\n"),
       "--B\nContent-Type: text/plain\n\nForwarding.\n--B\nContent-Type: message/rfc822\n\nFrom: Alice Smith <alice.smith@example.com>\nTo: Dan <dan@example.com>\nSubject: inner\n\nInner body.\n--B--\n",
       "multipart/mixed; boundary=\"B\""},
  };
  std::vector<Message> misses = {
      {"malice", k_other + std::string("Subject: m1\n"), "Write to malice.smith@example.com please.\n"},
      {"smithson", "From: alice.smithson@example.com\nTo: bob.jones@example.com\nSubject: m2\n", "Hi.\n"},
      {"dotco", "From: Bob <bob.jones@example.com>\nTo: alice.smith@example.co\nSubject: m3\n", "Hi.\n"},
      {"bobplus", "From: Bob <bob.jones@example.com>\nTo: bob+alice.smith@example.com\nSubject: m4\n", "Hi.\n"},
      {"split", "From: Bob <bob.jones@example.com>\nTo: Bob Alice <b1@example.com>, Smith Carol <c1@example.com>\nSubject: m5\n", "Hi.\n"},
      {"otherphone", k_other + std::string("Subject: m6\n"), "Call 020 7946 0124.\n"},
      {"otherip", "Received: from x (x [203.0.113.4])\n\tby mx.example.com; Tue, 14 Nov 2023 10:00:00 +0000\nFrom: Bob <bob.jones@example.com>\nTo: t@example.com\nSubject: m7\n", "Hi.\n"},
      {"bodydotco", k_other + std::string("Subject: m9\n"), "Logistics: alice.smith@example.co or http://alice.smith.example/x\n"},
      {"smithsonname", "From: Alice Smithson <as2@example.com>\nTo: t@example.com\nSubject: m8\n", "Hi.\n"},
  };
  auto carol = root / "mail/example.com/carol.white/Maildir";
  int n = 0;
  for (const auto &m : hits) {
    auto path = carol / "cur" / fmt::format("17000{:05}.M{}P1.gen:2,S", n, n);
    write_file(path, render(m, n++));
    e.expected.insert(path.string());
  }
  for (const auto &m : misses) {
    auto path = carol / (n % 2 == 0 ? "cur" : "new") / fmt::format("17000{:05}.M{}P1.gen", n, n);
    write_file(path, render(m, n++));
    e.near_misses.insert(path.string());
  }
  // A sub-folder, and a file in tmp/ that must never be read.
  auto sent = carol / ".Sent/cur" / "1700099999.M1P1.gen:2,S";
  write_file(sent, "From: Carol <carol.white@partner.example>\nTo: Alice Smith <alice.smith@example.com>\n"
                   "Subject: sent\nMessage-ID: <sent-1@gen.example>\n\nHi.\n");
  e.expected.insert(sent.string());
  write_file(carol / "tmp/1700099998.M1P1.gen",
             "From: alice.smith@example.com\nSubject: tmp\n\nin delivery\n");
  // The subject's own mailbox: every item is hers by ownership.
  auto own = root / "mail/example.com/alice.smith/Maildir/cur/1700088888.M1P1.gen:2,S";
  write_file(own, "From: Shop <news@shop.example>\nTo: customers@shop.example\nSubject: owner\n"
                  "Message-ID: <owner-1@gen.example>\n\nNothing personal in here.\n");
  e.expected.insert(own.string());

  // An mbox archive: mboxrd quoting, a message not about her, CRLF message.
  std::string m1 = "From alice.smith@example.com Mon Oct  2 09:00:00 2023\n"
                   "From: Alice Smith <alice.smith@example.com>\nTo: team@example.com\n"
                   "Subject: away\nMessage-ID: <mb-1@gen.example>\n\nAway next week.\n>From Monday Bob.\n\n";
  std::string m2 = "From dave@supplier.example Tue Oct  3 10:00:00 2023\n"
                   "From: Dave <dave@supplier.example>\nTo: purchasing@example.com\n"
                   "Subject: invoice\nMessage-ID: <mb-2@gen.example>\n\nContact alice.smithson@example.com\n\n";
  std::string m3 = "From bob.jones@example.com Wed Oct  4 16:30:00 2023\r\n"
                   "From: Bob <bob.jones@example.com>\r\nTo: p@example.com\r\nCc: Alice Smith <ALICE.SMITH@example.com>\r\n"
                   "Subject: crlf\r\nMessage-ID: <mb-3@gen.example>\r\n\r\nApproved.\r\n\r\n";
  e.mbox = root / "archive/2023.mbox";
  write_file(e.mbox, m1 + m2 + m3);
  e.expected.insert(fmt::format("{}@{}", e.mbox.string(), 0));
  e.near_misses.insert(fmt::format("{}@{}", e.mbox.string(), m1.size()));
  e.expected.insert(fmt::format("{}@{}", e.mbox.string(), m1.size() + m2.size()));

  e.config = root / "maildsar.json";
  write_file(e.config, R"({
  // generated by the end-to-end tests
  "state_dir": "state",
  "sources": [
    {"name": "mailboxes", "type": "maildir", "path": "mail/example.com/*/Maildir", "owner": "{1}@example.com"},
    {"name": "archive", "type": "mbox", "path": "archive/*.mbox"}
  ],
  "identity": {"subaddress_separators": "+", "phone_region": "GB"}
})");
  e.subject = root / "subject.json";
  write_file(e.subject, R"({"request": "DSAR-TEST-1",
  "emails": ["alice.smith@example.com", "Alice@BÜCHER.example"],
  "names": ["Alice Smith"], "phones": ["+44 20 7946 0123"], "ips": ["203.0.113.45", "2001:db8::45"]})");
  return e;
}

} // namespace maildsar::test
