#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Clicks a dashboard button in headless chromium and prints what the page then shows, over
the DevTools protocol on a pipe (--remote-debugging-pipe: NUL-ended JSON on fds 3 and 4, no
network port). Standard library only.

  dashboard_click.py CHROMIUM PROFILE_DIR URL READY_JS ACTION_JS RESULT_JS

Loads URL, waits (at most 30 s) until READY_JS is true, runs ACTION_JS, then waits until
RESULT_JS gives a non-empty string and prints it. Exit 1 when a wait runs out."""
import fcntl
import json
import os
import subprocess
import sys
import time


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    chromium, profile, url, ready, action, result = sys.argv[1:]
    def high(fd):  # away from 3 and 4, which the child's dup2 makes
        h = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return h

    to_r, to_w = map(high, os.pipe())  # chromium reads fd 3
    from_r, from_w = map(high, os.pipe())  # chromium writes fd 4
    os.makedirs(profile, exist_ok=True)
    log = open(os.path.join(profile, "chromium-click.log"), "ab")
    p = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-sync", "--disable-background-networking", "--disable-component-update",
         "--disable-default-apps", "--disable-extensions", "--user-data-dir=" + profile,
         "--remote-debugging-pipe", "--window-size=1280,900", "about:blank"],
        pass_fds=(3, 4), stdout=log, stderr=log,
        preexec_fn=lambda: (os.dup2(to_r, 3), os.dup2(from_w, 4)))
    os.close(to_r)
    os.close(from_w)
    buf = b""
    ids = [0]

    def call(method, params=None, session=None):
        ids[0] += 1
        msg = {"id": ids[0], "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(to_w, json.dumps(msg).encode() + b"\0")
        nonlocal buf
        while True:
            while b"\0" in buf:
                line, buf = buf.split(b"\0", 1)
                m = json.loads(line)
                if m.get("id") == ids[0]:
                    if "error" in m:
                        raise RuntimeError("%s: %s" % (method, m["error"]))
                    return m["result"]
            chunk = os.read(from_r, 65536)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            buf += chunk

    def evaluate(session, expr):
        r = call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)
        return r.get("result", {}).get("value")

    def wait(session, expr):
        for _ in range(300):
            v = evaluate(session, expr)
            if v:
                return v
            time.sleep(0.1)
        return None

    try:
        target = call("Target.createTarget", {"url": url})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        if not wait(session, ready):
            print("the page did not get ready: " + ready, file=sys.stderr)
            return 1
        evaluate(session, action)
        v = wait(session, result)
        if not v:
            print("no result: " + result, file=sys.stderr)
            return 1
        print(v)
        return 0
    finally:
        try:
            call("Browser.close")
        except Exception:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
