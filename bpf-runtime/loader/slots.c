// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * slots: the fast path of service addresses kept in step with in-place updates.
 *
 * An x2b_lsnx slot whose action always takes one cluster carries that cluster's
 * live endpoint range (x2b_lsn_slot.range; for an IPv4 row the range is in its
 * x2b_lsn4 slot, ABI 8) when the cluster is one priority level of round robin
 * without weights: the connect program then balances from the slot alone.
 * Every switch of a cluster's row (update.c) rewrites the ranges of its slots
 * with one 64-bit store each, through a shared mapping of the map
 * (BPF_F_MMAPABLE): a map update copies the whole value, which neither
 * promises a single store for the range nor keeps the slot's counter.
 *
 * The invariant: a slot's range is 0 or its cluster's live level-0 range. The
 * old range stays valid until the update's grace period is over, and the range
 * is rewritten before it (right after each switch), so a connect that read the
 * old range is done before the old endpoints can be reused. A session that
 * opens (x2b_slots_open) clears every range that breaks the invariant, e.g.
 * left by an update that died between a switch and its store.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "x2b_abi.h"
#include "loader.h"

/*
 * The range a slot of family `family` balances from when its cluster's row is
 * `c` and the level's endpoint records are `eps` (NULL: not known here, only
 * an unchanged range is kept): MapImages.fastRange's rule.
 */
uint64_t x2b_fast_range(const struct x2b_cluster *c, uint8_t family, const void *eps)
{
	/* packed records, perhaps not aligned: only their family byte is read */
	const unsigned char *rec = eps;
	const struct x2b_level *lv = &c->levels[0];

	if (c->lb != X2B_LB_ROUND_ROBIN || c->nlevels != 1 || (c->flags & X2B_CLU_PASSTHROUGH) ||
	    lv->table_len || !lv->count)
		return X2B_RANGE_NONE;
	if (family == X2B_FAM_INET4) {
		if (!rec)
			return X2B_RANGE_NONE;
		for (__u32 i = 0; i < lv->count; i++)
			if (rec[(size_t)i * sizeof(struct x2b_endpoint) +
				offsetof(struct x2b_endpoint, family)] != X2B_FAM_INET4)
				return X2B_RANGE_NONE;
	}
	return (__u64)lv->first << 32 | lv->count;
}

static void store_range(__u64 *cell, uint64_t range)
{
	__atomic_store_n(cell, range, __ATOMIC_RELEASE);
}

/*
 * Where slot `i`'s range is: an IPv4 row's in its x2b_lsn4 slot (ABI 8), any
 * other row's in its x2b_lsnx slot.
 */
static __u64 *range_cell(struct x2b_slots *s, __u32 i)
{
	if (s->slot[i].key.family == X2B_FAM_INET4)
		return &s->slot4[i].range;
	return &s->slot[i].range;
}

/*
 * A shared mapping (`prot`: PROT_READ, or with PROT_WRITE) of the pinned ARRAY
 * `name` under `root` of BPF_F_MMAPABLE values of `size` bytes: *n values in
 * *len bytes. NULL with *err set, 0 when the map is absent (an older layout).
 * One mapping instead of a lookup per slot: 65,536 slots at 10k services.
 */
void *x2b_map_values(const char *root, const char *name, size_t size, int prot, __u32 *n,
		     size_t *len, int *err)
{
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info);
	char path[PATH_MAX];
	long page = sysconf(_SC_PAGESIZE);
	void *p;
	int fd;

	*err = 0;
	if (x2b_path(path, sizeof(path), "%s/maps/%s", root, name)) {
		*err = X2B_EXIT_USAGE;
		return NULL;
	}
	fd = bpf_obj_get(path);
	if (fd < 0 && errno == ENOENT)
		return NULL;
	if (fd < 0) {
		x2b_err("cannot open %s: %s", path, strerror(errno));
		*err = x2b_exit_for_errno(errno);
		return NULL;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen) || info.type != BPF_MAP_TYPE_ARRAY ||
	    info.value_size != size || !(info.map_flags & BPF_F_MMAPABLE)) {
		x2b_err("map %s: not an mmapable ARRAY of %zu-byte values (ABI %d)", name, size,
			X2B_ABI_VERSION);
		close(fd);
		*err = X2B_EXIT_NO_FIT;
		return NULL;
	}
	*n = info.max_entries;
	*len = ((size_t)info.max_entries * size + (size_t)page - 1) / (size_t)page * (size_t)page;
	p = mmap(NULL, *len, prot, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		x2b_err("cannot map %s: %s", name, strerror(errno));
		*err = X2B_EXIT_INTERNAL;
		return NULL;
	}
	return p;
}

int x2b_slots_open(struct x2b_slots *s, const char *root, uint32_t nclusters)
{
	__u32 *fill = NULL, n4 = 0;
	int err = 0;

	memset(s, 0, sizeof(*s));
	s->slot = x2b_map_values(root, "x2b_lsnx", sizeof(struct x2b_lsn_slot),
				 PROT_READ | PROT_WRITE, &s->n, &s->len, &err);
	if (!s->slot) {
		if (err) /* absent: no exact-address table, no fast path to keep */
			x2b_err("cannot update in place: reload");
		return err;
	}
	/* the IPv4 rows' compact slots: the same count (ABI 8) */
	s->slot4 = x2b_map_values(root, "x2b_lsn4", sizeof(struct x2b_lsn4_slot),
				  PROT_READ | PROT_WRITE, &n4, &s->len4, &err);
	if (!s->slot4) {
		if (!err) {
			x2b_err("map x2b_lsn4 is missing (ABI %d)", X2B_ABI_VERSION);
			err = X2B_EXIT_NO_FIT;
		}
		x2b_err("cannot update in place: reload");
		goto out;
	}
	if (n4 != s->n) {
		x2b_err("map x2b_lsn4 has %u slots, x2b_lsnx %u; cannot update in place: reload",
			n4, s->n);
		err = X2B_EXIT_NO_FIT;
		goto out;
	}

	/* the slots of every cluster id: counts, offsets, then the slot numbers */
	s->nclusters = nclusters;
	s->first = calloc((size_t)nclusters + 1, sizeof(*s->first));
	fill = calloc((size_t)nclusters + 1, sizeof(*fill));
	if (!s->first || !fill) {
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	for (__u32 i = 0; i < s->n; i++) {
		const struct x2b_lsn_slot *sl = &s->slot[i];

		if (sl->key.family && sl->act.kind == X2B_ACT_CLUSTER && sl->act.target < nclusters)
			s->first[sl->act.target + 1]++;
	}
	for (__u32 c = 0; c < nclusters; c++)
		s->first[c + 1] += s->first[c];
	s->idx = calloc(s->first[nclusters] ? s->first[nclusters] : 1, sizeof(*s->idx));
	if (!s->idx) {
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	for (__u32 i = 0; i < s->n; i++) {
		const struct x2b_lsn_slot *sl = &s->slot[i];
		__u32 c = sl->act.target;

		if (sl->key.family && sl->act.kind == X2B_ACT_CLUSTER && c < nclusters)
			s->idx[s->first[c] + fill[c]++] = i;
	}
out:
	free(fill);
	if (err)
		x2b_slots_close(s);
	return err;
}

/* Keeps each range of cluster `cid` that is still its live row's range; clears the others. */
void x2b_slots_check(struct x2b_slots *s, uint32_t cid, const struct x2b_cluster *live)
{
	if (!s->slot || cid >= s->nclusters)
		return;
	for (__u32 k = s->first[cid]; k < s->first[cid + 1]; k++) {
		__u64 *cell = range_cell(s, s->idx[k]);
		__u64 r = __atomic_load_n(cell, __ATOMIC_ACQUIRE);

		if (r != X2B_RANGE_NONE && r != x2b_fast_range(live, X2B_FAM_INET6, NULL))
			store_range(cell, X2B_RANGE_NONE);
	}
}

/* After cluster `cid` switched to `row` (level-0 endpoint records `eps`): its slots' ranges. */
void x2b_slots_switched(struct x2b_slots *s, uint32_t cid, const struct x2b_cluster *row,
			const void *eps)
{
	if (!s->slot || cid >= s->nclusters)
		return;
	for (__u32 k = s->first[cid]; k < s->first[cid + 1]; k++) {
		__u32 i = s->idx[k];

		store_range(range_cell(s, i), x2b_fast_range(row, s->slot[i].key.family, eps));
	}
}

void x2b_slots_close(struct x2b_slots *s)
{
	if (s->slot)
		munmap(s->slot, s->len);
	if (s->slot4)
		munmap(s->slot4, s->len4);
	free(s->first);
	free(s->idx);
	memset(s, 0, sizeof(*s));
}
