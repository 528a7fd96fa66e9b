#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# A bounded run of the Envoy HTTP diff (Tests/envoy/diff-http.py): a real Envoy, `xds2bpf
# explain` and (as root) the compiled BPF matcher in the kernel (`explain --engine bpf`) answer
# the same requests (malformed heads of every class included) for the bookinfo example and six
# corpus cases, with a fixed seed and at most MAX requests per case; Envoy gets each snapshot
# as its bootstrap and again over ADS from Tests/xds/ads_server.py (--via both), then GEN random snapshots (Tests/envoy/diff-http-gen.py, at most MAX requests
# each) with the weighted-cluster share test (WEIGHTED requests per route, chi-square at
# 99.9%). Fails on any disagreement (`make envoy-diff` is the full run).
#   Tests/envoy/run-http-diff.sh   (XDS2BPF names the compiler; SEED, MAX, GEN, WEIGHTED override)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/scripts/env.sh"
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
SEED=${SEED:-16}
MAX=${MAX:-120}
GEN=${GEN:-4}
WEIGHTED=${WEIGHTED:-1000}
ALLOW='^$'
if ! command -v python3 >/dev/null || [ ! -x "${ENVOY:-$ROOT/.venv/bin/envoy}" ]; then
	echo "SKIP: Envoy HTTP diff: no Envoy (run scripts/install-deps.sh)"
	exit 0
fi
# case: files, then extra arguments after --
cases=("$ROOT/examples/bookinfo/bookinfo.json")
if [ -n "$CORPUS" ]; then
	# http-route's RouteMatch has `cookies` (Envoy Gateway's IR, no field of Envoy's RouteMatch):
	# Envoy's bootstrap loader and the ADS server's JSON-to-proto conversion read it differently
	# (two requests answer 404 from the bootstrap, a cluster over ADS): bootstrap only.
	cases+=("$CORPUS/envoy-gateway/xds-ir/http-route/ --via bootstrap"
		"$CORPUS/kuma/per-type/meshhttproute__headers-match/"
		"$CORPUS/kgateway/directresponse.yaml"
		"$CORPUS/envoy-gateway/xds-ir/http-route-direct-response/"
		"$CORPUS/envoy-router-check/ContentType.yaml --kind route"
		"$CORPUS/envoy-router-check/Redirect.yaml --kind route")
else
	x2b_no_corpus "Envoy HTTP diff over corpus cases (bookinfo only)"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
i=0
for c in "${cases[@]}"; do
	i=$((i + 1))
	read -r path extra <<<"$c"
	if [ -d "$path" ]; then files=("$path"*.yaml); else files=("$path"); fi
	# shellcheck disable=SC2086
	timeout 300 env XDS2BPF="$XDS2BPF" python3 "$ROOT/Tests/envoy/diff-http.py" "${files[@]}" \
		--seed "$SEED" --max "$MAX" --via both $extra --out "$tmp/$i.jsonl" >"$tmp/$i.txt" 2>&1
	rc=$?
	name=${path#"$ROOT"/}
	name=${name#"$CORPUS"/}
	grep -h '^diff-http: bpf engine skipped' "$tmp/$i.txt" | head -1
	if [ "$rc" -gt 1 ] || [ ! -s "$tmp/$i.jsonl" ]; then
		echo "FAIL $name: diff-http exit $rc"
		tail -5 "$tmp/$i.txt" | sed 's/^/    /'
		fail=1
		continue
	fi
	bad=$(python3 - "$tmp/$i.jsonl" "$ALLOW" <<'PY'
import json, re, sys
allow = re.compile(sys.argv[2])
n = ok = allowed = ads = asked = 0
bpf = {}
bad = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    n += 1
    ads += r.get("ads_agree", False)
    asked += "ads_agree" in r
    for k in ("bpf_envoy", "bpf_explain"):
        if k in r:
            bpf.setdefault(k, {}).setdefault(r[k], 0)
            bpf[k][r[k]] += 1
    what = f"  [{r['class']}] {r['method']} {r['target'][:60]!r} Host {r['authority'][:40]!r}: Envoy {r['envoy']}, xds2bpf {' | '.join(r['xds2bpf'])}"
    if "disagree" in (r.get("bpf_envoy"), r.get("bpf_explain")):
        bad.append(what + f", bpf {' | '.join(r['bpf'])} ({r['bpf_kind']})")
    if r.get("ads_agree") is False:
        bad.append(what + f", Envoy over ADS {r['envoy_ads']}")
    if r["agree"]:
        ok += 1
    elif allow.match(r["class"]):
        allowed += 1
    else:
        bad.append(what)
b = "; ".join(f"bpf vs {k[4:]}: {c.get('agree', 0)} agree, {c.get('disagree', 0)} disagree, {c.get('refused', 0)} refused, "
              f"{c.get('fallback', 0)} L4 fallback" for k, c in sorted(bpf.items())) or "bpf skipped"
print(f"{n} requests, {ok} agree, {allowed} allow-listed, {n - ok - allowed} other; " + (f"Envoy over ADS: {ads} agree; " if asked else "bootstrap only; ") + b)
for b in bad[:10]:
    print(b)
sys.exit(1 if bad else 0)
PY
)
	st=$?
	if [ $st != 0 ]; then
		echo "FAIL $name: $bad"
		fail=1
	else
		echo "ok   $name: $bad"
	fi
done
echo "seed $SEED, at most $MAX requests per case"
timeout 600 env XDS2BPF="$XDS2BPF" python3 "$ROOT/Tests/envoy/diff-http-gen.py" --seed "$SEED" --snapshots "$GEN" \
	--max "$MAX" --weighted "$WEIGHTED" --weighted-routes 2 >"$tmp/gen.txt" 2>&1
rc=$?
grep -E '^(ok|FAIL) +weighted|^DIFF|^diff-http-gen:|^command:' "$tmp/gen.txt" | head -40
if [ $rc != 0 ]; then
	echo "FAIL generated snapshots: diff-http-gen exit $rc"
	tail -5 "$tmp/gen.txt" | sed 's/^/    /'
	fail=1
fi
exit $fail
