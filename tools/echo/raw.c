/* raw.c - raw TCP echo: every byte back unchanged through one bounded buffer, with
 * backpressure, half-close (FIN after the last echoed byte) and the WHOAMI first line. */
#include "echo.h"

#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static void raw_pump(struct bm_conn *c)
{
	/* c->out holds only the WHOAMI reply, which goes before any echoed byte. */
	if (bm_buf_pending(&c->out) && bm_conn_write(c, &c->out) == BM_IO_ERROR)
		goto fail;
	if (!bm_buf_pending(&c->out) && bm_buf_pending(&c->in) &&
	    bm_conn_write(c, &c->in) == BM_IO_ERROR)
		goto fail;
	if (c->rd_eof && !bm_buf_pending(&c->out) && !bm_buf_pending(&c->in)) {
		/* Everything up to the peer's FIN is echoed: answer with our FIN. */
		shutdown(c->w.fd, SHUT_WR);
		bm_conn_close(c);
		return;
	}
	bm_conn_want(c, bm_conn_can_read(c), bm_buf_pending(&c->out) || bm_buf_pending(&c->in));
	return;
fail:
	bm_conn_close(c);
}

static void raw_on_event(struct bm_conn *c, uint32_t events)
{
	if ((events & EPOLLIN) && bm_conn_read(c) == BM_IO_ERROR) {
		bm_conn_close(c);
		return;
	}
	raw_pump(c);
}

static const struct bm_proto raw_proto = {
	.name = "raw",
	.on_event = raw_on_event,
};

void bm_raw_start(struct bm_conn *c)
{
	static const char whoami[] = "WHOAMI\n";

	c->proto = &raw_proto;
	if (bm_buf_pending(&c->in) >= sizeof(whoami) - 1 &&
	    !memcmp(bm_buf_head(&c->in), whoami, sizeof(whoami) - 1)) {
		bm_buf_consume(&c->in, sizeof(whoami) - 1);
		if (bm_ident_line(c->echo, &c->out, c->local, c->peer)) {
			bm_conn_close(c);
			return;
		}
	}
	raw_pump(c);
}
