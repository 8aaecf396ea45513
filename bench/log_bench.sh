#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmark: index a generated, rotated Postfix + Dovecot syslog log set (mail.log, mail.log.1,
# mail.log.2.gz, ...) with maildsar, and scan the same files with `zgrep -c` in the same run;
# with OLD_MAILDSAR set, index it with that binary (the previous design) as well, in a state
# directory of its own. Prints, for each binary, lines/s, CPU seconds, peak RSS, the state directory's size,
# the no-op re-index time and the warm `find --email` time, and the ratios issue 12 asks for:
# lines/s against zgrep and against the previous design, state bytes / log bytes, each beside
# its target.
# Usage: bench/log_bench.sh [SIZE_MB] [BUILD_DIR]     (defaults: 1024 MB uncompressed, ./build)
# Environment: FILES (log files, default 4), SEED (default 42), PATTERN (zgrep -F pattern and
# the address looked up with `maildsar find`, default alice.smith@example.com), OLD_MAILDSAR
# (the previous design's binary, e.g. /work/data/maildsar-v1/bin/maildsar; default none),
# FIND_RUNS (warm `find` runs, the median is reported; default 5).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
size_mb=${1:-1024}
build=${2:-"$here/build"}
files=${FILES:-4}
seed=${SEED:-42}
pattern=${PATTERN:-alice.smith@example.com}
old_bin=${OLD_MAILDSAR:-}
find_runs=${FIND_RUNS:-5}
bin="$build/cli/maildsar"

need=()
command -v python3 >/dev/null || need+=(python3)
command -v zgrep >/dev/null || need+=(gzip)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x "$bin" ] || "$here/scripts/build.sh" "$build" -DMAILDSAR_BUILD_TESTS=OFF
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
if [ -n "$old_bin" ] && [ ! -x "$old_bin" ]; then
  echo "log_bench.sh: OLD_MAILDSAR=$old_bin is not an executable" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/maildsar-logbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
logs="$work/logs"
echo "generating ${size_mb} MB of logs in $logs ..." >&2
read -r lines bytes < <(python3 "$here/bench/gen_logs.py" "$logs" "$size_mb" "$files" "$seed")
on_disk=$(du -sk "$logs" | cut -f1)
sync

# run LABEL CMD...: wall seconds, peak RSS (KiB) and CPU seconds (user + system) into $secs, $rss
# and $cpu; stdout into $work/out.LABEL
run() {
  local label=$1; shift
  local tf="$work/time.$label"
  /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" >"$work/out.$label" 2>"$work/err.$label" || {
    echo "$label failed:" >&2; tail -5 "$work/err.$label" "$tf" >&2; exit 1; }
  local user sys
  read -r secs rss user sys <"$tf"
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
}

# wall seconds of CMD... with millisecond resolution (stdout discarded)
wall_ms() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}

# measure NAME BIN: index (cold), no-op re-index, warm find; results in R[NAME.*]
declare -A R
measure() {
  local name=$1 exe=$2 state="$work/state-$1"
  cat >"$work/$name.json" <<JSON
{"state_dir": "$state",
 "sources": [{"name": "postfix", "type": "maillog", "format": "postfix", "path": "$logs/mail.log*"}]}
JSON
  echo "indexing with $name ($exe) ..." >&2
  run "$name" "$exe" -c "$work/$name.json" index --json
  R[$name.secs]=$secs
  R[$name.rss]=$rss
  R[$name.cpu]=$cpu
  R[$name.items]=$(python3 -c 'import json,sys; print(sum(s["items"] for s in json.load(sys.stdin)["sources"]))' <"$work/out.$name")
  R[$name.errors]=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["errors"])' <"$work/out.$name")
  R[$name.state]=$(du -s --block-size=1 "$state" | cut -f1)
  R[$name.noop]=$(wall_ms "$exe" -c "$work/$name.json" index)
  "$exe" -c "$work/$name.json" find --email "$pattern" --json >"$work/find.$name" # warms the caches
  R[$name.found]=$(wc -l <"$work/find.$name")
  local i times=()
  for ((i = 0; i < find_runs; i++)); do
    times+=("$(wall_ms "$exe" -c "$work/$name.json" find --email "$pattern" --json)")
  done
  R[$name.find]=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
}

measure maildsar "$bin"
[ -z "$old_bin" ] || measure old "$old_bin"

# zgrep over the same files (plain and .gz), counting matching lines per file
# (grep exits 1 when a file has no match: that is a count of 0, not a failure)
run zgrep sh -c 'zgrep -F -c "$0" "$@"; rc=$?; [ $rc -le 1 ]' "$pattern" "$logs"/mail.log*; z_secs=$secs; z_rss=$rss
matches=$(awk -F: '{ n += $NF } END { print n + 0 }' "$work/out.zgrep")

rate() { awk -v n="$lines" -v s="$1" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4g", (b > 0 ? a / b : 0) }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# check VALUE OP TARGET: "ok" or "MISSED"
check() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == ">=" ? v >= t : v <= t); print (ok ? "ok" : "MISSED") }'; }

echo
echo "log set: $files files ($(ls "$logs" | tr '\n' ' ')), $lines lines, $((bytes / 1048576)) MiB uncompressed, $((on_disk / 1024)) MiB on disk"
echo "machine: $(nproc) cores, $(uname -r); maildsar build: ${build_type:-unknown} ($bin)${old_bin:+; previous design: $old_bin}"
printf '%-12s %9s %11s %9s %13s %11s %10s %11s %8s\n' tool "wall s" "lines/s" "CPU s" "peak RSS MiB" "state MiB" "no-op s" "find ms" items
for name in maildsar old; do
  [ -n "${R[$name.secs]:-}" ] || continue
  printf '%-12s %9s %11s %9s %13s %11s %10s %11s %8s\n' "$([ $name = old ] && echo "old design" || echo maildsar)" \
    "${R[$name.secs]}" "$(rate "${R[$name.secs]}")" "${R[$name.cpu]}" "$((R[$name.rss] / 1024))" "$(mib "${R[$name.state]}")" \
    "${R[$name.noop]}" "$(awk -v s="${R[$name.find]}" 'BEGIN { printf "%.0f", s * 1000 }')" "${R[$name.items]}"
done
printf '%-12s %9s %11s %9s %13s\n' zgrep "$z_secs" "$(rate "$z_secs")" "$cpu" "$((z_rss / 1024))"
echo
echo "maildsar index: ${R[maildsar.items]} items (log transactions), ${R[maildsar.errors]} errors"
echo "find --email $pattern: ${R[maildsar.found]} item(s)${old_bin:+ (old design: ${R[old.found]})}; zgrep: $matches matching lines in ${z_secs} s"
echo
m_rate=$(rate "${R[maildsar.secs]}")
printf '%-46s %12s %12s %8s\n' "ratio / figure (maildsar)" value target ""
printf '%-46s %12s %12s %8s\n' "index lines/s" "$m_rate" ">= 100000" "$(check "$m_rate" ">=" 100000)"
printf '%-46s %12s %12s\n' "index lines per CPU second (user + system)" "$(rate "${R[maildsar.cpu]}")" ""
printf '%-46s %12s %12s\n' "index lines/s, maildsar / zgrep" "$(ratio "$m_rate" "$(rate "$z_secs")")" ""
if [ -n "$old_bin" ]; then
  printf '%-46s %12s %12s %8s\n' "index lines/s, maildsar / old design" \
    "$(ratio "$m_rate" "$(rate "${R[old.secs]}")")" ">= 10" "$(check "$(ratio "$m_rate" "$(rate "${R[old.secs]}")")" ">=" 10)"
fi
state_ratio=$(ratio "${R[maildsar.state]}" "$bytes")
printf '%-46s %12s %12s %8s\n' "state bytes / log bytes (uncompressed)" "$state_ratio" "<= 0.10" "$(check "$state_ratio" "<=" 0.10)"
[ -z "$old_bin" ] || printf '%-46s %12s\n' "  old design: state bytes / log bytes" "$(ratio "${R[old.state]}" "$bytes")"
printf '%-46s %12s %12s %8s\n' "peak RSS of index, MiB" "$((R[maildsar.rss] / 1024))" "<= 200" "$(check "$((R[maildsar.rss] / 1024))" "<=" 200)"
[ -z "$old_bin" ] || printf '%-46s %12s\n' "  maildsar / old design" "$(ratio "${R[maildsar.rss]}" "${R[old.rss]}")"
printf '%-46s %12s %12s %8s\n' "no-op re-index, s" "${R[maildsar.noop]}" "<= 0.1" "$(check "${R[maildsar.noop]}" "<=" 0.1)"
[ -z "$old_bin" ] || printf '%-46s %12s\n' "  maildsar / old design" "$(ratio "${R[maildsar.noop]}" "${R[old.noop]}")"
printf '%-46s %12s %12s %8s\n' "warm find --email, s (median of $find_runs)" "${R[maildsar.find]}" "<= 0.1" "$(check "${R[maildsar.find]}" "<=" 0.1)"
[ -z "$old_bin" ] || printf '%-46s %12s\n' "  maildsar / old design" "$(ratio "${R[maildsar.find]}" "${R[old.find]}")"
if [ -n "$old_bin" ] && [ "${R[maildsar.found]}" != "${R[old.found]}" ]; then
  echo "NOTE: find --email $pattern gives ${R[maildsar.found]} items, the old design ${R[old.found]}: run bench/log_diff.sh" >&2
fi
