/* The service catalog: every Kubernetes Service and ServiceEntry host with its addresses, ports,
 * DestinationRule and mesh VirtualService; host names resolved as Istio resolves them. */
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_internal.h"

char *bm_host_fqdn(const char *host, const char *ns)
{
	char *out;

	if (strchr(host, '.') || host[0] == '*')
		return strdup(host);
	if (asprintf(&out, "%s.%s.svc." BM_DOMAIN_SUFFIX, host, ns ? ns : "default") < 0)
		return NULL;
	return out;
}

bool bm_host_match(const char *pattern, const char *host)
{
	size_t pl, hl;

	if (!strcmp(pattern, "*"))
		return true;
	if (pattern[0] != '*')
		return !strcmp(pattern, host);
	pl = strlen(pattern + 1); /* ".suffix" */
	hl = strlen(host);
	return hl > pl && !strcmp(host + hl - pl, pattern + 1);
}

static const struct bm_cat_svc *find_exact(const struct bm_catalog *cat, const char *host)
{
	return bm_cat_by_host(cat, host);
}

const struct bm_cat_svc *bm_catalog_find(const struct bm_catalog *cat, const char *host,
					 const char *ns)
{
	const struct bm_cat_svc *s;
	char *fqdn = bm_host_fqdn(host, ns);
	char name[256], sns[256], tail[16];

	if (!fqdn)
		return NULL;
	s = find_exact(cat, fqdn);
	free(fqdn);
	if (s)
		return s;
	/* <name>.<ns> and <name>.<ns>.svc: what Kubernetes DNS resolves, so what users write. */
	tail[0] = '\0';
	if (sscanf(host, "%255[^.].%255[^.].%15s", name, sns, tail) >= 2 &&
	    (!tail[0] || !strcmp(tail, "svc"))) {
		char full[600];

		snprintf(full, sizeof(full), "%s.%s.svc." BM_DOMAIN_SUFFIX, name, sns);
		s = find_exact(cat, full);
		if (s && s->k8s)
			return s;
	}
	return NULL;
}

const struct bm_subset *bm_cat_subset(const struct bm_cat_svc *s, const char *name)
{
	if (!s->dr)
		return NULL;
	for (size_t i = 0; i < s->dr->n_subsets; i++)
		if (!strcmp(s->dr->subsets[i].name, name))
			return &s->dr->subsets[i];
	return NULL;
}

const struct bm_cat_port *bm_cat_port_find(const struct bm_cat_svc *s, uint16_t port,
					   enum bm_l4proto proto)
{
	for (size_t i = 0; i < s->n_ports; i++)
		if (s->ports[i].port == port && s->ports[i].proto == proto)
			return &s->ports[i];
	return NULL;
}

/* Each service's best DestinationRule and mesh VirtualService, found in one pass over the
 * rules: a host names its service exactly (the rank is highest), by the Kubernetes short forms,
 * or by a wildcard (longer wildcards rank higher). Among equals, a DestinationRule in the
 * service's own namespace, then in the root namespace, then the first in file order wins;
 * later equals are reported. */
struct binding {
	int rank, pref;
};

#define RANK_EXACT 100003
#define RANK_SHORT 100002
#define RANK_WILDCARD(h) (1000 + (int)strlen(h))

/* Call fn(svc index, rank) for every service host names, written in namespace ns. */
static void for_host(struct bm_catalog *cat, const char *host, const char *ns,
		     void (*fn)(struct bm_catalog *, size_t, int, const void *), const void *rule)
{
	char *fqdn = bm_host_fqdn(host, ns);
	const struct bm_cat_svc *s;

	if (!fqdn)
		return;
	if (fqdn[0] == '*') {
		for (size_t i = 0; i < cat->n_svcs; i++)
			if (bm_host_match(fqdn, cat->svcs[i].host))
				fn(cat, i, RANK_WILDCARD(fqdn), rule);
	} else if ((s = find_exact(cat, fqdn))) {
		fn(cat, (size_t)(s - cat->svcs), RANK_EXACT, rule);
	} else if ((s = bm_catalog_find(cat, host, ns))) {
		fn(cat, (size_t)(s - cat->svcs), RANK_SHORT, rule);
	}
	free(fqdn);
}

static struct binding *bind_state; /* per service, while binding (not reentrant: one config at a time) */

static void offer_dr(struct bm_catalog *cat, size_t i, int rank, const void *rule)
{
	const struct bm_destination_rule *dr = rule;
	struct bm_cat_svc *svc = &cat->svcs[i];
	struct binding *b = &bind_state[i];
	int pref = !strcmp(dr->meta.ns, svc->ns) ? 3 : !strcmp(dr->meta.ns, BM_ROOT_NS) ? 2 : 1;

	if (rank > b->rank || (rank == b->rank && pref > b->pref)) {
		svc->dr = dr;
		b->rank = rank;
		b->pref = pref;
	} else if (rank == b->rank && pref == b->pref && svc->dr && svc->dr != dr) {
		bm_config_diag(cat->cfg, BM_DIAG_WARNING, &dr->meta.loc,
			       "DestinationRule %s/%s: host %s already has DestinationRule "
			       "%s/%s (%s:%d); this one is ignored for it",
			       dr->meta.ns, dr->meta.name, svc->host, svc->dr->meta.ns,
			       svc->dr->meta.name, svc->dr->meta.loc.file, svc->dr->meta.loc.line);
	}
}

static bool vs_is_mesh(const struct bm_virtual_service *vs)
{
	if (!vs->n_gateways)
		return true;
	for (size_t i = 0; i < vs->n_gateways; i++)
		if (!strcmp(vs->gateways[i], "mesh"))
			return true;
	return false;
}

/* A VirtualService's hosts may name one service twice: keep its best rank (pref 1 marks "this
 * VirtualService holds it"; ties with another VirtualService are reported once it is done). */
static void offer_vs(struct bm_catalog *cat, size_t i, int rank, const void *rule)
{
	struct bm_cat_svc *svc = &cat->svcs[i];
	struct binding *b = &bind_state[i];

	if (svc->vs == rule) {
		if (rank > b->rank)
			b->rank = rank;
		return;
	}
	if (rank > b->rank) {
		svc->vs = rule;
		b->rank = rank;
	} else if (rank == b->rank && svc->vs) {
		const struct bm_virtual_service *vs = rule;

		bm_config_diag(cat->cfg, BM_DIAG_WARNING, &vs->meta.loc,
			       "VirtualService %s/%s: host %s is already routed by "
			       "VirtualService %s/%s (%s:%d); this one is ignored for it",
			       vs->meta.ns, vs->meta.name, svc->host, svc->vs->meta.ns,
			       svc->vs->meta.name, svc->vs->meta.loc.file, svc->vs->meta.loc.line);
	}
}

static int bind_rules(struct bm_catalog *cat)
{
	struct bm_config *c = cat->cfg;

	bind_state = calloc(cat->n_svcs ? cat->n_svcs : 1, sizeof(*bind_state));
	if (!bind_state)
		return -1;
	for (size_t i = 0; i < c->n_destination_rules; i++)
		for_host(cat, c->destination_rules[i].host, c->destination_rules[i].meta.ns, offer_dr,
			 &c->destination_rules[i]);
	memset(bind_state, 0, (cat->n_svcs ? cat->n_svcs : 1) * sizeof(*bind_state));
	for (size_t i = 0; i < c->n_virtual_services; i++) {
		const struct bm_virtual_service *vs = &c->virtual_services[i];

		if (!vs_is_mesh(vs))
			continue;
		for (size_t h = 0; h < vs->n_hosts; h++)
			for_host(cat, vs->hosts[h], vs->meta.ns, offer_vs, vs);
	}
	free(bind_state);
	bind_state = NULL;
	return 0;
}

/* A route must name a host, subset and port that exist: otherwise the update is rejected. */
static void check_destination(struct bm_catalog *cat, const struct bm_virtual_service *vs,
			      const struct bm_destination *d)
{
	struct bm_config *c = cat->cfg;
	const struct bm_cat_svc *t = bm_catalog_find(cat, d->host, vs->meta.ns);

	if (!t) {
		bm_config_diag(c, BM_DIAG_ERROR, &d->loc,
			       "VirtualService %s/%s: destination host \"%s\" matches no Service or "
			       "ServiceEntry",
			       vs->meta.ns, vs->meta.name, d->host);
		return;
	}
	if (d->subset && !bm_cat_subset(t, d->subset)) {
		bm_config_diag(c, BM_DIAG_ERROR, &d->loc,
			       "VirtualService %s/%s: subset \"%s\" of host %s is not defined by "
			       "any DestinationRule",
			       vs->meta.ns, vs->meta.name, d->subset, t->host);
	}
	if (d->port && !bm_cat_port_find(t, d->port, BM_PROTO_TCP)) {
		bm_config_diag(c, BM_DIAG_ERROR, &d->loc,
			       "VirtualService %s/%s: host %s has no TCP port %u",
			       vs->meta.ns, vs->meta.name, t->host, d->port);
	}
}

static void check_references(struct bm_catalog *cat)
{
	struct bm_config *c = cat->cfg;

	for (size_t i = 0; i < c->n_virtual_services; i++) {
		const struct bm_virtual_service *vs = &c->virtual_services[i];
		bool bound = false;

		if (!vs_is_mesh(vs))
			continue;
		for (size_t s = 0; s < cat->n_svcs && !bound; s++)
			bound = cat->svcs[s].vs == vs;
		if (!bound)
			bm_config_diag(c, BM_DIAG_WARNING, &vs->meta.loc,
				       "VirtualService %s/%s: its hosts match no Service or "
				       "ServiceEntry: nothing to route yet",
				       vs->meta.ns, vs->meta.name);
		for (size_t r = 0; r < vs->n_tcp; r++)
			for (size_t d = 0; d < vs->tcp[r].n_route; d++)
				check_destination(cat, vs, &vs->tcp[r].route[d].dest);
		for (size_t r = 0; r < vs->n_http; r++) {
			for (size_t d = 0; d < vs->http[r].n_route; d++)
				check_destination(cat, vs, &vs->http[r].route[d].dest);
			if (vs->http[r].has_mirror)
				check_destination(cat, vs, &vs->http[r].mirror);
		}
	}
	for (size_t i = 0; i < c->n_destination_rules; i++) {
		const struct bm_destination_rule *dr = &c->destination_rules[i];
		bool bound = false;

		for (size_t s = 0; s < cat->n_svcs && !bound; s++)
			bound = cat->svcs[s].dr == dr;
		if (!bound)
			bm_config_diag(c, BM_DIAG_WARNING, &dr->meta.loc,
				       "DestinationRule %s/%s: host \"%s\" matches no Service or "
				       "ServiceEntry",
				       dr->meta.ns, dr->meta.name, dr->host);
	}
}

int bm_catalog_build(struct bm_catalog *cat, struct bm_config *cfg)
{
	memset(cat, 0, sizeof(*cat));
	cat->cfg = cfg;
	if (bm_cat_index_config(cat) || bm_cat_add_services(cat) ||
	    bm_cat_add_service_entries(cat))
		return -1;
	for (size_t i = 0; i < cat->n_svcs; i++)
		if (bm_cat_collect_endpoints(cat, &cat->svcs[i]))
			return -1;
	if (bind_rules(cat))
		return -1;
	check_references(cat);
	return 0;
}

void bm_catalog_free(struct bm_catalog *cat)
{
	for (size_t i = 0; i < cat->n_svcs; i++) {
		free(cat->svcs[i].host);
		free(cat->svcs[i].ports);
		free(cat->svcs[i].eps);
	}
	free(cat->svcs);
	bm_cat_index_free(cat->idx);
	memset(cat, 0, sizeof(*cat));
}
