/* sniff.c - the first state of every TCP connection: read until the first bytes say HTTP/2
 * (its preface), HTTP/1.x (an uppercase method token and a space) or raw echo (anything else). */
#include "echo.h"

#include <string.h>
#include <sys/epoll.h>

#define BM_SNIFF_TOKEN_MAX 24	/* longer runs of uppercase letters are not a method */
#define BM_SNIFF_WAIT_MS 200	/* undecided bytes this old are treated as raw */

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static enum bm_sniff sniff_h1(const char *p, size_t n)
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

enum bm_sniff bm_sniff(const char *p, size_t n)
{
	size_t k = n < sizeof(h2_preface) - 1 ? n : sizeof(h2_preface) - 1;

	if (n && !memcmp(p, h2_preface, k))
		return k == sizeof(h2_preface) - 1 ? BM_SNIFF_H2 : BM_SNIFF_MORE;
	return sniff_h1(p, n);
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
	if (s == BM_SNIFF_MORE)	/* the peer's FIN came first: a cut-short preface is HTTP/1 */
		s = sniff_h1(bm_buf_head(&c->in), bm_buf_pending(&c->in));
	if (s == BM_SNIFF_H2)
		bm_h2_start(c);
	else if (s == BM_SNIFF_HTTP)
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

/* Undecided for too long. A preface cut short ("PRI * ...") reads as HTTP/1.x, which
 * refuses it with 400, as before HTTP/2 was known here. */
static void sniff_on_timer(struct bm_conn *c)
{
	if (sniff_h1(bm_buf_head(&c->in), bm_buf_pending(&c->in)) == BM_SNIFF_HTTP)
		bm_http_start(c);
	else
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
