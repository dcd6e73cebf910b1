/* The hash both sides compute: the agent to build Maglev rings, the programs to index them.
 * Plain C on fixed-width types so it compiles unchanged in bpf/ and user/. */
#ifndef BM_HASH_H
#define BM_HASH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* murmur3's finalizer: a full-avalanche 32-bit mix. */
static inline __u32 bm_mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* Hash of a 16-byte address (IPv6 or v4-mapped), with a seed. */
static inline __u32 bm_hash_addr(const __u8 *a, __u32 seed)
{
	__u32 h = seed ^ 0x9747b28cu;
	int i;

	for (i = 0; i < 4; i++) {
		__u32 w = ((__u32)a[4 * i] << 24) | ((__u32)a[4 * i + 1] << 16) |
			  ((__u32)a[4 * i + 2] << 8) | (__u32)a[4 * i + 3];

		h = bm_mix32(h ^ w) + (__u32)i;
	}
	return bm_mix32(h);
}

static inline __u32 bm_hash_u64(__u64 v, __u32 seed)
{
	return bm_mix32(bm_mix32(seed ^ (__u32)v) ^ (__u32)(v >> 32));
}

#endif
