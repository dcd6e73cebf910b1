# vip-dnat: what kube-proxy (iptables mode) does. The client talks to the VIP; iptables DNAT
# with conntrack in the client netns rewrites it to the server pod, packet by packet. The
# baseline a connect()-time rewrite should beat.
SCN_DESC="client -> VIP; iptables DNAT + conntrack in the client netns (kube-proxy-like); no proxy"
SCN_TARGET=$VIP
scn_up() {
	in_ns "$NS_CLI" iptables-restore --noflush <<EOF2
*nat
:BENCH_SVC - [0:0]
-A OUTPUT -d ${VIP}/32 -p tcp -j BENCH_SVC
-A BENCH_SVC -p tcp -j DNAT --to-destination ${SRV_IP}
COMMIT
EOF2
}
scn_down() { :; } # the rules go with the client's netns
