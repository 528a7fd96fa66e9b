// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test driver of bpf-runtime/loader/lbrows.c (run-lbrows-diff.sh): reads
 * clusters from stdin and prints the rows the loader builds for each, in the
 * format of Tests/loader/dns/cluster-rows.py (levels, endpoint records and slots
 * in hex). Input, one cluster per block:
 *   cluster NAME LB LOCALITY_WEIGHTED FACTOR MAGLEV_SIZE RING_MIN RING_MAX
 *   loc PRIORITY WEIGHT                      (the localities, in order)
 *   host LOCALITY ROUTABLE WEIGHT PORT ADDR  (every address, in order)
 *   end
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "x2b_abi.h"
#include "loader.h"

#define MAX_ITEMS 4096

static void hex(const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", ((const unsigned char *)p)[i]);
	printf("\n");
}

static int emit(const char *name, const struct x2b_lbinput *in)
{
	struct x2b_lbrows r;
	int err = x2b_lbrows_build(in, &r);

	if (err) {
		fprintf(stderr, "cluster %s: %s\n", name, strerror(-err));
		return 1;
	}
	printf("cluster %s: levels %zu\n", name, r.nlevels);
	for (size_t i = 0; i < r.nlevels; i++) {
		const struct x2b_lblevel *l = &r.levels[i];

		printf("  level %zu: cum_load %u endpoints %zu slots %zu\n", i, l->cum_load,
		       l->neps, l->ntable);
		for (size_t k = 0; k < l->neps; k++) {
			printf("    ep ");
			hex(&l->eps[k], sizeof(l->eps[k]));
		}
		for (size_t k = 0; k < l->ntable; k++) {
			printf("    slot ");
			hex(&l->table[k], sizeof(l->table[k]));
		}
	}
	x2b_lbrows_free(&r);
	return 0;
}

int main(void)
{
	static struct x2b_lblocality locs[MAX_ITEMS];
	static struct x2b_lbhost hosts[MAX_ITEMS];
	struct x2b_lbinput in = { .localities = locs, .hosts = hosts };
	char line[512], name[128] = "", addr[64];
	unsigned a, b, c, d;
	unsigned long long m, r0, r1;
	int bad = 0;

	while (fgets(line, sizeof(line), stdin)) {
		if (sscanf(line, "cluster %127s %u %u %u %llu %llu %llu", name, &a, &b, &c, &m, &r0,
			   &r1) == 7) {
			in.lb = a;
			in.locality_weighted = b;
			in.factor = c;
			in.maglev_table_size = m;
			in.ring_minimum_size = r0;
			in.ring_maximum_size = r1;
			in.nlocalities = in.nhosts = 0;
		} else if (sscanf(line, "loc %u %u", &a, &b) == 2 && in.nlocalities < MAX_ITEMS) {
			locs[in.nlocalities++] =
				(struct x2b_lblocality){ .priority = a, .weight = b };
		} else if (sscanf(line, "host %u %u %u %u %63s", &a, &b, &c, &d, addr) == 5 &&
			   in.nhosts < MAX_ITEMS) {
			struct x2b_lbhost *h = &hosts[in.nhosts++];

			memset(h, 0, sizeof(*h));
			h->locality = a;
			h->routable = b;
			h->ep.weight = c;
			h->ep.port = htons((uint16_t)d);
			if (inet_pton(AF_INET, addr, h->ep.addr) == 1) {
				h->ep.family = X2B_FAM_INET4;
			} else if (inet_pton(AF_INET6, addr, h->ep.addr) == 1) {
				h->ep.family = X2B_FAM_INET6;
			} else {
				fprintf(stderr, "bad address %s\n", addr);
				return 2;
			}
		} else if (!strncmp(line, "end", 3)) {
			bad |= emit(name, &in);
		}
	}
	return bad;
}
