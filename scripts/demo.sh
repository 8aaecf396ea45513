#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Quick start (a): install, build, index the sample estate and show what it holds for the
# sample subject (samples/subject.json). The sample estate is copied to a scratch folder, so
# samples/ is never written to.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
"$here/scripts/build.sh" "$here/build" -DMAILDSAR_BUILD_TESTS=OFF
estate=$(mktemp -d "${TMPDIR:-/tmp}/maildsar-demo.XXXXXX")
cp -a "$here/samples/." "$estate/"
bin="$here/build/cli/maildsar"
echo "== maildsar index (sample estate in $estate)"
"$bin" -c "$estate/maildsar.json" index
echo
echo "== maildsar find --subject samples/subject.json"
"$bin" -c "$estate/maildsar.json" find --subject "$estate/subject.json"
