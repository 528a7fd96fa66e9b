#!/usr/bin/env bash
# Regenerate the Swift code of every proto/**/*.proto into Sources/X2BProtos/.
#
#   scripts/gen-protos.sh            # uses $PROTOC_GEN_SWIFT, or builds protoc-gen-swift 1.39.0
#   PROTOC_GEN_SWIFT=/path/to/protoc-gen-swift scripts/gen-protos.sh
#
# Environment:
#   PROTOC            protoc binary (default: protoc on PATH)
#   PROTOC_INCLUDE    directory holding google/protobuf/*.proto (default: /usr/include)
#   PROTOC_GEN_SWIFT  protoc-gen-swift binary; when unset it is built from the swift-protobuf
#                     package at tag $SWIFT_PROTOBUF_VERSION in .build-protoc-gen-swift/
#   OUT_DIR           output directory (default: Sources/X2BProtos; check-protos.sh
#                     points it at a temporary directory)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SWIFT_PROTOBUF_VERSION="1.39.0"
PROTOC="${PROTOC:-protoc}"
PROTOC_INCLUDE="${PROTOC_INCLUDE:-/usr/include}"
OUT_DIR="${OUT_DIR:-$ROOT/Sources/X2BProtos}"

die() { echo "gen-protos: $*" >&2; exit 1; }

command -v "$PROTOC" >/dev/null 2>&1 || die "protoc not found (apt-get install protobuf-compiler)"
[ -f "$PROTOC_INCLUDE/google/protobuf/any.proto" ] ||
    die "google/protobuf/any.proto not under $PROTOC_INCLUDE (apt-get install libprotobuf-dev, or set PROTOC_INCLUDE)"

# Version of a swift-protobuf source tree, from its Version.swift.
checkout_version() {
    local v="$1/Sources/SwiftProtobuf/Version.swift"
    [ -f "$v" ] || return 0
    local major minor revision
    major="$(sed -n 's/.*static let major = \([0-9]*\).*/\1/p' "$v")"
    minor="$(sed -n 's/.*static let minor = \([0-9]*\).*/\1/p' "$v")"
    revision="$(sed -n 's/.*static let revision = \([0-9]*\).*/\1/p' "$v")"
    echo "$major.$minor.$revision"
}

build_plugin() {
    local dir="$ROOT/.build-protoc-gen-swift"
    local src="$dir/swift-protobuf"
    if [ ! -d "$src/.git" ] && [ ! -f "$src/Package.swift" ]; then
        mkdir -p "$dir"
        # Prefer a checkout SwiftPM already made for this package (works offline).
        local co
        for co in "$ROOT"/.build*/checkouts/swift-protobuf; do
            if [ -f "$co/Package.swift" ] && [ "$(checkout_version "$co")" = "$SWIFT_PROTOBUF_VERSION" ]; then
                echo "gen-protos: using swift-protobuf sources from $co" >&2
                cp -R "$co" "$src"
                break
            fi
        done
        if [ ! -f "$src/Package.swift" ]; then
            git clone --quiet --depth 1 --branch "$SWIFT_PROTOBUF_VERSION" \
                https://github.com/apple/swift-protobuf "$src" ||
                die "could not fetch swift-protobuf $SWIFT_PROTOBUF_VERSION; set PROTOC_GEN_SWIFT"
        fi
    fi
    (cd "$src" && swift build -c release --product protoc-gen-swift >&2) ||
        die "building protoc-gen-swift failed"
    PROTOC_GEN_SWIFT="$(cd "$src" && swift build -c release --show-bin-path)/protoc-gen-swift"
}

if [ -z "${PROTOC_GEN_SWIFT:-}" ]; then
    build_plugin
fi
[ -x "$PROTOC_GEN_SWIFT" ] || die "protoc-gen-swift not executable: $PROTOC_GEN_SWIFT"
version="$("$PROTOC_GEN_SWIFT" --version 2>/dev/null || true)"
case "$version" in
    *"$SWIFT_PROTOBUF_VERSION"*) ;;
    *) die "protoc-gen-swift reports '$version', expected $SWIFT_PROTOBUF_VERSION" ;;
esac

mapfile -t PROTOS < <(cd proto && find . -name '*.proto' -type f | sed 's|^\./||' | LC_ALL=C sort)
[ "${#PROTOS[@]}" -gt 0 ] || die "no .proto files under proto/"

mkdir -p "$OUT_DIR"
find "$OUT_DIR" -maxdepth 1 -name '*.pb.swift' -type f -delete

"$PROTOC" \
    --proto_path=proto \
    --proto_path="$PROTOC_INCLUDE" \
    --plugin=protoc-gen-swift="$PROTOC_GEN_SWIFT" \
    --swift_out="$OUT_DIR" \
    --swift_opt=Visibility=Public \
    --swift_opt=FileNaming=PathToUnderscores \
    "${PROTOS[@]}"

echo "gen-protos: ${#PROTOS[@]} protos -> ${OUT_DIR#$ROOT/}" >&2
