/* The node's own processes and the TC fallback: bm_svc0, a dummy device every service address
 * is routed to, so those processes' packets to a VIP meet bm_tc_host_out on its egress. */
#ifndef BM_TC_HOST_H
#define BM_TC_HOST_H

#include "tables.h"

#define BM_SVC_DEV "bm_svc0"

/* Create bm_svc0 (or find it), bring it up, enable forwarding on it. 0 or -errno. */
int bm_host_dev_ensure(void);
/* Remove bm_svc0 and with it our routes (--cleanup). 0 or -errno. */
int bm_host_dev_remove(void);
/* Make the routes to bm_svc0 exactly the service addresses of t (ours are found by protocol).
 * 0 or -errno. */
int bm_host_routes_sync(const struct bm_tables *t);

#endif
