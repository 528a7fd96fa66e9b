// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Bundle checks: manifest versions, every file's size and sha256, paths, images. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "x2b_abi.h"
#include "loader.h"

#define X2B_MAX_FILE_SIZE (1ULL << 32)

int x2b_read_file(const char *path, void **data, size_t *len)
{
	struct stat st;
	size_t off = 0;
	char *buf = NULL;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto cleanup;
	}
	if ((unsigned long long)st.st_size > X2B_MAX_FILE_SIZE) {
		err = -EFBIG;
		goto cleanup;
	}
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto cleanup;
		}
		if (n == 0)
			break; /* truncated under us: the size check reports it */
		off += n;
	}
	*data = buf;
	*len = off;
	buf = NULL;
	err = 0;
cleanup:
	free(buf);
	close(fd);
	return err;
}

int x2b_manifest_read(const char *path, void **raw, size_t *len, x2b_manifest **m)
{
	int err;

	err = x2b_read_file(path, raw, len);
	if (err)
		return err;
	*m = xds2bpf__bundle__v1__manifest__unpack(NULL, *len, *raw);
	if (!*m) {
		free(*raw);
		*raw = NULL;
		return -EBADMSG;
	}
	return 0;
}

/* Relative, no empty, "." or ".." components: a bundle never points outside itself. */
static bool path_is_safe(const char *p)
{
	const char *c = p;

	if (!*p || *p == '/')
		return false;
	while (*c) {
		const char *e = strchrnul(c, '/');
		size_t n = e - c;

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c = *e ? e + 1 : e;
		if (*e && !*c)
			return false; /* trailing slash */
	}
	return true;
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return -EIO;
	for (unsigned int i = 0; i < mdlen; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	out[64] = '\0';
	return 0;
}

const struct x2b_file *x2b_bundle_file(const struct x2b_bundle *b, const char *path)
{
	for (size_t i = 0; i < b->nfiles; i++)
		if (!strcmp(b->files[i].path, path))
			return &b->files[i];
	return NULL;
}

const x2b_mprog *x2b_manifest_prog_for_attach(const x2b_manifest *m, int kind)
{
	for (size_t i = 0; i < m->n_programs; i++)
		if ((int)m->programs[i]->attach == kind)
			return m->programs[i];
	return NULL;
}

/* Reads every listed file and checks size and sha256; reports all mismatches. */
static int check_files(struct x2b_bundle *b)
{
	const x2b_manifest *m = b->m;
	char path[4096], hex[65];
	int bad = 0, err;

	b->files = calloc(m->n_files ? m->n_files : 1, sizeof(*b->files));
	if (!b->files)
		return X2B_EXIT_INTERNAL;
	for (size_t i = 0; i < m->n_files; i++) {
		const x2b_mfile *mf = m->files[i];
		struct x2b_file *f = &b->files[b->nfiles];

		if (!path_is_safe(mf->path)) {
			x2b_err("manifest lists an unsafe path '%s' (must be relative, without '..')", mf->path);
			bad++;
			continue;
		}
		if (x2b_bundle_file(b, mf->path)) {
			x2b_err("manifest lists '%s' twice", mf->path);
			bad++;
			continue;
		}
		if (x2b_path(path, sizeof(path), "%s/%s", b->dir, mf->path))
			return X2B_EXIT_USAGE;
		err = x2b_read_file(path, &f->data, &f->size);
		if (err == -ENOENT) {
			x2b_err("bundle is incomplete: '%s' is listed in the manifest but missing", mf->path);
			bad++;
			continue;
		}
		if (err) {
			x2b_err("cannot read '%s': %s", path, strerror(-err));
			if (err == -ENOMEM)
				return X2B_EXIT_INTERNAL;
			bad++;
			continue;
		}
		f->path = mf->path;
		b->nfiles++;
		if (f->size != mf->size) {
			x2b_err("'%s' has %zu bytes, the manifest says %llu (tampered or corrupt bundle)",
				mf->path, f->size, (unsigned long long)mf->size);
			bad++;
			continue;
		}
		if (sha256_hex(f->data, f->size, hex))
			return X2B_EXIT_INTERNAL;
		if (strcasecmp(hex, mf->sha256)) {
			x2b_err("'%s': sha256 mismatch (tampered or corrupt bundle): file %s, manifest %s",
				mf->path, hex, mf->sha256);
			bad++;
		}
	}
	return bad ? X2B_EXIT_REJECT : 0;
}

/* Cross-references inside the manifest: object, images, programs, tail calls. */
static int check_references(struct x2b_bundle *b)
{
	const x2b_manifest *m = b->m;
	int bad = 0;

	if (!*m->object) {
		x2b_err("manifest names no BPF object");
		return X2B_EXIT_REJECT;
	}
	if (!x2b_bundle_file(b, m->object)) {
		x2b_err("object '%s' is not listed in manifest.files", m->object);
		bad++;
	}
	if (*m->http_object && !x2b_bundle_file(b, m->http_object)) {
		x2b_err("HTTP object '%s' is not listed in manifest.files", m->http_object);
		bad++;
	}
	for (size_t i = 0; i < m->n_programs; i++) {
		const x2b_mprog *p = m->programs[i];

		if (!*p->name) {
			x2b_err("program %zu has no name", i);
			bad++;
			continue;
		}
		if (p->attach != X2B_ATTACH(ATTACH_NONE) && !x2b_attach_by_kind(p->attach)) {
			x2b_err("program '%s': unknown attach kind %d", p->name, p->attach);
			bad++;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(m->programs[j]->name, p->name)) {
				x2b_err("program '%s' is listed twice", p->name);
				bad++;
			} else if (p->attach != X2B_ATTACH(ATTACH_NONE) &&
				   m->programs[j]->attach == p->attach) {
				x2b_err("programs '%s' and '%s' have the same attach kind",
					m->programs[j]->name, p->name);
				bad++;
			}
		}
	}
	for (size_t i = 0; i < m->n_maps; i++) {
		const x2b_mmap *mm = m->maps[i];
		const struct x2b_file *f;
		unsigned long long want;

		for (size_t j = 0; j < i; j++) {
			if (!strcmp(m->maps[j]->name, mm->name)) {
				x2b_err("map '%s' is listed twice", mm->name);
				bad++;
			}
		}
		if (!*mm->image) {
			if (mm->entries) {
				x2b_err("map '%s': %u entries but no image", mm->name, mm->entries);
				bad++;
			}
			continue;
		}
		if (mm->kind == X2B_MAPKIND(PROG_ARRAY) || mm->kind == X2B_MAPKIND(SK_STORAGE)) {
			x2b_err("map '%s': a %s map cannot have an image", mm->name,
				mm->kind == X2B_MAPKIND(PROG_ARRAY) ? "PROG_ARRAY" : "SK_STORAGE");
			bad++;
			continue;
		}
		f = x2b_bundle_file(b, mm->image);
		if (!f) {
			x2b_err("map '%s': image '%s' is not listed in manifest.files", mm->name, mm->image);
			bad++;
			continue;
		}
		want = (unsigned long long)mm->entries * ((unsigned long long)mm->key_size + mm->value_size);
		if (f->size != want) {
			x2b_err("map '%s': image '%s' has %zu bytes, expected %u entries x (%u + %u) = %llu",
				mm->name, mm->image, f->size, mm->entries, mm->key_size, mm->value_size, want);
			bad++;
		}
	}
	for (size_t i = 0; i < m->n_tail_calls; i++) {
		const x2b_mtail *t = m->tail_calls[i];
		bool found_map = false, found_prog = false;

		for (size_t j = 0; j < m->n_maps; j++)
			if (!strcmp(m->maps[j]->name, t->prog_array) &&
			    m->maps[j]->kind == X2B_MAPKIND(PROG_ARRAY))
				found_map = true;
		for (size_t j = 0; j < m->n_programs; j++)
			if (!strcmp(m->programs[j]->name, t->program))
				found_prog = true;
		if (!found_map || !found_prog) {
			x2b_err("tail call %s[%u] -> %s: %s is not in the manifest", t->prog_array, t->slot,
				t->program, !found_map ? "prog array" : "program");
			bad++;
		}
	}
	return bad ? X2B_EXIT_REJECT : 0;
}

int x2b_bundle_open(const char *dir, struct x2b_bundle *b)
{
	char path[4096];
	int err;

	memset(b, 0, sizeof(*b));
	b->dir = strdup(dir);
	if (!b->dir)
		return X2B_EXIT_INTERNAL;
	if (x2b_path(path, sizeof(path), "%s/manifest.pb", dir))
		return X2B_EXIT_USAGE;
	err = x2b_manifest_read(path, &b->raw, &b->raw_len, &b->m);
	if (err == -EBADMSG) {
		x2b_err("%s is not a valid xds2bpf.bundle.v1.Manifest", path);
		return X2B_EXIT_REJECT;
	}
	if (err) {
		x2b_err("not a bundle: cannot read %s: %s", path, strerror(-err));
		return err == -ENOMEM ? X2B_EXIT_INTERNAL : X2B_EXIT_REJECT;
	}
	if (b->m->format_version != X2B_FORMAT_VERSION) {
		x2b_err("bundle format version %u is not supported (this loader reads version %d)",
			b->m->format_version, X2B_FORMAT_VERSION);
		return X2B_EXIT_REJECT;
	}
	if (b->m->abi_version != X2B_ABI_VERSION) {
		x2b_err("bundle ABI version %u does not match this loader's ABI version %d "
			"(bpf-runtime/abi/x2b_abi.h); use a loader and compiler of the same release",
			b->m->abi_version, X2B_ABI_VERSION);
		return X2B_EXIT_REJECT;
	}
	err = check_files(b);
	if (err)
		return err;
	return check_references(b);
}

void x2b_bundle_close(struct x2b_bundle *b)
{
	for (size_t i = 0; i < b->nfiles; i++)
		free(b->files[i].data);
	free(b->files);
	if (b->m)
		xds2bpf__bundle__v1__manifest__free_unpacked(b->m, NULL);
	free(b->raw);
	free(b->dir);
	memset(b, 0, sizeof(*b));
}
