/* sniff.c - the first state of every TCP connection: read until the first bytes say HTTP
 * (an uppercase method token and a space) or raw echo (anything else), then hand over. */
#include "echo.h"

#include <sys/epoll.h>

#define BM_SNIFF_TOKEN_MAX 24	/* longer runs of uppercase letters are not a method */
#define BM_SNIFF_WAIT_MS 200	/* undecided bytes this old are treated as raw */

enum bm_sniff bm_sniff(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] >= 'A' && p[i] <= 'Z') {
			if (i == BM_SNIFF_TOKEN_MAX)
				return BM_SNIFF_RAW;
			continue;
		}
		return p[i] == ' ' && i > 0 ? BM_SNIFF_HTTP : BM_SNIFF_RAW;
	}
	return BM_SNIFF_MORE;
}

static void sniff_decide(struct bm_conn *c)
{
	struct bm_loop *l = &c->echo->loop;
	enum bm_sniff s = bm_sniff(bm_buf_head(&c->in), bm_buf_pending(&c->in));

	if (s == BM_SNIFF_MORE && !c->rd_eof) {
		/* A client that sends "PING" and waits must still get its echo. */
		if (bm_buf_pending(&c->in) && !bm_timer_armed(&c->timer) &&
		    bm_timer_arm(l, &c->timer, BM_SNIFF_WAIT_MS)) {
			bm_conn_close(c);
			return;
		}
		bm_conn_want(c, true, false);
		return;
	}
	bm_timer_cancel(l, &c->timer);
	if (s == BM_SNIFF_HTTP)
		bm_http_start(c);
	else
		bm_raw_start(c);
}

static void sniff_on_event(struct bm_conn *c, uint32_t events)
{
	if ((events & EPOLLIN) && bm_conn_read(c) == BM_IO_ERROR) {
		bm_conn_close(c);
		return;
	}
	sniff_decide(c);
}

static void sniff_on_timer(struct bm_conn *c)
{
	bm_raw_start(c);
}

static const struct bm_proto sniff_proto = {
	.name = "sniff",
	.on_event = sniff_on_event,
	.on_timer = sniff_on_timer,
};

/* Connections that never send a byte stay here until the peer closes: no idle timeout, so
 * tests can hold quiet long-lived connections. */
void bm_sniff_start(struct bm_conn *c)
{
	c->proto = &sniff_proto;
	bm_conn_want(c, true, false);
}
