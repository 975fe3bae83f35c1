#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon_crash.sh OCRA OCRA_AGENT: crashes are not attempts. `ocra daemon` with the default
# daemon.max_attempts and daemon.max_crashes, and a lease of 600 s, against the pipeline's real
# services (tests/lib/pipeline.sh: a private dockerd, docker-registry, anvil, the package index,
# the artifact server). After one event that builds the toolchain, a stream of weight-only
# updates (each its own model: every one must complete) is published, and after each publish
# the daemon is SIGKILLed at a random moment (0-3 s later, once it holds a claim) and restarted
# at once: 8 events, 8 kills by default (the third argument sets the number of events).
# Checked:
#  - each restart takes over its dead predecessor's claims at once: they are gone from the
#    journal long before their 600 s lease could run out (a bounded wait, not a timing check),
#    and the restarted daemon's log says so; /metrics counts them (kind "crash");
#  - nothing is dead-lettered; every event is reported once, completed, with one container and
#    one evt-* image; each stage done exactly once per event;
#  - a killed attempt is not an attempt: the attempt cut short (`abandoned`) is made again
#    under the same number, so every stage's attempt numbers count only its real retries.
# Exits 77 (skip) with the reason when docker, the registry or the EVM tools cannot run here.
# Stops everything it started, by PID.
set -u
ocra=${1:?usage: it_daemon_crash.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT [EVENTS]}
agent=${2:?usage: it_daemon_crash.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT [EVENTS]}
n=${3:-8}
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

# shellcheck disable=SC2317 # called by the EXIT trap
pipeline_test_cleanup() { pipeline_daemon_kill; }
pipeline_test_begin it_daemon_crash ocra-crash
api_port=$(registry_free_port)
# max_attempts and max_crashes: the defaults (8 and 5). The lease is long: only a takeover at
# once lets an event go on after a restart.
pipeline_config "$tmp/ocra.yaml" "$contract" "$registry/ocra/crash" "$agent" "$api_port" \
    "daemon:
  workers: 2
  lease_ms: 600000
  retry_base_ms: 300
  retry_max_ms: 2000
  poll_ms: 200"
ok services

start_daemon() {
    echo "--- start $(date -u +%T.%N)" >>"$tmp/daemon.log"
    "$ocra" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
    daemon_pid=$!
}
weights() {
    mkdir -p "$tmp/art/$1"
    head -c "${2:-100000}" /dev/urandom >"$tmp/art/$1/model.safetensors"
    sha=$(sha256sum "$tmp/art/$1/model.safetensors" | cut -d' ' -f1)
    size=$(stat -c %s "$tmp/art/$1/model.safetensors")
}
publish() { # NAME VERSION DIR: prints the tx hash
    pipeline_spec "$tmp/spec.json" "$1" "$2" "$3/model.safetensors" "$sha" "$size"
    "$ocra" -c "$tmp/ocra.yaml" publish --chain evm --key-file "$tmp/keys/publisher.key" \
        "$tmp/spec.json" 2>>"$tmp/publish.err"
}
events() { "$ocra" -c "$tmp/ocra.yaml" events 2>/dev/null; }
# held PID: the journal's claims held by the workers of daemon PID (named w<i>@<host>:<pid>)
held() {
    sqlite3 -cmd ".timeout 30000" "$tmp/journal.db" \
        "SELECT count(*) FROM pipeline WHERE state = 'claimed' AND claimed_by LIKE '%:$1'"
}
none_held() { [ "$(held "$1")" -eq 0 ]; }
some_held() { [ "$(held "$1")" -gt 0 ]; }

# --- one event first: it builds the toolchain every later one reuses ------------------------
start_daemon
weights w0
tx=$(publish crash-warm 1.0.0 w0) || { fail publish "$(tail -3 "$tmp/publish.err")"; pipeline_finish "$tmp"; }
id=$(pipeline_wait_event "$ocra" "$tmp/ocra.yaml" "$tx" "$daemon_pid" 900)
[ -n "$id" ] && [ "$(pipeline_get "$ocra" "$tmp/ocra.yaml" "$id" 'p.get("outcome")')" = completed ] &&
    ok warm_up_event_completed || { fail warm_up_event_completed "$id"; pipeline_finish "$tmp"; }
before=$(events | wc -l)

# --- the crash loop ---------------------------------------------------------------------------
kills=0 with_claims=0 taken_at_once=0 published=0
: >"$tmp/crash.tx"
# kill_restart: SIGKILL once the daemon holds a claim (a random moment of its work; at most
# 20 s later: then it is killed idle), restart at once, and wait until its claims have been
# taken over (or the bound: about a minute, far below the 600 s lease)
kill_restart() {
    local old=$daemon_pid h _
    for _ in $(seq 200); do some_held "$old" && break; sleep 0.1; done
    pipeline_daemon_kill
    kills=$((kills + 1))
    h=$(held "$old") # exact: the process is gone and reaped
    start_daemon
    last_held=$h
    [ "$h" -gt 0 ] || return 0
    with_claims=$((with_claims + 1))
    if wait_until "the claims of killed daemon $old taken over" none_held "$old"; then
        taken_at_once=$((taken_at_once + 1))
    else # the rest would only wait for the lease
        fail restart_takes_over_at_once "daemon $old's $h claims still held after its restart (lease 600 s)"
        pipeline_finish "$tmp"
    fi
}
last_held=0
for i in $(seq 1 "$n"); do
    weights "c$i"
    if t=$(publish "crash-m$i" 1.0.0 "c$i"); then
        echo "$t" >>"$tmp/crash.tx"
        published=$((published + 1))
    fi
    sleep "$((RANDOM % 3)).$((RANDOM % 10))"
    kill_restart
done
[ "$with_claims" -gt 0 ] && [ "$taken_at_once" -eq "$with_claims" ] &&
    ok restart_takes_over_at_once ||
    fail restart_takes_over_at_once "$taken_at_once of $with_claims restarts took their predecessor's claims over"
grep -q "took over claims=.* of this machine's dead processes at once worker=start" "$tmp/daemon.log" &&
    ok restart_logs_the_takeover || fail restart_logs_the_takeover "$(grep -c 'took over' "$tmp/daemon.log") lines"
# the running daemon counted the claims it took over at its start
counted() {
    curl -s "http://127.0.0.1:$api_port/metrics" >"$tmp/metrics" &&
        grep -q "^ocra_stage_takeovers_total{kind=\"crash\"} $last_held\$" "$tmp/metrics"
}
if [ "$last_held" -gt 0 ]; then
    wait_until "the takeovers in /metrics" counted && ok takeovers_counted_in_metrics ||
        fail takeovers_counted_in_metrics "want $last_held: $(grep takeovers "$tmp/metrics")"
fi

# every published event journaled and in the pipeline, and every one terminal
all_terminal() {
    [ "$(sqlite3 -cmd ".timeout 30000" "$tmp/journal.db" "SELECT (SELECT count(*) FROM pipeline) >= $((before + published)) AND NOT EXISTS (SELECT 1 FROM pipeline WHERE NOT ((status = 'reported' AND state = 'done') OR state = 'dead'))")" = 1 ]
}
for _ in $(seq 120); do all_terminal && break; sleep 2; done
kill -TERM "$daemon_pid" && wait "$daemon_pid"
daemon_pid=
events >"$tmp/final.jsonl"
evm_reports "$contract" >"$tmp/reports"
docker ps -a --format '{{.Label "io.ocra.event-id"}}' >"$tmp/containers"
for i in $(seq 1 "$n"); do
    curl -s "$REGISTRY_URL/v2/ocra/crash/crash-m$i/tags/list"
    echo
done | python3 -c '
import json, sys
for l in sys.stdin:
    if l.strip():
        for t in json.loads(l).get("tags") or []:
            if t.startswith("evt-"): print(t)' >"$tmp/evt-tags"
python3 - "$tmp/final.jsonl" "$tmp/reports" "$tmp/containers" "$tmp/evt-tags" "$tmp/crash.tx" \
    "$tmp/journal.db" "$before" "$published" "$kills" >"$tmp/crash.out" <<'PY'
import collections, hashlib, json, sqlite3, sys
events = [json.loads(l) for l in open(sys.argv[1])]
reports = collections.Counter(l.split(" ", 1)[0].lower() for l in open(sys.argv[2]).read().splitlines())
containers = collections.Counter(l.strip() for l in open(sys.argv[3]) if l.strip())
tags = collections.Counter(l.strip() for l in open(sys.argv[4]) if l.strip())
txs = set(l.strip().lower() for l in open(sys.argv[5]) if l.strip())
db = sqlite3.connect(sys.argv[6])
before, published, kills = int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
ok = True
def check(name, cond, why):
    global ok
    print(("ok " if cond else "FAIL ") + name + ("" if cond else ": " + str(why)[:600]))
    ok = ok and bool(cond)
mine = [e for e in events if e.get("txHash", "").lower() in txs]
check("crash_no_event_lost", len(mine) == published and len(events) == before + published,
      "journal %d (%d of the loop), published %d" % (len(events), len(mine), published))
dead = [e for e in events if e["pipeline"]["state"] == "dead"]
check("crash_nothing_dead_lettered", not dead, [(e["event"], e["pipeline"]) for e in dead][:3])
bad = [e for e in mine if not (e["pipeline"]["status"] == "reported" and e["pipeline"]["state"] == "done"
                               and e["pipeline"].get("outcome") == "completed")]
check("crash_every_event_completed", not bad, [e["pipeline"] for e in bad][:3])
key = lambda i: "0x" + hashlib.sha256(i.encode()).hexdigest()
short = lambda i: hashlib.sha256(i.encode()).hexdigest()[:12]
bad_rep = [e["event"] for e in mine if reports[key(e["event"])] != 1]
check("crash_one_report_per_event", not bad_rep, [(i, reports[key(i)]) for i in bad_rep][:5])
bad_img = [e["event"] for e in mine if tags["evt-" + short(e["event"])] != 1]
check("crash_one_image_per_event", not bad_img, bad_img[:5])
bad_run = [e["event"] for e in mine if containers[e["event"]] != 1]
check("crash_one_container_per_event", not bad_run, [(i, containers[i]) for i in bad_run][:5])
done = collections.Counter(db.execute("SELECT event_id, stage FROM stages WHERE outcome = 'done'").fetchall())
twice = [k for k, c in done.items() if c != 1]
check("crash_every_stage_done_once", not twice, twice[:5])
# an attempt cut short by a kill is made again under its number: at each stage of each event
# the last attempt is 1 + its retries, whatever the kills
rows = collections.defaultdict(list)
for ev, stage, attempt, outcome in db.execute(
        "SELECT event_id, stage, attempt, outcome FROM stages WHERE attempt > 0 ORDER BY id"):
    rows[(ev, stage)].append((attempt, outcome))
burnt = [(k, r) for k, r in rows.items()
         if max(a for a, _ in r) != 1 + sum(1 for _, o in r if o == "retry")]
abandoned = sum(1 for r in rows.values() for _, o in r if o == "abandoned")
check("crash_kills_are_not_attempts", not burnt, burnt[:3])
check("crash_kills_cut_stages_short", abandoned > 0, "no attempt was abandoned: the kills hit nothing")
print("  crash loop: %d SIGKILLs, %d events published, all completed and reported once; %d "
      "attempts cut short by a kill, each taken over and made again under its number" % (
      kills, published, abandoned))
PY
while read -r word rest; do
    case $word in
    ok) ok "$rest" ;;
    FAIL) fail "${rest%%:*}" "${rest#*: }" ;;
    *) echo "$word $rest" ;;
    esac
done <"$tmp/crash.out"
pipeline_finish "$tmp"
