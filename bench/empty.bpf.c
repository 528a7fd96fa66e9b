// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Baseline for the decision cost: a cgroup/connect4 program that does nothing. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("cgroup/connect4")
int bench_empty4(struct bpf_sock_addr *ctx)
{
	return 1;
}

char _license[] SEC("license") = "Dual BSD/GPL";
