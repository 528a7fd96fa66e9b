#!/usr/bin/env bash
# Check that Sources/X2BProtos/ is what scripts/gen-protos.sh produces from proto/.
# Same environment as gen-protos.sh (PROTOC_GEN_SWIFT, PROTOC, PROTOC_INCLUDE).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

OUT_DIR="$TMP/Generated" "$ROOT/scripts/gen-protos.sh"

if ! diff -ru --exclude='*.md' "$ROOT/Sources/X2BProtos" "$TMP/Generated" >"$TMP/diff"; then
    head -n 200 "$TMP/diff" >&2
    echo >&2
    echo "check-protos: Sources/X2BProtos is out of date with proto/." >&2
    echo "check-protos: run: scripts/gen-protos.sh   (PROTOC_GEN_SWIFT=... to use a prebuilt plugin)" >&2
    exit 1
fi
echo "check-protos: generated Swift is up to date" >&2

# Field-by-field comparison with Envoy's own protos, where Python has them
# (PyPI xds-protos): same names, numbers, types, labels, oneofs and enum values.
if python3 -c 'import envoy.config.listener.v3.listener_pb2' >/dev/null 2>&1; then
    "${PROTOC:-protoc}" --proto_path="$ROOT/proto" --proto_path="${PROTOC_INCLUDE:-/usr/include}" \
        --include_imports --descriptor_set_out="$TMP/trimmed.pb" \
        $(cd "$ROOT/proto" && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
    python3 - "$TMP/trimmed.pb" <<'PY'
import importlib, sys, warnings
warnings.simplefilter("ignore")
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor_pb2 import FieldDescriptorProto as F

# Newer than the xds-protos release the check runs against (see
# shared/reference/envoy-v3-fields.md): RouteMatch.cookies (17).
ALLOWED = {"envoy.config.route.v3.CookieMatcher", "envoy.config.route.v3.RouteMatch.cookies"}
fds = descriptor_pb2.FileDescriptorSet()
fds.ParseFromString(open(sys.argv[1], "rb").read())
problems = []

def upstream(package, name):
    # Messages may live in another file of the same package upstream.
    for fd in fds.file:
        if fd.package != package:
            continue
        try:
            mod = importlib.import_module(fd.name[:-len(".proto")].replace("/", ".") + "_pb2")
        except ImportError:
            continue
        d = mod.DESCRIPTOR.message_types_by_name.get(name) or mod.DESCRIPTOR.enum_types_by_name.get(name)
        if d is not None:
            return d
    try:
        from google.protobuf import symbol_database
        return symbol_database.Default().pool.FindMessageTypeByName(package + "." + name)
    except Exception:
        return None

def check_enum(full, e, up):
    if up is None:
        problems.append("no upstream enum " + full); return
    mine = {v.name: v.number for v in e.value}
    theirs = {v.name: v.number for v in up.values}
    if mine != theirs:
        problems.append("enum %s differs: %s vs %s" % (full, mine, theirs))

def check_msg(full, m, up):
    if up is None:
        if full not in ALLOWED: problems.append("no upstream message " + full)
        return
    fields = {f.name: f for f in up.fields}
    for f in m.field:
        u = fields.get(f.name)
        where = full + "." + f.name
        if u is None:
            if where not in ALLOWED: problems.append("no upstream field " + where)
            continue
        if u.number != f.number: problems.append("%s: number %d, upstream %d" % (where, f.number, u.number))
        if u.type != f.type: problems.append("%s: type differs" % where)
        if (f.label == F.LABEL_REPEATED) != (u.label == u.LABEL_REPEATED):
            problems.append("%s: repeated differs" % where)
        if f.type in (F.TYPE_MESSAGE, F.TYPE_ENUM):
            t = (u.message_type or u.enum_type).full_name
            if f.type_name.lstrip(".") != t: problems.append("%s: type %s, upstream %s" % (where, f.type_name, t))
        mine_oneof = m.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None
        theirs = u.containing_oneof.name if u.containing_oneof and not u.containing_oneof.name.startswith("_") else None
        if mine_oneof != theirs: problems.append("%s: oneof %s, upstream %s" % (where, mine_oneof, theirs))
    for e in m.enum_type:
        check_enum(full + "." + e.name, e, up.enum_types_by_name.get(e.name))
    for n in m.nested_type:
        if not n.options.map_entry:
            check_msg(full + "." + n.name, n, up.nested_types_by_name.get(n.name))

for fd in fds.file:
    if fd.name.startswith(("google/", "xds2bpf/")):
        continue
    for m in fd.message_type:
        check_msg(fd.package + "." + m.name, m, upstream(fd.package, m.name))
    for e in fd.enum_type:
        check_enum(fd.package + "." + e.name, e, upstream(fd.package, e.name))
for p in problems:
    print("check-protos: upstream mismatch:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
    echo "check-protos: proto/ matches Envoy's protos (xds-protos) field by field" >&2
else
    echo "check-protos: xds-protos not installed; upstream field comparison skipped" >&2
fi
