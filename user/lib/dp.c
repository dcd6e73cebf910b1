/* The node's kernel datapath: load the programs, reuse or create the pinned maps, attach or
 * adopt the pinned cgroup links, and remove all of it (--cleanup). */
#include "dp.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "bm_svc.h"
#include "dp_internal.h"
#include "log.h"
#include "sock_connect.skel.h"
#include "sock_peer.skel.h"
#include "sk_msg.skel.h"
#include "sock_udp.skel.h"
#include "sockops.skel.h"
#include "sockops_agent.skel.h"


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
	[BM_MAP_CT] = "bm_ct",           [BM_MAP_ORIG] = "bm_orig",
	[BM_MAP_L7LSN] = "bm_l7_lsn",
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

/* Level of a cgroup below the cgroup2 root, from its path and the mount point. */
/* The cgroup2 mount that holds path (the deepest, if mounts nest), or with path NULL the
 * first one, copied to mnt: its length, or -ENOENT. */
static int cgroup2_mount(const char *path, char *mnt, size_t len)
{
	FILE *fp = fopen("/proc/mounts", "r");
	char dev[256], m[PATH_MAX], type[64], rest[512];
	size_t best = 0;

	if (!fp)
		return -errno;
	while (fscanf(fp, "%255s %4095s %63s %511[^\n]\n", dev, m, type, rest) == 4) {
		size_t n = strlen(m);

		if (strcmp(type, "cgroup2") || n <= best ||
		    (path && (strncmp(path, m, n) || (path[n] != '/' && path[n] != '\0'))))
			continue;
		snprintf(mnt, len, "%s", m);
		best = n;
		if (!path)
			break;
	}
	fclose(fp);
	return best ? (int)best : -ENOENT;
}

static int cgroup_level(const char *cg_path, uint32_t *level)
{
	char mnt[PATH_MAX];
	int best = cgroup2_mount(cg_path, mnt, sizeof(mnt));

	if (best < 0)
		return best;
	*level = 0;
	for (const char *p = cg_path + best; *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			(*level)++;
	return 0;
}

/* The programs of one node, loaded and waiting for bm_dp_commit. */
struct bm_dp_objs {
	struct bm_sock_connect *connect;
	struct bm_sock_udp *udp;
	struct bm_sock_peer *peer;
	struct bm_sockops *sockops;
	struct bm_sockops_agent *sockops_agent;
	struct bm_sk_msg *skmsg;
};

static void objs_free(struct bm_dp_objs *o)
{
	if (!o)
		return;
	bm_sock_connect__destroy(o->connect);
	bm_sock_udp__destroy(o->udp);
	bm_sock_peer__destroy(o->peer);
	bm_sockops__destroy(o->sockops);
	bm_sockops_agent__destroy(o->sockops_agent);
	bm_sk_msg__destroy(o->skmsg);
	free(o);
}

/* Maps that hold live connection state: a new layout for them cannot be filled from config,
 * so an upgrade that changes one is refused rather than cutting connections. */
static int holds_live_state(int id)
{
	return id == BM_MAP_SK || id == BM_MAP_REVNAT || id == BM_MAP_SOCKHASH ||
	       id == BM_MAP_BYP || id == BM_MAP_CT;
}

static int map_id_of(const char *name)
{
	for (int i = 0; i < BM_MAP__MAX; i++)
		if (!strcmp(bm_map_names[i], name))
			return i;
	return -1;
}

/* Compare the object's map definitions with the pins: the same layout is reused; another one
 * is staged for migration, or refused for maps holding live state. Every pin is also staged
 * when the pins' ABI version differs from ours (their meaning may have changed). */
static int check_layout(struct bm_dp *dp, struct bpf_object *obj)
{
	char path[PATH_MAX + 64];
	struct bpf_map *map;
	int abi_changed = 0, err = 0;

	snprintf(path, sizeof(path), "%s/bm_meta", dp->pin_dir);
	int mfd = bpf_obj_get(path);

	if (mfd >= 0) {
		struct bm_version v = {};
		__u32 zero = 0;

		if (!bpf_map_lookup_elem(mfd, &zero, &v) && v.abi && v.abi != BM_ABI_VERSION) {
			bm_warn("pins in %s have ABI %u, this agent %u: rebuilding every map it can",
				dp->pin_dir, v.abi, BM_ABI_VERSION);
			abi_changed = 1;
		}
		close(mfd);
	}
	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		int id = map_id_of(name), fd;
		char why[160] = "";

		if (id < 0) /* .rodata and the like */
			continue;
		snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue; /* not pinned yet: created */
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
			close(fd);
			continue;
		}
		close(fd);
		if (info.type != bpf_map__type(map))
			snprintf(why, sizeof(why), "type %u pinned, %u here", info.type,
				 bpf_map__type(map));
		else if (info.key_size != bpf_map__key_size(map) ||
			 info.value_size != bpf_map__value_size(map))
			snprintf(why, sizeof(why), "key/value %u/%u bytes pinned, %u/%u here",
				 info.key_size, info.value_size, bpf_map__key_size(map),
				 bpf_map__value_size(map));
		else if (info.max_entries != bpf_map__max_entries(map))
			snprintf(why, sizeof(why), "max_entries %u pinned, %u here", info.max_entries,
				 bpf_map__max_entries(map));
		else if (info.map_flags != bpf_map__map_flags(map))
			snprintf(why, sizeof(why), "flags 0x%x pinned, 0x%x here", info.map_flags,
				 bpf_map__map_flags(map));
		if (!why[0] && !(abi_changed && !holds_live_state(id)))
			continue;
		if (holds_live_state(id)) {
			bm_err("pinned map %s has another layout (%s) and holds live connection "
			       "state: this upgrade cannot migrate it without cutting connections; "
			       "run bpfmesh-agent --cleanup --node <node> in a maintenance window",
			       path, why);
			err = -EPROTO;
			continue;
		}
		if (!dp->migrate[id]) {
			dp->migrate[id] = 1;
			dp->n_migrate++;
			bm_info("map %s: %s: migrating to a new map filled from config", name,
				why[0] ? why : "pins of another ABI");
		}
	}
	return err;
}

int bm_dp_prepare(const struct bm_dp *dp, struct bpf_object *obj)
{
	char path[PATH_MAX + 64];
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		int id = map_id_of(bpf_map__name(map));

		if (id < 0 || !dp->migrate[id])
			continue;
		snprintf(path, sizeof(path), "%s/staging/%s", dp->pin_dir, bm_map_names[id]);
		if (bpf_map__set_pin_path(map, path))
			return -EINVAL;
	}
	return 0;
}

static int open_maps_at(struct bm_dp *dp)
{
	char path[PATH_MAX + 64];

	for (int i = 0; i < BM_MAP__MAX; i++) {
		snprintf(path, sizeof(path), "%s/%s%s", dp->pin_dir, dp->migrate[i] ? "staging/" : "",
			 bm_map_names[i]);
		dp->map_fd[i] = bpf_obj_get(path);
		if (dp->map_fd[i] < 0) {
			int err = -errno;

			bm_err("open pinned map %s: %s", path, strerror(errno));
			return err;
		}
	}
	return 0;
}

#define OPEN_SKEL(type, var)                                                          \
	do {                                                                          \
		var = type##__open_opts(&opts);                                       \
		if (!var || bm_dp_prepare(dp, var->obj)) {                            \
			err = var ? -EINVAL : -errno;                                 \
			bm_err("open BPF object " #type ": %s", strerror(-err));      \
			goto fail;                                                    \
		}                                                                     \
	} while (0)

#define LOAD_SKEL(type, var)                                                                  \
	do {                                                                                  \
		err = type##__load(var);                                                      \
		if (err) {                                                                    \
			bm_err("load BPF object " #type " (pins in %s): %s", dp->pin_dir,     \
			       strerror(-err));                                               \
			goto fail;                                                            \
		}                                                                             \
	} while (0)

/* The cgroup this process runs in, opened, when it is not the node's cgroup (cg_path) nor
 * below it (the pods' sockops covers it there) nor a cgroup2 root (a program there would run
 * for every socket of the machine); -1 otherwise. */
static int self_cgroup(const char *cg_path)
{
	char line[PATH_MAX], rel[PATH_MAX] = "", mnt[PATH_MAX], path[2 * PATH_MAX + 2];
	char real_cg[PATH_MAX], real_self[PATH_MAX];
	FILE *fp = fopen("/proc/self/cgroup", "r");
	size_t n;
	int fd;

	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (!strncmp(line, "0::", 3)) {
			snprintf(rel, sizeof(rel), "%s", line + 3);
			rel[strcspn(rel, "\n")] = '\0';
		}
	fclose(fp);
	if (!rel[0] || !strcmp(rel, "/"))
		return -1;
	if (cgroup2_mount(NULL, mnt, sizeof(mnt)) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s%s", mnt, rel);
	if (!realpath(path, real_self) || !realpath(cg_path, real_cg))
		return -1;
	n = strlen(real_cg);
	if (!strncmp(real_self, real_cg, n) && (real_self[n] == '/' || real_self[n] == '\0'))
		return -1;
	fd = open(real_self, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -1 : fd;
}

/* bm_sockops_agent on the agent's own cgroup, unpinned: it serves only the agent's sockets
 * and goes with them. A failure costs only speed (the agent's accepted ends then join from
 * userspace, after the client's first send, which keeps that direction on TCP). */
static void attach_self(struct bm_dp *dp, struct bpf_program *prog)
{
	if (dp->self_cg_fd < 0 || dp->self_link_fd >= 0)
		return;
	dp->self_link_fd = bpf_link_create(bpf_program__fd(prog), dp->self_cg_fd,
					   BPF_CGROUP_SOCK_OPS, NULL);
	if (dp->self_link_fd < 0) {
		dp->self_link_fd = -1;
		bm_warn("attach bm_sockops_agent to the agent's own cgroup: %s (its listener's "
			"connections join the same-node bypass late)", strerror(errno));
	}
}

int bm_dp_open(struct bm_dp *dp, const char *bpffs, const char *node, const char *cgroup_path)
{
	char probe[PATH_MAX + 16];
	struct bm_dp_objs *o;
	struct stat st;
	uint32_t level = 0;
	int err;

	memset(dp, 0, sizeof(*dp));
	dp->cg_fd = -1;
	dp->self_cg_fd = -1;
	dp->self_link_fd = -1;
	for (int i = 0; i < BM_MAP__MAX; i++)
		dp->map_fd[i] = -1;
	err = bm_dp_pin_dir(dp->pin_dir, sizeof(dp->pin_dir), bpffs, node);
	if (err)
		return err;
	err = bm_bpffs_ensure(bpffs);
	if (err)
		return err;
	snprintf(probe, sizeof(probe), "%s/staging", dp->pin_dir);
	err = mkdir_p(probe);
	if (err) {
		bm_err("create %s: %s", probe, strerror(-err));
		return err;
	}
	/* Maps staged by a migration that never committed (the agent died): start afresh. */
	DIR *stale = opendir(probe);
	struct dirent *de;

	while (stale && (de = readdir(stale))) {
		char path[PATH_MAX + 300];

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", probe, de->d_name);
		unlink(path);
	}
	if (stale)
		closedir(stale);
	snprintf(probe, sizeof(probe), "%s/bm_svc", dp->pin_dir);
	dp->adopted = access(probe, F_OK) == 0;
	dp->cg_fd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dp->cg_fd < 0 || fstat(dp->cg_fd, &st)) {
		err = -errno;
		bm_err("open cgroup %s: %s", cgroup_path, strerror(errno));
		goto fail;
	}
	dp->cg_id = st.st_ino; /* the cgroup id on cgroup v2 */
	err = cgroup_level(cgroup_path, &level);
	if (err) {
		bm_err("cgroup %s is not under a cgroup2 mount", cgroup_path);
		goto fail;
	}
	o = dp->objs = calloc(1, sizeof(*o));
	if (!o) {
		err = -ENOMEM;
		goto fail;
	}

	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = dp->pin_dir);
	o->connect = bm_sock_connect__open_opts(&opts);
	if (!o->connect) {
		err = -errno;
		bm_err("open BPF object bm_sock_connect: %s", strerror(errno));
		goto fail;
	}
	err = check_layout(dp, o->connect->obj);
	if (err)
		goto fail;
	if (bm_dp_prepare(dp, o->connect->obj)) {
		err = -EINVAL;
		goto fail;
	}
	OPEN_SKEL(bm_sock_udp, o->udp);
	OPEN_SKEL(bm_sock_peer, o->peer);
	OPEN_SKEL(bm_sockops, o->sockops);
	OPEN_SKEL(bm_sockops_agent, o->sockops_agent);
	OPEN_SKEL(bm_sk_msg, o->skmsg);
	/* Pods live at <node cgroup>/kubepods/pod<uid> (or one level deeper by QoS class). */
	o->connect->rodata->bm_pod_level = level + 2;
	o->udp->rodata->bm_pod_level = level + 2;
	LOAD_SKEL(bm_sock_connect, o->connect);
	LOAD_SKEL(bm_sock_udp, o->udp);
	LOAD_SKEL(bm_sock_peer, o->peer);
	LOAD_SKEL(bm_sockops, o->sockops);
	LOAD_SKEL(bm_sockops_agent, o->sockops_agent);
	LOAD_SKEL(bm_sk_msg, o->skmsg);
	dp->self_cg_fd = self_cgroup(cgroup_path);
	err = open_maps_at(dp);
	if (err)
		goto fail;
	return 0;
fail:
	bm_dp_close(dp);
	return err;
}

int bm_dp_commit(struct bm_dp *dp)
{
	struct bm_dp_objs *o = dp->objs;
	char from[PATH_MAX + 64], to[PATH_MAX + 64];
	int err;

	if (dp->committed || !o)
		return 0;
	err = bm_dp_attach_obj(dp, o->connect->obj, dp->cg_fd, dp->cg_id);
	if (!err)
		err = bm_dp_attach_obj(dp, o->udp->obj, dp->cg_fd, dp->cg_id);
	if (!err)
		err = bm_dp_attach_obj(dp, o->peer->obj, dp->cg_fd, dp->cg_id);
	if (!err)
		err = bm_dp_attach_obj(dp, o->sockops->obj, dp->cg_fd, dp->cg_id);
	if (!err)
		err = bm_dp_attach_sockmap(dp, o->skmsg->progs.bm_sk_msg);
	if (err)
		return err;
	attach_self(dp, o->sockops_agent->progs.bm_sockops_agent);
	/* The links now run the new programs on the new maps: their pins replace the old ones,
	 * and the old maps go with the last program that held them. */
	for (int i = 0; i < BM_MAP__MAX; i++) {
		if (!dp->migrate[i])
			continue;
		snprintf(from, sizeof(from), "%s/staging/%s", dp->pin_dir, bm_map_names[i]);
		snprintf(to, sizeof(to), "%s/%s", dp->pin_dir, bm_map_names[i]);
		if (rename(from, to)) {
			bm_err("replace %s with the migrated map: %s", to, strerror(errno));
			return -errno;
		}
		bm_info("map %s migrated", bm_map_names[i]);
		dp->migrate[i] = 0;
	}
	dp->n_migrate = 0;
	dp->committed = 1;
	bm_info("datapath %s: maps %s, programs %s", dp->pin_dir,
		dp->adopted ? "adopted" : "created",
		dp->links_adopted ? "replaced in their links" : "attached");
	/* Programs stay alive through their pinned links; maps through their pins and our fds. */
	objs_free(dp->objs);
	dp->objs = NULL;
	return 0;
}

int bm_dp_open_maps(struct bm_dp *dp, const char *bpffs, const char *node)
{
	int err;

	memset(dp, 0, sizeof(*dp));
	dp->cg_fd = -1;
	dp->self_cg_fd = -1;
	dp->self_link_fd = -1;
	for (int i = 0; i < BM_MAP__MAX; i++)
		dp->map_fd[i] = -1;
	err = bm_dp_pin_dir(dp->pin_dir, sizeof(dp->pin_dir), bpffs, node);
	if (!err)
		err = open_maps_at(dp);
	if (err)
		bm_dp_close(dp);
	return err;
}

void bm_dp_close(struct bm_dp *dp)
{
	char path[PATH_MAX + 64];

	for (int i = 0; i < BM_MAP__MAX; i++) {
		if (dp->map_fd[i] >= 0)
			close(dp->map_fd[i]);
		dp->map_fd[i] = -1;
		/* A migration that never committed: its staged maps are dropped. */
		if (dp->migrate[i]) {
			snprintf(path, sizeof(path), "%s/staging/%s", dp->pin_dir, bm_map_names[i]);
			unlink(path);
			dp->migrate[i] = 0;
		}
	}
	objs_free(dp->objs);
	dp->objs = NULL;
	if (dp->cg_fd >= 0)
		close(dp->cg_fd);
	dp->cg_fd = -1;
	if (dp->self_link_fd >= 0)
		close(dp->self_link_fd); /* detaches bm_sockops_agent */
	dp->self_link_fd = -1;
	if (dp->self_cg_fd >= 0)
		close(dp->self_cg_fd);
	dp->self_cg_fd = -1;
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

			if (de->d_name[0] == '.' || is_link != (pass == 0) ||
			    !strcmp(de->d_name, "staging"))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			if (unlink(path) && errno != ENOENT) {
				bm_err("unpin %s: %s", path, strerror(errno));
				err = -errno;
			}
		}
	}
	closedir(d);
	snprintf(path, sizeof(path), "%s/staging", dir);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		char sub[PATH_MAX + 512];

		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		unlink(sub);
	}
	if (d)
		closedir(d);
	rmdir(path);
	if (rmdir(dir) && errno != ENOENT) {
		bm_err("remove %s: %s", dir, strerror(errno));
		err = -errno;
	}
	return err;
}
