#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Completeness benchmark (docs/completeness.md): ground truth over the real-mail estate, then
# recall and false positives of `maildsar find --email`.
#
#   bench/completeness/measure.sh [BINARY] [RUN_DIR]
#
# DATA (default /work/data/recall) holds estate/ (bench/completeness/gather.py builds it from
# the pinned repository snapshots; never commit it) and gt.jsonl (rebuilt when missing or
# older than ground_truth.py; GT=FILE writes and reads it elsewhere, for a DATA that is shared
# read-only). NO_INDEX=1 reuses RUN_DIR's index. BINARY defaults to build/cli/maildsar of this checkout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
binary=${1:-"$root/build/cli/maildsar"}
run=${2:-"${DATA:-/work/data/recall}/run-$(git -C "$root" rev-parse --short HEAD)"}
data=${DATA:-/work/data/recall}
estate="$data/estate"
gt=${GT:-"$data/gt.jsonl"}
[ -d "$estate" ] || python3 "$here/gather.py" --dest "$estate"
if [ ! -s "$gt" ] || [ "$here/ground_truth.py" -nt "$gt" ]; then
  args=()
  for d in "$estate"/maildir/*/; do args+=(--maildir "$d"); done
  for f in "$estate"/mbox/*.mbox "$estate"/mbox/patchwork/*.mbox; do args+=(--mbox "$f"); done
  for f in "$estate"/logs/*.log; do [ -e "$f" ] && args+=(--postfix-log "$f"); done
  for f in "$estate"/pst/*.pst "$estate"/pst/*.ost; do [ -e "$f" ] && args+=(--pst "$f"); done
  python3 "$here/ground_truth.py" "${args[@]}" --workdir "$(dirname "$gt")/readpst" --out "$gt.tmp"
  mv "$gt.tmp" "$gt"
fi
extra=()
if [ -n "${NO_INDEX:-}" ]; then extra+=(--no-index); else rm -rf "$run/state"; fi
python3 "$here/measure.py" --binary "$binary" --estate "$estate" --gt "$gt" --work "$run" \
  --per-stratum "${PER_STRATUM:-40}" --random "${RANDOM_SAMPLE:-150}" --seed "${SEED:-11}" \
  ${extra[@]+"${extra[@]}"}
