#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# make vmtest: builds the defer-connect module against Debian's 6.12 cloud
# headers, a busybox initramfs with the tests, boots qemu (TCG, hard timeouts)
# and decides pass/fail from the markers the guest prints.
#   Tests/vm/run.sh [STEP...]
# steps:
#   phase-a   6.12 + module: hand-written test program, x2b-vmtest's cases
#   l4-612    6.12, no module: the L4 end-to-end cases of Tests/e2e/run-l4.sh,
#             compiled and planned on the host, loaded with xds2bpf-loader in the guest
#   l4-61     the same on Debian's 6.1 kernel
#   stress    6.12 + module: the concurrency cases 30 times (not in the default)
#   http      6.12 + module: HTTP/1.1 requests of http-cases.sh through compiled
#             bundles (HTTP variant), compared with `xds2bpf explain`
#   tls       6.12 + module: TLS passthrough connections of tls-cases.sh (openssl
#             s_client, curl, a ClientHello in two sends, plain bytes) to TLS servers
#             behind each chain, compared with `xds2bpf explain --sni --alpn`
#   bench-http 6.12 + module, 2 GiB: HTTP request latency, direct vs the redirect
#             through the module vs Envoy (HTTP connection manager, same routes);
#             not in the default: scripts/bench.sh --only http-latency runs it
#             (plan-bench-http.sh, guest-bench-http.sh; the X2B-BENCH lines go
#             to X2B_VM_BENCH_OUT/<mode>-c<conns>-r<rep>.json)
#   soak-http 6.12 + module: HTTP clients through the module for SOAK_MINUTES
#             while the bundle is replaced every SOAK_REPLACE_S (2) s; fails on a
#             failed request or replace or a kernel warning (`make soak-vm`,
#             soak-report.py writes SOAK_REPORT; not in the default)
# default: phase-a, and l4-612 l4-61 when the compiler and loader are built
# (CI=1: missing ones fail instead of being skipped), and http once the
# compiler emits the HTTP variant (bundles that call bpf_x2b_defer).
#   X2B_VM_TIMEOUT=seconds per boot (default 300)   X2B_VM_L4_N=connects per destination (400)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$ROOT/scripts/env.sh"
VM=${X2B_VM_DIR:-$ROOT/.vm}
export X2B_VM_DIR=$VM
B=$VM/build
LIMIT=${X2B_VM_TIMEOUT:-300}
STEPS=("$@")
XDS2BPF=${XDS2BPF:-$ROOT/.build/release/xds2bpf}
LOADER=${XDS2BPF_LOADER:-$ROOT/bpf-runtime/loader/xds2bpf-loader}
L4_N=${X2B_VM_L4_N:-400}

log() { printf '[vmtest %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'vmtest: FAIL: %s\n' "$*" >&2; exit 1; }

if [ ${#STEPS[@]} -eq 0 ]; then
	STEPS=(phase-a)
	if [ -x "$XDS2BPF" ] && [ -x "$LOADER" ]; then
		STEPS+=(l4-612 l4-61 http? tls)
	elif [ "${CI:-}" = 1 ]; then
		die "the L4 steps need $XDS2BPF and $LOADER (make build loader)"
	else
		log "SKIP l4-612 l4-61: no $XDS2BPF or $LOADER (make build loader)"
	fi
fi

"$HERE/fetch.sh"
# shellcheck source=/dev/null
source "$VM/env"
mkdir -p "$B"

CLANG=${XDS2BPF_CLANG:-$(command -v clang || echo /opt/swift/usr/bin/clang)}
[ -x "$CLANG" ] || CLANG=/opt/swift/usr/bin/clang

t0=$(date +%s%N)
log "module against $X2B_K612"
make -s -C "$ROOT/kernel" KDIR="$X2B_KDIR" >"$B/module.log" 2>&1 || { cat "$B/module.log" >&2; die "module build"; }
if grep -q 'warning:' "$B/module.log"; then cat "$B/module.log" >&2; die "module build has warnings"; fi
log "test program and x2b-vmtest"
"$CLANG" -target bpf -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I"$ROOT/bpf-runtime/include" \
	-c "$HERE/bpf/defer_test.bpf.c" -o "$B/defer_test.bpf.o"
gcc -O2 -g -Wall -Wextra -Werror -static -pthread -o "$B/x2b-vmtest" "$HERE/x2b-vmtest.c" -lbpf -lelf -lz

# stage NAME: a fresh initramfs tree with busybox, /init and the test files
stage() {
	local s=$B/stage-$1
	rm -rf "$s"
	mkdir -p "$s"/{bin,sbin,proc,sys,dev,tmp,etc,x2b}
	cp "$X2B_BUSYBOX" "$s/bin/busybox"
	cp "$HERE/init.sh" "$s/init"
	cp "$HERE"/guest-*.sh "$s/x2b/"
	cp "$B/x2b-vmtest" "$s/x2b/"
	echo "root:x:0:0:root:/:/bin/sh" >"$s/etc/passwd"
	echo "$s"
}

# with_loader DIR: xds2bpf-loader and the shared objects it needs (ldd), at their own paths
with_loader() {
	local s=$1 lib
	cp "$LOADER" "$s/x2b/xds2bpf-loader"
	for lib in $(ldd "$LOADER" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'); do
		mkdir -p "$s$(dirname "$lib")"
		cp -L "$lib" "$s$lib"
	done
}

# with_tool DIR NAME: a host program (openssl, curl: the TLS clients and servers) and the
# shared objects it needs (ldd), at their own paths
with_tool() {
	local s=$1 bin lib
	bin=$(command -v "$2") || die "tls needs $2 on the host"
	cp "$bin" "$s/x2b/$2"
	for lib in $(ldd "$bin" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'); do
		mkdir -p "$s$(dirname "$lib")"
		cp -L "$lib" "$s$lib"
	done
}

# pack DIR OUT: newc cpio, gzip
pack() {
	(cd "$1" && find . -print | sort | "$X2B_BUSYBOX" cpio -o -H newc 2>/dev/null) | gzip -1 >"$2"
}

# boot NAME KERNEL INITRD MODE: runs the VM and checks its markers
boot() {
	local name=$1 kernel=$2 initrd=$3 mode=$4 logf=$B/$1.log st=0 t
	log "boot $name ($mode), timeout ${LIMIT}s, log $logf"
	t=$(date +%s%N)
	"$HERE/qemu.sh" "$kernel" "$initrd" "$logf" "$LIMIT" "x2b.mode=$mode" || st=$?
	t=$(( ($(date +%s%N) - t) / 1000000 ))
	grep -E '^X2B-' "$logf" | grep -Ev '^X2B-([HT]?OBS|BENCH |SOAK )' | sed 's/^/    /' >&2 || true
	[ $st = 124 ] && { tail -40 "$logf" >&2; die "$name: qemu timed out after ${LIMIT}s"; }
	grep -q '^X2B-VM-RESULT PASS' "$logf" || { tail -60 "$logf" >&2; die "$name: guest did not report PASS (qemu status $st)"; }
	log "$name passed in ${t} ms"
}

for step in "${STEPS[@]}"; do
	case $step in
	phase-a | stress)
		s=$(stage a612)
		cp "$ROOT/kernel/xds2bpf_defer.ko" "$B/defer_test.bpf.o" "$s/x2b/"
		pack "$s" "$B/initrd-a612.gz"
		boot "$step" "$X2B_VMLINUZ_612" "$B/initrd-a612.gz" "$step"
		;;
	http | "http?")
		[ -x "$XDS2BPF" ] && [ -x "$LOADER" ] || die "$step needs $XDS2BPF and $LOADER (make build loader)"
		log "plan the HTTP requests (compile + explain on the host)"
		if ! variant=$(XDS2BPF=$XDS2BPF "$HERE/plan-http.sh" "$B/http"); then
			[ "$step" = "http?" ] && { log "SKIP http: planning failed (above)"; continue; }
			die "http: planning failed"
		fi
		if [ "$step" = "http?" ] && [ "$variant" != "http-variant yes" ]; then
			log "SKIP http: the compiled bundles have no HTTP variant yet (no call to bpf_x2b_defer)"
			continue
		fi
		s=$(stage http)
		with_loader "$s"
		cp "$ROOT/kernel/xds2bpf_defer.ko" "$s/x2b/"
		mkdir -p "$s/x2b/http"
		cp "$B/http/cases" "$B/http/requests" "$s/x2b/http/"
		echo "${X2B_VM_HTTP_N:-200}" >"$s/x2b/http/n"
		while IFS='|' read -r name _; do
			mkdir -p "$s/x2b/http/$name"
			cp -r "$B/http/$name/bundle" "$s/x2b/http/$name/"
		done <"$B/http/cases"
		pack "$s" "$B/initrd-http.gz"
		boot http "$X2B_VMLINUZ_612" "$B/initrd-http.gz" http
		"$HERE/check-http.sh" "$B/http.log" "$B/http" "${X2B_VM_HTTP_N:-200}" >"$B/http.check" 2>&1 || {
			cat "$B/http.check" >&2; die "http: kernel disagrees with explain"; }
		log "http: $(tail -1 "$B/http.check")"
		;;
	tls)
		[ -x "$XDS2BPF" ] && [ -x "$LOADER" ] || die "$step needs $XDS2BPF and $LOADER (make build loader)"
		log "plan the TLS connections (compile + explain + certificates on the host)"
		XDS2BPF=$XDS2BPF "$HERE/plan-tls.sh" "$B/tls" || die "tls: planning failed"
		s=$(stage tls)
		with_loader "$s"
		with_tool "$s" openssl
		with_tool "$s" curl
		cp "$ROOT/kernel/xds2bpf_defer.ko" "$s/x2b/"
		mkdir -p "$s/x2b/tls"
		cp -r "$B/tls/cases" "$B/tls/requests" "$B/tls/certs" "$B/tls/hello" "$s/x2b/tls/"
		while IFS='|' read -r name _; do
			mkdir -p "$s/x2b/tls/$name"
			cp -r "$B/tls/$name/bundle" "$s/x2b/tls/$name/"
		done <"$B/tls/cases"
		pack "$s" "$B/initrd-tls.gz"
		boot tls "$X2B_VMLINUZ_612" "$B/initrd-tls.gz" tls
		"$HERE/check-tls.sh" "$B/tls.log" "$B/tls" >"$B/tls.check" 2>&1 || {
			cat "$B/tls.check" >&2; die "tls: kernel disagrees with explain"; }
		log "tls: $(tail -1 "$B/tls.check")"
		;;
	l4-612 | l4-61)
		[ -x "$XDS2BPF" ] && [ -x "$LOADER" ] || die "$step needs $XDS2BPF and $LOADER (make build loader)"
		if [ "${l4_planned:-}" != 1 ]; then
			log "plan the L4 cases (compile + explain on the host)"
			XDS2BPF=$XDS2BPF "$HERE/plan-l4.sh" "$B/l4"
			l4_planned=1
		fi
		s=$(stage "$step")
		with_loader "$s"
		mkdir -p "$s/x2b/l4"
		cp "$B/l4/cases" "$s/x2b/l4/"
		echo "$L4_N" >"$s/x2b/l4/n"
		while IFS='|' read -r name _; do
			mkdir -p "$s/x2b/l4/$name"
			cp -r "$B/l4/$name/bundle" "$s/x2b/l4/$name/"
		done <"$B/l4/cases"
		pack "$s" "$B/initrd-$step.gz"
		if [ "$step" = l4-612 ]; then k=$X2B_VMLINUZ_612; else k=$X2B_VMLINUZ_61; fi
		boot "$step" "$k" "$B/initrd-$step.gz" l4
		"$HERE/check-l4.sh" "$B/$step.log" "$B/l4" "$L4_N" >"$B/$step.check" 2>&1 || {
			cat "$B/$step.check" >&2; die "$step: kernel disagrees with explain"; }
		log "$step: $(tail -1 "$B/$step.check")"
		;;
	bench-http)
		[ -x "$XDS2BPF" ] && [ -x "$LOADER" ] || die "$step needs $XDS2BPF and $LOADER (make build loader)"
		log "plan the HTTP benchmark (compile, Envoy's bootstrap, static clients on the host)"
		XDS2BPF=$XDS2BPF "$HERE/plan-bench-http.sh" "$B/bench-http" || die "bench-http: planning failed"
		s=$(stage bench-http)
		with_loader "$s"
		cp "$ROOT/kernel/xds2bpf_defer.ko" "$B/bench-http/latency" "$B/bench-http/backend" "$s/x2b/"
		if [ -s "$B/bench-http/envoy-path" ]; then
			# Envoy and the shared objects ldd lists, at their own paths (as with_tool)
			envoy_bin=$(cat "$B/bench-http/envoy-path")
			cp "$envoy_bin" "$s/x2b/envoy"
			for lib in $(ldd "$envoy_bin" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'); do
				mkdir -p "$s$(dirname "$lib")"
				cp -L "$lib" "$s$lib"
			done
		fi
		mkdir -p "$s/x2b/bench"
		cp -r "$B/bench-http/bundle" "$B/bench-http/envoy.json" "$B/bench-http/params" "$s/x2b/bench/"
		pack "$s" "$B/initrd-bench-http.gz"
		# Envoy (~100 MB, unpacked from the initramfs into RAM) needs more than the default;
		# under TCG it takes a while to start, and every run is several seconds
		X2B_VM_MEM=${X2B_VM_MEM:-2048} LIMIT=${X2B_VM_TIMEOUT:-1200} boot bench-http "$X2B_VMLINUZ_612" "$B/initrd-bench-http.gz" bench-http
		bench_out=${X2B_VM_BENCH_OUT:-$B/bench-http/results}
		mkdir -p "$bench_out"
		grep -a '^X2B-BENCH ' "$B/bench-http.log" | tr -d '\r' | while read -r _ m c r json; do
			printf '%s\n' "$json" >"$bench_out/$m-c$c-r$r.json"
		done
		grep -a '^X2B-BENCH-' "$B/bench-http.log" | tr -d '\r' >"$bench_out/guest-info.txt" || true
		cp "$B/bench-http/params" "$B/bench-http/envoy.json" "$B/bench-http/explain.json" "$bench_out/"
		log "bench-http: $(find "$bench_out" -name '*-c*-r*.json' | wc -l) runs in $bench_out"
		;;
	soak-http)
		[ -x "$XDS2BPF" ] && [ -x "$LOADER" ] || die "$step needs $XDS2BPF and $LOADER (make build loader)"
		log "plan the HTTP soak (bundles A and B, static clients on the host)"
		XDS2BPF=$XDS2BPF ENVOY=/nonexistent "$HERE/plan-bench-http.sh" "$B/soak-http" 2>"$B/soak-http.plan.log" ||
			{ cat "$B/soak-http.plan.log" >&2; die "soak-http: planning failed"; }
		s=$(stage soak-http)
		with_loader "$s"
		cp "$ROOT/kernel/xds2bpf_defer.ko" "$B/soak-http/latency" "$B/soak-http/backend" "$s/x2b/"
		mkdir -p "$s/x2b/soak"
		cp -r "$B/soak-http/bundle" "$s/x2b/soak/A"
		cp -r "$B/soak-http/bundle-b" "$s/x2b/soak/B"
		soak_s=$(awk -v m="${SOAK_MINUTES:-5}" 'BEGIN { printf "%d", m * 60 }')
		# shellcheck disable=SC1090
		(source "$B/soak-http/params" && cat <<EOT) >"$s/x2b/soak/params"
VIP=$VIP
AUTHORITY=$AUTHORITY
PATH_=$PATH_
ENDPOINTS="$(cat "$B/soak-http/endpoints" "$B/soak-http/endpoints-b" | tr '\n' ' ')"
SECONDS_TOTAL=$soak_s
INTERVAL=${SOAK_INTERVAL:-20}
CLIENTS=${SOAK_CLIENTS:-4}
REPLACE_S=${SOAK_REPLACE_S:-2}
EOT
		pack "$s" "$B/initrd-soak-http.gz"
		# the report also when the guest fails (a failed request is what a soak is for)
		st=0
		(LIMIT=${X2B_VM_TIMEOUT:-$((soak_s + 300))} boot soak-http "$X2B_VMLINUZ_612" "$B/initrd-soak-http.gz" soak-http) || st=$?
		python3 "$HERE/soak-report.py" "$B/soak-http.log" "$s/x2b/soak/params" >"$B/soak-http.md" || st=1
		if [ -n "${SOAK_REPORT:-}" ]; then cp "$B/soak-http.md" "$SOAK_REPORT"; fi
		cat "$B/soak-http.md"
		[ $st = 0 ] || die "soak-http: see $B/soak-http.md and $B/soak-http.log"
		;;
	*) die "unknown step $step" ;;
	esac
done
log "all steps passed in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
