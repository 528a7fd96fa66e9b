#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Markdown report of the VM's HTTP soak (run.sh step soak-http) from the guest's log.

  soak-report.py LOG PARAMS

Reads the X2B-SOAK sample lines and X2B-SOAK-END lines guest-soak-http.sh printed
and the kernel-log verdict init.sh printed; writes a table (every sample, or about
one row a minute on long runs), totals and verdicts. Exits 1 when a verdict fails:
a failed request or replace, a kernel warning, sockets still held by the module,
or an unreclaimable-slab floor (the lowest sample of the last third of the run
against that of the first third) that grew by more than SOAK_SUNRECLAIM_GROWTH_MIB (16).
"""
import os
import re
import sys

log, params_file = sys.argv[1], sys.argv[2]
params = dict(line.rstrip("\n").split("=", 1) for line in open(params_file) if "=" in line)
samples, end, kernel, booted = [], {}, None, "? ?"
for line in open(log, errors="replace"):
    line = line.rstrip("\r\n")
    if line.startswith("X2B-SOAK "):
        samples.append(dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv))
    elif line.startswith("X2B-SOAK-END module "):
        words = line.split()[2:]
        end["module"] = dict(zip(words[0::2], words[1::2]))
    elif line.startswith("X2B-SOAK-END replace-seconds"):
        end["replace_s"] = [float(x) for x in line.split()[2:]]
    elif line.startswith("X2B-SOAK-END meminfo "):
        end["mem"] = dict(kv.split("=", 1) for kv in line.split()[2:])
    elif line.startswith("X2B-KERNEL-LOG "):
        kernel = line[len("X2B-KERNEL-LOG "):]
    elif line.startswith("X2B-VM-BOOTED "):
        booted = line
if not samples:
    print("soak-http: no X2B-SOAK samples in the log (the guest did not get to the clients)")
    sys.exit(1)

bound = float(os.environ.get("SOAK_SUNRECLAIM_GROWTH_MIB", "16"))
mib = lambda kib: int(kib) / 1024  # noqa: E731
total = sum(int(s["requests"]) for s in samples)
failed = sum(int(s["failed"]) for s in samples)
last = samples[-1]
step = max(1, round(len(samples) / 20))
shown = [s for i, s in enumerate(samples) if i % step == 0 or s is last]
out = [f"Soak (VM, HTTP through the module): {int(params['SECONDS_TOTAL']) / 60:.0f} min, "
       f"{params['CLIENTS']} connections in flight, replace every {params['REPLACE_S']} s, "
       f"kernel {booted.split()[1]} with the module, 1 vCPU (TCG)\n",
       "| t (s) | requests | requests/s | p50 µs | p99 µs | failed (in the interval) | replaces | replace failures | "
       "module: sockets held | module: deferred (total) | Slab (MiB) | SUnreclaim (MiB) | MemAvailable (MiB) | kernel warnings |",
       "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for s in shown:
    out.append(f"| {s['t']} | {int(s['requests']):,} | {float(s['rps']):,.0f} | {float(s['p50_us']):,.0f} | "
               f"{float(s['p99_us']):,.0f} | {s['failed']} | {s['replaces']} | {s['replace_failed']} | "
               f"{s['module_live']} | {int(s['deferred']):,} | {mib(s['slab_kib']):.1f} | {mib(s['sunreclaim_kib']):.1f} | "
               f"{mib(s['memavail_kib']):.0f} | {s['warnings']} |")
out.append("")
first = samples[0]
# A leak raises the floor; a sample taken during a replace (programs and maps of two bundles
# alive, RCU frees pending) sits ≈ 8 MiB above it, so the lowest sample of the first and of the
# last third are compared, not single samples.
third = max(1, len(samples) // 3)
floor_first = min(mib(s["sunreclaim_kib"]) for s in samples[:third])
floor_last = min(mib(s["sunreclaim_kib"]) for s in samples[-third:])
grow = floor_last - floor_first
held = end.get("module", {}).get("live", "?")
verdicts = [
    (failed == 0, f"failed requests: {failed} of {total + failed:,} (errors, timeouts and non-200 answers)"),
    (int(last["replace_failed"]) == 0, f"replaces: {last['replaces']} ok, {last['replace_failed']} failed"),
    (int(last["warnings"]) == 0 and (kernel or "").startswith("PASS"),
     f"kernel warnings: {last['warnings']} during the run; init's whole-log check: {kernel or 'not reached'}"),
    (held == "0", f"sockets the module still held after the clients stopped: {held}"),
    (grow <= bound, f"unreclaimable slab, lowest sample of the first third {floor_first:.1f} MiB -> of the last third "
                    f"{floor_last:.1f} MiB (bound +{bound:.0f} MiB; first sample {mib(first['sunreclaim_kib']):.1f}, "
                    f"last {mib(last['sunreclaim_kib']):.1f})"),
]
out.append(f"Totals: {total:,} requests answered 200 in {last['t']} s ({total / max(1, int(last['t'])):,.0f}/s), "
           f"{failed} failed; {last['replaces']} replaces.\n")
for ok, text in verdicts:
    out.append(f"- {'PASS' if ok else 'FAIL'}: {text}")
rs = end.get("replace_s", [])
if rs:
    out.append(f"- info: one replace (`xds2bpf-loader replace`, under TCG) took {rs[len(rs) // 2]:.1f} s "
               f"(median; {rs[0]:.1f}-{rs[-1]:.1f} s), so replaces ran every "
               f"{max(float(params['REPLACE_S']), rs[len(rs) // 2]):.1f} s or so, back to back when longer than "
               f"{params['REPLACE_S']} s")
out.append(f"- info: MemAvailable {mib(first['memavail_kib']):.0f} MiB -> {mib(last['memavail_kib']):.0f} MiB; "
           f"module counters at the end: {' '.join(f'{k} {v}' for k, v in end.get('module', {}).items())}")
print("\n".join(out))
sys.exit(0 if all(ok for ok, _ in verdicts) else 1)
