/* A client connection's life in the engine: the state machine that moves bytes between the
 * client, the parsers and the upstream, its idle/slowloris timer, tunnels, and closing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "h1_internal.h"

static void sess_free(struct bm_ev_defer *d)
{
	struct h1_sess *s = bm_container_of(d, struct h1_sess, dead);

	h1_head_free(&s->rq);
	h1_head_free(&s->rs);
	bm_buf_release(&s->replay);
	bm_buf_release(&s->dstr);
	free(s->hv);
	free(s);
}

void h1_sess_close(struct h1_sess *s)
{
	struct bm_h1_proxy *px = s->px;
	struct bm_evloop *l = px->loop;

	if (s->closed)
		return;
	s->closed = true;
	bm_ev_timer_cancel(l, &s->t_idle);
	bm_ev_timer_cancel(l, &s->t_req);
	bm_ev_timer_cancel(l, &s->t_try);
	bm_ev_timer_cancel(l, &s->t_wait);
	bm_ev_timer_cancel(l, &s->t_kick);
	h1_upstream_detach(s);
	h1_retry_release(s);
	bm_conn_destroy(s->cli);
	if (s->prev)
		s->prev->next = s->next;
	else
		px->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	px->st.downstream_cx_active--;
	bm_ev_defer(l, &s->dead, sess_free);
}

/* A reset: the client sees the connection cut (RST), as Envoy resets a stream it cannot
 * finish, not a FIN that could pass for a complete close-delimited body. */
void h1_sess_abort(struct h1_sess *s)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (s->closed)
		return;
	if (!bm_conn_closed(s->cli))
		setsockopt(s->cli->ev.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	h1_sess_close(s);
}

static uint64_t last_activity(const struct h1_sess *s)
{
	uint64_t t = s->cli->last_io;

	if (s->up && s->up->c->last_io > t)
		t = s->up->c->last_io;
	return t;
}

static uint64_t idle_deadline(const struct h1_sess *s)
{
	const struct bm_h1_opts *o = &s->px->o;

	switch (s->state) {
	case H1_IDLE:
		return s->idle_since + o->idle_timeout_ms;
	case H1_HEAD:
		return s->head_start + o->head_timeout_ms;
	case H1_TUNNEL:
		return last_activity(s) + o->tunnel_idle_ms;
	case H1_CLOSING: /* the last bytes may still be on their way to a slow reader */
		if (!s->cli->wr_shut)
			return last_activity(s) + o->stream_idle_ms;
		return s->close_start + H1_LINGER_MS;
	default:
		return last_activity(s) + o->stream_idle_ms;
	}
}

static void arm_idle(struct h1_sess *s)
{
	uint64_t d = idle_deadline(s), now = bm_evloop_now(s->px->loop);

	bm_ev_timer_arm(s->px->loop, &s->t_idle, d > now ? d - now : 0);
}

void h1_set_state(struct h1_sess *s, enum h1_state st)
{
	uint64_t now = bm_evloop_now(s->px->loop);

	s->state = st;
	if (st == H1_IDLE)
		s->idle_since = now;
	else if (st == H1_HEAD)
		s->head_start = now;
	arm_idle(s);
}

static void timer_idle(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct h1_sess *s = t->data;
	uint64_t d = idle_deadline(s), now = bm_evloop_now(l);

	if (now < d) { /* there was activity since it was armed */
		bm_ev_timer_arm(l, t, d - now);
		return;
	}
	switch (s->state) {
	case H1_HEAD: /* slowloris: the head did not arrive in time */
		s->px->st.head_timeouts++;
		s->close_after = true;
		h1_local_reply(s, 408, "request header timeout", NULL, NULL);
		break;
	case H1_WAIT:
	case H1_PENDING:
	case H1_CONNECT:
	case H1_PROXY:
		if (s->resp_started) {
			h1_sess_abort(s);
			return;
		}
		if (s->req_done) /* the upstream's silence, not the client's */
			h1_outcome(s, BM_L7_OUT_TIMEOUT, 0);
		s->close_after = true;
		h1_local_reply(s, 408, "stream timeout", NULL, NULL);
		break;
	default: /* keep-alive idle, tunnel idle, linger over */
		h1_sess_close(s);
		return;
	}
	if (!s->closed)
		h1_step(s);
}

static void timer_kick(struct bm_evloop *l, struct bm_ev_timer *t)
{
	(void)l;
	h1_step(t->data);
}

void h1_kick(struct h1_sess *s)
{
	bm_ev_timer_arm(s->px->loop, &s->t_kick, 0);
}

void h1_start_closing(struct h1_sess *s)
{
	h1_upstream_detach(s);
	h1_set_state(s, H1_CLOSING);
}

void h1_next_request(struct h1_sess *s)
{
	h1_req_reset(s);
	s->close_after = false;
	if (!bm_buf_pending(&s->cli->in))
		bm_buf_release(&s->cli->in);
	if (!bm_buf_pending(&s->cli->out))
		bm_buf_release(&s->cli->out);
	h1_set_state(s, H1_IDLE);
}

/* ---- per state ---- */

static bool step_head(struct h1_sess *s)
{
	struct bm_conn *c = s->cli;
	ssize_t n;
	int rc;

	/* Responses the client does not read hold back its next requests. */
	if (bm_buf_pending(&c->out) >= s->px->o.buf_size)
		return false;
	if (bm_buf_pending(&c->in)) {
		if (s->state == H1_IDLE)
			h1_set_state(s, H1_HEAD);
		rc = h1_req_feed_head(s);
		if (rc == 1)
			h1_req_begin(s);
		if (rc != 0)
			return true;
	}
	n = bm_conn_fill(c);
	if (n < 0) {
		h1_sess_abort(s);
		return false;
	}
	if (n > 0)
		return true;
	if (c->rd_eof) {
		/* Half a head (nothing to answer) or none: earlier responses still go out. */
		h1_start_closing(s);
		return true;
	}
	return false;
}

/* While the delay, back-off, queue or connect runs: the client's next bytes are buffered.
 * A client that leaves (FIN) while queued gives up its place at once, as Envoy resets a
 * downstream stream on FIN. */
static bool step_read_ahead(struct h1_sess *s)
{
	ssize_t n = bm_conn_fill(s->cli);

	if (n < 0) {
		h1_sess_abort(s);
		return false;
	}
	if (s->state == H1_PENDING && s->cli->rd_eof) {
		h1_sess_close(s);
		return false;
	}
	return n > 0;
}

static void tunnel_start(struct h1_sess *s)
{
	struct bm_buf *in = &s->up->c->in;

	bm_ev_timer_cancel(s->px->loop, &s->t_req);
	bm_ev_timer_cancel(s->px->loop, &s->t_try);
	/* What came after the 101 head goes to the client right behind it. */
	if (bm_buf_append(&s->cli->out, bm_buf_head(in), bm_buf_pending(in))) {
		h1_sess_abort(s);
		return;
	}
	bm_buf_consume(in, bm_buf_pending(in));
	s->px->st.upgrades++;
	h1_set_state(s, H1_TUNNEL);
}

static bool step_proxy(struct h1_sess *s)
{
	struct bm_conn *c = s->cli, *u = s->up->c;
	bool prog;
	size_t before;
	ssize_t n;

	n = bm_conn_fill(c);
	if (n < 0) {
		h1_sess_abort(s);
		return false;
	}
	prog = n > 0;
	/* The response first: an upstream that answers early and closes is heard before a
	 * write of more body fails on it. */
	if (!s->resp_done) {
		n = bm_conn_fill(u);
		if (n < 0) {
			h1_attempt_fail(s, H1_FAIL_RESET);
			return true;
		}
		prog |= n > 0;
	}
	prog |= h1_resp_feed(s);
	if (s->closed || s->state != H1_PROXY)
		return true;
	if (u->rd_eof && !bm_buf_pending(&u->in) && !s->resp_done) {
		h1_resp_eof(s);
		return true;
	}
	if (!s->resp_done || !s->req_done) {
		prog |= h1_req_feed_body(s);
		if (s->closed || s->state != H1_PROXY)
			return true;
	}
	before = bm_buf_pending(&u->out);
	if (before && bm_conn_flush(u) == BM_ERROR) {
		if (!s->resp_done) {
			h1_attempt_fail(s, H1_FAIL_RESET);
			return true;
		}
		bm_buf_consume(&u->out, bm_buf_pending(&u->out)); /* answered: the rest is moot */
	}
	prog |= bm_buf_pending(&u->out) != before;
	if (!s->req_done && c->rd_eof && !bm_buf_pending(&c->in)) {
		h1_sess_abort(s); /* the client went away in the middle of its body */
		return true;
	}
	if (s->resp_done && s->upgraded) {
		tunnel_start(s);
		return true;
	}
	if (s->resp_done && (s->req_done || s->close_after)) {
		h1_exchange_done(s);
		return true;
	}
	return prog;
}

static void step_tunnel(struct h1_sess *s)
{
	struct bm_conn *c = s->cli, *u = s->up->c;
	int rc;

	/* The 101 head (and what followed it) goes out before any piped byte. */
	if (bm_buf_pending(&c->out) || bm_buf_pending(&u->out)) {
		if ((bm_buf_pending(&c->out) && bm_conn_flush(c) == BM_ERROR) ||
		    (bm_buf_pending(&u->out) && bm_conn_flush(u) == BM_ERROR)) {
			h1_sess_close(s);
			return;
		}
		if (bm_buf_pending(&c->out) || bm_buf_pending(&u->out)) {
			bm_conn_want(c, false, bm_buf_pending(&c->out) != 0);
			bm_conn_want(u, false, bm_buf_pending(&u->out) != 0);
			return;
		}
	}
	rc = bm_conn_pipe(c, u);
	if (rc != BM_AGAIN)
		h1_sess_close(s);
}

static bool step_closing(struct h1_sess *s)
{
	struct bm_conn *c = s->cli;
	int i, rc;

	if (bm_buf_pending(&c->out) || !c->wr_shut) {
		rc = bm_conn_shutdown(c);
		if (rc == BM_ERROR) {
			h1_sess_close(s);
			return false;
		}
		if (rc == BM_AGAIN)
			return false;
		s->close_start = bm_evloop_now(s->px->loop); /* the linger runs from our FIN */
		arm_idle(s);
	}
	/* Our FIN is out: what the client still sends is dropped until its FIN (closing with
	 * unread input would send RST, which can destroy the response in its receive queue). */
	for (i = 0; i < 4 && !c->rd_eof; i++) {
		bm_buf_consume(&c->in, bm_buf_pending(&c->in));
		if (bm_conn_fill(c) <= 0)
			break;
	}
	bm_buf_consume(&c->in, bm_buf_pending(&c->in));
	if (c->rd_eof || c->failed)
		h1_sess_close(s);
	return false;
}

static void update_interest(struct h1_sess *s)
{
	struct bm_conn *c = s->cli, *u = s->up ? s->up->c : NULL;
	bool rd = !c->rd_eof && bm_buf_room(&c->in) > 0;

	if (s->state == H1_TUNNEL)
		return;
	/* step_head reads nothing while the client leaves its responses unread. */
	if ((s->state == H1_IDLE || s->state == H1_HEAD) &&
	    bm_buf_pending(&c->out) >= s->px->o.buf_size)
		rd = false;
	if (bm_conn_want(c, rd, bm_buf_pending(&c->out) != 0)) {
		h1_sess_abort(s);
		return;
	}
	if (!u)
		return;
	if (s->state == H1_CONNECT || s->state == H1_PENDING)
		rd = false;
	else
		rd = !u->rd_eof && !s->resp_done && bm_buf_room(&u->in) > 0;
	if (bm_conn_want(u, rd, u->connecting || bm_buf_pending(&u->out) != 0))
		h1_sess_abort(s);
}

void h1_step(struct h1_sess *s)
{
	int round;

	for (round = 0; round < H1_STEP_ROUNDS; round++) {
		bool prog = false;
		size_t before;

		if (s->closed)
			return;
		if (s->cli->failed) {
			h1_sess_abort(s);
			return;
		}
		switch (s->state) {
		case H1_IDLE:
		case H1_HEAD:
			prog = step_head(s);
			break;
		case H1_WAIT:
		case H1_PENDING:
		case H1_CONNECT:
			prog = step_read_ahead(s);
			break;
		case H1_PROXY:
			prog = step_proxy(s);
			break;
		case H1_TUNNEL:
			step_tunnel(s);
			return;
		case H1_CLOSING:
			step_closing(s);
			if (s->closed)
				return;
			break;
		}
		if (s->closed)
			return;
		before = bm_buf_pending(&s->cli->out);
		if (before && s->state != H1_CLOSING && s->state != H1_TUNNEL &&
		    bm_conn_flush(s->cli) == BM_ERROR) {
			h1_sess_abort(s);
			return;
		}
		if (bm_buf_pending(&s->cli->out) != before)
			prog = true;
		if (!prog)
			break;
	}
	if (s->closed)
		return;
	if (round == H1_STEP_ROUNDS)
		h1_kick(s);
	update_interest(s);
}

static void sess_event(struct bm_conn *c, uint32_t events)
{
	if (events & BM_EV_ERROR)
		bm_conn_check_error(c);
	h1_step(c->data);
}

struct h1_sess *h1_sess_new(struct bm_h1_proxy *px, int fd, const struct bm_h1_peer *peer)
{
	struct h1_sess *s = calloc(1, sizeof(*s));
	socklen_t len = sizeof(s->client);

	if (!s) {
		close(fd);
		return NULL;
	}
	s->px = px;
	s->cli = bm_conn_new(px->loop, fd, px->o.buf_size, px->cli_out_max);
	if (!s->cli) {
		free(s);
		return NULL;
	}
	if (peer->client.ss_family != AF_UNSPEC)
		s->client = peer->client;
	else if (getpeername(fd, (struct sockaddr *)&s->client, &len) < 0)
		memset(&s->client, 0, sizeof(s->client));
	h1_format_ip(&s->client, s->client_ip, sizeof(s->client_ip));
	s->orig_dst = peer->orig_dst;
	s->caller_wl = peer->caller_wl;
	s->peer_h2 = peer->flags & BM_H1_PEER_H2;
	s->cli->on_event = sess_event;
	s->cli->data = s;
	h1_head_init(&s->rq, px->arena_max, px->o.max_headers);
	h1_head_init(&s->rs, px->arena_max, px->o.max_headers);
	bm_buf_init(&s->replay, px->o.retry_buffer);
	bm_buf_init(&s->dstr, H1_DSTR_MAX);
	bm_ev_timer_init(&s->t_idle, timer_idle, s);
	bm_ev_timer_init(&s->t_req, h1_timer_req, s);
	bm_ev_timer_init(&s->t_try, h1_timer_try, s);
	bm_ev_timer_init(&s->t_wait, h1_timer_wait, s);
	bm_ev_timer_init(&s->t_kick, timer_kick, s);
	s->next = px->sessions;
	if (s->next)
		s->next->prev = s;
	px->sessions = s;
	px->st.downstream_cx++;
	px->st.downstream_cx_active++;
	h1_req_reset(s);
	h1_set_state(s, H1_IDLE);
	h1_step(s);
	return s;
}
