#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Seeds for the HTTP head parser's fuzzer (Tests/fuzz/http): request heads as a client sends them.

Usage: make-seeds.py OUT_DIR [CORPUS]
  - every request of Tests/vm/http-cases.sh (http_req ID DST METHOD AUTHORITY PATH [NAME:VALUE...]);
  - every router-check test input of Tests/Fixtures/router-check and, when the shared corpus is
    given, of CORPUS/envoy-router-check (authority, path, method, additional_request_headers);
  - the head forms the parser decides on (EDGE_HEADS below): absolute form, framing headers,
    line endings, versions, methods, Host shapes, paths Envoy normalises.
Each seed is one file named by its content's sha1 (as libFuzzer names its corpus), so reruns
rewrite the same files.
"""
import glob
import hashlib
import json
import os
import re
import shlex
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

EDGE_HEADS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\nHost: a\n\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: exa mple\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: example.com.:80\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: Example.COM.\r\nx-vhost: other.example\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
    b"GET /\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"MSEARCH / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://a.example:8080/p?q=1 HTTP/1.1\r\nHost: ignored\r\n\r\n",
    b"GET HTTPS://user:pw@a.example/p HTTP/1.1\r\n\r\n",
    b"GET http://a@b@c/ HTTP/1.1\r\n\r\n",
    b"GET http://[::1]:80/ HTTP/1.1\r\n\r\n",
    b"GET http://a.example?x HTTP/1.1\r\n\r\n",
    b"GET http://a.example HTTP/1.1\r\n\r\n",
    b"GET ftp://a.example/ HTTP/1.1\r\n\r\n",
    b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a?b=1&c=%20&d HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a/../b/./c//d%2F%5c%2e HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a;p=1/b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: v\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX:\t v \t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nx-forwarded-proto: https\r\nx-envoy-internal: true\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r" + b"\n",
    b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: " + b"h" * 300 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(50)) + b"\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X: v\r\n" for _ in range(120)) + b"\r\n",
    b"GET /" + b"p" * 1100 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
]


def head(method, authority, path, headers):
    lines = [b"%s %s HTTP/1.1" % (method, path)]
    if authority is not None:
        lines.append(b"Host: " + authority)
    lines += [k + b": " + v for k, v in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def enc(s):
    return s.encode("utf-8", "surrogateescape") if isinstance(s, str) else bytes(s)


def from_http_cases(path):
    """http_req ID DST METHOD AUTHORITY PATH [NAME:VALUE...] lines of Tests/vm/http-cases.sh."""
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line.startswith("http_req "):
            continue
        words = shlex.split(line)
        if len(words) < 6:
            continue
        method, authority, target = words[3:6]
        hdrs = [tuple(enc(x) for x in w.split(":", 1)) for w in words[6:] if ":" in w]
        out.append(head(enc(method), enc(authority), enc(target), hdrs))
    return out


def from_router_check(path):
    """The inputs of a router-check tests file (JSON; YAML ones are skipped: no parser needed here)."""
    try:
        doc = json.load(open(path, encoding="utf-8"))
    except (ValueError, OSError):
        return []
    tests = doc.get("tests", []) if isinstance(doc, dict) else []
    out = []
    for t in tests:
        i = t.get("input", {}) if isinstance(t, dict) else {}
        if not isinstance(i, dict) or "path" not in i:
            continue
        hdrs = [(enc(h.get("key", "")), enc(h.get("value", ""))) for h in i.get("additional_request_headers", [])
                if isinstance(h, dict)]
        if i.get("ssl"):
            hdrs.append((b"x-forwarded-proto", b"https"))
        if i.get("internal"):
            hdrs.append((b"x-envoy-internal", b"true"))
        out.append(head(enc(i.get("method", "GET")), enc(i.get("authority", "")), enc(i["path"]), hdrs))
    return out


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out_dir = sys.argv[1]
    corpus = sys.argv[2] if len(sys.argv) == 3 else ""
    os.makedirs(out_dir, exist_ok=True)
    seeds = list(EDGE_HEADS)
    seeds += from_http_cases(os.path.join(ROOT, "Tests/vm/http-cases.sh"))
    files = sorted(glob.glob(os.path.join(ROOT, "Tests/Fixtures/router-check/*.json")))
    if corpus:
        files += sorted(glob.glob(os.path.join(corpus, "envoy-router-check/*.json")))
    for f in files:
        seeds += from_router_check(f)
    names = set()
    for s in seeds:
        name = hashlib.sha1(s).hexdigest()
        names.add(name)
        with open(os.path.join(out_dir, name), "wb") as fh:
            fh.write(s)
    print(f"http seeds: {len(names)} heads in {out_dir}" + ("" if corpus else " (no shared corpus)"))


if __name__ == "__main__":
    main()
