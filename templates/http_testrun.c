/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Test harness for the generated HTTP matcher (route-check --engine bpf, the
 * differential tests): an XDP program BPF_PROG_TEST_RUN can drive. The packet
 * is X2B_TEST_PAD bytes of padding, then the request head; the padding starts
 * with struct x2b_test_args (the route table, the random value and the active
 * runtime key). The decision (struct x2b_hresult) is written over the padding,
 * so data_out returns it. It includes the same x2b_routes.h as the bundle.
 *
 * XDP with fragments (xdp.frags), not tc: a tc test run takes one page of
 * linear data (about 3.7 KB after the kernel's head and tail room), less than
 * X2B_HEAD_MAX + 1 bytes; an XDP test run puts the rest in fragments, which
 * bpf_xdp_load_bytes() reads through.
 */
#define X2B_TEST_RANDOM 1
#include "x2b_prelude.h"
#include "x2b_routes.h"

#define X2B_TEST_PAD 32

struct x2b_test_args {
	__u32 table, random, runtime;
};

_Static_assert(sizeof(struct x2b_hresult) <= X2B_TEST_PAD, "result fits in the padding");
_Static_assert(sizeof(struct x2b_test_args) <= X2B_TEST_PAD, "arguments fit in the padding");

/* The head after the padding into x2b_hreq, as the module fills it; NULL on failure. */
static __always_inline struct x2b_req *x2b_test_head(struct xdp_md *ctx)
{
	struct x2b_req *req = x2b_http_req();
	__u32 len = bpf_xdp_get_buff_len(ctx);

	if (!req || len < X2B_TEST_PAD)
		return NULL;
	len -= X2B_TEST_PAD;
	req->flags = 0;
	if (len > X2B_HEAD_MAX) {
		len = X2B_HEAD_MAX;
		req->flags = X2B_REQ_TRUNCATED;
	}
	req->len = len;
	if (len && bpf_xdp_load_bytes(ctx, X2B_TEST_PAD, req->head, len & (X2B_HEAD_MAX - 1) ?: X2B_HEAD_MAX) < 0)
		return NULL;
	return req;
}

SEC("xdp.frags")
int x2b_http_test(struct xdp_md *ctx)
{
	struct x2b_test_args args;
	struct x2b_htest *t;
	struct x2b_hresult *res, out = {};
	struct x2b_req *req;
	__u32 zero = 0;

	if (bpf_xdp_load_bytes(ctx, 0, &args, sizeof(args)) < 0)
		return XDP_ABORTED;
	t = bpf_map_lookup_elem(&x2b_htst, &zero);
	if (!t)
		return XDP_ABORTED;
	t->random = args.random;
	t->runtime = args.runtime;
	req = x2b_test_head(ctx);
	if (!req)
		return XDP_ABORTED;
	out.cluster = x2b_http_route(req, args.table);
	res = bpf_map_lookup_elem(&x2b_hres, &zero);
	if (res) {
		out.kind = res->kind;
		out.vhost = res->vhost;
		out.route = res->route;
		if (res->kind == X2B_HK_BAD_REQUEST)
			out.cluster = res->cluster; /* Envoy's status */
		else if (res->kind == X2B_HK_ERROR) /* 1: the L4 fallback, 0: refused */
			out.cluster = x2b_http_error_falls_back(args.table);
	}
	if (bpf_xdp_store_bytes(ctx, 0, &out, sizeof(out)) < 0)
		return XDP_ABORTED;
	return XDP_PASS;
}

/*
 * The harness alone, for timing (x2b-testrun --program x2b_http_base): the same
 * argument read, head copy and result write as x2b_http_test, no decision. The
 * HTTP route-match benchmark subtracts its run time from x2b_http_test's.
 */
SEC("xdp.frags")
int x2b_http_base(struct xdp_md *ctx)
{
	struct x2b_test_args args;
	struct x2b_hresult out = {};

	if (bpf_xdp_load_bytes(ctx, 0, &args, sizeof(args)) < 0)
		return XDP_ABORTED;
	if (!x2b_test_head(ctx))
		return XDP_ABORTED;
	out.kind = X2B_HK_ERROR;
	out.vhost = X2B_HTTP_NONE;
	out.route = X2B_HTTP_NONE;
	out.cluster = args.table;
	if (bpf_xdp_store_bytes(ctx, 0, &out, sizeof(out)) < 0)
		return XDP_ABORTED;
	return XDP_PASS;
}

/*
 * The decision up to the route scan, for timing (--program x2b_http_prep): the
 * harness, the head parse, the path and host checks and the virtual host, as
 * x2b_http_decide does them. Its run time less x2b_http_base's is what every
 * request costs before a route is looked at; x2b_http_test's less this one's is
 * the route match.
 */
SEC("xdp.frags")
int x2b_http_prep(struct xdp_md *ctx)
{
	struct x2b_test_args args;
	struct x2b_hresult out = {};
	const struct x2b_htable *t;
	struct x2b_hparse *p;
	struct x2b_req *req;

	if (bpf_xdp_load_bytes(ctx, 0, &args, sizeof(args)) < 0)
		return XDP_ABORTED;
	req = x2b_test_head(ctx);
	p = x2b_hparse();
	t = bpf_map_lookup_elem(&x2b_htab, &args.table);
	if (!req || !p || !t)
		return XDP_ABORTED;
	out.kind = X2B_HK_ERROR;
	out.route = X2B_HTTP_NONE;
	out.vhost = X2B_HTTP_NONE;
	if (x2b_http_parse(req, p) == 0 && !x2b_path_needs_norm(req, p, t)) {
		x2b_http_draw(p);
		x2b_normalize_host(p, t);
		out.vhost = x2b_select_vhost(req, p, t, args.table);
	}
	if (bpf_xdp_store_bytes(ctx, 0, &out, sizeof(out)) < 0)
		return XDP_ABORTED;
	return XDP_PASS;
}

#ifdef X2B_TLS_H
/*
 * The TLS chooser (x2b_tls.h and the generated tables), for x2b-testrun
 * --program x2b_tls_test: the padding's table is the TLS table, the packet after the
 * padding the connection's first bytes. Written over the padding as a struct
 * x2b_hresult: kind = the hello state (X2B_TLS_RAW, _HELLO, _PARTIAL),
 * vhost = the server name's length, route = the ALPN values seen, cluster =
 * the action id (X2B_TLS_CLOSE: the connection is refused).
 */
SEC("xdp.frags")
int x2b_tls_test(struct xdp_md *ctx)
{
	struct x2b_test_args args;
	struct x2b_hresult out = {};
	struct x2b_hello *h;
	struct x2b_req *req;
	__u32 zero = 0;

	if (bpf_xdp_load_bytes(ctx, 0, &args, sizeof(args)) < 0)
		return XDP_ABORTED;
	req = x2b_test_head(ctx);
	if (!req)
		return XDP_ABORTED;
	out.cluster = x2b_tls_choose(req, args.table);
	h = bpf_map_lookup_elem(&x2b_tlsh, &zero);
	if (h) {
		out.kind = h->state;
		out.vhost = h->sni_len;
		out.route = h->nalpn;
	}
	if (bpf_xdp_store_bytes(ctx, 0, &out, sizeof(out)) < 0)
		return XDP_ABORTED;
	return XDP_PASS;
}
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";
