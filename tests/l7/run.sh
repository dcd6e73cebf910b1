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

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${BM_SAN:-0}" = 1 ]; then
	OUTDIR=$ROOT/.output/san
else
	OUTDIR=$ROOT/.output
fi
PROXY=${BM_H1PROXY:-$OUTDIR/tests/tools/h1proxy}
ECHO=${BM_ECHO:-$OUTDIR/bin/bm-echo}
UPSTREAM_PY=$ROOT/tests/l7/upstream.py
NS=bml7$$
WORK=
PASS=0
FAIL=0
declare -A LIVE=()	# PIDs this script started and has not reaped yet
. "$(dirname "$0")/../lib/tap.sh"
PAT=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_

# ---- cleanup: every PID started here, the namespace, the work dir; on any exit ----
cleanup() {
	local pid

	for pid in "${!LIVE[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${!LIVE[@]}"; do
		reap "$pid" 5 2>/dev/null
	done
	LIVE=()
	ip netns del "$NS" 2>/dev/null
	[ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM HUP

expect_eq() { # GOT WANT NAME
	if [ "$1" == "$2" ]; then
		pass "$3"
	else
		fail "$3 (got '${1:0:300}', want '${2:0:300}')"
	fi
}

expect() { # NAME COMMAND...
	local name=$1

	shift
	if "$@"; then
		pass "$name"
	else
		fail "$name"
	fi
}

# Every client runs in the namespace, bounded in time.
cli() {
	timeout 120 ip netns exec "$NS" "$@"
}

code() { # curl args...: the status code
	cli curl -sS -o /dev/null -w '%{http_code}' "$@"
}

fge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
fle() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

pattern_bytes() { # N: the first N bytes of bm-echo's /size/N body
	awk -v n="$1" -v p="$PAT" 'BEGIN { s = p; while (length(s) < n) s = s s; printf "%s", substr(s, 1, n) }'
}

sha() { sha256sum | cut -d' ' -f1; }

json() { # FILE FILTER
	jq -r "$2" "$1" 2>/dev/null || echo '!invalid'
}

wait_port() { # PORT PID: until something listens on 127.0.0.1:PORT in the namespace
	local i

	for ((i = 0; i < 200; i++)); do
		ip netns exec "$NS" ss -Htln "sport = :$1" 2>/dev/null | grep -q . && return 0
		alive "$2" || return 1
		sleep 0.05
	done
	return 1
}

# A plain command prefix (not a function): started with &, $! is then the process itself
# (env and ip netns exec both exec), so signals and reaping reach it, not a subshell.
SAN_ENV=(env ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)

# start_echo NAME PORT [ARGS...]: bm-echo as pod NAME; its access log is $WORK/NAME.out
start_echo() {
	local name=$1 port=$2

	shift 2
	"${SAN_ENV[@]}" ip netns exec "$NS" "$ECHO" --pod "$name" --namespace ns --node node \
		--ready-file "$WORK/$name.ready" --tcp "$port" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	LIVE[$!]=1
	local i pid=$!

	for ((i = 0; i < 200; i++)); do
		[ -e "$WORK/$name.ready" ] && return 0
		alive "$pid" || return 1
		sleep 0.05
	done
	return 1
}

# start_proxy NAME PORT ARGS...: the harness on 127.0.0.1:PORT; sets PX_PID and PX_NAME.
# Stats go to $WORK/NAME.stats (SIGUSR1 or exit), stderr to $WORK/NAME.err.
start_proxy() {
	local name=$1 port=$2

	shift 2
	"${SAN_ENV[@]}" ip netns exec "$NS" "$PROXY" --listen "127.0.0.1:$port" --stats "$WORK/$name.stats" \
		"$@" >"$WORK/$name.log" 2>"$WORK/$name.err" &
	PX_PID=$!
	PX_NAME=$name
	LIVE[$PX_PID]=1
	wait_port "$port" "$PX_PID"
}

stat_of() { # NAME COUNTER: from the last stats dump
	awk -v k="$2" '$1 == k { print $2 }' "$WORK/$1.stats" 2>/dev/null
}

dump_stats() { # PID NAME
	rm -f "$WORK/$2.stats"
	kill -USR1 "$1"
	for ((i = 0; i < 100; i++)); do
		[ -s "$WORK/$2.stats" ] && return 0
		sleep 0.02
	done
}

# stop_proxy PID NAME: SIGTERM; it must exit 0 with no sanitizer report.
stop_proxy() {
	local rc

	kill -TERM "$1"
	reap "$1" 20
	rc=$?
	expect_eq "$rc" 0 "$2: exits 0 on SIGTERM"
	if grep -qE 'Sanitizer|runtime error|ERROR:' "$WORK/$2.err"; then
		fail "$2: no sanitizer report (leaks, UB, memory errors)"
		sed 's/^/#   /' "$WORK/$2.err" | head -40
	else
		pass "$2: no sanitizer report (leaks, UB, memory errors)"
	fi
}

hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

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
expect_eq "$(json "$B" '[.headers | keys[] | select(. == "connection" or . == "x-hop" or . == "keep-alive" or . == "proxy-connection" or . == "te" or . == "upgrade")] | length')" \
	0 "hop-by-hop headers (and those named in Connection) not forwarded"

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

# ---- the upstreams stop cleanly too ----
for p in "${!LIVE[@]}"; do
	kill -TERM "$p" 2>/dev/null
done
for p in "${!LIVE[@]}"; do
	reap "$p" 10
done
if grep -qE 'Sanitizer|runtime error' "$WORK"/a.err "$WORK"/b.err "$WORK"/c.err; then
	fail "bm-echo: no sanitizer report"
fi

echo
echo "# $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
