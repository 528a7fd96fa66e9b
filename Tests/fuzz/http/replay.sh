#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Runs the HTTP head parser's fuzz harness once over every seed (make-seeds.py) and
# every regression input (Tests/fuzz/http/regressions): a failed invariant, a
# sanitizer report or a leak fails. Usage: replay.sh [HARNESS [SEED_DIR]]
# (defaults: make fuzz-http-build, make fuzz-http-seeds)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BIN=${1:-$ROOT/.build-fuzz/http/fuzz_http}
SEEDS=${2:-$ROOT/.build-fuzz/http/seeds}
[ -x "$BIN" ] || make -s -C "$ROOT" fuzz-http-build >&2
[ -d "$SEEDS" ] || make -s -C "$ROOT" fuzz-http-seeds >&2
inputs=()
for f in "$SEEDS"/* "$HERE"/regressions/*; do
	[ -f "$f" ] && [ "${f##*.}" != md ] && inputs+=("$f")
done
[ ${#inputs[@]} -gt 0 ] || { echo "replay: no inputs" >&2; exit 1; }
log="${TMPDIR:-/tmp}/x2b-fuzz-http-replay.$$.log"
ASAN_OPTIONS=detect_leaks=1 "$BIN" -runs=1 "${inputs[@]}" >/dev/null 2>"$log" || {
	cat "$log" >&2
	rm -f "$log"
	echo "replay: FAILED" >&2
	exit 1
}
rm -f "$log"
echo "replay: ${#inputs[@]} inputs (seeds and regressions) ran clean through the HTTP head parser"
