/* The TC fallback's attachments: tcx links (ingress: bm_tc_from_pod, egress: bm_tc_to_pod) on
 * every interface of the agent's netns whose name matches --tc-ifaces, kept in step with the
 * interfaces that come and go (rtnetlink link events through libmnl). */
#ifndef BM_TC_H
#define BM_TC_H

#include <stddef.h>

#include "dp.h"

struct bm_tc_nat;
struct mnl_socket;

struct bm_tc {
	const struct bm_dp *dp;
	struct bm_tc_nat *skel;    /* programs; maps reused from the node's pins */
	char **patterns;           /* fnmatch patterns of pod veths */
	size_t n_patterns;
	char **host_patterns;      /* the node's own interfaces (replies to its processes) */
	size_t n_host_patterns;
	struct mnl_socket *nl;     /* link events */
	unsigned attached;         /* links made or adopted by the last sync */
	int committed;             /* attached (bm_tc_commit done) */
};

/* Load the TC programs against dp's maps. patterns: comma-separated globs of pod veths
 * ("vp*"); host_patterns: the node's own interfaces replies come in on ("cni0,eth0"), which
 * also turns on bm_svc0 for the node's own processes. Either may be NULL. Attached at once when
 * dp is committed, else by bm_tc_commit. 0 or -errno. */
int bm_tc_open(struct bm_tc *tc, const struct bm_dp *dp, const char *patterns,
	       const char *host_patterns);
/* Attach (or adopt) the links on every matching interface. 0 or -errno. */
int bm_tc_commit(struct bm_tc *tc);
/* Attach to every matching interface that has no link yet, adopt pinned links (program
 * replaced in place), and drop the pins of interfaces that are gone. 0 or -errno. */
int bm_tc_sync(struct bm_tc *tc);
/* A file descriptor that becomes readable on link events; bm_tc_on_event drains it and syncs. */
int bm_tc_event_fd(const struct bm_tc *tc);
void bm_tc_on_event(struct bm_tc *tc);
void bm_tc_close(struct bm_tc *tc);

#endif
