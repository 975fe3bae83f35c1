#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon_ain.sh OCRA: `ocra daemon` over the chain recorded from a real AIN node, served by
# tests/lib/ain_node.py (an AIN node cannot be installed here). Only signer A is trusted, so
# the scenario's writes by B are rejected by the watcher; the hostile spec and the removal are
# rejected by validation; the others are validated, planned and wait at the first stage not
# wired yet. Every rejected event is reported once by a signed SET_VALUE at
# /apps/ocra_demo/ocra/runs/<shortid> (checked in the node's request log: the ref, the event
# id and status in the value, one send per event, after an ain_get of the same path), and a
# restart sends nothing again. SIGHUP reloads the file, and keeps the running configuration
# when the new one is invalid. A report whose transaction the node no longer knows (the
# node's forget_sent control) is reopened by the watcher and sent again, once. Section 2,
# over the synthesized blocks after the recording (writes above the models): a node that
# refuses reports with 10905 (the free-tier state budget) gets one transaction per report,
# each event dead-lettered at once with the node's message and counted in /metrics; then
# 10704 (a full pool) is retried and `ocra retry` stores every report once.
set -u
ocra=${1:?usage: it_daemon_ain.sh PATH_TO_OCRA}
ocra=$(cd "$(dirname "$ocra")" && pwd)/$(basename "$ocra")
cd "$(dirname "$0")/.."
. tests/lib/ain_node.sh
command -v python3 >/dev/null || { echo "python3 is needed for the recorded-traffic server"; exit 77; }

tmp=$(mktemp -d /tmp/ocra-it-daemon-ain.XXXXXX)
daemon_pid=
cleanup() {
    [ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    ain_node_stop
    [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
. tests/lib/check.sh

A=0x22fF60c8E1bEdeED288BBA0c4b1344B1A6115aB2
ain_node_start "$tmp" || exit 1
# The operator's key (Anvil's public test key 2; the recorded node accepts any signature).
echo 5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a >"$tmp/operator.key"
chmod 600 "$tmp/operator.key"
cat >"$tmp/ocra.yaml" <<EOF
journal:
  path: "$tmp/journal.db"
ain:
  rpc: "$AIN_RPC_URL"
  from_block: 0
  poll_interval_ms: 100
  key_file: "$tmp/operator.key"
  watch:
    - path: "/apps/ocra_demo/models/\$name"
      allow: ["$A"]
    - path: "/apps/ocra_demo/model/version"
      allow: ["$A"]
spec:
  http_hosts: ["127.0.0.1:8099"]
artifact:
  allow_hosts: ["127.0.0.1"]
daemon:
  workers: 2
  poll_ms: 100
  report_wait_ms: 5000
EOF

events() { "$ocra" -c "$tmp/ocra.yaml" events "$@"; }
has_n() { [ "$(events --status "$1" | wc -l)" -eq "$2" ]; }
settled() { [ "$(events | wc -l)" -eq 9 ] && [ "$(($(events --status reported | wc -l) + $(events --status dead | wc -l)))" -eq 9 ]; }

"$ocra" daemon -c "$tmp/ocra.yaml" 2>"$tmp/daemon.log" &
daemon_pid=$!
wait_until "the 9 events settled" settled
kill -TERM "$daemon_pid"
wait "$daemon_pid"
rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok sigterm_exits_0 || fail sigterm_exits_0 "exit $rc; log: $(tail -5 "$tmp/daemon.log")"

events >"$tmp/events.jsonl"
curl -s "$AIN_CTL_URL/log" >"$tmp/node1.json"
python3 - "$tmp/events.jsonl" "$tmp/node1.json" <<'PY'
import hashlib, json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
log = json.load(open(sys.argv[2]))
reported = [e for e in events if e["pipeline"]["status"] == "reported"]
waiting = [e for e in events if e["pipeline"]["state"] == "dead"]
assert len(events) == 9, len(events)
assert len(reported) >= 3 and len(waiting) >= 3, (len(reported), len(waiting))
assert all(e["pipeline"]["outcome"] == "rejected" for e in reported)
assert all(e["pipeline"]["status"] == "planned" and e["pipeline"]["stage"] == "toolchain" and "build.registry" in e["pipeline"]["error"] for e in waiting)
assert any(e["status"] == "rejected" for e in reported), "a watcher rejection is reported"
assert any(e["status"] == "accepted" for e in reported), "a validation rejection is reported"
sends = [r for r in log if r["method"] == "ain_sendSignedTransaction"]
gets = [r for r in log if r["method"] == "ain_get"]
refs = {}
for r in sends:
    op = r["params"]["tx_body"]["operation"]
    assert op["type"] == "SET_VALUE", op
    refs.setdefault(op["ref"], []).append(op["value"])
for e in reported:
    ref = "/apps/ocra_demo/ocra/runs/" + hashlib.sha256(e["event"].encode()).hexdigest()[:12]
    assert len(refs.get(ref, [])) == 1, (e["event"], ref, refs.get(ref))
    v = refs[ref][0]
    assert v["event"] == e["event"] and v["status"] == "rejected" and v["reason"], v
    assert any(g["params"].get("ref") == ref for g in gets), ("checked first", ref)
assert len(sends) == len(reported), (len(sends), len(reported))
print(f"  {len(reported)} rejected events reported by one SET_VALUE each, {len(waiting)} planned and dead-lettered at toolchain (no registry here)")
PY
[ $? -eq 0 ] && ok rejected_events_reported_once_by_set_value || fail rejected_events_reported_once_by_set_value "see above"

# A restart finds every report done: nothing is sent again.
"$ocra" daemon -c "$tmp/ocra.yaml" 2>>"$tmp/daemon.log" &
daemon_pid=$!
started_twice() { [ "$(grep -c "daemon started" "$tmp/daemon.log")" -ge 2 ]; }
wait_until "restarted daemon" started_twice
# SIGHUP: a broken file keeps the running configuration; a good one is taken
cp "$tmp/ocra.yaml" "$tmp/good.yaml"
printf 'daemon:\n  workers: none\n' >"$tmp/ocra.yaml"
kill -HUP "$daemon_pid"
wait_until "bad reload refused" grep -q "keeping the running configuration" "$tmp/daemon.log"
grep -q "reload: .*daemon.workers" "$tmp/daemon.log" && ok sighup_bad_config_named_and_kept ||
    fail sighup_bad_config_named_and_kept "$(tail -3 "$tmp/daemon.log")"
cp "$tmp/good.yaml" "$tmp/ocra.yaml"
kill -HUP "$daemon_pid"
wait_until "good reload" grep -q "reload: $tmp/ocra.yaml loaded" "$tmp/daemon.log" &&
    ok sighup_reloads_the_file || fail sighup_reloads_the_file "$(tail -3 "$tmp/daemon.log")"
kill -0 "$daemon_pid" 2>/dev/null && ok daemon_survives_reloads || fail daemon_survives_reloads "gone"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
curl -s "$AIN_CTL_URL/log" >"$tmp/node2.json"
n1=$(python3 -c 'import json,sys; print(sum(r["method"] == "ain_sendSignedTransaction" for r in json.load(open(sys.argv[1]))))' "$tmp/node1.json")
n2=$(python3 -c 'import json,sys; print(sum(r["method"] == "ain_sendSignedTransaction" for r in json.load(open(sys.argv[1]))))' "$tmp/node2.json")
[ "$n1" -eq "$n2" ] && ok restart_sends_nothing_again || fail restart_sends_nothing_again "$n1 then $n2 sends"
if grep -q 5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a "$tmp/daemon.log"; then
    fail key_never_logged "key in the log"; else ok key_never_logged; fi

# A report whose transaction the node no longer holds (a node that restarted and replaced the
# block that held it): the watcher finds it gone, reopens the report stage, and the report is
# sent again, once; the other reports, still on the chain, are left alone.
q() { python3 -c 'import sqlite3, sys; print("\n".join("|".join(map(str, r)) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2], sys.argv[3:])))' "$tmp/journal.db" "$@"; }
ev=$(q "SELECT event_id FROM pipeline WHERE status = 'reported' ORDER BY seq LIMIT 1")
tx=$(q "SELECT json_extract(output, '\$.tx') FROM stages WHERE event_id = ? AND stage = 'report' AND outcome = 'done' ORDER BY id DESC LIMIT 1" "$ev")
ain_ctl "{\"forget_sent\": [\"$tx\"], \"reset_log\": true}" >/dev/null ||
    fail node_forgets_the_report "no sent transaction $tx"
# wait_q WANT SQL [ARGS...]: polls the journal in one process, every 0.1 s and at most 600
# times (a bound against a hang), until SQL answers WANT
wait_q() {
    python3 - "$tmp/journal.db" "$@" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10)
want, sql, args, got = sys.argv[2], sys.argv[3], sys.argv[4:], None
for _ in range(600):
    got = "\n".join("|".join(map(str, r)) for r in db.execute(sql, args))
    if got == want:
        sys.exit(0)
    time.sleep(0.1)
print("  gave up waiting: %s %s answers %r, not %r" % (sql, args, got, want), file=sys.stderr)
sys.exit(1)
PY
}
"$ocra" daemon -c "$tmp/ocra.yaml" 2>>"$tmp/daemon.log" &
daemon_pid=$!
wait_q 1 "SELECT count(*) > 0 FROM stages WHERE event_id = ? AND stage = 'report' AND outcome = 'reopened'" "$ev" &&
    wait_q "reported|done|done" "SELECT status, state, (SELECT outcome FROM stages WHERE event_id = ?1 AND stage = 'report' ORDER BY id DESC LIMIT 1) FROM pipeline WHERE event_id = ?1" "$ev"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
curl -s "$AIN_CTL_URL/log" >"$tmp/node3.json"
q "SELECT outcome, json_extract(output, '\$.tx') FROM stages WHERE event_id = ? AND stage = 'report' ORDER BY id" "$ev" >"$tmp/report-stages"
python3 - "$tmp/node3.json" "$tmp/report-stages" "$ev" "$tx" <<'PY'
import hashlib, json, sys
log, ev, tx = json.load(open(sys.argv[1])), sys.argv[3], sys.argv[4]
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[2])]
outcomes = [o for o, _ in rows]
# the first report done with the forgotten transaction, reopened, done again with a new one
assert "reopened" in outcomes and "done" in outcomes[:outcomes.index("reopened")], outcomes
assert outcomes[-1] == "done" and rows[outcomes.index("reopened") - 1][1] == tx, rows
assert rows[-1][1].startswith("0x") and rows[-1][1] != tx, (rows[-1], tx)
sends = [r["params"]["tx_body"]["operation"] for r in log if r["method"] == "ain_sendSignedTransaction"]
ref = "/apps/ocra_demo/ocra/runs/" + hashlib.sha256(ev.encode()).hexdigest()[:12]
assert [s["ref"] for s in sends] == [ref], ("one send, for this event only", [s["ref"] for s in sends])
assert sends[0]["value"]["event"] == ev and sends[0]["value"]["status"] == "rejected", sends[0]
PY
[ $? -eq 0 ] && ok forgotten_report_sent_again_once || fail forgotten_report_sent_again_once "see above; $(tail -3 "$tmp/daemon.log")"
grep -q "event=$ev report tx $tx is no longer on the chain" "$tmp/daemon.log" && ok forgotten_report_reopen_logged ||
    fail forgotten_report_reopen_logged "$(grep -i 'no longer' "$tmp/daemon.log" | tail -3)"

# 2. The chain with the synthesized blocks after the recording (tests/data/ain/synth.jsonl:
#    writes above the models), and a node that refuses every report for the free-tier state
#    budget, as ain-blockchain 1.6.0 does once the free tier is full (db/index.js
#    checkStateGasBudgets: code 10905 and its message). A permanent code: each report is sent
#    once and its event dead-lettered at once with the node's message, counted in /metrics;
#    the removals by the writes above the models reach the report stage as removals. Then the
#    operator frees room: the node answers 10704 (a full pool: transient, retried) for a while,
#    and `ocra retry` sends each report again, once, in a shape the node stores.
ain_node_stop
ain_node_start "$tmp" --extend tests/data/ain/synth.jsonl || exit 1
. tests/lib/port.sh
api_port=$(free_port) || exit 1
cat >"$tmp/ext.yaml" <<EOF
journal:
  path: "$tmp/ext.db"
ain:
  rpc: "$AIN_RPC_URL"
  from_block: 0
  poll_interval_ms: 100
  key_file: "$tmp/operator.key"
  watch:
    - path: "/apps/ocra_demo/models/\$name"
      allow: ["$A"]
    - path: "/apps/ocra_demo/model/version"
      allow: ["$A"]
    - path: "/apps/\$app/models/\$name"
      allow: ["$A"]
spec:
  http_hosts: ["127.0.0.1:8099"]
api:
  listen: "127.0.0.1:$api_port"
daemon:
  workers: 2
  poll_ms: 100
  report_wait_ms: 5000
  max_attempts: 1000
  retry_base_ms: 100
  retry_max_ms: 200
EOF
ext() { "$ocra" -c "$tmp/ext.yaml" events "$@"; }
ext_settled() {
    [ "$(ext | wc -l)" -eq 31 ] &&
        [ "$(($(ext --status reported | wc -l) + $(ext --status dead | wc -l)))" -eq 31 ]
}
budget='Exceeded state budget limit for free tier (100215 > 100000).\nFor more information see https://docs.ainetwork.ai/ain-blockchain/staking'
ain_ctl "{\"reset_log\": true, \"send_code\": 10905, \"send_message\": \"$budget\"}" >/dev/null
"$ocra" daemon -c "$tmp/ext.yaml" 2>"$tmp/ext.log" &
daemon_pid=$!
wait_until "the 31 events of the extended chain settled" ext_settled
curl -s "http://127.0.0.1:$api_port/metrics" >"$tmp/metrics1.txt"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
ext >"$tmp/ext1.jsonl"
curl -s "$AIN_CTL_URL/log" >"$tmp/ext-node1.json"
python3 - "$tmp/ext1.jsonl" "$tmp/ext-node1.json" "$tmp/ext.db" "$tmp/metrics1.txt" >"$tmp/at_report.txt" <<'PY'
import json, re, sqlite3, sys
events = [json.loads(l) for l in open(sys.argv[1])]
log = json.load(open(sys.argv[2]))
db = sqlite3.connect(sys.argv[3])
metrics = open(sys.argv[4]).read()
sends = [r for r in log if r["method"] == "ain_sendSignedTransaction"]
at_report = [e for e in events if e["pipeline"]["state"] == "dead" and e["pipeline"]["stage"] == "report"]
assert len(events) == 31, len(events)
# at least the 10 removals, k2's write below a removed model, B's write and the hostile spec
# (specs the operator's policy refuses, such as loopback artifact URIs, are rejected too)
assert len(at_report) >= 13, len(at_report)
for e in at_report:
    err = e["pipeline"]["error"]
    assert "node code 10905 (permanent: sending it again cannot help): " in err and "\n" not in err, err
    assert "Exceeded state budget limit for free tier (100215 > 100000). For more" in err, err
    tries = db.execute("SELECT count(*) FROM stages WHERE event_id = ? AND stage = 'report'",
                       (e["event"],)).fetchone()[0]
    assert tries == 1, (e["event"], tries)
assert len(sends) == len(at_report), (len(sends), len(at_report))
refs = [r["params"]["tx_body"]["operation"]["ref"] for r in sends]
assert len(set(refs)) == len(refs), "a report was sent twice"
m = re.search(r'^ocra_chain_tx_refusals_total\{chain="ain",code="10905",kind="permanent"\} (\d+)$',
              metrics, re.M)
assert m and int(m.group(1)) == len(sends), m and m.group(0)
# the removals by the writes above the models reach the report stage as removals
removed = [e for e in at_report if e["removed"]]
assert len(removed) == 10, len(removed)
k2 = [e for e in at_report if e["event"].endswith(
    "0xc8902a5fe3c03af4caf3c54dee518b921f71c36eed654380a0c27adf5a71381a:0")]
assert k2 and k2[0]["spec"] == {"modelVersion": "2.0.0"}, k2
for e in at_report:
    print(e["event"])
print(f"  {len(sends)} reports refused with 10905, each sent once and dead-lettered at once;"
      f" {len(removed)} of them removals", file=sys.stderr)
PY
[ $? -eq 0 ] && ok permanent_node_code_dead_letters_at_once_with_its_message ||
    fail permanent_node_code_dead_letters_at_once_with_its_message "see above; $(tail -3 "$tmp/ext.log")"

# The operator stakes (or frees state); the node's pool is full for a while (10704).
if [ ! -s "$tmp/at_report.txt" ]; then
    fail transient_node_code_is_retried_and_ocra_retry_resends "no event dead at report to retry"
    check_done
    exit 1
fi
ain_ctl '{"reset_log": true, "send_code": 10704, "send_message": "Tx pool does NOT have enough room (1000)."}' >/dev/null
while read -r id; do
    "$ocra" -c "$tmp/ext.yaml" retry "$id" >/dev/null || fail ocra_retry "$id"
done <"$tmp/at_report.txt"
"$ocra" daemon -c "$tmp/ext.yaml" 2>>"$tmp/ext.log" &
daemon_pid=$!
retried() {
    python3 - "$tmp/ext.db" <<'PY'
import sqlite3, sys
n = sqlite3.connect(sys.argv[1]).execute(
    "SELECT count(*) FROM stages WHERE stage = 'report' AND outcome = 'retry'"
    " AND error LIKE '%node code 10704%'").fetchone()[0]
sys.exit(0 if n > 0 else 1)
PY
}
wait_until "a report retried after 10704" retried
ain_ctl '{"send_code": 0}' >/dev/null
all_reported() { ! ext --status dead | grep -q '"stage":"report"' && ext_settled; }
wait_until "every report sent" all_reported
curl -s "http://127.0.0.1:$api_port/metrics" >"$tmp/metrics2.txt"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
ext >"$tmp/ext2.jsonl"
curl -s "$AIN_CTL_URL/log" >"$tmp/ext-node2.json"
python3 - "$tmp/ext2.jsonl" "$tmp/ext-node2.json" "$tmp/at_report.txt" "$tmp/metrics2.txt" <<'PY'
import json, re, sys
events = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    events[e["event"]] = e
log = json.load(open(sys.argv[2]))
ids = [l.strip() for l in open(sys.argv[3]) if l.strip()]
metrics = open(sys.argv[4]).read()
sends = [r for r in log if r["method"] == "ain_sendSignedTransaction"]
for i in ids:
    p = events[i]["pipeline"]
    assert p["status"] == "reported" and p["state"] == "done", (i, p)
m = re.search(r'^ocra_chain_tx_refusals_total\{chain="ain",code="10704",kind="transient"\} (\d+)$',
              metrics, re.M)
assert m and int(m.group(1)) >= 1, "transient refusals counted"
stored = len(sends) - int(m.group(1))
assert stored == len(ids), (stored, len(ids))
print(f"  10704 (transient) retried {m.group(1)} times, then {len(ids)} reports stored, one each",
      file=sys.stderr)
PY
[ $? -eq 0 ] && ok transient_node_code_is_retried_and_ocra_retry_resends ||
    fail transient_node_code_is_retried_and_ocra_retry_resends "see above"

check_done
