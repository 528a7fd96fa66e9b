/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * kfuncs of the defer-connect module (kernel/xds2bpf_defer.ko) for
 * cgroup/connect4 and cgroup/connect6 programs (Linux >= 6.12 with the module
 * loaded; other program types are refused by the module's kfunc filter).
 *
 * The connect program runs twice for a deferred connection:
 *
 *   1. at connect(): bpf_x2b_head() returns -ENOENT.  The program calls
 *      bpf_x2b_defer(ctx) for an HTTP listener and returns 1 without rewriting
 *      the destination; connect() then returns 0 with no SYN sent (as a TCP
 *      Fast Open deferred connect does).
 *   2. at the first send (once the request head is complete: CRLFCRLF, or
 *      X2B_HEAD_MAX bytes, or head_wait_ms without more data): bpf_x2b_head()
 *      copies the head, the program routes on it and rewrites
 *      user_ip4/user_ip6/user_port as for any connect; returning 0 fails the
 *      send with EPERM.  The module then connects there and sends the data
 *      unchanged.  bpf_x2b_defer() returns -EALREADY in this run.
 *
 * Declared __weak so that an object holding both the HTTP variant and the L4
 * fallback still opens on kernels without the module; a program that calls
 * them only loads where they resolve (the loader picks the variant).
 *
 *   int n = bpf_x2b_head(ctx, req->head, X2B_HEAD_MAX);   // buf: a map value
 *   if (n == -X2B_ENOENT) { bpf_x2b_defer(ctx); return 1; }
 *
 * The buffer must be initialised memory the program may write (a map value,
 * e.g. a per-CPU scratch entry: X2B_HEAD_MAX does not fit on the stack).
 * The context is passed as is: the kfuncs take struct bpf_sock_addr *, which
 * the verifier accepts as the program's context (checked on Debian's 6.12),
 * so no bpf_cast_to_kern_ctx() and no wrappers are needed; call them directly.
 */
#ifndef X2B_DEFER_H
#define X2B_DEFER_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Largest head the module collects; bytes past it are sent, not seen (x2b_abi.h agrees). */
#ifndef X2B_HEAD_MAX
#define X2B_HEAD_MAX 4096
#endif
_Static_assert(X2B_HEAD_MAX == 4096, "kernel/xds2bpf_defer.c collects 4096 bytes");

/* bpf_x2b_field() fields */
#define X2B_FIELD_METHOD	0
#define X2B_FIELD_PATH		1	/* :path, query included */
#define X2B_FIELD_HOST		2	/* :authority: Host, else an absolute-form target's */

#ifndef X2B_ENODATA
#define X2B_ENODATA		61
#endif

/* bpf_x2b_head_info() flags */
#define X2B_HEAD_COMPLETE	0x1	/* ends with CRLFCRLF */
#define X2B_HEAD_TRUNCATED	0x2	/* X2B_HEAD_MAX bytes without CRLFCRLF */
#define X2B_HEAD_SPLIT		0x4	/* arrived in more than one send */
#define X2B_HEAD_TIMEOUT	0x8	/* routed after head_wait_ms without more data */
#define X2B_HEAD_FASTOPEN	0x10	/* first send was sendto(MSG_FASTOPEN) */

#ifndef X2B_ENOENT
#define X2B_ENOENT		2
#endif

/* Mark this connecting TCP socket for deferral: 0 or -errno. */
extern int bpf_x2b_defer(struct bpf_sock_addr *ctx) __ksym __weak;
/* Re-run at first send: copy the head (up to buf__sz bytes); its length, or -ENOENT. */
extern int bpf_x2b_head(struct bpf_sock_addr *ctx, void *buf, __u32 buf__sz) __ksym __weak;
/* Re-run at first send: X2B_HEAD_* flags, or -ENOENT. */
extern int bpf_x2b_head_info(struct bpf_sock_addr *ctx) __ksym __weak;
/*
 * Re-run at first send, parsed by the module (no loop in BPF):
 * a request-line field, or a header's value by name (case-insensitive; every
 * occurrence joined with ",", as Envoy's header matchers see them; name__str
 * must be a constant string).  Return the full length (copies at most
 * buf__sz), -ENODATA when absent from the captured head, -ENOENT outside the
 * re-run.
 */
extern int bpf_x2b_field(struct bpf_sock_addr *ctx, __u32 field, void *buf, __u32 buf__sz) __ksym __weak;
extern int bpf_x2b_header(struct bpf_sock_addr *ctx, const char *name__str, void *buf,
			  __u32 buf__sz) __ksym __weak;

#endif /* X2B_DEFER_H */
