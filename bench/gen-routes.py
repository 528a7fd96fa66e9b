#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Route tables for the HTTP route-match benchmark (bench/http-match.sh).

Writes one RouteConfiguration with one virtual host (domains: '*') of N routes and an Envoy
router-check test file for it, the formats `xds2bpf route-check` reads:

  DIR/routes-N.json        the RouteConfiguration (proto3 JSON, a bare resource)
  DIR/routes-N.tests.json  the router-check tests

Route i (0-based) is one of four kinds, drawn from random.Random("<seed>/kinds"), and routes to
cluster c<i>:
  prefix  match.prefix "/api/s<i>/"
  exact   match.path "/api/s<i>/status"
  regex   match.safe_regex "/api/s<i>/items/[0-9]+" (RE2, whole path)
  header  match.prefix "/api/s<i>/" and header x-tenant exactly "t<i>"
Paths share their first bytes ("/api/s"), as a service's routes do. A request built for route i
is matched by route i and by no other, so the expected decision is known without an interpreter:

  first, middle, last  requests for routes 0, N/2 and N-1
  miss                 a path no route matches (Envoy: 404, no cluster)
  --all                also one request per route (route<i>): a whole-table check

The output is a pure function of the arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import random

KINDS = ("prefix", "exact", "regex", "header")


def route(i: int, kind: str) -> dict:
    base = f"/api/s{i}/"
    if kind == "prefix":
        match = {"prefix": base}
    elif kind == "exact":
        match = {"path": base + "status"}
    elif kind == "regex":
        match = {"safe_regex": {"regex": base + "items/[0-9]+"}}
    else:
        match = {"prefix": base, "headers": [{"name": "x-tenant", "string_match": {"exact": f"t{i}"}}]}
    return {"name": f"r{i}", "match": match, "route": {"cluster": f"c{i}"}}


def request_for(i: int, kind: str) -> dict:
    base = f"/api/s{i}/"
    path = {"prefix": base + "list", "exact": base + "status", "regex": base + "items/42", "header": base + "list"}[kind]
    req = {"authority": "bench.example", "path": path, "method": "GET"}
    if kind == "header":
        req["additional_request_headers"] = [{"key": "x-tenant", "value": f"t{i}"}]
    return req


def generate(n: int, seed: int, every: bool) -> tuple[dict, dict]:
    rng = random.Random(f"{seed}/kinds")
    kinds = [rng.choice(KINDS) for _ in range(n)]
    config = {
        "name": f"bench-{n}",
        "virtual_hosts": [{"name": "bench", "domains": ["*"], "routes": [route(i, k) for i, k in enumerate(kinds)]}],
    }
    tests = []

    def hit(name: str, i: int) -> None:
        tests.append({"test_name": name, "input": request_for(i, kinds[i]), "validate": {"cluster_name": f"c{i}"}})

    hit("first", 0)
    hit("middle", n // 2)
    hit("last", n - 1)
    miss = {"authority": "bench.example", "path": "/other/list", "method": "GET"}
    tests.append({"test_name": "miss", "input": miss, "validate": {"cluster_name": ""}})
    if every:
        for i in range(n):
            hit(f"route{i}", i)
    return config, {"tests": tests}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routes", type=int, required=True, help="routes in the virtual host (>= 1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--all", action="store_true", help="also one test per route")
    ap.add_argument("-o", "--out", required=True, help="output directory")
    a = ap.parse_args()
    if a.routes < 1:
        ap.error("--routes must be at least 1")
    config, tests = generate(a.routes, a.seed, a.all)
    os.makedirs(a.out, exist_ok=True)
    for name, doc in ((f"routes-{a.routes}.json", config), (f"routes-{a.routes}.tests.json", tests)):
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
