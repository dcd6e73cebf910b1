/* The contract between the agent's HTTP engine and its router: one request as the router sees
 * it, and what to do with it. The engine (h1_*.c) parses and proxies; the router (the agent,
 * with http_match.c) decides. */
#ifndef BM_L7_H
#define BM_L7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define BM_L7_MAX_EDITS 16

/* A header as received: name lowercased by the engine, value as sent (not NUL-terminated). */
struct bm_http_hdr {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* One request, valid only during the router call. */
struct bm_http_req {
	const char *method;       /* NUL-terminated, e.g. "GET" */
	const char *path;         /* request target as sent, NUL-terminated ("/a/b?x=1") */
	const char *authority;    /* Host (HTTP/1.1) or :authority (HTTP/2), NUL-terminated, "" if none */
	const char *scheme;       /* "http" */
	const struct bm_http_hdr *hdrs;
	size_t n_hdrs;
	/* Where the client thought it was going (the original destination of the connection). */
	struct sockaddr_storage orig_dst;
	struct sockaddr_storage client;
	uint32_t caller_wl;       /* the caller's workload id (bm_wl), 0 when not known */
	bool http2;               /* the client speaks HTTP/2 (the h2 front) */
	unsigned attempt;         /* 0 for the first try; n for the n-th retry */
	struct sockaddr_storage prev_upstream; /* attempt > 0: where the last try went */
};

/* Header edits, applied in this order: remove, set (replace or add), add (append). */
struct bm_http_edit {
	const char *name;         /* lowercase */
	const char *value;        /* NULL for remove */
};

struct bm_http_edits {
	struct bm_http_edit remove[BM_L7_MAX_EDITS];
	size_t n_remove;
	struct bm_http_edit set[BM_L7_MAX_EDITS];
	size_t n_set;
	struct bm_http_edit add[BM_L7_MAX_EDITS];
	size_t n_add;
};

/* A cluster's DestinationRule connectionPool, as Istio names the fields. 0: no limit (Istio's
 * defaults are all "unlimited"), or the engine's own default for the timeouts. The engine keeps
 * one set of counters per cluster name (the decision's `cluster`), limits from the latest
 * decision. */
struct bm_l7_pool {
	uint32_t max_connections;        /* tcp.maxConnections: open to the cluster's endpoints */
	uint32_t connect_timeout_ms;     /* tcp.connectTimeout */
	uint32_t max_pending;            /* http.http1MaxPendingRequests: waiting for a connection */
	uint32_t max_requests;           /* http.http2MaxRequests: in flight to the cluster */
	uint32_t max_requests_per_conn;  /* http.maxRequestsPerConnection */
	uint32_t idle_timeout_ms;        /* http.idleTimeout: an idle upstream connection closes */
	uint32_t max_retries;            /* http.maxRetries: retries in flight to the cluster */
};

enum bm_l7_action {
	BM_L7_FORWARD = 1,        /* send to upstream */
	BM_L7_RESPOND,            /* answer here: status (+ location for redirects, + body) */
};

/* What the router decided. Strings must stay valid until the request ends (the router owns
 * them: they point into its compiled config, which outlives every request it routed). */
struct bm_l7_decision {
	enum bm_l7_action action;
	/* FORWARD */
	struct sockaddr_storage upstream;
	const char *rewrite_path;      /* NULL: keep */
	const char *rewrite_authority; /* NULL: keep */
	struct bm_http_edits req_edits;
	struct bm_http_edits resp_edits;
	uint32_t timeout_ms;           /* whole request, 0 = none */
	uint32_t per_try_timeout_ms;   /* 0 = none */
	uint32_t retries;              /* attempts after the first */
	uint32_t retry_on;             /* BM_RETRY_* */
	const uint16_t *retry_codes;   /* responses with these statuses are retried too */
	size_t n_retry_codes;
	uint32_t delay_ms;             /* fault injection: delay before forwarding */
	struct bm_l7_pool pool;        /* the cluster's limits (circuit breaking) */
	uint32_t upstream_proto;       /* BM_L7_PROTO_*: how to speak to the endpoint */
	/* VirtualService mirror (this request drew its mirrorPercentage): a copy goes to this
	 * endpoint, with "-shadow" added to the host, and its answer is dropped. */
	bool mirror;
	struct sockaddr_storage mirror_upstream;
	uint32_t mirror_proto;         /* BM_L7_PROTO_* */
	/* RESPOND */
	int status;
	const char *location;          /* redirect target, NULL if none */
	const char *body;              /* NULL: none */
	bool close;                    /* close the client connection after this answer */
	/* For logs and metrics. */
	const char *route_name;
	const char *cluster;           /* "outbound|80|v1|backend.default.svc.cluster.local" */
};

#define BM_L7_PROTO_H1 0u            /* HTTP/1.1 */
#define BM_L7_PROTO_H2 1u            /* HTTP/2 cleartext, prior knowledge (h2c) */

#define BM_RETRY_5XX (1u << 0)
#define BM_RETRY_GATEWAY_ERROR (1u << 1)
#define BM_RETRY_RESET (1u << 2)
#define BM_RETRY_CONNECT_FAILURE (1u << 3)
#define BM_RETRY_RETRIABLE_4XX (1u << 4)
#define BM_RETRY_REFUSED_STREAM (1u << 5)

/* The router: fill d for req. Called again, with req->attempt incremented, for each retry. */
typedef void (*bm_l7_route_fn)(void *arg, const struct bm_http_req *req,
			       struct bm_l7_decision *d);

/* What one attempt's endpoint did, for outlier detection. */
enum bm_l7_outcome {
	BM_L7_OUT_RESPONSE = 1,  /* a response head came: status */
	BM_L7_OUT_CONNECT_FAIL,  /* refused, unreachable, or the connect timed out */
	BM_L7_OUT_RESET,         /* closed or reset before the response head ended */
	BM_L7_OUT_TIMEOUT,       /* per-try or route timeout before the response head */
};

/* Requests in flight at an endpoint of a cluster (the engine's view), for LEAST_REQUEST. */
typedef uint32_t (*bm_l7_load_fn)(void *arg, const char *cluster,
				  const struct sockaddr_storage *endpoint);

/* Called after each attempt to an endpoint (not for circuit-breaker overflows, which reach no
 * endpoint). cluster: the decision's. */
typedef void (*bm_l7_outcome_fn)(void *arg, const char *cluster,
				 const struct sockaddr_storage *endpoint, enum bm_l7_outcome what,
				 int status);

#endif
