/* The TC fallback's attachments: tcx links on every matching interface, pinned beside the
 * node's maps as link_tc_in_<ifname> / link_tc_out_<ifname>, adopted on restart, and kept in
 * step with rtnetlink link events (libmnl). */
#include "tc.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tc_host.h"
#include "tc_nat.skel.h"

/* Kernel ABI values newer than the system's 6.1 UAPI headers (tcx: 6.6). */
#define BM_TCX_INGRESS 46
#define BM_TCX_EGRESS 47
#define BM_LINK_TYPE_TCX 11

/* The kinds of attachment (d indexes this table): pod veths get translation on ingress and
 * its reverse on egress; the node's own interfaces the reverse on ingress; bm_svc0 the
 * translation and re-routing of the node's own processes' packets on egress. */
enum { K_POD_IN, K_POD_OUT, K_HOST_IN, K_SVC_OUT, K__MAX };

static const struct {
	const char *tag;
	unsigned attach_type;
} dirs[K__MAX] = {
	[K_POD_IN] = { "in", BM_TCX_INGRESS },
	[K_POD_OUT] = { "out", BM_TCX_EGRESS },
	[K_HOST_IN] = { "hin", BM_TCX_INGRESS },
	[K_SVC_OUT] = { "svc", BM_TCX_EGRESS },
};

static int prog_fd(const struct bm_tc *tc, int d)
{
	const struct bpf_program *p = d == K_POD_IN  ? tc->skel->progs.bm_tc_from_pod :
				      d == K_SVC_OUT ? tc->skel->progs.bm_tc_host_out :
						       tc->skel->progs.bm_tc_to_pod;

	return bpf_program__fd(p);
}

static int any_match(char *const *pats, size_t n, const char *ifname)
{
	for (size_t i = 0; i < n; i++)
		if (!fnmatch(pats[i], ifname, 0))
			return 1;
	return 0;
}

/* Does attachment kind d belong on ifname? */
static int matches(const struct bm_tc *tc, int d, const char *ifname)
{
	switch (d) {
	case K_POD_IN:
	case K_POD_OUT:
		return any_match(tc->patterns, tc->n_patterns, ifname);
	case K_HOST_IN:
		return any_match(tc->host_patterns, tc->n_host_patterns, ifname);
	default:
		return tc->n_host_patterns && !strcmp(ifname, BM_SVC_DEV);
	}
}

static void pin_path(const struct bm_tc *tc, int d, const char *ifname, char *buf, size_t len)
{
	snprintf(buf, len, "%s/link_tc_%s_%s", tc->dp->pin_dir, dirs[d].tag, ifname);
}

/* Type and interface of a link (bpf_link_info.tcx.ifindex sits right after the three ids; the
 * 6.1 headers do not know the tcx member). */
static int link_target(int fd, __u32 *type, __u32 *ifindex)
{
	__u8 info[256];
	__u32 len = sizeof(info);

	memset(info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, info, &len))
		return -errno;
	memcpy(type, info, 4);
	memcpy(ifindex, info + 16, 4);
	return 0;
}

/* The pinned link of (direction, ifname) when it is still attached there: 1; 0 when there is
 * none or it went stale (its pin is removed). With update, our program is swapped in. */
static int check_pin(struct bm_tc *tc, int d, const char *ifname, int update)
{
	char path[PATH_MAX + 64], name[IF_NAMESIZE];
	__u32 type = 0, ifindex = 0;
	int fd, ok = 0;

	pin_path(tc, d, ifname, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (!link_target(fd, &type, &ifindex) && type == BM_LINK_TYPE_TCX && ifindex &&
	    if_indextoname(ifindex, name) && !strcmp(name, ifname))
		ok = 1;
	if (ok && update && bpf_link_update(fd, prog_fd(tc, d), NULL)) {
		bm_err("update link %s: %s", path, strerror(errno));
		ok = 0;
	}
	close(fd);
	if (!ok)
		unlink(path); /* the interface went away (or was recreated): this link is dead */
	return ok;
}

static int attach(struct bm_tc *tc, int d, const char *ifname, unsigned ifindex)
{
	char path[PATH_MAX + 64];
	int fd, err = 0;

	fd = bpf_link_create(prog_fd(tc, d), (int)ifindex, dirs[d].attach_type, NULL);
	if (fd < 0) {
		err = -errno;
		bm_err("attach tcx %s to %s: %s (needs kernel 6.6 for tcx)", dirs[d].tag, ifname,
		       strerror(errno));
		return err;
	}
	pin_path(tc, d, ifname, path, sizeof(path));
	if (bpf_obj_pin(fd, path)) {
		err = -errno;
		bm_err("pin link %s: %s", path, strerror(errno));
	}
	close(fd);
	return err;
}

/* Pins of interfaces that no longer exist. */
static void drop_stale(struct bm_tc *tc)
{
	DIR *dir = opendir(tc->dp->pin_dir);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		for (int d = 0; d < K__MAX; d++) {
			char prefix[32];

			snprintf(prefix, sizeof(prefix), "link_tc_%s_", dirs[d].tag);
			if (!strncmp(de->d_name, prefix, strlen(prefix)))
				check_pin(tc, d, de->d_name + strlen(prefix), 0);
		}
	}
	closedir(dir);
}

static int sync_ifaces(struct bm_tc *tc, int update)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	int err = 0;

	if (!ifs)
		return -errno;
	tc->attached = 0;
	for (i = ifs; i->if_index; i++) {
		for (int d = 0; d < K__MAX; d++) {
			if (!matches(tc, d, i->if_name))
				continue;
			if (check_pin(tc, d, i->if_name, update)) {
				tc->attached++;
				continue;
			}
			if (attach(tc, d, i->if_name, i->if_index))
				err = -EIO;
			else
				tc->attached++;
		}
	}
	if_freenameindex(ifs);
	drop_stale(tc);
	return err;
}

int bm_tc_sync(struct bm_tc *tc)
{
	return tc->committed ? sync_ifaces(tc, 0) : 0;
}

int bm_tc_commit(struct bm_tc *tc)
{
	int err;

	/* Links of a previous agent get our programs; missing ones are made. */
	err = sync_ifaces(tc, 1);
	tc->committed = 1;
	bm_info("TC fallback on interfaces matching the patterns: %u links", tc->attached);
	return err;
}

static int split_patterns(char ***out, size_t *n, const char *patterns)
{
	char *copy, *save = NULL;

	if (!patterns)
		return 0;
	copy = strdup(patterns);
	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char **v = realloc(*out, (*n + 1) * sizeof(*v));

		if (!v || !(v[*n] = strdup(t))) {
			if (v)
				*out = v;
			free(copy);
			return -ENOMEM;
		}
		*out = v;
		(*n)++;
	}
	free(copy);
	return *n ? 0 : -EINVAL;
}

int bm_tc_open(struct bm_tc *tc, const struct bm_dp *dp, const char *patterns,
	       const char *host_patterns)
{
	int err;

	memset(tc, 0, sizeof(*tc));
	tc->dp = dp;
	err = split_patterns(&tc->patterns, &tc->n_patterns, patterns);
	if (!err)
		err = split_patterns(&tc->host_patterns, &tc->n_host_patterns, host_patterns);
	if (err) {
		bm_err("--tc-ifaces \"%s\" / --tc-host-ifaces \"%s\": no interface pattern",
		       patterns ? patterns : "", host_patterns ? host_patterns : "");
		goto fail;
	}
	/* The node's own processes reach VIPs through bm_svc0. */
	if (tc->n_host_patterns && bm_host_dev_ensure()) {
		err = -EIO;
		goto fail;
	}
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = dp->pin_dir);
	tc->skel = bm_tc_nat__open_opts(&opts);
	if (!tc->skel || bm_dp_prepare(dp, tc->skel->obj)) {
		err = -errno;
		bm_err("open BPF object tc_nat: %s", strerror(errno));
		goto fail;
	}
	err = bm_tc_nat__load(tc->skel);
	if (err) {
		bm_err("load BPF object tc_nat (pins in %s): %s", dp->pin_dir, strerror(-err));
		goto fail;
	}
	tc->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!tc->nl || mnl_socket_bind(tc->nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		bm_err("rtnetlink link events: %s", strerror(errno));
		goto fail;
	}
	/* Attached at commit, with the rest of the datapath (now, if that is done already). */
	return dp->committed ? bm_tc_commit(tc) : 0;
fail:
	bm_tc_close(tc);
	return err;
}

int bm_tc_event_fd(const struct bm_tc *tc)
{
	return tc->nl ? mnl_socket_get_fd(tc->nl) : -1;
}

void bm_tc_on_event(struct bm_tc *tc)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int changed = 0;

	/* Any link message: a sync is cheap and idempotent. An overrun (ENOBUFS) syncs too. */
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(tc->nl, buf, sizeof(buf));

		if (n > 0 || (n < 0 && errno == ENOBUFS)) {
			changed = 1;
			continue;
		}
		break;
	}
	if (changed && bm_tc_sync(tc))
		bm_warn("TC fallback: some interfaces could not be attached");
}

void bm_tc_close(struct bm_tc *tc)
{
	/* The links stay pinned: the TC path keeps working without the agent. */
	if (tc->nl)
		mnl_socket_close(tc->nl);
	bm_tc_nat__destroy(tc->skel);
	for (size_t i = 0; i < tc->n_patterns; i++)
		free(tc->patterns[i]);
	free(tc->patterns);
	for (size_t i = 0; i < tc->n_host_patterns; i++)
		free(tc->host_patterns[i]);
	free(tc->host_patterns);
	memset(tc, 0, sizeof(*tc));
}
