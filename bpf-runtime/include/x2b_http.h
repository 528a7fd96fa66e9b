/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * HTTP routing over a request head (struct x2b_req): parse the head once into
 * a per-CPU index, pick the virtual host, evaluate route conditions, resolve
 * the route's action to a cluster id. Envoy's semantics throughout
 * (docs/semantics.md); the tables come from the generated x2b_routes.h, which
 * includes this file after its map definitions:
 *   x2b_hreq, x2b_hscr, x2b_htab, x2b_hdom, x2b_hvh, x2b_hrt, x2b_hcond,
 *   x2b_hwcl, x2b_hcn, x2b_dfa, x2b_dcls, x2b_dtr, x2b_hres (+ x2b_htst when
 *   X2B_TEST_RANDOM is defined).
 *
 * Verifier cost does not grow with the configuration: every loop over bytes
 * or routes runs under bpf_loop(), and the matchers are global functions, so
 * each is verified once per program. Nothing large lives on the stack.
 */
#ifndef X2B_HTTP_H
#define X2B_HTTP_H

#define X2B_HTTP_MAX_HDRS 48  /* header lines indexed per request */
#define X2B_HOST_MAX 256      /* longest authority / vhost header value routed */
#define X2B_HTTP_MAX_CONDS 32 /* conditions per route (the planner checks) */
#define X2B_HTTP_MAX_WEIGHTED 256

/* Test builds: the runtime key id that means "no router-check runtime, defaults". */
#define X2B_RUNTIME_DEFAULTS 0xffffffffu

/* Returned by the generated x2b_http_scan_inline for virtual hosts kept in maps. */
#define X2B_HTTP_SCAN_MAPS 0xfffffffeu

/* FNV-1a 64, over lowercased header names, hosts, cluster names. */
#define X2B_FNV_INIT 0xcbf29ce484222325ULL
#define X2B_FNV_PRIME 0x100000001b3ULL

/* Name hashes of the headers routing itself looks at (checked by HTTPRoutingTests). */
#define X2B_H_HOST 0x4077f8cc7eaf4d6fULL     /* "host" */
#define X2B_H_XFP 0xf86faea5da3d2459ULL      /* "x-forwarded-proto" */
#define X2B_H_INTERNAL 0x6ee6dd03029494e5ULL /* "x-envoy-internal" */

static __always_inline __u64 x2b_fnv(__u64 h, __u8 c)
{
	return (h ^ c) * X2B_FNV_PRIME;
}

static __always_inline __u8 x2b_lower(__u8 c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/*
 * Byte loops run under bpf_loop() (verified once, whatever the length), one
 * call per X2B_CHUNK bytes: a plain loop inside the callback is several times
 * cheaper per byte than a callback per byte (~7 ns a call here), while the
 * verifier's work grows with the chunk (measured: 8 bytes ~80k insns, 32 bytes
 * ~580k for the whole matcher). The head parser, whose state lives in map
 * memory, takes X2B_PARSE_CHUNK.
 */
#define X2B_CHUNK 8
#define X2B_PARSE_CHUNK 32
#define x2b_chunks(n) (((n) + X2B_CHUNK - 1) / X2B_CHUNK)

/* A bpf_loop callback giving `step` the next N indexes below `limit`. */
#define X2B_CHUNKED(name, step, type, limit) X2B_CHUNKED_N(name, step, type, limit, X2B_CHUNK)
#define X2B_CHUNKED_N(name, step, type, limit, N)			\
	static long name(__u64 chunk, void *data)			\
	{								\
		type *c = data;						\
		__u32 base = (__u32)chunk * (N);			\
									\
		for (__u32 k = 0; k < (N); k++) {			\
			if (base + k >= (limit) || step(base + k, c))	\
				return 1;				\
		}							\
		return 0;						\
	}

/* Parse state and index of the current request (per-CPU scratch, x2b_hscr). */
struct x2b_hhdr {
	__u64 hash; /* FNV-1a 64 of the lowercased name */
	__u16 off;  /* value, without surrounding whitespace */
	__u16 len;
	__u32 pad;
};

#define X2B_HP_DONE 1     /* the blank line ending the head was reached */
#define X2B_HP_HOST 2     /* an authority is known */
#define X2B_HP_BAD 4      /* malformed head */
#define X2B_HP_OVERFLOW 8 /* more header lines than X2B_HTTP_MAX_HDRS */
#define X2B_HP_ABS 16     /* absolute-form request target */
#define X2B_HP_REFUSE 32  /* Envoy's HTTP/1 codec refuses the head (status in `status`) */

/*
 * Request-head validation, as Envoy's HTTP/1 codec does it (HeadValidation.swift is the
 * reference): character classes as bitmaps of the bytes 0-63 (LO) and 64-127 (HI).
 */
#define X2B_TCHAR_LO 0x03ff6cfa00000000ULL    /* header names: RFC 9110 tchar */
#define X2B_TCHAR_HI 0x57ffffffc7fffffeULL
#define X2B_AUTH_LO 0x2fff7ff200000000ULL     /* Host: unreserved, sub-delims, : @ [ ] % */
#define X2B_AUTH_HI 0x47fffffeafffffffULL
#define X2B_USERINFO_LO 0x2fff7ff200000000ULL /* absolute form: userinfo */
#define X2B_USERINFO_HI 0x47fffffe87fffffeULL
#define X2B_URLHOST_LO 0x03ff600000000000ULL  /* absolute form: host (alnum . -) */
#define X2B_URLHOST_HI 0x07fffffe07fffffeULL
#define X2B_DIGIT_LO 0x03ff000000000000ULL
#define X2B_PESC_LO 0x5000000400000000ULL     /* normalize_path escapes or rewrites: " < > backslash ^ ` { | } */
#define X2B_PESC_HI 0x3800000150000000ULL
#define X2B_PUNESC_LO 0x03ff600000000001ULL   /* %XX it decodes (alnum - . _ ~) or refuses (%00) */
#define X2B_PUNESC_HI 0x47fffffe87fffffeULL
#define X2B_DIGIT_HI 0ULL
#define X2B_MAX_HEADER_LINES 100 /* Envoy's max_request_headers_count: 431 above */
#define X2B_H_CONTENT_LENGTH 0x2d69a1e6ee916e7dULL /* "content-length" */
#define X2B_H_TRANSFER_ENCODING 0x8640bd735e9d802cULL /* "transfer-encoding" */
#define X2B_M_OPTIONS 0x87cc05b46a17cf65ULL
#define X2B_M_CONNECT 0xc09b4a14fc824b19ULL

static __always_inline int x2b_in_class(__u8 c, __u64 lo, __u64 hi)
{
	if (c < 64)
		return (lo >> c) & 1;
	if (c < 128)
		return (hi >> (c - 64)) & 1;
	return 0;
}

struct x2b_hparse {
	__u32 flags;
	__u32 nhdr;
	__u16 method_off, method_len;
	__u16 target_off, target_len;
	__u16 path_off, path_len; /* :path */
	__u16 pathonly_len;       /* up to the first '?' or '#' */
	__u16 query_off;          /* after the first '?' */
	__u16 query_len;          /* to the end of :path */
	__u16 scheme_off;         /* absolute form only; else :scheme is "http" */
	__u16 scheme_len;
	__u16 auth_len;
	__u32 random;  /* the request's random value (runtime fractions, weights) */
	__u32 runtime; /* X2B_TEST_RANDOM: the active runtime key id */
	/* parser state */
	__u32 state;
	__u32 name_start;
	__u32 value_start;
	__u32 value_end;
	__u64 name_hash;
	struct x2b_hhdr hdr[X2B_HTTP_MAX_HDRS];
	char auth[X2B_HOST_MAX]; /* :authority, normalised per route table */
	char sel[X2B_HOST_MAX];  /* the host virtual hosts are selected by, lowercased */
	__u32 sel_len;
	/*
	 * State of the chunked loops that branch on what they saw so far: kept in
	 * map memory, which the verifier does not track value by value (on the
	 * stack, every combination would be a state of its own).
	 */
	__u32 t_colon, t_slash, t_at, t_query, t_fragment;    /* request target */
	__u32 q_start, q_eq, q_found, q_voff, q_vlen;         /* query parameters */
	__u32 a_phase, a_neg, a_digits;                       /* integers */
	__u64 q_h;
	__u64 a_mag;
	/* request-head validation */
	__u32 status;       /* Envoy's answer when X2B_HP_REFUSE */
	__u32 nlines;       /* header lines */
	__u64 method_hash;  /* FNV-1a of the method as sent */
	__u16 version_off, version_end;
	__u16 cl_count, te_idx; /* content-length lines; transfer-encoding line + 1 */
	__u16 cl_idx, pad16;    /* the first content-length line */
	__u32 t_pcolon;         /* absolute form: the last ':' of the authority */
};

_Static_assert(sizeof(struct x2b_hparse) == 1448, "x2b_hscr value size (HTTPEmitter.parseScratchSize)");

static __always_inline struct x2b_hparse *x2b_hparse(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&x2b_hscr, &zero);
}

/* The buffer the module (or the test harness) fills. */
static __always_inline struct x2b_req *x2b_http_req(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&x2b_hreq, &zero);
}

#ifdef X2B_TEST_RANDOM
/* Test builds: the harness sets the random value and the active runtime key (x2b_htst). */
static __always_inline void x2b_http_draw(struct x2b_hparse *p)
{
	__u32 zero = 0;
	struct x2b_htest *t = bpf_map_lookup_elem(&x2b_htst, &zero);

	p->random = t ? t->random : 0;
	p->runtime = t ? t->runtime : 0;
}
#else
/* One random value per request, used for every choice, as Envoy uses the stream's. */
static __always_inline void x2b_http_draw(struct x2b_hparse *p)
{
	p->random = bpf_get_prandom_u32();
	p->runtime = 0;
}
#endif

/* ---- Parsing the head ------------------------------------------------------ */

enum {
	X2B_PS_METHOD,
	X2B_PS_TARGET,
	X2B_PS_VERSION,
	X2B_PS_LF1,
	X2B_PS_LINE,
	X2B_PS_NAME,
	X2B_PS_OWS,
	X2B_PS_VALUE,
	X2B_PS_LF2,
	X2B_PS_LF_END,
};

struct x2b_pctx {
	struct x2b_req *req;
	struct x2b_hparse *p;
	__u32 err;
};

static __always_inline void x2b_add_header(struct x2b_hparse *p, __u32 off, __u32 len)
{
	__u32 n = p->nhdr;

	if (n >= X2B_HTTP_MAX_HDRS) {
		p->flags |= X2B_HP_OVERFLOW;
		return;
	}
	p->hdr[n].hash = p->name_hash;
	p->hdr[n].off = off;
	p->hdr[n].len = len;
	p->nhdr = n + 1;
}

/* One byte of the request line and header lines; 1 stops the loop. */
static __always_inline long x2b_parse_step(__u64 i, void *data)
{
	struct x2b_pctx *c = data;
	struct x2b_hparse *p = c->p;
	__u8 ch = c->req->head[i & (X2B_HEAD_MAX - 1)];

	switch (p->state) {
	case X2B_PS_METHOD:
		if (ch == ' ') {
			if (i == 0)
				goto refuse;
			p->method_len = i;
			p->target_off = i + 1;
			p->state = X2B_PS_TARGET;
		} else if (ch == '\r' || ch == '\n') {
			if (i == 0)
				goto bad; /* Envoy skips empty lines before the request line */
			goto refuse;
		} else {
			p->method_hash = x2b_fnv(p->method_hash, ch);
		}
		return 0;
	case X2B_PS_TARGET:
		if (ch == ' ') {
			p->target_len = i - p->target_off;
			if (!p->target_len)
				goto bad; /* several spaces: Envoy tolerates them */
			p->version_off = i + 1;
			p->version_end = i + 1;
			p->state = X2B_PS_VERSION;
		} else if (ch == '\r' || ch == '\n') {
			p->status = 426; /* no version: HTTP/0.9 */
			p->flags |= X2B_HP_REFUSE;
			return 1;
		} else if (ch <= ' ' || ch >= 0x7f || ch == '#') {
			goto refuse; /* control bytes, non-ASCII, a fragment */
		}
		return 0;
	case X2B_PS_VERSION:
		if (ch == '\r')
			p->state = X2B_PS_LF1;
		else if (ch == '\n')
			p->state = X2B_PS_LINE;
		else if (ch != ' ')
			p->version_end = i + 1;
		return 0;
	case X2B_PS_LF1:
	case X2B_PS_LF2:
		if (ch != '\n')
			goto bad;
		p->state = X2B_PS_LINE;
		return 0;
	case X2B_PS_LINE:
		if (ch == '\r') {
			p->state = X2B_PS_LF_END;
			return 0;
		}
		if (ch == '\n') {
			p->flags |= X2B_HP_DONE;
			return 1;
		}
		/* Folded lines (obs-fold): Envoy joins them, the kernel does not. */
		if (ch == ' ' || ch == '\t')
			goto bad;
		/* A name: tchar only (an empty one, a space, a separator: Envoy answers 400). */
		if (!x2b_in_class(ch, X2B_TCHAR_LO, X2B_TCHAR_HI))
			goto refuse;
		p->nlines++;
		p->name_hash = x2b_fnv(X2B_FNV_INIT, x2b_lower(ch));
		p->state = X2B_PS_NAME;
		return 0;
	case X2B_PS_NAME:
		if (ch == ':') {
			p->state = X2B_PS_OWS;
		} else if (!x2b_in_class(ch, X2B_TCHAR_LO, X2B_TCHAR_HI)) {
			goto refuse;
		} else {
			p->name_hash = x2b_fnv(p->name_hash, x2b_lower(ch));
		}
		return 0;
	case X2B_PS_OWS:
		if (ch == ' ' || ch == '\t')
			return 0;
		if (ch == '\r' || ch == '\n') {
			x2b_add_header(p, i, 0);
			p->state = ch == '\r' ? X2B_PS_LF2 : X2B_PS_LINE;
			return 0;
		}
		if (ch < ' ' || ch == 0x7f)
			goto refuse; /* control bytes in a value */
		p->value_start = i;
		p->value_end = i + 1;
		p->state = X2B_PS_VALUE;
		return 0;
	case X2B_PS_VALUE:
		if (ch == '\r' || ch == '\n') {
			x2b_add_header(p, p->value_start, p->value_end - p->value_start);
			p->state = ch == '\r' ? X2B_PS_LF2 : X2B_PS_LINE;
		} else if ((ch < ' ' && ch != '\t') || ch == 0x7f) {
			goto refuse;
		} else if (ch != ' ' && ch != '\t') {
			p->value_end = i + 1;
		}
		return 0;
	case X2B_PS_LF_END:
		if (ch != '\n')
			goto bad;
		p->flags |= X2B_HP_DONE;
		return 1;
	}
bad:
	p->flags |= X2B_HP_BAD;
	return 1;
refuse:
	p->status = 400;
	p->flags |= X2B_HP_REFUSE;
	return 1;
}

X2B_CHUNKED_N(x2b_parse_cb, x2b_parse_step, struct x2b_pctx, c->req->len, X2B_PARSE_CHUNK)

/* The request target: '?', '#', and the parts of an absolute form. */
struct x2b_tctx {
	struct x2b_req *req;
	struct x2b_hparse *p;
};

/* Offsets (0: none) of the first ':', '?', '#', an absolute form's path and userinfo. */
static __always_inline long x2b_target_step(__u64 i, void *data)
{
	struct x2b_tctx *c = data;
	struct x2b_hparse *p = c->p;
	__u32 off = p->target_off + (__u32)i;
	__u8 ch = c->req->head[off & (X2B_HEAD_MAX - 1)];

	if (!p->t_colon && ch == ':')
		p->t_colon = off;
	if (p->t_colon && !p->t_slash && off > p->t_colon + 2 && (ch == '/' || ch == '?' || ch == '#'))
		p->t_slash = off;
	if (p->t_colon && !p->t_slash && ch == '@')
		p->t_at = off;
	if (p->t_colon && !p->t_slash && off > p->t_colon + 2 && ch == ':')
		p->t_pcolon = off;
	if (!p->t_query && ch == '?')
		p->t_query = off;
	if (!p->t_fragment && ch == '#')
		p->t_fragment = off;
	return 0;
}

X2B_CHUNKED(x2b_target_cb, x2b_target_step, struct x2b_tctx, c->p->target_len)

static __always_inline __u8 x2b_head(const struct x2b_req *req, __u32 off)
{
	return req->head[off & (X2B_HEAD_MAX - 1)];
}

/* The authority: the Host header lines joined with ",", or an absolute form's. */
struct x2b_actx {
	struct x2b_req *req;
	struct x2b_hparse *p;
	__u32 src;
	__u32 n;
};

static __always_inline long x2b_copy_auth_step(__u64 i, void *data)
{
	struct x2b_actx *c = data;
	__u32 dst = c->p->auth_len;

	if (i >= c->n || dst >= X2B_HOST_MAX)
		return 1;
	c->p->auth[dst & (X2B_HOST_MAX - 1)] = x2b_head(c->req, c->src + (__u32)i);
	c->p->auth_len = dst + 1;
	return 0;
}

X2B_CHUNKED(x2b_copy_auth_cb, x2b_copy_auth_step, struct x2b_actx, c->n)

/* Appends head[off, off+len) to auth[]; -1 when the authority gets too long to route. */
static __always_inline int x2b_append_auth(struct x2b_req *req, struct x2b_hparse *p, __u32 off, __u32 len)
{
	struct x2b_actx c = { .req = req, .p = p, .src = off, .n = len };

	if (p->auth_len + len >= X2B_HOST_MAX)
		return -1;
	bpf_loop(x2b_chunks(len), x2b_copy_auth_cb, &c, 0);
	return 0;
}

/* Whether every byte of head[off, off+len) is in a character class (LO/HI bitmaps). */
struct x2b_cctx {
	struct x2b_req *req;
	__u64 lo, hi;
	__u32 off, n, bad;
};

static __always_inline long x2b_class_step(__u64 i, void *data)
{
	struct x2b_cctx *c = data;

	if (!x2b_in_class(x2b_head(c->req, c->off + (__u32)i), c->lo, c->hi)) {
		c->bad = 1;
		return 1;
	}
	return 0;
}

X2B_CHUNKED(x2b_class_cb, x2b_class_step, struct x2b_cctx, c->n)

static __always_inline int x2b_span_in(struct x2b_req *req, __u32 off, __u32 len, __u64 lo, __u64 hi)
{
	struct x2b_cctx c = { .req = req, .lo = lo, .hi = hi, .off = off, .n = len };

	bpf_loop(x2b_chunks(len), x2b_class_cb, &c, 0);
	return !c.bad;
}

/* Body framing headers, as the codec checks them. */
static long x2b_framing_cb(__u64 i, void *data)
{
	struct x2b_pctx *c = data;
	struct x2b_hparse *p = c->p;

	if (i >= X2B_HTTP_MAX_HDRS || i >= p->nhdr)
		return 1;
	if (p->hdr[i].hash == X2B_H_CONTENT_LENGTH) {
		if (!p->cl_count)
			p->cl_idx = i;
		p->cl_count++;
	}
	else if (p->hdr[i].hash == X2B_H_TRANSFER_ENCODING)
		p->te_idx = i + 1;
	return 0;
}

/* The value of header line i is "chunked", ASCII case-insensitively. */
static __always_inline int x2b_is_chunked(struct x2b_req *req, struct x2b_hparse *p, __u32 i)
{
	const char *w = "chunked";
	__u32 off;

	if (i >= X2B_HTTP_MAX_HDRS || p->hdr[i].len != 7)
		return 0;
	off = p->hdr[i].off;
	for (int k = 0; k < 7; k++)
		if (x2b_lower(x2b_head(req, off + k)) != w[k])
			return 0;
	return 1;
}

/* Host lines, joined with "," into auth[] as Envoy's inline :authority joins them. */
static long x2b_host_cb(__u64 i, void *data)
{
	struct x2b_pctx *c = data;
	struct x2b_hparse *p = c->p;

	if (i >= X2B_HTTP_MAX_HDRS || i >= p->nhdr)
		return 1;
	if (p->hdr[i].hash != X2B_H_HOST)
		return 0;
	if (!x2b_span_in(c->req, p->hdr[i].off, p->hdr[i].len, X2B_AUTH_LO, X2B_AUTH_HI)) {
		c->err = 2; /* Envoy answers 400 */
		return 1;
	}
	p->flags |= X2B_HP_HOST;
	/*
	 * Envoy's HeaderMapImpl::appendToHeader: an empty line adds nothing, and the ','
	 * goes only after a value ("Host:" then "Host: b" is "b", not ",b").
	 */
	if (!p->hdr[i].len)
		return 0;
	if (p->auth_len) {
		if (p->auth_len >= X2B_HOST_MAX - 1) {
			c->err = 1;
			return 1;
		}
		p->auth[p->auth_len & (X2B_HOST_MAX - 1)] = ',';
		p->auth_len++;
	}
	if (x2b_append_auth(c->req, p, p->hdr[i].off, p->hdr[i].len) < 0) {
		c->err = 1;
		return 1;
	}
	return 0;
}

static __always_inline int x2b_refuse(struct x2b_hparse *p, __u32 status)
{
	p->status = status;
	p->flags |= X2B_HP_REFUSE;
	return -2;
}

/* Whether the method is one Envoy's HTTP/1 codec knows (HeadValidation.methods). */
static __always_inline int x2b_known_method(__u64 h)
{
	switch (h) {
	case 0xfa32bd19a07639e3ULL: /* ACL */
	case 0xf3b50da734cad5eeULL: /* BIND */
	case 0x5dc4af3b0b8dacd9ULL: /* CHECKOUT */
	case 0xc09b4a14fc824b19ULL: /* CONNECT */
	case 0x2011c49c7ce10124ULL: /* COPY */
	case 0x5cd15819e278608aULL: /* DELETE */
	case 0xea7e631998067e17ULL: /* GET */
	case 0x4b9253d8ff1ee183ULL: /* HEAD */
	case 0x52949cb51d39ec09ULL: /* LINK */
	case 0x659df6b5287e5da2ULL: /* LOCK */
	case 0xa4b9973638c506c7ULL: /* MERGE */
	case 0x9d732bdbdd441658ULL: /* MKACTIVITY */
	case 0x6560cd79e7981d13ULL: /* MKCALENDAR */
	case 0xf28c42e29960deddULL: /* MKCOL */
	case 0x4e1258af637b5d34ULL: /* MOVE */
	case 0x4c7a7e41f2ea1b44ULL: /* MSEARCH */
	case 0x126c1cf7c364e87cULL: /* NOTIFY */
	case 0x87cc05b46a17cf65ULL: /* OPTIONS */
	case 0xbebf4d0191bc5a49ULL: /* PATCH */
	case 0xa048aa190bf19f87ULL: /* POST */
	case 0x3fd8d28ba4156f73ULL: /* PROPFIND */
	case 0x22737d0ea7244536ULL: /* PROPPATCH */
	case 0x60f70667f44235c4ULL: /* PURGE */
	case 0x8d8fb019f3f63eceULL: /* PUT */
	case 0x25022111c6aa5827ULL: /* REBIND */
	case 0x1b00ba7bd5b9c68bULL: /* REPORT */
	case 0xddfcf9978e525329ULL: /* SEARCH */
	case 0x8a9306c4938a3e38ULL: /* SOURCE */
	case 0xdcc323aac4f6ce23ULL: /* SUBSCRIBE */
	case 0x8993c501d2ecea4eULL: /* TRACE */
	case 0xac303a7443207519ULL: /* UNBIND */
	case 0xa3d5a76172b2ad32ULL: /* UNLINK */
	case 0xb4ef59617c5271b5ULL: /* UNLOCK */
	case 0xd79f6588bf0434d6ULL: /* UNSUBSCRIBE */
		return 1;
	}
	return 0;
}

/* The version: 0 for HTTP/1.1, else Envoy's answer (426 for other digits, 400). */
static __always_inline __u32 x2b_version_status(struct x2b_req *req, struct x2b_hparse *p)
{
	__u32 o = p->version_off;
	__u8 d1, d2;

	if (p->version_end - o != 8 || x2b_head(req, o) != 'H' || x2b_head(req, o + 1) != 'T' ||
	    x2b_head(req, o + 2) != 'T' || x2b_head(req, o + 3) != 'P' || x2b_head(req, o + 4) != '/' ||
	    x2b_head(req, o + 6) != '.')
		return 400;
	d1 = x2b_head(req, o + 5);
	d2 = x2b_head(req, o + 7);
	if (d1 < '0' || d1 > '9' || d2 < '0' || d2 > '9')
		return 400;
	return d1 == '1' && d2 == '1' ? 0 : 426;
}

/*
 * Index the head: request line, header lines, :path's query, the authority.
 * Returns 0; -2 when Envoy's codec refuses the head (p->status: 400, 426, 431,
 * 501; X2B_HK_BAD_REQUEST); -1 when the head cannot be routed (truncated, too
 * many headers, an authority longer than X2B_HOST_MAX, a form the kernel does
 * not parse): Envoy would see what the kernel did not.
 */
__noinline int x2b_http_parse(struct x2b_req *req, struct x2b_hparse *p)
{
	struct x2b_pctx pc = { .req = req, .p = p };
	struct x2b_tctx tc = {};
	__u32 colon, slash, query, fragment;
	__u32 len, end, t0, status;

	if (!req || !p)
		return -1;
	len = req->len;
	if (len > X2B_HEAD_MAX)
		return -1;
	p->flags = 0;
	p->nhdr = 0;
	p->state = X2B_PS_METHOD;
	p->method_off = 0;
	p->method_len = 0;
	p->target_off = 0;
	p->target_len = 0;
	p->auth_len = 0;
	p->scheme_off = 0;
	p->scheme_len = 0;
	p->status = 0;
	p->nlines = 0;
	p->method_hash = X2B_FNV_INIT;
	p->version_off = 0;
	p->version_end = 0;
	p->cl_count = 0;
	p->te_idx = 0;
	p->cl_idx = 0;
	bpf_loop((len + X2B_PARSE_CHUNK - 1) / X2B_PARSE_CHUNK, x2b_parse_cb, &pc, 0);
	/* A head may also stop right after its last header line. */
	if (!(p->flags & X2B_HP_DONE) && p->state == X2B_PS_LINE && !(req->flags & X2B_REQ_TRUNCATED))
		p->flags |= X2B_HP_DONE;
	if (p->flags & X2B_HP_REFUSE)
		return -2;
	if (p->nlines > X2B_MAX_HEADER_LINES)
		return x2b_refuse(p, 431);
	if ((p->flags & (X2B_HP_BAD | X2B_HP_OVERFLOW)) || !(p->flags & X2B_HP_DONE))
		return -1;
	/* Request line: method, version. */
	if (!x2b_known_method(p->method_hash))
		return x2b_refuse(p, 400);
	if ((status = x2b_version_status(req, p)))
		return x2b_refuse(p, status);
	/* Body framing: one content-length of digits; transfer-encoding chunked only, alone. */
	bpf_loop(X2B_HTTP_MAX_HDRS, x2b_framing_cb, &pc, 0);
	if (p->te_idx && !x2b_is_chunked(req, p, p->te_idx - 1))
		return x2b_refuse(p, 501);
	if (p->cl_count > 1 || (p->cl_count && p->te_idx))
		return x2b_refuse(p, 400);
	if (p->cl_count) {
		__u32 first = p->cl_idx;

		if (first >= X2B_HTTP_MAX_HDRS || !p->hdr[first].len ||
		    !x2b_span_in(req, p->hdr[first].off, p->hdr[first].len, X2B_DIGIT_LO, X2B_DIGIT_HI))
			return x2b_refuse(p, 400);
	}
	if (p->method_hash == X2B_M_CONNECT)
		return x2b_refuse(p, x2b_head(req, p->target_off) == '/' ? 400 : 404);

	tc.req = req;
	tc.p = p;
	p->t_colon = p->t_slash = p->t_at = p->t_query = p->t_fragment = p->t_pcolon = 0;
	bpf_loop(x2b_chunks(p->target_len), x2b_target_cb, &tc, 0);
	colon = p->t_colon;
	slash = p->t_slash;
	query = p->t_query;
	fragment = p->t_fragment;
	t0 = p->target_off;
	end = t0 + p->target_len;
	if (x2b_head(req, t0) == '/') {
		p->path_off = t0;
		p->path_len = p->target_len;
	} else if (x2b_head(req, t0) == '*') {
		/* asterisk form: OPTIONS only; the connection manager routes no path without '/' */
		return x2b_refuse(p, p->method_hash == X2B_M_OPTIONS ? 404 : 400);
	} else if (colon && colon + 2 < end && x2b_head(req, colon + 1) == '/' && x2b_head(req, colon + 2) == '/') {
		/* scheme://[userinfo@]host[:port][/path]: the target's authority replaces Host. */
		__u32 auth = colon + 3, auth_end = slash ? slash : end, hend, ulen = 0;

		p->scheme_off = t0;
		p->scheme_len = colon - t0;
		/* http or https, any case */
		if (!(p->scheme_len == 4 || p->scheme_len == 5) || x2b_lower(x2b_head(req, t0)) != 'h' ||
		    x2b_lower(x2b_head(req, t0 + 1)) != 't' || x2b_lower(x2b_head(req, t0 + 2)) != 't' ||
		    x2b_lower(x2b_head(req, t0 + 3)) != 'p' ||
		    (p->scheme_len == 5 && x2b_lower(x2b_head(req, t0 + 4)) != 's'))
			return x2b_refuse(p, 400);
		/* the authority ends at '/' or '?' ('#' was refused above) */
		if (slash && x2b_head(req, slash) == '#')
			return x2b_refuse(p, 400);
		if (p->t_at) {
			/* userinfo: the bytes before the last '@'; another '@' in it is refused */
			ulen = p->t_at - auth;
			if (!x2b_span_in(req, auth, ulen, X2B_USERINFO_LO, X2B_USERINFO_HI))
				return x2b_refuse(p, 400);
			auth = p->t_at + 1;
		}
		if (auth >= auth_end)
			return x2b_refuse(p, 400);
		hend = auth_end;
		if (x2b_head(req, auth) == '[') {
			return -1; /* IPv6 literals in absolute form: not parsed by the kernel */
		} else {
			/* host: alnum . -; then an optional :port of 1-5 digits */
			struct x2b_cctx cc = { .req = req, .lo = X2B_URLHOST_LO, .hi = X2B_URLHOST_HI,
					       .off = auth, .n = auth_end - auth };

			bpf_loop(x2b_chunks(auth_end - auth), x2b_class_cb, &cc, 0);
			if (cc.bad) {
				/* the first byte not a host byte must be the port's ':' */
				hend = p->t_pcolon;
				if (hend <= auth || hend + 1 >= auth_end || auth_end - hend - 1 > 5 ||
				    !x2b_span_in(req, auth, hend - auth, X2B_URLHOST_LO, X2B_URLHOST_HI) ||
				    !x2b_span_in(req, hend + 1, auth_end - hend - 1, X2B_DIGIT_LO, X2B_DIGIT_HI))
					return x2b_refuse(p, 400);
			}
		}
		p->flags |= X2B_HP_ABS | X2B_HP_HOST;
		if (x2b_append_auth(req, p, auth, auth_end - auth) < 0)
			return -1;
		if (!slash) {
			p->path_off = 0; /* no path: :path is "/" */
			p->path_len = 0;
		} else if (x2b_head(req, slash) == '/') {
			p->path_off = slash;
			p->path_len = end - slash;
		} else {
			return x2b_refuse(p, 404); /* :path "?query": not routed (Envoy's "absolute_path") */
		}
	} else {
		return x2b_refuse(p, 400);
	}
	p->pathonly_len = p->path_len;
	p->query_off = 0;
	p->query_len = 0;
	if (p->path_len) {
		if (query >= p->path_off && query && (!fragment || query < fragment))
			p->pathonly_len = query - p->path_off;
		else if (fragment >= p->path_off && fragment)
			p->pathonly_len = fragment - p->path_off;
		if (query >= p->path_off && query) {
			p->query_off = query + 1;
			p->query_len = end - p->query_off;
		}
	}
	if (p->flags & X2B_HP_ABS)
		return 0;
	bpf_loop(X2B_HTTP_MAX_HDRS, x2b_host_cb, &pc, 0);
	if (pc.err == 2)
		return x2b_refuse(p, 400); /* a Host with a byte an authority cannot have */
	if (pc.err)
		return -1;
	if (!(p->flags & X2B_HP_HOST))
		return x2b_refuse(p, 400); /* HTTP/1.1 without Host */
	return 0;
}

/* ---- Byte automata ----------------------------------------------------------- */

struct x2b_drun {
	struct x2b_req *req;
	struct x2b_hparse *p;
	const struct x2b_dcls *cm;
	__u32 trans;
	__u32 nclass;
	__u32 state; /* state | X2B_DS_* flags */
	__u32 off;
	__u32 len;
	__u32 pad;
};

static __always_inline int x2b_dfa_done(__u32 st)
{
	return !(st & X2B_DS_STATE) || (st & X2B_DS_SURE);
}

static __always_inline void x2b_dfa_step(struct x2b_drun *r, __u8 b)
{
	__u32 key = r->trans + (r->state & X2B_DS_STATE) * r->nclass + r->cm->cls[b];
	__u32 *e = bpf_map_lookup_elem(&x2b_dtr, &key);

	r->state = e ? *e : 0;
}

static __always_inline long x2b_dfa_head_step(__u64 i, void *data)
{
	struct x2b_drun *r = data;

	if (x2b_dfa_done(r->state))
		return 1;
	x2b_dfa_step(r, x2b_head(r->req, r->off + (__u32)i));
	return 0;
}

X2B_CHUNKED(x2b_dfa_head_cb, x2b_dfa_head_step, struct x2b_drun, c->len)

static __always_inline long x2b_dfa_auth_step(__u64 i, void *data)
{
	struct x2b_drun *r = data;

	if (x2b_dfa_done(r->state))
		return 1;
	x2b_dfa_step(r, r->p->auth[(r->off + (__u32)i) & (X2B_HOST_MAX - 1)]);
	return 0;
}

X2B_CHUNKED(x2b_dfa_auth_cb, x2b_dfa_auth_step, struct x2b_drun, c->len)

static __always_inline int x2b_dfa_start(struct x2b_drun *r, __u32 dfa)
{
	const struct x2b_dfa *d = bpf_map_lookup_elem(&x2b_dfa, &dfa);

	if (!d)
		return -1;
	r->cm = bpf_map_lookup_elem(&x2b_dcls, &d->cmap);
	if (!r->cm)
		return -1;
	r->trans = d->trans;
	r->nclass = d->nclass;
	r->state = 1 | ((__u32)d->start << 16);
	return 0;
}

static __always_inline int x2b_dfa_accepts(const struct x2b_drun *r)
{
	return (r->state & X2B_DS_STATE) && (r->state & X2B_DS_ACCEPT);
}

static __always_inline int x2b_dfa_ok(__u32 st)
{
	return (st & X2B_DS_STATE) && (st & X2B_DS_ACCEPT);
}

/* x2b_dfa_feed's `arg`: the span (offset, length), where it is, how to begin. */
#define x2b_span(off, len) ((((__u64)(off) & 0xffff) << 16) | ((len) & 0xffff))
#define X2B_FEED_AUTH (1ULL << 32)  /* the span is in auth[] (else in the head) */
#define X2B_FEED_SEP (1ULL << 33)   /* a ',' first: the next value of a joined header */
#define X2B_FEED_FRESH (1ULL << 34) /* start the automaton (ignore `state`) */

/*
 * Feeds a span to automaton `dfa`, from `state` (a previous return value, or
 * X2B_FEED_FRESH); returns the new state and its X2B_DS_* flags. A global
 * function: its chunked loop is verified once, not at every matcher.
 */
__noinline __u32 x2b_dfa_feed(struct x2b_req *req, struct x2b_hparse *p, __u32 dfa, __u32 state, __u64 arg)
{
	struct x2b_drun r = { .req = req, .p = p };

	if (!req || !p || x2b_dfa_start(&r, dfa) < 0)
		return 0;
	if (!(arg & X2B_FEED_FRESH))
		r.state = state;
	if ((arg & X2B_FEED_SEP) && !x2b_dfa_done(r.state))
		x2b_dfa_step(&r, ',');
	r.off = (arg >> 16) & 0xffff;
	r.len = arg & 0xffff;
	if (arg & X2B_FEED_AUTH)
		bpf_loop(x2b_chunks(r.len), x2b_dfa_auth_cb, &r, 0);
	else
		bpf_loop(x2b_chunks(r.len), x2b_dfa_head_cb, &r, 0);
	return r.state;
}

/* ---- Conditions -------------------------------------------------------------- */

/* absl::SimpleAtoi into int64: whitespace, a sign, digits, whitespace. */
struct x2b_atoi {
	struct x2b_req *req;
	struct x2b_hparse *p;
	__u32 off;
	__u32 len;
};

static __always_inline int x2b_isspace(__u8 c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Phases: 0 leading space, 1 sign, 2 digits, 3 trailing space, 4 not a number. */
static __always_inline long x2b_atoi_step(__u64 i, void *data)
{
	struct x2b_atoi *a = data;
	struct x2b_hparse *p = a->p;
	__u8 c = x2b_head(a->req, a->off + (__u32)i);

	if (c >= '0' && c <= '9' && p->a_phase <= 2) {
		p->a_phase = 2;
		if (p->a_mag || c != '0')
			p->a_digits++;
		if (p->a_digits > 19) {
			p->a_phase = 4;
			return 1;
		}
		p->a_mag = p->a_mag * 10 + (c - '0');
		return 0;
	}
	if (x2b_isspace(c) && (p->a_phase == 0 || p->a_phase >= 2)) {
		if (p->a_phase == 2)
			p->a_phase = 3;
		return 0;
	}
	if ((c == '+' || c == '-') && p->a_phase == 0) {
		p->a_phase = 1;
		p->a_neg = c == '-';
		return 0;
	}
	p->a_phase = 4;
	return 1;
}

X2B_CHUNKED(x2b_atoi_cb, x2b_atoi_step, struct x2b_atoi, c->len)

/*
 * absl::SimpleAtoi into int64 (whitespace, a sign, digits, whitespace): 0 and
 * the value in p->a_mag (two's complement), or -1. Global: verified once.
 */
__noinline int x2b_atoi(struct x2b_req *req, struct x2b_hparse *p, __u32 off, __u32 len)
{
	struct x2b_atoi a = { .req = req, .p = p, .off = off, .len = len };
	__u64 mag;

	if (!req || !p)
		return -1;
	p->a_phase = 0;
	p->a_neg = 0;
	p->a_digits = 0;
	p->a_mag = 0;
	bpf_loop(x2b_chunks(len), x2b_atoi_cb, &a, 0);
	if (p->a_phase != 2 && p->a_phase != 3)
		return -1;
	mag = p->a_mag;
	if (p->a_neg) {
		if (mag > 0x8000000000000000ULL)
			return -1;
		p->a_mag = 0 - mag;
	} else if (mag > 0x7fffffffffffffffULL) {
		return -1;
	}
	return 0;
}

static __always_inline int x2b_span_int(struct x2b_req *req, struct x2b_hparse *p, __u32 off, __u32 len, __s64 *out)
{
	if (x2b_atoi(req, p, off, len) < 0)
		return -1;
	*out = (__s64)p->a_mag;
	return 0;
}

/* The first value of query parameter `hash` (raw name bytes, first match wins). */
struct x2b_qctx {
	struct x2b_req *req;
	struct x2b_hparse *p;
	__u64 want;
	__u32 off; /* query start */
	__u32 len;
};

static __always_inline void x2b_query_end(struct x2b_qctx *q, __u32 end)
{
	struct x2b_hparse *p = q->p;

	if (p->q_h != q->want)
		return;
	p->q_found = 1;
	if (p->q_eq) {
		p->q_voff = p->q_eq + 1;
		p->q_vlen = end - p->q_voff;
	} else {
		p->q_voff = end;
		p->q_vlen = 0;
	}
}

static __always_inline long x2b_query_step(__u64 i, void *data)
{
	struct x2b_qctx *q = data;
	struct x2b_hparse *p = q->p;
	__u32 pos = q->off + (__u32)i;
	__u8 c;

	if ((__u32)i >= q->len) {
		x2b_query_end(q, pos);
		return 1;
	}
	c = x2b_head(q->req, pos);
	if (c == '&') {
		x2b_query_end(q, pos);
		if (p->q_found)
			return 1;
		p->q_start = pos + 1;
		p->q_eq = 0;
		p->q_h = X2B_FNV_INIT;
		return 0;
	}
	if (c == '=' && !p->q_eq) {
		p->q_eq = pos;
		return 0;
	}
	if (!p->q_eq)
		p->q_h = x2b_fnv(p->q_h, c);
	return 0;
}

X2B_CHUNKED(x2b_query_cb, x2b_query_step, struct x2b_qctx, c->len + 1)

static __always_inline int x2b_query_find(struct x2b_req *req, struct x2b_hparse *p, __u64 name, __u32 *off, __u32 *len)
{
	struct x2b_qctx q = { .req = req, .p = p, .want = name };

	if (!p->query_off)
		return 0;
	q.off = p->query_off;
	q.len = p->query_len;
	p->q_start = q.off;
	p->q_eq = 0;
	p->q_found = 0;
	p->q_voff = 0;
	p->q_vlen = 0;
	p->q_h = X2B_FNV_INIT;
	/* One extra step closes the last parameter. */
	bpf_loop(x2b_chunks(q.len + 1), x2b_query_cb, &q, 0);
	*off = p->q_voff;
	*len = p->q_vlen;
	return p->q_found;
}

/*
 * The lines of header `hash`, in order, under bpf_loop (a plain loop over the
 * index would make the verifier walk every count of matches at every line).
 */
struct x2b_hiter {
	struct x2b_req *req;
	struct x2b_hparse *p;
	__u64 hash;
	__u32 dfa;   /* with `feed`: run the values, joined with ",", through this DFA */
	__u32 feed;  /* 1: joined; 2: each value on its own (`any`: one accepted); 3: each as an integer in [lo, hi) */
	__u32 state;
	__u32 count;
	__u32 first;
	__u32 any;
	__s64 lo, hi;
};

static long x2b_hiter_cb(__u64 i, void *data)
{
	struct x2b_hiter *it = data;
	struct x2b_hparse *p = it->p;
	const struct x2b_hhdr *h;

	if (i >= X2B_HTTP_MAX_HDRS || i >= p->nhdr)
		return 1;
	h = &p->hdr[i];
	if (h->hash != it->hash)
		return 0;
	if (!it->count)
		it->first = i;
	it->count++;
	if (it->feed == 1) {
		it->state = x2b_dfa_feed(it->req, p, it->dfa, it->state,
					 x2b_span(h->off, h->len) | (it->count > 1 ? X2B_FEED_SEP : X2B_FEED_FRESH));
	} else if (it->feed == 2) {
		if (x2b_dfa_ok(x2b_dfa_feed(it->req, p, it->dfa, 0, x2b_span(h->off, h->len) | X2B_FEED_FRESH)) == 1) {
			it->any = 1;
			return 1;
		}
	} else if (it->feed == 3) {
		__s64 v;

		if (x2b_span_int(it->req, p, h->off, h->len, &v) == 0 && v >= it->lo && v < it->hi) {
			it->any = 1;
			return 1;
		}
	}
	return 0;
}

/* Whether one value of header `hash` is accepted by DFA `dfa` (feed 2) or an integer in [lo, hi) (feed 3). */
static __always_inline int x2b_header_any(struct x2b_req *req, struct x2b_hparse *p, const struct x2b_hcond *c, __u32 feed)
{
	struct x2b_hiter it = { .req = req, .p = p, .hash = c->hash, .dfa = c->dfa, .feed = feed, .lo = c->lo, .hi = c->hi };

	bpf_loop(X2B_HTTP_MAX_HDRS, x2b_hiter_cb, &it, 0);
	return it.any;
}

static __always_inline int x2b_header_count(struct x2b_hparse *p, __u64 hash, __u32 *first)
{
	struct x2b_hiter it = { .p = p, .hash = hash };

	bpf_loop(X2B_HTTP_MAX_HDRS, x2b_hiter_cb, &it, 0);
	*first = it.first;
	return it.count;
}

/* Runs a DFA over every value of header `hash`, joined with ","; -1 if absent. */
static __always_inline int x2b_header_dfa(struct x2b_req *req, struct x2b_hparse *p, __u64 hash, __u32 dfa)
{
	struct x2b_hiter it = { .req = req, .p = p, .hash = hash, .dfa = dfa, .feed = 1 };

	bpf_loop(X2B_HTTP_MAX_HDRS, x2b_hiter_cb, &it, 0);
	if (!it.count)
		return -1;
	return x2b_dfa_ok(it.state);
}

/* Envoy's HeaderMatcher on a header (pseudo-headers are sources of their own). */
static __always_inline int x2b_cond_header(struct x2b_req *req, struct x2b_hparse *p, const struct x2b_hcond *c)
{
	int invert = !!(c->flags & X2B_CF_INVERT), match;
	__u32 first = 0;
	int n = x2b_header_count(p, c->hash, &first);

	if (!n && !(c->flags & X2B_CF_MISSING_EMPTY)) {
		/* A missing header matches only a presence test (absent, or inverted present). */
		if (c->op == X2B_C_PRESENT)
			return invert ? !!(c->flags & X2B_CF_WANT) : !(c->flags & X2B_CF_WANT);
		return 0;
	}
	switch (c->op) {
	case X2B_C_PRESENT:
		match = !!(c->flags & X2B_CF_WANT);
		break;
	case X2B_C_ANY:
		match = 1;
		break;
	case X2B_C_RANGE: {
		__s64 v;

		/* Several values join with ',', which is never an integer. */
		match = 0;
		if (n && (c->flags & X2B_CF_EACH))
			match = x2b_header_any(req, p, c, 3);
		else if (n == 1 && first < X2B_HTTP_MAX_HDRS &&
		    x2b_span_int(req, p, p->hdr[first].off, p->hdr[first].len, &v) == 0)
			match = v >= c->lo && v < c->hi;
		if (!n && x2b_span_int(req, p, 0, 0, &v) == 0) /* missing, treated as empty */
			match = v >= c->lo && v < c->hi;
		break;
	}
	default:
		if (n && (c->flags & X2B_CF_EACH))
			match = x2b_header_any(req, p, c, 2);
		else if (n)
			match = x2b_header_dfa(req, p, c->hash, c->dfa) == 1;
		else
			match = x2b_dfa_ok(x2b_dfa_feed(req, p, c->dfa, 0, X2B_FEED_FRESH));
	}
	return match != invert;
}

/* A span of the head against a DFA (sources that are never missing). */
static __always_inline int x2b_span_dfa(struct x2b_req *req, struct x2b_hparse *p, __u32 off, __u32 len, __u32 dfa)
{
	return x2b_dfa_ok(x2b_dfa_feed(req, p, dfa, 0, X2B_FEED_FRESH | x2b_span(off, len)));
}

static __always_inline int x2b_const_dfa(struct x2b_req *req, struct x2b_hparse *p, const char *s, __u32 n, __u32 dfa)
{
	struct x2b_drun r = { .req = req, .p = p };

	if (x2b_dfa_start(&r, dfa) < 0)
		return 0;
	for (__u32 i = 0; i < 8; i++) {
		if (i >= n || x2b_dfa_done(r.state))
			break;
		x2b_dfa_step(&r, s[i]);
	}
	return x2b_dfa_accepts(&r);
}

/* A pseudo-header source as a header matcher sees it (never missing but :authority). */
static __always_inline int x2b_cond_pseudo(struct x2b_req *req, struct x2b_hparse *p, const struct x2b_hcond *c)
{
	int invert = !!(c->flags & X2B_CF_INVERT), match;

	if (c->src == X2B_S_AUTHORITY && !(p->flags & X2B_HP_HOST) && !(c->flags & X2B_CF_MISSING_EMPTY)) {
		if (c->op == X2B_C_PRESENT)
			return invert ? !!(c->flags & X2B_CF_WANT) : !(c->flags & X2B_CF_WANT);
		return 0;
	}
	switch (c->op) {
	case X2B_C_PRESENT:
		match = !!(c->flags & X2B_CF_WANT);
		break;
	case X2B_C_ANY:
		match = 1;
		break;
	case X2B_C_RANGE: {
		__s64 v = 0;

		match = 0;
		if (c->src == X2B_S_FULLPATH && x2b_span_int(req, p, p->path_off, p->path_len, &v) == 0)
			match = v >= c->lo && v < c->hi;
		else if (c->src == X2B_S_METHOD && x2b_span_int(req, p, p->method_off, p->method_len, &v) == 0)
			match = v >= c->lo && v < c->hi;
		break;
	}
	default:
		switch (c->src) {
		case X2B_S_FULLPATH:
			match = p->path_len ? x2b_span_dfa(req, p, p->path_off, p->path_len, c->dfa)
					    : x2b_const_dfa(req, p, "/", 1, c->dfa);
			break;
		case X2B_S_METHOD:
			match = x2b_span_dfa(req, p, p->method_off, p->method_len, c->dfa);
			break;
		case X2B_S_SCHEME:
			match = p->scheme_len ? x2b_span_dfa(req, p, p->scheme_off, p->scheme_len, c->dfa)
					      : x2b_const_dfa(req, p, "http", 4, c->dfa);
			break;
		default:
			match = x2b_dfa_ok(x2b_dfa_feed(req, p, c->dfa, 0,
							X2B_FEED_FRESH | X2B_FEED_AUTH | x2b_span(0, p->auth_len)));
		}
	}
	return match != invert;
}

/* Condition `ci` of the compiled tables: 1 when it holds for the request. */
__noinline int x2b_http_cond(struct x2b_req *req, __u32 ci)
{
	const struct x2b_hcond *c = bpf_map_lookup_elem(&x2b_hcond, &ci);
	struct x2b_hparse *p = x2b_hparse();
	__u32 off = 0, len = 0;
	int found;

	if (!req || !c || !p)
		return 0;
	switch (c->op) {
	case X2B_C_FRACTION:
		if (c->hi <= 0)
			return 0;
#ifdef X2B_TEST_RANDOM
		/*
		 * Envoy's router-check tool enables only the test's runtime key;
		 * X2B_RUNTIME_DEFAULTS asks for the bundle's behaviour (default fractions).
		 */
		if (p->runtime != X2B_RUNTIME_DEFAULTS && (!p->runtime || p->runtime != c->dfa))
			return 0;
#endif
		return (__s64)(p->random % (__u64)c->hi) < c->lo;
	}
	switch (c->src) {
	case X2B_S_PATH: {
		__u32 n = p->pathonly_len;

		if (!p->path_len)
			return x2b_const_dfa(req, p, "/", 1, c->dfa);
		return x2b_span_dfa(req, p, p->path_off, n, c->dfa);
	}
	case X2B_S_HEADER:
		return x2b_cond_header(req, p, c);
	case X2B_S_QUERY:
		found = x2b_query_find(req, p, c->hash, &off, &len);
		if (!found)
			return 0;
		if (c->op == X2B_C_PRESENT)
			return 1;
		return x2b_span_dfa(req, p, off, len, c->dfa);
	default:
		return x2b_cond_pseudo(req, p, c);
	}
}

/* All conditions of route `ri` hold. */
__noinline int x2b_http_route_matches(struct x2b_req *req, __u32 ri)
{
	const struct x2b_hroute *r = bpf_map_lookup_elem(&x2b_hrt, &ri);
	__u32 first, n;

	if (!req || !r)
		return 0;
	first = r->first_cond;
	n = r->ncond;
	for (__u32 i = 0; i < X2B_HTTP_MAX_CONDS; i++) {
		if (i >= n)
			break;
		if (!x2b_http_cond(req, first + i))
			return 0;
	}
	return 1;
}

/* The routes of a virtual host kept in maps: first match wins. */
struct x2b_sctx {
	struct x2b_req *req;
	__u32 first;
	__u32 hit;
};

static long x2b_scan_cb(__u64 i, void *data)
{
	struct x2b_sctx *s = data;

	if (x2b_http_route_matches(s->req, s->first + (__u32)i)) {
		s->hit = s->first + (__u32)i;
		return 1;
	}
	return 0;
}

/* ---- Path index ------------------------------------------------------------------ */

/*
 * The walk down a virtual host's path index (a trie as an automaton, see
 * x2b_hpindex): as x2b_dfa_feed, but it stays at the last state that has an
 * edge for the next byte, and says whether the path went on past it.
 */
#define X2B_CAND_FAIL 0xfffffffdu /* x2b_http_cand_row: the index could not be read */

struct x2b_pwalk {
	struct x2b_drun r;
	__u32 off_trie; /* the path goes on where the trie has no edge */
	__u32 pad;
};

static __always_inline long x2b_pwalk_step(__u64 i, void *data)
{
	struct x2b_pwalk *w = data;
	__u8 b = x2b_head(w->r.req, w->r.off + (__u32)i);
	__u32 key = w->r.trans + (w->r.state & X2B_DS_STATE) * w->r.nclass + w->r.cm->cls[b];
	__u32 *e = bpf_map_lookup_elem(&x2b_dtr, &key);

	if (!e || !(*e & X2B_DS_STATE)) {
		w->off_trie = 1;
		return 1;
	}
	w->r.state = *e;
	return 0;
}

/* one byte per call: the walk is short (it stops where the keys do) */
X2B_CHUNKED_N(x2b_pwalk_cb, x2b_pwalk_step, struct x2b_pwalk, c->r.len, 1)

/*
 * The x2b_hcand row of the request's path in the index of global virtual host
 * `vh`: 2 * the deepest state reached, + 1 when the whole path was consumed.
 * The walk reads the same bytes as the routes' path conditions (X2B_S_PATH; an
 * empty path is "/"). X2B_HTTP_NONE: the virtual host has no index, every
 * route is a candidate; X2B_CAND_FAIL: none is (routes of an index may have no
 * path condition of their own, so a failed walk must not let them all match).
 */
__noinline __u32 x2b_http_cand_row(struct x2b_req *req, __u32 vh)
{
	const struct x2b_hpindex *ix = bpf_map_lookup_elem(&x2b_hpix, &vh);
	struct x2b_hparse *p = x2b_hparse();
	struct x2b_pwalk w = {};

	if (!ix)
		return X2B_CAND_FAIL;
	if (ix->dfa == X2B_HTTP_NONE)
		return X2B_HTTP_NONE;
	if (!req || !p)
		return X2B_CAND_FAIL;
	w.r.req = req;
	w.r.p = p;
	if (x2b_dfa_start(&w.r, ix->dfa) < 0)
		return X2B_CAND_FAIL;
	if (p->path_len) {
		w.r.off = p->path_off;
		w.r.len = p->pathonly_len;
		bpf_loop(w.r.len, x2b_pwalk_cb, &w, 0);
	} else {
		x2b_dfa_step(&w.r, '/');
		if (!(w.r.state & X2B_DS_STATE)) {
			w.r.state = 1;
			w.off_trie = 1;
		}
	}
	return ix->cands + 2 * (w.r.state & X2B_DS_STATE) + !w.off_trie;
}

/*
 * The first candidate word of indexed virtual host `vh` (straight-line scans: at
 * most 64 routes); 0 when the index cannot be read.
 */
static __always_inline __u64 x2b_http_cand_word(struct x2b_req *req, __u32 vh)
{
	__u32 row = x2b_http_cand_row(req, vh);
	const struct x2b_hcand *c;

	if (row == X2B_HTTP_NONE || row == X2B_CAND_FAIL)
		return 0;
	c = bpf_map_lookup_elem(&x2b_hcand, &row);
	return c ? c->bits[0] : 0;
}

/* Index of the lowest set bit of x (x != 0): the bits below it counted, without branches. */
static __always_inline __u32 x2b_low_bit(__u64 x)
{
	x = (x & -x) - 1;
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (__u32)((x * 0x0101010101010101ULL) >> 56);
}

/*
 * The candidates of an indexed virtual host kept in maps, in route order: one
 * per call, or the next 64-route word of the row when the current one is spent.
 */
struct x2b_cscan {
	struct x2b_req *req;
	const struct x2b_hcand *cand;
	__u64 word; /* candidates not yet tested, bit i: route first + base + i */
	__u32 first;
	__u32 base;
	__u32 next; /* the next word of `cand` */
	__u32 n;
	__u32 hit;
	__u32 pad;
};

static long x2b_cand_cb(__u64 i, void *data)
{
	struct x2b_cscan *s = data;
	__u32 ri;

	(void)i; /* the position is in the candidate words */
	if (!s->word) {
		if (s->next >= X2B_HTTP_CAND_ROUTES / 64 || 64 * s->next >= s->n)
			return 1;
		s->word = s->cand->bits[s->next & (X2B_HTTP_CAND_ROUTES / 64 - 1)];
		s->base = 64 * s->next;
		s->next++;
		return 0;
	}
	ri = s->base + x2b_low_bit(s->word);
	s->word &= s->word - 1;
	if (ri >= s->n)
		return 1;
	if (x2b_http_route_matches(s->req, s->first + ri)) {
		s->hit = s->first + ri;
		return 1;
	}
	return 0;
}

/*
 * The matching route of virtual host `v` (global `vh`) kept in maps: its path
 * index's candidates when it has one, else every route in turn.
 */
static __always_inline __u32 x2b_http_scan_maps(struct x2b_req *req, const struct x2b_hvhost *v, __u32 vh)
{
	__u32 row = x2b_http_cand_row(req, vh);
	struct x2b_cscan cs = {
		.req = req, .first = v->first_route, .n = v->nroutes, .hit = X2B_HTTP_NONE
	};
	struct x2b_sctx s = { .req = req, .first = v->first_route, .hit = X2B_HTTP_NONE };

	if (row == X2B_HTTP_NONE) {
		bpf_loop(v->nroutes, x2b_scan_cb, &s, 0);
		return s.hit;
	}
	cs.cand = row == X2B_CAND_FAIL ? NULL : bpf_map_lookup_elem(&x2b_hcand, &row);
	if (!cs.cand)
		return X2B_HTTP_NONE;
	/* every candidate, and one call per word to load it */
	bpf_loop(X2B_HTTP_CAND_ROUTES + X2B_HTTP_CAND_ROUTES / 64, x2b_cand_cb, &cs, 0);
	return cs.hit;
}

/* ---- Virtual hosts ------------------------------------------------------------- */

/* Envoy's getPortStart over auth[] or sel[]: the last ':' not inside an IPv6 literal. */
struct x2b_portctx {
	struct x2b_hparse *p;
	__u32 len;
	__u32 sel;     /* scan sel[] instead of auth[] */
	__u32 colon;   /* 1 + offset of the last ':', 0: none */
	__u32 bracket; /* 1 + offset of the last ']' */
};

static __always_inline long x2b_port_step(__u64 i, void *data)
{
	struct x2b_portctx *c = data;
	__u8 ch = c->sel ? c->p->sel[i & (X2B_HOST_MAX - 1)] : c->p->auth[i & (X2B_HOST_MAX - 1)];

	if (ch == ':')
		c->colon = i + 1;
	else if (ch == ']')
		c->bracket = i + 1;
	return 0;
}

X2B_CHUNKED(x2b_port_cb, x2b_port_step, struct x2b_portctx, c->len)

static __always_inline int x2b_port_start(struct x2b_hparse *p, __u32 sel, __u32 len)
{
	struct x2b_portctx c = { .p = p, .sel = sel, .len = len };

	bpf_loop(x2b_chunks(len), x2b_port_cb, &c, 0);
	if (!c.colon || (c.bracket && c.bracket > c.colon))
		return -1;
	return c.colon - 1;
}

/* absl::SimpleAtoi<uint32> of auth[from..auth_len): the port Host stripping checks. */
struct x2b_portnum {
	struct x2b_hparse *p;
	__u32 from;
	__u32 phase; /* 0 leading space, 1 sign, 2 digits, 3 trailing space, 4 bad */
	__u64 v;
};

static __always_inline long x2b_portnum_step(__u64 i, void *data)
{
	struct x2b_portnum *n = data;
	__u32 pos = n->from + (__u32)i;
	__u8 c;

	if (pos >= n->p->auth_len)
		return 1;
	c = n->p->auth[pos & (X2B_HOST_MAX - 1)];
	if (c >= '0' && c <= '9' && n->phase <= 2) {
		n->phase = 2;
		n->v = n->v * 10 + (c - '0');
		if (n->v > 0xffffffffULL) {
			n->phase = 4;
			return 1;
		}
		return 0;
	}
	if (x2b_isspace(c) && (n->phase == 0 || n->phase >= 2)) {
		if (n->phase == 2)
			n->phase = 3;
		return 0;
	}
	if (c == '+' && n->phase == 0) {
		n->phase = 1;
		return 0;
	}
	n->phase = 4;
	return 1;
}

/* A port is a few bytes: one per callback, so the stack state stays simple. */
static long x2b_portnum_byte(__u64 i, void *data)
{
	return x2b_portnum_step(i, data);
}

struct x2b_shift {
	struct x2b_hparse *p;
	__u32 at;
};

static __always_inline long x2b_shift_step(__u64 i, void *data)
{
	struct x2b_shift *s = data;
	__u32 pos = s->at + (__u32)i;

	if (pos + 1 >= s->p->auth_len)
		return 1;
	s->p->auth[pos & (X2B_HOST_MAX - 1)] = s->p->auth[(pos + 1) & (X2B_HOST_MAX - 1)];
	return 0;
}

static long x2b_shift_byte(__u64 i, void *data)
{
	return x2b_shift_step(i, data);
}

struct x2b_lastdot {
	struct x2b_hparse *p;
	__u32 len;
	__u32 dot; /* 1 + offset of the last '.' */
};

static __always_inline long x2b_lastdot_step(__u64 i, void *data)
{
	struct x2b_lastdot *d = data;

	if (d->p->auth[i & (X2B_HOST_MAX - 1)] == '.')
		d->dot = i + 1;
	return 0;
}

static long x2b_lastdot_byte(__u64 i, void *data)
{
	return x2b_lastdot_step(i, data);
}

/* The connection manager's Host normalisation: strip_trailing_host_dot, then ports. */
static __always_inline void x2b_normalize_host(struct x2b_hparse *p, const struct x2b_htable *t)
{
	if (!(p->flags & X2B_HP_HOST))
		return;
	if (t->flags & X2B_HT_STRIP_DOT) {
		struct x2b_lastdot d = { .p = p, .len = p->auth_len };

		bpf_loop(p->auth_len, x2b_lastdot_byte, &d, 0);
		if (d.dot && d.dot == p->auth_len) {
			p->auth_len--;
		} else if (d.dot && p->auth[d.dot & (X2B_HOST_MAX - 1)] == ':') {
			/* "host.:80": the dot goes, the port stays. */
			struct x2b_shift s = { .p = p, .at = d.dot - 1 };

			bpf_loop(X2B_HOST_MAX, x2b_shift_byte, &s, 0);
			p->auth_len--;
		}
	}
	if (t->flags & (X2B_HT_STRIP_ANY_PORT | X2B_HT_STRIP_PORT)) {
		int at = x2b_port_start(p, 0, p->auth_len);
		struct x2b_portnum n = { .p = p };

		if (at < 0)
			return;
		n.from = at + 1;
		bpf_loop(X2B_HOST_MAX, x2b_portnum_byte, &n, 0);
		if (n.phase != 2 && n.phase != 3)
			return;
		if ((t->flags & X2B_HT_STRIP_PORT) && n.v != t->strip_port)
			return;
		p->auth_len = at;
	}
}

/* The host virtual hosts are selected by, lowercased into sel[]. */
struct x2b_selctx {
	struct x2b_req *req;
	struct x2b_hparse *p;
	__u32 len;
	__u32 src; /* head offset; X2B_HTTP_NONE: auth[] */
};

static __always_inline long x2b_sel_step(__u64 i, void *data)
{
	struct x2b_selctx *s = data;
	__u8 c;

	if (s->src == X2B_HTTP_NONE)
		c = s->p->auth[i & (X2B_HOST_MAX - 1)];
	else
		c = x2b_head(s->req, s->src + (__u32)i);
	s->p->sel[i & (X2B_HOST_MAX - 1)] = x2b_lower(c);
	return 0;
}

X2B_CHUNKED(x2b_sel_cb, x2b_sel_step, struct x2b_selctx, c->len)

struct x2b_vctx {
	struct x2b_hparse *p;
	__u32 table;
	__u32 kind;
	__u64 h;
	__u64 lens[4];
	__u32 hit;
	__u32 pad;
};

static __always_inline int x2b_len_bit(const __u64 *lens, __u32 l)
{
	return (lens[(l >> 6) & 3] >> (l & 63)) & 1;
}

static __always_inline void x2b_dom_probe(struct x2b_vctx *v, __u32 len)
{
	struct x2b_hdom_key k = { .table = v->table, .kind = v->kind, .len = len, .hash = v->h };
	__u32 *vh = bpf_map_lookup_elem(&x2b_hdom, &k);

	if (vh)
		v->hit = *vh; /* lengths grow: the last hit is the longest */
}

/* Forward over sel[]: "prefix*" domains at lengths 1..n-1; v->h ends as the whole host's hash. */
static __always_inline long x2b_fwd_step(__u64 i, void *data)
{
	struct x2b_vctx *v = data;
	__u32 l = (__u32)i;

	if (l && x2b_len_bit(v->lens, l))
		x2b_dom_probe(v, l);
	v->h = x2b_fnv(v->h, v->p->sel[l & (X2B_HOST_MAX - 1)]);
	return 0;
}

X2B_CHUNKED(x2b_fwd_cb, x2b_fwd_step, struct x2b_vctx, c->p->sel_len)

/* Backward over sel[]: "*suffix" domains at lengths 1..n-1, hashed from the last byte. */
static __always_inline long x2b_bwd_step(__u64 i, void *data)
{
	struct x2b_vctx *v = data;
	__u32 l = (__u32)i;

	if (l && x2b_len_bit(v->lens, l))
		x2b_dom_probe(v, l);
	v->h = x2b_fnv(v->h, v->p->sel[(v->p->sel_len - 1 - l) & (X2B_HOST_MAX - 1)]);
	return 0;
}

X2B_CHUNKED(x2b_bwd_cb, x2b_bwd_step, struct x2b_vctx, c->p->sel_len)

#define X2B_HTTP_ERR 0xfffffffdu

/* Envoy's findVirtualHost: exact, longest "*suffix", longest "prefix*", then "*". */
static __always_inline __u32 x2b_select_vhost(struct x2b_req *req, struct x2b_hparse *p,
					      const struct x2b_htable *t, __u32 table)
{
	struct x2b_selctx s = { .req = req, .p = p, .src = X2B_HTTP_NONE };
	struct x2b_vctx v = { .p = p, .table = table, .kind = X2B_DOM_PREFIX, .h = X2B_FNV_INIT, .hit = X2B_HTTP_NONE };
	struct x2b_hdom_key k = { .table = table, .kind = X2B_DOM_EXACT };
	__u32 len, prefix, *vh;

	/* Envoy's fast path: only "*" (or nothing) is chosen even without a Host. */
	if (!(t->flags & X2B_HT_DOMAINS))
		return t->default_vhost;
	if (t->flags & X2B_HT_VHOST_HEADER) {
		__u32 first = 0;

		if (!x2b_header_count(p, t->vhost_header, &first) || first >= X2B_HTTP_MAX_HDRS)
			return X2B_HTTP_NONE;
		s.src = p->hdr[first].off;
		len = p->hdr[first].len;
	} else {
		if (!(p->flags & X2B_HP_HOST))
			return X2B_HTTP_NONE;
		len = p->auth_len;
	}
	if (len >= X2B_HOST_MAX)
		return X2B_HTTP_ERR;
	s.len = len;
	bpf_loop(x2b_chunks(len), x2b_sel_cb, &s, 0);
	p->sel_len = len;
	if (t->flags & X2B_HT_IGNORE_PORT) {
		int at = x2b_port_start(p, 1, len);

		if (at >= 0)
			p->sel_len = at;
	}
	__builtin_memcpy(v.lens, t->pfx_lens, sizeof(v.lens));
	bpf_loop(x2b_chunks(p->sel_len), x2b_fwd_cb, &v, 0);
	prefix = v.hit;
	k.len = p->sel_len;
	k.hash = v.h;
	vh = bpf_map_lookup_elem(&x2b_hdom, &k);
	if (vh)
		return *vh;
	v.h = X2B_FNV_INIT;
	v.kind = X2B_DOM_SUFFIX;
	v.hit = X2B_HTTP_NONE;
	__builtin_memcpy(v.lens, t->sfx_lens, sizeof(v.lens));
	bpf_loop(x2b_chunks(p->sel_len), x2b_bwd_cb, &v, 0);
	if (v.hit != X2B_HTTP_NONE)
		return v.hit;
	if (prefix != X2B_HTTP_NONE)
		return prefix;
	return t->default_vhost;
}

/* ---- Actions ---------------------------------------------------------------------- */

static __always_inline int x2b_span_is(struct x2b_req *req, __u32 off, __u32 len, const char *s, __u32 n)
{
	if (len != n)
		return 0;
	for (__u32 i = 0; i < 8; i++) {
		if (i >= n)
			break;
		if (x2b_head(req, off + i) != s[i])
			return 0;
	}
	return 1;
}

/* Envoy's weighted pick: random % total against cumulative weights in config order. */
/* Envoy's pick over cumulative weights, under bpf_loop (verified once, not per entry). */
struct x2b_wctx {
	__u32 first;
	__u32 pick;
	__u32 last;
};

static long x2b_weighted_cb(__u64 i, void *data)
{
	struct x2b_wctx *c = data;
	__u32 idx = c->first + (__u32)i;
	struct x2b_hwcluster *w = bpf_map_lookup_elem(&x2b_hwcl, &idx);

	if (!w)
		return 1;
	c->last = w->cluster;
	return c->pick < w->cum_weight;
}

static __always_inline __u32 x2b_http_weighted(const struct x2b_hroute *r, __u32 random)
{
	struct x2b_wctx c = { .first = r->arg, .last = X2B_HTTP_NONE };
	__u32 n = r->count < X2B_HTTP_MAX_WEIGHTED ? r->count : X2B_HTTP_MAX_WEIGHTED;

	if (!r->total)
		return X2B_HTTP_NONE;
	c.pick = random % r->total;
	bpf_loop(n, x2b_weighted_cb, &c, 0);
	return c.last;
}

struct x2b_hashctx {
	struct x2b_req *req;
	__u32 off;
	__u32 len;
	__u64 h;
};

static __always_inline long x2b_hash_step(__u64 i, void *data)
{
	struct x2b_hashctx *c = data;

	c->h = x2b_fnv(c->h, x2b_head(c->req, c->off + (__u32)i));
	return 0;
}

X2B_CHUNKED(x2b_hash_cb, x2b_hash_step, struct x2b_hashctx, c->len)

/* cluster_header: the header's first value names the cluster. */
static __always_inline __u32 x2b_http_named_cluster(struct x2b_req *req, struct x2b_hparse *p, __u64 name)
{
	struct x2b_hashctx c = { .req = req, .h = X2B_FNV_INIT };
	struct x2b_hcn_key k = {};
	__u32 first = 0, *id;

	if (!x2b_header_count(p, name, &first) || first >= X2B_HTTP_MAX_HDRS)
		return X2B_HTTP_NONE;
	c.off = p->hdr[first].off;
	c.len = p->hdr[first].len;
	bpf_loop(x2b_chunks(c.len), x2b_hash_cb, &c, 0);
	k.hash = c.h;
	k.len = p->hdr[first].len;
	id = bpf_map_lookup_elem(&x2b_hcn, &k);
	return id ? *id : X2B_HTTP_NONE;
}

/* x-forwarded-proto: 0 not https, 1 https, -1 empty (Envoy routes nothing). */
static __always_inline int x2b_http_proto(struct x2b_req *req, struct x2b_hparse *p)
{
	__u32 first = 0;
	int n = x2b_header_count(p, X2B_H_XFP, &first);

	/* Absent: the connection manager sets it from the (plaintext) connection. */
	if (!n || first >= X2B_HTTP_MAX_HDRS)
		return 0;
	if (n > 1)
		return 0;
	if (!p->hdr[first].len)
		return -1;
	return x2b_span_is(req, p->hdr[first].off, p->hdr[first].len, "https", 5);
}

static __always_inline int x2b_http_internal(struct x2b_req *req, struct x2b_hparse *p)
{
	__u32 first = 0;

	if (x2b_header_count(p, X2B_H_INTERNAL, &first) != 1 || first >= X2B_HTTP_MAX_HDRS)
		return 0;
	return x2b_span_is(req, p->hdr[first].off, p->hdr[first].len, "true", 4);
}

/* The generated route scan of virtual hosts compiled to straight-line code. */
static __always_inline __u32 x2b_http_scan_inline(struct x2b_req *req, __u32 vhost);

static __always_inline __u32 x2b_http_set(struct x2b_hresult *res, __u32 kind, __u32 cluster)
{
	res->kind = kind;
	res->cluster = cluster;
	return kind == X2B_HK_CLUSTER ? cluster : X2B_NO_ACTION;
}

/*
 * The connection manager's path normalisation (normalize_path, merge_slashes,
 * path_with_escaped_slashes_action) is not applied in the kernel: a request
 * whose path (before '?') an enabled option would change is refused instead
 * (PathNormalization.kernelRefuses states the same test). Each position is
 * judged by the bytes from it on, so the scan keeps no state.
 */
struct x2b_nctx {
	struct x2b_req *req;
	__u32 off, n, flags, bad;
};

static __always_inline __u8 x2b_hexval(__u8 c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static __always_inline int x2b_is_hex(__u8 c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static __always_inline long x2b_norm_step(__u64 i, void *data)
{
	struct x2b_nctx *c = data;
	__u32 k = (__u32)i, o = c->off + k;
	__u8 b0 = x2b_head(c->req, o);
	__u8 b1 = k + 1 < c->n ? x2b_head(c->req, o + 1) : 0;
	__u8 b2 = k + 2 < c->n ? x2b_head(c->req, o + 2) : 0;
	__u8 b3 = k + 3 < c->n ? x2b_head(c->req, o + 3) : 0;

	if ((c->flags & X2B_HT_ESCAPED_SLASHES) && b0 == '%' &&
	    ((b1 == '2' && (b2 | 0x20) == 'f') || (b1 == '5' && (b2 | 0x20) == 'c')))
		c->bad = 1;
	else if ((c->flags & X2B_HT_MERGE_SLASHES) && b0 == '/' && b1 == '/')
		c->bad = 1;
	else if (c->flags & X2B_HT_NORMALIZE_PATH) {
		if (x2b_in_class(b0, X2B_PESC_LO, X2B_PESC_HI))
			c->bad = 1;
		else if (b0 == '%' && x2b_is_hex(b1) && x2b_is_hex(b2) &&
			 x2b_in_class((x2b_hexval(b1) << 4) | x2b_hexval(b2), X2B_PUNESC_LO, X2B_PUNESC_HI))
			c->bad = 1;
		else if (b0 == '/' && b1 == '.' &&
			 (k + 2 == c->n || b2 == '/' || (b2 == '.' && (k + 3 == c->n || b3 == '/'))))
			c->bad = 1; /* a "." or ".." segment */
	}
	return c->bad;
}

/* one byte per call: eight per call (X2B_CHUNK) take the verifier over its limit */
X2B_CHUNKED_N(x2b_norm_cb, x2b_norm_step, struct x2b_nctx, c->n, 1)

static __noinline int x2b_path_needs_norm(struct x2b_req *req, const struct x2b_hparse *p,
					   const struct x2b_htable *t)
{
	struct x2b_nctx c = { .req = req };

	if (!req || !p || !t)
		return 0;
	c.flags = t->flags & (X2B_HT_NORMALIZE_PATH | X2B_HT_MERGE_SLASHES | X2B_HT_ESCAPED_SLASHES);
	if (!c.flags)
		return 0;
	c.off = p->path_off;
	c.n = p->pathonly_len;
	bpf_loop(c.n, x2b_norm_cb, &c, 0);
	return c.bad;
}

/*
 * The decision for route table `table`: the cluster id, or X2B_NO_ACTION when
 * Envoy would not forward (x2b_hres says why and which virtual host and route).
 */
__noinline __u32 x2b_http_decide(struct x2b_req *req, __u32 table)
{
	__u32 zero = 0, vh, ri;
	struct x2b_hresult *res = bpf_map_lookup_elem(&x2b_hres, &zero);
	struct x2b_hparse *p = x2b_hparse();
	const struct x2b_htable *t = bpf_map_lookup_elem(&x2b_htab, &table);
	const struct x2b_hvhost *v;
	const struct x2b_hroute *r;
	int proto, perr;

	if (!res)
		return X2B_NO_ACTION;
	res->vhost = X2B_HTTP_NONE;
	res->route = X2B_HTTP_NONE;
	if (!req || !p || !t)
		return x2b_http_set(res, X2B_HK_ERROR, X2B_HTTP_NONE);
	perr = x2b_http_parse(req, p);
	if (perr == -2)
		return x2b_http_set(res, X2B_HK_BAD_REQUEST, p->status);
	if (perr < 0)
		return x2b_http_set(res, X2B_HK_ERROR, X2B_HTTP_NONE);
	/* Envoy rewrites (or answers 400 / 307 for) such a path before routing */
	if (x2b_path_needs_norm(req, p, t))
		return x2b_http_set(res, X2B_HK_BAD_REQUEST, 400);
	x2b_http_draw(p);
	x2b_normalize_host(p, t);
	vh = x2b_select_vhost(req, p, t, table);
	if (vh == X2B_HTTP_ERR)
		return x2b_http_set(res, X2B_HK_ERROR, X2B_HTTP_NONE);
	v = bpf_map_lookup_elem(&x2b_hvh, &vh);
	if (!v)
		return x2b_http_set(res, X2B_HK_NO_VHOST, X2B_HTTP_NONE);
	res->vhost = v->index;
	proto = x2b_http_proto(req, p);
	if (proto < 0)
		return x2b_http_set(res, X2B_HK_NO_ROUTE, X2B_HTTP_NONE);
	if ((v->tls == X2B_TLS_ALL && !proto) || (v->tls == X2B_TLS_EXTERNAL && !proto && !x2b_http_internal(req, p)))
		return x2b_http_set(res, X2B_HK_TLS_REDIRECT, X2B_HTTP_NONE);
	ri = x2b_http_scan_inline(req, vh);
	if (ri == X2B_HTTP_SCAN_MAPS)
		ri = x2b_http_scan_maps(req, v, vh);
	r = bpf_map_lookup_elem(&x2b_hrt, &ri);
	if (!r)
		return x2b_http_set(res, X2B_HK_NO_ROUTE, X2B_HTTP_NONE);
	res->route = r->index;
	switch (r->action) {
	case X2B_RA_CLUSTER:
		ri = r->arg;
		break;
	case X2B_RA_WEIGHTED:
		ri = x2b_http_weighted(r, p->random);
		break;
	case X2B_RA_HEADER:
		ri = x2b_http_named_cluster(req, p, r->hash);
		break;
	default:
		return x2b_http_set(res, X2B_HK_LOCAL, X2B_HTTP_NONE);
	}
	if (ri == X2B_HTTP_NONE)
		return x2b_http_set(res, X2B_HK_NO_CLUSTER, X2B_HTTP_NONE);
	return x2b_http_set(res, X2B_HK_CLUSTER, ri);
}

/*
 * The hook for the connect path: the cluster id route table `table` chooses
 * for the request head, or X2B_NO_ACTION (no route, a redirect or direct
 * response, an unusable head; x2b_hres holds the details).
 */
static __always_inline __u32 x2b_http_route(struct x2b_req *req, __u32 table)
{
	return x2b_http_decide(req, table);
}

/*
 * After X2B_HK_ERROR (a head cut at X2B_HEAD_MAX, or a form the matcher does not
 * parse): whether the connection takes the listener's L4 fallback. Only where
 * the table routes every request alike (X2B_HT_UNIFORM); elsewhere the unseen
 * part of the head might select a route that denies it, so it is refused.
 */
static __always_inline int x2b_http_error_falls_back(__u32 table)
{
	const struct x2b_htable *t = bpf_map_lookup_elem(&x2b_htab, &table);

	return t && (t->flags & X2B_HT_UNIFORM) ? 1 : 0;
}

#endif /* X2B_HTTP_H */
