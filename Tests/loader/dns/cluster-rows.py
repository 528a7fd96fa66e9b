#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Prints the live rows of a loaded bundle's clusters, read from its pinned maps.

  cluster-rows.py PIN_DIR MANIFEST [CLUSTER...]

For every cluster of MANIFEST (or the CLUSTERs named): the live row
(x2b_cluv[cid] selects x2b_clu[2*cid] or [2*cid+1]) and, per priority level, the
cumulative load and the bytes of its endpoint records (x2b_ep) and LB-table slots
(x2b_lbtab), in hex. Where in x2b_ep / x2b_lbtab a level's ranges start is left
out: an in-place update writes them into free ranges, so two bundles with the same
rows differ there and nowhere else; so are what connects change (the round-robin
position in the row, an endpoint's connect count). Maps are read with bpftool (JSON dump).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "..", "proto")
MAX_PRIORITIES = 4  # X2B_MAX_PRIORITIES
LEVEL = struct.Struct("<5I")  # struct x2b_level
CLUSTER = struct.Struct("<4I")  # struct x2b_cluster, before its levels
EP_SIZE = 32  # struct x2b_endpoint
EP_ROUTING = 24  # its bytes before `connects` (a count the connects advance)
SLOT_SIZE = 8  # struct x2b_slot


def manifest_clusters(path):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["protoc", f"--proto_path={PROTO_DIR}", f"--python_out={tmp}",
                        "xds2bpf/manifest.proto"], check=True)
        sys.path.insert(0, os.path.join(tmp, "xds2bpf"))
        import manifest_pb2  # noqa: E402
        m = manifest_pb2.Manifest()
        with open(path, "rb") as f:
            m.ParseFromString(f.read())
    return [(c.index, c.name) for c in m.clusters]


def dump(pin_dir, name):
    """The map's values by key (u32 keys: array maps), as bytes."""
    out = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", os.path.join(pin_dir, "maps", name)],
                         check=True, capture_output=True, text=True).stdout
    values = {}
    for e in json.loads(out):
        key = struct.unpack("<I", bytes(int(b, 16) for b in e["key"]))[0]
        values[key] = bytes(int(b, 16) for b in e["value"])
    return values


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    pin_dir, manifest, wanted = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    clu, cluv, ep, tab = (dump(pin_dir, m) for m in ("x2b_clu", "x2b_cluv", "x2b_ep", "x2b_lbtab"))
    for cid, name in manifest_clusters(manifest):
        if wanted and name not in wanted:
            continue
        live = struct.unpack("<I", cluv[cid])[0]
        row = clu[2 * cid + live]
        lb, nlevels, counter, flags = CLUSTER.unpack_from(row)
        print(f"cluster {name}: lb {lb} levels {nlevels} flags {flags}")
        for li in range(min(nlevels, MAX_PRIORITIES)):
            cum, first, count, tfirst, tlen = LEVEL.unpack_from(row, CLUSTER.size + li * LEVEL.size)
            eps = b"".join(ep[first + i] for i in range(count))
            slots = b"".join(tab[tfirst + i] for i in range(tlen))
            print(f"  level {li}: cum_load {cum} endpoints {count} slots {tlen}")
            for i in range(count):
                print(f"    ep {eps[i * EP_SIZE:i * EP_SIZE + EP_ROUTING].hex()}")
            for i in range(tlen):
                print(f"    slot {slots[i * SLOT_SIZE:(i + 1) * SLOT_SIZE].hex()}")


if __name__ == "__main__":
    main()
