#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Writes EndpointDelta files (proto/xds2bpf/manifest.proto) for `xds2bpf-loader update` tests.

  make-delta.py BUNDLE OUT --set CID=PORT[,PORT...][/PORT,...] [--set ...] [options]
  make-delta.py BUNDLE OUT --all N=PORT          every cluster 0..N-1 gets one endpoint

BUNDLE is the loaded bundle directory (its manifest gives code_sha256 and the
cluster names). Ports are endpoints on --backend-ip (default 127.0.0.1); '/'
separates priority levels (cumulative loads split evenly, the last 100); an
empty port list ('CID=') gives a cluster without levels (connects refused).
Each level's table is one slot per endpoint, in order (round robin).
Options for the rejection tests: --code-sha256 HEX, --abi-version N,
--format-version N, --name CID=NAME, --id-offset CID=N (the delta names id
CID+N), --dup (the first cluster twice), --bad-record-size, --bad-slot,
--family N, --bad-load.
"""
import argparse
import hashlib
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def pb_module(tmp):
    subprocess.run(["protoc", f"--proto_path={os.path.join(ROOT, 'proto')}", f"--python_out={tmp}",
                    "xds2bpf/manifest.proto"], check=True)
    sys.path.insert(0, os.path.join(tmp, "xds2bpf"))
    import manifest_pb2  # noqa: E402
    return manifest_pb2


def abi_version():
    with open(os.path.join(ROOT, "bpf-runtime", "abi", "x2b_abi.h")) as f:
        return int(re.search(r"#define\s+X2B_ABI_VERSION\s+(\d+)", f.read()).group(1))


def endpoint(ip, port, family=4):
    return struct.pack("<BB", family, 0) + struct.pack(">H", port) + struct.pack("<I", 1) \
        + socket.inet_aton(ip) + bytes(12) + bytes(8)  # connects (u64) starts at 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--all", default=None)
    ap.add_argument("--backend-ip", default="127.0.0.1")
    ap.add_argument("--snapshot", default="delta", help="text hashed into snapshot_sha256")
    ap.add_argument("--code-sha256", default=None)
    ap.add_argument("--abi-version", type=int, default=None)
    ap.add_argument("--format-version", type=int, default=1)
    ap.add_argument("--name", action="append", default=[])
    ap.add_argument("--id-offset", action="append", default=[])
    ap.add_argument("--dup", action="store_true")
    ap.add_argument("--bad-record-size", action="store_true")
    ap.add_argument("--bad-slot", action="store_true")
    ap.add_argument("--family", type=int, default=4)
    ap.add_argument("--bad-load", action="store_true")
    a = ap.parse_args()

    sets = []
    for s in a.set:
        cid, _, spec = s.partition("=")
        levels = [[int(p) for p in lv.split(",") if p] for lv in spec.split("/")] if spec else []
        sets.append((int(cid), levels))
    if a.all:
        n, _, port = a.all.partition("=")
        sets += [(i, [[int(port)]]) for i in range(int(n))]
    names = {int(k): v for k, _, v in (x.partition("=") for x in a.name)}
    offsets = {int(k): int(v) for k, _, v in (x.partition("=") for x in a.id_offset)}

    with tempfile.TemporaryDirectory() as tmp:
        pb = pb_module(tmp)
        m = pb.Manifest()
        with open(os.path.join(a.bundle, "manifest.pb"), "rb") as f:
            m.ParseFromString(f.read())
        cname = {c.index: c.name for c in m.clusters}
        d = pb.EndpointDelta()
        d.format_version = a.format_version
        d.abi_version = abi_version() if a.abi_version is None else a.abi_version
        d.base_code_sha256 = a.code_sha256 or m.code_sha256
        d.snapshot_sha256 = hashlib.sha256(a.snapshot.encode()).hexdigest()
        for cid, levels in sets:
            c = d.clusters.add(cluster=cid + offsets.get(cid, 0),
                               name=names.get(cid, cname.get(cid, f"unknown_{cid}")))
            for li, ports in enumerate(levels):
                eps = b"".join(endpoint(a.backend_ip, p, a.family) for p in ports)
                table = b"".join(struct.pack("<II", 0, i) for i in range(len(ports)))
                if a.bad_record_size:
                    eps += b"\0"
                if a.bad_slot and table:
                    table = table[:-4] + struct.pack("<I", len(ports))
                load = 100 if li == len(levels) - 1 else (li + 1) * 100 // len(levels)
                if a.bad_load:
                    load = 99
                c.levels.add(cum_load=load, endpoints=eps, table=table)
        if a.dup and d.clusters:
            d.clusters.add().CopyFrom(d.clusters[0])
        with open(a.out, "wb") as f:
            f.write(d.SerializeToString())
    print(a.out)


if __name__ == "__main__":
    main()
