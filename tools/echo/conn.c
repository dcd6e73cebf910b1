/* conn.c - TCP connection lifecycle and I/O for bm-echo: accept, bounded reads, writes,
 * epoll interest, close. What the bytes mean is up to the protocol in c->proto. */
#include "echo.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static void conn_on_watch(struct bm_watch *w, uint32_t events)
{
	struct bm_conn *c = bm_container_of(w, struct bm_conn, w);

	/* HUP: both directions are shut (or reset), nothing can be sent any more. */
	if (events & (EPOLLERR | EPOLLHUP)) {
		bm_conn_close(c);
		return;
	}
	c->proto->on_event(c, events);
}

static void conn_on_timer(struct bm_timer *t)
{
	struct bm_conn *c = bm_container_of(t, struct bm_conn, timer);

	if (c->proto->on_timer)
		c->proto->on_timer(c);
}

static void conn_free(struct bm_deferred *d)
{
	struct bm_conn *c = bm_container_of(d, struct bm_conn, dead);

	if (c->proto->fini)
		c->proto->fini(c);
	bm_buf_free(&c->in);
	bm_buf_free(&c->out);
	free(c);
}

/* Takes ownership of fd, a nonblocking accepted socket. Over --max-conns it is closed. */
void bm_conn_accept(struct bm_echo *e, int fd, const struct sockaddr_storage *peer)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	struct bm_conn *c;
	int one = 1;

	if (e->nconns >= e->cfg.max_conns) {
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	bm_watch_init(&c->w, fd, conn_on_watch);
	bm_timer_init(&c->timer, conn_on_timer);
	c->echo = e;
	c->last_io = e->loop.now;
	if (getsockname(fd, (struct sockaddr *)&local, &len) == 0)
		bm_addr_format((struct sockaddr *)&local, c->local, sizeof(c->local));
	else
		snprintf(c->local, sizeof(c->local), "unknown");
	bm_addr_format((const struct sockaddr *)peer, c->peer, sizeof(c->peer));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->next = e->conns;
	if (e->conns)
		e->conns->prev = c;
	e->conns = c;
	e->nconns++;
	bm_sniff_start(c);
}

/* One read into c->in (allocated on first use, never grown past BM_ECHO_IN_BUF). */
enum bm_io bm_conn_read(struct bm_conn *c)
{
	ssize_t n;

	if (c->rd_eof)
		return BM_IO_EOF;
	if (!c->in.cap && bm_buf_reserve(&c->in, BM_ECHO_IN_BUF, BM_ECHO_IN_BUF))
		return BM_IO_ERROR;
	if (!bm_buf_space(&c->in))
		bm_buf_compact(&c->in);
	if (!bm_buf_space(&c->in))
		return BM_IO_AGAIN;
	do
		n = read(c->w.fd, c->in.data + c->in.len, bm_buf_space(&c->in));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? BM_IO_AGAIN : BM_IO_ERROR;
	if (n == 0) {
		c->rd_eof = true;
		return BM_IO_EOF;
	}
	c->in.len += (size_t)n;
	c->last_io = c->echo->loop.now;
	return BM_IO_OK;
}

/* Writes pending bytes of b until it is empty (OK) or the socket is full (AGAIN). */
enum bm_io bm_conn_write(struct bm_conn *c, struct bm_buf *b)
{
	while (bm_buf_pending(b)) {
		ssize_t n = send(c->w.fd, bm_buf_head(b), bm_buf_pending(b), MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? BM_IO_AGAIN : BM_IO_ERROR;
		}
		bm_buf_consume(b, (size_t)n);
		c->last_io = c->echo->loop.now;
	}
	return BM_IO_OK;
}

/* Sets read/write interest; on failure the connection is closed and -errno returned. */
int bm_conn_want(struct bm_conn *c, bool rd, bool wr)
{
	int err = bm_loop_watch(&c->echo->loop, &c->w, (rd ? EPOLLIN : 0) | (wr ? EPOLLOUT : 0));

	if (err) {
		fprintf(stderr, "bm-echo: epoll_ctl on connection from %s: %s\n", c->peer,
			strerror(-err));
		bm_conn_close(c);
	}
	return err;
}

/* Closes now, frees after the current batch: callers return without touching c again. */
void bm_conn_close(struct bm_conn *c)
{
	struct bm_echo *e = c->echo;

	if (bm_conn_closed(c))
		return;
	if (c->proto->on_close)
		c->proto->on_close(c);
	bm_timer_cancel(&e->loop, &c->timer);
	bm_loop_close(&e->loop, &c->w);
	if (c->prev)
		c->prev->next = c->next;
	else
		e->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	e->nconns--;
	bm_loop_defer(&e->loop, &c->dead, conn_free);
}

void bm_conn_close_all(struct bm_echo *e)
{
	while (e->conns)
		bm_conn_close(e->conns);
}
