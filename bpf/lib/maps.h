/* Every map of the L4 datapath. Each object that includes this declares them all; libbpf
 * pins them by name under the node's directory and later objects reuse the same maps. */
#ifndef BM_BPF_MAPS_H
#define BM_BPF_MAPS_H

#include "bm_svc.h"

/* (VIP, port, proto) -> service port: which route to take. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BM_MAX_SVC);
	__type(key, struct bm_svc_key);
	__type(value, struct bm_svc_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_svc SEC(".maps");

/* route id -> weighted backend sets (VirtualService tcp route weights). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BM_MAX_ROUTES);
	__type(key, __u32);
	__type(value, struct bm_route);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_route SEC(".maps");

/* set id -> size and load-balancing algorithm of one backend set (service or subset). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BM_MAX_SETS);
	__type(key, __u32);
	__type(value, struct bm_set);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_set SEC(".maps");

/* (set id, index) -> backend id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BM_MAX_SLOTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bm_slot_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_slot SEC(".maps");

/* backend id -> endpoint address and port. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BM_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct bm_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_backend SEC(".maps");

/* backend id -> connections open to it (LEAST_REQUEST), kept by sockops. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BM_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_active SEC(".maps");

/* maglev_id * BM_MAGLEV_M + hash % BM_MAGLEV_M -> backend id (consistentHash rings). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BM_MAX_MAGLEV * BM_MAGLEV_M);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_maglev SEC(".maps");

/* cgroup id -> local workload (who is calling). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BM_MAX_WORKLOADS);
	__type(key, __u64);
	__type(value, struct bm_workload);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_wl SEC(".maps");

/* (service port, workload) -> route id: VirtualService matches on sourceLabels. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BM_MAX_SRCROUTES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bm_srcroute_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_srcroute SEC(".maps");

/* socket -> what the connect hook did to it (VIP, backend). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct bm_sock);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_sk SEC(".maps");

/* (socket cookie, backend) -> VIP, for replies to unconnected UDP sends. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BM_MAX_REVNAT);
	__type(key, struct bm_revnat_key);
	__type(value, struct bm_revnat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_revnat SEC(".maps");

/* one end of a same-node connection -> its socket: sk_msg redirects to the other end. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, BM_MAX_SOCKS);
	__type(key, struct bm_sockkey);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_sockhash SEC(".maps");

/* one end of a connection -> its bypass state (enum bm_byp): awaited server end, or whether
 * this end's data goes to the peer socket directly or through TCP. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BM_MAX_SOCKS);
	__type(key, struct bm_sockkey);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_byp SEC(".maps");

/* 0 -> run-time switches (struct bm_cfg). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bm_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_cfg SEC(".maps");

/* TC path flows: (src, dst, ports, proto) as the packet has it -> address to write. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BM_MAX_CT);
	__type(key, struct bm_ct_key);
	__type(value, struct bm_ct_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_ct SEC(".maps");

/* connection to the agent's listener (client and agent ends) -> original destination. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BM_MAX_ORIG);
	__type(key, struct bm_orig_key);
	__type(value, struct bm_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_orig SEC(".maps");

/* The agent's HTTP listeners: [0] IPv4, [1] IPv6. A socket leaves the map when it closes, so
 * while the agent is down (a restart) connections stay at L4 instead of being refused. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_l7_lsn SEC(".maps");

/* enum bm_stat -> per-CPU counters. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BM_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_stats SEC(".maps");

/* 0 -> version record of these pins (struct bm_version). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bm_version);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bm_meta SEC(".maps");

static __always_inline void bm_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&bm_stats, &idx);

	if (v)
		*v += 1;
}

#endif
