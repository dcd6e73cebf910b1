#!/usr/bin/env bash
# tests/l7/h2_front.sh - the HTTP/2 front (user/lib/h2_front*.c) end to end: the h1proxy
# harness with --h2 between real HTTP/2 clients (curl, h2load, /usr/bin/python3's h2) and
# real upstreams (bm-echo, and a python HTTP/1.1 upstream for body digests and trailers), all
# on loopback inside a network namespace this script creates and removes.
#
# usage (as root): tests/l7/h2_front.sh            normal build (.output/...)
#                  BM_SAN=1 tests/l7/h2_front.sh   ASan+UBSan build (.output/san/...)
# Prints "ok - ..." / "not ok - ..." per check and a summary; exit 0 when all passed, 1 when
# any failed, 77 (with "SKIP - reason") when the tests could not run.
set -uo pipefail

PY=/usr/bin/python3	# the Debian python with the h2 module (python3 on PATH may be another)
NS=bmh2f$$
. "$(dirname "$0")/lib.sh"
CLIENT_IP=10.77.0.2	# a second address on the namespace's lo: x-forwarded-for must show it

start_proxy() { # NAME ADDR PORT ARGS...: the harness with --h2 on ADDR:PORT
	px_start "$1" "$2" "$3" --h2 "${@:4}"
}

h2() { # the python client (h2c.py below) against 127.0.0.1:PORT: PORT MODE ARGS...
	local port=$1

	shift
	timeout 60 ip netns exec "$NS" "$PY" "$WORK/h2c.py" 127.0.0.1 "$port" "$@"
}

# The python parts, written to $WORK: an HTTP/2 client for what curl and h2load do not do
# (sequences on one connection, trailers, hostile frames), and an HTTP/1.1 upstream.
write_python() {
	cat >"$WORK/h2c.py" <<'EOF'
# h2c.py HOST PORT MODE ARGS...: an HTTP/2 client (the h2 module) for the h2 front's tests.
import socket, sys, time, json
import h2.connection, h2.config, h2.events, h2.errors

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HOST, PORT = sys.argv[1], int(sys.argv[2])
MODE = sys.argv[3]
ARGS = sys.argv[4:]


def conn(validate=True):
    s = socket.create_connection((HOST, PORT), timeout=10)
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8", validate_outbound_headers=validate))
    c.initiate_connection()
    s.sendall(c.data_to_send())
    return s, c


def req(c, path, method="GET", extra=(), end=True):
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, [(":method", method), (":path", path), (":scheme", "http"),
                         (":authority", "%s:%d" % (HOST, PORT))] + list(extra), end_stream=end)
    return sid


def pump(s, c, want, deadline=10):
    """Reads until want(events_so_far) is true or EOF/timeout; returns (events, eof)."""
    evs = []
    end = time.time() + deadline
    while not want(evs):
        s.settimeout(max(0.01, end - time.time()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            return evs, "timeout"
        except ConnectionResetError:
            return evs, "reset"
        if not d:
            return evs, "eof"
        for e in c.receive_data(d):
            evs.append(e)
            if isinstance(e, h2.events.DataReceived):
                c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        out = c.data_to_send()
        if out:
            s.sendall(out)
    return evs, None


def ended(sid):
    return lambda evs: any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id == sid for e in evs)


def result(evs, sid):
    r = {"status": None, "body": b"", "trailers": {}, "reset": None, "headers": {}}
    for e in evs:
        if getattr(e, "stream_id", None) != sid:
            continue
        if isinstance(e, h2.events.ResponseReceived):
            r["headers"] = dict(e.headers)
            r["status"] = r["headers"].get(":status")
        elif isinstance(e, h2.events.DataReceived):
            r["body"] += e.data
        elif isinstance(e, h2.events.TrailersReceived):
            r["trailers"] = dict(e.headers)
        elif isinstance(e, h2.events.StreamReset):
            r["reset"] = e.error_code
    return r


def raw_frames(s, timeout=10):
    """(type, flags, stream, payload) of what the server sends, then ("EOF",)."""
    buf = b""
    end = time.time() + timeout
    while True:
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            yield buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n]
            buf = buf[9 + n:]
        s.settimeout(max(0.01, end - time.time()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            yield ("TIMEOUT",)
            return
        except ConnectionResetError:
            yield ("RESET",)
            return
        if not d:
            yield ("EOF",)
            return
        buf += d


def goaway_then_close(s, timeout=10):
    """'GOAWAY <code> <eof|...>' from what the server sends."""
    code = None
    for f in raw_frames(s, timeout):
        if len(f) == 1:
            return "GOAWAY %s %s" % (code, f[0].lower())
        if f[0] == 7:
            code = int.from_bytes(f[3][4:8], "big")
    return "none"


if MODE == "get":  # get PATH [name:value...]: status, then the JSON body
    s, c = conn()
    sid = req(c, ARGS[0], extra=[tuple(a.split(":", 1)) for a in ARGS[1:]])
    s.sendall(c.data_to_send())
    evs, _ = pump(s, c, ended(sid))
    r = result(evs, sid)
    print(r["status"])
    sys.stdout.write(r["body"].decode("latin-1"))
elif MODE == "seq":  # seq METHOD:PATH...: one after the other on one connection; "status bytes" each
    s, c = conn()
    out = []
    for a in ARGS:
        m, p = a.split(":", 1)
        sid = req(c, p, method=m)
        s.sendall(c.data_to_send())
        evs, eof = pump(s, c, ended(sid))
        r = result(evs, sid)
        out.append("%s %d" % (r["status"], len(r["body"])))
    print(" | ".join(out))
elif MODE == "upgrade-nohost":  # an h2c upgrade of "GET PATH" with an empty Host; the body
    s = socket.create_connection((HOST, PORT), timeout=10)
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    settings = c.initiate_upgrade_connection()
    s.sendall(b"GET " + ARGS[0].encode() + b" HTTP/1.1\r\nHost:\r\nConnection: Upgrade, HTTP2-Settings\r\n"
              b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(65536)
        if not d:
            sys.exit("closed before the 101")
        head += d
    head, rest = head.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        sys.exit("no 101: " + head.decode("latin-1"))
    s.sendall(c.data_to_send())
    evs = list(c.receive_data(rest)) if rest else []
    more, _ = pump(s, c, lambda e: ended(1)(evs + e))
    sys.stdout.write(result(evs + more, 1)["body"].decode("latin-1"))
elif MODE == "trailers":  # trailers PATH: a body with request trailers; status, body, trailers
    s, c = conn()
    sid = req(c, ARGS[0], method="POST", extra=[("te", "trailers")], end=False)
    c.send_data(sid, b"hello ")
    c.send_data(sid, b"world")
    c.send_headers(sid, [("x-req-trailer", "rt1"), ("x-checksum", "abc")], end_stream=True)
    s.sendall(c.data_to_send())
    evs, _ = pump(s, c, ended(sid))
    r = result(evs, sid)
    print(json.dumps({"status": r["status"], "body": r["body"].decode("latin-1"), "trailers": r["trailers"],
                      "reset": r["reset"]}))
elif MODE == "toolarge":  # toolarge N SIZE: a block of N fields of SIZE bytes, then a plain GET
    s, c = conn()
    n, size = int(ARGS[0]), int(ARGS[1])
    sid = req(c, "/big", extra=[("x-f%d" % i, "v" * size) for i in range(n)])
    s.sendall(c.data_to_send())
    evs, _ = pump(s, c, ended(sid))
    r = result(evs, sid)
    first = "RST" if r["reset"] is not None else r["status"]
    sid2 = req(c, "/after-big")
    s.sendall(c.data_to_send())
    evs, eof = pump(s, c, ended(sid2))
    print(first, result(evs, sid2)["status"], eof)
elif MODE == "garbage":  # the preface, then bytes that are no frame
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.sendall(PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"this is not HTTP/2 at all\r\n" * 4)
    print(goaway_then_close(s))
elif MODE == "badmagic":  # not the preface at all, but looking like it first
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.sendall(PREFACE + b"x")
    print(goaway_then_close(s))
elif MODE == "rapid":  # rapid N: N x (HEADERS + RST_STREAM) in one burst
    s, c = conn()
    for i in range(int(ARGS[0])):
        sid = req(c, "/rapid/%d" % i)
        c.reset_stream(sid, error_code=8)
    s.sendall(c.data_to_send())
    print(goaway_then_close(s, 20))
elif MODE == "reset-mid":  # reset-mid PATH: read some of a big response, RST it, wait, GET again
    s, c = conn()
    sid = req(c, ARGS[0])
    s.sendall(c.data_to_send())
    got = lambda evs: sum(len(e.data) for e in evs if isinstance(e, h2.events.DataReceived)) >= 200000
    evs, eof = pump(s, c, got)
    c.reset_stream(sid, error_code=8)
    s.sendall(c.data_to_send())
    print("reset-sent", sum(len(e.data) for e in evs if isinstance(e, h2.events.DataReceived)), flush=True)
    time.sleep(float(ARGS[1]) if len(ARGS) > 1 else 2)
    sid2 = req(c, "/after-reset")
    s.sendall(c.data_to_send())
    evs, eof = pump(s, c, ended(sid2))
    print("after", result(evs, sid2)["status"], flush=True)
elif MODE == "idle":  # one GET, then wait for the server's GOAWAY and close
    s, c = conn()
    sid = req(c, "/idle")
    s.sendall(c.data_to_send())
    evs, _ = pump(s, c, ended(sid))
    t0 = time.time()
    r = goaway_then_close(s, 10)
    print(result(evs, sid)["status"], r, "%.1f" % (time.time() - t0))
elif MODE == "order":  # order SLOW FAST: two streams at once; which ends first
    s, c = conn()
    a = req(c, ARGS[0])
    b = req(c, ARGS[1])
    s.sendall(c.data_to_send())
    evs, _ = pump(s, c, lambda evs: ended(a)(evs) and ended(b)(evs))
    order = [("slow" if e.stream_id == a else "fast") for e in evs if isinstance(e, h2.events.StreamEnded)]
    print(" ".join(order), result(evs, a)["status"], result(evs, b)["status"])
elif MODE == "connect":  # CONNECT host:port: the status
    s, c = conn(validate=False)
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, [(":method", "CONNECT"), (":authority", "example.test:443")], end_stream=False)
    s.sendall(c.data_to_send())
    evs, _ = pump(s, c, ended(sid))
    r = result(evs, sid)
    print(r["status"], "reset=%s" % r["reset"])
elif MODE == "drain":  # a slow GET; then what arrives, raw: GOAWAY, the stream's end, close
    s, c = conn()
    sid = req(c, ARGS[0])
    s.sendall(c.data_to_send())
    print("sent", flush=True)
    goaway, status_seen, body, ended_ok = None, False, 0, False
    for f in raw_frames(s, 15):
        if len(f) == 1:
            print("goaway=%s last=%s headers=%s body=%d end=%s %s" % (
                goaway and goaway[1], goaway and goaway[0], status_seen, body, ended_ok, f[0].lower()))
            break
        typ, flags, st, payload = f
        if typ == 7:
            goaway = (int.from_bytes(payload[:4], "big") & 0x7FFFFFFF, int.from_bytes(payload[4:8], "big"))
        elif typ == 1 and st == sid:
            status_seen = True
            ended_ok |= bool(flags & 1)
        elif typ == 0 and st == sid:
            body += len(payload)
            ended_ok |= bool(flags & 1)
else:
    sys.exit("unknown mode " + MODE)
EOF
	cat >"$WORK/up.py" <<'EOF'
import hashlib, json, socket, sys, threading

# An HTTP/1.1 upstream for what bm-echo does not do: the digest of a request body and the
# request's trailers (/sha), and a chunked response ending in trailers (/trailers).


def read_line(f):
    line = f.readline(65537)
    if not line.endswith(b"\r\n"):
        raise EOFError
    return line[:-2].decode("latin-1")


def read_fields(f):
    fields = []
    while True:
        line = read_line(f)
        if not line:
            return fields
        n, v = line.split(":", 1)
        fields.append((n.strip().lower(), v.strip()))


def serve(conn):
    f = conn.makefile("rb")
    try:
        while True:
            method, path, version = read_line(f).split(" ")
            hdrs = read_fields(f)
            h = dict(hdrs)
            sha, n, trailers = hashlib.sha256(), 0, {}
            if h.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size = int(read_line(f).split(";")[0], 16)
                    if not size:
                        trailers = dict(read_fields(f))
                        break
                    data = f.read(size)
                    sha.update(data)
                    n += len(data)
                    read_line(f)
            elif "content-length" in h:
                left = int(h["content-length"])
                while left:
                    data = f.read(min(left, 65536))
                    if not data:
                        raise EOFError
                    sha.update(data)
                    n += len(data)
                    left -= len(data)
            if path.startswith("/trailers"):
                body = b"trailer body\n"
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n" +
                             b"%x\r\n" % len(body) + body + b"\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n")
                continue
            body = json.dumps({"method": method, "path": path, "version": version, "bytes": n,
                               "sha256": sha.hexdigest(), "trailers": trailers,
                               "framing": "chunked" if h.get("transfer-encoding") else
                               ("length" if "content-length" in h else "none"),
                               "headers": [list(x) for x in hdrs]}).encode() + b"\n"
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
    except (EOFError, ValueError, ConnectionError, OSError):
        pass
    finally:
        conn.close()


ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(64)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
}

# ---- preconditions ----
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
for tool in ip curl h2load nc jq awk sha256sum timeout ss head; do
	command -v "$tool" >/dev/null || skip "$tool not installed"
done
[ -x "$PY" ] && "$PY" -c 'import h2.connection' 2>/dev/null || skip "$PY with the h2 module not installed (python3-h2)"
curl -V | grep -q HTTP2 || skip "curl without HTTP/2"
[ -x "$PROXY" ] || skip "no harness at $PROXY (make ${BM_SAN:+SAN=1 }${PROXY#$ROOT/})"
grep -q -- '--h2\]' <<<"$("$PROXY" --help 2>&1)" || skip "harness $PROXY has no --h2"
[ -x "$ECHO" ] || skip "no bm-echo at $ECHO (make ${BM_SAN:+SAN=1 }${ECHO#$ROOT/})"
WORK=$(mktemp -d /tmp/bmh2f.XXXXXX) || skip "mktemp failed"
ip netns add "$NS" || skip "cannot create network namespace $NS"
ip -n "$NS" link set lo up || skip "cannot bring up lo in $NS"
ip -n "$NS" addr add "$CLIENT_IP/32" dev lo || skip "cannot add $CLIENT_IP to lo in $NS"
SAN=0
ldd "$PROXY" 2>/dev/null | grep -q libasan && SAN=1
echo "# h2 front tests: harness $PROXY (sanitizers: $SAN), netns $NS"
write_python

start_echo a 8080 || { fail "bm-echo a starts"; exit 1; }
"${SAN_ENV[@]}" ip netns exec "$NS" "$PY" "$WORK/up.py" 9001 >"$WORK/up.out" 2>&1 &
LIVE[$!]=1
wait_port 9001 $! || { fail "up.py starts"; exit 1; }
B=$WORK/body H=$WORK/head V=$WORK/verbose

start_proxy main 127.0.0.1 15001 --upstream 127.0.0.1:8080 --respond /teapot \
	--route /sha=up,upstream=127.0.0.1:9001 --route /trailers=up,upstream=127.0.0.1:9001 ||
	{ fail "harness main (--h2) starts"; exit 1; }
MAIN=$PX_PID
P=http://127.0.0.1:15001

echo "# prior knowledge: a GET"
cli curl -sv --http2-prior-knowledge --interface "$CLIENT_IP" -o "$B" "$P/hello/world?q=1" -H 'x-keep: kept' 2>"$V"
expect "curl: HTTP/2 200" grep -q '^< HTTP/2 200' "$V"
expect_eq "$(json "$B" '.method + " " + .path')" "GET /hello/world?q=1" "method and path with query reached bm-echo"
expect_eq "$(json "$B" .proto)" "HTTP/1.1" "bm-echo was spoken to in HTTP/1.1"
expect_eq "$(json "$B" .host)" "127.0.0.1:15001" "host: the :authority"
expect_eq "$(json "$B" '.headers["x-forwarded-for"]')" "$CLIENT_IP" "x-forwarded-for: the HTTP/2 client's address (not the internal connection's)"
expect_eq "$(json "$B" '.headers["x-keep"]')" "kept" "client fields forwarded"
expect "x-request-id added" grep -qE '"x-request-id":"[0-9a-f-]{36}"' "$B"
cli curl -s --http2-prior-knowledge -o "$B" "$P/sha/get"
expect_eq "$(json "$B" '.version + " " + .framing')" "HTTP/1.1 none" \
	"END_STREAM on the HEADERS: an HTTP/1.1 request with no body and no framing field"
h2 15001 upgrade-nohost /nohost >"$B"
expect_eq "$(json "$B" .host)" "127.0.0.1:15001" "no authority (an upgrade with an empty Host): host is the original destination ip:port"
expect_eq "$(h2 15001 connect)" "405 reset=0" \
	"CONNECT: 405 from the front, then RST_STREAM(NO_ERROR) as the client had not ended its stream"

echo "# bodies"
head -c 1048576 /dev/urandom >"$WORK/up.bin"
want=$(sha <"$WORK/up.bin")
cli curl -s --http2-prior-knowledge -o "$B" --data-binary @"$WORK/up.bin" "$P/sha/post"
expect_eq "$(json "$B" '.sha256 + " " + (.bytes|tostring) + " " + .framing')" "$want 1048576 length" \
	"POST 1 MiB random, content-length: the upstream's sha256 matches"
cli curl -s --http2-prior-knowledge -o "$B" -T - "$P/sha/stream" <"$WORK/up.bin"
expect_eq "$(json "$B" '.sha256 + " " + (.bytes|tostring) + " " + .framing')" "$want 1048576 chunked" \
	"upload without a length: chunked to the engine, sha256 matches"
cli curl -s --http2-prior-knowledge -o "$B" --data-binary @"$WORK/up.bin" "$P/echo-post"
expect_eq "$(json "$B" '.body_bytes')" 1048576 "POST 1 MiB to bm-echo: every byte counted"
cli curl -s --http2-prior-knowledge -o "$B" "$P/size/3000000"
expect_eq "$(sha <"$B")" "$(pattern_bytes 3000000 | sha)" "3 MB download, content intact"
out=$(cli curl -sS --http2-prior-knowledge -I -o "$H" -w '%{http_code} %{size_download}' "$P/size/12345")
expect_eq "$out" "200 0" "HEAD: 200, no body"
expect "HEAD: the content-length of the body left out" grep -qi '^content-length: 12345' "$H"
# curl 7.88 cannot reuse a prior-knowledge connection (curl#10634): python does the sequences.
expect_eq "$(h2 15001 seq HEAD:/size/12345 GET:/size/5 GET:/size/7)" "200 0 | 200 5 | 200 7" \
	"HEAD, then two GETs on the same connection"
out=$(cli curl -s --http2-prior-knowledge -o "$B" -w '%{http_code}' "$P/nf?status=404")
expect_eq "$out" 404 "a 404 from bm-echo passes"
out=$(cli curl -sS --http2-prior-knowledge -w ' %{http_code}' "$P/teapot/x")
expect_eq "$out" "I'm a teapot
 418" "a --respond route: the engine's local reply (418 and its body)"
expect_eq "$(grep -c 'teapot' "$WORK/a.out")" 0 "the local reply never reached bm-echo"

echo "# fields"
cli curl -s --http2-prior-knowledge -o "$B" "$P/cookies" -H 'cookie: a=1' -H 'cookie: b=2' -H 'cookie: c=3'
expect_eq "$(json "$B" '.headers.cookie')" "a=1; b=2; c=3" "curl's cookies: joined with '; ' (bm-echo would show ', ' for repeated fields)"
h2 15001 get /sha/cookies cookie:x=1 cookie:y=2 cookie:z=3 'te:trailers' 'expect:100-continue' >"$B"
expect_eq "$(sed -n 2p "$B" | jq -c '[.headers[] | select(.[0] == "cookie")]')" '[["cookie","x=1; y=2; z=3"]]' \
	"three cookie fields: one cookie field upstream (RFC 9113 8.2.3)"
expect_eq "$(sed -n 2p "$B" | jq -r '[.headers[] | select(.[0] == "te")[1]] | join(",")')" "trailers" "te: trailers passes"
expect_eq "$(sed -n 2p "$B" | jq -c '[.headers[] | select(.[0] == "expect")]')" "[]" \
	"expect is not forwarded (the engine answers 100-continue itself)"
h2 15001 trailers /sha/trailers >"$B"
expect_eq "$(jq -r '.body' "$B" | jq -c '[.framing, .bytes, .trailers]')" '["chunked",11,{"x-req-trailer":"rt1","x-checksum":"abc"}]' \
	"request trailers: chunked trailers to the upstream"
h2 15001 trailers /trailers >"$B"
expect_eq "$(jq -c '[.status, .body, .trailers]' "$B")" '["200","trailer body\n",{"grpc-status":"0","grpc-message":"ok"}]' \
	"response trailers (chunked upstream): HTTP/2 trailers"

echo "# streams"
expect_eq "$(h2 15001 order '/slow?delay=1s' /fast)" "fast slow 200 200" "a slow stream does not hold back another"
dump_stats "$MAIN" main
s0=$(stat_of main h2_streams) c0=$(stat_of main downstream_cx)
out=$(cli h2load -n 2000 -c 4 -m 16 "$P/load" 2>&1)
expect "h2load -n 2000 -c 4 -m 16: every request 2xx" grep -q 'status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx' <<<"$out"
dump_stats "$MAIN" main
expect_eq "$(($(stat_of main h2_streams) - s0))" 2000 "stats: 2000 streams handed to the engine"
ic=$(($(stat_of main downstream_cx) - c0))
expect "internal connections reused: $ic for 2000 streams (fewer than 200)" test "$ic" -lt 200
expect_eq "$(stat_of main h2_streams_active) $(stat_of main downstream_cx_active)" "0 0" "no stream, no engine session left"

echo "# flow control and memory"
h0=$(hwm_kb "$MAIN")
out=$(head -c 268435456 /dev/zero | cli curl -s --http2-prior-knowledge -T - "$P/big-up" | jq -r .body_bytes)
expect_eq "$out" 268435456 "256 MiB upload (chunked) through to bm-echo"
out=$(cli curl -s --http2-prior-knowledge "$P/size/268435456" | sha)
expect_eq "$out" "$(pattern_bytes 268435456 | sha)" "256 MiB download, content intact"
h1=$(hwm_kb "$MAIN")
lim=$((SAN ? 65536 : 8192))
expect "memory bounded: VmHWM grew $((h1 - h0)) KiB over 512 MiB moved (limit $lim KiB)" test $((h1 - h0)) -lt $lim

echo "# h2c upgrade (RFC 7540 3.2)"
dump_stats "$MAIN" main
u0=$(stat_of main h2_upgrades)
cli curl -sv --http2 -o "$B" "$P/upgraded?x=1" 2>"$V"
expect "upgrade: 101 Switching Protocols" grep -q '^< HTTP/1.1 101' "$V"
expect "upgrade: then HTTP/2 200 on stream 1" grep -q '^< HTTP/2 200' "$V"
expect_eq "$(json "$B" '.path + " " + .proto')" "/upgraded?x=1 HTTP/1.1" "upgrade: the request reached bm-echo"
expect_eq "$(json "$B" '[.headers | keys[] | select(. == "upgrade" or . == "http2-settings" or . == "connection")] | length')" 0 \
	"upgrade: upgrade, http2-settings and connection not forwarded"
cli curl -sv --http2 -I "$P/size/4321" -o "$H" 2>"$V"
expect "upgrade of a HEAD: 101, then HTTP/2 200 with the length and no body" \
	bash -c "grep -q '^< HTTP/1.1 101' '$V' && grep -q '^< HTTP/2 200' '$V' && grep -qi '^content-length: 4321' '$H'"
cli curl -sv --http2 -d hello -o "$B" "$P/post-up" 2>"$V"
expect "a POST with a body is not upgraded: HTTP/1.1 200" bash -c "grep -q '^< HTTP/1.1 200' '$V' && ! grep -q '^< HTTP/1.1 101' '$V'"
expect_eq "$(json "$B" .body_bytes)" 5 "the POST's body arrived"
printf 'GET /badsettings HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: !!notbase64\r\n\r\n' >"$WORK/bad.in"
cli nc 127.0.0.1 15001 <"$WORK/bad.in" >"$WORK/bad.out"
expect "bad HTTP2-Settings: 400, then the connection closes" grep -q '^HTTP/1.1 400' "$WORK/bad.out"
printf 'GET /badsettings HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAA\r\n\r\n' >"$WORK/bad.in"
cli nc 127.0.0.1 15001 <"$WORK/bad.in" >"$WORK/bad.out"
expect "HTTP2-Settings not a whole number of settings: 400" grep -q '^HTTP/1.1 400' "$WORK/bad.out"
dump_stats "$MAIN" main
expect_eq "$(($(stat_of main h2_upgrades) - u0))" 2 "stats: two upgrades"

echo "# hostile clients"
dump_stats "$MAIN" main
t0=$(stat_of main h2_headers_too_large) p0=$(stat_of main h2_protocol_errors)
out=$(h2 15001 garbage)
expect "bytes that are no frame after the preface: GOAWAY with an error, then close ($out)" \
	bash -c "[[ '$out' =~ ^GOAWAY\ [1-9][0-9]*\ eof$ ]]"
expect_eq "$(h2 15001 toolarge 150 10)" "431 200 None" "150 header fields (limit 100): 431, and the connection serves the next stream"
expect_eq "$(h2 15001 toolarge 80 1000)" "431 200 None" "80 KB of header fields (limit 64 KiB): 431, then the next stream"
dump_stats "$MAIN" main
expect_eq "$(($(stat_of main h2_headers_too_large) - t0)) $(($(stat_of main h2_protocol_errors) - p0))" "2 1" \
	"stats: two header blocks too large, one protocol error"
r0=$(stat_of main h2_rx_reset) g0=$(stat_of main h2_goaway_sent) s0=$(stat_of main h2_streams)
expect_eq "$(h2 15001 rapid 1000)" "GOAWAY 11 eof" "rapid reset: 1000 HEADERS+RST_STREAM get GOAWAY(ENHANCE_YOUR_CALM), then close"
dump_stats "$MAIN" main
rr=$(($(stat_of main h2_rx_reset) - r0)) rs=$(($(stat_of main h2_streams) - s0))
expect "rapid reset: stopped after the limit (200/s): $rr resets read, $rs streams" bash -c "[ $rr -gt 200 ] && [ $rr -lt 1000 ] && [ $rs -lt 1000 ]"
expect_eq "$(($(stat_of main h2_goaway_sent) - g0))" 1 "stats: one GOAWAY sent"
h2 15001 reset-mid /size/1073741824 3 >"$WORK/rm.out" &
RM=$!
LIVE[$RM]=1
for ((i = 0; i < 200; i++)); do grep -q reset-sent "$WORK/rm.out" && break; sleep 0.05; done
expect "reset mid-response: the client got part of a 1 GiB body, then sent RST_STREAM" grep -q reset-sent "$WORK/rm.out"
for ((i = 0; i < 40; i++)); do
	dump_stats "$MAIN" main
	[ "$(stat_of main h2_streams_active) $(stat_of main downstream_cx_active)" = "0 0" ] && break
	sleep 0.05
done
expect_eq "$(stat_of main h2_streams_active) $(stat_of main downstream_cx_active) $(stat_of main h2_downstream_cx_active)" "0 0 1" \
	"reset mid-response: no stream, no internal connection left; the client connection stays"
reap "$RM" 20
expect_eq "$(tail -1 "$WORK/rm.out")" "after 200" "reset mid-response: the connection serves the next stream"
expect "the harness is still up" alive "$MAIN"
stop_proxy "$MAIN" main

echo "# idle timeout, IPv6 original destination"
start_proxy idle 127.0.0.1 15002 --upstream 127.0.0.1:8080 --h2-idle-timeout 500 || fail "harness idle starts"
IDLE=$PX_PID
out=$(h2 15002 idle)
expect "no stream for 500 ms: GOAWAY(NO_ERROR), then close ($out)" bash -c "[[ '$out' =~ ^200\ GOAWAY\ 0\ eof\ 0\.[4-9]$ ]]"
stop_proxy "$IDLE" idle
start_proxy v6 '[::1]' 15003 --upstream 127.0.0.1:8080 || fail "harness v6 starts"
V6=$PX_PID
timeout 60 ip netns exec "$NS" "$PY" "$WORK/h2c.py" ::1 15003 upgrade-nohost /v6 >"$B"
expect_eq "$(json "$B" .host)" "[::1]:15003" "no authority, IPv6 destination: host [::1]:15003"
stop_proxy "$V6" v6

echo "# drain"
start_proxy drain 127.0.0.1 15004 --upstream 127.0.0.1:8080 || fail "harness drain starts"
DR=$PX_PID
h2 15004 drain '/drain-slow?delay=1s' >"$WORK/dr.out" &
DC=$!
LIVE[$DC]=1
for ((i = 0; i < 100; i++)); do grep -q '^GET /drain-slow' "$WORK/a.out" && break; sleep 0.05; done
kill -USR2 "$DR"
sleep 0.2
expect "drain: the harness is still running (a stream in flight)" alive "$DR"
cli curl -s --http2-prior-knowledge -o /dev/null http://127.0.0.1:15004/after-drain
rc=$?
expect "drain: a new connection is refused (curl exit $rc: 52 empty reply or 56 reset)" bash -c "[ $rc = 52 ] || [ $rc = 56 ]"
reap "$DC" 20
out=$(tail -1 "$WORK/dr.out")
expect "drain: GOAWAY(NO_ERROR, last stream 1), the stream's whole response, then close ($out)" \
	bash -c "[[ '$out' =~ ^goaway=0\ last=1\ headers=True\ body=[1-9][0-9]*\ end=True\ eof$ ]]"
reap "$DR" 10
expect_eq "$?" 0 "drain: the harness exits by itself (0) once the stream is done"
no_san_report drain

# ---- the upstreams stop cleanly too ----
for p in "${!LIVE[@]}"; do
	kill -TERM "$p" 2>/dev/null
done
for p in "${!LIVE[@]}"; do
	reap "$p" 10
done
if grep -qE 'Sanitizer|runtime error' "$WORK"/a.err; then
	fail "bm-echo: no sanitizer report"
fi

echo
echo "# $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
