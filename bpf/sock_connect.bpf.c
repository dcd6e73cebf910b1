// SPDX-License-Identifier: GPL-2.0
/* cgroup/connect4 and connect6: a connect to a service address (VIP:port) goes to a backend
 * chosen here, before any packet exists; the socket remembers the VIP for getpeername. */
#include "lib/common.h"
#include "lib/svc.h"

static __always_inline void bm_remember(struct bpf_sock_addr *ctx, const struct bm_svc_key *key,
					const struct bm_pick *pick)
{
	struct bpf_sock *sk = ctx->sk;
	struct bm_sock *s;

	if (!sk)
		return;
	/* Fails open: without storage the connection still works, only getpeername shows the
	 * backend instead of the VIP and LEAST_REQUEST does not count it. */
	s = bpf_sk_storage_get(&bm_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return;
	if (s->flags & BM_SK_F_COUNTED)
		return; /* a second connect on a counted socket: keep the first record */
	__builtin_memcpy(s->vip, key->addr, 16);
	s->vip_port = key->port;
	s->proto = key->proto;
	s->backend_id = pick->backend_id;
	__builtin_memcpy(s->be_addr, pick->addr, 16);
	s->be_port = pick->port;
}

/* An HTTP service port: the connection goes to the agent's listener, which routes it. The
 * socket remembers the VIP (getpeername) and the caller; sockops files both under the
 * connection's 4-tuple for the agent (bm_orig). 1 redirected, 0 no listener for this family
 * (the caller falls back to L4: the service keeps working, without its HTTP rules). */
static __always_inline int bm_redirect_l7(struct bpf_sock_addr *ctx, const struct bm_svc_key *key,
					  int v4)
{
	__u32 zero = 0;
	struct bm_cfg *cfg = bpf_map_lookup_elem(&bm_cfg, &zero);
	struct bpf_sock *sk = ctx->sk;
	struct bm_workload *wl;
	const __u8 *agent;
	struct bm_sock *s;

	if (!cfg || !cfg->l7_port || !sk)
		return 0;
	/* An AF_INET socket, or an AF_INET6 one to a v4-mapped VIP, goes to the IPv4 listener. */
	__u32 fam = bm_addr_is_v4(key->addr) ? 0 : 1;
	struct bpf_sock *lsk;

	agent = fam ? cfg->l7_addr6 : cfg->l7_addr4;
	if (!agent[10] && !agent[0] && !agent[15])
		return 0; /* no listener address for this family */
	lsk = bpf_map_lookup_elem(&bm_l7_lsn, &fam);
	if (!lsk)
		return 0; /* the agent is not listening (restarting): L4 meanwhile */
	bpf_sk_release(lsk);
	s = bpf_sk_storage_get(&bm_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return 0; /* without the record the agent could not route it: stay at L4 */
	__builtin_memcpy(s->vip, key->addr, 16);
	s->vip_port = key->port;
	s->proto = key->proto;
	s->flags = BM_SK_F_REDIRECTED;
	s->backend_id = 0;
	__builtin_memcpy(s->be_addr, agent, 16);
	s->be_port = cfg->l7_port;
	wl = bm_caller();
	s->wl_id = wl ? wl->wl_id : 0;
	bm_ctx_store(ctx, agent, cfg->l7_port, v4);
	bm_count(BM_STAT_L7_REDIRECT);
	return 1;
}

/* Returns the verdict. v4: the socket is AF_INET (the backend must be IPv4). */
static __always_inline int bm_connect(struct bpf_sock_addr *ctx, struct bm_svc_key *key, int v4)
{
	struct bpf_sock *sk = ctx->sk;
	struct bm_pick pick = {};
	/* The agent's own connections are never sent back to it. */
	int rc = bm_svc_xlate(ctx, key, v4, &pick, !sk || sk->mark != BM_AGENT_MARK);

	if (rc == BM_XLATE_L7) {
		if (bm_redirect_l7(ctx, key, v4))
			return SYS_PROCEED;
		bm_count(BM_STAT_L7_NOAGENT);
		rc = bm_svc_xlate(ctx, key, v4, &pick, 0);
	}
	if (rc < 0) {
		bpf_set_retval(rc);
		return SYS_REJECT;
	}
	if (rc == 0)
		return SYS_PROCEED;
	bm_ctx_store(ctx, pick.addr, pick.port, v4);
	bm_remember(ctx, key, &pick);
	bm_count(BM_STAT_CONNECT);
	return SYS_PROCEED;
}

SEC("cgroup/connect4")
int bm_sock4_connect(struct bpf_sock_addr *ctx)
{
	struct bm_svc_key key = {};

	bm_addr_from_v4(key.addr, ctx->user_ip4);
	key.port = (__be16)ctx->user_port;
	key.proto = (__u8)ctx->protocol;
	return bm_connect(ctx, &key, 1);
}

SEC("cgroup/connect6")
int bm_sock6_connect(struct bpf_sock_addr *ctx)
{
	struct bm_svc_key key = {};

	bm_ctx_ip6(ctx, key.addr);
	key.port = (__be16)ctx->user_port;
	key.proto = (__u8)ctx->protocol;
	return bm_connect(ctx, &key, 0);
}

char LICENSE[] SEC("license") = "GPL";
