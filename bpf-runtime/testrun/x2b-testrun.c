// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * x2b-testrun: runs HTTP requests through the compiled route matcher in the
 * kernel with BPF_PROG_TEST_RUN (XDP programs run there; cgroup sock_addr
 * programs do not). The packet is PAD bytes (the table, random value and
 * runtime key as three native u32, then zeros) and the head; XDP with
 * fragments, as a head of X2B_HEAD_MAX + 1 bytes is more than a page of
 * linear test data holds. Used by `xds2bpf route-check --engine bpf` and the
 * differential tests.
 *
 *   x2b-testrun OBJECT MAPDIR [--repeat N] [--program NAME] [--baselines A,B,...]
 *
 * OBJECT is the test object built from templates/http_testrun.c and the
 * generated x2b_routes.h; MAPDIR holds <map>.bin images (key || value
 * records, docs/bundle-format.md), loaded before the first request.
 * Requests come on stdin, one per record:
 *
 *   "<table> <random> <runtime-key-id> <length>\n" then <length> bytes
 *
 * and each gets one line on stdout: "<kind> <vhost> <route> <cluster>", the
 * fields of struct x2b_hresult (X2B_HTTP_NONE printed as -1). With --repeat,
 * the line ends with the average run time in nanoseconds: the least of
 * TIMING_ROUNDS test runs of N repeats (a round another process preempts only
 * takes longer). --baselines (with --repeat) times the named programs of the
 * object on the same packet, round by round beside the program, and appends
 * their times in that order: figures taken under the same load.
 */
#include <errno.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "../abi/x2b_abi.h"

#define PAD 32
#define TIMING_ROUNDS 3
#define MAX_BASELINES 4

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, args);
	return 0;
}

static int load_image(struct bpf_object *obj, const char *dir, const char *file)
{
	char path[4096], name[256];
	struct bpf_map *map;
	size_t klen, vlen, rec, n;
	unsigned char *buf = NULL;
	long size;
	FILE *f;
	int fd, err = 0;

	snprintf(name, sizeof(name), "%.*s", (int)(strlen(file) - 4), file);
	map = bpf_object__find_map_by_name(obj, name);
	if (!map) {
		fprintf(stderr, "x2b-testrun: image %s names no map of the object\n", file);
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "x2b-testrun: cannot open %s: %s\n", path, strerror(errno));
		return -errno;
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	klen = bpf_map__key_size(map);
	vlen = bpf_map__value_size(map);
	rec = klen + vlen;
	if (size < 0 || size % rec) {
		fprintf(stderr,
			"x2b-testrun: %s: %ld bytes is not a whole number of %zu-byte records\n",
			path, size, rec);
		fclose(f);
		return -EINVAL;
	}
	buf = malloc(size ? size : 1);
	if (!buf || fread(buf, 1, size, f) != (size_t)size) {
		fprintf(stderr, "x2b-testrun: cannot read %s\n", path);
		err = -EIO;
		goto out;
	}
	fd = bpf_map__fd(map);
	for (n = 0; n < (size_t)size / rec; n++) {
		if (bpf_map_update_elem(fd, buf + n * rec, buf + n * rec + klen, BPF_ANY)) {
			err = -errno;
			fprintf(stderr, "x2b-testrun: %s record %zu: %s\n", name, n,
				strerror(errno));
			goto out;
		}
	}
out:
	free(buf);
	fclose(f);
	return err;
}

static int load_images(struct bpf_object *obj, const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int err = 0;

	if (!d) {
		fprintf(stderr, "x2b-testrun: cannot open %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l > 4 && !strcmp(e->d_name + l - 4, ".bin")) {
			err = load_image(obj, dir, e->d_name);
			if (err)
				break;
		}
	}
	closedir(d);
	return err;
}

static long field(unsigned int v)
{
	return v == X2B_HTTP_NONE ? -1 : (long)v;
}

/* One timed test run of `fd` on the packet: its average run time, or -1. */
static long time_run(int fd, void *data, __u32 size, void *out, __u32 out_size, int repeat)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	opts.data_in = data;
	opts.data_size_in = size;
	opts.data_out = out;
	opts.data_size_out = out_size;
	opts.repeat = repeat;
	if (bpf_prog_test_run_opts(fd, &opts) || opts.retval != XDP_PASS)
		return -1;
	return opts.duration;
}

int main(int argc, char **argv)
{
	unsigned char data[PAD + X2B_HEAD_MAX + 64], out[PAD + X2B_HEAD_MAX + 64];
	struct bpf_object *obj = NULL;
	struct bpf_program *prog;
	unsigned int table, random, runtime, len;
	const char *program = "x2b_http_test";
	char *baselines = NULL, *tok, *save;
	int base_fd[MAX_BASELINES];
	int repeat = 1, nbase = 0, fd, err, i;

	for (i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--repeat"))
			repeat = atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) : 1;
		else if (!strcmp(argv[i], "--program"))
			program = argv[i + 1];
		else if (!strcmp(argv[i], "--baselines"))
			baselines = argv[i + 1];
		else
			break;
	}
	if (argc < 3 || i != argc) {
		fprintf(stderr, "usage: x2b-testrun OBJECT MAPDIR [--repeat N] [--program NAME] "
				"[--baselines A,B] < requests\n");
		return 2;
	}
	libbpf_set_print(quiet_print);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "x2b-testrun: cannot open %s: %s\n", argv[1], strerror(errno));
		return 3;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "x2b-testrun: loading %s failed: %s\n", argv[1], strerror(-err));
		goto cleanup;
	}
	err = load_images(obj, argv[2]);
	if (err)
		goto cleanup;
	prog = bpf_object__find_program_by_name(obj, program);
	if (!prog) {
		fprintf(stderr, "x2b-testrun: no program %s in %s\n", program, argv[1]);
		err = -ENOENT;
		goto cleanup;
	}
	fd = bpf_program__fd(prog);
	for (tok = baselines ? strtok_r(baselines, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		struct bpf_program *b = bpf_object__find_program_by_name(obj, tok);

		if (!b || nbase == MAX_BASELINES) {
			fprintf(stderr, "x2b-testrun: no program %s in %s (or over %d baselines)\n",
				tok, argv[1], MAX_BASELINES);
			err = -ENOENT;
			goto cleanup;
		}
		base_fd[nbase++] = bpf_program__fd(b);
	}
	while (scanf("%u %u %u %u", &table, &random, &runtime, &len) == 4) {
		LIBBPF_OPTS(bpf_test_run_opts, opts);
		struct x2b_hresult res;
		long best[1 + MAX_BASELINES], t;
		int r, k;

		if (getchar() != '\n' || len > X2B_HEAD_MAX + 64) {
			fprintf(stderr, "x2b-testrun: bad request record\n");
			err = -EINVAL;
			goto cleanup;
		}
		memset(data, 0, PAD);
		memcpy(data, &table, sizeof(table));
		memcpy(data + 4, &random, sizeof(random));
		memcpy(data + 8, &runtime, sizeof(runtime));
		if (fread(data + PAD, 1, len, stdin) != len) {
			fprintf(stderr, "x2b-testrun: short request\n");
			err = -EINVAL;
			goto cleanup;
		}
		/* the decision, run once: its result */
		opts.data_in = data;
		opts.data_size_in = PAD + len;
		opts.data_out = out;
		opts.data_size_out = sizeof(out);
		err = bpf_prog_test_run_opts(fd, &opts);
		if (err || opts.retval != XDP_PASS) {
			fprintf(stderr, "x2b-testrun: test run failed: %s (retval %u)\n",
				strerror(errno), opts.retval);
			err = err ? -errno : -EINVAL;
			goto cleanup;
		}
		memcpy(&res, out, sizeof(res));
		printf("%u %ld %ld %ld", res.kind, field(res.vhost), field(res.route),
		       field(res.cluster));
		if (repeat > 1) {
			for (k = 0; k <= nbase; k++)
				best[k] = -1;
			for (r = 0; r < TIMING_ROUNDS; r++) {
				for (k = 0; k <= nbase; k++) {
					t = time_run(k ? base_fd[k - 1] : fd, data, PAD + len, out,
						     sizeof(out), repeat);
					if (t < 0) {
						fprintf(stderr,
							"x2b-testrun: timed run failed: %s\n",
							strerror(errno));
						err = -EINVAL;
						goto cleanup;
					}
					if (best[k] < 0 || t < best[k])
						best[k] = t;
				}
			}
			for (k = 0; k <= nbase; k++)
				printf(" %ld", best[k]);
		}
		printf("\n");
		fflush(stdout);
	}
	err = 0;
cleanup:
	bpf_object__close(obj);
	return err ? 1 : 0;
}
