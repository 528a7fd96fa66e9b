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
 *   make fuzz-loader FUZZ_SECONDS=600      (mk/fuzz.mk)
 *   make fuzz-loader-replay                seeds and regressions once each
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct x2b_bundle b;
	unsigned char *copy = NULL;
	const void *tar = data + 1;

	if (size < 1)
		return 0;
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
