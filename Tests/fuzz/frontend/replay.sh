#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Runs the front-end fuzz harness once over every seed (make-seeds.sh) and every
# regression input (Tests/fuzz/frontend/regressions): a trap, a sanitizer report or
# a leak fails. Usage: replay.sh [HARNESS [SEED_DIR]]  (defaults: make fuzz-frontend-build)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BIN=${1:-$ROOT/.build-fuzz/swift/release/FrontendFuzz}
SEEDS=${2:-$ROOT/.build-fuzz/frontend/seeds}
[ -x "$BIN" ] || make -s -C "$ROOT" fuzz-frontend-build >&2
[ -d "$SEEDS" ] || "$HERE/make-seeds.sh" "$SEEDS" >&2
inputs=()
for f in "$SEEDS"/* "$HERE"/regressions/*; do
	[ -f "$f" ] && [ "${f##*.}" != md ] && inputs+=("$f")
done
[ ${#inputs[@]} -gt 0 ] || { echo "replay: no inputs" >&2; exit 1; }
log="${TMPDIR:-/tmp}/x2b-fuzz-frontend-replay.$$.log"
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$HERE/lsan.supp timeout 600 "$BIN" -runs=1 -timeout=60 -rss_limit_mb=4096 "${inputs[@]}" >/dev/null 2>"$log" || {
	cat "$log" >&2
	rm -f "$log"
	echo "replay: FAILED" >&2
	exit 1
}
rm -f "$log"
echo "replay: ${#inputs[@]} inputs (seeds and regressions) ran clean through the front end"
