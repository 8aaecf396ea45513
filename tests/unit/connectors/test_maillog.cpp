// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/maillog.hpp"
#include "connectors/log_range.hpp"
#include "connectors/limits.hpp"
#include "connectors/maillog/text.hpp"
#include "connectors/maillog/transaction.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <array>
#include <random>
#include <filesystem>
#include <string>
#include <sys/time.h>
#include <vector>

namespace fs = std::filesystem;
using maildsar::connectors::Connector;
using maildsar::connectors::FileEntry;
using maildsar::connectors::Item;
using maildsar::connectors::ItemSink;
using maildsar::connectors::Role;
using maildsar::connectors::ScanError;
using maildsar::test::ScratchDir;

namespace {

struct CollectSink : ItemSink {
  std::vector<Item> items;
  std::vector<ScanError> errors;
  void item(Item &&i) override { items.push_back(std::move(i)); }
  void error(ScanError &&e) override { errors.push_back(std::move(e)); }

  [[nodiscard]] const Item *by_queue_id(const std::string &id) const {
    for (const auto &i : items) {
      if (i.locator.queue_id == id) {
        return &i;
      }
    }
    return nullptr;
  }
};

std::unique_ptr<Connector> make(const std::string &format, const std::string &path = "/nonexistent/*") {
  maildsar::core::SourceConfig src;
  src.name = "logs";
  src.type = "maillog";
  src.format = format;
  src.path = path;
  auto c = maildsar::connectors::make_maillog_connector(src);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
  return std::move(*c);
}

FileEntry entry(const fs::path &path) {
  FileEntry e;
  e.path = path.string();
  auto st = maildsar::core::lstat_file(e.path);
  EXPECT_TRUE(st.has_value());
  if (st) {
    e.stat = *st;
  }
  return e;
}

CollectSink scan(const std::string &format, const fs::path &path, std::uint64_t offset = 0) {
  CollectSink sink;
  auto c = make(format);
  auto st = c->scan(entry(path), offset, sink);
  EXPECT_TRUE(st.has_value()) << path << ": " << (st ? "" : st.error().message);
  return sink;
}

bool has_address(const Item &item, Role role, const std::string &addr) {
  return std::any_of(item.addresses.begin(), item.addresses.end(),
                     [&](const auto &a) { return a.role == role && a.addr == addr; });
}

bool has_ip(const Item &item, Role role, const std::string &ip) {
  return std::any_of(item.ips.begin(), item.ips.end(),
                     [&](const auto &v) { return v.role == role && v.value == ip; });
}

std::vector<std::string> split_lines(const std::string &text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) {
      out.push_back(text.substr(start));
      break;
    }
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

/** 1-based numbers of the lines of `text` that contain `needle`. */
std::vector<std::uint64_t> lines_with(const std::string &text, const std::string &needle) {
  std::vector<std::uint64_t> out;
  auto lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find(needle) != std::string::npos) {
      out.push_back(i + 1);
    }
  }
  return out;
}

using maildsar::test::gzip;

void set_mtime(const fs::path &path, std::int64_t epoch) {
  struct timeval tv[2] = {{epoch, 0}, {epoch, 0}};
  ASSERT_EQ(::utimes(path.c_str(), tv), 0);
}

bool valid_utf8(const std::string &s) {
  for (std::size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) {
      return false;
    }
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        return false;
      }
    }
    i += n;
  }
  return true;
}

const char *k_interleaved =
    "Nov 14 10:00:00 mx postfix/smtpd[100]: connect from a.example[203.0.113.45]\n"
    "Nov 14 10:00:01 mx postfix/smtpd[100]: 4Q1AbC2dEfz: client=a.example[203.0.113.45], "
    "sasl_method=PLAIN, sasl_username=alice\n"
    "Nov 14 10:00:01 mx postfix/smtpd[101]: ABCDE12345: client=b.example[198.51.100.7]\n"
    "Nov 14 10:00:02 mx postfix/cleanup[102]: 4Q1AbC2dEfz: message-id=<m1@example.com>\n"
    "Nov 14 10:00:02 mx postfix/cleanup[102]: ABCDE12345: message-id=<m2@example.com>\n"
    "Nov 14 10:00:03 mx postfix/qmgr[103]: ABCDE12345: from=<bob@example.org>, size=10, nrcpt=1 "
    "(queue active)\n"
    "Nov 14 10:00:03 mx postfix/qmgr[103]: 4Q1AbC2dEfz: from=<alice.smith@example.com>, size=20, "
    "nrcpt=2 (queue active)\n"
    "Nov 14 10:00:04 mx postfix/smtpd[104]: NOQUEUE: reject: RCPT from c.example[192.0.2.9]: 554 "
    "5.7.1 Relay access denied; from=<spam@bad.example> to=<carol@example.com> proto=ESMTP\n"
    "Nov 14 10:00:05 mx postfix/lmtp[105]: 4Q1AbC2dEfz: to=<dave@example.net>, "
    "orig_to=<d@example.net>, relay=mail[10.0.0.2]:24, status=sent (250 ok)\n"
    "Nov 14 10:00:05 mx postfix/smtp[106]: ABCDE12345: to=<erin@example.com>, relay=x[10.0.0.3]:25, "
    "status=sent (250 ok)\n"
    "Nov 14 10:00:06 mx postfix/qmgr[103]: ABCDE12345: removed\n"
    "Nov 14 10:00:07 mx postfix/anvil[107]: statistics: max connection rate 1/60s\n"
    "Nov 14 10:00:08 mx postfix/smtp[106]: 4Q1AbC2dEfz: to=<frank@example.com>, "
    "relay=x[10.0.0.3]:25, status=sent (250 ok)\n";

} // namespace

TEST(MaillogConnector, RejectsUnknownFormat) {
  maildsar::core::SourceConfig src;
  src.name = "logs";
  src.type = "maillog";
  src.format = "qmail-binary";
  auto c = maildsar::connectors::make_maillog_connector(src);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, maildsar::core::ErrorCode::config);
  EXPECT_NE(c.error().message.find("qmail-binary"), std::string::npos);
  for (auto f : {"postfix", "exim", "sendmail", "exchange", "syslog", "auto", ""}) {
    src.format = f;
    EXPECT_TRUE(maildsar::connectors::make_maillog_connector(src).has_value()) << f;
  }
}

TEST(MaillogConnector, ScansWholeCorpusWithoutCrash) {
  auto corpus = maildsar::test::corpus_dir();
  if (corpus.empty() || !fs::is_directory(corpus / "logs")) {
    GTEST_SKIP() << "corpus not available";
  }
  std::size_t files = 0;
  std::size_t items = 0;
  for (const auto &de : fs::recursive_directory_iterator(corpus / "logs")) {
    if (!de.is_regular_file()) {
      continue;
    }
    std::string p = de.path().string();
    std::string name = de.path().filename().string();
    std::string format = "syslog";
    if (p.find("/exchange/") != std::string::npos) {
      format = "exchange";
    } else if (p.find("/exim-testsuite/") != std::string::npos ||
               (p.find("/fail2ban/") != std::string::npos && name.starts_with("exim")) ||
               name.starts_with("exim-logs") || name.starts_with("exim-spam")) {
      format = "exim";
    } else if (p.find("/postfix-") != std::string::npos || name.starts_with("postfix") ||
               name.starts_with("postscreen")) {
      format = "postfix";
    }
    auto sink = scan(format, de.path());
    ++files;
    items += sink.items.size();
    for (const auto &item : sink.items) {
      ASSERT_FALSE(item.locator.lines.empty()) << p;
      ASSERT_EQ(item.sha256.size(), 64U) << p;
      ASSERT_FALSE(item.locator.queue_id.empty()) << p;
      ASSERT_TRUE(std::is_sorted(item.locator.lines.begin(), item.locator.lines.end())) << p;
      for (const auto &t : item.texts) {
        ASSERT_TRUE(valid_utf8(t.text)) << p;
      }
    }
  }
  EXPECT_GT(files, 100U);
  EXPECT_GT(items, 1000U);
}

TEST(MaillogConnector, PostfixTestLogTransactions) {
  auto corpus = maildsar::test::corpus_dir();
  auto path = corpus / "logs/postfix-log-parser/test.log";
  if (corpus.empty() || !fs::exists(path)) {
    GTEST_SKIP() << "corpus not available";
  }
  std::string text = maildsar::test::read_file(path);
  auto sink = scan("postfix", path);
  // By hand (grep): 3 queue ids (C6E0DDB74006, 3D74ADB7400B, 6526CDB7400B) plus 6
  // connect/disconnect lines that each show the client IP.
  EXPECT_EQ(sink.items.size(), 9U);
  EXPECT_TRUE(sink.errors.empty());
  for (const std::string qid : {"C6E0DDB74006", "3D74ADB7400B", "6526CDB7400B"}) {
    const Item *item = sink.by_queue_id(qid);
    ASSERT_NE(item, nullptr) << qid;
    EXPECT_EQ(item->locator.lines, lines_with(text, " " + qid + ":")) << qid;
    EXPECT_EQ(item->locator.store, maildsar::connectors::StoreKind::maillog);
    EXPECT_EQ(item->locator.source, "logs");
    EXPECT_TRUE(has_ip(*item, Role::log_client, "127.0.0.1")) << qid;
  }
  const Item *item = sink.by_queue_id("3D74ADB7400B");
  ASSERT_NE(item, nullptr);
  EXPECT_EQ(item->message_id, "f93388828093534f92d85ffe21b2a719@example.info");
  EXPECT_TRUE(has_address(*item, Role::log_from, "test2@example.info"));
  EXPECT_TRUE(has_address(*item, Role::log_to, "test@example.to"));
  EXPECT_TRUE(has_address(*item, Role::log_to, "test2@example.to"));
  // sha256 = the transaction's lines joined with '\n'
  auto lines = split_lines(text);
  std::string joined;
  for (auto n : item->locator.lines) {
    if (!joined.empty()) {
      joined += '\n';
    }
    joined += lines[n - 1];
  }
  EXPECT_EQ(item->sha256, maildsar::core::sha256_hex(joined));
  ASSERT_EQ(item->texts.size(), 1U);
  EXPECT_EQ(item->texts[0].role, Role::body);
  // the text scanned for identities: the lines, the Message-ID blanked (it looks like an address
  // but names nobody; the mail side leaves Message-ID out of the address scan too) and the
  // queue id (a run of digits and letters that names nobody either)
  std::string scanned = joined;
  for (const std::string name :
       {"f93388828093534f92d85ffe21b2a719@example.info", "3D74ADB7400B"}) {
    for (auto p = scanned.find(name); p != std::string::npos; p = scanned.find(name, p)) {
      scanned.replace(p, name.size(), std::string(name.size(), ' '));
    }
  }
  EXPECT_EQ(item->texts[0].text, scanned);
  // the single-line items are named by their line
  EXPECT_NE(sink.by_queue_id("line-1"), nullptr);
  EXPECT_EQ(sink.by_queue_id("line-1")->locator.lines, std::vector<std::uint64_t>{1});
}

TEST(MaillogConnector, EximMainlogTransactions) {
  auto corpus = maildsar::test::corpus_dir();
  auto path = corpus / "logs/exim-testsuite/mainlog/0022";
  if (corpus.empty() || !fs::exists(path)) {
    GTEST_SKIP() << "corpus not available";
  }
  std::string text = maildsar::test::read_file(path);
  auto sink = scan("exim", path);
  // By hand: 8 distinct message ids (10HmaX..10HmbE), plus the "H=[127.0.0.1] rejected
  // connection" line which has no id but an IP.
  std::size_t with_id = 0;
  for (const auto &i : sink.items) {
    with_id += i.locator.queue_id.starts_with("line-") ? 0U : 1U;
  }
  EXPECT_EQ(with_id, 8U);
  EXPECT_EQ(sink.items.size(), 9U);
  const Item *y = sink.by_queue_id("10HmaY-000000005vi-0000");
  ASSERT_NE(y, nullptr);
  EXPECT_EQ(y->locator.lines, lines_with(text, "10HmaY-000000005vi-0000"));
  EXPECT_TRUE(has_address(*y, Role::log_from, "CALLER@test.ex"));
  EXPECT_TRUE(has_address(*y, Role::log_to, "accept@y"));
  const Item *b = sink.by_queue_id("10HmbB-000000005vi-0000");
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(has_ip(*b, Role::log_client, "127.0.0.1"));
  // "******** SERVER ********" is not an exim line: one summary error, not one per line
  ASSERT_EQ(sink.errors.size(), 1U);
  EXPECT_NE(sink.errors[0].cause.find("1 line(s) not understood"), std::string::npos);
}

TEST(MaillogConnector, EximRolesRecycledIdsAndRejectlog) {
  ScratchDir tmp;
  auto path = tmp / "mainlog";
  maildsar::test::write_file(
      path,
      "2023-11-14 10:00:00 +0100 1pXXXX-0005Vh-2Q <= alice@example.com H=mx.example "
      "(helo) [203.0.113.45]:4321 P=esmtps A=plain:alice S=100 id=abc@example.com\n"
      "2023-11-14 10:00:01 +0100 1pXXXX-0005Vh-2Q => bob@example.org <b@example.org> R=r T=t "
      "H=mx2 [10.1.1.1]\n"
      "2023-11-14 10:00:01 +0100 1pXXXX-0005Vh-2Q ** carol@example.net: unrouteable\n"
      "2023-11-14 10:00:02 +0100 1pXXXX-0005Vh-2Q Completed\n"
      "2023-11-14 10:00:03 +0100 1pXXXX-0005Vh-2Q <= dave@example.com U=dave P=local S=1\n"
      "2023-11-14 10:00:04 +0100 H=(x) [192.0.2.1]:25 F=<spam@bad.example> rejected RCPT "
      "<erin@example.com>: no\n"
      "2023-11-14 10:00:05 10HmaX-000000005vi-0000 F=<frank@example.com> rejected by non-SMTP "
      "ACL: Nyet\n"
      "Envelope-from: <frank@example.com>\n"
      "F From: Frank <frank@example.com>\n");
  auto sink = scan("exim", path);
  ASSERT_EQ(sink.items.size(), 4U);
  // Completed closes the first transaction; the id is then reused by a new one.
  const Item &first = sink.items[0];
  EXPECT_EQ(first.locator.queue_id, "1pXXXX-0005Vh-2Q");
  EXPECT_EQ(first.locator.lines, (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(first.message_id, "abc@example.com");
  ASSERT_TRUE(first.date.has_value());
  EXPECT_EQ(*first.date, 1699952400); // 2023-11-14T09:00:00Z
  EXPECT_TRUE(has_address(first, Role::log_from, "alice@example.com"));
  EXPECT_TRUE(has_address(first, Role::log_user, "alice"));
  EXPECT_TRUE(has_address(first, Role::log_to, "bob@example.org"));
  EXPECT_TRUE(has_address(first, Role::log_to, "b@example.org"));
  EXPECT_TRUE(has_address(first, Role::log_to, "carol@example.net"));
  EXPECT_TRUE(has_ip(first, Role::log_client, "203.0.113.45"));
  EXPECT_FALSE(has_ip(first, Role::log_client, "10.1.1.1")); // delivery host is not the client
  const Item *reject = sink.by_queue_id("line-6");
  ASSERT_NE(reject, nullptr);
  EXPECT_TRUE(has_address(*reject, Role::log_from, "spam@bad.example"));
  EXPECT_TRUE(has_address(*reject, Role::log_to, "erin@example.com"));
  EXPECT_TRUE(has_ip(*reject, Role::log_client, "192.0.2.1"));
  // rejectlog header dump lines belong to their entry
  const Item *rej = sink.by_queue_id("10HmaX-000000005vi-0000");
  ASSERT_NE(rej, nullptr);
  EXPECT_EQ(rej->locator.lines, (std::vector<std::uint64_t>{7, 8, 9}));
  EXPECT_TRUE(sink.errors.empty());
  const Item *second = nullptr;
  for (const auto &i : sink.items) {
    if (i.locator.queue_id == "1pXXXX-0005Vh-2Q" && i.locator.lines.front() == 5) {
      second = &i;
    }
  }
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(has_address(*second, Role::log_from, "dave@example.com"));
  EXPECT_TRUE(has_address(*second, Role::log_user, "dave"));
}

TEST(MaillogConnector, ExchangeMessageTracking) {
  auto corpus = maildsar::test::corpus_dir();
  auto dir = corpus / "logs/exchange";
  if (corpus.empty() || !fs::is_directory(dir)) {
    GTEST_SKIP() << "corpus not available";
  }
  // kinesistap: two rows (AGENTINFO, HAREDIRECT) of one message-id -> one transaction
  auto k = scan("exchange", dir / "kinesistap-MSGTRK.log");
  ASSERT_EQ(k.items.size(), 1U);
  const Item &item = k.items[0];
  EXPECT_EQ(item.locator.lines, (std::vector<std::uint64_t>{6, 7}));
  EXPECT_EQ(item.message_id, "1028007174.22872.1495474412586.JavaMail.apollo@apollo-adaws-onebox-"
                             "acc-1a-4c722f6e.us-east-1.amazon.com");
  EXPECT_EQ(item.subject, "Started JlbRelayShortCircuit/us-west-2/PDX1/Prod deployment");
  EXPECT_TRUE(has_address(item, Role::log_from, "apollo@amazon.com"));
  EXPECT_TRUE(has_address(item, Role::log_from, "jlb-approval@amazon.com"));
  for (auto to : {"abannert@amazon.com", "bryanson@amazon.com", "zihoncao@amazon.com"}) {
    EXPECT_TRUE(has_address(item, Role::log_to, to)) << to;
  }
  ASSERT_TRUE(item.date.has_value());
  EXPECT_EQ(*item.date, 1495474415); // 2017-05-22T17:33:35.632Z
  EXPECT_TRUE(k.errors.empty());
  // beats (BOM, 2010 field list): only NOTIFYMAPI rows without any id, address or IP
  auto b = scan("exchange", dir / "beats-bom8-MSGTRK.log");
  EXPECT_TRUE(b.items.empty());
  EXPECT_TRUE(b.errors.empty());
  // "auto" recognises the header
  EXPECT_EQ(scan("auto", dir / "kinesistap-MSGTRK.log").items.size(), 1U);
}

TEST(MaillogConnector, ExchangeClientIpAndRowsWithoutIds) {
  ScratchDir tmp;
  auto path = tmp / "MSGTRK2024012515-1.LOG";
  maildsar::test::write_file(
      path, "\xEF\xBB\xBF#Software: Microsoft Exchange Server\r\n"
            "#Fields: date-time,client-ip,event-id,internal-message-id,message-id,"
            "recipient-address,message-subject,sender-address\r\n"
            "2024-01-25T15:16:09.949Z,10.11.12.13,RECEIVE,7091,<a@b.example>,"
            "x@example.com,\"Hello, \"\"world\"\"\",y@example.com\r\n"
            "2024-01-25T15:16:10.000Z,,FAIL,,,z@example.com,,\r\n"
            "2024-01-25T15:16:11.000Z,,DELIVER,7091,<a@b.example>,x@example.com,,\r\n");
  auto sink = scan("exchange", path);
  ASSERT_EQ(sink.items.size(), 2U);
  const Item *msg = sink.by_queue_id("a@b.example");
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(msg->locator.lines, (std::vector<std::uint64_t>{3, 5}));
  EXPECT_EQ(msg->subject, "Hello, \"world\"");
  EXPECT_TRUE(has_ip(*msg, Role::log_client, "10.11.12.13"));
  EXPECT_TRUE(has_address(*msg, Role::log_from, "y@example.com"));
  const Item *row = sink.by_queue_id("line-4");
  ASSERT_NE(row, nullptr);
  EXPECT_TRUE(has_address(*row, Role::log_to, "z@example.com"));
}

// Regression (found by the fuzz_maillog_exchange invariant "a key comes with a queue id"): a
// row whose message-id is empty inside its brackets ("<>") was keyed "exchange:<>" with an empty
// queue id, and every such row of the file became one transaction. An empty id is no id: the
// row groups by its internal message id, or stands alone.
TEST(MaillogConnector, ExchangeEmptyMessageIdIsNoId) {
  ScratchDir tmp;
  auto path = tmp / "MSGTRK2024012516-1.LOG";
  maildsar::test::write_file(
      path, "#Fields: date-time,event-id,internal-message-id,message-id,recipient-address\n"
            "2024-01-25T16:00:00.000Z,RECEIVE,8001,<>,p@example.com\n"
            "2024-01-25T16:00:01.000Z,RECEIVE,8002,<>,q@example.com\n"
            "2024-01-25T16:00:02.000Z,DELIVER,8001,<>,p@example.com\n"
            "2024-01-25T16:00:03.000Z,FAIL,,<,r@example.com\n");
  auto sink = scan("exchange", path);
  ASSERT_EQ(sink.items.size(), 3U);
  for (const Item &item : sink.items) {
    EXPECT_FALSE(item.locator.queue_id.empty());
    EXPECT_TRUE(item.message_id.empty());
  }
  const Item *first = sink.by_queue_id("8001");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->locator.lines, (std::vector<std::uint64_t>{2, 4}));
  const Item *second = sink.by_queue_id("8002");
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->locator.lines, (std::vector<std::uint64_t>{3}));
  const Item *alone = sink.by_queue_id("line-5");
  ASSERT_NE(alone, nullptr);
  EXPECT_TRUE(has_address(*alone, Role::log_to, "r@example.com"));
  EXPECT_TRUE(sink.errors.empty());
}

TEST(MaillogConnector, InterleavedPostfixTransactions) {
  ScratchDir tmp;
  auto path = tmp / "mail.log";
  maildsar::test::write_file(path, k_interleaved);
  auto sink = scan("postfix", path);
  const Item *a = sink.by_queue_id("4Q1AbC2dEfz");
  const Item *b = sink.by_queue_id("ABCDE12345");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->locator.lines, (std::vector<std::uint64_t>{2, 4, 7, 9, 13}));
  EXPECT_EQ(b->locator.lines, (std::vector<std::uint64_t>{3, 5, 6, 10, 11}));
  EXPECT_EQ(a->message_id, "m1@example.com");
  EXPECT_EQ(b->message_id, "m2@example.com");
  EXPECT_TRUE(has_address(*a, Role::log_user, "alice"));
  EXPECT_TRUE(has_address(*a, Role::log_from, "alice.smith@example.com"));
  EXPECT_TRUE(has_address(*a, Role::log_to, "dave@example.net"));
  EXPECT_TRUE(has_address(*a, Role::log_to, "d@example.net"));
  EXPECT_TRUE(has_address(*a, Role::log_to, "frank@example.com"));
  EXPECT_TRUE(has_ip(*a, Role::log_client, "203.0.113.45"));
  EXPECT_FALSE(has_ip(*a, Role::log_client, "10.0.0.2")); // relay= is not the client
  EXPECT_FALSE(has_address(*a, Role::log_to, "erin@example.com"));
  EXPECT_TRUE(has_ip(*b, Role::log_client, "198.51.100.7"));
  EXPECT_TRUE(has_address(*b, Role::log_from, "bob@example.org"));
  EXPECT_TRUE(has_address(*b, Role::log_to, "erin@example.com"));
  // "removed" emits the transaction right away: b comes before a
  auto pos = [&](const Item *p) { return p - sink.items.data(); };
  EXPECT_LT(pos(b), pos(a));
  // NOQUEUE reject: an item of its own
  const Item *noqueue = sink.by_queue_id("line-8");
  ASSERT_NE(noqueue, nullptr);
  EXPECT_EQ(noqueue->locator.lines, std::vector<std::uint64_t>{8});
  EXPECT_TRUE(has_address(*noqueue, Role::log_from, "spam@bad.example"));
  EXPECT_TRUE(has_address(*noqueue, Role::log_to, "carol@example.com"));
  EXPECT_TRUE(has_ip(*noqueue, Role::log_client, "192.0.2.9"));
  // connect line: IP; statistics line: nothing personal -> no item
  EXPECT_NE(sink.by_queue_id("line-1"), nullptr);
  EXPECT_EQ(sink.by_queue_id("line-12"), nullptr);
  EXPECT_EQ(sink.items.size(), 4U);
  EXPECT_TRUE(sink.errors.empty());
}

TEST(MaillogConnector, SendmailTransaction) {
  ScratchDir tmp;
  auto path = tmp / "maillog";
  maildsar::test::write_file(
      path,
      "Nov  3 11:35:30 host sendmail[26254]: rA37ZTSC026254: from=<alice@example.com>, size=10, "
      "class=0, nrcpts=1, msgid=<id1@example.com>, proto=ESMTP, daemon=MTA, "
      "relay=client.example [203.0.113.45]\n"
      "Nov  3 11:35:31 host sm-mta[26255]: rA37ZTSC026254: to=<bob@example.org>,<carol@example.org>, "
      "ctladdr=<bob@example.org> (1000/1000), delay=00:00:01, mailer=local, relay=mx [10.9.9.9], "
      "stat=Sent\n"
      "Jun 17 14:37:39 <mail.info> robin sm-mta[2794]: s1P819mk027713: ruleset=check_rcpt, "
      "arg1=<dan@example.net>, relay=x.example [192.0.2.4], reject=550 5.7.1 Relaying denied\n");
  auto sink = scan("sendmail", path);
  ASSERT_EQ(sink.items.size(), 2U);
  const Item *t = sink.by_queue_id("rA37ZTSC026254");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->locator.lines, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(t->message_id, "id1@example.com");
  EXPECT_TRUE(has_address(*t, Role::log_from, "alice@example.com"));
  EXPECT_TRUE(has_address(*t, Role::log_to, "bob@example.org"));
  EXPECT_TRUE(has_address(*t, Role::log_to, "carol@example.org"));
  EXPECT_TRUE(has_address(*t, Role::log_user, "bob@example.org"));
  EXPECT_TRUE(has_ip(*t, Role::log_client, "203.0.113.45"));
  EXPECT_FALSE(has_ip(*t, Role::log_client, "10.9.9.9"));
  const Item *r = sink.by_queue_id("s1P819mk027713");
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(has_address(*r, Role::log_to, "dan@example.net"));
  EXPECT_TRUE(has_ip(*r, Role::log_client, "192.0.2.4"));
}

TEST(MaillogConnector, DovecotLoginAndDelivery) {
  ScratchDir tmp;
  auto path = tmp / "mail.log";
  maildsar::test::write_file(
      path,
      "Oct 12 15:44:43 canyon dovecot: imap-login: Login: user=<alice@example.com>, method=PLAIN, "
      "rip=203.0.113.45, lip=10.0.0.1, mpid=123, TLS, session=<oEOptynOHNasEQAB>\n"
      "Oct 12 15:44:44 canyon dovecot: lmtp(bob@example.com)<555><hzTeIJ6h0FVC5AAAmWfg3g>: "
      "msgid=<m9@example.com>: saved mail to INBOX\n"
      "Oct 12 15:50:00 canyon dovecot: imap(alice@example.com)<123><oEOptynOHNasEQAB>: Logged "
      "out in=10 out=20\n"
      "Sep 8 07:46:30 canyon dovecot: auth-worker(24544): pam(toto,1.1.1.1): unknown user\n"
      // dovecot's own log file: no "dovecot:" tag
      "Oct 12 16:00:00 lmtp(carol@example.com)<556><sess2>: msgid=<m10@example.com>: saved mail "
      "to INBOX\n"
      "@400000004c91b044077a9e94 imap-login: Info: Login: user=<erin@example.com>, "
      "rip=80.187.101.33, lip=80.254.129.240, TLS, session=<sess3>\n");
  auto sink = scan("syslog", path);
  ASSERT_EQ(sink.items.size(), 5U);
  const Item *own = sink.by_queue_id("sess2");
  ASSERT_NE(own, nullptr);
  EXPECT_TRUE(has_address(*own, Role::log_to, "carol@example.com"));
  EXPECT_EQ(own->message_id, "m10@example.com");
  const Item *tai = sink.by_queue_id("sess3");
  ASSERT_NE(tai, nullptr);
  EXPECT_TRUE(has_address(*tai, Role::log_user, "erin@example.com"));
  EXPECT_TRUE(has_ip(*tai, Role::log_client, "80.187.101.33"));
  EXPECT_EQ(tai->date.value_or(0), 0x4c91b044 - 10); // TAI64N label, 10 s TAI-UTC offset
  const Item *login = sink.by_queue_id("oEOptynOHNasEQAB");
  ASSERT_NE(login, nullptr);
  EXPECT_EQ(login->locator.lines, (std::vector<std::uint64_t>{1, 3}));
  EXPECT_TRUE(has_address(*login, Role::log_user, "alice@example.com"));
  EXPECT_TRUE(has_ip(*login, Role::log_client, "203.0.113.45"));
  EXPECT_FALSE(has_ip(*login, Role::log_client, "10.0.0.1"));
  const Item *lmtp = sink.by_queue_id("hzTeIJ6h0FVC5AAAmWfg3g");
  ASSERT_NE(lmtp, nullptr);
  EXPECT_EQ(lmtp->message_id, "m9@example.com");
  EXPECT_TRUE(has_address(*lmtp, Role::log_to, "bob@example.com"));
  const Item *pam = sink.by_queue_id("line-4");
  ASSERT_NE(pam, nullptr);
  EXPECT_TRUE(has_address(*pam, Role::log_user, "toto"));
  EXPECT_TRUE(has_ip(*pam, Role::log_client, "1.1.1.1"));
}

// A Dovecot session ends with "Logged out", "Disconnected", "Connection closed" or "Aborted
// login", an LMTP/LDA delivery with its result: it is emitted then, not held open until the open-transactions budget splits it (which
// a busy IMAP server's sessions did to every log of the benchmark set). A session id seen again
// after its end starts a transaction of its own.
TEST(MaillogConnector, DovecotSessionsCloseAtTheirEnd) {
  ScratchDir tmp;
  auto path = tmp / "mail.log";
  std::string log;
  for (int i = 0; i < 4; ++i) {
    log += fmt::format("Oct 12 15:44:4{} canyon dovecot: imap-login: Login: user=<u{}@example.com>, "
                       "method=PLAIN, rip=203.0.113.{}, lip=10.0.0.1, mpid={}, TLS, session=<S{}>\n",
                       i, i, i + 1, 100 + i, i);
  }
  log += "Oct 12 15:50:00 canyon dovecot: imap(u0@example.com)<100><S0>: Logged out in=10 out=20\n"
         "Oct 12 15:50:01 canyon dovecot: pop3(u1@example.com)<101><S1>: Disconnected: Logged out top=0/0\n"
         "Oct 12 15:50:02 canyon dovecot: imap(u2@example.com)<102><S2>: Disconnected: Connection closed (IDLE running for 0.001 + waiting input for 28.5 secs) in=1 out=2\n"
         "Oct 12 15:50:03 canyon dovecot: imap-login: Aborted login (no auth attempts in 0 secs): user=<>, "
         "rip=203.0.113.9, lip=10.0.0.1, TLS, session=<S9>\n"
         "Oct 12 15:50:04 canyon dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): "
         "user=<u5@example.com>, method=PLAIN, rip=203.0.113.5, lip=10.0.0.1, TLS, session=<S5>\n"
         "Oct 12 15:50:05 canyon dovecot: imap(u0@example.com)<100><S0>: Logged out in=1 out=1\n"
         "Oct 12 15:50:06 canyon dovecot: lmtp(u6@example.com)<200><L6>: msgid=<m6@example.com>: saved mail to INBOX\n"
         "Oct 12 15:50:07 canyon dovecot: lmtp(u7@example.com)<201><L7>: sieve: msgid=<m7@example.com>: "
         "stored mail into mailbox 'INBOX'\n";
  maildsar::test::write_file(path, log);
  auto sink = scan("syslog", path);
  // each closed session is emitted at its last line, before the end of the file
  std::vector<std::pair<std::string, std::vector<std::uint64_t>>> order;
  for (const Item &item : sink.items) {
    order.emplace_back(item.locator.queue_id, item.locator.lines);
  }
  const std::vector<std::pair<std::string, std::vector<std::uint64_t>>> want{
      {"S0", {1, 5}}, {"S1", {2, 6}}, {"S2", {3, 7}}, {"S9", {8}}, {"S5", {9}},
      {"S0", {10}},   {"L6", {11}},   {"L7", {12}},   {"S3", {4}}};
  EXPECT_EQ(order, want);
}

// Line counting eight bytes at a time gives what a byte loop gives, whatever the bytes around a
// newline (0x0A with high bits set, 0x0B, 0x09, NUL) and the length (tails shorter than a word).
TEST(MaillogText, CountNewlinesMatchesAByteLoop) {
  std::mt19937 rng(42);
  const std::array<char, 8> bytes{'\n', '\x8A', '\x0B', '\x09', '\0', 'a', '\xFF', '\x7F'};
  for (int round = 0; round < 2000; ++round) {
    std::string s(static_cast<std::size_t>(rng() % 67), ' ');
    for (char &c : s) {
      c = bytes[rng() % bytes.size()];
    }
    ASSERT_EQ(maildsar::connectors::maillog::count_newlines(s),
              static_cast<std::uint64_t>(std::count(s.begin(), s.end(), '\n')))
        << round;
  }
  EXPECT_EQ(maildsar::connectors::maillog::count_newlines(std::string(4096, '\n')), 4096U);
}

namespace {

// extract_common as it was written before its one-pass form: one field()/fields() search per key.
void extract_common_by_field(std::string_view msg, maildsar::connectors::maillog::Txn &t) {
  using maildsar::connectors::maillog::bracket_ip;
  using maildsar::connectors::maillog::field;
  using maildsar::connectors::maillog::fields;
  for (auto v : fields(msg, "from=")) {
    t.add_address(Role::log_from, v);
  }
  for (auto key : {"to=", "orig_to="}) {
    for (auto v : fields(msg, key)) {
      t.add_address(Role::log_to, v);
    }
  }
  for (auto key : {"sasl_username=", "user=", "set_id=", "authentication_id=", "us="}) {
    for (auto v : fields(msg, key)) {
      t.add_address(Role::log_user, v);
    }
  }
  if (auto v = field(msg, "client=")) {
    if (auto ip = bracket_ip(*v)) {
      t.add_ip(Role::log_client, *ip);
    } else {
      t.add_ip(Role::log_client, *v);
    }
  }
  for (auto key : {"rip=", "ip="}) {
    if (auto v = field(msg, key)) {
      std::string_view val = *v;
      if (!val.empty() && val.front() == '[') {
        const auto at = static_cast<std::size_t>(val.data() - msg.data());
        if (std::size_t e = msg.find(']', at); e != std::string_view::npos) {
          val = msg.substr(at, e + 1 - at);
        }
      }
      t.add_ip(Role::log_client, val);
    }
  }
  for (auto key : {"message-id=", "msgid=", "Message-ID: "}) {
    if (auto v = field(msg, key)) {
      t.set_message_id(*v);
    }
  }
  for (std::size_t p = msg.find("from "); p != std::string_view::npos; p = msg.find("from ", p + 1)) {
    std::string_view rest = msg.substr(p + 5);
    std::string_view tok = rest.substr(0, rest.find_first_of(" ,;"));
    if (auto ip = bracket_ip(tok)) {
      t.add_ip(Role::log_client, *ip);
    }
  }
}

std::string describe(const maildsar::connectors::maillog::Txn &t) {
  std::string out = "mid=" + t.message_id;
  for (const auto &a : t.addresses) {
    out += fmt::format(" a{}:{}", static_cast<int>(a.role), a.addr);
  }
  for (const auto &v : t.ips) {
    out += fmt::format(" i{}:{}", static_cast<int>(v.role), v.value);
  }
  return out;
}

} // namespace

// is_binary_line, which skips printable ASCII eight bytes at a time, says what a byte loop says
// for lines of printable ASCII with control bytes, tabs, UTF-8 and broken UTF-8 anywhere.
TEST(MaillogText, IsBinaryLineMatchesAByteLoop) {
  using maildsar::connectors::maillog::is_binary_line;
  using maildsar::connectors::maillog::utf8_sequence;
  const auto by_bytes = [](std::string_view s) {
    if (s.find('\0') != std::string_view::npos) {
      return true;
    }
    std::size_t bad = 0;
    for (std::size_t i = 0; i < s.size();) {
      const auto b = static_cast<unsigned char>(s[i]);
      if (b < 0x20 && b != '\t' && b != '\r') {
        ++bad;
        ++i;
      } else if (b < 0x80U) {
        ++i;
      } else if (const std::size_t n = utf8_sequence(s, i); n == 0) {
        ++bad;
        ++i;
      } else {
        i += n;
      }
    }
    return s.size() >= 4 && bad * 4 > s.size();
  };
  std::mt19937 rng(11);
  const std::array<std::string_view, 12> pieces{"a",  "~",  " ",      "\t",   "\r",   "\x01",
                                                "\x1f", "\x7f", "\xc3\xa9", "\xc3", "\xff", "\x80"};
  std::uniform_int_distribution<std::size_t> pick(0, pieces.size() - 1);
  std::uniform_int_distribution<int> length(0, 40);
  int binary = 0;
  for (int round = 0; round < 20000; ++round) {
    // runs of plain ASCII up to 0, 2 or 20 bytes between the pieces: from mostly binary to text
    std::uniform_int_distribution<int> ascii_run(0, std::array{0, 2, 20}[static_cast<std::size_t>(round % 3)]);
    std::string line;
    for (int n = length(rng); n > 0; --n) {
      line.append(static_cast<std::size_t>(ascii_run(rng)), 'x');
      line += pieces[pick(rng)];
    }
    const bool expected = by_bytes(line);
    binary += expected ? 1 : 0;
    ASSERT_EQ(is_binary_line(line), expected) << round;
  }
  EXPECT_GT(binary, 100); // both answers were asked for
  EXPECT_LT(binary, 19900);
}

// The one-pass extract_common finds what one search per key found, in the same order, on lines
// made of keys, near-keys ("xto=", "orig_to=", "rip=") and values of every shape field() knows.
TEST(MaillogText, ExtractCommonMatchesOneSearchPerKey) {
  const std::array<std::string_view, 44> pieces{
      "from=", "to=", "orig_to=", "sasl_username=", "user=", "set_id=", "authentication_id=",
      "us=", "client=", "rip=", "ip=", "message-id=", "msgid=", "Message-ID: ", "xto=",
      "Xfrom=", "_user=", "rto=", "authentication_identity=", "=", "<a@b.example>",
      "<c@d.example", "\"e f@g.example\"", "h@i.example", "[192.0.2.1]", "[::ffff:192.0.2.2]",
      "host[198.51.100.3]:25", "203.0.113.4", " ", ", ", ";", "(", "[", ":", ")", ">", "-",
      "_", "from ", "mail.example[192.0.2.9]", "<to=j@k.example>", "\"user=l@m.example\"",
      "q", "7"};
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::size_t> pick(0, pieces.size() - 1);
  std::uniform_int_distribution<int> length(0, 24);
  for (int round = 0; round < 20000; ++round) {
    std::string line;
    for (int n = length(rng); n > 0; --n) {
      line += pieces[pick(rng)];
    }
    maildsar::connectors::maillog::Txn expected;
    maildsar::connectors::maillog::Txn got;
    extract_common_by_field(line, expected);
    maildsar::connectors::maillog::extract_common(line, got);
    ASSERT_EQ(describe(got), describe(expected)) << line;
  }
}

TEST(MaillogConnector, UnknownProgramLineWithAddressIsAnItem) {
  ScratchDir tmp;
  auto path = tmp / "mail.log";
  maildsar::test::write_file(
      path,
      "# failJSON: { \"match\": true, \"host\": \"1.2.3.4\" }\n"
      "Feb 23 04:55:57 mrelmx42 amavis[4051607]: (4051607-09) Blocked INFECTED (X) "
      "{DiscardedInbound,Quarantined}, [192.168.0.1]:1434 [192.168.0.1] <someone1@something1.com> "
      "-> <someon2@something2.com>, Queue-ID: 83B741009CD35, Message-ID: <m@x.example>, size: 1\n"
      "Feb 23 04:55:58 mrelmx42 kernel: [12.34] eth0: link up\n"
      "Feb 23 04:55:59 mrelmx42 fail2ban.actions[99]: NOTICE [postfix] Ban 198.51.100.77\n"
      "Jul 30 08:01:07 efa MailScanner[1803828]: Message 4bsM5k4xJmz4rT6 from 192.168.1.50 "
      "(bounces@enbounce.example) to brandlehner.at is spam\n");
  auto sink = scan("syslog", path);
  ASSERT_EQ(sink.items.size(), 3U);
  const Item *ms = sink.by_queue_id("line-5");
  ASSERT_NE(ms, nullptr);
  EXPECT_TRUE(has_address(*ms, Role::log_from, "bounces@enbounce.example"));
  EXPECT_TRUE(has_ip(*ms, Role::log_client, "192.168.1.50"));
  const Item *amavis = sink.by_queue_id("line-2");
  ASSERT_NE(amavis, nullptr);
  EXPECT_EQ(amavis->locator.lines, std::vector<std::uint64_t>{2});
  EXPECT_EQ(amavis->message_id, "m@x.example");
  EXPECT_TRUE(has_address(*amavis, Role::log_from, "someone1@something1.com"));
  EXPECT_TRUE(has_address(*amavis, Role::log_to, "someon2@something2.com"));
  EXPECT_TRUE(has_ip(*amavis, Role::log_client, "192.168.0.1"));
  EXPECT_NE(amavis->texts.at(0).text.find("someon2@something2.com"), std::string::npos);
  const Item *ban = sink.by_queue_id("line-4");
  ASSERT_NE(ban, nullptr);
  EXPECT_NE(ban->texts.at(0).text.find("198.51.100.77"), std::string::npos);
  EXPECT_TRUE(sink.errors.empty());
}

TEST(MaillogConnector, LogIdsAndQueueIdsAreBlankedFromTheIdentityText) {
  // amavis's "(PID-NN[-M])" and a queue id of digits only are runs of digits that a phone-number
  // scan would weigh (and with a North American region accept: 418 is an area code); they name
  // nobody. A phone number in the same line, and a queue id inside a word, stay.
  ScratchDir tmp;
  auto path = tmp / "mail.log";
  maildsar::test::write_file(
      path,
      "Nov  2 04:20:29 mx2 postfix/qmgr[900]: 4189842416: from=<a@example.org>, size=1, "
      "nrcpt=1 (queue active)\n"
      "Nov  2 04:20:30 mx2 postfix/smtp[901]: 4189842416: to=<b@example.net>, status=sent "
      "(250 ok 4189842416x 4189842416)\n"
      "Nov  2 04:20:30 mx2 postfix/qmgr[900]: 4189842416: removed\n"
      "Nov  2 03:14:44 mx2 amavis[4985]: (4983-18-2) Passed CLEAN {RelayedInbound}, "
      "[203.0.113.147]:55667 [203.0.113.147] <dave@news.example> -> <frank@example.org>, "
      "Queue-ID: 95C5E1239C, call +44 20 7946 0123 (4983-18-2)\n"
      "Nov  2 03:14:45 mx2 other[1]: (4983-18) from=<c@example.org>\n");
  auto sink = scan("postfix", path);
  EXPECT_TRUE(sink.errors.empty());
  const Item *txn = sink.by_queue_id("4189842416");
  ASSERT_NE(txn, nullptr);
  const std::string &text = txn->texts.at(0).text;
  EXPECT_EQ(text.find("4189842416:"), std::string::npos) << text;
  EXPECT_NE(text.find("4189842416x"), std::string::npos) << text; // inside a word: kept
  EXPECT_EQ(text.find(" 4189842416)"), std::string::npos) << text;
  const Item *amavis = sink.by_queue_id("line-4");
  ASSERT_NE(amavis, nullptr);
  EXPECT_EQ(amavis->texts.at(0).text.find("4983-18"), std::string::npos) << amavis->texts.at(0).text;
  EXPECT_NE(amavis->texts.at(0).text.find("+44 20 7946 0123"), std::string::npos);
  EXPECT_TRUE(has_address(*amavis, Role::log_to, "frank@example.org"));
  // only amavis's own lines carry its log id
  const Item *other = sink.by_queue_id("line-5");
  ASSERT_NE(other, nullptr);
  EXPECT_NE(other->texts.at(0).text.find("(4983-18)"), std::string::npos);
}

TEST(MaillogConnector, GzipGivesTheSameItems) {
  ScratchDir tmp;
  std::string text = k_interleaved;
  maildsar::test::write_file(tmp / "mail.log", text);
  maildsar::test::write_file(tmp / "mail.log.2.gz", gzip(text));
  // multi-member gzip (e.g. files concatenated by a rotation script)
  std::string half1 = text.substr(0, text.find('\n', text.size() / 2) + 1);
  std::string half2 = text.substr(half1.size());
  maildsar::test::write_file(tmp / "mail.log.3.gz", gzip(half1) + gzip(half2));
  auto plain = scan("postfix", tmp / "mail.log");
  for (auto name : {"mail.log.2.gz", "mail.log.3.gz"}) {
    auto gz = scan("postfix", tmp / name);
    ASSERT_EQ(gz.items.size(), plain.items.size()) << name;
    for (std::size_t i = 0; i < gz.items.size(); ++i) {
      EXPECT_EQ(gz.items[i].locator.queue_id, plain.items[i].locator.queue_id);
      EXPECT_EQ(gz.items[i].locator.lines, plain.items[i].locator.lines);
      EXPECT_EQ(gz.items[i].sha256, plain.items[i].sha256);
      EXPECT_EQ(gz.items[i].locator.path, (tmp / name).string());
    }
    EXPECT_TRUE(gz.errors.empty()) << name;
  }
  // the rotation fingerprint sees through the compression
  auto fp_plain = maildsar::connectors::content_fingerprint((tmp / "mail.log").string());
  auto fp_gz = maildsar::connectors::content_fingerprint((tmp / "mail.log.2.gz").string());
  ASSERT_TRUE(fp_plain.has_value());
  ASSERT_TRUE(fp_gz.has_value());
  EXPECT_EQ(*fp_plain, *fp_gz);
  EXPECT_EQ(*fp_plain, maildsar::core::sha256_hex(text.substr(0, 4096)));
  // a compressed file cannot be resumed from an offset
  CollectSink sink;
  auto st = make("postfix")->scan(entry(tmp / "mail.log.2.gz"), 10, sink);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, maildsar::core::ErrorCode::data);
}

TEST(MaillogConnector, TruncatedGzipKeepsItemsBeforeTheCut) {
  ScratchDir tmp;
  std::string text;
  for (int i = 0; i < 2000; ++i) {
    text += "Nov 14 10:00:00 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[192.0.2." +
            std::to_string(i % 250 + 1) + "]: 554 denied; from=<u" + std::to_string(i) +
            "@example.com> to=<v@example.org>\n";
  }
  std::string gz = gzip(text);
  maildsar::test::write_file(tmp / "mail.log.2.gz", gz.substr(0, gz.size() / 2));
  CollectSink sink;
  auto st = make("postfix")->scan(entry(tmp / "mail.log.2.gz"), 0, sink);
  ASSERT_TRUE(st.has_value());
  EXPECT_GT(sink.items.size(), 10U);
  EXPECT_LT(sink.items.size(), 2000U);
  ASSERT_EQ(sink.errors.size(), 1U);
  EXPECT_NE(sink.errors[0].cause.find("truncated or corrupt"), std::string::npos);
  EXPECT_TRUE(sink.errors[0].position.starts_with("line "));
  EXPECT_EQ(sink.items.front().locator.queue_id, "line-1");
  // fingerprint of a file cut inside the first 4096 bytes: an error, not a crash
  maildsar::test::write_file(tmp / "tiny.gz", gz.substr(0, 30));
  EXPECT_FALSE(maildsar::connectors::content_fingerprint((tmp / "tiny.gz").string()).has_value());
}

TEST(MaillogConnector, BinaryGarbageIsCountedNotFatal) {
  ScratchDir tmp;
  std::string text = "Nov 14 10:00:00 mx postfix/smtpd[1]: connect from a[192.0.2.1]\n";
  text += std::string("\x00\x01\x02\xff\xfe garbage \x00\x00", 16) + "\n";
  text += "\x89PNG\r\n";
  text += std::string(50, '\xff') + "\n";
  text += "Nov 14 10:00:01 mx amavis[2]: M\xfcller <m@example.com> caf\xc3\xa9\n"; // Latin-1 byte
  maildsar::test::write_file(tmp / "mail.log", text);
  auto sink = scan("syslog", tmp / "mail.log");
  ASSERT_EQ(sink.items.size(), 2U);
  const Item *latin = sink.by_queue_id("line-5");
  ASSERT_NE(latin, nullptr);
  EXPECT_TRUE(valid_utf8(latin->texts.at(0).text));
  EXPECT_NE(latin->texts.at(0).text.find("M\xEF\xBF\xBDller"), std::string::npos);
  EXPECT_NE(latin->texts.at(0).text.find("caf\xc3\xa9"), std::string::npos);
  // the garbage lines are one counted error (+ one for the unparsed "PNG" line)
  std::size_t binary_errors = 0;
  for (const auto &e : sink.errors) {
    if (e.cause.find("binary") != std::string::npos) {
      ++binary_errors;
      EXPECT_NE(e.cause.find("2 binary"), std::string::npos) << e.cause;
      EXPECT_EQ(e.position, "line 2");
    }
  }
  EXPECT_EQ(binary_errors, 1U);
}

TEST(MaillogConnector, LongLines) {
  ScratchDir tmp;
  std::string big(1000000, 'x');
  std::string huge(3u << 20, 'y');
  std::string text = "Nov 14 10:00:00 mx amavis[2]: <alice@example.com> " + big + "\n" + huge +
                     "\n" + "Nov 14 10:00:01 mx postfix/smtpd[1]: connect from a[192.0.2.1]\n";
  maildsar::test::write_file(tmp / "mail.log", text);
  auto sink = scan("syslog", tmp / "mail.log");
  ASSERT_EQ(sink.items.size(), 2U);
  EXPECT_EQ(sink.items[0].locator.lines, std::vector<std::uint64_t>{1});
  EXPECT_GT(sink.items[0].texts.at(0).text.size(), 1000000U);
  EXPECT_EQ(sink.items[1].locator.lines, std::vector<std::uint64_t>{3});
  ASSERT_EQ(sink.errors.size(), 1U);
  EXPECT_EQ(sink.errors[0].position, "line 2");
  EXPECT_NE(sink.errors[0].cause.find("longer than"), std::string::npos);
}

TEST(MaillogConnector, YearInferredAcrossNewYear) {
  ScratchDir tmp;
  auto path = tmp / "mail.log.1";
  maildsar::test::write_file(
      path, "Dec 31 23:59:50 mx postfix/smtpd[1]: connect from a[192.0.2.1]\n"
            "Jan  1 00:00:10 mx postfix/smtpd[1]: connect from a[192.0.2.2]\n");
  set_mtime(path, 1704153600); // 2024-01-02T00:00:00Z
  auto sink = scan("postfix", path);
  ASSERT_EQ(sink.items.size(), 2U);
  ASSERT_TRUE(sink.items[0].date.has_value());
  ASSERT_TRUE(sink.items[1].date.has_value());
  EXPECT_EQ(*sink.items[0].date, 1704067190); // 2023-12-31T23:59:50Z
  EXPECT_EQ(*sink.items[1].date, 1704067210); // 2024-01-01T00:00:10Z
  // same lines, file last written in the summer: both in that year (Dec is later -> year before)
  set_mtime(path, 1719792000); // 2024-07-01
  auto summer = scan("postfix", path);
  EXPECT_EQ(*summer.items[0].date, 1704067190);
  EXPECT_EQ(*summer.items[1].date, 1704067210);
}

TEST(MaillogConnector, IsoTimestamps) {
  ScratchDir tmp;
  auto path = tmp / "mail.log";
  maildsar::test::write_file(
      path, "2023-11-14T10:00:00.123456+01:00 mx postfix/smtpd[1]: connect from a[192.0.2.1]\n"
            "2023-11-14T10:00:00Z mx postfix/smtpd[1]: connect from a[192.0.2.2]\n"
            "2024-01-05T10:00:00+0100 mx postfix/smtpd[1]: connect from a[192.0.2.3]\n"
            "2021-02-19T14:32:14.936091+01:00 smtp01 postfix/smtpd[58176] E89FA2DEDA: "
            "client=srv05.source.com[10.11.12.13]\n"
            "2023-11-14 10:00:00 1pXXXX-0005Vh-2Q <= a@b.example\n");
  auto sink = scan("syslog", path);
  ASSERT_EQ(sink.items.size(), 5U);
  EXPECT_EQ(sink.items[0].date.value_or(0), 1699952400);
  EXPECT_EQ(sink.items[1].date.value_or(0), 1699956000);
  EXPECT_EQ(sink.items[2].date.value_or(0), 1704445200);
  const Item *milter = sink.by_queue_id("E89FA2DEDA"); // no colon after [pid]
  ASSERT_NE(milter, nullptr);
  EXPECT_EQ(milter->date.value_or(0), 1613741534);
  EXPECT_TRUE(has_ip(*milter, Role::log_client, "10.11.12.13"));
  const Item *exim = sink.by_queue_id("1pXXXX-0005Vh-2Q");
  ASSERT_NE(exim, nullptr);
  EXPECT_EQ(exim->date.value_or(0), 1699956000); // exim native time, no zone: UTC
}

TEST(MaillogConnector, ResumeFromOffset) {
  ScratchDir tmp;
  auto path = tmp / "mail.log";
  std::string part1 = "Nov 14 10:00:00 mx postfix/smtpd[1]: connect from a[192.0.2.1]\n"
                      "Nov 14 10:00:01 mx postfix/qmgr[2]: ABCDE12345: from=<a@example.com>\n";
  std::string part2 = "Nov 14 10:00:02 mx postfix/smtpd[1]: connect from b[192.0.2.2]\n"
                      "Nov 14 10:00:03 mx postfix/qmgr[2]: ABCDE12345: removed\n"
                      "Nov 14 10:00:04 mx postfix/qmgr[2]: FEDCB54321: from=<c@example.com>\n";
  maildsar::test::write_file(path, part1 + part2);
  auto c = make("postfix");
  EXPECT_TRUE(c->supports_append());
  CollectSink sink;
  ASSERT_TRUE(c->scan(entry(path), part1.size(), sink).has_value());
  ASSERT_EQ(sink.items.size(), 3U);
  EXPECT_EQ(sink.items[0].locator.queue_id, "line-3");
  // the transaction that began before the offset is split: only its new line
  const Item *split = sink.by_queue_id("ABCDE12345");
  ASSERT_NE(split, nullptr);
  EXPECT_EQ(split->locator.lines, std::vector<std::uint64_t>{4});
  EXPECT_EQ(sink.by_queue_id("FEDCB54321")->locator.lines, std::vector<std::uint64_t>{5});
  // an offset inside a line, or past the end, is refused with ErrorCode::data
  for (std::uint64_t bad : {std::uint64_t{5}, std::uint64_t{part1.size() + part2.size() + 10}}) {
    CollectSink s2;
    auto st = c->scan(entry(path), bad, s2);
    ASSERT_FALSE(st.has_value()) << bad;
    EXPECT_EQ(st.error().code, maildsar::core::ErrorCode::data);
    EXPECT_TRUE(s2.items.empty());
  }
}

TEST(MaillogConnector, MissingFileIsAnError) {
  CollectSink sink;
  FileEntry e;
  e.path = "/nonexistent/mail.log";
  auto st = make("postfix")->scan(e, 0, sink);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, maildsar::core::ErrorCode::no_input);
}

TEST(MaillogConnector, ListFilesMatchesRotationAndSkipsSymlinks) {
  ScratchDir tmp;
  maildsar::test::write_file(tmp / "logs/mail.log", k_interleaved);
  maildsar::test::write_file(tmp / "logs/mail.log.1", k_interleaved);
  maildsar::test::write_file(tmp / "logs/mail.log.2.gz", gzip(k_interleaved));
  maildsar::test::write_file(tmp / "logs/other.log", k_interleaved);
  fs::create_symlink(tmp / "logs/other.log", tmp / "logs/mail.log.9");
  auto c = make("postfix", (tmp / "logs/mail.log*").string());
  CollectSink errors;
  auto files = c->list_files(errors);
  ASSERT_TRUE(files.has_value()) << files.error().message;
  std::vector<std::string> names;
  for (const auto &f : *files) {
    names.push_back(fs::path(f.path).filename().string());
    EXPECT_GT(f.stat.size, 0U);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"mail.log", "mail.log.1", "mail.log.2.gz"}));
  ASSERT_EQ(errors.errors.size(), 1U);
  EXPECT_EQ(fs::path(errors.errors[0].path).filename(), "mail.log.9");
  EXPECT_NE(errors.errors[0].cause.find("symbolic link"), std::string::npos);
}

// Issue 13 item 12: one queue id with more lines than limits.max_transaction_lines is indexed as
// parts, each with its own lines, none left out, each part saying it is one.
TEST(MaillogConnector, LongTransactionIsSplitIntoPartsNotCut) {
  const maildsar::connectors::ItemLimits old = maildsar::connectors::item_limits();
  maildsar::connectors::ItemLimits small = old;
  small.max_transaction_lines = 100;
  maildsar::connectors::set_item_limits(small);
  ScratchDir tmp;
  std::string text = "Nov 14 10:00:00 mx postfix/qmgr[1]: 4AB12C3D4E: from=<carol@example.com>, size=1, nrcpt=1 (queue active)\n";
  for (int i = 0; i < 249; ++i) {
    text += "Nov 14 10:00:01 mx postfix/smtp[2]: 4AB12C3D4E: to=<r" + std::to_string(i) +
            "@example.net>, relay=none, delay=1, status=deferred (x)\n";
  }
  maildsar::test::write_file(tmp / "mail.log", text);
  auto sink = scan("postfix", tmp / "mail.log");
  maildsar::connectors::set_item_limits(old);
  ASSERT_EQ(sink.items.size(), 3U);
  std::vector<std::uint64_t> all;
  for (const Item &item : sink.items) {
    EXPECT_EQ(item.locator.queue_id, "4AB12C3D4E");
    EXPECT_LE(item.locator.lines.size(), 100U);
    all.insert(all.end(), item.locator.lines.begin(), item.locator.lines.end());
    ASSERT_EQ(item.bounded.size(), 1U);
    EXPECT_NE(item.bounded[0].find("split at limits.max_transaction_lines"), std::string::npos);
    EXPECT_TRUE(item.truncated.empty()); // split, not cut
  }
  EXPECT_EQ(all.size(), 250U); // every line in exactly one part
  EXPECT_NE(sink.items[2].bounded[0].find("part 3"), std::string::npos);
  EXPECT_TRUE(std::ranges::any_of(sink.items[2].addresses, [](const auto &a) { return a.addr == "r248@example.net"; }));
  EXPECT_TRUE(sink.errors.empty());
}

// Regression: a transaction split at max_transaction_lines leaves its (empty) next part open;
// when the open transactions then outgrow their budget (8 x max_transaction_kib) every open
// one was emitted, the empty one too: an item without lines, whose locator read lines.front()
// (SIGSEGV in `index` with the smallest configurable limits and a 600 KB log, or with the
// defaults and a 33 MB one). The empty part is not emitted; the next line of that queue id is
// the next part, numbered on.
TEST(MaillogConnector, SplitTransactionSurvivesTheOpenBudgetSplit) {
  const maildsar::connectors::ItemLimits old = maildsar::connectors::item_limits();
  maildsar::connectors::ItemLimits small = old;
  small.max_transaction_lines = 100;
  small.max_transaction_bytes = 64 * 1024; // budget of all open transactions: 512 KiB
  maildsar::connectors::set_item_limits(small);
  ScratchDir tmp;
  std::string text = "Nov 14 10:00:00 mx postfix/qmgr[1]: 4AB12C3D4E: from=<big@example.com>, "
                     "size=1, nrcpt=99 (queue active)\n";
  for (int i = 1; i < 100; ++i) { // 100 lines: part 1 is full, part 2 is open and empty
    text += fmt::format("Nov 14 10:00:01 mx postfix/smtp[2]: 4AB12C3D4E: to=<r{}@example.net>, "
                        "relay=none, delay=1, status=deferred (x)\n",
                        i);
  }
  for (int i = 0; i < 3000; ++i) { // ~650 KB of transactions that never close
    text += fmt::format("Nov 14 10:00:02 mx postfix/cleanup[3]: {:010X}: message-id=<m{}@"
                        "example.org> padding-padding-padding-padding-padding-padding-padding-"
                        "padding-padding-padding-padding-padding-padding-padding-padding\n",
                        0x100000 + i, i);
  }
  text += "Nov 14 10:00:03 mx postfix/smtp[2]: 4AB12C3D4E: to=<late@example.net>, relay=none, "
          "delay=3, status=sent (250 ok)\n";
  const std::uint64_t late_line = 100 + 3000 + 1;
  maildsar::test::write_file(tmp / "mail.log", text);
  auto sink = scan("postfix", tmp / "mail.log");
  maildsar::connectors::set_item_limits(old);

  std::vector<const Item *> parts;
  std::size_t lines = 0;
  for (const Item &item : sink.items) {
    ASSERT_FALSE(item.locator.lines.empty()) << item.locator.queue_id;
    lines += item.locator.lines.size();
    if (item.locator.queue_id == "4AB12C3D4E") {
      parts.push_back(&item);
    }
  }
  EXPECT_EQ(lines, late_line); // every line in exactly one item
  ASSERT_EQ(parts.size(), 2U);
  EXPECT_EQ(parts[0]->locator.lines.size(), 100U);
  EXPECT_NE(parts[0]->bounded.at(0).find("part 1 (lines 1-100)"), std::string::npos)
      << parts[0]->bounded.at(0);
  EXPECT_EQ(parts[1]->locator.lines, std::vector<std::uint64_t>{late_line});
  EXPECT_NE(parts[1]->bounded.at(0).find("part 2"), std::string::npos) << parts[1]->bounded.at(0);
  EXPECT_TRUE(std::ranges::any_of(parts[1]->addresses,
                                  [](const auto &a) { return a.addr == "late@example.net"; }));
  EXPECT_TRUE(sink.errors.empty());
}

// NoCaseSearch finds what a plain scan finds, at every offset, whatever the case of the text,
// for needles of one to forty bytes (the first and last bytes letters or not), in texts shorter
// and longer than the sixteen positions compared at once, with the match at the very end.
TEST(MaillogText, NoCaseSearchFindsWhatAPlainScanFinds) {
  using maildsar::connectors::maillog::NoCaseSearch;
  std::mt19937 rng(20261204);
  const std::string alphabet = "aAbB.@-_1 x";
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  auto plain = [&](std::string_view text, std::string_view needle, std::size_t from) {
    for (std::size_t at = from; at + needle.size() <= text.size(); ++at) {
      bool same = true;
      for (std::size_t i = 0; same && i < needle.size(); ++i) {
        same = lower(text[at + i]) == needle[i];
      }
      if (same) {
        return at;
      }
    }
    return std::string_view::npos;
  };
  for (int round = 0; round < 3000; ++round) {
    std::string needle(1 + rng() % 40, 'a');
    for (char &c : needle) {
      c = lower(alphabet[rng() % alphabet.size()]);
    }
    std::string text(rng() % 200, ' ');
    for (char &c : text) {
      c = alphabet[rng() % alphabet.size()];
    }
    if (rng() % 2 == 0 && text.size() >= needle.size()) { // planted, in a random case
      const std::size_t at = rng() % (text.size() - needle.size() + 1);
      for (std::size_t i = 0; i < needle.size(); ++i) {
        text[at + i] = rng() % 2 == 0 ? needle[i] : static_cast<char>(std::toupper(static_cast<unsigned char>(needle[i])));
      }
    }
    const NoCaseSearch search(needle);
    for (std::size_t from = 0; from <= text.size() + 1; from += 1 + rng() % 7) {
      ASSERT_EQ(search.find(text, from), plain(text, needle, from)) << "needle " << needle << " text " << text << " from " << from;
    }
  }
  EXPECT_EQ(NoCaseSearch("smith").find(std::string(100, 'x') + "SMITH", 0), 100U);
  EXPECT_EQ(NoCaseSearch("smith").find(std::string(100, 'x') + "SMIT", 0), std::string_view::npos);
}

// The needles of an address query (LogSink::needles, connectors::holds_needle): a local part
// as a whole word, ASCII case-insensitively, in every form an address holds it; never inside a
// longer local part; any non-ASCII byte counts.
TEST(MaillogText, ANeedleIsHeldAsAWholeWord) {
  const std::vector<std::string> needles{"alice.smith"};
  for (const char *yes : {"to=<alice.smith@example.com>", "from=<ALICE.Smith@Example.com>",
                          "sasl_username=alice.smith@example.com", "to=<prvs=0123456789=alice.smith@example.com>",
                          "from=<SRS0=HHH=TT=example.org=alice.smith@forwarder.example>",
                          "to=<alice.smith+news@example.com>", "to=<\"alice.smith\"@example.com>",
                          "alice.smith", "user alice.smith", "to=<malice.smith@x>, to=<alice.smith@x>",
                          "to=<alice.smith.jr@example.com>", "to=<x_alice.smith@example.com>",
                          "subject=caf\xC3\xA9"}) {
    EXPECT_TRUE(maildsar::connectors::holds_needle(yes, needles)) << yes;
  }
  for (const char *no : {"to=<malice.smith@example.com>", "to=<alice.smithson@example.com>",
                         "to=<alice.smith784@example.org>", "to=<2alice.smith@example.com>", "alice smith",
                         "to=<bob@example.com>", ""}) {
    EXPECT_FALSE(maildsar::connectors::holds_needle(no, needles)) << no;
  }
  EXPECT_TRUE(maildsar::connectors::holds_needle("anything", std::vector<std::string>{""}));
  EXPECT_TRUE(maildsar::connectors::holds_needle("to=<bob@x>", std::vector<std::string>{"alice", "bob"}));
  EXPECT_FALSE(maildsar::connectors::holds_needle("to=<bob@x>", std::vector<std::string>{}));
}
