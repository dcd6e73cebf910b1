/* http.c - HTTP/1.x connections: llhttp callbacks that capture one request at a time, and
 * the pump that moves bytes between socket, parser and responses in request order. */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define BM_HTTP_PUMP_ROUNDS 64	/* requests or stream chunks per event, for fairness */

static struct bm_http *http_of(llhttp_t *p)
{
	return ((struct bm_conn *)p->data)->http;
}

/* Refuses the request from a callback; data callbacks return this, the others -1. */
static int refuse(llhttp_t *p, int status, const char *why)
{
	struct bm_http *h = http_of(p);

	h->err_status = status;
	h->err_reason = why;
	return HPE_USER;
}

static int on_message_begin(llhttp_t *p)
{
	struct bm_http *h = http_of(p);

	bm_req_reset(&h->req);
	h->in_field = false;
	h->err_status = 0;
	h->err_reason = NULL;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct bm_http *h = http_of(p);

	if (bm_buf_append(&h->req.arena, at, len, BM_HTTP_HEAD_MAX))
		return refuse(p, 431, "request target too long");
	h->req.url_len += (uint32_t)len;
	return 0;
}

static int on_url_complete(llhttp_t *p)
{
	struct bm_req *r = &http_of(p)->req;

	r->url_done = true;
	r->method = llhttp_method_name(p->method);
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct bm_http *h = http_of(p);
	struct bm_req *r = &h->req;
	struct bm_hdr *hdr = &r->hdrs[r->nhdrs < BM_HTTP_MAX_HEADERS ? r->nhdrs : 0];

	if (!h->in_field) {
		if (r->nhdrs == BM_HTTP_MAX_HEADERS)
			return refuse(p, 431, "too many header fields");
		*hdr = (struct bm_hdr){ .name_off = (uint32_t)r->arena.len };
		h->in_field = true;
	}
	if (bm_buf_append(&r->arena, at, len, BM_HTTP_HEAD_MAX))
		return refuse(p, 431, "header fields too large");
	hdr->name_len += (uint32_t)len;
	return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct bm_http *h = http_of(p);
	struct bm_req *r = &h->req;
	const struct bm_hdr *hdr = &r->hdrs[r->nhdrs];
	char last = hdr->name_len ? r->arena.data[hdr->name_off + hdr->name_len - 1] : 0;

	/* "Host : a" is refused as RFC 9112 5.1 asks: llhttp does so only when built with
	 * LLHTTP_STRICT_MODE, and proxies that read such a field differently can be smuggled. */
	if (last == ' ' || last == '\t') {
		refuse(p, 400, "whitespace between header name and colon");
		return -1;
	}
	h->in_field = false;
	r->hdrs[r->nhdrs].val_off = (uint32_t)r->arena.len;
	r->hdrs[r->nhdrs].val_len = 0;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct bm_req *r = &http_of(p)->req;

	if (bm_buf_append(&r->arena, at, len, BM_HTTP_HEAD_MAX))
		return refuse(p, 431, "header fields too large");
	r->hdrs[r->nhdrs].val_len += (uint32_t)len;
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct bm_req *r = &http_of(p)->req;
	struct bm_hdr *hdr = &r->hdrs[r->nhdrs];

	while (hdr->val_len && (r->arena.data[hdr->val_off + hdr->val_len - 1] == ' ' ||
				r->arena.data[hdr->val_off + hdr->val_len - 1] == '\t'))
		hdr->val_len--;
	r->nhdrs++;
	return 0;
}

/* Expect: 100-continue gets its interim answer now, so clients send the body at once. */
static int on_headers_complete(llhttp_t *p)
{
	struct bm_conn *c = p->data;
	struct bm_http *h = c->http;
	const struct bm_hdr *x = bm_req_header(&h->req, "expect");
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	h->in_head = false;
	h->req.http10 = p->http_major == 1 && p->http_minor == 0;
	if (x && p->http_major == 1 && p->http_minor >= 1 && x->val_len == 12 &&
	    !strncasecmp(h->req.arena.data + x->val_off, "100-continue", 12))
		bm_buf_append(&c->out, cont, sizeof(cont) - 1, BM_ECHO_OUT_MAX);
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	(void)at;
	http_of(p)->req.body_bytes += len;
	return 0;
}

/* Stop after each request: its response is written before the next one is parsed. */
static int on_message_complete(llhttp_t *p)
{
	struct bm_http *h = http_of(p);

	h->keep_alive = llhttp_should_keep_alive(p);
	h->msg_done = true;
	return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_url_complete = on_url_complete,
	.on_header_field = on_header_field,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value = on_header_value,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* Feeds buffered input to the parser, up to the end of one request, and starts its reply.
 * Returns 0, 1 if the connection became HTTP/2 (c->http is gone), or -1 if it must be
 * closed. */
static int http_feed(struct bm_conn *c)
{
	struct bm_http *h = c->http;
	const char *data = bm_buf_head(&c->in);
	size_t n = bm_buf_pending(&c->in), used = n;
	bool was_head = h->in_head;
	llhttp_errno_t err;

	if (was_head && n > BM_HTTP_HEAD_MAX - h->head_bytes)
		n = BM_HTTP_HEAD_MAX - h->head_bytes;
	err = llhttp_execute(&h->parser, data, n);
	if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && h->msg_done)
		used = (size_t)(llhttp_get_error_pos(&h->parser) - data);
	else if (err != HPE_OK)
		return bm_reply_error(c, h->err_status ? h->err_status : 400,
				      h->err_reason ? h->err_reason :
						      llhttp_get_error_reason(&h->parser));
	else
		used = n;
	bm_buf_consume(&c->in, used);
	if (was_head)
		h->head_bytes += used;
	if (h->in_head && h->head_bytes >= BM_HTTP_HEAD_MAX)
		return bm_reply_error(c, 431, "request head larger than 64 KiB");
	if (!h->msg_done)
		return 0;
	h->msg_done = false;
	h->in_head = true;
	h->head_bytes = 0;
	/* Upgrade: h2c switches to HTTP/2. Other upgrades and CONNECT are answered as plain
	 * requests, then the connection ends, since what the client sends next is not HTTP/1.1. */
	if (err == HPE_PAUSED_UPGRADE || llhttp_get_upgrade(&h->parser)) {
		int up = bm_h2_upgrade(c);

		if (up)
			return up;
		h->keep_alive = false;
	} else {
		llhttp_resume(&h->parser);
	}
	h->close_after = !h->keep_alive;
	if (bm_reply_plan(c))
		return -1;
	h->req.url_done = false; /* an error before the next request line has no method or path */
	return 0;
}

static void http_linger(struct bm_conn *c)
{
	struct bm_http *h = c->http;

	/* Our FIN goes first; unread input at close() would make the kernel send RST, which
	 * can destroy the response in the client's receive queue. */
	h->state = BM_HTTP_LINGER;
	shutdown(c->w.fd, SHUT_WR);
	bm_buf_consume(&c->in, bm_buf_pending(&c->in));
	if (c->rd_eof || bm_timer_arm(&c->echo->loop, &c->timer, BM_HTTP_LINGER_MS)) {
		bm_conn_close(c);
		return;
	}
	bm_conn_want(c, true, false);
}

static void http_settle(struct bm_conn *c)
{
	struct bm_http *h = c->http;

	if (h->state == BM_HTTP_READ && c->rd_eof && !bm_buf_pending(&c->in))
		h->close_after = true;	/* the peer sent all it will: answer, then go */
	if (h->state == BM_HTTP_READ && h->close_after && !bm_buf_pending(&c->out)) {
		http_linger(c);
		return;
	}
	bm_conn_want(c, bm_conn_can_read(c), bm_buf_pending(&c->out) || h->more);
}

static void http_pump(struct bm_conn *c)
{
	struct bm_http *h = c->http;
	int round;

	for (round = 0; round < BM_HTTP_PUMP_ROUNDS; round++) {
		bool again = false;

		if (h->state == BM_HTTP_STREAM && bm_reply_fill(c))
			goto fail;
		if (bm_buf_pending(&c->out) && bm_conn_write(c, &c->out) == BM_IO_ERROR)
			goto fail;
		if (h->state == BM_HTTP_STREAM && !bm_buf_pending(&c->out))
			again = true;
		if (h->state == BM_HTTP_READ && !h->close_after && bm_buf_pending(&c->in) &&
		    bm_buf_pending(&c->out) < BM_HTTP_OUT_HIGH) {
			int rc = http_feed(c);

			if (rc < 0)
				goto fail;
			if (rc > 0)
				return;	/* HTTP/2 now: c->http is gone */
			again = true;
		}
		if (!again)
			break;
	}
	h->more = round == BM_HTTP_PUMP_ROUNDS;
	http_settle(c);
	return;
fail:
	bm_conn_close(c);
}

static void http_on_event(struct bm_conn *c, uint32_t events)
{
	struct bm_http *h = c->http;

	if ((events & EPOLLIN) && bm_conn_read(c) == BM_IO_ERROR) {
		bm_conn_close(c);
		return;
	}
	if (h->state == BM_HTTP_LINGER) {
		bm_buf_consume(&c->in, bm_buf_pending(&c->in));
		if (c->rd_eof)
			bm_conn_close(c);
		return;
	}
	http_pump(c);
}

/* c->timer: the idle timeout, or the end of the linger. A connection is idle when no byte
 * moved for --idle-timeout while it waits on the client; a ?delay is not idleness. */
static void http_on_timer(struct bm_conn *c)
{
	struct bm_http *h = c->http;
	uint64_t now = c->echo->loop.now, idle = c->echo->cfg.idle_ms, after = idle;

	if (h->state == BM_HTTP_LINGER) {
		bm_conn_close(c);
		return;
	}
	if (h->state != BM_HTTP_DELAY) {
		if (now - c->last_io >= idle) {
			bm_conn_close(c);
			return;
		}
		after = c->last_io + idle - now;
	}
	if (bm_timer_arm(&c->echo->loop, &c->timer, after))
		bm_conn_close(c);
}

static void http_on_delay(struct bm_timer *t)
{
	struct bm_http *h = bm_container_of(t, struct bm_http, delay);
	struct bm_conn *c = h->parser.data;

	c->last_io = c->echo->loop.now;
	if (bm_reply_emit(c)) {
		bm_conn_close(c);
		return;
	}
	http_pump(c);
}

static void http_on_close(struct bm_conn *c)
{
	bm_timer_cancel(&c->echo->loop, &c->http->delay);
}

static void http_fini(struct bm_conn *c)
{
	bm_buf_free(&c->http->req.arena);
	free(c->http);
	c->http = NULL;
}

static const struct bm_proto http_proto = {
	.name = "http",
	.on_event = http_on_event,
	.on_timer = http_on_timer,
	.on_close = http_on_close,
	.fini = http_fini,
};

void bm_http_start(struct bm_conn *c)
{
	struct bm_http *h = calloc(1, sizeof(*h));

	if (!h) {
		bm_conn_close(c);
		return;
	}
	c->http = h;
	c->proto = &http_proto;
	llhttp_init(&h->parser, HTTP_REQUEST, &settings);
	h->parser.data = c;
	h->in_head = true;
	bm_timer_init(&h->delay, http_on_delay);
	if (bm_timer_arm(&c->echo->loop, &c->timer, c->echo->cfg.idle_ms)) {
		bm_conn_close(c);
		return;
	}
	http_pump(c);
}
