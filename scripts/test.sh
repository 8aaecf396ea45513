#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Quick start (b): install, build and run every test — once in a normal build and once
# under AddressSanitizer + UndefinedBehaviorSanitizer — then build the libFuzzer harnesses
# (clang) and run each for a short smoke time (FUZZ_SMOKE_SECONDS, default 10).
# Each phase prints its wall-clock and CPU (user + sys, children included) seconds, so every CI
# log says where the time went (docs/reliability.md, "CI wall time").
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
TIMEFORMAT='   (phase: %0R s wall, %0U s user, %0S s sys)'

echo "== install dependencies"
time "$here/scripts/install-deps.sh"

# Debug information: line tables only (-g1) in both CI builds. It does not change the generated
# code (GCC guarantees -g levels do not), sanitizer reports still name function, file and line,
# and a TU compiles with 20-27 % less CPU time (docs/reliability.md, "CI wall time").
echo "== build (RelWithDebInfo, warnings as errors)"
time "$here/scripts/build.sh" "$here/build" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
echo "== tests"
time ctest --test-dir "$here/build" --output-on-failure -j "$jobs"

echo "== build (ASan + UBSan)"
time "$here/scripts/build.sh" "$here/build-asan" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 \
  "-DMAILDSAR_SANITIZE=address;undefined"
echo "== tests under ASan + UBSan"
time env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions="$here/tests/lsan.supp":print_suppressions=0 \
  ctest --test-dir "$here/build-asan" --output-on-failure -j "$jobs"

echo "== fuzz harnesses (clang, libFuzzer): build and smoke run"
time env FUZZ_JOBS="$jobs" "$here/scripts/fuzz.sh" "${FUZZ_SMOKE_SECONDS:-10}"
