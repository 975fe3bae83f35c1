#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon_agent.sh OCRA OCRA_AGENT: the agent sockets of `ocra daemon` know who is talking
# (docs/AGENT.md, "One socket per run"), against real services on 127.0.0.1 (tests/lib/
# pipeline.sh: a private dockerd, docker-registry, anvil with ModelRegistry, the package index,
# an artifact server). Two events run side by side: LEGIT, an inference workload with replicas
# {min 1, max 3} (autoscale target 2, up cooldown 0, every 1 s; heartbeats every 1 s), and
# FORGER, whose workload (tests/data/agent/forge.py, its artifact) speaks the protocol from
# inside its container: reports and a check naming LEGIT's event, heartbeats with huge loads
# for 5,000 made-up events and under 5,000 instance ids of its own, 200 connections held open,
# all of it again every few seconds. Checked:
#  1. every run has its own directory under agent.socket_dir, bound at /run/ocra into its
#     container only; the forger sees its own socket only;
#  2. everything the forger sent naming LEGIT, or the made-up events, was refused with an
#     error reply (its own event's heartbeats were answered); of its 200 connections the
#     daemon kept at most 4 (the per-run cap); the daemon logged the refusals;
#  3. LEGIT is not scaled by the forged loads; its own load (6, written by the test) is
#     counted: 3 replicas, logged with load=6; its new replicas' agents report (started)
#     while the forger holds its connections;
#  4. the daemon SIGKILLed and restarted: the runs' sockets come back in the same directories
#     (the containers' bind mounts), and the agents of replica 1 and replica 0 report their
#     completion to the new daemon;
#  5. when a run ends its socket and directory go: after both events completed, the socket
#     directory is empty.
# Exits 77 (skip) with the reason when docker, the registry or the EVM tools cannot run here.
# Stops everything it started, by PID.
set -u
ocra=${1:?usage: it_daemon_agent.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
agent=${2:?usage: it_daemon_agent.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
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

pipeline_test_begin it_daemon_agent ocra-agent
api_port=$(registry_free_port)
pipeline_config "$tmp/ocra.yaml" "$contract" "$registry/ocra/agent" "$agent" \
    "$api_port" "daemon:
  workers: 3
  retry_base_ms: 500
  retry_max_ms: 5000
  poll_ms: 200
  lease_ms: 3000
autoscale:
  target: 2
  tolerance_percent: 0
  up_cooldown_s: 0
  down_cooldown_s: 600
  interval_s: 1"
# heartbeats every second; host networking (LEGIT serves a port: no bridge here); a node of 8
# CPUs (each run asks for one)
pipeline_config_serve "$tmp/ocra.yaml" || { fail config "could not edit the configuration"; finish; }
ok services
socks=$tmp/agent

"$ocra" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
daemon_pid=$!

event_of() { pipeline_event_of "$ocra" "$tmp/ocra.yaml" "$1"; }
pipe() { pipeline_get "$ocra" "$tmp/ocra.yaml" "$1" "$2"; }
# wait_pipe ID EXPR: until EXPR is True (bounded at 15 minutes: a build; not a timing check)
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
# publish SPEC: the journaled event id of the published spec
publish() {
    local tx id i
    tx=$("$ocra" -c "$tmp/ocra.yaml" publish --chain evm --key-file "$tmp/keys/publisher.key" \
        "$1" 2>"$tmp/publish.err") || { echo "  publish: $(tail -3 "$tmp/publish.err")" >&2; return 1; }
    for i in $(seq 1 300); do
        id=$(event_of "$tx")
        [ -n "$id" ] && { echo "$id"; return 0; }
        kill -0 "$daemon_pid" 2>/dev/null || return 1
        sleep 1
    done
    return 1
}
short_of() { printf '%s' "$1" | sha256sum | cut -c1-12; }
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
gone() { ! docker inspect "$1" >/dev/null 2>&1; }
containers_of() { docker ps -aq --filter "label=io.ocra.event-id=$1" | wc -l; }
# wait_for DESC SECONDS CMD...: bounded (a build or a flood under ASan), not a timing check
wait_for() {
    local desc=$1 n=$2 _
    shift 2
    for _ in $(seq 1 "$n"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 1
    done
    echo "  gave up waiting: $desc" >&2
    return 1
}

# --- LEGIT: replica 0 running -----------------------------------------------------------------
port=18500
cat >"$tmp/legit.json" <<JSON
{
  "name": "legit-model",
  "modelVersion": "1.0.0",
  "baseImage": "$OCRA_BASE_IMAGE",
  "toolsAndLibraries": {"ocra-smoke": "1.0.0"},
  "workload": {
    "type": "inference",
    "gpus": 0,
    "replicas": {"min": 1, "max": 3},
    "port": $port,
    "command": ["sh", "-c", "while [ ! -e /tmp/ocra-stop ]; do sleep 0.2; done"]
  }
}
JSON
legit=$(publish "$tmp/legit.json") || { fail legit_journaled "the event was never journaled"; finish; }
lc=ocra-$(short_of "$legit")
wait_pipe "$legit" 'p.get("status") == "running" and p.get("stage") == "complete"' ||
    { fail legit_running "never reached the running phase: $(pipe "$legit" 'p')"; finish; }
wait_until "$lc running" running "$lc" && ok legit_running || fail legit_running "$lc is not running"

# --- FORGER: its workload forges from inside its container ------------------------------------
mkdir -p "$tmp/art/f"
cp "$here/data/agent/forge.py" "$tmp/art/f/forge.py"
sha=$(sha256sum "$tmp/art/f/forge.py" | cut -d' ' -f1)
size=$(stat -c %s "$tmp/art/f/forge.py")
python3 - "$tmp/forger.json" "$OCRA_BASE_IMAGE" "$ARTIFACTS_PORT" "$sha" "$size" "$legit" <<'PY'
import json, sys
out, base, port, sha, size, legit = sys.argv[1:]
json.dump({"name": "forger-model", "modelVersion": "1.0.0", "baseImage": base,
           "toolsAndLibraries": {"ocra-smoke": "1.0.0"},
           "artifact": {"uri": "http://127.0.0.1:%s/f/forge.py" % port, "sha256": sha,
                        "size": int(size)},
           "workload": {"gpus": 0, "command": ["sh", "-c",
                        'exec python3 "$OCRA_MODEL_DIR/forge.py" "$0"', legit]}},
          open(out, "w"))
PY
forger=$(publish "$tmp/forger.json") || { fail forger_journaled "the event was never journaled"; finish; }
fc=ocra-$(short_of "$forger")
wait_pipe "$forger" 'p.get("status") == "running" and p.get("stage") == "complete"' ||
    { fail forger_running "never reached the running phase: $(pipe "$forger" 'p')"; finish; }
flog() { docker logs "$fc" >"$tmp/forger.out" 2>&1; grep -qF -- "$1" "$tmp/forger.out"; }
wait_for "the forger's first round" 600 flog "FORGER READY" && ok forger_ready ||
    { fail forger_ready "$(tail -c 600 "$tmp/forger.out")"; finish; }

# --- 1. one directory per run, bound into its own container only -----------------------------
mount_of() { docker inspect -f '{{range .Mounts}}{{if eq .Destination "/run/ocra"}}{{.Source}}{{end}}{{end}}' "$1" 2>/dev/null; }
[ "$(mount_of "$lc")" = "$socks/$lc" ] && [ -S "$socks/$lc/agent.sock" ] && ok legit_own_socket_dir ||
    fail legit_own_socket_dir "/run/ocra of $lc is '$(mount_of "$lc")'; $(ls -la "$socks" 2>&1 | tr '\n' ';')"
[ "$(mount_of "$fc")" = "$socks/$fc" ] && [ -S "$socks/$fc/agent.sock" ] && ok forger_own_socket_dir ||
    fail forger_own_socket_dir "/run/ocra of $fc is '$(mount_of "$fc")'"
has forger_sees_its_socket_only "$tmp/forger.out" "sees: agent.sock"

# --- 2. what is not its own is refused ---------------------------------------------------------
refusal='{"v":1,"ok":false,"error":"this socket speaks for its own run'"'"'s event only"}'
for kind in heartbeat completed started check; do
    has "forged_${kind}_refused" "$tmp/forger.out" "forged $kind -> $refusal"
done
has flood_of_made_up_events_refused "$tmp/forger.out" "flood other events: 0 of 5000 accepted"
has flood_of_own_event_answered "$tmp/forger.out" "flood own event: 5000 of 5000 accepted"
held=$(sed -n 's/^held \([0-9]*\) of 200$/\1/p' "$tmp/forger.out" | head -1)
[ -n "$held" ] && [ "$held" -le 4 ] && ok connections_capped_per_run ||
    fail connections_capped_per_run "the forger held '${held}' of 200 connections"
grep -qE "agent socket run=$fc event=$forger replica=0: refused a (check|started|completed|heartbeat) naming event \"evm:" "$tmp/daemon.log" &&
    ok refusal_logged || fail refusal_logged "no refusal of $fc in the log"
grep -qF "agent socket run=$fc event=$forger replica=0: connection refused: the run has its cap" "$tmp/daemon.log" &&
    ok connection_refusal_logged || fail connection_refusal_logged "no connection refusal of $fc in the log"

# --- 3. LEGIT: not moved by the forgery, counted by its own load --------------------------------
# two more rounds of forged loads (each fresh for 3 s; the loop looks every second)
wait_for "the forger's round 2" 300 flog "round 2:" || fail forger_rounds "$(tail -c 600 "$tmp/forger.out")"
if grep -q "autoscale event=$legit load=" "$tmp/daemon.log" || [ "$(containers_of "$legit")" -ne 1 ]; then
    fail legit_not_scaled_by_forged_loads "$(grep "autoscale event=$legit" "$tmp/daemon.log" | head -3)"
else
    ok legit_not_scaled_by_forged_loads
fi
docker exec "$lc" sh -c 'echo 6 > /tmp/ocra-load' || fail load_written "docker exec into $lc failed"
both_running() { running "$lc-r1" && running "$lc-r2"; }
wait_for "$lc-r1 and -r2 running" 120 both_running && ok legit_scaled_up_by_its_own_load ||
    fail legit_scaled_up_by_its_own_load "$(docker ps -a --format '{{.Names}} {{.Status}}' | tr '\n' ';')"
wait_until "the scale-up logged" grep -q "autoscale event=$legit load=6 replicas 1->3" "$tmp/daemon.log" &&
    ok legit_load_counted_as_6 || fail legit_load_counted_as_6 "$(grep "autoscale event=$legit" "$tmp/daemon.log" | head -3)"
for n in 1 2; do
    wait_until "replica $n started report" grep -qF "agent event=$legit replica=$n started" "$tmp/daemon.log" &&
        ok "legit_r${n}_reports_beside_the_forger" ||
        fail "legit_r${n}_reports_beside_the_forger" "no 'agent event=... replica=$n started' in the log"
    [ "$(mount_of "$lc-r$n")" = "$socks/$lc-r$n" ] && ok "legit_r${n}_own_socket_dir" ||
        fail "legit_r${n}_own_socket_dir" "/run/ocra of $lc-r$n is '$(mount_of "$lc-r$n")'"
done
flog "round" && [ -z "$(sed -n 's/^round [0-9]*: held \([0-9]*\) of 200.*/\1/p' "$tmp/forger.out" | awk '$1 > 4')" ] &&
    ok connections_capped_every_round || fail connections_capped_every_round "$(grep '^round' "$tmp/forger.out" | tail -3)"

# --- 4. a restart: the sockets come back in the same directories -------------------------------
ino0=$(stat -c %i "$socks/$lc")
ino1=$(stat -c %i "$socks/$lc-r1")
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
mark=$(($(wc -l <"$tmp/daemon.log") + 1))
"$ocra" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
daemon_pid=$!
since() { tail -n "+$mark" "$tmp/daemon.log"; }
served_again() { # the daemon's own socket again (a stale one answers nothing)
    [ -S "$socks/$1/agent.sock" ] && python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$socks/$1/agent.sock"
}
wait_for "replica 1's socket served again" 120 served_again "$lc-r1" &&
    wait_for "replica 0's socket served again" 120 served_again "$lc" && ok sockets_served_after_restart ||
    fail sockets_served_after_restart "$(ls -la "$socks" "$socks/$lc" 2>&1 | tr '\n' ';')"
[ "$(stat -c %i "$socks/$lc")" = "$ino0" ] && [ "$(stat -c %i "$socks/$lc-r1")" = "$ino1" ] &&
    ok same_directories_after_restart || fail same_directories_after_restart "the directories were made again"
docker exec "$lc-r1" touch /tmp/ocra-stop || fail r1_stop_written "docker exec into $lc-r1 failed"
r1_completed() { since | grep -qF "agent event=$legit replica=1 completed exit=0"; }
wait_for "replica 1's completed report" 120 r1_completed && ok r1_reports_to_the_new_daemon ||
    fail r1_reports_to_the_new_daemon "no completed report of replica 1 after the restart"

# --- 5. the ends: each run's socket and directory go -------------------------------------------
docker exec "$lc" touch /tmp/ocra-stop || fail legit_stop_written "docker exec into $lc failed"
r0_completed() { since | grep -qF "agent event=$legit replica=0 completed exit=0"; }
wait_for "replica 0's completed report" 120 r0_completed && ok r0_reports_to_the_new_daemon ||
    fail r0_reports_to_the_new_daemon "no completed report of replica 0 after the restart"
wait_pipe "$legit" 'p.get("status") == "reported" and p.get("state") == "done"' &&
    [ "$(pipe "$legit" 'p.get("outcome")')" = completed ] && ok legit_completed ||
    fail legit_completed "$(pipe "$legit" 'p')"
legit_dirs_gone() { ! ls -d "$socks/$lc"* >/dev/null 2>&1; }
wait_for "LEGIT's directories removed" 60 legit_dirs_gone && ok legit_sockets_removed_at_its_end ||
    fail legit_sockets_removed_at_its_end "$(ls -la "$socks" 2>&1 | tr '\n' ';')"
[ -S "$socks/$fc/agent.sock" ] && ok forger_socket_kept_while_it_runs ||
    fail forger_socket_kept_while_it_runs "$(ls -la "$socks" 2>&1 | tr '\n' ';')"
docker exec "$fc" touch /tmp/ocra-stop || fail forger_stop_written "docker exec into $fc failed"
wait_pipe "$forger" 'p.get("status") == "reported" and p.get("state") == "done"' &&
    [ "$(pipe "$forger" 'p.get("outcome")')" = completed ] && ok forger_completed ||
    fail forger_completed "$(pipe "$forger" 'p')"
[ -z "$(ls -A "$socks" 2>&1)" ] && ok socket_dir_empty_at_the_end ||
    fail socket_dir_empty_at_the_end "$(ls -la "$socks" 2>&1 | tr '\n' ';')"
kill -0 "$daemon_pid" 2>/dev/null && ok daemon_alive || fail daemon_alive "the daemon exited"
# SIGTERM: under ASan a leak makes the exit status non-zero
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok daemon_clean_exit || fail daemon_clean_exit "exit status $rc: $(grep -m3 -E 'Sanitizer|ERROR' "$tmp/daemon.log")"
finish
