/* reply.c - what bm-echo answers to one HTTP request, over HTTP/1.x or HTTP/2 alike: the
 * controls (?status, ?delay, ?only, ?trailers, ?grpc), the routes, bodies and the access log. */
#include "http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define BM_REPLY_JSON_MAX	(768 * 1024)	/* JSON body cap; the echoed head is <= 64 KiB */
#define BM_GRPC_PREFIX		5		/* gRPC message: flag byte, 4-byte length */

static const char pattern[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
_Static_assert(sizeof(pattern) - 1 == 64, "body pattern is 64 bytes");

/* llhttp's own names, so both protocols report a method the same way. */
static const char *const methods[] = {
#define BM_METHOD_NAME(num, name, string) #string,
	HTTP_METHOD_MAP(BM_METHOD_NAME)
#undef BM_METHOD_NAME
};

/* The static name of an HTTP method llhttp knows, or NULL. */
const char *bm_method_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strlen(methods[i]) == len && !memcmp(methods[i], name, len))
			return methods[i];
	return NULL;
}

const struct bm_hdr *bm_req_header(const struct bm_req *r, const char *name)
{
	size_t n = strlen(name);

	for (unsigned i = 0; i < r->nhdrs; i++)
		if (r->hdrs[i].name_len == n &&
		    !strncasecmp(r->arena.data + r->hdrs[i].name_off, name, n))
			return &r->hdrs[i];
	return NULL;
}

/* Forgets the previous request; the arena's memory stays for the next one. */
void bm_req_reset(struct bm_req *r)
{
	struct bm_buf arena = r->arena;

	memset(r, 0, offsetof(struct bm_req, hdrs));
	arena.off = arena.len = 0;
	r->arena = arena;
	r->grpc_status = -1;
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
static bool control(const struct bm_req *r, const char *q, size_t qlen, const char *key,
		    const char *header, const char **v, size_t *vlen)
{
	const struct bm_hdr *hd;

	if (query_get(q, qlen, key, v, vlen))
		return true;
	hd = bm_req_header(r, header);
	if (!hd)
		return false;
	*v = r->arena.data + hd->val_off;
	*vlen = hd->val_len;
	while (*vlen && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*vlen)--;
	}
	return true;
}

static bool is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Fields HTTP/2 forbids in any header block (RFC 9113 8.2.2), and framing ones. */
static bool trailer_forbidden(const char *n, size_t len)
{
	static const char *const names[] = { "connection", "keep-alive", "proxy-connection",
					     "transfer-encoding", "upgrade", "te", "host",
					     "content-length" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && !strncasecmp(names[i], n, len))
			return true;
	return false;
}

/* Next "name:value" of a ?trailers= list at *p (before end); blanks before an item and
 * around its value are dropped. Returns 1 with *t set, 0 at the end, -1 on a malformed item. */
static int trailer_next(const char **p, const char *end, struct bm_trailer *t)
{
	const char *s = *p, *item_end, *colon;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s >= end)
		return 0;
	item_end = memchr(s, ',', (size_t)(end - s));
	if (!item_end)
		item_end = end;
	*p = item_end < end ? item_end + 1 : end;
	colon = memchr(s, ':', (size_t)(item_end - s));
	if (!colon || colon == s || colon - s > BM_HTTP_TRAILER_NAME_MAX)
		return -1;
	for (const char *n = s; n < colon; n++)
		if (!is_tchar(*n))
			return -1;
	t->name = s;
	t->name_len = (size_t)(colon - s);
	t->value = colon + 1;
	t->value_len = (size_t)(item_end - colon - 1);
	while (t->value_len && (*t->value == ' ' || *t->value == '\t')) {
		t->value++;
		t->value_len--;
	}
	while (t->value_len && (t->value[t->value_len - 1] == ' ' ||
				t->value[t->value_len - 1] == '\t'))
		t->value_len--;
	if (t->value_len > BM_HTTP_TRAILER_VALUE_MAX || trailer_forbidden(t->name, t->name_len))
		return -1;
	for (size_t i = 0; i < t->value_len; i++)
		if ((unsigned char)t->value[i] < 0x20 || (unsigned char)t->value[i] >= 0x7f)
			if (t->value[i] != '\t')
				return -1;
	return 1;
}

static bool trailers_valid(const char *v, size_t vlen)
{
	const char *p = v, *end = v + vlen;
	struct bm_trailer t;
	size_t n = 0;
	int rc;

	while ((rc = trailer_next(&p, end, &t)) > 0)
		n++;
	return rc == 0 && n <= BM_HTTP_MAX_TRAILERS;
}

/* Fills out with the trailers planned for r: the ?trailers= list, then grpc-status and, for
 * a code other than 0, grpc-message (each unless the list has it; a listed grpc-status
 * replaces both). Returns how many; 0 means no trailers. */
size_t bm_req_trailers(const struct bm_req *r, struct bm_trailer *out, size_t max)
{
	static const char *const codes[] = { "0", "1", "2", "3", "4", "5", "6", "7", "8",
					     "9", "10", "11", "12", "13", "14", "15", "16" };
	static const char msg[] = "bm-echo: grpc status asked by the request";
	const char *p = r->arena.data + r->trl_off, *end = p + r->trl_len;
	bool named_status = false, named_msg = false;
	size_t n = 0;

	_Static_assert(sizeof(codes) / sizeof(codes[0]) == BM_HTTP_GRPC_MAX + 1, "grpc codes");
	while (r->has_trl && n < max && trailer_next(&p, end, &out[n]) > 0) {
		if (out[n].name_len == 11 && !strncasecmp(out[n].name, "grpc-status", 11))
			named_status = true;
		if (out[n].name_len == 12 && !strncasecmp(out[n].name, "grpc-message", 12))
			named_msg = true;
		n++;
	}
	if (r->grpc_status < 0 || named_status)
		return n;
	if (n < max)
		out[n++] = (struct bm_trailer){ .name = "grpc-status", .name_len = 11,
						.value = codes[r->grpc_status],
						.value_len = strlen(codes[r->grpc_status]) };
	if (r->grpc_status && !named_msg && n < max)
		out[n++] = (struct bm_trailer){ .name = "grpc-message", .name_len = 12,
						.value = msg, .value_len = sizeof(msg) - 1 };
	return n;
}

void bm_req_refuse(struct bm_req *r, int status, const char *reason)
{
	r->route = BM_ROUTE_ERROR;
	r->status = status;
	r->reason = reason;
	r->delay_ms = 0;
	r->grpc_status = -1;
	r->has_trl = false;
}

/* "application/grpc", alone or followed by "+codec" or parameters. */
static bool is_grpc(const struct bm_req *r)
{
	const struct bm_hdr *ct = bm_req_header(r, "content-type");
	const char *v = ct ? r->arena.data + ct->val_off : NULL;

	return r->h2 && ct && ct->val_len >= 16 && !strncasecmp(v, "application/grpc", 16) &&
	       (ct->val_len == 16 || v[16] == '+' || v[16] == ';');
}

/* Decides route, status, delay and trailers of the request just read. */
void bm_req_plan(struct bm_echo *e, struct bm_req *r)
{
	const char *path, *q, *v;
	size_t plen, qlen, vlen;
	uint64_t n;

	r->route = BM_ROUTE_ECHO;
	r->head_req = r->method && !strcmp(r->method, "HEAD");
	r->status = 200;
	r->delay_ms = 0;
	r->size = r->sent = 0;
	r->grpc = is_grpc(r);
	r->grpc_status = r->grpc ? 0 : -1;
	r->has_trl = false;
	url_split(r->arena.data + r->url_off, r->url_len, &path, &plen, &q, &qlen);
	if (plen == 8 && !memcmp(path, "/healthz", 8)) {
		r->route = BM_ROUTE_HEALTH;
	} else if (plen == 5 && !memcmp(path, "/100b", 5)) {
		r->route = BM_ROUTE_BYTES;
		r->size = 100;
	} else if (plen == 3 && !memcmp(path, "/1m", 3)) {
		r->route = BM_ROUTE_BYTES;
		r->size = 1024 * 1024;
	} else if (plen >= 6 && !memcmp(path, "/size/", 6)) {
		r->route = BM_ROUTE_BYTES;
		if (bm_parse_u64(path + 6, plen - 6, BM_HTTP_MAX_SIZE, &r->size))
			bm_req_refuse(r, 400, "bad /size/N: N is 0..1073741824 bytes");
	}
	if (control(r, q, qlen, "status", "x-echo-status", &v, &vlen)) {
		if (bm_parse_u64(v, vlen, 599, &n) || n < 100)
			bm_req_refuse(r, 400, "bad status control: 100..599");
		else if (r->route != BM_ROUTE_ERROR)
			r->status = (int)n;
	}
	if (control(r, q, qlen, "delay", "x-echo-delay", &v, &vlen)) {
		if (bm_parse_duration_ms(v, vlen, 1, BM_HTTP_MAX_DELAY_MS, &n))
			bm_req_refuse(r, 400, "bad delay control: 0..600000 ms, e.g. 250ms or 2s");
		else if (r->route != BM_ROUTE_ERROR)
			r->delay_ms = n;
	}
	if (control(r, q, qlen, "grpc", "x-echo-grpc", &v, &vlen)) {
		if (bm_parse_u64(v, vlen, BM_HTTP_GRPC_MAX, &n))
			bm_req_refuse(r, 400, "bad grpc control: a gRPC status code 0..16");
		else if (r->route != BM_ROUTE_ERROR)
			r->grpc_status = (int)n;
	}
	if (control(r, q, qlen, "trailers", "x-echo-trailers", &v, &vlen)) {
		if (!trailers_valid(v, vlen))
			bm_req_refuse(r, 400, "bad trailers control: name:value[,name:value]..., "
					      "at most 16");
		else if (r->route != BM_ROUTE_ERROR)
			r->has_trl = true;
		r->trl_off = (uint32_t)(v - r->arena.data);
		r->trl_len = (uint32_t)vlen;
	}
	/* ?only=P: the failure controls are for the pods whose name starts with P; the others
	 * answer as if there were none (one endpoint failing on demand). */
	if (control(r, q, qlen, "only", "x-echo-only", &v, &vlen) && r->route != BM_ROUTE_ERROR &&
	    (strlen(e->cfg.pod) < vlen || memcmp(e->cfg.pod, v, vlen))) {
		r->status = 200;
		r->delay_ms = 0;
		r->grpc_status = r->grpc ? 0 : -1;
	}
}

bool bm_req_has_body(const struct bm_req *r)
{
	return r->status >= 200 && r->status != 204 && r->status != 304;
}

/* The echo body: identity, addresses, request line, body size and headers (names lowercase,
 * repeated fields joined with ", " in arrival order, "; " for cookie). */
static int json_body(struct bm_conn *c, const struct bm_req *r, struct bm_buf *b)
{
	struct bm_echo *e = c->echo;
	const char *a = r->arena.data;
	const struct bm_hdr *host = bm_req_header(r, "host");
	const char *hv = r->has_auth ? a + r->auth_off : host ? a + host->val_off : "";
	size_t hlen = r->has_auth ? r->auth_len : host ? host->val_len : 0;
	bool first = true;
	int err;

	err = bm_buf_append(b, "{", 1, BM_REPLY_JSON_MAX);
	if (!err)
		err = bm_buf_append(b, e->ident_json, e->ident_json_len, BM_REPLY_JSON_MAX);
	if (!err)
		err = bm_buf_printf(b, BM_REPLY_JSON_MAX,
				    ",\"server\":\"%s\",\"client\":\"%s\",\"method\":\"%s\","
				    "\"proto\":\"%s\",\"path\":",
				    c->local, c->peer, r->method ? r->method : "-",
				    r->h2 ? "HTTP/2" : r->http10 ? "HTTP/1.0" : "HTTP/1.1");
	if (!err)
		err = bm_json_str(b, BM_REPLY_JSON_MAX, a + r->url_off, r->url_len, false);
	if (!err)
		err = bm_buf_printf(b, BM_REPLY_JSON_MAX, ",\"host\":");
	if (!err)
		err = bm_json_str(b, BM_REPLY_JSON_MAX, hv, hlen, false);
	if (!err)
		err = bm_buf_printf(b, BM_REPLY_JSON_MAX, ",\"body_bytes\":%llu,\"headers\":{",
				    (unsigned long long)r->body_bytes);
	for (unsigned i = 0; !err && i < r->nhdrs; i++) {
		const struct bm_hdr *hi = &r->hdrs[i];
		bool seen = false, cookie = hi->name_len == 6 &&
					     !strncasecmp(a + hi->name_off, "cookie", 6);

		for (unsigned j = 0; j < i && !seen; j++)
			seen = r->hdrs[j].name_len == hi->name_len &&
			       !strncasecmp(a + r->hdrs[j].name_off, a + hi->name_off, hi->name_len);
		if (seen)
			continue;
		if (!first)
			err = bm_buf_append(b, ",", 1, BM_REPLY_JSON_MAX);
		first = false;
		if (!err)
			err = bm_json_str(b, BM_REPLY_JSON_MAX, a + hi->name_off, hi->name_len, true);
		if (!err)
			err = bm_buf_append(b, ":\"", 2, BM_REPLY_JSON_MAX);
		for (unsigned j = i; !err && j < r->nhdrs; j++) {
			const struct bm_hdr *hj = &r->hdrs[j];

			if (hj->name_len != hi->name_len ||
			    strncasecmp(a + hj->name_off, a + hi->name_off, hi->name_len))
				continue;
			if (j != i)
				err = bm_buf_append(b, cookie ? "; " : ", ", 2, BM_REPLY_JSON_MAX);
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

/* The JSON as one gRPC message: flag 0 (uncompressed), length big-endian, then the JSON. */
static int grpc_body(struct bm_conn *c, const struct bm_req *r, struct bm_buf *b)
{
	size_t start = b->len, len;
	unsigned char *p;
	int err;

	err = bm_buf_append(b, "\0\0\0\0\0", BM_GRPC_PREFIX, BM_REPLY_JSON_MAX);
	if (!err)
		err = json_body(c, r, b);
	if (err)
		return err;
	len = b->len - start - BM_GRPC_PREFIX;
	p = (unsigned char *)b->data + start;
	p[1] = (unsigned char)(len >> 24);
	p[2] = (unsigned char)(len >> 16);
	p[3] = (unsigned char)(len >> 8);
	p[4] = (unsigned char)len;
	return 0;
}

/* Builds the whole body of every route but BM_ROUTE_BYTES (generated by bm_req_fill) into
 * body, emptied first. A JSON echo too large to build turns into a 500. Returns 0 or -1. */
int bm_req_body(struct bm_conn *c, struct bm_req *r, struct bm_buf *body, const char **ctype)
{
	int err = 0;

	body->off = body->len = 0;
	*ctype = "text/plain";
	switch (r->route) {
	case BM_ROUTE_ECHO:
		*ctype = r->grpc ? "application/grpc" : "application/json";
		err = r->grpc ? grpc_body(c, r, body) : json_body(c, r, body);
		if (err) {
			body->off = body->len = 0;
			bm_req_refuse(r, 500, "response too large");
			*ctype = "text/plain";
			err = bm_buf_printf(body, BM_REPLY_JSON_MAX, "%s\n", r->reason);
		}
		break;
	case BM_ROUTE_HEALTH:
		err = bm_buf_append(body, "ok", 2, BM_REPLY_JSON_MAX);
		break;
	case BM_ROUTE_ERROR:
		err = bm_buf_printf(body, BM_REPLY_JSON_MAX, "%s\n", r->reason);
		break;
	case BM_ROUTE_BYTES:
		*ctype = "application/octet-stream";
		break;
	}
	return err ? -1 : 0;
}

/* Writes the next (at most n) bytes of a generated body to dst: byte i is pattern[i % 64].
 * Returns how many; 0 once r->size bytes were generated. */
size_t bm_req_fill(struct bm_req *r, char *dst, size_t n)
{
	size_t done = 0;

	if (n > r->size - r->sent)
		n = (size_t)(r->size - r->sent);
	while (done < n) {
		size_t pos = (size_t)((r->sent + done) % 64), k = 64 - pos;

		if (k > n - done)
			k = n - done;
		memcpy(dst + done, pattern + pos, k);
		done += k;
	}
	r->sent += n;
	return n;
}

/* "<method> <path> <status> client=<ip:port> pod=<pod>", flushed at once: tests count them. */
void bm_req_log(struct bm_conn *c, const struct bm_req *r)
{
	struct bm_echo *e = c->echo;
	struct bm_buf *b = &e->logline;
	const char *url = r->url_done ? r->arena.data + r->url_off : "-";
	size_t ulen = r->url_done ? r->url_len : 1;

	if (e->cfg.quiet)
		return;
	b->off = b->len = 0;
	if (bm_buf_printf(b, 2 * BM_HTTP_HEAD_MAX, "%s ",
			  r->url_done && r->method ? r->method : "-") ||
	    bm_buf_reserve(b, ulen, 2 * BM_HTTP_HEAD_MAX))
		return;
	for (size_t i = 0; i < ulen; i++) {
		unsigned char ch = (unsigned char)url[i];

		b->data[b->len++] = ch <= ' ' || ch >= 0x7f ? '?' : (char)ch;
	}
	if (bm_buf_printf(b, 2 * BM_HTTP_HEAD_MAX, " %d client=%s pod=%s\n", r->status, c->peer,
			  e->cfg.pod))
		return;
	fwrite(b->data, 1, b->len, stdout);
	fflush(stdout);
}
