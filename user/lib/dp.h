/* The node's kernel datapath: load the programs, reuse or create the pinned maps, attach or
 * adopt the pinned cgroup links, and remove all of it (--cleanup). */
#ifndef BM_DP_H
#define BM_DP_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

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
	BM_MAP__MAX,
};

extern const char *const bm_map_names[BM_MAP__MAX];

struct bm_dp {
	char pin_dir[PATH_MAX];   /* <bpffs>/bpfmesh/<node> */
	int map_fd[BM_MAP__MAX];  /* opened from the pins; -1 when closed */
	int adopted;              /* maps existed before this agent started */
	int links_adopted;        /* links existed and had their programs replaced */
};

/* Pin directory of a node. */
int bm_dp_pin_dir(char *buf, size_t len, const char *bpffs, const char *node);

/* Load and attach everything for node, attached to cgroup_path. Existing pins are reused
 * (maps) or updated in place with bpf_link_update (links): never detached. 0 or -errno. */
int bm_dp_open(struct bm_dp *dp, const char *bpffs, const char *node, const char *cgroup_path);

/* Open the pinned maps only (for bpfmeshctl). 0 or -errno. */
int bm_dp_open_maps(struct bm_dp *dp, const char *bpffs, const char *node);

void bm_dp_close(struct bm_dp *dp);

/* Remove every link and map pin of node (detaches the programs). 0 or -errno. */
int bm_dp_cleanup(const char *bpffs, const char *node);

/* Mount bpffs at path when nothing is mounted there. 0 or -errno. */
int bm_bpffs_ensure(const char *path);

#endif
