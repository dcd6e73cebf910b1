/* buf.c - bounded byte buffers for connection input, output and response bodies.
 * Every growth is checked against a caller's cap, so no peer can make one grow without end. */
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Moves pending bytes to the front so the tail space is as large as it can be. */
void bm_buf_compact(struct bm_buf *b)
{
	if (!b->off)
		return;
	memmove(b->data, b->data + b->off, b->len - b->off);
	b->len -= b->off;
	b->off = 0;
}

/* Makes at least n bytes of tail space; -ENOBUFS if that needs more than max bytes in all. */
int bm_buf_reserve(struct bm_buf *b, size_t n, size_t max)
{
	size_t need, cap;
	char *data;

	if (bm_buf_space(b) >= n)
		return 0;
	bm_buf_compact(b);
	if (bm_buf_space(b) >= n)
		return 0;
	if (n > max || b->len > max - n)
		return -ENOBUFS;
	need = b->len + n;
	cap = b->cap ? b->cap : (max < 256 ? max : 256);
	while (cap < need)
		cap = cap > max / 2 ? max : cap * 2;
	data = realloc(b->data, cap);
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

int bm_buf_append(struct bm_buf *b, const void *p, size_t n, size_t max)
{
	int err;

	if (!n)
		return 0;
	err = bm_buf_reserve(b, n, max);
	if (err)
		return err;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int bm_buf_printf(struct bm_buf *b, size_t max, const char *fmt, ...)
{
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	err = bm_buf_reserve(b, (size_t)n + 1, max);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void bm_buf_consume(struct bm_buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void bm_buf_free(struct bm_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}
