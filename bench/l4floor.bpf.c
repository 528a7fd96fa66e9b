// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor of an L4 connect decision (issue #14): the least a connect4
 * program can do to send a connect for VIP:PORT to one of its endpoints,
 * round robin, in two table layouts. Nothing else: no counters, no record
 * for getpeername, one LB policy, no pass-through filter. bench/l4floor
 * fills the tables from a routes file and pins one of the programs;
 * scripts/bench.sh --only floor measures them beside the compiled bundle.
 *
 * split:  a 16-byte slot per listener (4 per cache line; open addressing,
 *         linear probing) naming a range of 8-byte endpoints in a second
 *         array: two lines per decision, 16 B x table + 8 B x endpoints. Its
 *         round-robin position is an atomic count of the listener's connects.
 * inline: a 128-byte slot per listener holding up to 15 endpoints itself:
 *         one slot (two adjacent lines) per decision.
 * split64: split with the bundle's row sizes (64-byte slots, 32-byte
 *         endpoints): the cost of the footprint alone.
 * split32: split with 32-byte slots and 16-byte endpoints (a compact IPv4
 *         slot and endpoint row that keep the bundle's fields).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "l4floor.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* set by the loader */
	__type(key, __u32);
	__type(value, struct fl_slot);
} fl_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fl_ep);
} fl_ep SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fl_wide);
} fl_wide SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fl_slot64);
} fl_slot64 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fl_ep32);
} fl_ep32 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fl_slot32);
} fl_slot32 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fl_ep16);
} fl_ep16 SEC(".maps");

/* log2 of the slot count, set before load (bench/l4floor.c) */
const volatile __u32 fl_bits = 1;

/* The slot of VIP:port in a table of either kind (slots begin with struct fl_key), or NULL. */
static __always_inline void *fl_find(void *table, __u32 vip, __u16 port)
{
	__u32 mask = (1u << fl_bits) - 1;
	__u32 h = fl_hash(vip, port);

	for (int i = 0; i < FL_PROBES; i++) {
		__u32 k = (h + i) & mask;
		struct fl_key *s = bpf_map_lookup_elem(table, &k);

		if (!s || !s->vip)
			return 0;
		if (s->vip == vip && s->port == port)
			return s;
	}
	return 0;
}

/*
 * The split decision over a slot table and an endpoint array of any row size
 * (each row begins with struct fl_slot / struct fl_ep).
 */
static __always_inline int fl_split(struct bpf_sock_addr *ctx, void *slots, void *eps)
{
	struct fl_slot *s = fl_find(slots, ctx->user_ip4, (__u16)ctx->user_port);
	struct fl_ep *ep;
	__u32 e;

	if (!s || !s->n)
		return 1;
	/* atomic: rr doubles as the listener's exact count of connects (a counter in the
	 * line the decision reads anyway) */
	e = s->first + __sync_fetch_and_add(&s->rr, 1) % s->n;
	ep = bpf_map_lookup_elem(eps, &e);
	if (!ep)
		return 1;
	ctx->user_ip4 = ep->ip;
	ctx->user_port = ep->port;
	return 1;
}

SEC("cgroup/connect4")
int fl_split4(struct bpf_sock_addr *ctx)
{
	return fl_split(ctx, &fl_slot, &fl_ep);
}

SEC("cgroup/connect4")
int fl_split64_4(struct bpf_sock_addr *ctx)
{
	return fl_split(ctx, &fl_slot64, &fl_ep32);
}

SEC("cgroup/connect4")
int fl_split32_4(struct bpf_sock_addr *ctx)
{
	return fl_split(ctx, &fl_slot32, &fl_ep16);
}

SEC("cgroup/connect4")
int fl_inline4(struct bpf_sock_addr *ctx)
{
	struct fl_wide *s = fl_find(&fl_wide, ctx->user_ip4, (__u16)ctx->user_port);
	__u32 e;

	if (!s || !s->n)
		return 1;
	/* masked for the verifier: a 32-bit bound does not carry to the index */
	e = (s->rr++ % s->n) & 0xf;
	if (e >= FL_INLINE)
		return 1;
	ctx->user_ip4 = s->ep[e].ip;
	ctx->user_port = s->ep[e].port;
	return 1;
}

char _license[] SEC("license") = "Dual BSD/GPL";
