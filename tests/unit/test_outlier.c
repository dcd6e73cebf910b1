/* Outlier detection's state machine (outlier.c) on its own, against Envoy's rules: consecutive
 * 5xx and gateway errors, ejection time growing with each ejection and shrinking while healthy,
 * the max_ejection_time cap, maxEjectionPercent, sweeps at the cluster's interval. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <cmocka.h>

#include "outlier.h"

#define CL "outbound|80||backend.default.svc.cluster.local"

static struct sockaddr_storage ep(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(8080);
	inet_pton(AF_INET, ip, &s4->sin_addr);
	return ss;
}

static const struct bm_outlier_policy pol = {
	.set = true, .consecutive_5xx = 3, .interval_ms = 1000, .base_ejection_ms = 2000,
	.max_ejection_pct = 100,
};

/* n failures (status) at ep at time now; the last report's result. */
static int fails(struct bm_outlier *o, const struct sockaddr_storage *e, int n, int status,
		const struct bm_outlier_policy *p, uint64_t now)
{
	int r = 0;

	for (int i = 0; i < n; i++)
		r = bm_outlier_report(o, CL, e, BM_L7_OUT_RESPONSE, status, p, 4, now);
	return r;
}

/* The first sweep time at or after t at which e is back (sweeps every interval from t0). */
static uint64_t back_at(struct bm_outlier *o, const struct sockaddr_storage *e, uint64_t t0,
			uint64_t limit)
{
	for (uint64_t t = t0; t <= limit; t += 1000) {
		bm_outlier_sweep(o, t);
		if (!bm_outlier_ejected(o, CL, e))
			return t;
	}
	return 0;
}

static void test_consecutive_and_reset(void **state)
{
	struct bm_outlier *o = bm_outlier_new();
	struct sockaddr_storage a = ep("10.244.1.2");

	(void)state;
	assert_int_equal(fails(o, &a, 2, 503, &pol, 100), 0);
	assert_int_equal(bm_outlier_report(o, CL, &a, BM_L7_OUT_RESPONSE, 404, &pol, 4, 100), 0);
	assert_int_equal(fails(o, &a, 2, 500, &pol, 100), 0); /* the 404 started the count again */
	assert_false(bm_outlier_ejected(o, CL, &a));
	/* A connect failure counts as a 503, a timeout as a 504 (Envoy's mapping). */
	assert_int_equal(bm_outlier_report(o, CL, &a, BM_L7_OUT_TIMEOUT, 0, &pol, 4, 100), 1);
	assert_true(bm_outlier_ejected(o, CL, &a));
	assert_int_equal(bm_outlier_n_ejected(o), 1);
	/* Another cluster's view of the same address is its own. */
	assert_false(bm_outlier_ejected(o, "outbound|80|v1|backend.default.svc.cluster.local", &a));
	bm_outlier_free(o);
}

static void test_gateway_errors(void **state)
{
	static const struct bm_outlier_policy gw = {
		.set = true, .consecutive_gateway = 2, .interval_ms = 1000, .max_ejection_pct = 100,
	};
	struct bm_outlier *o = bm_outlier_new();
	struct sockaddr_storage a = ep("10.244.1.2");

	(void)state;
	/* consecutive5xxErrors 0 (off): 500s never eject; a 500 also breaks a gateway run. */
	assert_int_equal(fails(o, &a, 10, 500, &gw, 0), 0);
	assert_int_equal(fails(o, &a, 1, 502, &gw, 0), 0);
	assert_int_equal(fails(o, &a, 1, 500, &gw, 0), 0);
	assert_int_equal(fails(o, &a, 1, 503, &gw, 0), 0);
	assert_int_equal(bm_outlier_report(o, CL, &a, BM_L7_OUT_CONNECT_FAIL, 0, &gw, 4, 0), 1);
	bm_outlier_free(o);
}

/* baseEjectionTime x ejections so far, less one per healthy interval; capped at 300 s. */
static void test_ejection_time_grows_and_shrinks(void **state)
{
	struct bm_outlier *o = bm_outlier_new();
	struct sockaddr_storage a = ep("10.244.1.2");
	uint64_t t;

	(void)state;
	assert_int_equal(fails(o, &a, 3, 503, &pol, 0), 1); /* sweeps at 1000, 2000, ... */
	t = back_at(o, &a, 1000, 60000);
	assert_int_equal(t, 2000); /* 2 s */
	assert_int_equal(fails(o, &a, 3, 503, &pol, t), 1);
	assert_int_equal(back_at(o, &a, t + 1000, 60000), t + 4000); /* 2 x 2 s */
	t += 4000;
	assert_int_equal(fails(o, &a, 3, 503, &pol, t), 1);
	assert_int_equal(back_at(o, &a, t + 1000, 60000), t + 6000); /* 3 x 2 s */
	t += 6000;
	/* Healthy for two sweeps: the multiplier comes down from 3 to 1. */
	bm_outlier_sweep(o, t + 1000);
	bm_outlier_sweep(o, t + 2000);
	t += 2000;
	assert_int_equal(fails(o, &a, 3, 503, &pol, t), 1);
	assert_int_equal(back_at(o, &a, t + 1000, 60000), t + 4000); /* 2 x 2 s again */
	bm_outlier_free(o);

	/* Long base times stop at Envoy's max_ejection_time, 300 s. */
	static const struct bm_outlier_policy big = {
		.set = true, .consecutive_5xx = 1, .interval_ms = 1000, .base_ejection_ms = 200000,
		.max_ejection_pct = 100,
	};
	o = bm_outlier_new();
	assert_int_equal(fails(o, &a, 1, 503, &big, 0), 1);
	t = back_at(o, &a, 1000, 1000000);
	assert_int_equal(t, 200000);
	assert_int_equal(fails(o, &a, 1, 503, &big, t), 1);
	assert_int_equal(back_at(o, &a, t + 1000, 2000000), t + 300000); /* not 400 s */
	bm_outlier_free(o);
}

/* maxEjectionPercent: (ejected + 1) / hosts must stay within it; the sweep forgets the healthy. */
static void test_max_ejection_percent(void **state)
{
	struct bm_outlier_policy p = pol;
	struct bm_outlier *o = bm_outlier_new();
	struct sockaddr_storage a = ep("10.244.1.2"), b = ep("10.244.1.3"), c = ep("10.244.1.4");

	(void)state;
	p.max_ejection_pct = 50; /* of 4 hosts: two */
	assert_int_equal(fails(o, &a, 3, 503, &p, 0), 1);
	assert_int_equal(fails(o, &b, 3, 503, &p, 0), 1);
	assert_int_equal(fails(o, &c, 9, 503, &p, 0), 0);
	assert_false(bm_outlier_ejected(o, CL, &c));
	assert_int_equal(bm_outlier_n_ejected(o), 2);
	assert_int_equal(bm_outlier_next_due(o), 1000);
	assert_int_equal(bm_outlier_sweep(o, 999), 0);   /* not due */
	assert_int_equal(bm_outlier_sweep(o, 2000), 2);  /* both back */
	/* c is ejected at its next failure now that there is room. */
	assert_int_equal(fails(o, &c, 1, 503, &p, 2000), 0);
	assert_int_equal(fails(o, &c, 2, 503, &p, 2000), 1);
	bm_outlier_free(o);
}

/* A policy that comes later with a shorter interval moves the next sweep closer. */
static void test_interval_change(void **state)
{
	struct bm_outlier_policy slow = pol, fast = pol;
	struct bm_outlier *o = bm_outlier_new();
	struct sockaddr_storage a = ep("10.244.1.2");

	(void)state;
	slow.interval_ms = 10000;
	assert_int_equal(fails(o, &a, 1, 503, &slow, 0), 0);
	assert_int_equal(bm_outlier_next_due(o), 10000);
	fast.interval_ms = 1000;
	assert_int_equal(fails(o, &a, 2, 503, &fast, 500), 1);
	assert_int_equal(bm_outlier_next_due(o), 1500);
	bm_outlier_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consecutive_and_reset),
		cmocka_unit_test(test_gateway_errors),
		cmocka_unit_test(test_ejection_time_grows_and_shrinks),
		cmocka_unit_test(test_max_ejection_percent),
		cmocka_unit_test(test_interval_change),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
