// SPDX-License-Identifier: GPL-2.0
/* cgroup/sendmsg4|6 and recvmsg4|6: unconnected UDP to a service address. Each send picks a
 * backend and records it by socket cookie; replies from it are shown as coming from the VIP. */
#include "lib/common.h"
#include "lib/svc.h"

static __always_inline int bm_sendmsg(struct bpf_sock_addr *ctx, struct bm_svc_key *key, int v4)
{
	struct bm_revnat_key rk = {};
	struct bm_revnat rv = {};
	struct bm_pick pick = {};
	int rc = bm_svc_xlate(ctx, key, v4, &pick, 0); /* no L7 for datagrams */

	if (rc < 0) {
		bpf_set_retval(rc);
		return SYS_REJECT;
	}
	if (rc == 0)
		return SYS_PROCEED;
	rk.cookie = bpf_get_socket_cookie(ctx);
	__builtin_memcpy(rk.addr, pick.addr, 16);
	rk.port = pick.port;
	__builtin_memcpy(rv.addr, key->addr, 16);
	rv.port = key->port;
	/* Fails open: without the entry the reply shows the backend's address. */
	bpf_map_update_elem(&bm_revnat, &rk, &rv, BPF_ANY);
	bm_ctx_store(ctx, pick.addr, pick.port, v4);
	bm_count(BM_STAT_SENDMSG);
	return SYS_PROCEED;
}

/* The source of a received datagram: a backend we sent to becomes the VIP again. */
static __always_inline int bm_recvmsg(struct bpf_sock_addr *ctx, const __u8 *src, int v4)
{
	struct bm_revnat_key rk = {};
	struct bm_revnat *rv;
	struct bpf_sock *sk = ctx->sk;
	const __u8 *vip = 0;
	__be16 vport = 0;

	if (sk) {
		/* Connected UDP: the connect hook recorded the backend on the socket. */
		struct bm_sock *s = bpf_sk_storage_get(&bm_sk, sk, 0, 0);

		if (s && s->be_port == (__be16)ctx->user_port && bm_addr_eq(s->be_addr, src)) {
			vip = s->vip;
			vport = s->vip_port;
		}
	}
	if (!vip) {
		rk.cookie = bpf_get_socket_cookie(ctx);
		__builtin_memcpy(rk.addr, src, 16);
		rk.port = (__be16)ctx->user_port;
		rv = bpf_map_lookup_elem(&bm_revnat, &rk);
		if (!rv)
			return SYS_PROCEED;
		vip = rv->addr;
		vport = rv->port;
	}
	bm_ctx_store(ctx, vip, vport, v4);
	bm_count(BM_STAT_RECVMSG);
	return SYS_PROCEED;
}

SEC("cgroup/sendmsg4")
int bm_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	struct bm_svc_key key = {};

	bm_addr_from_v4(key.addr, ctx->user_ip4);
	key.port = (__be16)ctx->user_port;
	key.proto = BM_IPPROTO_UDP;
	return bm_sendmsg(ctx, &key, 1);
}

SEC("cgroup/sendmsg6")
int bm_sock6_sendmsg(struct bpf_sock_addr *ctx)
{
	struct bm_svc_key key = {};

	bm_ctx_ip6(ctx, key.addr);
	key.port = (__be16)ctx->user_port;
	key.proto = BM_IPPROTO_UDP;
	return bm_sendmsg(ctx, &key, 0);
}

SEC("cgroup/recvmsg4")
int bm_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	__u8 src[16];

	bm_addr_from_v4(src, ctx->user_ip4);
	return bm_recvmsg(ctx, src, 1);
}

SEC("cgroup/recvmsg6")
int bm_sock6_recvmsg(struct bpf_sock_addr *ctx)
{
	__u8 src[16];

	bm_ctx_ip6(ctx, src);
	return bm_recvmsg(ctx, src, 0);
}

char LICENSE[] SEC("license") = "GPL";
