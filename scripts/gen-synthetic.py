#!/usr/bin/env python3
"""Deterministic synthetic xDS snapshot generator: a mesh shaped like examples/bookinfo (Istio
sidecar view), at any scale, for scale and incremental-update tests of xds2bpf.

For N services (svc-00000 ... in namespaces ns-000 ..., 100 services each):
  * a fraction --http-ratio are HTTP on port 80: one virtual host each (domains: FQDN, short
    names, VIP, with and without :80) in the single RDS route config "80" behind Istio's
    `0.0.0.0_80` listener; the rest are TCP: a listener `<VIP>_<port>` (tcp_proxy) each;
  * VIPs are unique: IPv4 from 10.0.0.0/10, or, for a fraction --ipv6-ratio, IPv6 from
    fd00:10:96::/96 (dual-stack: the `0.0.0.0_80` listener then gets `::` as additional address,
    or a separate `::_80` listener with --dual-stack-listener separate);
  * one EDS cluster `outbound|<port>||<host>` per service, LB policy drawn from --lb-mix, and a
    ClusterLoadAssignment of M endpoints (pod IPs unique, 10.64.0.0/10 or fd00:10:244::/96,
    spread over three zones), all HEALTHY unless --unhealthy-ratio;
  * Istio's fixed parts: virtualOutbound (15001, use_original_dst), BlackHoleCluster,
    PassthroughCluster, the allow_any virtual host.

--endpoint-change K re-addresses the endpoints of K services (chosen by the seed; new IPs from
10.128.0.0/10 or fd00:10:245::/96, same count, ports, zones and health) and leaves every other
byte of every other resource unchanged: an endpoint-only (EDS) update. In the pb stream only
the EDS response changes (its version_info and nonce are content hashes; LDS/RDS/CDS carry a
fixed version).

Every choice comes from random.Random streams seeded by "<seed>/<purpose>", so the output is a
pure function of the arguments, and changing one ratio does not reshuffle the others.

Formats:
  json  admin ConfigDump JSON (as examples/bookinfo/bookinfo.json; compact unless --indent)
  pb    length-delimited DiscoveryResponse stream (LDS, RDS, CDS, EDS), the same code path as
        scripts/make-pb.py --as discovery-stream
  dump-pb  binary ConfigDump, as make-pb.py --as config-dump

  python3 scripts/gen-synthetic.py --services 10000 --endpoints 10 --http-ratio 0.5 \\
      --seed 1 --format pb -o /tmp/mesh-10k.xds.pb
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdslib as x  # noqa: E402

PROG = "gen-synthetic"
VERSION = "2024-05-14T09:12:31Z/synthetic"
UPDATED = "2024-05-14T09:12:33.118Z"
ZONES = [("us-east1", "us-east1-b"), ("us-east1", "us-east1-c"), ("us-east1", "us-east1-d")]
TCP_PORTS = [3306, 5432, 6379, 9042, 9092, 11211, 27017, 5672, 2181, 7000]
HTTP_PORT = 80
PER_NAMESPACE = 100

V4_VIP = ipaddress.ip_network("10.0.0.0/10")
V4_POD = ipaddress.ip_network("10.64.0.0/10")
V4_POD_CHANGED = ipaddress.ip_network("10.128.0.0/10")
V6_VIP = ipaddress.ip_network("fd00:10:96::/96")
V6_POD = ipaddress.ip_network("fd00:10:244::/96")
V6_POD_CHANGED = ipaddress.ip_network("fd00:10:245::/96")

LB_POLICIES = {
    "round_robin": (None, None),
    "least_request": ("LEAST_REQUEST", None),
    "random": ("RANDOM", None),
    "ring_hash": ("RING_HASH", {"ring_hash_lb_config": {"minimum_ring_size": "1024"}}),
    "maglev": ("MAGLEV", {"maglev_lb_config": {"table_size": "65537"}}),
}


def rng(seed: int, purpose: str) -> random.Random:
    return random.Random(f"{seed}/{purpose}")


def addresses(net, count: int, r: random.Random) -> list[str]:
    """``count`` distinct host addresses of ``net`` (not the network or last address)."""
    size = net.num_addresses - 2
    if count > size:
        raise ValueError(f"{net} has room for {size} addresses, {count} needed")
    base = int(net.network_address) + 1
    cls = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
    return [str(cls(base + off)) for off in r.sample(range(size), count)]


def parse_mix(text: str) -> list[tuple[str, float]]:
    out = []
    for part in text.split(","):
        name, _, weight = part.partition("=")
        name = name.strip().lower().replace("-", "_")
        if name not in LB_POLICIES:
            raise ValueError(f"--lb-mix: unknown policy {name!r} (one of {', '.join(LB_POLICIES)})")
        out.append((name, float(weight or 1)))
    return out


def build(args) -> dict:
    """The ConfigDump JSON document."""
    n, m, seed = args.services, args.endpoints, args.seed
    kind_r, v6_r, lb_r, port_r, health_r = (rng(seed, p) for p in ("kind", "ipv6", "lb", "port", "health"))
    is_http = [kind_r.random() < args.http_ratio for _ in range(n)]
    is_v6 = [v6_r.random() < args.ipv6_ratio for _ in range(n)]
    mix = parse_mix(args.lb_mix)
    lb = lb_r.choices([name for name, _ in mix], weights=[w for _, w in mix], k=n)
    ports = [HTTP_PORT if is_http[i] else port_r.choice(TCP_PORTS) for i in range(n)]
    n6 = sum(is_v6)
    vip4 = iter(addresses(V4_VIP, n - n6, rng(seed, "vip4")))
    vip6 = iter(addresses(V6_VIP, n6, rng(seed, "vip6")))
    vips = [next(vip6) if is_v6[i] else next(vip4) for i in range(n)]
    pod4 = iter(addresses(V4_POD, (n - n6) * m, rng(seed, "pod4")))
    pod6 = iter(addresses(V6_POD, n6 * m, rng(seed, "pod6")))
    pods = [[next(pod6) if is_v6[i] else next(pod4) for _ in range(m)] for i in range(n)]
    health = [["UNHEALTHY" if health_r.random() < args.unhealthy_ratio else "HEALTHY" for _ in range(m)]
              for _ in range(n)]

    changed = sorted(rng(seed, "change").sample(range(n), args.endpoint_change)) if args.endpoint_change else []
    if changed:
        c6 = sum(is_v6[i] for i in changed)
        new4 = iter(addresses(V4_POD_CHANGED, (len(changed) - c6) * m, rng(seed, f"change4/{args.endpoint_change}")))
        new6 = iter(addresses(V6_POD_CHANGED, c6 * m, rng(seed, f"change6/{args.endpoint_change}")))
        for i in changed:
            pods[i] = [next(new6) if is_v6[i] else next(new4) for _ in range(m)]

    listeners, clusters, endpoints, vhosts = [], [], [], []
    tcp_listeners = []
    for i in range(n):
        short, ns = f"svc-{i:05d}", f"ns-{i // PER_NAMESPACE:03d}"
        host = f"{short}.{ns}.svc.cluster.local"
        port = ports[i]
        cname = f"outbound|{port}||{host}"
        policy, lb_config = LB_POLICIES[lb[i]]
        clusters.append(x.eds_cluster(cname, short, ns, port, lb_policy=policy, lb_config=lb_config,
                                      dr=policy is not None, tls=False))
        workload = f"{short};{ns};{short};v1;Kubernetes"
        cla_pods = [x.Pod(ip=ip, port=port if not is_http[i] else 8080, workload=workload,
                          region=ZONES[j % 3][0], zone=ZONES[j % 3][1], health=health[i][j])
                    for j, ip in enumerate(pods[i])]
        endpoints.append(x.cluster_load_assignment(cname, cla_pods, tls=False))
        if is_http[i]:
            vhosts.append(x.virtual_host(short, ns, vips[i], port, [x.http_route(host, port, cluster=cname)]))
        else:
            hash_ip = policy in ("RING_HASH", "MAGLEV")
            tcp_listeners.append(x.outbound_tcp_listener(
                vips[i], port, x.tcp_proxy_filter(cname, cname, hash_source_ip=hash_ip)))

    tcp_listeners.sort(key=lambda l: l["name"])
    listeners += tcp_listeners
    routes = []
    if vhosts:
        vhosts.sort(key=lambda v: v["name"])
        vhosts.append(x.allow_any_virtual_host())
        routes.append(x.route_configuration(str(HTTP_PORT), vhosts))
        any_v6_http = any(is_http[i] and is_v6[i] for i in range(n))
        if any_v6_http and args.dual_stack_listener == "separate":
            listeners.append(x.outbound_http_listener(HTTP_PORT, str(HTTP_PORT)))
            v6 = x.outbound_http_listener(HTTP_PORT, str(HTTP_PORT))
            v6["name"] = x.listener_name("::", HTTP_PORT)
            v6["address"] = x.sock("::", HTTP_PORT)
            listeners.append(v6)
        else:
            listeners.append(x.outbound_http_listener(HTTP_PORT, str(HTTP_PORT),
                                                      additional_addresses=["::"] if any_v6_http else None))
    listeners.append(x.virtual_outbound_listener())
    clusters += x.passthrough_clusters(inbound_v4=False)
    for c in clusters[-2:]:
        endpoints.append({"@type": x.T_CLA, "cluster_name": c["name"], "policy": {"overprovisioning_factor": 140}})

    doc = x.istio_config_dump(version=VERSION, updated=UPDATED, static_listeners=[], listeners=listeners,
                              static_clusters=[], clusters=clusters, routes=routes, static_endpoints=[],
                              endpoints=endpoints)
    return doc


def write_pb(doc: dict, fmt: str, out, report: x.Report) -> str:
    """Binary output through the same code as make-pb.py (collect the ConfigDump, then write)."""
    if fmt == "dump-pb":
        dump = x.parse_json(doc, x.CONFIG_DUMP, report=report, path="synthetic")
        out.write(x.serialize(dump))
        return f"ConfigDump with {len(dump.configs)} sections"
    collected = x.Collected()
    x.collect(doc, "synthetic", collected, report=report)
    data, text = x.discovery_stream(collected, report=report)
    out.write(data)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gen-synthetic.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, required=True, metavar="N")
    ap.add_argument("--endpoints", type=int, required=True, metavar="M", help="endpoints per service")
    ap.add_argument("--http-ratio", type=float, default=0.5, metavar="R", help="fraction of HTTP services (0..1)")
    ap.add_argument("--ipv6-ratio", type=float, default=0.0, metavar="F", help="fraction with IPv6 VIPs/pods")
    ap.add_argument("--seed", type=int, default=1, metavar="S")
    ap.add_argument("--endpoint-change", type=int, default=0, metavar="K",
                    help="re-address the endpoints of K services (endpoint-only update)")
    ap.add_argument("--lb-mix", default="round_robin=1", metavar="P=W,...",
                    help="LB policies and weights, e.g. round_robin=70,least_request=20,random=5,"
                         "ring_hash=3,maglev=2 (default: all round robin)")
    ap.add_argument("--unhealthy-ratio", type=float, default=0.0, help="fraction of UNHEALTHY endpoints")
    ap.add_argument("--dual-stack-listener", choices=("additional-address", "separate"), default="additional-address")
    ap.add_argument("--format", choices=("json", "pb", "dump-pb"), required=True)
    ap.add_argument("--indent", type=int, default=None, help="json: indent (default compact)")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    for name in ("http_ratio", "ipv6_ratio", "unhealthy_ratio"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            ap.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    if args.services < 0 or args.endpoints < 0:
        ap.error("--services and --endpoints must not be negative")
    if not 0 <= args.endpoint_change <= args.services:
        ap.error("--endpoint-change must be between 0 and --services")

    t0 = time.monotonic()
    try:
        doc = build(args)
    except ValueError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    report = x.Report()
    tmp = args.output + ".tmp"
    if args.format == "json":
        with open(tmp, "w", encoding="utf-8") as fh:
            x.dump_json(doc, fh, indent=args.indent)
        text = f"{args.services} services"
    else:
        x.load_protos()
        with open(tmp, "wb") as fh:
            text = write_pb(doc, args.format, fh, report)
    os.replace(tmp, args.output)
    if not args.quiet:
        size = os.path.getsize(args.output)
        print(f"{PROG}: wrote {args.output} ({size} bytes, {time.monotonic() - t0:.1f}s): {text}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
