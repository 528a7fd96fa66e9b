#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Turns the kernel's BPF run-time statistics on while it runs (metrics test).

  bpf-stats.py READY_FILE

BPF_ENABLE_STATS(BPF_STATS_RUN_TIME) returns a file descriptor; the kernel counts
bpf_prog_info.run_cnt / run_time_ns while any such descriptor is open, so the
statistics go off again when this process exits, however it exits (no sysctl is
changed). Writes its pid to READY_FILE, then sleeps until it is killed.
"""
import ctypes
import os
import platform
import signal
import sys

SYS_BPF = {"x86_64": 321, "aarch64": 280}
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0


def main():
    nr = SYS_BPF.get(platform.machine())
    if nr is None:
        sys.exit(f"bpf-stats.py: no bpf syscall number for {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    attr = (ctypes.c_uint32 * 4)(BPF_STATS_RUN_TIME, 0, 0, 0)
    fd = libc.syscall(nr, BPF_ENABLE_STATS, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        sys.exit(f"bpf-stats.py: BPF_ENABLE_STATS: {os.strerror(ctypes.get_errno())}")
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
