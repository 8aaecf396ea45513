#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmark (issue 15): what one host costs a `find` over real ssh, with the agent started per
# search (the forced command `maildsar -c CONFIG agent`) and with a listening agent (the forced
# command `maildsar-connect SOCKET` to `maildsar agent --listen SOCKET`), against the same
# search local. A private sshd on a free 127.0.0.1 port (its own config, host key,
# authorized_keys, pid file and log in a temp dir; the machine's sshd, /etc/ssh and ~/.ssh are
# not used), logging in the benchmark's own account with two keys, one per forced command. The
# DPO side's ssh keeps one master connection per host alias (ControlMaster auto, ControlPersist;
# ControlPath by alias, %n: the two aliases reach the same address with different keys, and a
# session runs the forced command of the key its master authenticated with), as
# docs/deployment.md advises, so that what is timed is a session, not a key exchange.
# A third key, whose forced command is /bin/true, times an ssh session that does nothing: what
# ssh itself costs per search, which no agent can remove (only a session kept open between
# searches could).
# Needs openssh-server, openssh-client and hyperfine.
# Usage: bench/hosts_ssh_bench.sh [RUNS] (default 40)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-40}
build=$(realpath -m "${BUILD:-$here/build}") # absolute: sshd and the agents run elsewhere
bin="$build/cli/maildsar"
connect="$build/cli/maildsar-connect"
[ -x "$bin" ] || "$here/scripts/build.sh" "$build" -DMAILDSAR_BUILD_TESTS=OFF
for p in /usr/sbin/sshd ssh ssh-keygen hyperfine; do
  command -v "$p" >/dev/null || { echo "$p is needed (openssh-server, openssh-client, hyperfine)" >&2; exit 69; }
done
user=$(id -un)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/maildsar-ssh-bench.XXXXXX")
chmod 0755 "$work"
pids=()
cleanup() {
  ssh -F "$work/ssh_config" -O exit per.test 2>/dev/null || true
  ssh -F "$work/ssh_config" -O exit listen.test 2>/dev/null || true
  ssh -F "$work/ssh_config" -O exit true.test 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cp -r "$here/samples" "$work/host"
rm -rf "$work/host/state"
"$bin" -c "$work/host/maildsar.json" index -q >/dev/null
"$bin" -c "$work/host/maildsar.json" agent --listen "$work/agent.sock" 2>"$work/agent.log" &
pids+=($!)

ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/key_per"
ssh-keygen -q -t ed25519 -N '' -f "$work/key_listen"
ssh-keygen -q -t ed25519 -N '' -f "$work/key_true"
{
  echo "command=\"$bin -c $work/host/maildsar.json agent\",restrict $(cat "$work/key_per.pub")"
  echo "command=\"$connect $work/agent.sock\",restrict $(cat "$work/key_listen.pub")"
  echo "command=\"/bin/true\",restrict $(cat "$work/key_true.pub")"
} >"$work/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
[ "$(id -u)" != 0 ] || { mkdir -p /run/sshd; chmod 0755 /run/sshd; }
cat >"$work/sshd_config" <<EOF
ListenAddress 127.0.0.1:$port
HostKey $work/host_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin forced-commands-only
AllowUsers $user
UseDNS no
PrintMotd no
PrintLastLog no
SetEnv SHLVL=1
EOF
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
pids+=($!)
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$work/host_key.pub")" >"$work/known_hosts"
cat >"$work/ssh_config" <<EOF
Host per.test
  IdentityFile $work/key_per
Host listen.test
  IdentityFile $work/key_listen
Host true.test
  IdentityFile $work/key_true
Host *
  HostName 127.0.0.1
  Port $port
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile $work/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  ControlMaster auto
  ControlPath $work/cm-%n
  ControlPersist 10m
  LogLevel ERROR
EOF
mkdir -p "$work/bin"
printf '#!/bin/sh\nexec %s -F %s "$@"\n' "$(command -v ssh)" "$work/ssh_config" >"$work/bin/ssh"
chmod 0755 "$work/bin/ssh"
for h in per listen; do
  printf '{"state_dir": "%s/dpo-%s", "hosts": [{"name": "h", "transport": "ssh", "ssh": "%s@%s.test"}]}\n' \
    "$work" "$h" "$user" "$h" >"$work/dpo-$h.json"
done
for _ in $(seq 100); do [ -S "$work/agent.sock" ] && [ -s "$work/sshd.pid" ] && break; sleep 0.05; done

subject=(--email alice.smith@example.com)
export PATH="$work/bin:$PATH"
local_n=$("$bin" -c "$work/host/maildsar.json" --json find "${subject[@]}" | wc -l)
for h in per listen; do
  n=$("$bin" -c "$work/dpo-$h.json" --json find "${subject[@]}" | grep -vc '"schema"' || true)
  [ "$n" = "$local_n" ] || { echo "different answers: local $local_n, over ssh ($h) $n" >&2; cat "$work/sshd.log" >&2; exit 1; }
done
echo "find of $local_n item(s): local, and one host over ssh (master connection kept)" >&2
hyperfine -N -w 5 -r "$runs" --export-json "$work/h.json" \
  -n local "$bin -c $work/host/maildsar.json --json find ${subject[*]}" \
  -n "ssh, agent per search" "$bin -c $work/dpo-per.json --json find ${subject[*]}" \
  -n "ssh, listening agent" "$bin -c $work/dpo-listen.json --json find ${subject[*]}" \
  -n "ssh session alone" "$work/bin/ssh -T $user@true.test" >&2
python3 - "$work/h.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
local = r["local"]["mean"]
print(f"  local                    {local * 1000:7.1f} ± {r['local']['stddev'] * 1000:4.1f} ms")
alone = r["ssh session alone"]["mean"]
print(f"  ssh session alone        {alone * 1000:7.1f} ± {r['ssh session alone']['stddev'] * 1000:4.1f} ms   (forced command /bin/true)")
for name in ("ssh, agent per search", "ssh, listening agent"):
    t = r[name]["mean"]
    print(f"  {name:<24} {t * 1000:7.1f} ± {r[name]['stddev'] * 1000:4.1f} ms   +{(t - local) * 1000:5.1f} ms for the host,"
          f" {(t - local - alone) * 1000:+5.1f} ms beyond ssh's own session")
PY
