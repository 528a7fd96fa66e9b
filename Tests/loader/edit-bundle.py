#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Edits a bundle directory for the loader's rejection tests, or packs one into a tar.

  edit-bundle.py BUNDLE [--drop-tail-call N] [--tail-call-slot N SLOT]
      [--drop-file PATH] [--replace-bytes OLD_HEX NEW_HEX] [--flip-bit OFFSET]
      [--format-version N] [--dns-cluster-index I] [--dns-host TEXT] [--keep-digest]
  edit-bundle.py BUNDLE --tar OUT.tar [--evil KIND]

Edits of manifest.pb rewrite manifest.sha256 afterwards (so that the check
under test is the one that fires), unless --keep-digest. --replace-bytes works
on the serialized manifest (same length keeps it decodable: how invalid UTF-8
gets into a string field). --tar writes a ustar archive rooted at bundle/ as
`xds2bpf compile -o bundle.tar` does; --evil adds what a strict reader must
refuse: symlink, dotdot, absolute, fifo, extra (an unlisted member), hardlink.

Needs protoc and the python protobuf package (for the structural edits).
"""
import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "proto")


def manifest_module(tmp):
    subprocess.run(["protoc", f"--proto_path={PROTO_DIR}", f"--python_out={tmp}",
                    "xds2bpf/manifest.proto"], check=True)
    sys.path.insert(0, os.path.join(tmp, "xds2bpf"))
    import manifest_pb2  # noqa: E402
    return manifest_pb2


def write_tar(bundle, out, evil):
    def add(t, name, data=b"", type_=tarfile.REGTYPE, link=""):
        ti = tarfile.TarInfo(name)
        ti.type = type_
        ti.size = len(data) if type_ == tarfile.REGTYPE else 0
        ti.mode = 0o755 if type_ == tarfile.DIRTYPE else 0o644
        ti.uname = ti.gname = "root"
        ti.linkname = link
        t.addfile(ti, io.BytesIO(data) if type_ == tarfile.REGTYPE else None)

    paths = []
    for dirpath, _, names in os.walk(bundle):
        for n in names:
            paths.append(os.path.relpath(os.path.join(dirpath, n), bundle))
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as t:
        add(t, "bundle/", type_=tarfile.DIRTYPE)
        dirs = sorted({os.path.dirname(p) for p in paths if os.path.dirname(p)})
        for d in dirs:
            add(t, f"bundle/{d}/", type_=tarfile.DIRTYPE)
        for p in sorted(paths):
            name = f"bundle/{p}"
            if evil == "symlink" and p.startswith("maps/"):
                add(t, name, type_=tarfile.SYMTYPE, link="/etc/passwd")
                continue
            if evil == "hardlink" and p.startswith("maps/"):
                add(t, name, type_=tarfile.LNKTYPE, link="bundle/manifest.pb")
                continue
            if evil == "fifo" and p.startswith("maps/"):
                add(t, name, type_=tarfile.FIFOTYPE)
                continue
            if evil == "dotdot" and p.startswith("maps/"):
                name = f"bundle/../{p}"
            if evil == "absolute" and p.startswith("maps/"):
                name = f"/tmp/{p}"
            with open(os.path.join(bundle, p), "rb") as f:
                add(t, name, f.read())
        if evil == "extra":
            add(t, "bundle/extra.txt", b"not listed in the manifest\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--drop-tail-call", type=int)
    ap.add_argument("--tail-call-slot", type=int, nargs=2, metavar=("N", "SLOT"))
    ap.add_argument("--drop-file")
    ap.add_argument("--replace-bytes", nargs=2, metavar=("OLD_HEX", "NEW_HEX"))
    ap.add_argument("--flip-bit", type=int, metavar="OFFSET")
    ap.add_argument("--format-version", type=int)
    ap.add_argument("--dns-cluster-index", type=int, help="dns_clusters[0].cluster")
    ap.add_argument("--dns-host", help="dns_clusters[0].hosts[0].host")
    ap.add_argument("--keep-digest", action="store_true")
    ap.add_argument("--tar")
    ap.add_argument("--evil", choices=["symlink", "dotdot", "absolute", "fifo", "extra", "hardlink"])
    a = ap.parse_args()

    if a.tar:
        write_tar(a.bundle, a.tar, a.evil)
        return
    mpath = os.path.join(a.bundle, "manifest.pb")
    with open(mpath, "rb") as f:
        raw = f.read()
    dns_edit = a.dns_cluster_index is not None or a.dns_host is not None
    if a.drop_tail_call is not None or a.tail_call_slot or a.drop_file or a.format_version is not None or dns_edit:
        with tempfile.TemporaryDirectory() as tmp:
            pb = manifest_module(tmp)
            m = pb.Manifest()
            m.ParseFromString(raw)
            if a.drop_tail_call is not None:
                del m.tail_calls[a.drop_tail_call]
            if a.tail_call_slot:
                m.tail_calls[a.tail_call_slot[0]].slot = a.tail_call_slot[1]
            if a.drop_file:
                keep = [f for f in m.files if f.path != a.drop_file]
                del m.files[:]
                m.files.extend(keep)
            if a.format_version is not None:
                m.format_version = a.format_version
            if a.dns_cluster_index is not None:
                m.dns_clusters[0].cluster = a.dns_cluster_index
            if a.dns_host is not None:
                m.dns_clusters[0].hosts[0].host = a.dns_host
            raw = m.SerializeToString()
    if a.replace_bytes:
        old, new = bytes.fromhex(a.replace_bytes[0]), bytes.fromhex(a.replace_bytes[1])
        if old not in raw:
            sys.exit(f"edit-bundle: {a.replace_bytes[0]} not in manifest.pb")
        raw = raw.replace(old, new, 1)
    if a.flip_bit is not None:
        b = bytearray(raw)
        b[a.flip_bit // 8] ^= 1 << (a.flip_bit % 8)
        raw = bytes(b)
    with open(mpath, "wb") as f:
        f.write(raw)
    if not a.keep_digest:
        with open(os.path.join(a.bundle, "manifest.sha256"), "w") as f:
            f.write(f"{hashlib.sha256(raw).hexdigest()}  manifest.pb\n")


if __name__ == "__main__":
    main()
