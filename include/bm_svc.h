/* The kernel/user ABI of the L4 service datapath: every map key and value the connect,
 * sendmsg, recvmsg, getpeername and sockops programs share with the agent. */
#ifndef BM_SVC_H
#define BM_SVC_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "bm_limits.h"

/* Bump when any struct below changes layout; the agent refuses to adopt pins of another. */
#define BM_ABI_VERSION 3

/* Addresses are 16 bytes, network order: IPv6 as is, IPv4 as ::ffff:a.b.c.d. */

/* bm_svc key: a service address the datapath translates. */
struct bm_svc_key {
	__u8 addr[16];  /* VIP */
	__be16 port;    /* service port, network order */
	__u8 proto;     /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

#define BM_SVC_F_SRC_ROUTES   (1u << 0) /* consult bm_srcroute for the caller's workload first */
#define BM_SVC_F_PASSTHROUGH  (1u << 1) /* known (resolution NONE): counted, never rewritten */
#define BM_SVC_F_L7           (1u << 2) /* HTTP rules apply: connect to the agent's listener */

/* bm_svc value. route_id 0: no ready endpoint, connect fails with ECONNREFUSED. */
struct bm_svc_val {
	__u32 svc_id;   /* stable id of this service port, key of bm_srcroute */
	__u32 route_id; /* default route, index into bm_route */
	__u32 flags;    /* BM_SVC_F_* */
	__u32 pad;
};

struct bm_rdest {
	__u32 set_id;   /* index into bm_set */
	__u32 cum;      /* cumulative weight up to and including this destination */
};

/* bm_route value (array, index = route id): weighted choice among backend sets. */
struct bm_route {
	__u32 n_dest;   /* destinations used, <= BM_MAX_DESTS */
	__u32 total;    /* sum of weights; a random number below it picks the destination */
	struct bm_rdest dest[BM_MAX_DESTS];
};

enum bm_lb {
	BM_LB_RANDOM = 0,
	BM_LB_ROUND_ROBIN = 1,
	BM_LB_LEAST_REQUEST = 2,  /* power of two choices on bm_active */
	BM_LB_MAGLEV = 3,         /* consistentHash.useSourceIp: bm_maglev row maglev_id */
	BM_LB_PASSTHROUGH = 4,    /* keep the address the app asked for */
};

/* bm_set value (array, index = set id): one backend set (service or subset, one port). */
struct bm_set {
	__u32 count;     /* backends at bm_slot (set id, 0 .. count-1) */
	__u32 lb;        /* enum bm_lb */
	__u32 maglev_id; /* BM_LB_MAGLEV: row in bm_maglev */
	__u32 pad;
	__u64 rr;        /* ROUND_ROBIN cursor, advanced atomically by the programs */
};

/* bm_slot key: the idx-th backend of a set. Value: __u32 backend id. */
struct bm_slot_key {
	__u32 set_id;
	__u32 idx;
};

#define BM_BE_F_V4 (1u << 0)     /* addr is v4-mapped */
#define BM_BE_F_REMOTE (1u << 1) /* the endpoint is known to run on another node */

/* bm_backend value (array, index = backend id): where a connection goes. */
struct bm_backend {
	__u8 addr[16];  /* endpoint address */
	__be16 port;    /* endpoint port (targetPort resolved for this endpoint), network order */
	__u8 flags;     /* BM_BE_F_* */
	__u8 pad;
	__u32 pad2;
};

/* bm_wl value, keyed by cgroup id (__u64): a local workload the hooks can recognise. */
struct bm_workload {
	__u32 wl_id;    /* id in bm_srcroute keys; 0 = unset */
	__u32 pad;
	__u8 addr[16];  /* the workload's address: the source IP for consistent hashing */
};

/* bm_srcroute key: route override for one workload calling one service port. */
struct bm_srcroute_key {
	__u32 svc_id;
	__u32 wl_id;
};

#define BM_SK_F_COUNTED (1u << 0)    /* bm_active of backend_id was incremented */
#define BM_SK_F_REDIRECTED (1u << 1) /* sent to the agent's listener (L7); see bm_orig */

/* bm_sk value (socket storage): what the connect hook did to this socket. */
struct bm_sock {
	__u8 vip[16];    /* address the app asked for */
	__be16 vip_port; /* port the app asked for, network order */
	__u8 proto;
	__u8 flags;      /* BM_SK_F_* */
	__u32 backend_id;
	__u8 be_addr[16]; /* backend chosen (the agent's listener when redirected) */
	__be16 be_port;
	__u8 pad[2];
	__u32 wl_id;      /* the calling workload, 0 when not known */
};

/* bm_revnat key: unconnected UDP, a backend seen from one socket. Value: struct bm_revnat. */
struct bm_revnat_key {
	__u64 cookie;   /* socket cookie */
	__u8 addr[16];  /* backend address */
	__be16 port;    /* backend port */
	__u8 pad[6];
};

struct bm_revnat {
	__u8 addr[16];  /* VIP to show the app */
	__be16 port;
	__u8 pad[6];
};

/* bm_meta value (array of one): version record (struct bm_version) of the pinned maps. */
struct bm_version {
	__u32 abi;          /* BM_ABI_VERSION of the agent that created the pins */
	__u32 pad;
	__u64 config_gen;   /* generation of the config last applied */
};

/* bm_byp values. A direction of a connection takes one path for all its bytes, decided at its
 * first sendmsg: bytes sent through TCP before the peer joined bm_sockhash must not be
 * overtaken by bytes redirected after (the receiver reads redirected data first). */
enum bm_byp {
	BM_BYP_UNDECIDED = 0, /* in bm_sockhash, no byte sent yet */
	BM_BYP_REDIRECT = 1,  /* the peer was there at the first send: every send is redirected */
	BM_BYP_TCP = 2,       /* it was not: every send goes through TCP */
	BM_BYP_AWAIT = 3,     /* key of the server end a local client connected to */
};

/* bm_sockhash and bm_byp key: one end of a TCP connection, as that end sees it. Ports in
 * host order (sockops and sk_msg give the local port in host order, the remote one in network
 * order in the upper 16 bits; both are normalised). */
struct bm_sockkey {
	__u8 local[16];
	__u8 remote[16];
	__u32 local_port;
	__u32 remote_port;
};

#define BM_CFG_F_BYPASS (1u << 0) /* same-node bypass: sockops adds pairs, sk_msg redirects */

/* Sockets the agent opens carry this mark: the hooks never redirect them to the agent. */
#define BM_AGENT_MARK 0x62001

/* bm_cfg value (array of one): switches the agent sets at run time. */
struct bm_cfg {
	__u32 flags;      /* BM_CFG_F_* */
	__be16 l7_port;   /* the agent's HTTP listener port, network order; 0: no L7 redirect */
	__u8 pad[2];
	__u8 l7_addr4[16]; /* its address for IPv4 clients (v4-mapped), reachable from the pods */
	__u8 l7_addr6[16]; /* for IPv6 clients; all zero: IPv6 clients are not redirected */
};

/* bm_orig key: a connection to the agent's listener, as the agent sees it on accept. */
struct bm_orig_key {
	__u8 client[16];  /* peer address */
	__u8 agent[16];   /* local address */
	__be16 client_port;
	__be16 agent_port;
	__u32 pad;
};

/* bm_orig value: where the client was going, and who it is. */
struct bm_orig {
	__u8 vip[16];
	__be16 vip_port;
	__u8 proto;
	__u8 pad;
	__u32 wl_id;      /* the calling workload (bm_wl), 0 when not known */
};

/* bm_ct key: one direction of a flow the TC path translated, as its packets carry it. */
struct bm_ct_key {
	__u8 src[16];
	__u8 dst[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* bm_ct value: the address:port to write in place of the destination (forward entry, client
 * to VIP -> backend) or of the source (reverse entry, backend to client -> VIP). */
struct bm_ct_val {
	__u8 addr[16];
	__be16 port;
	__u8 reverse;   /* 1: a reply entry, addr:port replaces the source */
	__u8 pad;
	__u32 backend_id;
};

/* Indices of bm_stats, a per-CPU array of __u64. */
enum bm_stat {
	BM_STAT_CONNECT = 0,     /* connect/sendmsg to a service address: translated */
	BM_STAT_NO_BACKEND,      /* refused: no ready endpoint */
	BM_STAT_PASSTHROUGH,     /* service address with resolution NONE */
	BM_STAT_SENDMSG,         /* UDP sendmsg translated */
	BM_STAT_RECVMSG,         /* UDP source restored to the VIP */
	BM_STAT_PEERNAME,        /* getpeername restored to the VIP */
	BM_STAT_SRCROUTE,        /* route chosen by the caller's workload (sourceLabels) */
	BM_STAT_LOOKUP_FAIL,     /* a table referenced an id that is not there */
	BM_STAT_ACTIVE_UNDERFLOW,/* a close found a backend with no active connection */
	BM_STAT_BYPASS_ADD,      /* sockets added to bm_sockhash (both ends count) */
	BM_STAT_BYPASS_MSG,      /* sendmsg calls redirected to the peer socket */
	BM_STAT_TC_NEW,          /* TC path: new flows translated (backend chosen) */
	BM_STAT_TC_NAT,          /* TC path: packets to a VIP rewritten to their backend */
	BM_STAT_TC_REVNAT,       /* TC path: reply packets rewritten back to the VIP */
	BM_STAT_TC_DROP,         /* TC path: packets to a VIP with no backend, dropped */
	BM_STAT_L7_REDIRECT,     /* connects sent to the agent's HTTP listener */
	BM_STAT_L7_NOAGENT,      /* L7 service port, but no listener configured for the family */
	BM_STAT__MAX,
};

#define BM_STAT_NAMES                                                                     \
	"connect", "no_backend", "passthrough", "sendmsg", "recvmsg", "peername", "srcroute", \
		"lookup_fail", "active_underflow", "bypass_add", "bypass_msg", "tc_new", "tc_nat",     \
		"tc_revnat", "tc_drop", "l7_redirect", "l7_noagent"

#endif
