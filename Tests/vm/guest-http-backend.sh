#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Sourced by guest-bench-http.sh and guest-soak-http.sh (not a step of its own).
# http_backend ENDPOINT...: puts each endpoint's address on lo and starts one
# bench/backend --http serving them all (the ports bound on 0.0.0.0); its PID in
# BACKEND_PID. Returns 1, with the backend's log, when it is not ready in 5 s.
http_backend() {
	for ep in "$@"; do ip addr add "${ep%:*}/32" dev lo; done
	# shellcheck disable=SC2046
	/x2b/backend --http --resp-bytes 128 --ready /tmp/backend.ready \
		$(for ep in "$@"; do echo "0.0.0.0:${ep##*:}"; done | sort -u) >/tmp/backend.log 2>&1 &
	BACKEND_PID=$!
	j=0
	while [ ! -s /tmp/backend.ready ] && [ $j -lt 100 ]; do sleep 0.05; j=$((j + 1)); done
	[ -s /tmp/backend.ready ] || { cat /tmp/backend.log; return 1; }
}
