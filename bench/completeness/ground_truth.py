#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Independent ground truth for the completeness benchmark (docs/completeness.md).

For every item of an estate it lists every e-mail address the item holds, found with the
Python standard library only (plus `pdftotext` from Debian's poppler-utils for PDF
attachments, when installed) - no maildsar code, no GMime. Output: JSON Lines, one object
per item:

    {"store": "maildir", "path": "/abs/file", "offset": 0, "length": 1234,
     "location": "cur|new|tmp|stray|mbox", "crlf": false,
     "addrs": {"alice@example.com": ["h:to", "received", "body"]},
     "ids": ["123.abc@host"]}

`addrs` maps each normalised address to the places it was seen (classes below); `ids`
lists address-shaped strings seen ONLY in identifier headers (Message-ID,
In-Reply-To, References, Content-ID, any field whose name ends in "-id" ...): those are identifiers, not addresses, and are
not counted as held (a find that matches only them is a false positive). So are cid:/mid:
references and URL path segments in bodies (https://lore.kernel.org/r/<message-id>), and the
base64 of signature fields (DKIM-Signature, ARC-Seal, X-Forwarded-Encrypted ..., where only
an "i=" identity counts).

Items:
- Maildir: every regular file below a Maildir folder - cur/, new/, files in the folder
  itself ("stray"), and files in tmp/ older than 36 hours ("tmp"; newer ones are
  deliveries in progress). Not items: dot-files (.keep), dovecot-*/courier*/maildirfolder/
  subscriptions and other files whose first line is not a header line.
- mbox: one item per message; a message starts at a From_ line ("From SENDER DATE", with a
  time) at the start of the file or after an empty line, and runs to the next one. The From_ line belongs to the item.
- Postfix log: one item per queue id per file (all its lines), a NOQUEUE line on its own;
  message-id=<...> values are identifiers, not addresses.
- PST: see --pst in docs/completeness.md (readpst -e -D output, one item per .eml).

Address rule (the "whole-address" rule of DESIGN section 3, applied independently):
an address is LOCAL@DOMAIN where LOCAL is a run of letters (Unicode too), digits and the
RFC 5322 atext signs except / ? & (which end it in URLs) - _%+.'=!#$*^`{|}~- (consecutive and
trailing dots kept: obsolete forms such as d..x@ and john.@ are addresses as written; a
leading quote, backtick, '=' or other sign is not part of it) and DOMAIN is dot-separated labels of letters,
digits and '-' (Unicode letters too) ending in a label of >= 2 letters, or an IPv4
literal in brackets. The character before LOCAL must not be one of those local-part
characters, the character after DOMAIN must not continue it. A run of three or more dots
in LOCAL is a text leader or ellipsis ("Smith.........smith@example.com" in a table), not
part of the address: the address starts after it; so does percent-encoded text (%22, %3D)
and a URL query name (?email=a@b is a@b); so does a key= of key=value text
(header.i=@x.org is no address, smtp.mailfrom=a@b is a@b; VERP a+b=c@d stays whole). A UUCP bang path (uunet!host!user@relay) is one
address, not user@relay. Normalised: lower-cased,
the subaddress after the first '+' dropped (alice+news@ is alice@), IDN domains in
ASCII (punycode) form.

Classes (where an address was seen): h:<field> for a header field (lower-cased name,
e.g. h:from, h:received, h:x-to), h:<field>:ew when only the RFC 2047-decoded value
shows it, from_ for the mbox From_ line, body (a text/plain part), html (a text/html part,
entities decoded), rfc822:<class> inside an attached message, att:<kind> inside an
attachment (txt, pdf, docx, xlsx, pptx, odt, zip, gzip, ics, vcf, uu for a uuencoded
block in a body).
"""
import argparse
import binascii
import email
import email.header
import email.policy
import gzip
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile

LOCAL = r"[\w%+.'=!#$*^`{|}~-]"
LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
ADDR = re.compile(
    r"(?<![\w%+.'=!#$*^`{|}~-])"
    r"(" + LOCAL + r"+)@("
    r"(?:" + LABEL + r"\.)+(?:[^\W\d_]{2,}|xn--[a-z0-9-]+)"
    r"|\[\d{1,3}(?:\.\d{1,3}){3}\])"
    r"(?![\w-]|\.[^\W_])", re.UNICODE)
MSGID_FIELDS = {"message-id", "in-reply-to", "references", "content-id", "resent-message-id",
                "original-message-id", "x-original-message-id", "supersedes",
                "x-message-id", "x-ms-exchange-organization-network-message-id", "thread-index",
                "x-google-original-message-id", "list-archive-id"}
# Opaque signature/hash fields: base64 that can look like LOCAL@DOMAIN; only a DKIM-style
# "i=" identity tag in them is an address.
OPAQUE_FIELDS = {"dkim-signature", "arc-seal", "arc-message-signature", "x-forwarded-encrypted",
                 "x-developer-signature", "x-google-smtp-source", "x-gm-message-state",
                 "x-google-dkim-signature", "x-ms-tnef-correlator", "x-gm-gg",
                 "x-microsoft-antispam-message-info", "domainkey-signature"}
DKIM_I = re.compile(r"(?:^|;)\s*i\s*=\s*([^;\s]+)")
NOT_ITEMS = re.compile(r"^(\.|dovecot|courier|maildirfolder$|subscriptions$|maildirsize$)")
HEADER_LINE = re.compile(rb"^(From |[!-9;-~]+:)")
TMP_AGE = 36 * 3600
MAX_DEPTH = 5
HAVE_PDFTOTEXT = shutil.which("pdftotext") is not None


SRS_HASH = r"[A-Za-z0-9+/]{1,32}"
SRS_HOST = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
SRS0_BODY = SRS_HASH + r"=[A-Za-z2-7]{2}=(" + SRS_HOST + r")=(.+)"
BATV = re.compile(r"prvs=[0-9A-Fa-f]{6,16}=(.+)$", re.I)
SRS0 = re.compile(r"SRS0[=+-]" + SRS0_BODY + r"$", re.I)
SRS1 = re.compile(r"SRS1[=+-]" + SRS_HASH + r"=" + SRS_HOST + r"=[=+-]" + SRS0_BODY + r"$", re.I)


def unwrap_batv_srs(local, domain):
    """The address a BATV-signed (prvs=TAG=local@domain) or SRS-rewritten
    (SRS0=HHH=TT=orig.domain=local@forwarder, SRS1=HHH=fwd==HHH=TT=orig.domain=local@forwarder)
    sender wraps: the mailbox of the person, as (local, domain); the input otherwise. Senders
    are written like this by the sending (BATV) or forwarding (SRS) MTA, never by the person."""
    m = BATV.match(local)
    if m:
        return m.group(1), domain
    m = SRS0.match(local) or SRS1.match(local)
    if m:
        return m.group(2), m.group(1)
    return local, domain


def normalise(local, domain):
    local = re.split(r"\.{3,}", local)[-1]  # "Name.......addr@" is a text leader
    local = re.split(r"%[0-9A-Fa-f]{2}", local)[-1]  # percent-encoded URL text before it
    local, domain = unwrap_batv_srs(local, domain)
    tag = re.match(r"[A-Za-z][A-Za-z0-9._-]{0,24}=(.*)$", local)
    if tag:  # key=value text: header.i=@x.org, smtp.mailfrom=a@b, i=a@b (not VERP a+b=c@d)
        local = tag.group(1)
    local = local.lstrip("'=`!#$*^{|}~")  # quoting signs before it (`a@b`, 'a@b') are not it
    if not local or local.strip(".") == "":
        return None
    base = local.split("+", 1)[0] or local
    domain = domain.rstrip(".").lower()
    if not domain.startswith("["):
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    return base.lower() + "@" + domain


def addresses(text, refs=None):
    """Addresses in text; `refs` (a set) collects address-shaped references that are not
    addresses: cid:/mid: URLs (a Content-ID or Message-ID) and URL path segments such as
    https://lore.kernel.org/r/<message-id>."""
    out = set()
    for m in ADDR.finditer(text):
        before = text[max(0, m.start() - 4):m.start()].lower()
        local = m.group(1)
        if before.endswith(("?", "&", ";")) and "=" in local:  # URL query: ?email=a@b
            local = local.split("=", 1)[1]
        if before.endswith(("cid:", "mid:", "/")):
            if refs is not None:
                a = normalise(local, m.group(2))
                if a:
                    refs.add(a)
            continue
        a = normalise(local, m.group(2))
        if a:
            out.add(a)
    return out


class Found:
    def __init__(self):
        self.addrs = {}
        self.ids = set()

    def add(self, text, cls):
        for a in addresses(text, self.ids):
            self.addrs.setdefault(a, set()).add(cls)

    def add_ids(self, text):
        self.ids |= addresses(text)


def decode_words(raw):
    """RFC 2047 decoding, tolerant: bad charsets fall back to latin-1, junk is kept."""
    try:
        parts = email.header.decode_header(raw)
    except Exception:  # malformed words: keep the raw text
        return raw
    out = []
    for data, charset in parts:
        if isinstance(data, str):
            out.append(data)
            continue
        for cs in (charset or "ascii", "utf-8", "latin-1"):
            try:
                out.append(data.decode(cs))
                break
            except (LookupError, UnicodeDecodeError):
                continue
    return " ".join(out) if len(parts) > 1 else "".join(out)


def raw_headers(data):
    """(name, unfolded raw value) for every header field, as bytes decoded latin-1/utf-8."""
    head = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
    text = head.decode("utf-8", "surrogateescape")
    fields = []
    for line in re.split(r"\r?\n", text):
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += " " + line.strip()
        elif ":" in line and not line.startswith("From "):
            name, value = line.split(":", 1)
            fields.append([name.strip().lower(), value.strip()])
    return [(n, v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")) for n, v in fields]


def scan_headers(data, found, prefix=""):
    for name, value in raw_headers(data):
        if name in MSGID_FIELDS or name.endswith(("message-id", "-id")):
            found.add_ids(value)
            continue
        cls = prefix + "h:" + name
        if name in OPAQUE_FIELDS or name.endswith("-correlator"):
            value = " ".join(DKIM_I.findall(value))
        plain = addresses(value, found.ids)
        for a in plain:
            found.addrs.setdefault(a, set()).add(cls)
        if "=?" in value:
            for a in addresses(decode_words(value), found.ids) - plain:
                found.addrs.setdefault(a, set()).add(cls + ":ew")


def part_text(part):
    payload = part.get_payload(decode=True)
    if payload is None:
        return ""
    cs = part.get_content_charset() or "utf-8"
    for c in (cs, "utf-8", "latin-1"):
        try:
            return payload.decode(c)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


INLINE = re.compile(r"</?(?:span|a|b|i|u|em|strong|font|small|big|sub|sup|wbr|code|tt|abbr)\b[^>]*>",
                    re.I)


def html_text(text):
    """The raw HTML, and the text a browser shows: inline tags vanish (noreply@<span>x</span>.com
    reads noreply@x.com), other tags separate words, entities decoded."""
    shown = re.sub(r"<[^>]+>", " ", INLINE.sub("", text))
    return text + "\n" + html.unescape(shown)


def xml_text(data):
    text = re.sub(rb"<[^>]+>", b" ", data).decode("utf-8", "replace")
    return html.unescape(text)


def office_text(data):
    """Text of an OOXML or ODF document: the XML members, tags dropped (unzip + XML)."""
    out = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist()[:2000]:
            if info.filename.endswith((".xml", ".rels")) and info.file_size < 50_000_000:
                out.append(xml_text(z.read(info)))
    return "\n".join(out)


def pdf_text(data):
    if not HAVE_PDFTOTEXT:
        return None
    try:
        r = subprocess.run(["pdftotext", "-q", "-", "-"], input=data, capture_output=True,
                           timeout=60)
        return r.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return ""


UU = re.compile(r"^begin [0-7]{3,4} (\S.*)\n((?:.*\n)*?)^end$", re.M)


def uu_blocks(text):
    for m in UU.finditer(text.replace("\r\n", "\n")):
        out = bytearray()
        for line in m.group(2).split("\n"):
            if not line or line == "`":
                continue
            try:
                out += binascii.a2b_uu(line)
            except binascii.Error:
                continue
        yield m.group(1), bytes(out)


def attachment(data, name, ctype, found, prefix, depth):
    """Text of an attachment the stdlib (or pdftotext) can decode."""
    low = (name or "").lower()
    kind = None
    text = None
    if ctype == "application/pdf" or low.endswith(".pdf") or data[:5] == b"%PDF-":
        kind, text = "pdf", pdf_text(data)
    elif data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = z.namelist()
            if "word/document.xml" in names:
                kind = "docx"
            elif "xl/workbook.xml" in names:
                kind = "xlsx"
            elif "ppt/presentation.xml" in names:
                kind = "pptx"
            elif "content.xml" in names and "mimetype" in names:
                kind = "odt"
            if kind:
                text = office_text(data)
            elif depth < MAX_DEPTH:
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    for info in z.infolist()[:1000]:
                        if info.file_size < 50_000_000 and not info.is_dir():
                            attachment(z.read(info), info.filename, None, found,
                                       prefix + "zip/", depth + 1)
                return
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError):
            return
    elif data[:2] == b"\x1f\x8b" and depth < MAX_DEPTH:
        try:
            inner = gzip.decompress(data)[:50_000_000]
        except (OSError, EOFError):
            return
        attachment(inner, low[:-3] if low.endswith(".gz") else low, None, found,
                   prefix + "gzip/", depth + 1)
        return
    elif low.endswith((".eml", ".msg.txt")) or ctype == "message/rfc822":
        scan_message(data, found, prefix + "rfc822:", depth + 1)
        return
    elif low.endswith(".ics") or ctype == "text/calendar":
        kind, text = "ics", data.decode("utf-8", "replace")
    elif low.endswith(".vcf") or ctype in ("text/vcard", "text/x-vcard"):
        kind, text = "vcf", data.decode("utf-8", "replace")
    elif (ctype or "").startswith("text/") or low.endswith((".txt", ".csv", ".log", ".htm",
                                                           ".html", ".xml", ".patch", ".diff")):
        kind, text = "txt", data.decode("utf-8", "replace")
        if low.endswith((".htm", ".html", ".xml")) or ctype == "text/html":
            text = html_text(text)
    if kind and text:
        found.add(text, prefix + "att:" + kind)


def scan_message(data, found, prefix="", depth=0):
    scan_headers(data, found, prefix)
    try:
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
        scan_parts(msg, found, prefix, depth)
    except RecursionError:  # absurdly deep MIME nesting: what was seen so far counts
        pass


def scan_parts(msg, found, prefix, depth):
    """Walk the MIME tree; attached messages get their headers and parts scanned too."""
    try:
        ctype = msg.get_content_type()
    except Exception:
        ctype = "text/plain"
    payload = msg.get_payload()
    if isinstance(payload, list):
        for sub in payload[:10000]:
            if not isinstance(sub, email.message.Message):
                continue
            if ctype in ("message/rfc822", "message/global") and depth < MAX_DEPTH:
                try:
                    raw = sub.as_bytes()
                except Exception:
                    raw = sub.as_string().encode("utf-8", "replace")
                scan_message(raw, found, prefix + "rfc822:", depth + 1)
            elif ctype.startswith("message/"):  # delivery-status, disposition-notification
                found.add(sub.as_string(), prefix + "att:" + ctype.split("/")[1])
            elif depth < 50:
                scan_parts(sub, found, prefix, depth)
        return
    for part in (msg,):
        try:
            ctype = part.get_content_type()
        except Exception:
            ctype = "text/plain"
        disp = str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        try:
            name = part.get_filename()
        except Exception:
            name = None
        if ctype in ("message/rfc822", "message/global"):  # not parsed as a message: raw text
            raw = part.get_payload(decode=True) or str(part.get_payload()).encode("utf-8", "replace")
            if depth < MAX_DEPTH:
                scan_message(raw, found, prefix + "rfc822:", depth + 1)
            continue
        if ctype in ("text/plain", "text/html", "text/enriched", "text/richtext") and \
                disp != "attachment" and not (name and ctype != "text/plain" and disp != "inline"):
            try:
                text = part_text(part)
            except Exception:
                text = ""
            if ctype == "text/html":
                found.add(html_text(text), prefix + "html")
            else:
                found.add(text, prefix + "body")
                for uname, udata in uu_blocks(text):
                    attachment(udata, uname, None, found, prefix + "uu/", depth + 1)
            continue
        if ctype.startswith("message/"):  # delivery-status, disposition-notification ...
            found.add(str(part.get_payload()), prefix + "att:" + ctype.split("/")[1])
            continue
        try:
            data = part.get_payload(decode=True)
        except Exception:
            data = None
        if data:
            attachment(data, name, ctype, found, prefix, depth)


def item(store, path, data, location, offset=0):
    found = Found()
    if store == "mbox":
        first, _, rest = data.partition(b"\n")
        found.add(first.decode("utf-8", "replace"), "from_")
        scan_message(rest, found)
    else:
        scan_message(data, found)
    return {"store": store, "path": path, "offset": offset, "length": len(data),
            "location": location, "crlf": b"\r\n" in data[:4096],
            "addrs": {a: sorted(c) for a, c in sorted(found.addrs.items())},
            "ids": sorted(found.ids - set(found.addrs))}


def looks_like_message(path):
    try:
        with open(path, "rb") as f:
            return bool(HEADER_LINE.match(f.readline()))
    except OSError:
        return False


def maildir_items(root, now):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = os.path.basename(dirpath)
        for fn in sorted(filenames):
            path = os.path.join(dirpath, fn)
            if NOT_ITEMS.match(fn) or not os.path.isfile(path) or os.path.islink(path):
                continue
            if base in ("cur", "new"):
                location = base
            elif base == "tmp":
                if now - os.path.getmtime(path) < TMP_AGE:
                    continue
                location = "tmp"
            else:
                location = "stray"
            if location in ("stray", "tmp") and not looks_like_message(path):
                continue
            with open(path, "rb") as f:
                yield item("maildir", path, f.read(), location)


# A From_ line: "From SENDER DATE" with a time in it; an unescaped body line such as
# "From Black's Law Dictionary:" after an empty line is not one (mboxo ambiguity).
FROM_LINE = re.compile(rb"From \S+ +[^\r\n]*\d\d?:\d\d")


def mbox_items(path):
    with open(path, "rb") as f:
        data = f.read()
    starts = [0] if FROM_LINE.match(data) else []
    starts += [m.start() + 1 for m in re.finditer(rb"\n(?=From )", data)
               if (data[m.start() - 1:m.start()] == b"\n" or data[m.start() - 2:m.start()] == b"\n\r")
               and FROM_LINE.match(data, m.start() + 1)]
    starts = sorted(set(starts))
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < len(starts) else len(data)
        yield item("mbox", path, data[s:e], "mbox", s)


def pst_items(path, workdir):
    """readpst -e -D: one .eml file per item; the item key is its folder path + index."""
    out = os.path.join(workdir, re.sub(r"\W", "_", path))
    shutil.rmtree(out, ignore_errors=True)  # readpst never overwrites: start empty
    os.makedirs(out, exist_ok=True)
    subprocess.run(["readpst", "-e", "-D", "-q", "-o", out, path], capture_output=True)
    for dirpath, _, filenames in os.walk(out):
        for fn in sorted(filenames, key=lambda s: (len(s), s)):
            with open(os.path.join(dirpath, fn), "rb") as f:
                data = f.read()
            if fn.endswith((".vcf", ".ics")):  # a contact or calendar entry: plain text
                found = Found()
                found.add(data.decode("utf-8", "replace"), "pst-" + fn.rsplit(".", 1)[1])
                it = {"store": "pst", "path": path, "offset": 0, "length": len(data),
                      "location": "pst", "crlf": False,
                      "addrs": {a: sorted(c) for a, c in sorted(found.addrs.items())}, "ids": []}
            else:
                it = item("pst", path, data, "pst")
            it["pst_entry"] = os.path.relpath(os.path.join(dirpath, fn), out)
            yield it


POSTFIX = re.compile(r"postfix(?:/[\w-]+)+\[\d+\]:? ([0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}|NOQUEUE):")
LOG_MSGID = re.compile(r"message-id=<[^>]*>")


def postfix_items(path):
    """One item per queue id (all its lines in this file); a NOQUEUE line is its own item."""
    groups = {}
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            line = raw.decode("utf-8", "replace")
            m = POSTFIX.search(line)
            if not m:
                continue
            key = m.group(1) if m.group(1) != "NOQUEUE" else f"NOQUEUE:{n}"
            groups.setdefault(key, []).append((n, line))
    for key, lines in groups.items():
        found = Found()
        for _, line in lines:
            for mid in LOG_MSGID.findall(line):
                found.add_ids(mid)
            found.add(LOG_MSGID.sub(" ", line), "log")
        yield {"store": "maillog", "path": path, "offset": lines[0][0], "length": len(lines),
               "lines": [n for n, _ in lines], "queue_id": key.split(":")[0],
               "location": "log", "crlf": False,
               "addrs": {a: sorted(c) for a, c in sorted(found.addrs.items())},
               "ids": sorted(found.ids - set(found.addrs))}


def main():
    ap = argparse.ArgumentParser(description="list every address every item holds")
    ap.add_argument("--maildir", action="append", default=[], help="Maildir folder (recursive)")
    ap.add_argument("--mbox", action="append", default=[], help="mbox file")
    ap.add_argument("--pst", action="append", default=[], help="PST/OST file (needs readpst)")
    ap.add_argument("--postfix-log", action="append", default=[], help="Postfix syslog file")
    ap.add_argument("--workdir", default="/tmp/recall-gt", help="scratch for readpst output")
    ap.add_argument("--out", default="-")
    a = ap.parse_args()
    out = sys.stdout if a.out == "-" else open(a.out, "w")
    now = time.time()
    n = 0
    for root in a.maildir:
        for it in maildir_items(os.path.abspath(root), now):
            out.write(json.dumps(it) + "\n")
            n += 1
    for path in a.mbox:
        for it in mbox_items(os.path.abspath(path)):
            out.write(json.dumps(it) + "\n")
            n += 1
    for path in a.postfix_log:
        for it in postfix_items(os.path.abspath(path)):
            out.write(json.dumps(it) + "\n")
            n += 1
    for path in a.pst:
        for it in pst_items(os.path.abspath(path), a.workdir):
            out.write(json.dumps(it) + "\n")
            n += 1
    print(f"{n} items; pdftotext {'used' if HAVE_PDFTOTEXT else 'NOT installed: PDF text not counted'}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
