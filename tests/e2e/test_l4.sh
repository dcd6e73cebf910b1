#!/usr/bin/env bash
# End to end, in a two-node lab: a client pod connects to Service VIPs and the kernel alone
# picks the backend (subsets, the 90/10 canary, refusals, UDP, IPv6, live and bad updates).
. "$(dirname "$0")/lib.sh"

EX=$E2E_ROOT/examples
TMP=$E2E_TMP

cat >"$TMP/extra.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: empty
spec:
  selector:
    app: nobody
  ports:
  - name: tcp
    port: 9000
---
apiVersion: v1
kind: Service
metadata:
  name: backend6
spec:
  ipFamilies: [IPv6]
  ipFamilyPolicy: SingleStack
  selector:
    app: backend
  ports:
  - name: http
    port: 80
    targetPort: http
YAML

e2e_start "$EX/demo/backend.yaml" "$EX/demo/client.yaml" "$EX/seed/03-destinationrule.yaml" \
	"$TMP/extra.yaml"

VIP=$(svc_ip backend)
check "backend has a ClusterIP ($VIP)" test -n "$VIP"

# versions seen by N new connections (one curl, Connection: close => one connection each)
split() { # n [url]
	local n=$1 url=${2:-http://backend/} urls=()
	for ((i = 0; i < n; i++)); do urls+=("$url"); done
	in_pod client curl -s -m 60 -H 'Connection: close' -w '\n' "${urls[@]}" |
		grep -o '"pod":"backend-v[0-9]*' | sort | uniq -c | awk '{ sub(/.*backend-/, "", $2); print $2, $1 }'
}
count_of() { awk -v v="$1" '$1 == v { print $2 }' <<<"$2"; }

# 1. Name resolution in the pod, and translation in the kernel.
for name in backend backend.default backend.default.svc.cluster.local; do
	check "curl http://$name/ from the client pod reaches a backend pod" \
		bash -c "$(printf '%q ' "$LAB") exec deploy/client -- curl -s -m 5 http://$name/ | grep -q '\"pod\":\"backend-v'"
done

# 2. getpeername shows the VIP, while the backend saw a pod address.
peer=$(in_pod client python3 -c '
import socket
s = socket.create_connection(("backend", 80), timeout=5)
print("%s:%d" % s.getpeername()[:2])')
check "getpeername() in the client shows the VIP $VIP:80 (got $peer)" test "$peer" = "$VIP:80"
server=$(in_pod client curl -s -m 5 http://backend/ | grep -o '"server":"[^"]*"')
check "the backend answered on its pod address, port 8080 ($server)" \
	grep -q '"server":"10\.244\.[0-9]*\.[0-9]*:8080"' <<<"$server"

# 3. A route to one subset reaches only that subset.
cat >"$TMP/only-v2.yaml" <<'YAML'
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: backend-canary-tcp
spec:
  hosts: [backend]
  tcp:
  - route:
    - destination: {host: backend, subset: v2}
YAML
lab apply "$TMP/only-v2.yaml" >/dev/null
s=$(split 100)
check "route to subset v2: 100 of 100 connections reach v2 ($(echo $s))" test "$(count_of v2 "$s")" = 100

# 4. The seed's canary as a TCP route: 90/10 within +-3 points over 2000 connections.
lab apply "$EX/demo/canary-tcp.yaml" >/dev/null
s=$(split 2000)
v1=$(count_of v1 "$s"); v2=$(count_of v2 "$s")
echo "# canary split over 2000 connections: v1=$v1 v2=$v2"
check "2000 connections: all answered ($((v1 + v2)))" test "$((v1 + v2))" = 2000
check "90/10 canary: v2 share $((v2 * 1000 / 2000))/1000 within 70..130" \
	test "$v2" -ge 140 -a "$v2" -le 260

# 5. Live change 90/10 -> 0/100: new connections follow within 1 s.
cfg=$(lab config-dir)
vsfile=$(grep -l '^  name: backend-canary-tcp$' "$cfg"/*.yaml | head -1)
check "the canary VirtualService is in the agents' config dir ($vsfile)" test -f "$vsfile"
cat >"$TMP/vs.yaml" <<'YAML'
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: backend-canary-tcp
  namespace: default
spec:
  hosts: [backend]
  tcp:
  - route:
    - destination: {host: backend, subset: v2}
      weight: 100
    - destination: {host: backend, subset: v1}
      weight: 0
YAML
in_pod client bash -c 'end=$((SECONDS + 4)); while [ $SECONDS -lt $end ]; do
	printf "%s " "$(date +%s%3N)"; curl -s -m 2 -H "Connection: close" http://backend/ | grep -o "\"pod\":\"backend-v[0-9]" || echo none
	done' >"$TMP/timeline" &
loop=$!
sleep 1.5
t0=$(date +%s%3N)
cp "$TMP/vs.yaml" "$cfg/.vs.tmp" && mv "$cfg/.vs.tmp" "$vsfile"
wait $loop
# Times are ms since the epoch (exact in awk's doubles). The last answer not from v2 after the
# write bounds the switch time; every answer from 1 s on must be v2.
read -r last_old before after late_bad < <(awk -v t0="$t0" '
	$1 < t0 { b++ }
	$1 >= t0 { a++; if ($2 !~ /v2/) last = $1 - t0 }
	$1 >= t0 + 1000 && $2 !~ /v2/ { bad++ }
	END { printf "%.0f %d %d %d\n", last, b, a, bad }' "$TMP/timeline")
applied=$(grep -h '^time_unix_ns=' /run/bpfmesh-lab/"$BM_LAB_PREFIX"/agents/*/status | cut -d= -f2 | sort -n | tail -1)
echo "# weights 90/10 -> 0/100: last v1 answer ${last_old} ms after the write; agents applied it $(( applied / 1000000 - t0 )) ms after the write; $before requests before, $after after"
check "change 90/10 -> 0/100 took effect within 1 s (last v1 answer at ${last_old} ms)" \
	test "$last_old" -lt 1000
check "requests kept flowing across the change ($before before, $after after)" \
	test "$before" -ge 10 -a "$after" -ge 20
check "every answer from 1 s after the change on is v2 ($late_bad others)" test "$late_bad" = 0
for st in /run/bpfmesh-lab/"$BM_LAB_PREFIX"/agents/*/status; do
	check "agent $(basename "$(dirname "$st")") applied the change" grep -q '^result=ok' "$st"
done

# 6. A malformed update is rejected and traffic keeps flowing on the old config.
printf 'apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {name: broken\nspec: [\n' \
	>"$cfg/.broken.tmp" && mv "$cfg/.broken.tmp" "$cfg/zz-broken.yaml"
sleep 0.5
for st in /run/bpfmesh-lab/"$BM_LAB_PREFIX"/agents/*/status; do
	check "agent $(basename "$(dirname "$st")") rejected the malformed file ($(grep '^error=' "$st"))" \
		grep -q '^error=.*zz-broken.yaml:[0-9]' "$st"
done
s=$(split 50)
check "traffic still on the last good config: 50 of 50 to v2 ($(echo $s))" test "$(count_of v2 "$s")" = 50
rm -f "$cfg/zz-broken.yaml"

# 7. An empty Service refuses at once.
err=$(in_pod client python3 -c '
import socket, time
t = time.monotonic()
try:
    socket.create_connection(("empty", 9000), timeout=5)
    print("connected")
except OSError as e:
    print("%s %.3f" % (type(e).__name__, time.monotonic() - t))')
check "connect to a Service with no endpoint: ConnectionRefusedError at once ($err)" \
	awk '$1 == "ConnectionRefusedError" && $2 < 0.5 { ok = 1 } END { exit !ok }' <<<"$err"

# 8. UDP to the VIP, connected and unconnected; the reply comes from the VIP.
out=$(in_pod client python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(b"WHOAMI", ("backend", 53))
data, src = s.recvfrom(2048)
print("%s:%d %s" % (src[0], src[1], data.decode().split()[0]))
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(3)
c.connect(("backend", 53)); c.send(b"hello udp")
print(c.recv(2048).decode())')
check "UDP sendto the VIP: answered by a backend, from $VIP:53 ($(head -1 <<<"$out"))" \
	grep -q "^$VIP:53 pod=backend-v" <<<"$out"
check "connected UDP to the VIP echoes" grep -q '^hello udp$' <<<"$out"

# 9. IPv6 VIP through connect6.
VIP6=$(svc_ip backend6 6)
check "backend6 has an IPv6 ClusterIP ($VIP6)" grep -q : <<<"$VIP6"
out=$(in_pod client curl -s -m 5 -g "http://[$VIP6]/" -w '\nremote=%{remote_ip}')
check "curl to [$VIP6] reaches a backend over IPv6" grep -q '"server":"\[\?fd00:10:244' <<<"$out"

# 10. bpfmeshctl decodes the service for the operator.
node=$(lab nodes | awk 'NR == 2 { print $1 }')
dump=$("$E2E_BIN/bpfmeshctl" --node "$node" \
	--state-dir "/run/bpfmesh-lab/$BM_LAB_PREFIX/agents/$node" bpf services)
check "bpfmeshctl bpf services names backend.default.svc.cluster.local:80" \
	grep -q "^$VIP:80/TCP  backend.default.svc.cluster.local:80/TCP" <<<"$dump"

e2e_finish
