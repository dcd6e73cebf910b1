// SPDX-License-Identifier: GPL-2.0
/* sockops: counts open connections per backend for LEAST_REQUEST (counted when the SYN leaves,
 * uncounted at CLOSE), and puts both ends of a same-node service connection in bm_sockhash so
 * sk_msg can move their data without the TCP/IP stack. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/sockkey.h"

/* Client end established: a service connection to a backend not known to be remote joins the
 * bypass, and the server end it expects is announced. Fails open: any miss keeps plain TCP. */
static __always_inline void bm_bypass_client(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	struct bm_sockkey k = {}, peer = {};
	__u32 undecided = BM_BYP_UNDECIDED, await = BM_BYP_AWAIT;
	struct bm_backend *be;
	struct bm_sock *s;

	if (!bm_bypass_on())
		return;
	s = bpf_sk_storage_get(&bm_sk, sk, 0, 0);
	if (!s || !s->backend_id)
		return; /* not a service connection */
	be = bpf_map_lookup_elem(&bm_backend, &s->backend_id);
	if (!be || (be->flags & BM_BE_F_REMOTE))
		return;
	if (!BM_SOCKKEY_FROM(skops, &k))
		return;
	bm_sockkey_swap(&k, &peer);
	if (bpf_map_update_elem(&bm_byp, &k, &undecided, BPF_ANY) ||
	    bpf_map_update_elem(&bm_byp, &peer, &await, BPF_ANY))
		return;
	if (bpf_sock_hash_update(skops, &bm_sockhash, &k, BPF_ANY) == 0)
		bm_count(BM_STAT_BYPASS_ADD);
}

/* Server end established: it joins only when a local client in the mesh awaits it. */
static __always_inline void bm_bypass_server(struct bpf_sock_ops *skops)
{
	struct bm_sockkey k = {};
	__u32 undecided = BM_BYP_UNDECIDED;
	__u32 *st;

	if (!BM_SOCKKEY_FROM(skops, &k))
		return;
	st = bpf_map_lookup_elem(&bm_byp, &k);
	if (!st || *st != BM_BYP_AWAIT)
		return;
	if (bpf_map_update_elem(&bm_byp, &k, &undecided, BPF_ANY))
		return;
	if (bpf_sock_hash_update(skops, &bm_sockhash, &k, BPF_ANY) == 0)
		bm_count(BM_STAT_BYPASS_ADD);
}

SEC("sockops")
int bm_sockops(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct bm_sock *s;
	__u64 *active;

	if (!sk)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		bm_bypass_client(skops, sk);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		bm_bypass_server(skops);
		break;
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		s = bpf_sk_storage_get(&bm_sk, sk, 0, 0);
		if (!s || !s->backend_id || (s->flags & BM_SK_F_COUNTED))
			break;
		active = bpf_map_lookup_elem(&bm_active, &s->backend_id);
		if (!active)
			break;
		__sync_fetch_and_add(active, 1);
		s->flags |= BM_SK_F_COUNTED;
		bpf_sock_ops_cb_flags_set(skops,
					  skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] != BPF_TCP_CLOSE)
			break;
		s = bpf_sk_storage_get(&bm_sk, sk, 0, 0);
		if (!s || !(s->flags & BM_SK_F_COUNTED))
			break;
		s->flags &= ~BM_SK_F_COUNTED;
		active = bpf_map_lookup_elem(&bm_active, &s->backend_id);
		if (!active)
			break;
		if (*active)
			__sync_fetch_and_add(active, -1);
		else
			bm_count(BM_STAT_ACTIVE_UNDERFLOW);
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
