/* Routing and upstream attempts: the router's decision applied (respond, delay, forward),
 * connects or waits (circuit breaking), Envoy's retry rules and back-off, route and per-try
 * timeouts, error replies, and each attempt's outcome told. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "h1_internal.h"

#define RESET_BEFORE "upstream connect error or disconnect/reset before headers. "

/* Envoy's router sets this on a circuit breaker's 503. */
static const struct bm_http_edits overloaded = {
	.set = { { "x-envoy-overloaded", "true" } },
	.n_set = 1,
};

static void arm_route_timeout(struct h1_sess *s)
{
	struct bm_evloop *l = s->px->loop;

	/* Envoy's route timeout starts once the whole request was read (and after a fault
	 * delay): a long upload is not cut by it. */
	if (s->t_req_armed || !s->d.timeout_ms || !s->req_done)
		return;
	s->t_req_armed = true;
	s->deadline = bm_evloop_now(l) + s->d.timeout_ms;
	bm_ev_timer_arm(l, &s->t_req, s->d.timeout_ms);
}

static void arm_try_timeout(struct h1_sess *s)
{
	if (!s->d.per_try_timeout_ms || !s->req_done || !s->up || s->resp_started)
		return;
	bm_ev_timer_arm(s->px->loop, &s->t_try, s->d.per_try_timeout_ms);
}

/* Every string of the decision, for own_decision. */
static size_t decision_strings(struct bm_l7_decision *d, const char ***v)
{
	struct bm_http_edits *e[2] = { &d->req_edits, &d->resp_edits };
	size_t n = 0;

	v[n++] = &d->rewrite_path;
	v[n++] = &d->rewrite_authority;
	v[n++] = &d->location;
	v[n++] = &d->body;
	v[n++] = &d->route_name;
	v[n++] = &d->cluster;
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < e[k]->n_remove && i < BM_L7_MAX_EDITS; i++)
			v[n++] = &e[k]->remove[i].name;
		for (size_t i = 0; i < e[k]->n_set && i < BM_L7_MAX_EDITS; i++) {
			v[n++] = &e[k]->set[i].name;
			v[n++] = &e[k]->set[i].value;
		}
		for (size_t i = 0; i < e[k]->n_add && i < BM_L7_MAX_EDITS; i++) {
			v[n++] = &e[k]->add[i].name;
			v[n++] = &e[k]->add[i].value;
		}
	}
	return n;
}

/* The decision's strings and retry codes copied into the session: what the router handed out
 * may change (its next call) or go (a new config) before this request ends. -1 when they do
 * not fit (H1_DSTR_MAX). */
static int own_decision(struct h1_sess *s)
{
	const char **v[6 + 2 * 5 * BM_L7_MAX_EDITS];
	size_t off[sizeof(v) / sizeof(v[0])];
	size_t n = decision_strings(&s->d, v), total = 0;

	for (size_t i = 0; i < n; i++)
		if (*v[i])
			total += strlen(*v[i]) + 1;
	bm_buf_consume(&s->dstr, bm_buf_pending(&s->dstr));
	if (total > H1_DSTR_MAX || (total && bm_buf_reserve(&s->dstr, total)))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!*v[i])
			continue;
		off[i] = bm_buf_pending(&s->dstr);
		if (bm_buf_append(&s->dstr, *v[i], strlen(*v[i]) + 1))
			return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (*v[i])
			*v[i] = bm_buf_head(&s->dstr) + off[i];
	if (s->d.n_retry_codes > sizeof(s->rcodes) / sizeof(s->rcodes[0]))
		s->d.n_retry_codes = sizeof(s->rcodes) / sizeof(s->rcodes[0]);
	if (s->d.n_retry_codes)
		memcpy(s->rcodes, s->d.retry_codes, s->d.n_retry_codes * sizeof(s->rcodes[0]));
	s->d.retry_codes = s->rcodes;
	return 0;
}

void h1_route(struct h1_sess *s)
{
	memset(&s->d, 0, sizeof(s->d));
	s->req.attempt = s->attempt;
	s->px->route(s->px->route_arg, &s->req, &s->d);
	if (own_decision(s)) {
		memset(&s->d, 0, sizeof(s->d));
		s->close_after = true;
		h1_local_reply(s, 500, "route decision too large", NULL, NULL);
		return;
	}
	if (s->d.action == BM_L7_RESPOND && s->d.close)
		s->close_after = true;
	switch (s->d.action) {
	case BM_L7_RESPOND:
		h1_local_reply(s, s->d.status, s->d.body, s->d.location, &s->d.resp_edits);
		return;
	case BM_L7_FORWARD:
		if (s->attempt == 0 && s->d.mirror) {
			s->mirror_pending = true;
			s->mirror_up = s->d.mirror_upstream;
			s->mirror_proto = s->d.mirror_proto;
			if (s->req_done)
				h1_shadow_send(s);
		}
		if (s->attempt == 0 && s->d.delay_ms) {
			s->waiting_backoff = false;
			h1_set_state(s, H1_WAIT);
			bm_ev_timer_arm(s->px->loop, &s->t_wait, s->d.delay_ms);
			return;
		}
		h1_attempt_start(s);
		return;
	default:
		h1_local_reply(s, 404, "route not found", NULL, NULL);
	}
}

static void attempt_connected(struct h1_sess *s)
{
	struct h1_up *u = s->up;

	bm_ev_timer_cancel(s->px->loop, &u->timer);
	if (h1_req_write_head(s, &u->c->out) || h1_req_write_replay(s, &u->c->out)) {
		/* Only a router's edits beyond every bound get here. */
		s->close_after = true;
		h1_local_reply(s, 500, "request head too large to forward", NULL, NULL);
		return;
	}
	u->nreq++;
	if (s->expect_100 && !s->sent_100 && !s->req_done) {
		/* The engine answers 100-continue itself (Expect is not forwarded), once an
		 * upstream is ready for the body. */
		if (bm_buf_append(&s->cli->out, "HTTP/1.1 100 Continue\r\n\r\n", 25)) {
			h1_sess_abort(s);
			return;
		}
		s->sent_100 = true;
	}
	h1_set_state(s, H1_PROXY);
}

/* A connection for the attempt, or a place in its cluster's queue (h1_pool_get). */
static void attempt_acquire(struct h1_sess *s)
{
	struct h1_up *u;
	int err = 0;

	switch (h1_pool_get(s, &err)) {
	case H1_GET_QUEUED:
		h1_set_state(s, H1_PENDING);
		return;
	case H1_GET_OVERFLOW:
		h1_attempt_fail(s, H1_FAIL_OVERFLOW);
		return;
	case H1_GET_FAIL: /* the endpoint refused at once; our own shortage tells nothing */
		s->attempt_live = err != ENOMEM && err != EMFILE && err != ENFILE && err != ENOBUFS &&
				  err != EPROTONOSUPPORT;
		h1_attempt_fail(s, H1_FAIL_CONNECT);
		return;
	case H1_GET_OK:
		break;
	}
	u = s->up;
	s->attempt_live = true;
	u->c->on_event = h1_up_event;
	u->c->data = u;
	arm_try_timeout(s);
	if (u->c->connecting) {
		h1_set_state(s, H1_CONNECT);
		return;
	}
	attempt_connected(s);
}

void h1_attempt_start(struct h1_sess *s)
{
	h1_resp_reset(s);
	arm_route_timeout(s); /* Envoy's covers the time spent pending */
	attempt_acquire(s);
}

void h1_outcome(struct h1_sess *s, enum bm_l7_outcome what, int status)
{
	struct bm_h1_proxy *px = s->px;

	if (!s->attempt_live)
		return;
	s->attempt_live = false;
	h1_retry_release(s); /* a retry is in flight until its own outcome */
	if (px->outcome)
		px->outcome(px->outcome_arg, s->d.cluster, &s->d.upstream, what, status);
}

bool h1_retry_wanted(struct h1_sess *s, enum h1_fail why, int status)
{
	uint32_t on = s->d.retry_on, any5xx = BM_RETRY_5XX | BM_RETRY_GATEWAY_ERROR;
	bool match = false;

	if (s->attempt >= s->d.retries)
		return false;
	switch (why) {
	case H1_FAIL_CONNECT:
		match = on & (any5xx | BM_RETRY_CONNECT_FAILURE);
		break;
	case H1_FAIL_RESET:
	case H1_FAIL_PROTOCOL:
		match = on & (any5xx | BM_RETRY_RESET);
		break;
	case H1_FAIL_REFUSED: /* a reset too, and refused-stream's own case */
		match = on & (any5xx | BM_RETRY_RESET | BM_RETRY_REFUSED_STREAM);
		break;
	case H1_FAIL_PER_TRY: /* Envoy judges it as a 504 */
		match = on & any5xx;
		break;
	case H1_FAIL_STATUS:
		match = ((on & BM_RETRY_5XX) && status >= 500 && status <= 599) ||
			((on & BM_RETRY_GATEWAY_ERROR) && status >= 502 && status <= 504) ||
			((on & BM_RETRY_RETRIABLE_4XX) && status == 409);
		for (size_t i = 0; i < s->d.n_retry_codes && !match; i++)
			match = s->d.retry_codes[i] == status;
		break;
	case H1_FAIL_OVERFLOW:
		break;
	}
	if (!match)
		return false;
	if (s->replay_overflow) { /* part of the body is gone: it cannot be sent again */
		s->px->st.overflows++;
		return false;
	}
	s->backoff_ms = h1_backoff_ms(s->px, s->attempt + 1);
	if (s->deadline && bm_evloop_now(s->px->loop) + s->backoff_ms >= s->deadline)
		return false;
	if (!h1_retry_allowed(s)) { /* max_retries in flight: answered as if exhausted */
		s->px->st.retry_overflow++;
		return false;
	}
	return true;
}

void h1_attempt_fail(struct h1_sess *s, enum h1_fail why)
{
	struct bm_h1_proxy *px = s->px;
	bool reused = s->up && s->up->reused, retried = s->attempt > 0;
	uint64_t got = s->resp_bytes;
	const char *reason;
	int status;

	if (s->resp_started) {
		h1_sess_abort(s);
		return;
	}
	if (why == H1_FAIL_RESET || why == H1_FAIL_PROTOCOL || why == H1_FAIL_REFUSED)
		px->st.upstream_reset++;
	h1_upstream_detach(s);
	bm_ev_timer_cancel(px->loop, &s->t_try);
	/* The keep-alive race: the server closed a pooled connection as we reused it. Sent
	 * again once on a new connection, as nothing of the response came; the same attempt,
	 * so no outcome for the stale connection. */
	if (why == H1_FAIL_RESET && reused && !got && !s->reconnected && s->idempotent &&
	    !s->replay_overflow) {
		s->reconnected = true;
		h1_attempt_start(s);
		return;
	}
	if (why == H1_FAIL_CONNECT)
		h1_outcome(s, BM_L7_OUT_CONNECT_FAIL, 0);
	else if (why == H1_FAIL_RESET || why == H1_FAIL_PROTOCOL || why == H1_FAIL_REFUSED)
		h1_outcome(s, BM_L7_OUT_RESET, 0);
	else if (why == H1_FAIL_PER_TRY)
		h1_outcome(s, BM_L7_OUT_TIMEOUT, 0);
	h1_retry_release(s);
	if (why == H1_FAIL_STATUS || h1_retry_wanted(s, why, 0)) {
		h1_retry_charge(s);
		s->attempt++;
		px->st.retries++;
		s->waiting_backoff = true;
		h1_set_state(s, H1_WAIT);
		bm_ev_timer_arm(px->loop, &s->t_wait, s->backoff_ms);
		return;
	}
	switch (why) {
	case H1_FAIL_CONNECT:
		status = 503, reason = "connection failure";
		break;
	case H1_FAIL_RESET:
		status = 503, reason = "connection termination";
		break;
	case H1_FAIL_REFUSED:
		status = 503, reason = "remote refused stream reset";
		break;
	case H1_FAIL_OVERFLOW: /* counted where the limit was hit */
		status = 503, reason = "overflow";
		break;
	case H1_FAIL_PER_TRY:
		h1_local_reply(s, 504, "upstream request timeout", NULL, NULL);
		return;
	default:
		status = 502, reason = "protocol error";
		break;
	}
	{
		char body[160];

		snprintf(body, sizeof(body), RESET_BEFORE "%sreset reason: %s",
			 retried ? "retried and the latest " : "", reason);
		h1_local_reply(s, status, body, NULL, why == H1_FAIL_OVERFLOW ? &overloaded : NULL);
	}
}

void h1_req_complete(struct h1_sess *s)
{
	s->req_done = true;
	if (s->req_chunked && s->up && h1_last_chunk(&s->up->c->out, &s->rq, true))
		s->up->c->failed = true;
	if (s->mirror_pending)
		h1_shadow_send(s);
	arm_route_timeout(s);
	arm_try_timeout(s);
}

void h1_exchange_done(struct h1_sess *s)
{
	struct bm_h1_proxy *px = s->px;
	struct h1_up *u = s->up;
	uint32_t max = u ? h1_up_max_requests(px, u) : 0;

	bm_ev_timer_cancel(px->loop, &s->t_req);
	bm_ev_timer_cancel(px->loop, &s->t_try);
	h1_retry_release(s);
	if (u) {
		s->up = NULL;
		if (s->resp_keepalive && s->req_done && !s->upgraded && !u->c->rd_eof &&
		    !u->c->failed && !bm_buf_pending(&u->c->in) && !bm_buf_pending(&u->c->out) &&
		    (!max || u->nreq < max))
			h1_pool_put(px, u);
		else
			h1_pool_drop(px, u);
	}
	if (s->close_after || px->draining || !s->req_done ||
	    (s->cli->rd_eof && !bm_buf_pending(&s->cli->in)))
		h1_start_closing(s);
	else
		h1_next_request(s);
}

void h1_up_event(struct bm_conn *c, uint32_t events)
{
	struct h1_up *u = c->data;
	struct h1_sess *s = u->s;

	if (events & BM_EV_ERROR)
		bm_conn_check_error(c);
	if (c->connecting) {
		int rc = c->failed ? BM_ERROR : bm_conn_connected(c);

		if (rc == BM_AGAIN)
			return;
		if (rc == BM_ERROR) {
			s->px->st.upstream_cx_fail++;
			h1_attempt_fail(s, H1_FAIL_CONNECT);
			if (!s->closed)
				h1_step(s);
			return;
		}
		attempt_connected(s);
	}
	if (!s->closed)
		h1_step(s);
}

void h1_timer_req(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct h1_sess *s = t->data;

	(void)l;
	s->px->st.timeouts++;
	if (s->resp_started) {
		h1_sess_abort(s);
		return;
	}
	h1_outcome(s, BM_L7_OUT_TIMEOUT, 0); /* none when it waited (back-off, queue) */
	h1_local_reply(s, 504, "upstream request timeout", NULL, NULL);
	if (!s->closed)
		h1_step(s);
}

void h1_timer_try(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct h1_sess *s = t->data;

	(void)l;
	s->px->st.per_try_timeouts++;
	h1_attempt_fail(s, H1_FAIL_PER_TRY);
	if (!s->closed)
		h1_step(s);
}

void h1_timer_wait(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct h1_sess *s = t->data;

	(void)l;
	if (s->state == H1_PENDING) { /* a connection or a slot freed up */
		attempt_acquire(s);
	} else if (s->waiting_backoff) {
		s->waiting_backoff = false;
		s->req.prev_upstream = s->d.upstream; /* Istio's previous_hosts: try another */
		h1_route(s); /* attempt n: the router picks again */
	} else {
		h1_attempt_start(s);
	}
	if (!s->closed)
		h1_step(s);
}
