#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# DNS clusters that need an LB table, resolved on the node, against the offline
# compile as the oracle. On the real kernel, no module, a real DNS server (dnsmasq)
# in the test's private network namespace (Tests/loader/dns/lib.sh). For each
# cluster shape of dns/tables.yaml (round robin with different endpoint weights,
# locality weights under round robin and least request, priorities spread by
# health, LOGICAL_DNS, maglev, ring hash, a scaled round-robin schedule) and the corpus case envoy-examples/locality-load-balancing:
#   - the bundle compiled without --resolve, its names looked up by the loader, and
#     the bundle compiled with --resolve NAME=IP,... giving the addresses of those
#     lookups (the server's records, checked; in the order the lookup gave them, as
#     Envoy keeps it: dnsmasq rotates its answers) hold the same rows: the cluster's
#     levels, endpoint records and LB-table slots byte for byte
#     (dns/cluster-rows.py over the pinned maps);
#   - connects through both spread the same way (exactly, for one-level round
#     robin over whole schedules; within 5 standard deviations otherwise);
#   - after a record changes, `refresh` rebuilds the rows in place and they are
#     again the offline compile's with the new addresses;
#   - `xds2bpf watch` (ADS server and agent in the netns) does the same through its
#     update session, on the clusters' refresh rate.
#   Tests/loader/run-dns-tables.sh   (root; SKIP without root/BTF/cgroup2/dnsmasq unless CI=1)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$ROOT/Tests/e2e/lib.sh"
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
N=${DNS_TABLE_CONNECTS:-120} # a multiple of the round-robin schedules' lengths (5, 6)
CORPUS_CASE=${CORPUS:-/nonexistent}/envoy-examples/locality-load-balancing/envoy.yaml # CORPUS: scripts/env.sh

source "$HERE/dns/lib.sh"
dns_require "dns table test"
command -v protoc >/dev/null || dns_skip "needs protoc (cluster-rows.py reads the manifest)"
"$E2E_PYTHON" -c 'import google.protobuf' 2>/dev/null || dns_skip "needs the python protobuf package (scripts/install-deps.sh)"
dns_begin

RECORDS1=("127.0.20.1 w1.test" "127.0.20.2 w1.test" "127.0.20.3 w3.test"
	"127.0.20.1 la.test" "127.0.20.2 la.test" "127.0.20.3 lb.test"
	"127.0.20.4 ra.test" "127.0.20.5 ra.test" "127.0.20.6 rb.test"
	"127.0.20.4 p0.test" "127.0.20.5 p1.test" "127.0.20.1 lg.test" "127.0.20.2 lg.test"
	"127.0.20.1 mg1.test" "127.0.20.2 mg1.test" "127.0.20.3 mg2.test"
	"127.0.20.4 rg1.test" "127.0.20.5 rg1.test" "127.0.20.6 rg2.test"
	"127.0.20.1 sc1.test" "127.0.20.2 sc1.test" "127.0.20.3 sc2.test"
	"127.0.20.1 backend-local-1" "127.0.20.2 backend-local-2" "127.0.20.3 backend-remote-1"
	"127.0.20.4 backend-remote-2")
# changed: w1.test has three addresses, la.test one, lb.test two, rb.test two, p0.test another
# one, mg1.test one and mg2.test two, rg1.test one and rg2.test two, sc1.test three
RECORDS2=("127.0.20.1 w1.test" "127.0.20.2 w1.test" "127.0.20.4 w1.test" "127.0.20.3 w3.test"
	"127.0.20.5 la.test" "127.0.20.3 lb.test" "127.0.20.4 lb.test"
	"127.0.20.4 ra.test" "127.0.20.5 ra.test" "127.0.20.6 rb.test" "127.0.20.1 rb.test"
	"127.0.20.2 p0.test" "127.0.20.5 p1.test" "127.0.20.1 lg.test" "127.0.20.2 lg.test"
	"127.0.20.1 mg1.test" "127.0.20.3 mg2.test" "127.0.20.4 mg2.test"
	"127.0.20.4 rg1.test" "127.0.20.6 rg2.test" "127.0.20.1 rg2.test"
	"127.0.20.1 sc1.test" "127.0.20.2 sc1.test" "127.0.20.4 sc1.test" "127.0.20.3 sc2.test")
dns_set_records "${RECORDS1[@]}"
dns_start
backends=()
for i in 1 2 3 4 5 6; do backends+=("127.0.20.$i:18080"); done
for i in 1 2 3 4; do backends+=("127.0.20.$i:8080"); done # the corpus case's port
e2e_in_netns "$E2E_PYTHON" "$ROOT/Tests/e2e/multibackend.py" --ready "$E2E_TMP/mb.ready" "${backends[@]}" \
	>"$E2E_TMP/mb.log" 2>&1 &
e2e_track $!
for _ in $(seq 100); do [ -s "$E2E_TMP/mb.ready" ] && break; sleep 0.05; done
[ -s "$E2E_TMP/mb.ready" ] || { cat "$E2E_TMP/mb.log" >&2; e2e_fail "backends did not start"; }
read -r _ mb_pid <"$E2E_TMP/mb.ready" # the server's own pid ($! is the background function's subshell)
e2e_track "$mb_pid"

# looked_up NAME TAG RECORD...: the names the loaded bundle NAME looked up, as
# --resolve arguments (TAG.resolve, one per line, in the order of each lookup's
# answer); fails unless every name answered exactly its RECORDs' addresses
looked_up() {
	local name=$1 tag=$2
	shift 2
	dns_loader status --name "$name" --json >"$E2E_TMP/$tag.status"
	"$E2E_PYTHON" - "$E2E_TMP/$tag.status" "$@" >"$E2E_TMP/$tag.resolve" <<'EOF' ||
import json, sys
s = json.load(open(sys.argv[1]))
s = s[0] if isinstance(s, list) else s
s = s["bundles"][0] if "bundles" in s else s
served = {}
for r in sys.argv[2:]:
    ip, host = r.split()
    served.setdefault(host, set()).add(ip)
args = {}
for d in s["dns"]:
    if d["state"] == "address":
        continue
    text = d.get("addresses", "") if d["state"] == "ok" else ""
    dropped = 0
    if text.endswith(" dropped)"):  # "ADDRS (+N dropped)": LOGICAL_DNS keeps the first
        text, _, more = text.partition(" (+")
        dropped = int(more.split()[0])
    got = text.split(",") if text else []
    want = served.get(d["host"], set())
    if not set(got) <= want or len(set(got)) + dropped != len(want):
        sys.exit(f"{d['cluster']} {d['host']}: looked up {got}, the server has {sorted(served.get(d['host'], []))}")
    if got:
        args[d["host"]] = ",".join(got)  # names are not shared between clusters: one order each
for host, addrs in sorted(args.items()):
    print(f"--resolve\n{host}={addrs}")
EOF
		e2e_fail "'$name' did not look up what the server has"
}

compile() { # compile SNAPSHOT OUT [ARGS...]
	local snap=$1 out=$2
	shift 2
	"$XDS2BPF" compile --quiet --cache-dir none "$snap" -o "$out" "$@" 2>"$out.log" || {
		cat "$out.log" >&2
		e2e_fail "compile $snap $*"
	}
}

# observe NAME BUNDLE TAG DST...: the loaded bundle's rows (TAG.rows) and where N
# connects to each DST go (TAG.spread, probe.py JSON)
observe() {
	local name=$1 bundle=$2 tag=$3
	shift 3
	"$E2E_PYTHON" "$HERE/dns/cluster-rows.py" "$XDS2BPF_BPFFS/$name" "$bundle/manifest.pb" >"$E2E_TMP/$tag.rows" ||
		e2e_fail "cannot read the rows of '$name'"
	e2e_in_cgroup "$E2E_PYTHON" "$ROOT/Tests/e2e/probe.py" "$N" "$@" >"$E2E_TMP/$tag.spread"
}

# offline SNAPSHOT TAG RESOLVE DST...: compiled with the --resolve arguments of RESOLVE
# (looked_up), loaded, observed, unloaded
offline() {
	local snap=$1 tag=$2 args=()
	mapfile -t args <"$E2E_TMP/$3.resolve"
	shift 3
	e2e_log "$tag: compiled with ${args[*]}"
	compile "$snap" "$E2E_TMP/$tag" "${args[@]}"
	grep -q 'dns clusters' <("$XDS2BPF" inspect "$E2E_TMP/$tag" 2>/dev/null) &&
		e2e_fail "$tag: with --resolve for every name the bundle still has DNS clusters"
	e2e_load "$E2E_TMP/$tag" off >/dev/null 2>&1 || e2e_fail "load $tag"
	observe off "$E2E_TMP/$tag" "$tag" "$@"
	e2e_loader unload --name off >/dev/null
}

# same_rows NODE OFFLINE WHAT: byte-equal rows
same_rows() {
	diff -u "$E2E_TMP/$2.rows" "$E2E_TMP/$1.rows" >&2 || e2e_fail "$3: the rows built on the node differ from the offline compile's"
	e2e_log "ok: $3: rows equal byte for byte ($(grep -c '^    ' "$E2E_TMP/$1.rows") records)"
}

# same_spread NODE OFFLINE WHAT [EXACT-DST...]: the same distribution of connects
same_spread() {
	local node=$1 off=$2 what=$3
	shift 3
	"$E2E_PYTHON" - "$E2E_TMP/$node.spread" "$E2E_TMP/$off.spread" "$N" "$@" <<'EOF' ||
import json, math, sys
node, off = (json.load(open(p)) for p in sys.argv[1:3])
n, exact = int(sys.argv[3]), set(sys.argv[4:])
bad = []
for dst in sorted(set(node) | set(off)):
    a, b = node.get(dst, {}), off.get(dst, {})
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k, 0), b.get(k, 0)
        p = (x + y) / (2 * n)
        tol = 0 if dst in exact else 5 * math.sqrt(2 * n * p * (1 - p)) + 1
        if abs(x - y) > tol or k.startswith("error"):
            bad.append(f"{dst} {k}: node {x}, offline {y} (tolerance {tol:.0f})")
    print(f"{dst}: node {dict(sorted(a.items()))} offline {dict(sorted(b.items()))}", file=sys.stderr)
if bad:
    sys.exit("\n".join(bad))
EOF
		e2e_fail "$what: connects spread differently"
	e2e_log "ok: $what: connects spread as through the offline compile"
}

SHAPES=$HERE/dns/tables.yaml
DSTS=(10.96.1.1:80 10.96.1.2:80 10.96.1.3:80 10.96.1.4:80 10.96.1.5:80 10.96.1.6:80 10.96.1.7:80 10.96.1.8:80)
EXACT=(10.96.1.1:80 10.96.1.2:80 10.96.1.5:80) # one-level round robin: whole schedules

# --- the shapes, resolved on the node; a record changes, refresh rebuilds the rows in place
compile "$SHAPES" "$E2E_TMP/node"
dns_loader load "$E2E_TMP/node" --cgroup "$E2E_CGROUP" --name node 2>"$E2E_TMP/load.log" || {
	cat "$E2E_TMP/load.log" >&2
	e2e_fail "load failed"
}
observe node "$E2E_TMP/node" node1 "${DSTS[@]}"
looked_up node node1 "${RECORDS1[@]}"
grep -q "slot" "$E2E_TMP/node1.rows" || e2e_fail "no cluster of the shapes has an LB table"
dns_set_records "${RECORDS2[@]}"
dns_loader refresh --name node 2>"$E2E_TMP/refresh.log" || {
	cat "$E2E_TMP/refresh.log" >&2
	e2e_fail "refresh failed"
}
observe node "$E2E_TMP/node" node2 "${DSTS[@]}"
looked_up node node2 "${RECORDS2[@]}"
cmp -s "$E2E_TMP/node1.rows" "$E2E_TMP/node2.rows" && e2e_fail "refresh did not change the rows"
e2e_loader unload --name node >/dev/null

# --- the oracle: the same snapshot compiled with the addresses of those lookups
offline "$SHAPES" off1 node1 "${DSTS[@]}"
same_rows node1 off1 "cluster shapes with LB tables"
same_spread node1 off1 "cluster shapes with LB tables" "${EXACT[@]}"
offline "$SHAPES" off2 node2 "${DSTS[@]}"
same_rows node2 off2 "after a record changed and refresh"
same_spread node2 off2 "after a record changed and refresh" "${EXACT[@]}"

# --- the node agent: `xds2bpf watch` loads the shapes, its loader co-process (update-stream)
# looks the names up again on their refresh rate (5 s) and rewrites the changed rows in place
dns_set_records "${RECORDS1[@]}"
nsenter --net="/run/netns/$E2E_NETNS" -- "$E2E_PYTHON" "$ROOT/Tests/xds/ads_server.py" "$SHAPES" \
	--version v1 >"$E2E_TMP/ads.ready" 2>"$E2E_TMP/ads.err" &
e2e_track $!
for _ in $(seq 100); do [ -s "$E2E_TMP/ads.ready" ] && break; sleep 0.1; done
[ -s "$E2E_TMP/ads.ready" ] || { cat "$E2E_TMP/ads.err" >&2; e2e_fail "the ADS server did not start"; }
ads_port=$("$E2E_PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["port"])' "$E2E_TMP/ads.ready")
"${DNS_RESOLVER[@]}" env XDS2BPF_LOADER="$E2E_LOADER" "$XDS2BPF" watch --server "grpc://127.0.0.1:$ads_port" \
	--node-id dns-tables --cgroup "$E2E_CGROUP" --name agent --state-dir "$E2E_TMP/agent" >"$E2E_TMP/agent.log" 2>&1 &
AGENT_PID=$!
e2e_track "$AGENT_PID"
# agent_rows TAG RECORD...: waits until the agent's bundle has rows built from lookups of these
# records; the lookups (status) read before and after the rows (and 0.5 s apart: a refresh writes
# its rows, then at once its results) must be the same, else a refresh came in between
agent_rows() {
	local tag=$1
	shift
	for _ in $(seq 60); do
		sleep 0.5
		[ -s "$XDS2BPF_STATE_DIR/agent/dns.txt" ] || continue
		(looked_up agent "$tag.before" "$@") 2>/dev/null || continue
		"$E2E_PYTHON" "$HERE/dns/cluster-rows.py" "$XDS2BPF_BPFFS/agent" "$XDS2BPF_STATE_DIR/agent/manifest.pb" \
			>"$E2E_TMP/$tag.rows" || continue
		sleep 0.5
		(looked_up agent "$tag" "$@") 2>/dev/null || continue
		cmp -s "$E2E_TMP/$tag.before.resolve" "$E2E_TMP/$tag.resolve" && return 0
	done
	cat "$E2E_TMP/agent.log" >&2
	e2e_fail "watch: the rows of the lookups of $tag did not appear"
}
agent_rows agent1 "${RECORDS1[@]}"
dns_set_records "${RECORDS2[@]}"
agent_rows agent2 "${RECORDS2[@]}"
grep -q "dns: looked up" "$E2E_TMP/agent.log" || { cat "$E2E_TMP/agent.log" >&2; e2e_fail "watch does not log its lookups"; }
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
dns_unload_agent agent
offline "$SHAPES" aoff1 agent1 "${DSTS[@]}"
same_rows agent1 aoff1 "watch: the rows written by its update session"
offline "$SHAPES" aoff2 agent2 "${DSTS[@]}"
same_rows agent2 aoff2 "watch: the rows rewritten after a record changed"

# --- the corpus case: locality-weighted round robin over three priorities
if [ -f "$CORPUS_CASE" ]; then
	dns_set_records "${RECORDS1[@]}"
	compile "$CORPUS_CASE" "$E2E_TMP/corpus"
	dns_loader load "$E2E_TMP/corpus" --cgroup "$E2E_CGROUP" --name corpus 2>"$E2E_TMP/load2.log" || {
		cat "$E2E_TMP/load2.log" >&2
		e2e_fail "load of the corpus case failed"
	}
	observe corpus "$E2E_TMP/corpus" cnode 10.96.2.1:3000
	looked_up corpus cnode "${RECORDS1[@]}"
	# backend-local-1 goes away: priority 1's two localities (weight 1 each) share the load, as in Envoy's example
	dns_set_records "127.0.20.2 backend-local-2" "127.0.20.3 backend-remote-1" "127.0.20.4 backend-remote-2"
	dns_loader refresh --name corpus 2>"$E2E_TMP/refresh2.log" || {
		cat "$E2E_TMP/refresh2.log" >&2
		e2e_fail "refresh of the corpus case failed"
	}
	observe corpus "$E2E_TMP/corpus" cnode2 10.96.2.1:3000
	e2e_loader unload --name corpus >/dev/null
	offline "$CORPUS_CASE" coff cnode 10.96.2.1:3000
	same_rows cnode coff "locality-load-balancing"
	same_spread cnode coff "locality-load-balancing" 10.96.2.1:3000
	e2e_expect_eq '{"10.96.2.1:3000": {"127.0.20.2:8080": '$((N / 2))', "127.0.20.3:8080": '$((N / 2))'}}' \
		"$(cat "$E2E_TMP/cnode2.spread")" "locality-load-balancing: priority 0 without an address, priority 1's localities share"
else
	echo "SKIP: the corpus case: no envoy-examples/locality-load-balancing/envoy.yaml in the corpus (XDS2BPF_CORPUS)"
fi
echo "PASS: DNS clusters with LB tables resolved on the node"
