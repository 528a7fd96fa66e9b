#!/usr/bin/env bash
# Installs what building and testing xds2bpf needs on Debian 12, only what is missing.
# Swift 6 (with its clang for BPF) is expected in /opt/swift or on PATH.
set -euo pipefail
pkgs=(protobuf-compiler libprotobuf-dev protobuf-c-compiler libprotobuf-c-dev libbpf-dev bpftool
      libelf-dev zlib1g-dev libssl-dev pkg-config iproute2 util-linux linux-libc-dev make gcc
      qemu-system-x86 busybox-static dwarves bc cpio xz-utils)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null 2>&1 && [ ! -x /opt/swift/usr/bin/swift ]; then
	echo "install-deps: Swift 6 not found (expected /opt/swift/usr/bin/swift)" >&2
	exit 1
fi
# Python packages for the fixture scripts (tests use committed fixtures; these regenerate them).
if [ "${XDS2BPF_PY_DEPS:-0}" = 1 ]; then
	python3 -m pip install -q -r "$(dirname "$0")/requirements.txt"
fi
