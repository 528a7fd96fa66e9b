#!/usr/bin/env python3
"""A real ADS test server for xds2bpf's xDS client tests (and for Envoy itself).

Serves envoy.service.discovery.v3.AggregatedDiscoveryService over gRPC (grpcio + Envoy's own
generated classes from PyPI ``xds-protos``):

* ``StreamAggregatedResources`` (state of the world) and
* ``DeltaAggregatedResources`` (incremental),

from a snapshot given as files the project reads: a length-delimited ``DiscoveryResponse``
stream (``examples/bookinfo/bookinfo.xds.pb``), a binary admin ``ConfigDump``
(``bookinfo.pb``), or any JSON/YAML shape ``scripts/xdslib.py`` collects (config dump,
bootstrap, per-type lists; several files are merged). Resources are served as the exact ``Any``
bytes of the input (a ``.xds.pb`` stream) or as Envoy's deterministic serialisation.

Behaviour (modelled on go-control-plane's snapshot cache in ADS mode):

* Listener and Cluster (and every type requested with no names or with ``*``) are wildcard:
  the response carries every resource of the type; other types (RouteConfiguration,
  ClusterLoadAssignment, ...) carry the requested names that exist.
* State of the world: every response has the type's version and a fresh nonce. A request whose
  ``response_nonce`` is not the last nonce sent for its type is stale and ignored. A request
  with the current nonce and ``error_detail`` is a NACK (logged, no response: the server waits
  for a new version). A request with the current nonce, no error and the same resource names is
  an ACK (no response); with other resource names it is answered with the current version. The
  first request of a stream for a type is answered, except a wildcard one that already holds the
  current version (``version_info`` equal), as go-control-plane does after a reconnect.
* Delta: per stream and type the server keeps the subscription (wildcard or names) and the
  versions the client holds (from ``initial_resource_versions`` and what was sent). A request
  that changes the subscription is answered with the subscribed resources the client does not
  hold at their current version; ACKs/NACKs (``response_nonce`` set, no subscription change)
  are not answered. A new snapshot sends each stream the changed/new resources and
  ``removed_resources`` for the ones it holds that are gone. Resource versions are the first 16
  hex digits of the sha256 of the resource bytes; ``system_version_info`` is the snapshot version.
* Versions: a type's version is the snapshot's (``version_info`` of the input, else ``v1``); a
  ``push`` gives the types whose content changed the new version (``v<N>`` or ``version=V``),
  the others keep theirs and are not re-sent.

Log (``--log FILE``, JSON lines, flushed per line): every request
(``{"dir": "request", "mode": "sotw"|"delta", "stream": N, "kind": "initial"|"ack"|"nack"|
"stale"|"subscribe"|"unsubscribe"|"resubscribe", "type_url", "version_info", "response_nonce",
"resource_names" | "subscribe"/"unsubscribe"/"initial_resource_versions", "error_detail":
{"code", "message"}, "node": id (first request)}``), every response (``"dir": "response"``, with
``version_info``, ``nonce``, ``resources`` names, ``removed``, ``injected``), stream open (with the
names of the stream's metadata headers), refused (``--require-header``) and close, and each node a
stream presents (``"dir": "node"``: id, cluster, metadata as JSON, locality, user agent).

Control channel (``--control tcp:PORT`` on 127.0.0.1, ``tcp:0`` picks a port, or
``--control unix:PATH``; default tcp:0): one command per line, one reply line per command,
``ok ...`` or ``err ...``:

  push FILE [FILE...] [version=V]   load a new snapshot, send it to every stream (changed types)
  bump [version=V]                  new version for every type, same content: everything re-sent
  invalid KIND [NAME] [mode=bytes|semantic]
                                    put an invalid resource into the snapshot (a new version):
                                    bytes = an Any whose value does not parse as KIND; semantic =
                                    parses but Envoy rejects it (listener without address,
                                    cluster with a negative connect_timeout, route with a bad
                                    regex, assignment with port 0). KIND is listener | route |
                                    cluster | endpoint; NAME defaults to the first resource.
  garbage KIND                      one-shot: send every stream a response of KIND whose one
                                    resource is garbage bytes (not kept in the snapshot)
  wrong-type KIND                   one-shot: a response of KIND carrying a Cluster (or, for
                                    cluster, a Listener) Any: resource type URL != response's
  unrequested KIND                  one-shot: a response of KIND (route/endpoint) with a resource
                                    nobody asked for (``unrequested-<n>``)
  oversized KIND                    one-shot: a response of KIND with a 2 MiB resource (for a
                                    client whose message limit is below that)
  require NAME=VALUE                from now on, refuse (UNAUTHENTICATED) a stream whose metadata
                                    lacks NAME: VALUE (VALUE: the rest of the line; empty: no
                                    longer required); open
                                    streams are not affected (``disconnect`` them)
  disconnect [all|STREAM_ID]        end streams with gRPC status UNAVAILABLE
  status                            ok {json: version, types, streams}
  quit                              stop the server (exit 0)

KIND may also be a full type URL. Injections are recorded in the log as responses with
``"injected"``; the nonces are real, so clients NACK them against the right nonce.

Ready line (stdout, one JSON object, flushed): ``{"event": "ready", "port": P, "control":
"tcp:127.0.0.1:Q" | "unix:PATH", "tls": bool, "ca": PATH|null, "version": V, "types": {...}}``.

  .venv/bin/python Tests/xds/ads_server.py examples/bookinfo/bookinfo.xds.pb --port 0 --log ads.jsonl
  .venv/bin/python Tests/xds/ads_server.py examples/bookinfo/bookinfo.json --tls /tmp/certs

``--tls DIR`` serves grpcs with a CA and a server certificate for ``localhost``/127.0.0.1/::1
made with the openssl CLI in DIR (kept when already there: ``ca.pem``, ``server.pem``,
``server.key``). The server listens on 127.0.0.1 only (``--host`` to change it).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import xdslib  # noqa: E402

import grpc  # noqa: E402

P = xdslib.TYPE_PREFIX
T_LISTENER = P + xdslib.LISTENER
T_ROUTE = P + xdslib.ROUTE
T_CLUSTER = P + xdslib.CLUSTER
T_CLA = P + xdslib.ENDPOINT
WILDCARD_TYPES = {T_LISTENER, T_CLUSTER}
KIND_URL = {"listener": T_LISTENER, "lds": T_LISTENER, "route": T_ROUTE, "rds": T_ROUTE,
            "cluster": T_CLUSTER, "cds": T_CLUSTER, "endpoint": T_CLA, "eds": T_CLA}


def type_url_of(kind: str) -> str:
    if kind.startswith(P) or "/" in kind:
        return kind
    try:
        return KIND_URL[kind.lower()]
    except KeyError:
        raise ValueError(f"unknown resource kind {kind!r} (listener, route, cluster, endpoint or a type URL)")


def digest(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# Snapshot loading
# ----------------------------------------------------------------------------------------------


def resource_name(any_msg) -> str | None:
    msg = xdslib.unpack_any(any_msg)
    if msg is None:
        return None
    if msg.DESCRIPTOR.full_name == xdslib.ENDPOINT:
        return msg.cluster_name
    return getattr(msg, "name", None)


def _from_responses(responses) -> tuple[dict, dict]:
    types: dict[str, dict[str, object]] = {}
    versions: dict[str, str] = {}
    for dr in responses:
        res = types.setdefault(dr.type_url, {})
        if dr.version_info:
            versions.setdefault(dr.type_url, dr.version_info)
        for a in dr.resources:
            name = resource_name(a)
            if name is None:
                raise ValueError(f"cannot name a resource of type {a.type_url}")
            res[name] = a
    return types, versions


def load_snapshot(paths: list[str]) -> tuple[dict, dict]:
    """{type_url: {name: Any}}, {type_url: version_info}."""
    xdslib.load_protos()
    from google.protobuf.message import DecodeError

    binary, text = [], []
    for p in paths:
        (binary if p.endswith((".pb", ".bin")) else text).append(p)
    types: dict[str, dict] = {}
    versions: dict[str, str] = {}

    def merge(t, v):
        for url, res in t.items():
            types.setdefault(url, {}).update(res)
        for url, ver in v.items():
            versions.setdefault(url, ver)

    for p in binary:
        data = open(p, "rb").read()
        responses = []
        try:
            for chunk in xdslib.read_delimited(data):
                dr = xdslib.new_message(xdslib.DISCOVERY_RESPONSE)
                dr.ParseFromString(chunk)
                if not dr.type_url:
                    raise ValueError("no type_url")
                responses.append(dr)
        except (DecodeError, ValueError, IndexError):
            responses = None
        if responses is None:  # a binary admin ConfigDump
            dump = xdslib.new_message(xdslib.CONFIG_DUMP)
            dump.ParseFromString(data)
            col = xdslib.Collected()
            xdslib.resources_from_config_dump(dump, os.path.basename(p), col, xdslib.Report())
            responses = xdslib.discovery_responses(col)
        merge(*_from_responses(responses))
    if text:
        col = xdslib.collect_files(text)
        # A config dump's static_* entries come from the bootstrap, not from xDS; a bootstrap
        # file's static_resources are its content (xdslib keeps those).
        merge(*_from_responses(xdslib.discovery_responses(col)))
    return types, versions


# ----------------------------------------------------------------------------------------------
# Server state
# ----------------------------------------------------------------------------------------------


class Log:
    def __init__(self, path: str | None):
        self.fh = open(path, "a", buffering=1) if path else None
        self.lock = threading.Lock()

    def write(self, t: float | None = None, **rec):
        """A record stamped `t` (a request: when it was read off the stream), or else when its JSON is
        ready: the benchmark times a response from its record, and a response's record lists every
        resource name (≈ 4 ms of json.dumps at 10k) — work before the bytes reach gRPC that no
        control plane does."""
        if not self.fh:
            return
        body = json.dumps(rec, sort_keys=True)
        stamp = round(time.time() if t is None else t, 6)
        line = f'{{"t": {stamp}' + (", " + body[1:] if len(body) > 2 else "}")
        with self.lock:
            self.fh.write(line + "\n")


class Snapshot:
    """Immutable: {type_url: {name: Any}} plus a version per type."""

    def __init__(self, types: dict, versions: dict, label: str):
        self.types = types
        self.versions = versions
        self.label = label

    def version(self, url: str) -> str:
        return self.versions.get(url, self.label)

    def resources(self, url: str, names: set[str] | None) -> dict:
        res = self.types.get(url, {})
        if names is None:
            return dict(res)
        return {n: res[n] for n in sorted(names) if n in res}


class Stream:
    ids = itertools.count(1)

    def __init__(self, mode: str, peer: str):
        self.id = next(Stream.ids)
        self.mode = mode
        self.peer = peer
        self.events: queue.Queue = queue.Queue()
        self.arrived = 0.0  # when the request being handled was read off the stream
        self.node = None
        # sotw: url -> {"nonce", "version", "names" (None = wildcard), "nacked"}
        # delta: url -> {"wildcard", "names", "held": {name: version}, "nonce"}
        self.state: dict[str, dict] = {}


class Server:
    def __init__(self, snapshot: Snapshot, log: Log):
        self.lock = threading.Lock()
        self.snapshot = snapshot
        self.seq = 1
        self.log = log
        self.streams: dict[int, Stream] = {}
        self.nonces = itertools.count(1)
        # gRPC metadata a stream must carry (--require-header, the ``require`` command)
        self.required_headers: dict[str, str] = {}

    def nonce(self) -> str:
        return str(next(self.nonces))

    # -- snapshot changes ------------------------------------------------------------------
    def install(self, types: dict, version: str | None, force: bool = False) -> str:
        with self.lock:
            self.seq += 1
            label = version or f"v{self.seq}"
            old = self.snapshot
            versions = {}
            for url in set(types) | set(old.types):
                same = ({n: a.SerializeToString() for n, a in types.get(url, {}).items()} ==
                        {n: a.SerializeToString() for n, a in old.types.get(url, {}).items()})
                versions[url] = old.version(url) if (same and not force) else label
            self.snapshot = Snapshot(types, versions, label)
            streams = list(self.streams.values())
        for s in streams:
            s.events.put(("snapshot", None))
        return label

    def inject(self, what: str, url: str):
        with self.lock:
            streams = list(self.streams.values())
        for s in streams:
            s.events.put(("inject", (what, url)))
        return len(streams)

    def disconnect(self, which: str) -> int:
        with self.lock:
            streams = [s for s in self.streams.values() if which in ("all", "") or str(s.id) == which]
        for s in streams:
            s.events.put(("disconnect", None))
        return len(streams)

    def status(self) -> dict:
        with self.lock:
            snap = self.snapshot
            return {
                "version": snap.label,
                "types": {u: {"version": snap.version(u), "count": len(r)} for u, r in sorted(snap.types.items())},
                "streams": [{"id": s.id, "mode": s.mode, "peer": s.peer, "node": s.node,
                             "types": sorted(s.state)} for s in self.streams.values()],
            }

    # -- streams -----------------------------------------------------------------------------
    def _run(self, mode, request_iterator, context, on_request, on_snapshot, on_inject):
        s = Stream(mode, context.peer())
        with self.lock:
            self.streams[s.id] = s
            required = dict(self.required_headers)
        md = {k: v for k, v in context.invocation_metadata() if not k.endswith("-bin")}
        self.log.write(dir="stream", event="open", mode=mode, stream=s.id, peer=s.peer,
                       headers=sorted(k for k in md if not k.startswith("grpc-") and k != "user-agent"))
        wrong = sorted(k for k, v in required.items() if md.get(k) != v)
        if wrong:
            with self.lock:
                self.streams.pop(s.id, None)
            self.log.write(dir="stream", event="refused", mode=mode, stream=s.id, wrong=wrong)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "ads_server: missing or wrong " + ", ".join(wrong))

        def reader():
            try:
                for req in request_iterator:
                    s.events.put(("request", (req, time.time())))
                s.events.put(("eof", None))
            except grpc.RpcError:  # the client cancelled or the connection broke
                s.events.put(("eof", "cancelled"))
            except Exception as err:  # noqa: BLE001
                s.events.put(("eof", f"error {err!r}"))

        threading.Thread(target=reader, daemon=True).start()
        reason = "eof"
        try:
            while True:
                try:
                    ev, arg = s.events.get(timeout=0.5)
                except queue.Empty:
                    if not context.is_active():
                        reason = "cancelled"
                        break
                    continue
                if ev == "request":
                    req, s.arrived = arg
                    yield from on_request(s, req)
                elif ev == "snapshot":
                    yield from on_snapshot(s)
                elif ev == "inject":
                    yield from on_inject(s, *arg)
                elif ev == "disconnect":
                    reason = "disconnect"
                    self.log.write(dir="stream", event="disconnect", mode=mode, stream=s.id)
                    context.abort(grpc.StatusCode.UNAVAILABLE, "ads_server: disconnect command")
                elif ev == "eof":
                    reason = arg or "eof"
                    break
        finally:
            with self.lock:
                self.streams.pop(s.id, None)
            self.log.write(dir="stream", event="close", mode=mode, stream=s.id, reason=reason)

    def _log_node(self, s: Stream, node):
        from google.protobuf.json_format import MessageToDict
        loc = node.locality
        self.log.write(dir="node", stream=s.id, id=node.id, cluster=node.cluster,
                       metadata=MessageToDict(node.metadata) if node.HasField("metadata") else None,
                       locality=[loc.region, loc.zone, loc.sub_zone] if node.HasField("locality") else None,
                       user_agent=node.user_agent_name)

    @staticmethod
    def _err(req):
        if req.HasField("error_detail"):
            return {"code": req.error_detail.code, "message": req.error_detail.message}
        return None

    # ---------- state of the world ----------
    def sotw(self, request_iterator, context):
        yield from self._run("sotw", request_iterator, context, self._sotw_request, self._sotw_snapshot,
                             self._sotw_inject)

    def _sotw_response(self, s: Stream, url: str, st: dict, injected: str | None = None, resources=None):
        snap = self.snapshot
        dr = xdslib.new_message(xdslib.DISCOVERY_RESPONSE)
        dr.type_url = url
        if resources is None:
            res = snap.resources(url, st["names"])
            dr.version_info = snap.version(url)
            st["version"] = dr.version_info
        else:
            res = resources
            dr.version_info = st.get("version") or snap.version(url)
        for a in res.values():
            dr.resources.append(a)
        dr.nonce = self.nonce()
        st["nonce"] = dr.nonce
        # serialized before the log record: its time is when gRPC gets the bytes to send
        wire = dr.SerializeToString()
        self.log.write(dir="response", mode="sotw", stream=s.id, type_url=url, version_info=dr.version_info,
                       nonce=dr.nonce, resources=list(res), injected=injected)
        return wire

    def _sotw_request(self, s: Stream, req):
        url = req.type_url
        if req.HasField("node"):
            s.node = req.node.id
            self._log_node(s, req.node)
        names = list(req.resource_names)
        wildcard = (url in WILDCARD_TYPES and not names) or "*" in names
        want = None if wildcard else set(names)
        st = s.state.get(url)
        err = self._err(req)
        rec = dict(t=s.arrived, dir="request", mode="sotw", stream=s.id, type_url=url, version_info=req.version_info,
                   response_nonce=req.response_nonce, resource_names=names, node=s.node if req.HasField("node") else None)
        if st is None or not req.response_nonce:
            kind = "initial" if st is None else "resubscribe"
            st = s.state.setdefault(url, {"nonce": None, "version": None, "names": want})
            st["names"] = want
            self.log.write(kind=kind, error_detail=err, **rec)
            if wildcard and req.version_info and req.version_info == self.snapshot.version(url) and kind == "initial":
                st["version"] = req.version_info  # holds the current version already: wait for a change
                return
            yield self._sotw_response(s, url, st)
            return
        if req.response_nonce != st["nonce"]:
            self.log.write(kind="stale", error_detail=err, **rec)
            return
        if err is not None:
            self.log.write(kind="nack", error_detail=err, **rec)
            st["names"] = want
            return
        if want == st["names"]:
            self.log.write(kind="ack", error_detail=None, **rec)
            return
        st["names"] = want
        self.log.write(kind="ack+subscribe", error_detail=None, **rec)
        yield self._sotw_response(s, url, st)

    def _sotw_snapshot(self, s: Stream):
        snap = self.snapshot
        for url, st in list(s.state.items()):
            if st.get("version") != snap.version(url):
                yield self._sotw_response(s, url, st)

    def _sotw_inject(self, s: Stream, what: str, url: str):
        st = s.state.get(url)
        if st is None:
            st = s.state.setdefault(url, {"nonce": None, "version": None,
                                          "names": None if url in WILDCARD_TYPES else set()})
        res = dict(self.snapshot.resources(url, st["names"]))
        res.update(injection(what, url))
        yield self._sotw_response(s, url, st, injected=what, resources=res)

    # ---------- delta ----------
    def delta(self, request_iterator, context):
        yield from self._run("delta", request_iterator, context, self._delta_request, self._delta_snapshot,
                             self._delta_inject)

    def _delta_response(self, s: Stream, url: str, st: dict, injected=None, extra=None):
        snap = self.snapshot
        current = snap.types.get(url, {})
        wanted = current if st["wildcard"] else {n: current[n] for n in st["names"] if n in current}
        dr = xdslib.new_message("envoy.service.discovery.v3.DeltaDiscoveryResponse")
        dr.type_url = url
        dr.system_version_info = snap.version(url)
        sent = []
        for name in sorted(wanted):
            a = wanted[name]
            ver = digest(a.SerializeToString())
            if st["held"].get(name) == ver:
                continue
            r = dr.resources.add()
            r.name = name
            r.version = ver
            r.resource.CopyFrom(a)
            st["held"][name] = ver
            sent.append(name)
        removed = sorted(n for n in st["held"] if n not in wanted)
        for n in removed:
            del st["held"][n]
            dr.removed_resources.append(n)
        for name, a in (extra or {}).items():
            r = dr.resources.add()
            r.name = name
            r.version = digest(a.SerializeToString())
            r.resource.CopyFrom(a)
            sent.append(name)
        if not sent and not removed and not st.get("must_answer"):
            return None
        st["must_answer"] = False
        dr.nonce = self.nonce()
        st["nonce"] = dr.nonce
        wire = dr.SerializeToString()
        self.log.write(dir="response", mode="delta", stream=s.id, type_url=url, version_info=dr.system_version_info,
                       nonce=dr.nonce, resources=sent, removed=removed, injected=injected)
        return wire

    def _delta_request(self, s: Stream, req):
        url = req.type_url
        if req.HasField("node"):
            s.node = req.node.id
            self._log_node(s, req.node)
        sub, unsub = list(req.resource_names_subscribe), list(req.resource_names_unsubscribe)
        err = self._err(req)
        st = s.state.get(url)
        rec = dict(t=s.arrived, dir="request", mode="delta", stream=s.id, type_url=url, response_nonce=req.response_nonce,
                   subscribe=sub, unsubscribe=unsub, initial_resource_versions=dict(req.initial_resource_versions),
                   node=s.node if req.HasField("node") else None)
        first = st is None
        if first:
            st = s.state.setdefault(url, {"wildcard": False, "names": set(), "held": {}, "nonce": None})
            # Legacy wildcard: the first request of a wildcard type with no names.
            st["wildcard"] = url in WILDCARD_TYPES and not sub
            st["held"].update(req.initial_resource_versions)
            st["must_answer"] = True  # the first request of a type is always answered
        if req.response_nonce and not first:
            if req.response_nonce != st["nonce"]:
                kind = "stale"
            else:
                kind = "nack" if err is not None else "ack"
        else:
            kind = "initial" if first else "subscribe"
        for n in sub:
            if n == "*":
                st["wildcard"] = True
            else:
                st["names"].add(n)
        for n in unsub:
            if n == "*":
                st["wildcard"] = False
            else:
                st["names"].discard(n)
                st["held"].pop(n, None)
        if kind in ("ack", "nack", "stale") and (sub or unsub):
            kind += "+subscribe"
        self.log.write(kind=kind, error_detail=err, **rec)
        if kind in ("ack", "nack", "stale"):
            return
        if sub and not first:
            st["must_answer"] = True
        r = self._delta_response(s, url, st)
        if r is not None:
            yield r

    def _delta_snapshot(self, s: Stream):
        for url, st in list(s.state.items()):
            r = self._delta_response(s, url, st)
            if r is not None:
                yield r

    def _delta_inject(self, s: Stream, what: str, url: str):
        st = s.state.get(url)
        if st is None:
            st = s.state.setdefault(url, {"wildcard": url in WILDCARD_TYPES, "names": set(), "held": {}, "nonce": None})
        st["must_answer"] = True
        r = self._delta_response(s, url, st, injected=what, extra=injection(what, url))
        if r is not None:
            yield r


_inject_seq = itertools.count(1)


def injection(what: str, url: str) -> dict:
    """{name: Any} of a one-shot bad resource."""
    from google.protobuf import any_pb2

    n = next(_inject_seq)
    a = any_pb2.Any()
    if what == "garbage":
        a.type_url = url
        a.value = b"\xff\xff\xff\xff\x0f garbage"
        return {f"garbage-{n}": a}
    if what == "oversized":
        a.type_url = url
        a.value = b"\x0a\x0aoversized\x12\x80\x80\x80\x01" + b"x" * (2 << 20)
        return {f"oversized-{n}": a}
    if what == "wrong-type":
        if url == T_CLUSTER:
            m = xdslib.new_message(xdslib.LISTENER)
            m.name = f"wrong-type-{n}"
        else:
            m = xdslib.new_message(xdslib.CLUSTER)
            m.name = f"wrong-type-{n}"
            m.connect_timeout.seconds = 1
        return {m.name: xdslib.pack(m)}
    if what == "unrequested":
        name = f"unrequested-{n}"
        if url == T_CLA:
            m = xdslib.new_message(xdslib.ENDPOINT)
            m.cluster_name = name
        elif url == T_ROUTE:
            m = xdslib.new_message(xdslib.ROUTE)
            m.name = name
        elif url == T_CLUSTER:
            m = xdslib.new_message(xdslib.CLUSTER)
            m.name = name
        else:
            m = xdslib.new_message(xdslib.LISTENER)
            m.name = name
        return {name: xdslib.pack(m)}
    raise ValueError(what)


def invalid_resource(url: str, old, mode: str, name: str):
    """An Any named ``name`` of type ``url`` that Envoy must reject."""
    from google.protobuf import any_pb2

    if mode == "bytes":
        a = any_pb2.Any()
        a.type_url = url
        a.value = b"\x0a\x03abc\xff\xff\xff"  # field 1 then a truncated varint key
        return a
    msg = xdslib.unpack_any(old) if old is not None else xdslib.new_message(url[len(P):])
    if url == T_LISTENER:
        msg.name = name
        msg.ClearField("address")
    elif url == T_CLUSTER:
        msg.name = name
        msg.connect_timeout.seconds = -1
    elif url == T_ROUTE:
        msg.name = name
        vh = msg.virtual_hosts.add()
        vh.name = "ads-server-invalid"
        vh.domains.append("ads-server-invalid.example")
        r = vh.routes.add()
        r.match.safe_regex.regex = "(unclosed"
        r.route.cluster = "x"
    elif url == T_CLA:
        msg.cluster_name = name
        ep = msg.endpoints.add().lb_endpoints.add()
        ep.endpoint.address.socket_address.address = "not-an-ip"
        ep.endpoint.address.socket_address.port_value = 0
    else:
        raise ValueError(f"no semantic invalid form for {url}")
    return xdslib.pack(msg)


# ----------------------------------------------------------------------------------------------
# Control channel
# ----------------------------------------------------------------------------------------------


def parse_opts(words):
    args, opts = [], {}
    for w in words:
        if "=" in w and not w.startswith("/"):
            k, v = w.split("=", 1)
            opts[k] = v
        else:
            args.append(w)
    return args, opts


def handle_command(srv: Server, line: str, stop: threading.Event) -> str:
    words = line.split()
    if not words:
        return "err empty command"
    cmd, (args, opts) = words[0], parse_opts(words[1:])
    try:
        if cmd == "push":
            if not args:
                return "err push needs files"
            types, _ = load_snapshot(args)
            v = srv.install(types, opts.get("version"))
            return f"ok version={v}"
        if cmd == "bump":
            v = srv.install(srv.snapshot.types, opts.get("version"), force=True)
            return f"ok version={v}"
        if cmd == "invalid":
            if not args:
                return "err invalid KIND [NAME] [mode=bytes|semantic]"
            url = type_url_of(args[0])
            mode = opts.get("mode", "bytes")
            cur = srv.snapshot.types.get(url, {})
            name = args[1] if len(args) > 1 else (sorted(cur)[0] if cur else "ads-server-invalid")
            types = {u: dict(r) for u, r in srv.snapshot.types.items()}
            types.setdefault(url, {})[name] = invalid_resource(url, cur.get(name), mode, name)
            v = srv.install(types, opts.get("version"))
            return f"ok version={v} name={name}"
        if cmd in ("garbage", "wrong-type", "unrequested", "oversized"):
            if not args:
                return f"err {cmd} KIND"
            n = srv.inject(cmd, type_url_of(args[0]))
            return f"ok streams={n}"
        if cmd == "require":
            # one NAME=VALUE, the value the rest of the line ("authorization=Bearer TOKEN")
            k, eq, v = line.strip()[len("require"):].strip().partition("=")
            if not eq or not k:
                return "err require NAME=VALUE (an empty VALUE: no longer required)"
            with srv.lock:
                if v:
                    srv.required_headers[k.lower()] = v
                else:
                    srv.required_headers.pop(k.lower(), None)
                return "ok " + " ".join(sorted(srv.required_headers))
        if cmd == "disconnect":
            n = srv.disconnect(args[0] if args else "all")
            return f"ok streams={n}"
        if cmd == "status":
            return "ok " + json.dumps(srv.status(), sort_keys=True)
        if cmd == "quit":
            stop.set()
            return "ok bye"
        return f"err unknown command {cmd!r}"
    except Exception as err:  # noqa: BLE001 - report to the controller
        return f"err {type(err).__name__}: {err}"


def serve_control(srv: Server, spec: str, stop: threading.Event) -> str:
    if spec.startswith("unix:"):
        path = spec[5:]
        if os.path.exists(path):
            os.unlink(path)
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(path)
        where = f"unix:{path}"
    elif spec.startswith("tcp:"):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", int(spec[4:])))
        where = f"tcp:127.0.0.1:{ls.getsockname()[1]}"
    else:
        raise SystemExit(f"ads_server: --control must be tcp:PORT or unix:PATH, not {spec!r}")
    ls.listen(8)

    def client(conn):
        with conn, conn.makefile("rw", buffering=1) as f:
            for line in f:
                reply = handle_command(srv, line.strip(), stop)
                f.write(reply.replace("\n", " ") + "\n")
                f.flush()
                if stop.is_set():
                    return

    def accept():
        while not stop.is_set():
            try:
                conn, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=client, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return where


# ----------------------------------------------------------------------------------------------
# TLS material
# ----------------------------------------------------------------------------------------------


def make_certs(d: str, names: list[str] | None = None) -> tuple[str, str, str]:
    os.makedirs(d, exist_ok=True)
    ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    crt, key = os.path.join(d, "server.pem"), os.path.join(d, "server.key")
    if all(os.path.exists(p) for p in (ca, crt, key)):
        return ca, crt, key

    def run(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "3650",
        "-subj", "/CN=xds2bpf test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    csr = os.path.join(d, "server.csr")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as fh:
        san = ",".join(f"DNS:{n}" for n in names) if names else "DNS:localhost,IP:127.0.0.1,IP:::1"
        fh.write(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n"
                 "basicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
        "-days", "3650", "-extfile", ext)
    return ca, crt, key


# ----------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("snapshot", nargs="+", help="snapshot files (.xds.pb stream, .pb ConfigDump, JSON/YAML)")
    ap.add_argument("--port", type=int, default=0, help="gRPC port (0: pick a free one; printed on the ready line)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--control", default="tcp:0", help="tcp:PORT (127.0.0.1) or unix:PATH")
    ap.add_argument("--log", help="JSON-lines log of requests and responses")
    ap.add_argument("--tls", metavar="DIR", help="serve grpcs with a CA + cert made (or found) in DIR")
    ap.add_argument("--unix", metavar="PATH", help="also serve plaintext gRPC on this Unix socket")
    ap.add_argument("--tls-name", action="append", default=[], metavar="DNS",
                    help="with --tls: the server certificate names only these DNS names (repeatable)")
    ap.add_argument("--require-header", action="append", default=[], metavar="NAME=VALUE",
                    help="refuse (UNAUTHENTICATED) streams without this gRPC metadata (repeatable)")
    ap.add_argument("--version", dest="version", help="version of the initial snapshot (default: the input's, else v1)")
    args = ap.parse_args()

    types, versions = load_snapshot(args.snapshot)
    if args.version:
        versions = {u: args.version for u in types}
    snap = Snapshot(types, versions, args.version or "v1")
    srv = Server(snap, Log(args.log))
    for h in args.require_header:
        k, _, v = h.partition("=")
        srv.required_headers[k.lower()] = v

    class Servicer:
        def StreamAggregatedResources(self, it, ctx):  # noqa: N802
            return srv.sotw(it, ctx)

        def DeltaAggregatedResources(self, it, ctx):  # noqa: N802
            return srv.delta(it, ctx)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64),
                         options=[("grpc.max_receive_message_length", 64 << 20),
                                  ("grpc.max_send_message_length", 64 << 20)])
    # As ads_pb2_grpc registers the service, except that responses arrive here
    # serialized already (see _sotw_response): the log's time of a response is
    # when gRPC gets its bytes, not before the test server's own encoding.
    from envoy.service.discovery.v3 import discovery_pb2

    def wire(m):
        return m if isinstance(m, bytes) else m.SerializeToString()

    servicer = Servicer()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "envoy.service.discovery.v3.AggregatedDiscoveryService", {
            "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                servicer.StreamAggregatedResources, request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                response_serializer=wire),
            "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
                servicer.DeltaAggregatedResources, request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
                response_serializer=wire),
        }),))
    addr = f"{args.host}:{args.port}" if ":" not in args.host else f"[{args.host}]:{args.port}"
    ca = None
    if args.tls:
        ca, crt, key = make_certs(args.tls, args.tls_name)
        creds = grpc.ssl_server_credentials([(open(key, "rb").read(), open(crt, "rb").read())])
        port = server.add_secure_port(addr, creds)
    else:
        port = server.add_insecure_port(addr)
    if port == 0:
        print(f"ads_server: cannot listen on {addr}", file=sys.stderr)
        return 1
    if args.unix and server.add_insecure_port("unix:" + args.unix) == 0:
        print(f"ads_server: cannot listen on unix:{args.unix}", file=sys.stderr)
        return 1
    server.start()
    stop = threading.Event()
    control = serve_control(srv, args.control, stop)
    print(json.dumps({"event": "ready", "port": port, "control": control, "tls": bool(args.tls), "ca": ca, "unix": args.unix,
                      "version": snap.label,
                      "types": {u: len(r) for u, r in sorted(types.items())}}, sort_keys=True), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    server.stop(grace=0.5).wait(2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
