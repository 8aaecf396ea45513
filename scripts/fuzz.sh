#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Builds the libFuzzer harnesses (fuzz/, a separate clang tree) and runs each for SECONDS.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]      (default 600 s, every target)
#
# Environment:
#   FUZZ_BUILD   build tree (default build-fuzz)         FUZZ_JOBS  targets at a time (default 2)
#   FUZZ_OUT     corpora, crashes, logs (default $FUZZ_BUILD/fuzz-out)
#   FUZZ_CORPUS  the shared test corpus for seeds (default $MAILDSAR_CORPUS, else ../shared/corpus
#                beside the source tree; optional)
#   FUZZ_CXX     the compiler (default clang++-16; MAILDSAR_FUZZ needs clang >= 16)
#   FUZZ_NO_BUILD=1  run the harnesses already built
#
# Seeds: fuzz/corpus/TARGET (small synthetic inputs kept in the repository), the project's
# samples/, and files of at most 64 KiB from the shared corpus, copied at run time into
# $FUZZ_OUT/seeds (the shared corpus holds real people's mail: it is never committed here).
# Each target runs under `nice -n 10` in libFuzzer's fork mode, which goes on after a crash,
# timeout or out-of-memory: every such input lands in $FUZZ_OUT/crashes/TARGET/. The script
# prints a table (target, seconds, execs, crashes) and exits 1 when any target found something.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-600}
shift || true
build=${FUZZ_BUILD:-"$here/build-fuzz"}
out=${FUZZ_OUT:-"$build/fuzz-out"}
jobs=${FUZZ_JOBS:-2}
shared=${FUZZ_CORPUS:-${MAILDSAR_CORPUS:-"$here/../shared/corpus"}}
cxx=${FUZZ_CXX:-clang++-16}

all_targets=(mime extract mbox maillog_postfix maillog_exim maillog_sendmail maillog_dovecot maillog_exchange
  quarantine mta_queue archive config subject identity redact redact_message erase_redact gz_access folder_name agent_transfer estate_manifest
  log_block)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

case "$seconds" in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a number" >&2; exit 2 ;; esac

# --- build -----------------------------------------------------------------------------------
if [ ! -f "$build/CMakeCache.txt" ]; then
  command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (apt-get install clang-16 libclang-rt-16-dev)" >&2; exit 77; }
  # -O1 and line tables only: the usual libFuzzer trade-off, and a quicker build on small machines.
  CXX=$cxx cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" -DMAILDSAR_FUZZ=ON \
    -DMAILDSAR_BUILD_TESTS=OFF >/dev/null
fi
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  echo "== fuzz: building the harnesses in $build"
  cmake --build "$build" -j "$(nproc)" --target maildsar_fuzzers >/dev/null
fi

# --- seeds -----------------------------------------------------------------------------------
# copy_seeds DEST FILES...: copies each file (<= 64 KiB) into DEST under a name derived from its
# path. When the array `prefixes` is set, its entries (printf formats) cycle over the files and are
# written before the content (harnesses that read a selector byte or a subject line first).
prefixes=()
copy_seeds() {
  local dest=$1 i=0 f name
  shift
  for f in "$@"; do
    [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 65536 ] || continue
    name=$(printf '%s' "$f" | sha1sum | cut -c1-16)
    if [ ${#prefixes[@]} -gt 0 ]; then
      # shellcheck disable=SC2059 # the prefixes are formats on purpose (octal escapes)
      { printf "${prefixes[$((i % ${#prefixes[@]}))]}"; cat "$f"; } >"$dest/$name"
    else
      cp "$f" "$dest/$name"
    fi
    i=$((i + 1))
  done
}

# shared_files PATH... : up to 300 files of the shared corpus at or below each PATH (a folder,
# a file or a glob; sorted, stable).
shared_files() {
  local d p
  for d in "$@"; do
    for p in "$shared"/$d; do
      [ -e "$p" ] && find "$p" -type f -size -65k ! -name '*.md' ! -name '*.json' 2>/dev/null
    done
  done | LC_ALL=C sort | head -n 300
}

seed_target() {
  local t=$1 dir="$out/seeds/$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  [ ! -d "$here/fuzz/corpus/$t" ] || cp "$here/fuzz/corpus/$t"/* "$dir"/ 2>/dev/null || true
  local -a files=()
  prefixes=()
  case $t in
  mime | redact_message | erase_redact)
    mapfile -t files < <(shared_files mime maildir/mu maildir/notmuch/default maildir/mailpile
      find "$here/samples/mail" -type f) ;;
  mbox)
    mapfile -t files < <(shared_files mbox/mimekit mbox/gmime mbox/tika mbox/aspose mbox/exim-testsuite
      echo "$here/samples/archive/2023.mbox") ;;
  maillog_postfix)
    mapfile -t files < <(shared_files logs/postfix-log-parser logs/postfix-grok-patterns logs/fail2ban/postfix \
      'logs/crowdsec-hub/post*'; find "$here/samples/logs" -type f) ;;
  maillog_exim)
    mapfile -t files < <(shared_files logs/exim-testsuite 'logs/fail2ban/exim*' 'logs/crowdsec-hub/exim*') ;;
  maillog_sendmail)
    mapfile -t files < <(shared_files 'logs/fail2ban/sendmail*') ;;
  maillog_dovecot) # format auto: dovecot and every other program of a mail.log
    mapfile -t files < <(shared_files logs/fail2ban 'logs/crowdsec-hub/dovecot*' 'logs/crowdsec-hub/amavis*' \
      'logs/crowdsec-hub/mailscanner*' 'logs/crowdsec-hub/exchange*' | grep -v -E '/(postfix|exim|sendmail)') ;;
  maillog_exchange)
    mapfile -t files < <(shared_files logs/exchange) ;;
  quarantine)
    mapfile -t files < <(shared_files mime/mimekit mime/mime4j mbox/mimekit
      find "$here/samples/quarantine" -type f)
    prefixes=('\000' '\001' '\002' '\003' '\004' '\005' '\006' '\007' '\010' '\011') ;;
  mta_queue) # fuzz/corpus/mta_queue: the sample spool as -H + "\n--data--\n" + -D (selector 1)
    mapfile -t files < <(find "$here/samples/queue/postfix" -type f)
    prefixes=('\000' '\002' '\004') ;;
  agent_transfer) ;; # fuzz/corpus/agent_transfer: base64 chunks and package paths
  estate_manifest) ;; # fuzz/corpus/estate_manifest: an estate manifest with one slice, a binding
  log_block) ;; # fuzz/corpus/log_block: log block document data as the indexer writes it
  archive) ;; # fuzz/corpus/archive: small tar, tar.gz, tar.xz, tar.zst and zip files of the samples
  extract) ;; # fuzz/corpus/extract: small synthetic PDF, OOXML, ODF, RTF, ZIP and gzip files
  config) files=("$here/samples/maildsar.json") ;;
  subject) files=("$here/samples/subject.json") ;;
  identity)
    mapfile -t files < <(find "$here/samples/logs" -type f) ;;
  redact)
    mapfile -t files < <(find "$here/samples/logs" -type f)
    prefixes=('alice.smith@example.com|Alice Smith|+44 20 7946 0123|203.0.113.45\n') ;;
  esac
  copy_seeds "$dir" "${files[@]}"
}

max_len_of() {
  case $1 in
  identity | redact | subject | folder_name | agent_transfer | log_block) echo 4096 ;;
  config) echo 16384 ;;
  *) echo 65536 ;;
  esac
}

dict_of() {
  case $1 in
  mime | mbox | quarantine | mta_queue | archive | redact_message | erase_redact) echo "$here/fuzz/dict/mime.dict" ;;
  extract) echo "$here/fuzz/dict/extract.dict" ;;
  maillog_*) echo "$here/fuzz/dict/maillog.dict" ;;
  config | subject | log_block) echo "$here/fuzz/dict/json.dict" ;;
  identity | redact) echo "$here/fuzz/dict/identity.dict" ;;
  esac
}

# Symbolised stack traces in the logs (clang's llvm-symbolizer is not on PATH under this name).
for s in llvm-symbolizer /usr/lib/llvm-16/bin/llvm-symbolizer; do
  if command -v "$s" >/dev/null; then
    export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v "$s")}
    break
  fi
done

run_target() {
  local t=$1 bin="$build/fuzz/fuzz_$1"
  local corpus="$out/corpus/$t" crashes="$out/crashes/$t" log="$out/logs/$t.log" dict
  mkdir -p "$corpus" "$crashes" "$out/logs"
  dict=$(dict_of "$t")
  local -a args=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
    "-max_total_time=$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10
    "-max_len=$(max_len_of "$t")" "-artifact_prefix=$crashes/")
  [ -z "$dict" ] || [ ! -f "$dict" ] || args+=("-dict=$dict")
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
  LSAN_OPTIONS=suppressions="$here/tests/lsan.supp":print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    nice -n 10 "$bin" "${args[@]}" "$corpus" "$out/seeds/$t" >"$log" 2>&1 || true
}

mkdir -p "$out"
for t in "${targets[@]}"; do
  [ -x "$build/fuzz/fuzz_$t" ] || { echo "fuzz.sh: unknown target $t (have: ${all_targets[*]})" >&2; exit 2; }
  rm -rf "$out/crashes/$t"
  seed_target "$t"
done

[ -d "$shared" ] || echo "fuzz.sh: no shared corpus at $shared (set MAILDSAR_CORPUS): seeds from fuzz/corpus and samples/ only" >&2
echo "== fuzz: ${#targets[@]} targets, $seconds s each, $jobs at a time; output in $out"
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_target "$t" &
  running=$((running + 1))
done
wait

# --- summary ---------------------------------------------------------------------------------
found=0
printf '%-18s %8s %12s %8s %8s %8s  %s\n' target seconds execs crashes timeouts ooms artifacts
for t in "${targets[@]}"; do
  log="$out/logs/$t.log"
  # fork mode: "#RUNS: cov: … exec/s: … oom/timeout/crash: O/T/C time: Ss …"
  stat=$(grep -E '^#[0-9]+: cov:' "$log" | tail -n 1 || true)
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$stat")
  otc=$(sed -E 's|.*oom/timeout/crash: ([0-9]+)/([0-9]+)/([0-9]+).*|\1 \2 \3|' <<<"$stat")
  time=$(sed -E 's/.* time: ([0-9]+)s.*/\1/' <<<"$stat")
  read -r ooms timeouts crashes <<<"${otc:-0 0 0}"
  artifacts=$(find "$out/crashes/$t" -type f 2>/dev/null | wc -l)
  if [ -z "$stat" ]; then
    execs="?" crashes="?" ooms="?" timeouts="?" time="?"
    echo "fuzz.sh: $t did not run; see $log" >&2
    found=1
  fi
  [ "$artifacts" -eq 0 ] && [ "${crashes:-0}" = 0 ] && [ "${timeouts:-0}" = 0 ] && [ "${ooms:-0}" = 0 ] || found=1
  printf '%-18s %8s %12s %8s %8s %8s  %s\n' "$t" "$time" "$execs" "$crashes" "$timeouts" "$ooms" "$artifacts"
done
[ "$found" -eq 0 ] || echo "fuzz.sh: findings in $out/crashes (logs in $out/logs)" >&2
exit "$found"
