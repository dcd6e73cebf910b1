/* reply.c - what bm-echo answers to one HTTP request: ?status/?delay controls, the routes
 * (/healthz, /size/N, /100b, /1m, JSON echo), the response bytes and the access log line. */
#include "http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define BM_REPLY_JSON_MAX	(768 * 1024)	/* JSON body cap; the echoed head is <= 64 KiB */
#define BM_REPLY_CHUNK		(64 * 1024)	/* generated body kept queued while streaming */

static const char pattern[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
_Static_assert(sizeof(pattern) - 1 == 64, "body pattern is 64 bytes");

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

const struct bm_hdr *bm_http_header(const struct bm_http *h, const char *name)
{
	size_t n = strlen(name);

	for (unsigned i = 0; i < h->nhdrs; i++)
		if (h->hdrs[i].name_len == n &&
		    !strncasecmp(h->arena.data + h->hdrs[i].name_off, name, n))
			return &h->hdrs[i];
	return NULL;
}

/* Splits a request target into path and query; absolute-form loses scheme://authority. */
static void url_split(const char *u, size_t n, const char **path, size_t *plen,
		      const char **query, size_t *qlen)
{
	size_t i = 0, start;
	const char *sep = n && u[0] != '/' ? memmem(u, n, "://", 3) : NULL;

	if (sep)
		for (i = (size_t)(sep - u) + 3; i < n && u[i] != '/' && u[i] != '?'; i++)
			;
	start = i;
	while (i < n && u[i] != '?' && u[i] != '#')
		i++;
	*path = u + start;
	*plen = i - start;
	*query = u + i;
	*qlen = 0;
	if (i < n && u[i] == '?') {
		*query = u + ++i;
		while (i < n && u[i] != '#')
			i++;
		*qlen = (size_t)(u + i - *query);
	}
}

/* The value of key in "a=1&b=2"; a key without '=' has an empty value. */
static bool query_get(const char *q, size_t n, const char *key, const char **v, size_t *vlen)
{
	size_t klen = strlen(key), i = 0;

	while (i < n) {
		size_t end = i;

		while (end < n && q[end] != '&')
			end++;
		if (end - i >= klen && !memcmp(q + i, key, klen) &&
		    (end - i == klen || q[i + klen] == '=')) {
			*v = q + i + klen + (end - i > klen);
			*vlen = end - i - klen - (end - i > klen);
			return true;
		}
		i = end + 1;
	}
	return false;
}

/* A control from the query (preferred) or from a request header, blanks trimmed. */
static bool control(const struct bm_http *h, const char *q, size_t qlen, const char *key,
		    const char *header, const char **v, size_t *vlen)
{
	const struct bm_hdr *hd;

	if (query_get(q, qlen, key, v, vlen))
		return true;
	hd = bm_http_header(h, header);
	if (!hd)
		return false;
	*v = h->arena.data + hd->val_off;
	*vlen = hd->val_len;
	while (*vlen && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*vlen)--;
	}
	return true;
}

/* "<method> <path> <status> client=<ip:port> pod=<pod>", flushed at once: tests count them. */
static void access_log(struct bm_conn *c)
{
	struct bm_echo *e = c->echo;
	struct bm_http *h = c->http;
	struct bm_buf *b = &e->logline;
	const char *url = h->url_done ? h->arena.data : "-";
	size_t ulen = h->url_done ? h->url_len : 1;

	if (e->cfg.quiet)
		return;
	b->off = b->len = 0;
	if (bm_buf_printf(b, 2 * BM_HTTP_HEAD_MAX, "%s ",
			  h->url_done ? llhttp_method_name(h->parser.method) : "-") ||
	    bm_buf_reserve(b, ulen, 2 * BM_HTTP_HEAD_MAX))
		return;
	for (size_t i = 0; i < ulen; i++) {
		unsigned char ch = (unsigned char)url[i];

		b->data[b->len++] = ch <= ' ' || ch >= 0x7f ? '?' : (char)ch;
	}
	if (bm_buf_printf(b, 2 * BM_HTTP_HEAD_MAX, " %d client=%s pod=%s\n", h->status, c->peer,
			  e->cfg.pod))
		return;
	fwrite(b->data, 1, b->len, stdout);
	fflush(stdout);
}

static void plan_error(struct bm_http *h, int status, const char *reason)
{
	h->route = BM_ROUTE_ERROR;
	h->status = status;
	h->reason = reason;
	h->delay_ms = 0;
}

/* Decides status, route and delay of the request just read, logs it, and either queues the
 * response or arms the delay timer. Returns 0, or -1 if the connection must be closed. */
int bm_reply_plan(struct bm_conn *c)
{
	struct bm_http *h = c->http;
	const char *path, *q, *v;
	size_t plen, qlen, vlen;
	uint64_t n;

	h->route = BM_ROUTE_ECHO;
	h->head_req = h->parser.method == HTTP_HEAD;
	h->status = 200;
	h->delay_ms = 0;
	h->size = h->sent = 0;
	url_split(h->arena.data, h->url_len, &path, &plen, &q, &qlen);
	if (plen == 8 && !memcmp(path, "/healthz", 8)) {
		h->route = BM_ROUTE_HEALTH;
	} else if (plen == 5 && !memcmp(path, "/100b", 5)) {
		h->route = BM_ROUTE_BYTES;
		h->size = 100;
	} else if (plen == 3 && !memcmp(path, "/1m", 3)) {
		h->route = BM_ROUTE_BYTES;
		h->size = 1024 * 1024;
	} else if (plen >= 6 && !memcmp(path, "/size/", 6)) {
		h->route = BM_ROUTE_BYTES;
		if (bm_parse_u64(path + 6, plen - 6, BM_HTTP_MAX_SIZE, &h->size))
			plan_error(h, 400, "bad /size/N: N is 0..1073741824 bytes");
	}
	if (control(h, q, qlen, "status", "x-echo-status", &v, &vlen)) {
		if (bm_parse_u64(v, vlen, 599, &n) || n < 100)
			plan_error(h, 400, "bad status control: 100..599");
		else if (h->route != BM_ROUTE_ERROR)
			h->status = (int)n;
	}
	if (control(h, q, qlen, "delay", "x-echo-delay", &v, &vlen)) {
		if (bm_parse_duration_ms(v, vlen, 1, BM_HTTP_MAX_DELAY_MS, &n))
			plan_error(h, 400, "bad delay control: 0..600000 ms, e.g. 250ms or 2s");
		else if (h->route != BM_ROUTE_ERROR)
			h->delay_ms = n;
	}
	/* ?only=P: the controls are for the pods whose name starts with P; the others answer as
	 * if there were none (one endpoint failing on demand). */
	if (control(h, q, qlen, "only", "x-echo-only", &v, &vlen) && h->route != BM_ROUTE_ERROR &&
	    (strlen(c->echo->cfg.pod) < vlen || memcmp(c->echo->cfg.pod, v, vlen))) {
		h->status = 200;
		h->delay_ms = 0;
	}
	if (h->status < 200)
		h->close_after = true;	/* no final response follows a 1xx */
	access_log(c);
	if (h->delay_ms) {
		h->state = BM_HTTP_DELAY;
		return bm_timer_arm(&c->echo->loop, &h->delay, h->delay_ms) ? -1 : 0;
	}
	return bm_reply_emit(c);
}

/* A refused request (400, 431): answered with the reason, then the connection closes. */
int bm_reply_error(struct bm_conn *c, int status, const char *reason)
{
	struct bm_http *h = c->http;

	plan_error(h, status, reason ? reason : "bad request");
	h->head_req = h->url_done && h->parser.method == HTTP_HEAD;
	h->close_after = true;
	bm_buf_consume(&c->in, bm_buf_pending(&c->in));
	access_log(c);
	return bm_reply_emit(c);
}

/* The echo body: identity, addresses, request line, body size and headers (names lowercase,
 * repeated fields joined with ", " in arrival order). */
static int json_body(struct bm_conn *c, struct bm_buf *b)
{
	struct bm_echo *e = c->echo;
	struct bm_http *h = c->http;
	const char *a = h->arena.data;
	const struct bm_hdr *host = bm_http_header(h, "host");
	bool first = true;
	int err;

	err = bm_buf_append(b, "{", 1, BM_REPLY_JSON_MAX);
	if (!err)
		err = bm_buf_append(b, e->ident_json, e->ident_json_len, BM_REPLY_JSON_MAX);
	if (!err)
		err = bm_buf_printf(b, BM_REPLY_JSON_MAX,
				    ",\"server\":\"%s\",\"client\":\"%s\",\"method\":\"%s\",\"path\":",
				    c->local, c->peer, llhttp_method_name(h->parser.method));
	if (!err)
		err = bm_json_str(b, BM_REPLY_JSON_MAX, a, h->url_len, false);
	if (!err)
		err = bm_buf_printf(b, BM_REPLY_JSON_MAX, ",\"host\":");
	if (!err)
		err = bm_json_str(b, BM_REPLY_JSON_MAX, host ? a + host->val_off : "",
				  host ? host->val_len : 0, false);
	if (!err)
		err = bm_buf_printf(b, BM_REPLY_JSON_MAX, ",\"body_bytes\":%llu,\"headers\":{",
				    (unsigned long long)h->body_bytes);
	for (unsigned i = 0; !err && i < h->nhdrs; i++) {
		const struct bm_hdr *hi = &h->hdrs[i];
		bool seen = false;

		for (unsigned j = 0; j < i && !seen; j++)
			seen = h->hdrs[j].name_len == hi->name_len &&
			       !strncasecmp(a + h->hdrs[j].name_off, a + hi->name_off, hi->name_len);
		if (seen)
			continue;
		if (!first)
			err = bm_buf_append(b, ",", 1, BM_REPLY_JSON_MAX);
		first = false;
		if (!err)
			err = bm_json_str(b, BM_REPLY_JSON_MAX, a + hi->name_off, hi->name_len, true);
		if (!err)
			err = bm_buf_append(b, ":\"", 2, BM_REPLY_JSON_MAX);
		for (unsigned j = i; !err && j < h->nhdrs; j++) {
			const struct bm_hdr *hj = &h->hdrs[j];

			if (hj->name_len != hi->name_len ||
			    strncasecmp(a + hj->name_off, a + hi->name_off, hi->name_len))
				continue;
			if (j != i)
				err = bm_buf_append(b, ", ", 2, BM_REPLY_JSON_MAX);
			if (!err)
				err = bm_json_chars(b, BM_REPLY_JSON_MAX, a + hj->val_off, hj->val_len,
						    false);
		}
		if (!err)
			err = bm_buf_append(b, "\"", 1, BM_REPLY_JSON_MAX);
	}
	if (!err)
		err = bm_buf_append(b, "}}\n", 3, BM_REPLY_JSON_MAX);
	return err;
}

/* Queues the response head and, except for generated bodies, the whole body. */
int bm_reply_emit(struct bm_conn *c)
{
	struct bm_echo *e = c->echo;
	struct bm_http *h = c->http;
	struct bm_buf *body = &e->scratch;
	const char *ctype = "text/plain";
	bool has_body = h->status >= 200 && h->status != 204 && h->status != 304;
	bool send_body = has_body && !h->head_req;
	uint64_t len;
	int err = 0;

	body->off = body->len = 0;
	switch (h->route) {
	case BM_ROUTE_ECHO:
		ctype = "application/json";
		err = json_body(c, body);
		if (err) {
			body->off = body->len = 0;
			plan_error(h, 500, "response too large");
			h->close_after = true;
			err = bm_buf_printf(body, BM_REPLY_JSON_MAX, "%s\n", h->reason);
		}
		break;
	case BM_ROUTE_HEALTH:
		err = bm_buf_append(body, "ok", 2, BM_REPLY_JSON_MAX);
		break;
	case BM_ROUTE_ERROR:
		err = bm_buf_printf(body, BM_REPLY_JSON_MAX, "%s\n", h->reason);
		break;
	case BM_ROUTE_BYTES:
		ctype = "application/octet-stream";
		break;
	}
	if (err)
		return -1;
	len = h->route == BM_ROUTE_BYTES ? h->size : body->len;
	err = bm_buf_printf(&c->out, BM_ECHO_OUT_MAX, "HTTP/1.1 %d %s\r\n", h->status,
			    status_text(h->status));
	if (!err && has_body)
		err = bm_buf_printf(&c->out, BM_ECHO_OUT_MAX,
				    "Content-Type: %s\r\nContent-Length: %llu\r\n", ctype,
				    (unsigned long long)len);
	if (!err)
		err = bm_buf_printf(&c->out, BM_ECHO_OUT_MAX,
				    "x-echo-pod: %s\r\nx-echo-version: %s\r\nConnection: %s\r\n\r\n",
				    e->cfg.pod, e->cfg.version, h->close_after ? "close" : "keep-alive");
	if (!err && send_body && h->route != BM_ROUTE_BYTES)
		err = bm_buf_append(&c->out, body->data, body->len, BM_ECHO_OUT_MAX);
	if (err)
		return -1;
	h->state = send_body && h->route == BM_ROUTE_BYTES && h->size ? BM_HTTP_STREAM
								       : BM_HTTP_READ;
	return 0;
}

/* Tops the output up with the next bytes of a generated body: byte i is pattern[i % 64]. */
int bm_reply_fill(struct bm_conn *c)
{
	struct bm_http *h = c->http;
	size_t want, done = 0;
	char *o;

	if (bm_buf_pending(&c->out) >= BM_REPLY_CHUNK)
		return 0;
	want = BM_REPLY_CHUNK - bm_buf_pending(&c->out);
	if (want > h->size - h->sent)
		want = (size_t)(h->size - h->sent);
	if (bm_buf_reserve(&c->out, want, BM_ECHO_OUT_MAX))
		return -1;
	o = c->out.data + c->out.len;
	while (done < want) {
		size_t pos = (size_t)((h->sent + done) % 64), k = 64 - pos;

		if (k > want - done)
			k = want - done;
		memcpy(o + done, pattern + pos, k);
		done += k;
	}
	c->out.len += want;
	h->sent += want;
	if (h->sent == h->size)
		h->state = BM_HTTP_READ;
	return 0;
}
