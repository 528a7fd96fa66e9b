#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Envoy's `--mode validate` against `xds2bpf check` on every corpus case and fixture
# (Tests/envoy/validate-agreement.py); fails when Envoy rejects what xds2bpf accepts
# and the case is not in Tests/envoy/agreement-allow.txt with a reason. The table is
# written to a temporary file and compared with docs/envoy-agreement.md.
#   Tests/envoy/run-agreement.sh        (XDS2BPF names the compiler)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/scripts/env.sh"
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
if [ -z "$CORPUS" ]; then
	x2b_no_corpus "Envoy validation agreement"
	exit 0
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
XDS2BPF=$XDS2BPF XDS2BPF_CORPUS=$CORPUS python3 "$ROOT/Tests/envoy/validate-agreement.py" --out "$out"
if ! diff -u "$ROOT/docs/envoy-agreement.md" "$out" >"$out.diff"; then
	head -40 "$out.diff" >&2
	rm -f "$out.diff"
	echo "FAIL: docs/envoy-agreement.md is out of date (regenerate with the command it names)" >&2
	exit 1
fi
rm -f "$out.diff"
echo "envoy agreement: docs/envoy-agreement.md is current"
