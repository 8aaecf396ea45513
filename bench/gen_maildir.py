#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Generates a synthetic Maildir estate for benchmarks: N messages spread over mailboxes and
sub-folders, plain and multipart, with fictional names, addresses, phones and IPs.
Deterministic (seeded). Usage: gen_maildir.py ROOT N [--documents]

--documents: one message in 10 also carries a document attachment (issue 11 class 5): a PDF
naming a person (unique), a DOCX (unique), or the same "policy.pdf" forwarded again and again
(identical bytes, so the attachment-text cache extracts it once)."""
import base64
import io
import os
import random
import sys
import zipfile

FIRST = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
         "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Zoë"]
LAST = ["Smith", "Jones", "White", "Brown", "Taylor", "Müller", "García", "Nowak", "Dubois", "Rossi"]
WORDS = ("report figures meeting contract draft invoice payment schedule project review budget "
         "customer supplier order delivery update agenda minutes proposal quarterly holiday").split()
DOMAINS = ["example.com", "partner.example", "supplier.example", "example.org"]


def person(rng):
    f, l = rng.choice(FIRST), rng.choice(LAST)
    local = (f + "." + l).lower().encode("ascii", "ignore").decode() or "user"
    return f"{f} {l}", f"{local}@{rng.choice(DOMAINS)}"


def enc_name(name):
    try:
        name.encode("ascii")
        return name
    except UnicodeEncodeError:
        import base64
        return "=?UTF-8?B?" + base64.b64encode(name.encode()).decode() + "?="


def paragraph(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def pdf(lines):
    content = "BT /F1 12 Tf 72 720 Td 14 TL\n" + "".join(f"({l}) Tj T*\n" for l in lines) + "ET\n"
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
            "/Contents 4 0 R >>",
            f"<< /Length {len(content)} >>\nstream\n{content}endstream",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offs = "%PDF-1.4\n", []
    for k, o in enumerate(objs):
        offs.append(len(out))
        out += f"{k + 1} 0 obj\n{o}\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n" + "".join(f"{o:010d} 00000 n \n" for o in offs)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return out.encode("latin-1")


def docx(paragraphs):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"/>')
        z.writestr("word/document.xml", '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats'
                   '.org/wordprocessingml/2006/main"><w:body>' +
                   "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs) + "</w:body></w:document>")
    return buf.getvalue()


POLICY = None


def document(i, fn, fa):
    """(name, MIME type, bytes) of message i's document attachment, or None."""
    global POLICY
    if i % 10 != 3:
        return None
    kind = (i // 10) % 3
    if kind == 0:
        return ("payslip.pdf", "application/pdf",
                pdf([f"Payslip {i}", f"Employee: {fn.encode('ascii', 'ignore').decode()}", fa]))
    if kind == 1:
        return ("note.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                docx([f"Note {i} about {fn}", f"Reach {fa} on +44 20 7946 {i % 10000:04d}"]))
    if POLICY is None:
        POLICY = pdf(["Mail policy of Example Ltd"] + [f"Rule {k}: be kind" for k in range(40)])
    return ("policy.pdf", "application/pdf", POLICY)


def message(rng, i, documents=False):
    fn, fa = person(rng)
    tos = [person(rng) for _ in range(rng.randint(1, 3))]
    day = 1 + i % 28
    hdr = [
        f"Return-Path: <{fa}>",
        f"Received: from client{i % 250}.example.net (client{i % 250}.example.net "
        f"[198.51.100.{i % 250}])\n\tby mx.example.com (Postfix) with ESMTPS id {i:X}\n\t"
        f"for <{tos[0][1]}>; Tue, {day:02d} Nov 2023 10:{i % 60:02d}:00 +0000",
        f"From: {enc_name(fn)} <{fa}>",
        "To: " + ", ".join(f"{enc_name(n)} <{a}>" for n, a in tos),
        f"Subject: {paragraph(rng, 4)}",
        f"Date: Tue, {day:02d} Nov 2023 10:{i % 60:02d}:00 +0000",
        f"Message-ID: <bench-{i}@example.com>",
        "MIME-Version: 1.0",
    ]
    body = "\n\n".join(paragraph(rng, rng.randint(20, 60)) for _ in range(rng.randint(2, 8)))
    body += f"\n\nCall me on +44 20 7946 {i % 10000:04d}.\n{fn}\n"
    doc = document(i, fn, fa) if documents else None
    if doc:
        name, mime, data = doc
        hdr.append('Content-Type: multipart/mixed; boundary="=-b"')
        b64 = base64.encodebytes(data).decode()
        text = ("\n--=-b\nContent-Type: text/plain; charset=utf-8\n\n" + body +
                f"\n--=-b\nContent-Type: {mime}; name=\"{name}\"\nContent-Transfer-Encoding: base64\n"
                f"Content-Disposition: attachment; filename=\"{name}\"\n\n" + b64 + "--=-b--\n")
    elif i % 5 == 0:
        hdr.append('Content-Type: multipart/mixed; boundary="=-b"')
        att = "\n".join(paragraph(rng, 12) for _ in range(10))
        text = ("\n--=-b\nContent-Type: text/plain; charset=utf-8\n\n" + body +
                "\n--=-b\nContent-Type: text/plain; name=\"notes.txt\"\n"
                "Content-Disposition: attachment; filename=\"notes.txt\"\n\n" + att + "\n--=-b--\n")
    else:
        hdr.append("Content-Type: text/plain; charset=utf-8")
        hdr.append("Content-Transfer-Encoding: 8bit")
        text = "\n" + body
    return "\n".join(hdr) + "\n" + text


def main():
    root, n = sys.argv[1], int(sys.argv[2])
    documents = "--documents" in sys.argv[3:]
    rng = random.Random(20261128)
    boxes = [f"user{b:02d}" for b in range(20)]
    folders = ["", ".Sent", ".Archive"]
    for b in boxes:
        for f in folders:
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(root, b, "Maildir", f, sub), exist_ok=True)
    for i in range(n):
        box = boxes[i % len(boxes)]
        folder = folders[(i // len(boxes)) % len(folders)]
        sub = "new" if i % 10 == 0 else "cur"
        name = f"{1700000000 + i}.M{i}P{i % 97}.bench" + (":2,S" if sub == "cur" else "")
        with open(os.path.join(root, box, "Maildir", folder, sub, name), "w", encoding="utf-8") as fh:
            fh.write(message(rng, i, documents))


if __name__ == "__main__":
    main()
