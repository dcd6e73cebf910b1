/* Istio traffic kinds into the model: DestinationRule (subsets, load balancing) and
 * VirtualService (TCP routes and weights; HTTP routes in config_http.c; TLS routes are reported
 * unsupported). */
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- DestinationRule ---- */

static void lb_free(struct bm_lb_policy *lb)
{
	free(lb->hash_name);
	free(lb->cookie_path);
}

static void policy_free(struct bm_traffic_policy *t)
{
	lb_free(&t->lb);
	for (size_t i = 0; i < t->n_ports; i++)
		lb_free(&t->ports[i].lb);
	free(t->ports);
}

/* consistentHash: exactly one key, as Istio's oneof. */
static void consistent_hash(struct bm_px *p, const struct bm_ynode *ch, struct bm_lb_policy *lb)
{
	static const char *const hknown[] = { "useSourceIp", "httpHeaderName", "httpCookie",
					       "httpQueryParameterName", NULL };
	static const char *const cknown[] = { "name", "path", "ttl", NULL };
	const struct bm_ynode *ck = NULL;
	int n = 0;

	bm_px_unknown(p, ch, hknown);
	if (bm_px_fbool(p, ch, "useSourceIp", &lb->hash_source_ip) == 1 && lb->hash_source_ip) {
		lb->hash = BM_HASH_SOURCE_IP;
		n++;
	}
	if (bm_px_fdup(p, ch, "httpHeaderName", &lb->hash_name) == 1) {
		for (char *c = lb->hash_name; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		lb->hash = BM_HASH_HEADER;
		n++;
	}
	if (bm_px_fmap(p, ch, "httpCookie", &ck) == 1) {
		size_t m = bm_px_push(p, "httpCookie");
		uint32_t ttl_ms = 0;

		bm_px_unknown(p, ck, cknown);
		if (lb->hash_name) {
			free(lb->hash_name);
			lb->hash_name = NULL;
		}
		if (bm_px_fdup(p, ck, "name", &lb->hash_name) != 1) {
			size_t mn = bm_px_push(p, "name");

			bm_px_err(p, bm_px_key_line(ch, "httpCookie"), "required");
			bm_px_pop(p, mn);
		}
		bm_px_fdup(p, ck, "path", &lb->cookie_path);
		if (bm_px_fduration(p, ck, "ttl", 0, &ttl_ms) == 1) {
			lb->cookie_ttl_set = true;
			lb->cookie_ttl_s = ttl_ms / 1000;
		}
		bm_px_pop(p, m);
		lb->hash = BM_HASH_COOKIE;
		n++;
	}
	if (bm_px_val(ch, "httpQueryParameterName")) {
		free(lb->hash_name);
		lb->hash_name = NULL;
		if (bm_px_fdup(p, ch, "httpQueryParameterName", &lb->hash_name) == 1) {
			lb->hash = BM_HASH_QUERY;
			n++;
		}
	}
	if (n > 1)
		bm_px_err(p, ch->line, "consistentHash takes one hash key (useSourceIp, "
				       "httpHeaderName, httpCookie or httpQueryParameterName)");
}

void bm_cfg_destination_rule_free(struct bm_destination_rule *x)
{
	bm_cfg_meta_free(&x->meta);
	free(x->host);
	policy_free(&x->policy);
	for (size_t i = 0; i < x->n_subsets; i++) {
		free(x->subsets[i].name);
		bm_cfg_labels_free(&x->subsets[i].labels);
		policy_free(&x->subsets[i].policy);
	}
	free(x->subsets);
}

static void load_balancer(struct bm_px *p, const struct bm_ynode *parent, struct bm_lb_policy *lb)
{
	static const char *const known[] = { "simple", "consistentHash", NULL };
	static const char *const simple[] = { "UNSPECIFIED", "ROUND_ROBIN", "RANDOM",
					      "LEAST_REQUEST", "LEAST_CONN", "PASSTHROUGH", NULL };
	static const enum bm_lb_simple sval[] = { BM_LBS_UNSET, BM_LBS_ROUND_ROBIN, BM_LBS_RANDOM,
						  BM_LBS_LEAST_REQUEST, BM_LBS_LEAST_REQUEST,
						  BM_LBS_PASSTHROUGH };
	const struct bm_ynode *m = NULL, *ch = NULL;
	size_t mark, mh;
	int e;

	if (bm_px_fmap(p, parent, "loadBalancer", &m) != 1)
		return;
	mark = bm_px_push(p, "loadBalancer");
	lb->set = true;
	lb->loc.file = p->file;
	lb->loc.line = bm_px_key_line(parent, "loadBalancer");
	bm_px_unknown(p, m, known);
	if (bm_px_fenum(p, m, "simple", simple, &e) == 1)
		lb->simple = sval[e];
	if (bm_px_fmap(p, m, "consistentHash", &ch) == 1) {
		if (bm_px_val(m, "simple"))
			bm_px_err(p, bm_px_key_line(m, "consistentHash"),
				  "simple and consistentHash are exclusive");
		mh = bm_px_push(p, "consistentHash");
		consistent_hash(p, ch, lb);
		bm_px_pop(p, mh);
	}
	bm_px_pop(p, mark);
}

/* connectionPool: the limits the agent's HTTP engine enforces per cluster (circuit breaking). */
static void conn_pool(struct bm_px *p, const struct bm_ynode *parent, struct bm_conn_pool *cp)
{
	static const char *const known[] = { "tcp", "http", NULL };
	static const char *const tknown[] = { "maxConnections", "connectTimeout", NULL };
	static const char *const hknown[] = { "http1MaxPendingRequests", "http2MaxRequests",
					       "maxRequestsPerConnection", "maxRetries",
					       "idleTimeout", "h2UpgradePolicy",
					       "useClientProtocol", NULL };
	static const char *const h2[] = { "DEFAULT", "DO_NOT_UPGRADE", "UPGRADE", NULL };
	const struct bm_ynode *m = NULL, *t = NULL, *h = NULL;
	size_t mark, mk;
	long long v;
	int e;

	if (bm_px_fmap(p, parent, "connectionPool", &m) != 1)
		return;
	mark = bm_px_push(p, "connectionPool");
	cp->set = true;
	cp->loc.file = p->file;
	cp->loc.line = bm_px_key_line(parent, "connectionPool");
	bm_px_unknown(p, m, known);
	if (bm_px_fmap(p, m, "tcp", &t) == 1) {
		mk = bm_px_push(p, "tcp");
		bm_px_unknown(p, t, tknown); /* tcpKeepalive, maxConnectionDuration, ... */
		if (bm_px_fint(p, t, "maxConnections", 0, INT32_MAX, &v) == 1)
			cp->max_connections = (uint32_t)v;
		bm_px_fduration(p, t, "connectTimeout", 1, &cp->connect_timeout_ms);
		bm_px_pop(p, mk);
	}
	if (bm_px_fmap(p, m, "http", &h) == 1) {
		mk = bm_px_push(p, "http");
		bm_px_unknown(p, h, hknown); /* maxConcurrentStreams, ... */
		if (bm_px_fint(p, h, "http1MaxPendingRequests", 0, INT32_MAX, &v) == 1)
			cp->max_pending = (uint32_t)v;
		if (bm_px_fint(p, h, "http2MaxRequests", 0, INT32_MAX, &v) == 1)
			cp->max_requests = (uint32_t)v;
		if (bm_px_fint(p, h, "maxRequestsPerConnection", 0, INT32_MAX, &v) == 1)
			cp->max_requests_per_conn = (uint32_t)v;
		if (bm_px_fint(p, h, "maxRetries", 0, INT32_MAX, &v) == 1)
			cp->max_retries = (uint32_t)v;
		bm_px_fduration(p, h, "idleTimeout", 1, &cp->idle_timeout_ms);
		if (bm_px_fenum(p, h, "h2UpgradePolicy", h2, &e) == 1)
			cp->h2_upgrade = (uint8_t)e;
		bm_px_fbool(p, h, "useClientProtocol", &cp->use_client_protocol);
		bm_px_pop(p, mk);
	}
	bm_px_pop(p, mark);
}

/* outlierDetection: endpoints failing in a row leave the agent's pools and the kernel's sets. */
static void outlier(struct bm_px *p, const struct bm_ynode *parent, struct bm_outlier_policy *o)
{
	static const char *const known[] = { "consecutive5xxErrors", "consecutiveGatewayErrors",
					     "consecutiveErrors", "interval", "baseEjectionTime",
					     "maxEjectionPercent", "minHealthPercent", NULL };
	const struct bm_ynode *m = NULL;
	size_t mark;
	long long v;

	if (bm_px_fmap(p, parent, "outlierDetection", &m) != 1)
		return;
	mark = bm_px_push(p, "outlierDetection");
	*o = (struct bm_outlier_policy){ .set = true, .consecutive_5xx = 5, .interval_ms = 10000,
					 .base_ejection_ms = 30000, .max_ejection_pct = 10 };
	o->loc.file = p->file;
	o->loc.line = bm_px_key_line(parent, "outlierDetection");
	bm_px_unknown(p, m, known); /* splitExternalLocalOriginErrors, ... */
	if (bm_px_fint(p, m, "consecutive5xxErrors", 0, INT32_MAX, &v) == 1)
		o->consecutive_5xx = (uint32_t)v;
	if (bm_px_fint(p, m, "consecutiveGatewayErrors", 0, INT32_MAX, &v) == 1)
		o->consecutive_gateway = (uint32_t)v;
	/* Deprecated in Istio: it meant gateway errors. */
	if (bm_px_fint(p, m, "consecutiveErrors", 0, INT32_MAX, &v) == 1 &&
	    !bm_px_val(m, "consecutiveGatewayErrors"))
		o->consecutive_gateway = (uint32_t)v;
	bm_px_fduration(p, m, "interval", 1, &o->interval_ms);
	bm_px_fduration(p, m, "baseEjectionTime", 1, &o->base_ejection_ms);
	if (bm_px_fint(p, m, "maxEjectionPercent", 0, 100, &v) == 1)
		o->max_ejection_pct = (uint32_t)v;
	if (bm_px_fint(p, m, "minHealthPercent", 0, 100, &v) == 1)
		o->min_health_pct = (uint32_t)v;
	bm_px_pop(p, mark);
}

static void traffic_policy(struct bm_px *p, const struct bm_ynode *parent,
			   struct bm_traffic_policy *t)
{
	static const char *const known[] = { "loadBalancer", "portLevelSettings", "connectionPool",
					     "outlierDetection", NULL };
	static const char *const pknown[] = { "port", "loadBalancer", "connectionPool",
					      "outlierDetection", NULL };
	static const char *const portk[] = { "number", NULL };
	const struct bm_ynode *tp = NULL, *pls = NULL;
	size_t mark, mp;

	if (bm_px_fmap(p, parent, "trafficPolicy", &tp) != 1)
		return;
	mark = bm_px_push(p, "trafficPolicy");
	bm_px_unknown(p, tp, known); /* tls, tunnel, ... */
	load_balancer(p, tp, &t->lb);
	conn_pool(p, tp, &t->pool);
	outlier(p, tp, &t->outlier);
	if (bm_px_fseq(p, tp, "portLevelSettings", &pls) == 1) {
		mp = bm_px_push(p, "portLevelSettings");
		for (size_t i = 0; i < pls->n; i++) {
			const struct bm_ynode *it = pls->kids[i], *port = NULL;
			size_t m = bm_px_push_idx(p, i);
			struct bm_port_policy *pp;

			if (bm_px_map(p, it) == 1 &&
			    (pp = bm_px_grow(p, &t->ports, &t->n_ports, sizeof(*t->ports)))) {
				bm_px_unknown(p, it, pknown);
				if (bm_px_fmap(p, it, "port", &port) == 1) {
					size_t mn = bm_px_push(p, "port");

					bm_px_unknown(p, port, portk);
					if (bm_px_fport(p, port, "number", &pp->port) == 0)
						bm_px_missing(p, port->line, "number");
					bm_px_pop(p, mn);
				} else if (!port) {
					bm_px_missing(p, it->line, "port");
				}
				load_balancer(p, it, &pp->lb);
				conn_pool(p, it, &pp->pool);
				outlier(p, it, &pp->outlier);
			}
			bm_px_pop(p, m);
		}
		bm_px_pop(p, mp);
	}
	bm_px_pop(p, mark);
}

static void dr_subsets(struct bm_px *p, const struct bm_ynode *spec, struct bm_destination_rule *x)
{
	static const char *const known[] = { "name", "labels", "trafficPolicy", NULL };
	const struct bm_ynode *list = NULL;
	size_t mark;

	if (bm_px_fseq(p, spec, "subsets", &list) != 1)
		return;
	mark = bm_px_push(p, "subsets");
	for (size_t i = 0; i < list->n; i++) {
		const struct bm_ynode *it = list->kids[i];
		size_t m = bm_px_push_idx(p, i);
		struct bm_subset *s;

		if (bm_px_map(p, it) == 1 &&
		    (s = bm_px_grow(p, &x->subsets, &x->n_subsets, sizeof(*x->subsets)))) {
			s->loc.file = p->file;
			s->loc.line = it->line;
			bm_px_unknown(p, it, known);
			if (bm_px_fdup(p, it, "name", &s->name) == 0)
				bm_px_missing(p, it->line, "name");
			else if (s->name && !bm_cfg_is_dns_label(s->name))
				bm_px_ferr(p, it, "name",
					  "\"%.64s\" is not a valid subset name (RFC 1123 label)",
					  s->name);
			for (size_t j = 0; s->name && j + 1 < x->n_subsets; j++)
				if (x->subsets[j].name && !strcmp(x->subsets[j].name, s->name))
					bm_px_err(p, it->line, "subset \"%.64s\" defined twice (also line %d)",
						  s->name, x->subsets[j].loc.line);
			bm_px_flabels(p, it, "labels", &s->labels);
			traffic_policy(p, it, &s->policy);
		}
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

void bm_cfg_destination_rule(struct bm_px *p, const struct bm_ynode *root)
{
	static const char *const known[] = { "host", "trafficPolicy", "subsets", "exportTo", NULL };
	struct bm_destination_rule x = { 0 };
	const struct bm_ynode *spec = NULL;
	size_t mark;
	int r;

	bm_px_meta(p, root, &x.meta, BM_NAME_SUBDOMAIN, false);
	bm_px_unknown(p, root, bm_cfg_top_keys);
	if (bm_px_fmap(p, root, "spec", &spec) == 0)
		bm_px_missing(p, root->line, "spec");
	if (!spec || spec->type != BM_Y_MAP)
		goto done;
	mark = bm_px_push(p, "spec");
	bm_px_unknown(p, spec, known); /* workloadSelector, ... */
	r = bm_px_fdup(p, spec, "host", &x.host);
	if (r == 0)
		bm_px_missing(p, spec->line, "host");
	else if (r == 1 && (!strcmp(x.host, "*") || !bm_cfg_is_hostname(x.host)))
		bm_px_ferr(p, spec, "host", "\"%.64s\" is not a valid host",
			  x.host);
	traffic_policy(p, spec, &x.policy);
	dr_subsets(p, spec, &x);
	bm_px_export_to(p, spec);
	bm_px_pop(p, mark);
done:
	BM_PX_COMMIT(p, p->c->destination_rules, p->c->n_destination_rules, x,
		     bm_cfg_destination_rule_free);
}

/* ---- VirtualService ---- */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void bm_cfg_virtual_service_free(struct bm_virtual_service *x)
{
	bm_cfg_meta_free(&x->meta);
	strv_free(x->hosts, x->n_hosts);
	strv_free(x->gateways, x->n_gateways);
	for (size_t i = 0; i < x->n_tcp; i++) {
		struct bm_tcp_route *t = &x->tcp[i];

		for (size_t j = 0; j < t->n_match; j++) {
			bm_cfg_labels_free(&t->match[j].source_labels);
			free(t->match[j].source_namespace);
			strv_free(t->match[j].gateways, t->match[j].n_gateways);
		}
		free(t->match);
		for (size_t j = 0; j < t->n_route; j++) {
			free(t->route[j].dest.host);
			free(t->route[j].dest.subset);
		}
		free(t->route);
	}
	free(x->tcp);
	bm_cfg_http_routes_free(x->http, x->n_http);
}

static void tcp_matches(struct bm_px *p, const struct bm_ynode *list, struct bm_tcp_route *t)
{
	static const char *const known[] = { "port", "sourceLabels", "sourceNamespace", "gateways",
					     NULL };

	for (size_t i = 0; i < list->n; i++) {
		const struct bm_ynode *it = list->kids[i];
		size_t m = bm_px_push_idx(p, i);
		struct bm_l4_match *mt;

		if (bm_px_map(p, it) == 1 &&
		    (mt = bm_px_grow(p, &t->match, &t->n_match, sizeof(*t->match)))) {
			mt->loc.file = p->file;
			mt->loc.line = it->line;
			bm_px_unknown(p, it, known); /* destinationSubnets, sourceSubnet */
			bm_px_fport(p, it, "port", &mt->port);
			if (bm_px_flabels(p, it, "sourceLabels", &mt->source_labels) == 1)
				mt->has_source_labels = true;
			bm_px_fdup(p, it, "sourceNamespace", &mt->source_namespace);
			bm_px_fstrs(p, it, "gateways", &mt->gateways, &mt->n_gateways);
		}
		bm_px_pop(p, m);
	}
}

int bm_cfg_destination(struct bm_px *p, const struct bm_ynode *map, const char *key,
		       struct bm_destination *dst)
{
	static const char *const dknown[] = { "host", "subset", "port", NULL };
	static const char *const pknown[] = { "number", NULL };
	const struct bm_ynode *d = NULL, *port = NULL;
	size_t m;
	int r;

	r = bm_px_fmap(p, map, key, &d);
	if (r != 1)
		return r;
	m = bm_px_push(p, key);
	dst->loc.file = p->file;
	dst->loc.line = d->line;
	bm_px_unknown(p, d, dknown);
	r = bm_px_fdup(p, d, "host", &dst->host);
	if (r == 0)
		bm_px_missing(p, d->line, "host");
	else if (r == 1 && (!strcmp(dst->host, "*") || !bm_cfg_is_hostname(dst->host)))
		bm_px_ferr(p, d, "host", "\"%.64s\" is not a valid host",
			  dst->host);
	if (bm_px_fdup(p, d, "subset", &dst->subset) == 1 && !bm_cfg_is_dns_label(dst->subset))
		bm_px_ferr(p, d, "subset",
			  "\"%.64s\" is not a valid subset name (RFC 1123 label)",
			  dst->subset);
	if (bm_px_fmap(p, d, "port", &port) == 1) {
		size_t mp = bm_px_push(p, "port");

		bm_px_unknown(p, port, pknown);
		bm_px_fport(p, port, "number", &dst->port);
		bm_px_pop(p, mp);
	}
	bm_px_pop(p, m);
	return 1;
}

static void route_dest(struct bm_px *p, const struct bm_ynode *it, struct bm_route_dest *rd)
{
	static const char *const known[] = { "destination", "weight", NULL };
	long long w;

	bm_px_unknown(p, it, known); /* headers, ... */
	if (bm_px_fint(p, it, "weight", 0, INT32_MAX, &w) == 1) {
		rd->weight = (uint32_t)w;
		rd->has_weight = true;
	}
	if (bm_cfg_destination(p, it, "destination", &rd->dest) == 0)
		bm_px_missing(p, it->line, "destination");
}

static void tcp_routes(struct bm_px *p, const struct bm_ynode *spec, struct bm_virtual_service *x)
{
	static const char *const known[] = { "match", "route", NULL };
	const struct bm_ynode *list = NULL;
	size_t mark;

	if (bm_px_fseq(p, spec, "tcp", &list) != 1)
		return;
	mark = bm_px_push(p, "tcp");
	for (size_t i = 0; i < list->n; i++) {
		const struct bm_ynode *it = list->kids[i], *ms = NULL, *rs = NULL;
		size_t m = bm_px_push_idx(p, i), mm;
		struct bm_tcp_route *t;
		uint64_t total = 0;

		if (bm_px_map(p, it) != 1 || !(t = bm_px_grow(p, &x->tcp, &x->n_tcp, sizeof(*x->tcp))))
			goto next;
		t->loc.file = p->file;
		t->loc.line = it->line;
		bm_px_unknown(p, it, known);
		if (bm_px_fseq(p, it, "match", &ms) == 1) {
			mm = bm_px_push(p, "match");
			tcp_matches(p, ms, t);
			bm_px_pop(p, mm);
		}
		if (bm_px_fseq(p, it, "route", &rs) == 0 || (rs && rs->n == 0))
			bm_px_ferr(p, it, "route", "at least one destination is required");
		if (!rs || rs->type != BM_Y_SEQ)
			goto next;
		mm = bm_px_push(p, "route");
		for (size_t j = 0; j < rs->n; j++) {
			size_t mj = bm_px_push_idx(p, j);
			struct bm_route_dest *rd;

			if (bm_px_map(p, rs->kids[j]) == 1 &&
			    (rd = bm_px_grow(p, &t->route, &t->n_route, sizeof(*t->route)))) {
				route_dest(p, rs->kids[j], rd);
				total += rd->weight;
			}
			bm_px_pop(p, mj);
		}
		/* Weights are relative; several destinations need some weight to share. */
		if (t->n_route > 1 && total == 0)
			bm_px_err(p, rs->line, "the weights of several destinations are all zero");
		bm_px_pop(p, mm);
next:
		bm_px_pop(p, m);
	}
	bm_px_pop(p, mark);
}

/* tls: remembered (the lead may route such hosts to the agent) and reported. */
static void unsup_section(struct bm_px *p, const struct bm_ynode *spec, const char *key, bool *has,
			  struct bm_loc *loc)
{
	const struct bm_ynode *v = NULL;
	size_t m;

	if (bm_px_fseq(p, spec, key, &v) != 1)
		return;
	*has = true;
	loc->file = p->file;
	loc->line = bm_px_key_line(spec, key);
	m = bm_px_push(p, key);
	bm_px_unsup(p, loc->line, NULL);
	bm_px_pop(p, m);
}

/* A VirtualService bound only to gateways: kept, but nothing routes by it until bpfmesh has
 * Gateways. Said once, at the resource's line. */
static void gateway_only(struct bm_px *p, const struct bm_virtual_service *x)
{
	char names[256];
	size_t used = 0;

	names[0] = '\0';
	for (size_t i = 0; i < x->n_gateways && used < sizeof(names); i++) {
		int w = snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
				 x->gateways[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
	bm_config_diag(p->c, BM_DIAG_WARNING, &x->meta.loc,
		       "VirtualService %s/%s: bound to gateway%s %s only: its routes wait for the "
		       "Gateway (not supported yet)",
		       x->meta.ns, x->meta.name, x->n_gateways > 1 ? "s" : "", names);
}

void bm_cfg_virtual_service(struct bm_px *p, const struct bm_ynode *root)
{
	static const char *const known[] = { "hosts", "gateways", "tcp", "http", "tls", "exportTo",
					     NULL };
	struct bm_virtual_service x = { 0 };
	const struct bm_ynode *spec = NULL, *hosts;
	bool mesh = true;
	size_t mark;
	int r;

	bm_px_meta(p, root, &x.meta, BM_NAME_SUBDOMAIN, false);
	bm_px_unknown(p, root, bm_cfg_top_keys);
	if (bm_px_fmap(p, root, "spec", &spec) == 0)
		bm_px_missing(p, root->line, "spec");
	if (!spec || spec->type != BM_Y_MAP)
		goto done;
	mark = bm_px_push(p, "spec");
	bm_px_unknown(p, spec, known);
	if (bm_px_fstrs(p, spec, "gateways", &x.gateways, &x.n_gateways) == 1 && x.n_gateways) {
		mesh = false;
		for (size_t i = 0; i < x.n_gateways; i++)
			mesh |= !strcmp(x.gateways[i], "mesh");
	}
	r = bm_px_fstrs(p, spec, "hosts", &x.hosts, &x.n_hosts);
	hosts = bm_px_val(spec, "hosts");
	if (r == 0 || (r == 1 && !x.n_hosts))
		bm_px_ferr(p, spec, "hosts", "at least one host is required");
	for (size_t i = 0; r == 1 && i < x.n_hosts; i++) {
		size_t m = bm_px_push(p, "hosts"), mi = bm_px_push_idx(p, i);

		(void)mi;
		if (!bm_cfg_is_hostname(x.hosts[i]))
			bm_px_err(p, hosts->kids[i]->line, "\"%.64s\" is not a valid host", x.hosts[i]);
		else if (mesh && !strcmp(x.hosts[i], "*"))
			bm_px_err(p, hosts->kids[i]->line,
				  "\"*\" is not allowed for a VirtualService bound to the mesh gateway");
		bm_px_pop(p, m);
	}
	tcp_routes(p, spec, &x);
	bm_cfg_http_routes(p, spec, &x, mesh);
	unsup_section(p, spec, "tls", &x.has_tls, &x.tls_loc);
	if (!bm_px_val(spec, "tcp") && !bm_px_val(spec, "http") && !bm_px_val(spec, "tls"))
		bm_px_err(p, spec->line, "http, tcp or tls routes are required");
	bm_px_export_to(p, spec);
	if (!mesh && !p->errors)
		gateway_only(p, &x);
	bm_px_pop(p, mark);
done:
	BM_PX_COMMIT(p, p->c->virtual_services, p->c->n_virtual_services, x,
		     bm_cfg_virtual_service_free);
}
