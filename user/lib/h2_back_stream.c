/* The HTTP/2 back's streams: a request submitted with its body as DATA (and its trailers),
 * and nghttp2's callbacks turning the response into HTTP/1.1 for the internal connection. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2_internal.h"

static struct h2b_stream *stream_of(nghttp2_session *ng, int32_t id)
{
	return nghttp2_session_get_stream_user_data(ng, id);
}

static bool name_is(const char *name, size_t len, const char *lit)
{
	return strlen(lit) == len && !memcmp(name, lit, len);
}

/* A field of the engine's request that goes upstream as a regular field. */
static bool field_passes(const struct h2b_block *k, const struct h2b_field *f)
{
	const char *name = k->arena.data + f->name_off;

	if (name_is(name, f->name_len, "host") || h2_conn_specific(name, f->name_len))
		return false;
	if (name_is(name, f->name_len, "te"))
		return h2_te_ok(k->arena.data + f->val_off, f->val_len);
	return true;
}

static nghttp2_nv nv_of(const char *name, size_t nlen, const char *value, size_t vlen)
{
	return (nghttp2_nv){ .name = (uint8_t *)name, .namelen = nlen, .value = (uint8_t *)value,
			     .valuelen = vlen, .flags = NGHTTP2_NV_FLAG_NONE };
}

static int submit_trailers(nghttp2_session *ng, struct h2b_stream *st)
{
	const struct h2b_block *k = &st->tr;
	nghttp2_nv *nva = calloc(k->n, sizeof(*nva));
	size_t n = 0;
	int rc;

	if (!nva)
		return -1;
	for (size_t i = 0; i < k->n; i++)
		if (field_passes(k, &k->f[i]))
			nva[n++] = nv_of(k->arena.data + k->f[i].name_off, k->f[i].name_len,
					 k->arena.data + k->f[i].val_off, k->f[i].val_len);
	rc = n ? nghttp2_submit_trailer(ng, st->id, nva, n) : -1;
	free(nva);
	return rc;
}

/* The request body for DATA frames: what the engine sent so far; deferred until more comes;
 * the engine's chunked trailers as a trailing HEADERS. */
static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2b_stream *st = src->ptr;
	size_t n = bm_buf_pending(&st->body);

	(void)id;
	(void)ud;
	if (!st->ic)
		return NGHTTP2_ERR_DEFERRED; /* cancelled: its RST_STREAM goes first */
	if (n > len)
		n = len;
	if (n) {
		memcpy(buf, bm_buf_head(&st->body), n);
		bm_buf_consume(&st->body, n);
		h2b_ic_kick(st->ic); /* room in the body buffer: read on */
	}
	if (!bm_buf_pending(&st->body) && st->req_done) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (st->tr.n && !submit_trailers(ng, st))
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		bm_buf_release(&st->body);
		return (ssize_t)n;
	}
	if (!n) {
		st->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

int h2b_up_submit(struct h2b_up *u, struct h2b_stream *st)
{
	const struct h2b_block *k = &st->rq;
	const char *method = llhttp_method_name(st->method), *auth = NULL;
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = read_body };
	nghttp2_nv *nva = calloc(k->n + 4, sizeof(*nva));
	size_t n = 0, auth_len = 0;
	uint32_t max;
	int32_t id;

	if (!nva)
		return NGHTTP2_ERR_NOMEM;
	for (size_t i = 0; i < k->n && !auth; i++) {
		if (name_is(k->arena.data + k->f[i].name_off, k->f[i].name_len, "host")) {
			auth = k->arena.data + k->f[i].val_off;
			auth_len = k->f[i].val_len;
		}
	}
	nva[n++] = nv_of(":method", 7, method, strlen(method));
	nva[n++] = nv_of(":scheme", 7, "http", 4);
	if (auth)
		nva[n++] = nv_of(":authority", 10, auth, auth_len);
	nva[n++] = nv_of(":path", 5, k->arena.data + st->url_off, st->url_len);
	for (size_t i = 0; i < k->n; i++)
		if (field_passes(k, &k->f[i]))
			nva[n++] = nv_of(k->arena.data + k->f[i].name_off, k->f[i].name_len,
					 k->arena.data + k->f[i].val_off, k->f[i].val_len);
	/* No body (or an empty chunked one, all here): END_STREAM on the HEADERS. */
	if (!st->has_body || (st->req_done && !bm_buf_pending(&st->body) && !st->tr.n))
		id = nghttp2_submit_request(u->ng, NULL, nva, n, NULL, st);
	else
		id = nghttp2_submit_request(u->ng, NULL, nva, n, &prd, st);
	free(nva);
	if (id < 0)
		return id;
	st->id = id;
	st->up = u;
	st->prev = NULL;
	st->next = u->streams;
	if (u->streams)
		u->streams->prev = st;
	u->streams = st;
	u->n_streams++;
	u->n_opened++;
	u->b->st.upstream_rq++;
	u->b->st.upstream_rq_active++;
	bm_ev_timer_cancel(u->b->loop, &u->t_idle);
	max = u->pool->cl->lim.max_requests_per_conn;
	if (max && u->n_opened >= max)
		u->draining = true; /* retired: closes once its streams end */
	h2b_pool_kick(u->pool);
	return 0;
}

void h2b_stream_resume(struct h2b_stream *st)
{
	if (!st->deferred || !st->up)
		return;
	st->deferred = false;
	nghttp2_session_resume_data(st->up->ng, st->id);
	h2b_pool_kick(st->up->pool);
}

void h2b_stream_consumed(struct h2b_stream *st)
{
	if (!st->up || !st->unconsumed)
		return;
	nghttp2_session_consume(st->up->ng, st->id, st->unconsumed);
	st->unconsumed = 0;
	h2b_pool_kick(st->up->pool); /* WINDOW_UPDATE */
}

void h2b_stream_cancel(struct h2b_stream *st)
{
	struct h2b_up *u = st->up;

	if (st->unconsumed)
		nghttp2_session_consume(u->ng, st->id, st->unconsumed);
	st->unconsumed = 0;
	nghttp2_submit_rst_stream(u->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
	h2b_pool_kick(u->pool);
}

/* ---- nghttp2 callbacks (user data: the connection); no session is freed in them ---- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2b_stream *st;

	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS || !(st = stream_of(ng, f->hd.stream_id)))
		return 0;
	bm_buf_consume(&st->rs, bm_buf_pending(&st->rs));
	st->rs_n = st->rs_bytes = 0;
	if (!st->resp_started) {
		st->status = 0;
		st->resp_cl = -1;
	}
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
		     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct h2b_up *u = ud;
	struct h2b_stream *st = stream_of(ng, f->hd.stream_id);
	const char *n = (const char *)name, *v = (const char *)value;

	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS || !st)
		return 0;
	st->rs_bytes += nlen + vlen + 32;
	if (++st->rs_n > u->b->o.max_headers || st->rs_bytes > u->b->o.max_header_list ||
	    memchr(v, '\r', vlen) || memchr(v, '\n', vlen) || memchr(v, 0, vlen)) {
		st->fail = "protocol";
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM(INTERNAL_ERROR) */
	}
	if (name_is(n, nlen, ":status")) {
		st->status = (int)strtol(v, NULL, 10); /* three digits: nghttp2 checked */
		return 0;
	}
	if ((nlen && n[0] == ':') || h2_conn_specific(n, nlen))
		return 0;
	if (name_is(n, nlen, "content-length")) {
		if (!st->resp_started)
			st->resp_cl = strtoll(v, NULL, 10); /* digits only: nghttp2 checked */
		return 0; /* written by the framing (never a trailer) */
	}
	if (bm_buf_append(&st->rs, n, nlen) || bm_buf_append(&st->rs, ": ", 2) ||
	    bm_buf_append(&st->rs, v, vlen) || bm_buf_append(&st->rs, "\r\n", 2)) {
		st->fail = "protocol";
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return 0;
}

/* A response HEADERS block complete: the head (1xx dropped), or the trailers. */
static void response_headers(struct h2b_stream *st, bool end)
{
	struct bm_buf *out = &st->ic->c->out;

	if (!st->resp_started) {
		if (st->status >= 100 && st->status < 200)
			return; /* interim (100-continue, 103): dropped */
		st->resp_done = end;
		if (h2b_ic_write_head(st)) {
			h2b_ic_fail(st->ic, "protocol");
			return;
		}
	} else {
		/* Trailers go in the last chunk; with a content-length they have no place. */
		if (st->resp_chunked && (bm_buf_append(out, "0\r\n", 3) ||
					 bm_buf_append(out, bm_buf_head(&st->rs), bm_buf_pending(&st->rs)) ||
					 bm_buf_append(out, "\r\n", 2))) {
			h2b_ic_close(st->ic);
			return;
		}
		st->resp_chunked = false;
		st->resp_done = true;
	}
	h2b_ic_flush(st->ic);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2b_up *u = ud;
	struct h2b_stream *st = f->hd.stream_id ? stream_of(ng, f->hd.stream_id) : NULL;
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	switch (f->hd.type) {
	case NGHTTP2_GOAWAY: /* streams above its last id are closed as REFUSED_STREAM */
		u->draining = true;
		u->b->st.upstream_goaway++;
		h2b_pool_kick(u->pool); /* waiters need another connection */
		return 0;
	case NGHTTP2_SETTINGS:
		h2b_pool_kick(u->pool); /* the peer's stream limit may have changed */
		return 0;
	case NGHTTP2_RST_STREAM:
		if (st)
			st->rst_recv = true;
		return 0;
	case NGHTTP2_HEADERS:
		if (st && st->ic)
			response_headers(st, end);
		return 0;
	case NGHTTP2_DATA:
		if (!st || !st->ic || !end || !st->resp_started || st->resp_done)
			return 0;
		if (st->resp_chunked && bm_buf_append(&st->ic->c->out, "0\r\n\r\n", 5)) {
			h2b_ic_close(st->ic);
			return 0;
		}
		st->resp_chunked = false;
		st->resp_done = true;
		h2b_ic_flush(st->ic);
		return 0;
	default:
		return 0;
	}
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
		   size_t len, void *ud)
{
	struct h2b_stream *st = stream_of(ng, id);
	struct bm_buf *out;

	(void)flags;
	(void)ud;
	if (!st || !st->ic || !st->resp_started || st->resp_nobody) {
		nghttp2_session_consume(ng, id, len);
		return 0;
	}
	out = &st->ic->c->out;
	if (st->resp_chunked ? bm_buf_printf(out, "%zx\r\n", len) || bm_buf_append(out, data, len) ||
				       bm_buf_append(out, "\r\n", 2)
			     : bm_buf_append(out, data, len)) {
		/* Past the window plus framing: DATA frames too small to be honest. */
		nghttp2_session_consume(ng, id, len);
		h2b_ic_close(st->ic);
		return 0;
	}
	st->unconsumed += len; /* consumed once it left for the engine (h2b_ic_flush) */
	h2b_ic_flush(st->ic);
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
	struct h2b_up *u = ud;
	struct h2b_stream *st = stream_of(ng, id);
	bool refused = code == NGHTTP2_REFUSED_STREAM;
	struct h2b_ic *ic;

	if (!st || st->up != u)
		return 0;
	/* What the engine has not taken yet is in its connection's output: the connection's
	 * window gets it back now, or it would shrink for good with every such stream. */
	if (st->unconsumed)
		nghttp2_session_consume_connection(ng, st->unconsumed);
	st->unconsumed = 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	h2b_up_unlink(u, st);
	if (!st->resp_done && (st->rst_recv || refused)) {
		u->b->st.upstream_reset++;
		if (refused)
			u->b->st.upstream_refused++;
	}
	ic = st->ic;
	if (!ic)
		h2b_stream_free(st);
	else if (st->resp_done && st->req_done)
		h2b_ic_done(ic);
	else if (st->resp_done)
		h2b_ic_finish(ic); /* reset after the response: the request's rest has no place */
	else
		h2b_ic_fail(ic, st->fail		       ? st->fail
				: refused		       ? "refused-stream"
				: code == NGHTTP2_PROTOCOL_ERROR && !st->rst_recv ? "protocol"
									 : "reset");
	return 0;
}

/* A malformed response (nghttp2's HTTP checks): the stream is reset as a protocol error. */
static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int err, void *ud)
{
	struct h2b_stream *st = f->hd.stream_id ? stream_of(ng, f->hd.stream_id) : NULL;

	(void)err;
	(void)ud;
	if (st)
		st->fail = "protocol";
	return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2b_up *u = ud;

	(void)ng;
	if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR)
		u->proto_err = true; /* the endpoint broke the protocol */
	return 0;
}

int h2b_callbacks_new(struct bm_h2_back *b)
{
	const struct bm_h2_opts *o = &b->o;

	if (nghttp2_session_callbacks_new(&b->cbs) || nghttp2_option_new(&b->ngopt))
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_begin_headers_callback(b->cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(b->cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(b->cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(b->cbs, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(b->cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(b->cbs, on_invalid_frame);
	nghttp2_session_callbacks_set_on_frame_send_callback(b->cbs, on_frame_send);
	/* Response bytes are consumed as they leave for the engine: backpressure to the
	 * endpoint through the stream's window. */
	nghttp2_option_set_no_auto_window_update(b->ngopt, 1);
	nghttp2_option_set_peer_max_concurrent_streams(b->ngopt, o->max_concurrent_streams);
	nghttp2_option_set_max_send_header_block_length(b->ngopt,
							2 * (size_t)o->max_header_list + 4096);
	return 0;
}
