/* getpeername on a redirected socket reports the service address it dialled. */
SEC("cgroup/getpeername4")
int x2b_peer4(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct x2b_sock *st = bpf_map_lookup_elem(&x2b_orig, &cookie);

	if (st && st->family == X2B_FAM_INET4) {
		ctx->user_ip4 = *(__u32 *)st->orig_addr;
		ctx->user_port = st->orig_port;
	}
	return 1;
}

SEC("cgroup/getpeername6")
int x2b_peer6(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct x2b_sock *st = bpf_map_lookup_elem(&x2b_orig, &cookie);

	if (st && st->family == X2B_FAM_INET6) {
		ctx->user_ip6[0] = *(__u32 *)&st->orig_addr[0];
		ctx->user_ip6[1] = *(__u32 *)&st->orig_addr[4];
		ctx->user_ip6[2] = *(__u32 *)&st->orig_addr[8];
		ctx->user_ip6[3] = *(__u32 *)&st->orig_addr[12];
		ctx->user_port = st->orig_port;
	}
	return 1;
}
