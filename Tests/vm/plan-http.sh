#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Host side of the HTTP suite in the VM: compiles each case of http-cases.sh
# and explains each request.  Writes OUT/cases ("name|endpoints"),
# OUT/requests ("name|id|dst|method|authority|path|headers"),
# OUT/<name>/{bundle/,expected.json}.  Prints "http-variant yes|no": whether
# the bundles call the module's kfuncs (the HTTP code generator is in).
#   Tests/vm/plan-http.sh OUT
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$1
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
source "$ROOT/scripts/env.sh"  # CORPUS: used by the sourced/eval-ed case lists
rm -rf "$OUT"
mkdir -p "$OUT"
: >"$OUT/cases"
: >"$OUT/requests"
CASE=''
SNAP=()

flush_case() {
	[ -n "$CASE" ] || return 0
	python3 - "$OUT/$CASE" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
exp, eps = {}, set()
for f in sorted(glob.glob(os.path.join(d, "req", "*.json"))):
    e = json.load(open(f))
    exp[os.path.basename(f)[:-5]] = e
    eps.update(c["endpoint"] for c in e.get("candidates", []))
json.dump(exp, open(os.path.join(d, "expected.json"), "w"), indent=1, sort_keys=True)
open(os.path.join(d, "endpoints"), "w").write(" ".join(sorted(eps)))
PY
	echo "$CASE|$(cat "$OUT/$CASE/endpoints")" >>"$OUT/cases"
}

http_case() {
	flush_case
	CASE=$1
	shift
	SNAP=("$@")
	mkdir -p "$OUT/$CASE/req"
	"$XDS2BPF" compile --quiet --cache-dir none "${SNAP[@]}" -o "$OUT/$CASE/bundle" 2>"$OUT/$CASE/compile.log" || {
		cat "$OUT/$CASE/compile.log" >&2; echo "plan-http: $CASE: compile failed" >&2; exit 1; }
}

http_req() {
	local id=$1 dst=$2 method=$3 authority=$4 path=$5 h args=()
	shift 5
	for h in "$@"; do args+=(--header "$h"); done
	"$XDS2BPF" explain --json --dst "$dst" --method "$method" --authority "$authority" --path "$path" \
		"${args[@]}" "${SNAP[@]}" >"$OUT/$CASE/req/$id.json" 2>"$OUT/$CASE/req/$id.log" || {
		cat "$OUT/$CASE/req/$id.log" >&2; echo "plan-http: $CASE/$id: explain failed" >&2; exit 1; }
	echo "$CASE|$id|$dst|$method|$authority|$path|$*" >>"$OUT/requests"
}

# shellcheck source=http-cases.sh
source "$HERE/http-cases.sh"
flush_case
if grep -qa bpf_x2b_defer "$OUT"/*/bundle/*.bpf.o 2>/dev/null; then
	echo "http-variant yes"
else
	echo "http-variant no"
fi
echo "plan-http: $(wc -l <"$OUT/cases") cases, $(wc -l <"$OUT/requests") requests in $OUT" >&2
