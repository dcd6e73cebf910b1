/* Maglev consistent-hash ring (Eisenbud et al., NSDI'16), as Katran and Cilium build it:
 * each backend's permutation of the M slots, filled in turn until the ring is full. */
#ifndef BM_MAGLEV_H
#define BM_MAGLEV_H

#include <stddef.h>
#include <stdint.h>

/* keys[i] (16-byte address + 2-byte port, network order) identifies backend i; ring[j] gets
 * the index i that owns slot j. m must be prime and > n. Returns 0, or -1 (n == 0, n >= m,
 * out of memory). */
int bm_maglev_build(const uint8_t (*keys)[18], size_t n, uint32_t m, uint32_t *ring);

#endif
