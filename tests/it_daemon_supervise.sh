#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon_supervise.sh OCRA OCRA_AGENT: running workloads cost no worker (docs/RUNNING.md,
# Supervision and time limits), against real services on 127.0.0.1 (tests/lib/pipeline.sh: a
# private dockerd, a docker-registry, anvil with the ModelRegistry contract, the offline package
# index and an artifact server), with daemon.workers: 2. Checked:
#  1. ten long-running workloads (each runs until /tmp/ocra-stop exists in its container) all
#     run at once, their events parked in state supervised at the complete stage (no worker
#     held: /metrics ocra_supervised_workloads 10);
#  2. while they run, a new event still validates, plans, builds, runs and completes, and is
#     reported; the ten still run;
#  3. a hung workload (it ignores SIGTERM) with workload.maxDuration "6s" is stopped at its
#     limit (SIGTERM, run.stop_grace_s 2, SIGKILL): status reported, outcome timeout, the run
#     lasted at least its limit, the on-chain report says "timeout"; ocra_run_timeouts_total 1;
#  4. the ten end (touch /tmp/ocra-stop): each event moves on through the engine's event
#     stream and is reported completed; in each one's history no attempt at the complete stage
#     spans the run's end (the attempt that parked it ended before, the one that completed it
#     started after): no worker waited for the workload;
#  5. a newer version of a running inference model: version 1.0.1 published while 1.0.0 runs;
#     1.0.0 is stopped and reported superseded, only after 1.0.1's container started (the
#     engine's times); 1.0.1 runs on and completes.
# Exits 77 (skip) with the reason when docker, the registry or the EVM tools cannot run here.
# Stops everything it started, by PID.
set -u
ocra=${1:?usage: it_daemon_supervise.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
agent=${2:?usage: it_daemon_supervise.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
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

pipeline_test_begin it_daemon_supervise ocra-sup
api_port=$(registry_free_port)
pipeline_config "$tmp/ocra.yaml" "$contract" "$registry/ocra/sup" "$agent" \
    "$api_port" "daemon:
  workers: 2
  retry_base_ms: 500
  retry_max_ms: 5000
  poll_ms: 200
  lease_ms: 3000"
# a node with room for a dozen CPU workloads (the docker runner runs them here whatever the
# machine has); a stop's grace of 2 s
python3 - "$tmp/ocra.yaml" <<'PY' || { fail config "could not edit the configuration"; finish; }
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r"(?m)^(  docker_host: .*)$", r"\1\n  stop_grace_s: 2", s, count=1)
s = re.sub(r"(?m)^  local: true.*$",
           "  local: false\n  nodes:\n    - name: it-node\n      cpus: 64\n      memory_mib: 262144",
           s, count=1)
open(p, "w").write(s)
PY
ok services

"$ocra" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
daemon_pid=$!
mkdir -p "$tmp/art/w"
head -c 50000 /dev/urandom >"$tmp/art/w/model.safetensors"
sha=$(sha256sum "$tmp/art/w/model.safetensors" | cut -d' ' -f1)

# publish NAME COMMAND_JSON [MAX_DURATION_JSON] [VERSION]: the tx hash
publish() {
    python3 - "$tmp/spec-$1.json" "$1" "$OCRA_BASE_IMAGE" "$ARTIFACTS_PORT" "$sha" "$2" "${3:-}" \
        "${4:-1.0.0}" <<'PY'
import json, sys
out, name, base, port, sha, cmd, maxd, version = sys.argv[1:9]
w = {"type": "inference", "gpus": 0, "command": json.loads(cmd)}
if maxd:
    w["maxDuration"] = json.loads(maxd)
json.dump({"name": name, "modelVersion": version, "baseImage": base,
           "toolsAndLibraries": {"ocra-smoke": "1.0.0"},
           "artifact": {"uri": "http://127.0.0.1:%s/w/model.safetensors" % port, "sha256": sha,
                        "size": 50000},
           "workload": w}, open(out, "w"))
PY
    "$ocra" -c "$tmp/ocra.yaml" publish --chain evm --key-file "$tmp/keys/publisher.key" \
        "$tmp/spec-$1.json" 2>>"$tmp/publish.err"
}
# py_check NAME SCRIPT ARG...: runs a Python check that prints "ok NAME" or "FAIL NAME: why"
# lines, each counted; a script that fails otherwise fails NAME
py_check() {
    local name=$1 rc=0 word rest
    shift
    python3 - "$@" >"$tmp/py.out" 2>&1 || rc=$?
    while read -r word rest; do
        case $word in
        ok) ok "$rest" ;;
        FAIL) fail "${rest%%:*}" "${rest#*: }" ;;
        esac
    done <"$tmp/py.out"
    [ "$rc" -eq 0 ] || fail "$name" "the check exited $rc: $(tail -3 "$tmp/py.out")"
}
event_of() { pipeline_event_of "$ocra" "$tmp/ocra.yaml" "$1"; }
pipe() { pipeline_get "$ocra" "$tmp/ocra.yaml" "$1" "$2"; }
# wait_until WHAT CMD...: until CMD succeeds (bounded at 15 minutes: builds; not a timing check)
wait_until() {
    local what=$1 i
    shift
    for i in $(seq 1 900); do
        "$@" && return 0
        kill -0 "$daemon_pid" 2>/dev/null || { echo "  the daemon exited" >&2; return 1; }
        sleep 1
    done
    echo "  gave up waiting for $what" >&2
    return 1
}
metric() { # NAME: its value in /metrics (the first sample)
    curl -s -H "Authorization: Bearer $(cat "$tmp/keys/api.token")" \
        "http://127.0.0.1:$api_port/metrics" | awk -v m="$1" '$1 == m { print $2; exit }'
}
ids_of() { # TX...: their event ids, once all are journaled
    local tx id out=
    for tx in "$@"; do
        id=$(event_of "$tx")
        [ -n "$id" ] || return 1
        out="$out $id"
    done
    echo "$out"
}
# count_rows SQL ID...: how many of the events' pipeline rows satisfy the SQL condition (the
# journal read directly: ten `ocra lineage` calls per look are slow on a busy machine)
count_rows() {
    local cond=$1 id list=
    shift
    for id in "$@"; do list="$list${list:+,}'$id'"; done
    sqlite3 "$tmp/journal.db" "SELECT count(*) FROM pipeline WHERE event_id IN ($list) AND $cond"
}
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
name_of() { echo "ocra-$(printf '%s' "$1" | sha256sum | cut -c1-12)"; }

# --- 1. ten long-running workloads ----------------------------------------------------------
long='["sh", "-c", "while [ ! -e /tmp/ocra-stop ]; do sleep 0.5; done; echo stopped by the test"]'
txs=()
for i in $(seq 0 9); do
    tx=$(publish "sup-$i" "$long") || { fail publish "ocra publish sup-$i: $(tail -3 "$tmp/publish.err")"; finish; }
    txs+=("$tx")
done
ids=
wait_until "the ten events journaled" eval 'ids=$(ids_of "${txs[@]}")' ||
    { fail journaled "not every event was journaled"; finish; }
read -r -a long_ids <<<"$ids"
all_supervised() {
    [ "$(count_rows "stage = 'complete' AND state = 'supervised' AND status = 'running'" "${long_ids[@]}")" -eq 10 ]
}
if wait_until "ten supervised" all_supervised; then
    ok ten_supervised
else
    fail ten_supervised "$(sqlite3 "$tmp/journal.db" "SELECT status, stage, state FROM pipeline")"
    finish
fi
n=0
for id in "${long_ids[@]}"; do running "$(name_of "$id")" && n=$((n + 1)); done
[ "$n" -eq 10 ] && ok ten_containers_running || fail ten_containers_running "$n of 10 running"
[ "$(metric ocra_supervised_workloads)" = 10 ] && ok metric_supervised_10 ||
    fail metric_supervised_10 "ocra_supervised_workloads $(metric ocra_supervised_workloads)"
# no worker holds a claim: the ten are parked, not claimed
[ "$(sqlite3 "$tmp/journal.db" "SELECT count(*) FROM pipeline WHERE state = 'claimed'")" -eq 0 ] &&
    ok no_claim_held || fail no_claim_held "$(sqlite3 "$tmp/journal.db" "SELECT event_id, stage, claimed_by FROM pipeline WHERE state = 'claimed'")"

# --- 2. a new event still goes through every stage -----------------------------------------
tx=$(publish sup-late '["sh", "-c", "echo late and done"]') ||
    { fail publish "ocra publish sup-late: $(tail -3 "$tmp/publish.err")"; finish; }
late=$(pipeline_wait_event "$ocra" "$tmp/ocra.yaml" "$tx" "$daemon_pid" 900)
if [ -n "$late" ] && [ "$(pipe "$late" 'p.get("status") == "reported" and p.get("outcome") == "completed"')" = True ]; then
    ok late_event_completed
else
    fail late_event_completed "$(pipe "${late:-none}" 'p')"
fi
"$ocra" -c "$tmp/ocra.yaml" lineage --json "$late" >"$tmp/late.json" 2>/dev/null
py_check late_check "$tmp/late.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
done = [s["stage"] for s in doc.get("stages", []) if s.get("outcome") == "done"]
want = ["validate", "plan", "toolchain", "push", "sign", "allocate", "run", "complete", "report"]
ok = done == want
print(("ok " if ok else "FAIL ") + "late_event_every_stage_done" + ("" if ok else ": " + " ".join(done)))
PY
n=0
for id in "${long_ids[@]}"; do running "$(name_of "$id")" && n=$((n + 1)); done
[ "$n" -eq 10 ] && ok ten_still_running || fail ten_still_running "$n of 10 running"
[ "$(count_rows "state = 'supervised'" "${long_ids[@]}")" -eq 10 ] &&
    ok ten_still_supervised || fail ten_still_supervised "not all ten parked"

# --- 3. a hung workload ends with timeout at its limit ---------------------------------------
tx=$(publish sup-hung '["sh", "-c", "trap \"\" TERM; echo hung; while :; do sleep 1; done"]' '"6s"') ||
    { fail publish "ocra publish sup-hung: $(tail -3 "$tmp/publish.err")"; finish; }
hung=$(pipeline_wait_event "$ocra" "$tmp/ocra.yaml" "$tx" "$daemon_pid" 900)
if [ -n "$hung" ] && [ "$(pipe "$hung" 'p.get("status") == "reported" and p.get("outcome") == "timeout"')" = True ]; then
    ok hung_event_timeout
else
    fail hung_event_timeout "$(pipe "${hung:-none}" 'p')"
fi
"$ocra" -c "$tmp/ocra.yaml" lineage --json "$hung" >"$tmp/hung.json" 2>/dev/null
evm_reports "$PIPELINE_CONTRACT" >"$tmp/reports"
py_check hung_check "$tmp/hung.json" "$tmp/reports" <<'PY'
import hashlib, json, sys
doc = json.load(open(sys.argv[1]))
def check(name, cond, why):
    print(("ok " if cond else "FAIL ") + name + ("" if cond else ": " + why))
out = next((s.get("output") or {} for s in doc.get("stages", [])
            if s["stage"] == "complete" and s.get("outcome") == "done"), {})
check("hung_verdict_timeout", out.get("verdict") == "timeout" and out.get("maxDurationS") == 6,
      json.dumps(out)[:400])
ran = (out.get("finishedAt") or 0) - (out.get("startedAt") or 0)
check("hung_ran_its_limit", ran >= 6000, "ran %d ms" % ran)
check("hung_killed", out.get("exitCode") == 137, "exit code %s" % out.get("exitCode"))
key = "0x" + hashlib.sha256(doc["event"]["event"].encode()).hexdigest()
mine = [l.split(" ", 2) for l in open(sys.argv[2]).read().splitlines() if l.split(" ")[0].lower() == key]
st = json.loads(mine[0][2]) if len(mine) == 1 else {}
check("hung_reported_timeout_on_chain", st.get("status") == "timeout", str(mine)[:400])
PY
[ "$(metric 'ocra_run_timeouts_total{runner="docker"}')" = 1 ] && ok metric_timeouts_1 ||
    fail metric_timeouts_1 "ocra_run_timeouts_total $(metric 'ocra_run_timeouts_total{runner="docker"}')"

# --- 4. the ten end: moved on through the event stream ---------------------------------------
for id in "${long_ids[@]}"; do
    docker exec "$(name_of "$id")" touch /tmp/ocra-stop || fail stop_written "docker exec into $(name_of "$id")"
done
all_reported() {
    [ "$(count_rows "status = 'reported' AND state = 'done'" "${long_ids[@]}")" -eq 10 ]
}
if wait_until "the ten reported" all_reported; then
    ok ten_reported
else
    fail ten_reported "$(sqlite3 "$tmp/journal.db" "SELECT status, stage, state, outcome FROM pipeline")"
fi
[ "$(count_rows "outcome = 'completed'" "${long_ids[@]}")" -eq 10 ] && ok ten_completed ||
    fail ten_completed "not all ten completed"
# the journal's history of the complete stage of each (its own clock, ms)
py_check ten_check "$tmp/journal.db" "${long_ids[@]}" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
bad = []
for ev in sys.argv[2:]:
    att = db.execute("SELECT id, started_ms, finished_ms, outcome, output FROM stages"
                     " WHERE event_id = ? AND stage = 'complete' ORDER BY id", (ev,)).fetchall()
    done = [a for a in att if a[3] == "done"]
    parked = [a for a in att if a[3] == "supervised"]
    end = json.loads(done[-1][4] or "{}").get("finishedAt") if done else None
    if not done or not parked or not end:
        bad.append("%s: attempts %s" % (ev, [a[3] for a in att]))
        continue
    for a in att: # no attempt spans the run's end: no worker waited for the workload
        if a[1] < end and (a[2] or 0) > end:
            bad.append("%s: attempt %d (%s) from %d to %s spans the end %d" % (ev, a[0], a[3], a[1], a[2], end))
ok = not bad
print(("ok " if ok else "FAIL ") + "no_worker_waited_for_a_workload" + ("" if ok else ": " + "; ".join(bad)[:800]))
PY
# --- 5. a newer version replaces the running one, with no gap in service --------------------
tx1=$(publish sup-ver "$long" "" 1.0.0) || { fail publish "ocra publish sup-ver 1.0.0: $(tail -3 "$tmp/publish.err")"; finish; }
old=
old_parked() {
    [ -n "$old" ] || old=$(event_of "$tx1")
    [ -n "$old" ] && [ "$(count_rows "state = 'supervised'" "$old")" -eq 1 ]
}
wait_until "1.0.0 supervised" old_parked || { fail old_supervised "$(pipe "${old:-none}" 'p')"; finish; }
tx2=$(publish sup-ver "$long" "" 1.0.1) || { fail publish "ocra publish sup-ver 1.0.1: $(tail -3 "$tmp/publish.err")"; finish; }
pipeline_wait_event "$ocra" "$tmp/ocra.yaml" "$tx1" "$daemon_pid" 900 >/dev/null
new=$(event_of "$tx2")
[ "$(pipe "$old" 'p.get("status") == "reported" and p.get("outcome") == "superseded"')" = True ] &&
    ok old_version_superseded || fail old_version_superseded "$(pipe "$old" 'p')"
[ -n "$new" ] && [ "$(count_rows "state = 'supervised' AND status = 'running'" "$new")" -eq 1 ] &&
    running "$(name_of "$new")" && ok new_version_runs || fail new_version_runs "$(pipe "${new:-none}" 'p')"
# inference: the old one was stopped only once the new one ran (the engine's times)
python3 - "$(docker inspect -f '{{.State.FinishedAt}}' "$(name_of "$old")")" \
    "$(docker inspect -f '{{.State.StartedAt}}' "$(name_of "$new")")" <<'PY' &&
import calendar, sys, time
def ns(t):
    base, _, frac = t.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 10**9 + int((frac + "0" * 9)[:9])
assert ns(sys.argv[2]) < ns(sys.argv[1]), sys.argv[1:]
PY
    ok old_stopped_after_new_started || fail old_stopped_after_new_started "old ended $(docker inspect -f '{{.State.FinishedAt}}' "$(name_of "$old")"), new started $(docker inspect -f '{{.State.StartedAt}}' "$(name_of "$new")")"
docker exec "$(name_of "$new")" touch /tmp/ocra-stop
pipeline_wait_event "$ocra" "$tmp/ocra.yaml" "$tx2" "$daemon_pid" 900 >/dev/null
[ "$(pipe "$new" 'p.get("outcome")')" = completed ] && ok new_version_completed ||
    fail new_version_completed "$(pipe "$new" 'p')"

[ "$(metric ocra_supervised_workloads)" = 0 ] && ok metric_supervised_0 ||
    fail metric_supervised_0 "ocra_supervised_workloads $(metric ocra_supervised_workloads)"
grep -q "stage supervised event=" "$tmp/daemon.log" && ok log_says_supervised || fail log_says_supervised "no 'stage supervised' line"

kill -0 "$daemon_pid" 2>/dev/null && ok daemon_alive || fail daemon_alive "the daemon exited"
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok daemon_clean_exit || fail daemon_clean_exit "exit status $rc: $(grep -m3 -E 'Sanitizer|ERROR' "$tmp/daemon.log")"
finish
