/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xds2bpf-loader: loads an xds2bpf bundle (docs/bundle-format.md) with libbpf.
 *
 * Files:
 *   main.c    command table, option parsing, exit codes
 *   bundle.c  manifest.pb and its digest, sha256 of every file, strings, paths,
 *             images, tail-call table (no kernel: also built into the fuzzer)
 *   tar.c     the strict ustar reader for bundle.tar
 *   object.c  bpf_object open/load, manifest <-> object consistency, map
 *             images, prog-array checks, verifier-log summary, verify
 *   pin.c     bpffs and state directories, load / replace / unload
 *   report.c  status, stats (text, JSON, Prometheus)
 *   delta.c   endpoint deltas: decode, validate against the manifest, plan the
 *             rows and ranges; flat JSON objects (no kernel: also fuzzed)
 *   update.c  update: a delta written into the pinned maps in place
 *   dns.c     DNS clusters: host names resolved on the node, rows rewritten in place
 *   lbrows.c  a cluster's rows (levels, schedules) built on the node as the compiler builds them
 */
#ifndef X2B_LOADER_H
#define X2B_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "x2b_abi.h"
#include "xds2bpf/manifest.pb-c.h"

/* Exit codes (also the return value of every command function). */
#define X2B_EXIT_OK 0
#define X2B_EXIT_REJECT 1 /* bundle rejected or kernel refused */
#define X2B_EXIT_USAGE 2
#define X2B_EXIT_INTERNAL 3
#define X2B_EXIT_NO_FIT 4 /* update: cannot be applied in place, a full replace is needed */

#define X2B_FORMAT_VERSION 2 /* 2: Manifest.dns_clusters (bundles without use 1) */

#define X2B_DEFAULT_BPFFS "/sys/fs/bpf/xds2bpf"
#define X2B_DEFAULT_STATE "/run/xds2bpf"

typedef Xds2bpf__Bundle__V1__Manifest x2b_manifest;
typedef Xds2bpf__Bundle__V1__File x2b_mfile;
typedef Xds2bpf__Bundle__V1__Program x2b_mprog;
typedef Xds2bpf__Bundle__V1__Map x2b_mmap;
typedef Xds2bpf__Bundle__V1__TailCall x2b_mtail;
typedef Xds2bpf__Bundle__V1__EndpointDelta x2b_delta;
typedef Xds2bpf__Bundle__V1__ClusterRows x2b_dcluster;
typedef Xds2bpf__Bundle__V1__LevelRows x2b_dlevel;
typedef Xds2bpf__Bundle__V1__DnsCluster x2b_dcluster_dns;
typedef Xds2bpf__Bundle__V1__DnsHost x2b_dhost;

#define X2B_ATTACH(k) XDS2BPF__BUNDLE__V1__ATTACH_KIND__##k
#define X2B_MAPKIND(k) XDS2BPF__BUNDLE__V1__MAP_KIND__##k

/* Global options shared by all commands. */
extern bool x2b_verbose;
extern bool x2b_json;

/* Messages go to stderr, prefixed like bpftool's p_err(). */
void x2b_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void x2b_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void x2b_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Exit code for a failed bpf()/libbpf call: errno-style value, positive or negative. */
int x2b_exit_for_errno(int err);
/* Test hook: true when XDS2BPF_TEST_FAIL names this point (prints an error). */
bool x2b_fail_point(const char *name);

/* One attach kind: manifest enum, kernel attach type, link pin name. */
struct x2b_attach_desc {
	int kind;
	enum bpf_attach_type type;
	const char *pin;   /* links/<pin> */
	const char *label; /* human/JSON name */
};
const struct x2b_attach_desc *x2b_attach_by_kind(int kind);
const struct x2b_attach_desc *x2b_attach_by_pin(const char *pin);
const struct x2b_attach_desc *x2b_attach_by_type(enum bpf_attach_type type);
extern const struct x2b_attach_desc x2b_attach_descs[];
extern const size_t x2b_nattach;

/* bundle.c: everything here runs without the kernel (and under the fuzzer). */

/* Limits on what a bundle may contain (checked before anything is allocated). */
#define X2B_MAX_MANIFEST_SIZE (16ULL << 20)
#define X2B_MAX_FILE_SIZE (512ULL << 20)
#define X2B_MAX_TAR_SIZE (1ULL << 30)
#define X2B_MAX_FILES 4096
#define X2B_MAX_ENTRIES_LIMIT (1U << 26) /* max_entries of any map */
#define X2B_MAX_KEY_SIZE 512U		 /* the BPF stack */
#define X2B_MAX_VALUE_SIZE (1U << 20)
#define X2B_MAX_PROG_ARRAY 4096U /* slots checked one by one */

struct x2b_file {
	const char *path; /* points into the manifest */
	const void *data;
	size_t size;
	bool owned; /* data was malloc'ed (directory bundle); else it points into the archive */
};

struct x2b_tar_member {
	char *name;	  /* relative to the archive's top-level directory */
	const void *data; /* into the archive buffer */
	size_t size;
};

struct x2b_tar {
	struct x2b_tar_member *members; /* regular files only */
	size_t n;
};

/* Flags of x2b_bundle_open_mem: the fuzzer skips the digests to reach the checks behind them. */
#define X2B_NO_MANIFEST_DIGEST (1U << 0)
#define X2B_NO_FILE_DIGESTS (1U << 1)
/* Each archive member in its own exact-size buffer (so that ASan sees a read past a member). */
#define X2B_COPY_MEMBERS (1U << 2)

struct x2b_bundle {
	char *dir; /* the path given: a directory or a .tar */
	int dirfd; /* directory bundles, -1 otherwise */
	void *tar_buf;
	size_t tar_len;
	struct x2b_tar tar;
	bool is_tar;
	unsigned int flags;
	void *raw; /* manifest.pb bytes */
	size_t raw_len;
	x2b_manifest *m;
	struct x2b_file *files;
	size_t nfiles;
};

/* A directory or a ustar archive (xds2bpf compile -o bundle.tar). */
int x2b_bundle_open(const char *path, struct x2b_bundle *b);
/* An archive in memory (borrowed until x2b_bundle_close); `what` names it in messages. */
int x2b_bundle_open_mem(const void *tar, size_t len, const char *what, unsigned int flags,
			struct x2b_bundle *b);
void x2b_bundle_close(struct x2b_bundle *b);
const struct x2b_file *x2b_bundle_file(const struct x2b_bundle *b, const char *path);
/* Reads and decodes a manifest.pb (for the state dir) and checks its strings; no version checks. */
int x2b_manifest_read(const char *path, void **raw, size_t *len, x2b_manifest **m);
/* Reads a regular file (never blocks on a FIFO or device), at most X2B_MAX_FILE_SIZE bytes. */
int x2b_read_file(const char *path, void **data, size_t *len);
int x2b_read_file_at(int dirfd, const char *path, int oflags, unsigned long long max, void **data,
		     size_t *len);
const x2b_mprog *x2b_manifest_prog_for_attach(const x2b_manifest *m, int kind);
/* Every string of the manifest: UTF-8, length, charset of names and paths. Prints each problem. */
int x2b_manifest_check_strings(const x2b_manifest *m);
bool x2b_path_is_safe(const char *p);
bool x2b_utf8_valid(const char *s, size_t len);

/* tar.c */
int x2b_tar_parse(const void *buf, size_t len, const char *what, struct x2b_tar *t);
const struct x2b_tar_member *x2b_tar_find(const struct x2b_tar *t, const char *name);
void x2b_tar_free(struct x2b_tar *t);

/* object.c */
struct x2b_object {
	struct bpf_object *obj;
	char *log_buf;
	size_t log_size;
	const char *variant; /* "http" (defer-connect module present) or "l4" */
};

/*
 * Which object of a bundle to load: the HTTP variant when the bundle has one
 * and the defer-connect module is loaded (its BTF is in /sys/kernel/btf), the
 * L4 object otherwise. XDS2BPF_VARIANT=l4|http forces the choice.
 */
const char *x2b_object_variant(const x2b_manifest *m);

/*
 * Opens the bundle's object, checks it against the manifest, loads it into
 * the kernel, fills every map from its image and checks the prog arrays.
 * Nothing is attached or pinned.
 */
int x2b_object_load(const struct x2b_bundle *b, struct x2b_object *o);
void x2b_object_close(struct x2b_object *o);
/* Opens one object of the bundle without the kernel and checks it against the manifest. */
int x2b_object_check_static(const struct x2b_bundle *b, const char *object);
int x2b_cmd_verify(const char *bundle);
struct bpf_program *x2b_object_prog(const struct x2b_object *o, const char *name);
/* The libbpf print callback (installed by main). */
int x2b_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args);

/* pin.c */
int x2b_cmd_load(const char *bundle, const char *cgroup, const char *name);
int x2b_cmd_replace(const char *bundle, const char *name);
int x2b_cmd_unload(const char *name);
bool x2b_name_valid(const char *name);
const char *x2b_bpffs_base(void);
const char *x2b_state_base(void);
int x2b_path(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The per-name lock (flock on the state directory); the caller closes the fd. */
int x2b_lock_state(const char *state, int *fd_out);
int x2b_write_state_file(const char *state, const char *file, const void *data, size_t len);
/* Waits for every BPF program that started before (an RCU grace period, membarrier). */
void x2b_settle(void);

/* delta.c: everything here runs without the kernel (and under the fuzzer). */

#define X2B_DELTA_FORMAT_VERSION 1
#define X2B_MAX_DELTA_SIZE (256ULL << 20)

/* Decodes an EndpointDelta and checks it against the loaded manifest; prints each problem. */
int x2b_delta_decode(const void *data, size_t len, const x2b_manifest *m, x2b_delta **out);
void x2b_delta_free(x2b_delta *d);

/* A map's index space [0, max): the ranges in use, sorted by first index. */
struct x2b_range {
	uint32_t first;
	uint32_t len;
};

struct x2b_space {
	const char *map; /* for messages */
	uint32_t max;
	struct x2b_range *used;
	size_t n, cap;
	bool unsorted;
};

void x2b_space_init(struct x2b_space *s, const char *map, uint32_t max);
void x2b_space_free(struct x2b_space *s);
/* Marks [first, first+len) used (overlaps allowed); -ERANGE beyond max, -ENOMEM. */
int x2b_space_use(struct x2b_space *s, uint32_t first, uint32_t len);
/* First fit: the lowest free range of len entries, then marked used; -ENOSPC. */
int x2b_space_alloc(struct x2b_space *s, uint32_t len, uint32_t *first);
/* Entries not covered by any used range. */
uint64_t x2b_space_unused(struct x2b_space *s);
/* The largest free range. */
uint32_t x2b_space_largest(struct x2b_space *s);

struct x2b_cluster; /* x2b_abi.h */

/*
 * The plan of an update, without the kernel: `live[i]` is the live row of the
 * cluster with id `ids[i]`, for every cluster of the manifest (n of them).
 * Checks the live rows' ranges against ep->max / tab->max (X2B_EXIT_NO_FIT with
 * a message when they are corrupt), marks them used, then allocates every
 * level of every delta cluster and fills rows[k] (k: index in d->clusters) from
 * the live row (lb, counter, flags) and the delta. X2B_EXIT_NO_FIT when it does
 * not fit; nothing is written anywhere.
 */
struct x2b_update_plan {
	struct x2b_cluster *rows;   /* d->n_clusters new rows */
	uint64_t endpoints, slots;  /* records to write */
	uint64_t ep_free, tab_free; /* unused entries before the update (live rows only) */
};
int x2b_delta_plan(const x2b_delta *d, const uint32_t *ids, const struct x2b_cluster *live,
		   size_t n, struct x2b_space *ep, struct x2b_space *tab,
		   struct x2b_update_plan *p);
void x2b_update_plan_free(struct x2b_update_plan *p);

/*
 * The service addresses that balance from their x2b_lsnx slot (slots.c): the
 * map shared with the programs, and per cluster id the slots that take it.
 */
struct x2b_lsn_slot;
struct x2b_slots {
	struct x2b_lsn_slot *slot;   /* the map's values, mapped */
	size_t len;		     /* bytes mapped */
	struct x2b_lsn4_slot *slot4; /* x2b_lsn4 (ABI 8): the IPv4 rows' ranges, same index */
	size_t len4;
	uint32_t n;	       /* slots */
	uint32_t nclusters;    /* cluster ids indexed */
	uint32_t *first, *idx; /* slots of cluster c: idx[first[c] .. first[c + 1]) */
};
int x2b_slots_open(struct x2b_slots *s, const char *root, uint32_t nclusters);
void x2b_slots_check(struct x2b_slots *s, uint32_t cid, const struct x2b_cluster *live);
void x2b_slots_switched(struct x2b_slots *s, uint32_t cid, const struct x2b_cluster *row,
			const void *eps);
void x2b_slots_close(struct x2b_slots *s);
uint64_t x2b_fast_range(const struct x2b_cluster *c, uint8_t family, const void *eps);
void *x2b_map_values(const char *root, const char *name, size_t size, int prot, __u32 *n,
		     size_t *len, int *err);

/* A flat JSON object: string keys; string, number, true/false/null values (as text). */
struct x2b_kv {
	char *key;
	char *value; /* strings unescaped; other values as written */
	bool is_string;
};
int x2b_json_flat_parse(const char *text, size_t len, struct x2b_kv **kv, size_t *n);
void x2b_json_flat_free(struct x2b_kv *kv, size_t n);

/* update.c */
int x2b_cmd_update(const char *delta, const char *name);
/* The node agent's co-process: framed deltas on stdin, JSON events on stdout. */
int x2b_cmd_update_stream(const char *name);

/* The rows of one delta (base code and live snapshot filled in) in a session of its own (dns.c). */
int x2b_update_rows(const char *name, x2b_delta *d);

/* lbrows.c: a cluster's rows built on the node, as the compiler builds them */
struct x2b_lblocality {
	__u32 priority;
	__u32 weight; /* load_balancing_weight, 0 when unset */
};
struct x2b_lbhost {
	struct x2b_endpoint ep; /* address, port (network order), lb_endpoint weight */
	__u32 locality;		/* index into x2b_lbinput.localities */
	bool routable;		/* HEALTHY, UNKNOWN, DEGRADED */
};
struct x2b_lbinput {
	__u32 lb; /* X2B_LB_* */
	bool locality_weighted;
	__u64 maglev_table_size;		    /* X2B_LB_MAGLEV: a prime */
	__u64 ring_minimum_size, ring_maximum_size; /* X2B_LB_RING_HASH */
	__u32 factor;				    /* overprovisioning factor, percent */
	const struct x2b_lblocality *localities;
	size_t nlocalities;
	const struct x2b_lbhost *hosts; /* config order, each address of a name in order */
	size_t nhosts;
};
struct x2b_lblevel {
	__u32 load;	/* this level's share, percent */
	__u32 cum_load; /* cumulative, the last level 100 */
	struct x2b_endpoint *eps;
	size_t neps;
	struct x2b_slot *table; /* ep relative to the level's first endpoint */
	size_t ntable;
};
struct x2b_lbrows {
	size_t nlevels; /* 0: no routable endpoint */
	struct x2b_lblevel levels[X2B_MAX_PRIORITIES];
	size_t dropped_levels; /* levels with load beyond X2B_MAX_PRIORITIES */
};
/* 0, -EINVAL (a host naming no locality, weight 0), -ENOMEM, -EIO (sha256). */
int x2b_lbrows_build(const struct x2b_lbinput *in, struct x2b_lbrows *out);
void x2b_lbrows_free(struct x2b_lbrows *r);

/* dns.c */
struct x2b_dns;
/* Looks up the names of a bundle's DNS clusters; *out is NULL when it has none. */
int x2b_dns_resolve_bundle(const struct x2b_bundle *b, struct x2b_dns **out);
/*
 * After load or replace (err: how it went; `done`: "loaded" or "replaced"): writes
 * those results into the loaded maps, records them for status; frees s.
 */
int x2b_dns_finish(const char *name, const char *done, int err, struct x2b_dns *s);
void x2b_dns_free(struct x2b_dns *s);
/*
 * update-stream's refresh request: looks up the due DNS clusters again and writes
 * the changed rows through write_rows(ctx, delta); *state persists between calls.
 */
int x2b_dns_stream_refresh(const char *name, struct x2b_dns **state,
			   int (*write_rows)(void *, x2b_delta *), void *ctx, unsigned *resolved);
/* refresh --name NAME [--cluster CLUSTER] [--watch] */
int x2b_cmd_refresh(const char *name, const char *cluster, bool watch);

/* report.c */
int x2b_cmd_status(const char *name);
enum x2b_stats_format {
	X2B_STATS_TEXT,
	X2B_STATS_JSON,
	X2B_STATS_PROMETHEUS, /* Prometheus' text exposition format */
};
/* textfile: a directory; the Prometheus text goes to DIR/xds2bpf_NAME.prom (atomic rename). */
int x2b_cmd_stats(const char *name, enum x2b_stats_format format, const char *textfile);
void x2b_json_str(FILE *f, const char *s);

#endif /* X2B_LOADER_H */
