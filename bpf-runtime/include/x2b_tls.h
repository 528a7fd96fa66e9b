/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ClientHello of a deferred connect, read as Envoy's TLS inspector reads
 * it (include after x2b_http.h, which gives the head buffer, x2b_fnv and
 * x2b_lower): is the head a TLS ClientHello (transport "tls") or not
 * ("raw_buffer"), its server name and its ALPN list. The generated chooser
 * (x2b_routes.h, x2b_tls_group / x2b_tls_leaf) turns that into an action.
 *
 * Names are compared by FNV-1a 64 and length, as HTTP domains are. The server
 * name is hashed lowercased from its last byte backwards, so one pass gives
 * the whole name and every wildcard key Envoy tries (".b.c", ".c" for "a.b.c");
 * the compiler hashes the configured keys the same way (TLSHash.swift).
 *
 * Every loop runs under bpf_loop(), so the verifier's work does not grow
 * with the ClientHello or the configuration.
 */
#ifndef X2B_TLS_H
#define X2B_TLS_H

#define X2B_TLS_MAX_KEYS 32 /* wildcard keys of one server name (labels - 1) */
#define X2B_TLS_MAX_ALPN 8  /* ALPN values compared, in the client's order */
#define X2B_TLS_MAX_EXTS 64 /* extensions walked in one ClientHello */
#define X2B_TLS_SNI_MAX 255 /* BoringSSL's TLSEXT_MAXLEN_host_name */
#define X2B_TLS_NOMATCH 0xffffffffu
#define X2B_TLS_CLOSE 0xfffffffeu

/* struct x2b_hello.state: what the head is. */
#define X2B_TLS_RAW 0	  /* not a ClientHello BoringSSL accepts: transport raw_buffer */
#define X2B_TLS_HELLO 1	  /* a whole ClientHello: transport tls */
#define X2B_TLS_PARTIAL 2 /* a ClientHello cut short: Envoy waits, then closes; refused */

struct x2b_tls_key {
	__u64 hash;
	__u32 len;
	__u32 pad;
};

struct x2b_hello {
	__u32 state;
	__u32 nsfx;    /* wildcard keys seen (sfx[] keeps the last, longest, X2B_TLS_MAX_KEYS) */
	__u32 nalpn;   /* ALPN values seen (alpn[] keeps the first X2B_TLS_MAX_ALPN) */
	__u32 sni_len; /* 0: no server name */
	struct x2b_tls_key sni;
	struct x2b_tls_key sfx[X2B_TLS_MAX_KEYS];
	struct x2b_tls_key alpn[X2B_TLS_MAX_ALPN];
	/* parse scratch */
	__u32 hs_len; /* handshake bytes gathered from the records (moved to the head's start) */
	__u32 ext_off, ext_end;
	__u32 sni_off, sni_ext_len;
	__u32 alpn_off, alpn_ext_len;
	__u32 bad;
};

_Static_assert(sizeof(struct x2b_hello) == 704, "x2b_tlsh value size (TLSEmitter.helloSize)");

/* Records → handshake bytes, moved in place to the head's start (out <= in always). */
struct x2b_recctx {
	struct x2b_req *req;
	__u32 n, out, left, hpos, rlen, stop;
};

static __always_inline long x2b_rec_step(__u64 i, void *data)
{
	struct x2b_recctx *c = data;
	__u8 b = x2b_head(c->req, (__u32)i);

	if (c->left) {
		c->req->head[c->out & (X2B_HEAD_MAX - 1)] = b;
		c->out++;
		c->left--;
		return 0;
	}
	switch (c->hpos) {
	case 0:
		if (b != 0x16) { /* not a handshake record: the handshake bytes end here */
			c->stop = 1;
			return 1;
		}
		break;
	case 1:
		if (b != 0x03) {
			c->stop = 1;
			return 1;
		}
		break;
	case 3:
		c->rlen = (__u32)b << 8;
		break;
	case 4:
		c->rlen |= b;
		c->left = c->rlen;
		c->hpos = 0;
		return 0;
	}
	c->hpos++;
	return 0;
}

X2B_CHUNKED(x2b_rec_cb, x2b_rec_step, struct x2b_recctx, c->n)

static __always_inline __u32 x2b_u8(struct x2b_req *req, __u32 off)
{
	return x2b_head(req, off);
}

static __always_inline __u32 x2b_u16(struct x2b_req *req, __u32 off)
{
	return ((__u32)x2b_head(req, off) << 8) | x2b_head(req, off + 1);
}

/* The extensions: where server_name (0) and ALPN (16) are; a duplicate of either is malformed. */
struct x2b_extctx {
	struct x2b_req *req;
	struct x2b_hello *h;
	__u32 off;
	__u32 done;
};

static long x2b_ext_cb(__u64 i, void *data)
{
	struct x2b_extctx *c = data;
	struct x2b_hello *h = c->h;
	__u32 type, len;

	if (c->off == h->ext_end) {
		c->done = 1;
		return 1;
	}
	if (c->off + 4 > h->ext_end) {
		h->bad = 1;
		return 1;
	}
	type = x2b_u16(c->req, c->off);
	len = x2b_u16(c->req, c->off + 2);
	if (c->off + 4 + len > h->ext_end) {
		h->bad = 1;
		return 1;
	}
	if (type == 0 || type == 16) {
		__u32 *off = type == 0 ? &h->sni_off : &h->alpn_off;

		if (*off) {
			h->bad = 1;
			return 1;
		}
		*off = c->off + 4;
		if (type == 0)
			h->sni_ext_len = len;
		else
			h->alpn_ext_len = len;
	}
	c->off += 4 + len;
	return 0;
}

/* The server name backwards: the whole name's key and each wildcard key (a '.' at 1..n-2). */
struct x2b_snictx {
	struct x2b_req *req;
	struct x2b_hello *h;
	__u32 off, n;
	__u64 hash;
};

static __always_inline long x2b_sni_step(__u64 i, void *data)
{
	struct x2b_snictx *c = data;
	__u32 pos = c->n - 1 - (__u32)i;
	__u8 b = x2b_lower(x2b_head(c->req, c->off + pos));

	if (!b) { /* BoringSSL refuses a name holding a NUL */
		c->h->bad = 1;
		return 1;
	}
	c->hash = x2b_fnv(c->hash, b);
	if (b == '.' && pos >= 1 && pos + 1 < c->n) {
		struct x2b_tls_key *k = &c->h->sfx[c->h->nsfx & (X2B_TLS_MAX_KEYS - 1)];

		k->hash = c->hash;
		k->len = c->n - pos;
		c->h->nsfx++;
	}
	return 0;
}

X2B_CHUNKED(x2b_sni_cb, x2b_sni_step, struct x2b_snictx, c->n)

/* The ALPN list: one FNV-1a per value, in order (length bytes start a value). */
struct x2b_alpnctx {
	struct x2b_req *req;
	struct x2b_hello *h;
	__u32 off, n, left, bad;
	__u64 hash;
};

static __always_inline void x2b_alpn_end(struct x2b_alpnctx *c)
{
	__u32 k = c->h->nalpn;

	if (k < X2B_TLS_MAX_ALPN)
		c->h->alpn[k & (X2B_TLS_MAX_ALPN - 1)].hash = c->hash;
	c->h->nalpn++;
}

static __always_inline long x2b_alpn_step(__u64 i, void *data)
{
	struct x2b_alpnctx *c = data;
	__u8 b = x2b_head(c->req, c->off + (__u32)i);

	if (!c->left) {
		__u32 k = c->h->nalpn;

		if (!b) { /* an empty value: Envoy ignores the whole list */
			c->bad = 1;
			return 1;
		}
		c->left = b;
		c->hash = X2B_FNV_INIT;
		if (k < X2B_TLS_MAX_ALPN)
			c->h->alpn[k & (X2B_TLS_MAX_ALPN - 1)].len = b;
		return 0;
	}
	c->hash = x2b_fnv(c->hash, b);
	if (!--c->left)
		x2b_alpn_end(c);
	return 0;
}

X2B_CHUNKED(x2b_alpn_cb, x2b_alpn_step, struct x2b_alpnctx, c->n)

/* Envoy's onALPN: a u16-prefixed list of u8-prefixed non-empty values, else no ALPN at all. */
static __always_inline void x2b_tls_alpn(struct x2b_req *req, struct x2b_hello *h)
{
	struct x2b_alpnctx c = { .req = req, .h = h };
	__u32 list;

	if (!h->alpn_off || h->alpn_ext_len < 2)
		return;
	list = x2b_u16(req, h->alpn_off);
	if (list + 2 != h->alpn_ext_len || list < 2)
		return;
	c.off = h->alpn_off + 2;
	c.n = list;
	bpf_loop(x2b_chunks(list), x2b_alpn_cb, &c, 0);
	if (c.bad || c.left)
		h->nalpn = 0;
}

/*
 * BoringSSL's server_name: one host_name entry, 1..255 bytes, no NUL; anything
 * else fails the handshake, and the TLS inspector then reports raw_buffer.
 */
static __always_inline int x2b_tls_sni(struct x2b_req *req, struct x2b_hello *h)
{
	struct x2b_snictx c = { .req = req, .h = h, .hash = X2B_FNV_INIT };
	__u32 list, n;

	if (!h->sni_off)
		return 0;
	if (h->sni_ext_len < 5)
		return -1;
	list = x2b_u16(req, h->sni_off);
	n = x2b_u16(req, h->sni_off + 3);
	if (list + 2 != h->sni_ext_len || x2b_u8(req, h->sni_off + 2) != 0 || n + 3 != list || !n ||
	    n > X2B_TLS_SNI_MAX)
		return -1;
	c.off = h->sni_off + 5;
	c.n = n;
	bpf_loop(x2b_chunks(n), x2b_sni_cb, &c, 0);
	if (h->bad)
		return -1;
	h->sni.hash = c.hash;
	h->sni.len = n;
	h->sni_len = n;
	return 0;
}

/* The ClientHello body: version, random, session id, cipher suites, compression, extensions. */
static __always_inline int x2b_tls_body(struct x2b_req *req, struct x2b_hello *h, __u32 end)
{
	__u32 p = 4 + 2 + 32, n;

	if (p + 1 > end)
		return -1;
	n = x2b_u8(req, p);
	if (n > 32)
		return -1;
	p += 1 + n;
	if (p + 2 > end)
		return -1;
	n = x2b_u16(req, p);
	if (n < 2 || (n & 1))
		return -1;
	p += 2 + n;
	if (p + 1 > end)
		return -1;
	n = x2b_u8(req, p);
	if (n < 1)
		return -1;
	p += 1 + n;
	if (p == end) /* no extensions */
		return 0;
	if (p + 2 > end)
		return -1;
	n = x2b_u16(req, p);
	if (p + 2 + n != end)
		return -1;
	h->ext_off = p + 2;
	h->ext_end = end;
	return 0;
}

/* Parses the captured head into h (the per-CPU x2b_tlsh entry); h->state says what it is. */
static __noinline int x2b_tls_parse(struct x2b_req *req, struct x2b_hello *h)
{
	struct x2b_recctx r = { .req = req };
	struct x2b_extctx e = { .req = req };
	__u32 mlen;

	if (!h || !req)
		return -1;
	__builtin_memset(h, 0, sizeof(*h));
	h->state = X2B_TLS_RAW;
	r.n = req->len > X2B_HEAD_MAX ? X2B_HEAD_MAX : req->len;
	if (!r.n)
		return 0;
	if (x2b_head(req, 0) != 0x16) /* BoringSSL: not a handshake record */
		return 0;
	h->state = X2B_TLS_PARTIAL;
	if (r.n < 5)
		return 0;
	if (x2b_head(req, 1) != 0x03) { /* a record version BoringSSL refuses */
		h->state = X2B_TLS_RAW;
		return 0;
	}
	bpf_loop(x2b_chunks(r.n), x2b_rec_cb, &r, 0);
	h->hs_len = r.out;
	if (h->hs_len < 4)
		return 0;
	if (x2b_head(req, 0) != 1) { /* not a ClientHello */
		h->state = X2B_TLS_RAW;
		return 0;
	}
	mlen = ((__u32)x2b_head(req, 1) << 16) | ((__u32)x2b_head(req, 2) << 8) | x2b_head(req, 3);
	if (mlen + 4 > h->hs_len)
		return 0; /* cut short: the rest did not fit in the head (or never came) */
	h->state = X2B_TLS_RAW;
	if (x2b_tls_body(req, h, mlen + 4) < 0)
		return 0;
	if (h->ext_off) {
		e.h = h;
		e.off = h->ext_off;
		bpf_loop(X2B_TLS_MAX_EXTS + 1, x2b_ext_cb, &e, 0);
		if (h->bad)
			return 0;
		if (!e.done) { /* more extensions than walked: not judged, refused */
			h->state = X2B_TLS_PARTIAL;
			return 0;
		}
	}
	if (x2b_tls_sni(req, h) < 0)
		return 0;
	if (h->nsfx > X2B_TLS_MAX_KEYS) { /* wildcard keys lost: not judged, refused */
		h->state = X2B_TLS_PARTIAL;
		return 0;
	}
	x2b_tls_alpn(req, h);
	h->state = X2B_TLS_HELLO;
	return 0;
}

/* The generated chooser: the group of table `table` a server-name key selects. */
static __always_inline __u32 x2b_tls_group(__u32 table, __u32 len, __u64 hash);
/* The generated chooser: a group's action for the hello (X2B_TLS_NOMATCH: no chain). */
static __always_inline __u32 x2b_tls_leaf(__u32 group, const struct x2b_hello *h);
/* The generated chooser: the group without server names and the default chain's action. */
static __always_inline __u32 x2b_tls_catchall(__u32 table);
static __always_inline __u32 x2b_tls_default(__u32 table);

struct x2b_keyctx {
	const struct x2b_hello *h;
	__u32 table;
	__u32 group;
};

/* Wildcard keys, longest first: sfx[] holds them shortest first. */
static long x2b_key_cb(__u64 i, void *data)
{
	struct x2b_keyctx *c = data;
	const struct x2b_tls_key *k;

	if (i >= c->h->nsfx)
		return 1;
	k = &c->h->sfx[(c->h->nsfx - 1 - (__u32)i) & (X2B_TLS_MAX_KEYS - 1)];
	c->group = x2b_tls_group(c->table, k->len, k->hash);
	return c->group != X2B_TLS_NOMATCH;
}

/*
 * Envoy's filter-chain levels past the destination: server name (exact, then
 * the longest wildcard, then chains without names), transport protocol, ALPN.
 * Returns the action id, or X2B_TLS_CLOSE (no chain and no default chain, a
 * ClientHello cut short: Envoy closes the connection).
 */
/* unused in the L4 variant (no module): its TLS rows refuse without reading bytes */
static __noinline __attribute__((unused)) __u32 x2b_tls_choose(struct x2b_req *req, __u32 table)
{
	__u32 zero = 0, a;
	struct x2b_hello *h = bpf_map_lookup_elem(&x2b_tlsh, &zero);
	struct x2b_keyctx k = { .table = table, .group = X2B_TLS_NOMATCH };

	if (!h || x2b_tls_parse(req, h) < 0 || h->state == X2B_TLS_PARTIAL)
		return X2B_TLS_CLOSE;
	if (h->state == X2B_TLS_HELLO && h->sni_len) {
		k.group = x2b_tls_group(table, h->sni.len, h->sni.hash);
		if (k.group == X2B_TLS_NOMATCH) {
			k.h = h;
			bpf_loop(X2B_TLS_MAX_KEYS, x2b_key_cb, &k, 0);
		}
	}
	if (k.group == X2B_TLS_NOMATCH)
		k.group = x2b_tls_catchall(table);
	a = k.group == X2B_TLS_NOMATCH ? X2B_TLS_NOMATCH : x2b_tls_leaf(k.group, h);
	if (a == X2B_TLS_NOMATCH)
		a = x2b_tls_default(table);
	return a == X2B_TLS_NOMATCH ? X2B_TLS_CLOSE : a;
}

#endif /* X2B_TLS_H */
