/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The BPF runtime headers (bpf-runtime/include) compiled for user space, for
 * the libFuzzer harnesses of their parsers (Tests/fuzz/http, and any later
 * one): include this instead of x2b_prelude.h, then the header to test.
 *
 * It includes the real x2b_prelude.h (UAPI, x2b_abi.h and its layout asserts)
 * with libbpf's bpf_helpers.h held back: that file declares every helper as a
 * pointer to a kernel address. In its place come libbpf's attribute macros and
 * user-space versions of the helpers the runtime headers call, with the
 * kernel's semantics (bpf_loop's bound and return value, array maps by index,
 * hash maps empty). A helper that is not here is a compile error, never a call
 * through a bogus pointer.
 *
 * Maps: the generated map definitions (struct { __uint(type, ...); ... } name)
 * compile as they are; a harness binds each one to zeroed storage with
 * X2B_UMAP_BIND(name) before the first lookup. Per-CPU maps have one CPU.
 * A lookup in a map that was not bound aborts: the harness missed one.
 */
#ifndef X2B_USER_BPF_H
#define X2B_USER_BPF_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libbpf's bpf_helpers.h, minus the helper table (see above). */
#define __BPF_HELPERS__
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name
#define __array(name, val) typeof(val) *name[]
#define SEC(name)
#undef __always_inline
#define __always_inline inline __attribute__((always_inline))
#define __noinline __attribute__((noinline))

#include "x2b_prelude.h"

/* include/linux/bpf.h */
#define X2B_BPF_MAX_LOOPS (8 * 1024 * 1024)

/* ---- Maps ------------------------------------------------------------------ */

struct x2b_umap {
	const void *map; /* the generated definition, by address */
	const char *name;
	__u32 type;
	__u32 key_size, value_size, max_entries;
	unsigned char *data; /* arrays: max_entries values */
};

#define X2B_UMAP_MAX 64
static struct x2b_umap x2b_umaps[X2B_UMAP_MAX];
static unsigned x2b_umap_count;

/* The sizes come from the definition itself: __uint(n, v) is int (*n)[v], __type(n, T) is T *n. */
#define X2B_UMAP_BIND(m)                                                           \
	x2b_umap_bind(&(m), #m, sizeof(*(m).type) / sizeof(int), sizeof(*(m).key), \
		      sizeof(*(m).value), sizeof(*(m).max_entries) / sizeof(int))

static inline struct x2b_umap *x2b_umap_find(const void *map)
{
	for (unsigned i = 0; i < x2b_umap_count; i++)
		if (x2b_umaps[i].map == map)
			return &x2b_umaps[i];
	return NULL;
}

static inline void x2b_umap_bind(const void *map, const char *name, __u32 type, __u32 key_size,
				 __u32 value_size, __u32 max_entries)
{
	struct x2b_umap *m = x2b_umap_find(map);

	if (m)
		return;
	if (x2b_umap_count == X2B_UMAP_MAX) {
		fprintf(stderr, "x2b_user_bpf: more than %d maps\n", X2B_UMAP_MAX);
		abort();
	}
	m = &x2b_umaps[x2b_umap_count++];
	*m = (struct x2b_umap){ .map = map,
				.name = name,
				.type = type,
				.key_size = key_size,
				.value_size = value_size,
				.max_entries = max_entries };
	if (type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY) {
		m->data = calloc(max_entries, value_size);
		if (!m->data) {
			perror("x2b_user_bpf");
			abort();
		}
	}
}

/* The value of an array map's entry (NULL past max_entries, as the kernel); hash maps are empty. */
static inline void *x2b_user_map_lookup_elem(const void *map, const void *key)
{
	struct x2b_umap *m = x2b_umap_find(map);
	__u32 k;

	if (!m) {
		fprintf(stderr, "x2b_user_bpf: lookup in a map the harness did not bind\n");
		abort();
	}
	if (!m->data)
		return NULL;
	memcpy(&k, key, sizeof(k));
	if (k >= m->max_entries)
		return NULL;
	return m->data + (size_t)k * m->value_size;
}

/* The storage of a bound map (a harness fills or inspects it). */
static inline void *x2b_umap_data(const void *map)
{
	struct x2b_umap *m = x2b_umap_find(map);

	return m ? m->data : NULL;
}

/* ---- Helpers --------------------------------------------------------------- */

/* kernel/bpf/bpf_iter.c: at most BPF_MAX_LOOPS calls; stops when the callback returns 1. */
static inline long x2b_user_loop(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags)
{
	long (*callback)(__u64, void *) = (long (*)(__u64, void *))callback_fn;
	__u32 i;

	if (flags)
		return -EINVAL;
	if (nr_loops > X2B_BPF_MAX_LOOPS)
		return -E2BIG;
	for (i = 0; i < nr_loops; i++) {
		long ret = callback(i, callback_ctx);

		/* The verifier only admits callbacks returning 0 or 1. */
		if (ret != 0 && ret != 1) {
			fprintf(stderr, "x2b_user_bpf: bpf_loop callback returned %ld\n", ret);
			abort();
		}
		if (ret)
			return i + 1;
	}
	return i;
}

/* Deterministic, so that an input replays the same way; harnesses set it per input. */
static __u32 x2b_user_prandom;

static inline __u32 x2b_user_get_prandom_u32(void)
{
	x2b_user_prandom = x2b_user_prandom * 1103515245u + 12345u;
	return x2b_user_prandom;
}

#define bpf_map_lookup_elem(map, key) x2b_user_map_lookup_elem(map, key)
#define bpf_loop(n, fn, ctx, flags) x2b_user_loop(n, (void *)(fn), ctx, flags)
#define bpf_get_prandom_u32() x2b_user_get_prandom_u32()

#endif /* X2B_USER_BPF_H */
