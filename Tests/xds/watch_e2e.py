#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""`xds2bpf watch` end to end on the real kernel (root), driven from here:

  watch_e2e.py --xds2bpf BIN --netns NS --cgroup CG --tmp DIR [--changes 200] [--quick]

A real gRPC ADS server (ads_server.py) on 127.0.0.1 of the host serves generated
snapshots; `xds2bpf watch` (host netns, not in the test cgroup) keeps the bundle
NAME loaded into the test cgroup; clients in the private netns + cgroup keep
connecting to the service addresses (10.96.5.x, never assigned: only the redirect
reaches the backends, which listen on 10.21.0.x in the netns). The server pushes
endpoint changes (scale up, scale down, replace all), listener/route/cluster
changes and invalid updates; then faults: a dropped stream, garbage, a wrong type
URL, an unrequested resource, SIGKILL of the agent in the middle of an update,
SIGTERM. Checked from the server's log (ACK/NACK with times) and the clients'
logs (wall-clock time and backend of every connect):
  - no connect fails;
  - every connect that starts after the ACK of version V (and before the next
    push) lands on V's endpoints; between a push and its ACK, on the old or new;
  - every NACK carries the diagnostic id and resource path; after it the last
    good configuration keeps serving;
  - after SIGKILL the kernel serves one version or the other, and a restarted
    agent resumes and ACKs the latest version.
Prints a summary and exits non-zero on the first failed check. Every process it
starts is ended by PID.
"""
import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import xdslib  # noqa: E402

xdslib.load_protos()
from google.protobuf import any_pb2, duration_pb2  # noqa: E402
from google.protobuf.internal.encoder import _VarintBytes  # noqa: E402
from envoy.config.cluster.v3 import cluster_pb2  # noqa: E402
from envoy.config.core.v3 import address_pb2, config_source_pb2  # noqa: E402
from envoy.config.endpoint.v3 import endpoint_pb2, endpoint_components_pb2  # noqa: E402
from envoy.config.listener.v3 import listener_pb2, listener_components_pb2  # noqa: E402
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: E402
from envoy.service.discovery.v3 import discovery_pb2  # noqa: E402

POOL = [f"10.21.0.{i}" for i in range(1, 61)]
PORT = 8080
SERVICES = {"svc-a": "10.96.5.1", "svc-b": "10.96.5.2", "svc-c": "10.96.5.3"}
TYPES = {
    "listener": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "cluster": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "endpoint": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
}


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def log(msg):
    print(f"[watch-e2e {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pack(msg):
    a = any_pb2.Any()
    a.Pack(msg)
    return a


def socket_address(ip, port):
    a = address_pb2.Address()
    a.socket_address.address = ip
    a.socket_address.port_value = port
    return a


class Config:
    """One configuration: listener VIP -> cluster, cluster -> endpoints, LB policy."""

    def __init__(self):
        self.routes = {"svc-a": "svc-a", "svc-b": "svc-b"}  # listener name -> cluster
        self.endpoints = {"svc-a": POOL[0:3], "svc-b": POOL[10:12], "svc-c": POOL[20:22]}
        self.lb = {"svc-a": cluster_pb2.Cluster.ROUND_ROBIN, "svc-b": cluster_pb2.Cluster.ROUND_ROBIN,
                   "svc-c": cluster_pb2.Cluster.ROUND_ROBIN}
        self.invalid = None  # None, "source", "lb", "hostname"

    def copy(self):
        c = Config()
        c.routes = dict(self.routes)
        c.endpoints = {k: list(v) for k, v in self.endpoints.items()}
        c.lb = dict(self.lb)
        c.invalid = None
        return c

    def expected(self):
        """dst "ip:port" -> set of backend idents a connect may reach."""
        return {f"{SERVICES[l]}:5000": {f"{ip}:{PORT}" for ip in self.endpoints[c]} for l, c in self.routes.items()}

    def listeners(self):
        out = []
        for name, cluster in sorted(self.routes.items()):
            l = listener_pb2.Listener()
            l.name = name
            l.address.CopyFrom(socket_address(SERVICES[name], 5000))
            fc = l.filter_chains.add()
            f = fc.filters.add()
            f.name = "envoy.filters.network.tcp_proxy"
            tp = tcp_proxy_pb2.TcpProxy()
            tp.stat_prefix = name
            tp.cluster = cluster
            f.typed_config.CopyFrom(pack(tp))
            if self.invalid == "source" and name == "svc-b":
                # a source match cannot be decided in the kernel (SNI can, through the module)
                r = fc.filter_chain_match.source_prefix_ranges.add()
                r.address_prefix = "10.0.0.0"
                r.prefix_len.value = 8
            out.append(l)
        return out

    def clusters(self):
        out = []
        for name in sorted(self.endpoints):
            c = cluster_pb2.Cluster()
            c.name = name
            c.type = cluster_pb2.Cluster.EDS
            c.connect_timeout.CopyFrom(duration_pb2.Duration(seconds=1))
            c.eds_cluster_config.eds_config.ads.SetInParent()
            c.eds_cluster_config.eds_config.resource_api_version = config_source_pb2.V3
            c.lb_policy = self.lb[name]
            if self.invalid == "lb" and name == "svc-c":
                c.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
            out.append(c)
        return out

    def assignments(self):
        out = []
        for name, ips in sorted(self.endpoints.items()):
            cla = endpoint_pb2.ClusterLoadAssignment()
            cla.cluster_name = name
            loc = cla.endpoints.add()
            for ip in ips:
                e = loc.lb_endpoints.add()
                addr = "backend.invalid.example" if self.invalid == "hostname" and name == "svc-a" else ip
                e.endpoint.address.CopyFrom(socket_address(addr, PORT))
            out.append(cla)
        return out

    def write(self, path):
        data = b""
        for url, msgs in ((TYPES["listener"], self.listeners()), (TYPES["cluster"], self.clusters()),
                          (TYPES["endpoint"], self.assignments())):
            r = discovery_pb2.DiscoveryResponse(type_url=url, version_info="v0")
            for m in msgs:
                r.resources.append(pack(m))
            s = r.SerializeToString()
            data += _VarintBytes(len(s)) + s
        with open(path, "wb") as f:
            f.write(data)


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        p = subprocess.Popen(args, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Harness:
    def __init__(self, a):
        self.a = a
        self.procs = Procs()
        self.tmp = a.tmp
        self.py = sys.executable
        self.server_log = os.path.join(self.tmp, "ads.jsonl")
        self.watch_log = os.path.join(self.tmp, "watch.log")
        self.name = "watch-" + str(os.getpid())
        self.state = os.path.join(self.tmp, "watch-state")
        self.phases = []  # (push_time, ack_time or None, Config, kind)
        self.nacks = []
        self.n = 0
        self.log_pos = 0
        self.log_records = []

    # --- processes
    def in_netns(self, args):
        return ["nsenter", f"--net=/run/netns/{self.a.netns}", "--"] + args

    def in_cgroup(self, args):
        return self.in_netns(["sh", "-c", 'echo $$ > "$1" && shift && exec "$@"', "sh",
                              os.path.join(self.a.cgroup, "cgroup.procs")] + args)

    def start_backends(self):
        for ip in POOL:
            subprocess.run(["ip", "-n", self.a.netns, "addr", "add", f"{ip}/32", "dev", "lo"], check=True)
        ready = os.path.join(self.tmp, "backends.ready")
        self.procs.start(self.in_netns([self.py, os.path.join(ROOT, "Tests/e2e/multibackend.py"), "--ready", ready]
                                       + [f"{ip}:{PORT}" for ip in POOL]),
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "backends.err"), "w"))
        self.wait_for(lambda: os.path.exists(ready) and os.path.getsize(ready) > 0, 20, "backends")

    def start_server(self, first):
        ready = os.path.join(self.tmp, "ads.ready")
        self.procs.start([self.py, os.path.join(HERE, "ads_server.py"), first, "--log", self.server_log, "--version", "v0"],
                         stdout=open(ready, "w"), stderr=open(os.path.join(self.tmp, "ads.err"), "w"))
        self.wait_for(lambda: os.path.getsize(ready) > 0, 30, "ADS server")
        info = json.load(open(ready))
        self.port, self.ctl_port = info["port"], int(info["control"].rsplit(":", 1)[1])

    def start_watch(self):
        self.watch = self.procs.start(
            [self.a.xds2bpf, "watch", "--server", f"grpc://127.0.0.1:{self.port}", "--node-id", "watch-e2e",
             "--cgroup", self.a.cgroup, "--name", self.name, "--state-dir", self.state,
             "--max-message-bytes", str(1 << 20)],
            stdout=subprocess.DEVNULL, stderr=open(self.watch_log, "a"))
        return self.watch

    def start_clients(self):
        self.client_logs = []
        self.stop_file = os.path.join(self.tmp, "clients.stop")
        for dst in sorted({f"{ip}:5000" for ip in SERVICES.values()}):
            for k in range(self.a.clients_per_dst):
                lg = os.path.join(self.tmp, f"conn-{dst}-{k}.csv")
                self.client_logs.append((dst, lg))
                self.procs.start(self.in_cgroup([self.py, os.path.join(ROOT, "Tests/e2e/connloop.py"), dst,
                                                 "--stop-file", self.stop_file, "--log", lg, "--wallclock",
                                                 "--max-seconds", "1200", "--timeout", "1",
                                                 "--pause-on-error", "0.002"]),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # --- control and log
    def ctl(self, line):
        with socket.create_connection(("127.0.0.1", self.ctl_port), timeout=30) as s:
            s.sendall((line + "\n").encode())
            reply = s.makefile().readline().strip()
        if not reply.startswith("ok"):
            fail(f"control '{line}': {reply}")
        return reply

    def records(self):
        with open(self.server_log) as f:
            f.seek(self.log_pos)
            data = f.read()
        # only whole lines
        cut = data.rfind("\n") + 1
        self.log_pos += len(data[:cut].encode())
        for line in data[:cut].splitlines():
            self.log_records.append(json.loads(line))
        return self.log_records

    def wait_for(self, cond, seconds, what):
        end = time.time() + seconds
        while time.time() < end:
            v = cond()
            if v:
                return v
            time.sleep(0.01)
        fail(f"timed out after {seconds} s waiting for {what}")

    def wait_verdict(self, since, version, types):
        """The first ACK or NACK from the agent's stream, after `since`, of a response with `version`."""
        def find():
            recs = self.records()
            sent = {r["nonce"]: r for r in recs if r.get("dir") == "response" and r.get("version_info") == version
                    and r.get("t", 0) >= since}
            for r in recs:
                if r.get("dir") == "request" and r.get("kind") in ("ack", "nack") and r.get("response_nonce") in sent \
                        and r["t"] >= since and any(r["type_url"] == TYPES[t] for t in types):
                    return r
            return None
        return self.wait_for(find, 60, f"ACK/NACK of version {version}")

    def push(self, cfg, kind, types):
        self.n += 1
        version = f"v{self.n}"
        path = os.path.join(self.tmp, f"snap-{self.n}.xds.pb")
        cfg.write(path)
        t = time.time()
        self.ctl(f"push {path} version={version}")
        r = self.wait_verdict(t, version, types)
        if r["kind"] == "ack":
            self.phases.append((t, r["t"], cfg, kind))
        else:
            self.phases.append((t, None, cfg, kind))
        return r

    # --- checks
    def check_connects(self):
        expected_by_phase = [(p[0], p[1], p[2].expected(), p[3]) for p in self.phases]
        total = failed = unrouted = 0
        first_t, last_t = None, None
        wrong = []
        for dst, lg in self.client_logs:
            with open(lg) as f:
                next(f)
                for line in f:
                    seq, t, _, outcome = line.rstrip("\n").split(",", 3)
                    t = float(t)
                    total += 1
                    first_t = t if first_t is None else min(first_t, t)
                    last_t = t if last_t is None else max(last_t, t)
                    allowed = self.allowed(expected_by_phase, dst, t)
                    if allowed == {"__unrouted__"}:
                        # no listener for dst in the live configuration: not redirected,
                        # the service address is unreachable in the netns (as it should be)
                        unrouted += 1
                        total -= 1
                        continue
                    if outcome.startswith("error:") and "__unrouted_ok__" in allowed:
                        unrouted += 1
                        total -= 1
                        continue
                    if outcome.startswith("error:"):
                        failed += 1
                        if len(wrong) < 10:
                            wrong.append(f"{dst} at {t:.3f}: {outcome}")
                        continue
                    if allowed is not None and outcome not in allowed:
                        if len(wrong) < 10:
                            wrong.append(f"{dst} at {t:.3f} reached {outcome}, allowed {sorted(allowed)}")
                        failed += 1
        rate = total / (last_t - first_t) if total and last_t > first_t else 0
        self.unrouted = unrouted
        return total, failed, rate, wrong

    @staticmethod
    def allowed(phases, dst, t):
        """Backends a connect to dst at time t may reach: the live configuration's,
        plus the next one's while a push is being applied."""
        live = None
        for i, (push_t, ack_t, exp, kind) in enumerate(phases):
            if ack_t is None:
                continue  # NACKed: never live
            if ack_t <= t:
                live = (i, exp)
        if live is None:
            return None  # before the first configuration was live: not judged
        i, exp = live
        allowed = set(exp.get(dst, set()))
        routed = dst in exp
        # a push after the live one, not yet ACKed at t: its backends too
        for push_t, ack_t, e2, kind in phases[i + 1:]:
            if push_t <= t and ack_t is not None and t < ack_t:
                allowed |= e2.get(dst, set())
                if dst in e2:
                    if not routed:
                        allowed.add("__unrouted_ok__")
                    routed = True
                else:
                    allowed.add("__unrouted_ok__")  # the new configuration drops dst's listener
        return allowed if routed else {"__unrouted__"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xds2bpf", required=True)
    ap.add_argument("--netns", required=True)
    ap.add_argument("--cgroup", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--clients-per-dst", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    h = Harness(a)
    try:
        run(h, a, rnd)
    finally:
        h.procs.stop_all()
        subprocess.run(["xds2bpf-loader" if not os.environ.get("E2E_LOADER") else os.environ["E2E_LOADER"],
                        "unload", "--name", h.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(h, a, rnd):
    cfg = Config()
    cfg.routes = {"svc-a": "svc-a", "svc-b": "svc-b"}
    first = os.path.join(a.tmp, "snap-0.xds.pb")
    cfg.write(first)
    h.start_backends()
    h.start_server(first)
    t0 = time.time()
    h.start_watch()
    r = h.wait_verdict(0, "v0", ["listener", "cluster", "endpoint"])
    if r["kind"] != "ack":
        fail(f"the first configuration was NACKed: {r}")
    h.phases.append((t0, r["t"], cfg, "initial"))
    log(f"first configuration live and ACKed after {r['t'] - t0:.2f} s")
    h.start_clients()
    time.sleep(1.0)

    # 1. endpoint changes
    lat = []
    for i in range(a.changes):
        new = cfg.copy()
        svc = rnd.choice(["svc-a", "svc-b", "svc-c"])
        cur = new.endpoints[svc]
        op = ("up", "down", "replace")[i % 3]
        free = [ip for ip in POOL if ip not in cur]
        if op == "up" or len(cur) <= 1:
            new.endpoints[svc] = cur + rnd.sample(free, min(len(free), rnd.randint(1, 3)))
        elif op == "down":
            new.endpoints[svc] = cur[:max(1, len(cur) - rnd.randint(1, 2))]
        else:
            new.endpoints[svc] = rnd.sample(free, min(len(free), rnd.randint(1, 4)))
        r = h.push(new, "endpoints", ["endpoint"])
        if r["kind"] != "ack":
            fail(f"endpoint change {i} NACKed: {r.get('error_detail')}")
        lat.append(h.phases[-1][1] - h.phases[-1][0])
        cfg = new
    # Endpoint-only changes take the in-place path (xds2bpf-loader update), with rows computed
    # from the changed assignments alone; one that does not fit the maps' headroom (the loader's
    # exit 4: endpoints grew past it, or first fit found no contiguous range) is a full replace.
    wlog = open(h.watch_log).read()
    in_place = wlog.count("cluster in place") + wlog.count("clusters in place")
    fast = wlog.count("rows from the changed assignments")
    no_fit = wlog.count("in-place update refused (exit 4")
    if fast != in_place:
        fail(f"{in_place - fast} in-place endpoint changes did not take the fast path (rows from the changed assignments)")
    if in_place < a.changes * 0.8 or in_place + no_fit < a.changes:
        fail(f"only {in_place} of {a.changes} endpoint changes were applied in place ({no_fit} refused as not fitting)")
    # The update session answers every request of an accepted change; its only expected
    # error is a delta that does not fit (exit 4, then a replace).
    loader_errors = [l for l in wlog.splitlines() if l.startswith("xds2bpf-loader: error") and "does not fit" not in l]
    if loader_errors:
        fail(f"the loader's update session reported errors during endpoint changes: {loader_errors[:3]}")
    h.in_place = in_place
    if lat:
        lat.sort()
        log(f"{len(lat)} endpoint changes ACKed, {in_place} written in place ({no_fit} did not fit: replaced); push -> ACK median "
            f"{lat[len(lat) // 2] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")

    # 2. listener / cluster changes
    for i in range(10):
        new = cfg.copy()
        if i % 3 == 0:
            new.routes["svc-b"] = "svc-a" if cfg.routes.get("svc-b") == "svc-b" else "svc-b"
        elif i % 3 == 1:
            if "svc-c" in new.routes:
                del new.routes["svc-c"]
            else:
                new.routes["svc-c"] = "svc-c"
        else:
            new.lb["svc-a"] = cluster_pb2.Cluster.RANDOM if cfg.lb["svc-a"] == cluster_pb2.Cluster.ROUND_ROBIN \
                else cluster_pb2.Cluster.ROUND_ROBIN
        r = h.push(new, "config", ["listener", "cluster"])
        if r["kind"] != "ack":
            fail(f"listener/cluster change {i} NACKed: {r.get('error_detail')}")
        cfg = new
    log("10 listener/cluster changes ACKed")

    # 3. invalid updates: NACK with the diagnostic id and path; the last good keeps serving
    for kind, types, want_id, want_path in (("source", ["listener"], "XDS201", 'listeners["svc-b"]'),
                                            ("lb", ["cluster"], "XDS205", 'clusters["svc-c"]'),
                                            ("hostname", ["endpoint"], "XDS105", 'load_assignments["svc-a"]')):
        bad = cfg.copy()
        bad.invalid = kind
        r = h.push(bad, "invalid", types)
        if r["kind"] != "nack":
            fail(f"invalid update ({kind}) was not NACKed: {r}")
        msg = (r.get("error_detail") or {}).get("message", "")
        if want_id not in msg or want_path not in msg:
            fail(f"NACK of the {kind} update lacks {want_id} / {want_path}: {msg}")
        h.nacks.append(msg)
    log("3 invalid updates NACKed with id and path")
    # the server keeps the invalid snapshot; a valid push goes on from there
    r = h.push(cfg.copy(), "restore", ["listener", "cluster", "endpoint"])
    if r["kind"] != "ack":
        fail(f"valid push after the NACKs: {r}")

    # an empty configuration (no services for this node any more): Envoy drops every listener and
    # cluster and ACKs; so does the agent (an empty bundle: connects to the former services are no
    # longer routed). Then the services come back.
    empty = cfg.copy()
    empty.routes, empty.endpoints, empty.lb = {}, {}, {}
    r = h.push(empty, "empty", ["listener", "cluster"])
    if r["kind"] != "ack":
        fail(f"an empty configuration was not ACKed: {r}")
    r = h.push(cfg.copy(), "refilled", ["listener", "cluster", "endpoint"])
    if r["kind"] != "ack":
        fail(f"the services after an empty configuration: {r}")
    log("an empty configuration ACKed and live, then the services back")

    # 4. faults: a dropped stream, garbage, wrong type URL, unrequested resource
    h.ctl("disconnect all")
    h.wait_for(lambda: "reconnecting" in open(h.watch_log).read(), 20, "the agent to notice the dropped stream")
    new = cfg.copy()
    new.endpoints["svc-a"] = POOL[40:43]
    r = h.push(new, "after-reconnect", ["endpoint"])
    if r["kind"] != "ack":
        fail(f"push after a reconnect: {r}")
    cfg = new
    for inj in ("garbage endpoint", "wrong-type cluster", "unrequested endpoint"):
        t = time.time()
        h.ctl(inj)
        time.sleep(0.5)
        recs = h.records()
        if inj.startswith("unrequested"):
            bad = [x for x in recs if x.get("t", 0) >= t and x.get("kind") == "nack"]
            if bad:
                fail(f"an unrequested resource was NACKed: {bad[0]}")
        else:
            if not [x for x in recs if x.get("t", 0) >= t and x.get("kind") == "nack"]:
                fail(f"'{inj}' was not NACKed")
    # a response above the agent's message limit (1 MiB here) ends the stream, as in Envoy: the
    # agent reconnects, keeps serving what is loaded meanwhile, and takes the next push
    before = open(h.watch_log).read().count("reconnecting")
    h.ctl("oversized endpoint")
    h.wait_for(lambda: open(h.watch_log).read().count("reconnecting") > before, 20,
               "the agent to drop the stream with the oversized response")
    new = cfg.copy()
    new.endpoints["svc-a"] = POOL[43:46]
    r = h.push(new, "after-oversized", ["endpoint"])
    if r["kind"] != "ack":
        fail(f"push after an oversized response: {r}")
    cfg = new
    log("dropped stream resumed; garbage and a wrong type URL NACKed; an unrequested resource ignored; "
        "an oversized response ended the stream and the agent resumed")

    # 5. SIGKILL in the middle of an update: one version or the other; a restart resumes
    new = cfg.copy()
    new.endpoints["svc-b"] = POOL[50:53]
    h.n += 1
    path = os.path.join(a.tmp, f"snap-{h.n}.xds.pb")
    new.write(path)
    kill_t = time.time()
    h.ctl(f"push {path} version=v{h.n}")
    time.sleep(rnd.uniform(0.02, 0.15))
    h.watch.send_signal(signal.SIGKILL)
    h.watch.wait()
    # either version: the clients' checks allow both until the restarted agent's ACK
    watch = h.start_watch()
    r = h.wait_verdict(kill_t, f"v{h.n}", ["endpoint"])
    if r["kind"] != "ack":
        fail(f"after SIGKILL and a restart the latest version was not ACKed: {r}")
    h.phases.append((kill_t, r["t"], new, "after-kill"))
    cfg = new
    log("SIGKILL mid-update: the restarted agent resumed and ACKed the latest version")

    time.sleep(1.0)
    # 6. SIGTERM: the agent ends, the configuration stays loaded and keeps routing
    watch.send_signal(signal.SIGTERM)
    rc = watch.wait(timeout=10)
    if rc != 0:
        fail(f"watch exit {rc} on SIGTERM")
    time.sleep(0.5)
    open(h.stop_file, "w").close()
    time.sleep(1.5)
    total, failed, rate, wrong = h.check_connects()
    if failed:
        fail(f"{failed} of {total} connects failed or went elsewhere: " + "; ".join(wrong))
    if total < 1000:
        fail(f"only {total} connects")
    st = subprocess.run([os.environ.get("E2E_LOADER", "xds2bpf-loader"), "status", "--name", h.name],
                        capture_output=True, text=True)
    if st.returncode != 0:
        fail(f"after SIGTERM the bundle is not loaded: {st.stderr}")
    acked = sum(1 for p in h.phases if p[1] is not None)
    print(f"watch e2e: {acked} configurations live and ACKed ({a.changes} endpoint changes, {h.in_place} in place; 10 listener/cluster "
          f"changes), 3 invalid updates NACKed with id and path, {total} routed connects at {rate:.0f}/s, 0 failed "
          f"or misrouted ({h.unrouted} to an address with no listener at the time, unreachable as expected); faults: dropped stream, garbage, wrong type URL, unrequested resource, oversized response, SIGKILL, SIGTERM")


if __name__ == "__main__":
    main()
