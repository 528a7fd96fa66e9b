#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# docs/getting-started.md, step by step: check, explain, compile, load into a private
# netns + cgroup (Tests/e2e/lib.sh, removed on exit), curl the service address.
#   Tests/e2e/run-getting-started.sh     (root; SKIP without root/BTF/cgroup2 unless CI=1)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/lib.sh"
: "${XDS2BPF:=$ROOT/.build/release/xds2bpf}"
SNAP=$ROOT/examples/minimal/snapshot.yaml
grep -q "$(sed -n '/^static_resources:/,$p' "$SNAP" | head -3 | tail -1)" "$ROOT/docs/getting-started.md" ||
	e2e_fail "docs/getting-started.md no longer shows examples/minimal/snapshot.yaml"
out=$("$XDS2BPF" check "$SNAP")
e2e_expect_eq "1 listeners, 0 route tables, 1 clusters; 0 errors, 0 warnings" "$out" "check"
"$XDS2BPF" explain "$SNAP" --dst 10.96.0.1:80 | grep -q '^result: redirect -> 127.0.0.1:8080$' || e2e_fail "explain"
if ! why=$(e2e_can_run 2>&1); then
	[ "${CI:-}" = 1 ] && { echo "FAIL: getting started cannot run: $why"; exit 1; }
	echo "SKIP: getting started, kernel part: $why"; exit 0
fi
e2e_netns_begin
"$XDS2BPF" compile --quiet "$SNAP" -o "$E2E_TMP/bundle"
e2e_load "$E2E_TMP/bundle" >/dev/null
e2e_spawn_in_netns "$E2E_PYTHON" -m http.server 8080 --bind 127.0.0.1 >/dev/null 2>&1
for _ in $(seq 50); do e2e_in_netns "$E2E_PYTHON" -c 'import socket; socket.create_connection(("127.0.0.1", 8080), 1)' 2>/dev/null && break; sleep 0.1; done
got=$(e2e_in_cgroup curl -s -o /dev/null -w '%{http_code} %{remote_ip}:%{remote_port}' http://10.96.0.1/)
e2e_expect_eq "200 10.96.0.1:80" "$got" "curl http://10.96.0.1/ reaches the backend and sees the service address"
"$E2E_LOADER" stats --name "$E2E_NAME" | grep -Eq '^  0 +web +10\.96\.0\.1:80 +1$' || e2e_fail "stats: one connect on listener web"
echo "getting-started: 4 passed, 0 failed"
