/* The node agent's state and its one job so far: read the config directory, validate it whole,
 * compile it for this node and install it into the kernel maps, or reject it and keep the last. */
#ifndef BM_AGENT_H
#define BM_AGENT_H

#include <limits.h>
#include <stdint.h>

#include "blobtab.h"
#include "dp.h"
#include "evloop.h"
#include "install.h"
#include "config.h"
#include "l7.h"
#include "outlier.h"
#include "tc.h"

struct bm_agent {
	const char *config_dir;
	const char *node;
	const char *cgroup;        /* the node's cgroup: programs attach here, pods live below */
	const char *bpffs;
	char state_dir[PATH_MAX];  /* status, ready, services */
	struct bm_dp dp;
	struct bm_installer in;
	uint64_t generation;       /* apply attempts */
	uint64_t applied;          /* generation of the config now in the maps, 0 = none */
	int unresolved_pods;       /* local pods whose cgroup was not found at the last apply */
	int ready;
	int no_sockmap;            /* --no-sockmap */
	const char *tc_ifaces;     /* --tc-ifaces: pod veths, NULL = none */
	const char *tc_host_ifaces; /* --tc-host-ifaces: the node's interfaces, NULL = none */
	struct bm_tc tc;
	struct bm_config_cache *cache; /* each config file parsed again only when it changes */
	struct bm_evloop *loop;    /* the agent's one event loop (set by main before start) */
	bool l7_on;                /* --l7-addr given: HTTP service ports come to the agent */
	struct bm_l7_opts l7o;
	struct bm_l7 l7;
	/* Outlier detection (with the HTTP listener): which endpoints are ejected, across
	 * configs. The timer sweeps them back, and re-applies when the set changed so that the
	 * kernel's backend sets leave the ejected out too. */
	struct bm_outlier *od;
	struct bm_ev_timer od_timer;
	bool od_changed;           /* ejections changed since the kernel's sets were compiled */
	struct bm_blobtab od_keys; /* during an apply: (host, address, port) ejected */
};

int bm_agent_start(struct bm_agent *a);
void bm_agent_stop(struct bm_agent *a);
/* Read, validate, compile and install, then attach the datapath if not yet done. 0 when
 * applied, -1 when rejected (status says why), -2 when the datapath could not be attached. */
int bm_agent_apply(struct bm_agent *a);

/* Validate a directory without touching the kernel: diags on fp; 0 when it has no error. */
int bm_agent_check(const char *dir, const char *node, FILE *fp);

#endif
