/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Test harness for the generated HTTP matcher (route-check --engine bpf, the
 * differential tests): a tc program BPF_PROG_TEST_RUN can drive. The packet is
 * X2B_TEST_PAD bytes of padding, then the request head; skb->cb[0..2] carry
 * the route table, the random value and the active runtime key. The decision
 * (struct x2b_hresult) is written over the padding, so data_out returns it.
 * It includes the same x2b_routes.h as the bundle.
 */
#define X2B_TEST_RANDOM 1
#include "x2b_prelude.h"
#include "x2b_routes.h"

#define X2B_TEST_PAD 32

_Static_assert(sizeof(struct x2b_hresult) <= X2B_TEST_PAD, "result fits in the padding");

/* The head after the padding into x2b_hreq, as the module fills it; NULL on failure. */
static __always_inline struct x2b_req *x2b_test_head(struct __sk_buff *skb)
{
	struct x2b_req *req = x2b_http_req();
	__u32 len = skb->len;

	if (!req || len < X2B_TEST_PAD)
		return NULL;
	len -= X2B_TEST_PAD;
	req->flags = 0;
	if (len > X2B_HEAD_MAX) {
		len = X2B_HEAD_MAX;
		req->flags = X2B_REQ_TRUNCATED;
	}
	req->len = len;
	if (len && bpf_skb_load_bytes(skb, X2B_TEST_PAD, req->head, len & (X2B_HEAD_MAX - 1) ?: X2B_HEAD_MAX) < 0)
		return NULL;
	return req;
}

SEC("tc")
int x2b_http_test(struct __sk_buff *skb)
{
	struct x2b_htest *t;
	struct x2b_hresult *res, out = {};
	struct x2b_req *req;
	__u32 zero = 0;

	t = bpf_map_lookup_elem(&x2b_htst, &zero);
	if (!t)
		return 1;
	t->random = skb->cb[1];
	t->runtime = skb->cb[2];
	req = x2b_test_head(skb);
	if (!req)
		return 1;
	out.cluster = x2b_http_route(req, skb->cb[0]);
	res = bpf_map_lookup_elem(&x2b_hres, &zero);
	if (res) {
		out.kind = res->kind;
		out.vhost = res->vhost;
		out.route = res->route;
		if (res->kind == X2B_HK_BAD_REQUEST)
			out.cluster = res->cluster; /* Envoy's status */
		else if (res->kind == X2B_HK_ERROR) /* 1: the L4 fallback, 0: refused */
			out.cluster = x2b_http_error_falls_back(skb->cb[0]);
	}
	bpf_skb_store_bytes(skb, 0, &out, sizeof(out), 0);
	return 0;
}

#ifdef X2B_TLS_H
/*
 * The TLS chooser (x2b_tls.h and the generated tables), for x2b-testrun
 * --program x2b_tls_test: skb->cb[0] is the TLS table, the packet after the
 * padding the connection's first bytes. Written over the padding as a struct
 * x2b_hresult: kind = the hello state (X2B_TLS_RAW, _HELLO, _PARTIAL),
 * vhost = the server name's length, route = the ALPN values seen, cluster =
 * the action id (X2B_TLS_CLOSE: the connection is refused).
 */
SEC("tc")
int x2b_tls_test(struct __sk_buff *skb)
{
	struct x2b_req *req = x2b_test_head(skb);
	struct x2b_hresult out = {};
	struct x2b_hello *h;
	__u32 zero = 0;

	if (!req)
		return 1;
	out.cluster = x2b_tls_choose(req, skb->cb[0]);
	h = bpf_map_lookup_elem(&x2b_tlsh, &zero);
	if (h) {
		out.kind = h->state;
		out.vhost = h->sni_len;
		out.route = h->nalpn;
	}
	bpf_skb_store_bytes(skb, 0, &out, sizeof(out), 0);
	return 0;
}
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";
