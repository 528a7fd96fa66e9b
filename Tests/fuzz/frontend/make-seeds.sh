#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Writes the front-end fuzzer's seed inputs into OUT: every file of the shared xDS
# corpus ($XDS2BPF_CORPUS, else ../shared/corpus beside the checkout, when there is
# one; it is not committed here), Tests/Fixtures (hostile inputs included) and
# examples/, each prefixed with the format byte 0 (auto-detect; see
# Sources/FrontendFuzz/FrontendFuzz.swift). Usage: make-seeds.sh OUT
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=${1:?usage: make-seeds.sh OUT}
CORPUS=${XDS2BPF_CORPUS:-$ROOT/../shared/corpus}
rm -rf "$OUT" && mkdir -p "$OUT"
dirs=("$ROOT/Tests/Fixtures" "$ROOT/examples")
if [ -d "$CORPUS" ]; then dirs+=("$CORPUS"); else echo "make-seeds: no shared corpus at $CORPUS (seeds from the repository only)" >&2; fi
n=0
while IFS= read -r -d '' f; do
	case "$f" in *.md|*.py|*.sh|*/LICENSE*|*/NOTICE*) continue ;; esac
	[ "$(stat -c %s "$f")" -le 1048576 ] || continue
	case "$f" in "$CORPUS"/*) rel=corpus/${f#"$CORPUS"/} ;; *) rel=${f#"$ROOT"/} ;; esac
	name=$(printf '%s' "$rel" | tr -c 'A-Za-z0-9._-' '_')
	{ printf '\0'; cat "$f"; } > "$OUT/$name"
	n=$((n + 1))
done < <(find "${dirs[@]}" -type f -print0 | sort -z)
echo "make-seeds: $n seeds in $OUT"
