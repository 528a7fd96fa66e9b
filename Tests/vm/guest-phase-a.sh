#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Guest side of phase A (6.12 + module): module load, the hand-written test
# program and x2b-vmtest's cases (the last one unloads the module while its
# last sockets finish), then load/unload cycles.
MOD=xds2bpf_defer
STATS=/sys/kernel/debug/$MOD/stats
fail() { echo "X2B-CHECK $* FAIL"; exit 1; }
ok() { echo "X2B-CHECK $* PASS"; }

# a head_wait_ms well above any pause between the sends of a split head, even on a slow CI host
insmod /x2b/$MOD.ko head_wait_ms=500 || fail "insmod"
[ -e /sys/kernel/btf/$MOD ] && ok "module-btf" || fail "module-btf"
grep -qw x2b_defer /proc/sys/net/ipv4/tcp_available_ulp && ok "ulp-registered" || fail "ulp-registered"
mkdir -p /sys/fs/cgroup/x2b
rc=0
/x2b/x2b-vmtest phase-a /x2b/defer_test.bpf.o /sys/fs/cgroup/x2b || rc=1
if [ -d /sys/module/$MOD ]; then
	# the test did not get to unload it: every socket must still go away
	cat $STATS
	i=0
	while [ "$(cat /sys/module/$MOD/refcnt)" != 0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	echo "live $(sed -n 's/^live //p' $STATS), refcnt $(cat /sys/module/$MOD/refcnt)"
	rmmod $MOD || { echo "X2B-CHECK rmmod FAIL"; rc=1; }
else
	ok "unloaded-by-test"
fi
cat /proc/net/tcp /proc/net/tcp6 | awk 'NR > 1 && $4 != "0A" && $4 != "06"' | head -20
for n in 1 2 3; do
	insmod /x2b/$MOD.ko && rmmod $MOD || { echo "X2B-CHECK reload-$n FAIL"; rc=1; }
done
[ $rc = 0 ] && ok "reload-cycles"
exit $rc
