/* Links of the node's datapath: attach a program through a pinned bpf_link, or adopt the link
 * an earlier agent pinned by swapping our program into it (the hook never goes away). */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dp.h"
#include "dp_internal.h"
#include "log.h"

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
int bm_dp_attach_cgroup(struct bm_dp *dp, struct bpf_program *prog, int cg_fd, uint64_t cg_id)
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
int bm_dp_attach_sockmap(struct bm_dp *dp, struct bpf_program *prog)
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

int bm_dp_attach_obj(struct bm_dp *dp, struct bpf_object *obj, int cg_fd, uint64_t cg_id)
{
	struct bpf_program *prog;
	int err;

	bpf_object__for_each_program(prog, obj) {
		err = bm_dp_attach_cgroup(dp, prog, cg_fd, cg_id);
		if (err)
			return err;
	}
	return 0;
}

