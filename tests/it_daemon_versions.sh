#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon_versions.sh OCRA OCRA_AGENT: the lifecycle follows the chain (docs/RUNNING.md,
# Supervision and time limits: Newer versions and removals), against real services on
# 127.0.0.1 (tests/lib/pipeline.sh: a private dockerd, a docker-registry, anvil with the
# ModelRegistry contract, the offline package index and an artifact server). One daemon, one
# node of 2 CPUs: a CPU-only inference workload asks for one, a training one for two.
#  1. A removal: model rm runs (inference); a trusted publish of `null` for rm stops it: its
#     event ends superseded, the reason says the model was removed on-chain.
#  2. Rollback with room for both: rb 1.0.0 runs; 1.0.1 fails (its workload exits 3): 1.0.0
#     is not stopped and keeps running, the log says why; then it ends by itself, completed.
#  3. Training, run.newer_version.training replace: tr 1.0.0 (both CPUs) runs; 1.0.1 queues
#     for its room: 1.0.0 is stopped gracefully (SIGTERM: its trap runs and it exits 0, no
#     SIGKILL), superseded; 1.0.1 starts in its room. Then keep (SIGHUP): 1.0.2 queues, 1.0.1
#     runs on to its own end (completed, not superseded), then 1.0.2 starts.
#  4. One slot (a blocker holds one CPU): one 1.0.0 runs in the last slot; 1.0.1 finds no room
#     beside it (queued): it takes 1.0.0's room (1.0.0 stopped, superseded, "took its room";
#     while 1.0.0 stops, the log and `ocra queue` say what 1.0.1 waits for), then runs. Without this, 1.0.1 queued
#     forever (the deadlock of a crash-loop run).
#  5. One slot, 1.0.2 (training: both CPUs) queues and cannot fit in 1.0.1's room: 1.0.1 keeps
#     serving (the log says why); 1.0.3 published: 1.0.2 is superseded while queued and never
#     runs (no run stage, no container); 1.0.3 takes 1.0.1's room and runs.
#  6. One slot, the newer version fails: 1.0.4 (exits 3) takes 1.0.3's room, fails; nothing
#     serves the model (the documented gap); the log said why 1.0.3 was stopped.
# Exits 77 (skip) with the reason when docker, the registry or the EVM tools cannot run here.
# Stops everything it started, by PID.
set -u
ocra=${1:?usage: it_daemon_versions.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
agent=${2:?usage: it_daemon_versions.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
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

pipeline_test_begin it_daemon_versions ocra-ver
api_port=$(registry_free_port)
# config TRAINING: the daemon's configuration (run.newer_version.training TRAINING), one node
# of 2 CPUs, a stop's grace of 20 s (a graceful stop is seen to take less)
config() {
    pipeline_config "$tmp/ocra.yaml" "$contract" "$registry/ocra/ver" "$agent" "$api_port" \
        "daemon:
  workers: 3
  retry_base_ms: 500
  retry_max_ms: 5000
  poll_ms: 200
  lease_ms: 5000
sched:
  queue:
    interval_ms: 2000"
    python3 - "$tmp/ocra.yaml" "$1" <<'PY'
import re, sys
p, training = sys.argv[1:]
s = open(p).read()
s = re.sub(r"(?m)^(  docker_host: .*)$",
           r"\1\n  stop_grace_s: 20\n  newer_version:\n    training: " + training, s, count=1)
s = re.sub(r"(?m)^  local: true.*$",
           "  local: false\n  nodes:\n    - name: v-node\n      cpus: 2\n      memory_mib: 16384",
           s, count=1)
open(p, "w").write(s)
PY
}
config replace || { fail config "could not write the configuration"; finish; }
ok services

mkdir -p "$tmp/art/w"
head -c 50000 /dev/urandom >"$tmp/art/w/model.safetensors"
sha=$(sha256sum "$tmp/art/w/model.safetensors" | cut -d' ' -f1)
wait_cmd="trap 'echo got SIGTERM; exit 0' TERM; while [ ! -e /tmp/ocra-stop ]; do sleep 0.2; done; echo ended by itself"
# spec NAME VERSION TYPE SHELL_COMMAND: a CPU-only spec on the local base image
spec() {
    python3 - "$1" "$2" "$3" "$4" "$OCRA_BASE_IMAGE" "$ARTIFACTS_PORT" "$sha" <<'PY'
import json, sys
name, version, typ, cmd, base, port, sha = sys.argv[1:]
print(json.dumps({"name": name, "modelVersion": version, "baseImage": base,
                  "toolsAndLibraries": {"ocra-smoke": "1.0.0"},
                  "artifact": {"uri": "http://127.0.0.1:%s/w/model.safetensors" % port,
                               "sha256": sha, "size": 50000},
                  "workload": {"type": typ, "gpus": 0, "command": ["sh", "-c", cmd]}}))
PY
}
nonce=$("$CAST" nonce --block pending --rpc-url "$EVM_RPC_URL" "$EVM_ADDR0")
# publish_raw NAME SPEC_TEXT: sent without waiting for the receipt (nonces counted here)
publish_raw() {
    "$CAST" send --async --nonce "$nonce" --rpc-url "$EVM_RPC_URL" --private-key "$EVM_KEY0" \
        "$contract" "publish(string,string)" "$1" "$2" >/dev/null || return 1
    nonce=$((nonce + 1))
}
# publish NAME VERSION TYPE SHELL_COMMAND
publish() { publish_raw "$1" "$(spec "$@")"; }
q() { sqlite3 "$tmp/journal.db" "$1" 2>/dev/null; }
# vid NAME VERSION: the event id of model NAME's VERSION ("null": its removal)
vid() {
    if [ "$2" = null ]; then
        q "SELECT id FROM events WHERE path LIKE '%/$1' AND spec = 'null' ORDER BY seq LIMIT 1"
    else
        q "SELECT id FROM events WHERE path LIKE '%/$1' AND json_extract(spec, '\$.modelVersion') = '$2' ORDER BY seq LIMIT 1"
    fi
}
# row NAME VERSION: "status outcome state" of its pipeline row
row() { q "SELECT status || ' ' || coalesce(outcome, '-') || ' ' || state FROM pipeline WHERE event_id = '$(vid "$1" "$2")'"; }
is_row() { [ "$(row "$1" "$2")" = "$3" ]; }
container() { printf 'ocra-%s' "$(printf '%s' "$(vid "$1" "$2")" | sha256sum | cut -c1-12)"; }
running() {
    [ -n "$(vid "$1" "$2")" ] && [ "$(docker inspect -f '{{.State.Running}}' "$(container "$1" "$2")" 2>/dev/null)" = true ]
}
supervised() { is_row "$1" "$2" "running - supervised" && running "$1" "$2"; }
queued() { [ "$(q "SELECT state FROM pipeline WHERE event_id = '$(vid "$1" "$2")'")" = queued ]; }
stop_workload() { docker exec "$(container "$1" "$2")" touch /tmp/ocra-stop; }
# complete_out NAME VERSION EXPR: a Python expression over o, the output of its last done
# complete attempt
complete_out() {
    python3 - "$tmp/journal.db" "$(vid "$1" "$2")" "$3" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
r = db.execute("SELECT output FROM stages WHERE event_id = ? AND stage = 'complete'"
               " AND outcome = 'done' ORDER BY id DESC LIMIT 1", (sys.argv[2],)).fetchone()
o = json.loads(r[0]) if r and r[0] else {}
print(eval(sys.argv[3]))
PY
}
daemon_alive() { kill -0 "$daemon_pid" 2>/dev/null; }
# wait_for DESC CMD...: bounded (10 minutes: builds), fails at once when the daemon exited
wait_for() {
    local i
    for i in $(seq 1 1200); do
        "${@:2}" && return 0
        daemon_alive || { echo "  the daemon exited" >&2; return 1; }
        sleep 0.5
    done
    echo "  gave up waiting for $1" >&2
    return 1
}
log_has() { grep -q -- "$1" "$tmp/daemon.log"; }

"$ocra" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
daemon_pid=$!

# --- 1. a removal stops the running workload ------------------------------------------------
publish rm 1.0.0 inference "$wait_cmd"
wait_for "rm running" supervised rm 1.0.0 && ok removal_model_runs ||
    { fail removal_model_runs "$(row rm 1.0.0)"; finish; }
publish_raw rm null
if wait_for "rm stopped" is_row rm 1.0.0 "reported superseded done"; then
    ok removal_stopped_workload
else
    fail removal_stopped_workload "$(row rm 1.0.0)"
fi
running rm 1.0.0 && fail removal_container_gone "still running" || ok removal_container_gone
[ "$(complete_out rm 1.0.0 '"removed on-chain" in o.get("reason", "") and o.get("verdict") == "superseded"')" = True ] &&
    ok removal_reason_says_removed || fail removal_reason_says_removed "$(complete_out rm 1.0.0 o)"

# --- 2. rollback: the newer version fails, the older keeps serving (room for both) ----------
publish rb 1.0.0 inference "$wait_cmd"
wait_for "rb 1.0.0 running" supervised rb 1.0.0 || { fail rollback_old_runs "$(row rb 1.0.0)"; finish; }
publish rb 1.0.1 inference "echo broken; exit 3"
wait_for "rb 1.0.1 failed" is_row rb 1.0.1 "reported failed done" && ok rollback_newer_failed ||
    fail rollback_newer_failed "$(row rb 1.0.1)"
old_rb=$(vid rb 1.0.0)
wait_for "the log says why rb 1.0.0 keeps serving" \
    log_has "event=$old_rb .* keeps serving: its newer version .* never became healthy" &&
    ok rollback_log_says_why || fail rollback_log_says_why "no 'keeps serving' line for $old_rb"
supervised rb 1.0.0 && ok rollback_old_keeps_serving || fail rollback_old_keeps_serving "$(row rb 1.0.0)"
stop_workload rb 1.0.0
wait_for "rb 1.0.0 completed" is_row rb 1.0.0 "reported completed done" && ok rollback_old_completed ||
    fail rollback_old_completed "$(row rb 1.0.0)"

# --- 3. training: replace, then keep --------------------------------------------------------
publish tr 1.0.0 training "$wait_cmd"
wait_for "tr 1.0.0 running" supervised tr 1.0.0 || { fail training_runs "$(row tr 1.0.0)"; finish; }
publish tr 1.0.1 training "$wait_cmd"
if wait_for "tr 1.0.0 replaced" is_row tr 1.0.0 "reported superseded done"; then
    ok training_replaced
else
    fail training_replaced "$(row tr 1.0.0)"
fi
[ "$(complete_out tr 1.0.0 'o.get("exitCode") == 0 and "got SIGTERM" in (o.get("logTail") or "")')" = True ] &&
    ok training_stopped_gracefully || fail training_stopped_gracefully "$(complete_out tr 1.0.0 o)"
wait_for "tr 1.0.1 running" supervised tr 1.0.1 && ok training_newer_runs ||
    { fail training_newer_runs "$(row tr 1.0.1)"; finish; }
config keep
reloads=$(grep -c "reload: .* loaded" "$tmp/daemon.log")
kill -HUP "$daemon_pid"
reloaded() { [ "$(grep -c "reload: .* loaded" "$tmp/daemon.log")" -gt "$reloads" ]; }
wait_for "the reload" reloaded || fail training_keep_reloaded "no 'reload: ... loaded' line"
publish tr 1.0.2 training "$wait_cmd"
wait_for "tr 1.0.2 queued" queued tr 1.0.2 || fail training_keep_newer_queued "$(row tr 1.0.2)"
old_tr=$(vid tr 1.0.1)
wait_for "keep logged" log_has "event=$old_tr: a newer version of its model is current.*keep: it runs on" &&
    ok training_keep_logged || fail training_keep_logged "no 'runs on' line for $old_tr"
supervised tr 1.0.1 && ok training_kept_running || fail training_kept_running "$(row tr 1.0.1)"
stop_workload tr 1.0.1
wait_for "tr 1.0.1 completed" is_row tr 1.0.1 "reported completed done" && ok training_kept_completed ||
    fail training_kept_completed "$(row tr 1.0.1)"
[ "$(complete_out tr 1.0.1 '"ended by itself" in (o.get("logTail") or "")')" = True ] &&
    ok training_kept_ran_to_its_end || fail training_kept_ran_to_its_end "$(complete_out tr 1.0.1 o)"
wait_for "tr 1.0.2 running" supervised tr 1.0.2 && ok training_next_runs || fail training_next_runs "$(row tr 1.0.2)"
stop_workload tr 1.0.2
wait_for "tr 1.0.2 completed" is_row tr 1.0.2 "reported completed done" ||
    fail training_next_completed "$(row tr 1.0.2)"

# --- 4. one slot: the newer inference version takes the older one's room --------------------
publish hold 1.0.0 inference "$wait_cmd"
wait_for "the blocker running" supervised hold 1.0.0 || { fail blocker_runs "$(row hold 1.0.0)"; finish; }
# 1.0.0 takes its time to stop (until the test writes /tmp/ocra-go): meanwhile `ocra queue`
# says what 1.0.1 waits for
slow_stop="trap 'echo got SIGTERM; while [ ! -e /tmp/ocra-go ]; do sleep 0.2; done; exit 0' TERM; while [ ! -e /tmp/ocra-stop ]; do sleep 0.2; done"
publish one 1.0.0 inference "$slow_stop"
wait_for "one 1.0.0 running" supervised one 1.0.0 || { fail one_runs "$(row one 1.0.0)"; finish; }
publish one 1.0.1 inference "$wait_cmd"
old_one=$(vid one 1.0.0)
if wait_for "one 1.0.0 being stopped" log_has "event=$old_one .*stopping it for its newer version, which waits in the queue for the room"; then
    ok log_says_what_it_waits_for
else
    fail log_says_what_it_waits_for "no stopping line; 1.0.1: $(row one 1.0.1) $(q "SELECT last_error FROM pipeline WHERE event_id = '$(vid one 1.0.1)'")"
fi
"$ocra" -c "$tmp/ocra.yaml" queue --json >"$tmp/queue1.json" 2>&1 &&
    python3 - "$tmp/queue1.json" "$(vid one 1.0.1)" "$old_one" <<'PY' && ok queue_says_it_takes_the_room || fail queue_says_it_takes_the_room "$(head -c 800 "$tmp/queue1.json")"
import json, sys
d = json.load(open(sys.argv[1]))
mine = [e for e in d["queued"] if e["event"] == sys.argv[2]]
assert len(mine) == 1, d
assert ("the room of its older version %s, which is stopped for it" % sys.argv[3]) in mine[0]["reason"], mine
PY
docker exec "$(container one 1.0.0)" touch /tmp/ocra-go
if wait_for "one 1.0.1 running" supervised one 1.0.1; then
    ok successor_took_the_room
else
    fail successor_took_the_room "1.0.0: $(row one 1.0.0); 1.0.1: $(row one 1.0.1); $(q "SELECT last_error FROM pipeline WHERE event_id = '$(vid one 1.0.1)'")"
fi
is_row one 1.0.0 "reported superseded done" && ok predecessor_superseded || fail predecessor_superseded "$(row one 1.0.0)"
[ "$(complete_out one 1.0.0 '"took its room" in o.get("reason", "")')" = True ] &&
    ok predecessor_reason_room || fail predecessor_reason_room "$(complete_out one 1.0.0 o)"
[ -n "$(q "SELECT 1 FROM stages WHERE event_id = '$(vid one 1.0.1)' AND outcome = 'queued'")" ] &&
    ok successor_was_queued || fail successor_was_queued "1.0.1 never queued: the test did not exercise one slot"

# --- 5. a newer version queued behind a newer one still: superseded while queued ------------
# 1.0.2 is a training version (both CPUs): stopping 1.0.1 would not make its room (the blocker
# holds one CPU), so 1.0.1 keeps serving and 1.0.2 waits in the queue; then 1.0.3 (inference)
old_one=$(vid one 1.0.1)
publish one 1.0.2 training "$wait_cmd"
wait_for "one 1.0.2 queued" queued one 1.0.2 || fail middle_queued "$(row one 1.0.2)"
wait_for "the log says 1.0.1 keeps serving" \
    log_has "event=$old_one .* keeps serving: its newer version .* waits in the queue for room that stopping this one would not make" &&
    ok log_says_no_room_to_take || fail log_says_no_room_to_take "no 'keeps serving' line for $old_one"
supervised one 1.0.1 && ok older_serves_while_newer_cannot_fit || fail older_serves_while_newer_cannot_fit "$(row one 1.0.1)"
publish one 1.0.3 inference "$wait_cmd"
if wait_for "one 1.0.3 running" supervised one 1.0.3; then
    ok newest_runs
else
    fail newest_runs "1.0.2: $(row one 1.0.2); 1.0.3: $(row one 1.0.3)"
fi
wait_for "1.0.2 reported" is_row one 1.0.2 "reported superseded done" && ok middle_superseded ||
    fail middle_superseded "$(row one 1.0.2)"
[ -z "$(q "SELECT 1 FROM stages WHERE event_id = '$(vid one 1.0.2)' AND stage = 'run'")" ] &&
    ! docker inspect "$(container one 1.0.2)" >/dev/null 2>&1 && ok middle_never_ran ||
    fail middle_never_ran "1.0.2 has a run stage or a container"
is_row one 1.0.1 "reported superseded done" && ok previous_superseded || fail previous_superseded "$(row one 1.0.1)"
"$ocra" -c "$tmp/ocra.yaml" queue --json >"$tmp/queue.json" 2>&1 &&
    python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); assert d["depth"] == 0, d' "$tmp/queue.json" &&
    ok queue_empty || fail queue_empty "$(head -c 600 "$tmp/queue.json")"

# --- 6. one slot, the newer version fails: the documented gap --------------------------------
publish one 1.0.4 inference "echo broken; exit 3"
wait_for "one 1.0.4 failed" is_row one 1.0.4 "reported failed done" && ok gap_newer_failed ||
    fail gap_newer_failed "$(row one 1.0.4)"
is_row one 1.0.3 "reported superseded done" && ok gap_older_was_stopped_for_room ||
    fail gap_older_was_stopped_for_room "$(row one 1.0.3)"
[ "$(q "SELECT count(*) FROM pipeline p JOIN events e ON e.id = p.event_id WHERE e.path LIKE '%/one' AND p.state = 'supervised'")" -eq 0 ] &&
    ok gap_nothing_serves || fail gap_nothing_serves "a version of one is still supervised"

stop_workload hold 1.0.0
wait_for "the blocker completed" is_row hold 1.0.0 "reported completed done" || fail blocker_completed "$(row hold 1.0.0)"
[ "$(q "SELECT count(*) FROM pipeline WHERE state = 'dead'")" -eq 0 ] && ok none_dead ||
    fail none_dead "$(q "SELECT event_id, last_error FROM pipeline WHERE state = 'dead'")"
daemon_alive && ok daemon_alive || fail daemon_alive "the daemon exited"
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok daemon_clean_exit || fail daemon_clean_exit "exit status $rc: $(grep -m3 -E 'Sanitizer|ERROR' "$tmp/daemon.log")"
finish
