# bpfmesh-l4-bypass: as bpfmesh-l4 with the same-node bypass on (the agent's default): sockops
# puts both ends of a pod-to-pod connection in a sockhash and sk_msg moves data between the
# sockets directly, skipping TCP/IP below them.
SCN_DESC="as bpfmesh-l4, same-node bypass on (sockops + sk_msg redirect between the two sockets)"
SCN_TARGET=$VIP
scn_up() {
	agent_knows --no-sockmap ||
		unsupported "this bpfmesh-agent has no same-node bypass (its --help lists no --no-sockmap)"
	bpfmesh_up
}
scn_after() {
	local bp
	bpfmesh_after
	[[ $(stat_delta connect) -gt 0 ]] || die "the connect hook translated nothing (counter connect did not grow)"
	bp=$(stat_delta bypass_msg)
	[[ -n $bp ]] || unsupported "this bpfmesh datapath has no bypass_msg counter: no bypass to measure"
	[[ $bp -gt 0 ]] || die "the bypass was not in effect (counter bypass_msg did not grow): these are not bypass figures"
}
scn_down() { bpfmesh_down; }
