#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Old-vs-new differential of the delivery-log index (issue 12): generates the benchmark log set
# (bench/gen_logs.py: rotated Postfix + Dovecot + amavis syslog, two files gzip), indexes it with
# both binaries in separate state directories, runs `find --json` for N identities of each kind
# (envelope addresses, client IPs, SASL users) on both, normalises the answers and diffs them.
# Exit 0: the same answers; exit 1: any difference (the first ones are printed); 2: usage or a
# failed run.
#
# Usage: bench/log_diff.sh OLD_BIN NEW_BIN [SIZE_MB]     (default 60 MiB uncompressed)
# Environment: FILES (log files, default 4), SEED (default 42), N (identities per kind, default
# 20), IGNORE_FIELDS (comma-separated hit fields left out of the comparison, default none),
# KEEP=1 (keep the work directory and print its path).
#
# Normalisation: the hits of one answer are sorted (by source, path, queue id, lines), the role
# lists sorted and every object written with sorted keys. No hit field is volatile between two
# indexes of the same files: `id` is the SHA-256 of the item's locator key, `sha256` that of the
# transaction's lines, so by default every field is compared.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 2 ]; then
  sed -n '3,19p' "$0" >&2
  exit 2
fi
old_bin=$1
new_bin=$2
size_mb=${3:-60}
files=${FILES:-4}
seed=${SEED:-42}
per_kind=${N:-20}
for b in "$old_bin" "$new_bin"; do
  [ -x "$b" ] || { echo "log_diff.sh: $b is not an executable" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/maildsar-logdiff.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
  echo "work directory: $work" >&2
else
  trap 'rm -rf "$work"' EXIT
fi
logs="$work/logs"
echo "generating ${size_mb} MB of logs ..." >&2
read -r lines bytes < <(python3 "$here/bench/gen_logs.py" "$logs" "$size_mb" "$files" "$seed")

for side in old new; do
  cat >"$work/$side.json" <<JSON
{"state_dir": "$work/state-$side",
 "sources": [{"name": "postfix", "type": "maillog", "format": "postfix", "path": "$logs/mail.log*"}]}
JSON
done

# The identities: from the log text itself (independent of both binaries), N per kind, spread
# over the distinct values sorted by how often they occur (so frequent and rare ones are both in).
python3 - "$logs" "$per_kind" >"$work/identities" <<'PY'
import collections, gzip, os, re, sys
logs, n = sys.argv[1], int(sys.argv[2])
pats = {
    "email": re.compile(r"\b(?:from|to)=<([^<>@\s]+@[^<>\s]+)>"),
    "ip": re.compile(r"(?:client=[^\s\[]*\[|\brip=)([0-9a-fA-F:.]+)"),
    "sasl": re.compile(r"sasl_username=([^,\s]+)"),
}
counts = {k: collections.Counter() for k in pats}
for name in sorted(os.listdir(logs)):
    path = os.path.join(logs, name)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            for kind, pat in pats.items():
                for m in pat.finditer(line):
                    counts[kind][m.group(1).lower()] += 1
for kind, c in counts.items():
    ranked = sorted(c, key=lambda v: (-c[v], v))
    want = min(n, len(ranked))
    if want < n:
        print(f"log_diff.sh: only {want} distinct {kind} identities in the set", file=sys.stderr)
    for i in range(want):
        print(kind, ranked[i * len(ranked) // want])
PY

normalise() { # stdin: find --json output; stdout: canonical JSON lines
  python3 -c '
import json, sys
ignore = [f for f in sys.argv[1].split(",") if f]
hits = []
for line in sys.stdin:
    if line.strip():
        h = json.loads(line)
        for f in ignore:
            h.pop(f, None)
        for m in h.get("matched", []):
            m["roles"] = sorted(m.get("roles", []))
        hits.append(h)
hits.sort(key=lambda h: (h.get("source", ""), h.get("path", ""), h.get("queue_id", ""), h.get("lines", [])))
for h in hits:
    print(json.dumps(h, sort_keys=True, ensure_ascii=False))
' "${IGNORE_FIELDS:-}"
}

for side in old new; do
  bin=$old_bin
  [ "$side" = old ] || bin=$new_bin
  echo "indexing with the $side binary ($bin) ..." >&2
  "$bin" -c "$work/$side.json" index --json >"$work/index.$side.json" 2>"$work/index.$side.err" || {
    echo "log_diff.sh: index with $bin failed:" >&2; tail -5 "$work/index.$side.err" >&2; exit 2; }
  mkdir -p "$work/answers/$side"
  i=0
  while read -r kind value; do
    i=$((i + 1))
    opt=--$kind
    [ "$kind" != sasl ] || opt=--email # a SASL user is an address (role log-user)
    "$bin" -c "$work/$side.json" find "$opt" "$value" --json >"$work/raw" 2>"$work/find.err" || {
      echo "log_diff.sh: find $opt $value with $bin failed:" >&2; tail -5 "$work/find.err" >&2; exit 2; }
    normalise <"$work/raw" >"$work/answers/$side/$(printf '%03d' "$i")-$kind-$value"
  done <"$work/identities"
done

total=$(wc -l <"$work/identities")
hits=$(cat "$work/answers/old"/* | wc -l)
echo "log set: $files files, $lines lines, $((bytes / 1048576)) MiB; $total identities ($(cut -d' ' -f1 "$work/identities" | sort | uniq -c | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2}')), $hits hits (old)"
if diff -r "$work/answers/old" "$work/answers/new" >"$work/diff"; then
  echo "no difference: old and new answer every query with the same items"
  exit 0
fi
differing=$(grep -c '^diff ' "$work/diff" || true)
echo "DIFFERENCE in $differing of $total answers (< old, > new); the first lines:"
head -n 40 "$work/diff"
exit 1
