#!/usr/bin/env bash
# End to end, in a two-node lab: HTTP/2 through the node agent. HTTP/2 clients (prior knowledge
# and h2c upgrade) are routed per stream by the same rules as HTTP/1.1 (the seed's canary);
# ports named grpc are spoken to in HTTP/2 (an HTTP/1.1 client's request too), gRPC calls from
# a real gRPC client pass with their status in the trailers, retries work across HTTP/2;
# DestinationRule h2UpgradePolicy UPGRADE and useClientProtocol choose the upstream protocol.
. "$(dirname "$0")/lib.sh"

EX=$E2E_ROOT/examples
TMP=$E2E_TMP
PY=/usr/bin/python3 # Debian's, with the grpc module

cat >"$TMP/grpc.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: backend-grpc
spec:
  selector:
    app: backend
  ports:
  - name: grpc
    port: 9000
    targetPort: http
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: backend-grpc
spec:
  hosts: [backend-grpc]
  http:
  - route:
    - destination: {host: backend-grpc}
    retries: {attempts: 2, retryOn: "5xx,reset,connect-failure"}
YAML
cp "$EX/demo/canary-http.yaml" "$TMP/canary.yaml"

e2e_start "$EX/demo/backend.yaml" "$EX/demo/client.yaml" "$EX/seed/03-destinationrule.yaml" \
	"$TMP/canary.yaml" "$TMP/grpc.yaml"
GRPC_VIP=$(svc_ip backend-grpc)
check "backend-grpc has a VIP ($GRPC_VIP)" test -n "$GRPC_VIP"

json_field() { grep -o "\"$1\":\"[^\"]*" | head -1 | cut -d'"' -f4; }
# versions that answered n streams on one HTTP/2 connection (nghttp multiplexes them; curl
# 7.88 does not reuse a prior-knowledge connection for a second URL), from the backends' access
# logs: nghttp prints concurrent bodies as their frames come, interleaved.
versions_h2() { # n path [nghttp args...]
	local n=$1 path=$2 urls=() tag=t$RANDOM$RANDOM p v
	shift 2
	# (nghttp asks for a repeated URI once: each gets its own query)
	for ((i = 0; i < n; i++)); do urls+=("http://backend$path?$tag=$i"); done
	in_pod client timeout 120 nghttp -n "$@" "${urls[@]}" >/dev/null
	for p in $(lab pods | awk '$1 ~ /^backend-/ { print $1 }'); do
		v=${p#backend-}
		echo "${v%%-*} $(lab logs "$p" | grep -c " $path?$tag=")"
	done | awk '{ n[$1] += $2 } END { for (v in n) if (n[v]) print v, n[v] }' | sort
}
count_of() { awk -v v="$1" '$1 == v { print $2 + 0 }' <<<"$2"; }

# 1. HTTP/2 with prior knowledge on an http port: routed per stream; upstream HTTP/1.1.
out=$(in_pod client curl -s -m 10 --http2-prior-knowledge -w '\n%{http_version}' http://backend/hello)
check "h2 prior knowledge: answered over HTTP/2 ($(tail -1 <<<"$out"))" test "$(tail -1 <<<"$out")" = 2
check "... by a backend pod speaking HTTP/1.1 to the agent (port named http: $(json_field proto <<<"$out"))" \
	test "$(json_field proto <<<"$out")" = "HTTP/1.1"
check "... with x-forwarded-for naming the client pod" grep -q '"x-forwarded-for":"10\.' <<<"$out"
s=$(versions_h2 100 /anything -H 'x-env: canary')
check "h2: x-env: canary -> v2 for 100 of 100 streams on one connection ($(echo $s))" \
	test "$(count_of v2 "$s")" = 100
s=$(versions_h2 400 /api/v2/items)
v2=$(count_of v2 "$s")
check "h2: /api/v2 90/10 per stream: v2 got ${v2:-0} of 400 (16..72) ($(echo $s))" \
	test "${v2:-0}" -ge 16 -a "${v2:-0}" -le 72 -a "$(($(count_of v1 "$s") + ${v2:-0}))" = 400
ok2=$(in_pod client timeout 60 h2load -n 400 -c 1 -m 100 http://backend/api/v2/h2load | awk '/^requests:/ { print $8 }')
check "h2load: 400 streams, 100 at a time on one connection, 400 succeeded ($ok2)" test "${ok2:-0}" = 400
s=$(versions_h2 50 /other)
check "h2: the default route -> v1 only ($(echo $s))" test "$(count_of v1 "$s")" = 50

# 2. h2c upgrade from HTTP/1.1.
out=$(in_pod client curl -sv -m 10 --http2 http://backend/up 2>&1)
check "h2c upgrade: 101 Switching Protocols" grep -q '< HTTP/1.1 101' <<<"$out"
check "... then HTTP/2 200 on stream 1" grep -q '< HTTP/2 200' <<<"$out"
check "... from a backend pod" grep -q '"pod":"backend-v1' <<<"$out"

# 3. A port named grpc: the agent speaks HTTP/2 upstream, whatever the client speaks.
out=$(in_pod client curl -s -m 10 -w '\n%{http_version}' "http://$GRPC_VIP:9000/g1")
check "grpc port, HTTP/1.1 client: answered in HTTP/1.1 ($(tail -1 <<<"$out"))" test "$(tail -1 <<<"$out")" = 1.1
check "... the pod was spoken to in HTTP/2 ($(json_field proto <<<"$out"))" test "$(json_field proto <<<"$out")" = "HTTP/2"
tr=$(in_pod client nghttp -v -H 'te: trailers' "http://$GRPC_VIP:9000/g2?trailers=x-check:passed" 2>&1 |
	grep -c 'x-check: passed')
check "grpc port, HTTP/2 client: the pod's trailer reaches the client (nghttp saw it: $tr)" test "$tr" -ge 1

# 4. A real gRPC client (python grpcio): unary calls, status codes in the trailers.
cat >"$TMP/grpc_client.py" <<'PY'
import sys
import grpc

target, code = sys.argv[1], sys.argv[2]
ch = grpc.insecure_channel(target)
call = ch.unary_unary("/bm.Echo/Say", request_serializer=None, response_deserializer=None)
md = [("x-echo-grpc", code)] if code != "0" else []
try:
    reply = call(b"hello", metadata=md, timeout=10)
    print("OK", b'"pod":"backend-' in reply, b'"proto":"HTTP/2"' in reply)
except grpc.RpcError as e:
    print(e.code().name, e.details())
PY
out=$(in_pod client "$PY" "$TMP/grpc_client.py" "$GRPC_VIP:9000" 0)
check "gRPC unary call through the agent: OK, the pod's framed answer over HTTP/2 ($out)" test "$out" = "OK True True"
out=$(in_pod client "$PY" "$TMP/grpc_client.py" "$GRPC_VIP:9000" 5)
check "gRPC status from the trailers: NOT_FOUND reaches the client ($out)" grep -q '^NOT_FOUND' <<<"$out"
ok=0
for i in $(seq 20); do
	[ "$(in_pod client "$PY" "$TMP/grpc_client.py" "$GRPC_VIP:9000" 0)" = "OK True True" ] && ok=$((ok + 1))
done
check "20 gRPC calls, 20 OK ($ok)" test "$ok" = 20

# 5. Retries across HTTP/2: one endpoint failing 503 on demand; every request still succeeds.
bad=$(lab pods | awk '$1 ~ /^backend-v1-/ { print $1; exit }')
codes=$(for i in $(seq 20); do
	in_pod client curl -s -o /dev/null -m 30 -w '%{http_code}\n' "http://$GRPC_VIP:9000/r1?status=503&only=$bad"
done | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
fails=$(lab logs "$bad" | grep -c ' /r1?status=503&only=[^ ]* 503 ')
check "HTTP/2 upstream, one endpoint failing 503: 20 of 20 succeed ($codes), retried elsewhere ($fails failed there)" \
	test "$codes" = "200:20 " -a "$fails" -ge 1

# 6. DestinationRule: h2UpgradePolicy UPGRADE on the http port, then useClientProtocol.
dr_http() { # h2UpgradePolicy useClientProtocol
	cat <<YAML
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: backend
spec:
  host: backend
  trafficPolicy:
    connectionPool:
      http: {h2UpgradePolicy: $1, useClientProtocol: $2}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
YAML
}
dr_http UPGRADE false >"$TMP/dr.yaml"
lab delete "$EX/seed/03-destinationrule.yaml" >/dev/null
lab apply "$TMP/dr.yaml" >/dev/null
p=$(in_pod client curl -s -m 10 http://backend/u1 | json_field proto)
check "h2UpgradePolicy UPGRADE: an HTTP/1.1 client's request reaches the pod in HTTP/2 ($p)" test "$p" = "HTTP/2"
dr_http UPGRADE true >"$TMP/dr.yaml"
lab apply "$TMP/dr.yaml" >/dev/null
p1=$(in_pod client curl -s -m 10 http://backend/u2 | json_field proto)
p2=$(in_pod client curl -s -m 10 --http2-prior-knowledge http://backend/u3 | json_field proto)
check "useClientProtocol (wins over UPGRADE): HTTP/1.1 stays HTTP/1.1 ($p1), HTTP/2 stays HTTP/2 ($p2)" \
	test "$p1" = "HTTP/1.1" -a "$p2" = "HTTP/2"

e2e_finish
