/* Catalog entries and their endpoints: Services (explicit Endpoints/EndpointSlices win over the
 * selector, which picks Pods and WorkloadEntries) and ServiceEntries (inline or selected). */
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "catalog_internal.h"

static struct bm_cat_svc *add_svc(struct bm_catalog *cat)
{
	struct bm_cat_svc *v = realloc(cat->svcs, (cat->n_svcs + 1) * sizeof(*v));

	if (!v)
		return NULL;
	cat->svcs = v;
	memset(&v[cat->n_svcs], 0, sizeof(v[0]));
	return &v[cat->n_svcs++];
}

int bm_cat_add_services(struct bm_catalog *cat)
{
	struct bm_config *c = cat->cfg;

	for (size_t i = 0; i < c->n_services; i++) {
		const struct bm_service *k = &c->services[i];
		struct bm_cat_svc *s = add_svc(cat);

		if (!s)
			return -1;
		s->k8s = k;
		s->ns = k->meta.ns;
		s->loc = k->meta.loc;
		s->host = bm_host_fqdn(k->meta.name, k->meta.ns);
		if (!s->host || bm_cat_index_host(cat, cat->n_svcs - 1))
			return -1;
		s->vips = k->cluster_ips;
		s->n_vips = k->n_cluster_ips;
		s->ports = calloc(k->n_ports ? k->n_ports : 1, sizeof(*s->ports));
		if (!s->host || !s->ports)
			return -1;
		for (size_t p = 0; p < k->n_ports; p++) {
			s->ports[p].name = k->ports[p].name;
			s->ports[p].proto = k->ports[p].proto;
			s->ports[p].port = k->ports[p].port;
			s->ports[p].target_port = k->ports[p].target_name ? 0 : k->ports[p].target_port;
			s->ports[p].target_name = k->ports[p].target_name;
			s->ports[p].app_protocol = k->ports[p].app_protocol;
		}
		s->n_ports = k->n_ports;
		if (!k->n_cluster_ips && !k->headless)
			bm_config_diag(c, BM_DIAG_WARNING, &k->meta.loc,
				       "Service %s/%s has no spec.clusterIP: it gets no VIP (standalone "
				       "mode has no API server to allocate one)",
				       k->meta.ns, k->meta.name);
	}
	return 0;
}

int bm_cat_add_service_entries(struct bm_catalog *cat)
{
	struct bm_config *c = cat->cfg;

	for (size_t i = 0; i < c->n_service_entries; i++) {
		const struct bm_service_entry *se = &c->service_entries[i];

		for (size_t h = 0; h < se->n_hosts; h++) {
			char *host = bm_host_fqdn(se->hosts[h], se->meta.ns);
			const struct bm_cat_svc *dup;
			struct bm_cat_svc *s;

			if (!host)
				return -1;
			dup = bm_cat_by_host(cat, host);
			if (dup) {
				bm_config_diag(c, BM_DIAG_WARNING, &se->meta.loc,
					       "ServiceEntry %s/%s: host %s is already defined at "
					       "%s:%d; ignored here",
					       se->meta.ns, se->meta.name, host, dup->loc.file,
					       dup->loc.line);
				free(host);
				continue;
			}
			s = add_svc(cat);
			if (!s) {
				free(host);
				return -1;
			}
			s->se = se;
			s->ns = se->meta.ns;
			s->loc = se->meta.loc;
			s->host = host;
			if (bm_cat_index_host(cat, cat->n_svcs - 1))
				return -1;
			s->vips = se->addresses;
			s->n_vips = se->n_addresses;
			s->passthrough = se->resolution == BM_RES_NONE;
			s->ports = calloc(se->n_ports ? se->n_ports : 1, sizeof(*s->ports));
			if (!s->ports)
				return -1;
			for (size_t p = 0; p < se->n_ports; p++) {
				s->ports[p].name = se->ports[p].name;
				s->ports[p].proto = se->ports[p].proto;
				s->ports[p].port = se->ports[p].number;
				s->ports[p].app_protocol = se->ports[p].protocol;
				s->ports[p].target_port = se->ports[p].target_port ?
								  se->ports[p].target_port :
								  se->ports[p].number;
			}
			s->n_ports = se->n_ports;
		}
	}
	return 0;
}

static int add_ep(struct bm_cat_svc *s, const struct bm_cat_ep *ep)
{
	struct bm_cat_ep *v = realloc(s->eps, (s->n_eps + 1) * sizeof(*v));

	if (!v)
		return -1;
	s->eps = v;
	v[s->n_eps++] = *ep;
	return 0;
}

/* Pods and WorkloadEntries of namespace ns whose labels match selector (an empty one matches
 * every one of the namespace). */
static int select_workloads(const struct bm_catalog *cat, struct bm_cat_svc *s, const char *ns,
			    const struct bm_labels *selector)
{
	const struct bm_config *c = cat->cfg;
	/* Only pods with the selector's first label can match: the index gives them in order. */
	const struct bm_u32list *cand = selector->n ? bm_cat_pods_with(cat, ns, &selector->v[0]) : NULL;
	size_t n = selector->n ? (cand ? cand->n : 0) : c->n_pods;

	for (size_t j = 0; j < n; j++) {
		const struct bm_pod *p = &c->pods[selector->n ? cand->v[j] : j];

		if (!selector->n && strcmp(p->meta.ns, ns))
			continue;
		struct bm_cat_ep ep = { .pod = p, .labels = &p->meta.labels, .ready = p->ready };

		if (!bm_labels_match(selector, &p->meta.labels))
			continue;
		if (add_ep(s, &ep))
			return -1;
	}
	for (size_t i = 0; i < c->n_workload_entries; i++) {
		const struct bm_workload_entry *we = &c->workload_entries[i];
		struct bm_cat_ep ep = { .we = we, .labels = &we->labels, .ready = true };

		if (strcmp(we->meta.ns, ns) || !bm_labels_match(selector, &we->labels))
			continue;
		if (add_ep(s, &ep))
			return -1;
	}
	return 0;
}

int bm_cat_collect_endpoints(struct bm_catalog *cat, struct bm_cat_svc *s)
{
	const struct bm_config *c = cat->cfg;
	bool explicit = false;

	if (s->k8s) {
		const struct bm_service *k = s->k8s;

		/* Endpoints / EndpointSlices written for this Service win over its selector. */
		const struct bm_u32list *objs = bm_cat_endpoints_of(cat, k->meta.ns, k->meta.name);

		for (uint32_t j = 0; objs && j < objs->n; j++) {
			const struct bm_endpoints *e = &c->endpoints[objs->v[j]];

			explicit = true;
			for (size_t a = 0; a < e->n_addrs; a++) {
				const struct bm_pod *pod =
					e->addrs[a].pod_name ?
						bm_cat_pod(cat, e->meta.ns, e->addrs[a].pod_name) :
						NULL;
				struct bm_cat_ep ep = { .eps = e,
							.ep_idx = a,
							.labels = pod ? &pod->meta.labels : NULL,
							.ready = e->addrs[a].ready };

				if (add_ep(s, &ep))
					return -1;
			}
		}
		if (!explicit && k->has_selector && k->selector.n)
			return select_workloads(cat, s, k->meta.ns, &k->selector);
		return 0;
	}

	const struct bm_service_entry *se = s->se;

	for (size_t i = 0; i < se->n_endpoints; i++) {
		struct bm_cat_ep ep = { .we = &se->endpoints[i],
					.labels = &se->endpoints[i].labels,
					.ready = true };

		if (add_ep(s, &ep))
			return -1;
	}
	if (se->has_workload_selector)
		return select_workloads(cat, s, se->meta.ns, &se->workload_selector);
	return 0;
}

static uint16_t we_port(const struct bm_workload_entry *we, const char *name)
{
	if (!name)
		return 0;
	for (size_t i = 0; i < we->n_ports; i++)
		if (we->ports[i].name && !strcmp(we->ports[i].name, name))
			return we->ports[i].port;
	return 0;
}

static bool same_name(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

uint16_t bm_cat_ep_port(const struct bm_cat_svc *s, const struct bm_cat_ep *ep,
			const struct bm_cat_port *p)
{
	(void)s;
	if (ep->pod) {
		if (!p->target_name)
			return p->target_port ? p->target_port : p->port;
		for (size_t i = 0; i < ep->pod->n_ports; i++) {
			const struct bm_container_port *cp = &ep->pod->ports[i];

			if (cp->name && !strcmp(cp->name, p->target_name) && cp->proto == p->proto)
				return cp->port;
		}
		return 0; /* the pod has no port of that name: not an endpoint of this port */
	}
	if (ep->we) {
		/* A WorkloadEntry's ports map overrides by port name (Istio semantics). */
		uint16_t v = we_port(ep->we, p->target_name ? p->target_name : p->name);

		if (v)
			return v;
		if (p->target_name)
			return 0;
		return p->target_port ? p->target_port : p->port;
	}
	for (size_t i = 0; i < ep->eps->n_ports; i++) {
		const struct bm_ep_port *epp = &ep->eps->ports[i];

		if (epp->proto == p->proto && same_name(epp->name, p->name)) /* by name, as kube-proxy */
			return epp->port;
	}
	return 0;
}

int bm_cat_ep_addr(const struct bm_cat_ep *ep, bool v4, struct bm_ip *out)
{
	if (ep->pod) {
		for (size_t i = 0; i < ep->pod->n_ips; i++)
			if (bm_ip_is_v4(&ep->pod->ips[i]) == v4) {
				*out = ep->pod->ips[i];
				return 0;
			}
		return -1;
	}
	if (ep->we) {
		if (!ep->we->has_address || bm_ip_is_v4(&ep->we->address) != v4)
			return -1;
		*out = ep->we->address;
		return 0;
	}
	if (bm_ip_is_v4(&ep->eps->addrs[ep->ep_idx].ip) != v4)
		return -1;
	*out = ep->eps->addrs[ep->ep_idx].ip;
	return 0;
}

const char *bm_cat_ep_node(const struct bm_cat_ep *ep)
{
	if (ep->pod)
		return ep->pod->node_name;
	if (ep->eps)
		return ep->eps->addrs[ep->ep_idx].node_name;
	return NULL; /* a WorkloadEntry runs outside the cluster's nodes */
}

const char *bm_cat_ep_name(const struct bm_cat_ep *ep)
{
	if (ep->pod)
		return ep->pod->meta.name;
	if (ep->we)
		return ep->we->meta.name ? ep->we->meta.name : "(ServiceEntry endpoint)";
	if (ep->eps->addrs[ep->ep_idx].pod_name)
		return ep->eps->addrs[ep->ep_idx].pod_name;
	return ep->eps->meta.name;
}
