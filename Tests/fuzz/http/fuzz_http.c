// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer harness for the BPF HTTP head parser, compiled for user space:
 * bpf-runtime/include/x2b_http.h itself (no copy), through a generated
 * x2b_routes.h (a golden, so the map definitions and the inline route scans
 * are the compiler's own text) and Tests/fuzz/shim/x2b_user_bpf.h for the
 * helpers. Built with clang -fsanitize=fuzzer,address,undefined (mk/fuzz.mk).
 *
 * The input is the request head as the module captures it: its first
 * X2B_HEAD_MAX bytes, X2B_REQ_TRUNCATED when it is longer. For each input:
 *  - the bytes past req->len are poisoned (ASan): the parser must never read
 *    what a previous request left in the per-CPU buffer;
 *  - x2b_http_parse runs twice, over a zeroed and over a garbage-filled parse
 *    scratch (a per-CPU map keeps the last request's index): the outcome and
 *    the index must not depend on it;
 *  - the result is within bounds: return value, status, flags, every offset
 *    and length inside the head, the authority inside auth[];
 *  - an accepted head (0) agrees with a plain reference tokenizer written from
 *    the rules (HeadValidation.swift): method among Envoy's, version HTTP/1.1,
 *    header names of tchar, every header line's name hash and trimmed value,
 *    the non-empty Host values joined with ',' as Envoy joins them (or an
 *    absolute form's authority), :path and
 *    its query, content-length and transfer-encoding;
 *  - x2b_http_decide runs over two route tables (every option off; every
 *    option on, with the wildcard lengths all set so every probe runs) and its
 *    result kind must be one the ABI names and agree with the parse.
 * Any disagreement aborts with a line saying which rule failed.
 */
#define X2B_TEST_RANDOM 1
#include "x2b_user_bpf.h"
#include "x2b_routes.h"

#include <sanitizer/asan_interface.h>
#include <stdbool.h>
#include <stddef.h>

#define FAIL(...)                                           \
	do {                                                \
		fprintf(stderr, "fuzz_http: " __VA_ARGS__); \
		fprintf(stderr, "\n");                      \
		abort();                                    \
	} while (0)
#define CHECK(cond, ...)                   \
	do {                               \
		if (!(cond))               \
			FAIL(__VA_ARGS__); \
	} while (0)

/* Table 1's header for vhost selection (X2B_HT_VHOST_HEADER). */
static const char vhost_header[] = "x-vhost";
static struct x2b_hparse scratch_copy;

static __u64 fnv_lower(const unsigned char *s, size_t n)
{
	__u64 h = X2B_FNV_INIT;

	for (size_t i = 0; i < n; i++)
		h = x2b_fnv(h, x2b_lower(s[i]));
	return h;
}

static void setup(void)
{
	struct x2b_htable *tab;

	X2B_UMAP_BIND(x2b_hreq);
	X2B_UMAP_BIND(x2b_hscr);
	X2B_UMAP_BIND(x2b_hres);
	X2B_UMAP_BIND(x2b_htab);
	X2B_UMAP_BIND(x2b_hdom);
	X2B_UMAP_BIND(x2b_hvh);
	X2B_UMAP_BIND(x2b_hrt);
	X2B_UMAP_BIND(x2b_hcond);
	X2B_UMAP_BIND(x2b_hwcl);
	X2B_UMAP_BIND(x2b_hcn);
	X2B_UMAP_BIND(x2b_dfa);
	X2B_UMAP_BIND(x2b_dcls);
	X2B_UMAP_BIND(x2b_dtr);
	X2B_UMAP_BIND(x2b_hpix);
	X2B_UMAP_BIND(x2b_hcand);
	X2B_UMAP_BIND(x2b_htst);
	tab = x2b_umap_data(&x2b_htab);
	/* table 0: zeroed, every option off, default vhost 0 (zeroed: no routes) */
	tab[1].flags = X2B_HT_IGNORE_PORT | X2B_HT_VHOST_HEADER | X2B_HT_STRIP_DOT |
		       X2B_HT_STRIP_ANY_PORT | X2B_HT_STRIP_PORT | X2B_HT_PATH_PARAMS |
		       X2B_HT_DOMAINS | X2B_HT_NORMALIZE_PATH | X2B_HT_MERGE_SLASHES |
		       X2B_HT_ESCAPED_SLASHES;
	tab[1].strip_port = 8080;
	tab[1].default_vhost = X2B_HTTP_NONE;
	tab[1].vhost_header =
		fnv_lower((const unsigned char *)vhost_header, sizeof(vhost_header) - 1);
	memset(tab[1].sfx_lens, 0xff, sizeof(tab[1].sfx_lens));
	memset(tab[1].pfx_lens, 0xff, sizeof(tab[1].pfx_lens));
}

/* ---- The reference: the head's tokens, from the rules, without the kernel's state machine ---- */

static const char *const known_methods[] = {
	"ACL",	     "BIND",	"CHECKOUT", "CONNECT", "COPY",	     "DELETE",	    "GET",
	"HEAD",	     "LINK",	"LOCK",	    "MERGE",   "MKACTIVITY", "MKCALENDAR",  "MKCOL",
	"MOVE",	     "MSEARCH", "NOTIFY",   "OPTIONS", "PATCH",	     "POST",	    "PROPFIND",
	"PROPPATCH", "PURGE",	"PUT",	    "REBIND",  "REPORT",     "SEARCH",	    "SOURCE",
	"SUBSCRIBE", "TRACE",	"UNBIND",   "UNLINK",  "UNLOCK",     "UNSUBSCRIBE",
};

static bool in_set(unsigned char c, const char *set)
{
	return c && strchr(set, c);
}

static bool is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 9110 tchar */
static bool is_tchar(unsigned char c)
{
	return is_alnum(c) || in_set(c, "!#$%&'*+-.^_`|~");
}

/* A Host value: unreserved, sub-delims, ":@[]%" (HeadValidation.isAuthorityChar) */
static bool is_auth_char(unsigned char c)
{
	return is_alnum(c) || in_set(c, "-._~!$&'()*+,;=:@[]%");
}

static bool span_eq_ci(const unsigned char *s, size_t n, const char *w)
{
	size_t k;

	for (k = 0; k < n && w[k]; k++)
		if (x2b_lower(s[k]) != (unsigned char)w[k])
			return false;
	return k == n && !w[k];
}

struct ref_hdr {
	size_t name_off, name_len, value_off, value_len;
};

#define REF_MAX_LINES (X2B_HEAD_MAX / 2)

struct ref_head {
	size_t method_len, target_off, target_len, version_off, version_len;
	size_t nhdr;
	struct ref_hdr hdr[REF_MAX_LINES];
};

static size_t line_end(const unsigned char *h, size_t n, size_t from)
{
	while (from < n && h[from] != '\r' && h[from] != '\n')
		from++;
	return from;
}

/* Tokenizes an accepted head; false if it is not one (the parser then must not have accepted it). */
static bool ref_tokenize(const unsigned char *h, size_t n, struct ref_head *r)
{
	size_t i = 0, eol;

	memset(r, 0, offsetof(struct ref_head, hdr));
	eol = line_end(h, n, 0);
	while (i < eol && h[i] != ' ')
		i++;
	if (i == eol)
		return false;
	r->method_len = i;
	r->target_off = ++i;
	while (i < eol && h[i] != ' ')
		i++;
	if (i == eol)
		return false;
	r->target_len = i - r->target_off;
	while (i < eol && h[i] == ' ')
		i++;
	r->version_off = i;
	while (eol > i && h[eol - 1] == ' ')
		eol--;
	r->version_len = eol - i;
	i = line_end(h, n, i);
	for (;;) {
		size_t colon, vs, ve;

		/* the line ending: CRLF or LF */
		if (i < n && h[i] == '\r')
			i++;
		if (i >= n || h[i] != '\n')
			return false;
		i++;
		if (i >= n)
			return true; /* the head may stop right after its last header line */
		if (h[i] == '\n' || (h[i] == '\r' && i + 1 < n && h[i + 1] == '\n'))
			return true;
		eol = line_end(h, n, i);
		for (colon = i; colon < eol && h[colon] != ':'; colon++)
			;
		if (colon == eol || r->nhdr == REF_MAX_LINES)
			return false;
		vs = colon + 1;
		ve = eol;
		while (vs < ve && (h[vs] == ' ' || h[vs] == '\t'))
			vs++;
		while (ve > vs && (h[ve - 1] == ' ' || h[ve - 1] == '\t'))
			ve--;
		r->hdr[r->nhdr++] = (struct ref_hdr){ i, colon - i, vs, ve - vs };
		i = eol;
	}
}

/* ---- Checks -------------------------------------------------------------------------------- */

static void check_bounds(const struct x2b_req *req, const struct x2b_hparse *p, int ret)
{
	__u32 len = req->len;

	CHECK(ret == 0 || ret == -1 || ret == -2, "x2b_http_parse returned %d", ret);
	if (ret == -2) {
		CHECK(p->flags & X2B_HP_REFUSE, "refused without X2B_HP_REFUSE");
		CHECK(p->status == 400 || p->status == 404 || p->status == 426 ||
			      p->status == 431 || p->status == 501,
		      "refused with status %u", p->status);
	}
	CHECK(p->nhdr <= X2B_HTTP_MAX_HDRS, "nhdr %u", p->nhdr);
	for (__u32 k = 0; k < p->nhdr; k++)
		CHECK(p->hdr[k].off + p->hdr[k].len <= len,
		      "header %u [%u, +%u) past the head (%u)", k, p->hdr[k].off, p->hdr[k].len,
		      len);
	if (ret != 0)
		return;
	CHECK((p->flags & (X2B_HP_DONE | X2B_HP_HOST)) == (X2B_HP_DONE | X2B_HP_HOST),
	      "accepted, flags %#x", p->flags);
	CHECK(!(p->flags & (X2B_HP_BAD | X2B_HP_OVERFLOW | X2B_HP_REFUSE)), "accepted, flags %#x",
	      p->flags);
	CHECK(p->method_off == 0 && p->method_len > 0, "method [%u, +%u)", p->method_off,
	      p->method_len);
	CHECK(p->target_len > 0 && p->target_off + p->target_len <= len, "target [%u, +%u) of %u",
	      p->target_off, p->target_len, len);
	CHECK(p->path_off + p->path_len <= p->target_off + p->target_len, "path past the target");
	CHECK(!p->path_len || p->path_off >= p->target_off, "path before the target");
	CHECK(p->pathonly_len <= p->path_len, "pathonly %u > path %u", p->pathonly_len,
	      p->path_len);
	CHECK(!p->query_len || (p->query_off >= p->path_off && p->query_off + p->query_len <= len),
	      "query [%u, +%u)", p->query_off, p->query_len);
	CHECK(p->auth_len < X2B_HOST_MAX, "auth_len %u", p->auth_len);
}

/* The Host lines of an origin-form head joined with ',', or an absolute form's authority. */
static size_t ref_authority(const unsigned char *h, const struct ref_head *r, bool absolute,
			    unsigned char *out)
{
	size_t n = 0;

	if (absolute) {
		const unsigned char *t = h + r->target_off;
		size_t tl = r->target_len, a = 0, e, at;

		while (a + 2 < tl && !(t[a] == ':' && t[a + 1] == '/' && t[a + 2] == '/'))
			a++;
		a += 3;
		for (e = a; e < tl && t[e] != '/' && t[e] != '?'; e++)
			;
		for (at = e; at > a && t[at - 1] != '@'; at--)
			;
		memcpy(out, t + at, e - at);
		return e - at;
	}
	for (size_t k = 0; k < r->nhdr; k++) {
		const struct ref_hdr *d = &r->hdr[k];

		if (!span_eq_ci(h + d->name_off, d->name_len, "host"))
			continue;
		for (size_t j = 0; j < d->value_len; j++)
			CHECK(is_auth_char(h[d->value_off + j]), "accepted a Host byte %#x",
			      h[d->value_off + j]);
		/* Envoy's HeaderMapImpl::appendToHeader: an empty value adds nothing, ',' only after a value */
		if (!d->value_len)
			continue;
		if (n)
			out[n++] = ',';
		memcpy(out + n, h + d->value_off, d->value_len);
		n += d->value_len;
	}
	return n;
}

static void check_reference(const struct x2b_req *req, const struct x2b_hparse *p)
{
	const unsigned char *h = (const unsigned char *)req->head;
	static struct ref_head r;
	static unsigned char auth[X2B_HEAD_MAX * 2];
	const struct ref_hdr *te = NULL;
	size_t cl = 0, qmark, alen;
	bool known = false, absolute = p->flags & X2B_HP_ABS;

	CHECK(ref_tokenize(h, req->len, &r), "accepted a head the reference cannot tokenize");
	CHECK(p->method_len == r.method_len, "method length %u, reference %zu", p->method_len,
	      r.method_len);
	for (size_t k = 0; k < sizeof(known_methods) / sizeof(known_methods[0]); k++)
		known = known || (strlen(known_methods[k]) == r.method_len &&
				  !memcmp(h, known_methods[k], r.method_len));
	CHECK(known, "accepted the method '%.*s'", (int)r.method_len, h);
	CHECK(p->target_off == r.target_off && p->target_len == r.target_len,
	      "target [%u, +%u), reference [%zu, +%zu)", p->target_off, p->target_len, r.target_off,
	      r.target_len);
	for (size_t k = 0; k < r.target_len; k++)
		CHECK(h[r.target_off + k] > ' ' && h[r.target_off + k] < 0x7f &&
			      h[r.target_off + k] != '#',
		      "accepted a target byte %#x", h[r.target_off + k]);
	CHECK(r.version_len == 8 && !memcmp(h + r.version_off, "HTTP/1.1", 8),
	      "accepted the version '%.*s'", (int)r.version_len, h + r.version_off);
	CHECK(r.nhdr <= X2B_HTTP_MAX_HDRS, "accepted %zu header lines (index holds %d)", r.nhdr,
	      X2B_HTTP_MAX_HDRS);
	CHECK(p->nhdr == r.nhdr, "%u header lines, reference %zu", p->nhdr, r.nhdr);
	for (size_t k = 0; k < r.nhdr; k++) {
		const struct ref_hdr *d = &r.hdr[k];

		CHECK(d->name_len > 0, "accepted an empty header name (line %zu)", k);
		for (size_t j = 0; j < d->name_len; j++)
			CHECK(is_tchar(h[d->name_off + j]), "accepted a header name byte %#x",
			      h[d->name_off + j]);
		for (size_t j = 0; j < d->value_len; j++)
			CHECK(h[d->value_off + j] >= ' ' || h[d->value_off + j] == '\t',
			      "accepted a value byte %#x", h[d->value_off + j]);
		CHECK(p->hdr[k].hash == fnv_lower(h + d->name_off, d->name_len),
		      "header %zu: name hash", k);
		CHECK(p->hdr[k].len == d->value_len &&
			      (!d->value_len || p->hdr[k].off == d->value_off),
		      "header %zu: value [%u, +%u), reference [%zu, +%zu)", k, p->hdr[k].off,
		      p->hdr[k].len, d->value_off, d->value_len);
		if (span_eq_ci(h + d->name_off, d->name_len, "content-length")) {
			CHECK(d->value_len > 0, "accepted an empty content-length");
			for (size_t j = 0; j < d->value_len; j++)
				CHECK(h[d->value_off + j] >= '0' && h[d->value_off + j] <= '9',
				      "accepted content-length byte %#x", h[d->value_off + j]);
			cl++;
		}
		if (span_eq_ci(h + d->name_off, d->name_len, "transfer-encoding"))
			te = d;
	}
	CHECK(cl <= 1, "accepted %zu content-length lines", cl);
	CHECK(!te || (!cl && span_eq_ci(h + te->value_off, te->value_len, "chunked")),
	      "accepted transfer-encoding '%.*s' (content-length lines: %zu)",
	      te ? (int)te->value_len : 0, te ? h + te->value_off : h, cl);
	CHECK(!span_eq_ci(h, r.method_len, "connect"), "accepted a CONNECT");
	/* the authority */
	alen = ref_authority(h, &r, absolute, auth);
	CHECK(alen > 0 || !absolute, "accepted an empty absolute-form authority");
	CHECK(p->auth_len == alen && !memcmp(p->auth, auth, alen),
	      "authority '%.*s', reference '%.*s'", (int)p->auth_len, p->auth, (int)alen, auth);
	/* :path and its query */
	if (absolute) {
		CHECK(!p->path_len || h[p->path_off] == '/',
		      "absolute form: path does not start with '/'");
	} else {
		CHECK(h[r.target_off] == '/', "accepted an origin form not starting with '/'");
		CHECK(p->path_off == r.target_off && p->path_len == r.target_len,
		      "path is not the target");
	}
	for (qmark = 0; qmark < p->path_len && h[p->path_off + qmark] != '?'; qmark++)
		;
	CHECK(p->pathonly_len == qmark, "path up to '?' %u, reference %zu", p->pathonly_len, qmark);
	if (qmark < p->path_len)
		CHECK(p->query_off == p->path_off + qmark + 1 &&
			      p->query_off + p->query_len == p->path_off + p->path_len,
		      "query [%u, +%u)", p->query_off, p->query_len);
	else
		CHECK(!p->query_len, "a query without '?'");
}

/* The index must not depend on what the scratch held before (a per-CPU map keeps the last one). */
static void check_same_index(const struct x2b_hparse *a, const struct x2b_hparse *b, int ret)
{
	CHECK(a->flags == b->flags, "flags %#x vs %#x over a used scratch", a->flags, b->flags);
	if (ret == -2)
		CHECK(a->status == b->status, "status %u vs %u over a used scratch", a->status,
		      b->status);
	if (ret != 0)
		return;
	CHECK(a->nhdr == b->nhdr, "%u vs %u header lines over a used scratch", a->nhdr, b->nhdr);
	for (__u32 k = 0; k < a->nhdr; k++) /* not pad: never written */
		CHECK(a->hdr[k].hash == b->hdr[k].hash && a->hdr[k].off == b->hdr[k].off &&
			      a->hdr[k].len == b->hdr[k].len,
		      "header %u differs over a used scratch", k);
	CHECK(a->method_len == b->method_len && a->target_off == b->target_off &&
		      a->target_len == b->target_len && a->path_off == b->path_off &&
		      a->path_len == b->path_len && a->pathonly_len == b->pathonly_len &&
		      a->query_off == b->query_off && a->query_len == b->query_len &&
		      a->scheme_off == b->scheme_off && a->scheme_len == b->scheme_len,
	      "request line index differs over a used scratch");
	CHECK(a->auth_len == b->auth_len && !memcmp(a->auth, b->auth, a->auth_len),
	      "authority differs over a used scratch");
}

static void check_decide(struct x2b_req *req, __u32 table, int parsed, __u32 status)
{
	__u32 zero = 0, cluster = x2b_http_decide(req, table);
	const struct x2b_hresult *res = bpf_map_lookup_elem(&x2b_hres, &zero);

	CHECK(res->kind <= X2B_HK_BAD_REQUEST, "table %u: result kind %u", table, res->kind);
	CHECK(cluster == (res->kind == X2B_HK_CLUSTER ? res->cluster : X2B_NO_ACTION),
	      "table %u: returned %#x for kind %u, cluster %#x", table, cluster, res->kind,
	      res->cluster);
	if (parsed == -2)
		CHECK(res->kind == X2B_HK_BAD_REQUEST && res->cluster == status,
		      "table %u: head refused with %u gave kind %u (%u)", table, status, res->kind,
		      res->cluster);
	else if (parsed == -1)
		CHECK(res->kind == X2B_HK_ERROR, "table %u: unusable head gave kind %u", table,
		      res->kind);
	else if (table == 0)
		/* no path option: only the parse refuses */
		CHECK(res->kind != X2B_HK_BAD_REQUEST, "table 0: accepted head gave kind %u",
		      res->kind);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	__u32 zero = 0;
	struct x2b_req *req;
	struct x2b_hparse *p;
	int ret, again;

	if (!ready) {
		setup();
		ready = true;
	}
	req = bpf_map_lookup_elem(&x2b_hreq, &zero);
	p = bpf_map_lookup_elem(&x2b_hscr, &zero);
	req->flags = size > X2B_HEAD_MAX ? X2B_REQ_TRUNCATED : 0;
	req->len = size > X2B_HEAD_MAX ? X2B_HEAD_MAX : size;
	memcpy(req->head, data, req->len);
	ASAN_POISON_MEMORY_REGION(req->head + req->len, X2B_HEAD_MAX - req->len);
	x2b_user_prandom = 0;

	memset(p, 0, sizeof(*p));
	ret = x2b_http_parse(req, p);
	check_bounds(req, p, ret);
	if (ret == 0)
		check_reference(req, p);
	scratch_copy = *p;
	memset(p, 0xa5, sizeof(*p));
	again = x2b_http_parse(req, p);
	CHECK(again == ret, "parse returned %d, then %d over a used scratch", ret, again);
	check_same_index(&scratch_copy, p, ret);

	check_decide(req, 0, ret, scratch_copy.status);
	check_decide(req, 1, ret, scratch_copy.status);
	ASAN_UNPOISON_MEMORY_REGION(req->head + req->len, X2B_HEAD_MAX - req->len);
	return 0;
}
