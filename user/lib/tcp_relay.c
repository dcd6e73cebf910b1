/* A plain TCP relay for intercepted bytes that are not HTTP, and the two-way byte pipe it
 * shares with the HTTP engine's upgrade tunnel (half-closes passed through, bounded memory). */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "h1.h"

#define RELAY_BUF (64 * 1024)
#define RELAY_CONNECT_MS 10000
#define RELAY_IDLE_MS (3600 * 1000)
#define PIPE_ROUNDS 8

/* One direction: from's input goes out on to; from's EOF becomes a FIN on to. */
static int pipe_dir(struct bm_conn *from, struct bm_conn *to, bool *progress)
{
	ssize_t n;
	size_t before = bm_buf_pending(&from->in);

	if (bm_buf_pending(&from->in)) {
		if (bm_conn_send(to, &from->in) == BM_ERROR)
			return BM_ERROR;
		if (bm_buf_pending(&from->in) != before)
			*progress = true;
	}
	n = bm_conn_fill(from);
	if (n == BM_ERROR)
		return BM_ERROR;
	if (n > 0) {
		*progress = true;
		if (bm_conn_send(to, &from->in) == BM_ERROR)
			return BM_ERROR;
	}
	if (from->rd_eof && !bm_buf_pending(&from->in) && !to->wr_shut) {
		if (bm_conn_shutdown(to) == BM_ERROR)
			return BM_ERROR;
		*progress = true;
	}
	return BM_OK;
}

/* Interest of c in a pipe with peer; a side done both ways leaves epoll, whose HUP would
 * otherwise be reported on every wait while the other direction drains. */
static int pipe_want(struct bm_conn *c, struct bm_conn *peer)
{
	if (c->rd_eof && c->wr_shut) {
		bm_ev_file_del(c->loop, &c->ev);
		return 0;
	}
	return bm_conn_want(c, !c->rd_eof && bm_buf_room(&c->in), bm_buf_pending(&peer->in) != 0);
}

int bm_conn_pipe(struct bm_conn *a, struct bm_conn *b)
{
	int round;

	for (round = 0; round < PIPE_ROUNDS; round++) {
		bool progress = false;

		if (pipe_dir(a, b, &progress) || pipe_dir(b, a, &progress))
			return BM_ERROR;
		if (a->wr_shut && b->wr_shut)
			return BM_OK;
		if (!progress)
			break;
	}
	if (pipe_want(a, b) || pipe_want(b, a))
		return BM_ERROR;
	return BM_AGAIN;
}

/* ---- the relay ---- */

struct relay {
	struct bm_ev_hook hook;
	struct bm_evloop *loop;
	struct bm_conn *cli, *up;
	struct bm_ev_timer timer;
	struct bm_ev_defer dead;
};

static void relay_free(struct bm_ev_defer *d)
{
	free(bm_container_of(d, struct relay, dead));
}

static void relay_close(struct relay *r)
{
	bm_ev_hook_del(r->loop, &r->hook);
	bm_ev_timer_cancel(r->loop, &r->timer);
	bm_conn_destroy(r->cli);
	bm_conn_destroy(r->up);
	r->cli = r->up = NULL;
	bm_ev_defer(r->loop, &r->dead, relay_free);
}

static void relay_hook(struct bm_evloop *l, struct bm_ev_hook *h)
{
	(void)l;
	relay_close(bm_container_of(h, struct relay, hook));
}

static void relay_step(struct relay *r)
{
	int rc;

	if (r->up->connecting) {
		rc = bm_conn_connected(r->up);
		if (rc == BM_AGAIN)
			return;
		if (rc == BM_ERROR) {
			relay_close(r);
			return;
		}
		bm_ev_timer_arm(r->loop, &r->timer, RELAY_IDLE_MS);
	}
	rc = bm_conn_pipe(r->cli, r->up);
	if (rc != BM_AGAIN)
		relay_close(r);
}

static void relay_event(struct bm_conn *c, uint32_t events)
{
	struct relay *r = c->data;

	/* A reset shows as an error on the next read or write; a connect failure here. */
	if ((events & BM_EV_ERROR) && bm_conn_check_error(c)) {
		relay_close(r);
		return;
	}
	relay_step(r);
}

static void relay_timer(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct relay *r = t->data;
	uint64_t last = r->cli->last_io > r->up->last_io ? r->cli->last_io : r->up->last_io;
	uint64_t now = bm_evloop_now(l);

	if (!r->up->connecting && now < last + RELAY_IDLE_MS) {
		bm_ev_timer_arm(l, t, last + RELAY_IDLE_MS - now);
		return;
	}
	relay_close(r); /* connect timeout, or idle for an hour */
}

int bm_tcp_relay_serve(struct bm_evloop *l, int client_fd, const struct sockaddr_storage *upstream)
{
	struct relay *r;
	int rc, err = 0;

	r = calloc(1, sizeof(*r));
	if (!r) {
		close(client_fd);
		return -ENOMEM;
	}
	r->loop = l;
	r->cli = bm_conn_new(l, client_fd, RELAY_BUF, RELAY_BUF);
	if (!r->cli) {
		err = ENOMEM;
		goto cleanup;
	}
	rc = bm_conn_connect(l, upstream, RELAY_BUF, RELAY_BUF, &r->up, &err);
	if (rc == BM_ERROR)
		goto cleanup;
	r->cli->on_event = r->up->on_event = relay_event;
	r->cli->data = r->up->data = r;
	bm_ev_timer_init(&r->timer, relay_timer, r);
	bm_ev_hook_add(l, &r->hook, relay_hook);
	if (bm_ev_timer_arm(l, &r->timer, r->up->connecting ? RELAY_CONNECT_MS : RELAY_IDLE_MS) ||
	    bm_conn_want(r->up, false, true) || bm_conn_want(r->cli, true, false)) {
		relay_close(r);
		return -ENOMEM;
	}
	return 0;
cleanup:
	bm_conn_destroy(r->cli);
	free(r);
	return -err;
}
