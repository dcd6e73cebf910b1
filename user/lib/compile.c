/* Compile the catalog into one node's desired tables: per service address and port, the route
 * its VirtualService tcp rules give (per local caller when rules match sourceLabels), weighted
 * over DestinationRule subsets, each a deduplicated set of backends with its LB algorithm. */
#include <arpa/inet.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "tables.h"

#define GROW(arr, n, cap)                                                          \
	({                                                                         \
		int _ok = 1;                                                       \
		if ((n) == (cap)) {                                                \
			size_t _c = (cap) ? (cap) * 2 : 16;                        \
			void *_p = realloc((arr), _c * sizeof(*(arr)));            \
			if (_p) {                                                  \
				(arr) = _p;                                        \
				(cap) = _c;                                        \
			} else {                                                   \
				_ok = 0;                                           \
			}                                                          \
		}                                                                  \
		_ok;                                                               \
	})

static uint32_t lb_of(const struct bm_lb_policy *p)
{
	if (p->hash_source_ip)
		return BM_LB_MAGLEV;
	switch (p->simple) {
	case BM_LBS_ROUND_ROBIN:
		return BM_LB_ROUND_ROBIN;
	case BM_LBS_RANDOM:
		return BM_LB_RANDOM;
	case BM_LBS_PASSTHROUGH:
		return BM_LB_PASSTHROUGH;
	case BM_LBS_LEAST_REQUEST:
	default:
		return BM_LB_LEAST_REQUEST;
	}
}

/* First loadBalancer set among: port level, then top level, of one traffic policy. */
static const struct bm_lb_policy *policy_lb(const struct bm_traffic_policy *tp, uint16_t port)
{
	for (size_t i = 0; i < tp->n_ports; i++)
		if (tp->ports[i].port == port && tp->ports[i].lb.set)
			return &tp->ports[i].lb;
	return tp->lb.set ? &tp->lb : NULL;
}

const struct bm_lb_policy *bm_compile_lb_policy(const struct bm_cat_svc *s, const char *subset,
						uint16_t port)
{
	const struct bm_lb_policy *p = NULL;

	if (s->dr && subset) {
		const struct bm_subset *ss = bm_cat_subset(s, subset);

		if (ss)
			p = policy_lb(&ss->policy, port);
	}
	if (!p && s->dr)
		p = policy_lb(&s->dr->policy, port);
	return p;
}

uint32_t bm_compile_lb(const struct bm_cat_svc *s, const char *subset, uint16_t port)
{
	const struct bm_lb_policy *p = bm_compile_lb_policy(s, subset, port);

	/* Istio's default is LEAST_REQUEST. A hash on HTTP fields has no meaning for the kernel's
	 * connections: they get the default too (and a diagnostic, l7_diags). */
	return p ? lb_of(p) : BM_LB_LEAST_REQUEST;
}

/* Does a level of s's DestinationRule hash port's requests on HTTP fields (header, cookie,
 * query parameter)? */
static bool lb_wants_l7(const struct bm_cat_svc *s, uint16_t port)
{
	const struct bm_lb_policy *p = s->dr ? bm_compile_lb_policy(s, NULL, port) : NULL;

	if (p && p->hash >= BM_HASH_HEADER)
		return true;
	for (size_t i = 0; s->dr && i < s->dr->n_subsets; i++) {
		p = bm_compile_lb_policy(s, s->dr->subsets[i].name, port);
		if (p && p->hash >= BM_HASH_HEADER)
			return true;
	}
	return false;
}

/* connectionPool and outlierDetection: the first level that sets one, as for loadBalancer
 * (Istio replaces each of them whole, it does not merge their fields). */
#define POLICY_AT(name, type, field)                                                        \
	static const type *name(const struct bm_traffic_policy *tp, uint16_t port)          \
	{                                                                                   \
		for (size_t i = 0; i < tp->n_ports; i++)                                    \
			if (tp->ports[i].port == port && tp->ports[i].field.set)            \
				return &tp->ports[i].field;                                 \
		return tp->field.set ? &tp->field : NULL;                                   \
	}
POLICY_AT(policy_pool, struct bm_conn_pool, pool)
POLICY_AT(policy_outlier, struct bm_outlier_policy, outlier)

const struct bm_conn_pool *bm_compile_pool(const struct bm_cat_svc *s, const char *subset,
					   uint16_t port)
{
	const struct bm_subset *ss = s->dr && subset ? bm_cat_subset(s, subset) : NULL;
	const struct bm_conn_pool *p = ss ? policy_pool(&ss->policy, port) : NULL;

	return p ? p : s->dr ? policy_pool(&s->dr->policy, port) : NULL;
}

const struct bm_outlier_policy *bm_compile_outlier(const struct bm_cat_svc *s, const char *subset,
						   uint16_t port)
{
	const struct bm_subset *ss = s->dr && subset ? bm_cat_subset(s, subset) : NULL;
	const struct bm_outlier_policy *p = ss ? policy_outlier(&ss->policy, port) : NULL;

	return p ? p : s->dr ? policy_outlier(&s->dr->policy, port) : NULL;
}

/* Does any level of s's DestinationRule set a connectionPool or outlierDetection for port? */
static bool dr_wants_l7(const struct bm_cat_svc *s, uint16_t port)
{
	if (!s->dr)
		return false;
	if (bm_compile_pool(s, NULL, port) || bm_compile_outlier(s, NULL, port))
		return true;
	for (size_t i = 0; i < s->dr->n_subsets; i++)
		if (bm_compile_pool(s, s->dr->subsets[i].name, port) ||
		    bm_compile_outlier(s, s->dr->subsets[i].name, port))
			return true;
	return false;
}

/* Only ports with http rules leave the kernel: a DestinationRule alone keeps its service on
 * the L4 path (ambient's choice without a waypoint), so that nothing but HTTP routing costs a
 * userspace hop and every other connection survives an agent restart. */
bool bm_port_routed_l7(const struct bm_cat_svc *s, const struct bm_cat_port *p)
{
	return !s->passthrough && bm_port_http_capable(p) && s->vs && s->vs->has_http;
}

static uint32_t add_backend(struct bm_tables *t, const struct bm_ip *ip, uint16_t port,
			    const char *node)
{
	struct bm_t_backend b = { .ip = *ip, .port = port };

	/* Known to run elsewhere: the same-node bypass never waits for its server end. */
	if (node && t->node && strcmp(node, t->node))
		b.flags = BM_BE_F_REMOTE;
	struct bm_blob_ent *e;
	int created;

	e = bm_blobtab_put(&t->be_idx, &b, sizeof(b), &created);
	if (!e)
		return BM_T_NONE;
	if (!created)
		return (uint32_t)e->val;
	if (!GROW(t->be, t->n_be, t->cap_be)) {
		bm_blobtab_del(&t->be_idx, e);
		return BM_T_NONE;
	}
	t->be[t->n_be] = b;
	e->val = t->n_be;
	return (uint32_t)t->n_be++;
}

static int cmp_backend(const void *a, const void *b, void *arg)
{
	const struct bm_tables *t = arg;
	const struct bm_t_backend *x = &t->be[*(const uint32_t *)a], *y = &t->be[*(const uint32_t *)b];
	int c = memcmp(x->ip.a, y->ip.a, 16);

	return c ? c : (int)x->port - (int)y->port;
}

/* Add a set (deduplicated by content: lb and backend list). Returns its index or BM_T_NONE. */
static uint32_t add_set(struct bm_tables *t, uint32_t lb, uint32_t *be, uint32_t n, const char *desc)
{
	size_t klen = (2 + (size_t)n) * sizeof(uint32_t);
	uint32_t *key = malloc(klen);
	struct bm_blob_ent *e;
	int created;

	if (!key)
		return BM_T_NONE;
	key[0] = lb;
	key[1] = n;
	if (n)
		memcpy(key + 2, be, n * sizeof(uint32_t));
	e = bm_blobtab_put(&t->set_idx, key, klen, &created);
	free(key);
	if (!e)
		return BM_T_NONE;
	if (!created)
		return (uint32_t)e->val;
	if (!GROW(t->set, t->n_set, t->cap_set))
		goto fail;
	struct bm_t_set *s = &t->set[t->n_set];

	memset(s, 0, sizeof(*s));
	s->lb = lb;
	s->n = n;
	s->be = malloc((n ? n : 1) * sizeof(uint32_t));
	s->desc = strdup(desc);
	if (!s->be || !s->desc) {
		free(s->be);
		free(s->desc);
		goto fail;
	}
	if (n)
		memcpy(s->be, be, n * sizeof(uint32_t));
	e->val = t->n_set;
	return (uint32_t)t->n_set++;
fail:
	bm_blobtab_del(&t->set_idx, e);
	return BM_T_NONE;
}

/* The backend set of (service, subset, service port) in one address family. */
static uint32_t build_set(const struct bm_catalog *cat, struct bm_tables *t,
			  const struct bm_cat_svc *s, const char *subset,
			  const struct bm_cat_port *port, bool v4)
{
	const struct bm_subset *ss = subset ? bm_cat_subset(s, subset) : NULL;
	uint32_t lb = bm_compile_lb(s, subset, port ? port->port : 0);
	uint32_t *be = NULL, n = 0, r;
	char desc[512];

	snprintf(desc, sizeof(desc), "%s%s%s:%u %s", s->host, subset ? "/" : "",
		 subset ? subset : "", port ? port->port : 0, v4 ? "v4" : "v6");
	if (s->passthrough)
		lb = BM_LB_PASSTHROUGH;
	if (port && !s->passthrough && s->n_eps) {
		size_t ejected = 0;

		be = malloc(s->n_eps * sizeof(*be));
		if (!be)
			return BM_T_NONE;
		/* Outlier detection's ejections are left out, unless that leaves no endpoint:
		 * then the kernel keeps them all (it fails open; the agent answers 503). */
again:
		for (size_t i = 0; i < s->n_eps; i++) {
			const struct bm_cat_ep *ep = &s->eps[i];
			struct bm_ip ip;
			uint16_t p;
			uint32_t idx;

			if (!ep->ready || bm_cat_ep_addr(ep, v4, &ip))
				continue;
			if (ss && (!ep->labels || !bm_labels_match(&ss->labels, ep->labels)))
				continue;
			p = bm_cat_ep_port(s, ep, port);
			if (!p)
				continue;
			if (ejected != SIZE_MAX && t->opts && t->opts->ejected &&
			    t->opts->ejected(t->opts->arg, s->host, &ip, p)) {
				ejected++;
				continue;
			}
			idx = add_backend(t, &ip, p, bm_cat_ep_node(ep));
			if (idx == BM_T_NONE) {
				free(be);
				return BM_T_NONE;
			}
			be[n++] = idx;
		}
		if (!n && ejected && ejected != SIZE_MAX) {
			ejected = SIZE_MAX;
			goto again;
		}
		qsort_r(be, n, sizeof(*be), cmp_backend, t);
		/* The same address and port through two sources counts once. */
		uint32_t k = 0;

		for (uint32_t i = 0; i < n; i++)
			if (!k || be[k - 1] != be[i])
				be[k++] = be[i];
		n = k;
	}
	if (n > BM_MAX_SET_SIZE) {
		bm_config_diag(cat->cfg, BM_DIAG_ERROR, &s->loc,
			       "%s has %u endpoints, more than the %u a backend set holds", desc, n,
			       BM_MAX_SET_SIZE);
		n = BM_MAX_SET_SIZE;
	}
	r = add_set(t, lb, be, n, desc);
	free(be);
	return r;
}

static uint32_t add_route(struct bm_tables *t, const struct bm_t_route *rt)
{
	struct bm_blob_ent *e;
	int created;

	e = bm_blobtab_put(&t->route_idx, rt, sizeof(*rt), &created);
	if (!e)
		return BM_T_NONE;
	if (!created)
		return (uint32_t)e->val;
	if (!GROW(t->route, t->n_route, t->cap_route)) {
		bm_blobtab_del(&t->route_idx, e);
		return BM_T_NONE;
	}
	t->route[t->n_route] = *rt;
	e->val = t->n_route;
	return (uint32_t)t->n_route++;
}

/* Does a tcp rule apply to a connection to port from caller (NULL: a caller we cannot name)? */
static bool rule_matches(const struct bm_tcp_route *rule, uint16_t port, const struct bm_pod *caller)
{
	if (!rule->n_match)
		return true;
	for (size_t i = 0; i < rule->n_match; i++) {
		const struct bm_l4_match *m = &rule->match[i];
		bool mesh = !m->n_gateways;

		if (m->port && m->port != port)
			continue;
		for (size_t g = 0; g < m->n_gateways; g++)
			mesh = mesh || !strcmp(m->gateways[g], "mesh");
		if (!mesh)
			continue;
		if (m->has_source_labels &&
		    (!caller || !bm_labels_match(&m->source_labels, &caller->meta.labels)))
			continue;
		if (m->source_namespace && (!caller || strcmp(m->source_namespace, caller->meta.ns)))
			continue;
		return true;
	}
	return false;
}

static bool rule_needs_caller(const struct bm_tcp_route *rule)
{
	for (size_t i = 0; i < rule->n_match; i++)
		if (rule->match[i].has_source_labels || rule->match[i].source_namespace)
			return true;
	return false;
}

/* Route of a tcp rule (NULL rule: the service itself) for service port sp of s. */
static uint32_t build_route(const struct bm_catalog *cat, struct bm_tables *t,
			    const struct bm_cat_svc *s, const struct bm_cat_port *sp,
			    const struct bm_tcp_route *rule, bool v4)
{
	struct bm_t_route rt;

	memset(&rt, 0, sizeof(rt));
	if (!rule) {
		rt.n = 1;
		rt.set[0] = build_set(cat, t, s, NULL, sp, v4);
		rt.weight[0] = 100;
		return rt.set[0] == BM_T_NONE ? BM_T_NONE : add_route(t, &rt);
	}
	if (rule->n_route > BM_MAX_DESTS) {
		bm_config_diag(cat->cfg, BM_DIAG_ERROR, &rule->loc,
			       "tcp route of %s has %zu destinations, more than the %u supported",
			       s->host, rule->n_route, BM_MAX_DESTS);
		return BM_T_NONE;
	}
	for (size_t i = 0; i < rule->n_route; i++) {
		const struct bm_route_dest *rd = &rule->route[i];
		const struct bm_cat_svc *target = bm_catalog_find(cat, rd->dest.host, s->vs->meta.ns);
		const struct bm_cat_port *tp = NULL;
		uint32_t w = rule->n_route == 1 ? 100 : rd->weight;
		uint16_t port;

		if (!w)
			continue;
		if (!target) /* reported by the catalog's reference check */
			return BM_T_NONE;
		port = rd->dest.port ? rd->dest.port :
		       target == s ? sp->port :
		       target->n_ports == 1 ? target->ports[0].port : sp->port;
		tp = bm_cat_port_find(target, port, BM_PROTO_TCP);
		if (!tp && !target->passthrough)
			bm_config_diag(cat->cfg, BM_DIAG_WARNING, &rd->dest.loc,
				       "destination %s has no TCP port %u: connections to %s:%u on "
				       "this route are refused",
				       target->host, port, s->host, sp->port);
		rt.set[rt.n] = build_set(cat, t, target, rd->dest.subset, tp, v4);
		if (rt.set[rt.n] == BM_T_NONE)
			return BM_T_NONE;
		rt.weight[rt.n++] = w;
	}
	return add_route(t, &rt);
}

/* Istio's protocol selection: the port name's prefix before "-", or appProtocol. */
enum bm_port_http bm_port_http_kind(const struct bm_cat_port *p)
{
	static const char *const h2[] = { "http2", "grpc", "grpc-web", "h2c", "kubernetes.io/h2c",
					  NULL };
	const char *proto = p->app_protocol;
	char prefix[32];

	if (!bm_port_http_capable(p))
		return BM_PORT_NOT_HTTP;
	if (!proto && p->name) {
		size_t n = strcspn(p->name, "-");

		snprintf(prefix, sizeof(prefix), "%.*s", (int)(n < 31 ? n : 31), p->name);
		proto = prefix;
	}
	if (!proto)
		return BM_PORT_AUTO;
	for (int i = 0; h2[i]; i++)
		if (!strcasecmp(proto, h2[i]))
			return BM_PORT_HTTP2;
	return strcasecmp(proto, "http") ? BM_PORT_AUTO : BM_PORT_HTTP1;
}

bool bm_port_http_capable(const struct bm_cat_port *p)
{
	static const char *const http[] = { "http", "http2", "grpc", "grpc-web", "h2c",
					    "kubernetes.io/h2c", NULL };
	static const char *const other[] = { "tcp", "tls", "https", "mongo", "mysql", "redis",
					     "udp", "unsupported", NULL };
	const char *proto = p->app_protocol;
	char prefix[32];

	if (p->proto != BM_PROTO_TCP)
		return false;
	if (!proto && p->name) {
		size_t n = strcspn(p->name, "-");

		snprintf(prefix, sizeof(prefix), "%.*s", (int)(n < 31 ? n : 31), p->name);
		proto = prefix;
	}
	if (!proto)
		return true; /* no declared protocol: the agent sniffs */
	for (int i = 0; http[i]; i++)
		if (!strcasecmp(proto, http[i]))
			return true;
	for (int i = 0; other[i]; i++)
		if (!strcasecmp(proto, other[i]))
			return false;
	return !p->app_protocol; /* an unknown name prefix is sniffed; an unknown appProtocol not */
}


static int add_svc_entry(const struct bm_catalog *cat, struct bm_tables *t,
			 const struct bm_cat_svc *s, const struct bm_ip *vip,
			 const struct bm_cat_port *sp)
{
	bool v4 = bm_ip_is_v4(vip);
	struct bm_t_svc *e;
	const struct bm_tcp_route *def = NULL;
	bool by_caller = false;

	if (!GROW(t->svc, t->n_svc, t->cap_svc))
		return -1;
	e = &t->svc[t->n_svc];
	memset(e, 0, sizeof(*e));
	memcpy(e->key.addr, vip->a, 16);
	e->key.port = htons(sp->port);
	e->key.proto = (uint8_t)sp->proto;
	if (asprintf(&e->name, "%s:%u/%s", s->host, sp->port,
		     sp->proto == BM_PROTO_UDP ? "UDP" : "TCP") < 0) {
		e->name = NULL;
		return -1;
	}
	t->n_svc++;

	/* VirtualService tcp rules route TCP only (Istio has no UDP routes). */
	if (s->vs && s->vs->n_tcp && sp->proto == BM_PROTO_TCP) {
		for (size_t r = 0; r < s->vs->n_tcp; r++) {
			const struct bm_tcp_route *rule = &s->vs->tcp[r];

			by_caller = by_caller || rule_needs_caller(rule);
			if (rule_matches(rule, sp->port, NULL)) {
				def = rule;
				break;
			}
		}
	}
	if (s->passthrough && !def) {
		e->route = BM_T_NONE;
		e->flags = BM_SVC_F_PASSTHROUGH;
		return 0;
	}
	/* HTTP rules: connections go to the agent, which routes each request. The L4 route
	 * below stays the fallback the kernel uses when no listener serves this family. */
	if (t->l7_port && bm_port_routed_l7(s, sp))
		e->flags |= BM_SVC_F_L7;
	/* No rule for unknown callers: the service's own endpoints, as Istio falls back. */
	e->route = build_route(cat, t, s, sp, def, v4);
	if (e->route == BM_T_NONE)
		return cat->cfg->n_errors ? 0 : -1;
	if (!by_caller)
		return 0;

	/* Rules on sourceLabels/sourceNamespace: the first rule matching each local caller. */
	for (size_t w = 0; w < t->n_wl; w++) {
		const struct bm_pod *caller = t->wl[w].pod;
		uint32_t route;

		const struct bm_tcp_route *rule = NULL;

		for (size_t r = 0; r < s->vs->n_tcp && !rule; r++)
			if (rule_matches(&s->vs->tcp[r], sp->port, caller))
				rule = &s->vs->tcp[r];
		if (rule == def)
			continue;
		route = build_route(cat, t, s, sp, rule, v4);
		if (route == BM_T_NONE)
			return cat->cfg->n_errors ? 0 : -1;
		struct bm_t_src *v = realloc(e->src, (e->n_src + 1) * sizeof(*v));

		if (!v)
			return -1;
		e->src = v;
		e->src[e->n_src].wl = (uint32_t)w;
		e->src[e->n_src++].route = route;
	}
	if (e->n_src)
		e->flags |= BM_SVC_F_SRC_ROUTES;
	return 0;
}

static int add_workloads(const struct bm_catalog *cat, const struct bm_compile_opts *o,
			 struct bm_tables *t)
{
	const struct bm_config *c = cat->cfg;

	for (size_t i = 0; i < c->n_pods; i++) {
		const struct bm_pod *p = &c->pods[i];
		uint64_t cgid;

		if (p->host_network || !p->n_ips || !o->pod_cgroup)
			continue;
		if (o->node && (!p->node_name || strcmp(p->node_name, o->node)))
			continue;
		if (o->pod_cgroup(o->arg, p, &cgid))
			continue;
		if (!GROW(t->wl, t->n_wl, t->cap_wl))
			return -1;
		struct bm_t_wl *w = &t->wl[t->n_wl];

		w->cgid = cgid;
		w->pod = p;
		w->ip = p->ips[0];
		for (size_t k = 0; k < p->n_ips; k++)
			if (bm_ip_is_v4(&p->ips[k])) {
				w->ip = p->ips[k]; /* the hash key of useSourceIp: the IPv4 address */
				break;
			}
		if (asprintf(&w->name, "%s/%s", p->meta.ns, p->meta.name) < 0)
			return -1;
		t->n_wl++;
	}
	return 0;
}

/* What the agent's HTTP side cannot do for s: no listener, or ports under L7 policies that
 * stay in the kernel. */
static void l7_diags(const struct bm_catalog *cat, const struct bm_compile_opts *o,
		     const struct bm_cat_svc *s)
{
	bool routed = false;

	for (size_t p = 0; p < s->n_ports; p++) {
		const struct bm_cat_port *sp = &s->ports[p];

		bool l7 = bm_port_routed_l7(s, sp);

		routed |= l7;
		if (s->dr && sp->proto == BM_PROTO_TCP && !l7 && !s->passthrough &&
		    dr_wants_l7(s, sp->port))
			bm_config_diag(cat->cfg, BM_DIAG_UNSUPPORTED, &s->dr->meta.loc,
				       "DestinationRule %s/%s: connectionPool and outlierDetection "
				       "for %s port %u, routed in the kernel (%s): enforced by the "
				       "agent on HTTP ports with VirtualService http routes only",
				       s->dr->meta.ns, s->dr->meta.name, s->host, sp->port,
				       !bm_port_http_capable(sp) ? "a TCP port" :
				       s->vs && s->vs->n_tcp ? "tcp routes" : "no http routes");
		if (s->dr && sp->proto == BM_PROTO_TCP && !l7 && !s->passthrough &&
		    lb_wants_l7(s, sp->port))
			bm_config_diag(cat->cfg, BM_DIAG_UNSUPPORTED, &s->dr->meta.loc,
				       "DestinationRule %s/%s: consistentHash on an HTTP header, "
				       "cookie or query parameter for %s port %u, routed in the "
				       "kernel (%s): connections are balanced by LEAST_REQUEST; the "
				       "hash applies on HTTP ports with VirtualService http routes",
				       s->dr->meta.ns, s->dr->meta.name, s->host, sp->port,
				       !bm_port_http_capable(sp) ? "a TCP port" :
				       s->vs && s->vs->n_tcp ? "tcp routes" : "no http routes");
	}
	if (routed && !o->l7_port)
		bm_config_diag(cat->cfg, BM_DIAG_WARNING, &s->vs->meta.loc,
			       "VirtualService %s/%s: http routes for %s need the agent's HTTP "
			       "listener (--l7-addr): routed at L4 meanwhile",
			       s->vs->meta.ns, s->vs->meta.name, s->host);
}

int bm_compile(const struct bm_catalog *cat, const struct bm_compile_opts *o, struct bm_tables *t)
{
	const struct bm_mesh_settings *mesh = &cat->cfg->mesh;

	memset(t, 0, sizeof(*t));
	t->node = o->node;
	t->opts = o;
	t->l7_port = o->l7_port;
	t->l7_addr4 = o->l7_addr4;
	t->l7_addr6 = o->l7_addr6;
	if (!o->no_bypass && (!mesh->has_bypass || mesh->bypass))
		t->cfg_flags |= BM_CFG_F_BYPASS;
	if (add_workloads(cat, o, t))
		return -1;
	for (size_t i = 0; i < cat->n_svcs; i++) {
		const struct bm_cat_svc *s = &cat->svcs[i];

		if (s->n_vips)
			l7_diags(cat, o, s);
		for (size_t v = 0; v < s->n_vips; v++)
			for (size_t p = 0; p < s->n_ports; p++) {
				if (s->ports[p].proto == BM_PROTO_SCTP)
					continue; /* reported by the loader; no SCTP hooks */
				if (add_svc_entry(cat, t, s, &s->vips[v], &s->ports[p]))
					return -1;
			}
	}
	t->opts = NULL;
	return 0;
}

void bm_tables_free(struct bm_tables *t)
{
	for (size_t i = 0; i < t->n_set; i++) {
		free(t->set[i].be);
		free(t->set[i].desc);
	}
	for (size_t i = 0; i < t->n_svc; i++) {
		free(t->svc[i].src);
		free(t->svc[i].name);
	}
	for (size_t i = 0; i < t->n_wl; i++)
		free(t->wl[i].name);
	free(t->be);
	free(t->set);
	free(t->route);
	free(t->svc);
	free(t->wl);
	bm_blobtab_free(&t->be_idx);
	bm_blobtab_free(&t->set_idx);
	bm_blobtab_free(&t->route_idx);
	memset(t, 0, sizeof(*t));
}
