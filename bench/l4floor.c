// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Loads bench/l4floor.bpf.o with its tables filled from a routes file
 * (bench/ir_targets.py --routes: "VIP:PORT EP:PORT ..." per line) and pins one
 * of its programs, for scripts/bench.sh to attach and measure. The maps live
 * as long as the pinned program.
 *
 *   l4floor OBJECT ROUTES split|inline|split64|split32 PIN
 *
 * Both layouts get the same table of 2^bits slots, at most half full (larger
 * where a key would need more than FL_PROBES slots).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l4floor.h"

struct route {
	uint32_t vip;
	uint16_t port;
	size_t first, n;
};

static int parse_addr(const char *s, uint32_t *ip, uint16_t *port)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : 0;
	struct in_addr a;
	char *end;
	long p;

	if (!colon || len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, s, len);
	host[len] = 0;
	if (inet_pton(AF_INET, host, &a) != 1)
		return -1;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || p <= 0 || p > 65535)
		return -1;
	*ip = a.s_addr;
	*port = htons((uint16_t)p);
	return 0;
}

static int fill(int fd, uint32_t count, const void *values, size_t size)
{
	for (uint32_t k = 0; k < count; k++)
		if (bpf_map_update_elem(fd, &k, (const char *)values + (size_t)k * size, BPF_ANY))
			return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	struct route *routes = NULL;
	struct fl_ep *eps = NULL;
	size_t nroutes = 0, neps = 0, cap_r = 0, cap_e = 0;
	char *line = NULL;
	size_t linecap = 0;
	FILE *f;

	if (argc != 5 || (strcmp(argv[3], "split") && strcmp(argv[3], "inline") && strcmp(argv[3], "split64") &&
			  strcmp(argv[3], "split32"))) {
		fprintf(stderr, "usage: l4floor OBJECT ROUTES split|inline|split64|split32 PIN\n");
		return 2;
	}
	int inl = !strcmp(argv[3], "inline"), pad = !strcmp(argv[3], "split64"), pad32 = !strcmp(argv[3], "split32");
	/* the padded layouts: the split slot and endpoint at the head of a larger row */
	size_t slot_size = pad ? sizeof(struct fl_slot64) : pad32 ? sizeof(struct fl_slot32) : sizeof(struct fl_slot);
	size_t ep_size = pad ? sizeof(struct fl_ep32) : pad32 ? sizeof(struct fl_ep16) : sizeof(struct fl_ep);
	f = fopen(argv[2], "r");
	if (!f) {
		perror(argv[2]);
		return 1;
	}
	while (getline(&line, &linecap, f) > 0) {
		char *save = NULL, *tok = strtok_r(line, " \n", &save);
		struct route r = { 0 };

		if (!tok)
			continue;
		if (parse_addr(tok, &r.vip, &r.port)) {
			fprintf(stderr, "l4floor: bad address %s\n", tok);
			return 1;
		}
		r.first = neps;
		while ((tok = strtok_r(NULL, " \n", &save))) {
			if (neps == cap_e) {
				cap_e = cap_e ? cap_e * 2 : 1024;
				eps = realloc(eps, cap_e * sizeof(*eps));
				if (!eps)
					return 1;
			}
			memset(&eps[neps], 0, sizeof(eps[neps]));
			if (parse_addr(tok, &eps[neps].ip, &eps[neps].port)) {
				fprintf(stderr, "l4floor: bad address %s\n", tok);
				return 1;
			}
			neps++;
			r.n++;
		}
		if (nroutes == cap_r) {
			cap_r = cap_r ? cap_r * 2 : 1024;
			routes = realloc(routes, cap_r * sizeof(*routes));
			if (!routes)
				return 1;
		}
		routes[nroutes++] = r;
	}
	fclose(f);
	free(line);
	if (!nroutes || !neps) {
		fprintf(stderr, "l4floor: no routes in %s\n", argv[2]);
		return 1;
	}

	/* at most half full; larger while some key would need more than FL_PROBES slots */
	unsigned bits = 1;
	while ((1u << bits) < 2 * nroutes)
		bits++;
	uint32_t slots;
	struct fl_slot *split = NULL;
	struct fl_wide *wide = NULL;
	for (;; bits++) {
		size_t i;

		slots = 1u << bits;
		free(split);
		free(wide);
		split = calloc(slots, sizeof(*split));
		wide = calloc(slots, sizeof(*wide));
		if (!split || !wide || bits > 24)
			return 1;
		for (i = 0; i < nroutes; i++) {
			const struct route *r = &routes[i];
			uint32_t h = fl_hash(r->vip, r->port), k = 0;
			int p;

			for (p = 0; p < FL_PROBES; p++) {
				k = (h + p) & (slots - 1);
				if (!split[k].vip)
					break;
			}
			if (p == FL_PROBES)
				break;
			split[k] = (struct fl_slot){
				.vip = r->vip, .port = r->port, .n = r->n, .first = r->first
			};
			wide[k].vip = r->vip;
			wide[k].port = r->port;
			wide[k].n = r->n < FL_INLINE ? r->n : FL_INLINE;
			memcpy(wide[k].ep, &eps[r->first], wide[k].n * sizeof(struct fl_ep));
		}
		if (i == nroutes)
			break;
	}

	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "l4floor: cannot open %s\n", argv[1]);
		return 1;
	}
	struct bpf_map *m_slot = bpf_object__find_map_by_name(obj, "fl_slot");
	struct bpf_map *m_ep = bpf_object__find_map_by_name(obj, "fl_ep");
	struct bpf_map *m_wide = bpf_object__find_map_by_name(obj, "fl_wide");
	struct bpf_map *m_slot64 = bpf_object__find_map_by_name(obj, "fl_slot64");
	struct bpf_map *m_ep32 = bpf_object__find_map_by_name(obj, "fl_ep32");
	struct bpf_map *m_slot32 = bpf_object__find_map_by_name(obj, "fl_slot32");
	struct bpf_map *m_ep16 = bpf_object__find_map_by_name(obj, "fl_ep16");
	struct bpf_map *m;
	int set_bits = 0;

	if (!m_slot || !m_ep || !m_wide || !m_slot64 || !m_ep32 || !m_slot32 || !m_ep16)
		return 1;
	bpf_map__set_max_entries(m_slot, inl || pad || pad32 ? 1 : slots);
	bpf_map__set_max_entries(m_ep, inl || pad || pad32 ? 1 : (uint32_t)neps);
	bpf_map__set_max_entries(m_wide, inl ? slots : 1);
	bpf_map__set_max_entries(m_slot64, pad ? slots : 1);
	bpf_map__set_max_entries(m_ep32, pad ? (uint32_t)neps : 1);
	bpf_map__set_max_entries(m_slot32, pad32 ? slots : 1);
	bpf_map__set_max_entries(m_ep16, pad32 ? (uint32_t)neps : 1);
	bpf_object__for_each_map(m, obj) {
		size_t sz;
		const void *data;
		char buf[64];

		if (!bpf_map__is_internal(m) || !strstr(bpf_map__name(m), ".rodata"))
			continue;
		data = bpf_map__initial_value(m, &sz);
		if (data && sz >= sizeof(uint32_t) && sz <= sizeof(buf)) {
			memcpy(buf, data, sz);
			memcpy(buf, &bits, sizeof(uint32_t)); /* fl_bits: the only constant */
			set_bits = !bpf_map__set_initial_value(m, buf, sz);
		}
	}
	if (!set_bits) {
		fprintf(stderr, "l4floor: no .rodata for fl_bits\n");
		return 1;
	}
	/* only the measured program is loaded */
	struct bpf_program *prog, *want = NULL;
	bpf_object__for_each_program(prog, obj) {
		int mine = !strcmp(bpf_program__name(prog),
				   inl ? "fl_inline4" : pad ? "fl_split64_4" : pad32 ? "fl_split32_4" : "fl_split4");
		bpf_program__set_autoload(prog, mine);
		if (mine)
			want = prog;
	}
	if (!want || bpf_object__load(obj)) {
		fprintf(stderr, "l4floor: load failed\n");
		return 1;
	}
	int err;
	if (inl) {
		err = fill(bpf_map__fd(m_wide), slots, wide, sizeof(*wide));
	} else if (pad || pad32) {
		char *ps = calloc(slots, slot_size), *pe = calloc(neps ? neps : 1, ep_size);

		if (!ps || !pe)
			return 1;
		for (uint32_t k = 0; k < slots; k++)
			memcpy(ps + k * slot_size, &split[k], sizeof(split[k]));
		for (size_t k = 0; k < neps; k++)
			memcpy(pe + k * ep_size, &eps[k], sizeof(eps[k]));
		err = fill(bpf_map__fd(pad ? m_slot64 : m_slot32), slots, ps, slot_size) ?:
			fill(bpf_map__fd(pad ? m_ep32 : m_ep16), (uint32_t)neps, pe, ep_size);
		free(ps);
		free(pe);
	} else {
		err = fill(bpf_map__fd(m_slot), slots, split, sizeof(*split)) ?:
			fill(bpf_map__fd(m_ep), (uint32_t)neps, eps, sizeof(*eps));
	}
	if (err) {
		fprintf(stderr, "l4floor: filling the maps: %s\n", strerror(-err));
		return 1;
	}
	if (bpf_program__pin(want, argv[4])) {
		fprintf(stderr, "l4floor: cannot pin at %s\n", argv[4]);
		return 1;
	}
	printf("l4floor: %s, %zu listeners in %u slots (%zu KiB), %zu endpoints (%zu KiB)\n",
	       argv[3], nroutes, slots,
	       (size_t)slots * (inl ? sizeof(*wide) : slot_size) / 1024, neps, inl ? 0 : neps * ep_size / 1024);
	bpf_object__close(obj);
	return 0;
}
