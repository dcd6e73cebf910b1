#!/usr/bin/env bash
# tests/l7/run.sh - the HTTP/1.1 engine end to end: the h1proxy harness between real clients
# (curl, nc, wrk, python) and real upstreams (bm-echo, tests/l7/upstream.py), all on loopback
# inside a network namespace this script creates and removes.
#
# usage (as root): tests/l7/run.sh            normal build (.output/...)
#                  BM_SAN=1 tests/l7/run.sh   ASan+UBSan build (.output/san/...)
# Prints "ok - ..." / "not ok - ..." per check and a summary; exit 0 when all passed, 1 when
# any failed, 77 (with "SKIP - reason") when the tests could not run.
set -uo pipefail

NS=bml7$$
. "$(dirname "$0")/lib.sh"
UPSTREAM_PY=$ROOT/tests/l7/upstream.py

start_proxy() { # NAME PORT ARGS...: the harness on 127.0.0.1:PORT
	px_start "$1" 127.0.0.1 "$2" "${@:3}"
}

# ---- preconditions ----
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
for tool in ip curl nc socat wrk python3 jq awk sha256sum timeout ss; do
	command -v "$tool" >/dev/null || skip "$tool not installed"
done
[ -x "$PROXY" ] || skip "no harness at $PROXY (make ${BM_SAN:+SAN=1 }${PROXY#$ROOT/})"
[ -x "$ECHO" ] || skip "no bm-echo at $ECHO (make ${BM_SAN:+SAN=1 }${ECHO#$ROOT/})"
WORK=$(mktemp -d /tmp/bml7.XXXXXX) || skip "mktemp failed"
ip netns add "$NS" || skip "cannot create network namespace $NS"
ip -n "$NS" link set lo up || skip "cannot bring up lo in $NS"
SAN=0
ldd "$PROXY" 2>/dev/null | grep -q libasan && SAN=1
echo "# l7 engine tests: harness $PROXY (sanitizers: $SAN), netns $NS"

start_echo a 8080 || { fail "bm-echo a starts"; exit 1; }
start_echo b 8081 || { fail "bm-echo b starts"; exit 1; }
start_echo c 8082 --idle-timeout 500ms || { fail "bm-echo c (500 ms idle timeout) starts"; exit 1; }
"${SAN_ENV[@]}" ip netns exec "$NS" python3 "$UPSTREAM_PY" server 9000 >"$WORK/py.out" 2>&1 &
LIVE[$!]=1
wait_port 9000 $! || { fail "upstream.py starts"; exit 1; }
B=$WORK/body H=$WORK/head

# ==== proxy "main": forwarding, headers, edits, RESPOND, connections, bodies, limits ====
echo "# forwarding and headers"
start_proxy main 15001 --upstream 127.0.0.1:8080 --respond /teapot --redirect /old=/new \
	--set-req x-set:yes --add-req x-add:added --remove-req x-drop --add-resp x-resp:added \
	--remove-resp x-echo-version --head-timeout 2000 || { fail "harness main starts"; exit 1; }
MAIN=$PX_PID
P=http://127.0.0.1:15001

cli curl -sS -D "$H" -o "$B" "$P/hello/world?q=1" -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' \
	-H 'X-B3-TraceId: 80f198ee56343ba864fe8b2a57d3eff7' -H 'X-B3-SpanId: e457b5a2e4d86bd1' -H 'b3: 80f198ee56343ba8-e457b5a2e4d86bd1-1' \
	-H 'X-Set: client' -H 'X-Drop: gone' -H 'X-Keep: kept'
expect_eq "$(head -1 "$H" | tr -d '\r')" "HTTP/1.1 200 OK" "GET forwarded: 200"
expect_eq "$(json "$B" .path)" "/hello/world?q=1" "path with query forwarded as sent"
expect_eq "$(json "$B" .host)" "127.0.0.1:15001" "Host forwarded"
expect "x-request-id added (a UUID v4)" grep -qE '"x-request-id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"' "$B"
expect_eq "$(json "$B" '.headers["x-forwarded-for"]')" "127.0.0.1" "x-forwarded-for: the client address"
expect_eq "$(json "$B" '.headers["x-forwarded-proto"]')" "http" "x-forwarded-proto: http"
expect_eq "$(json "$B" '.headers.traceparent')" "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" "traceparent unchanged"
expect_eq "$(json "$B" '.headers["x-b3-traceid"] + " " + .headers["x-b3-spanid"] + " " + .headers.b3')" \
	"80f198ee56343ba864fe8b2a57d3eff7 e457b5a2e4d86bd1 80f198ee56343ba8-e457b5a2e4d86bd1-1" "B3 headers unchanged"
expect_eq "$(json "$B" '.headers["x-set"]')" "yes" "request edit: set replaces the client's value"
expect_eq "$(json "$B" '.headers["x-add"]')" "added" "request edit: add"
expect_eq "$(json "$B" '.headers["x-drop"] // "absent"')" "absent" "request edit: remove"
expect_eq "$(json "$B" '.headers["x-keep"]')" "kept" "other headers kept"
expect "response edit: add" grep -qi '^x-resp: added' "$H"
expect "response edit: remove" bash -c "! grep -qi '^x-echo-version' '$H'"
expect "upstream's own headers kept" grep -qi '^x-echo-pod: a' "$H"

cli curl -sS -o "$B" "$P/xff" -H 'X-Forwarded-For: 10.1.2.3' -H 'X-Request-Id: my-id-1' -H 'X-Forwarded-Proto: https'
expect_eq "$(json "$B" '.headers["x-forwarded-for"]')" "10.1.2.3, 127.0.0.1" "x-forwarded-for: client appended"
expect_eq "$(json "$B" '.headers["x-request-id"]')" "my-id-1" "x-request-id kept when sent"
expect_eq "$(json "$B" '.headers["x-forwarded-proto"]')" "http" "x-forwarded-proto set to http"

cli curl -sS -o "$B" "$P/hop" -H 'Connection: keep-alive, X-Hop' -H 'X-Hop: 1' -H 'Keep-Alive: timeout=5' \
	-H 'Proxy-Connection: keep-alive' -H 'TE: trailers' -H 'Upgrade: h2c'
expect_eq "$(json "$B" '[.headers | keys[] | select(. == "connection" or . == "x-hop" or . == "keep-alive" or . == "proxy-connection" or . == "upgrade")] | length')" \
	0 "hop-by-hop headers (and those named in Connection) not forwarded"
expect_eq "$(json "$B" '.headers.te')" "trailers" "te: trailers passed on (gRPC servers need it), as Envoy does"
cli curl -sS -o "$B" "$P/hop" -H 'TE: gzip, deflate'
expect_eq "$(json "$B" '.headers.te // "none"')" "none" "te other than trailers not forwarded"

echo "# RESPOND"
out=$(cli curl -sS -D "$H" -w ' %{http_code}' "$P/teapot/x")
expect_eq "$out" "I'm a teapot
 418" "RESPOND: 418 with the router's body"
expect "RESPOND: response edits applied" grep -qi '^x-resp: added' "$H"
out=$(cli curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "$P/old/page")
expect_eq "$out" "301 http://127.0.0.1:15001/new" "RESPOND: 301 with Location"
expect_eq "$(grep -c 'teapot\|/old' "$WORK/a.out")" 0 "RESPOND: nothing reached the upstream"

echo "# connections"
out=$(cli curl -sS -w '%{num_connects} ' -o /dev/null "$P/ka1" -o /dev/null "$P/ka2" -o /dev/null "$P/ka3")
expect_eq "$out" "1 0 0 " "keep-alive: three URLs over one client connection"
clients=$(grep -E '^GET /ka[123] 200 ' "$WORK/a.out" | sed 's/.*client=//' | sort -u | wc -l)
expect_eq "$clients" 1 "keep-alive: the three requests reached bm-echo on one upstream connection"
out=$(cli curl -sS -0 -H 'Connection: keep-alive' -w '%{num_connects} ' -o /dev/null "$P/k10a" -o /dev/null "$P/k10b")
expect_eq "$out" "1 0 " "HTTP/1.0 with Connection: keep-alive: kept alive"
printf 'GET /h10 HTTP/1.0\r\n\r\n' >"$WORK/h10.in"
t0=$EPOCHREALTIME
cli nc 127.0.0.1 15001 <"$WORK/h10.in" >"$WORK/h10.out"
t1=$EPOCHREALTIME
expect "HTTP/1.0: answered, Connection: close" grep -qi '^connection: close' "$WORK/h10.out"
expect "HTTP/1.0: connection closed at once" fle "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" 2

printf 'GET /p1?delay=300ms HTTP/1.1\r\nHost: a\r\n\r\nGET /p2 HTTP/1.1\r\nHost: a\r\n\r\nPOST /p3 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /p4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' \
	>"$WORK/pipe.in"
cli nc 127.0.0.1 15001 <"$WORK/pipe.in" >"$WORK/pipe.out"
expect_eq "$(grep -ao '"path":"[^"]*"' "$WORK/pipe.out" | tr -d '\n')" \
	'"path":"/p1?delay=300ms""path":"/p2""path":"/p3""path":"/p4"' "pipelining: four responses in request order (first one delayed)"
expect_eq "$(grep -ac '^HTTP/1.1 200' "$WORK/pipe.out")" 4 "pipelining: four 200s"
expect "Connection: close honoured (server closed, nc returned)" grep -qi '^connection: close' "$WORK/pipe.out"

echo "# bodies"
head -c 3000000 /dev/urandom >"$WORK/up.bin"
out=$(cli curl -sS -o "$B" -w '%{time_total}' --data-binary @"$WORK/up.bin" "$P/up")
expect_eq "$(json "$B" .body_bytes)" 3000000 "Content-Length upload (3 MB)"
expect "100-continue: answered by the engine at once (curl waits 1 s without it)" fle "$out" 0.9
expect_eq "$(json "$B" '.headers.expect // "absent"')" "absent" "100-continue: Expect not forwarded (answered here)"
cli curl -sS -o "$B" -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/up.bin" "$P/upc"
expect_eq "$(json "$B" '"\(.body_bytes) \(.headers["transfer-encoding"])"')" "3000000 chunked" "chunked upload (3 MB), re-chunked upstream"
printf 'POST /tr HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n' >"$WORK/tr.in"
cli nc 127.0.0.1 15001 <"$WORK/tr.in" | sed -n '/^{/p' >"$B"
expect_eq "$(json "$B" .body_bytes)" 8 "chunk extensions and trailers handled"
cli curl -sS -o "$B" "$P/size/10485760"
expect_eq "$(sha <"$B")" "$(pattern_bytes 10485760 | sha)" "10 MiB download, content intact"
out=$(cli curl -sS -I -w '%{num_connects} ' -o "$H" "$P/size/12345" -o /dev/null "$P/size/1")
expect "HEAD: Content-Length of the body left out" grep -qi '^content-length: 12345' "$H"
expect_eq "$out" "1 0 " "HEAD: no body expected, the connection carries on"
out=$(cli curl -sS -w '%{http_code} %{num_connects} %{size_download}|' -o /dev/null "$P/n?status=204" -o /dev/null "$P/n2")
expect_eq "${out%%|*} ${out#*|}" "204 1 0 200 0 ${out##* }" "204: no body, the connection carries on"
printf 'GET http://other.example:81/abs?q=1 HTTP/1.1\r\nHost: ignored\r\nConnection: close\r\n\r\n' >"$WORK/abs.in"
cli nc 127.0.0.1 15001 <"$WORK/abs.in" | sed -n '/^{/p' >"$B"
expect_eq "$(json "$B" '.path + " " + .host')" "/abs?q=1 other.example:81" "absolute-form target: origin-form path, its authority as Host"
out=$(cli curl -sS -w '%{http_code} %{num_connects} ' -o /dev/null -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
	"$P/noup" -o /dev/null "$P/after")
expect_eq "$out" "200 1 200 1 " "Upgrade answered without 101: forwarded, then the connection closes"
out=$(cli curl -sS -o /dev/null -w '%{http_code} %{time_total}' --data-binary @"$WORK/up.bin" "$P/teapot/up")
expect "Expect: 100-continue on a RESPOND route: 418 without waiting for the body" bash -c "[ '${out% *}' = 418 ] && $(declare -f fle); fle ${out#* } 0.9"
stop_proxy "$MAIN" main

echo "# chunked and close-delimited responses (upstream.py)"
start_proxy py 15009 --upstream 127.0.0.1:9000 || fail "harness py starts"
PY=$PX_PID
cli curl -sS -D "$H" -o "$B" http://127.0.0.1:15009/chunked/1000000
expect "chunked download: chunked to the client" grep -qi '^transfer-encoding: chunked' "$H"
expect_eq "$(sha <"$B")" "$(pattern_bytes 1000000 | sha)" "chunked download (1 MB in odd-sized chunks), content intact"
cli curl -sS -D "$H" -o "$B" http://127.0.0.1:15009/close/1000000
expect "close-delimited upstream body: chunked to a 1.1 client" grep -qi '^transfer-encoding: chunked' "$H"
expect_eq "$(sha <"$B")" "$(pattern_bytes 1000000 | sha)" "close-delimited download, content intact"
out=$(cli curl -sS -w '%{num_connects} ' -o /dev/null http://127.0.0.1:15009/close/10 -o /dev/null http://127.0.0.1:15009/chunked/10)
expect_eq "$out" "1 0 " "close-delimited upstream body: the client connection survives"
cli curl -sS --raw -o "$B" http://127.0.0.1:15009/chunked/10 -H 'TE: trailers'
expect "trailers: passed to a client that sent te: trailers" grep -qa '^x-trailer: t' "$B"
cli curl -sS --raw -o "$B" http://127.0.0.1:15009/chunked/10
expect "trailers: dropped for a client that did not ask for them" bash -c "! grep -qa 'x-trailer' '$B'"
out=$(cli python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 15009))
s.sendall(b"POST /req-trailers HTTP/1.1\r\nHost: u\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
          b"5\r\nhello\r\n0\r\nGrpc-Status: 0\r\nContent-Length: 9\r\nX-Sum:  abc \r\n\r\n")
d = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    d += c
print(d.split(b"\r\n\r\n", 1)[1].decode().replace("\r\n", "|"))')
expect_eq "$out" "grpc-status: 0|x-sum: abc|" "request trailers passed upstream (lowercased; content-length dropped)"
cli curl -0 -sS -D "$H" -o "$B" http://127.0.0.1:15009/chunked/100000
expect "HTTP/1.0 client: close-delimited, no chunked" bash -c "grep -qi '^connection: close' '$H' && ! grep -qi chunked '$H'"
expect_eq "$(sha <"$B")" "$(pattern_bytes 100000 | sha)" "HTTP/1.0 client: content intact"

echo "# upstream misbehaviour (error mapping)"
out=$(cli curl -sS -w ' %{http_code}' http://127.0.0.1:15009/reset)
expect_eq "$out" "upstream connect error or disconnect/reset before headers. reset reason: connection termination 503" \
	"upstream RST before the response head: 503"
expect_eq "$(code http://127.0.0.1:15009/eof)" 503 "upstream FIN before the response head: 503"
out=$(cli curl -sS -w ' %{http_code}' http://127.0.0.1:15009/garbage)
expect_eq "$out" "upstream connect error or disconnect/reset before headers. reset reason: protocol error 502" \
	"malformed upstream response: 502"
expect_eq "$(code http://127.0.0.1:15009/bighead/70000)" 502 "upstream response head over 64 KiB: 502"
expect_eq "$(code http://127.0.0.1:15009/status10)" 502 "upstream status out of range (10): 502"
expect_eq "$(code http://127.0.0.1:15009/emptyname)" 502 "upstream field with an empty name: 502"
expect_eq "$(code http://127.0.0.1:15009/bighead/1000)" 200 "upstream response head of 1 KB: 200"
out=$(cli curl -sS -w ' %{http_code}' --data-binary @"$WORK/up.bin" http://127.0.0.1:15009/early413)
expect_eq "$out" "too big
 413" "upstream answers 413 before reading the upload: delivered"
out=$(cli curl -sS -w '%{http_code} %{num_connects} ' -o /dev/null http://127.0.0.1:15009/ka-then-close -o /dev/null http://127.0.0.1:15009/chunked/10)
expect_eq "$out" "200 1 200 0 " "keep-alive race (pooled connection closed as reused): sent again on a new one"

echo "# WebSocket"
out=$(cli python3 "$UPSTREAM_PY" client 127.0.0.1:15009 /chat 40 2>&1)
expect_eq "$out" "OK 40 frames, path /chat" "WebSocket: 101, then 40 frames (up to 70 KB) echoed through the tunnel"
dump_stats "$PY" py
expect_eq "$(stat_of py upgrades)" 1 "WebSocket: counted as an upgrade"
stop_proxy "$PY" py

echo "# hostile input"
start_proxy hostile 15002 --upstream 127.0.0.1:8080 --head-timeout 2000 --respond /teapot || fail "harness hostile starts"
HOST=$PX_PID
P=http://127.0.0.1:15002
big=$(head -c 70000 /dev/zero | tr '\0' a)
expect_eq "$(code -H "X-Big: $big" "$P/")" 431 "70 KB header: 431"
expect_eq "$(code "$P/$big")" 431 "70 KB URL: 431"
# curl adds Host, User-Agent and Accept: 97 more make 100 fields, 98 more make 101. The
# RESPOND route keeps bm-echo's own limit (it would count our added fields) out of it.
hdrs=()
for i in $(seq 1 98); do hdrs+=(-H "X-H$i: v"); done
expect_eq "$(code "${hdrs[@]}" "$P/teapot")" 431 "101 header fields: 431"
unset 'hdrs[97]' 'hdrs[96]'
expect_eq "$(code "${hdrs[@]}" "$P/teapot")" 418 "100 header fields: accepted"
raw() { # REQUEST: the status line of the answer
	printf '%b' "$1" | cli nc -N 127.0.0.1 15002 | head -1 | tr -d '\r'
}
expect_eq "$(raw 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n')" \
	"HTTP/1.1 400 Bad Request" "Content-Length with Transfer-Encoding: 400"
expect_eq "$(raw 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n')" \
	"HTTP/1.1 400 Bad Request" "bad chunk size: 400"
expect_eq "$(raw 'GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n')" "HTTP/1.1 400 Bad Request" "a field with an empty name: 400"
expect_eq "$(raw 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n: x\r\n\r\n')" \
	"HTTP/1.1 400 Bad Request" "a trailer with an empty name: 400"
expect_eq "$(raw 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc')" \
	"HTTP/1.1 400 Bad Request" "Transfer-Encoding without chunked: 400"
expect_eq "$(raw 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd')" \
	"HTTP/1.1 400 Bad Request" "two Content-Length: 400"
expect_eq "$(raw 'GET / HTTP/1.1\r\nHost : a\r\n\r\n')" "HTTP/1.1 400 Bad Request" "space before colon: 400"
expect_eq "$(raw 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')" "HTTP/1.1 400 Bad Request" "two Host fields: 400"
expect_eq "$(raw 'GET / HTTP/1.1\r\n\r\n')" "HTTP/1.1 400 Bad Request" "HTTP/1.1 without Host: 400"
expect_eq "$(raw 'GET / HTTP/1.1\nHost: a\n\n')" "HTTP/1.1 400 Bad Request" "bare LF: 400"
expect_eq "$(raw 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')" "HTTP/1.1 400 Bad Request" "HTTP/2 preface: 400"
before=$(grep -c . "$WORK/a.out")
( printf 'GET /slow HTTP/1.1\r\nHost: a\r\n'; for i in $(seq 1 12); do sleep 0.5; printf 'X-Drip-%s: v\r\n' "$i"; done ) |
	cli nc 127.0.0.1 15002 >"$WORK/loris.out" &
LORIS=$!
LIVE[$LORIS]=1
t0=$EPOCHREALTIME
for ((i = 0; i < 100; i++)); do
	grep -q . "$WORK/loris.out" 2>/dev/null && break
	sleep 0.05
done
t1=$EPOCHREALTIME
reap "$LORIS" 10
el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
expect_eq "$(head -1 "$WORK/loris.out" | tr -d '\r')" "HTTP/1.1 408 Request Timeout" "slowloris (a header every 0.5 s): 408"
expect "slowloris: answered within the 2 s head timeout (+1 s), took ${el}s" bash -c "$(declare -f fge fle); fge $el 1.8 && fle $el 3.0"
expect_eq "$(( $(grep -c . "$WORK/a.out") - before ))" 0 "hostile requests never reached the upstream"
dump_stats "$HOST" hostile
expect_eq "$(stat_of hostile too_large)" 3 "stats: three 431s"
expect_eq "$(stat_of hostile head_timeouts)" 1 "stats: one head timeout"
stop_proxy "$HOST" hostile

echo "# upstream errors, timeouts, retries, fault delay"
start_proxy down 15003 --upstream 127.0.0.1:9 || fail "harness down starts"
DOWN=$PX_PID
out=$(cli curl -sS -w ' %{http_code}' http://127.0.0.1:15003/x)
expect_eq "$out" "upstream connect error or disconnect/reset before headers. reset reason: connection failure 503" \
	"upstream down: 503 upstream connect error"
stop_proxy "$DOWN" down

start_proxy timeout 15004 --upstream 127.0.0.1:8080 --timeout 1000 || fail "harness timeout starts"
TMO=$PX_PID
out=$(cli curl -sS -w ' %{http_code} %{time_total}' "http://127.0.0.1:15004/t?delay=3s")
expect_eq "${out% *}" "upstream request timeout 504" "route timeout: 504 upstream request timeout"
expect "route timeout: after 1 s (+-10 %), took ${out##* }s" bash -c "$(declare -f fge fle); fge ${out##* } 0.9 && fle ${out##* } 1.1"
expect_eq "$(code "http://127.0.0.1:15004/t?delay=200ms")" 200 "route timeout: a faster answer passes"
stop_proxy "$TMO" timeout

start_proxy retry 15005 --upstream 127.0.0.1:8080,127.0.0.1:8081 --fail-first --retries 2 --retry-on 5xx || fail "harness retry starts"
RETRY=$PX_PID
out=$(cli curl -sS -o "$B" -w '%{http_code}' http://127.0.0.1:15005/retry-me)
expect_eq "$out" 200 "retry on 503: the client gets the second attempt's 200"
expect_eq "$(grep -c '^GET /retry-me?status=503 503 ' "$WORK/a.out") $(grep -c '^GET /retry-me 200 ' "$WORK/b.out")" "1 1" \
	"retry: attempt 0 answered 503 by pod a, attempt 1 reached pod b (access logs)"
expect_eq "$(json "$B" .pod)" b "retry: the answer came from pod b"
out=$(cli curl -sS -o "$B" -w '%{http_code}' --data-binary @<(head -c 20000 "$WORK/up.bin") http://127.0.0.1:15005/retry-post)
expect_eq "$out $(json "$B" .body_bytes)" "200 20000" "retry of a 20 KB POST: body buffered and sent again"
out=$(cli curl -sS -o /dev/null -w '%{http_code}' --data-binary @"$WORK/up.bin" http://127.0.0.1:15005/retry-big)
expect_eq "$out" 503 "a 3 MB POST (beyond the 64 KiB retry buffer): not retried, the 503 forwarded"
dump_stats "$RETRY" retry
expect_eq "$(stat_of retry retries)" 2 "stats: two retries"
stop_proxy "$RETRY" retry

start_proxy pertry 15006 --upstream 127.0.0.1:8080 --per-try-timeout 300 --retries 2 --retry-on gateway-error --timeout 5000 ||
	fail "harness pertry starts"
PT=$PX_PID
out=$(cli curl -sS -w ' %{http_code} %{time_total}' "http://127.0.0.1:15006/pt?delay=2s")
expect_eq "${out% *}" "upstream request timeout 504" "per-try timeout on every try: 504"
expect "per-try timeout: three tries of 0.3 s plus back-off, took ${out##* }s" bash -c "$(declare -f fge fle); fge ${out##* } 0.9 && fle ${out##* } 1.8"
expect_eq "$(grep -c '^GET /pt?delay=2s 200 ' "$WORK/a.out")" 3 "per-try timeout: three attempts reached bm-echo"
stop_proxy "$PT" pertry

start_proxy delay 15007 --upstream 127.0.0.1:8082 --delay 500 --mark 0x62001 || fail "harness delay starts"
DLY=$PX_PID
out=$(cli curl -sS -o /dev/null -w '%{http_code} %{time_total}' http://127.0.0.1:15007/d)
expect "fault delay 500 ms: 200 after 0.5 s, took ${out#* }s" bash -c "$(declare -f fge fle); [ ${out% *} = 200 ] && fge ${out#* } 0.5 && fle ${out#* } 1.5"
marked=$(ip netns exec "$NS" ss -tnH state established 'dport = :8082' 'fwmark = 0x62001/0xffffffff' 2>/dev/null | wc -l)
expect_eq "$marked" 1 "bm_conn_upstream_mark: the pooled upstream connection carries SO_MARK 0x62001"
stop_proxy "$DLY" delay

start_proxy maxreq 15010 --upstream 127.0.0.1:8080 --max-requests-per-conn 2 --rewrite-authority svc.example:8080 ||
	fail "harness maxreq starts"
MR=$PX_PID
cli curl -sS -o /dev/null "http://127.0.0.1:15010/m1" -o /dev/null "http://127.0.0.1:15010/m2" -o /dev/null "http://127.0.0.1:15010/m3" \
	-o /dev/null "http://127.0.0.1:15010/m4" -o /dev/null "http://127.0.0.1:15010/m5"
ports=$(grep -E '^GET /m[1-5] 200 ' "$WORK/a.out" | sed 's/.*client=//' | sort -u | wc -l)
expect_eq "$ports" 3 "max 2 requests per upstream connection: 5 requests on 3 connections"
cli curl -sS -o "$B" "http://127.0.0.1:15010/auth"
expect_eq "$(json "$B" .host)" "svc.example:8080" "rewrite_authority: Host rewritten"

start_proxy idle 15012 --upstream 127.0.0.1:8082 || fail "harness idle starts"
IDLE=$PX_PID
o1=$(code http://127.0.0.1:15012/i1)
sleep 1
o2=$(code http://127.0.0.1:15012/i2)
expect_eq "$o1 $o2" "200 200" "pooled connection closed by the upstream while idle: next request on a new one"
dump_stats "$IDLE" idle
expect_eq "$(stat_of idle upstream_cx) $(stat_of idle upstream_reuse)" "2 0" "stats: two upstream connections, none reused"
stop_proxy "$IDLE" idle
stop_proxy "$MR" maxreq

echo "# TCP relay (sniffed)"
start_proxy sniff 15008 --upstream 127.0.0.1:8080 --sniff || fail "harness sniff starts"
SN=$PX_PID
out=$(printf 'WHOAMI\n' | cli nc -N 127.0.0.1 15008 | head -1)
expect "not HTTP: relayed as TCP (bm-echo's identity line)" grep -q '^pod=a ' <<<"$out"
head -c 2000000 /dev/urandom >"$WORK/raw.bin"
cli socat -t 5 -T 10 - TCP:127.0.0.1:15008 <"$WORK/raw.bin" >"$WORK/raw.out"
expect_eq "$(sha <"$WORK/raw.out")" "$(sha <"$WORK/raw.bin")" "relay: 2 MB of binary echoed intact, half-close passed through"
expect_eq "$(code http://127.0.0.1:15008/healthz)" 200 "HTTP on the same port: served by the engine"
stop_proxy "$SN" sniff

echo "# large transfers and load"
start_proxy big 15011 --upstream 127.0.0.1:8080 || fail "harness big starts"
BIG=$PX_PID
cli curl -sS -o /dev/null "http://127.0.0.1:15011/size/1048576"
h0=$(hwm_kb "$BIG")
out=$(cli curl -sS -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:15011/size/1073741824")
expect_eq "$out" "200 1073741824" "1 GiB download streamed"
out=$(head -c 1073741824 /dev/zero | cli curl -sS -T - -o "$B" -w '%{http_code}' "http://127.0.0.1:15011/upload")
expect_eq "$out $(json "$B" .body_bytes)" "200 1073741824" "1 GiB upload streamed"
h1=$(hwm_kb "$BIG")
lim=$((SAN ? 65536 : 8192))
expect "memory bounded: VmHWM grew $((h1 - h0)) KiB over 2 GiB moved (limit $lim KiB)" test $((h1 - h0)) -lt $lim
cli wrk -t2 -c200 -d4s --timeout 5s http://127.0.0.1:15011/healthz >"$WORK/wrk.out" 2>&1
reqs=$(awk '/requests in/ { print $1 }' "$WORK/wrk.out")
expect "wrk, 200 connections for 4 s: ${reqs:-0} requests" test "${reqs:-0}" -gt 1000
expect "wrk: no socket errors, no non-2xx" bash -c "! grep -qE 'Socket errors|Non-2xx' '$WORK/wrk.out'"
dump_stats "$BIG" big
expect_eq "$(stat_of big responses_5xx)" 0 "stats: no 5xx under load"
expect "stats: upstream connections reused (${reqs:-0} requests, $(stat_of big upstream_cx) connections)" \
	test "$(stat_of big upstream_cx)" -le 220
stop_proxy "$BIG" big

echo "# circuit breaking: max_connections and the pending queue (bm-echo d, its own log)"
start_echo d 8083 || fail "bm-echo d starts"
# wrk: counts 200s, Envoy's overflow 503s (header and body) and anything else, across threads.
cat >"$WORK/cb.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; over = 0; other = 0 end
function response(status, headers, body)
	if status == 200 then
		ok = ok + 1
	elseif status == 503 and headers["x-envoy-overloaded"] == "true" and
	       body == "upstream connect error or disconnect/reset before headers. reset reason: overflow" then
		over = over + 1
	else
		other = other + 1
	end
end
function done(summary, latency, requests)
	local o, v, x = 0, 0, 0
	for _, t in ipairs(threads) do
		o = o + t:get("ok"); v = v + t:get("over"); x = x + t:get("other")
	end
	io.write(string.format("RESULT %d %d %d %d\n", o, v, x, math.floor(latency.mean / 1000)))
end
EOF
# sample_conns PORT FILE STOPFILE: the upstream's established connections every 50 ms, until
# STOPFILE exists (200 samples at most).
sample_conns() {
	local i

	for ((i = 0; i < 200; i++)); do
		[ -e "$3" ] && break
		ip netns exec "$NS" ss -Htn state established "( sport = :$1 )" 2>/dev/null | wc -l >>"$2"
		sleep 0.05
	done
}
# cb_load NAME URL: wrk -c200 for 3 s with the upstream's connections sampled; sets OK OVER
# OTHER MEAN_MS MAXC (the most connections seen at once) and leaves wrk's output in NAME.wrk.
cb_load() {
	local samp

	rm -f "$WORK/$1.stop" "$WORK/$1.samples"
	sample_conns 8083 "$WORK/$1.samples" "$WORK/$1.stop" &
	samp=$!
	LIVE[$samp]=1
	cli wrk -t2 -c200 -d3s --timeout 5s -s "$WORK/cb.lua" "$2" >"$WORK/$1.wrk" 2>&1
	touch "$WORK/$1.stop"
	reap "$samp" 5
	read -r OK OVER OTHER MEAN_MS < <(awk '$1 == "RESULT" { print $2, $3, $4, $5 }' "$WORK/$1.wrk")
	MAXC=$(sort -n "$WORK/$1.samples" | tail -1)
}

start_proxy cb 15013 --upstream 127.0.0.1:8083 --route '/=cb,max_connections=50,max_pending=50' ||
	fail "harness cb starts"
CB=$PX_PID
cb_load cbw "http://127.0.0.1:15013/slow?delay=200ms"
dump_stats "$CB" cb
echo "#   200 clients, 50 connections, 50 pending: ${OK:-0} ok, ${OVER:-0} overflow, ${OTHER:-?} other, mean ${MEAN_MS:-?} ms, upstream connections at most ${MAXC:-?}"
expect "max_pending 50: some requests answered 503 with x-envoy-overloaded and Envoy's overflow text (${OVER:-0})" \
	test "${OVER:-0}" -gt 0
expect "max_pending 50: the others served (${OK:-0} x 200)" test "${OK:-0}" -gt 100
expect_eq "${OTHER:-?}" 0 "max_pending 50: no request failed for another reason"
expect "max_pending 50: no socket errors or timeouts in wrk" bash -c "! grep -q 'Socket errors' '$WORK/cbw.wrk'"
expect "max_connections 50: the upstream never had more than 50 connections at once (sampled max ${MAXC:-?})" \
	bash -c "[ '${MAXC:-99}' -le 50 ] && [ '${MAXC:-0}' -ge 40 ]"
expect "max_connections 50: 50 upstream connections opened in all, kept alive ($(stat_of cb upstream_cx))" \
	test "$(stat_of cb upstream_cx)" -le 50
expect "stats: requests waited (rq_pending_total $(stat_of cb rq_pending_total), cx_overflow $(stat_of cb cx_overflow))" \
	bash -c "[ '$(stat_of cb rq_pending_total)' -gt 0 ] && [ '$(stat_of cb cx_overflow)' -gt 0 ]"
expect "stats: every overflow 503 counted in rq_pending_overflow ($(stat_of cb rq_pending_overflow) >= ${OVER:-0})" \
	test "$(stat_of cb rq_pending_overflow)" -ge "${OVER:-0}"
expect_eq "$(stat_of cb rq_pending_active)" 0 "stats: nobody left in the queue"
stop_proxy "$CB" cb

start_proxy cbq 15014 --upstream 127.0.0.1:8083 --route '/=cbq,max_connections=50,max_pending=1000' ||
	fail "harness cbq starts"
CBQ=$PX_PID
cb_load cbqw "http://127.0.0.1:15014/slow?delay=200ms"
dump_stats "$CBQ" cbq
echo "#   200 clients, 50 connections, 1000 pending: ${OK:-0} ok, ${OVER:-0} overflow, ${OTHER:-?} other, mean ${MEAN_MS:-?} ms, upstream connections at most ${MAXC:-?}"
expect_eq "${OVER:-?} ${OTHER:-?}" "0 0" "max_pending 1000: no 503, no other failure"
expect "max_pending 1000: requests served (${OK:-0})" test "${OK:-0}" -gt 200
expect "max_pending 1000: requests waited their turn, mean latency ${MEAN_MS:-0} ms >= 2 x the upstream's 200 ms" \
	test "${MEAN_MS:-0}" -ge 400
expect "max_pending 1000: still at most 50 upstream connections (sampled max ${MAXC:-?}, opened $(stat_of cbq upstream_cx))" \
	bash -c "[ '${MAXC:-99}' -le 50 ] && [ '$(stat_of cbq upstream_cx)' -le 50 ]"
expect "max_pending 1000: wrk saw no errors" bash -c "! grep -qE 'Socket errors|Non-2xx' '$WORK/cbqw.wrk'"
stop_proxy "$CBQ" cbq

echo "# the pending queue: route timeout, a client leaving, overflow, max_requests, outcomes"
start_proxy cbt 15015 --upstream 127.0.0.1:8083 --outcomes "$WORK/cbt.outcomes" \
	--route '/=cbt,max_connections=1,timeout=1500' || fail "harness cbt starts"
CBT=$PX_PID
cli curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:15015/qa?delay=1s" >"$WORK/qa.code" &
QA=$!
LIVE[$QA]=1
wait_log "$WORK/d.out" '^GET /qa?delay=1s ' || fail "request qa reached bm-echo"
out=$(cli curl -sS -w ' %{http_code} %{time_total}' "http://127.0.0.1:15015/qb?delay=1s")
reap "$QA" 10
expect_eq "$(cat "$WORK/qa.code")" 200 "max_connections 1: the first request is served"
expect_eq "${out% *}" "upstream request timeout 504" \
	"route timeout 1.5 s covers the wait: queued ~1 s, then 1 s upstream: 504"
expect "route timeout counted from before the queue: 504 after ${out##* }s (1.5 s)" \
	bash -c "$(declare -f fge fle); fge ${out##* } 1.4 && fle ${out##* } 2.5"
expect "the queued request went upstream once the connection was free" grep -q '^GET /qb?delay=1s ' "$WORK/d.out"
expect_eq "$(awk '$4 == "cbt" { print $1, $2 }' "$WORK/cbt.outcomes" | sort | tr '\n' ';')" "response 200;timeout 0;" \
	"outcomes: the first a response 200, the queued one a (route) timeout, one each"
stop_proxy "$CBT" cbt

start_proxy cbl 15016 --upstream 127.0.0.1:8083 --outcomes "$WORK/cbl.outcomes" \
	--route '/mr=cbm,max_requests=1' --route '/=cbl,max_connections=1,max_pending=1' || fail "harness cbl starts"
CBL=$PX_PID
cli curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:15016/la?delay=2s" >"$WORK/la.code" &
LA=$!
LIVE[$LA]=1
wait_log "$WORK/d.out" '^GET /la?delay=2s ' || fail "request la reached bm-echo"
cli curl -sS -o /dev/null --max-time 0.3 "http://127.0.0.1:15016/lb" 2>/dev/null
expect_eq "$?" 28 "a queued client gives up after 0.3 s"
cli curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:15016/lc" >"$WORK/lc.code" &
LC=$!
LIVE[$LC]=1
for ((i = 0; i < 50; i++)); do
	dump_stats "$CBL" cbl
	[ "$(stat_of cbl rq_pending_active)" = 1 ] && break
	sleep 0.02
done
expect_eq "$(stat_of cbl rq_pending_active)" 1 "the client that left freed its place: the next one is queued (max_pending 1)"
out=$(cli curl -sS -D "$H" -w ' %{http_code}' "http://127.0.0.1:15016/ld")
expect_eq "$out" "upstream connect error or disconnect/reset before headers. reset reason: overflow 503" \
	"queue full (max_pending 1): 503 with Envoy's overflow text"
expect "queue full: x-envoy-overloaded: true" grep -qi '^x-envoy-overloaded: true' "$H"
reap "$LA" 10
reap "$LC" 10
expect_eq "$(cat "$WORK/la.code") $(cat "$WORK/lc.code")" "200 200" "the first and the queued request both served"
expect_eq "$(grep -cE '^GET /l[bd] ' "$WORK/d.out")" 0 "the request that left and the overflow never reached the upstream"
cli curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:15016/mr1?delay=1s" >"$WORK/mr1.code" &
MR1=$!
LIVE[$MR1]=1
wait_log "$WORK/d.out" '^GET /mr1?delay=1s ' || fail "request mr1 reached bm-echo"
out=$(cli curl -sS -D "$H" -o /dev/null -w '%{http_code}' "http://127.0.0.1:15016/mr2")
reap "$MR1" 10
expect_eq "$(cat "$WORK/mr1.code") $out" "200 503" "max_requests 1: a second request in flight gets 503 at once"
expect "max_requests: x-envoy-overloaded: true" grep -qi '^x-envoy-overloaded: true' "$H"
dump_stats "$CBL" cbl
expect_eq "$(stat_of cbl rq_pending_total) $(stat_of cbl rq_pending_overflow) $(stat_of cbl rq_pending_active)" "2 2 0" \
	"stats: two requests queued, two overflows (queue full, max_requests), queue empty"
expect_eq "$(awk '{ print $1, $2, $4 }' "$WORK/cbl.outcomes" | sort | tr '\n' ';')" \
	"response 200 cbl;response 200 cbl;response 200 cbm;" "outcomes: one per request that reached bm-echo, none for overflows or the client that left"
stop_proxy "$CBL" cbl

echo "# per cluster: max_requests_per_conn, max_retries"
start_proxy cbp 15017 --upstream 127.0.0.1:8083 --max-requests-per-conn 2 \
	--route '/pc=cbpc,max_requests_per_conn=10' --route '/rt=cbr,max_retries=1,retries=2,retry_on=5xx,fail_first=1' \
	--route '/ru=cbu,retries=2,retry_on=5xx,fail_first=1' || fail "harness cbp starts"
CBP=$PX_PID
urls=()
for i in $(seq 1 30); do urls+=(-o /dev/null "http://127.0.0.1:15017/pc$i"); done
cli curl -sS "${urls[@]}"
expect_eq "$(grep -E '^GET /pc[0-9]+ 200 ' "$WORK/d.out" | sed 's/.*client=//; s/ .*//' | sort | uniq -c | awk '{ print $1 }' | tr '\n' ' ')" \
	"10 10 10 " "max_requests_per_conn 10 (cluster) over the proxy's 2: 30 requests on 3 upstream connections, 10 each"
urls=()
for i in $(seq 1 4); do urls+=(-o /dev/null "http://127.0.0.1:15017/po$i"); done
cli curl -sS "${urls[@]}"
expect_eq "$(grep -E '^GET /po[0-9]+ 200 ' "$WORK/d.out" | sed 's/.*client=//; s/ .*//' | sort -u | wc -l)" 2 \
	"a cluster without the override keeps the proxy's 2 per connection"
dump_stats "$CBP" cbp
r0=$(stat_of cbp retries)
for i in 1 2 3; do
	cli curl -sS -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:15017/rt$i?delay=300ms" >"$WORK/rt$i.code" &
	LIVE[$!]=1
	RT[$i]=$!
done
for i in 1 2 3; do reap "${RT[$i]}" 15; done
expect_eq "$(cat "$WORK"/rt[123].code | sort | tr '\n' ' ')" "200 503 503 " \
	"max_retries 1: three requests fail at once, one is retried (200), two answered as if out of retries (503)"
dump_stats "$CBP" cbp
expect_eq "$(($(stat_of cbp retries) - r0)) $(stat_of cbp retry_overflow)" "1 2" "stats: one retry, two retry overflows"
expect_eq "$(grep -cE '^GET /rt[123]\?delay=300ms&status=503 503 ' "$WORK/d.out") $(grep -cE '^GET /rt[123]\?delay=300ms 200 ' "$WORK/d.out")" \
	"3 1" "max_retries 1: bm-echo saw three first tries and one retry"
for i in 1 2 3; do
	cli curl -sS -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:15017/ru$i?delay=300ms" >"$WORK/ru$i.code" &
	LIVE[$!]=1
	RT[$i]=$!
done
for i in 1 2 3; do reap "${RT[$i]}" 15; done
expect_eq "$(cat "$WORK"/ru[123].code | tr '\n' ' ')" "200 200 200 " "max_retries unset (0: no limit): all three retried"
stop_proxy "$CBP" cbp

echo "# per cluster: idle_timeout (DestinationRule connectionPool.http.idleTimeout)"
start_proxy cbi 15020 --upstream 127.0.0.1:8083 --route '/=cbi,idle_timeout=300' || fail "harness cbi starts"
CBI=$PX_PID
cli curl -sS -o /dev/null "http://127.0.0.1:15020/it1"
sleep 0.1
dump_stats "$CBI" cbi
expect_eq "$(stat_of cbi upstream_cx_active)" 1 "idle_timeout 300 ms: the connection waits in the pool after its request"
sleep 0.6
dump_stats "$CBI" cbi
expect_eq "$(stat_of cbi upstream_cx_active) $(stat_of cbi upstream_cx)" "0 1" \
	"... and is closed once idle for 300 ms (the proxy's own idle time is 30 s)"
stop_proxy "$CBI" cbi

echo "# outcomes: one line per attempt"
start_proxy oc 15018 --upstream 127.0.0.1:8080 --outcomes "$WORK/oc.outcomes" --retries 2 \
	--retry-on 5xx,connect-failure,reset --per-try-timeout 300 --timeout 5000 \
	--route '/refused=refused,upstream=127.0.0.1:9' --route '/reset=reset,upstream=127.0.0.1:9000' \
	--route '/o503=o503' --route '/pt=pt' --route '/ok=ok' || fail "harness oc starts"
OC=$PX_PID
oc_lines() { awk -v c="$1" '$4 == c { print $1, $2, $3 }' "$WORK/oc.outcomes" | sort | uniq -c | awk '{ $1 = $1; print }' | tr '\n' ';'; }
expect_eq "$(code http://127.0.0.1:15018/ok) $(oc_lines ok)" "200 1 response 200 127.0.0.1:8080;" \
	"outcome: a 200 is one response line"
expect_eq "$(code 'http://127.0.0.1:15018/o503?status=503') $(oc_lines o503)" "503 3 response 503 127.0.0.1:8080;" \
	"outcome: a 503 upstream, tried three times: three response 503 lines (5xx retried included)"
expect_eq "$(grep -c '^GET /o503?status=503 503 ' "$WORK/a.out")" 3 "outcome: and bm-echo saw three requests"
expect_eq "$(code http://127.0.0.1:15018/refused) $(oc_lines refused)" "503 3 connect_fail 0 127.0.0.1:9;" \
	"outcome: a refused port, three tries: three connect_fail lines"
expect_eq "$(code http://127.0.0.1:15018/reset) $(oc_lines reset)" "503 3 reset 0 127.0.0.1:9000;" \
	"outcome: an upstream reset, three tries: three reset lines"
expect_eq "$(code 'http://127.0.0.1:15018/pt?delay=2s') $(oc_lines pt)" "504 3 timeout 0 127.0.0.1:8080;" \
	"outcome: per-try timeouts, three tries: three timeout lines"
expect_eq "$(wc -l <"$WORK/oc.outcomes")" 13 "outcome: 13 lines in all, nothing else"
stop_proxy "$OC" oc

echo "# drain"
start_proxy drain 15019 --upstream 127.0.0.1:8080 || fail "harness drain starts"
DR=$PX_PID
cli curl -sS -D "$WORK/dr_slow.h" -o "$WORK/dr_slow.b" -w '%{http_code}' "http://127.0.0.1:15019/drain-slow?delay=1s" \
	>"$WORK/dr_slow.code" 2>"$WORK/dr_slow.err" &
DSLOW=$!
LIVE[$DSLOW]=1
printf 'GET /drain-p1?delay=1s HTTP/1.1\r\nHost: a\r\n\r\nGET /drain-p2 HTTP/1.1\r\nHost: a\r\n\r\n' >"$WORK/dr_pipe.in"
cli nc 127.0.0.1 15019 <"$WORK/dr_pipe.in" >"$WORK/dr_pipe.out" &
DPIPE=$!
LIVE[$DPIPE]=1
cat >"$WORK/idle.py" <<'EOF'
import socket, time
s = socket.create_connection(("127.0.0.1", 15019), timeout=10)
s.sendall(b"GET /drain-idle HTTP/1.1\r\nHost: a\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(4096)
head, body = buf.split(b"\r\n\r\n", 1)
n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
while len(body) < n:
    body += s.recv(4096)
print(head.split(b"\r\n")[0].decode(), flush=True)
try:
    print("fin" if s.recv(1) == b"" else "data", time.time(), flush=True)
except ConnectionResetError:
    print("reset", time.time(), flush=True)
except socket.timeout:
    print("timeout", time.time(), flush=True)
EOF
cli python3 "$WORK/idle.py" >"$WORK/dr_idle.out" 2>&1 &
DIDLE=$!
LIVE[$DIDLE]=1
wait_log "$WORK/a.out" '^GET /drain-slow?delay=1s ' && wait_log "$WORK/a.out" '^GET /drain-p1?delay=1s ' || fail "drain: the slow requests reached bm-echo"
for ((i = 0; i < 100; i++)); do grep -q 'HTTP/1.1 200' "$WORK/dr_idle.out" && break; sleep 0.05; done
expect "drain: the idle client got its first response" grep -q 'HTTP/1.1 200' "$WORK/dr_idle.out"
t_drain=$EPOCHREALTIME
kill -USR2 "$DR"
sleep 0.1
expect "drain: the harness is still running (requests in flight)" alive "$DR"
cli curl -sS -o /dev/null http://127.0.0.1:15019/after-drain 2>/dev/null
rc=$?
expect "drain: a new connection is accepted and closed at once, no answer (curl exit $rc: 52 empty reply or 56 reset)" \
	bash -c "[ $rc = 52 ] || [ $rc = 56 ]"
reap "$DIDLE" 10
read -r what t_fin < <(tail -1 "$WORK/dr_idle.out")
expect_eq "$what" fin "drain: the idle keep-alive client sees a clean FIN (no reset)"
expect "drain: the FIN came at once ($(awk -v a="$t_drain" -v b="${t_fin:-0}" 'BEGIN { printf "%.2f", b - a }') s after the drain)" \
	awk -v a="$t_drain" -v b="${t_fin:-0}" 'BEGIN { exit !(b - a >= 0 && b - a < 0.9) }'
reap "$DSLOW" 10
expect_eq "$(cat "$WORK/dr_slow.code")" 200 "drain: the slow request in flight gets its full 200"
expect_eq "$(json "$WORK/dr_slow.b" .path)" "/drain-slow?delay=1s" "drain: with the whole body"
expect "drain: its response carries connection: close" grep -qi '^connection: close' "$WORK/dr_slow.h"
reap "$DPIPE" 10
expect_eq "$(grep -ac '^HTTP/1.1 ' "$WORK/dr_pipe.out") $(grep -aci '^connection: close' "$WORK/dr_pipe.out")" "1 1" \
	"drain: pipelined requests: the one in flight answered with connection: close, the next not served"
expect_eq "$(grep -c '^GET /drain-p2 ' "$WORK/a.out")" 0 "drain: the pipelined request never went upstream"
reap "$DR" 5
expect_eq "$?" 0 "drain: the harness exits by itself (0) once every client is done"
if grep -qE 'Sanitizer|runtime error|ERROR:' "$WORK/drain.err"; then
	fail "drain: no sanitizer report"
	sed 's/^/#   /' "$WORK/drain.err" | head -40
else
	pass "drain: no sanitizer report"
fi

# ---- the upstreams stop cleanly too ----
for p in "${!LIVE[@]}"; do
	kill -TERM "$p" 2>/dev/null
done
for p in "${!LIVE[@]}"; do
	reap "$p" 10
done
if grep -qE 'Sanitizer|runtime error' "$WORK"/a.err "$WORK"/b.err "$WORK"/c.err "$WORK"/d.err; then
	fail "bm-echo: no sanitizer report"
fi

echo
echo "# $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
