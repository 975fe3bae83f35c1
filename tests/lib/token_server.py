#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""token_server.py: a registry token endpoint (the docker-registry `auth.token` protocol) for
tests, python3 stdlib only.

    token_server.py KEY_TEXT PUBKEY_DER USER:PASSWORD SERVICE ISSUER PORT_FILE

KEY_TEXT is `openssl rsa -noout -text` of an RSA key whose certificate is the registry's
rootcertbundle; PUBKEY_DER its public key in DER (`openssl rsa -pubout -outform DER`), from
which the libtrust key id the registry looks up (JWT header `kid`) is derived. GET /token with
Basic USER:PASSWORD returns {"token", "access_token", "expires_in"}: an RS256 JWT granting the
requested `scope=repository:NAME:ACTIONS` parameters; anything else is a 401. Listens on
127.0.0.1 at an ephemeral port written to PORT_FILE.
"""
import base64
import hashlib
import json
import os
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def key_numbers(text):
    """modulus and privateExponent from `openssl rsa -noout -text`."""
    nums, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s*$", line)
        if m:
            cur = m.group(1)
            nums[cur] = ""
        elif cur and re.match(r"^\s+[0-9a-f:]+$", line):
            nums[cur] += line.strip().replace(":", "")
        else:
            cur = None
    return int(nums["modulus"], 16), int(nums["privateExponent"], 16)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def libtrust_kid(der):
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


def sign_rs256(n, d, msg):
    k = (n.bit_length() + 7) // 8
    t = SHA256_PREFIX + hashlib.sha256(msg).digest()
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def deny(self):
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        cfg = self.server.cfg
        url = urlparse(self.path)
        want = "Basic " + base64.b64encode(cfg["userpass"].encode()).decode()
        if url.path != "/token" or self.headers.get("Authorization") != want:
            return self.deny()
        q = parse_qs(url.query)
        if q.get("service", [""])[0] != cfg["service"]:
            return self.deny()
        access = []
        for scope in q.get("scope", []):
            typ, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": typ, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": cfg["kid"]}
        claims = {"iss": cfg["issuer"], "sub": cfg["userpass"].split(":")[0],
                  "aud": cfg["service"], "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": b64url(os.urandom(12)), "access": access}
        signing = (b64url(json.dumps(header).encode()) + "." +
                   b64url(json.dumps(claims).encode())).encode()
        token = signing.decode() + "." + b64url(sign_rs256(cfg["n"], cfg["d"], signing))
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    key_text, pub_der, userpass, service, issuer, port_file = sys.argv[1:7]
    n, d = key_numbers(open(key_text).read())
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.cfg = {"n": n, "d": d, "kid": libtrust_kid(open(pub_der, "rb").read()),
               "userpass": userpass, "service": service, "issuer": issuer}
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
