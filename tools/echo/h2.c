/* h2.c - HTTP/2 connections of bm-echo (h2c): by prior knowledge (the sniffed preface) or by
 * an HTTP/1.1 Upgrade; the nghttp2 session, and the pump between socket and session. */
#include "h2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define BM_H2_PUMP_ROUNDS	64	/* recv/send rounds per event, for fairness */
#define BM_H2_SETTINGS_MAX	240	/* decoded HTTP2-Settings: 40 entries */

static const struct bm_proto h2_proto;

static void h2_destroy(struct bm_conn *c)
{
	struct bm_h2 *h2 = c->h2;

	if (!h2)
		return;
	bm_h2_stream_stop_all(c);
	nghttp2_session_del(h2->session);	/* calls back nothing */
	h2->session = NULL;
	bm_h2_stream_free_all(c);
	free(h2);
	c->h2 = NULL;
}

/* A server session with nghttp2's protections set (the library defaults, written out) and
 * our SETTINGS queued. Returns 0, or -1 with c->h2 left NULL. */
static int h2_new(struct bm_conn *c)
{
	static const nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, BM_H2_MAX_STREAMS },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, BM_HTTP_HEAD_MAX },
	};
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	int ret = -1;

	c->h2 = calloc(1, sizeof(*c->h2));
	if (!c->h2 || nghttp2_session_callbacks_new(&cbs) || nghttp2_option_new(&opt))
		goto cleanup;
	bm_h2_stream_callbacks(cbs);
	nghttp2_option_set_no_closed_streams(opt, 1);
	nghttp2_option_set_max_outbound_ack(opt, 1000);		/* queued SETTINGS/PING acks */
	nghttp2_option_set_max_settings(opt, 32);		/* entries per SETTINGS */
	nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);	/* rapid reset */
	nghttp2_option_set_max_continuations(opt, 8);		/* CONTINUATION flood */
	if (nghttp2_session_server_new2(&c->h2->session, cbs, c, opt) ||
	    nghttp2_submit_settings(c->h2->session, NGHTTP2_FLAG_NONE, iv,
				    sizeof(iv) / sizeof(iv[0])))
		goto cleanup;
	ret = 0;
cleanup:
	if (ret)
		h2_destroy(c);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	return ret;
}

static void h2_linger(struct bm_conn *c)
{
	/* As HTTP/1.x does: our FIN first, then drain, so the peer reads our last frames
	 * instead of a reset. Delayed streams are not answered any more. */
	c->h2->linger = true;
	bm_h2_stream_stop_all(c);
	shutdown(c->w.fd, SHUT_WR);
	bm_buf_consume(&c->in, bm_buf_pending(&c->in));
	if (c->rd_eof || bm_timer_arm(&c->echo->loop, &c->timer, BM_HTTP_LINGER_MS)) {
		bm_conn_close(c);
		return;
	}
	bm_conn_want(c, true, false);
}

/* Moves frames from the session into c->out while it is below the high mark. */
static int h2_pull(struct bm_conn *c, size_t *pulled)
{
	while (bm_buf_pending(&c->out) < BM_H2_OUT_HIGH) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->h2->session, &data);

		if (n < 0) {
			fprintf(stderr, "bm-echo: HTTP/2 to %s: %s\n", c->peer,
				nghttp2_strerror((int)n));
			return -1;
		}
		if (!n)
			break;
		if (bm_buf_append(&c->out, data, (size_t)n, BM_ECHO_OUT_MAX))
			return -1;
		*pulled += (size_t)n;
	}
	return 0;
}

/* Ends the connection politely: GOAWAY (as far as the socket takes it), then the linger. */
static void h2_goaway(struct bm_conn *c, uint32_t code)
{
	size_t pulled = 0;

	nghttp2_session_terminate_session(c->h2->session, code);
	if (!h2_pull(c, &pulled) && bm_buf_pending(&c->out))
		bm_conn_write(c, &c->out);
	h2_linger(c);
}

/* Done when nothing is left to send and the session or the peer will send no more: after
 * the GOAWAY exchange, or once the peer's FIN came and no answer is pending (then our GOAWAY
 * says so before our FIN). */
static void h2_settle(struct bm_conn *c)
{
	struct bm_h2 *h2 = c->h2;
	nghttp2_session *ss = h2->session;
	bool quiet = !bm_buf_pending(&c->out) && !h2->more && !nghttp2_session_want_write(ss);

	if (quiet && !nghttp2_session_want_read(ss)) {
		h2_linger(c);
		return;
	}
	if (quiet && c->rd_eof && !h2->ndelayed) {
		h2_goaway(c, NGHTTP2_NO_ERROR);
		return;
	}
	bm_conn_want(c, bm_conn_can_read(c), bm_buf_pending(&c->out) || h2->more);
}

/* Input goes to the session whole (it only queues answers; nghttp2 bounds its own queues,
 * streams are bounded in number and memory); output is taken as the socket drains. */
void bm_h2_pump(struct bm_conn *c)
{
	struct bm_h2 *h2 = c->h2;
	int round;

	if (bm_conn_closed(c) || h2->linger)
		return;
	for (round = 0; round < BM_H2_PUMP_ROUNDS; round++) {
		size_t pulled = 0, had;

		while (bm_buf_pending(&c->in)) {
			ssize_t n = nghttp2_session_mem_recv(h2->session,
							     (const uint8_t *)bm_buf_head(&c->in),
							     bm_buf_pending(&c->in));

			if (n < 0) {
				/* Bad preface, flood, ...: what nghttp2 queued (GOAWAY) goes out. */
				fprintf(stderr, "bm-echo: HTTP/2 from %s: %s\n", c->peer,
					nghttp2_strerror((int)n));
				h2_goaway(c, NGHTTP2_PROTOCOL_ERROR);
				return;
			}
			bm_buf_consume(&c->in, (size_t)n);
		}
		if (h2_pull(c, &pulled))
			goto fail;
		had = bm_buf_pending(&c->out);
		if (had && bm_conn_write(c, &c->out) == BM_IO_ERROR)
			goto fail;
		/* Again while the socket takes all we have and the session has more. */
		if (!had || bm_buf_pending(&c->out) || !nghttp2_session_want_write(h2->session))
			break;
	}
	h2->more = round == BM_H2_PUMP_ROUNDS;
	h2_settle(c);
	return;
fail:
	bm_conn_close(c);
}

static void h2_on_event(struct bm_conn *c, uint32_t events)
{
	if ((events & EPOLLIN) && bm_conn_read(c) == BM_IO_ERROR) {
		bm_conn_close(c);
		return;
	}
	if (c->h2->linger) {
		bm_buf_consume(&c->in, bm_buf_pending(&c->in));
		if (c->rd_eof)
			bm_conn_close(c);
		return;
	}
	bm_h2_pump(c);
}

/* c->timer: the idle timeout (no byte moved for --idle-timeout and no stream in a ?delay),
 * ended with GOAWAY; or the end of the linger. */
static void h2_on_timer(struct bm_conn *c)
{
	uint64_t now = c->echo->loop.now, idle = c->echo->cfg.idle_ms, after = idle;

	if (c->h2->linger) {
		bm_conn_close(c);
		return;
	}
	if (!c->h2->ndelayed) {
		if (now - c->last_io >= idle) {
			h2_goaway(c, NGHTTP2_NO_ERROR);
			return;
		}
		after = c->last_io + idle - now;
	}
	if (bm_timer_arm(&c->echo->loop, &c->timer, after))
		bm_conn_close(c);
}

static void h2_on_close(struct bm_conn *c)
{
	bm_h2_stream_stop_all(c);
}

static const struct bm_proto h2_proto = {
	.name = "h2",
	.on_event = h2_on_event,
	.on_timer = h2_on_timer,
	.on_close = h2_on_close,
	.fini = h2_destroy,
};

/* The sniffed preface is still in c->in: nghttp2 reads it as the client magic. */
void bm_h2_start(struct bm_conn *c)
{
	if (h2_new(c)) {
		fprintf(stderr, "bm-echo: HTTP/2 session for %s: out of memory\n", c->peer);
		bm_conn_close(c);
		return;
	}
	c->proto = &h2_proto;
	if (bm_timer_arm(&c->echo->loop, &c->timer, c->echo->cfg.idle_ms)) {
		bm_conn_close(c);
		return;
	}
	bm_h2_pump(c);
}

/* token in a comma-separated header value, case-insensitive. */
static bool has_token(const char *v, size_t n, const char *token)
{
	size_t tlen = strlen(token), i = 0;

	while (i < n) {
		size_t start, end;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < n && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == tlen && !strncasecmp(v + start, token, tlen))
			return true;
	}
	return false;
}

static unsigned header_count(const struct bm_req *r, const char *name)
{
	size_t n = strlen(name);
	unsigned count = 0;

	for (unsigned i = 0; i < r->nhdrs; i++)
		count += r->hdrs[i].name_len == n &&
			 !strncasecmp(r->arena.data + r->hdrs[i].name_off, name, n);
	return count;
}

/* RFC 7540 3.2: Upgrade: h2c with one HTTP2-Settings, on a request without a body. */
static bool wants_h2c(const struct bm_req *r, uint8_t *settings, size_t *slen)
{
	const struct bm_hdr *up = bm_req_header(r, "upgrade");
	const struct bm_hdr *set = bm_req_header(r, "http2-settings");
	const struct bm_hdr *cl = bm_req_header(r, "content-length");
	const char *a = r->arena.data;

	if (!up || !set || r->http10 || !r->method || !strcmp(r->method, "CONNECT") ||
	    !has_token(a + up->val_off, up->val_len, "h2c") ||
	    header_count(r, "http2-settings") != 1)
		return false;
	if (r->body_bytes || bm_req_header(r, "transfer-encoding") ||
	    (cl && (cl->val_len != 1 || a[cl->val_off] != '0')))
		return false;
	return !bm_parse_base64url(a + set->val_off, set->val_len, settings, BM_H2_SETTINGS_MAX,
				   slen) && *slen % 6 == 0;
}

int bm_h2_upgrade(struct bm_conn *c)
{
	static const char switching[] =
		"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
	struct bm_http *h = c->http;
	struct bm_req *r = &h->req;
	uint8_t settings[BM_H2_SETTINGS_MAX];
	struct bm_h2_stream *s;
	struct bm_buf spare;
	size_t slen;

	if (!wants_h2c(r, settings, &slen))
		return 0;
	if (h2_new(c))
		return -1;
	if (nghttp2_session_upgrade2(c->h2->session, settings, slen,
				     !strcmp(r->method, "HEAD"), NULL)) {
		h2_destroy(c);	/* settings nghttp2 refuses: answered in HTTP/1.1 */
		return 0;
	}
	s = bm_h2_stream_new(c, 1);
	if (!s || nghttp2_session_set_stream_user_data(c->h2->session, 1, s) ||
	    bm_buf_append(&c->out, switching, sizeof(switching) - 1, BM_ECHO_OUT_MAX)) {
		h2_destroy(c);
		return -1;
	}
	/* The request moves to stream 1; the HTTP/1 state goes. */
	spare = s->req.arena;
	s->req = *r;
	s->req.h2 = true;
	r->arena = spare;
	bm_buf_free(&r->arena);
	free(h);
	c->http = NULL;
	c->proto = &h2_proto;
	bm_h2_stream_request(c, s);
	bm_h2_pump(c);
	return 1;
}
