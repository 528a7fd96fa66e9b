#!/usr/bin/env python3
"""Envoy as the HTTP routing oracle of `xds2bpf explain` (project issue #16 item 2).

Given a snapshot with HTTP listeners (any shape the compiler reads; several files form one):

1. every HTTP connection manager filter chain becomes an Envoy listener on 127.0.0.1:<free port>
   with that chain alone (filter_chain_match, listener filters and original-dst flags dropped;
   RDS inlined as in validate-agreement.py; HTTP filters reduced to the router, tracing and
   access logs removed: they do not choose routes); every cluster becomes STATIC with one
   endpoint, a local backend on 127.0.0.1 that answers 200 with ``x-xds2bpf-cluster: <name>``;
   clusters named by routes but absent from the snapshot stay absent (Envoy answers 503);
   extensions Envoy does not know are removed until ``envoy --mode validate`` accepts it;
2. requests are generated from the route tables: for each virtual host its domains (exact,
   upper-cased, with and without the listener port, a name for each wildcard), for each route its
   path matcher and near misses (prefix + suffix, prefix minus its last byte, case variants, exact
   path + "/", a separated-prefix boundary), header matchers with the value / another value /
   absent, query parameters with and without, and malformed heads: a fragment in the path
   (``/b#frag``), a target not starting with ``/``, an absolute-form target (also with userinfo,
   or a scheme other than http/https), ``OPTIONS *`` and ``GET *``, a header name with a space or
   a separator, a Host with a space or ``/``, an unknown method, HTTP/1.0, no version, a bad
   version, no Host, control bytes, a space or DEL in the path, a control byte in a header value,
   duplicate / non-numeric content-length, a transfer-encoding other than chunked, more than 100
   headers and a head over 60 KiB, ``..`` segments and percent-encoded slashes;
3. each request is sent through Envoy on a raw socket (HTTP/1.1, ``Connection: close``) and
   the answer normalised to ``cluster <name>`` (the backend's header) or ``status <code>``;
4. the same question goes to ``$XDS2BPF explain SNAPSHOT --dst IP:PORT --authority H --path P
   --header K:V --json`` (dst: the chain's destination prefix or the listener's address, a
   TEST-NET address for wildcard listeners), normalised the same way (weighted clusters: the set
   of clusters with non-zero weight; Envoy's pick must be one of them);
5. prints one line per disagreement, the counts of agreements / disagreements per request class,
   and the seed (``--seed``; the request sample of ``--max`` requests is drawn with it).

  XDS2BPF=.build/release/xds2bpf .venv/bin/python Tests/envoy/diff-http.py examples/bookinfo/bookinfo.json
  XDS2BPF=... .venv/bin/python Tests/envoy/diff-http.py $XDS2BPF_CORPUS/envoy-gateway/xds-ir/http-route/*.yaml --seed 7

Exit status: 0 when every request agrees, 1 on disagreements, 2 on usage / setup errors. Every
process it starts (Envoy, the backends) is bounded in time and stopped on exit; traffic stays on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import importlib.util
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
_spec = importlib.util.spec_from_file_location("validate_agreement", os.path.join(HERE, "validate-agreement.py"))
va = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(va)
x = va.x

HEADER = "x-xds2bpf-cluster"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": x.TYPE_PREFIX + "envoy.extensions.filters.http.router.v3.Router"}}


# ----------------------------------------------------------------------------------------------
# backends
# ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backends:
    """Names clusters; ``start`` runs Tests/envoy/backends.py (one asyncio process, a socket per
    cluster on 127.0.0.1 answering 200 with the cluster's name) and gives each its port."""

    def __init__(self):
        self.names: list[str] = []
        self.proc = None

    def add(self, cluster: str) -> str:
        self.names.append(cluster)
        return f"@backend:{cluster}"

    def start(self) -> dict[str, int]:
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "backends.py"), *self.names],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {}

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def set_backend_ports(boot: dict, ports: dict[str, int]):
    for c in boot["static_resources"]["clusters"]:
        sa = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        sa["port_value"] = ports[c["name"]]


# ----------------------------------------------------------------------------------------------
# bootstrap
# ----------------------------------------------------------------------------------------------


def sock_addr(a: dict) -> tuple[str, int]:
    sa = (a or {}).get("socket_address") or {}
    return sa.get("address", ""), int(sa.get("port_value", 0) or 0)


def chain_dst(listener: dict, chain: dict) -> str:
    ip, port = sock_addr(listener.get("address"))
    m = chain.get("filter_chain_match") or {}
    if m.get("destination_port"):
        port = int(m["destination_port"])
    ranges = m.get("prefix_ranges") or []
    if ranges:
        ip = ranges[0]["address_prefix"]
    if ip in ("0.0.0.0", ""):
        ip = "192.0.2.1"
    elif ip == "::":
        ip = "2001:db8::1"
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def build(files: list[str], backends: Backends, kind: str | None = None) -> tuple[dict, list[dict], list[str], dict | None]:
    """(bootstrap, targets, notes, snapshot for xds2bpf or None = the input files); a target:
    {name, port, dst, route_config, listener_port}. When the input has route configurations no
    listener names, they sit on synthetic listeners (validate-agreement.py) and xds2bpf is asked
    about that converted snapshot, the only one where those listeners exist."""
    boot, notes = va.synthesize(files, kind)
    converted = copy.deepcopy(boot) if any(l.get("name", "").startswith("xds2bpf-synthetic-")
                                           for l in boot["static_resources"]["listeners"]) else None
    res = boot["static_resources"]
    targets, listeners = [], []
    for li, l in enumerate(res["listeners"]):
        if l.get("traffic_direction") == "INBOUND" or l.get("use_original_dst"):
            # xds2bpf routes outbound connections only (XDS203): nothing to compare
            notes.append(f"{l.get('name')}: inbound / original-dst listener, skipped")
            continue
        chains = list(l.get("filter_chains") or [])
        if l.get("default_filter_chain"):
            chains.append(l["default_filter_chain"])
        for ci, fc in enumerate(chains):
            hcm_i = next((i for i, f in enumerate(fc.get("filters") or [])
                          if (f.get("typed_config") or {}).get("@type") == va.T_HCM), None)
            if hcm_i is None:
                continue
            hcm = copy.deepcopy(fc["filters"][hcm_i]["typed_config"])
            if "route_config" not in hcm:
                notes.append(f"{l.get('name')}: chain {ci} has no route configuration here (RDS name missing), skipped")
                continue
            for k in ("access_log", "tracing", "http_filters"):
                hcm.pop(k, None)
            hcm["http_filters"] = [ROUTER]
            hcm.setdefault("stat_prefix", "diff")
            port = free_port()
            name = f"{l.get('name') or f'listener{li}'}#{ci}"
            listeners.append({"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                              "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                              "typed_config": hcm}]}]})
            targets.append({"name": name, "port": port, "dst": chain_dst(l, fc), "route_config": hcm["route_config"],
                            "listener_port": sock_addr(l.get("address"))[1]})
    names = [c["name"] for c in res["clusters"] if c.get("name")]
    named = sorted({n for t in targets for n in route_clusters(t["route_config"])} - set(names))
    if named:
        # Envoy would answer 503 and the kernel refuse (XDS103); a backend shows which route won.
        notes.append(f"{len(named)} cluster(s) named by routes but not in the snapshot got a backend too: "
                     + ", ".join(named[:5]) + (" ..." if len(named) > 5 else ""))
    clusters = []
    for name in names + named:
        c = {"name": name}
        backends.add(c["name"])
        p = 1  # set_backend_ports, once the backends listen
        clusters.append({"name": c["name"], "type": "STATIC", "connect_timeout": "2s",
                         "load_assignment": {"cluster_name": c["name"], "endpoints": [{"lb_endpoints": [
                             {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}]}]}})
    out = {"node": {"id": "xds2bpf-diff-http", "cluster": "xds2bpf"},
           "static_resources": {"listeners": listeners, "clusters": clusters}}
    return out, targets, notes, converted


def route_clusters(rc: dict) -> set[str]:
    out = set()
    for vh in rc.get("virtual_hosts") or []:
        for r in vh.get("routes") or []:
            a = r.get("route") or {}
            if a.get("cluster"):
                out.add(a["cluster"])
            for w in (a.get("weighted_clusters") or {}).get("clusters") or []:
                out.add(w.get("name", ""))
    out.discard("")
    return out


def make_valid(envoy: str, boot: dict, path: str) -> tuple[bool, str, list[str]]:
    with open(path, "w") as fh:
        json.dump(boot, fh, indent=1)
    ok, msg = va.run_envoy(envoy, path)
    if ok:
        return True, "", []
    ok2, msg2, removed = va.envoy_without_unknown(envoy, boot, path, msg)
    if ok2:
        with open(path) as fh:
            boot.clear()
            boot.update(json.load(fh))
        return True, "", removed
    return False, msg2 or msg, removed


# ----------------------------------------------------------------------------------------------
# requests
# ----------------------------------------------------------------------------------------------


def sm_value(sm: dict) -> tuple[str | None, str | None]:
    """(a value the StringMatcher matches, one it does not)."""
    for k in ("exact", "prefix", "suffix", "contains"):
        if k in sm:
            v = sm[k]
            other = "zz-" + v + "-zz" if k == "exact" else ("zz" if k != "contains" else "zz")
            if k == "prefix":
                return v + "1", "zz" + v
            if k == "suffix":
                return "1" + v, v + "zz"
            return v, other
    if "safe_regex" in sm:
        return None, "zz-no-regex-match"
    return None, None


def header_variants(h: dict) -> list[tuple[str, str | None, str]]:
    """(name, value or None = absent, label)"""
    name = h["name"]
    out = [(name, None, "absent")]
    if "string_match" in h:
        good, bad = sm_value(h["string_match"])
    elif "exact_match" in h:
        good, bad = h["exact_match"], "zz-" + h["exact_match"]
    elif "prefix_match" in h:
        good, bad = h["prefix_match"] + "1", "zz"
    elif "suffix_match" in h:
        good, bad = "1" + h["suffix_match"], "zz-nope"
    elif "present_match" in h:
        good, bad = "1", None
    elif "range_match" in h:
        good, bad = str(int(h["range_match"].get("start", 0))), str(int(h["range_match"].get("end", 0)) + 1)
    else:
        good, bad = "1", None
    if name == ":method":  # another real method, not a token Envoy's codec refuses
        out = [(name, "GET", "absent")] if good != "GET" else []
        bad = "POST" if good != "POST" else "PUT"
    if good is not None:
        out.append((name, good, "match"))
    if bad is not None:
        out.append((name, bad, "mismatch"))
    return out


def authorities(domains: list[str], port: int) -> list[tuple[str, str]]:
    out = []
    for d in domains[:6]:
        if d == "*":
            out.append(("any-host.example", "domain *"))
            continue
        if d.startswith("*"):
            base = "x" + d[1:]
        elif d.endswith("*"):
            base = d[:-1] + "x"
        else:
            base = d
        out.append((base, "domain"))
        if base.upper() != base:
            out.append((base.upper(), "domain upper-case"))
        if re.search(r":\d+$", base):
            out.append((re.sub(r":\d+$", "", base), "domain port removed"))
        elif port:
            out.append((f"{base}:{port}", "domain port added"))
            out.append((f"{base}:{port + 1}", "domain other port"))
    return out


def path_variants(match: dict) -> list[tuple[str, str]]:
    out = []
    if "prefix" in match:
        p = match["prefix"]
        out += [(p or "/", "prefix"), ((p or "/") + "x", "prefix + suffix")]
        if len(p) > 1:
            out.append((p[:-1], "prefix minus last byte"))
        if p.upper() != p:
            out.append((p.upper(), "prefix upper-case"))
    elif "path" in match:
        p = match["path"]
        out += [(p, "exact path"), (p + "/", "exact path + /")]
        if p.upper() != p:
            out.append((p.upper(), "exact path upper-case"))
    elif "path_separated_prefix" in match:
        p = match["path_separated_prefix"]
        out += [(p, "separated prefix"), (p + "/x", "separated prefix + /x"), (p + "x", "separated prefix + x"),
                (p + "?q=1", "separated prefix + query")]
    elif "safe_regex" in match:
        out.append(("/", "regex route, /"))
    else:
        out.append(("/", "other matcher, /"))
    return out


def query_variants(match: dict) -> list[tuple[str, str]]:
    out = []
    for q in (match.get("query_parameters") or [])[:2]:
        name = q["name"]
        sm = q.get("string_match") or {}
        good, bad = sm_value(sm) if sm else ("1", None)
        if q.get("present_match"):
            good = "1"
        if good is not None:
            out.append((f"?{name}={good}", "query match"))
        if bad is not None:
            out.append((f"?{name}={bad}", "query mismatch"))
        out.append(("", "query absent"))
    return out


def path_forms(p: str) -> list[tuple[str, str]]:
    """Paths the connection manager's normalisation options (normalize_path, merge_slashes,
    path_with_escaped_slashes_action) change, built on a route's path ``p``."""
    base = p.rstrip("/") or ""
    head, _, tail = p[1:].partition("/")
    letters = [i for i, c in enumerate(p) if c.isalpha()]
    out = [
        ("/" + p.lstrip("/") if p.startswith("//") else "/" + p, "double slash"),
        (base + "//x", "double slash inside"),
        (base + "/./x", "dot segment"),
        ("/." + p, "dot segment at start"),
        (base + "/x/%2e%2e/y", "escaped dot-dot segment"),
        (base + "/x/..", "dot-dot at end"),
        (base + "%2fx", "percent-encoded slash, lower case"),
        (base + "%5Cx", "percent-encoded backslash"),
        (base + "\\x", "backslash"),
        (base + '"x', "byte normalize_path escapes"),
        (base + "/%00", "percent-encoded NUL"),
        (base + "/%zz%", "invalid percent escape"),
        (base + "/%20%25", "percent escape kept"),
        (base + "/x/../..%2F..", "dot-dot with escaped slash"),
        (base + "/a?b=/../c", "dot-dot in query"),
        ("/%%30%30" + p, "nested escape"),
    ]
    if letters:
        i = letters[0]
        out.append((p[:i] + "%%%02X" % ord(p[i]) + p[i + 1:], "percent-encoded letter"))
        out.append((p[:i] + "%%%02x" % ord(p[i]) + p[i + 1:], "percent-encoded letter, lower-case hex"))
    if head and tail:
        out.append(("/" + head + "/x/../" + tail, "dot-dot inside the route's path"))
    return out


def generate(targets: list[dict]) -> list[dict]:
    reqs = []
    for t in targets:
        rc = t["route_config"]
        for vh in (rc.get("virtual_hosts") or [])[:12]:
            auths = authorities(vh.get("domains") or [], t["listener_port"])
            main_auth = auths[0][0] if auths else "any-host.example"
            for a, label in auths:
                reqs.append(dict(t=t, authority=a, target="/", headers=[], cls=label))
            for r in (vh.get("routes") or [])[:20]:
                m = r.get("match") or {}
                base_headers = []
                for h in m.get("headers") or []:
                    for hn, hv, hl in header_variants(h):
                        if hl == "match":
                            base_headers.append((hn, hv))
                for p, pl in path_variants(m):
                    reqs.append(dict(t=t, authority=main_auth, target=p, headers=list(base_headers), cls=pl))
                    for q, ql in query_variants(m):
                        reqs.append(dict(t=t, authority=main_auth, target=p + q, headers=list(base_headers), cls=ql))
                p0 = path_variants(m)[0][0]
                for h in m.get("headers") or []:
                    for hn, hv, hl in header_variants(h):
                        hs = [(n, v) for n, v in base_headers if n != hn]
                        if hv is not None:
                            hs.append((hn, hv))
                        reqs.append(dict(t=t, authority=main_auth, target=p0, headers=hs, cls=f"header {hl}"))
                        if hv is not None and not hn.startswith(":"):
                            # the header twice: Envoy matches each line, or their join for an inline header
                            other = "zz-other" if hl == "match" else "7"
                            hs2 = [(n, v) for n, v in base_headers if n != hn]
                            reqs.append(dict(t=t, authority=main_auth, target=p0, headers=hs2 + [(hn, other), (hn, hv)],
                                             cls=f"header {hl}, repeated"))
                            reqs.append(dict(t=t, authority=main_auth, target=p0, headers=hs2 + [(hn, hv), (hn, hv)],
                                             cls=f"header {hl}, twice"))
                # malformed heads, against this route's first path
                p0s = p0 if p0.startswith("/") else "/" + p0
                reqs += [
                    dict(t=t, authority=main_auth, target=p0s.rstrip("/") + "/b#frag", headers=list(base_headers), cls="malformed: fragment in path"),
                    dict(t=t, authority=main_auth, target=p0s.lstrip("/") or "b", headers=list(base_headers), cls="malformed: target without /"),
                    dict(t=t, authority=main_auth, target=f"http://{main_auth}{p0s}", headers=list(base_headers), cls="absolute-form target"),
                    dict(t=t, authority=main_auth, target=p0s, headers=list(base_headers) + [("bad name", "x")], cls="malformed: header name with space"),
                    dict(t=t, authority=main_auth + " x", target=p0s, headers=list(base_headers), cls="malformed: host with space"),
                    dict(t=t, authority=main_auth, target="/x/.." + p0s, headers=list(base_headers), cls="dot-dot segment"),
                    dict(t=t, authority=main_auth, target=p0s, headers=[(n, v) for n, v in base_headers if n != ":method"]
                         + [(":method", "FOO-BAR")], cls="malformed: unknown method"),
                    dict(t=t, authority=main_auth, target="/" + p0s[1:].replace("/", "%2F", 1) if "/" in p0s[1:] else p0s + "%2Fx",
                         headers=list(base_headers), cls="percent-encoded slash"),
                ] + [dict(t=t, authority=main_auth, target=tgt, headers=list(base_headers), cls=c) for tgt, c in path_forms(p0s)]
                bh = list(base_headers)
                reqs += [
                    dict(t=t, authority=main_auth, target=p0s, headers=bh, version="HTTP/1.0", cls="malformed: HTTP/1.0 (426)"),
                    dict(t=t, authority=main_auth, target=p0s, headers=bh, version="", cls="malformed: no version (426)"),
                    dict(t=t, authority=main_auth, target=p0s, headers=bh, version="HTTX/1.1", cls="malformed: bad version"),
                    dict(t=t, authority=main_auth, target=p0s, headers=bh, nohost=True, cls="malformed: no Host"),
                    dict(t=t, authority=main_auth, target=p0s + "\x01", headers=bh, cls="malformed: control byte in path"),
                    dict(t=t, authority=main_auth, target=p0s.rstrip("/") + "/a b", headers=bh, cls="malformed: space in path"),
                    dict(t=t, authority=main_auth, target=p0s.rstrip("/") + "/\x7f", headers=bh, cls="malformed: DEL in path"),
                    dict(t=t, authority=main_auth, target=p0s, headers=bh + [("x-ctl", "a\x01b")], cls="malformed: control byte in header value"),
                    dict(t=t, authority=main_auth, target=p0s, headers=bh + [("bad(n", "x")], cls="malformed: separator in header name"),
                    dict(t=t, authority=main_auth + "/x", target=p0s, headers=bh, cls="malformed: host with /"),
                    # Envoy joins Host lines as an inline header: an empty one adds nothing, no "," before a value
                    dict(t=t, authority=main_auth, target=p0s, headers=[("host", ""), ("host", main_auth)] + bh, nohost=True,
                         cls="empty Host line, then the host"),
                    dict(t=t, authority=main_auth, target=p0s, headers=bh + [("host", "")], cls="the host, then an empty Host line"),
                    dict(t=t, authority=main_auth, target=p0s, headers=bh + [("content-length", "0"), ("content-length", "0")],
                         cls="malformed: duplicate content-length"),
                    dict(t=t, authority=main_auth, target=p0s, headers=bh + [("content-length", "+0")], cls="malformed: content-length not a number"),
                    dict(t=t, authority=main_auth, target=p0s, headers=bh + [("transfer-encoding", "gzip")], cls="malformed: transfer-encoding not chunked (501)"),
                    dict(t=t, authority=main_auth, target=p0s, headers=bh + [(f"x-h{i}", "v") for i in range(101)], cls="oversized: over 100 headers (431)"),
                    dict(t=t, authority=main_auth, target=p0s, headers=bh + [("x-big", "y" * 61500)], cls="oversized: head over 60 KiB (431)"),
                    dict(t=t, authority=main_auth, target=f"ftp://{main_auth}{p0s}", headers=bh, cls="malformed: absolute form, scheme not http(s)"),
                    dict(t=t, authority="other.example", target=f"http://user@{main_auth}{p0s}", headers=bh, cls="absolute-form target with userinfo"),
                    dict(t=t, authority=main_auth, target="*", headers=[(n, v) for n, v in bh if n != ":method"] + [(":method", "OPTIONS")],
                         cls="asterisk form (OPTIONS *)"),
                    dict(t=t, authority=main_auth, target="*", headers=bh, cls="malformed: * with GET"),
                ]
    # pseudo-headers (":method", ":authority", ":path") are parts of the request line / Host in
    # HTTP/1; others (":scheme") cannot be sent and are dropped
    for r in reqs:
        r.setdefault("method", "GET")
        r.setdefault("version", "HTTP/1.1")
        r.setdefault("nohost", False)
        keep = []
        for n, v in r["headers"]:
            if n == ":method":
                r["method"] = v
            elif n == ":authority":
                r["authority"] = v
            elif n == ":path":
                r["target"] = v
            elif not n.startswith(":"):
                keep.append((n, v))
        r["headers"] = keep
    # dedupe
    seen, out = set(), []
    for r in reqs:
        key = (r["t"]["name"], r["method"], r["authority"], r["target"], tuple(r["headers"]), r["version"], r["nohost"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


# ----------------------------------------------------------------------------------------------
# asking
# ----------------------------------------------------------------------------------------------


def render_head(req: dict) -> bytes:
    version = req.get("version", "HTTP/1.1")
    head = f"{req['method']} {req['target']}{' ' + version if version else ''}\r\n"
    if not req.get("nohost"):
        head += f"Host: {req['authority']}\r\n"
    for n, v in req["headers"]:
        head += f"{n}: {v}\r\n"
    head += "Connection: close\r\n\r\n"
    return head.encode("latin-1")


def classify(data: bytes, err: str | None) -> str:
    if err:
        return err
    if not data:
        return "closed"
    text = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = text.split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        return "garbage"
    grpc = None
    for l in lines[1:]:
        k, _, v = l.partition(":")
        if k.strip().lower() == HEADER:
            return f"cluster {v.strip()}"
        if k.strip().lower() == "grpc-status":
            grpc = v.strip()
    if grpc is not None and m.group(1) == "200":
        # a local reply to a gRPC request (content-type application/grpc): HTTP 200 and the
        # status mapped to a gRPC one (Grpc::Utility::httpToGrpcStatus)
        return f"grpc-status {grpc}"
    return f"status {m.group(1)}"


async def _ask_one(port: int, head: bytes, timeout: float) -> str:
    data = b""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (OSError, asyncio.TimeoutError) as err:
        return f"error {type(err).__name__}"
    try:
        try:
            writer.write(head)
            await writer.drain()
        except OSError:
            pass  # Envoy may answer (431) and close before reading an oversized head
        while b"\r\n\r\n" not in data:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            data += chunk
    except (OSError, asyncio.TimeoutError) as err:
        if not data:
            return f"error {type(err).__name__}"
    finally:
        writer.close()
    return classify(data, None)


def ask_envoy_all(reqs: list[dict], concurrency: int = 32, timeout: float = 10.0) -> list[str]:
    """Every request through Envoy, ``concurrency`` connections at a time, answers in order."""
    async def run():
        sem = asyncio.Semaphore(concurrency)

        async def one(r):
            async with sem:
                return await _ask_one(r["t"]["port"], render_head(r), timeout)
        return await asyncio.gather(*(one(r) for r in reqs))
    return list(asyncio.run(run()))


def ask_envoy(port: int, req: dict, timeout: float = 5.0) -> str:
    return asyncio.run(_ask_one(port, render_head(req), timeout))


def grpc_status(http: int) -> int:
    """Envoy's Grpc::Utility::httpToGrpcStatus."""
    return {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}.get(http, 2)


def explain_answer(j: dict) -> tuple[set[str], str]:
    """(acceptable answers, summary) of one explanation (weighted clusters: every cluster with a
    non-zero weight)."""
    steps = j.get("steps") or []
    summary = " / ".join(f"{s.get('stage')}: {s.get('decision')}" for s in steps if s.get("stage") != "note")
    out = j.get("outcome")
    action = next((s["decision"] for s in steps if s.get("stage") == "action"), "")
    if out == "http_response":
        codes = [m for s in steps for m in re.findall(r"\b([1-5]\d\d)\b", s.get("decision", ""))]
        return ({f"status {codes[-1]}"} if codes else {"status ?"}), summary
    if action.startswith("weighted"):
        names = re.findall(r'"([^"]+)" (\d+)', action)
        return {f"cluster {n}" for n, w in names if int(w) > 0}, summary
    if j.get("cluster"):
        return {f"cluster {j['cluster']}"}, summary
    m = re.match(r'cluster "([^"]+)"', action)
    if m:
        return {f"cluster {m.group(1)}"}, summary
    return {f"{out}"}, summary


def explain_batch(xds2bpf: str, files: list[str], lines: list[dict], unsupported: str, extra: list[str]) -> list[dict | None]:
    """`xds2bpf explain --requests`: one process for many requests."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
        for l in lines:
            fh.write(json.dumps(l) + "\n")
        path = fh.name
    try:
        p = subprocess.run([xds2bpf, "explain", *extra, *files, "--unsupported", unsupported, "--requests", path],
                           capture_output=True, text=True, timeout=1800)
    finally:
        os.unlink(path)
    out = []
    for line in p.stdout.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append(None)
    if len(out) != len(lines):
        raise RuntimeError(f"explain --requests answered {len(out)} of {len(lines)} (exit {p.returncode}): "
                           + (p.stderr.strip().splitlines() or [""])[-1][:300])
    return out


def explain_line(req: dict, random_value: int) -> dict:
    return {"dst": req["t"]["dst"], "authority": req["authority"], "path": req["target"], "method": req["method"],
            "headers": [list(h) for h in req["headers"]], "version": req.get("version", "HTTP/1.1"),
            "no_host": bool(req.get("nohost")), "random": random_value}


RVS = (29, 30, 50, 99, 12345)


def ask_xds2bpf_all(xds2bpf: str, files: list[str], reqs: list[dict], unsupported: str,
                    extra: list[str], info: dict | None = None) -> list[tuple[set[str], str]]:
    """(acceptable answers, summary) per request. A route chosen by a runtime fraction depends on
    the random value, as in Envoy: the answers for several random values are all acceptable.
    ``info`` gets ``again`` (the requests asked with RVS too) and ``outcomes`` (explain's)."""
    first = explain_batch(xds2bpf, files, [explain_line(r, 0) for r in reqs], unsupported, extra)
    answers = [explain_answer(j) if j is not None else ({"explain: no answer"}, "") for j in first]
    again = [i for i, (_, summary) in enumerate(answers) if "runtime_fraction" in summary]
    if info is not None:
        info["again"] = again
        info["outcomes"] = [(j or {}).get("outcome") for j in first]
    if again:
        rvs = RVS
        more = explain_batch(xds2bpf, files, [explain_line(reqs[i], rv) for i in again for rv in rvs], unsupported, extra)
        for k, i in enumerate(again):
            for j in more[k * len(rvs):(k + 1) * len(rvs)]:
                if j is not None:
                    answers[i][0].update(explain_answer(j)[0])
    return answers


def bpf_skip_reason(xds2bpf: str) -> str | None:
    """Why the BPF engine cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root (BPF_PROG_TEST_RUN needs CAP_BPF and CAP_NET_ADMIN)"
    drv = os.environ.get("XDS2BPF_TESTRUN") or os.path.join(ROOT, "bpf-runtime/testrun/x2b-testrun")
    if not os.access(drv, os.X_OK):
        return f"no x2b-testrun driver ({drv}; `make testrun`)"
    return None


def ask_bpf_all(xds2bpf: str, files: list[str], reqs: list[dict], unsupported: str, extra: list[str],
                again: list[int]) -> list[dict]:
    """`xds2bpf explain --requests FILE --engine bpf`: the compiled matcher decides every request in
    the kernel (BPF_PROG_TEST_RUN), at random value 0 and, for the requests explain was asked
    again (runtime fractions), at RVS too. Per request: {answers (weighted: every cluster with a
    non-zero weight), kinds, refused, fallback, note}."""
    lines = [explain_line(r, 0) for r in reqs] + [explain_line(reqs[i], rv) for i in again for rv in RVS]
    got = explain_batch(xds2bpf, files, lines, unsupported, ["--engine", "bpf", *extra])
    out = []
    for j in got[:len(reqs)]:
        j = j or {"answer": "bpf: no answer", "kind": "none"}
        out.append({"answers": set(j.get("choices") or [j.get("answer", "?")]), "kinds": {j.get("kind", "?")},
                    "refused": bool(j.get("refused")), "fallback": j.get("answer") == "l4-fallback",
                    "note": j.get("note", "")})
    for k, i in enumerate(again):
        for j in got[len(reqs) + k * len(RVS):len(reqs) + (k + 1) * len(RVS)]:
            if j is not None:
                out[i]["answers"].update(j.get("choices") or [j.get("answer", "?")])
                out[i]["kinds"].add(j.get("kind", "?"))
    return out


def bpf_verdicts(b: dict, envoy: str, want: set[str], explain_outcome: str | None, truncated: bool,
                 summary: str = "") -> tuple[str, str]:
    """(BPF vs Envoy, BPF vs explain): agree, refused (the kernel refuses the connection where
    explain says it does: a path Envoy normalises, which the kernel does not rewrite), fallback (a
    head over X2B_HEAD_MAX on a table that routes every request alike: the kernel takes the
    listener's L4 fallback, docs/semantics.md), truncated (a head over X2B_HEAD_MAX elsewhere: the
    kernel refuses it where Envoy routes it, never the other way round) or disagree."""
    answers = set(b["answers"])
    if envoy.startswith("grpc-status "):
        answers |= {f"grpc-status {grpc_status(int(w.split()[1]))}" for w in answers
                    if w.startswith("status ") and w.split()[1].isdigit()}
    if b["fallback"] and truncated:
        return "fallback", "fallback"
    if truncated and b["kinds"] == {"error"} and b["refused"]:
        # fail closed: refused whatever Envoy answers; only a request Envoy forwards counts apart
        forwarded = envoy.startswith("cluster ")
        return ("truncated" if forwarded else "agree"), ("truncated" if any(w.startswith("cluster ") for w in want) else "agree")
    vs_envoy = "agree" if envoy in answers else "disagree"
    if b["kinds"] == {"bad_request"} and (explain_outcome == "refused" or "refuses the connection" in summary):
        return ("agree" if vs_envoy == "agree" else "refused"), "agree"
    base = {w for w in want if not w.startswith("grpc-status ")}
    vs_explain = "agree" if set(b["answers"]) == base else "disagree"
    return vs_envoy, vs_explain


class Setup(Exception):
    pass


# X2B_HEAD_MAX (bpf-runtime/abi/x2b_abi.h): the request head bytes the kernel sees
HEAD_MAX = 4096


def stop(procs: list[subprocess.Popen]):
    for p in reversed(procs):
        if p.poll() is None:
            if p.stdin is not None:
                try:
                    p.stdin.close()
                except OSError:
                    pass
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def ads_bootstrap(node: dict, port: int) -> dict:
    """Envoy's bootstrap with only the ADS cluster (Tests/xds/selftest.sh's shape): listeners and
    clusters come over ADS (state of the world)."""
    return {"node": node,
            "dynamic_resources": {"ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                                                 "grpc_services": [{"envoy_grpc": {"cluster_name": "xds2bpf-ads"}}]},
                                  "lds_config": {"ads": {}, "resource_api_version": "V3"},
                                  "cds_config": {"ads": {}, "resource_api_version": "V3"}},
            "static_resources": {"clusters": [{
                "name": "xds2bpf-ads", "type": "STATIC", "connect_timeout": "1s",
                "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": x.TYPE_PREFIX + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}}}},
                "load_assignment": {"cluster_name": "xds2bpf-ads", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}]}}


def wait_acks(log: str, types: list[str], deadline: float, procs: list[subprocess.Popen]) -> set[str]:
    """Waits until Envoy ACKed every type in the ADS server's log; returns the types not ACKed."""
    pending = set(types)
    while pending and time.time() < deadline and all(p.poll() is None for p in procs):
        try:
            with open(log) as fh:
                for line in fh:
                    try:
                        j = json.loads(line)
                    except ValueError:
                        continue
                    if j.get("dir") == "request" and j.get("kind") == "ack":
                        pending = {t for t in pending if not j.get("type_url", "").endswith("." + t)}
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    return pending


def start_envoy(envoy: str, boot: dict, bpath: str, tmp: str, via: str, targets: list[dict]) -> list[subprocess.Popen]:
    """Envoy serving ``boot``: as its bootstrap, or (``via`` ads) over ADS from
    Tests/xds/ads_server.py, which serves the same listeners and clusters; returns the processes
    once every listener accepts connections (ADS: once Envoy ACKed listeners and clusters)."""
    procs: list[subprocess.Popen] = []
    cfg = bpath
    try:
        if via == "ads":
            snap = os.path.join(tmp, "ads-snapshot.json")
            with open(snap, "w") as fh:
                json.dump({"static_resources": boot["static_resources"]}, fh, indent=1)
            alog = os.path.join(tmp, "ads.jsonl")
            if os.path.exists(alog):
                os.unlink(alog)
            ads = subprocess.Popen(["timeout", "1800", sys.executable, os.path.join(ROOT, "Tests/xds/ads_server.py"), snap,
                                    "--port", "0", "--log", alog], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True)
            procs.append(ads)
            line = ads.stdout.readline()
            try:
                port = json.loads(line)["port"]
            except (ValueError, KeyError):
                raise Setup(f"diff-http: the ADS server did not start ({line.strip()[:200]})")
            cfg = os.path.join(tmp, "bootstrap-ads.json")
            with open(cfg, "w") as fh:
                json.dump(ads_bootstrap(boot["node"], port), fh, indent=1)
        log = open(os.path.join(tmp, f"envoy-{via}.log"), "w")
        procs.append(subprocess.Popen(["timeout", "1800", envoy, "-c", cfg, "--disable-hot-restart", "--concurrency", "2",
                                       "-l", "warning", "--use-dynamic-base-id"], stdout=log, stderr=subprocess.STDOUT))
        deadline = time.time() + 60
        if via == "ads":
            missing = wait_acks(alog, ["Listener", "Cluster"], deadline, procs)
            if missing:
                raise Setup(f"diff-http: Envoy did not ACK {', '.join(sorted(missing))} over ADS (see {tmp})")
        pending = {t["port"] for t in targets}
        while pending and time.time() < deadline:
            for p in list(pending):
                try:
                    socket.create_connection(("127.0.0.1", p), timeout=0.5).close()
                    pending.discard(p)
                except OSError:
                    pass
            if procs[-1].poll() is not None:
                break
            time.sleep(0.1)
        if pending:
            raise Setup(f"diff-http: Envoy did not open its listeners (see {tmp}/envoy-{via}.log)")
        time.sleep(0.3)  # clusters initialised
        return procs
    except BaseException:
        stop(procs)
        raise


def run(files: list[str], xds2bpf: str, envoy: str, seed: int, max_requests: int | None = None,
        kind: str | None = None, keep: str | None = None, concurrency: int = 32,
        extra_requests=None, while_running=None, bpf: bool = False, via: str = "bootstrap") -> dict:
    """One snapshot: Envoy serves it, requests are generated (a seeded sample of ``max_requests``
    when given) and asked of both (``bpf``: and of the compiled matcher in the kernel; ``via``:
    Envoy gets the snapshot as its bootstrap, over ADS from Tests/xds/ads_server.py, or both, one
    after the other, whose answers must be the same). ``extra_requests(targets)`` adds requests of its own;
    ``while_running(result)`` runs before Envoy stops (more questions to the same Envoy).
    Returns {records, notes, total, targets}; raises Setup on setup errors."""
    rng = random.Random(seed)
    x.load_protos()
    tmp = keep or tempfile.mkdtemp(prefix="xds2bpf-diff-http-")
    os.makedirs(tmp, exist_ok=True)
    backends = Backends()
    procs: list[subprocess.Popen] = []
    try:
        boot, targets, notes, converted = build(files, backends, kind)
        if converted is not None or kind:
            files = [os.path.join(tmp, "snapshot-for-xds2bpf.json")]
            with open(files[0], "w") as fh:
                json.dump(converted, fh, indent=1)
            notes.append("xds2bpf is asked about the converted snapshot (synthetic listeners)")
        if not targets:
            raise Setup("diff-http: no HTTP listener with a route configuration in the snapshot")
        bpath = os.path.join(tmp, "bootstrap.json")
        ok, msg, removed = make_valid(envoy, boot, bpath)
        if removed:
            notes.append("removed for Envoy: " + ", ".join(removed))
        if not ok:
            raise Setup(f"diff-http: Envoy rejects the generated bootstrap: {msg}")
        set_backend_ports(boot, backends.start())
        with open(bpath, "w") as fh:
            json.dump(boot, fh, indent=1)
        procs += start_envoy(envoy, boot, bpath, tmp, "ads" if via == "ads" else "bootstrap", targets)
        unsupported = "default"
        chk = subprocess.run([xds2bpf, "check", "--diagnostics", "json", *files], capture_output=True, text=True,
                             timeout=300)
        resolve = sorted(set(re.findall(r"--resolve (\S+)=IP", chk.stdout)))
        if resolve:
            # host names of DNS clusters: any address does, the backends stand in for them
            extra = [a for h in resolve for a in ("--resolve", f"{h}=192.0.2.10")]
            notes.append(f"host names given to xds2bpf: {', '.join(resolve)} (--resolve NAME=192.0.2.10)")
            chk = subprocess.run([xds2bpf, "check", "--diagnostics", "json", *extra, *files], capture_output=True,
                                 text=True, timeout=300)
        else:
            extra = []
        if chk.returncode == 1:
            try:
                ids = sorted({d["id"] for d in json.loads(chk.stdout)["diagnostics"] if d["severity"] == "error"})
            except (ValueError, KeyError):
                ids = []
            unsupported = "warn"
            notes.append(f"xds2bpf rejects the snapshot ({', '.join(ids)}); explain runs with --unsupported=warn, "
                         "so what it does not support is ignored there")
        reqs = generate(targets)
        total = len(reqs)
        if max_requests is not None and len(reqs) > max_requests:
            reqs = rng.sample(reqs, max_requests)
        if extra_requests is not None:
            reqs += extra_requests(targets)
        envoy_answers = ask_envoy_all(reqs, concurrency)
        ads_answers = None
        if via == "both":
            # the same snapshot again, over ADS, on the same ports
            stop(procs)
            procs.clear()
            procs += start_envoy(envoy, boot, bpath, tmp, "ads", targets)
            ads_answers = ask_envoy_all(reqs, concurrency)
        info: dict = {}
        ours = ask_xds2bpf_all(xds2bpf, files, reqs, unsupported, extra, info)
        kernel = ask_bpf_all(xds2bpf, files, reqs, unsupported, extra, info["again"]) if bpf else None
        records = []
        for i, (r, e, (want, summary)) in enumerate(zip(reqs, envoy_answers, ours)):
            base = set(want)
            if e.startswith("grpc-status "):
                want = want | {f"grpc-status {grpc_status(int(w.split()[1]))}" for w in want
                               if w.startswith("status ") and w.split()[1].isdigit()}
            rec = {"listener": r["t"]["name"], "dst": r["t"]["dst"], "method": r["method"],
                   "authority": r["authority"], "target": r["target"], "version": r["version"],
                   "nohost": r["nohost"], "headers": r["headers"], "class": r["cls"], "envoy": e,
                   "xds2bpf": sorted(want), "agree": e in want, "summary": summary[:300]}
            if ads_answers is not None:
                a = ads_answers[i]
                # a weighted pick is Envoy's random choice: both must be acceptable answers
                rec["envoy_ads"] = a
                rec["ads_agree"] = a == e or (a in want and e in want)
            if kernel is not None:
                b = kernel[i]
                truncated = len(render_head(r)) > HEAD_MAX
                rec["bpf"] = sorted(b["answers"])
                rec["bpf_kind"] = "|".join(sorted(b["kinds"]))
                rec["bpf_envoy"], rec["bpf_explain"] = bpf_verdicts(b, e, base, info["outcomes"][i], truncated,
                                                                  summary)
            records.append(rec)
        res = {"records": records, "notes": notes, "total": total, "targets": targets, "files": files,
               "unsupported": unsupported, "extra": extra, "via": via}
        if while_running is not None:
            res["while_running"] = while_running(res)
        return res
    finally:
        stop(procs)
        backends.stop()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def describe(rec: dict) -> str:
    hs = "".join(f" -H '{n}: {v[:40]}'" for n, v in rec["headers"][:6]) + (" ..." if len(rec["headers"]) > 6 else "")
    hs += (f" version {rec['version']!r}" if rec["version"] != "HTTP/1.1" else "") + (" no Host" if rec["nohost"] else "")
    return f"[{rec['class']}] {rec['listener']} {rec['method']} {rec['target'][:120]!r} Host: {rec['authority'][:80]!r}{hs}"


def report(res: dict, seed: int, out=sys.stdout) -> int:
    """Prints the disagreements and the counts per class and per engine; returns the number of
    disagreements (Envoy vs explain, BPF vs Envoy or explain, bootstrap vs ADS)."""
    stats: dict[str, list[int]] = {}
    bpf_on = any("bpf" in r for r in res["records"])
    for rec in res["records"]:
        s = stats.setdefault(rec["class"], [0, 0, 0])
        s[0 if rec["agree"] else 1] += 1
        if not rec["agree"]:
            print(f"DIFF {describe(rec)}: Envoy {rec['envoy']}, xds2bpf {' | '.join(rec['xds2bpf'])}  ({rec['summary'][:200]})",
                  file=out)
        if rec.get("bpf_envoy") == "disagree" or rec.get("bpf_explain") == "disagree":
            s[2] += 1
            print(f"DIFF-BPF {describe(rec)}: Envoy {rec['envoy']}, explain {' | '.join(rec['xds2bpf'])}, "
                  f"bpf {' | '.join(rec['bpf'])} ({rec['bpf_kind']})", file=out)
        if rec.get("ads_agree") is False:
            print(f"DIFF-ADS {describe(rec)}: Envoy (bootstrap) {rec['envoy']}, Envoy (ADS) {rec['envoy_ads']}", file=out)
    print("\nclass                                   agree  disagree" + ("  bpf-disagree" if bpf_on else ""), file=out)
    for cls in sorted(stats):
        print(f"{cls:40} {stats[cls][0]:5}  {stats[cls][1]:8}" + (f"  {stats[cls][2]:12}" if bpf_on else ""), file=out)
    n_ag = sum(v[0] for v in stats.values())
    n_dis = sum(v[1] for v in stats.values())
    for n in res["notes"]:
        print(f"note: {n}", file=out)
    bad = n_dis
    via = res.get("via", "bootstrap")
    print(f"diff-http: {len(res['records'])} requests (of {res['total']} generated), Envoy ({via}) vs explain: "
          f"{n_ag} agree, {n_dis} disagree; seed {seed}", file=out)
    if bpf_on:
        for key, name in (("bpf_envoy", "Envoy"), ("bpf_explain", "explain")):
            c: dict[str, int] = {}
            for r in res["records"]:
                c[r[key]] = c.get(r[key], 0) + 1
            bad += c.get("disagree", 0)
            print(f"diff-http: bpf vs {name}: {c.get('agree', 0)} agree, {c.get('disagree', 0)} disagree, "
                  f"{c.get('refused', 0)} refused in the kernel (a path Envoy normalises), "
                  f"{c.get('fallback', 0)} L4 fallback (head over {HEAD_MAX} bytes, a table routing every request alike), "
                  f"{c.get('truncated', 0)} refused by the kernel where the other forwards (head over {HEAD_MAX} bytes)",
                  file=out)
    elif res.get("bpf_skipped"):
        print(f"diff-http: bpf engine skipped: {res['bpf_skipped']}", file=out)
    if via == "both":
        n_ads = sum(1 for r in res["records"] if r.get("ads_agree"))
        bad += len(res["records"]) - n_ads
        print(f"diff-http: Envoy over ADS vs Envoy from the bootstrap: {n_ads} agree, {len(res['records']) - n_ads} disagree",
              file=out)
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("snapshot", nargs="+")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--max", type=int, default=400, help="at most this many requests (a seeded sample; 0: all)")
    ap.add_argument("--out", help="JSON lines: every request with both answers")
    ap.add_argument("--kind", choices=["listener", "route", "cluster", "endpoint"],
                    help="type of untyped resources (a bare route configuration: --kind route)")
    ap.add_argument("--keep", help="keep the bootstrap and Envoy's log in this directory")
    ap.add_argument("--via", choices=["bootstrap", "ads", "both"], default="bootstrap",
                    help="how Envoy gets the snapshot: its bootstrap, over ADS from Tests/xds/ads_server.py, "
                         "or both (one after the other; their answers must agree)")
    ap.add_argument("--engines", default="explain,bpf",
                    help="xds2bpf engines asked: explain, bpf (the compiled matcher in the kernel; root, "
                         "skipped with the reason otherwise)")
    args = ap.parse_args()
    xds2bpf = os.environ.get("XDS2BPF")
    envoy = os.environ.get("ENVOY") or os.path.join(ROOT, ".venv/bin/envoy")
    if not xds2bpf or not os.access(xds2bpf, os.X_OK):
        print("diff-http: set XDS2BPF to the compiler binary", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    engines = set(args.engines.split(","))
    skip = bpf_skip_reason(xds2bpf) if "bpf" in engines else "not asked (--engines)"
    if skip and "bpf" in engines:
        print(f"diff-http: bpf engine skipped: {skip}", file=sys.stderr)
    try:
        res = run(args.snapshot, xds2bpf, envoy, seed, args.max or None, args.kind, args.keep, bpf=skip is None,
                  via=args.via)
        res["bpf_skipped"] = skip
    except Setup as err:
        print(str(err), file=sys.stderr)
        return 2
    if args.out:
        with open(args.out, "w") as out:
            for rec in res["records"]:
                out.write(json.dumps(rec) + "\n")
    return 1 if report(res, seed) else 0


if __name__ == "__main__":
    sys.exit(main())
