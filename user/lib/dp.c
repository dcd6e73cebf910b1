/* The node's kernel datapath: load the programs, reuse or create the pinned maps, attach or
 * adopt the pinned cgroup links, and remove all of it (--cleanup). */
#include "dp.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "bm_svc.h"
#include "log.h"
#include "sock_connect.skel.h"
#include "sock_peer.skel.h"
#include "sk_msg.skel.h"
#include "sock_udp.skel.h"
#include "sockops.skel.h"

/* Kernel ABI values newer than the system's 6.1 UAPI headers (bpf_link for sockmap: 6.10). */
#define BM_LINK_TYPE_SOCKMAP 14

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

const char *const bm_map_names[BM_MAP__MAX] = {
	[BM_MAP_SVC] = "bm_svc",         [BM_MAP_ROUTE] = "bm_route",
	[BM_MAP_SET] = "bm_set",         [BM_MAP_SLOT] = "bm_slot",
	[BM_MAP_BACKEND] = "bm_backend", [BM_MAP_ACTIVE] = "bm_active",
	[BM_MAP_MAGLEV] = "bm_maglev",   [BM_MAP_WL] = "bm_wl",
	[BM_MAP_SRCROUTE] = "bm_srcroute", [BM_MAP_SK] = "bm_sk",
	[BM_MAP_REVNAT] = "bm_revnat",   [BM_MAP_STATS] = "bm_stats",
	[BM_MAP_META] = "bm_meta",       [BM_MAP_SOCKHASH] = "bm_sockhash",
	[BM_MAP_BYP] = "bm_byp",         [BM_MAP_CFG] = "bm_cfg",
};

int bm_dp_pin_dir(char *buf, size_t len, const char *bpffs, const char *node)
{
	int n = snprintf(buf, len, "%s/bpfmesh/%s", bpffs, node);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int bm_bpffs_ensure(const char *path)
{
	struct statfs st;

	if (statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	if (mount("bpf", path, "bpf", 0, "mode=0700")) {
		int err = -errno;

		bm_err("mount bpffs at %s: %s", path, strerror(errno));
		return err;
	}
	return 0;
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static int open_maps(struct bm_dp *dp)
{
	char path[PATH_MAX + 32];

	for (int i = 0; i < BM_MAP__MAX; i++) {
		snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, bm_map_names[i]);
		dp->map_fd[i] = bpf_obj_get(path);
		if (dp->map_fd[i] < 0) {
			int err = -errno;

			bm_err("open pinned map %s: %s", path, strerror(errno));
			return err;
		}
	}
	return 0;
}

/* A link pinned at path from an earlier agent: when it is of link_type (and, for a cgroup link,
 * on cg_id), swap our program into it (an agent restart or upgrade: the hook never goes away)
 * and return 1. 0: nothing usable there (any stale pin removed), -errno on failure. */
static int adopt_link(struct bm_dp *dp, const char *path, int prog_fd, __u32 link_type,
		      uint64_t cg_id)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path), err;

	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == link_type &&
	    (link_type != BPF_LINK_TYPE_CGROUP || info.cgroup.cgroup_id == cg_id)) {
		err = bpf_link_update(fd, prog_fd, NULL);
		close(fd);
		if (err) {
			err = -errno;
			bm_err("update link %s: %s", path, strerror(errno));
			return err;
		}
		dp->links_adopted = 1;
		return 1;
	}
	/* Pinned for another target (the node's cgroup changed): replace it. */
	close(fd);
	bm_warn("link %s is attached elsewhere: re-attaching", path);
	unlink(path);
	return 0;
}

static void link_path(const struct bm_dp *dp, const struct bpf_program *prog, char *buf, size_t len)
{
	snprintf(buf, len, "%s/link_%s", dp->pin_dir, bpf_program__name(prog));
}

/* Attach prog to the cgroup through a pinned link, or adopt the one pinned there. */
static int attach_pinned(struct bm_dp *dp, struct bpf_program *prog, int cg_fd, uint64_t cg_id)
{
	char path[PATH_MAX + 64];
	struct bpf_link *link;
	int err;

	link_path(dp, prog, path, sizeof(path));
	err = adopt_link(dp, path, bpf_program__fd(prog), BPF_LINK_TYPE_CGROUP, cg_id);
	if (err)
		return err < 0 ? err : 0;
	link = bpf_program__attach_cgroup(prog, cg_fd);
	if (!link) {
		err = -errno;
		bm_err("attach %s to cgroup: %s", bpf_program__name(prog), strerror(errno));
		return err;
	}
	err = bpf_link__pin(link, path);
	if (err) {
		bm_err("pin link %s: %s", path, strerror(-err));
		bpf_link__destroy(link);
		return err;
	}
	bpf_link__disconnect(link); /* the pin keeps it attached after we exit */
	bpf_link__destroy(link);
	return 0;
}

/* Attach the sk_msg program to bm_sockhash through a pinned link (kernel 6.10+). */
static int attach_sockmap_pinned(struct bm_dp *dp, struct bpf_program *prog)
{
	char path[PATH_MAX + 64];
	int fd, err;

	link_path(dp, prog, path, sizeof(path));
	err = adopt_link(dp, path, bpf_program__fd(prog), BM_LINK_TYPE_SOCKMAP, 0);
	if (err)
		return err < 0 ? err : 0;
	fd = bpf_link_create(bpf_program__fd(prog), dp->map_fd[BM_MAP_SOCKHASH],
			     BPF_SK_MSG_VERDICT, NULL);
	if (fd < 0) {
		err = -errno;
		bm_err("attach %s to bm_sockhash: %s (needs kernel 6.10 for sockmap links)",
		       bpf_program__name(prog), strerror(errno));
		return err;
	}
	err = bpf_obj_pin(fd, path) ? -errno : 0;
	if (err)
		bm_err("pin link %s: %s", path, strerror(-err));
	close(fd);
	return err;
}

static int attach_obj(struct bm_dp *dp, struct bpf_object *obj, int cg_fd, uint64_t cg_id)
{
	struct bpf_program *prog;
	int err;

	bpf_object__for_each_program(prog, obj) {
		err = attach_pinned(dp, prog, cg_fd, cg_id);
		if (err)
			return err;
	}
	return 0;
}

/* Level of a cgroup below the cgroup2 root, from its path and the mount point. */
static int cgroup_level(const char *cg_path, uint32_t *level)
{
	FILE *fp = fopen("/proc/mounts", "r");
	char dev[256], mnt[PATH_MAX], type[64], rest[512];
	size_t best = 0;

	if (!fp)
		return -errno;
	while (fscanf(fp, "%255s %4095s %63s %511[^\n]\n", dev, mnt, type, rest) == 4) {
		size_t n = strlen(mnt);

		if (strcmp(type, "cgroup2") || strncmp(cg_path, mnt, n) ||
		    (cg_path[n] != '/' && cg_path[n] != '\0'))
			continue;
		if (n > best)
			best = n;
	}
	fclose(fp);
	if (!best)
		return -ENOENT;
	*level = 0;
	for (const char *p = cg_path + best; *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			(*level)++;
	return 0;
}

#define OPEN_SKEL(type, var)                                                          \
	do {                                                                          \
		var = type##__open_opts(&opts);                                       \
		if (!var) {                                                           \
			err = -errno;                                                 \
			bm_err("open BPF object " #type ": %s", strerror(errno));     \
			goto cleanup;                                                 \
		}                                                                     \
	} while (0)

#define LOAD_SKEL(type, var)                                                                  \
	do {                                                                                  \
		err = type##__load(var);                                                      \
		if (err) {                                                                    \
			bm_err("load BPF object " #type " (pins in %s): %s%s", dp->pin_dir,   \
			       strerror(-err),                                                \
			       err == -EINVAL ? " (a pinned map of another layout? run "      \
						"bpfmesh-agent --cleanup)" :                  \
						"");                                          \
			goto cleanup;                                                         \
		}                                                                             \
	} while (0)

int bm_dp_open(struct bm_dp *dp, const char *bpffs, const char *node, const char *cgroup_path)
{
	struct bm_sock_connect *connect = NULL;
	struct bm_sock_udp *udp = NULL;
	struct bm_sock_peer *peer = NULL;
	struct bm_sockops *sockops = NULL;
	struct bm_sk_msg *skmsg = NULL;
	char probe[PATH_MAX + 16];
	struct stat st;
	uint32_t level = 0;
	int cg_fd = -1, err;

	for (int i = 0; i < BM_MAP__MAX; i++)
		dp->map_fd[i] = -1;
	dp->adopted = dp->links_adopted = 0;
	err = bm_dp_pin_dir(dp->pin_dir, sizeof(dp->pin_dir), bpffs, node);
	if (err)
		return err;
	err = bm_bpffs_ensure(bpffs);
	if (err)
		return err;
	err = mkdir_p(dp->pin_dir);
	if (err) {
		bm_err("create %s: %s", dp->pin_dir, strerror(-err));
		return err;
	}
	snprintf(probe, sizeof(probe), "%s/bm_svc", dp->pin_dir);
	dp->adopted = access(probe, F_OK) == 0;

	cg_fd = open(cgroup_path, O_RDONLY | O_DIRECTORY);
	if (cg_fd < 0 || fstat(cg_fd, &st)) {
		err = -errno;
		bm_err("open cgroup %s: %s", cgroup_path, strerror(errno));
		goto cleanup;
	}
	err = cgroup_level(cgroup_path, &level);
	if (err) {
		bm_err("cgroup %s is not under a cgroup2 mount", cgroup_path);
		goto cleanup;
	}

	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = dp->pin_dir);
	OPEN_SKEL(bm_sock_connect, connect);
	OPEN_SKEL(bm_sock_udp, udp);
	OPEN_SKEL(bm_sock_peer, peer);
	OPEN_SKEL(bm_sockops, sockops);
	OPEN_SKEL(bm_sk_msg, skmsg);
	/* Pods live at <node cgroup>/kubepods/pod<uid> (or one level deeper by QoS class). */
	connect->rodata->bm_pod_level = level + 2;
	udp->rodata->bm_pod_level = level + 2;
	LOAD_SKEL(bm_sock_connect, connect);
	LOAD_SKEL(bm_sock_udp, udp);
	LOAD_SKEL(bm_sock_peer, peer);
	LOAD_SKEL(bm_sockops, sockops);
	LOAD_SKEL(bm_sk_msg, skmsg);

	err = open_maps(dp);
	if (err)
		goto cleanup;

	/* The version record: refuse pins made by an agent with another ABI. */
	struct bm_version meta = {};
	__u32 zero = 0;

	if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_META], &zero, &meta) == 0 && meta.abi &&
	    meta.abi != BM_ABI_VERSION) {
		bm_err("pinned maps in %s have ABI %u, this agent has %u: run bpfmesh-agent --cleanup "
		       "--node %s first",
		       dp->pin_dir, meta.abi, BM_ABI_VERSION, node);
		err = -EPROTO;
		goto cleanup;
	}
	if (!meta.abi) {
		meta.abi = BM_ABI_VERSION;
		bpf_map_update_elem(dp->map_fd[BM_MAP_META], &zero, &meta, BPF_ANY);
	}

	err = attach_obj(dp, connect->obj, cg_fd, st.st_ino);
	if (!err)
		err = attach_obj(dp, udp->obj, cg_fd, st.st_ino);
	if (!err)
		err = attach_obj(dp, peer->obj, cg_fd, st.st_ino);
	if (!err)
		err = attach_obj(dp, sockops->obj, cg_fd, st.st_ino);
	if (!err)
		err = attach_sockmap_pinned(dp, skmsg->progs.bm_sk_msg);
	if (!err)
		bm_info("datapath %s: maps %s, programs %s on %s", dp->pin_dir,
			dp->adopted ? "adopted" : "created",
			dp->links_adopted ? "replaced in their links" : "attached", cgroup_path);
cleanup:
	/* Programs stay alive through their pinned links; maps through their pins and our fds. */
	bm_sock_connect__destroy(connect);
	bm_sock_udp__destroy(udp);
	bm_sock_peer__destroy(peer);
	bm_sockops__destroy(sockops);
	bm_sk_msg__destroy(skmsg);
	if (cg_fd >= 0)
		close(cg_fd);
	if (err)
		bm_dp_close(dp);
	return err;
}

int bm_dp_open_maps(struct bm_dp *dp, const char *bpffs, const char *node)
{
	int err;

	for (int i = 0; i < BM_MAP__MAX; i++)
		dp->map_fd[i] = -1;
	err = bm_dp_pin_dir(dp->pin_dir, sizeof(dp->pin_dir), bpffs, node);
	if (!err)
		err = open_maps(dp);
	if (err)
		bm_dp_close(dp);
	return err;
}

void bm_dp_close(struct bm_dp *dp)
{
	for (int i = 0; i < BM_MAP__MAX; i++) {
		if (dp->map_fd[i] >= 0)
			close(dp->map_fd[i]);
		dp->map_fd[i] = -1;
	}
}

int bm_dp_cleanup(const char *bpffs, const char *node)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d;
	int err = 0;

	err = bm_dp_pin_dir(dir, sizeof(dir), bpffs, node);
	if (err)
		return err;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	/* Links first, so no program runs against a map being unpinned. */
	for (int pass = 0; pass < 2; pass++) {
		rewinddir(d);
		while ((de = readdir(d))) {
			int is_link = !strncmp(de->d_name, "link_", 5);

			if (de->d_name[0] == '.' || is_link != (pass == 0))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			if (unlink(path) && errno != ENOENT) {
				bm_err("unpin %s: %s", path, strerror(errno));
				err = -errno;
			}
		}
	}
	closedir(d);
	if (rmdir(dir) && errno != ENOENT) {
		bm_err("remove %s: %s", dir, strerror(errno));
		err = -errno;
	}
	return err;
}
