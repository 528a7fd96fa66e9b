#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Test client: connects to DST (ip:port or [ip6]:port), prints the identity the backend sent.

  client.py DST [--timeout SECONDS] [--peer]

With --peer, prints "IDENT peer=IP:PORT" (getpeername() of the connected socket).

Prints "error: <ERRNO> <message>" and exits 1 when the connect or read fails.
"""
import argparse
import errno
import socket
import sys


def parse_dst(dst):
    host, port = dst.rsplit(":", 1)
    host = host.strip("[]")
    return (socket.AF_INET6 if ":" in host else socket.AF_INET), host, int(port)


def fetch(dst, timeout, peer=False):
    fam, host, port = parse_dst(dst)
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        if peer:
            p = s.getpeername()
            peer = f"{p[0]}:{p[1]}" if fam == socket.AF_INET else f"[{p[0]}]:{p[1]}"
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    ident = data.decode(errors="replace").strip()
    return f"{ident} peer={peer}" if peer else ident


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dst")
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--peer", action="store_true")
    a = ap.parse_args()
    try:
        print(fetch(a.dst, a.timeout, a.peer))
    except socket.timeout:
        print("error: ETIMEDOUT timed out")
        return 1
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__
        print(f"error: {name} {e.strerror or e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
