// SPDX-License-Identifier: GPL-2.0
/* TC fallback: clients the connect hook cannot see still reach Service VIPs. On a pod's veth
 * (a pod outside the mesh's cgroup), packets to a VIP are rewritten to a backend chosen with the
 * same tables (DNAT, flow kept in bm_ct) and replies back to the VIP; the node's own processes
 * reach VIPs through bm_svc0, a device the agent routes them to, and are re-routed from there. */
#include "lib/common.h"
#include "lib/svc.h"

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_HLEN 14
#define IP_CSUM_OFF (ETH_HLEN + 10)
#define BPF_F_PSEUDO_HDR_ (1ULL << 4)
#define BPF_F_MARK_MANGLED_0_ (1ULL << 5)

/* Where the fields of one packet are. */
struct bm_pkt {
	struct bm_ct_key k;  /* src, dst, ports, proto as on the wire */
	__u32 l4_off;        /* offset of the TCP/UDP header */
	__u8 v4;
	__u8 syn_only;       /* TCP SYN without ACK: a new flow */
};

static __always_inline int bm_parse(struct __sk_buff *skb, struct bm_pkt *p)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u8 proto;

	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)))
			return -1; /* options or fragments: left to the stack */
		bm_addr_from_v4(p->k.src, ip->saddr);
		bm_addr_from_v4(p->k.dst, ip->daddr);
		proto = ip->protocol;
		p->l4_off = ETH_HLEN + sizeof(*ip);
		p->v4 = 1;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return -1;
		__builtin_memcpy(p->k.src, &ip6->saddr, 16);
		__builtin_memcpy(p->k.dst, &ip6->daddr, 16);
		proto = ip6->nexthdr; /* extension headers: not translated */
		p->l4_off = ETH_HLEN + sizeof(*ip6);
		p->v4 = 0;
	} else {
		return -1;
	}
	if (proto == BM_IPPROTO_TCP) {
		struct tcphdr *th = data + p->l4_off;

		if ((void *)(th + 1) > end)
			return -1;
		p->k.sport = th->source;
		p->k.dport = th->dest;
		p->syn_only = th->syn && !th->ack;
	} else if (proto == BM_IPPROTO_UDP) {
		struct udphdr *uh = data + p->l4_off;

		if ((void *)(uh + 1) > end)
			return -1;
		p->k.sport = uh->source;
		p->k.dport = uh->dest;
		p->syn_only = 0;
	} else {
		return -1;
	}
	p->k.proto = proto;
	return 0;
}

/* Rewrite the destination (dst = 1) or source address and port, fixing the checksums. */
static __always_inline int bm_rewrite(struct __sk_buff *skb, const struct bm_pkt *p, int dst,
				      const __u8 *addr, __be16 port)
{
	__u32 l4_csum_off = p->l4_off + (p->k.proto == BM_IPPROTO_TCP ? 16 : 6);
	__u64 l4_flags = BPF_F_PSEUDO_HDR_ | (p->k.proto == BM_IPPROTO_UDP ? BPF_F_MARK_MANGLED_0_ : 0);
	__be16 old_port = dst ? p->k.dport : p->k.sport;
	const __u8 *old = dst ? p->k.dst : p->k.src;

	if (p->v4) {
		__be32 o = bm_addr_to_v4(old), n = bm_addr_to_v4(addr);
		__u32 ip_off = ETH_HLEN + (dst ? 16 : 12);

		if (bpf_l4_csum_replace(skb, l4_csum_off, o, n, l4_flags | 4) ||
		    bpf_l3_csum_replace(skb, IP_CSUM_OFF, o, n, 4) ||
		    bpf_skb_store_bytes(skb, ip_off, &n, 4, 0))
			return -1;
	} else {
		__u32 ip_off = ETH_HLEN + (dst ? 24 : 8);
		__s64 diff = bpf_csum_diff((__be32 *)old, 16, (__be32 *)addr, 16, 0);

		if (diff < 0 || bpf_l4_csum_replace(skb, l4_csum_off, 0, (__u32)diff, l4_flags) ||
		    bpf_skb_store_bytes(skb, ip_off, addr, 16, 0))
			return -1;
	}
	if (bpf_l4_csum_replace(skb, l4_csum_off, old_port, port, (l4_flags & ~BPF_F_PSEUDO_HDR_) | 2) ||
	    bpf_skb_store_bytes(skb, p->l4_off + (dst ? 2 : 0), &port, 2, 0))
		return -1;
	return 0;
}

/* A new flow to a service address: choose as the connect hook would (useSourceIp hashes the
 * packet's source), then record both directions. 0, 1 not a service, -errno no backend. */
static __always_inline int bm_tc_new_flow(const struct bm_pkt *p, struct bm_ct_val *out)
{
	struct bm_svc_key key = {};
	struct bm_svc_val *svc;
	struct bm_pick pick = {};
	struct bm_set *set;
	__u32 set_id;
	int err;

	__builtin_memcpy(key.addr, p->k.dst, 16);
	key.port = p->k.dport;
	key.proto = p->k.proto;
	svc = bpf_map_lookup_elem(&bm_svc, &key);
	if (!svc || (svc->flags & BM_SVC_F_PASSTHROUGH))
		return 1;
	err = bm_route_set(svc, 0, &set_id, &set);
	if (!err)
		err = bm_set_choose(set_id, set, bm_hash_addr(p->k.src, BM_SRC_HASH_SEED), &pick);
	if (!err && pick.keep)
		return 1;
	if (!err && p->v4 != bm_addr_is_v4(pick.addr))
		err = -BM_ECONNREFUSED;
	if (err)
		return err;

	struct bm_ct_key rk = {};
	struct bm_ct_val rv = { .port = p->k.dport, .reverse = 1, .backend_id = pick.backend_id };

	__builtin_memcpy(out->addr, pick.addr, 16);
	out->port = pick.port;
	out->backend_id = pick.backend_id;
	__builtin_memcpy(rk.src, pick.addr, 16);
	__builtin_memcpy(rk.dst, p->k.src, 16);
	rk.sport = pick.port;
	rk.dport = p->k.sport;
	rk.proto = p->k.proto;
	__builtin_memcpy(rv.addr, p->k.dst, 16);
	if (bpf_map_update_elem(&bm_ct, &rk, &rv, BPF_ANY) ||
	    bpf_map_update_elem(&bm_ct, &p->k, out, BPF_ANY))
		return -BM_ECONNREFUSED; /* without the reply entry the flow cannot work */
	bm_count(BM_STAT_TC_NEW);
	return 0;
}

/* Translate a packet to a VIP: 1 rewritten to *to, 0 not a service packet, -1 drop. */
static __always_inline int bm_tc_dnat(struct __sk_buff *skb, struct bm_pkt *p, struct bm_ct_val *to)
{
	struct bm_ct_val *v;
	int err;

	if (bm_parse(skb, p))
		return 0;
	v = bpf_map_lookup_elem(&bm_ct, &p->k);
	/* A flow is chosen once: by its first packet, or again when its entry was evicted
	 * (a TCP segment that is not a SYN then reaches a backend that resets it). */
	if (!v || p->syn_only) {
		err = bm_tc_new_flow(p, to);
		if (err > 0)
			return 0; /* not a service address */
		if (err < 0) {
			/* Fails closed, as the connect hook refuses: nothing listens on a VIP. */
			bm_count(BM_STAT_TC_DROP);
			return -1;
		}
	} else {
		*to = *v;
	}
	if (bm_rewrite(skb, p, 1, to->addr, to->port))
		return -1;
	bm_count(BM_STAT_TC_NAT);
	return 1;
}

/* Ingress of the node side of a pod's veth: packets the pod sends. */
SEC("tc")
int bm_tc_from_pod(struct __sk_buff *skb)
{
	struct bm_pkt p = {};
	struct bm_ct_val to = {};

	return bm_tc_dnat(skb, &p, &to) < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

/* Egress of bm_svc0: the node's own processes reach VIPs through it (the agent routes every VIP
 * there). Translated, the packet is routed again for its backend, as if it had come in on
 * bm_svc0, and sent out of the interface that reaches it. */
SEC("tc")
int bm_tc_host_out(struct __sk_buff *skb)
{
	struct bpf_fib_lookup f = {};
	struct bm_pkt p = {};
	struct bm_ct_val to = {};
	long rc;

	if (bm_tc_dnat(skb, &p, &to) <= 0)
		return TC_ACT_SHOT; /* nothing else is routed to bm_svc0 */
	f.ifindex = skb->ifindex;
	f.l4_protocol = p.k.proto;
	f.sport = p.k.sport;
	f.dport = to.port;
	if (p.v4) {
		f.family = AF_INET;
		f.ipv4_src = bm_addr_to_v4(p.k.src);
		f.ipv4_dst = bm_addr_to_v4(to.addr);
	} else {
		f.family = AF_INET6;
		__builtin_memcpy(f.ipv6_src, p.k.src, 16);
		__builtin_memcpy(f.ipv6_dst, to.addr, 16);
	}
	rc = bpf_fib_lookup(skb, &f, sizeof(f), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		bm_count(BM_STAT_TC_DROP); /* no route to the backend (or it is on this host) */
		return TC_ACT_SHOT;
	}
	return bpf_redirect_neigh(f.ifindex, 0, 0, 0);
}

/* Replies of translated flows get the VIP back as their source: on the egress of the node side
 * of a pod's veth (packets to the pod), and on the ingress of the node's own interfaces
 * (replies to the node's processes). */
SEC("tc")
int bm_tc_to_pod(struct __sk_buff *skb)
{
	struct bm_pkt p = {};
	struct bm_ct_val *v;

	if (bm_parse(skb, &p))
		return TC_ACT_OK;
	v = bpf_map_lookup_elem(&bm_ct, &p.k);
	if (!v)
		return TC_ACT_OK;
	if (bm_rewrite(skb, &p, 0, v->addr, v->port))
		return TC_ACT_SHOT;
	bm_count(BM_STAT_TC_REVNAT);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
