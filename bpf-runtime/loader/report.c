// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* status and stats: read the state directory and the pins, text or JSON. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "x2b_abi.h"
#include "loader.h"

void x2b_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(f, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(f, "\\u%04x", *c);
		else
			fputc(*c, f);
	}
	fputc('"', f);
}

static void read_line(const char *state, const char *file, char *out, size_t len)
{
	char path[PATH_MAX];
	void *data = NULL;
	size_t n = 0;

	out[0] = '\0';
	if (x2b_path(path, sizeof(path), "%s/%s", state, file) || x2b_read_file(path, &data, &n))
		return;
	while (n && ((char *)data)[n - 1] == '\n')
		n--;
	snprintf(out, len, "%.*s", (int)n, (char *)data);
	free(data);
}

struct loaded {
	char name[NAME_MAX + 1];
	char root[PATH_MAX];
	char state[PATH_MAX];
	void *raw;
	size_t raw_len;
	x2b_manifest *m;
};

static int open_loaded(const char *name, struct loaded *l)
{
	char path[PATH_MAX];
	int err;

	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", name);
	if (x2b_path(l->root, sizeof(l->root), "%s/%s", x2b_bpffs_base(), name) ||
	    x2b_path(l->state, sizeof(l->state), "%s/%s", x2b_state_base(), name) ||
	    x2b_path(path, sizeof(path), "%s/manifest.pb", l->state))
		return X2B_EXIT_USAGE;
	err = x2b_manifest_read(path, &l->raw, &l->raw_len, &l->m);
	if (err == -ENOENT) {
		x2b_err("no bundle named '%s' is loaded (no %s)", name, path);
		return X2B_EXIT_REJECT;
	}
	if (err) {
		x2b_err("cannot read %s: %s", path, strerror(-err));
		return X2B_EXIT_INTERNAL;
	}
	return 0;
}

static void close_loaded(struct loaded *l)
{
	if (l->m)
		xds2bpf__bundle__v1__manifest__free_unpacked(l->m, NULL);
	free(l->raw);
	memset(l, 0, sizeof(*l));
}

static int pinned_fd(const struct loaded *l, const char *sub, const char *name)
{
	char path[PATH_MAX];

	if (x2b_path(path, sizeof(path), "%s/%s/%s", l->root, sub, name))
		return -ENAMETOOLONG;
	return bpf_obj_get(path);
}

static __u32 pinned_prog_id(const struct loaded *l, const char *name)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = pinned_fd(l, "progs", name);

	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.id = 0;
	close(fd);
	return info.id;
}

static bool pinned_link(const struct loaded *l, const char *pin, struct bpf_link_info *info)
{
	__u32 len = sizeof(*info);
	int fd = pinned_fd(l, "links", pin);
	bool ok;

	memset(info, 0, sizeof(*info));
	if (fd < 0)
		return false;
	ok = !bpf_obj_get_info_by_fd(fd, info, &len);
	close(fd);
	return ok;
}

/* A flat JSON object of the state directory (update.json, versions.json); n = 0 without one. */
static void read_kv(const char *state, const char *file, struct x2b_kv **kv, size_t *n)
{
	char path[PATH_MAX];
	void *data = NULL;
	size_t len = 0;

	*kv = NULL;
	*n = 0;
	if (x2b_path(path, sizeof(path), "%s/%s", state, file) ||
	    x2b_read_file_at(AT_FDCWD, path, O_NOFOLLOW, 65536, &data, &len))
		return;
	if (x2b_json_flat_parse(data, len, kv, n))
		x2b_warn("%s is not a flat JSON object; ignored", path);
	free(data);
}

static const char *kv_get(const struct x2b_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i].key, key) && kv[i].is_string)
			return kv[i].value;
	return NULL;
}

/* Text output of a value from a file: control characters shown as '?'. */
static void print_clean(const char *s)
{
	for (; *s; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* The snapshot the maps hold: the last in-place update's (update.json), else the bundle's. */
static void live_snapshot(const struct loaded *l, char out[65])
{
	struct x2b_kv *upd;
	size_t n;
	const char *s;

	read_kv(l->state, "update.json", &upd, &n);
	s = kv_get(upd, n, "snapshot_sha256");
	if (!s || strlen(s) != 64 || strspn(s, "0123456789abcdef") != 64)
		s = l->m->snapshot_sha256;
	snprintf(out, 65, "%s", s);
	x2b_json_flat_free(upd, n);
}

static void status_one(const struct loaded *l, bool first)
{
	struct x2b_kv *upd, *vers;
	size_t nupd, nvers;
	const char *live, *when;
	const x2b_manifest *m = l->m;
	char cgroup[PATH_MAX], bundle[PATH_MAX], variant[32];
	struct bpf_link_info li;

	read_line(l->state, "cgroup", cgroup, sizeof(cgroup));
	read_line(l->state, "bundle", bundle, sizeof(bundle));
	read_line(l->state, "variant", variant, sizeof(variant));
	read_kv(l->state, "update.json", &upd, &nupd);
	read_kv(l->state, "versions.json", &vers, &nvers);
	/* the snapshot the maps hold: the last in-place update's, else the bundle's */
	live = kv_get(upd, nupd, "snapshot_sha256");
	when = kv_get(upd, nupd, "time");
	if (!live || strlen(live) != 64 || strspn(live, "0123456789abcdef") != 64)
		live = m->snapshot_sha256;
	if (x2b_json) {
		printf("%s{\"name\":", first ? "" : ",");
		x2b_json_str(stdout, l->name);
		printf(",\"snapshot_sha256\":");
		x2b_json_str(stdout, live);
		printf(",\"bundle_snapshot_sha256\":");
		x2b_json_str(stdout, m->snapshot_sha256);
		printf(",\"updated\":");
		if (when)
			x2b_json_str(stdout, when);
		else
			printf("null");
		printf(",\"versions\":{");
		for (size_t i = 0; i < nvers; i++) {
			if (i)
				putchar(',');
			x2b_json_str(stdout, vers[i].key);
			putchar(':');
			if (vers[i].is_string)
				x2b_json_str(stdout, vers[i].value);
			else
				fputs(vers[i].value,
				      stdout); /* a JSON number, true, false or null */
		}
		printf("}");
		printf(",\"code_sha256\":");
		x2b_json_str(stdout, m->code_sha256);
		printf(",\"xds2bpf_version\":");
		x2b_json_str(stdout, m->xds2bpf_version);
		printf(",\"bundle\":");
		x2b_json_str(stdout, bundle);
		printf(",\"cgroup\":");
		x2b_json_str(stdout, cgroup);
		printf(",\"pins\":");
		x2b_json_str(stdout, l->root);
		printf(",\"needs_http\":%s,\"variant\":", m->needs_http ? "true" : "false");
		x2b_json_str(stdout, *variant ? variant : "l4");
		printf(",\"programs\":[");
	} else {
		printf("%s%s\n", first ? "" : "\n", l->name);
		printf("  snapshot    %s\n", *live ? live : "-");
		if (when) {
			printf("  updated     %s (in place; bundle snapshot %s)\n", when,
			       m->snapshot_sha256);
		}
		for (size_t i = 0; i < nvers; i++) {
			printf("  version     ");
			print_clean(vers[i].key);
			printf(" = ");
			print_clean(vers[i].value);
			putchar('\n');
		}
		printf("  bundle      %s\n", *bundle ? bundle : "-");
		printf("  cgroup      %s\n", *cgroup ? cgroup : "-");
		printf("  pins        %s\n", l->root);
		printf("  needs_http  %s\n", m->needs_http ? "yes" : "no");
		printf("  variant     %s\n",
		       !strcmp(variant, "http")
			       ? "http (routed per request by the defer-connect module)"
		       : m->needs_http ? "l4 (HTTP listeners use their connect-time fallback)"
				       : "l4");
		printf("  programs:\n");
	}
	for (size_t i = 0; i < m->n_programs; i++) {
		const x2b_mprog *p = m->programs[i];
		const struct x2b_attach_desc *ad = x2b_attach_by_kind(p->attach);
		__u32 id = pinned_prog_id(l, p->name);

		if (x2b_json) {
			printf("%s{\"name\":", i ? "," : "");
			x2b_json_str(stdout, p->name);
			printf(",\"id\":%u,\"attach\":\"%s\"}", id, ad ? ad->label : "tail_call");
		} else {
			printf("    %-16s id %-6u %s%s\n", p->name, id,
			       ad ? ad->label : "tail call", id ? "" : "  (pin missing!)");
		}
	}
	if (x2b_json)
		printf("],\"attach_points\":[");
	else
		printf("  attach points:\n");
	for (size_t i = 0, n = 0; i < x2b_nattach; i++) {
		const struct x2b_attach_desc *ad = &x2b_attach_descs[i];

		if (!pinned_link(l, ad->pin, &li))
			continue;
		if (x2b_json) {
			printf("%s{\"kind\":\"%s\",\"cgroup\":", n ? "," : "", ad->label);
			x2b_json_str(stdout, cgroup);
			printf(",\"link_id\":%u,\"prog_id\":%u,\"cgroup_id\":%llu}", li.id,
			       li.prog_id, (unsigned long long)li.cgroup.cgroup_id);
		} else {
			printf("    %-13s link %-6u prog %-6u %s\n", ad->label, li.id, li.prog_id,
			       cgroup);
		}
		n++;
	}
	if (x2b_json)
		printf("]}");
	x2b_json_flat_free(upd, nupd);
	x2b_json_flat_free(vers, nvers);
}

static int name_filter(const struct dirent *de)
{
	return de->d_type == DT_DIR && x2b_name_valid(de->d_name);
}

int x2b_cmd_status(const char *name)
{
	struct dirent **names = NULL;
	struct loaded l;
	int n = 0, shown = 0, err = 0;

	if (name) {
		err = open_loaded(name, &l);
		if (err)
			return err;
		if (x2b_json)
			printf("[");
		status_one(&l, true);
		if (x2b_json)
			printf("]\n");
		close_loaded(&l);
		return 0;
	}
	n = scandir(x2b_state_base(), &names, name_filter, alphasort);
	if (n < 0) {
		if (errno != ENOENT) {
			x2b_err("cannot list %s: %s", x2b_state_base(), strerror(errno));
			return X2B_EXIT_INTERNAL;
		}
		n = 0;
	}
	if (x2b_json)
		printf("[");
	for (int i = 0; i < n; i++) {
		if (!open_loaded(names[i]->d_name, &l)) {
			status_one(&l, shown == 0);
			shown++;
		}
		close_loaded(&l);
		free(names[i]);
	}
	free(names);
	if (x2b_json)
		printf("]\n");
	else if (!shown)
		printf("no bundles loaded (state directory %s)\n", x2b_state_base());
	return err;
}

struct counters {
	bool present;
	__u32 n;
	__u64 *v;
};

/* Sums a PERCPU_ARRAY of u64 over every possible CPU. */
static int read_counters(const struct loaded *l, const char *map, struct counters *c)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int ncpus = libbpf_num_possible_cpus(), fd, err = 0;
	__u64 *vals = NULL;

	memset(c, 0, sizeof(*c));
	fd = pinned_fd(l, "maps", map);
	if (fd < 0)
		return 0; /* this bundle has no such counters */
	if (ncpus <= 0 || bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	if (info.type != BPF_MAP_TYPE_PERCPU_ARRAY || info.value_size != sizeof(__u64)) {
		x2b_warn("map %s is not a PERCPU_ARRAY of u64; skipped", map);
		goto out;
	}
	c->v = calloc(info.max_entries ? info.max_entries : 1, sizeof(__u64));
	vals = calloc(ncpus, sizeof(__u64));
	if (!c->v || !vals) {
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	for (__u32 i = 0; i < info.max_entries; i++) {
		if (bpf_map_lookup_elem(fd, &i, vals)) {
			x2b_err("cannot read %s[%u]: %s", map, i, strerror(errno));
			err = X2B_EXIT_INTERNAL;
			goto out;
		}
		for (int cpu = 0; cpu < ncpus; cpu++)
			c->v[i] += vals[cpu];
	}
	c->n = info.max_entries;
	c->present = true;
out:
	free(vals);
	close(fd);
	return err;
}

static const char *const gstat_names[X2B_G_COUNT] = {
	[X2B_G_SEEN] = "seen",
	[X2B_G_UNMATCHED] = "unmatched",
	[X2B_G_NO_ENDPOINT] = "no_endpoint",
	[X2B_G_FAMILY] = "family_mismatch",
};

static const char *listener_name(const x2b_manifest *m, __u32 idx, const char **addr)
{
	for (size_t i = 0; i < m->n_listeners; i++) {
		if (m->listeners[i]->index == idx) {
			*addr = m->listeners[i]->address;
			return m->listeners[i]->name;
		}
	}
	*addr = "";
	return NULL;
}

static const char *cluster_name(const x2b_manifest *m, __u32 idx)
{
	for (size_t i = 0; i < m->n_clusters; i++)
		if (m->clusters[i]->index == idx)
			return m->clusters[i]->name;
	return NULL;
}

int x2b_cmd_stats(const char *name)
{
	struct counters g = {}, ls = {}, cs = {};
	char snap[65];
	struct loaded l;
	int err;

	err = open_loaded(name, &l);
	if (err)
		return err;
	live_snapshot(&l, snap);
	err = read_counters(&l, "x2b_gstat", &g) ?: read_counters(&l, "x2b_lstat", &ls) ?:
	      read_counters(&l, "x2b_cstat", &cs);
	if (err)
		goto cleanup;

	if (x2b_json) {
		printf("{\"name\":");
		x2b_json_str(stdout, name);
		printf(",\"snapshot_sha256\":");
		x2b_json_str(stdout, snap);
		printf(",\"global\":");
		if (g.present) {
			printf("{");
			for (__u32 i = 0; i < g.n; i++) {
				if (i < X2B_G_COUNT)
					printf("%s\"%s\":%llu", i ? "," : "", gstat_names[i],
					       (unsigned long long)g.v[i]);
				else
					printf(",\"g%u\":%llu", i, (unsigned long long)g.v[i]);
			}
			printf("}");
		} else {
			printf("null");
		}
	} else {
		printf("%s (snapshot %s)\n", name, *snap ? snap : "-");
		if (g.present) {
			printf("global:\n");
			for (__u32 i = 0; i < g.n; i++)
				printf("  %-18s %llu\n", i < X2B_G_COUNT ? gstat_names[i] : "?",
				       (unsigned long long)g.v[i]);
		}
	}

	for (int which = 0; which < 2; which++) {
		const struct counters *c = which ? &cs : &ls;
		const char *kind = which ? "clusters" : "listeners";
		bool any = false;

		if (x2b_json)
			printf(",\"%s\":%s", kind, c->present ? "[" : "null");
		else if (c->present)
			printf("%s:\n", kind);
		for (__u32 i = 0; i < c->n; i++) {
			const char *addr = "";
			const char *nm =
				which ? cluster_name(l.m, i) : listener_name(l.m, i, &addr);

			if (!nm && !c->v[i])
				continue; /* unnamed, unused slot */
			if (x2b_json) {
				printf("%s{\"index\":%u,\"name\":", any ? "," : "", i);
				x2b_json_str(stdout, nm ? nm : "");
				if (!which) {
					printf(",\"address\":");
					x2b_json_str(stdout, addr);
				}
				printf(",\"connects\":%llu}", (unsigned long long)c->v[i]);
			} else {
				printf("  %-4u %-40s %-22s %llu\n", i, nm ? nm : "?", addr,
				       (unsigned long long)c->v[i]);
			}
			any = true;
		}
		if (x2b_json && c->present)
			printf("]");
	}
	if (x2b_json)
		printf("}\n");
cleanup:
	free(g.v);
	free(ls.v);
	free(cs.v);
	close_loaded(&l);
	return err;
}
