#!/usr/bin/env python3
# tests/l7/upstream.py - an upstream for what bm-echo does not do, for the L7 tests: WebSocket
# (RFC 6455) echo after a 101, chunked and close-delimited responses. Standard library only.
#   upstream.py server PORT      GET /chunked/N: N pattern bytes, chunked, with a trailer
#                                GET /close/N: N pattern bytes, no length, then close
#                                Upgrade: websocket: 101, then frames echoed until a close
#                                /reset, /eof, /garbage, /bighead/N, /early413: misbehaviours
#                                /ka-then-close: 200, then the next request's arrival closes
#   upstream.py client HOST:PORT PATH COUNT   WebSocket client: COUNT frames echoed, prints OK
import base64
import hashlib
import os
import socket
import struct
import sys
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PAT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def pattern(off, n):
    """Bytes off..off+n of the pattern bm-echo's /size/N uses (byte i is PAT[i % 64])."""
    reps = (off % 64 + n) // 64 + 2
    whole = PAT * reps
    return whole[off % 64:off % 64 + n]


def send_chunked(conn, n):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    off, size = 0, 1
    while off < n:
        k = min(size, n - off)
        conn.sendall(b"%x\r\n" % k + pattern(off, k) + b"\r\n")
        off += k
        size = size * 3 % 65521 or 1
    conn.sendall(b"0\r\nx-trailer: t\r\n\r\n")


def send_close_delimited(conn, n):
    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    off = 0
    while off < n:
        k = min(65536, n - off)
        conn.sendall(pattern(off, k))
        off += k


def read_head(sock):
    return read_head_from(sock, b"")


def recv_exact(sock, buf, n):
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed in a frame")
        buf += chunk
    return buf[:n], buf[n:]


def read_frame(sock, buf):
    hdr, buf = recv_exact(sock, buf, 2)
    opcode = hdr[0] & 0x0F
    masked = hdr[1] & 0x80
    length = hdr[1] & 0x7F
    if length == 126:
        ext, buf = recv_exact(sock, buf, 2)
        length = struct.unpack("!H", ext)[0]
    elif length == 127:
        ext, buf = recv_exact(sock, buf, 8)
        length = struct.unpack("!Q", ext)[0]
    key = b""
    if masked:
        key, buf = recv_exact(sock, buf, 4)
    payload, buf = recv_exact(sock, buf, length)
    if masked:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return opcode, payload, buf


def frame(opcode, payload, mask):
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def serve_one(conn):
    buf = b""
    close_next = False
    try:
        while True:
            line, fields, buf = read_head_from(conn, buf)
            path = line.split(" ")[1]
            if close_next:            # the keep-alive race: closed as the next request came
                return
            if path == "/ka-then-close":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nka\n")
                close_next = True
                continue
            key = fields.get("sec-websocket-key", "")
            if fields.get("upgrade", "").lower() == "websocket" and key:
                websocket(conn, key, path, buf)
                return
            if path == "/reset":      # RST before any response byte
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if path == "/eof":        # FIN before any response byte
                return
            if path == "/garbage":    # not a status line
                conn.sendall(b"HTTP/1.1 2x0 Nope\r\n\r\n")
                return
            if path == "/status10":   # a status out of range, which llhttp takes
                conn.sendall(b"HTTP/1.1 10 Odd\r\nContent-Length: 0\r\n\r\n")
                return
            if path == "/emptyname":  # a field with no name, which llhttp takes
                conn.sendall(b"HTTP/1.1 200 OK\r\n: empty\r\nContent-Length: 0\r\n\r\n")
                return
            if path.startswith("/bighead/"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * int(path[9:]) +
                             b"\r\nContent-Length: 0\r\n\r\n")
                continue
            if path == "/early413":   # answer before reading the body, then drain and close
                conn.sendall(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n"
                             b"Connection: close\r\n\r\ntoo big\n")
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(5)
                while conn.recv(65536):
                    pass
                return
            if path == "/req-trailers":  # a chunked request: answer with its trailer lines
                trailers, buf = read_chunked_trailers(conn, buf)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(trailers) +
                             trailers)
                continue
            if path.startswith("/chunked/"):
                send_chunked(conn, int(path[9:]))
            elif path.startswith("/close/"):
                send_close_delimited(conn, int(path[7:]))
                return
            else:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
    except (EOFError, OSError, ValueError, IndexError):
        pass
    finally:
        conn.close()


def read_head_from(sock, data):
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError("connection closed during the head")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return lines[0], fields, rest


def read_chunked_trailers(sock, data):
    """Reads a chunked body from data + sock; returns its trailer section and what follows."""
    while True:
        while b"\r\n" not in data:
            data += sock.recv(4096) or b"\0"
        size_line, data = data.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        while len(data) < size + 2:
            data += sock.recv(65536) or b"\0"
        data = data[size + 2:]
    while b"\r\n\r\n" not in b"\r\n" + data:
        data += sock.recv(4096) or b"\0"
    end = (b"\r\n" + data).index(b"\r\n\r\n")
    return data[:end], data[end + 2:]


def websocket(conn, key, path, buf):
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                  "X-Ws-Path: %s\r\n\r\n" % (accept, path)).encode())
    while True:
        opcode, payload, buf = read_frame(conn, buf)
        if opcode == 8:
            conn.sendall(frame(8, payload, False))
            return
        conn.sendall(frame(opcode, payload, False))


def server(port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve_one, args=(conn,), daemon=True).start()


def client(hostport, path, count):
    host, port = hostport.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                  % (path, hostport, key)).encode())
    line, fields, buf = read_head(sock)
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    if " 101 " not in line + " " or fields.get("sec-websocket-accept") != want:
        print("no upgrade: %s %s" % (line, fields))
        return 1
    for i in range(count):
        msg = ("message %d " % i).encode() + os.urandom(i * 97 % 70000)
        sock.sendall(frame(2, msg, True))
        opcode, payload, buf = read_frame(sock, buf)
        if opcode != 2 or payload != msg:
            print("frame %d not echoed" % i)
            return 1
    sock.sendall(frame(8, b"\x03\xe8", True))
    opcode, _, buf = read_frame(sock, buf)
    if opcode != 8:
        print("no close frame back")
        return 1
    print("OK %d frames, path %s" % (count, fields.get("x-ws-path")))
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "server":
        server(int(sys.argv[2]))
    elif len(sys.argv) == 5 and sys.argv[1] == "client":
        sys.exit(client(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    else:
        sys.exit("usage: upstream.py server PORT | upstream.py client HOST:PORT PATH COUNT")
