// SPDX-License-Identifier: GPL-2.0
/* sockops: counts open connections per backend for LEAST_REQUEST (counted when the SYN leaves,
 * uncounted at CLOSE), and puts both ends of a same-node service connection in bm_sockhash so
 * sk_msg can move their data without the TCP/IP stack. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/sockkey.h"
#include "lib/bypass.h"

/* Client end established: a connection redirected to the agent gets its original destination
 * filed for the agent; a service connection to a backend not known to be remote (or to the
 * agent) joins the bypass, and the server end it expects is announced. Fails open: any miss
 * keeps plain TCP. */
static __always_inline void bm_bypass_client(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	struct bm_sockkey k = {}, peer = {};
	__u32 undecided = BM_BYP_UNDECIDED, await = BM_BYP_AWAIT;
	struct bm_backend *be;
	struct bm_sock *s;

	s = bpf_sk_storage_get(&bm_sk, sk, 0, 0);
	if (!s)
		return; /* not a service connection */
	if (!BM_SOCKKEY_FROM(skops, &k))
		return;
	if (s->flags & BM_SK_F_REDIRECTED) {
		/* To the agent: it finds where the client was going under the 4-tuple it accepts. */
		struct bm_orig_key ok = { .client_port = bpf_htons((__u16)k.local_port),
					  .agent_port = bpf_htons((__u16)k.remote_port) };
		struct bm_orig ov = { .vip_port = s->vip_port, .proto = s->proto, .wl_id = s->wl_id };

		__builtin_memcpy(ok.client, k.local, 16);
		__builtin_memcpy(ok.agent, k.remote, 16);
		__builtin_memcpy(ov.vip, s->vip, 16);
		bpf_map_update_elem(&bm_orig, &ok, &ov, BPF_ANY);
	} else {
		if (!s->backend_id)
			return;
		be = bpf_map_lookup_elem(&bm_backend, &s->backend_id);
		if (!be || (be->flags & BM_BE_F_REMOTE))
			return;
	}
	/* The agent is on this node: the app-to-agent hop is a same-node pair too (the agent
	 * adds its end itself, it is not in the node's cgroup). */
	if (!bm_bypass_on())
		return;
	bm_sockkey_swap(&k, &peer);
	if (bpf_map_update_elem(&bm_byp, &k, &undecided, BPF_ANY) ||
	    bpf_map_update_elem(&bm_byp, &peer, &await, BPF_ANY))
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
