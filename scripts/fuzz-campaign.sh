#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# A front-end fuzz campaign that adds up over several invocations.
#
# 10 million executions of the front end's harness take 5-6 hours on two cores (docs/hardening.md),
# longer than a machine may stay up for one run. libFuzzer's fork mode already runs as a series of
# short jobs over one corpus; this script continues that series where the last invocation stopped:
# the same harness (the committed sources it is built from, and the toolchain), the same corpus,
# and a ledger of the executions done so far. A change to any of those sources starts a new
# campaign; any crash, leak or ASan report ends it (the run stops, the input is in crashes/).
#
#   scripts/fuzz-campaign.sh [--target N] [--seconds S]   continue (or start) the campaign for S seconds
#   scripts/fuzz-campaign.sh --status                     the ledger, and whether it still applies
#   scripts/fuzz-campaign.sh --record                     copy the ledger to docs/fuzz-campaign.txt, to commit
#
# Ledger: .build-fuzz/frontend/campaign.txt (key, executions, seconds, invocations, oom/timeout/crash).
# A machine's build folders do not outlive it; the committed copy does: a checkout without a ledger of
# its own continues the committed one when its key is the current key (the corpus then grows again
# from the seeds: the same harness on the same sources, so its executions count towards the same run).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=$ROOT/.build-fuzz/frontend
LEDGER=$OUT/campaign.txt
COMMITTED=$ROOT/docs/fuzz-campaign.txt
TARGET=10000000
RUN_SECONDS=3600
STATUS=0
while [ $# -gt 0 ]; do
	case $1 in
	--target) TARGET=$2; shift ;;
	--seconds) RUN_SECONDS=$2; shift ;;
	--status) STATUS=1 ;;
	--record) STATUS=2 ;;
	*) echo "fuzz-campaign: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

# What the harness is built from: everything the FrontendFuzz product links (all of Sources/ but
# the ADS client and the command line), its seeds and dictionary, the package, the toolchain.
PATHS=(Package.swift mk/fuzz.mk Tests/fuzz/frontend Sources ':(exclude)Sources/XDSClient' ':(exclude)Sources/xds2bpf')
SWIFT=$(command -v swift || echo /opt/swift/usr/bin/swift)
key=$({ git ls-files -s -- "${PATHS[@]}"; "$SWIFT" --version 2>/dev/null; } | sha256sum | cut -c1-16)
dirty=$(git status --porcelain -- "${PATHS[@]}")

field() { [ -f "$LEDGER" ] && sed -n "s/^$1 //p" "$LEDGER" || true; }
if [ ! -f "$LEDGER" ] && [ -f "$COMMITTED" ] && [ "$(sed -n 's/^key //p' "$COMMITTED")" = "$key" ]; then
	mkdir -p "$OUT"
	cp "$COMMITTED" "$LEDGER"
	echo "fuzz-campaign: continuing the committed ledger $COMMITTED ($(field executions) executions)" >&2
fi
if [ $STATUS = 2 ]; then
	[ -f "$LEDGER" ] || { echo "fuzz-campaign: no ledger to record" >&2; exit 2; }
	cp "$LEDGER" "$COMMITTED"
	echo "fuzz-campaign: recorded $(field executions) executions of $(field key) in ${COMMITTED#"$ROOT"/}; commit it"
	exit 0
fi
if [ $STATUS = 1 ]; then
	if [ -f "$LEDGER" ]; then cat "$LEDGER"; else echo "no campaign yet"; fi
	[ "$(field key)" = "$key" ] || echo "(the harness's sources changed since: the next run starts a new campaign, key $key)"
	[ -z "$dirty" ] || echo "(uncommitted changes to the harness's sources: a run now would not count)"
	exit 0
fi
if [ -n "$dirty" ]; then
	echo "fuzz-campaign: uncommitted changes to the front end or the harness; commit them first (the campaign counts for committed sources only)" >&2
	exit 2
fi

if [ "$(field key)" != "$key" ]; then
	[ -f "$LEDGER" ] && echo "fuzz-campaign: the front end changed since the campaign $(field key) ($(field executions) executions): a new one starts" >&2
	mkdir -p "$OUT"
	printf 'key %s\nexecutions 0\nseconds 0\ninvocations 0\noom_timeout_crash 0/0/0\nstarted %s\n' \
		"$key" "$(git rev-parse --short HEAD)" >"$LEDGER"
fi
base=$(field executions)
base_seconds=$(field seconds)
remaining=$((TARGET - base))
if [ $remaining -le 0 ]; then
	echo "fuzz-campaign: done: $base executions (target $TARGET), oom/timeout/crash $(field oom_timeout_crash)"
	exit 0
fi
invocations=$(($(field invocations) + 1))
prior=$(field oom_timeout_crash)
mkdir -p "$OUT/crashes"
crashes_before=$(find "$OUT/crashes" -type f | wc -l)
log=$OUT/campaign-$key-$invocations.log

# Writes the ledger from the run's last progress line (libFuzzer's running total of the
# executions of finished jobs), so that a run ended by a signal still counts what it did.
update() {
	local line n secs oms o t c
	line=$(grep -E '^#[0-9]+: ' "$log" 2>/dev/null | tail -n 1 || true)
	[ -n "$line" ] || return 0
	n=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$line")
	secs=$(sed -nE 's/.* time: ([0-9]+)s.*/\1/p' <<<"$line")
	oms=$(sed -nE 's|.*oom/timeout/crash: ([0-9]+/[0-9]+/[0-9]+).*|\1|p' <<<"$line")
	IFS=/ read -r o t c <<<"${oms:-0/0/0}"
	IFS=/ read -r po pt pc <<<"$prior"
	printf 'key %s\nexecutions %s\nseconds %s\ninvocations %s\noom_timeout_crash %s/%s/%s\nstarted %s\n' \
		"$key" $((base + n)) $((base_seconds + ${secs:-0})) "$invocations" \
		$((po + o)) $((pt + t)) $((pc + c)) "$(field started)" >"$LEDGER.tmp"
	mv "$LEDGER.tmp" "$LEDGER"
}

echo "fuzz-campaign: $key: $base of $TARGET executions done; this run: up to $remaining in ${RUN_SECONDS}s ($log)"
# in a process group of its own: a signal to this script ends the workers too
setsid make --no-print-directory fuzz-frontend FUZZ_FORK="$(nproc)" FUZZ_RUNS=$remaining FUZZ_SECONDS="$RUN_SECONDS" >"$log" 2>&1 &
run=$!
trap 'kill -TERM -- -$run 2>/dev/null; wait $run 2>/dev/null; update; exit 130' INT TERM
while kill -0 $run 2>/dev/null; do
	sleep 20
	update
done
status=0
wait $run || status=$?
update
crashes_after=$(find "$OUT/crashes" -type f | wc -l)
echo "fuzz-campaign: $(field executions) of $TARGET executions, $(field seconds) s over $(field invocations) invocations, oom/timeout/crash $(field oom_timeout_crash)"
if [ "$crashes_after" -gt "$crashes_before" ]; then
	echo "fuzz-campaign: new inputs in $OUT/crashes: replay each (FrontendFuzz -runs=3 INPUT), fix, add it to Tests/fuzz/frontend/regressions" >&2
	exit 1
fi
exit $status
