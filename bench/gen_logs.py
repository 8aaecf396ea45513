#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Generates a rotated Postfix + Dovecot syslog log set for benchmarks: OUTDIR/mail.log,
mail.log.1, mail.log.2.gz, mail.log.3.gz, ... (the first two plain, the rest gzip, as logrotate
with delaycompress leaves them). Transactions are interleaved as a busy MX logs them: inbound
SMTP (connect, client=, cleanup, qmgr, amavis, delivery, removed, disconnect), authenticated
submission (sasl_username=), outbound relay with deferrals, NOQUEUE rejects, and Dovecot IMAP/POP3
logins and LMTP deliveries. Every name, address and IP is fictional (example.* domains, RFC 5737).
Deterministic (seeded).

Usage: gen_logs.py OUTDIR [SIZE_MB [FILES [SEED]]]   (defaults: 1024 MB uncompressed, 4 files, 42)
Prints "<lines> <bytes>" (uncompressed totals) on stdout.
"""
import gzip
import os
import random
import sys
import time

FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "zoe"]
LAST = ["smith", "jones", "white", "brown", "taylor", "mueller", "garcia", "nowak", "dubois",
        "rossi", "smithson", "king", "wright", "hill", "green"]
LOCAL_DOMAINS = ["example.com", "example.org"]
REMOTE_DOMAINS = ["partner.example", "supplier.example", "customer.example", "mail.example.net",
                  "news.example", "lists.example"]
NETS = ["192.0.2", "198.51.100", "203.0.113"]
HOSTS = ["mx1", "mx2"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
QID_CHARS = "0123456789ABCDEF"
START = 1698796800  # 2023-11-01T00:00:00Z
SESSION_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        r = self.rng
        # a fixed population: local users, remote correspondents, client IPs
        self.local = [f"{f}.{l}{'' if i < 300 else i}@{LOCAL_DOMAINS[i % 2]}"
                      for i, (f, l) in enumerate((r.choice(FIRST), r.choice(LAST)) for _ in range(2000))]
        self.local[0] = "alice.smith@example.com"  # the data subject of the benchmark queries
        self.remote = [f"{r.choice(FIRST)}{r.randint(1, 999)}@{r.choice(REMOTE_DOMAINS)}"
                       for _ in range(5000)]
        self.ips = [f"{r.choice(NETS)}.{r.randint(1, 254)}" for _ in range(3000)]
        self.pid = 1000
        self.clock = 0  # seconds since START

    def qid(self):
        r = self.rng
        return "".join(r.choice(QID_CHARS) for _ in range(10))

    def session(self):
        r = self.rng
        return "".join(r.choice(SESSION_CHARS) for _ in range(16))

    def next_pid(self):
        self.pid = self.pid + 1 if self.pid < 65000 else 1000
        return self.pid

    # Each transaction is a list of (program, message) lines.
    def inbound(self):
        r = self.rng
        q, pid, ip = self.qid(), self.next_pid(), r.choice(self.ips)
        host = r.choice(["unknown", f"mail.{r.choice(REMOTE_DOMAINS)}"])
        sender = r.choice(self.remote)
        rcpts = r.sample(self.local, r.choice([1, 1, 1, 2, 3]))
        mid = f"{q.lower()}.{r.randint(100000, 999999)}@{sender.split('@')[1]}"
        smtpd = f"postfix/smtpd[{pid}]"
        lines = [(smtpd, f"connect from {host}[{ip}]"),
                 (smtpd, f"{q}: client={host}[{ip}]"),
                 (f"postfix/cleanup[{self.next_pid()}]", f"{q}: message-id=<{mid}>"),
                 ("postfix/qmgr[900]", f"{q}: from=<{sender}>, size={r.randint(900, 90000)}, nrcpt={len(rcpts)} (queue active)"),
                 (f"amavis[{self.next_pid()}]", f"({pid}-{r.randint(1, 20):02}) Passed CLEAN {{RelayedInbound}}, [{ip}]:{r.randint(1024, 65535)} [{ip}] <{sender}> -> {','.join('<' + x + '>' for x in rcpts)}, Queue-ID: {q}, Message-ID: <{mid}>, mail_id: {self.session()[:12]}, Hits: {r.uniform(-3, 4):.3f}, size: {r.randint(900, 90000)}, {r.randint(80, 900)} ms")]
        lmtp = f"postfix/lmtp[{self.next_pid()}]"
        for rc in rcpts:
            sess = self.session()
            lines.append((f"dovecot", f"lmtp({rc})<{self.next_pid()}><{sess}>: msgid=<{mid}>: saved mail to INBOX"))
            lines.append((lmtp, f"{q}: to=<{rc}>, relay=mail.example.com[private/dovecot-lmtp], delay={r.uniform(0.1, 3):.2f}, delays=0.1/0.01/0.02/0.2, dsn=2.0.0, status=sent (250 2.0.0 <{rc}> {sess} Saved)"))
        lines.append(("postfix/qmgr[900]", f"{q}: removed"))
        lines.append((smtpd, f"disconnect from {host}[{ip}] ehlo=1 mail=1 rcpt={len(rcpts)} data=1 quit=1 commands={4 + len(rcpts)}"))
        return lines

    def submission(self):
        r = self.rng
        q, pid, ip = self.qid(), self.next_pid(), r.choice(self.ips)
        user = r.choice(self.local)
        rcpts = r.sample(self.remote, r.choice([1, 1, 2]))
        mid = f"{q.lower()}.{r.randint(100000, 999999)}@{user.split('@')[1]}"
        smtpd = f"postfix/submission/smtpd[{pid}]"
        lines = [(smtpd, f"connect from unknown[{ip}]"),
                 (smtpd, f"{q}: client=unknown[{ip}], sasl_method=PLAIN, sasl_username={user}"),
                 (f"postfix/cleanup[{self.next_pid()}]", f"{q}: message-id=<{mid}>"),
                 ("postfix/qmgr[900]", f"{q}: from=<{user}>, size={r.randint(900, 90000)}, nrcpt={len(rcpts)} (queue active)")]
        smtp = f"postfix/smtp[{self.next_pid()}]"
        for rc in rcpts:
            relay = f"mx.{rc.split('@')[1]}[{r.choice(self.ips)}]:25"
            if r.random() < 0.05:
                lines.append((smtp, f"{q}: to=<{rc}>, relay={relay}, delay=31, delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to {relay}: Connection timed out)"))
            lines.append((smtp, f"{q}: to=<{rc}>, relay={relay}, delay={r.uniform(0.3, 5):.1f}, delays=0.1/0.01/0.2/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {self.qid()})"))
        lines.append(("postfix/qmgr[900]", f"{q}: removed"))
        lines.append((smtpd, f"disconnect from unknown[{ip}] ehlo=2 starttls=1 auth=1 mail=1 rcpt={len(rcpts)} data=1 quit=1 commands={7 + len(rcpts)}"))
        return lines

    def reject(self):
        r = self.rng
        pid, ip = self.next_pid(), r.choice(self.ips)
        smtpd = f"postfix/smtpd[{pid}]"
        return [(smtpd, f"connect from unknown[{ip}]"),
                (smtpd, f"NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 Service unavailable; Client host [{ip}] blocked using zen.spamhaus.org; from=<{r.choice(self.remote)}> to=<{r.choice(self.local)}> proto=ESMTP helo=<{r.choice(HOSTS)}.{r.choice(REMOTE_DOMAINS)}>"),
                (smtpd, f"disconnect from unknown[{ip}] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4")]

    def imap(self):
        r = self.rng
        user, ip, sess, pid = r.choice(self.local), r.choice(self.ips), self.session(), self.next_pid()
        svc = r.choice(["imap", "imap", "imap", "pop3"])
        return [("dovecot", f"{svc}-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip=198.51.100.10, mpid={pid}, TLS, session=<{sess}>"),
                ("dovecot", f"{svc}({user})<{pid}><{sess}>: Logged out in={r.randint(100, 9000)} out={r.randint(1000, 900000)} deleted=0 expunged=0 trashed=0 hdr_count={r.randint(0, 50)} hdr_bytes={r.randint(0, 90000)} body_count={r.randint(0, 9)} body_bytes={r.randint(0, 900000)}")]

    def failed_login(self):
        r = self.rng
        ip = r.choice(self.ips)
        return [("dovecot", f"imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{r.choice(self.local)}>, method=PLAIN, rip={ip}, lip=198.51.100.10, TLS, session=<{self.session()}>")]

    def transaction(self):
        x = self.rng.random()
        if x < 0.45:
            return self.inbound()
        if x < 0.65:
            return self.submission()
        if x < 0.80:
            return self.imap()
        if x < 0.95:
            return self.reject()
        return self.failed_login()


def write_file(gen, path, budget):
    """Writes about `budget` bytes of interleaved transactions; returns (lines, bytes)."""
    r = gen.rng
    host = r.choice(HOSTS)
    open_txns = []  # [lines, next index]
    written = lines = 0
    day, date = -1, ""
    out = []
    out_bytes = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        while written < budget or open_txns:
            if written < budget and len(open_txns) < 24:
                open_txns.append([gen.transaction(), 0])
                continue
            i = r.randrange(len(open_txns))
            t = open_txns[i]
            prog, msg = t[0][t[1]]
            t[1] += 1
            if t[1] == len(t[0]):
                open_txns[i] = open_txns[-1]
                open_txns.pop()
            gen.clock += r.choice((0, 0, 0, 1))
            if gen.clock // 86400 != day:
                day = gen.clock // 86400
                tm = time.gmtime(START + day * 86400)
                date = f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2}"
            s = gen.clock % 86400
            line = f"{date} {s // 3600:02}:{s // 60 % 60:02}:{s % 60:02} {host} {prog}: {msg}\n"
            out.append(line)
            out_bytes += len(line)
            lines += 1
            if out_bytes > 1 << 18:
                f.write("".join(out))
                written += out_bytes
                out, out_bytes = [], 0
        f.write("".join(out))
        written += out_bytes
    return lines, written


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    size_mb = float(sys.argv[2]) if len(sys.argv) > 2 else 1024
    files = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 42
    os.makedirs(outdir, exist_ok=True)
    gen = Gen(seed)
    budget = int(size_mb * 1024 * 1024 / files)
    total_lines = total_bytes = 0
    # oldest first, so that the timestamps grow towards mail.log
    for n in reversed(range(files)):
        name = os.path.join(outdir, "mail.log" + (f".{n}" if n > 0 else ""))
        lines, size = write_file(gen, name, budget)
        total_lines += lines
        total_bytes += size
        if n >= 2:
            with open(name, "rb") as src, gzip.GzipFile(name + ".gz", "wb", compresslevel=6, mtime=0) as dst:
                while True:
                    block = src.read(1 << 20)
                    if not block:
                        break
                    dst.write(block)
            os.remove(name)
    print(total_lines, total_bytes)


if __name__ == "__main__":
    main()
