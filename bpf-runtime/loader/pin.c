// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Pins and state: load, replace, unload.
 *
 *   $XDS2BPF_BPFFS/NAME/{progs,maps,links}/   (default /sys/fs/bpf/xds2bpf)
 *   $XDS2BPF_STATE_DIR/NAME/{manifest.pb,cgroup,bundle}   (default /run/xds2bpf)
 *
 * Links are pinned as links/<attach kind> (connect4, connect6, ...), so
 * replace finds the link of each attach kind without reading the old object.
 * replace pins the new object under NAME/staging/{progs,maps,links} (bpffs
 * refuses '.' in names, so no suffixes) and renames the pins into place.
 * The state directory is the claim on a name (mkdir) and its lock (flock).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/magic.h>
#include <linux/membarrier.h>

#include "loader.h"

#define X2B_NAME_MAX 64
#define X2B_STAGING "staging"
static const char *const x2b_subdirs[] = { "progs", "maps", "links" };

const char *x2b_bpffs_base(void)
{
	const char *e = getenv("XDS2BPF_BPFFS");

	return e && *e ? e : X2B_DEFAULT_BPFFS;
}

const char *x2b_state_base(void)
{
	const char *e = getenv("XDS2BPF_STATE_DIR");

	return e && *e ? e : X2B_DEFAULT_STATE;
}

bool x2b_name_valid(const char *name)
{
	size_t n = strlen(name);

	/* bpffs refuses names with '.' */
	if (n == 0 || n > X2B_NAME_MAX)
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
			return false;
	return true;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];

	if (x2b_path(tmp, sizeof(tmp), "%s", path))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Removes a directory and everything below it (pins and state are two levels deep). */
static int remove_tree(const char *path)
{
	char child[PATH_MAX];
	struct dirent *de;
	int err = 0;
	DIR *d;

	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (x2b_path(child, sizeof(child), "%s/%s", path, de->d_name))
			continue;
		if (de->d_type == DT_DIR)
			err = remove_tree(child) ?: err;
		else if (unlink(child) && errno != ENOENT)
			err = -errno;
	}
	closedir(d);
	if (rmdir(path) && errno != ENOENT)
		err = -errno;
	return err;
}

/* Mounts bpffs at /sys/fs/bpf when needed and creates the base directory. */
static int ensure_bpffs(const char *base)
{
	char probe[PATH_MAX];
	struct statfs sf;
	int err;

	if (x2b_path(probe, sizeof(probe), "%s", base))
		return X2B_EXIT_USAGE;
	while (statfs(probe, &sf)) {
		char *slash = strrchr(probe, '/');

		if (errno != ENOENT) {
			x2b_err("cannot inspect %s: %s", probe, strerror(errno));
			return X2B_EXIT_REJECT;
		}
		if (!slash || slash == probe)
			strcpy(probe, "/");
		else
			*slash = '\0';
	}
	if (sf.f_type != BPF_FS_MAGIC) {
		if (strncmp(base, "/sys/fs/bpf/", strlen("/sys/fs/bpf/"))) {
			x2b_err("pin directory %s is not on a bpf filesystem", base);
			return X2B_EXIT_REJECT;
		}
		if (mkdir("/sys/fs/bpf", 0700) && errno != EEXIST) {
			x2b_err("cannot create /sys/fs/bpf: %s", strerror(errno));
			return X2B_EXIT_REJECT;
		}
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700")) {
			x2b_err("cannot mount bpffs at /sys/fs/bpf: %s", strerror(errno));
			return X2B_EXIT_REJECT;
		}
		x2b_note("mounted bpffs at /sys/fs/bpf");
	}
	err = mkdir_p(base, 0700);
	if (err) {
		x2b_err("cannot create %s: %s", base, strerror(-err));
		return X2B_EXIT_REJECT;
	}
	return 0;
}

static int name_paths(const char *name, char *root, char *state)
{
	if (x2b_path(root, PATH_MAX, "%s/%s", x2b_bpffs_base(), name) ||
	    x2b_path(state, PATH_MAX, "%s/%s", x2b_state_base(), name))
		return X2B_EXIT_USAGE;
	return 0;
}

/*
 * How long a command waits for another one working on the same name: a
 * command that is finishing (a replace whose caller was killed, an update
 * session whose agent just exited) holds the lock for a moment only.
 * XDS2BPF_LOCK_WAIT (seconds, 0 to 600) overrides the default.
 */
#define X2B_LOCK_WAIT_DEFAULT_MS 10000

static long lock_wait_ms(void)
{
	const char *v = getenv("XDS2BPF_LOCK_WAIT");
	char *end;
	long s;

	if (!v || !*v)
		return X2B_LOCK_WAIT_DEFAULT_MS;
	errno = 0;
	s = strtol(v, &end, 10);
	if (errno || *end || s < 0 || s > 600)
		return X2B_LOCK_WAIT_DEFAULT_MS;
	return s * 1000;
}

/* Takes the per-name lock, waiting for a bounded time; the caller closes the returned fd. */
int x2b_lock_state(const char *state, int *fd_out)
{
	int fd = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	const struct timespec pause = { .tv_nsec = 20 * 1000 * 1000 };
	long waited_ms = 0, limit_ms = lock_wait_ms();

	if (fd < 0) {
		x2b_err("cannot open %s: %s", state, strerror(errno));
		return X2B_EXIT_REJECT;
	}
	while (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK || waited_ms >= limit_ms) {
			x2b_err("%s is locked: another xds2bpf-loader command is working on this name (waited %ld ms)",
				state, waited_ms);
			close(fd);
			return X2B_EXIT_REJECT;
		}
		nanosleep(&pause, NULL);
		waited_ms += 20;
	}
	*fd_out = fd;
	return 0;
}

int x2b_write_state_file(const char *state, const char *file, const void *data, size_t len)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	int fd, err = 0;

	if (x2b_path(tmp, sizeof(tmp), "%s/.%s.tmp", state, file) ||
	    x2b_path(dst, sizeof(dst), "%s/%s", state, file))
		return X2B_EXIT_INTERNAL;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		off += n;
	}
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, dst))
		err = -errno;
out:
	if (err) {
		unlink(tmp);
		x2b_err("cannot write %s: %s", dst, strerror(-err));
		return X2B_EXIT_INTERNAL;
	}
	return 0;
}

static int write_state(const char *state, const struct x2b_bundle *b, const char *cgroup,
		       const char *variant)
{
	char line[PATH_MAX + 2], bundle[PATH_MAX];
	int err;

	if (!realpath(b->dir, bundle))
		snprintf(bundle, sizeof(bundle), "%s", b->dir);
	err = x2b_write_state_file(state, "manifest.pb", b->raw, b->raw_len);
	if (!err && cgroup) {
		snprintf(line, sizeof(line), "%s\n", cgroup);
		err = x2b_write_state_file(state, "cgroup", line, strlen(line));
	}
	if (!err) {
		snprintf(line, sizeof(line), "%s\n", bundle);
		err = x2b_write_state_file(state, "bundle", line, strlen(line));
	}
	if (!err) {
		snprintf(line, sizeof(line), "%s\n", variant);
		err = x2b_write_state_file(state, "variant", line, strlen(line));
	}
	/* fresh maps: the DNS clusters hold only their addresses until dns.c writes them */
	if (!err && x2b_path(line, sizeof(line), "%s/dns.txt", state) == 0 && unlink(line) &&
	    errno != ENOENT) {
		x2b_err("cannot remove %s: %s", line, strerror(errno));
		err = X2B_EXIT_INTERNAL;
	}
	/* fresh maps: the manifest's snapshot is live again, not the last in-place update */
	if (!err && x2b_path(line, sizeof(line), "%s/update.json", state) == 0 && unlink(line) &&
	    errno != ENOENT) {
		x2b_err("cannot remove %s: %s", line, strerror(errno));
		err = X2B_EXIT_INTERNAL;
	}
	return err;
}

static int check_cgroup(const char *cgroup, char *out)
{
	struct statfs sf;

	if (!realpath(cgroup, out)) {
		x2b_err("cgroup %s does not exist: %s", cgroup, strerror(errno));
		return X2B_EXIT_REJECT;
	}
	if (statfs(out, &sf) || sf.f_type != CGROUP2_SUPER_MAGIC) {
		x2b_err("%s is not a cgroup v2 directory (cgroup2 is mounted at /sys/fs/cgroup or "
			"/sys/fs/cgroup/unified)",
			cgroup);
		return X2B_EXIT_REJECT;
	}
	return 0;
}

/* Pins every program and (non-internal) map under <base>/progs and <base>/maps. */
static int pin_objects(const struct x2b_object *o, const char *base)
{
	char path[PATH_MAX];
	struct bpf_program *prog;
	struct bpf_map *map;
	int err;

	bpf_object__for_each_program(prog, o->obj) {
		if (x2b_path(path, sizeof(path), "%s/progs/%s", base, bpf_program__name(prog)))
			return X2B_EXIT_USAGE;
		err = bpf_program__pin(prog, path);
		if (err) {
			x2b_err("cannot pin program '%s' at %s: %s", bpf_program__name(prog), path,
				strerror(-err));
			return x2b_exit_for_errno(err);
		}
	}
	bpf_object__for_each_map(map, o->obj) {
		if (bpf_map__is_internal(map))
			continue;
		if (x2b_path(path, sizeof(path), "%s/maps/%s", base, bpf_map__name(map)))
			return X2B_EXIT_USAGE;
		err = bpf_map__pin(map, path);
		if (err) {
			x2b_err("cannot pin map '%s' at %s: %s", bpf_map__name(map), path,
				strerror(-err));
			return x2b_exit_for_errno(err);
		}
	}
	return 0;
}

/* Creates <base>/{progs,maps,links}, mode 0700; *made once base is ours to remove. */
static int make_pin_dirs(const char *base, bool *made)
{
	char path[PATH_MAX];

	if (mkdir(base, 0700)) {
		x2b_err("cannot create %s: %s", base, strerror(errno));
		return X2B_EXIT_REJECT;
	}
	*made = true;
	for (size_t i = 0; i < 3; i++) {
		if (x2b_path(path, sizeof(path), "%s/%s", base, x2b_subdirs[i]))
			return X2B_EXIT_USAGE;
		if (mkdir(path, 0700)) {
			x2b_err("cannot create %s: %s", path, strerror(errno));
			return X2B_EXIT_REJECT;
		}
	}
	return 0;
}

/* Detaches every link pinned in dir (the pins stay); returns how many. */
static int detach_links(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	int n = 0, fd;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || x2b_path(path, sizeof(path), "%s/%s", dir, de->d_name))
			continue;
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (bpf_link_detach(fd))
			x2b_warn("cannot detach link %s: %s", path, strerror(errno));
		else
			n++;
		close(fd);
	}
	closedir(d);
	return n;
}

static char *default_name(const char *bundle, char *buf, size_t len)
{
	char tmp[PATH_MAX];
	size_t n;

	snprintf(tmp, sizeof(tmp), "%s", bundle);
	for (n = strlen(tmp); n > 1 && tmp[n - 1] == '/'; n--)
		tmp[n - 1] = '\0';
	snprintf(buf, len, "%s", basename(tmp));
	return buf;
}

int x2b_cmd_load(const char *bundle, const char *cgroup, const char *name_opt)
{
	struct bpf_link *links[8] = {};
	char name_buf[PATH_MAX], root[PATH_MAX], state[PATH_MAX], cgpath[PATH_MAX], path[PATH_MAX];
	struct x2b_bundle b = {};
	struct x2b_object o = {};
	bool made_state = false, made_root = false;
	const char *name = name_opt;
	struct x2b_dns *dns = NULL;
	int cgfd = -1, lockfd = -1, nlinks = 0, err;

	if (!name) {
		name = default_name(bundle, name_buf, sizeof(name_buf));
		if (!x2b_name_valid(name)) {
			x2b_err("cannot use the bundle directory name '%s' as a name; pass --name",
				name);
			return X2B_EXIT_USAGE;
		}
	}
	err = name_paths(name, root, state);
	if (err)
		return err;
	err = x2b_bundle_open(bundle, &b);
	if (err)
		goto cleanup;
	err = check_cgroup(cgroup, cgpath);
	if (err)
		goto cleanup;
	/* DNS clusters: looked up first, written right after the load (dns.c) */
	err = x2b_dns_resolve_bundle(&b, &dns);
	if (err)
		goto cleanup;

	/* claim the name */
	err = ensure_bpffs(x2b_bpffs_base());
	if (err)
		goto cleanup;
	if ((err = mkdir_p(x2b_state_base(), 0700))) {
		x2b_err("cannot create %s: %s", x2b_state_base(), strerror(-err));
		err = X2B_EXIT_INTERNAL;
		goto cleanup;
	}
	if (mkdir(state, 0700)) {
		err = X2B_EXIT_REJECT;
		if (errno == EEXIST)
			x2b_err("name '%s' is already in use (%s exists); use replace, or unload it first",
				name, state);
		else
			x2b_err("cannot create %s: %s", state, strerror(errno));
		goto cleanup;
	}
	made_state = true;
	err = x2b_lock_state(state, &lockfd);
	if (err)
		goto cleanup;
	if (exists(root)) {
		x2b_err("name '%s' is already in use: %s exists (stale pins? run 'unload --name %s')",
			name, root, name);
		err = X2B_EXIT_REJECT;
		goto cleanup;
	}

	err = x2b_object_load(&b, &o);
	if (err)
		goto cleanup;
	if (x2b_fail_point("load-after-fill")) {
		err = X2B_EXIT_REJECT;
		goto cleanup;
	}

	cgfd = open(cgpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		x2b_err("cannot open cgroup %s: %s", cgpath, strerror(errno));
		err = X2B_EXIT_REJECT;
		goto cleanup;
	}
	for (size_t i = 0; i < x2b_nattach; i++) {
		const struct x2b_attach_desc *ad = &x2b_attach_descs[i];
		const x2b_mprog *mp = x2b_manifest_prog_for_attach(b.m, ad->kind);

		if (!mp)
			continue;
		links[i] = bpf_program__attach_cgroup(x2b_object_prog(&o, mp->name), cgfd);
		if (!links[i]) {
			err = -errno;
			x2b_err("cannot attach '%s' to %s as %s: %s", mp->name, cgpath, ad->label,
				strerror(-err));
			err = x2b_exit_for_errno(err);
			goto cleanup;
		}
		nlinks++;
	}
	if (x2b_fail_point("load-after-attach")) {
		err = X2B_EXIT_REJECT;
		goto cleanup;
	}

	err = make_pin_dirs(root, &made_root);
	if (err)
		goto cleanup;
	err = pin_objects(&o, root);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < x2b_nattach; i++) {
		if (!links[i])
			continue;
		if (x2b_path(path, sizeof(path), "%s/links/%s", root, x2b_attach_descs[i].pin)) {
			err = X2B_EXIT_USAGE;
			goto cleanup;
		}
		err = bpf_link__pin(links[i], path);
		if (err) {
			x2b_err("cannot pin link at %s: %s", path, strerror(-err));
			err = x2b_exit_for_errno(err);
			goto cleanup;
		}
	}
	if (x2b_fail_point("load-after-pin")) {
		err = X2B_EXIT_REJECT;
		goto cleanup;
	}
	err = write_state(state, &b, cgpath, o.variant);
	if (err)
		goto cleanup;
	x2b_note("loaded '%s': %zu programs (%d attached to %s), %zu maps; pins in %s", name,
		 b.m->n_programs, nlinks, cgpath, b.m->n_maps, root);
	err = 0;
cleanup:
	/* unpinning first: destroying the last reference to a link detaches it */
	if (err && made_root)
		remove_tree(root);
	for (size_t i = 0; i < x2b_nattach; i++)
		bpf_link__destroy(links[i]);
	if (err && made_state)
		remove_tree(state);
	if (cgfd >= 0)
		close(cgfd);
	if (lockfd >= 0)
		close(lockfd);
	x2b_object_close(&o);
	x2b_bundle_close(&b);
	return x2b_dns_finish(name, "loaded", err, dns);
}

static int read_cgroup(const char *state, char *out, size_t len)
{
	char path[PATH_MAX];
	size_t n = 0;
	void *data;
	int err;

	if (x2b_path(path, sizeof(path), "%s/cgroup", state))
		return -ENAMETOOLONG;
	err = x2b_read_file(path, &data, &n);
	if (err)
		return err;
	while (n && ((char *)data)[n - 1] == '\n')
		n--;
	snprintf(out, len, "%.*s", (int)n, (char *)data);
	free(data);
	return 0;
}

/* One attach kind during replace. */
struct swap {
	struct bpf_link *link; /* existing link (updated) or a new one (added) */
	int old_prog_fd;       /* >= 0: the link ran this program before the update */
};

static int link_prog_fd(int link_fd)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(link_fd, &info, &len))
		return -errno;
	return bpf_prog_get_fd_by_id(info.prog_id);
}

/* Waits for programs that started before the swap (they run under RCU). */
void x2b_settle(void)
{
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0))
		usleep(50 * 1000);
}

/* Moves every pin of staging/<sub> over <root>/<sub>/<same name> (rename replaces atomically). */
static int commit_dir(const char *root, const char *sub)
{
	char from[PATH_MAX], to[PATH_MAX], dir[PATH_MAX];
	struct dirent *de;
	int err = 0;
	DIR *d;

	if (x2b_path(dir, sizeof(dir), "%s/%s/%s", root, X2B_STAGING, sub))
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (x2b_path(from, sizeof(from), "%s/%s", dir, de->d_name) ||
		    x2b_path(to, sizeof(to), "%s/%s/%s", root, sub, de->d_name))
			continue;
		if (rename(from, to))
			err = -errno;
	}
	closedir(d);
	return err;
}

/* Removes the pins of <root>/<sub> that the new object does not have. */
static void prune_dir(const char *root, const char *sub, const struct x2b_object *o)
{
	char path[PATH_MAX], dir[PATH_MAX];
	bool maps = !strcmp(sub, "maps");
	struct dirent *de;
	DIR *d;

	if (x2b_path(dir, sizeof(dir), "%s/%s", root, sub))
		return;
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		bool keep;

		if (de->d_name[0] == '.')
			continue;
		if (maps) {
			struct bpf_map *m = bpf_object__find_map_by_name(o->obj, de->d_name);

			keep = m && !bpf_map__is_internal(m);
		} else {
			keep = bpf_object__find_program_by_name(o->obj, de->d_name) != NULL;
		}
		if (!keep && !x2b_path(path, sizeof(path), "%s/%s", dir, de->d_name))
			unlink(path);
	}
	closedir(d);
}

/* Removes staging: detaches links an interrupted replace left attached there. */
static int remove_staging(const char *staging)
{
	char dir[PATH_MAX];

	if (!x2b_path(dir, sizeof(dir), "%s/links", staging))
		detach_links(dir);
	return remove_tree(staging);
}

int x2b_cmd_replace(const char *bundle, const char *name)
{
	struct swap swaps[8] = {};
	char root[PATH_MAX], state[PATH_MAX], staging[PATH_MAX], cgpath[PATH_MAX], path[PATH_MAX];
	struct x2b_bundle b = {};
	struct x2b_object o = {};
	bool swapped = false, made_staging = false;
	int lockfd = -1, cgfd = -1, nupdated = 0, nadded = 0, ndetached = 0, err;
	struct x2b_dns *dns = NULL;

	for (size_t i = 0; i < x2b_nattach; i++)
		swaps[i].old_prog_fd = -1;
	err = name_paths(name, root, state);
	if (err)
		return err;
	if (x2b_path(staging, sizeof(staging), "%s/%s", root, X2B_STAGING))
		return X2B_EXIT_USAGE;
	if (!exists(state) || !exists(root)) {
		x2b_err("no bundle named '%s' is loaded (nothing at %s)", name,
			exists(state) ? root : state);
		return X2B_EXIT_REJECT;
	}
	err = x2b_lock_state(state, &lockfd);
	if (err)
		return err;
	err = read_cgroup(state, cgpath, sizeof(cgpath));
	if (err) {
		x2b_err("cannot read the cgroup of '%s' from %s: %s", name, state, strerror(-err));
		err = X2B_EXIT_REJECT;
		goto cleanup;
	}

	/* 1. the new object, loaded and completely filled, before anything changes */
	err = x2b_bundle_open(bundle, &b);
	if (err)
		goto cleanup;
	err = x2b_dns_resolve_bundle(&b, &dns);
	if (err)
		goto cleanup;
	err = x2b_object_load(&b, &o);
	if (err)
		goto cleanup;
	if (exists(staging)) {
		x2b_warn("removing %s left by an interrupted replace", staging);
		remove_staging(staging);
	}
	err = make_pin_dirs(staging, &made_staging);
	if (err)
		goto cleanup;
	err = pin_objects(&o, staging);
	if (err)
		goto cleanup;
	if (x2b_fail_point("replace-after-fill")) {
		err = X2B_EXIT_REJECT;
		goto cleanup;
	}

	/* 2. swap: update the existing link of each attach kind in place, attach new kinds */
	for (size_t i = 0; i < x2b_nattach; i++) {
		const struct x2b_attach_desc *ad = &x2b_attach_descs[i];
		const x2b_mprog *mp = x2b_manifest_prog_for_attach(b.m, ad->kind);
		struct swap *s = &swaps[i];
		struct bpf_program *prog;

		if (!mp)
			continue;
		prog = x2b_object_prog(&o, mp->name);
		if (x2b_path(path, sizeof(path), "%s/links/%s", root, ad->pin)) {
			err = X2B_EXIT_USAGE;
			goto cleanup;
		}
		if (exists(path)) {
			s->link = bpf_link__open(path);
			if (!s->link) {
				err = -errno;
				x2b_err("cannot open link %s: %s", path, strerror(-err));
				err = x2b_exit_for_errno(err);
				goto cleanup;
			}
			err = link_prog_fd(bpf_link__fd(s->link));
			if (err < 0) {
				x2b_err("cannot find the program of link %s: %s", path,
					strerror(-err));
				err = X2B_EXIT_REJECT;
				goto cleanup;
			}
			s->old_prog_fd = err;
			err = bpf_link__update_program(s->link, prog);
			if (err) {
				x2b_err("cannot update link %s to '%s': %s", path, mp->name,
					strerror(-err));
				close(s->old_prog_fd);
				s->old_prog_fd = -1;
				err = x2b_exit_for_errno(err);
				goto cleanup;
			}
			swapped = true;
			nupdated++;
			if (x2b_fail_point("replace-mid-swap")) {
				err = X2B_EXIT_REJECT;
				goto cleanup;
			}
			continue;
		}
		if (cgfd < 0)
			cgfd = open(cgpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cgfd < 0) {
			x2b_err("cannot open cgroup %s: %s", cgpath, strerror(errno));
			err = X2B_EXIT_REJECT;
			goto cleanup;
		}
		s->link = bpf_program__attach_cgroup(prog, cgfd);
		if (!s->link) {
			err = -errno;
			x2b_err("cannot attach '%s' to %s as %s: %s", mp->name, cgpath, ad->label,
				strerror(-err));
			err = x2b_exit_for_errno(err);
			goto cleanup;
		}
		swapped = true;
		nadded++;
		if (x2b_path(path, sizeof(path), "%s/links/%s", staging, ad->pin)) {
			err = X2B_EXIT_USAGE;
			goto cleanup;
		}
		err = bpf_link__pin(s->link, path);
		if (err) {
			x2b_err("cannot pin link at %s: %s", path, strerror(-err));
			err = x2b_exit_for_errno(err);
			goto cleanup;
		}
	}
	/* the swap happened: nothing below rolls it back */
	swapped = false;
	x2b_settle();

	/* 3. commit: detach kinds the new bundle lacks, new pins over old ones */
	for (size_t i = 0; i < x2b_nattach; i++) {
		const struct x2b_attach_desc *ad = &x2b_attach_descs[i];
		int fd;

		if (x2b_manifest_prog_for_attach(b.m, ad->kind))
			continue;
		if (x2b_path(path, sizeof(path), "%s/links/%s", root, ad->pin) || !exists(path))
			continue;
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			if (bpf_link_detach(fd))
				x2b_warn("cannot detach link %s: %s", path, strerror(errno));
			close(fd);
		}
		unlink(path);
		ndetached++;
	}
	for (size_t i = 0; i < 3; i++) {
		int e = commit_dir(root, x2b_subdirs[i]);

		if (e) {
			x2b_err("cannot move the new pins from %s/%s: %s", staging, x2b_subdirs[i],
				strerror(-e));
			err = X2B_EXIT_INTERNAL;
		}
	}
	prune_dir(root, "progs", &o);
	prune_dir(root, "maps", &o);
	/* after the swap staging is kept when a move failed: its pins hold live objects */
	made_staging = false;
	if (!err)
		remove_tree(staging);
	err = write_state(state, &b, NULL, o.variant) ?: err;
	if (!err)
		x2b_note(
			"replaced '%s': %d links updated, %d attached, %d detached; %zu programs, %zu maps",
			name, nupdated, nadded, ndetached, b.m->n_programs, b.m->n_maps);
cleanup:
	if (swapped) {
		/* roll back: old programs on updated links; new links go with staging */
		for (size_t i = 0; i < x2b_nattach; i++) {
			struct swap *s = &swaps[i];

			if (s->old_prog_fd >= 0 &&
			    bpf_link_update(bpf_link__fd(s->link), s->old_prog_fd, NULL))
				x2b_err("rollback of link %s failed: %s", x2b_attach_descs[i].pin,
					strerror(errno));
		}
		x2b_note("rolled back: '%s' still runs the previous bundle", name);
	}
	if (err && made_staging)
		remove_tree(staging);
	for (size_t i = 0; i < x2b_nattach; i++) {
		if (swaps[i].old_prog_fd >= 0)
			close(swaps[i].old_prog_fd);
		bpf_link__destroy(swaps[i].link);
	}
	if (cgfd >= 0)
		close(cgfd);
	if (lockfd >= 0)
		close(lockfd);
	x2b_object_close(&o);
	x2b_bundle_close(&b);
	return x2b_dns_finish(name, "replaced", err, dns);
}

int x2b_cmd_unload(const char *name)
{
	char root[PATH_MAX], state[PATH_MAX], dir[PATH_MAX];
	int lockfd = -1, ndetached = 0, err, e;

	err = name_paths(name, root, state);
	if (err)
		return err;
	if (!exists(root) && !exists(state)) {
		x2b_err("no bundle named '%s' is loaded (neither %s nor %s exists)", name, root,
			state);
		return X2B_EXIT_REJECT;
	}
	if (exists(state)) {
		err = x2b_lock_state(state, &lockfd);
		if (err)
			return err;
	}
	/* detach explicitly: another holder of a link fd must not keep it attached */
	if (!x2b_path(dir, sizeof(dir), "%s/links", root))
		ndetached += detach_links(dir);
	if (!x2b_path(dir, sizeof(dir), "%s/%s/links", root, X2B_STAGING))
		ndetached += detach_links(dir);
	err = remove_tree(root);
	if (err) {
		x2b_err("cannot remove %s: %s", root, strerror(-err));
		err = X2B_EXIT_INTERNAL;
	}
	if ((e = remove_tree(state))) {
		x2b_err("cannot remove %s: %s", state, strerror(-e));
		err = X2B_EXIT_INTERNAL;
	}
	if (lockfd >= 0)
		close(lockfd);
	if (!err)
		x2b_note("unloaded '%s' (%d links detached)", name, ndetached);
	return err;
}
