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
				"cannot update in place: reload",
				m->name);
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
			"values (ABI %d); cannot update in place: reload",
			m->name, m->info.type, m->info.key_size, m->info.value_size, m->value_size,
			X2B_ABI_VERSION);
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

	if (!count) /* a level without a table: its bytes may be NULL (memcpy's arguments must not) */
		return 0;

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
		if (bpf_map_update_elem(b->m->fd, &b->keys[i], b->vals + i * b->m->value_size,
					BPF_ANY))
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

/* A summary of one update, for the report and update.json. */
struct x2b_update_summary {
	size_t clusters;
	uint64_t endpoints, slots;
	uint64_t total_us, live_us, write_us, switch_us, settle_us;
	uint64_t ep_free, tab_free; /* after the update */
	__u32 ep_max, tab_max;
};

/*
 * An update session on one loaded bundle: the state lock, the loaded manifest,
 * the pinned maps and every cluster's live row, read once and kept in step with
 * each switch. `update` opens one for one delta; `update-stream` (the node
 * agent's co-process) keeps one for every update, so an update costs what it
 * writes, not a read of every cluster's row.
 */
struct x2b_updater {
	char root[PATH_MAX], state[PATH_MAX], pending[PATH_MAX];
	int lockfd;
	struct umap clu, cluv, ep, ep4, tab;
	struct x2b_slots slots; /* service addresses that balance from their slot */
	int active_fd;		/* x2b_active, -1 without least-request clusters */
	x2b_manifest *m;
	void *mraw;
	size_t n;		    /* clusters of the manifest */
	__u32 *ids, *ver;	    /* per manifest cluster: its id, its live row (0 or 1) */
	struct x2b_cluster *live;   /* per manifest cluster: the live row */
	unsigned long long updates; /* in-place updates since the load */
	char snapshot_sha256[65];   /* what the last update made live ("" until named) */
	struct x2b_update_summary last;
};

/*
 * Least request counts active connections per endpoint address in x2b_active,
 * only for the addresses it has an entry for (the compiler's image: every
 * endpoint of a least-request cluster). New addresses of such clusters get
 * their zero entry before the switch, so their connections are counted from the
 * first one. Entries of addresses no longer used stay (their connections still
 * close and count down). Returns how many addresses could not be added.
 */
static size_t add_active(int fd, const x2b_delta *d, const struct x2b_update_plan *p)
{
	__u32 zero = 0;
	size_t missed = 0;

	if (fd < 0)
		return 0; /* no least-request cluster in this bundle */
	for (size_t k = 0; k < d->n_clusters; k++) {
		if (p->rows[k].lb != X2B_LB_LEAST_REQUEST ||
		    (p->rows[k].flags & X2B_CLU_PASSTHROUGH))
			continue;
		for (size_t li = 0; li < d->clusters[k]->n_levels; li++) {
			const x2b_dlevel *l = d->clusters[k]->levels[li];

			for (size_t i = 0; i < l->endpoints.len / sizeof(struct x2b_endpoint);
			     i++) {
				struct x2b_endpoint ep;
				struct x2b_epkey key = {};

				memcpy(&ep, l->endpoints.data + i * sizeof(ep), sizeof(ep));
				key.family = ep.family;
				key.port = ep.port;
				memcpy(key.addr, ep.addr, sizeof(key.addr));
				if (bpf_map_update_elem(fd, &key, &zero, BPF_NOEXIST) &&
				    errno != EEXIST)
					missed++;
			}
		}
	}
	return missed;
}

/* x2b_active, when the bundle has one (-1 without: no least-request cluster). */
static int open_active(const char *root)
{
	char path[PATH_MAX];
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd;

	if (x2b_path(path, sizeof(path), "%s/maps/x2b_active", root))
		return -1;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != BPF_MAP_TYPE_HASH ||
	    info.key_size != sizeof(struct x2b_epkey) || info.value_size != sizeof(__u32)) {
		x2b_warn("x2b_active is not a hash of struct x2b_epkey -> u32; not updated");
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Every value of an ARRAY map into `out` (max_entries values): batched, or one
 * lookup at a time on a kernel without batch operations on arrays.
 */
static int read_array(const struct umap *m, void *out)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 n = m->info.max_entries, done = 0, token = 0, count;
	__u32 *keys = calloc(n ? n : 1, sizeof(*keys));
	bool first = true;
	int err = 0;

	if (!keys)
		return -ENOMEM;
	while (done < n) {
		count = n - done;
		err = bpf_map_lookup_batch(m->fd, first ? NULL : &token, &token, keys + done,
					   (char *)out + (size_t)done * m->value_size, &count,
					   &opts);
		first = false;
		done += count;
		if (err) {
			err = -errno;
			break;
		}
	}
	if (err == -ENOENT && done == n)
		err = 0;
	if (err) {
		/* no batch support (or a short read): one element at a time */
		err = 0;
		for (__u32 k = 0; k < n && !err; k++)
			if (bpf_map_lookup_elem(m->fd, &k, (char *)out + (size_t)k * m->value_size))
				err = -errno;
	} else {
		/* a batch returns (key, value) pairs in key order for arrays; make sure */
		for (__u32 k = 0; k < n && !err; k++)
			if (keys[k] != k)
				err = -EIO;
	}
	free(keys);
	return err;
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

static int record_update(const struct x2b_updater *u)
{
	const struct x2b_update_summary *s = &u->last;
	char buf[1024], when[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(buf, sizeof(buf),
		 "{\"snapshot_sha256\":\"%s\",\"base_code_sha256\":\"%s\",\"time\":\"%s\","
		 "\"unix_time\":%lld,\"updates\":%llu,\"clusters\":%zu,\"endpoints\":%llu,"
		 "\"slots\":%llu,\"micros\":%llu}\n",
		 u->snapshot_sha256, u->m->code_sha256, when, (long long)t, u->updates, s->clusters,
		 (unsigned long long)s->endpoints, (unsigned long long)s->slots,
		 (unsigned long long)s->total_us);
	return x2b_write_state_file(u->state, X2B_UPDATE_FILE, buf, strlen(buf));
}

/*
 * The x2b_ep4 rows of `count` endpoint records (ABI 8): the IPv4 ones' address
 * and port, zero rows for the others (the IPv4 fast path never reads them).
 */
static int batch_add_ep4(struct batch *b, __u32 first, const void *records, size_t count)
{
	struct x2b_ep4 *rows;
	int err;

	if (!count)
		return 0;
	rows = calloc(count, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		struct x2b_endpoint ep;

		memcpy(&ep, (const unsigned char *)records + i * sizeof(ep), sizeof(ep));
		if (ep.family != X2B_FAM_INET4)
			continue;
		memcpy(&rows[i].addr, ep.addr, sizeof(rows[i].addr));
		rows[i].port = ep.port;
		rows[i].family = X2B_FAM_INET4;
	}
	err = batch_add(b, first, rows, count);
	free(rows);
	return err;
}

static void x2b_updater_close(struct x2b_updater *u)
{
	struct umap *maps[] = { &u->cluv, &u->clu, &u->ep, &u->ep4, &u->tab };

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		if (maps[i]->fd >= 0)
			close(maps[i]->fd);
	if (u->active_fd >= 0)
		close(u->active_fd);
	x2b_slots_close(&u->slots);
	free(u->live);
	free(u->ids);
	free(u->ver);
	if (u->m)
		xds2bpf__bundle__v1__manifest__free_unpacked(u->m, NULL);
	free(u->mraw);
	if (u->lockfd >= 0)
		close(u->lockfd);
	memset(u, 0, sizeof(*u));
	u->lockfd = u->active_fd = -1;
}

static int x2b_updater_open(struct x2b_updater *u, const char *name)
{
	struct umap *maps[] = { &u->cluv, &u->clu, &u->ep, &u->tab };
	struct x2b_cluster *rows = NULL;
	__u32 *cluv = NULL;
	char path[PATH_MAX];
	size_t mlen = 0;
	struct stat st;
	int err;

	memset(u, 0, sizeof(*u));
	u->lockfd = u->active_fd = -1;
	u->cluv = (struct umap){ .name = "x2b_cluv", .value_size = sizeof(__u32), .fd = -1 };
	u->clu = (struct umap){ .name = "x2b_clu",
				.value_size = sizeof(struct x2b_cluster),
				.fd = -1 };
	u->ep = (struct umap){ .name = "x2b_ep",
			       .value_size = sizeof(struct x2b_endpoint),
			       .fd = -1 };
	u->ep4 = (struct umap){ .name = "x2b_ep4", .value_size = sizeof(struct x2b_ep4), .fd = -1 };
	u->tab = (struct umap){ .name = "x2b_lbtab",
				.value_size = sizeof(struct x2b_slot),
				.fd = -1 };
	if (x2b_path(u->root, sizeof(u->root), "%s/%s", x2b_bpffs_base(), name) ||
	    x2b_path(u->state, sizeof(u->state), "%s/%s", x2b_state_base(), name) ||
	    x2b_path(u->pending, sizeof(u->pending), "%s/%s", u->state, X2B_PENDING_FILE) ||
	    x2b_path(path, sizeof(path), "%s/manifest.pb", u->state))
		return X2B_EXIT_USAGE;
	if (lstat(u->state, &st) || lstat(u->root, &st)) {
		x2b_err("no bundle named '%s' is loaded (nothing at %s)", name,
			lstat(u->state, &st) ? u->state : u->root);
		return X2B_EXIT_REJECT;
	}
	err = x2b_lock_state(u->state, &u->lockfd);
	if (err)
		return err;

	/*
	 * An update that switched but died before its grace period: the rows it left
	 * inactive may still be read by a program that started before; wait first.
	 */
	if (lstat(u->pending, &st) == 0) {
		x2b_settle();
		unlink(u->pending);
	}

	err = x2b_manifest_read(path, &u->mraw, &mlen, &u->m);
	if (err) {
		x2b_err("cannot read the loaded manifest %s: %s", path,
			err == -EBADMSG ? "corrupt" : strerror(-err));
		err = X2B_EXIT_INTERNAL;
		goto fail;
	}
	if (u->m->abi_version != X2B_ABI_VERSION) {
		x2b_err("the loaded bundle has ABI version %u, this loader %d; cannot update in place: "
			"reload",
			u->m->abi_version, X2B_ABI_VERSION);
		err = X2B_EXIT_NO_FIT;
		goto fail;
	}
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		err = open_map(u->root, maps[i]);
		if (err)
			goto fail;
	}
	u->active_fd = open_active(u->root);
	err = x2b_slots_open(&u->slots, u->root, u->cluv.info.max_entries);
	if (err)
		goto fail;
	/* x2b_ep4 (ABI 8) comes with the exact listener slots: a bundle without them may lack it */
	if (u->slots.slot4 || (!x2b_path(path, sizeof(path), "%s/maps/x2b_ep4", u->root) &&
			       access(path, F_OK) == 0)) {
		err = open_map(u->root, &u->ep4);
		if (err)
			goto fail;
		if (u->ep4.info.max_entries != u->ep.info.max_entries) {
			x2b_err("map x2b_ep4 has %u rows, x2b_ep %u; cannot update in place: reload",
				u->ep4.info.max_entries, u->ep.info.max_entries);
			err = X2B_EXIT_NO_FIT;
			goto fail;
		}
	}

	/* the live row of every cluster of the manifest, kept from now on */
	u->n = u->m->n_clusters;
	u->live = calloc(u->n ? u->n : 1, sizeof(*u->live));
	u->ids = calloc(u->n ? u->n : 1, sizeof(*u->ids));
	u->ver = calloc(u->n ? u->n : 1, sizeof(*u->ver));
	cluv = calloc(u->cluv.info.max_entries ? u->cluv.info.max_entries : 1, sizeof(*cluv));
	rows = calloc(u->clu.info.max_entries ? u->clu.info.max_entries : 1, sizeof(*rows));
	if (!u->live || !u->ids || !u->ver || !cluv || !rows) {
		err = X2B_EXIT_INTERNAL;
		goto fail;
	}
	err = read_array(&u->cluv, cluv);
	if (!err)
		err = read_array(&u->clu, rows);
	if (err) {
		x2b_err("cannot read %s / %s: %s", u->cluv.name, u->clu.name, strerror(-err));
		err = X2B_EXIT_INTERNAL;
		goto fail;
	}
	for (size_t i = 0; i < u->n; i++) {
		__u32 id = u->m->clusters[i]->index;

		u->ids[i] = id;
		if (id >= u->cluv.info.max_entries || 2ULL * id + 1 >= u->clu.info.max_entries) {
			x2b_err("cluster %u is beyond %s (%u entries) or %s (%u rows: two per cluster); "
				"cannot update in place: reload",
				id, u->cluv.name, u->cluv.info.max_entries, u->clu.name,
				u->clu.info.max_entries);
			err = X2B_EXIT_NO_FIT;
			goto fail;
		}
		u->ver[i] = cluv[id];
		if (u->ver[i] > 1) {
			x2b_err("%s[%u] is %u (0 or 1); cannot update in place: reload",
				u->cluv.name, id, u->ver[i]);
			err = X2B_EXIT_NO_FIT;
			goto fail;
		}
		u->live[i] = rows[2 * id + u->ver[i]];
		/* a range an update left behind (it died between a switch and the store) */
		x2b_slots_check(&u->slots, id, &u->live[i]);
	}
	u->updates = previous_updates(u->state);
	free(cluv);
	free(rows);
	return 0;
fail:
	free(cluv);
	free(rows);
	x2b_updater_close(u);
	return err;
}

static int x2b_updater_apply(struct x2b_updater *u, const void *data, size_t len,
			     void (*on_live)(const struct x2b_updater *u, void *ctx), void *ctx)
{
	struct batch bep = { .m = &u->ep }, bep4 = { .m = &u->ep4 }, btab = { .m = &u->tab },
		     bclu = { .m = &u->clu };
	struct x2b_update_summary sum = {};
	struct x2b_update_plan plan = {};
	struct x2b_space eps, tabs;
	uint64_t t0 = now_us(), t1, tw, t2, t3;
	uint64_t freed_ep = 0, freed_tab = 0;
	size_t nswitched = 0, nmissed;
	x2b_delta *d = NULL;
	int err;

	x2b_space_init(&eps, "x2b_ep", u->ep.info.max_entries);
	x2b_space_init(&tabs, "x2b_lbtab", u->tab.info.max_entries);
	err = x2b_delta_decode(data, len, u->m, &d);
	if (err)
		goto out;
	err = x2b_delta_plan(d, u->ids, u->live, u->n, &eps, &tabs, &plan);
	if (err)
		goto out;

	/* records into the allocated (unreferenced) ranges, rows into the inactive rows */
	t1 = now_us();
	for (size_t k = 0; k < d->n_clusters && !err; k++) {
		const x2b_dcluster *c = d->clusters[k];
		__u32 id = c->cluster;

		for (size_t li = 0; li < c->n_levels && !err; li++) {
			const struct x2b_level *l = &plan.rows[k].levels[li];

			err = batch_add(&bep, l->first, c->levels[li]->endpoints.data, l->count);
			if (!err && u->ep4.fd >= 0)
				err = batch_add_ep4(&bep4, l->first, c->levels[li]->endpoints.data,
						    l->count);
			if (!err)
				err = batch_add(&btab, l->table_first, c->levels[li]->table.data,
						l->table_len);
		}
		if (!err)
			err = batch_add(&bclu, 2 * id + (1 - u->ver[position(u->ids, u->n, id)]),
					&plan.rows[k], 1);
	}
	if (err) {
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	/* rows last: each one refers to ranges written before it */
	err = batch_write(&bep);
	if (!err)
		err = batch_write(&bep4);
	if (!err)
		err = batch_write(&btab);
	if (!err)
		err = batch_write(&bclu);
	tw = now_us();
	if (err) {
		x2b_err("cannot write the new rows: %s (nothing switched: the loaded maps serve as "
			"before)",
			strerror(-err));
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	nmissed = add_active(u->active_fd, d, &plan);
	if (nmissed)
		x2b_warn(
			"x2b_active is full: least request does not count the connections of %zu new "
			"endpoint addresses (a replace resizes it)",
			nmissed);
	if (x2b_fail_point("update-before-switch")) {
		err = X2B_EXIT_INTERNAL;
		goto out;
	}

	/* what the old rows free once the grace period is over */
	for (size_t k = 0; k < d->n_clusters; k++) {
		const struct x2b_cluster *old =
			&u->live[position(u->ids, u->n, d->clusters[k]->cluster)];

		for (__u32 li = 0; li < old->nlevels && li < X2B_MAX_PRIORITIES; li++) {
			freed_ep += old->levels[li].count;
			freed_tab += old->levels[li].table_len;
		}
	}

	/* the switches: one u32 per cluster; the cache follows each one */
	err = x2b_write_state_file(u->state, X2B_PENDING_FILE, "", 0);
	if (err)
		goto out;
	t2 = now_us();
	for (size_t k = 0; k < d->n_clusters; k++) {
		__u32 id = d->clusters[k]->cluster, v;
		size_t i = position(u->ids, u->n, id);

		v = 1 - u->ver[i];
		if (bpf_map_update_elem(u->cluv.fd, &id, &v, BPF_ANY)) {
			x2b_err("cannot switch cluster %u (%s[%u]): %s; %zu of %zu clusters switched, each "
				"consistent; apply the delta again or replace",
				id, u->cluv.name, id, strerror(errno), nswitched, d->n_clusters);
			err = X2B_EXIT_INTERNAL;
			goto out;
		}
		u->ver[i] = v;
		u->live[i] = plan.rows[k];
		if (x2b_fail_point("update-after-switch")) {
			/* as if the update died here: the slots name the old range (open repairs them) */
			err = X2B_EXIT_INTERNAL;
			goto out;
		}
		/* before the grace period: the old range is valid until it is over */
		x2b_slots_switched(&u->slots, id, &plan.rows[k],
				   d->clusters[k]->n_levels
					   ? d->clusters[k]->levels[0]->endpoints.data
					   : NULL);
		nswitched++;
	}
	t3 = now_us();
	sum.clusters = d->n_clusters;
	sum.endpoints = plan.endpoints;
	sum.slots = plan.slots;
	sum.write_us = tw - t1;
	sum.switch_us = t3 - t2;
	sum.live_us = t3 - t0;
	sum.ep_max = u->ep.info.max_entries;
	sum.tab_max = u->tab.info.max_entries;
	u->last = sum;
	if (on_live)
		on_live(u, ctx);

	/* a grace period: the old rows and ranges are unreferenced from now on */
	x2b_settle();
	unlink(u->pending);
	sum.settle_us = now_us() - t3;
	sum.ep_free = plan.ep_free - plan.endpoints + freed_ep;
	sum.tab_free = plan.tab_free - plan.slots + freed_tab;
	sum.total_us = now_us() - t0;
	u->last = sum;
	u->updates++;
	snprintf(u->snapshot_sha256, sizeof(u->snapshot_sha256), "%s", d->snapshot_sha256);
	err = record_update(u);
out:
	batch_free(&bep);
	batch_free(&bep4);
	batch_free(&btab);
	batch_free(&bclu);
	x2b_update_plan_free(&plan);
	x2b_space_free(&eps);
	x2b_space_free(&tabs);
	x2b_delta_free(d);
	return err;
}

static int x2b_updater_name_snapshot(struct x2b_updater *u, const char *sha256)
{
	size_t n = strlen(sha256);

	if (n != 64 || strspn(sha256, "0123456789abcdef") != 64) {
		x2b_err("snapshot: 64 lowercase hex digits expected");
		return X2B_EXIT_USAGE;
	}
	if (!u->updates) {
		x2b_err("snapshot: no update to name yet");
		return X2B_EXIT_USAGE;
	}
	memcpy(u->snapshot_sha256, sha256, 65);
	return record_update(u);
}

static void print_summary(const char *name, const struct x2b_updater *u)
{
	const struct x2b_update_summary *s = &u->last;

	if (x2b_json) {
		printf("{\"name\":");
		x2b_json_str(stdout, name);
		printf(",\"snapshot_sha256\":\"%s\",\"clusters\":%zu,\"endpoints\":%llu,\"slots\":%llu,"
		       "\"micros\":%llu,\"write_micros\":%llu,\"switch_micros\":%llu,"
		       "\"grace_micros\":%llu,\"ep_free\":%llu,\"ep_max\":%u,\"lbtab_free\":%llu,"
		       "\"lbtab_max\":%u}\n",
		       u->snapshot_sha256, s->clusters, (unsigned long long)s->endpoints,
		       (unsigned long long)s->slots, (unsigned long long)s->total_us,
		       (unsigned long long)s->write_us, (unsigned long long)s->switch_us,
		       (unsigned long long)s->settle_us, (unsigned long long)s->ep_free, s->ep_max,
		       (unsigned long long)s->tab_free, s->tab_max);
	}
	x2b_note("updated '%s': %zu clusters, %llu endpoints, %llu slots written in %llu us "
		 "(maps %llu us, switch %llu us, grace period %llu us); free: x2b_ep %llu of %u, "
		 "x2b_lbtab %llu of %u",
		 name, s->clusters, (unsigned long long)s->endpoints, (unsigned long long)s->slots,
		 (unsigned long long)s->total_us, (unsigned long long)s->write_us,
		 (unsigned long long)s->switch_us, (unsigned long long)s->settle_us,
		 (unsigned long long)s->ep_free, s->ep_max, (unsigned long long)s->tab_free,
		 s->tab_max);
}

int x2b_cmd_update(const char *delta_path, const char *name)
{
	struct x2b_updater u;
	void *draw = NULL;
	size_t dlen = 0;
	int err;

	err = x2b_updater_open(&u, name);
	if (err)
		return err;
	err = x2b_read_file_at(AT_FDCWD, delta_path, 0, X2B_MAX_DELTA_SIZE, &draw, &dlen);
	if (err) {
		x2b_err("cannot read delta %s: %s", delta_path,
			err == -EINVAL	? "not a regular file"
			: err == -EFBIG ? "file too large"
					: strerror(-err));
		err = err == -ENOMEM ? X2B_EXIT_INTERNAL : X2B_EXIT_REJECT;
		goto out;
	}
	err = x2b_updater_apply(&u, draw, dlen, NULL, NULL);
	if (!err)
		print_summary(name, &u);
out:
	free(draw);
	x2b_updater_close(&u);
	return err;
}

/*
 * The rows of a refresh (dns.c) in a session of their own: the delta applies to
 * the loaded code, and the live snapshot stays what it was (a lookup changes
 * where the snapshot's names point, not the snapshot).
 */
/* The rows of one delta in an open session: base code and live snapshot filled in. */
static int x2b_updater_apply_rows(struct x2b_updater *u, x2b_delta *d)
{
	char live[65] = "";
	struct x2b_kv *kv = NULL;
	size_t nkv = 0, len = 0, dlen;
	char path[PATH_MAX];
	void *data = NULL;
	uint8_t *buf;
	int err;

	snprintf(live, sizeof(live), "%s", u->m->snapshot_sha256);
	if (x2b_path(path, sizeof(path), "%s/%s", u->state, X2B_UPDATE_FILE) == 0 &&
	    x2b_read_file_at(AT_FDCWD, path, O_NOFOLLOW, 65536, &data, &len) == 0) {
		if (!x2b_json_flat_parse(data, len, &kv, &nkv)) {
			for (size_t i = 0; i < nkv; i++)
				if (!strcmp(kv[i].key, "snapshot_sha256") && kv[i].is_string &&
				    strlen(kv[i].value) == 64)
					snprintf(live, sizeof(live), "%s", kv[i].value);
			x2b_json_flat_free(kv, nkv);
		}
		free(data);
	}
	d->base_code_sha256 = u->m->code_sha256;
	d->snapshot_sha256 = live;
	dlen = xds2bpf__bundle__v1__endpoint_delta__get_packed_size(d);
	buf = malloc(dlen ? dlen : 1);
	if (!buf) {
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	xds2bpf__bundle__v1__endpoint_delta__pack(d, buf);
	err = x2b_updater_apply(u, buf, dlen, NULL, NULL);
	free(buf);
out:
	d->base_code_sha256 = NULL;
	d->snapshot_sha256 = NULL;
	return err;
}

static int stream_rows(void *ctx, x2b_delta *d)
{
	return x2b_updater_apply_rows(ctx, d);
}

int x2b_update_rows(const char *name, x2b_delta *d)
{
	struct x2b_updater u;
	int err;

	err = x2b_updater_open(&u, name);
	if (err)
		return err;
	err = x2b_updater_apply_rows(&u, d);
	if (!err && x2b_verbose)
		print_summary(name, &u);
	x2b_updater_close(&u);
	return err;
}

/*
 * update-stream: the node agent's co-process. One session (lock, manifest, maps,
 * live rows read once) serves every update until stdin ends. Requests on stdin:
 *   delta ID LEN\n<LEN bytes of EndpointDelta>
 *   snapshot ID SHA256\n     names the snapshot the last update made live
 *   refresh ID\n             looks up the DNS clusters that are due (refresh rate or TTL)
 *                            again and writes those whose addresses changed; its `done`
 *                            says how many clusters were looked up ("resolved")
 * Events on stdout, one JSON object a line, with the request's ID:
 *   {"event":"ready",...}                  the session is open (id 0)
 *   {"event":"live","id":ID,...}           every switch of the delta is done
 *   {"event":"done","id":ID,"status":0,...} grace period over, state recorded
 *   {"event":"error","id":ID,"status":N}   the request failed (messages on stderr);
 *                                          N as the exit codes of `update`
 * A request that cannot be read ends the stream (exit 2).
 */
static void stream_live(const struct x2b_updater *u, void *ctx)
{
	printf("{\"event\":\"live\",\"id\":%llu,\"clusters\":%zu,\"endpoints\":%llu,\"slots\":%llu,"
	       "\"micros\":%llu}\n",
	       *(const unsigned long long *)ctx, u->last.clusters,
	       (unsigned long long)u->last.endpoints, (unsigned long long)u->last.slots,
	       (unsigned long long)u->last.live_us);
	fflush(stdout);
}

static int read_line(char *buf, size_t cap)
{
	if (!fgets(buf, (int)cap, stdin))
		return -1;
	if (!strchr(buf, '\n'))
		return -EINVAL;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* "WORD ID REST" or "WORD ID": the id, and REST (maybe empty) in *rest; -1 when malformed. */
static int request_id(const char *line, size_t word, unsigned long long *id, const char **rest)
{
	char *end;

	errno = 0;
	*id = strtoull(line + word, &end, 10);
	if (errno || end == line + word || (*end != ' ' && *end))
		return -1;
	*rest = *end ? end + 1 : end;
	return 0;
}

int x2b_cmd_update_stream(const char *name)
{
	struct x2b_dns *dns = NULL; /* the lookups of `refresh`, kept between requests */
	struct x2b_updater u;
	char line[256];
	int err, status = 0;

	err = x2b_updater_open(&u, name);
	if (err) {
		printf("{\"event\":\"error\",\"id\":0,\"status\":%d}\n", err);
		return err;
	}
	printf("{\"event\":\"ready\",\"id\":0,\"clusters\":%zu,\"updates\":%llu}\n", u.n,
	       u.updates);
	fflush(stdout);
	while ((err = read_line(line, sizeof(line))) == 0) {
		unsigned long long id, len;
		const char *rest;
		char *end;

		if (!strncmp(line, "delta ", 6) && !request_id(line, 6, &id, &rest)) {
			void *data;

			errno = 0;
			len = strtoull(rest, &end, 10);
			if (errno || *end || end == rest || len > X2B_MAX_DELTA_SIZE) {
				x2b_err("update-stream: bad length in '%.40s'", line);
				status = X2B_EXIT_USAGE;
				break;
			}
			data = malloc(len ? len : 1);
			if (!data || fread(data, 1, len, stdin) != len) {
				free(data);
				x2b_err("update-stream: the delta ends early");
				status = X2B_EXIT_USAGE;
				break;
			}
			err = x2b_updater_apply(&u, data, len, stream_live, &id);
			free(data);
		} else if (!strncmp(line, "snapshot ", 9) && !request_id(line, 9, &id, &rest)) {
			err = x2b_updater_name_snapshot(&u, rest);
		} else if (!strncmp(line, "refresh ", 8) && !request_id(line, 8, &id, &rest)) {
			unsigned resolved = 0;

			err = x2b_dns_stream_refresh(name, &dns, stream_rows, &u, &resolved);
			if (!err) {
				printf("{\"event\":\"done\",\"id\":%llu,\"status\":0,\"resolved\":%u}\n",
				       id, resolved);
				fflush(stdout);
				continue;
			}
		} else {
			x2b_err("update-stream: unknown request '%.40s'", line);
			status = X2B_EXIT_USAGE;
			break;
		}
		if (err)
			printf("{\"event\":\"error\",\"id\":%llu,\"status\":%d}\n", id, err);
		else
			printf("{\"event\":\"done\",\"id\":%llu,\"status\":0,\"updates\":%llu,"
			       "\"micros\":%llu,\"grace_micros\":%llu,\"ep_free\":%llu,\"ep_max\":%u,"
			       "\"lbtab_free\":%llu,\"lbtab_max\":%u}\n",
			       id, u.updates, (unsigned long long)u.last.total_us,
			       (unsigned long long)u.last.settle_us,
			       (unsigned long long)u.last.ep_free, u.last.ep_max,
			       (unsigned long long)u.last.tab_free, u.last.tab_max);
		fflush(stdout);
	}
	if (err == -EINVAL) {
		x2b_err("update-stream: request line too long");
		status = X2B_EXIT_USAGE;
	}
	x2b_dns_free(dns);
	x2b_updater_close(&u);
	return status;
}
