# sidecar-l4: the Istio-like sidecar model with a TCP service. app -> iptables REDIRECT ->
# client sidecar :15001 -> server sidecar :15006 (PREROUTING REDIRECT) -> app.
SCN_DESC="Istio-like sidecars (HAProxy as Envoy), L4: app -> REDIRECT -> client proxy -> server proxy -> app"
SCN_TARGET=$VIP
scn_up() { sidecar_up l4; }
scn_down() { sidecar_down; }
