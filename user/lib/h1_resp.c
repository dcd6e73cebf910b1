/* The response side of the engine: the upstream's head retried or committed to the client
 * (edits, framing, connection fields), the body streamed, and local replies. */
#include <string.h>

#include "h1_internal.h"

void h1_resp_reset(struct h1_sess *s)
{
	h1_head_reset(&s->rs);
	llhttp_init(&s->pp, HTTP_RESPONSE, &h1_resp_settings);
	s->pp.data = s;
	s->resp_started = s->resp_done = s->resp_retry = s->resp_chunk_out = false;
	s->resp_keepalive = s->resp_bad = s->upgraded = false;
	s->resp_fail = 0;
	s->resp_bytes = 0;
	s->attempt_live = false;
}

void h1_count_status(struct h1_sess *s, int status)
{
	if (status >= 100 && status < 600)
		s->px->st.responses[status / 100]++;
}

/* "Connection: close" once this response is out, or keep-alive spelled out for 1.0. */
static int write_connection(struct h1_sess *s, struct bm_buf *out)
{
	if (s->close_after)
		return bm_buf_append(out, "connection: close\r\n", 19);
	if (s->req_http10)
		return bm_buf_append(out, "connection: keep-alive\r\n", 24);
	return 0;
}

static bool skip_resp_field(const struct h1_head *h, const struct h1_field *f, void *ctx)
{
	struct h1_sess *s = ctx;
	const char *n = h1_name(h, f);

	if (h1_name_eq(n, f->name_len, "upgrade"))
		return !s->upgraded;
	return h1_is_hop_by_hop(n, f->name_len) || h1_listed_in_connection(h, n, f->name_len) ||
	       h1_name_eq(n, f->name_len, "content-length");
}

static int write_head(struct h1_sess *s, int code)
{
	struct bm_buf *out = &s->cli->out;
	llhttp_t *p = &s->pp;
	const char *reason = s->rs.url_len ? s->rs.arena.data + s->rs.url_off : h1_reason(code);
	size_t rlen = s->rs.url_len ? s->rs.url_len : strlen(reason);
	bool nobody = s->is_head || code == 204 || code == 304 || code == 101;

	/* The client's next bytes after an upgrade request are not HTTP/1; a response before
	 * the request ended leaves the rest of its body unread. */
	if ((s->req_upgrade && code != 101) || !s->req_done)
		s->close_after = true;
	if (bm_buf_append(out, "HTTP/1.1 ", 9) || h1_put_u64(out, (uint64_t)code) ||
	    bm_buf_append(out, " ", 1) || bm_buf_append(out, reason, rlen) ||
	    bm_buf_append(out, "\r\n", 2) ||
	    h1_write_fields(out, &s->rs, &s->d.resp_edits, skip_resp_field, s))
		return -1;
	if (code == 101)
		return bm_buf_append(out, "connection: upgrade\r\n\r\n", 23);
	if (nobody) {
		if ((p->flags & F_CONTENT_LENGTH) &&
		    h1_put_content_length(out, p->content_length))
			return -1;
	} else if ((p->flags & F_CHUNKED) || !(p->flags & F_CONTENT_LENGTH)) {
		/* Chunked or read-until-close upstream: chunked to a 1.1 client, close-delimited
		 * to a 1.0 one. */
		if (s->req_http10)
			s->close_after = true;
		else if (bm_buf_append(out, "transfer-encoding: chunked\r\n", 28))
			return -1;
		else
			s->resp_chunk_out = true;
	} else if (h1_put_content_length(out, p->content_length)) {
		return -1;
	}
	if (write_connection(s, out))
		return -1;
	return bm_buf_append(out, "\r\n", 2);
}

/* The h2 back says what failed instead of answering (h1.h, bm_h1_h2_open_fn). */
static enum h1_fail h2_failure(const struct h1_sess *s)
{
	static const struct {
		const char *what;
		enum h1_fail why;
	} map[] = { { "connect", H1_FAIL_CONNECT },	    { "reset", H1_FAIL_RESET },
		    { "refused-stream", H1_FAIL_REFUSED }, { "protocol", H1_FAIL_PROTOCOL },
		    { "overflow", H1_FAIL_OVERFLOW } };
	const struct h1_field *f;

	if (!s->up || !s->up->ep->h2 || !(f = h1_head_find(&s->rs, "x-bm-h2-fail", NULL)))
		return 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (h1_name_eq(h1_val(&s->rs, f), f->val_len, map[i].what))
			return map[i].why;
	return H1_FAIL_PROTOCOL;
}

int h1_resp_on_head(struct h1_sess *s)
{
	llhttp_t *p = &s->pp;
	int code = p->status_code;

	if ((s->resp_fail = h2_failure(s))) {
		if (s->resp_fail == H1_FAIL_OVERFLOW)
			s->px->st.rq_pending_overflow++;
		else if (s->resp_fail == H1_FAIL_CONNECT)
			s->px->st.upstream_cx_fail++;
		return HPE_PAUSED;
	}
	if (code >= 100 && code < 200 && code != 101)
		return 0; /* interim (100 Continue, 103): dropped at its message end */
	if (code < 100 || code > 599 || (code == 101 && (!s->req_upgrade || !p->upgrade)) ||
	    (code != 101 && (p->flags & F_TRANSFER_ENCODING) && !(p->flags & F_CHUNKED))) {
		/* A status out of range (this llhttp takes "10"), 101 not asked for, or a transfer
		 * coding we would pass on undecoded: 502, and the endpoint's outcome is a reset. */
		s->resp_bad = true;
		return -1;
	}
	h1_outcome(s, BM_L7_OUT_RESPONSE, code); /* also for a 5xx about to be retried */
	if (code == 101) {
		s->upgraded = true;
	} else if (h1_retry_wanted(s, H1_FAIL_STATUS, code)) {
		s->resp_retry = true;
		return HPE_PAUSED;
	}
	if (write_head(s, code)) {
		s->resp_bad = true;
		return -1;
	}
	s->resp_started = true;
	h1_count_status(s, code);
	bm_ev_timer_cancel(s->px->loop, &s->t_try);
	/* No body for HEAD, 1xx, 204, 304 whatever Content-Length says; 101 ends the head. */
	return (s->is_head || code == 204 || code == 304 || code == 101) ? 1 : 0;
}

void h1_resp_on_body(struct h1_sess *s, const char *at, size_t len)
{
	struct bm_buf *out = &s->cli->out;

	if (s->resp_chunk_out ? h1_chunk_header(out, len) || bm_buf_append(out, at, len) ||
					bm_buf_append(out, "\r\n", 2)
			      : bm_buf_append(out, at, len))
		s->cli->failed = true; /* cannot happen within the feed bound */
}

static void resp_end(struct h1_sess *s)
{
	/* Trailers go to a client that takes them (te: trailers, or the h2 front); Envoy's
	 * HTTP/1 codec drops them otherwise. */
	if (s->resp_chunk_out && h1_last_chunk(&s->cli->out, &s->rs, s->te_trailers))
		s->cli->failed = true;
}

bool h1_resp_feed(struct h1_sess *s)
{
	struct bm_buf *in = &s->up->c->in, *out = &s->cli->out;
	size_t soft = s->px->o.buf_size, head_max = s->px->o.head_max, n, used;
	const char *data = bm_buf_head(in);
	llhttp_errno_t err;

	if (s->resp_done || !bm_buf_pending(in) || bm_buf_pending(out) + H1_FRAME_SLACK >= soft)
		return false;
	n = soft - H1_FRAME_SLACK - bm_buf_pending(out);
	if (n > bm_buf_pending(in))
		n = bm_buf_pending(in);
	if (!s->rs.done) {
		if (s->rs.bytes >= head_max) {
			h1_attempt_fail(s, H1_FAIL_PROTOCOL); /* response head too large */
			return true;
		}
		if (n > head_max - s->rs.bytes)
			n = head_max - s->rs.bytes;
	}
	err = llhttp_execute(&s->pp, data, n);
	if (err == HPE_OK)
		used = n;
	else if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE)
		used = (size_t)(llhttp_get_error_pos(&s->pp) - data);
	else {
		if (s->resp_started)
			h1_sess_abort(s);
		else
			h1_attempt_fail(s, H1_FAIL_PROTOCOL);
		return true;
	}
	if (!s->rs.done)
		s->rs.bytes += used;
	bm_buf_consume(in, used);
	s->resp_bytes += used;
	if (s->resp_retry) {
		h1_attempt_fail(s, H1_FAIL_STATUS);
		return true;
	}
	if (s->resp_fail) {
		if (s->resp_fail == H1_FAIL_OVERFLOW)
			s->attempt_live = false; /* no endpoint was reached: not an outlier */
		h1_attempt_fail(s, s->resp_fail);
		return true;
	}
	if (s->resp_done && !s->upgraded)
		resp_end(s);
	return true;
}

/* The upstream's EOF with nothing left to parse: the end of a close-delimited body, or a
 * reset before (503 or a retry) or during (abort) the response. */
void h1_resp_eof(struct h1_sess *s)
{
	if (s->resp_started && llhttp_message_needs_eof(&s->pp)) {
		llhttp_finish(&s->pp);
		if (s->resp_done) {
			s->resp_keepalive = false;
			resp_end(s);
			return;
		}
	}
	if (s->resp_started)
		h1_sess_abort(s);
	else
		h1_attempt_fail(s, H1_FAIL_RESET);
}

static const struct h1_head no_fields;

static bool skip_none(const struct h1_head *h, const struct h1_field *f, void *ctx)
{
	(void)h, (void)f, (void)ctx;
	return false;
}

void h1_local_reply(struct h1_sess *s, int status, const char *body, const char *location,
		    const struct bm_http_edits *edits)
{
	struct bm_buf *out = &s->cli->out;
	size_t blen = body ? strlen(body) : 0;
	bool nobody = status == 204 || status == 304;

	if (s->resp_started) {
		h1_sess_abort(s);
		return;
	}
	s->attempt_live = false; /* ended here: nothing learnt of the endpoint */
	h1_upstream_detach(s);
	bm_ev_timer_cancel(s->px->loop, &s->t_req);
	bm_ev_timer_cancel(s->px->loop, &s->t_try);
	bm_ev_timer_cancel(s->px->loop, &s->t_wait);
	if (status < 200 || status > 599)
		status = 500;
	if (!s->req_done || s->req_upgrade)
		s->close_after = true;
	s->px->st.local_replies++;
	if (bm_buf_printf(out, "HTTP/1.1 %d %s\r\n", status, h1_reason(status)) ||
	    (location && bm_buf_printf(out, "location: %s\r\n", location)) ||
	    (edits && h1_write_fields(out, &no_fields, edits, skip_none, NULL)) ||
	    (!nobody && bm_buf_printf(out, "content-length: %zu\r\n", nobody ? 0 : blen)) ||
	    (blen && !nobody && bm_buf_append(out, "content-type: text/plain\r\n", 26)) ||
	    write_connection(s, out) || bm_buf_append(out, "\r\n", 2) ||
	    (!s->is_head && !nobody && bm_buf_append(out, body, blen))) {
		h1_sess_abort(s);
		return;
	}
	h1_count_status(s, status);
	s->resp_started = s->resp_done = true;
	h1_exchange_done(s);
}
