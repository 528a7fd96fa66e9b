#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Compares the guest's HTTP observations (X2B-HOBS lines in LOG) with the
# interpreter's expectations from plan-http.sh, per case (expect.py check).
#   Tests/vm/check-http.sh LOG PLAN-DIR N
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
log=$1 plan=$2 n=$3
pass=0 fail=0
while IFS='|' read -r name _; do
	python3 - "$log" "$name" "$plan/$name/observed.json" <<'PY'
import json, sys
log, name, out = sys.argv[1:4]
obs = {}
for line in open(log, errors="replace"):
    parts = line.rstrip("\r\n").split(" ", 3)
    if len(parts) == 4 and parts[0] == "X2B-HOBS" and parts[1] == name:
        obs[parts[2]] = json.loads(parts[3])
json.dump(obs, open(out, "w"), indent=1, sort_keys=True)
PY
	# every request to an HTTP listener is one decision of the kernel's route
	# matcher, exported per kind by `xds2bpf-loader stats` (X2B-HSTAT lines)
	if ! hstat=$(python3 - "$log" "$name" "$plan/$name/expected.json" "$n" <<'PY'
import json, re, sys
log, name, expected, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
kinds = {}
for line in open(log, errors="replace"):
    parts = line.rstrip("\r\n").split(" ", 2)
    if len(parts) == 3 and parts[0] == "X2B-HSTAT" and parts[1] == name:
        m = re.match(r'xds2bpf_http_decisions_total\{.*kind="([a-z_]+)"\} (\d+)$', parts[2])
        if m:
            kinds[m.group(1)] = int(m.group(2))
http = sum(1 for e in json.load(open(expected)).values() if any(s["stage"] == "virtual_host" for s in e["steps"]))
shown = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()) if v)
if sum(kinds.values()) != n * http:
    print(f"HTTP decisions exported: {sum(kinds.values())} ({shown}), expected {n} x {http} HTTP requests")
    sys.exit(1)
print(f"HTTP decisions exported: {sum(kinds.values())} ({shown or 'none'})")
PY
	); then
		echo "FAIL $name: $hstat"
		fail=$((fail + 1))
		continue
	fi
	if out=$("$ROOT/Tests/e2e/expect.py" check "$plan/$name/expected.json" "$plan/$name/observed.json" "$n" 2>&1); then
		pass=$((pass + 1))
		echo "ok $name ($hstat)"
		echo "$out" | sed 's/^/    /'
	else
		echo "FAIL $name:"
		echo "$out" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
done <"$plan/cases"
echo "check-http: $pass passed, $fail failed"
[ "$fail" = 0 ]
