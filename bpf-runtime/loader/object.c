// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The BPF object of a bundle: open, check against the manifest, load, fill maps. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "loader.h"

/* The kernel keeps the tail of a longer log (rotating log, Linux >= 6.4). */
#define X2B_LOG_SIZE (16U << 20)
#define X2B_LOG_TAIL_LINES 15

/*
 * libbpf messages: debug only with XDS2BPF_DEBUG, info with --verbose.
 * Warnings are held while an object loads (capture) and printed only when
 * they explain something: a verifier rejection is summarised instead.
 */
static char *captured;
static size_t captured_len;
static bool capturing;

int x2b_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	static bool debug = false, debug_checked = false;
	char line[1024];
	int n;

	if (!debug_checked) {
		debug = getenv("XDS2BPF_DEBUG") != NULL;
		debug_checked = true;
	}
	if (level == LIBBPF_DEBUG && !debug)
		return 0;
	if (level == LIBBPF_INFO && !x2b_verbose && !debug)
		return 0;
	if (!capturing || x2b_verbose || debug)
		return vfprintf(stderr, fmt, args);
	n = vsnprintf(line, sizeof(line), fmt, args);
	if (n > 0) {
		size_t add = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
		char *p = realloc(captured, captured_len + add + 1);

		if (p) {
			memcpy(p + captured_len, line, add);
			captured_len += add;
			p[captured_len] = '\0';
			captured = p;
		}
	}
	return n;
}

static void capture_begin(void)
{
	free(captured);
	captured = NULL;
	captured_len = 0;
	capturing = true;
}

static void capture_end(bool print)
{
	capturing = false;
	if (print && captured)
		fputs(captured, stderr);
	free(captured);
	captured = NULL;
	captured_len = 0;
}

static enum bpf_map_type map_kind_type(int kind)
{
	switch (kind) {
	case X2B_MAPKIND(HASH):
		return BPF_MAP_TYPE_HASH;
	case X2B_MAPKIND(ARRAY):
		return BPF_MAP_TYPE_ARRAY;
	case X2B_MAPKIND(LPM_TRIE):
		return BPF_MAP_TYPE_LPM_TRIE;
	case X2B_MAPKIND(PERCPU_ARRAY):
		return BPF_MAP_TYPE_PERCPU_ARRAY;
	case X2B_MAPKIND(PROG_ARRAY):
		return BPF_MAP_TYPE_PROG_ARRAY;
	case X2B_MAPKIND(SK_STORAGE):
		return BPF_MAP_TYPE_SK_STORAGE;
	case X2B_MAPKIND(LRU_HASH):
		return BPF_MAP_TYPE_LRU_HASH;
	default:
		return BPF_MAP_TYPE_UNSPEC;
	}
}

struct bpf_program *x2b_object_prog(const struct x2b_object *o, const char *name)
{
	return bpf_object__find_program_by_name(o->obj, name);
}

static const x2b_mmap *manifest_map(const x2b_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n_maps; i++)
		if (!strcmp(m->maps[i]->name, name))
			return m->maps[i];
	return NULL;
}

static const x2b_mprog *manifest_prog(const x2b_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n_programs; i++)
		if (!strcmp(m->programs[i]->name, name))
			return m->programs[i];
	return NULL;
}

/* The manifest and the object must describe the same programs and maps. */
static int check_object(const struct x2b_bundle *b, struct bpf_object *obj)
{
	const x2b_manifest *m = b->m;
	struct bpf_program *prog;
	struct bpf_map *map;
	int bad = 0;

	for (size_t i = 0; i < m->n_programs; i++) {
		const x2b_mprog *mp = m->programs[i];
		const struct x2b_attach_desc *ad = x2b_attach_by_kind(mp->attach);

		prog = bpf_object__find_program_by_name(obj, mp->name);
		if (!prog) {
			x2b_err("program '%s' is in the manifest but not in the object", mp->name);
			bad++;
			continue;
		}
		if (*mp->section && strcmp(mp->section, bpf_program__section_name(prog))) {
			x2b_err("program '%s': section '%s' in the object, '%s' in the manifest",
				mp->name, bpf_program__section_name(prog), mp->section);
			bad++;
		}
		if (ad && bpf_program__expected_attach_type(prog) != ad->type) {
			x2b_err("program '%s': section '%s' cannot be attached as %s", mp->name,
				bpf_program__section_name(prog), ad->label);
			bad++;
		}
	}
	bpf_object__for_each_program(prog, obj) {
		if (!manifest_prog(m, bpf_program__name(prog))) {
			x2b_err("program '%s' is in the object but not in the manifest",
				bpf_program__name(prog));
			bad++;
		}
	}
	for (size_t i = 0; i < m->n_maps; i++) {
		const x2b_mmap *mm = m->maps[i];

		map = bpf_object__find_map_by_name(obj, mm->name);
		if (!map) {
			x2b_err("map '%s' is in the manifest but not in the object", mm->name);
			bad++;
			continue;
		}
		if (bpf_map__type(map) != map_kind_type(mm->kind) ||
		    bpf_map__key_size(map) != mm->key_size ||
		    bpf_map__value_size(map) != mm->value_size ||
		    bpf_map__max_entries(map) != mm->max_entries) {
			x2b_err("map '%s': object has type %d key %u value %u max_entries %u, "
				"manifest has kind %d key %u value %u max_entries %u",
				mm->name, bpf_map__type(map), bpf_map__key_size(map),
				bpf_map__value_size(map), bpf_map__max_entries(map), mm->kind,
				mm->key_size, mm->value_size, mm->max_entries);
			bad++;
		}
		if (bpf_map__pin_path(map)) {
			x2b_err("map '%s' is declared with LIBBPF_PIN_BY_NAME; bundles must not pin "
				"(the loader pins under its own directory)",
				mm->name);
			bad++;
		}
		if (mm->entries > mm->max_entries && mm->kind != X2B_MAPKIND(SK_STORAGE)) {
			x2b_err("map '%s': image has %u entries, max_entries is %u", mm->name,
				mm->entries, mm->max_entries);
			bad++;
		}
	}
	bpf_object__for_each_map(map, obj) {
		if (bpf_map__is_internal(map))
			continue;
		if (!manifest_map(m, bpf_map__name(map))) {
			x2b_err("map '%s' is in the object but not in the manifest",
				bpf_map__name(map));
			bad++;
		}
	}
	return bad ? X2B_EXIT_REJECT : 0;
}

/* Entries per BPF_MAP_UPDATE_BATCH when filling a map from its image. */
#define X2B_FILL_BATCH 4096u

/* ENOTSUPP: the kernel's own "no batch operation for this map type" (an LPM trie), which
 * reaches user space as 524. */
static bool batch_unsupported(int err)
{
	return err == EINVAL || err == EOPNOTSUPP || err == 524;
}

/*
 * One map from its image, in batches of X2B_FILL_BATCH entries (one syscall each: a 10k
 * service bundle is 200k entries, and one syscall per entry was most of a load); entry by
 * entry where the kernel has no batch update for the map's type. The image is key, value,
 * key, value...; a batch wants the keys and the values apart, a per-CPU value once per CPU.
 */
static int fill_map(const struct x2b_bundle *b, struct bpf_map *map, const x2b_mmap *mm)
{
	const struct x2b_file *f = x2b_bundle_file(b, mm->image);
	size_t rec = (size_t)mm->key_size + mm->value_size;
	bool percpu = mm->kind == X2B_MAPKIND(PERCPU_ARRAY);
	size_t stride =
		((size_t)mm->value_size + 7) & ~(size_t)7; /* value_size <= X2B_MAX_VALUE_SIZE */
	size_t vsize = mm->value_size;
	uint32_t chunk = mm->entries < X2B_FILL_BATCH ? mm->entries : X2B_FILL_BATCH;
	bool batch = true;
	char *keys = NULL, *vals = NULL;
	int ncpus = 1, fd = bpf_map__fd(map), err = 0;
	uint32_t failed = 0;

	if (!mm->entries)
		return 0;
	if (percpu) {
		ncpus = libbpf_num_possible_cpus();
		if (ncpus <= 0) {
			x2b_err("cannot count possible CPUs: %s", strerror(-ncpus));
			return X2B_EXIT_INTERNAL;
		}
		vsize = (size_t)ncpus * stride;
	}
	keys = malloc((size_t)chunk * mm->key_size);
	vals = calloc(chunk, vsize);
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return X2B_EXIT_INTERNAL;
	}
	for (uint32_t first = 0; first < mm->entries && !err; first += chunk) {
		uint32_t n = mm->entries - first < chunk ? mm->entries - first : chunk;

		for (uint32_t i = 0; i < n; i++) {
			/* size = entries * rec */
			const char *key = (const char *)f->data + (size_t)(first + i) * rec;

			memcpy(keys + (size_t)i * mm->key_size, key, mm->key_size);
			for (int c = 0; c < ncpus; c++)
				memcpy(vals + (size_t)i * vsize + (size_t)c * stride,
				       key + mm->key_size, mm->value_size);
		}
		if (batch) {
			LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
			__u32 done = n;

			if (bpf_map_update_batch(fd, keys, vals, &done, &opts) == 0 && done == n)
				continue;
			err = -errno;
			if (first == 0 && done == 0 && batch_unsupported(-err)) {
				batch = false;
				err = 0;
			} else {
				failed = first + done;
				break;
			}
		}
		for (uint32_t i = 0; i < n; i++) {
			if (bpf_map_update_elem(fd, keys + (size_t)i * mm->key_size,
						vals + (size_t)i * vsize, BPF_ANY)) {
				err = -errno;
				failed = first + i;
				break;
			}
		}
	}
	if (err)
		x2b_err("map '%s': the kernel refused entry %u of image '%s': %s", mm->name, failed,
			mm->image, strerror(-err));
	free(keys);
	free(vals);
	return err ? x2b_exit_for_errno(err) : 0;
}

static int prog_id(int fd, __u32 *id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*id = info.id;
	return 0;
}

/* libbpf filled the prog arrays from the object's initialisers; check each documented slot. */
static int check_tail_calls(const struct x2b_bundle *b, struct bpf_object *obj)
{
	const x2b_manifest *m = b->m;
	struct bpf_map *map;
	int bad = 0;

	for (size_t i = 0; i < m->n_tail_calls; i++) {
		const x2b_mtail *t = m->tail_calls[i];
		struct bpf_map *map = bpf_object__find_map_by_name(obj, t->prog_array);
		struct bpf_program *prog = bpf_object__find_program_by_name(obj, t->program);
		__u32 got = 0, want = 0;
		int err;

		if (!map || !prog)
			return X2B_EXIT_REJECT; /* check_object reported it */
		if (t->slot >= bpf_map__max_entries(map)) {
			x2b_err("tail call %s[%u] -> %s: slot out of range (max_entries %u)",
				t->prog_array, t->slot, t->program, bpf_map__max_entries(map));
			bad++;
			continue;
		}
		err = prog_id(bpf_program__fd(prog), &want);
		if (err) {
			x2b_err("cannot read program info of '%s': %s", t->program, strerror(-err));
			return X2B_EXIT_INTERNAL;
		}
		if (bpf_map_lookup_elem(bpf_map__fd(map), &t->slot, &got)) {
			x2b_err("tail call %s[%u] -> %s: the slot is empty (missing __array(values) "
				"initialiser in the object?)",
				t->prog_array, t->slot, t->program);
			bad++;
			continue;
		}
		if (got != want) {
			x2b_err("tail call %s[%u]: holds program id %u, expected '%s' (id %u)",
				t->prog_array, t->slot, got, t->program, want);
			bad++;
		}
	}
	/* the other direction: every slot the object fills is in the manifest's table */
	bpf_object__for_each_map(map, obj) {
		if (bpf_map__type(map) != BPF_MAP_TYPE_PROG_ARRAY)
			continue;
		if (bpf_map__max_entries(map) > X2B_MAX_PROG_ARRAY) {
			x2b_err("prog array '%s': %u slots, at most %u", bpf_map__name(map),
				bpf_map__max_entries(map), X2B_MAX_PROG_ARRAY);
			bad++;
			continue;
		}
		for (__u32 slot = 0; slot < bpf_map__max_entries(map); slot++) {
			__u32 got = 0;
			bool listed = false;

			if (bpf_map_lookup_elem(bpf_map__fd(map), &slot, &got))
				continue; /* empty */
			for (size_t i = 0; i < m->n_tail_calls && !listed; i++)
				listed = m->tail_calls[i]->slot == slot &&
					 !strcmp(m->tail_calls[i]->prog_array, bpf_map__name(map));
			if (!listed) {
				x2b_err("prog array '%s': slot %u holds program id %u but the manifest's "
					"tail_calls does not list it (tampered or corrupt manifest)",
					bpf_map__name(map), slot, got);
				bad++;
			}
		}
	}
	return bad ? X2B_EXIT_REJECT : 0;
}

/* Summarises a rejection the way cilium's VerifierError does: the tail of the log. */
static void report_load_failure(struct x2b_object *o, int err)
{
	struct bpf_program *prog, *failed = NULL;
	const char *log = o->log_buf, *p, *start, *end;
	int lines = 0;

	bpf_object__for_each_program(prog, o->obj) {
		if (bpf_program__autoload(prog) && bpf_program__fd(prog) < 0) {
			failed = prog;
			break;
		}
	}
	if (!failed || !log || !*log) {
		capture_end(true);
		x2b_err("the kernel refused the BPF object: %s%s", strerror(-err),
			err == -EPERM ? " (loading needs root: CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)"
				      : "");
		return;
	}
	capture_end(x2b_verbose);
	x2b_err("the verifier rejected program '%s' (section %s): %s", bpf_program__name(failed),
		bpf_program__section_name(failed), strerror(-err));
	if (x2b_verbose) {
		fprintf(stderr, "-- verifier log of '%s' --\n%s", bpf_program__name(failed), log);
		if (log[strlen(log) - 1] != '\n')
			fputc('\n', stderr);
		fprintf(stderr, "-- end of verifier log --\n");
		return;
	}
	end = log + strlen(log);
	while (end > log && end[-1] == '\n')
		end--;
	start = end;
	while (start > log) {
		if (start[-1] == '\n' && ++lines == X2B_LOG_TAIL_LINES)
			break;
		start--;
	}
	fprintf(stderr, "  last lines of the verifier log:\n");
	for (const char *l = start; l < end;) {
		const char *e = memchr(l, '\n', end - l);
		int n = e ? (int)(e - l) : (int)(end - l);

		fprintf(stderr, "    %.*s\n", n, l);
		l += n + 1;
	}
	/* the instruction count, unless the tail above already showed it */
	p = NULL;
	for (const char *s = log; (s = strstr(s, "processed ")); s++)
		p = s;
	if (p && p < start)
		fprintf(stderr, "  %.*s\n", (int)strcspn(p, "\n"), p);
	fprintf(stderr, "  (use --verbose for the whole log)\n");
}

/*
 * Opens an object of the bundle without loading it (no kernel) and checks it
 * against the manifest: a valid BPF ELF with exactly the manifest's programs
 * (sections, attach types) and maps. Used for the variant that is not loaded.
 */
int x2b_object_check_static(const struct x2b_bundle *b, const char *object)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "x2b");
	const struct x2b_file *f = x2b_bundle_file(b, object);
	struct bpf_object *obj;
	int err;

	if (!f) {
		x2b_err("object '%s' is not in the bundle", object);
		return X2B_EXIT_REJECT;
	}
	capture_begin();
	obj = bpf_object__open_mem(f->data, f->size, &opts);
	if (!obj) {
		err = -errno;
		capture_end(true);
		char why[128];

		libbpf_strerror(err, why, sizeof(why));
		x2b_err("cannot open BPF object '%s': %s (not a valid BPF ELF object)", object,
			why);
		return X2B_EXIT_REJECT;
	}
	err = check_object(b, obj);
	capture_end(err != 0);
	bpf_object__close(obj);
	if (err)
		x2b_err("BPF object '%s' does not match the manifest", object);
	return err;
}

const char *x2b_object_variant(const x2b_manifest *m)
{
	const char *force = getenv("XDS2BPF_VARIANT");

	if (!*m->http_object)
		return "l4";
	if (force && !strcmp(force, "l4"))
		return "l4";
	if (force && !strcmp(force, "http"))
		return "http";
	return access("/sys/kernel/btf/xds2bpf_defer", F_OK) == 0 ? "http" : "l4";
}

int x2b_object_load(const struct x2b_bundle *b, struct x2b_object *o)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "x2b");
	const char *variant = x2b_object_variant(b->m);
	const char *object = strcmp(variant, "http") ? b->m->object : b->m->http_object;
	const struct x2b_file *f = x2b_bundle_file(b, object);
	int err;

	memset(o, 0, sizeof(*o));
	o->variant = variant;
	o->log_size = X2B_LOG_SIZE;
	o->log_buf = calloc(1, o->log_size);
	if (!o->log_buf)
		return X2B_EXIT_INTERNAL;
	opts.kernel_log_buf = o->log_buf;
	opts.kernel_log_size = o->log_size;

	/* both objects are checked, whichever variant loads */
	if (*b->m->http_object) {
		const char *other = object == b->m->object ? b->m->http_object : b->m->object;

		err = x2b_object_check_static(b, other);
		if (err)
			return err;
	}
	if (!f) {
		x2b_err("object '%s' is not in the bundle", object);
		return X2B_EXIT_REJECT;
	}
	capture_begin();
	o->obj = bpf_object__open_mem(f->data, f->size, &opts);
	if (!o->obj) {
		err = -errno;
		capture_end(true);
		x2b_err("cannot open BPF object '%s': %s", object, strerror(-err));
		return X2B_EXIT_REJECT;
	}
	err = check_object(b, o->obj);
	if (err) {
		capture_end(true);
		x2b_err("BPF object '%s' does not match the manifest", object);
		return err;
	}
	err = bpf_object__load(o->obj);
	if (err) {
		report_load_failure(o, err);
		return x2b_exit_for_errno(err);
	}
	capture_end(true);

	for (size_t i = 0; i < b->m->n_maps; i++) {
		const x2b_mmap *mm = b->m->maps[i];

		if (!*mm->image)
			continue;
		err = fill_map(b, bpf_object__find_map_by_name(o->obj, mm->name), mm);
		if (err)
			return err;
	}
	return check_tail_calls(b, o->obj);
}

void x2b_object_close(struct x2b_object *o)
{
	bpf_object__close(o->obj);
	free(o->log_buf);
	memset(o, 0, sizeof(*o));
}

static const char *attach_label(int kind)
{
	const struct x2b_attach_desc *ad = x2b_attach_by_kind(kind);

	return ad ? ad->label : "tail_call";
}

int x2b_cmd_verify(const char *bundle)
{
	struct x2b_bundle b;
	struct x2b_object o = {};
	int err;

	err = x2b_bundle_open(bundle, &b);
	if (err)
		goto cleanup;
	err = x2b_object_load(&b, &o);
	if (err)
		goto cleanup;

	if (x2b_json) {
		printf("{\"bundle\":");
		x2b_json_str(stdout, bundle);
		printf(",\"programs\":[");
	} else {
		printf("%-16s %-22s %-13s %8s %10s %9s\n", "PROGRAM", "SECTION", "ATTACH", "INSNS",
		       "JITED", "VERIFIED");
	}
	for (size_t i = 0; i < b.m->n_programs; i++) {
		const x2b_mprog *mp = b.m->programs[i];
		struct bpf_program *prog = x2b_object_prog(&o, mp->name);
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len)) {
			err = X2B_EXIT_INTERNAL;
			x2b_err("cannot read program info of '%s': %s", mp->name, strerror(errno));
			goto cleanup;
		}
		if (x2b_json) {
			printf("%s{\"name\":", i ? "," : "");
			x2b_json_str(stdout, mp->name);
			printf(",\"section\":");
			x2b_json_str(stdout, bpf_program__section_name(prog));
			printf(",\"attach\":\"%s\",\"insns\":%u,\"jited_bytes\":%u,\"verified_insns\":%u}",
			       attach_label(mp->attach), info.xlated_prog_len / 8,
			       info.jited_prog_len, info.verified_insns);
		} else {
			printf("%-16s %-22s %-13s %8u %10u %9u\n", mp->name,
			       bpf_program__section_name(prog), attach_label(mp->attach),
			       info.xlated_prog_len / 8, info.jited_prog_len, info.verified_insns);
		}
	}
	if (x2b_json)
		printf("],\"maps\":%zu,\"tail_calls\":%zu,\"variant\":\"%s\"}\n", b.m->n_maps,
		       b.m->n_tail_calls, o.variant);
	else
		printf("ok: %zu programs, %zu maps, %zu tail calls verified by the kernel (%s object)\n",
		       b.m->n_programs, b.m->n_maps, b.m->n_tail_calls, o.variant);
	err = 0;
cleanup:
	x2b_object_close(&o);
	x2b_bundle_close(&b);
	return err;
}
