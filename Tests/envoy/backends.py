#!/usr/bin/env python3
"""Local HTTP backends for Tests/envoy: one listening socket on 127.0.0.1 per cluster name given
on the command line, each answering every request 200 with ``x-xds2bpf-cluster: <name>`` (keep-alive,
HTTP/1.1). Prints one JSON object {name: port} on stdout once listening, then serves until stdin
closes or it is terminated. One asyncio process serves them all, apart from the process that
sends requests (no interpreter lock shared with it)."""

import asyncio
import json
import sys

HEADER = "x-xds2bpf-cluster"


async def serve(name: str):
    body = name.encode()
    reply = (f"HTTP/1.1 200 OK\r\n{HEADER}: {name}\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                n = 0
                chunked = False
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    k = k.strip().lower()
                    if k == b"content-length":
                        n = int(v.strip() or 0)
                    elif k == b"transfer-encoding" and b"chunked" in v.lower():
                        chunked = True
                if n:
                    await reader.readexactly(n)
                if chunked:
                    while True:
                        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                        await reader.readexactly(size + 2)
                        if size == 0:
                            break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 20)
    return srv, srv.sockets[0].getsockname()[1]


async def main():
    names = sys.argv[1:]
    servers = [await serve(n) for n in names]
    print(json.dumps({n: p for n, (_, p) in zip(names, servers)}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
