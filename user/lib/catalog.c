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
	for (size_t i = 0; i < cat->n_svcs; i++)
		if (!strcmp(cat->svcs[i].host, host))
			return &cat->svcs[i];
	return NULL;
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

/* How well a resource's host (as written in its namespace) names svc: 3 exact, 2 by the
 * Kubernetes short forms, 1 by wildcard (longer wildcards win through the caller), 0 not. */
static int host_rank(const struct bm_catalog *cat, const char *host, const char *ns,
		     const struct bm_cat_svc *svc)
{
	char *fqdn = bm_host_fqdn(host, ns);
	int r = 0;

	if (!fqdn)
		return 0;
	if (!strcmp(fqdn, svc->host))
		r = 3;
	else if (fqdn[0] == '*' && bm_host_match(fqdn, svc->host))
		r = 1;
	else if (bm_catalog_find(cat, host, ns) == svc)
		r = 2;
	free(fqdn);
	return r;
}

/* DestinationRule for a service: the best host match; among equals, one in the service's own
 * namespace, then the root namespace, then the first in file order. Later equals are reported. */
static void bind_dr(struct bm_catalog *cat, struct bm_cat_svc *svc)
{
	struct bm_config *c = cat->cfg;
	const struct bm_destination_rule *best = NULL;
	int best_rank = 0, best_pref = 0;

	for (size_t i = 0; i < c->n_destination_rules; i++) {
		const struct bm_destination_rule *dr = &c->destination_rules[i];
		int rank = host_rank(cat, dr->host, dr->meta.ns, svc);
		int pref;

		if (!rank)
			continue;
		if (rank == 1)
			rank = 1000 + (int)strlen(dr->host); /* longest wildcard first */
		else
			rank = 100000 + rank;
		pref = !strcmp(dr->meta.ns, svc->ns) ? 3 : !strcmp(dr->meta.ns, BM_ROOT_NS) ? 2 : 1;
		if (rank > best_rank || (rank == best_rank && pref > best_pref)) {
			best = dr;
			best_rank = rank;
			best_pref = pref;
		} else if (rank == best_rank && pref == best_pref && best) {
			bm_config_diag(c, BM_DIAG_WARNING, &dr->meta.loc,
				       "DestinationRule %s/%s: host %s already has DestinationRule "
				       "%s/%s (%s:%d); this one is ignored for it",
				       dr->meta.ns, dr->meta.name, svc->host, best->meta.ns,
				       best->meta.name, best->meta.loc.file, best->meta.loc.line);
		}
	}
	svc->dr = best;
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

static void bind_vs(struct bm_catalog *cat, struct bm_cat_svc *svc)
{
	struct bm_config *c = cat->cfg;
	const struct bm_virtual_service *best = NULL;
	int best_rank = 0;

	for (size_t i = 0; i < c->n_virtual_services; i++) {
		const struct bm_virtual_service *vs = &c->virtual_services[i];
		int rank = 0;

		if (!vs_is_mesh(vs))
			continue;
		for (size_t h = 0; h < vs->n_hosts; h++) {
			int r = host_rank(cat, vs->hosts[h], vs->meta.ns, svc);

			if (r == 1)
				r = 1000 + (int)strlen(vs->hosts[h]);
			else if (r)
				r = 100000 + r;
			if (r > rank)
				rank = r;
		}
		if (!rank)
			continue;
		if (rank > best_rank) {
			best = vs;
			best_rank = rank;
		} else if (rank == best_rank) {
			bm_config_diag(c, BM_DIAG_WARNING, &vs->meta.loc,
				       "VirtualService %s/%s: host %s is already routed by "
				       "VirtualService %s/%s (%s:%d); this one is ignored for it",
				       vs->meta.ns, vs->meta.name, svc->host, best->meta.ns,
				       best->meta.name, best->meta.loc.file, best->meta.loc.line);
		}
	}
	svc->vs = best;
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
	if (bm_cat_add_services(cat) || bm_cat_add_service_entries(cat))
		return -1;
	for (size_t i = 0; i < cat->n_svcs; i++) {
		if (bm_cat_collect_endpoints(cat, &cat->svcs[i]))
			return -1;
		bind_dr(cat, &cat->svcs[i]);
		bind_vs(cat, &cat->svcs[i]);
	}
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
	memset(cat, 0, sizeof(*cat));
}
