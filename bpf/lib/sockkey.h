/* The 4-tuple key of a socket end, built the same way in sockops and sk_msg: addresses
 * v4-mapped, ports in host order. The peer's key is the same with the ends swapped. */
#ifndef BM_BPF_SOCKKEY_H
#define BM_BPF_SOCKKEY_H

#include "lib/common.h"
#include "lib/maps.h"

/* remote_port holds the network-order port in its upper 16 bits (sockops and sk_msg alike). */
static __always_inline __u32 bm_remote_port(__u32 remote_port)
{
	return bpf_ntohs((__u16)(remote_port >> 16));
}

#define BM_SOCKKEY_FROM(ctx, k)                                                        \
	({                                                                             \
		int _ok = 1;                                                           \
		if ((ctx)->family == AF_INET) {                                        \
			bm_addr_from_v4((k)->local, (ctx)->local_ip4);                 \
			bm_addr_from_v4((k)->remote, (ctx)->remote_ip4);               \
		} else if ((ctx)->family == AF_INET6) {                                \
			__u32 *_l = (__u32 *)(k)->local, *_r = (__u32 *)(k)->remote;   \
			_l[0] = (ctx)->local_ip6[0];                                   \
			_l[1] = (ctx)->local_ip6[1];                                   \
			_l[2] = (ctx)->local_ip6[2];                                   \
			_l[3] = (ctx)->local_ip6[3];                                   \
			_r[0] = (ctx)->remote_ip6[0];                                  \
			_r[1] = (ctx)->remote_ip6[1];                                  \
			_r[2] = (ctx)->remote_ip6[2];                                  \
			_r[3] = (ctx)->remote_ip6[3];                                  \
		} else {                                                               \
			_ok = 0;                                                       \
		}                                                                      \
		(k)->local_port = (ctx)->local_port;                                   \
		(k)->remote_port = bm_remote_port((ctx)->remote_port);                 \
		_ok;                                                                   \
	})

static __always_inline void bm_sockkey_swap(const struct bm_sockkey *k, struct bm_sockkey *peer)
{
	__builtin_memcpy(peer->local, k->remote, 16);
	__builtin_memcpy(peer->remote, k->local, 16);
	peer->local_port = k->remote_port;
	peer->remote_port = k->local_port;
}

static __always_inline int bm_bypass_on(void)
{
	__u32 zero = 0;
	struct bm_cfg *c = bpf_map_lookup_elem(&bm_cfg, &zero);

	return c && (c->flags & BM_CFG_F_BYPASS);
}

#endif
