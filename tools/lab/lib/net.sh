# shellcheck shell=bash
# The lab's network: the underlay namespace and its bridge, node namespaces with cni0 and
# routes, pod namespaces on a veth into their node, and the root namespace's unreachable
# routes that keep lab addresses on this machine.

# Run in a namespace without `ip netns exec` (which would remount /sys).
in_netns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

netns_add() {
	[[ -e /run/netns/$1 ]] && die "network namespace $1 already exists (another run with prefix $PREFIX? try: lab --prefix $PREFIX down)"
	ip netns add "$1"
	# Addresses usable at once: no duplicate address detection inside the lab.
	in_netns "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip -n "$1" link set lo up
}

netns_del() {
	[[ -e /run/netns/$1 ]] || return 0
	ip netns del "$1" 2>/dev/null || log "cannot delete network namespace $1"
}

# ---- root namespace routes, shared by every lab on the machine ----

LAB_ROUTES4=(10.96.0.0/16 10.244.0.0/16 10.250.0.0/24)
LAB_ROUTES6=(fd00:10::/32)

# Add the unreachable routes that are missing; remember which ones the labs added.
routes_up() {
	local r fam
	for r in "${LAB_ROUTES4[@]}" "${LAB_ROUTES6[@]}"; do
		fam=-4
		[[ $r == *:* ]] && fam=-6
		if [[ -n $(ip "$fam" route show table main exact "$r" type unreachable) ]]; then
			continue
		fi
		if [[ -n $(ip "$fam" route show table main exact "$r") ]]; then
			die "the root namespace routes $r somewhere: the lab's addresses are in use on this machine"
		fi
		ip "$fam" route add unreachable "$r"
		printf '%s\n' "$r" >>"$LAB_RUN_ROOT/routes-added"
	done
}

# Remove the routes the labs added, once no lab is up (the refcount is the set of state dirs);
# /etc/netns too when it is left empty.
routes_down_if_last() {
	local m r fam
	for m in "$LAB_RUN_ROOT"/*/meta; do
		[[ -e $m ]] && return 0
	done
	rmdir /etc/netns 2>/dev/null || true # only when empty
	[[ -f $LAB_RUN_ROOT/routes-added ]] || return 0
	while IFS= read -r r; do
		fam=-4
		[[ $r == *:* ]] && fam=-6
		ip "$fam" route del unreachable "$r" 2>/dev/null || true
	done <"$LAB_RUN_ROOT/routes-added"
	rm -f "$LAB_RUN_ROOT/routes-added"
}

# ---- underlay and nodes ----

underlay_up() {
	netns_add "$UL_NS"
	ip -n "$UL_NS" link add br0 type bridge
	ip -n "$UL_NS" link set br0 up
}

# Node i: ul0 on the underlay (10.250.0.i, fd00:10:250::i), cni0 for its pods
# (10.244.i.1/24, fd00:10:244:i::1/64), forwarding on.
node_up() {
	local i=$1 node hx
	node=$(node_name "$i")
	hx=$(printf '%x' "$i")
	netns_add "$node"
	in_netns "$node" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	ip -n "$UL_NS" link add "n$i" type veth peer name ul0 netns "$node"
	ip -n "$UL_NS" link set "n$i" master br0 up
	ip -n "$node" addr add "10.250.0.$i/24" dev ul0
	ip -n "$node" addr add "fd00:10:250::$hx/64" dev ul0 nodad
	ip -n "$node" link set ul0 up
	ip -n "$node" link add cni0 type bridge
	ip -n "$node" addr add "10.244.$i.1/24" dev cni0
	ip -n "$node" addr add "fd00:10:244:$hx::1/64" dev cni0 nodad
	ip -n "$node" link set cni0 up
}

# Routes from every node to every other node's pod CIDRs, via the underlay.
node_routes() {
	local i j node hj
	for ((i = 1; i <= NODES; i++)); do
		node=$(node_name "$i")
		for ((j = 1; j <= NODES; j++)); do
			((i == j)) && continue
			hj=$(printf '%x' "$j")
			ip -n "$node" route add "10.244.$j.0/24" via "10.250.0.$j" dev ul0
			ip -n "$node" -6 route add "fd00:10:244:$hj::/64" via "fd00:10:250::$hj" dev ul0
		done
	done
}

# ---- pods ----

# pod_net_up NAME NODE_INDEX IP4 IP6: the pod's netns, eth0 on a veth into the node's cni0.
pod_net_up() {
	local name=$1 i=$2 ip4=$3 ip6=$4 ns node host hx
	ns=$(pod_netns "$name")
	node=$(node_name "$i")
	host=${ip4##*.}
	hx=$(printf '%x' "$i")
	netns_add "$ns"
	ip -n "$node" link add "vp$host" type veth peer name eth0 netns "$ns"
	ip -n "$node" link set "vp$host" master cni0 up
	ip -n "$ns" addr add "$ip4/24" dev eth0
	ip -n "$ns" addr add "$ip6/64" dev eth0 nodad
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via "10.244.$i.1"
	ip -n "$ns" -6 route add default via "fd00:10:244:$hx::1"
}
