#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Concurrency cases of phase A in a loop (Tests/vm/run.sh stress; not in the default steps).
insmod /x2b/xds2bpf_defer.ko || exit 1
mkdir -p /sys/fs/cgroup/x2b
/x2b/x2b-vmtest stress /x2b/defer_test.bpf.o /sys/fs/cgroup/x2b "${X2B_STRESS_ROUNDS:-30}"
