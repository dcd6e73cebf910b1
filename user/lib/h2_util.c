/* What the HTTP/2 front and back share (h2_internal.h): defaults, the frame pump between an
 * nghttp2 session and a connection, the preface sniff and the connection-specific fields. */
#include <string.h>
#include <strings.h>

#include "h2_internal.h"

void h2_opts_fill(struct bm_h2_opts *o, const struct bm_h2_opts *in)
{
	if (in)
		*o = *in;
	else
		memset(o, 0, sizeof(*o));
#define DEF(f, v)          \
	if (!o->f)         \
		o->f = v
	DEF(max_concurrent_streams, 100);
	DEF(max_header_list, 65536);
	DEF(max_headers, 100);
	DEF(idle_timeout_ms, 60000);
	DEF(buf_size, 65536);
	DEF(connect_timeout_ms, 10000);
	DEF(upstream_idle_ms, 30000);
	DEF(max_resets_per_s, 200);
#undef DEF
}

int bm_h2_sniff(const void *buf, size_t len)
{
	size_t n = len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN;

	if (memcmp(buf, H2_PREFACE, n))
		return -1;
	return len >= H2_PREFACE_LEN ? 1 : 0;
}

int h2_io_recv(nghttp2_session *ng, struct bm_conn *c)
{
	while (bm_buf_pending(&c->in)) {
		ssize_t n = nghttp2_session_mem_recv(ng, (const uint8_t *)bm_buf_head(&c->in),
						     bm_buf_pending(&c->in));

		if (n < 0)
			return -1;
		bm_buf_consume(&c->in, (size_t)n);
		if (n == 0)
			break;
	}
	return 0;
}

int h2_io_send(nghttp2_session *ng, struct bm_conn *c, size_t high)
{
	/* Frames up to high, flushed; when the socket took them all and nghttp2 has more, again
	 * (a bounded number of rounds: the loop's other work waits meanwhile). */
	for (int round = 0; round < H2_SEND_ROUNDS; round++) {
		while (bm_buf_pending(&c->out) < high) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(ng, &data);

			if (n < 0)
				return -1;
			if (n == 0)
				break;
			if (bm_buf_append(&c->out, data, (size_t)n))
				return -1; /* out's max leaves H2_OUT_SLACK over high: cannot happen */
		}
		if (bm_conn_flush(c) == BM_ERROR)
			return -1;
		if (bm_buf_pending(&c->out) || !nghttp2_session_want_write(ng))
			return 0;
	}
	return 1;
}

bool h2_io_done(nghttp2_session *ng)
{
	return !nghttp2_session_want_read(ng) && !nghttp2_session_want_write(ng);
}

bool h2_conn_specific(const char *name, size_t len)
{
	static const char *const names[] = { "connection", "keep-alive", "proxy-connection",
					     "transfer-encoding", "upgrade", "http2-settings",
					     NULL };

	for (size_t i = 0; names[i]; i++)
		if (strlen(names[i]) == len && !memcmp(names[i], name, len))
			return true;
	return false;
}

bool h2_te_ok(const char *value, size_t len)
{
	while (len && (value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	while (len && (*value == ' ' || *value == '\t')) {
		value++;
		len--;
	}
	return len == 8 && !strncasecmp(value, "trailers", 8);
}
