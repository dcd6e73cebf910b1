/* Connections for the agent: plain-socket transport functions, bounded buffers that grow on
 * demand, nonblocking connect, half-close after a flush, and deferred destruction. */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* A buffer's first allocation: heads, decision strings and small replies fit in 1 KiB; it
 * doubles as bytes pile up. Reads ask for READ_MIN of room at first (see bm_conn_fill). */
#define BUF_MIN 1024
#define READ_MIN 4096

uint32_t bm_conn_upstream_mark;
struct bm_conn_up_hooks bm_conn_up_hooks;

static void up_connected(struct bm_conn *c)
{
	if (c->up_hooked) {
		c->up_hooked = false;
		bm_conn_up_hooks.connected(bm_conn_up_hooks.arg, c->ev.fd);
	}
}

/* ---- buffers ---- */

void bm_buf_init(struct bm_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void bm_buf_release(struct bm_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

int bm_buf_reserve(struct bm_buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (n > b->max - b->len)
		return -1;
	if (b->cap - b->off - b->len >= n)
		return 0;
	need = b->len + n;
	if (b->cap >= need) { /* compaction is enough */
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
		return 0;
	}
	cap = b->cap ? b->cap : BUF_MIN;
	while (cap < need)
		cap *= 2;
	if (cap > b->max)
		cap = b->max;
	if (b->off) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	p = realloc(b->data, cap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int bm_buf_append_slow(struct bm_buf *b, const void *p, size_t n)
{
	if (!n)
		return 0;
	if (bm_buf_reserve(b, n))
		return -1;
	memcpy(bm_buf_tail(b), p, n);
	b->len += n;
	return 0;
}

int bm_buf_printf(struct bm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t room;

	if (bm_buf_reserve(b, 64))
		return -1;
	for (;;) {
		room = b->cap - b->off - b->len;
		va_start(ap, fmt);
		n = vsnprintf(bm_buf_tail(b), room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if ((size_t)n < room)
			break;
		if (bm_buf_reserve(b, (size_t)n + 1))
			return -1;
	}
	b->len += (size_t)n;
	return 0;
}

void bm_buf_consume(struct bm_buf *b, size_t n)
{
	if (n >= b->len) {
		b->off = b->len = 0;
		return;
	}
	b->off += n;
	b->len -= n;
}

/* ---- plain socket transport ---- */

static ssize_t sock_read(struct bm_conn *c, void *buf, size_t len)
{
	ssize_t n;

	do
		n = recv(c->ev.fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return BM_AGAIN;
	c->err = errno;
	return BM_ERROR;
}

static ssize_t sock_write(struct bm_conn *c, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = send(c->ev.fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return BM_AGAIN;
	c->err = errno;
	return BM_ERROR;
}

static int sock_shutdown(struct bm_conn *c)
{
	if (shutdown(c->ev.fd, SHUT_WR) == 0 || errno == ENOTCONN)
		return BM_OK;
	c->err = errno;
	return BM_ERROR;
}

static void conn_ev(struct bm_evloop *l, struct bm_ev_file *f, uint32_t events)
{
	struct bm_conn *c = f->data;

	(void)l;
	if (events & (BM_EV_READ | BM_EV_ERROR))
		c->rd_ready = true;
	if (c->on_event)
		c->on_event(c, events);
}

struct bm_conn *bm_conn_new(struct bm_evloop *l, int fd, size_t in_max, size_t out_max)
{
	struct bm_conn *c;
	int fl, one = 1;

	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
		goto fail;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	/* Not TCP (a unix socket in tests): the option just fails. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bm_ev_file_init(&c->ev, fd, conn_ev, c);
	c->loop = l;
	c->rd_ready = true; /* a new socket may hold bytes already (a client's request) */
	c->read = sock_read;
	c->write = sock_write;
	c->shutdown = sock_shutdown;
	bm_buf_init(&c->in, in_max);
	bm_buf_init(&c->out, out_max);
	c->last_io = bm_evloop_now(l);
	return c;
fail:
	close(fd);
	return NULL;
}

size_t bm_sockaddr_key(const struct sockaddr_storage *ss, uint8_t *k)
{
	const struct sockaddr_in *in = (const void *)ss;
	const struct sockaddr_in6 *in6 = (const void *)ss;
	size_t n = sizeof(ss->ss_family);

	memcpy(k, &ss->ss_family, sizeof(ss->ss_family));
	switch (ss->ss_family) {
	case AF_INET:
		memcpy(k + n, &in->sin_port, 2);
		memcpy(k + n + 2, &in->sin_addr, 4);
		return n + 6;
	case AF_INET6:
		memcpy(k + n, &in6->sin6_port, 2);
		memcpy(k + n + 2, &in6->sin6_addr, 16);
		memcpy(k + n + 18, &in6->sin6_scope_id, 4);
		return n + 22;
	case AF_UNIX: {
		size_t len = bm_sockaddr_len(ss) - offsetof(struct sockaddr_un, sun_path);

		memcpy(k + n, ((const struct sockaddr_un *)(const void *)ss)->sun_path, len);
		return n + len;
	}
	default:
		return n;
	}
}

socklen_t bm_sockaddr_len(const struct sockaddr_storage *ss)
{
	const struct sockaddr_un *un = (const void *)ss;

	switch (ss->ss_family) {
	case AF_INET:
		return sizeof(struct sockaddr_in);
	case AF_INET6:
		return sizeof(struct sockaddr_in6);
	case AF_UNIX:
		/* An abstract name (leading NUL) ends at the next NUL: tests use such names. */
		if (!un->sun_path[0])
			return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
					   strnlen(un->sun_path + 1, sizeof(un->sun_path) - 1));
		return sizeof(struct sockaddr_un);
	default:
		return 0;
	}
}

int bm_conn_connect(struct bm_evloop *l, const struct sockaddr_storage *to, size_t in_max,
		    size_t out_max, struct bm_conn **out, int *err)
{
	socklen_t len = bm_sockaddr_len(to);
	struct bm_conn *c;
	bool hooked;
	int fd, rc;

	*out = NULL;
	if (!len) {
		*err = EAFNOSUPPORT;
		return BM_ERROR;
	}
	fd = socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = errno;
		return BM_ERROR;
	}
	/* Before connect(): the cgroup connect hook reads the mark. */
	if (bm_conn_upstream_mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &bm_conn_upstream_mark,
						sizeof(bm_conn_upstream_mark)) < 0) {
		*err = errno;
		close(fd);
		return BM_ERROR;
	}
	hooked = bm_conn_up_hooks.prepare && bm_conn_up_hooks.prepare(bm_conn_up_hooks.arg, fd, to);
	do
		rc = connect(fd, (const struct sockaddr *)to, len);
	while (rc < 0 && errno == EINTR);
	if (rc < 0 && errno != EINPROGRESS && errno != EAGAIN) {
		*err = errno;
		close(fd);
		return BM_ERROR;
	}
	c = bm_conn_new(l, fd, in_max, out_max);
	if (!c) {
		*err = ENOMEM;
		return BM_ERROR;
	}
	c->connecting = rc < 0;
	c->up_hooked = hooked;
	if (!c->connecting)
		up_connected(c);
	*out = c;
	return c->connecting ? BM_AGAIN : BM_OK;
}

int bm_conn_connected(struct bm_conn *c)
{
	int e = 0;
	socklen_t len = sizeof(e);

	if (!c->connecting)
		return BM_OK;
	if (getsockopt(c->ev.fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	if (e == EINPROGRESS || e == EALREADY)
		return BM_AGAIN;
	if (e) {
		c->err = e;
		c->failed = true;
		return BM_ERROR;
	}
	/* SO_ERROR is 0 also while the handshake is still running. */
	if (getpeername(c->ev.fd, &(struct sockaddr){ 0 }, &(socklen_t){ sizeof(struct sockaddr) }) < 0) {
		if (errno == ENOTCONN)
			return BM_AGAIN;
		c->err = errno;
		c->failed = true;
		return BM_ERROR;
	}
	c->connecting = false;
	c->last_io = bm_evloop_now(c->loop);
	up_connected(c);
	return BM_OK;
}

/* ---- I/O ---- */

ssize_t bm_conn_fill(struct bm_conn *c)
{
	size_t want, chunk;
	ssize_t n;

	if (c->rd_eof || c->failed || bm_conn_closed(c))
		return c->failed ? BM_ERROR : 0;
	if (!c->rd_ready)
		return 0;
	want = bm_buf_room(&c->in);
	if (!want)
		return 0;
	/* Small messages are most: a read asks for 4 KiB of room at first, and for twice as much
	 * after each read that filled all it was given (bulk data), up to the buffer's max. So
	 * a thousand connections with a request each hold 4 KiB apiece, not 16. Each read still
	 * takes all the tail room there is. */
	chunk = c->rd_chunk ? c->rd_chunk : READ_MIN;
	if (bm_buf_reserve(&c->in, want < chunk ? want : chunk)) {
		c->err = ENOMEM;
		c->failed = true;
		return BM_ERROR;
	}
	if (want > c->in.cap - c->in.off - c->in.len)
		want = c->in.cap - c->in.off - c->in.len;
	n = c->read(c, bm_buf_tail(&c->in), want);
	if (n == BM_AGAIN) {
		c->rd_ready = false;
		return 0;
	}
	if (n < 0) {
		c->failed = true;
		return BM_ERROR;
	}
	if (n == 0) {
		c->rd_eof = true;
		return 0;
	}
	if ((size_t)n == want && chunk < c->in.max)
		c->rd_chunk = (uint32_t)(chunk * 2 < c->in.max ? chunk * 2 : c->in.max);
	if ((size_t)n < want)
		c->rd_ready = false; /* a stream socket gave less than asked: it is empty now */
	c->in.len += (size_t)n;
	c->last_io = bm_evloop_now(c->loop);
	return n;
}

int bm_conn_send(struct bm_conn *c, struct bm_buf *b)
{
	if (c->failed || bm_conn_closed(c))
		return BM_ERROR;
	while (bm_buf_pending(b)) {
		ssize_t n = c->write(c, bm_buf_head(b), bm_buf_pending(b));

		if (n == BM_AGAIN)
			return BM_AGAIN;
		if (n < 0) {
			c->failed = true;
			return BM_ERROR;
		}
		bm_buf_consume(b, (size_t)n);
		c->last_io = bm_evloop_now(c->loop);
	}
	if (b == &c->out && c->shut_pending && !c->wr_shut) {
		int rc = c->shutdown(c);

		if (rc == BM_ERROR) {
			c->failed = true;
			return BM_ERROR;
		}
		if (rc == BM_AGAIN)
			return BM_AGAIN;
		c->wr_shut = true;
	}
	return BM_OK;
}

int bm_conn_shutdown(struct bm_conn *c)
{
	if (c->wr_shut)
		return BM_OK;
	c->shut_pending = true;
	return bm_conn_flush(c);
}

int bm_conn_want(struct bm_conn *c, bool rd, bool wr)
{
	if (bm_conn_closed(c))
		return 0;
	return bm_ev_file_set(c->loop, &c->ev, (rd ? BM_EV_READ : 0) | (wr ? BM_EV_WRITE : 0));
}

bool bm_conn_check_error(struct bm_conn *c)
{
	int e = 0;
	socklen_t len = sizeof(e);

	if (c->failed)
		return true;
	if (getsockopt(c->ev.fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	if (!e)
		return false;
	c->err = e;
	c->failed = true;
	return true;
}

static void conn_free(struct bm_ev_defer *d)
{
	free(bm_container_of(d, struct bm_conn, dead));
}

/* Unregisters c and frees it after the batch; its fd is returned, not closed. */
static int conn_release(struct bm_conn *c)
{
	int fd = c->ev.fd;

	bm_ev_file_del(c->loop, &c->ev);
	if (c->io_free)
		c->io_free(c);
	c->ev.fd = -1;
	c->on_event = NULL;
	bm_buf_release(&c->in);
	bm_buf_release(&c->out);
	bm_ev_defer(c->loop, &c->dead, conn_free);
	return fd;
}

int bm_conn_take_fd(struct bm_conn *c)
{
	if (!c || bm_conn_closed(c))
		return -1;
	return conn_release(c);
}

void bm_conn_destroy(struct bm_conn *c)
{
	if (!c || bm_conn_closed(c))
		return;
	close(conn_release(c));
}

