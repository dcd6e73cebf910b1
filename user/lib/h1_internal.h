/* Internals of the HTTP/1.1 engine shared by its files: the proxy, client sessions (one
 * request in flight each), parsed heads, upstream connections, endpoints and clusters. */
#ifndef BM_H1_INTERNAL_H
#define BM_H1_INTERNAL_H

#include <llhttp.h>
#include <netinet/in.h>
#include <string.h>

#include "h1.h"

#define H1_EXTRA_FIELDS 2         /* room for fields the engine adds (x-request-id) */
#define H1_LINGER_MS 2000         /* after our FIN, drain the client this long at most */
#define H1_STEP_ROUNDS 16         /* work per wakeup before yielding to other connections */
#define H1_FRAME_SLACK 64         /* chunk framing added per feed, at most */
#define H1_BACKOFF_BASE_MS 25     /* Envoy's default retry back-off: full jitter, */
#define H1_BACKOFF_MAX_MS 250     /* base * 2^n capped at max */
#define H1_DSTR_MAX 65536         /* a decision's strings, copied per request, at most */

/* A header field in a head's arena; names are stored lowercased. */
struct h1_field {
	uint32_t name_off, name_len, val_off, val_len;
};

/* A message head as llhttp delivers it, copied (it spans reads) into a bounded arena. */
struct h1_head {
	struct bm_buf arena;
	struct h1_field *f;
	size_t n, cap;           /* cap: the header limit, plus H1_EXTRA_FIELDS */
	uint32_t url_off, url_len; /* request target (NUL-terminated) or response reason */
	size_t bytes;            /* head bytes fed to the parser so far */
	bool in_field;           /* a field is open (name seen, value not complete) */
	bool done;               /* headers complete: later fields are trailers */
	bool has_connection;     /* a connection field is among the fields */
	int err_status;          /* a limit hit in a callback: 431 (request) */
	size_t trailer_bytes;
	/* Trailer fields of a chunked body, as "name: value\r\n" lines (names lowercased,
	 * framing and hop-by-hop ones dropped), bounded like the head. */
	struct bm_buf trailers;
	size_t tr_line;          /* where the trailer field being read starts in trailers */
	bool tr_drop;            /* ... and it is dropped (a framing or hop-by-hop name) */
};

enum h1_state {
	H1_IDLE,        /* keep-alive: waiting for the first byte of a request */
	H1_HEAD,        /* reading a request head (slowloris bound) */
	H1_WAIT,        /* fault delay or retry back-off */
	H1_PENDING,     /* waiting for a connection of its cluster (circuit breaking) */
	H1_CONNECT,     /* upstream connect in progress */
	H1_PROXY,       /* head sent: request body up, response down */
	H1_TUNNEL,      /* after a 101: bytes both ways */
	H1_CLOSING,     /* our last bytes out, FIN, drain the client briefly, close */
};

enum h1_fail {
	H1_FAIL_CONNECT = 1, /* refused, unreachable, or connect timeout */
	H1_FAIL_RESET,       /* upstream closed or reset before the response head */
	H1_FAIL_PER_TRY,     /* per-try timeout */
	H1_FAIL_STATUS,      /* a retriable response status (never final: forwarded instead) */
	H1_FAIL_PROTOCOL,    /* malformed response */
	H1_FAIL_OVERFLOW,    /* endpoint or cluster limit (503 overflow, never retried) */
	H1_FAIL_REFUSED,     /* HTTP/2 upstream refused the stream (refused-stream; else a reset) */
};

struct h1_sess;
struct h1_ep;

/* A cluster's circuit breakers (the decision's bm_l7_pool): counters, the limits of its
 * latest decision, its endpoints, and the requests waiting for a connection (oldest first).
 * It lives while an endpoint or a session holds it. */
struct h1_cluster {
	struct h1_cluster *hnext;
	struct bm_l7_pool lim;
	struct h1_ep *eps;           /* its endpoints (h1_ep.cnext) */
	struct h1_sess *q_head, *q_tail;
	uint32_t refs;
	uint32_t n_conns;            /* open: connecting, in use, idle */
	uint32_t n_idle;
	uint32_t n_granted;          /* slots given to waiters that have not connected yet */
	uint32_t n_pending;
	uint32_t n_active;           /* requests on a connection */
	uint32_t n_retries;          /* retries in flight */
	char name[];
};

/* An upstream connection: owned by a session while a request uses it, else by its
 * endpoint's idle list. */
struct h1_up {
	struct bm_conn *c;
	struct h1_ep *ep;
	struct h1_sess *s;
	struct bm_h1_proxy *px;
	struct h1_up *prev, *next; /* idle list */
	struct bm_ev_timer timer;  /* connect timeout, then idle timeout in the pool */
	uint32_t nreq;
	bool idle;
	bool reused;               /* this request is not the connection's first */
	struct bm_ev_defer dead;
};

/* An upstream endpoint (address) of a cluster (NULL: no cluster name, no limits), its
 * pooled connections and the requests waiting for one of them. */
struct h1_ep {
	struct sockaddr_storage addr;
	struct h1_cluster *cl;
	struct h1_ep *hnext, *cprev, *cnext;
	bool h2;                   /* reached through the h2 back (internal connections) */
	struct h1_up *idle;        /* most recently used first */
	struct h1_sess *q_head, *q_tail;
	uint32_t n_idle, n_conns, n_granted;
};

struct h1_pool {
	struct h1_ep **tab;
	size_t n_buckets, n_eps;
	struct h1_cluster **ctab;  /* clusters by name */
	size_t n_cbuckets, n_cls;
};

/* One client connection and its current request. */
struct h1_sess {
	struct bm_h1_proxy *px;
	struct h1_sess *prev, *next;
	struct bm_conn *cli;
	enum h1_state state;
	bool closed;
	bool peer_h2;             /* an internal connection of the h2 front (BM_H1_PEER_H2) */
	uint32_t caller_wl;
	struct sockaddr_storage client, orig_dst;
	char client_ip[INET6_ADDRSTRLEN];

	/* The request. */
	llhttp_t rp;
	struct h1_head rq;
	struct bm_http_hdr *hv;   /* the router's view of rq */
	struct bm_http_req req;
	struct bm_l7_decision d;
	struct bm_buf dstr;       /* d's strings, copied: the router's may go before the request */
	uint16_t rcodes[16];      /* d's retry codes, copied */
	bool rp_paused;           /* rp stopped at headers complete, not resumed yet */
	bool req_msg_done;        /* set by on_message_complete */
	bool req_done;            /* the whole request was read */
	bool req_keepalive, req_chunked, req_has_cl, req_upgrade, req_http10;
	bool is_head, idempotent, expect_100, sent_100;
	bool te_trailers;         /* the client takes trailers (te: trailers, or HTTP/2) */
	bool te_sent;             /* ... it said te: trailers (passed upstream as such) */
	uint64_t req_cl;
	struct bm_buf replay;     /* body so far, for a retry; released once over the bound */
	bool replay_overflow;
	unsigned attempt;
	bool reconnected;         /* a reused connection failed and was replaced once */
	bool t_req_armed;
	uint64_t deadline;        /* route timeout, loop ms; 0: none */
	uint32_t backoff_ms;      /* the back-off chosen with the last retry decision */
	bool waiting_backoff;     /* H1_WAIT: back-off (else the fault delay) */
	bool attempt_live;        /* an attempt went for an endpoint; its outcome is not told */

	/* VirtualService mirror (h1_shadow.c): sent once the request is complete. */
	bool mirror_pending;
	uint32_t mirror_proto;
	struct sockaddr_storage mirror_up;

	/* Circuit breaking (h1_cluster.c). */
	struct h1_ep *wait_ep;    /* queued at (pending), or given a slot at (granted) */
	struct h1_sess *cq_prev, *cq_next, *eq_prev, *eq_next; /* cluster's and endpoint's queue */
	bool pending, granted;
	bool grant_exc;           /* the slot is Envoy's one for an endpoint with no connection */
	struct h1_cluster *retry_cl; /* the retry in flight is counted there */

	/* The current attempt and its response. */
	struct h1_up *up;
	llhttp_t pp;
	struct h1_head rs;
	bool resp_started;        /* a head went to the client: no more local replies */
	bool resp_done;
	bool resp_retry;          /* the head was retriable: drop it and try again */
	bool resp_chunk_out;      /* re-chunk the body for the client */
	bool resp_keepalive;      /* the upstream may keep the connection */
	bool resp_bad;            /* a limit hit parsing the response head */
	enum h1_fail resp_fail;   /* the h2 back's answer was a failure (x-bm-h2-fail), 0: no */
	bool upgraded;
	uint64_t resp_bytes;      /* upstream bytes seen this attempt */
	bool close_after;         /* close the client once this response is out */

	uint64_t idle_since, head_start, close_start;
	struct bm_ev_timer t_idle, t_req, t_try, t_wait, t_kick;
	struct bm_ev_defer dead;
};

struct bm_h1_proxy {
	struct bm_evloop *loop;
	struct bm_h1_opts o;
	bm_l7_route_fn route;
	void *route_arg;
	struct bm_h1_stats st;
	struct h1_sess *sessions;
	struct h1_shadow *shadows;   /* mirror copies in flight */
	struct h1_pool pool;
	bm_l7_outcome_fn outcome;
	void *outcome_arg;
	bool draining;
	bm_h1_h2c_fn h2c;
	bm_h1_h2_open_fn h2_open;
	void *h2_arg;
	uint8_t rnd[256];
	size_t rnd_off;
	size_t cli_out_max, up_out_max, arena_max;
};

/* h1_parse.c: llhttp settings and head capture. */
extern const llhttp_settings_t h1_req_settings, h1_resp_settings;
void h1_head_init(struct h1_head *h, size_t arena_max, size_t max_fields);
int h1_head_alloc(struct h1_head *h);          /* the field array, allocated on first use */
void h1_head_reset(struct h1_head *h);
void h1_head_free(struct h1_head *h);
/* The first field named name (lowercase), or NULL; count gets the number of them. */
const struct h1_field *h1_head_find(const struct h1_head *h, const char *name, size_t *count);
static inline const char *h1_name(const struct h1_head *h, const struct h1_field *f)
{
	return h->arena.data + f->name_off;
}
static inline const char *h1_val(const struct h1_head *h, const struct h1_field *f)
{
	return h->arena.data + f->val_off;
}
bool h1_token_in(const char *list, size_t len, const char *tok);
/* The last chunk ("0\r\n"), h's trailers when with_trailers, and the empty line. */
int h1_last_chunk(struct bm_buf *out, const struct h1_head *h, bool with_trailers);
bool h1_listed_in_connection(const struct h1_head *h, const char *name, size_t len);

/* h1_util.c: names, randomness, framing helpers. */
const char *h1_reason(int status);
bool h1_is_hop_by_hop(const char *name, size_t len);
bool h1_edit_protected(const char *name);
/* Is a[0, alen) the NUL-terminated b? (Inline: strlen of a literal folds away.) */
static inline bool h1_name_eq(const char *a, size_t alen, const char *b)
{
	return alen == strlen(b) && !memcmp(a, b, alen);
}
/* Appends without printf (the hot path): a string, a string of known length, a number. */
static inline int h1_put(struct bm_buf *out, const char *s)
{
	return bm_buf_append(out, s, strlen(s));
}
int h1_put_u64(struct bm_buf *out, uint64_t v);
/* "content-length: <n>\r\n" */
int h1_put_content_length(struct bm_buf *out, uint64_t n);
void h1_random(struct bm_h1_proxy *px, void *buf, size_t n);
void h1_uuid4(struct bm_h1_proxy *px, char out[37]);
void h1_format_ip(const struct sockaddr_storage *ss, char *out, size_t len);
uint32_t h1_backoff_ms(struct bm_h1_proxy *px, unsigned retry);
/* Writes fields of h except skipped ones, with edits applied (remove, set, add). */
int h1_write_fields(struct bm_buf *out, const struct h1_head *h, const struct bm_http_edits *e,
		    bool (*skip)(const struct h1_head *h, const struct h1_field *f, void *ctx),
		    void *ctx);
int h1_chunk_header(struct bm_buf *out, size_t len);

/* h1_req.c: the request side. */
int h1_req_feed_head(struct h1_sess *s);      /* -1 closed/replied, 0 more, 1 complete */
void h1_req_begin(struct h1_sess *s);         /* head complete: check, build, route */
bool h1_req_feed_body(struct h1_sess *s);     /* true on progress */
void h1_req_on_body(struct h1_sess *s, const char *at, size_t len);
int h1_req_write_head(struct h1_sess *s, struct bm_buf *out);
int h1_req_write_replay(struct h1_sess *s, struct bm_buf *out);
void h1_req_reset(struct h1_sess *s);         /* ready for the next request */

/* h1_resp.c: the response side and local replies. */
void h1_resp_reset(struct h1_sess *s);
int h1_resp_on_head(struct h1_sess *s);       /* llhttp on_headers_complete result */
void h1_resp_on_body(struct h1_sess *s, const char *at, size_t len);
bool h1_resp_feed(struct h1_sess *s);         /* true on progress */
void h1_resp_eof(struct h1_sess *s);          /* upstream EOF, its input all parsed */
void h1_local_reply(struct h1_sess *s, int status, const char *body, const char *location,
		    const struct bm_http_edits *edits);
void h1_count_status(struct h1_sess *s, int status);

/* h1_attempt.c: routing, attempts, retries, timeouts. */
void h1_route(struct h1_sess *s);
void h1_attempt_start(struct h1_sess *s);
void h1_attempt_fail(struct h1_sess *s, enum h1_fail why);
bool h1_retry_wanted(struct h1_sess *s, enum h1_fail why, int status);
void h1_req_complete(struct h1_sess *s);
void h1_exchange_done(struct h1_sess *s);
void h1_up_event(struct bm_conn *c, uint32_t events);
void h1_timer_req(struct bm_evloop *l, struct bm_ev_timer *t);
void h1_timer_try(struct bm_evloop *l, struct bm_ev_timer *t);
void h1_timer_wait(struct bm_evloop *l, struct bm_ev_timer *t);
/* Tells the outcome of the live attempt, once (no-op when none is live). */
void h1_outcome(struct h1_sess *s, enum bm_l7_outcome what, int status);

/* h1_sess.c: the session's life. */
struct h1_sess *h1_sess_new(struct bm_h1_proxy *px, int fd, const struct bm_h1_peer *peer);
void h1_step(struct h1_sess *s);
void h1_set_state(struct h1_sess *s, enum h1_state st);
void h1_sess_abort(struct h1_sess *s);        /* reset: close without a reply */
void h1_sess_close(struct h1_sess *s);
void h1_start_closing(struct h1_sess *s);
void h1_next_request(struct h1_sess *s);
void h1_kick(struct h1_sess *s);

/* h1_shadow.c: VirtualService mirror copies, fire and forget. */
#define H1_SHADOW_MS 10000        /* a copy's whole life: connect, send, read the answer */
/* s's copy to its mirror (s->mirror_*), if its body is whole in the replay buffer. */
void h1_shadow_send(struct h1_sess *s);
void h1_shadows_free(struct bm_h1_proxy *px);
/* h1_req.c: the copy's head ("-shadow" host, content-length framing) and body. */
int h1_req_write_shadow(struct h1_sess *s, struct bm_buf *out);

/* h1_pool.c: upstream connections per endpoint of a cluster. */
enum h1_get {
	H1_GET_OK,       /* s->up: idle, handed over, or connecting */
	H1_GET_QUEUED,   /* pending: woken (t_wait) once a connection or a slot is free */
	H1_GET_OVERFLOW, /* a limit: 503 overflow */
	H1_GET_FAIL,     /* *err: the connect failed at once, or no memory */
};
int h1_pool_init(struct h1_pool *p);
void h1_pool_fini(struct bm_h1_proxy *px);
enum h1_get h1_pool_get(struct h1_sess *s, int *err);
/* A connection whose exchange ended cleanly: to the oldest waiter of its endpoint, else idle
 * (closed instead when other endpoints of its cluster have waiters). */
void h1_pool_put(struct bm_h1_proxy *px, struct h1_up *u);
void h1_pool_drop(struct bm_h1_proxy *px, struct h1_up *u);
/* s lets go of its upstream: leaves the queue, gives back a slot, drops s->up. */
void h1_upstream_detach(struct h1_sess *s);
/* max_requests_per_conn for u: its cluster's, else the proxy's (0: unlimited). */
uint32_t h1_up_max_requests(const struct bm_h1_proxy *px, const struct h1_up *u);

/* h1_cluster.c: clusters by name, their queues and circuit breakers. */
int h1_cl_init(struct h1_pool *p);
void h1_cl_fini(struct h1_pool *p);
/* Finds or adds name (a reference taken); lim replaces the limits when latest, else only
 * seeds a new cluster. NULL: no memory. */
struct h1_cluster *h1_cl_get(struct bm_h1_proxy *px, const char *name,
			     const struct bm_l7_pool *lim, bool latest);
void h1_cl_put(struct bm_h1_proxy *px, struct h1_cluster *cl);
struct h1_cluster *h1_cl_find(const struct h1_pool *p, const char *name); /* no reference */
/* May a new connection to e open (under max_connections, or e has none: Envoy's rule)? */
bool h1_cl_can_open(const struct h1_cluster *cl, const struct h1_ep *e);
void h1_cl_enqueue(struct h1_sess *s, struct h1_ep *e);
/* Back at the front of both queues: a waiter whose slot could not be used after all. */
void h1_cl_enqueue_head(struct h1_sess *s, struct h1_ep *e);
void h1_cl_unqueue(struct h1_sess *s);
/* Gives the oldest waiter of e a slot (it connects when woken). */
void h1_cl_grant(struct bm_h1_proxy *px, struct h1_sess *w);
/* Slots freed: waiters, oldest first, get them while under max_connections. */
void h1_cl_pump(struct bm_h1_proxy *px, struct h1_cluster *cl);
void h1_cl_wake(struct h1_sess *s);
bool h1_retry_allowed(struct h1_sess *s);
void h1_retry_charge(struct h1_sess *s);
void h1_retry_release(struct h1_sess *s);

#endif
