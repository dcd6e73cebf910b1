# direct: the client pod talks to the server pod's IP (veth, bridge, veth). No mesh, no NAT,
# no conntrack: the ceiling every other scenario is compared with.
SCN_DESC="client -> server pod IP over veth, bridge, veth; no mesh (the ceiling)"
SCN_TARGET=$SRV_IP
scn_up() { :; }
scn_down() { :; }
