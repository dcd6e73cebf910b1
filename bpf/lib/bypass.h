/* The server end of a same-node pair, shared by the pods' sockops (bm_sockops) and the
 * agent's (bm_sockops_agent, on the agent's own cgroup). */
#ifndef BM_BPF_BYPASS_H
#define BM_BPF_BYPASS_H

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/sockkey.h"

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

#endif
