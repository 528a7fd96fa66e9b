#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Writes a loader test bundle (bundle format v1) from Tests/loader/fixture/x2b.bpf.c.

The bundle maps SERVICE (default 10.96.0.1:80) to BACKEND_IP:PORT. Until the
compiler emits real bundles this is the loader's test input; it follows
docs/bundle-format.md exactly (manifest.pb, x2b.bpf.o, maps/*.bin, sha256).

  make-fixture-bundle.py OUT --port 8080 [--backend-ip 127.0.0.1]
      [--service 10.96.0.1:80] [--abi-version N] [--broken] [--peer] [--run-id N]
      [--clang PATH] [--http-object same|peer|garbage]
      [--lb-clusters N [--lb-ports P1,P2,...] [--ep-max N] [--tab-max N]]
      [--listener-name NAME]

--peer adds x2b_peer4 (cgroup/getpeername4) so getpeername() shows the service.
--run-id makes the program tags unique to one test run.
--http-object adds x2b_http.bpf.o as the manifest's http_object: the same
object (same), one with an extra program (peer) or bytes that are no ELF
(garbage), for the checks of the variant that is not loaded.
--lb-clusters N builds the ABI 2 data plane that `xds2bpf-loader update`
writes (x2b_clu with two rows per cluster, x2b_cluv, x2b_ep, x2b_lbtab,
x2b_rr): the service goes to cluster 0, whose endpoints are BACKEND_IP with
the --lb-ports (default --port); clusters 1..N-1 have one endpoint each
(--port). x2b_ep and x2b_lbtab get the planner's headroom (the next power of
two >= 2*used + 16) unless --ep-max / --tab-max say otherwise.

Needs clang (XDS2BPF_CLANG or /opt/swift/usr/bin/clang), protoc and the
python protobuf package.
"""
import argparse
import hashlib
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURE = os.path.join(HERE, "fixture")
ABI_DIR = os.path.join(ROOT, "bpf-runtime", "abi")
PROTO_DIR = os.path.join(ROOT, "proto")


def manifest_module(tmp):
    subprocess.run(["protoc", f"--proto_path={PROTO_DIR}", f"--python_out={tmp}",
                    "xds2bpf/manifest.proto"], check=True)
    sys.path.insert(0, os.path.join(tmp, "xds2bpf"))
    import manifest_pb2  # noqa: E402
    return manifest_pb2


def abi_version():
    with open(os.path.join(ABI_DIR, "x2b_abi.h")) as f:
        m = re.search(r"#define\s+X2B_ABI_VERSION\s+(\d+)", f.read())
    return int(m.group(1))


def g_count():
    with open(os.path.join(ABI_DIR, "x2b_abi.h")) as f:
        return int(re.search(r"#define\s+X2B_G_COUNT\s+(\d+)", f.read()).group(1))


def addr_port(s):
    ip, port = s.rsplit(":", 1)
    return ip, int(port)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def pow2(n):
    p = 8
    while p < n:
        p *= 2
    return p


def endpoint(ip, port):
    """struct x2b_endpoint: family, pad, port (network order), weight, addr[16], connects (u64)."""
    return struct.pack("<BB", 4, 0) + struct.pack(">H", port) + struct.pack("<I", 1) \
        + socket.inet_aton(ip) + bytes(12) + bytes(8)  # connects (u64) starts at 0


def cluster_row(cid, levels, lb=0):
    """struct x2b_cluster: lb, nlevels, counter, flags, 4 x (cum_load, first, count, table_first, table_len)."""
    b = struct.pack("<IIII", lb, len(levels), cid, 0)
    for lv in levels + [(0, 0, 0, 0, 0)] * (4 - len(levels)):
        b += struct.pack("<IIIII", *lv)
    return b


def write_lb_images(out, lb, ip):
    """Rows 2*cid (rows 2*cid+1 and x2b_cluv start zeroed); one table slot per endpoint."""
    clu, ep, tab, active = b"", b"", b"", {}
    first = 0
    for cid, ports in enumerate(lb["eps"]):
        clu += struct.pack("<I", 2 * cid) + cluster_row(cid, [(100, first, len(ports), first, len(ports))], lb["lb"])
        for i, port in enumerate(ports):
            ep += struct.pack("<I", first + i) + endpoint(ip, port)
            if lb["lb"] == 2:  # struct x2b_epkey: family, pad, port, addr[16]
                e = endpoint(ip, port)
                active[e[:4] + e[8:24]] = struct.pack("<I", 0)
            tab += struct.pack("<I", first + i) + struct.pack("<II", 0, i)
        first += len(ports)
    lb["nactive"] = len(active)
    for nm, data in (("x2b_clu", clu), ("x2b_ep", ep), ("x2b_lbtab", tab),
                     ("x2b_active", b"".join(k + v for k, v in sorted(active.items())))):
        if not data:
            continue
        with open(os.path.join(out, "maps", f"{nm}.bin"), "wb") as f:
            f.write(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="bundle directory to create (replaced if it exists)")
    ap.add_argument("--port", type=int, required=True, help="backend port")
    ap.add_argument("--backend-ip", default="127.0.0.1")
    ap.add_argument("--service", default="10.96.0.1:80")
    ap.add_argument("--abi-version", type=int, default=None, help="override (for rejection tests)")
    ap.add_argument("--broken", action="store_true", help="a program the verifier rejects")
    ap.add_argument("--peer", action="store_true", help="add a getpeername4 program")
    ap.add_argument("--run-id", type=int, default=0, help="unique program tags per test run")
    ap.add_argument("--clang", default=os.environ.get("XDS2BPF_CLANG", "/opt/swift/usr/bin/clang"))
    ap.add_argument("--http-object", choices=["same", "peer", "garbage"], default=None)
    ap.add_argument("--refused", type=int, default=0, help="manifest refused_fail_closed entries (status shows them)")
    ap.add_argument("--lb-clusters", type=int, default=0)
    ap.add_argument("--lb-ports", default=None)
    ap.add_argument("--ep-max", type=int, default=None)
    ap.add_argument("--tab-max", type=int, default=None)
    ap.add_argument("--lb-policy", type=int, default=0, help="x2b_cluster.lb of every cluster (2: least request)")
    ap.add_argument("--active-max", type=int, default=64, help="max_entries of x2b_active")
    ap.add_argument("--listener-name", default="fixture_listener",
                    help="the manifest's listener name (metrics test: characters to escape)")
    a = ap.parse_args()

    out = os.path.abspath(a.out)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "maps"))

    # 1. the object, with the pinned flags the compiler uses
    shutil.copy(os.path.join(FIXTURE, "x2b.bpf.c"), os.path.join(out, "x2b.bpf.c"))
    shutil.copy(os.path.join(ABI_DIR, "x2b_abi.h"), os.path.join(out, "x2b_abi.h"))
    cflags = ["-target", "bpf", "-O2", "-g", "-Wall", "-Werror", "-fno-ident",
              f"-fdebug-prefix-map={out}=.", "-I/usr/include/x86_64-linux-gnu", f"-I{out}"]
    if a.broken:
        cflags.append("-DFX_BROKEN")
    if a.peer:
        cflags.append("-DFX_PEER")
    cflags.append(f"-DFX_RUN_ID={a.run_id}U")
    lb = None
    if a.lb_clusters:
        ports = [int(p) for p in (a.lb_ports or str(a.port)).split(",")]
        eps = [ports] + [[a.port] for _ in range(1, a.lb_clusters)]
        used = sum(len(e) for e in eps)
        lb = {
            "eps": eps,
            "ncl": pow2(max(a.lb_clusters, 8)),
            "rows": pow2(max(2 * a.lb_clusters, 8)),
            "ep_max": a.ep_max or pow2(2 * used + 16),
            "tab_max": a.tab_max or pow2(2 * used + 16),
            "lb": a.lb_policy,
            "active_max": a.active_max,
        }
        cflags += ["-DFX_LB", f"-DFX_NCLU={lb['ncl']}", f"-DFX_CLU_ROWS={lb['rows']}",
                   f"-DFX_EP_MAX={lb['ep_max']}", f"-DFX_TAB_MAX={lb['tab_max']}",
                   f"-DFX_ACTIVE_MAX={lb['active_max']}"]
    subprocess.run([a.clang] + cflags + ["-c", os.path.join(out, "x2b.bpf.c"),
                    "-o", os.path.join(out, "x2b.bpf.o")], check=True)
    if a.http_object == "same":
        shutil.copy(os.path.join(out, "x2b.bpf.o"), os.path.join(out, "x2b_http.bpf.o"))
    elif a.http_object == "peer":
        subprocess.run([a.clang] + cflags + ["-DFX_PEER", "-c", os.path.join(out, "x2b.bpf.c"),
                        "-o", os.path.join(out, "x2b_http.bpf.o")], check=True)
    elif a.http_object == "garbage":
        with open(os.path.join(out, "x2b_http.bpf.o"), "wb") as f:
            f.write(b"\x7fELF" + bytes(range(256)) * 4)
    clang_version = subprocess.run([a.clang, "--version"], check=True, capture_output=True,
                                   text=True).stdout.splitlines()[0]

    # 2. map images: struct fx_svc_key / fx_svc_val, addresses and ports in network order
    svc_ip, svc_port = addr_port(a.service)
    key = socket.inet_aton(svc_ip) + struct.pack(">H", svc_port) + b"\0\0"
    val = (socket.inet_aton(a.backend_ip) + struct.pack(">H", a.port) + b"\0\0"
           + struct.pack("<II", 0, 0))
    if lb:
        val = val[:8] + struct.pack("<II", 0, 0)  # listener 0, cluster 0
    with open(os.path.join(out, "maps", "x2b_svc.bin"), "wb") as f:
        f.write(key + val)
    if lb:
        write_lb_images(out, lb, a.backend_ip)
    if a.peer:
        with open(os.path.join(out, "maps", "x2b_rev.bin"), "wb") as f:
            f.write(val[:8] + key)
    # struct x2b_action row 0 (the index precedes it in an array image, as for
    # x2b_gstat below): X2B_ACT_CLUSTER (1), cluster 0, listener 0
    with open(os.path.join(out, "maps", "x2b_act.bin"), "wb") as f:
        f.write(struct.pack("<I6I", 0, 1, 0, 0, 0, 0, 0))
    # a per-CPU image: x2b_gstat[family_mismatch] starts at 7 on every CPU
    with open(os.path.join(out, "maps", "x2b_gstat.bin"), "wb") as f:
        f.write(struct.pack("<IQ", 3, 7))

    with tempfile.TemporaryDirectory() as tmp:
        pb = manifest_module(tmp)
        m = pb.Manifest()
        m.format_version = 1
        m.abi_version = abi_version() if a.abi_version is None else a.abi_version
        m.xds2bpf_version = "loader-fixture"
        m.clang_version = clang_version
        m.snapshot_sha256 = hashlib.sha256(
            f"fixture {a.service} -> {a.backend_ip}:{a.port}".encode()).hexdigest()
        m.object = "x2b.bpf.o"
        if a.http_object:
            m.http_object = "x2b_http.bpf.o"
        m.code_sha256 = sha256(os.path.join(out, "x2b.bpf.c"))
        m.needs_http = False
        for i in range(a.refused):
            m.refused_fail_closed.append(f"listeners[\"fixture_listener\"].filter_chains[0].filters[{i}]: fixture refusal {i}")

        files = []
        for dirpath, _, names in os.walk(out):
            for n in names:
                files.append(os.path.relpath(os.path.join(dirpath, n), out))
        for p in sorted(files):
            full = os.path.join(out, p)
            m.files.add(path=p, sha256=sha256(full), size=os.path.getsize(full))

        m.programs.add(name="x2b_connect4", section="cgroup/connect4",
                       attach=pb.CGROUP_INET4_CONNECT, serves="count, then stage 1")
        m.programs.add(name="x2b_rewrite4", section="cgroup/connect4",
                       attach=pb.ATTACH_NONE, serves="service lookup and rewrite")

        m.maps.add(name="x2b_svc", kind=pb.HASH, key_size=8, value_size=16, max_entries=16,
                   image="maps/x2b_svc.bin", entries=1, serves="service -> backend")
        m.maps.add(name="x2b_jmp4", kind=pb.PROG_ARRAY, key_size=4, value_size=4,
                   max_entries=1, serves="stages")
        m.maps.add(name="x2b_gstat", kind=pb.PERCPU_ARRAY, key_size=4, value_size=8,
                   max_entries=g_count(), image="maps/x2b_gstat.bin", entries=1,
                   serves="global counters")
        m.maps.add(name="x2b_astat", kind=pb.PERCPU_ARRAY, key_size=4, value_size=16,
                   max_entries=4, serves="per-action counters")
        m.maps.add(name="x2b_act", kind=pb.ARRAY, key_size=4, value_size=24, max_entries=4,
                   image="maps/x2b_act.bin", entries=1, serves="actions: listener 0 -> cluster 0")
        m.maps.add(name="x2b_cstat", kind=pb.PERCPU_ARRAY, key_size=4, value_size=8,
                   max_entries=4, serves="per-cluster counters")
        if lb:
            for nm, rows, vs, n, serves in (
                    ("x2b_clu", lb["rows"], 16 + 20 * 4, len(lb["eps"]), "cluster rows, two per cluster"),
                    ("x2b_cluv", lb["ncl"], 4, 0, "live row per cluster"),
                    ("x2b_ep", lb["ep_max"], 32, sum(len(e) for e in lb["eps"]), "endpoints"),
                    ("x2b_lbtab", lb["tab_max"], 8, sum(len(e) for e in lb["eps"]), "LB tables"),
                    ("x2b_rr", lb["ncl"], 4, 0, "round-robin positions")):
                m.maps.add(name=nm, kind=pb.ARRAY, key_size=4, value_size=vs, max_entries=rows,
                           image=f"maps/{nm}.bin" if n else "", entries=n, serves=serves)
            m.maps.add(name="x2b_active", kind=pb.HASH, key_size=20, value_size=4,
                       max_entries=lb["active_max"], image="maps/x2b_active.bin" if lb["nactive"] else "",
                       entries=lb["nactive"], serves="active connections per address")
        if a.peer:
            m.programs.add(name="x2b_peer4", section="cgroup/getpeername4",
                           attach=pb.CGROUP_INET4_GETPEERNAME, serves="show the service address")
            m.maps.add(name="x2b_rev", kind=pb.HASH, key_size=8, value_size=8, max_entries=16,
                       image="maps/x2b_rev.bin", entries=1, serves="backend -> service")
        m.tail_calls.add(prog_array="x2b_jmp4", slot=0, program="x2b_rewrite4")
        m.listeners.add(index=0, name=a.listener_name, address=a.service, kind="tcp")
        if lb:
            for i, e in enumerate(lb["eps"]):
                m.clusters.add(index=i, name=f"fx_cluster_{i}", lb_policy="ROUND_ROBIN",
                               endpoints=len(e))
        else:
            m.clusters.add(index=0, name=f"fixture_backend_{a.port}", lb_policy="ROUND_ROBIN",
                           endpoints=1)

        raw = m.SerializeToString()
        with open(os.path.join(out, "manifest.pb"), "wb") as f:
            f.write(raw)
        # the manifest's own digest, in sha256sum -c format (docs/bundle-format.md)
        with open(os.path.join(out, "manifest.sha256"), "w") as f:
            f.write(f"{hashlib.sha256(raw).hexdigest()}  manifest.pb\n")
    print(out)


if __name__ == "__main__":
    main()
