// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* mapchase OBJ N [REPEAT]: ns per dependent array-map lookup over N 64-byte slots
 * (one random cycle), in one big array and in kmalloc-sized inner arrays, from
 * BPF_PROG_TEST_RUN averages minus an empty program's; five rounds. Root. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define STEPS 64
#define PER_INNER 500

struct slot {
	unsigned int next;
	unsigned int pad[15];
};

static double run_ns(int prog, int repeat)
{
	char pkt[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(prog, &o)) {
		fprintf(stderr, "mapchase: test run: %s\n", strerror(errno));
		exit(1);
	}
	return o.duration;
}

static int prog_fd(struct bpf_object *obj, const char *name)
{
	return bpf_program__fd(bpf_object__find_program_by_name(obj, name));
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: mapchase OBJ N [REPEAT]\n");
		return 2;
	}
	unsigned int n = strtoul(argv[2], NULL, 10), shards = (n + PER_INNER - 1) / PER_INNER;
	int repeat = argc > 3 ? atoi(argv[3]) : 20000;
	if (n < 2 || shards > 4096) {
		fprintf(stderr, "mapchase: N between 2 and %d\n", 4096 * PER_INNER);
		return 2;
	}
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "big"), n) ||
	    bpf_object__load(obj)) {
		fprintf(stderr, "mapchase: cannot load %s\n", argv[1]);
		return 1;
	}
	/* one cycle through every slot, in a random order (fixed seed) */
	unsigned int *order = calloc(n, sizeof(*order)), *next = calloc(n, sizeof(*next));
	for (unsigned int i = 0; i < n; i++)
		order[i] = i;
	srand(1);
	for (unsigned int i = n - 1; i > 0; i--) {
		unsigned int j = rand() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned int i = 0; i < n; i++)
		next[order[i]] = order[(i + 1) % n];
	int big = bpf_map__fd(bpf_object__find_map_by_name(obj, "big"));
	int outer = bpf_map__fd(bpf_object__find_map_by_name(obj, "outer"));
	struct slot s = { 0 };
	for (unsigned int i = 0; i < n; i++) {
		s.next = next[i];
		bpf_map_update_elem(big, &i, &s, 0);
	}
	for (unsigned int k = 0; k < shards; k++) {
		int in = bpf_map_create(BPF_MAP_TYPE_ARRAY, "mapchase_in", 4, sizeof(s), PER_INNER,
					NULL);
		if (in < 0) {
			fprintf(stderr, "mapchase: inner map: %s\n", strerror(errno));
			return 1;
		}
		for (unsigned int j = 0; j < PER_INNER && k * PER_INNER + j < n; j++) {
			s.next = next[k * PER_INNER + j];
			bpf_map_update_elem(in, &j, &s, 0);
		}
		bpf_map_update_elem(outer, &k, &in, 0);
	}
	int pb = prog_fd(obj, "chase_big"), ps = prog_fd(obj, "chase_sharded"),
	    pe = prog_fd(obj, "nothing");
	for (int r = 0; r < 5; r++) {
		double e = run_ns(pe, repeat), b = run_ns(pb, repeat), sh = run_ns(ps, repeat);
		printf("slots %u (%.1f MB): per lookup one array %.1f ns, kmalloc'd inner arrays %.1f ns\n",
		       n, n * 64 / 1e6, (b - e) / STEPS, (sh - e) / STEPS);
	}
	free(order);
	free(next);
	bpf_object__close(obj);
	return 0;
}
