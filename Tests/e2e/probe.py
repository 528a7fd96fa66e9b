#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Connects N times to each DST and prints JSON {dst: {identity-or-error: count}}.

  probe.py N DST... [--peer] [--hold K]

--peer also records getpeername() of each socket under "peer:<addr>".
--hold K keeps K connections per DST open until stdin closes, printing the
counts once all are open (for least-request accounting).
"""
import argparse
import errno
import json
import socket
import sys


def parse(dst):
    host, port = dst.rsplit(":", 1)
    host = host.strip("[]")
    return (socket.AF_INET6 if ":" in host else socket.AF_INET), host, int(port)


def fmt(fam, addr):
    return f"{addr[0]}:{addr[1]}" if fam == socket.AF_INET else f"[{addr[0]}]:{addr[1]}"


def once(dst, peer, keep=None):
    fam, host, port = parse(dst)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(2)
    out = []
    try:
        s.connect((host, port))
        if peer:
            out.append("peer:" + fmt(fam, s.getpeername()))
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
        out.append(data.decode().strip() or "error: empty reply")
    except OSError as e:
        out.append("error: " + (errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__))
    if keep is not None and not out[-1].startswith("error"):
        keep.append(s)
    else:
        s.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("dsts", nargs="+")
    ap.add_argument("--peer", action="store_true")
    ap.add_argument("--hold", action="store_true")
    args = ap.parse_args()
    result = {}
    held = [] if args.hold else None
    for d in args.dsts:
        counts = {}
        for _ in range(args.n):
            for k in once(d, args.peer, held):
                counts[k] = counts.get(k, 0) + 1
        result[d] = counts
    print(json.dumps(result, sort_keys=True), flush=True)
    if args.hold:
        sys.stdin.read()
        for s in held:
            s.close()


if __name__ == "__main__":
    main()
