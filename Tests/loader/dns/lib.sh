# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
# A real DNS server for the DNS cluster tests (run-dns.sh, run-dns-tables.sh), sourced
# after Tests/e2e/lib.sh: dnsmasq in the test's network namespace
# answers the names of a hosts file (NXDOMAIN for other *.test names and for names
# without a dot), and the loader runs in that namespace with a private mount namespace
# whose /etc/resolv.conf names it (and whose /etc/hosts is empty), so getaddrinfo asks it.
#   dns_require WHAT               exits (SKIP, or FAIL with CI=1) unless the test can run here
#   dns_begin                      a private netns and cgroup (e2e_netns_begin), a resolver for it
#   dns_set_records "IP NAME"...   the server's records (reloaded if it runs)
#   dns_start                      starts the server (DNS_PID), tracked by the harness
#   dns_loader ARGS...             the loader in the netns with the test's resolver
#   dns_unload_agent NAME          unloads what a stopped `xds2bpf watch` loaded
#   dns_in_resolver CMD...         any command so; "${DNS_RESOLVER[@]}" CMD & in the background
DNSMASQ=${DNSMASQ:-$(command -v dnsmasq || echo /usr/sbin/dnsmasq)}

dns_skip() {
	[ "${CI:-}" = 1 ] && { echo "FAIL: $DNS_TEST cannot run: $1"; exit 1; }
	echo "SKIP: $1"
	exit 0
}

dns_require() {
	local why
	DNS_TEST=$1
	why=$(e2e_can_run 2>&1) || dns_skip "$why"
	[ -x "$DNSMASQ" ] || dns_skip "needs dnsmasq (apt-get install dnsmasq-base; scripts/install-deps.sh)"
	command -v unshare >/dev/null || dns_skip "needs unshare (util-linux)"
}

dns_begin() {
	e2e_netns_begin
	DNS_HOSTS=$E2E_TMP/dns-hosts
	printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$E2E_TMP/resolv.conf"
	: >"$E2E_TMP/hosts"
	# The prefix that runs a command so; exec'd all the way down, so that "${DNS_RESOLVER[@]}" CMD &
	# leaves the command's own PID in $! (a function run in the background would leave a subshell's).
	DNS_RESOLVER=(nsenter --net="/run/netns/$E2E_NETNS" -- unshare -m --propagation private -- sh -c
		'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"'
		sh "$E2E_TMP/resolv.conf" "$E2E_TMP/hosts")
}

dns_set_records() {
	printf '%s\n' "$@" >"$DNS_HOSTS.new"
	mv "$DNS_HOSTS.new" "$DNS_HOSTS"
	[ -n "${DNS_PID:-}" ] && kill -HUP "$DNS_PID"
	sleep 0.2
}

dns_start() {
	[ -e "$DNS_HOSTS" ] || : >"$DNS_HOSTS"
	# nsenter itself (not a function: a subshell's PID would get the signals) execs dnsmasq
	nsenter --net="/run/netns/$E2E_NETNS" -- "$DNSMASQ" --keep-in-foreground --no-resolv --no-hosts \
		--addn-hosts="$DNS_HOSTS" --local=/test/ --domain-needed --listen-address=127.0.0.1 --bind-interfaces --port=53 \
		--pid-file= --user=root --local-ttl=1 --log-facility=- >"$E2E_TMP/dnsmasq.log" 2>&1 &
	DNS_PID=$!
	e2e_track "$DNS_PID"
	for _ in $(seq 50); do
		e2e_in_netns sh -c 'exec 3<>/dev/udp/127.0.0.1/53' 2>/dev/null && break
		sleep 0.1
	done
	sleep 0.3
	kill -0 "$DNS_PID" || {
		cat "$E2E_TMP/dnsmasq.log" >&2
		e2e_fail "dnsmasq did not start"
	}
}

dns_in_resolver() { "${DNS_RESOLVER[@]}" "$@"; }

dns_loader() { dns_in_resolver "$E2E_LOADER" "$@"; }

# dns_unload_agent NAME: unloads a bundle an `xds2bpf watch` that was just stopped had
# loaded; its loader co-process (update-stream) holds the bundle's lock until it has
# seen its input close and ended, a moment later
dns_unload_agent() {
	for _ in $(seq 100); do
		e2e_loader unload --name "$1" >/dev/null 2>"$E2E_TMP/unload.log" && return 0
		grep -q "is locked" "$E2E_TMP/unload.log" || break
		sleep 0.1
	done
	cat "$E2E_TMP/unload.log" >&2
	e2e_fail "cannot unload '$1' after its agent stopped"
}
