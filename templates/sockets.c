/* getpeername on a redirected socket reports the service address it dialled. */
SEC("cgroup/getpeername4")
int x2b_peer4(struct bpf_sock_addr *ctx)
{
	struct x2b_sock *st;

	if (!ctx->sk)
		return 1;
	st = bpf_sk_storage_get(&x2b_sk, ctx->sk, 0, 0);
	if (st && (st->flags & X2B_SK_REDIRECTED) && st->family == X2B_FAM_INET4) {
		ctx->user_ip4 = *(__u32 *)st->orig_addr;
		ctx->user_port = st->orig_port;
	}
	return 1;
}

SEC("cgroup/getpeername6")
int x2b_peer6(struct bpf_sock_addr *ctx)
{
	struct x2b_sock *st;

	if (!ctx->sk)
		return 1;
	st = bpf_sk_storage_get(&x2b_sk, ctx->sk, 0, 0);
	if (st && (st->flags & X2B_SK_REDIRECTED) && st->family == X2B_FAM_INET6) {
		ctx->user_ip6[0] = *(__u32 *)&st->orig_addr[0];
		ctx->user_ip6[1] = *(__u32 *)&st->orig_addr[4];
		ctx->user_ip6[2] = *(__u32 *)&st->orig_addr[8];
		ctx->user_ip6[3] = *(__u32 *)&st->orig_addr[12];
		ctx->user_port = st->orig_port;
	}
	return 1;
}

/*
 * Active connections per endpoint for least-request clusters: counted when the
 * redirected socket starts its handshake, released when it closes.
 */
SEC("sockops")
int x2b_sockops(struct bpf_sock_ops *skops)
{
	struct x2b_sock *st;
	__u32 *active;
	__u32 ep;

	if (!skops->sk)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		st = bpf_sk_storage_get(&x2b_sk, skops->sk, 0, 0);
		if (!st || !(st->flags & X2B_SK_REDIRECTED) || (st->flags & X2B_SK_COUNTED))
			return 1;
		ep = st->endpoint;
		active = bpf_map_lookup_elem(&x2b_active, &ep);
		if (!active)
			return 1;
		__sync_fetch_and_add(active, 1);
		st->flags |= X2B_SK_COUNTED;
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] != BPF_TCP_CLOSE)
			return 1;
		st = bpf_sk_storage_get(&x2b_sk, skops->sk, 0, 0);
		if (!st || !(st->flags & X2B_SK_COUNTED))
			return 1;
		ep = st->endpoint;
		active = bpf_map_lookup_elem(&x2b_active, &ep);
		if (active)
			__sync_fetch_and_sub(active, 1);
		st->flags &= ~X2B_SK_COUNTED;
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
