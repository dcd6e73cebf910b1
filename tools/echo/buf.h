/* buf.h - a byte buffer with a read offset, growing on demand up to a cap the caller gives.
 * Pending bytes are data[off, len); free tail space is data[len, cap). */
#ifndef BM_ECHO_BUF_H
#define BM_ECHO_BUF_H

#include <stddef.h>

struct bm_buf {
	char *data;
	size_t off, len, cap;
};

static inline size_t bm_buf_pending(const struct bm_buf *b)
{
	return b->len - b->off;
}

static inline char *bm_buf_head(const struct bm_buf *b)
{
	return b->data + b->off;
}

static inline size_t bm_buf_space(const struct bm_buf *b)
{
	return b->cap - b->len;
}

int bm_buf_reserve(struct bm_buf *b, size_t n, size_t max);
int bm_buf_append(struct bm_buf *b, const void *p, size_t n, size_t max);
int bm_buf_printf(struct bm_buf *b, size_t max, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void bm_buf_consume(struct bm_buf *b, size_t n);
void bm_buf_compact(struct bm_buf *b);
void bm_buf_free(struct bm_buf *b);

#endif
