/* Consistent hashing of HTTP requests for the agent's router (DestinationRule
 * loadBalancer.consistentHash): the request's hash key (header, cookie, query parameter,
 * source IP) and a Maglev ring over a cluster's endpoints, as Envoy's MAGLEV balancer. */
#ifndef BM_LB_HASH_H
#define BM_LB_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "l7.h"
#include "model.h"

/* A ring for n endpoints: *m slots (a prime, about 100 per endpoint, 65537 at most), each the
 * index of an endpoint. 0, or -1 when out of memory (n == 0: *ring NULL, *m 0). */
int bm_lb_ring_build(const struct sockaddr_storage *eps, size_t n, uint32_t **ring, uint32_t *m);

/* The request's hash under p; false when the request has no such key (no header, cookie or
 * parameter of that name): Envoy then picks as if there were no hash. */
bool bm_lb_req_hash(const struct bm_lb_policy *p, const struct bm_http_req *req, uint64_t *h);

/* httpCookie with a ttl and no cookie in the request: a new value from rnd, the set-cookie
 * field value for the response in buf ("name=\"v\"; Max-Age=ttl; Path=p; HttpOnly"), and its
 * hash. -1 when buf is too small. */
int bm_lb_cookie_new(const struct bm_lb_policy *p, uint64_t rnd, char *buf, size_t len,
		     uint64_t *h);

uint64_t bm_lb_hash_bytes(const void *p, size_t n);

#endif
