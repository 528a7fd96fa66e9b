/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Structs and constants shared by the generated BPF programs, the compiler's
 * map-image encoder (Sources/Codegen/Emit/MapImages.swift) and the loader.
 * Every layout is fixed: explicit padding, little-endian host order except
 * fields documented as network order. Changing anything here bumps
 * X2B_ABI_VERSION.
 */
#ifndef X2B_ABI_H
#define X2B_ABI_H

#include <linux/types.h>

#define X2B_ABI_VERSION 1

/* Address families as stored in keys and endpoints. */
#define X2B_FAM_INET4 4
#define X2B_FAM_INET6 6

/* Action kinds (struct x2b_action.kind). */
#define X2B_ACT_PASS 0     /* leave the connect untouched */
#define X2B_ACT_CLUSTER 1  /* target = cluster id */
#define X2B_ACT_WEIGHTED 2 /* target = first x2b_wclusters index, count entries */
#define X2B_ACT_HTTP 3     /* target = route table id; L4 fallback in `fallback` */
#define X2B_ACT_REFUSE 4   /* refuse the connect (unknown cluster: Envoy closes it) */

/* Load-balancing policies (struct x2b_cluster.lb); also the tail-call slot. */
#define X2B_LB_ROUND_ROBIN 0
#define X2B_LB_RANDOM 1
#define X2B_LB_LEAST_REQUEST 2
#define X2B_LB_MAGLEV 3
#define X2B_LB_RING_HASH 4
#define X2B_LB_COUNT 5

/* Cluster flags (struct x2b_cluster.flags). */
#define X2B_CLU_PASSTHROUGH 1 /* ORIGINAL_DST: keep the destination */

#define X2B_MAX_PRIORITIES 4
#define X2B_MAX_WEIGHTED 64   /* weighted clusters per action */
#define X2B_RING_SEARCH_STEPS 24 /* binary search steps: rings up to 2^24 */

/* Global counters (x2b_gstat indexes). */
#define X2B_G_SEEN 0
#define X2B_G_UNMATCHED 1
#define X2B_G_NO_ENDPOINT 2
#define X2B_G_FAMILY 3
#define X2B_G_COUNT 4

/*
 * Listener + filter-chain match, an LPM trie. The data part is
 * (family, pad, port, addr): prefixlen = 32 + the number of address bits
 * that must match, so a wildcard listener (0.0.0.0:port, no prefix ranges)
 * is prefixlen 32 and an exact listener is 32 + 32 (or 32 + 128).
 */
/* The value of an x2b_lsn entry is the __u32 action id. */
struct x2b_lsn_key {
	__u32 prefixlen;
	__u8 family;
	__u8 pad;
	__u16 port; /* network order */
	__u8 addr[16];
};

/* What one (listener, filter chain) does; index = action id. */
struct x2b_action {
	__u32 kind;
	__u32 target;
	__u32 count;
	__u32 total_weight;
	__u32 listener;
	__u32 fallback; /* X2B_ACT_HTTP: action id used without the module */
};

/* One weighted-cluster entry: Envoy's cumulative weights in config order. */
struct x2b_wcluster {
	__u32 cum_weight;
	__u32 cluster;
};

/* One priority level of a cluster: the endpoints usable at that level. */
struct x2b_level {
	__u32 cum_load;    /* cumulative priority load, out of 100 */
	__u32 first;       /* first x2b_endpoints index */
	__u32 count;       /* number of endpoints */
	__u32 table_first; /* first x2b_lbtab index (rr schedule, maglev, ring) */
	__u32 table_len;   /* 0: no table (uniform choice) */
};

struct x2b_cluster {
	__u32 lb;
	__u32 nlevels;
	__u32 counter; /* x2b_rr index for round robin */
	__u32 flags;   /* X2B_CLU_* */
	struct x2b_level levels[X2B_MAX_PRIORITIES];
};

struct x2b_endpoint {
	__u8 family;
	__u8 pad;
	__u16 port; /* network order */
	__u32 weight;
	__u8 addr[16];
};

/* An LB table slot: rr schedule and maglev use ep; rings use hash + ep. */
struct x2b_slot {
	__u32 hash;
	__u32 ep; /* index relative to the level's first endpoint */
};

/* Per-socket state (sk_storage): where the socket was sent and what it dialled. */
struct x2b_sock {
	__u8 family;
	__u8 flags; /* X2B_SK_* */
	__u16 orig_port; /* network order */
	__u32 endpoint;  /* global x2b_endpoints index */
	__u8 orig_addr[16];
};

#define X2B_SK_REDIRECTED 1
#define X2B_SK_COUNTED 2 /* least request: counted in x2b_active */

/* Scratch passed between tail-call stages (per-CPU array, one entry). */
struct x2b_scratch {
	__u32 listener;
	__u32 cluster;
	__u32 action;
	__u32 pad;
};

#endif /* X2B_ABI_H */
