#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Guest side of the TLS suite (6.12 + module): for each case planned on the
# host (plan-tls.sh), put its endpoints on lo, start an openssl s_server per
# endpoint (its certificate's CN names it), load the bundle with
# xds2bpf-loader, make each connection from the test cgroup and print
# "X2B-TOBS <case> <id> <endpoint>|none" for check-tls.sh.
T=/x2b/tls
CG=/sys/fs/cgroup/x2b-tls
MOD=xds2bpf_defer
export XDS2BPF_BPFFS=/sys/fs/bpf/xds2bpf XDS2BPF_STATE_DIR=/run/xds2bpf OPENSSL_CONF=/dev/null
mkdir -p $CG /run/xds2bpf /tmp/srv
insmod /x2b/$MOD.ko || { echo "X2B-CHECK tls-insmod FAIL"; exit 1; }
rc=0
i=0

# in_cgroup CMD...: runs CMD as a member of the test cgroup
in_cgroup() {
	sh -c 'echo $$ >'"$CG"'/cgroup.procs; exec "$@"' sh "$@"
}

# the endpoint whose server logged a new failed handshake on plain HTTP bytes
errored() {
	for f in /tmp/srv/*.log; do
		n=$(grep -c 'http request' "$f")
		o=$(cat "$f.n" 2>/dev/null || echo 0)
		echo "$n" >"$f.n"
		[ "$n" != "$o" ] && basename "$f" .log
	done
}

while IFS='|' read -r name eps; do
	pids=
	rm -f /tmp/srv/*
	for ep in $eps; do
		h=${ep%:*}; p=${ep##*:}; h=${h#[}; h=${h%]}
		case $h in
		*:*) ip -6 addr add "$h/128" dev lo 2>/dev/null; acc="[$h]:$p" ;;
		*) ip addr add "$h/32" dev lo 2>/dev/null; acc="$h:$p" ;;
		esac
		/x2b/openssl s_server -accept "$acc" -cert "$T/certs/$ep.crt" -key "$T/certs/$ep.key" \
			-www -naccept 1000 >"/tmp/srv/$ep.log" 2>&1 </dev/null &
		pids="$pids $!"
	done
	# s_server prints ACCEPT once it listens (slow under TCG)
	j=0
	for ep in $eps; do
		while ! grep -q ACCEPT "/tmp/srv/$ep.log" 2>/dev/null && [ $j -lt 200 ]; do sleep 0.05; j=$((j + 1)); done
	done
	errored >/dev/null
	if /x2b/xds2bpf-loader load "$T/$name/bundle" --cgroup $CG --name "t$i" >/tmp/load.log 2>&1; then
		grep "^$name|" $T/requests | while IFS='|' read -r _ id dst sni alpn mode; do
			host=${dst%:*}; port=${dst##*:}; host=${host#[}; host=${host%]}
			case $mode in
			s_client | big)
				set -- -connect "$dst"
				if [ "$sni" = - ]; then set -- "$@" -noservername; else set -- "$@" -servername "$sni"; fi
				[ "$alpn" = - ] || set -- "$@" -alpn "$alpn"
				# a 4096-bit finite-field key share (512 bytes): with long ALPN values, a
				# ClientHello of ~1.8 KB, the size post-quantum key shares give
				[ "$mode" = s_client ] || set -- "$@" -groups ffdhe4096
				got=$(in_cgroup timeout 10 /x2b/openssl s_client "$@" </dev/null 2>&1 |
					sed -n 's/^subject=.*x2b-ep \([^ ]*\) end.*/\1/p' | head -1)
				;;
			curl)
				# a whole HTTPS request: the backend's answer (s_server -www) must come back
				got=$(in_cgroup timeout 10 /x2b/curl -sk -v --max-time 8 --resolve "$sni:$port:$host" \
					"https://$sni:$port/" 2>&1 | awk '/subject: CN=x2b-ep/ { ep = $4 } /^< HTTP\/1.0 200 ok/ { ok = 1 } END { if (ok) print ep }')
				;;
			split)
				got=$( (head -c 40 "$T/hello/$sni.bin"; sleep 0.04; tail -c +41 "$T/hello/$sni.bin"; sleep 2) |
					in_cgroup timeout 10 nc "$host" "$port" 2>/dev/null | strings |
					sed -n 's/.*x2b-ep \([^ ]*\) end.*/\1/p' | head -1)
				;;
			plain)
				(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'; sleep 1) | in_cgroup timeout 5 nc "$host" "$port" >/dev/null 2>&1
				sleep 0.5
				got=$(errored | head -1)
				;;
			esac
			echo "X2B-TOBS $name $id ${got:-none}"
		done
		/x2b/xds2bpf-loader unload --name "t$i" >/dev/null || rc=1
	else
		echo "X2B-TLS-LOAD $name FAIL"
		cat /tmp/load.log
		rc=1
	fi
	# shellcheck disable=SC2086
	kill $pids 2>/dev/null
	wait 2>/dev/null
	i=$((i + 1))
done <$T/cases
cat /sys/kernel/debug/$MOD/stats
k=0
while [ "$(cat /sys/module/$MOD/refcnt)" != 0 ] && [ $k -lt 100 ]; do sleep 0.1; k=$((k + 1)); done
rmmod $MOD || { echo "X2B-CHECK tls-rmmod FAIL (refcnt $(cat /sys/module/$MOD/refcnt))"; rc=1; }
exit $rc
