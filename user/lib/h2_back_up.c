/* The HTTP/2 back's upstream connections: nghttp2 client sessions over bm_conns to an
 * endpoint (connect, idle and draining, closing with the failure their streams are told). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2_internal.h"

static uint32_t idle_ms(const struct h2b_up *u)
{
	uint32_t ms = u->pool->cl->lim.idle_timeout_ms;

	return ms ? ms : u->b->o.upstream_idle_ms;
}

/* st leaves u (its stream closed, or u goes). */
void h2b_up_unlink(struct h2b_up *u, struct h2b_stream *st)
{
	if (st->prev)
		st->prev->next = st->next;
	else
		u->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
	st->up = NULL;
	u->n_streams--;
	u->b->st.upstream_rq_active--;
	if (!u->n_streams && !u->closed && u->connected && !u->draining)
		bm_ev_timer_arm(u->b->loop, &u->t_idle, idle_ms(u));
	h2b_pool_kick(u->pool); /* room for a waiter, or a drained connection to close */
}

bool h2b_up_has_room(const struct h2b_up *u)
{
	uint32_t max = u->b->o.max_concurrent_streams;
	uint32_t peer = nghttp2_session_get_remote_settings(u->ng,
							    NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);

	if (peer < max)
		max = peer;
	return !u->closed && !u->draining && u->n_streams < max;
}

/* ---- the connection ---- */

static void up_free_fn(struct bm_ev_defer *d)
{
	free(bm_container_of(d, struct h2b_up, dead));
}

void h2b_up_close(struct h2b_up *u, const char *what)
{
	struct bm_h2_back *b = u->b;
	struct h2b_pool *p = u->pool;
	struct h2b_stream *st;

	if (u->closed)
		return;
	u->closed = true;
	if (u->prev)
		u->prev->next = u->next;
	else
		p->ups = u->next;
	if (u->next)
		u->next->prev = u->prev;
	p->n_ups--;
	p->cl->n_conns--;
	b->st.upstream_cx_active--;
	bm_ev_timer_cancel(b->loop, &u->t_conn);
	bm_ev_timer_cancel(b->loop, &u->t_idle);
	while ((st = u->streams)) {
		struct h2b_ic *ic = st->ic;

		h2b_up_unlink(u, st);
		if (!ic) {
			h2b_stream_free(st);
			continue;
		}
		if (st->resp_done && st->req_done) { /* only our END_STREAM was left to send */
			h2b_ic_done(ic);
			continue;
		}
		if (st->resp_done) {
			h2b_ic_finish(ic);
			continue;
		}
		if (u->connected && what && strcmp(what, "protocol"))
			b->st.upstream_reset++; /* the connection ended under it */
		h2b_ic_fail(ic, what ? what : "reset");
	}
	nghttp2_session_del(u->ng);
	u->ng = NULL;
	bm_conn_destroy(u->c);
	u->c = NULL;
	bm_ev_defer(b->loop, &u->dead, up_free_fn);
	h2b_cluster_kick(p->cl); /* a connection slot of the cluster is free */
	h2b_pool_put(b, p);
}

/* The endpoint is done with or broke the session: which failure its streams are told. */
static const char *up_failure(const struct h2b_up *u)
{
	return u->proto_err ? "protocol" : "reset";
}

void h2b_up_service(struct h2b_up *u)
{
	struct bm_conn *c = u->c;
	bool want_wr;

	if (u->closed || !u->connected)
		return;
	if (u->draining && !u->n_streams)
		nghttp2_session_terminate_session(u->ng, NGHTTP2_NO_ERROR); /* a GOAWAY, best effort */
	if (h2_io_send(u->ng, c, u->b->o.buf_size) < 0) {
		h2b_up_close(u, up_failure(u));
		return;
	}
	if (u->draining && !u->n_streams) {
		h2b_up_close(u, NULL);
		return;
	}
	if (c->rd_eof || c->failed || (h2_io_done(u->ng) && !bm_buf_pending(&c->out))) {
		h2b_up_close(u, up_failure(u));
		return;
	}
	want_wr = bm_buf_pending(&c->out) || nghttp2_session_want_write(u->ng);
	if (!u->n_streams && !bm_buf_pending(&c->in) && !bm_buf_pending(&c->out)) {
		bm_buf_release(&c->in); /* idle: no buffer memory */
		bm_buf_release(&c->out);
	}
	if (bm_conn_want(c, true, want_wr))
		h2b_up_close(u, "reset");
}

static void up_event(struct bm_conn *c, uint32_t events)
{
	struct h2b_up *u = c->data;

	if (!u->connected) {
		int rc = bm_conn_connected(c);

		if (rc == BM_AGAIN)
			return;
		if (rc == BM_ERROR) {
			u->b->st.upstream_cx_fail++;
			h2b_up_close(u, "connect");
			return;
		}
		u->connected = true;
		bm_ev_timer_cancel(u->b->loop, &u->t_conn);
		if (!u->n_streams)
			bm_ev_timer_arm(u->b->loop, &u->t_idle, idle_ms(u));
		h2b_up_service(u);
		return;
	}
	if ((events & BM_EV_ERROR) && bm_conn_check_error(c)) {
		h2b_up_close(u, up_failure(u));
		return;
	}
	for (int i = 0; i < 16 && (events & BM_EV_READ); i++) {
		ssize_t n = bm_conn_fill(c);

		if (n < 0) {
			h2b_up_close(u, up_failure(u));
			return;
		}
		if (h2_io_recv(u->ng, c)) { /* flooding, or no memory */
			h2b_up_close(u, "protocol");
			return;
		}
		if (n == 0)
			break;
	}
	h2b_up_service(u);
}

static void up_conn_timeout(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct h2b_up *u = t->data;

	(void)l;
	u->b->st.upstream_cx_fail++;
	h2b_up_close(u, "connect");
}

static void up_idle_timeout(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct h2b_up *u = t->data;

	(void)l;
	if (u->n_streams)
		return;
	u->draining = true;
	h2b_up_service(u);
}

struct h2b_up *h2b_up_open(struct h2b_pool *p)
{
	struct bm_h2_back *b = p->b;
	const struct bm_h2_opts *o = &b->o;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->buf_size },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, o->max_header_list },
	};
	uint64_t window = (uint64_t)o->max_concurrent_streams * o->buf_size;
	struct bm_conn *c = NULL;
	struct h2b_up *u = NULL;
	uint32_t ms;
	int err = 0, rc;

	rc = bm_conn_connect(b->loop, &p->addr, o->buf_size, o->buf_size + H2_OUT_SLACK, &c, &err);
	if (rc == BM_ERROR) {
		b->st.upstream_cx_fail++;
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		goto cleanup;
	bm_ev_timer_init(&u->t_conn, up_conn_timeout, u);
	bm_ev_timer_init(&u->t_idle, up_idle_timeout, u);
	if (nghttp2_session_client_new2(&u->ng, b->cbs, u, b->ngopt))
		goto cleanup;
	/* The connection's window holds every stream's: one slow reader stalls only itself. */
	if (window > INT32_MAX)
		window = INT32_MAX;
	if (nghttp2_submit_settings(u->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) ||
	    nghttp2_session_set_local_window_size(u->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)window))
		goto cleanup;
	u->b = b;
	u->pool = p;
	u->c = c;
	c->on_event = up_event;
	c->data = u;
	ms = p->cl->lim.connect_timeout_ms ? p->cl->lim.connect_timeout_ms : o->connect_timeout_ms;
	u->connected = rc == BM_OK;
	if (u->connected ? bm_conn_want(c, true, true)
			 : bm_conn_want(c, false, true) || bm_ev_timer_arm(b->loop, &u->t_conn, ms))
		goto cleanup;
	u->next = p->ups;
	if (p->ups)
		p->ups->prev = u;
	p->ups = u;
	p->n_ups++;
	p->refs++;
	p->cl->n_conns++;
	b->st.upstream_cx++;
	b->st.upstream_cx_active++;
	return u;
cleanup:
	if (u) {
		bm_ev_timer_cancel(b->loop, &u->t_conn);
		if (u->ng)
			nghttp2_session_del(u->ng);
		free(u);
	}
	bm_conn_destroy(c);
	return NULL;
}
