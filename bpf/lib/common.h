/* What every kernel program includes: vmlinux types, libbpf helpers, errno values,
 * verdicts and address helpers. */
#ifndef BM_BPF_COMMON_H
#define BM_BPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define BM_ENOENT 2
#define BM_ECONNREFUSED 111

/* cgroup sock_addr verdicts */
#define SYS_REJECT 0
#define SYS_PROCEED 1

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#define BM_IPPROTO_TCP 6
#define BM_IPPROTO_UDP 17

/* ::ffff:a.b.c.d from a network-order IPv4 address. */
static __always_inline void bm_addr_from_v4(__u8 *a, __u32 ip4)
{
	__builtin_memset(a, 0, 10);
	a[10] = 0xff;
	a[11] = 0xff;
	__builtin_memcpy(a + 12, &ip4, 4);
}

static __always_inline __u32 bm_addr_to_v4(const __u8 *a)
{
	__u32 ip4;

	__builtin_memcpy(&ip4, a + 12, 4);
	return ip4;
}

static __always_inline int bm_addr_eq(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* The IPv6 address of a sock_addr context (four 32-bit reads: narrower ones are rejected). */
static __always_inline void bm_ctx_ip6(const struct bpf_sock_addr *ctx, __u8 *a)
{
	__u32 *w = (__u32 *)a;

	w[0] = ctx->user_ip6[0];
	w[1] = ctx->user_ip6[1];
	w[2] = ctx->user_ip6[2];
	w[3] = ctx->user_ip6[3];
}

/* Write address and port (network order) into a sock_addr context of family v4 or v6. */
static __always_inline void bm_ctx_store(struct bpf_sock_addr *ctx, const __u8 *addr, __be16 port,
					 int v4)
{
	if (v4) {
		ctx->user_ip4 = bm_addr_to_v4(addr);
	} else {
		const __u32 *w = (const __u32 *)addr;

		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
	}
	ctx->user_port = (__u32)port;
}

#endif
