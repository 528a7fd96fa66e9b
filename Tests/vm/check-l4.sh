#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Compares what the guest observed (X2B-OBS lines in the serial LOG) with the
# interpreter's expectations written by plan-l4.sh (expect.py check).
#   Tests/vm/check-l4.sh LOG PLAN-DIR N
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
log=$1 plan=$2 n=$3
pass=0 fail=0
while IFS='|' read -r name _ _; do
	line=$(grep -a "^X2B-OBS $name " "$log" | head -1 | tr -d '\r') || true
	if [ -z "$line" ]; then
		echo "FAIL $name: no observation in the guest log"
		fail=$((fail + 1))
		continue
	fi
	echo "${line#X2B-OBS "$name" }" >"$plan/$name/observed.json"
	if out=$("$ROOT/Tests/e2e/expect.py" check "$plan/$name/expected.json" "$plan/$name/observed.json" "$n" 2>&1); then
		pass=$((pass + 1))
		echo "ok $name"
	else
		echo "FAIL $name:"
		echo "$out" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
done <"$plan/cases"
echo "check-l4: $pass passed, $fail failed"
[ "$fail" = 0 ]
