/* The agent's HTTP/1.1 proxy engine: client connections in, the router (l7.h) decides, the
 * engine forwards (pooled upstreams, retries, timeouts) or answers; plus a TCP relay and sniff. */
#ifndef BM_H1_H
#define BM_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conn.h"
#include "evloop.h"
#include "l7.h"

/* Tunables; a field left 0 takes the default in brackets. */
struct bm_h1_opts {
	uint32_t head_timeout_ms;        /* [10000] request head complete within, from its first byte: 408 */
	uint32_t idle_timeout_ms;        /* [60000] client keep-alive idle between requests: close */
	uint32_t stream_idle_ms;         /* [300000] no byte either way during a request: 408 or reset */
	uint32_t tunnel_idle_ms;         /* [3600000] upgraded (WebSocket) connection idle: close */
	uint32_t connect_timeout_ms;     /* [10000] upstream connect: 503 (connect failure) */
	uint32_t upstream_idle_ms;       /* [30000] pooled upstream connection idle: close */
	uint32_t max_requests_per_conn;  /* [0 = unlimited] requests per upstream connection */
	uint32_t max_conns_per_endpoint; /* [0 = unlimited] per endpoint of a cluster; beyond: 503
					  * (overflow) at once, no queueing */
	uint32_t max_idle_per_endpoint;  /* [1024] idle upstream connections kept per endpoint */
	uint32_t head_max;               /* [65536] request line + headers, bytes: 431 */
	uint32_t max_headers;            /* [100] header fields: 431 */
	uint32_t retry_buffer;           /* [65536] request body kept for a retry; more: no retry */
	uint32_t buf_size;               /* [65536] per direction per connection (flow control) */
};

/* Counters, monotonic; read them with bm_h1_proxy_stats at any time. */
struct bm_h1_stats {
	uint64_t downstream_cx;          /* client connections served */
	uint64_t downstream_cx_active;
	uint64_t requests;               /* request heads parsed and routed */
	uint64_t responses[6];           /* sent to clients by class: [1] 1xx .. [5] 5xx */
	uint64_t local_replies;          /* answered by the engine (RESPOND, errors) */
	uint64_t upstream_cx;            /* upstream connections opened */
	uint64_t upstream_cx_fail;       /* connects refused or timed out */
	uint64_t upstream_cx_active;
	uint64_t upstream_reuse;         /* requests sent on a pooled connection */
	uint64_t upstream_reset;         /* upstream failed before its response ended */
	uint64_t retries;                /* router called again (attempt > 0) */
	uint64_t timeouts;               /* route timeouts (504 or reset) */
	uint64_t per_try_timeouts;
	uint64_t head_timeouts;          /* 408: slow request heads */
	uint64_t bad_requests;           /* 400 */
	uint64_t too_large;              /* 431 */
	uint64_t overflows;              /* endpoint connection limit hit, or a body beyond the
					  * retry buffer when a retry was wanted */
	uint64_t upgrades;               /* tunnels after 101 */
	uint64_t h2c_handoffs;           /* h2c upgrades handed to the h2 front */
	uint64_t mirrors;                /* mirror copies sent (VirtualService mirror) */
	uint64_t mirror_skipped;         /* not sent: the body was beyond the retry buffer */
	uint64_t mirror_failed;          /* the copy's connect or send failed, or timed out */
	/* Circuit breaking, per cluster limits (bm_l7_pool); Envoy's names. */
	uint64_t cx_overflow;            /* max_connections kept a request from a new connection */
	uint64_t rq_pending_total;       /* requests that waited for a connection */
	uint64_t rq_pending_active;      /* waiting now */
	uint64_t rq_pending_overflow;    /* 503 overflow: pending queue full, or max_requests */
	uint64_t retry_overflow;         /* retries not made: max_retries in flight */
};

struct bm_h1_proxy;

/* Who a client connection is, for bm_h1_proxy_serve_ex: the HTTP/2 front (h2.h) serves each
 * of its streams on an internal connection whose peer is not the client. */
struct bm_h1_peer {
	struct sockaddr_storage orig_dst; /* where the client was going; AF_UNSPEC: unknown */
	struct sockaddr_storage client;   /* the client; AF_UNSPEC: getpeername of the fd */
	uint32_t caller_wl;               /* bm_wl id, 0: unknown */
	uint32_t flags;                   /* BM_H1_PEER_* */
};

/* The client speaks HTTP/2 through the h2 front: the router sees req->http2, trailers pass
 * both ways, and the connection is internal (its requests are the front's streams). */
#define BM_H1_PEER_H2 0x1u

/* An HTTP/1.1 client asked to switch to h2c (RFC 7540 3.2: "Upgrade: h2c" with an
 * HTTP2-Settings field, on a request without a body). The engine hands the connection over
 * as it is: nothing was answered; the taker sends the 101 and serves the request as stream 1.
 * Everything here is valid only during the call. */
struct bm_h1_h2c {
	const struct bm_http_req *req;    /* the request: method, path, authority, fields (its
					   * hop-by-hop fields, upgrade and http2-settings included) */
	const char *settings;             /* the HTTP2-Settings value (base64url), as sent */
	size_t settings_len;
	const void *rest;                 /* bytes the client sent after the request (its preface) */
	size_t rest_len;
};

/* Takes fd (closes it on failure); returns 0 or -errno. */
typedef int (*bm_h1_h2c_fn)(void *arg, int fd, const struct bm_h1_peer *peer,
			    const struct bm_h1_h2c *up);
/* Opens a connection to an HTTP/2 endpoint for the engine (the h2 back): an fd on which the
 * engine writes HTTP/1.1 requests, one at a time, keep-alive, and reads their responses.
 * cluster: the decision's (may be NULL), lim: its limits. Returns the fd or -errno. A failure
 * reaching the endpoint is answered on the fd as a response with "x-bm-h2-fail: <what>"
 * (connect, reset, refused-stream, overflow, protocol), which the engine takes as that
 * failure (retries, outlier detection), never as a response to forward. */
typedef int (*bm_h1_h2_open_fn)(void *arg, const struct sockaddr_storage *ep,
				const char *cluster, const struct bm_l7_pool *lim);

/* opts may be NULL (all defaults); route is called once per attempt. */
struct bm_h1_proxy *bm_h1_proxy_new(struct bm_evloop *loop, const struct bm_h1_opts *opts,
				    bm_l7_route_fn route, void *arg);
/* Serves one accepted client connection (takes ownership of client_fd, closed on failure).
 * orig_dst: where the client was going (copied; NULL: unknown); caller_wl: bm_wl id or 0.
 * Returns 0 or -errno (-ESHUTDOWN after bm_h1_proxy_drain). */
int bm_h1_proxy_serve(struct bm_h1_proxy *px, int client_fd,
		      const struct sockaddr_storage *orig_dst, uint32_t caller_wl);
/* As bm_h1_proxy_serve, with the peer given (bm_h1_peer). */
int bm_h1_proxy_serve_ex(struct bm_h1_proxy *px, int client_fd, const struct bm_h1_peer *peer);
/* HTTP/2: h2c upgrades go to h2c (NULL: "upgrade: h2c" is dropped and the request served as
 * HTTP/1.1, as Envoy does); decisions with upstream_proto BM_L7_PROTO_H2 connect through open
 * (NULL: such a request is answered 503). */
void bm_h1_proxy_set_h2(struct bm_h1_proxy *px, bm_h1_h2c_fn h2c, bm_h1_h2_open_fn open,
			void *arg);
/* Requests of cluster in flight at ep now (on a connection, connecting, or given a slot):
 * bm_l7_load_fn for the router's LEAST_REQUEST. */
uint32_t bm_h1_proxy_load(void *px, const char *cluster, const struct sockaddr_storage *ep);
const struct bm_h1_stats *bm_h1_proxy_stats(const struct bm_h1_proxy *px);
/* fn is called once after each attempt that reached, or tried to reach, an endpoint (l7.h);
 * not for overflows, nor for an attempt the client abandoned first. cluster is the decision's
 * (NULL when it had none). fn may read stats; it must not call into px otherwise. */
void bm_h1_proxy_set_outcome(struct bm_h1_proxy *px, bm_l7_outcome_fn fn, void *arg);
/* Graceful drain: idle client connections close now (FIN); a request in progress is
 * finished, answered with "connection: close", and its connection closed; tunnels run until
 * they end. bm_h1_proxy_serve refuses new connections from here (-ESHUTDOWN). */
void bm_h1_proxy_drain(struct bm_h1_proxy *px);
/* Client connections still open (drain is over at 0). */
size_t bm_h1_proxy_active(const struct bm_h1_proxy *px);
/* Closes every client and upstream connection of px and frees it (immediately: do not call
 * from inside one of px's own callbacks). */
void bm_h1_proxy_free(struct bm_h1_proxy *px);

/* Relays bytes both ways between client_fd (owned from here) and a new connection to
 * upstream, half-closes passed through; 10 s connect timeout, 1 h idle. The relay lives on
 * the loop and is closed by bm_evloop_free at the latest. Returns 0 or -errno. */
int bm_tcp_relay_serve(struct bm_evloop *loop, int client_fd,
		       const struct sockaddr_storage *upstream);

/* Moves bytes both ways between a and b (each one's input goes out on the other; EOF
 * becomes FIN) and sets their epoll interest. BM_AGAIN: running; BM_OK: both directions
 * finished; BM_ERROR: one side failed. */
int bm_conn_pipe(struct bm_conn *a, struct bm_conn *b);

/* The first bytes of a connection: an HTTP/1.x request line so far? 1: yes (method token,
 * space, target, " HTTP/1."), 0: could still be (read more), -1: not HTTP/1. */
int bm_h1_sniff(const void *buf, size_t len);
/* bm_h1_sniff(buf, len) == 1. */
bool bm_h1_looks_like_http(const void *buf, size_t len);

#endif
