#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmark: the ceiling of a full index on this machine (issue 14). Runs, interleaved on the
# same generated Maildir estate, bench/ceiling/probe.cpp (GMime parse + Xapian positional
# indexing and nothing else, one commit: the probe the issue was sized with), maildsar and mu,
# and prints each one's wall and CPU time, peak RSS and index size, and the ratios to mu.
# Usage: bench/ceiling_bench.sh [MESSAGES] [BUILD_DIR]   (REPEAT=3 rounds; ESTATE=DIR as in
# bench/index_bench.sh; READERS=1 parse threads for the probe)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-20000}
build=${2:-"$here/build"}
repeat=${REPEAT:-3}
readers=${READERS:-1}
bin="$build/cli/maildsar"
command -v mu >/dev/null || { echo "needs mu (apt-get install maildir-utils)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
[ -x "$bin" ] || "$here/scripts/build.sh" "$build" -DMAILDSAR_BUILD_TESTS=OFF

work=$(mktemp -d "${TMPDIR:-/tmp}/maildsar-ceiling.XXXXXX")
trap 'rm -rf "$work"' EXIT
probe="$work/probe"
# shellcheck disable=SC2046 # pkg-config's flags are words
g++ -O2 -std=c++20 "$here/bench/ceiling/probe.cpp" -o "$probe" $(pkg-config --cflags --libs gmime-3.0 xapian-core) -pthread
mail="$work/mail"
if [ -n "${ESTATE:-}" ]; then
  cp -a "$ESTATE" "$mail"
else
  python3 "$here/bench/gen_maildir.py" "$mail" "$n" >/dev/null
fi
find "$mail" -type f \( -path '*/cur/*' -o -path '*/new/*' \) >"$work/files"
msgs=$(wc -l <"$work/files")
mail_kib=$(du -sk "$mail" | cut -f1)
cat >"$work/maildsar.json" <<JSON
{"state_dir": "$work/maildsar-state",
 "sources": [{"name": "mail", "type": "maildir", "path": "$mail/*/Maildir", "owner": "{1}@example.com"}]}
JSON
export MUHOME="$work/mu-home"
sync

# one round of one tool: wall s, CPU s (user + sys), peak RSS KiB, index KiB
round() {
  local index
  case $1 in
    probe) rm -rf "$work/probe-db"; index="$work/probe-db"
           set -- "$probe" "$index" "$work/files" "$readers" ;;
    maildsar) rm -rf "$work/maildsar-state"; index="$work/maildsar-state"
              set -- "$bin" -c "$work/maildsar.json" index ;;
    mu) rm -rf "$MUHOME"; mu init --muhome="$MUHOME" --maildir="$mail" >/dev/null; index="$MUHOME"
        set -- mu index --muhome="$MUHOME" ;;
  esac
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || {
    echo "$* failed:" >&2; tail -5 "$work/err" >&2; exit 1; }
  read -r wall user sys rss <"$work/time"
  echo "$wall $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }') $rss $(du -sk "$index" | cut -f1)"
}
for ((i = 1; i <= repeat; i++)); do
  for t in probe maildsar mu; do
    echo "$t $(round "$t")" | tee -a "$work/rounds" >&2
  done
done
median() { awk -v t="$1" -v c="$2" '$1 == t { print $c }' "$work/rounds" | sort -g |
  awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo
echo "messages: $msgs, $((mail_kib / 1024)) MiB on disk   machine: $(nproc) cores, $(uname -r)   medians of $repeat rounds"
printf '%-9s %8s %8s %10s %9s %10s\n' tool "wall s" "CPU s" "msgs/s" "RSS MiB" "index/disk"
for t in probe maildsar mu; do
  printf '%-9s %8s %8s %10s %9s %10s\n' "$t" "$(median "$t" 2)" "$(median "$t" 3)" \
    "$(awk -v n="$msgs" -v s="$(median "$t" 2)" 'BEGIN { printf "%.0f", n / s }')" \
    "$(($(median "$t" 4) / 1024))" "$(ratio "$(median "$t" 5)" "$mail_kib")"
done
echo
echo "full index speed, probe / mu:    $(ratio "$(median mu 2)" "$(median probe 2)")  (what parse + index alone reaches)"
echo "full index speed, maildsar / mu: $(ratio "$(median mu 2)" "$(median maildsar 2)")  (issue 14: >= 2.0)"
echo "CPU per message, maildsar / probe: $(ratio "$(median maildsar 3)" "$(median probe 3)")"
