/* Unit tests of the catalog (host resolution, endpoints, DestinationRule/VirtualService binding,
 * reference checks) and of the compiler (subset selection, weight tables, LB precedence). */
#include <arpa/inet.h>
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
#include "tables.h"

struct world {
	struct bm_config *c;
	struct bm_catalog cat;
	struct bm_tables t;
};

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
	"apiVersion: v1\nkind: Pod\nmetadata: {name: be-pending, namespace: default, uid: u4,"
	" labels: {app: backend, version: v1}}\nspec: {nodeName: n2}\n"
	"status: {phase: Pending, podIP: 10.244.1.13}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: default, uid: c1,"
	" labels: {app: client}}\nspec: {nodeName: n1}\nstatus: {phase: Running, podIP: 10.244.2.1}\n";

static const char *const svc =
	"apiVersion: v1\nkind: Service\nmetadata: {name: backend, namespace: default}\n"
	"spec:\n  clusterIPs: [10.96.0.10, 'fd00:96::10']\n"
	"  ports: [{name: http, port: 80, targetPort: web}, {name: raw, port: 81, targetPort: 7000}]\n"
	"  selector: {app: backend}\n";

static const char *const dr_subsets =
	"apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
	"metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
	"  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n";

static int client_cgroup(void *arg, const struct bm_pod *pod, uint64_t *cgid)
{
	(void)arg;
	*cgid = 1000 + (uint64_t)pod->meta.name[0];
	return 0;
}

/* Compile options the next build uses (then reset): the L7 test's listener and ejections. */
static struct bm_compile_opts next_opts;

/* Build a world from documents; NULL-terminated. */
static void build(struct world *w, ...)
{
	struct bm_compile_opts o = next_opts;

	o.node = "n1";
	o.pod_cgroup = client_cgroup;
	memset(&next_opts, 0, sizeof(next_opts));
	char name[32];
	va_list ap;
	int i = 0;

	memset(w, 0, sizeof(*w));
	w->c = bm_config_new();
	assert_non_null(w->c);
	va_start(ap, w);
	for (const char *d = va_arg(ap, const char *); d; d = va_arg(ap, const char *)) {
		snprintf(name, sizeof(name), "d%d.yaml", i++);
		bm_config_load_buf(w->c, name, d, strlen(d));
	}
	va_end(ap);
	assert_int_equal(bm_catalog_build(&w->cat, w->c), 0);
	if (!w->c->n_errors)
		assert_int_equal(bm_compile(&w->cat, &o, &w->t), 0);
}

static void destroy(struct world *w)
{
	bm_tables_free(&w->t);
	bm_catalog_free(&w->cat);
	bm_config_free(w->c);
}

static bool has_diag(const struct bm_config *c, const char *needle)
{
	for (size_t i = 0; i < c->n_diags; i++)
		if (strstr(c->diags[i].msg, needle))
			return true;
	return false;
}

static const struct bm_t_svc *find_svc(const struct world *w, const char *vip, uint16_t port)
{
	struct bm_ip ip;

	assert_int_equal(bm_ip_parse(vip, &ip), 0);
	for (size_t i = 0; i < w->t.n_svc; i++)
		if (!memcmp(w->t.svc[i].key.addr, ip.a, 16) && ntohs(w->t.svc[i].key.port) == port)
			return &w->t.svc[i];
	return NULL;
}

/* "10.244.1.10:8080,10.244.1.11:8080" for a set. */
static void set_members(const struct world *w, uint32_t set, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < w->t.set[set].n && off < len; i++) {
		const struct bm_t_backend *b = &w->t.be[w->t.set[set].be[i]];
		char ip[64];

		bm_ip_format(&b->ip, ip, sizeof(ip));
		off += (size_t)snprintf(buf + off, len - off, "%s%s:%u", i ? "," : "", ip, b->port);
	}
}

static void test_host_resolution(void **state)
{
	struct world w;
	const char *se = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
			 "metadata: {name: ext, namespace: default}\nspec:\n"
			 "  hosts: [api.example.com]\n  addresses: [10.96.5.5]\n"
			 "  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: STATIC\n"
			 "  endpoints: [{address: 10.244.9.9}]\n";
	char *f;

	(void)state;
	f = bm_host_fqdn("backend", "default");
	assert_string_equal(f, "backend.default.svc.cluster.local"); /* short name: own ns */
	free(f);
	f = bm_host_fqdn("backend.other", "default");
	assert_string_equal(f, "backend.other"); /* dotted: as written */
	free(f);
	build(&w, pods, svc, se, NULL);
	const struct bm_cat_svc *s = bm_catalog_find(&w.cat, "backend", "default");

	assert_non_null(s);
	assert_ptr_equal(bm_catalog_find(&w.cat, "backend.default", "x"), s);
	assert_ptr_equal(bm_catalog_find(&w.cat, "backend.default.svc", "x"), s);
	assert_ptr_equal(bm_catalog_find(&w.cat, "backend.default.svc.cluster.local", "x"), s);
	assert_null(bm_catalog_find(&w.cat, "backend", "other")); /* short name is relative */
	assert_null(bm_catalog_find(&w.cat, "backend.default.svc.cluster", "x"));
	assert_non_null(bm_catalog_find(&w.cat, "api.example.com", "anywhere"));
	assert_true(bm_host_match("*.example.com", "api.example.com"));
	assert_false(bm_host_match("*.example.com", "example.com"));
	assert_true(bm_host_match("*", "anything.at.all"));
	destroy(&w);
}

static void test_endpoints_and_named_ports(void **state)
{
	struct world w;
	const struct bm_t_svc *s;
	char m[256];

	(void)state;
	build(&w, pods, svc, NULL);
	assert_int_equal(w.c->n_errors, 0);
	assert_int_equal(w.t.n_svc, 4); /* 2 VIPs x 2 ports */
	s = find_svc(&w, "10.96.0.10", 80);
	assert_non_null(s);
	set_members(&w, w.t.route[s->route].set[0], m, sizeof(m));
	/* Named targetPort resolved per pod; the Pending pod is not an endpoint. */
	assert_string_equal(m, "10.244.1.10:8080,10.244.1.11:8080,10.244.1.12:9090");
	s = find_svc(&w, "fd00:96::10", 80);
	set_members(&w, w.t.route[s->route].set[0], m, sizeof(m));
	assert_string_equal(m, "fd00::10:8080,fd00::11:8080"); /* IPv6 VIP: IPv6 pod addresses */
	s = find_svc(&w, "10.96.0.10", 81);
	set_members(&w, w.t.route[s->route].set[0], m, sizeof(m));
	assert_string_equal(m, "10.244.1.10:7000,10.244.1.11:7000,10.244.1.12:7000");
	assert_int_equal(w.t.set[w.t.route[s->route].set[0]].lb, BM_LB_LEAST_REQUEST); /* default */
	destroy(&w);
}

static void test_explicit_endpoints_win(void **state)
{
	struct world w;
	const char *eps = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			  "metadata: {name: backend-abc, namespace: default, labels:"
			  " {kubernetes.io/service-name: backend}}\naddressType: IPv4\n"
			  "endpoints:\n- addresses: [10.250.0.1]\n- addresses: [10.250.0.2]\n"
			  "  conditions: {ready: false}\nports: [{name: http, port: 5000}]\n";
	char m[256];

	(void)state;
	build(&w, pods, svc, eps, NULL);
	assert_int_equal(w.c->n_errors, 0);
	const struct bm_t_svc *s = find_svc(&w, "10.96.0.10", 80);

	set_members(&w, w.t.route[s->route].set[0], m, sizeof(m));
	assert_string_equal(m, "10.250.0.1:5000"); /* the slice, not the selector; not-ready out */
	s = find_svc(&w, "10.96.0.10", 81);
	assert_int_equal(w.t.set[w.t.route[s->route].set[0]].n, 0); /* slice has no port "raw" */
	destroy(&w);
}

static void test_subsets_and_weights(void **state)
{
	struct world w;
	const char *vs = "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\n"
			 "metadata: {name: canary, namespace: default}\nspec:\n  hosts: [backend]\n"
			 "  tcp:\n  - match: [{port: 80}]\n    route:\n"
			 "    - {destination: {host: backend, subset: v2}, weight: 10}\n"
			 "    - {destination: {host: backend, subset: v1}, weight: 90}\n"
			 "    - {destination: {host: backend, subset: v1}, weight: 0}\n";
	char m[256];

	(void)state;
	build(&w, pods, svc, dr_subsets, vs, NULL);
	assert_int_equal(w.c->n_errors, 0);
	const struct bm_t_svc *s = find_svc(&w, "10.96.0.10", 80);
	const struct bm_t_route *r = &w.t.route[s->route];

	assert_int_equal(r->n, 2); /* the zero-weight destination is dropped */
	assert_int_equal(r->weight[0], 10);
	assert_int_equal(r->weight[1], 90);
	set_members(&w, r->set[0], m, sizeof(m));
	assert_string_equal(m, "10.244.1.12:9090"); /* subset v2 */
	set_members(&w, r->set[1], m, sizeof(m));
	assert_string_equal(m, "10.244.1.10:8080,10.244.1.11:8080"); /* subset v1 */
	/* Port 81 matches no rule: the service's own endpoints. */
	s = find_svc(&w, "10.96.0.10", 81);
	assert_int_equal(w.t.route[s->route].n, 1);
	assert_int_equal(w.t.set[w.t.route[s->route].set[0]].n, 3);
	/* Identical content is shared: the v4 and v6 entries of port 81 differ, v1 sets dedup. */
	assert_true(w.t.n_set <= 6);
	destroy(&w);
}

static void test_lb_precedence(void **state)
{
	struct world w;
	const char *dr = "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
			 "metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
			 "  trafficPolicy:\n    loadBalancer: {simple: RANDOM}\n"
			 "    portLevelSettings: [{port: {number: 81}, loadBalancer: {simple: ROUND_ROBIN}}]\n"
			 "  subsets:\n  - name: v1\n    labels: {version: v1}\n"
			 "    trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}\n"
			 "  - {name: v2, labels: {version: v2}}\n";
	const struct bm_cat_svc *s;

	(void)state;
	build(&w, pods, svc, dr, NULL);
	assert_int_equal(w.c->n_errors, 0);
	s = bm_catalog_find(&w.cat, "backend", "default");
	assert_int_equal(bm_compile_lb(s, NULL, 80), BM_LB_RANDOM);       /* top level */
	assert_int_equal(bm_compile_lb(s, NULL, 81), BM_LB_ROUND_ROBIN);  /* port level wins */
	assert_int_equal(bm_compile_lb(s, "v1", 80), BM_LB_MAGLEV);       /* subset wins */
	assert_int_equal(bm_compile_lb(s, "v2", 81), BM_LB_ROUND_ROBIN);  /* inherits port level */
	assert_int_equal(bm_compile_lb(s, "v2", 80), BM_LB_RANDOM);
	destroy(&w);
}

static void test_dr_namespace_precedence(void **state)
{
	struct world w;
	const char *root = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
			   "metadata: {name: mesh-wide, namespace: istio-system}\nspec:\n"
			   "  host: '*.svc.cluster.local'\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n";
	const char *own = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
			  "metadata: {name: own, namespace: default}\nspec:\n  host: backend\n"
			  "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n";
	const char *dup = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
			  "metadata: {name: own2, namespace: default}\nspec:\n"
			  "  host: backend.default.svc.cluster.local\n"
			  "  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n";

	(void)state;
	build(&w, pods, svc, root, NULL);
	assert_int_equal(bm_compile_lb(bm_catalog_find(&w.cat, "backend", "default"), NULL, 80),
			 BM_LB_RANDOM); /* the mesh-wide wildcard applies */
	destroy(&w);
	build(&w, pods, svc, root, own, dup, NULL);
	assert_int_equal(bm_compile_lb(bm_catalog_find(&w.cat, "backend", "default"), NULL, 80),
			 BM_LB_ROUND_ROBIN); /* exact host beats wildcard; first of equals wins */
	assert_true(has_diag(w.c, "DestinationRule default/own2: host "
				  "backend.default.svc.cluster.local already has DestinationRule"));
	destroy(&w);
}

static void test_dangling_references(void **state)
{
	struct world w;
	const char *vs_host = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
			      "metadata: {name: a, namespace: default}\nspec:\n  hosts: [backend]\n"
			      "  tcp: [{route: [{destination: {host: nosuch}}]}]\n";
	const char *vs_subset = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
				"metadata: {name: b, namespace: default}\nspec:\n  hosts: [backend]\n"
				"  tcp: [{route: [{destination: {host: backend, subset: v9}}]}]\n";
	const char *vs_port = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
			      "metadata: {name: c, namespace: default}\nspec:\n  hosts: [backend]\n"
			      "  tcp: [{route: [{destination: {host: backend, port: {number: 99}}}]}]\n";

	(void)state;
	build(&w, pods, svc, dr_subsets, vs_host, NULL);
	assert_true(w.c->n_errors > 0);
	assert_true(has_diag(w.c, "error: d3.yaml:6: VirtualService default/a: destination host "
				  "\"nosuch\" matches no Service or ServiceEntry"));
	destroy(&w);
	build(&w, pods, svc, dr_subsets, vs_subset, NULL);
	assert_true(has_diag(w.c, "subset \"v9\" of host backend.default.svc.cluster.local is not "
				  "defined by any DestinationRule"));
	destroy(&w);
	build(&w, pods, svc, dr_subsets, vs_port, NULL);
	assert_true(has_diag(w.c, "host backend.default.svc.cluster.local has no TCP port 99"));
	destroy(&w);
}

static void test_source_routes(void **state)
{
	struct world w;
	const char *vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
			 "metadata: {name: r, namespace: default}\nspec:\n  hosts: [backend]\n"
			 "  tcp:\n  - match: [{sourceLabels: {app: client}}]\n"
			 "    route: [{destination: {host: backend, subset: v2}}]\n"
			 "  - route: [{destination: {host: backend, subset: v1}}]\n";
	char m[256];

	(void)state;
	build(&w, pods, svc, dr_subsets, vs, NULL);
	assert_int_equal(w.c->n_errors, 0);
	assert_int_equal(w.t.n_wl, 1); /* only node n1's pod is a local workload */
	assert_string_equal(w.t.wl[0].name, "default/client");
	const struct bm_t_svc *s = find_svc(&w, "10.96.0.10", 80);

	assert_true(s->flags & BM_SVC_F_SRC_ROUTES);
	assert_int_equal(s->n_src, 1);
	set_members(&w, w.t.route[s->route].set[0], m, sizeof(m));
	assert_string_equal(m, "10.244.1.10:8080,10.244.1.11:8080"); /* unknown callers: v1 */
	set_members(&w, w.t.route[s->src[0].route].set[0], m, sizeof(m));
	assert_string_equal(m, "10.244.1.12:9090"); /* app=client: v2 */
	destroy(&w);
}

static void test_service_entry_static_and_none(void **state)
{
	struct world w;
	const char *st = "apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\n"
			 "metadata: {name: db, namespace: default}\nspec:\n  hosts: [db.internal]\n"
			 "  addresses: [10.96.7.7]\n  ports: [{number: 5432, name: pg, protocol: TCP,"
			 " targetPort: 15432}]\n  resolution: STATIC\n  location: MESH_INTERNAL\n"
			 "  endpoints: [{address: 10.244.3.3}, {address: 10.244.3.4, ports: {pg: 6543}}]\n";
	const char *none = "apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\n"
			   "metadata: {name: legacy, namespace: default}\nspec:\n"
			   "  hosts: [legacy.internal]\n  addresses: [10.96.8.8]\n"
			   "  ports: [{number: 7000, name: tcp, protocol: TCP}]\n  resolution: NONE\n";
	char m[256];

	(void)state;
	build(&w, st, none, NULL);
	assert_int_equal(w.c->n_errors, 0);
	const struct bm_t_svc *s = find_svc(&w, "10.96.7.7", 5432);

	assert_non_null(s);
	set_members(&w, w.t.route[s->route].set[0], m, sizeof(m));
	assert_string_equal(m, "10.244.3.3:15432,10.244.3.4:6543"); /* targetPort; ports map wins */
	s = find_svc(&w, "10.96.8.8", 7000);
	assert_non_null(s);
	assert_true(s->flags & BM_SVC_F_PASSTHROUGH);
	assert_int_equal(s->route, BM_T_NONE);
	destroy(&w);
}

/* Ejected by outlier detection: 10.244.1.11:8080 of backend. */
static bool eject_one(void *arg, const char *host, const struct bm_ip *ip, uint16_t port)
{
	char a[64];

	(void)arg;
	bm_ip_format(ip, a, sizeof(a));
	return !strcmp(host, "backend.default.svc.cluster.local") && !strcmp(a, "10.244.1.11") &&
	       port == 8080;
}

static bool eject_all(void *arg, const char *host, const struct bm_ip *ip, uint16_t port)
{
	(void)arg;
	(void)ip;
	(void)port;
	return !strcmp(host, "backend.default.svc.cluster.local");
}

/* Which ports go to the agent: those with http rules (HTTP or sniffed), where the
 * DestinationRule's connectionPool/outlierDetection then apply; a DestinationRule alone keeps
 * its ports in the kernel and says its policies are not enforced there; ejected endpoints
 * leave the kernel's sets. */
static void test_l7_ports_and_ejections(void **state)
{
	static const char *const dr =
		"apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
		"metadata: {name: backend, namespace: default}\nspec:\n  host: backend\n"
		"  trafficPolicy: {connectionPool: {tcp: {maxConnections: 5}}}\n";
	static const char *const db =
		"apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: default}\n"
		"spec:\n  clusterIP: 10.96.0.20\n  ports: [{name: tcp-pg, port: 5432}]\n"
		"  selector: {app: db}\n---\n"
		"apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
		"metadata: {name: db, namespace: default}\nspec:\n  host: db\n"
		"  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 2}}\n";
	static const char *const vs =
		"apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
		"metadata: {name: backend, namespace: default}\nspec:\n  hosts: [backend]\n"
		"  http:\n  - route: [{destination: {host: backend}}]\n";
	struct world w;
	const struct bm_t_svc *e;
	char m[256];

	(void)state;
	next_opts.l7_port = 15001;
	assert_int_equal(bm_ip_parse("10.244.2.254", &next_opts.l7_addr4), 0);
	next_opts.ejected = eject_one;
	build(&w, pods, svc, dr, db, vs, NULL);
	e = find_svc(&w, "10.96.0.10", 80);
	assert_non_null(e);
	assert_true(e->flags & BM_SVC_F_L7); /* http port, http rules: to the agent */
	assert_int_equal(w.t.route[e->route].n, 1);
	set_members(&w, w.t.route[e->route].set[0], m, sizeof(m));
	assert_string_equal(m, "10.244.1.10:8080,10.244.1.12:9090"); /* .11 ejected */
	e = find_svc(&w, "10.96.0.10", 81);
	assert_non_null(e);
	assert_true(e->flags & BM_SVC_F_L7); /* port "raw": no protocol named, sniffed by the agent */
	e = find_svc(&w, "10.96.0.20", 5432);
	assert_non_null(e);
	assert_false(e->flags & BM_SVC_F_L7); /* port "tcp-pg": TCP, stays in the kernel */
	assert_true(has_diag(w.c, "unsupported: DestinationRule default/db: connectionPool "
				  "and outlierDetection for db.default.svc.cluster.local port 5432, "
				  "routed in the kernel (a TCP port)"));
	destroy(&w);

	/* The DestinationRule alone: its HTTP port stays in the kernel, and says so. */
	next_opts.l7_port = 15001;
	assert_int_equal(bm_ip_parse("10.244.2.254", &next_opts.l7_addr4), 0);
	build(&w, pods, svc, dr, NULL);
	e = find_svc(&w, "10.96.0.10", 80);
	assert_non_null(e);
	assert_false(e->flags & BM_SVC_F_L7);
	assert_true(has_diag(w.c, "for backend.default.svc.cluster.local port 80, routed in the "
				  "kernel (no http routes): enforced by the agent on HTTP ports with "
				  "VirtualService http routes only"));
	destroy(&w);

	/* Every endpoint ejected: the kernel keeps them all rather than refuse connections. */
	next_opts.l7_port = 15001;
	assert_int_equal(bm_ip_parse("10.244.2.254", &next_opts.l7_addr4), 0);
	next_opts.ejected = eject_all;
	build(&w, pods, svc, dr, vs, NULL);
	e = find_svc(&w, "10.96.0.10", 80);
	assert_non_null(e);
	set_members(&w, w.t.route[e->route].set[0], m, sizeof(m));
	assert_string_equal(m, "10.244.1.10:8080,10.244.1.11:8080,10.244.1.12:9090");
	destroy(&w);

	/* Without a listener: L4, and a warning says what is not done. */
	build(&w, pods, svc, dr, vs, NULL);
	e = find_svc(&w, "10.96.0.10", 80);
	assert_false(e->flags & BM_SVC_F_L7);
	assert_true(has_diag(w.c, "need the agent's HTTP listener (--l7-addr)"));
	destroy(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_resolution),
		cmocka_unit_test(test_endpoints_and_named_ports),
		cmocka_unit_test(test_explicit_endpoints_win),
		cmocka_unit_test(test_subsets_and_weights),
		cmocka_unit_test(test_lb_precedence),
		cmocka_unit_test(test_dr_namespace_precedence),
		cmocka_unit_test(test_dangling_references),
		cmocka_unit_test(test_source_routes),
		cmocka_unit_test(test_service_entry_static_and_none),
		cmocka_unit_test(test_l7_ports_and_ejections),
	};

	return cmocka_run_group_tests_name("catalog and compiler", tests, NULL, NULL);
}
