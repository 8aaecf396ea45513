#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lay out whole public-inbox archives as Maildirs: real mail for bench/index_bench.sh (ESTATE=).

Each archive is a repository snapshot as the search tool's `fetch` leaves it under
/work/.mirror/OWNER+NAME/repo (docs/performance.md names the ones measured); every message
of its epoch (file `m` of each commit) becomes a file in DEST/NAME/Maildir/cur. The mail is
real people's mail from public archives and is never committed.

    bench/real_maildir.py DEST MIRROR_DIR [MIRROR_DIR ...]
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "completeness"))
from gather import Repo, maildir  # noqa: E402  (same reader and layout as the recall estate)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: bench/real_maildir.py DEST MIRROR_DIR...")
    dest = sys.argv[1]
    for mirror in sys.argv[2:]:
        mirror = mirror.rstrip("/")
        if mirror.endswith("/repo"):
            mirror = os.path.dirname(mirror)
        name = os.path.basename(mirror)
        repo = Repo(os.path.dirname(mirror), name, None)
        count = int(subprocess.run(["git", f"--git-dir={repo.gitdir}", "rev-list", "--count", repo.commit],
                                   check=True, capture_output=True).stdout)
        msgs = repo.inbox(count)
        short = name.split("+", 1)[-1].split(".")[0]
        maildir(os.path.join(dest, short, "Maildir"), msgs, short)
        print(f"{short}: {len(msgs)} messages from {name} at {repo.commit}")


if __name__ == "__main__":
    main()
