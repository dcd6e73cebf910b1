/* Internals shared by the HTTP/2 front and back (h2.h): moving nghttp2's frames between a
 * session and a bm_conn, and the header rules both directions of conversion follow. */
#ifndef BM_H2_INTERNAL_H
#define BM_H2_INTERNAL_H

#include <llhttp.h>
#include <nghttp2/nghttp2.h>

#include "conn.h"
#include "h2.h"

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24
/* A conn's output may pass its high mark by one frame (nghttp2 hands out whole frames). */
#define H2_OUT_SLACK (16384 + 9 + 1024)

/* Defaults of struct bm_h2_opts filled in. */
void h2_opts_fill(struct bm_h2_opts *o, const struct bm_h2_opts *in);

/* Feeds what c has read to ng (nghttp2_session_mem_recv) and consumes it. 0, or -1 on a
 * fatal nghttp2 error (the session is done: close the connection). */
int h2_io_recv(nghttp2_session *ng, struct bm_conn *c);
#define H2_SEND_ROUNDS 16
/* Takes frames from ng (nghttp2_session_mem_send) into c->out while fewer than high bytes
 * are pending, then flushes, and again while the socket takes everything and nghttp2 has
 * more, H2_SEND_ROUNDS times at most. 0 (done, or the rest waits for the socket), 1 (nghttp2
 * still has frames: call again soon), or -1 on an nghttp2 error or a write failure. */
int h2_io_send(nghttp2_session *ng, struct bm_conn *c, size_t high);
/* Does ng want nothing more (neither to read nor to write)? The connection may close. */
bool h2_io_done(nghttp2_session *ng);

/* A field HTTP/2 forbids (RFC 9113 8.2.2) and HTTP/1.1 frames or hops by: connection,
 * keep-alive, proxy-connection, transfer-encoding, upgrade, http2-settings. `te` is not
 * here: it passes when its value is "trailers" (h2_te_ok). name: lowercase. */
bool h2_conn_specific(const char *name, size_t len);
bool h2_te_ok(const char *value, size_t len);

/* ---- the back (h2_back*.c): the engine's requests as streams of pooled h2c connections ---- */

#define H2B_LINGER_MS 2000 /* after a failure answer, the engine's leftovers are read this long */

struct h2b_ic;
struct h2b_up;

/* A header field captured from llhttp into an arena (names lowercased). */
struct h2b_field {
	uint32_t name_off, name_len, val_off, val_len;
};

/* A request head or its trailers, bounded by max_headers fields and max_header_list bytes. */
struct h2b_block {
	struct bm_buf arena;
	struct h2b_field *f;
	size_t n, cap;
	size_t bytes;            /* name + value + 32 per field (RFC 9113 6.5.2) */
	bool in_field;           /* a field is open (its name seen, its value not complete) */
};

/* One request of an internal connection and its stream. Owned by its internal connection
 * until submitted, then by its upstream connection until the stream closes; ic and st point
 * at each other while both live. */
struct h2b_stream {
	struct h2b_ic *ic;        /* NULL once the engine's side is gone */
	struct h2b_up *up;        /* NULL until submitted */
	struct h2b_stream *prev, *next; /* up's streams */
	int32_t id;
	/* The request, from the engine. */
	struct h2b_block rq;      /* target (NUL-terminated, at url_off) and fields */
	uint32_t url_off, url_len;
	struct h2b_block tr;      /* chunked trailers */
	struct bm_buf body;       /* bytes not yet taken by a DATA frame (at most buf_size) */
	uint8_t method;           /* llhttp_method_t */
	bool head_done, req_done, has_body, keepalive;
	bool deferred;            /* DATA waits for body bytes (NGHTTP2_ERR_DEFERRED) */
	/* The response, from the endpoint. */
	struct bm_buf rs;         /* the block being received, as "name: value\r\n" lines */
	size_t rs_n, rs_bytes;
	int status;
	int64_t resp_cl;          /* content-length of the head, -1: none */
	bool resp_started;        /* a head went to the engine */
	bool resp_nobody, resp_chunked, resp_done;
	bool rst_recv;            /* RST_STREAM from the endpoint */
	size_t unconsumed;        /* DATA bytes written to the engine, not yet consumed */
	const char *fail;         /* answer when it ends before a response head: protocol */
};

/* A connection from the engine (bm_h2_back_open): HTTP/1.1 requests one at a time. */
struct h2b_ic {
	struct bm_h2_back *b;
	struct h2b_ic *prev, *next;       /* b's */
	struct h2b_pool *pool;
	struct h2b_ic *q_prev, *q_next;   /* the pool's waiters */
	struct bm_conn *c;
	llhttp_t p;
	struct h2b_stream *st;            /* the request in progress */
	bool queued, counted;             /* waiting for room; counted in max_pending */
	bool paused;                      /* the parser stopped after a request */
	bool lingering;                   /* answered a failure: reading leftovers, then close */
	bool closed;
	int reject;                       /* status for a request we cannot take (431, 400) */
	struct bm_ev_timer t_kick, t_linger;
	struct bm_ev_defer dead;
};

/* A cluster's limits (the latest open's) and counts across its endpoints. */
struct h2b_cluster {
	struct h2b_cluster *hnext;
	struct bm_l7_pool lim;
	struct h2b_pool *pools;           /* its pools (h2b_pool.cnext) */
	uint32_t n_conns;                 /* upstream connections open or connecting */
	uint32_t n_pending;               /* requests waiting for room */
	char name[];                      /* "" when the decision had none */
};

/* The connections to one endpoint of a cluster, and the requests waiting for room on them
 * (oldest first). Lives while a connection or an internal connection holds it. */
struct h2b_pool {
	struct bm_h2_back *b;
	struct h2b_pool *hnext, *cprev, *cnext;
	struct h2b_cluster *cl;
	struct sockaddr_storage addr;
	struct h2b_up *ups;
	struct h2b_ic *q_head, *q_tail;
	uint32_t refs, n_ups;
	bool dead;
	struct bm_ev_timer t_kick;        /* dispatch waiters and pump connections, after a batch */
	struct bm_ev_defer free_d;
};

/* An h2c connection to an endpoint (an nghttp2 client session). */
struct h2b_up {
	struct bm_h2_back *b;
	struct h2b_pool *pool;
	struct h2b_up *prev, *next;       /* the pool's */
	struct bm_conn *c;
	nghttp2_session *ng;
	struct h2b_stream *streams;
	uint32_t n_streams, n_opened;
	bool connected, draining, proto_err, closed;
	struct bm_ev_timer t_conn, t_idle;
	struct bm_ev_defer dead;
};

struct bm_h2_back {
	struct bm_evloop *loop;
	struct bm_h2_opts o;
	struct bm_h2_stats st;
	struct h2b_pool **ptab;
	size_t n_pbuckets, n_pools;
	struct h2b_cluster **ctab;
	size_t n_cbuckets, n_cls;
	struct h2b_ic *ics;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *ngopt;
	size_t ic_out_max;
};

/* h2_back.c: pools, clusters and waiters. */
void h2b_pool_kick(struct h2b_pool *p);          /* dispatch and pump after this batch */
void h2b_cluster_kick(struct h2b_cluster *cl);   /* every pool of cl with waiters */
void h2b_pool_put(struct bm_h2_back *b, struct h2b_pool *p);
void h2b_enqueue(struct h2b_ic *ic);             /* a request head is complete */
void h2b_unqueue(struct h2b_ic *ic);

/* h2_back_ic.c: internal connections. */
int h2b_ic_new(struct bm_h2_back *b, struct h2b_pool *p, int fd);
/* The stream could not be (or was not) answered: "x-bm-h2-fail: what" and close, or after a
 * response head a plain close. */
void h2b_ic_fail(struct h2b_ic *ic, const char *what);
void h2b_ic_close(struct h2b_ic *ic);
/* The response is all out, the request not all in: FIN after the last bytes, then close. */
void h2b_ic_finish(struct h2b_ic *ic);
void h2b_ic_kick(struct h2b_ic *ic);
/* The exchange of st is over (response complete, stream closed): the next request. */
void h2b_ic_done(struct h2b_ic *ic);
void h2b_stream_free(struct h2b_stream *st);
/* st's final response head to the engine, with HTTP/1.1 framing: 0, or -1 (no room). */
int h2b_ic_write_head(struct h2b_stream *st);
/* Writes (and flushes) to the engine; false when the connection failed. */
bool h2b_ic_flush(struct h2b_ic *ic);

/* h2_back_up.c: upstream connections. */
struct h2b_up *h2b_up_open(struct h2b_pool *p);  /* NULL: connect failed at once */
bool h2b_up_has_room(const struct h2b_up *u);
/* Sends what the session has, closes u when it is done. Not from nghttp2 callbacks. */
void h2b_up_service(struct h2b_up *u);
/* what: the failure told to its streams' internal connections (NULL: a graceful close). */
void h2b_up_close(struct h2b_up *u, const char *what);
void h2b_up_unlink(struct h2b_up *u, struct h2b_stream *st); /* its stream closed */

/* h2_back_stream.c: streams and nghttp2's callbacks. */
int h2b_callbacks_new(struct bm_h2_back *b);
/* st's request as a new stream of u: 0, or an nghttp2 error (nothing submitted). */
int h2b_up_submit(struct h2b_up *u, struct h2b_stream *st);
/* The stream's request body has more bytes (or its end): DATA may go on. */
void h2b_stream_resume(struct h2b_stream *st);
/* The engine took the response bytes written so far: open the flow-control window. */
void h2b_stream_consumed(struct h2b_stream *st);
/* The engine is gone mid-request: RST_STREAM(CANCEL); the stream frees itself on close. */
void h2b_stream_cancel(struct h2b_stream *st);

/* ---- the front's internals (h2_front*.c) ---- */

#include <llhttp.h>

#define H2F_PARKED_MAX 16        /* idle internal connections kept per client connection */
#define H2F_PARKED_MS 2000       /* an idle internal connection unused this long closes (it
				  * holds an engine session, ~15 KiB: an idle client keeps none) */
#define H2F_LINGER_MS 2000       /* after our FIN, the client's leftovers are read this long */
#define H2F_WINDOW_STREAMS 16    /* the connection window: this many streams' buf_size */
#define H2F_RS_FIELDS_MAX 512    /* fields of a response head plus its trailers */
#define H2F_RS_ARENA_MAX (256u * 1024) /* their names and values */

struct h2f_cx;
struct h2f_stream;

/* A field of the engine's response, in its stream's arena (names lowercased). */
struct h2f_field {
	uint32_t name_off, name_len, val_off, val_len;
};

/* An internal connection: our end of a socketpair whose other end the engine serves as an
 * HTTP/1.1 client (BM_H1_PEER_H2). One exchange at a time; parked between them. */
struct h2f_ic {
	struct bm_conn *c;
	struct h2f_cx *cx;
	struct h2f_stream *s;           /* the exchange on it; NULL while parked */
	struct h2f_ic *prev, *next;     /* the cx's parked list, most recently used first */
	uint64_t parked_at;
	bool parked, closed;
	bool wr_dead;                   /* a write failed: the engine reads no more; its answer may
					 * still be there to read */
	struct bm_ev_timer t_kick;      /* run it from the loop, not from inside nghttp2 */
	struct bm_ev_defer dead;
};

/* A client stream: its request on its way to the engine, the response on its way back. */
struct h2f_stream {
	struct h2f_cx *cx;
	struct h2f_stream *prev, *next;
	int32_t id;
	struct h2f_ic *ic;
	bool closed;                    /* nghttp2 closed it (or the connection went) */
	bool handed;                    /* given to the engine: counted in streams_active */

	/* The request. Fields as received: {u32 name_len, u32 value_len, name, value}... */
	struct bm_buf rq;
	uint32_t rq_fields;             /* fields and bytes of the header block being read */
	size_t rq_bytes;
	bool too_large, is_head;
	bool rq_chunked;                /* framed chunked to the engine */
	bool rq_end;                    /* END_STREAM received */
	bool rq_written;                /* all of it in the internal connection's output */
	struct bm_buf rq_trailers;      /* "name: value\r\n" lines */
	struct bm_buf rq_body;          /* DATA not yet framed for the engine */
	size_t body_out;                /* body bytes in ic->c->out, not consumed yet */

	/* The response. */
	llhttp_t pp;
	struct bm_buf rs;               /* field names and values */
	struct h2f_field *rf;
	size_t rf_n, rf_cap, rf_head;   /* rf[0, rf_head): the head; after it: trailers */
	bool rf_open;                   /* a field is being read */
	bool rs_head;                   /* the final head is complete */
	bool rs_submitted;              /* HEADERS submitted */
	bool rs_done;                   /* the whole response is in rs_body (and rf) */
	bool rs_keepalive, rs_deferred, rs_bad;
	struct bm_buf rs_body;          /* body not yet taken by nghttp2 */
	struct bm_ev_defer dead;
};

/* A client connection. */
struct h2f_cx {
	struct bm_h2_front *f;
	struct h2f_cx *prev, *next;
	struct bm_conn *c;
	nghttp2_session *ng;
	struct bm_h1_peer peer;         /* the engine's view of each stream (BM_H1_PEER_H2) */
	struct h2f_stream *streams;
	size_t n_streams;
	struct h2f_ic *parked;
	size_t n_parked;
	uint64_t idle_since, linger_start, rst_window;
	uint32_t rst_count;
	bool counted;                   /* in downstream_cx_active (an HTTP/2 session began) */
	bool closed, lingering, calm, err_counted;
	struct bm_ev_timer t_idle;
	struct bm_ev_defer dead;
};

struct bm_h2_front {
	struct bm_evloop *loop;
	struct bm_h1_proxy *px;
	struct bm_h2_opts o;
	struct bm_h2_stats st;
	struct h2f_cx *cxs;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	size_t rq_body_max, ic_out_max;
	bool draining;
};

/* h2_front.c: client connections. */
struct h2f_cx *h2f_cx_new(struct bm_h2_front *f, int fd, const struct bm_h1_peer *peer);
int h2f_cx_start(struct h2f_cx *cx);   /* our SETTINGS and window; counts the connection */
void h2f_cx_run(struct h2f_cx *cx);    /* reads, feeds nghttp2, sends */
int h2f_cx_send(struct h2f_cx *cx);    /* frames out; -1 when cx closed */
int h2f_cx_feed(struct h2f_cx *cx, const void *p, size_t n); /* bytes read elsewhere */
void h2f_cx_finish(struct h2f_cx *cx); /* FIN once out is flushed, linger, close */
void h2f_cx_close(struct h2f_cx *cx);
void h2f_cx_arm(struct h2f_cx *cx);    /* idle, parked and linger deadlines */
void h2f_count_error(struct h2f_cx *cx);

/* h2_front_stream.c: nghttp2's callbacks and the request side. */
void h2f_set_callbacks(nghttp2_session_callbacks *cbs);
struct h2f_stream *h2f_stream_new(struct h2f_cx *cx, int32_t id);
void h2f_stream_field(struct h2f_stream *s, const char *name, size_t nlen, const char *value,
		      size_t vlen, bool trailer);
void h2f_stream_ready(struct h2f_stream *s, bool end_stream); /* the request head is in */
void h2f_stream_drop(struct h2f_stream *s);     /* the connection goes: no nghttp2 calls */
void h2f_stream_discard(struct h2f_stream *s);  /* request bytes not sent: consumed */
void h2f_local_reply(struct h2f_stream *s, int status, const char *body);
int h2f_request_pump(struct h2f_stream *s);     /* staged request bytes to the engine: 1
						 * progress, 0 none, -1 failed (no memory) */
void h2f_request_sent(struct h2f_stream *s);    /* consumes body bytes that left */

/* h2_front_ic.c: internal connections. */
struct h2f_ic *h2f_ic_get(struct h2f_cx *cx);
void h2f_ic_release(struct h2f_ic *ic, bool reuse); /* the exchange is over: park or close */
void h2f_ic_close(struct h2f_ic *ic);
void h2f_ic_kick(struct h2f_ic *ic);

/* h2_front_resp.c: the engine's response into the stream. */
void h2f_resp_init(struct h2f_stream *s);
bool h2f_resp_pump(struct h2f_stream *s);       /* reads, parses, submits; true on progress */
bool h2f_resp_eof(struct h2f_stream *s);        /* the engine closed: true if that ended it */
nghttp2_data_provider h2f_resp_provider(struct h2f_stream *s); /* DATA from s->rs_body */

#endif
