/* http_reply.c - HTTP/1.x responses: the status line and head, the body queued whole or
 * streamed (generated bodies), refused requests; what to answer is reply.c's to decide. */
#include "http.h"

#include <stdio.h>
#include <string.h>

#define BM_REPLY_CHUNK		(64 * 1024)	/* generated body kept queued while streaming */

static const char *status_text(int code)
{
	static const struct { int code; const char *text; } texts[] = {
		{ 100, "Continue" }, { 101, "Switching Protocols" }, { 200, "OK" },
		{ 201, "Created" }, { 202, "Accepted" }, { 204, "No Content" },
		{ 206, "Partial Content" }, { 301, "Moved Permanently" }, { 302, "Found" },
		{ 303, "See Other" }, { 304, "Not Modified" }, { 307, "Temporary Redirect" },
		{ 308, "Permanent Redirect" }, { 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 403, "Forbidden" }, { 404, "Not Found" }, { 405, "Method Not Allowed" },
		{ 408, "Request Timeout" }, { 409, "Conflict" }, { 410, "Gone" },
		{ 413, "Content Too Large" }, { 414, "URI Too Long" }, { 418, "I'm a teapot" },
		{ 421, "Misdirected Request" }, { 425, "Too Early" }, { 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" }, { 500, "Internal Server Error" },
		{ 501, "Not Implemented" }, { 502, "Bad Gateway" }, { 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i].code == code)
			return texts[i].text;
	return "Status";
}

/* Plans the answer to the request just read, logs it, and either queues the response or
 * arms the delay timer. Returns 0, or -1 if the connection must be closed. */
int bm_reply_plan(struct bm_conn *c)
{
	struct bm_http *h = c->http;

	bm_req_plan(c->echo, &h->req);
	if (h->req.status < 200)
		h->close_after = true;	/* no final response follows a 1xx */
	bm_req_log(c, &h->req);
	if (h->req.delay_ms) {
		h->state = BM_HTTP_DELAY;
		return bm_timer_arm(&c->echo->loop, &h->delay, h->req.delay_ms) ? -1 : 0;
	}
	return bm_reply_emit(c);
}

/* A refused request (400, 431): answered with the reason, then the connection closes. */
int bm_reply_error(struct bm_conn *c, int status, const char *reason)
{
	struct bm_http *h = c->http;

	bm_req_refuse(&h->req, status, reason ? reason : "bad request");
	h->req.head_req = h->req.url_done && h->req.method && !strcmp(h->req.method, "HEAD");
	h->close_after = true;
	bm_buf_consume(&c->in, bm_buf_pending(&c->in));
	bm_req_log(c, &h->req);
	return bm_reply_emit(c);
}

/* Queues the response head and, except for generated bodies, the whole body. */
int bm_reply_emit(struct bm_conn *c)
{
	struct bm_echo *e = c->echo;
	struct bm_req *r = &c->http->req;
	struct bm_buf *body = &e->scratch;
	const char *ctype;
	bool has_body, send_body;
	uint64_t len;
	int err;

	if (bm_req_body(c, r, body, &ctype))
		return -1;
	if (r->route == BM_ROUTE_ERROR && r->status == 500)
		c->http->close_after = true;
	has_body = bm_req_has_body(r);
	send_body = has_body && !r->head_req;
	len = r->route == BM_ROUTE_BYTES ? r->size : body->len;
	err = bm_buf_printf(&c->out, BM_ECHO_OUT_MAX, "HTTP/1.1 %d %s\r\n", r->status,
			    status_text(r->status));
	if (!err && has_body)
		err = bm_buf_printf(&c->out, BM_ECHO_OUT_MAX,
				    "Content-Type: %s\r\nContent-Length: %llu\r\n", ctype,
				    (unsigned long long)len);
	if (!err)
		err = bm_buf_printf(&c->out, BM_ECHO_OUT_MAX,
				    "x-echo-pod: %s\r\nx-echo-version: %s\r\nConnection: %s\r\n\r\n",
				    e->cfg.pod, e->cfg.version,
				    c->http->close_after ? "close" : "keep-alive");
	if (!err && send_body && r->route != BM_ROUTE_BYTES)
		err = bm_buf_append(&c->out, body->data, body->len, BM_ECHO_OUT_MAX);
	if (err)
		return -1;
	c->http->state = send_body && r->route == BM_ROUTE_BYTES && r->size ? BM_HTTP_STREAM
									    : BM_HTTP_READ;
	return 0;
}

/* Tops the output up with the next bytes of a generated body. */
int bm_reply_fill(struct bm_conn *c)
{
	struct bm_http *h = c->http;
	size_t want;

	if (bm_buf_pending(&c->out) >= BM_REPLY_CHUNK)
		return 0;
	want = BM_REPLY_CHUNK - bm_buf_pending(&c->out);
	if (want > h->req.size - h->req.sent)
		want = (size_t)(h->req.size - h->req.sent);
	if (bm_buf_reserve(&c->out, want, BM_ECHO_OUT_MAX))
		return -1;
	c->out.len += bm_req_fill(&h->req, c->out.data + c->out.len, want);
	if (h->req.sent == h->req.size)
		h->state = BM_HTTP_READ;
	return 0;
}
