/* h2_stream.c - HTTP/2 streams of bm-echo: nghttp2 callbacks that capture each request
 * (pseudo-headers, fields, body size) and its answer: head, body, trailers, ?delay. */
#include "h2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BM_H2_NV(n, v, vlen) \
	((nghttp2_nv){ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), NGHTTP2_NV_FLAG_NONE })

static void on_delay(struct bm_timer *t);

static struct bm_h2_stream *stream_of(nghttp2_session *ss, int32_t id)
{
	return nghttp2_session_get_stream_user_data(ss, id);
}

/* Counts s's memory (struct, header arena, queued body) in the connection's budget again. */
static void account(struct bm_h2 *h2, struct bm_h2_stream *s)
{
	size_t now = sizeof(*s) + s->req.arena.cap + s->body.cap;

	h2->held = h2->held - s->held + now;
	s->held = now;
}

static void stream_free(struct bm_conn *c, struct bm_h2_stream *s)
{
	struct bm_h2 *h2 = c->h2;

	if (s->delayed) {
		bm_timer_cancel(&c->echo->loop, &s->delay);
		s->delayed = false;
		h2->ndelayed--;
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		h2->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	h2->held -= s->held;
	bm_buf_free(&s->req.arena);
	bm_buf_free(&s->body);
	free(s);
}

/* Ends the stream with RST_STREAM: REFUSED_STREAM tells the client it may retry. */
static void stream_reset(struct bm_conn *c, struct bm_h2_stream *s, uint32_t code)
{
	s->answered = true;
	bm_buf_free(&s->req.arena);
	bm_buf_free(&s->body);
	account(c->h2, s);
	nghttp2_submit_rst_stream(c->h2->session, NGHTTP2_FLAG_NONE, s->id, code);
}

static void stream_refuse(struct bm_h2_stream *s, int status, const char *reason)
{
	if (!s->err_status) {
		s->err_status = status;
		s->err_reason = reason;
	}
}

/* Appends request bytes to the arena at *off; -1 when the stream was refused instead. */
static int stream_append(struct bm_conn *c, struct bm_h2_stream *s, const uint8_t *p,
			 size_t n, uint32_t *off)
{
	struct bm_req *r = &s->req;
	int err;

	if (c->h2->held + n > BM_H2_HELD_MAX) {
		stream_reset(c, s, NGHTTP2_REFUSED_STREAM);
		return -1;
	}
	*off = (uint32_t)r->arena.len;
	err = bm_buf_append(&r->arena, p, n, BM_HTTP_HEAD_MAX);
	if (err == -ENOBUFS) {
		stream_refuse(s, 431, "header fields too large");
		return -1;
	}
	if (err) {
		stream_reset(c, s, NGHTTP2_INTERNAL_ERROR);
		return -1;
	}
	account(c->h2, s);
	return 0;
}

struct bm_h2_stream *bm_h2_stream_new(struct bm_conn *c, int32_t id)
{
	struct bm_h2 *h2 = c->h2;
	struct bm_h2_stream *s;

	if (h2->held + sizeof(*s) > BM_H2_HELD_MAX)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->conn = c;
	s->id = id;
	bm_timer_init(&s->delay, on_delay);
	bm_req_reset(&s->req);
	s->req.h2 = true;
	s->next = h2->streams;
	if (h2->streams)
		h2->streams->prev = s;
	h2->streams = s;
	account(h2, s);
	return s;
}

static int on_begin_headers(nghttp2_session *ss, const nghttp2_frame *f, void *ud)
{
	struct bm_conn *c = ud;
	struct bm_h2_stream *s;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = bm_h2_stream_new(c, f->hd.stream_id);
	if (!s)
		return nghttp2_submit_rst_stream(ss, NGHTTP2_FLAG_NONE, f->hd.stream_id,
						 NGHTTP2_REFUSED_STREAM) ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
	return nghttp2_session_set_stream_user_data(ss, f->hd.stream_id, s) ?
		       NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static bool name_is(const uint8_t *name, size_t len, const char *want)
{
	return len == strlen(want) && !memcmp(name, want, len);
}

/* nghttp2 has checked the field (RFC 9113 8.2); request headers and trailers both land in
 * the header list, as chunked trailers do over HTTP/1.1. */
static int on_header(nghttp2_session *ss, const nghttp2_frame *f, const uint8_t *name,
		     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct bm_conn *c = ud;
	struct bm_h2_stream *s;
	struct bm_req *r;
	struct bm_hdr *h;

	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	s = stream_of(ss, f->hd.stream_id);
	if (!s || s->answered || s->err_status)
		return 0;
	r = &s->req;
	if (nlen && name[0] == ':') {
		if (name_is(name, nlen, ":method")) {
			r->method = bm_method_by_name((const char *)value, vlen);
			if (!r->method)
				stream_refuse(s, 400, "unknown method");
		} else if (name_is(name, nlen, ":path")) {
			if (!stream_append(c, s, value, vlen, &r->url_off))
				r->url_len = (uint32_t)vlen;
		} else if (name_is(name, nlen, ":authority")) {
			if (!stream_append(c, s, value, vlen, &r->auth_off)) {
				r->auth_len = (uint32_t)vlen;
				r->has_auth = true;
			}
		}
		return 0;
	}
	if (r->nhdrs == BM_HTTP_MAX_HEADERS) {
		stream_refuse(s, 431, "too many header fields");
		return 0;
	}
	h = &r->hdrs[r->nhdrs];
	if (stream_append(c, s, name, nlen, &h->name_off) ||
	    stream_append(c, s, value, vlen, &h->val_off))
		return 0;
	h->name_len = (uint32_t)nlen;
	h->val_len = (uint32_t)vlen;
	r->nhdrs++;
	return 0;
}

static int on_data_chunk(nghttp2_session *ss, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *ud)
{
	struct bm_h2_stream *s = stream_of(ss, id);

	(void)flags;
	(void)data;
	(void)ud;
	if (s)
		s->req.body_bytes += len;
	return 0;
}

/* The trailers planned for s, names lowercased as HTTP/2 wants them. */
static int submit_trailers(nghttp2_session *ss, struct bm_h2_stream *s)
{
	struct bm_trailer t[BM_HTTP_MAX_TRAILERS + 2];
	char names[BM_HTTP_MAX_TRAILERS + 2][BM_HTTP_TRAILER_NAME_MAX];
	nghttp2_nv nv[BM_HTTP_MAX_TRAILERS + 2];
	size_t n = bm_req_trailers(&s->req, t, BM_HTTP_MAX_TRAILERS + 2);

	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < t[i].name_len; k++) {
			char ch = t[i].name[k];

			names[i][k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
		}
		nv[i] = (nghttp2_nv){ (uint8_t *)names[i], (uint8_t *)t[i].value, t[i].name_len,
				      t[i].value_len, NGHTTP2_NV_FLAG_NONE };
	}
	return nghttp2_submit_trailer(ss, s->id, nv, n);
}

static bool has_trailers(const struct bm_req *r)
{
	return r->has_trl || r->grpc_status >= 0;
}

/* DATA for s: the queued body or the generated one, then trailers (or END_STREAM). */
static ssize_t stream_read(nghttp2_session *ss, int32_t id, uint8_t *buf, size_t length,
			   uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct bm_h2_stream *s = src->ptr;
	struct bm_req *r = &s->req;
	size_t n;
	bool eof;

	(void)id;
	(void)ud;
	if (r->route == BM_ROUTE_BYTES) {
		n = bm_req_fill(r, (char *)buf, length);
		eof = r->sent == r->size;
	} else {
		n = bm_buf_pending(&s->body) < length ? bm_buf_pending(&s->body) : length;
		memcpy(buf, bm_buf_head(&s->body), n);
		bm_buf_consume(&s->body, n);
		eof = !bm_buf_pending(&s->body);
	}
	if (!eof)
		return (ssize_t)n;
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	bm_buf_free(&s->body);
	account(s->conn->h2, s);
	if (has_trailers(r)) {
		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (submit_trailers(ss, s))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

/* Builds the body before the request is logged and maybe delayed, so that its memory is
 * counted at once: a body over the connection's budget turns the answer into a 503.
 * Generated bodies (BM_ROUTE_BYTES) are made as they are sent. Returns 0 or -1. */
static int prepare(struct bm_conn *c, struct bm_h2_stream *s)
{
	struct bm_buf *scratch = &c->echo->scratch;
	struct bm_req *r = &s->req;
	bool keep;

	if (bm_req_body(c, r, scratch, &s->ctype))
		return -1;
	keep = bm_req_has_body(r) && !r->head_req && r->route != BM_ROUTE_BYTES;
	if (keep && c->h2->held + scratch->len > BM_H2_HELD_MAX) {
		bm_req_refuse(r, 503, "stream memory of the connection over its budget");
		if (bm_req_body(c, r, scratch, &s->ctype))
			return -1;
	}
	s->body_len = r->route == BM_ROUTE_BYTES ? r->size : scratch->len;
	if (keep && bm_buf_append(&s->body, scratch->data, scratch->len, BM_ECHO_OUT_MAX))
		return -1;
	account(c->h2, s);
	return 0;
}

/* Submits the response planned (and prepared) for s. 1xx: the informational head, then
 * RST_STREAM, since no final response follows (HTTP/1.x closes the connection instead). */
static void respond(struct bm_conn *c, struct bm_h2_stream *s)
{
	struct bm_echo *e = c->echo;
	nghttp2_session *ss = c->h2->session;
	struct bm_req *r = &s->req;
	nghttp2_data_provider dp = { .source.ptr = s, .read_callback = stream_read };
	bool send_body = bm_req_has_body(r) && !r->head_req;
	nghttp2_nv nv[5];
	char status[8], clen[24];
	size_t n = 0;
	int rv;

	snprintf(status, sizeof(status), "%d", r->status);
	snprintf(clen, sizeof(clen), "%llu", (unsigned long long)s->body_len);
	nv[n++] = BM_H2_NV(":status", status, strlen(status));
	if (bm_req_has_body(r)) {
		nv[n++] = BM_H2_NV("content-type", s->ctype, strlen(s->ctype));
		nv[n++] = BM_H2_NV("content-length", clen, strlen(clen));
	}
	nv[n++] = BM_H2_NV("x-echo-pod", e->cfg.pod, strlen(e->cfg.pod));
	nv[n++] = BM_H2_NV("x-echo-version", e->cfg.version, strlen(e->cfg.version));
	if (r->status < 200) {
		rv = nghttp2_submit_headers(ss, NGHTTP2_FLAG_NONE, s->id, NULL, nv, n, NULL);
		if (!rv)
			rv = nghttp2_submit_rst_stream(ss, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
	} else if (send_body && s->body_len) {
		rv = nghttp2_submit_response(ss, s->id, nv, n, &dp);
	} else if (has_trailers(r)) {
		rv = nghttp2_submit_headers(ss, NGHTTP2_FLAG_NONE, s->id, NULL, nv, n, NULL);
		if (!rv)
			rv = submit_trailers(ss, s);
	} else {
		rv = nghttp2_submit_response(ss, s->id, nv, n, NULL);
	}
	if (rv)
		stream_reset(c, s, NGHTTP2_INTERNAL_ERROR);
}

static void on_delay(struct bm_timer *t)
{
	struct bm_h2_stream *s = bm_container_of(t, struct bm_h2_stream, delay);
	struct bm_conn *c = s->conn;

	s->delayed = false;
	c->h2->ndelayed--;
	c->last_io = c->echo->loop.now;
	respond(c, s);
	bm_h2_pump(c);
}

/* The request on s is complete (or refused): plan, log, then answer now or after ?delay. */
void bm_h2_stream_request(struct bm_conn *c, struct bm_h2_stream *s)
{
	struct bm_req *r = &s->req;

	s->answered = true;
	account(c->h2, s);	/* an upgrade moved the request in */
	if (r->method && !strcmp(r->method, "CONNECT") && r->has_auth && !r->url_len) {
		r->url_off = r->auth_off;	/* authority-form, as HTTP/1.1 sends it */
		r->url_len = r->auth_len;
	}
	r->url_done = r->method != NULL;
	if (s->err_status) {
		bm_req_refuse(r, s->err_status, s->err_reason);
		r->head_req = r->method && !strcmp(r->method, "HEAD");
	} else {
		bm_req_plan(c->echo, r);
	}
	if (prepare(c, s)) {
		stream_reset(c, s, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	bm_req_log(c, r);
	if (r->delay_ms) {
		if (bm_timer_arm(&c->echo->loop, &s->delay, r->delay_ms)) {
			stream_reset(c, s, NGHTTP2_INTERNAL_ERROR);
			return;
		}
		s->delayed = true;
		c->h2->ndelayed++;
		return;
	}
	respond(c, s);
}

/* A request is answered at its END_STREAM; a refused one as soon as its headers are in. */
static int on_frame_recv(nghttp2_session *ss, const nghttp2_frame *f, void *ud)
{
	struct bm_conn *c = ud;
	struct bm_h2_stream *s;

	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	s = stream_of(ss, f->hd.stream_id);
	if (!s || s->answered)
		return 0;
	if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) || s->err_status)
		bm_h2_stream_request(c, s);
	return 0;
}

static int on_stream_close(nghttp2_session *ss, int32_t id, uint32_t code, void *ud)
{
	struct bm_h2_stream *s = stream_of(ss, id);

	(void)code;
	if (s)
		stream_free(ud, s);
	return 0;
}

void bm_h2_stream_callbacks(nghttp2_session_callbacks *cbs)
{
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
}

/* Cancels every pending ?delay: the connection is closing. */
void bm_h2_stream_stop_all(struct bm_conn *c)
{
	for (struct bm_h2_stream *s = c->h2->streams; s; s = s->next) {
		if (s->delayed) {
			bm_timer_cancel(&c->echo->loop, &s->delay);
			s->delayed = false;
			c->h2->ndelayed--;
		}
	}
}

/* Frees the streams nghttp2 did not close; the session must be gone already. */
void bm_h2_stream_free_all(struct bm_conn *c)
{
	while (c->h2->streams)
		stream_free(c, c->h2->streams);
}
