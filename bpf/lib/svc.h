/* Service translation shared by the connect and sendmsg hooks: look up the service, take
 * its route (per caller workload when the service has sourceLabels routes), pick a backend. */
#ifndef BM_BPF_SVC_H
#define BM_BPF_SVC_H

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/lb.h"

/* Cgroup level of pod directories (node cgroup level + 2), set by the agent at load:
 * a process in a child of the pod cgroup is still recognised as the pod. 0 = exact only. */
const volatile __u32 bm_pod_level = 0;

struct bm_pick {
	__u32 backend_id;
	__be16 port;
	__u8 keep;     /* PASSTHROUGH: leave the destination as the app gave it */
	__u8 pad;
	__u8 addr[16];
};

static __always_inline struct bm_workload *bm_caller(void)
{
	__u64 cg = bpf_get_current_cgroup_id();
	struct bm_workload *wl = bpf_map_lookup_elem(&bm_wl, &cg);

	if (!wl && bm_pod_level) {
		cg = bpf_get_current_ancestor_cgroup_id(bm_pod_level);
		wl = bpf_map_lookup_elem(&bm_wl, &cg);
	}
	return wl;
}

static __always_inline int bm_slot_backend(__u32 set_id, __u32 idx, __u32 *be_id)
{
	struct bm_slot_key k = { .set_id = set_id, .idx = idx };
	__u32 *v = bpf_map_lookup_elem(&bm_slot, &k);

	if (!v)
		return -BM_ENOENT;
	*be_id = *v;
	return 0;
}

/* Pick a backend of one set. src_hash feeds MAGLEV only. 0 or -errno. No context needed, so
 * the socket hooks and the TC path share it. */
static __always_inline int bm_set_choose(__u32 set_id, struct bm_set *set, __u32 src_hash,
					 struct bm_pick *out)
{
	__u32 rnd = bpf_get_prandom_u32();
	__u32 idx, be_id = 0;

	if (set->lb == BM_LB_PASSTHROUGH) {
		out->keep = 1;
		return 0;
	}
	if (!set->count)
		return -BM_ECONNREFUSED;
	switch (set->lb) {
	case BM_LB_MAGLEV: {
		__u32 *v;

		idx = bm_maglev_index(set->maglev_id, src_hash);
		v = bpf_map_lookup_elem(&bm_maglev, &idx);
		if (!v || !*v)
			return -BM_ECONNREFUSED;
		be_id = *v;
		break;
	}
	case BM_LB_ROUND_ROBIN:
		idx = __sync_fetch_and_add(&set->rr, 1) % set->count;
		if (bm_slot_backend(set_id, idx, &be_id))
			return -BM_ECONNREFUSED;
		break;
	case BM_LB_LEAST_REQUEST: {
		__u32 first = rnd % set->count;
		__u32 second = bm_p2c_second(first, set->count, bpf_get_prandom_u32());
		__u32 be2 = 0;
		__u64 *a1, *a2;

		if (bm_slot_backend(set_id, first, &be_id))
			return -BM_ECONNREFUSED;
		if (second != first && !bm_slot_backend(set_id, second, &be2)) {
			a1 = bpf_map_lookup_elem(&bm_active, &be_id);
			a2 = bpf_map_lookup_elem(&bm_active, &be2);
			if (a1 && a2 && bm_p2c_pick_second(*a1, *a2))
				be_id = be2;
		}
		break;
	}
	default:
		if (bm_slot_backend(set_id, rnd % set->count, &be_id))
			return -BM_ECONNREFUSED;
		break;
	}

	struct bm_backend *be = bpf_map_lookup_elem(&bm_backend, &be_id);

	if (!be || !be->port) {
		bm_count(BM_STAT_LOOKUP_FAIL);
		return -BM_ECONNREFUSED;
	}
	out->backend_id = be_id;
	out->port = be->port;
	__builtin_memcpy(out->addr, be->addr, 16);
	return 0;
}

/* The set a connection to svc takes: the caller's route (wl, when the service routes by
 * sourceLabels) or the service's, then a set by weight. Fails closed: a service address with
 * no usable backend is refused, never let through to a VIP that routes nowhere. 0 or -errno. */
static __always_inline int bm_route_set(const struct bm_svc_val *svc, struct bm_workload *wl,
					__u32 *set_id, struct bm_set **set)
{
	__u32 route_id = svc->route_id;

	if ((svc->flags & BM_SVC_F_SRC_ROUTES) && wl) {
		struct bm_srcroute_key k = { .svc_id = svc->svc_id, .wl_id = wl->wl_id };
		__u32 *r = bpf_map_lookup_elem(&bm_srcroute, &k);

		if (r) {
			route_id = *r;
			bm_count(BM_STAT_SRCROUTE);
		}
	}
	if (!route_id)
		return -BM_ECONNREFUSED;

	struct bm_route *route = bpf_map_lookup_elem(&bm_route, &route_id);

	if (!route) {
		bm_count(BM_STAT_LOOKUP_FAIL);
		return -BM_ECONNREFUSED;
	}
	*set_id = bm_route_pick(route, bpf_get_prandom_u32());
	if (!*set_id)
		return -BM_ECONNREFUSED;
	*set = bpf_map_lookup_elem(&bm_set, set_id);
	return *set ? 0 : -BM_ECONNREFUSED;
}

/* Socket hooks: the caller is known by its cgroup; useSourceIp hashes its pod IP, or its
 * network namespace when it is not a pod we know. */
static __always_inline int bm_svc_pick(struct bpf_sock_addr *ctx, const struct bm_svc_val *svc,
				       struct bm_pick *out)
{
	struct bm_workload *wl = NULL;
	struct bm_set *set;
	__u32 set_id, hash = 0;
	int have_wl = 0, err;

	if (svc->flags & BM_SVC_F_SRC_ROUTES) {
		wl = bm_caller();
		have_wl = 1;
	}
	err = bm_route_set(svc, wl, &set_id, &set);
	if (err)
		return err;
	if (set->lb == BM_LB_MAGLEV) {
		if (!have_wl)
			wl = bm_caller();
		hash = wl ? bm_hash_addr(wl->addr, BM_SRC_HASH_SEED) :
			    bm_hash_u64(bpf_get_netns_cookie(ctx), BM_SRC_HASH_SEED);
	}
	return bm_set_choose(set_id, set, hash, out);
}

#define BM_XLATE_L7 2

/* A connect or send to key: 1 when it must go to pick, 0 when it is left alone (not a service
 * address, or resolution NONE / PASSTHROUGH), BM_XLATE_L7 when HTTP rules want it at the agent
 * (only when allow_l7), -ECONNREFUSED when no backend can take it. */
static __always_inline int bm_svc_xlate(struct bpf_sock_addr *ctx, const struct bm_svc_key *key,
					int v4, struct bm_pick *pick, int allow_l7)
{
	struct bm_svc_val *svc = bpf_map_lookup_elem(&bm_svc, key);
	int err;

	if (!svc)
		return 0;
	if ((svc->flags & BM_SVC_F_L7) && allow_l7)
		return BM_XLATE_L7;
	if (svc->flags & BM_SVC_F_PASSTHROUGH) {
		bm_count(BM_STAT_PASSTHROUGH);
		return 0;
	}
	err = bm_svc_pick(ctx, svc, pick);
	if (!err && pick->keep) {
		bm_count(BM_STAT_PASSTHROUGH);
		return 0;
	}
	if (!err && v4 && !bm_addr_is_v4(pick->addr))
		err = -BM_ECONNREFUSED; /* an IPv6 backend cannot serve an AF_INET socket */
	if (err) {
		bm_count(BM_STAT_NO_BACKEND);
		return -BM_ECONNREFUSED;
	}
	return 1;
}

#endif
