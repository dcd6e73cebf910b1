/* The HTTP/2 front's internal connections: a socketpair per exchange whose other end the
 * HTTP/1.1 engine serves, the bytes moved both ways for a stream, and keep-alive reuse. */
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "h2_internal.h"

static void ic_free(struct bm_ev_defer *d)
{
	free(bm_container_of(d, struct h2f_ic, dead));
}

static void unpark(struct h2f_ic *ic)
{
	struct h2f_cx *cx = ic->cx;

	if (!ic->parked)
		return;
	ic->parked = false;
	if (ic->prev)
		ic->prev->next = ic->next;
	else
		cx->parked = ic->next;
	if (ic->next)
		ic->next->prev = ic->prev;
	ic->prev = ic->next = NULL;
	cx->n_parked--;
}

void h2f_ic_close(struct h2f_ic *ic)
{
	struct bm_evloop *l = ic->cx->f->loop;

	if (ic->closed)
		return;
	ic->closed = true;
	if (ic->s) {
		ic->s->ic = NULL;
		ic->s = NULL;
	}
	unpark(ic);
	bm_ev_timer_cancel(l, &ic->t_kick);
	/* The engine sees the close: a request under way there is dropped. */
	bm_conn_destroy(ic->c);
	bm_ev_defer(l, &ic->dead, ic_free);
}

void h2f_ic_release(struct h2f_ic *ic, bool reuse)
{
	struct h2f_cx *cx = ic->cx;
	struct bm_conn *c = ic->c;

	if (ic->s) {
		ic->s->ic = NULL;
		ic->s = NULL;
	}
	if (!reuse || ic->wr_dead || cx->closed || cx->lingering || cx->f->draining ||
	    cx->n_parked >= H2F_PARKED_MAX || bm_buf_pending(&c->in) || bm_buf_pending(&c->out) ||
	    c->rd_eof || c->failed || bm_conn_want(c, true, false)) {
		h2f_ic_close(ic);
		return;
	}
	bm_ev_timer_cancel(cx->f->loop, &ic->t_kick);
	bm_buf_release(&c->in);
	bm_buf_release(&c->out);
	c->rd_chunk = 0;
	ic->parked = true;
	ic->parked_at = bm_evloop_now(cx->f->loop);
	ic->prev = NULL;
	ic->next = cx->parked;
	if (ic->next)
		ic->next->prev = ic;
	cx->parked = ic;
	cx->n_parked++;
	h2f_cx_arm(cx);
}

void h2f_ic_kick(struct h2f_ic *ic)
{
	if (!ic->closed)
		bm_ev_timer_arm(ic->cx->f->loop, &ic->t_kick, 0);
}

/* The engine closed (or failed) before the response ended: RST_STREAM(INTERNAL_ERROR) once
 * the head went out, else 502. */
static void ic_fail(struct h2f_ic *ic)
{
	struct h2f_stream *s = ic->s;
	struct h2f_cx *cx = ic->cx;

	h2f_ic_close(ic);
	if (s->rs_submitted)
		nghttp2_submit_rst_stream(cx->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
	else
		h2f_local_reply(s, 502, "the engine's connection closed before its response\n");
}

/* Anything from the engine on a parked connection (its idle timeout's FIN, or bytes that
 * answer nothing) ends it. */
static void parked_event(struct h2f_ic *ic)
{
	if (bm_conn_fill(ic->c) != 0 || ic->c->rd_eof || bm_buf_pending(&ic->c->in)) {
		h2f_ic_close(ic);
		h2f_cx_arm(ic->cx);
	}
}

static void ic_interest(struct h2f_ic *ic)
{
	struct h2f_stream *s = ic->s;
	struct bm_conn *c = ic->c;
	bool rd = !s->rs_done && !c->rd_eof &&
		  bm_buf_pending(&s->rs_body) < s->cx->f->o.buf_size && bm_buf_room(&c->in);

	if (bm_conn_want(c, rd, bm_buf_pending(&c->out) != 0))
		ic_fail(ic);
}

static void ic_run(struct h2f_ic *ic)
{
	struct h2f_stream *s = ic->s;
	struct h2f_cx *cx = ic->cx;
	struct bm_conn *c = ic->c;
	int round;

	if (ic->closed)
		return;
	if (!s) {
		parked_event(ic);
		return;
	}
	for (round = 0; round < 16; round++) {
		bool prog = false;

		/* The request: staged bytes framed into out, out to the engine, the window. */
		if (ic->wr_dead) {
			h2f_stream_discard(s); /* the engine answered early and stopped reading */
		} else {
			size_t before;
			int rc = h2f_request_pump(s);

			if (rc < 0) { /* an answer already whole still goes out */
				if (s->rs_done)
					h2f_ic_close(ic);
				else
					ic_fail(ic);
				break;
			}
			prog |= rc > 0;
			before = bm_buf_pending(&c->out);
			if (before && bm_conn_flush(c) == BM_ERROR) {
				/* Its answer may still be there: the read side decides. */
				bm_buf_consume(&c->out, bm_buf_pending(&c->out));
				c->failed = false;
				ic->wr_dead = true;
			}
			prog |= bm_buf_pending(&c->out) != before;
			h2f_request_sent(s);
		}
		/* The response. */
		if (!s->rs_done)
			prog |= h2f_resp_pump(s);
		if (ic->closed || ic->s != s)
			break;
		if (!s->rs_done && (s->rs_bad || c->failed ||
				    (c->rd_eof && !bm_buf_pending(&c->in) && !h2f_resp_eof(s)))) {
			ic_fail(ic);
			break;
		}
		if (s->rs_done) {
			/* Over once the request is out too; an engine that answered early and
			 * closes is not waited for. */
			if (s->rq_written && !bm_buf_pending(&c->out) && !ic->wr_dead)
				h2f_ic_release(ic, s->rs_keepalive);
			else if (ic->wr_dead || c->failed || c->rd_eof || !s->rs_keepalive)
				h2f_ic_close(ic);
			if (ic->s != s)
				break;
		}
		if (!prog)
			break;
	}
	if (round == 16)
		h2f_ic_kick(ic);
	if (!ic->closed && ic->s == s)
		ic_interest(ic);
	h2f_cx_send(cx);
}

static void ic_event(struct bm_conn *c, uint32_t events)
{
	if (events & BM_EV_ERROR)
		bm_conn_check_error(c);
	ic_run(c->data);
}

static void ic_timer(struct bm_evloop *l, struct bm_ev_timer *t)
{
	(void)l;
	ic_run(t->data);
}

struct h2f_ic *h2f_ic_get(struct h2f_cx *cx)
{
	struct bm_h2_front *f = cx->f;
	struct h2f_ic *ic = cx->parked;
	int sv[2];

	if (ic) {
		unpark(ic);
		return ic;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return NULL;
	ic = calloc(1, sizeof(*ic));
	if (!ic) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	ic->cx = cx;
	ic->c = bm_conn_new(f->loop, sv[0], f->o.buf_size, f->ic_out_max);
	if (!ic->c) {
		close(sv[1]);
		free(ic);
		return NULL;
	}
	/* The engine takes sv[1] (and closes it on failure: draining, memory). */
	if (bm_h1_proxy_serve_ex(f->px, sv[1], &cx->peer)) {
		bm_conn_destroy(ic->c);
		free(ic);
		return NULL;
	}
	ic->c->on_event = ic_event;
	ic->c->data = ic;
	bm_ev_timer_init(&ic->t_kick, ic_timer, ic);
	return ic;
}
