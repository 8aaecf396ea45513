#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Independent check of redacted messages (issue 18 item 1): shares no code with maildsar. Each
line of the LIST file is "PATH<TAB>ADDRESS"; the message at PATH must parse with Python's email
package and must not show ADDRESS in any decoding that tests/e2e/independent_scan.py looks at
(headers decoded from RFC 2047 and unfolded, every part's payload decoded from base64 or
quoted-printable and its charset, attachment names (RFC 2231), HTML entities, attached
messages). Prints one line per finding; exit 0 when clean, 1 otherwise.

usage: check_redacted.py LIST
"""
import email
import email.policy
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "e2e"))
import independent_scan  # noqa: E402  (the e2e suite's scanner: its decoding, our patterns)


def main():
    findings = 0
    checked = 0
    with open(sys.argv[1], encoding="utf-8") as listing:
        for line in listing:
            path, address = line.rstrip("\n").split("\t", 1)
            raw = open(path, "rb").read()
            try:
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                list(msg.walk())
            except Exception as e:  # pragma: no cover - reported as a finding
                print(f"{path}: does not parse with Python's email package: {e}")
                findings += 1
                continue
            if not msg.keys():
                print(f"{path}: Python's email package sees no header")
                findings += 1
            pattern = re.compile(r"(?<![a-z0-9._%+=-])" + re.escape(address) + r"(?![a-z0-9-]*[a-z0-9])", re.I)
            independent_scan.PATTERNS = [("email", pattern)]
            for what in independent_scan.scan_bytes(raw):
                print(f"{path}: {address}: {what}")
                findings += 1
            checked += 1
    print(f"checked {checked} message(s), {findings} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
