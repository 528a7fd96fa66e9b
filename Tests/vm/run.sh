#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# make vmtest: builds the defer-connect module against Debian's 6.12 cloud
# headers, a busybox initramfs with the tests, boots qemu (TCG, hard timeouts)
# and decides pass/fail from the markers the guest prints.
#   Tests/vm/run.sh [STEP...]     steps: phase-a (default: all that can run)
#   X2B_VM_TIMEOUT=seconds per boot (default 300)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VM=${X2B_VM_DIR:-$ROOT/.vm}
export X2B_VM_DIR=$VM
B=$VM/build
LIMIT=${X2B_VM_TIMEOUT:-300}
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(phase-a)

log() { printf '[vmtest %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'vmtest: FAIL: %s\n' "$*" >&2; exit 1; }

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
gcc -O2 -g -Wall -Wextra -Werror -static -o "$B/x2b-vmtest" "$HERE/x2b-vmtest.c" -lbpf -lelf -lz

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
	grep -E '^X2B-' "$logf" | sed 's/^/    /' >&2 || true
	[ $st = 124 ] && { tail -40 "$logf" >&2; die "$name: qemu timed out after ${LIMIT}s"; }
	grep -q '^X2B-VM-RESULT PASS' "$logf" || { tail -60 "$logf" >&2; die "$name: guest did not report PASS (qemu status $st)"; }
	log "$name passed in ${t} ms"
}

for step in "${STEPS[@]}"; do
	case $step in
	phase-a)
		s=$(stage a612)
		cp "$ROOT/kernel/xds2bpf_defer.ko" "$B/defer_test.bpf.o" "$s/x2b/"
		pack "$s" "$B/initrd-a612.gz"
		boot phase-a "$X2B_VMLINUZ_612" "$B/initrd-a612.gz" phase-a
		;;
	*) die "unknown step $step" ;;
	esac
done
log "all steps passed in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
