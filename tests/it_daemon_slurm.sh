#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon_slurm.sh OCRA OCRA_AGENT [SECTIONS]: `ocra daemon` runs its workloads where the
# journal can follow them, against real services on 127.0.0.1 (tests/lib/pipeline.sh: a private
# dockerd, docker-registry, anvil with ModelRegistry, the package index, an artifact server;
# tests/lib/slurm.sh: munged, slurmctld, slurmd, slurmrestd). Each section has its own contract
# and journal. Sections (the third argument; default "slurm fail": ctest it_daemon_slurm):
#  slurm  run.runner slurm: one published event (CPU only: the test node's fake GPUs have no
#         model or memory the plan could size for) is built, pushed, signed, allocated on
#         Slurm's node, submitted through slurmrestd as the job ocra-<short id>, parked
#         (supervised) while it runs and woken by the supervisor's poll when it ends,
#         completed and reported: the report says completed, once; the journal's runs row has
#         runner slurm, the Slurm job id, Slurm's node, state succeeded, exit code 0; Slurm
#         itself knows that job COMPLETED; the workload's output is in `ocra lineage` (text and
#         --json) and in GET /api/v1/events/{id}; the job bound its run's own agent socket
#         directory, so the agent's started and completed reports reached the daemon, and the
#         directory is gone after the run.
#  fail   (after slurm) a workload that exits 3 under Slurm: runs row failed with exit code 3,
#         the event's outcome failed, reported failed once.
#  purge  (ctest it_daemon_slurm_purge; slurmctld's MinJobAge 2 s) a crash of the daemon while
#         its Slurm job runs, then the job ends and slurmctld purges it, and the journal is put
#         back to where a crash between the submit and the end of the run stage leaves it (the
#         runs row written, the stage not ended): the restarted daemon's run stage adopts the
#         job its runs row names and submits nothing (Slurm knows no second job of that
#         name), and its complete stage, finding the job gone, ends the event failed with the
#         reason (its exit status is lost), reported once; one runs row, failed.
#  drain  (ctest it_daemon_drain; the docker runner, no Slurm) a workload that runs until told:
#         SIGTERM while its event is parked (state supervised, no worker waits) -> the daemon
#         exits 0 and its container is still running when it has exited (the engine's state,
#         not a clock); the event stays supervised; a restarted daemon wakes it once, parks it
#         again and the event completes with one container, one runs row and one on-chain report; the run's
#         times (complete's startedAt/finishedAt, the runs row's durationMs) are the engine's
#         State.StartedAt/FinishedAt, not the restarted stage's clock.
#  orphan (ctest it_daemon_orphan_run; the docker runner) the chain withdraws an event while
#         its workload runs (anvil evm_revert past the confirmation depth): the supervisor
#         wakes the parked event, the report stage stops the container and releases the allocation,
#         the runs row ends stopped, the event ends orphaned and nothing is reported.
# Exits 77 with the reason when root, docker, the registry, the EVM tools or (slurm, fail)
# Slurm cannot run here. Stops everything it started, by PID.
set -u
ocra=${1:?usage: it_daemon_slurm.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT [SECTIONS]}
agent=${2:?usage: it_daemon_slurm.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT [SECTIONS]}
sections=" ${3:-slurm fail} "
want() { case $sections in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
case $ocra in /*) ;; *) ocra="$PWD/$ocra" ;; esac
case $agent in /*) ;; *) agent="$PWD/$agent" ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib/dockerd.sh"
. "$here/lib/pyindex.sh"
. "$here/lib/registry.sh"
. "$here/lib/anvil.sh"
. "$here/lib/slurm.sh"
. "$here/lib/check.sh"
. "$here/lib/build_env.sh"
. "$here/lib/pipeline.sh"

skip() {
    echo "it_daemon_slurm: skipped: $1"
    exit 77
}
t0=$SECONDS
[ "$(id -u)" -eq 0 ] || skip "not root (a private dockerd and slurmd need root)"
for t in python3 curl openssl sqlite3; do
    command -v "$t" >/dev/null 2>&1 || skip "no $t"
done
registry_or_skip
evm_tools_or_skip
if want slurm || want fail || want purge; then
    getent passwd slurm >/dev/null 2>&1 || skip "no user slurm (Debian package slurm-wlm-basic-plugins)"
fi

tmp=$(mktemp -d /tmp/ocra-dslurm.XXXXXX)
chmod 755 "$tmp" # the job user (slurm) reaches the engine's socket and the job directory
daemon_pid=
stop_daemon() { # SIGKILL
    if [ -n "$daemon_pid" ]; then
        kill -KILL "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
        daemon_pid=
    fi
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    stop_daemon
    slurm_stop
    artifacts_stop
    registry_stop_all
    pyindex_stop
    anvil_stop
    dockerd_stop
    [ -n "${KEEP:-}" ] || rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export DOCKER_BUILDKIT=0

finish() {
    echo "($((SECONDS - t0)) s)"
    if [ "$failed" -ne 0 ] && [ -n "${dir:-}" ] && [ -s "$dir/daemon.log" ]; then
        echo "the end of the daemon's log:"
        tail -n 30 "$dir/daemon.log"
    fi
    check_done
    exit $?
}

# --- services -----------------------------------------------------------------------------
if want purge; then # slurmctld forgets a finished job 2 s after its end (at its next purge)
    export SLURM_MIN_JOB_AGE=2
fi
if want slurm || want fail || want purge; then
    slurm_start "$tmp/slurm" 4
    rc=$?
    [ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no Slurm}"
    [ "$rc" -eq 0 ] || { fail slurm_start "the private Slurm cluster did not start"; finish; }
fi
dockerd_start "$tmp/engine"
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no private dockerd}"
[ "$rc" -eq 0 ] || { fail dockerd_start "the private dockerd did not start"; finish; }
chmod 755 "$tmp/engine"
if want slurm || want fail || want purge; then # the jobs run as slurm and use the engine through its socket
    chgrp slurm "$tmp/engine/docker.sock" && chmod 660 "$tmp/engine/docker.sock" ||
        { fail engine_socket "could not open the socket to the job user"; finish; }
fi
base_image_ensure >/dev/null
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no base image}"
[ "$rc" -eq 0 ] || { fail base_image "could not make or import the base image"; finish; }
pyindex_start "$tmp/index" || { fail pyindex "the package index did not start"; finish; }
registry_start "$tmp/reg" || { fail registry "docker-registry did not start"; finish; }
registry=127.0.0.1:$REGISTRY_PORT
anvil_start --block-time 1 || { fail anvil "anvil did not start"; finish; }
mkdir -p "$tmp/art"
artifacts_start "$tmp/art" || { fail artifacts "the artifact server did not start"; finish; }
ok services

# setup NAME [EXTRA run: LINES]: a contract and a configuration in $tmp/NAME; sets dir, cfg,
# contract, api
setup() {
    dir=$tmp/$1
    cfg=$dir/ocra.yaml
    mkdir -p "$dir"
    chmod 755 "$dir"
    contract=$(pipeline_contract) || { fail "$1_contract" "ModelRegistry not deployed"; finish; }
    pipeline_keys "$dir/keys" || { fail "$1_keys" "no keys"; finish; }
    api=$(registry_free_port)
    pipeline_config "$cfg" "$contract" "$registry/ocra/$1" "$agent" "$api" "daemon:
  workers: 2
  max_attempts: 10
  retry_base_ms: 300
  retry_max_ms: 2000
  lease_ms: 3000
  poll_ms: 200"
    if [ -n "${2:-}" ]; then
        python3 - "$cfg" "$2" <<'PY'
import sys
path, extra = sys.argv[1], sys.argv[2]
text = open(path).read().replace("\nrun:\n", "\nrun:\n" + extra + "\n", 1)
open(path, "w").write(text)
PY
    fi
}
start_daemon() {
    "$ocra" daemon -c "$cfg" >>"$dir/daemon.out" 2>>"$dir/daemon.log" &
    daemon_pid=$!
}
# publish NAME VERSION PYTHON: a spec whose workload runs PYTHON (the weights on the artifact
# server, as tests/lib/pipeline.sh makes them); prints the tx hash
publish() {
    mkdir -p "$tmp/art/$1"
    head -c 100000 /dev/urandom >"$tmp/art/$1/model.safetensors"
    local sha size
    sha=$(sha256sum "$tmp/art/$1/model.safetensors" | cut -d' ' -f1)
    size=$(stat -c %s "$tmp/art/$1/model.safetensors")
    python3 - "$dir/spec.json" "$1" "$2" "$OCRA_BASE_IMAGE" "$ARTIFACTS_PORT" "$sha" "$size" "$3" <<'PY'
import json, sys
out, name, version, base, port, sha, size, code = sys.argv[1:]
json.dump({"name": name, "modelVersion": version, "baseImage": base,
           "toolsAndLibraries": {"ocra-smoke": "1.0.0"},
           "artifact": {"uri": "http://127.0.0.1:%s/%s/model.safetensors" % (port, name),
                        "sha256": sha, "size": int(size)},
           "workload": {"gpus": 0, "command": ["python3", "-c", code]}}, open(out, "w"))
PY
    "$ocra" -c "$cfg" publish --chain evm --key-file "$dir/keys/publisher.key" "$dir/spec.json" \
        2>>"$dir/publish.err"
}
events() { "$ocra" -c "$cfg" events 2>/dev/null; }
event_of() { pipeline_event_of "$ocra" "$cfg" "$1"; }
# pipe ID EXPR: a Python expression over d (the event's `ocra lineage --json`) and p (its pipeline)
pipe() { pipeline_get "$ocra" "$cfg" "$1" "$2"; }
# wait_event TX [SECONDS]: the tx's event id, once terminal
wait_event() { pipeline_wait_event "$ocra" "$cfg" "$1" "$daemon_pid" "${2:-900}"; }
short_of() { printf '%s' "$1" | sha256sum | cut -c1-12; }
key_of() { evm_event_key "$1"; }
# reports_of ID: the event's StatusReported logs, one "status JSON" line each
reports_of() { evm_reports "$contract" | awk -v k="$(key_of "$1")" 'tolower($1) == k { $1 = $2 = ""; sub(/^ +/, ""); print }'; }
# runs ID: the journal's runs rows of the event, "id|runner|node|state|result" lines
runs() { sqlite3 "$dir/journal.db" "SELECT id, runner, coalesce(node, ''), state, coalesce(result, '') FROM runs WHERE event_id = '$1' ORDER BY created_ms"; }

slurm_yaml="  runner: slurm
  slurm:
    url: ${SLURM_REST_URL:-}
    user: ${SLURM_REST_USER:-}
    token_file: ${SLURM_TOKEN_FILE:-}
    partition: ${SLURM_PARTITION:-}
    docker_host: ${DOCKER_HOST:-}
    workdir: ${SLURM_DIR:-}/jobs
    poll_interval_ms: 200"

if want slurm; then
# --- slurm: one event through a Slurm job ---------------------------------------------------
setup slurm "$slurm_yaml"
start_daemon
tx=$(publish slurm-model 1.0.0 "import os, time; time.sleep(5); print('ocra-slurm-ok', os.environ['OCRA_EVENT_ID'])") ||
    { fail slurm_publish "ocra publish failed: $(tail -3 "$dir/publish.err")"; finish; }
id=$(wait_event "$tx")
[ -n "$id" ] || { fail slurm_event "the event of $tx was never journaled"; finish; }
name=ocra-$(short_of "$id")
[ "$(pipe "$id" 'p.get("status"), p.get("outcome")')" = "('reported', 'completed')" ] &&
    ok slurm_event_reported_completed || fail slurm_event_reported_completed "$(pipe "$id" 'json.dumps(p)' 2>&1)"
# no worker waited for the job: the complete stage parked the event (supervised) and the
# supervisor's poll of Slurm's jobs woke it when the job ended
[ "$(pipe "$id" '[s["outcome"] for s in d["stages"] if s["stage"] == "complete"]')" = "['supervised', 'done']" ] &&
    ok slurm_supervised_through_the_poll || fail slurm_supervised_through_the_poll "$(pipe "$id" '[s for s in d["stages"] if s["stage"] == "complete"]')"
row=$(runs "$id")
IFS='|' read -r run_id run_runner run_node run_state run_result <<<"$row"
[ "$(printf '%s\n' "$row" | grep -c .)" -eq 1 ] && ok slurm_one_runs_row || fail slurm_one_runs_row "rows: $row"
[ "$run_runner" = slurm ] && ok slurm_runs_row_runner || fail slurm_runs_row_runner "$row"
[ "$run_state" = succeeded ] && ok slurm_runs_row_succeeded || fail slurm_runs_row_succeeded "$row"
[ "$(printf '%s' "$run_result" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("exitCode"))' 2>&1)" = 0 ] &&
    ok slurm_runs_row_exit_code_0 || fail slurm_runs_row_exit_code_0 "$row"
[ "$run_node" = "$SLURM_NODE" ] && ok slurm_runs_row_node_is_slurms || fail slurm_runs_row_node_is_slurms "$row"
job=$(squeue -h --states=all --name "$name" -o '%i %T' 2>&1)
[ "$job" = "$run_id COMPLETED" ] && ok slurm_knows_the_job_completed ||
    fail slurm_knows_the_job_completed "squeue --name $name: '$job', runs row id '$run_id'"
[ "$(pipe "$id" '[s["output"]["node"] for s in d["stages"] if s["stage"] == "allocate" and s["outcome"] == "done"]')" = "['$SLURM_NODE']" ] &&
    ok slurm_allocated_on_slurms_node || fail slurm_allocated_on_slurms_node "$(pipe "$id" '[s for s in d["stages"] if s["stage"] == "allocate"]')"
rep=$(reports_of "$id")
[ "$(printf '%s\n' "$rep" | grep -c .)" -eq 1 ] && ok slurm_one_report || fail slurm_one_report "reports: $rep"
case $rep in *'"status":"completed"'*) ok slurm_report_completed ;; *) fail slurm_report_completed "$rep" ;; esac
[ "$(pipe "$id" 'd["runs"][0]["id"] if len(d["runs"]) == 1 and "ocra-slurm-ok" in (d["runs"][0]["result"] or {}).get("logTail", "") else "no"')" = "$run_id" ] &&
    ok slurm_lineage_json_has_the_output || fail slurm_lineage_json_has_the_output "$(pipe "$id" 'd.get("runs")')"
"$ocra" -c "$cfg" lineage "$id" >"$dir/lineage.txt" 2>&1
has slurm_lineage_text_run "$dir/lineage.txt" "slurm $run_id on $SLURM_NODE: succeeded, exit code 0"
has slurm_lineage_text_output "$dir/lineage.txt" "| ocra-slurm-ok $id"
curl -s -H "Authorization: Bearer $(cat "$dir/keys/api.token")" "http://127.0.0.1:$api/api/v1/events/$id" >"$dir/api.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = d["runs"]
assert len(r) == 1 and r[0]["runner"] == "slurm" and r[0]["id"] == sys.argv[2] and r[0]["state"] == "succeeded", r
assert "ocra-slurm-ok" in r[0]["result"]["logTail"], r
' "$dir/api.json" "$run_id" && ok slurm_api_lineage_has_runs || fail slurm_api_lineage_has_runs "$(head -c 600 "$dir/api.json")"
# the job bound its run's own agent socket directory (the node is this host): the agent's
# reports reached the daemon as replica 0 of the event; the directory went with the run
grep -qF "agent event=$id replica=0 started" "$dir/daemon.log" &&
    grep -qF "agent event=$id replica=0 completed exit=0" "$dir/daemon.log" &&
    ok slurm_agent_reports_through_its_run_socket ||
    fail slurm_agent_reports_through_its_run_socket "no started and completed reports of $id in the log"
[ ! -e "$dir/agent/$name" ] && ok slurm_run_socket_removed || fail slurm_run_socket_removed "$dir/agent/$name is left"
fi # slurm

if want fail; then
# --- fail: a workload that exits 3 under Slurm ----------------------------------------------
[ -n "$daemon_pid" ] || { setup slurm-fail "$slurm_yaml"; start_daemon; }
tx=$(publish slurm-fail 1.0.0 "import sys; print('ocra-about-to-fail'); sys.exit(3)") ||
    { fail fail_publish "ocra publish failed: $(tail -3 "$dir/publish.err")"; finish; }
id=$(wait_event "$tx")
[ -n "$id" ] || { fail fail_event "the event of $tx was never journaled"; finish; }
[ "$(pipe "$id" 'p.get("status"), p.get("outcome")')" = "('reported', 'failed')" ] &&
    ok fail_event_reported_failed || fail fail_event_reported_failed "$(pipe "$id" 'json.dumps(p)' 2>&1)"
row=$(runs "$id")
IFS='|' read -r run_id run_runner run_node run_state run_result <<<"$row"
[ "$run_runner $run_state" = "slurm failed" ] && ok fail_runs_row_failed || fail fail_runs_row_failed "$row"
case $run_result in *'"exitCode":3'*ocra-about-to-fail* | *ocra-about-to-fail*'"exitCode":3'*) ok fail_runs_row_exit_code_and_log ;;
*) fail fail_runs_row_exit_code_and_log "$row" ;; esac
job=$(squeue -h --states=all --name "ocra-$(short_of "$id")" -o '%i %T' 2>&1)
[ "$job" = "$run_id FAILED" ] && ok fail_slurm_knows_the_job_failed || fail fail_slurm_knows_the_job_failed "squeue: '$job', runs row id '$run_id'"
rep=$(reports_of "$id")
[ "$(printf '%s\n' "$rep" | grep -c .)" -eq 1 ] && ok fail_one_report || fail fail_one_report "reports: $rep"
case $rep in *'"status":"failed"'*) ok fail_report_failed ;; *) fail fail_report_failed "$rep" ;; esac
fi # fail

if want purge; then
# --- purge: the job slurmctld forgot while the daemon was down ------------------------------
setup purge "$slurm_yaml"
start_daemon
tx=$(publish slurm-purge 1.0.0 "import time; print('ocra-purge-started', flush=True); time.sleep(6)") ||
    { fail purge_publish "ocra publish failed: $(tail -3 "$dir/publish.err")"; finish; }
id=
for _ in $(seq 1 600); do # bounded: the event journaled and its job submitted and recorded
    [ -n "$id" ] || id=$(event_of "$tx")
    [ -n "$id" ] && [ -n "$(runs "$id")" ] && break
    sleep 0.5
done
[ -n "$id" ] && [ -n "$(runs "$id")" ] || { fail purge_job_recorded "no runs row: $(runs "${id:-x}")"; finish; }
stop_daemon # SIGKILL while the complete stage waits
name=ocra-$(short_of "$id")
IFS='|' read -r run_id _ <<<"$(runs "$id")"
purged=no
for _ in $(seq 1 240); do # bounded: the job ends, then slurmctld's purge (about every minute)
    if [ -z "$(squeue -h --states=all --name "$name" -o '%i' 2>/dev/null)" ]; then
        purged=yes
        break
    fi
    sleep 1
done
[ "$purged" = yes ] && ok purge_slurm_forgot_the_job || fail purge_slurm_forgot_the_job "squeue still knows $name"
# the crash window: the runs row written, the run stage not ended (its attempt gone with it)
sqlite3 "$dir/journal.db" "DELETE FROM stages WHERE event_id = '$id' AND stage IN ('run', 'complete');
    UPDATE pipeline SET stage = 'run', status = 'allocated', state = 'ready', claim = NULL,
    claimed_by = NULL, lease_ms = NULL, next_ms = 0 WHERE event_id = '$id';" ||
    fail purge_journal_rewound "sqlite3 failed"
start_daemon
id2=$(wait_event "$tx" 300)
[ "$id2" = "$id" ] || { fail purge_event_terminal "$(pipe "$id" 'json.dumps(p)' 2>&1)"; finish; }
[ "$(pipe "$id" 'p.get("status"), p.get("outcome")')" = "('reported', 'failed')" ] &&
    ok purge_event_failed || fail purge_event_failed "$(pipe "$id" 'json.dumps(p)' 2>&1)"
pipe "$id" '[s["output"].get("reason") for s in d["stages"] if s["stage"] == "complete" and s["outcome"] == "done"]' | grep -q "Slurm no longer knows job $run_id" &&
    ok purge_reason_says_the_status_is_lost || fail purge_reason_says_the_status_is_lost "$(pipe "$id" 'json.dumps(p)' 2>&1)"
[ "$(pipe "$id" '[s["output"].get("adopted") for s in d["stages"] if s["stage"] == "run" and s["outcome"] == "done"]')" = "[True]" ] &&
    ok purge_run_stage_adopted_the_journaled_job || fail purge_run_stage_adopted_the_journaled_job "$(pipe "$id" '[s for s in d["stages"] if s["stage"] == "run"]')"
# no second job: the run stage names the first one's id, and Slurm knows no job of that name
# (a new one, done in a second, would be purged by now too: the id is the proof)
[ "$(pipe "$id" '[s["output"].get("id") for s in d["stages"] if s["stage"] == "run" and s["outcome"] == "done"]')" = "['$run_id']" ] &&
    [ -z "$(squeue -h --states=all --name "$name" -o '%i' 2>/dev/null)" ] && ok purge_no_second_submit ||
    fail purge_no_second_submit "run stage: $(pipe "$id" '[s["output"] for s in d["stages"] if s["stage"] == "run"]'); Slurm: $(squeue -h --states=all --name "$name" -o '%i %T')"
row=$(runs "$id")
[ "$(printf '%s\n' "$row" | grep -c .)" -eq 1 ] && [ "$(printf '%s' "$row" | cut -d'|' -f4)" = failed ] &&
    ok purge_one_runs_row_failed || fail purge_one_runs_row_failed "rows: $row"
rep=$(reports_of "$id")
[ "$(printf '%s\n' "$rep" | grep -c .)" -eq 1 ] && ok purge_one_report || fail purge_one_report "reports: $rep"
fi # purge

if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid"
    wait "$daemon_pid"
    rc=$?
    daemon_pid=
    [ "$rc" -eq 0 ] && ok sigterm_exits_0 || fail sigterm_exits_0 "exit $rc"
fi

if want drain; then
# --- drain: SIGTERM while the workload runs: no worker waits for it ------------------------
setup drain
start_daemon
# the workload runs until the test tells it to end (/tmp/ocra-stop in its container): no clock
tx=$(publish drain-model 1.0.0 "import os, time; print('ocra-drain-start', flush=True); [time.sleep(0.2) for _ in iter(lambda: os.path.exists('/tmp/ocra-stop'), True)]; print('ocra-drain-end')") ||
    { fail drain_publish "ocra publish failed: $(tail -3 "$dir/publish.err")"; finish; }
# the complete stage parked the event: its workload is running, the supervisor follows it
id=
waiting() {
    [ -n "$id" ] || id=$(event_of "$tx")
    [ -n "$id" ] && [ "$(pipe "$id" 'p.get("stage"), p.get("state")')" = "('complete', 'supervised')" ]
}
for _ in $(seq 900); do
    waiting && break
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.5
done
waiting || { fail drain_complete_supervised "the event never reached the complete stage: $(pipe "${id:-x}" 'json.dumps(p)' 2>&1)"; finish; }
cid=$(runs "$id" | cut -d'|' -f1)
kill -TERM "$daemon_pid"
wait "$daemon_pid"
rc=$?
daemon_pid=
# the daemon has exited: the workload is still running (until the test ends it)
running=$(docker inspect -f '{{.State.Running}}' "$cid" 2>&1)
[ "$rc" -eq 0 ] && ok drain_sigterm_exits_0 || fail drain_sigterm_exits_0 "exit $rc"
[ "$running" = true ] && ok drain_exited_before_the_workload_ended ||
    fail drain_exited_before_the_workload_ended "container $cid: running=$running"
has drain_logged_supervised "$dir/daemon.log" "stage supervised event=$id stage=complete"
[ "$(pipe "$id" '[s["outcome"] for s in d["stages"] if s["stage"] == "complete"], p.get("stage"), p.get("state")')" = "(['supervised'], 'complete', 'supervised')" ] &&
    ok drain_event_stays_supervised || fail drain_event_stays_supervised "$(pipe "$id" 'd["stages"][-1], p')"
[ "$(runs "$id" | cut -d'|' -f4)" = running ] && ok drain_runs_row_still_running || fail drain_runs_row_still_running "$(runs "$id")"
start_daemon
docker exec "$cid" touch /tmp/ocra-stop || fail drain_stop_written "docker exec into $cid"
id2=$(wait_event "$tx")
[ "$id2" = "$id" ] && [ "$(pipe "$id" 'p.get("outcome")')" = completed ] &&
    ok drain_restart_completes || fail drain_restart_completes "$(pipe "$id" 'json.dumps(p)' 2>&1)"
# the restart woke the parked event once (reconcile): parked again while the workload ran,
# then done; no attempt was released or counted
[ "$(pipe "$id" '(lambda a: len(a) >= 2 and a[-1] == "done" and set(a[:-1]) <= {"supervised"})([s["outcome"] for s in d["stages"] if s["stage"] == "complete"])')" = True ] &&
    ok drain_complete_supervised_then_done || fail drain_complete_supervised_then_done "$(pipe "$id" '[s for s in d["stages"] if s["stage"] == "complete"]')"
row=$(runs "$id")
[ "$(printf '%s\n' "$row" | grep -c .)" -eq 1 ] && [ "$(printf '%s' "$row" | cut -d'|' -f1,4)" = "$cid|succeeded" ] &&
    ok drain_one_runs_row_succeeded || fail drain_one_runs_row_succeeded "$row (container $cid)"
case $row in *ocra-drain-end*) ok drain_log_tail_has_the_end ;; *) fail drain_log_tail_has_the_end "$row" ;; esac
# the run's times are the engine's (State.StartedAt, FinishedAt), not the clock of the restarted
# stage that only saw the end
python3 - "$(docker inspect -f '{{.State.StartedAt}} {{.State.FinishedAt}}' "$cid")" \
    "$(pipe "$id" 'json.dumps([s["output"] for s in d["stages"] if s["stage"] == "complete" and s["outcome"] == "done"][0])')" \
    "$(runs "$id" | cut -d'|' -f5)" <<'PY' && ok drain_run_times_are_the_engines || fail drain_run_times_are_the_engines "$(runs "$id"); $(docker inspect -f '{{.State.StartedAt}} {{.State.FinishedAt}}' "$cid")"
import calendar, json, sys, time
def ms(t):
    base, _, frac = t.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 1000 + int((frac + "000")[:3])
started, finished = map(ms, sys.argv[1].split())
out, result = json.loads(sys.argv[2]), json.loads(sys.argv[3])
assert (out["startedAt"], out["finishedAt"]) == (started, finished), (out, started, finished)
assert result["durationMs"] == finished - started, (result, finished - started)
PY
n=$(docker ps -aq --filter "label=io.ocra.event-id=$id" | wc -l)
[ "$n" -eq 1 ] && ok drain_one_container || fail drain_one_container "$n containers"
rep=$(reports_of "$id")
[ "$(printf '%s\n' "$rep" | grep -c .)" -eq 1 ] && ok drain_one_report || fail drain_one_report "reports: $rep"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
fi # drain

if want orphan; then
# --- orphan: the chain withdraws an event whose workload runs -------------------------------
setup orphan
start_daemon
mine() { "$CAST" rpc --rpc-url "$EVM_RPC_URL" anvil_mine "$(printf '0x%x' "$1")" >/dev/null; }
# the chain grows only when told (a deep reorg must reach back to a block the watcher keeps)
"$CAST" rpc --rpc-url "$EVM_RPC_URL" evm_setIntervalMining 0 >/dev/null
"$CAST" rpc --rpc-url "$EVM_RPC_URL" evm_setAutomine true >/dev/null # a transaction, a block
snap=$("$CAST" rpc --rpc-url "$EVM_RPC_URL" evm_snapshot | tr -d '"')
tx=$(publish orphan-model 1.0.0 "import time; print('ocra-orphan-start', flush=True); time.sleep(600)") ||
    { fail orphan_publish "ocra publish failed: $(tail -3 "$dir/publish.err")"; finish; }
mine 4
id=
running() {
    [ -n "$id" ] || id=$(event_of "$tx")
    [ -n "$id" ] && [ "$(pipe "$id" 'p.get("stage"), p.get("state")')" = "('complete', 'supervised')" ]
}
for _ in $(seq 900); do
    running && break
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.5
done
running || { fail orphan_running "the event never reached the complete stage: $(pipe "${id:-x}" 'json.dumps(p)' 2>&1)"; finish; }
cid=$(runs "$id" | cut -d'|' -f1)
[ "$(docker inspect -f '{{.State.Running}}' "$cid" 2>&1)" = true ] && ok orphan_workload_runs ||
    fail orphan_workload_runs "container $cid"
# a longer chain without the publish: the block the event came from is replaced
"$CAST" rpc --rpc-url "$EVM_RPC_URL" evm_revert "$snap" >/dev/null
mine 12
ended=no
# bounded: the watcher sees the violation, the supervisor sees the mark and wakes the event (a
# supervisor that never does fails here, well before the workload's 600 s are up)
for _ in $(seq 600); do
    [ "$(sqlite3 "$dir/journal.db" "SELECT state FROM pipeline WHERE event_id = '$id'")" = done ] &&
        { ended=yes; break; }
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.5
done
"$CAST" rpc --rpc-url "$EVM_RPC_URL" evm_setIntervalMining 1 >/dev/null
[ "$ended" = yes ] && [ "$(pipe "$id" 'p.get("status"), p.get("outcome")')" = "('orphaned', 'orphaned')" ] &&
    ok orphan_event_ends_orphaned || fail orphan_event_ends_orphaned "$(pipe "$id" 'json.dumps(p)' 2>&1)"
running=$(docker inspect -f '{{.State.Running}}' "$cid" 2>&1)
[ "$running" = false ] && ok orphan_workload_stopped || fail orphan_workload_stopped "container $cid: running=$running"
[ "$(runs "$id" | cut -d'|' -f4)" = stopped ] && ok orphan_runs_row_stopped || fail orphan_runs_row_stopped "$(runs "$id")"
held=$(sqlite3 "$dir/journal.db" "SELECT count(*) FROM allocations WHERE event_id = '$id' AND state = 'held'")
[ "$held" = 0 ] && ok orphan_allocation_released || fail orphan_allocation_released "$held held"
# the supervisor woke the parked event; its claim sent it straight to the report stage (the
# claim's history row at the complete stage says orphaned)
[ "$(pipe "$id" '[s["outcome"] for s in d["stages"] if s["stage"] == "complete"]')" = "['supervised', 'orphaned']" ] &&
    ok orphan_supervised_event_woken || fail orphan_supervised_event_woken "$(pipe "$id" '[s for s in d["stages"] if s["stage"] == "complete"]')"
[ "$(pipe "$id" '[s["output"].get("stopped") for s in d["stages"] if s["stage"] == "report" and s["outcome"] == "done"]')" = "[['$cid']]" ] &&
    ok orphan_report_stage_stopped_the_run || fail orphan_report_stage_stopped_the_run "$(pipe "$id" '[s for s in d["stages"] if s["stage"] == "report"]')"
[ -z "$(reports_of "$id")" ] && ok orphan_not_reported || fail orphan_not_reported "$(reports_of "$id")"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
fi # orphan

finish
