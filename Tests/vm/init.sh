#!/bin/busybox sh
# shellcheck shell=dash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# /init of the VM tests' initramfs (busybox).  Runs /x2b/guest-<step>.sh for
# each step of x2b.mode=<step>[,<step>...] on the kernel command line, checks
# the kernel log, prints X2B-VM-RESULT PASS|FAIL and powers off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/x2b
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mkdir -p /run /var/run
ip link set lo up

MODE=$(sed -n 's/.*x2b\.mode=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "X2B-VM-BOOTED $(uname -r) mode=$MODE uptime=$(cut -d' ' -f1 /proc/uptime)s"
rc=0
for step in $(echo "$MODE" | tr ',' ' '); do
	t0=$(cut -d' ' -f1 /proc/uptime)
	if sh "/x2b/guest-$step.sh"; then
		echo "X2B-STEP $step PASS ($t0 -> $(cut -d' ' -f1 /proc/uptime)s)"
	else
		echo "X2B-STEP $step FAIL ($t0 -> $(cut -d' ' -f1 /proc/uptime)s)"
		rc=1
	fi
done

# Any of these in the kernel log is a failure.
BAD='BUG:|WARNING:|Oops|general protection|Call Trace|refcount_t:|list_(add|del) corruption|UBSAN|KASAN|kmemleak|soft lockup|hung_task|rcu.*stall|segfault|Kernel panic'
if dmesg | grep -Eq "$BAD"; then
	echo "X2B-KERNEL-LOG FAIL"
	dmesg | grep -E -B 5 -A 30 "$BAD" | head -200
	rc=1
else
	echo "X2B-KERNEL-LOG PASS $(dmesg | wc -l) lines, none matching"
fi
if [ -e /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak
	if [ -s /sys/kernel/debug/kmemleak ]; then
		echo "X2B-KMEMLEAK FAIL"; cat /sys/kernel/debug/kmemleak; rc=1
	fi
else
	echo "X2B-KMEMLEAK n/a (kernel built without CONFIG_DEBUG_KMEMLEAK)"
fi
dmesg | grep -E 'xds2bpf|x2b' | tail -20
[ "$rc" = 0 ] && echo "X2B-VM-RESULT PASS" || echo "X2B-VM-RESULT FAIL"
sync
poweroff -f
echo o >/proc/sysrq-trigger
