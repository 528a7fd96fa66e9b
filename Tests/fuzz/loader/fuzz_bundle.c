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
 * the checks behind the digests.
 *
 *   make fuzz-loader FUZZ_SECONDS=600      (mk/fuzz.mk)
 *   make fuzz-loader-replay                seeds and regressions once each
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct x2b_bundle b;

	if (size < 1)
		return 0;
	x2b_bundle_open_mem(data + 1, size - 1, "fuzz.tar", data[0] & 3U, &b);
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
	return 0;
}
