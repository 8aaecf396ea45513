#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmark: index a generated, rotated Postfix + Dovecot syslog log set (mail.log, mail.log.1,
# mail.log.2.gz, ...) with maildsar, and scan the same files with `zgrep -c` in the same run.
# Prints lines/s for both, their ratio, peak RSS, the no-op re-index time and one query's time.
# Usage: bench/log_bench.sh [SIZE_MB] [BUILD_DIR]     (defaults: 1024 MB uncompressed, ./build)
# Environment: FILES (log files, default 4), SEED (default 42), PATTERN (zgrep -F pattern and
# the address looked up with `maildsar find`, default alice.smith@example.com).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
size_mb=${1:-1024}
build=${2:-"$here/build"}
files=${FILES:-4}
seed=${SEED:-42}
pattern=${PATTERN:-alice.smith@example.com}
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

work=$(mktemp -d "${TMPDIR:-/tmp}/maildsar-logbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
logs="$work/logs"
echo "generating ${size_mb} MB of logs in $logs ..." >&2
read -r lines bytes < <(python3 "$here/bench/gen_logs.py" "$logs" "$size_mb" "$files" "$seed")
on_disk=$(du -sk "$logs" | cut -f1)
sync

# run LABEL CMD...: wall seconds and peak RSS (KiB) into $secs and $rss; stdout into $work/out.LABEL
run() {
  local label=$1; shift
  local tf="$work/time.$label"
  /usr/bin/time -f '%e %M' -o "$tf" "$@" >"$work/out.$label" 2>"$work/err.$label" || {
    echo "$label failed:" >&2; tail -5 "$work/err.$label" "$tf" >&2; exit 1; }
  read -r secs rss <"$tf"
}

# maildsar: one maillog source over the rotated set
cat >"$work/maildsar.json" <<JSON
{"state_dir": "$work/maildsar-state",
 "sources": [{"name": "postfix", "type": "maillog", "format": "postfix", "path": "$logs/mail.log*"}]}
JSON
run maildsar "$bin" -c "$work/maildsar.json" index --json; m_secs=$secs; m_rss=$rss
items=$(python3 -c 'import json,sys; print(sum(s["items"] for s in json.load(sys.stdin)["sources"]))' <"$work/out.maildsar")
errors=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["errors"])' <"$work/out.maildsar")
run maildsar-noop "$bin" -c "$work/maildsar.json" index; m_noop=$secs
run maildsar-find "$bin" -c "$work/maildsar.json" find --email "$pattern" --json; f_secs=$secs
found=$(wc -l <"$work/out.maildsar-find")
m_size=$(du -sk "$work/maildsar-state" | cut -f1)

# zgrep over the same files (plain and .gz), counting matching lines per file
# (grep exits 1 when a file has no match: that is a count of 0, not a failure)
run zgrep sh -c 'zgrep -F -c "$0" "$@"; rc=$?; [ $rc -le 1 ]' "$pattern" "$logs"/mail.log*; z_secs=$secs; z_rss=$rss
matches=$(awk -F: '{ n += $NF } END { print n + 0 }' "$work/out.zgrep")

rate() { awk -v n="$lines" -v s="$1" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo
echo "log set: $files files ($(ls "$logs" | tr '\n' ' ')), $lines lines, $((bytes / 1048576)) MiB uncompressed, $((on_disk / 1024)) MiB on disk"
echo "machine: $(nproc) cores, $(uname -r); maildsar build: ${build_type:-unknown} ($bin)"
printf '%-10s %10s %12s %14s\n' tool "wall s" "lines/s" "peak RSS MiB"
printf '%-10s %10s %12s %14s\n' maildsar "$m_secs" "$(rate "$m_secs")" "$((m_rss / 1024))"
printf '%-10s %10s %12s %14s\n' zgrep "$z_secs" "$(rate "$z_secs")" "$((z_rss / 1024))"
echo
echo "maildsar index: $items items (log transactions), $errors errors, index $((m_size / 1024)) MiB"
echo "index lines/s, maildsar / zgrep: $(ratio "$(rate "$m_secs")" "$(rate "$z_secs")")"
echo "no-op re-index: ${m_noop} s"
echo "find --email $pattern: $found item(s) in ${f_secs} s (zgrep: $matches matching lines in ${z_secs} s)"
