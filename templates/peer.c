/*
 * getpeername on a redirected socket reports the service address it dialled:
 * the socket's x2b_orig slot, if it still holds this socket's record (the
 * cookie is read before and after the copy: a slot being taken over by a much
 * newer socket is not used).
 */
static __always_inline int x2b_peer_record(struct bpf_sock_addr *ctx, __u8 family, struct x2b_sock *out)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct x2b_sock *st = x2b_orig_slot(cookie);

	if (!st || X2B_READ_ONCE(st->cookie) != cookie)
		return 0;
	x2b_barrier();
	__builtin_memcpy(out, st, sizeof(*out));
	x2b_barrier();
	return X2B_READ_ONCE(st->cookie) == cookie && out->family == family;
}

SEC("cgroup/getpeername4")
int x2b_peer4(struct bpf_sock_addr *ctx)
{
	struct x2b_sock st;

	if (x2b_peer_record(ctx, X2B_FAM_INET4, &st)) {
		ctx->user_ip4 = *(__u32 *)st.orig_addr;
		ctx->user_port = st.orig_port;
	}
	return 1;
}

SEC("cgroup/getpeername6")
int x2b_peer6(struct bpf_sock_addr *ctx)
{
	struct x2b_sock st;

	if (x2b_peer_record(ctx, X2B_FAM_INET6, &st)) {
		ctx->user_ip6[0] = *(__u32 *)&st.orig_addr[0];
		ctx->user_ip6[1] = *(__u32 *)&st.orig_addr[4];
		ctx->user_ip6[2] = *(__u32 *)&st.orig_addr[8];
		ctx->user_ip6[3] = *(__u32 *)&st.orig_addr[12];
		ctx->user_port = st.orig_port;
	}
	return 1;
}
