#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tests/lib/artifact_server.py: an artifact server that can also misbehave, for it_fetch.sh.

    artifact_server.py DIR PORT_FILE [BIND_ADDRESS]

Listens on BIND_ADDRESS (default 127.0.0.1; an IPv6 address works too) on a port the kernel
picks, written to PORT_FILE once it accepts connections. Every request is logged on stderr.

    GET /files/NAME          DIR/NAME, with its Content-Length
    GET /hostile/NAME?mark=M&wait=W
                             NAME's Content-Length, then bytes that are not NAME's: the first
                             half, then the file M is created, then it waits until the file W
                             exists (at most 10 s), then the second half: a fetch of NAME's
                             digest kept open while another fetch of it runs
    GET /trickle/NAME        NAME's Content-Length, 1 KiB, then one byte per second (a worker
                             held by a peer that never stalls completely); gives up after 120 s
    GET /endless?fast=1      no Content-Length, 64 KiB chunks until the client goes (fast: as
                             fast as it reads; else 20 a second); at most 256 MiB or 120 s
    GET /big                 Content-Length: 1 TiB, then zeros until the client goes (120 s)
    GET /status/CODE         that status, with a body an internal service would not publish

Only the Python standard library. Stopped by the test, by PID.
"""
import http.server
import os
import socket
import sys
import time
import urllib.parse

CHUNK = 64 << 10
GIVE_UP_S = 120


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        sys.stderr.write("artifact_server: %s\n" % (fmt % args))
        sys.stderr.flush()

    def head(self, length=None, code=200):
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def send(self, data):
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/", 1)
        kind, name = parts[0], parts[1] if len(parts) > 1 else ""
        path = os.path.join(self.server.dir, os.path.basename(name)) if name else ""
        if kind in ("files", "hostile", "trickle") and not os.path.isfile(path):
            self.send_error(404)
        elif kind == "files":
            data = open(path, "rb").read()
            self.head(len(data))
            self.send(data)
        elif kind == "hostile":
            self.hostile(os.path.getsize(path), q.get("mark"), q.get("wait"))
        elif kind == "trickle":
            self.trickle(open(path, "rb").read())
        elif kind == "endless":
            self.endless(q.get("fast") == "1")
        elif kind == "big":
            self.head(1 << 40)
            self.stream(b"\0" * CHUNK, 0.05)
        elif kind == "status" and name.isdigit():
            body = b"internal service: admin token 0123456789abcdef\n"
            self.head(len(body), int(name))
            self.send(body)
        else:
            self.send_error(404)

    def hostile(self, size, mark, wait):
        junk = bytes((i * 7 + 13) & 0xFF for i in range(size))
        half = size // 2
        self.head(size)
        if not self.send(junk[:half]):
            return
        if mark:
            open(mark, "w").close()
        end = time.monotonic() + 10
        while wait and not os.path.exists(wait) and time.monotonic() < end:
            time.sleep(0.05)
        self.send(junk[half:])

    def trickle(self, data):
        self.head(len(data))
        if not self.send(data[:1024]):
            return
        end = time.monotonic() + GIVE_UP_S
        for i in range(1024, len(data)):
            if time.monotonic() > end or not self.send(data[i:i + 1]):
                return
            time.sleep(1)

    def endless(self, fast):
        self.head()
        self.stream(os.urandom(CHUNK), 0 if fast else 0.05, 256 << 20)

    def stream(self, chunk, pause, limit=None):
        sent, end = 0, time.monotonic() + GIVE_UP_S
        while (limit is None or sent < limit) and time.monotonic() < end:
            if not self.send(chunk):
                return
            sent += len(chunk)
            if pause:
                time.sleep(pause)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: artifact_server.py DIR PORT_FILE [BIND_ADDRESS]")
    bind = sys.argv[3] if len(sys.argv) == 4 else "127.0.0.1"
    Server.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    srv = Server((bind, 0), Handler)
    srv.dir = sys.argv[1]
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, sys.argv[2])
    srv.serve_forever()


if __name__ == "__main__":
    main()
