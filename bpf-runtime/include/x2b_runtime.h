/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The BPF-side library of xds2bpf. Included by every generated program after
 * its map definitions (the maps are sized per bundle by the planner):
 *   x2b_lsnf, x2b_lsnx, x2b_lsn, x2b_act, x2b_wcl, x2b_clu, x2b_cluv, x2b_ep,
 *   x2b_lbtab, x2b_active, x2b_orig, x2b_gstat, x2b_astat, x2b_cstat.
 * Everything here is bounded (constant loop limits) and allocation-free.
 */
#ifndef X2B_RUNTIME_H
#define X2B_RUNTIME_H

static __always_inline void x2b_count(void *map, __u32 idx)
{
	__u64 *v;

#ifdef X2B_BENCH_NO_COUNTERS
	return;
#endif
	v = bpf_map_lookup_elem(map, &idx);

	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

/*
 * Envoy's weighted clusters: pick r = random % total, then the first entry
 * whose cumulative weight exceeds r, in config order.
 */
static __always_inline __u32 x2b_pick_weighted(const struct x2b_action *act)
{
	__u32 r = bpf_get_prandom_u32() % act->total_weight;
	__u32 last = X2B_NO_ACTION;

	for (__u32 i = 0; i < X2B_MAX_WEIGHTED; i++) {
		__u32 idx = act->target + i;
		struct x2b_wcluster *w;

		if (i >= act->count)
			break;
		w = bpf_map_lookup_elem(&x2b_wcl, &idx);
		if (!w)
			break;
		last = w->cluster;
		if (r < w->cum_weight)
			return w->cluster;
	}
	return last;
}

#ifdef X2B_WITH_MODULE
#define X2B_HTTP_FALLBACK 0xfffffffdu

/*
 * HTTP with the defer-connect module (kernel/). At connect() there is no
 * request yet: ask the module to defer the connect to the first send, and
 * leave the address alone. The module then runs this program again with the
 * request head, which the generated route table decides on. What Envoy would
 * answer itself (404, redirects, direct responses) cannot be answered here:
 * such requests are refused (the send fails with EPERM), and so are heads
 * Envoy's HTTP/1 codec refuses (X2B_HK_BAD_REQUEST: 400, 426, 431, 501); a head the matcher
 * cannot use (too long, a form it does not parse) takes the listener's L4 fallback
 * where every request is routed alike, and is refused elsewhere (fail closed).
 */
static __always_inline __u32 x2b_http_action(struct bpf_sock_addr *ctx, const struct x2b_action *act)
{
	struct x2b_req *req = x2b_http_req();
	struct x2b_hresult *res;
	__u32 zero = 0, c;
	int n;

	if (!req)
		return X2B_HTTP_FALLBACK;
	n = bpf_x2b_head(ctx, req->head, X2B_HEAD_MAX);
	if (n < 0)
		return bpf_x2b_defer(ctx) == 0 ? X2B_NO_ACTION : X2B_HTTP_FALLBACK;
	/* a full buffer may have cut the head short: the matcher then reports X2B_HK_ERROR */
	req->len = n > X2B_HEAD_MAX ? X2B_HEAD_MAX : n;
	req->flags = n >= X2B_HEAD_MAX ? X2B_REQ_TRUNCATED : 0;
	c = x2b_http_route(req, act->target);
	res = bpf_map_lookup_elem(&x2b_hres, &zero);
	if (res && res->kind < X2B_HK_COUNT)
		x2b_count(&x2b_hstat, res->kind);
	if (c != X2B_NO_ACTION)
		return c;
	if (!res)
		return X2B_HTTP_FALLBACK;
	if (res->kind == X2B_HK_ERROR && x2b_http_error_falls_back(act->target))
		return X2B_HTTP_FALLBACK;
	return X2B_REFUSE;
}

#ifdef X2B_TLS_H
#define X2B_TLS_DEFERRED 0xfffffffdu

/*
 * A listener whose filter chains are told apart by the ClientHello (server
 * names, transport protocol, ALPN): deferred like HTTP; at the first send the
 * head is read as Envoy's TLS inspector reads it and the generated chooser
 * (x2b_tls.h) names the chain's action. Returns that action id,
 * X2B_TLS_DEFERRED at connect(), X2B_TLS_CLOSE when Envoy would close the
 * connection, or the fallback action when the socket cannot be deferred.
 */
static __always_inline __u32 x2b_tls_action(struct bpf_sock_addr *ctx, const struct x2b_action *act)
{
	struct x2b_req *req = x2b_http_req();
	int n;

	if (!req)
		return X2B_TLS_CLOSE;
	n = bpf_x2b_head(ctx, req->head, X2B_HEAD_MAX);
	if (n < 0)
		return bpf_x2b_defer(ctx) == 0 ? X2B_TLS_DEFERRED : act->fallback;
	req->len = n > X2B_HEAD_MAX ? X2B_HEAD_MAX : n;
	req->flags = n >= X2B_HEAD_MAX ? X2B_REQ_TRUNCATED : 0;
	return x2b_tls_choose(req, act->target);
}
#endif
#endif

/*
 * Resolve a listener action (id `action`, row `act`) to a cluster id,
 * X2B_NO_ACTION or X2B_REFUSE. *direct names the action whose own cluster it
 * is (X2B_ACT_CLUSTER: the action or its fallback), X2B_NO_ACTION when the
 * cluster was picked per connect (weighted clusters, HTTP routes, TLS chains).
 */
static __always_inline __u32 x2b_action_cluster(struct bpf_sock_addr *ctx, __u32 action,
						const struct x2b_action *act, __u32 *direct)
{
	*direct = X2B_NO_ACTION;
	if (act->kind == X2B_ACT_HTTP) {
		__u32 fb = act->fallback;

#ifdef X2B_WITH_MODULE
		__u32 c = x2b_http_action(ctx, act);

		if (c != X2B_HTTP_FALLBACK)
			return c;
#endif
		/* Without the module (or an unusable head) the listener's L4 fallback. */

		action = fb;
		act = bpf_map_lookup_elem(&x2b_act, &fb);
		if (!act)
			return X2B_NO_ACTION;
	}
	if (act->kind == X2B_ACT_TLS) {
		__u32 next = act->fallback;

#if defined(X2B_WITH_MODULE) && defined(X2B_TLS_H)
		next = x2b_tls_action(ctx, act);
		if (next == X2B_TLS_DEFERRED)
			return X2B_NO_ACTION;
		if (next == X2B_TLS_CLOSE)
			return X2B_REFUSE;
#endif
		/* Without the module: the fallback, a refusing action (the bytes decide). */
		action = next;
		act = bpf_map_lookup_elem(&x2b_act, &next);
		if (!act)
			return X2B_NO_ACTION;
	}
	switch (act->kind) {
	case X2B_ACT_CLUSTER:
		*direct = action;
		return act->target;
	case X2B_ACT_WEIGHTED:
		if (!act->total_weight)
			return X2B_NO_ACTION;
		return x2b_pick_weighted(act);
	case X2B_ACT_REFUSE:
		return X2B_REFUSE;
	default:
		return X2B_NO_ACTION;
	}
}

/* Envoy's priority load: r in [0,100) against cumulative loads. */
/*
 * A cluster's live row. Each cluster has two rows in x2b_clu (2*id and 2*id+1);
 * x2b_cluv[id] says which one is live. `xds2bpf-loader update` writes a new
 * row into the inactive one (and endpoints and tables into unused ranges),
 * then flips x2b_cluv[id]: a connect sees the whole old cluster or the whole
 * new one, never half of each. The flip is one u32 that only changes between
 * 0 and 1, so even a byte-wise copy is read as old or new.
 */
static __always_inline struct x2b_cluster *x2b_cluster_row(__u32 id)
{
	__u32 *live = bpf_map_lookup_elem(&x2b_cluv, &id);
	__u32 row;

	if (!live)
		return NULL;
	row = id * 2 + (*live & 1);
	return bpf_map_lookup_elem(&x2b_clu, &row);
}

static __always_inline const struct x2b_level *x2b_pick_level(const struct x2b_cluster *c)
{
	__u32 r;

	if (c->nlevels <= 1)
		return &c->levels[0];
	r = bpf_get_prandom_u32() % 100;
	for (int i = 0; i < X2B_MAX_PRIORITIES; i++) {
		if (i >= c->nlevels)
			break;
		if (r < c->levels[i].cum_load)
			return &c->levels[i];
	}
	return &c->levels[0];
}

static __always_inline __u32 x2b_table_ep(const struct x2b_level *lv, __u32 pos)
{
	__u32 idx = lv->table_first + pos;
	struct x2b_slot *s = bpf_map_lookup_elem(&x2b_lbtab, &idx);

	return s ? s->ep : 0;
}

/*
 * Round robin: the cluster row's own counter walks the compiler's smooth-WRR
 * schedule (the line the level was read from: no other row to touch). An
 * in-place update writes the spare row with the planned start and flips to it.
 */
static __always_inline __u32 x2b_lb_round_robin(const struct x2b_cluster *c, const struct x2b_level *lv)
{
	__u32 n = __sync_fetch_and_add((__u32 *)&c->counter, 1);

	if (lv->table_len)
		return x2b_table_ep(lv, n % lv->table_len);
	return n % lv->count;
}

/*
 * Under locality weights a random or least-request level has a table of its
 * localities (LBTables.localitySchedule): a slot names one by its first
 * endpoint (ep) and its endpoint count (hash). Picks a locality by weight and
 * leaves its run in *first, *count; without a table the run is the level.
 */
static __always_inline void x2b_locality(const struct x2b_level *lv, __u32 *first, __u32 *count)
{
	__u32 idx;
	struct x2b_slot *s;

	*first = 0;
	*count = lv->count;
	if (!lv->table_len)
		return;
	idx = lv->table_first + bpf_get_prandom_u32() % lv->table_len;
	s = bpf_map_lookup_elem(&x2b_lbtab, &idx);
	if (!s || !s->hash || s->ep + s->hash > lv->count)
		return;
	*first = s->ep;
	*count = s->hash;
}

/* Random: uniform over the level's (or the chosen locality's) endpoints, as Envoy's RANDOM ignores weights. */
static __always_inline __u32 x2b_lb_random(const struct x2b_level *lv)
{
	__u32 first, count;

	x2b_locality(lv, &first, &count);
	return first + bpf_get_prandom_u32() % count;
}

/* Active connections to an endpoint's address (counted by x2b_sockops). */
static __always_inline __u32 x2b_active_of(__u32 global)
{
	struct x2b_endpoint *ep = bpf_map_lookup_elem(&x2b_ep, &global);
	struct x2b_epkey key = {};
	__u32 *v;

	if (!ep)
		return 0;
	key.family = ep->family;
	key.port = ep->port;
	__builtin_memcpy(key.addr, ep->addr, 16);
	v = bpf_map_lookup_elem(&x2b_active, &key);
	return v ? *v : 0;
}

/* Least request: power of two choices on active connections (kept by sockops), inside the chosen locality. */
static __always_inline __u32 x2b_lb_least_request(const struct x2b_level *lv)
{
	__u32 first, count, a, b;

	x2b_locality(lv, &first, &count);
	a = first + bpf_get_prandom_u32() % count;
	b = first + bpf_get_prandom_u32() % count;

	return x2b_active_of(lv->first + b) < x2b_active_of(lv->first + a) ? b : a;
}

/* Maglev: the compiler's lookup table, indexed by the hash. */
static __always_inline __u32 x2b_lb_maglev(const struct x2b_level *lv, __u32 hash)
{
	if (!lv->table_len)
		return hash % lv->count;
	return x2b_table_ep(lv, hash % lv->table_len);
}

/* Ring hash: first ring point >= hash (wrapping), by bounded binary search. */
static __always_inline __u32 x2b_lb_ring_hash(const struct x2b_level *lv, __u32 hash)
{
	__u32 lo = 0, hi = lv->table_len;

	if (!hi)
		return hash % lv->count;
	for (int i = 0; i < X2B_RING_SEARCH_STEPS; i++) {
		__u32 mid, idx;
		struct x2b_slot *s;

		if (lo >= hi)
			break;
		mid = lo + (hi - lo) / 2;
		idx = lv->table_first + mid;
		s = bpf_map_lookup_elem(&x2b_lbtab, &idx);
		if (!s)
			break;
		if (s->hash < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= lv->table_len)
		lo = 0;
	return x2b_table_ep(lv, lo);
}

/*
 * Remember what the socket dialled, for getpeername: one slot of the x2b_orig
 * array per socket cookie (cookie % X2B_ORIG_SLOTS). No allocation, no lock, no
 * hashing on the connect path (an LRU hash cost ~0.55 us here: BENCHMARKS.md,
 * attribution). Cookies only grow, so a slot is taken over only after
 * X2B_ORIG_SLOTS newer cookies; getpeername on a socket that old reports its
 * endpoint, as the LRU did after 64k newer connects. The slot's cookie is
 * cleared first and written last, so a reader never takes a half-written
 * record for its own.
 */
static __always_inline struct x2b_sock *x2b_orig_slot(__u64 cookie)
{
	__u32 slot = (__u32)cookie & (X2B_ORIG_SLOTS - 1);

	return bpf_map_lookup_elem(&x2b_orig, &slot);
}

static __always_inline void x2b_remember(struct bpf_sock_addr *ctx, __u32 global, __u8 family,
					 const __u32 *orig_addr, __u16 orig_port)
{
	struct x2b_sock *st;
	__u64 cookie;

#ifdef X2B_BENCH_NO_REMEMBER
	return;
#endif
	cookie = bpf_get_socket_cookie(ctx);
	st = x2b_orig_slot(cookie);
	if (!st)
		return;
	X2B_WRITE_ONCE(st->cookie, 0);
	x2b_barrier();
	st->family = family;
	st->flags = X2B_SK_REDIRECTED;
	st->orig_port = orig_port;
	st->endpoint = global;
	if (family == X2B_FAM_INET4) /* constant sizes: `family` is not a constant in a subprogram */
		__builtin_memcpy(st->orig_addr, orig_addr, 4);
	else
		__builtin_memcpy(st->orig_addr, orig_addr, 16);
	x2b_barrier();
	X2B_WRITE_ONCE(st->cookie, cookie);
}

/* The endpoint index within a level chosen by policy `lb` (a constant per stage). */
static __always_inline __u32 x2b_pick(const struct x2b_cluster *c, const struct x2b_level *lv, const __u32 lb)
{
#ifdef X2B_BENCH_NO_LB
	return 0;
#endif
	switch (lb) {
	case X2B_LB_ROUND_ROBIN:
		return x2b_lb_round_robin(c, lv);
	case X2B_LB_RANDOM:
		return x2b_lb_random(lv);
	case X2B_LB_LEAST_REQUEST:
		return x2b_lb_least_request(lv);
	case X2B_LB_MAGLEV:
		/* L4 has no request to hash: the key is random per connection. */
		return x2b_lb_maglev(lv, bpf_get_prandom_u32());
	default:
		return x2b_lb_ring_hash(lv, bpf_get_prandom_u32());
	}
}

/*
 * Load balancing, shared by every policy and family: pick a priority level and
 * an endpoint of the cluster the entry stage chose, rewrite the destination,
 * count it and remember the original for getpeername. `lb` is a constant at
 * each call, so only that policy's code is in each switch arm of the entry.
 * Returns the sock_addr verdict: 1 proceed, 0 refuse (no usable endpoint, as
 * Envoy closes a connection whose cluster has no healthy host).
 *
 * With the defer-connect module the entry program also runs the HTTP matcher,
 * whose bpf_loop callbacks stack their frames on the entry's: there the LB code
 * is a subprogram of its own, so its locals are not in the entry's frame (the
 * kernel allows 512 bytes for a whole call chain). Elsewhere it is inline.
 */
#ifdef X2B_WITH_MODULE
#define X2B_BALANCE_FN static __noinline __attribute__((unused)) /* unused without LB policies */
#else
#define X2B_BALANCE_FN static __always_inline
#endif


/*
 * Send the connect to endpoint `global` (row `ep`): rewrite the destination,
 * count it in the row and remember the original for getpeername. Returns 0
 * when the endpoint's family cannot be reached from this socket (counted; the
 * connect goes on to its original destination).
 */
static __always_inline int x2b_rewrite(struct bpf_sock_addr *ctx, struct x2b_endpoint *ep,
				       __u32 global, const __u8 family)
{
	__u32 orig[4];
	__u16 orig_port = (__u16)ctx->user_port;

	if (family == X2B_FAM_INET4) {
		if (ep->family != X2B_FAM_INET4) {
			x2b_count(&x2b_gstat, X2B_G_FAMILY);
			return 0;
		}
		orig[0] = ctx->user_ip4;
		ctx->user_ip4 = *(__u32 *)ep->addr;
	} else {
		orig[0] = ctx->user_ip6[0];
		orig[1] = ctx->user_ip6[1];
		orig[2] = ctx->user_ip6[2];
		orig[3] = ctx->user_ip6[3];
		if (ep->family == X2B_FAM_INET4) {
			/* An IPv6 socket reaches an IPv4 endpoint through its mapped address. */
			ctx->user_ip6[0] = 0;
			ctx->user_ip6[1] = 0;
			ctx->user_ip6[2] = bpf_htonl(0xffff);
			ctx->user_ip6[3] = *(__u32 *)ep->addr;
		} else {
			ctx->user_ip6[0] = *(__u32 *)&ep->addr[0];
			ctx->user_ip6[1] = *(__u32 *)&ep->addr[4];
			ctx->user_ip6[2] = *(__u32 *)&ep->addr[8];
			ctx->user_ip6[3] = *(__u32 *)&ep->addr[12];
		}
	}
	ctx->user_port = ep->port;
#ifndef X2B_BENCH_NO_COUNTERS
	__sync_fetch_and_add(&ep->connects, 1);
#endif
	x2b_remember(ctx, global, family, orig, orig_port);
	return 1;
}

static __always_inline int x2b_balance(struct bpf_sock_addr *ctx, const struct x2b_cluster *c, __u32 cid,
				       struct x2b_astat *redirected, const __u32 lb, const __u8 family)
{
	const struct x2b_level *lv;
	struct x2b_endpoint *ep;
	__u32 global;

	if (!c->nlevels) {
		x2b_count(&x2b_gstat, X2B_G_NO_ENDPOINT);
		return 0;
	}
	lv = x2b_pick_level(c);
	if (!lv->count) {
		x2b_count(&x2b_gstat, X2B_G_NO_ENDPOINT);
		return 0;
	}
	global = lv->first + x2b_pick(c, lv, lb);
	ep = bpf_map_lookup_elem(&x2b_ep, &global);
	if (!ep || !x2b_rewrite(ctx, ep, global, family))
		return 1;
	if (redirected)
		redirected->redirected += 1; /* the action's per-CPU row, read at the match */
	else
		x2b_count(&x2b_cstat, cid);
	return 1;
}

/*
 * One per family (`lb` a constant at each call): the family must stay a
 * constant inside the subprogram the module build makes of it. Passed as an
 * argument, clang may spill it, the verifier then follows both families'
 * branches, and connect6 may not read user_ip4.
 */
X2B_BALANCE_FN int x2b_balance4(struct bpf_sock_addr *ctx, const struct x2b_cluster *c, __u32 cid,
				struct x2b_astat *redirected, const __u32 lb)
{
	return x2b_balance(ctx, c, cid, redirected, lb, X2B_FAM_INET4);
}

X2B_BALANCE_FN int x2b_balance6(struct bpf_sock_addr *ctx, const struct x2b_cluster *c, __u32 cid,
				struct x2b_astat *redirected, const __u32 lb)
{
	return x2b_balance(ctx, c, cid, redirected, lb, X2B_FAM_INET6);
}

/*
 * The fast path of a service address (a slot's `range`): one priority level of
 * round robin without weights, balanced from the listener slot alone. The
 * slot's `connects` is both the position and the counter, so a decision reads
 * two lines (the slot and the endpoint) instead of the action counters, the
 * cluster's live-row index and its row besides (BENCHMARKS.md, "the floor").
 * The endpoint index the slot names next in *global; -1 when the slot has no
 * range (the general path decides). The compiler (and `update`) give an IPv4
 * address a range of IPv4 endpoints only.
 */
static __always_inline int x2b_fast_pick(__u64 *range, __u64 *connects, __u32 *global)
{
	__u64 r = X2B_READ_ONCE(*range), n = 0;
	__u32 count = (__u32)r;

	if (!count)
		return -1;
#ifndef X2B_BENCH_NO_LB
	n = __sync_fetch_and_add(connects, 1);
#endif
	*global = (__u32)(r >> 32) + (__u32)(n % count);
	return 0;
}

/*
 * IPv4 (ABI 8): from the compact rows, a 32-byte x2b_lsn4 slot and a 16-byte
 * x2b_ep4 endpoint, half the bytes of the tables a decision reads at 1k-10k
 * services (BENCHMARKS.md, "the compact layout"). The endpoint row carries its
 * own connect counter, as x2b_endpoint does on the general path; `stats` adds
 * the two. Returns -1 (the general path decides) or the sock_addr verdict.
 */
X2B_BALANCE_FN int x2b_fast_balance4(struct bpf_sock_addr *ctx, struct x2b_lsn4_slot *s)
{
	__u32 global = 0, orig;
	__u16 orig_port = (__u16)ctx->user_port;
	struct x2b_ep4 *ep;

	if (x2b_fast_pick(&s->range, &s->connects, &global))
		return -1;
	ep = bpf_map_lookup_elem(&x2b_ep4, &global);
	if (!ep)
		return 1;
	if (ep->family != X2B_FAM_INET4) {
		/* not written by the compiler or `update` (an IPv4 range is IPv4 endpoints only) */
		x2b_count(&x2b_gstat, X2B_G_FAMILY);
		return 1;
	}
	orig = ctx->user_ip4;
	ctx->user_ip4 = ep->addr;
	ctx->user_port = ep->port;
#ifndef X2B_BENCH_NO_COUNTERS
	__sync_fetch_and_add(&ep->connects, 1);
#endif
	x2b_remember(ctx, global, X2B_FAM_INET4, &orig, orig_port);
	return 1;
}

/* IPv6: from the x2b_lsnx slot and the x2b_ep row; one per family, as x2b_balance4/6. */
X2B_BALANCE_FN int x2b_fast_balance6(struct bpf_sock_addr *ctx, struct x2b_lsn_slot *s)
{
	__u32 global = 0;
	struct x2b_endpoint *ep;

	if (x2b_fast_pick(&s->range, &s->connects, &global))
		return -1;
	ep = bpf_map_lookup_elem(&x2b_ep, &global);
	if (ep)
		x2b_rewrite(ctx, ep, global, X2B_FAM_INET6);
	return 1;
}

/*
 * The entry stage after the listener match: resolve the action to a cluster and
 * count. Returns the cluster's LB policy (the caller then balances inline, one
 * switch arm per policy the bundle uses: no tail call, no scratch map), with
 * the cluster's live row in *row, its id in *cid and the action row whose
 * `redirected` a redirect adds to in *redirected (NULL: x2b_cstat; a row
 * pointer, not the field's: no arithmetic on a pointer that may be NULL); X2B_SLOT_PASS to leave the
 * connect untouched or X2B_SLOT_REFUSE to refuse it. `act` is the action's
 * row when the listener lookup already read it (x2b_lsnx), else NULL.
 */
static __always_inline int x2b_route(struct bpf_sock_addr *ctx, __u32 action,
				     const struct x2b_action *act, __u32 *cid,
				     struct x2b_cluster **row, struct x2b_astat **redirected)
{
	struct x2b_astat *st = 0;
	struct x2b_cluster *c;
	__u32 cluster, direct;

	if (action == X2B_NO_ACTION) {
		x2b_count(&x2b_gstat, X2B_G_UNMATCHED);
		return X2B_SLOT_PASS;
	}
	if (!act)
		act = bpf_map_lookup_elem(&x2b_act, &action);
	if (!act)
		return X2B_SLOT_PASS;
#ifndef X2B_BENCH_NO_COUNTERS
	st = bpf_map_lookup_elem(&x2b_astat, &action);
	if (st)
		st->matched += 1; /* per-CPU: no atomics needed */
#endif
	cluster = x2b_action_cluster(ctx, action, act, &direct);
	if (direct != X2B_NO_ACTION && direct != action) {
		st = 0;
#ifndef X2B_BENCH_NO_COUNTERS
		st = bpf_map_lookup_elem(&x2b_astat, &direct);
#endif
	}
	*redirected = direct != X2B_NO_ACTION ? st : 0;
	if (cluster == X2B_REFUSE) {
		x2b_count(&x2b_gstat, X2B_G_REFUSED);
		return X2B_SLOT_REFUSE;
	}
	if (cluster == X2B_NO_ACTION)
		return X2B_SLOT_PASS;
	c = x2b_cluster_row(cluster);
	if (!c)
		return X2B_SLOT_PASS;
	if (c->flags & X2B_CLU_PASSTHROUGH) {
		x2b_count(&x2b_gstat, X2B_G_PASSTHROUGH);
		return X2B_SLOT_PASS;
	}
	*cid = cluster;
	*row = c;
	return c->lb;
}

/*
 * The slot hash of an exact listener key (words 1-5: family, port, address;
 * the prefix length is the family's). BundleLayout.listenerSlotHash computes
 * the same to lay the table out.
 */
static __always_inline __u32 x2b_lsn_hash(const __u32 *w)
{
	__u32 h = 0;

	for (int i = 1; i < 6; i++) {
		h = (h ^ w[i]) * 0x9e3779b1u;
		h ^= h >> 15;
	}
	/* MurmurHash3's finaliser: every input bit reaches the low (slot) bits */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

/*
 * Exact listener addresses (x2b_lsnx, laid out by the compiler): from the
 * key's slot on, at most X2B_LSNX_PROBES slots, until the key or an empty slot.
 */
static __always_inline struct x2b_lsn_slot *x2b_exact_listener(const struct x2b_lsn_key *key)
{
	const __u32 *w = (const __u32 *)key;
	__u32 h = x2b_lsn_hash(w);

	for (__u32 i = 0; i < X2B_LSNX_PROBES; i++) {
		__u32 idx = (h + i) & X2B_LSNX_MASK;
		struct x2b_lsn_slot *s = bpf_map_lookup_elem(&x2b_lsnx, &idx);
		const __u32 *k;

		if (!s || !s->key.family)
			return NULL;
		k = (const __u32 *)&s->key;
		if (k[0] == w[1] && k[1] == w[2] && k[2] == w[3] && k[3] == w[4] && k[4] == w[5])
			return s;
	}
	return NULL;
}

/*
 * The same probe over x2b_lsn4 (IPv4 keys: the same hash, so the same slots):
 * a slot's first two words are the key's words 1 and 2 (family, port; address).
 */
static __always_inline struct x2b_lsn4_slot *x2b_exact_listener4(const struct x2b_lsn_key *key)
{
	const __u32 *w = (const __u32 *)key;
	__u32 h = x2b_lsn_hash(w);

	for (__u32 i = 0; i < X2B_LSNX_PROBES; i++) {
		__u32 idx = (h + i) & X2B_LSNX_MASK;
		struct x2b_lsn4_slot *s = bpf_map_lookup_elem(&x2b_lsn4, &idx);
		const __u32 *k;

		if (!s || !s->family)
			return NULL;
		k = (const __u32 *)s;
		if (k[0] == w[1] && k[1] == w[2])
			return s;
	}
	return NULL;
}

/*
 * An exact row of the straight-line match: its slot by the index the compiler
 * laid it out at (no probing), for the fast path (and, IPv6, the action's row).
 */
static __always_inline __u32 x2b_inline_slot4(__u32 idx, __u32 action, struct x2b_lsn4_slot **hit)
{
	*hit = bpf_map_lookup_elem(&x2b_lsn4, &idx);
	return action;
}

static __always_inline __u32 x2b_inline_slot(__u32 idx, __u32 action, struct x2b_lsn_slot **hit)
{
	*hit = bpf_map_lookup_elem(&x2b_lsnx, &idx);
	return action;
}

/* Destination prefixes and wildcard listeners: the LPM trie, when the bundle has any rows there. */
static __always_inline __u32 x2b_prefix_listener(const struct x2b_lsn_key *key)
{
	__u32 *action;

	if (!X2B_LPM_ROWS)
		return X2B_NO_ACTION;
	action = bpf_map_lookup_elem(&x2b_lsn, key);
	return action ? *action : X2B_NO_ACTION;
}

/*
 * IPv4 listener lookup from maps: the /16 filter (x2b_lsnf) first, then exact
 * listener addresses (x2b_lsn4: one half-line slot for the common service VIP:
 * *hit), then the LPM trie.
 */
static __always_inline __u32 x2b_lookup_listener4(__u16 port, __u32 ip, struct x2b_lsn4_slot **hit)
{
	/* the /16 filter first: most destinations that are no service end here */
	__u32 hi = bpf_ntohl(ip) >> 16, word = hi >> 5;
	__u32 *bits = bpf_map_lookup_elem(&x2b_lsnf, &word);
	struct x2b_lsn_key key = {};
	struct x2b_lsn4_slot *s;

	if (!bits || !(*bits & (1u << (hi & 31))))
		return X2B_NO_ACTION;
	key.prefixlen = 64;
	key.family = X2B_FAM_INET4;
	key.port = port;
	__builtin_memcpy(key.addr, &ip, 4);
	s = x2b_exact_listener4(&key);
	if (s) {
		*hit = s;
		return s->action;
	}
	return x2b_prefix_listener(&key);
}

/*
 * IPv6 listener lookup from maps: exact listener addresses (x2b_lsnx, whose
 * slot carries the action's row: *hit), then the LPM trie.
 */
static __always_inline __u32 x2b_lookup_listener6(__u16 port, const __u32 *addr, struct x2b_lsn_slot **hit)
{
	struct x2b_lsn_key key = {};
	struct x2b_lsn_slot *s;

	key.prefixlen = 160;
	key.family = X2B_FAM_INET6;
	key.port = port;
	__builtin_memcpy(key.addr, addr, 16);
	s = x2b_exact_listener(&key);
	if (s) {
		*hit = s;
		return s->action;
	}
	return x2b_prefix_listener(&key);
}

#endif /* X2B_RUNTIME_H */
