"""Shared helpers for xds2bpf's Python tooling.

Used by scripts/make-pb.py, scripts/gen-synthetic.py, scripts/validate-fixtures.py and
examples/bookinfo/generate.py. Four parts:

1. Envoy's generated Python classes (PyPI ``xds-protos``, see scripts/requirements.txt):
   ``load_protos()`` imports every ``*_pb2`` module so that every ``@type`` Envoy knows
   resolves through the default descriptor pool.
2. JSON/YAML → messages: ``parse_json()`` runs ``json_format.ParseDict`` after a schema-aware
   pass (``Sanitizer``) that deals with ``Any`` payloads whose type is not in xds-protos
   (Istio's ``stats.PluginConfig``, metadata exchange, legacy v2 types, ...), and
   ``collect()`` finds the Listeners / RouteConfigurations / Clusters / ClusterLoadAssignments
   in every input shape the compiler accepts (ConfigDump, bootstrap, per-type lists, ...).
3. Deterministic binary output: ``canonicalize()`` re-serialises nested ``Any`` values with
   ``deterministic=True``; ``write_delimited()`` writes a varint-length-prefixed stream
   (protobuf's ``writeDelimitedTo`` framing) of ``DiscoveryResponse`` messages.
4. Builders for Istio-shaped resources as proto3 JSON (snake_case), shared by the Bookinfo
   example and the synthetic generator so that both look like what istiod pushes.

Unknown ``Any`` types (``--unknown-any``):

* ``keep-type`` (default): the ``Any`` keeps its type URL and gets an empty value. A
  placeholder message type with that full name and no fields is registered in the default
  descriptor pool, so json_format can build the ``Any``; the JSON body is dropped (reported).
  This is what the compiler sees in a real binary snapshot (a type URL it does not know),
  except that the real one would carry bytes. Falls back to ``typed-struct`` when the type
  name cannot be registered (invalid identifier or clash with an existing symbol).
* ``typed-struct``: the payload is wrapped as ``xds.type.v3.TypedStruct{type_url, value}``,
  Envoy's own envelope for configuration of types it was not built with. Nothing is lost, but
  the outer type URL changes.
* ``drop``: the ``Any`` field is removed (a filter keeps its ``name``); an ``Any`` element of a
  repeated field or map is removed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
import re
import sys
from dataclasses import dataclass, field
from typing import Iterable, Iterator

TYPE_PREFIX = "type.googleapis.com/"

LISTENER = "envoy.config.listener.v3.Listener"
ROUTE = "envoy.config.route.v3.RouteConfiguration"
CLUSTER = "envoy.config.cluster.v3.Cluster"
ENDPOINT = "envoy.config.endpoint.v3.ClusterLoadAssignment"
CONFIG_DUMP = "envoy.admin.v3.ConfigDump"
DISCOVERY_RESPONSE = "envoy.service.discovery.v3.DiscoveryResponse"
BOOTSTRAP = "envoy.config.bootstrap.v3.Bootstrap"
TYPED_STRUCT = "xds.type.v3.TypedStruct"

#: Resource kinds in the order a snapshot lists them (and the discovery stream writes them).
KINDS = ("listener", "route", "cluster", "endpoint")
KIND_MESSAGE = {"listener": LISTENER, "route": ROUTE, "cluster": CLUSTER, "endpoint": ENDPOINT}
MESSAGE_KIND = {v: k for k, v in KIND_MESSAGE.items()}
KIND_LABEL = {
    "listener": "listeners",
    "route": "route configurations",
    "cluster": "clusters",
    "endpoint": "cluster load assignments",
}

UNKNOWN_ANY_MODES = ("keep-type", "typed-struct", "drop")

# Well-known types whose proto3 JSON form is not an object of their fields.
_SPECIAL_JSON = {
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.Duration",
    "google.protobuf.Timestamp",
    "google.protobuf.FieldMask",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
}

_PLACEHOLDER_FILE = "xds2bpf/placeholder/"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_JSON_DEPTH = 1000

# --------------------------------------------------------------------------------------------
# 1. Envoy's generated classes
# --------------------------------------------------------------------------------------------

_loaded = False


def load_protos() -> None:
    """Import every generated ``*_pb2`` module of xds-protos (envoy, xds, udpa)."""
    global _loaded
    if _loaded:
        return
    try:
        importlib.import_module("google.protobuf.json_format")
        importlib.import_module("envoy")  # xds-protos
    except ImportError as err:  # pragma: no cover - environment problem
        sys.exit(
            f"error: {err}. Install the pinned Python dependencies first:\n"
            "  python3 -m pip install -r scripts/requirements.txt"
        )
    for top in ("envoy", "xds", "udpa"):
        pkg = importlib.import_module(top)
        for info in pkgutil.walk_packages(pkg.__path__, top + "."):
            if info.name.endswith("_pb2"):
                importlib.import_module(info.name)
    _loaded = True


def pool():
    from google.protobuf import descriptor_pool

    return descriptor_pool.Default()


def find_descriptor(full_name: str):
    try:
        return pool().FindMessageTypeByName(full_name)
    except KeyError:
        return None


def message_class(full_name: str):
    from google.protobuf import message_factory

    load_protos()
    return message_factory.GetMessageClass(pool().FindMessageTypeByName(full_name))


def new_message(full_name: str):
    return message_class(full_name)()


def type_name(type_url: str) -> str:
    return type_url.rsplit("/", 1)[-1]


def _is_repeated(fd) -> bool:
    rep = getattr(fd, "is_repeated", None)
    if rep is not None:
        return bool(rep)
    return fd.label == fd.LABEL_REPEATED


def _is_map(fd) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


# --------------------------------------------------------------------------------------------
# 2. JSON → messages
# --------------------------------------------------------------------------------------------


class Report:
    """Collects notes about what the conversion changed or skipped (printed on stderr)."""

    def __init__(self) -> None:
        self.unknown_any: dict[str, dict] = {}
        self.notes: list[str] = []

    def unknown(self, type_url: str, path: str, action: str) -> None:
        entry = self.unknown_any.setdefault(type_url, {"count": 0, "first": path, "actions": set()})
        entry["count"] += 1
        entry["actions"].add(action)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def lines(self) -> list[str]:
        out = []
        for url in sorted(self.unknown_any):
            e = self.unknown_any[url]
            actions = " / ".join(sorted(e["actions"]))
            out.append(f"unknown Any type {url} x{e['count']} ({actions}; first at {e['first']})")
        out.extend(self.notes)
        return out

    def print(self, prog: str, stream=None) -> None:
        stream = stream or sys.stderr
        for line in self.lines():
            print(f"{prog}: note: {line}", file=stream)


_DROP = object()


class Sanitizer:
    """Walks a JSON value alongside its message descriptor and rewrites ``Any`` objects whose
    ``@type`` is not in the descriptor pool, according to ``mode`` (see module docstring).
    Copy-on-write: the input is never modified; unchanged sub-trees are shared."""

    def __init__(self, mode: str = "keep-type", report: Report | None = None) -> None:
        if mode not in UNKNOWN_ANY_MODES:
            raise ValueError(f"unknown-any mode must be one of {UNKNOWN_ANY_MODES}")
        self.mode = mode
        self.report = report or Report()
        self._cache: dict[str, object] = {}

    # public
    def message(self, obj, desc, path: str = "$"):
        out = self._value(obj, desc, path)
        return None if out is _DROP else out

    # internals
    def _lookup(self, name: str):
        if name in self._cache:
            return self._cache[name]
        d = find_descriptor(name)
        self._cache[name] = d
        return d

    def _value(self, obj, desc, path):
        fn = desc.full_name
        if fn == "google.protobuf.Any":
            return self._any(obj, path)
        if fn in _SPECIAL_JSON or not isinstance(obj, dict):
            return obj
        return self._fields(obj, desc, path)

    def _fields(self, obj: dict, desc, path):
        out = None
        by_name = desc.fields_by_name
        by_camel = desc.fields_by_camelcase_name
        for key, val in obj.items():
            fd = by_name.get(key) or by_camel.get(key)
            if fd is None or fd.message_type is None or val is None:
                continue
            sub = fd.message_type
            if _is_map(fd):
                vfd = sub.fields_by_name["value"]
                if vfd.message_type is None or not isinstance(val, dict):
                    continue
                new = self._container(val, val.items(), vfd.message_type, f"{path}.{key}")
            elif _is_repeated(fd):
                if not isinstance(val, list):
                    continue
                new = self._container(val, enumerate(val), sub, f"{path}.{key}")
            else:
                new = self._value(val, sub, f"{path}.{key}")
            if new is val:
                continue
            if out is None:
                out = dict(obj)
            if new is _DROP:
                del out[key]
            else:
                out[key] = new
        return obj if out is None else out

    def _container(self, original, items, desc, path):
        """Map values or list elements; returns ``original`` when nothing changed."""
        changed = False
        result = []
        for k, v in items:
            nv = self._value(v, desc, f"{path}[{k!r}]")
            if nv is not v:
                changed = True
            if nv is not _DROP:
                result.append((k, nv))
        if not changed:
            return original
        return dict(result) if isinstance(original, dict) else [v for _, v in result]

    def _any(self, obj, path):
        if not isinstance(obj, dict):
            return obj
        url = obj.get("@type")
        if not isinstance(url, str):
            return obj
        name = type_name(url)
        desc = self._lookup(name)
        if desc is not None and desc.file.name.startswith(_PLACEHOLDER_FILE):
            desc = None  # registered by an earlier keep-type pass: still unknown
        if desc is not None:
            if desc.full_name in _SPECIAL_JSON:
                return obj
            return self._fields(obj, desc, path)
        mode = self.mode
        if mode == "keep-type":
            if self._register_placeholder(name):
                self.report.unknown(url, path, "kept type URL, contents dropped" if len(obj) > 1 else "kept type URL")
                return obj if len(obj) == 1 else {"@type": url}
            mode = "typed-struct"
        if mode == "typed-struct":
            self.report.unknown(url, path, "wrapped in xds.type.v3.TypedStruct")
            body = {k: v for k, v in obj.items() if k != "@type"}
            return {"@type": TYPE_PREFIX + TYPED_STRUCT, "type_url": url, "value": body}
        self.report.unknown(url, path, "dropped")
        return _DROP

    def _register_placeholder(self, name: str) -> bool:
        from google.protobuf import descriptor_pb2

        known = find_descriptor(name)
        if known is not None:
            return known.file.name.startswith(_PLACEHOLDER_FILE)
        parts = name.split(".")
        if not all(_IDENT.match(p) for p in parts):
            return False
        fdp = descriptor_pb2.FileDescriptorProto(
            name=f"{_PLACEHOLDER_FILE}{name}.proto", package=".".join(parts[:-1]), syntax="proto3"
        )
        fdp.message_type.add(name=parts[-1])
        try:
            pool().AddSerializedFile(fdp.SerializeToString())
            pool().FindMessageTypeByName(name)
        except Exception:  # noqa: BLE001 - clash with an existing symbol, bad name, ...
            return False
        self._cache.pop(name, None)
        return True


def parse_json(obj, full_name_or_message, *, unknown_any: str = "keep-type", strict: bool = False,
               report: Report | None = None, path: str = "$", sanitizer: Sanitizer | None = None):
    """Parse a proto3-JSON value (already loaded: dicts/lists) into a message.

    ``strict`` rejects unknown fields (a typo in a field name fails); otherwise they are ignored
    (``ignore_unknown_fields=True``), as a parser of other tools' output must."""
    from google.protobuf import json_format

    load_protos()
    msg = new_message(full_name_or_message) if isinstance(full_name_or_message, str) else full_name_or_message
    san = sanitizer or Sanitizer(unknown_any, report)
    clean = san.message(obj, msg.DESCRIPTOR, path)
    if clean is None:
        return msg
    json_format.ParseDict(clean, msg, ignore_unknown_fields=not strict, max_recursion_depth=_JSON_DEPTH)
    return msg


def read_document(path: str):
    """Load a JSON or YAML file (YAML also accepts JSON with trailing commas)."""
    with open(path, "rb") as fh:
        data = fh.read()
    text = data.decode("utf-8")
    if not path.endswith((".yaml", ".yml")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    try:
        import yaml
    except ImportError:  # pragma: no cover
        sys.exit("error: PyYAML is needed for YAML input (pip install -r scripts/requirements.txt)")
    return yaml.safe_load(text)


# --------------------------------------------------------------------------------------------
# Resources found in inputs
# --------------------------------------------------------------------------------------------


@dataclass
class Resource:
    kind: str
    message: object  # typed Envoy message
    origin: str
    static: bool = False  # from a bootstrap's static_resources or a dump's static_* entries
    version: str = ""
    bootstrap: bool = False  # from a bootstrap file (its static resources are its content)


@dataclass
class Collected:
    resources: list[Resource] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # kind -> version_info
    config_dumps: list[tuple[str, object]] = field(default_factory=list)  # (origin, ConfigDump)

    def of(self, kind: str, include_static: bool = True) -> list[Resource]:
        """Resources of one kind. ``include_static=False`` leaves out a ConfigDump's static
        entries (bootstrap-defined, never sent over xDS); a bootstrap file's are always in."""
        return [r for r in self.resources
                if r.kind == kind and (include_static or not r.static or r.bootstrap)]


def unpack_any(any_msg):
    """Typed message inside an Any, or None when its type is unknown (or a placeholder)."""
    desc = find_descriptor(type_name(any_msg.type_url))
    if desc is None or desc.file.name.startswith(_PLACEHOLDER_FILE):
        return None
    from google.protobuf import message_factory

    inner = message_factory.GetMessageClass(desc)()
    inner.ParseFromString(any_msg.value)
    return inner


_HINT_TOKENS = {
    "listener": "listener", "listeners": "listener", "lds": "listener",
    "route": "route", "routes": "route", "rds": "route", "routeconfig": "route",
    "routeconfigs": "route", "routeconfiguration": "route", "routeconfigurations": "route",
    "cluster": "cluster", "clusters": "cluster", "cds": "cluster",
    "endpoint": "endpoint", "endpoints": "endpoint", "eds": "endpoint", "cla": "endpoint",
    "clas": "endpoint", "assignment": "endpoint", "assignments": "endpoint",
    "loadassignment": "endpoint", "loadassignments": "endpoint",
    "clusterloadassignment": "endpoint", "clusterloadassignments": "endpoint",
}


def _kind_from_hint(hint: str) -> str | None:
    """Resource kind named by a file name or key: the last word that names one wins, so
    ``http-route.clusters.yaml`` is clusters and ``cluster_load_assignments`` endpoints."""
    kind = None
    for tok in re.split(r"[^A-Za-z]+|(?<=[a-z])(?=[A-Z])", hint):
        kind = _HINT_TOKENS.get(tok.lower(), kind)
    return kind


def _kind_from_type(url: str) -> str | None:
    return MESSAGE_KIND.get(type_name(url))


_DUMP_SECTIONS = {
    "envoy.admin.v3.ListenersConfigDump": [
        ("static_listeners", "listener", True, None),
        ("dynamic_listeners", "listener", False, "active_state"),
    ],
    "envoy.admin.v3.ClustersConfigDump": [
        ("static_clusters", "cluster", True, None),
        ("dynamic_active_clusters", "cluster", False, None),
    ],
    "envoy.admin.v3.RoutesConfigDump": [
        ("static_route_configs", "route_config", True, None),
        ("dynamic_route_configs", "route_config", False, None),
    ],
    "envoy.admin.v3.EndpointsConfigDump": [
        ("static_endpoint_configs", "endpoint_config", True, None),
        ("dynamic_endpoint_configs", "endpoint_config", False, None),
    ],
}


def resources_from_config_dump(dump, origin: str, out: Collected, report: Report) -> None:
    """Extract routing resources from a parsed ``envoy.admin.v3.ConfigDump``. Dynamic listeners
    contribute their ``active_state`` only (warming/draining states are not in force)."""
    for i, cfg in enumerate(dump.configs):
        tname = type_name(cfg.type_url)
        sections = _DUMP_SECTIONS.get(tname)
        if sections is None:
            report.note(f"{origin}: configs[{i}] {tname}: not routing, skipped")
            continue
        section_dump = unpack_any(cfg)
        dump_version = getattr(section_dump, "version_info", "")
        for fname, inner_field, static, state in sections:
            for j, entry in enumerate(getattr(section_dump, fname)):
                holder = entry
                if state is not None:
                    if not entry.HasField(state):
                        report.note(f"{origin}: configs[{i}].{fname}[{j}] ({entry.name}) has no {state}, skipped")
                        continue
                    holder = getattr(entry, state)
                any_msg = getattr(holder, inner_field)
                kind = _kind_from_type(any_msg.type_url)
                where = f"{origin}: configs[{i}].{fname}[{j}]"
                if kind is None:
                    report.note(f"{where}: resource type {any_msg.type_url} is not a v3 routing type, skipped")
                    continue
                msg = unpack_any(any_msg)
                version = getattr(holder, "version_info", "") or dump_version
                out.resources.append(Resource(kind, msg, where, static, version))
                if not static and version and kind not in out.versions:
                    out.versions[kind] = version
        if dump_version:
            k = {"envoy.admin.v3.ListenersConfigDump": "listener", "envoy.admin.v3.ClustersConfigDump": "cluster"}.get(tname)
            if k:
                out.versions[k] = dump_version


def collect(doc, origin: str, out: Collected, *, unknown_any: str = "keep-type", strict: bool = False,
            report: Report | None = None, sanitizer: Sanitizer | None = None, hint: str | None = None) -> None:
    """Find routing resources in one loaded document and append them to ``out``.

    Shapes: admin ConfigDump (``configs``); ``{"xds": {name: ConfigDump}}`` (egctl); bootstrap
    (``static_resources``); DiscoveryResponse / ``resources:`` lists (items with ``@type`` or
    Kuma's ``{name, resource}``); ``{typeUrl: {name: resource}}``; ``{listeners: [...], ...}``;
    a bare list or single resource whose kind comes from ``@type`` or from ``hint`` (the file
    name, e.g. ``*.listeners.yaml``)."""
    report = report or Report()
    san = sanitizer or Sanitizer(unknown_any, report)

    def parse(obj, full_name, path):
        return parse_json(obj, full_name, strict=strict, sanitizer=san, path=path)

    def add_item(item, kind, path, static=False, version="", bootstrap=False):
        if isinstance(item, dict) and "@type" in item:
            any_msg = parse(item, "google.protobuf.Any", path)
            k = _kind_from_type(any_msg.type_url)
            if k is None:
                report.note(f"{path}: {item['@type']} is not a routing resource, skipped")
                return
            msg = unpack_any(any_msg)
            kind = k
        elif isinstance(item, dict) and isinstance(item.get("resource"), dict):  # Kuma
            add_item(item["resource"], kind, f"{path}.resource", static, version, bootstrap)
            return
        else:
            if kind is None:
                raise ValueError(f"{path}: cannot tell the resource type (no @type and no type hint)")
            msg = parse(item, KIND_MESSAGE[kind], path)
        out.resources.append(Resource(kind, msg, path, static, version, bootstrap))

    if isinstance(doc, list):
        kind = _kind_from_hint(hint or "")
        for i, item in enumerate(doc):
            add_item(item, kind, f"{origin}[{i}]")
        return
    if not isinstance(doc, dict):
        raise ValueError(f"{origin}: not a JSON/YAML object or list")

    if "configs" in doc:
        dump = parse(doc, CONFIG_DUMP, origin)
        out.config_dumps.append((origin, dump))
        resources_from_config_dump(dump, origin, out, report)
        return
    if isinstance(doc.get("xds"), dict):
        for name, sub in doc["xds"].items():
            collect(sub, f"{origin}.xds[{name!r}]", out, strict=strict, report=report, sanitizer=san)
        return
    static = doc.get("static_resources", doc.get("staticResources"))
    if isinstance(static, dict):
        for key, kind in (("listeners", "listener"), ("clusters", "cluster")):
            for i, item in enumerate(static.get(key) or []):
                add_item(item, kind, f"{origin}.static_resources.{key}[{i}]", static=True, bootstrap=True)
        return
    if "@type" in doc and not any(k in doc for k in ("resources",)):
        add_item(doc, None, origin)
        return
    if isinstance(doc.get("resources"), list):
        url = doc.get("type_url") or doc.get("typeUrl") or ""
        kind = _kind_from_type(url) if url else _kind_from_hint(hint or "")
        version = str(doc.get("version_info") or doc.get("versionInfo") or "")
        for i, item in enumerate(doc["resources"]):
            add_item(item, kind, f"{origin}.resources[{i}]", version=version)
        if kind and version:
            out.versions.setdefault(kind, version)
        return
    found = False
    for key, val in doc.items():
        if isinstance(key, str) and key.startswith(TYPE_PREFIX) and isinstance(val, (dict, list)):
            kind = _kind_from_type(key)
            items = val.items() if isinstance(val, dict) else enumerate(val)
            for name, item in items:
                if kind is None:
                    report.note(f"{origin}[{key!r}]: not a routing resource type, skipped")
                    break
                add_item(item, kind, f"{origin}[{key!r}][{name!r}]")
            found = True
        elif isinstance(val, list) and _kind_from_hint(str(key)):
            for i, item in enumerate(val):
                add_item(item, _kind_from_hint(str(key)), f"{origin}.{key}[{i}]")
            found = True
    if found:
        return
    kind = _kind_from_hint(hint or "")
    if kind is not None:
        add_item(doc, kind, origin)
        return
    if any(k in doc for k in ("dynamic_resources", "dynamicResources", "node", "admin")):
        report.note(f"{origin}: bootstrap without static_resources, nothing to take")
        return
    raise ValueError(f"{origin}: no xDS resources found (not a ConfigDump, bootstrap, resource list or typed resource)")


def collect_files(paths: Iterable[str], kind: str | None = None, report: Report | None = None,
                  unknown_any: str = "keep-type", strict: bool = False) -> Collected:
    """Collect resources from files; ``kind`` overrides the file-name hint for untyped items."""
    out = Collected()
    report = report or Report()
    san = Sanitizer(unknown_any, report)
    for p in paths:
        name = os.path.basename(p)
        collect(read_document(p), name, out, strict=strict, report=report, sanitizer=san, hint=kind or name)
    return out


# --------------------------------------------------------------------------------------------
# 3. Deterministic binary output
# --------------------------------------------------------------------------------------------


def canonicalize(msg) -> None:
    """Re-serialise every nested ``Any`` with ``deterministic=True`` (bottom-up), so maps inside
    typed configs (metadata, typed_extension_protocol_options, ...) are written in key order.
    Anys whose type is unknown are left as they are."""
    for fd, val in msg.ListFields():
        sub = fd.message_type
        if sub is None:
            continue
        name = sub.full_name
        if name.startswith("google.protobuf.") and name != "google.protobuf.Any":
            continue
        if _is_map(fd):
            vsub = sub.fields_by_name["value"].message_type
            if vsub is None:
                continue
            for v in val.values():
                _canonical_one(v)
        elif _is_repeated(fd):
            for v in val:
                _canonical_one(v)
        else:
            _canonical_one(val)


def _canonical_one(m) -> None:
    if m.DESCRIPTOR.full_name == "google.protobuf.Any":
        inner = unpack_any(m)
        if inner is None:
            return
        canonicalize(inner)
        m.value = inner.SerializeToString(deterministic=True)
    else:
        canonicalize(m)


def pack(msg):
    """Any holding ``msg`` (canonicalised, deterministic bytes)."""
    from google.protobuf import any_pb2

    canonicalize(msg)
    a = any_pb2.Any()
    a.type_url = TYPE_PREFIX + msg.DESCRIPTOR.full_name
    a.value = msg.SerializeToString(deterministic=True)
    return a


def serialize(msg) -> bytes:
    canonicalize(msg)
    return msg.SerializeToString(deterministic=True)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def write_delimited(fh, payloads: Iterable[bytes]) -> None:
    """Varint length prefix + bytes per message (protobuf's writeDelimitedTo framing)."""
    for b in payloads:
        fh.write(varint(len(b)))
        fh.write(b)


def read_delimited(data: bytes) -> Iterator[bytes]:
    pos = 0
    while pos < len(data):
        n = shift = 0
        while True:
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        yield data[pos:pos + n]
        pos += n


def non_eds_assignments(collected: Collected, include_static: bool = True) -> set[str]:
    """Names of ClusterLoadAssignments that belong to clusters which are not EDS (Envoy's
    /config_dump?include_eds lists the host set of every cluster, BlackHoleCluster and
    ORIGINAL_DST ones included; a control plane sends CLAs for EDS clusters only)."""
    eds_names, other = set(), set()
    for r in collected.of("cluster", include_static):
        c = r.message
        if c.WhichOneof("cluster_discovery_type") == "type" and c.type == 3:  # EDS
            eds_names.add(c.eds_cluster_config.service_name or c.name)
        else:
            other.add(c.name)
    return other - eds_names


def discovery_responses(collected: Collected, *, include_static: bool = False,
                        versions: dict[str, str] | None = None, eds_only: bool = True,
                        report: Report | None = None) -> list:
    """One ``DiscoveryResponse`` per resource type (Listener, RouteConfiguration, Cluster,
    ClusterLoadAssignment, in that order; types without resources are left out). Each carries
    ``version_info`` (from the input, else a content hash), ``type_url`` and ``resources`` as
    Any, sorted by name; no ``nonce`` (a nonce belongs to one stream; ``xds2bpf fetch`` writes none either, so
    a snapshot fetched from a server serving this file is byte-identical to it). With ``eds_only``, CLAs of clusters that are in
    the snapshot but not EDS (synthesised by Envoy's config dump) are left out."""
    out = []
    versions = dict(collected.versions, **(versions or {}))
    skip_cla = non_eds_assignments(collected, include_static) if eds_only else set()
    for kind in KINDS:
        res = collected.of(kind, include_static)
        if kind == "endpoint" and skip_cla:
            kept = [r for r in res if r.message.cluster_name not in skip_cla]
            if report is not None and len(kept) != len(res):
                report.note(f"left out {len(res) - len(kept)} ClusterLoadAssignments of non-EDS clusters "
                            f"({', '.join(sorted(skip_cla & {r.message.cluster_name for r in res}))})")
            res = kept
        if not res:
            continue
        # Sorted by name, as `xds2bpf fetch` writes them (xDS resource sets are unordered).
        res = sorted(res, key=lambda r: r.message.cluster_name if kind == "endpoint" else r.message.name)
        dr = new_message(DISCOVERY_RESPONSE)
        dr.type_url = TYPE_PREFIX + KIND_MESSAGE[kind]
        h = hashlib.sha256(dr.type_url.encode())
        for r in res:
            a = pack(r.message)
            h.update(a.value)
            dr.resources.append(a)
        digest = h.hexdigest()
        dr.version_info = versions.get(kind) or digest[:16]
        out.append(dr)
    return out


def discovery_stream(collected: Collected, *, include_static: bool = False,
                     versions: dict[str, str] | None = None, eds_only: bool = True,
                     report: Report | None = None) -> tuple[bytes, str]:
    """The length-delimited DiscoveryResponse stream and a one-line summary of it."""
    import io

    responses = discovery_responses(collected, include_static=include_static, versions=versions,
                                    eds_only=eds_only, report=report)
    buf = io.BytesIO()
    write_delimited(buf, (r.SerializeToString(deterministic=True) for r in responses))
    counts = {r.type_url: len(r.resources) for r in responses}
    text = f"{len(responses)} DiscoveryResponses: " + ", ".join(
        f"{counts.get(TYPE_PREFIX + KIND_MESSAGE[k], 0)} {KIND_LABEL[k]}" for k in KINDS)
    left_out = sum(len(collected.of(k)) - len(collected.of(k, include_static)) for k in KINDS)
    if left_out:
        text += f" ({left_out} static ConfigDump entries left out; --include-static adds them)"
    return buf.getvalue(), text


_SECTION_FOR = {
    "listener": ("envoy.admin.v3.ListenersConfigDump", "static_listeners", "dynamic_listeners"),
    "cluster": ("envoy.admin.v3.ClustersConfigDump", "static_clusters", "dynamic_active_clusters"),
    "route": ("envoy.admin.v3.RoutesConfigDump", "static_route_configs", "dynamic_route_configs"),
    "endpoint": ("envoy.admin.v3.EndpointsConfigDump", "static_endpoint_configs", "dynamic_endpoint_configs"),
}


def config_dump_from(collected: Collected, versions: dict[str, str] | None = None):
    """Build an admin ``ConfigDump`` (clusters, endpoints, listeners, routes sections: the
    order Envoy writes them) from collected resources: static ones become ``static_*``
    entries, the others dynamic entries."""
    from google.protobuf import any_pb2

    versions = dict(collected.versions, **(versions or {}))
    dump = new_message(CONFIG_DUMP)
    for kind in ("cluster", "endpoint", "listener", "route"):  # Envoy's /config_dump order
        res = collected.of(kind)
        if not res:
            continue
        tname, static_field, dyn_field = _SECTION_FOR[kind]
        section = new_message(tname)
        if kind in ("listener", "cluster") and versions.get(kind):
            section.version_info = versions[kind]
        for r in res:
            packed = pack(r.message)
            if kind == "listener":
                if r.static:
                    e = section.static_listeners.add()
                    e.listener.CopyFrom(packed)
                else:
                    e = section.dynamic_listeners.add()
                    e.name = r.message.name
                    e.active_state.listener.CopyFrom(packed)
                    e.active_state.version_info = r.version or versions.get(kind, "")
            elif kind == "cluster":
                e = (section.static_clusters if r.static else section.dynamic_active_clusters).add()
                e.cluster.CopyFrom(packed)
                if not r.static:
                    e.version_info = r.version or versions.get(kind, "")
            elif kind == "route":
                e = (section.static_route_configs if r.static else section.dynamic_route_configs).add()
                e.route_config.CopyFrom(packed)
                if not r.static:
                    e.version_info = r.version or versions.get(kind, "")
            else:
                e = (section.static_endpoint_configs if r.static else section.dynamic_endpoint_configs).add()
                e.endpoint_config.CopyFrom(packed)
                if not r.static:
                    e.version_info = r.version or versions.get(kind, "")
        a = any_pb2.Any()
        a.type_url = TYPE_PREFIX + tname
        a.value = section.SerializeToString(deterministic=True)
        dump.configs.append(a)
    return dump


def summary(collected: Collected, include_static: bool = True) -> str:
    parts = []
    for kind in KINDS:
        n = len(collected.of(kind, include_static))
        parts.append(f"{n} {KIND_LABEL[kind]}")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# 4. Istio-shaped resources as proto3 JSON (snake_case), shared by examples/bookinfo/generate.py
#    and scripts/gen-synthetic.py. Shapes follow what istiod 1.18-1.20 pushes to a sidecar and
#    what `istioctl proxy-config all -o json` prints (see shared/corpus/istio/).
# --------------------------------------------------------------------------------------------

T_LISTENER = TYPE_PREFIX + LISTENER
T_ROUTE = TYPE_PREFIX + ROUTE
T_CLUSTER = TYPE_PREFIX + CLUSTER
T_CLA = TYPE_PREFIX + ENDPOINT
T_HCM = TYPE_PREFIX + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
T_TCP_PROXY = TYPE_PREFIX + "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
T_ROUTER = TYPE_PREFIX + "envoy.extensions.filters.http.router.v3.Router"
T_ISTIO_STATS = TYPE_PREFIX + "stats.PluginConfig"  # Istio's stats filter; not in xds-protos
T_METADATA_EXCHANGE = TYPE_PREFIX + "envoy.tcp.metadataexchange.config.MetadataExchange"  # ditto

ADS_SOURCE = {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}
MAX_U32 = 4294967295


def sock(ip: str, port: int) -> dict:
    return {"socket_address": {"address": ip, "port_value": port}}


def host_literal(ip: str) -> str:
    """An address as written in a Host header / virtual host domain ([v6])."""
    return f"[{ip}]" if ":" in ip else ip


def istio_stats_filter(inbound: bool = False) -> dict:
    tc = {"@type": T_ISTIO_STATS}
    if inbound:
        tc["disable_host_header_fallback"] = True
    return {"name": "istio.stats", "typed_config": tc}


def metadata_exchange_filter() -> dict:
    return {"name": "istio.metadata_exchange",
            "typed_config": {"@type": T_METADATA_EXCHANGE, "protocol": "istio-peer-exchange"}}


def tcp_proxy_filter(stat_prefix: str, cluster: str | None = None,
                     weighted: list[tuple[str, int]] | None = None, hash_source_ip: bool = False) -> dict:
    tc = {"@type": T_TCP_PROXY, "stat_prefix": stat_prefix}
    if weighted:
        tc["weighted_clusters"] = {"clusters": [{"name": n, "weight": w} for n, w in weighted]}
    else:
        tc["cluster"] = cluster
    if hash_source_ip:
        tc["hash_policy"] = [{"source_ip": {}}]
    return {"name": "envoy.filters.network.tcp_proxy", "typed_config": tc}


def listener_filter(kind: str) -> dict:
    types = {
        "original_dst": "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
        "tls_inspector": "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
        "http_inspector": "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
    }
    return {"name": f"envoy.filters.listener.{kind}", "typed_config": {"@type": TYPE_PREFIX + types[kind]}}


def listener_name(ip: str, port: int) -> str:
    return f"{ip}_{port}"


def outbound_tcp_listener(vip: str, port: int, tcp_filter: dict) -> dict:
    """Istio's per-service outbound TCP listener (`10.96.0.20_27017`)."""
    return {
        "@type": T_LISTENER,
        "name": listener_name(vip, port),
        "address": sock(vip, port),
        "filter_chains": [{"filters": [istio_stats_filter(), tcp_filter]}],
        "traffic_direction": "OUTBOUND",
        "bind_to_port": False,
    }


def passthrough_chain(name: str = "PassthroughFilterChain") -> dict:
    return {"filter_chain_match": {}, "filters": [istio_stats_filter(),
            tcp_proxy_filter("PassthroughCluster", "PassthroughCluster")], "name": name}


def outbound_http_filters() -> list[dict]:
    """The HTTP filter chain istiod writes on outbound HTTP listeners (unknown types included)."""
    return [
        {"name": "istio.metadata_exchange", "typed_config": {
            "@type": TYPE_PREFIX + "envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "vm_config": {"runtime": "envoy.wasm.runtime.null",
                              "code": {"local": {"inline_string": "envoy.wasm.metadata_exchange"}}},
                "configuration": {"@type": T_METADATA_EXCHANGE},
            }}},
        {"name": "envoy.filters.http.grpc_stats", "typed_config": {
            "@type": TYPE_PREFIX + "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
            "emit_filter_state": True, "stats_for_all_methods": False}},
        {"name": "istio.alpn", "typed_config": {
            "@type": TYPE_PREFIX + "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig",
            "alpn_override": [
                {"alpn_override": ["istio-http/1.0", "istio", "http/1.0"]},
                {"upstream_protocol": "HTTP11", "alpn_override": ["istio-http/1.1", "istio", "http/1.1"]},
                {"upstream_protocol": "HTTP2", "alpn_override": ["istio-h2", "istio", "h2"]},
            ]}},
        {"name": "envoy.filters.http.fault",
         "typed_config": {"@type": TYPE_PREFIX + "envoy.extensions.filters.http.fault.v3.HTTPFault"}},
        {"name": "envoy.filters.http.cors",
         "typed_config": {"@type": TYPE_PREFIX + "envoy.extensions.filters.http.cors.v3.Cors"}},
        istio_stats_filter(),
        {"name": "envoy.filters.http.router", "typed_config": {"@type": T_ROUTER}},
    ]


def http_connection_manager(stat_prefix: str, *, rds: str | None = None, route_config: dict | None = None,
                            http_filters: list[dict] | None = None) -> dict:
    tc = {"@type": T_HCM, "stat_prefix": stat_prefix}
    if rds is not None:
        tc["rds"] = {"config_source": ADS_SOURCE, "route_config_name": rds}
    else:
        tc["route_config"] = route_config
    tc["http_filters"] = http_filters if http_filters is not None else outbound_http_filters()
    tc.update({
        "tracing": {"client_sampling": {"value": 100}, "random_sampling": {"value": 1},
                    "overall_sampling": {"value": 100}},
        "use_remote_address": False,
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "stream_idle_timeout": "0s",
        "normalize_path": True,
        "request_id_extension": {"typed_config": {
            "@type": TYPE_PREFIX + "envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
            "use_request_id_for_trace_sampling": True}},
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
    })
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": tc}


def outbound_http_listener(port: int, route_name: str, additional_addresses: list[str] | None = None) -> dict:
    """Istio's shared outbound HTTP listener `0.0.0.0_<port>` (RDS route config `<port>`)."""
    lst = {
        "@type": T_LISTENER,
        "name": listener_name("0.0.0.0", port),
        "address": sock("0.0.0.0", port),
    }
    if additional_addresses:
        lst["additional_addresses"] = [{"address": sock(a, port)} for a in additional_addresses]
    lst.update({
        "filter_chains": [{
            "filter_chain_match": {"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]},
            "filters": [http_connection_manager(f"outbound_0.0.0.0_{port}", rds=route_name)],
        }],
        "listener_filters": [listener_filter("tls_inspector"), listener_filter("http_inspector")],
        "listener_filters_timeout": "0s",
        "traffic_direction": "OUTBOUND",
        "continue_on_listener_filters_timeout": True,
        "default_filter_chain": passthrough_chain(),
        "bind_to_port": False,
    })
    return lst


def virtual_outbound_listener() -> dict:
    return {
        "@type": T_LISTENER,
        "name": "virtualOutbound",
        "address": sock("0.0.0.0", 15001),
        "filter_chains": [
            {"filter_chain_match": {"destination_port": 15001},
             "filters": [istio_stats_filter(), tcp_proxy_filter("BlackHoleCluster", "BlackHoleCluster")],
             "name": "virtualOutbound-blackhole"},
            {"filters": [istio_stats_filter(), tcp_proxy_filter("PassthroughCluster", "PassthroughCluster")],
             "name": "virtualOutbound-catchall-tcp"},
        ],
        "use_original_dst": True,
        "traffic_direction": "OUTBOUND",
    }


RETRY_POLICY = {
    "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
    "num_retries": 2,
    "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
        "@type": TYPE_PREFIX + "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
    "host_selection_retry_max_attempts": "5",
    "retriable_status_codes": [503],
}


def http_route(host: str, port: int, *, cluster: str | None = None, weighted: list[tuple[str, int]] | None = None,
               match: dict | None = None, name: str = "default", config: str | None = None) -> dict:
    action: dict = {}
    if weighted:
        action["weighted_clusters"] = {"clusters": [{"name": n, "weight": w} for n, w in weighted]}
    else:
        action["cluster"] = cluster
    action.update({"timeout": "0s", "retry_policy": RETRY_POLICY,
                   "max_stream_duration": {"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"}})
    r = {"match": match or {"prefix": "/"}, "route": action}
    if config:
        r["metadata"] = {"filter_metadata": {"istio": {"config": config}}}
    r["decorator"] = {"operation": f"{host}:{port}/*"}
    r["name"] = name
    return r


def service_domains(short: str, ns: str, vip: str, port: int, cluster_domain: str = "cluster.local") -> list[str]:
    host = f"{short}.{ns}.svc.{cluster_domain}"
    names = [host, short, f"{short}.{ns}.svc", f"{short}.{ns}", host_literal(vip)]
    out = []
    for n in names:
        out += [n, f"{n}:{port}"]
    return out


def virtual_host(short: str, ns: str, vip: str, port: int, routes: list[dict]) -> dict:
    return {"name": f"{short}.{ns}.svc.cluster.local:{port}",
            "domains": service_domains(short, ns, vip, port),
            "routes": routes,
            "include_request_attempt_count": True}


def allow_any_virtual_host() -> dict:
    return {"name": "allow_any", "domains": ["*"],
            "routes": [{"match": {"prefix": "/"},
                        "route": {"cluster": "PassthroughCluster", "timeout": "0s",
                                  "max_grpc_timeout": "0s"},
                        "name": "allow_any"}],
            "include_request_attempt_count": True}


def route_configuration(name: str, virtual_hosts: list[dict]) -> dict:
    return {"@type": T_ROUTE, "name": name, "virtual_hosts": virtual_hosts,
            "validate_clusters": False, "max_direct_response_body_size_bytes": 1048576}


def circuit_breakers() -> dict:
    return {"thresholds": [{"max_connections": MAX_U32, "max_pending_requests": MAX_U32,
                            "max_requests": MAX_U32, "max_retries": MAX_U32, "track_remaining": True}]}


def istio_tls_matches(short: str, ns: str) -> list[dict]:
    sds = {"api_config_source": {"api_type": "GRPC", "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}],
                                 "set_node_on_first_message_only": True, "transport_api_version": "V3"},
           "initial_fetch_timeout": "0s", "resource_api_version": "V3"}
    return [
        {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": {
            "name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": TYPE_PREFIX + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": {
                    "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
                    "alpn_protocols": ["istio-peer-exchange", "istio"],
                    "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": sds}],
                    "combined_validation_context": {
                        "default_validation_context": {"match_subject_alt_names": [
                            {"exact": f"spiffe://cluster.local/ns/{ns}/sa/{short}"}]},
                        "validation_context_sds_secret_config": {"name": "ROOTCA", "sds_config": sds}}},
                "sni": f"outbound_.{short}.{ns}.svc.cluster.local"}}},
        {"name": "tlsMode-disabled", "match": {}, "transport_socket": {
            "name": "envoy.transport_sockets.raw_buffer", "typed_config": {
                "@type": TYPE_PREFIX + "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}},
    ]


def eds_cluster(name: str, short: str, ns: str, port: int, *, subset: str | None = None,
                lb_policy: str | None = None, lb_config: dict | None = None, outlier: dict | None = None,
                tls: bool = True, dr: bool = False) -> dict:
    """Istio outbound cluster `outbound|<port>|<subset>|<host>` (EDS over ADS)."""
    c: dict = {"@type": T_CLUSTER, "name": name, "type": "EDS",
               "eds_cluster_config": {"eds_config": ADS_SOURCE, "service_name": name},
               "connect_timeout": "10s"}
    if lb_policy:
        c["lb_policy"] = lb_policy
    c["circuit_breakers"] = circuit_breakers()
    if outlier:
        c["outlier_detection"] = outlier
    meta = {"default_original_port": port,
            "services": [{"host": f"{short}.{ns}.svc.cluster.local", "name": short, "namespace": ns}]}
    if dr:
        meta["config"] = f"/apis/networking.istio.io/v1alpha3/namespaces/{ns}/destination-rule/{short}"
    if subset:
        meta["subset"] = subset
    c["metadata"] = {"filter_metadata": {"istio": meta}}
    c["filters"] = [metadata_exchange_filter()]
    if lb_config:
        c.update(lb_config)
    c["common_lb_config"] = {}
    if tls:
        c["transport_socket_matches"] = istio_tls_matches(short, ns)
    return c


def passthrough_clusters(inbound_v4: bool = True) -> list[dict]:
    """BlackHoleCluster (STATIC, no endpoints), PassthroughCluster and
    InboundPassthroughClusterIpv4 (ORIGINAL_DST), as istiod writes them."""
    out = [
        {"@type": T_CLUSTER, "name": "BlackHoleCluster", "type": "STATIC", "connect_timeout": "10s"},
        {"@type": T_CLUSTER, "name": "PassthroughCluster", "type": "ORIGINAL_DST", "connect_timeout": "10s",
         "lb_policy": "CLUSTER_PROVIDED", "circuit_breakers": circuit_breakers(),
         "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
             "@type": TYPE_PREFIX + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
             "common_http_protocol_options": {"idle_timeout": "3600s"},
             "use_downstream_protocol_config": {"http_protocol_options": {}, "http2_protocol_options": {}}}},
         "filters": [metadata_exchange_filter()]},
    ]
    if inbound_v4:
        out.append({"@type": T_CLUSTER, "name": "InboundPassthroughClusterIpv4", "type": "ORIGINAL_DST",
                    "connect_timeout": "10s", "lb_policy": "CLUSTER_PROVIDED", "circuit_breakers": circuit_breakers(),
                    "upstream_bind_config": {"source_address": {"address": "127.0.0.6", "port_value": 0}},
                    "filters": [metadata_exchange_filter()]})
    return out


@dataclass
class Pod:
    ip: str
    port: int
    workload: str  # "reviews-v2;default;reviews;v2;Kubernetes"
    region: str = ""
    zone: str = ""
    health: str = "HEALTHY"
    priority: int = 0


def cluster_load_assignment(cluster_name: str, pods: list[Pod], tls: bool = True) -> dict:
    """Istio's CLA: one LocalityLbEndpoints per (priority, locality) in first-seen order,
    locality weight = number of endpoints."""
    groups: dict[tuple, list[Pod]] = {}
    for p in pods:
        groups.setdefault((p.priority, p.region, p.zone), []).append(p)
    eps = []
    for (prio, region, zone), members in sorted(groups.items(), key=lambda kv: kv[0][0]):
        loc = {}
        if region:
            loc["region"] = region
        if zone:
            loc["zone"] = zone
        lbe = []
        for p in members:
            fm: dict = {}
            if tls:
                fm["envoy.transport_socket_match"] = {"tlsMode": "istio"}
            fm["istio"] = {"workload": p.workload}
            lbe.append({"endpoint": {"address": sock(p.ip, p.port), "health_check_config": {}},
                        "health_status": p.health, "metadata": {"filter_metadata": fm},
                        "load_balancing_weight": 1})
        g = {"locality": loc, "lb_endpoints": lbe, "load_balancing_weight": len(lbe)}
        if prio:
            g["priority"] = prio
        eps.append(g)
    cla = {"@type": T_CLA, "cluster_name": cluster_name}
    if eps:
        cla["endpoints"] = eps
    cla["policy"] = {"overprovisioning_factor": 140}
    return cla


def istio_config_dump(*, version: str, updated: str, static_listeners: list[dict], listeners: list[dict],
                      static_clusters: list[dict], clusters: list[dict], routes: list[dict],
                      static_endpoints: list[dict], endpoints: list[dict],
                      endpoint_versions: dict[str, str] | None = None) -> dict:
    """Admin ConfigDump JSON in Envoy's section order (clusters, endpoints, listeners, routes)."""
    endpoint_versions = endpoint_versions or {}
    cds = {"@type": TYPE_PREFIX + "envoy.admin.v3.ClustersConfigDump", "version_info": version}
    if static_clusters:
        cds["static_clusters"] = [{"cluster": c, "last_updated": updated} for c in static_clusters]
    cds["dynamic_active_clusters"] = [{"version_info": version, "cluster": c, "last_updated": updated}
                                      for c in clusters]
    eds = {"@type": TYPE_PREFIX + "envoy.admin.v3.EndpointsConfigDump"}
    if static_endpoints:
        eds["static_endpoint_configs"] = [{"endpoint_config": e} for e in static_endpoints]
    eds["dynamic_endpoint_configs"] = []
    for e in endpoints:
        entry = {"endpoint_config": e}
        v = endpoint_versions.get(e["cluster_name"])
        if v:
            entry["version_info"] = v
        eds["dynamic_endpoint_configs"].append(entry)
    lds = {"@type": TYPE_PREFIX + "envoy.admin.v3.ListenersConfigDump", "version_info": version}
    if static_listeners:
        lds["static_listeners"] = [{"listener": l, "last_updated": updated} for l in static_listeners]
    lds["dynamic_listeners"] = [{"name": l["name"], "active_state": {
        "version_info": version, "listener": l, "last_updated": updated}} for l in listeners]
    rds = {"@type": TYPE_PREFIX + "envoy.admin.v3.RoutesConfigDump",
           "dynamic_route_configs": [{"version_info": version, "route_config": r, "last_updated": updated}
                                     for r in routes]}
    return {"configs": [cds, eds, lds, rds]}


def dump_json(doc, fh, indent: int | None = 1) -> None:
    """JSON as istioctl writes it (one-space indent); compact when indent is None."""
    if indent is None:
        json.dump(doc, fh, separators=(",", ":"), ensure_ascii=False)
    else:
        json.dump(doc, fh, indent=indent, ensure_ascii=False)
    fh.write("\n")
