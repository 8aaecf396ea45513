#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Independent check of erasure by redaction (issue 18 item 3); shares no code with maildsar.

Each line of LIST is "ORIGINAL<TAB>REDACTED<TAB>ADDRESS": a message as stored and the same
message after `erase` masked ADDRESS in it. Checks, with Python's email package:

1. the redacted message parses and shows ADDRESS in no decoding (tests/e2e/independent_scan.py);
2. what did not hold ADDRESS is byte-identical: every header field of every part whose raw and
   decoded value do not show ADDRESS (signature fields DKIM-Signature / ARC-* excepted: they
   are removed once anything changed) appears with the same raw, folded bytes in the same part
   of the redacted message; every leaf part whose headers and decoded payload do not show
   ADDRESS keeps its raw (still transfer-encoded) payload bytes;
3. the structure stays: the same number of parts in the same order.

Prints one line per finding and a summary; exit 0 when clean, 1 otherwise.

usage: check_preserved.py LIST
"""
import email
import email.policy
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "e2e"))
import independent_scan  # noqa: E402

dropped_malformed = 0  # header lines that are neither a field nor a continuation, not kept
SIGNATURE_FIELDS = ("dkim-signature", "x-google-dkim-signature", "domainkey-signature", "arc-seal",
                    "arc-message-signature")


def shows(text, pattern):
    return bool(pattern.search(text))


def decoded_header(value):
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:
        return value


def payload_text(part):
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if data is None:
        return ""
    return data.decode("utf-8", "replace") + "\n" + data.decode("latin-1", "replace")


def parts(msg):
    # An empty leaf (no header, no content: a boundary right after a boundary) holds nothing;
    # GMime does not write it again.
    return [p for p in msg.walk() if p.is_multipart() or p.keys() or p.get_payload(decode=False)]


def missing_lines(original, redacted, loose):
    """Lines of `original` that do not show the address and are not in `redacted`: signature
    fields (removed on purpose) and MIME delimiter lines of empty parts left aside."""
    after = set(redacted.decode("latin-1").splitlines())
    lines = original.decode("latin-1").splitlines()
    out = []
    in_signature = False
    in_header = True
    for line in lines:
        if line == "":
            in_header = False
        if in_header and line[:1] not in (" ", "\t") and ":" not in line and line not in after:
            # Not a field and not a continuation: no parser reads it as part of the header, and
            # GMime does not write it again. Counted apart (the summary says how many).
            global dropped_malformed
            dropped_malformed += 1
            continue
        if in_signature and line[:1] in (" ", "\t"):
            continue
        in_signature = line.split(":", 1)[0].strip().lower() in SIGNATURE_FIELDS
        if in_signature or shows(line, loose) or line in after:
            continue
        if line.startswith("--") and (line + "--") in after:
            continue  # the opening delimiter of an empty part
        out.append(line)
    return out


def raw_headers(part):
    # compat32 keeps each field's value as written, folding included
    return [(name, value) for name, value in part._headers]


def main():
    findings = 0
    checked = 0
    kept_headers = 0
    kept_parts = 0
    with open(sys.argv[1], encoding="utf-8") as listing:
        for line in listing:
            original_path, redacted_path, address = line.rstrip("\n").split("\t", 2)
            original = open(original_path, "rb").read()
            if original.startswith(b"\xef\xbb\xbf"):
                original = original[3:]  # a byte order mark: dropped (it hides the first field's name)
            redacted = open(redacted_path, "rb").read()
            # The address, also with a subaddress ("local+tag@domain", as a VERP bounce address
            # is): the same mailbox to the index and to erase.
            local, domain = address.rsplit("@", 1)
            pattern = re.compile(r"(?<![a-z0-9._%+=-])" + re.escape(local) + r"(?:\+[^@\s<>\"]*)?@" +
                                 re.escape(domain) + r"(?![a-z0-9-]*[a-z0-9])", re.I)
            # What erase may change: also the address right after a '=' or '_' ("Owner=a@b" in a
            # label field), which a mail address tokeniser takes as the address.
            loose = re.compile(r"(?<![a-z0-9.%+-])" + re.escape(local) + r"(?:\+[^@\s<>\"]*)?@" +
                               re.escape(domain) + r"(?![a-z0-9-]*[a-z0-9])", re.I)
            independent_scan.PATTERNS = [("email", pattern)]
            for what in independent_scan.scan_bytes(redacted):
                print(f"{redacted_path}: {address}: {what}")
                findings += 1
            try:
                before = email.message_from_bytes(original, policy=email.policy.compat32)
                after = email.message_from_bytes(redacted, policy=email.policy.compat32)
                before_parts = parts(before)
                after_parts = parts(after)
            except Exception as e:  # reported as a finding
                print(f"{redacted_path}: does not parse: {e}")
                findings += 1
                continue
            checked += 1
            if len(before_parts) != len(after_parts):
                # Python and GMime read a malformed structure differently (a header line without
                # its continuation blank, an empty part): then line by line instead.
                missing = missing_lines(original, redacted, loose)
                for text in missing[:5]:
                    print(f"{redacted_path}: line without the address lost: {text[:80]!r}")
                findings += len(missing)
                continue
            for i, (b, a) in enumerate(zip(before_parts, after_parts)):
                after_fields = raw_headers(a)
                part_named = False
                # A leaf whose content shows the address is rewritten (or withheld: replaced by a
                # text/plain note), and its Content-* fields with it.
                content_named = not b.is_multipart() and shows(payload_text(b), loose)
                for name, value in raw_headers(b):
                    if shows(value, loose) or shows(decoded_header(value), loose):
                        part_named = True
                        continue
                    if name.lower() in SIGNATURE_FIELDS:
                        continue
                    if content_named and name.lower().startswith("content-"):
                        continue
                    if (name, value) in after_fields:
                        kept_headers += 1
                    else:
                        print(f"{redacted_path}: part {i}: header {name} changed although it does not show "
                              f"{address}: {value[:80]!r}")
                        findings += 1
                if b.is_multipart() or a.is_multipart():
                    continue
                if part_named or shows(payload_text(b), loose):
                    continue
                raw_before = b.get_payload(decode=False)
                raw_after = a.get_payload(decode=False)
                if raw_before == raw_after:
                    kept_parts += 1
                elif not isinstance(raw_before, str) or raw_before.rstrip("\r\n") != raw_after.rstrip("\r\n"):
                    # (a trailing line end before the next boundary is the boundary's, not the part's)
                    print(f"{redacted_path}: part {i} ({b.get_content_type()}) changed although it does not show "
                          f"{address}")
                    findings += 1
                else:
                    kept_parts += 1
    print(f"checked {checked} message(s): {kept_headers} header field(s) and {kept_parts} part(s) without the "
          f"address kept byte for byte; {dropped_malformed} malformed header line(s) not kept; {findings} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
