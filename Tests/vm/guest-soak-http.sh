#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Guest side of the HTTP soak (6.12 + module; run.sh step soak-http, `make soak-vm`).
# HTTP/1.1 clients (bench/latency --http, CLIENTS connections in flight, one
# request per new connection) send to the VIP through the module, back to back,
# while the bundle is replaced every REPLACE_S seconds (bundles A and B
# alternately: the same route table, the route's endpoints on 10.64.0.x in A and
# 10.64.1.x in B, all served here). One client run per sample interval; after
# each, one line:
#   X2B-SOAK t=<s> requests=<n> rps=<n> failed=<errors+timeouts+non-200>
#     replaces=<ok> replace_failed=<n> memavail_kib= slab_kib= sunreclaim_kib=
#     module_live=<sockets the module holds> deferred=<total> warnings=<kernel lines>
# then X2B-SOAK-END with the module's counters once the clients stopped.
S=/x2b/soak
CG=/sys/fs/cgroup/x2b-soak
MOD=xds2bpf_defer
export XDS2BPF_BPFFS=/sys/fs/bpf/xds2bpf XDS2BPF_STATE_DIR=/run/xds2bpf
# shellcheck source=/dev/null
. $S/params # VIP AUTHORITY PATH_ ENDPOINTS SECONDS_TOTAL INTERVAL CLIENTS REPLACE_S
# shellcheck source=guest-http-backend.sh
. /x2b/guest-http-backend.sh
mkdir -p $CG /run/xds2bpf
insmod /x2b/$MOD.ko || { echo "X2B-CHECK soak-insmod FAIL"; exit 1; }
BAD='BUG:|WARNING:|Oops|general protection|Call Trace|refcount_t:|list_(add|del) corruption|UBSAN|KASAN|soft lockup|hung_task|rcu.*stall'
rc=0
pids=

in_cgroup() {
	sh -c 'echo $$ >'"$CG"'/cgroup.procs; exec "$@"' sh "$@"
}
meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
stat_of() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' /sys/kernel/debug/$MOD/stats; }
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }

# shellcheck disable=SC2086
http_backend $ENDPOINTS || { echo "X2B-CHECK soak-backend FAIL"; exit 1; }
pids="$pids $BACKEND_PID"
/x2b/xds2bpf-loader load $S/A --cgroup $CG --name soak >/tmp/load.log 2>&1 || {
	echo "X2B-CHECK soak-load FAIL"; cat /tmp/load.log; exit 1; }

# the replace loop: A and B alternately every REPLACE_S seconds, until /tmp/soak.stop
: >/tmp/replaces
(
	live=A
	next=$(awk -v d="$REPLACE_S" '{ print $1 + d }' /proc/uptime)
	while [ ! -e /tmp/soak.stop ]; do
		# every REPLACE_S seconds from start to start (back to back when a replace takes longer)
		wait_s=$(awk -v n="$next" '{ d = n - $1; print (d > 0 ? d : 0) }' /proc/uptime)
		sleep "$wait_s"
		next=$(awk -v n="$next" -v d="$REPLACE_S" '{ print (n + d > $1 ? n + d : $1) }' /proc/uptime)
		if [ $live = A ]; then live=B; else live=A; fi
		t=$(cut -d' ' -f1 /proc/uptime)
		if /x2b/xds2bpf-loader replace $S/$live --name soak >/dev/null 2>/tmp/replace.err; then
			awk -v a="$t" '{ printf "ok %.2f\n", $1 - a }' /proc/uptime >>/tmp/replaces
		else
			echo failed >>/tmp/replaces
			sed 's/^/X2B-SOAK-REPLACE-ERR /' /tmp/replace.err
		fi
	done
) &
rpid=$!

t0=$(cut -d' ' -f1 /proc/uptime)
elapsed=0
while [ "$elapsed" -lt "$SECONDS_TOTAL" ]; do
	out=$(in_cgroup /x2b/latency --conns "$CLIENTS" --duration "$INTERVAL" --warmup 0 --timeout-ms 5000 \
		--http "$AUTHORITY" "$PATH_" --label soak "$VIP")
	n=$(echo "$out" | field requests)
	failed=$(($(echo "$out" | field errors) + $(echo "$out" | field timeouts) + $(echo "$out" | field bad_status)))
	[ "$failed" = 0 ] || rc=1
	elapsed=$(awk -v a="$t0" '{ print int($1 - a) }' /proc/uptime)
	echo "X2B-SOAK t=$elapsed requests=$n rps=$(echo "$out" | field rps) failed=$failed" \
		"replaces=$(grep -c ok /tmp/replaces) replace_failed=$(grep -c failed /tmp/replaces)" \
		"memavail_kib=$(meminfo MemAvailable) slab_kib=$(meminfo Slab) sunreclaim_kib=$(meminfo SUnreclaim)" \
		"module_live=$(stat_of live) deferred=$(stat_of deferred) warnings=$(dmesg | grep -Ec "$BAD")" \
		"p50_us=$(echo "$out" | field p50_us) p99_us=$(echo "$out" | field p99_us)"
done
touch /tmp/soak.stop
wait $rpid
[ "$(grep -c failed /tmp/replaces)" = 0 ] || rc=1
sleep 1
echo "X2B-SOAK-END module $(tr '\n' ' ' </sys/kernel/debug/$MOD/stats)"
echo "X2B-SOAK-END replace-seconds $(awk '$1 == "ok" { print $2 }' /tmp/replaces | sort -n | tr '\n' ' ')"
echo "X2B-SOAK-END meminfo memavail_kib=$(meminfo MemAvailable) slab_kib=$(meminfo Slab) sunreclaim_kib=$(meminfo SUnreclaim)"
/x2b/xds2bpf-loader unload --name soak >/dev/null || rc=1
for p in $pids; do kill "$p" 2>/dev/null; done
for p in $pids; do wait "$p" 2>/dev/null; done
k=0
while [ "$(cat /sys/module/$MOD/refcnt)" != 0 ] && [ $k -lt 100 ]; do sleep 0.1; k=$((k + 1)); done
rmmod $MOD || { echo "X2B-CHECK soak-rmmod FAIL (refcnt $(cat /sys/module/$MOD/refcnt))"; rc=1; }
exit $rc
