/* h2.h - HTTP/2 (h2c) in bm-echo: a connection's nghttp2 session (h2.c) and its streams,
 * each one request answered as HTTP/1.x would answer it (h2_stream.c). */
#ifndef BM_ECHO_H2_H
#define BM_ECHO_H2_H

#include <nghttp2/nghttp2.h>

#include "http.h"

#define BM_H2_MAX_STREAMS	100			/* SETTINGS_MAX_CONCURRENT_STREAMS */
#define BM_H2_HELD_MAX		(4 * 1024 * 1024)	/* stream memory per connection */
#define BM_H2_OUT_HIGH		(64 * 1024)		/* stop taking frames from nghttp2 */

/* One request stream. Freed when nghttp2 closes the stream, or with its connection. */
struct bm_h2_stream {
	struct bm_h2_stream *prev, *next;
	struct bm_conn *conn;
	int32_t id;
	bool answered;		/* response submitted, or the stream reset */
	bool delayed;		/* response held back by ?delay (delay timer armed) */
	int err_status;		/* the request is refused with this status ... */
	const char *err_reason;	/* ... and reason */
	size_t held;		/* what this stream counts in bm_h2.held */
	struct bm_buf body;	/* response body still to send, except generated ones */
	uint64_t body_len;	/* content-length of the response */
	const char *ctype;	/* its content-type */
	struct bm_timer delay;
	struct bm_req req;	/* last: holds the header array */
};

struct bm_h2 {
	nghttp2_session *session;
	struct bm_h2_stream *streams;	/* open streams */
	unsigned ndelayed;		/* of them, waiting on ?delay */
	size_t held;			/* memory of the open streams: structs, arenas, bodies */
	bool linger;			/* our FIN sent, discarding input until the peer's */
	bool more;			/* the pump stopped with work left */
};

/* h2.c */
void bm_h2_pump(struct bm_conn *c);

/* h2_stream.c */
void bm_h2_stream_callbacks(nghttp2_session_callbacks *cbs);
struct bm_h2_stream *bm_h2_stream_new(struct bm_conn *c, int32_t id);
void bm_h2_stream_request(struct bm_conn *c, struct bm_h2_stream *s);
void bm_h2_stream_free_all(struct bm_conn *c);
void bm_h2_stream_stop_all(struct bm_conn *c);

#endif
