// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Per-program verifier cost of a BPF object: loads it into the kernel with the
 * verifier's statistics log (log_level 4) and prints, per program, the
 * processed instruction count and the verification time the verifier itself
 * reports, plus the wall time of the whole bpf_object__load (maps created,
 * every program verified and JITed). Nothing is attached or pinned; the
 * object is closed at exit.
 *
 *   progload OBJECT.bpf.o
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_SIZE (1 << 20)
#define MAX_PROGS 64

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static long find_num(const char *log, const char *prefix)
{
	const char *p = NULL;

	for (const char *s = log; (s = strstr(s, prefix)); s++)
		p = s;
	return p ? strtol(p + strlen(prefix), NULL, 10) : -1;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	char *logs[MAX_PROGS];
	int n = 0;
	struct timespec a, b;

	if (argc != 2) {
		fprintf(stderr, "usage: progload OBJECT.bpf.o\n");
		return 2;
	}
	libbpf_set_print(quiet_print);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		perror("bpf_object__open_file");
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		if (n == MAX_PROGS)
			break;
		logs[n] = calloc(1, LOG_SIZE);
		bpf_program__set_log_buf(prog, logs[n], LOG_SIZE);
		bpf_program__set_log_level(prog, 4); /* BPF_LOG_STATS */
		n++;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	if (bpf_object__load(obj)) {
		fprintf(stderr, "progload: bpf_object__load failed\n");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("{\"object_load_ms\":%.3f,\"programs\":[",
	       (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
	n = 0;
	bpf_object__for_each_program(prog, obj) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		if (n == MAX_PROGS)
			break;
		bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len);
		printf("%s{\"name\":\"%s\",\"section\":\"%s\",\"xlated_insns\":%u,\"jited_bytes\":%u,"
		       "\"verified_insns\":%u,\"log_processed_insns\":%ld,\"verification_us\":%ld}",
		       n ? "," : "", bpf_program__name(prog), bpf_program__section_name(prog),
		       info.xlated_prog_len / 8, info.jited_prog_len, info.verified_insns,
		       find_num(logs[n], "processed "), find_num(logs[n], "verification time "));
		n++;
	}
	printf("]}\n");
	bpf_object__close(obj);
	return 0;
}
