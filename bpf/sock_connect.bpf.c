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

/* Returns the verdict. v4: the socket is AF_INET (the backend must be IPv4). */
static __always_inline int bm_connect(struct bpf_sock_addr *ctx, struct bm_svc_key *key, int v4)
{
	struct bm_pick pick = {};
	int rc = bm_svc_xlate(ctx, key, v4, &pick);

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
