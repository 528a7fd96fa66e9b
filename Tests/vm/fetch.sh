#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Downloads (apt-get download) and unpacks, never installs, what the VM tests
# boot and build against, under $X2B_VM_DIR (default .vm/, git-ignored):
#   - Debian's 6.12 cloud kernel image + headers + kbuild  (module build, phase A/B)
#   - Debian's 6.1 cloud kernel image                       (L4 path without module)
#   - busybox-static                                        (the guest's userland)
# and checks the host tools (qemu-system-x86, pahole from dwarves), installing
# them with apt-get when missing and running as root.
# Writes $X2B_VM_DIR/env (shell variables for the other scripts).
#   X2B_VM_K612=6.12.117+deb12   X2B_VM_K61=6.1.0-56   pin versions (default: newest in apt)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VM=${X2B_VM_DIR:-$ROOT/.vm}
mkdir -p "$VM/debs"

log() { printf '[vm-fetch] %s\n' "$*" >&2; }

need_tools=()
command -v qemu-system-x86_64 >/dev/null || need_tools+=(qemu-system-x86)
command -v pahole >/dev/null || need_tools+=(dwarves)
command -v gcc-12 >/dev/null || need_tools+=(gcc-12)
for f in /usr/lib/x86_64-linux-gnu/libbpf.a /usr/lib/x86_64-linux-gnu/libelf.a /usr/lib/x86_64-linux-gnu/libz.a; do
	[ -f "$f" ] || { need_tools+=(libbpf-dev libelf-dev zlib1g-dev); break; }
done
if [ ${#need_tools[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "vm-fetch: missing ${need_tools[*]} (apt-get install them)" >&2; exit 1; }
	log "installing ${need_tools[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_tools[@]}" >/dev/null
fi

# newest ABI of a kernel line in the apt index, e.g. newest '6\.12\.[0-9]+\+deb12'
newest() {
	apt-cache search --names-only '^linux-image-6\.1' | awk '{print $1}' |
		sed -nE "s/^linux-image-($1)-cloud-amd64\$/\1/p" | sort -V | tail -1
}
K612=${X2B_VM_K612:-$(newest '6\.12\.[0-9]+\+deb12')}
K61=${X2B_VM_K61:-$(newest '6\.1\.0-[0-9]+')}
[ -n "$K612" ] && [ -n "$K61" ] || { echo "vm-fetch: no 6.12/6.1 cloud kernels in the apt index (apt-get update?)" >&2; exit 1; }

# fetch PKG...: into $VM/debs unless there already
fetch() {
	local p missing=()
	for p in "$@"; do
		compgen -G "$VM/debs/${p}_*.deb" >/dev/null || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "apt-get download ${missing[*]}"
	(cd "$VM/debs" && apt-get download "${missing[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
	for p in "${missing[@]}"; do
		compgen -G "$VM/debs/${p}_*.deb" >/dev/null || { echo "vm-fetch: could not download $p" >&2; exit 1; }
	done
}

# unpack DIR PKG...: dpkg -x each package into DIR once
unpack() {
	local dir=$1 p; shift
	[ -f "$dir/.unpacked" ] && return 0
	rm -rf "$dir"; mkdir -p "$dir"
	for p in "$@"; do
		dpkg -x "$(compgen -G "$VM/debs/${p}_*.deb" | head -1)" "$dir"
	done
	touch "$dir/.unpacked"
}

P612=("linux-image-$K612-cloud-amd64" "linux-headers-$K612-cloud-amd64" "linux-headers-$K612-common" "linux-kbuild-$K612")
fetch "${P612[@]}" "linux-image-$K61-cloud-amd64" busybox-static
unpack "$VM/k-$K612" "${P612[@]}"
unpack "$VM/k-$K61" "linux-image-$K61-cloud-amd64"
unpack "$VM/busybox" busybox-static

KDIR=$VM/k-$K612/usr/src/linux-headers-$K612-cloud-amd64
# the flavour Makefile includes the common one by absolute path: point it into our tree
sed -i "s|^include /usr/src/|include $VM/k-$K612/usr/src/|" "$KDIR/Makefile"

cat >"$VM/env" <<EOT
X2B_VM_DIR=$VM
X2B_K612=$K612-cloud-amd64
X2B_K61=$K61-cloud-amd64
X2B_KDIR=$KDIR
X2B_VMLINUZ_612=$VM/k-$K612/boot/vmlinuz-$K612-cloud-amd64
X2B_VMLINUZ_61=$VM/k-$K61/boot/vmlinuz-$K61-cloud-amd64
X2B_MODDIR_612=$VM/k-$K612/lib/modules/$K612-cloud-amd64
X2B_MODDIR_61=$VM/k-$K61/lib/modules/$K61-cloud-amd64
X2B_BUSYBOX=$VM/busybox/bin/busybox
EOT
log "6.12: $K612, 6.1: $K61 -> $VM/env"
