#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Compares the guest's TLS observations (X2B-TOBS lines in LOG) with the
# interpreter's expectations from plan-tls.sh: the backend a handshake reached
# must be one of the chosen cluster's endpoints, or none where Envoy closes.
#   Tests/vm/check-tls.sh LOG PLAN-DIR
set -euo pipefail
python3 - "$1" "$2" <<'PY'
import json, os, sys
log, plan = sys.argv[1:3]
obs = {}
for line in open(log, errors="replace"):
    p = line.rstrip("\r\n").split(" ")
    if len(p) == 4 and p[0] == "X2B-TOBS":
        obs[(p[1], p[2])] = p[3]
ok = bad = 0
for line in open(os.path.join(plan, "requests")):
    case, rid, dst, sni, alpn, mode = line.rstrip("\n").split("|")
    allowed = json.load(open(os.path.join(plan, case, "expected.json")))[rid]
    got = obs.get((case, rid))
    want = allowed or ["none"]
    if got in want:
        ok += 1
        print(f"ok {case}/{rid} ({mode}, sni {sni}, alpn {alpn}): {got}")
    else:
        bad += 1
        print(f"FAIL {case}/{rid} ({mode}, sni {sni}, alpn {alpn} to {dst}): reached {got}, expected {' or '.join(want)}")
print(f"check-tls: {ok} passed, {bad} failed")
sys.exit(1 if bad else 0)
PY
