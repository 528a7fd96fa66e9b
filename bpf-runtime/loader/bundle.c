// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Bundle checks, all without the kernel: manifest.pb against manifest.sha256,
 * versions, every string (UTF-8, length, charset of names and paths), counts and
 * sizes, every file's size and sha256, image contents, the tail-call table.
 * A bundle is a directory or a ustar archive (tar.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "x2b_abi.h"
#include "loader.h"

#define X2B_MAX_SHORT 128     /* versions */
#define X2B_MAX_TEXT 1024     /* serves, clang_version */
#define X2B_MAX_XDS_NAME 4096 /* listener and cluster names from the snapshot */
#define X2B_MAX_PATH 255
#define X2B_MAX_PROGRAMS 64
#define X2B_MAX_MAPS 256
#define X2B_MAX_TAIL_CALLS 1024
#define X2B_MAX_TABLE (1U << 20) /* listeners, clusters */

int x2b_path(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		x2b_err("path too long: %s...", buf);
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * Opens without blocking (a FIFO or a device never stalls the loader), then
 * requires a regular file of at most `max` bytes. `oflags` may add O_NOFOLLOW.
 * With a directory fd, a path is resolved beneath it without symlinks
 * (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or O_NOFOLLOW without openat2).
 * -EINVAL: not a regular file; -EFBIG: too large; -ELOOP: a symbolic link.
 */
int x2b_read_file_at(int dirfd, const char *path, int oflags, unsigned long long max, void **data,
		     size_t *len)
{
	int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | oflags;
	struct stat st;
	size_t off = 0, want;
	char *buf = NULL;
	int fd = -1, err;

	*data = NULL;
	*len = 0;
	if (dirfd != AT_FDCWD) {
		struct open_how how = {
			.flags = (unsigned long long)flags,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
		};

		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd < 0 && errno == ENOSYS)
			fd = openat(dirfd, path, flags | O_NOFOLLOW);
		if (fd < 0 && errno == EXDEV)
			errno = ELOOP; /* escaped the bundle: only through a symlink */
	} else {
		fd = open(path, flags);
	}
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
	if (st.st_size < 0 || (unsigned long long)st.st_size > max) {
		err = -EFBIG;
		goto cleanup;
	}
	want = (size_t)st.st_size;
	buf = malloc(want ? want : 1);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	while (off < want) {
		ssize_t n = read(fd, buf + off, want - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto cleanup;
		}
		if (n == 0)
			break; /* truncated under us: the size check reports it */
		off += (size_t)n;
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

int x2b_read_file(const char *path, void **data, size_t *len)
{
	return x2b_read_file_at(AT_FDCWD, path, 0, X2B_MAX_FILE_SIZE, data, len);
}

static const char *read_error(int err)
{
	switch (err) {
	case -EINVAL:
		return "not a regular file";
	case -EFBIG:
		return "file too large";
	case -ELOOP:
		return "a symbolic link (bundle files must be regular files inside the bundle)";
	default:
		return strerror(-err);
	}
}

int x2b_manifest_read(const char *path, void **raw, size_t *len, x2b_manifest **m)
{
	int err;

	err = x2b_read_file_at(AT_FDCWD, path, O_NOFOLLOW, X2B_MAX_MANIFEST_SIZE, raw, len);
	if (err)
		return err;
	*m = xds2bpf__bundle__v1__manifest__unpack(NULL, *len, *raw);
	if (!*m || x2b_manifest_check_strings(*m)) {
		if (*m)
			xds2bpf__bundle__v1__manifest__free_unpacked(*m, NULL);
		*m = NULL;
		free(*raw);
		*raw = NULL;
		return -EBADMSG;
	}
	return 0;
}

const struct x2b_attach_desc x2b_attach_descs[] = {
	{ X2B_ATTACH(CGROUP_INET4_CONNECT), BPF_CGROUP_INET4_CONNECT, "connect4", "connect4" },
	{ X2B_ATTACH(CGROUP_INET6_CONNECT), BPF_CGROUP_INET6_CONNECT, "connect6", "connect6" },
	{ X2B_ATTACH(CGROUP_INET4_GETPEERNAME), BPF_CGROUP_INET4_GETPEERNAME, "getpeername4",
	  "getpeername4" },
	{ X2B_ATTACH(CGROUP_INET6_GETPEERNAME), BPF_CGROUP_INET6_GETPEERNAME, "getpeername6",
	  "getpeername6" },
	{ X2B_ATTACH(CGROUP_SOCK_OPS), BPF_CGROUP_SOCK_OPS, "sock_ops", "sock_ops" },
};
const size_t x2b_nattach = sizeof(x2b_attach_descs) / sizeof(x2b_attach_descs[0]);

const struct x2b_attach_desc *x2b_attach_by_kind(int kind)
{
	for (size_t i = 0; i < x2b_nattach; i++)
		if (x2b_attach_descs[i].kind == kind)
			return &x2b_attach_descs[i];
	return NULL;
}

const struct x2b_attach_desc *x2b_attach_by_pin(const char *pin)
{
	for (size_t i = 0; i < x2b_nattach; i++)
		if (!strcmp(x2b_attach_descs[i].pin, pin))
			return &x2b_attach_descs[i];
	return NULL;
}

const struct x2b_attach_desc *x2b_attach_by_type(enum bpf_attach_type type)
{
	for (size_t i = 0; i < x2b_nattach; i++)
		if (x2b_attach_descs[i].type == type)
			return &x2b_attach_descs[i];
	return NULL;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
bool x2b_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* Relative, no empty, "." or ".." components: a bundle never points outside itself. */
bool x2b_path_is_safe(const char *p)
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

/* --- strings ------------------------------------------------------------------ */

static bool is_ident(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (!n || n > max ||
	    !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static bool is_token(const char *s, const char *extra, size_t max)
{
	static const char alnum[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t n = strlen(s);

	if (!n || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr(alnum, s[i]) && !strchr(extra, s[i]))
			return false;
	return true;
}

static bool is_hex64(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static bool is_bundle_path(const char *s)
{
	return is_token(s, "._/-", X2B_MAX_PATH) && x2b_path_is_safe(s);
}

/* UTF-8 without control characters. */
static bool is_text(const char *s, size_t max, bool allow_empty)
{
	size_t n = strlen(s);

	if ((!n && !allow_empty) || n > max || !x2b_utf8_valid(s, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* Quoted for a message: at most 64 bytes, anything unprintable as '?'. */
static const char *shown(const char *s, char buf[80])
{
	size_t i = 0;

	for (; s[i] && i < 64; i++)
		buf[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
	if (s[i]) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

#define CHECK_STR(ok, what, ...)                                                       \
	do {                                                                           \
		if (!(ok)) {                                                           \
			x2b_err("manifest: invalid " what " '%s' (corrupt manifest?)", \
				__VA_ARGS__);                                          \
			bad++;                                                         \
		}                                                                      \
	} while (0)

int x2b_manifest_check_strings(const x2b_manifest *m)
{
	int bad = 0;
	char q[80];

	if (m->n_files > X2B_MAX_FILES || m->n_programs > X2B_MAX_PROGRAMS ||
	    m->n_maps > X2B_MAX_MAPS || m->n_tail_calls > X2B_MAX_TAIL_CALLS ||
	    m->n_listeners > X2B_MAX_TABLE || m->n_clusters > X2B_MAX_TABLE ||
	    m->n_dns_clusters > m->n_clusters) {
		x2b_err("manifest: too many entries (%zu files, %zu programs, %zu maps, %zu tail calls, "
			"%zu listeners, %zu clusters)",
			m->n_files, m->n_programs, m->n_maps, m->n_tail_calls, m->n_listeners,
			m->n_clusters);
		return X2B_EXIT_REJECT;
	}
	CHECK_STR(is_text(m->xds2bpf_version, X2B_MAX_SHORT, false), "xds2bpf_version",
		  shown(m->xds2bpf_version, q));
	CHECK_STR(is_text(m->clang_version, X2B_MAX_TEXT, false), "clang_version",
		  shown(m->clang_version, q));
	CHECK_STR(is_hex64(m->snapshot_sha256), "snapshot_sha256", shown(m->snapshot_sha256, q));
	CHECK_STR(is_hex64(m->code_sha256), "code_sha256", shown(m->code_sha256, q));
	CHECK_STR(is_bundle_path(m->object), "object path", shown(m->object, q));
	CHECK_STR(!*m->http_object || is_bundle_path(m->http_object), "http_object path",
		  shown(m->http_object, q));
	for (size_t i = 0; i < m->n_files; i++) {
		CHECK_STR(is_bundle_path(m->files[i]->path), "file path",
			  shown(m->files[i]->path, q));
		CHECK_STR(is_hex64(m->files[i]->sha256), "sha256 of a file",
			  shown(m->files[i]->sha256, q));
		if (m->files[i]->size > X2B_MAX_FILE_SIZE) {
			x2b_err("manifest: file '%s' is too large (%llu bytes)",
				shown(m->files[i]->path, q), (unsigned long long)m->files[i]->size);
			bad++;
		}
	}
	for (size_t i = 0; i < m->n_programs; i++) {
		const x2b_mprog *p = m->programs[i];

		CHECK_STR(is_ident(p->name, 15), "program name", shown(p->name, q));
		CHECK_STR(is_token(p->section, "_/.+-", 64), "program section",
			  shown(p->section, q));
		CHECK_STR(is_text(p->serves, X2B_MAX_TEXT, true), "program description",
			  shown(p->serves, q));
	}
	for (size_t i = 0; i < m->n_maps; i++) {
		const x2b_mmap *mm = m->maps[i];

		CHECK_STR(is_ident(mm->name, 15), "map name", shown(mm->name, q));
		CHECK_STR(!*mm->image || is_bundle_path(mm->image), "map image path",
			  shown(mm->image, q));
		CHECK_STR(is_text(mm->serves, X2B_MAX_TEXT, true), "map description",
			  shown(mm->serves, q));
	}
	for (size_t i = 0; i < m->n_tail_calls; i++) {
		CHECK_STR(is_ident(m->tail_calls[i]->prog_array, 15), "tail-call prog array",
			  shown(m->tail_calls[i]->prog_array, q));
		CHECK_STR(is_ident(m->tail_calls[i]->program, 15), "tail-call program",
			  shown(m->tail_calls[i]->program, q));
	}
	for (size_t i = 0; i < m->n_listeners; i++) {
		const Xds2bpf__Bundle__V1__Listener *l = m->listeners[i];

		CHECK_STR(is_text(l->name, X2B_MAX_XDS_NAME, true), "listener name",
			  shown(l->name, q));
		CHECK_STR(!*l->address || is_token(l->address, ".:[]%_/-", 128), "listener address",
			  shown(l->address, q));
		CHECK_STR(!*l->kind || is_ident(l->kind, 32), "listener kind", shown(l->kind, q));
	}
	for (size_t i = 0; i < m->n_clusters; i++) {
		const Xds2bpf__Bundle__V1__Cluster *c = m->clusters[i];

		CHECK_STR(is_text(c->name, X2B_MAX_XDS_NAME, true), "cluster name",
			  shown(c->name, q));
		CHECK_STR(!*c->lb_policy || is_ident(c->lb_policy, 64), "cluster LB policy",
			  shown(c->lb_policy, q));
	}
	for (size_t i = 0; i < m->n_dns_clusters; i++) {
		const Xds2bpf__Bundle__V1__DnsCluster *d = m->dns_clusters[i];

		CHECK_STR(is_text(d->name, X2B_MAX_XDS_NAME, true), "dns cluster name",
			  shown(d->name, q));
		CHECK_STR(is_ident(d->lookup_family, 16), "dns lookup family",
			  shown(d->lookup_family, q));
		if (d->n_hosts > X2B_MAX_TABLE) {
			x2b_err("manifest: dns cluster with %zu hosts", d->n_hosts);
			return X2B_EXIT_REJECT;
		}
		/* a host name (RFC 1035: at most 253 characters) or an address */
		for (size_t j = 0; j < d->n_hosts; j++)
			CHECK_STR(is_token(d->hosts[j]->host, ".:-_%", 253), "dns host",
				  shown(d->hosts[j]->host, q));
	}
	return bad ? X2B_EXIT_REJECT : 0;
}

/* --- files --------------------------------------------------------------------- */

static bool manifest_lists(const x2b_manifest *m, const char *path)
{
	for (size_t i = 0; i < m->n_files; i++)
		if (!strcmp(m->files[i]->path, path))
			return true;
	return false;
}

/* One file of the bundle (relative path): from the directory, or from the archive. */
static int bundle_read(const struct x2b_bundle *b, const char *rel, unsigned long long max,
		       const void **data, size_t *len, bool *owned)
{
	void *d;
	int err;

	if (b->is_tar) {
		const struct x2b_tar_member *mb = x2b_tar_find(&b->tar, rel);

		if (!mb)
			return -ENOENT;
		if (mb->size > max)
			return -EFBIG;
		*len = mb->size;
		*owned = false;
		*data = mb->data;
		if (b->flags & X2B_COPY_MEMBERS) {
			d = malloc(mb->size ? mb->size : 1);
			if (!d)
				return -ENOMEM;
			memcpy(d, mb->data, mb->size);
			*data = d;
			*owned = true;
		}
		return 0;
	}
	err = x2b_read_file_at(b->dirfd, rel, O_NOFOLLOW, max, &d, len);
	if (err)
		return err;
	*data = d;
	*owned = true;
	return 0;
}

/* Reads every listed file and checks size and sha256; reports all mismatches. */
static int check_files(struct x2b_bundle *b)
{
	const x2b_manifest *m = b->m;
	char hex[65];
	int bad = 0, err;

	b->files = calloc(m->n_files ? m->n_files : 1, sizeof(*b->files));
	if (!b->files)
		return X2B_EXIT_INTERNAL;
	for (size_t i = 0; i < m->n_files; i++) {
		const x2b_mfile *mf = m->files[i];
		struct x2b_file *f = &b->files[b->nfiles];

		if (!x2b_path_is_safe(mf->path) || !strcmp(mf->path, "manifest.pb") ||
		    !strcmp(mf->path, "manifest.sha256")) {
			x2b_err("manifest lists an unsafe path '%s' (must be relative, without '..')",
				mf->path);
			bad++;
			continue;
		}
		if (x2b_bundle_file(b, mf->path) ||
		    (i && !strcmp(m->files[i - 1]->path, mf->path))) {
			x2b_err("manifest lists '%s' twice", mf->path);
			bad++;
			continue;
		}
		err = bundle_read(b, mf->path, X2B_MAX_FILE_SIZE, &f->data, &f->size, &f->owned);
		if (err == -ENOENT) {
			x2b_err("bundle is incomplete: '%s' is listed in the manifest but missing",
				mf->path);
			bad++;
			continue;
		}
		if (err) {
			x2b_err("cannot read '%s' of bundle %s: %s", mf->path, b->dir,
				read_error(err));
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
		if (b->flags & X2B_NO_FILE_DIGESTS)
			continue;
		if (sha256_hex(f->data, f->size, hex))
			return X2B_EXIT_INTERNAL;
		if (strcmp(hex, mf->sha256)) {
			x2b_err("'%s': sha256 mismatch (tampered or corrupt bundle): file %s, manifest %s",
				mf->path, hex, mf->sha256);
			bad++;
		}
	}
	/* an archive holds exactly the bundle: no member the manifest does not list */
	for (size_t i = 0; b->is_tar && i < b->tar.n; i++) {
		const char *n = b->tar.members[i].name;

		if (strcmp(n, "manifest.pb") && strcmp(n, "manifest.sha256") &&
		    !manifest_lists(m, n)) {
			x2b_err("%s: member '%s' is not listed in the manifest", b->dir, n);
			bad++;
		}
	}
	return bad ? X2B_EXIT_REJECT : 0;
}

/* --- manifest consistency ----------------------------------------------------- */

static const x2b_mmap *find_map(const x2b_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n_maps; i++)
		if (!strcmp(m->maps[i]->name, name))
			return m->maps[i];
	return NULL;
}

static const x2b_mprog *find_prog(const x2b_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n_programs; i++)
		if (!strcmp(m->programs[i]->name, name))
			return m->programs[i];
	return NULL;
}

/* Sizes the kernel and the loader's own arithmetic can take. */
static int check_map_spec(const x2b_mmap *mm)
{
	bool array = mm->kind == X2B_MAPKIND(ARRAY) || mm->kind == X2B_MAPKIND(PERCPU_ARRAY) ||
		     mm->kind == X2B_MAPKIND(PROG_ARRAY);

	switch (mm->kind) {
	case X2B_MAPKIND(HASH):
	case X2B_MAPKIND(ARRAY):
	case X2B_MAPKIND(LPM_TRIE):
	case X2B_MAPKIND(PERCPU_ARRAY):
	case X2B_MAPKIND(PROG_ARRAY):
	case X2B_MAPKIND(SK_STORAGE):
	case X2B_MAPKIND(LRU_HASH):
		break;
	default:
		x2b_err("map '%s': unknown kind %d", mm->name, mm->kind);
		return 1;
	}
	if (!mm->key_size || mm->key_size > X2B_MAX_KEY_SIZE || !mm->value_size ||
	    mm->value_size > X2B_MAX_VALUE_SIZE || (array && mm->key_size != 4) ||
	    (mm->kind == X2B_MAPKIND(PROG_ARRAY) && mm->value_size != 4) ||
	    (mm->kind == X2B_MAPKIND(LPM_TRIE) && mm->key_size <= 4)) {
		x2b_err("map '%s': key size %u / value size %u are not valid for its kind",
			mm->name, mm->key_size, mm->value_size);
		return 1;
	}
	if (mm->kind == X2B_MAPKIND(SK_STORAGE)
		    ? mm->max_entries != 0
		    : !mm->max_entries || mm->max_entries > X2B_MAX_ENTRIES_LIMIT ||
			      (mm->kind == X2B_MAPKIND(PROG_ARRAY) &&
			       mm->max_entries > X2B_MAX_PROG_ARRAY)) {
		x2b_err("map '%s': max_entries %u is out of range", mm->name, mm->max_entries);
		return 1;
	}
	if (mm->entries > mm->max_entries) {
		x2b_err("map '%s': image has %u entries, max_entries is %u", mm->name, mm->entries,
			mm->max_entries);
		return 1;
	}
	return 0;
}

/* Keys of array images are indexes below max_entries; LPM prefixes fit their key. */
static int check_image(const x2b_mmap *mm, const struct x2b_file *f)
{
	size_t rec = (size_t)mm->key_size + mm->value_size;
	bool array = mm->kind == X2B_MAPKIND(ARRAY) || mm->kind == X2B_MAPKIND(PERCPU_ARRAY);

	/* only these kinds have a u32 in front of the key (key_size checked by check_map_spec) */
	if (!array && mm->kind != X2B_MAPKIND(LPM_TRIE))
		return 0;
	for (uint32_t i = 0; i < mm->entries; i++) {
		const unsigned char *key = (const unsigned char *)f->data + (size_t)i * rec;
		uint32_t k;

		memcpy(&k, key, sizeof(k)); /* key_size == 4 (arrays) or > 4 (LPM) */
		if (array && k >= mm->max_entries) {
			x2b_err("map '%s': image '%s' record %u has index %u, max_entries is %u",
				mm->name, mm->image, i, k, mm->max_entries);
			return 1;
		}
		if (mm->kind == X2B_MAPKIND(LPM_TRIE) && k > (mm->key_size - 4) * 8) {
			x2b_err("map '%s': image '%s' record %u has prefix length %u, at most %u",
				mm->name, mm->image, i, k, (mm->key_size - 4) * 8);
			return 1;
		}
	}
	return 0;
}

/* Cross-references inside the manifest: object, images, programs, tail calls. */
static int check_references(struct x2b_bundle *b)
{
	const x2b_manifest *m = b->m;
	int bad = 0;

	if (!manifest_lists(m, m->object)) {
		x2b_err("object '%s' is not listed in manifest.files", m->object);
		bad++;
	}
	if (*m->http_object && !manifest_lists(m, m->http_object)) {
		x2b_err("HTTP object '%s' is not listed in manifest.files", m->http_object);
		bad++;
	}
	if (*m->http_object && !strcmp(m->http_object, m->object)) {
		x2b_err("the HTTP object and the L4 object are the same file '%s'", m->object);
		bad++;
	}
	for (size_t i = 0; i < m->n_programs; i++) {
		const x2b_mprog *p = m->programs[i];

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
		if (check_map_spec(mm)) {
			bad++;
			continue;
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
		if (!manifest_lists(m, mm->image)) {
			x2b_err("map '%s': image '%s' is not listed in manifest.files", mm->name,
				mm->image);
			bad++;
			continue;
		}
		f = x2b_bundle_file(b, mm->image);
		if (!f)
			continue; /* missing or unreadable: check_files reported it */
		want = (unsigned long long)mm->entries *
		       ((unsigned long long)mm->key_size + mm->value_size);
		if (f->size != want) {
			x2b_err("map '%s': image '%s' has %zu bytes, expected %u entries x (%u + %u) = %llu",
				mm->name, mm->image, f->size, mm->entries, mm->key_size,
				mm->value_size, want);
			bad++;
			continue;
		}
		if (check_image(mm, f))
			bad++;
	}
	/* the tail-call table: valid, unique slots; every stage program reachable */
	for (size_t i = 0; i < m->n_tail_calls; i++) {
		const x2b_mtail *t = m->tail_calls[i];
		const x2b_mmap *pa = find_map(m, t->prog_array);
		const x2b_mprog *p = find_prog(m, t->program);

		if (!pa || pa->kind != X2B_MAPKIND(PROG_ARRAY) || !p) {
			x2b_err("tail call %s[%u] -> %s: %s is not in the manifest", t->prog_array,
				t->slot, t->program,
				!pa || pa->kind != X2B_MAPKIND(PROG_ARRAY) ? "prog array"
									   : "program");
			bad++;
			continue;
		}
		if (t->slot >= pa->max_entries) {
			x2b_err("tail call %s[%u] -> %s: slot out of range (max_entries %u)",
				t->prog_array, t->slot, t->program, pa->max_entries);
			bad++;
		}
		if (p->attach != X2B_ATTACH(ATTACH_NONE)) {
			x2b_err("tail call %s[%u] -> %s: the target is an entry program",
				t->prog_array, t->slot, t->program);
			bad++;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(m->tail_calls[j]->prog_array, t->prog_array) &&
			    m->tail_calls[j]->slot == t->slot) {
				x2b_err("tail call %s[%u] is listed twice", t->prog_array, t->slot);
				bad++;
			}
		}
	}
	for (size_t i = 0; i < m->n_programs; i++) {
		const x2b_mprog *p = m->programs[i];
		bool slot = false;

		if (p->attach != X2B_ATTACH(ATTACH_NONE))
			continue;
		for (size_t j = 0; j < m->n_tail_calls && !slot; j++)
			slot = !strcmp(m->tail_calls[j]->program, p->name);
		if (!slot) {
			x2b_err("program '%s' is neither an entry program nor in the tail-call table "
				"(tail_calls entry missing?)",
				p->name);
			bad++;
		}
	}
	return bad ? X2B_EXIT_REJECT : 0;
}

/* manifest.sha256: "<sha256 hex of manifest.pb>  manifest.pb\n" (sha256sum -c format). */
static int check_manifest_digest(struct x2b_bundle *b)
{
	static const char suffix[] = "  manifest.pb\n";
	const void *data = NULL;
	size_t len = 0;
	bool owned = false;
	char hex[65];
	int err, ret = X2B_EXIT_REJECT;

	err = bundle_read(b, "manifest.sha256", 1024, &data, &len, &owned);
	if (err == -ENOENT) {
		x2b_err("%s: bundle has no manifest.sha256 (the digest of manifest.pb); "
			"recompile it with this release of xds2bpf",
			b->dir);
		return X2B_EXIT_REJECT;
	}
	if (err) {
		x2b_err("cannot read manifest.sha256 of bundle %s: %s", b->dir, read_error(err));
		return err == -ENOMEM ? X2B_EXIT_INTERNAL : X2B_EXIT_REJECT;
	}
	if (len != 64 + sizeof(suffix) - 1 ||
	    memcmp((const char *)data + 64, suffix, sizeof(suffix) - 1)) {
		x2b_err("%s: manifest.sha256 is malformed (expected '<sha256>  manifest.pb')",
			b->dir);
		goto out;
	}
	if (sha256_hex(b->raw, b->raw_len, hex)) {
		ret = X2B_EXIT_INTERNAL;
		goto out;
	}
	if (memcmp(hex, data, 64)) {
		x2b_err("%s: manifest.pb does not match manifest.sha256 (tampered or corrupt bundle): "
			"manifest.pb has sha256 %s",
			b->dir, hex);
		goto out;
	}
	ret = 0;
out:
	if (owned)
		free((void *)data);
	return ret;
}

/* Everything after the bundle's source is open (directory fd or parsed archive). */
static int bundle_check(struct x2b_bundle *b)
{
	const void *data;
	bool owned;
	int err, bad;

	err = bundle_read(b, "manifest.pb", X2B_MAX_MANIFEST_SIZE, &data, &b->raw_len, &owned);
	if (err) {
		x2b_err("not a bundle: cannot read manifest.pb of %s: %s", b->dir, read_error(err));
		return err == -ENOMEM ? X2B_EXIT_INTERNAL : X2B_EXIT_REJECT;
	}
	if (owned) {
		b->raw = (void *)data;
	} else {
		b->raw = malloc(b->raw_len ? b->raw_len : 1);
		if (!b->raw)
			return X2B_EXIT_INTERNAL;
		memcpy(b->raw, data, b->raw_len);
	}
	if (!(b->flags & X2B_NO_MANIFEST_DIGEST)) {
		err = check_manifest_digest(b);
		if (err)
			return err;
	}
	b->m = xds2bpf__bundle__v1__manifest__unpack(NULL, b->raw_len, b->raw);
	if (!b->m) {
		x2b_err("%s: manifest.pb is not a valid xds2bpf.bundle.v1.Manifest", b->dir);
		return X2B_EXIT_REJECT;
	}
	/* version 2: a bundle with DNS clusters (older loaders refuse it rather than not resolve) */
	if (b->m->format_version < 1 || b->m->format_version > X2B_FORMAT_VERSION) {
		x2b_err("bundle format version %u is not supported (this loader reads versions 1 to "
			"%d)",
			b->m->format_version, X2B_FORMAT_VERSION);
		return X2B_EXIT_REJECT;
	}
	if (b->m->n_dns_clusters && b->m->format_version < 2) {
		x2b_err("bundle format version %u has no DNS clusters, this one lists %zu",
			b->m->format_version, b->m->n_dns_clusters);
		return X2B_EXIT_REJECT;
	}
	if (b->m->abi_version != X2B_ABI_VERSION) {
		x2b_err("bundle ABI version %u does not match this loader's ABI version %d "
			"(bpf-runtime/abi/x2b_abi.h); use a loader and compiler of the same release",
			b->m->abi_version, X2B_ABI_VERSION);
		return X2B_EXIT_REJECT;
	}
	err = x2b_manifest_check_strings(b->m);
	if (err)
		return err;
	err = check_files(b);
	if (err == X2B_EXIT_INTERNAL)
		return err;
	bad = err;
	err = check_references(b);
	return err ? err : bad;
}

int x2b_bundle_open_mem(const void *tar, size_t len, const char *what, unsigned int flags,
			struct x2b_bundle *b)
{
	int err;

	memset(b, 0, sizeof(*b));
	b->dirfd = -1;
	b->is_tar = true;
	b->flags = flags;
	b->dir = strdup(what);
	if (!b->dir)
		return X2B_EXIT_INTERNAL;
	if (len > X2B_MAX_TAR_SIZE) {
		x2b_err("%s: archive too large", what);
		return X2B_EXIT_REJECT;
	}
	err = x2b_tar_parse(tar, len, what, &b->tar);
	if (err)
		return err;
	return bundle_check(b);
}

int x2b_bundle_open(const char *path, struct x2b_bundle *b)
{
	struct stat st;
	int err;

	memset(b, 0, sizeof(*b));
	b->dirfd = -1;
	b->dir = strdup(path);
	if (!b->dir)
		return X2B_EXIT_INTERNAL;
	if (stat(path, &st)) {
		x2b_err("not a bundle: %s: %s", path, strerror(errno));
		return X2B_EXIT_REJECT;
	}
	if (S_ISDIR(st.st_mode)) {
		b->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (b->dirfd < 0) {
			x2b_err("not a bundle: cannot open %s: %s", path, strerror(errno));
			return X2B_EXIT_REJECT;
		}
		return bundle_check(b);
	}
	if (!S_ISREG(st.st_mode)) {
		x2b_err("not a bundle: %s is neither a directory nor a bundle archive (.tar)",
			path);
		return X2B_EXIT_REJECT;
	}
	err = x2b_read_file_at(AT_FDCWD, path, 0, X2B_MAX_TAR_SIZE, &b->tar_buf, &b->tar_len);
	if (err) {
		x2b_err("not a bundle: cannot read %s: %s", path, read_error(err));
		return err == -ENOMEM ? X2B_EXIT_INTERNAL : X2B_EXIT_REJECT;
	}
	b->is_tar = true;
	err = x2b_tar_parse(b->tar_buf, b->tar_len, path, &b->tar);
	if (err)
		return err;
	return bundle_check(b);
}

void x2b_bundle_close(struct x2b_bundle *b)
{
	for (size_t i = 0; i < b->nfiles; i++)
		if (b->files[i].owned)
			free((void *)b->files[i].data);
	free(b->files);
	if (b->m)
		xds2bpf__bundle__v1__manifest__free_unpacked(b->m, NULL);
	free(b->raw);
	x2b_tar_free(&b->tar);
	free(b->tar_buf);
	if (b->dir && b->dirfd >= 0) /* b->dir: opened (a zeroed struct has dirfd 0) */
		close(b->dirfd);
	free(b->dir);
	memset(b, 0, sizeof(*b));
	b->dirfd = -1;
}
