#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Differential test: rows built by the loader on the node vs the compiler's.

  lbrows-diff.py XDS2BPF LBROWS_CHECK [--seed S] [--batches B] [--clusters K]

Each batch is a random snapshot of K STRICT_DNS clusters whose endpoints are host
names (every LB policy, locality weights or not, overprovisioning factors,
priorities, health statuses, endpoint and locality weights, some summing past the
longest round-robin schedule), and a random answer for every name (1-4 IPv4 and
IPv6 addresses). The snapshot is compiled twice: without --resolve, whose manifest
(DnsCluster) plus the answers go to LBROWS_CHECK (bpf-runtime/loader/lbrows.c, what
the loader builds after its lookups), and with --resolve NAME=IP,... giving those
answers, whose map images hold the compiler's rows. Every cluster's rows (levels,
endpoint records, LB-table slots) must be equal byte for byte. Needs protoc and
the python protobuf package (the manifest). Prints the seed and the counts.
"""
import argparse
import os
import random
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "..", "proto")
LB = {"round_robin": 0, "random": 1, "least_request": 2, "maglev": 3, "ring_hash": 4}
POLICIES = ["ROUND_ROBIN", "RANDOM", "LEAST_REQUEST", "MAGLEV", "RING_HASH"]
HEALTH = ["HEALTHY"] * 6 + [None] * 3 + ["DEGRADED", "UNHEALTHY", "DRAINING", "TIMEOUT"]
LEVEL = struct.Struct("<5I")  # struct x2b_level
CLUSTER = struct.Struct("<4I")  # struct x2b_cluster before its levels


def manifest_module(tmp):
    subprocess.run(["protoc", f"--proto_path={PROTO_DIR}", f"--python_out={tmp}", "xds2bpf/manifest.proto"], check=True)
    sys.path.insert(0, os.path.join(tmp, "xds2bpf"))
    import manifest_pb2  # noqa: E402
    return manifest_pb2


def random_cluster(rng, c):
    """A cluster's YAML and its host names."""
    policy = rng.choice(POLICIES)
    lines = [f"  - name: c{c}", "    type: STRICT_DNS", f"    lb_policy: {policy}"]
    if policy == "MAGLEV":
        lines.append(f"    maglev_lb_config: {{table_size: {rng.choice([7, 13, 101, 251])}}}")
    if policy == "RING_HASH":
        lo = rng.choice([4, 16, 64])
        lines.append(f"    ring_hash_lb_config: {{minimum_ring_size: {lo}, maximum_ring_size: {lo * rng.choice([1, 4, 16])}}}")
    if rng.random() < 0.5:
        lines.append("    common_lb_config: {locality_weighted_lb_config: {}}")
    lines += ["    load_assignment:", f"      cluster_name: c{c}"]
    if rng.random() < 0.4:
        lines.append(f"      policy: {{overprovisioning_factor: {rng.choice([50, 100, 120, 200])}}}")
    lines.append("      endpoints:")
    names = []
    heavy = rng.random() < 0.2  # weights summing past 4096: a scaled schedule
    for prio in range(rng.randint(1, 4)):
        for loc in range(rng.randint(1, 3)):
            lines.append(f"      - locality: {{zone: z{prio}-{loc}}}")
            if rng.random() < 0.8:
                lines.append(f"        load_balancing_weight: {rng.randint(1, 5)}")
            lines.append(f"        priority: {prio}")
            lines.append("        lb_endpoints:")
            for e in range(rng.randint(1, 3)):
                name = f"h{c}-{prio}-{loc}-{e}.test"
                names.append(name)
                weight = rng.randint(1000, 5000) if heavy else rng.randint(1, 10)
                ep = f"        - endpoint: {{address: {{socket_address: {{address: {name}, port_value: {rng.randint(1, 65535)}}}}}}}"
                lines += [ep, f"          load_balancing_weight: {weight}"]
                health = rng.choice(HEALTH)
                if health:
                    lines.append(f"          health_status: {health}")
    return "\n".join(lines), names


def random_addresses(rng, n):
    out = []
    for _ in range(rng.randint(1, 4)):
        n += 1
        if rng.random() < 0.3:
            out.append(f"fd00::{n:x}:{rng.randint(1, 0xffff):x}")
        else:
            out.append(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
    return out, n


def snapshot(clusters):
    out = ["static_resources:", "  listeners:"]
    for c in range(len(clusters)):
        out += [f"  - name: l{c}",
                f"    address: {{socket_address: {{address: 10.96.{c >> 8}.{c & 255}, port_value: 80}}}}",
                "    filter_chains:", "    - filters:", "      - name: envoy.filters.network.tcp_proxy",
                "        typed_config:",
                '          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                f"          stat_prefix: l{c}", f"          cluster: c{c}"]
    out.append("  clusters:")
    out += clusters
    return "\n".join(out) + "\n"


def compile_bundle(xds2bpf, snap, out, resolve):
    args = [xds2bpf, "compile", "--quiet", "--cache-dir", "none", snap, "-o", out]
    for name, addrs in sorted(resolve.items()):
        args += ["--resolve", f"{name}={','.join(addrs)}"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"compile failed ({'offline' if resolve else 'node'}):\n{r.stderr}\nsnapshot: {snap}")


def read_manifest(pb, bundle):
    m = pb.Manifest()
    with open(os.path.join(bundle, "manifest.pb"), "rb") as f:
        m.ParseFromString(f.read())
    return m


def image(bundle, m, name):
    """A map image as {key: value bytes} (u32 keys)."""
    spec = next(x for x in m.maps if x.name == name)
    rec = spec.key_size + spec.value_size
    with open(os.path.join(bundle, spec.image), "rb") as f:
        data = f.read()
    return {struct.unpack_from("<I", data, i)[0]: data[i + spec.key_size:i + rec] for i in range(0, len(data), rec)}


def compiled_rows(bundle, m):
    """Every cluster's rows as the compiler wrote them (row 2*cid, live before any update)."""
    clu, ep, tab = (image(bundle, m, n) for n in ("x2b_clu", "x2b_ep", "x2b_lbtab"))
    out = {}
    for c in m.clusters:
        row = clu[2 * c.index]
        nlevels = CLUSTER.unpack_from(row)[1]
        text = [f"cluster {c.name}: levels {nlevels}"]
        for li in range(nlevels):
            cum, first, count, tfirst, tlen = LEVEL.unpack_from(row, CLUSTER.size + li * LEVEL.size)
            text.append(f"  level {li}: cum_load {cum} endpoints {count} slots {tlen}")
            text += [f"    ep {ep[first + i].hex()}" for i in range(count)]
            text += [f"    slot {tab[tfirst + i].hex()}" for i in range(tlen)]
        out[c.name] = "\n".join(text)
    return out


def node_input(m, answers):
    """The loader's view: the node manifest's DnsClusters with these answers."""
    lines = []
    for d in m.dns_clusters:
        lb = LB[m.clusters[d.cluster].lb_policy]
        lines.append(f"cluster {d.name} {lb} {int(d.locality_weighted)} {d.overprovisioning_factor or 140} "
                     f"{d.maglev_table_size} {d.ring_minimum_size} {d.ring_maximum_size}")
        lines += [f"loc {loc.priority} {loc.weight}" for loc in d.localities]
        for h in d.hosts:
            for a in answers.get(h.host, [h.host]):
                lines.append(f"host {h.locality} {int(not h.unroutable)} {h.weight} {h.port} {a}")
        lines.append("end")
    return "\n".join(lines) + "\n"


def node_rows(check, text):
    r = subprocess.run([check], input=text, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"lbrows-check failed: {r.stderr}")
    out, cur = {}, None
    for line in r.stdout.splitlines():
        if line.startswith("cluster "):
            cur = line.split()[1].rstrip(":")
            out[cur] = []
        out[cur].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("xds2bpf")
    ap.add_argument("check")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--clusters", type=int, default=40)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    checked = tables = slots = 0
    with tempfile.TemporaryDirectory() as tmp:
        pb = manifest_module(tmp)
        for b in range(args.batches):
            clusters, answers, n = [], {}, 0
            for c in range(args.clusters):
                yaml, names = random_cluster(rng, c)
                clusters.append(yaml)
                for name in names:
                    answers[name], n = random_addresses(rng, n)
            snap = os.path.join(tmp, f"batch{b}.yaml")
            with open(snap, "w") as f:
                f.write(snapshot(clusters))
            compile_bundle(args.xds2bpf, snap, os.path.join(tmp, f"node{b}"), {})
            compile_bundle(args.xds2bpf, snap, os.path.join(tmp, f"off{b}"), answers)
            nm = read_manifest(pb, os.path.join(tmp, f"node{b}"))
            om = read_manifest(pb, os.path.join(tmp, f"off{b}"))
            if len(nm.dns_clusters) != args.clusters or om.dns_clusters:
                sys.exit(f"batch {b}: {len(nm.dns_clusters)} DNS clusters without --resolve, "
                         f"{len(om.dns_clusters)} with it (expected {args.clusters} and 0)")
            node = node_rows(args.check, node_input(nm, answers))
            offline = compiled_rows(os.path.join(tmp, f"off{b}"), om)
            for name, want in sorted(offline.items()):
                if node.get(name) != want:
                    print(f"seed {args.seed} batch {b} cluster {name}: rows differ\n--- compiler\n{want}\n"
                          f"--- loader\n{node.get(name)}", file=sys.stderr)
                    yaml = clusters[int(name[1:])]
                    sys.exit(f"{yaml}\nanswers: { {k: v for k, v in answers.items() if k.startswith(f'h{name[1:]}-')} }")
                checked += 1
                tables += " slot " in want
                slots += want.count(" slot ")
    print(f"lbrows-diff: seed {args.seed}: {checked} clusters, rows equal byte for byte "
          f"({tables} with LB tables, {slots} slots)")


if __name__ == "__main__":
    main()
