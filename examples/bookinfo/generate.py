#!/usr/bin/env python3
"""Writes examples/bookinfo/bookinfo.json: the config dump of the productpage-v1 sidecar in an
Istio mesh running Bookinfo plus two TCP databases, in the shape `istioctl proxy-config all -o
json` prints (admin ConfigDump, snake_case, one-space indent). Deterministic: no clock, no
randomness, fixed timestamps.

Then, unless --json-only, converts it with scripts/make-pb.py's code into
  bookinfo.pb      binary envoy.admin.v3.ConfigDump
  bookinfo.xds.pb  length-delimited stream of DiscoveryResponses (LDS, RDS, CDS, EDS)
(needs the pinned Python packages: pip install -r scripts/requirements.txt).

  python3 examples/bookinfo/generate.py           # rewrite the three files
  python3 examples/bookinfo/generate.py --check   # exit 1 if a committed file is stale

See README.md beside this file for the mesh and which address routes where.
"""

from __future__ import annotations

import argparse
import io
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import xdslib as x  # noqa: E402

VERSION = "2024-05-14T09:12:31Z/27"
UPDATED = "2024-05-14T09:12:33.118Z"
NS = "default"

# Nodes (pod CIDR 10.244.<n>.0/24) and their topology labels. The sidecar dumped here is
# productpage-v1's, on node-1 (us-east1 / us-east1-b).
NODES = {
    0: ("us-east1", "us-east1-b"),
    1: ("us-east1", "us-east1-b"),
    2: ("us-east1", "us-east1-c"),
    3: ("us-east1", "us-east1-d"),
}
PROXY_NODE = 1

# Services: (name, namespace, VIP, port, protocol)
SERVICES = [
    ("kube-dns", "kube-system", "10.96.0.10", 53, "tcp"),
    ("productpage", NS, "10.96.0.11", 9080, "http"),
    ("reviews", NS, "10.96.0.12", 9080, "http"),
    ("ratings", NS, "10.96.0.13", 9080, "http"),
    ("details", NS, "10.96.0.14", 9080, "http"),
    ("mongodb", NS, "10.96.0.20", 27017, "tcp"),
    ("mysqldb", NS, "10.96.0.21", 3306, "tcp"),
]

# Pods: (service, app label / workload, version, ip, node, health)
PODS = [
    ("kube-dns", "coredns", "", "10.244.0.2", 0, "HEALTHY"),
    ("kube-dns", "coredns", "", "10.244.0.3", 0, "HEALTHY"),
    ("productpage", "productpage-v1", "v1", "10.244.1.5", 1, "HEALTHY"),
    ("details", "details-v1", "v1", "10.244.1.6", 1, "HEALTHY"),
    ("details", "details-v1", "v1", "10.244.2.7", 2, "HEALTHY"),
    ("ratings", "ratings-v1", "v1", "10.244.1.8", 1, "HEALTHY"),
    ("ratings", "ratings-v1", "v1", "10.244.2.9", 2, "HEALTHY"),
    ("ratings", "ratings-v1", "v1", "10.244.3.10", 3, "UNHEALTHY"),  # failing readiness probe
    ("reviews", "reviews-v1", "v1", "10.244.1.11", 1, "HEALTHY"),
    ("reviews", "reviews-v1", "v1", "10.244.2.12", 2, "HEALTHY"),
    ("reviews", "reviews-v2", "v2", "10.244.2.13", 2, "HEALTHY"),
    ("reviews", "reviews-v2", "v2", "10.244.3.14", 3, "HEALTHY"),
    ("reviews", "reviews-v3", "v3", "10.244.3.15", 3, "HEALTHY"),
    ("reviews", "reviews-v3", "v3", "10.244.1.16", 1, "HEALTHY"),
    ("mongodb", "mongodb-v1", "v1", "10.244.2.20", 2, "HEALTHY"),
    ("mongodb", "mongodb-v1", "v1", "10.244.3.21", 3, "HEALTHY"),
    ("mysqldb", "mysqldb-v1", "v1", "10.244.1.22", 1, "HEALTHY"),
    ("mysqldb", "mysqldb-v1", "v1", "10.244.2.23", 2, "HEALTHY"),
    ("mysqldb", "mysqldb-v2", "v2", "10.244.3.24", 3, "HEALTHY"),
]

# DestinationRules, as istiod turns them into cluster settings.
SUBSETS = {"reviews": ["v1", "v2", "v3"], "mysqldb": ["v1", "v2"]}
LB = {
    "ratings": ("LEAST_REQUEST", None),
    "mongodb": ("RING_HASH", {"ring_hash_lb_config": {"minimum_ring_size": "1024"}}),
    "mysqldb": ("MAGLEV", {"maglev_lb_config": {"table_size": "65537"}}),
}
# reviews has outlierDetection, so istiod enables locality failover: endpoints get priorities
# by distance from the proxy (same zone 0, same region 1, ...; made contiguous).
OUTLIER = {"reviews": {"consecutive_5xx": 5, "interval": "10s", "base_ejection_time": "30s",
                       "max_ejection_percent": 100, "enforcing_consecutive_5xx": 100,
                       "enforcing_success_rate": 0}}
DR_HOSTS = set(SUBSETS) | set(LB) | set(OUTLIER)

VS_CONFIG = "/apis/networking.istio.io/v1alpha3/namespaces/default/virtual-service/{}"


def host(name: str, ns: str) -> str:
    return f"{name}.{ns}.svc.cluster.local"


def cluster_name(name: str, ns: str, port: int, subset: str = "") -> str:
    return f"outbound|{port}|{subset}|{host(name, ns)}"


def service(name: str):
    return next(s for s in SERVICES if s[0] == name)


def pods_of(name: str, port: int, version: str = "", failover: bool = False) -> list[x.Pod]:
    out = []
    for svc, app, ver, ip, node, health in PODS:
        if svc != name or (version and ver != version):
            continue
        region, zone = NODES[node]
        wl_ns = service(svc)[1]
        out.append(x.Pod(ip=ip, port=port, workload=f"{app};{wl_ns};{svc};{ver};Kubernetes",
                         region=region, zone=zone, health=health))
    if failover:
        pregion, pzone = NODES[PROXY_NODE]
        raw = [0 if (p.region, p.zone) == (pregion, pzone) else 1 if p.region == pregion else 2 for p in out]
        levels = sorted(set(raw))
        for p, r in zip(out, raw):
            p.priority = levels.index(r)
    return out


def build() -> dict:
    listeners, clusters, endpoints, vhosts = [], [], [], []

    for name, ns, vip, port, proto in SERVICES:
        lb_policy, lb_config = LB.get(name, (None, None))
        dr = name in DR_HOSTS
        failover = name in OUTLIER
        for subset in [""] + SUBSETS.get(name, []):
            cname = cluster_name(name, ns, port, subset)
            clusters.append(x.eds_cluster(cname, name, ns, port, subset=subset or None, lb_policy=lb_policy,
                                          lb_config=lb_config, outlier=OUTLIER.get(name), dr=dr,
                                          tls=ns == NS))
            endpoints.append(x.cluster_load_assignment(cname, pods_of(name, port, subset, failover),
                                                       tls=ns == NS))
        if proto == "tcp":
            h = host(name, ns)
            hash_ip = lb_policy in ("RING_HASH", "MAGLEV")
            if name == "mysqldb":  # VirtualService: 80 % v1, 20 % v2
                f = x.tcp_proxy_filter(h, weighted=[(cluster_name(name, ns, port, "v1"), 80),
                                                    (cluster_name(name, ns, port, "v2"), 20)],
                                       hash_source_ip=hash_ip)
            else:
                f = x.tcp_proxy_filter(cluster_name(name, ns, port), cluster_name(name, ns, port),
                                       hash_source_ip=hash_ip)
            listeners.append(x.outbound_tcp_listener(vip, port, f))
        else:
            h = host(name, ns)
            if name == "reviews":
                routes = [
                    x.http_route(h, port, cluster=cluster_name(name, ns, port, "v2"), name="jason-v2",
                                 config=VS_CONFIG.format("reviews"),
                                 match={"prefix": "/", "case_sensitive": True, "headers": [
                                     {"name": "end-user", "string_match": {"exact": "jason"}}]}),
                    x.http_route(h, port, name="weighted", config=VS_CONFIG.format("reviews"),
                                 weighted=[(cluster_name(name, ns, port, "v1"), 50),
                                           (cluster_name(name, ns, port, "v2"), 30),
                                           (cluster_name(name, ns, port, "v3"), 20)]),
                ]
            else:
                routes = [x.http_route(h, port, cluster=cluster_name(name, ns, port))]
            vhosts.append(x.virtual_host(name, ns, vip, port, routes))

    vhosts.sort(key=lambda v: v["name"])
    vhosts.append(x.allow_any_virtual_host())
    routes = [x.route_configuration("9080", vhosts)]

    # Outbound HTTP on 9080, per-VIP TCP listeners sorted like istiod, then the virtual ones.
    listeners.sort(key=lambda l: l["name"])
    listeners.append(x.outbound_http_listener(9080, "9080"))
    listeners.append(x.virtual_outbound_listener())
    listeners.append(virtual_inbound_listener())

    # Inbound cluster for this pod's own port, the passthrough/blackhole clusters.
    clusters.append(inbound_cluster())
    clusters += x.passthrough_clusters()
    for c in clusters[-4:]:
        endpoints.append({"@type": x.T_CLA, "cluster_name": c["name"], "policy": {"overprovisioning_factor": 140}})

    return x.istio_config_dump(
        version=VERSION, updated=UPDATED,
        static_listeners=static_listeners(), listeners=listeners,
        static_clusters=static_clusters(), clusters=clusters, routes=routes,
        static_endpoints=[{"@type": x.T_CLA, **c["load_assignment"], "policy": {"overprovisioning_factor": 140}}
                          for c in static_clusters()],
        endpoints=endpoints)


def virtual_inbound_listener() -> dict:
    inbound_route = {
        "name": "inbound|9080||",
        "virtual_hosts": [{"name": "inbound|http|9080", "domains": ["*"], "routes": [{
            "match": {"prefix": "/"},
            "route": {"cluster": "inbound|9080||", "timeout": "0s",
                      "max_stream_duration": {"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"}},
            "decorator": {"operation": "productpage.default.svc.cluster.local:9080/*"},
            "name": "default"}]}],
        "validate_clusters": False,
    }
    authn = {"name": "istio_authn", "typed_config": {"@type": x.TYPE_PREFIX + "udpa.type.v1.TypedStruct",
                                                     "type_url": "type.googleapis.com/io.istio.network.authn.Config"}}
    hcm = x.http_connection_manager("inbound_0.0.0.0_9080", route_config=inbound_route, http_filters=[
        {"name": "istio.metadata_exchange", "typed_config": {
            "@type": x.TYPE_PREFIX + "envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {"vm_config": {"runtime": "envoy.wasm.runtime.null",
                                     "code": {"local": {"inline_string": "envoy.wasm.metadata_exchange"}}},
                       "configuration": {"@type": x.T_METADATA_EXCHANGE}}}},
        {"name": "envoy.filters.http.fault",
         "typed_config": {"@type": x.TYPE_PREFIX + "envoy.extensions.filters.http.fault.v3.HTTPFault"}},
        {"name": "envoy.filters.http.cors",
         "typed_config": {"@type": x.TYPE_PREFIX + "envoy.extensions.filters.http.cors.v3.Cors"}},
        x.istio_stats_filter(inbound=True),
        {"name": "envoy.filters.http.router", "typed_config": {"@type": x.T_ROUTER}},
    ])
    hcm["typed_config"]["forward_client_cert_details"] = "APPEND_FORWARD"
    hcm["typed_config"]["set_current_client_cert_details"] = {"subject": True, "dns": True, "uri": True}
    return {
        "@type": x.T_LISTENER,
        "name": "virtualInbound",
        "address": x.sock("0.0.0.0", 15006),
        "filter_chains": [
            {"filter_chain_match": {"destination_port": 15006},
             "filters": [x.metadata_exchange_filter(), x.istio_stats_filter(inbound=True),
                         x.tcp_proxy_filter("BlackHoleCluster", "BlackHoleCluster")],
             "name": "virtualInbound-blackhole"},
            {"filter_chain_match": {"destination_port": 9080, "transport_protocol": "raw_buffer"},
             "filters": [authn, x.metadata_exchange_filter(), hcm],
             "name": "0.0.0.0_9080"},
            {"filter_chain_match": {"prefix_ranges": [{"address_prefix": "0.0.0.0", "prefix_len": 0}],
                                    "transport_protocol": "raw_buffer"},
             "filters": [authn, x.metadata_exchange_filter(), x.istio_stats_filter(inbound=True),
                         x.tcp_proxy_filter("InboundPassthroughClusterIpv4", "InboundPassthroughClusterIpv4")],
             "name": "virtualInbound"},
        ],
        "listener_filters": [
            x.listener_filter("original_dst"),
            x.listener_filter("tls_inspector") | {"filter_disabled": {"destination_port_range": {"start": 15006, "end": 15007}}},
            x.listener_filter("http_inspector") | {"filter_disabled": {"or_match": {"rules": [
                {"destination_port_range": {"start": 9080, "end": 9081}},
                {"destination_port_range": {"start": 15006, "end": 15007}}]}}},
        ],
        "listener_filters_timeout": "0s",
        "traffic_direction": "INBOUND",
        "continue_on_listener_filters_timeout": True,
    }


def inbound_cluster() -> dict:
    return {"@type": x.T_CLUSTER, "name": "inbound|9080||", "type": "ORIGINAL_DST", "connect_timeout": "10s",
            "lb_policy": "CLUSTER_PROVIDED", "circuit_breakers": x.circuit_breakers(), "cleanup_interval": "60s",
            "upstream_bind_config": {"source_address": {"address": "127.0.0.6", "port_value": 0}},
            "metadata": {"filter_metadata": {"istio": {"services": [
                {"host": "productpage.default.svc.cluster.local", "name": "productpage", "namespace": NS}]}}}}


def static_listeners() -> list[dict]:
    """Bootstrap listeners of istio-proxy: Prometheus stats (15090) and readiness (15021)."""
    def admin_listener(port: int, stat: str, prefix: str, cluster: str) -> dict:
        hcm = {"@type": x.T_HCM, "stat_prefix": stat,
               "route_config": {"virtual_hosts": [{"name": "backend", "domains": ["*"], "routes": [
                   {"match": {"prefix": prefix}, "route": {"cluster": cluster}}]}]},
               "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": x.T_ROUTER}}]}
        return {"@type": x.T_LISTENER, "address": x.sock("0.0.0.0", port), "filter_chains": [{"filters": [
            {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}]}
    return [admin_listener(15090, "stats", "/stats/prometheus", "prometheus_stats"),
            admin_listener(15021, "agent", "/healthz/ready", "agent")]


def static_clusters() -> list[dict]:
    def static(name: str, port: int) -> dict:
        return {"@type": x.T_CLUSTER, "name": name, "type": "STATIC", "connect_timeout": "0.250s",
                "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": x.sock("127.0.0.1", port)}}]}]}}

    def pipe(name: str, path: str) -> dict:
        return {"@type": x.T_CLUSTER, "name": name, "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"pipe": {"path": path}}}}]}]},
                "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": x.TYPE_PREFIX + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}}}}}
    return [static("prometheus_stats", 15000), static("agent", 15020),
            pipe("sds-grpc", "./var/run/secrets/workload-spiffe-uds/socket"),
            pipe("xds-grpc", "./etc/istio/proxy/XDS")]


def render_json(doc: dict) -> bytes:
    buf = io.StringIO()
    x.dump_json(doc, buf)
    return buf.getvalue().encode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 if stale")
    ap.add_argument("--json-only", action="store_true", help="only bookinfo.json (no protobuf packages needed)")
    args = ap.parse_args()

    outputs = {"bookinfo.json": render_json(build())}
    if not args.json_only:
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        import importlib.util

        spec = importlib.util.spec_from_file_location("make_pb", os.path.join(ROOT, "scripts", "make-pb.py"))
        make_pb = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(make_pb)
        tmp = os.path.join(HERE, ".bookinfo.json.tmp")
        with open(tmp, "wb") as fh:
            fh.write(outputs["bookinfo.json"])
        try:
            outputs["bookinfo.pb"], _ = make_pb.convert([tmp], "config-dump")
            outputs["bookinfo.xds.pb"], _ = make_pb.convert([tmp], "discovery-stream")
        finally:
            os.unlink(tmp)

    stale = []
    for name, data in outputs.items():
        path = os.path.join(HERE, name)
        old = open(path, "rb").read() if os.path.exists(path) else None
        if old == data:
            continue
        if args.check:
            stale.append(name)
        else:
            with open(path, "wb") as fh:
                fh.write(data)
            print(f"wrote examples/bookinfo/{name} ({len(data)} bytes)")
    if stale:
        print("stale: " + ", ".join(stale) + " (run python3 examples/bookinfo/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
