#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon_autoscale.sh OCRA OCRA_AGENT: the daemon's autoscaling loop of an inference
# workload with replicas {min: 1, max: 3} (docs/RUNNING.md, Autoscaling), against real
# services on 127.0.0.1 (the setup of it_pipeline.sh section 1, tests/lib/pipeline.sh): a
# private dockerd, a docker-registry, anvil with the ModelRegistry contract, the offline
# package index and an artifact server. autoscale: target 2, tolerance 0, up cooldown 0, down
# cooldown 2 s, every 1 s; agent heartbeats every 1 s. The workload stays up until
# /tmp/ocra-stop exists in its container. Checked:
#  1. the event reaches the running phase with replica 0 only (ocra-<short id>);
#  2. load 6 written to replica 0's load file (docker exec) -> 3 replicas: ocra-<short id>-r1
#     and -r2 running, by the same image digest, with the sandbox (ReadonlyRootfs, CapDrop
#     ALL, the agent socket mounted), OCRA_PORT = port + N, label io.ocra.replica; held
#     allocations for replicas 0, 1, 2 in the journal; /metrics ocra_replicas 3;
#  2b. the daemon SIGKILLed and replica 2's container removed meanwhile -> after a restart the
#     loop takes the held allocations as 3 replicas, adopts r1 (same container) and starts r2
#     again, no container duplicated; the runs row of the lost r2 ends failed;
#  2c. replica 1's workload exits on its own -> replaced on its allocation (a new container,
#     the old runs row ended succeeded, the log says why);
#  3. load 0 -> back to min 1 after the cooldown: r1 and r2 gone, their allocations released;
#  4. replica 0's workload exits -> the event completes and is reported, no replica container
#     remains (one planted with the event's labels and no allocation included: found by its
#     labels), no allocation is held.
# Exits 77 (skip) with the reason when docker, the registry or the EVM tools cannot run here.
# Stops everything it started, by PID.
set -u
ocra=${1:?usage: it_daemon_autoscale.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
agent=${2:?usage: it_daemon_autoscale.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
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

pipeline_test_begin it_daemon_autoscale ocra-scale
api_port=$(registry_free_port)
pipeline_config "$tmp/ocra.yaml" "$contract" "$registry/ocra/scale" "$agent" "$api_port" \
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
  interval_s: 1"
# In the sections pipeline_config writes: heartbeats every second; host networking (the only
# way to serve a port: no bridge); a node of 8 CPUs (each replica asks for one; the machine
# may have fewer, and the docker runner runs them here whatever the inventory says).
pipeline_config_serve "$tmp/ocra.yaml" || { fail config "could not edit the configuration"; finish; }
ok services

# --- the event ------------------------------------------------------------------------------
"$ocra" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
daemon_pid=$!
mkdir -p "$tmp/art/w"
head -c 100000 /dev/urandom >"$tmp/art/w/model.safetensors"
sha=$(sha256sum "$tmp/art/w/model.safetensors" | cut -d' ' -f1)
port=18400
cat >"$tmp/spec.json" <<JSON
{
  "name": "scale-model",
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
    "command": ["sh", "-c", "echo serving on \$OCRA_PORT; while [ ! -e /tmp/ocra-stop ]; do sleep 0.2; done"]
  }
}
JSON
tx=$("$ocra" -c "$tmp/ocra.yaml" publish --chain evm --key-file "$tmp/keys/publisher.key" \
    "$tmp/spec.json" 2>"$tmp/publish.err") ||
    { fail publish "ocra publish failed: $(tail -3 "$tmp/publish.err")"; finish; }

event_of() { pipeline_event_of "$ocra" "$tmp/ocra.yaml" "$1"; }
# pipe ID EXPR: a Python expression over p (the event's pipeline object)
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
id=
for i in $(seq 1 300); do
    id=$(event_of "$tx")
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
held() { # the held allocations' replicas, ascending, space-separated
    sqlite3 "$tmp/journal.db" "SELECT group_concat(replica, ' ') FROM (SELECT replica FROM
        allocations WHERE event_id = '$id' AND state = 'held' ORDER BY replica);"
}
held_is() { [ "$(held)" = "$1" ]; }
both_running() { running "$c0-r1" && running "$c0-r2"; }
both_gone() { gone "$c0-r1" && gone "$c0-r2"; }
replica_containers() { docker ps -aq --filter "label=io.ocra.event-id=$id" | wc -l; }
metric() { # the value of ocra_replicas for the event
    curl -s -H "Authorization: Bearer $(cat "$tmp/keys/api.token")" \
        "http://127.0.0.1:$api_port/metrics" |
        awk -v want="ocra_replicas{event=\"$id\"}" '$1 == want { print $2 }'
}

# --- 1. replica 0 only ----------------------------------------------------------------------
wait_until "container $c0 running" running "$c0" && ok replica0_running ||
    fail replica0_running "$c0 is not running"
[ "$(replica_containers)" -eq 1 ] && ok one_container_at_min ||
    fail one_container_at_min "$(replica_containers) containers"
held_is 0 && ok replica0_allocation_held || fail replica0_allocation_held "held: $(held)"
image0=$(docker inspect -f '{{.Image}}' "$c0")

# --- 2. load 6 -> 3 replicas -----------------------------------------------------------------
docker exec "$c0" sh -c 'echo 6 > /tmp/ocra-load' ||
    fail load_written "docker exec into $c0 failed"
if wait_until "$c0-r1 and -r2 running" both_running; then
    ok scaled_up_to_3
else
    fail scaled_up_to_3 "containers: $(docker ps -a --format '{{.Names}} {{.Status}}' | tr '\n' ';')"
fi
# the loop logs once its containers started: the line may follow their running state
wait_until "the scale-up logged" grep -q "autoscale event=$id load=6 replicas 1->3" "$tmp/daemon.log" && ok scale_up_logged ||
    fail scale_up_logged "no 'autoscale event=... load=6 replicas 1->3' in the log"
held_is "0 1 2" && ok replicas_1_2_allocations_held || fail replicas_1_2_allocations_held "held: $(held)"
for n in 1 2; do
    c=$c0-r$n
    [ "$(docker inspect -f '{{.Image}}' "$c" 2>/dev/null)" = "$image0" ] && ok "r${n}_same_image" ||
        fail "r${n}_same_image" "$(docker inspect -f '{{.Image}} {{.Config.Image}}' "$c" 2>&1) vs $image0"
    [ "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}}' "$c" 2>/dev/null)" = "true [ALL]" ] &&
        ok "r${n}_sandboxed" || fail "r${n}_sandboxed" "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}}' "$c" 2>&1)"
    [ "$(docker inspect -f '{{index .Config.Labels "io.ocra.replica"}}' "$c" 2>/dev/null)" = "$n" ] &&
        ok "r${n}_label" || fail "r${n}_label" "io.ocra.replica of $c"
    docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$c" 2>/dev/null | grep -qx "OCRA_PORT=$((port + n))" &&
        ok "r${n}_port_$((port + n))" || fail "r${n}_port_$((port + n))" "env: $(docker inspect -f '{{.Config.Env}}' "$c" 2>&1)"
    docker inspect -f '{{range .Mounts}}{{println .Destination}}{{end}}' "$c" 2>/dev/null | grep -qx /run/ocra &&
        ok "r${n}_agent_socket" || fail "r${n}_agent_socket" "no /run/ocra mount"
done
docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$c0" | grep -qx "OCRA_PORT=$port" &&
    ok r0_port || fail r0_port "env of $c0: $(docker inspect -f '{{.Config.Env}}' "$c0")"
[ "$(metric)" = 3 ] && ok metric_replicas_3 || fail metric_replicas_3 "ocra_replicas: '$(metric)'"
# the journal's runs: one row per container, with its node and image
runs() { sqlite3 "$tmp/journal.db" "SELECT count(*) FROM runs WHERE event_id = '$id' AND $1"; }
[ "$(runs "state = 'running' AND node IS NOT NULL AND image_digest IN (SELECT digest FROM images)")" -eq 3 ] &&
    ok runs_3_running || fail runs_3_running "$(sqlite3 "$tmp/journal.db" "SELECT id, state, node, image_digest FROM runs")"

# --- 2b. crash: the daemon SIGKILLed, replica 2's container lost meanwhile, a restart -----------
id1=$(docker inspect -f '{{.Id}}' "$c0-r1")
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
docker rm -f "$c0-r2" >/dev/null
"$ocra" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
daemon_pid=$!
wait_until "the restarted loop found 3 replicas" grep -q "autoscale event=$id replicas=3 " "$tmp/daemon.log" &&
    ok restart_rebuilt_from_allocations || fail restart_rebuilt_from_allocations "no 'replicas=3' after the restart"
wait_until "$c0-r2 running again" running "$c0-r2" && ok restart_lost_replica_started ||
    fail restart_lost_replica_started "$c0-r2 not running"
[ "$(docker inspect -f '{{.Id}}' "$c0-r1" 2>/dev/null)" = "$id1" ] && ok restart_replica_adopted ||
    fail restart_replica_adopted "$c0-r1 is not the container it was"
[ "$(replica_containers)" -eq 3 ] && ok restart_no_duplicate ||
    fail restart_no_duplicate "$(replica_containers) containers of the event"
held_is "0 1 2" && ok restart_allocations_kept || fail restart_allocations_kept "held: $(held)"
[ "$(runs "state = 'failed' AND result LIKE '%container was gone%'")" -eq 1 ] &&
    [ "$(runs "state = 'running'")" -eq 3 ] && ok runs_lost_replica_failed_new_one_running ||
    fail runs_lost_replica_failed_new_one_running "$(sqlite3 "$tmp/journal.db" "SELECT id, state, result FROM runs")"

# --- 2c. replica 1's workload exits on its own: the loop replaces it on its allocation -------
id1=$(docker inspect -f '{{.Id}}' "$c0-r1")
docker exec "$c0-r1" touch /tmp/ocra-stop || fail r1_stop_written "docker exec into $c0-r1 failed"
replaced() { running "$c0-r1" && [ "$(docker inspect -f '{{.Id}}' "$c0-r1" 2>/dev/null)" != "$id1" ]; }
wait_until "$c0-r1 replaced" replaced && ok exited_replica_replaced ||
    fail exited_replica_replaced "$(docker ps -a --format '{{.Names}} {{.ID}} {{.Status}}' | tr '\n' ';')"
wait_until "the replacement logged" grep -q "autoscale event=$id replica=1: the workload exited on its own with status 0: replaced" "$tmp/daemon.log" &&
    ok replacement_logged || fail replacement_logged "no 'replica=1: ... replaced' in the log"
[ "$(sqlite3 "$tmp/journal.db" "SELECT state FROM runs WHERE id = '$id1'")" = succeeded ] &&
    [ "$(runs "state = 'running'")" -eq 3 ] && ok runs_exited_replica_ended_new_one_running ||
    fail runs_exited_replica_ended_new_one_running "$(sqlite3 "$tmp/journal.db" "SELECT id, state, result FROM runs")"
held_is "0 1 2" && ok replaced_on_its_allocation || fail replaced_on_its_allocation "held: $(held)"

# --- 3. load 0 -> min 1 after the cooldown -----------------------------------------------------
for c in "$c0" "$c0-r1" "$c0-r2"; do
    docker exec "$c" sh -c 'echo 0 > /tmp/ocra-load' 2>/dev/null
done
if wait_until "$c0-r1 and -r2 removed" both_gone; then
    ok scaled_down_to_1
else
    fail scaled_down_to_1 "containers: $(docker ps -a --format '{{.Names}} {{.Status}}' | tr '\n' ';')"
fi
wait_until "replicas 1, 2 released" held_is 0 && ok replicas_1_2_released || fail replicas_1_2_released "held: $(held)"
[ "$(sqlite3 "$tmp/journal.db" "SELECT count(*) FROM allocations WHERE event_id = '$id' AND replica IN (1, 2) AND state = 'released'")" -eq 2 ] &&
    ok released_rows_kept || fail released_rows_kept "released rows of replicas 1, 2"
wait_until "the scale-down logged" grep -q "autoscale event=$id load=0 replicas 3->1" "$tmp/daemon.log" && ok scale_down_logged ||
    fail scale_down_logged "no 'replicas 3->1' in the log"
running "$c0" && ok replica0_still_running || fail replica0_still_running "$c0 stopped"
[ "$(runs "state = 'stopped'")" -eq 2 ] && [ "$(runs "state = 'running'")" -eq 1 ] &&
    ok runs_scaled_down_stopped || fail runs_scaled_down_stopped "$(sqlite3 "$tmp/journal.db" "SELECT id, state, result FROM runs")"

# --- 4. replica 0 ends -> the event completes, nothing remains ---------------------------------
docker exec "$c0" sh -c 'echo 6 > /tmp/ocra-load' # scaled up again, then ended with the event
wait_until "$c0-r1 running again" running "$c0-r1" || true
# a replica container no allocation names (one a crash left between its container and its
# allocation): not under the replica's name, so only its labels find it at the event's end
docker run -d --network none --name "$c0-left" --label "io.ocra.event-id=$id" \
    --label io.ocra.runner=docker --label io.ocra.replica=2 \
    "$(docker inspect -f '{{.Image}}' "$c0")" sleep 300 >/dev/null ||
    fail plant_replica "docker run failed"
docker exec "$c0" touch /tmp/ocra-stop || fail stop_written "docker exec into $c0 failed"
if wait_pipe "$id" 'p.get("status") == "reported" and p.get("state") == "done"'; then
    ok event_reported
else
    fail event_reported "$(pipe "$id" 'p')"
fi
[ "$(pipe "$id" 'p.get("outcome")')" = completed ] && ok event_completed ||
    fail event_completed "outcome $(pipe "$id" 'p.get("outcome")')"
gone "$c0-r1" && gone "$c0-r2" && gone "$c0-left" && ok no_replica_remains ||
    fail no_replica_remains "$(docker ps -a --format '{{.Names}} {{.Status}}' | tr '\n' ';')"
[ "$(replica_containers)" -le 1 ] && ok only_replica0_left ||
    fail only_replica0_left "$(replica_containers) containers of the event"
has stray_replica_logged "$tmp/daemon.log" "autoscale event=$id: removed stray replica container $c0-left"
held_is "" && ok no_allocation_held || fail no_allocation_held "held: $(held)"
# an ended event's ocra_replicas series goes (the family holds live events only, not every
# event there ever was)
[ -z "$(metric)" ] && ok metric_replicas_gone_with_the_event || fail metric_replicas_gone_with_the_event "ocra_replicas: '$(metric)'"
[ "$(runs "state = 'running'")" -eq 0 ] &&
    [ "$(runs "state = 'succeeded' AND id = '$(docker inspect -f '{{.Id}}' "$c0" 2>/dev/null)'")" -eq 1 ] &&
    ok runs_all_ended_replica0_succeeded || fail runs_all_ended_replica0_succeeded "$(sqlite3 "$tmp/journal.db" "SELECT id, state, result FROM runs")"
kill -0 "$daemon_pid" 2>/dev/null && ok daemon_alive || fail daemon_alive "the daemon exited"
# SIGTERM: the loop stops with the workers; under ASan a leak makes the exit status non-zero
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok daemon_clean_exit || fail daemon_clean_exit "exit status $rc: $(grep -m3 -E 'Sanitizer|ERROR' "$tmp/daemon.log")"
finish
