// SPDX-License-Identifier: GPL-3.0-or-later
// The delivery-log differential (issue 12): whatever the index stores for logs, `find --json`
// must return exactly the log transactions that a direct scan of the files with the connectors
// produces — one item per transaction (queue id / Exim id / Exchange message id / Dovecot
// session) with its file, its line numbers and the roles in which the identity appears.
//
// The log set is generated (deterministic): a rotated Postfix + Dovecot + amavis syslog
// (mail.log, mail.log.1, mail.log.2.gz, mail.log.3.gz) with interleaved multi-line
// transactions, SASL users, IPv4 and IPv6 clients, NOQUEUE rejects, Dovecot sessions and passdb
// lines, lines that stand alone; an Exim main log and reject log (continuation lines); a
// Sendmail log; an Exchange message-tracking log whose subjects hold phone numbers. The ground
// truth reads the same configuration, scans every listed file with the maillog connector and
// normalises each item's identities as the indexer does (index::Normalizer::extract); nothing
// of the index is used. For >= 20 identities of every kind found (addresses, IPs, phones) the
// items of `find` and of the scan must be equal.
#include "connectors/connector.hpp"
#include "connectors/maillog.hpp"
#include "core/config.hpp"
#include "indexer/identity.hpp"
#include "tests/e2e/e2e_support.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <sys/time.h>
#include <vector>

using maildsar::test::json_lines;
using maildsar::test::RunResult;
using maildsar::test::ScratchDir;
using maildsar::test::write_file;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

/** A deterministic generator of log lines (std::mt19937 is specified; no distributions). */
class LogGen {
public:
  explicit LogGen(std::uint32_t seed) : m_rng(seed) {
    static constexpr std::array<const char *, 12> k_first{
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
        "mallory", "olivia"};
    static constexpr std::array<const char *, 6> k_last{"smith", "jones", "white",
                                                        "brown", "nowak", "rossi"};
    for (int i = 0; i < 40; ++i) {
      m_local.push_back(fmt::format("{}.{}@example.{}", k_first[pick(k_first.size())],
                                    k_last[pick(k_last.size())], i % 2 == 0 ? "com" : "org"));
      m_remote.push_back(fmt::format("{}{}@partner{}.example", k_first[pick(k_first.size())],
                                     pick(100), pick(4)));
    }
    for (int i = 0; i < 24; ++i) {
      m_ips.push_back(i % 6 == 5 ? fmt::format("2001:db8::{:x}", 0x10 + pick(200))
                                 : fmt::format("{}.{}", i % 2 == 0 ? "192.0.2" : "198.51.100",
                                               1 + pick(254)));
    }
  }

  std::size_t pick(std::size_t n) { return static_cast<std::size_t>(m_rng() % n); }
  const std::string &local() { return m_local[pick(m_local.size())]; }
  const std::string &remote() { return m_remote[pick(m_remote.size())]; }
  const std::string &ip() { return m_ips[pick(m_ips.size())]; }
  std::string hex_id(std::size_t n) {
    static constexpr std::string_view k_hex = "0123456789ABCDEF";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
      s += k_hex[pick(k_hex.size())];
    }
    return s;
  }
  std::string alnum_id(std::size_t n) {
    static constexpr std::string_view k_chars =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
      s += k_chars[pick(k_chars.size())];
    }
    return s;
  }

private:
  std::mt19937 m_rng;
  std::vector<std::string> m_local;
  std::vector<std::string> m_remote;
  std::vector<std::string> m_ips;
};

/** Transactions as lists of lines, interleaved into one log in rounds. */
std::string interleave(LogGen &g, std::vector<std::vector<std::string>> txns) {
  std::string out;
  std::vector<std::size_t> next(txns.size(), 0);
  std::size_t open = txns.size();
  while (open > 0) {
    // a window of up to 6 transactions in flight: the earliest unfinished ones
    std::vector<std::size_t> window;
    for (std::size_t i = 0; i < txns.size() && window.size() < 6; ++i) {
      if (next[i] < txns[i].size()) {
        window.push_back(i);
      }
    }
    std::size_t t = window[g.pick(window.size())];
    out += txns[t][next[t]++];
    out += '\n';
    if (next[t] == txns[t].size()) {
      --open;
    }
  }
  return out;
}

/** Postfix + Dovecot + amavis syslog for one day (`day` 1..28 of Nov 2023). */
std::string syslog_day(LogGen &g, int day, int transactions) {
  std::vector<std::vector<std::string>> txns;
  auto ts = [&](int second) {
    return fmt::format("Nov {:2} {:02}:{:02}:{:02} mx1", day, second / 3600 % 24,
                       second / 60 % 60, second % 60);
  };
  for (int n = 0; n < transactions; ++n) {
    const int at = n * 30;
    std::vector<std::string> t;
    const std::string qid = g.hex_id(10);
    const std::string client = g.ip();
    switch (g.pick(6)) {
    case 0:
    case 1: { // inbound
      const std::string from = g.remote();
      const std::string to = g.local();
      t.push_back(fmt::format("{} postfix/smtpd[{}]: connect from mail.partner.example[{}]",
                              ts(at), 100 + n, client));
      t.push_back(fmt::format("{} postfix/smtpd[{}]: {}: client=mail.partner.example[{}]",
                              ts(at), 100 + n, qid, client));
      t.push_back(fmt::format("{} postfix/cleanup[{}]: {}: message-id=<{}@partner.example>",
                              ts(at + 1), 200 + n, qid, g.alnum_id(12)));
      t.push_back(fmt::format("{} postfix/qmgr[900]: {}: from=<{}>, size={}, nrcpt=1 (queue "
                              "active)",
                              ts(at + 1), qid, from, 1000 + g.pick(9000)));
      t.push_back(fmt::format("{} amavis[{}]: ({}-01) Passed CLEAN {{RelayedInbound}}, [{}]:{} "
                              "[{}] <{}> -> <{}>, Queue-ID: {}",
                              ts(at + 2), 300 + n, 300 + n, client, 40000 + n, client, from, to,
                              qid));
      t.push_back(fmt::format("{} postfix/lmtp[{}]: {}: to=<{}>, relay=mail.example.com[private/"
                              "dovecot-lmtp], delay=1, status=sent (250 2.0.0 Ok)",
                              ts(at + 3), 400 + n, qid, to));
      const std::string session = g.alnum_id(10);
      t.push_back(fmt::format("{} dovecot: lmtp({})<{}><{}>: msgid=<x{}@partner.example>: saved "
                              "mail to INBOX",
                              ts(at + 3), to, 500 + n, session, n));
      t.push_back(fmt::format("{} postfix/qmgr[900]: {}: removed", ts(at + 4), qid));
      t.push_back(fmt::format("{} postfix/smtpd[{}]: disconnect from mail.partner.example[{}] "
                              "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
                              ts(at + 4), 100 + n, client));
      break;
    }
    case 2: { // authenticated submission, two recipients, one deferred
      const std::string user = g.local();
      t.push_back(fmt::format("{} postfix/submission/smtpd[{}]: {}: client=unknown[{}], "
                              "sasl_method=PLAIN, sasl_username={}",
                              ts(at), 100 + n, qid, client, user));
      t.push_back(fmt::format("{} postfix/qmgr[900]: {}: from=<{}>, size=2000, nrcpt=2 (queue "
                              "active)",
                              ts(at + 1), qid, user));
      t.push_back(fmt::format("{} postfix/smtp[{}]: {}: to=<{}>, relay=mx.partner.example[{}]:25, "
                              "delay=2, status=sent (250 ok)",
                              ts(at + 2), 600 + n, qid, g.remote(), g.ip()));
      t.push_back(fmt::format("{} postfix/smtp[{}]: {}: to=<{}>, relay=none, delay=3, "
                              "status=deferred (connection timed out)",
                              ts(at + 3), 600 + n, qid, g.remote()));
      break; // never removed: open at the end of the file
    }
    case 3: // a reject: no queue id, a line of its own
      t.push_back(fmt::format("{} postfix/smtpd[{}]: NOQUEUE: reject: RCPT from unknown[{}]: 554 "
                              "5.7.1 <{}>: Relay access denied; from=<{}> to=<{}> proto=ESMTP "
                              "helo=<spam.example>",
                              ts(at), 100 + n, client, g.remote(), g.remote(), g.remote()));
      break;
    case 4: { // an IMAP session
      const std::string user = g.local();
      const std::string session = g.alnum_id(12);
      t.push_back(fmt::format("{} dovecot: imap-login: Login: user=<{}>, method=PLAIN, rip={}, "
                              "lip=192.0.2.1, mpid={}, TLS, session=<{}>",
                              ts(at), user, client, 700 + n, session));
      t.push_back(fmt::format("{} dovecot: imap({})<{}><{}>: Disconnected: Logged out in=1 "
                              "out=2",
                              ts(at + 20), user, 700 + n, session));
      break;
    }
    default: // a failed login through the passdb (user name, IP)
      t.push_back(fmt::format("{} dovecot: auth-worker({}): pam({},{},<{}>): unknown user",
                              ts(at), 800 + n, g.local(), client, g.alnum_id(8)));
      break;
    }
    txns.push_back(std::move(t));
  }
  return interleave(g, std::move(txns));
}

std::string exim_mainlog(LogGen &g, int transactions) {
  std::vector<std::vector<std::string>> txns;
  for (int n = 0; n < transactions; ++n) {
    const std::string id = fmt::format("1r{}-{}-{}", g.alnum_id(4), g.alnum_id(6), g.alnum_id(2));
    const std::string ts = fmt::format("2023-11-20 {:02}:{:02}:{:02}", n / 60 % 24, n % 60, n % 7);
    std::vector<std::string> t;
    const std::string from = n % 3 == 0 ? g.local() : g.remote();
    if (n % 3 == 0) {
      t.push_back(fmt::format("{} {} <= {} H=(client) [{}]:587 P=esmtpsa A=plain:{} S=1234 "
                              "id={}@example.com",
                              ts, id, from, g.ip(), from, g.alnum_id(10)));
    } else {
      t.push_back(fmt::format("{} {} <= {} H=mail.partner.example [{}]:25 P=esmtp S=4321 "
                              "id={}@partner.example",
                              ts, id, from, g.ip(), g.alnum_id(10)));
    }
    t.push_back(fmt::format("{} {} => {} R=local_user T=local_delivery", ts, id, g.local()));
    if (n % 4 == 1) {
      t.push_back(fmt::format("{} {} ** {}: Unrouteable address", ts, id, g.remote()));
    }
    t.push_back(fmt::format("{} {} Completed", ts, id));
    txns.push_back(std::move(t));
  }
  return interleave(g, std::move(txns));
}

std::string exim_rejectlog(LogGen &g, int entries) {
  std::string out;
  for (int n = 0; n < entries; ++n) {
    out += fmt::format("2023-11-20 12:{:02}:00 H=(spam.example) [{}] F=<{}> rejected RCPT <{}>: "
                       "relay not permitted\n",
                       n % 60, g.ip(), g.remote(), g.local());
    if (n % 2 == 0) {
      out += fmt::format("Envelope-from: <{}>\nEnvelope-to: <{}>\n", g.remote(), g.local());
    }
  }
  return out;
}

std::string sendmail_log(LogGen &g, int transactions) {
  std::vector<std::vector<std::string>> txns;
  for (int n = 0; n < transactions; ++n) {
    const std::string qid = fmt::format("xAK{}{:06}", g.alnum_id(5), n);
    const std::string ts = fmt::format("Nov 21 10:{:02}:{:02} mx3", n % 60, n % 50);
    std::vector<std::string> t;
    t.push_back(fmt::format("{} sendmail[{}]: {}: from=<{}>, size=900, class=0, nrcpts=2, "
                            "msgid=<{}@partner.example>, proto=ESMTP, daemon=MTA, "
                            "relay=mail.partner.example [{}]",
                            ts, 100 + n, qid, g.remote(), g.alnum_id(9), g.ip()));
    t.push_back(fmt::format("{} sendmail[{}]: {}: to=<{}>,<{}>, ctladdr=<{}> (1000/1000), "
                            "delay=00:00:01, mailer=local, pri=30000, stat=Sent",
                            ts, 200 + n, qid, g.local(), g.local(), g.local()));
    txns.push_back(std::move(t));
    if (n % 5 == 4) {
      txns.push_back({fmt::format("{} sm-mta[{}]: {}: ruleset=check_rcpt, arg1=<{}>, "
                                  "relay=unknown [{}], reject=550 5.7.1 Relaying denied",
                                  ts, 300 + n, fmt::format("xAK{}{:06}", g.alnum_id(5), 900 + n),
                                  g.local(), g.ip())});
    }
  }
  return interleave(g, std::move(txns));
}

std::string exchange_log(LogGen &g, int messages) {
  static constexpr std::array<const char *, 4> k_phones{"+44 20 7946 0123", "+44 20 7946 0456",
                                                        "+49 30 901820", "+33 1 09 75 83 51"};
  std::string out = "#Software: Microsoft Exchange Server\n#Version: 15.01.2507.027\n"
                    "#Log-type: Message Tracking Log\n"
                    "#Fields: date-time,client-ip,client-hostname,server-ip,server-hostname,"
                    "source-context,connector-id,source,event-id,internal-message-id,message-id,"
                    "network-message-id,recipient-address,recipient-status,total-bytes,"
                    "recipient-count,related-recipient-address,reference,message-subject,"
                    "sender-address,return-path,message-info,directionality,tenant-id,"
                    "original-client-ip,original-server-ip,custom-data\n";
  std::vector<std::vector<std::string>> txns;
  for (int n = 0; n < messages; ++n) {
    const std::string mid = fmt::format("<{}@example.com>", g.alnum_id(14));
    const std::string from = g.remote();
    const std::string to1 = g.local();
    const std::string to2 = g.local();
    const std::string subject = n % 3 == 0 ? fmt::format("Please call {}", k_phones[g.pick(4)])
                                           : fmt::format("Report {}", n);
    const std::string ts = fmt::format("2023-11-22T{:02}:{:02}:00.000Z", n / 60 % 24, n % 60);
    std::vector<std::string> t;
    t.push_back(fmt::format("{},{},mail.partner.example,192.0.2.1,EX01,,EX01\\Default,SMTP,"
                            "RECEIVE,{},{},{},{};{},,2000,2,,,\"{}\",{},{},,Incoming,,,,",
                            ts, g.ip(), 5000 + n, mid, g.alnum_id(8), to1, to2, subject, from,
                            from));
    t.push_back(fmt::format("{},,,192.0.2.1,EX01,,,STOREDRIVER,DELIVER,{},{},{},{},,2000,1,,,"
                            "\"{}\",{},{},,Incoming,,,,",
                            ts, 5000 + n, mid, g.alnum_id(8), to1, subject, from, from));
    txns.push_back(std::move(t));
  }
  return out + interleave(g, std::move(txns));
}

void write_gzip(const fs::path &path, const std::string &data) {
  gzFile f = gzopen(path.c_str(), "wb9");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, data.data(), static_cast<unsigned>(data.size())),
            static_cast<int>(data.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

/** One item of a `find` answer or of the ground truth, as the comparison sees it. */
struct Hit {
  std::string path;
  std::string queue_id;
  std::vector<std::uint64_t> lines;
  std::set<std::string> roles;
  auto operator<=>(const Hit &) const = default;
};

std::string describe(const std::vector<Hit> &hits) {
  std::string s;
  for (const Hit &h : hits) {
    s += fmt::format("  {} {} lines {} roles {}\n", fs::path(h.path).filename().string(),
                     h.queue_id, fmt::join(h.lines, ","), fmt::join(h.roles, ","));
  }
  return s;
}

class LogDifferential : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    s_dir = new ScratchDir();
    const fs::path logs = s_dir->path() / "logs";
    fs::create_directories(logs / "exim");
    fs::create_directories(logs / "sendmail");
    fs::create_directories(logs / "exchange");
    LogGen g(20261202);
    // rotated syslog, oldest in .3.gz; mtimes in Nov 2023 date the year-less lines
    write_gzip(logs / "mail.log.3.gz", syslog_day(g, 11, 60));
    write_gzip(logs / "mail.log.2.gz", syslog_day(g, 12, 60));
    write_file(logs / "mail.log.1", syslog_day(g, 13, 60));
    write_file(logs / "mail.log", syslog_day(g, 14, 80));
    write_file(logs / "exim/mainlog", exim_mainlog(g, 40));
    write_file(logs / "exim/rejectlog", exim_rejectlog(g, 10));
    write_file(logs / "sendmail/maillog", sendmail_log(g, 30));
    write_file(logs / "exchange/MSGTRK2023112201-1.LOG", exchange_log(g, 30));
    // RFC 3164 lines have no year: they take the file's mtime's (2023-11-21 here)
    for (const auto &entry : fs::recursive_directory_iterator(logs)) {
      if (entry.is_regular_file()) {
        std::array<timeval, 2> times{timeval{1700600000, 0}, timeval{1700600000, 0}};
        ASSERT_EQ(::utimes(entry.path().c_str(), times.data()), 0);
      }
    }
    s_config = s_dir->path() / "config.json";
    write_file(s_config, fmt::format(R"({{"state_dir": "{0}/state", "sources": [
      {{"name": "mx", "type": "maillog", "format": "auto", "path": "{1}/mail.log*"}},
      {{"name": "exim", "type": "maillog", "format": "exim", "path": "{1}/exim/*"}},
      {{"name": "sendmail", "type": "maillog", "format": "sendmail", "path": "{1}/sendmail/*"}},
      {{"name": "exchange", "type": "maillog", "format": "exchange", "path": "{1}/exchange/*.LOG"}}]}})",
                                     s_dir->path().string(), logs.string()));
  }
  static void TearDownTestSuite() {
    delete s_dir;
    s_dir = nullptr;
  }

  /** identity (kind, normalised value) -> the items that hold it, from a direct scan. */
  static std::map<std::pair<std::string, std::string>, std::vector<Hit>> ground_truth() {
    using namespace maildsar;
    auto config = core::load_config(s_config.string());
    EXPECT_TRUE(config.has_value()) << (config ? "" : config.error().message);
    std::map<std::pair<std::string, std::string>, std::vector<Hit>> truth;
    if (!config) {
      return truth;
    }
    index::Normalizer norm(index::NormalizeOptions{config->identity.subaddress_separators,
                                                   config->identity.phone_region});
    for (const core::SourceConfig &source : config->sources) {
      auto connector = connectors::make_maillog_connector(source);
      EXPECT_TRUE(connector.has_value());
      connectors::ItemCollector sink;
      auto files = (*connector)->list_files(sink);
      EXPECT_TRUE(files.has_value());
      for (const connectors::FileEntry &file : *files) {
        EXPECT_TRUE((*connector)->scan(file, 0, sink).has_value()) << file.path;
      }
      for (const connectors::Item &item : sink.items) {
        std::map<std::pair<std::string, std::string>, std::set<std::string>> roles;
        for (const index::Identity &id : norm.extract(item)) {
          if (id.kind == index::IdentityKind::name) {
            continue;
          }
          roles[{std::string(index::to_string(id.kind)), id.value}].insert(
              std::string(connectors::to_string(id.role)));
        }
        for (auto &[key, r] : roles) {
          truth[key].push_back(Hit{item.locator.path, item.locator.queue_id, item.locator.lines,
                                   std::move(r)});
        }
      }
    }
    for (auto &[key, hits] : truth) {
      std::sort(hits.begin(), hits.end());
    }
    return truth;
  }

  static std::vector<Hit> find(const std::string &kind, const std::string &value) {
    RunResult r = maildsar::test::ds(s_config, {"find", "--" + kind, value});
    EXPECT_EQ(r.exit_code, 0) << kind << " " << value << ": " << r.err;
    std::vector<Hit> hits;
    for (const json &j : json_lines(r.out)) {
      EXPECT_EQ(j.at("store"), "maillog") << j.dump();
      Hit h{j.at("path"), j.at("queue_id"), j.at("lines").get<std::vector<std::uint64_t>>(), {}};
      for (const json &m : j.at("matched")) {
        if (m.at("kind") == kind) {
          for (const json &role : m.at("roles")) {
            h.roles.insert(role.get<std::string>());
          }
        }
      }
      hits.push_back(std::move(h));
    }
    std::sort(hits.begin(), hits.end());
    return hits;
  }

  static inline ScratchDir *s_dir = nullptr;
  static inline fs::path s_config;
};

TEST_F(LogDifferential, FindReturnsExactlyTheTransactionsOfADirectScan) {
  auto idx = maildsar::test::index_json(s_config);
  ASSERT_EQ(idx.at("errors"), 0) << idx.dump();

  auto truth = ground_truth();
  // every kind and every format is in the set, with multi-line transactions and .gz files
  std::map<std::string, std::vector<std::string>> by_kind;
  for (const auto &[key, hits] : truth) {
    by_kind[key.first].push_back(key.second);
  }
  ASSERT_GE(by_kind["email"].size(), 40U);
  ASSERT_GE(by_kind["ip"].size(), 15U);
  ASSERT_GE(by_kind["phone"].size(), 3U); // from the Exchange subjects
  std::set<std::string> queue_shapes; // file kinds the chosen identities reach
  std::size_t multi_line = 0;
  std::size_t gz = 0;

  // >= 20 identities of each kind where there are that many (phones: all), spread over the
  // sorted values; plus the SASL users (log-user role) and an IPv6 client explicitly
  std::set<std::pair<std::string, std::string>> chosen;
  for (auto &[kind, values] : by_kind) {
    const std::size_t want = std::min<std::size_t>(values.size(), 24);
    for (std::size_t i = 0; i < want; ++i) {
      chosen.insert({kind, values[i * values.size() / want]});
    }
  }
  for (const auto &[key, hits] : truth) {
    for (const Hit &h : hits) {
      if ((h.roles.contains("log-user") && key.first == "email" && chosen.size() < 80) ||
          (key.first == "ip" && key.second.find(':') != std::string::npos)) {
        chosen.insert(key);
      }
    }
  }
  ASSERT_GE(chosen.size(), 50U);

  for (const auto &key : chosen) {
    const std::vector<Hit> &expected = truth.at(key);
    const std::vector<Hit> got = find(key.first, key.second);
    EXPECT_EQ(got, expected) << key.first << " " << key.second << "\nfind:\n"
                             << describe(got) << "direct scan:\n"
                             << describe(expected);
    for (const Hit &h : expected) {
      queue_shapes.insert(fs::path(h.path).parent_path().filename().string() + "/" +
                          fs::path(h.path).filename().string());
      multi_line += h.lines.size() > 1 ? 1U : 0U;
      gz += h.path.ends_with(".gz") ? 1U : 0U;
    }
  }
  // the comparison reached every file of the set, multi-line transactions and compressed files
  EXPECT_EQ(queue_shapes.size(), 8U) << fmt::format("{}", fmt::join(queue_shapes, " "));
  EXPECT_GE(multi_line, 20U);
  EXPECT_GE(gz, 5U);
}

} // namespace
