#!/usr/bin/env bash
# Installs what building and testing xds2bpf needs on Debian 12, only what is missing.
# Swift 6 (with its clang for BPF) is expected in /opt/swift or on PATH.
set -euo pipefail
pkgs=(protobuf-compiler libprotobuf-dev protobuf-c-compiler libprotobuf-c-dev libbpf-dev bpftool
      libelf-dev zlib1g-dev libssl-dev pkg-config iproute2 util-linux linux-libc-dev make gcc
      qemu-system-x86 busybox-static dwarves bc cpio xz-utils curl openssl clang-format
      prometheus prometheus-node-exporter dnsmasq-base haproxy)
# prometheus (promtool) and prometheus-node-exporter: the metrics test (Tests/loader/run.sh metrics)
# checks `xds2bpf-loader stats --format prometheus` with promtool and runs its own node_exporter
# in the test netns. On a host with systemd, Debian starts both packages' services on install
# (ports 9090 and 9100); `systemctl disable --now prometheus prometheus-node-exporter` stops them.
# dnsmasq-base (the binary, no service): the DNS cluster test (Tests/loader/run-dns.sh) runs a
# real DNS server in its private network namespace.
# haproxy: `make bench` measures latency against it (TCP mode) beside Envoy's tcp_proxy; its
# Debian default configuration listens on nothing.
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null 2>&1 && [ ! -x /opt/swift/usr/bin/swift ]; then
	echo "install-deps: Swift 6 not found (expected /opt/swift/usr/bin/swift)" >&2
	exit 1
fi
# Python: a project-local venv (.venv) from the pinned scripts/requirements.txt. Every
# script runs through it (the Makefile and scripts/env.sh put .venv/bin first on PATH),
# never through the system's or the user's site-packages. Reinstalled when the
# requirements change (a hash of the file is kept in the venv).
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv
req=$root/scripts/requirements.txt
if [ ! -x "$venv/bin/python3" ] || ! "$venv/bin/python3" -c 'import sys' 2>/dev/null; then
	rm -rf "$venv"
	py=$(command -v python3 || true)
	if [ -z "$py" ] || ! "$py" -m venv --help >/dev/null 2>&1; then
		echo "install-deps: installing python3-venv"
		$SUDO apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip >/dev/null
		py=/usr/bin/python3
	fi
	echo "install-deps: creating $venv"
	"$py" -m venv "$venv"
fi
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
	echo "install-deps: installing scripts/requirements.txt into .venv"
	"$venv/bin/python3" -m pip install -q --disable-pip-version-check -r "$req"
	echo "$want" >"$venv/.requirements.sha256"
fi
