/* Writes a node's desired tables into the pinned maps without ever exposing half a change:
 * new backends, sets and routes go to fresh ids first, then each service entry switches with
 * one map update, and ids no longer referenced are reused only after a grace period. */
#ifndef BM_INSTALL_H
#define BM_INSTALL_H

#include <stdint.h>

#include "blobtab.h"
#include "dp.h"
#include "tables.h"

struct bm_idpool {
	uint8_t *used;   /* one byte per id; id 0 is never handed out */
	uint32_t max;    /* ids 1 .. max-1 */
	uint32_t next;   /* where the search for a free id starts */
	uint32_t n_used;
};

enum bm_quar_kind { BM_Q_BACKEND = 1, BM_Q_SET, BM_Q_ROUTE, BM_Q_MAGLEV, BM_Q_SVCID, BM_Q_WLID };

struct bm_quar {
	uint32_t kind;
	uint32_t id;
	uint32_t count;      /* BM_Q_SET: slots to delete */
	uint32_t maglev;     /* BM_Q_SET: its ring row, 0 = none */
	uint64_t release_ns; /* CLOCK_MONOTONIC time after which the id may be reused */
};

struct bm_install_stats {
	uint32_t new_backends, new_sets, new_routes;
	uint32_t svc_written, svc_deleted, svc_total;
	uint32_t wl_total, src_total;
	uint64_t duration_ns;
};

struct bm_installer {
	struct bm_dp *dp;
	struct bm_idpool be_ids, set_ids, route_ids, maglev_ids, svc_ids, wl_ids;
	struct bm_blobtab be_tab;    /* struct bm_t_backend -> backend id */
	struct bm_blobtab set_tab;   /* (lb, n, backend ids) -> set id; extra = maglev row */
	struct bm_blobtab route_tab; /* struct bm_route -> route id */
	struct bm_blobtab svc_tab;   /* struct bm_svc_key -> svc id; extra = last value written */
	struct bm_blobtab wl_tab;    /* "<ns>/<pod>" -> workload id */
	struct bm_blobtab cg_tab;    /* cgroup id -> workload id written in bm_wl */
	struct bm_blobtab src_tab;   /* struct bm_srcroute_key -> route id */
	struct bm_quar *q;
	size_t n_q, cap_q;
	uint64_t gen;                /* applies so far */
	uint64_t grace_ns;           /* quarantine before an id is reused */
	uint32_t *ring;              /* Maglev scratch, BM_MAGLEV_M entries */
};

/* Take over the maps of dp: entries already there (an agent restart) keep serving until the
 * first apply replaces them. 0 or -errno. */
int bm_install_init(struct bm_installer *in, struct bm_dp *dp);
void bm_install_free(struct bm_installer *in);

/* Make the maps hold t. On error nothing switched: the previous config keeps serving.
 * 0 or -errno; msg gets a reason. */
int bm_install_apply(struct bm_installer *in, const struct bm_tables *t, uint64_t config_gen,
		     struct bm_install_stats *st, char *msg, size_t msglen);

/* Release ids whose grace period is over (call about once a second). */
void bm_install_tick(struct bm_installer *in);

#endif
