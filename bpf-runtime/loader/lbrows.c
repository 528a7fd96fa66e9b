// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The rows of a cluster built on the node from its endpoints (a DNS cluster
 * after its lookups), exactly as the compiler builds them from addresses, so
 * that a bundle whose names are resolved by the loader and one compiled with
 * `--resolve` hold the same rows byte for byte:
 *   - the priority levels and their load: ClusterSemantics.effective
 *     (Sources/X2BSemantics/ClusterSemantics.swift), Envoy's priority load with
 *     the overprovisioning factor, localities weighted by weight x health;
 *   - the tables: LBTables.roundRobinSchedule, localitySchedule, maglev and
 *     ring (Sources/X2BSemantics/LBTables.swift), Planner.clusterLevels; maglev
 *     and the ring hash an endpoint's text ("ip:port", "[ip6]:port") with
 *     sha256, as the compiler does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/evp.h>

#include "x2b_abi.h"
#include "loader.h"

/* LBTables.maxScheduleLength: longer round-robin schedules are scaled down. */
#define X2B_MAX_SCHEDULE 4096ULL
/* LBTables.maxMaglevTableSize, maxRingSize: Envoy's limits. */
#define X2B_MAX_MAGLEV 5000011ULL
#define X2B_MAX_RING_SIZE 8388608ULL
/* "[" + INET6_ADDRSTRLEN + "]:65535_" + a point number */
#define X2B_EP_TEXT 80

/* A locality of a level under locality-weighted LB: a run of its endpoints. */
struct lb_run {
	size_t first, count;
	uint64_t weight; /* locality weight x locality health */
};

/* A priority that has routable endpoints (ClusterSemantics' Candidate). */
struct lb_candidate {
	uint32_t priority;
	uint64_t health;
	struct x2b_endpoint *eps;
	uint32_t *weights; /* effective weights, parallel to eps */
	size_t n;
	struct lb_run *runs;
	size_t nruns;
};

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * Swift's rounded() (to nearest, ties away from zero) and rounded(.up) of a
 * double in [0, 2^63), exact, without libm: the fraction x - trunc(x) is exact.
 */
static double round_half_up(double x)
{
	double t = (double)(uint64_t)x;

	return x - t >= 0.5 ? t + 1 : t;
}

static double round_up(double x)
{
	double t = (double)(uint64_t)x;

	return t < x ? t + 1 : t;
}

static uint32_t clamp32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/*
 * LBTables.roundRobinSchedule: smooth weighted round robin (the nginx
 * sequence), weights divided by their gcd and scaled down to X2B_MAX_SCHEDULE
 * slots; no slots when all weights are equal.
 */
static int rr_schedule(const uint32_t *weights, size_t n, struct x2b_slot **out, size_t *len)
{
	uint64_t *w, g = 0, sum = 0;
	int64_t *current;
	bool equal = true;

	*out = NULL;
	*len = 0;
	for (size_t i = 1; i < n; i++)
		if (weights[i] != weights[0])
			equal = false;
	if (!n || equal)
		return 0;
	w = calloc(n, sizeof(*w));
	current = calloc(n, sizeof(*current));
	if (!w || !current)
		goto nomem;
	for (size_t i = 0; i < n; i++)
		g = gcd64(g, weights[i]);
	for (size_t i = 0; i < n; i++) {
		w[i] = weights[i] / g;
		sum += w[i];
	}
	if (sum > X2B_MAX_SCHEDULE) {
		double scale = (double)X2B_MAX_SCHEDULE / (double)sum;

		sum = 0;
		for (size_t i = 0; i < n; i++) {
			uint64_t v = (uint64_t)round_half_up((double)w[i] * scale);

			w[i] = v ? v : 1;
			sum += w[i];
		}
	}
	*out = calloc(sum, sizeof(**out));
	if (!*out)
		goto nomem;
	for (uint64_t t = 0; t < sum; t++) {
		size_t best = 0;

		for (size_t i = 0; i < n; i++) {
			current[i] += (int64_t)w[i];
			if (current[i] > current[best])
				best = i;
		}
		current[best] -= (int64_t)sum;
		(*out)[t].hash = 0;
		(*out)[t].ep = (__u32)best;
	}
	*len = sum;
	free(w);
	free(current);
	return 0;
nomem:
	free(w);
	free(current);
	return -ENOMEM;
}

/*
 * LBTables.localitySchedule: random and least request under locality weights,
 * the level's localities in proportion to their weights; a slot names one by
 * its first endpoint (ep) and its endpoint count (hash). No slots when a
 * uniform pick over the level is the same (one locality, or equal weights and
 * sizes).
 */
static int locality_schedule(const struct lb_run *runs, size_t n, struct x2b_slot **out,
			     size_t *len)
{
	struct x2b_slot *picks = NULL;
	bool same = true;
	uint32_t *w;
	uint64_t g = 0;
	size_t npicks;
	int err;

	*out = NULL;
	*len = 0;
	if (n <= 1)
		return 0;
	for (size_t i = 1; i < n; i++)
		if (runs[i].weight != runs[0].weight || runs[i].count != runs[0].count)
			same = false;
	if (same)
		return 0;
	w = calloc(n, sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		g = gcd64(g, runs[i].weight);
	for (size_t i = 0; i < n; i++)
		w[i] = clamp32(runs[i].weight / (g ? g : 1));
	err = rr_schedule(w, n, &picks, &npicks);
	free(w);
	if (err)
		return err;
	if (!npicks) {
		picks = calloc(n, sizeof(*picks));
		if (!picks)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++)
			picks[i].ep = (__u32)i;
		npicks = n;
	}
	for (size_t i = 0; i < npicks; i++) {
		const struct lb_run *r = &runs[picks[i].ep];

		picks[i].hash = (__u32)r->count;
		picks[i].ep = (__u32)r->first;
	}
	*out = picks;
	*len = npicks;
	return 0;
}

/* IREndpoint.text: "a.b.c.d:port", "[v6]:port" (inet_ntop, as IPv6Text). */
static void ep_text(const struct x2b_endpoint *e, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	inet_ntop(e->family == X2B_FAM_INET4 ? AF_INET : AF_INET6, e->addr, ip, sizeof(ip));
	snprintf(out, len, e->family == X2B_FAM_INET4 ? "%s:%u" : "[%s]:%u", ip, ntohs(e->port));
}

/* LBTables.hashPair: the first two big-endian u64 of sha256(text). */
static int hash_pair(const char *text, uint64_t *a, uint64_t *b)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL) || n < 16)
		return -EIO;
	*a = *b = 0;
	for (int i = 0; i < 8; i++) {
		*a = *a << 8 | md[i];
		*b = *b << 8 | md[8 + i];
	}
	return 0;
}

static bool is_prime(uint64_t n)
{
	if (n < 2)
		return false;
	if (n < 4)
		return true;
	if (n % 2 == 0)
		return false;
	for (uint64_t d = 3; d <= n / d; d += 2)
		if (n % d == 0)
			return false;
	return true;
}

/*
 * LBTables.maglev: Envoy's weighted Maglev table of `size` entries (a prime;
 * no table otherwise, as the compiler): each endpoint's permutation from the
 * sha256 of its text, filled in turns by credit (weight / largest weight).
 */
static int maglev_table(const struct x2b_endpoint *eps, const uint32_t *weights, size_t n,
			uint64_t size, struct x2b_slot **out, size_t *len)
{
	uint64_t *offset = NULL, *skip = NULL, *next = NULL, filled = 0;
	double *credit = NULL, max_w = 0;
	int64_t *table = NULL;
	char text[X2B_EP_TEXT];
	int err = -ENOMEM;

	*out = NULL;
	*len = 0;
	if (!n || size <= 1 || size > X2B_MAX_MAGLEV || !is_prime(size))
		return 0;
	offset = calloc(n, sizeof(*offset));
	skip = calloc(n, sizeof(*skip));
	next = calloc(n, sizeof(*next));
	credit = calloc(n, sizeof(*credit));
	table = malloc(size * sizeof(*table));
	if (!offset || !skip || !next || !credit || !table)
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint64_t h1, h2;

		ep_text(&eps[i], text, sizeof(text));
		err = hash_pair(text, &h1, &h2);
		if (err)
			goto out;
		offset[i] = h1 % size;
		skip[i] = h2 % (size - 1) + 1;
		if (weights[i] > max_w)
			max_w = weights[i];
	}
	for (uint64_t c = 0; c < size; c++)
		table[c] = -1;
	while (filled < size) {
		for (size_t i = 0; i < n; i++) {
			uint64_t c;

			credit[i] += (double)weights[i] / max_w;
			if (credit[i] < 1)
				continue;
			credit[i] -= 1;
			c = (offset[i] + next[i] * skip[i]) % size;
			while (table[c] >= 0) {
				next[i]++;
				c = (offset[i] + next[i] * skip[i]) % size;
			}
			table[c] = (int64_t)i;
			next[i]++;
			if (++filled == size)
				break;
		}
	}
	err = -ENOMEM;
	*out = calloc(size, sizeof(**out));
	if (!*out)
		goto out;
	for (uint64_t c = 0; c < size; c++)
		(*out)[c].ep = (__u32)table[c];
	*len = size;
	err = 0;
out:
	free(offset);
	free(skip);
	free(next);
	free(credit);
	free(table);
	return err;
}

static int cmp_slot(const void *a, const void *b)
{
	const struct x2b_slot *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->ep < y->ep ? -1 : x->ep > y->ep;
}

/*
 * LBTables.ring: Envoy's ketama ring: points in proportion to the weights, the
 * ring scaled so the lightest endpoint gets at least its share of `minimum`,
 * at most `maximum`; a point of endpoint i is the upper half of the sha256 of
 * "text_k"; sorted by (hash, endpoint).
 */
static int ring_table(const struct x2b_endpoint *eps, const uint32_t *weights, size_t n,
		      uint64_t minimum, uint64_t maximum, struct x2b_slot **out, size_t *len)
{
	double total = 0, min_norm = 1, scale, target = 0, made = 0;
	size_t cap, k = 0;
	char text[X2B_EP_TEXT + 24];
	int err;

	*out = NULL;
	*len = 0;
	if (!n || minimum > X2B_MAX_RING_SIZE)
		return 0;
	if (maximum > X2B_MAX_RING_SIZE)
		maximum = X2B_MAX_RING_SIZE;
	{
		uint64_t sum = 0;

		for (size_t i = 0; i < n; i++)
			sum += weights[i];
		total = (double)sum;
	}
	for (size_t i = 0; i < n; i++) {
		double norm = (double)weights[i] / total;

		if (!i || norm < min_norm)
			min_norm = norm;
	}
	scale = round_up((double)minimum * min_norm) / min_norm;
	if (scale > (double)maximum)
		scale = (double)maximum;
	cap = (size_t)round_up(scale) + n + 1;
	*out = calloc(cap, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char base[X2B_EP_TEXT];

		target += scale * ((double)weights[i] / total);
		ep_text(&eps[i], base, sizeof(base));
		for (uint64_t p = 0; made < target; p++, made += 1) {
			uint64_t h1, h2;

			if (k == cap) {
				err = -ERANGE;
				goto fail;
			}
			snprintf(text, sizeof(text), "%s_%llu", base, (unsigned long long)p);
			err = hash_pair(text, &h1, &h2);
			if (err)
				goto fail;
			(*out)[k].hash = (__u32)(h1 >> 32);
			(*out)[k].ep = (__u32)i;
			k++;
		}
	}
	qsort(*out, k, sizeof(**out), cmp_slot);
	*len = k;
	return 0;
fail:
	free(*out);
	*out = NULL;
	return err;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void x2b_lbrows_free(struct x2b_lbrows *r)
{
	for (size_t i = 0; i < X2B_MAX_PRIORITIES; i++) {
		free(r->levels[i].eps);
		free(r->levels[i].table);
	}
	memset(r, 0, sizeof(*r));
}

static void candidates_free(struct lb_candidate *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++) {
		free(c[i].eps);
		free(c[i].weights);
		free(c[i].runs);
	}
	free(c);
}

/*
 * One priority's candidate (ClusterSemantics.effective): its health is the
 * routable share of its endpoints times the factor (at most 100); under
 * locality weights each locality with a weight and routable endpoints is a run
 * weighted by weight x its own health, and each endpoint's effective weight is
 * that times its share of the locality's routable weight, in 1/1000ths.
 * c->n is 0 when the priority has no routable endpoint (or none that counts).
 */
static int candidate(const struct x2b_lbinput *in, uint32_t prio, struct lb_candidate *c)
{
	size_t all = 0, routable = 0;

	memset(c, 0, sizeof(*c));
	c->priority = prio;
	for (size_t i = 0; i < in->nhosts; i++) {
		if (in->localities[in->hosts[i].locality].priority != prio)
			continue;
		all++;
		routable += in->hosts[i].routable;
	}
	if (!all)
		return 0;
	c->health = (uint64_t)in->factor * routable / all;
	if (c->health > 100)
		c->health = 100;
	c->eps = calloc(routable ? routable : 1, sizeof(*c->eps));
	c->weights = calloc(routable ? routable : 1, sizeof(*c->weights));
	c->runs = calloc(in->nlocalities ? in->nlocalities : 1, sizeof(*c->runs));
	if (!c->eps || !c->weights || !c->runs)
		return -ENOMEM;
	for (size_t l = 0; l < in->nlocalities; l++) {
		size_t total = 0, usable = 0;
		uint64_t sum = 0, lw = in->localities[l].weight, health;

		if (in->localities[l].priority != prio)
			continue;
		for (size_t i = 0; i < in->nhosts; i++) {
			if (in->hosts[i].locality != l)
				continue;
			total++;
			if (in->hosts[i].routable) {
				usable++;
				sum += in->hosts[i].ep.weight;
			}
		}
		if (!usable)
			continue;
		/* localities without a weight get no traffic under locality-weighted LB */
		if (in->locality_weighted && !lw)
			continue;
		health = (uint64_t)in->factor * usable / total;
		if (health > 100)
			health = 100;
		if (in->locality_weighted)
			c->runs[c->nruns++] = (struct lb_run){ .first = c->n,
							       .count = usable,
							       .weight = lw * health };
		for (size_t i = 0; i < in->nhosts; i++) {
			const struct x2b_lbhost *h = &in->hosts[i];

			if (h->locality != l || !h->routable)
				continue;
			c->eps[c->n] = h->ep;
			if (in->locality_weighted) {
				/* exact, as the compiler's 128-bit product */
				unsigned __int128 p =
					(unsigned __int128)(lw * health * 10) * h->ep.weight;
				uint64_t q = (uint64_t)(p / sum);

				c->weights[c->n] = clamp32(q ? q : 1);
			} else {
				c->weights[c->n] = h->ep.weight;
			}
			c->n++;
		}
	}
	return 0;
}

int x2b_lbrows_build(const struct x2b_lbinput *in, struct x2b_lbrows *out)
{
	struct lb_candidate *cands = NULL;
	uint32_t *prios = NULL;
	size_t nprio = 0, ncand = 0;
	uint64_t total = 0, remaining = 100;
	uint32_t cum = 0;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (in->lb >= X2B_LB_COUNT)
		return -EINVAL;
	for (size_t i = 0; i < in->nhosts; i++)
		if (in->hosts[i].locality >= in->nlocalities || !in->hosts[i].ep.weight)
			return -EINVAL;
	/* the priorities, ascending (the compiler's levels are sorted by priority) */
	prios = calloc(in->nlocalities ? in->nlocalities : 1, sizeof(*prios));
	cands = calloc(in->nlocalities ? in->nlocalities : 1, sizeof(*cands));
	if (!prios || !cands) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t l = 0; l < in->nlocalities; l++) {
		bool seen = false;

		for (size_t k = 0; k < nprio; k++)
			seen |= prios[k] == in->localities[l].priority;
		if (!seen)
			prios[nprio++] = in->localities[l].priority;
	}
	qsort(prios, nprio, sizeof(*prios), cmp_u32);
	for (size_t k = 0; k < nprio; k++) {
		err = candidate(in, prios[k], &cands[ncand]);
		if (err) {
			ncand++;
			goto out;
		}
		if (cands[ncand].n) {
			total += cands[ncand++].health;
			continue;
		}
		/* nothing routable at this priority: not a candidate */
		free(cands[ncand].eps);
		free(cands[ncand].weights);
		free(cands[ncand].runs);
		memset(&cands[ncand], 0, sizeof(cands[ncand]));
	}
	if (total > 100)
		total = 100;
	if (!total)
		goto out; /* no routable endpoint: no level, connects refused */
	/* Envoy's priority load from priority 0 down; rounding leftovers to the first level */
	for (size_t k = 0; k < ncand; k++) {
		uint64_t load = cands[k].health * 100 / total;
		struct x2b_lblevel *lv;

		if (load > remaining)
			load = remaining;
		remaining -= load;
		if (!load)
			continue;
		if (out->nlevels == X2B_MAX_PRIORITIES) {
			out->dropped_levels++; /* the compiler diagnoses this (XDS limit) */
			continue;
		}
		lv = &out->levels[out->nlevels++];
		lv->load = (uint32_t)load;
		lv->eps = cands[k].eps;
		lv->neps = cands[k].n;
		cands[k].eps = NULL;
		switch (in->lb) {
		case X2B_LB_ROUND_ROBIN:
			err = rr_schedule(cands[k].weights, cands[k].n, &lv->table, &lv->ntable);
			break;
		case X2B_LB_MAGLEV:
			err = maglev_table(lv->eps, cands[k].weights, lv->neps,
					   in->maglev_table_size, &lv->table, &lv->ntable);
			break;
		case X2B_LB_RING_HASH:
			err = ring_table(lv->eps, cands[k].weights, lv->neps, in->ring_minimum_size,
					 in->ring_maximum_size, &lv->table, &lv->ntable);
			break;
		default: /* random, least request */
			err = locality_schedule(cands[k].runs, cands[k].nruns, &lv->table,
						&lv->ntable);
			break;
		}
		if (err)
			goto out;
	}
	if (remaining && out->nlevels)
		out->levels[0].load += (uint32_t)remaining;
	for (size_t i = 0; i < out->nlevels; i++) {
		cum += out->levels[i].load;
		out->levels[i].cum_load = i + 1 == out->nlevels ? 100 : cum;
	}
out:
	candidates_free(cands, ncand);
	free(prios);
	if (err)
		x2b_lbrows_free(out);
	return err;
}
