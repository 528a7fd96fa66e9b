#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Soak test (root; `make soak SOAK_MINUTES=N`, not part of `make test`). In a private
# network namespace and cgroup (Tests/e2e/lib.sh), clients connect back to back at the
# highest rate the machine gives (SOAK_CLIENTS connloop.py processes over two service
# VIPs whose backends are loopback addresses in the netns) while
#   (a) the bundle is replaced every SOAK_REPLACE_S seconds (two compiled bundles,
#       alternately, `xds2bpf-loader replace`), and
#   (b) an endpoint update is written in place every SOAK_UPDATE_MS milliseconds
#       (`xds2bpf-loader update --name NAME DELTA`, EndpointDeltas made by
#       `xds2bpf compile NEW -o DIR --base BUNDLE --delta DELTA.pb` against whichever
#       bundle is live; skipped with a line when the loader has no `update`).
# Every SOAK_INTERVAL seconds it records failed connects, connects/s, the BPF map memory
# of the bundle (sum of bytes_memlock of its pinned maps, bpftool), the loader's state
# dir size, Slab/SUnreclaim/MemAvailable (/proc/meminfo) and kernel WARNING/BUG lines
# logged since the start. Writes a markdown report (table + verdicts) to SOAK_REPORT
# (default: stdout only) and exits non-zero on a failed connect, a failed replace or
# update, a kernel warning, or growth beyond the bounds:
#   SOAK_MAPMEM_GROWTH_PCT (10): bundle map memory, last sample vs first
#   SOAK_STATE_GROWTH_KIB (1024): loader state dir, last sample vs first
#   SOAK_SUNRECLAIM_GROWTH_MIB (128): unreclaimable slab, last vs first (machine-wide,
#       hence generous: other work on the machine moves it too)
#
# Environment: XDS2BPF (compiler; default .build/{debug,release}/xds2bpf), E2E_LOADER,
# SOAK_MINUTES (5), SOAK_CLIENTS (4), SOAK_INTERVAL (10), SOAK_REPLACE_S (2),
# SOAK_UPDATE_MS (100), SOAK_REPORT (file).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../e2e/lib.sh
source "$ROOT/Tests/e2e/lib.sh"
E2E=$ROOT/Tests/e2e

SOAK_MINUTES=${SOAK_MINUTES:-5}
SOAK_CLIENTS=${SOAK_CLIENTS:-4}
SOAK_INTERVAL=${SOAK_INTERVAL:-10}
SOAK_REPLACE_S=${SOAK_REPLACE_S:-2}
SOAK_UPDATE_MS=${SOAK_UPDATE_MS:-100}
SOAK_MAPMEM_GROWTH_PCT=${SOAK_MAPMEM_GROWTH_PCT:-10}
SOAK_STATE_GROWTH_KIB=${SOAK_STATE_GROWTH_KIB:-1024}
SOAK_SUNRECLAIM_GROWTH_MIB=${SOAK_SUNRECLAIM_GROWTH_MIB:-128}
if [ -z "${XDS2BPF:-}" ]; then
	for c in "$ROOT/.build/debug/xds2bpf" "$ROOT/.build/release/xds2bpf"; do [ -x "$c" ] && XDS2BPF=$c && break; done
fi
[ -x "${XDS2BPF:-}" ] || { echo "soak: needs the compiler (make build, or XDS2BPF=...)" >&2; exit 2; }
if ! why=$(e2e_can_run 2>&1); then
	echo "SKIP soak: $why"
	exit 0
fi
SECONDS_TOTAL=$(awk -v m="$SOAK_MINUTES" 'BEGIN { printf "%d", m * 60 }')

e2e_netns_begin
W=$E2E_TMP/soak
mkdir -p "$W"
NAME=soak

# --- snapshots: two VIPs, two clusters; bundle A on 10.20.0.x, bundle B on 10.20.7.x --------
# snapshot NET EPS1 EPS2: listeners 10.96.1.1:5000 -> c1 and 10.96.1.2:5000 -> c2, endpoints
# NET.<EPS1> (c1) and NET.<EPS2> (c2), comma-separated host numbers, port 8080.
snapshot() {
	"$E2E_PYTHON" - "$@" <<'PY'
import json, sys
net, eps1, eps2 = sys.argv[1], sys.argv[2], sys.argv[3]
def cluster(name, eps):
    return {"name": name, "type": "STATIC", "connect_timeout": "1s", "lb_policy": "ROUND_ROBIN",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": f"{net}.{h}", "port_value": 8080}}}}
                for h in eps.split(",")]}]}}
def listener(vip, c):
    return {"name": f"vip-{c}", "address": {"socket_address": {"address": vip, "port_value": 5000}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "stat_prefix": c, "cluster": c}}]}]}
print(json.dumps({"static_resources": {
    "listeners": [listener("10.96.1.1", "c1"), listener("10.96.1.2", "c2")],
    "clusters": [cluster("c1", eps1), cluster("c2", eps2)]}}, indent=1))
PY
}
compile() { "$XDS2BPF" compile --quiet --cache-dir "$W/cache" "$@"; }
for b in A B; do
	net=10.20.0
	[ $b = B ] && net=10.20.7
	snapshot $net 1,2 3,4 >"$W/$b.json"
	compile "$W/$b.json" -o "$W/$b"
	# endpoint-only variants of the live bundle, as in-place deltas against it
	snapshot $net 1,2,3 4 >"$W/$b-d1.json"
	snapshot $net 2 1,3,4 >"$W/$b-d2.json"
	snapshot $net 1,3 2,4 >"$W/$b-d3.json"
	for d in d1 d2 d3; do
		compile "$W/$b-$d.json" -o "$W/$b-$d" --base "$W/$b" --delta "$W/$b-$d.pb"
	done
done
e2e_log "compiled bundles A, B and three endpoint deltas for each"

backends=()
for net in 10.20.0 10.20.7; do
	for h in 1 2 3 4; do
		ip -n "$E2E_NETNS" addr add "$net.$h/32" dev lo
		backends+=("$net.$h:8080")
	done
done
nsenter --net="/run/netns/$E2E_NETNS" -- "$E2E_PYTHON" "$E2E/multibackend.py" --ready "$W/ready" "${backends[@]}" \
	>"$W/backends.log" 2>&1 &
e2e_track $!
for _ in $(seq 100); do [ -s "$W/ready" ] && break; sleep 0.05; done
[ -s "$W/ready" ] || { cat "$W/backends.log" >&2; e2e_fail "soak: backends did not start"; }
read -r _ bpid <"$W/ready" || true
[ -n "${bpid:-}" ] && e2e_track "$bpid"

e2e_loader load "$W/A" --cgroup "$E2E_CGROUP" --name $NAME >/dev/null
HAVE_UPDATE=1
if ! e2e_loader help 2>&1 | grep -qE "^  update "; then
	HAVE_UPDATE=0
	echo "soak: SKIP (b) endpoint updates: this xds2bpf-loader has no 'update' command"
fi

# --- measurements ----------------------------------------------------------------------------
meminfo() { awk -v k="$1:" '$1 == k { printf "%d", $2 / 1024 }' /proc/meminfo; } # MiB
mapmem() { # bytes_memlock of the bundle's pinned maps: "BYTES COUNT"
	local m tot=0 n=0 b
	for m in "$XDS2BPF_BPFFS/$NAME"/maps/*; do
		[ -e "$m" ] || continue
		b=$(bpftool -j map show pinned "$m" 2>/dev/null | "$E2E_PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get("bytes_memlock", 0))' 2>/dev/null) || b=0
		tot=$((tot + ${b:-0}))
		n=$((n + 1))
	done
	echo "$tot $n"
}
statesize() { du -sk "$XDS2BPF_STATE_DIR" 2>/dev/null | awk '{print $1}'; }
# kernel log lines newer than the start (monotonic timestamps), that are warnings or bugs
START_UPTIME=$(awk '{print $1}' /proc/uptime)
dmesg >/dev/null 2>&1 || e2e_fail "soak: cannot read the kernel log (dmesg)"
kwarnings() {
	dmesg 2>/dev/null | awk -v t0="$START_UPTIME" '
		match($0, /^\[ *[0-9]+\.[0-9]+\]/) {
			ts = substr($0, 2, RLENGTH - 2) + 0
			if (ts >= t0 && $0 ~ /WARNING|BUG|Oops|general protection|Call Trace|RCU stall|hung_task|refcount_t|KASAN|UBSAN/) print
		}'
}
clients_total() { # "TOTAL FAILED" over every client's progress file
	"$E2E_PYTHON" - "$W"/progress.*.json <<'PY'
import json, sys
t = f = 0
for p in sys.argv[1:]:
    try:
        d = json.load(open(p))
    except (OSError, ValueError):
        continue
    t += d["total"]; f += d["failed"]
print(t, f)
PY
}

# --- clients -----------------------------------------------------------------------------------
for i in $(seq "$SOAK_CLIENTS"); do
	vip=10.96.1.$(( (i - 1) % 2 + 1 )):5000
	e2e_in_cgroup "$E2E_PYTHON" "$E2E/connloop.py" "$vip" --stop-file "$W/stop" --max-seconds $((SECONDS_TOTAL + 120)) \
		--progress "$W/progress.$i.json" --summary "$W/summary.$i.json" >/dev/null 2>"$W/loop.$i.err" &
	e2e_track $!
done

# --- control loop: replace every SOAK_REPLACE_S s, update every SOAK_UPDATE_MS ms ---------------
control() {
	local live=A n=0 k=0 d deltas=(d1 d2 d3) every start now next_replace
	every=$(awk -v s="$SOAK_REPLACE_S" 'BEGIN { printf "%d", s * 1000 }')
	start=$(date +%s%3N)
	next_replace=$((start + every))
	while [ ! -e "$W/stop" ]; do
		now=$(date +%s%3N)
		if [ "$now" -ge "$next_replace" ]; then
			[ $live = A ] && live=B || live=A
			if e2e_loader replace "$W/$live" --name $NAME >/dev/null 2>"$W/cmd.err"; then
				echo "replace $now $live ok"
			else
				echo "replace $now $live FAILED"
				cat "$W/cmd.err" >>"$W/control.err"
			fi
			next_replace=$((next_replace + every))
		elif [ "$HAVE_UPDATE" = 1 ]; then
			d=${deltas[$((k % 3))]}
			k=$((k + 1))
			if e2e_loader update --name $NAME "$W/$live-$d.pb" >/dev/null 2>"$W/cmd.err"; then
				echo "update $now $live-$d ok"
				# the loader's own timing line: "... written in N us (... grace period N us) ..."
				sed -n 's/.* written in \([0-9]*\) us.*/\1/p' "$W/cmd.err" >>"$W/update-us.txt"
			else
				echo "update $now $live-$d FAILED"
				cat "$W/cmd.err" >>"$W/control.err"
			fi
		fi
		# the next operation SOAK_UPDATE_MS after the start of this one (at once when late)
		n=$((n + 1))
		now=$(date +%s%3N)
		sleep "$(awk -v next_ms=$((start + n * SOAK_UPDATE_MS)) -v now="$now" 'BEGIN { d = next_ms - now; if (d < 0) d = 0; printf "%.3f", d / 1000 }')"
	done
}
control >"$W/control.log" &
CONTROL=$!
e2e_track $CONTROL

# --- sampling --------------------------------------------------------------------------------
TABLE=$W/table.md
{
	echo "| t (s) | connects | connects/s | failed (total) | replaces | updates | bundle maps (KiB memlock, n) | state dir (KiB) | Slab (MiB) | SUnreclaim (MiB) | MemAvailable (MiB) | kernel warnings |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$TABLE"
t0=$(date +%s%3N)
prev_total=0 prev_t=$t0
first_map= first_state= first_sunr= first_avail=
last_map=0 last_state=0 last_sunr=0 last_avail=0 failed=0 total=0
sample() {
	local now tot fl mm mn st slab sunr avail kw rate reps upds dt
	now=$(date +%s%3N)
	read -r tot fl < <(clients_total)
	read -r mm mn < <(mapmem)
	st=$(statesize)
	slab=$(meminfo Slab)
	sunr=$(meminfo SUnreclaim)
	avail=$(meminfo MemAvailable)
	kw=$(kwarnings | wc -l)
	reps=$(grep -c '^replace .* ok$' "$W/control.log" || true)
	upds=$(grep -c '^update .* ok$' "$W/control.log" || true)
	dt=$((now - prev_t))
	rate=$(awk -v n=$((tot - prev_total)) -v ms="$dt" 'BEGIN { printf "%.0f", (ms > 0) ? n * 1000 / ms : 0 }')
	printf '| %d | %d | %s | %d | %d | %d | %d (%d) | %d | %d | %d | %d | %d |\n' $(((now - t0) / 1000)) $((tot - prev_total)) "$rate" \
		"$fl" "$reps" "$upds" $((mm / 1024)) "$mn" "$st" "$slab" "$sunr" "$avail" "$kw" >>"$TABLE"
	tail -1 "$TABLE" >&2
	prev_total=$tot prev_t=$now
	: "${first_map:=$mm}" "${first_state:=$st}" "${first_sunr:=$sunr}" "${first_avail:=$avail}"
	last_map=$mm last_state=$st last_sunr=$sunr last_avail=$avail failed=$fl total=$tot
}
sleep 1
sample
end=$(( $(date +%s) + SECONDS_TOTAL ))
while [ "$(date +%s)" -lt "$end" ]; do
	sleep "$SOAK_INTERVAL"
	kill -0 $CONTROL 2>/dev/null || e2e_fail "soak: the control loop died"
	sample
done
touch "$W/stop"
wait $CONTROL || true
sleep 1.5 # the clients finish their last connect and write their summaries
sample

# --- verdicts ----------------------------------------------------------------------------------
bad=0
verdict() { # OK? TEXT
	if [ "$1" = 1 ]; then echo "- PASS: $2"; else echo "- FAIL: $2"; bad=1; fi
}
reps_ok=$(grep -c '^replace .* ok$' "$W/control.log" || true)
reps_bad=$(grep -c '^replace .* FAILED$' "$W/control.log" || true)
upds_ok=$(grep -c '^update .* ok$' "$W/control.log" || true)
upds_bad=$(grep -c '^update .* FAILED$' "$W/control.log" || true)
kw=$(kwarnings)
elapsed=$(( ($(date +%s%3N) - t0) / 1000 ))
REPORT=$W/report.md
{
	echo "Soak: ${SOAK_MINUTES} min, $SOAK_CLIENTS clients, replace every ${SOAK_REPLACE_S} s, update every ${SOAK_UPDATE_MS} ms, kernel $(uname -r), $(nproc) CPUs"
	echo
	cat "$TABLE"
	echo
	if [ -s "$W/update-us.txt" ]; then
		echo "In-place update time (loader's own figure, most of it the RCU grace period): $(sort -n "$W/update-us.txt" | awk '{ a[NR] = $1 } END { p = int(NR * 0.99) + 1; if (p > NR) p = NR; printf "median %.1f ms, p99 %.1f ms, max %.1f ms over %d updates", a[int(NR / 2) + 1] / 1000, a[p] / 1000, a[NR] / 1000, NR }')"
		echo
	fi
	echo "Totals: $total connects in ${elapsed} s ($(awk -v n="$total" -v s="$elapsed" 'BEGIN { printf "%.0f", s ? n / s : 0 }')/s), $failed failed; $reps_ok replaces, $upds_ok in-place updates."
	echo
	verdict $([ "$failed" = 0 ] && [ "$total" -gt 0 ] && echo 1 || echo 0) "failed connects: $failed of $total"
	verdict $([ "$reps_bad" = 0 ] && [ "$reps_ok" -gt 0 ] && echo 1 || echo 0) "replaces: $reps_ok ok, $reps_bad failed"
	if [ "$HAVE_UPDATE" = 1 ]; then
		verdict $([ "$upds_bad" = 0 ] && [ "$upds_ok" -gt 0 ] && echo 1 || echo 0) "in-place updates: $upds_ok ok, $upds_bad failed"
	else
		echo "- SKIP: in-place updates (this xds2bpf-loader has no 'update' command)"
	fi
	verdict $([ -z "$kw" ] && echo 1 || echo 0) "kernel WARNING/BUG lines since the start: $(printf '%s' "$kw" | grep -c . || true)"
	verdict $([ $((last_map * 100)) -le $((first_map * (100 + SOAK_MAPMEM_GROWTH_PCT))) ] && echo 1 || echo 0) \
		"bundle map memory $((first_map / 1024)) KiB -> $((last_map / 1024)) KiB (bound +${SOAK_MAPMEM_GROWTH_PCT}%)"
	verdict $([ $((last_state - first_state)) -le "$SOAK_STATE_GROWTH_KIB" ] && echo 1 || echo 0) \
		"loader state dir $first_state KiB -> $last_state KiB (bound +$SOAK_STATE_GROWTH_KIB KiB)"
	verdict $([ $((last_sunr - first_sunr)) -le "$SOAK_SUNRECLAIM_GROWTH_MIB" ] && echo 1 || echo 0) \
		"unreclaimable slab $first_sunr MiB -> $last_sunr MiB (bound +$SOAK_SUNRECLAIM_GROWTH_MIB MiB, machine-wide)"
	echo "- info: MemAvailable $first_avail MiB -> $last_avail MiB (machine-wide, shared with other work; not a verdict)"
} >"$REPORT"
[ -n "$kw" ] && { echo; echo '```'; printf '%s\n' "$kw" | head -40; echo '```'; } >>"$REPORT"
if [ -s "$W/control.err" ]; then
	{ echo; echo "Loader errors (first lines):"; echo '```'; head -20 "$W/control.err"; echo '```'; } >>"$REPORT"
fi
for i in $(seq "$SOAK_CLIENTS"); do
	if [ -s "$W/progress.$i.json" ] && ! grep -q '"failed": 0' "$W/progress.$i.json"; then
		{ echo; echo "client $i: $(cat "$W/progress.$i.json")"; } >>"$REPORT"
	fi
done
cat "$REPORT"
[ -n "${SOAK_REPORT:-}" ] && cp "$REPORT" "$SOAK_REPORT"
e2e_loader unload --name $NAME >/dev/null || true
[ "$bad" = 0 ] || e2e_fail "soak: see the verdicts above"
echo "soak: passed"
