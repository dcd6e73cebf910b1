/* Hash indexes the catalog builds once per config, so that resolving a host, finding a pod by
 * name, the pods a selector may match or the Endpoints of a Service costs a lookup, not a scan. */
#include <stdlib.h>
#include <string.h>

#include "catalog_internal.h"

/* A key of up to three parts, NUL-separated: no part contains a NUL. */
static size_t key3(char *buf, size_t len, const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = b ? strlen(b) : 0, lc = c ? strlen(c) : 0;
	size_t n = la + 1 + lb + 1 + lc;

	if (n > len)
		return 0;
	memcpy(buf, a, la);
	buf[la] = '\0';
	if (b)
		memcpy(buf + la + 1, b, lb);
	buf[la + 1 + lb] = '\0';
	if (c)
		memcpy(buf + la + 2 + lb, c, lc);
	return n;
}

/* Append item to the list stored under key. 0 or -1. */
static int list_add(struct bm_cat_index *x, struct bm_blobtab *t, const char *key, size_t klen,
		    uint32_t item)
{
	int created;
	struct bm_blob_ent *e = bm_blobtab_put(t, key, klen, &created);
	struct bm_u32list *l;

	if (!e)
		return -1;
	if (created) {
		if (x->n_lists == x->cap_lists) {
			size_t cap = x->cap_lists ? x->cap_lists * 2 : 64;
			struct bm_u32list *v = realloc(x->lists, cap * sizeof(*v));

			if (!v)
				return -1;
			x->lists = v;
			x->cap_lists = cap;
		}
		memset(&x->lists[x->n_lists], 0, sizeof(x->lists[0]));
		e->val = x->n_lists++;
	}
	l = &x->lists[e->val];
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 4, *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = item;
	return 0;
}

static const struct bm_u32list *list_get(const struct bm_cat_index *x,
					 const struct bm_blobtab *t, const char *key, size_t klen)
{
	const struct bm_blob_ent *e = bm_blobtab_get(t, key, klen);

	return e ? &x->lists[e->val] : NULL;
}

int bm_cat_index_config(struct bm_catalog *cat)
{
	const struct bm_config *c = cat->cfg;
	struct bm_cat_index *x = calloc(1, sizeof(*x));
	char k[1024];
	size_t n;

	if (!x)
		return -1;
	cat->idx = x;
	for (size_t i = 0; i < c->n_pods; i++) {
		const struct bm_pod *p = &c->pods[i];
		struct bm_blob_ent *e;

		n = key3(k, sizeof(k), p->meta.ns, p->meta.name, NULL);
		if (n && (e = bm_blobtab_put(&x->pods, k, n, NULL)) && !e->aux) {
			e->val = i;
			e->aux = 1; /* the first of a name wins, as the scan did */
		}
		for (size_t l = 0; l < p->meta.labels.n; l++) {
			n = key3(k, sizeof(k), p->meta.ns, p->meta.labels.v[l].key,
				 p->meta.labels.v[l].val);
			if (n && list_add(x, &x->pod_labels, k, n, (uint32_t)i))
				return -1;
		}
	}
	for (size_t i = 0; i < c->n_endpoints; i++) {
		n = key3(k, sizeof(k), c->endpoints[i].meta.ns, c->endpoints[i].service, NULL);
		if (n && list_add(x, &x->eps, k, n, (uint32_t)i))
			return -1;
	}
	return 0;
}

int bm_cat_index_host(struct bm_catalog *cat, size_t svc)
{
	int created;
	struct bm_blob_ent *e = bm_blobtab_put(&cat->idx->hosts, cat->svcs[svc].host,
					       strlen(cat->svcs[svc].host), &created);

	if (!e)
		return -1;
	if (created)
		e->val = svc;
	return 0;
}

const struct bm_cat_svc *bm_cat_by_host(const struct bm_catalog *cat, const char *host)
{
	const struct bm_blob_ent *e;

	if (!cat->idx)
		return NULL;
	e = bm_blobtab_get(&cat->idx->hosts, host, strlen(host));
	return e ? &cat->svcs[e->val] : NULL;
}

const struct bm_pod *bm_cat_pod(const struct bm_catalog *cat, const char *ns, const char *name)
{
	char k[1024];
	size_t n = key3(k, sizeof(k), ns, name, NULL);
	const struct bm_blob_ent *e = n ? bm_blobtab_get(&cat->idx->pods, k, n) : NULL;

	return e ? &cat->cfg->pods[e->val] : NULL;
}

const struct bm_u32list *bm_cat_pods_with(const struct bm_catalog *cat, const char *ns,
					  const struct bm_label *l)
{
	char k[1024];
	size_t n = key3(k, sizeof(k), ns, l->key, l->val);

	return n ? list_get(cat->idx, &cat->idx->pod_labels, k, n) : NULL;
}

const struct bm_u32list *bm_cat_endpoints_of(const struct bm_catalog *cat, const char *ns,
					     const char *service)
{
	char k[1024];
	size_t n = key3(k, sizeof(k), ns, service, NULL);

	return n ? list_get(cat->idx, &cat->idx->eps, k, n) : NULL;
}

void bm_cat_index_free(struct bm_cat_index *x)
{
	if (!x)
		return;
	bm_blobtab_free(&x->hosts);
	bm_blobtab_free(&x->pods);
	bm_blobtab_free(&x->pod_labels);
	bm_blobtab_free(&x->eps);
	for (size_t i = 0; i < x->n_lists; i++)
		free(x->lists[i].v);
	free(x->lists);
	free(x);
}
