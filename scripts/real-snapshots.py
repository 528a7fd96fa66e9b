#!/usr/bin/env python3
"""Run `xds2bpf check` over the real xDS snapshots that other projects keep in their test data,
and summarise how many it accepts and why it rejects the others (docs/real-snapshots.md).

Why: fixtures and the small shared corpus say little about what control planes really produce;
Envoy Gateway, Envoy's examples, Istio, Kuma and kgateway check in hundreds of generated xDS
outputs. This measures xds2bpf on all of them, repeatably, from git mirrors at recorded commits.

Cases, from each mirror's HEAD (a file, or a directory whose files form one snapshot; named
<source>/<kind>/<name> in the shared corpus's layout):
  envoy-gateway   xds-ir/<case>/: internal/xds/translator/testdata/out/{,extension-}xds-ir/<case>.{listeners,
                  routes,clusters,endpoints}.yaml (extension ones prefixed `extension--`); egctl/: files in
                  internal/cmd/egctl/testdata/{translate,config}/out with envoy.admin.v3 dumps, EnvoyProxy
                  translations (starting envoyProxyForGatewayClass) left out; bootstrap/: .../bootstrap/testdata/render
  envoy-examples  every .yaml/.yml/.json with static_resources, dynamic_resources or a typed envoy.config resource
  istio           configdump/: istioctl/pkg/**/testdata files with envoy.admin.v3 or envoy.service.status.v3;
                  bootstrap/: pkg/bootstrap/testdata/*_golden.json; other/: the rest with static_resources, no {{
  kuma            per-type/<policy>__<case>/: policy testdata <case>.{listeners,clusters,routes,endpoints}.golden.yaml;
                  resources/: other policy goldens starting `resources:` + pkg/xds/generator/testdata/*/*envoy-config
                  .golden.yaml; bare/: the remaining policy goldens (.secrets excepted); inspect/: test/e2e_env/
                  universal/envoyconfig/testdata/**/*.golden.json; bootstrap/: pkg/xds/bootstrap/testdata/*.golden.yaml
  kgateway        outputs/: .../translator/gateway/testutils/outputs/**.yaml with a top-level `Listeners:`;
                  bootstrap/: .yaml with static_resources outside helm templates/
Envoy's own configs/ directory is left out (the envoyproxy/envoy repository is too large to mirror here).

Each case runs `xds2bpf check --diagnostics json FILES...` (60 s timeout). Exit 0 is accepted,
1 rejected; a timeout, exit 3 (internal error) or >= 128 (signal) is a crash, exit 2 a usage
error, each listed with the command that reproduces it. Rejections whose errors are all XDS005
(unknown shape) or XDS008 (empty input) are inputs that are not a snapshot, counted apart.

  nice -n 5 python3 scripts/real-snapshots.py --xds2bpf .build/release/xds2bpf \\
      --mirror envoy-gateway=GITDIR --mirror envoy-examples=GITDIR --mirror istio=GITDIR \\
      --mirror kuma=GITDIR --mirror kgateway=GITDIR --out docs/real-snapshots.md --json results.json
GITDIR: a clone or bare mirror of envoyproxy/gateway, envoyproxy/examples, istio/istio, kumahq/kuma,
kgateway-dev/kgateway. Exit 1 if any case crashed, hung or hit an internal or usage error.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

PROG = "real-snapshots"
SOURCES = ["envoy-gateway", "envoy-examples", "istio", "kuma", "kgateway"]
REPOS = {"envoy-gateway": "envoyproxy/gateway", "envoy-examples": "envoyproxy/examples",
         "istio": "istio/istio", "kuma": "kumahq/kuma", "kgateway": "kgateway-dev/kgateway"}
TIMEOUT = 60
NOT_SNAPSHOT = {"XDS005", "XDS008"}


class Mirror:
    def __init__(self, gitdir: str):
        self.gitdir = gitdir
        self.commit = self.git("rev-parse", "HEAD").decode().strip()
        tree = self.git("ls-tree", "-r", "-z", "--name-only", self.commit)
        self.paths = sorted(p.decode() for p in tree.split(b"\0") if p)
        self.blobs: dict[str, bytes] = {}

    def git(self, *args: str, stdin: bytes | None = None) -> bytes:
        r = subprocess.run(["git", "--git-dir", self.gitdir, *args], input=stdin, capture_output=True)
        if r.returncode:
            raise SystemExit(f"{PROG}: git {args[0]} in {self.gitdir}: {r.stderr.decode().strip()}")
        return r.stdout

    def read(self, paths: list[str]) -> dict[str, bytes]:
        """Contents of ``paths`` at HEAD (one `git cat-file --batch` for all not yet read)."""
        todo = [p for p in paths if p not in self.blobs]
        if todo:
            out = self.git("cat-file", "--batch", stdin="".join(f"{self.commit}:{p}\n" for p in todo).encode())
            pos = 0
            for p in todo:
                header_end = out.index(b"\n", pos)
                size = int(out[pos:header_end].split()[2])
                self.blobs[p] = out[header_end + 1:header_end + 1 + size]
                pos = header_end + 2 + size
        return {p: self.blobs[p] for p in paths}

    def match(self, path_re: str) -> list[str]:
        return [p for p in self.paths if re.fullmatch(path_re, p)]

    def grep(self, pattern: str, path_re: str, flags: int = 0) -> list[str]:
        """Paths matching ``path_re`` whose text matches ``pattern``."""
        return [p for p, b in self.read(self.match(path_re)).items()
                if re.search(pattern, b.decode("utf-8", "replace"), flags)]


def select(source: str, m: Mirror) -> list[tuple[str, list[tuple[str, str]]]]:
    """(case name, [(repo path, file name in case)]); directory case names end in '/'."""
    cases: list[tuple[str, list[tuple[str, str]]]] = []
    base = lambda p: p.rsplit("/", 1)[-1]  # noqa: E731
    kinds = r"\.(listeners|routes|clusters|endpoints)\."

    def files(prefix: str, paths, name=base):
        cases.extend((f"{source}/{prefix}{name(p)}", [(p, name(p))]) for p in paths)

    def groups(prefix: str, path_re: str, key=lambda mm: mm["case"]):
        g = collections.defaultdict(list)
        for p in m.paths:
            if mm := re.fullmatch(path_re, p):
                g[key(mm)].append((p, base(p)))
        cases.extend((f"{source}/{prefix}{c}/", sorted(fs, key=lambda f: f[1])) for c, fs in sorted(g.items()))

    def rel(top: str):  # path under top, testdata/ dropped, '/' -> '__'
        return lambda p: re.sub(r"/?testdata/", "/", p[len(top):]).strip("/").replace("/", "__")

    if source == "envoy-gateway":
        out = r"internal/xds/translator/testdata/out/"
        groups("xds-ir/", out + r"xds-ir/(?P<case>[^/]+)" + kinds + "yaml")
        groups("xds-ir/extension--", out + r"extension-xds-ir/(?P<case>[^/]+)" + kinds + "yaml")
        for kind in ("translate", "config"):
            dumps = m.grep(r"\A(?!envoyProxyForGatewayClass:).*envoy\.admin\.v3\.",
                           f"internal/cmd/egctl/testdata/{kind}/out/[^/]+", re.S)
            files("egctl/", dumps, lambda p, k=kind: f"{k}-{base(p)}")
        files("bootstrap/", m.match(r"internal/xds/bootstrap/testdata/render/[^/]+\.yaml"))
    elif source == "envoy-examples":
        files("", m.grep(r"static_resources|dynamic_resources|staticResources|dynamicResources|"
                         r"type\.googleapis\.com/envoy\.config\.", r".+\.(ya?ml|json)"), lambda p: p)
    elif source == "istio":
        files("configdump/", m.grep(r"envoy\.(admin|service\.status)\.v3",
                                    r"istioctl/pkg/.*testdata/.+\.(json|ya?ml)"), rel("istioctl/pkg/"))
        files("bootstrap/", m.match(r"pkg/bootstrap/testdata/[^/]+_golden\.json"))
        files("other/", m.grep(r"\A(?!.*\{\{).*(static_resources|staticResources)",  # no Go templates
                               r"(?!istioctl/pkg/|pkg/bootstrap/testdata/).+\.(json|ya?ml)", re.S),
              lambda p: p.replace("/", "_"))
    elif source == "kuma":
        pol = r"pkg/plugins/policies/(?P<policy>[^/]+)/plugin/(.+/)?testdata/"
        groups("per-type/", pol + r"(?P<case>[^/]+)" + kinds + r"golden\.yaml",
               lambda mm: f"{mm['policy']}__{mm['case']}")
        rest = [p for p in m.match(pol + r"[^/]+\.golden\.yaml")
                if not re.search(r"\.(listeners|routes|clusters|endpoints|secrets)\.golden\.yaml$", p)]
        policy = lambda p: re.sub(r"/plugin(/v1alpha1)?/testdata/|/testdata/", "/",  # noqa: E731
                                  p[len("pkg/plugins/policies/"):]).replace("/", "__")
        listed = [p for p, b in m.read(rest).items() if b.startswith(b"resources:")]
        files("resources/", listed, policy)
        files("resources/", m.match(r"pkg/xds/generator/testdata/[^/]+/[^/]*envoy-config\.golden\.yaml"),
              lambda p: "xdsgen__" + rel("pkg/xds/generator/testdata/")(p))
        files("bare/", [p for p in rest if p not in listed], policy)
        top = "test/e2e_env/universal/envoyconfig/testdata/"
        files("inspect/", m.match(re.escape(top) + r".+\.golden\.json"), rel(top))
        files("bootstrap/", m.match(r"pkg/xds/bootstrap/testdata/[^/]+\.golden\.yaml"))
    elif source == "kgateway":
        top = "internal/kgateway/translator/gateway/testutils/outputs/"
        files("outputs/", m.grep(r"^Listeners:", re.escape(top) + r".+\.yaml", re.M), rel(top))
        files("bootstrap/", [p for p in m.grep(r"static_resources", r".+\.yaml") if "/templates/" not in p])
    return sorted(cases)


def run_case(xds2bpf: str, work: str, case: str, files: list[str]) -> dict:
    t0 = time.monotonic()
    try:
        r = subprocess.run([xds2bpf, "check", "--diagnostics", "json", *files], cwd=work,
                           capture_output=True, text=True, timeout=TIMEOUT)
        rc, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired:
        rc, out, err = None, "", f"timed out after {TIMEOUT} s"
    rc = rc if rc is None or rc >= 0 else 128 - rc  # subprocess reports a signal as -N
    try:
        diags = json.loads(out).get("diagnostics", []) if out.strip() else []
    except ValueError:
        diags = []
    errors = [{"id": d.get("id"), "message": d.get("message", "")} for d in diags if d.get("severity") == "error"]
    refusing = sorted({refused_what(d.get("message", "")) for d in diags if d.get("id") == "XDS210"})
    ids = sorted({e["id"] for e in errors})
    status = {0: "accepted", 1: "rejected", 2: "usage error"}.get(rc, "crash")  # None: timeout
    if status == "rejected" and ids and set(ids) <= NOT_SNAPSHOT:
        status = "not-a-snapshot"
    return {"case": case, "files": files, "exit": rc, "status": status, "error_ids": ids, "errors": errors,
            "warnings": sum(d.get("severity") == "warning" for d in diags), "refusing_filters": refusing,
            "stderr": err[-2000:],
            "seconds": round(time.monotonic() - t0, 3),
            "command": "timeout 60 xds2bpf check --diagnostics json " + " ".join(files)}


def refused_what(msg: str) -> str:
    """What an XDS210 (refused, fail closed) is about: a filter's type, TLS termination or a terminal filter."""
    if "behind TLS termination" in msg:
        return "TLS termination (HTTP chain chosen by SNI)"
    if m := re.search(r"handled by network filters (\S+?),", msg):
        return f"terminal network filter {m.group(1)}"
    m = re.search(r"(HTTP|network) filter (\S+)(?: \((\S+)\))? can", msg)
    if not m:
        return "other"
    parts = (m.group(3) or m.group(2)).split(".")
    name = parts[-1] if parts[-1] != "Config" or len(parts) < 3 else parts[-3]  # ...http.golang.v3alpha.Config
    return name + (" (network)" if m.group(1) == "network" else "")


def norm(msg: str) -> str:
    return re.sub(r"\d+", "N", re.sub(r'"[^"]*"', '"…"', msg.split("\n")[0]))


def markdown(results: list[dict], mirrors: dict[str, Mirror], version: str, missing: list[str]) -> str:
    src = lambda c: "/".join(c.split("/")[:2]) if c.split("/")[0] != "envoy-examples" else "envoy-examples"  # noqa: E731
    L = ["# Real xDS snapshots: what xds2bpf accepts", "",
         "Generated by `scripts/real-snapshots.py`; do not edit. Regenerate with", "", "```sh",
         "nice -n 5 python3 scripts/real-snapshots.py --xds2bpf .build/release/xds2bpf \\",
         "    --mirror envoy-gateway=GITDIR --mirror envoy-examples=GITDIR --mirror istio=GITDIR \\",
         "    --mirror kuma=GITDIR --mirror kgateway=GITDIR --out docs/real-snapshots.md", "```", "",
         "Every xDS output that five other projects keep in their test data (generated translator "
         "outputs, config dumps, bootstraps, example configs), taken from git mirrors at the commits "
         "below and run through `xds2bpf check --diagnostics json` (60 s timeout each). The selection "
         "rules are in the script's docstring; Envoy's own `configs/` is not included.", "",
         f"Compiler: `{version}`.", "", "| source | repository @ commit | cases |", "|---|---|---|"]
    for s in SOURCES:
        if s in mirrors:
            L.append(f"| {s} | {REPOS[s]} @ {mirrors[s].commit[:12]} | {sum(r['case'].startswith(s + '/') for r in results)} |")
    if missing:
        L += ["", f"Not measured (no `--mirror` given): {', '.join(missing)}."]
    L += ["", "## Outcome", "",
          "Accepted: exit 0. Rejected: exit 1 with an error diagnostic. Not a snapshot: rejected only with "
          "XDS005 (input shape not recognised) or XDS008 (no listeners, routes, clusters or endpoints). "
          "Other: a crash, timeout, internal or usage error (listed below).", "",
          "| source | cases | accepted | rejected | not a snapshot | other |", "|---|---|---|---|---|---|"]
    by = collections.defaultdict(collections.Counter)
    for r in results:
        by[src(r["case"])][r["status"]] += 1
    tot = collections.Counter()
    def row(name, c):  # noqa: E306
        other = sum(v for k, v in c.items() if k not in ("accepted", "rejected", "not-a-snapshot"))
        return f"| {name} | {sum(c.values())} | {c['accepted']} | {c['rejected']} | {c['not-a-snapshot']} | {other} |"
    for s in sorted(by):
        L.append(row(s, by[s]))
        tot.update(by[s])
    L.append(row("**total**", tot))
    snaps = tot["accepted"] + tot["rejected"]
    if snaps:
        L += ["", f"Of the {snaps} inputs that are snapshots (accepted or rejected), **{tot['accepted']} "
              f"({100 * tot['accepted'] // snaps} %) are accepted**; of all {sum(tot.values())} cases, "
              f"{100 * tot['accepted'] // sum(tot.values())} %."]
    guarded = [r for r in results if r["status"] == "accepted" and r.get("refusing_filters")]
    if guarded:
        per = collections.Counter(f for r in guarded for f in r["refusing_filters"])
        L += ["", f"Of the accepted cases, {len(guarded)} refuse part of their traffic because it needs what the "
              "kernel cannot run (XDS210, fail closed): routes or chains guarded by a filter that can deny traffic, "
              "HTTP chains behind TLS termination, chains handled by another terminal filter; the rest is routed "
              "(`--unsupported=error` rejects these cases instead). By what is refused, in cases: "
              + ", ".join(f"{f} {n}" for f, n in sorted(per.items(), key=lambda x: (-x[1], x[0]))) + "."]
    redacted = [r for r in results if r["case"].startswith("kuma/inspect/") and r["status"] in ("accepted", "rejected")]
    if redacted and snaps:
        acc = tot["accepted"] - sum(r["status"] == "accepted" for r in redacted)
        n = snaps - len(redacted)
        L += ["", f"Without `kuma/inspect` (Kuma's end-to-end goldens, whose addresses are redacted to `IP_REDACTED`, "
              f"which is no address for Envoy either): **{acc} of {n} ({100 * acc // n} %) are accepted**."]
    L += ["", "## Rejections by diagnostic", "",
          "Rejected cases (not-a-snapshot ones excepted) by error id; a case with errors of two ids counts "
          "in both rows. The message is the commonest one of that id (first line).", ""]

    def table(rows):
        L.extend(["| id | cases | by source | typical message | examples |", "|---|---|---|---|---|"] if rows else ["None."])
        groups, msgs, raw = collections.defaultdict(list), collections.defaultdict(collections.Counter), {}
        for r in rows:
            for i in r["error_ids"] or ["(none)"]:
                groups[i].append(r["case"])
            for e in r["errors"]:
                msgs[e["id"]][norm(e["message"])] += 1
                raw.setdefault((e["id"], norm(e["message"])), e["message"].split("\n")[0])
        for i, cs in sorted(groups.items(), key=lambda x: (-len(x[1]), x[0])):
            msg = raw[(i, msgs[i].most_common(1)[0][0])] if msgs[i] else "exit 1 without an error diagnostic"
            msg = (msg if len(msg) <= 200 else msg[:199] + "…").replace("|", "\\|")
            per = collections.Counter(src(c) for c in cs)
            ex = [c for n, c in enumerate(cs) if src(c) not in {src(b) for b in cs[:n]}]  # one per source first
            ex = (ex + [c for c in cs if c not in ex])[:3]
            L.append(f"| {i} | {len(cs)} | {', '.join(f'{k} {v}' for k, v in per.most_common())} | {msg} | "
                     f"{', '.join(f'`{c}`' for c in ex)} |")
    table([r for r in results if r["status"] == "rejected"])
    L += ["", "## Inputs that are not a snapshot", ""]
    table([r for r in results if r["status"] == "not-a-snapshot"])
    bad = [r for r in results if r["status"] in ("crash", "usage error")]
    L += ["", "## Crashes, hangs, internal errors", "", "None: every case exited 0 or 1." if not bad else
          "Exit 2 is a usage error, 3 an internal error, 128 + N signal N. Reproduce (in `--work`, kept with `--keep`):", ""]
    L += [f"- `{r['case']}` ({'timeout' if r['exit'] is None else 'exit ' + str(r['exit'])}): `{r['command']}`"
          for r in bad]
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--xds2bpf", default=".build/release/xds2bpf")
    ap.add_argument("--mirror", action="append", default=[], metavar="NAME=GITDIR", help=f"one of {', '.join(SOURCES)}")
    ap.add_argument("--work", help="extract cases here (must be empty or absent; kept)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    ap.add_argument("--out", help="markdown summary (default stdout)")
    ap.add_argument("--json", help="per-case results")
    ap.add_argument("-j", type=int, default=2, help="parallel checks (default 2)")
    a = ap.parse_args()
    mirrors = {}
    for spec in a.mirror:
        name, _, gitdir = spec.partition("=")
        if name not in SOURCES or not gitdir:
            ap.error(f"--mirror {spec}: expected NAME=GITDIR with NAME one of {', '.join(SOURCES)}")
        mirrors[name] = Mirror(gitdir)
    if not mirrors:
        ap.error("give at least one --mirror")
    xds2bpf = os.path.abspath(a.xds2bpf)
    if not os.access(xds2bpf, os.X_OK):
        ap.error(f"--xds2bpf {a.xds2bpf}: not an executable")
    with open(xds2bpf, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()[:12]
    version = subprocess.run([xds2bpf, "--version"], capture_output=True, text=True).stdout.strip()
    version = f"xds2bpf {version} (binary sha256 {digest}…)"
    if a.work and os.path.isdir(a.work) and os.listdir(a.work):
        ap.error(f"--work {a.work}: not empty")
    work = a.work or tempfile.mkdtemp(prefix=PROG + "-")
    os.makedirs(work, exist_ok=True)
    try:
        todo = []
        for name, m in sorted(mirrors.items(), key=lambda x: SOURCES.index(x[0])):
            for case, files in select(name, m):
                blobs = m.read([p for p, _ in files])
                rel = []
                for p, f in files:
                    dest = os.path.join(case, f) if case.endswith("/") else case
                    os.makedirs(os.path.join(work, os.path.dirname(dest)), exist_ok=True)
                    with open(os.path.join(work, dest), "wb") as fh:
                        fh.write(blobs[p])
                    rel.append(dest)
                todo.append((case, rel, [p for p, _ in files], name))
            print(f"{PROG}: {name} @ {m.commit[:12]}: {sum(t[3] == name for t in todo)} cases", file=sys.stderr)
        with concurrent.futures.ThreadPoolExecutor(max(1, a.j)) as pool:
            results = list(pool.map(lambda t: run_case(xds2bpf, work, t[0], t[1]), todo))
        for r, t in zip(results, todo):
            r.update(source=t[3], commit=mirrors[t[3]].commit, repo_paths=t[2])
    finally:
        if not a.work and not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif not a.work:
            print(f"{PROG}: cases kept in {work}", file=sys.stderr)
    text = markdown(results, mirrors, version, [s for s in SOURCES if s not in mirrors])
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    if a.json:
        meta = {n: {"repository": REPOS[n], "commit": m.commit} for n, m in mirrors.items()}
        with open(a.json, "w") as fh:
            json.dump({"xds2bpf": version, "mirrors": meta, "cases": results}, fh, indent=1)
    bad = [r for r in results if r["status"] in ("crash", "usage error")]
    print(f"{PROG}: {len(results)} cases, {sum(r['status'] == 'accepted' for r in results)} accepted, "
          f"{len(bad)} crashed, hung, hit an internal or usage error", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
