// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Connect loop for the in-kernel decision cost: back-to-back blocking TCP
 * connections (connect, one small request, read until the server closes,
 * close), destinations taken round robin from a file, and the run_time_ns /
 * run_cnt of the given BPF programs (kernel.bpf_stats_enabled=1) read before
 * and after each run straight from the kernel (BPF_OBJ_GET_INFO_BY_FD).
 *
 *   connloop --dst-file F [--warmup N] [--count N] [--runs R]
 *            [--prog LABEL=/sys/fs/bpf/.../pin | LABEL=id:ID]...
 *
 * Prints one JSON object: per run, connects, errors, seconds, and for each
 * program the run count and time delta.
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "netaddr.h"

#define MAX_PROGS 16

struct prog {
	const char *label;
	int fd;
};

static struct sockaddr_storage *dst;
static socklen_t *dst_len;
static size_t ndst;
static struct prog progs[MAX_PROGS];
static int nprogs;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int load_dsts(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t cap = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n \t")] = 0;
		if (!line[0] || line[0] == '#')
			continue;
		if (ndst == cap) {
			cap = cap ? cap * 2 : 1024;
			dst = realloc(dst, cap * sizeof(*dst));
			dst_len = realloc(dst_len, cap * sizeof(*dst_len));
		}
		if (parse_hostport(line, &dst[ndst], &dst_len[ndst])) {
			fprintf(stderr, "connloop: bad destination %s\n", line);
			return -1;
		}
		ndst++;
	}
	fclose(f);
	return ndst ? 0 : -1;
}

/* 0 on success; a failed connection counts as an error, the loop goes on. */
static int one(size_t i)
{
	static const char req[] = "ping\n";
	char buf[4096];
	int fd = socket(dst[i].ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ssize_t r, got = 0;

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&dst[i], dst_len[i]) ||
	    write(fd, req, sizeof(req) - 1) != sizeof(req) - 1) {
		close(fd);
		return -1;
	}
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		got += r;
	close(fd);
	return r == 0 && got > 0 ? 0 : -1;
}

static void stats(uint64_t *ns, uint64_t *cnt)
{
	for (int p = 0; p < nprogs; p++) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(progs[p].fd, &info, &len)) {
			perror("bpf_obj_get_info_by_fd");
			exit(3);
		}
		ns[p] = info.run_time_ns;
		cnt[p] = info.run_cnt;
	}
}

int main(int argc, char **argv)
{
	long warmup = 2000, count = 20000, runs = 5;
	const char *file = NULL;
	size_t next = 0;

	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dst-file") && i + 1 < argc)
			file = argv[++i];
		else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
			warmup = atol(argv[++i]);
		else if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = atol(argv[++i]);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atol(argv[++i]);
		else if (!strcmp(argv[i], "--prog") && i + 1 < argc && nprogs < MAX_PROGS) {
			char *spec = argv[++i], *eq = strchr(spec, '=');

			if (!eq) {
				fprintf(stderr, "connloop: --prog LABEL=PIN|LABEL=id:ID\n");
				return 2;
			}
			*eq = 0;
			progs[nprogs].label = spec;
			if (!strncmp(eq + 1, "id:", 3))
				progs[nprogs].fd = bpf_prog_get_fd_by_id(atoi(eq + 4));
			else
				progs[nprogs].fd = bpf_obj_get(eq + 1);
			if (progs[nprogs].fd < 0) {
				fprintf(stderr, "connloop: cannot open program %s: %s\n", eq + 1, strerror(errno));
				return 1;
			}
			nprogs++;
		} else {
			fprintf(stderr, "connloop: bad argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!file || load_dsts(file)) {
		fprintf(stderr, "usage: connloop --dst-file F [--warmup N] [--count N] [--runs R] [--prog L=PIN]...\n");
		return 2;
	}
	for (long i = 0; i < warmup; i++)
		one(next++ % ndst);

	printf("{\"destinations\":%zu,\"warmup\":%ld,\"count\":%ld,\"runs\":[", ndst, warmup, count);
	for (long r = 0; r < runs; r++) {
		uint64_t ns0[MAX_PROGS], c0[MAX_PROGS], ns1[MAX_PROGS], c1[MAX_PROGS];
		long errors = 0;
		double t0, t1;

		stats(ns0, c0);
		t0 = now_s();
		for (long i = 0; i < count; i++)
			errors += one(next++ % ndst) != 0;
		t1 = now_s();
		stats(ns1, c1);
		printf("%s{\"connects\":%ld,\"errors\":%ld,\"seconds\":%.4f,\"progs\":{", r ? "," : "", count,
		       errors, t1 - t0);
		for (int p = 0; p < nprogs; p++)
			printf("%s\"%s\":{\"run_cnt\":%llu,\"run_time_ns\":%llu}", p ? "," : "", progs[p].label,
			       (unsigned long long)(c1[p] - c0[p]), (unsigned long long)(ns1[p] - ns0[p]));
		printf("}}");
		fflush(stdout);
	}
	printf("]}\n");
	return 0;
}
