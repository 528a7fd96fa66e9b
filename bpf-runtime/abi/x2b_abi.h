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

#define X2B_ABI_VERSION 8

/* Address families as stored in keys and endpoints. */
#define X2B_FAM_INET4 4
#define X2B_FAM_INET6 6

/* Action kinds (struct x2b_action.kind). */
#define X2B_ACT_PASS 0     /* leave the connect untouched */
#define X2B_ACT_CLUSTER 1  /* target = cluster id */
#define X2B_ACT_WEIGHTED 2 /* target = first x2b_wclusters index, count entries */
#define X2B_ACT_HTTP 3     /* target = route table id; L4 fallback in `fallback` */
#define X2B_ACT_REFUSE 4   /* refuse the connect (unknown cluster: Envoy closes it) */
#define X2B_ACT_TLS 5      /* target = TLS chain table id (chosen from the ClientHello); `fallback` without the module */

/* Load-balancing policies (struct x2b_cluster.lb); also the tail-call slot. */
#define X2B_LB_ROUND_ROBIN 0
#define X2B_LB_RANDOM 1
#define X2B_LB_LEAST_REQUEST 2
#define X2B_LB_MAGLEV 3
#define X2B_LB_RING_HASH 4
#define X2B_LB_COUNT 5

/* Cluster flags (struct x2b_cluster.flags). */
#define X2B_CLU_PASSTHROUGH 1 /* ORIGINAL_DST: keep the destination */

/* x2b_lsnf: one bit per IPv4 /16 that a listener row in the maps covers. */

/*
 * x2b_lsnx: exact listener addresses in an open-addressed array laid out by
 * the compiler (x2b_lsn_hash, linear probing): a row sits at most
 * X2B_LSNX_PROBES - 1 slots after its hash; a zeroed slot (family 0) ends a
 * probe sequence. One cache line per slot, no bucket list to walk.
 */
#define X2B_LSNX_PROBES 8
#define X2B_LSN_FILTER_WORDS 2048

#define X2B_MAX_PRIORITIES 4
#define X2B_MAX_WEIGHTED 64   /* weighted clusters per action */
#define X2B_RING_SEARCH_STEPS 24 /* binary search steps: rings up to 2^24 */

/*
 * Global counters (x2b_gstat indexes). X2B_G_SEEN is not written by the
 * programs (ABI 7): every TCP connect they see ends in exactly one of
 * X2B_G_UNMATCHED, an action's x2b_astat.matched or a listener slot's
 * `connects`, so the loader reports their sum and no connect pays for a
 * counter of its own.
 */
#define X2B_G_SEEN 0
#define X2B_G_UNMATCHED 1
#define X2B_G_NO_ENDPOINT 2
#define X2B_G_FAMILY 3
#define X2B_G_REFUSED 4     /* the route refuses (unknown cluster; with the module: Envoy would answer, or close) */
#define X2B_G_PASSTHROUGH 5 /* an ORIGINAL_DST cluster: left to its original destination */
#define X2B_G_COUNT 6

/*
 * Listener + filter-chain match, an LPM trie. The data part is
 * (family, pad, port, addr): prefixlen = 32 + the number of address bits
 * that must match, so a wildcard listener (0.0.0.0:port, no prefix ranges)
 * is prefixlen 32 and an exact listener is 32 + 32 (or 32 + 128).
 */
/* The value of an x2b_lsn (LPM trie) entry is the __u32 action id. */
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
	__u32 fallback; /* X2B_ACT_HTTP, X2B_ACT_TLS: action id used without the module */
};

/* The exact address a listener row matches: words 1-5 of x2b_lsn_key. */
struct x2b_lsn_addr {
	__u8 family; /* 0: an empty slot */
	__u8 pad;
	__u16 port; /* network order */
	__u8 addr[16];
};

/*
 * One x2b_lsnx slot (64 bytes, one cache line): the address, the action id and
 * a copy of its x2b_act row, so the common connect reads one row, not two.
 *
 * `range` lets a service address balance from this line alone: the live
 * endpoint range of the action's cluster (first x2b_ep index << 32 | count)
 * when the cluster is one priority level of round robin without weights, else
 * 0 (x2b_cluv / x2b_clu decide). The compiler writes it into the image and
 * `xds2bpf-loader update` rewrites it with one 64-bit store (the map is
 * mmapable) whenever it switches the cluster's row: a connect sees the old
 * range or the new one, both valid until the update's grace period is over.
 *
 * `connects` is the round-robin position of that fast path and its counter:
 * every connect it redirects adds one (atomically; `stats` adds it to the
 * action's x2b_astat sums). The slow path does not touch it.
 */
struct x2b_lsn_slot {
	struct x2b_lsn_addr key;
	__u32 action;
	struct x2b_action act;
	__u64 range;
	__u64 connects;
};

/* x2b_lsn_slot.range of a cluster without a fast path. */
#define X2B_RANGE_NONE 0

/*
 * x2b_lsn4: the IPv4 rows of x2b_lsnx in half a cache line each (ABI 8), at the
 * same index (the same hash and probe sequence): what an IPv4 connect reads.
 * An IPv4 row's fast path lives here, not in its x2b_lsnx slot (whose range is
 * 0 and whose counter stays 0); a slot that x2b_lsnx gives an IPv6 row holds
 * only family X2B_FAM_INET6, so IPv4 probe sequences step over it. The action's
 * row is read from x2b_act when the fast path does not decide.
 */
struct x2b_lsn4_slot {
	__u8 family; /* 0: an empty slot */
	__u8 pad;
	__u16 port; /* network order */
	__u32 addr; /* network order */
	__u32 action;
	__u32 pad2;
	__u64 range;	/* as x2b_lsn_slot.range */
	__u64 connects; /* as x2b_lsn_slot.connects */
};

/*
 * x2b_ep4: the IPv4 endpoints of x2b_ep in 16 bytes each (ABI 8), at the same
 * index, for the IPv4 fast path: the address, the port and the connects that
 * path sent there (`stats` adds them to x2b_endpoint.connects). Rows of IPv6
 * endpoints are zero.
 */
struct x2b_ep4 {
	__u32 addr; /* network order */
	__u16 port; /* network order */
	__u8 family;
	__u8 pad;
	__u64 connects;
};

/*
 * Connects per action and CPU (x2b_astat, per-CPU): `matched` every run that
 * matched the action's listener row; `redirected` those the action's own
 * cluster took (X2B_ACT_CLUSTER, also as a fallback). A cluster picked per
 * connect (weighted clusters, HTTP routes, TLS chains) is counted in x2b_cstat
 * instead. One row per connect instead of a per-listener and a per-cluster one:
 * each per-CPU row read costs two cache lines at 10k services.
 */
struct x2b_astat {
	__u64 matched;
	__u64 redirected;
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
	__u32 counter; /* round robin: the position, advanced atomically in this row */
	__u32 flags;   /* X2B_CLU_* */
	struct x2b_level levels[X2B_MAX_PRIORITIES];
};

struct x2b_endpoint {
	__u8 family;
	__u8 pad;
	__u16 port; /* network order */
	__u32 weight;
	__u8 addr[16];
	/*
	 * Connects sent to this row (atomic add by the connect programs; images and
	 * in-place updates write 0). Kept in the row the pick reads, so counting
	 * touches no other line.
	 */
	__u64 connects;
};

/* An LB table slot: rr schedule and maglev use ep; rings use hash + ep. */
struct x2b_slot {
	__u32 hash;
	__u32 ep; /* index relative to the level's first endpoint */
};

/* An endpoint address: the key of x2b_active (least request counts per address). */
struct x2b_epkey {
	__u8 family;
	__u8 pad;
	__u16 port; /* network order */
	__u8 addr[16];
};

/*
 * Per-socket state: what a redirected socket dialled. x2b_orig is an array
 * indexed by the socket cookie modulo X2B_ORIG_SLOTS (cookies only grow, so a
 * slot is reused after that many newer cookies); `cookie` says whose record a
 * slot holds (0: being written).
 */
#define X2B_ORIG_SLOTS 65536
struct x2b_sock {
	__u64 cookie;
	__u8 family;
	__u8 flags; /* X2B_SK_* */
	__u16 orig_port; /* network order */
	__u32 endpoint;  /* global x2b_endpoints index */
	__u8 orig_addr[16];
};

#define X2B_SK_REDIRECTED 1

/* Scratch passed between tail-call stages (per-CPU array, one entry). */
struct x2b_scratch {
	__u32 listener;
	__u32 cluster;
	__u32 action;
	__u32 pad;
};

/*
 * HTTP routing (x2b_http.h, generated x2b_routes.h). The request head is the
 * raw HTTP/1.x request line and headers, up to the blank line or truncated;
 * the defer-connect module (or a test harness) fills it.
 */
#define X2B_HEAD_MAX 4096

/* Request head flags (struct x2b_req.flags). */
#define X2B_REQ_TRUNCATED 1 /* the head did not fit: headers may be missing */

struct x2b_req {
	__u32 len;   /* bytes used in head */
	__u32 flags; /* X2B_REQ_* */
	char head[X2B_HEAD_MAX];
};

/* Route table options (struct x2b_htable.flags). */
#define X2B_HT_IGNORE_PORT 1       /* ignore_port_in_host_matching */
#define X2B_HT_VHOST_HEADER 2      /* vhost_header names the host header */
#define X2B_HT_STRIP_DOT 4         /* connection manager strip_trailing_host_dot */
#define X2B_HT_STRIP_ANY_PORT 8    /* strip_any_host_port */
#define X2B_HT_STRIP_PORT 16       /* strip_matching_host_port (strip_port) */
#define X2B_HT_PATH_PARAMS 32      /* ignore_path_parameters_in_path_matching */
#define X2B_HT_DOMAINS 64          /* some domain is not "*" (else: default only) */
#define X2B_HT_NORMALIZE_PATH 128  /* normalize_path: refuse a path it would change */
#define X2B_HT_MERGE_SLASHES 256   /* merge_slashes: refuse a path with "//" */
#define X2B_HT_ESCAPED_SLASHES 512 /* path_with_escaped_slashes_action not KEEP: refuse %2F %5C */
/*
 * Every request gets the same decision (one virtual host taking every host, whose
 * first route matches every request and forwards): a head the kernel cannot use
 * (cut at X2B_HEAD_MAX, a form it does not parse) takes the listener's L4 fallback.
 * Without the flag such a head is refused: the route the kernel cannot see might
 * be one that denies it (fail closed).
 */
#define X2B_HT_UNIFORM 1024

/* One route table (x2b_htab, index = table id of the X2B_ACT_HTTP action). */
struct x2b_htable {
	__u32 flags;
	__u16 strip_port;   /* listener port for X2B_HT_STRIP_PORT */
	__u16 pad;
	__u32 default_vhost; /* global x2b_hvh index of "*", or X2B_HTTP_NONE */
	__u32 pad2;
	__u64 vhost_header; /* name hash (X2B_HT_VHOST_HEADER) */
	__u64 sfx_lens[4];  /* bit L: a "*suffix" domain with a suffix of L bytes */
	__u64 pfx_lens[4];  /* bit L: a "prefix*" domain with a prefix of L bytes */
};

/* Domain kinds in x2b_hdom keys. */
#define X2B_DOM_EXACT 0
#define X2B_DOM_SUFFIX 1
#define X2B_DOM_PREFIX 2

/* x2b_hdom: (table, kind, length, hash of the lowercased text) -> global vhost. */
struct x2b_hdom_key {
	__u32 table;
	__u16 kind;
	__u16 len;
	__u64 hash; /* FNV-1a 64; suffixes hashed from their last byte backwards */
};

/* require_tls of a virtual host (struct x2b_hvhost.tls). */
#define X2B_TLS_NONE 0
#define X2B_TLS_EXTERNAL 1
#define X2B_TLS_ALL 2

struct x2b_hvhost {
	__u32 first_route; /* global x2b_hrt index */
	__u32 nroutes;
	__u32 tls;
	__u32 index;       /* index in the route table, for reports */
};

/* Route actions (struct x2b_hroute.action). */
#define X2B_RA_CLUSTER 0  /* arg = cluster id (X2B_HTTP_NONE: not in the bundle) */
#define X2B_RA_WEIGHTED 1 /* arg = first x2b_hwcl, count entries, total weight */
#define X2B_RA_HEADER 2   /* cluster named by the header `hash` */
#define X2B_RA_LOCAL 3    /* redirect, direct response, non-forwarding: Envoy answers */

struct x2b_hroute {
	__u32 first_cond; /* global x2b_hcond index */
	__u16 ncond;
	__u16 action;
	__u32 arg;
	__u32 count;
	__u32 total;
	__u32 index;      /* index in the virtual host, for reports */
	__u64 hash;       /* X2B_RA_HEADER: header name hash */
};

/* Condition operations (struct x2b_hcond.op). */
#define X2B_C_STR 0      /* the source's value is accepted by DFA `dfa` */
#define X2B_C_PRESENT 1  /* header presence (flag X2B_CF_WANT: present) */
#define X2B_C_RANGE 2    /* header value as int64 in [lo, hi) */
#define X2B_C_ANY 3      /* header with any value (deprecated exact_match "") */
#define X2B_C_FRACTION 4 /* random % hi < lo; dfa = runtime key id */

/* Value sources (struct x2b_hcond.src). */
#define X2B_S_PATH 0      /* path without query and fragment (parameters per table) */
#define X2B_S_FULLPATH 1  /* :path */
#define X2B_S_METHOD 2    /* :method */
#define X2B_S_AUTHORITY 3 /* :authority, after the table's normalisation */
#define X2B_S_SCHEME 4    /* :scheme */
#define X2B_S_HEADER 5    /* header `hash`: each value (X2B_CF_EACH), or all joined with "," */
#define X2B_S_QUERY 6     /* first value of query parameter `hash` */
#define X2B_S_NONE 7      /* no source (X2B_C_FRACTION) */

/* Condition flags. */
#define X2B_CF_INVERT 1
#define X2B_CF_MISSING_EMPTY 2 /* treat_missing_header_as_empty */
#define X2B_CF_WANT 4          /* X2B_C_PRESENT: the header should be present */
#define X2B_CF_EACH 8          /* X2B_S_HEADER: matched line by line (else joined with ",") */

struct x2b_hcond {
	__u8 op;
	__u8 src;
	__u8 flags;
	__u8 pad;
	__u32 dfa;
	__u64 hash; /* header or query parameter name */
	__s64 lo;
	__s64 hi;
};

/* A compiled byte automaton: class map, transitions, start state flags. */
struct x2b_dfa {
	__u32 trans;   /* first x2b_dtr entry: entry = trans + state * nclass + class */
	__u32 cmap;    /* x2b_dcls index of the byte -> class map */
	__u16 nclass;
	__u16 start;   /* the start state's X2B_DS_* flags */
};

/* x2b_dtr entries: next state in the low 16 bits, its flags above; state 0 is dead. */
#define X2B_DS_ACCEPT (1u << 16) /* the text may end here */
#define X2B_DS_SURE (1u << 17)   /* accepted whatever follows */
#define X2B_DS_STATE 0xffffu

struct x2b_dcls {
	__u8 cls[256];
};

/*
 * Path index of a virtual host (x2b_hpix, by global vhost): a trie of the literal
 * prefixes of its routes' path matchers, as an automaton (`dfa`, over lowercased
 * bytes), walked once over the path. The deepest state reached selects row
 * `cands + state` of x2b_hcand: the routes whose path matcher may accept the path
 * (a superset; the routes' own conditions still decide, in order).
 * dfa = X2B_HTTP_NONE: no index, every route is a candidate.
 */
#define X2B_HTTP_CAND_ROUTES 256 /* routes of a virtual host an index covers */

struct x2b_hpindex {
	__u32 dfa;
	__u32 cands; /* first x2b_hcand row */
};

struct x2b_hcand {
	__u64 bits[4]; /* bit i: route first_route + i is a candidate */
};

/* x2b_hwcl: weighted clusters of HTTP routes, cumulative weights in config order. */
struct x2b_hwcluster {
	__u32 cum_weight;
	__u32 cluster; /* X2B_HTTP_NONE: not in the bundle */
};

/* x2b_hcn: cluster names for cluster_header, (hash, length) -> cluster id. */
struct x2b_hcn_key {
	__u64 hash; /* FNV-1a 64 of the name as written */
	__u32 len;
	__u32 pad;
};

/* What x2b_http_route decided (x2b_hres, per CPU; kind X2B_HK_*). */
#define X2B_HK_CLUSTER 0      /* cluster = the cluster id */
#define X2B_HK_NO_VHOST 1     /* Envoy answers 404 */
#define X2B_HK_NO_ROUTE 2     /* Envoy answers 404 */
#define X2B_HK_TLS_REDIRECT 3 /* require_tls: Envoy redirects to https */
#define X2B_HK_LOCAL 4        /* the route's redirect/direct response/non-forwarding */
#define X2B_HK_NO_CLUSTER 5   /* the route names no cluster of the bundle */
#define X2B_HK_ERROR 6        /* the head could not be used (truncated, a form the kernel does not parse): L4 fallback */
#define X2B_HK_BAD_REQUEST 7  /* Envoy's HTTP/1 codec refuses the head (cluster = its status): refused */
#define X2B_HK_COUNT 8        /* x2b_hstat: HTTP decisions per kind */

#define X2B_HTTP_NONE 0xffffffffu

struct x2b_hresult {
	__u32 kind;
	__u32 vhost;   /* index in the route table */
	__u32 route;   /* index in the virtual host */
	__u32 cluster;
};

#endif /* X2B_ABI_H */
