#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmark (issue 14, "Scale"): an estate of about 1,000,000 items — 400,000 small Maildir
# messages in 20 mailboxes (bench/gen_maildir.py), ~200,000 mbox messages in 4 files
# (bench/gen_mbox.py, 20-200 body words) and delivery logs of ~400,000 transactions
# (bench/gen_logs.py, 4 files, two of them gzip) — plus a planted subject,
# scale.subject@example.net, in 100 items (50 Maildir messages, 30 mbox messages, 20 log
# transactions). The generators stream: none holds the estate in memory.
#
# Prints: the estate's items and size on disk; the full index (wall, CPU, peak RSS, state
# size); a no-op index and `status` (target < 1 s each); `find --email
# scale.subject@example.net` warm (median of 10 after 2 unmeasured runs; target <= 50 ms) and
# cold (median of 3, each after `sync; echo 3 > /proc/sys/vm/drop_caches`, which needs root:
# page cache, dentries and inodes dropped; target <= 500 ms).
#
# Usage: bench/scale_bench.sh [DIR] [BUILD_DIR]
#   DIR (default /var/tmp/maildsar-scale) keeps the generated estate between runs; its state/
#   is indexed anew each run (SCALE_REUSE_STATE=1: keep an existing state/ and measure only the
#   queries; the index figures are then those of the run that built it). Needs ~3.5 GB of disk.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/var/tmp/maildsar-scale}
build=${2:-"$here/build"}
bin="$build/cli/maildsar"
[ -x "$bin" ] || "$here/scripts/build.sh" "$build" -DMAILDSAR_BUILD_TESTS=OFF
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 69; }
subject=scale.subject@example.net

if [ ! -f "$dir/.generated" ]; then
  echo "generating the estate in $dir (once) ..." >&2
  rm -rf "$dir"; mkdir -p "$dir/mail" "$dir/archive" "$dir/logs"
  python3 "$here/bench/gen_maildir.py" "$dir/mail" 400000
  for i in 1 2 3 4; do
    python3 "$here/bench/gen_mbox.py" "$dir/archive/part$i.mbox" 50 "$i" 20-200 >/dev/null
  done
  python3 "$here/bench/gen_logs.py" "$dir/logs" 105 4 >/dev/null
  # The planted subject: 50 Maildir messages, 30 mbox messages, 20 log transactions.
  python3 - "$dir" "$subject" <<'PY'
import os, sys
root, subject = sys.argv[1], sys.argv[2]
for i in range(50):
    box = os.path.join(root, "mail", f"user{i % 20:02d}", "Maildir", "cur")
    with open(os.path.join(box, f"1800000000.S{i}.bench:2,S"), "w") as f:
        f.write(f"From: Scale Subject <{subject}>\nTo: user{i % 20:02d}@example.com\n"
                f"Subject: planted {i}\nMessage-ID: <planted{i}@example.net>\n"
                f"Date: Mon, 13 Nov 2023 10:00:00 +0000\n\nplanted message {i}\n")
with open(os.path.join(root, "archive", "part1.mbox"), "a") as f:
    for i in range(30):
        f.write(f"From {subject} Mon Nov 13 10:00:00 2023\nFrom: Scale Subject <{subject}>\n"
                f"To: bob@example.com\nSubject: planted mbox {i}\nMessage-ID: <plantedm{i}@example.net>\n\n"
                f"planted\n\n")
with open(os.path.join(root, "logs", "mail.log"), "a") as f:
    for i in range(20):
        q = f"5CA1E{i:06X}"
        f.write(f"Dec 31 23:59:{i:02} mx1 postfix/qmgr[900]: {q}: from=<{subject}>, size=1234, nrcpt=1 (queue active)\n"
                f"Dec 31 23:59:{i:02} mx1 postfix/local[901]: {q}: to=<bob@example.com>, relay=local, delay=1, "
                f"status=sent (delivered to mailbox)\n"
                f"Dec 31 23:59:{i:02} mx1 postfix/qmgr[900]: {q}: removed\n")
PY
  touch "$dir/.generated"
fi

cat >"$dir/maildsar.json" <<JSON
{"state_dir": "$dir/state", "sources": [
  {"name": "mailboxes", "type": "maildir", "path": "$dir/mail/*/Maildir", "owner": "{1}@example.com"},
  {"name": "archive", "type": "mbox", "path": "$dir/archive/*.mbox"},
  {"name": "postfix", "type": "maillog", "format": "postfix", "path": "$dir/logs/mail.log*"}]}
JSON
ds() { "$bin" -c "$dir/maildsar.json" "$@"; }
# bash's own clock: a python3 per reading would add its start-up (~0.1 s under pyenv) to each interval
now() { echo "$EPOCHREALTIME"; }
secs() { python3 -c "print(round($2 - $1, 3))"; }
median() { python3 -c 'import sys, statistics; print(round(statistics.median(float(x) for x in sys.argv[1:]), 4))' "$@"; }

estate_bytes=$(du -sb "$dir/mail" "$dir/archive" "$dir/logs" | awk '{s += $1} END {print s}')
if [ "${SCALE_REUSE_STATE:-0}" != 1 ] || [ ! -f "$dir/index.json" ]; then
  rm -rf "$dir/state"
  echo "indexing ..." >&2
  /usr/bin/time -f "%e %U %S %M" -o "$dir/time.txt" "$bin" -c "$dir/maildsar.json" --json index >"$dir/index.json"
fi
read -r index_wall index_user index_sys index_rss_kib <"$dir/time.txt"
state_bytes=$(du -sb "$dir/state" | awk '{print $1}')
items=$(python3 -c 'import json, sys; print(sum(s["items"] for s in json.load(open(sys.argv[1]))["sources"]))' "$dir/index.json")

t0=$(now); ds index -q >/dev/null; t1=$(now); noop_s=$(secs "$t0" "$t1")
t0=$(now); ds status >/dev/null; t1=$(now); status_s=$(secs "$t0" "$t1")

find_once() { local t0 t1; t0=$(now); ds --json find --email "$subject" >"$dir/hits.json"; t1=$(now); secs "$t0" "$t1"; }
find_once >/dev/null; find_once >/dev/null
warm=(); for _ in $(seq 10); do warm+=("$(find_once)"); done
hits=$(wc -l <"$dir/hits.json")
cold=()
if [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/drop_caches ]; then
  for _ in 1 2 3; do sync; echo 3 >/proc/sys/vm/drop_caches; cold+=("$(find_once)"); done
fi

echo "estate: $items items, $(python3 -c "print(round($estate_bytes / 2**20))") MiB on disk (mail, archive, logs)"
echo "index: ${index_wall} s wall, $(python3 -c "print(round($index_user + $index_sys, 1))") s CPU, peak RSS $((index_rss_kib / 1024)) MiB, state $(python3 -c "print(round($state_bytes / 2**20))") MiB"
echo "no-op index: ${noop_s} s   (target < 1 s)"
echo "status:      ${status_s} s   (target < 1 s)"
echo "find --email $subject: $hits hits"
echo "  warm: median $(median "${warm[@]}") s of ${#warm[@]} (target <= 0.05 s)"
if [ ${#cold[@]} -gt 0 ]; then
  echo "  cold: median $(median "${cold[@]}") s of ${#cold[@]} after drop_caches (target <= 0.5 s)"
else
  echo "  cold: not measured (needs root to drop the page cache)"
fi
