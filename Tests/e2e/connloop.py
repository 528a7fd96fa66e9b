#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Connect loop: connects to DST back to back and records every outcome.

  connloop.py DST --stop-file F [--marker-file M] [--log CSV] [--summary JSON]
              [--max-seconds 60] [--timeout 1] [--wallclock] [--progress JSON]

Each connection reads the backend's identity. A connection started after
MARKER exists is counted in "after_marker" (the harness creates the marker
once a replace has returned), so "new connections after the swap reach B"
needs no clock shared between processes (--wallclock logs time.time() instead of
seconds since the start, for tests that compare with another process's log).
Stops when STOP-FILE exists. --progress rewrites a small JSON file
({"total", "failed", "errors"}) about twice a second, for long runs (Tests/soak).
The summary (JSON, also printed) has: total, ok, failed, rate (connects/s),
idents, after_marker, transitions (ident changes along the sequence), errors.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import fetch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dst")
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--marker-file")
    ap.add_argument("--log")
    ap.add_argument("--summary")
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--wallclock", action="store_true")
    ap.add_argument("--pause-on-error", type=float, default=0.0,
                    help="sleep this long after a failed connect (a destination that may be unrouted)")
    ap.add_argument("--progress", help="rewrite running totals into this JSON file every 0.5 s")
    a = ap.parse_args()

    log = open(a.log, "w") if a.log else None
    if log:
        log.write("seq,t,after_marker,outcome\n")
    idents, after, errors = {}, {}, []
    total = failed = transitions = 0
    last = None
    marked = False
    t0 = time.monotonic()
    next_progress = 0.0

    def progress():
        tmp = a.progress + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"total": total, "failed": failed, "errors": errors[:5]}, f)
        os.replace(tmp, a.progress)

    while not os.path.exists(a.stop_file) and time.monotonic() - t0 < a.max_seconds:
        if a.marker_file and not marked:
            marked = os.path.exists(a.marker_file)
        t = time.time() if a.wallclock else time.monotonic() - t0
        try:
            outcome = fetch(a.dst, a.timeout)
            ok = True
        except OSError as e:
            outcome = f"error:{type(e).__name__}:{e}"
            ok = False
        total += 1
        if ok:
            idents[outcome] = idents.get(outcome, 0) + 1
            if marked:
                after[outcome] = after.get(outcome, 0) + 1
            if last is not None and outcome != last:
                transitions += 1
            last = outcome
        else:
            failed += 1
            if a.pause_on_error:
                time.sleep(a.pause_on_error)
            if len(errors) < 20:
                errors.append({"seq": total, "t": round(t, 6), "error": outcome})
        if log:
            log.write(f"{total},{t:.6f},{int(marked)},{outcome}\n")
        if a.progress and time.monotonic() >= next_progress:
            progress()
            next_progress = time.monotonic() + 0.5
    elapsed = time.monotonic() - t0
    if a.progress:
        progress()
    if log:
        log.close()
    summary = {
        "dst": a.dst, "total": total, "ok": total - failed, "failed": failed,
        "seconds": round(elapsed, 3), "rate": round(total / elapsed, 1) if elapsed else 0,
        "idents": idents, "after_marker": after, "transitions": transitions, "last": last,
        "errors": errors,
    }
    text = json.dumps(summary, sort_keys=True)
    if a.summary:
        with open(a.summary, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
