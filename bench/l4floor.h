/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The tables of bench/l4floor.bpf.c and bench/l4floor.c: both sides hash a
 * VIP:port the same way and lay out the same slots.
 */
#ifndef L4FLOOR_H
#define L4FLOOR_H

#include <linux/types.h>

#define FL_PROBES 32
#define FL_INLINE 15

/* The head of both slot kinds: the listener it holds (network order; vip 0: empty). */
struct fl_key {
	__u32 vip;
	__u16 port;
};

/* split: 16 bytes, a range of fl_ep */
struct fl_slot {
	__u32 vip;
	__u16 port;
	__u16 n;
	__u32 first;
	__u32 rr;
};

struct fl_ep {
	__u32 ip;
	__u16 port;
	__u16 pad;
};

/* inline: 128 bytes, the endpoints themselves */
struct fl_wide {
	__u32 vip;
	__u16 port;
	__u8 n;
	__u8 rr;
	struct fl_ep ep[FL_INLINE];
};

/*
 * split64: the split layout at the bundle's row sizes (x2b_lsn_slot 64 bytes,
 * x2b_endpoint 32): the same decision, four times the slot table and the
 * endpoint array, so that the difference to split is the footprint alone.
 */
struct fl_slot64 {
	struct fl_slot s;
	__u8 pad[48];
};

struct fl_ep32 {
	struct fl_ep e;
	__u8 pad[24];
};

/*
 * split32: 32-byte slots and 16-byte endpoints, the row sizes of a compact
 * IPv4 slot (address, port, action, range, position) and an IPv4 endpoint
 * with its connect counter.
 */
struct fl_slot32 {
	struct fl_slot s;
	__u8 pad[16];
};

struct fl_ep16 {
	struct fl_ep e;
	__u8 pad[8];
};

_Static_assert(sizeof(struct fl_slot32) == 32, "32-byte slots");
_Static_assert(sizeof(struct fl_ep16) == 16, "16-byte endpoints");
_Static_assert(sizeof(struct fl_slot) == 16, "16-byte slots");
_Static_assert(sizeof(struct fl_slot64) == 64, "64-byte slots");
_Static_assert(sizeof(struct fl_ep32) == 32, "32-byte endpoints");
_Static_assert(sizeof(struct fl_wide) == 128, "128-byte slots");

/* murmur3's finaliser over VIP and port; the slot is its low bits */
static inline __attribute__((always_inline)) __u32 fl_hash(__u32 vip, __u16 port)
{
	__u32 h = vip ^ ((__u32)port * 0x9e3779b1u);

	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

#endif
