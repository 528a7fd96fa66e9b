// SPDX-License-Identifier: GPL-2.0-only
/*
 * Hand-written connect4/connect6 program for the VM tests of the defer-connect
 * module (phase A).  Deferred service addresses:
 *   10.0.0.80:80, [fd00::80]:80, [::ffff:10.0.0.80]:80   (no listener)
 *   127.0.0.1:9100                                        (a real listener: no SYN may reach it)
 * On the re-run at first send the head picks the backend 127.0.0.1 / ::1 port 900N:
 *   path /a -> 1, path /b -> 2, Host c.example -> 3 (bpf_x2b_field),
 *   x-backend: d -> 4 (bpf_x2b_header), x-scan: d -> 4 (a bpf_loop over the
 *   raw head), anything else -> 5; path /deny -> refused (EPERM); path /dead -> port 9999
 *   (nothing listens: connection refused); path /slow -> port 9007 (the test
 *   keeps that listener's accept queue full: the first SYN is dropped).
 * 10.0.0.80:81 is plain L4 to backend 5 (never deferred).
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "x2b_defer.h"

#define VIP4		0x0a000050	/* 10.0.0.80 */
#define LOOP4		0x7f000001
#define ROUTE_DENY	(-1)
#define ROUTE_DEAD	9999
#define ROUTE_SLOW	9007	/* 127.0.0.1:9007: a listener whose accept queue the test keeps full */

struct scratch {
	char head[X2B_HEAD_MAX];
	char val[64];
};

struct tstat {
	__u64 first;		/* first runs that deferred */
	__u64 rerun;		/* re-runs at first send */
	__u64 defer_err;	/* x2b_defer() failures */
	__s64 last_err;
	__u64 last_len;
	__u64 last_flags;
	__u64 rerun_defer;	/* x2b_defer() in a re-run: must be -EALREADY */
	/* the parsing kfuncs' view of the last head */
	__s32 method_len, path_len, host_len, hdr_len;
	char method[16], path[32], host[32], hdr[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} t_scr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tstat);
} t_stat SEC(".maps");

static __always_inline char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* Header matches by a bpf_loop over the head (verified once, whatever its length). */
static const char hdr_d[16] = "\nx-scan: d";
static const char hdr_backend[] = "x-backend";

struct scan {
	int n;
	__u32 md;	/* bytes of the needle matched so far */
};

static long scan_cb(__u64 i, void *arg)
{
	struct scan *sc = arg;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&t_scr, &zero);
	char c;

	if (!s || (int)i >= sc->n)
		return 1;
	c = lower(s->head[i & (X2B_HEAD_MAX - 1)]);
	if (sc->md < 10)
		sc->md = c == hdr_d[sc->md & 15] ? sc->md + 1 : (c == '\n' ? 1 : 0);
	return 0;
}

static __always_inline int prefix(const char *h, __u32 p, const char *s, __u32 len)
{
	for (__u32 k = 0; k < 8; k++) {
		if (k >= len)
			return 1;
		if (h[(p + k) & (X2B_HEAD_MAX - 1)] != s[k])
			return 0;
	}
	return 1;
}

static __always_inline int eq_lower(const char *v, int len, const char *want, int wlen)
{
	if (len != wlen)
		return 0;
	for (int k = 0; k < 16; k++) {
		if (k >= wlen)
			break;
		if (lower(v[k]) != want[k])
			return 0;
	}
	return 1;
}

static __always_inline int route(const char *h, int n)
{
	__u32 p = 0;

	for (__u32 i = 0; i < 16; i++) {
		if ((int)i >= n)
			return 5;
		if (h[i] == ' ') {
			p = i + 1;
			break;
		}
	}
	if (!p || (int)p + 6 > n)
		return 5;
	if (prefix(h, p, "/deny", 5))
		return ROUTE_DENY;
	if (prefix(h, p, "/dead", 5))
		return ROUTE_DEAD;
	if (prefix(h, p, "/slow", 5))
		return ROUTE_SLOW;
	if (prefix(h, p, "/a", 2))
		return 1;
	if (prefix(h, p, "/b", 2))
		return 2;
	{
		struct scan sc = { .n = n };

		bpf_loop(X2B_HEAD_MAX, scan_cb, &sc, 0);
		if (sc.md == 10)
			return 4;
	}
	return 5;
}

static __always_inline void set_dst(struct bpf_sock_addr *ctx, int v6, int mapped, int b)
{
	__u32 port = b == ROUTE_DEAD || b == ROUTE_SLOW ? b : 9000 + b;

	if (!v6) {
		ctx->user_ip4 = bpf_htonl(LOOP4);
	} else if (mapped) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = bpf_htonl(LOOP4);
	} else {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = 0;
		ctx->user_ip6[3] = bpf_htonl(1);
	}
	ctx->user_port = bpf_htons(port);
}

static __always_inline int handle(struct bpf_sock_addr *ctx, int v6, int mapped)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&t_scr, &zero);
	struct tstat *st = bpf_map_lookup_elem(&t_stat, &zero);
	int n, b, e;

	if (!s || !st)
		return 1;
	n = bpf_x2b_head(ctx, s->head, X2B_HEAD_MAX);
	if (n == -X2B_ENOENT) {
		e = bpf_x2b_defer(ctx);
		if (e) {
			__sync_fetch_and_add(&st->defer_err, 1);
			st->last_err = e;
			set_dst(ctx, v6, mapped, 5);	/* L4 fallback */
		} else {
			__sync_fetch_and_add(&st->first, 1);
		}
		return 1;
	}
	if (n < 0)
		return 1;
	__sync_fetch_and_add(&st->rerun, 1);
	st->last_len = n;
	st->last_flags = bpf_x2b_head_info(ctx);
	if (bpf_x2b_defer(ctx) == -114 /* EALREADY */)
		__sync_fetch_and_add(&st->rerun_defer, 1);
	/* the parsing kfuncs: recorded for the test, then used for routing */
	st->method_len = bpf_x2b_field(ctx, X2B_FIELD_METHOD, st->method, sizeof(st->method));
	st->path_len = bpf_x2b_field(ctx, X2B_FIELD_PATH, st->path, sizeof(st->path));
	st->host_len = bpf_x2b_field(ctx, X2B_FIELD_HOST, st->host, sizeof(st->host));
	st->hdr_len = bpf_x2b_header(ctx, hdr_backend, st->hdr, sizeof(st->hdr));
	b = route(s->head, n);
	if (b == 5) {
		e = bpf_x2b_field(ctx, X2B_FIELD_HOST, s->val, 32);
		if (eq_lower(s->val, e, "c.example", 9))
			b = 3;
		e = bpf_x2b_header(ctx, hdr_backend, s->val, 32);
		if (b == 5 && eq_lower(s->val, e, "d", 1))
			b = 4;
	}
	if (b == ROUTE_DENY)
		return 0;
	set_dst(ctx, v6, mapped, b);
	return 1;
}

SEC("cgroup/connect4")
int t_connect4(struct bpf_sock_addr *ctx)
{
	__u32 ip = bpf_ntohl(ctx->user_ip4);
	__u16 port = bpf_ntohs((__u16)ctx->user_port);

	if (ctx->protocol != IPPROTO_TCP)
		return 1;
	if (ip == VIP4 && port == 81) {
		set_dst(ctx, 0, 0, 5);
		return 1;
	}
	if ((ip == VIP4 && port == 80) || (ip == LOOP4 && port == 9100))
		return handle(ctx, 0, 0);
	return 1;
}

SEC("cgroup/connect6")
int t_connect6(struct bpf_sock_addr *ctx)
{
	__u16 port = bpf_ntohs((__u16)ctx->user_port);

	if (ctx->protocol != IPPROTO_TCP || port != 80)
		return 1;
	/* fd00::80 */
	if (ctx->user_ip6[0] == bpf_htonl(0xfd000000) && ctx->user_ip6[1] == 0 &&
	    ctx->user_ip6[2] == 0 && ctx->user_ip6[3] == bpf_htonl(0x80))
		return handle(ctx, 1, 0);
	/* ::ffff:10.0.0.80 */
	if (ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 &&
	    ctx->user_ip6[2] == bpf_htonl(0xffff) && ctx->user_ip6[3] == bpf_htonl(VIP4))
		return handle(ctx, 1, 1);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
