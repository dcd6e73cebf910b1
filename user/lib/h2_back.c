/* The HTTP/2 back (h2.h): internal connections for the engine, pools of h2c connections per
 * (cluster, endpoint) with the cluster's circuit breakers, and the requests waiting for room. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "h2_internal.h"
#include "queue.h"

#define TAB_MIN 16
#define KEY_MAX (BM_SOCKADDR_KEY_MAX + sizeof(void *))

/* ---- pools and clusters by key ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *k = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 1099511628211ull;
	return h;
}

#define FNV_BASIS 1469598103934665603ull

/* The bytes that name a pool: its cluster, then the address (family, port, address, scope
 * or unix path). */
static size_t pool_key(const struct h2b_cluster *cl, const struct sockaddr_storage *ss, uint8_t *k)
{
	memcpy(k, &cl, sizeof(cl));
	return sizeof(cl) + bm_sockaddr_key(ss, k + sizeof(cl));
}

static size_t pool_bucket(const struct bm_h2_back *b, const struct h2b_cluster *cl,
			  const struct sockaddr_storage *a)
{
	uint8_t k[KEY_MAX];

	return fnv(FNV_BASIS, k, pool_key(cl, a, k)) & (b->n_pbuckets - 1);
}

static size_t cluster_bucket(size_t n_buckets, const char *name)
{
	return fnv(FNV_BASIS, name, strlen(name)) & (n_buckets - 1);
}

static void ptab_grow(struct bm_h2_back *b)
{
	size_t n = b->n_pbuckets * 2, old = b->n_pbuckets;
	struct h2b_pool **tab = calloc(n, sizeof(*tab)), **otab = b->ptab;

	if (!tab)
		return; /* longer chains, still correct */
	b->ptab = tab;
	b->n_pbuckets = n;
	for (size_t i = 0; i < old; i++) {
		while (otab[i]) {
			struct h2b_pool *p = otab[i];
			size_t k = pool_bucket(b, p->cl, &p->addr);

			otab[i] = p->hnext;
			p->hnext = tab[k];
			tab[k] = p;
		}
	}
	free(otab);
}

static void ctab_grow(struct bm_h2_back *b)
{
	size_t n = b->n_cbuckets * 2;
	struct h2b_cluster **tab = calloc(n, sizeof(*tab));

	if (!tab)
		return;
	for (size_t i = 0; i < b->n_cbuckets; i++) {
		while (b->ctab[i]) {
			struct h2b_cluster *cl = b->ctab[i];
			size_t k = cluster_bucket(n, cl->name);

			b->ctab[i] = cl->hnext;
			cl->hnext = tab[k];
			tab[k] = cl;
		}
	}
	free(b->ctab);
	b->ctab = tab;
	b->n_cbuckets = n;
}

/* The cluster named name, with lim as its limits from now on (the latest open's). */
static struct h2b_cluster *cluster_get(struct bm_h2_back *b, const char *name,
				       const struct bm_l7_pool *lim)
{
	size_t k = cluster_bucket(b->n_cbuckets, name), len;
	struct h2b_cluster *cl;

	for (cl = b->ctab[k]; cl; cl = cl->hnext) {
		if (strcmp(cl->name, name))
			continue;
		if (memcmp(&cl->lim, lim, sizeof(*lim))) {
			cl->lim = *lim;
			h2b_cluster_kick(cl); /* max_connections or max_pending may have risen */
		}
		return cl;
	}
	if (b->n_cls >= 2 * b->n_cbuckets) {
		ctab_grow(b);
		k = cluster_bucket(b->n_cbuckets, name);
	}
	len = strlen(name);
	cl = calloc(1, sizeof(*cl) + len + 1);
	if (!cl)
		return NULL;
	memcpy(cl->name, name, len + 1);
	cl->lim = *lim;
	cl->hnext = b->ctab[k];
	b->ctab[k] = cl;
	b->n_cls++;
	return cl;
}

/* A cluster without pools is forgotten; its limits come again with the next open. */
static void cluster_put(struct bm_h2_back *b, struct h2b_cluster *cl)
{
	struct h2b_cluster **pp;

	if (cl->pools)
		return;
	for (pp = &b->ctab[cluster_bucket(b->n_cbuckets, cl->name)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == cl) {
			*pp = cl->hnext;
			b->n_cls--;
			free(cl);
			return;
		}
	}
}

static void pool_kick_fn(struct bm_evloop *l, struct bm_ev_timer *t);

static struct h2b_pool *pool_get(struct bm_h2_back *b, struct h2b_cluster *cl,
				 const struct sockaddr_storage *a)
{
	uint8_t k[KEY_MAX], k2[KEY_MAX];
	size_t n = pool_key(cl, a, k), i = pool_bucket(b, cl, a);
	struct h2b_pool *p;

	for (p = b->ptab[i]; p; p = p->hnext)
		if (pool_key(p->cl, &p->addr, k2) == n && !memcmp(k, k2, n))
			return p;
	if (b->n_pools >= 2 * b->n_pbuckets) {
		ptab_grow(b);
		i = pool_bucket(b, cl, a);
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->b = b;
	p->cl = cl;
	p->addr = *a;
	bm_ev_timer_init(&p->t_kick, pool_kick_fn, p);
	p->hnext = b->ptab[i];
	b->ptab[i] = p;
	b->n_pools++;
	p->cnext = cl->pools;
	if (cl->pools)
		cl->pools->cprev = p;
	cl->pools = p;
	return p;
}

static void pool_free_fn(struct bm_ev_defer *d)
{
	free(bm_container_of(d, struct h2b_pool, free_d));
}

/* Out of the tables (a new open for the same key makes a new pool), freed after the batch. */
static void pool_release(struct bm_h2_back *b, struct h2b_pool *p)
{
	struct h2b_pool **pp;

	if (p->dead)
		return;
	p->dead = true;
	bm_ev_timer_cancel(b->loop, &p->t_kick);
	for (pp = &b->ptab[pool_bucket(b, p->cl, &p->addr)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == p) {
			*pp = p->hnext;
			b->n_pools--;
			break;
		}
	}
	if (p->cprev)
		p->cprev->cnext = p->cnext;
	else
		p->cl->pools = p->cnext;
	if (p->cnext)
		p->cnext->cprev = p->cprev;
	cluster_put(b, p->cl);
	bm_ev_defer(b->loop, &p->free_d, pool_free_fn);
}

void h2b_pool_put(struct bm_h2_back *b, struct h2b_pool *p)
{
	if (--p->refs == 0)
		pool_release(b, p);
}

/* ---- waiting for room ---- */

void h2b_pool_kick(struct h2b_pool *p)
{
	if (!p->dead)
		bm_ev_timer_arm(p->b->loop, &p->t_kick, 0);
}

void h2b_cluster_kick(struct h2b_cluster *cl)
{
	for (struct h2b_pool *p = cl->pools; p; p = p->cnext)
		if (p->q_head)
			h2b_pool_kick(p);
}

void h2b_enqueue(struct h2b_ic *ic)
{
	struct h2b_pool *p = ic->pool;

	ic->queued = true;
	BM_Q_PUSH_TAIL(p->q_head, p->q_tail, ic, q_prev, q_next);
	h2b_pool_kick(p);
}

void h2b_unqueue(struct h2b_ic *ic)
{
	struct h2b_pool *p = ic->pool;

	if (!ic->queued)
		return;
	BM_Q_UNLINK(p->q_head, p->q_tail, ic, q_prev, q_next);
	ic->queued = false;
	if (ic->counted) {
		ic->counted = false;
		p->cl->n_pending--;
	}
}

static struct h2b_up *pool_room(const struct h2b_pool *p)
{
	for (struct h2b_up *u = p->ups; u; u = u->next)
		if (h2b_up_has_room(u))
			return u;
	return NULL;
}

/* Under max_connections, or no connection to this endpoint at all: Envoy opens one then, so
 * a waiter is never stuck behind another endpoint's connections. */
static bool pool_can_open(const struct h2b_pool *p)
{
	uint32_t max = p->cl->lim.max_connections;

	return !max || p->cl->n_conns < max || !p->n_ups;
}

/* Oldest first: a stream on a connection with room, else on a new connection when one may
 * open; those left wait, up to max_pending of the cluster, and the rest overflow. */
static void pool_dispatch(struct bm_h2_back *b, struct h2b_pool *p)
{
	struct h2b_ic *ic, *next;
	uint32_t max_pending = p->cl->lim.max_pending;

	while ((ic = p->q_head)) {
		struct h2b_up *u = pool_room(p);
		bool fresh = false;
		int rc;

		if (!u && pool_can_open(p)) {
			u = h2b_up_open(p);
			if (!u) { /* refused at once (unreachable, no memory) */
				h2b_unqueue(ic);
				h2b_ic_fail(ic, "connect");
				continue;
			}
			fresh = true;
		}
		if (!u)
			break;
		h2b_unqueue(ic);
		rc = h2b_up_submit(u, ic->st);
		if (!rc)
			continue;
		/* Stream ids used up, or the session refuses: retire u and try again elsewhere,
		 * unless u was new (no memory). */
		u->draining = true;
		if (fresh || rc != NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
			h2b_ic_fail(ic, "reset");
			continue;
		}
		ic->queued = true; /* back at the head */
		BM_Q_PUSH_HEAD(p->q_head, p->q_tail, ic, q_prev, q_next);
	}
	for (ic = p->q_head; ic; ic = next) {
		next = ic->q_next;
		if (ic->counted)
			continue;
		if (max_pending && p->cl->n_pending >= max_pending) {
			h2b_unqueue(ic);
			b->st.upstream_overflow++;
			h2b_ic_fail(ic, "overflow");
			continue;
		}
		ic->counted = true;
		p->cl->n_pending++;
	}
}

static void pool_kick_fn(struct bm_evloop *l, struct bm_ev_timer *t)
{
	struct h2b_pool *p = t->data;
	struct h2b_up *u, *next;

	(void)l;
	p->refs++; /* held while its connections may close */
	pool_dispatch(p->b, p);
	for (u = p->ups; u; u = next) {
		next = u->next;
		h2b_up_service(u);
	}
	h2b_pool_put(p->b, p);
}

/* ---- the API ---- */

struct bm_h2_back *bm_h2_back_new(struct bm_evloop *loop, const struct bm_h2_opts *opts)
{
	struct bm_h2_back *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->loop = loop;
	h2_opts_fill(&b->o, opts);
	/* A stream's window of DATA (with chunk framing), a response head and its trailers. */
	b->ic_out_max = 2 * (size_t)b->o.buf_size + 2 * (size_t)b->o.max_header_list + 4096;
	b->n_pbuckets = b->n_cbuckets = TAB_MIN;
	b->ptab = calloc(b->n_pbuckets, sizeof(*b->ptab));
	b->ctab = calloc(b->n_cbuckets, sizeof(*b->ctab));
	if (!b->ptab || !b->ctab || h2b_callbacks_new(b)) {
		bm_h2_back_free(b);
		return NULL;
	}
	return b;
}

int bm_h2_back_open(void *back, const struct sockaddr_storage *ep, const char *cluster,
		    const struct bm_l7_pool *lim)
{
	static const struct bm_l7_pool none;
	struct bm_h2_back *b = back;
	struct h2b_cluster *cl;
	struct h2b_pool *p = NULL;
	int sv[2], rc = -ENOMEM;

	if (!b || !ep || !bm_sockaddr_len(ep))
		return -EINVAL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	cl = cluster_get(b, cluster ? cluster : "", lim ? lim : &none);
	if (cl)
		p = pool_get(b, cl, ep);
	if (!p)
		goto cleanup;
	p->refs++;
	rc = h2b_ic_new(b, p, sv[1]); /* takes sv[1] and the reference, also on failure */
	sv[1] = -1;
	if (rc)
		goto cleanup;
	return sv[0];
cleanup:
	if (cl && !p)
		cluster_put(b, cl);
	if (sv[1] >= 0)
		close(sv[1]);
	close(sv[0]);
	return rc;
}

const struct bm_h2_stats *bm_h2_back_stats(const struct bm_h2_back *b)
{
	return &b->st;
}

void bm_h2_back_free(struct bm_h2_back *b)
{
	if (!b)
		return;
	while (b->ics)
		h2b_ic_close(b->ics);
	for (size_t i = 0; b->ptab && i < b->n_pbuckets; i++) {
		while (b->ptab[i]) {
			struct h2b_pool *p = b->ptab[i];

			p->refs++;
			while (p->ups)
				h2b_up_close(p->ups, NULL);
			pool_release(b, p); /* nothing holds it any more */
		}
	}
	for (size_t i = 0; b->ctab && i < b->n_cbuckets; i++) {
		while (b->ctab[i]) { /* none left: each went with its last pool */
			struct h2b_cluster *cl = b->ctab[i];

			b->ctab[i] = cl->hnext;
			free(cl);
		}
	}
	if (b->cbs)
		nghttp2_session_callbacks_del(b->cbs);
	if (b->ngopt)
		nghttp2_option_del(b->ngopt);
	free(b->ptab);
	free(b->ctab);
	free(b);
}
