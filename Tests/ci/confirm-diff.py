#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Checks an `xds2bpf diff --json` report against `xds2bpf explain`: for every change, the
example request explained on the old and on the new snapshot gives the outcome, cluster and
endpoint shares the report states for that side.

Usage: confirm-diff.py XDS2BPF DIFF.json OLD NEW   (prints one line per change; exit 1 on a mismatch)
"""
import json
import subprocess
import sys


def explain(xds2bpf: str, snapshot: str, example: dict) -> dict:
    line = json.dumps({k: v for k, v in example.items() if v is not None})
    out = subprocess.run([xds2bpf, "explain", snapshot, "--requests", "-"], input=line, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.splitlines()[0])


def shares(endpoints: list) -> list:
    return [(e["endpoint"], e["priority"], round(e["share"], 3)) for e in endpoints]


def main() -> int:
    xds2bpf, report, old, new = sys.argv[1:5]
    diff = json.load(open(report))
    bad = 0
    for c in diff["changes"]:
        ex = dict(c["example"])
        if c["kind"] == "connect":  # a connect: explain without a request
            ex = {"dst": ex["dst"], "random": ex["random"]}
            cmd_note = "connect"
        else:
            cmd_note = f'{ex.get("method")} {ex.get("authority")}{ex.get("path")}'
        for label, snap in (("old", old), ("new", new)):
            side = c[label]
            if c["kind"] == "connect":
                out = subprocess.run([xds2bpf, "explain", snap, "--dst", ex["dst"], "--json"], capture_output=True,
                                     text=True, check=True).stdout
                e = json.loads(out)
            else:
                e = explain(xds2bpf, snap, ex)
            got = (e.get("outcome"), e.get("cluster"), shares(e.get("candidates", [])))
            want = (side["outcome"], side.get("cluster"), shares(side.get("endpoints", [])))
            if got != want:
                print(f"MISMATCH {c['service']} {cmd_note} {label}: explain {got}, diff {want}")
                bad += 1
        print(f"confirmed {c['service']} {cmd_note}: {c['old'].get('cluster')} -> {c['new'].get('cluster')}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
