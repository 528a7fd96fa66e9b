#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Runs the loader's fuzz harness once over every seed and regression input
# (Tests/fuzz/loader/{seeds,regressions}): a crash, a sanitizer report or a
# leak fails. Usage: replay.sh [HARNESS]  (default: built by make fuzz-loader-build)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BIN=${1:-$ROOT/.build-fuzz/loader/fuzz_bundle}
[ -x "$BIN" ] || make -s -C "$ROOT" fuzz-loader-build >&2
inputs=()
for f in "$HERE"/seeds/* "$HERE"/regressions/*; do
	[ -f "$f" ] && [ "${f##*.}" != md ] && inputs+=("$f")
done
[ ${#inputs[@]} -gt 0 ] || { echo "replay: no inputs" >&2; exit 1; }
ASAN_OPTIONS=detect_leaks=1 "$BIN" -runs=1 "${inputs[@]}" >/dev/null 2>"${TMPDIR:-/tmp}/x2b-fuzz-replay.$$.log" || {
	cat "${TMPDIR:-/tmp}/x2b-fuzz-replay.$$.log" >&2
	rm -f "${TMPDIR:-/tmp}/x2b-fuzz-replay.$$.log"
	echo "replay: FAILED" >&2
	exit 1
}
rm -f "${TMPDIR:-/tmp}/x2b-fuzz-replay.$$.log"
echo "replay: ${#inputs[@]} inputs (seeds and regressions) ran clean"
