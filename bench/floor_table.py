#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The floor section's table (scripts/bench.sh --only floor): nanoseconds per run of
the bundle's entry program, the two bench/l4floor layouts and the empty program,
median of the runs (min-max), from bench/connloop's JSON.

  floor_table.py RESULTS-DIR SIZE...
"""
import json
import os
import statistics
import sys


def per_run(path):
    """(median, min, max) ns per program run, and the failed connects, of one connloop result."""
    with open(path) as f:
        d = json.load(f)
    ns = [p["run_time_ns"] / p["run_cnt"] for r in d["runs"] for p in r["progs"].values() if p["run_cnt"]]
    errors = sum(r["errors"] for r in d["runs"])
    return statistics.median(ns), min(ns), max(ns), errors


def main():
    res, sizes = sys.argv[1], sys.argv[2:]
    cols = [("bundle", "the bundle's `x2b_connect4`"), ("split", "floor, split tables"),
            ("split64", "floor, split at the bundle's row sizes"),
            ("split32", "floor, split at 32 B slots, 16 B endpoints"),
            ("inline", "floor, endpoints inline"), ("split10", "floor, split, to 10 of the VIPs"),
            ("empty", "empty program")]
    print("| services | " + " | ".join(c[1] for c in cols) + " | split − empty | inline − empty | failed connects |")
    print("|---:|" + "---:|" * (len(cols) + 3))
    for n in sizes:
        got = {}
        for key, _ in cols:
            p = os.path.join(res, f"{key}-{n}.json")
            got[key] = per_run(p) if os.path.exists(p) else None
        cells = [f"{g[0]:.0f} ns ({g[1]:.0f}–{g[2]:.0f})" if g else "-" for g in (got[k] for k, _ in cols)]
        empty = got["empty"][0] if got["empty"] else None
        diffs = [f"{got[k][0] - empty:.0f} ns" if got[k] and empty is not None else "-" for k in ("split", "inline")]
        errors = sum(g[3] for g in got.values() if g)
        print(f"| {n} | " + " | ".join(cells + diffs) + f" | {errors} |")


if __name__ == "__main__":
    main()
