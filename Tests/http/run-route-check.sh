#!/usr/bin/env bash
# route-check over Envoy's router-check cases (shared corpus) and the fixtures,
# with the IR interpreter and with the compiled BPF in the kernel (root).
# Every case passes, except:
#   - TestRoutesFailures fails by design (on its response header checks);
#   - DynamicMetadata tests that give dynamic metadata cannot be decided by the
#     kernel (HTTP filters set metadata; none runs before the kernel decides).
# Usage: Tests/http/run-route-check.sh  (XDS2BPF names the binary; CI=1 makes a
# missing root or driver an error instead of a skip)
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
XDS2BPF="${XDS2BPF:-$ROOT/.build/release/xds2bpf}"
source "$ROOT/scripts/env.sh"
RC="$CORPUS/envoy-router-check"
FIX="$ROOT/Tests/Fixtures/router-check"
fail=0
engines="ir bpf"
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = 1 ]; then echo "route-check: the bpf engine needs root" >&2; exit 1; fi
  echo "route-check: not root, the bpf engine is skipped"
  engines="ir"
fi

# check NAME CONFIG TESTS ENGINE EXPECTED-LAST-LINE EXPECTED-EXIT [REQUIRED-PATTERN WHY-FAILURES-ARE-EXPECTED]
check() {
  local name=$1 config=$2 tests=$3 engine=$4 want=$5 code=$6 pattern=${7:-} why=${8:-}
  local out rc last
  out=$("$XDS2BPF" route-check --config "$config" --tests "$tests" --engine "$engine" 2>&1)
  rc=$?
  last=$(printf '%s\n' "$out" | tail -1)
  if [ "$rc" != "$code" ] || [ "$last" != "$want" ] || { [ -n "$pattern" ] && ! grep -q -- "$pattern" <<<"$out"; }; then
    echo "FAIL $name ($engine): exit $rc, \"$last\"; expected exit $code, \"$want\""
    printf '%s\n' "$out" | head -30 | sed 's/^/    /'
    fail=1
  else
    echo "ok   $name ($engine): $last${why:+ (failures expected: $why)}"
  fi
}

[ -n "$CORPUS" ] || x2b_no_corpus "route-check over Envoy's router-check cases"
for tests in ${CORPUS:+"$RC"/*.golden.proto.json}; do
  name=$(basename "$tests" .golden.proto.json)
  n=$(grep -c '"test_name"' "$tests")
  for engine in $engines; do
    case "$name/$engine" in
      TestRoutesFailures/*)
        check "$name" "$FIX/TestRoutesFailures.yaml" "$tests" "$engine" "0 passed, 1 failed" 1 \
          "actual: NOT \[content-type: text/plain\], test type: response_header_matches" \
          "the case checks response headers it is designed to get wrong" ;;
      DynamicMetadata/bpf)
        check "$name" "$RC/$name.yaml" "$tests" "$engine" "1 passed, 9 failed" 1 \
          "not decidable by the bpf engine: dynamic metadata" \
          "9 tests route on dynamic metadata, which no HTTP filter sets before the kernel decides" ;;
      *)
        check "$name" "$RC/$name.yaml" "$tests" "$engine" "$n passed, 0 failed" 0 ;;
    esac
  done
done
for tests in "$FIX"/*.golden.proto.json; do
  name=$(basename "$tests" .golden.proto.json)
  n=$(grep -c '"test_name"' "$tests")
  for engine in $engines; do
    check "fixture $name" "$FIX/$name.yaml" "$tests" "$engine" "$n passed, 0 failed" 0
  done
done
exit $fail
