/* Upstream connections per endpoint: a hash of endpoints by address, each with its idle
 * keep-alive connections (most recent first), a connection limit, connect and idle timers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "h1_internal.h"

#define POOL_MIN_BUCKETS 64
#define ADDR_KEY_MAX (sizeof(struct sockaddr_un) + 4)

/* The bytes that identify an address: family, port, address (scope for v6), unix path. */
static size_t addr_key(const struct sockaddr_storage *ss, uint8_t *k)
{
	const struct sockaddr_in *in = (const void *)ss;
	const struct sockaddr_in6 *in6 = (const void *)ss;
	size_t n = 0;

	memcpy(k, &ss->ss_family, sizeof(ss->ss_family));
	n += sizeof(ss->ss_family);
	switch (ss->ss_family) {
	case AF_INET:
		memcpy(k + n, &in->sin_port, 2);
		memcpy(k + n + 2, &in->sin_addr, 4);
		return n + 6;
	case AF_INET6:
		memcpy(k + n, &in6->sin6_port, 2);
		memcpy(k + n + 2, &in6->sin6_addr, 16);
		memcpy(k + n + 18, &in6->sin6_scope_id, 4);
		return n + 22;
	case AF_UNIX: {
		size_t len = bm_sockaddr_len(ss) - offsetof(struct sockaddr_un, sun_path);

		memcpy(k + n, ((const struct sockaddr_un *)(const void *)ss)->sun_path, len);
		return n + len;
	}
	default:
		return n;
	}
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
	return p->tab ? 0 : -ENOMEM;
}

static size_t bucket_of(const struct h1_pool *p, const struct sockaddr_storage *a)
{
	uint8_t k[ADDR_KEY_MAX];

	return key_hash(k, addr_key(a, k)) & (p->n_buckets - 1);
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
			size_t b = bucket_of(&np, &e->addr);

			p->tab[i] = e->hnext;
			e->hnext = tab[b];
			tab[b] = e;
		}
	}
	free(p->tab);
	p->tab = tab;
	p->n_buckets = n;
}

static struct h1_ep *ep_get(struct h1_pool *p, const struct sockaddr_storage *a)
{
	uint8_t k[ADDR_KEY_MAX], k2[ADDR_KEY_MAX];
	size_t n = addr_key(a, k), b;
	struct h1_ep *e;

	b = key_hash(k, n) & (p->n_buckets - 1);
	for (e = p->tab[b]; e; e = e->hnext)
		if (addr_key(&e->addr, k2) == n && !memcmp(k, k2, n))
			return e;
	if (p->n_eps >= 2 * p->n_buckets) {
		pool_grow(p);
		b = key_hash(k, n) & (p->n_buckets - 1);
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->addr = *a;
	e->hnext = p->tab[b];
	p->tab[b] = e;
	p->n_eps++;
	return e;
}

/* An endpoint without connections is forgotten (endpoints come and go with the config). */
static void ep_put(struct h1_pool *p, struct h1_ep *e)
{
	struct h1_ep **pp;

	if (e->n_conns)
		return;
	for (pp = &p->tab[bucket_of(p, &e->addr)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			p->n_eps--;
			free(e);
			return;
		}
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
}

static void up_free(struct bm_ev_defer *d)
{
	free(bm_container_of(d, struct h1_up, dead));
}

/* Closes u without touching its endpoint's entry. */
static void up_close(struct bm_h1_proxy *px, struct h1_up *u)
{
	if (u->idle)
		idle_unlink(u);
	bm_ev_timer_cancel(px->loop, &u->timer);
	bm_conn_destroy(u->c);
	u->c = NULL;
	u->s = NULL;
	u->ep->n_conns--;
	px->st.upstream_cx_active--;
	bm_ev_defer(px->loop, &u->dead, up_free);
}

void h1_pool_drop(struct bm_h1_proxy *px, struct h1_up *u)
{
	struct h1_ep *e = u->ep;

	up_close(px, u);
	ep_put(&px->pool, e);
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

struct h1_up *h1_pool_get(struct bm_h1_proxy *px, const struct sockaddr_storage *addr, int *err)
{
	struct h1_ep *e = ep_get(&px->pool, addr);
	struct bm_conn *c;
	struct h1_up *u;
	int rc, cerr = 0;

	if (!e) {
		*err = ENOMEM;
		return NULL;
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
		return u;
	}
	if (px->o.max_conns_per_endpoint && e->n_conns >= px->o.max_conns_per_endpoint) {
		*err = EBUSY;
		ep_put(&px->pool, e);
		return NULL;
	}
	rc = bm_conn_connect(px->loop, addr, px->o.buf_size, px->up_out_max, &c, &cerr);
	if (rc == BM_ERROR) {
		px->st.upstream_cx_fail++;
		*err = cerr;
		ep_put(&px->pool, e);
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		bm_conn_destroy(c);
		*err = ENOMEM;
		ep_put(&px->pool, e);
		return NULL;
	}
	u->c = c;
	u->ep = e;
	u->px = px;
	e->n_conns++;
	px->st.upstream_cx++;
	px->st.upstream_cx_active++;
	bm_ev_timer_init(&u->timer, up_timer, u);
	if (c->connecting && bm_ev_timer_arm(px->loop, &u->timer, px->o.connect_timeout_ms)) {
		h1_pool_drop(px, u);
		*err = ENOMEM;
		return NULL;
	}
	return u;
}

void h1_pool_put(struct bm_h1_proxy *px, struct h1_up *u)
{
	struct h1_ep *e = u->ep;

	u->s = NULL;
	u->reused = false;
	if (e->n_idle >= px->o.max_idle_per_endpoint ||
	    bm_ev_timer_arm(px->loop, &u->timer, px->o.upstream_idle_ms)) {
		h1_pool_drop(px, u);
		return;
	}
	u->c->on_event = idle_event;
	u->c->data = u;
	bm_buf_release(&u->c->in);
	bm_buf_release(&u->c->out);
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
}
