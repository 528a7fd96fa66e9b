#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Guest side of the HTTP latency benchmark (6.12 + module; run.sh step
# bench-http, scripts/bench.sh --only http-latency).  One HTTP/1.1 request per
# new connection (bench/latency --http) in three modes, interleaved in rotating
# order within each repetition:
#   direct    to the route's endpoints, round robin (no BPF)
#   redirect  to the service VIP from the test cgroup: the module defers the
#             connect, the bundle routes by Host and path, the module connects
#   envoy     to Envoy (HTTP connection manager, the same route table and
#             clusters: run.sh writes its bootstrap from the same snapshot)
# Prints "X2B-BENCH <mode> <conns> <rep> <json>" per run, and X2B-BENCH-INFO
# lines (Envoy's start time and memory, the module's counters).
B=/x2b/bench
CG=/sys/fs/cgroup/x2b-bench
MOD=xds2bpf_defer
export XDS2BPF_BPFFS=/sys/fs/bpf/xds2bpf XDS2BPF_STATE_DIR=/run/xds2bpf
# shellcheck source=/dev/null
. $B/params # VIP AUTHORITY PATH_ ENDPOINTS CONNS REPS DURATION WARMUP ENVOY_PORT ENVOY_WAIT
# shellcheck source=guest-http-backend.sh
. /x2b/guest-http-backend.sh
mkdir -p $CG /run/xds2bpf
insmod /x2b/$MOD.ko || { echo "X2B-CHECK bench-insmod FAIL"; exit 1; }
rc=0
pids=

# in_cgroup CMD...: runs CMD as a member of the test cgroup (the bundle's)
in_cgroup() {
	sh -c 'echo $$ >'"$CG"'/cgroup.procs; exec "$@"' sh "$@"
}
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	/x2b/xds2bpf-loader unload --name bench >/dev/null 2>&1
}

# shellcheck disable=SC2086
http_backend $ENDPOINTS || { echo "X2B-CHECK bench-backend FAIL"; cleanup; exit 1; }
pids="$pids $BACKEND_PID"

if ! /x2b/xds2bpf-loader load $B/bundle --cgroup $CG --name bench >/tmp/load.log 2>&1; then
	echo "X2B-CHECK bench-load FAIL"
	cat /tmp/load.log
	cleanup
	exit 1
fi
/x2b/xds2bpf-loader status --name bench | sed 's/^/X2B-INFO status: /'

# Envoy: one worker (the guest has one CPU), warnings only; its listener is
# ready when a request through it is answered 200
modes="direct redirect"
t0=$(cut -d' ' -f1 /proc/uptime)
ready=0
epid=
if [ -x /x2b/envoy ]; then
	/x2b/envoy -c $B/envoy.json --disable-hot-restart --concurrency 1 -l warning >/tmp/envoy.log 2>&1 &
	epid=$!
	pids="$pids $epid"
else
	echo "X2B-BENCH-INFO envoy-absent (no Envoy on the host)"
fi
while [ -n "$epid" ] && [ "$(awk -v a="$t0" '{ print int($1 - a) }' /proc/uptime)" -lt "$ENVOY_WAIT" ]; do
	kill -0 $epid 2>/dev/null || break
	if /x2b/latency --conns 1 --duration 0.2 --warmup 0 --timeout-ms 1000 --http "$AUTHORITY" "$PATH_" \
		"127.0.0.1:$ENVOY_PORT" 2>/dev/null | grep -q '"requests":[1-9]'; then
		ready=1
		break
	fi
	sleep 1
done
if [ $ready = 1 ]; then
	echo "X2B-BENCH-INFO envoy-ready $(awk -v a="$t0" '{ printf "%.1f", $1 - a }' /proc/uptime) s"
	echo "X2B-BENCH-INFO envoy-version $(/x2b/envoy --version 2>/dev/null | grep -o 'version: [^ ]*' | head -1)"
	modes="$modes envoy"
elif [ -n "$epid" ]; then
	# measured, not assumed: why Envoy did not answer (its log), then the other two modes
	echo "X2B-BENCH-INFO envoy-failed after $(awk -v a="$t0" '{ printf "%.1f", $1 - a }' /proc/uptime) s"
	kill -0 $epid 2>/dev/null && echo "X2B-BENCH-INFO envoy-still-running" || echo "X2B-BENCH-INFO envoy-exited"
	tail -30 /tmp/envoy.log | sed 's/^/X2B-BENCH-ENVOY-LOG /'
fi

nmodes=$(echo $modes | wc -w)
for c in $CONNS; do
	r=1
	while [ $r -le "$REPS" ]; do
		# rotate the order every repetition: no mode always runs first
		k=0
		while [ $k -lt "$nmodes" ]; do
			m=$(echo $modes | tr ' ' '\n' | sed -n "$(((k + r) % nmodes + 1))p")
			args="--conns $c --duration $DURATION --warmup $WARMUP --http $AUTHORITY $PATH_ --label $m"
			case $m in
			# shellcheck disable=SC2086
			direct) out=$(/x2b/latency $args $ENDPOINTS) ;;
			# shellcheck disable=SC2086
			redirect) out=$(in_cgroup /x2b/latency $args "$VIP") ;;
			# shellcheck disable=SC2086
			envoy) out=$(/x2b/latency $args "127.0.0.1:$ENVOY_PORT") ;;
			esac || rc=1
			echo "X2B-BENCH $m $c $r $out"
			k=$((k + 1))
		done
		r=$((r + 1))
	done
done

[ $ready = 1 ] && echo "X2B-BENCH-INFO envoy-rss-kib $(awk '/VmRSS/ { print $2 }' /proc/$epid/status)"
echo "X2B-BENCH-INFO module-stats $(tr '\n' ' ' </sys/kernel/debug/$MOD/stats)"
echo "X2B-BENCH-INFO guest-mem-available-kib $(awk '/MemAvailable/ { print $2 }' /proc/meminfo)"
cleanup
k=0
while [ "$(cat /sys/module/$MOD/refcnt)" != 0 ] && [ $k -lt 100 ]; do sleep 0.1; k=$((k + 1)); done
rmmod $MOD || { echo "X2B-CHECK bench-rmmod FAIL (refcnt $(cat /sys/module/$MOD/refcnt))"; rc=1; }
exit $rc
