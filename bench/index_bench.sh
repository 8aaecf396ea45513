#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmark: full index and no-op re-index of a generated Maildir estate with maildsar,
# mu (maildir-utils) and notmuch, in one run on the same data. Prints msgs/s, ratios, peak RSS
# and index size. Usage: bench/index_bench.sh [MESSAGES] [BUILD_DIR]
# DOCUMENTS=1: one message in 10 carries a PDF or DOCX attachment (bench/gen_maildir.py).
# ESTATE=DIR: index a copy of DIR instead (an estate laid out as DIR/*/Maildir, e.g. the real
# public mail of bench/real_maildir.py); MESSAGES is then ignored.
# BASELINE=DIR: also runs DIR/cli/maildsar (another build, say of main) in every round, interleaved
# with the others on the same data, and prints its figures and ratios beside this build's.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-20000}
repeat=${REPEAT:-3}
build=${2:-"$here/build"}
bin="$build/cli/maildsar"
baseline=${BASELINE:-}
tools=(maildsar mu notmuch)
if [ -n "$baseline" ]; then
  [ -x "$baseline/cli/maildsar" ] || { echo "BASELINE: no $baseline/cli/maildsar" >&2; exit 2; }
  tools=(maildsar baseline mu notmuch)
fi

need=()
command -v mu >/dev/null || need+=(maildir-utils)
command -v notmuch >/dev/null || need+=(notmuch)
command -v python3 >/dev/null || need+=(python3)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x "$bin" ] || "$here/scripts/build.sh" "$build" -DMAILDSAR_BUILD_TESTS=OFF

work=$(mktemp -d "${TMPDIR:-/tmp}/maildsar-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mail="$work/mail"
if [ -n "${ESTATE:-}" ]; then
  echo "copying $ESTATE to $mail ..." >&2
  cp -a "$ESTATE" "$mail"
else
  echo "generating $n messages in $mail ..." >&2
  docs=(); [ "${DOCUMENTS:-0}" = 1 ] && docs=(--documents)
  python3 "$here/bench/gen_maildir.py" "$mail" "$n" "${docs[@]}"
fi
msgs=$(find "$mail" -type f \( -path '*/cur/*' -o -path '*/new/*' \) | wc -l)
mail_kib=$(du -sk "$mail" | cut -f1)                           # on disk, as the indexes are measured
mail_bytes=$(du -sb --apparent-size "$mail" | cut -f1)          # the messages' own bytes
sync

# run LABEL CMD...: wall seconds and peak RSS (KiB) into $secs and $rss
run() {
  local label=$1; shift
  local tf="$work/time.$label"
  /usr/bin/time -f '%e %M' -o "$tf" "$@" >/dev/null 2>"$work/err.$label" || {
    echo "$label failed:" >&2; tail -5 "$work/err.$label" >&2; exit 1; }
  read -r secs rss <"$tf"
}

cat >"$work/maildsar.json" <<JSON
{"state_dir": "$work/maildsar-state",
 "sources": [{"name": "mail", "type": "maildir", "path": "$mail/*/Maildir", "owner": "{1}@example.com"}]}
JSON
export MUHOME="$work/mu-home"
cat >"$work/notmuch-config" <<CFG
[database]
path=$mail
[new]
tags=unread;inbox;
[user]
name=Bench
primary_email=bench@example.com
[maildir]
synchronize_flags=false
CFG
export NOTMUCH_CONFIG="$work/notmuch-config"

# one round of one tool: full index from nothing, then a no-op re-index
round() {
  case $1 in
    maildsar | baseline)
      local b=$bin; [ "$1" = baseline ] && b="$baseline/cli/maildsar"
      rm -rf "$work/maildsar-state"
      run "$1" "$b" -c "$work/maildsar.json" index; full=$secs; peak=$rss
      run "$1-noop" "$b" -c "$work/maildsar.json" index; noop=$secs
      size=$(du -sk "$work/maildsar-state" | cut -f1) ;;
    mu)
      rm -rf "$MUHOME"; mu init --muhome="$MUHOME" --maildir="$mail" >/dev/null
      run mu mu index --muhome="$MUHOME"; full=$secs; peak=$rss
      run mu-noop mu index --muhome="$MUHOME"; noop=$secs
      size=$(du -sk "$MUHOME" | cut -f1) ;;
    notmuch)
      rm -rf "$mail/.notmuch"
      run notmuch notmuch new --quiet; full=$secs; peak=$rss
      run notmuch-noop notmuch new --quiet; noop=$secs
      size=$(du -sk "$mail/.notmuch" | cut -f1) ;;
  esac
  echo "$1 $full $noop $peak $size" >>"$work/rounds"  # peak RSS of the full index
  echo "  round: $1 full ${full}s no-op ${noop}s" >&2
}
for ((i = 1; i <= repeat; i++)); do
  for t in "${tools[@]}"; do round "$t"; done
done
# median of column $2 for tool $1
median() { awk -v t="$1" -v c="$2" '$1 == t { print $c }' "$work/rounds" | sort -g |
  awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
for t in "${tools[@]}"; do
  eval "${t}_full=\$(median $t 2) ${t}_noop=\$(median $t 3) ${t}_rss=\$(median $t 4) ${t}_size=\$(median $t 5)"
done
m_full=$maildsar_full; m_noop=$maildsar_noop; m_rss=$maildsar_rss; m_size=$maildsar_size
u_full=$mu_full; u_noop=$mu_noop; u_rss=$mu_rss; u_size=$mu_size
n_full=$notmuch_full; n_noop=$notmuch_noop; n_rss=$notmuch_rss; n_size=$notmuch_size

rate() { awk -v n="$msgs" -v s="$1" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo
echo "messages: $msgs, $((mail_kib / 1024)) MiB on disk ($((mail_bytes / 1048576)) MiB of messages)   machine: $(nproc) cores, $(uname -r)   medians of $repeat runs"
printf '%-10s %10s %10s %12s %12s %12s %12s %12s\n' tool "full s" "msgs/s" "no-op s" "peak RSS MiB" "index MiB" "index/disk" "index/msgs"
for t in "${tools[@]}"; do
  case $t in
    maildsar) f=$m_full; o=$m_noop; r=$m_rss; z=$m_size ;;
    baseline) f=$baseline_full; o=$baseline_noop; r=$baseline_rss; z=$baseline_size ;;
    mu) f=$u_full; o=$u_noop; r=$u_rss; z=$u_size ;;
    notmuch) f=$n_full; o=$n_noop; r=$n_rss; z=$n_size ;;
  esac
  printf '%-10s %10s %10s %12s %12s %12s %12s %12s\n' "$t" "$f" "$(rate "$f")" "$o" "$((r / 1024))" "$((z / 1024))" \
    "$(ratio "$z" "$mail_kib")" "$(ratio "$((z * 1024))" "$mail_bytes")"
done
echo
echo "full index msgs/s, maildsar / mu:      $(ratio "$(rate "$m_full")" "$(rate "$u_full")")  (issue 14: >= 2.0)"
echo "full index msgs/s, maildsar / notmuch: $(ratio "$(rate "$m_full")" "$(rate "$n_full")")"
echo "no-op re-index time, maildsar / notmuch: $(ratio "$m_noop" "$n_noop")  (issue 14: <= 1)"
echo "no-op re-index time, maildsar / mu:      $(ratio "$m_noop" "$u_noop")"
echo "index size / mail on disk, maildsar: $(ratio "$m_size" "$mail_kib"), mu: $(ratio "$u_size" "$mail_kib")  (issue 14: <= 0.40)"
echo "index size, maildsar / mu:             $(ratio "$m_size" "$u_size")"
echo "peak RSS of the full index, maildsar:  $((m_rss / 1024)) MiB  (issue 14: <= 150)"
if [ -n "$baseline" ]; then
  echo "full index msgs/s, baseline / mu:      $(ratio "$(rate "$baseline_full")" "$(rate "$u_full")")  (BASELINE=$baseline)"
  echo "full index time, maildsar / baseline:  $(ratio "$m_full" "$baseline_full")"
  echo "index size, maildsar / baseline:       $(ratio "$m_size" "$baseline_size")"
fi
