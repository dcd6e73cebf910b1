/* The HTTP/2 front's streams: nghttp2's callbacks for a client's frames, header limits,
 * rapid-reset guard, and each request written as HTTP/1.1 on an internal connection. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_internal.h"

/* A field of s->rq, walked with rq_next. */
struct rq_field {
	const char *name, *value;
	uint32_t nlen, vlen;
};

static bool rq_next(const struct bm_buf *b, size_t *off, struct rq_field *f)
{
	const char *p;

	if (*off + 8 > bm_buf_pending(b))
		return false;
	p = bm_buf_head(b) + *off;
	memcpy(&f->nlen, p, 4);
	memcpy(&f->vlen, p + 4, 4);
	f->name = p + 8;
	f->value = p + 8 + f->nlen;
	*off += 8 + (size_t)f->nlen + f->vlen;
	return true;
}

static bool raw_is(const char *name, size_t nlen, const char *lit)
{
	return nlen == strlen(lit) && !memcmp(name, lit, nlen);
}

static bool name_is(const struct rq_field *f, const char *name)
{
	return raw_is(f->name, f->nlen, name);
}

static int put_field(struct bm_buf *out, const char *name, size_t nlen, const char *value,
		     size_t vlen)
{
	return bm_buf_append(out, name, nlen) || bm_buf_append(out, ": ", 2) ||
	       bm_buf_append(out, value, vlen) || bm_buf_append(out, "\r\n", 2);
}

static void stream_free(struct bm_ev_defer *d)
{
	struct h2f_stream *s = bm_container_of(d, struct h2f_stream, dead);

	bm_buf_release(&s->rq);
	bm_buf_release(&s->rq_trailers);
	bm_buf_release(&s->rq_body);
	bm_buf_release(&s->rs);
	bm_buf_release(&s->rs_body);
	free(s->rf);
	free(s);
}

struct h2f_stream *h2f_stream_new(struct h2f_cx *cx, int32_t id)
{
	struct bm_h2_front *f = cx->f;
	struct h2f_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cx = cx;
	s->id = id;
	/* Each stored field takes 8 + name + value, under the 32 the limit counts per field. */
	bm_buf_init(&s->rq, f->o.max_header_list + 64);
	bm_buf_init(&s->rq_trailers, f->o.max_header_list + 64);
	bm_buf_init(&s->rq_body, f->rq_body_max);
	bm_buf_init(&s->rs, H2F_RS_ARENA_MAX);
	bm_buf_init(&s->rs_body, f->o.buf_size + 4096);
	s->next = cx->streams;
	if (s->next)
		s->next->prev = s;
	cx->streams = s;
	if (!cx->n_streams++)
		h2f_cx_arm(cx); /* not idle any more */
	return s;
}

/* Unlinks s (the connection or nghttp2 is done with it); freed after the batch. */
static void stream_unlink(struct h2f_stream *s)
{
	struct h2f_cx *cx = s->cx;

	s->closed = true;
	if (s->ic)
		h2f_ic_close(s->ic);
	if (s->handed) {
		s->handed = false;
		cx->f->st.streams_active--;
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		cx->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (!--cx->n_streams) {
		cx->idle_since = bm_evloop_now(cx->f->loop);
		h2f_cx_arm(cx);
	}
	bm_ev_defer(cx->f->loop, &s->dead, stream_free);
}

void h2f_stream_drop(struct h2f_stream *s)
{
	bm_buf_release(&s->rq_body); /* its window goes with the connection */
	s->body_out = 0;
	stream_unlink(s);
}

void h2f_stream_discard(struct h2f_stream *s)
{
	size_t n = bm_buf_pending(&s->rq_body) + s->body_out;

	bm_buf_release(&s->rq_body);
	s->body_out = 0;
	if (!n || s->cx->closed)
		return;
	/* A closed stream's bytes still hold the connection window. */
	if (s->closed)
		nghttp2_session_consume_connection(s->cx->ng, n);
	else
		nghttp2_session_consume(s->cx->ng, s->id, n);
}

/* nghttp2 closed the stream (both ends done, or a reset): the exchange ends. */
static void stream_closed(struct h2f_stream *s)
{
	struct h2f_ic *ic = s->ic;
	bool clean = s->rs_done && s->rs_keepalive && s->rq_written;

	s->closed = true;
	h2f_stream_discard(s);
	if (ic)
		h2f_ic_release(ic, clean); /* detaches both */
	stream_unlink(s);
}

void h2f_stream_field(struct h2f_stream *s, const char *name, size_t nlen, const char *value,
		      size_t vlen, bool trailer)
{
	const struct bm_h2_opts *o = &s->cx->f->o;
	uint32_t hdr[2] = { (uint32_t)nlen, (uint32_t)vlen };

	s->rq_fields++;
	s->rq_bytes += nlen + vlen + 32;
	if (s->too_large || s->rq_fields > o->max_headers || s->rq_bytes > o->max_header_list) {
		s->too_large = true;
		return;
	}
	if (trailer) {
		/* Framing and hop-by-hop fields are not trailers (RFC 9110 6.5.1). */
		if (h2_conn_specific(name, nlen) || raw_is(name, nlen, "content-length") ||
		    raw_is(name, nlen, "te") || raw_is(name, nlen, "host"))
			return;
		if (put_field(&s->rq_trailers, name, nlen, value, vlen))
			s->too_large = true;
		return;
	}
	if (bm_buf_append(&s->rq, hdr, sizeof(hdr)) || bm_buf_append(&s->rq, name, nlen) ||
	    bm_buf_append(&s->rq, value, vlen))
		s->too_large = true;
}

/* ---- local replies ---- */

void h2f_local_reply(struct h2f_stream *s, int status, const char *body)
{
	struct h2f_cx *cx = s->cx;
	char st[8], len[24];
	size_t blen = strlen(body);
	nghttp2_data_provider prd = h2f_resp_provider(s);
	nghttp2_nv nva[] = {
		{ (uint8_t *)":status", (uint8_t *)st, 7, 0, 0 },
		{ (uint8_t *)"content-type", (uint8_t *)"text/plain", 12, 10, 0 },
		{ (uint8_t *)"content-length", (uint8_t *)len, 14, 0, 0 },
	};

	if (s->closed || cx->closed)
		return;
	if (s->ic)
		h2f_ic_close(s->ic);
	h2f_stream_discard(s);
	nva[0].valuelen = (size_t)snprintf(st, sizeof(st), "%d", status);
	nva[2].valuelen = (size_t)snprintf(len, sizeof(len), "%zu", blen);
	bm_buf_consume(&s->rs_body, bm_buf_pending(&s->rs_body));
	s->rf_n = s->rf_head = 0; /* a reply of ours carries no trailers */
	s->rs_done = s->rs_head = s->rs_submitted = true;
	if (bm_buf_append(&s->rs_body, body, blen) ||
	    nghttp2_submit_response(cx->ng, s->id, nva, 3, &prd))
		nghttp2_submit_rst_stream(cx->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
}

/* ---- the request, as HTTP/1.1 ---- */

/* "ip:port" or "[ip]:port" of a connection's original destination ("" when unknown). */
static void format_dst(const struct sockaddr_storage *ss, char *out, size_t len)
{
	const struct sockaddr_in *in = (const void *)ss;
	const struct sockaddr_in6 *in6 = (const void *)ss;
	char ip[INET6_ADDRSTRLEN];

	out[0] = 0;
	if (ss->ss_family == AF_INET && inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)))
		snprintf(out, len, "%s:%u", ip, ntohs(in->sin_port));
	else if (ss->ss_family == AF_INET6 && inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)))
		snprintf(out, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
}

/* The pseudo-headers and what framing needs, from s->rq. */
struct rq_view {
	struct rq_field method, path, authority, host;
	bool has_protocol, has_cl, has_cookie;
};

static void rq_view(const struct h2f_stream *s, struct rq_view *v)
{
	struct rq_field f;
	size_t off = 0;

	memset(v, 0, sizeof(*v));
	while (rq_next(&s->rq, &off, &f)) {
		if (name_is(&f, ":method"))
			v->method = f;
		else if (name_is(&f, ":path"))
			v->path = f;
		else if (name_is(&f, ":authority"))
			v->authority = f;
		else if (name_is(&f, ":protocol"))
			v->has_protocol = true;
		else if (name_is(&f, "host") && !v->host.name)
			v->host = f;
		else if (name_is(&f, "content-length"))
			v->has_cl = true;
		else if (name_is(&f, "cookie"))
			v->has_cookie = true;
	}
}

/* Fields that do not go as they are: pseudo-headers, host (its own line), cookies (joined),
 * expect (the engine answers 100-continue itself), connection-specific ones, te but
 * "trailers" (RFC 9113 8.2.2). */
static bool skip_field(const struct rq_field *f)
{
	return (f->nlen && f->name[0] == ':') || name_is(f, "host") || name_is(f, "cookie") ||
	       name_is(f, "expect") || h2_conn_specific(f->name, f->nlen) ||
	       (name_is(f, "te") && !h2_te_ok(f->value, f->vlen));
}

/* Request line, host, the fields HTTP/1.1 may carry (RFC 9113 8.2.2, 8.2.3), framing. */
static int write_head(struct h2f_stream *s, const struct rq_view *v, struct bm_buf *out)
{
	char dst[INET6_ADDRSTRLEN + 8];
	const char *host = v->authority.value;
	size_t hlen = v->authority.vlen, off = 0;
	struct rq_field f;
	bool first = true;

	if (!hlen && v->host.name) {
		host = v->host.value;
		hlen = v->host.vlen;
	}
	if (!hlen) {
		format_dst(&s->cx->peer.orig_dst, dst, sizeof(dst));
		host = dst;
		hlen = strlen(dst);
	}
	if (bm_buf_append(out, v->method.value, v->method.vlen) || bm_buf_append(out, " ", 1) ||
	    bm_buf_append(out, v->path.value, v->path.vlen) ||
	    bm_buf_append(out, " HTTP/1.1\r\n", 11) || put_field(out, "host", 4, host, hlen))
		return -1;
	while (rq_next(&s->rq, &off, &f))
		if (!skip_field(&f) && put_field(out, f.name, f.nlen, f.value, f.vlen))
			return -1;
	/* Cookies split over fields go back to one field, "; " between (RFC 9113 8.2.3). */
	for (off = 0; v->has_cookie && rq_next(&s->rq, &off, &f);) {
		if (!name_is(&f, "cookie"))
			continue;
		if (bm_buf_append(out, first ? "cookie: " : "; ", first ? 8 : 2) ||
		    bm_buf_append(out, f.value, f.vlen))
			return -1;
		first = false;
	}
	if (!first && bm_buf_append(out, "\r\n", 2))
		return -1;
	/* END_STREAM with the head: no body, no framing added (a content-length sent stays). */
	s->rq_chunked = !s->rq_end && !v->has_cl;
	if (s->rq_chunked && bm_buf_append(out, "transfer-encoding: chunked\r\n", 28))
		return -1;
	return bm_buf_append(out, "\r\n", 2);
}

void h2f_stream_ready(struct h2f_stream *s, bool end_stream)
{
	struct h2f_cx *cx = s->cx;
	struct rq_view v;
	struct h2f_ic *ic;

	s->rq_end = end_stream;
	if (s->too_large) {
		cx->f->st.headers_too_large++;
		h2f_local_reply(s, 431, "request header fields too large\n");
		return;
	}
	rq_view(s, &v);
	/* CONNECT (no :path) and extended CONNECT are tunnels the engine does not make. */
	if (v.has_protocol ||
	    (v.method.name && v.method.vlen == 7 && !memcmp(v.method.value, "CONNECT", 7))) {
		h2f_local_reply(s, 405, "method not allowed\n");
		return;
	}
	if (!v.method.name || !v.path.name) { /* nghttp2 checks; an upgrade's request too */
		h2f_local_reply(s, 400, "bad request\n");
		return;
	}
	s->is_head = v.method.vlen == 4 && !memcmp(v.method.value, "HEAD", 4);
	ic = h2f_ic_get(cx);
	if (!ic) {
		h2f_local_reply(s, 503, "no internal connection to the engine\n");
		return;
	}
	ic->s = s;
	s->ic = ic;
	h2f_resp_init(s);
	if (write_head(s, &v, &ic->c->out)) {
		h2f_local_reply(s, 503, "request head too large for the engine\n");
		return;
	}
	/* The head went out: the fields' memory goes back, trailers reuse nothing of it. */
	bm_buf_release(&s->rq);
	s->handed = true;
	cx->f->st.streams++;
	cx->f->st.streams_active++;
	h2f_ic_kick(ic);
}

/* Request trailers (a HEADERS with END_STREAM after the head). */
static void stream_trailers(struct h2f_stream *s)
{
	s->rq_end = true;
	if (!s->handed) /* answered here: nothing goes to the engine */
		return;
	if (s->too_large) {
		s->cx->f->st.headers_too_large++;
		if (!s->rs_submitted) {
			h2f_local_reply(s, 431, "request trailer fields too large\n");
		} else {
			if (s->ic)
				h2f_ic_close(s->ic);
			nghttp2_submit_rst_stream(s->cx->ng, NGHTTP2_FLAG_NONE, s->id,
						  NGHTTP2_INTERNAL_ERROR);
		}
		return;
	}
	if (s->ic)
		h2f_ic_kick(s->ic);
}

int h2f_request_pump(struct h2f_stream *s)
{
	struct bm_buf *out = &s->ic->c->out, *b = &s->rq_body;
	size_t n = bm_buf_pending(b);
	int prog = 0;

	if (n && bm_buf_pending(out) < s->cx->f->o.buf_size) {
		/* One chunk per move however the client cut its DATA frames. */
		if ((s->rq_chunked && bm_buf_printf(out, "%zx\r\n", n)) ||
		    bm_buf_append(out, bm_buf_head(b), n) ||
		    (s->rq_chunked && bm_buf_append(out, "\r\n", 2)))
			return -1; /* out has room for a window and framing: memory */
		s->body_out += n;
		bm_buf_consume(b, n);
		prog = 1;
	}
	if (s->rq_end && !bm_buf_pending(b) && !s->rq_written) {
		struct bm_buf *t = &s->rq_trailers;

		if (s->rq_chunked &&
		    (bm_buf_append(out, "0\r\n", 3) ||
		     (bm_buf_pending(t) && bm_buf_append(out, bm_buf_head(t), bm_buf_pending(t))) ||
		     bm_buf_append(out, "\r\n", 2)))
			return -1;
		s->rq_written = true;
		bm_buf_release(&s->rq_trailers);
		bm_buf_release(b);
		prog = 1;
	}
	return prog;
}

void h2f_request_sent(struct h2f_stream *s)
{
	size_t left = bm_buf_pending(&s->ic->c->out), n;

	/* Body bytes are behind the head and framing in out: those beyond what is left went. */
	if (s->body_out <= left || s->closed || s->cx->closed)
		return;
	n = s->body_out - left;
	s->body_out = left;
	nghttp2_session_consume(s->cx->ng, s->id, n);
}

/* ---- nghttp2 callbacks ---- */

static struct h2f_stream *stream_of(nghttp2_session *ng, int32_t id)
{
	return nghttp2_session_get_stream_user_data(ng, id);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
	struct h2f_cx *cx = ud;
	struct h2f_stream *s;

	if (cx->closed || fr->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (fr->headers.cat == NGHTTP2_HCAT_HEADERS && (s = stream_of(ng, fr->hd.stream_id))) {
		s->rq_fields = 0; /* trailers: a block of their own */
		s->rq_bytes = 0;
		s->too_large = false;
		return 0;
	}
	if (fr->headers.cat != NGHTTP2_HCAT_REQUEST || cx->calm)
		return 0; /* after ENHANCE_YOUR_CALM: ignored (the session is going) */
	s = h2f_stream_new(cx, fr->hd.stream_id);
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* nghttp2 resets the stream */
	if (nghttp2_session_set_stream_user_data(ng, fr->hd.stream_id, s)) {
		stream_unlink(s);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *fr, const uint8_t *name,
		     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct h2f_cx *cx = ud;
	struct h2f_stream *s;

	(void)flags;
	if (cx->closed || fr->hd.type != NGHTTP2_HEADERS || !(s = stream_of(ng, fr->hd.stream_id)))
		return 0;
	if (fr->headers.cat == NGHTTP2_HCAT_REQUEST || fr->headers.cat == NGHTTP2_HCAT_HEADERS)
		h2f_stream_field(s, (const char *)name, nlen, (const char *)value, vlen,
				 fr->headers.cat == NGHTTP2_HCAT_HEADERS);
	return 0;
}

/* More than max_resets_per_s RST_STREAMs in a second: GOAWAY(ENHANCE_YOUR_CALM), as servers
 * answer the rapid-reset attack (CVE-2023-44487); nghttp2's own bucket stays on too. */
static void count_reset(struct h2f_cx *cx)
{
	uint64_t now = bm_evloop_now(cx->f->loop);

	cx->f->st.rx_reset++;
	if (now - cx->rst_window >= 1000) {
		cx->rst_window = now;
		cx->rst_count = 0;
	}
	if (++cx->rst_count > cx->f->o.max_resets_per_s && !cx->calm) {
		cx->calm = true;
		nghttp2_session_terminate_session(cx->ng, NGHTTP2_ENHANCE_YOUR_CALM);
	}
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
	struct h2f_cx *cx = ud;
	struct h2f_stream *s;
	bool end = fr->hd.flags & NGHTTP2_FLAG_END_STREAM;

	if (cx->closed)
		return 0;
	if (fr->hd.type == NGHTTP2_RST_STREAM) {
		count_reset(cx);
		return 0;
	}
	s = fr->hd.stream_id ? stream_of(ng, fr->hd.stream_id) : NULL;
	if (!s || s->closed)
		return 0;
	if (fr->hd.type == NGHTTP2_HEADERS && fr->headers.cat == NGHTTP2_HCAT_REQUEST)
		h2f_stream_ready(s, end);
	else if (fr->hd.type == NGHTTP2_HEADERS && end)
		stream_trailers(s);
	else if (fr->hd.type == NGHTTP2_DATA && end && !s->rq_end) {
		s->rq_end = true;
		if (s->ic)
			h2f_ic_kick(s->ic);
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *ud)
{
	struct h2f_cx *cx = ud;
	struct h2f_stream *s = stream_of(ng, id);

	(void)flags;
	if (cx->closed)
		return 0;
	/* Nobody to take it (answered here, or the engine is gone): consumed at once. */
	if (!s || !s->ic || s->rq_written) {
		nghttp2_session_consume(ng, id, len);
		return 0;
	}
	if (bm_buf_append(&s->rq_body, data, len)) { /* beyond the window: nghttp2 stops that */
		nghttp2_session_consume(ng, id, len);
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
		return 0;
	}
	h2f_ic_kick(s->ic);
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
	struct h2f_cx *cx = ud;
	struct h2f_stream *s = stream_of(ng, id);

	(void)error_code;
	if (!cx->closed && s && !s->closed)
		stream_closed(s);
	return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
	struct h2f_cx *cx = ud;
	struct h2f_stream *s;

	if (cx->closed)
		return 0;
	switch (fr->hd.type) {
	case NGHTTP2_RST_STREAM:
		cx->f->st.tx_reset++;
		break;
	case NGHTTP2_GOAWAY:
		cx->f->st.goaway_sent++;
		if (fr->goaway.error_code != NGHTTP2_NO_ERROR)
			h2f_count_error(cx);
		break;
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		/* Our answer is complete and the client is still sending: it may stop now
		 * (RFC 9113 8.1, RST_STREAM with NO_ERROR). */
		s = stream_of(ng, fr->hd.stream_id);
		if ((fr->hd.flags & NGHTTP2_FLAG_END_STREAM) && s && !s->closed && !s->rq_end)
			nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, fr->hd.stream_id,
						  NGHTTP2_NO_ERROR);
		break;
	default:
		break;
	}
	return 0;
}

void h2f_set_callbacks(nghttp2_session_callbacks *cbs)
{
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
}
