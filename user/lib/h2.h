/* HTTP/2 cleartext (h2c) for the agent, with nghttp2. The front serves HTTP/2 clients and
 * hands each stream to the HTTP/1.1 engine as a request on an internal connection; the back
 * takes the engine's requests for an HTTP/2 cluster and sends them as streams of pooled h2c
 * connections. Routing, retries, timeouts and circuit breaking stay the engine's (h1.h). */
#ifndef BM_H2_H
#define BM_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "evloop.h"
#include "h1.h"
#include "l7.h"

/* Tunables; a field left 0 takes the default in brackets. */
struct bm_h2_opts {
	uint32_t max_concurrent_streams; /* [100] front: SETTINGS_MAX_CONCURRENT_STREAMS sent;
					  * back: the most streams we open on one connection
					  * (the peer's own setting, when lower, wins) */
	uint32_t max_header_list;        /* [65536] bytes of one header block (name + value +
					  * 32 per field, RFC 9113 6.5.2); over: the stream is
					  * refused (front: 431; back: a protocol failure) */
	uint32_t max_headers;            /* [100] fields of one header block */
	uint32_t idle_timeout_ms;        /* [60000] front: a connection with no open stream
					  * this long gets GOAWAY and closes */
	uint32_t buf_size;               /* [65536] per direction per internal connection and
					  * per stream (flow control) */
	uint32_t connect_timeout_ms;     /* [10000] back: upstream connect, unless the
					  * cluster's connect_timeout_ms says otherwise */
	uint32_t upstream_idle_ms;       /* [30000] back: an upstream connection without a
					  * stream this long closes (the cluster's idle_timeout_ms
					  * wins) */
	uint32_t max_resets_per_s;       /* [200] front: RST_STREAMs a client may send per
					  * second before GOAWAY (ENHANCE_YOUR_CALM; CVE-2023-44487) */
};

/* Counters, monotonic unless _active. */
struct bm_h2_stats {
	/* front */
	uint64_t downstream_cx;          /* HTTP/2 client connections (prior knowledge + h2c) */
	uint64_t downstream_cx_active;
	uint64_t upgrades;               /* of those, h2c upgrades from HTTP/1.1 */
	uint64_t streams;                /* client streams handed to the engine */
	uint64_t streams_active;
	uint64_t rx_reset;               /* RST_STREAM from clients */
	uint64_t tx_reset;               /* RST_STREAM we sent to clients */
	uint64_t goaway_sent;
	uint64_t protocol_errors;        /* connection errors (GOAWAY PROTOCOL_ERROR and kin) */
	uint64_t headers_too_large;      /* header blocks over the limits */
	/* back */
	uint64_t upstream_cx;            /* h2c connections opened to endpoints */
	uint64_t upstream_cx_fail;       /* connects refused or timed out */
	uint64_t upstream_cx_active;
	uint64_t upstream_rq;            /* streams opened upstream */
	uint64_t upstream_rq_active;
	uint64_t upstream_reset;         /* streams reset by the endpoint (refused included) */
	uint64_t upstream_refused;       /* REFUSED_STREAM, or above a GOAWAY's last stream id */
	uint64_t upstream_goaway;        /* GOAWAYs received */
	uint64_t upstream_overflow;      /* requests answered "x-bm-h2-fail: overflow" */
};

struct bm_h2_front;
struct bm_h2_back;

/* ---- the front: HTTP/2 clients ---- */

/* opts may be NULL. Streams go to px (bm_h1_proxy_serve_ex, peer flag BM_H1_PEER_H2). */
struct bm_h2_front *bm_h2_front_new(struct bm_evloop *loop, struct bm_h1_proxy *px,
				    const struct bm_h2_opts *opts);
/* A client that opened with the HTTP/2 preface (prior knowledge). Takes fd (closed on
 * failure). peer: as for the engine (client AF_UNSPEC: getpeername). pre/pre_len: bytes
 * already read from fd (NULL/0 when the caller only peeked). 0 or -errno (-ESHUTDOWN while
 * draining). */
int bm_h2_front_serve(struct bm_h2_front *f, int fd, const struct bm_h1_peer *peer,
		      const void *pre, size_t pre_len);
/* An h2c upgrade handed over by the engine (bm_h1_h2c_fn's arguments): sends the 101, then
 * serves the request as stream 1 (half-closed by the client) and the connection as HTTP/2.
 * A bad HTTP2-Settings value gets 400 and a close. Takes fd. 0 or -errno. */
int bm_h2_front_upgrade(struct bm_h2_front *f, int fd, const struct bm_h1_peer *peer,
			const struct bm_h1_h2c *up);
/* Graceful drain: GOAWAY to every client; open streams finish; serve refuses new ones. */
void bm_h2_front_drain(struct bm_h2_front *f);
size_t bm_h2_front_active(const struct bm_h2_front *f); /* client connections open */
const struct bm_h2_stats *bm_h2_front_stats(const struct bm_h2_front *f);
/* Closes every connection of f (and its internal ones) and frees it; px must outlive f. */
void bm_h2_front_free(struct bm_h2_front *f);

/* ---- the back: HTTP/2 endpoints ---- */

struct bm_h2_back *bm_h2_back_new(struct bm_evloop *loop, const struct bm_h2_opts *opts);
/* bm_h1_h2_open_fn (arg: the back): a new internal connection for the engine to ep. */
int bm_h2_back_open(void *back, const struct sockaddr_storage *ep, const char *cluster,
		    const struct bm_l7_pool *lim);
const struct bm_h2_stats *bm_h2_back_stats(const struct bm_h2_back *b);
void bm_h2_back_free(struct bm_h2_back *b);

/* The client connection preface, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (24 bytes): 1 when buf
 * starts with it, 0 when buf is a shorter prefix of it, -1 otherwise. */
int bm_h2_sniff(const void *buf, size_t len);

#endif
