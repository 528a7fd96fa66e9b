#!/usr/bin/env python3
"""Envoy as the oracle at scale (project issue #16): random route tables, the corpus, and
weighted-cluster shares.

1. ``--snapshots N`` random snapshots (seeded by ``--seed``): each a bootstrap with one or two
   HTTP listeners whose connection managers set random path options (normalize_path,
   merge_slashes, path_with_escaped_slashes_action, strip_trailing_host_dot, strip_any_host_port),
   virtual hosts with exact / ``*.suffix`` / ``prefix.*`` / ``*`` domains (some with ports), and
   routes with prefix / path / safe_regex / path_separated_prefix matchers (``case_sensitive``
   false now and then), header and query matchers, and cluster, weighted-cluster, redirect and
   direct-response actions;
2. with ``--corpus``: every corpus case of diff-http-corpus.py as well;
3. each snapshot through Tests/envoy/diff-http.py's ``run`` (one Envoy per snapshot, requests sent
   concurrently, one ``xds2bpf explain --requests`` per snapshot), every generated request (no
   sampling unless ``--max``);
4. ``--weighted N``: for every route with weighted clusters (up to ``--weighted-routes``), N
   requests through Envoy; the count of each cluster must pass a chi-square test against the
   configured weights at the 99.9% level (Wilson-Hilferty bound of the chi-square quantile with
   k-1 degrees of freedom), Envoy must pick no cluster of zero weight, and xds2bpf's pick
   (``explain`` over every random value 0..total-1, the kernel's ``random % total``) must give
   each cluster exactly its weight.

Prints the counts per request class, every disagreement, the seed and the command; exit 1 on any
disagreement or failed share test.

  XDS2BPF=.build/debug/xds2bpf .venv/bin/python Tests/envoy/diff-http-gen.py --snapshots 40 --seed 16 --corpus
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
_spec = importlib.util.spec_from_file_location("diff_http", os.path.join(HERE, "diff-http.py"))
dh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dh)
_spec = importlib.util.spec_from_file_location("diff_http_corpus", os.path.join(HERE, "diff-http-corpus.py"))
dc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dc)

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
WORDS = ["api", "v1", "v2", "users", "Admin", "static", "img", "a", "b", "login", "x.y", "item-1", "~t", "q_r"]


def rand_path(rng: random.Random, min_segs: int = 1) -> str:
    return "/" + "/".join(rng.choice(WORDS) for _ in range(rng.randint(min_segs, 3)))


def string_matcher(rng: random.Random, value: str) -> dict:
    k = rng.choice(["exact", "prefix", "suffix", "contains", "safe_regex"])
    if k == "safe_regex":
        return {"safe_regex": {"regex": value[:2] + "[a-z0-9]*"}}
    m = {k: value}
    if rng.random() < 0.2:
        m["ignore_case"] = True
    return m


def header_matcher(rng: random.Random) -> dict:
    name = rng.choice(["x-env", "x-user", "x-version", "x-canary", "user-agent"])
    k = rng.random()
    if k < 0.5:
        h = {"name": name, "string_match": string_matcher(rng, rng.choice(["prod", "alice", "v2", "Mozilla"]))}
    elif k < 0.7:
        h = {"name": name, "present_match": True}
    elif k < 0.85:
        h = {"name": name, "range_match": {"start": rng.randint(0, 50), "end": rng.randint(51, 200)}}
    else:
        h = {"name": name, "exact_match": rng.choice(["1", "yes"])}
    if rng.random() < 0.15:
        h["invert_match"] = True
    return h


def route(rng: random.Random, clusters: list[str], i: int) -> dict:
    k = rng.random()
    if k < 0.45:
        match = {"prefix": rng.choice(["", "/", rand_path(rng), rand_path(rng) + "/"])}
    elif k < 0.65:
        match = {"path": rand_path(rng)}
    elif k < 0.8:
        match = {"path_separated_prefix": rand_path(rng)}
    else:
        match = {"safe_regex": {"regex": rng.choice(["/api/v[0-9]+/.*", "/(users|Admin)/[^/]+", "/static/.*\\.png",
                                                      "/[a-z]+", ".*login.*"])}}
    if rng.random() < 0.25 and "safe_regex" not in match:
        match["case_sensitive"] = False
    if rng.random() < 0.3:
        match["headers"] = [header_matcher(rng) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.2:
        q = {"name": rng.choice(["debug", "v", "lang"])}
        if rng.random() < 0.5:
            q["string_match"] = {"exact": rng.choice(["1", "true", "en"])}
        else:
            q["present_match"] = True
        match["query_parameters"] = [q]
    r = {"name": f"r{i}", "match": match}
    k = rng.random()
    if k < 0.55:
        r["route"] = {"cluster": rng.choice(clusters)}
    elif k < 0.75:
        picked = rng.sample(clusters, rng.randint(2, min(4, len(clusters))))
        ws = [rng.choice([0, 1, 10, 25, 50, 90]) for _ in picked]
        if not any(ws):
            ws[0] = 5
        r["route"] = {"weighted_clusters": {"clusters": [{"name": c, "weight": w} for c, w in zip(picked, ws)]}}
    elif k < 0.88:
        red = rng.choice([{"path_redirect": "/moved"}, {"https_redirect": True}, {"host_redirect": "other.example"},
                          {"prefix_rewrite": "/new/"} if "prefix" in match else {"path_redirect": "/p"}])
        if rng.random() < 0.5:
            red["response_code"] = rng.choice(["FOUND", "SEE_OTHER", "TEMPORARY_REDIRECT", "PERMANENT_REDIRECT"])
        r["redirect"] = red
    else:
        r["direct_response"] = {"status": rng.choice([200, 204, 403, 418, 503])}
        if rng.random() < 0.5:
            r["direct_response"]["body"] = {"inline_string": "hi"}
    return r


def domains(rng: random.Random, vi: int, used: set[str]) -> list[str]:
    out = []
    for _ in range(rng.randint(1, 3)):
        k = rng.random()
        base = f"svc{vi}-{rng.randint(0, 9)}.example.com"
        if k < 0.45:
            d = base
        elif k < 0.6:
            d = f"{base}:{rng.choice([80, 8080, 10000])}"
        elif k < 0.8:
            d = f"*.{rng.choice(['wild', 'w2'])}{vi}.example"
        else:
            d = f"pre{vi}.*"
        if rng.random() < 0.2:
            d = d.upper()
        if d.lower() not in used:
            used.add(d.lower())
            out.append(d)
    return out or [f"fallback{vi}.example"]


def snapshot(seed: int) -> dict:
    rng = random.Random(seed)
    clusters = [f"c{seed}-{i}" for i in range(rng.randint(3, 6))]
    listeners = []
    for li in range(rng.randint(1, 2)):
        used: set[str] = set()
        vhosts = []
        for vi in range(rng.randint(1, 5)):
            vhosts.append({"name": f"vh{vi}", "domains": domains(rng, vi, used),
                           "routes": [route(rng, clusters, i) for i in range(rng.randint(2, 9))]})
        if rng.random() < 0.6:
            vhosts.append({"name": "default", "domains": ["*"], "routes": [route(rng, clusters, 99)]})
        # a weighted route every request to its prefix reaches (the share test)
        picked = rng.sample(clusters, rng.randint(2, min(4, len(clusters))))
        ws = [rng.choice([0, 1, 3, 10, 25, 50, 90]) for _ in picked]
        ws[0] = ws[0] or 7
        vhosts[0]["routes"].insert(0, {"name": "weighted", "match": {"prefix": f"/weighted/{seed}/{li}"}, "route": {
            "weighted_clusters": {"clusters": [{"name": c, "weight": w} for c, w in zip(picked, ws)]}}})
        hcm = {"@type": HCM, "stat_prefix": f"l{li}", "route_config": {"name": f"rc{li}", "virtual_hosts": vhosts},
               "http_filters": [dh.ROUTER]}
        if rng.random() < 0.4:
            hcm["normalize_path"] = True
        if rng.random() < 0.35:
            hcm["merge_slashes"] = True
        if rng.random() < 0.5:
            hcm["path_with_escaped_slashes_action"] = rng.choice(["KEEP_UNCHANGED", "REJECT_REQUEST",
                                                                  "UNESCAPE_AND_REDIRECT", "UNESCAPE_AND_FORWARD"])
        if rng.random() < 0.15:
            hcm["strip_trailing_host_dot"] = True
        if rng.random() < 0.15:
            hcm["strip_any_host_port"] = True
        if rng.random() < 0.15:
            hcm["route_config"]["ignore_port_in_host_matching"] = True
        port = rng.choice([80, 8080, 10000 + li])
        listeners.append({"name": f"gen{seed}-l{li}",
                          "address": {"socket_address": {"address": f"10.{seed % 250}.{li}.1", "port_value": port}},
                          "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                          "typed_config": hcm}]}]})
    cl = [{"name": c, "type": "STATIC", "connect_timeout": "1s",
           "load_assignment": {"cluster_name": c, "endpoints": [{"lb_endpoints": [
               {"endpoint": {"address": {"socket_address": {"address": f"10.200.{i}.{seed % 250}", "port_value": 8080}}}}]}]}}
          for i, c in enumerate(clusters)]
    return {"static_resources": {"listeners": listeners, "clusters": cl}}


# ----------------------------------------------------------------------------------------------
# weighted clusters
# ----------------------------------------------------------------------------------------------


def chi2_bound(df: int, z: float = 3.0902) -> float:
    """The chi-square quantile with ``df`` degrees of freedom at the normal quantile ``z``
    (3.0902: 99.9%), Wilson-Hilferty."""
    a = 2.0 / (9.0 * df)
    return df * (1 - a + z * math.sqrt(a)) ** 3


def weighted_routes(targets: list[dict]) -> list[dict]:
    """{t, authority, path, method, headers, clusters: [(name, weight)]} for routes whose weighted
    clusters a plain request reaches: the first route of its virtual host, a prefix or path match
    without header or query matchers, an exact domain."""
    out = []
    for t in targets:
        for vh in (t["route_config"].get("virtual_hosts") or []):
            exact = [d for d in vh.get("domains") or [] if "*" not in d]
            if not exact and "*" not in (vh.get("domains") or []):
                continue
            auth = exact[0] if exact else "any-host.example"
            for r in (vh.get("routes") or [])[:1]:
                m = r.get("match") or {}
                wc = ((r.get("route") or {}).get("weighted_clusters") or {}).get("clusters")
                if not wc or m.get("headers") or m.get("query_parameters") or m.get("runtime_fraction"):
                    continue
                if "prefix" in m:
                    path = m["prefix"] or "/"
                elif "path" in m:
                    path = m["path"]
                else:
                    continue
                if not path.startswith("/"):
                    continue
                out.append({"t": t, "authority": auth, "target": path, "method": "GET", "headers": [], "version": "HTTP/1.1",
                            "nohost": False, "cls": "weighted",
                            "clusters": [(c["name"], int(c.get("weight", 0) or 0)) for c in wc]})
    return out


def picked(j: dict | None) -> str:
    """The cluster an explanation picks (also one the snapshot lacks: "cluster "X" not found")."""
    if not j:
        return "?"
    if j.get("cluster"):
        return j["cluster"]
    for s in j.get("steps") or []:
        if s.get("stage") == "cluster":
            m = re.match(r'cluster "([^"]+)" not found', s.get("decision", ""))
            if m:
                return m.group(1)
    return "?"


def check_weighted(res: dict, n: int, limit: int, log) -> tuple[int, int]:
    """(routes checked, failures)."""
    routes = weighted_routes(res["targets"])[:limit]
    checked = failed = 0
    for w in routes:
        names = [c for c, _ in w["clusters"]]
        weights = dict(w["clusters"])
        total = sum(weights.values())
        # xds2bpf's split: its pick over every residue of the random value
        residues = list(range(total)) if total <= 5000 else [random.Random(total).randrange(1 << 32) for _ in range(5000)]
        answers = dh.explain_batch(os.environ["XDS2BPF"], res["files"], [dh.explain_line(w, rv) for rv in residues],
                                   res["unsupported"], res["extra"])
        ours: dict[str, int] = {}
        for j in answers:
            ours[picked(j)] = ours.get(picked(j), 0) + 1
        if not any(ours.get(c, 0) for c in names):
            # the route is not what this request reaches (a host option, an earlier route): both
            # engines' answers are compared by the main run; no share to test
            print(f"skip weighted {w['t']['name']} {w['authority']}{w['target']}: not reached ({sorted(ours)[:3]})",
                  file=log, flush=True)
            continue
        envoy = dh.ask_envoy_all([w] * n, concurrency=32)
        got: dict[str, int] = {}
        for e in envoy:
            got[e] = got.get(e, 0) + 1
        checked += 1
        problems = []
        if total <= 5000:
            for c in names:
                if ours.get(c, 0) != weights[c]:
                    problems.append(f"xds2bpf picks {c} {ours.get(c, 0)} of {total} times, weight {weights[c]}")
        stray = {k: v for k, v in got.items() if not (k.startswith("cluster ") and weights.get(k[8:], 0) > 0)}
        if stray:
            problems.append(f"Envoy answers outside the clusters of positive weight: {stray}")
        live = [c for c in names if weights[c] > 0]
        stat = sum((got.get(f"cluster {c}", 0) - n * weights[c] / total) ** 2 / (n * weights[c] / total) for c in live)
        bound = chi2_bound(len(live) - 1) if len(live) > 1 else 0.0
        if len(live) > 1 and stat > bound:
            problems.append(f"chi-square {stat:.2f} over the 99.9% bound {bound:.2f} ({len(live) - 1} degrees of freedom)")
        shares = ", ".join(f"{c} w{weights[c]} envoy {got.get(f'cluster {c}', 0)}/{n} xds2bpf {ours.get(c, 0)}/{len(residues)}"
                           for c in names)
        print(f"{'FAIL' if problems else 'ok  '} weighted {w['t']['name']} {w['authority']}{w['target']}: {shares}; "
              f"chi-square {stat:.2f} <= {bound:.2f}" + ("; " + "; ".join(problems) if problems else ""), file=log, flush=True)
        failed += bool(problems)
    return checked, failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--snapshots", type=int, default=40, help="random snapshots (seeds SEED*1000 + i)")
    ap.add_argument("--corpus", action="store_true", help="also every corpus case of diff-http-corpus.py")
    ap.add_argument("--max", type=int, default=0, help="at most this many generated requests per snapshot (0: all)")
    ap.add_argument("--weighted", type=int, default=0, help="requests per weighted-cluster route (0: no share test)")
    ap.add_argument("--weighted-routes", type=int, default=3, help="weighted-cluster routes tested per snapshot")
    ap.add_argument("--min-total", type=int, default=0, help="fail unless at least this many requests were compared")
    ap.add_argument("--out", help="JSON lines: every disagreement")
    ap.add_argument("--summary", help="write the per-class table (markdown) here")
    ap.add_argument("--no-bpf", action="store_true", help="do not ask the BPF engine (asked when root)")
    args = ap.parse_args()
    xds2bpf = os.environ.get("XDS2BPF")
    envoy = os.environ.get("ENVOY") or os.path.join(ROOT, ".venv/bin/envoy")
    if not xds2bpf or not os.access(xds2bpf, os.X_OK) or not os.access(envoy, os.X_OK):
        print("diff-http-gen: set XDS2BPF (and ENVOY, default .venv/bin/envoy)", file=sys.stderr)
        return 2
    skip = dh.bpf_skip_reason(xds2bpf) if not args.no_bpf else "--no-bpf"
    if skip:
        print(f"diff-http-gen: bpf engine skipped: {skip}", flush=True)
    bpf_counts: dict[str, dict[str, int]] = {"bpf_envoy": {}, "bpf_explain": {}}
    start = time.time()
    tmp = tempfile.mkdtemp(prefix="xds2bpf-diff-gen-")
    cases = []
    for i in range(args.snapshots):
        s = args.seed * 1000 + i
        path = os.path.join(tmp, f"gen-{s}.json")
        with open(path, "w") as fh:
            json.dump(snapshot(s), fh, indent=1)
        cases.append((f"generated seed {s}", [path], None))
    if args.corpus:
        corpus = os.environ.get("XDS2BPF_CORPUS") or os.path.join(ROOT, "../shared/corpus")
        for name, files, extra in dc.cases(corpus):
            cases.append((name, files, "route" if extra else None))
    classes: dict[str, list[int]] = {}
    per_case = []
    bad = []
    w_checked = w_failed = 0
    for name, files, kind in cases:
        t0 = time.time()
        weighted = (lambda res: check_weighted(res, args.weighted, args.weighted_routes, sys.stdout)) if args.weighted else None
        try:
            res = dh.run(files, xds2bpf, envoy, args.seed, args.max or None, kind, while_running=weighted,
                         bpf=skip is None)
        except dh.Setup as err:
            per_case.append((name, None, None, str(err)[:120]))
            print(f"skip {name}: {str(err)[:160]}", flush=True)
            continue
        except Exception as err:  # noqa: BLE001 - a case that cannot run is reported, not fatal
            per_case.append((name, None, None, f"{type(err).__name__}: {err}"[:160]))
            print(f"skip {name}: {type(err).__name__}: {str(err)[:160]}", flush=True)
            continue
        if weighted:
            w_checked += res["while_running"][0]
            w_failed += res["while_running"][1]
        ag, dis = dc.tally(res["records"], classes)
        bad += [(name, r) for r in res["records"] if not r["agree"] or "disagree" in (r.get("bpf_envoy"), r.get("bpf_explain"))]
        for key, c in bpf_counts.items():
            for r in res["records"]:
                if key in r:
                    c[r[key]] = c.get(r[key], 0) + 1
        per_case.append((name, ag, dis, ""))
        print(f"{name}: {ag} agree, {dis} disagree ({time.time() - t0:.1f}s)", flush=True)
    for name, r in bad:
        print(f"DIFF {name} [{r['class']}] {r['method']} {r['target']!r} Host {r['authority']!r}: Envoy {r['envoy']}, "
              f"xds2bpf {' | '.join(r['xds2bpf'])}" + (f", bpf {' | '.join(r['bpf'])}" if "bpf" in r else "")
              + f"  ({r['summary'][:200]})")
    if args.out:
        with open(args.out, "w") as fh:
            for name, r in bad:
                fh.write(json.dumps({"case": name, **r}) + "\n")
    tot_a = sum(c[0] for c in classes.values())
    tot_d = sum(c[1] for c in classes.values())
    print("\nclass                                          agree  disagree")
    for cls in sorted(classes):
        print(f"{cls:46} {classes[cls][0]:6}  {classes[cls][1]:8}")
    cmd = (f"XDS2BPF={os.path.relpath(xds2bpf, ROOT) if xds2bpf.startswith(ROOT) else xds2bpf} .venv/bin/python "
           f"Tests/envoy/diff-http-gen.py --seed {args.seed} --snapshots {args.snapshots}"
           + (" --corpus" if args.corpus else "") + (f" --max {args.max}" if args.max else "")
           + (f" --weighted {args.weighted}" if args.weighted else ""))
    elapsed = time.time() - start
    bpf_lines = []
    for key, other in (("bpf_envoy", "Envoy"), ("bpf_explain", "explain")):
        c = bpf_counts[key]
        if c:
            bpf_lines.append(f"bpf vs {other}: {sum(c.values())} requests, {c.get('agree', 0)} agree, "
                             f"{c.get('disagree', 0)} disagree, {c.get('refused', 0)} refused in the kernel (a path "
                             f"Envoy normalises), {c.get('fallback', 0)} L4 fallback (head over {dh.HEAD_MAX} bytes, a table "
                             f"routing every request alike), {c.get('truncated', 0)} refused by the kernel where the "
                             f"other forwards (head over {dh.HEAD_MAX} bytes)")
    if skip:
        bpf_lines.append(f"bpf engine skipped: {skip}")
    bpf_bad = sum(c.get("disagree", 0) for c in bpf_counts.values())
    if args.summary:
        md = ["| class | agree | disagree |", "|---|---|---|"]
        md += [f"| {cls} | {classes[cls][0]} | {classes[cls][1]} |" for cls in sorted(classes)]
        md += ["", f"Total: {tot_a + tot_d} requests, {tot_a} agree, {tot_d} disagree (seed {args.seed}, "
               f"{sum(1 for c in per_case if c[1] is not None)} snapshots, {elapsed:.0f} s).", ""]
        md += [f"The BPF engine (`explain --requests --engine bpf`): {b}." for b in bpf_lines] + ["", f"`{cmd}`", ""]
        if args.weighted:
            md += [f"Weighted clusters: {w_checked} routes, {w_failed} failed. Each: {args.weighted} requests through "
                   "Envoy; Envoy answers only clusters of positive weight, and the counts pass Pearson's chi-square "
                   "test against the configured weights at the 99.9% level (k-1 degrees of freedom for k clusters "
                   "of positive weight; the quantile by the Wilson-Hilferty approximation: 11.16, 14.13, 16.55 for 1, 2, 3 degrees, "
                   "a little above the exact 10.83, 13.82, 16.27: a correct Envoy fails a route with probability below "
                   "0.1%); xds2bpf's pick (`explain` for every residue of the random value, the kernel's "
                   "`random % total`) gives each cluster exactly its weight.", ""]
        with open(args.summary, "w") as fh:
            fh.write("\n".join(md))
    print(f"diff-http-gen: {tot_a + tot_d} requests, {tot_a} agree, {tot_d} disagree; seed {args.seed}; "
          f"{len(per_case)} snapshots ({sum(1 for c in per_case if c[1] is None)} skipped); {elapsed:.0f} s")
    for b in bpf_lines:
        print(f"diff-http-gen: {b}")
    if args.weighted:
        print(f"diff-http-gen: weighted clusters: {w_checked} routes, {w_failed} failed")
    print(f"command: {cmd}")
    if tot_a + tot_d < args.min_total:
        print(f"diff-http-gen: fewer than {args.min_total} requests compared", file=sys.stderr)
        return 1
    return 1 if tot_d or w_failed or bpf_bad else 0


if __name__ == "__main__":
    sys.exit(main())
