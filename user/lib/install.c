/* Writes a node's desired tables into the pinned maps: content-addressed objects in fresh ids
 * first, then one update per service entry (the switch), then the old objects go to quarantine
 * and their ids are reused only after a grace period, so no connect reads a half-written set. */
#include "install.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "maglev.h"

#define GRACE_NS (2ull * 1000 * 1000 * 1000)
#define PENDING UINT64_MAX /* adopted: released only after the first apply */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int pool_init(struct bm_idpool *p, uint32_t max)
{
	p->used = calloc(max, 1);
	p->max = max;
	p->next = 1;
	p->n_used = 0;
	return p->used ? 0 : -ENOMEM;
}

static void pool_mark(struct bm_idpool *p, uint32_t id)
{
	if (id && id < p->max && !p->used[id]) {
		p->used[id] = 1;
		p->n_used++;
	}
}

static uint32_t pool_alloc(struct bm_idpool *p)
{
	for (uint32_t n = 1; n < p->max; n++) {
		uint32_t id = p->next;

		p->next = p->next + 1 >= p->max ? 1 : p->next + 1;
		if (!p->used[id]) {
			pool_mark(p, id);
			return id;
		}
	}
	return 0;
}

static void pool_release(struct bm_idpool *p, uint32_t id)
{
	if (id && id < p->max && p->used[id]) {
		p->used[id] = 0;
		p->n_used--;
	}
}

static int quarantine(struct bm_installer *in, uint32_t kind, uint32_t id, uint32_t count,
		      uint32_t maglev, uint64_t release)
{
	if (in->n_q == in->cap_q) {
		size_t cap = in->cap_q ? in->cap_q * 2 : 256;
		struct bm_quar *q = realloc(in->q, cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		in->q = q;
		in->cap_q = cap;
	}
	in->q[in->n_q++] = (struct bm_quar){ kind, id, count, maglev, release };
	return 0;
}

static int fd_of(const struct bm_installer *in, enum bm_map_id m)
{
	return in->dp->map_fd[m];
}

/* Clear what an id held and give it back to its pool. */
static void release(struct bm_installer *in, const struct bm_quar *q)
{
	switch (q->kind) {
	case BM_Q_BACKEND: {
		struct bm_backend zero = {};

		bpf_map_update_elem(fd_of(in, BM_MAP_BACKEND), &q->id, &zero, BPF_ANY);
		pool_release(&in->be_ids, q->id);
		break;
	}
	case BM_Q_SET: {
		struct bm_set zero = {};

		for (uint32_t i = 0; i < q->count; i++) {
			struct bm_slot_key k = { .set_id = q->id, .idx = i };

			bpf_map_delete_elem(fd_of(in, BM_MAP_SLOT), &k);
		}
		bpf_map_update_elem(fd_of(in, BM_MAP_SET), &q->id, &zero, BPF_ANY);
		pool_release(&in->set_ids, q->id);
		if (q->maglev)
			pool_release(&in->maglev_ids, q->maglev);
		break;
	}
	case BM_Q_ROUTE: {
		struct bm_route zero = {};

		bpf_map_update_elem(fd_of(in, BM_MAP_ROUTE), &q->id, &zero, BPF_ANY);
		pool_release(&in->route_ids, q->id);
		break;
	}
	case BM_Q_MAGLEV:
		pool_release(&in->maglev_ids, q->id);
		break;
	case BM_Q_SVCID:
		pool_release(&in->svc_ids, q->id);
		break;
	case BM_Q_WLID:
		pool_release(&in->wl_ids, q->id);
		break;
	}
}

void bm_install_tick(struct bm_installer *in)
{
	uint64_t now = now_ns();
	size_t k = 0;

	for (size_t i = 0; i < in->n_q; i++) {
		if (in->q[i].release_ns <= now)
			release(in, &in->q[i]);
		else
			in->q[k++] = in->q[i];
	}
	in->n_q = k;
}

/* Visit every entry of an array map in batches. */
static int scan_array(int fd, uint32_t max, size_t vsize,
		      void (*fn)(struct bm_installer *, uint32_t, const void *),
		      struct bm_installer *in)
{
	const uint32_t chunk = 4096;
	uint32_t *keys = malloc(chunk * sizeof(*keys));
	char *vals = malloc(chunk * vsize);
	int rc = 0;

	if (!keys || !vals) {
		rc = -ENOMEM;
		goto cleanup;
	}
	for (uint32_t base = 0; base < max; base += chunk) {
		uint32_t n = max - base < chunk ? max - base : chunk;

		for (uint32_t i = 0; i < n; i++) {
			keys[i] = base + i;
			if (bpf_map_lookup_elem(fd, &keys[i], vals + i * vsize)) {
				rc = -errno;
				goto cleanup;
			}
		}
		for (uint32_t i = 0; i < n; i++)
			fn(in, keys[i], vals + i * vsize);
	}
cleanup:
	free(keys);
	free(vals);
	return rc;
}

static void adopt_backend(struct bm_installer *in, uint32_t id, const void *v)
{
	const struct bm_backend *b = v;

	if (id && b->port) {
		pool_mark(&in->be_ids, id);
		quarantine(in, BM_Q_BACKEND, id, 0, 0, PENDING);
	}
}

static void adopt_set(struct bm_installer *in, uint32_t id, const void *v)
{
	const struct bm_set *s = v;

	if (id && (s->count || s->lb || s->maglev_id)) {
		pool_mark(&in->set_ids, id);
		pool_mark(&in->maglev_ids, s->maglev_id);
		quarantine(in, BM_Q_SET, id, s->count, s->maglev_id, PENDING);
	}
}

static void adopt_route(struct bm_installer *in, uint32_t id, const void *v)
{
	const struct bm_route *r = v;

	if (id && r->n_dest) {
		pool_mark(&in->route_ids, id);
		quarantine(in, BM_Q_ROUTE, id, 0, 0, PENDING);
	}
}

/* Entries of a pinned map left by a previous agent: remembered so the first apply can keep
 * or remove them; their objects stay valid until then. */
static int adopt(struct bm_installer *in)
{
	struct bm_svc_key sk, *prev = NULL;
	struct bm_srcroute_key rk, *rprev = NULL;
	uint64_t cg, *cprev = NULL;
	int err;

	while (!bpf_map_get_next_key(fd_of(in, BM_MAP_SVC), prev, &sk)) {
		struct bm_svc_val v;
		struct bm_blob_ent *e;

		prev = &sk;
		if (bpf_map_lookup_elem(fd_of(in, BM_MAP_SVC), &sk, &v))
			continue;
		e = bm_blobtab_put(&in->svc_tab, &sk, sizeof(sk), NULL);
		if (!e)
			return -ENOMEM;
		e->val = v.svc_id;
		e->extra = ((uint64_t)v.route_id << 32) | v.flags;
		pool_mark(&in->svc_ids, v.svc_id);
	}
	while (!bpf_map_get_next_key(fd_of(in, BM_MAP_SRCROUTE), rprev, &rk)) {
		struct bm_blob_ent *e = bm_blobtab_put(&in->src_tab, &rk, sizeof(rk), NULL);
		__u32 route = 0;

		rprev = &rk;
		if (!e)
			return -ENOMEM;
		bpf_map_lookup_elem(fd_of(in, BM_MAP_SRCROUTE), &rk, &route);
		e->val = route;
		if (rk.wl_id < in->wl_ids.max && !in->wl_ids.used[rk.wl_id]) {
			pool_mark(&in->wl_ids, rk.wl_id);
			quarantine(in, BM_Q_WLID, rk.wl_id, 0, 0, PENDING);
		}
	}
	while (!bpf_map_get_next_key(fd_of(in, BM_MAP_WL), cprev, &cg)) {
		struct bm_blob_ent *e = bm_blobtab_put(&in->cg_tab, &cg, sizeof(cg), NULL);
		struct bm_workload w = {};

		cprev = &cg;
		if (!e)
			return -ENOMEM;
		bpf_map_lookup_elem(fd_of(in, BM_MAP_WL), &cg, &w);
		e->val = w.wl_id;
		if (w.wl_id < in->wl_ids.max && !in->wl_ids.used[w.wl_id]) {
			pool_mark(&in->wl_ids, w.wl_id);
			quarantine(in, BM_Q_WLID, w.wl_id, 0, 0, PENDING);
		}
	}
	err = scan_array(fd_of(in, BM_MAP_BACKEND), BM_MAX_BACKENDS, sizeof(struct bm_backend),
			 adopt_backend, in);
	if (!err)
		err = scan_array(fd_of(in, BM_MAP_SET), BM_MAX_SETS, sizeof(struct bm_set), adopt_set,
				 in);
	if (!err)
		err = scan_array(fd_of(in, BM_MAP_ROUTE), BM_MAX_ROUTES, sizeof(struct bm_route),
				 adopt_route, in);
	if (!err)
		bm_info("adopted %zu service entries, %u backends, %u sets, %u routes from %s",
			in->svc_tab.n, in->be_ids.n_used, in->set_ids.n_used, in->route_ids.n_used,
			in->dp->pin_dir);
	return err;
}

int bm_install_init(struct bm_installer *in, struct bm_dp *dp)
{
	int err;

	memset(in, 0, sizeof(*in));
	in->dp = dp;
	in->grace_ns = GRACE_NS;
	in->ring = calloc(BM_MAGLEV_M, sizeof(*in->ring));
	if (!in->ring || pool_init(&in->be_ids, BM_MAX_BACKENDS) ||
	    pool_init(&in->set_ids, BM_MAX_SETS) || pool_init(&in->route_ids, BM_MAX_ROUTES) ||
	    /* service and workload ids: 4x the entries, room for those in quarantine */
	    pool_init(&in->maglev_ids, BM_MAX_MAGLEV) || pool_init(&in->svc_ids, 4 * BM_MAX_SVC) ||
	    pool_init(&in->wl_ids, 4 * BM_MAX_WORKLOADS)) {
		bm_install_free(in);
		return -ENOMEM;
	}
	err = adopt(in);
	if (err) {
		bm_err("read the existing maps in %s: %s", dp->pin_dir, strerror(-err));
		bm_install_free(in);
	}
	return err;
}

void bm_install_free(struct bm_installer *in)
{
	free(in->be_ids.used);
	free(in->set_ids.used);
	free(in->route_ids.used);
	free(in->maglev_ids.used);
	free(in->svc_ids.used);
	free(in->wl_ids.used);
	bm_blobtab_free(&in->be_tab);
	bm_blobtab_free(&in->set_tab);
	bm_blobtab_free(&in->route_tab);
	bm_blobtab_free(&in->svc_tab);
	bm_blobtab_free(&in->wl_tab);
	bm_blobtab_free(&in->cg_tab);
	bm_blobtab_free(&in->src_tab);
	free(in->q);
	free(in->ring);
	memset(in, 0, sizeof(*in));
}

#define FAIL(code, ...)                                   \
	do {                                              \
		snprintf(msg, msglen, __VA_ARGS__);       \
		err = (code);                             \
		goto cleanup;                             \
	} while (0)

static int write_maglev(struct bm_installer *in, const struct bm_tables *t,
			const struct bm_t_set *s, const uint32_t *be_kid, uint32_t row)
{
	uint8_t (*keys)[18] = malloc(s->n * sizeof(*keys));
	uint32_t *idx = malloc(BM_MAGLEV_M * sizeof(*idx));
	uint32_t *val = malloc(BM_MAGLEV_M * sizeof(*val));
	__u32 count = BM_MAGLEV_M;
	int err = -ENOMEM;

	if (!keys || !idx || !val)
		goto cleanup;
	for (uint32_t j = 0; j < s->n; j++) {
		const struct bm_t_backend *b = &t->be[s->be[j]];
		uint16_t port = htons(b->port);

		memcpy(keys[j], b->ip.a, 16);
		memcpy(keys[j] + 16, &port, 2);
	}
	err = -EINVAL;
	if (bm_maglev_build((const uint8_t(*)[18])keys, s->n, BM_MAGLEV_M, in->ring))
		goto cleanup;
	for (uint32_t j = 0; j < BM_MAGLEV_M; j++) {
		idx[j] = row * BM_MAGLEV_M + j;
		val[j] = be_kid[s->be[in->ring[j]]];
	}
	err = bpf_map_update_batch(fd_of(in, BM_MAP_MAGLEV), idx, val, &count, NULL) ? -errno : 0;
cleanup:
	free(keys);
	free(idx);
	free(val);
	return err;
}

static int write_set(struct bm_installer *in, const struct bm_tables *t, const struct bm_t_set *s,
		     const uint32_t *be_kid, uint32_t id, uint32_t *row)
{
	struct bm_set v = { .count = s->n, .lb = s->lb };
	int err = 0;

	*row = 0;
	if (s->n) {
		struct bm_slot_key *keys = malloc(s->n * sizeof(*keys));
		uint32_t *vals = malloc(s->n * sizeof(*vals));
		__u32 count = s->n;

		if (!keys || !vals) {
			free(keys);
			free(vals);
			return -ENOMEM;
		}
		for (uint32_t j = 0; j < s->n; j++) {
			keys[j] = (struct bm_slot_key){ .set_id = id, .idx = j };
			vals[j] = be_kid[s->be[j]];
		}
		if (bpf_map_update_batch(fd_of(in, BM_MAP_SLOT), keys, vals, &count, NULL))
			err = -errno;
		free(keys);
		free(vals);
		if (err)
			return err;
	}
	if (s->lb == BM_LB_MAGLEV && s->n) {
		*row = pool_alloc(&in->maglev_ids);
		if (!*row)
			return -ENOSPC;
		err = write_maglev(in, t, s, be_kid, *row);
		if (err)
			return err;
		v.maglev_id = *row;
	}
	return bpf_map_update_elem(fd_of(in, BM_MAP_SET), &id, &v, BPF_ANY) ? -errno : 0;
}

/* Objects of older generations that nothing references any more go to quarantine. */
static int collect(struct bm_installer *in, struct bm_blobtab *tab, uint32_t kind, uint64_t rel)
{
	for (size_t i = 0; i < tab->cap; i++) {
		struct bm_blob_ent *e = &tab->v[i];

		if (!bm_blob_live(e) || e->aux == in->gen)
			continue;
		uint32_t count = 0, row = 0;

		if (kind == BM_Q_SET) {
			count = ((const uint32_t *)e->key)[1];
			row = (uint32_t)e->extra;
		}
		if (quarantine(in, kind, (uint32_t)e->val, count, row, rel))
			return -ENOMEM;
		bm_blobtab_del(tab, e);
	}
	return 0;
}

int bm_install_apply(struct bm_installer *in, const struct bm_tables *t, uint64_t config_gen,
		     struct bm_install_stats *st, char *msg, size_t msglen)
{
	uint32_t *be_kid = calloc(t->n_be + 1, sizeof(uint32_t));
	uint32_t *set_kid = calloc(t->n_set + 1, sizeof(uint32_t));
	uint32_t *route_kid = calloc(t->n_route + 1, sizeof(uint32_t));
	uint32_t *wl_kid = calloc(t->n_wl + 1, sizeof(uint32_t));
	uint32_t *svc_kid = calloc(t->n_svc + 1, sizeof(uint32_t));
	uint64_t t0 = now_ns(), rel;
	int err = 0;

	memset(st, 0, sizeof(*st));
	msg[0] = '\0';
	if (!be_kid || !set_kid || !route_kid || !wl_kid || !svc_kid)
		FAIL(-ENOMEM, "out of memory");
	if (t->n_svc > BM_MAX_SVC)
		FAIL(-ENOSPC, "%zu service ports, more than the %u bm_svc holds", t->n_svc,
		     BM_MAX_SVC);
	if (t->n_be >= BM_MAX_BACKENDS || t->n_set >= BM_MAX_SETS || t->n_route >= BM_MAX_ROUTES)
		FAIL(-ENOSPC, "tables too large: %zu backends (max %u), %zu sets (max %u), %zu routes "
			      "(max %u)",
		     t->n_be, BM_MAX_BACKENDS - 1, t->n_set, BM_MAX_SETS - 1, t->n_route,
		     BM_MAX_ROUTES - 1);
	in->gen++;
	bm_install_tick(in);

	/* 1. Backends: address and port; their active-connection counters start at zero. */
	for (size_t i = 0; i < t->n_be; i++) {
		int created;
		struct bm_blob_ent *e = bm_blobtab_put(&in->be_tab, &t->be[i], sizeof(t->be[i]),
						       &created);

		if (!e)
			FAIL(-ENOMEM, "out of memory");
		if (created) {
			uint32_t id = pool_alloc(&in->be_ids);
			struct bm_backend b = { .port = htons(t->be[i].port) };
			__u64 zero = 0;

			if (!id) {
				bm_blobtab_del(&in->be_tab, e);
				FAIL(-ENOSPC, "backend ids exhausted (%u in use or in quarantine)",
				     in->be_ids.n_used);
			}
			memcpy(b.addr, t->be[i].ip.a, 16);
			b.flags = (__u8)(t->be[i].flags | (bm_ip_is_v4(&t->be[i].ip) ? BM_BE_F_V4 : 0));
			if (bpf_map_update_elem(fd_of(in, BM_MAP_ACTIVE), &id, &zero, BPF_ANY) ||
			    bpf_map_update_elem(fd_of(in, BM_MAP_BACKEND), &id, &b, BPF_ANY)) {
				err = -errno;
				pool_release(&in->be_ids, id);
				bm_blobtab_del(&in->be_tab, e);
				FAIL(err, "write bm_backend[%u]: %s", id, strerror(-err));
			}
			e->val = id;
			st->new_backends++;
		}
		e->aux = in->gen;
		be_kid[i] = (uint32_t)e->val;
	}

	/* 2. Sets: slots (and Maglev ring) before the set entry that makes them reachable. */
	for (size_t i = 0; i < t->n_set; i++) {
		const struct bm_t_set *s = &t->set[i];
		size_t klen = (2 + (size_t)s->n) * sizeof(uint32_t);
		uint32_t *key = malloc(klen), row;
		struct bm_blob_ent *e;
		int created;

		if (!key)
			FAIL(-ENOMEM, "out of memory");
		key[0] = s->lb;
		key[1] = s->n;
		for (uint32_t j = 0; j < s->n; j++)
			key[2 + j] = be_kid[s->be[j]];
		e = bm_blobtab_put(&in->set_tab, key, klen, &created);
		free(key);
		if (!e)
			FAIL(-ENOMEM, "out of memory");
		if (created) {
			uint32_t id = pool_alloc(&in->set_ids);

			if (!id) {
				bm_blobtab_del(&in->set_tab, e);
				FAIL(-ENOSPC, "set ids exhausted (%u in use or in quarantine)",
				     in->set_ids.n_used);
			}
			err = write_set(in, t, s, be_kid, id, &row);
			if (err) {
				/* Unreferenced: quarantine whatever was written. */
				quarantine(in, BM_Q_SET, id, s->n, row, now_ns() + in->grace_ns);
				bm_blobtab_del(&in->set_tab, e);
				FAIL(err, "write set %u (%s): %s", id, s->desc, strerror(-err));
			}
			e->val = id;
			e->extra = row;
			st->new_sets++;
		}
		e->aux = in->gen;
		set_kid[i] = (uint32_t)e->val;
	}

	/* 3. Routes: weights as cumulative sums over kernel set ids. */
	for (size_t i = 0; i < t->n_route; i++) {
		const struct bm_t_route *r = &t->route[i];
		struct bm_route kr;
		struct bm_blob_ent *e;
		int created;

		memset(&kr, 0, sizeof(kr));
		kr.n_dest = r->n;
		for (uint32_t j = 0; j < r->n; j++) {
			kr.total += r->weight[j];
			kr.dest[j].set_id = set_kid[r->set[j]];
			kr.dest[j].cum = kr.total;
		}
		e = bm_blobtab_put(&in->route_tab, &kr, sizeof(kr), &created);
		if (!e)
			FAIL(-ENOMEM, "out of memory");
		if (created) {
			uint32_t id = pool_alloc(&in->route_ids);

			if (!id) {
				bm_blobtab_del(&in->route_tab, e);
				FAIL(-ENOSPC, "route ids exhausted");
			}
			if (bpf_map_update_elem(fd_of(in, BM_MAP_ROUTE), &id, &kr, BPF_ANY)) {
				err = -errno;
				pool_release(&in->route_ids, id);
				bm_blobtab_del(&in->route_tab, e);
				FAIL(err, "write bm_route[%u]: %s", id, strerror(-err));
			}
			e->val = id;
			st->new_routes++;
		}
		e->aux = in->gen;
		route_kid[i] = (uint32_t)e->val;
	}

	/* 4. Stable ids: workloads by pod name, service entries by key. */
	for (size_t i = 0; i < t->n_wl; i++) {
		int created;
		struct bm_blob_ent *e = bm_blobtab_put(&in->wl_tab, t->wl[i].name,
						       strlen(t->wl[i].name), &created);

		if (!e)
			FAIL(-ENOMEM, "out of memory");
		if (created && !(e->val = pool_alloc(&in->wl_ids))) {
			bm_blobtab_del(&in->wl_tab, e);
			FAIL(-ENOSPC, "workload ids exhausted");
		}
		e->aux = in->gen;
		wl_kid[i] = (uint32_t)e->val;
	}
	for (size_t i = 0; i < t->n_svc; i++) {
		int created;
		struct bm_blob_ent *e = bm_blobtab_put(&in->svc_tab, &t->svc[i].key,
						       sizeof(t->svc[i].key), &created);

		if (!e)
			FAIL(-ENOMEM, "out of memory");
		if (created) {
			e->val = pool_alloc(&in->svc_ids);
			e->extra = UINT64_MAX; /* never written */
			if (!e->val) {
				bm_blobtab_del(&in->svc_tab, e);
				FAIL(-ENOSPC, "service ids exhausted");
			}
		}
		e->aux = in->gen;
		svc_kid[i] = (uint32_t)e->val;
	}

	/* 5. Per-caller routes under their new keys, then the workloads that make them reachable. */
	for (size_t i = 0; i < t->n_svc; i++)
		for (size_t k = 0; k < t->svc[i].n_src; k++) {
			struct bm_srcroute_key sk = { .svc_id = svc_kid[i],
						      .wl_id = wl_kid[t->svc[i].src[k].wl] };
			__u32 route = route_kid[t->svc[i].src[k].route];
			int created;
			struct bm_blob_ent *e = bm_blobtab_put(&in->src_tab, &sk, sizeof(sk), &created);

			if (!e)
				FAIL(-ENOMEM, "out of memory");
			if (created || e->val != route) {
				if (bpf_map_update_elem(fd_of(in, BM_MAP_SRCROUTE), &sk, &route,
							BPF_ANY)) {
					err = -errno;
					FAIL(err, "write bm_srcroute: %s", strerror(-err));
				}
				e->val = route;
			}
			e->aux = in->gen;
			st->src_total++;
		}
	for (size_t i = 0; i < t->n_wl; i++) {
		struct bm_workload w = { .wl_id = wl_kid[i] };
		struct bm_blob_ent *e = bm_blobtab_put(&in->cg_tab, &t->wl[i].cgid,
						       sizeof(t->wl[i].cgid), NULL);

		if (!e)
			FAIL(-ENOMEM, "out of memory");
		memcpy(w.addr, t->wl[i].ip.a, 16);
		if (bpf_map_update_elem(fd_of(in, BM_MAP_WL), &t->wl[i].cgid, &w, BPF_ANY)) {
			err = -errno;
			FAIL(err, "write bm_wl: %s", strerror(-err));
		}
		e->val = w.wl_id;
		e->aux = in->gen;
	}
	st->wl_total = (uint32_t)t->n_wl;

	/* 6. The switch: services that went away first (frees room), then each entry in one
	 * update. A connect sees its service's old route or its new one, never a mix. */
	rel = now_ns() + in->grace_ns;
	for (size_t i = 0; i < in->svc_tab.cap; i++) {
		struct bm_blob_ent *e = &in->svc_tab.v[i];

		if (!bm_blob_live(e) || e->aux == in->gen)
			continue;
		if (bpf_map_delete_elem(fd_of(in, BM_MAP_SVC), e->key) && errno != ENOENT)
			bm_warn("delete bm_svc entry: %s", strerror(errno));
		quarantine(in, BM_Q_SVCID, (uint32_t)e->val, 0, 0, rel);
		bm_blobtab_del(&in->svc_tab, e);
		st->svc_deleted++;
	}
	for (size_t i = 0; i < t->n_svc; i++) {
		const struct bm_t_svc *s = &t->svc[i];
		struct bm_svc_val v = { .svc_id = svc_kid[i],
					.route_id = s->route == BM_T_NONE ? 0 : route_kid[s->route],
					.flags = s->flags };
		uint64_t packed = ((uint64_t)v.route_id << 32) | v.flags;
		struct bm_blob_ent *e = bm_blobtab_get(&in->svc_tab, &s->key, sizeof(s->key));

		if (e && e->extra == packed)
			continue;
		if (bpf_map_update_elem(fd_of(in, BM_MAP_SVC), &s->key, &v, BPF_ANY)) {
			err = -errno;
			bm_err("write bm_svc entry %s: %s (config now partly applied)", s->name,
			       strerror(errno));
			FAIL(err, "write bm_svc entry %s: %s", s->name, strerror(-err));
		}
		if (e)
			e->extra = packed;
		st->svc_written++;
	}
	st->svc_total = (uint32_t)t->n_svc;

	/* 7. What nothing references any more. */
	for (size_t i = 0; i < in->src_tab.cap; i++) {
		struct bm_blob_ent *e = &in->src_tab.v[i];

		if (bm_blob_live(e) && e->aux != in->gen) {
			bpf_map_delete_elem(fd_of(in, BM_MAP_SRCROUTE), e->key);
			bm_blobtab_del(&in->src_tab, e);
		}
	}
	for (size_t i = 0; i < in->cg_tab.cap; i++) {
		struct bm_blob_ent *e = &in->cg_tab.v[i];

		if (bm_blob_live(e) && e->aux != in->gen) {
			bpf_map_delete_elem(fd_of(in, BM_MAP_WL), e->key);
			bm_blobtab_del(&in->cg_tab, e);
		}
	}
	for (size_t i = 0; i < in->wl_tab.cap; i++) {
		struct bm_blob_ent *e = &in->wl_tab.v[i];

		if (bm_blob_live(e) && e->aux != in->gen) {
			quarantine(in, BM_Q_WLID, (uint32_t)e->val, 0, 0, rel);
			bm_blobtab_del(&in->wl_tab, e);
		}
	}
	if (collect(in, &in->route_tab, BM_Q_ROUTE, rel) ||
	    collect(in, &in->set_tab, BM_Q_SET, rel) || collect(in, &in->be_tab, BM_Q_BACKEND, rel))
		FAIL(-ENOMEM, "out of memory");
	/* What a previous agent left is now replaced: it may go after the grace period. */
	for (size_t i = 0; i < in->n_q; i++)
		if (in->q[i].release_ns == PENDING)
			in->q[i].release_ns = rel;

	struct bm_version ver = { .abi = BM_ABI_VERSION, .config_gen = config_gen };
	struct bm_cfg cfg = { .flags = t->cfg_flags, .l7_port = htons(t->l7_port) };

	memcpy(cfg.l7_addr4, t->l7_addr4.a, 16);
	memcpy(cfg.l7_addr6, t->l7_addr6.a, 16);
	__u32 zero = 0;

	bpf_map_update_elem(fd_of(in, BM_MAP_META), &zero, &ver, BPF_ANY);
	if (bpf_map_update_elem(fd_of(in, BM_MAP_CFG), &zero, &cfg, BPF_ANY))
		bm_warn("write bm_cfg: %s", strerror(errno));
cleanup:
	st->duration_ns = now_ns() - t0;
	free(be_kid);
	free(set_kid);
	free(route_kid);
	free(wl_kid);
	free(svc_kid);
	return err;
}
