#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The deployment examples of docs/deploy.md, as users run them (no root needed):
#   - examples/ci/pipeline.sh on examples/bookinfo (check, route-check, compile, reproducible,
#     inspect, SHA256SUMS), its failures (a rejected snapshot, a failing route-check test), and
#     --base on examples/minimal (an endpoint-only change gives a delta; a listener change none);
#   - xds2bpf diff on examples/minimal edits (renames, an endpoint, a listener port), every example
#     confirmed by explain on both sides (confirm-diff.py), and the pipeline's --previous step;
#   - examples/k8s/*.yaml against the Kubernetes schemas (kubernetes-validate --strict, .venv).
# Usage: Tests/ci/run-pipeline.sh   (XDS2BPF names the compiler)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/scripts/env.sh"
export XDS2BPF=${XDS2BPF:-$ROOT/.build/release/xds2bpf}
PIPELINE=$ROOT/examples/ci/pipeline.sh
TMP=$(mktemp -d /tmp/xds2bpf-ci.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0

ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
expect() { # expect WANT-RC WHAT CMD...: runs CMD (log in $TMP/log), checks its exit code
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$TMP/log" 2>&1 || rc=$?
	if [ "$rc" = "$want" ]; then ok "$what (exit $rc)"; else
		bad "$what: exit $rc, expected $want"
		tail -20 "$TMP/log" | sed 's/^/    /'
	fi
}

if [ ! -x "$XDS2BPF" ]; then
	echo "FAIL: no compiler at $XDS2BPF (make build)" >&2
	exit 1
fi

# 1. the bookinfo pipeline
expect 0 "pipeline on examples/bookinfo" "$PIPELINE" -o "$TMP/out" \
	--route-check 9080="$ROOT/examples/ci/bookinfo-9080.tests.json" "$ROOT/examples/bookinfo/bookinfo.json"
grep -q "7 passed, 0 failed" "$TMP/log" && ok "route-check: the 7 bookinfo tests ran" || bad "route-check summary missing"
grep -q "byte-identical" "$TMP/log" && ok "the bundle is reproducible" || bad "no reproducibility line"
for f in bundle.tar diagnostics.json inspect.json routes/9080.json SHA256SUMS; do
	[ -s "$TMP/out/$f" ] && ok "published $f" || bad "missing $f"
done
(cd "$TMP/out" && sha256sum -c --quiet SHA256SUMS) && ok "SHA256SUMS checks" || bad "SHA256SUMS does not check"
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["listeners"]))' "$TMP/out/inspect.json")" = 6 ] &&
	ok "inspect.json lists the 6 listeners" || bad "inspect.json"

# 2. failures stop the pipeline with the step's exit code
sed 's/"outbound|9080|v3|reviews.default.svc.cluster.local"}}/"outbound|9080|v1|reviews.default.svc.cluster.local"}}/' \
	"$ROOT/examples/ci/bookinfo-9080.tests.json" >"$TMP/wrong.tests.json"
expect 1 "a route-check test that fails stops the pipeline" "$PIPELINE" -o "$TMP/out2" \
	--route-check 9080="$TMP/wrong.tests.json" "$ROOT/examples/bookinfo/bookinfo.json"
[ ! -e "$TMP/out2/bundle.tar" ] && ok "nothing compiled after the failed route-check" || bad "compiled anyway"
expect 1 "a route configuration the snapshot lacks" "$PIPELINE" -o "$TMP/out3" \
	--route-check nope="$ROOT/examples/ci/bookinfo-9080.tests.json" "$ROOT/examples/bookinfo/bookinfo.json"
sed 's/address: 10.96.0.1,/address: 10.96.0.999,/' "$ROOT/examples/minimal/snapshot.yaml" >"$TMP/broken.yaml"
expect 1 "a rejected snapshot stops the pipeline" "$PIPELINE" -o "$TMP/out4" "$TMP/broken.yaml"
[ ! -e "$TMP/out4/bundle.tar" ] && ok "nothing compiled from the rejected snapshot" || bad "compiled a rejected snapshot"
grep -q '"XDS105"' "$TMP/out4/diagnostics.json" 2>/dev/null && ok "diagnostics.json of the rejected snapshot" ||
	bad "no diagnostics.json for the rejected snapshot"
expect 2 "usage: no snapshot" "$PIPELINE" -o "$TMP/out5"

# 3. --base: endpoint-only changes give a delta for in-place updates
expect 0 "pipeline on examples/minimal" "$PIPELINE" -o "$TMP/m1" "$ROOT/examples/minimal/snapshot.yaml"
sed 's/port_value: 8080/port_value: 8081/' "$ROOT/examples/minimal/snapshot.yaml" >"$TMP/ep.yaml"
expect 0 "pipeline --base: an endpoint changed" "$PIPELINE" -o "$TMP/m2" --base "$TMP/m1/bundle.tar" "$TMP/ep.yaml"
[ -s "$TMP/m2/delta.pb" ] && ok "an endpoint-only change gives delta.pb" || bad "no delta.pb"
sed 's/port_value: 80}/port_value: 81}/' "$ROOT/examples/minimal/snapshot.yaml" >"$TMP/lsn.yaml"
expect 0 "pipeline --base: the listener changed" "$PIPELINE" -o "$TMP/m3" --base "$TMP/m1/bundle.tar" "$TMP/lsn.yaml"
[ ! -e "$TMP/m3/delta.pb" ] && grep -q "nodes replace the bundle" "$TMP/log" && ok "a listener change gives no delta" ||
	bad "a listener change gave a delta"

# 4. xds2bpf diff: routing changes, each example confirmed by explain on both sides (docs/diff.md)
MIN=$ROOT/examples/minimal/snapshot.yaml
expect 0 "diff: the same snapshot" "$XDS2BPF" diff --fail-on-change "$MIN" "$MIN"
grep -qx "routing unchanged" "$TMP/log" && ok "diff: routing unchanged" || bad "diff of a snapshot with itself"
sed 's/backend/renamed-backend/g; s/name: web/name: renamed-web/' "$MIN" >"$TMP/renamed.yaml"
expect 0 "diff --fail-on-change: every resource renamed" "$XDS2BPF" diff --fail-on-change "$MIN" "$TMP/renamed.yaml"
expect 0 "diff without --fail-on-change: an endpoint moved" "$XDS2BPF" diff "$MIN" "$TMP/ep.yaml"
grep -q "127.0.0.1:8081 100.0%" "$TMP/log" && ok "diff names the new endpoint" || bad "diff text lacks the new endpoint"
BOOKINFO=$ROOT/examples/bookinfo/bookinfo.json
sed 's/"weight": 50/"weight": 60/; s/"weight": 30/"weight": 20/' "$BOOKINFO" >"$TMP/weights.json"
for pair in "$MIN $TMP/ep.yaml" "$MIN $TMP/lsn.yaml" "$BOOKINFO $TMP/weights.json"; do
	set -- $pair
	rc=0 name=$(basename "$2")
	"$XDS2BPF" diff --json --fail-on-change "$1" "$2" >"$TMP/diff-$name.json" 2>"$TMP/log" || rc=$?
	[ "$rc" = 1 ] && ok "diff --fail-on-change: $name changed routing (exit 1)" || bad "diff $name: exit $rc"
	expect 0 "diff $name: every example confirmed by explain" python3 "$ROOT/Tests/ci/confirm-diff.py" "$XDS2BPF" \
		"$TMP/diff-$name.json" "$1" "$2"
done
grep -q "confirmed 0.0.0.0:9080 GET reviews.default.svc.cluster.local/" "$TMP/log" && ok "diff: bookinfo's reviews split, per request" ||
	bad "diff of the reviews weights: no request-level change confirmed"
python3 -c 'import json,sys; sys.exit(0 if [c["service"] for c in json.load(open(sys.argv[1]))["changes"]] == ["10.96.0.1:80", "10.96.0.1:81"] else 1)' \
	"$TMP/diff-lsn.yaml.json" && ok "diff: the listener's new port" || bad "diff-lsn.json lacks 10.96.0.1:81"
expect 1 "diff: a rejected snapshot" "$XDS2BPF" diff "$MIN" "$TMP/broken.yaml"
expect 2 "diff: one snapshot only" "$XDS2BPF" diff "$MIN"
expect 0 "pipeline --previous: the routing diff published" "$PIPELINE" -o "$TMP/m5" --previous "$MIN" "$TMP/lsn.yaml"
[ -s "$TMP/m5/routing-diff.json" ] && [ -s "$TMP/m5/routing-diff.txt" ] && ok "published routing-diff.json and .txt" ||
	bad "no routing-diff in the pipeline's output"
expect 1 "pipeline --previous --fail-on-change stops on a routing change" "$PIPELINE" -o "$TMP/m6" --previous "$MIN" \
	--fail-on-change "$TMP/lsn.yaml"
[ ! -e "$TMP/m6/bundle.tar" ] && ok "nothing compiled after the routing change" || bad "compiled despite --fail-on-change"

# 5. the Kubernetes manifests against the schemas
if command -v kubernetes-validate >/dev/null; then
	for f in "$ROOT"/examples/k8s/*.yaml; do
		expect 0 "kubernetes-validate --strict $(basename "$f")" kubernetes-validate --strict --quiet "$f"
	done
else
	bad "kubernetes-validate not found (scripts/install-deps.sh installs scripts/requirements.txt into .venv)"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
