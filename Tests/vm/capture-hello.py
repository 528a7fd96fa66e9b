#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The ClientHello a real client sends: `openssl s_client -tls1_2` for SNI
(or "-": none) against a listener on 127.0.0.1 that keeps its first record
(TLS 1.2, so the server's Certificate comes back in clear), written to OUT.

    Tests/vm/capture-hello.py SNI OUT
"""
import socket
import subprocess
import sys

sni, out = sys.argv[1:3]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
args = ["openssl", "s_client", "-tls1_2", "-connect", "127.0.0.1:%d" % s.getsockname()[1]]
args += ["-servername", sni] if sni != "-" else ["-noservername"]
p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
s.settimeout(10)
c, _ = s.accept()
c.settimeout(5)
data = b""
while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
    d = c.recv(4096)
    if not d:
        break
    data += d
c.close()
p.kill()
p.wait()
if len(data) < 5 or data[0] != 0x16:
    sys.exit("capture-hello: no ClientHello from openssl s_client")
open(out, "wb").write(data)
