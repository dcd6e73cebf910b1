/* A nonblocking stream connection for the agent: fd, bounded in/out buffers, half-close, and
 * read/write/shutdown through function pointers so TLS can be swapped in under the callers. */
#ifndef BM_CONN_H
#define BM_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "evloop.h"

/* Results of connection calls (I/O calls return a byte count >= 0 instead of BM_OK;
 * 0 from read means EOF). */
#define BM_OK 0
#define BM_ERROR (-1)
#define BM_AGAIN (-2)

/* A byte buffer: data[off, off+len) pending. It grows (up to max) only as needed and can
 * be released when empty, so idle connections hold no buffer memory. */
struct bm_buf {
	char *data;
	size_t off, len, cap, max;
};

void bm_buf_init(struct bm_buf *b, size_t max);
void bm_buf_release(struct bm_buf *b); /* frees the memory; pending bytes are dropped */
/* Makes room for n more bytes at the tail (compacting or growing). 0, or -1 when that
 * would exceed max or memory is short. */
int bm_buf_reserve(struct bm_buf *b, size_t n);
int bm_buf_append_slow(struct bm_buf *b, const void *p, size_t n);
int bm_buf_printf(struct bm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bm_buf_consume(struct bm_buf *b, size_t n);

static inline size_t bm_buf_pending(const struct bm_buf *b)
{
	return b->len;
}
/* NULL for a buffer with no memory (never used, or released): no offset is added to it. */
static inline char *bm_buf_head(const struct bm_buf *b)
{
	return b->data ? b->data + b->off : NULL;
}
static inline char *bm_buf_tail(const struct bm_buf *b)
{
	return b->data ? b->data + b->off + b->len : NULL;
}
/* Bytes that can still be appended before max. */
static inline size_t bm_buf_room(const struct bm_buf *b)
{
	return b->max - b->len;
}
/* Appends n bytes: 0, or -1 beyond max or out of memory. The common case (room at the tail
 * already) is inline; growing and compacting are bm_buf_append_slow's. */
static inline int bm_buf_append(struct bm_buf *b, const void *p, size_t n)
{
	if (n && n <= b->cap - b->off - b->len && n <= b->max - b->len) {
		memcpy(b->data + b->off + b->len, p, n);
		b->len += n;
		return 0;
	}
	return bm_buf_append_slow(b, p, n);
}

struct bm_conn;

/* Transport: the plain socket by default; TLS replaces these after its handshake.
 * read: bytes (> 0), 0 at EOF, BM_AGAIN, BM_ERROR. write: bytes, BM_AGAIN, BM_ERROR.
 * shutdown: half-closes the write side: BM_OK, BM_AGAIN (retry when writable), BM_ERROR.
 * On BM_ERROR, c->err holds an errno. */
typedef ssize_t (*bm_conn_read_fn)(struct bm_conn *c, void *buf, size_t len);
typedef ssize_t (*bm_conn_write_fn)(struct bm_conn *c, const void *buf, size_t len);
typedef int (*bm_conn_shutdown_fn)(struct bm_conn *c);

struct bm_conn {
	struct bm_ev_file ev;           /* ev.fd is the socket; -1 once closed */
	struct bm_evloop *loop;
	bm_conn_read_fn read;
	bm_conn_write_fn write;
	bm_conn_shutdown_fn shutdown;
	void (*io_free)(struct bm_conn *c); /* frees io_data at close; NULL for plain */
	void *io_data;
	struct bm_buf in, out;
	bool connecting;                /* nonblocking connect in progress */
	bool rd_eof;                    /* the peer sent FIN */
	bool wr_shut;                   /* we sent FIN */
	bool shut_pending;              /* send FIN once out is flushed */
	bool failed;                    /* reset or other error; close it */
	bool rd_ready;                  /* may have bytes to read: set by a read (or error) event,
					 * cleared by a read that drained the socket, so that a
					 * caller's speculative fill costs no syscall */
	int err;                        /* errno of the failure */
	uint64_t last_io;               /* loop time of the last byte moved */
	uint32_t rd_chunk;              /* room the next read asks of in (0: the smallest) */
	/* Owner's callback for readiness (BM_EV_*), switched when ownership moves. */
	bool up_hooked;                 /* bm_conn_up_hooks.connected is owed once connected */
	void (*on_event)(struct bm_conn *c, uint32_t events);
	void *data;
	struct bm_ev_defer dead;
};

/* SO_MARK for every socket bm_conn_connect opens (the engine's upstreams, TCP relays); 0: none.
 * The agent sets BM_AGENT_MARK so its own connects are not redirected back to it; a socket
 * the mark cannot be set on is not connected (the connect fails with that errno). */
extern uint32_t bm_conn_upstream_mark;

/* Hooks around every socket bm_conn_connect opens (the agent's end of the same-node bypass).
 * prepare runs on the new socket before connect() and returns true to be told, once, when
 * the connection is up (connected, with the fd still open). NULL prepare: none. */
struct bm_conn_up_hooks {
	bool (*prepare)(void *arg, int fd, const struct sockaddr_storage *to);
	void (*connected)(void *arg, int fd);
	void *arg;
};
extern struct bm_conn_up_hooks bm_conn_up_hooks;

/* Wraps an accepted or connected fd (made nonblocking, TCP_NODELAY when TCP); the conn
 * owns it from here, also on failure (NULL: fd closed). */
struct bm_conn *bm_conn_new(struct bm_evloop *l, int fd, size_t in_max, size_t out_max);
/* Starts a nonblocking connect: BM_OK (connected), BM_AGAIN (c->connecting; wait for
 * BM_EV_WRITE, then bm_conn_connected), BM_ERROR (*err set, no conn). */
int bm_conn_connect(struct bm_evloop *l, const struct sockaddr_storage *to, size_t in_max,
		    size_t out_max, struct bm_conn **out, int *err);
/* After a connect: BM_OK once connected, BM_AGAIN while pending, BM_ERROR (c->err). */
int bm_conn_connected(struct bm_conn *c);
socklen_t bm_sockaddr_len(const struct sockaddr_storage *ss);
/* The bytes that identify an address (family, port, address and scope, or unix path), for
 * hashing and comparing; at most BM_SOCKADDR_KEY_MAX. Returns their count. */
#define BM_SOCKADDR_KEY_MAX sizeof(struct sockaddr_storage)
size_t bm_sockaddr_key(const struct sockaddr_storage *ss, uint8_t *k);

/* One read into c->in (up to its max). Returns bytes read, 0 when nothing was read (EOF sets
 * rd_eof; a full buffer or EAGAIN leave it), or BM_ERROR (c->failed). Only reads when the
 * socket may have bytes (rd_ready): after a read that left it empty, the next read waits for
 * the loop's next read event for c (level-triggered: nothing is missed). */
ssize_t bm_conn_fill(struct bm_conn *c);
/* Writes b (c->out, or another conn's input when piping) until empty or EAGAIN; then sends
 * the pending FIN if asked. BM_OK (all written), BM_AGAIN (bytes left), BM_ERROR. */
int bm_conn_send(struct bm_conn *c, struct bm_buf *b);
static inline int bm_conn_flush(struct bm_conn *c)
{
	return bm_conn_send(c, &c->out);
}
/* Half-closes after out is flushed (now if it is empty). BM_OK, BM_AGAIN, BM_ERROR. */
int bm_conn_shutdown(struct bm_conn *c);
/* Sets the epoll interest; a closed conn is ignored. 0 or -errno. */
int bm_conn_want(struct bm_conn *c, bool rd, bool wr);
/* Reads SO_ERROR after BM_EV_ERROR: true (c->failed, c->err) when the socket has failed. */
bool bm_conn_check_error(struct bm_conn *c);
/* Unregisters and closes the fd, frees the buffers and transport state, and frees c after
 * the current batch. NULL is ignored. */
void bm_conn_destroy(struct bm_conn *c);
/* As bm_conn_destroy, but the fd is returned open (ownership moves to the caller), or -1
 * when c is NULL or closed. Buffered bytes are dropped: take them first. */
int bm_conn_take_fd(struct bm_conn *c);

static inline bool bm_conn_closed(const struct bm_conn *c)
{
	return c->ev.fd < 0;
}

#endif
