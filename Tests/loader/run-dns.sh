#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# DNS clusters resolved on the node, on the real kernel, no module: a real DNS
# server (dnsmasq) in the test's private network namespace answers for *.test;
# the loader runs in that namespace with a private mount namespace whose
# /etc/resolv.conf names it (and whose /etc/hosts is empty), so getaddrinfo asks
# it. Checks: STRICT_DNS spreads over every address of its name, LOGICAL_DNS
# takes one, a priority without addresses hands its load to the next, a name that does not exist leaves its cluster without endpoints
# (connects refused and counted, `status` says why) and nothing else; after a
# record changes, `refresh` moves connects; a failed lookup keeps the rows;
# `refresh --watch` follows a change on the cluster's dns_refresh_rate (or, with
# respect_dns_ttl, the TTL of its answers, read with res_query); `xds2bpf watch`
# does the same in place through its update session.
#   Tests/loader/run-dns.sh      (root; SKIP without root/BTF/cgroup2/dnsmasq unless CI=1)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$ROOT/Tests/e2e/lib.sh"
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
N=${DNS_CONNECTS:-40}

source "$HERE/dns/lib.sh"
dns_require "dns test"
dns_begin

# --- the DNS server: answers *.test from a hosts file (Tests/loader/dns/lib.sh)
set_records() { # LINES...: "IP NAME" lines of the server's hosts file (and backup.test), then reload it
	dns_set_records "$@" "127.0.10.3 backup.test"
}
set_records "127.0.10.1 strict.test" "127.0.10.2 strict.test" \
	"127.0.10.1 logical.test" "127.0.10.2 logical.test"
start_dns() { dns_start; }
start_dns
loader() { dns_loader "$@"; }

# --- backends a, b, c on loopback in the netns
e2e_backend 127.0.10.1 18080 a
e2e_backend 127.0.10.2 18080 b
e2e_backend 127.0.10.3 18080 c

# spread DST: the sorted set of backends N connects reached ("error" for a refused one)
spread() {
	local i out=()
	for i in $(seq "$N"); do
		out+=("$(e2e_connect "$1" --timeout 2 2>/dev/null | sed 's/^error:.*/error/')")
	done
	printf '%s\n' "${out[@]}" | sort -u | tr '\n' ' ' | sed 's/ $//'
}

# await_spread DST EXPECTED TRIES LOG WHAT: until DST's spread is EXPECTED (every 0.5 s), else fail
await_spread() {
	for _ in $(seq "$3"); do
		sleep 0.5
		[ "$(spread "$1")" = "$2" ] && return 0
	done
	cat "$4" >&2
	e2e_fail "$5"
}

# --- compile: host names need no --resolve any more
bundle=$E2E_TMP/bundle
"$XDS2BPF" compile --quiet --cache-dir none "$HERE/dns/dns.json" -o "$bundle" 2>"$E2E_TMP/compile.log" || {
	cat "$E2E_TMP/compile.log" >&2
	e2e_fail "a snapshot with STRICT_DNS / LOGICAL_DNS host names does not compile"
}
e2e_log "ok: compiled without --resolve"

# --- the loader checks a manifest's DNS clusters before it loads anything
reject() { # WHAT EXPECTED-MESSAGE EDIT...
	local what=$1 msg=$2 bad=$E2E_TMP/bad rc=0
	shift 2
	rm -rf "$bad"
	cp -r "$bundle" "$bad"
	"$E2E_PYTHON" "$HERE/edit-bundle.py" "$bad" "$@"
	loader load "$bad" --cgroup "$E2E_CGROUP" --name bad 2>"$E2E_TMP/bad.log" || rc=$?
	[ "$rc" = 1 ] && grep -q "$msg" "$E2E_TMP/bad.log" || {
		cat "$E2E_TMP/bad.log" >&2
		e2e_fail "$what: expected exit 1 and '$msg', got exit $rc"
	}
	[ ! -e "$XDS2BPF_STATE_DIR/bad" ] || e2e_fail "$what: a refused bundle left state behind"
	e2e_log "ok: refused: $what"
}
"$E2E_PYTHON" - "$bundle/manifest.pb" <<'EOF' || e2e_fail "the bundle is not format version 2"
import sys
raw = open(sys.argv[1], "rb").read()
assert raw[:2] == b"\x08\x02", raw[:2]  # field 1 (format_version) = 2
EOF
reject "format version 1 with DNS clusters (an older loader's format)" "has no DNS clusters" --format-version 1
reject "a DNS cluster naming another cluster" "does not name cluster" --dns-cluster-index 3
reject "a DNS host with a control character" "dns host" --dns-host $'evil\x01.test'

loader load "$bundle" --cgroup "$E2E_CGROUP" --name "$E2E_NAME" 2>"$E2E_TMP/load.log" || {
	cat "$E2E_TMP/load.log" >&2
	e2e_fail "load failed"
}
grep -q "gone.test has no address" "$E2E_TMP/load.log" || {
	cat "$E2E_TMP/load.log" >&2
	e2e_fail "load does not say that gone.test has no address"
}

e2e_expect_eq "a b" "$(spread 10.96.0.1:80)" "STRICT_DNS spreads over both addresses of strict.test"
logical=$(spread 10.96.0.2:80)
[ "$logical" = a ] || [ "$logical" = b ] || e2e_fail "LOGICAL_DNS takes one address, got '$logical'"
e2e_log "ok: LOGICAL_DNS takes one address ($logical)"
e2e_expect_eq "error" "$(spread 10.96.0.3:80)" "a name that does not resolve: connects refused"
e2e_expect_eq "c" "$(spread 10.96.0.4:80)" "the STATIC cluster beside them is unaffected"
e2e_expect_eq "c" "$(spread 10.96.0.5:80)" "priority 0 has no address: priority 1 takes the load"

status=$(loader status --name "$E2E_NAME" --json)
"$E2E_PYTHON" - "$status" <<'EOF' || e2e_fail "status --json does not report the lookups"
import json, sys
s = json.loads(sys.argv[1])[0] if sys.argv[1].lstrip().startswith("[") else json.loads(sys.argv[1])
if "bundles" in s:
    s = s["bundles"][0]
dns = {d["host"]: d for d in s["dns"]}
assert dns["strict.test"]["state"] == "ok", dns
assert sorted(dns["strict.test"]["addresses"].split(",")) == ["127.0.10.1", "127.0.10.2"], dns
assert dns["strict.test"]["ttl"] == 1, dns  # respect_dns_ttl: the answer's TTL (dnsmasq --local-ttl=1)
assert dns["logical.test"]["ttl"] == 0, dns  # not asked for
assert len(dns["logical.test"]["addresses"].split(",")) == 1, dns
assert dns["gone.test"]["state"] == "none" and dns["gone.test"]["error"], dns
EOF
loader status --name "$E2E_NAME" | grep -q "gone.test:18080  none" || e2e_fail "status text does not show gone.test"
e2e_log "ok: status shows every name, its addresses or why it has none"
noep=$(e2e_loader stats --name "$E2E_NAME" --json | "$E2E_PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
print(s["global"]["no_endpoint"])')
[ "$noep" -ge "$N" ] || e2e_fail "refused connects are not counted as no_endpoint ($noep)"
e2e_log "ok: $noep connects counted as no_endpoint"

# --- a record changes: refresh moves the connects
set_records "127.0.10.3 strict.test" "127.0.10.1 logical.test" "127.0.10.2 gone.test" \
	"127.0.10.1 primary.test"
e2e_expect_eq "a b" "$(spread 10.96.0.1:80)" "before refresh, connects use the addresses looked up at load"
loader refresh --name "$E2E_NAME" 2>"$E2E_TMP/refresh.log" || {
	cat "$E2E_TMP/refresh.log" >&2
	e2e_fail "refresh failed"
}
e2e_expect_eq "c" "$(spread 10.96.0.1:80)" "after refresh, STRICT_DNS follows the new record"
e2e_expect_eq "a" "$(spread 10.96.0.2:80)" "after refresh, LOGICAL_DNS follows the new record"
e2e_expect_eq "b" "$(spread 10.96.0.3:80)" "a name that appeared gets its endpoints"
e2e_expect_eq "c" "$(spread 10.96.0.4:80)" "the STATIC cluster is unaffected"
e2e_expect_eq "a" "$(spread 10.96.0.5:80)" "priority 0 got an address: it takes all the load back"

# --- the server fails: lookups fail, rows are kept (as Envoy keeps its hosts)
kill "$DNS_PID"
wait "$DNS_PID" 2>/dev/null || true
loader refresh --name "$E2E_NAME" 2>"$E2E_TMP/refresh2.log" || true
grep -q "rows are kept" "$E2E_TMP/refresh2.log" || {
	cat "$E2E_TMP/refresh2.log" >&2
	e2e_fail "a failed lookup is not reported"
}
e2e_expect_eq "c" "$(spread 10.96.0.1:80)" "a failed lookup keeps the cluster's endpoints"
loader status --name "$E2E_NAME" | grep -q "strict.test:18080  failed (rows kept from before)" ||
	e2e_fail "status does not show the failed lookup"
e2e_log "ok: status shows the failed lookup"

# --- refresh --watch follows a change: 'strict' respects the TTL (1 s), 'logical' refreshes every 5 s
start_dns
set_records "127.0.10.2 strict.test" "127.0.10.1 logical.test" "127.0.10.2 gone.test"
"${DNS_RESOLVER[@]}" "$E2E_LOADER" refresh --name "$E2E_NAME" --watch >"$E2E_TMP/watch.log" 2>&1 &
WATCH_PID=$!
e2e_track "$WATCH_PID"
await_spread 10.96.0.1:80 "b" 20 "$E2E_TMP/watch.log" "refresh --watch did not follow the record"
e2e_log "ok: refresh --watch follows a changed record"
set_records "127.0.10.1 strict.test" "127.0.10.2 strict.test" "127.0.10.3 strict.test" \
	"127.0.10.1 logical.test" "127.0.10.2 gone.test"
await_spread 10.96.0.1:80 "a b c" 20 "$E2E_TMP/watch.log" "refresh --watch did not follow a second change"
e2e_log "ok: refresh --watch follows a second change (three addresses)"
kill "$WATCH_PID"
wait "$WATCH_PID" 2>/dev/null || true

e2e_loader unload --name "$E2E_NAME" >/dev/null

# --- the node agent: `xds2bpf watch` (ADS server and agent in the netns, the agent
# with the test's resolv.conf) looks the names up again on their refresh rate and
# writes changes in place through its update session, which holds the bundle's lock
set_records "127.0.10.1 strict.test" "127.0.10.2 strict.test" "127.0.10.1 logical.test" \
	"127.0.10.2 gone.test"
nsenter --net="/run/netns/$E2E_NETNS" -- "$E2E_PYTHON" "$ROOT/Tests/xds/ads_server.py" "$HERE/dns/dns.json" \
	--version v1 >"$E2E_TMP/ads.ready" 2>"$E2E_TMP/ads.err" &
ADS_PID=$!
e2e_track "$ADS_PID"
for _ in $(seq 100); do [ -s "$E2E_TMP/ads.ready" ] && break; sleep 0.1; done
[ -s "$E2E_TMP/ads.ready" ] || { cat "$E2E_TMP/ads.err" >&2; e2e_fail "the ADS server did not start"; }
ads_port=$("$E2E_PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["port"])' "$E2E_TMP/ads.ready")
"${DNS_RESOLVER[@]}" env XDS2BPF_LOADER="$E2E_LOADER" "$XDS2BPF" watch \
	--server "grpc://127.0.0.1:$ads_port" --node-id dns-e2e --cgroup "$E2E_CGROUP" --name "$E2E_NAME" \
	--state-dir "$E2E_TMP/agent" >"$E2E_TMP/agent.log" 2>&1 &
AGENT_PID=$!
e2e_track "$AGENT_PID"
await_spread 10.96.0.1:80 "a b" 60 "$E2E_TMP/agent.log" "watch did not load the DNS clusters"
e2e_log "ok: watch loaded the bundle, the loader resolved strict.test"
set_records "127.0.10.3 strict.test" "127.0.10.1 logical.test" "127.0.10.2 gone.test"
await_spread 10.96.0.1:80 "c" 20 "$E2E_TMP/agent.log" "watch did not follow the changed record"
grep -q "dns: looked up" "$E2E_TMP/agent.log" || { cat "$E2E_TMP/agent.log" >&2; e2e_fail "watch does not log its lookups"; }
e2e_expect_eq "c" "$(spread 10.96.0.4:80)" "watch: the STATIC cluster is unaffected"
e2e_log "ok: watch follows a changed record in place (TTL 1 s)"
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
kill "$ADS_PID"
wait "$ADS_PID" 2>/dev/null || true

dns_unload_agent "$E2E_NAME"
echo "PASS: DNS clusters resolved on the node"
