/* Circuit breaking for the HTTP/1.1 engine, per cluster name: connection, pending, request
 * and retry counts against the latest decision's limits (Envoy's), and the pending queue. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "h1_internal.h"
#include "queue.h"

#define CL_MIN_BUCKETS 16

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

int h1_cl_init(struct h1_pool *p)
{
	p->n_cbuckets = CL_MIN_BUCKETS;
	p->n_cls = 0;
	p->ctab = calloc(p->n_cbuckets, sizeof(*p->ctab));
	return p->ctab ? 0 : -ENOMEM;
}

/* Clusters still held here are only those of endpoints being freed with the pool. */
void h1_cl_fini(struct h1_pool *p)
{
	for (size_t i = 0; p->ctab && i < p->n_cbuckets; i++) {
		while (p->ctab[i]) {
			struct h1_cluster *cl = p->ctab[i];

			p->ctab[i] = cl->hnext;
			free(cl);
		}
	}
	free(p->ctab);
	p->ctab = NULL;
	p->n_cls = 0;
}

static void cl_grow(struct h1_pool *p)
{
	size_t n = p->n_cbuckets * 2;
	struct h1_cluster **tab = calloc(n, sizeof(*tab));

	if (!tab)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < p->n_cbuckets; i++) {
		while (p->ctab[i]) {
			struct h1_cluster *cl = p->ctab[i];
			size_t b = name_hash(cl->name) & (n - 1);

			p->ctab[i] = cl->hnext;
			cl->hnext = tab[b];
			tab[b] = cl;
		}
	}
	free(p->ctab);
	p->ctab = tab;
	p->n_cbuckets = n;
}

struct h1_cluster *h1_cl_find(const struct h1_pool *p, const char *name)
{
	struct h1_cluster *cl = p->ctab[name_hash(name) & (p->n_cbuckets - 1)];

	while (cl && strcmp(cl->name, name))
		cl = cl->hnext;
	return cl;
}

struct h1_cluster *h1_cl_get(struct bm_h1_proxy *px, const char *name,
			     const struct bm_l7_pool *lim, bool latest)
{
	struct h1_pool *p = &px->pool;
	struct h1_cluster *cl = h1_cl_find(p, name);
	size_t len, b;

	if (cl) {
		cl->refs++;
		if (latest && memcmp(&cl->lim, lim, sizeof(*lim))) {
			cl->lim = *lim;
			h1_cl_pump(px, cl); /* max_connections may have risen */
		}
		return cl;
	}
	if (p->n_cls >= 2 * p->n_cbuckets)
		cl_grow(p);
	len = strlen(name);
	cl = calloc(1, sizeof(*cl) + len + 1);
	if (!cl)
		return NULL;
	memcpy(cl->name, name, len + 1);
	cl->lim = *lim;
	cl->refs = 1;
	b = name_hash(name) & (p->n_cbuckets - 1);
	cl->hnext = p->ctab[b];
	p->ctab[b] = cl;
	p->n_cls++;
	return cl;
}

/* A cluster nothing holds (no endpoint, no waiter, no retry) is forgotten: its limits come
 * again with the next decision that names it. */
void h1_cl_put(struct bm_h1_proxy *px, struct h1_cluster *cl)
{
	struct h1_pool *p = &px->pool;
	struct h1_cluster **pp;

	if (!cl || --cl->refs)
		return;
	for (pp = &p->ctab[name_hash(cl->name) & (p->n_cbuckets - 1)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == cl) {
			*pp = cl->hnext;
			p->n_cls--;
			free(cl);
			return;
		}
	}
}

static bool slot_free(const struct h1_cluster *cl)
{
	uint32_t max = cl->lim.max_connections;

	return !max || cl->n_conns + cl->n_granted < max;
}

/* Envoy: even over max_connections, an endpoint picked by the balancer gets one connection,
 * so a waiter always has a connection of its own endpoint that will free up. */
bool h1_cl_can_open(const struct h1_cluster *cl, const struct h1_ep *e)
{
	return !cl || slot_free(cl) || (!e->n_conns && !e->n_granted);
}

static void enqueue(struct h1_sess *s, struct h1_ep *e, bool head)
{
	struct h1_cluster *cl = e->cl;

	s->pending = true;
	s->wait_ep = e;
	if (head) {
		BM_Q_PUSH_HEAD(cl->q_head, cl->q_tail, s, cq_prev, cq_next);
		BM_Q_PUSH_HEAD(e->q_head, e->q_tail, s, eq_prev, eq_next);
	} else {
		BM_Q_PUSH_TAIL(cl->q_head, cl->q_tail, s, cq_prev, cq_next);
		BM_Q_PUSH_TAIL(e->q_head, e->q_tail, s, eq_prev, eq_next);
	}
	cl->n_pending++;
	s->px->st.rq_pending_active++;
}

void h1_cl_enqueue(struct h1_sess *s, struct h1_ep *e)
{
	enqueue(s, e, false);
	s->px->st.rq_pending_total++;
}

void h1_cl_enqueue_head(struct h1_sess *s, struct h1_ep *e)
{
	enqueue(s, e, true);
}

/* Out of both queues; s->wait_ep stays set (a grant is at that endpoint). */
void h1_cl_unqueue(struct h1_sess *s)
{
	struct h1_ep *e = s->wait_ep;
	struct h1_cluster *cl = e->cl;

	if (!s->pending)
		return;
	BM_Q_UNLINK(cl->q_head, cl->q_tail, s, cq_prev, cq_next);
	BM_Q_UNLINK(e->q_head, e->q_tail, s, eq_prev, eq_next);
	s->pending = false;
	cl->n_pending--;
	s->px->st.rq_pending_active--;
}

/* The waiter goes on from its own timer, after this batch: whoever freed the slot may be
 * deep in another session's work. */
void h1_cl_wake(struct h1_sess *s)
{
	bm_ev_timer_arm(s->px->loop, &s->t_wait, 0);
}

void h1_cl_grant(struct bm_h1_proxy *px, struct h1_sess *w)
{
	struct h1_ep *e = w->wait_ep;

	(void)px;
	h1_cl_unqueue(w);
	w->granted = true;
	e->n_granted++;
	e->cl->n_granted++;
	h1_cl_wake(w);
}

void h1_cl_pump(struct bm_h1_proxy *px, struct h1_cluster *cl)
{
	while (cl && cl->q_head && slot_free(cl))
		h1_cl_grant(px, cl->q_head);
}

/* ---- max_retries: retries in flight per cluster ---- */

static bool has_cluster(const struct h1_sess *s)
{
	return s->d.cluster && s->d.cluster[0];
}

bool h1_retry_allowed(struct h1_sess *s)
{
	struct h1_cluster *cl;
	uint32_t max;

	if (!has_cluster(s))
		return true;
	cl = h1_cl_find(&s->px->pool, s->d.cluster);
	max = cl ? cl->lim.max_retries : s->d.pool.max_retries;
	return !max || !cl || cl->n_retries < max;
}

/* Counted against the failed attempt's cluster until the retry's own outcome (or the end of
 * the request). */
void h1_retry_charge(struct h1_sess *s)
{
	h1_retry_release(s);
	if (!has_cluster(s))
		return;
	s->retry_cl = h1_cl_get(s->px, s->d.cluster, &s->d.pool, false);
	if (s->retry_cl)
		s->retry_cl->n_retries++;
}

void h1_retry_release(struct h1_sess *s)
{
	struct h1_cluster *cl = s->retry_cl;

	if (!cl)
		return;
	s->retry_cl = NULL;
	cl->n_retries--;
	h1_cl_put(s->px, cl);
}
