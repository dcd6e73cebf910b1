/* The agent's HTTP router (router.h): service ports with http rules, their compiled matchers,
 * and the clusters (host, subset, port) their destinations name, each with its endpoints. */
#include "router.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blobtab.h"
#include "bm_svc.h"
#include "http_match.h"
#include "lb_hash.h"
#include "outlier.h"
#include "tables.h"

/* Endpoints of one destination: a service, subset and port (Envoy's cluster). */
struct cluster {
	char *name;                    /* outbound|80|v1|backend.default.svc.cluster.local */
	struct sockaddr_storage *ep4;  /* ready endpoints with an IPv4 address */
	struct sockaddr_storage *ep6;
	size_t n4, n6;
	uint32_t lb;                   /* enum bm_lb: ROUND_ROBIN, RANDOM or LEAST_REQUEST here */
	uint8_t proto;                 /* upstream: BM_L7_PROTO_H1/H2, or PROTO_CLIENT */
	uint32_t rr;
	struct bm_l7_pool pool;        /* DestinationRule connectionPool (circuit breaking) */
	/* loadBalancer.consistentHash (in the pinned config), with a Maglev ring per family
	 * over ep4 / ep6 (NULL: too many endpoints, or none). */
	struct bm_lb_policy hash;      /* a copy (the merged config's is freed after the apply;
					* its strings live in the pinned parses); hash.hash NONE:
					* no consistentHash */
	uint32_t *ring4, *ring6, m4, m6;
	struct bm_outlier_policy od;   /* DestinationRule outlierDetection (od.set: on) */
};

/* One VirtualService with http rules, compiled. */
struct vsc {
	struct bm_virtual_service vs;  /* a shallow copy: its arrays live in the pinned parses */
	struct bm_http_routes *routes;
	size_t n_dests;                /* destinations over all its rules (a mirror is one more,
					* after the rule's route destinations) */
	size_t *dest_base;             /* rule -> index of its first destination */
};

/* One service port routed at L7. */
struct rport {
	uint32_t vsc;                  /* index into vscs */
	uint16_t port;
	uint32_t own;                  /* the service's own endpoints at this port (TCP, fallback) */
	uint32_t *dest;                /* destination (dest_base[rule] + i) -> cluster, or
					* UINT32_MAX when it names nothing serving this port */
};

/* A caller's pod as its rules see it: copies of the fields, pointing into the pinned parses
 * (the pod itself may be in a view that is gone after the apply). */
struct caller {
	struct bm_labels labels;
	const char *ns;
};

struct bm_router {
	struct bm_config_pin *pin;
	struct bm_outlier *od;         /* the agent's, outlives routers; NULL: no ejections */
	bm_l7_load_fn load;            /* requests in flight per endpoint (LEAST_REQUEST) */
	void *load_arg;
	struct vsc *vscs;
	size_t n_vscs;
	struct rport *ports;
	size_t n_ports;
	struct cluster *clusters;
	size_t n_clusters, cap_clusters;
	struct bm_blobtab by_key;      /* (vip 16 bytes, port) -> index into ports */
	struct bm_blobtab by_cluster;  /* cluster name -> index into clusters */
	struct bm_blobtab by_wl;       /* wl_id -> index into callers */
	struct caller *callers;
	size_t n_callers;
	uint64_t rnd;                  /* xorshift state */
	char path_buf[8192];           /* rewritten path of the last call */
	char loc_buf[8192];            /* redirect location of the last call */
	char cookie_buf[1024];         /* set-cookie of the last call (consistentHash httpCookie) */
};

/* Istio's default retry policy when a route says nothing: two retries on connection failures,
 * refused streams and 503. */
static const uint16_t default_retry_codes[] = { 503 };
#define DEFAULT_RETRIES 2

static uint32_t rnd32(struct bm_router *r)
{
	uint64_t x = r->rnd;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	r->rnd = x;
	return (uint32_t)(x >> 16);
}

struct key {
	uint8_t addr[16];
	uint16_t port; /* host order */
};

static void ss_from_ip(const struct bm_ip *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (bm_ip_is_v4(ip)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, ip->a + 12, 4);
		s4->sin_port = htons(port);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, ip->a, 16);
		s6->sin6_port = htons(port);
	}
}

/* A socket address as the kernel's 16-byte form and host-order port; -1 for another family. */
static int key_of(const struct sockaddr_storage *ss, struct key *k)
{
	memset(k, 0, sizeof(*k));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		k->addr[10] = k->addr[11] = 0xff;
		memcpy(k->addr + 12, &s4->sin_addr, 4);
		k->port = ntohs(s4->sin_port);
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		memcpy(k->addr, &s6->sin6_addr, 16);
		k->port = ntohs(s6->sin6_port);
		return 0;
	}
	return -1;
}

#define PROTO_CLIENT 0xff /* the client's own protocol (Envoy's USE_DOWNSTREAM_PROTOCOL) */

/* How the agent speaks to a cluster's endpoints, as Istio sets its clusters up: HTTP/2 for
 * ports declared http2/grpc; for http ports HTTP/1.1 unless the DestinationRule says
 * h2UpgradePolicy UPGRADE (HTTP/2) or useClientProtocol (the client's, which wins); for ports
 * that declare nothing, the client's protocol, or HTTP/2 with UPGRADE. */
static uint8_t upstream_proto(enum bm_port_http kind, const struct bm_conn_pool *cp)
{
	if (kind == BM_PORT_HTTP2)
		return BM_L7_PROTO_H2;
	if (cp && cp->use_client_protocol)
		return PROTO_CLIENT;
	if (cp && cp->h2_upgrade == BM_H2UP_UPGRADE)
		return BM_L7_PROTO_H2;
	return kind == BM_PORT_AUTO ? PROTO_CLIENT : BM_L7_PROTO_H1;
}

static uint8_t proto_for(const struct cluster *c, const struct bm_http_req *req)
{
	if (c->proto == PROTO_CLIENT)
		return req->http2 ? BM_L7_PROTO_H2 : BM_L7_PROTO_H1;
	return c->proto;
}

static void cluster_free(struct cluster *c)
{
	free(c->name);
	free(c->ep4);
	free(c->ep6);
	free(c->ring4);
	free(c->ring6);
}

void bm_router_free(struct bm_router *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_vscs; i++) {
		bm_http_routes_free(r->vscs[i].routes);
		free(r->vscs[i].dest_base);
	}
	free(r->vscs);
	for (size_t i = 0; i < r->n_ports; i++)
		free(r->ports[i].dest);
	free(r->ports);
	for (size_t i = 0; i < r->n_clusters; i++)
		cluster_free(&r->clusters[i]);
	free(r->clusters);
	bm_blobtab_free(&r->by_key);
	bm_blobtab_free(&r->by_cluster);
	bm_blobtab_free(&r->by_wl);
	free(r->callers);
	bm_config_pin_free(r->pin);
	free(r);
}

/* The cluster of (s, subset, service port p), made on first use. Index, or UINT32_MAX when
 * out of memory. */
static uint32_t cluster_of(struct bm_router *r, const struct bm_cat_svc *s, const char *subset,
			   const struct bm_cat_port *p)
{
	const struct bm_subset *ss = subset ? bm_cat_subset(s, subset) : NULL;
	char name[1024];
	struct bm_blob_ent *e;
	struct cluster *c;
	int created;

	snprintf(name, sizeof(name), "outbound|%u|%s|%s", p->port, subset ? subset : "", s->host);
	e = bm_blobtab_put(&r->by_cluster, name, strlen(name), &created);
	if (!e)
		return UINT32_MAX;
	if (!created)
		return (uint32_t)e->val;
	if (r->n_clusters == r->cap_clusters) {
		size_t cap = r->cap_clusters ? 2 * r->cap_clusters : 16;
		struct cluster *v = realloc(r->clusters, cap * sizeof(*v));

		if (!v)
			goto fail;
		r->clusters = v;
		r->cap_clusters = cap;
	}
	c = &r->clusters[r->n_clusters];
	memset(c, 0, sizeof(*c));
	c->name = strdup(name);
	c->lb = bm_compile_lb(s, subset, p->port);
	/* LEAST_REQUEST without a loadBalancer too: Istio's default. */
	if (c->lb != BM_LB_RANDOM && c->lb != BM_LB_LEAST_REQUEST)
		c->lb = BM_LB_ROUND_ROBIN; /* PASSTHROUGH, and a hash (c->hash) when no key */
	const struct bm_conn_pool *cp = bm_compile_pool(s, subset, p->port);
	const struct bm_outlier_policy *od = bm_compile_outlier(s, subset, p->port);

	if (cp)
		c->pool = (struct bm_l7_pool){ .max_connections = cp->max_connections,
					       .connect_timeout_ms = cp->connect_timeout_ms,
					       .max_pending = cp->max_pending,
					       .max_requests = cp->max_requests,
					       .max_requests_per_conn = cp->max_requests_per_conn,
					       .idle_timeout_ms = cp->idle_timeout_ms,
					       .max_retries = cp->max_retries };
	if (od)
		c->od = *od;
	c->proto = upstream_proto(bm_port_http_kind(p), cp);
	c->rr = rnd32(r);
	if (s->n_eps) {
		c->ep4 = calloc(s->n_eps, sizeof(*c->ep4));
		c->ep6 = calloc(s->n_eps, sizeof(*c->ep6));
	}
	if (!c->name || (s->n_eps && (!c->ep4 || !c->ep6))) {
		cluster_free(c);
		goto fail;
	}
	for (size_t i = 0; i < s->n_eps && !s->passthrough; i++) {
		const struct bm_cat_ep *ep = &s->eps[i];
		uint16_t port;
		struct bm_ip ip;

		if (!ep->ready)
			continue;
		if (ss && (!ep->labels || !bm_labels_match(&ss->labels, ep->labels)))
			continue;
		port = bm_cat_ep_port(s, ep, p);
		if (!port)
			continue;
		if (!bm_cat_ep_addr(ep, true, &ip))
			ss_from_ip(&ip, port, &c->ep4[c->n4++]);
		if (!bm_cat_ep_addr(ep, false, &ip))
			ss_from_ip(&ip, port, &c->ep6[c->n6++]);
	}
	const struct bm_lb_policy *lbp = bm_compile_lb_policy(s, subset, p->port);

	if (lbp && lbp->hash != BM_HASH_NONE) {
		c->hash = *lbp;
		if (bm_lb_ring_build(c->ep4, c->n4, &c->ring4, &c->m4) ||
		    bm_lb_ring_build(c->ep6, c->n6, &c->ring6, &c->m6)) {
			cluster_free(c);
			goto fail;
		}
	}
	e->val = r->n_clusters;
	return (uint32_t)r->n_clusters++;
fail:
	bm_blobtab_del(&r->by_cluster, e);
	return UINT32_MAX;
}

static int add_vsc(struct bm_router *r, const struct bm_virtual_service *vs, char *err,
		   size_t errlen)
{
	struct vsc *v = &r->vscs[r->n_vscs];

	memset(v, 0, sizeof(*v));
	v->vs = *vs;
	v->dest_base = calloc(vs->n_http ? vs->n_http : 1, sizeof(*v->dest_base));
	if (!v->dest_base) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < vs->n_http; i++) {
		v->dest_base[i] = v->n_dests;
		v->n_dests += vs->http[i].n_route + (vs->http[i].has_mirror ? 1 : 0);
	}
	if (bm_http_routes_compile(&v->vs, &v->routes, err, errlen)) {
		free(v->dest_base);
		return -1;
	}
	r->n_vscs++;
	return 0;
}

/* The port a destination without one means, as the kernel's tcp routes take it. */
static uint16_t dest_port(const struct bm_cat_svc *s, const struct bm_cat_svc *target,
			  const struct bm_destination *d, uint16_t sport)
{
	if (d->port)
		return d->port;
	if (target == s)
		return sport;
	return target->n_ports == 1 ? target->ports[0].port : sport;
}

static int add_port(struct bm_router *r, const struct bm_catalog *cat, const struct bm_cat_svc *s,
		    const struct bm_cat_port *sp, uint32_t vsc)
{
	static struct vsc none; /* a port with DestinationRule policies but no http rules */
	struct vsc *v = vsc == UINT32_MAX ? &none : &r->vscs[vsc];
	struct rport *rp = &r->ports[r->n_ports];

	memset(rp, 0, sizeof(*rp));
	rp->vsc = vsc;
	rp->port = sp->port;
	rp->own = cluster_of(r, s, NULL, sp);
	rp->dest = malloc((v->n_dests ? v->n_dests : 1) * sizeof(*rp->dest));
	if (rp->own == UINT32_MAX || !rp->dest) {
		free(rp->dest);
		return -1;
	}
	for (size_t i = 0; i < v->vs.n_http; i++)
		for (size_t j = 0; j < v->vs.http[i].n_route + v->vs.http[i].has_mirror; j++) {
			const struct bm_destination *d = j < v->vs.http[i].n_route ?
								 &v->vs.http[i].route[j].dest :
								 &v->vs.http[i].mirror;
			const struct bm_cat_svc *t = bm_catalog_find(cat, d->host, v->vs.meta.ns);
			const struct bm_cat_port *tp;
			uint32_t *slot = &rp->dest[v->dest_base[i] + j];

			*slot = UINT32_MAX;
			if (!t)
				continue; /* reported by the catalog: the config would not apply */
			tp = bm_cat_port_find(t, dest_port(s, t, d, sp->port), BM_PROTO_TCP);
			if (!tp)
				continue; /* requests routed here get 503: no healthy upstream */
			*slot = cluster_of(r, t, d->subset, tp);
			if (*slot == UINT32_MAX) {
				free(rp->dest);
				return -1;
			}
		}
	r->n_ports++;
	return 0;
}

static bool routed_port(const struct bm_cat_svc *s, const struct bm_cat_port *p)
{
	return bm_port_routed_l7(s, p);
}

struct bm_router *bm_router_build(const struct bm_catalog *cat,
				  const struct bm_router_caller *callers, size_t n_callers,
				  struct bm_config_pin *pin, struct bm_outlier *od, char *err,
				  size_t errlen)
{
	struct bm_router *r = calloc(1, sizeof(*r));
	size_t n_vs = 0, n_ports = 0;
	struct blob_vs { const struct bm_virtual_service *vs; } *vs_seen = NULL;
	struct timespec ts;

	snprintf(err, errlen, "out of memory");
	if (!r) {
		bm_config_pin_free(pin);
		return NULL;
	}
	r->pin = pin;
	r->od = od;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	r->rnd = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < cat->n_svcs; i++)
		for (size_t p = 0; p < cat->svcs[i].n_ports; p++)
			if (routed_port(&cat->svcs[i], &cat->svcs[i].ports[p])) {
				n_ports++;
				n_vs++; /* at most one per port */
			}
	r->vscs = calloc(n_vs ? n_vs : 1, sizeof(*r->vscs));
	r->ports = calloc(n_ports ? n_ports : 1, sizeof(*r->ports));
	vs_seen = calloc(n_vs ? n_vs : 1, sizeof(*vs_seen));
	r->callers = calloc(n_callers ? n_callers : 1, sizeof(*r->callers));
	if (!r->vscs || !r->ports || !vs_seen || !r->callers)
		goto fail;
	for (size_t i = 0; i < n_callers; i++) {
		struct bm_blob_ent *e = bm_blobtab_put(&r->by_wl, &callers[i].wl_id,
						       sizeof(callers[i].wl_id), NULL);

		if (!e)
			goto fail;
		r->callers[r->n_callers].labels = callers[i].pod->meta.labels;
		r->callers[r->n_callers].ns = callers[i].pod->meta.ns;
		e->val = r->n_callers++;
	}
	for (size_t i = 0; i < cat->n_svcs; i++) {
		const struct bm_cat_svc *s = &cat->svcs[i];
		uint32_t vsc = UINT32_MAX;

		for (size_t p = 0; p < s->n_ports; p++) {
			if (!routed_port(s, &s->ports[p]))
				continue;
			if (vsc == UINT32_MAX && s->vs && s->vs->has_http) {
				/* One VirtualService can serve several hosts: compile it once. */
				for (size_t k = 0; k < r->n_vscs && vsc == UINT32_MAX; k++)
					if (vs_seen[k].vs == s->vs)
						vsc = (uint32_t)k;
				if (vsc == UINT32_MAX) {
					vs_seen[r->n_vscs].vs = s->vs;
					if (add_vsc(r, s->vs, err, errlen))
						goto fail_msg;
					vsc = (uint32_t)r->n_vscs - 1;
				}
			}
			if (add_port(r, cat, s, &s->ports[p], vsc))
				goto fail;
			for (size_t v = 0; v < s->n_vips; v++) {
				struct key k = { .port = s->ports[p].port };
				struct bm_blob_ent *e;

				memcpy(k.addr, s->vips[v].a, 16);
				e = bm_blobtab_put(&r->by_key, &k, sizeof(k), NULL);
				if (!e)
					goto fail;
				e->val = r->n_ports - 1;
			}
		}
	}
	free(vs_seen);
	err[0] = '\0';
	return r;
fail:
	snprintf(err, errlen, "out of memory");
fail_msg:
	free(vs_seen);
	bm_router_free(r);
	return NULL;
}

void bm_router_stats(const struct bm_router *r, struct bm_router_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!r)
		return;
	st->ports = r->n_ports;
	st->clusters = r->n_clusters;
	for (size_t i = 0; i < r->n_vscs; i++)
		st->rules += r->vscs[i].vs.n_http;
	for (size_t i = 0; i < r->n_clusters; i++)
		st->endpoints += r->clusters[i].n4 + r->clusters[i].n6;
}

static const struct rport *port_of(const struct bm_router *r, const struct sockaddr_storage *orig)
{
	struct key k;
	const struct bm_blob_ent *e;

	if (key_of(orig, &k))
		return NULL;
	e = bm_blobtab_get(&r->by_key, &k, sizeof(k));
	return e ? &r->ports[e->val] : NULL;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return !memcmp(a, b, sizeof(struct sockaddr_in));
	return a->ss_family == AF_INET6 && !memcmp(a, b, sizeof(struct sockaddr_in6));
}

static bool ejected(const struct bm_router *r, const struct cluster *c,
		    const struct sockaddr_storage *ep)
{
	return c->od.set && bm_outlier_ejected(r->od, c->name, ep);
}

/* The next endpoint in round-robin order; with LEAST_REQUEST (Envoy's power of two choices)
 * that one or a random other, whichever has fewer requests in flight, ties to the round-robin
 * one (so that requests one at a time still spread evenly). */
static uint32_t least_request(struct bm_router *r, struct cluster *c,
			      const struct sockaddr_storage *v, size_t n)
{
	uint32_t a = c->rr++, b;

	if (c->lb != BM_LB_LEAST_REQUEST || !r->load || n < 2)
		return a;
	b = a + 1 + rnd32(r) % (uint32_t)(n - 1); /* another index than a, mod n */
	return r->load(r->load_arg, c->name, &v[b % n]) <
			       r->load(r->load_arg, c->name, &v[a % n]) ?
		       b :
		       a;
}

/* An endpoint of c, in the family of the original destination when it has one there; not an
 * ejected one (outlierDetection) unless fewer than minHealthPercent are healthy (Envoy's
 * panic mode); not avoid (a retry's last endpoint, Istio's previous_hosts) when another can
 * be had. hash (consistentHash; NULL: none) starts from its slot of the cluster's ring, and
 * the skips go on from there. -ENOENT when there is none. */
static int pick_endpoint(struct bm_router *r, struct cluster *c, int family,
			 const struct sockaddr_storage *avoid, const uint64_t *hash,
			 struct sockaddr_storage *out)
{
	bool v6 = family == AF_INET6;
	struct sockaddr_storage *v = v6 ? c->ep6 : c->ep4;
	size_t n = v6 ? c->n6 : c->n4, healthy;
	bool panic = false;
	uint32_t i;

	if (!n) {
		v6 = !v6;
		v = v6 ? c->ep6 : c->ep4;
		n = v6 ? c->n6 : c->n4;
	}
	if (!n)
		return -ENOENT;
	if (hash && (v6 ? c->ring6 : c->ring4))
		i = (v6 ? c->ring6 : c->ring4)[*hash % (v6 ? c->m6 : c->m4)];
	else
		i = c->lb == BM_LB_RANDOM ? rnd32(r) : least_request(r, c, v, n);
	if (c->od.set && bm_outlier_n_ejected(r->od)) {
		healthy = 0;
		for (size_t k = 0; k < n; k++)
			healthy += !ejected(r, c, &v[k]);
		panic = healthy * 100 < (size_t)c->od.min_health_pct * n;
		if (!healthy && !panic)
			return -ENOENT;
		/* The next healthy one from i: the ejected are skipped, not picked again. */
		for (size_t k = 0; k < n && !panic && ejected(r, c, &v[i % n]); k++)
			i++;
	}
	if (avoid && n > 1 && same_addr(&v[i % n], avoid)) {
		/* The next one that may be used: another endpoint, unless listed twice. */
		for (size_t k = 1; k < n; k++)
			if (panic || !ejected(r, c, &v[(i + k) % n])) {
				i += (uint32_t)k;
				break;
			}
	}
	*out = v[i % n];
	return 0;
}

int bm_router_outcome(struct bm_router *r, const char *cluster,
		      const struct sockaddr_storage *ep, enum bm_l7_outcome what, int status,
		      uint64_t now_ms)
{
	const struct bm_blob_ent *e;
	const struct cluster *c;

	if (!r || !r->od || !cluster)
		return 0;
	e = bm_blobtab_get(&r->by_cluster, cluster, strlen(cluster));
	if (!e)
		return 0; /* a cluster of an older config */
	c = &r->clusters[e->val];
	if (!c->od.set)
		return 0;
	return bm_outlier_report(r->od, cluster, ep, what, status, &c->od,
				 ep->ss_family == AF_INET6 ? c->n6 : c->n4, now_ms);
}

int bm_router_tcp_pick(struct bm_router *r, const struct sockaddr_storage *orig,
		       struct sockaddr_storage *out)
{
	const struct rport *rp = r ? port_of(r, orig) : NULL;

	if (!rp)
		return -ENOENT;
	return pick_endpoint(r, &r->clusters[rp->own], orig->ss_family, NULL, NULL, out);
}

static void respond(struct bm_l7_decision *d, int status, const char *body)
{
	d->action = BM_L7_RESPOND;
	d->status = status;
	d->body = body;
}

static void edits_add(struct bm_http_edits *e, const struct bm_header_ops *ops)
{
	for (size_t i = 0; i < ops->n_remove && e->n_remove < BM_L7_MAX_EDITS; i++)
		e->remove[e->n_remove++] = (struct bm_http_edit){ .name = ops->remove[i] };
	for (size_t i = 0; i < ops->n_set && e->n_set < BM_L7_MAX_EDITS; i++)
		e->set[e->n_set++] = (struct bm_http_edit){ .name = ops->set[i].name,
							    .value = ops->set[i].value };
	for (size_t i = 0; i < ops->n_add && e->n_add < BM_L7_MAX_EDITS; i++)
		e->add[e->n_add++] = (struct bm_http_edit){ .name = ops->add[i].name,
							    .value = ops->add[i].value };
}

/* Envoy's redirect: scheme, host, port and path each replaced when the rule says so. */
static void redirect(struct bm_router *r, const struct bm_http_req *req,
		     const struct bm_http_route *rt, struct bm_l7_decision *d)
{
	const struct bm_http_redirect *rd = &rt->redirect;
	const char *scheme = rd->scheme ? rd->scheme : req->scheme ? req->scheme : "http";
	const char *auth = rd->authority ? rd->authority : req->authority ? req->authority : "";
	const char *path = rd->uri ? rd->uri : req->path;
	char host[512];
	size_t hl = strlen(auth);

	/* A new port replaces the one in the authority. */
	if (rd->port) {
		const char *colon = strrchr(auth, ':');

		if (colon && !strchr(colon, ']'))
			hl = (size_t)(colon - auth);
		snprintf(host, sizeof(host), "%.*s:%u", (int)hl, auth, rd->port);
	} else {
		snprintf(host, sizeof(host), "%s", auth);
	}
	snprintf(r->loc_buf, sizeof(r->loc_buf), "%s://%s%s", scheme, host, path);
	respond(d, rd->code ? rd->code : 301, NULL);
	d->location = r->loc_buf;
}

/* The request's consistentHash key for c, when c hashes and the request has the key; with
 * httpCookie and a ttl, a client without the cookie gets a new one (Envoy's way): *set_cookie,
 * the field in r->cookie_buf. */
static bool req_hash(struct bm_router *r, const struct cluster *c, const struct bm_http_req *req,
		     uint64_t *hash, bool *set_cookie)
{
	*set_cookie = false;
	if (c->hash.hash == BM_HASH_NONE)
		return false;
	if (bm_lb_req_hash(&c->hash, req, hash))
		return true;
	if (c->hash.hash == BM_HASH_COOKIE && c->hash.cookie_ttl_set &&
	    !bm_lb_cookie_new(&c->hash, ((uint64_t)rnd32(r) << 32) | rnd32(r), r->cookie_buf,
			      sizeof(r->cookie_buf), hash)) {
		*set_cookie = true;
		return true;
	}
	return false;
}

static void add_set_cookie(struct bm_router *r, struct bm_l7_decision *d, bool set_cookie)
{
	if (set_cookie && d->resp_edits.n_add < BM_L7_MAX_EDITS)
		d->resp_edits.add[d->resp_edits.n_add++] =
			(struct bm_http_edit){ .name = "set-cookie", .value = r->cookie_buf };
}

/* The rule's mirror, for mirrorPercentage of the requests (100 % when unset): an endpoint of
 * its cluster (none: no copy). */
static void mirror(struct bm_router *r, const struct rport *rp, const struct vsc *v, int rule,
		   const struct bm_http_req *req, struct bm_l7_decision *d)
{
	const struct bm_http_route *rt = &v->vs.http[rule];
	uint32_t mc = rp->dest[v->dest_base[rule] + rt->n_route];

	if (mc == UINT32_MAX || !bm_http_chance(rt->mirror_ppm, rnd32(r)))
		return;
	if (pick_endpoint(r, &r->clusters[mc], req->orig_dst.ss_family, NULL, NULL,
			  &d->mirror_upstream))
		return;
	d->mirror = true;
	d->mirror_proto = proto_for(&r->clusters[mc], req);
}

void bm_router_set_load(struct bm_router *r, bm_l7_load_fn fn, void *arg)
{
	r->load = fn;
	r->load_arg = arg;
}

void bm_router_route(void *arg, const struct bm_http_req *req, struct bm_l7_decision *d)
{
	struct bm_router *r = arg;
	const struct rport *rp = r ? port_of(r, &req->orig_dst) : NULL;
	const struct bm_labels *labels = NULL;
	const char *caller_ns = NULL;
	const struct bm_http_route *rt;
	struct vsc *v;
	struct cluster *c;
	int rule, entry = -1, di;
	uint64_t hash = 0;
	bool has_hash = false, set_cookie = false;

	memset(d, 0, sizeof(*d));
	if (!rp) {
		/* Redirected under an older config: this service port has no http rules now. The
		 * client reconnects and the kernel routes it at L4. */
		respond(d, 503, "no route for this destination now: reconnect\n");
		d->close = true;
		return;
	}
	if (rp->vsc == UINT32_MAX) {
		/* No http rules, DestinationRule policies only: the service itself, Istio's
		 * default retries, the cluster's limits. */
		c = &r->clusters[rp->own];
		d->cluster = c->name;
		has_hash = req_hash(r, c, req, &hash, &set_cookie);
		if (pick_endpoint(r, c, req->orig_dst.ss_family,
				  req->attempt ? &req->prev_upstream : NULL, has_hash ? &hash : NULL,
				  &d->upstream)) {
			respond(d, 503, "no healthy upstream");
			return;
		}
		add_set_cookie(r, d, set_cookie);
		d->action = BM_L7_FORWARD;
		d->pool = c->pool;
		d->upstream_proto = proto_for(c, req);
		d->retries = DEFAULT_RETRIES;
		d->retry_on = BM_RETRY_CONNECT_FAILURE | BM_RETRY_REFUSED_STREAM;
		d->retry_codes = default_retry_codes;
		d->n_retry_codes = 1;
		return;
	}
	v = &r->vscs[rp->vsc];
	if (req->caller_wl) {
		const struct bm_blob_ent *e = bm_blobtab_get(&r->by_wl, &req->caller_wl,
							     sizeof(req->caller_wl));

		if (e) {
			labels = &r->callers[e->val].labels;
			caller_ns = r->callers[e->val].ns;
		}
	}
	rule = bm_http_routes_match_entry(v->routes, req, rp->port, labels, caller_ns, "mesh",
					  &entry);
	if (rule < 0) {
		respond(d, 404, NULL); /* Envoy: no route matched (NR) */
		return;
	}
	rt = &v->vs.http[rule];
	d->route_name = rt->name;
	if (rt->has_fault && rt->fault.has_abort && bm_http_chance(rt->fault.abort_ppm, rnd32(r))) {
		respond(d, rt->fault.abort_status, "fault filter abort");
		return;
	}
	if (rt->action == BM_HTTP_REDIRECT) {
		redirect(r, req, rt, d);
		return;
	}
	if (rt->action == BM_HTTP_DIRECT_RESPONSE) {
		respond(d, rt->direct_response.status, rt->direct_response.body);
		return;
	}
	if (rt->action != BM_HTTP_FORWARD) {
		respond(d, 404, NULL);
		return;
	}
	di = bm_http_pick_dest(rt, rnd32(r));
	if (di < 0 || rp->dest[v->dest_base[rule] + (size_t)di] == UINT32_MAX) {
		respond(d, 503, "no healthy upstream");
		return;
	}
	c = &r->clusters[rp->dest[v->dest_base[rule] + (size_t)di]];
	d->cluster = c->name;
	has_hash = req_hash(r, c, req, &hash, &set_cookie);
	if (pick_endpoint(r, c, req->orig_dst.ss_family, req->attempt ? &req->prev_upstream : NULL,
			  has_hash ? &hash : NULL, &d->upstream)) {
		respond(d, 503, "no healthy upstream");
		return;
	}
	d->action = BM_L7_FORWARD;
	d->pool = c->pool;
	d->upstream_proto = proto_for(c, req);
	if (rt->has_rewrite) {
		if (rt->rewrite.uri && bm_http_rewrite_path(rt, entry, req->path, r->path_buf,
							    sizeof(r->path_buf)) >= 0)
			d->rewrite_path = r->path_buf;
		d->rewrite_authority = rt->rewrite.authority;
	}
	edits_add(&d->req_edits, &rt->headers.request);
	edits_add(&d->req_edits, &rt->route[di].headers.request);
	edits_add(&d->resp_edits, &rt->headers.response);
	edits_add(&d->resp_edits, &rt->route[di].headers.response);
	add_set_cookie(r, d, set_cookie);
	d->timeout_ms = rt->has_timeout ? rt->timeout_ms : 0;
	if (rt->has_retries) {
		d->retries = rt->retries.attempts;
		d->per_try_timeout_ms = rt->retries.per_try_timeout_ms;
		d->retry_on = rt->retries.has_retry_on ? rt->retries.retry_on :
				  BM_RETRY_CONNECT_FAILURE | BM_RETRY_REFUSED_STREAM;
		d->retry_codes = rt->retries.has_retry_on ? rt->retries.retry_codes :
							     default_retry_codes;
		d->n_retry_codes = rt->retries.has_retry_on ? rt->retries.n_retry_codes : 1;
	} else {
		d->retries = DEFAULT_RETRIES;
		d->retry_on = BM_RETRY_CONNECT_FAILURE | BM_RETRY_REFUSED_STREAM;
		d->retry_codes = default_retry_codes;
		d->n_retry_codes = 1;
	}
	if (rt->has_fault && rt->fault.has_delay && bm_http_chance(rt->fault.delay_ppm, rnd32(r)))
		d->delay_ms = rt->fault.delay_ms;
	if (rt->has_mirror && !req->attempt)
		mirror(r, rp, v, rule, req, d);
}
