// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* status and stats: read the state directory and the pins; text, JSON or Prometheus. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

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

/*
 * The last lookups of the DNS clusters (STATE/dns.txt, written by dns.c: cluster,
 * host, port, state, TTL, rows, addresses or error; tab separated, one host a line).
 */
static void status_dns(const struct loaded *l)
{
	char path[PATH_MAX], *line, *save = NULL;
	void *data = NULL;
	size_t n = 0, k = 0;

	if (x2b_json)
		printf(",\"dns\":[");
	if (x2b_path(path, sizeof(path), "%s/dns.txt", l->state) ||
	    x2b_read_file(path, &data, &n) || !n) {
		if (x2b_json)
			printf("]");
		else if (l->m->n_dns_clusters)
			printf("  dns:        not resolved yet (run 'refresh --name %s')\n",
			       l->name);
		free(data);
		return;
	}
	((char *)data)[n - 1] = '\0'; /* the last newline */
	if (!x2b_json)
		printf("  dns:\n");
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[7] = {}, *fs = NULL, *p = line;
		size_t nf = 0;

		while (nf < 7 && (f[nf] = strtok_r(p, "\t", &fs)))
			nf++, p = NULL;
		if (nf < 6)
			continue;
		if (!f[6])
			f[6] = "";
		if (x2b_json) {
			bool ok = !strcmp(f[3], "ok") || !strcmp(f[3], "address");

			printf("%s{\"cluster\":", k++ ? "," : "");
			x2b_json_str(stdout, f[0]);
			printf(",\"host\":");
			x2b_json_str(stdout, f[1]);
			printf(",\"port\":%s,\"state\":", f[2]);
			x2b_json_str(stdout, f[3]);
			printf(",\"ttl\":%s,\"rows\":", f[4]);
			x2b_json_str(stdout, f[5]);
			printf(",\"%s\":", ok ? "addresses" : "error");
			x2b_json_str(stdout, f[6]);
			printf("}");
		} else {
			printf("    %-24s %s:%s  %s%s  %s\n", f[0], f[1], f[2], f[3],
			       strcmp(f[5], "kept") ? "" : " (rows kept from before)", f[6]);
		}
	}
	if (x2b_json)
		printf("]");
	free(data);
}

/* The exact listener slots: x2b_lsnx, and x2b_lsn4 for the IPv4 rows' fast path (ABI 8). */
struct slot_maps {
	const struct x2b_lsn_slot *x;
	const struct x2b_lsn4_slot *v4; /* NULL: none (then no IPv4 row has a fast path) */
	__u32 n, n4;
	size_t len, len4;
};

static int open_slot_maps(const struct loaded *l, struct slot_maps *sm)
{
	int err;

	memset(sm, 0, sizeof(*sm));
	/* read-only mappings: one instead of a lookup per slot */
	sm->x = x2b_map_values(l->root, "x2b_lsnx", sizeof(*sm->x), PROT_READ, &sm->n, &sm->len,
			       &err);
	if (!sm->x)
		return err;
	sm->v4 = x2b_map_values(l->root, "x2b_lsn4", sizeof(*sm->v4), PROT_READ, &sm->n4, &sm->len4,
				&err);
	return err;
}

static void close_slot_maps(struct slot_maps *sm)
{
	if (sm->x)
		munmap((void *)sm->x, sm->len);
	if (sm->v4)
		munmap((void *)sm->v4, sm->len4);
}

/* Slot i's range or counter: an IPv4 row's in x2b_lsn4, any other row's in x2b_lsnx. */
static __u64 slot_word(const struct slot_maps *sm, __u32 i, bool connects)
{
	if (sm->x[i].key.family == X2B_FAM_INET4) {
		if (!sm->v4 || i >= sm->n4)
			return 0;
		return __atomic_load_n(connects ? &sm->v4[i].connects : &sm->v4[i].range,
				       __ATOMIC_RELAXED);
	}
	return __atomic_load_n(connects ? &sm->x[i].connects : &sm->x[i].range, __ATOMIC_RELAXED);
}

/*
 * The service addresses of x2b_lsnx (its exact rows) and how many of them
 * balance from their slot (a range: one level of unweighted round robin).
 * Returns false when the bundle has no such table.
 */
static bool slot_counts(const struct loaded *l, size_t *fast, size_t *exact)
{
	struct slot_maps sm;

	*fast = *exact = 0;
	if (open_slot_maps(l, &sm) || !sm.x) {
		close_slot_maps(&sm);
		return false;
	}
	for (__u32 i = 0; i < sm.n; i++) {
		if (!sm.x[i].key.family)
			continue;
		(*exact)++;
		if (slot_word(&sm, i, false) != X2B_RANGE_NONE)
			(*fast)++;
	}
	close_slot_maps(&sm);
	return true;
}

static void status_one(const struct loaded *l, bool first)
{
	struct x2b_kv *upd, *vers;
	size_t nupd, nvers;
	const char *live, *when;
	const x2b_manifest *m = l->m;
	char cgroup[PATH_MAX], bundle[PATH_MAX], variant[32];
	struct bpf_link_info li;
	size_t fast, exact;
	bool slots = slot_counts(l, &fast, &exact);

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
		/* what the bundle refuses (fail closed) or bypasses: `xds2bpf inspect` lists them */
		printf(",\"refused_fail_closed\":%zu,\"bypassed_filters\":%zu",
		       m->n_refused_fail_closed, m->n_bypassed_filters);
		if (slots)
			printf(",\"exact_listener_rows\":%zu,\"fast_path_rows\":%zu", exact, fast);
		status_dns(l);
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
		if (m->n_refused_fail_closed)
			printf("  refused     %zu place(s) of the snapshot need what the kernel cannot run: "
			       "refused (fail closed; xds2bpf inspect lists them)\n",
			       m->n_refused_fail_closed);
		if (m->n_bypassed_filters)
			printf("  bypassed    %zu filter(s) that can deny traffic are NOT enforced "
			       "(compiled with --unsupported=warn; xds2bpf inspect lists them)\n",
			       m->n_bypassed_filters);
		if (slots && exact)
			printf("  fast path   %zu of %zu exact listener addresses balance from their slot "
			       "(one level of round robin without weights)\n",
			       fast, exact);
		status_dns(l);
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
	[X2B_G_REFUSED] = "refused_by_route",
	[X2B_G_PASSTHROUGH] = "passthrough",
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

/* Prometheus' text exposition format (0.0.4), see docs/deploy.md "Metrics". */

/* A label value (or HELP text: no '"' escaping) in the format's escaping. */
static void prom_escape(FILE *f, const char *s, bool label)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (*s == '"' && label)
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

static void prom_family(FILE *f, const char *metric, const char *type, const char *help)
{
	fprintf(f, "# HELP %s ", metric);
	prom_escape(f, help, false);
	fprintf(f, "\n# TYPE %s %s\n", metric, type);
}

/* metric{bundle="NAME" ... then prom_label() for each label, then prom_value(). */
static void prom_start(FILE *f, const char *metric, const char *bundle)
{
	fprintf(f, "%s{bundle=\"", metric);
	prom_escape(f, bundle, true);
	fputc('"', f);
}

static void prom_label(FILE *f, const char *key, const char *value)
{
	fprintf(f, ",%s=\"", key);
	prom_escape(f, value, true);
	fputc('"', f);
}

static void prom_value(FILE *f, unsigned long long v)
{
	fprintf(f, "} %llu\n", v);
}

/* One sample with the bundle label only. */
static void prom_one(FILE *f, const char *metric, const char *type, const char *help,
		     const char *bundle, unsigned long long v)
{
	prom_family(f, metric, type, help);
	prom_start(f, metric, bundle);
	prom_value(f, v);
}

/* "ip:port" of an ABI endpoint address (network-order port), IPv6 in brackets. */
static void endpoint_text(__u8 family, const __u8 *addr, __u16 port_be, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	inet_ntop(family == X2B_FAM_INET4 ? AF_INET : AF_INET6, addr, ip, sizeof(ip));
	snprintf(out, len, family == X2B_FAM_INET4 ? "%s:%u" : "[%s]:%u", ip, ntohs(port_be));
}

/* A pinned map of this bundle with the expected type and sizes; -1 when absent or different. */
static int pinned_map(const struct loaded *l, const char *map, __u32 type, __u32 key_size,
		      __u32 value_size, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);
	int fd = pinned_fd(l, "maps", map);

	memset(info, 0, sizeof(*info));
	if (fd < 0)
		return -1;
	if (bpf_obj_get_info_by_fd(fd, info, &len) || info->type != type ||
	    info->key_size != key_size || info->value_size != value_size) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The connects service addresses balanced from their slot (x2b_lsnx, an IPv4
 * row's x2b_lsn4; the fast path counts them there, not in x2b_astat): each one matched the slot's
 * listener and was redirected by its action's cluster.
 */
static int fold_slot_counters(const struct loaded *l, struct counters *ls, struct counters *cs)
{
	struct slot_maps sm;
	int err = open_slot_maps(l, &sm);

	for (__u32 i = 0; !err && sm.x && i < sm.n; i++) {
		const struct x2b_lsn_slot *s = &sm.x[i];
		__u64 connects;

		if (!s->key.family)
			continue;
		connects = slot_word(&sm, i, true);
		if (!connects)
			continue;
		if (s->act.listener < ls->n)
			ls->v[s->act.listener] += connects;
		if (s->act.kind == X2B_ACT_CLUSTER && cs->present && s->act.target < cs->n)
			cs->v[s->act.target] += connects;
	}
	close_slot_maps(&sm);
	return err;
}

/*
 * Connects per listener and per cluster from the per-action counters
 * (x2b_astat, ABI 4): an action's `matched` runs count for its listener
 * (x2b_act[a].listener), the `redirected` ones of an X2B_ACT_CLUSTER action
 * for its cluster, added to *cs (x2b_cstat: clusters picked per connect).
 * The data plane keeps one per-CPU row per connect; the sums are made here.
 */
static int fold_action_counters(const struct loaded *l, struct counters *ls, struct counters *cs)
{
	struct bpf_map_info si = {}, ai = {};
	int ncpus = libbpf_num_possible_cpus(), sfd, afd = -1, err = 0;
	struct x2b_astat *vals = NULL;
	__u32 nlisteners = (__u32)l->m->n_listeners;

	memset(ls, 0, sizeof(*ls));
	sfd = pinned_map(l, "x2b_astat", BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(struct x2b_astat),
			 &si);
	if (sfd < 0)
		return 0; /* no such counters in this bundle */
	afd = pinned_map(l, "x2b_act", BPF_MAP_TYPE_ARRAY, 4, sizeof(struct x2b_action), &ai);
	if (afd < 0 || ncpus <= 0)
		goto out;
	ls->v = calloc(nlisteners ? nlisteners : 1, sizeof(__u64));
	vals = calloc(ncpus, sizeof(*vals));
	if (!ls->v || !vals) {
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	ls->n = nlisteners;
	ls->present = true;
	for (__u32 a = 0; a < si.max_entries && a < ai.max_entries; a++) {
		struct x2b_action act;
		__u64 matched = 0, redirected = 0;

		if (bpf_map_lookup_elem(sfd, &a, vals) || bpf_map_lookup_elem(afd, &a, &act)) {
			x2b_err("cannot read x2b_astat/x2b_act[%u]: %s", a, strerror(errno));
			err = X2B_EXIT_INTERNAL;
			goto out;
		}
		for (int cpu = 0; cpu < ncpus; cpu++) {
			matched += vals[cpu].matched;
			redirected += vals[cpu].redirected;
		}
		if (matched && act.listener < ls->n)
			ls->v[act.listener] += matched;
		if (redirected && act.kind == X2B_ACT_CLUSTER && cs->present && act.target < cs->n)
			cs->v[act.target] += redirected;
	}
	err = fold_slot_counters(l, ls, cs);
out:
	free(vals);
	if (afd >= 0)
		close(afd);
	close(sfd);
	return err;
}

/*
 * The live row of cluster `cid` (x2b_cluv -> x2b_clu) when it routes through
 * endpoints: false for a row that cannot be read, is out of range, or passes
 * connects through (ORIGINAL_DST).
 */
static bool live_cluster_row(int vfd, int cfd, __u32 cid, struct x2b_cluster *c)
{
	__u32 live, row;

	if (bpf_map_lookup_elem(vfd, &cid, &live))
		return false;
	row = cid * 2 + (live & 1);
	return !bpf_map_lookup_elem(cfd, &row, c) && c->nlevels <= X2B_MAX_PRIORITIES &&
	       !(c->flags & X2B_CLU_PASSTHROUGH);
}

/* Endpoints per level of every cluster's live row (x2b_cluv -> x2b_clu). */
static void prom_cluster_endpoints(FILE *f, const struct loaded *l)
{
	static const char metric[] = "xds2bpf_cluster_endpoints";
	struct bpf_map_info vi, ci;
	int vfd, cfd;
	bool head = false;

	vfd = pinned_map(l, "x2b_cluv", BPF_MAP_TYPE_ARRAY, 4, 4, &vi);
	cfd = pinned_map(l, "x2b_clu", BPF_MAP_TYPE_ARRAY, 4, sizeof(struct x2b_cluster), &ci);
	if (vfd < 0 || cfd < 0)
		goto out;
	for (size_t i = 0; i < l->m->n_clusters; i++) {
		const char *cname = l->m->clusters[i]->name;
		struct x2b_cluster c;

		if (!live_cluster_row(vfd, cfd, l->m->clusters[i]->index, &c))
			continue;
		if (!head)
			prom_family(
				f, metric, "gauge",
				"Endpoints the data plane picks from now, per level of the cluster's "
				"live row (in-place updates included): level 0 is the first priority "
				"that carries load, then the next ones in priority order; 0 when the "
				"cluster has none (ORIGINAL_DST clusters are not listed)");
		head = true;
		/* a cluster without endpoints: level 0 with none (its connects are refused) */
		for (__u32 lv = 0; lv < (c.nlevels ? c.nlevels : 1); lv++) {
			char level[16];

			snprintf(level, sizeof(level), "%u", lv);
			prom_start(f, metric, l->name);
			prom_label(f, "cluster", cname);
			prom_label(f, "level", level);
			prom_value(f, c.nlevels ? c.levels[lv].count : 0);
		}
	}
out:
	if (vfd >= 0)
		close(vfd);
	if (cfd >= 0)
		close(cfd);
}

/* Endpoint records by address (family, port, address), for merging duplicates. */
static int endpoint_address_cmp(const void *a, const void *b)
{
	const struct x2b_endpoint *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->port != y->port)
		return ntohs(x->port) < ntohs(y->port) ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

/*
 * Connects per endpoint of every cluster's live levels (x2b_endpoint.connects,
 * counted in the row the pick reads). An address that appears twice in a
 * cluster's live levels is one series (the counts added), so label sets stay
 * unique. Rows an in-place update retired are not listed: their endpoint's new
 * row starts at 0, which Prometheus reads as a counter reset.
 */
static void prom_endpoint_connects(FILE *f, const struct loaded *l)
{
	static const char metric[] = "xds2bpf_endpoint_connects_total";
	struct bpf_map_info vi, ci, ei, e4i;
	int vfd, cfd, efd, e4fd;
	bool head = false;

	vfd = pinned_map(l, "x2b_cluv", BPF_MAP_TYPE_ARRAY, 4, 4, &vi);
	cfd = pinned_map(l, "x2b_clu", BPF_MAP_TYPE_ARRAY, 4, sizeof(struct x2b_cluster), &ci);
	efd = pinned_map(l, "x2b_ep", BPF_MAP_TYPE_ARRAY, 4, sizeof(struct x2b_endpoint), &ei);
	/* the IPv4 fast path counts in x2b_ep4 (ABI 8), at the same index */
	e4fd = pinned_map(l, "x2b_ep4", BPF_MAP_TYPE_ARRAY, 4, sizeof(struct x2b_ep4), &e4i);
	if (vfd < 0 || cfd < 0 || efd < 0)
		goto out;
	for (size_t i = 0; i < l->m->n_clusters; i++) {
		struct x2b_endpoint *eps = NULL;
		struct x2b_cluster c;
		__u32 n = 0, cap = 0, w;

		if (!live_cluster_row(vfd, cfd, l->m->clusters[i]->index, &c))
			continue;
		for (__u32 lv = 0; lv < c.nlevels; lv++) {
			for (__u32 k = 0; k < c.levels[lv].count && k < ei.max_entries; k++) {
				__u32 idx = c.levels[lv].first + k;
				struct x2b_endpoint ep;
				struct x2b_ep4 ep4;

				if (bpf_map_lookup_elem(efd, &idx, &ep))
					continue;
				if (e4fd >= 0 && !bpf_map_lookup_elem(e4fd, &idx, &ep4))
					ep.connects += ep4.connects;
				if (n == cap) {
					struct x2b_endpoint *grown =
						realloc(eps, (cap ? 2 * cap : 16) * sizeof(*eps));

					if (!grown)
						break;
					eps = grown;
					cap = cap ? 2 * cap : 16;
				}
				eps[n++] = ep;
			}
		}
		/* by address, each address once (its rows' counts added): one series per label set */
		if (n)
			qsort(eps, n, sizeof(*eps), endpoint_address_cmp);
		w = 0;
		for (__u32 j = 0; j < n; j++) {
			if (w && !endpoint_address_cmp(&eps[w - 1], &eps[j]))
				eps[w - 1].connects += eps[j].connects;
			else
				eps[w++] = eps[j];
		}
		n = w;
		for (__u32 j = 0; j < n; j++) {
			char addr[INET6_ADDRSTRLEN + 16];

			if (!head)
				prom_family(
					f, metric, "counter",
					"Connects sent to the endpoint by the cluster (its live "
					"levels; an endpoint an in-place update re-adds starts again "
					"at 0)");
			head = true;
			endpoint_text(eps[j].family, eps[j].addr, eps[j].port, addr, sizeof(addr));
			prom_start(f, metric, l->name);
			prom_label(f, "cluster", l->m->clusters[i]->name);
			prom_label(f, "endpoint", addr);
			prom_value(f, eps[j].connects);
		}
		free(eps);
	}
out:
	if (vfd >= 0)
		close(vfd);
	if (cfd >= 0)
		close(cfd);
	if (efd >= 0)
		close(efd);
	if (e4fd >= 0)
		close(e4fd);
}

/* HTTP routing decisions per kind (x2b_hstat; bundles with HTTP routes, the module's build). */
static void prom_http_decisions(FILE *f, const struct loaded *l)
{
	static const char metric[] = "xds2bpf_http_decisions_total";
	static const char *const kinds[X2B_HK_COUNT] = {
		[X2B_HK_CLUSTER] = "cluster",	   [X2B_HK_NO_VHOST] = "no_virtual_host",
		[X2B_HK_NO_ROUTE] = "no_route",	   [X2B_HK_TLS_REDIRECT] = "tls_redirect",
		[X2B_HK_LOCAL] = "local_response", [X2B_HK_NO_CLUSTER] = "no_cluster",
		[X2B_HK_ERROR] = "unusable_head",  [X2B_HK_BAD_REQUEST] = "bad_request",
	};
	struct counters h;

	if (read_counters(l, "x2b_hstat", &h) || !h.present)
		goto out;
	prom_family(
		f, metric, "counter",
		"Requests the kernel routed by their head (defer-connect module), per decision: "
		"cluster (forwarded), no_virtual_host and no_route (Envoy answers 404), "
		"tls_redirect, local_response (redirect or direct response), no_cluster, "
		"bad_request (refused as Envoy's codec refuses the head), unusable_head "
		"(cut short or not parsed: L4 fallback or refused)");
	for (__u32 k = 0; k < X2B_HK_COUNT && k < h.n; k++) {
		prom_start(f, metric, l->name);
		prom_label(f, "kind", kinds[k]);
		prom_value(f, h.v[k]);
	}
out:
	free(h.v);
}

/* Active connections per endpoint address (x2b_active: least-request clusters). */
static void prom_active(FILE *f, const struct loaded *l)
{
	static const char metric[] = "xds2bpf_endpoint_active_connections";
	struct bpf_map_info info;
	struct x2b_epkey key, next;
	bool head = false, first = true;
	int fd = pinned_map(l, "x2b_active", BPF_MAP_TYPE_HASH, sizeof(struct x2b_epkey), 4, &info);

	if (fd < 0)
		return;
	/* at most max_entries keys: a map that keeps changing cannot loop us forever */
	for (__u32 n = 0; n < info.max_entries; n++) {
		char ep[INET6_ADDRSTRLEN + 16];
		__u32 v;

		if (bpf_map_get_next_key(fd, first ? NULL : &key, &next))
			break;
		first = false;
		key = next;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue;
		if (key.family != X2B_FAM_INET4 && key.family != X2B_FAM_INET6)
			continue;
		if (!head)
			prom_family(
				f, metric, "gauge",
				"TCP connections open to the endpoint address, counted by the "
				"sock_ops program for least-request clusters only (per address: an "
				"address in several clusters has one count)");
		head = true;
		endpoint_text(key.family, key.addr, key.port, ep, sizeof(ep));
		prom_start(f, metric, l->name);
		prom_label(f, "endpoint", ep);
		prom_value(f, v);
	}
	close(fd);
}

/* Per-program run counts and run time (kernel.bpf_stats_enabled) and verified instructions. */
static void prom_programs(FILE *f, const struct loaded *l)
{
	static const char *const metric[] = {
		"xds2bpf_program_runs_total",
		"xds2bpf_program_run_seconds_total",
		"xds2bpf_program_verified_instructions",
	};
	static const char *const type[] = { "counter", "counter", "gauge" };
	static const char *const help[] = {
		"Runs of the BPF program (bpf_prog_info.run_cnt); counted only while "
		"kernel.bpf_stats_enabled is 1; a tail-called program's runs are counted in the "
		"program that called it",
		"Time spent in the BPF program (bpf_prog_info.run_time_ns); counted only while "
		"kernel.bpf_stats_enabled is 1; includes the programs it tail-calls",
		"Instructions the verifier processed when the program was loaded",
	};

	for (int k = 0; k < 3; k++) {
		prom_family(f, metric[k], type[k], help[k]);
		for (size_t i = 0; i < l->m->n_programs; i++) {
			const x2b_mprog *p = l->m->programs[i];
			const struct x2b_attach_desc *ad = x2b_attach_by_kind(p->attach);
			struct bpf_prog_info info = {};
			__u32 len = sizeof(info);
			int fd = pinned_fd(l, "progs", p->name);

			if (fd < 0)
				continue;
			if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
				close(fd);
				continue;
			}
			close(fd);
			prom_start(f, metric[k], l->name);
			prom_label(f, "program", p->name);
			prom_label(f, "attach", ad ? ad->label : "tail_call");
			if (k == 1)
				fprintf(f, "} %llu.%09llu\n",
					(unsigned long long)(info.run_time_ns / 1000000000ULL),
					(unsigned long long)(info.run_time_ns % 1000000000ULL));
			else
				prom_value(f, k ? info.verified_insns : info.run_cnt);
		}
	}
}

static void stats_prometheus(FILE *f, const struct loaded *l, const char *snap,
			     const struct counters *g, const struct counters *ls,
			     const struct counters *cs)
{
	static const struct {
		__u32 idx;
		const char *metric, *help;
	} global[] = {
		{ X2B_G_SEEN, "xds2bpf_connects_total",
		  "connect() calls of IPv4 and IPv6 sockets in the cgroup that the entry programs saw" },
		{ X2B_G_UNMATCHED, "xds2bpf_connects_unmatched_total",
		  "Connects that matched no listener: passed through unchanged" },
		{ X2B_G_NO_ENDPOINT, "xds2bpf_connects_no_endpoint_total",
		  "Connects refused (EPERM) because the cluster had no usable endpoint" },
		{ X2B_G_PASSTHROUGH, "xds2bpf_connects_passthrough_total",
		  "Connects routed to an ORIGINAL_DST cluster (Istio's PassthroughCluster): left "
		  "to their original destination" },
		{ X2B_G_FAMILY, "xds2bpf_connects_family_mismatch_total",
		  "Connects of an IPv4 socket whose chosen endpoint is IPv6: passed through "
		  "unchanged" },
	};
	struct x2b_kv *upd;
	size_t nupd;
	const char *s;
	char cgroup[PATH_MAX], variant[32];

	read_line(l->state, "cgroup", cgroup, sizeof(cgroup));
	read_line(l->state, "variant", variant, sizeof(variant));
	read_kv(l->state, "update.json", &upd, &nupd);

	prom_family(f, "xds2bpf_bundle_info", "gauge",
		    "The loaded bundle: live snapshot (after in-place updates), the bundle's own "
		    "snapshot, generated code, compiler version, object variant and cgroup");
	prom_start(f, "xds2bpf_bundle_info", l->name);
	prom_label(f, "snapshot_sha256", snap);
	prom_label(f, "bundle_snapshot_sha256", l->m->snapshot_sha256);
	prom_label(f, "code_sha256", l->m->code_sha256);
	prom_label(f, "xds2bpf_version", l->m->xds2bpf_version);
	prom_label(f, "variant", *variant ? variant : "l4");
	prom_label(f, "cgroup", x2b_utf8_valid(cgroup, strlen(cgroup)) ? cgroup : "?");
	prom_value(f, 1);

	s = NULL;
	for (size_t i = 0; i < nupd; i++)
		if (!strcmp(upd[i].key, "updates") && !upd[i].is_string)
			s = upd[i].value;
	prom_one(f, "xds2bpf_in_place_updates_total", "counter",
		 "In-place endpoint updates (xds2bpf-loader update) since the bundle was loaded or "
		 "replaced",
		 l->name, s ? strtoull(s, NULL, 10) : 0);
	for (size_t i = 0; i < nupd; i++)
		if (!strcmp(upd[i].key, "unix_time") && !upd[i].is_string)
			prom_one(f, "xds2bpf_last_in_place_update_timestamp_seconds", "gauge",
				 "Unix time of the last in-place update", l->name,
				 strtoull(upd[i].value, NULL, 10));
	x2b_json_flat_free(upd, nupd);

	for (size_t k = 0; g->present && k < sizeof(global) / sizeof(global[0]); k++)
		if (global[k].idx < g->n)
			prom_one(f, global[k].metric, "counter", global[k].help, l->name,
				 g->v[global[k].idx]);
	if (g->present && X2B_G_REFUSED < g->n)
		prom_one(
			f, "xds2bpf_connects_refused_total", "counter",
			"Connects refused (EPERM), whatever the reason: the cluster had no usable "
			"endpoint (also in xds2bpf_connects_no_endpoint_total) or the route refuses "
			"(unknown cluster; with the defer-connect module a request Envoy would answer "
			"itself, a head its codec refuses, a TLS connection it would close)",
			l->name, g->v[X2B_G_NO_ENDPOINT] + g->v[X2B_G_REFUSED]);

	if (ls->present)
		prom_family(f, "xds2bpf_listener_connects_total", "counter",
			    "Connects that matched the listener (a filter chain of it), whatever "
			    "happened next: sent to a cluster, passed through or refused");
	for (__u32 i = 0; ls->present && i < ls->n; i++) {
		const char *addr = "", *nm = listener_name(l->m, i, &addr);

		if (!nm)
			continue;
		prom_start(f, "xds2bpf_listener_connects_total", l->name);
		prom_label(f, "listener", nm);
		prom_label(f, "address", addr);
		prom_value(f, ls->v[i]);
	}
	if (cs->present)
		prom_family(
			f, "xds2bpf_cluster_connects_total", "counter",
			"Connects sent to an endpoint of the cluster (ORIGINAL_DST clusters pass "
			"connects through and count none)");
	for (__u32 i = 0; cs->present && i < cs->n; i++) {
		const char *nm = cluster_name(l->m, i);

		if (!nm)
			continue;
		prom_start(f, "xds2bpf_cluster_connects_total", l->name);
		prom_label(f, "cluster", nm);
		prom_value(f, cs->v[i]);
	}
	prom_cluster_endpoints(f, l);
	prom_endpoint_connects(f, l);
	prom_http_decisions(f, l);
	prom_active(f, l);
	prom_programs(f, l);
}

/* DIR/xds2bpf_NAME.prom through a temporary file in DIR and rename (node_exporter reads *.prom). */
static int write_textfile(const char *dir, const char *name, const char *data, size_t len)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	int fd, err = 0;

	if (x2b_path(tmp, sizeof(tmp), "%s/.xds2bpf_%s.prom.XXXXXX", dir, name) ||
	    x2b_path(dst, sizeof(dst), "%s/xds2bpf_%s.prom", dir, name))
		return X2B_EXIT_USAGE;
	fd = mkstemp(tmp);
	if (fd < 0) {
		x2b_err("cannot create a file in %s: %s", dir, strerror(errno));
		return X2B_EXIT_INTERNAL;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			break;
		}
		off += n;
	}
	if (!err && (fchmod(fd, 0644) || fsync(fd)))
		err = errno;
	if (close(fd) && !err)
		err = errno;
	if (!err && rename(tmp, dst))
		err = errno;
	if (err) {
		unlink(tmp);
		x2b_err("cannot write %s: %s", dst, strerror(err));
		return X2B_EXIT_INTERNAL;
	}
	return 0;
}

/* The text and JSON forms (x2b_json). */
static void stats_text_json(const struct loaded *l, const char *snap, const struct counters *g,
			    const struct counters *ls, const struct counters *cs)
{
	if (x2b_json) {
		printf("{\"name\":");
		x2b_json_str(stdout, l->name);
		printf(",\"snapshot_sha256\":");
		x2b_json_str(stdout, snap);
		printf(",\"global\":");
		if (g->present) {
			printf("{");
			for (__u32 i = 0; i < g->n; i++) {
				if (i < X2B_G_COUNT)
					printf("%s\"%s\":%llu", i ? "," : "", gstat_names[i],
					       (unsigned long long)g->v[i]);
				else
					printf(",\"g%u\":%llu", i, (unsigned long long)g->v[i]);
			}
			printf("}");
		} else {
			printf("null");
		}
	} else {
		printf("%s (snapshot %s)\n", l->name, *snap ? snap : "-");
		if (g->present) {
			printf("global:\n");
			for (__u32 i = 0; i < g->n; i++)
				printf("  %-18s %llu\n", i < X2B_G_COUNT ? gstat_names[i] : "?",
				       (unsigned long long)g->v[i]);
		}
	}

	for (int which = 0; which < 2; which++) {
		const struct counters *c = which ? cs : ls;
		const char *kind = which ? "clusters" : "listeners";
		bool any = false;

		if (x2b_json)
			printf(",\"%s\":%s", kind, c->present ? "[" : "null");
		else if (c->present)
			printf("%s:\n", kind);
		for (__u32 i = 0; i < c->n; i++) {
			const char *addr = "";
			const char *nm =
				which ? cluster_name(l->m, i) : listener_name(l->m, i, &addr);

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
}

/*
 * X2B_G_SEEN is not counted by the programs (ABI 7): every TCP connect they
 * see is either unmatched or matched a listener row (x2b_astat.matched or a
 * slot's `connects`, both already summed per listener in *ls).
 */
static void derive_seen(struct counters *g, const struct counters *ls)
{
	__u64 seen;

	if (!g->present || g->n <= X2B_G_UNMATCHED)
		return;
	seen = g->v[X2B_G_UNMATCHED];
	for (__u32 i = 0; ls->present && i < ls->n; i++)
		seen += ls->v[i];
	g->v[X2B_G_SEEN] = seen;
}

int x2b_cmd_stats(const char *name, enum x2b_stats_format format, const char *textfile)
{
	struct counters g = {}, ls = {}, cs = {};
	char snap[65], *buf = NULL;
	size_t len = 0;
	struct loaded l;
	FILE *f;
	int err;

	err = open_loaded(name, &l);
	if (err)
		return err;
	live_snapshot(&l, snap);
	err = read_counters(&l, "x2b_gstat", &g) ?: read_counters(&l, "x2b_cstat", &cs) ?:
	      fold_action_counters(&l, &ls, &cs);
	if (err)
		goto cleanup;
	derive_seen(&g, &ls);

	switch (format) {
	case X2B_STATS_JSON:
	case X2B_STATS_TEXT:
		x2b_json = format == X2B_STATS_JSON;
		stats_text_json(&l, snap, &g, &ls, &cs);
		break;
	case X2B_STATS_PROMETHEUS:
		f = open_memstream(&buf, &len);
		if (!f) {
			err = X2B_EXIT_INTERNAL;
			break;
		}
		stats_prometheus(f, &l, snap, &g, &ls, &cs);
		if (fclose(f)) {
			err = X2B_EXIT_INTERNAL;
			break;
		}
		if (textfile)
			err = write_textfile(textfile, name, buf, len);
		else
			fwrite(buf, 1, len, stdout);
		break;
	}
cleanup:
	free(buf);
	free(g.v);
	free(ls.v);
	free(cs.v);
	close_loaded(&l);
	return err;
}
