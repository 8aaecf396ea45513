#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Quick start (b): install, build and run every test — once in a normal build and once
# under AddressSanitizer + UndefinedBehaviorSanitizer — then build the libFuzzer harnesses
# (clang) and run each for a short smoke time (FUZZ_SMOKE_SECONDS, default 15).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
"$here/scripts/install-deps.sh"

echo "== build (RelWithDebInfo, warnings as errors)"
"$here/scripts/build.sh" "$here/build"
echo "== tests"
ctest --test-dir "$here/build" --output-on-failure -j "$jobs"

echo "== build (ASan + UBSan)"
"$here/scripts/build.sh" "$here/build-asan" -DCMAKE_BUILD_TYPE=Debug "-DMAILDSAR_SANITIZE=address;undefined"
echo "== tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
LSAN_OPTIONS=suppressions="$here/tests/lsan.supp":print_suppressions=0 \
  ctest --test-dir "$here/build-asan" --output-on-failure -j "$jobs"

echo "== fuzz harnesses (clang, libFuzzer): smoke run"
FUZZ_JOBS=$jobs "$here/scripts/fuzz.sh" "${FUZZ_SMOKE_SECONDS:-15}"
