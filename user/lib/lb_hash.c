/* Consistent hashing for the router (lb_hash.h): hash keys taken from a request, Maglev rings
 * over a cluster's endpoints (the kernel's builder, maglev.c), the cookie Envoy generates. */
#include "lb_hash.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "maglev.h"

/* FNV-1a, then a 64-bit finalizer so that nearby keys spread over the ring. */
uint64_t bm_lb_hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static const uint32_t ring_primes[] = { 257, 1031, 4099, 16411, 65537 };

int bm_lb_ring_build(const struct sockaddr_storage *eps, size_t n, uint32_t **ring, uint32_t *m)
{
	uint8_t (*keys)[18];
	uint32_t size = 0;

	*ring = NULL;
	*m = 0;
	if (!n)
		return 0;
	for (size_t i = 0; i < sizeof(ring_primes) / sizeof(ring_primes[0]) && !size; i++)
		if (ring_primes[i] >= 100 * n || i + 1 == sizeof(ring_primes) / sizeof(ring_primes[0]))
			size = ring_primes[i];
	if (n >= size)
		return 0; /* more endpoints than a ring holds: no hashing (round robin) */
	keys = calloc(n, sizeof(*keys));
	*ring = malloc(size * sizeof(**ring));
	if (!keys || !*ring)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (eps[i].ss_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&eps[i];

			memcpy(keys[i], &s6->sin6_addr, 16);
			memcpy(keys[i] + 16, &s6->sin6_port, 2);
		} else {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *)&eps[i];

			keys[i][10] = keys[i][11] = 0xff;
			memcpy(keys[i] + 12, &s4->sin_addr, 4);
			memcpy(keys[i] + 16, &s4->sin_port, 2);
		}
	}
	if (bm_maglev_build((const uint8_t (*)[18])keys, n, size, *ring))
		goto fail;
	free(keys);
	*m = size;
	return 0;
fail:
	free(keys);
	free(*ring);
	*ring = NULL;
	return -1;
}

/* The value of cookie name in a Cookie field ("a=1; b=\"2\""), quotes stripped. */
static bool cookie_value(const char *v, size_t len, const char *name, const char **out,
			 size_t *out_len)
{
	size_t nl = strlen(name), i = 0;

	while (i < len) {
		size_t s, e, eq;

		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ';'))
			i++;
		s = i;
		while (i < len && v[i] != ';')
			i++;
		e = i;
		for (eq = s; eq < e && v[eq] != '='; eq++)
			;
		if (eq < e && eq - s == nl && !memcmp(v + s, name, nl)) {
			const char *val = v + eq + 1;
			size_t vl = e - eq - 1;

			while (vl && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
				vl--;
			if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
				val++;
				vl -= 2;
			}
			*out = val;
			*out_len = vl;
			return true;
		}
	}
	return false;
}

/* The value of query parameter name in a request target, as sent (not decoded). */
static bool query_value(const char *path, const char *name, const char **out, size_t *out_len)
{
	const char *q = strchr(path, '?');
	size_t nl = strlen(name);

	if (!q)
		return false;
	for (const char *p = q + 1; *p && *p != '#';) {
		size_t l = strcspn(p, "&#");
		const char *eq = memchr(p, '=', l);
		size_t kl = eq ? (size_t)(eq - p) : l;

		if (kl == nl && !memcmp(p, name, nl)) {
			*out = eq ? eq + 1 : p + l;
			*out_len = eq ? l - kl - 1 : 0;
			return true;
		}
		p += l;
		if (*p == '&')
			p++;
	}
	return false;
}

bool bm_lb_req_hash(const struct bm_lb_policy *p, const struct bm_http_req *req, uint64_t *h)
{
	const char *v = NULL;
	size_t vl = 0;

	switch (p->hash) {
	case BM_HASH_SOURCE_IP:
		if (req->client.ss_family == AF_INET) {
			*h = bm_lb_hash_bytes(&((const struct sockaddr_in *)&req->client)->sin_addr, 4);
			return true;
		}
		if (req->client.ss_family == AF_INET6) {
			*h = bm_lb_hash_bytes(&((const struct sockaddr_in6 *)&req->client)->sin6_addr,
					      16);
			return true;
		}
		return false;
	case BM_HASH_HEADER:
		for (size_t i = 0; i < req->n_hdrs; i++)
			if (req->hdrs[i].name_len == strlen(p->hash_name) &&
			    !strncasecmp(req->hdrs[i].name, p->hash_name, req->hdrs[i].name_len)) {
				*h = bm_lb_hash_bytes(req->hdrs[i].value, req->hdrs[i].value_len);
				return true;
			}
		return false;
	case BM_HASH_COOKIE:
		for (size_t i = 0; i < req->n_hdrs; i++)
			if (req->hdrs[i].name_len == 6 && !strncasecmp(req->hdrs[i].name, "cookie", 6) &&
			    cookie_value(req->hdrs[i].value, req->hdrs[i].value_len, p->hash_name, &v,
					 &vl)) {
				*h = bm_lb_hash_bytes(v, vl);
				return true;
			}
		return false;
	case BM_HASH_QUERY:
		if (!query_value(req->path, p->hash_name, &v, &vl))
			return false;
		*h = bm_lb_hash_bytes(v, vl);
		return true;
	default:
		return false;
	}
}

int bm_lb_cookie_new(const struct bm_lb_policy *p, uint64_t rnd, char *buf, size_t len,
		     uint64_t *h)
{
	char val[17];
	int n;

	snprintf(val, sizeof(val), "%016llx", (unsigned long long)rnd);
	*h = bm_lb_hash_bytes(val, 16);
	n = snprintf(buf, len, "%s=\"%s\"", p->hash_name, val);
	if (n > 0 && (size_t)n < len && p->cookie_ttl_s)
		n += snprintf(buf + n, len - (size_t)n, "; Max-Age=%u", p->cookie_ttl_s);
	if (n > 0 && (size_t)n < len && p->cookie_path)
		n += snprintf(buf + n, len - (size_t)n, "; Path=%s", p->cookie_path);
	if (n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, "; HttpOnly");
	return n > 0 && (size_t)n < len ? 0 : -1;
}
