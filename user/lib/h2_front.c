/* The HTTP/2 front (h2.h): the front object, and each client connection's life: its nghttp2
 * server session, frame I/O, idle timeout, GOAWAY, drain, linger and close. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h2_internal.h"

static void cx_free(struct bm_ev_defer *d)
{
	struct h2f_cx *cx = bm_container_of(d, struct h2f_cx, dead);

	nghttp2_session_del(cx->ng); /* no callbacks from here; cx->closed guards them anyway */
	free(cx);
}

void h2f_count_error(struct h2f_cx *cx)
{
	if (!cx->err_counted) {
		cx->err_counted = true;
		cx->f->st.protocol_errors++;
	}
}

void h2f_cx_close(struct h2f_cx *cx)
{
	struct bm_h2_front *f = cx->f;

	if (cx->closed)
		return;
	cx->closed = true;
	bm_ev_timer_cancel(f->loop, &cx->t_idle);
	while (cx->streams)
		h2f_stream_drop(cx->streams);
	while (cx->parked)
		h2f_ic_close(cx->parked);
	bm_conn_destroy(cx->c);
	if (cx->prev)
		cx->prev->next = cx->next;
	else
		f->cxs = cx->next;
	if (cx->next)
		cx->next->prev = cx->prev;
	if (cx->counted)
		f->st.downstream_cx_active--;
	bm_ev_defer(f->loop, &cx->dead, cx_free);
}

void h2f_cx_arm(struct h2f_cx *cx)
{
	struct bm_evloop *l = cx->f->loop;
	uint64_t now = bm_evloop_now(l), when = UINT64_MAX;

	if (cx->closed)
		return;
	if (cx->lingering) {
		when = cx->linger_start + H2F_LINGER_MS;
	} else {
		if (!cx->n_streams)
			when = cx->idle_since + cx->f->o.idle_timeout_ms;
		for (struct h2f_ic *ic = cx->parked; ic; ic = ic->next)
			if (ic->parked_at + H2F_PARKED_MS < when)
				when = ic->parked_at + H2F_PARKED_MS;
	}
	if (when == UINT64_MAX)
		bm_ev_timer_cancel(l, &cx->t_idle);
	else
		bm_ev_timer_arm(l, &cx->t_idle, when > now ? when - now : 0);
}

/* After our FIN: what the client still sends is read and dropped until its FIN (closing with
 * unread input would send RST, which can destroy the GOAWAY in its receive queue). */
static void linger_step(struct h2f_cx *cx)
{
	struct bm_conn *c = cx->c;
	int rc, i;

	if (!c->wr_shut) {
		rc = bm_conn_shutdown(c);
		if (rc == BM_ERROR) {
			h2f_cx_close(cx);
			return;
		}
		if (rc == BM_AGAIN) {
			if (bm_conn_want(c, false, true))
				h2f_cx_close(cx);
			return;
		}
		bm_buf_release(&c->out);
	}
	for (i = 0; i < 4 && !c->rd_eof && !c->failed; i++) {
		bm_buf_consume(&c->in, bm_buf_pending(&c->in));
		if (bm_conn_fill(c) <= 0)
			break;
	}
	bm_buf_consume(&c->in, bm_buf_pending(&c->in));
	if (c->rd_eof || c->failed || bm_conn_want(c, true, false))
		h2f_cx_close(cx);
}

void h2f_cx_finish(struct h2f_cx *cx)
{
	if (cx->closed || cx->lingering)
		return;
	cx->lingering = true;
	cx->linger_start = bm_evloop_now(cx->f->loop);
	while (cx->streams)
		h2f_stream_drop(cx->streams);
	while (cx->parked)
		h2f_ic_close(cx->parked);
	h2f_cx_arm(cx);
	linger_step(cx);
}

static void cx_timer(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct h2f_cx *cx = t->data;
	uint64_t now = bm_evloop_now(l);
	struct h2f_ic *ic, *next;

	if (cx->lingering) {
		if (now >= cx->linger_start + H2F_LINGER_MS)
			h2f_cx_close(cx);
		else
			h2f_cx_arm(cx);
		return;
	}
	for (ic = cx->parked; ic; ic = next) {
		next = ic->next;
		if (ic->parked_at + H2F_PARKED_MS <= now)
			h2f_ic_close(ic);
	}
	if (!cx->n_streams && now >= cx->idle_since + cx->f->o.idle_timeout_ms) {
		/* GOAWAY(NO_ERROR); the session wants nothing more once it is out. */
		if (nghttp2_session_terminate_session(cx->ng, NGHTTP2_NO_ERROR)) {
			h2f_cx_close(cx);
			return;
		}
		cx->idle_since = now; /* not again: the close follows the flush */
	}
	if (!h2f_cx_send(cx))
		h2f_cx_arm(cx);
}

int h2f_cx_send(struct h2f_cx *cx)
{
	struct bm_h2_front *f = cx->f;
	struct bm_conn *c = cx->c;
	size_t high = f->o.buf_size;
	bool rd, wr = false;

	if (cx->closed)
		return -1;
	if (cx->lingering)
		return 0;
	switch (h2_io_send(cx->ng, c, high)) {
	case -1:
		h2f_cx_close(cx);
		return -1;
	case 1:
		wr = true; /* more when the socket is writable, at once */
		break;
	}
	/* Done: nghttp2 wants nothing more (GOAWAY out and no stream), or the client half-closed
	 * and nothing is left to answer. */
	if (!bm_buf_pending(&c->out) &&
	    (h2_io_done(cx->ng) ||
	     (c->rd_eof && !cx->n_streams && !nghttp2_session_want_write(cx->ng)))) {
		h2f_cx_finish(cx);
		return cx->closed ? -1 : 0;
	}
	if (!cx->n_streams) { /* an idle client costs no buffer memory */
		if (!bm_buf_pending(&c->in)) {
			bm_buf_release(&c->in);
			c->rd_chunk = 0; /* its next read starts small again */
		}
		if (!bm_buf_pending(&c->out))
			bm_buf_release(&c->out);
	}
	/* Frames the client does not read hold back what it sends (its PINGs, SETTINGS...). */
	rd = !c->rd_eof && bm_buf_pending(&c->out) < high && nghttp2_session_want_read(cx->ng);
	wr |= bm_buf_pending(&c->out) != 0;
	if (bm_conn_want(c, rd, wr)) {
		h2f_cx_close(cx);
		return -1;
	}
	return 0;
}

int h2f_cx_feed(struct h2f_cx *cx, const void *p, size_t n)
{
	ssize_t rc = n ? nghttp2_session_mem_recv(cx->ng, p, n) : 0;

	if (rc < 0) {
		h2f_count_error(cx);
		h2f_cx_finish(cx);
		return -1;
	}
	return 0;
}

void h2f_cx_run(struct h2f_cx *cx)
{
	struct bm_conn *c = cx->c;

	if (cx->closed)
		return;
	if (cx->lingering) {
		linger_step(cx);
		return;
	}
	if (!c->rd_eof && bm_buf_pending(&c->out) < cx->f->o.buf_size &&
	    nghttp2_session_want_read(cx->ng) && bm_conn_fill(c) < 0) {
		h2f_cx_close(cx);
		return;
	}
	if (bm_buf_pending(&c->in) && h2_io_recv(cx->ng, c)) {
		/* Fatal to the session (a bad preface, a flood, memory): no GOAWAY can follow. */
		h2f_count_error(cx);
		h2f_cx_finish(cx);
		return;
	}
	h2f_cx_send(cx);
}

static void cx_event(struct bm_conn *c, uint32_t events)
{
	struct h2f_cx *cx = c->data;

	if ((events & BM_EV_ERROR) && bm_conn_check_error(c) && !cx->lingering) {
		h2f_cx_close(cx);
		return;
	}
	h2f_cx_run(cx);
}

struct h2f_cx *h2f_cx_new(struct bm_h2_front *f, int fd, const struct bm_h1_peer *peer)
{
	struct h2f_cx *cx = calloc(1, sizeof(*cx));
	socklen_t len;

	if (!cx) {
		close(fd);
		return NULL;
	}
	cx->f = f;
	cx->c = bm_conn_new(f->loop, fd, f->o.buf_size, f->o.buf_size + H2_OUT_SLACK);
	if (!cx->c) {
		free(cx);
		return NULL;
	}
	if (peer)
		cx->peer = *peer;
	len = sizeof(cx->peer.client);
	if (cx->peer.client.ss_family == AF_UNSPEC &&
	    getpeername(fd, (struct sockaddr *)&cx->peer.client, &len) < 0)
		memset(&cx->peer.client, 0, sizeof(cx->peer.client));
	len = sizeof(cx->peer.orig_dst);
	if (cx->peer.orig_dst.ss_family == AF_UNSPEC &&
	    getsockname(fd, (struct sockaddr *)&cx->peer.orig_dst, &len) < 0)
		memset(&cx->peer.orig_dst, 0, sizeof(cx->peer.orig_dst));
	cx->peer.flags |= BM_H1_PEER_H2;
	if (nghttp2_session_server_new2(&cx->ng, f->cbs, cx, f->opt)) {
		bm_conn_destroy(cx->c);
		free(cx);
		return NULL;
	}
	cx->c->on_event = cx_event;
	cx->c->data = cx;
	bm_ev_timer_init(&cx->t_idle, cx_timer, cx);
	cx->idle_since = bm_evloop_now(f->loop);
	cx->next = f->cxs;
	if (cx->next)
		cx->next->prev = cx;
	f->cxs = cx;
	return cx;
}

int h2f_cx_start(struct h2f_cx *cx)
{
	const struct bm_h2_opts *o = &cx->f->o;
	uint32_t win = o->buf_size > INT32_MAX ? INT32_MAX : o->buf_size;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o->max_concurrent_streams },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, win },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, o->max_header_list },
	};
	uint32_t n = o->max_concurrent_streams < H2F_WINDOW_STREAMS ? o->max_concurrent_streams
								    : H2F_WINDOW_STREAMS;
	uint64_t conn_win = (uint64_t)o->buf_size * n;

	/* The connection window holds several streams' worth, so one stalled upload does not
	 * stop the others; request bytes are consumed only once they left for the engine. */
	if (conn_win < 65535)
		conn_win = 65535;
	if (conn_win > INT32_MAX)
		conn_win = INT32_MAX;
	if (nghttp2_submit_settings(cx->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) ||
	    nghttp2_session_set_local_window_size(cx->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)conn_win))
		return -1;
	cx->counted = true;
	cx->f->st.downstream_cx++;
	cx->f->st.downstream_cx_active++;
	h2f_cx_arm(cx);
	return 0;
}

/* ---- the front ---- */

struct bm_h2_front *bm_h2_front_new(struct bm_evloop *loop, struct bm_h1_proxy *px,
				    const struct bm_h2_opts *opts)
{
	struct bm_h2_front *f;

	if (!loop || !px)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->loop = loop;
	f->px = px;
	h2_opts_fill(&f->o, opts);
	if (f->o.buf_size < 1024)
		f->o.buf_size = 1024;
	if (f->o.buf_size > (1u << 30))
		f->o.buf_size = 1u << 30;
	/* A client may send 65535 bytes before it has our SETTINGS (RFC 9113 6.9.2). */
	f->rq_body_max = f->o.buf_size > 65535 ? f->o.buf_size : 65535;
	/* The head (bounded by max_header_list), a staged body and its framing, trailers. */
	f->ic_out_max = (size_t)f->o.buf_size + f->rq_body_max + 2 * (size_t)f->o.max_header_list +
			8192;
	if (nghttp2_session_callbacks_new(&f->cbs) || nghttp2_option_new(&f->opt)) {
		bm_h2_front_free(f);
		return NULL;
	}
	h2f_set_callbacks(f->cbs);
	/* Backpressure: a stream's window opens only as its bytes leave for the engine. */
	nghttp2_option_set_no_auto_window_update(f->opt, 1);
	/* No RFC 7540 priority tree to keep closed streams for: they go at once. */
	nghttp2_option_set_no_closed_streams(f->opt, 1);
	return f;
}

int bm_h2_front_serve(struct bm_h2_front *f, int fd, const struct bm_h1_peer *peer,
		      const void *pre, size_t pre_len)
{
	struct h2f_cx *cx;

	if (!f || f->draining) {
		close(fd);
		return f ? -ESHUTDOWN : -EINVAL;
	}
	cx = h2f_cx_new(f, fd, peer);
	if (!cx)
		return -ENOMEM;
	if (h2f_cx_start(cx)) {
		h2f_cx_close(cx);
		return -ENOMEM;
	}
	if (h2f_cx_feed(cx, pre, pre_len))
		return 0; /* answered (as far as nghttp2 could) and closing */
	h2f_cx_run(cx);
	return 0;
}

void bm_h2_front_drain(struct bm_h2_front *f)
{
	struct h2f_cx *cx, *next;

	if (!f || f->draining)
		return;
	f->draining = true;
	for (cx = f->cxs; cx; cx = next) {
		next = cx->next; /* a close unlinks cx only; its neighbours stay */
		if (cx->lingering || !cx->counted)
			continue;
		while (cx->parked)
			h2f_ic_close(cx->parked);
		/* Streams up to the last one received finish; the session ends after them. */
		if (nghttp2_submit_goaway(cx->ng, NGHTTP2_FLAG_NONE,
					  nghttp2_session_get_last_proc_stream_id(cx->ng),
					  NGHTTP2_NO_ERROR, NULL, 0))
			h2f_cx_close(cx);
		else
			h2f_cx_send(cx);
	}
}

size_t bm_h2_front_active(const struct bm_h2_front *f)
{
	size_t n = 0;

	/* Counted sessions, and refused upgrades still saying 400. */
	for (const struct h2f_cx *cx = f ? f->cxs : NULL; cx; cx = cx->next)
		n++;
	return n;
}

const struct bm_h2_stats *bm_h2_front_stats(const struct bm_h2_front *f)
{
	return &f->st;
}

void bm_h2_front_free(struct bm_h2_front *f)
{
	if (!f)
		return;
	while (f->cxs)
		h2f_cx_close(f->cxs);
	if (f->cbs)
		nghttp2_session_callbacks_del(f->cbs);
	if (f->opt)
		nghttp2_option_del(f->opt);
	free(f);
}
