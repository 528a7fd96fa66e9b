#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# End-to-end L4 tests on the real kernel: compile each case, load the bundle into
# a private netns + cgroup, connect to its service addresses, and compare where
# connections went with `xds2bpf explain` (the IR interpreter), statistically.
# Endpoint addresses are added to lo inside the private netns, so backends are
# loopback sockets there and nothing leaves the namespace; service addresses are
# not assigned, so without the redirect a connect fails.
#   Tests/e2e/run-l4.sh [CASE-FILTER]     (root; SKIP without root/BTF/cgroup2 unless CI=1)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/lib.sh"
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
N=${E2E_CONNECTS:-400}
FILTER=${1:-}

if ! why=$(e2e_can_run 2>&1); then
	[ "${CI:-}" = 1 ] && { echo "FAIL: e2e cannot run: $why"; exit 1; }
	echo "SKIP: $why"; exit 0
fi
e2e_netns_begin
passed=0

# run_case NAME "DST..." SNAPSHOT...
run_case() {
	local name=$1 dsts=$2; shift 2
	[ -n "$FILTER" ] && [[ "$name" != *"$FILTER"* ]] && return 0
	e2e_log "=== case $name"
	local dir=$E2E_TMP/$name bundle eps ep ready pid
	mkdir -p "$dir"
	bundle=$dir/bundle
	"$XDS2BPF" compile --quiet --cache-dir none "$@" -o "$bundle" 2>"$dir/compile.log" || {
		cat "$dir/compile.log" >&2; e2e_fail "$name: compile failed"; }
	# shellcheck disable=SC2086
	eps=$("$HERE/expect.py" plan "$XDS2BPF" "$dir/expected.json" $dsts -- "$@")
	for ep in $eps; do
		local host=${ep%:*}; host=${host#[}; host=${host%]}
		if [[ "$host" == *:* ]]; then
			ip -n "$E2E_NETNS" -6 addr add "$host/128" dev lo nodad 2>/dev/null || true
		else
			ip -n "$E2E_NETNS" addr add "$host/32" dev lo 2>/dev/null || true
		fi
	done
	ready=$dir/ready
	if [ -n "$eps" ]; then
		# shellcheck disable=SC2086
		nsenter --net="/run/netns/$E2E_NETNS" -- "$E2E_PYTHON" "$HERE/multibackend.py" --ready "$ready" $eps \
			>"$dir/backends.log" 2>&1 &
		pid=$!
		e2e_track "$pid"
		for _ in $(seq 100); do [ -s "$ready" ] && break; sleep 0.05; done
		[ -s "$ready" ] || { cat "$dir/backends.log" >&2; e2e_fail "$name: backends did not start"; }
	fi
	e2e_loader load "$bundle" --cgroup "$E2E_CGROUP" --name "c$passed" >/dev/null
	# shellcheck disable=SC2086
	e2e_in_cgroup "$E2E_PYTHON" "$HERE/probe.py" "$N" $dsts --peer >"$dir/observed.json"
	"$HERE/expect.py" check "$dir/expected.json" "$dir/observed.json" "$N" || e2e_fail "$name: kernel disagrees with explain"
	e2e_loader unload --name "c$passed" >/dev/null
	if [ -n "$eps" ]; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
	passed=$((passed + 1))
}

# Destinations for a snapshot's listeners: each listener address, a made-up
# address for wildcard listeners.
e2e_listener_dsts() {
	"$XDS2BPF" dump-ir "$@" 2>/dev/null | awk '$1 == "listener" { a = $(NF-1);
		sub(/^0\.0\.0\.0:/, "10.123.4.5:", a); sub(/^\[::\]:/, "[fd00:123::5]:", a); printf "%s ", a }'
}

F=$ROOT/Tests/Fixtures/l4
run_case tcp-single "10.96.1.1:5000 10.96.1.1:5999 10.96.9.9:5000" "$F/tcp-single.json"
run_case tcp-weighted "10.96.1.2:5000" "$F/tcp-weighted.json"
run_case rr-weighted "10.96.1.3:5000" "$F/lb-round-robin-weighted.json"
run_case random "10.96.1.4:5000" "$F/lb-random.json"
run_case least-request "10.96.1.5:5000" "$F/lb-least-request.json"
run_case maglev "10.96.1.6:5000" "$F/lb-maglev.json"
run_case ring-hash "10.96.1.7:5000" "$F/lb-ring-hash.json"
run_case health "10.96.1.8:5000" "$F/health.json"
run_case priorities "10.96.1.9:5000 10.96.1.9:5001" "$F/priorities.json"
run_case locality "10.96.1.10:5000" "$F/locality-weights.json"
run_case shared-endpoints "10.96.1.20:5000 10.96.1.21:6000 [fd00:96::20]:5000" "$F/shared-endpoints.json"
run_case locality-random-lr "10.96.1.12:5000 10.96.1.13:5000" "$F/locality-weights-random-lr.json"
run_case wildcard "10.1.3.4:6000 10.2.9.9:6000 10.77.0.1:6000 10.1.0.9:6001 10.2.0.9:6001" "$F/wildcard-listener.json"
run_case ipv6 "[fd00::1]:7000 [fd00:99::5]:7001 10.96.1.1:7001" "$F/ipv6.json"
run_case eds "10.96.1.11:5000" "$F/eds-separate/"*.json
run_case multi-file "10.96.1.1:5000" "$F/multi-file/"*.yaml
# More listeners than straight-line code takes: the match is in maps, behind the
# IPv4 /16 filter (x2b_lsnf). Four VIPs are routed; a VIP on another port (its
# /16 passes the filter, the hash misses) and an address in a /16 no listener
# covers stay untouched.
many_listeners() {
	[ -n "$FILTER" ] && [[ "many-listeners" != *"$FILTER"* ]] && return 0
	local snap=$E2E_TMP/many-listeners.json dsts vip
	# half the services IPv6: both families past the straight-line limit, in x2b_lsnx
	"$E2E_PYTHON" "$ROOT/scripts/gen-synthetic.py" --services 60 --endpoints 2 --http-ratio 0 --seed 3 \
		--ipv6-ratio 0.5 --format json -o "$snap" -q
	dsts="$(e2e_listener_dsts "$snap" | tr ' ' '\n' | grep -v '^\[' | head -n 4 | tr '\n' ' ')"
	dsts+="$(e2e_listener_dsts "$snap" | tr ' ' '\n' | grep '^\[' | head -n 3 | tr '\n' ' ')"
	vip=${dsts%% *}
	run_case many-listeners "$dsts ${vip%:*}:1 10.200.1.1:${vip##*:}" "$snap"
}
many_listeners
run_case bookinfo "10.96.0.20:27017 10.96.0.21:3306 10.96.0.10:53 10.96.0.12:9080 10.96.0.11:9080 10.96.99.1:9080" "$ROOT/examples/bookinfo/bookinfo.json"
# L4 cases of the shared corpus (not edited; endpoint addresses live on lo in the netns)
EG=$CORPUS/envoy-gateway/xds-ir
if [ -z "$CORPUS" ]; then
	x2b_no_corpus "corpus L4 cases" >&2
else
	run_case eg-tcp-route-simple "$(e2e_listener_dsts "$EG"/tcp-route-simple/*.yaml)" "$EG"/tcp-route-simple/*.yaml
	# envoy-examples/mysql: tcp_proxy behind mysql_proxy, a DNS cluster given an address with --resolve
	run_case envoy-mysql "$(e2e_listener_dsts --resolve mysql=10.30.0.7 "$CORPUS"/envoy-examples/mysql/envoy.yaml)" \
		--resolve mysql=10.30.0.7 "$CORPUS"/envoy-examples/mysql/envoy.yaml
	run_case kuma-tcp-split "$(e2e_listener_dsts "$CORPUS"/kuma/per-type/meshtcproute__split-traffic/*.yaml)" "$CORPUS"/kuma/per-type/meshtcproute__split-traffic/*.yaml
fi
# start_backends DIR WHAT EP...: the endpoint addresses on lo in the netns, one
# backend answering on all of them; its PID in BACKENDS_PID.
start_backends() {
	local dir=$1 what=$2 ep; shift 2
	for ep in "$@"; do ip -n "$E2E_NETNS" addr add "${ep%:*}/32" dev lo 2>/dev/null || true; done
	nsenter --net="/run/netns/$E2E_NETNS" -- "$E2E_PYTHON" "$HERE/multibackend.py" --ready "$dir/ready" "$@" >"$dir/backends.log" 2>&1 &
	BACKENDS_PID=$!
	e2e_track "$BACKENDS_PID"
	for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.05; done
	[ -s "$dir/ready" ] || { cat "$dir/backends.log" >&2; e2e_fail "$what: backends did not start"; }
}

# Atomic replace of compiled bundles under load: A routes 10.96.1.1:5000 to
# 10.20.0.x, B (an endpoint-only change) to 10.20.7.x; a client keeps connecting.
replace_under_load() {
	[ -n "$FILTER" ] && [[ "replace" != *"$FILTER"* ]] && return 0
	e2e_log "=== replace under load"
	local dir=$E2E_TMP/replace pid s
	mkdir -p "$dir"
	sed 's/10\.20\.0\./10.20.7./g' "$F/tcp-single.json" >"$dir/b.json"
	"$XDS2BPF" compile --quiet "$F/tcp-single.json" -o "$dir/a" --cache-dir "$dir/cache"
	"$XDS2BPF" compile --quiet "$dir/b.json" -o "$dir/b" --cache-dir "$dir/cache"
	local eps="10.20.0.1:8080 10.20.0.2:8080 10.20.7.1:8080 10.20.7.2:8080" ep
	# shellcheck disable=SC2086
	start_backends "$dir" "replace" $eps
	pid=$BACKENDS_PID
	e2e_loader load "$dir/a" --cgroup "$E2E_CGROUP" --name swap >/dev/null
	e2e_in_cgroup "$E2E_PYTHON" "$HERE/connloop.py" 10.96.1.1:5000 --stop-file "$dir/stop" --marker-file "$dir/marker" \
		--summary "$dir/summary.json" >/dev/null 2>"$dir/loop.err" &
	local loop=$!
	e2e_track "$loop"
	sleep 1.5
	e2e_loader replace "$dir/b" --name swap >/dev/null
	touch "$dir/marker"
	sleep 1.5
	touch "$dir/stop"
	wait "$loop" || true
	s=$(cat "$dir/summary.json")
	e2e_log "connloop: $s"
	"$E2E_PYTHON" - "$dir/summary.json" <<'PY' || e2e_fail "replace under load"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["failed"] == 0, f"{d['failed']} failed connects during the replace"
assert d["rate"] >= 500, f"only {d['rate']:.0f} connects/s"
assert set(d["idents"]) == {"10.20.0.1:8080", "10.20.0.2:8080", "10.20.7.1:8080", "10.20.7.2:8080"}, d["idents"]
assert set(d["after_marker"]) <= {"10.20.7.1:8080", "10.20.7.2:8080"} and d["after_marker"], d["after_marker"]
print(f"ok replace under load: {d['total']} connects at {d['rate']:.0f}/s, 0 failed, all after the swap on B")
PY
	e2e_loader unload --name swap >/dev/null
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	passed=$((passed + 1))
}
# Least request: sockops counts active connections per endpoint (x2b_active);
# with 30 connections held open, power-of-two choices keeps them balanced, and
# closing them brings every count back to zero.
least_request_accounting() {
	[ -n "$FILTER" ] && [[ "least-accounting" != *"$FILTER"* ]] && return 0
	e2e_log "=== least request accounting"
	local dir=$E2E_TMP/lr pid eps="10.20.0.1:8080 10.20.0.2:8080 10.20.0.3:8080" ep active
	mkdir -p "$dir"
	"$XDS2BPF" compile --quiet --cache-dir none "$F/lb-least-request.json" -o "$dir/b"
	# shellcheck disable=SC2086
	start_backends "$dir" "least request" $eps
	pid=$BACKENDS_PID
	e2e_loader load "$dir/b" --cgroup "$E2E_CGROUP" --name lr >/dev/null
	active=$XDS2BPF_BPFFS/lr/maps/x2b_active
	mkfifo "$dir/hold"
	e2e_in_cgroup "$E2E_PYTHON" "$HERE/probe.py" 30 10.96.1.5:5000 --hold <"$dir/hold" >"$dir/held.json" &
	local prober=$!
	e2e_track "$prober"
	exec 7>"$dir/hold"
	for _ in $(seq 100); do [ -s "$dir/held.json" ] && break; sleep 0.05; done
	bpftool -j map dump pinned "$active" >"$dir/active.json"
	[ -n "${E2E_DEBUG:-}" ] && { bpftool map dump pinned "$active"; cat "$dir/held.json"; }
	"$E2E_PYTHON" - "$dir/active.json" <<'PY' || e2e_fail "least request: active counts while held"
import json, sys
vals = [int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little") if isinstance(e["value"], list) else e["value"]
        for e in json.load(open(sys.argv[1]))]
used = vals[:3]
assert sum(vals) == 30, f"active connections counted: {vals}"
# Envoy's P2C draws its two choices with replacement, so the spread has a long
# tail: for 30 connections over 3 hosts P(max - min > 4) = 1.6% (this failed CI),
# P(> 11) = 5e-7 (exact, by dynamic programming over the count vectors).
assert max(used) - min(used) <= 11, f"power of two choices should balance held connections: {used}"
print(f"ok least request: 30 held connections counted per endpoint {used}")
PY
	exec 7>&-
	wait "$prober" || true
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	sleep 0.3
	bpftool -j map dump pinned "$active" >"$dir/active.json"
	"$E2E_PYTHON" - "$dir/active.json" <<'PY' || e2e_fail "least request: counts after close"
import json, sys
vals = [int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little") if isinstance(e["value"], list) else e["value"]
        for e in json.load(open(sys.argv[1]))]
assert sum(vals) == 0, f"counts not released after close: {vals}"
print("ok least request: counts back to zero after close")
PY
	e2e_loader unload --name lr >/dev/null
	passed=$((passed + 1))
}
# In-place endpoint update under load, on the fast path of a service address:
# the VIP is looked up in x2b_lsn4 (--inline-listeners 0; its compact IPv4 slot,
# ABI 8) and balances from the slot's endpoint range, which `xds2bpf-loader update`
# rewrites right after the switch. No connect fails, every connect after the
# update goes to the new endpoints, the range names the new ones, and the
# counters (the slot's and the per-action rows) add up to the connects made.
update_fast_path_under_load() {
	[ -n "$FILTER" ] && [[ "update-fast" != *"$FILTER"* ]] && return 0
	e2e_log "=== in-place update under load (fast path)"
	local dir=$E2E_TMP/upd pid
	mkdir -p "$dir"
	# B: the same cluster with three other endpoints (an endpoint-only change)
	"$E2E_PYTHON" - "$F/tcp-single.json" "$dir/b.json" <<'PY'
import json, sys
snap = json.load(open(sys.argv[1]))
def visit(o):
    if isinstance(o, dict):
        if "lb_endpoints" in o:
            o["lb_endpoints"] = [{"endpoint": {"address": {"socket_address": {"address": f"10.20.7.{i}", "port_value": 8080}}}}
                                 for i in (1, 2, 3)]
        for v in o.values():
            visit(v)
    elif isinstance(o, list):
        for v in o:
            visit(v)
visit(snap)
json.dump(snap, open(sys.argv[2], "w"))
PY
	"$XDS2BPF" compile --quiet --inline-listeners 0 --cache-dir none "$F/tcp-single.json" -o "$dir/a"
	"$XDS2BPF" compile --quiet --inline-listeners 0 --cache-dir none "$dir/b.json" -o "$dir/b" \
		--base "$dir/a" --delta "$dir/delta.pb"
	[ -s "$dir/delta.pb" ] || e2e_fail "update (fast path): no endpoint delta written"
	local eps="10.20.0.1:8080 10.20.0.2:8080 10.20.7.1:8080 10.20.7.2:8080 10.20.7.3:8080" ep
	# shellcheck disable=SC2086
	start_backends "$dir" "update (fast path)" $eps
	pid=$BACKENDS_PID
	e2e_loader load "$dir/a" --cgroup "$E2E_CGROUP" --name upd >/dev/null
	bpftool -j map dump pinned "$XDS2BPF_BPFFS/upd/maps/x2b_lsn4" >"$dir/lsn4-a.json"
	e2e_in_cgroup "$E2E_PYTHON" "$HERE/connloop.py" 10.96.1.1:5000 --stop-file "$dir/stop" --marker-file "$dir/marker" \
		--summary "$dir/summary.json" >/dev/null 2>"$dir/loop.err" &
	local loop=$!
	e2e_track "$loop"
	sleep 1
	# an update that dies between a switch and the store of the slot's range: the
	# slot still names the old endpoints (valid: nothing reuses them until the next
	# update), and the next update's session clears such a range before it allocates
	if env XDS2BPF_TEST_FAIL=update-after-switch "$E2E_LOADER" update "$dir/delta.pb" --name upd 2>"$dir/died.err"; then
		e2e_fail "update (fast path): the injected failure after the switch did not fail"
	fi
	grep -q "injected failure at 'update-after-switch'" "$dir/died.err" || { cat "$dir/died.err" >&2; e2e_fail "update (fast path): no injected failure"; }
	bpftool -j map dump pinned "$XDS2BPF_BPFFS/upd/maps/x2b_lsn4" >"$dir/lsn4-died.json"
	sleep 0.5
	e2e_loader update "$dir/delta.pb" --name upd >/dev/null
	touch "$dir/marker"
	sleep 1.5
	touch "$dir/stop"
	wait "$loop" || true
	bpftool -j map dump pinned "$XDS2BPF_BPFFS/upd/maps/x2b_lsn4" >"$dir/lsn4-b.json"
	bpftool -j map dump pinned "$XDS2BPF_BPFFS/upd/maps/x2b_lsnx" >"$dir/lsnx-b.json"
	e2e_loader stats --name upd --format prometheus >"$dir/stats.prom"
	e2e_loader status --name upd --json >"$dir/status.json"
	e2e_log "connloop: $(cat "$dir/summary.json")"
	"$E2E_PYTHON" - "$dir" <<'PY' || e2e_fail "update (fast path) under load"
import json, os, re, sys
d = sys.argv[1]
s = json.load(open(os.path.join(d, "summary.json")))
assert s["failed"] == 0, f"{s['failed']} failed connects during the update"
assert set(s["idents"]) == {"10.20.0.1:8080", "10.20.0.2:8080", "10.20.7.1:8080", "10.20.7.2:8080", "10.20.7.3:8080"}, s["idents"]
assert set(s["after_marker"]) == {"10.20.7.1:8080", "10.20.7.2:8080", "10.20.7.3:8080"}, s["after_marker"]

def slots(name, at):
    """(range, connects) of every taken slot; the two u64 at byte `at`"""
    out = []
    for e in json.load(open(os.path.join(d, name))):
        v = e["value"]
        b = bytes(int(x, 16) for x in v) if isinstance(v, list) else None
        if b and b[0]:
            out.append((int.from_bytes(b[at:at + 8], "little"), int.from_bytes(b[at + 8:at + 16], "little")))
    return out
# x2b_lsn4_slot: range at 16, connects at 24; x2b_lsn_slot: at 48 and 56
(ra, _), = slots("lsn4-a.json", 16)
(rd, _), = slots("lsn4-died.json", 16)
(rb, connects), = slots("lsn4-b.json", 16)
assert slots("lsnx-b.json", 48) == [(0, 0)], f"the IPv4 row's x2b_lsnx slot has a range or a count: {slots('lsnx-b.json', 48)}"
assert rd == ra, f"after the update that died, the slot should still name the old range: {ra:#x} -> {rd:#x}"
assert ra & 0xFFFFFFFF == 2 and rb & 0xFFFFFFFF == 3, f"ranges before/after: {ra:#x} {rb:#x} (count in the low word)"
assert ra >> 32 != rb >> 32, f"the range still names the old endpoints: {ra:#x} -> {rb:#x}"
st = json.load(open(os.path.join(d, "status.json")))
st = st[0] if isinstance(st, list) else st.get("bundles", [st])[0] if "bundles" in st else st
assert (st.get("exact_listener_rows"), st.get("fast_path_rows")) == (1, 1), f"status: {st}"
prom = open(os.path.join(d, "stats.prom")).read()
m = re.search(r'^xds2bpf_listener_connects_total\{[^}]*\} (\d+)$', prom, re.M)
assert m, prom
assert int(m.group(1)) == s["total"], f"listener connects {m.group(1)}, connects made {s['total']}"
# seen (derived by the loader, ABI 7) = what matched the listener + what matched nothing
def total(metric):
    return int(re.search(r'^' + metric + r'\{[^}]*\} (\d+)$', prom, re.M).group(1))
seen, unmatched = total("xds2bpf_connects_total"), total("xds2bpf_connects_unmatched_total")
assert seen == int(m.group(1)) + unmatched, f"seen {seen} != listener {m.group(1)} + unmatched {unmatched}"
# per endpoint (x2b_ep4 on the IPv4 fast path plus x2b_ep on the general one): the live rows are the
# three new endpoints, and each counted what it served
for ep in ("10.20.7.1:8080", "10.20.7.2:8080", "10.20.7.3:8080"):
    got = re.search(r'^xds2bpf_endpoint_connects_total\{[^}]*endpoint="' + re.escape(ep) + r'"\} (\d+)$', prom, re.M)
    assert got and int(got.group(1)) == s["idents"][ep], f"{ep}: counted {got and got.group(1)}, served {s['idents'][ep]}"
# every connect is counted once: by the slot on the fast path, by the action's row while the
# repaired slot had no range (between the second update's open and its switch)
assert connects <= s["total"], f"slot counter {connects}, connects made {s['total']}"
print(f"ok in-place update on the fast path: {s['total']} connects at {s['rate']:.0f}/s, 0 failed, "
      f"all after the update on the 3 new endpoints (one update died after its switch first); range {ra:#x} -> {rb:#x}; "
      f"listener counted {m.group(1)}")
PY
	e2e_loader unload --name upd >/dev/null
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	passed=$((passed + 1))
}
replace_under_load
update_fast_path_under_load
least_request_accounting
echo "run-l4: $passed cases passed"
