/* The HTTP router's matcher: one VirtualService's spec.http compiled once (pcre2 regexes, case
 * folding), then matched per request without allocating; weighted pick and the uri rewrite. */
#ifndef BM_HTTP_MATCH_H
#define BM_HTTP_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "l7.h"
#include "model.h"

#define BM_HTTP_REGEX_MAX 1024      /* longest regex accepted (Istio's limit) */
#define BM_HTTP_MATCH_LIMIT 100000  /* pcre2 match limit per evaluation: past it, "no match" */
#define BM_HTTP_JOIN_MAX 8192       /* longest joined value of a repeated header */

/* The compiled form of one VirtualService's http list. It points into vs: vs must outlive it.
 * One compiled form is used by one thread at a time (it holds the pcre2 match data). */
struct bm_http_routes;

/* Whether re is a regex the matcher takes (RE2-style full match, compiled with pcre2): 0, or -1
 * with the reason in err ("... at offset N"). The loader uses it to validate. */
int bm_http_regex_check(const char *re, char *err, size_t errlen);

/* Compile vs->http. 0, or -1 with err (a bad regex, out of memory); *out is NULL then. */
int bm_http_routes_compile(const struct bm_virtual_service *vs, struct bm_http_routes **out,
			   char *err, size_t errlen);

/* The first rule (index into vs->http) whose any match entry matches req, or -1. port: the
 * service port the client connected to (0: unknown, then port matches fail); caller_labels /
 * caller_ns: the calling pod's, NULL when unknown (then sourceLabels / sourceNamespace matches
 * fail); gateway: "mesh" for sidecar traffic (NULL means "mesh"), else "<ns>/<name>". */
int bm_http_routes_match(const struct bm_http_routes *r, const struct bm_http_req *req,
			 uint16_t port, const struct bm_labels *caller_labels,
			 const char *caller_ns, const char *gateway);
/* The same, and *entry gets which match entry of the rule matched (-1 for a rule without
 * match): bm_http_rewrite_path needs it. */
int bm_http_routes_match_entry(const struct bm_http_routes *r, const struct bm_http_req *req,
			       uint16_t port, const struct bm_labels *caller_labels,
			       const char *caller_ns, const char *gateway, int *entry);
void bm_http_routes_free(struct bm_http_routes *r);

/* A destination of rt->route for a uniform random rnd: weights are relative, a single
 * destination without weight gets everything. Index into rt->route, or -1 when there is none. */
int bm_http_pick_dest(const struct bm_http_route *rt, uint32_t rnd);

/* True for a share ppm (millionths, as the model keeps fault and mirror percentages) of uniform
 * random rnd values. */
bool bm_http_chance(uint32_t ppm, uint32_t rnd);

/* The path to forward under rt->rewrite.uri, as Envoy's prefix_rewrite does: the prefix that
 * match entry `entry` matched is replaced (the whole path for an exact or regex uri match; "/"
 * when the entry has no uri match or entry is -1); the query string is kept. Writes buf and
 * returns the length, or -1 when rt has no uri rewrite or buf is too small. */
int bm_http_rewrite_path(const struct bm_http_route *rt, int entry, const char *path, char *buf,
			 size_t len);

#endif
