/* udp.c - UDP echo on [::] (dual-stack): each datagram goes back to its sender from the
 * address it was sent to; one starting with WHOAMI gets the identity line instead. */
#include "echo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define BM_UDP_DGRAM_MAX 65536
#define BM_UDP_BATCH 64		/* datagrams per wakeup, for fairness with TCP */

struct bm_udp {
	struct bm_watch w;
	struct bm_echo *echo;
	uint16_t port;
};

/* Replies from the destination address of the request, so a client that connected its
 * socket to that address accepts the answer even when the host has several addresses. */
static void udp_reply(struct bm_udp *u, const struct sockaddr_in6 *peer,
		      const struct in6_pktinfo *dst, const void *data, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_name = (void *)peer, .msg_namelen = sizeof(*peer),
			      .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (dst) {
		struct cmsghdr *cm;
		struct in6_pktinfo pi = { .ipi6_addr = dst->ipi6_addr };

		/* The interface matters only for link-local addresses; elsewhere routing picks. */
		if (IN6_IS_ADDR_LINKLOCAL(&dst->ipi6_addr))
			pi.ipi6_ifindex = dst->ipi6_ifindex;
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = IPPROTO_IPV6;
		cm->cmsg_type = IPV6_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	}
	n = sendmsg(u->w.fd, &msg, MSG_DONTWAIT);
	/* Sent to a broadcast or multicast address: that cannot be a source, let routing pick. */
	if (n < 0 && errno == EINVAL && dst) {
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
		n = sendmsg(u->w.fd, &msg, MSG_DONTWAIT);
	}
	/* A full send buffer drops the reply, as the network could have. */
}

static void udp_on_readable(struct bm_watch *w, uint32_t events)
{
	struct bm_udp *u = bm_container_of(w, struct bm_udp, w);
	struct bm_echo *e = u->echo;

	(void)events;
	for (int i = 0; i < BM_UDP_BATCH; i++) {
		union {
			char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + 256];
			struct cmsghdr align;
		} ctl;
		struct sockaddr_in6 peer;
		struct iovec iov = { .iov_base = e->dgram, .iov_len = BM_UDP_DGRAM_MAX };
		struct msghdr msg = { .msg_name = &peer, .msg_namelen = sizeof(peer),
				      .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
		struct in6_pktinfo *dst = NULL;
		ssize_t n = recvmsg(w->fd, &msg, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				fprintf(stderr, "bm-echo: recvmsg udp port %u: %s\n", u->port,
					strerror(errno));
			return;
		}
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
			if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO)
				dst = (struct in6_pktinfo *)CMSG_DATA(cm);
		if (n >= 6 && !memcmp(e->dgram, "WHOAMI", 6)) {
			char local[BM_ECHO_ADDRSTRLEN], remote[BM_ECHO_ADDRSTRLEN];
			struct sockaddr_in6 self = { .sin6_family = AF_INET6,
						     .sin6_port = htons(u->port) };
			struct bm_buf line = { 0 };

			if (dst) {
				self.sin6_addr = dst->ipi6_addr;
				if (IN6_IS_ADDR_LINKLOCAL(&dst->ipi6_addr))
					self.sin6_scope_id = (uint32_t)dst->ipi6_ifindex;
			}
			bm_addr_format((struct sockaddr *)&self, local, sizeof(local));
			bm_addr_format((struct sockaddr *)&peer, remote, sizeof(remote));
			if (bm_ident_line(e, &line, local, remote) == 0)
				udp_reply(u, &peer, dst, line.data, line.len);
			bm_buf_free(&line);
			continue;
		}
		udp_reply(u, &peer, dst, e->dgram, (size_t)n);
	}
}

/* Binds every --udp port; on failure says which port and why. */
int bm_udp_open(struct bm_echo *e)
{
	int one = 1;

	e->udp = calloc(e->cfg.nudp ? e->cfg.nudp : 1, sizeof(*e->udp));
	e->dgram = malloc(BM_UDP_DGRAM_MAX);
	if (!e->udp || !e->dgram)
		return -ENOMEM;
	for (size_t i = 0; i < e->cfg.nudp; i++) {
		struct bm_udp *u = &e->udp[i];
		int fd = bm_bind_any(SOCK_DGRAM, e->cfg.udp[i]), err;

		u->echo = e;
		u->port = e->cfg.udp[i];
		bm_watch_init(&u->w, fd, udp_on_readable);
		if (fd < 0) {
			fprintf(stderr, "bm-echo: bind udp [::]:%u: %s\n", u->port, strerror(-fd));
			return fd;
		}
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) < 0) {
			err = -errno;
			fprintf(stderr, "bm-echo: IPV6_RECVPKTINFO on udp port %u: %s\n", u->port,
				strerror(-err));
			return err;
		}
		err = bm_loop_watch(&e->loop, &u->w, EPOLLIN);
		if (err) {
			fprintf(stderr, "bm-echo: epoll_ctl udp [::]:%u: %s\n", u->port, strerror(-err));
			return err;
		}
	}
	return 0;
}

void bm_udp_close(struct bm_echo *e)
{
	if (e->udp) {
		for (size_t i = 0; i < e->cfg.nudp; i++)
			if (e->udp[i].echo)
				bm_loop_close(&e->loop, &e->udp[i].w);
	}
	free(e->udp);
	free(e->dgram);
	e->udp = NULL;
	e->dgram = NULL;
}
