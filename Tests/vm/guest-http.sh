#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Guest side of the HTTP suite (6.12 + module): for each case planned on the
# host (plan-http.sh), put its endpoints on lo, start HTTP identity backends,
# load the bundle with xds2bpf-loader (which picks the HTTP variant when the
# module's kfuncs are there), send each request N times from the test cgroup
# and print "X2B-HOBS <case> <request> <json>" for check-http.sh.
H=/x2b/http
N=$(cat $H/n)
CG=/sys/fs/cgroup/x2b-http
MOD=xds2bpf_defer
export XDS2BPF_BPFFS=/sys/fs/bpf/xds2bpf XDS2BPF_STATE_DIR=/run/xds2bpf
mkdir -p $CG /run/xds2bpf
insmod /x2b/$MOD.ko || { echo "X2B-CHECK http-insmod FAIL"; exit 1; }
rc=0
i=0
while IFS='|' read -r name eps; do
	for ep in $eps; do
		h=${ep%:*}; h=${h#[}; h=${h%]}
		case $h in
		*:*) ip -6 addr add "$h/128" dev lo 2>/dev/null ;;
		*) ip addr add "$h/32" dev lo 2>/dev/null ;;
		esac
	done
	pid=
	if [ -n "$eps" ]; then
		rm -f /tmp/ready
		# shellcheck disable=SC2086
		/x2b/x2b-vmtest serve --http-ident --ready /tmp/ready $eps >/tmp/serve.log 2>&1 &
		pid=$!
		j=0
		while [ ! -e /tmp/ready ] && [ $j -lt 100 ]; do sleep 0.05; j=$((j + 1)); done
	fi
	if /x2b/xds2bpf-loader load "$H/$name/bundle" --cgroup $CG --name "h$i" >/tmp/load.log 2>&1; then
		/x2b/xds2bpf-loader status --name "h$i" | sed 's/^/X2B-INFO status: /'
		grep "^$name|" $H/requests | while IFS='|' read -r _ id dst method authority path hdrs; do
			# shellcheck disable=SC2086
			echo "X2B-HOBS $name $id $(/x2b/x2b-vmtest hprobe --cgroup $CG "$N" "$dst" "$method" "$authority" "$path" $hdrs)"
		done
		# HTTP decisions per kind as the loader exports them (check-http.sh sums them)
		/x2b/xds2bpf-loader stats --name "h$i" --format prometheus | grep '^xds2bpf_http_decisions_total' |
			sed "s/^/X2B-HSTAT $name /"
		/x2b/xds2bpf-loader unload --name "h$i" >/dev/null || rc=1
	else
		echo "X2B-HTTP-LOAD $name FAIL"
		cat /tmp/load.log
		rc=1
	fi
	[ -n "$pid" ] && { kill "$pid"; wait "$pid" 2>/dev/null; }
	i=$((i + 1))
done <$H/cases
cat /sys/kernel/debug/$MOD/stats
k=0
while [ "$(cat /sys/module/$MOD/refcnt)" != 0 ] && [ $k -lt 100 ]; do sleep 0.1; k=$((k + 1)); done
rmmod $MOD || { echo "X2B-CHECK http-rmmod FAIL (refcnt $(cat /sys/module/$MOD/refcnt))"; rc=1; }
exit $rc
