#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Differential check of the kernel data plane against `xds2bpf explain` (the IR interpreter).

  expect.py plan XDS2BPF OUT.json DST... -- SNAPSHOT...
      asks `explain --json` for each destination; writes {dst: explanation} and
      prints every endpoint address any destination may reach (for the backends).
  expect.py check EXPECTED.json OBSERVED.json N
      every reply must be an allowed endpoint (or the expected error), and the
      spread over endpoints must match the interpreter's shares within a fixed
      statistical tolerance (4 sigma + 2 points).
"""
import json
import math
import subprocess
import sys


def plan(args):
    xds, out = args[0], args[1]
    sep = args.index("--")
    dsts, snapshot = args[2:sep], args[sep + 1:]
    result, endpoints = {}, set()
    for d in dsts:
        p = subprocess.run([xds, "explain", "--json", "--dst", d, *snapshot],
                           capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"explain {d} failed ({p.returncode}): {p.stderr[-2000:]}")
        e = json.loads(p.stdout)
        result[d] = e
        for c in e.get("candidates", []):
            endpoints.add(c["endpoint"])
    with open(out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    print(" ".join(sorted(endpoints)))


def check(args):
    expected = json.load(open(args[0]))
    observed = json.load(open(args[1]))
    n = int(args[2])
    failures = []
    for dst, e in sorted(expected.items()):
        got = observed.get(dst, {})
        total = sum(v for k, v in got.items() if not k.startswith("peer:"))
        outcome = e["outcome"]
        if outcome == "redirect" or (outcome == "refused" and e.get("candidates")):
            shares = {c["endpoint"]: c["share"] / 100.0 for c in e["candidates"]}
            bad = {k: v for k, v in got.items() if not k.startswith("peer:") and k not in shares}
            if bad:
                failures.append(f"{dst}: replies from outside the cluster's endpoints {sorted(shares)}: {bad}")
                continue
            for ep, p in sorted(shares.items()):
                c = got.get(ep, 0)
                tol = 4 * math.sqrt(max(p * (1 - p), 1e-9) / n) + 0.02
                if abs(c / n - p) > tol:
                    failures.append(f"{dst}: {ep} got {c}/{n} = {c / n:.3f}, expected {p:.3f} ± {tol:.3f}")
            print(f"ok {dst}: {e.get('cluster')} " + ", ".join(f"{ep} {got.get(ep, 0)}/{n} (exp {p:.2f})" for ep, p in sorted(shares.items())))
            peers = {k[5:]: v for k, v in got.items() if k.startswith("peer:")}
            if peers and set(peers) != {dst}:
                failures.append(f"{dst}: getpeername reported {peers}, expected the service address {dst}")
        elif outcome == "refused":
            if set(got) != {"error: EPERM"}:
                failures.append(f"{dst}: expected every connect refused (EPERM), got {got}")
            else:
                print(f"ok {dst}: refused (EPERM)")
        else:
            # untouched: the service address does not exist in the test netns
            if any(not k.startswith("error") for k in got):
                failures.append(f"{dst}: expected the connect left untouched (unreachable), got {got}")
            else:
                print(f"ok {dst}: untouched ({', '.join(got)})")
    if failures:
        print("\n".join("FAIL " + f for f in failures))
        sys.exit(1)


if __name__ == "__main__":
    {"plan": plan, "check": check}[sys.argv[1]](sys.argv[2:])
