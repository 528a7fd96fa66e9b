// SPDX-License-Identifier: GPL-2.0-only
/*
 * xds2bpf_defer - defer TCP connect() until the first send, so that a cgroup
 * connect4/connect6 BPF program can route on the HTTP request head.
 *
 * A connect4/connect6 program marks a connecting TCP socket with the kfunc
 * bpf_x2b_defer().  The kfunc runs from the socket's pre_connect hook with the
 * socket locked; it swaps sk->sk_prot for a module copy of tcp_prot (or
 * tcpv6_prot), so the connect() in progress lands in x2b_connect(), which
 * records the destination and returns 0 as TCP Fast Open's deferred connect
 * does: no SYN, the socket sits in SYN_SENT with DEFER_CONNECT set.
 *
 * The first send collects the request head (up to X2B_HEAD_MAX bytes or the
 * end of the head, CRLFCRLF), runs the cgroup connect program again with the
 * head reachable through bpf_x2b_head(), connects to the address the program
 * chose and sends the data unchanged.  Sends that end before the head is
 * complete are buffered in the module and acknowledged; they reach TCP first
 * once the connection is made.
 *
 * Lifetime: the module installs itself as the socket's TCP ULP (icsk_ulp_ops)
 * when it marks a socket, with a module reference.  TCP drops that reference
 * in tcp_cleanup_ulp() when the socket is destroyed, after calling
 * x2b_ulp_release(), so the module cannot be unloaded while a socket it
 * touched exists.  sk->sk_prot is given back as soon as the socket is routed
 * (or closed, or disconnected).  Being the ULP also keeps sockmap (which
 * replaces sk_prot too) and other ULPs away from these sockets.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bpf.h>
#include <linux/bpf-cgroup.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/debugfs.h>
#include <linux/filter.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/workqueue.h>
#include <net/inet_connection_sock.h>
#include <net/sock.h>
#include <net/tcp.h>
#include <net/transp_v6.h>

/* X2B_HEAD_MAX, X2B_HEAD_* flags, X2B_FIELD_*: generated from the BPF side's headers. */
#include "xds2bpf_abi.h"

#define X2B_HCTX_MAGIC 0x78326268 /* "x2bh" */

static unsigned int head_wait_ms = 200;
module_param(head_wait_ms, uint, 0644);
MODULE_PARM_DESC(
	head_wait_ms,
	"Route an incomplete request head after this many ms without more data (default 200)");

enum x2b_phase {
	X2B_ARMED,    /* marked by the program, connect() not seen yet */
	X2B_DEFERRED, /* connect() recorded, no SYN, collecting the head */
	X2B_FLUSH,    /* connecting; buffered head bytes not yet given to TCP */
	X2B_DONE,     /* plain TCP socket again */
	X2B_DEAD,     /* socket destroyed */
};

/*
 * What the module keeps per deferred socket (its ULP data). Not the ABI's
 * struct x2b_sock, which is the x2b_orig map value of the BPF programs.
 */
struct x2b_dsock {
	refcount_t refs; /* the socket's, plus one per queued work */
	struct sock *sk;
	struct proto *orig_prot;
	void (*orig_state_change)(struct sock *sk);
	struct delayed_work work;
	u8 phase;
	u8 flushing;	/* a sender is in tcp_sendmsg_locked() with the buffer */
	u8 hooked;	/* sk_state_change is x2b_state_change */
	u32 flags;	/* X2B_HEAD_* */
	u32 len;	/* bytes in @head */
	u32 stash;	/* of those, bytes taken from the application */
	u32 stash_sent; /* of those, bytes already given to TCP */
	int addrlen;
	union {
		struct sockaddr sa;
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} dst;
	char *head;
};

/* What the re-run of the connect program finds in bpf_sock_addr_kern.t_ctx. */
struct x2b_hctx {
	u32 magic;
	u32 len;
	u32 flags;
	const char *buf;
};

static struct {
	atomic_long_t armed;
	atomic_long_t deferred;
	atomic_long_t routed;
	atomic_long_t split;
	atomic_long_t truncated;
	atomic_long_t timeouts;
	atomic_long_t fastopen;
	atomic_long_t route_errors;
	atomic_long_t closed_deferred;
	atomic_long_t live;
} x2b_stats;

static struct proto x2b_tcp_prot;
#if IS_ENABLED(CONFIG_IPV6)
static struct proto x2b_tcpv6_prot;
#endif
static struct workqueue_struct *x2b_wq;
static struct dentry *x2b_debugfs;
static struct tcp_ulp_ops x2b_ulp_ops;

static struct x2b_dsock *x2b_sk(const struct sock *sk)
{
	const struct inet_connection_sock *icsk = inet_csk(sk);

	if (READ_ONCE(icsk->icsk_ulp_ops) != &x2b_ulp_ops)
		return NULL;
	return (__force struct x2b_dsock *)icsk->icsk_ulp_data;
}

static struct proto *x2b_prot_for(const struct sock *sk)
{
	if (sk->sk_prot == &tcp_prot)
		return &x2b_tcp_prot;
#if IS_ENABLED(CONFIG_IPV6)
	if (sk->sk_prot == &tcpv6_prot)
		return &x2b_tcpv6_prot;
#endif
	return NULL;
}

static void x2b_put(struct x2b_dsock *st)
{
	if (refcount_dec_and_test(&st->refs)) {
		kfree(st->head);
		kfree(st);
		atomic_long_dec(&x2b_stats.live);
	}
}

/* Drops the references a queued work item held. */
static void x2b_work_put(struct x2b_dsock *st)
{
	struct sock *sk = st->sk;

	x2b_put(st);
	sock_put(sk);
}

/* Queues the work after @delay jiffies, or moves an already queued one. */
static void x2b_queue(struct x2b_dsock *st, unsigned long delay)
{
	sock_hold(st->sk);
	refcount_inc(&st->refs);
	if (mod_delayed_work(x2b_wq, &st->work, delay))
		x2b_work_put(st); /* was pending: it holds its own references */
}

static void x2b_wake(struct sock *sk)
{
	struct socket_wq *wq;

	rcu_read_lock();
	wq = rcu_dereference(sk->sk_wq);
	if (skwq_has_sleeper(wq))
		wake_up_interruptible_all(&wq->wait);
	rcu_read_unlock();
}

static void x2b_drop_head(struct x2b_dsock *st)
{
	kfree(st->head);
	st->head = NULL;
	st->len = 0;
	st->stash = 0;
	st->stash_sent = 0;
}

/*
 * Gives the socket back to TCP: original proto and state_change callback,
 * no pending work, no buffer.  Idempotent.  Socket locked (or being destroyed).
 */
static void x2b_finish(struct sock *sk, struct x2b_dsock *st)
{
	if (st->phase >= X2B_DONE)
		return;
	if (st->hooked) {
		write_lock_bh(&sk->sk_callback_lock);
		WRITE_ONCE(sk->sk_state_change, st->orig_state_change);
		write_unlock_bh(&sk->sk_callback_lock);
		st->hooked = 0;
	}
	WRITE_ONCE(sk->sk_prot, st->orig_prot);
	st->phase = X2B_DONE;
	if (cancel_delayed_work(&st->work))
		x2b_work_put(st);
	if (!st->flushing)
		x2b_drop_head(st);
}

static void x2b_state_change(struct sock *sk)
{
	struct x2b_dsock *st = x2b_sk(sk);

	if (!st)
		return;
	st->orig_state_change(sk);
	if (READ_ONCE(st->phase) == X2B_FLUSH &&
	    !((1 << sk->sk_state) & (TCPF_SYN_SENT | TCPF_SYN_RECV)))
		x2b_queue(st, 0);
}

static void x2b_hook(struct sock *sk, struct x2b_dsock *st)
{
	if (st->hooked)
		return;
	write_lock_bh(&sk->sk_callback_lock);
	st->orig_state_change = sk->sk_state_change;
	WRITE_ONCE(sk->sk_state_change, x2b_state_change);
	write_unlock_bh(&sk->sk_callback_lock);
	st->hooked = 1;
}

static bool x2b_head_end(const char *p, u32 from, u32 to)
{
	u32 i;

	for (i = from; i + 4 <= to; i++)
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
			return true;
	return false;
}

/*
 * A TLS ClientHello is all a listener routed on it needs: the head is
 * complete once the first handshake message (which may span several
 * handshake records) is.  Walks the records from the start each time; the
 * head is at most X2B_HEAD_MAX bytes.
 */
static bool x2b_tls_end(const u8 *p, u32 n)
{
	u32 off = 0, got = 0, mlen = 0;

	while (off + 5 <= n) {
		u32 rlen = ((u32)p[off + 3] << 8) | p[off + 4];
		u32 end;

		if (p[off] != 0x16)
			return true; /* not a handshake record: nothing more will help */
		off += 5;
		end = min(off + rlen, n);
		for (; off < end; off++, got++) {
			if (got >= 1 && got <= 3)
				mlen = (mlen << 8) | p[off]; /* the handshake header's length */
			if (got >= 3 && got + 1 >= 4 + mlen)
				return true;
		}
	}
	return false;
}

/*
 * Copies the start of @msg after the bytes already collected, without
 * consuming it.  Returns the number of bytes copied or -errno.
 */
static long x2b_head_peek(struct x2b_dsock *st, struct msghdr *msg, size_t size, gfp_t gfp)
{
	struct iov_iter it;
	size_t want, got;
	u32 from;

	if (!st->head) {
		st->head = kmalloc(X2B_HEAD_MAX, gfp);
		if (!st->head)
			return -ENOBUFS;
	}
	want = min_t(size_t, size, X2B_HEAD_MAX - st->len);
	it = msg->msg_iter;
	got = copy_from_iter(st->head + st->len, want, &it);
	if (want && !got)
		return -EFAULT;
	from = st->len > 3 ? st->len - 3 : 0;
	st->len += got;
	if (x2b_head_end(st->head, from, st->len) ||
	    ((u8)st->head[0] == 0x16 && x2b_tls_end((const u8 *)st->head, st->len)))
		st->flags |= X2B_HEAD_COMPLETE;
	else if (st->len == X2B_HEAD_MAX)
		st->flags |= X2B_HEAD_TRUNCATED;
	return got;
}

/*
 * Runs the cgroup connect program again with the head in t_ctx, then connects
 * to the address it left.  Socket locked, DEFER_CONNECT cleared on return.
 */
static int x2b_route(struct sock *sk, struct x2b_dsock *st)
{
	struct x2b_hctx hc = {
		.magic = X2B_HCTX_MAGIC,
		.len = st->len,
		.flags = st->flags | (st->stash ? X2B_HEAD_SPLIT : 0),
		.buf = st->head,
	};
	struct sockaddr_storage addr = {};
	int addrlen = st->addrlen;
	enum cgroup_bpf_attach_type atype;
	int err;

	atype = sk->sk_family == AF_INET6 ? CGROUP_INET6_CONNECT : CGROUP_INET4_CONNECT;
	memcpy(&addr, &st->dst, st->addrlen);
	inet_clear_bit(DEFER_CONNECT, sk);
	if (sk->sk_state == TCP_SYN_SENT)
		inet_sk_set_state(sk, TCP_CLOSE); /* leave the deferred state */
	if (hc.flags & X2B_HEAD_TRUNCATED)
		atomic_long_inc(&x2b_stats.truncated);
	if (hc.flags & X2B_HEAD_SPLIT)
		atomic_long_inc(&x2b_stats.split);

	err = __cgroup_bpf_run_filter_sock_addr(sk, (struct sockaddr *)&addr, &addrlen, atype, &hc,
						NULL);
	if (!err)
		err = st->orig_prot->connect(sk, (struct sockaddr *)&addr, addrlen);
	if (err)
		atomic_long_inc(&x2b_stats.route_errors);
	else
		atomic_long_inc(&x2b_stats.routed);
	return err;
}

/* The connect failed outside a system call: report it on the socket. */
static void x2b_fail(struct sock *sk, struct x2b_dsock *st, int err)
{
	if (sk->sk_state != TCP_CLOSE)
		tcp_set_state(sk, TCP_CLOSE);
	WRITE_ONCE(sk->sk_err, -err);
	x2b_finish(sk, st);
	sk_error_report(sk);
}

/* Another sender is flushing the buffer with the socket lock released. */
static int x2b_wait_flushing(struct sock *sk, struct x2b_dsock *st, int flags)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	long timeo = sock_sndtimeo(sk, flags & MSG_DONTWAIT);
	int err = 0;

	add_wait_queue(sk_sleep(sk), &wait);
	while (st->flushing) {
		if (!timeo) {
			err = -EAGAIN;
			break;
		}
		if (signal_pending(current)) {
			err = sock_intr_errno(timeo);
			break;
		}
		sk_wait_event(sk, &timeo, !st->flushing, &wait);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	return err;
}

/*
 * Gives the buffered head bytes to TCP.  Returns 0 when none remain (all in
 * TCP, or the socket was given back meanwhile), -EAGAIN (or -EINTR,
 * -ERESTARTSYS) when some remain, or a hard error (the socket is then given
 * back to TCP and the buffer dropped).
 */
static int x2b_flush(struct sock *sk, struct x2b_dsock *st, int flags)
{
	struct msghdr m = {};
	struct kvec kv;
	int ret;

	while (st->phase == X2B_FLUSH && st->stash_sent < st->stash) {
		if (st->flushing) {
			ret = x2b_wait_flushing(sk, st, flags);
			if (ret)
				return ret;
			continue;
		}
		kv.iov_base = st->head + st->stash_sent;
		kv.iov_len = st->stash - st->stash_sent;
		m.msg_flags = flags & (MSG_DONTWAIT | MSG_NOSIGNAL);
		iov_iter_kvec(&m.msg_iter, ITER_SOURCE, &kv, 1, kv.iov_len);
		st->flushing = 1;
		ret = tcp_sendmsg_locked(sk, &m, kv.iov_len);
		st->flushing = 0;
		x2b_wake(sk);
		if (st->phase != X2B_FLUSH) {
			/* given back (disconnect) while we slept: the buffer is ours to free */
			x2b_drop_head(st);
			return ret < 0 ? ret : 0;
		}
		if (ret > 0) {
			st->stash_sent += ret;
			continue;
		}
		/* EINPROGRESS: Fast Open (TCP_FASTOPEN_CONNECT) sent a bare SYN */
		if (ret == 0 || ret == -EAGAIN || ret == -EINPROGRESS)
			return -EAGAIN;
		if (ret == -EINTR || ret == -ERESTARTSYS)
			return ret;
		x2b_finish(sk, st);
		return ret;
	}
	return 0;
}

static int x2b_send_deferred(struct sock *sk, struct x2b_dsock *st, struct msghdr *msg, size_t size)
{
	long got;
	int err;

	if (!size)
		return 0;
	got = x2b_head_peek(st, msg, size, sk->sk_allocation);
	if (got < 0)
		return got;
	if (!(st->flags & (X2B_HEAD_COMPLETE | X2B_HEAD_TRUNCATED)) &&
	    !(msg->msg_flags & (MSG_OOB | MSG_ZEROCOPY))) {
		/* Part of a head: keep it and wait for the rest. */
		iov_iter_advance(&msg->msg_iter, got);
		st->stash = st->len;
		x2b_queue(st, msecs_to_jiffies(head_wait_ms));
		return got;
	}

	err = x2b_route(sk, st);
	st->len = st->stash; /* the bytes peeked from @msg stay in @msg */
	if (err) {
		x2b_finish(sk, st);
		return err;
	}
	if (st->stash) {
		st->phase = X2B_FLUSH;
		x2b_hook(sk, st);
		err = x2b_flush(sk, st, msg->msg_flags);
		if (err)
			return err;
	}
	x2b_finish(sk, st);
	return tcp_sendmsg_locked(sk, msg, size);
}

static int x2b_sendmsg(struct sock *sk, struct msghdr *msg, size_t size)
{
	struct x2b_dsock *st;
	int ret;

	lock_sock(sk);
	st = x2b_sk(sk);
	if (st && (st->phase == X2B_DEFERRED || st->phase == X2B_FLUSH)) {
		/* connect() already happened: MSG_FASTOPEN has nothing left to do */
		msg->msg_flags &= ~MSG_FASTOPEN;
		if (st->phase == X2B_DEFERRED) {
			ret = x2b_send_deferred(sk, st, msg, size);
		} else {
			ret = x2b_flush(sk, st, msg->msg_flags);
			if (!ret) {
				x2b_finish(sk, st);
				ret = tcp_sendmsg_locked(sk, msg, size);
			}
		}
	} else {
		ret = tcp_sendmsg_locked(sk, msg, size);
	}
	release_sock(sk);
	return ret;
}

static int x2b_save_dst(struct sock *sk, struct x2b_dsock *st, struct sockaddr *uaddr, int addr_len)
{
	memset(&st->dst, 0, sizeof(st->dst));
	if (sk->sk_family == AF_INET6) {
		if (addr_len < SIN6_LEN_RFC2133)
			return -EINVAL;
		if (uaddr->sa_family != AF_INET6)
			return -EAFNOSUPPORT;
		st->addrlen = min_t(int, addr_len, sizeof(st->dst.v6));
	} else {
		if (addr_len < sizeof(struct sockaddr_in))
			return -EINVAL;
		if (uaddr->sa_family != AF_INET)
			return -EAFNOSUPPORT;
		st->addrlen = sizeof(st->dst.v4);
	}
	memcpy(&st->dst, uaddr, st->addrlen);
	return 0;
}

static int x2b_connect(struct sock *sk, struct sockaddr *uaddr, int addr_len)
{
	struct x2b_dsock *st = x2b_sk(sk);
	struct tcp_fastopen_request *fo = tcp_sk(sk)->fastopen_req;
	struct proto *orig;
	long got;
	int err;

	if (!st) /* cannot happen: our proto implies our ULP */
		return -EINVAL;
	orig = st->orig_prot;
	if (st->phase != X2B_ARMED) {
		x2b_finish(sk, st);
		return orig->connect(sk, uaddr, addr_len);
	}
	err = x2b_save_dst(sk, st, uaddr, addr_len);
	if (err) {
		x2b_finish(sk, st);
		return err;
	}

	if (fo && fo->data) {
		/*
		 * sendto(MSG_FASTOPEN) without connect(): the data is already
		 * here, route at once and let TCP do its Fast Open.
		 */
		got = x2b_head_peek(st, fo->data, fo->size, sk->sk_allocation);
		if (got < 0) {
			x2b_finish(sk, st);
			return got;
		}
		st->flags |= X2B_HEAD_FASTOPEN;
		atomic_long_inc(&x2b_stats.fastopen);
		err = x2b_route(sk, st);
		x2b_finish(sk, st);
		return err;
	}

	inet_sk_set_state(sk, TCP_SYN_SENT);
	inet_set_bit(DEFER_CONNECT, sk);
	st->phase = X2B_DEFERRED;
	atomic_long_inc(&x2b_stats.deferred);
	return 0;
}

static int x2b_disconnect(struct sock *sk, int flags)
{
	struct x2b_dsock *st = x2b_sk(sk);

	if (st)
		x2b_finish(sk, st);
	return tcp_disconnect(sk, flags);
}

static void x2b_close(struct sock *sk, long timeout)
{
	struct x2b_dsock *st = x2b_sk(sk);
	/* clang-format off: clang-format 14 reads this declaration as a multiplication */
	void (*orig_close)(struct sock * sk, long timeout) = tcp_close;
	/* clang-format on */

	if (st) {
		orig_close = st->orig_prot->close;
		if (cancel_delayed_work_sync(&st->work))
			x2b_work_put(st);
		lock_sock(sk);
		if (st->phase == X2B_DEFERRED)
			atomic_long_inc(&x2b_stats.closed_deferred);
		if (st->phase == X2B_FLUSH &&
		    ((1 << sk->sk_state) & (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT)))
			x2b_flush(sk, st, MSG_DONTWAIT | MSG_NOSIGNAL);
		x2b_finish(sk, st);
		release_sock(sk);
	}
	/*
	 * Last call: the socket may be destroyed in there, which drops the
	 * module reference (tcp_cleanup_ulp), so nothing follows it.
	 */
	orig_close(sk, timeout);
}

static void x2b_work_fn(struct work_struct *work)
{
	struct x2b_dsock *st = container_of(to_delayed_work(work), struct x2b_dsock, work);
	struct sock *sk = st->sk;
	int err;

	lock_sock(sk);
	if (st->phase == X2B_DEFERRED && st->stash) {
		/* The rest of the head did not come: route on what is there. */
		atomic_long_inc(&x2b_stats.timeouts);
		st->flags |= X2B_HEAD_TIMEOUT;
		err = x2b_route(sk, st);
		if (err) {
			x2b_fail(sk, st, err);
		} else {
			st->phase = X2B_FLUSH;
			x2b_hook(sk, st);
		}
	}
	if (st->phase == X2B_FLUSH && !st->flushing) {
		if ((1 << sk->sk_state) & (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT)) {
			err = x2b_flush(sk, st, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (!err)
				x2b_finish(sk, st);
			else if (st->phase == X2B_FLUSH)
				x2b_queue(st, msecs_to_jiffies(10)); /* no room yet: retry */
		} else if (sk->sk_state == TCP_CLOSE) {
			/* connect failed: TCP reports it; the buffer goes */
			x2b_finish(sk, st);
		}
	}
	release_sock(sk);
	x2b_work_put(st);
}

/* --- request head parsing for the field and header kfuncs --- */

struct x2b_span {
	u32 off;
	u32 len;
};

/* End of the line starting at @i (index of '\n'), or false if it is incomplete. */
static bool x2b_eol(const char *p, u32 n, u32 i, u32 *nl)
{
	const char *q = memchr(p + i, '\n', n - i);

	if (!q)
		return false;
	*nl = q - p;
	return true;
}

static u32 x2b_trim_end(const char *p, u32 from, u32 to)
{
	while (to > from && (p[to - 1] == '\r' || p[to - 1] == ' ' || p[to - 1] == '\t'))
		to--;
	return to;
}

/* Request line: method and request-target; *hdrs = start of the header lines. */
static bool x2b_request_line(const char *p, u32 n, struct x2b_span *method, struct x2b_span *target,
			     u32 *hdrs)
{
	u32 i = 0, nl, end, sp1, sp2;

	while (i + 1 < n && p[i] == '\r' && p[i + 1] == '\n')
		i += 2; /* RFC 9112 2.2: empty lines before the request line */
	if (!x2b_eol(p, n, i, &nl))
		return false;
	end = x2b_trim_end(p, i, nl);
	for (sp1 = i; sp1 < end && p[sp1] != ' '; sp1++)
		;
	for (sp2 = sp1 + 1; sp2 < end && p[sp2] != ' '; sp2++)
		;
	if (sp1 >= end || sp2 <= sp1 + 1)
		return false;
	method->off = i;
	method->len = sp1 - i;
	target->off = sp1 + 1;
	target->len = sp2 - sp1 - 1;
	*hdrs = nl + 1;
	return true;
}

/*
 * Next complete header line from *pos: name and value (without surrounding
 * whitespace).  False at the end of the head or of the captured bytes.
 */
static bool x2b_next_header(const char *p, u32 n, u32 *pos, struct x2b_span *name,
			    struct x2b_span *val)
{
	u32 i = *pos, nl, end, colon, v;

	if (i >= n || !x2b_eol(p, n, i, &nl))
		return false;
	end = x2b_trim_end(p, i, nl);
	if (end == i)
		return false; /* the empty line */
	*pos = nl + 1;
	for (colon = i; colon < end && p[colon] != ':'; colon++)
		;
	if (colon == end) { /* not a header: skip it */
		name->len = 0;
		val->len = 0;
		return true;
	}
	for (v = colon + 1; v < end && (p[v] == ' ' || p[v] == '\t'); v++)
		;
	name->off = i;
	name->len = colon - i;
	val->off = v;
	val->len = end - v;
	return true;
}

/* Copies @len bytes at @off of the head into @buf at @at, within @size. */
static void x2b_put_bytes(void *buf, u32 size, u32 at, const char *src, u32 len)
{
	if (at >= size)
		return;
	memcpy((char *)buf + at, src, min(len, size - at));
}

/* Host header, or the authority of an absolute-form target; path accordingly. */
static bool x2b_authority(const char *p, u32 n, struct x2b_span *target, struct x2b_span *host,
			  struct x2b_span *path, u32 hdrs)
{
	struct x2b_span name, val;
	u32 pos = hdrs, a, e, end = target->off + target->len;
	bool found = false;

	*path = *target;
	host->len = 0;
	/* absolute-form: scheme "://" authority [path] */
	for (a = target->off; a + 2 < end; a++) {
		if (p[a] == '/')
			break;
		if (p[a] == ':' && p[a + 1] == '/' && p[a + 2] == '/') {
			a += 3;
			for (e = a; e < end && p[e] != '/' && p[e] != '?'; e++)
				;
			host->off = a;
			host->len = e - a;
			path->off = e;
			path->len = end - e;
			found = true;
			break;
		}
	}
	while (x2b_next_header(p, n, &pos, &name, &val)) {
		if (name.len == 4 && !strncasecmp(p + name.off, "host", 4)) {
			if (!found)
				*host = val;
			return true;
		}
	}
	return found;
}

/* --- ULP: holds the module reference and the per-socket state --- */

static int x2b_ulp_init(struct sock *sk)
{
	/* Only bpf_x2b_defer() attaches this ULP, never setsockopt(TCP_ULP). */
	return -EOPNOTSUPP;
}

static void x2b_ulp_release(struct sock *sk)
{
	struct x2b_dsock *st = x2b_sk(sk);

	if (!st)
		return;
	x2b_finish(sk, st);
	st->phase = X2B_DEAD;
	rcu_assign_pointer(inet_csk(sk)->icsk_ulp_data, NULL);
	x2b_put(st);
}

static struct tcp_ulp_ops x2b_ulp_ops __read_mostly = {
	.name = "x2b_defer",
	.owner = THIS_MODULE,
	.init = x2b_ulp_init,
	.release = x2b_ulp_release,
};

/* --- kfuncs for cgroup connect4/connect6 programs --- */

__bpf_kfunc_start_defs();

/**
 * bpf_x2b_defer - defer this TCP connect() until the first send
 * @ctx: the program's context
 *
 * Return: 0, -EALREADY in the re-run at first send (or if already marked),
 * -EOPNOTSUPP for sockets it does not handle (not TCP, kernel sockets, sockets
 * whose proto was already replaced), -EBUSY when another ULP is attached,
 * -ENOMEM.
 */
__bpf_kfunc int bpf_x2b_defer(struct bpf_sock_addr *ctx)
{
	struct bpf_sock_addr_kern *sa = (struct bpf_sock_addr_kern *)ctx;
	struct sock *sk = sa->sk;
	struct inet_connection_sock *icsk;
	struct x2b_dsock *st;
	struct proto *prot;

	if (sa->t_ctx)
		return -EALREADY;
	if (!sk || !sk_fullsock(sk) || sk->sk_type != SOCK_STREAM ||
	    sk->sk_protocol != IPPROTO_TCP || sk->sk_kern_sock || !sk->sk_socket)
		return -EOPNOTSUPP;
	if (!sock_owned_by_user_nocheck(sk) || sk->sk_state != TCP_CLOSE ||
	    sk->sk_socket->state != SS_UNCONNECTED)
		return -EINVAL;
	icsk = inet_csk(sk);
	st = x2b_sk(sk);
	if (!st && icsk->icsk_ulp_ops)
		return -EBUSY;
	if (st && st->phase != X2B_DONE)
		return -EALREADY;
	prot = x2b_prot_for(sk);
	if (!prot)
		return -EOPNOTSUPP;

	if (!st) {
		st = kzalloc(sizeof(*st), GFP_ATOMIC);
		if (!st)
			return -ENOMEM;
		/* the calling program holds a reference: the module is live */
		if (!try_module_get(THIS_MODULE)) {
			kfree(st);
			return -ENODEV;
		}
		refcount_set(&st->refs, 1);
		st->sk = sk;
		INIT_DELAYED_WORK(&st->work, x2b_work_fn);
		atomic_long_inc(&x2b_stats.live);
		rcu_assign_pointer(icsk->icsk_ulp_data, st);
		WRITE_ONCE(icsk->icsk_ulp_ops, &x2b_ulp_ops);
	}
	st->flags = 0;
	st->orig_prot = sk->sk_prot;
	st->phase = X2B_ARMED;
	WRITE_ONCE(sk->sk_prot, prot);
	atomic_long_inc(&x2b_stats.armed);
	return 0;
}

/**
 * bpf_x2b_head - the request head, in the re-run at first send
 * @ctx: the program's context
 * @buf: where to copy it
 * @buf__sz: size of @buf
 *
 * Return: bytes copied (at most @buf__sz), or -ENOENT when this run is not the
 * re-run of a deferred connect.
 */
__bpf_kfunc int bpf_x2b_head(struct bpf_sock_addr *ctx, void *buf, u32 buf__sz)
{
	struct bpf_sock_addr_kern *sa = (struct bpf_sock_addr_kern *)ctx;
	const struct x2b_hctx *hc = sa->t_ctx;
	u32 n;

	if (!hc || hc->magic != X2B_HCTX_MAGIC)
		return -ENOENT;
	n = min(buf__sz, hc->len);
	if (n)
		memcpy(buf, hc->buf, n);
	return n;
}

/**
 * bpf_x2b_head_info - flags of the request head, in the re-run at first send
 * @ctx: the program's context
 *
 * Return: X2B_HEAD_* flags, or -ENOENT when this run is not the re-run of a
 * deferred connect.
 */
__bpf_kfunc int bpf_x2b_head_info(struct bpf_sock_addr *ctx)
{
	struct bpf_sock_addr_kern *sa = (struct bpf_sock_addr_kern *)ctx;
	const struct x2b_hctx *hc = sa->t_ctx;

	if (!hc || hc->magic != X2B_HCTX_MAGIC)
		return -ENOENT;
	return hc->flags;
}

/**
 * bpf_x2b_field - a field of the request line, in the re-run at first send
 * @ctx: the program's context
 * @field: X2B_FIELD_METHOD, X2B_FIELD_PATH (:path, with the query) or
 *         X2B_FIELD_HOST (:authority: the Host header, else the authority of
 *         an absolute-form request target)
 * @buf: where to copy it
 * @buf__sz: size of @buf
 *
 * Return: the field's length (bytes copied: at most @buf__sz), -ENODATA when
 * the captured head does not have it (complete), -EINVAL for an unknown
 * @field, -ENOENT when this run is not the re-run of a deferred connect.
 */
__bpf_kfunc int bpf_x2b_field(struct bpf_sock_addr *ctx, u32 field, void *buf, u32 buf__sz)
{
	struct bpf_sock_addr_kern *sa = (struct bpf_sock_addr_kern *)ctx;
	const struct x2b_hctx *hc = sa->t_ctx;
	struct x2b_span method, target, host, path, *f;
	u32 hdrs;

	if (!hc || hc->magic != X2B_HCTX_MAGIC)
		return -ENOENT;
	if (!x2b_request_line(hc->buf, hc->len, &method, &target, &hdrs))
		return -ENODATA;
	switch (field) {
	case X2B_FIELD_METHOD:
		f = &method;
		break;
	case X2B_FIELD_PATH:
	case X2B_FIELD_HOST:
		if (!x2b_authority(hc->buf, hc->len, &target, &host, &path, hdrs) &&
		    field == X2B_FIELD_HOST)
			return -ENODATA;
		f = field == X2B_FIELD_HOST ? &host : &path;
		if (field == X2B_FIELD_PATH && !path.len) {
			/* "http://host" with no path is "/" */
			x2b_put_bytes(buf, buf__sz, 0, "/", 1);
			return 1;
		}
		break;
	default:
		return -EINVAL;
	}
	x2b_put_bytes(buf, buf__sz, 0, hc->buf + f->off, f->len);
	return f->len;
}

/**
 * bpf_x2b_header - a request header by name, in the re-run at first send
 * @ctx: the program's context
 * @name__str: header name (a constant string), compared without case
 * @buf: where to copy the value
 * @buf__sz: size of @buf
 *
 * The values of every occurrence are joined with "," (as Envoy's header
 * matchers see them), without surrounding whitespace.  Only complete header
 * lines of the captured head count.
 *
 * Return: the value's length (bytes copied: at most @buf__sz), -ENODATA when
 * the header is absent, -ENOENT when this run is not the re-run of a deferred
 * connect.
 */
__bpf_kfunc int bpf_x2b_header(struct bpf_sock_addr *ctx, const char *name__str, void *buf,
			       u32 buf__sz)
{
	struct bpf_sock_addr_kern *sa = (struct bpf_sock_addr_kern *)ctx;
	const struct x2b_hctx *hc = sa->t_ctx;
	struct x2b_span method, target, name, val;
	u32 pos, nlen = strlen(name__str), total = 0;
	bool found = false;

	if (!hc || hc->magic != X2B_HCTX_MAGIC)
		return -ENOENT;
	if (!x2b_request_line(hc->buf, hc->len, &method, &target, &pos))
		return -ENODATA;
	while (x2b_next_header(hc->buf, hc->len, &pos, &name, &val)) {
		if (name.len != nlen || strncasecmp(hc->buf + name.off, name__str, nlen))
			continue;
		if (found)
			x2b_put_bytes(buf, buf__sz, total++, ",", 1);
		x2b_put_bytes(buf, buf__sz, total, hc->buf + val.off, val.len);
		total += val.len;
		found = true;
	}
	return found ? total : -ENODATA;
}

__bpf_kfunc_end_defs();

BTF_KFUNCS_START(x2b_kfunc_ids)
BTF_ID_FLAGS(func, bpf_x2b_defer)
BTF_ID_FLAGS(func, bpf_x2b_head)
BTF_ID_FLAGS(func, bpf_x2b_head_info)
BTF_ID_FLAGS(func, bpf_x2b_field)
BTF_ID_FLAGS(func, bpf_x2b_header)
BTF_KFUNCS_END(x2b_kfunc_ids)

/* The hook covers every cgroup program type: allow connect4/connect6 only. */
static int x2b_kfunc_filter(const struct bpf_prog *prog, u32 kfunc_id)
{
	u32 i;

	for (i = 0; i < x2b_kfunc_ids.cnt; i++) {
		if (x2b_kfunc_ids.pairs[i].id != kfunc_id)
			continue;
		if (prog->type == BPF_PROG_TYPE_CGROUP_SOCK_ADDR &&
		    (prog->expected_attach_type == BPF_CGROUP_INET4_CONNECT ||
		     prog->expected_attach_type == BPF_CGROUP_INET6_CONNECT))
			return 0;
		return -EACCES;
	}
	return 0;
}

static const struct btf_kfunc_id_set x2b_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &x2b_kfunc_ids,
	.filter = x2b_kfunc_filter,
};

/* --- setup --- */

static void x2b_init_prot(struct proto *p, const struct proto *base)
{
	*p = *base;
	p->connect = x2b_connect;
	p->disconnect = x2b_disconnect;
	p->sendmsg = x2b_sendmsg;
	p->close = x2b_close;
}

static int x2b_stats_show(struct seq_file *m, void *v)
{
	seq_printf(m, "armed %ld\n", atomic_long_read(&x2b_stats.armed));
	seq_printf(m, "deferred %ld\n", atomic_long_read(&x2b_stats.deferred));
	seq_printf(m, "routed %ld\n", atomic_long_read(&x2b_stats.routed));
	seq_printf(m, "split %ld\n", atomic_long_read(&x2b_stats.split));
	seq_printf(m, "truncated %ld\n", atomic_long_read(&x2b_stats.truncated));
	seq_printf(m, "timeouts %ld\n", atomic_long_read(&x2b_stats.timeouts));
	seq_printf(m, "fastopen %ld\n", atomic_long_read(&x2b_stats.fastopen));
	seq_printf(m, "route_errors %ld\n", atomic_long_read(&x2b_stats.route_errors));
	seq_printf(m, "closed_deferred %ld\n", atomic_long_read(&x2b_stats.closed_deferred));
	seq_printf(m, "live %ld\n", atomic_long_read(&x2b_stats.live));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(x2b_stats);

static int __init x2b_init(void)
{
	int err;

	x2b_init_prot(&x2b_tcp_prot, &tcp_prot);
#if IS_ENABLED(CONFIG_IPV6)
	x2b_init_prot(&x2b_tcpv6_prot, &tcpv6_prot);
#endif
	x2b_wq = alloc_workqueue("x2b_defer", WQ_UNBOUND, 0);
	if (!x2b_wq)
		return -ENOMEM;
	err = tcp_register_ulp(&x2b_ulp_ops);
	if (err)
		goto err_wq;
	err = register_btf_kfunc_id_set(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, &x2b_kfunc_set);
	if (err) {
		pr_err("cannot register kfuncs for cgroup sock_addr programs: %d\n", err);
		goto err_ulp;
	}
	x2b_debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("stats", 0444, x2b_debugfs, NULL, &x2b_stats_fops);
	pr_info("loaded (head max %d bytes, head wait %u ms)\n", X2B_HEAD_MAX, head_wait_ms);
	return 0;

err_ulp:
	tcp_unregister_ulp(&x2b_ulp_ops);
err_wq:
	destroy_workqueue(x2b_wq);
	return err;
}

static void __exit x2b_exit(void)
{
	/*
	 * No socket uses the module any more (each held a reference); kfunc
	 * sets go away with the module's BTF.
	 */
	debugfs_remove_recursive(x2b_debugfs);
	tcp_unregister_ulp(&x2b_ulp_ops);
	destroy_workqueue(x2b_wq); /* waits for a work item still returning */
	pr_info("unloaded\n");
}

module_init(x2b_init);
module_exit(x2b_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("xds2bpf: defer TCP connect() to the first send for HTTP routing in BPF");
MODULE_ALIAS_TCP_ULP("x2b_defer");
