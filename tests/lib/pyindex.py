#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A tiny offline Python package index for integration tests (tests/lib/pyindex.sh drives it).

  pyindex.py build DIR   writes DIR/simple/ (PEP 503) holding real wheels of ocra-smoke,
                         ocra_smoke-V-py3-none-any.whl for V in 1.0.0 and 1.0.1 (import
                         ocra_smoke; ocra_smoke.__version__ == V), made with zipfile per
                         the wheel spec (PEP 427) and byte-identical on every run
  pyindex.py serve DIR PORTFILE [--hold-file F]
                         serves DIR on 127.0.0.1 at a free port, writes the port to
                         PORTFILE once listening, logs each request to stderr; with
                         --hold-file, a request for a wheel (.whl) waits while F exists
                         (checked every 100 ms, 120 s at most), after logging
                         "hold GET PATH": a fault injected in front of the real index,
                         which keeps a build inside `pip install` for as long as a test
                         needs (tests/it_pipeline.sh section 7)

Standard library only.
"""
import base64
import hashlib
import html
import http.server
import os
import sys
import time
import zipfile

NAME = "ocra-smoke"          # PEP 503 normalised project name
MODULE = "ocra_smoke"
VERSIONS = ("1.0.0", "1.0.1")
EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same bytes on every run


def _record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def wheel_name(version):
    return f"{MODULE}-{version}-py3-none-any.whl"


def build_wheel(path, version):
    dist_info = f"{MODULE}-{version}.dist-info"
    files = [
        (f"{MODULE}/__init__.py",
         f'"""ocra smoke-test package: proves a planned image installed it."""\n'
         f'__version__ = "{version}"\n'.encode()),
        (f"{dist_info}/METADATA",
         (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {version}\n"
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
    links = ""
    for version in VERSIONS:
        name = wheel_name(version)
        wheel = os.path.join(project, name)
        build_wheel(wheel, version)
        with open(wheel, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        links += f'<a href="{html.escape(name)}#sha256={sha}">{html.escape(name)}</a>\n'
        print(wheel)
    page = "<!DOCTYPE html>\n<html><body>\n" + links + "</body></html>\n"
    with open(os.path.join(project, "index.html"), "w") as f:
        f.write(page)
    with open(os.path.join(root, "simple", "index.html"), "w") as f:
        f.write("<!DOCTYPE html>\n<html><body>\n"
                f'<a href="{NAME}/">{NAME}</a>\n</body></html>\n')


HOLD_POLL_S = 0.1
HOLD_MAX_S = 120


class Handler(http.server.SimpleHTTPRequestHandler):
    hold_file = None  # set by serve(): wheel requests wait while it exists

    def do_GET(self):
        if self.hold_file and self.path.split("?", 1)[0].endswith(".whl") \
                and os.path.exists(self.hold_file):
            self.log_message("hold GET %s", self.path)
            deadline = time.monotonic() + HOLD_MAX_S
            while os.path.exists(self.hold_file) and time.monotonic() < deadline:
                time.sleep(HOLD_POLL_S)
            self.log_message("release GET %s", self.path)
        try:
            super().do_GET()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away while it was held (its build was killed)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))
        sys.stderr.flush()


def serve(root, portfile, hold_file=None):
    if hold_file:
        Handler.hold_file = os.path.abspath(hold_file)
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
    elif len(argv) == 6 and argv[1] == "serve" and argv[4] == "--hold-file":
        serve(argv[2], argv[3], argv[5])
    else:
        sys.stderr.write("usage: pyindex.py build DIR | serve DIR PORTFILE [--hold-file F]\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
