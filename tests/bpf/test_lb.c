/* Host test of the datapath's decision helpers (bpf/lib/lb.h, include/bm_hash.h), compiled
 * from the same source the programs use, and of the Maglev ring the agent builds for them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../bpf/lib/lb.h"
#include "maglev.h"

static struct bm_route make_route(const uint32_t *sets, const uint32_t *weights, uint32_t n)
{
	struct bm_route r;

	memset(&r, 0, sizeof(r));
	r.n_dest = n;
	for (uint32_t i = 0; i < n; i++) {
		r.total += weights[i];
		r.dest[i].set_id = sets[i];
		r.dest[i].cum = r.total;
	}
	return r;
}

/* Every random number lands on exactly the share of its weight. */
static void test_route_pick_exact_shares(void **state)
{
	uint32_t sets[] = { 7, 9 }, weights[] = { 90, 10 };
	struct bm_route r = make_route(sets, weights, 2);
	uint32_t hits7 = 0, hits9 = 0;

	(void)state;
	for (uint32_t rnd = 0; rnd < 100000; rnd++) {
		uint32_t s = bm_route_pick(&r, rnd);

		hits7 += s == 7;
		hits9 += s == 9;
	}
	assert_int_equal(hits7, 90000); /* 90/10 canary: set 7 gets exactly 90% of the range */
	assert_int_equal(hits9, 10000);
}

static void test_route_pick_edges(void **state)
{
	uint32_t sets[] = { 1, 2, 3 }, weights[] = { 1, 0, 1 };
	struct bm_route r = make_route(sets, weights, 3), empty;

	(void)state;
	assert_int_equal(bm_route_pick(&r, 0), 1);
	assert_int_equal(bm_route_pick(&r, 1), 3); /* a zero weight is never picked */
	assert_int_equal(bm_route_pick(&r, UINT32_MAX), 3); /* UINT32_MAX % 2 == 1 */
	memset(&empty, 0, sizeof(empty));
	assert_int_equal(bm_route_pick(&empty, 12345), 0); /* no weight: no set */
}

static void test_route_pick_max_dests(void **state)
{
	uint32_t sets[BM_MAX_DESTS], weights[BM_MAX_DESTS];
	uint32_t seen[BM_MAX_DESTS] = { 0 };

	(void)state;
	for (uint32_t i = 0; i < BM_MAX_DESTS; i++) {
		sets[i] = 100 + i;
		weights[i] = 1;
	}
	struct bm_route r = make_route(sets, weights, BM_MAX_DESTS);

	for (uint32_t rnd = 0; rnd < BM_MAX_DESTS * 10; rnd++)
		seen[bm_route_pick(&r, rnd) - 100]++;
	for (uint32_t i = 0; i < BM_MAX_DESTS; i++)
		assert_int_equal(seen[i], 10); /* the last destination is reachable too */
}

static void test_p2c(void **state)
{
	(void)state;
	assert_int_equal(bm_p2c_second(0, 1, 99), 0); /* one backend: no second choice */
	for (uint32_t count = 2; count < 50; count++)
		for (uint32_t first = 0; first < count; first++)
			for (uint32_t rnd = 0; rnd < 3 * count; rnd++) {
				uint32_t s = bm_p2c_second(first, count, rnd);

				assert_true(s < count);
				assert_int_not_equal(s, first); /* two distinct candidates */
			}
	assert_true(bm_p2c_pick_second(5, 2));   /* fewer active connections wins */
	assert_false(bm_p2c_pick_second(2, 5));
	assert_false(bm_p2c_pick_second(3, 3)); /* tie keeps the first */
}

static void test_v4_mapped(void **state)
{
	uint8_t v4[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 96, 0, 1 };
	uint8_t v6[16] = { 0xfd, 0, 0, 0x10, 0, 0x96 };

	(void)state;
	assert_true(bm_addr_is_v4(v4));
	assert_false(bm_addr_is_v4(v6));
}

static void test_hash_spread(void **state)
{
	uint32_t buckets[16] = { 0 };
	uint8_t a[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 244, 0, 0 };

	(void)state;
	for (uint32_t i = 0; i < 16000; i++) {
		a[14] = (uint8_t)(i >> 8);
		a[15] = (uint8_t)i;
		buckets[bm_hash_addr(a, BM_SRC_HASH_SEED) % 16]++;
	}
	for (int b = 0; b < 16; b++)
		assert_in_range(buckets[b], 850, 1150); /* sequential pod IPs spread evenly */
	assert_int_not_equal(bm_hash_addr(a, 1), bm_hash_addr(a, 2)); /* the seed matters */
}

static void make_keys(uint8_t (*keys)[18], size_t n, uint32_t base)
{
	for (size_t i = 0; i < n; i++) {
		memset(keys[i], 0, 18);
		keys[i][10] = keys[i][11] = 0xff;
		keys[i][12] = 10;
		keys[i][13] = 244;
		keys[i][14] = (uint8_t)((base + i) >> 8);
		keys[i][15] = (uint8_t)(base + i);
		keys[i][17] = 80;
	}
}

static void test_maglev_balance(void **state)
{
	uint8_t keys[10][18];
	uint32_t *ring = malloc(BM_MAGLEV_M * sizeof(*ring)), count[10] = { 0 };

	(void)state;
	make_keys(keys, 10, 1);
	assert_int_equal(bm_maglev_build((const uint8_t(*)[18])keys, 10, BM_MAGLEV_M, ring), 0);
	for (uint32_t j = 0; j < BM_MAGLEV_M; j++) {
		assert_true(ring[j] < 10);
		count[ring[j]]++;
	}
	for (int i = 0; i < 10; i++) /* each backend owns M/N slots, +-1 */
		assert_in_range(count[i], BM_MAGLEV_M / 10, BM_MAGLEV_M / 10 + 1);
	free(ring);
}

/* Removing one backend moves its own slots and few others: clients mostly keep theirs. */
static void test_maglev_minimal_disruption(void **state)
{
	uint8_t keys[10][18];
	uint32_t *a = malloc(BM_MAGLEV_M * sizeof(*a)), *b = malloc(BM_MAGLEV_M * sizeof(*b));
	uint32_t moved = 0;

	(void)state;
	make_keys(keys, 10, 1);
	assert_int_equal(bm_maglev_build((const uint8_t(*)[18])keys, 10, BM_MAGLEV_M, a), 0);
	/* Drop backend 4: indices above it shift down by one in the second ring. */
	memmove(keys[4], keys[5], 5 * sizeof(keys[0]));
	assert_int_equal(bm_maglev_build((const uint8_t(*)[18])keys, 9, BM_MAGLEV_M, b), 0);
	for (uint32_t j = 0; j < BM_MAGLEV_M; j++) {
		uint32_t before = a[j], after = b[j] >= 4 ? b[j] + 1 : b[j];

		if (before != 4 && before != after)
			moved++;
	}
	assert_true(moved < BM_MAGLEV_M / 20); /* under 5% of slots of surviving backends move */
	free(a);
	free(b);
}

static void test_maglev_rejects(void **state)
{
	uint8_t keys[1][18] = { { 0 } };
	uint32_t ring[7];

	(void)state;
	assert_int_equal(bm_maglev_build((const uint8_t(*)[18])keys, 0, 7, ring), -1);
	assert_int_equal(bm_maglev_build((const uint8_t(*)[18])keys, 7, 7, ring), -1);
	assert_int_equal(bm_maglev_index(2, BM_MAGLEV_M + 5), 2 * BM_MAGLEV_M + 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_pick_exact_shares),
		cmocka_unit_test(test_route_pick_edges),
		cmocka_unit_test(test_route_pick_max_dests),
		cmocka_unit_test(test_p2c),
		cmocka_unit_test(test_v4_mapped),
		cmocka_unit_test(test_hash_spread),
		cmocka_unit_test(test_maglev_balance),
		cmocka_unit_test(test_maglev_minimal_disruption),
		cmocka_unit_test(test_maglev_rejects),
	};

	return cmocka_run_group_tests_name("bpf decision helpers", tests, NULL, NULL);
}
