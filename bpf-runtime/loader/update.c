// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * update: an endpoint-only change (EndpointDelta) written into a loaded
 * bundle's pinned maps in place, without a new object.
 *
 * Every cluster has two rows in x2b_clu (2*cid and 2*cid+1); x2b_cluv[cid]
 * says which one is live. The programs read x2b_cluv[cid], then the row, then
 * the row's endpoint and table ranges. An update writes, in this order:
 *   1. the endpoint records and table slots into free ranges of x2b_ep and
 *      x2b_lbtab (free: not used by any live row; first fit), unreferenced;
 *   2. each cluster's new row into its inactive row, unreferenced;
 *   3. per cluster the switch x2b_cluv[cid] = 1 - live: one u32 write, so a
 *      connect sees the old row or the new one, never a mix;
 *   4. an RCU grace period: the programs that read an old row are done, so the
 *      old row and its ranges are free for the next update. NAME/update.pending
 *      exists from before the switches until then: an update that finds it (the
 *      last one died in between) waits for a grace period first.
 * Switches are atomic per cluster, not across clusters (as Envoy applies EDS
 * per cluster). A failure before step 3 leaves what the programs see unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "x2b_abi.h"
#include "loader.h"

#define X2B_UPDATE_FILE "update.json"
#define X2B_PENDING_FILE "update.pending" /* switched, grace period not yet over */

/* Where cluster `id` is in the manifest (x2b_delta_decode checked that it is). */
static size_t position(const __u32 *ids, size_t n, __u32 id)
{
	if (id < n && ids[id] == id)
		return id;
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return i;
	return 0;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct umap {
	const char *name;
	__u32 value_size;
	int fd;
	struct bpf_map_info info;
};

/* Opens a pinned map and checks it is an ARRAY with the ABI's key and value sizes. */
static int open_map(const char *root, struct umap *m)
{
	char path[PATH_MAX];
	__u32 len = sizeof(m->info);

	m->fd = -1;
	if (x2b_path(path, sizeof(path), "%s/maps/%s", root, m->name))
		return X2B_EXIT_USAGE;
	m->fd = bpf_obj_get(path);
	if (m->fd < 0) {
		if (errno == ENOENT) {
			x2b_err("the loaded bundle has no map %s (not double-buffered: an older layout); "
				"cannot update in place: reload", m->name);
			return X2B_EXIT_NO_FIT;
		}
		x2b_err("cannot open %s: %s", path, strerror(errno));
		return x2b_exit_for_errno(errno);
	}
	memset(&m->info, 0, sizeof(m->info));
	if (bpf_obj_get_info_by_fd(m->fd, &m->info, &len)) {
		x2b_err("cannot inspect %s: %s", path, strerror(errno));
		return X2B_EXIT_INTERNAL;
	}
	if (m->info.type != BPF_MAP_TYPE_ARRAY || m->info.key_size != sizeof(__u32) ||
	    m->info.value_size != m->value_size) {
		x2b_err("map %s: type %u, key size %u, value size %u; expected an ARRAY of %u-byte "
			"values (ABI %d); cannot update in place: reload", m->name, m->info.type,
			m->info.key_size, m->info.value_size, m->value_size, X2B_ABI_VERSION);
		return X2B_EXIT_NO_FIT;
	}
	return 0;
}

/* Records for one map, written with one batch call (one element at a time without batch support). */
struct batch {
	const struct umap *m;
	__u32 *keys;
	unsigned char *vals;
	size_t n, cap;
};

static int batch_add(struct batch *b, __u32 first, const void *data, size_t count)
{
	size_t vs = b->m->value_size;

	if (b->n + count > b->cap) {
		size_t cap = (b->n + count) * 2;
		__u32 *k = realloc(b->keys, cap * sizeof(*k));
		unsigned char *v;

		if (!k)
			return -ENOMEM;
		b->keys = k;
		v = realloc(b->vals, cap * vs);
		if (!v)
			return -ENOMEM;
		b->vals = v;
		b->cap = cap;
	}
	for (size_t i = 0; i < count; i++)
		b->keys[b->n + i] = first + (__u32)i;
	memcpy(b->vals + b->n * vs, data, count * vs);
	b->n += count;
	return 0;
}

static int batch_write(struct batch *b)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	__u32 n = (__u32)b->n;

	if (!b->n)
		return 0;
	if (bpf_map_update_batch(b->m->fd, b->keys, b->vals, &n, &opts) == 0 && n == b->n)
		return 0;
	for (size_t i = 0; i < b->n; i++)
		if (bpf_map_update_elem(b->m->fd, &b->keys[i], b->vals + i * b->m->value_size, BPF_ANY))
			return -errno;
	return 0;
}

static void batch_free(struct batch *b)
{
	free(b->keys);
	free(b->vals);
	b->keys = NULL;
	b->vals = NULL;
	b->n = b->cap = 0;
}

/*
 * Least request counts active connections per endpoint address in x2b_active,
 * only for the addresses it has an entry for (the compiler's image: every
 * endpoint of a least-request cluster). New addresses of such clusters get
 * their zero entry before the switch, so their connections are counted from the
 * first one. Entries of addresses no longer used stay (their connections still
 * close and count down). Returns how many addresses could not be added.
 */
static size_t add_active(const char *root, const x2b_delta *d, const struct x2b_update_plan *p)
{
	char path[PATH_MAX];
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), zero = 0;
	size_t missed = 0;
	int fd;

	if (x2b_path(path, sizeof(path), "%s/maps/x2b_active", root))
		return 0;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0; /* no least-request cluster in this bundle */
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != BPF_MAP_TYPE_HASH ||
	    info.key_size != sizeof(struct x2b_epkey) || info.value_size != sizeof(__u32)) {
		x2b_warn("x2b_active is not a hash of struct x2b_epkey -> u32; not updated");
		close(fd);
		return 0;
	}
	for (size_t k = 0; k < d->n_clusters; k++) {
		if (p->rows[k].lb != X2B_LB_LEAST_REQUEST || (p->rows[k].flags & X2B_CLU_PASSTHROUGH))
			continue;
		for (size_t li = 0; li < d->clusters[k]->n_levels; li++) {
			const x2b_dlevel *l = d->clusters[k]->levels[li];

			for (size_t i = 0; i < l->endpoints.len / sizeof(struct x2b_endpoint); i++) {
				struct x2b_endpoint ep;
				struct x2b_epkey key = {};

				memcpy(&ep, l->endpoints.data + i * sizeof(ep), sizeof(ep));
				key.family = ep.family;
				key.port = ep.port;
				memcpy(key.addr, ep.addr, sizeof(key.addr));
				if (bpf_map_update_elem(fd, &key, &zero, BPF_NOEXIST) && errno != EEXIST)
					missed++;
			}
		}
	}
	close(fd);
	return missed;
}

/* The count of earlier updates (update.json "updates"), 0 without one. */
static unsigned long long previous_updates(const char *state)
{
	char path[PATH_MAX];
	unsigned long long n = 0;
	struct x2b_kv *kv = NULL;
	size_t nkv = 0, len = 0;
	void *data = NULL;

	if (x2b_path(path, sizeof(path), "%s/%s", state, X2B_UPDATE_FILE) ||
	    x2b_read_file_at(AT_FDCWD, path, O_NOFOLLOW, 65536, &data, &len))
		return 0;
	if (!x2b_json_flat_parse(data, len, &kv, &nkv)) {
		for (size_t i = 0; i < nkv; i++)
			if (!strcmp(kv[i].key, "updates") && !kv[i].is_string)
				n = strtoull(kv[i].value, NULL, 10);
		x2b_json_flat_free(kv, nkv);
	}
	free(data);
	return n;
}

struct summary {
	size_t clusters;
	uint64_t endpoints, slots;
	uint64_t total_us, write_us, switch_us, settle_us;
	uint64_t ep_free, tab_free; /* after the update */
	__u32 ep_max, tab_max;
};

static int record_update(const char *state, const x2b_delta *d, const struct summary *s)
{
	char buf[1024], when[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(buf, sizeof(buf),
		 "{\"snapshot_sha256\":\"%s\",\"base_code_sha256\":\"%s\",\"time\":\"%s\","
		 "\"unix_time\":%lld,\"updates\":%llu,\"clusters\":%zu,\"endpoints\":%llu,"
		 "\"slots\":%llu,\"micros\":%llu}\n",
		 d->snapshot_sha256, d->base_code_sha256, when, (long long)t,
		 previous_updates(state) + 1, s->clusters, (unsigned long long)s->endpoints,
		 (unsigned long long)s->slots, (unsigned long long)s->total_us);
	return x2b_write_state_file(state, X2B_UPDATE_FILE, buf, strlen(buf));
}

int x2b_cmd_update(const char *delta_path, const char *name)
{
	struct umap clu = { .name = "x2b_clu", .value_size = sizeof(struct x2b_cluster), .fd = -1 };
	struct umap cluv = { .name = "x2b_cluv", .value_size = sizeof(__u32), .fd = -1 };
	struct umap ep = { .name = "x2b_ep", .value_size = sizeof(struct x2b_endpoint), .fd = -1 };
	struct umap tab = { .name = "x2b_lbtab", .value_size = sizeof(struct x2b_slot), .fd = -1 };
	struct umap *maps[] = { &cluv, &clu, &ep, &tab };
	char root[PATH_MAX], state[PATH_MAX], path[PATH_MAX], pending[PATH_MAX];
	struct x2b_space eps, tabs;
	struct x2b_update_plan plan = {};
	struct batch bep = { .m = &ep }, btab = { .m = &tab }, bclu = { .m = &clu };
	struct summary sum = {};
	struct x2b_cluster *live = NULL;
	x2b_manifest *m = NULL;
	x2b_delta *d = NULL;
	__u32 *ids = NULL, *ver = NULL;
	void *mraw = NULL, *draw = NULL;
	size_t mlen = 0, dlen = 0, nswitched = 0, nmissed;
	uint64_t t0 = now_us(), t1, tw, t2, t3;
	int lockfd = -1, err;
	struct stat st;

	x2b_space_init(&eps, "x2b_ep", 0);
	x2b_space_init(&tabs, "x2b_lbtab", 0);
	for (size_t i = 0; i < 4; i++)
		maps[i]->fd = -1;
	if (x2b_path(root, sizeof(root), "%s/%s", x2b_bpffs_base(), name) ||
	    x2b_path(state, sizeof(state), "%s/%s", x2b_state_base(), name) ||
	    x2b_path(path, sizeof(path), "%s/manifest.pb", state))
		return X2B_EXIT_USAGE;
	if (lstat(state, &st) || lstat(root, &st)) {
		x2b_err("no bundle named '%s' is loaded (nothing at %s)", name,
			lstat(state, &st) ? state : root);
		return X2B_EXIT_REJECT;
	}
	err = x2b_lock_state(state, &lockfd);
	if (err)
		return err;

	/*
	 * An update that switched but died before its grace period: the rows it left
	 * inactive may still be read by a program that started before; wait first.
	 */
	if (x2b_path(pending, sizeof(pending), "%s/%s", state, X2B_PENDING_FILE)) {
		err = X2B_EXIT_USAGE;
		goto out;
	}
	if (lstat(pending, &st) == 0) {
		x2b_settle();
		unlink(pending);
	}

	/* 1. the loaded manifest and the delta, checked against each other */
	err = x2b_manifest_read(path, &mraw, &mlen, &m);
	if (err) {
		x2b_err("cannot read the loaded manifest %s: %s", path,
			err == -EBADMSG ? "corrupt" : strerror(-err));
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	if (m->abi_version != X2B_ABI_VERSION) {
		x2b_err("the loaded bundle has ABI version %u, this loader %d; cannot update in place: "
			"reload", m->abi_version, X2B_ABI_VERSION);
		err = X2B_EXIT_NO_FIT;
		goto out;
	}
	err = x2b_read_file_at(AT_FDCWD, delta_path, 0, X2B_MAX_DELTA_SIZE, &draw, &dlen);
	if (err) {
		x2b_err("cannot read delta %s: %s", delta_path,
			err == -EINVAL ? "not a regular file" : err == -EFBIG ? "file too large"
								: strerror(-err));
		err = err == -ENOMEM ? X2B_EXIT_INTERNAL : X2B_EXIT_REJECT;
		goto out;
	}
	err = x2b_delta_decode(draw, dlen, m, &d);
	if (err)
		goto out;

	/* 2. the pinned maps */
	for (size_t i = 0; i < 4; i++) {
		err = open_map(root, maps[i]);
		if (err)
			goto out;
	}

	/* 3. the live row of every cluster of the manifest, then the plan */
	live = calloc(m->n_clusters ? m->n_clusters : 1, sizeof(*live));
	ids = calloc(m->n_clusters ? m->n_clusters : 1, sizeof(*ids));
	ver = calloc(m->n_clusters ? m->n_clusters : 1, sizeof(*ver));
	if (!live || !ids || !ver) {
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	for (size_t i = 0; i < m->n_clusters; i++) {
		__u32 id = m->clusters[i]->index, row;

		ids[i] = id;
		if (id >= cluv.info.max_entries || 2ULL * id + 1 >= clu.info.max_entries) {
			x2b_err("cluster %u is beyond %s (%u entries) or %s (%u rows: two per cluster); "
				"cannot update in place: reload", id, cluv.name, cluv.info.max_entries,
				clu.name, clu.info.max_entries);
			err = X2B_EXIT_NO_FIT;
			goto out;
		}
		if (bpf_map_lookup_elem(cluv.fd, &id, &ver[i])) {
			x2b_err("cannot read %s[%u]: %s", cluv.name, id, strerror(errno));
			err = X2B_EXIT_INTERNAL;
			goto out;
		}
		if (ver[i] > 1) {
			x2b_err("%s[%u] is %u (0 or 1); cannot update in place: reload", cluv.name, id,
				ver[i]);
			err = X2B_EXIT_NO_FIT;
			goto out;
		}
		row = 2 * id + ver[i];
		if (bpf_map_lookup_elem(clu.fd, &row, &live[i])) {
			x2b_err("cannot read %s[%u]: %s", clu.name, row, strerror(errno));
			err = X2B_EXIT_INTERNAL;
			goto out;
		}
	}
	eps.max = ep.info.max_entries;
	tabs.max = tab.info.max_entries;
	err = x2b_delta_plan(d, ids, live, m->n_clusters, &eps, &tabs, &plan);
	if (err)
		goto out;

	/* 4. records into the allocated (unreferenced) ranges, rows into the inactive rows */
	t1 = now_us();
	for (size_t k = 0; k < d->n_clusters && !err; k++) {
		const x2b_dcluster *c = d->clusters[k];
		__u32 id = c->cluster;

		for (size_t li = 0; li < c->n_levels && !err; li++) {
			const struct x2b_level *l = &plan.rows[k].levels[li];

			err = batch_add(&bep, l->first, c->levels[li]->endpoints.data, l->count);
			if (!err)
				err = batch_add(&btab, l->table_first, c->levels[li]->table.data, l->table_len);
		}
		if (!err)
			err = batch_add(&bclu, 2 * id + (1 - ver[position(ids, m->n_clusters, id)]),
					&plan.rows[k], 1);
	}
	if (err) {
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	/* rows last: each one refers to ranges written before it */
	err = batch_write(&bep);
	if (!err)
		err = batch_write(&btab);
	if (!err)
		err = batch_write(&bclu);
	tw = now_us();
	if (err) {
		x2b_err("cannot write the new rows: %s (nothing switched: the loaded maps serve as "
			"before)", strerror(-err));
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	nmissed = add_active(root, d, &plan);
	if (nmissed)
		x2b_warn("x2b_active is full: least request does not count the connections of %zu new "
			 "endpoint addresses (a replace resizes it)", nmissed);
	if (x2b_fail_point("update-before-switch")) {
		err = X2B_EXIT_INTERNAL;
		goto out;
	}

	/* 5. the switches: one u32 per cluster */
	err = x2b_write_state_file(state, X2B_PENDING_FILE, "", 0);
	if (err)
		goto out;
	t2 = now_us();
	for (size_t k = 0; k < d->n_clusters; k++) {
		__u32 id = d->clusters[k]->cluster, v;
		size_t i = position(ids, m->n_clusters, id);

		v = 1 - ver[i];
		if (bpf_map_update_elem(cluv.fd, &id, &v, BPF_ANY)) {
			x2b_err("cannot switch cluster %u (%s[%u]): %s; %zu of %zu clusters switched, each "
				"consistent; apply the delta again or replace", id, cluv.name, id,
				strerror(errno), nswitched, d->n_clusters);
			err = X2B_EXIT_INTERNAL;
			goto out;
		}
		nswitched++;
	}
	t3 = now_us();

	/* 6. a grace period: the old rows and ranges are unreferenced from now on */
	x2b_settle();
	unlink(pending);
	sum.settle_us = now_us() - t3;
	sum.write_us = tw - t1;
	sum.switch_us = t3 - t2;
	sum.clusters = d->n_clusters;
	sum.endpoints = plan.endpoints;
	sum.slots = plan.slots;
	sum.ep_max = eps.max;
	sum.tab_max = tabs.max;
	sum.ep_free = plan.ep_free - plan.endpoints;
	sum.tab_free = plan.tab_free - plan.slots;
	for (size_t k = 0; k < d->n_clusters; k++) {
		__u32 id = d->clusters[k]->cluster;
		size_t i = position(ids, m->n_clusters, id);

		for (__u32 li = 0; li < live[i].nlevels; li++) {
			sum.ep_free += live[i].levels[li].count;
			sum.tab_free += live[i].levels[li].table_len;
		}
	}
	sum.total_us = now_us() - t0;
	err = record_update(state, d, &sum);
	if (err)
		goto out;
	if (x2b_json) {
		printf("{\"name\":");
		x2b_json_str(stdout, name);
		printf(",\"snapshot_sha256\":\"%s\",\"clusters\":%zu,\"endpoints\":%llu,\"slots\":%llu,"
		       "\"micros\":%llu,\"write_micros\":%llu,\"switch_micros\":%llu,"
		       "\"grace_micros\":%llu,\"ep_free\":%llu,\"ep_max\":%u,\"lbtab_free\":%llu,"
		       "\"lbtab_max\":%u}\n",
		       d->snapshot_sha256, sum.clusters, (unsigned long long)sum.endpoints,
		       (unsigned long long)sum.slots, (unsigned long long)sum.total_us,
		       (unsigned long long)sum.write_us, (unsigned long long)sum.switch_us,
		       (unsigned long long)sum.settle_us, (unsigned long long)sum.ep_free, sum.ep_max,
		       (unsigned long long)sum.tab_free, sum.tab_max);
	}
	x2b_note("updated '%s': %zu clusters, %llu endpoints, %llu slots written in %llu us "
		 "(maps %llu us, switch %llu us, grace period %llu us); free: x2b_ep %llu of %u, "
		 "x2b_lbtab %llu of %u", name, sum.clusters, (unsigned long long)sum.endpoints,
		 (unsigned long long)sum.slots, (unsigned long long)sum.total_us,
		 (unsigned long long)sum.write_us, (unsigned long long)sum.switch_us,
		 (unsigned long long)sum.settle_us, (unsigned long long)sum.ep_free, sum.ep_max,
		 (unsigned long long)sum.tab_free, sum.tab_max);
	err = 0;
out:
	for (size_t i = 0; i < 4; i++)
		if (maps[i]->fd >= 0)
			close(maps[i]->fd);
	batch_free(&bep);
	batch_free(&btab);
	batch_free(&bclu);
	x2b_update_plan_free(&plan);
	x2b_space_free(&eps);
	x2b_space_free(&tabs);
	free(live);
	free(ids);
	free(ver);
	x2b_delta_free(d);
	free(draw);
	if (m)
		xds2bpf__bundle__v1__manifest__free_unpacked(m, NULL);
	free(mraw);
	if (lockfd >= 0)
		close(lockfd);
	return err;
}
