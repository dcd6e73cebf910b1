/* The agent's HTTP router: for a request on a connection the kernel redirected to the agent,
 * the VirtualService rule that matches, the destination its weights pick and an endpoint of
 * it (round robin or random, as the DestinationRule says), with the rule's rewrites, header
 * edits, timeout, retries and faults. Built once per applied config; the engine calls
 * bm_router_route for each request (l7.h). */
#ifndef BM_ROUTER_H
#define BM_ROUTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "catalog.h"
#include "config.h"
#include "l7.h"

/* A local workload the kernel may name as a caller (bm_orig.wl_id). Only its labels and
 * namespace are kept (they must live in parses the pin holds). */
struct bm_router_caller {
	uint32_t wl_id;
	const struct bm_pod *pod;
};

struct bm_router;

/* Build from an applied catalog: every service port routed by the agent (mesh http rules:
 * bm_port_routed_l7). od: the agent's
 * outlier detection state, which outlives routers (NULL: no ejections).
 * The router keeps what it needs (copies, or pointers into the parses pin keeps alive: it
 * takes pin and frees it with itself); cat and its config may be freed after. NULL when out
 * of memory, or when a rule does not compile (err says which). */
struct bm_outlier;
struct bm_router *bm_router_build(const struct bm_catalog *cat,
				  const struct bm_router_caller *callers, size_t n_callers,
				  struct bm_config_pin *pin, struct bm_outlier *od, char *err,
				  size_t errlen);
void bm_router_free(struct bm_router *r);
/* The engine's load per endpoint, for LEAST_REQUEST (without it: round robin). */
void bm_router_set_load(struct bm_router *r, bm_l7_load_fn fn, void *arg);

/* bm_l7_route_fn: arg is the router. Strings in d point into the router, or into a buffer
 * valid until the next call (rewrite_path, location): the engine copies what it keeps. */
void bm_router_route(void *arg, const struct bm_http_req *req, struct bm_l7_decision *d);

/* A connection to a routed service port that is not HTTP/1 (or not HTTP at all): an endpoint
 * of the service itself, as without rules. 0, or -ENOENT (unknown destination, no endpoint). */
int bm_router_tcp_pick(struct bm_router *r, const struct sockaddr_storage *orig,
		       struct sockaddr_storage *out);

/* One attempt's outcome (bm_l7_outcome_fn) fed to outlier detection under the cluster's
 * policy. 1 when it ejected the endpoint (the kernel's sets should follow), else 0. */
int bm_router_outcome(struct bm_router *r, const char *cluster,
		      const struct sockaddr_storage *ep, enum bm_l7_outcome what, int status,
		      uint64_t now_ms);

/* Service ports routed, clusters (host, subset, port) and their endpoints, for logs. */
struct bm_router_stats {
	size_t ports, rules, clusters, endpoints;
};
void bm_router_stats(const struct bm_router *r, struct bm_router_stats *st);

#endif
