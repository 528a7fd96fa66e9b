// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer harness for the loader's bundle reading: the ustar reader, the
 * manifest (protobuf-c decode, digest, strings, counts, sizes), every file's
 * size and sha256, map-image contents and the tail-call table — the real
 * functions of bpf-runtime/loader/{bundle,tar}.c, which need no kernel.
 *
 * Input: one flags byte, then a bundle archive (what `xds2bpf compile -o
 * bundle.tar` writes). Flag bit 0 skips the manifest digest and bit 1 the
 * files' sha256, so that mutations of manifest.pb and of map images reach
 * the checks behind the digests; bit 2 rewrites the checksum of every block
 * that looks like a ustar header first, so that mutated header fields (sizes,
 * types, names) reach the reader's checks behind the checksum. Members are
 * copied into buffers of their own size, as a directory bundle reads them,
 * so that a read past the end of one is caught.
 *
 *
 * Flag bit 3 fuzzes `update` instead (bpf-runtime/loader/delta.c): the input
 * is then u32 manifest length, manifest.pb, u32 max_entries of x2b_ep and of
 * x2b_lbtab, u32 length of live rows (struct x2b_cluster records, one per
 * manifest cluster, missing ones zero), the rows, and an EndpointDelta. The
 * delta is decoded and validated against the manifest and planned against the
 * live rows; an accepted plan must place every range inside its map and
 * overlap neither the live ranges nor another new one. Flag bit 4: the rest
 * is a flat JSON object (versions.json, update.json).
 *
 *   make fuzz-loader FUZZ_SECONDS=600      (mk/fuzz.mk)
 *   make fuzz-loader-replay                seeds and regressions once each
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "x2b_abi.h"
#include "loader.h"

bool x2b_verbose;
bool x2b_json;

/* Messages are formatted (so bad format arguments show up) but not printed. */
static void sink(const char *fmt, va_list ap)
{
	static int quiet = -1;
	char buf[512];

	if (quiet < 0)
		quiet = getenv("X2B_FUZZ_VERBOSE") == NULL;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (!quiet)
		fprintf(stderr, "loader: %s\n", buf);
}

void x2b_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sink(fmt, ap);
	va_end(ap);
}

void x2b_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sink(fmt, ap);
	va_end(ap);
}

void x2b_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sink(fmt, ap);
	va_end(ap);
}

static void fix_checksums(unsigned char *p, size_t len)
{
	for (size_t off = 0; off + 512 <= len; off += 512) {
		unsigned char *h = p + off;
		unsigned int sum = 0;

		if (memcmp(h + 257, "ustar", 6))
			continue;
		memset(h + 148, ' ', 8);
		for (size_t i = 0; i < 512; i++)
			sum += h[i];
		snprintf((char *)h + 148, 8, "%06o", sum & 0777777);
		h[155] = ' ';
	}
}

static uint32_t take_u32(const uint8_t **p, size_t *n)
{
	uint32_t v = 0;

	if (*n < 4) {
		*n = 0;
		return 0;
	}
	memcpy(&v, *p, 4);
	*p += 4;
	*n -= 4;
	return v;
}

struct span {
	uint64_t first, len;
};

static bool overlaps(struct span a, struct span b)
{
	return a.len && b.len && a.first < b.first + b.len && b.first < a.first + a.len;
}

/* Every range of the plan inside its map, disjoint from the live ranges and from each other. */
static void check_plan(const x2b_delta *d, const struct x2b_cluster *live, size_t n,
		       const struct x2b_update_plan *p, uint32_t ep_max, uint32_t tab_max)
{
	for (size_t k = 0; k < d->n_clusters; k++) {
		const struct x2b_cluster *r = &p->rows[k];

		if (r->nlevels != d->clusters[k]->n_levels || r->nlevels > X2B_MAX_PRIORITIES)
			abort();
		for (uint32_t li = 0; li < r->nlevels; li++) {
			const struct x2b_level *l = &r->levels[li];
			struct span e = { l->first, l->count }, t = { l->table_first, l->table_len };

			if (e.first + e.len > ep_max || t.first + t.len > tab_max)
				abort();
			if (l->count * sizeof(struct x2b_endpoint) != d->clusters[k]->levels[li]->endpoints.len)
				abort();
			for (size_t i = 0; i < n; i++) {
				for (uint32_t lj = 0; lj < live[i].nlevels; lj++) {
					const struct x2b_level *o = &live[i].levels[lj];

					if (overlaps(e, (struct span){ o->first, o->count }) ||
					    overlaps(t, (struct span){ o->table_first, o->table_len }))
						abort();
				}
			}
			for (size_t k2 = 0; k2 <= k; k2++) {
				for (uint32_t lj = 0; lj < p->rows[k2].nlevels; lj++) {
					const struct x2b_level *o = &p->rows[k2].levels[lj];

					if (k2 == k && lj == li)
						break;
					if (overlaps(e, (struct span){ o->first, o->count }) ||
					    overlaps(t, (struct span){ o->table_first, o->table_len }))
						abort();
				}
			}
		}
	}
}

static void fuzz_delta(const uint8_t *p, size_t n)
{
	struct x2b_space eps, tabs;
	struct x2b_update_plan plan = {};
	struct x2b_cluster *live = NULL;
	x2b_manifest *m = NULL;
	x2b_delta *d = NULL;
	uint32_t mlen, ep_max, tab_max, live_len, *ids = NULL;

	mlen = take_u32(&p, &n);
	if (mlen > n)
		return;
	m = xds2bpf__bundle__v1__manifest__unpack(NULL, mlen, p);
	p += mlen;
	n -= mlen;
	if (!m || x2b_manifest_check_strings(m))
		goto out;
	ep_max = take_u32(&p, &n);
	tab_max = take_u32(&p, &n);
	live_len = take_u32(&p, &n);
	if (live_len > n)
		goto out;
	live = calloc(m->n_clusters ? m->n_clusters : 1, sizeof(*live));
	ids = calloc(m->n_clusters ? m->n_clusters : 1, sizeof(*ids));
	if (!live || !ids)
		goto out;
	for (size_t i = 0; i < m->n_clusters; i++) {
		ids[i] = m->clusters[i]->index;
		if ((i + 1) * sizeof(*live) <= live_len)
			memcpy(&live[i], p + i * sizeof(*live), sizeof(*live));
	}
	p += live_len;
	n -= live_len;
	if (x2b_delta_decode(p, n, m, &d))
		goto out;
	x2b_space_init(&eps, "x2b_ep", ep_max);
	x2b_space_init(&tabs, "x2b_lbtab", tab_max);
	if (!x2b_delta_plan(d, ids, live, m->n_clusters, &eps, &tabs, &plan))
		check_plan(d, live, m->n_clusters, &plan, ep_max, tab_max);
	x2b_update_plan_free(&plan);
	x2b_space_free(&eps);
	x2b_space_free(&tabs);
out:
	x2b_delta_free(d);
	free(live);
	free(ids);
	if (m)
		xds2bpf__bundle__v1__manifest__free_unpacked(m, NULL);
}

static void fuzz_json(const uint8_t *p, size_t n)
{
	struct x2b_kv *kv;
	size_t nkv;
	char *copy = malloc(n ? n : 1);

	if (!copy)
		return;
	memcpy(copy, p, n); /* exact size: a read past the text is caught */
	if (!x2b_json_flat_parse(copy, n, &kv, &nkv)) {
		for (size_t i = 0; i < nkv; i++)
			if (strlen(kv[i].key) > n || strlen(kv[i].value) > n)
				abort();
		x2b_json_flat_free(kv, nkv);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct x2b_bundle b;
	unsigned char *copy = NULL;
	const void *tar = data + 1;

	if (size < 1)
		return 0;
	if (data[0] & 8U) {
		fuzz_delta(data + 1, size - 1);
		return 0;
	}
	if (data[0] & 16U) {
		fuzz_json(data + 1, size - 1);
		return 0;
	}
	if (data[0] & 4U) {
		copy = malloc(size - 1 ? size - 1 : 1);
		if (!copy)
			return 0;
		memcpy(copy, data + 1, size - 1);
		fix_checksums(copy, size - 1);
		tar = copy;
	}
	x2b_bundle_open_mem(tar, size - 1, "fuzz.tar", (data[0] & 3U) | X2B_COPY_MEMBERS, &b);
	/* whatever was accepted must be usable: every listed file present and in range */
	if (b.m) {
		for (size_t i = 0; i < b.m->n_maps; i++) {
			const x2b_mmap *mm = b.m->maps[i];
			const struct x2b_file *f = *mm->image ? x2b_bundle_file(&b, mm->image) : NULL;
			volatile unsigned char sum = 0;

			if (!f || f->size != (size_t)mm->entries * ((size_t)mm->key_size + mm->value_size))
				continue;
			for (size_t k = 0; k < f->size; k++)
				sum += ((const unsigned char *)f->data)[k];
		}
	}
	x2b_bundle_close(&b);
	free(copy);
	return 0;
}
