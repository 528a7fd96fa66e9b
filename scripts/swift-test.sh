#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The XCTest suites over the already built test bundle, in one process, with XCTest's
# own output unfiltered (every case started/passed/failed/skipped, with its reason;
# SwiftPM's --parallel runner prints neither skips nor counts). Closes with XCTest's
# count ("Executed N tests, with S tests skipped and F failures"), the skipped tests
# again, and one line: "swift-test: N passed, F failed, S skipped".
#   scripts/swift-test.sh [swift test options...]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/env.sh"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"${SWIFT:-swift}" test --skip-build "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
grep -E "error: .* : Test skipped|skipped - |Test skipped" "$log" | sed 's/^/  skipped: /' | head -50
python3 - "$log" "$rc" <<'PY'
import re, sys
text, rc = open(sys.argv[1], errors="replace").read(), int(sys.argv[2])
m = re.findall(r"Executed (\d+) tests?, with (?:(\d+) tests? skipped and )?(\d+) failures?", text)
if not m:
    print(f"swift-test: no XCTest summary; exit {rc}")
    sys.exit(rc or 1)
n, s, f = (int(x or 0) for x in m[-1])
print(f"swift-test: {n - s - f} passed, {f} failed, {s} skipped")
sys.exit(1 if f or rc else 0)
PY
