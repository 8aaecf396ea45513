#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""An independent check for the erasure tests: does any file under ROOT still hold the data
subject Alice Smith? It shares no code with maildsar: Python's own gzip and email packages
decode compressed files, MIME parts (base64, quoted-printable, RFC 2047/2231, charsets) and
attached messages. Prints one line per finding as "path: what"; exit 0 when clean, 1 otherwise.

usage: independent_scan.py ROOT [--skip PATH]... [--skip-maildir-tmp] [--pattern KIND=REGEX]...
(--pattern replaces the built-in patterns of Alice Smith; case-insensitive)
"""
import email
import email.policy
import gzip
import html
import os
import re
import sys
import unicodedata

PATTERNS = [
    ("email", re.compile(r"(?<![a-z0-9._%+=-])alice(\+[a-z0-9._-]*)?\.smith@example\.com(?![a-z0-9.-]*[a-z0-9])", re.I)),
    ("email-idn", re.compile(r"(?<![a-z0-9._%+=-])alice@(bucher|xn--bcher-kva)\.example", re.I)),
    ("name", re.compile(r"\balice\s+smith\b|\bsmith\s*,\s*alice\b", re.I)),
    ("phone", re.compile(r"\+?44\D{0,3}20\D{0,3}7946\D{0,3}0123|\b020\D{0,3}7946\D{0,3}0123\b")),
    ("ip", re.compile(r"(?<![0-9.])203\.0\.113\.45(?![0-9])")),
]


def fold(text):
    text = html.unescape(text)
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def texts_of_message(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = []

    def walk(m):
        for key, value in m.items():
            out.append(f"{key}: {value}")
        for part in m.walk():
            if part is not m:
                for key, value in part.items():
                    out.append(f"{key}: {value}")
            name = part.get_filename()
            if name:
                out.append(name)
            if part.get_content_maintype() == "multipart":
                continue
            if part.get_content_type() == "message/rfc822":
                continue
            try:
                payload = part.get_payload(decode=True) or b""
            except Exception:
                payload = b""
            charset = part.get_content_charset() or "utf-8"
            try:
                out.append(payload.decode(charset, "replace"))
            except LookupError:
                out.append(payload.decode("latin-1"))
    walk(msg)
    return out


def scan_bytes(data):
    found = set()
    candidates = [data.decode("utf-8", "replace"), data.decode("latin-1")]
    if b"\n\n" in data or b"\r\n\r\n" in data:
        try:
            candidates += texts_of_message(data)
        except Exception:
            pass
    for text in candidates:
        text = fold(text)
        for kind, pattern in PATTERNS:
            if pattern.search(text):
                found.add(kind)
    return found


def main():
    root = sys.argv[1]
    custom = [s for i, s in enumerate(sys.argv) if i > 1 and sys.argv[i - 1] == "--pattern"]
    if custom:
        PATTERNS[:] = [(c.split("=", 1)[0], re.compile(c.split("=", 1)[1], re.I)) for c in custom]
    skip = [os.path.abspath(s) for i, s in enumerate(sys.argv) if i > 1 and sys.argv[i - 1] == "--skip"]
    dirty = False
    skip_tmp = "--skip-maildir-tmp" in sys.argv
    for dirpath, dirnames, filenames in os.walk(root):
        here = os.path.abspath(dirpath)
        if any(here == s or here.startswith(s + os.sep) for s in skip):
            continue
        if skip_tmp and os.path.basename(here) == "tmp" and os.path.isdir(os.path.join(here, "..", "cur")):
            continue
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or os.path.abspath(path) in skip:
                continue
            with open(path, "rb") as f:
                data = f.read()
            if name.endswith(".gz"):
                try:
                    data = gzip.decompress(data)
                except Exception:
                    pass
            # mbox: scan message by message too
            chunks = [data]
            if data.startswith(b"From "):
                # each message without its "From " separator line, so that its MIME is decoded
                chunks += [c.split(b"\n", 1)[-1] for c in re.split(rb"(?m)^From ", data)[1:]]
            found = set()
            for chunk in chunks:
                found |= scan_bytes(chunk)
            if found:
                dirty = True
                print(f"{path}: {', '.join(sorted(found))}")
    sys.exit(1 if dirty else 0)


if __name__ == "__main__":  # also imported (tests/unit/redaction/check_redacted.py)
    main()
