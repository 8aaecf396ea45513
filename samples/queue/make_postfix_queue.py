#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes the Postfix queue files of samples/queue/postfix from the record format that Postfix
documents (src/global/rec_type.h, record.c): each record is a type byte, the data length in
7-bit groups (low-order first, high bit = more), the data. `postcat` (Debian postfix 3.7.11)
reads every file written here; see samples/queue/README.md for the check.

Usage: make_postfix_queue.py OUT_DIR"""
import os
import sys


def record(rtype: str, data: bytes) -> bytes:
    out = bytearray(rtype.encode())
    n = len(data)
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            break
    return bytes(out) + data


def queue_file(arrival, sender, recipients, lines, attrs=(), appended=(), extracted=()):
    """One cleanup-style queue file; `appended` recipients go behind the end record and are
    reached through a pointer record (as cleanup does when a milter adds recipients)."""
    env = [record("T", b"%d 0" % arrival)]
    env += [record("A", b"create_time=%d" % arrival)]
    env += [record("A", a.encode()) for a in attrs]
    env.append(record("S", sender.encode()))
    for r in recipients:
        env.append(record("O", r.encode()))
        env.append(record("R", r.encode()))
    ptr_at = None
    # cleanup reserves a pointer record (value 0 = go nowhere) for later additions
    env.append("PTR")
    body = [record("M", b"")]
    content = b""
    for line in lines:
        raw = line.encode()
        # long lines are split into L records (no newline) + a final N record, as cleanup does
        while len(raw) > 60:
            body.append(record("L", raw[:60]))
            content += raw[:60]
            raw = raw[60:]
        body.append(record("N", raw))
        content += raw + b"\n"
    tail = [record("X", b"")] + [record("R", r.encode()) for r in extracted] + [record("E", b"")]

    def assemble(ptr_value):
        out = bytearray()
        size_at = len(out)
        out += record("C", b"%15d %15d %15d %15d %15d %15d" % (0, 0, 0, 0, 0, 0))
        for e in env:
            if e == "PTR":
                out += record("p", b"%15d" % ptr_value)
            else:
                out += e
        data_offset = len(out)
        for b in body:
            out += b
        for t in tail:
            out += t
        size = record("C", b"%15d %15d %15d %15d %15d %15d" % (len(content), data_offset,
                                                                 len(recipients) + len(appended), 0,
                                                                 len(content), 0))
        out[size_at:size_at + len(size)] = size
        return out

    out = assemble(0)
    if appended:
        # the reserved pointer points at the appended records, which point back to after it
        ptr_pos = out.index(b"p" + bytes([15]) + b" " * 14 + b"0")
        back = ptr_pos + 2 + 15
        target = len(out)
        out = assemble(target)
        extra = bytearray()
        for r in appended:
            extra += record("R", r.encode())
        extra += record("p", b"%15d" % back)
        out += extra
    return bytes(out)


def main():
    out = sys.argv[1]
    files = {
        "deferred/A/A1B2C3D4E5": queue_file(
            1700000000, "alice.smith@example.com", ["bob@example.org"],
            ["Received: from mail.example.com (mail.example.com [203.0.113.45])",
             "\tby mx1.example.net (Postfix) with ESMTPS id A1B2C3D4E5",
             "\tfor <bob@example.org>; Tue, 14 Nov 2023 22:13:20 +0000 (UTC)",
             "From: Alice Smith <alice.smith@example.com>",
             "To: Bob <bob@example.org>",
             "Subject: Deferred hello",
             "Message-ID: <queued-1@example.com>",
             "Date: Tue, 14 Nov 2023 22:13:20 +0000",
             "",
             "Hello Bob, please call me on +44 20 7946 0123. This body line is long enough to be "
             "written as several L records followed by an N record."],
            attrs=("log_client_name=mail.example.com", "log_client_address=203.0.113.45",
                   "rewrite_context=remote")),
        "hold/F00BA12345": queue_file(
            1700003600, "carol@example.net", ["dave@example.org"],
            ["From: Carol <carol@example.net>",
             "To: Dave <dave@example.org>",
             "Subject: Held",
             "Message-ID: <queued-2@example.net>",
             "",
             "Nothing about anyone else."],
            appended=("alice.smith@example.com",)),
    }
    for rel, data in files.items():
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)


if __name__ == "__main__":
    main()
