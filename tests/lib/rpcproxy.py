#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
#
# rpcproxy.py: a fault-injecting loopback proxy in front of a real JSON-RPC node (anvil in the
# tests). It forwards every request unchanged, except that eth_getLogs over more than
# --max-range blocks is refused the way hosted providers refuse it (code -32005, "query
# returned more than 10000 results"). It logs each eth_getLogs range it saw, refused or
# forwarded, one JSON line each in --log, and writes its port to --ready-file. While the file
# named by --fail-file exists, every request is answered 503 (a node or provider outage) and
# logged as {"failed": METHOD}. While the file named by --error-file exists, every request is
# answered HTTP 200 with a JSON-RPC error (-32603, a node that is up but erring) and logged as
# {"errored": METHOD, "t": SECONDS} (when it came: CLOCK_MONOTONIC, as time.monotonic()).
# Python 3 standard library only; listens on 127.0.0.1 only.

import argparse
import http.server
import json
import os
import sys
import time
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--max-range", type=int, default=100)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--fail-file", default=None)
    ap.add_argument("--error-file", default=None)
    args = ap.parse_args()
    log = open(args.log, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            req = json.loads(raw)
            if args.fail_file and os.path.exists(args.fail_file):
                log.write(json.dumps({"failed": req.get("method") if isinstance(req, dict) else "batch"}) + "\n")
                data = b'{"error": "upstream unavailable"}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if args.error_file and os.path.exists(args.error_file):
                method = req.get("method") if isinstance(req, dict) else "batch"
                log.write(json.dumps({"errored": method, "t": time.monotonic()}) + "\n")
                return self.reply({"jsonrpc": "2.0", "id": req.get("id") if isinstance(req, dict) else None,
                                   "error": {"code": -32603, "message": "internal error"}})
            if isinstance(req, dict) and req.get("method") == "eth_getLogs":
                f = req["params"][0]
                lo, hi = int(f["fromBlock"], 16), int(f["toBlock"], 16)
                refused = hi - lo + 1 > args.max_range
                log.write(json.dumps({"from": lo, "to": hi, "refused": refused}) + "\n")
                if refused:
                    return self.reply({"jsonrpc": "2.0", "id": req.get("id"),
                                       "error": {"code": -32005,
                                                 "message": "query returned more than 10000 results"}})
            up = urllib.request.Request(args.upstream, data=raw,
                                        headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(up, timeout=30) as r:
                self.reply(json.loads(r.read()))

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.ready_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(args.ready_file + ".tmp", args.ready_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
