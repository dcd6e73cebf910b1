/* Unit tests of VirtualService spec.http: the loader (config_http.c: every field, good and bad,
 * with the exact diagnostics, and the seed files) and the matcher (http_match.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "http_match.h"

/* ---- helpers ---- */

#define VS_HEAD                                    \
	"apiVersion: networking.istio.io/v1\n"     \
	"kind: VirtualService\n"                   \
	"metadata: {name: vs}\n"                   \
	"spec:\n"                                  \
	"  hosts: [backend]\n"                     \
	"  http:\n" /* line 6; rules start at 7 */

static struct bm_config *load(const char *yaml)
{
	struct bm_config *c = bm_config_new();

	assert_non_null(c);
	assert_int_equal(bm_config_load_buf(c, "t.yaml", yaml, strlen(yaml)), 0);
	return c;
}

static void dump(const struct bm_config *c)
{
	fprintf(stderr, "--- %zu diagnostics, %zu errors:\n", c->n_diags, c->n_errors);
	bm_config_print_diags(c, stderr);
}

static bool has_diag(const struct bm_config *c, const char *line)
{
	for (size_t i = 0; i < c->n_diags; i++)
		if (!strcmp(c->diags[i].msg, line))
			return true;
	return false;
}

static size_t count_level(const struct bm_config *c, enum bm_diag_level lvl)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_diags; i++)
		n += c->diags[i].level == lvl;
	return n;
}

#define CHECK(c, cond, what)                                            \
	do {                                                            \
		if (!(cond)) {                                          \
			dump(c);                                        \
			fail_msg("%s (failed: %s)", what, #cond);       \
		}                                                       \
	} while (0)
#define CHECK_DIAG(c, line) CHECK(c, has_diag(c, line), "diagnostic: " line)
#define CHECK_ERRORS(c, n, what) CHECK(c, (c)->n_errors == (n), what)

/* The only VirtualService of c, which must have loaded. */
static const struct bm_virtual_service *the_vs(const struct bm_config *c)
{
	CHECK(c, c->n_errors == 0 && c->n_virtual_services == 1, "one VirtualService, no error");
	return &c->virtual_services[0];
}

static struct bm_http_routes *compile(const struct bm_config *c,
				      const struct bm_virtual_service *vs)
{
	struct bm_http_routes *r = NULL;
	char err[256] = "";

	CHECK(c, bm_http_routes_compile(vs, &r, err, sizeof(err)) == 0 && r, err);
	return r;
}

#define HDR(n, v) { n, sizeof(n) - 1, v, sizeof(v) - 1 }

static struct bm_http_req mkreq(const char *method, const char *path, const char *authority,
				const struct bm_http_hdr *h, size_t n)
{
	struct bm_http_req q;

	memset(&q, 0, sizeof(q));
	q.method = method;
	q.path = path;
	q.authority = authority;
	q.scheme = "http";
	q.hdrs = h;
	q.n_hdrs = n;
	return q;
}

/* The rule a simple request gets from the mesh. */
static int route(const struct bm_http_routes *r, const char *method, const char *path,
		 const struct bm_http_hdr *h, size_t n)
{
	struct bm_http_req q = mkreq(method, path, "backend:8080", h, n);

	return bm_http_routes_match(r, &q, 8080, NULL, NULL, "mesh");
}

/* ---- the loader: every field ---- */

static void test_parse_full(void **state)
{
	(void)state;
	struct bm_config *c = load(VS_HEAD
		"  - name: full\n"                                                     /* 7 */
		"    match:\n"
		"    - name: m0\n"
		"      uri: {prefix: /api}\n"                                          /* 10 */
		"      scheme: {exact: http}\n"
		"      method: {regex: \"GET|HEAD\"}\n"
		"      authority: {prefix: backend}\n"
		"      headers:\n"
		"        X-Env: {exact: canary}\n"                                     /* 15 */
		"        x-present: {}\n"
		"      withoutHeaders: {x-debug: {}}\n"
		"      queryParams: {v: {regex: \"[0-9]+\"}, flag: {}}\n"
		"      ignoreUriCase: true\n"
		"      port: 8080\n"                                                   /* 20 */
		"      sourceLabels: {app: client}\n"
		"      sourceNamespace: prod\n"
		"      gateways: [mesh]\n"
		"      statPrefix: s\n"
		"    route:\n"                                                         /* 25 */
		"    - destination: {host: backend, subset: v2, port: {number: 8080}}\n"
		"      weight: 10\n"
		"      headers:\n"
		"        request: {set: {X-Canary: \"yes\"}, add: {x-b: \"1\"}, remove: [X-Old]}\n"
		"        response: {set: {x-r: \"50%%\"}}\n"                          /* 30 */
		"    - destination: {host: backend, subset: v1}\n"
		"      weight: 90\n"
		"    rewrite: {uri: /v2, authority: backend.prod}\n"
		"    timeout: 10s\n"
		"    retries:\n"                                                       /* 35 */
		"      attempts: 3\n"
		"      perTryTimeout: 250ms\n"
		"      retryOn: 5xx,gateway-error,reset,connect-failure,retriable-4xx,refused-stream,"
		"retriable-status-codes,503,429\n"
		"      retryRemoteLocalities: true\n"
		"    fault:\n"                                                         /* 40 */
		"      delay: {fixedDelay: 1.5s, percentage: {value: 12.5}}\n"
		"      abort: {httpStatus: 503, percentage: {value: 0.0001}}\n"
		"    mirror: {host: shadow, port: {number: 80}}\n"
		"    mirrorPercentage: {value: 25}\n"
		"    headers:\n"                                                       /* 45 */
		"      request: {set: {x-route: r}}\n"
		"      response: {add: {x-served-by: bpfmesh}, remove: [server]}\n"
		"  - redirect: {uri: /new, authority: other, port: 8443, scheme: https, "
		"redirectCode: 308}\n"
		"    match: [{uri: {exact: /old}}]\n"
		"  - match: [{uri: {exact: /gone}}]\n"                                 /* 50 */
		"    directResponse: {status: 410, body: {string: gone}}\n"
		"  - redirect: {uri: /x}\n"
		"    match: [{uri: {exact: /x}}]\n"
		"  - route: [{destination: {host: backend}}]\n"
		"    timeout: 0s\n"                                                    /* 55 */
		"    fault: {delay: {fixedDelay: 1m, percent: 5}}\n");
	const struct bm_virtual_service *v = the_vs(c);
	const struct bm_http_route *rt = &v->http[0];
	const struct bm_http_match *m = &rt->match[0];

	CHECK(c, c->n_diags == 0, "every field honoured (mirror included)");
	CHECK(c, v->has_http && v->http_loc.line == 6 && v->n_http == 5, "five rules");
	CHECK(c, !strcmp(rt->name, "full") && rt->loc.line == 7 && rt->n_match == 1, "rule 0");
	CHECK(c, !strcmp(m->name, "m0") && m->loc.line == 9, "match name and line");
	CHECK(c, m->uri.kind == BM_SM_PREFIX && !strcmp(m->uri.value, "/api") &&
			 m->uri.loc.line == 10,
	      "uri prefix");
	CHECK(c, m->scheme.kind == BM_SM_EXACT && !strcmp(m->scheme.value, "http"), "scheme");
	CHECK(c, m->method.kind == BM_SM_REGEX && !strcmp(m->method.value, "GET|HEAD"), "method");
	CHECK(c, m->authority.kind == BM_SM_PREFIX, "authority");
	CHECK(c, m->n_headers == 2 && !strcmp(m->headers[0].name, "x-env") &&
			 m->headers[0].match.kind == BM_SM_EXACT &&
			 !strcmp(m->headers[0].match.value, "canary") &&
			 m->headers[1].match.kind == BM_SM_PRESENT && !m->headers[1].match.value,
	      "headers: names lowercased, {} is PRESENT");
	CHECK(c, m->n_without_headers == 1 && m->without_headers[0].match.kind == BM_SM_PRESENT,
	      "withoutHeaders");
	CHECK(c, m->n_query_params == 2 && !strcmp(m->query_params[0].name, "v") &&
			 m->query_params[0].match.kind == BM_SM_REGEX &&
			 m->query_params[1].match.kind == BM_SM_PRESENT,
	      "queryParams");
	CHECK(c, m->ignore_uri_case && m->port == 8080 && m->has_source_labels &&
			 !strcmp(bm_labels_get(&m->source_labels, "app"), "client") &&
			 !strcmp(m->source_namespace, "prod") && m->n_gateways == 1 && !m->never,
	      "ignoreUriCase, port, sourceLabels, sourceNamespace, gateways");
	CHECK(c, rt->action == BM_HTTP_FORWARD && rt->n_route == 2 && rt->route[0].weight == 10 &&
			 rt->route[0].has_weight && !strcmp(rt->route[0].dest.subset, "v2") &&
			 rt->route[0].dest.port == 8080 && rt->route[0].dest.loc.line == 26 &&
			 rt->route[1].weight == 90,
	      "weighted destinations");
	const struct bm_http_headers *dh = &rt->route[0].headers;

	CHECK(c, dh->request.n_set == 1 && !strcmp(dh->request.set[0].name, "x-canary") &&
			 !strcmp(dh->request.set[0].value, "yes") && dh->request.n_add == 1 &&
			 dh->request.n_remove == 1 && !strcmp(dh->request.remove[0], "x-old") &&
			 dh->response.n_set == 1 && !strcmp(dh->response.set[0].value, "50%"),
	      "destination header edits: names lowercased, %% unescaped");
	CHECK(c, rt->has_rewrite && !strcmp(rt->rewrite.uri, "/v2") &&
			 !strcmp(rt->rewrite.authority, "backend.prod"),
	      "rewrite");
	CHECK(c, rt->has_timeout && rt->timeout_ms == 10000, "timeout 10s");
	CHECK(c, rt->has_retries && rt->retries.attempts == 3 &&
			 rt->retries.per_try_timeout_ms == 250 && rt->retries.has_retry_on &&
			 rt->retries.retry_on == (BM_RETRY_5XX | BM_RETRY_GATEWAY_ERROR |
						  BM_RETRY_RESET | BM_RETRY_CONNECT_FAILURE |
						  BM_RETRY_RETRIABLE_4XX | BM_RETRY_REFUSED_STREAM) &&
			 rt->retries.n_retry_codes == 2 && rt->retries.retry_codes[0] == 503 &&
			 rt->retries.retry_codes[1] == 429,
	      "retries: every retryOn word and the numeric codes");
	CHECK(c, rt->has_fault && rt->fault.has_delay && rt->fault.delay_ms == 1500 &&
			 rt->fault.delay_ppm == 125000 && rt->fault.has_abort &&
			 rt->fault.abort_status == 503 && rt->fault.abort_ppm == 1,
	      "fault: delay 1.5s at 12.5%, abort 503 at 0.0001%");
	CHECK(c, rt->has_mirror && !strcmp(rt->mirror.host, "shadow") && rt->mirror.port == 80 &&
			 rt->mirror_ppm == 250000,
	      "mirror at 25%");
	CHECK(c, rt->headers.request.n_set == 1 && rt->headers.response.n_add == 1 &&
			 rt->headers.response.n_remove == 1,
	      "route-level header edits");
	rt = &v->http[1];
	CHECK(c, rt->action == BM_HTTP_REDIRECT && !strcmp(rt->redirect.uri, "/new") &&
			 !strcmp(rt->redirect.authority, "other") && rt->redirect.port == 8443 &&
			 !strcmp(rt->redirect.scheme, "https") && rt->redirect.code == 308,
	      "redirect");
	rt = &v->http[2];
	CHECK(c, rt->action == BM_HTTP_DIRECT_RESPONSE && rt->direct_response.status == 410 &&
			 !strcmp(rt->direct_response.body, "gone"),
	      "directResponse");
	CHECK(c, v->http[3].redirect.code == 301, "redirectCode defaults to 301");
	rt = &v->http[4];
	CHECK(c, rt->has_timeout && rt->timeout_ms == 0 && !rt->has_mirror &&
			 rt->mirror_ppm == 1000000 && !rt->route[0].has_weight,
	      "timeout 0s disables; mirror percentage defaults to 100%");
	CHECK(c, rt->fault.delay_ms == 60000 && rt->fault.delay_ppm == 50000 && !rt->fault.has_abort,
	      "delay 1m at the deprecated integer percent 5");
	bm_config_free(c);
}

/* ---- the loader: bad match requests ---- */

static void test_parse_match_bad(void **state)
{
	(void)state;
	struct bm_config *c = load(VS_HEAD
		"  - match:\n"                                                         /* 7 */
		"    - uri: {exact: /a, prefix: /b}\n"
		"      method: {prefix: \"\"}\n"
		"      scheme: {regex: \"\"}\n"                                         /* 10 */
		"      authority: {regex: \"(abc\"}\n"
		"      headers:\n"
		"        \"x env\": {exact: a}\n"
		"        x-null:\n"
		"        X-Dup: {exact: a}\n"                                          /* 15 */
		"        x-dup: {exact: b}\n"
		"        \"@request.auth.claims.group\": {exact: g}\n"
		"      queryParams: {q: {regex: \"(a)\\\\1\"}}\n"
		"      sourceNamespace: Bad_NS\n"
		"      port: 0\n"                                                      /* 20 */
		"      uri2: {exact: x}\n"
		"    route: [{destination: {host: backend}}]\n");

	CHECK(c, c->n_virtual_services == 0, "left out");
	CHECK_DIAG(c, "error: t.yaml:8: VirtualService default/vs: spec.http[0].match[0].uri: "
		      "exact, prefix and regex are exclusive");
	CHECK_DIAG(c, "error: t.yaml:9: VirtualService default/vs: spec.http[0].match[0].method."
		      "prefix: a prefix match must not be empty");
	CHECK_DIAG(c, "error: t.yaml:10: VirtualService default/vs: spec.http[0].match[0].scheme."
		      "regex: a regex match must not be empty");
	CHECK_DIAG(c, "error: t.yaml:11: VirtualService default/vs: spec.http[0].match[0]."
		      "authority.regex: \"(abc\" is not a valid regex: missing closing parenthesis "
		      "at offset 4");
	CHECK_DIAG(c, "error: t.yaml:13: VirtualService default/vs: spec.http[0].match[0].headers."
		      "x env: \"x env\" is not a valid header name ([-_A-Za-z0-9]+)");
	CHECK_DIAG(c, "error: t.yaml:14: VirtualService default/vs: spec.http[0].match[0].headers."
		      "x-null: a match cannot be null (write {} for \"present\")");
	CHECK_DIAG(c, "error: t.yaml:16: VirtualService default/vs: spec.http[0].match[0].headers."
		      "x-dup: header \"x-dup\" given twice (names are case-insensitive)");
	CHECK_DIAG(c, "error: t.yaml:17: VirtualService default/vs: spec.http[0].match[0].headers."
		      "@request.auth.claims.group: JWT claim based routing is only supported for "
		      "gateways");
	CHECK_DIAG(c, "error: t.yaml:18: VirtualService default/vs: spec.http[0].match[0]."
		      "queryParams.q.regex: \"(a)\\1\" is not a valid regex: backreferences are not "
		      "RE2 syntax");
	CHECK_DIAG(c, "error: t.yaml:19: VirtualService default/vs: spec.http[0].match[0]."
		      "sourceNamespace: \"Bad_NS\" is not a valid namespace name");
	CHECK_DIAG(c, "error: t.yaml:20: VirtualService default/vs: spec.http[0].match[0].port: "
		      "0 is out of range 1..65535");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[0].match[0].uri2 at t.yaml:21");
	CHECK_ERRORS(c, 11, "eleven errors");
	bm_config_free(c);

	/* Types: a StringMatch is a map, a header name list is not a map. */
	c = load(VS_HEAD
		 "  - match: [{uri: /a, headers: [x], ignoreUriCase: yes}]\n"
		 "    route: [{destination: {host: backend}}]\n");
	CHECK_DIAG(c, "error: t.yaml:7: VirtualService default/vs: spec.http[0].match[0].uri: "
		      "expected a map, got the string \"/a\"");
	CHECK_DIAG(c, "error: t.yaml:7: VirtualService default/vs: spec.http[0].match[0].headers: "
		      "expected a map, got a list");
	CHECK_DIAG(c, "error: t.yaml:7: VirtualService default/vs: spec.http[0].match[0]."
		      "ignoreUriCase: expected true or false, got yes");
	CHECK_ERRORS(c, 3, "three type errors");
	bm_config_free(c);
}

/* What cannot be evaluated is reported, and its match entry never matches (fail closed). */
static void test_parse_match_unsupported(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: networking.istio.io/v1\n"
				   "kind: VirtualService\n"
				   "metadata: {name: gw, namespace: prod}\n"
				   "spec:\n"
				   "  hosts: [api.example.com]\n"
				   "  gateways: [ingress]\n"
				   "  http:\n"
				   "  - match:\n"
				   "    - uri: {suffix: .js}\n"
				   "    - headers: {\"@request.auth.claims.grp\": {exact: a}}\n"
				   "    - uri: {prefix: /}\n"
				   "    route: [{destination: {host: backend}}]\n");
	const struct bm_virtual_service *v = the_vs(c);

	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[0].match[0].uri.suffix at t.yaml:9");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[0].match[1].headers."
		      "@request.auth.claims.grp at t.yaml:10 (JWT claim routing: this match never "
		      "applies)");
	CHECK_DIAG(c, "warning: t.yaml:1: VirtualService prod/gw: bound to gateway ingress only: "
		      "its routes wait for the Gateway (not supported yet)");
	CHECK(c, v->http[0].match[0].never && v->http[0].match[1].never &&
			 !v->http[0].match[2].never,
	      "the unevaluable entries never match, the others do");
	bm_config_free(c);
}

/* ---- the loader: actions ---- */

static void test_parse_actions_bad(void **state)
{
	(void)state;
	struct bm_config *c = load(VS_HEAD
		"  - match: [{uri: {prefix: /a}}]\n"                                   /* 7 */
		"  - route: [{destination: {host: backend}}]\n"
		"    redirect: {uri: /b}\n"
		"  - redirect: {uri: /c}\n"                                            /* 10 */
		"    rewrite: {uri: /d}\n"
		"    fault: {abort: {httpStatus: 500}}\n"
		"  - route:\n"
		"    - {destination: {host: backend, subset: v1}, weight: -1}\n"
		"    - {destination: {host: backend, subset: v2}}\n"                  /* 15 */
		"  - route: []\n"
		"  - redirect: {redirectCode: 302}\n"
		"  - redirect: {scheme: ftp, redirectCode: 200}\n"
		"  - directResponse: {body: {string: x}}\n"
		"  - directResponse: {status: 100}\n"                                 /* 20 */
		"  - route: [{destination: {host: backend}}]\n"
		"    rewrite: {}\n"
		"  - route: [{destination: {host: backend}}]\n"
		"    rewrite: {uri: /x, uriRegexRewrite: {match: a, rewrite: b}}\n"
		"  - route: [{weight: 1}]\n");                                        /* 25 */

	CHECK(c, c->n_virtual_services == 0, "left out");
	CHECK_DIAG(c, "error: t.yaml:7: VirtualService default/vs: spec.http[0]: route, redirect "
		      "or directResponse is required");
	CHECK_DIAG(c, "error: t.yaml:8: VirtualService default/vs: spec.http[1]: route, redirect, "
		      "directResponse and delegate are exclusive");
	CHECK_DIAG(c, "error: t.yaml:10: VirtualService default/vs: spec.http[2]: a rule cannot "
		      "have both rewrite and redirect");
	CHECK_DIAG(c, "error: t.yaml:10: VirtualService default/vs: spec.http[2]: a rule cannot "
		      "have both fault and redirect");
	CHECK_DIAG(c, "error: t.yaml:14: VirtualService default/vs: spec.http[3].route[0].weight: "
		      "-1 is out of range 0..2147483647");
	CHECK_DIAG(c, "error: t.yaml:14: VirtualService default/vs: spec.http[3].route: the weights "
		      "of several destinations are all zero");
	CHECK_DIAG(c, "error: t.yaml:16: VirtualService default/vs: spec.http[4].route: at least "
		      "one destination is required");
	CHECK_DIAG(c, "error: t.yaml:17: VirtualService default/vs: spec.http[5].redirect: a "
		      "redirect must set uri, authority, scheme or port");
	CHECK_DIAG(c, "error: t.yaml:18: VirtualService default/vs: spec.http[6].redirect.scheme: "
		      "\"ftp\": the scheme must be \"http\" or \"https\"");
	CHECK_DIAG(c, "error: t.yaml:18: VirtualService default/vs: spec.http[6].redirect."
		      "redirectCode: 200 is out of range 300..399");
	CHECK_DIAG(c, "error: t.yaml:19: VirtualService default/vs: spec.http[7].directResponse."
		      "status: required");
	CHECK_DIAG(c, "error: t.yaml:20: VirtualService default/vs: spec.http[8].directResponse."
		      "status: 100 is out of range 200..599");
	CHECK_DIAG(c, "error: t.yaml:22: VirtualService default/vs: spec.http[9].rewrite: a "
		      "rewrite must set uri, uriRegexRewrite or authority");
	CHECK_DIAG(c, "error: t.yaml:24: VirtualService default/vs: spec.http[10].rewrite: uri and "
		      "uriRegexRewrite are exclusive");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[10].rewrite.uriRegexRewrite at "
		      "t.yaml:24");
	CHECK_DIAG(c, "error: t.yaml:25: VirtualService default/vs: spec.http[11].route[0]."
		      "destination: required");
	CHECK_ERRORS(c, 15, "fifteen errors");
	bm_config_free(c);
}

static void test_parse_unsupported_and_delegate(void **state)
{
	(void)state;
	struct bm_config *c = load(VS_HEAD
		"  - match: [{uri: {prefix: /team}}]\n"                                /* 7 */
		"    delegate: {name: team-routes, namespace: team}\n"
		"  - route: [{destination: {host: backend}}]\n"
		"    corsPolicy: {allowOrigins: [{exact: a}]}\n"                       /* 10 */
		"    mirrors: [{destination: {host: shadow}}]\n"
		"    redirect2: {}\n"
		"    rewrite: {uriRegexRewrite: {match: a, rewrite: b}}\n"
		"  - redirect: {derivePort: FROM_REQUEST_PORT, redirectCode: 300}\n"
		"  - directResponse: {status: 200, body: {bytes: Zm9v}}\n"           /* 15 */
		"  - route: [{destination: {host: backend}}]\n");
	const struct bm_virtual_service *v = the_vs(c);

	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[0].delegate at t.yaml:8 (delegate "
		      "VirtualServices are not supported: this rule is skipped)");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[1].corsPolicy at t.yaml:10");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[1].mirrors at t.yaml:11");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[1].redirect2 at t.yaml:12");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[1].rewrite.uriRegexRewrite at "
		      "t.yaml:13");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[2].redirect.derivePort at t.yaml:14");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[2].redirect.redirectCode=300 at "
		      "t.yaml:14");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[3].directResponse.body.bytes at "
		      "t.yaml:15");
	CHECK(c, count_level(c, BM_DIAG_UNSUPPORTED) == 8, "exactly those eight");
	CHECK(c, v->http[0].action == BM_HTTP_DELEGATE && v->http[1].action == BM_HTTP_FORWARD &&
			 !v->http[1].has_rewrite && v->http[2].redirect.code == 301 &&
			 !v->http[3].direct_response.body,
	      "what can be kept is kept");
	bm_config_free(c);
}

/* ---- the loader: durations, retries, fault ---- */

static void test_parse_durations(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		uint32_t ms;
	} good[] = { { "10s", 10000 },	 { "3s", 3000 },	   { "250ms", 250 },
		     { "1.5s", 1500 },	 { "1m", 60000 },	   { "1h", 3600000 },
		     { "1m30s", 90000 }, { "0.001s", 1 },	   { "1000000us", 1000 },
		     { "2000000ns", 2 }, { "1.000000001s", 0 }, { NULL, 0 } };
	static const struct {
		const char *text, *diag;
	} bad[] = {
		{ "\"10\"", "\"10\" is not a duration (e.g. \"10s\", \"1.5s\", \"250ms\", \"1m\")" },
		{ "10", "expected a string, got the number 10 (quote it)" },
		{ "-1s", "\"-1s\": a duration cannot be negative" },
		{ "1.5ms", "\"1.5ms\": only durations to ms precision are supported" },
		{ "10x", "\"10x\" is not a duration (e.g. \"10s\", \"1.5s\", \"250ms\", \"1m\")" },
		{ "s", "\"s\" is not a duration (e.g. \"10s\", \"1.5s\", \"250ms\", \"1m\")" },
		{ "1e3s", "\"1e3s\" is not a duration (e.g. \"10s\", \"1.5s\", \"250ms\", \"1m\")" },
		{ "1200h", "\"1200h\" is too long (at most 49 days)" },
		{ "99999999999999999999h", "\"99999999999999999999h\" is not a duration (e.g. "
					   "\"10s\", \"1.5s\", \"250ms\", \"1m\")" },
		{ NULL, NULL }
	};
	char yaml[512], want[512];

	for (size_t i = 0; good[i].text; i++) {
		snprintf(yaml, sizeof(yaml), VS_HEAD "  - route: [{destination: {host: b}}]\n"
			 "    timeout: %s\n", good[i].text);
		struct bm_config *c = load(yaml);

		if (good[i].ms == 0) { /* sub-ms: refused */
			CHECK(c, c->n_errors == 1, good[i].text);
		} else {
			CHECK(c, c->n_errors == 0 && c->virtual_services[0].http[0].timeout_ms ==
							     good[i].ms,
			      good[i].text);
		}
		bm_config_free(c);
	}
	for (size_t i = 0; bad[i].text; i++) {
		snprintf(yaml, sizeof(yaml), VS_HEAD "  - route: [{destination: {host: b}}]\n"
			 "    timeout: %s\n", bad[i].text);
		snprintf(want, sizeof(want), "error: t.yaml:8: VirtualService default/vs: "
			 "spec.http[0].timeout: %s", bad[i].diag);
		struct bm_config *c = load(yaml);

		CHECK(c, has_diag(c, want) && c->n_errors == 1, want);
		bm_config_free(c);
	}
	/* perTryTimeout and fixedDelay must be at least 1ms; a route timeout may be 0s. */
	struct bm_config *c = load(VS_HEAD "  - route: [{destination: {host: b}}]\n"
				   "    retries: {attempts: 1, perTryTimeout: 0s}\n"
				   "    fault: {delay: {fixedDelay: 0ms, percentage: {value: 1}}}\n");

	CHECK_DIAG(c, "error: t.yaml:8: VirtualService default/vs: spec.http[0].retries."
		      "perTryTimeout: \"0s\": the duration must be at least 1ms");
	CHECK_DIAG(c, "error: t.yaml:9: VirtualService default/vs: spec.http[0].fault.delay."
		      "fixedDelay: \"0ms\": the duration must be at least 1ms");
	CHECK_ERRORS(c, 2, "two errors");
	bm_config_free(c);
}

static void test_parse_retries_fault(void **state)
{
	(void)state;
	struct bm_config *c = load(VS_HEAD
		"  - route: [{destination: {host: b}}]\n"                              /* 7 */
		"    retries: {attempts: 2, retryOn: \"5xx,cancelled,bogus,99,600,,reset\"}\n"
		"  - route: [{destination: {host: b}}]\n"
		"    retries: {attempts: -1}\n"                                        /* 10 */
		"  - route: [{destination: {host: b}}]\n"
		"    retries: {retryOn: 5xx}\n"
		"  - route: [{destination: {host: b}}]\n"
		"    fault: {}\n"
		"  - route: [{destination: {host: b}}]\n"                              /* 15 */
		"    fault:\n"
		"      delay: {percentage: {value: 101}}\n"
		"      abort: {httpStatus: 600, percentage: {value: 0.00001}}\n"
		"  - route: [{destination: {host: b}}]\n"
		"    fault: {abort: {percentage: {value: \"5\"}, httpStatus: 503}}\n" /* 20 */
		"    mirror: {host: shadow}\n"
		"    mirrorPercentage: {value: -1}\n");

	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[0].retries.retryOn=cancelled at "
		      "t.yaml:8");
	CHECK_DIAG(c, "error: t.yaml:8: VirtualService default/vs: spec.http[0].retries.retryOn: "
		      "\"bogus\" is not a valid retryOn policy");
	CHECK_DIAG(c, "error: t.yaml:8: VirtualService default/vs: spec.http[0].retries.retryOn: "
		      "\"99\" is not a valid retryOn policy");
	CHECK_DIAG(c, "error: t.yaml:8: VirtualService default/vs: spec.http[0].retries.retryOn: "
		      "\"600\" is not a valid retryOn policy");
	CHECK_DIAG(c, "error: t.yaml:8: VirtualService default/vs: spec.http[0].retries.retryOn: "
		      "\"\" is not a valid retryOn policy");
	CHECK_DIAG(c, "error: t.yaml:10: VirtualService default/vs: spec.http[1].retries.attempts: "
		      "-1 is out of range 0..2147483647");
	CHECK_DIAG(c, "error: t.yaml:12: VirtualService default/vs: spec.http[2].retries: a retry "
		      "policy is configured but attempts is 0 (retries disabled)");
	CHECK_DIAG(c, "error: t.yaml:14: VirtualService default/vs: spec.http[3].fault: a fault "
		      "must have an abort and/or a delay");
	CHECK_DIAG(c, "error: t.yaml:17: VirtualService default/vs: spec.http[4].fault.delay."
		      "fixedDelay: required");
	CHECK_DIAG(c, "error: t.yaml:17: VirtualService default/vs: spec.http[4].fault.delay."
		      "percentage.value: percentage 101 is neither 0 nor in range 0.0001..100");
	CHECK_DIAG(c, "error: t.yaml:18: VirtualService default/vs: spec.http[4].fault.abort."
		      "httpStatus: 600 is out of range 200..599");
	CHECK_DIAG(c, "error: t.yaml:18: VirtualService default/vs: spec.http[4].fault.abort."
		      "percentage.value: percentage 0.00001 is neither 0 nor in range 0.0001..100");
	CHECK_DIAG(c, "error: t.yaml:20: VirtualService default/vs: spec.http[5].fault.abort."
		      "percentage.value: expected a number, got 5");
	CHECK_DIAG(c, "error: t.yaml:22: VirtualService default/vs: spec.http[5].mirrorPercentage."
		      "value: percentage -1 is neither 0 nor in range 0.0001..100");
	CHECK_ERRORS(c, 13, "thirteen errors");
	bm_config_free(c);

	/* Istio's defaults said aloud: a fault without a percentage injects nothing. */
	c = load(VS_HEAD "  - route: [{destination: {host: b}}]\n"
		 "    fault: {delay: {fixedDelay: 1s}, abort: {httpStatus: 503}}\n"
		 "  - route: [{destination: {host: b}}]\n"
		 "    fault: {abort: {grpcStatus: UNAVAILABLE}}\n");
	CHECK_ERRORS(c, 0, "accepted");
	CHECK_DIAG(c, "warning: t.yaml:8: VirtualService default/vs: spec.http[0].fault.delay: no "
		      "percentage: no request is delayed");
	CHECK_DIAG(c, "warning: t.yaml:8: VirtualService default/vs: spec.http[0].fault.abort: no "
		      "percentage: no request is aborted");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[1].fault.abort.grpcStatus at t.yaml:10");
	CHECK(c, c->virtual_services[0].http[0].fault.delay_ppm == 0 &&
			 !c->virtual_services[0].http[1].fault.has_abort,
	      "0% and no abort");
	bm_config_free(c);
}

/* ---- the loader: header edits ---- */

static void test_parse_headers(void **state)
{
	(void)state;
	struct bm_config *c = load(VS_HEAD
		"  - route: [{destination: {host: b}}]\n"                              /* 7 */
		"    headers:\n"
		"      request:\n"
		"        set: {host: a.example, \":path\": /x, \"x y\": z, x-ok: \"1%\"}\n" /* 10 */
		"        add: {x-nl: \"a\\nb\", x-var: \"%DOWNSTREAM_REMOTE_ADDRESS%\"}\n"
		"        remove: [host, \":authority\"]\n"
		"      response:\n"
		"        set: {Host: x}\n"
		"  - route: [{destination: {host: b}}]\n"                              /* 15 */
		"    rewrite: {authority: a}\n"
		"    headers: {request: {set: {\":authority\": b}}}\n");

	CHECK_DIAG(c, "error: t.yaml:10: VirtualService default/vs: spec.http[0].headers.request."
		      "set.:path: a header name cannot have a \":\" prefix");
	CHECK_DIAG(c, "error: t.yaml:10: VirtualService default/vs: spec.http[0].headers.request."
		      "set.x y: not a valid header name");
	CHECK_DIAG(c, "error: t.yaml:10: VirtualService default/vs: spec.http[0].headers.request."
		      "set.x-ok: un-escaped % (write %% for a literal %)");
	CHECK_DIAG(c, "error: t.yaml:11: VirtualService default/vs: spec.http[0].headers.request."
		      "add.x-nl: control characters are not allowed in a header value");
	CHECK_DIAG(c, "unsupported: VirtualService/spec.http[0].headers.request.add.x-var at "
		      "t.yaml:11 (Envoy %VARIABLE% values are not expanded: this header is not "
		      "edited)");
	CHECK_DIAG(c, "error: t.yaml:12: VirtualService default/vs: spec.http[0].headers.request."
		      "remove[0]: the Host header cannot be changed here");
	CHECK_DIAG(c, "error: t.yaml:12: VirtualService default/vs: spec.http[0].headers.request."
		      "remove[1]: the Host header cannot be changed here");
	CHECK_DIAG(c, "error: t.yaml:14: VirtualService default/vs: spec.http[0].headers.response."
		      "set.Host: the Host header cannot be changed here");
	CHECK_DIAG(c, "error: t.yaml:15: VirtualService default/vs: spec.http[1]: the authority is "
		      "set twice: rewrite.authority and headers.request.set.:authority");
	CHECK_ERRORS(c, 8, "eight errors");
	bm_config_free(c);
}

/* ---- the loader: the whole VirtualService ---- */

static void test_parse_vs_level(void **state)
{
	(void)state;
	/* A rule after one without match is never used; an empty http list is fine. */
	struct bm_config *c = load(VS_HEAD
				   "  - route: [{destination: {host: b}}]\n"
				   "  - match: [{uri: {prefix: /a}}]\n"
				   "    route: [{destination: {host: b}}]\n");

	CHECK_ERRORS(c, 0, "accepted");
	CHECK_DIAG(c, "warning: t.yaml:8: VirtualService default/vs: spec.http[1]: never used: "
		      "spec.http[0] before it has no match and takes every request");
	CHECK(c, !has_diag(c, "unsupported: VirtualService/spec.http at t.yaml:6"),
	      "mesh http routes are not reported unsupported");
	bm_config_free(c);

	c = load("apiVersion: networking.istio.io/v1\n"
		 "kind: VirtualService\n"
		 "metadata: {name: two}\n"
		 "spec:\n"
		 "  hosts: [a.example.com]\n"
		 "  gateways: [gw1, istio-system/gw2]\n"
		 "  http: [{route: [{destination: {host: b}}]}]\n");
	CHECK_DIAG(c, "warning: t.yaml:1: VirtualService default/two: bound to gateways gw1, "
		      "istio-system/gw2 only: its routes wait for the Gateway (not supported yet)");
	bm_config_free(c);

	c = load("apiVersion: networking.istio.io/v1\n"
		 "kind: VirtualService\n"
		 "metadata: {name: both}\n"
		 "spec:\n"
		 "  hosts: [backend]\n"
		 "  gateways: [gw1, mesh]\n"
		 "  http: [{route: [{destination: {host: b}}]}]\n");
	CHECK(c, c->n_diags == 0, "bound to the mesh too: no warning");
	bm_config_free(c);

	c = load(VS_HEAD "  - {route: [{destination: {host: b}}]}\n  - 5\n");
	CHECK_DIAG(c, "error: t.yaml:8: VirtualService default/vs: spec.http[1]: expected a map, "
		      "got the number 5");
	bm_config_free(c);
}

/* ---- the seed files ---- */

static const char *seed_path(const char *file, char *buf, size_t len)
{
	const char *env = getenv("BM_EXAMPLES");
	struct stat st;

	snprintf(buf, len, "%s/seed/%s", env ? env : "examples", file);
	return stat(buf, &st) == 0 ? buf : NULL;
}

static void test_seed_files(void **state)
{
	(void)state;
	char path[600], want[800];
	struct bm_config *c = bm_config_new();
	const struct bm_http_route *rt;

	if (!seed_path("04-retry-timeout.yaml", path, sizeof(path)))
		fail_msg("examples/seed not found: run from the repo root or set BM_EXAMPLES");
	assert_int_equal(bm_config_load_file(c, path), 0);
	CHECK_ERRORS(c, 0, "04 loads with 0 errors");
	CHECK(c, c->n_diags == 0, "and nothing to report");
	rt = &the_vs(c)->http[0];
	CHECK(c, c->virtual_services[0].n_http == 1 && rt->n_match == 0 && rt->n_route == 1 &&
			 !strcmp(rt->route[0].dest.host, "backend"),
	      "one rule to backend");
	CHECK(c, rt->has_timeout && rt->timeout_ms == 10000, "timeout 10s");
	CHECK(c, rt->has_retries && rt->retries.attempts == 3 &&
			 rt->retries.per_try_timeout_ms == 3000 &&
			 rt->retries.retry_on ==
				 (BM_RETRY_5XX | BM_RETRY_RESET | BM_RETRY_CONNECT_FAILURE) &&
			 rt->retries.n_retry_codes == 0,
	      "retries: 3 attempts, 3s per try, on 5xx|reset|connect-failure");
	bm_config_free(c);

	c = bm_config_new();
	seed_path("02-virtualservice-canary.yaml", path, sizeof(path));
	assert_int_equal(bm_config_load_file(c, path), 0);
	CHECK_ERRORS(c, 0, "02 loads with 0 errors");
	snprintf(want, sizeof(want), "warning: %s:1: VirtualService default/backend-routing: bound "
		 "to gateway app-gateway only: its routes wait for the Gateway (not supported yet)",
		 path);
	CHECK(c, has_diag(c, want), "the Gateway-only warning");
	CHECK(c, c->n_diags == 1, "and nothing else");
	bm_config_free(c);
}

/* ---- the matcher ---- */

static void test_match_seed_canary(void **state)
{
	(void)state;
	char path[600];
	struct bm_config *c = bm_config_new();
	const struct bm_http_hdr canary[] = { HDR("x-env", "canary") };
	const struct bm_http_hdr other[] = { HDR("x-env", "prod") };

	if (!seed_path("02-virtualservice-canary.yaml", path, sizeof(path)))
		fail_msg("examples/seed not found: run from the repo root or set BM_EXAMPLES");
	assert_int_equal(bm_config_load_file(c, path), 0);
	const struct bm_virtual_service *v = the_vs(c);
	struct bm_http_routes *r = compile(c, v);
	struct bm_http_req q = mkreq("GET", "/api/v2/users?id=1", "api.example.com", NULL, 0);

	CHECK(c, bm_http_routes_match(r, &q, 80, NULL, NULL, "mesh") == -1,
	      "bound to app-gateway only: nothing for the mesh");
	CHECK(c, bm_http_routes_match(r, &q, 80, NULL, NULL, "app-gateway") == 0,
	      "prefix /api/v2 -> rule 0");
	CHECK(c, bm_http_routes_match(r, &q, 80, NULL, NULL, "default/app-gateway") == 0,
	      "the gateway by namespace/name");
	CHECK(c, bm_http_routes_match(r, &q, 80, NULL, NULL, "other/app-gateway") == -1,
	      "a gateway of another namespace is another gateway");
	q = mkreq("GET", "/api/v2", "api.example.com", canary, 1);
	CHECK(c, bm_http_routes_match(r, &q, 80, NULL, NULL, "app-gateway") == 0,
	      "rule 0 comes first even with x-env: canary");
	q = mkreq("GET", "/api/v1/users", "api.example.com", canary, 1);
	CHECK(c, bm_http_routes_match(r, &q, 80, NULL, NULL, "app-gateway") == 1,
	      "x-env: canary -> rule 1");
	q = mkreq("GET", "/api/v1/users", "api.example.com", other, 1);
	CHECK(c, bm_http_routes_match(r, &q, 80, NULL, NULL, "app-gateway") == 2,
	      "anything else -> rule 2");
	q = mkreq("GET", "/api/v2beta", "api.example.com", NULL, 0);
	CHECK(c, bm_http_routes_match(r, &q, 80, NULL, NULL, "app-gateway") == 0,
	      "a prefix is a string prefix, as Envoy's");
	q = mkreq("GET", "http://api.example.com/api/v2/x", "api.example.com", NULL, 0);
	CHECK(c, bm_http_routes_match(r, &q, 80, NULL, NULL, "app-gateway") == 0,
	      "absolute-form target: its path is matched");

	/* The 10/90 split of rule 0. */
	size_t n[2] = { 0, 0 };

	for (uint32_t i = 0; i < 100000; i++)
		n[bm_http_pick_dest(&v->http[0], i * 42949u)]++;
	CHECK(c, n[0] > 9900 && n[0] < 10100 && n[0] + n[1] == 100000, "v2 gets 10%");
	CHECK(c, bm_http_pick_dest(&v->http[1], 12345) == 0, "one destination without weight");
	bm_http_routes_free(r);
	bm_config_free(c);
}

static void test_match_regex(void **state)
{
	(void)state;
	struct bm_config *c = load(VS_HEAD
		"  - match: [{uri: {regex: \"/api/v[0-9]+\"}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{headers: {x-id: {regex: \"[a-f0-9]{4}\"}}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{uri: {regex: \"/end$\"}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{uri: {regex: \"(a+)+b\"}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{uri: {regex: \"/caf\\u00e9/.\"}}]\n"
		"    route: [{destination: {host: b}}]\n");
	const struct bm_http_hdr id_ok[] = { HDR("x-id", "beef") };
	const struct bm_http_hdr id_long[] = { HDR("x-id", "beef0") };
	const struct bm_http_routes *r = compile(c, the_vs(c));
	char evil[80];

	CHECK(c, route(r, "GET", "/api/v12", NULL, 0) == 0, "full match");
	CHECK(c, route(r, "GET", "/api/v12?x=1", NULL, 0) == 0, "the query string is not matched");
	CHECK(c, route(r, "GET", "/api/v12/users", NULL, 0) == -1, "anchored at the end");
	CHECK(c, route(r, "GET", "/x/api/v12", NULL, 0) == -1, "anchored at the start");
	CHECK(c, route(r, "GET", "/", id_ok, 1) == 1, "header regex, full match");
	CHECK(c, route(r, "GET", "/", id_long, 1) == -1, "header regex: no partial match");
	CHECK(c, route(r, "GET", "/end", NULL, 0) == 2, "$ at the end");
	memset(evil, 'a', sizeof(evil) - 2);
	evil[0] = '/';
	evil[sizeof(evil) - 2] = 'c';
	evil[sizeof(evil) - 1] = '\0';
	clock_t t0 = clock();

	CHECK(c, route(r, "GET", evil + 1, NULL, 0) == -1, "catastrophic backtracking: no match");
	CHECK(c, clock() - t0 < 2 * CLOCKS_PER_SEC, "and bounded by the match limit");
	CHECK(c, route(r, "GET", "/caf\xc3\xa9/\xc3\xa9", NULL, 0) == 4,
	      "UTF-8: '.' is one character");
	CHECK(c, route(r, "GET", "/caf\xc3\xa9/\xff", NULL, 0) == -1,
	      "invalid UTF-8 does not match '.' (and is no error)");
	bm_http_routes_free((struct bm_http_routes *)r);
	bm_config_free(c);
}

static void test_match_uri_case(void **state)
{
	(void)state;
	struct bm_config *c = load(VS_HEAD
		"  - match: [{uri: {exact: /Hello}, ignoreUriCase: true}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{uri: {prefix: /Static/}, ignoreUriCase: true}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{uri: {regex: \"/Re\"}, ignoreUriCase: true}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{uri: {exact: /Case}}]\n"
		"    route: [{destination: {host: b}}]\n");
	struct bm_http_routes *r = compile(c, the_vs(c));

	CHECK(c, route(r, "GET", "/hello", NULL, 0) == 0 && route(r, "GET", "/HELLO", NULL, 0) == 0,
	      "exact, case folded");
	CHECK(c, route(r, "GET", "/static/app.js", NULL, 0) == 1, "prefix, case folded");
	CHECK(c, route(r, "GET", "/Re", NULL, 0) == 2 && route(r, "GET", "/re", NULL, 0) == -1,
	      "regex: ignoreUriCase does not apply (as Envoy)");
	CHECK(c, route(r, "GET", "/case", NULL, 0) == -1 && route(r, "GET", "/Case", NULL, 0) == 3,
	      "case-sensitive without ignoreUriCase");
	bm_http_routes_free(r);
	bm_config_free(c);
}

static void test_match_headers(void **state)
{
	(void)state;
	struct bm_config *c = load(VS_HEAD
		"  - match: [{headers: {X-Must: {}}, withoutHeaders: {x-debug: {}}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{withoutHeaders: {x-env: {exact: prod}}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{headers: {x-multi: {exact: \"a,b\"}}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{headers: {x-p: {prefix: ab}}}]\n"
		"    route: [{destination: {host: b}}]\n");
	struct bm_http_routes *r = compile(c, the_vs(c));
	const struct bm_http_hdr must[] = { HDR("x-must", "") };
	const struct bm_http_hdr must_dbg[] = { HDR("x-must", "1"), HDR("x-debug", "") };
	const struct bm_http_hdr prod[] = { HDR("x-env", "prod") };
	const struct bm_http_hdr staging[] = { HDR("x-env", "staging") };
	const struct bm_http_hdr multi[] = { HDR("x-env", "prod"), HDR("x-multi", "a"),
					     HDR("x-multi", "b") };
	const struct bm_http_hdr upper[] = { HDR("X-P", "abc"), HDR("x-env", "prod") };

	CHECK(c, route(r, "GET", "/", must, 1) == 0, "present: an empty value is present");
	CHECK(c, route(r, "GET", "/", must_dbg, 2) == 1,
	      "withoutHeaders {}: the header must be absent (falls to rule 1)");
	CHECK(c, route(r, "GET", "/", NULL, 0) == 1, "withoutHeaders exact: absent is fine");
	CHECK(c, route(r, "GET", "/", staging, 1) == 1, "withoutHeaders exact: another value");
	CHECK(c, route(r, "GET", "/", prod, 1) == -1, "withoutHeaders exact: that value excludes");
	CHECK(c, route(r, "GET", "/", multi, 3) == 2, "repeated header: values joined with ','");
	CHECK(c, route(r, "GET", "/", upper, 2) == 3, "header names are case-insensitive");
	bm_http_routes_free(r);
	bm_config_free(c);
}

static void test_match_query_params(void **state)
{
	(void)state;
	struct bm_config *c = load(VS_HEAD
		"  - match: [{queryParams: {v: {exact: \"2\"}}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{queryParams: {debug: {}}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{queryParams: {id: {regex: \"[0-9]+\"}, name: {prefix: jo}}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{queryParams: {q: {exact: \"a%20b\"}}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{queryParams: {e: {exact: \"\"}}}]\n"
		"    route: [{destination: {host: b}}]\n");
	struct bm_http_routes *r = compile(c, the_vs(c));

	CHECK(c, route(r, "GET", "/p?a=1&v=2", NULL, 0) == 0, "exact");
	CHECK(c, route(r, "GET", "/p?v=1&v=2", NULL, 0) == -1, "the first value counts");
	CHECK(c, route(r, "GET", "/p?vv=2", NULL, 0) == -1, "names match whole");
	CHECK(c, route(r, "GET", "/p?debug", NULL, 0) == 1, "present without '='");
	CHECK(c, route(r, "GET", "/p?x=1&debug=", NULL, 0) == 1, "present with an empty value");
	CHECK(c, route(r, "GET", "/p?id=42&name=john", NULL, 0) == 2, "every param must match");
	CHECK(c, route(r, "GET", "/p?id=42x&name=john", NULL, 0) == -1, "regex full match");
	CHECK(c, route(r, "GET", "/p?q=a%20b", NULL, 0) == 3, "no percent-decoding");
	CHECK(c, route(r, "GET", "/p?e", NULL, 0) == 4, "exact \"\" matches a bare key");
	CHECK(c, route(r, "GET", "/p?x=1#v=2", NULL, 0) == -1, "the fragment is not the query");
	CHECK(c, route(r, "GET", "/p", NULL, 0) == -1, "no query string");
	bm_http_routes_free(r);
	bm_config_free(c);
}

static void test_match_request_fields(void **state)
{
	(void)state;
	struct bm_config *c = load("apiVersion: networking.istio.io/v1\n"
				   "kind: VirtualService\n"
				   "metadata: {name: vs, namespace: prod}\n"
				   "spec:\n"
				   "  hosts: [backend]\n"
				   "  gateways: [mesh, edge]\n"
				   "  http:\n"
				   "  - match: [{method: {exact: POST}}]\n"
				   "    route: [{destination: {host: b}}]\n"
				   "  - match: [{authority: {exact: \"backend:8080\"}, port: 8080}]\n"
				   "    route: [{destination: {host: b}}]\n"
				   "  - match: [{sourceLabels: {app: client}}]\n"
				   "    route: [{destination: {host: b}}]\n"
				   "  - match: [{sourceNamespace: test}]\n"
				   "    route: [{destination: {host: b}}]\n"
				   "  - match: [{gateways: [edge]}]\n"
				   "    route: [{destination: {host: b}}]\n"
				   "  - match: [{scheme: {exact: https}}]\n"
				   "    route: [{destination: {host: b}}]\n");
	struct bm_http_routes *r = compile(c, the_vs(c));
	struct bm_label lv[] = { { "app", "client" }, { "version", "v1" } };
	struct bm_labels client = { lv, 2 }, other = { lv + 1, 1 };
	struct bm_http_req q = mkreq("POST", "/", "x", NULL, 0);

	CHECK(c, bm_http_routes_match(r, &q, 80, NULL, NULL, NULL) == 0, "method; NULL gateway is "
	      "the mesh");
	q = mkreq("post", "/", "x", NULL, 0);
	CHECK(c, bm_http_routes_match(r, &q, 80, NULL, NULL, "mesh") == -1, "method: case matters");
	q = mkreq("GET", "/", "backend:8080", NULL, 0);
	CHECK(c, bm_http_routes_match(r, &q, 8080, NULL, NULL, "mesh") == 1, "authority and port");
	CHECK(c, bm_http_routes_match(r, &q, 9090, NULL, NULL, "mesh") == -1, "another port");
	CHECK(c, bm_http_routes_match(r, &q, 0, NULL, NULL, "mesh") == -1, "an unknown port");
	q = mkreq("GET", "/", "backend", NULL, 0);
	CHECK(c, bm_http_routes_match(r, &q, 8080, &client, NULL, "mesh") == 2, "sourceLabels");
	CHECK(c, bm_http_routes_match(r, &q, 8080, &other, NULL, "mesh") == -1,
	      "sourceLabels: another workload");
	CHECK(c, bm_http_routes_match(r, &q, 8080, NULL, "test", "mesh") == 3, "sourceNamespace");
	CHECK(c, bm_http_routes_match(r, &q, 8080, NULL, "prod", "mesh") == -1,
	      "sourceNamespace: another namespace");
	CHECK(c, bm_http_routes_match(r, &q, 8080, NULL, NULL, "edge") == 4,
	      "match gateways: edge (a bare name is in the VirtualService's namespace)");
	CHECK(c, bm_http_routes_match(r, &q, 8080, NULL, NULL, "prod/edge") == 4,
	      "match gateways: prod/edge");
	q.scheme = "https";
	CHECK(c, bm_http_routes_match(r, &q, 8080, NULL, NULL, "mesh") == 5, "scheme");
	CHECK(c, bm_http_routes_match(r, &q, 8080, NULL, NULL, "prod/other") == -1,
	      "a gateway the VirtualService is not bound to");
	bm_http_routes_free(r);
	bm_config_free(c);
}

static void test_match_order(void **state)
{
	(void)state;
	struct bm_config *c = load(VS_HEAD
		"  - match: [{uri: {prefix: /team}}]\n"                                /* delegate */
		"    delegate: {name: team}\n"
		"  - match: [{uri: {suffix: .js}}, {uri: {exact: /a}}, {uri: {exact: /b}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - match: [{uri: {prefix: /a}}]\n"
		"    route: [{destination: {host: b}}]\n"
		"  - route: [{destination: {host: b}}]\n");
	struct bm_http_routes *r = compile(c, the_vs(c));
	struct bm_http_req q = mkreq("GET", "/b", "x", NULL, 0);
	int entry = 7;

	CHECK(c, bm_http_routes_match_entry(r, &q, 80, NULL, NULL, "mesh", &entry) == 1 &&
			 entry == 2,
	      "any entry of a rule: the third one");
	CHECK(c, route(r, "GET", "/a", NULL, 0) == 1, "the first rule that matches wins");
	CHECK(c, route(r, "GET", "/ab", NULL, 0) == 2, "else the next");
	CHECK(c, route(r, "GET", "/team/x", NULL, 0) == 3, "the delegate rule is skipped");
	CHECK(c, route(r, "GET", "/x.js", NULL, 0) == 3, "an unsupported entry never matches");
	q = mkreq("GET", "/zz", "x", NULL, 0);
	CHECK(c, bm_http_routes_match_entry(r, &q, 80, NULL, NULL, "mesh", &entry) == 3 &&
			 entry == -1,
	      "a rule without match: entry -1");
	bm_http_routes_free(r);
	bm_config_free(c);
}

static void test_pick_dest(void **state)
{
	(void)state;
	struct bm_http_route_dest d[3] = { 0 };
	struct bm_http_route rt = { .route = d, .n_route = 3 };
	size_t n[3] = { 0, 0, 0 };

	d[0].weight = 1;
	d[1].weight = 0;
	d[2].weight = 3;
	for (uint64_t i = 0; i < (1ull << 32); i += 1 << 12)
		n[bm_http_pick_dest(&rt, (uint32_t)i)]++;
	assert_int_equal(n[0], (1u << 20) / 4);
	assert_int_equal(n[1], 0);
	assert_int_equal(n[2], (1u << 20) / 4 * 3);
	assert_int_equal(bm_http_pick_dest(&rt, 0), 0);
	assert_int_equal(bm_http_pick_dest(&rt, UINT32_MAX), 2);
	rt.n_route = 1;
	d[0].weight = 0;
	assert_int_equal(bm_http_pick_dest(&rt, 123), 0);
	rt.n_route = 0;
	assert_int_equal(bm_http_pick_dest(&rt, 123), -1);

	assert_false(bm_http_chance(0, UINT32_MAX / 3));
	assert_true(bm_http_chance(1000000, UINT32_MAX));
	size_t hits = 0;

	for (uint64_t i = 0; i < (1ull << 32); i += 1 << 12)
		hits += bm_http_chance(125000, (uint32_t)i);
	assert_true(hits > (1u << 20) / 8 - 2 && hits < (1u << 20) / 8 + 2);
}

static void test_rewrite_path(void **state)
{
	(void)state;
	struct bm_config *c = load(VS_HEAD
		"  - match: [{uri: {prefix: /api/v1}}, {uri: {exact: /old}}, {headers: {x: {}}}]\n"
		"    rewrite: {uri: /v2}\n"
		"    route: [{destination: {host: b}}]\n"
		"  - rewrite: {authority: a}\n"
		"    route: [{destination: {host: b}}]\n");
	const struct bm_virtual_service *v = the_vs(c);
	char buf[64];

	CHECK(c, bm_http_rewrite_path(&v->http[0], 0, "/api/v1/users?x=1", buf, sizeof(buf)) ==
				 (int)strlen("/v2/users?x=1") &&
			 !strcmp(buf, "/v2/users?x=1"),
	      "prefix replaced, query kept");
	CHECK(c, bm_http_rewrite_path(&v->http[0], 1, "/old?q", buf, sizeof(buf)) > 0 &&
			 !strcmp(buf, "/v2?q"),
	      "exact: the whole path");
	CHECK(c, bm_http_rewrite_path(&v->http[0], 2, "/x/y", buf, sizeof(buf)) > 0 &&
			 !strcmp(buf, "/v2x/y"),
	      "no uri match: Envoy's implicit prefix \"/\"");
	CHECK(c, bm_http_rewrite_path(&v->http[0], 0, "/api/v1/users", buf, 5) == -1,
	      "too small a buffer");
	CHECK(c, bm_http_rewrite_path(&v->http[1], -1, "/a", buf, sizeof(buf)) == -1,
	      "no uri rewrite");
	bm_config_free(c);
}

/* A compile failure: a model built by hand with a regex pcre2 refuses. */
static void test_compile_error(void **state)
{
	(void)state;
	struct bm_http_match m = { .uri = { .kind = BM_SM_REGEX, .value = "a(" } };
	struct bm_http_route rt = { .match = &m, .n_match = 1, .action = BM_HTTP_FORWARD };
	struct bm_virtual_service vs = { .meta = { .ns = "default" }, .http = &rt, .n_http = 1 };
	struct bm_http_routes *r = (void *)1;
	char err[256];

	assert_int_equal(bm_http_routes_compile(&vs, &r, err, sizeof(err)), -1);
	assert_null(r);
	assert_string_equal(err, "\"a(\" is not a valid regex: missing closing parenthesis at "
				 "offset 2");
	assert_int_equal(bm_http_regex_check("[a-z]+", err, sizeof(err)), 0);
	bm_http_routes_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_full),
		cmocka_unit_test(test_parse_match_bad),
		cmocka_unit_test(test_parse_match_unsupported),
		cmocka_unit_test(test_parse_actions_bad),
		cmocka_unit_test(test_parse_unsupported_and_delegate),
		cmocka_unit_test(test_parse_durations),
		cmocka_unit_test(test_parse_retries_fault),
		cmocka_unit_test(test_parse_headers),
		cmocka_unit_test(test_parse_vs_level),
		cmocka_unit_test(test_seed_files),
		cmocka_unit_test(test_match_seed_canary),
		cmocka_unit_test(test_match_regex),
		cmocka_unit_test(test_match_uri_case),
		cmocka_unit_test(test_match_headers),
		cmocka_unit_test(test_match_query_params),
		cmocka_unit_test(test_match_request_fields),
		cmocka_unit_test(test_match_order),
		cmocka_unit_test(test_pick_dest),
		cmocka_unit_test(test_rewrite_path),
		cmocka_unit_test(test_compile_error),
	};

	return cmocka_run_group_tests_name("http_match", tests, NULL, NULL);
}
