/* The node's kernel datapath: load the programs, reuse or create the pinned maps, attach or
 * adopt the pinned cgroup links, and remove all of it (--cleanup). */
#ifndef BM_DP_H
#define BM_DP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/socket.h>

#define BM_BPFFS_DEFAULT "/sys/fs/bpf"

enum bm_map_id {
	BM_MAP_SVC,
	BM_MAP_ROUTE,
	BM_MAP_SET,
	BM_MAP_SLOT,
	BM_MAP_BACKEND,
	BM_MAP_ACTIVE,
	BM_MAP_MAGLEV,
	BM_MAP_WL,
	BM_MAP_SRCROUTE,
	BM_MAP_SK,
	BM_MAP_REVNAT,
	BM_MAP_STATS,
	BM_MAP_META,
	BM_MAP_SOCKHASH,
	BM_MAP_BYP,
	BM_MAP_CFG,
	BM_MAP_CT,
	BM_MAP_ORIG,
	BM_MAP_L7LSN,
	BM_MAP__MAX,
};

extern const char *const bm_map_names[BM_MAP__MAX];

struct bm_dp_objs;
struct bpf_object;

struct bm_dp {
	char pin_dir[PATH_MAX];   /* <bpffs>/bpfmesh/<node> */
	int map_fd[BM_MAP__MAX];  /* the maps the loaded programs use; -1 when closed */
	int adopted;              /* maps existed before this agent started */
	int links_adopted;        /* links existed and had their programs replaced */
	/* An upgrade whose maps differ in layout from the pinned ones: such a map is created
	 * fresh at <pin_dir>/staging/<name>, filled by the first apply, and renamed over the old
	 * pin by bm_dp_commit, after the links got the new programs. */
	unsigned char migrate[BM_MAP__MAX];
	int n_migrate;
	int committed;            /* programs attached (bm_dp_commit done) */
	struct bm_dp_objs *objs;  /* programs loaded, until commit */
	int cg_fd;
	uint64_t cg_id;
	/* The agent's own cgroup when the node's does not hold it (-1: none, or covered), and
	 * the unpinned link of bm_sockops_agent there (it goes with the agent). */
	int self_cg_fd;
	int self_link_fd;
};

/* Pin directory of a node. */
int bm_dp_pin_dir(char *buf, size_t len, const char *bpffs, const char *node);

/* Load the programs for node, reusing the pinned maps (a map whose layout changed is staged
 * for migration when the agent can rebuild it from config; one holding live connection state
 * is refused with a message naming it). Nothing is attached yet. 0 or -errno. */
int bm_dp_open(struct bm_dp *dp, const char *bpffs, const char *node, const char *cgroup_path);

/* Give another object (the TC programs) the same map pins before it is loaded. */
int bm_dp_prepare(const struct bm_dp *dp, struct bpf_object *obj);

/* Attach the programs to cgroup_path and bm_sockhash through pinned links, or swap them into
 * the links an earlier agent pinned (never detached), then put migrated maps in place of the
 * old pins. Call after the first apply filled the maps. 0 or -errno. */
int bm_dp_commit(struct bm_dp *dp);

/* Open the pinned maps only (for bpfmeshctl). 0 or -errno. */
int bm_dp_open_maps(struct bm_dp *dp, const char *bpffs, const char *node);

void bm_dp_close(struct bm_dp *dp);

/* Remove every link and map pin of node (detaches the programs). 0 or -errno. */
int bm_dp_cleanup(const char *bpffs, const char *node);

/* The agent's accepted connection fd was redirected to it (L7): take (read and delete) where
 * its client was going. 0, or -ENOENT when the kernel recorded nothing for it. */
struct bm_orig;
int bm_dp_orig_take(const struct bm_dp *dp, int fd, struct bm_orig *out);
/* The agent's HTTP listener for IPv4 (v6 false) or IPv6 clients: the connect hook redirects
 * to it only while it is open. 0 or -errno. */
int bm_dp_l7_listener_set(const struct bm_dp *dp, bool v6, int fd);
/* The agent's end of a redirected connection joins the same-node bypass when the client end
 * awaits it (sockops announced it). 1 joined, 0 not awaited, -errno. */
int bm_dp_bypass_join(const struct bm_dp *dp, int fd);
/* The agent's own connection to an endpoint on this node (same-node bypass, agent-to-pod hop):
 * expect, with fd bound and not yet connected, files its end and awaits the server's; add,
 * once connected, puts its end in bm_sockhash. 0 or -errno. */
int bm_dp_bypass_expect(const struct bm_dp *dp, int fd, const struct sockaddr_storage *to);
int bm_dp_bypass_add(const struct bm_dp *dp, int fd);

/* Mount bpffs at path when nothing is mounted there. 0 or -errno. */
int bm_bpffs_ensure(const char *path);

#endif
