/* Unit tests of the agent's HTTP router: from manifests to decisions (which rule, which
 * destination by weight, which endpoint, rewrites, redirects, retries, faults, callers). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog.h"
#include "config.h"
#include "outlier.h"
#include "router.h"

static const char *const pods =
	"apiVersion: v1\nkind: Pod\nmetadata: {name: be-v1-a, namespace: default, uid: u1,"
	" labels: {app: backend, version: v1}}\nspec: {nodeName: n2, containers: [{name: c, ports:"
	" [{name: web, containerPort: 8080}]}]}\n"
	"status: {phase: Running, podIPs: [{ip: 10.244.1.10}, {ip: 'fd00::10'}]}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: be-v1-b, namespace: default, uid: u2,"
	" labels: {app: backend, version: v1}}\nspec: {nodeName: n2, containers: [{name: c, ports:"
	" [{name: web, containerPort: 8080}]}]}\n"
	"status: {phase: Running, podIPs: [{ip: 10.244.1.11}, {ip: 'fd00::11'}]}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: be-v2, namespace: default, uid: u3,"
	" labels: {app: backend, version: v2}}\nspec: {nodeName: n2, containers: [{name: c, ports:"
	" [{name: web, containerPort: 9090}]}]}\n"
	"status: {phase: Running, podIPs: [{ip: 10.244.1.12}]}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: default, uid: c1,"
	" labels: {app: client, tier: canary}}\nspec: {nodeName: n1}\n"
	"status: {phase: Running, podIP: 10.244.2.1}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: other, namespace: other, uid: c2,"
	" labels: {app: client}}\nspec: {nodeName: n1}\nstatus: {phase: Running, podIP: 10.244.2.2}\n";

static const char *const svc =
	"apiVersion: v1\nkind: Service\nmetadata: {name: backend, namespace: default}\n"
	"spec:\n  clusterIPs: [10.96.0.10, 'fd00:96::10']\n"
	"  ports: [{name: http, port: 80, targetPort: web}, {name: tcp-raw, port: 81, targetPort: 7000}]\n"
	"  selector: {app: backend}\n";

static const char *const dr_subsets =
	"apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
	"metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
	"  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n";

/* The seed's canary rules, bound to the mesh. */
static const char *const vs_canary =
	"apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
	"metadata: {name: backend, namespace: default}\nspec:\n  hosts: [backend]\n  http:\n"
	"  - name: canary\n    match: [{uri: {prefix: /api/v2}}]\n    route:\n"
	"    - {destination: {host: backend, subset: v2}, weight: 10}\n"
	"    - {destination: {host: backend, subset: v1}, weight: 90}\n"
	"  - name: test\n    match: [{headers: {x-env: {exact: canary}}}]\n"
	"    route: [{destination: {host: backend, subset: v2}}]\n"
	"  - name: callers\n    match: [{sourceLabels: {tier: canary}, uri: {prefix: /who}}]\n"
	"    route: [{destination: {host: backend, subset: v2}}]\n"
	"  - name: rw\n    match: [{uri: {prefix: /old}}]\n    rewrite: {uri: /new}\n"
	"    headers: {request: {set: {x-a: '1'}, remove: [x-b]}, response: {add: {x-c: '2'}}}\n"
	"    timeout: 2s\n    retries: {attempts: 5, perTryTimeout: 500ms, retryOn: 'reset,503'}\n"
	"    route: [{destination: {host: backend, subset: v1}}]\n"
	"  - name: moved\n    match: [{uri: {exact: /moved}}]\n"
	"    redirect: {uri: /here, authority: new.example.com, redirectCode: 302}\n"
	"  - name: direct\n    match: [{uri: {exact: /health}}]\n"
	"    directResponse: {status: 204}\n"
	"  - name: broken\n    match: [{uri: {exact: /broken}}]\n"
	"    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}\n"
	"    route: [{destination: {host: backend, subset: v1}}]\n"
	"  - name: only-api\n    match: [{uri: {prefix: /}}]\n"
	"    route: [{destination: {host: backend, subset: v1}}]\n";

struct world {
	struct bm_config *c;
	struct bm_catalog cat;
	struct bm_router *r;
	struct bm_outlier *od;
};

static void build(struct world *w, const struct bm_router_caller *callers, size_t n, ...)
{
	char name[32], err[256];
	va_list ap;
	int i = 0;

	memset(w, 0, sizeof(*w));
	w->c = bm_config_new();
	w->od = bm_outlier_new();
	assert_non_null(w->c);
	assert_non_null(w->od);
	va_start(ap, n);
	for (const char *d = va_arg(ap, const char *); d; d = va_arg(ap, const char *)) {
		snprintf(name, sizeof(name), "d%d.yaml", i++);
		bm_config_load_buf(w->c, name, d, strlen(d));
	}
	va_end(ap);
	assert_int_equal(bm_catalog_build(&w->cat, w->c), 0);
	if (w->c->n_errors)
		bm_config_print_diags(w->c, stderr);
	assert_int_equal(w->c->n_errors, 0);
	w->r = bm_router_build(&w->cat, callers, n, NULL, w->od, err, sizeof(err));
	assert_non_null(w->r);
}

static void drop(struct world *w)
{
	bm_router_free(w->r);
	bm_catalog_free(&w->cat);
	bm_config_free(w->c);
	bm_outlier_free(w->od);
}

static void sa(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
}

/* "ip:port" of a socket address ("[ip]:port" for IPv6). */
static const char *fmt(const struct sockaddr_storage *ss)
{
	static char out[80];
	char ip[64];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(out, sizeof(out), "%s:%u", ip, ntohs(s4->sin_port));
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(out, sizeof(out), "[%s]:%u", ip, ntohs(s6->sin6_port));
	}
	return out;
}

struct rq {
	struct bm_http_req req;
	struct bm_http_hdr hdrs[4];
};

static void rq_init(struct rq *q, const char *vip, uint16_t port, const char *path)
{
	memset(q, 0, sizeof(*q));
	q->req.method = "GET";
	q->req.path = path;
	q->req.authority = "backend";
	q->req.scheme = "http";
	q->req.hdrs = q->hdrs;
	sa(vip, port, &q->req.orig_dst);
}

static void rq_header(struct rq *q, const char *name, const char *value)
{
	q->hdrs[q->req.n_hdrs++] = (struct bm_http_hdr){ name, strlen(name), value, strlen(value) };
}

static void route(struct world *w, struct rq *q, struct bm_l7_decision *d)
{
	bm_router_route(w->r, &q->req, d);
}

static void test_canary_weights_and_default(void **state)
{
	struct world w;
	struct bm_l7_decision d;
	struct rq q;
	int v1 = 0, v2 = 0, a = 0, b = 0;

	(void)state;
	build(&w, NULL, 0, pods, svc, dr_subsets, vs_canary, NULL);
	rq_init(&q, "10.96.0.10", 80, "/api/v2/items?x=1");
	for (int i = 0; i < 10000; i++) {
		route(&w, &q, &d);
		assert_int_equal(d.action, BM_L7_FORWARD);
		assert_string_equal(d.route_name, "canary");
		if (!strcmp(fmt(&d.upstream), "10.244.1.12:9090")) {
			v2++;
			assert_string_equal(d.cluster, "outbound|80|v2|backend.default.svc.cluster.local");
		} else {
			v1++;
			assert_string_equal(d.cluster, "outbound|80|v1|backend.default.svc.cluster.local");
		}
	}
	/* 10% +- 1.5% over 10000 requests (the binomial's sd is 0.3%). */
	assert_true(v2 > 850 && v2 < 1150);
	assert_int_equal(v1 + v2, 10000);

	/* No /api/v2: the catch-all rule, v1 only, round robin over both v1 pods. */
	rq_init(&q, "10.96.0.10", 80, "/api/v1");
	for (int i = 0; i < 100; i++) {
		route(&w, &q, &d);
		assert_int_equal(d.action, BM_L7_FORWARD);
		assert_string_equal(d.route_name, "only-api");
		a += !strcmp(fmt(&d.upstream), "10.244.1.10:8080");
		b += !strcmp(fmt(&d.upstream), "10.244.1.11:8080");
	}
	assert_int_equal(a, 50);
	assert_int_equal(b, 50);
	/* A retry goes to another endpoint than the last try (Istio's previous_hosts). */
	for (int i = 0; i < 100; i++) {
		struct sockaddr_storage last;

		route(&w, &q, &d);
		last = d.upstream;
		q.req.attempt = 1;
		q.req.prev_upstream = last;
		route(&w, &q, &d);
		char was[80];

		snprintf(was, sizeof(was), "%s", fmt(&last));
		assert_string_not_equal(fmt(&d.upstream), was);
		q.req.attempt = 0;
	}
	/* Istio's default retry policy when the route has none. */
	assert_int_equal(d.retries, 2);
	assert_int_equal(d.n_retry_codes, 1);
	assert_int_equal(d.retry_codes[0], 503);
	assert_true(d.retry_on & BM_RETRY_CONNECT_FAILURE);
	assert_int_equal(d.timeout_ms, 0);
	drop(&w);
}

static void test_header_match_and_family(void **state)
{
	struct world w;
	struct bm_l7_decision d;
	struct rq q;

	(void)state;
	build(&w, NULL, 0, pods, svc, dr_subsets, vs_canary, NULL);
	rq_init(&q, "10.96.0.10", 80, "/anything");
	rq_header(&q, "x-env", "canary");
	route(&w, &q, &d);
	assert_string_equal(d.route_name, "test");
	assert_string_equal(fmt(&d.upstream), "10.244.1.12:9090");
	/* The header value must match exactly. */
	q.hdrs[0].value = "canary2";
	q.hdrs[0].value_len = 7;
	route(&w, &q, &d);
	assert_string_equal(d.route_name, "only-api");
	/* An IPv6 client gets an IPv6 endpoint when the destination has one... */
	rq_init(&q, "fd00:96::10", 80, "/x");
	route(&w, &q, &d);
	assert_int_equal(d.upstream.ss_family, AF_INET6);
	assert_true(!strcmp(fmt(&d.upstream), "[fd00::10]:8080") ||
		    !strcmp(fmt(&d.upstream), "[fd00::11]:8080"));
	/* ...and an IPv4 one when it has none (v2 is IPv4 only). */
	rq_header(&q, "x-env", "canary");
	route(&w, &q, &d);
	assert_string_equal(fmt(&d.upstream), "10.244.1.12:9090");
	drop(&w);
}

static void test_rewrite_edits_retries(void **state)
{
	struct world w;
	struct bm_l7_decision d;
	struct rq q;

	(void)state;
	build(&w, NULL, 0, pods, svc, dr_subsets, vs_canary, NULL);
	rq_init(&q, "10.96.0.10", 80, "/old/path?q=1");
	route(&w, &q, &d);
	assert_string_equal(d.route_name, "rw");
	assert_string_equal(d.rewrite_path, "/new/path?q=1");
	assert_int_equal(d.req_edits.n_set, 1);
	assert_string_equal(d.req_edits.set[0].name, "x-a");
	assert_string_equal(d.req_edits.set[0].value, "1");
	assert_int_equal(d.req_edits.n_remove, 1);
	assert_string_equal(d.req_edits.remove[0].name, "x-b");
	assert_int_equal(d.resp_edits.n_add, 1);
	assert_string_equal(d.resp_edits.add[0].name, "x-c");
	assert_int_equal(d.timeout_ms, 2000);
	assert_int_equal(d.retries, 5);
	assert_int_equal(d.per_try_timeout_ms, 500);
	assert_true(d.retry_on & BM_RETRY_RESET);
	assert_false(d.retry_on & BM_RETRY_5XX);
	assert_int_equal(d.n_retry_codes, 1);
	assert_int_equal(d.retry_codes[0], 503);
	drop(&w);
}

static void test_redirect_direct_fault(void **state)
{
	struct world w;
	struct bm_l7_decision d;
	struct rq q;

	(void)state;
	build(&w, NULL, 0, pods, svc, dr_subsets, vs_canary, NULL);
	rq_init(&q, "10.96.0.10", 80, "/moved");
	route(&w, &q, &d);
	assert_int_equal(d.action, BM_L7_RESPOND);
	assert_int_equal(d.status, 302);
	assert_string_equal(d.location, "http://new.example.com/here");
	rq_init(&q, "10.96.0.10", 80, "/health");
	route(&w, &q, &d);
	assert_int_equal(d.action, BM_L7_RESPOND);
	assert_int_equal(d.status, 204);
	rq_init(&q, "10.96.0.10", 80, "/broken");
	route(&w, &q, &d);
	assert_int_equal(d.action, BM_L7_RESPOND);
	assert_int_equal(d.status, 418);
	drop(&w);
}

static void test_callers_and_unknown(void **state)
{
	struct world w;
	struct bm_l7_decision d;
	struct bm_router_caller callers[2];
	struct rq q;
	struct sockaddr_storage up;

	(void)state;
	/* The pods are in the config: name callers 7 (client, tier canary) and 9 (other). */
	struct bm_config *c = bm_config_new();

	bm_config_load_buf(c, "p.yaml", pods, strlen(pods));
	/* As in the agent, the pods handed over are copies in a view freed after the build. */
	struct bm_pod *view = calloc(c->n_pods, sizeof(*view));

	assert_non_null(view);
	for (size_t i = 0; i < c->n_pods; i++) {
		view[i] = c->pods[i];
		if (!strcmp(c->pods[i].meta.name, "client"))
			callers[0] = (struct bm_router_caller){ 7, &view[i] };
		if (!strcmp(c->pods[i].meta.name, "other"))
			callers[1] = (struct bm_router_caller){ 9, &view[i] };
	}
	build(&w, callers, 2, pods, svc, dr_subsets, vs_canary, NULL);
	free(view);
	rq_init(&q, "10.96.0.10", 80, "/who");
	q.req.caller_wl = 7;
	route(&w, &q, &d);
	assert_string_equal(d.route_name, "callers");
	q.req.caller_wl = 9; /* no tier: canary label */
	route(&w, &q, &d);
	assert_string_equal(d.route_name, "only-api");
	q.req.caller_wl = 0; /* unknown caller: sourceLabels cannot match */
	route(&w, &q, &d);
	assert_string_equal(d.route_name, "only-api");

	/* A port without http rules (tcp-raw) is not the router's: answered and closed. */
	rq_init(&q, "10.96.0.10", 81, "/");
	route(&w, &q, &d);
	assert_int_equal(d.action, BM_L7_RESPOND);
	assert_int_equal(d.status, 503);
	assert_true(d.close);
	/* Non-HTTP bytes on a routed port: the service's own endpoints. */
	sa("10.96.0.10", 80, &q.req.orig_dst);
	assert_int_equal(bm_router_tcp_pick(w.r, &q.req.orig_dst, &up), 0);
	assert_true(!strcmp(fmt(&up), "10.244.1.10:8080") || !strcmp(fmt(&up), "10.244.1.11:8080") ||
		    !strcmp(fmt(&up), "10.244.1.12:9090"));
	sa("10.96.0.99", 80, &q.req.orig_dst);
	assert_int_equal(bm_router_tcp_pick(w.r, &q.req.orig_dst, &up), -ENOENT);
	drop(&w);
	bm_config_free(c);
}

static void test_no_match_and_no_endpoint(void **state)
{
	static const char *const vs =
		"apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
		"metadata: {name: backend, namespace: default}\nspec:\n  hosts: [backend]\n  http:\n"
		"  - match: [{uri: {prefix: /a}}]\n    route: [{destination: {host: backend, subset: v3}}]\n"
		"  - match: [{method: {exact: POST}}]\n    route: [{destination: {host: backend}}]\n";
	static const char *const dr3 =
		"apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
		"metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
		"  subsets:\n  - {name: v3, labels: {version: v3}}\n";
	struct world w;
	struct bm_l7_decision d;
	struct rq q;
	struct bm_router_stats st;

	(void)state;
	build(&w, NULL, 0, pods, svc, dr3, vs, NULL);
	rq_init(&q, "10.96.0.10", 80, "/b");
	route(&w, &q, &d);
	assert_int_equal(d.action, BM_L7_RESPOND);
	assert_int_equal(d.status, 404); /* no rule matched: Envoy's NR */
	rq_init(&q, "10.96.0.10", 80, "/a");
	route(&w, &q, &d);
	assert_int_equal(d.action, BM_L7_RESPOND);
	assert_int_equal(d.status, 503); /* subset without endpoints: no healthy upstream */
	q.req.method = "POST";
	q.req.path = "/b";
	route(&w, &q, &d);
	assert_int_equal(d.action, BM_L7_FORWARD);
	bm_router_stats(w.r, &st);
	/* port 80 v4 and v6 VIPs share one routed port; clusters: own, v3, and the service. */
	assert_int_equal(st.ports, 1);
	assert_int_equal(st.rules, 2);
	assert_int_equal(st.clusters, 2);
	drop(&w);
}

/* consistentHash at L7: the same key goes to the same endpoint, keys spread over them, a
 * request without the key is balanced as without a hash; httpCookie with a ttl gives a client
 * without the cookie one (set-cookie) and hashes on it; ejection moves a key elsewhere and it
 * stays there. */
static const char *dr_hash(const char *key)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf),
		 "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
		 "metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
		 "  trafficPolicy:\n    loadBalancer: {consistentHash: {%s}}\n"
		 "    outlierDetection: {consecutive5xxErrors: 1, maxEjectionPercent: 100}\n", key);
	return buf;
}

static const char *const vs_plain =
	"apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
	"metadata: {name: backend, namespace: default}\nspec:\n  hosts: [backend]\n"
	"  http:\n  - route: [{destination: {host: backend}}]\n";

/* Endpoints that answered 20 requests with header/path as given, as "a,b" sorted names. */
static int distinct(struct world *w, struct rq *q, char *first, size_t len)
{
	char seen[3][80] = { "", "", "" };
	struct bm_l7_decision d;
	int n = 0;

	for (int i = 0; i < 20; i++) {
		route(w, q, &d);
		assert_int_equal(d.action, BM_L7_FORWARD);
		const char *e = fmt(&d.upstream);
		int k;

		for (k = 0; k < n && strcmp(seen[k], e); k++)
			;
		if (k == n && n < 3)
			snprintf(seen[n++], sizeof(seen[0]), "%s", e);
	}
	if (first)
		snprintf(first, len, "%s", seen[0]);
	return n;
}

static void test_consistent_hash(void **state)
{
	struct world w;
	struct bm_l7_decision d;
	struct rq q;
	char ep[80], ep2[80], keys[3][80];
	int spread = 0;

	(void)state;
	build(&w, NULL, 0, pods, svc, dr_hash("httpHeaderName: X-User"), vs_plain, NULL);
	for (int u = 0; u < 30; u++) {
		char val[16];

		snprintf(val, sizeof(val), "user-%d", u);
		rq_init(&q, "10.96.0.10", 80, "/x");
		rq_header(&q, "x-user", val);
		assert_int_equal(distinct(&w, &q, ep, sizeof(ep)), 1); /* sticky */
		if (u < 3)
			snprintf(keys[u], sizeof(keys[u]), "%s", ep);
		spread |= 1 << (ep[10] - '0'); /* 10.244.1.1X */
	}
	assert_int_equal(spread, 7); /* 30 users over all three endpoints */
	rq_init(&q, "10.96.0.10", 80, "/x");
	assert_int_equal(distinct(&w, &q, NULL, 0), 3); /* no header: round robin */
	/* The hashed endpoint fails: ejected (consecutive5xxErrors 1), the key moves, and stays. */
	rq_init(&q, "10.96.0.10", 80, "/x");
	rq_header(&q, "X-USER", "user-0");
	route(&w, &q, &d);
	assert_string_equal(fmt(&d.upstream), keys[0]);
	assert_int_equal(bm_router_outcome(w.r, d.cluster, &d.upstream, BM_L7_OUT_RESPONSE, 503, 0), 1);
	assert_int_equal(distinct(&w, &q, ep2, sizeof(ep2)), 1);
	assert_string_not_equal(ep2, keys[0]);
	drop(&w);

	/* Query parameter, and the source address. */
	build(&w, NULL, 0, pods, svc, dr_hash("httpQueryParameterName: session"), vs_plain, NULL);
	rq_init(&q, "10.96.0.10", 80, "/a?x=1&session=abc&y=2");
	assert_int_equal(distinct(&w, &q, ep, sizeof(ep)), 1);
	rq_init(&q, "10.96.0.10", 80, "/b?session=abc");
	assert_int_equal(distinct(&w, &q, ep2, sizeof(ep2)), 1);
	assert_string_equal(ep, ep2); /* same value, other path */
	rq_init(&q, "10.96.0.10", 80, "/b?sessionx=abc");
	assert_int_equal(distinct(&w, &q, NULL, 0), 3);
	drop(&w);
	build(&w, NULL, 0, pods, svc, dr_hash("useSourceIp: true"), vs_plain, NULL);
	rq_init(&q, "10.96.0.10", 80, "/");
	sa("10.244.0.7", 40000, &q.req.client);
	assert_int_equal(distinct(&w, &q, NULL, 0), 1);
	drop(&w);

	/* httpCookie: with a ttl, a cookie is set and hashed on; then the client sends it. */
	build(&w, NULL, 0, pods, svc,
	      dr_hash("httpCookie: {name: bm-affinity, path: /, ttl: 3600s}"), vs_plain, NULL);
	rq_init(&q, "10.96.0.10", 80, "/");
	route(&w, &q, &d);
	assert_int_equal(d.resp_edits.n_add, 1);
	assert_string_equal(d.resp_edits.add[0].name, "set-cookie");
	const char *sc = d.resp_edits.add[0].value;
	char cookie[128];

	assert_int_equal(strncmp(sc, "bm-affinity=\"", 13), 0);
	assert_non_null(strstr(sc, "\"; Max-Age=3600; Path=/; HttpOnly"));
	snprintf(ep, sizeof(ep), "%s", fmt(&d.upstream));
	snprintf(cookie, sizeof(cookie), "theme=dark; bm-affinity=%.*s", 18, sc + 12);
	rq_init(&q, "10.96.0.10", 80, "/");
	rq_header(&q, "cookie", cookie);
	assert_int_equal(distinct(&w, &q, ep2, sizeof(ep2)), 1);
	assert_string_equal(ep, ep2); /* the cookie's endpoint is the one that set it */
	route(&w, &q, &d);
	assert_int_equal(d.resp_edits.n_add, 0); /* it has the cookie: none set */
	drop(&w);
}

/* LEAST_REQUEST (Istio's default) at L7: of the round-robin endpoint and a random other, the
 * one with fewer requests in flight (the engine's load), ties to round robin. */
static uint32_t fake_load(void *arg, const char *cluster, const struct sockaddr_storage *ep)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ep;

	(void)cluster;
	/* 10.244.1.10 is busy (arg: its load), the others idle */
	return ep->ss_family == AF_INET && (ntohl(s4->sin_addr.s_addr) & 0xff) == 10 ?
		       *(uint32_t *)arg :
		       0;
}

static void test_least_request(void **state)
{
	struct world w;
	struct bm_l7_decision d;
	struct rq q;
	uint32_t busy = 5;
	int n[3] = { 0, 0, 0 };

	(void)state;
	build(&w, NULL, 0, pods, svc, vs_plain,
	      "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
	      "metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
	      "  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}\n",
	      NULL);
	bm_router_set_load(w.r, fake_load, &busy);
	for (int i = 0; i < 300; i++) {
		rq_init(&q, "10.96.0.10", 80, "/");
		route(&w, &q, &d);
		n[fmt(&d.upstream)[10] - '0']++; /* 10.244.1.1X */
	}
	assert_int_equal(n[0], 0);               /* the busy one is never picked */
	assert_true(n[1] >= 100 && n[2] >= 100); /* the idle ones share */
	busy = 0;                                /* all idle: round robin, even */
	memset(n, 0, sizeof(n));
	for (int i = 0; i < 300; i++) {
		rq_init(&q, "10.96.0.10", 80, "/");
		route(&w, &q, &d);
		n[fmt(&d.upstream)[10] - '0']++;
	}
	assert_true(n[0] == 100 && n[1] == 100 && n[2] == 100);
	drop(&w);
}

/* The upstream protocol of each cluster, as Istio sets it: HTTP/2 for http2/grpc ports; for
 * http ports HTTP/1.1 unless h2UpgradePolicy UPGRADE, or the client's with useClientProtocol;
 * for ports that declare nothing, the client's. */
static void test_upstream_protocol(void **state)
{
	static const char *const svc_protos =
		"apiVersion: v1\nkind: Service\nmetadata: {name: backend, namespace: default}\n"
		"spec:\n  clusterIPs: [10.96.0.10]\n"
		"  ports: [{name: http, port: 80, targetPort: 8080}, {name: grpc-api, port: 81,"
		" targetPort: 8080}, {name: web, port: 82, targetPort: 8080}, {name: x, port: 83,"
		" targetPort: 8080, appProtocol: kubernetes.io/h2c}]\n"
		"  selector: {app: backend}\n";
	static const char *const vs_all =
		"apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
		"metadata: {name: backend, namespace: default}\nspec:\n  hosts: [backend]\n"
		"  http:\n  - route: [{destination: {host: backend}}]\n";
	static const char *const dr_up =
		"apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
		"metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
		"  trafficPolicy:\n    connectionPool: {http: {h2UpgradePolicy: UPGRADE}}\n"
		"    portLevelSettings:\n    - port: {number: 82}\n"
		"      connectionPool: {http: {useClientProtocol: true}}\n";
	/* port, the client speaks HTTP/2, want (without the DestinationRule, with it) */
	static const struct {
		uint16_t port;
		bool h2;
		uint32_t want, want_dr;
	} cases[] = {
		{ 80, false, BM_L7_PROTO_H1, BM_L7_PROTO_H2 }, { 80, true, BM_L7_PROTO_H1, BM_L7_PROTO_H2 },
		{ 81, false, BM_L7_PROTO_H2, BM_L7_PROTO_H2 }, { 83, false, BM_L7_PROTO_H2, BM_L7_PROTO_H2 },
		{ 82, false, BM_L7_PROTO_H1, BM_L7_PROTO_H1 }, { 82, true, BM_L7_PROTO_H2, BM_L7_PROTO_H2 },
	};
	struct world w;
	struct bm_l7_decision d;
	struct rq q;

	(void)state;
	for (int with_dr = 0; with_dr < 2; with_dr++) {
		build(&w, NULL, 0, pods, svc_protos, vs_all, with_dr ? dr_up : NULL, NULL);
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			rq_init(&q, "10.96.0.10", cases[i].port, "/");
			q.req.http2 = cases[i].h2;
			route(&w, &q, &d);
			assert_int_equal(d.action, BM_L7_FORWARD);
			assert_int_equal(d.upstream_proto, with_dr ? cases[i].want_dr : cases[i].want);
		}
		drop(&w);
	}
}

/* A DestinationRule under http rules: its connectionPool limits go with each request; ejected
 * endpoints are skipped and come back after their time, within maxEjectionPercent. Without
 * the http rules the port is not the router's at all (the kernel routes it). */
static void test_destination_rule_policies(void **state)
{
	static const char *const dr =
		"apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
		"metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
		"  trafficPolicy:\n"
		"    connectionPool: {tcp: {maxConnections: 50}, http: {http1MaxPendingRequests: 7,"
		" maxRequestsPerConnection: 10, maxRetries: 2}}\n"
		"    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s,"
		" maxEjectionPercent: 50}\n"
		"  subsets:\n  - {name: v1, labels: {version: v1}}\n";
	static const char *const vs =
		"apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
		"metadata: {name: backend, namespace: default}\nspec:\n  hosts: [backend]\n"
		"  http:\n  - route: [{destination: {host: backend}}]\n";
	struct world w;
	struct bm_router_stats st;
	struct bm_l7_decision d;
	struct rq q;
	struct sockaddr_storage bad;
	char badname[80];
	int hits = 0;

	(void)state;
	build(&w, NULL, 0, pods, svc, dr, NULL);
	bm_router_stats(w.r, &st);
	assert_int_equal(st.ports, 0); /* the DestinationRule alone: L4, in the kernel */
	drop(&w);
	build(&w, NULL, 0, pods, svc, dr, vs, NULL);
	rq_init(&q, "10.96.0.10", 80, "/x");
	route(&w, &q, &d);
	assert_int_equal(d.action, BM_L7_FORWARD);
	assert_string_equal(d.cluster, "outbound|80||backend.default.svc.cluster.local");
	assert_int_equal(d.pool.max_connections, 50);
	assert_int_equal(d.pool.max_pending, 7);
	assert_int_equal(d.pool.max_requests_per_conn, 10);
	assert_int_equal(d.pool.max_retries, 2);
	assert_int_equal(d.retries, 2); /* Istio's default retry policy */

	/* Three 503s in a row from one endpoint eject it (1 of 3 hosts: 33% <= 50%). */
	bad = d.upstream;
	snprintf(badname, sizeof(badname), "%s", fmt(&bad));
	for (int i = 0; i < 2; i++)
		assert_int_equal(bm_router_outcome(w.r, d.cluster, &bad, BM_L7_OUT_RESPONSE, 503,
						   1000), 0);
	assert_int_equal(bm_router_outcome(w.r, d.cluster, &bad, BM_L7_OUT_RESPONSE, 200, 1000), 0);
	for (int i = 0; i < 2; i++) /* the 200 started the count again */
		assert_int_equal(bm_router_outcome(w.r, d.cluster, &bad, BM_L7_OUT_RESPONSE, 503,
						   1000), 0);
	assert_int_equal(bm_router_outcome(w.r, d.cluster, &bad, BM_L7_OUT_CONNECT_FAIL, 0, 1000), 1);
	for (int i = 0; i < 60; i++) {
		route(&w, &q, &d);
		hits += !strcmp(fmt(&d.upstream), badname);
	}
	assert_int_equal(hits, 0);
	/* A second one would be 2 of 3 (66% > 50%): not ejected however it fails. */
	struct sockaddr_storage other = d.upstream;

	for (int i = 0; i < 10; i++)
		assert_int_equal(bm_router_outcome(w.r, d.cluster, &other, BM_L7_OUT_RESPONSE, 500,
						   1000), 0);
	/* Back after baseEjectionTime, at the next sweep. */
	assert_int_equal(bm_outlier_sweep(w.od, 30000), 0);
	assert_int_equal(bm_outlier_sweep(w.od, 31500), 1);
	hits = 0;
	for (int i = 0; i < 60; i++) {
		route(&w, &q, &d);
		hits += !strcmp(fmt(&d.upstream), badname);
	}
	assert_int_equal(hits, 20);
	drop(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canary_weights_and_default),
		cmocka_unit_test(test_header_match_and_family),
		cmocka_unit_test(test_rewrite_edits_retries),
		cmocka_unit_test(test_redirect_direct_fault),
		cmocka_unit_test(test_callers_and_unknown),
		cmocka_unit_test(test_no_match_and_no_endpoint),
		cmocka_unit_test(test_destination_rule_policies),
		cmocka_unit_test(test_consistent_hash),
		cmocka_unit_test(test_upstream_protocol),
		cmocka_unit_test(test_least_request),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
