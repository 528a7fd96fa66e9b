# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# End-to-end test harness: a private network namespace, a test cgroup, unique
# bpffs pins and state, loopback backends; everything is removed on exit, also
# on failure or interrupt. Source it from a bash test script run as root:
#
#   source Tests/e2e/lib.sh
#   e2e_netns_begin                         # netns + cgroup + pin dir, trap
#   e2e_backend 127.0.0.1 18080 backend-a   # loopback server in the netns
#   e2e_load BUNDLE                         # xds2bpf-loader load ... --cgroup $E2E_CGROUP
#   got=$(e2e_connect 10.96.0.1:80)         # client in the cgroup + netns
#   e2e_expect_eq backend-a "$got" "service reaches backend a"
#
# Variables set by e2e_netns_begin:
#   E2E_ID      unique id (xds2bpf-e2e-<pid>), also the netns name
#   E2E_NETNS   network namespace (ip netns), lo up, nothing else
#   E2E_CGROUP  cgroup v2 directory for clients
#   E2E_TMP     scratch directory (removed on exit)
#   E2E_NAME    default bundle name for e2e_load
#   XDS2BPF_BPFFS, XDS2BPF_STATE_DIR (exported: the loader uses them)
# Overridable: E2E_LOADER (loader binary), E2E_PYTHON, E2E_CGROUP_ROOT.
#
# Processes started through the harness are tracked by PID and killed on exit;
# nothing is ever killed by name. A test's own cleanup goes in E2E_CLEANUP_HOOKS
# (commands run first by e2e_cleanup).

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_ROOT=$(cd "$E2E_DIR/../.." && pwd)
# shellcheck source=../../scripts/env.sh
source "$E2E_ROOT/scripts/env.sh"
: "${E2E_LOADER:=$E2E_ROOT/bpf-runtime/loader/xds2bpf-loader}"
# the interpreter itself, not a wrapper (pyenv shims fork): $! must be the python process
: "${E2E_PYTHON:=$(python3 -c 'import sys; print(sys.executable)')}"
: "${E2E_CGROUP_ROOT:=/sys/fs/cgroup/unified}"
E2E_PIDS=()
E2E_CLEANUP_HOOKS=()
E2E_ACTIVE=0

e2e_log() { printf '[e2e %s] %s\n' "$(date +%T)" "$*" >&2; }
e2e_fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}
e2e_expect_eq() { # EXPECTED ACTUAL WHAT
	[ "$1" = "$2" ] || e2e_fail "$3: expected '$1', got '$2'"
	e2e_log "ok: $3"
}

# Checks the prerequisites; prints why and returns 1 when the tests cannot run here.
e2e_can_run() {
	if [ "$(id -u)" != 0 ]; then
		echo "needs root" >&2
		return 1
	fi
	if [ ! -f /sys/kernel/btf/vmlinux ]; then
		echo "needs a kernel with BTF (/sys/kernel/btf/vmlinux)" >&2
		return 1
	fi
	if [ "$(stat -f -c %T "$E2E_CGROUP_ROOT" 2>/dev/null)" != cgroup2fs ]; then
		echo "needs cgroup v2 at $E2E_CGROUP_ROOT (set E2E_CGROUP_ROOT)" >&2
		return 1
	fi
	local t
	for t in ip nsenter bpftool "$E2E_PYTHON"; do
		command -v "$t" >/dev/null || {
			echo "needs $t" >&2
			return 1
		}
	done
	[ -x "$E2E_LOADER" ] || {
		echo "needs the loader at $E2E_LOADER (make -C bpf-runtime/loader)" >&2
		return 1
	}
}

e2e_netns_begin() {
	[ "$E2E_ACTIVE" = 0 ] || e2e_fail "e2e_netns_begin called twice"
	E2E_ID="xds2bpf-e2e-$$"
	E2E_NETNS=$E2E_ID
	E2E_CGROUP=$E2E_CGROUP_ROOT/$E2E_ID
	E2E_NAME=$E2E_ID
	E2E_TMP=$(mktemp -d "/tmp/$E2E_ID.XXXXXX")
	export XDS2BPF_BPFFS=/sys/fs/bpf/$E2E_ID
	export XDS2BPF_STATE_DIR=$E2E_TMP/state
	E2E_ACTIVE=1
	trap e2e_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	ip netns add "$E2E_NETNS" || e2e_fail "cannot create netns $E2E_NETNS"
	ip -n "$E2E_NETNS" link set lo up || e2e_fail "cannot bring lo up in $E2E_NETNS"
	mkdir "$E2E_CGROUP" || e2e_fail "cannot create cgroup $E2E_CGROUP"
	e2e_log "netns $E2E_NETNS, cgroup $E2E_CGROUP, pins $XDS2BPF_BPFFS, tmp $E2E_TMP"
}

# Runs a command inside the test netns (not in the test cgroup).
e2e_in_netns() {
	nsenter --net="/run/netns/$E2E_NETNS" -- "$@"
}

# Runs a command inside the test netns and the test cgroup. The process joins
# the cgroup before exec, so every socket it creates belongs to the cgroup.
# (nsenter rather than 'ip netns exec': the latter remounts /sys, hiding the cgroup tree.)
e2e_in_cgroup() {
	nsenter --net="/run/netns/$E2E_NETNS" -- \
		sh -c 'echo $$ > "$1" && shift && exec "$@"' sh "$E2E_CGROUP/cgroup.procs" "$@"
}

# Tracks a background process started by the caller: e2e_track $!
e2e_track() { E2E_PIDS+=("$1"); }

# e2e_spawn_in_netns CMD...: CMD in the background in the test netns, tracked (killed on exit).
# nsenter execs CMD in its own process, so the tracked pid is CMD's: `e2e_in_netns CMD &` would
# track a subshell, and killing it would leave CMD running after the netns is gone.
e2e_spawn_in_netns() {
	nsenter --net="/run/netns/$E2E_NETNS" -- "$@" &
	e2e_track $!
}

# e2e_backend IP PORT IDENT: TCP server on loopback in the netns, replies IDENT and closes.
e2e_backend() {
	local ip=$1 port=$2 ident=$3 ready pid i
	ready=$E2E_TMP/backend.$ip.$port.ready
	rm -f "$ready"
	e2e_in_netns "$E2E_PYTHON" "$E2E_DIR/backend.py" "$ip" "$port" "$ident" --ready "$ready" \
		>"$E2E_TMP/backend.$ip.$port.log" 2>&1 &
	pid=$!
	e2e_track "$pid"
	for i in $(seq 100); do
		[ -s "$ready" ] && {
			# the server's own pid too, in case python3 was a wrapper that forked
			read -r _ _ _ spid <"$ready"
			[ -n "$spid" ] && [ "$spid" != "$pid" ] && e2e_track "$spid"
			e2e_log "backend $ident on $ip:$port (pid $pid)"
			return 0
		}
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	cat "$E2E_TMP/backend.$ip.$port.log" >&2
	e2e_fail "backend $ident on $ip:$port did not start"
}

# e2e_connect DST: one connection from the cgroup + netns; prints the identity or "error: ...".
e2e_connect() {
	e2e_in_cgroup "$E2E_PYTHON" "$E2E_DIR/client.py" "$@"
}

e2e_loader() { "$E2E_LOADER" "$@"; }

# e2e_load BUNDLE [NAME]: loads a bundle into the test cgroup.
e2e_load() {
	"$E2E_LOADER" load "$1" --cgroup "$E2E_CGROUP" --name "${2:-$E2E_NAME}"
}

e2e_cleanup() {
	local rc=$? pid hook n i
	[ "$E2E_ACTIVE" = 1 ] || return "$rc"
	E2E_ACTIVE=0
	trap - EXIT INT TERM
	set +e
	for hook in "${E2E_CLEANUP_HOOKS[@]}"; do
		eval "$hook"
	done
	for pid in "${E2E_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${E2E_PIDS[@]}"; do
		for i in $(seq 40); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	E2E_PIDS=()
	# bundles still loaded under our state dir, then any pin left under our pin dir
	if [ -d "$XDS2BPF_STATE_DIR" ]; then
		for n in "$XDS2BPF_STATE_DIR"/*/; do
			[ -d "$n" ] && "$E2E_LOADER" unload --name "$(basename "$n")" >/dev/null 2>&1
		done
	fi
	if [ -d "$XDS2BPF_BPFFS" ]; then
		rm -rf "$XDS2BPF_BPFFS"
	fi
	if [ -d "$E2E_CGROUP" ]; then
		# only processes this test put there can be in it
		if [ -n "$(cat "$E2E_CGROUP/cgroup.procs" 2>/dev/null)" ]; then
			echo 1 >"$E2E_CGROUP/cgroup.kill" 2>/dev/null
		fi
		for i in $(seq 40); do
			rmdir "$E2E_CGROUP" 2>/dev/null && break
			sleep 0.05
		done
		[ -d "$E2E_CGROUP" ] && echo "e2e: could not remove $E2E_CGROUP" >&2
	fi
	ip netns del "$E2E_NETNS" 2>/dev/null
	rm -rf "$E2E_TMP"
	e2e_log "cleaned up $E2E_ID"
	return "$rc"
}
