// SPDX-License-Identifier: GPL-3.0-or-later
// The generated estate of the quarantine, log and PST end-to-end tests (test_connectors_e2e.cpp).
// Every person, address, phone number and IP is fictional (example.* domains, RFC 5737 IPs,
// Ofcom drama numbers), except the identities already in the copied corpus PST files.
#include "tests/e2e/estate_connectors.hpp"

#include "tests/test_support.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <system_error>

namespace maildsar::test {

namespace fs = std::filesystem;

bool gzip_file(const fs::path &path) {
  for (const char *gz : {"/usr/bin/gzip", "/bin/gzip"}) {
    if (fs::exists(gz)) {
      auto r = run({gz, "-n", "-f", path.string()});
      return r.exit_code == 0;
    }
  }
  return false;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Logs: transactions are written interleaved (up to three open at a time), as an MTA logs them.

enum class Expect { hit, miss, other };

struct LogLine {
  std::string tag; // syslog "program[pid]" ("" for Exim's own log format)
  std::string msg; // the message after "tag: "
};

struct LogTxn {
  std::string qid; // "" = a stand-alone line (its key is "line-N")
  std::vector<LogLine> lines;
  Expect expect = Expect::other;
  std::set<std::string> roles; // roles of the subject's identifier (hits only)
};

enum class Prefix { syslog, exim };

/** Renders the transactions interleaved into one log file; records the expectations by key. */
void write_log(ConnectorEstate &e, const fs::path &path, Prefix prefix, int day,
               const std::vector<LogTxn> &txns, bool compress) {
  std::string text;
  std::uint64_t number = 0;
  std::map<const LogTxn *, std::vector<std::uint64_t>> numbers;
  std::deque<std::pair<const LogTxn *, std::size_t>> open;
  std::size_t next = 0;
  constexpr std::size_t k_window = 3;
  while (next < txns.size() || !open.empty()) {
    while (open.size() < k_window && next < txns.size()) {
      open.emplace_back(&txns[next++], 0);
    }
    // one line of each open transaction, in order; finished ones make room for the next
    std::deque<std::pair<const LogTxn *, std::size_t>> still;
    for (auto &[t, i] : open) {
      const LogLine &l = t->lines[i];
      ++number;
      int secs = static_cast<int>(number) * 7;
      if (prefix == Prefix::exim) {
        text += fmt::format("2023-11-{:02} 10:{:02}:{:02} {}\n", day, (secs / 60) % 60, secs % 60,
                            l.msg);
      } else {
        text += fmt::format("Nov {:2} 10:{:02}:{:02} mx1 {}: {}\n", day, (secs / 60) % 60,
                            secs % 60, l.tag, l.msg);
      }
      numbers[t].push_back(number);
      if (i + 1 < t->lines.size()) {
        still.emplace_back(t, i + 1);
      }
    }
    open = std::move(still);
  }
  write_file(path, text);
  std::string key_path = path.string();
  if (compress) {
    if (!gzip_file(path)) {
      return; // the test notices the missing file
    }
    key_path += ".gz";
  }
  for (const auto &t : txns) {
    std::string qid = t.qid.empty() ? fmt::format("line-{}", numbers[&t].front()) : t.qid;
    std::string key = key_path + "#" + qid;
    if (t.expect == Expect::hit) {
      e.expected.insert(key);
      e.roles[key] = t.roles;
    } else if (t.expect == Expect::miss) {
      e.near_misses.insert(key);
    }
  }
}

struct PostfixTxn {
  std::string qid;
  std::string client; // "host[ip]"
  std::string sasl_user;
  std::string from;
  std::vector<std::pair<std::string, std::string>> to; // to, orig_to ("" = none)
};

LogTxn postfix(const PostfixTxn &p, Expect expect, std::set<std::string> roles = {}) {
  LogTxn t{p.qid, {}, expect, std::move(roles)};
  std::string client = p.qid + ": client=" + p.client;
  if (!p.sasl_user.empty()) {
    client += ", sasl_method=PLAIN, sasl_username=" + p.sasl_user;
  }
  t.lines.push_back({"postfix/smtpd[2001]", client});
  t.lines.push_back({"postfix/cleanup[2002]", fmt::format("{}: message-id=<{}@gen.example>", p.qid, p.qid)});
  t.lines.push_back({"postfix/qmgr[900]", fmt::format("{}: from=<{}>, size=2345, nrcpt={} (queue active)",
                                                      p.qid, p.from, p.to.size())});
  for (const auto &[to, orig] : p.to) {
    bool local = to.ends_with("@example.com");
    std::string line = fmt::format("{}: to=<{}>, ", p.qid, to);
    if (!orig.empty()) {
      line += fmt::format("orig_to=<{}>, ", orig);
    }
    line += local ? "relay=local, delay=0.4, delays=0.2/0.01/0/0.19, dsn=2.0.0, status=sent (delivered to mailbox)"
                  : "relay=mail.partner.example[198.51.100.7]:25, delay=1.2, delays=0.1/0.01/0.5/0.59, dsn=2.0.0, "
                    "status=sent (250 2.0.0 Ok: queued as 9F8E7D6C)";
    t.lines.push_back({local ? "postfix/local[2004]" : "postfix/smtp[2003]", line});
  }
  t.lines.push_back({"postfix/qmgr[900]", p.qid + ": removed"});
  return t;
}

struct EximTxn {
  std::string id;
  std::string from;
  std::string host; // "name [ip]"
  std::string auth; // A= value ("" = none)
  std::vector<std::string> to; // the text after "=> "
};

LogTxn exim(const EximTxn &x, Expect expect, std::set<std::string> roles = {}) {
  LogTxn t{x.id, {}, expect, std::move(roles)};
  std::string in = fmt::format("{} <= {} H={} P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 ", x.id, x.from, x.host);
  if (!x.auth.empty()) {
    in += "A=" + x.auth + " ";
  }
  in += fmt::format("S=2345 id={}@gen.example", x.id);
  t.lines.push_back({"", in});
  for (const auto &to : x.to) {
    bool local = to.find("@example.com") != std::string::npos;
    t.lines.push_back({"", fmt::format("{} => {} {}", x.id, to,
                                       local ? "R=local_user T=local_delivery"
                                             : "R=dnslookup T=remote_smtp H=mail.partner.example [198.51.100.7] "
                                               "X=TLS1.3:TLS_AES_256_GCM_SHA384:256 C=\"250 OK\"")});
  }
  t.lines.push_back({"", x.id + " Completed"});
  return t;
}

struct SendmailTxn {
  std::string qid;
  std::string from;
  std::string relay; // "name [ip]"
  std::string to;    // the to= list as written ("<a@b>,<c@d>")
  std::string ctladdr;
};

LogTxn sendmail(const SendmailTxn &s, Expect expect, std::set<std::string> roles = {}) {
  LogTxn t{s.qid, {}, expect, std::move(roles)};
  t.lines.push_back({"sendmail[3001]", fmt::format("{}: from=<{}>, size=2345, class=0, nrcpts=1, msgid=<{}@gen.example>, "
                                                   "proto=ESMTP, daemon=MTA, relay={}",
                                                   s.qid, s.from, s.qid, s.relay)});
  std::string to = fmt::format("{}: to={}, ", s.qid, s.to);
  if (!s.ctladdr.empty()) {
    to += fmt::format("ctladdr=<{}> (1001/1001), ", s.ctladdr);
  }
  to += "delay=00:00:02, xdelay=00:00:01, mailer=esmtp, pri=122345, relay=mail.partner.example. [198.51.100.7], "
        "dsn=2.0.0, stat=Sent (Ok: queued)";
  t.lines.push_back({"sendmail[3002]", to});
  return t;
}

LogTxn single(std::string tag, std::string msg, Expect expect, std::set<std::string> roles = {}) {
  return LogTxn{"", {{std::move(tag), std::move(msg)}}, expect, std::move(roles)};
}

const std::set<std::string> k_none;

/** The hand-written current Postfix log (line numbers in the comments are checked by the test). */
const char *const k_postfix_current =
    /*  1 */ "Nov 14 09:59:58 mx1 postfix/smtpd[2101]: connect from unknown[203.0.113.45]\n"
    /*  2 */ "Nov 14 09:59:58 mx1 postfix/smtpd[2102]: connect from mail.partner.example[198.51.100.7]\n"
    /*  3 */ "Nov 14 09:59:59 mx1 postfix/smtpd[2101]: 4B2F1C0A7D: client=unknown[203.0.113.45], sasl_method=PLAIN, sasl_username=alice.smith@example.com\n"
    /*  4 */ "Nov 14 09:59:59 mx1 postfix/smtpd[2102]: 5C3E2D1B8E: client=mail.partner.example[198.51.100.7]\n"
    /*  5 */ "Nov 14 10:00:00 mx1 postfix/cleanup[2110]: 4B2F1C0A7D: message-id=<pf-4@gen.example>\n"
    /*  6 */ "Nov 14 10:00:00 mx1 postfix/cleanup[2110]: 5C3E2D1B8E: message-id=<pf-5@partner.example>\n"
    /*  7 */ "Nov 14 10:00:00 mx1 postfix/qmgr[900]: 4B2F1C0A7D: from=<alice.smith@example.com>, size=2345, nrcpt=1 (queue active)\n"
    /*  8 */ "Nov 14 10:00:01 mx1 postfix/qmgr[900]: 5C3E2D1B8E: from=<carol.white@partner.example>, size=3456, nrcpt=2 (queue active)\n"
    /*  9 */ "Nov 14 10:00:01 mx1 postfix/smtpd[2101]: disconnect from unknown[203.0.113.45] ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6\n"
    /* 10 */ "Nov 14 10:00:02 mx1 postfix/smtp[2120]: 4B2F1C0A7D: to=<bob.jones@partner.example>, relay=mail.partner.example[198.51.100.7]:25, delay=2.1, delays=0.1/0.01/1/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9F8E7D)\n"
    /* 11 */ "Nov 14 10:00:02 mx1 postfix/local[2121]: 5C3E2D1B8E: to=<alice.smith+news@example.com>, relay=local, delay=1.2, delays=1/0.01/0/0.2, dsn=2.0.0, status=sent (delivered to mailbox)\n"
    /* 12 */ "Nov 14 10:00:02 mx1 postfix/local[2121]: 5C3E2D1B8E: to=<bob.jones@example.com>, relay=local, delay=1.2, delays=1/0.01/0/0.2, dsn=2.0.0, status=sent (delivered to mailbox)\n"
    /* 13 */ "Nov 14 10:00:02 mx1 postfix/qmgr[900]: 4B2F1C0A7D: removed\n"
    /* 14 */ "Nov 14 10:00:03 mx1 postfix/smtpd[2103]: connect from unknown[203.0.113.4]\n"
    /* 15 */ "Nov 14 10:00:03 mx1 postfix/smtpd[2103]: 6D4F3E2C9F: client=unknown[203.0.113.4]\n"
    /* 16 */ "Nov 14 10:00:03 mx1 postfix/qmgr[900]: 5C3E2D1B8E: removed\n"
    /* 17 */ "Nov 14 10:00:04 mx1 postfix/cleanup[2110]: 6D4F3E2C9F: message-id=<pf-6@gen.example>\n"
    /* 18 */ "Nov 14 10:00:04 mx1 postfix/qmgr[900]: 6D4F3E2C9F: from=<dave@supplier.example>, size=1234, nrcpt=1 (queue active)\n"
    /* 19 */ "Nov 14 10:00:05 mx1 postfix/smtp[2120]: 6D4F3E2C9F: to=<alice.smith@example.co>, relay=mx.example.co[198.51.100.9]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)\n"
    /* 20 */ "Nov 14 10:00:05 mx1 postfix/qmgr[900]: 6D4F3E2C9F: removed\n"
    /* 21 */ "Nov 14 10:00:05 mx1 postfix/smtpd[2103]: disconnect from unknown[203.0.113.4] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n";

void write_logs(ConnectorEstate &e) {
  const std::string me = "alice.smith@example.com";
  // --- Postfix: logs/postfix/mail.log (hand-written), mail.log.1, mail.log.2.gz
  auto pf = e.root / "logs/postfix";
  write_file(pf / "mail.log", k_postfix_current);
  auto cur = (pf / "mail.log").string();
  e.expected.insert({cur + "#line-1", cur + "#4B2F1C0A7D", cur + "#5C3E2D1B8E", cur + "#line-9"});
  e.roles[cur + "#line-1"] = {"log-client"};
  e.roles[cur + "#4B2F1C0A7D"] = {"log-client", "log-user", "log-from"};
  e.roles[cur + "#5C3E2D1B8E"] = {"log-to"};
  e.roles[cur + "#line-9"] = {"log-client"};
  e.near_misses.insert({cur + "#6D4F3E2C9F", cur + "#line-14", cur + "#line-21"});
  e.checked_key = cur + "#4B2F1C0A7D";
  e.checked_lines = {3, 5, 7, 10, 13};

  write_log(e, pf / "mail.log.1", Prefix::syslog, 13,
            {postfix({"7A1B2C3D01", "mail.partner.example[198.51.100.7]", "", "carol.white@partner.example",
                      {{me, ""}}},
                     Expect::hit, {"log-to"}),
             postfix({"7A1B2C3D02", "mail.partner.example[198.51.100.7]", "", "carol.white@partner.example",
                      {{"alice.smithson@example.com", ""}}},
                     Expect::miss),
             postfix({"7A1B2C3D03", "relay.supplier.example[198.51.100.20]", "", "dave@supplier.example",
                      {{"asmith@example.com", me}, {"bob.jones@example.com", ""}}},
                     Expect::hit, {"log-to"}),
             postfix({"7A1B2C3D04", "relay.supplier.example[198.51.100.20]", "", "dave@supplier.example",
                      {{"bob.jones@example.com", "bob+alice.smith@example.com"}}},
                     Expect::miss),
             postfix({"7A1B2C3D05", "localhost[127.0.0.1]", "", "root@mx1.example.com",
                      {{"postmaster@example.com", ""}}},
                     Expect::other),
             // Dovecot in the same syslog file: an IMAP session is one transaction
             LogTxn{"k3XbQ1AOMuvLcXEt",
                    {{"dovecot", "imap-login: Login: user=<" + me + ">, method=PLAIN, rip=203.0.113.45, "
                                 "lip=198.51.100.10, mpid=5120, TLS, session=<k3XbQ1AOMuvLcXEt>"},
                     {"dovecot", "imap(" + me + ")<5120><k3XbQ1AOMuvLcXEt>: Logged out in=412 out=18234"}},
                    Expect::hit,
                    {"log-user", "log-client"}},
             LogTxn{"Zz9YyXxWw8VvUu7T",
                    {{"dovecot", "imap-login: Login: user=<alice.smithson@example.com>, method=PLAIN, "
                                 "rip=203.0.113.4, lip=198.51.100.10, mpid=5121, TLS, session=<Zz9YyXxWw8VvUu7T>"},
                     {"dovecot", "imap(alice.smithson@example.com)<5121><Zz9YyXxWw8VvUu7T>: Logged out in=1 out=2"}},
                    Expect::miss,
                    {}},
             // rejected before a queue id was assigned: a stand-alone line
             single("postfix/smtpd[2005]", "NOQUEUE: reject: RCPT from unknown[203.0.113.45]: 450 4.7.1 Client host "
                                           "rejected: cannot find your hostname; from=<dave@supplier.example> to=<" +
                                               me + "> proto=ESMTP helo=<laptop>",
                    Expect::hit, {"log-client", "log-to"}),
             single("postfix/smtpd[2006]", "NOQUEUE: reject: RCPT from unknown[203.0.113.4]: 450 4.7.1 Client host "
                                           "rejected: cannot find your hostname; from=<dave@supplier.example> "
                                           "to=<alice.smith@example.co> proto=ESMTP helo=<other>",
                    Expect::miss)},
            false);
  write_log(e, pf / "mail.log.2", Prefix::syslog, 12,
            {postfix({"8B2C3D4E01", "mail.example.com[198.51.100.2]", "", me, {{"bob.jones@partner.example", ""}}},
                     Expect::hit, {"log-from"}),
             postfix({"8B2C3D4E02", "mail.example.com[198.51.100.2]", "", "malice.smith@example.com",
                      {{"team@example.com", ""}}},
                     Expect::miss),
             postfix({"8B2C3D4E03", "mail.partner.example[198.51.100.7]", "", "carol.white@partner.example",
                      {{"dave@supplier.example", ""}}},
                     Expect::other),
             postfix({"8B2C3D4E04", "unknown[203.0.113.4]", "", "dave@supplier.example",
                      {{"purchasing@example.com", ""}}},
                     Expect::miss),
             postfix({"8B2C3D4E05", "unknown[203.0.113.45]", "", "dave@supplier.example",
                      {{"purchasing@example.com", ""}}},
                     Expect::hit, {"log-client"})},
            true);

  // --- Exim: logs/exim/mainlog, mainlog.1, mainlog.2.gz
  auto ex = e.root / "logs/exim";
  write_log(e, ex / "mainlog", Prefix::exim, 14,
            {exim({"1r3Xa1-000A01-Bc", "dave@supplier.example", "relay.supplier.example [203.0.113.45]:2525", "",
                   {"purchasing@example.com"}},
                  Expect::hit, {"log-client"}),
             exim({"1r3Xa1-000A02-Bc", "carol.white@partner.example", "mail.partner.example [198.51.100.7]", "",
                   {"alice.smith <alice.smith+shop@example.com>"}},
                  Expect::hit, {"log-to"}),
             exim({"1r3Xa1-000A03-Bc", "dave@supplier.example", "unknown [203.0.113.4]", "",
                   {"bob+alice.smith@example.com"}},
                  Expect::miss),
             exim({"1r3Xa1-000A04-Bc", "alice.smith@example.co", "mx.example.co [198.51.100.9]", "",
                   {"bob.jones@example.com"}},
                  Expect::miss)},
            false);
  write_log(e, ex / "mainlog.1", Prefix::exim, 13,
            {exim({"1r3Wb2-000B01-Cd", "carol.white@partner.example", "mail.partner.example [198.51.100.7]", "",
                   {me}},
                  Expect::hit, {"log-to"}),
             exim({"1r3Wb2-000B02-Cd", "carol.white@partner.example", "mail.partner.example [198.51.100.7]", "",
                   {"alice.smithson@example.com"}},
                  Expect::miss),
             exim({"1r3Wb2-000B03-Cd", "root@mx1.example.com", "localhost [127.0.0.1]", "",
                   {"postmaster@example.com"}},
                  Expect::other)},
            false);
  write_log(e, ex / "mainlog.2", Prefix::exim, 12,
            {exim({"1r3Vc3-000C01-De", me, "laptop.example.net [203.0.113.45]", "dovecot_plain:" + me,
                   {"bob.jones@partner.example"}},
                  Expect::hit, {"log-from", "log-client", "log-user"}),
             exim({"1r3Vc3-000C02-De", "malice.smith@example.com", "mail.example.com [198.51.100.2]", "",
                   {"team@example.com"}},
                  Expect::miss)},
            true);

  // --- Sendmail: logs/sendmail/maillog, maillog.1, maillog.2.gz
  auto sm = e.root / "logs/sendmail";
  write_log(e, sm / "maillog", Prefix::syslog, 14,
            {sendmail({"rAEA01aB003001", me, "laptop.example.net [203.0.113.45]", "<bob.jones@partner.example>", ""},
                      Expect::hit, {"log-from", "log-client"}),
             sendmail({"rAEA01aB003002", "alice.smithson@example.com", "unknown [203.0.113.4]",
                       "<bob.jones@partner.example>", ""},
                      Expect::miss)},
            false);
  write_log(e, sm / "maillog.1", Prefix::syslog, 13,
            {sendmail({"rADB02cD004001", "carol.white@partner.example", "mail.partner.example [198.51.100.7]",
                       "<team@example.com>,<" + me + ">", ""},
                      Expect::hit, {"log-to"}),
             sendmail({"rADB02cD004002", "carol.white@partner.example", "mail.partner.example [198.51.100.7]",
                       "<bob+alice.smith@example.com>", ""},
                      Expect::miss)},
            false);
  write_log(e, sm / "maillog.2", Prefix::syslog, 12,
            {sendmail({"rACC03eF005001", "www-data@example.com", "localhost [127.0.0.1]", "<bob.jones@partner.example>",
                       me},
                      Expect::hit, {"log-user"}),
             sendmail({"rACC03eF005002", "root@mx2.example.com", "localhost [127.0.0.1]", "<alice.smith@example.co>",
                       ""},
                      Expect::miss)},
            true);
}

// ---------------------------------------------------------------------------------------------
// Quarantines

std::string amavis_headers(const std::string &mail_id, const std::string &env_from, const std::string &env_to) {
  return fmt::format("Return-Path: <{0}>\nDelivered-To: spam-quarantine\nX-Envelope-From: <{0}>\n"
                     "X-Envelope-To: {1}\nX-Quarantine-ID: <{2}>\nX-Spam-Flag: YES\nX-Spam-Score: 12.3\n"
                     "Received: from mx1.example.com ([127.0.0.1])\n\tby localhost (amavis, port 10024) with ESMTP "
                     "id {2}; Tue, 14 Nov 2023 10:00:00 +0000 (UTC)\n",
                     env_from, env_to, mail_id);
}

void quarantine_file(ConnectorEstate &e, const fs::path &path, const std::string &data, Expect expect,
                     std::set<std::string> roles, bool compress) {
  write_file(path, data);
  std::string key = path.string();
  if (compress) {
    gzip_file(path);
    key += ".gz";
  }
  if (expect == Expect::hit) {
    e.expected.insert(key);
    e.roles[key] = std::move(roles);
  } else if (expect == Expect::miss) {
    e.near_misses.insert(key);
  }
}

void write_quarantines(ConnectorEstate &e) {
  auto am = e.root / "quarantine/amavis";
  // the subject only as an envelope recipient (folded list), gzip, in the root
  quarantine_file(e, am / "spam-Kx7mQ2pL9vR4",
                  amavis_headers("Kx7mQ2pL9vR4", "promo@spam.example",
                                 "<alice.smith@example.com>,\n <team@example.com>") +
                      "Received: from spam.example (unknown [198.51.100.66])\n\tby mx1.example.com (Postfix) "
                      "with ESMTP id 3F2E1D0C9B; Tue, 14 Nov 2023 09:59:59 +0000 (UTC)\n"
                      "From: \"Prize Desk\" <promo@spam.example>\nTo: undisclosed-recipients:;\n"
                      "Subject: You have won\nMessage-ID: <q-spam-1@spam.example>\n"
                      "Date: Tue, 14 Nov 2023 09:59:00 +0000\n\nClick here to claim.\n",
                  Expect::hit, {"envelope-to"}, true);
  // the subject only in From, plain file in a 1-letter subdir
  quarantine_file(e, am / "A/virus-A7xK2mQ9pL0s",
                  amavis_headers("A7xK2mQ9pL0s", "bounce-4711@lists.example", "<team@example.com>") +
                      "From: Alice Smith <alice.smith@example.com>\nTo: team@example.com\n"
                      "Subject: invoice.zip\nMessage-ID: <q-virus-1@gen.example>\n"
                      "Date: Tue, 14 Nov 2023 09:58:00 +0000\n\nSee attached.\n",
                  Expect::hit, {"from"}, false);
  // the subject's IP in a Received header, gzip in a subdir
  quarantine_file(e, am / "b/spam-b3Rt6Yh8Jk2W",
                  amavis_headers("b3Rt6Yh8Jk2W", "dave@supplier.example", "<bob.jones@example.com>") +
                      "Received: from laptop (unknown [203.0.113.45])\n\tby mx1.example.com (Postfix) with ESMTPSA "
                      "id 1A2B3C4D5E; Tue, 14 Nov 2023 09:57:00 +0000 (UTC)\n"
                      "From: Dave <dave@supplier.example>\nTo: bob.jones@example.com\nSubject: cheap\n"
                      "Message-ID: <q-spam-2@gen.example>\nDate: Tue, 14 Nov 2023 09:57:00 +0000\n\nBuy.\n",
                  Expect::hit, {"received"}, true);
  // near misses
  quarantine_file(e, am / "banned-Zq1Wx2Ec3Rv4",
                  amavis_headers("Zq1Wx2Ec3Rv4", "dave@supplier.example", "<bob+alice.smith@example.com>") +
                      "From: Dave <dave@supplier.example>\nTo: bob+alice.smith@example.com\nSubject: exe\n"
                      "Message-ID: <q-banned-1@gen.example>\n\nRun me.\n",
                  Expect::miss, {}, false);
  quarantine_file(e, am / "m/spam-m9Nb8Vc7Xz6L",
                  amavis_headers("m9Nb8Vc7Xz6L", "malice.smith@example.com", "<alice.smith@example.co>") +
                      "From: malice.smith@example.com\nTo: alice.smith@example.co\nSubject: hi\n"
                      "Message-ID: <q-spam-3@gen.example>\n\nHello.\n",
                  Expect::miss, {}, true);
  quarantine_file(e, am / "c/badh-c5Tg6Yh7Uj8I",
                  amavis_headers("c5Tg6Yh7Uj8I", "alice.smithson@example.com", "<team@example.com>") +
                      "Received: from other (unknown [203.0.113.4])\n\tby mx1.example.com (Postfix); "
                      "Tue, 14 Nov 2023 09:50:00 +0000\nFrom: Alice Smithson <alice.smithson@example.com>\n"
                      "To: team@example.com\nSubject: bad header\nMessage-ID: <q-badh-1@gen.example>\n\nHi.\n",
                  Expect::miss, {}, false);

  auto ms = e.root / "quarantine/mailscanner";
  quarantine_file(e, ms / "20231114/3Pt2mN2VXxznjll/message",
                  "Received: from mail.partner.example (mail.partner.example [198.51.100.7])\n\tby mx1.example.com "
                  "(Postfix) with ESMTP id 3Pt2mN2VXxznjll; Tue, 14 Nov 2023 09:00:00 +0000\n"
                  "From: Carol White <carol.white@partner.example>\nTo: Alice Smith <alice.smith@example.com>\n"
                  "Subject: contract\nMessage-ID: <ms-1@partner.example>\nDate: Tue, 14 Nov 2023 09:00:00 +0000\n"
                  "X-ExampleCorp-MailScanner-Information: Please contact the ISP for more information\n"
                  "X-ExampleCorp-MailScanner: Found to be infected\n\nSee the attached contract.\n",
                  Expect::hit, {"to"}, false);
  quarantine_file(e, ms / "20231114/spam/4bsM5k4xJmz4rT6",
                  "From: Lead Gen <leads@spam.example>\nTo: sales@example.com\nSubject: leads\n"
                  "Message-ID: <ms-2@spam.example>\nDate: Tue, 14 Nov 2023 08:00:00 +0000\n"
                  "X-ExampleCorp-MailScanner-SpamCheck: spam, SpamAssassin (score=12.1, required 5)\n\n"
                  "New lead: Alice Smith, phone 020 7946 0123, mail alice.smith@example.com.\n",
                  Expect::hit, {"body"}, false);
  quarantine_file(e, ms / "20231114/spam/4cTn6l5yKmz8sU7",
                  "From: Lead Gen <leads@spam.example>\nTo: sales@example.com\nSubject: more leads\n"
                  "Message-ID: <ms-3@spam.example>\n\n"
                  "Leads: Alicia Smithers, 020 7946 0124, alice.smith@example.co, malice.smith@example.com.\n",
                  Expect::miss, {}, false);
  quarantine_file(e, ms / "20231115/5Dq3nP3WYyzokmm/message",
                  "From: Alice Smithson <alice.smithson@example.com>\nTo: bob.jones@example.com\n"
                  "Subject: hello\nMessage-ID: <ms-4@gen.example>\n\nHi Bob.\n",
                  Expect::miss, {}, false);
}

// ---------------------------------------------------------------------------------------------
// PST (corpus copies)

bool copy_pst(const fs::path &from, const fs::path &to) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (!fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec)) {
    return false;
  }
  fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add, ec);
  return true;
}

} // namespace

ConnectorEstate make_connector_estate(const fs::path &root, const fs::path &corpus) {
  ConnectorEstate e;
  e.root = root;
  write_logs(e);
  write_quarantines(e);

  // A Maildir message, so that one find lists mailbox, quarantine and log items together.
  auto md = root / "mail/carol.white/Maildir/cur/1700000001.M1P1.gen:2,S";
  write_file(md, "From: Carol White <carol.white@partner.example>\nTo: Alice Smith <alice.smith@example.com>\n"
                 "Subject: minutes\nMessage-ID: <md-1@gen.example>\nDate: Tue, 14 Nov 2023 11:00:00 +0000\n\nAttached.\n");
  e.expected.insert(md.string());
  e.roles[md.string()] = {"to"};
  auto md_miss = root / "mail/carol.white/Maildir/cur/1700000002.M2P1.gen:2,S";
  write_file(md_miss, "From: Carol White <carol.white@partner.example>\nTo: malice.smith@example.com\n"
                      "Cc: alice.smith@example.co\nSubject: minutes\nMessage-ID: <md-2@gen.example>\n\nFrom 203.0.113.4.\n");
  e.near_misses.insert(md_miss.string());

  std::string pst_source;
  if (!corpus.empty() && fs::exists(corpus / "pst/pstsdk/sample1.pst")) {
    auto dir = root / "pst";
    e.has_pst = copy_pst(corpus / "pst/pstsdk/sample1.pst", dir / "sample1.pst") &&
                copy_pst(corpus / "pst/pstsdk/sample2.pst", dir / "sample2.pst") &&
                copy_pst(corpus / "pst/aspose/SampleContacts.pst", dir / "SampleContacts.pst");
    if (e.has_pst) {
      pst_source = R"(    {"name": "legacy", "type": "pst", "path": "pst/*.pst"},
)";
      // The one e-mail of sample1 (Unicode) and sample2 (ANSI): from and to Terry Mahaffey;
      // SampleContacts: the contact card of Margaret J. Tolle.
      e.pst_expected = {(dir / "sample1.pst").string() + "#2097188", (dir / "sample2.pst").string() + "#2097188",
                        (dir / "SampleContacts.pst").string() + "#2097284"};
    }
  }

  e.config = root / "maildsar.json";
  write_file(e.config, "{\n  // generated by the connector end-to-end tests\n  \"state_dir\": \"state\",\n"
                       "  \"sources\": [\n"
                       "    {\"name\": \"mailboxes\", \"type\": \"maildir\", \"path\": \"mail/*/Maildir\"},\n" +
                           pst_source +
                           R"(    {"name": "amavis", "type": "quarantine", "format": "amavis", "path": "quarantine/amavis"},
    {"name": "mailscanner", "type": "quarantine", "format": "mailscanner", "path": "quarantine/mailscanner"},
    {"name": "postfix", "type": "maillog", "format": "postfix", "path": "logs/postfix/mail.log*"},
    {"name": "exim", "type": "maillog", "format": "exim", "path": "logs/exim/mainlog*"},
    {"name": "sendmail", "type": "maillog", "format": "sendmail", "path": "logs/sendmail/maillog*"}
  ],
  "identity": {"subaddress_separators": "+", "phone_region": "GB"}
})");
  e.subject = root / "subject.json";
  write_file(e.subject, R"({"request": "DSAR-TEST-3", "emails": ["alice.smith@example.com"],
  "names": ["Alice Smith"], "phones": ["+44 20 7946 0123"], "ips": ["203.0.113.45"]})");
  e.pst_subject = root / "subject-pst.json";
  write_file(e.pst_subject, R"({"request": "DSAR-TEST-3P", "emails": ["terrymah@microsoft.com", "MargaretJTolle@dayrep.com"],
  "names": ["Terry Mahaffey"]})");
  return e;
}

std::string hit_key(const nlohmann::json &hit) {
  std::string key = hit.at("path").get<std::string>();
  const auto store = hit.at("store").get<std::string>();
  if (store == "mbox") {
    key += "@" + std::to_string(hit.at("offset").get<std::uint64_t>());
  } else if (store == "pst") {
    key += "#" + std::to_string(hit.at("node_id").get<std::uint64_t>());
  } else if (store == "maillog") {
    key += "#" + hit.at("queue_id").get<std::string>();
  }
  return key;
}

} // namespace maildsar::test
