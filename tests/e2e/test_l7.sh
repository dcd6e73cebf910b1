#!/usr/bin/env bash
# End to end, in a two-node lab: HTTP routing by the node agent. The client pod's connections
# to an HTTP service port go to its node's agent, which routes each request: the seed's canary
# (90/10 on /api/v2, x-env: canary to v2, the rest to v1) on keep-alive connections, retries,
# timeouts, faults, redirects; a hostile request; the agent stopped (L4 meanwhile) and back;
# mirror and mirrorPercentage.
. "$(dirname "$0")/lib.sh"

EX=$E2E_ROOT/examples
TMP=$E2E_TMP

cp "$EX/demo/canary-http.yaml" "$TMP/canary.yaml"

e2e_start "$EX/demo/backend.yaml" "$EX/demo/client.yaml" "$EX/seed/03-destinationrule.yaml" \
	"$TMP/canary.yaml"
cnode=$(lab pods | awk '$1 ~ /^client-/ { print $3 }')
check "the client runs on $cnode" test -n "$cnode"
ctl() { "$E2E_BIN/bpfmeshctl" --node "$cnode" "$@"; }
stat_of() { ctl bpf stats | awk -v k="$1" '$1 == k { print $2 }'; }

# versions that answered n requests (curl keeps one connection for all of them)
versions() { # n path [curl args...]
	local n=$1 path=$2 urls=()
	shift 2
	for ((i = 0; i < n; i++)); do urls+=("http://backend$path"); done
	in_pod client curl -s -m 120 "$@" -w '\n' "${urls[@]}" |
		grep -o '"pod":"backend-v[0-9]*' | sort | uniq -c | awk '{ sub(/.*backend-/, "", $2); print $2, $1 }'
}
count_of() { awk -v v="$1" '$1 == v { print $2 + 0 }' <<<"$2"; }

red0=$(stat_of l7_redirect)

# 1. The canary: 90/10 per request, within +-3 points over 2000 requests on one connection.
s=$(versions 2000 /api/v2/items)
v1=$(count_of v1 "$s"); v2=$(count_of v2 "$s")
echo "# /api/v2 over 2000 requests on one keep-alive connection: v1=$v1 v2=$v2"
check "2000 requests answered ($((v1 + v2)))" test "$((v1 + v2))" = 2000
check "90/10 per request: v2 got $v2 of 2000 (140..260), on one connection" \
	test "${v2:-0}" -ge 140 -a "${v2:-0}" -le 260
red1=$(stat_of l7_redirect)
check "that was one connection to the agent (l7_redirect +$((red1 - red0)))" test "$((red1 - red0))" = 1

# 2. Header route and default route.
s=$(versions 100 /anything -H 'x-env: canary')
check "x-env: canary -> v2 for 100 of 100 ($(echo $s))" test "$(count_of v2 "$s")" = 100
s=$(versions 100 /anything -H 'x-env: prod')
check "no match -> default route v1 for 100 of 100 ($(echo $s))" test "$(count_of v1 "$s")" = 100
s=$(versions 100 /api/v1)
check "/api/v1 is not /api/v2: v1 for 100 of 100 ($(echo $s))" test "$(count_of v1 "$s")" = 100

# 3. The app still sees the VIP as its peer; the backend sees the request as sent.
VIP=$(svc_ip backend)
peer=$(in_pod client python3 -c '
import socket
s = socket.create_connection(("backend", 80), timeout=5)
print("%s:%d" % s.getpeername()[:2])')
check "getpeername() in the client shows the VIP $VIP:80 (got $peer)" test "$peer" = "$VIP:80"
body=$(in_pod client curl -s -m 5 -H 'x-trace: abc' 'http://backend/q?a=1')
check "path, query and headers reach the backend as sent" \
	grep -q '"path":"/q?a=1".*"x-trace":"abc"' <<<"$body"

# 4. The seed's 04 (retries: attempts 3, perTryTimeout 3s, on 5xx, reset, connect-failure;
# timeout 10s). A request every backend fails is tried 1 + 3 times, then its 503 reaches the
# client.
cfg=$(lab config-dir)
lab delete "$TMP/canary.yaml" >/dev/null
lab apply "$EX/seed/04-retry-timeout.yaml" >/dev/null
tries() { # path: how many times the backends were asked for path
	local n=0 p
	for p in $(lab pods | awk '$1 ~ /^backend-/ { print $1 }'); do
		n=$((n + $(lab logs "$p" | grep -c " $1 ")))
	done
	echo "$n"
}
code=$(in_pod client curl -s -o /dev/null -m 30 -w '%{http_code}' 'http://backend/r1?status=503')
check "a request failing with 503 every time: the client gets 503 ($code)" test "$code" = 503
n=$(tries '/r1?status=503')
check "retries: attempts 3 => the backends saw it 4 times ($n)" test "$n" = 4
# One endpoint failing 503 on demand (bm-echo's ?only=<pod>): every request still succeeds,
# the retry going to another endpoint, and the failing pod's log shows the attempts it took.
bad=$(lab pods | awk '$1 ~ /^backend-v1-/ { print $1; exit }')
codes=$(for i in $(seq 30); do
	in_pod client curl -s -o /dev/null -m 30 -w '%{http_code}\n' "http://backend/r5?status=503&only=$bad"
done | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
fails=$(lab logs "$bad" | grep -c ' /r5?status=503&only=[^ ]* 503 ')
total=$(tries "/r5?status=503&only=$bad")
echo "# one endpoint ($bad) failing 503: client got $codes; $fails attempts failed there, $total attempts in all"
check "retryOn 5xx with one endpoint failing: 30 of 30 requests succeed ($codes)" test "$codes" = "200:30 "
check "the failing pod's log shows the attempts it failed ($fails), each retried elsewhere ($total = 30 + $fails)" \
	test "$fails" -ge 3 -a "$total" = "$((30 + fails))"
# perTryTimeout 3s: a try to a pod that answers in 5 s is abandoned at 3 s and retried elsewhere.
in_pod client curl -s --no-progress-meter -m 30 --parallel --parallel-immediate --parallel-max 6 \
	-w '%{http_code} %{time_total}\n' $(for i in $(seq 6); do echo "-o /dev/null http://backend/r6?delay=5s&only=$bad"; done) \
	2>/dev/null >"$TMP/pertry"
slow=$(awk '$1 == 200 && $2 >= 2.7 && $2 < 3.3' "$TMP/pertry" | wc -l)
okn=$(awk '$1 == 200' "$TMP/pertry" | wc -l)
echo "# perTryTimeout 3s, one pod answering in 5 s: $(tr '\n' ' ' <"$TMP/pertry")"
check "perTryTimeout: 6 of 6 succeed ($okn), those that tried the slow pod first took 3 s +-10% ($slow)" \
	test "$okn" = 6 -a "$slow" -ge 1
# timeout 10s: every pod answers in 20 s; tries end at 3, 6, 9 s and the route gives up at 10 s.
read -r code t < <(in_pod client curl -s -o /dev/null -m 30 -w '%{http_code} %{time_total}\n' 'http://backend/r7?delay=20s')
echo "# route timeout 10s over perTryTimeout 3s, backend delay 20s: $code after $t s"
check "route timeout: 504 at 10 s +-10% ($code after $t s)" \
	awk -v c="$code" -v t="$t" 'BEGIN { exit !(c == 504 && t >= 9 && t <= 11) }'
code=$(in_pod client curl -s -o /dev/null -m 30 -w '%{http_code}' 'http://backend/r2?status=404')
n=$(tries '/r2?status=404')
check "a 404 is not retried (5xx only): seen once ($n), client got $code" test "$n" = 1 -a "$code" = 404

# 5. Timeouts: 1 s for the route, no retries; a backend that takes 3 s gets a 504 at 1 s.
cat >"$TMP/timeout.yaml" <<'YAML'
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: backend
spec:
  hosts: [backend]
  http:
  - match: [{uri: {prefix: /health}}]
    directResponse: {status: 200, body: {string: "healthy from the mesh"}}
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, redirectCode: 302}
  - match: [{uri: {prefix: /teapot}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /v2only}}]
    rewrite: {uri: /rewritten}
    headers: {request: {set: {x-added: mesh}}, response: {set: {x-served-by: bpfmesh}}}
    route: [{destination: {host: backend, subset: v2}}]
  - route: [{destination: {host: backend}}]
    timeout: 1s
    retries: {attempts: 0}
YAML
lab apply "$TMP/timeout.yaml" >/dev/null
read -r code t < <(in_pod client curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}\n' 'http://backend/slow?delay=3s')
echo "# route timeout 1s, backend delay 3s: $code after $t s"
check "route timeout: 504 ($code)" test "$code" = 504
check "route timeout: answered within 2.5 s ($t s)" awk -v t="$t" 'BEGIN { exit !(t >= 0.9 && t < 2.5) }'
body=$(in_pod client curl -s -m 5 http://backend/health)
check "directResponse answered by the agent ($body)" test "$body" = "healthy from the mesh"
hdrs=$(in_pod client curl -s -o /dev/null -D - -m 5 http://backend/old)
check "redirect: 302 to /new" grep -qi '^location: http://backend/new' <<<"$hdrs"
code=$(in_pod client curl -s -o /dev/null -m 5 -w '%{http_code}' http://backend/teapot)
check "fault abort: 418 ($code)" test "$code" = 418
out=$(in_pod client curl -s -D - -m 5 'http://backend/v2only/x?y=1')
check "rewrite: the backend got /rewritten/x?y=1 from v2, with x-added: mesh" \
	grep -q '"version":"v2".*"path":"/rewritten/x?y=1".*"x-added":"mesh"' <<<"$out"
check "response header set: x-served-by: bpfmesh" grep -qi '^x-served-by: bpfmesh' <<<"$out"

# 6. A hostile request gets a 400 from the agent, which keeps serving.
code=$(in_pod client python3 -c '
import socket
s = socket.create_connection(("backend", 80), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: backend\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
print(s.recv(100).split(b" ")[1].decode())')
check "Content-Length with Transfer-Encoding: 400 ($code)" test "$code" = 400
code=$(in_pod client curl -s -o /dev/null -m 5 -w '%{http_code}' http://backend/after)
check "the agent still serves after it ($code)" test "$code" = 200
code=$(in_pod client python3 -c '
import socket
s = socket.create_connection(("backend", 80), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: backend\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
print(s.recv(100).split(b" ")[1].decode())')
check "a 70 KB header: 431 ($code)" test "$code" = 431

# 7. Not HTTP on the HTTP port: relayed as TCP to the service's own endpoints.
who=$(in_pod client sh -c 'printf "WHOAMI\n" | socat -t 2 - TCP:backend:80' | head -1)
check "raw bytes on port 80 are relayed as TCP ($who)" grep -q '^pod=backend-v' <<<"$who"

# 8. Istio's default retries; then the agent stops: connections go L4 (no header rules, never refused); it starts: HTTP again.
lab apply "$TMP/canary.yaml" >/dev/null
lab delete "$TMP/timeout.yaml" >/dev/null
# (Istio's default retry policy first: a route without retries retries a 503 twice.)
code=$(in_pod client curl -s -o /dev/null -m 30 -w '%{http_code}' 'http://backend/r3?status=503')
n=$(tries '/r3?status=503')
check "no retries in the route: Istio's default, a 503 tried 3 times ($n), client got $code" \
	test "$n" = 3 -a "$code" = 503
code=$(in_pod client curl -s -o /dev/null -m 30 -w '%{http_code}' 'http://backend/r4?status=500')
n=$(tries '/r4?status=500')
check "... and a 500 is not retried by default ($n)" test "$n" = 1 -a "$code" = 500
lab agent stop "$cnode" >/dev/null
s=$(versions 50 /anything -H 'Connection: close' -H 'x-env: canary')
n=$(( $(count_of v1 "$s") + $(count_of v2 "$s") ))
check "agent stopped: 50 of 50 requests still answered, at L4 ($(echo $s))" test "$n" = 50
noag=$(stat_of l7_noagent)
check "the kernel counted them as l7_noagent ($noag)" test "${noag:-0}" -ge 50
lab agent start "$cnode" >/dev/null
s=$(versions 50 /anything -H 'x-env: canary')
check "agent back: x-env: canary -> v2 for 50 of 50 again ($(echo $s))" test "$(count_of v2 "$s")" = 50

# 9. mirror: requests routed to v1 are copied to v2 (answers dropped), all then about half.
lab delete "$TMP/canary.yaml" >/dev/null
mirror_vs() { # percent
	cat <<YAML
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: backend-mirror
spec:
  hosts: [backend]
  http:
  - route:
    - destination: {host: backend, subset: v1}
    mirror: {host: backend, subset: v2}
    mirrorPercentage: {value: $1}
YAML
}
seen_v2() { # path: requests for path in the v2 pods' logs
	local n=0 p
	for p in $(lab pods | awk '$1 ~ /^backend-v2-/ { print $1 }'); do
		n=$((n + $(lab logs "$p" | grep -c " $1 ")))
	done
	echo "$n"
}
wait_seen_v2() { # path want: up to 3 s for the copies to land
	local n
	for ((i = 0; i < 30; i++)); do
		n=$(seen_v2 "$1")
		[ "$n" -ge "$2" ] && break
		sleep 0.1
	done
	echo "$n"
}
mirror_vs 100 >"$TMP/mirror.yaml"
lab apply "$TMP/mirror.yaml" >/dev/null
s=$(versions 40 /m1)
check "mirror: the client's 40 answers all come from v1 ($(echo $s))" test "$(count_of v1 "$s")" = 40
n=$(wait_seen_v2 /m1 40)
check "mirror 100%: v2 got a copy of each of the 40 ($n)" test "$n" = 40
mirror_vs 50 >"$TMP/mirror.yaml"
lab apply "$TMP/mirror.yaml" >/dev/null
s=$(versions 400 /m2)
n=$(wait_seen_v2 /m2 400)
check "mirrorPercentage 50: v2 got copies of about half of 400 (140..260: $n), the client only v1 ($(echo $s))" \
	test "$n" -ge 140 -a "$n" -le 260 -a "$(count_of v1 "$s")" = 400

e2e_finish
