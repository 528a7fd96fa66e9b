#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Host side of the TLS suite in the VM: compiles each case of tls-cases.sh,
# explains each connection, makes a certificate per endpoint (CN = the
# endpoint) and captures a real ClientHello per server name for the split
# sends.  Writes OUT/cases ("name|endpoints"), OUT/requests
# ("name|id|dst|sni|alpn|mode"), OUT/<name>/{bundle/,expected.json},
# OUT/certs/<endpoint>.{crt,key}, OUT/hello/<sni>.bin.
#   Tests/vm/plan-tls.sh OUT
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$1
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
source "$ROOT/scripts/env.sh" # CORPUS
rm -rf "$OUT"
mkdir -p "$OUT/certs" "$OUT/hello"
: >"$OUT/cases"
: >"$OUT/requests"
CASE=''
SNAP=()

flush_case() {
	[ -n "$CASE" ] || return 0
	python3 - "$OUT/$CASE" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
exp, eps = {}, set()
for f in sorted(glob.glob(os.path.join(d, "req", "*.json"))):
    e = json.load(open(f))
    allowed = [c["endpoint"] for c in e.get("candidates", [])] if e.get("outcome") == "redirect" else []
    exp[os.path.basename(f)[:-5]] = allowed
    eps.update(allowed)
# every endpoint of the snapshot's clusters gets a server, so a wrong choice is seen
for f in glob.glob(os.path.join(d, "eps", "*")):
    eps.update(open(f).read().split())
json.dump(exp, open(os.path.join(d, "expected.json"), "w"), indent=1, sort_keys=True)
open(os.path.join(d, "endpoints"), "w").write(" ".join(sorted(eps)))
PY
	echo "$CASE|$(cat "$OUT/$CASE/endpoints")" >>"$OUT/cases"
}

tls_case() {
	flush_case
	CASE=$1
	shift
	SNAP=("$@")
	mkdir -p "$OUT/$CASE/req" "$OUT/$CASE/eps"
	"$XDS2BPF" compile --quiet --cache-dir none "${SNAP[@]}" -o "$OUT/$CASE/bundle" 2>"$OUT/$CASE/compile.log" || {
		cat "$OUT/$CASE/compile.log" >&2
		echo "plan-tls: $CASE: compile failed" >&2
		exit 1
	}
	"$XDS2BPF" dump-ir "${SNAP[@]}" 2>/dev/null | grep -oE 'endpoint [^ ]+' | awk '{print $2}' >"$OUT/$CASE/eps/all" || true
}

# A real TLS 1.2 ClientHello of openssl s_client for SNI (the Certificate then comes in clear).
capture_hello() { python3 "$HERE/capture-hello.py" "$1" "$2"; }

tls_req() {
	local id=$1 dst=$2 sni=$3 alpn=$4 mode=$5 args=() a
	[ "$sni" = - ] || args+=(--sni "$sni")
	if [ "$alpn" != - ]; then for a in ${alpn//,/ }; do args+=(--alpn "$a"); done; fi
	[ "$mode" = plain ] || [ ${#args[@]} -gt 0 ] || args+=(--tls)
	"$XDS2BPF" explain --json --dst "$dst" "${args[@]}" "${SNAP[@]}" >"$OUT/$CASE/req/$id.json" 2>"$OUT/$CASE/req/$id.log" || {
		cat "$OUT/$CASE/req/$id.log" >&2
		echo "plan-tls: $CASE/$id: explain failed" >&2
		exit 1
	}
	if [ "$mode" = split ] && [ ! -s "$OUT/hello/$sni.bin" ]; then capture_hello "$sni" "$OUT/hello/$sni.bin"; fi
	echo "$CASE|$id|$dst|$sni|$alpn|$mode" >>"$OUT/requests"
}

# shellcheck source=tls-cases.sh
source "$HERE/tls-cases.sh"
flush_case
for ep in $(cut -d'|' -f2 "$OUT/cases" | tr ' ' '\n' | sort -u); do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=x2b-ep $ep end" \
		-keyout "$OUT/certs/$ep.key" -out "$OUT/certs/$ep.crt" 2>/dev/null
done
echo "plan-tls: $(wc -l <"$OUT/cases") cases, $(wc -l <"$OUT/requests") connections in $OUT" >&2
