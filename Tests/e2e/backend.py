#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Test backend: accepts TCP connections on IP:PORT, replies IDENT + newline, closes.

  backend.py IP PORT IDENT [--ready FILE]

Writes FILE ("IP PORT IDENT PID") once listening; the harness waits for it. Runs until killed.
"""
import argparse
import os
import signal
import socket
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ip")
    ap.add_argument("port", type=int)
    ap.add_argument("ident")
    ap.add_argument("--ready")
    a = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    fam = socket.AF_INET6 if ":" in a.ip else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.ip, a.port))
    s.listen(4096)
    if a.ready:
        with open(a.ready, "w") as f:
            f.write(f"{a.ip} {a.port} {a.ident} {os.getpid()}\n")
    reply = (a.ident + "\n").encode()
    while True:
        try:
            c, _ = s.accept()
        except InterruptedError:
            continue
        try:
            c.sendall(reply)
        except OSError:
            pass
        finally:
            c.close()


if __name__ == "__main__":
    main()
