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
# when the new one is invalid.
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

check_done
