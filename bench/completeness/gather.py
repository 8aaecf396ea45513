#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lay out the real public mail of the completeness benchmark (docs/completeness.md).

The mail itself is never committed: it is real people's mail from public archives and
other projects' test fixtures. This script rebuilds the estate from the repository
snapshots named in docs/completeness.md (git directories, e.g. as the search tool's
`fetch` leaves them under /work/.mirror/OWNER+NAME/repo) into DEST (default
/work/data/recall/estate). Every source is read at a pinned commit, so the estate is the
same on every run. Only the standard library and `git` are used.

    bench/completeness/gather.py [--mirror /work/.mirror] [--dest /work/data/recall/estate]
                                 [--pst-corpus /work/shared/corpus/pst]

Transforms (documented in docs/completeness.md): public-inbox archives are cut into
Maildir files or an mbox; one Maildir gets CRLF line ends (a Windows-exported store like
the 2001 corporate archive of issue 11); a few messages are placed outside cur/new and
in tmp/ with an old mtime (abandoned deliveries), beside non-message files a real
Maildir holds (dovecot-uidlist, .keep) that must NOT count as items.
"""
import argparse
import email.utils
import os
import shutil
import subprocess
import sys
import time

# (mirror dir, commit) pinned; the commit is checked so a newer snapshot fails loudly.
SOURCES = {
    "leds": ("linux-mailinglist-archives+linux-leds.vger.kernel.org.0",
             "316c55d5c9cdfc0eebba5cd73456946a1e749233"),
    "ecryptfs": ("linux-mailinglist-archives+ecryptfs.vger.kernel.org.0",
                 "c489314cd131c963163346b337fb1fc02e42c1f9"),
    "osst": ("linux-mailinglist-archives+osst-users.lists.sourceforge.net.0",
             "c3c0c7ff05912d4a43664b41ba44c23a85321ad3"),
    "usrp": ("linux-mailinglist-archives+usrp-users.lists.ettus.com.0",
             "ca763a0eab9f857948f294e78103c609e477dc34"),
    "cypherpunks": ("tombusby+cypherpunk-mailing-list-archive-parser",
                    "c8f210eef74723f02d908c0ff0222556d41653a5"),
    "spamassassin": ("apache+spamassassin", "f7fe7b82a2db63ee1406d74d88ce564b69881954"),
    "patchwork": ("getpatchwork+patchwork", "644cef7cd369abd39eba9523f8ecbc16d2ea4206"),
    "mail-gem": ("mikel+mail", "d645d7b5b7d03218b0bc8971ef041c991a63f5f7"),
    "lograptor": ("sissaschool+lograptor", "c15867b1e4bec72d2704e5dbd4bee8fa0e72062e"),
    "php-mime": ("php-mime-mail-parser+php-mime-mail-parser",
                 "059dcc38fbfb559b0644e9c26c65a759b21801bc"),
}

OLD = time.time() - 3 * 24 * 3600  # tmp/ files older than 36 h are abandoned deliveries


class Repo:
    def __init__(self, mirror, name, commit):
        base = os.path.join(mirror, name, "repo")
        self.gitdir = os.path.join(base, ".git") if os.path.isdir(os.path.join(base, ".git")) else base
        head = self.git("rev-parse", "HEAD").strip()
        self.commit = commit or head
        if commit and head != commit and not self._has(commit):
            sys.exit(f"{name}: pinned commit {commit} not in snapshot (HEAD {head})")
        self._cat = subprocess.Popen(["git", f"--git-dir={self.gitdir}", "cat-file", "--batch"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def _has(self, commit):
        return subprocess.run(["git", f"--git-dir={self.gitdir}", "cat-file", "-e", commit],
                              capture_output=True).returncode == 0

    def git(self, *args):
        return subprocess.run(["git", f"--git-dir={self.gitdir}", *args], check=True,
                              capture_output=True).stdout.decode("utf-8", "replace")

    def blob(self, spec):
        self._cat.stdin.write(spec.encode() + b"\n")
        self._cat.stdin.flush()
        header = self._cat.stdout.readline().split()
        if len(header) < 3 or header[1] != b"blob":
            return None
        data = self._cat.stdout.read(int(header[2]))
        self._cat.stdout.read(1)
        return data

    def files(self, prefix):
        out = self.git("ls-tree", "-r", "--name-only", self.commit, "--", prefix)
        return [p for p in out.splitlines() if p]

    def inbox(self, limit):
        """Messages of a public-inbox v2 epoch: file `m` of each commit, newest first."""
        commits = self.git("rev-list", f"--max-count={limit * 2}", self.commit).split()
        msgs = []
        for c in commits:
            data = self.blob(f"{c}:m")
            if data:
                msgs.append(data)
            if len(msgs) == limit:
                break
        return msgs


def write(path, data, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if mtime:
        os.utime(path, (mtime, mtime))


def maildir(dest, msgs, tag, crlf=False, stray=0, tmp=0, new=0):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(dest, sub), exist_ok=True)
    for i, data in enumerate(msgs):
        if crlf:
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        name = f"1700000000.{tag}{i:05d}.recall"
        if i < stray:  # a message file in the folder itself, outside cur/ and new/
            write(os.path.join(dest, f"{name}.eml"), data)
        elif i < stray + tmp:  # an abandoned delivery
            write(os.path.join(dest, "tmp", name), data, OLD)
        elif i < stray + tmp + new:
            write(os.path.join(dest, "new", name), data)
        else:
            write(os.path.join(dest, "cur", name + ":2,S"), data)
    if stray or tmp:  # what a real server leaves beside the mail: never items
        write(os.path.join(dest, "dovecot-uidlist"), b"3 V1700000000 N" + str(len(msgs)).encode()
              + b" G0123456789abcdef\n")
        write(os.path.join(dest, "cur", ".keep"), b"")


def from_line(data):
    """An mbox From_ line from the envelope sender (Return-Path) and the Date."""
    head = data.split(b"\n\n", 1)[0].decode("latin-1")
    sender, date = "MAILER-DAEMON", None
    for line in head.split("\n"):
        low = line.lower()
        if low.startswith("return-path:") and sender == "MAILER-DAEMON":
            addr = email.utils.parseaddr(line.split(":", 1)[1])[1]
            sender = addr or sender
        elif low.startswith("date:") and date is None:
            date = email.utils.parsedate_tz(line.split(":", 1)[1])
    when = time.gmtime(email.utils.mktime_tz(date)) if date else time.gmtime(0)
    return f"From {sender} {time.strftime('%a %b %d %H:%M:%S %Y', when)}\n".encode()


def mboxrd(path, msgs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        for data in msgs:
            data = data.replace(b"\r\n", b"\n")
            f.write(from_line(data))
            for line in data.split(b"\n"):
                if line.lstrip(b">").startswith(b"From "):
                    line = b">" + line
                f.write(line + b"\n")
            if not data.endswith(b"\n"):
                f.write(b"\n")
            f.write(b"\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mirror", default="/work/.mirror")
    ap.add_argument("--dest", default="/work/data/recall/estate")
    ap.add_argument("--pst-corpus", default="/work/shared/corpus/pst",
                    help="PST/OST files laid out as pst/PROJECT-FILE (a supplementary set)")
    a = ap.parse_args()
    if os.path.exists(a.dest):
        shutil.rmtree(a.dest)
    r = {k: Repo(a.mirror, n, c) for k, (n, c) in SOURCES.items()}

    maildir(f"{a.dest}/maildir/leds", r["leds"].inbox(2500), "leds", stray=6, tmp=6, new=20)
    maildir(f"{a.dest}/maildir/ecryptfs-crlf", r["ecryptfs"].inbox(2290), "ecr", crlf=True)
    maildir(f"{a.dest}/maildir/usrp", r["usrp"].inbox(1500), "usrp")
    mboxrd(f"{a.dest}/mbox/osst-users.mbox", r["osst"].inbox(1857))

    cp = r["cypherpunks"]
    write(f"{a.dest}/mbox/cypherpunks-1992.mbox", cp.blob(f"{cp.commit}:cryptome/cyp-1992.txt"))
    names = sorted(cp.files("raw_messages/1996"))[:2000]
    maildir(f"{a.dest}/maildir/cypherpunks-1996", [cp.blob(f"{cp.commit}:{n}") for n in names], "cp")

    fixtures = []
    sa = r["spamassassin"]
    for n in sa.files("t/data/spam") + sa.files("t/data/nice"):
        if n.count("/") != 3:  # sub-folders hold plugin-specific odd files
            continue
        fixtures.append(sa.blob(f"{sa.commit}:{n}"))
    for key, prefix in (("mail-gem", "spec/fixtures/emails"), ("php-mime", "tests/mails")):
        repo = r[key]
        fixtures += [repo.blob(f"{repo.commit}:{n}") for n in repo.files(prefix)]
    maildir(f"{a.dest}/maildir/fixtures", [f for f in fixtures if f], "fx")
    pw = r["patchwork"]
    for n in pw.files("patchwork/tests/data/mail"):
        if n.endswith(".mbox"):
            write(f"{a.dest}/mbox/patchwork/{os.path.basename(n)}", pw.blob(f"{pw.commit}:{n}"))
    lg = r["lograptor"]
    write(f"{a.dest}/logs/postfix.log", lg.blob(f"{lg.commit}:tests/samples/postfix.log"))
    pst_files = layout_psts(a.pst_corpus, f"{a.dest}/pst")
    print(a.dest, f"({pst_files} PST/OST files)" if pst_files else "(no PST/OST files)")


def layout_psts(corpus, dest):
    """The PSTs/OSTs of the shared corpus (../shared/corpus/pst/PROJECT/FILE), copied as
    pst/PROJECT-FILE: a supplementary set (no public PST outside it is small enough for the
    snapshots; docs/completeness.md). Read-only originals: copies get mode 0644."""
    if not os.path.isdir(corpus):
        print(f"note: {corpus} not found; the estate has no PST set", file=sys.stderr)
        return 0
    n = 0
    for project in sorted(os.listdir(corpus)):
        folder = os.path.join(corpus, project)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith((".pst", ".ost")) and os.path.isfile(os.path.join(folder, name)):
                os.makedirs(dest, exist_ok=True)
                target = os.path.join(dest, f"{project}-{name}")
                shutil.copyfile(os.path.join(folder, name), target)
                os.chmod(target, 0o644)
                n += 1
    return n


if __name__ == "__main__":
    main()
