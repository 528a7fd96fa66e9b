#!/usr/bin/env python3
"""Check that hand-written xDS fixtures are valid Envoy configuration, using Envoy's generated
Python classes (PyPI xds-protos; pip install -r scripts/requirements.txt).

A case is a file (`Tests/Fixtures/l4/tcp-single.json`) or a directory whose files together form
one snapshot (`Tests/Fixtures/l4/multi-file/`). Each file is parsed strictly with
json_format (unknown fields and unknown Any types are errors):
  * bootstrap (`static_resources`)      -> envoy.config.bootstrap.v3.Bootstrap
  * DiscoveryResponse (`type_url` + `resources`) -> envoy.service.discovery.v3.DiscoveryResponse
  * bare list named *listeners* / *routes* / *clusters* / *endpoints* -> that resource type
  * admin ConfigDump (`configs`) -> envoy.admin.v3.ConfigDump; unknown Any types (Istio's
    filters) are allowed here, unknown fields are not.
Then the case is checked as a whole for what protobuf parsing cannot see and Envoy would
reject or silently mis-route: references (tcp_proxy / route clusters, RDS names, EDS service
names), duplicate names, addresses and filter chain matches, weights >= 1, contiguous
priorities, Maglev table size prime, ring sizes ordered.

  python3 scripts/validate-fixtures.py                      # Tests/Fixtures/l4 + examples/bookinfo
  python3 scripts/validate-fixtures.py Tests/Fixtures/l4/health.json
Prints one line per case and a closing "fixtures: N passed, N failed"; exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import glob
import ipaddress
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import xdslib as x  # noqa: E402

DEFAULT_PATHS = ["Tests/Fixtures/l4", "Tests/Fixtures/tls", "examples/bookinfo/bookinfo.json"]
HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"


def _inputs(d: str) -> list[str]:
    return sorted(f for f in glob.glob(os.path.join(d, "*")) if f.endswith((".json", ".yaml", ".yml")))


def cases(paths: list[str]) -> list[tuple[str, list[str]]]:
    """A file is a case. A directory with subdirectories is a collection: each file in it and
    each subdirectory is a case. A directory without subdirectories is one multi-file case."""
    out = []
    for p in paths:
        if os.path.isfile(p):
            out.append((p, [p]))
        elif os.path.isdir(p):
            subdirs = sorted(d for d in glob.glob(os.path.join(p, "*")) if os.path.isdir(d))
            if not subdirs:
                out.append((p, _inputs(p)))
                continue
            out += [(f, [f]) for f in _inputs(p)]
            out += cases(subdirs)
        else:
            raise SystemExit(f"validate-fixtures: no such file or directory: {p}")
    return out


# ----------------------------------------------------------------------------- schema


def parse_strict(path: str, collected: x.Collected, report: x.Report) -> str:
    """Parse one file strictly; add its resources to ``collected``. Returns what it was."""
    from google.protobuf import json_format

    doc = x.read_document(path)
    name = os.path.basename(path)
    if isinstance(doc, dict) and "configs" in doc:
        # Real config dumps carry Istio's own filter types: allow unknown Any, not unknown fields.
        x.collect(doc, name, collected, strict=True, report=report)
        return "ConfigDump"
    if isinstance(doc, dict) and ("static_resources" in doc or "staticResources" in doc):
        json_format.ParseDict(doc, x.new_message(x.BOOTSTRAP))
        x.collect(doc, name, collected, strict=True, report=report)
        return "Bootstrap"
    if isinstance(doc, dict) and "resources" in doc and ("type_url" in doc or "typeUrl" in doc):
        json_format.ParseDict(doc, x.new_message(x.DISCOVERY_RESPONSE))
        x.collect(doc, name, collected, strict=True, report=report)
        return "DiscoveryResponse"
    if isinstance(doc, list):
        kind = x._kind_from_hint(name)
        if kind is None:
            raise ValueError(f"{name}: a list, but the file name does not say of what")
        for item in doc:
            json_format.ParseDict(item, x.new_message(x.KIND_MESSAGE[kind]))
        x.collect(doc, name, collected, strict=True, report=report, hint=name)
        return f"{x.KIND_LABEL[kind]} list"
    raise ValueError(f"{name}: not a bootstrap, DiscoveryResponse, ConfigDump or per-type list")


# ----------------------------------------------------------------------------- semantics


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def check_ip(text: str, where: str, problems: list[str]) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        problems.append(f"{where}: {text!r} is not an IP address")


def check_assignment(cla, where: str, problems: list[str]) -> None:
    prios = sorted({g.priority for g in cla.endpoints})
    if prios and prios != list(range(len(prios))):
        problems.append(f"{where}: priorities {prios} are not contiguous from 0")
    for gi, g in enumerate(cla.endpoints):
        if g.HasField("load_balancing_weight") and g.load_balancing_weight.value < 1:
            problems.append(f"{where}.endpoints[{gi}]: locality load_balancing_weight must be >= 1")
        for ei, e in enumerate(g.lb_endpoints):
            w = f"{where}.endpoints[{gi}].lb_endpoints[{ei}]"
            if e.HasField("load_balancing_weight") and e.load_balancing_weight.value < 1:
                problems.append(f"{w}: load_balancing_weight must be >= 1")
            a = e.endpoint.address
            if a.HasField("socket_address"):
                check_ip(a.socket_address.address, w, problems)


def check_case(c: x.Collected) -> list[str]:
    problems: list[str] = []
    listeners = [r for r in c.resources if r.kind == "listener"]
    clusters = [r for r in c.resources if r.kind == "cluster"]
    routes = {r.message.name: r for r in c.resources if r.kind == "route"}
    clas = {r.message.cluster_name for r in c.resources if r.kind == "endpoint"}
    cluster_names: dict[str, str] = {}
    for r in clusters:
        if r.message.name in cluster_names and not r.static:
            problems.append(f"{r.origin}: duplicate cluster name {r.message.name!r}")
        cluster_names[r.message.name] = r.origin

    def need_cluster(name: str, where: str) -> None:
        if name not in cluster_names:
            problems.append(f"{where}: cluster {name!r} is not defined")

    def check_route_config(rc, where: str) -> None:
        for vi, vh in enumerate(rc.virtual_hosts):
            for ri, rt in enumerate(vh.routes):
                w = f"{where}.virtual_hosts[{vi}].routes[{ri}]"
                if not rt.HasField("route"):
                    continue
                spec = rt.route.WhichOneof("cluster_specifier")
                if spec == "cluster":
                    need_cluster(rt.route.cluster, w)
                elif spec == "weighted_clusters":
                    for ci, wc in enumerate(rt.route.weighted_clusters.clusters):
                        need_cluster(wc.name, f"{w}.weighted_clusters[{ci}]")
                        if wc.weight.value < 1:
                            problems.append(f"{w}.weighted_clusters[{ci}]: weight must be >= 1")

    seen_addr: dict[tuple, str] = {}
    names: set[str] = set()
    for r in listeners:
        lst, where = r.message, r.origin
        if lst.name:
            if lst.name in names:
                problems.append(f"{where}: duplicate listener name {lst.name!r}")
            names.add(lst.name)
        if lst.address.HasField("socket_address"):
            sa = lst.address.socket_address
            check_ip(sa.address, where, problems)
            key = (sa.address, sa.port_value)
            if key in seen_addr:
                problems.append(f"{where}: address {sa.address}:{sa.port_value} already used by {seen_addr[key]}")
            seen_addr[key] = where
        matches = set()
        for ci, ch in enumerate(lst.filter_chains):
            m = ch.filter_chain_match.SerializeToString(deterministic=True)
            if m in matches:
                problems.append(f"{where}.filter_chains[{ci}]: same filter_chain_match as an earlier chain")
            matches.add(m)
            for pr in ch.filter_chain_match.prefix_ranges:
                check_ip(pr.address_prefix, f"{where}.filter_chains[{ci}]", problems)
        chains = [(f"filter_chains[{i}]", ch) for i, ch in enumerate(lst.filter_chains)]
        if lst.HasField("default_filter_chain"):
            chains.append(("default_filter_chain", lst.default_filter_chain))
        for cname, ch in chains:
            for fi, f in enumerate(ch.filters):
                w = f"{where}.{cname}.filters[{fi}]"
                if not f.HasField("typed_config"):
                    continue
                tc = x.unpack_any(f.typed_config)
                if tc is None:
                    continue
                full = tc.DESCRIPTOR.full_name
                if full == TCP:
                    spec = tc.WhichOneof("cluster_specifier")
                    if spec == "cluster":
                        need_cluster(tc.cluster, w)
                    elif spec == "weighted_clusters":
                        for wi, wc in enumerate(tc.weighted_clusters.clusters):
                            need_cluster(wc.name, f"{w}.weighted_clusters[{wi}]")
                            if wc.weight < 1:
                                problems.append(f"{w}.weighted_clusters[{wi}]: weight must be >= 1")
                    else:
                        problems.append(f"{w}: tcp_proxy without cluster or weighted_clusters")
                elif full == HCM:
                    spec = tc.WhichOneof("route_specifier")
                    if spec == "rds" and tc.rds.route_config_name not in routes:
                        problems.append(f"{w}: RDS route config {tc.rds.route_config_name!r} is not defined")
                    elif spec == "route_config":
                        check_route_config(tc.route_config, f"{w}.route_config")
    for name, r in routes.items():
        check_route_config(r.message, r.origin)

    for r in clusters:
        cl, where = r.message, r.origin
        dtype = cl.type if cl.WhichOneof("cluster_discovery_type") == "type" else 0
        if dtype == 3:  # EDS
            svc = cl.eds_cluster_config.service_name or cl.name
            if svc not in clas:
                problems.append(f"{where}: EDS cluster {cl.name!r} has no ClusterLoadAssignment {svc!r}")
        if cl.HasField("load_assignment"):
            check_assignment(cl.load_assignment, f"{where}.load_assignment", problems)
            if cl.load_assignment.cluster_name and cl.load_assignment.cluster_name != cl.name:
                problems.append(f"{where}: load_assignment.cluster_name {cl.load_assignment.cluster_name!r} "
                                f"differs from the cluster name")
        if cl.HasField("maglev_lb_config") and cl.maglev_lb_config.HasField("table_size"):
            if not is_prime(cl.maglev_lb_config.table_size.value):
                problems.append(f"{where}: maglev table_size {cl.maglev_lb_config.table_size.value} is not prime")
        if cl.HasField("ring_hash_lb_config"):
            rh = cl.ring_hash_lb_config
            lo = rh.minimum_ring_size.value if rh.HasField("minimum_ring_size") else 1024
            hi = rh.maximum_ring_size.value if rh.HasField("maximum_ring_size") else 8388608
            if lo > hi:
                problems.append(f"{where}: ring_hash minimum_ring_size {lo} > maximum_ring_size {hi}")
    for r in c.resources:
        if r.kind == "endpoint":
            check_assignment(r.message, r.origin, problems)
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", help=f"cases (default: {' '.join(DEFAULT_PATHS)}, from the repo root)")
    args = ap.parse_args(argv)
    x.load_protos()
    paths = args.paths or [os.path.join(ROOT, p) for p in DEFAULT_PATHS]
    passed = failed = 0
    for case, files in cases(paths):
        label = os.path.relpath(case, ROOT) if case.startswith(ROOT) else case
        collected, report = x.Collected(), x.Report()
        problems = []
        kinds = []
        for f in files:
            try:
                kinds.append(parse_strict(f, collected, report))
            except Exception as err:  # noqa: BLE001 - ParseError, ValueError, YAML errors
                problems.append(f"{os.path.basename(f)}: {type(err).__name__}: {err}")
        if not problems:
            problems = check_case(collected)
        if problems:
            failed += 1
            print(f"FAIL {label}")
            for p in problems:
                print(f"     {p}")
        else:
            passed += 1
            print(f"ok   {label} ({', '.join(kinds)}; {x.summary(collected)})")
    print(f"fixtures: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
