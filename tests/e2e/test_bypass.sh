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

# Two raw-echo backends: one on the client's node, one on the other.
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

e2e_finish
