/*
 * Active connections per endpoint address for least-request clusters: counted
 * when a connection to one of their endpoints starts its handshake, released
 * when it closes. Only bundles with least-request clusters have this program.
 */
static __always_inline struct x2b_epkey x2b_sockops_key(struct bpf_sock_ops *skops)
{
	/* Every ctx field read unconditionally, at its own offset: the verifier
	 * refuses ctx accesses through a pointer the compiler has moved. */
#define X2B_CTX(f) (*(volatile __u32 *)&skops->f)
	__u32 family = X2B_CTX(family), port = X2B_CTX(remote_port), ip4 = X2B_CTX(remote_ip4);
	__u32 ip6[4] = { X2B_CTX(remote_ip6[0]), X2B_CTX(remote_ip6[1]), X2B_CTX(remote_ip6[2]), X2B_CTX(remote_ip6[3]) };
#undef X2B_CTX
	struct x2b_epkey key = {};

	/* remote_port holds the network-order port in its upper 16 bits */
	key.port = (__u16)(port >> 16);
	if (family == AF_INET) {
		key.family = X2B_FAM_INET4;
		__builtin_memcpy(key.addr, &ip4, 4);
	} else {
		key.family = X2B_FAM_INET6;
		__builtin_memcpy(key.addr, ip6, 16);
	}
	return key;
}

SEC("sockops")
int x2b_sockops(struct bpf_sock_ops *skops)
{
	struct x2b_epkey key;
	__u32 *active;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		key = x2b_sockops_key(skops);
		active = bpf_map_lookup_elem(&x2b_active, &key);
		if (!active)
			return 1;
		__sync_fetch_and_add(active, 1);
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] != BPF_TCP_CLOSE)
			return 1;
		key = x2b_sockops_key(skops);
		active = bpf_map_lookup_elem(&x2b_active, &key);
		if (active && *active)
			__sync_fetch_and_sub(active, 1);
		break;
	}
	return 1;
}
