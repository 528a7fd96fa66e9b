#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# `swift test --parallel` over the already built tests, then one closing line a reader
# (and CI) can count: "swift test: N passed, N failed, N skipped" — SwiftPM's parallel
# runner prints no totals of its own. The counts come from its xUnit report.
#   scripts/swift-test.sh [swift test options...]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/env.sh"
report=$ROOT/.build/xunit.xml
rm -f "$report"
"${SWIFT:-swift}" test --skip-build --parallel --xunit-output "$report" "$@"
rc=$?
python3 - "$report" "$rc" <<'PY'
import sys
import xml.etree.ElementTree as ET
path, rc = sys.argv[1], int(sys.argv[2])
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as e:
    print(f"swift test: no xUnit report ({e}); exit {rc}")
    sys.exit(rc or 1)
passed = failed = skipped = 0
for case in root.iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
        print(f"  failed: {case.get('classname')}.{case.get('name')}")
    elif case.find("skipped") is not None:
        skipped += 1
        print(f"  skipped: {case.get('classname')}.{case.get('name')}")
    else:
        passed += 1
print(f"swift-test: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or rc else 0)
PY
