/* Outlier detection as Envoy does it for Istio's DestinationRule outlierDetection: endpoints
 * that fail in a row are ejected from their cluster for base time x times ejected, within
 * maxEjectionPercent, and come back at the cluster's next sweep after that. Long-lived: the
 * state outlasts config changes (the agent's routers come and go). */
#ifndef BM_OUTLIER_H
#define BM_OUTLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "l7.h"
#include "model.h"

#define BM_OUTLIER_MAX_EJECTION_MS 300000 /* Envoy's max_ejection_time default */

struct bm_outlier;

struct bm_outlier *bm_outlier_new(void);
void bm_outlier_free(struct bm_outlier *o);

/* One attempt's outcome at endpoint ep of cluster (n_hosts endpoints), under policy pol.
 * Connect failures, resets and timeouts count as the 5xx (503, 503, 504) Envoy maps them to.
 * Returns 1 when this ejected ep, 0 otherwise, -1 when out of memory. */
int bm_outlier_report(struct bm_outlier *o, const char *cluster, const struct sockaddr_storage *ep,
		      enum bm_l7_outcome what, int status, const struct bm_outlier_policy *pol,
		      size_t n_hosts, uint64_t now_ms);

bool bm_outlier_ejected(const struct bm_outlier *o, const char *cluster,
			const struct sockaddr_storage *ep);

/* The sweeps due by now: endpoints whose ejection time is over come back. Returns how many. */
size_t bm_outlier_sweep(struct bm_outlier *o, uint64_t now_ms);

/* When the next sweep is due (loop ms), 0 when nothing is tracked. */
uint64_t bm_outlier_next_due(const struct bm_outlier *o);

/* Every endpoint ejected now. */
void bm_outlier_each(const struct bm_outlier *o,
		     void (*fn)(void *arg, const char *cluster, const struct sockaddr_storage *ep),
		     void *arg);
size_t bm_outlier_n_ejected(const struct bm_outlier *o);

#endif
