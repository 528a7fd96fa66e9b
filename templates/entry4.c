/*
 * Entry stage for IPv4 TCP connects: match the destination against the
 * listeners, resolve the action to a cluster, then tail-call the cluster's
 * load-balancing stage. A connect that matches nothing is left untouched.
 */
SEC("cgroup/connect4")
int x2b_connect4(struct bpf_sock_addr *ctx)
{
	__u32 ip = ctx->user_ip4;
	int slot;

	if (ctx->type != SOCK_STREAM)
		return 1;
	x2b_count(&x2b_gstat, X2B_G_SEEN);
	slot = x2b_route(ctx, x2b_match4(ip, (__u16)ctx->user_port));
	if (slot == X2B_SLOT_REFUSE)
		return 0;
{{DISPATCH}}
	return 1;
}
