// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A strict reader for the ustar archives `xds2bpf compile -o bundle.tar` writes
 * (Sources/Codegen/Bundle/BundleWriter.swift): members are read from memory,
 * nothing is written to disk. Accepted: POSIX ustar headers with a valid
 * checksum, regular files ('0' or NUL) and directories ('5'), every member
 * under one top-level directory, relative names without empty, "." or ".."
 * components, each name once, sizes within the limits, two zero blocks at the
 * end. Everything else (links, devices, FIFOs, pax/GNU extensions, data after
 * the end) is refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

#define BLOCK 512

/* Octal field: digits, then NUL or space padding only; no overflow. */
static int tar_octal(const unsigned char *f, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < n && f[i] == ' ')
		i++;
	if (i == n || f[i] < '0' || f[i] > '7')
		return -EINVAL;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v > (UINT64_MAX >> 3))
			return -EINVAL;
		v = (v << 3) | (uint64_t)(f[i] - '0');
	}
	for (; i < n; i++)
		if (f[i] != '\0' && f[i] != ' ')
			return -EINVAL;
	*out = v;
	return 0;
}

static bool block_is_zero(const unsigned char *h)
{
	for (size_t i = 0; i < BLOCK; i++)
		if (h[i])
			return false;
	return true;
}

static int tar_fail(const char *what, size_t off, const char *why)
{
	x2b_err("%s: not a valid bundle archive: %s at offset %zu", what, why, off);
	return X2B_EXIT_REJECT;
}

void x2b_tar_free(struct x2b_tar *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->members[i].name);
	free(t->members);
	memset(t, 0, sizeof(*t));
}

const struct x2b_tar_member *x2b_tar_find(const struct x2b_tar *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->members[i].name, name))
			return &t->members[i];
	return NULL;
}

int x2b_tar_parse(const void *buf, size_t len, const char *what, struct x2b_tar *t)
{
	const unsigned char *p = buf;
	size_t off = 0, rootlen = 0;
	char root[101] = "";
	int err = X2B_EXIT_REJECT;

	memset(t, 0, sizeof(*t));
	if (len % BLOCK)
		return tar_fail(what, len, "size is not a multiple of 512");
	for (;;) {
		const unsigned char *h = p + off;
		char name[256 + 1], *rel;
		size_t nlen, plen, used;
		uint64_t size, sum, want = 0;
		unsigned char type;
		struct x2b_tar_member *mb, *grown;

		if (len - off < BLOCK) {
			tar_fail(what, off, "no end-of-archive marker");
			goto fail;
		}
		if (block_is_zero(h)) {
			/* end: the rest (at least one more zero block) must be zero */
			if (len - off < 2 * BLOCK) {
				tar_fail(what, off, "truncated end-of-archive marker");
				goto fail;
			}
			for (size_t o = off; o < len; o += BLOCK) {
				if (!block_is_zero(p + o)) {
					tar_fail(what, o, "data after the end-of-archive marker");
					goto fail;
				}
			}
			break;
		}
		if (memcmp(h + 257, "ustar", 6) || memcmp(h + 263, "00", 2)) {
			tar_fail(what, off, "not a POSIX ustar header");
			goto fail;
		}
		if (tar_octal(h + 148, 8, &sum)) {
			tar_fail(what, off, "bad header checksum field");
			goto fail;
		}
		for (size_t i = 0; i < BLOCK; i++)
			want += (i >= 148 && i < 156) ? ' ' : h[i];
		if (sum != want) {
			tar_fail(what, off, "header checksum mismatch");
			goto fail;
		}
		if (tar_octal(h + 124, 12, &size)) {
			tar_fail(what, off, "bad size field");
			goto fail;
		}
		type = h[156];
		if (type != '0' && type != '\0' && type != '5') {
			x2b_err("%s: member at offset %zu has type '%c': only regular files and "
				"directories are allowed in a bundle archive",
				what, off, type >= 0x20 && type < 0x7f ? type : '?');
			goto fail;
		}
		nlen = strnlen((const char *)h, 100);
		plen = strnlen((const char *)h + 345, 155);
		if (plen) {
			memcpy(name, h + 345, plen);
			name[plen] = '/';
			memcpy(name + plen + 1, h, nlen);
			name[plen + 1 + nlen] = '\0';
		} else {
			memcpy(name, h, nlen);
			name[nlen] = '\0';
		}
		if (type == '5') {
			size_t l = strlen(name);

			if (size) {
				tar_fail(what, off, "directory member with data");
				goto fail;
			}
			if (l && name[l - 1] == '/')
				name[l - 1] = '\0';
		}
		/* one top-level directory, named by the first member */
		if (!*name || name[0] == '/' || !x2b_path_is_safe(name)) {
			x2b_err("%s: unsafe member name '%s' (absolute, empty or with '..')", what,
				name);
			goto fail;
		}
		if (!rootlen) {
			rel = strchr(name, '/');
			rootlen = rel ? (size_t)(rel - name) : strlen(name);
			if (rootlen >= sizeof(root)) {
				tar_fail(what, off, "top-level directory name too long");
				goto fail;
			}
			memcpy(root, name, rootlen);
			root[rootlen] = '\0';
		}
		if (strncmp(name, root, rootlen) ||
		    (name[rootlen] != '/' && name[rootlen] != '\0')) {
			x2b_err("%s: member '%s' is not under the archive's top-level directory '%s'",
				what, name, root);
			goto fail;
		}
		rel = name + rootlen + (name[rootlen] == '/');
		if (!*rel && type != '5') {
			x2b_err("%s: member '%s' is not under a top-level directory", what, name);
			goto fail;
		}
		off += BLOCK;
		if (size > X2B_MAX_FILE_SIZE || size > len - off) {
			tar_fail(what, off - BLOCK,
				 "member larger than the archive or the size limit");
			goto fail;
		}
		used = (size_t)size;
		if (type != '5') {
			if (x2b_tar_find(t, rel)) {
				x2b_err("%s: member '%s' appears twice", what, name);
				goto fail;
			}
			if (t->n >= X2B_MAX_FILES) {
				tar_fail(what, off, "too many members");
				goto fail;
			}
			grown = realloc(t->members, (t->n + 1) * sizeof(*t->members));
			if (!grown) {
				err = X2B_EXIT_INTERNAL;
				goto fail;
			}
			t->members = grown;
			mb = &t->members[t->n];
			memset(mb, 0, sizeof(*mb));
			mb->name = strdup(rel);
			if (!mb->name) {
				err = X2B_EXIT_INTERNAL;
				goto fail;
			}
			mb->data = p + off;
			mb->size = used;
			t->n++;
		}
		/* padding to the next block; size <= len - off and len % 512 == 0 */
		off += used;
		if (off % BLOCK)
			off += BLOCK - off % BLOCK;
	}
	return 0;
fail:
	x2b_tar_free(t);
	return err;
}
