/* The HTTP/2 front's responses: the engine's HTTP/1.1 answer parsed with llhttp into a
 * stream's HEADERS, DATA (a provider fed as bytes arrive) and trailers. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_internal.h"

static struct h2f_stream *stream_of(llhttp_t *p)
{
	return p->data;
}

/* The arena's start ("" while nothing was stored: a field may be empty). */
static const char *arena(const struct h2f_stream *s)
{
	return s->rs.data ? bm_buf_head(&s->rs) : "";
}

static int on_message_begin(llhttp_t *p)
{
	struct h2f_stream *s = stream_of(p);

	bm_buf_consume(&s->rs, bm_buf_pending(&s->rs));
	s->rf_n = s->rf_head = 0;
	s->rf_open = s->rs_head = false;
	return 0;
}

static struct h2f_field *field_open(struct h2f_stream *s)
{
	if (s->rf_n == s->rf_cap) {
		size_t cap = s->rf_cap ? s->rf_cap * 2 : 16;
		struct h2f_field *f;

		if (cap > H2F_RS_FIELDS_MAX)
			return NULL;
		f = realloc(s->rf, cap * sizeof(*f));
		if (!f)
			return NULL;
		s->rf = f;
		s->rf_cap = cap;
	}
	memset(&s->rf[s->rf_n], 0, sizeof(s->rf[0]));
	s->rf[s->rf_n].name_off = s->rf[s->rf_n].val_off = (uint32_t)bm_buf_pending(&s->rs);
	s->rf_open = true;
	return &s->rf[s->rf_n];
}

/* The field being read (llhttp may skip the name's span when it is empty). */
static struct h2f_field *field_cur(struct h2f_stream *s)
{
	return s->rf_open ? &s->rf[s->rf_n] : field_open(s);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct h2f_stream *s = stream_of(p);
	struct h2f_field *f = field_cur(s);
	char *t;

	if (!f || bm_buf_reserve(&s->rs, len))
		return HPE_USER;
	if (!len) /* llhttp may hand over an empty span at a read's end */
		return 0;
	t = bm_buf_tail(&s->rs);
	for (size_t i = 0; i < len; i++)
		t[i] = (char)tolower((unsigned char)at[i]);
	s->rs.len += len;
	f->name_len += (uint32_t)len;
	return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct h2f_stream *s = stream_of(p);
	struct h2f_field *f = field_cur(s);

	if (!f)
		return HPE_USER;
	f->val_off = (uint32_t)bm_buf_pending(&s->rs);
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct h2f_stream *s = stream_of(p);
	struct h2f_field *f = field_cur(s);

	if (!f || bm_buf_append(&s->rs, at, len))
		return HPE_USER;
	f->val_len += (uint32_t)len;
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct h2f_stream *s = stream_of(p);
	struct h2f_field *f = field_cur(s);
	const char *v;

	if (!f)
		return HPE_USER;
	v = arena(s) + f->val_off;

	while (f->val_len && (v[f->val_len - 1] == ' ' || v[f->val_len - 1] == '\t'))
		f->val_len--;
	s->rf_n++;
	s->rf_open = false;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct h2f_stream *s = stream_of(p);

	if (p->status_code >= 100 && p->status_code < 200) {
		if (p->status_code == 101)
			return -1; /* nothing was asked to upgrade */
		return 0;          /* interim: dropped at its end */
	}
	if (p->status_code < 200 || p->status_code > 999)
		return -1; /* HTTP/2 has three digits (RFC 9113 8.3.2) */
	s->rs_head = true;
	s->rf_head = s->rf_n; /* fields after these are trailers */
	return s->is_head ? 1 : 0; /* a HEAD's answer has no body, whatever its length says */
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	/* Room was checked before the feed: the body is never more than the bytes fed. */
	return bm_buf_append(&stream_of(p)->rs_body, at, len) ? HPE_USER : 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct h2f_stream *s = stream_of(p);

	if (p->status_code >= 100 && p->status_code < 200)
		return 0; /* the final answer follows on the same parser */
	s->rs_done = true;
	s->rs_keepalive = llhttp_should_keep_alive(p);
	return HPE_PAUSED; /* anything after it is not part of this exchange */
}

static const llhttp_settings_t resp_settings = {
	.on_message_begin = on_message_begin,
	.on_header_field = on_header_field,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value = on_header_value,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void h2f_resp_init(struct h2f_stream *s)
{
	llhttp_init(&s->pp, HTTP_RESPONSE, &resp_settings);
	s->pp.data = s;
}

/* nva for rf[from, to): names lowercased, connection-specific fields left out, and any
 * HTTP/2 would refuse (an empty name, a NUL in a value). */
static size_t build_nva(const struct h2f_stream *s, nghttp2_nv *nva, size_t from, size_t to)
{
	size_t n = 0;

	for (size_t i = from; i < to; i++) {
		const struct h2f_field *f = &s->rf[i];
		const char *a = arena(s);

		if (h2_conn_specific(a + f->name_off, f->name_len) ||
		    (f->name_len == 2 && !memcmp(a + f->name_off, "te", 2)) ||
		    !nghttp2_check_header_name((const uint8_t *)a + f->name_off, f->name_len) ||
		    !nghttp2_check_header_value((const uint8_t *)a + f->val_off, f->val_len))
			continue;
		nva[n].name = (uint8_t *)(a + f->name_off);
		nva[n].namelen = f->name_len;
		nva[n].value = (uint8_t *)(a + f->val_off);
		nva[n].valuelen = f->val_len;
		nva[n].flags = NGHTTP2_NV_FLAG_NONE;
		n++;
	}
	return n;
}

static bool has_trailers(const struct h2f_stream *s)
{
	return s->rf_n > s->rf_head;
}

static ssize_t resp_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2f_stream *s = src->ptr;
	struct bm_buf *b = &s->rs_body;
	size_t n = bm_buf_pending(b) < len ? bm_buf_pending(b) : len;
	nghttp2_nv *nva;
	size_t nv;
	int rc;

	(void)ud;
	if (n) {
		memcpy(buf, bm_buf_head(b), n);
		bm_buf_consume(b, n);
	}
	if (n && s->ic)
		h2f_ic_kick(s->ic); /* room again: the engine's next bytes may come */
	if (bm_buf_pending(b) || !s->rs_done) {
		if (n)
			return (ssize_t)n;
		s->rs_deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	bm_buf_release(b);
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (!has_trailers(s))
		return (ssize_t)n;
	/* Trailers end the stream instead of this DATA. */
	nva = calloc(s->rf_n - s->rf_head, sizeof(*nva));
	if (!nva)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	nv = build_nva(s, nva, s->rf_head, s->rf_n);
	*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
	rc = nghttp2_submit_trailer(ng, id, nva, nv);
	free(nva);
	return rc ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : (ssize_t)n;
}

nghttp2_data_provider h2f_resp_provider(struct h2f_stream *s)
{
	return (nghttp2_data_provider){ .source.ptr = s, .read_callback = resp_read };
}

static void submit_head(struct h2f_stream *s)
{
	nghttp2_session *ng = s->cx->ng;
	nghttp2_data_provider prd = h2f_resp_provider(s);
	char status[12];
	nghttp2_nv *nva = calloc(s->rf_head + 1, sizeof(*nva));
	size_t n;
	bool end_now = s->rs_done && !bm_buf_pending(&s->rs_body) && !has_trailers(s);

	s->rs_submitted = true;
	if (!nva) {
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	nva[0].name = (uint8_t *)":status";
	nva[0].namelen = 7;
	nva[0].value = (uint8_t *)status;
	nva[0].valuelen = (size_t)snprintf(status, sizeof(status), "%d", s->pp.status_code);
	n = 1 + build_nva(s, nva + 1, 0, s->rf_head);
	/* No body and no trailers: END_STREAM on the HEADERS. */
	if (nghttp2_submit_response(ng, s->id, nva, n, end_now ? NULL : &prd))
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
	free(nva);
}

bool h2f_resp_pump(struct h2f_stream *s)
{
	struct bm_conn *c = s->ic->c;
	size_t max = s->cx->f->o.buf_size;
	bool prog = false;

	while (!s->rs_done && !s->rs_bad && bm_buf_pending(&s->rs_body) < max) {
		size_t room = max - bm_buf_pending(&s->rs_body), feed, used;
		llhttp_errno_t e;

		if (!bm_buf_pending(&c->in)) {
			if (bm_conn_fill(c) <= 0)
				break; /* nothing now, EOF or a failure: the caller looks */
			prog = true;
		}
		feed = bm_buf_pending(&c->in) < room ? bm_buf_pending(&c->in) : room;
		e = llhttp_execute(&s->pp, bm_buf_head(&c->in), feed);
		used = feed;
		if (e == HPE_PAUSED)
			used = (size_t)(llhttp_get_error_pos(&s->pp) - bm_buf_head(&c->in));
		else if (e != HPE_OK)
			s->rs_bad = true;
		bm_buf_consume(&c->in, used);
		prog = true;
	}
	if (s->rs_bad || s->closed)
		return prog;
	if (s->rs_head && !s->rs_submitted) {
		submit_head(s);
	} else if (s->rs_submitted && s->rs_deferred &&
		   (bm_buf_pending(&s->rs_body) || s->rs_done)) {
		s->rs_deferred = false;
		nghttp2_session_resume_data(s->cx->ng, s->id);
	}
	return prog;
}

bool h2f_resp_eof(struct h2f_stream *s)
{
	/* A body delimited by the close ends here (the engine frames its own, but this is
	 * HTTP/1.1's rule); anything else cut short stays undone. */
	if (!s->rs_head || s->rs_bad)
		return false;
	llhttp_finish(&s->pp);
	if (!s->rs_done)
		return false;
	s->rs_keepalive = false;
	if (!s->rs_submitted)
		submit_head(s);
	else if (s->rs_deferred) {
		s->rs_deferred = false;
		nghttp2_session_resume_data(s->cx->ng, s->id);
	}
	return true;
}
