#!/usr/bin/env python3
"""Convert JSON/YAML xDS input into binary protobuf with Envoy's own generated Python classes
(PyPI xds-protos; pinned in scripts/requirements.txt).

  --as config-dump       one envoy.admin.v3.ConfigDump message (what Envoy's /config_dump
                         returns, binary). A single ConfigDump input is converted as a whole
                         (bootstrap, secrets... included); any other input is collected into
                         Listeners/Clusters/Routes/Endpoints dump sections.
  --as discovery-stream  length-delimited stream (varint length + message, protobuf's
                         writeDelimitedTo framing) of envoy.service.discovery.v3.DiscoveryResponse,
                         one per resource type in the order Listener, RouteConfiguration, Cluster,
                         ClusterLoadAssignment (types without resources left out), resources as Any.

Input: an admin ConfigDump (istioctl proxy-config all -o json, Envoy /config_dump), a bootstrap
with static_resources, DiscoveryResponse-like `resources:` lists, Kuma's {name, resource},
{typeUrl: {name: resource}}, {listeners: [...], clusters: [...]}, or bare per-type lists whose
type comes from the file name (Envoy Gateway's *.listeners.yaml) or --kind. Several inputs are
merged into one snapshot. From a ConfigDump, the discovery stream takes the dynamic resources
(dynamic_listeners[].active_state, dynamic_active_clusters, dynamic_route_configs,
dynamic_endpoint_configs); static_* entries come from the bootstrap, not from xDS, and are added
only with --include-static; the dump's ClusterLoadAssignments of non-EDS clusters (Envoy lists
one per cluster) are left out unless --all-assignments.

Any payloads whose type xds-protos does not know (Istio's stats.PluginConfig, metadata exchange,
...) do not abort the conversion: see --unknown-any. Unknown fields are ignored unless --strict.
Output is deterministic: SerializeToString(deterministic=True), nested Any re-serialised the
same way, version_info and nonce taken from the input or derived from the content.

Examples:
  python3 scripts/make-pb.py examples/bookinfo/bookinfo.json --as config-dump -o bookinfo.pb
  python3 scripts/make-pb.py examples/bookinfo/bookinfo.json --as discovery-stream -o bookinfo.xds.pb
  python3 scripts/make-pb.py case.listeners.yaml case.routes.yaml case.clusters.yaml \\
      case.endpoints.yaml --as discovery-stream -o case.xds.pb
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdslib  # noqa: E402

PROG = "make-pb"


def convert(inputs: list[str], as_: str, *, unknown_any: str = "keep-type", strict: bool = False,
            include_static: bool = False, kind: str | None = None, version_info: str | None = None,
            all_assignments: bool = False, report: xdslib.Report | None = None) -> tuple[bytes, str]:
    """Returns (output bytes, one-line summary)."""
    xdslib.load_protos()
    report = report or xdslib.Report()
    versions = {k: version_info for k in xdslib.KINDS} if version_info else None

    if as_ == "config-dump" and len(inputs) == 1:
        doc = xdslib.read_document(inputs[0])
        if isinstance(doc, dict) and "configs" in doc:
            dump = xdslib.parse_json(doc, xdslib.CONFIG_DUMP, unknown_any=unknown_any, strict=strict,
                                     report=report, path=os.path.basename(inputs[0]))
            types = ", ".join(xdslib.type_name(c.type_url).rsplit(".", 1)[-1] for c in dump.configs)
            return xdslib.serialize(dump), f"ConfigDump with {len(dump.configs)} sections ({types})"

    collected = xdslib.collect_files(inputs, kind=kind, report=report, unknown_any=unknown_any, strict=strict)
    if as_ == "config-dump":
        dump = xdslib.config_dump_from(collected, versions)
        return xdslib.serialize(dump), "ConfigDump: " + xdslib.summary(collected)

    return xdslib.discovery_stream(collected, include_static=include_static, versions=versions,
                                   eds_only=not all_assignments, report=report)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make-pb.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", metavar="INPUT", help="JSON or YAML files (merged)")
    ap.add_argument("--as", dest="as_", required=True, choices=("config-dump", "discovery-stream"))
    ap.add_argument("-o", "--output", required=True, help="output file ('-' for stdout)")
    ap.add_argument("--unknown-any", choices=xdslib.UNKNOWN_ANY_MODES, default="keep-type",
                    help="what to do with an Any whose @type xds-protos does not know: keep-type "
                         "(default: keep the type URL, drop the contents), typed-struct (wrap the "
                         "contents in xds.type.v3.TypedStruct), drop (remove the Any field)")
    ap.add_argument("--strict", action="store_true", help="fail on unknown fields instead of ignoring them")
    ap.add_argument("--include-static", action="store_true",
                    help="discovery-stream: also send a ConfigDump's static_* resources")
    ap.add_argument("--all-assignments", action="store_true",
                    help="discovery-stream: keep ClusterLoadAssignments of non-EDS clusters (a config "
                         "dump lists one per cluster; by default only EDS clusters' are sent)")
    ap.add_argument("--kind", choices=xdslib.KINDS,
                    help="resource type of untyped items when the file name does not tell")
    ap.add_argument("--version-info", help="version_info for every type (default: from the input)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no summary or notes on stderr")
    args = ap.parse_args(argv)

    report = xdslib.Report()
    try:
        data, text = convert(args.inputs, args.as_, unknown_any=args.unknown_any, strict=args.strict,
                             include_static=args.include_static, kind=args.kind,
                             version_info=args.version_info, all_assignments=args.all_assignments,
                             report=report)
    except (ValueError, OSError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # json_format.ParseError and friends
        print(f"{PROG}: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    if args.output == "-":
        sys.stdout.buffer.write(data)
    else:
        tmp = args.output + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, args.output)
    if not args.quiet:
        report.print(PROG)
        print(f"{PROG}: wrote {args.output} ({len(data)} bytes): {text}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
