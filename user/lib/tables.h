/* The desired kernel tables of one node, compiled from the catalog: deduplicated backends,
 * backend sets and weighted routes, service entries and local workloads. No kernel ids yet:
 * the installer (install.c) gives them ids and writes them. */
#ifndef BM_TABLES_H
#define BM_TABLES_H

#include <stddef.h>
#include <stdint.h>

#include "bm_svc.h"
#include "blobtab.h"
#include "catalog.h"

#define BM_T_NONE UINT32_MAX

struct bm_t_backend {
	struct bm_ip ip;
	uint16_t port;  /* host order */
	uint16_t flags; /* BM_BE_F_REMOTE when its node is known and not ours */
};

struct bm_t_set {
	uint32_t lb;   /* enum bm_lb */
	uint32_t n;
	uint32_t *be;  /* indices into backends, sorted by address and port */
	char *desc;    /* "backend.default.svc.cluster.local/v2:80 v4", for dumps */
};

struct bm_t_route {
	uint32_t n;
	uint32_t set[BM_MAX_DESTS];    /* indices into sets */
	uint32_t weight[BM_MAX_DESTS]; /* relative weights, > 0 */
};

struct bm_t_src {
	uint32_t wl;    /* index into workloads */
	uint32_t route; /* index into routes */
};

struct bm_t_svc {
	struct bm_svc_key key;
	uint32_t route; /* index into routes, or BM_T_NONE (passthrough) */
	uint32_t flags; /* BM_SVC_F_* */
	struct bm_t_src *src;
	size_t n_src;
	char *name;     /* "backend.default.svc.cluster.local:80/TCP" */
};

struct bm_t_wl {
	uint64_t cgid;  /* cgroup id of the pod */
	struct bm_ip ip;
	char *name;     /* "<ns>/<pod>", also the key of its stable id */
	const struct bm_pod *pod;
};

struct bm_tables {
	struct bm_t_backend *be;
	size_t n_be, cap_be;
	struct bm_t_set *set;
	size_t n_set, cap_set;
	struct bm_t_route *route;
	size_t n_route, cap_route;
	struct bm_t_svc *svc;
	size_t n_svc, cap_svc;
	struct bm_t_wl *wl;
	size_t n_wl, cap_wl;
	struct bm_blobtab be_idx, set_idx, route_idx; /* content -> index, for deduplication */
	uint32_t cfg_flags; /* struct bm_cfg flags: BM_CFG_F_BYPASS */
	uint16_t l7_port;   /* the agent's HTTP listener (host order), 0 = none */
	struct bm_ip l7_addr4, l7_addr6; /* all zero: none for that family */
	const char *node;   /* the node compiled for (NULL: all) */
	const struct bm_compile_opts *opts; /* during bm_compile only */
};

struct bm_compile_opts {
	const char *node; /* this node's name: its pods are the local workloads; NULL = every pod */
	/* Cgroup id of a local pod; 0 when found, -1 when the pod has no cgroup (yet). */
	int (*pod_cgroup)(void *arg, const struct bm_pod *pod, uint64_t *cgid);
	void *arg;
	bool no_bypass;   /* --no-sockmap: the same-node bypass stays off whatever the config says */
	/* The agent's HTTP listener: service ports with mesh http routes are sent there. Port 0:
	 * none, such ports stay at L4 (and a warning says so). */
	uint16_t l7_port;
	struct bm_ip l7_addr4, l7_addr6;
	/* Endpoints outlier detection ejected: left out of the service's sets. NULL: none. */
	bool (*ejected)(void *arg, const char *host, const struct bm_ip *ip, uint16_t port);
};

/* Would Istio treat this port as HTTP (by name prefix or appProtocol), or leave it to sniffing
 * (no recognised protocol)? Ports declared TCP, TLS, HTTPS, databases, UDP: no. */
bool bm_port_http_capable(const struct bm_cat_port *p);
/* What a port declares, as Istio reads it (name prefix, else appProtocol): */
enum bm_port_http {
	BM_PORT_NOT_HTTP = 0,
	BM_PORT_HTTP1,        /* http: HTTP/1.1 upstream unless h2UpgradePolicy / useClientProtocol */
	BM_PORT_HTTP2,        /* http2, grpc, grpc-web, h2c: HTTP/2 upstream */
	BM_PORT_AUTO,         /* nothing declared (sniffed): the client's protocol upstream */
};
enum bm_port_http bm_port_http_kind(const struct bm_cat_port *p);

/* Compile the catalog for one node. Problems (a set too large, more destinations than a route
 * holds) become ERROR diags in cat->cfg. 0, or -1 when out of memory. */
int bm_compile(const struct bm_catalog *cat, const struct bm_compile_opts *o, struct bm_tables *t);
void bm_tables_free(struct bm_tables *t);

/* The loadBalancer of a destination (subset, port level, as Istio merges them); NULL: none. */
const struct bm_lb_policy *bm_compile_lb_policy(const struct bm_cat_svc *s, const char *subset,
						uint16_t port);
/* Load-balancing algorithm of a destination (subset, port level, as Istio merges them). */
uint32_t bm_compile_lb(const struct bm_cat_svc *s, const char *subset, uint16_t port);
/* The DestinationRule's connectionPool / outlierDetection for (subset, port), from the most
 * specific level that sets one (subset port, subset, port, top); NULL when none does. */
const struct bm_conn_pool *bm_compile_pool(const struct bm_cat_svc *s, const char *subset,
					   uint16_t port);
const struct bm_outlier_policy *bm_compile_outlier(const struct bm_cat_svc *s, const char *subset,
						   uint16_t port);
/* Is this service port routed by the agent: HTTP (Istio's protocol selection, or sniffed) with
 * mesh http rules? (A DestinationRule's connectionPool / outlierDetection apply there.) */
bool bm_port_routed_l7(const struct bm_cat_svc *s, const struct bm_cat_port *p);

#endif
