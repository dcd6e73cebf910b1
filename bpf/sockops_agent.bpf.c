// SPDX-License-Identifier: GPL-2.0
/* sockops on the agent's own cgroup: a connection a pod's client made to the agent's HTTP
 * listener (redirected there by the connect hook) joins the same-node bypass from the agent's
 * end while the handshake completes, before the client's first byte; joined later from
 * userspace, that byte would already have gone through TCP, and the pair with it for good.
 * The agent's own upstream connections join from userspace (it sends first on them). */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/sockkey.h"
#include "lib/bypass.h"

SEC("sockops")
int bm_sockops_agent(struct bpf_sock_ops *skops)
{
	if (skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		bm_bypass_server(skops);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
