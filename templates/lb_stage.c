/* Load-balancing stage: {{POLICY}} clusters, {{FAMILY_NAME}} sockets. */
SEC("cgroup/connect{{FAMILY}}")
int {{PROG}}(struct bpf_sock_addr *ctx)
{
	return x2b_balance(ctx, {{LB_CONST}}, X2B_FAM_INET{{FAMILY}});
}
