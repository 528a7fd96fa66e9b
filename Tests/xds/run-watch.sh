#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# `xds2bpf watch` end to end on the real kernel: a private netns and test cgroup
# (Tests/e2e/lib.sh, removed on exit), the real ADS test server on 127.0.0.1, the
# agent keeping a bundle loaded while clients connect and the server pushes
# endpoint changes, config changes, invalid updates and faults (watch_e2e.py).
#   Tests/xds/run-watch.sh [--changes N]     (root; SKIP without root/BTF/cgroup2 unless CI=1)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$ROOT/Tests/e2e/lib.sh"
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
if ! why=$(e2e_can_run 2>&1); then
	[ "${CI:-}" = 1 ] && { echo "FAIL: watch e2e cannot run: $why"; exit 1; }
	echo "SKIP: watch e2e: $why"; exit 0
fi
e2e_netns_begin
export E2E_LOADER XDS2BPF_LOADER=$E2E_LOADER
"$E2E_PYTHON" "$HERE/watch_e2e.py" --xds2bpf "$XDS2BPF" --netns "$E2E_NETNS" --cgroup "$E2E_CGROUP" --tmp "$E2E_TMP" "$@"
