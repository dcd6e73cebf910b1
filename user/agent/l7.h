/* The agent's HTTP side: the listener the kernel redirects HTTP service ports to, each accepted
 * connection matched to where its client was going (bm_orig), sniffed, and handed to the
 * HTTP/1.1 engine with the current router (HTTP/2 through the h2 front), or relayed as TCP
 * when it is not HTTP. */
#ifndef BM_AGENT_L7_H
#define BM_AGENT_L7_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "dp.h"
#include "evloop.h"
#include "h1.h"
#include "h2.h"
#include "router.h"

#define BM_L7_DEFAULT_PORT 15001
#define BM_L7_SNIFF_MS 5000 /* Istio's protocol detection timeout: then it is TCP */

struct bm_l7_counters {
	uint64_t accepted;       /* connections accepted on the listener */
	uint64_t no_orig;        /* the kernel had no record for them: closed */
	uint64_t http;           /* handed to the HTTP/1 engine */
	uint64_t http2;          /* handed to the h2 front (the HTTP/2 preface) */
	uint64_t tcp;            /* relayed as TCP (not HTTP/1, or the sniff timed out) */
	uint64_t tcp_no_upstream; /* ... with no endpoint to relay to: closed */
	uint64_t bypass_joined;  /* agent ends that joined the same-node bypass */
	uint64_t bypass_up;      /* the agent's upstream connections that joined it */
};

struct bm_l7_sniff;

struct bm_l7 {
	struct bm_evloop *loop;
	const struct bm_dp *dp;
	struct bm_h1_proxy *px;
	struct bm_h2_front *h2f;      /* HTTP/2 clients (prior knowledge, h2c upgrades) */
	struct bm_h2_back *h2b;       /* HTTP/2 endpoints (http2/grpc ports, UPGRADE) */
	struct bm_router *router;     /* NULL until a config applies: requests get 503 */
	struct {
		struct bm_ev_file ev;
		bool v6;
	} lsn[2];
	size_t n_lsn;
	struct bm_l7_sniff *sniffs;   /* connections still being sniffed */
	struct bm_ev_hook hook;
	struct bm_l7_counters cnt;
	bool bypass;                  /* join the same-node bypass from the agent's end */
	/* Upstream connections to endpoints on this node (in the subnet of the listener's
	 * address, the node's pod network, and not known elsewhere) join it too: bound to that
	 * address so that the pair is filed before the handshake. */
	struct {
		struct bm_ip addr, mask; /* the listener's address and its netmask */
		bool ok;                 /* usable: an interface's, not loopback */
	} src[2];                        /* [0] IPv4, [1] IPv6 */
	bool bypass_on;               /* the config's switch (bypass: the agent's flag) */
	struct bm_l7_ep *remote;      /* endpoints known to run on other nodes, sorted */
	size_t n_remote;
	/* After each attempt's outcome went to the router's outlier detection: ejected is true
	 * when it took the endpoint out (the kernel's sets should follow). NULL: none. */
	void (*on_outcome)(void *arg, const char *cluster, const struct sockaddr_storage *ep,
			   bool ejected);
	void *outcome_arg;
};

struct bm_l7_ep {
	struct bm_ip ip;
	uint16_t port;                /* host order */
};

struct bm_l7_opts {
	struct bm_ip addr4, addr6;    /* all zero: no listener for that family */
	uint16_t port;
	bool bypass;
};

/* Listen (SO_MARK'ed sockets, registered with the kernel) and serve on loop. 0 or -errno. */
int bm_l7_start(struct bm_l7 *l, struct bm_evloop *loop, const struct bm_dp *dp,
		const struct bm_l7_opts *o);
/* The router for requests from now on (the old one is freed: in-flight requests copied what
 * they use). */
void bm_l7_set_router(struct bm_l7 *l, struct bm_router *r);
/* From a config: whether the mesh has the same-node bypass on (sameNodeBypass), and the
 * endpoints known to run on other nodes (n of them at eps, any order, copied): the agent's
 * connections to them stay off the bypass. 0 or -ENOMEM (the old set kept). */
int bm_l7_set_bypass(struct bm_l7 *l, bool on, const struct bm_l7_ep *eps, size_t n);
void bm_l7_stop(struct bm_l7 *l);

#endif
