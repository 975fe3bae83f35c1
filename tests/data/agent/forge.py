# SPDX-License-Identifier: Apache-2.0
# forge.py LEGIT_EVENT_ID: the workload of tests/it_daemon_agent.sh's forging container. From
# inside its container it speaks the agent protocol (docs/AGENT.md) on its own run's socket,
# /run/ocra/agent.sock, as a hostile workload would: reports and a check that name another
# event (LEGIT_EVENT_ID, public on-chain), heartbeats with huge loads for 5,000 made-up events
# and under 5,000 instance ids of its own event, and 200 connections held open. It prints what
# it got back, one line each, then "FORGER READY", and keeps it up (connections re-opened
# before the daemon's idle deadline, the forged heartbeats sent again) until /tmp/ocra-stop
# exists; then it exits 0. Python standard library only.
import json
import os
import select
import socket
import sys
import time

SOCK = "/run/ocra/agent.sock"
LEGIT = sys.argv[1]
ME = os.environ["OCRA_EVENT_ID"]
HOLD = 200
CAP = 4  # the daemon's connections per run


def say(*words):
    print(*words, flush=True)


def line(kind, event, instance="f0rged", **members):
    m = {"v": 1, "type": kind, "event": event, "model": os.environ["OCRA_MODEL_NAME"],
         "version": os.environ["OCRA_MODEL_VERSION"], "instance": instance,
         "time_ms": int(time.time() * 1000)}
    m.update(members)
    return (json.dumps(m, separators=(",", ":")) + "\n").encode()


def ask(request):
    """One exchange on a fresh connection: the reply line, or what went wrong."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(SOCK)
        s.sendall(request)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(1024)
            if not chunk:
                return "closed" if not reply else reply.decode()
            reply += chunk
        return reply.decode().strip()
    except OSError as e:
        return "error: %s" % e
    finally:
        s.close()


def forge_legit():
    """As LEGIT's replica: the heartbeat last, so that its huge load would stay (a completed
    report drops the load of its instance)."""
    replies = []
    for kind, members in (("check", {}),
                          ("started", {"pid": 1}),
                          ("completed", {"duration_ms": 1, "exit_code": 0}),
                          ("heartbeat", {"uptime_ms": 1, "load": 1000000})):
        replies.append((kind, ask(line(kind, LEGIT, **members))))
    return replies


def flood(event_of, n):
    accepted = 0
    for i in range(n):
        reply = ask(line("heartbeat", event_of(i), "i%d" % i, uptime_ms=1, load=1000000))
        accepted += '"ok":true' in reply
    return accepted


def hold(n):
    """Opens n connections; keeps those the daemon does not close at once (it closes those
    over its cap as it accepts them: waits until all but CAP are closed, 5 s at most)."""
    conns = {}
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(SOCK)
            conns[s.fileno()] = s
        except OSError:
            s.close()
    p = select.poll()
    for fd in conns:
        p.register(fd, select.POLLIN)
    deadline = time.monotonic() + 5
    while len(conns) > CAP and time.monotonic() < deadline:
        for fd, _ in p.poll(200):
            s = conns.pop(fd)
            p.unregister(fd)
            s.close()
    return list(conns.values())


say("sees:", " ".join(sorted(os.listdir("/run/ocra"))))
for kind, reply in forge_legit():
    say("forged", kind, "->", reply)
say("flood other events: %d of 5000 accepted" %
    flood(lambda i: "evm:31337:0x%064x:%d" % (i + 1, i), 5000))
say("flood own event: %d of 5000 accepted" % flood(lambda i: ME, 5000))
held = hold(HOLD)
say("held %d of %d" % (len(held), HOLD))
say("FORGER READY")
rounds = 0
while not os.path.exists("/tmp/ocra-stop"):
    for s in held:
        s.close()
    replies = forge_legit()
    flood(lambda i: "evm:31337:0x%064x:%d" % (i + 1, i), 200)
    held = hold(HOLD)  # again: the daemon's idle deadline (10 s) closed the old ones
    rounds += 1
    say("round %d: held %d of %d; forged heartbeat -> %s" % (rounds, len(held), HOLD, replies[-1][1]))
    time.sleep(2)
say("forger stops")
