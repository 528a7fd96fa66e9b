#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Connect targets of a snapshot, from `xds2bpf dump-ir` (read on stdin).

  xds2bpf dump-ir SNAP | ir_targets.py --vips FILE [--endpoints FILE] [--endpoints-max N]
                                       [--service-endpoints FILE] [--ports FILE] [--routes FILE]

--vips                one VIP:PORT per IPv4 listener that routes to a cluster with endpoints
--endpoints           the first endpoint of each of those listeners' clusters (at most N):
                      destinations that no listener matches (pass-through traffic)
--service-endpoints   the endpoints of the first listener's cluster, first line the VIP:PORT
--ports               every endpoint port (for the backend)
--routes              per routed listener, one line: VIP:PORT then its cluster's healthy endpoints
                      (bench/l4floor's tables)
"""
import argparse
import re
import sys

LISTENER = re.compile(r'^listener "(?P<name>[^"]*)" (?P<addr>\S+) ')
CHAIN = re.compile(r'^\s+chain .* -> cluster "(?P<cluster>[^"]*)"')
CLUSTER = re.compile(r'^cluster "(?P<name>[^"]*)"')
ENDPOINT = re.compile(r'^\s+endpoint (?P<addr>\S+) .*\bhealthy\b')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vips", required=True)
    ap.add_argument("--endpoints")
    ap.add_argument("--endpoints-max", type=int, default=1000)
    ap.add_argument("--service-endpoints")
    ap.add_argument("--ports")
    ap.add_argument("--routes")
    a = ap.parse_args()

    listeners = []  # (addr, cluster)
    eps = {}
    cur_listener = cur_cluster = None
    for line in sys.stdin:
        m = LISTENER.match(line)
        if m:
            cur_listener, cur_cluster = m.group("addr"), None
            continue
        m = CLUSTER.match(line)
        if m:
            cur_listener, cur_cluster = None, m.group("name")
            eps.setdefault(cur_cluster, [])
            continue
        m = CHAIN.match(line)
        if m and cur_listener:
            listeners.append((cur_listener, m.group("cluster")))
            cur_listener = None
            continue
        m = ENDPOINT.match(line)
        if m and cur_cluster:
            eps[cur_cluster].append(m.group("addr"))

    routed = [(vip, c) for vip, c in listeners
              if eps.get(c) and not vip.startswith("[") and not vip.startswith("0.0.0.0:")]
    if not routed:
        sys.exit("ir_targets: no IPv4 listener routes to a cluster with endpoints")
    with open(a.vips, "w") as f:
        f.writelines(f"{vip}\n" for vip, _ in routed)
    if a.endpoints:
        with open(a.endpoints, "w") as f:
            f.writelines(f"{eps[c][0]}\n" for _, c in routed[:a.endpoints_max])
    if a.service_endpoints:
        vip, c = routed[0]
        with open(a.service_endpoints, "w") as f:
            f.write(f"{vip}\n")
            f.writelines(f"{e}\n" for e in eps[c])
    if a.routes:
        with open(a.routes, "w") as f:
            f.writelines(" ".join([vip] + eps[c]) + "\n" for vip, c in routed)
    if a.ports:
        ports = sorted({int(e.rsplit(":", 1)[1]) for c in eps.values() for e in c})
        with open(a.ports, "w") as f:
            f.writelines(f"{p}\n" for p in ports)


if __name__ == "__main__":
    main()
