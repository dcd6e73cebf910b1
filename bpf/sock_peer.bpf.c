// SPDX-License-Identifier: GPL-2.0
/* cgroup/getpeername4|6: an app that connected to a VIP sees the VIP as its peer, not the
 * backend the connect hook chose. */
#include "lib/common.h"
#include "lib/maps.h"

static __always_inline int bm_peer(struct bpf_sock_addr *ctx, const __u8 *peer, int v4)
{
	struct bpf_sock *sk = ctx->sk;
	struct bm_sock *s;

	if (!sk)
		return SYS_PROCEED;
	s = bpf_sk_storage_get(&bm_sk, sk, 0, 0);
	/* Only while the socket is still connected to the backend we chose. */
	if (!s || s->be_port != (__be16)ctx->user_port || !bm_addr_eq(s->be_addr, peer))
		return SYS_PROCEED;
	bm_ctx_store(ctx, s->vip, s->vip_port, v4);
	bm_count(BM_STAT_PEERNAME);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int bm_sock4_getpeername(struct bpf_sock_addr *ctx)
{
	__u8 peer[16];

	bm_addr_from_v4(peer, ctx->user_ip4);
	return bm_peer(ctx, peer, 1);
}

SEC("cgroup/getpeername6")
int bm_sock6_getpeername(struct bpf_sock_addr *ctx)
{
	__u8 peer[16];

	bm_ctx_ip6(ctx, peer);
	return bm_peer(ctx, peer, 0);
}

char LICENSE[] SEC("license") = "GPL";
