#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes maildsar's man pages from the Markdown reference, so the two cannot drift.

    mangen.py maildsar.1 --docs DOCS_DIR --version V --out FILE
    mangen.py maildsar.json.5 --docs DOCS_DIR --version V --out FILE
    mangen.py ... --check FILE      exit 1 when FILE differs from what would be written

maildsar(1) is docs/cli.md (every command: its synopsis, options and behaviour; the sections
"Environment", "Files" and "Examples") plus the table of docs/exit-codes.md (EXIT STATUS).
maildsar.json(5) is docs/config.md. The Markdown files are the one source: edit them, never
the generated pages (CMake rebuilds the pages when a source changes; the ctest "man_fresh"
fails on a page that differs from its source).

The converter knows the Markdown that these files use, nothing more: '#'/'##'/'###' headings,
paragraphs, '- ' lists (items continued and nested by two spaces), tables, code blocks
indented by four spaces, `code`, **bold**, *italic*, [links](url) and HTML comments. Anything
else is an error, so that a construct the converter would mangle fails the build instead.
"""

import argparse
import re
import sys
import unicodedata
from pathlib import Path

# Punctuation that groff names on every output device (utf8, ascii, latin1, ps).
GLYPHS = {
    "\u2014": r"\(em", "\u2013": r"\(en", "\u2026": "...", "\u2192": r"\(->",
    "\u2190": r"\(<-", "\u00d7": r"\(mu", "\u2264": r"\(<=", "\u2265": r"\(>=",
    "\u2018": r"\(oq", "\u2019": r"\(cq", "\u201c": r"\(lq", "\u201d": r"\(rq",
    "\u00a0": r"\~",
}
# Everything else non-ASCII is written \[uXXXX] and declared with a fallback (.fchar) for a
# device that lacks the glyph (man under LANG=C renders with -Tascii).
TRANSLIT = {
    "\u00df": "ss", "\u00e6": "ae", "\u00c6": "AE", "\u00f8": "o", "\u00d8": "O",
    "\u00a7": "S.", "\u0412": "V", "\u0445": "kh", "\u043e": "o", "\u0434": "d",
    "\u044f": "ya", "\u0449": "shch", "\u0438": "i", "\u0435": "e",
}


def fallback(ch):
    if ch in TRANSLIT:
        return TRANSLIT[ch]
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return base if base.isascii() and base else "?"


class MarkdownError(Exception):
    pass


USED = set()  # non-ASCII characters written as \\[uXXXX]


def glyphs(text):
    out = []
    for ch in text:
        if ord(ch) < 128:
            out.append(ch)
        elif ch in GLYPHS:
            out.append(GLYPHS[ch])
        else:
            USED.add(ch)
            out.append(r"\[u%04X]" % ord(ch))
    return "".join(out)


def escape_literal(text):
    """Text shown as typed (code spans and blocks): backslashes and hyphens literal."""
    return glyphs(text.replace("\\", r"\e").replace("-", r"\-"))


def inline(text):
    """One line of Markdown prose to roff (fonts, escapes); the caller protects line starts."""
    parts = text.split("`")
    if len(parts) % 2 == 0:
        raise MarkdownError(f"unbalanced ` in: {text}")
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 1:
            out.append(r"\fB" + escape_literal(part) + r"\fP")
            continue
        part = part.replace("\\", r"\e")
        part = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1", part)
        part = re.sub(r"\*\*(.+?)\*\*", r"\\fB\1\\fP", part, flags=re.S)
        part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\\fI\1\\fP", part, flags=re.S)
        out.append(glyphs(part))
    return "".join(out)


def line_out(text):
    """A text line for roff: a leading '.' or '\'' would be read as a request."""
    text = text.strip()
    if text.startswith((".", "'")):
        text = r"\&" + text
    return text


def split_row(line):
    """Cells of a table row; '|' inside a code span is part of the cell."""
    cells, cell, in_code = [], "", False
    body = line.strip()
    if not (body.startswith("|") and body.endswith("|")):
        raise MarkdownError(f"table row must start and end with '|': {line}")
    inner = body[1:-1]
    for k, ch in enumerate(inner):
        if ch == "\\" and inner[k + 1:k + 2] == "|":
            continue  # GFM's \| : a '|' inside a cell
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code and not (k > 0 and inner[k - 1] == "\\"):
            cells.append(cell.strip())
            cell = ""
        else:
            cell += ch
    cells.append(cell.strip())
    return cells


def indent_of(line):
    return len(line) - len(line.lstrip(" "))


def render_blocks(lines):
    """Markdown block lines (already dedented) to a list of roff lines."""
    out = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        ind = indent_of(line)
        stripped = line.strip()
        if ind >= 4:  # code block
            block = []
            while i < n and (not lines[i].strip() or indent_of(lines[i]) >= 4):
                block.append(lines[i][4:] if lines[i].strip() else "")
                i += 1
            while block and not block[-1]:
                block.pop()
            out += [".PP", ".RS 4", ".nf"]
            out += [line_out_nf(escape_literal(b)) for b in block]
            out += [".fi", ".RE"]
            continue
        if ind != 0:
            raise MarkdownError(f"unexpected indentation {ind}: {line}")
        if stripped.startswith("#"):
            raise MarkdownError(f"heading inside a section body: {line}")
        if stripped.startswith("|"):
            rows = []
            while i < n and lines[i].strip().startswith("|"):
                rows.append(split_row(lines[i]))
                i += 1
            out += render_table(rows)
            continue
        if stripped.startswith("- "):
            item = [stripped[2:]]
            i += 1
            while i < n and (not lines[i].strip() or indent_of(lines[i]) >= 2):
                if lines[i].strip() and not lines[i].startswith("  "):
                    break
                item.append(lines[i][2:] if lines[i].strip() else "")
                i += 1
            out += render_item(item)
            continue
        if re.match(r"\d+\. ", stripped):
            raise MarkdownError(f"numbered lists are not supported: {line}")
        para = []
        while i < n and lines[i].strip() and indent_of(lines[i]) == 0 and not lines[i].startswith(("|", "- ")):
            para.append(lines[i])
            i += 1
        out.append(".PP")
        out += paragraph(para)
    return out


def paragraph(lines):
    """Lines of one paragraph: a code span or emphasis may go on over a line break."""
    return [line_out(t) for t in inline("\n".join(l.strip() for l in lines)).split("\n")]


def line_out_nf(text):
    if text.startswith((".", "'")):
        text = r"\&" + text
    return text


def render_item(item_lines):
    # the first paragraph beside the bullet, the rest of the item indented under it
    first = []
    k = 0
    while k < len(item_lines) and item_lines[k].strip() and not item_lines[k].startswith((" ", "|", "- ")):
        first.append(item_lines[k])
        k += 1
    out = [r".IP \(bu 2"] + paragraph(first)
    rest = render_blocks(item_lines[k:])
    if rest:
        out += [".RS 2"] + rest + [".RE"]
    return out


def render_table(rows):
    if len(rows) < 2 or not all(re.fullmatch(r":?-+:?", c) for c in rows[1]):
        raise MarkdownError(f"table without a header separator: {rows[0]}")
    header, body = rows[0], rows[2:]
    out = []
    for row in body:
        if len(row) != len(header):
            raise MarkdownError(f"table row has {len(row)} cells, header {len(header)}: {row}")
        out += [".TP", line_out(inline(row[0]))]
        # middle cells of a wide table as "header: value", then the last (the description)
        labelled, plain = [], []
        for col, cell in enumerate(row[1:], start=1):
            if not cell:
                continue
            if len(row) >= 4 and col < len(row) - 1 and len(cell) <= 40:
                labelled.append(f"{header[col]}: {cell}")
            else:
                plain.append(cell)
        text = ([", ".join(labelled)] if labelled else []) + plain
        out += paragraph([" \u2014 ".join(text)])
    return out


def sections(path):
    """(title, body lines) of each '##' section; the text before the first is title ''."""
    lines = path.read_text(encoding="utf-8").splitlines()
    text = "\n".join(lines)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    result = [("", [])]
    for line in text.split("\n"):
        if line.startswith("## "):
            result.append((line[3:].strip(), []))
        elif line.startswith("# "):
            continue
        elif line.startswith("### "):
            result[-1][1].append("\0" + line[4:].strip())
        else:
            result[-1][1].append(line)
    return result


def render_section(lines):
    """A section's body; '###' sub-headings become bold paragraphs."""
    out, chunk = [], []
    for line in lines:
        if line.startswith("\0"):
            out += render_blocks(chunk)
            chunk = []
            out += [".PP", r"\fB" + inline(line[1:]) + r"\fP"]
        else:
            chunk.append(line)
    return out + render_blocks(chunk)


def header(name, section, version, source, description):
    return [
        rf'.\" Generated by scripts/mangen.py from {source}; edit those, not this file.',
        f'.TH {name.upper()} {section} "" "maildsar {version}" "maildsar manual"',
        ".SH NAME",
        rf"{name} \- {description}",
    ]


def is_command_heading(title):
    return re.fullmatch(r"[a-z][a-z-]*", title) is not None


def maildsar_1(docs, version):
    cli = sections(docs / "cli.md")
    special = {"Environment": "ENVIRONMENT", "Files": "FILES", "Examples": "EXAMPLES"}
    for title in special:
        if title not in [t for t, _ in cli]:
            raise MarkdownError(f"docs/cli.md has no '## {title}' section")
    out = header("maildsar", 1, version, "docs/cli.md and docs/exit-codes.md",
                 "answer GDPR data-subject requests across a mail estate")
    # The preamble opens with the synopsis (a code block), then the global options.
    pre = cli[0][1]
    first = next(k for k, l in enumerate(pre) if l.strip())
    if indent_of(pre[first]) < 4:
        raise MarkdownError("docs/cli.md must open with the synopsis as a code block")
    out += [".SH SYNOPSIS", ".nf", escape_literal(pre[first].strip()), ".fi"]
    out += [".SH DESCRIPTION"] + render_section(pre[first + 1:])
    for title, body in cli[1:]:
        if title not in special and not is_command_heading(title):
            out += [".SS " + inline(title)] + render_section(body)
    out.append(".SH COMMANDS")
    for title, body in cli[1:]:
        if is_command_heading(title):
            out += [".SS " + inline(title)] + render_section(body)
    exit_codes = sections(docs / "exit-codes.md")
    out.append(".SH EXIT STATUS")
    for title, body in exit_codes:
        if title:
            out.append(".SS " + inline(title))
        out += render_section(body)
    for title in ("Environment", "Files", "Examples"):
        body = next(b for t, b in cli if t == title)
        out += [".SH " + special[title]] + render_section(body)
    out += [".SH SEE ALSO", r"\fBmaildsar.json\fP(5), \fBssh\fP(1), \fBsystemd.timer\fP(5)",
            ".PP",
            "The project's docs/: ARCHITECTURE.md, schemata.md (JSON output), operations.md,",
            "workflow.md, reliability.md, threat-model.md."]
    return out


def maildsar_json_5(docs, version):
    cfg = sections(docs / "config.md")
    out = header("maildsar.json", 5, version, "docs/config.md", "configuration of maildsar")
    out += [".SH SYNOPSIS", ".nf", r"\fI/etc/maildsar/maildsar.json\fP",
            r"\fB$MAILDSAR_CONFIG\fP, \fBmaildsar \-c\fP \fIFILE\fP, \fI./maildsar.json\fP", ".fi"]
    out += [".SH DESCRIPTION"] + render_section(cfg[0][1])
    for title, body in cfg[1:]:
        if title == "Example":
            continue
        out += [".SH " + inline(title).upper()] + render_section(body)
    example = [b for t, b in cfg if t == "Example"]
    if not example:
        raise MarkdownError("docs/config.md has no '## Example' section")
    out += [".SH EXAMPLE"] + render_section(example[0])
    out += [".SH SEE ALSO", r"\fBmaildsar\fP(1)"]
    return out


PAGES = {"maildsar.1": maildsar_1, "maildsar.json.5": maildsar_json_5}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page", choices=sorted(PAGES))
    ap.add_argument("--docs", required=True, type=Path)
    ap.add_argument("--version", required=True)
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path)
    group.add_argument("--check", type=Path)
    args = ap.parse_args()
    try:
        lines = PAGES[args.page](args.docs, args.version)
        # after .TH: no hyphenation (option names), ragged right, the glyph fallbacks
        at = next(k for k, l in enumerate(lines) if l.startswith(".TH")) + 1
        lines[at:at] = [".nh", ".ad l"] + [r".fchar \[u%04X] %s" % (ord(c), fallback(c)) for c in sorted(USED)]
        text = "\n".join(lines) + "\n"
    except (MarkdownError, OSError) as e:
        print(f"mangen: {args.page}: {e}", file=sys.stderr)
        return 65
    if args.check:
        try:
            current = args.check.read_text(encoding="utf-8")
        except OSError as e:
            print(f"mangen: {args.check}: {e}", file=sys.stderr)
            return 66
        if current != text:
            print(f"mangen: {args.check} differs from what {args.docs} gives: rebuild "
                  "(cmake --build) and never edit the generated page", file=sys.stderr)
            return 1
        return 0
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
