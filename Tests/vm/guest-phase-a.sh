#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Guest side of phase A (6.12 + module): module load, the hand-written test
# program and x2b-vmtest's cases, then unload checks.
MOD=xds2bpf_defer
STATS=/sys/kernel/debug/$MOD/stats
fail() { echo "X2B-CHECK $* FAIL"; exit 1; }
ok() { echo "X2B-CHECK $* PASS"; }

insmod /x2b/$MOD.ko || fail "insmod"
[ -e /sys/kernel/btf/$MOD ] && ok "module-btf" || fail "module-btf"
grep -qw x2b_defer /proc/sys/net/ipv4/tcp_available_ulp && ok "ulp-registered" || fail "ulp-registered"
mkdir -p /sys/fs/cgroup/x2b
rc=0
/x2b/x2b-vmtest phase-a /x2b/defer_test.bpf.o /sys/fs/cgroup/x2b || rc=1
cat $STATS
# Every socket the module touched is gone once its peers closed: no reference left.
i=0
while [ "$(cat /sys/module/$MOD/refcnt)" != 0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
live=$(sed -n 's/^live //p' $STATS)
[ "$live" = 0 ] && ok "no-live-state (live $live)" || { echo "X2B-CHECK no-live-state FAIL (live $live)"; rc=1; }
cat /proc/net/tcp /proc/net/tcp6 | awk 'NR > 1 && $4 != "0A"' | head -20
rmmod $MOD && ok "rmmod-after-sockets-closed (refcnt reached 0 after ${i}00 ms)" || { echo "X2B-CHECK rmmod FAIL refcnt $(cat /sys/module/$MOD/refcnt)"; rc=1; }
# load/unload cycles
for n in 1 2 3; do
	insmod /x2b/$MOD.ko && rmmod $MOD || { echo "X2B-CHECK reload-$n FAIL"; rc=1; }
done
[ $rc = 0 ] && ok "reload-cycles"
exit $rc
