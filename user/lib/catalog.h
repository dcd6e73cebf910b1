/* The service catalog: every Kubernetes Service and ServiceEntry host with its addresses, ports,
 * endpoints, DestinationRule and mesh VirtualService, resolved the way Istio resolves hosts. */
#ifndef BM_CATALOG_H
#define BM_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define BM_ROOT_NS "istio-system" /* the mesh root namespace: mesh-wide rules live here */

struct bm_cat_port {
	const char *name;     /* may be NULL */
	const char *app_protocol; /* Service appProtocol, or ServiceEntry protocol; may be NULL */
	enum bm_l4proto proto;
	uint16_t port;        /* service port */
	uint16_t target_port; /* numeric target; 0 when named */
	const char *target_name;
};

/* One endpoint: exactly one of pod, we, eps is set. */
struct bm_cat_ep {
	const struct bm_pod *pod;
	const struct bm_workload_entry *we;
	const struct bm_endpoints *eps; /* Endpoints/EndpointSlice object ... */
	size_t ep_idx;                  /* ... and the address in it */
	const struct bm_labels *labels; /* for subset selection; NULL = no labels */
	bool ready;
};

struct bm_cat_svc {
	char *host;                       /* FQDN: name.ns.svc.cluster.local or a ServiceEntry host */
	const char *ns;                   /* namespace of the defining resource */
	const struct bm_service *k8s;     /* one of k8s, se */
	const struct bm_service_entry *se;
	const struct bm_ip *vips;
	size_t n_vips;
	struct bm_cat_port *ports;
	size_t n_ports;
	struct bm_cat_ep *eps;
	size_t n_eps;
	bool passthrough;                 /* ServiceEntry resolution NONE */
	const struct bm_destination_rule *dr; /* NULL: none */
	const struct bm_virtual_service *vs;  /* mesh VirtualService for this host, NULL: none */
	struct bm_loc loc;
};

struct bm_cat_index;

struct bm_catalog {
	struct bm_cat_svc *svcs;
	size_t n_svcs;
	struct bm_config *cfg;
	struct bm_cat_index *idx; /* hash indexes (catalog_index.c) */
};

/* Build from a loaded config. Cross-resource problems (a route to a host or subset that does not
 * exist) become ERROR diags in cfg. 0, or -1 when out of memory. */
int bm_catalog_build(struct bm_catalog *cat, struct bm_config *cfg);
void bm_catalog_free(struct bm_catalog *cat);

/* The service a host name means, written in a resource of namespace ns: a short name is
 * <name>.<ns>.svc.cluster.local; <name>.<ns> and <name>.<ns>.svc name that Kubernetes Service;
 * anything else must match a host exactly. NULL when nothing matches. */
const struct bm_cat_svc *bm_catalog_find(const struct bm_catalog *cat, const char *host,
					 const char *ns);
/* The FQDN of a host as written in namespace ns (short names qualified). Caller frees. */
char *bm_host_fqdn(const char *host, const char *ns);
/* Istio host matching: pattern may be "*" or "*.suffix"; otherwise exact. */
bool bm_host_match(const char *pattern, const char *host);

/* Port an endpoint serves a service port on; 0 when it does not serve it. */
uint16_t bm_cat_ep_port(const struct bm_cat_svc *s, const struct bm_cat_ep *ep,
			const struct bm_cat_port *p);
/* Address of an endpoint in one family; 0, or -1 when it has none in that family. */
int bm_cat_ep_addr(const struct bm_cat_ep *ep, bool v4, struct bm_ip *out);
/* The subset's definition for a service, or NULL. */
const struct bm_subset *bm_cat_subset(const struct bm_cat_svc *s, const char *name);
const struct bm_cat_port *bm_cat_port_find(const struct bm_cat_svc *s, uint16_t port,
					   enum bm_l4proto proto);
/* Node an endpoint runs on, or NULL when not known. */
const char *bm_cat_ep_node(const struct bm_cat_ep *ep);
/* Name of an endpoint for messages and dumps (pod name, WorkloadEntry name, or address). */
const char *bm_cat_ep_name(const struct bm_cat_ep *ep);

#endif
