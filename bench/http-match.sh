#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# HTTP route-match benchmark: the kernel's HTTP decision (x2b_http_route: head
# parse, virtual host, route match) for one virtual host of N routes, timed with
# BPF_PROG_TEST_RUN's repeat count against the bare harness in the same object.
# Route tables come from bench/gen-routes.py (mixed prefix, exact, regex and
# header routes; deterministic by seed); each table's router-check tests (a
# request for the first, middle and last route, and a miss) are decided by
# `xds2bpf route-check --engine bpf --repeat R`, so a wrong decision fails the
# bench. Each table is planned twice: with the path index (the compiler's
# default) and without it (`--no-path-index`: every route tested in turn).
# Root (BPF_PROG_TEST_RUN) and bpf-runtime/testrun/x2b-testrun (make testrun).
#
#   bench/http-match.sh [--routes "1 10 200"] [--repeat 20000] [--runs 5] [--out FILE] [--md FILE.md]
#
# Prints (and writes to FILE) one tab-separated row per table size, request and
# strategy (index, scan), each figure the median over --runs driver runs:
#   routes request strategy decision_ns harness_ns prep_ns route_ns ratio
# decision: x2b_http_test (harness + x2b_http_route); harness: x2b_http_base (the
# same program without the decision: the empty-program baseline); prep:
# x2b_http_prep (harness + head parse + virtual host, everything before the route
# match); route_ns = decision - prep (the route match); ratio = decision / harness.
# --md FILE.md: the same figures as the section between <!-- httpmatch:begin -->
# and <!-- httpmatch:end --> of FILE.md (replaced, or appended), with the load average.
# Environment: XDS2BPF (compiler, default .build/release/xds2bpf, else
# .build/debug/xds2bpf), XDS2BPF_TESTRUN, BENCH_SEED (1), BENCH_WORK (.bench/http-match).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUTES="1 10 200"
REPEAT=20000
RUNS=5
OUT=
MD=
while [ $# -gt 0 ]; do
	case $1 in
	--routes) ROUTES=$2; shift ;;
	--repeat) REPEAT=$2; shift ;;
	--runs) RUNS=$2; shift ;;
	--out) OUT=$2; shift ;;
	--md) MD=$2; shift ;;
	-h | --help) sed -n '3,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "http-match: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
if [ -z "${XDS2BPF:-}" ]; then
	XDS2BPF=$ROOT/.build/release/xds2bpf
	[ -x "$XDS2BPF" ] || XDS2BPF=$ROOT/.build/debug/xds2bpf
fi
[ -x "$XDS2BPF" ] || { echo "http-match: no compiler at $XDS2BPF (swift build --product xds2bpf)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "http-match: BPF_PROG_TEST_RUN needs root" >&2; exit 1; }
: "${BENCH_SEED:=1}"
: "${BENCH_WORK:=$ROOT/.bench/http-match}"
: "${XDS2BPF_TESTRUN:=$ROOT/bpf-runtime/testrun/x2b-testrun}"
[ -x "$XDS2BPF_TESTRUN" ] || { echo "http-match: no x2b-testrun at $XDS2BPF_TESTRUN (make testrun)" >&2; exit 1; }
export XDS2BPF_TESTRUN
mkdir -p "$BENCH_WORK"

rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for n in $ROUTES; do
	python3 "$ROOT/bench/gen-routes.py" --routes "$n" --seed "$BENCH_SEED" -o "$BENCH_WORK"
	for run in $(seq "$RUNS"); do
		# the two strategies alternate, so a change of load touches both alike
		for strategy in index scan; do
			flag=()
			[ "$strategy" = scan ] && flag=(--no-path-index)
			out=$("$XDS2BPF" route-check --engine bpf --repeat "$REPEAT" "${flag[@]}" \
				--config "$BENCH_WORK/routes-$n.json" --tests "$BENCH_WORK/routes-$n.tests.json") || {
				printf '%s\n' "$out" >&2
				echo "http-match: route-check failed for $n routes, $strategy (wrong decision or no kernel)" >&2
				exit 1
			}
			printf '%s\n' "$out" | awk -v n="$n" -v s="$strategy" '$1 == "time" { print n, $2, s, $3, $4, $5 }' >>"$rows"
		done
	done
done
# medians per (routes, request, strategy) over the runs; the Markdown section with --md
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
report=$(python3 - "$rows" "$MD" "$LOAD_START" "$LOAD_END" "$REPEAT" "$RUNS" "$BENCH_SEED" "$ROUTES" <<'EOF'
import os, re, statistics, sys
rows, md, load_start, load_end, repeat, runs, seed, sizes = sys.argv[1:]
cells = {}
order = []
for line in open(rows):
    n, name, strategy, dec, base, prep = line.split()
    key = (int(n), name)
    if key not in cells:
        cells[key] = {"index": [], "scan": []}
        order.append(key)
    cells[key][strategy].append((int(dec), int(base), int(prep)))
def med(runs, i):
    return statistics.median(r[i] for r in runs)
print("routes\trequest\tstrategy\tdecision_ns\tharness_ns\tprep_ns\troute_ns\tratio")
table = []
for key in order:
    row = {}
    for strategy in ("index", "scan"):
        dec, base, prep = (med(cells[key][strategy], i) for i in range(3))
        row[strategy] = (dec, base, prep, dec - prep)
        print("%d\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f" % (key[0], key[1], strategy, dec, base, prep, dec - prep, dec / max(base, 1)))
    table.append((key, row))
if md:
    lines = [
        "<!-- httpmatch:begin (bench/http-match.sh --md; do not edit by hand) -->",
        "## HTTP route match (BPF_PROG_TEST_RUN)",
        "",
        "One virtual host of N routes from `bench/gen-routes.py` (mixed prefix, exact, regex and header",
        f"routes, seed {seed}); requests for its first, middle and last route and one no route matches, each",
        "decided by `xds2bpf route-check --engine bpf` (a wrong decision fails the run), with the path",
        "index (the compiler's default) and without it (`--no-path-index`: every route tested in turn, as",
        f"before the index). Times in ns are BPF_PROG_TEST_RUN averages over {repeat} repeats, the least of 3",
        "rounds in which the three programs run in turn on the same packet (x2b-testrun --baselines), median",
        f"of {runs} driver runs: *harness* the test program without the decision (the empty-program",
        "baseline), *prep* the harness with the head parse and the virtual host, *decision* the whole",
        "x2b_http_route in the harness, *route* = decision - prep: the route match.",
        "",
        "| routes | request | harness | prep | decision, scan | route, scan | decision, index | route, index | decision / harness, index |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (n, name), row in table:
        i, s = row["index"], row["scan"]
        lines.append("| %d | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f |" % (n, name, i[1], i[2], s[0], s[3], i[0], i[3], i[0] / max(i[1], 1)))
    lines += [
        "",
        f"Load average {load_start} at the start, {load_end} at the end (2 shared cores). Reproduce:",
        f"`sudo bench/http-match.sh --routes \"{sizes}\" --repeat {repeat} --runs {runs} --md BENCHMARKS.md`",
        "(or `scripts/bench.sh --only httpmatch`).",
        "<!-- httpmatch:end -->",
    ]
    section = "\n".join(lines) + "\n"
    text = open(md).read() if os.path.exists(md) else ""
    pat = re.compile(r"<!-- httpmatch:begin.*?<!-- httpmatch:end -->\n?", re.S)
    if pat.search(text):
        text = pat.sub(lambda _: section, text)
    else:
        text = text + ("\n" if text and not text.endswith("\n\n") else "") + section
    os.makedirs(os.path.dirname(os.path.abspath(md)), exist_ok=True)
    with open(md, "w") as f:
        f.write(text)
EOF
)
printf '%s\n' "$report"
printf 'load average: %s at the start, %s at the end\n' "$LOAD_START" "$LOAD_END"
if [ -n "$OUT" ]; then
	{
		printf '%s\n' "$report"
		printf '# load average %s at the start, %s at the end; repeat %s, %s runs, seed %s\n' \
			"$LOAD_START" "$LOAD_END" "$REPEAT" "$RUNS" "$BENCH_SEED"
	} >"$OUT"
fi
