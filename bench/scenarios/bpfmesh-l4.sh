# bpfmesh-l4: the VIP is translated once, at connect(), by bpfmesh's cgroup/connect4 hook on
# the pods' parent cgroup; packets then go pod to pod as in `direct`. Same-node bypass off.
SCN_DESC="client -> VIP, translated at connect() by bpfmesh (cgroup/connect4); sockmap bypass off"
SCN_TARGET=$VIP
scn_up() {
	if agent_knows --no-sockmap; then
		bpfmesh_up --no-sockmap
	else
		# An agent without the flag has no bypass at all: the plain hook is exactly "off".
		note "this bpfmesh-agent has no --no-sockmap (no bypass built): the connect hook alone"
		bpfmesh_up
	fi
}
scn_after() {
	local bp
	bpfmesh_after
	[[ $(stat_delta connect) -gt 0 ]] || die "the connect hook translated nothing (counter connect did not grow)"
	bp=$(stat_delta bypass_msg)
	[[ -z $bp || $bp -eq 0 ]] || die "the bypass carried $bp sendmsg calls although it was off"
}
scn_down() { bpfmesh_down; }
