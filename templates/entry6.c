/* Entry stage for IPv6 TCP connects; see x2b_connect4. */
SEC("cgroup/connect6")
int x2b_connect6(struct bpf_sock_addr *ctx)
{
	__u32 ip[4];
	struct x2b_lsn_slot *hit = 0;
	struct x2b_cluster *c = 0;
	struct x2b_astat *redirected = 0;
	__u32 action, cluster = 0;
	int slot;

	if (ctx->type != SOCK_STREAM)
		return 1;
	ip[0] = ctx->user_ip6[0];
	ip[1] = ctx->user_ip6[1];
	ip[2] = ctx->user_ip6[2];
	ip[3] = ctx->user_ip6[3];
	action = x2b_match6(ip, (__u16)ctx->user_port, &hit);
	if (hit) {
		/* a service address whose cluster balances from its slot */
		slot = x2b_fast_balance6(ctx, hit);
		if (slot >= 0)
			return slot;
	}
	slot = x2b_route(ctx, action, hit ? &hit->act : 0, &cluster, &c, &redirected);
	if (slot == X2B_SLOT_REFUSE)
		return 0;
	if (slot < 0 || !c)
		return 1;
{{DISPATCH}}
	return 1;
}
