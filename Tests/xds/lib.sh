# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Shared by the xDS client tests: start/stop the test ADS server (ads_server.py) by PID,
# talk to its control channel. Sourced after scripts/env.sh.
#   xds_start NAME SNAPSHOT... [SERVER-OPTIONS]   sets XDS_PORT, XDS_CTL, XDS_LOG, XDS_PID
#   xds_ctl COMMAND...                            one control command, prints the reply
#   xds_stop                                      ends the server (its PID only)
#   xds_track PID                                 a background client, ended by PID on exit
XDS_TMP=$(mktemp -d /tmp/xds2bpf-xds.XXXXXX)
XDS_PID=""
XDS_CHILDREN=()
# A client started in the background (`watch ... &`): ended by PID on exit, also when a check
# between its start and its own kill fails.
xds_track() { XDS_CHILDREN+=("$1"); }
xds_cleanup() {
	local pid
	for pid in "${XDS_CHILDREN[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
	[ -n "$XDS_PID" ] && kill "$XDS_PID" 2>/dev/null && wait "$XDS_PID" 2>/dev/null
	rm -rf "$XDS_TMP"
}
trap 'xds_cleanup' EXIT
xds_fail() {
	echo "FAIL: $*" >&2
	[ -n "${XDS_LOG:-}" ] && [ -f "$XDS_LOG" ] && tail -5 "$XDS_LOG" >&2
	exit 1
}
xds_start() {
	local name=$1; shift
	XDS_LOG=$XDS_TMP/$name.jsonl
	timeout 900 "$ROOT/.venv/bin/python3" "$ROOT/Tests/xds/ads_server.py" "$@" --log "$XDS_LOG" \
		>"$XDS_TMP/$name.ready" 2>"$XDS_TMP/$name.err" &
	XDS_PID=$!
	for _ in $(seq 150); do
		[ -s "$XDS_TMP/$name.ready" ] && break
		sleep 0.2
	done
	[ -s "$XDS_TMP/$name.ready" ] || xds_fail "ADS server $name did not start: $(cat "$XDS_TMP/$name.err")"
	XDS_PORT=$("$ROOT/.venv/bin/python3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$XDS_TMP/$name.ready")
	XDS_CTL=$("$ROOT/.venv/bin/python3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"].rsplit(":",1)[1])' "$XDS_TMP/$name.ready")
}
xds_ctl() {
	local reply
	exec 3<>"/dev/tcp/127.0.0.1/$XDS_CTL"
	echo "$*" >&3
	IFS= read -r -t 30 reply <&3 || reply="err no reply"
	exec 3<&- 3>&-
	echo "$reply"
	case $reply in ok*) return 0 ;; *) return 1 ;; esac
}
xds_stop() {
	[ -n "$XDS_PID" ] || return 0
	kill "$XDS_PID" 2>/dev/null
	wait "$XDS_PID" 2>/dev/null || true
	XDS_PID=""
}
