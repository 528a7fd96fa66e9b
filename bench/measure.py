#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Runs one command and prints its wall time and peak RSS as one JSON line.

  measure.py [--stdout FILE] [--stderr FILE] [--label L] -- CMD ARG...

Peak RSS comes from wait4() on the child: the largest resident set of the
child and of every descendant it waited for (clang under xds2bpf compile).
Exits with the command's status.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stdout")
    ap.add_argument("--stderr")
    ap.add_argument("--label", default="")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command")
    out = open(a.stdout, "wb") if a.stdout else subprocess.DEVNULL
    err = open(a.stderr, "wb") if a.stderr else subprocess.DEVNULL
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out, stderr=err)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    rc = os.waitstatus_to_exitcode(status)
    print(json.dumps({"label": a.label, "seconds": round(wall, 6), "peak_rss_kib": ru.ru_maxrss,
                      "user_s": round(ru.ru_utime, 4), "sys_s": round(ru.ru_stime, 4), "rc": rc}))
    return rc


if __name__ == "__main__":
    sys.exit(main())
