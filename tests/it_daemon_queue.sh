#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon_queue.sh OCRA OCRA_AGENT: the scheduler queue (docs/RUNNING.md, Queue) on a cluster
# smaller than the demand, against real services on 127.0.0.1 (tests/lib/pipeline.sh: a
# private dockerd, a docker-registry, anvil with the ModelRegistry contract, the offline
# package index and an artifact server). The inventory is one configured node of 2 CPUs: each
# CPU-only inference workload asks for one, a training one for two. Two publishers (keys 0 and
# 2) are two owners.
#  1. A training blocker holds the node (its workload waits for /tmp/ocra-stop); twenty events, fifteen
#     by publisher A then five by B (sched.queue.priorities: B=10, policy fifo), all queue:
#     `ocra queue --json` and /api/v1/queue list 20 with positions 1..20, owner, priority and
#     a reason; the dashboard's queue view lists the same 20 in the same order (headless
#     chromium); /metrics ocra_sched_queue_depth 20. The blocker stopped: all twenty start two
#     at a time as the room frees, B's five first (priority) then A's in the order they queued,
#     all complete and are reported, none dead-lettered, no allocate attempt retried or
#     counted twice; ocra_queue_wait_seconds_count 20.
#  2. Fair share (policy fair, by SIGHUP): A runs two blockers, then queues A3, A4,
#     then B queues B1, B2. One of A's blockers stopped: the free CPU goes to B1 (B holds
#     nothing, A holds one) though A3 queued first.
#  3. EASY backfill (policy backfill; needs workload.maxDuration in the spec, skipped when the
#     spec validator does not take it yet): R (maxDuration 600) runs; H (training: both CPUs)
#     waits for R and holds the reservation; L (1 CPU, maxDuration 3600) would end after it and
#     waits (reason reserved); S (1 CPU, maxDuration 30) starts at once beside the blocked head.
# Exits 77 (skip) with the reason when docker, the registry or the EVM tools cannot run here.
# Stops everything it started, by PID.
set -u
ocra=${1:?usage: it_daemon_queue.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
agent=${2:?usage: it_daemon_queue.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
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
. "$here/lib/chromium.sh"

pipeline_test_begin it_daemon_queue ocra-queue
api_port=$(registry_free_port)
"$CAST" send -q --rpc-url "$EVM_RPC_URL" --private-key "$EVM_KEY0" "$contract" \
    "setPublisher(address,bool)" "$EVM_ADDR2" true >/dev/null ||
    { fail publisher_b "setPublisher failed"; finish; }
addr_b=$(printf '%s' "$EVM_ADDR2" | tr 'A-F' 'a-f')
# config CPUS POLICY: the daemon's configuration, one node of CPUS CPUs
config() {
    pipeline_config "$tmp/ocra.yaml" "$contract" "$registry/ocra/q" "$agent" "$api_port" \
        "daemon:
  workers: 4
  retry_base_ms: 500
  retry_max_ms: 5000
  poll_ms: 200
  lease_ms: 5000
sched:
  queue:
    policy: $2
    priorities: [\"$addr_b=10\"]"
    python3 - "$tmp/ocra.yaml" "$1" "$EVM_ADDR0" "$EVM_ADDR2" <<'PY'
import re, sys
p, cpus, a, b = sys.argv[1:]
s = open(p).read()
s = re.sub(r"(?m)^  local: true.*$",
           "  local: false\n  nodes:\n    - name: q-node\n      cpus: %s\n      memory_mib: 16384" % cpus,
           s, count=1)
s = s.replace('allow: ["%s"]' % a, 'allow: ["%s", "%s"]' % (a, b), 1)
open(p, "w").write(s)
PY
}
config 2 fifo || { fail config "could not write the configuration"; finish; }
ok services

mkdir -p "$tmp/art/w"
head -c 50000 /dev/urandom >"$tmp/art/w/model.safetensors"
sha=$(sha256sum "$tmp/art/w/model.safetensors" | cut -d' ' -f1)
wait_cmd="while [ ! -e /tmp/ocra-stop ]; do sleep 0.2; done"
# spec NAME TYPE SHELL_COMMAND [MAX_DURATION]: a CPU-only spec on the local base image
spec() {
    local extra=
    [ -n "${4:-}" ] && extra=", \"maxDuration\": $4"
    cat <<JSON
{"name": "$1", "modelVersion": "1.0.0", "baseImage": "$OCRA_BASE_IMAGE",
 "toolsAndLibraries": {"ocra-smoke": "1.0.0"},
 "artifact": {"uri": "http://127.0.0.1:$ARTIFACTS_PORT/w/model.safetensors", "sha256": "$sha",
              "size": 50000},
 "workload": {"type": "$2", "gpus": 0, "command": ["sh", "-c", "$3"]$extra}}
JSON
}
# publish KEYVAR NAME TYPE SHELL_COMMAND [MAX_DURATION]: sent without waiting for the receipt,
# each key's nonces counted here (the node would take a second send of one nonce as a
# replacement)
nonce_EVM_KEY0=$("$CAST" nonce --block pending --rpc-url "$EVM_RPC_URL" "$EVM_ADDR0")
nonce_EVM_KEY2=$("$CAST" nonce --block pending --rpc-url "$EVM_RPC_URL" "$EVM_ADDR2")
publish() {
    local nv=nonce_$1
    "$CAST" send --async --nonce "${!nv}" --rpc-url "$EVM_RPC_URL" --private-key "${!1}" \
        "$contract" "publish(string,string)" "$2" "$(spec "$2" "$3" "$4" "${5:-}")" >/dev/null ||
        return 1
    printf -v "$nv" '%d' $((${!nv} + 1))
}
q() { sqlite3 "$tmp/journal.db" "$1" 2>/dev/null; }
# id NAME: the event id of the model NAME (its path ends in /NAME)
id() { q "SELECT id FROM events WHERE path LIKE '%/$1' ORDER BY seq LIMIT 1"; }
state() { q "SELECT coalesce(p.status, '') || ' ' || p.state FROM pipeline p JOIN events e ON e.id = p.event_id WHERE e.path LIKE '%/$1'"; }
queued_n() { q "SELECT count(*) FROM pipeline WHERE state = 'queued'"; }
queued_is() { [ "$(queued_n)" -eq "$1" ]; }
# has_alloc NAME: model NAME's event has been placed (an allocation recorded)
has_alloc() { [ -n "$(q "SELECT 1 FROM allocations WHERE event_id = '$(id "$1")' LIMIT 1")" ]; }
container() { printf 'ocra-%s' "$(printf '%s' "$(id "$1")" | sha256sum | cut -c1-12)"; }
# running NAME: model NAME's workload container runs (its event id looked up each time)
running() {
    [ -n "$(id "$1")" ] && [ "$(docker inspect -f '{{.State.Running}}' "$(container "$1")" 2>/dev/null)" = true ]
}
stop_workload() { docker exec "$(container "$1")" touch /tmp/ocra-stop; }
api() { curl -s -H "Authorization: Bearer $(cat "$tmp/keys/api.token")" "http://127.0.0.1:$api_port$1"; }
metric() { api /metrics | awk -v want="$1" '$1 == want { print $2 }'; }
reported() { [ "$(state "$1")" = "reported done" ]; }
all_reported() {
    local n
    for n in "$@"; do reported "$n" || return 1; done
}
# alloc_order NAME...: the names in the order their allocations were recorded
alloc_order() {
    local n
    for n in "$@"; do
        printf '%s %s\n' "$(q "SELECT min(rowid) FROM allocations WHERE event_id = '$(id "$n")'")" "$n"
    done | sort -n | cut -d' ' -f2 | tr '\n' ' '
}
# queued_order NAME...: the names in the order they were first queued
queued_order() {
    local n
    for n in "$@"; do
        printf '%s %s\n' "$(q "SELECT min(id) FROM stages WHERE event_id = '$(id "$n")' AND outcome = 'queued'")" "$n"
    done | sort -n | cut -d' ' -f2 | tr '\n' ' '
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

"$ocra" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
daemon_pid=$!

# --- 1. twenty events on a node of one CPU ---------------------------------------------------
publish EVM_KEY0 blocker training "$wait_cmd" # both CPUs
wait_for "the blocker running" running blocker && ok blocker_running ||
    { fail blocker_running "$(state blocker)"; finish; }
names_a= names_b=
for i in $(seq -w 1 15); do
    publish EVM_KEY0 "qa$i" inference true && names_a="$names_a qa$i"
done
for i in $(seq -w 1 5); do
    publish EVM_KEY2 "qb$i" inference true && names_b="$names_b qb$i"
done
# shellcheck disable=SC2086 # word lists
set -- $names_a $names_b
wait_for "twenty queued" queued_is 20 && ok twenty_queued ||
    { fail twenty_queued "$(queued_n) queued: $(q "SELECT state, count(*) FROM pipeline GROUP BY 1")"; finish; }
"$ocra" -c "$tmp/ocra.yaml" queue --json >"$tmp/queue.json" 2>"$tmp/queue.err" &&
    python3 - "$tmp/queue.json" "$addr_b" <<'PY' && ok cli_queue_json || fail cli_queue_json "$(head -c 600 "$tmp/queue.json") $(cat "$tmp/queue.err")"
import json, sys
d = json.load(open(sys.argv[1]))
q = d["queued"]
assert d["policy"] == "fifo" and d["depth"] == 20, d
assert [e["position"] for e in q] == list(range(1, 21)), [e["position"] for e in q]
assert all(e["owner"] == sys.argv[2] and e["priority"] == 10 for e in q[:5]), q[:5]
assert all(e["priority"] == 0 and e["owner"] != sys.argv[2] for e in q[5:]), q[5]
assert all(e["reason"] and e["wait"] in ("room", "order", "priority") for e in q), q
assert all(e["waitedS"] >= 0 and e["queuedAt"] > 0 for e in q), q
PY
"$ocra" -c "$tmp/ocra.yaml" queue >"$tmp/queue.txt" 2>&1 && has cli_queue_text "$tmp/queue.txt" "policy fifo, 20 queued"
api /api/v1/queue >"$tmp/api_queue.json"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["depth"] == 20 and len(d["queued"]) == 20, d' \
    "$tmp/api_queue.json" && ok api_queue || fail api_queue "$(head -c 300 "$tmp/api_queue.json")"
# the dashboard's queue view, in headless chromium: one row per queued event, by position
if chromium_find; then
    chromium_load "$tmp/chromium" "http://127.0.0.1:$api_port/" --dump-dom >"$tmp/dash.html"
    python3 - "$tmp/dash.html" "$tmp/queue.json" <<'PY' && ok dashboard_queue_view || fail dashboard_queue_view "$(grep -o '<table id="queue".\{0,600\}' "$tmp/dash.html")"
import json, re, sys
html = open(sys.argv[1]).read()
table = html[html.index('<table id="queue"'):]
table = table[:table.index("</table>")]
rows = re.findall(r'<tr data-event="([^"]+)" data-wait="([a-z]+)"', table)
want = [e["event"] for e in json.load(open(sys.argv[2]))["queued"]]
assert [r[0] for r in rows] == want, (rows, want)
PY
else
    echo "dashboard: skipped: no chromium (scripts/install-deps installs the Debian package)"
fi
[ "$(metric ocra_sched_queue_depth)" = 20 ] && ok metric_queue_depth ||
    fail metric_queue_depth "ocra_sched_queue_depth $(metric ocra_sched_queue_depth)"
expected_order="$(queued_order $names_b)$(queued_order $names_a)"
stop_workload blocker || fail blocker_stopped "docker exec failed"
wait_for "twenty reported" all_reported "$@" && ok twenty_reported ||
    fail twenty_reported "$(q "SELECT status, state, count(*) FROM pipeline GROUP BY 1, 2")"
started_order=$(alloc_order "$@")
[ "$started_order" = "$expected_order" ] && ok started_in_documented_order ||
    fail started_in_documented_order "started: $started_order; expected: $expected_order"
[ "$(q "SELECT count(*) FROM pipeline WHERE state = 'dead'")" -eq 0 ] && ok none_dead_lettered ||
    fail none_dead_lettered "$(q "SELECT event_id, last_error FROM pipeline WHERE state = 'dead'")"
[ "$(q "SELECT count(*) FROM pipeline WHERE outcome = 'completed'")" -ge 21 ] && ok all_completed ||
    fail all_completed "$(q "SELECT outcome, count(*) FROM pipeline GROUP BY 1")"
[ "$(q "SELECT count(*) FROM stages WHERE stage = 'allocate' AND (outcome IN ('retry', 'dead') OR attempt > 1)")" -eq 0 ] &&
    ok attempts_not_burnt || fail attempts_not_burnt "$(q "SELECT event_id, outcome, attempt FROM stages WHERE stage = 'allocate' AND (outcome IN ('retry', 'dead') OR attempt > 1) LIMIT 5")"
[ "$(q "SELECT count(*) FROM stages WHERE stage = 'allocate' AND outcome = 'queued'")" -eq 20 ] &&
    ok one_queued_row_each || fail one_queued_row_each "$(q "SELECT count(*) FROM stages WHERE stage = 'allocate' AND outcome = 'queued'")"
[ "$(metric ocra_queue_wait_seconds_count)" = 20 ] && ok metric_wait_histogram ||
    fail metric_wait_histogram "ocra_queue_wait_seconds_count $(metric ocra_queue_wait_seconds_count)"

# --- 2. fair share across two owners ---------------------------------------------------------
config 2 fair
kill -HUP "$daemon_pid"
wait_until "the reload" grep -q "reload: .* loaded" "$tmp/daemon.log"
publish EVM_KEY0 fa1 inference "$wait_cmd"
publish EVM_KEY0 fa2 inference "$wait_cmd"
wait_for "A's two blockers running" eval 'running fa1 && running fa2' &&
    ok fair_a_holds_both || { fail fair_a_holds_both "$(state fa1) / $(state fa2)"; finish; }
publish EVM_KEY0 fa3 inference "sleep 0.5"
publish EVM_KEY0 fa4 inference "sleep 0.5"
wait_for "A's two queued" queued_is 2
publish EVM_KEY2 fb1 inference "sleep 0.5"
publish EVM_KEY2 fb2 inference "sleep 0.5"
wait_for "four queued" queued_is 4 && ok fair_four_queued ||
    fail fair_four_queued "$(queued_n) queued"
stop_workload fa1
wait_for "B1 started" has_alloc fb1 &&
    ok fair_b1_started || fail fair_b1_started "$(state fb1)"
order=$(alloc_order fa3 fb1)
[ "$(q "SELECT count(*) FROM allocations WHERE event_id = '$(id fa3)'")" -eq 0 ] || [ "$order" = "fb1 fa3 " ] &&
    ok fair_share_b_before_older_a || fail fair_share_b_before_older_a "order: $order"
stop_workload fa2
wait_for "the fair-share events reported" all_reported fa1 fa2 fa3 fa4 fb1 fb2 && ok fair_all_reported ||
    fail fair_all_reported "$(q "SELECT status, state, count(*) FROM pipeline GROUP BY 1, 2")"

# --- 3. EASY backfill -------------------------------------------------------------------------
spec probe inference "true" 600 >"$tmp/probe.json"
if ! "$ocra" -c "$tmp/ocra.yaml" spec check "$tmp/probe.json" >/dev/null 2>&1; then
    echo "backfill: skipped: this build's spec validator does not take workload.maxDuration yet"
else
    config 2 backfill
    kill -HUP "$daemon_pid"
    sleep 1
    publish EVM_KEY0 br inference "$wait_cmd" 600
    wait_for "R running" running br && ok backfill_r_running ||
        { fail backfill_r_running "$(state br)"; finish; }
    publish EVM_KEY0 bh training "sleep 0.5" 60
    wait_for "H queued" queued_is 1
    publish EVM_KEY0 bl inference "sleep 0.5" 3600
    wait_for "L queued" queued_is 2
    publish EVM_KEY0 bs inference "sleep 0.5" 30
    wait_for "S reported" reported bs && ok backfill_short_started_beside_blocked_head ||
        fail backfill_short_started_beside_blocked_head "$(state bs)"
    [ "$(state bh)" = "signed queued" ] && [ "$(state bl)" = "signed queued" ] &&
        ok backfill_long_and_head_wait || fail backfill_long_and_head_wait "H: $(state bh), L: $(state bl)"
    "$ocra" -c "$tmp/ocra.yaml" queue --json >"$tmp/queue3.json" &&
        python3 - "$tmp/queue3.json" "$(id bl)" "$(id bh)" <<'PY' && ok backfill_reasons || fail backfill_reasons "$(cat "$tmp/queue3.json")"
import json, sys
q = {e["event"]: e for e in json.load(open(sys.argv[1]))["queued"]}
assert q[sys.argv[2]]["wait"] == "reserved", q[sys.argv[2]]
assert q[sys.argv[3]]["head"] and q[sys.argv[3]]["estimatedStart"], q[sys.argv[3]]
PY
    stop_workload br
    wait_for "the backfill events reported" all_reported br bh bl bs && ok backfill_all_reported ||
        fail backfill_all_reported "$(q "SELECT status, state, count(*) FROM pipeline GROUP BY 1, 2")"
fi

daemon_alive && ok daemon_alive || fail daemon_alive "the daemon exited"
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok daemon_clean_exit || fail daemon_clean_exit "exit status $rc: $(grep -m3 -E 'Sanitizer|ERROR' "$tmp/daemon.log")"
finish
