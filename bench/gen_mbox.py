#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Generates one large mbox for the erasure benchmark: messages of 2-12 KiB with fictional
correspondents (example.* domains), of which every 100th involves the data subject
dsar.subject@example.com (1 %). Deterministic (seeded).

Usage: gen_mbox.py OUT.mbox [SIZE_MB [SEED [MIN_WORDS-MAX_WORDS]]]
       (defaults: 1024 MB, 42, 300-1800 body words: messages of 2-12 KiB; 150-1500 gives
       ~5 KiB on average, e.g. 250 MB with ~50k messages as issue 14 measures)
Prints "<messages> <subject messages> <bytes>" on stdout.
"""
import random
import sys

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter"]
WORDS = ("the quarterly report is attached please review the figures before friday meeting "
         "agenda budget invoice contract renewal delivery schedule thanks regards project "
         "update minutes action items customer supplier order shipment").split()


def main():
    out = sys.argv[1]
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 42)
    low, high = (int(w) for w in (sys.argv[4] if len(sys.argv) > 4 else "300-1800").split("-"))
    target = size * 1024 * 1024
    written = messages = subject = 0
    with open(out, "wb", buffering=1 << 20) as f:
        while written < target:
            a, b = rng.choice(NAMES), rng.choice(NAMES)
            sender = f"{a}.{rng.randrange(1000)}@corp.example"
            rcpt = f"{b}.{rng.randrange(1000)}@partner.example"
            if messages % 100 == 37:
                rcpt = "Data Subject <dsar.subject@example.com>"
                subject += 1
            body_words = rng.randrange(low, high)
            lines, line = [], []
            for _ in range(body_words):
                line.append(rng.choice(WORDS))
                if len(line) == 12:
                    lines.append(" ".join(line))
                    line = []
            lines.append(" ".join(line))
            day = 1 + messages % 28
            msg = (f"From {sender} Mon Nov {day:2d} 10:{messages % 60:02d}:00 2023\n"
                   f"From: {a.title()} <{sender}>\nTo: {rcpt}\n"
                   f"Subject: message {messages}\nMessage-ID: <m{messages}.{seed_tag(rng)}@corp.example>\n"
                   f"Date: Mon, {day} Nov 2023 10:{messages % 60:02d}:00 +0000\n\n"
                   + "\n".join(lines) + "\n\n").encode()
            f.write(msg)
            written += len(msg)
            messages += 1
    print(messages, subject, written)


def seed_tag(rng):
    return "%08x" % rng.getrandbits(32)


main()
