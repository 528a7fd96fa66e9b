#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# TLS passthrough against a real Envoy: the bootstrap cases of Tests/vm/tls-cases.sh
# are served by Envoy (.venv/bin/envoy) in a network namespace of their own, with an
# openssl s_server per endpoint whose certificate names it; each connection of the
# list (openssl s_client with SNI and ALPN, a real ClientHello in two sends, plain
# HTTP bytes) must reach a backend `xds2bpf explain --sni --alpn` allows (or none
# where the interpreter says Envoy closes the connection).
#   Tests/envoy/run-tls-diff.sh        (XDS2BPF names the compiler; root for unshare)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/scripts/env.sh"
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
ENVOY=${ENVOY:-$ROOT/.venv/bin/envoy}
[ -x "$ENVOY" ] || { echo "run-tls-diff: no Envoy at $ENVOY (scripts/install-deps.sh)" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
	[ "${CI:-}" = 1 ] && { echo "FAIL: run-tls-diff needs root (a network namespace of its own)" >&2; exit 1; }
	echo "SKIP: run-tls-diff needs root (a network namespace of its own)"
	exit 0
fi
if [ "${X2B_TLS_DIFF_INNER:-}" != 1 ]; then
	exec unshare -n env X2B_TLS_DIFF_INNER=1 XDS2BPF="$XDS2BPF" ENVOY="$ENVOY" "$0" "$@"
fi
W=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
ip link set lo up
# BusyBox's nc (Debian's busybox-static, from scripts/install-deps.sh; or the VM tests' copy):
# one nc whose behaviour at end of input the checks below rely on.
NC=
for bb in "$(command -v busybox || true)" "$ROOT/.vm/busybox/bin/busybox"; do
	if [ -n "$bb" ] && [ -x "$bb" ] && "$bb" --list 2>/dev/null | grep -qx nc; then NC="$bb nc"; break; fi
done
[ -n "$NC" ] || { echo "run-tls-diff: no busybox nc (scripts/install-deps.sh installs busybox-static)" >&2; exit 1; }
CASE='' SNAP=() pass=0 fail=0 skipped=0 envoy_pid=''

# wait_port HOST PORT: until something accepts there (Envoy and the servers start slowly under load)
wait_port() {
	local i
	for i in $(seq 100); do
		if timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; then return 0; fi
		sleep 0.2
	done
	echo "run-tls-diff: nothing listens on $1:$2" >&2
	return 1
}

stop_case() {
	[ -n "$envoy_pid" ] || return 0
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	PIDS=() envoy_pid=''
}

tls_case() {
	stop_case
	CASE=$1
	shift
	SNAP=("$@")
	if [ ${#SNAP[@]} != 1 ] || [ "${SNAP[0]##*.}" != json ]; then CASE=''; return 0; fi # bootstraps only
	local ep h
	for ep in $("$XDS2BPF" dump-ir "${SNAP[@]}" 2>/dev/null | grep -oE 'endpoint [^ ]+' | awk '{print $2}' | sort -u); do
		h=${ep%:*}
		ip addr add "$h/32" dev lo
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=x2b-ep $ep end" \
			-keyout "$W/$ep.key" -out "$W/$ep.crt" 2>/dev/null
		openssl s_server -accept "$ep" -cert "$W/$ep.crt" -key "$W/$ep.key" -www -naccept 1000 \
			>"$W/srv-$ep.log" 2>&1 </dev/null &
		PIDS+=($!)
	done
	local listeners
	listeners=$(python3 -c 'import json,sys
for l in json.load(open(sys.argv[1]))["static_resources"]["listeners"]:
    a = l["address"]["socket_address"]
    print(a["address"], a["port_value"])' "${SNAP[0]}")
	while read -r h p; do
		[ "$h" = 0.0.0.0 ] || [ "$h" = :: ] || ip addr add "$h/32" dev lo
	done <<<"$listeners"
	"$ENVOY" -c "${SNAP[0]}" --base-id $$ -l error >"$W/envoy.log" 2>&1 &
	envoy_pid=$!
	PIDS+=("$envoy_pid")
	for ep in $("$XDS2BPF" dump-ir "${SNAP[@]}" 2>/dev/null | grep -oE 'endpoint [^ ]+' | awk '{print $2}' | sort -u); do
		wait_port "${ep%:*}" "${ep##*:}"
	done
	while read -r h p; do
		case $h in 0.0.0.0 | ::) h=127.0.0.1 ;; esac
		wait_port "$h" "$p"
	done <<<"$listeners"
}

capture_hello() { python3 "$ROOT/Tests/vm/capture-hello.py" "$1" "$2"; }

http_errors() { cat "$W"/srv-*.log | grep -c 'http request' || true; }

tls_req() {
	[ -n "$CASE" ] || return 0
	local id=$1 dst=$2 sni=$3 alpn=$4 mode=$5 args=() a got='' allowed host=${2%:*} port=${2##*:} before f
	[ "$sni" = - ] || args+=(--sni "$sni")
	if [ "$alpn" != - ]; then for a in ${alpn//,/ }; do args+=(--alpn "$a"); done; fi
	[ "$mode" = plain ] || [ ${#args[@]} -gt 0 ] || args+=(--tls)
	allowed=$("$XDS2BPF" explain --json --dst "$dst" "${args[@]}" "${SNAP[@]}" | python3 -c 'import json,sys
e = json.load(sys.stdin)
print(" ".join(c["endpoint"] for c in e.get("candidates", [])) if e.get("outcome") == "redirect" else e.get("outcome"))')
	# Envoy's original-destination passthrough would dial the address it listens on: not asked.
	if [ "$allowed" = untouched ]; then skipped=$((skipped + 1)); return 0; fi
	[ "$allowed" = refused ] && allowed=none
	ip addr add "$host/32" dev lo 2>/dev/null || true # the address a wildcard listener is dialled at
	case $mode in
	s_client | big)
		local o=(-connect "$dst")
		# big: a 512-byte ffdhe4096 key share, with long ALPN values a ClientHello past 1024 bytes
		[ "$mode" = big ] && o+=(-groups ffdhe4096)
		if [ "$sni" = - ]; then o+=(-noservername); else o+=(-servername "$sni"); fi
		[ "$alpn" = - ] || o+=(-alpn "$alpn")
		got=$(timeout 10 openssl s_client "${o[@]}" </dev/null 2>&1 | sed -n 's/^subject=.*x2b-ep \([^ ]*\) end.*/\1/p' | head -1 || true)
		;;
	curl)
		got=$(timeout 10 curl -sk -v --max-time 8 --resolve "$sni:$port:$host" "https://$sni:$port/" 2>&1 |
			awk '/subject: CN=x2b-ep/ { ep = $4 } /^< HTTP\/1.0 200 ok/ { ok = 1 } END { if (ok) print ep }' || true)
		;;
	split)
		[ -s "$W/hello-$sni.bin" ] || capture_hello "$sni" "$W/hello-$sni.bin"
		# shellcheck disable=SC2086
		got=$( (head -c 40 "$W/hello-$sni.bin"; sleep 0.04; tail -c +41 "$W/hello-$sni.bin"; sleep 2) |
			timeout 10 $NC "$host" "$port" 2>/dev/null | strings | sed -n 's/.*x2b-ep \([^ ]*\) end.*/\1/p' | head -1 || true)
		;;
	plain)
		for f in "$W"/srv-*.log; do grep -c 'http request' "$f" >"$f.n" || true; done
		# shellcheck disable=SC2086
		(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'; sleep 1) | timeout 5 $NC "$host" "$port" >/dev/null 2>&1 || true
		sleep 0.5
		for f in "$W"/srv-*.log; do
			before=$(cat "$f.n")
			if [ "$(grep -c 'http request' "$f" || true)" != "$before" ]; then got=${f##*/srv-}; got=${got%.log}; fi
		done
		;;
	esac
	got=${got:-none}
	if [[ " $allowed " == *" $got "* ]]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL $CASE/$id ($mode, sni $sni, alpn $alpn to $dst): Envoy reached $got, explain allows $allowed"
	fi
}

# shellcheck source=../vm/tls-cases.sh
source "$ROOT/Tests/vm/tls-cases.sh"
stop_case
echo "run-tls-diff: $pass connections agree with Envoy, $fail differ ($skipped to original destinations not asked)"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
