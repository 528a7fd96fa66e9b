#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# `xds2bpf fetch` against a real gRPC ADS server (Tests/xds/ads_server.py: grpcio and
# Envoy's own Python classes), on 127.0.0.1 only:
#   - state of the world and delta: the fetched snapshot is byte-identical to the file the
#     server serves, and compiles to the same bundle bytes; --format json gives the same IR;
#   - grpcs with the server's CA; a wrong CA fails the handshake (exit 3);
#   - a referenced EDS name the server never sends: exit 3 naming it after --timeout;
#   - a resource that does not decode is NACKed with the reason (the server's log shows it);
#   - a server that requires credentials: refused without them (the reason named), accepted with
#     --token-file and --header; typed node metadata and locality arrive; watch reads a rotated
#     token file again on reconnect;
#   - --authority: a certificate for the server's name, dialled by address;
#   - unix:PATH: the same server on a local socket;
#   - no server: exit 3.
# Every process is bounded by `timeout` and ended by PID.
#   Tests/xds/run-fetch.sh        (XDS2BPF names the compiler)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$ROOT/scripts/env.sh"
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
PY=$ROOT/.venv/bin/python3
[ -x "$PY" ] || { echo "FAIL: $PY missing: run scripts/install-deps.sh" >&2; exit 1; }
source "$HERE/lib.sh"

EX=$ROOT/examples/bookinfo
passed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }

xds_start plain "$EX/bookinfo.xds.pb"
for mode in sotw delta; do
	flag=""; [ $mode = delta ] && flag=--delta
	timeout 60 "$XDS2BPF" fetch --server "grpc://127.0.0.1:$XDS_PORT" --node-id test-$mode $flag \
		--metadata ISTIO_VERSION=1.22 --timeout 20s -o "$XDS_TMP/$mode.pb" 2>"$XDS_TMP/$mode.err" ||
		xds_fail "fetch $mode: $(cat "$XDS_TMP/$mode.err")"
	cmp -s "$XDS_TMP/$mode.pb" "$EX/bookinfo.xds.pb" || xds_fail "fetch $mode: the snapshot differs from the served file"
	"$XDS2BPF" compile --quiet --cache-dir none "$XDS_TMP/$mode.pb" -o "$XDS_TMP/b-$mode" 2>/dev/null
	[ -d "$XDS_TMP/b-file" ] || "$XDS2BPF" compile --quiet --cache-dir none "$EX/bookinfo.xds.pb" -o "$XDS_TMP/b-file" 2>/dev/null
	diff -r "$XDS_TMP/b-$mode" "$XDS_TMP/b-file" >/dev/null || xds_fail "fetch $mode: the bundle differs from compiling the file"
	# every response was ACKed, nothing NACKed, the node identified itself
	"$PY" - "$XDS_LOG" "test-$mode" <<'PY' || xds_fail "fetch $mode: ACK/NACK log"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
mine = {r["stream"] for r in recs if r.get("dir") == "request" and r.get("node") == sys.argv[2]}
assert mine, "no stream identified itself as " + sys.argv[2]
reqs = [r for r in recs if r.get("dir") == "request" and r.get("stream") in mine]
assert not [r for r in reqs if r.get("kind") == "nack"], "unexpected NACK"
acked = {r["type_url"].rsplit(".", 1)[1] for r in reqs if r.get("kind") == "ack"}
assert acked == {"Listener", "RouteConfiguration", "Cluster", "ClusterLoadAssignment"}, acked
PY
	ok "fetch $mode: same bytes as the served file, same bundle, every type ACKed"
done
# --format json: Istio's typed configs that the schema does not carry have no JSON form
set +e
timeout 60 "$XDS2BPF" fetch --server "grpc://127.0.0.1:$XDS_PORT" --node-id json --format json --timeout 20s \
	-o "$XDS_TMP/dump.json" 2>"$XDS_TMP/json.err"
rc=$?
set -e
[ $rc = 3 ] && grep -q 'has no JSON form; write the binary snapshot' "$XDS_TMP/json.err" && [ ! -e "$XDS_TMP/dump.json" ] ||
	xds_fail "fetch --format json of bookinfo: exit $rc, $(cat "$XDS_TMP/json.err")"
ok "fetch --format json: a typed config without schema is named, exit 3, no file"

# A resource that does not decode: NACKed with the reason; the fetch waits, then times out.
xds_ctl "invalid listener mode=bytes" >/dev/null
set +e
timeout 60 "$XDS2BPF" fetch --server "grpc://127.0.0.1:$XDS_PORT" --node-id nacker --timeout 3s -o "$XDS_TMP/n.pb" 2>"$XDS_TMP/n.err"
rc=$?
set -e
[ $rc = 3 ] || xds_fail "fetch of an undecodable listener: exit $rc, expected 3"
[ ! -e "$XDS_TMP/n.pb" ] || xds_fail "fetch wrote a snapshot after failing"
"$PY" - "$XDS_LOG" <<'PY' || xds_fail "the undecodable listener was not NACKed with a reason"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
nodes = {r["stream"] for r in recs if r.get("node") == "nacker"}
n = [r for r in recs if r.get("kind") == "nack" and r.get("stream") in nodes]
assert n and "does not decode" in n[0]["error_detail"]["message"], n
PY
ok "undecodable listener: NACK with the reason, exit 3 after --timeout, no file written"
xds_stop

# An EDS cluster whose assignment the server does not have: the timeout names it.
"$PY" - "$EX/bookinfo.xds.pb" "$XDS_TMP/no-eds.xds.pb" <<'PY'
import sys
from google.protobuf.internal.decoder import _DecodeVarint
from google.protobuf.internal.encoder import _VarintBytes
from envoy.service.discovery.v3 import discovery_pb2 as d
from envoy.config.endpoint.v3 import endpoint_pb2
b = open(sys.argv[1], "rb").read()
out, i = b"", 0
while i < len(b):
    n, i = _DecodeVarint(b, i)
    r = d.DiscoveryResponse(); r.ParseFromString(b[i:i + n]); i += n
    if r.type_url.endswith("ClusterLoadAssignment"):
        keep = []
        for a in r.resources:
            cla = endpoint_pb2.ClusterLoadAssignment(); cla.ParseFromString(a.value)
            if "reviews" not in cla.cluster_name:
                keep.append(a)
        del r.resources[:]
        r.resources.extend(keep)
    s = r.SerializeToString()
    out += _VarintBytes(len(s)) + s
open(sys.argv[2], "wb").write(out)
PY
xds_start no-eds "$XDS_TMP/no-eds.xds.pb"
set +e
timeout 60 "$XDS2BPF" fetch --server "grpc://127.0.0.1:$XDS_PORT" --node-id t --timeout 2s -o "$XDS_TMP/m.pb" 2>"$XDS_TMP/m.err"
rc=$?
set -e
[ $rc = 3 ] && grep -q 'timed out after 2.0 s waiting for EDS' "$XDS_TMP/m.err" &&
	[ "$(grep -o 'EDS "outbound|9080|[v123]*|reviews.default.svc.cluster.local"' "$XDS_TMP/m.err" | wc -l)" = 4 ] ||
	xds_fail "missing EDS: exit $rc, $(cat "$XDS_TMP/m.err")"
ok "missing EDS resource: exit 3, the timeout names it"
xds_stop

# --format json of a snapshot whose typed configs all have a schema: the same IR
F=$ROOT/Tests/Fixtures/l4
xds_start json "$F/tcp-weighted.json"
timeout 60 "$XDS2BPF" fetch --server "grpc://127.0.0.1:$XDS_PORT" --node-id json --format json --timeout 20s \
	-o "$XDS_TMP/dump.json" 2>"$XDS_TMP/json.err" || xds_fail "fetch --format json: $(cat "$XDS_TMP/json.err")"
diff <("$XDS2BPF" dump-ir "$XDS_TMP/dump.json") <("$XDS2BPF" dump-ir "$F/tcp-weighted.json") >"$XDS_TMP/ir.diff" ||
	xds_fail "fetch --format json: the config dump lowers to another IR: $(head -20 "$XDS_TMP/ir.diff")"
ok "fetch --format json: a config dump with the same IR as the served file"
xds_stop

# grpcs: the server's CA verifies; another CA does not.
xds_start tls "$EX/bookinfo.xds.pb" --tls "$XDS_TMP/certs"
timeout 60 "$XDS2BPF" fetch --server "grpcs://localhost:$XDS_PORT" --ca "$XDS_TMP/certs/ca.pem" --node-id tls \
	--timeout 20s -o "$XDS_TMP/tls.pb" 2>"$XDS_TMP/tls.err" || xds_fail "fetch over grpcs: $(cat "$XDS_TMP/tls.err")"
cmp -s "$XDS_TMP/tls.pb" "$EX/bookinfo.xds.pb" || xds_fail "fetch over grpcs: another snapshot"
mkdir -p "$XDS_TMP/other"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=other-ca -days 1 -keyout "$XDS_TMP/other/k.pem" \
	-out "$XDS_TMP/other/ca.pem" 2>/dev/null
set +e
timeout 60 "$XDS2BPF" fetch --server "grpcs://localhost:$XDS_PORT" --ca "$XDS_TMP/other/ca.pem" --node-id tls \
	--timeout 5s -o "$XDS_TMP/bad.pb" 2>"$XDS_TMP/bad.err"
rc=$?
set -e
[ $rc = 3 ] && [ ! -e "$XDS_TMP/bad.pb" ] || xds_fail "grpcs with a wrong CA: exit $rc"
ok "grpcs: verified with the server's CA; a wrong CA fails (exit 3, no file)"
# the agent on a failed handshake: reconnects with backoff until its --once deadline, loads nothing
set +e
timeout 60 "$XDS2BPF" watch --server "grpcs://localhost:$XDS_PORT" --ca "$XDS_TMP/other/ca.pem" --node-id tls \
	--cgroup /nonexistent --name "x2b-tlsfail-$$" --state-dir "$XDS_TMP/tlsfail" --once --timeout 3s 2>"$XDS_TMP/tlsw.err"
rc=$?
set -e
[ $rc = 3 ] && grep -q "reconnecting" "$XDS_TMP/tlsw.err" && grep -q "no configuration became live" "$XDS_TMP/tlsw.err" ||
	xds_fail "watch with a wrong CA: exit $rc: $(tail -3 "$XDS_TMP/tlsw.err")"
ok "watch: a failed TLS handshake is retried with backoff, nothing loaded (exit 3 at the --once deadline)"
xds_stop

xds_start big "$EX/bookinfo.xds.pb"
# a response above --max-message-bytes ends the stream with a clear error
set +e
timeout 60 "$XDS2BPF" fetch --server "grpc://127.0.0.1:$XDS_PORT" --node-id tls \
	--max-message-bytes 2048 --timeout 5s -o "$XDS_TMP/big.pb" 2>"$XDS_TMP/big.err"
rc=$?
set -e
[ $rc = 3 ] && [ ! -e "$XDS_TMP/big.pb" ] && grep -q "larger than the limit of 2048 bytes" "$XDS_TMP/big.err" ||
	xds_fail "fetch with --max-message-bytes 2048: exit $rc: $(tail -3 "$XDS_TMP/big.err")"
ok "a response above --max-message-bytes fails the fetch with the reason (exit 3, no file)"
xds_stop

# Credentials: a server that requires a bearer token and a header (istiod's service-account
# token, a Kuma dataplane token) refuses a stream without them, with the reason; the node carries
# typed metadata (--node-metadata JSON, --metadata over it) and its locality.
printf 'tok-1\n' >"$XDS_TMP/token"
xds_start auth "$EX/bookinfo.xds.pb" --require-header "authorization=Bearer tok-1" --require-header x-tenant=t1 \
	--unix "$XDS_TMP/xds.sock"
set +e
timeout 60 "$XDS2BPF" fetch --server "grpc://127.0.0.1:$XDS_PORT" --node-id anon --timeout 5s -o "$XDS_TMP/anon.pb" 2>"$XDS_TMP/anon.err"
rc=$?
set -e
[ $rc = 3 ] && [ ! -e "$XDS_TMP/anon.pb" ] && grep -q 'refused the stream (unauthenticated: ads_server: missing or wrong authorization, x-tenant); presented: no credentials' "$XDS_TMP/anon.err" ||
	xds_fail "fetch without credentials: exit $rc: $(tail -3 "$XDS_TMP/anon.err")"
cat >"$XDS_TMP/meta.json" <<'JSON'
{"CLUSTER_ID": "Kubernetes", "NAMESPACE": "default", "LABELS": {"app": "productpage", "version": "v1"}, "INTERCEPTION_MODE": "NONE", "POD_PORTS": [9080]}
JSON
timeout 60 "$XDS2BPF" fetch --server "grpc://127.0.0.1:$XDS_PORT" --node-id sidecar~10.1.2.3~pp.default~default.svc.cluster.local \
	--token-file "$XDS_TMP/token" --header X-Tenant=t1 --node-metadata "$XDS_TMP/meta.json" --metadata NAMESPACE=bookinfo \
	--locality us-east1/us-east1-b --timeout 20s -o "$XDS_TMP/auth.pb" 2>"$XDS_TMP/auth.err" ||
	xds_fail "fetch with a token and a header: $(tail -3 "$XDS_TMP/auth.err")"
cmp -s "$XDS_TMP/auth.pb" "$EX/bookinfo.xds.pb" || xds_fail "fetch with credentials: another snapshot"
"$PY" - "$XDS_LOG" <<'PY' || xds_fail "the node's metadata, locality or headers as the server saw them"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
nodes = [r for r in recs if r.get("dir") == "node" and r["id"].startswith("sidecar~")]
assert len(nodes) == 1, nodes
n = nodes[0]
assert n["metadata"] == {"CLUSTER_ID": "Kubernetes", "NAMESPACE": "bookinfo", "LABELS": {"app": "productpage", "version": "v1"},
                         "INTERCEPTION_MODE": "NONE", "POD_PORTS": [9080.0]}, n["metadata"]
assert n["locality"] == ["us-east1", "us-east1-b", ""], n["locality"]
opened = [r for r in recs if r.get("event") == "open" and r["stream"] == n["stream"]]
assert {"authorization", "x-tenant"} <= set(opened[0]["headers"]), opened
assert [r for r in recs if r.get("event") == "refused"], "the anonymous stream was not refused"
PY
ok "credentials: refused without them (exit 3, the reason named); token file + header accepted; typed node metadata and locality arrive"
# the same server on a Unix socket (a node-local xDS proxy, as pilot-agent's)
timeout 60 "$XDS2BPF" fetch --server "unix://$XDS_TMP/xds.sock" --node-id uds --token-file "$XDS_TMP/token" --header x-tenant=t1 \
	--timeout 20s -o "$XDS_TMP/uds.pb" 2>"$XDS_TMP/uds.err" || xds_fail "fetch over unix: $(tail -3 "$XDS_TMP/uds.err")"
cmp -s "$XDS_TMP/uds.pb" "$EX/bookinfo.xds.pb" || xds_fail "fetch over unix: another snapshot"
ok "fetch over a Unix socket (unix://PATH): the same snapshot"

# The token rotates (the kubelet rewrites the projected token): a stream refused with the old
# token is retried with backoff, and the next stream presents the file's new contents.
mkdir -p "$XDS_TMP/rot"
timeout 120 "$XDS2BPF" watch --server "grpc://127.0.0.1:$XDS_PORT" --node-id rotate --token-file "$XDS_TMP/token" \
	--header x-tenant=t1 --cgroup /nonexistent --name "x2b-rot-$$" --state-dir "$XDS_TMP/rot" 2>"$XDS_TMP/rot.err" &
WATCH_PID=$!
xds_track "$WATCH_PID"
stream_count() { "$PY" -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l).get("dir")=="node" and json.loads(l)["id"]=="rotate"))' "$XDS_LOG"; }
for _ in $(seq 100); do [ "$(stream_count)" -ge 1 ] && break; sleep 0.2; done
[ "$(stream_count)" -ge 1 ] || xds_fail "watch with a token: no stream"
xds_ctl "require authorization=Bearer tok-2" >/dev/null
xds_ctl disconnect all >/dev/null
for _ in $(seq 100); do grep -q 'refused the stream (unauthenticated' "$XDS_TMP/rot.err" && break; sleep 0.2; done
grep -q 'refused the stream (unauthenticated: ads_server: missing or wrong authorization); presented: header x-tenant, the token in' "$XDS_TMP/rot.err" ||
	xds_fail "watch with a stale token: not refused with the reason: $(tail -3 "$XDS_TMP/rot.err")"
printf 'tok-2\n' >"$XDS_TMP/token.new" && mv "$XDS_TMP/token.new" "$XDS_TMP/token"
for _ in $(seq 150); do [ "$(stream_count)" -ge 2 ] && break; sleep 0.2; done
[ "$(stream_count)" -ge 2 ] || xds_fail "watch after the token rotated: no new stream: $(tail -3 "$XDS_TMP/rot.err")"
kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null || true
ok "watch: a rotated token file is read again; the stale token's refusal is named and retried"
xds_stop

# --authority: the server's certificate names only its service name (as istiod's); dialled by
# address, the name must be given.
xds_start named "$EX/bookinfo.xds.pb" --tls "$XDS_TMP/named-certs" --tls-name xds.mesh.test
set +e
timeout 60 "$XDS2BPF" fetch --server "grpcs://127.0.0.1:$XDS_PORT" --ca "$XDS_TMP/named-certs/ca.pem" --node-id named \
	--timeout 5s -o "$XDS_TMP/unnamed.pb" 2>"$XDS_TMP/unnamed.err"
rc=$?
set -e
[ $rc = 3 ] && [ ! -e "$XDS_TMP/unnamed.pb" ] &&
	grep -q "TLS: the server's certificate does not name 127.0.0.1; give the name it shows with --authority" "$XDS_TMP/unnamed.err" ||
	xds_fail "grpcs by address to a certificate for another name: exit $rc: $(tail -2 "$XDS_TMP/unnamed.err")"
timeout 60 "$XDS2BPF" fetch --server "grpcs://127.0.0.1:$XDS_PORT" --ca "$XDS_TMP/named-certs/ca.pem" --authority xds.mesh.test \
	--node-id named --timeout 20s -o "$XDS_TMP/named.pb" 2>"$XDS_TMP/named.err" ||
	xds_fail "fetch with --authority: $(tail -3 "$XDS_TMP/named.err")"
cmp -s "$XDS_TMP/named.pb" "$EX/bookinfo.xds.pb" || xds_fail "fetch with --authority: another snapshot"
ok "--authority: the certificate is checked against the given name (by address alone the handshake fails)"
xds_stop

set +e
timeout 30 "$XDS2BPF" fetch --server "grpc://127.0.0.1:1" --node-id t --timeout 2s -o "$XDS_TMP/x.pb" 2>/dev/null
rc=$?
set -e
[ $rc = 3 ] || xds_fail "no server: exit $rc"
ok "no server: exit 3"
echo "fetch: $passed passed, 0 failed"
