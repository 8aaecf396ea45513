#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The Debian package, end to end (ctest "package_deb"; normal build only, never under ASan):
# build the .deb from this build tree with CPack, install it with apt-get, run the installed
# program (version, config check, the sample estate as the system user), read its man pages,
# purge it and check that nothing is left but the system user (which Debian policy keeps).
#
#   test_deb.sh BUILD_DIR SOURCE_DIR VERSION
#
# Exit 77 (ctest: skipped, with the reason on stdout) when not root, without dpkg/apt-get/cpack,
# or when this machine already has maildsar installed in /usr or /etc (never touched). The
# package is purged on every way out, failure and signals included; the build-tree tests never
# use it (they run build/cli/maildsar, which finds its workers and phone module in the tree).
set -uo pipefail

build=${1:?build dir}
src=${2:?source dir}
version=${3:?version}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "not root: installing a .deb needs root (CI runs as root)"
for tool in dpkg dpkg-deb dpkg-query dpkg-shlibdeps apt-get cpack runuser flock; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done

# One package test at a time on this machine (several build trees may run their suites).
exec 9>/run/lock/maildsar-package-test.lock || fail "cannot open the lock file"
flock -w 900 9 || fail "another maildsar package test holds /run/lock/maildsar-package-test.lock"

if dpkg-query -W -f='${Status}' maildsar 2>/dev/null | grep -q 'installed'; then
  skip "a maildsar package is installed on this machine already; not replacing it"
fi
for path in /usr/bin/maildsar /etc/maildsar /var/lib/maildsar /usr/libexec/maildsar /usr/lib/maildsar; do
  [ ! -e "$path" ] || skip "$path exists (not from a package); not overwriting it"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/maildsar-deb.XXXXXX") || fail "mktemp"
chmod 0755 "$work"
installed=0
cleanup() {
  if [ "$installed" -eq 1 ]; then
    dpkg -P maildsar >"$work/purge-on-exit.log" 2>&1 || cat "$work/purge-on-exit.log" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "== cpack"
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/pkg" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$work"/pkg/maildsar_"$version"_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "no maildsar_${version}_*.deb in $work/pkg"
dpkg-deb -f "$deb" Depends | grep -q 'libxapian30' || fail "Depends lacks the shared libraries (shlibdeps): $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -f "$deb" Depends | grep -q 'adduser' || fail "Depends lacks adduser (postinst)"
dpkg-deb -f "$deb" Depends | grep -q 'libarchive13' || fail "Depends lacks libarchive13 (opened with dlopen)"

echo "== apt-get install ./$(basename "$deb")"
installed=1 # from here on, the trap purges whatever part got installed
(cd "$work/pkg" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  -o DPkg::Lock::Timeout=300 "./$(basename "$deb")") >"$work/apt.log" 2>&1 ||
  { cat "$work/apt.log" >&2; fail "apt-get install failed"; }
dpkg-query -W -f='${Status}' maildsar | grep -q 'install ok installed' || fail "maildsar is not installed"

echo "== the installed files"
out=$(/usr/bin/maildsar --version) || fail "maildsar --version failed"
grep -q "^maildsar $version\$" <<<"$out" || fail "maildsar --version says: $out"
getent passwd maildsar >/dev/null || fail "postinst did not create the system user maildsar"
[ "$(stat -c '%U:%G %a' /var/lib/maildsar)" = "maildsar:maildsar 700" ] ||
  fail "/var/lib/maildsar is $(stat -c '%U:%G %a' /var/lib/maildsar), not maildsar:maildsar 700"
[ "$(stat -c '%U:%G %a' /etc/maildsar/maildsar.json)" = "root:maildsar 640" ] ||
  fail "/etc/maildsar/maildsar.json is $(stat -c '%U:%G %a' /etc/maildsar/maildsar.json), not root:maildsar 640"
dpkg-query -W -f='${Conffiles}' maildsar | grep -q '/etc/maildsar/maildsar.json' ||
  fail "/etc/maildsar/maildsar.json is no conffile"
for f in /usr/libexec/maildsar/maildsar-worker /usr/libexec/maildsar/maildsar-extract-worker \
         /usr/lib/maildsar/libmaildsar-phone.so /usr/lib/maildsar/libmaildsar-pdf.so /usr/lib/maildsar/libmaildsar-sign.so /usr/lib/maildsar/libmaildsar-html.so \
         /usr/lib/systemd/system/maildsar-index.service \
         /usr/lib/systemd/system/maildsar-index.timer /usr/lib/systemd/system/maildsar-agent.socket \
         /usr/lib/systemd/system/maildsar-agent.service /usr/bin/maildsar-connect \
         /usr/share/bash-completion/completions/maildsar \
         /usr/share/zsh/vendor-completions/_maildsar /usr/share/doc/maildsar/examples/maildsar.json \
         /usr/share/doc/maildsar/copyright; do
  [ -f "$f" ] || fail "$f is not installed"
done
grep -q '^ExecStart=/usr/bin/maildsar ' /usr/lib/systemd/system/maildsar-index.service ||
  fail "the unit does not run /usr/bin/maildsar: $(grep ExecStart /usr/lib/systemd/system/maildsar-index.service)"
grep -q '^ExecStart=/usr/bin/maildsar .* agent --listen /run/maildsar/agent.sock$' /usr/lib/systemd/system/maildsar-agent.service ||
  fail "the agent unit does not run /usr/bin/maildsar: $(grep ExecStart /usr/lib/systemd/system/maildsar-agent.service)"

echo "== the shipped config, as the system user"
runuser -u maildsar -- /usr/bin/maildsar -c /etc/maildsar/maildsar.json config check --json >"$work/check.json" 2>&1
rc=$?
# 1: warnings (no sources yet) — the shipped config parses and validates
[ "$rc" -eq 0 ] || [ "$rc" -eq 1 ] || { cat "$work/check.json" >&2; fail "config check of the shipped config: exit $rc"; }

echo "== the sample estate, as the system user"
mkdir "$work/estate" && cp -a "$src/samples/." "$work/estate/" || fail "cannot copy samples/"
chown -R maildsar:maildsar "$work/estate"
runuser -u maildsar -- /usr/bin/maildsar -c "$work/estate/maildsar.json" index >"$work/index.log" 2>&1 ||
  { cat "$work/index.log" >&2; fail "index of the sample estate failed"; }
runuser -u maildsar -- /usr/bin/maildsar -c "$work/estate/maildsar.json" find --subject "$work/estate/subject.json" \
  --phone "+44 20 7946 0123" >"$work/find.log" 2>&1 || { cat "$work/find.log" >&2; fail "find failed"; }
grep -Eq '^[1-9][0-9]* item\(s\) held for ' "$work/find.log" ||
  { cat "$work/find.log" >&2; fail "find found nothing in the sample estate"; }
# The access package's report.pdf comes from the PDF module, which the installed program must
# find beside itself (/usr/lib/maildsar), not in the build tree.
runuser -u maildsar -- /usr/bin/maildsar -c "$work/estate/maildsar.json" export --subject "$work/estate/subject.json" \
  --out "$work/estate/package" >"$work/export.log" 2>&1 || { cat "$work/export.log" >&2; fail "export failed"; }
head -c 5 "$work/estate/package/report.pdf" | grep -q '^%PDF-' || fail "export wrote no report.pdf"

echo "== man maildsar, man 5 maildsar.json"
MANWIDTH=80 man maildsar >"$work/man1.txt" 2>"$work/man1.err" || fail "man maildsar: $(cat "$work/man1.err")"
[ ! -s "$work/man1.err" ] || fail "man maildsar warns: $(cat "$work/man1.err")"
grep -q 'EXIT STATUS' "$work/man1.txt" || fail "man maildsar has no EXIT STATUS"
MANWIDTH=80 man 5 maildsar.json >"$work/man5.txt" 2>"$work/man5.err" || fail "man 5 maildsar.json: $(cat "$work/man5.err")"
grep -q 'max_removal_percent' "$work/man5.txt" || fail "man 5 maildsar.json lacks the config keys"

echo "== dpkg -P maildsar"
files=$(dpkg-query -L maildsar) || fail "dpkg-query -L"
dpkg -P maildsar >"$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; fail "dpkg -P maildsar failed"; }
installed=0
dpkg-query -W -f='${Status}' maildsar 2>/dev/null | grep -q 'installed' && fail "maildsar is still installed"
left=()
while IFS= read -r path; do
  case "$path" in
    /|/. ) continue ;;
  esac
  if [ -f "$path" ] || [ -L "$path" ]; then left+=("$path"); fi
  if [ -d "$path" ] && [[ "$path" == *maildsar* ]]; then left+=("$path/"); fi
done <<<"$files"
for path in /etc/maildsar /var/lib/maildsar; do
  [ ! -e "$path" ] || left+=("$path")
done
[ ${#left[@]} -eq 0 ] || fail "left after purge: ${left[*]}"
# Kept on purpose (Debian policy): the system user maildsar, so that files it owns elsewhere
# (backups of the state) never pass to a reused uid.
getent passwd maildsar >/dev/null && echo "kept: the system user maildsar"
echo "package test: installed, ran and purged $(basename "$deb")"
