/* Maglev consistent-hash ring: every backend owns about M/N slots, and removing one backend
 * moves only the slots it owned (plus a few), so most clients keep their backend. */
#include "maglev.h"

#include <stdlib.h>
#include <string.h>

#include "bm_hash.h"

static uint32_t key_hash(const uint8_t *key, uint32_t seed)
{
	uint8_t a[16];
	uint32_t h = bm_hash_addr(key, seed);

	/* Fold the port in through a second block so same-address backends differ. */
	memset(a, 0, sizeof(a));
	a[0] = key[16];
	a[1] = key[17];
	return bm_hash_addr(a, h);
}

int bm_maglev_build(const uint8_t (*keys)[18], size_t n, uint32_t m, uint32_t *ring)
{
	uint32_t *offset = NULL, *skip = NULL, *next = NULL;
	size_t filled = 0;
	int rc = -1;

	if (!n || n >= m)
		return -1;
	offset = calloc(n, sizeof(*offset));
	skip = calloc(n, sizeof(*skip));
	next = calloc(n, sizeof(*next));
	if (!offset || !skip || !next)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		offset[i] = key_hash(keys[i], 0x6d61676cu) % m;
		skip[i] = key_hash(keys[i], 0x65766c31u) % (m - 1) + 1;
	}
	for (uint32_t j = 0; j < m; j++)
		ring[j] = UINT32_MAX;
	while (filled < m) {
		for (size_t i = 0; i < n && filled < m; i++) {
			uint32_t c;

			/* Next free slot in backend i's permutation; terminates since m is prime. */
			do {
				c = (uint32_t)((offset[i] + (uint64_t)next[i] * skip[i]) % m);
				next[i]++;
			} while (ring[c] != UINT32_MAX);
			ring[c] = (uint32_t)i;
			filled++;
		}
	}
	rc = 0;
cleanup:
	free(offset);
	free(skip);
	free(next);
	return rc;
}
