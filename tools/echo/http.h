/* http.h - per-connection HTTP/1.x state shared by http.c (parsing, connection flow) and
 * reply.c (controls, routes, response bytes). One request is in flight per connection. */
#ifndef BM_ECHO_HTTP_H
#define BM_ECHO_HTTP_H

#include <llhttp.h>

#include "echo.h"

#define BM_HTTP_HEAD_MAX	(64 * 1024)	/* request line + headers, else 431 */
#define BM_HTTP_MAX_HEADERS	100		/* else 431 */
#define BM_HTTP_OUT_HIGH	(64 * 1024)	/* stop parsing while this much output waits */
#define BM_HTTP_LINGER_MS	2000		/* drain time after our FIN on a closing connection */
#define BM_HTTP_MAX_DELAY_MS	600000		/* ?delay= upper bound */
#define BM_HTTP_MAX_SIZE	(1ULL << 30)	/* /size/N upper bound */

enum bm_http_state {
	BM_HTTP_READ,	/* parsing the next request (or waiting for its bytes) */
	BM_HTTP_DELAY,	/* request read, response held back by ?delay */
	BM_HTTP_STREAM,	/* response head queued, generated body still being written */
	BM_HTTP_LINGER,	/* our FIN sent, discarding input until the peer's FIN */
};

/* A header as offsets into the request arena. */
struct bm_hdr {
	uint32_t name_off, name_len;
	uint32_t val_off, val_len;
};

/* Where the response to the current request is headed. */
enum bm_route { BM_ROUTE_ECHO, BM_ROUTE_HEALTH, BM_ROUTE_BYTES, BM_ROUTE_ERROR };

struct bm_http {
	llhttp_t parser;
	enum bm_http_state state;
	bool in_head;		/* headers of the current request not complete yet */
	bool msg_done;		/* on_message_complete fired; parser paused after it */
	bool in_field;		/* receiving a header name */
	bool url_done;		/* the request target is complete (method and path known) */
	bool keep_alive;	/* of the request just completed */
	bool close_after;	/* close once the current response is written */
	bool more;		/* the pump stopped with work left: come back on EPOLLOUT */
	int err_status;		/* set by a callback that refuses the request */
	const char *err_reason;	/* and why */
	size_t head_bytes;	/* bytes fed to the parser while in_head */

	/* The request being read: URL and headers live in arena. */
	struct bm_buf arena;
	uint32_t url_len;	/* the URL is at arena offset 0 */
	struct bm_hdr hdrs[BM_HTTP_MAX_HEADERS];
	unsigned nhdrs;
	uint64_t body_bytes;

	/* The response planned for it. */
	enum bm_route route;
	int status;
	bool head_req;		/* HEAD: head only, Content-Length as if the body were sent */
	const char *reason;	/* BM_ROUTE_ERROR: why */
	uint64_t size;		/* BM_ROUTE_BYTES: body length */
	uint64_t sent;		/* BM_ROUTE_BYTES: body bytes generated so far */
	uint64_t delay_ms;
	struct bm_timer delay;
};

/* reply.c */
int bm_reply_plan(struct bm_conn *c);
int bm_reply_emit(struct bm_conn *c);
int bm_reply_fill(struct bm_conn *c);
int bm_reply_error(struct bm_conn *c, int status, const char *reason);
const struct bm_hdr *bm_http_header(const struct bm_http *h, const char *name);

#endif
