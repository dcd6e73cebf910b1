#!/usr/bin/env bash
# End to end, in a two-node lab: the same-node bypass (sockops + sk_msg) with real clients.
# 1 GiB echoed through a same-node backend and checksummed, while a cross-node transfer runs
# beside it on plain TCP; short connections; the map empties when they close; the mesh-wide
# switch turns it off for new connections.
. "$(dirname "$0")/lib.sh"

TMP=$E2E_TMP
SIZE=${BYPASS_BYTES:-1073741824}

e2e_start "$E2E_ROOT/examples/demo/client.yaml"
cnode=$(lab pods | awk '$1 ~ /^client-/ { print $3 }')
onode=$(lab nodes | awk -v c="$cnode" 'NR > 1 && $1 != c { print $1; exit }')
check "client on $cnode, the other node is $onode" test -n "$cnode" -a -n "$onode"

# Two raw-echo backends: one on the client's node, one on the other; and an HTTP service with
# http rules on the client's node (two ports: one for before the switch below, one after).
cat >"$TMP/echo.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: near}
spec:
  selector: {app: near}
  ports: [{name: tcp-echo, port: 9000}]
---
apiVersion: v1
kind: Service
metadata: {name: far}
spec:
  selector: {app: far}
  ports: [{name: tcp-echo, port: 9000}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: near}
spec:
  selector: {matchLabels: {app: near}}
  template:
    metadata: {labels: {app: near}}
    spec:
      nodeName: $cnode
      containers: [{name: echo, image: example.com/echo, ports: [{containerPort: 9000}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: far}
spec:
  selector: {matchLabels: {app: far}}
  template:
    metadata: {labels: {app: far}}
    spec:
      nodeName: $onode
      containers: [{name: echo, image: example.com/echo, ports: [{containerPort: 9000}]}]
---
apiVersion: v1
kind: Service
metadata: {name: nearweb}
spec:
  selector: {app: nearweb}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: http-off, port: 81, targetPort: 8081}]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: nearweb}
spec:
  hosts: [nearweb]
  http:
  - route: [{destination: {host: nearweb}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: nearweb}
spec:
  selector: {matchLabels: {app: nearweb}}
  template:
    metadata: {labels: {app: nearweb}}
    spec:
      nodeName: $cnode
      containers: [{name: echo, image: example.com/echo, ports: [{containerPort: 8080}, {containerPort: 8081}]}]
YAML
lab apply "$TMP/echo.yaml" >/dev/null || { not_ok "lab apply of the echo backends"; e2e_finish; }

ctl() { "$E2E_BIN/bpfmeshctl" --node "$cnode" "$@"; }
stat_of() { ctl bpf stats | awk -v k="$1" '$1 == k { print $2 }'; }
# bpftool prints a sockhash in hex, then "Found N elements".
sockhash_n() {
	bpftool map dump pinned "/sys/fs/bpf/bpfmesh/$cnode/bm_sockhash" 2>/dev/null |
		awk '/^Found/ { n = $2 } END { print n + 0 }'
}

# The payload, and its checksum, made once outside the pods (only files, no traffic).
head -c "$SIZE" /dev/urandom >"$TMP/payload"
want=$(sha256sum <"$TMP/payload" | cut -d' ' -f1)

add0=$(stat_of bypass_add); msg0=$(stat_of bypass_msg)
# Cross-node echo at the same time: not bypassed, must be intact too.
in_pod client sh -c "head -c 67108864 '$TMP/payload' | socat -b 65536 - TCP:far:9000,shut-down | sha256sum" \
	>"$TMP/far.sum" 2>&1 &
far=$!
t0=$(date +%s%N)
got=$(in_pod client sh -c "socat -b 65536 - TCP:near:9000,shut-down <'$TMP/payload' | sha256sum" | cut -d' ' -f1)
t1=$(date +%s%N)
wait $far
echo "# $SIZE bytes echoed through the same-node bypass in $(( (t1 - t0) / 1000000 )) ms"
check "1 GiB echoed through a same-node backend arrives intact (sha256 $got)" test "$got" = "$want"
farwant=$(head -c 67108864 "$TMP/payload" | sha256sum | cut -d' ' -f1)
check "64 MiB echoed through the other node at the same time arrives intact" \
	grep -q "^$farwant" "$TMP/far.sum"
add=$(( $(stat_of bypass_add) - add0 )); msg=$(( $(stat_of bypass_msg) - msg0 ))
check "the same-node connection joined the bypass, both ends; the cross-node one stayed out ($add added)" \
	test "$add" -eq 2
check "and its data was redirected ($msg sendmsg calls)" test "$msg" -gt 1000

# An open connection is in bm_sockhash (both ends), and leaves it when it closes.
in_pod client sh -c 'sleep 3 | socat - TCP:near:9000' >/dev/null 2>&1 &
held=$!
sleep 1
check "an open same-node connection has both ends in bm_sockhash ($(sockhash_n) entries)" \
	test "$(sockhash_n)" = 2
wait $held

# Many short connections.
add0=$(stat_of bypass_add)
out=$(in_pod client sh -c 'n=0; for i in $(seq 200); do
	r=$(printf "hello %s\n" $i | socat -T 5 - TCP:near:9000,shut-down) || exit 1
	[ "$r" = "hello $i" ] && n=$((n + 1)); done; echo $n')
check "200 short connections through the bypass all echoed ($out)" test "$out" = 200
check "... each paired in the bypass ($(( $(stat_of bypass_add) - add0 )) ends added)" \
	test "$(( $(stat_of bypass_add) - add0 ))" -ge 400
sleep 0.5
check "closed connections left bm_sockhash ($(sockhash_n) entries)" test "$(sockhash_n)" = 0

# TCP segments a pod's network namespace sent and received so far.
tcp_segs() { in_pod "$1" cat /proc/net/snmp | tcp_snmp InSegs OutSegs; }
# n requests on one keep-alive connection to url from the client pod: how many nearweb answered.
http_n() {
	local n=$1 url=$2 urls=()
	for ((i = 0; i < n; i++)); do urls+=("$url"); done
	in_pod client curl -s -m 60 -w '\n' "${urls[@]}" | grep -c '"pod":"nearweb-'
}

# HTTP through the agent, both hops same-node pairs: the client's connection to the agent
# (the client end joined by sockops, the agent's end by bm_sockops_agent on the agent's own
# cgroup while the handshake completes, before the first request) and the agent's pooled
# connection to the pod (filed by the agent before its handshake, joined once connected).
# Only handshakes and closes go through TCP: 200 requests move a handful of segments, where
# TCP would carry at least one per request and hop.
c0=$(tcp_segs client); s0=$(tcp_segs nearweb)
n=$(http_n 200 http://nearweb/)
c1=$(tcp_segs client); s1=$(tcp_segs nearweb)
echo "# 200 HTTP requests via the agent: TCP segments +$((c1 - c0)) in the client pod, +$((s1 - s0)) in the server pod"
check "200 HTTP requests through the agent to a same-node pod answered ($n)" test "$n" = 200
check "... the client pod's TCP carried none of them: +$((c1 - c0)) segments (<= 20)" test $((c1 - c0)) -le 20
check "... nor the server pod's: +$((s1 - s0)) segments (<= 20)" test $((s1 - s0)) -le 20
check "the agent said its upstream connections join the bypass" \
	grep -q "upstream connections to endpoints on 10\.244\..*'s subnet join the same-node bypass" \
	"/run/bpfmesh-lab/$BM_LAB_PREFIX/agents/$cnode.log"

# The mesh-wide switch: ConfigMap istio-system/bpfmesh sameNodeBypass "false".
cat >"$TMP/off.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: bpfmesh, namespace: istio-system}
data: {sameNodeBypass: "false"}
YAML
lab apply "$TMP/off.yaml" >/dev/null
add0=$(stat_of bypass_add)
got=$(in_pod client sh -c "head -c 16777216 '$TMP/payload' | socat -b 65536 - TCP:near:9000,shut-down | sha256sum" | cut -d' ' -f1)
check "with sameNodeBypass \"false\" the echo is intact" test "$got" = "$(head -c 16777216 "$TMP/payload" | sha256sum | cut -d' ' -f1)"
check "... and no socket joined the bypass" test "$(( $(stat_of bypass_add) - add0 ))" = 0
# ... nor does the agent's next upstream connection (port 81: a fresh endpoint to connect to).
s0=$(tcp_segs nearweb)
n=$(http_n 50 http://nearweb:81/)
s1=$(tcp_segs nearweb)
check "with it off, 50 HTTP requests through the agent answered ($n)" test "$n" = 50
check "... over TCP from the agent to the pod: +$((s1 - s0)) segments in the server pod (>= 50)" \
	test $((s1 - s0)) -ge 50

e2e_finish
