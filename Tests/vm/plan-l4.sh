#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Host side of the L4 suite in the VM: for every case of Tests/e2e/run-l4.sh
# (the run_case lines are read from it, so the list stays in one place),
# compile the bundle and ask `xds2bpf explain` (expect.py plan) where each
# destination may go.  Writes OUT/cases ("name|dsts|endpoints" per line) and
# OUT/<name>/{bundle/,expected.json}.  The guest (guest-l4.sh) loads each
# bundle with xds2bpf-loader and probes; check-l4.sh compares afterwards.
#   Tests/vm/plan-l4.sh OUT
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$1
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
source "$ROOT/scripts/env.sh"  # CORPUS: used by the sourced/eval-ed case lists
E2E=$ROOT/Tests/e2e
rm -rf "$OUT"
mkdir -p "$OUT"
: >"$OUT/cases"

e2e_listener_dsts() {
	"$XDS2BPF" dump-ir "$@" 2>/dev/null | awk '$1 == "listener" { a = $(NF-1);
		sub(/^0\.0\.0\.0:/, "10.123.4.5:", a); sub(/^\[::\]:/, "[fd00:123::5]:", a); printf "%s ", a }'
}

run_case() {
	local name=$1 dsts=$2 dir
	shift 2
	dir=$OUT/$name
	mkdir -p "$dir"
	"$XDS2BPF" compile --quiet --cache-dir none "$@" -o "$dir/bundle" 2>"$dir/compile.log" || {
		cat "$dir/compile.log" >&2; echo "plan-l4: $name: compile failed" >&2; exit 1; }
	# shellcheck disable=SC2086
	eps=$("$E2E/expect.py" plan "$XDS2BPF" "$dir/expected.json" $dsts -- "$@")
	echo "$name|$(echo $dsts)|$eps" >>"$OUT/cases"
}

# The case list of run-l4.sh: from 'F=' to the first function definition or the summary line.
cases=$(awk '/^F=/ { on = 1 } on && (/^[a-z_]+\(\) *\{/ || /^echo "run-l4/) { exit } on' "$E2E/run-l4.sh")
[ -n "$cases" ] || { echo "plan-l4: no run_case lines found in $E2E/run-l4.sh" >&2; exit 1; }
eval "$cases"
echo "plan-l4: $(wc -l <"$OUT/cases") cases in $OUT" >&2
