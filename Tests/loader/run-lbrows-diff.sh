#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The rows the loader builds on the node for DNS clusters (bpf-runtime/loader/lbrows.c)
# against the compiler's, on random snapshots (Tests/loader/lbrows/lbrows-diff.py): no
# kernel, no root. Every LB policy, locality weights, priorities, health statuses,
# IPv4 and IPv6 answers; rows equal byte for byte.
#   Tests/loader/run-lbrows-diff.sh   (SKIP without protoc / python protobuf unless CI=1)
#   LBROWS_SEED=N LBROWS_BATCHES=B    another seed, more batches
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/scripts/env.sh"
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
PYTHON=${E2E_PYTHON:-$(command -v python3)}
skip() {
	[ "${CI:-}" = 1 ] && { echo "FAIL: lbrows diff cannot run: $1"; exit 1; }
	echo "SKIP: $1"
	exit 0
}
command -v protoc >/dev/null || skip "needs protoc"
"$PYTHON" -c 'import google.protobuf' 2>/dev/null || skip "needs the python protobuf package (scripts/install-deps.sh)"
make -s -C "$ROOT/bpf-runtime/loader" lbrows-check
"$PYTHON" "$ROOT/Tests/loader/lbrows/lbrows-diff.py" "$XDS2BPF" "$ROOT/bpf-runtime/loader/gen/lbrows-check" \
	--seed "${LBROWS_SEED:-13}" --batches "${LBROWS_BATCHES:-10}" --clusters 40
