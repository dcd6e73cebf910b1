/* llhttp glue for the engine: head capture into a bounded arena (names lowercased, limits
 * enforced), and the request and response callback tables that hand over to h1_req/h1_resp. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h1_internal.h"

void h1_head_init(struct h1_head *h, size_t arena_max, size_t max_fields)
{
	memset(h, 0, sizeof(*h));
	bm_buf_init(&h->arena, arena_max);
	bm_buf_init(&h->trailers, arena_max);
	h->cap = max_fields + H1_EXTRA_FIELDS;
}

int h1_head_alloc(struct h1_head *h)
{
	if (!h->f)
		h->f = calloc(h->cap, sizeof(*h->f));
	return h->f ? 0 : -1;
}

void h1_head_reset(struct h1_head *h)
{
	h->arena.off = h->arena.len = 0;
	h->n = 0;
	h->url_off = h->url_len = 0;
	h->bytes = 0;
	h->in_field = h->done = h->has_connection = false;
	h->err_status = 0;
	h->trailer_bytes = 0;
	h->tr_line = 0;
	h->tr_drop = false;
	/* A large head's memory is not kept for the connection's next ones. */
	if (h->arena.cap > 16384)
		bm_buf_release(&h->arena);
	if (h->trailers.cap)
		bm_buf_release(&h->trailers);
}

void h1_head_free(struct h1_head *h)
{
	bm_buf_release(&h->arena);
	bm_buf_release(&h->trailers);
	free(h->f);
	h->f = NULL;
	h->n = 0;
}

const struct h1_field *h1_head_find(const struct h1_head *h, const char *name, size_t *count)
{
	const struct h1_field *first = NULL;
	size_t i, n = 0;

	for (i = 0; i < h->n; i++) {
		if (h1_name_eq(h1_name(h, &h->f[i]), h->f[i].name_len, name)) {
			if (!first)
				first = &h->f[i];
			n++;
		}
	}
	if (count)
		*count = n;
	return first;
}

/* Is tok (lowercase) one of the comma-separated tokens of list (any case)? */
bool h1_token_in(const char *list, size_t len, const char *tok)
{
	size_t tl = strlen(tok), i = 0;

	while (i < len) {
		size_t b, e;

		while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
			i++;
		b = i;
		while (i < len && list[i] != ',')
			i++;
		e = i;
		while (e > b && (list[e - 1] == ' ' || list[e - 1] == '\t'))
			e--;
		if (e - b == tl && !strncasecmp(list + b, tok, tl))
			return true;
	}
	return false;
}

/* Is the field name listed in a Connection header of h (so hop-by-hop)? */
bool h1_listed_in_connection(const struct h1_head *h, const char *name, size_t len)
{
	char tok[128];
	size_t i;

	if (!h->has_connection || len >= sizeof(tok))
		return false;
	memcpy(tok, name, len);
	tok[len] = 0;
	for (i = 0; i < h->n; i++) {
		const struct h1_field *f = &h->f[i];

		if (h1_name_eq(h1_name(h, f), f->name_len, "connection") &&
		    h1_token_in(h1_val(h, f), f->val_len, tok))
			return true;
	}
	return false;
}

/* ---- capture ---- */

static struct h1_head *head_of(llhttp_t *p)
{
	struct h1_sess *s = p->data;

	return p->type == HTTP_REQUEST ? &s->rq : &s->rs;
}

static int limit(llhttp_t *p, struct h1_head *h, int status, const char *why)
{
	h->err_status = status;
	llhttp_set_error_reason(p, why);
	return HPE_USER;
}

static int on_message_begin(llhttp_t *p)
{
	h1_head_reset(head_of(p));
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct h1_head *h = head_of(p);

	if (!h->url_len)
		h->url_off = (uint32_t)h->arena.len;
	if (bm_buf_append(&h->arena, at, len))
		return limit(p, h, 431, "request target too long");
	h->url_len += (uint32_t)len;
	return 0;
}

static int on_url_complete(llhttp_t *p)
{
	struct h1_head *h = head_of(p);

	if (!h->url_len)
		h->url_off = (uint32_t)h->arena.len;
	if (bm_buf_append(&h->arena, "", 1))
		return limit(p, h, 431, "request target too long");
	return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
	struct h1_head *h = head_of(p);

	if (!h->url_len)
		h->url_off = (uint32_t)h->arena.len;
	/* A reason phrase is kept up to 128 bytes; the rest is dropped. */
	if (h->url_len + len > 128)
		len = h->url_len < 128 ? 128 - h->url_len : 0;
	if (bm_buf_append(&h->arena, at, len))
		return limit(p, h, 502, "response head too large");
	h->url_len += (uint32_t)len;
	return 0;
}

/* Trailer fields go to h->trailers as "name: value\r\n" lines: a name's bytes lowercased,
 * the ": " at the name's end (trailer_mark), the value, the CRLF at its end. */
static int trailer_add(llhttp_t *p, struct h1_head *h, const char *at, size_t len, bool name)
{
	struct bm_buf *t = &h->trailers;

	h->trailer_bytes += len;
	if (h->trailer_bytes > h->arena.max || bm_buf_reserve(t, len + 4))
		return limit(p, h, 400, "trailers too large");
	if (h->tr_drop)
		return 0;
	for (size_t i = 0; i < len; i++)
		bm_buf_tail(t)[i] = name ? (char)tolower((unsigned char)at[i]) : at[i];
	t->len += len;
	return 0;
}

/* At a trailer field's name end (sep) or value end: framing, routing and hop-by-hop fields
 * are not trailers (RFC 9110 6.5.1) and are dropped with their value. */
static int trailer_mark(llhttp_t *p, struct h1_head *h, bool sep)
{
	struct bm_buf *t = &h->trailers;
	const char *line = t->data + t->off + h->tr_line;

	if (sep) {
		size_t nl = t->len - h->tr_line;

		h->tr_drop = h1_is_hop_by_hop(line, nl) || h1_name_eq(line, nl, "content-length") ||
			     h1_name_eq(line, nl, "host") || h1_name_eq(line, nl, "te") ||
			     h1_name_eq(line, nl, "expect");
		if (h->tr_drop)
			t->len = h->tr_line;
		else if (bm_buf_append(t, ": ", 2))
			return limit(p, h, 400, "trailers too large");
		return 0;
	}
	if (h->tr_drop) {
		h->tr_drop = false;
		return 0;
	}
	while (t->len > h->tr_line && (t->data[t->off + t->len - 1] == ' ' ||
				       t->data[t->off + t->len - 1] == '\t'))
		t->len--;
	if (bm_buf_append(t, "\r\n", 2))
		return limit(p, h, 400, "trailers too large");
	h->tr_line = t->len;
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct h1_head *h = head_of(p);
	struct h1_field *f;
	size_t i;

	if (h->done) /* a trailer */
		return trailer_add(p, h, at, len, true);
	if (!h->in_field) {
		if (h->n + H1_EXTRA_FIELDS >= h->cap)
			return limit(p, h, 431, "too many header fields");
		if (h1_head_alloc(h))
			return limit(p, h, 431, "out of memory");
		f = &h->f[h->n];
		memset(f, 0, sizeof(*f));
		f->name_off = (uint32_t)h->arena.len;
		h->in_field = true;
	}
	f = &h->f[h->n];
	if (bm_buf_reserve(&h->arena, len))
		return limit(p, h, 431, "header fields too large");
	for (i = 0; i < len; i++)
		bm_buf_tail(&h->arena)[i] = (char)tolower((unsigned char)at[i]);
	h->arena.len += len;
	f->name_len += (uint32_t)len;
	return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct h1_head *h = head_of(p);

	/* ": value": this llhttp lets it through. */
	if (h->done ? h->trailers.len == h->tr_line : !h->in_field || !h->f[h->n].name_len)
		return limit(p, h, 400, "empty header field name");
	if (h->done)
		return trailer_mark(p, h, true);
	h->f[h->n].val_off = (uint32_t)h->arena.len;
	h->f[h->n].val_len = 0;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct h1_head *h = head_of(p);

	if (h->done)
		return trailer_add(p, h, at, len, false);
	if (bm_buf_append(&h->arena, at, len))
		return limit(p, h, 431, "header fields too large");
	h->f[h->n].val_len += (uint32_t)len;
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct h1_head *h = head_of(p);
	struct h1_field *f;

	if (h->done)
		return trailer_mark(p, h, false);
	f = &h->f[h->n];
	while (f->val_len && (h->arena.data[f->val_off + f->val_len - 1] == ' ' ||
			      h->arena.data[f->val_off + f->val_len - 1] == '\t'))
		f->val_len--;
	if (h1_name_eq(h->arena.data + f->name_off, f->name_len, "connection"))
		h->has_connection = true;
	h->n++;
	h->in_field = false;
	return 0;
}

/* ---- request ---- */

static int req_headers_complete(llhttp_t *p)
{
	head_of(p)->done = true;
	return HPE_PAUSED; /* route before any body byte is read */
}

static int req_body(llhttp_t *p, const char *at, size_t len)
{
	h1_req_on_body(p->data, at, len);
	return 0;
}

static int req_message_complete(llhttp_t *p)
{
	((struct h1_sess *)p->data)->req_msg_done = true;
	return HPE_PAUSED; /* the next pipelined request waits */
}

const llhttp_settings_t h1_req_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_url_complete = on_url_complete,
	.on_header_field = on_header_field,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value = on_header_value,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = req_headers_complete,
	.on_body = req_body,
	.on_message_complete = req_message_complete,
};

/* ---- response ---- */

static int resp_message_begin(llhttp_t *p)
{
	struct h1_sess *s = p->data;

	h1_head_reset(&s->rs);
	return 0;
}

static int resp_headers_complete(llhttp_t *p)
{
	struct h1_sess *s = p->data;

	s->rs.done = true;
	return h1_resp_on_head(s);
}

static int resp_body(llhttp_t *p, const char *at, size_t len)
{
	h1_resp_on_body(p->data, at, len);
	return 0;
}

static int resp_message_complete(llhttp_t *p)
{
	struct h1_sess *s = p->data;

	if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101) {
		/* An interim response, dropped: the final one follows on the same parser. */
		h1_head_reset(&s->rs);
		return 0;
	}
	s->resp_keepalive = llhttp_should_keep_alive(p);
	s->resp_done = true;
	return HPE_PAUSED;
}

const llhttp_settings_t h1_resp_settings = {
	.on_message_begin = resp_message_begin,
	.on_status = on_status,
	.on_header_field = on_header_field,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value = on_header_value,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = resp_headers_complete,
	.on_body = resp_body,
	.on_message_complete = resp_message_complete,
};
