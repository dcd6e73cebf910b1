/* The agent's side of a connection the kernel redirected to it: where the client was going
 * (bm_orig, filed by sockops under the 4-tuple), and joining the same-node bypass. */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "bm_svc.h"
#include "dp.h"

/* 16-byte address (v4-mapped for IPv4) and network-order port of a socket address. */
static int addr16(const struct sockaddr_storage *ss, __u8 *a, __be16 *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		memset(a, 0, 10);
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &s4->sin_addr, 4);
		*port = s4->sin_port;
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		memcpy(a, &s6->sin6_addr, 16);
		*port = s6->sin6_port;
		return 0;
	}
	return -EAFNOSUPPORT;
}

static int ends(int fd, __u8 *local, __be16 *lport, __u8 *remote, __be16 *rport)
{
	struct sockaddr_storage l, r;
	socklen_t ll = sizeof(l), rl = sizeof(r);

	if (getsockname(fd, (struct sockaddr *)&l, &ll) || getpeername(fd, (struct sockaddr *)&r, &rl))
		return -errno;
	if (addr16(&l, local, lport) || addr16(&r, remote, rport))
		return -EAFNOSUPPORT;
	return 0;
}

/* The bm_sockkey of a connected socket's end, as sockops and sk_msg build it. */
static int sock_key(int fd, struct bm_sockkey *k)
{
	__be16 lp, rp;
	int err;

	memset(k, 0, sizeof(*k));
	err = ends(fd, k->local, &lp, k->remote, &rp);
	if (err)
		return err;
	k->local_port = ntohs(lp);
	k->remote_port = ntohs(rp);
	return 0;
}

int bm_dp_orig_take(const struct bm_dp *dp, int fd, struct bm_orig *out)
{
	struct bm_orig_key k;
	int err;

	memset(&k, 0, sizeof(k));
	err = ends(fd, k.agent, &k.agent_port, k.client, &k.client_port);
	if (err)
		return err;
	if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_ORIG], &k, out))
		return -ENOENT;
	bpf_map_delete_elem(dp->map_fd[BM_MAP_ORIG], &k);
	return 0;
}

int bm_dp_bypass_join(const struct bm_dp *dp, int fd)
{
	struct bm_sockkey k;
	__u32 st = 0, undecided = BM_BYP_UNDECIDED;
	__u64 sock = (__u64)fd;
	int err = sock_key(fd, &k);

	if (err)
		return err;
	if (bpf_map_lookup_elem(dp->map_fd[BM_MAP_BYP], &k, &st) || st != BM_BYP_AWAIT)
		return 0;
	if (bpf_map_update_elem(dp->map_fd[BM_MAP_BYP], &k, &undecided, BPF_ANY) ||
	    bpf_map_update_elem(dp->map_fd[BM_MAP_SOCKHASH], &k, &sock, BPF_ANY))
		return -errno;
	return 1;
}

int bm_dp_l7_listener_set(const struct bm_dp *dp, bool v6, int fd)
{
	__u32 k = v6 ? 1 : 0;
	__u64 v = (__u64)fd;

	return bpf_map_update_elem(dp->map_fd[BM_MAP_L7LSN], &k, &v, BPF_ANY) ? -errno : 0;
}

/* The agent's own connection to an endpoint on this node, bound but not connected yet: its
 * end is filed undecided and the server end awaited, before the handshake, so that sockops
 * adds the server end when it is established (as for a pod's client end). */
int bm_dp_bypass_expect(const struct bm_dp *dp, int fd, const struct sockaddr_storage *to)
{
	struct sockaddr_storage l;
	socklen_t ll = sizeof(l);
	struct bm_sockkey k, peer;
	__u32 undecided = BM_BYP_UNDECIDED, await = BM_BYP_AWAIT;
	__be16 lp, rp;

	memset(&k, 0, sizeof(k));
	memset(&peer, 0, sizeof(peer));
	if (getsockname(fd, (struct sockaddr *)&l, &ll))
		return -errno;
	if (addr16(&l, k.local, &lp) || addr16(to, k.remote, &rp))
		return -EAFNOSUPPORT;
	k.local_port = ntohs(lp);
	k.remote_port = ntohs(rp);
	if (!k.local_port)
		return -EINVAL; /* not bound */
	memcpy(peer.local, k.remote, 16);
	memcpy(peer.remote, k.local, 16);
	peer.local_port = k.remote_port;
	peer.remote_port = k.local_port;
	if (bpf_map_update_elem(dp->map_fd[BM_MAP_BYP], &k, &undecided, BPF_ANY) ||
	    bpf_map_update_elem(dp->map_fd[BM_MAP_BYP], &peer, &await, BPF_ANY))
		return -errno;
	return 0;
}

/* ... and once it is connected, its end joins bm_sockhash (the kernel takes only established
 * sockets). Whichever end is not there at its first send keeps TCP for good. */
int bm_dp_bypass_add(const struct bm_dp *dp, int fd)
{
	struct bm_sockkey k;
	__u64 sock = (__u64)fd;
	int err = sock_key(fd, &k);

	if (err)
		return err;
	return bpf_map_update_elem(dp->map_fd[BM_MAP_SOCKHASH], &k, &sock, BPF_ANY) ? -errno : 0;
}
