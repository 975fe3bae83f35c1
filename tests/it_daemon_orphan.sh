#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon_orphan.sh: `ocra daemon` acts only on what the chain still says. Against a real
# anvil with the ModelRegistry contract (reorgs by evm_snapshot / evm_revert):
#  1. A publish reorged out after it passed the confirmation depth (a finality violation):
#     the event, stuck retrying its report (the operator is no reporter yet), is marked
#     orphaned by the watcher and stops at its next stage boundary: it ends orphaned (status and
#     outcome), its lineage has the `orphaned` attempt, nothing is reported for it on the new
#     chain (even once the operator may report), and /metrics counts
#     ocra_finality_violations_total{chain="evm:31337"}.
#  2. A report whose transaction a reorg dropped: the event was reported (one StatusReported
#     log), the block holding the report is reverted; the watcher finds the report's
#     transaction gone, reopens the report stage, and the report is sent again: one
#     StatusReported log on the canonical chain, the lineage shows `reopened` then `done`.
# Usage: it_daemon_orphan.sh path/to/ocra
set -uo pipefail
cd "$(dirname "$0")/.."
OCRA=$(realpath "$1")
source tests/lib/anvil.sh
evm_tools_or_skip
command -v sqlite3 >/dev/null || { echo "it_daemon_orphan: skipped: no sqlite3 (Debian package sqlite3)"; exit 77; }

tmp=$(mktemp -d /tmp/ocra-it-orphan.XXXXXX)
source tests/lib/check.sh
daemon_pid=
stop_daemon() {
    if [ -n "$daemon_pid" ]; then
        kill -TERM "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
        daemon_pid=
    fi
}
trap 'stop_daemon; anvil_stop; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
anvil_start || exit 1
url=$EVM_RPC_URL

contract=$("$CAST" send --rpc-url "$url" --private-key "$EVM_KEY0" --json \
    --create "0x$(cat contracts/ModelRegistry.bin)" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["contractAddress"])')
printf '%s\n' "${EVM_KEY2#0x}" >"$tmp/key2"
chmod 600 "$tmp/key2"
api_port=$(free_port)
cat >"$tmp/ocra.yaml" <<YAML
journal:
  path: "$tmp/journal.db"
evm:
  rpc: ["$url"]
  contract: "$contract"
  confirmations: 2
  from_block: 0
  poll_interval_ms: 100
  allow: ["$EVM_ADDR0"]
  key_file: "$tmp/key2"
daemon:
  workers: 2
  max_attempts: 1000
  retry_base_ms: 100
  retry_max_ms: 300
  lease_ms: 1500
  poll_ms: 100
  report_wait_ms: 1000
api:
  listen: "127.0.0.1:$api_port"
run:
  docker_host: "unix://$tmp/no-docker.sock"
YAML
start_daemon() {
    "$OCRA" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
    daemon_pid=$!
}
events() { "$OCRA" -c "$tmp/ocra.yaml" events "$@" 2>/dev/null; }
mine() { anvil_rpc anvil_mine "[\"$(printf '0x%x' "$1")\"]" >/dev/null; }
# event_of NAME: the id of the event of the model NAME (the last journaled)
event_of() { events | python3 -c '
import json, sys
ids = [e["event"] for e in map(json.loads, sys.stdin) if e.get("path", "").endswith("/" + sys.argv[1])]
print(ids[-1] if ids else "")' "$1"; }
# pipe ID EXPR: a Python expression over p (the pipeline row) and d (the lineage)
pipe() { "$OCRA" -c "$tmp/ocra.yaml" lineage --json "$1" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin); p = d.get("pipeline") or {}
print(eval(sys.argv[1]))' "$2"; }
reports_of() { evm_reports "$contract" | grep -ci "^$(evm_event_key "$1") " || true; }
cursor() { python3 -c '
import sqlite3, sys
r = sqlite3.connect(sys.argv[1]).execute("SELECT block_number FROM cursors WHERE source = ?", ("evm:31337",)).fetchone()
print(r[0] if r else -1)' "$tmp/journal.db" 2>/dev/null || echo -1; }
final_seen() { [ "$(cursor)" -ge $(($("$CAST" block-number --rpc-url "$url") - 2)) ]; }
# mine_final N: N blocks, one at a time, each scanned by the watcher once final (so that the
# watcher's window of recent blocks holds each one: a reorg finds the block it forks from)
mine_final() { for _ in $(seq "$1"); do mine 1; wait_until "the watcher's cursor at the final line" final_seen; done; }

# --- 1. a publish reorged out past the confirmation depth -------------------------------------
start_daemon
mine_final 3
snap=$(anvil_rpc evm_snapshot | tr -d '"')
"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
    "publish(string,string)" doomed '{"name":"doomed","modelVersion":"not a version"}' >/dev/null
mine_final 3
id=
retrying() {
    [ -n "$id" ] || id=$(event_of doomed)
    [ -n "$id" ] && grep -q "stage retry event=$id stage=report" "$tmp/daemon.log"
}
wait_until "the doomed event retries its report" retrying &&
    ok doomed_event_journaled_and_retrying || fail doomed_event_journaled_and_retrying "$(tail -5 "$tmp/daemon.log")"
# the chain that journaled it loses: a longer chain without the publish
anvil_rpc evm_revert "[\"$snap\"]" >/dev/null
mine 8
# (the journal alone: a cheap look, so that the bounded wait ends within the test's time)
ended() { [ "$(sqlite3 "$tmp/journal.db" "SELECT state FROM pipeline WHERE event_id = '$id'")" = done ]; }
wait_until "the doomed event ends" ended
[ "$(pipe "$id" 'p.get("status"), p.get("outcome")')" = "('orphaned', 'orphaned')" ] &&
    ok orphaned_event_ends_orphaned || fail orphaned_event_ends_orphaned "$(pipe "$id" 'json.dumps(p)')"
[ "$(pipe "$id" '[s["stage"] for s in d["stages"] if s["outcome"] == "orphaned"]')" = "['report']" ] &&
    ok lineage_has_the_orphaned_attempt || fail lineage_has_the_orphaned_attempt "$(pipe "$id" 'd["stages"]')"
events --status orphaned >"$tmp/orphaned.jsonl"
grep -q "\"event\":\"$id\"" "$tmp/orphaned.jsonl" && ok events_status_orphaned_lists_it ||
    fail events_status_orphaned_lists_it "$(head -c 600 "$tmp/orphaned.jsonl")"
grep -q "finality violation" "$tmp/daemon.log" && ok finality_violation_logged || fail finality_violation_logged "$(tail -5 "$tmp/daemon.log")"
curl -s "http://127.0.0.1:$api_port/metrics" >"$tmp/metrics"
grep -qE '^ocra_finality_violations_total\{chain="evm:31337"\} [1-9]' "$tmp/metrics" &&
    ok finality_violations_metric || fail finality_violations_metric "$(grep finality "$tmp/metrics")"

# --- 2. a report whose transaction a reorg dropped --------------------------------------------
# the event is journaled while the operator may not report yet (its report retries); then
# the operator becomes a reporter after a snapshot, and the report lands above it
"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
    "publish(string,string)" evil '{"name":"evil","modelVersion":"still not a version"}' >/dev/null
mine_final 3
snap=$(anvil_rpc evm_snapshot | tr -d '"') # the publish is final; the report comes after
may_report() {
    "$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
        "setReporter(address,bool)" "$EVM_ADDR2" true >/dev/null
}
may_report
ev=
reported() {
    [ -n "$ev" ] || ev=$(event_of evil)
    [ -n "$ev" ] && [ "$(pipe "$ev" 'p.get("status")')" = reported ]
}
wait_until "the evil event is reported" reported && [ "$(reports_of "$ev")" -eq 1 ] &&
    ok reported_once_before_the_reorg || fail reported_once_before_the_reorg "$(pipe "${ev:-x}" 'json.dumps(p)'); $(evm_reports "$contract")"
anvil_rpc evm_revert "[\"$snap\"]" >/dev/null # the report's block is gone, the publish stays
[ "$(reports_of "$ev")" -eq 0 ] && ok reorg_dropped_the_report || fail reorg_dropped_the_report "$(evm_reports "$contract")"
may_report # the new chain lets the operator report too
mine 1
# first the watcher's reopening (the journal alone: a cheap condition, so that the bounded wait
# ends well within the test's time when it never comes), then the report on the new chain
reopened() {
    [ "$(sqlite3 "$tmp/journal.db" "SELECT count(*) FROM stages WHERE event_id = '$ev' AND stage = 'report' AND outcome = 'reopened'")" -ge 1 ]
}
again() { [ "$(reports_of "$ev")" -eq 1 ] && [ "$(pipe "$ev" 'p.get("status")')" = reported ]; }
wait_until "the watcher reopens the report" reopened && wait_until "the report is sent again" again &&
    ok dropped_report_sent_again || fail dropped_report_sent_again "$(pipe "$ev" 'json.dumps(p)'); $(evm_reports "$contract")"
# report attempts: ... done (the dropped one), reopened, retries while not a reporter, done
[ "$(pipe "$ev" '(lambda o: "reopened" in o and "done" in o[:o.index("reopened")] and o[-1] == "done")([s["outcome"] for s in d["stages"] if s["stage"] == "report"])')" = True ] &&
    ok lineage_shows_the_report_reopened || fail lineage_shows_the_report_reopened "$(pipe "$ev" '[s for s in d["stages"] if s["stage"] == "report"]')"
grep -q "event=$ev report tx .* is no longer on the chain" "$tmp/daemon.log" &&
    ok reopen_logged || fail reopen_logged "$(tail -5 "$tmp/daemon.log")"
[ "$(reports_of "$id")" -eq 0 ] && ok orphaned_event_never_reported || fail orphaned_event_never_reported "$(evm_reports "$contract")"
kill -0 "$daemon_pid" 2>/dev/null && ok daemon_kept_running || fail daemon_kept_running "exited"
[ "$failed" -eq 0 ] || tail -n 30 "$tmp/daemon.log"
check_done
