#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Live updates at scale: `xds2bpf watch` following the test ADS server (root).

  bench/watch.py --xds2bpf BIN --cgroup CG --tmp DIR [--services 10000] [--endpoints 10]
                 [--changed 100] [--repeat 5] [--gap SECONDS] [--json OUT] [--markdown OUT]

A synthetic mesh (scripts/gen-synthetic.py, EDS clusters) is served over ADS; the agent
loads it into CG (a test cgroup with no process in it: nothing is routed, the kernel
state is what is measured). Then, --repeat times each, measured from the server's push
to the agent's ACK (the agent ACKs only once the change is live in the kernel), with the
server's own log times:
  - endpoint-only: the endpoints of --changed services re-addressed (EDS only; in state
    of the world the server sends every assignment again, and the agent finds the changed ones);
  - other: one service added (LDS/RDS/CDS/EDS change: compile and atomic replace);
and the agent's resident memory (VmHWM, VmRSS) and its CPU use while idle for 10 s.
The agent's own log line gives the compile share of each update. --gap waits that long
before each measured push once the agent has settled: past the agent's idle trim (2 s), a
push then finds its heap returned to the system, as a push after a quiet spell does.
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xds2bpf", required=True)
    ap.add_argument("--cgroup", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--changed", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--gap", type=float, default=0.0)
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    a = ap.parse_args()
    py = sys.executable
    gen = os.path.join(ROOT, "scripts/gen-synthetic.py")
    snaps = {}

    def synth(name, *extra, services=a.services):
        path = os.path.join(a.tmp, f"{name}.xds.pb")
        subprocess.run([py, gen, "--services", str(services), "--endpoints", str(a.endpoints), "--http-ratio", "0.5",
                        "--seed", "1", "--format", "pb", "-q", "-o", path, *extra], check=True)
        snaps[name] = path
        return path

    base = synth("base")
    for i in range(a.repeat):
        # same mesh (same seed), another set of services re-addressed each time
        synth(f"eds{i}", "--endpoint-change", str(a.changed + i))
    # a new service each time: listeners, routes, clusters and endpoints change
    for i in range(a.repeat):
        synth(f"add{i}", services=a.services + 1 + i)
    log_path = os.path.join(a.tmp, "ads.jsonl")
    ready = os.path.join(a.tmp, "ads.ready")
    procs = []
    try:
        procs.append(subprocess.Popen([py, os.path.join(ROOT, "Tests/xds/ads_server.py"), base, "--log", log_path, "--version", "v0"],
                                      stdout=open(ready, "w"), stderr=open(os.path.join(a.tmp, "ads.err"), "w")))
        wait(lambda: os.path.getsize(ready) > 0, 60, "the ADS server")
        info = json.load(open(ready))
        ctl = int(info["control"].rsplit(":", 1)[1])
        loader = os.environ.get("XDS2BPF_LOADER", "xds2bpf-loader")
        results = {"services": a.services, "endpoints_per_service": a.endpoints, "changed_services": a.changed, "gap_s": a.gap}
        state = {"n": 0}

        def push(path, since_kind=None):
            state["n"] += 1
            t = time.time()
            control(ctl, f"push {path} version=v{state['n']}")
            r = verdict(log_path, t, f"v{state['n']}", 600)
            if r["kind"] != "ack":
                raise SystemExit(f"push v{state['n']} was NACKed: {r.get('error_detail')}")
            # from the server handing the serialized response to gRPC (its log record) to the ACK
            return round((r["t"] - TAIL[log_path].sent[r["response_nonce"]][1]) * 1000, 1)

        def agent(mode, kinds, reset=False):
            name = f"bench-{os.getpid()}-{mode}"
            watch_log = os.path.join(a.tmp, f"watch-{mode}.log")
            t0 = time.time()
            w = subprocess.Popen([a.xds2bpf, "watch", "--server", f"grpc://127.0.0.1:{info['port']}", "--node-id", f"bench-{mode}",
                                  "--cgroup", a.cgroup, "--name", name, "--state-dir", os.path.join(a.tmp, f"state-{mode}")]
                                 + (["--delta"] if mode == "delta" else []),
                                 stdout=subprocess.DEVNULL, stderr=open(watch_log, "w"))
            procs.append(w)
            try:
                wait(lambda: "ACK" in open(watch_log).read(), 600, f"the {mode} agent's first configuration")
                out = {"initial_load_s": round(time.time() - t0, 3)}
                quiet(watch_log)
                out["rss_after_load_mib"] = rss_mib(w.pid)
                if reset:
                    t = time.time()
                    push(snaps["base"])  # back to the base mesh (not measured)
                    # push() returns at the first ACK of the version; in delta each type is ACKed
                    # on its own, so the agent may still be replacing: measure from an idle agent
                    answered(log_path, t)
                    quiet(watch_log)
                for kind in kinds:
                    key = "endpoint_only" if kind == "eds" else "other"
                    out[f"{key}_ms"], out[f"{key}_agent"], out[f"{key}_client_ms"] = [], [], []
                    for i in range(a.repeat):
                        time.sleep(a.gap)
                        lines_before = len(open(watch_log).read().splitlines())
                        out[f"{key}_ms"].append(push(snaps[f"{kind}{i}"]))
                        quiet(watch_log)
                        new = open(watch_log).read().splitlines()[lines_before:]
                        live = [l for l in new if "live:" in l]
                        out[f"{key}_agent"].append(live[-1].split("live: ", 1)[1] if live else "")
                        # the agent's own measure: the response in hand -> the ACK sent
                        acks = [re.search(r"\(([0-9.]+) ms after the response arrived", l) for l in new if "ACK " in l]
                        acks = [float(m.group(1)) for m in acks if m]
                        if acks:
                            out[f"{key}_client_ms"].append(acks[-1])
                    out[f"rss_after_{key}_mib"] = rss_mib(w.pid)
                time.sleep(2)
                cpu0 = cpu_ticks(w.pid)
                time.sleep(10)
                cpu1 = cpu_ticks(w.pid)
                out["idle_cpu_percent"] = round((cpu1 - cpu0) / os.sysconf("SC_CLK_TCK") / 10 * 100, 2)
                st = open(f"/proc/{w.pid}/status").read()
                out["rss_mib"] = round(int(re.search(r"VmRSS:\s+(\d+)", st).group(1)) / 1024, 1)
                out["peak_rss_mib"] = round(int(re.search(r"VmHWM:\s+(\d+)", st).group(1)) / 1024, 1)
            finally:
                w.terminate()
                w.wait(30)
                subprocess.run([loader, "unload", "--name", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if a.json:  # the agent's own log beside the results: its per-update timings
                    with open(os.path.splitext(a.json)[0] + f".{mode}.log", "w") as f:
                        f.write(open(watch_log).read())
            return out

        def baseline(mode, ack_only=False):
            """The same endpoint-only pushes to Tests/xds/ads_client.py (grpcio's C core, Envoy's Python
            classes): it decodes every resource and ACKs at once, no judging, nothing in the kernel. Its
            push -> ACK is the floor that this server, gRPC on loopback and decoding set on this machine."""
            synced = os.path.join(a.tmp, f"baseline-{mode}{'-ack' if ack_only else ''}.synced")
            c = subprocess.Popen([py, os.path.join(ROOT, "Tests/xds/ads_client.py"), "--port", str(info["port"]),
                                  "--node", f"bench-baseline-{mode}", "--updates", str(a.repeat + 1), "--timeout", "600",
                                  "--synced-file", synced] + (["--delta"] if mode == "delta" else [])
                                 + (["--ack-only"] if ack_only else []),
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(a.tmp, f"baseline-{mode}.err"), "w"))
            procs.append(c)
            try:
                wait(lambda: os.path.exists(synced), 600, f"the {mode} baseline client's first configuration")
                push(snaps["base"])  # back to the base mesh (not measured)
                time.sleep(0.5)  # the other types of that push, ACKed at once
                out = []
                for i in range(a.repeat):
                    out.append(push(snaps[f"eds{i}"]))
                    time.sleep(0.3)
                return out
            finally:
                if c.poll() is None:
                    c.terminate()
                    c.wait(30)

        results["sotw"] = agent("sotw", ["eds", "add"])
        results["delta"] = agent("delta", ["eds"], reset=True)
        results["sotw"]["baseline_ms"] = baseline("sotw")
        results["delta"]["baseline_ms"] = baseline("delta")
        results["sotw"]["floor_ms"] = baseline("sotw", ack_only=True)
        results["delta"]["floor_ms"] = baseline("delta", ack_only=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
    if a.json:  # the server's log beside the results: when each response was handed to gRPC, each ACK read
        shutil.copyfile(log_path, os.path.splitext(a.json)[0] + ".ads.jsonl")
    md = markdown(results)
    print(md)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)

    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(md)


def markdown(r):
    def stat(xs):
        return f"median {statistics.median(xs):.0f} ms (min {min(xs):.0f}, max {max(xs):.0f})" if xs else "-"
    so, de = r["sotw"], r["delta"]

    def ratio(m):
        b = m.get("baseline_ms")
        return f"{statistics.median(m['endpoint_only_ms']) / statistics.median(b):.2f}×" if b and m["endpoint_only_ms"] else "-"
    return "\n".join([
        f"Synthetic mesh: {r['services']} services × {r['endpoints_per_service']} endpoints (half HTTP), served by "
        f"Tests/xds/ads_server.py; `xds2bpf watch` loads it into an empty test cgroup, once over state-of-the-world "
        f"ADS, once over delta ADS (`--delta`). **push → live** is from the server handing the serialized response to "
        f"gRPC to the agent's ACK, which it sends only once the change is live in the kernel (both times from the "
        f"server's log). **agent** is the agent's own share: from the decoded response in hand to the ACK sent (its log)."
        + (f" Each measured push came {r['gap_s']:g} s after the agent had settled (past its idle trim: the heap of"
           f" the push before was returned to the system)." if r.get("gap_s") else ""),
        "",
        "| | state of the world | delta |",
        "|---|---|---|",
        f"| first configuration: connect, fetch, compile, load | {so['initial_load_s']:.1f} s | {de['initial_load_s']:.1f} s |",
        f"| endpoint-only change ({r['changed_services']} services re-addressed), push → live | {stat(so['endpoint_only_ms'])} | {stat(de['endpoint_only_ms'])} |",
        f"| … of which the agent | {stat(so['endpoint_only_client_ms'])} | {stat(de['endpoint_only_client_ms'])} |",
        f"| baseline: the same pushes to a client that decodes and ACKs at once (Tests/xds/ads_client.py, grpcio), push → ACK | {stat(so.get('baseline_ms', []))} | {stat(de.get('baseline_ms', []))} |",
        f"| endpoint-only push → live ÷ baseline (medians) | {ratio(so)} | {ratio(de)} |",
        f"| floor: the same client ACKing endpoint responses without decoding them (`--ack-only`), push → ACK | {stat(so.get('floor_ms', []))} | {stat(de.get('floor_ms', []))} |",
        f"| other change (one service added), push → live | {stat(so['other_ms'])} | - |",
        f"| … of which the agent | {stat(so['other_client_ms'])} | - |",
        f"| agent memory after the run | {so['rss_mib']} MiB resident, {so['peak_rss_mib']} MiB peak | {de['rss_mib']} MiB resident, {de['peak_rss_mib']} MiB peak |",
        f"| agent CPU while idle (10 s) | {so['idle_cpu_percent']} % of one core | {de['idle_cpu_percent']} % of one core |",
        "",
        "The agent's own account of the last update of each kind (state of the world):",
        "",
        f"- endpoint-only: `{(so['endpoint_only_agent'] or [''])[-1]}`",
        f"- other: `{(so['other_agent'] or [''])[-1]}`",
        "",
        "In state of the world the server sends every assignment again (10k); in delta only the changed ones.",
        "",
    ])


def answered(log_path, since, limit=600):
    """Waits until the last response of each type and stream sent since `since` has its ACK/NACK."""
    tail = TAIL.setdefault(log_path, LogTail(log_path))
    end = time.time() + limit
    while time.time() < end:
        tail.poll()
        last = {}
        for nonce, (_, t, url, stream) in tail.sent.items():
            if t < since:
                continue
            if (url, stream) not in last or t >= last[(url, stream)][1]:
                last[(url, stream)] = (nonce, t)
        done = {r.get("response_nonce") for r in tail.verdicts}
        if all(n in done for n, _ in last.values()):
            return
        time.sleep(0.05)
    raise SystemExit(f"responses not answered within {limit} s")


def quiet(path, seconds=0.5, limit=600):
    """Waits until the agent's log has not grown for `seconds` (every type of a push handled)."""
    end = time.time() + limit
    size, since = -1, time.time()
    while time.time() < end:
        now = os.path.getsize(path)
        if now != size:
            size, since = now, time.time()
        elif time.time() - since >= seconds:
            return
        time.sleep(0.05)
    raise SystemExit(f"the agent's log {path} did not settle within {limit} s")


def wait(cond, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


class LogTail:
    """The server's JSON-lines log, read incrementally (responses at 10k services are long lines)."""

    def __init__(self, path):
        self.path, self.pos, self.sent, self.verdicts = path, 0, {}, []

    def poll(self):
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            data = f.read()
        cut = data.rfind(b"\n") + 1
        self.pos += cut
        for line in data[:cut].splitlines():
            r = json.loads(line)
            if r.get("dir") == "response":
                self.sent[r["nonce"]] = (r.get("version_info"), r["t"], r.get("type_url"), r.get("stream"))
            elif r.get("dir") == "request" and r.get("kind") in ("ack", "nack"):
                self.verdicts.append(r)


TAIL = {}


def rss_mib(pid):
    """The process's resident memory now, MiB."""
    st = open(f"/proc/{pid}/status").read()
    return round(int(re.search(r"VmRSS:\s+(\d+)", st).group(1)) / 1024, 1)


def verdict(log_path, since, version, seconds):
    tail = TAIL.setdefault(log_path, LogTail(log_path))
    end = time.time() + seconds
    while time.time() < end:
        tail.poll()
        for r in tail.verdicts:
            v = tail.sent.get(r.get("response_nonce"))
            if v and v[0] == version and v[1] >= since:
                return r
        time.sleep(0.01)
    raise SystemExit(f"no ACK/NACK of {version} within {seconds} s")


def control(port, line):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall((line + "\n").encode())
        reply = s.makefile().readline().strip()
    if not reply.startswith("ok"):
        raise SystemExit(f"control {line}: {reply}")


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


if __name__ == "__main__":
    main()
