/* Pure load-balancing decisions: no maps, no helpers, so the same code runs in the programs
 * and in a host test (tests/bpf/test_lb.c), as Cilium tests its datapath helpers. */
#ifndef BM_BPF_LB_H
#define BM_BPF_LB_H

#include "bm_svc.h"
#include "bm_hash.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Weighted choice: the set whose cumulative weight first exceeds rnd % total.
 * Returns the set id, or 0 when the route carries no weight. */
static __always_inline __u32 bm_route_pick(const struct bm_route *r, __u32 rnd)
{
	__u32 x;
	int i;

	if (!r->total)
		return 0;
	x = rnd % r->total;
	for (i = 0; i < BM_MAX_DESTS; i++) {
		if ((__u32)i >= r->n_dest)
			break;
		if (x < r->dest[i].cum)
			return r->dest[i].set_id;
	}
	return 0;
}

/* Second index of a power-of-two-choices draw: uniform among the others. */
static __always_inline __u32 bm_p2c_second(__u32 first, __u32 count, __u32 rnd)
{
	if (count < 2)
		return first;
	return (first + 1 + rnd % (count - 1)) % count;
}

/* Of two candidates, the one with fewer active connections; ties go to the first. */
static __always_inline int bm_p2c_pick_second(__u64 active_first, __u64 active_second)
{
	return active_second < active_first;
}

/* Row-major index into bm_maglev. */
static __always_inline __u32 bm_maglev_index(__u32 maglev_id, __u32 hash)
{
	return maglev_id * BM_MAGLEV_M + hash % BM_MAGLEV_M;
}

/* Seed of the source hash, shared with the Maglev builder's view of clients. */
#define BM_SRC_HASH_SEED 0x5eedu

static __always_inline int bm_addr_is_v4(const __u8 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0 && a[4] == 0 && a[5] == 0 &&
	       a[6] == 0 && a[7] == 0 && a[8] == 0 && a[9] == 0 && a[10] == 0xff && a[11] == 0xff;
}

#endif
