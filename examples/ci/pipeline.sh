#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# A CI pipeline for xds2bpf bundles (docs/deploy.md): from a control plane's snapshot to a
# reviewed, reproducible bundle ready to publish. Needs no root and no BPF-capable kernel
# (except --verify); `make test` runs it on examples/bookinfo (Tests/e2e/run-ci-example.sh).
#
#   examples/ci/pipeline.sh -o OUT [--route-check NAME=TESTS]... [--base BUNDLE] [--verify]
#                           [--previous SNAPSHOT [--fail-on-change]] [--unsupported error|warn] SNAPSHOT...
#
# Steps (each stops the pipeline with its exit code on failure):
#   1. check         xds2bpf check: parse, link, validate, lower; diagnostics in OUT/diagnostics.json
#   2. route-check   for every --route-check NAME=TESTS: the RouteConfiguration NAME, taken from the
#                    snapshot (JSON or YAML), against Envoy router-check tests (the IR interpreter)
#   2b. diff         with --previous (the snapshot published before): xds2bpf diff, what routes
#                    differently (OUT/routing-diff.txt for review, OUT/routing-diff.json); with
#                    --fail-on-change a routing change stops the pipeline (exit 1)
#   3. compile       OUT/bundle.tar; with --base (the bundle published before): OUT/delta.pb as
#                    well when only endpoints changed (nodes apply it in place)
#   4. reproducible  compile again without the object cache (clang runs); the archives must be
#                    byte-identical
#   5. inspect       OUT/inspect.json (programs, maps, listeners, clusters)
#   6. verify        with --verify (root): xds2bpf-loader verify, the kernel's verifier on this kernel
#   7. publish       OUT/SHA256SUMS; then $PUBLISH_CMD OUT if set (upload to your artifact store)
#
# Environment: XDS2BPF (the compiler; default: xds2bpf on PATH), XDS2BPF_LOADER (for --verify),
# PUBLISH_CMD. Exit codes: those of the failing step (1 rejected, 2 usage, 3 internal), 4 the
# bundle is not reproducible.
set -euo pipefail

XDS2BPF=${XDS2BPF:-xds2bpf}
LOADER=${XDS2BPF_LOADER:-xds2bpf-loader}
out="" base="" verify=0 unsupported=default fail_on_change=0
checks=() snapshots=() previous=()

usage() {
	sed -n 's/^#   examples/examples/p; s/^#                           \[/                            [/p' "$0" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	-o | --output) out=${2:?}; shift 2 ;;
	--route-check) checks+=("${2:?}"); shift 2 ;;
	--base) base=${2:?}; shift 2 ;;
	--previous) previous+=("${2:?}"); shift 2 ;;
	--fail-on-change) fail_on_change=1; shift ;;
	--verify) verify=1; shift ;;
	--unsupported) unsupported=${2:?}; shift 2 ;;
	-h | --help) usage ;;
	-*) echo "pipeline: unknown option $1" >&2; usage ;;
	*) snapshots+=("$1"); shift ;;
	esac
done
[ -n "$out" ] && [ ${#snapshots[@]} -gt 0 ] || usage

step() { printf '\n== %s\n' "$*" >&2; }
run_step() { # run_step CMD...: runs it, exits with its code on failure
	local rc=0
	"$@" || rc=$?
	[ "$rc" = 0 ] || { echo "pipeline: failed (exit $rc): $*" >&2; exit "$rc"; }
}

rm -rf "$out"
mkdir -p "$out"

step "1. check"
rc=0
"$XDS2BPF" check "${snapshots[@]}" --unsupported "$unsupported" --diagnostics json >"$out/diagnostics.json" || rc=$?
"$XDS2BPF" check "${snapshots[@]}" --unsupported "$unsupported" >&2 || true
[ "$rc" = 0 ] || { echo "pipeline: the snapshot is rejected (exit $rc); see $out/diagnostics.json" >&2; exit "$rc"; }

step "2. route-check"
mkdir -p "$out/routes"
for c in ${checks[@]+"${checks[@]}"}; do
	name=${c%%=*} tests=${c#*=}
	[ "$name" != "$c" ] || { echo "pipeline: --route-check wants NAME=TESTS, not '$c'" >&2; exit 2; }
	# The RouteConfiguration named NAME wherever the snapshot has it (a config dump, a
	# DiscoveryResponse, static_resources...): route-check reads a bare RouteConfiguration.
	python3 - "$name" "$out/routes/$name.json" "${snapshots[@]}" <<-'EOF' || exit 1
		import json, sys
		name, dst, files = sys.argv[1], sys.argv[2], sys.argv[3:]

		def load(path):
		    text = open(path, encoding="utf-8").read()
		    try:
		        return json.loads(text)
		    except ValueError:
		        import yaml  # the project's .venv has PyYAML
		        return list(yaml.safe_load_all(text))

		def find(o):
		    if isinstance(o, dict):
		        if o.get("name") == name and "virtual_hosts" in o:
		            return o
		        o = list(o.values())
		    if isinstance(o, list):
		        for v in o:
		            r = find(v)
		            if r is not None:
		                return r
		    return None

		for f in files:
		    try:
		        rc = find(load(f))
		    except (ValueError, UnicodeDecodeError):
		        continue  # binary protobuf: name the route configuration in a JSON/YAML file
		    if rc is not None:
		        rc.pop("@type", None)
		        json.dump(rc, open(dst, "w"), indent=1)
		        sys.exit(0)
		sys.exit(f"pipeline: no RouteConfiguration named {name!r} in {' '.join(files)} (JSON or YAML)")
	EOF
	run_step "$XDS2BPF" route-check --config "$out/routes/$name.json" --tests "$tests"
done

if [ ${#previous[@]} -gt 0 ]; then
	step "2b. diff (routing since the previous snapshot)"
	run_step "$XDS2BPF" diff "${previous[@]}" --new "${snapshots[@]}" --unsupported "$unsupported" --json \
		>"$out/routing-diff.json"
	run_step "$XDS2BPF" diff "${previous[@]}" --new "${snapshots[@]}" --unsupported "$unsupported" \
		>"$out/routing-diff.txt"
	cat "$out/routing-diff.txt" >&2
	if [ "$fail_on_change" = 1 ] &&
		python3 -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["changed"] else 1)' "$out/routing-diff.json"; then
		echo "pipeline: routing changed since the previous snapshot (--fail-on-change); see $out/routing-diff.txt" >&2
		exit 1
	fi
fi

step "3. compile"
delta_args=()
[ -z "$base" ] || delta_args=(--base "$base" --delta "$out/delta.pb")
run_step "$XDS2BPF" compile "${snapshots[@]}" --unsupported "$unsupported" -o "$out/bundle.tar" \
	${delta_args[@]+"${delta_args[@]}"}
if [ -n "$base" ] && [ ! -e "$out/delta.pb" ]; then
	echo "pipeline: more than endpoints changed since $base: nodes replace the bundle" >&2
fi

step "4. reproducible"
again=$(mktemp -d)
trap 'rm -rf "$again"' EXIT
run_step "$XDS2BPF" compile "${snapshots[@]}" --unsupported "$unsupported" -o "$again/bundle.tar" \
	--cache-dir none --quiet
if ! cmp -s "$out/bundle.tar" "$again/bundle.tar"; then
	echo "pipeline: two compiles of the same snapshot differ: the bundle is not reproducible" >&2
	exit 4
fi
echo "bundle.tar is byte-identical when compiled again without the object cache" >&2

step "5. inspect"
run_step "$XDS2BPF" inspect "$out/bundle.tar" --json >"$out/inspect.json"

if [ "$verify" = 1 ]; then
	step "6. verify (the kernel's verifier, nothing attached)"
	run_step "$LOADER" verify "$out/bundle.tar"
fi

step "7. publish"
(cd "$out" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
cat "$out/SHA256SUMS" >&2
if [ -n "${PUBLISH_CMD:-}" ]; then
	run_step $PUBLISH_CMD "$out"
else
	echo "pipeline: $out is ready (set PUBLISH_CMD to upload it)" >&2
fi
