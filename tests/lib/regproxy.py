#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""regproxy.py: a fault-injecting HTTP proxy in front of a real docker-registry, for tests.

    regproxy.py LISTEN_PORT UPSTREAM_PORT PORT_FILE

Listens on 127.0.0.1:LISTEN_PORT and relays each request to 127.0.0.1:UPSTREAM_PORT unchanged
(the Host header too, so the registry's Location URLs point back at the proxy), one request
per connection. A test arms one fault at a time through the proxy itself:

    GET /_fault/<mode>[@N]  arm <mode> for the Nth (default: next) matching request, once:
        503-patch   read a PATCH's whole body, answer 503, forward nothing
        reset-patch read half of a PATCH's body, then reset the connection, forward nothing
        cut-patch   forward half of a PATCH's body to the registry, then cut both connections
        503-put     read a PUT's whole body, answer 503, forward nothing
        flip-get    relay a GET but flip the last byte of the reply (a corrupted blob)
    GET /_log            the requests seen so far, one line each: METHOD PATH RANGE ACTION
    GET /_log/clear      forget them

Writes its port to PORT_FILE once it listens. Stdlib only; loopback only.
"""
import socket
import struct
import sys
import threading

LOCK = threading.Lock()
STATE = {"fault": None, "log": []}


def read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
        if len(data) > 1 << 20:
            return None, b""
    head, rest = data.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def header(head, name):
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name:
            return v.strip()
    return ""


def read_body(conn, rest, n):
    while len(rest) < n:
        chunk = conn.recv(min(65536, n - len(rest)))
        if not chunk:
            break
        rest += chunk
    return rest


def reply(conn, status, body=b"", ctype="text/plain"):
    conn.sendall(b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close"
                 b"\r\n\r\n" % (status.encode(), ctype.encode(), len(body)) + body)


def reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def control(conn, path):
    with LOCK:
        if path.startswith("/_fault/"):
            STATE["fault"] = path[len("/_fault/"):]
            body = b"armed\n"
        elif path == "/_log/clear":
            STATE["log"] = []
            body = b"cleared\n"
        else:
            body = "".join(l + "\n" for l in STATE["log"]).encode()
    reply(conn, "200 OK", body)


def take_fault(method):
    with LOCK:
        f = STATE["fault"]
        if not f:
            return None
        mode, _, nth = f.partition("@")
        if not mode.endswith("-" + method.lower()):
            return None
        left = int(nth or 1) - 1
        if left > 0:
            STATE["fault"] = "%s@%d" % (mode, left)
            return None
        STATE["fault"] = None
        return mode


def log(method, path, rng, action):
    with LOCK:
        STATE["log"].append("%s %s %s %s" % (method, path.split("?")[0], rng or "-", action))


def relay(conn, head, rest, upstream_port, cut_after=None, flip=False):
    up = socket.create_connection(("127.0.0.1", upstream_port))
    lines = [l for l in head.split("\r\n") if not l.lower().startswith("connection:")]
    up.sendall(("\r\n".join(lines) + "\r\nConnection: close\r\n\r\n").encode("latin-1"))
    n = int(header(head, "content-length") or 0)
    sent = 0
    if rest:
        part = rest if cut_after is None else rest[:cut_after]
        up.sendall(part)
        sent = len(part)
    while sent < n and (cut_after is None or sent < cut_after):
        want = n - sent if cut_after is None else min(n, cut_after) - sent
        chunk = conn.recv(min(65536, want))
        if not chunk:
            break
        up.sendall(chunk)
        sent += len(chunk)
    if cut_after is not None:
        reset(up)
        reset(conn)
        return
    data = b""
    while True:
        chunk = up.recv(65536)
        if not chunk:
            break
        if flip:
            data += chunk
        else:
            conn.sendall(chunk)
    if flip and data:
        data = data[:-1] + bytes([data[-1] ^ 0x01])
        conn.sendall(data)
    up.close()
    conn.close()


def handle(conn, upstream_port):
    try:
        head, rest = read_head(conn)
        if head is None:
            conn.close()
            return
        method, path = head.split(" ")[0], head.split(" ")[1]
        if path.startswith("/_"):
            control(conn, path)
            conn.close()
            return
        rng = header(head, "content-range")
        n = int(header(head, "content-length") or 0)
        fault = take_fault(method)
        log(method, path, rng, fault or "relay")
        if fault in ("503-patch", "503-put"):
            read_body(conn, rest, n)
            reply(conn, "503 Service Unavailable", b'{"errors":[{"code":"UNAVAILABLE"}]}',
                  "application/json")
            conn.close()
        elif fault == "reset-patch":
            read_body(conn, rest, n // 2)
            reset(conn)
        elif fault == "flip-get":
            relay(conn, head, rest, upstream_port, flip=True)
        elif fault == "cut-patch":
            relay(conn, head, rest, upstream_port, cut_after=n // 2)
        else:
            relay(conn, head, rest, upstream_port)
    except OSError:
        try:
            conn.close()
        except OSError:
            pass


def main():
    listen_port, upstream_port, port_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(64)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    import os
    os.rename(port_file + ".tmp", port_file)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, upstream_port), daemon=True).start()


if __name__ == "__main__":
    main()
