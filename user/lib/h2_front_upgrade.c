/* The HTTP/2 front's h2c upgrade (RFC 7540 3.2): an HTTP/1.1 request the engine handed over
 * becomes stream 1 of a new session, after a 101; HTTP2-Settings decoded (base64url). */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "h2_internal.h"

/* SETTINGS payloads are 6 bytes an entry; nghttp2 takes at most 32 entries in a frame. */
#define SETTINGS_MAX (32 * 6)

static int b64url_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

/* base64url without padding (token68: trailing '=' tolerated). Bytes written, or -1. */
static ssize_t b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	size_t n = 0, bits = 0;

	while (len && in[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return (ssize_t)n;
}

/* Is name (lowercase) among the comma-separated tokens of a connection field of req? */
static bool listed_in_connection(const struct bm_http_req *req, const char *name, size_t nlen)
{
	for (size_t i = 0; i < req->n_hdrs; i++) {
		const struct bm_http_hdr *h = &req->hdrs[i];
		size_t j = 0;

		if (h->name_len != 10 || memcmp(h->name, "connection", 10))
			continue;
		while (j < h->value_len) {
			size_t b, e;

			const char *v = h->value;

			while (j < h->value_len && (v[j] == ' ' || v[j] == '\t' || v[j] == ','))
				j++;
			for (b = j; j < h->value_len && v[j] != ','; j++)
				;
			for (e = j; e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'); e--)
				;
			if (e - b == nlen && !strncasecmp(v + b, name, nlen))
				return true;
		}
	}
	return false;
}

/* Stream 1's request: the upgrade's, minus what belonged to the HTTP/1.1 hop. */
static void fill_request(struct h2f_stream *s, const struct bm_http_req *req)
{
	h2f_stream_field(s, ":method", 7, req->method, strlen(req->method), false);
	h2f_stream_field(s, ":path", 5, req->path, strlen(req->path), false);
	if (req->authority[0])
		h2f_stream_field(s, ":authority", 10, req->authority, strlen(req->authority),
				 false);
	for (size_t i = 0; i < req->n_hdrs; i++) {
		const struct bm_http_hdr *h = &req->hdrs[i];

		if (h2_conn_specific(h->name, h->name_len) ||
		    listed_in_connection(req, h->name, h->name_len) ||
		    (req->authority[0] && h->name_len == 4 && !memcmp(h->name, "host", 4)))
			continue;
		h2f_stream_field(s, h->name, h->name_len, h->value, h->value_len, false);
	}
}

/* A bad HTTP2-Settings: 400, and the connection closes once it is out. */
static void refuse(struct h2f_cx *cx)
{
	static const char resp[] = "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n"
				   "content-length: 19\r\nconnection: close\r\n\r\n"
				   "bad HTTP2-Settings\n";

	bm_buf_append(&cx->c->out, resp, sizeof(resp) - 1);
	h2f_cx_finish(cx);
}

int bm_h2_front_upgrade(struct bm_h2_front *f, int fd, const struct bm_h1_peer *peer,
			const struct bm_h1_h2c *up)
{
	static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\n"
				 "upgrade: h2c\r\n\r\n";
	uint8_t settings[SETTINGS_MAX];
	struct h2f_stream *s;
	struct h2f_cx *cx;
	ssize_t n;

	if (!f || !up || !up->req || f->draining) {
		close(fd);
		return f && up && up->req ? -ESHUTDOWN : -EINVAL;
	}
	cx = h2f_cx_new(f, fd, peer);
	if (!cx)
		return -ENOMEM;
	n = b64url_decode(up->settings, up->settings_len, settings, sizeof(settings));
	if (n < 0 || nghttp2_session_upgrade2(cx->ng, settings, (size_t)n,
					      !strcmp(up->req->method, "HEAD"), NULL)) {
		refuse(cx);
		return -EINVAL;
	}
	/* The 101 goes before any frame: frames are made only when the session sends. */
	if (bm_buf_append(&cx->c->out, sw, sizeof(sw) - 1) || h2f_cx_start(cx) ||
	    !(s = h2f_stream_new(cx, 1)) || nghttp2_session_set_stream_user_data(cx->ng, 1, s)) {
		h2f_cx_close(cx);
		return -ENOMEM;
	}
	f->st.upgrades++;
	fill_request(s, up->req);
	h2f_stream_ready(s, true); /* half-closed by the client: no body */
	/* The client's preface and frames, read by the engine after the request. */
	if (h2f_cx_feed(cx, up->rest, up->rest_len))
		return 0;
	h2f_cx_run(cx);
	return 0;
}
