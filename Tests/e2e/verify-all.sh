#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The real verifier on every bundle we can build: each fixture, the example,
# every corpus case the front end accepts, and a large synthetic snapshot (the
# planner's map strategy). `xds2bpf-loader verify` loads each object into the
# host kernel without attaching or pinning and prints instruction counts.
#   Tests/e2e/verify-all.sh     (root; SKIP without root unless CI=1)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
LOADER=${E2E_LOADER:-$ROOT/bpf-runtime/loader/xds2bpf-loader}
source "$ROOT/scripts/env.sh"
if [ "$(id -u)" != 0 ]; then
	[ "${CI:-}" = 1 ] && { echo "FAIL: verify-all needs root"; exit 1; }
	echo "SKIP: verify-all needs root"; exit 0
fi
TMP=$(mktemp -d /tmp/xds2bpf-verify.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
n=0
verify() { # NAME SNAPSHOT...
	local name=$1; shift
	local b=$TMP/b$n
	"$XDS2BPF" compile --quiet --cache-dir none "$@" -o "$b" 2>"$TMP/err" || { cat "$TMP/err" >&2; echo "FAIL: $name: compile"; exit 1; }
	if ! "$LOADER" verify "$b" >"$TMP/out" 2>&1; then
		cat "$TMP/out" >&2
		echo "FAIL: $name: rejected by the kernel verifier"
		exit 1
	fi
	echo "ok $name: $(tail -1 "$TMP/out")"
	rm -rf "$b"
	n=$((n + 1))
}
F=$ROOT/Tests/Fixtures/l4
for f in "$F"/*.json; do verify "$(basename "$f")" "$f"; done
for d in "$F"/*/; do
	mapfile -t files < <(find "$d" -maxdepth 1 -type f \( -name '*.json' -o -name '*.yaml' \) | sort)
	verify "$(basename "$d")" "${files[@]}"
done
verify bookinfo "$ROOT/examples/bookinfo/bookinfo.json"
verify bookinfo-xds "$ROOT/examples/bookinfo/bookinfo.xds.pb"
# corpus cases the front end accepts (see Tests/Goldens/corpus-outcomes.txt)
if [ -z "$CORPUS" ]; then
	x2b_no_corpus "verify-all corpus cases"
else
	while read -r _ rel _; do
		rel=${rel%:}
		if [[ "$rel" == */ ]]; then
			mapfile -t files < <(find "$CORPUS/$rel" -maxdepth 1 -type f | sort)
			verify "corpus $rel" "${files[@]}"
		else
			verify "corpus $rel" "$CORPUS/$rel"
		fi
	done < <(grep '^ok ' "$ROOT/Tests/Goldens/corpus-outcomes.txt")
fi
# scale: thousands of listeners → map-based listener match
python3 "$ROOT/scripts/gen-synthetic.py" --services 3000 --endpoints 3 --http-ratio 0.3 --ipv6-ratio 0.2 --seed 7 --format json -o "$TMP/syn.json" >/dev/null
verify synthetic-3000 "$TMP/syn.json"
echo "verify-all: $n bundles passed the kernel verifier"
