#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Guest side of the L4 suite: for each case planned on the host (plan-l4.sh),
# put its endpoints on lo, start identity backends, load the bundle with
# xds2bpf-loader into a test cgroup, probe every destination N times from the
# cgroup and print "X2B-OBS <case> <json>" for check-l4.sh.  No module needed.
L4=/x2b/l4
N=$(cat $L4/n)
CG=/sys/fs/cgroup/x2b-l4
export XDS2BPF_BPFFS=/sys/fs/bpf/xds2bpf XDS2BPF_STATE_DIR=/run/xds2bpf
export LD_LIBRARY_PATH=/x2b/lib
mkdir -p $CG /run/xds2bpf
rc=0
i=0
while IFS='|' read -r name dsts eps; do
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
		/x2b/x2b-vmtest serve --ident --ready /tmp/ready $eps >/tmp/serve.log 2>&1 &
		pid=$!
		j=0
		while [ ! -e /tmp/ready ] && [ $j -lt 100 ]; do sleep 0.05; j=$((j + 1)); done
	fi
	if /x2b/xds2bpf-loader load "$L4/$name/bundle" --cgroup $CG --name "c$i" >/tmp/load.log 2>&1; then
		# shellcheck disable=SC2086
		echo "X2B-OBS $name $(/x2b/x2b-vmtest probe --cgroup $CG --peer "$N" $dsts)"
		/x2b/xds2bpf-loader unload --name "c$i" >/dev/null || rc=1
	else
		echo "X2B-L4-LOAD $name FAIL"
		cat /tmp/load.log
		rc=1
	fi
	[ -n "$pid" ] && { kill "$pid"; wait "$pid" 2>/dev/null; }
	i=$((i + 1))
done <$L4/cases
exit $rc
