#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmark (issue 15): `find` over an estate spread over 3 hosts vs the same estate local.
# Generates a Maildir estate (host a), an mbox archive (host b) and a rotated Postfix log set
# (host c); indexes each under its own config and state (three "hosts" on one machine, reached
# by the program transport, no ssh), and the same three sources under one local config. The
# hosts are reached two ways: an agent process per search (`maildsar -c HOST.json agent`, the
# plain forced command) and listening agents (`maildsar -c HOST.json agent --listen SOCKET`,
# reached by `maildsar-connect SOCKET`). Times `find --json` for the subject on each (best of
# RUNS runs, after one warm-up) and prints the ratio hosts/local and the extra time per host in
# ms (the hosts are asked in parallel: on a machine with fewer cores than hosts + 1 they share
# the CPU).
# ssh adds its own connection set-up per host (tens of ms without ControlMaster; see
# docs/deployment.md) on top of what this measures.
# Usage: bench/hosts_bench.sh [MESSAGES [MBOX_MB [LOG_MB [RUNS]]]] (defaults 5000 64 64 5)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
messages=${1:-5000}
mbox_mb=${2:-64}
log_mb=${3:-64}
runs=${4:-5}
build=$(realpath -m "${BUILD:-$here/build}") # absolute: sshd and the agents run elsewhere
bin="$build/cli/maildsar"
connect="$build/cli/maildsar-connect"
[ -x "$bin" ] || "$here/scripts/build.sh" "$build" -DMAILDSAR_BUILD_TESTS=OFF
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 69; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/maildsar-hosts-bench.XXXXXX")
listeners=()
trap 'for p in "${listeners[@]}"; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$work"' EXIT
echo "generating: $messages Maildir messages, a ${mbox_mb} MiB mbox, ${log_mb} MiB of logs ..." >&2
python3 "$here/bench/gen_maildir.py" "$work/a/mail" "$messages" >/dev/null
mkdir -p "$work/b/archive"
python3 "$here/bench/gen_mbox.py" "$work/b/archive/big.mbox" "$mbox_mb" >/dev/null
python3 "$here/bench/gen_logs.py" "$work/c/logs" "$log_mb" 2 >/dev/null

maildir_src='{"name": "mailboxes", "type": "maildir", "path": "'$work'/a/mail/*/Maildir"}'
mbox_src='{"name": "archive", "type": "mbox", "path": "'$work'/b/archive/*.mbox"}'
log_src='{"name": "postfix", "type": "maillog", "format": "postfix", "path": "'$work'/c/logs/mail.log*"}'
host_config() { # NAME SOURCE
  printf '{"state_dir": "%s/%s/state", "host_name": "%s", "sources": [%s]}\n' "$work" "$1" "$1" "$2" >"$work/$1.json"
}
host_config a "$maildir_src"
host_config b "$mbox_src"
host_config c "$log_src"
printf '{"state_dir": "%s/local-state", "sources": [%s, %s, %s]}\n' "$work" "$maildir_src" "$mbox_src" "$log_src" \
  >"$work/local.json"
agent() { printf '{"name": "%s", "transport": "program", "command": ["%s", "-c", "%s/%s.json", "agent"]}' \
  "$1" "$bin" "$work" "$1"; }
printf '{"state_dir": "%s/dpo-state", "hosts": [%s, %s, %s]}\n' "$work" "$(agent a)" "$(agent b)" "$(agent c)" \
  >"$work/dpo.json"
listening() { printf '{"name": "%s", "transport": "program", "command": ["%s", "%s/%s.sock"]}' \
  "$1" "$connect" "$work" "$1"; }
printf '{"state_dir": "%s/dpo-state", "hosts": [%s, %s, %s]}\n' "$work" "$(listening a)" "$(listening b)" \
  "$(listening c)" >"$work/dpo-listen.json"

echo "indexing ..." >&2
for c in a b c local; do "$bin" -c "$work/$c.json" index -q >/dev/null; done
for c in a b c; do
  "$bin" -c "$work/$c.json" agent --listen "$work/$c.sock" 2>>"$work/listen.log" &
  listeners+=($!)
done
for c in a b c; do
  for _ in $(seq 100); do [ -S "$work/$c.sock" ] && break; sleep 0.05; done
done

subject=(--email alice.smith@example.com --email dsar.subject@example.com)
# bash's own clock: a python3 per reading would add its start-up (~0.1 s under pyenv) to each interval
now() { echo "$EPOCHREALTIME"; }
# best CONFIG: the best wall time (s) of $runs runs of find --json after a warm-up (the
# warm-up's hits, without the hosts summary, counted into $work/items)
best() {
  local config=$1 t0 t1 b=""
  "$bin" -c "$config" --json find "${subject[@]}" >"$work/out.json"
  { grep -vc '"schema"' "$work/out.json" || true; } >"$work/items"
  for _ in $(seq "$runs"); do
    t0=$(now); "$bin" -c "$config" --json find "${subject[@]}" >/dev/null; t1=$(now)
    b=$(python3 -c "b='$b'; d=$t1-$t0; print(d if b == '' or d < float(b) else b)")
  done
  echo "$b"
}
local_s=$(best "$work/local.json"); local_items=$(cat "$work/items")
hosts_s=$(best "$work/dpo.json"); hosts_items=$(cat "$work/items")
[ "$local_items" = "$hosts_items" ] || { echo "different answers: local $local_items, hosts $hosts_items item(s)" >&2; exit 1; }
listen_s=$(best "$work/dpo-listen.json"); listen_items=$(cat "$work/items")
[ "$local_items" = "$listen_items" ] || { echo "different answers: local $local_items, listening agents $listen_items item(s)" >&2; exit 1; }
python3 - "$local_s" "$hosts_s" "$listen_s" "$local_items" <<'PY'
import sys
local, hosts, listen, items = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(f"find over 3 hosts vs local: {items} item(s) each way")
print(f"  local                        {local * 1000:8.1f} ms")
for name, t in (("3 hosts, agent per search", hosts), ("3 hosts, listening agents", listen)):
    print(f"  {name}    {t * 1000:8.1f} ms   ratio {t / local:5.2f}   overhead {(t - local) * 1000 / 3:6.1f} ms per host")
PY
