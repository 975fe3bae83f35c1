#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon_lb.sh OCRA OCRA_AGENT: HAProxy in front of an autoscaled inference workload
# (docs/RUNNING.md, Load balancing), against real services on 127.0.0.1 (the setup of
# it_pipeline.sh section 1, tests/lib/pipeline.sh) and the real HAProxy the daemon starts
# (lb.haproxy). The workload, replicas {min: 1, max: 3}, is a small HTTP server that prints
# "req" for each request, and on SIGTERM prints "term" and serves 3 s more, printing "late" for
# each request then (as an inference server finishing its work would). ab (apache2-utils) sends
# requests through the model's frontend, one run after another, for the whole test:
#  1. the event's frontend (lb.port_min) answers through replica 0, and is in `ocra lineage`
#     (text and --json) and /api/v1/events/{id}; HAProxy's pid file names a live process;
#  2. load 6 -> 3 replicas: servers r1 and r2 added once they accept, each replica receives
#     requests through the frontend;
#  3. load 0 -> back to 1: r1 and r2 drained before their stop: they got their SIGTERM ("term")
#     and no request after it ("late"); HAProxy knows r0 only;
#  4. version 2.0.0 of the model (on another port) -> its replica joins the same frontend once
#     it accepts; then version 1 is drained before its SIGTERM (no "late"), superseded; the
#     frontend keeps its port and serves version 2 only;
#  5. every ab run: "Failed requests: 0" and no non-2xx response;
#  6. version 2's replica 0 ends -> the event completes, its server and the frontend port are
#     given back; the daemon's SIGTERM stops HAProxy (by its pid).
# Exits 77 (skip) with the reason when docker, the registry, the EVM tools, haproxy or ab
# cannot run here. Stops everything it started, by PID.
set -u
ocra=${1:?usage: it_daemon_lb.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
agent=${2:?usage: it_daemon_lb.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
case $ocra in /*) ;; *) ocra="$PWD/$ocra" ;; esac
case $agent in /*) ;; *) agent="$PWD/$agent" ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib/dockerd.sh"
. "$here/lib/pyindex.sh"
. "$here/lib/registry.sh"
. "$here/lib/anvil.sh"
. "$here/lib/check.sh"
. "$here/lib/build_env.sh"
. "$here/lib/pipeline.sh"
. "$here/lib/port.sh"

haproxy=${OCRA_HAPROXY:-/usr/sbin/haproxy}
if [ ! -x "$haproxy" ] || ! command -v ab >/dev/null 2>&1; then
    echo "it_daemon_lb: skipped: needs $haproxy and ab (apt-get install haproxy apache2-utils)"
    exit 77
fi
ab_pid=
logs_pids=()
# shellcheck disable=SC2317 # called by pipeline_test_begin's EXIT trap
pipeline_test_cleanup() {
    [ -z "$ab_pid" ] || { touch "$tmp/ab.stop"; kill "$ab_pid" 2>/dev/null; wait "$ab_pid" 2>/dev/null; }
    local p
    for p in "${logs_pids[@]}"; do kill "$p" 2>/dev/null; done
    # the HAProxy the daemon started, when the daemon could not stop it
    if [ -s "$tmp/lb/haproxy.pid" ]; then
        p=$(cat "$tmp/lb/haproxy.pid")
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = haproxy ] && kill "$p" 2>/dev/null
    fi
}

pipeline_test_begin it_daemon_lb ocra-lb
api_port=$(registry_free_port)
fport=$(free_port) || { fail ports "no free port"; finish; }
# the workload's port: replicas 0..2 at port + N, each free now
for _ in $(seq 50); do
    port=$(free_port) || break
    (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null ||
        (exec 3<>"/dev/tcp/127.0.0.1/$((port + 2))") 2>/dev/null || break
done
pipeline_config "$tmp/ocra.yaml" "$contract" "$registry/ocra/lb" "$agent" "$api_port" \
    "daemon:
  workers: 2
  retry_base_ms: 500
  retry_max_ms: 5000
  poll_ms: 200
  lease_ms: 3000
autoscale:
  target: 2
  tolerance_percent: 0
  up_cooldown_s: 0
  down_cooldown_s: 2
  interval_s: 1
lb:
  haproxy: $haproxy
  dir: lb
  port_min: $fport
  port_max: $fport
  check_inter_ms: 1000
  drain_s: 20"
pipeline_config_serve "$tmp/ocra.yaml" || { fail config "could not edit the configuration"; finish; }
ok services

# --- the event ------------------------------------------------------------------------------
"$ocra" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
daemon_pid=$!
mkdir -p "$tmp/art/w"
head -c 100000 /dev/urandom >"$tmp/art/w/model.safetensors"
sha=$(sha256sum "$tmp/art/w/model.safetensors" | cut -d' ' -f1)
# the workload: an HTTP server on $OCRA_PORT (python3 of the base image)
cat >"$tmp/serve.py" <<'PY'
import http.server, os, signal, sys, threading, time
term = []
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        print("late" if term else "req", flush=True)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
def on_term(*a):
    print("term", flush=True)
    term.append(time.monotonic())
signal.signal(signal.SIGTERM, on_term)
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["OCRA_PORT"])), H)
threading.Thread(target=s.serve_forever, daemon=True).start()
print("serving on", os.environ["OCRA_PORT"], flush=True)
while not os.path.exists("/tmp/ocra-stop") and not (term and time.monotonic() - term[0] > 3):
    time.sleep(0.1)
PY
serve=$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$tmp/serve.py")
cat >"$tmp/spec.json" <<JSON
{
  "name": "lb-model",
  "modelVersion": "1.0.0",
  "baseImage": "$OCRA_BASE_IMAGE",
  "toolsAndLibraries": {"ocra-smoke": "1.0.0"},
  "artifact": {"uri": "http://127.0.0.1:$ARTIFACTS_PORT/w/model.safetensors", "sha256": "$sha",
               "size": 100000},
  "workload": {
    "type": "inference",
    "gpus": 0,
    "replicas": {"min": 1, "max": 3},
    "port": $port,
    "command": ["python3", "-u", "-c", $serve]
  }
}
JSON
tx=$("$ocra" -c "$tmp/ocra.yaml" publish --chain evm --key-file "$tmp/keys/publisher.key" \
    "$tmp/spec.json" 2>"$tmp/publish.err") ||
    { fail publish "ocra publish failed: $(tail -3 "$tmp/publish.err")"; finish; }

pipe() { pipeline_get "$ocra" "$tmp/ocra.yaml" "$1" "$2"; }
wait_pipe() {
    local i
    for i in $(seq 1 900); do
        [ "$(pipe "$1" "$2")" = True ] && return 0
        kill -0 "$daemon_pid" 2>/dev/null || { echo "  the daemon exited" >&2; return 1; }
        if [ "$(pipe "$1" 'p.get("state")')" = dead ]; then
            echo "  dead: $(pipe "$1" 'p.get("lastError")')" >&2
            return 1
        fi
        sleep 1
    done
    echo "  gave up waiting for $2" >&2
    return 1
}
id=
for i in $(seq 1 300); do
    id=$(pipeline_event_of "$ocra" "$tmp/ocra.yaml" "$tx")
    [ -n "$id" ] && break
    kill -0 "$daemon_pid" 2>/dev/null || { fail daemon "the daemon exited: $(tail -5 "$tmp/daemon.log")"; finish; }
    sleep 1
done
[ -n "$id" ] || { fail journaled "the event of $tx was never journaled"; finish; }
short=$(printf '%s' "$id" | sha256sum | cut -c1-12)
c0=ocra-$short
wait_pipe "$id" 'p.get("status") == "running" and p.get("stage") == "complete"' ||
    { fail running "the event never reached the running phase: $(pipe "$id" 'p')"; finish; }
ok running_phase

running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
gone() { ! docker inspect "$1" >/dev/null 2>&1; }
front() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$fport/" 2>/dev/null; }
front_ok() { [ "$(front)" = 200 ]; }
# admin CMD: HAProxy's Runtime API through the daemon's admin socket
admin() {
    python3 - "$tmp/lb/admin.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
PY
}
servers() { # the servers of the frontend's section, sorted, space-separated
    admin "show stat" | awk -F, -v sec="ocra_$fport" '$1 == sec && $2 != "FRONTEND" && $2 != "BACKEND" { print $2 }' |
        sort | tr '\n' ' ' | sed 's/ $//'
}
# follow CONTAINER: its log into $tmp/NAME.log until it is removed
follow() {
    docker logs -f "$1" >"$tmp/$1.log" 2>&1 &
    logs_pids+=($!)
}
reqs() { grep -c '^req$' "$tmp/$1.log" 2>/dev/null || true; }
more_reqs() { [ "$(reqs "$1")" -gt "$2" ]; } # more_reqs CONTAINER N: it served more than N

# --- 1. the frontend answers through replica 0 ---------------------------------------------------
wait_until "the frontend logged" grep -q "lb event=$id frontend=127.0.0.1:$fport" "$tmp/daemon.log" &&
    ok frontend_assigned || fail frontend_assigned "no 'lb event=... frontend=127.0.0.1:$fport' in the log"
wait_until "200 through the frontend" front_ok && ok frontend_serves ||
    fail frontend_serves "status '$(front)' through 127.0.0.1:$fport"
hpid=$(cat "$tmp/lb/haproxy.pid" 2>/dev/null)
[ -n "$hpid" ] && [ "$(cat "/proc/$hpid/comm" 2>/dev/null)" = haproxy ] && ok haproxy_running ||
    fail haproxy_running "pid file: '$hpid'"
[ "$(servers)" = "$c0" ] && ok one_server || fail one_server "servers: '$(servers)'"
follow "$c0"
# the frontend in the lineage: `ocra lineage` and the API (the dashboard shows the API's)
"$ocra" -c "$tmp/ocra.yaml" lineage --json "$id" >"$tmp/lineage.json" 2>&1
[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("frontend"))' "$tmp/lineage.json" 2>&1)" = "127.0.0.1:$fport" ] &&
    ok lineage_frontend || fail lineage_frontend "$(head -c 300 "$tmp/lineage.json")"
"$ocra" -c "$tmp/ocra.yaml" lineage "$id" 2>&1 | grep -qx "frontend 127.0.0.1:$fport (load balancer)" &&
    ok lineage_text_frontend || fail lineage_text_frontend "no 'frontend 127.0.0.1:$fport' line"
curl -s -H "Authorization: Bearer $(cat "$tmp/keys/api.token")" \
    "http://127.0.0.1:$api_port/api/v1/events/$id" >"$tmp/api.json"
[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("frontend"))' "$tmp/api.json" 2>&1)" = "127.0.0.1:$fport" ] &&
    ok api_frontend || fail api_frontend "$(head -c 300 "$tmp/api.json")"

# ab runs one after another until $tmp/ab.stop exists: traffic through every scaling step
(
    n=0
    while [ ! -e "$tmp/ab.stop" ]; do
        n=$((n + 1))
        ab -n 500 -c 4 "http://127.0.0.1:$fport/" >"$tmp/ab.$n.out" 2>&1
    done
) &
ab_pid=$!

# --- 2. load 6 -> 3 replicas, each served through the frontend ---------------------------------
docker exec "$c0" sh -c 'echo 6 > /tmp/ocra-load' || fail load_written "docker exec into $c0 failed"
both_running() { running "$c0-r1" && running "$c0-r2"; }
wait_until "$c0-r1 and -r2 running" both_running && ok scaled_up_to_3 ||
    fail scaled_up_to_3 "$(docker ps -a --format '{{.Names}} {{.Status}}' | tr '\n' ';')"
follow "$c0-r1"
follow "$c0-r2"
three() { [ "$(servers)" = "$c0 $c0-r1 $c0-r2" ]; }
wait_until "servers r0 r1 r2" three && ok servers_added || fail servers_added "servers: '$(servers)'"
for n in 1 2; do
    has "replica${n}_up_logged" "$tmp/daemon.log" "lb event=$id frontend=127.0.0.1:$fport replica=$n server=127.0.0.1:$((port + n)) up"
done
got_traffic() { [ "$(reqs "$c0")" -gt 0 ] && [ "$(reqs "$c0-r1")" -gt 0 ] && [ "$(reqs "$c0-r2")" -gt 0 ]; }
wait_until "each replica served requests" got_traffic && ok each_replica_served ||
    fail each_replica_served "requests: r0 $(reqs "$c0") r1 $(reqs "$c0-r1") r2 $(reqs "$c0-r2")"

# --- 3. load 0 -> 1 replica: r1, r2 drained before their stop -------------------------------------
for c in "$c0" "$c0-r1" "$c0-r2"; do
    docker exec "$c" sh -c 'echo 0 > /tmp/ocra-load' 2>/dev/null
done
both_gone() { gone "$c0-r1" && gone "$c0-r2"; }
wait_until "$c0-r1 and -r2 removed" both_gone && ok scaled_down_to_1 ||
    fail scaled_down_to_1 "$(docker ps -a --format '{{.Names}} {{.Status}}' | tr '\n' ';')"
for n in 1 2; do
    has "replica${n}_drained_logged" "$tmp/daemon.log" "lb event=$id frontend port=$fport replica=$n drained and removed"
    grep -qx term "$tmp/$c0-r$n.log" && ok "replica${n}_got_sigterm" ||
        fail "replica${n}_got_sigterm" "no 'term' in its log: $(tail -3 "$tmp/$c0-r$n.log")"
    late=$(grep -c '^late$' "$tmp/$c0-r$n.log")
    [ "$late" -eq 0 ] && ok "replica${n}_no_request_after_drain" ||
        fail "replica${n}_no_request_after_drain" "$late requests after its SIGTERM"
done
[ "$(servers)" = "$c0" ] && ok servers_back_to_r0 || fail servers_back_to_r0 "servers: '$(servers)'"
# a last ab run that starts after the scale-down: the frontend still serves
before=$(reqs "$c0")
wait_until "replica 0 serves after the scale-down" more_reqs "$c0" "$before" &&
    ok served_after_scale_down || fail served_after_scale_down "replica 0 saw no new request"

# --- 4. version 2.0.0 of the model replaces 1.0.0 through the same frontend (blue/green) -----------
# on another port: with host networking both versions serve at once during the switch
for _ in $(seq 50); do
    port2=$(free_port) || break
    [ "$port2" -ne "$port" ] && [ "$port2" -ne $((port + 1)) ] && [ "$port2" -ne $((port + 2)) ] &&
        ! (exec 3<>"/dev/tcp/127.0.0.1/$((port2 + 1))") 2>/dev/null &&
        ! (exec 3<>"/dev/tcp/127.0.0.1/$((port2 + 2))") 2>/dev/null && break
done
sed -e 's/"modelVersion": "1.0.0"/"modelVersion": "2.0.0"/' -e "s/\"port\": $port,/\"port\": $port2,/" \
    "$tmp/spec.json" >"$tmp/spec2.json"
tx2=$("$ocra" -c "$tmp/ocra.yaml" publish --chain evm --key-file "$tmp/keys/publisher.key" \
    "$tmp/spec2.json" 2>"$tmp/publish2.err") ||
    fail publish_v2 "ocra publish failed: $(tail -3 "$tmp/publish2.err")"
id2=
for i in $(seq 1 300); do
    id2=$(pipeline_event_of "$ocra" "$tmp/ocra.yaml" "$tx2")
    [ -n "$id2" ] && break
    sleep 1
done
c2=ocra-$(printf '%s' "$id2" | sha256sum | cut -c1-12)
wait_until "version 2's server up" grep -q "lb event=$id2 frontend=127.0.0.1:$fport replica=0 server=127.0.0.1:$port2 up" "$tmp/daemon.log" &&
    ok v2_server_up_on_same_frontend || fail v2_server_up_on_same_frontend "no 'lb event=$id2 frontend=127.0.0.1:$fport replica=0 ... up'"
follow "$c2"
wait_until "version 1 drained" grep -q "lb event=$id frontend port=$fport replica=0 drained and removed" "$tmp/daemon.log" &&
    ok v1_drained || fail v1_drained "no 'lb event=$id frontend port=$fport replica=0 drained and removed'"
v1_done() { [ "$(pipe "$id" 'p.get("state")')" = done ]; }
wait_until "version 1's event ended" v1_done && ok v1_ended || fail v1_ended "$(pipe "$id" 'p')"
[ "$(pipe "$id" 'p.get("outcome")')" = superseded ] && ok v1_superseded ||
    fail v1_superseded "outcome $(pipe "$id" 'p.get("outcome")')"
grep -qx term "$tmp/$c0.log" && ok v1_got_sigterm || fail v1_got_sigterm "no 'term' in its log: $(tail -3 "$tmp/$c0.log")"
late=$(grep -c '^late$' "$tmp/$c0.log")
[ "$late" -eq 0 ] && ok v1_no_request_after_drain || fail v1_no_request_after_drain "$late requests after its SIGTERM"
[ "$(servers)" = "$c2" ] && ok servers_only_v2 || fail servers_only_v2 "servers: '$(servers)'"
[ "$(cut -d' ' -f1 "$tmp/lb/frontends")" = "$fport" ] && [ "$(wc -l <"$tmp/lb/frontends")" -eq 1 ] &&
    ok frontend_kept_for_v2 || fail frontend_kept_for_v2 "$(cat "$tmp/lb/frontends")"
before=$(reqs "$c2")
wait_until "version 2 serves through the frontend" more_reqs "$c2" "$before" &&
    ok v2_serves || fail v2_serves "version 2 saw no request"

# --- 5. ab: no failed request through it all ------------------------------------------------------
touch "$tmp/ab.stop"
wait "$ab_pid"
ab_pid=
runs=0 bad=
for f in "$tmp"/ab.*.out; do
    runs=$((runs + 1))
    grep -q '^Complete requests: *500$' "$f" && grep -q '^Failed requests: *0$' "$f" &&
        ! grep -q '^Non-2xx responses' "$f" || bad="$bad $(basename "$f")"
done
echo "  ab: $runs runs of 500 requests; requests per replica: r0 $(reqs "$c0") r1 $(reqs "$c0-r1") r2 $(reqs "$c0-r2"), version 2 $(reqs "$c2")"
[ "$runs" -gt 1 ] && [ -z "$bad" ] && ok ab_no_failed_request ||
    fail ab_no_failed_request "$runs runs; bad:$bad: $(for f in $bad; do grep -E 'Complete|Failed|Non-2xx' "$tmp/$f"; done | tr '\n' ';')"

# --- 6. the event ends: server and port given back; HAProxy stopped with the daemon -------------
docker exec "$c2" touch /tmp/ocra-stop || fail stop_written "docker exec into $c2 failed"
wait_pipe "$id2" 'p.get("status") == "reported" and p.get("state") == "done"' && ok event_reported ||
    fail event_reported "$(pipe "$id2" 'p')"
wait_until "the port released" grep -q "lb event=$id2 frontend port=$fport released" "$tmp/daemon.log" &&
    ok frontend_released || fail frontend_released "no 'frontend port=$fport released' in the log"
[ -z "$(servers)" ] && ok no_server_left || fail no_server_left "servers: '$(servers)'"
[ ! -s "$tmp/lb/frontends" ] && ok frontends_file_empty || fail frontends_file_empty "$(cat "$tmp/lb/frontends")"
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok daemon_clean_exit || fail daemon_clean_exit "exit status $rc: $(grep -m3 -E 'Sanitizer|ERROR' "$tmp/daemon.log")"
haproxy_gone() { [ "$(cat "/proc/$hpid/comm" 2>/dev/null)" != haproxy ]; }
wait_until "haproxy stopped" haproxy_gone && ok haproxy_stopped_with_daemon ||
    fail haproxy_stopped_with_daemon "pid $hpid still runs"
finish
