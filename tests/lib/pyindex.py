#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A tiny offline Python package index for integration tests (tests/lib/pyindex.sh drives it).

  pyindex.py build DIR   writes DIR/simple/ (PEP 503) holding one real wheel,
                         ocra_smoke-1.0.0-py3-none-any.whl (import ocra_smoke;
                         ocra_smoke.__version__ == "1.0.0"), made with zipfile per the
                         wheel spec (PEP 427) and byte-identical on every run
  pyindex.py serve DIR PORTFILE
                         serves DIR on 127.0.0.1 at a free port, writes the port to
                         PORTFILE once listening, logs each request to stderr

Standard library only.
"""
import base64
import hashlib
import html
import http.server
import os
import sys
import zipfile

NAME = "ocra-smoke"          # PEP 503 normalised project name
MODULE = "ocra_smoke"
VERSION = "1.0.0"
WHEEL = f"{MODULE}-{VERSION}-py3-none-any.whl"
EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same bytes on every run


def _record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def build_wheel(path):
    dist_info = f"{MODULE}-{VERSION}.dist-info"
    files = [
        (f"{MODULE}/__init__.py",
         f'"""ocra smoke-test package: proves a planned image installed it."""\n'
         f'__version__ = "{VERSION}"\n'.encode()),
        (f"{dist_info}/METADATA",
         (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
          "Summary: ocra integration-test package (offline index)\n"
          "License: Apache-2.0\n").encode()),
        (f"{dist_info}/WHEEL",
         b"Wheel-Version: 1.0\nGenerator: ocra tests/lib/pyindex.py\n"
         b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
    ]
    record = "".join(f"{n},{_record_hash(d)},{len(d)}\n" for n, d in files)
    record += f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            info = zipfile.ZipInfo(name, EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)


def build(root):
    project = os.path.join(root, "simple", NAME)
    os.makedirs(project, exist_ok=True)
    wheel = os.path.join(project, WHEEL)
    build_wheel(wheel)
    with open(wheel, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    page = ("<!DOCTYPE html>\n<html><body>\n"
            f'<a href="{html.escape(WHEEL)}#sha256={sha}">{html.escape(WHEEL)}</a>\n'
            "</body></html>\n")
    with open(os.path.join(project, "index.html"), "w") as f:
        f.write(page)
    with open(os.path.join(root, "simple", "index.html"), "w") as f:
        f.write("<!DOCTYPE html>\n<html><body>\n"
                f'<a href="{NAME}/">{NAME}</a>\n</body></html>\n')
    print(wheel)


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))
        sys.stderr.flush()


def serve(root, portfile):
    os.chdir(root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, portfile)
    server.serve_forever()


def main(argv):
    if len(argv) == 3 and argv[1] == "build":
        build(argv[2])
    elif len(argv) == 4 and argv[1] == "serve":
        serve(argv[2], argv[3])
    else:
        sys.stderr.write("usage: pyindex.py build DIR | serve DIR PORTFILE\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
