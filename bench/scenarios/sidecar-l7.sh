# sidecar-l7 (optional, not in the default set): as sidecar-l4, but port 80 is HTTP in both
# proxies (parsed, routed, x-request-id added, upstream connections pooled). bpfmesh-l7 will
# sit beside it.
SCN_DESC="Istio-like sidecars, L7: as sidecar-l4 with port 80 parsed and routed as HTTP, upstream keepalive pool"
SCN_TARGET=$VIP
scn_up() { sidecar_up l7; }
scn_down() { sidecar_down; }
