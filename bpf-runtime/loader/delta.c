// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Endpoint deltas (xds2bpf.bundle.v1.EndpointDelta), all without the kernel:
 * decoding and validation against the loaded manifest, the free-space model of
 * x2b_ep / x2b_lbtab (first fit over the ranges the live cluster rows use) and
 * the plan of an update (the new rows). update.c reads the live rows from the
 * pinned maps and writes the plan; the fuzzer drives these functions directly.
 * Also the strict reader of flat JSON objects (versions.json, update.json).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "x2b_abi.h"
#include "loader.h"

#define X2B_EP_SIZE sizeof(struct x2b_endpoint)
#define X2B_SLOT_SIZE sizeof(struct x2b_slot)
#define X2B_MAX_RING (1U << X2B_RING_SEARCH_STEPS)

_Static_assert(sizeof(struct x2b_endpoint) == 32, "x2b_endpoint layout");
_Static_assert(sizeof(struct x2b_slot) == 8, "x2b_slot layout");
_Static_assert(sizeof(struct x2b_cluster) == 16 + 20 * X2B_MAX_PRIORITIES, "x2b_cluster layout");

static bool hex64(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* The manifest's cluster with this id (index field), or NULL. */
static const Xds2bpf__Bundle__V1__Cluster *manifest_cluster(const x2b_manifest *m, uint32_t id)
{
	if (id < m->n_clusters && m->clusters[id]->index == id)
		return m->clusters[id];
	for (size_t i = 0; i < m->n_clusters; i++)
		if (m->clusters[i]->index == id)
			return m->clusters[i];
	return NULL;
}

/* One level: record sizes, endpoint families, slot indexes, cumulative load. */
static int check_level(const x2b_dcluster *c, size_t li, uint32_t prev_load)
{
	const x2b_dlevel *l = c->levels[li];
	size_t neps = l->endpoints.len / X2B_EP_SIZE, nslots = l->table.len / X2B_SLOT_SIZE;
	int bad = 0;

	if (l->endpoints.len % X2B_EP_SIZE) {
		x2b_err("delta: cluster %u level %zu: endpoints are %zu bytes, not a multiple of "
			"struct x2b_endpoint (%zu bytes)",
			c->cluster, li, l->endpoints.len, X2B_EP_SIZE);
		return 1;
	}
	if (l->table.len % X2B_SLOT_SIZE) {
		x2b_err("delta: cluster %u level %zu: table is %zu bytes, not a multiple of "
			"struct x2b_slot (%zu bytes)",
			c->cluster, li, l->table.len, X2B_SLOT_SIZE);
		return 1;
	}
	if (neps > X2B_MAX_ENTRIES_LIMIT || nslots > X2B_MAX_ENTRIES_LIMIT) {
		x2b_err("delta: cluster %u level %zu: %zu endpoints, %zu slots: too many",
			c->cluster, li, neps, nslots);
		return 1;
	}
	if (l->cum_load > 100 || l->cum_load < prev_load) {
		x2b_err("delta: cluster %u level %zu: cumulative load %u after %u (must not decrease, "
			"at most 100)",
			c->cluster, li, l->cum_load, prev_load);
		bad++;
	}
	for (size_t i = 0; i < neps; i++) {
		struct x2b_endpoint ep;

		memcpy(&ep, l->endpoints.data + i * X2B_EP_SIZE, sizeof(ep));
		if (ep.family != X2B_FAM_INET4 && ep.family != X2B_FAM_INET6) {
			x2b_err("delta: cluster %u level %zu endpoint %zu: family %u (4 or 6)",
				c->cluster, li, i, ep.family);
			return 1;
		}
	}
	for (size_t i = 0; i < nslots; i++) {
		struct x2b_slot s;

		memcpy(&s, l->table.data + i * X2B_SLOT_SIZE, sizeof(s));
		if (s.ep >= neps) {
			x2b_err("delta: cluster %u level %zu slot %zu: endpoint %u out of range (the level "
				"has %zu endpoints)",
				c->cluster, li, i, s.ep, neps);
			return 1;
		}
	}
	return bad;
}

static int check_delta(const x2b_delta *d, const x2b_manifest *m)
{
	unsigned char *seen = NULL;
	int bad = 0;

	if (d->format_version != X2B_DELTA_FORMAT_VERSION) {
		x2b_err("delta format version %u is not supported (this loader reads version %d)",
			d->format_version, X2B_DELTA_FORMAT_VERSION);
		return X2B_EXIT_REJECT;
	}
	if (d->abi_version != X2B_ABI_VERSION) {
		x2b_err("delta ABI version %u does not match this loader's ABI version %d",
			d->abi_version, X2B_ABI_VERSION);
		return X2B_EXIT_REJECT;
	}
	/* an empty snapshot_sha256: the agent names the snapshot after the switch */
	if (!hex64(d->base_code_sha256) || (d->snapshot_sha256[0] && !hex64(d->snapshot_sha256))) {
		x2b_err("delta: base_code_sha256 and snapshot_sha256 must be 64 lowercase hex digits "
			"(snapshot_sha256 may be empty)");
		return X2B_EXIT_REJECT;
	}
	if (strcmp(d->base_code_sha256, m->code_sha256)) {
		x2b_err("delta is for code %.12s..., the loaded bundle has code %.12s...: it applies to "
			"another bundle (compile against the loaded one, or replace)",
			d->base_code_sha256, m->code_sha256);
		return X2B_EXIT_REJECT;
	}
	if (d->n_clusters > m->n_clusters) {
		x2b_err("delta: %zu clusters, the bundle has %zu", d->n_clusters, m->n_clusters);
		return X2B_EXIT_REJECT;
	}
	seen = calloc(m->n_clusters ? m->n_clusters : 1, 1);
	if (!seen)
		return X2B_EXIT_INTERNAL;
	for (size_t k = 0; k < d->n_clusters; k++) {
		const x2b_dcluster *c = d->clusters[k];
		const Xds2bpf__Bundle__V1__Cluster *mc;
		uint32_t prev = 0;

		if (c->cluster >= m->n_clusters || !(mc = manifest_cluster(m, c->cluster))) {
			x2b_err("delta: unknown cluster %u (the bundle has %zu clusters)",
				c->cluster, m->n_clusters);
			bad++;
			continue;
		}
		if (strcmp(c->name, mc->name)) {
			char q[80];
			size_t i = 0;

			/* the delta's name is unchecked text: shown printable and short */
			for (; c->name[i] && i < 64; i++)
				q[i] = (unsigned char)c->name[i] >= 0x20 &&
						       (unsigned char)c->name[i] < 0x7f
					       ? c->name[i]
					       : '?';
			q[i] = '\0';
			x2b_err("delta: cluster %u is named '%s' in the delta and '%s' in the bundle",
				c->cluster, q, mc->name);
			bad++;
			continue;
		}
		if (seen[c->cluster]++) {
			x2b_err("delta: cluster %u ('%s') is listed twice", c->cluster, mc->name);
			bad++;
			continue;
		}
		if (c->n_levels > X2B_MAX_PRIORITIES) {
			x2b_err("delta: cluster %u ('%s') has %zu priority levels, at most %d",
				c->cluster, mc->name, c->n_levels, X2B_MAX_PRIORITIES);
			bad++;
			continue;
		}
		for (size_t li = 0; li < c->n_levels; li++) {
			if (check_level(c, li, prev)) {
				bad++;
				break;
			}
			prev = c->levels[li]->cum_load;
		}
		if (c->n_levels && c->levels[c->n_levels - 1]->cum_load != 100) {
			x2b_err("delta: cluster %u ('%s'): the last level's cumulative load is %u, not 100",
				c->cluster, mc->name, c->levels[c->n_levels - 1]->cum_load);
			bad++;
		}
	}
	free(seen);
	return bad ? X2B_EXIT_REJECT : 0;
}

int x2b_delta_decode(const void *data, size_t len, const x2b_manifest *m, x2b_delta **out)
{
	x2b_delta *d;
	int err;

	*out = NULL;
	if (len > X2B_MAX_DELTA_SIZE) {
		x2b_err("delta: %zu bytes, at most %llu", len, X2B_MAX_DELTA_SIZE);
		return X2B_EXIT_REJECT;
	}
	d = xds2bpf__bundle__v1__endpoint_delta__unpack(NULL, len, data);
	if (!d) {
		x2b_err("delta: not a valid xds2bpf.bundle.v1.EndpointDelta");
		return X2B_EXIT_REJECT;
	}
	err = check_delta(d, m);
	if (err) {
		x2b_delta_free(d);
		return err;
	}
	*out = d;
	return 0;
}

void x2b_delta_free(x2b_delta *d)
{
	if (d)
		xds2bpf__bundle__v1__endpoint_delta__free_unpacked(d, NULL);
}

/* --- free space ----------------------------------------------------------------- */

void x2b_space_init(struct x2b_space *s, const char *map, uint32_t max)
{
	memset(s, 0, sizeof(*s));
	s->map = map;
	s->max = max;
}

void x2b_space_free(struct x2b_space *s)
{
	free(s->used);
	s->used = NULL;
	s->n = s->cap = 0;
}

/* Inserts keeping the ranges sorted by first index (overlaps are kept as they are). */
static int space_insert(struct x2b_space *s, uint32_t first, uint32_t len)
{
	size_t pos = s->n;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct x2b_range *r = realloc(s->used, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		s->used = r;
		s->cap = cap;
	}
	while (pos > 0 && s->used[pos - 1].first > first)
		pos--;
	memmove(&s->used[pos + 1], &s->used[pos], (s->n - pos) * sizeof(*s->used));
	s->used[pos] = (struct x2b_range){ first, len };
	s->n++;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct x2b_range *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* Live rows are marked in any order: appended, sorted once before the first gap walk. */
static void space_sort(struct x2b_space *s)
{
	if (s->unsorted)
		qsort(s->used, s->n, sizeof(*s->used), range_cmp);
	s->unsorted = false;
}

int x2b_space_use(struct x2b_space *s, uint32_t first, uint32_t len)
{
	if ((uint64_t)first + len > s->max)
		return -ERANGE;
	if (!len)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct x2b_range *r = realloc(s->used, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		s->used = r;
		s->cap = cap;
	}
	if (s->n && s->used[s->n - 1].first > first)
		s->unsorted = true;
	s->used[s->n++] = (struct x2b_range){ first, len };
	return 0;
}

/* Calls fn for every free range in order; stops when it returns true. */
static bool space_gaps(struct x2b_space *s, bool (*fn)(void *, uint32_t, uint32_t), void *arg)
{
	uint64_t at = 0;

	space_sort(s);
	for (size_t i = 0; i <= s->n; i++) {
		uint64_t next = i < s->n ? s->used[i].first : s->max;

		if (next > at && fn(arg, (uint32_t)at, (uint32_t)(next - at)))
			return true;
		if (i < s->n && (uint64_t)s->used[i].first + s->used[i].len > at)
			at = (uint64_t)s->used[i].first + s->used[i].len;
	}
	return false;
}

struct fit {
	uint32_t want, first;
	uint64_t total;
	uint32_t largest;
};

static bool fit_first(void *arg, uint32_t first, uint32_t len)
{
	struct fit *f = arg;

	if (len < f->want)
		return false;
	f->first = first;
	return true;
}

static bool fit_count(void *arg, uint32_t first, uint32_t len)
{
	struct fit *f = arg;

	(void)first;
	f->total += len;
	if (len > f->largest)
		f->largest = len;
	return false;
}

int x2b_space_alloc(struct x2b_space *s, uint32_t len, uint32_t *first)
{
	struct fit f = { .want = len };

	if (!len) {
		*first = 0;
		return 0;
	}
	if (!space_gaps(s, fit_first, &f))
		return -ENOSPC;
	*first = f.first;
	return space_insert(s, f.first, len);
}

uint64_t x2b_space_unused(struct x2b_space *s)
{
	struct fit f = {};

	space_gaps(s, fit_count, &f);
	return f.total;
}

uint32_t x2b_space_largest(struct x2b_space *s)
{
	struct fit f = {};

	space_gaps(s, fit_count, &f);
	return f.largest;
}

/* --- the plan ------------------------------------------------------------------- */

void x2b_update_plan_free(struct x2b_update_plan *p)
{
	free(p->rows);
	memset(p, 0, sizeof(*p));
}

static const struct x2b_cluster *live_row(const uint32_t *ids, const struct x2b_cluster *live,
					  size_t n, uint32_t id)
{
	if (id < n && ids[id] == id)
		return &live[id];
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return &live[i];
	return NULL;
}

static int no_fit(struct x2b_space *s, const char *what, uint64_t free_before, uint64_t need)
{
	x2b_err("does not fit: %s has %llu %s free (largest free range %u), %llu needed; a full "
		"replace is needed",
		s->map, (unsigned long long)free_before, what, x2b_space_largest(s),
		(unsigned long long)need);
	return X2B_EXIT_NO_FIT;
}

int x2b_delta_plan(const x2b_delta *d, const uint32_t *ids, const struct x2b_cluster *live,
		   size_t n, struct x2b_space *ep, struct x2b_space *tab, struct x2b_update_plan *p)
{
	uint64_t need_ep = 0, need_tab = 0;
	int err;

	memset(p, 0, sizeof(*p));
	/* 1. what the live rows use */
	for (size_t i = 0; i < n; i++) {
		const struct x2b_cluster *c = &live[i];

		if (c->nlevels > X2B_MAX_PRIORITIES) {
			x2b_err("live row of cluster %u has %u priority levels (corrupt maps?); cannot "
				"update in place: reload",
				ids[i], c->nlevels);
			return X2B_EXIT_NO_FIT;
		}
		for (uint32_t li = 0; li < c->nlevels; li++) {
			const struct x2b_level *l = &c->levels[li];

			err = x2b_space_use(ep, l->first, l->count);
			if (!err)
				err = x2b_space_use(tab, l->table_first, l->table_len);
			if (err == -ENOMEM)
				return X2B_EXIT_INTERNAL;
			if (err) {
				x2b_err("live row of cluster %u level %u: endpoints [%u, +%u) or table [%u, "
					"+%u) beyond %s (%u) / %s (%u); cannot update in place: reload",
					ids[i], li, l->first, l->count, l->table_first,
					l->table_len, ep->map, ep->max, tab->map, tab->max);
				return X2B_EXIT_NO_FIT;
			}
		}
	}
	p->ep_free = x2b_space_unused(ep);
	p->tab_free = x2b_space_unused(tab);

	/* 2. the new rows: checks that need the live row, and what they need */
	p->rows = calloc(d->n_clusters ? d->n_clusters : 1, sizeof(*p->rows));
	if (!p->rows)
		return X2B_EXIT_INTERNAL;
	for (size_t k = 0; k < d->n_clusters; k++) {
		const x2b_dcluster *c = d->clusters[k];
		const struct x2b_cluster *old = live_row(ids, live, n, c->cluster);
		struct x2b_cluster *row = &p->rows[k];

		if (!old) {
			x2b_err("delta: cluster %u has no live row", c->cluster);
			return X2B_EXIT_REJECT;
		}
		row->lb = old->lb;
		row->counter = old->counter;
		row->flags = old->flags;
		row->nlevels = (uint32_t)c->n_levels;
		for (size_t li = 0; li < c->n_levels; li++) {
			const x2b_dlevel *l = c->levels[li];
			size_t nslots = l->table.len / X2B_SLOT_SIZE;

			row->levels[li].cum_load = l->cum_load;
			row->levels[li].count = (uint32_t)(l->endpoints.len / X2B_EP_SIZE);
			row->levels[li].table_len = (uint32_t)nslots;
			need_ep += row->levels[li].count;
			need_tab += nslots;
			if (row->lb != X2B_LB_RING_HASH)
				continue;
			/* a ring is searched by hash: sorted, and within the search's reach */
			if (nslots > X2B_MAX_RING) {
				x2b_err("delta: cluster %u level %zu: a ring of %zu points, at most %u",
					c->cluster, li, nslots, X2B_MAX_RING);
				return X2B_EXIT_REJECT;
			}
			for (size_t i = 1; i < nslots; i++) {
				struct x2b_slot a, b;

				memcpy(&a, l->table.data + (i - 1) * X2B_SLOT_SIZE, sizeof(a));
				memcpy(&b, l->table.data + i * X2B_SLOT_SIZE, sizeof(b));
				if (b.hash < a.hash) {
					x2b_err("delta: cluster %u level %zu: ring hash points are not "
						"sorted (slot %zu)",
						c->cluster, li, i);
					return X2B_EXIT_REJECT;
				}
			}
		}
	}
	p->endpoints = need_ep;
	p->slots = need_tab;

	/* 3. first fit; ranges allocated here count as used */
	for (size_t k = 0; k < d->n_clusters; k++) {
		struct x2b_cluster *row = &p->rows[k];

		for (uint32_t li = 0; li < row->nlevels; li++) {
			struct x2b_level *l = &row->levels[li];

			err = x2b_space_alloc(ep, l->count, &l->first);
			if (err == -ENOSPC)
				return no_fit(ep, "endpoints", p->ep_free, need_ep);
			if (!err)
				err = x2b_space_alloc(tab, l->table_len, &l->table_first);
			if (err == -ENOSPC)
				return no_fit(tab, "slots", p->tab_free, need_tab);
			if (err)
				return X2B_EXIT_INTERNAL;
		}
	}
	return 0;
}

/* --- flat JSON objects ---------------------------------------------------------- */

#define X2B_JSON_MAX_KEYS 256

struct jp {
	const char *s;
	size_t i, n;
};

static void jp_ws(struct jp *p)
{
	while (p->i < p->n && strchr(" \t\r\n", p->s[p->i]) && p->s[p->i])
		p->i++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool jp_u4(struct jp *p, uint32_t *cp)
{
	*cp = 0;
	if (p->n - p->i < 4)
		return false;
	for (int k = 0; k < 4; k++) {
		int v = hexval(p->s[p->i++]);

		if (v < 0)
			return false;
		*cp = *cp << 4 | (uint32_t)v;
	}
	return true;
}

static size_t utf8_put(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string at p->i (the opening quote); the unescaped text, NUL-terminated. */
static char *jp_string(struct jp *p)
{
	size_t start, o = 0;
	char *out;

	if (p->i >= p->n || p->s[p->i] != '"')
		return NULL;
	start = ++p->i;
	/* unescaping never grows the text (\uXXXX: 6 bytes -> at most 3; pairs 12 -> 4) */
	out = malloc(p->n - start + 1);
	if (!out)
		return NULL;
	while (p->i < p->n) {
		unsigned char c = (unsigned char)p->s[p->i++];
		uint32_t cp, lo;

		if (c == '"') {
			out[o] = '\0';
			if (!x2b_utf8_valid(out, o) || strlen(out) != o)
				break; /* invalid UTF-8 or an embedded NUL */
			return out;
		}
		if (c < 0x20)
			break;
		if (c != '\\') {
			out[o++] = (char)c;
			continue;
		}
		if (p->i >= p->n)
			break;
		c = (unsigned char)p->s[p->i++];
		switch (c) {
		case '"':
		case '\\':
		case '/':
			out[o++] = (char)c;
			continue;
		case 'b':
			out[o++] = '\b';
			continue;
		case 'f':
			out[o++] = '\f';
			continue;
		case 'n':
			out[o++] = '\n';
			continue;
		case 'r':
			out[o++] = '\r';
			continue;
		case 't':
			out[o++] = '\t';
			continue;
		case 'u':
			if (!jp_u4(p, &cp))
				goto bad;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				goto bad;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
					goto bad;
				p->i += 2;
				if (!jp_u4(p, &lo) || lo < 0xdc00 || lo > 0xdfff)
					goto bad;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			o += utf8_put(out + o, cp);
			continue;
		default:
			goto bad;
		}
	}
bad:
	free(out);
	return NULL;
}

/* A number, true, false or null: the text as written. */
static char *jp_scalar(struct jp *p)
{
	static const char *const words[] = { "true", "false", "null" };
	size_t start = p->i, d;
	char *out;

	for (size_t w = 0; w < 3; w++) {
		size_t n = strlen(words[w]);

		if (p->n - p->i >= n && !memcmp(p->s + p->i, words[w], n)) {
			p->i += n;
			goto done;
		}
	}
	if (p->i < p->n && p->s[p->i] == '-')
		p->i++;
	if (p->i < p->n && p->s[p->i] == '0') {
		p->i++;
	} else {
		for (d = 0; p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9'; d++)
			p->i++;
		if (!d)
			return NULL;
	}
	if (p->i < p->n && p->s[p->i] == '.') {
		p->i++;
		for (d = 0; p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9'; d++)
			p->i++;
		if (!d)
			return NULL;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		for (d = 0; p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9'; d++)
			p->i++;
		if (!d)
			return NULL;
	}
done:
	out = malloc(p->i - start + 1);
	if (!out)
		return NULL;
	memcpy(out, p->s + start, p->i - start);
	out[p->i - start] = '\0';
	return out;
}

void x2b_json_flat_free(struct x2b_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

int x2b_json_flat_parse(const char *text, size_t len, struct x2b_kv **out, size_t *nout)
{
	struct jp p = { text, 0, len };
	struct x2b_kv *kv;
	size_t n = 0;

	*out = NULL;
	*nout = 0;
	kv = calloc(X2B_JSON_MAX_KEYS, sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	jp_ws(&p);
	if (p.i >= p.n || p.s[p.i++] != '{')
		goto bad;
	jp_ws(&p);
	if (p.i < p.n && p.s[p.i] == '}') {
		p.i++;
		goto end;
	}
	for (;;) {
		if (n == X2B_JSON_MAX_KEYS)
			goto bad;
		jp_ws(&p);
		kv[n].key = jp_string(&p);
		if (!kv[n].key)
			goto bad;
		n++;
		jp_ws(&p);
		if (p.i >= p.n || p.s[p.i++] != ':')
			goto bad;
		jp_ws(&p);
		if (p.i < p.n && p.s[p.i] == '"') {
			kv[n - 1].value = jp_string(&p);
			kv[n - 1].is_string = true;
		} else {
			kv[n - 1].value = jp_scalar(&p);
		}
		if (!kv[n - 1].value)
			goto bad;
		jp_ws(&p);
		if (p.i < p.n && p.s[p.i] == ',') {
			p.i++;
			continue;
		}
		if (p.i < p.n && p.s[p.i] == '}') {
			p.i++;
			break;
		}
		goto bad;
	}
end:
	jp_ws(&p);
	if (p.i != p.n)
		goto bad;
	*out = kv;
	*nout = n;
	return 0;
bad:
	x2b_json_flat_free(kv, n);
	return -EBADMSG;
}
