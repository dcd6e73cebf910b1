/* VirtualService mirror for the engine: once a request is complete, a copy goes to the
 * mirror's endpoint ("-shadow" host, Envoy's way), on a connection of its own that is closed
 * after the answer, which is read and dropped. The client never waits for it. */
#include <errno.h>
#include <stdlib.h>

#include "h1_internal.h"

struct h1_shadow {
	struct bm_h1_proxy *px;
	struct h1_shadow *prev, *next;
	struct bm_conn *c;
	struct bm_ev_timer timer;
	struct bm_ev_defer dead;
	bool sent;
};

static void shadow_free(struct bm_ev_defer *d)
{
	free(bm_container_of(d, struct h1_shadow, dead));
}

static void shadow_unlink(struct h1_shadow *sh)
{
	struct bm_h1_proxy *px = sh->px;

	if (sh->prev)
		sh->prev->next = sh->next;
	else
		px->shadows = sh->next;
	if (sh->next)
		sh->next->prev = sh->prev;
	bm_ev_timer_cancel(px->loop, &sh->timer);
	bm_conn_destroy(sh->c);
}

/* From a callback: freed after the batch. failed: it did not get its answer. */
static void shadow_end(struct h1_shadow *sh, bool failed)
{
	if (failed)
		sh->px->st.mirror_failed++;
	shadow_unlink(sh);
	bm_ev_defer(sh->px->loop, &sh->dead, shadow_free);
}

static void shadow_timeout(struct bm_evloop *l, struct bm_ev_timer *t)
{
	(void)l;
	shadow_end(t->data, true);
}

static void shadow_event(struct bm_conn *c, uint32_t events)
{
	struct h1_shadow *sh = c->data;
	ssize_t n;

	if (events & BM_EV_ERROR)
		bm_conn_check_error(c);
	if (c->connecting) {
		int rc = bm_conn_connected(c);

		if (rc == BM_AGAIN)
			return;
		if (rc == BM_ERROR) {
			shadow_end(sh, true);
			return;
		}
	}
	if (bm_conn_flush(c) == BM_ERROR) {
		shadow_end(sh, true);
		return;
	}
	if (!bm_buf_pending(&c->out))
		sh->sent = true;
	/* The answer is dropped as it comes; it ends with the endpoint's close (connection:
	 * close was asked). */
	while ((n = bm_conn_fill(c)) > 0)
		bm_buf_consume(&c->in, bm_buf_pending(&c->in));
	if (n < 0 || c->rd_eof) {
		shadow_end(sh, n < 0 || !sh->sent);
		return;
	}
	bm_conn_want(c, true, bm_buf_pending(&c->out) != 0);
}

void h1_shadow_send(struct h1_sess *s)
{
	struct bm_h1_proxy *px = s->px;
	struct h1_shadow *sh;
	struct bm_conn *c = NULL;
	int err = 0, fd;

	s->mirror_pending = false;
	if (s->replay_overflow) { /* the body is not all here any more */
		px->st.mirror_skipped++;
		return;
	}
	if (s->mirror_proto == BM_L7_PROTO_H2) {
		fd = px->h2_open ? px->h2_open(px->h2_arg, &s->mirror_up, NULL, NULL) : -EPROTONOSUPPORT;
		c = fd >= 0 ? bm_conn_new(px->loop, fd, px->o.buf_size, px->up_out_max) : NULL;
	} else if (bm_conn_connect(px->loop, &s->mirror_up, px->o.buf_size, px->up_out_max, &c,
				   &err) == BM_ERROR) {
		c = NULL;
	}
	sh = c ? calloc(1, sizeof(*sh)) : NULL;
	if (!sh || h1_req_write_shadow(s, &c->out)) {
		bm_conn_destroy(c);
		free(sh);
		px->st.mirror_failed++;
		return;
	}
	sh->px = px;
	sh->c = c;
	c->on_event = shadow_event;
	c->data = sh;
	bm_ev_timer_init(&sh->timer, shadow_timeout, sh);
	sh->next = px->shadows;
	if (sh->next)
		sh->next->prev = sh;
	px->shadows = sh;
	px->st.mirrors++;
	if (bm_ev_timer_arm(px->loop, &sh->timer, H1_SHADOW_MS) ||
	    bm_conn_want(c, !c->connecting, true)) {
		shadow_unlink(sh);
		free(sh);
		px->st.mirror_failed++;
	}
}

void h1_shadows_free(struct bm_h1_proxy *px)
{
	while (px->shadows) {
		struct h1_shadow *sh = px->shadows;

		shadow_unlink(sh);
		free(sh);
	}
}
