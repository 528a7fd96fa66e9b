#!/usr/bin/env bash
# Check that Sources/Codegen/Generated/ is what scripts/gen-protos.sh produces from proto/.
# Same environment as gen-protos.sh (PROTOC_GEN_SWIFT, PROTOC, PROTOC_INCLUDE).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

OUT_DIR="$TMP/Generated" "$ROOT/scripts/gen-protos.sh"

if ! diff -ru --exclude='*.md' "$ROOT/Sources/Codegen/Generated" "$TMP/Generated" >"$TMP/diff"; then
    head -n 200 "$TMP/diff" >&2
    echo >&2
    echo "check-protos: Sources/Codegen/Generated is out of date with proto/." >&2
    echo "check-protos: run: scripts/gen-protos.sh   (PROTOC_GEN_SWIFT=... to use a prebuilt plugin)" >&2
    exit 1
fi
echo "check-protos: generated Swift is up to date" >&2
