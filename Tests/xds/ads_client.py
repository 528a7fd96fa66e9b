#!/usr/bin/env python3
"""A tiny ADS client (Envoy-like) for Tests/xds/selftest.sh.

Subscribes LDS and CDS by wildcard, then RDS for the route configuration names the listeners'
HTTP connection managers name and EDS for the EDS clusters' service names; ACKs what it can
decode and NACKs (error_detail) a response with a resource it cannot decode or whose type URL is
not the response's. Stops when every type has been received and answered (or after --updates
more responses) and prints one JSON object: resource counts per type, versions, ACK/NACK counts.

  .venv/bin/python Tests/xds/ads_client.py --port P [--delta] [--tls-ca ca.pem] [--updates N]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts"))
import xdslib  # noqa: E402

import grpc  # noqa: E402

P = xdslib.TYPE_PREFIX
LDS, RDS, CDS, EDS = (P + xdslib.LISTENER, P + xdslib.ROUTE, P + xdslib.CLUSTER, P + xdslib.ENDPOINT)
SHORT = {LDS: "listeners", RDS: "routes", CDS: "clusters", EDS: "endpoints"}
HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


def decode(url, a):
    """(message, error)"""
    if a.type_url != url:
        return None, f"resource type {a.type_url} in a {url} response"
    try:
        m = xdslib.new_message(url[len(P):])
        m.ParseFromString(a.value)
        return m, None
    except Exception as err:  # noqa: BLE001
        return None, f"cannot decode {url}: {err}"


def rds_names(listeners) -> set[str]:
    out = set()
    for l in listeners:
        for fc in list(l.filter_chains) + ([l.default_filter_chain] if l.HasField("default_filter_chain") else []):
            for f in fc.filters:
                if f.typed_config.type_url == P + HCM:
                    h = xdslib.unpack_any(f.typed_config)
                    if h is not None and h.HasField("rds"):
                        out.add(h.rds.route_config_name)
    return out


def eds_names(clusters) -> set[str]:
    return {c.eds_cluster_config.service_name or c.name for c in clusters
            if c.WhichOneof("cluster_discovery_type") == "type" and c.type == 3}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delta", action="store_true")
    ap.add_argument("--tls-ca")
    ap.add_argument("--node", default="ads-client")
    ap.add_argument("--updates", type=int, default=0, help="responses to wait for after the initial fetch")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--synced-file", help="created when the initial fetch is complete (before --updates)")
    ap.add_argument("--ack-only", action="store_true",
                    help="ACK endpoint responses without decoding them (a transport baseline for benchmarks)")
    args = ap.parse_args()
    xdslib.load_protos()
    from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2 as d

    target = f"localhost:{args.port}" if args.tls_ca else f"127.0.0.1:{args.port}"
    # no cap on a response's size: a state-of-the-world push at 10k services is ~12 MB (gRPC's default is 4 MB)
    opts = [("grpc.max_receive_message_length", -1)]
    if args.tls_ca:
        ch = grpc.secure_channel(target, grpc.ssl_channel_credentials(open(args.tls_ca, "rb").read()), options=opts)
    else:
        ch = grpc.insecure_channel(target, options=opts)
    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(ch)
    out: queue.Queue = queue.Queue()
    sent_node = [False]

    def node(req):
        if not sent_node[0]:
            req.node.id = args.node
            req.node.cluster = "xds2bpf-test"
            sent_node[0] = True
        return req

    held: dict[str, dict] = {u: {} for u in SHORT}  # url -> name -> message
    versions: dict[str, str] = {}
    acks = nacks = responses = 0
    subscribed = {RDS: set(), EDS: set()}
    done_initial = set()

    if args.delta:
        out.put(node(d.DeltaDiscoveryRequest(type_url=CDS)))
        out.put(d.DeltaDiscoveryRequest(type_url=LDS))
        call = stub.DeltaAggregatedResources(iter(out.get, None), timeout=args.timeout)
    else:
        out.put(node(d.DiscoveryRequest(type_url=CDS)))
        out.put(d.DiscoveryRequest(type_url=LDS))
        call = stub.StreamAggregatedResources(iter(out.get, None), timeout=args.timeout)

    def follow(url):
        """Subscribe RDS/EDS names that the listeners/clusters now need."""
        if url == LDS:
            want, dep = rds_names(held[LDS].values()), RDS
        elif url == CDS:
            want, dep = eds_names(held[CDS].values()), EDS
        else:
            return
        if want == subscribed[dep] and dep in versions:
            return
        add, rem = want - subscribed[dep], subscribed[dep] - want
        subscribed[dep] = set(want)
        if args.delta:
            if add or rem or dep not in versions:
                out.put(d.DeltaDiscoveryRequest(type_url=dep, resource_names_subscribe=sorted(add),
                                                resource_names_unsubscribe=sorted(rem)))
        else:
            out.put(d.DiscoveryRequest(type_url=dep, resource_names=sorted(want),
                                       version_info=versions.get(dep, ""), response_nonce=nonces.get(dep, "")))

    nonces: dict[str, str] = {}
    extra = args.updates
    try:
        for resp in call:
            responses += 1
            url = resp.type_url
            errs = []
            decoded = {}
            items = ([(r.name, r.resource) for r in resp.resources] if args.delta
                     else [(None, a) for a in resp.resources])
            if args.ack_only and url == EDS and url in versions:
                items = []  # after the first: the response in hand is enough to ACK
            for name, a in items:
                m, e = decode(url, a)
                if e:
                    errs.append(e)
                    continue
                key = name or (m.cluster_name if url == EDS else m.name)
                decoded[key] = m
            if errs:
                nacks += 1
                if args.delta:
                    out.put(d.DeltaDiscoveryRequest(type_url=url, response_nonce=resp.nonce,
                                                    error_detail={"code": 3, "message": "; ".join(errs)}))
                else:
                    out.put(d.DiscoveryRequest(type_url=url, response_nonce=resp.nonce,
                                               version_info=versions.get(url, ""),
                                               resource_names=sorted(subscribed.get(url, [])),
                                               error_detail={"code": 3, "message": "; ".join(errs)}))
            else:
                acks += 1
                if args.delta:
                    held[url].update(decoded)
                    for n in resp.removed_resources:
                        held[url].pop(n, None)
                    versions[url] = resp.system_version_info
                    out.put(d.DeltaDiscoveryRequest(type_url=url, response_nonce=resp.nonce))
                else:
                    if decoded or not args.ack_only:
                        held[url] = decoded
                    versions[url] = resp.version_info
                    nonces[url] = resp.nonce
                    out.put(d.DiscoveryRequest(type_url=url, response_nonce=resp.nonce,
                                               version_info=resp.version_info,
                                               resource_names=sorted(subscribed.get(url, []))))
                nonces[url] = resp.nonce
                follow(url)
            first = url not in done_initial
            done_initial.add(url)
            need = {LDS, CDS} | ({RDS} if subscribed[RDS] else set()) | ({EDS} if subscribed[EDS] else set())
            if not first and done_initial >= need:
                extra -= 1
            if done_initial >= need and args.synced_file and not os.path.exists(args.synced_file):
                open(args.synced_file, "w").close()
            if done_initial >= need and extra <= 0:
                break
    except grpc.RpcError as err:
        print(json.dumps({"error": f"{err.code()}: {err.details()}"}), flush=True)
        return 1
    finally:
        out.put(None)  # half-close: the last ACKs reach the server, which then ends the stream
    try:
        for _ in call:
            pass
    except grpc.RpcError:
        pass
    print(json.dumps({"mode": "delta" if args.delta else "sotw",
                      "counts": {SHORT[u]: len(h) for u, h in held.items()},
                      "versions": {SHORT[u]: v for u, v in versions.items()},
                      "responses": responses, "acks": acks, "nacks": nacks}, sort_keys=True), flush=True)
    ch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
