# shellcheck shell=bash
# The Istio-like sidecar model: a proxy in each pod (HAProxy standing in for Envoy) and the
# iptables capture istio-iptables installs in every pod. HAProxy finds a REDIRECTed connection's
# original destination with SO_ORIGINAL_DST, so one listener serves every destination, as
# Envoy's 15001 (outbound) and 15006 (inbound) do.

# Worker threads per sidecar: Istio's default sidecar concurrency is 2.
SIDECAR_THREADS=${SIDECAR_THREADS:-2}

# istio-iptables' rules (sidecar mode), TCP/IPv4: inbound to 15006, outbound to 15001, the
# proxy's own uid/gid 1337 and its inbound-passthrough source 127.0.0.6 excluded.
sidecar_iptables_up() {
	in_ns "$1" iptables-restore --noflush <<EOF2
*nat
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner ${MESH_UID} -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner ${MESH_UID} -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner ${MESH_UID} -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner ${MESH_GID} -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner ${MESH_GID} -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner ${MESH_GID} -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
EOF2
}

# sidecar_cfg POD_IP MODE: the HAProxy config of the sidecar of the pod with address POD_IP.
#   l4: TCP proxy both ways (Istio with a TCP service)
#   l7: port 80 as HTTP (parse, route, add x-request-id, pooled upstream keepalive), the rest TCP
# Outbound 15001: the VIP goes to the endpoint the "control plane" gave (the server pod),
# anything else to its original destination. Inbound 15006: to the app, from 127.0.0.6.
sidecar_cfg() {
	local pod_ip=$1 mode=$2
	cat <<EOF2
global
    nbthread ${SIDECAR_THREADS}
    uid ${MESH_UID}
    gid ${MESH_GID}
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout http-keep-alive 120s
frontend outbound
    bind 0.0.0.0:15001
EOF2
	[[ $mode == l4 ]] || echo "    use_backend out_svc_http if { dst $VIP } { dst_port $HTTP_PORT }"
	cat <<EOF2
    use_backend out_svc if { dst $VIP }
    default_backend passthrough
backend passthrough
    server orig 0.0.0.0
backend out_svc
    server ep1 ${SRV_IP}
frontend inbound
    bind 0.0.0.0:15006
EOF2
	[[ $mode == l4 ]] || echo "    use_backend in_app_http if { dst_port $HTTP_PORT }"
	cat <<EOF2
    default_backend in_app
backend in_app
    server app 0.0.0.0 source 127.0.0.6
EOF2
	[[ $mode == l4 ]] || cat <<EOF2
backend out_svc_http
    mode http
    http-reuse always
    http-request set-header x-request-id %[uuid]
    server ep1 ${SRV_IP}:${HTTP_PORT}
backend in_app_http
    mode http
    http-reuse always
    server app ${pod_ip}:${HTTP_PORT} source 127.0.0.6
EOF2
}

# sidecar_up MODE: a sidecar in each pod (CPU counted in $CG_MESH/<name>), then the capture.
sidecar_up() {
	local mode=$1 side ns ip
	for side in srv cli; do
		ns=$NS_SRV ip=$SRV_IP
		[[ $side == cli ]] && ns=$NS_CLI ip=$CLI_IP
		sidecar_cfg "$ip" "$mode" >"$STATE/conf/$side-sidecar.cfg"
		haproxy -c -q -f "$STATE/conf/$side-sidecar.cfg" || die "bad haproxy config $STATE/conf/$side-sidecar.cfg"
		start_bg "$side-sidecar" "$ns" "$CG_MESH/$side-sidecar" haproxy -f "$STATE/conf/$side-sidecar.cfg" -db
		wait_listen "$ns" 15001 || die "$side-sidecar did not start: $(cat "$STATE/log/$side-sidecar.log")"
	done
	sidecar_iptables_up "$NS_SRV"
	sidecar_iptables_up "$NS_CLI"
}

# The iptables rules go with the namespaces at teardown; the proxies are stopped here.
sidecar_down() {
	stop_bg cli-sidecar
	stop_bg srv-sidecar
}
