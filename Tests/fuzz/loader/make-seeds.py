#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Writes the fuzz seeds of the loader harness (Tests/fuzz/loader) from a real bundle.

  make-seeds.py BUNDLE_DIR SEEDS_DIR

A seed is one flags byte (bit 0: skip the manifest digest, bit 1: skip the
files' sha256, bit 2: the harness rewrites the tar header checksums) and a ustar archive rooted at bundle/ as `xds2bpf compile -o
bundle.tar` writes it. Large files (the C source, headers, objects) are left
out of the small seeds: the harness then reports them missing and goes on
with every other check, so mutations stay cheap.
"""
import io
import os
import sys
import tarfile


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


if __name__ == "__main__":
    main()
