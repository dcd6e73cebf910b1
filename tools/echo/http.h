/* http.h - HTTP requests in bm-echo: the request and planned response that HTTP/1.x (one per
 * connection, http.c, http_reply.c) and HTTP/2 (one per stream, h2*.c) share with reply.c. */
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
#define BM_HTTP_MAX_TRAILERS	16		/* ?trailers= fields */
#define BM_HTTP_TRAILER_NAME_MAX 64
#define BM_HTTP_TRAILER_VALUE_MAX 256
#define BM_HTTP_GRPC_MAX	16		/* highest gRPC status code */

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

/* One request as read, and the response planned for it. Target, authority and headers are
 * offsets into arena, which is kept (and reused) from one request to the next. */
struct bm_req {
	struct bm_buf arena;
	uint32_t url_off, url_len;	/* request target; HTTP/2 :path (CONNECT: :authority) */
	uint32_t auth_off, auth_len;	/* HTTP/2 :authority, when has_auth */
	bool has_auth;
	bool url_done;			/* method and target are known */
	bool h2;			/* came over HTTP/2 */
	bool http10;			/* an HTTP/1.0 request */
	const char *method;		/* llhttp's static name of the method */
	unsigned nhdrs;
	uint64_t body_bytes;

	/* The response planned for it (bm_req_plan). */
	enum bm_route route;
	int status;
	bool head_req;		/* HEAD: head only, Content-Length as if the body were sent */
	bool grpc;		/* HTTP/2 with content-type application/grpc: framed JSON answer */
	int grpc_status;	/* grpc-status trailer to send, -1 for none */
	const char *reason;	/* BM_ROUTE_ERROR: why */
	uint64_t size;		/* BM_ROUTE_BYTES: body length */
	uint64_t sent;		/* BM_ROUTE_BYTES: body bytes generated so far */
	uint64_t delay_ms;
	uint32_t trl_off, trl_len;	/* the ?trailers= list (validated), in arena */
	bool has_trl;

	struct bm_hdr hdrs[BM_HTTP_MAX_HEADERS];	/* last: bm_req_reset clears up to here */
};

/* A response trailer field; name and value are not NUL-terminated. */
struct bm_trailer {
	const char *name, *value;
	size_t name_len, value_len;
};

struct bm_http {
	llhttp_t parser;
	enum bm_http_state state;
	bool in_head;		/* headers of the current request not complete yet */
	bool msg_done;		/* on_message_complete fired; parser paused after it */
	bool in_field;		/* receiving a header name */
	bool keep_alive;	/* of the request just completed */
	bool close_after;	/* close once the current response is written */
	bool more;		/* the pump stopped with work left: come back on EPOLLOUT */
	int err_status;		/* set by a callback that refuses the request */
	const char *err_reason;	/* and why */
	size_t head_bytes;	/* bytes fed to the parser while in_head */
	struct bm_req req;	/* the request being read, then answered */
	struct bm_timer delay;
};

/* reply.c: what any request gets, whatever the protocol */
const struct bm_hdr *bm_req_header(const struct bm_req *r, const char *name);
void bm_req_reset(struct bm_req *r);
void bm_req_refuse(struct bm_req *r, int status, const char *reason);
void bm_req_plan(struct bm_echo *e, struct bm_req *r);
bool bm_req_has_body(const struct bm_req *r);
int bm_req_body(struct bm_conn *c, struct bm_req *r, struct bm_buf *body, const char **ctype);
size_t bm_req_fill(struct bm_req *r, char *dst, size_t n);
size_t bm_req_trailers(const struct bm_req *r, struct bm_trailer *out, size_t max);
void bm_req_log(struct bm_conn *c, const struct bm_req *r);
const char *bm_method_by_name(const char *name, size_t len);

/* http_reply.c: HTTP/1.x responses */
int bm_reply_plan(struct bm_conn *c);
int bm_reply_emit(struct bm_conn *c);
int bm_reply_fill(struct bm_conn *c);
int bm_reply_error(struct bm_conn *c, int status, const char *reason);

/* h2.c: h2c upgrade of an HTTP/1.1 connection whose request c->http->req just completed.
 * Returns 1 when the connection is HTTP/2 now (c->http is gone), 0 when the request does not
 * ask for h2c (or asks badly: it is answered in HTTP/1.1), -1 when c must be closed. */
int bm_h2_upgrade(struct bm_conn *c);

#endif
