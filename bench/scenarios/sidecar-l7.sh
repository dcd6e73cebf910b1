# sidecar-l7: as sidecar-l4, but port 80 is HTTP in both proxies (parsed, routed by
# destination, x-request-id added, upstream connections pooled). The baseline of bpfmesh-l7's
# goals (lib/report.py).
SCN_DESC="Istio-like sidecars, L7: as sidecar-l4 with port 80 parsed and routed as HTTP, upstream keepalive pool"
SCN_TARGET=$VIP
scn_up() { sidecar_up l7; }
scn_down() { sidecar_down; }
