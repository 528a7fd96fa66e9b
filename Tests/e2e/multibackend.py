#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Many TCP backends in one process: multibackend.py --ready FILE ADDR...

Each ADDR is ip:port or [ip6]:port; every accepted connection gets the
backend's own address ("ip:port", IPv6 as "[ip]:port") and is closed. The
addresses must already exist (on lo of the test netns). Writes "ready <pid>"
to FILE once all sockets listen.
"""
import argparse
import os
import selectors
import socket


def parse(addr):
    host, port = addr.rsplit(":", 1)
    host = host.strip("[]")
    return (socket.AF_INET6 if ":" in host else socket.AF_INET), host, int(port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ready", required=True)
    ap.add_argument("addrs", nargs="+")
    args = ap.parse_args()
    sel = selectors.DefaultSelector()
    for a in args.addrs:
        fam, host, port = parse(a)
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen(512)
        s.setblocking(False)
        ident = f"{host}:{port}" if fam == socket.AF_INET else f"[{host}]:{port}"
        sel.register(s, selectors.EVENT_READ, ident.encode())
    with open(args.ready + ".tmp", "w") as f:
        f.write(f"ready {os.getpid()}\n")
    os.rename(args.ready + ".tmp", args.ready)
    while True:
        for key, _ in sel.select():
            try:
                conn, _ = key.fileobj.accept()
            except BlockingIOError:
                continue
            try:
                conn.sendall(key.data + b"\n")
            except OSError:
                pass
            conn.close()


if __name__ == "__main__":
    main()
