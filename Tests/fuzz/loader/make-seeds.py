#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Writes the fuzz seeds of the loader harness (Tests/fuzz/loader) from a real bundle.

  make-seeds.py BUNDLE_DIR SEEDS_DIR [DELTA...]

A seed is one flags byte (bit 0: skip the manifest digest, bit 1: skip the
files' sha256, bit 2: the harness rewrites the tar header checksums) and a ustar archive rooted at bundle/ as `xds2bpf compile -o
bundle.tar` writes it. Large files (the C source, headers, objects) are left
out of the small seeds: the harness then reports them missing and goes on
with every other check, so mutations stay cheap.

With DELTA files (EndpointDelta, Tests/loader/make-delta.py) and a bundle of the
ABI 2 data plane (x2b_clu, x2b_ep, x2b_lbtab), it also writes `update` seeds
(flags bit 3: u32 manifest length, manifest.pb, u32 max_entries of x2b_ep and
x2b_lbtab, u32 length of the live rows, the rows (x2b_clu image rows 2*cid),
the delta) and a flat JSON seed (flags bit 4).
"""
import io
import os
import struct
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "loader"))  # make-delta.py


def tar_bytes(bundle, paths):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        def add(name, data=None):
            ti = tarfile.TarInfo(name)
            ti.uname = ti.gname = "root"
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
        add("bundle/")
        for d in sorted({os.path.dirname(p) for p in paths if os.path.dirname(p)}):
            add(f"bundle/{d}/")
        for p in sorted(paths):
            with open(os.path.join(bundle, p), "rb") as f:
                add(f"bundle/{p}", f.read())
    data = buf.getvalue()
    # tarfile pads to a 10 KiB record; the compiler's archives end after two zero blocks
    end = len(data)
    while end >= 512 and data[end - 512:end] == bytes(512):
        end -= 512
    return data[:end + 1024]


def main():
    bundle, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    paths = []
    for dirpath, _, names in os.walk(bundle):
        for n in names:
            paths.append(os.path.relpath(os.path.join(dirpath, n), bundle))
    # large images (Maglev tables) stay out too: they only slow every execution down
    small = [p for p in paths if p.startswith("manifest.") or
             (p.startswith("maps/") and os.path.getsize(os.path.join(bundle, p)) <= 16384)]
    seeds = {
        # everything checked, digests included: the accept path
        "bundle-small-digests": (0, small),
        "bundle-small-nodigest": (3, small),
        "manifest-only-nodigest": (3, ["manifest.pb", "manifest.sha256"]),
        # header checksums recomputed by the harness: mutated sizes, types, names
        "bundle-small-fixsum": (7, small),
    }
    full = tar_bytes(bundle, paths)
    if len(full) <= 256 * 1024:
        seeds["bundle-full"] = (0, paths)
    for name, (flags, ps) in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([flags]) + tar_bytes(bundle, ps))
        print(f"{name}: {os.path.getsize(os.path.join(out, name))} bytes")
    deltas = sys.argv[3:]
    if deltas:
        update_seeds(bundle, out, deltas)


def update_seeds(bundle, out, deltas):
    import tempfile
    from importlib import import_module
    with tempfile.TemporaryDirectory() as tmp:
        pb = import_module("make-delta").pb_module(tmp)
        with open(os.path.join(bundle, "manifest.pb"), "rb") as f:
            raw = f.read()
        m = pb.Manifest()
        m.ParseFromString(raw)
    maps = {mm.name: mm for mm in m.maps}
    rows = {}
    with open(os.path.join(bundle, maps["x2b_clu"].image), "rb") as f:
        img = f.read()
    rec = 4 + maps["x2b_clu"].value_size
    for i in range(0, len(img), rec):
        (k,) = struct.unpack_from("<I", img, i)
        rows[k] = img[i + 4:i + rec]
    live = b"".join(rows.get(2 * c.index, bytes(rec - 4)) for c in m.clusters)
    for i, path in enumerate(deltas):
        with open(path, "rb") as f:
            delta = f.read()
        name = f"update-{i}"
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([8]) + struct.pack("<I", len(raw)) + raw
                    + struct.pack("<III", maps["x2b_ep"].max_entries, maps["x2b_lbtab"].max_entries, len(live))
                    + live + delta)
        print(f"{name}: {os.path.getsize(os.path.join(out, name))} bytes")
    with open(os.path.join(out, "json-flat"), "wb") as f:
        f.write(bytes([16]) + b'{"cds": "v7", "eds":"v\\u00e9\\ud83d\\ude00", "lds": -3.5e2, "x": true, "y": null}')


if __name__ == "__main__":
    main()
