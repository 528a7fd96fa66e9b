/*
 * Entry stage for IPv4 TCP connects: match the destination against the
 * listeners, resolve the action to a cluster, then balance inline with the
 * cluster's policy. A connect that matches nothing is left untouched.
 */
SEC("cgroup/connect4")
int x2b_connect4(struct bpf_sock_addr *ctx)
{
	__u32 ip = ctx->user_ip4;
	struct x2b_lsn4_slot *hit = 0;
	struct x2b_cluster *c = 0;
	struct x2b_astat *redirected = 0;
	__u32 action, cluster = 0;
	int slot;

	if (ctx->type != SOCK_STREAM)
		return 1;
	action = x2b_match4(ip, (__u16)ctx->user_port, &hit);
	if (hit) {
		/* a service address whose cluster balances from its slot */
		slot = x2b_fast_balance4(ctx, hit);
		if (slot >= 0)
			return slot;
	}
	slot = x2b_route(ctx, action, 0, &cluster, &c, &redirected); /* x2b_act: the compact slot has no copy */
	if (slot == X2B_SLOT_REFUSE)
		return 0;
	if (slot < 0 || !c)
		return 1;
{{DISPATCH}}
	return 1;
}
