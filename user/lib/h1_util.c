/* Small helpers of the HTTP/1.1 engine: reason phrases, hop-by-hop names, header edits,
 * chunk framing, randomness (request ids, retry jitter), client addresses as text. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "h1_internal.h"

const char *h1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 418: return "I'm a teapot";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}


/* Connection-scoped fields (RFC 9110 7.6.1), never forwarded as such; the engine writes its
 * own framing and connection fields. */
bool h1_is_hop_by_hop(const char *name, size_t len)
{
	/* connection, keep-alive, proxy-connection, te, transfer-encoding, upgrade, trailer */
	switch (len) {
	case 2:
		return !memcmp(name, "te", 2);
	case 7:
		return !memcmp(name, "upgrade", 7) || !memcmp(name, "trailer", 7);
	case 10:
		return !memcmp(name, "connection", 10) || !memcmp(name, "keep-alive", 10);
	case 16:
		return !memcmp(name, "proxy-connection", 16);
	case 17:
		return !memcmp(name, "transfer-encoding", 17);
	default:
		return false;
	}
}

/* Fields a route's header edits may not touch: framing and the forwarding fields the
 * engine owns. */
bool h1_edit_protected(const char *name)
{
	return !strcmp(name, "content-length") || !strcmp(name, "x-forwarded-for") ||
	       !strcmp(name, "x-forwarded-proto") ||
	       h1_is_hop_by_hop(name, strlen(name));
}

static bool edit_names(const struct bm_http_edit *e, size_t n, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < n && i < BM_L7_MAX_EDITS; i++)
		if (e[i].name && !h1_edit_protected(e[i].name) && h1_name_eq(name, len, e[i].name))
			return true;
	return false;
}

static int write_edit(struct bm_buf *out, const struct bm_http_edit *e)
{
	if (!e->name || !e->value || h1_edit_protected(e->name))
		return 0;
	return bm_buf_printf(out, "%s: %s\r\n", e->name, e->value);
}

int h1_write_fields(struct bm_buf *out, const struct h1_head *h, const struct bm_http_edits *e,
		    bool (*skip)(const struct h1_head *h, const struct h1_field *f, void *ctx),
		    void *ctx)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		const struct h1_field *f = &h->f[i];
		const char *name = h1_name(h, f);

		if (skip(h, f, ctx))
			continue;
		if (e && (edit_names(e->remove, e->n_remove, name, f->name_len) ||
		     edit_names(e->set, e->n_set, name, f->name_len)))
			continue;
		if (bm_buf_append(out, name, f->name_len) || bm_buf_append(out, ": ", 2) ||
		    bm_buf_append(out, h1_val(h, f), f->val_len) || bm_buf_append(out, "\r\n", 2))
			return -1;
	}
	if (!e)
		return 0;
	for (i = 0; i < e->n_set && i < BM_L7_MAX_EDITS; i++)
		if (write_edit(out, &e->set[i]))
			return -1;
	for (i = 0; i < e->n_add && i < BM_L7_MAX_EDITS; i++)
		if (write_edit(out, &e->add[i]))
			return -1;
	return 0;
}

int h1_last_chunk(struct bm_buf *out, const struct h1_head *h, bool with_trailers)
{
	const struct bm_buf *t = &h->trailers;

	if (bm_buf_append(out, "0\r\n", 3))
		return -1;
	if (with_trailers && bm_buf_pending(t) && bm_buf_append(out, bm_buf_head(t), h->tr_line))
		return -1;
	return bm_buf_append(out, "\r\n", 2);
}

int h1_chunk_header(struct bm_buf *out, size_t len)
{
	char b[20];
	int i = (int)sizeof(b);

	b[--i] = '\n';
	b[--i] = '\r';
	do
		b[--i] = "0123456789abcdef"[len & 15];
	while ((len >>= 4));
	return bm_buf_append(out, b + i, sizeof(b) - (size_t)i);
}

int h1_put_u64(struct bm_buf *out, uint64_t v)
{
	char b[20];
	int i = (int)sizeof(b);

	do
		b[--i] = (char)('0' + v % 10);
	while ((v /= 10));
	return bm_buf_append(out, b + i, sizeof(b) - (size_t)i);
}

int h1_put_content_length(struct bm_buf *out, uint64_t n)
{
	return bm_buf_append(out, "content-length: ", 16) || h1_put_u64(out, n) ||
	       bm_buf_append(out, "\r\n", 2);
}

/* ---- randomness ---- */

void h1_random(struct bm_h1_proxy *px, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n) {
		size_t take;

		if (px->rnd_off == sizeof(px->rnd)) {
			ssize_t got = getrandom(px->rnd, sizeof(px->rnd), GRND_NONBLOCK);

			if (got != (ssize_t)sizeof(px->rnd)) {
				/* No entropy yet (early boot): ids stay unique enough for
				 * tracing, never for security. */
				struct timespec ts;
				uint64_t x;
				size_t i;

				clock_gettime(CLOCK_MONOTONIC, &ts);
				x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)px;
				for (i = 0; i < sizeof(px->rnd); i++) {
					x ^= x << 13, x ^= x >> 7, x ^= x << 17;
					px->rnd[i] = (uint8_t)x;
				}
			}
			px->rnd_off = 0;
		}
		take = sizeof(px->rnd) - px->rnd_off;
		if (take > n)
			take = n;
		memcpy(p, px->rnd + px->rnd_off, take);
		px->rnd_off += take;
		p += take;
		n -= take;
	}
}

void h1_uuid4(struct bm_h1_proxy *px, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	size_t i, o = 0;

	h1_random(px, b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = 0;
}

/* Envoy's default: a uniform wait in [0, min(base * 2^(retry-1), max)). */
uint32_t h1_backoff_ms(struct bm_h1_proxy *px, unsigned retry)
{
	uint32_t cap = H1_BACKOFF_BASE_MS, r;

	while (retry > 1 && cap < H1_BACKOFF_MAX_MS) {
		cap *= 2;
		retry--;
	}
	if (cap > H1_BACKOFF_MAX_MS)
		cap = H1_BACKOFF_MAX_MS;
	h1_random(px, &r, sizeof(r));
	return r % cap;
}

void h1_format_ip(const struct sockaddr_storage *ss, char *out, size_t len)
{
	const struct sockaddr_in *in = (const void *)ss;
	const struct sockaddr_in6 *in6 = (const void *)ss;

	out[0] = 0;
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)len);
	else if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
		inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], out, (socklen_t)len);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)len);
	if (!out[0])
		snprintf(out, len, "unknown");
}
