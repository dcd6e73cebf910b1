#!/usr/bin/env bash
# topology.sh up|down|status: one node and two pods, as a node of a cluster lays them out.
#
#   netns P-cli   eth0 10.200.0.10/24 ─veth─ vcli ┐
#                                                  br0 10.200.0.1/24   netns P-node
#   netns P-srv   eth0 10.200.0.20/24 ─veth─ vsrv ┘    (ip_forward on; the agent runs here)
#
# Both pods route everything via 10.200.0.1, so the Service VIP 10.201.0.10 (assigned nowhere)
# goes to the node, where nothing answers it: a scenario has to translate it. Pod-to-pod frames
# are bridged (br_netfilter off), so `direct` is L2 through one bridge.
# cgroups: <cgroup2>/P/pods/{cli,srv} (the pods; bpfmesh attaches to P/pods), P/mesh/<name>
# (mesh processes), P/ext/cli (a client outside the mesh). P is $BENCH_PREFIX (default bmb).
#
# The host's root namespace gets only two `unreachable` routes (for the pod and service CIDRs,
# removed by `down`): the veths are created with both ends inside the bench's namespaces.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

sysctl_ns() { in_ns "$1" sysctl -qw "${@:2}" >/dev/null; }

routes_up() {
	local r
	: >"$STATE/routes-added"
	for r in $POD_CIDR $SVC_CIDR; do
		[[ -n $(ip -4 route show table main exact "$r" type unreachable) ]] && continue
		[[ -z $(ip -4 route show table main exact "$r") ]] ||
			die "the root namespace routes $r somewhere: the bench's addresses are in use here"
		ip -4 route add unreachable "$r"
		echo "$r" >>"$STATE/routes-added"
	done
}

routes_down() {
	local r
	[[ -f $STATE/routes-added ]] || return 0
	while read -r r; do
		ip -4 route del unreachable "$r" 2>/dev/null || true
	done <"$STATE/routes-added"
	rm -f "$STATE/routes-added"
}

pod_up() {
	local ns=$1 hostif=$2 ip=$3
	ip netns add "$ns"
	ip -n "$NS_NODE" link add "$hostif" type veth peer name eth0 netns "$ns"
	ip -n "$NS_NODE" link set "$hostif" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$ip/$PREFIX_LEN" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via "$NODE_IP"
	sysctl_ns "$ns" net.ipv6.conf.all.disable_ipv6=1 net.ipv4.conf.all.accept_redirects=0 \
		net.ipv4.conf.eth0.accept_redirects=0 net.ipv4.ip_local_port_range="10000 65000" \
		net.ipv4.tcp_tw_reuse=1
}

# Refuse before touching anything: what exists under our names is not ours to remove.
preflight() {
	local ns
	for ns in "$NS_NODE" "$NS_CLI" "$NS_SRV"; do
		[[ ! -e /run/netns/$ns ]] || die "netns $ns already exists (run: BENCH_PREFIX=$BENCH_PREFIX $0 down)"
	done
	[[ ! -e $STATE ]] || die "$STATE already exists (run: BENCH_PREFIX=$BENCH_PREFIX $0 down)"
	[[ -n $CG2_MNT ]] || die "no cgroup2 mount in /proc/mounts"
}

up() {
	mkdir -p "$STATE"/{pids,log,conf}
	chmod 755 "$STATE"
	mkdir -p "$CG_CLI" "$CG_SRV" "$CG_MESH" "$CG_EXT"
	routes_up

	ip netns add "$NS_NODE"
	ip -n "$NS_NODE" link set lo up
	ip -n "$NS_NODE" link add br0 type bridge
	ip -n "$NS_NODE" addr add "$NODE_IP/$PREFIX_LEN" dev br0
	ip -n "$NS_NODE" link set br0 up
	sysctl_ns "$NS_NODE" net.ipv6.conf.all.disable_ipv6=1 net.ipv4.ip_forward=1 \
		net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.br0.send_redirects=0
	# Bridged pod-to-pod frames must not detour through the node's iptables.
	for t in iptables ip6tables arptables; do
		sysctl_ns "$NS_NODE" "net.bridge.bridge-nf-call-$t=0" 2>/dev/null || true
	done
	pod_up "$NS_CLI" vcli "$CLI_IP"
	pod_up "$NS_SRV" vsrv "$SRV_IP"
	in_ns "$NS_CLI" ping -c1 -W2 "$SRV_IP" >/dev/null || die "the client pod cannot reach the server pod"
	log "topology up: $NS_NODE (br0 $NODE_IP), $NS_CLI ($CLI_IP), $NS_SRV ($SRV_IP); cgroups under $CG_ROOT"
}

# Stop every process of this run: recorded PIDs first, then anything still in our namespaces or
# cgroups (nothing else can be there: we created them).
stop_all() {
	local f pid ns left=""
	for f in "$STATE"/pids/*.pid; do
		[[ -e $f ]] && stop_bg "$(basename "$f" .pid)"
	done
	for ns in "$NS_CLI" "$NS_SRV" "$NS_NODE"; do
		[[ -e /run/netns/$ns ]] && left+=" $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
	done
	if [[ -d $CG_ROOT ]]; then
		left+=" $(find "$CG_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')"
	fi
	left=$(echo "$left" | tr ' ' '\n' | grep -E '^[0-9]+$' | sort -u | tr '\n' ' ' || true)
	[[ -n ${left// /} ]] || return 0
	for pid in $left; do
		log "warning: stray pid $pid ($(cat /proc/"$pid"/comm 2>/dev/null)); stopping it"
		kill -TERM "$pid" 2>/dev/null || true
	done
	sleep 0.5
	for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
	sleep 0.1
}

# A bpfmesh datapath left by a scenario that did not finish its own cleanup.
pins_down() {
	local node
	[[ -f $STATE/bpfmesh-node ]] || return 0
	node=$(cat "$STATE/bpfmesh-node")
	[[ -x $AGENT_BIN ]] && timeout 10 "$AGENT_BIN" --cleanup --node "$node" >/dev/null 2>&1
	[[ ! -d /sys/fs/bpf/bpfmesh/$node ]] || rm -rf "/sys/fs/bpf/bpfmesh/$node"
	rm -f "$STATE/bpfmesh-node"
}

down() {
	local ns
	stop_all
	pins_down
	for ns in "$NS_CLI" "$NS_SRV" "$NS_NODE"; do
		[[ ! -e /run/netns/$ns ]] || ip netns del "$ns"
	done
	if [[ -d $CG_ROOT ]]; then
		find "$CG_ROOT" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
		rmdir "$CG_ROOT" 2>/dev/null || log "warning: could not remove $CG_ROOT (processes left?)"
	fi
	routes_down
	rm -rf "$STATE"
	log "topology down ($BENCH_PREFIX)"
}

status() {
	local ns
	for ns in "$NS_NODE" "$NS_CLI" "$NS_SRV"; do
		if [[ -e /run/netns/$ns ]]; then
			echo "== $ns"
			ip -n "$ns" -br addr
			echo "pids: $(ip netns pids "$ns" | tr '\n' ' ')"
			in_ns "$ns" iptables-save -t nat 2>/dev/null | grep -E '^-A' || true
		else
			echo "== $ns: absent"
		fi
	done
}

case "${1:-}" in
up)
	preflight
	trap 'rc=$?; if [[ $rc -ne 0 ]]; then log "up failed; cleaning up"; down; fi' EXIT
	up
	trap - EXIT
	;;
down) down ;;
status) status ;;
*)
	echo "usage: [BENCH_PREFIX=name] $0 up|down|status" >&2
	exit 2
	;;
esac
