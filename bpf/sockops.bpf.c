// SPDX-License-Identifier: GPL-2.0
/* sockops: counts open connections per backend for LEAST_REQUEST. A connection the connect
 * hook translated is counted when its SYN leaves and uncounted when it reaches CLOSE. */
#include "lib/common.h"
#include "lib/maps.h"

SEC("sockops")
int bm_sockops(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct bm_sock *s;
	__u64 *active;

	if (!sk)
		return 1;
	switch (skops->op) {
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
