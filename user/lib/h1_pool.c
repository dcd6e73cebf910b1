/* Upstream connections per endpoint of a cluster: a hash of endpoints by (address, cluster),
 * idle keep-alive connections (most recent first), limits and waiters, connect/idle timers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "h1_internal.h"

#define POOL_MIN_BUCKETS 64
#define ADDR_KEY_MAX (BM_SOCKADDR_KEY_MAX + 1 + sizeof(void *))

/* An endpoint's key: its address, then its cluster (two clusters' pools never mix), then
 * how it is spoken to (HTTP/1.1, or HTTP/2 through the back). */
static size_t ep_key(const struct sockaddr_storage *ss, const struct h1_cluster *cl, bool h2,
		     uint8_t *k)
{
	size_t n = bm_sockaddr_key(ss, k);

	memcpy(k + n, &cl, sizeof(cl));
	k[n + sizeof(cl)] = h2;
	return n + sizeof(cl) + 1;
}

static uint64_t key_hash(const uint8_t *k, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ k[i]) * 1099511628211ull;
	return h;
}


int h1_pool_init(struct h1_pool *p)
{
	p->n_buckets = POOL_MIN_BUCKETS;
	p->n_eps = 0;
	p->tab = calloc(p->n_buckets, sizeof(*p->tab));
	if (!p->tab || h1_cl_init(p)) {
		free(p->tab);
		p->tab = NULL;
		return -ENOMEM;
	}
	return 0;
}

static size_t bucket_of(const struct h1_pool *p, const struct sockaddr_storage *a,
			const struct h1_cluster *cl, bool h2)
{
	uint8_t k[ADDR_KEY_MAX];

	return key_hash(k, ep_key(a, cl, h2, k)) & (p->n_buckets - 1);
}

static void pool_grow(struct h1_pool *p)
{
	size_t n = p->n_buckets * 2, i;
	struct h1_ep **tab = calloc(n, sizeof(*tab));
	struct h1_pool np = { .tab = tab, .n_buckets = n };

	if (!tab)
		return; /* longer chains, still correct */
	for (i = 0; i < p->n_buckets; i++) {
		while (p->tab[i]) {
			struct h1_ep *e = p->tab[i];
			size_t b = bucket_of(&np, &e->addr, e->cl, e->h2);

			p->tab[i] = e->hnext;
			e->hnext = tab[b];
			tab[b] = e;
		}
	}
	free(p->tab);
	p->tab = tab;
	p->n_buckets = n;
}

static struct h1_ep *ep_get(struct bm_h1_proxy *px, const struct sockaddr_storage *a,
			    struct h1_cluster *cl, bool h2)
{
	struct h1_pool *p = &px->pool;
	uint8_t k[ADDR_KEY_MAX], k2[ADDR_KEY_MAX];
	size_t n = ep_key(a, cl, h2, k), b;
	struct h1_ep *e;

	b = key_hash(k, n) & (p->n_buckets - 1);
	for (e = p->tab[b]; e; e = e->hnext)
		if (ep_key(&e->addr, e->cl, e->h2, k2) == n && !memcmp(k, k2, n))
			return e;
	if (p->n_eps >= 2 * p->n_buckets) {
		pool_grow(p);
		b = key_hash(k, n) & (p->n_buckets - 1);
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->addr = *a;
	e->h2 = h2;
	e->hnext = p->tab[b];
	p->tab[b] = e;
	p->n_eps++;
	if (cl) {
		e->cl = cl;
		cl->refs++;
		e->cnext = cl->eps;
		if (cl->eps)
			cl->eps->cprev = e;
		cl->eps = e;
	}
	return e;
}

static struct h1_ep *ep_find(const struct h1_pool *p, const struct sockaddr_storage *a,
			     const struct h1_cluster *cl, bool h2)
{
	uint8_t k[ADDR_KEY_MAX], k2[ADDR_KEY_MAX];
	size_t n = ep_key(a, cl, h2, k);
	struct h1_ep *e;

	for (e = p->tab[key_hash(k, n) & (p->n_buckets - 1)]; e; e = e->hnext)
		if (ep_key(&e->addr, e->cl, e->h2, k2) == n && !memcmp(k, k2, n))
			return e;
	return NULL;
}

uint32_t bm_h1_proxy_load(void *arg, const char *cluster, const struct sockaddr_storage *ep)
{
	struct bm_h1_proxy *px = arg;
	const struct h1_cluster *cl = cluster ? h1_cl_find(&px->pool, cluster) : NULL;
	uint32_t n = 0;

	if (!cl)
		return 0;
	for (int h2 = 0; h2 < 2; h2++) {
		const struct h1_ep *e = ep_find(&px->pool, ep, cl, h2);

		if (e)
			n += e->n_conns - e->n_idle + e->n_granted;
	}
	return n;
}

/* An endpoint with no connection, waiter or slot is forgotten (endpoints come and go with
 * the config), and with it its hold on the cluster. */
static void ep_put(struct bm_h1_proxy *px, struct h1_ep *e)
{
	struct h1_pool *p = &px->pool;
	struct h1_ep **pp;

	if (e->n_conns || e->q_head || e->n_granted)
		return;
	for (pp = &p->tab[bucket_of(p, &e->addr, e->cl, e->h2)]; *pp; pp = &(*pp)->hnext) {
		if (*pp != e)
			continue;
		*pp = e->hnext;
		p->n_eps--;
		if (e->cl) {
			if (e->cprev)
				e->cprev->cnext = e->cnext;
			else
				e->cl->eps = e->cnext;
			if (e->cnext)
				e->cnext->cprev = e->cprev;
			h1_cl_put(px, e->cl);
		}
		free(e);
		return;
	}
}

static void idle_unlink(struct h1_up *u)
{
	if (u->prev)
		u->prev->next = u->next;
	else
		u->ep->idle = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->prev = u->next = NULL;
	u->idle = false;
	u->ep->n_idle--;
	if (u->ep->cl)
		u->ep->cl->n_idle--;
}

static void up_free(struct bm_ev_defer *d)
{
	free(bm_container_of(d, struct h1_up, dead));
}

/* s's request is on u from here: counted in its cluster's active requests. */
static void attach(struct h1_sess *s, struct h1_up *u)
{
	u->s = s;
	s->up = u;
	if (u->ep->cl)
		u->ep->cl->n_active++;
}

static void detach(struct h1_up *u)
{
	if (u->s && u->ep->cl)
		u->ep->cl->n_active--;
	u->s = NULL;
}

/* A connection of e closed or a slot came back: Envoy's one connection per endpoint for
 * e's own waiters, then the cluster's waiters in order while under the limit. */
static void slot_freed(struct bm_h1_proxy *px, struct h1_ep *e)
{
	if (e->q_head && !e->n_conns && !e->n_granted) {
		e->q_head->grant_exc = true;
		h1_cl_grant(px, e->q_head);
	}
	h1_cl_pump(px, e->cl);
}

/* Closes u without freeing its endpoint's entry. */
static void up_close(struct bm_h1_proxy *px, struct h1_up *u)
{
	struct h1_ep *e = u->ep;

	if (u->idle)
		idle_unlink(u);
	bm_ev_timer_cancel(px->loop, &u->timer);
	bm_conn_destroy(u->c);
	u->c = NULL;
	detach(u);
	e->n_conns--;
	if (e->cl)
		e->cl->n_conns--;
	px->st.upstream_cx_active--;
	bm_ev_defer(px->loop, &u->dead, up_free);
	slot_freed(px, e);
}

void h1_pool_drop(struct bm_h1_proxy *px, struct h1_up *u)
{
	struct h1_ep *e = u->ep;

	up_close(px, u);
	ep_put(px, e);
}

static void up_timer(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct h1_up *u = t->data;
	struct h1_sess *s = u->s;

	(void)l;
	if (!s) { /* idle too long in the pool */
		h1_pool_drop(u->px, u);
		return;
	}
	/* Connect timeout. */
	s->px->st.upstream_cx_fail++;
	h1_attempt_fail(s, H1_FAIL_CONNECT);
	if (!s->closed)
		h1_step(s);
}

/* Anything from an idle connection (bytes, EOF, reset) ends it: a response was not asked. */
static void idle_event(struct bm_conn *c, uint32_t events)
{
	struct h1_up *u = c->data;

	(void)events;
	h1_pool_drop(u->px, u);
}

/* One idle connection of cl (another endpoint's) closes, so its slot can serve a waiter. */
static void close_idle(struct bm_h1_proxy *px, struct h1_cluster *cl)
{
	for (struct h1_ep *e = cl->eps; e; e = e->cnext) {
		if (e->idle) {
			h1_pool_drop(px, e->idle);
			return;
		}
	}
}

/* An internal connection to an HTTP/2 endpoint, from the back (bm_h1_h2_open_fn): connected
 * at once; what reaching the endpoint costs is the back's. -1 with *err set. */
static int open_h2(struct bm_h1_proxy *px, struct h1_ep *e, struct bm_conn **c, int *err)
{
	int fd;

	if (!px->h2_open) {
		*err = EPROTONOSUPPORT;
		return -1;
	}
	fd = px->h2_open(px->h2_arg, &e->addr, e->cl ? e->cl->name : NULL,
			 e->cl ? &e->cl->lim : NULL);
	if (fd < 0) {
		*err = -fd;
		return -1;
	}
	*c = bm_conn_new(px->loop, fd, px->o.buf_size, px->up_out_max);
	if (!*c) {
		*err = ENOMEM;
		return -1;
	}
	return 0;
}

static enum h1_get get_at(struct h1_sess *s, struct h1_ep *e, bool slot, bool exc, int *err)
{
	struct bm_h1_proxy *px = s->px;
	struct h1_cluster *cl = e->cl;
	struct bm_conn *c;
	struct h1_up *u;
	uint32_t ms;
	int cerr = 0;

	if (cl && cl->lim.max_requests && cl->n_active >= cl->lim.max_requests) {
		px->st.rq_pending_overflow++;
		return H1_GET_OVERFLOW;
	}
	while ((u = e->idle)) {
		idle_unlink(u);
		bm_ev_timer_cancel(px->loop, &u->timer);
		if (u->c->rd_eof || u->c->failed) {
			up_close(px, u);
			continue;
		}
		u->reused = true;
		px->st.upstream_reuse++;
		attach(s, u);
		return H1_GET_OK;
	}
	/* Envoy decides its one connection for an endpoint with none when it connects: one
	 * given while e had none, and e has one since (another waiter's, or a new request's that
	 * found an idle one gone), waits again, at the head, unless a slot is free anyway. */
	if (slot && exc && !e->h2 && !h1_cl_can_open(cl, e)) {
		h1_cl_enqueue_head(s, e);
		return H1_GET_QUEUED;
	}
	if (px->o.max_conns_per_endpoint && e->n_conns >= px->o.max_conns_per_endpoint) {
		px->st.overflows++;
		return H1_GET_OVERFLOW;
	}
	/* HTTP/2 endpoints: max_connections bounds the back's connections, not the engine's
	 * internal ones (one per request in flight). */
	if (!slot && !e->h2 && !h1_cl_can_open(cl, e)) {
		if (cl->n_idle)
			close_idle(px, cl);
		if (!h1_cl_can_open(cl, e)) {
			px->st.cx_overflow++;
			if (cl->lim.max_pending && cl->n_pending >= cl->lim.max_pending) {
				px->st.rq_pending_overflow++;
				return H1_GET_OVERFLOW;
			}
			h1_cl_enqueue(s, e);
			return H1_GET_QUEUED;
		}
	}
	if (e->h2 ? open_h2(px, e, &c, &cerr)
		  : bm_conn_connect(px->loop, &e->addr, px->o.buf_size, px->up_out_max, &c,
				    &cerr) == BM_ERROR) {
		px->st.upstream_cx_fail++;
		*err = cerr;
		return H1_GET_FAIL;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		bm_conn_destroy(c);
		*err = ENOMEM;
		return H1_GET_FAIL;
	}
	u->c = c;
	u->ep = e;
	u->px = px;
	e->n_conns++;
	if (cl)
		cl->n_conns++;
	px->st.upstream_cx++;
	px->st.upstream_cx_active++;
	bm_ev_timer_init(&u->timer, up_timer, u);
	attach(s, u);
	ms = cl && cl->lim.connect_timeout_ms ? cl->lim.connect_timeout_ms : px->o.connect_timeout_ms;
	if (c->connecting && bm_ev_timer_arm(px->loop, &u->timer, ms)) {
		s->up = NULL;
		up_close(px, u);
		*err = ENOMEM;
		return H1_GET_FAIL;
	}
	return H1_GET_OK;
}

/* A slot given to s is taken back; the endpoint it was at, if that is not e. */
static struct h1_ep *grant_take(struct h1_sess *s)
{
	struct h1_ep *g = s->wait_ep;

	s->granted = false;
	s->grant_exc = false;
	s->wait_ep = NULL;
	g->n_granted--;
	if (g->cl)
		g->cl->n_granted--;
	return g;
}

enum h1_get h1_pool_get(struct h1_sess *s, int *err)
{
	struct bm_h1_proxy *px = s->px;
	struct h1_cluster *cl = NULL;
	struct h1_ep *e, *g = NULL;
	bool exc = s->grant_exc;
	enum h1_get rc;

	if (s->up) { /* handed over while it waited */
		if (!s->up->c->rd_eof && !s->up->c->failed)
			return H1_GET_OK;
		h1_pool_drop(px, s->up);
		s->up = NULL;
	}
	if (s->d.cluster && s->d.cluster[0]) {
		cl = h1_cl_get(px, s->d.cluster, &s->d.pool, true);
		if (!cl) {
			*err = ENOMEM;
			return H1_GET_FAIL;
		}
	}
	e = ep_get(px, &s->d.upstream, cl, s->d.upstream_proto == BM_L7_PROTO_H2);
	h1_cl_put(px, cl); /* e holds it now */
	if (!e) {
		*err = ENOMEM;
		return H1_GET_FAIL;
	}
	if (s->granted) {
		g = grant_take(s);
		if (g != e) { /* cannot happen: the decision does not change while it waits */
			slot_freed(px, g);
			ep_put(px, g);
		}
	}
	rc = get_at(s, e, g == e, exc, err);
	if (rc == H1_GET_OVERFLOW || rc == H1_GET_FAIL) {
		slot_freed(px, e); /* a slot given and not used */
		ep_put(px, e);
	}
	return rc;
}

static void hand_over(struct bm_h1_proxy *px, struct h1_up *u, struct h1_sess *w)
{
	h1_cl_unqueue(w);
	w->wait_ep = NULL;
	u->reused = true;
	px->st.upstream_reuse++;
	attach(w, u);
	u->c->on_event = h1_up_event;
	u->c->data = u;
	bm_conn_want(u->c, false, false);
	h1_cl_wake(w);
}

void h1_pool_put(struct bm_h1_proxy *px, struct h1_up *u)
{
	struct h1_ep *e = u->ep;
	struct h1_cluster *cl = e->cl;
	uint32_t ms = cl && cl->lim.idle_timeout_ms ? cl->lim.idle_timeout_ms : px->o.upstream_idle_ms;

	detach(u);
	u->reused = false;
	bm_buf_release(&u->c->in);
	bm_buf_release(&u->c->out);
	if (e->q_head) {
		hand_over(px, u, e->q_head);
		return;
	}
	if ((cl && cl->q_head) || e->n_idle >= px->o.max_idle_per_endpoint ||
	    bm_ev_timer_arm(px->loop, &u->timer, ms)) {
		h1_pool_drop(px, u); /* its slot goes to a waiter of another endpoint */
		return;
	}
	u->c->on_event = idle_event;
	u->c->data = u;
	if (bm_conn_want(u->c, true, false)) {
		h1_pool_drop(px, u);
		return;
	}
	u->idle = true;
	u->prev = NULL;
	u->next = e->idle;
	if (e->idle)
		e->idle->prev = u;
	e->idle = u;
	e->n_idle++;
	if (cl)
		cl->n_idle++;
}

void h1_upstream_detach(struct h1_sess *s)
{
	struct bm_h1_proxy *px = s->px;
	struct h1_ep *e = s->wait_ep;
	struct h1_up *u = s->up;

	if (s->pending) {
		h1_cl_unqueue(s);
		s->wait_ep = NULL;
		ep_put(px, e);
	} else if (s->granted) {
		grant_take(s);
		slot_freed(px, e);
		ep_put(px, e);
	}
	if (!u)
		return;
	s->up = NULL;
	if (s->state == H1_PENDING) /* handed over, never used: clean */
		h1_pool_put(px, u);
	else
		h1_pool_drop(px, u);
}

uint32_t h1_up_max_requests(const struct bm_h1_proxy *px, const struct h1_up *u)
{
	const struct h1_cluster *cl = u->ep->cl;

	return cl && cl->lim.max_requests_per_conn ? cl->lim.max_requests_per_conn
						   : px->o.max_requests_per_conn;
}

void h1_pool_fini(struct bm_h1_proxy *px)
{
	struct h1_pool *p = &px->pool;
	size_t i;

	for (i = 0; p->tab && i < p->n_buckets; i++) {
		while (p->tab[i]) {
			struct h1_ep *e = p->tab[i];

			while (e->idle)
				up_close(px, e->idle);
			/* Connections still used by a session were closed with it. */
			p->tab[i] = e->hnext;
			free(e);
		}
	}
	free(p->tab);
	p->tab = NULL;
	p->n_eps = 0;
	h1_cl_fini(p); /* the clusters of the endpoints just freed */
}
