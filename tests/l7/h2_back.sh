#!/usr/bin/env bash
# tests/l7/h2_back.sh - the HTTP/2 back end to end: the h1proxy harness with --h2-upstream (the
# engine's requests as streams of pooled h2c connections) between HTTP/1.1 clients (curl, nc,
# wrk, python) and h2c upstreams (nginx, a python h2 server, a python gRPC server), all on
# loopback inside a network namespace this script creates and removes.
#
# usage (as root): tests/l7/h2_back.sh            normal build (.output/...)
#                  BM_SAN=1 tests/l7/h2_back.sh   ASan+UBSan build (.output/san/...)
# Prints "ok - ..." / "not ok - ..." per check and a summary; exit 0 when all passed, 1 when
# any failed, 77 (with "SKIP - reason") when the tests could not run.
set -uo pipefail

PY=/usr/bin/python3	# Debian's, with the h2 and grpc modules (a pyenv python3 may lack them)
NS=bmh2b$$
. "$(dirname "$0")/lib.sh"

start_proxy() { # NAME PORT ARGS...: the harness with --h2-upstream on 127.0.0.1:PORT
	px_start "$1" 127.0.0.1 "$2" --h2-upstream "${@:3}"
}


# ---- preconditions ----
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
for tool in ip curl nc nginx wrk jq awk sha256sum timeout ss; do
	command -v "$tool" >/dev/null || skip "$tool not installed"
done
[ -x "$PY" ] || skip "no $PY"
"$PY" -c 'import h2' 2>/dev/null || skip "$PY has no h2 module (python3-h2)"
[ -x "$PROXY" ] || skip "no harness at $PROXY (make ${BM_SAN:+SAN=1 }${PROXY#$ROOT/})"
USAGE=$("$PROXY" --help 2>&1)
grep -q -- '--h2-upstream' <<<"$USAGE" || skip "harness $PROXY has no --h2-upstream"
HAVE_GRPC=0
"$PY" -c 'import grpc' 2>/dev/null && HAVE_GRPC=1
HAVE_FRONT=0
grep -qE -- '--h2([^-]|$)' <<<"$USAGE" && HAVE_FRONT=1
WORK=$(mktemp -d /tmp/bmh2b.XXXXXX) || skip "mktemp failed"
ip netns add "$NS" || skip "cannot create network namespace $NS"
ip -n "$NS" link set lo up || skip "cannot bring up lo in $NS"
SAN=0
ldd "$PROXY" 2>/dev/null | grep -q libasan && SAN=1
echo "# h2 back tests: harness $PROXY (sanitizers: $SAN), netns $NS"

# ---- the upstreams ----
# nginx: h2c with prior knowledge only (Debian's 1.22: "listen ... http2" without TLS), its own
# config and prefix in WORK, in the foreground; $connection in its log names the TCP connection.
mkdir -p "$WORK/nginx/www" "$WORK/nginx/tmp"
head -c 1048576 /dev/urandom >"$WORK/nginx/www/big.bin"
head -c 16777216 /dev/urandom >"$WORK/nginx/www/16m.bin"
echo hello >"$WORK/nginx/www/hello.txt"
cat >"$WORK/nginx/nginx.conf" <<NGX
user root;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log info;
events { worker_connections 1024; }
http {
	log_format h2 '\$request \$status \$server_protocol conn=\$connection';
	access_log $WORK/nginx/access.log h2;
	client_body_temp_path $WORK/nginx/tmp/body;
	proxy_temp_path $WORK/nginx/tmp/proxy;
	fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
	uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
	scgi_temp_path $WORK/nginx/tmp/scgi;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:18080 http2;
		root $WORK/nginx/www;
		location / { }
	}
}
NGX
ip netns exec "$NS" nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" \
	-g 'daemon off;' >"$WORK/nginx/out" 2>&1 &
LIVE[$!]=1
NGINX=$!
wait_port 18080 "$NGINX" || { fail "nginx (h2c) starts"; sed 's/^/#   /' "$WORK/nginx/out" "$WORK/nginx/error.log"; exit 1; }

cat >"$WORK/h2up.py" <<'PYEOF'
# An h2c (prior knowledge) upstream for the back's tests, on asyncio and the h2 module.
# usage: h2up.py PORT LOGFILE [MAX_CONCURRENT_STREAMS]. Every event of note goes to the log,
# one line each: conn, lost, req <id> <path>, rst <id> <code>, trailers <id> <json>. Paths:
#   /delay*?ms=N     200 after N ms             /chunked?n=N  N bytes, no content-length
#   /trailers        200, a body, then trailers  /upload       {"bytes","sha256","trailers"}
#   /goaway          GOAWAY refusing this stream /goaway-once  the first time only, then 200
#   /refuse          RST_STREAM(REFUSED_STREAM)  /reset        RST_STREAM(INTERNAL_ERROR)
#   /reset-after-head  HEADERS and some DATA, then RST_STREAM
#   /close           the TCP connection closes   /bad          a connection-specific field
#   /huge-head       a 70000-byte field          /status?code=N  that status, no body
#   /hints           103 Early Hints, then 200
#   anything else    200, JSON: method, path, headers (pseudo-headers included)
import asyncio
import hashlib
import json
import sys
from urllib.parse import parse_qs, urlparse

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

LOG = open(sys.argv[2], "a", buffering=1)
MAX = int(sys.argv[3]) if len(sys.argv) > 3 else 100  # SETTINGS_MAX_CONCURRENT_STREAMS
STATE = {"goaway_once": False}


class Conn(asyncio.Protocol):
    def __init__(self):
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False)
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.reqs = {}
        self.pending = {}  # stream id -> [bytes left to send, trailers]
        self.dead = set()

    def connection_made(self, transport):
        self.t = transport
        self.h2.local_settings = h2.settings.Settings(
            client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX})
        self.h2.initiate_connection()
        self.flush()
        LOG.write("conn\n")

    def flush(self):
        data = self.h2.data_to_send()
        if data and not self.t.is_closing():
            self.t.write(data)

    def data_received(self, data):
        try:
            events = self.h2.receive_data(data)
        except Exception as e:  # a protocol error: logged, the connection goes
            LOG.write("error %s\n" % e)
            self.t.close()
            return
        for ev in events:
            try:
                self.event(ev)
            except h2.exceptions.ProtocolError as e:  # e.g. a stream after our GOAWAY
                LOG.write("error %s\n" % e)
        self.flush()

    def event(self, ev):
        sid = getattr(ev, "stream_id", None)
        if isinstance(ev, h2.events.RequestReceived):
            self.request(ev)
        elif isinstance(ev, h2.events.DataReceived):
            r = self.reqs.get(sid)
            if r is not None:
                r["bytes"] += len(ev.data)
                r["sha"].update(ev.data)
            self.h2.acknowledge_received_data(ev.flow_controlled_length, sid)
        elif isinstance(ev, h2.events.TrailersReceived):
            r = self.reqs.get(sid)
            if r is not None:
                r["trailers"] = dict(ev.headers)
            LOG.write("trailers %d %s\n" % (sid, json.dumps(dict(ev.headers))))
        elif isinstance(ev, h2.events.StreamEnded):
            self.ended(sid)
        elif isinstance(ev, h2.events.StreamReset):
            LOG.write("rst %d %d\n" % (sid, int(ev.error_code)))
            self.dead.add(sid)
            self.pending.pop(sid, None)
        elif isinstance(ev, h2.events.WindowUpdated):
            self.pump()

    def connection_lost(self, exc):
        LOG.write("lost\n")

    def request(self, ev):
        sid = ev.stream_id
        hdrs = dict(ev.headers)
        u = urlparse(hdrs.get(":path", "/"))
        r = {"headers": hdrs, "path": u.path, "q": parse_qs(u.query), "bytes": 0,
             "sha": hashlib.sha256(), "trailers": {}}
        self.reqs[sid] = r
        LOG.write("req %d %s\n" % (sid, hdrs.get(":path")))
        p = u.path
        if p == "/goaway" or (p == "/goaway-once" and not STATE["goaway_once"]):
            STATE["goaway_once"] |= p == "/goaway-once"
            r["answered"] = True
            self.h2.close_connection(error_code=0, last_stream_id=max(sid - 2, 0))
        elif p == "/refuse":
            self.h2.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
        elif p == "/reset":
            self.h2.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
        elif p == "/close":
            self.t.close()
        elif p == "/bad":
            self.h2.send_headers(sid, [(":status", "200"), ("connection", "close")],
                                 end_stream=True)
        elif p == "/huge-head":
            self.h2.send_headers(sid, [(":status", "200"), ("x-huge", "h" * 70000)],
                                 end_stream=True)
        elif p == "/reset-after-head":
            self.h2.send_headers(sid, [(":status", "200")])
            self.h2.send_data(sid, b"partial")
            asyncio.get_event_loop().call_later(0.2, self.late_reset, sid)

    def late_reset(self, sid):
        if sid not in self.dead and not self.t.is_closing():
            try:
                self.h2.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
            except h2.exceptions.ProtocolError as e:
                LOG.write("error %s\n" % e)
            self.flush()

    def ended(self, sid):
        r = self.reqs.get(sid)
        if r is None or sid in self.dead:
            return
        p, q = r["path"], r["q"]
        if r.get("answered") or p in ("/refuse", "/reset", "/close", "/bad", "/huge-head",
                                      "/reset-after-head"):
            return
        if p.startswith("/delay"):
            ms = int(q.get("ms", ["1000"])[0])
            asyncio.get_event_loop().call_later(ms / 1000, self.respond, sid, 200,
                                                [("content-type", "text/plain")], b"late\n")
        elif p == "/hints":
            self.h2.send_headers(sid, [(":status", "103"), ("link", "</a.css>; rel=preload")])
            self.respond(sid, 200, [("content-length", "7")], b"hinted\n")
        elif p == "/chunked":
            n = int(q.get("n", ["100000"])[0])
            self.respond(sid, 200, [], bytes(i % 251 for i in range(n)))
        elif p == "/trailers":
            self.respond(sid, 200, [("content-type", "text/plain")], b"hello\n",
                         [("x-trailer", "yes"), ("grpc-status", "0")])
        elif p == "/upload":
            body = json.dumps({"bytes": r["bytes"], "sha256": r["sha"].hexdigest(),
                               "trailers": r["trailers"]}).encode()
            self.respond(sid, 200, [("content-type", "application/json"),
                                    ("content-length", str(len(body)))], body)
        elif p == "/status":
            self.respond(sid, int(q.get("code", ["204"])[0]), [], b"")
        else:
            body = json.dumps({"method": r["headers"].get(":method"), "path": p,
                               "headers": r["headers"]}).encode()
            self.respond(sid, 200, [("content-type", "application/json"),
                                    ("content-length", str(len(body)))],
                         b"" if r["headers"].get(":method") == "HEAD" else body)

    def respond(self, sid, status, hdrs, body, trailers=None):
        if sid in self.dead or self.t.is_closing():
            return
        try:
            self.h2.send_headers(sid, [(":status", str(status))] + hdrs,
                                 end_stream=not body and not trailers)
        except h2.exceptions.ProtocolError as e:
            LOG.write("send %d: %s\n" % (sid, e))
            return
        if body or trailers:
            self.pending[sid] = [body, trailers]
            self.pump()
        self.flush()

    def pump(self):
        for sid in list(self.pending):
            body, trailers = self.pending[sid]
            try:
                while body:
                    n = min(len(body), self.h2.local_flow_control_window(sid),
                            self.h2.max_outbound_frame_size)
                    if n <= 0:
                        break
                    self.h2.send_data(sid, body[:n])
                    body = body[n:]
                self.pending[sid][0] = body
                if not body:
                    del self.pending[sid]
                    if trailers:
                        self.h2.send_headers(sid, trailers, end_stream=True)
                    else:
                        self.h2.end_stream(sid)
            except h2.exceptions.ProtocolError as e:
                LOG.write("send %d: %s\n" % (sid, e))
                self.pending.pop(sid, None)
        self.flush()


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Conn, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()


asyncio.run(main())
PYEOF

cat >"$WORK/grpcsrv.py" <<'PYEOF'
# A gRPC server for the back's tests: generic handlers, identity (de)serializers (no protoc).
#   test.Echo/Unary       returns the request's bytes
#   test.Echo/Stream      5 messages: <request>-0 .. <request>-4
#   test.Echo/Fail        aborts NOT_FOUND "nope" before any message (a trailers-only response)
#   test.Echo/StreamFail  2 messages, then aborts NOT_FOUND "nope" (status in real trailers)
import sys
import time
from concurrent import futures

import grpc


def unary(req, ctx):
    return req


def stream(req, ctx):
    for i in range(5):
        yield req + b"-%d" % i


def fail(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, "nope")


def stream_fail(req, ctx):
    yield req + b"-0"
    yield req + b"-1"
    ctx.abort(grpc.StatusCode.NOT_FOUND, "nope")


handler = grpc.method_handlers_generic_handler("test.Echo", {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "Stream": grpc.unary_stream_rpc_method_handler(stream),
    "Fail": grpc.unary_unary_rpc_method_handler(fail),
    "StreamFail": grpc.unary_stream_rpc_method_handler(stream_fail),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((handler,))
server.add_insecure_port("127.0.0.1:%s" % sys.argv[1])
server.start()
print("ready", flush=True)
server.wait_for_termination()
PYEOF

# start_py NAME PORT ARGS...: python script NAME.py on PORT; its log is $WORK/NAME.log.
start_py() {
	local name=$1 port=$2 pid

	shift 2
	ip netns exec "$NS" "$PY" "$WORK/$name.py" "$port" "$@" >"$WORK/$name-$port.out" 2>&1 &
	pid=$!
	LIVE[$pid]=1
	wait_port "$port" "$pid"
}
start_py h2up 19000 "$WORK/up.log" || { fail "python h2 upstream starts"; exit 1; }
start_py h2up 19001 "$WORK/up2.log" 2 || { fail "python h2 upstream (2 streams at most) starts"; exit 1; }
if [ "$HAVE_GRPC" = 1 ]; then
	start_py grpcsrv 19500 || { fail "python gRPC server starts"; exit 1; }
fi
B=$WORK/body H=$WORK/head

# ==== nginx as an h2c upstream ====
echo "# nginx (h2c prior knowledge) through the back"
start_proxy ng 15001 --upstream 127.0.0.1:18080 || { fail "harness ng starts"; exit 1; }
NG=$PX_PID
P=http://127.0.0.1:15001
out=$(cli curl -sS -D "$H" -o "$B" -w '%{http_code}' "$P/big.bin")
expect_eq "$out" 200 "GET through the back: 200"
expect_eq "$(sha <"$B")" "$(sha <"$WORK/nginx/www/big.bin")" "GET: the 1 MiB file's bytes (sha256)"
expect "GET: content-length from nginx kept" grep -qi '^content-length: 1048576' "$H"
expect_eq "$(tail -1 "$WORK/nginx/access.log" | awk '{ print $1, $2, $4, $5 }')" "GET /big.bin 200 HTTP/2.0" \
	"nginx's access log: the request came as HTTP/2.0"
out=$(cli curl -sS -I -o /dev/null -w '%{http_code} %{size_download}' "$P/big.bin" -D "$H")
expect_eq "$out" "200 0" "HEAD: 200, no body"
expect "HEAD: nginx's content-length kept" grep -qi '^content-length: 1048576' "$H"
etag=$(awk -F': ' 'tolower($1) == "etag" { print $2 }' "$H" | tr -d '\r')
out=$(cli curl -sS -o "$B" -D "$H" -w '%{http_code} %{size_download}' -H "If-None-Match: $etag" "$P/big.bin")
expect_eq "$out" "304 0" "If-None-Match: 304 with no body"
expect_eq "$(cli curl -sS -o /dev/null -w '%{http_code}' "$P/missing")" 404 "a 404 passes as it is"

# 200 sequential requests: one client connection each, one upstream connection in all.
for ((i = 0; i < 200; i++)); do
	echo "url = \"http://127.0.0.1:15002/hello.txt?seq=$i\""
	echo "output = /dev/null"
done >"$WORK/seq.curl"
start_proxy seq 15002 --upstream 127.0.0.1:18080 || fail "harness seq starts"
SEQ=$PX_PID
codes=$(cli curl -sS -K "$WORK/seq.curl" -w '%{http_code}\n' | sort | uniq -c | awk '{ $1 = $1; print }')
expect_eq "$codes" "200 200" "200 sequential requests: 200 x 200"
dump_stats "$SEQ" seq
expect_eq "$(stat_of seq h2_upstream_cx) $(stat_of seq h2_upstream_rq)" "1 200" \
	"200 sequential requests: 200 streams on ONE upstream connection (h2_upstream_cx 1)"
expect_eq "$(grep -c 'seq=' "$WORK/nginx/access.log") $(grep 'seq=' "$WORK/nginx/access.log" | awk '{ print $5 }' | sort -u | wc -l)" \
	"200 1" "nginx saw the 200 requests on one connection"
expect_eq "$(stat_of seq h2_upstream_rq_active) $(stat_of seq h2_upstream_cx_active)" "0 1" \
	"no stream left, the connection kept for the next one"
stop_proxy "$SEQ" seq

# 64 concurrent clients: multiplexed on few connections.
start_proxy conc 15003 --upstream 127.0.0.1:18080 || fail "harness conc starts"
CONC=$PX_PID
rm -f "$WORK/conc.stop"
(for ((i = 0; i < 40; i++)); do
	[ -e "$WORK/conc.stop" ] && break
	ip netns exec "$NS" ss -Htnp state established "( dport = :18080 )" 2>/dev/null | grep -c "pid=$CONC,"
	sleep 0.05
done >"$WORK/conc.samples") &
samp=$!
LIVE[$samp]=1
cli wrk -t4 -c64 -d2s --timeout 5s http://127.0.0.1:15003/hello.txt >"$WORK/conc.wrk" 2>&1
touch "$WORK/conc.stop"
reap "$samp" 5
dump_stats "$CONC" conc
nreq=$(awk '/requests in/ { print $1 }' "$WORK/conc.wrk")
maxc=$(sort -n "$WORK/conc.samples" | tail -1)
echo "#   wrk -c64 -d2s: ${nreq:-?} requests, upstream connections at most ${maxc:-?} at once, $(stat_of conc h2_upstream_cx) opened"
expect "64 concurrent clients: every answer 2xx, no socket error (${nreq:-0} requests)" \
	bash -c "[ '${nreq:-0}' -gt 1000 ] && ! grep -qE 'Non-2xx|Socket errors' '$WORK/conc.wrk'"
expect "64 concurrent clients: multiplexed on few upstream connections ($(stat_of conc h2_upstream_cx) opened, at most ${maxc:-?} at once)" \
	bash -c "[ '$(stat_of conc h2_upstream_cx)' -le 2 ] && [ '${maxc:-99}' -le 2 ]"
expect_eq "$(stat_of conc h2_upstream_rq)" "$(stat_of conc requests)" "every request of the engine was one stream"
expect_eq "$(stat_of conc h2_upstream_rq_active)" 0 "no stream left after the load"
stop_proxy "$CONC" conc

# Backpressure both ways: a slow reader of 16 MiB and a 1 GiB upload leave the memory flat.
start_proxy mem 15004 --upstream 127.0.0.1:18080 --route '/upload=,upstream=127.0.0.1:19000' ||
	fail "harness mem starts"
MEM=$PX_PID
cli curl -sS -o /dev/null http://127.0.0.1:15004/hello.txt
hwm0=$(hwm_kb "$MEM")
out=$(cli curl -sS --limit-rate 8M -o "$B" -w '%{http_code}' http://127.0.0.1:15004/16m.bin)
expect_eq "$out $(sha <"$B")" "200 $(sha <"$WORK/nginx/www/16m.bin")" "a slow reader (8 MB/s) gets the 16 MiB file whole"
want=$(head -c 1073741824 /dev/zero | sha)
cli bash -c "head -c 1073741824 /dev/zero | curl -sS -T - -o '$B' http://127.0.0.1:15004/upload"
expect_eq "$(json "$B" '"\(.bytes) \(.sha256)"')" "1073741824 $want" "a 1 GiB chunked upload reaches the upstream whole"
hwm1=$(hwm_kb "$MEM")
echo "#   VmHWM ${hwm0} -> ${hwm1} kB"
expect "the harness' memory stays flat (VmHWM +$((hwm1 - hwm0)) kB < 4 MiB)" test $((hwm1 - hwm0)) -lt 4096
# A slow reader holds only its own stream's window: the connection serves others meanwhile.
cli curl -sS --limit-rate 1M --max-time 2 -o /dev/null http://127.0.0.1:15004/16m.bin 2>/dev/null &
slow=$!
LIVE[$slow]=1
sleep 0.5
t0=$EPOCHREALTIME
codes=$(for ((i = 0; i < 20; i++)); do cli curl -sS -o /dev/null -w '%{http_code} ' http://127.0.0.1:15004/hello.txt; done)
t1=$EPOCHREALTIME
dump_stats "$MEM" mem
expect "20 requests beside a stalled 16 MiB download: all 200 at once ($(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s), on the same connection (h2_upstream_cx $(stat_of mem h2_upstream_cx))" \
	bash -c "[ '$(tr ' ' '\n' <<<"$codes" | grep -c 200)' = 20 ] && [ '$(stat_of mem h2_upstream_cx)' = 2 ] && \
		awk -v a='$t0' -v b='$t1' 'BEGIN { exit !(b - a < 2) }'"
reap "$slow" 10
sleep 0.3
dump_stats "$MEM" mem
expect_eq "$(stat_of mem h2_upstream_rq_active)" 0 "the slow reader gone (curl --max-time): its stream is gone too"
stop_proxy "$MEM" mem

# ==== the conversion, against a python h2 server that says what it got ====
echo "# requests and responses converted (python h2 upstream)"
start_proxy py 15010 --upstream 127.0.0.1:19000 --retries 0 --outcomes "$WORK/py.outcomes" ||
	fail "harness py starts"
PYX=$PX_PID
P=http://127.0.0.1:15010
cli curl -sS -o "$B" "$P/fields?a=1" -H 'TE: trailers' -H 'X-Foo: bar' -H 'Connection: keep-alive, X-Hop' \
	-H 'X-Hop: 1' -H 'Keep-Alive: timeout=5'
expect_eq "$(json "$B" '[.headers[":method"], .headers[":scheme"], .headers[":authority"], .headers[":path"]] | join(" ")')" \
	"GET http 127.0.0.1:15010 /fields?a=1" "pseudo-headers: :method, :scheme http, :authority from Host, :path the target"
expect_eq "$(json "$B" '[.headers.host, .headers.connection, .headers["keep-alive"], .headers["x-hop"]] | map(. // "-") | join(" ")')" \
	"- - - -" "no host, connection, keep-alive or hop-by-hop field upstream"
expect_eq "$(json "$B" '.headers.te + " " + .headers["x-foo"] + " " + .headers["x-forwarded-proto"]')" \
	"trailers bar http" "te: trailers and end-to-end fields passed"
head -c 1048576 /dev/urandom >"$WORK/up1m.bin"
cli curl -sS -o "$B" --data-binary @"$WORK/up1m.bin" "$P/upload"
expect_eq "$(json "$B" '"\(.bytes) \(.sha256)"')" "1048576 $(sha <"$WORK/up1m.bin")" "POST with content-length: 1 MiB body as DATA (sha256)"
printf 'POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-req-trailer: 1\r\ngrpc-foo: bar\r\n\r\n' \
	>"$WORK/trl.in"
cli nc 127.0.0.1 15010 <"$WORK/trl.in" >"$WORK/trl.out"
sed -n '/^{/,$p' "$WORK/trl.out" >"$B"
expect_eq "$(json "$B" '"\(.bytes) \(.trailers["x-req-trailer"]) \(.trailers["grpc-foo"])"')" "11 1 bar" \
	"chunked request: body as DATA, its trailers as a trailing HEADERS"
out=$(cli curl -sS --raw -D "$H" -o "$B" -w '%{http_code}' "$P/chunked?n=100000")
cli curl -sS -o "$B" "$P/chunked?n=100000"
expect_eq "$out $(sha <"$B")" "200 $("$PY" -c 'import sys; sys.stdout.buffer.write(bytes(i % 251 for i in range(100000)))' | sha)" \
	"a response without content-length: the bytes, chunked"
expect "a response without content-length: transfer-encoding: chunked" grep -qi '^transfer-encoding: chunked' "$H"
cli curl -sS --raw -o "$B" -H 'TE: trailers' "$P/trailers"
expect_eq "$(tr -d '\r' <"$B" | tr '\n' '|')" "6|hello||0|x-trailer: yes|grpc-status: 0||" \
	"response trailers: the last chunk carries them"
out=$(cli curl -sS -o /dev/null -D "$H" -w '%{http_code}' "$P/status?code=204")
expect "204: no body, no framing field" bash -c "[ $out = 204 ] && ! grep -qiE '^(content-length|transfer-encoding)' '$H'"
out=$(cli curl -sS -o /dev/null -D "$H" -w '%{http_code}' "$P/status?code=200")
expect "a bodiless 200 (END_STREAM on HEADERS): content-length: 0" bash -c "[ $out = 200 ] && grep -qi '^content-length: 0' '$H'"
out=$(cli curl -sS -o "$B" -D "$H" -w '%{http_code}' "$P/hints")
expect_eq "$out $(cat "$B") $(grep -c '^HTTP/' "$H")" "200 hinted 1" "a 103 before the final head is dropped"

echo "# failures, as the engine takes them (--retries 0)"
reason() { # PATH: status and the reset reason of the engine's answer
	cli curl -sS -o "$B" -w '%{http_code}' "$P/$1"
	echo " $(sed 's/.*reset reason: //' "$B")"
}
dump_stats "$PYX" py
g0=$(stat_of py h2_upstream_goaway) r0=$(stat_of py h2_upstream_refused) x0=$(stat_of py h2_upstream_reset)
expect_eq "$(reason goaway)" "503 remote refused stream reset" "GOAWAY below the stream: refused-stream (503)"
expect_eq "$(reason refuse)" "503 remote refused stream reset" "RST_STREAM(REFUSED_STREAM): refused-stream (503)"
expect_eq "$(reason reset)" "503 connection termination" "RST_STREAM(INTERNAL_ERROR) before the head: reset (503)"
expect_eq "$(reason close)" "503 connection termination" "the connection closed before the head: reset (503)"
expect_eq "$(reason bad)" "502 protocol error" "a malformed response (a connection-specific field): protocol (502)"
expect_eq "$(reason huge-head)" "502 protocol error" "a response head over max_header_list: protocol (502)"
cli curl -sS -o "$B" -D "$H" "$P/reset-after-head" 2>/dev/null
rc=$?
expect "RST_STREAM after the head: the client sees the 200, then its connection reset (curl exit $rc)" \
	bash -c "[ $rc -ne 0 ] && grep -q '^HTTP/1.1 200' '$H'"
dump_stats "$PYX" py
expect_eq "$(($(stat_of py h2_upstream_goaway) - g0)) $(($(stat_of py h2_upstream_refused) - r0))" "1 2" \
	"stats: one GOAWAY, two refused streams"
expect "stats: the endpoint's resets counted ($(($(stat_of py h2_upstream_reset) - x0)) >= 4)" \
	test $(($(stat_of py h2_upstream_reset) - x0)) -ge 4
expect_eq "$(awk '{ print $1 }' "$WORK/py.outcomes" | sort | uniq -c | awk '{ $1 = $1; print }' | tr '\n' ';')" \
	"6 reset;10 response;" "outcomes for outlier detection: failures as resets, the rest as responses"
expect_eq "$(stat_of py h2_upstream_rq_active)" 0 "no stream left"

echo "# the engine gives up mid-request: RST_STREAM(CANCEL) upstream"
start_proxy cancel 15011 --upstream 127.0.0.1:19000 --timeout 300 || fail "harness cancel starts"
CANCEL=$PX_PID
out=$(cli curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:15011/delay?ms=1500")
expect_eq "$out" 504 "route timeout: the engine answers 504"
id=$(awk '$1 == "req" && $3 == "/delay?ms=1500" { print $2 }' "$WORK/up.log" | tail -1)
expect "the python server saw RST_STREAM(CANCEL) on stream ${id:-?}" wait_log "$WORK/up.log" "^rst ${id:-x} 8\$"
dump_stats "$CANCEL" cancel
expect_eq "$(stat_of cancel h2_upstream_rq) $(stat_of cancel h2_upstream_rq_active) $(stat_of cancel h2_upstream_reset)" \
	"1 0 0" "the stream is gone (h2_upstream_rq_active 0), not counted as the endpoint's reset"
out=$(cli curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:15011/after")
expect_eq "$out" 200 "the connection serves the next request"
stop_proxy "$CANCEL" cancel
stop_proxy "$PYX" py

echo "# retries over the back; connect failures"
start_proxy retry 15012 --upstream 127.0.0.1:19000 --retries 1 --retry-on reset || fail "harness retry starts"
RETRY=$PX_PID
out=$(cli curl -sS -o "$B" -w '%{http_code}' "http://127.0.0.1:15012/goaway-once")
expect_eq "$out $(json "$B" .path)" "200 /goaway-once" "a stream refused by GOAWAY is retried by the engine, on a new connection: 200"
dump_stats "$RETRY" retry
expect_eq "$(stat_of retry retries) $(stat_of retry h2_upstream_cx) $(stat_of retry h2_upstream_refused)" "1 2 1" \
	"one retry, two upstream connections, one refused stream"
stop_proxy "$RETRY" retry

start_proxy refused 15013 --upstream 127.0.0.1:18099 --retries 0 --outcomes "$WORK/refused.outcomes" ||
	fail "harness refused starts"
REFUSED=$PX_PID
out=$(cli curl -sS -o "$B" -w '%{http_code}' "http://127.0.0.1:15013/x")
expect_eq "$out $(sed 's/.*reset reason: //' "$B")" "503 connection failure" \
	"nothing listening: the engine answers 503 connection failure"
dump_stats "$REFUSED" refused
expect "stats: the connect failure counted (h2_upstream_cx_fail $(stat_of refused h2_upstream_cx_fail), engine upstream_cx_fail $(stat_of refused upstream_cx_fail))" \
	bash -c "[ '$(stat_of refused h2_upstream_cx_fail)' = 1 ] && [ '$(stat_of refused upstream_cx_fail)' = 1 ]"
expect_eq "$(awk '{ print $1, $3 }' "$WORK/refused.outcomes")" "connect_fail 127.0.0.1:18099" "outcome: connect_fail at the endpoint"
expect_eq "$(stat_of refused h2_upstream_cx_active) $(stat_of refused h2_upstream_rq_active)" "0 0" "nothing left open"
stop_proxy "$REFUSED" refused

# An endpoint that is not HTTP/2 at all (an HTTP/1.1 server): its bytes are a protocol error.
cat >"$WORK/h1only.py" <<'PYEOF'
# Answers every connection with an HTTP/1.1 400, as a server without h2c would.
import socket
import sys

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    c.close()
PYEOF
start_py h1only 18097 || fail "an HTTP/1.1-only endpoint starts"
start_proxy noth2 15019 --upstream 127.0.0.1:18097 --retries 0 || fail "harness noth2 starts"
NOTH2=$PX_PID
out=$(cli curl -sS -o "$B" -w '%{http_code}' "http://127.0.0.1:15019/x")
expect_eq "$out $(sed 's/.*reset reason: //' "$B")" "502 protocol error" "an endpoint that answers HTTP/1.1: protocol error (502)"
dump_stats "$NOTH2" noth2
expect_eq "$(stat_of noth2 h2_upstream_cx_active) $(stat_of noth2 h2_upstream_rq_active)" "0 0" "its connection closed, no stream left"
stop_proxy "$NOTH2" noth2

if ip netns exec "$NS" iptables -A OUTPUT -p tcp --dport 18098 --syn -j DROP 2>/dev/null; then
	start_proxy cto 15014 --upstream 127.0.0.1:18098 --retries 0 --route '/=cto,connect_timeout=300' ||
		fail "harness cto starts"
	CTO=$PX_PID
	t0=$EPOCHREALTIME
	out=$(cli curl -sS -o "$B" -w '%{http_code}' "http://127.0.0.1:15014/x")
	t1=$EPOCHREALTIME
	expect_eq "$out $(sed 's/.*reset reason: //' "$B")" "503 connection failure" "SYN dropped: connect timeout, 503 connection failure"
	expect "the cluster's connect timeout (300 ms) applies ($(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s)" \
		fle "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" 1.5
	stop_proxy "$CTO" cto
else
	echo "SKIP - connect timeout: iptables cannot drop SYNs in $NS"
fi

echo "# connection pool: circuit breaking, requests per connection, idle timeout"
# The endpoint allows 2 streams per connection; the cluster 1 connection and 1 waiter.
start_proxy cb 15015 --upstream 127.0.0.1:19001 --route '/=cb,max_connections=1,max_pending=1' ||
	fail "harness cb starts"
CB=$PX_PID
out=$(cli curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:15015/warm")
expect_eq "$out" 200 "warm-up: the connection is up and its SETTINGS (2 streams) known"
cbp=()
for i in 1 2 3 4; do
	cli curl -sS -o "$WORK/cb$i.body" -D "$WORK/cb$i.head" -w '%{http_code}' "http://127.0.0.1:15015/delay?ms=600&n=$i" \
		>"$WORK/cb$i.code" &
	cbp+=($!)
	LIVE[$!]=1
	sleep 0.05
done
for pid in "${cbp[@]}"; do
	reap "$pid" 10
done
codes=$(cat "$WORK"/cb[1-4].code | tr -d ' ' | fold -w3 | sort | uniq -c | awk '{ $1 = $1; print }' | tr '\n' ';')
expect_eq "$codes" "3 200;1 503;" "4 at once: 2 streams, 1 waiter served after, 1 over max_pending"
expect "the overflow is the engine's (x-envoy-overloaded)" bash -c "grep -qi '^x-envoy-overloaded: true' '$WORK'/cb[1-4].head"
dump_stats "$CB" cb
expect_eq "$(stat_of cb h2_upstream_cx) $(stat_of cb h2_upstream_overflow) $(stat_of cb h2_upstream_rq)" "1 1 4" \
	"one connection, one overflow, 4 streams (the warm-up and 3)"
stop_proxy "$CB" cb

# A waiter the engine gives up on (its route timeout) leaves the queue: the next one may wait.
start_proxy cbq 15017 --upstream 127.0.0.1:19001 --route '/delay-t=cbq,max_connections=1,max_pending=1,timeout=300' \
	--route '/=cbq,max_connections=1,max_pending=1' || fail "harness cbq starts"
CBQ=$PX_PID
cli curl -sS -o /dev/null "http://127.0.0.1:15017/warm"
cbp=()
for i in 1 2; do
	cli curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:15017/delay?ms=1200&n=$i" >"$WORK/cbq$i.code" &
	cbp+=($!)
	LIVE[$!]=1
done
sleep 0.2
out=$(cli curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:15017/delay-t?ms=50")
expect_eq "$out" 504 "a waiter times out in the engine (504)"
out=$(cli curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:15017/delay?ms=50&n=3")
for pid in "${cbp[@]}"; do
	reap "$pid" 10
done
expect_eq "$(cat "$WORK/cbq1.code" "$WORK/cbq2.code") $out" "200200 200" \
	"its place in the queue was given back: the next waiter is served, not refused"
dump_stats "$CBQ" cbq
expect_eq "$(stat_of cbq h2_upstream_rq) $(stat_of cbq h2_upstream_overflow) $(stat_of cbq h2_upstream_rq_active)" "4 0 0" \
	"the timed-out waiter never became a stream; no overflow; none left"
stop_proxy "$CBQ" cbq

start_proxy mr 15016 --upstream 127.0.0.1:19000 --route '/=mr,max_requests_per_conn=2,idle_timeout=400' ||
	fail "harness mr starts"
MR=$PX_PID
for i in 1 2 3 4 5; do
	cli curl -sS -o /dev/null "http://127.0.0.1:15016/mr$i"
done
dump_stats "$MR" mr
expect_eq "$(stat_of mr h2_upstream_cx) $(stat_of mr h2_upstream_rq)" "3 5" \
	"max_requests_per_conn 2: 5 requests on 3 connections"
sleep 0.8
dump_stats "$MR" mr
expect_eq "$(stat_of mr h2_upstream_cx_active)" 0 "idle_timeout 400 ms: the idle connection closed"
stop_proxy "$MR" mr

echo "# chaos: 100 clients on every failure mode at once, under the engine's timeouts and retries"
cat >"$WORK/chaos.lua" <<'LUA'
local paths = { "/delay?ms=20", "/delay?ms=400", "/reset", "/refuse", "/goaway", "/close", "/bad",
		"/chunked?n=70000", "/trailers", "/upload", "/reset-after-head", "/fields", "/hints" }
local body = string.rep("x", 100000)
request = function()
	local p = paths[math.random(#paths)]
	if p == "/upload" then
		return wrk.format("POST", p, nil, body)
	end
	return wrk.format("GET", p)
end
LUA
start_proxy chaos 15018 --upstream 127.0.0.1:19000 --timeout 200 --retries 2 --retry-on reset,5xx ||
	fail "harness chaos starts"
CHAOS=$PX_PID
cli wrk -t2 -c100 -d3s --timeout 5s -s "$WORK/chaos.lua" http://127.0.0.1:15018/ >"$WORK/chaos.wrk" 2>&1
sleep 0.5
dump_stats "$CHAOS" chaos
echo "#   $(awk '/requests in/ { print $1 }' "$WORK/chaos.wrk") requests; streams $(stat_of chaos h2_upstream_rq), connections $(stat_of chaos h2_upstream_cx), resets $(stat_of chaos h2_upstream_reset), refused $(stat_of chaos h2_upstream_refused), goaways $(stat_of chaos h2_upstream_goaway)"
expect "chaos: the harness served throughout" alive "$CHAOS"
expect_eq "$(stat_of chaos h2_upstream_rq_active) $(stat_of chaos downstream_cx_active)" "0 0" \
	"chaos: afterwards no stream and no client connection left"
out=$(cli curl -sS -o "$B" -w '%{http_code}' http://127.0.0.1:15018/after-chaos)
expect_eq "$out $(json "$B" .path)" "200 /after-chaos" "chaos: the next request is served"
stop_proxy "$CHAOS" chaos

# ==== gRPC ====
echo "# gRPC through the back"
if [ "$HAVE_GRPC" = 1 ]; then
	start_proxy gr 15020 --upstream 127.0.0.1:19500 || fail "harness gr starts"
	GR=$PX_PID
	# An HTTP/1.1 client sending what a gRPC client sends: a length-prefixed message,
	# content-type application/grpc, te: trailers; the status comes in the chunked trailers.
	printf '\x00\x00\x00\x00\x05hello' >"$WORK/msg.bin"
	grpc11() { # METHOD: the raw chunked response (head stripped), CRs removed
		cli curl -sS --raw -D "$H" -o "$B" -H 'content-type: application/grpc' -H 'te: trailers' \
			--data-binary @"$WORK/msg.bin" "http://127.0.0.1:15020/test.Echo/$1"
		tr -d '\r' <"$B" | tr '\n' '|' | tr -d '\0'
	}
	out=$(grpc11 Unary)
	expect_eq "$out" "a|"$'\x05'"hello|0|grpc-status: 0||" "HTTP/1.1 gRPC unary: the message, then grpc-status 0 as a trailer"
	expect "HTTP/1.1 gRPC unary: content-type application/grpc" grep -qi '^content-type: application/grpc' "$H"
	out=$(grpc11 Stream)
	expect_eq "$(grep -o 'hello-[0-9]' <<<"$out" | tr '\n' ' ')$(grep -o 'grpc-status: [0-9]*' <<<"$out")" \
		"hello-0 hello-1 hello-2 hello-3 hello-4 grpc-status: 0" "HTTP/1.1 gRPC server streaming: 5 messages, then the status"
	out=$(grpc11 StreamFail)
	expect_eq "$(grep -o 'hello-[0-9]' <<<"$out" | tr '\n' ' ')$(grep -oE 'grpc-(status|message): [^|]*' <<<"$out" | tr '\n' ' ')" \
		"hello-0 hello-1 grpc-status: 5 grpc-message: nope " "HTTP/1.1 gRPC error after messages: NOT_FOUND \"nope\" in the trailers"
	out=$(grpc11 Fail)
	expect "HTTP/1.1 gRPC trailers-only error: grpc-status 5, grpc-message nope, content-length 0 in the head" \
		bash -c "grep -qi '^grpc-status: 5' '$H' && grep -qi '^grpc-message: nope' '$H' && grep -qi '^content-length: 0' '$H'"
	cat >"$WORK/grpccli.py" <<'PYEOF'
# A gRPC client through the harness: unary, server streaming, and the two error shapes.
import sys

import grpc

ch = grpc.insecure_channel(sys.argv[1])
print("unary", ch.unary_unary("/test.Echo/Unary")(b"hi", timeout=5).decode())
print("stream", " ".join(m.decode() for m in ch.unary_stream("/test.Echo/Stream")(b"s", timeout=5)))
for name, call in (("fail", ch.unary_unary("/test.Echo/Fail")),
                   ("streamfail", ch.unary_stream("/test.Echo/StreamFail"))):
    got = []
    try:
        for m in ([call(b"x", timeout=5)] if name == "fail" else call(b"x", timeout=5)):
            got.append(m.decode())
        print(name, "no error")
    except grpc.RpcError as e:
        print(name, " ".join(got), e.code().name, e.details())
PYEOF
	if [ "$HAVE_FRONT" = 1 ]; then
		start_proxy grf 15021 --upstream 127.0.0.1:19500 --h2 || fail "harness grf (--h2 --h2-upstream) starts"
		GRF=$PX_PID
		cli "$PY" "$WORK/grpccli.py" 127.0.0.1:15021 >"$WORK/grpccli.out" 2>&1
		expect_eq "$(tr '\n' '|' <"$WORK/grpccli.out")" \
			"unary hi|stream s-0 s-1 s-2 s-3 s-4|fail  NOT_FOUND nope|streamfail x-0 x-1 NOT_FOUND nope|" \
			"gRPC client (front and back): unary, 5 streamed, NOT_FOUND \"nope\" trailers-only and after messages"
		stop_proxy "$GRF" grf
	else
		echo "SKIP - gRPC client: the harness has no --h2 (the h2 front) yet"
	fi
	dump_stats "$GR" gr
	expect_eq "$(stat_of gr h2_upstream_cx) $(stat_of gr h2_upstream_rq_active)" "1 0" "gRPC calls on one connection, none left"
	stop_proxy "$GR" gr
else
	echo "SKIP - gRPC: $PY has no grpc module (python3-grpcio)"
fi

stop_proxy "$NG" ng

# ---- the upstreams stop cleanly too ----
for p in "${!LIVE[@]}"; do
	kill -TERM "$p" 2>/dev/null
done
for p in "${!LIVE[@]}"; do
	reap "$p" 10
done
if grep -q 'Traceback' "$WORK"/*.out 2>/dev/null; then
	fail "python upstreams: no exception"
	grep -h -A5 Traceback "$WORK"/*.out | sed 's/^/#   /' | head -20
fi

echo
echo "# $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
