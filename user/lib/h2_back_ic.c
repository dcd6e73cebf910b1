/* The HTTP/2 back's internal connections: the engine's HTTP/1.1 requests parsed with llhttp
 * into streams, each stream's response written back as HTTP/1.1, and failures answered. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h1_internal.h" /* h1_reason */
#include "h2_internal.h"

/* ---- the request's fields ---- */

static void block_init(struct h2b_block *k, size_t max)
{
	memset(k, 0, sizeof(*k));
	bm_buf_init(&k->arena, max);
}

static void block_free(struct h2b_block *k)
{
	bm_buf_release(&k->arena);
	free(k->f);
	k->f = NULL;
	k->n = k->cap = 0;
}

static struct h2b_stream *stream_new(struct h2b_ic *ic)
{
	const struct bm_h2_opts *o = &ic->b->o;
	struct h2b_stream *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->ic = ic;
	block_init(&st->rq, o->max_header_list);
	block_init(&st->tr, o->max_header_list);
	bm_buf_init(&st->body, o->buf_size);
	bm_buf_init(&st->rs, o->max_header_list);
	st->resp_cl = -1;
	return st;
}

void h2b_stream_free(struct h2b_stream *st)
{
	block_free(&st->rq);
	block_free(&st->tr);
	bm_buf_release(&st->body);
	bm_buf_release(&st->rs);
	free(st);
}

/* ---- llhttp callbacks (parser data: the internal connection) ---- */

static int rq_refuse(llhttp_t *p, int status, const char *why)
{
	((struct h2b_ic *)p->data)->reject = status;
	llhttp_set_error_reason(p, why);
	return HPE_USER;
}

static struct h2b_block *block_of(struct h2b_stream *st)
{
	return st->head_done ? &st->tr : &st->rq;
}

static int rq_begin(llhttp_t *p)
{
	struct h2b_ic *ic = p->data;

	if (!ic->st && !(ic->st = stream_new(ic)))
		return rq_refuse(p, 500, "out of memory");
	return 0;
}

static int rq_url(llhttp_t *p, const char *at, size_t len)
{
	struct h2b_stream *st = ((struct h2b_ic *)p->data)->st;

	if (!st->url_len)
		st->url_off = (uint32_t)st->rq.arena.len;
	if (bm_buf_append(&st->rq.arena, at, len))
		return rq_refuse(p, 431, "request target too long");
	st->url_len += (uint32_t)len;
	return 0;
}

static int rq_url_done(llhttp_t *p)
{
	struct h2b_stream *st = ((struct h2b_ic *)p->data)->st;

	if (!st->url_len)
		st->url_off = (uint32_t)st->rq.arena.len;
	st->rq.bytes += 5 + st->url_len + 32; /* as :path */
	if (bm_buf_append(&st->rq.arena, "", 1) || st->rq.bytes > st->rq.arena.max)
		return rq_refuse(p, 431, "request target too long");
	return 0;
}

static int rq_field(llhttp_t *p, const char *at, size_t len)
{
	struct h2b_ic *ic = p->data;
	struct h2b_stream *st = ic->st;
	struct h2b_block *k = block_of(st);
	int status = st->head_done ? 400 : 431;
	struct h2b_field *f;

	if (!k->in_field) {
		if (k->n >= ic->b->o.max_headers)
			return rq_refuse(p, status, "too many header fields");
		if (k->n == k->cap) {
			size_t cap = k->cap ? 2 * k->cap : 8;
			struct h2b_field *nf = realloc(k->f, cap * sizeof(*nf));

			if (!nf)
				return rq_refuse(p, 500, "out of memory");
			k->f = nf;
			k->cap = cap;
		}
		f = &k->f[k->n];
		memset(f, 0, sizeof(*f));
		f->name_off = (uint32_t)k->arena.len;
		k->in_field = true;
	}
	f = &k->f[k->n];
	if (bm_buf_reserve(&k->arena, len))
		return rq_refuse(p, status, "header fields too large");
	for (size_t i = 0; i < len; i++)
		bm_buf_tail(&k->arena)[i] = (char)tolower((unsigned char)at[i]);
	k->arena.len += len;
	f->name_len += (uint32_t)len;
	return 0;
}

static int rq_field_done(llhttp_t *p)
{
	struct h2b_block *k = block_of(((struct h2b_ic *)p->data)->st);

	k->f[k->n].val_off = (uint32_t)k->arena.len;
	k->f[k->n].val_len = 0;
	return 0;
}

static int rq_value(llhttp_t *p, const char *at, size_t len)
{
	struct h2b_stream *st = ((struct h2b_ic *)p->data)->st;
	struct h2b_block *k = block_of(st);

	if (bm_buf_append(&k->arena, at, len))
		return rq_refuse(p, st->head_done ? 400 : 431, "header fields too large");
	k->f[k->n].val_len += (uint32_t)len;
	return 0;
}

static int rq_value_done(llhttp_t *p)
{
	struct h2b_stream *st = ((struct h2b_ic *)p->data)->st;
	struct h2b_block *k = block_of(st);
	struct h2b_field *f = &k->f[k->n];

	while (f->val_len && (k->arena.data[f->val_off + f->val_len - 1] == ' ' ||
			      k->arena.data[f->val_off + f->val_len - 1] == '\t'))
		f->val_len--;
	k->bytes += f->name_len + f->val_len + 32;
	if (k->bytes > k->arena.max)
		return rq_refuse(p, st->head_done ? 400 : 431, "header fields too large");
	k->n++;
	k->in_field = false;
	return 0;
}

static int rq_head_done(llhttp_t *p)
{
	struct h2b_stream *st = ((struct h2b_ic *)p->data)->st;

	st->head_done = true;
	st->method = p->method;
	st->has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);
	return 0;
}

static int rq_body(llhttp_t *p, const char *at, size_t len)
{
	struct h2b_stream *st = ((struct h2b_ic *)p->data)->st;

	/* ic_feed never gives llhttp more bytes than the body buffer has room for. */
	if (bm_buf_append(&st->body, at, len))
		return rq_refuse(p, 500, "request body buffer overrun");
	return 0;
}

static int rq_done(llhttp_t *p)
{
	struct h2b_ic *ic = p->data;

	ic->st->req_done = true;
	/* After an upgrade request (dropped upstream: HTTP/2 has no Upgrade) the connection is
	 * not HTTP/1 any more for the engine: it closes after the answer. */
	ic->st->keepalive = llhttp_should_keep_alive(p) && !p->upgrade;
	ic->paused = true;
	return HPE_PAUSED; /* the next request waits until this exchange is over */
}

static const llhttp_settings_t rq_settings = {
	.on_message_begin = rq_begin,
	.on_url = rq_url,
	.on_url_complete = rq_url_done,
	.on_header_field = rq_field,
	.on_header_field_complete = rq_field_done,
	.on_header_value = rq_value,
	.on_header_value_complete = rq_value_done,
	.on_headers_complete = rq_head_done,
	.on_body = rq_body,
	.on_message_complete = rq_done,
};

/* ---- the connection ---- */

static void ic_want(struct h2b_ic *ic)
{
	struct bm_conn *c = ic->c;

	if (ic->closed)
		return;
	bm_conn_want(c, ic->lingering || bm_buf_room(&c->in) > 0,
		     bm_buf_pending(&c->out) || (c->shut_pending && !c->wr_shut));
}

static void ic_free_fn(struct bm_ev_defer *d)
{
	free(bm_container_of(d, struct h2b_ic, dead));
}

/* The request in progress goes: out of the queue, its stream reset if it has one. */
static void ic_detach(struct h2b_ic *ic)
{
	struct h2b_stream *st = ic->st;

	h2b_unqueue(ic);
	if (!st)
		return;
	ic->st = NULL;
	st->ic = NULL;
	if (st->up)
		h2b_stream_cancel(st);
	else
		h2b_stream_free(st);
}

void h2b_ic_close(struct h2b_ic *ic)
{
	struct bm_h2_back *b = ic->b;

	if (ic->closed)
		return;
	ic->closed = true;
	ic_detach(ic);
	bm_ev_timer_cancel(b->loop, &ic->t_kick);
	bm_ev_timer_cancel(b->loop, &ic->t_linger);
	if (ic->prev)
		ic->prev->next = ic->next;
	else
		b->ics = ic->next;
	if (ic->next)
		ic->next->prev = ic->prev;
	bm_conn_destroy(ic->c);
	ic->c = NULL;
	h2b_pool_put(b, ic->pool);
	bm_ev_defer(b->loop, &ic->dead, ic_free_fn);
}

/* Our last bytes out, then FIN; what the engine still sends is read and dropped (so no reset
 * destroys the answer) until it closes, or for H2B_LINGER_MS at most. */
static void ic_linger(struct h2b_ic *ic)
{
	ic_detach(ic);
	ic->lingering = true;
	bm_buf_consume(&ic->c->in, bm_buf_pending(&ic->c->in));
	if (bm_conn_shutdown(ic->c) == BM_ERROR ||
	    bm_ev_timer_arm(ic->b->loop, &ic->t_linger, H2B_LINGER_MS)) {
		h2b_ic_close(ic);
		return;
	}
	ic_want(ic);
}

void h2b_ic_finish(struct h2b_ic *ic)
{
	if (!ic->closed && !ic->lingering)
		ic_linger(ic);
}

void h2b_ic_fail(struct h2b_ic *ic, const char *what)
{
	if (ic->closed || ic->lingering)
		return;
	if (ic->st && ic->st->resp_started) { /* a head went out: the engine resets its client */
		h2b_ic_close(ic);
		return;
	}
	if (bm_buf_printf(&ic->c->out,
			  "HTTP/1.1 503 Service Unavailable\r\nx-bm-h2-fail: %s\r\n"
			  "content-length: 0\r\n\r\n", what)) {
		h2b_ic_close(ic);
		return;
	}
	ic_linger(ic);
}

/* A request the engine should never have sent (malformed, over our limits): answered as it
 * is, and the connection closes. */
static void ic_reject(struct h2b_ic *ic)
{
	int status = ic->reject ? ic->reject : 400;

	if (ic->st && ic->st->resp_started) {
		h2b_ic_close(ic);
		return;
	}
	if (bm_buf_printf(&ic->c->out, "HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
			  status, h1_reason(status))) {
		h2b_ic_close(ic);
		return;
	}
	ic_linger(ic);
}

bool h2b_ic_flush(struct h2b_ic *ic)
{
	int rc;

	if (ic->closed)
		return false;
	rc = bm_conn_flush(ic->c);
	if (rc == BM_ERROR) {
		h2b_ic_close(ic);
		return false;
	}
	if (rc == BM_OK && ic->st && ic->st->unconsumed)
		h2b_stream_consumed(ic->st);
	ic_want(ic);
	return true;
}

/* Parses the engine's bytes as far as the stream's body buffer has room: the rest waits in
 * the input buffer, and reading stops while that is full too. */
static void ic_feed(struct h2b_ic *ic)
{
	struct bm_buf *in = &ic->c->in;

	while (!ic->paused && !ic->lingering && !ic->closed && bm_buf_pending(in)) {
		struct h2b_stream *st = ic->st;
		const char *at = bm_buf_head(in);
		size_t n = bm_buf_pending(in), used, before = st ? bm_buf_pending(&st->body) : 0;
		bool had_head = st && st->head_done;
		llhttp_errno_t err;

		if (had_head) {
			if (!bm_buf_room(&st->body))
				return;
			if (n > bm_buf_room(&st->body))
				n = bm_buf_room(&st->body);
		}
		err = llhttp_execute(&ic->p, at, n);
		if (err == HPE_OK) {
			used = n;
		} else if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
			used = (size_t)(llhttp_get_error_pos(&ic->p) - at);
			ic->paused = true;
		} else {
			ic_reject(ic);
			return;
		}
		bm_buf_consume(in, used);
		st = ic->st;
		if (!st)
			continue; /* only empty lines before a request */
		if (st->head_done && !had_head)
			h2b_enqueue(ic);
		else if (st->up && (bm_buf_pending(&st->body) != before || st->req_done))
			h2b_stream_resume(st);
	}
}

static void ic_service(struct h2b_ic *ic)
{
	struct bm_conn *c = ic->c;

	for (int i = 0; i < 8 && !ic->closed; i++) {
		ssize_t n = bm_conn_fill(c);

		if (n < 0) {
			h2b_ic_close(ic);
			return;
		}
		if (ic->lingering)
			bm_buf_consume(&c->in, bm_buf_pending(&c->in));
		else
			ic_feed(ic);
		if (n == 0)
			break;
	}
	if (ic->closed)
		return;
	/* The engine closed: between requests that is the normal end; mid-request it gave up
	 * (timeout, client gone) and the stream is cancelled. */
	if (c->rd_eof) {
		h2b_ic_close(ic);
		return;
	}
	if (!ic->st && !bm_buf_pending(&c->in))
		bm_buf_release(&c->in); /* idle: no buffer memory */
	if (h2b_ic_flush(ic) && !ic->st && !bm_buf_pending(&c->out))
		bm_buf_release(&c->out);
}

static void ic_event(struct bm_conn *c, uint32_t events)
{
	struct h2b_ic *ic = c->data;

	if ((events & BM_EV_ERROR) && bm_conn_check_error(c)) {
		h2b_ic_close(ic);
		return;
	}
	ic_service(ic);
}

static void ic_kick_fn(struct bm_evloop *l, struct bm_ev_timer *t)
{
	(void)l;
	ic_service(t->data);
}

static void ic_linger_fn(struct bm_evloop *l, struct bm_ev_timer *t)
{
	(void)l;
	h2b_ic_close(t->data);
}

void h2b_ic_kick(struct h2b_ic *ic)
{
	if (!ic->closed)
		bm_ev_timer_arm(ic->b->loop, &ic->t_kick, 0);
}

void h2b_ic_done(struct h2b_ic *ic)
{
	struct h2b_stream *st = ic->st;
	bool keep = st->keepalive;

	ic->st = NULL;
	st->ic = NULL;
	h2b_stream_free(st);
	if (!keep) {
		h2b_ic_finish(ic);
		return;
	}
	ic->paused = false;
	llhttp_resume(&ic->p);
	h2b_ic_kick(ic); /* bytes of the next request may be here already */
}

int h2b_ic_new(struct bm_h2_back *b, struct h2b_pool *p, int fd)
{
	struct h2b_ic *ic = calloc(1, sizeof(*ic));
	int rc = -ENOMEM;

	if (!ic)
		goto cleanup;
	ic->c = bm_conn_new(b->loop, fd, b->o.buf_size, b->ic_out_max);
	fd = -1; /* the conn has it, also on failure */
	if (!ic->c)
		goto cleanup;
	ic->b = b;
	ic->pool = p;
	llhttp_init(&ic->p, HTTP_REQUEST, &rq_settings);
	ic->p.data = ic;
	bm_ev_timer_init(&ic->t_kick, ic_kick_fn, ic);
	bm_ev_timer_init(&ic->t_linger, ic_linger_fn, ic);
	ic->c->on_event = ic_event;
	ic->c->data = ic;
	rc = bm_conn_want(ic->c, true, false);
	if (rc)
		goto cleanup;
	ic->next = b->ics;
	if (b->ics)
		b->ics->prev = ic;
	b->ics = ic;
	return 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (ic)
		bm_conn_destroy(ic->c);
	free(ic);
	h2b_pool_put(b, p);
	return rc;
}

/* ---- the response, to the engine ---- */

/* Did the request say it takes trailers (te: trailers, as gRPC clients send)? */
static bool takes_trailers(const struct h2b_stream *st)
{
	const struct h2b_block *k = &st->rq;

	for (size_t i = 0; i < k->n; i++)
		if (k->f[i].name_len == 2 && !memcmp(k->arena.data + k->f[i].name_off, "te", 2) &&
		    h2_te_ok(k->arena.data + k->f[i].val_off, k->f[i].val_len))
			return true;
	return false;
}

int h2b_ic_write_head(struct h2b_stream *st)
{
	struct bm_buf *out = &st->ic->c->out;
	int s = st->status;
	bool head = st->method == HTTP_HEAD;

	st->resp_nobody = head || s == 204 || s == 304;
	if (bm_buf_printf(out, "HTTP/1.1 %d %s\r\n", s, h1_reason(s)) ||
	    bm_buf_append(out, bm_buf_head(&st->rs), bm_buf_pending(&st->rs)))
		return -1;
	if (st->resp_nobody) {
		/* HEAD and 304 keep the length of what they describe; 204 has none. */
		if (s != 204 && st->resp_cl >= 0 &&
		    bm_buf_printf(out, "content-length: %lld\r\n", (long long)st->resp_cl))
			return -1;
	} else if (st->resp_done) { /* END_STREAM on the head, trailers-only gRPC included */
		if (bm_buf_append(out, "content-length: 0\r\n", 19))
			return -1;
	} else if (st->resp_cl >= 0 && !takes_trailers(st)) {
		/* A length is kept for a client that takes no trailers; one that does gets the body
		 * chunked, so the endpoint's trailers (HTTP/2 allows them after a length) can
		 * follow it. */
		if (bm_buf_printf(out, "content-length: %lld\r\n", (long long)st->resp_cl))
			return -1;
	} else {
		if (bm_buf_append(out, "transfer-encoding: chunked\r\n", 28))
			return -1;
		st->resp_chunked = true;
	}
	st->resp_started = true;
	bm_buf_consume(&st->rs, bm_buf_pending(&st->rs));
	return bm_buf_append(out, "\r\n", 2);
}
