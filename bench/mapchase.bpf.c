// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Memory latency as a BPF program sees it (issue #14): dependent lookups along one
 * random cycle through 64-byte array-map values, either in one array (vmalloc'd,
 * 4 KiB pages) or spread over inner arrays small enough to be kmalloc'd (the
 * kernel's direct map): the difference is what TLB misses add. See mapchase.c. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define STEPS 64
#define PER_INNER 500 /* 500 x 64 B + the array header stays under 32 KiB */

struct slot {
	__u32 next;
	__u32 pad[15];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* set by the loader */
	__type(key, __u32);
	__type(value, struct slot);
} big SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PER_INNER);
	__type(key, __u32);
	__type(value, struct slot);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps");

__u32 at_big, at_sharded;

SEC("xdp")
int chase_big(struct xdp_md *ctx)
{
	__u32 i = at_big;

	for (int k = 0; k < STEPS; k++) {
		struct slot *s = bpf_map_lookup_elem(&big, &i);

		if (!s)
			break;
		i = s->next;
	}
	at_big = i;
	return XDP_PASS;
}

SEC("xdp")
int chase_sharded(struct xdp_md *ctx)
{
	__u32 i = at_sharded;

	for (int k = 0; k < STEPS; k++) {
		__u32 o = i / PER_INNER, j = i % PER_INNER;
		void *m = bpf_map_lookup_elem(&outer, &o);
		struct slot *s;

		if (!m)
			break;
		s = bpf_map_lookup_elem(m, &j);
		if (!s)
			break;
		i = s->next;
	}
	at_sharded = i;
	return XDP_PASS;
}

SEC("xdp")
int nothing(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
