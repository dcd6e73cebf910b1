/* Outlier detection (outlier.h): per-endpoint failure counters and ejections, per-cluster
 * sweeps, as Envoy's consecutive 5xx and consecutive gateway failure detectors behave. */
#include "outlier.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "blobtab.h"

struct ocluster {
	char *name;
	uint64_t next_sweep;     /* loop ms; 0: not scheduled */
	uint32_t interval_ms;
	uint32_t n_ejected;
};

struct oendpoint {
	uint32_t cluster;        /* index into clusters */
	struct sockaddr_storage ep;
	uint32_t c5xx, cgw;      /* consecutive 5xx, consecutive gateway errors */
	uint32_t mult;           /* ejections so far, less one per healthy sweep */
	bool ejected;
	uint64_t until;          /* ejected until (loop ms) */
};

struct bm_outlier {
	struct ocluster *c;
	size_t n_c, cap_c;
	struct oendpoint *e;
	size_t n_e, cap_e;
	struct bm_blobtab by_cluster;  /* name -> index into c */
	struct bm_blobtab by_ep;       /* name, 0, family, port, addr -> index into e */
	size_t n_ejected;
};

struct bm_outlier *bm_outlier_new(void)
{
	return calloc(1, sizeof(struct bm_outlier));
}

void bm_outlier_free(struct bm_outlier *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n_c; i++)
		free(o->c[i].name);
	free(o->c);
	free(o->e);
	bm_blobtab_free(&o->by_cluster);
	bm_blobtab_free(&o->by_ep);
	free(o);
}

/* The lookup key of (cluster, ep): its length, 0 when it does not fit. */
static size_t ep_key(const char *cluster, const struct sockaddr_storage *ep, uint8_t *k, size_t cap)
{
	size_t n = strlen(cluster) + 1;
	uint8_t addr[16] = { 0 };
	uint16_t port = 0;

	if (n + 19 > cap)
		return 0;
	memcpy(k, cluster, n);
	if (ep->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ep;

		memcpy(addr, &s4->sin_addr, 4);
		port = s4->sin_port;
	} else if (ep->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ep;

		memcpy(addr, &s6->sin6_addr, 16);
		port = s6->sin6_port;
	}
	k[n] = (uint8_t)ep->ss_family;
	memcpy(k + n + 1, &port, 2);
	memcpy(k + n + 3, addr, 16);
	return n + 19;
}

static struct ocluster *cluster_get(struct bm_outlier *o, const char *name, uint32_t *idx)
{
	int created;
	struct bm_blob_ent *b = bm_blobtab_put(&o->by_cluster, name, strlen(name), &created);

	if (!b)
		return NULL;
	if (created) {
		if (o->n_c == o->cap_c) {
			size_t cap = o->cap_c ? 2 * o->cap_c : 16;
			struct ocluster *v = realloc(o->c, cap * sizeof(*v));

			if (!v)
				goto fail;
			o->c = v;
			o->cap_c = cap;
		}
		memset(&o->c[o->n_c], 0, sizeof(o->c[0]));
		o->c[o->n_c].name = strdup(name);
		if (!o->c[o->n_c].name)
			goto fail;
		b->val = o->n_c++;
	}
	*idx = (uint32_t)b->val;
	return &o->c[b->val];
fail:
	bm_blobtab_del(&o->by_cluster, b);
	return NULL;
}

static struct oendpoint *endpoint_get(struct bm_outlier *o, const char *cluster, uint32_t ci,
				      const struct sockaddr_storage *ep)
{
	uint8_t key[600];
	size_t klen = ep_key(cluster, ep, key, sizeof(key));
	int created;
	struct bm_blob_ent *b = klen ? bm_blobtab_put(&o->by_ep, key, klen, &created) : NULL;

	if (!b)
		return NULL;
	if (created) {
		if (o->n_e == o->cap_e) {
			size_t cap = o->cap_e ? 2 * o->cap_e : 64;
			struct oendpoint *v = realloc(o->e, cap * sizeof(*v));

			if (!v) {
				bm_blobtab_del(&o->by_ep, b);
				return NULL;
			}
			o->e = v;
			o->cap_e = cap;
		}
		memset(&o->e[o->n_e], 0, sizeof(o->e[0]));
		o->e[o->n_e].cluster = ci;
		o->e[o->n_e].ep = *ep;
		b->val = o->n_e++;
	}
	return &o->e[b->val];
}

/* Envoy maps local failures to 5xx: connect failure and reset 503, timeout 504. */
static int as_status(enum bm_l7_outcome what, int status)
{
	switch (what) {
	case BM_L7_OUT_RESPONSE:
		return status;
	case BM_L7_OUT_TIMEOUT:
		return 504;
	default:
		return 503;
	}
}

int bm_outlier_report(struct bm_outlier *o, const char *cluster, const struct sockaddr_storage *ep,
		      enum bm_l7_outcome what, int status, const struct bm_outlier_policy *pol,
		      size_t n_hosts, uint64_t now_ms)
{
	struct ocluster *c;
	struct oendpoint *e;
	uint32_t ci;
	int st = as_status(what, status);
	bool gw = st == 502 || st == 503 || st == 504;

	if (!pol || !pol->set || !n_hosts)
		return 0;
	c = cluster_get(o, cluster, &ci);
	if (!c)
		return -1;
	c->interval_ms = pol->interval_ms ? pol->interval_ms : 10000;
	/* A new config may have shortened the interval: the next sweep comes no later. */
	if (!c->next_sweep || c->next_sweep > now_ms + c->interval_ms)
		c->next_sweep = now_ms + c->interval_ms;
	e = endpoint_get(o, cluster, ci, ep);
	if (!e)
		return -1;
	if (st < 500) {
		e->c5xx = e->cgw = 0;
		return 0;
	}
	e->c5xx++;
	e->cgw = gw ? e->cgw + 1 : 0;
	if (e->ejected)
		return 0;
	if (!((pol->consecutive_5xx && e->c5xx >= pol->consecutive_5xx) ||
	      (pol->consecutive_gateway && e->cgw >= pol->consecutive_gateway)))
		return 0;
	e->c5xx = e->cgw = 0;
	/* Envoy: eject only while (ejected + 1) stays within maxEjectionPercent of the hosts. */
	if (100.0 * (c->n_ejected + 1) / (double)n_hosts > (double)pol->max_ejection_pct)
		return 0;
	uint64_t t = (uint64_t)(pol->base_ejection_ms ? pol->base_ejection_ms : 30000) *
		     (e->mult + 1);

	e->mult++;
	e->ejected = true;
	e->until = now_ms + (t < BM_OUTLIER_MAX_EJECTION_MS ? t : BM_OUTLIER_MAX_EJECTION_MS);
	c->n_ejected++;
	o->n_ejected++;
	return 1;
}

bool bm_outlier_ejected(const struct bm_outlier *o, const char *cluster,
			const struct sockaddr_storage *ep)
{
	uint8_t key[600];
	size_t klen;
	const struct bm_blob_ent *b;

	if (!o || !o->n_ejected)
		return false;
	klen = ep_key(cluster, ep, key, sizeof(key));
	b = klen ? bm_blobtab_get(&o->by_ep, key, klen) : NULL;
	return b && o->e[b->val].ejected;
}

/* Forget a healthy endpoint (nothing counted, never ejected lately): swap the last into its
 * place. */
static void drop_endpoint(struct bm_outlier *o, size_t i)
{
	uint8_t key[600];
	size_t klen = ep_key(o->c[o->e[i].cluster].name, &o->e[i].ep, key, sizeof(key));
	struct bm_blob_ent *b = klen ? bm_blobtab_get(&o->by_ep, key, klen) : NULL;

	if (b)
		bm_blobtab_del(&o->by_ep, b);
	if (i != o->n_e - 1) {
		o->e[i] = o->e[o->n_e - 1];
		klen = ep_key(o->c[o->e[i].cluster].name, &o->e[i].ep, key, sizeof(key));
		b = klen ? bm_blobtab_get(&o->by_ep, key, klen) : NULL;
		if (b)
			b->val = i;
	}
	o->n_e--;
}

size_t bm_outlier_sweep(struct bm_outlier *o, uint64_t now_ms)
{
	size_t back = 0;

	if (!o)
		return 0;
	for (size_t i = 0; i < o->n_e;) {
		struct oendpoint *e = &o->e[i];
		struct ocluster *c = &o->c[e->cluster];

		if (!c->next_sweep || now_ms < c->next_sweep) {
			i++;
			continue;
		}
		if (e->ejected && now_ms >= e->until) {
			e->ejected = false;
			c->n_ejected--;
			o->n_ejected--;
			back++;
		} else if (!e->ejected && e->mult) {
			e->mult--; /* healthy for a sweep: the next ejection is shorter */
		}
		if (!e->ejected && !e->mult && !e->c5xx && !e->cgw) {
			drop_endpoint(o, i);
			continue;
		}
		i++;
	}
	for (size_t i = 0; i < o->n_c; i++)
		if (o->c[i].next_sweep && now_ms >= o->c[i].next_sweep)
			o->c[i].next_sweep = now_ms + o->c[i].interval_ms;
	return back;
}

uint64_t bm_outlier_next_due(const struct bm_outlier *o)
{
	uint64_t due = 0;

	/* A cluster whose endpoints were all forgotten has nothing left to sweep. */
	for (size_t i = 0; o && i < o->n_e; i++) {
		uint64_t t = o->c[o->e[i].cluster].next_sweep;

		if (t && (!due || t < due))
			due = t;
	}
	return due;
}

void bm_outlier_each(const struct bm_outlier *o,
		     void (*fn)(void *arg, const char *cluster, const struct sockaddr_storage *ep),
		     void *arg)
{
	for (size_t i = 0; o && i < o->n_e; i++)
		if (o->e[i].ejected)
			fn(arg, o->c[o->e[i].cluster].name, &o->e[i].ep);
}

size_t bm_outlier_n_ejected(const struct bm_outlier *o)
{
	return o ? o->n_ejected : 0;
}
