/* The config model: the Kubernetes and Istio resources bpfmesh honours, as typed C structs.
 * Filled by config.c from YAML; read by catalog.c/compile.c. All strings owned by the model. */
#ifndef BM_MODEL_H
#define BM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BM_DOMAIN_SUFFIX "cluster.local"

/* An address, IPv6 or IPv4-mapped (::ffff:a.b.c.d), network byte order: same form as the
 * kernel maps use (include/bm_svc.h). */
struct bm_ip {
	uint8_t a[16];
};

struct bm_loc {
	const char *file; /* points into the model's file table */
	int line;
};

struct bm_label {
	char *key;
	char *val;
};

/* Sorted by key, keys unique. */
struct bm_labels {
	struct bm_label *v;
	size_t n;
};

struct bm_meta {
	char *name;
	char *ns;         /* defaulted to "default" when absent (istio-system stays as written) */
	char *uid;        /* metadata.uid, may be NULL */
	struct bm_labels labels;
	struct bm_loc loc; /* where the resource starts */
};

enum bm_l4proto { BM_PROTO_TCP = 6, BM_PROTO_UDP = 17, BM_PROTO_SCTP = 132 };

/* ---- Kubernetes ---- */

struct bm_namespace {
	struct bm_meta meta;
};

struct bm_svc_port {
	char *name;           /* may be NULL when the Service has a single port */
	enum bm_l4proto proto;
	uint16_t port;
	uint16_t target_port; /* numeric targetPort; 0 when named (target_name) */
	char *target_name;    /* named targetPort, resolved per pod */
	char *app_protocol;   /* may be NULL */
	struct bm_loc loc;
};

struct bm_service {
	struct bm_meta meta;
	struct bm_ip cluster_ips[2]; /* spec.clusterIP(s); at most one per family */
	size_t n_cluster_ips;        /* 0: none (headless, or not allocated) */
	bool headless;               /* clusterIP: None */
	struct bm_svc_port *ports;
	size_t n_ports;
	struct bm_labels selector;
	bool has_selector;           /* selector present (even if empty) */
};

struct bm_container_port {
	char *name; /* may be NULL */
	uint16_t port;
	enum bm_l4proto proto;
};

struct bm_pod {
	struct bm_meta meta;
	char *node_name;       /* spec.nodeName, may be NULL */
	char *service_account; /* spec.serviceAccountName, "default" when absent */
	struct bm_ip ips[2];   /* status.podIP(s) */
	size_t n_ips;
	bool ready;            /* phase Running and no Ready=False condition */
	bool host_network;
	struct bm_container_port *ports; /* all containers' ports */
	size_t n_ports;
};

/* Endpoints and EndpointSlice, normalized. One per object. */
struct bm_ep_port {
	char *name; /* may be NULL */
	uint16_t port;
	enum bm_l4proto proto;
};

struct bm_ep_addr {
	struct bm_ip ip;
	bool ready;
	char *node_name; /* may be NULL */
	char *pod_name;  /* targetRef.name when targetRef.kind is Pod, may be NULL */
};

struct bm_endpoints {
	struct bm_meta meta;
	char *service;          /* Endpoints: metadata.name; slice: kubernetes.io/service-name */
	bool is_slice;
	struct bm_ep_addr *addrs;
	size_t n_addrs;
	struct bm_ep_port *ports;
	size_t n_ports;
};

/* ---- Istio networking ---- */

/* WorkloadEntry, and ServiceEntry.endpoints[] items. */
struct bm_named_port {
	char *name;
	uint16_t port;
};

struct bm_workload_entry {
	struct bm_meta meta;      /* for inline SE endpoints: name NULL, ns of the SE */
	struct bm_ip address;
	bool has_address;
	struct bm_named_port *ports; /* spec.ports map: port name -> number */
	size_t n_ports;
	struct bm_labels labels;  /* spec.labels (not metadata.labels) */
	char *service_account;    /* may be NULL */
	uint32_t weight;          /* 0 = unset */
};

enum bm_resolution { BM_RES_NONE = 1, BM_RES_STATIC };
enum bm_location { BM_LOC_EXTERNAL = 1, BM_LOC_INTERNAL };

struct bm_se_port {
	char *name;
	char *protocol;        /* Istio protocol name as written: TCP, HTTP, UDP, ... */
	enum bm_l4proto proto; /* L4 protocol derived from protocol */
	uint16_t number;
	uint16_t target_port;  /* 0 = same as number */
	struct bm_loc loc;
};

struct bm_service_entry {
	struct bm_meta meta;
	char **hosts;
	size_t n_hosts;
	struct bm_ip *addresses; /* VIPs (single addresses; CIDRs are reported unsupported) */
	size_t n_addresses;
	struct bm_se_port *ports;
	size_t n_ports;
	enum bm_location location;
	enum bm_resolution resolution;
	struct bm_workload_entry *endpoints; /* inline endpoints */
	size_t n_endpoints;
	struct bm_labels workload_selector;
	bool has_workload_selector;
};

enum bm_lb_simple {
	BM_LBS_UNSET = 0,
	BM_LBS_ROUND_ROBIN,
	BM_LBS_RANDOM,
	BM_LBS_LEAST_REQUEST,
	BM_LBS_PASSTHROUGH,
};

/* consistentHash's hash key (Istio's oneof). */
enum bm_hash_key {
	BM_HASH_NONE = 0,
	BM_HASH_SOURCE_IP,        /* useSourceIp */
	BM_HASH_HEADER,           /* httpHeaderName: hash_name, lowercase */
	BM_HASH_COOKIE,           /* httpCookie: hash_name, cookie_path, cookie_ttl_* */
	BM_HASH_QUERY,            /* httpQueryParameterName: hash_name */
};

struct bm_lb_policy {
	bool set;                 /* loadBalancer present at this level */
	enum bm_lb_simple simple; /* when not consistent hash */
	bool hash_source_ip;      /* consistentHash.useSourceIp */
	enum bm_hash_key hash;    /* consistentHash's key, BM_HASH_NONE: no consistentHash */
	char *hash_name;          /* header (lowercased), cookie or query parameter name */
	char *cookie_path;        /* httpCookie.path, NULL: none */
	bool cookie_ttl_set;      /* httpCookie.ttl given: a missing cookie is generated */
	uint32_t cookie_ttl_s;    /* ... with this Max-Age (0: a session cookie) */
	struct bm_loc loc;
};

/* Istio ConnectionPoolSettings (fields absent: 0 = Istio's default, no limit). */
struct bm_conn_pool {
	bool set;                        /* connectionPool present at this level */
	uint32_t max_connections;        /* tcp.maxConnections */
	uint32_t connect_timeout_ms;     /* tcp.connectTimeout */
	uint32_t max_pending;            /* http.http1MaxPendingRequests */
	uint32_t max_requests;           /* http.http2MaxRequests */
	uint32_t max_requests_per_conn;  /* http.maxRequestsPerConnection */
	uint32_t max_retries;            /* http.maxRetries */
	uint32_t idle_timeout_ms;        /* http.idleTimeout */
	uint8_t h2_upgrade;              /* http.h2UpgradePolicy: BM_H2UP_* */
	bool use_client_protocol;        /* http.useClientProtocol */
	struct bm_loc loc;
};

enum bm_h2_upgrade {
	BM_H2UP_DEFAULT = 0,             /* the mesh's default: DO_NOT_UPGRADE, as Istio's */
	BM_H2UP_DO_NOT_UPGRADE,
	BM_H2UP_UPGRADE,
};

/* Istio OutlierDetection; Envoy's defaults where a field is absent. */
struct bm_outlier_policy {
	bool set;                        /* outlierDetection present at this level */
	uint32_t consecutive_5xx;        /* consecutive5xxErrors (5); 0: off */
	uint32_t consecutive_gateway;    /* consecutiveGatewayErrors (0: off) */
	uint32_t interval_ms;            /* interval (10 s) */
	uint32_t base_ejection_ms;       /* baseEjectionTime (30 s) */
	uint32_t max_ejection_pct;       /* maxEjectionPercent (10) */
	uint32_t min_health_pct;         /* minHealthPercent (0) */
	struct bm_loc loc;
};

struct bm_port_policy {
	uint16_t port;
	struct bm_lb_policy lb;
	struct bm_conn_pool pool;
	struct bm_outlier_policy outlier;
};

struct bm_traffic_policy {
	struct bm_lb_policy lb;
	struct bm_conn_pool pool;
	struct bm_outlier_policy outlier;
	struct bm_port_policy *ports; /* portLevelSettings */
	size_t n_ports;
};

struct bm_subset {
	char *name;
	struct bm_labels labels;
	struct bm_traffic_policy policy;
	struct bm_loc loc;
};

struct bm_destination_rule {
	struct bm_meta meta;
	char *host;          /* as written */
	struct bm_traffic_policy policy;
	struct bm_subset *subsets;
	size_t n_subsets;
};

struct bm_destination {
	char *host;          /* as written */
	char *subset;        /* may be NULL */
	uint16_t port;       /* 0 = unset */
	struct bm_loc loc;
};

struct bm_route_dest {
	struct bm_destination dest;
	uint32_t weight;     /* as written; 0 when absent */
	bool has_weight;
};

struct bm_l4_match {
	uint16_t port;                   /* 0 = any */
	struct bm_labels source_labels;
	bool has_source_labels;
	char *source_namespace;          /* may be NULL */
	char **gateways;                 /* may be empty */
	size_t n_gateways;
	struct bm_loc loc;
};

struct bm_tcp_route {
	struct bm_l4_match *match; /* empty: matches everything */
	size_t n_match;
	struct bm_route_dest *route;
	size_t n_route;
	struct bm_loc loc;
};

/* ---- HTTP routes: VirtualService spec.http (Istio HTTPRoute) ---- */

/* Istio StringMatch. Case-sensitive, except uri under ignoreUriCase (exact and prefix only). */
enum bm_string_match_kind {
	BM_SM_NONE = 0,  /* the field is absent: no condition */
	BM_SM_EXACT,
	BM_SM_PREFIX,
	BM_SM_REGEX,     /* RE2 syntax, full match (anchored at both ends) */
	BM_SM_PRESENT,   /* written {}: the value must be there, whatever it is */
};

struct bm_string_match {
	enum bm_string_match_kind kind;
	char *value;     /* EXACT, PREFIX, REGEX; NULL for NONE and PRESENT */
	struct bm_loc loc;
};

/* One entry of headers, withoutHeaders or queryParams. */
struct bm_kv_match {
	char *name;      /* header names lowercased; query parameter names as written */
	struct bm_string_match match;
};

/* Istio HTTPMatchRequest: every condition set must hold. */
struct bm_http_match {
	char *name;                       /* may be NULL */
	struct bm_string_match uri;       /* on the path without its query string */
	struct bm_string_match scheme;
	struct bm_string_match method;
	struct bm_string_match authority;
	struct bm_kv_match *headers;      /* must match (PRESENT: the header is there) */
	size_t n_headers;
	struct bm_kv_match *without_headers; /* must not match (PRESENT: the header is not there) */
	size_t n_without_headers;
	struct bm_kv_match *query_params;
	size_t n_query_params;
	bool ignore_uri_case;
	uint16_t port;                    /* 0 = any */
	struct bm_labels source_labels;
	bool has_source_labels;
	char *source_namespace;           /* may be NULL */
	char **gateways;                  /* empty: the VirtualService's gateways */
	size_t n_gateways;
	bool never;                       /* holds a condition bpfmesh cannot evaluate (reported
					   * unsupported): this entry never matches */
	struct bm_loc loc;
};

struct bm_header_kv {
	char *name;      /* lowercased */
	char *value;     /* "%%" already turned into "%" */
};

/* Istio Headers.HeaderOperations: applied as remove, set, add (l7.h). */
struct bm_header_ops {
	struct bm_header_kv *set;
	size_t n_set;
	struct bm_header_kv *add;
	size_t n_add;
	char **remove;   /* lowercased */
	size_t n_remove;
};

struct bm_http_headers {
	struct bm_header_ops request;
	struct bm_header_ops response;
};

/* Istio HTTPRouteDestination. */
struct bm_http_route_dest {
	struct bm_destination dest;
	uint32_t weight;     /* as written; 0 when absent */
	bool has_weight;
	struct bm_http_headers headers;
};

struct bm_http_redirect {
	char *uri;           /* NULL: keep the request's path */
	char *authority;     /* NULL: keep */
	char *scheme;        /* NULL: keep; else "http" or "https" */
	uint16_t port;       /* 0: keep */
	uint16_t code;       /* redirectCode; 301 when absent */
};

struct bm_http_direct_response {
	uint16_t status;     /* 200..599 */
	char *body;          /* body.string; NULL when there is none */
};

struct bm_http_rewrite {
	char *uri;           /* replaces the matched uri prefix (bm_http_rewrite_path); NULL: keep */
	char *authority;     /* NULL: keep */
};

/* Istio HTTPRetry. */
struct bm_http_retry {
	uint32_t attempts;           /* retries after the first try; 0 disables retries */
	uint32_t per_try_timeout_ms; /* 0 = unset (the route timeout bounds each try) */
	uint32_t retry_on;           /* BM_RETRY_* of l7.h */
	bool has_retry_on;           /* retryOn written (else Istio's default applies) */
	uint16_t *retry_codes;       /* the numeric entries of retryOn (retriable status codes) */
	size_t n_retry_codes;
};

/* Istio HTTPFaultInjection. Shares of requests are in millionths: 100% = 1000000. */
struct bm_http_fault {
	bool has_delay;
	uint32_t delay_ms;           /* delay.fixedDelay */
	uint32_t delay_ppm;          /* delay.percentage.value (or delay.percent); 0 when absent */
	bool has_abort;
	uint16_t abort_status;       /* abort.httpStatus */
	uint32_t abort_ppm;          /* abort.percentage.value; 0 when absent */
};

enum bm_http_action {
	BM_HTTP_FORWARD = 1,         /* route: to a weighted destination */
	BM_HTTP_REDIRECT,            /* redirect */
	BM_HTTP_DIRECT_RESPONSE,     /* directResponse */
	BM_HTTP_DELEGATE,            /* delegate: reported unsupported; the rule never matches */
};

/* Istio HTTPRoute: one rule of spec.http. */
struct bm_http_route {
	char *name;                       /* may be NULL */
	struct bm_http_match *match;      /* any entry matching selects the rule; none: every request */
	size_t n_match;
	enum bm_http_action action;
	struct bm_http_route_dest *route; /* FORWARD */
	size_t n_route;
	struct bm_http_redirect redirect;  /* REDIRECT */
	struct bm_http_direct_response direct_response; /* DIRECT_RESPONSE */
	bool has_rewrite;
	struct bm_http_rewrite rewrite;
	bool has_timeout;
	uint32_t timeout_ms;              /* 0 with has_timeout: no timeout */
	bool has_retries;
	struct bm_http_retry retries;
	bool has_fault;
	struct bm_http_fault fault;
	bool has_mirror;
	struct bm_destination mirror;
	uint32_t mirror_ppm;              /* mirrorPercentage.value, millionths; 1000000 if absent */
	struct bm_http_headers headers;   /* route-level header edits */
	struct bm_loc loc;
};

struct bm_virtual_service {
	struct bm_meta meta;
	char **hosts;
	size_t n_hosts;
	char **gateways;     /* empty means [mesh] */
	size_t n_gateways;
	struct bm_tcp_route *tcp;
	size_t n_tcp;
	bool has_http;       /* http: present (the rules are in http[]) */
	bool has_tls;        /* tls: present (reported unsupported for now) */
	struct bm_loc http_loc;
	struct bm_loc tls_loc;
	struct bm_http_route *http; /* spec.http, in order: the first rule that matches wins */
	size_t n_http;
};

/* ---- The whole config ---- */

enum bm_diag_level { BM_DIAG_ERROR = 1, BM_DIAG_UNSUPPORTED, BM_DIAG_WARNING };

struct bm_diag {
	enum bm_diag_level level;
	char *msg;           /* full text, e.g. "unsupported: VirtualService/http at a.yaml:12" */
	struct bm_loc loc;
};

/* Mesh-wide settings: ConfigMap "bpfmesh" in the root namespace (istio-system), as Istio keeps
 * its mesh config in ConfigMap "istio" there. */
struct bm_mesh_settings {
	bool has_bypass;     /* data.sameNodeBypass present */
	bool bypass;         /* same-node sockmap bypass: "true" (default) or "false" */
	struct bm_loc loc;   /* where the ConfigMap starts; file NULL when there is none */
};

struct bm_config {
	char **files;        /* every file read; bm_loc.file points here */
	size_t n_files;

	struct bm_namespace *namespaces;
	size_t n_namespaces;
	struct bm_service *services;
	size_t n_services;
	struct bm_pod *pods;
	size_t n_pods;
	struct bm_endpoints *endpoints;
	size_t n_endpoints;
	struct bm_service_entry *service_entries;
	size_t n_service_entries;
	struct bm_workload_entry *workload_entries;
	size_t n_workload_entries;
	struct bm_destination_rule *destination_rules;
	size_t n_destination_rules;
	struct bm_virtual_service *virtual_services;
	size_t n_virtual_services;

	struct bm_diag *diags;
	size_t n_diags;
	size_t n_errors;     /* diags with level ERROR: the config must not be applied */

	/* Private to config.c: (kind, namespace, name) of every resource read, for the duplicate
	 * check across files. */
	struct bm_mesh_settings mesh;

	bool borrowed;       /* a merged view (config_cache.c): resources and file names belong to
			      * the per-file configs; only the arrays and diags are its own */
	struct bm_config_seen *seen;
};

#endif
