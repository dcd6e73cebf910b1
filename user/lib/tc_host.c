/* The node's own processes and the TC fallback: a sink device, bm_svc0, with a route for every
 * service address, so their packets to a VIP leave through it and meet bm_tc_host_out there.
 * Links and routes are made with rtnetlink (libmnl); routes carry our protocol number. */
#include "tc_host.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define BM_RTPROT 0x62 /* protocol of our routes ("b"), so we find and remove only ours */

struct route {
	int family;
	uint8_t addr[16];
};

struct routes {
	struct route *v;
	size_t n;
};

/* One request, its acknowledgement (or the dump's messages through cb). 0 or -errno. */
static int nl_talk(struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned portid, seq = (unsigned)time(NULL);
	int err = 0, ret;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = -errno;
		goto out;
	}
	while ((ret = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		ret = mnl_cb_run(buf, (size_t)ret, seq, portid, cb, data);
		if (ret <= 0)
			break;
	}
	if (ret < 0)
		err = -errno;
out:
	mnl_socket_close(nl);
	return err;
}

static int write_sysctl(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Create bm_svc0 of the given kind (or only bring it up when idx says it exists). */
static int link_up(unsigned idx, const char *kind)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	struct nlattr *nest;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (idx ? 0 : NLM_F_CREATE | NLM_F_EXCL);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = (int)idx;
	/* NOARP: packets routed here reach the TC hook without any neighbour resolution. */
	ifm->ifi_flags = IFF_UP | IFF_NOARP;
	ifm->ifi_change = IFF_UP | IFF_NOARP;
	if (!idx) {
		mnl_attr_put_strz(nlh, IFLA_IFNAME, BM_SVC_DEV);
		nest = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
		mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
		mnl_attr_nest_end(nlh, nest);
	}
	return nl_talk(nlh, NULL, NULL);
}

int bm_host_dev_ensure(void)
{
	char path[128];
	unsigned idx = if_nametoindex(BM_SVC_DEV);
	int err;

	/* A dummy device where the kernel has one (CONFIG_DUMMY), else an ifb device: both are
	 * NOARP Ethernet sinks, and bm_tc_host_out takes every packet before their xmit. */
	err = link_up(idx, "dummy");
	if (err == -EOPNOTSUPP && !idx)
		err = link_up(0, "ifb");
	if (err) {
		bm_err("create and bring up %s (dummy or ifb): %s", BM_SVC_DEV, strerror(-err));
		return err;
	}
	/* bm_tc_host_out routes packets as if they came in on bm_svc0: forwarding there. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/forwarding", BM_SVC_DEV);
	err = write_sysctl(path, "1");
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/forwarding", BM_SVC_DEV);
	if (!err)
		err = write_sysctl(path, "1");
	if (err)
		bm_err("enable forwarding on %s: %s", BM_SVC_DEV, strerror(-err));
	return err;
}

int bm_host_dev_remove(void)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	unsigned idx = if_nametoindex(BM_SVC_DEV);

	if (!idx)
		return 0;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_DELLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = (int)idx;
	return nl_talk(nlh, NULL, NULL);
}

static int route_msg(int type, int flags, const struct route *r, unsigned ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	nlh->nlmsg_type = (uint16_t)type;
	nlh->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)r->family;
	rtm->rtm_dst_len = r->family == AF_INET ? 32 : 128;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = BM_RTPROT;
	rtm->rtm_scope = RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_DST, r->family == AF_INET ? 4 : 16,
		     r->family == AF_INET ? r->addr + 12 : r->addr);
	mnl_attr_put_u32(nlh, RTA_OIF, ifindex);
	return nl_talk(nlh, NULL, NULL);
}

static int add_route(struct routes *rs, int family, const uint8_t *addr16)
{
	struct route *v;

	for (size_t i = 0; i < rs->n; i++)
		if (rs->v[i].family == family && !memcmp(rs->v[i].addr, addr16, 16))
			return 0;
	v = realloc(rs->v, (rs->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	rs->v = v;
	v[rs->n].family = family;
	memcpy(v[rs->n].addr, addr16, 16);
	rs->n++;
	return 0;
}

/* Dump callback: our routes (by protocol) into a list. */
static int collect_route(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	uint8_t addr[16] = { 0 };
	int have = 0;

	if (rtm->rtm_protocol != BM_RTPROT || rtm->rtm_table != RT_TABLE_MAIN)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(*rtm)) {
		if (mnl_attr_get_type(a) != RTA_DST)
			continue;
		if (rtm->rtm_family == AF_INET && mnl_attr_get_payload_len(a) == 4) {
			addr[10] = addr[11] = 0xff;
			memcpy(addr + 12, mnl_attr_get_payload(a), 4);
			have = 1;
		} else if (rtm->rtm_family == AF_INET6 && mnl_attr_get_payload_len(a) == 16) {
			memcpy(addr, mnl_attr_get_payload(a), 16);
			have = 1;
		}
	}
	if (have && add_route(data, rtm->rtm_family, addr))
		return MNL_CB_ERROR;
	return MNL_CB_OK;
}

static int dump_ours(struct routes *rs)
{
	for (int f = 0; f < 2; f++) {
		char buf[MNL_SOCKET_BUFFER_SIZE];
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
		struct rtmsg *rtm;
		int err;

		nlh->nlmsg_type = RTM_GETROUTE;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
		rtm->rtm_family = f == 0 ? AF_INET : AF_INET6;
		err = nl_talk(nlh, collect_route, rs);
		if (err)
			return err;
	}
	return 0;
}

static int v4_mapped(const uint8_t *a)
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return !memcmp(a, pfx, 12);
}

int bm_host_routes_sync(const struct bm_tables *t)
{
	struct routes want = { 0 }, have = { 0 };
	unsigned idx = if_nametoindex(BM_SVC_DEV);
	int err = 0, added = 0, removed = 0;

	if (!idx)
		return -ENODEV;
	for (size_t i = 0; i < t->n_svc && !err; i++) {
		const uint8_t *a = t->svc[i].key.addr;

		/* A passthrough address (resolution NONE) is a real one: never route it here. */
		if (t->svc[i].flags & BM_SVC_F_PASSTHROUGH)
			continue;
		err = add_route(&want, v4_mapped(a) ? AF_INET : AF_INET6, a);
	}
	if (!err)
		err = dump_ours(&have);
	for (size_t i = 0; i < want.n && !err; i++) {
		int present = 0;

		for (size_t j = 0; j < have.n && !present; j++)
			present = have.v[j].family == want.v[i].family &&
				  !memcmp(have.v[j].addr, want.v[i].addr, 16);
		if (present)
			continue;
		err = route_msg(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &want.v[i], idx);
		added += !err;
	}
	for (size_t j = 0; j < have.n && !err; j++) {
		int wanted = 0;

		for (size_t i = 0; i < want.n && !wanted; i++)
			wanted = have.v[j].family == want.v[i].family &&
				 !memcmp(have.v[j].addr, want.v[i].addr, 16);
		if (wanted)
			continue;
		err = route_msg(RTM_DELROUTE, 0, &have.v[j], idx);
		removed += !err;
	}
	if (err)
		bm_err("routes of service addresses to %s: %s", BM_SVC_DEV, strerror(-err));
	else if (added || removed)
		bm_info("%s: %d service address routes added, %d removed (%zu in all)", BM_SVC_DEV,
			added, removed, want.n);
	free(want.v);
	free(have.v);
	return err;
}
