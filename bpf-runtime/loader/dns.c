// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * DNS clusters resolved on the node (Manifest.dns_clusters): the host names of
 * STRICT_DNS and LOGICAL_DNS clusters are looked up with the system resolver
 * (getaddrinfo: /etc/hosts, /etc/resolv.conf, as nsswitch says) and each
 * cluster's rows are rebuilt from every host in config order, every address of
 * a name an endpoint of its lb_endpoint (weight, health, locality): priority
 * levels, round-robin and locality schedules as the compiler builds them
 * (lbrows.c). The rows are written by the in-place update session of `update`
 * (update.c): free ranges, inactive row, one switch per cluster, grace period.
 *
 * As Envoy: STRICT_DNS uses every address of a name, LOGICAL_DNS the first; a
 * name that does not exist (or has no address of the family) contributes no
 * endpoint; a lookup that fails (timeout, server failure) leaves the cluster's
 * rows as they are. The results of the last lookup of every name are in
 * STATE/NAME/dns.txt for `status`.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <resolv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "x2b_abi.h"
#include "loader.h"

#define X2B_DNS_FILE "dns.txt"
/* Without respect_dns_ttl or a TTL: the cluster's dns_refresh_rate. Never below this. */
#define X2B_DNS_MIN_INTERVAL_MS 100U
/* Envoy's largest priority (the compiler rejects more). */
#define X2B_DNS_MAX_PRIORITY 128U

struct dns_addr {
	__u8 family; /* X2B_FAM_INET4 / X2B_FAM_INET6 */
	__u8 addr[16];
};

/* The last lookup of one host of a cluster (addresses given as such are never looked up). */
struct dns_host {
	const x2b_dhost *h;
	bool literal;	 /* an address in the snapshot, not a name */
	bool failed;	 /* the lookup failed: the cluster's rows are kept */
	char error[160]; /* why it failed, or why it has no address */
	struct dns_addr *addrs;
	size_t n, dropped; /* addresses kept; addresses beyond max_addresses */
	uint32_t ttl;	   /* smallest TTL of the answers, 0 when unknown */
};

struct dns_cluster {
	const x2b_dcluster_dns *dc;
	__u32 lb; /* X2B_LB_* of the cluster */
	struct dns_host *hosts;
	bool failed;	 /* some lookup failed: rows not rewritten */
	bool applied;	 /* rows written with these results */
	uint64_t due_ms; /* watch: the next lookup */
	char *last;	 /* watch: the rows last written, serialized (to skip no-ops) */
	size_t last_len;
};

struct x2b_dns {
	void *mraw;
	x2b_manifest *m;
	struct dns_cluster *c;
	size_t n;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool parse_literal(const char *text, struct dns_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, text, a->addr) == 1) {
		a->family = X2B_FAM_INET4;
		return true;
	}
	if (inet_pton(AF_INET6, text, a->addr) == 1) {
		a->family = X2B_FAM_INET6;
		return true;
	}
	return false;
}

static void host_reset(struct dns_host *d)
{
	free(d->addrs);
	d->addrs = NULL;
	d->n = d->dropped = 0;
	d->failed = false;
	d->error[0] = 0;
	d->ttl = 0;
}

static int host_add(struct dns_host *d, const struct dns_addr *a, size_t cap)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->addrs[i].family == a->family && !memcmp(d->addrs[i].addr, a->addr, 16))
			return 0;
	if (d->n >= cap) {
		d->dropped++;
		return 0;
	}
	if (!d->addrs) {
		d->addrs = calloc(cap, sizeof(*d->addrs));
		if (!d->addrs)
			return -ENOMEM;
	}
	d->addrs[d->n++] = *a;
	return 0;
}

/*
 * The smallest TTL of the name's records of one family (libresolv: getaddrinfo
 * gives no TTL); 0 when the query or the answer gives none.
 */
static uint32_t lookup_ttl(const char *name, int af)
{
	unsigned char ans[4096];
	uint32_t ttl = 0;
	ns_msg msg;
	ns_rr rr;
	int len;

	len = res_query(name, ns_c_in, af == AF_INET ? ns_t_a : ns_t_aaaa, ans, sizeof(ans));
	if (len < 0 || ns_initparse(ans, len, &msg))
		return 0;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr))
			break;
		if (ns_rr_type(rr) != (af == AF_INET ? ns_t_a : ns_t_aaaa))
			continue;
		if (!ttl || ns_rr_ttl(rr) < ttl)
			ttl = ns_rr_ttl(rr);
	}
	return ttl;
}

/*
 * One getaddrinfo() of one family: 1 with addresses added, 0 when the name has
 * none of that family (or does not exist: an answer, as Envoy takes it), -1
 * when the lookup failed (error set).
 */
static int lookup_family(struct dns_host *d, int af, size_t cap, bool want_ttl)
{
	struct addrinfo hints = { .ai_family = af, .ai_socktype = SOCK_STREAM }, *res = NULL;
	size_t before = d->n + d->dropped;
	int rc;

	rc = getaddrinfo(d->h->host, NULL, &hints, &res);
	if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_ADDRFAMILY) {
		snprintf(d->error, sizeof(d->error), "%s", gai_strerror(rc));
		return 0;
	}
	if (rc) {
		snprintf(d->error, sizeof(d->error), "%s",
			 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		struct dns_addr a = {};

		if (ai->ai_family == AF_INET) {
			a.family = X2B_FAM_INET4;
			memcpy(a.addr, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
		} else if (ai->ai_family == AF_INET6) {
			a.family = X2B_FAM_INET6;
			memcpy(a.addr, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		if (host_add(d, &a, cap)) {
			freeaddrinfo(res);
			snprintf(d->error, sizeof(d->error), "out of memory");
			return -1;
		}
	}
	freeaddrinfo(res);
	if (d->n + d->dropped == before)
		return 0;
	d->error[0] = 0;
	if (want_ttl) {
		uint32_t t = lookup_ttl(d->h->host, af);

		if (t && (!d->ttl || t < d->ttl))
			d->ttl = t;
	}
	return 1;
}

/*
 * Envoy's dns_lookup_family: AUTO asks for IPv6 and falls back to IPv4,
 * V4_PREFERRED the other way round, ALL asks for both (IPv4 first), V4_ONLY
 * and V6_ONLY one family.
 */
static void resolve_host(struct dns_host *d, const x2b_dcluster_dns *dc)
{
	const char *fam = dc->lookup_family;
	size_t cap = dc->max_addresses ? dc->max_addresses : 1;
	bool ttl = dc->respect_dns_ttl;
	int first = AF_INET6, second = AF_INET, r;

	host_reset(d);
	if (!strcmp(fam, "v4_only")) {
		r = lookup_family(d, AF_INET, cap, ttl);
	} else if (!strcmp(fam, "v6_only")) {
		r = lookup_family(d, AF_INET6, cap, ttl);
	} else if (!strcmp(fam, "all")) {
		int r4 = lookup_family(d, AF_INET, cap, ttl);
		char e4[sizeof(d->error)];

		memcpy(e4, d->error, sizeof(e4));
		r = lookup_family(d, AF_INET6, cap, ttl);
		if (r4 > 0 || r > 0)
			r = 1, d->error[0] = 0;
		else if (r4 < 0 && r < 0)
			memcpy(d->error, e4, sizeof(e4));
		else
			r = r4 < 0 || r < 0 ? (r4 < 0 ? r4 : r) : 0;
	} else {
		if (!strcmp(fam, "v4_preferred"))
			first = AF_INET, second = AF_INET6;
		r = lookup_family(d, first, cap, ttl);
		if (r <= 0)
			r = lookup_family(d, second, cap, ttl);
	}
	d->failed = r < 0;
	if (!r && !d->error[0])
		snprintf(d->error, sizeof(d->error), "no address");
}

static void resolve_cluster(struct dns_cluster *c)
{
	c->failed = false;
	for (size_t i = 0; i < c->dc->n_hosts; i++) {
		struct dns_host *d = &c->hosts[i];

		if (d->literal)
			continue;
		resolve_host(d, c->dc);
		if (d->failed)
			c->failed = true;
		if (d->dropped)
			x2b_warn("cluster '%s': %s has %zu addresses beyond the %u kept",
				 c->dc->name, d->h->host, d->dropped, c->dc->max_addresses);
	}
}

/*
 * The cluster's rows from the last lookups: every address of every host an
 * endpoint of its lb_endpoint, in config order, built as the compiler builds
 * them from addresses (lbrows.c). Manifests of an older compiler have no
 * localities: one locality per priority, without a weight.
 */
static int cluster_rows(const struct dns_cluster *c, struct x2b_lbrows *rows)
{
	const x2b_dcluster_dns *dc = c->dc;
	struct x2b_lblocality *locs;
	struct x2b_lbhost *hosts;
	size_t cap = 0, k = 0, nlocs;
	struct x2b_lbinput in;
	int err;

	for (size_t i = 0; i < dc->n_hosts; i++)
		cap += c->hosts[i].n;
	nlocs = dc->n_localities ? dc->n_localities : X2B_DNS_MAX_PRIORITY + 1;
	locs = calloc(nlocs, sizeof(*locs));
	hosts = calloc(cap ? cap : 1, sizeof(*hosts));
	if (!locs || !hosts) {
		free(locs);
		free(hosts);
		return -ENOMEM;
	}
	for (size_t l = 0; l < nlocs; l++) {
		locs[l].priority = dc->n_localities ? dc->localities[l]->priority : (__u32)l;
		locs[l].weight = dc->n_localities ? dc->localities[l]->weight : 0;
	}
	for (size_t i = 0; i < dc->n_hosts; i++) {
		const struct dns_host *d = &c->hosts[i];

		for (size_t j = 0; j < d->n; j++, k++) {
			hosts[k].ep.family = d->addrs[j].family;
			hosts[k].ep.port = htons((uint16_t)d->h->port);
			hosts[k].ep.weight = d->h->weight;
			memcpy(hosts[k].ep.addr, d->addrs[j].addr, 16);
			hosts[k].locality = dc->n_localities ? d->h->locality : d->h->priority;
			hosts[k].routable = !d->h->unroutable;
		}
	}
	in = (struct x2b_lbinput){
		.lb = c->lb,
		.locality_weighted = dc->locality_weighted,
		.maglev_table_size = dc->maglev_table_size,
		.ring_minimum_size = dc->ring_minimum_size,
		.ring_maximum_size = dc->ring_maximum_size,
		.factor = dc->overprovisioning_factor ? dc->overprovisioning_factor : 140,
		.localities = locs,
		.nlocalities = nlocs,
		.hosts = hosts,
		.nhosts = k,
	};
	err = x2b_lbrows_build(&in, rows);
	if (!err && rows->dropped_levels)
		x2b_warn("cluster '%s': %zu priority levels beyond %d carry load and are left out",
			 dc->name, rows->dropped_levels, X2B_MAX_PRIORITIES);
	free(locs);
	free(hosts);
	return err;
}

/* The rows as bytes, to tell whether a lookup changed them (watch). */
static int rows_bytes(const struct x2b_lbrows *r, char **out, size_t *len)
{
	size_t n = 0, off = 0;
	char *b;

	for (size_t i = 0; i < r->nlevels; i++)
		n += 3 * sizeof(__u32) + r->levels[i].neps * sizeof(struct x2b_endpoint) +
		     r->levels[i].ntable * sizeof(struct x2b_slot);
	b = malloc(n ? n : 1);
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < r->nlevels; i++) {
		const struct x2b_lblevel *l = &r->levels[i];
		__u32 head[3] = { l->cum_load, (__u32)l->neps, (__u32)l->ntable };

		memcpy(b + off, head, sizeof(head));
		off += sizeof(head);
		if (l->neps) /* a level has endpoints; a table may be absent (NULL) */
			memcpy(b + off, l->eps, l->neps * sizeof(struct x2b_endpoint));
		off += l->neps * sizeof(struct x2b_endpoint);
		if (l->ntable)
			memcpy(b + off, l->table, l->ntable * sizeof(struct x2b_slot));
		off += l->ntable * sizeof(struct x2b_slot);
	}
	*out = b;
	*len = n;
	return 0;
}

void x2b_dns_free(struct x2b_dns *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		for (size_t j = 0; s->c[i].hosts && j < s->c[i].dc->n_hosts; j++)
			free(s->c[i].hosts[j].addrs);
		free(s->c[i].hosts);
		free(s->c[i].last);
	}
	free(s->c);
	if (s->m)
		xds2bpf__bundle__v1__manifest__free_unpacked(s->m, NULL);
	free(s->mraw);
	free(s);
}

/* The LB policies whose rows the loader builds (lbrows.c), by the manifest's name. */
static const struct {
	const char *name;
	__u32 lb;
} dns_policies[] = {
	{ "round_robin", X2B_LB_ROUND_ROBIN },	   { "random", X2B_LB_RANDOM },
	{ "least_request", X2B_LB_LEAST_REQUEST }, { "maglev", X2B_LB_MAGLEV },
	{ "ring_hash", X2B_LB_RING_HASH },
};

/* Checks one DnsCluster against the manifest it came with; *lb: its policy. */
static int check_cluster(const x2b_manifest *m, const x2b_dcluster_dns *dc, __u32 *lb)
{
	size_t p;

	if (dc->cluster >= m->n_clusters || strcmp(m->clusters[dc->cluster]->name, dc->name)) {
		x2b_err("manifest: dns cluster '%s' does not name cluster %u", dc->name,
			dc->cluster);
		return X2B_EXIT_REJECT;
	}
	for (p = 0; p < sizeof(dns_policies) / sizeof(dns_policies[0]); p++)
		if (!strcmp(m->clusters[dc->cluster]->lb_policy, dns_policies[p].name))
			break;
	if (p == sizeof(dns_policies) / sizeof(dns_policies[0])) {
		x2b_err("manifest: dns cluster '%s': lb policy '%s' is not one the loader builds "
			"rows for (round_robin, random, least_request, maglev, ring_hash)",
			dc->name, m->clusters[dc->cluster]->lb_policy);
		return X2B_EXIT_REJECT;
	}
	*lb = dns_policies[p].lb;
	/* Envoy's limits, as the compiler checks them (a table larger is never built) */
	if ((*lb == X2B_LB_MAGLEV && dc->maglev_table_size > 5000011) ||
	    (*lb == X2B_LB_RING_HASH &&
	     (dc->ring_minimum_size > dc->ring_maximum_size || dc->ring_maximum_size > 8388608))) {
		x2b_err("manifest: dns cluster '%s': maglev table size %llu, ring sizes %llu-%llu "
			"are beyond Envoy's limits",
			dc->name, (unsigned long long)dc->maglev_table_size,
			(unsigned long long)dc->ring_minimum_size,
			(unsigned long long)dc->ring_maximum_size);
		return X2B_EXIT_REJECT;
	}
	for (size_t l = 0; l < dc->n_localities; l++) {
		if (dc->localities[l]->priority > X2B_DNS_MAX_PRIORITY) {
			x2b_err("manifest: dns cluster '%s': locality %zu has priority %u (0-%u)",
				dc->name, l, dc->localities[l]->priority, X2B_DNS_MAX_PRIORITY);
			return X2B_EXIT_REJECT;
		}
	}
	if (dc->max_addresses == 0 || dc->max_addresses > 1024) {
		x2b_err("manifest: dns cluster '%s': max_addresses %u (1-1024)", dc->name,
			dc->max_addresses);
		return X2B_EXIT_REJECT;
	}
	for (size_t i = 0; i < dc->n_hosts; i++) {
		const x2b_dhost *h = dc->hosts[i];

		bool bad_locality =
			dc->n_localities
				? h->locality >= dc->n_localities ||
					  dc->localities[h->locality]->priority != h->priority
				: h->priority > X2B_DNS_MAX_PRIORITY;

		if (!h->port || h->port > 65535 || !h->weight || !*h->host ||
		    strlen(h->host) > 253 || bad_locality) {
			x2b_err("manifest: dns cluster '%s': host %zu ('%s', port %u, weight %u, "
				"priority %u, locality %u) is invalid",
				dc->name, i, h->host, h->port, h->weight, h->priority, h->locality);
			return X2B_EXIT_REJECT;
		}
	}
	return 0;
}

/*
 * The DNS clusters of a manifest (taken over: freed with the state), `only`
 * one of them when not NULL. *out is NULL when the bundle has none.
 */
static int dns_open(void *mraw, x2b_manifest *m, const char *only, struct x2b_dns **out)
{
	struct x2b_dns *s = calloc(1, sizeof(*s));
	int err = 0;

	*out = NULL;
	if (!s)
		return X2B_EXIT_INTERNAL;
	s->mraw = mraw;
	s->m = m;
	s->c = calloc(m->n_dns_clusters ? m->n_dns_clusters : 1, sizeof(*s->c));
	if (!s->c) {
		err = X2B_EXIT_INTERNAL;
		goto fail;
	}
	for (size_t i = 0; i < m->n_dns_clusters; i++) {
		const x2b_dcluster_dns *dc = m->dns_clusters[i];
		struct dns_cluster *c;

		if (only && strcmp(dc->name, only))
			continue;
		__u32 lb;

		err = check_cluster(m, dc, &lb);
		if (err)
			goto fail;
		c = &s->c[s->n++];
		c->dc = dc;
		c->lb = lb;
		c->hosts = calloc(dc->n_hosts ? dc->n_hosts : 1, sizeof(*c->hosts));
		if (!c->hosts) {
			err = X2B_EXIT_INTERNAL;
			goto fail;
		}
		for (size_t j = 0; j < dc->n_hosts; j++) {
			struct dns_addr a;

			c->hosts[j].h = dc->hosts[j];
			if (parse_literal(dc->hosts[j]->host, &a)) {
				c->hosts[j].literal = true;
				if (host_add(&c->hosts[j], &a, 1)) {
					err = X2B_EXIT_INTERNAL;
					goto fail;
				}
			}
		}
	}
	if (only && !s->n) {
		x2b_err("no DNS cluster named '%s' in this bundle", only);
		err = X2B_EXIT_USAGE;
		goto fail;
	}
	if (!s->n) {
		x2b_dns_free(s);
		return 0;
	}
	*out = s;
	return 0;
fail:
	s->mraw = NULL; /* the caller still owns them on failure */
	s->m = NULL;
	x2b_dns_free(s);
	return err;
}

/* Copies a bundle's manifest into a DNS state, resolved now; *out NULL without DNS clusters. */
int x2b_dns_resolve_bundle(const struct x2b_bundle *b, struct x2b_dns **out)
{
	x2b_manifest *m;
	void *raw;
	int err;

	*out = NULL;
	if (!b->m->n_dns_clusters)
		return 0;
	raw = malloc(b->raw_len ? b->raw_len : 1);
	if (!raw)
		return X2B_EXIT_INTERNAL;
	memcpy(raw, b->raw, b->raw_len);
	m = xds2bpf__bundle__v1__manifest__unpack(NULL, b->raw_len, raw);
	if (!m) {
		free(raw);
		return X2B_EXIT_INTERNAL;
	}
	err = dns_open(raw, m, NULL, out);
	if (err) {
		xds2bpf__bundle__v1__manifest__free_unpacked(m, NULL);
		free(raw);
		return err;
	}
	for (size_t i = 0; *out && i < (*out)->n; i++)
		resolve_cluster(&(*out)->c[i]);
	return 0;
}

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		if (*buf) {
			va_start(ap, fmt);
			n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
			va_end(ap);
			if (n < 0)
				return;
			if ((size_t)n < *cap - *len) {
				*len += n;
				return;
			}
		}
		size_t ncap = *cap ? *cap * 2 : 4096;
		char *nb = realloc(*buf, ncap);

		if (!nb)
			return;
		*buf = nb;
		*cap = ncap;
	}
}

/*
 * STATE/dns.txt: one line per host of every DNS cluster, tab separated:
 *   cluster, host, port, state (ok, none, failed, address), TTL (s, 0: unknown),
 *   rows (written: the cluster's rows hold these results; kept: a lookup of the
 *   cluster failed, its rows are as before), addresses (comma separated) or the error.
 * Names and hosts have no control characters (checked in the manifest).
 */
static int write_results(const char *state, const struct x2b_dns *s)
{
	char *buf = NULL, text[INET6_ADDRSTRLEN];
	size_t len = 0, cap = 0;
	int err;

	append(&buf, &len, &cap, "%s", ""); /* an empty file for no hosts */
	for (size_t i = 0; i < s->n; i++) {
		const struct dns_cluster *c = &s->c[i];

		for (size_t j = 0; j < c->dc->n_hosts; j++) {
			const struct dns_host *d = &c->hosts[j];

			append(&buf, &len, &cap, "%s\t%s\t%u\t%s\t%u\t%s\t", c->dc->name,
			       d->h->host, d->h->port,
			       d->literal  ? "address"
			       : d->failed ? "failed"
			       : d->n	   ? "ok"
					   : "none",
			       d->ttl, c->applied ? "written" : "kept");
			if (d->failed || !d->n) {
				append(&buf, &len, &cap, "%s", d->error);
			} else {
				for (size_t k = 0; k < d->n; k++) {
					inet_ntop(d->addrs[k].family == X2B_FAM_INET4 ? AF_INET
										      : AF_INET6,
						  d->addrs[k].addr, text, sizeof(text));
					append(&buf, &len, &cap, "%s%s", k ? "," : "", text);
				}
				if (d->dropped)
					append(&buf, &len, &cap, " (+%zu dropped)", d->dropped);
			}
			append(&buf, &len, &cap, "\n");
		}
	}
	if (!buf)
		return X2B_EXIT_INTERNAL;
	err = x2b_write_state_file(state, X2B_DNS_FILE, buf, len);
	free(buf);
	return err;
}

/*
 * Writes the rows of every cluster of `s` whose lookups all answered (and, with
 * `changed_only`, whose records differ from the last ones written) in one
 * update session; then records every result for `status`.
 */
/* Writes one delta of rows: in a session of its own, or in the caller's (update-stream). */
typedef int (*dns_rows_fn)(void *ctx, x2b_delta *d);

static int rows_own_session(void *ctx, x2b_delta *d)
{
	return x2b_update_rows(ctx, d);
}

static int dns_apply_with(const char *name, struct x2b_dns *s, bool changed_only,
			  dns_rows_fn write_rows, void *ctx)
{
	Xds2bpf__Bundle__V1__EndpointDelta d = XDS2BPF__BUNDLE__V1__ENDPOINT_DELTA__INIT;
	x2b_dcluster **rows = calloc(s->n, sizeof(*rows));
	x2b_dcluster *crow = calloc(s->n, sizeof(*crow));
	x2b_dlevel *lv = calloc(s->n * X2B_MAX_PRIORITIES, sizeof(*lv));
	x2b_dlevel **lvp = calloc(s->n * X2B_MAX_PRIORITIES, sizeof(*lvp));
	struct x2b_lbrows *built = calloc(s->n, sizeof(*built));
	char **bytes = calloc(s->n, sizeof(*bytes));
	size_t *nbytes = calloc(s->n, sizeof(*nbytes));
	char state[PATH_MAX];
	int err = 0;

	if (!rows || !crow || !lv || !lvp || !built || !bytes || !nbytes) {
		err = X2B_EXIT_INTERNAL;
		goto out;
	}
	for (size_t i = 0; i < s->n; i++) {
		struct dns_cluster *c = &s->c[i];
		x2b_dlevel *l = &lv[i * X2B_MAX_PRIORITIES];
		x2b_dlevel **lp = &lvp[i * X2B_MAX_PRIORITIES];

		c->applied = false;
		if (c->failed)
			continue;
		if (cluster_rows(c, &built[i]) || rows_bytes(&built[i], &bytes[i], &nbytes[i])) {
			x2b_err("cluster '%s': cannot build its rows", c->dc->name);
			err = X2B_EXIT_INTERNAL;
			goto out;
		}
		if (changed_only && c->last && c->last_len == nbytes[i] &&
		    !memcmp(c->last, bytes[i], nbytes[i])) {
			c->applied = true; /* the rows already hold exactly these */
			continue;
		}
		xds2bpf__bundle__v1__cluster_rows__init(&crow[i]);
		crow[i].cluster = c->dc->cluster;
		crow[i].name = (char *)c->dc->name;
		for (size_t li = 0; li < built[i].nlevels; li++) {
			const struct x2b_lblevel *b = &built[i].levels[li];

			xds2bpf__bundle__v1__level_rows__init(&l[li]);
			l[li].cum_load = b->cum_load;
			l[li].endpoints.data = (uint8_t *)b->eps;
			l[li].endpoints.len = b->neps * sizeof(struct x2b_endpoint);
			l[li].table.data = (uint8_t *)b->table;
			l[li].table.len = b->ntable * sizeof(struct x2b_slot);
			lp[li] = &l[li];
		}
		crow[i].levels = lp;
		crow[i].n_levels = built[i].nlevels;
		rows[d.n_clusters++] = &crow[i];
	}
	if (d.n_clusters) {
		d.format_version = X2B_DELTA_FORMAT_VERSION;
		d.abi_version = X2B_ABI_VERSION;
		d.clusters = rows;
		err = write_rows(ctx, &d);
		if (err)
			goto out;
	}
	for (size_t i = 0; i < s->n; i++) {
		struct dns_cluster *c = &s->c[i];

		if (c->failed || c->applied)
			continue;
		c->applied = true;
		free(c->last);
		c->last = bytes[i];
		c->last_len = nbytes[i];
		bytes[i] = NULL;
	}
out:
	if (x2b_path(state, sizeof(state), "%s/%s", x2b_state_base(), name) == 0)
		err = write_results(state, s) ?: err;
	for (size_t i = 0; i < s->n; i++) {
		if (built)
			x2b_lbrows_free(&built[i]);
		if (bytes)
			free(bytes[i]);
	}
	free(built);
	free(bytes);
	free(nbytes);
	free(rows);
	free(crow);
	free(lv);
	free(lvp);
	return err;
}

static int dns_apply(const char *name, struct x2b_dns *s, bool changed_only)
{
	return dns_apply_with(name, s, changed_only, rows_own_session, (void *)name);
}

static void report(const char *name, const struct x2b_dns *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct dns_cluster *c = &s->c[i];
		size_t eps = 0;

		for (size_t j = 0; j < c->dc->n_hosts; j++) {
			const struct dns_host *d = &c->hosts[j];

			eps += d->n;
			if (d->failed)
				x2b_warn("'%s' cluster '%s': lookup of %s failed: %s; its rows are "
					 "kept",
					 name, c->dc->name, d->h->host, d->error);
			else if (!d->literal && !d->n)
				x2b_warn("'%s' cluster '%s': %s has no address (%s): no endpoint "
					 "from it",
					 name, c->dc->name, d->h->host, d->error);
		}
		if (c->applied)
			x2b_note("'%s' cluster '%s': %zu endpoints from DNS", name, c->dc->name,
				 eps);
	}
}

/*
 * After load or replace (`err`: how that went): the rows of every DNS cluster
 * from the lookups made before it; frees `s`. Rows that cannot be written are
 * like lookups that failed: the bundle is live (a replace cannot be undone here),
 * the DNS clusters keep the snapshot's addresses, `status` says so, and `refresh`
 * tries again; the command still succeeds.
 */
int x2b_dns_finish(const char *name, const char *done, int err, struct x2b_dns *s)
{
	if (!err && s) {
		if (dns_apply(name, s, false))
			x2b_warn(
				"'%s' is %s, but the rows of its DNS clusters could not be written "
				"(they route to the snapshot's addresses only): run 'refresh --name %s'",
				name, done, name);
		report(name, s);
	}
	x2b_dns_free(s);
	return err;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* The next lookup of a cluster: its TTL (respect_dns_ttl and known), else its refresh rate. */
static uint64_t interval_ms(const struct dns_cluster *c)
{
	uint64_t ms = c->dc->refresh_rate_ms ? c->dc->refresh_rate_ms : 5000;

	if (c->dc->respect_dns_ttl) {
		uint32_t ttl = 0;

		for (size_t j = 0; j < c->dc->n_hosts; j++)
			if (c->hosts[j].ttl && (!ttl || c->hosts[j].ttl < ttl))
				ttl = c->hosts[j].ttl;
		if (ttl)
			ms = (uint64_t)ttl * 1000;
	}
	return ms < X2B_DNS_MIN_INTERVAL_MS ? X2B_DNS_MIN_INTERVAL_MS : ms;
}

static int open_loaded(const char *name, const char *only, struct x2b_dns **out)
{
	char path[PATH_MAX];
	x2b_manifest *m = NULL;
	void *raw = NULL;
	size_t len = 0;
	int err;

	if (x2b_path(path, sizeof(path), "%s/%s/manifest.pb", x2b_state_base(), name))
		return X2B_EXIT_USAGE;
	err = x2b_manifest_read(path, &raw, &len, &m);
	if (err) {
		x2b_err("no bundle named '%s' is loaded (cannot read %s: %s)", name, path,
			err == -EBADMSG ? "corrupt" : strerror(-err));
		return X2B_EXIT_REJECT;
	}
	err = dns_open(raw, m, only, out);
	if (err) {
		xds2bpf__bundle__v1__manifest__free_unpacked(m, NULL);
		free(raw);
		return err;
	}
	if (!*out)
		x2b_note("'%s' has no DNS clusters: nothing to resolve", name);
	return 0;
}

/* Looks up the clusters whose interval is over; returns how many. */
static unsigned resolve_due(struct x2b_dns *s)
{
	uint64_t now = now_ms();
	unsigned n = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct dns_cluster *c = &s->c[i];

		if (c->due_ms > now)
			continue;
		resolve_cluster(c);
		c->due_ms = now_ms() + interval_ms(c);
		n++;
	}
	return n;
}

/*
 * refresh: look up every name again and rewrite the rows of the clusters whose
 * lookups answered. --watch: forever (until SIGINT/SIGTERM), each cluster on its
 * own interval, writing only clusters whose addresses changed; a bundle
 * replaced meanwhile is picked up (its manifest read again).
 */
int x2b_cmd_refresh(const char *name, const char *cluster, bool watch)
{
	struct x2b_dns *s = NULL;
	char code[65] = "";
	int err;

	err = open_loaded(name, cluster, &s);
	if (err || !s)
		return err;
	if (!watch) {
		for (size_t i = 0; i < s->n; i++)
			resolve_cluster(&s->c[i]);
		err = dns_apply(name, s, false);
		report(name, s);
		x2b_dns_free(s);
		return err;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	snprintf(code, sizeof(code), "%s", s->m->code_sha256);
	while (!stop) {
		uint64_t now, next = UINT64_MAX;

		if (resolve_due(s)) {
			err = dns_apply(name, s, true);
			if (err == X2B_EXIT_REJECT || err == X2B_EXIT_NO_FIT) {
				/* unloaded, replaced, or locked by another command: try again */
				struct x2b_dns *again = NULL;

				if (open_loaded(name, cluster, &again) || !again) {
					x2b_err("'%s' is gone or has no DNS clusters: stopping",
						name);
					break;
				}
				if (strcmp(again->m->code_sha256, code)) {
					x2b_dns_free(s);
					s = again;
					snprintf(code, sizeof(code), "%s", s->m->code_sha256);
					continue; /* every cluster is due in the new bundle */
				}
				x2b_dns_free(again);
				for (size_t i = 0; i < s->n; i++)
					s->c[i].due_ms = now_ms() + X2B_DNS_MIN_INTERVAL_MS * 10;
			} else if (err) {
				break;
			}
		}
		for (size_t i = 0; i < s->n; i++)
			if (s->c[i].due_ms < next)
				next = s->c[i].due_ms;
		now = now_ms();
		if (next > now)
			usleep((useconds_t)((next - now > 1000 ? 1000 : next - now) * 1000));
	}
	x2b_dns_free(s);
	return stop ? X2B_EXIT_OK : err;
}

/*
 * update-stream's `refresh`: the names of the clusters that are due (each on its
 * refresh rate or TTL) looked up again, and the rows of those whose addresses
 * changed written through the stream's own session (`write_rows`), which holds
 * the bundle's lock. *state keeps the lookups between requests (opened on the
 * first; NULL when the bundle has no DNS clusters). *resolved: clusters looked up.
 */
int x2b_dns_stream_refresh(const char *name, struct x2b_dns **state,
			   int (*write_rows)(void *, x2b_delta *), void *ctx, unsigned *resolved)
{
	struct x2b_dns *s = *state;
	int err;

	*resolved = 0;
	if (!s) {
		err = open_loaded(name, NULL, &s);
		if (err || !s)
			return err;
		*state = s;
	}
	*resolved = resolve_due(s);
	if (!*resolved)
		return 0;
	err = dns_apply_with(name, s, true, write_rows, ctx);
	report(name, s);
	return err;
}
