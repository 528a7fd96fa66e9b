#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# `make run` as root: load a compiled bundle into a private network namespace and
# cgroup, connect to a few service addresses of the example, show where each
# connection went and the loader's counters, then unload. Everything is removed
# on exit. Usage: Tests/e2e/demo.sh BUNDLE SNAPSHOT
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
BUNDLE=$1
SNAPSHOT=$2
: "${XDS2BPF:=$HERE/../../.build/release/xds2bpf}"
if ! why=$(e2e_can_run 2>&1); then echo "demo skipped: $why"; exit 0; fi
e2e_netns_begin
dsts="10.96.0.12:9080 10.96.0.11:9080 10.96.0.20:27017 10.96.0.21:3306 10.96.0.10:53 10.96.77.7:9080"
eps=$("$HERE/expect.py" plan "$XDS2BPF" "$E2E_TMP/expected.json" $dsts -- "$SNAPSHOT")
for ep in $eps; do ip -n "$E2E_NETNS" addr add "${ep%:*}/32" dev lo 2>/dev/null || true; done
nsenter --net="/run/netns/$E2E_NETNS" -- "$E2E_PYTHON" "$HERE/multibackend.py" --ready "$E2E_TMP/ready" $eps >/dev/null 2>&1 &
e2e_track $!
for _ in $(seq 100); do [ -s "$E2E_TMP/ready" ] && break; sleep 0.05; done
e2e_load "$BUNDLE" demo
echo
echo "== 20 connections to each service address, from a process in the cgroup:"
e2e_in_cgroup "$E2E_PYTHON" "$HERE/probe.py" 20 $dsts --peer | "$E2E_PYTHON" -c '
import json, sys
for dst, counts in sorted(json.load(sys.stdin).items()):
    went = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()) if not k.startswith("peer:"))
    peer = [k[5:] for k in counts if k.startswith("peer:")]
    print(f"  {dst:<20} -> {went}" + (f"   (getpeername: {peer[0]})" if peer else ""))'
echo
echo "== xds2bpf-loader stats:"
e2e_loader stats --name demo
e2e_loader unload --name demo
