# bpfmesh-tc: a client outside the mesh cgroup (a host process, a pod the agent does not
# manage) reaches the VIP through bpfmesh's per-packet TC fallback on the node side of the
# client pod's veth. The connect hook does not see this client.
SCN_DESC="client outside the mesh cgroup -> VIP, translated per packet by bpfmesh's TC program on the node's veth (vcli)"
SCN_TARGET=$VIP
SCN_CLIENT_CG=$CG_EXT
scn_up() { bpfmesh_up --tc-ifaces vcli; }
# Nothing else in the topology answers the VIP (no route, no NAT in the node), so traffic that
# got through without the connect hook went through the TC program; its counter says so too.
scn_after() {
	local c nat
	bpfmesh_after
	c=$(stat_delta connect)
	[[ ${c:-0} -eq 0 ]] || die "the connect hook translated $c connects: the client was not outside the mesh"
	nat=$(stat_delta tc_nat)
	[[ -z $nat || $nat -gt 0 ]] || die "the TC program translated nothing (counter tc_nat did not grow)"
}
scn_down() { bpfmesh_down; }
