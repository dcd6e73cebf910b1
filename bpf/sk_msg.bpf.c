// SPDX-License-Identifier: GPL-2.0
/* sk_msg on bm_sockhash: data a socket sends goes straight into its same-node peer's receive
 * queue (bpf_msg_redirect_hash), skipping TCP, IP, the qdisc and the veth. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/sockkey.h"

SEC("sk_msg")
int bm_sk_msg(struct sk_msg_md *msg)
{
	struct bm_sockkey k = {}, peer = {};
	__u32 *st;
	long ret;

	if (!BM_SOCKKEY_FROM(msg, &k))
		return SK_PASS;
	st = bpf_map_lookup_elem(&bm_byp, &k);
	/* Fails open: a socket whose state is lost sends through TCP. */
	if (!st || *st == BM_BYP_TCP)
		return SK_PASS;
	bm_sockkey_swap(&k, &peer);
	ret = bpf_msg_redirect_hash(msg, &bm_sockhash, &peer, BPF_F_INGRESS);
	if (*st == BM_BYP_UNDECIDED)
		*st = ret == SK_PASS ? BM_BYP_REDIRECT : BM_BYP_TCP;
	if (ret == SK_PASS)
		bm_count(BM_STAT_BYPASS_MSG);
	/* Not redirected (the peer is not in the map, or left it): plain TCP. */
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
