/* The request side of the engine: head limits and smuggling checks, the router's view, the
 * head sent upstream, and the body streamed (kept for a retry up to a bound). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h1_internal.h"

static void refuse(struct h1_sess *s, int status, const char *why)
{
	if (status == 431)
		s->px->st.too_large++;
	else if (status == 400)
		s->px->st.bad_requests++;
	s->close_after = true;
	h1_local_reply(s, status, why, NULL, NULL);
}

int h1_req_feed_head(struct h1_sess *s)
{
	struct bm_buf *in = &s->cli->in;
	const char *data = bm_buf_head(in);
	size_t n = bm_buf_pending(in), room = s->px->o.head_max - s->rq.bytes, used;
	llhttp_errno_t err;

	if (n > room)
		n = room;
	err = llhttp_execute(&s->rp, data, n);
	if (err == HPE_PAUSED && s->rq.done) {
		used = (size_t)(llhttp_get_error_pos(&s->rp) - data);
		bm_buf_consume(in, used);
		s->rq.bytes += used;
		s->rp_paused = true;
		return 1;
	}
	if (err == HPE_OK) {
		bm_buf_consume(in, n);
		s->rq.bytes += n;
		if (s->rq.bytes < s->px->o.head_max)
			return 0;
		refuse(s, 431, "request head too large");
		return -1;
	}
	if (s->rq.err_status)
		refuse(s, s->rq.err_status, llhttp_get_error_reason(&s->rp));
	else
		refuse(s, 400, "bad request");
	return -1;
}

/* Appends a NUL-terminated copy of p[0, len) (not in the arena) to the arena (whose off is
 * always 0); the copy's offset, or -1. */
static long arena_str(struct h1_head *h, const char *p, size_t len)
{
	size_t off = h->arena.len;

	if (bm_buf_reserve(&h->arena, len + 1))
		return -1;
	memcpy(h->arena.data + off, p, len);
	h->arena.data[off + len] = 0;
	h->arena.len += len + 1;
	return (long)off;
}

/* The same for bytes already in the arena at from (which a reserve may move). */
static long arena_dup(struct h1_head *h, size_t from, size_t len)
{
	size_t off = h->arena.len;

	if (bm_buf_reserve(&h->arena, len + 1))
		return -1;
	memmove(h->arena.data + off, h->arena.data + from, len);
	h->arena.data[off + len] = 0;
	h->arena.len += len + 1;
	return (long)off;
}

/* Origin-form, or absolute-form ("http://host/path", RFC 9112 3.2.2: its authority wins over
 * Host); "*" for OPTIONS. Sets the path and authority offsets. */
static int split_target(struct h1_sess *s, long *path_off, long *auth_off)
{
	struct h1_head *h = &s->rq;
	const char *url = h->arena.data + h->url_off;
	size_t len = h->url_len, a;
	const struct h1_field *host = h1_head_find(h, "host", NULL);

	if (len >= 7 && !strncasecmp(url, "http://", 7)) {
		for (a = 7; a < len && url[a] != '/' && url[a] != '?'; a++)
			;
		*auth_off = arena_dup(h, h->url_off + 7, a - 7);
		if (*auth_off < 0)
			return -1;
		if (a < len && h->arena.data[h->url_off + a] == '/') {
			*path_off = h->url_off + (long)a;
			return 0;
		}
		*path_off = arena_str(h, "/", 1); /* "http://h?q" is "/?q" */
		if (*path_off < 0)
			return -1;
		h->arena.len--; /* drop the NUL: the query follows */
		return arena_dup(h, h->url_off + a, len - a) < 0 ? -1 : 0;
	}
	*path_off = h->url_off;
	*auth_off = host ? arena_dup(h, host->val_off, host->val_len) : arena_str(h, "", 0);
	return *auth_off < 0 ? -1 : 0;
}

static bool is_idempotent(uint8_t m)
{
	return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS || m == HTTP_PUT ||
	       m == HTTP_DELETE || m == HTTP_TRACE;
}

/* The router's view: pointers into the arena, taken once it no longer grows. */
static int build_view(struct h1_sess *s, long path_off, long auth_off)
{
	struct h1_head *h = &s->rq;
	size_t i;

	if (!s->hv) {
		s->hv = calloc(h->cap, sizeof(*s->hv));
		if (!s->hv)
			return -1;
	}
	for (i = 0; i < h->n; i++) {
		s->hv[i].name = h1_name(h, &h->f[i]);
		s->hv[i].name_len = h->f[i].name_len;
		s->hv[i].value = h1_val(h, &h->f[i]);
		s->hv[i].value_len = h->f[i].val_len;
	}
	s->req.method = llhttp_method_name((llhttp_method_t)s->rp.method);
	s->req.path = h->arena.data + path_off;
	s->req.authority = h->arena.data + auth_off;
	s->req.scheme = "http";
	s->req.hdrs = s->hv;
	s->req.n_hdrs = h->n;
	s->req.orig_dst = s->orig_dst;
	s->req.client = s->client;
	s->req.caller_wl = s->caller_wl;
	s->req.http2 = s->peer_h2;
	s->req.attempt = 0;
	return 0;
}

/* Does a field name of h list the token tok (te: trailers, upgrade: h2c)? */
static bool field_has_token(const struct h1_head *h, const char *name, const char *tok)
{
	for (size_t i = 0; i < h->n; i++)
		if (h1_name_eq(h1_name(h, &h->f[i]), h->f[i].name_len, name) &&
		    h1_token_in(h1_val(h, &h->f[i]), h->f[i].val_len, tok))
			return true;
	return false;
}

/* An h2c upgrade (RFC 7540 3.2) the h2 front can take: "upgrade: h2c", one HTTP2-Settings,
 * no body (req_upgrade), from an HTTP/1.1 client that is not the front itself. */
static bool h2c_wanted(struct h1_sess *s, const struct h1_field **settings)
{
	size_t n;

	if (!s->req_upgrade || !field_has_token(&s->rq, "upgrade", "h2c"))
		return false;
	*settings = h1_head_find(&s->rq, "http2-settings", &n);
	return s->px->h2c && !s->peer_h2 && !s->req_http10 && n == 1;
}

/* Hands the connection to the h2 front, as it is: the request (stream 1) and the bytes after
 * it; the session ends without a byte written. */
static void h2c_handoff(struct h1_sess *s, const struct h1_field *settings)
{
	struct bm_h1_proxy *px = s->px;
	struct bm_h1_peer peer = { .orig_dst = s->orig_dst, .client = s->client,
				   .caller_wl = s->caller_wl };
	struct bm_h1_h2c up = { .req = &s->req, .settings = h1_val(&s->rq, settings),
				.settings_len = settings->val_len };
	size_t n = bm_buf_pending(&s->cli->in);
	char *rest = n ? malloc(n) : NULL;
	int fd;

	if (n && !rest) {
		h1_sess_abort(s);
		return;
	}
	if (n)
		memcpy(rest, bm_buf_head(&s->cli->in), n);
	up.rest = rest;
	up.rest_len = n;
	fd = bm_conn_take_fd(s->cli);
	if (fd >= 0 && px->h2c(px->h2_arg, fd, &peer, &up))
		px->st.bad_requests++; /* the front refused it (bad settings) and closed fd */
	else if (fd >= 0)
		px->st.h2c_handoffs++;
	free(rest);
	h1_sess_close(s);
}

/* x-request-id when the client sent none (before routing, so the router and logs see it). */
static int add_request_id(struct h1_sess *s)
{
	struct h1_head *h = &s->rq;
	struct h1_field *f;
	char id[37];
	long n, v;

	if (h1_head_find(h, "x-request-id", NULL))
		return 0;
	h1_uuid4(s->px, id);
	n = arena_str(h, "x-request-id", 12);
	v = arena_str(h, id, 36);
	if (n < 0 || v < 0 || h->n >= h->cap || h1_head_alloc(h))
		return -1;
	f = &h->f[h->n++];
	f->name_off = (uint32_t)n;
	f->name_len = 12;
	f->val_off = (uint32_t)v;
	f->val_len = 36;
	return 0;
}

void h1_req_begin(struct h1_sess *s)
{
	llhttp_t *p = &s->rp;
	const struct h1_field *x, *settings = NULL;
	size_t n_host;
	long path_off, auth_off;
	bool has_body;

	s->px->st.requests++;
	h1_head_find(&s->rq, "host", &n_host);
	s->req_http10 = p->http_minor == 0;
	s->req_keepalive = llhttp_should_keep_alive(p);
	s->close_after = !s->req_keepalive || s->px->draining; /* drain: the last one here */
	s->req_chunked = p->flags & F_CHUNKED;
	s->req_has_cl = p->flags & F_CONTENT_LENGTH;
	s->req_cl = p->content_length;
	s->is_head = p->method == HTTP_HEAD;
	s->idempotent = is_idempotent(p->method);
	has_body = s->req_chunked || s->req_cl > 0;
	/* An upgrade with a body (h2c from a POST) is served as a plain request. */
	s->req_upgrade = p->upgrade && p->method != HTTP_CONNECT && !has_body;
	if (p->http_major != 1) {
		refuse(s, 505, "only HTTP/1.x is served here");
		return;
	}
	if (p->method == HTTP_CONNECT) {
		refuse(s, 405, "CONNECT is not supported");
		return;
	}
	/* RFC 9112 3.2: exactly one Host in HTTP/1.1. Transfer-Encoding without chunked last
	 * leaves the length unknown (6.3): both are smuggling vectors, so refused. */
	if (n_host > 1 || (!s->req_http10 && !n_host)) {
		refuse(s, 400, "missing or repeated host");
		return;
	}
	if ((p->flags & F_TRANSFER_ENCODING) && !s->req_chunked) {
		refuse(s, 400, "bad transfer-encoding");
		return;
	}
	x = h1_head_find(&s->rq, "expect", NULL);
	s->expect_100 = x && has_body && !s->req_http10 &&
			h1_token_in(h1_val(&s->rq, x), x->val_len, "100-continue");
	if (!has_body)
		s->req_done = true;
	if (split_target(s, &path_off, &auth_off) || add_request_id(s) ||
	    build_view(s, path_off, auth_off)) {
		refuse(s, 431, "request head too large");
		return;
	}
	s->te_sent = field_has_token(&s->rq, "te", "trailers");
	s->te_trailers = s->peer_h2 || s->te_sent;
	if (h2c_wanted(s, &settings)) {
		h2c_handoff(s, settings);
		return;
	}
	/* h2c that is not taken (no front, HTTP/2 already, no settings): served as HTTP/1.1,
	 * the upgrade dropped (Envoy does the same). An HTTP/2 client never upgrades. */
	if (s->req_upgrade && (s->peer_h2 || field_has_token(&s->rq, "upgrade", "h2c")))
		s->req_upgrade = false;
	h1_route(s);
}

/* ---- upstream head and body ---- */

static bool skip_req_field(const struct h1_head *h, const struct h1_field *f, void *ctx)
{
	struct h1_sess *s = ctx;
	const char *n = h1_name(h, f);
	size_t len = f->name_len;

	if (h1_name_eq(n, len, "upgrade"))
		return !s->req_upgrade;
	if (h1_is_hop_by_hop(n, len) || h1_listed_in_connection(h, n, len))
		return true;
	return h1_name_eq(n, len, "host") || h1_name_eq(n, len, "content-length") ||
	       h1_name_eq(n, len, "x-forwarded-for") || h1_name_eq(n, len, "x-forwarded-proto") ||
	       (s->expect_100 && h1_name_eq(n, len, "expect"));
}

static bool edits_name(const struct bm_http_edit *e, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n && i < BM_L7_MAX_EDITS; i++)
		if (e[i].name && !strcmp(e[i].name, name))
			return true;
	return false;
}

/* x-forwarded-for: the client's list, then the client address, as one field. */
static int write_xff(struct h1_sess *s, struct bm_buf *out)
{
	const struct h1_head *h = &s->rq;
	size_t i;

	if (bm_buf_append(out, "x-forwarded-for: ", 17))
		return -1;
	for (i = 0; i < h->n; i++) {
		const struct h1_field *f = &h->f[i];

		if (!f->val_len || !h1_name_eq(h1_name(h, f), f->name_len, "x-forwarded-for"))
			continue;
		if (bm_buf_append(out, h1_val(h, f), f->val_len) || bm_buf_append(out, ", ", 2))
			return -1;
	}
	return h1_put(out, s->client_ip) || bm_buf_append(out, "\r\nx-forwarded-proto: http\r\n", 27);
}

int h1_req_write_head(struct h1_sess *s, struct bm_buf *out)
{
	const struct bm_l7_decision *d = &s->d;
	const struct bm_http_edits *e = &d->req_edits;
	const char *path = d->rewrite_path ? d->rewrite_path : s->req.path;
	const char *auth = d->rewrite_authority ? d->rewrite_authority : s->req.authority;
	uint32_t max = h1_up_max_requests(s->px, s->up);

	if (h1_put(out, s->req.method) || bm_buf_append(out, " ", 1) || h1_put(out, path) ||
	    bm_buf_append(out, " HTTP/1.1\r\n", 11))
		return -1;
	if (!edits_name(e->remove, e->n_remove, "host") && !edits_name(e->set, e->n_set, "host") &&
	    (bm_buf_append(out, "host: ", 6) || h1_put(out, auth) || bm_buf_append(out, "\r\n", 2)))
		return -1;
	if (h1_write_fields(out, &s->rq, e, skip_req_field, s) || write_xff(s, out))
		return -1;
	/* te is hop-by-hop, but "trailers" is passed on (gRPC servers need it), as Envoy does. */
	if (s->te_sent && bm_buf_append(out, "te: trailers\r\n", 14))
		return -1;
	if (s->req_chunked && bm_buf_append(out, "transfer-encoding: chunked\r\n", 28))
		return -1;
	if (!s->req_chunked && s->req_has_cl &&
	    h1_put_content_length(out, s->req_cl))
		return -1;
	if (s->req_upgrade) {
		if (bm_buf_append(out, "connection: upgrade\r\n", 21))
			return -1;
	} else if (max && s->up->nreq + 1 >= max) {
		if (bm_buf_append(out, "connection: close\r\n", 19))
			return -1;
	}
	return bm_buf_append(out, "\r\n", 2);
}

int h1_req_write_shadow(struct h1_sess *s, struct bm_buf *out)
{
	const struct bm_l7_decision *d = &s->d;
	const char *path = d->rewrite_path ? d->rewrite_path : s->req.path;
	const char *auth = d->rewrite_authority ? d->rewrite_authority : s->req.authority;
	const char *port = strrchr(auth, ':');
	size_t body = bm_buf_pending(&s->replay);

	/* Envoy's shadow host: "-shadow" after the host name, before any port. */
	if (!port || strchr(port, ']'))
		port = auth + strlen(auth);
	if (bm_buf_printf(out, "%s %s HTTP/1.1\r\nhost: %.*s-shadow%s\r\n", s->req.method, path,
			  (int)(port - auth), auth, port) ||
	    h1_write_fields(out, &s->rq, &d->req_edits, skip_req_field, s) || write_xff(s, out))
		return -1;
	if ((body || s->req_chunked || s->req_has_cl) &&
	    bm_buf_printf(out, "content-length: %zu\r\n", body))
		return -1;
	if (bm_buf_append(out, "connection: close\r\n\r\n", 21))
		return -1;
	return body ? bm_buf_append(out, bm_buf_head(&s->replay), body) : 0;
}

int h1_req_write_replay(struct h1_sess *s, struct bm_buf *out)
{
	size_t n = bm_buf_pending(&s->replay);

	if (n && s->req_chunked &&
	    (h1_chunk_header(out, n) || bm_buf_append(out, bm_buf_head(&s->replay), n) ||
	     bm_buf_append(out, "\r\n", 2)))
		return -1;
	if (n && !s->req_chunked && bm_buf_append(out, bm_buf_head(&s->replay), n))
		return -1;
	if (s->req_done && s->req_chunked && h1_last_chunk(out, &s->rq, true))
		return -1;
	return 0;
}

void h1_req_on_body(struct h1_sess *s, const char *at, size_t len)
{
	struct bm_buf *out = &s->up->c->out;

	if (s->req_chunked ? h1_chunk_header(out, len) || bm_buf_append(out, at, len) ||
				     bm_buf_append(out, "\r\n", 2)
			   : bm_buf_append(out, at, len))
		s->up->c->failed = true; /* cannot happen within the feed bound; fail the try */
	if (s->replay_overflow)
		return;
	if (bm_buf_pending(&s->replay) + len > s->px->o.retry_buffer ||
	    bm_buf_append(&s->replay, at, len)) {
		s->replay_overflow = true;
		bm_buf_release(&s->replay);
	}
}

bool h1_req_feed_body(struct h1_sess *s)
{
	struct bm_buf *in = &s->cli->in, *out;
	size_t soft = s->px->o.buf_size, n, used;
	const char *data = bm_buf_head(in);
	llhttp_errno_t err;

	if (s->req_done || !s->up || s->up->c->connecting || !bm_buf_pending(in))
		return false;
	out = &s->up->c->out;
	if (bm_buf_pending(out) + H1_FRAME_SLACK >= soft)
		return false;
	n = soft - H1_FRAME_SLACK - bm_buf_pending(out);
	if (n > bm_buf_pending(in))
		n = bm_buf_pending(in);
	if (s->rp_paused) {
		llhttp_resume(&s->rp);
		s->rp_paused = false;
	}
	err = llhttp_execute(&s->rp, data, n);
	if (err == HPE_PAUSED && s->req_msg_done) {
		used = (size_t)(llhttp_get_error_pos(&s->rp) - data);
		bm_buf_consume(in, used);
		h1_req_complete(s);
		return true;
	}
	if (err == HPE_OK) {
		bm_buf_consume(in, n);
		return true;
	}
	/* Bad chunking, trailers too large: the upstream got part of a body, so it goes. */
	s->px->st.bad_requests++;
	if (s->resp_started) {
		h1_sess_abort(s);
		return true;
	}
	s->close_after = true;
	h1_local_reply(s, 400, "bad request body", NULL, NULL);
	return true;
}

void h1_req_reset(struct h1_sess *s)
{
	h1_head_reset(&s->rq);
	llhttp_init(&s->rp, HTTP_REQUEST, &h1_req_settings);
	s->rp.data = s;
	s->rp_paused = s->req_msg_done = s->req_done = false;
	s->req_keepalive = s->req_chunked = s->req_has_cl = s->req_upgrade = false;
	s->req_http10 = s->is_head = s->idempotent = s->expect_100 = s->sent_100 = false;
	s->te_trailers = s->te_sent = false;
	s->mirror_pending = false;
	s->req_cl = 0;
	bm_buf_release(&s->replay);
	s->replay_overflow = false;
	s->attempt = 0;
	s->reconnected = false;
	s->t_req_armed = false;
	s->deadline = 0;
	s->waiting_backoff = false;
	memset(&s->d, 0, sizeof(s->d));
	memset(&s->req, 0, sizeof(s->req));
	h1_resp_reset(s);
}
