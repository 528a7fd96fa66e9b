#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Live-update benchmark (bench/watch.py): `xds2bpf watch` at 10k services, endpoint-only
# and other changes from push to live, memory and idle CPU. Root: a test cgroup and pin
# directory of its own (Tests/e2e/lib.sh, removed on exit). Writes the section between
# the "watch" markers of BENCHMARKS.md (or --out FILE), raw results in .bench/watch.json.
#   scripts/bench-watch.sh [--quick] [--gap SECONDS] [--out FILE]
# --gap: wait that long before each measured push (bench/watch.py: an agent idle since the last one).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/Tests/e2e/lib.sh"
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
OUT=$ROOT/BENCHMARKS.md
ARGS=(--services 10000 --endpoints 10 --changed 100 --repeat 5)
GAP=()
while [ $# -gt 0 ]; do
	case $1 in
	--quick) ARGS=(--services 300 --endpoints 3 --changed 3 --repeat 2); OUT=$ROOT/.bench/quick/watch.md ;;
	--out) OUT=$2; shift ;;
	--gap) GAP=(--gap "$2"); shift ;;
	*) echo "bench-watch: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
if ! why=$(e2e_can_run 2>&1); then echo "SKIP: bench-watch: $why"; exit 0; fi
e2e_netns_begin
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
export XDS2BPF_LOADER=$E2E_LOADER
mkdir -p "$ROOT/.bench" "$(dirname "$OUT")"
"$E2E_PYTHON" "$ROOT/bench/watch.py" --xds2bpf "$XDS2BPF" --cgroup "$E2E_CGROUP" --tmp "$E2E_TMP" "${ARGS[@]}" "${GAP[@]}" \
	--json "$ROOT/.bench/watch.json" --markdown "$E2E_TMP/watch.md"
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
	echo "<!-- watch:begin (scripts/bench-watch.sh; do not edit by hand) -->"
	echo "## Live updates: \`xds2bpf watch\`"
	echo
	echo "Measured by \`make bench-watch\` (scripts/bench-watch.sh, bench/watch.py) at commit $commit, $(nproc) cores."
	echo
	cat "$E2E_TMP/watch.md"
	echo
	echo "Load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end."
	echo "<!-- watch:end -->"
} >"$E2E_TMP/section.md"
if [ -f "$OUT" ] && grep -q '<!-- watch:begin' "$OUT"; then
	"$E2E_PYTHON" - "$OUT" "$E2E_TMP/section.md" <<'PY'
import re, sys
doc, sec = open(sys.argv[1]).read(), open(sys.argv[2]).read()
doc = re.sub(r"<!-- watch:begin.*?<!-- watch:end -->\n", lambda m: sec, doc, flags=re.S)
open(sys.argv[1], "w").write(doc)
PY
else
	{ [ -f "$OUT" ] && echo; cat "$E2E_TMP/section.md"; } >>"$OUT"
fi
echo "bench-watch: wrote $OUT"
