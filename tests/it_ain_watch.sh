#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_ain_watch.sh OCRA: `ocra watch` over the chain recorded from a real AIN node, served by
# the recorded-traffic server tests/lib/ain_node.py (an AIN node cannot be installed here).
# Checks the scenario's events (../shared/ain/README.md), exactly-once across a restart at
# every block boundary, signer verification (tampered body, tampered signature, allowlist),
# RPC faults without skipped blocks, the WebSocket wake-up and reconnect, `ocra publish`, and,
# over the synthesized blocks after the recording (tests/data/ain/synth.jsonl), writes above a
# watched pattern (one event per model) and lists printed as arrays.
set -u
ocra=${1:?usage: it_ain_watch.sh PATH_TO_OCRA}
ocra=$(cd "$(dirname "$ocra")" && pwd)/$(basename "$ocra")
cd "$(dirname "$0")/.."
. tests/lib/ain_node.sh
command -v python3 >/dev/null || { echo "python3 is needed for the recorded-traffic server"; exit 77; }

tmp=$(mktemp -d)
watch_pid=
cleanup() {
    [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null
    ain_node_stop
    rm -rf "$tmp"
}
trap cleanup EXIT
. tests/lib/check.sh

A=0x22fF60c8E1bEdeED288BBA0c4b1344B1A6115aB2
B=0x90B6746CC1Ca479a39fc04C1c5DB6EA5fb174613
MODELS='/apps/ocra_demo/models/$name'
SEED=/apps/ocra_demo/model/version
tx() { echo "ain:0:$1"; }
# The scenario's events: block, id, path, status (README: steps a, b, c, d, f0, f1, g, h, i).
expected="49 $(tx 0x4de6f4bda369ee024149d93da8aa511638a0cd1de15ff5138d2213db8a44c116:0) /apps/ocra_demo/models/sentiment-bert accepted
50 $(tx 0x2295374bfde24176b70572c08d8871f56faead62d2974e9fe0e00c6255b32738:0) /apps/ocra_demo/models/sentiment-bert accepted
52 $(tx 0x7d39db164af245d16c05445d27bb9ac188cb6906902221d1b638efcb00eddcba:0) /apps/ocra_demo/models/sentiment-bert accepted
53 $(tx 0xdf48794d9235178f72eb1a2d3c1f859b94dad19e4a52aa53ca22e3a891b5061a:0) /apps/ocra_demo/models/llama-7b accepted
56 $(tx 0x5608350beb9fed219a3e0aca3cbaf2d354db96319ab4e86ecb2f7b6949e16c81:0) /apps/ocra_demo/models/sentiment-bert accepted
56 $(tx 0x5608350beb9fed219a3e0aca3cbaf2d354db96319ab4e86ecb2f7b6949e16c81:1) /apps/ocra_demo/models/llama-7b accepted
58 $(tx 0xcb9fd9ae13f2e79cd720b54fe4c26b0e0957eab1f7c8d47528b1c2fe8a22487b:0) /apps/ocra_demo/models/evil accepted
59 $(tx 0x3475a0e17d15408521614b8a12502d79df63f487a5336425ea1b4b606ecd33cd:0) /apps/ocra_demo/model/version accepted
61 $(tx 0xe846f72c8a697ce63fc57cde379bb6fae0279df728eec8ef32012c3d00601032:0) /apps/ocra_demo/models/llama-7b accepted"

# summary FILE: "block id path status" per JSON line.
summary() {
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    print(e["block"], e["event"], e["path"], e["status"])' "$1"
}
# field FILE EVENT_ID EXPR: evaluates EXPR (python, e = the event) for that event.
field() {
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == sys.argv[2]:
        print(eval(sys.argv[3]))' "$1" "$2" "$3"
}
watch_once() { # JOURNAL ARGS...: ocra watch --once over both patterns
    local j=$1
    shift
    "$ocra" watch --rpc "$AIN_RPC_URL" --path "$MODELS" --path "$SEED" --from-block 0 --once \
        --journal "$j" "$@"
}

ain_node_start "$tmp" || exit 1

# 1. Replaying the recorded chain yields exactly the scenario's events.
watch_once "$tmp/j1.db" --allow $A --allow $B >"$tmp/all.jsonl" 2>"$tmp/err"
if [ "$(summary "$tmp/all.jsonl")" = "$expected" ]; then ok replay_yields_scenario_events; else
    fail replay_yields_scenario_events "got: $(summary "$tmp/all.jsonl"); stderr: $(tail -3 "$tmp/err")"; fi
c=$(tx 0x7d39db164af245d16c05445d27bb9ac188cb6906902221d1b638efcb00eddcba:0)
got=$(field "$tmp/all.jsonl" "$c" 'e["spec"]["modelVersion"], "TensorFlow" in e["spec"]["toolsAndLibraries"], e["signer"]')
[ "$got" = "('1.1.1', True, '$B')" ] && ok partial_write_merged_into_full_spec || fail partial_write_merged_into_full_spec "$got"
i=$(tx 0xe846f72c8a697ce63fc57cde379bb6fae0279df728eec8ef32012c3d00601032:0)
[ "$(field "$tmp/all.jsonl" "$i" 'e["removed"], e["spec"]')" = "(True, None)" ] && ok null_write_is_removal || fail null_write_is_removal "$(field "$tmp/all.jsonl" "$i" 'e')"
h=$(tx 0x3475a0e17d15408521614b8a12502d79df63f487a5336425ea1b4b606ecd33cd:0)
[ "$(field "$tmp/all.jsonl" "$h" 'sorted(e["spec"])')" = "['modelVersion', 'toolsAndLibraries']" ] && ok seed_path_and_shape || fail seed_path_and_shape "$(field "$tmp/all.jsonl" "$h" 'e')"
# The hostile spec is journaled by the watcher and rejected by validation, not by the watcher.
g=$(tx 0xcb9fd9ae13f2e79cd720b54fe4c26b0e0957eab1f7c8d47528b1c2fe8a22487b:0)
field "$tmp/all.jsonl" "$g" 'json.dumps(e["spec"])' >"$tmp/evil.json"
if "$ocra" spec check "$tmp/evil.json" 2>"$tmp/evil.err" >/dev/null; then fail hostile_spec_rejected_by_validation "accepted"; else
    grep -q 'name.pattern' "$tmp/evil.err" && grep -q 'version.pep440' "$tmp/evil.err" && ok hostile_spec_rejected_by_validation || fail hostile_spec_rejected_by_validation "$(cat "$tmp/evil.err")"; fi
"$ocra" events --journal "$tmp/j1.db" >"$tmp/events.jsonl"
[ "$(summary "$tmp/events.jsonl")" = "$expected" ] && ok journal_holds_the_events || fail journal_holds_the_events "$(summary "$tmp/events.jsonl")"
watch_once "$tmp/j1.db" --allow $A --allow $B >"$tmp/again.jsonl" 2>"$tmp/again.err"
[ ! -s "$tmp/again.jsonl" ] && ok rerun_prints_nothing_new || fail rerun_prints_nothing_new "$(cat "$tmp/again.jsonl")"
# --from-block on a journal that has a cursor is not used: stderr says so and where it resumes.
has from_block_on_existing_journal_is_reported "$tmp/again.err" \
    "--from-block 0 ignored: the journal $tmp/j1.db already has a cursor for ain:0 at block 67, so the watch resumes at block 68"

# 2. A restart at every block boundary: same events, no duplicates, no gaps.
: >"$tmp/steps.jsonl"
for head in $(seq 0 67); do
    ain_ctl "{\"head\": $head}" >/dev/null
    watch_once "$tmp/j2.db" --allow $A --allow $B >>"$tmp/steps.jsonl" 2>>"$tmp/steps.err" || fail restart_at_every_block "watch failed at head $head"
done
ain_ctl '{"head": 67}' >/dev/null
if [ "$(summary "$tmp/steps.jsonl")" = "$expected" ]; then ok restart_at_every_block_boundary; else
    fail restart_at_every_block_boundary "$(summary "$tmp/steps.jsonl")"; fi
"$ocra" events --journal "$tmp/j2.db" >"$tmp/events2.jsonl"
[ "$(wc -l <"$tmp/events2.jsonl")" -eq 9 ] && ok restart_journal_has_no_duplicates || fail restart_journal_has_no_duplicates "$(wc -l <"$tmp/events2.jsonl") rows"

# 3. A signer outside the allowlist is journaled as rejected, with the reason.
watch_once "$tmp/j3.db" --allow $A >"$tmp/onlyA.jsonl" 2>/dev/null
got=$(field "$tmp/onlyA.jsonl" "$c" 'e["status"], e["trusted"], e["reason"]')
[ "$got" = "('rejected', False, 'signer $B is not in the allowlist of $MODELS')" ] && ok signer_outside_allowlist_rejected || fail signer_outside_allowlist_rejected "$got"
"$ocra" events --journal "$tmp/j3.db" --status rejected >"$tmp/rej.jsonl"
[ "$(wc -l <"$tmp/rej.jsonl")" -eq 1 ] && ok rejected_event_is_journaled || fail rejected_event_is_journaled "$(cat "$tmp/rej.jsonl")"

# 4. RPC faults: retries, then the same events; a lasting fault stops with a clear error and
#    the next run resumes without a gap.
ain_ctl '{"reset_log": true, "faults": [{"kind": "http500", "count": 2, "method": "ain_getBlockList"}, {"kind": "truncate", "count": 1, "method": "ain_getBlockList"}, {"kind": "close", "count": 1, "method": "ain_getLastBlockNumber"}, {"kind": "garbage", "count": 1, "method": "ain_getBlockList"}]}' >/dev/null
watch_once "$tmp/j4.db" --allow $A --allow $B >"$tmp/faults.jsonl" 2>"$tmp/faults.err"
[ "$(summary "$tmp/faults.jsonl")" = "$expected" ] && ok rpc_faults_are_retried || fail rpc_faults_are_retried "$(summary "$tmp/faults.jsonl"); $(tail -3 "$tmp/faults.err")"
ain_ctl '{"clear_faults": true, "head": 50}' >/dev/null
watch_once "$tmp/j5.db" --allow $A --allow $B >"$tmp/part1.jsonl" 2>/dev/null
ain_ctl '{"head": 67, "faults": [{"kind": "http500", "count": 50, "method": "ain_getBlockList"}]}' >/dev/null
if watch_once "$tmp/j5.db" --allow $A --allow $B >>"$tmp/part1.jsonl" 2>"$tmp/down.err"; then
    fail lasting_fault_is_a_clear_error "exit 0"
else
    grep -q 'HTTP 500' "$tmp/down.err" && grep -q 'gave up after' "$tmp/down.err" && ok lasting_fault_is_a_clear_error || fail lasting_fault_is_a_clear_error "$(cat "$tmp/down.err")"
fi
ain_ctl '{"clear_faults": true}' >/dev/null
watch_once "$tmp/j5.db" --allow $A --allow $B >>"$tmp/part1.jsonl" 2>/dev/null
[ "$(summary "$tmp/part1.jsonl")" = "$expected" ] && ok resume_after_outage_skips_no_block || fail resume_after_outage_skips_no_block "$(summary "$tmp/part1.jsonl")"
# A node that replaced the journal's last final block (a real ain-blockchain 1.6.0 does this
# when it restarts): the scanner reports it, steps back onto the node's chain and goes on;
# events keep their ids, so nothing is journaled twice.
ain_ctl '{"head": 55}' >/dev/null
watch_once "$tmp/j9.db" --allow $A --allow $B >"$tmp/fork.jsonl" 2>/dev/null
python3 - "$tmp/j9.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE cursors SET block_hash = ? WHERE source = 'ain:0'", ("0x" + "ab" * 32,))
db.commit()
PY
ain_ctl '{"head": 67}' >/dev/null
if watch_once "$tmp/j9.db" --allow $A --allow $B >>"$tmp/fork.jsonl" 2>"$tmp/fork.err"; then
    grep -q 'finality violation: the node replaced block 55' "$tmp/fork.err" && [ "$(summary "$tmp/fork.jsonl")" = "$expected" ] &&
        ok replaced_final_block_is_rescanned || fail replaced_final_block_is_rescanned "$(cat "$tmp/fork.err"; summary "$tmp/fork.jsonl")"
else
    fail replaced_final_block_is_rescanned "exit $?: $(cat "$tmp/fork.err")"
fi

# A node that replaced a final block without one of its transactions: the events of that
# transaction are orphaned (rejected, with the reason, and marked for the daemon to stop them);
# the block's other events and the rest of the chain are untouched.
ain_ctl '{"head": 56}' >/dev/null
watch_once "$tmp/j10.db" --allow $A --allow $B >/dev/null 2>&1
f0=$(tx 0x5608350beb9fed219a3e0aca3cbaf2d354db96319ab4e86ecb2f7b6949e16c81:0)
f1=$(tx 0x5608350beb9fed219a3e0aca3cbaf2d354db96319ab4e86ecb2f7b6949e16c81:1)
ain_ctl '{"replace_block": {"number": 56, "drop": ["0x5608350beb9fed219a3e0aca3cbaf2d354db96319ab4e86ecb2f7b6949e16c81"]}, "head": 67}' >/dev/null
watch_once "$tmp/j10.db" --allow $A --allow $B >/dev/null 2>"$tmp/replaced.err"
ain_ctl '{"restore_blocks": true}' >/dev/null
"$ocra" events --journal "$tmp/j10.db" >"$tmp/replaced.jsonl"
got=$(for e in "$f0" "$f1"; do field "$tmp/replaced.jsonl" "$e" 'e["status"], e["reason"].startswith("orphaned: the node replaced its final block")'; done | sort -u)
[ "$got" = "('rejected', True)" ] && ok replaced_block_orphans_its_dropped_transaction ||
    fail replaced_block_orphans_its_dropped_transaction "$got; $(tail -3 "$tmp/replaced.err")"
python3 - "$tmp/j10.db" "$f0" "$f1" <<'PY' && ok replaced_block_marks_for_the_daemon || fail replaced_block_marks_for_the_daemon "see $tmp/j10.db"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
marked = {r[0] for r in db.execute("SELECT id FROM events WHERE orphaned_ms IS NOT NULL")}
assert marked == {sys.argv[2], sys.argv[3]}, marked
PY
[ "$(grep -c '"status":"accepted"' "$tmp/replaced.jsonl")" -eq 7 ] && ok replaced_block_keeps_the_rest ||
    fail replaced_block_keeps_the_rest "$(summary "$tmp/replaced.jsonl")"

# A node without ain_getBlockList: block by block, same events.
ain_ctl '{"disable_methods": ["ain_getBlockList"], "reset_log": true}' >/dev/null
watch_once "$tmp/j8.db" --allow $A --allow $B >"$tmp/bybn.jsonl" 2>/dev/null
bybn=$(python3 -c 'import json,sys,urllib.request; print(sum(r["method"]=="ain_getBlockByNumber" for r in json.load(urllib.request.urlopen(sys.argv[1]))))' "$AIN_CTL_URL/log")
ain_ctl '{"disable_methods": []}' >/dev/null
[ "$(summary "$tmp/bybn.jsonl")" = "$expected" ] && [ "$bybn" -eq 68 ] && ok fallback_without_block_list || fail fallback_without_block_list "$bybn getBlockByNumber calls; $(summary "$tmp/bybn.jsonl")"
ain_ctl '{"head": 1067}' >/dev/null
ain_ctl '{"head": 67}' >/dev/null

# 5. The event WebSocket wakes the scanner at once (the poll interval here is 10 minutes),
#    and it reconnects after the node closes the channel.
printf 'ain:\n  poll_interval_ms: 600000\n' >"$tmp/slow.yaml"
ain_ctl '{"head": 48}' >/dev/null
"$ocra" -c "$tmp/slow.yaml" watch --rpc "$AIN_RPC_URL" --ws "$AIN_WS_URL" --path "$MODELS" \
    --allow $A --allow $B --from-block 0 --journal "$tmp/j6.db" >"$tmp/ws.jsonl" 2>"$tmp/ws.err" &
watch_pid=$!
wait_lines() { # N FILE: waits up to 20 s for N lines
    for _ in $(seq 1 200); do [ "$(wc -l <"$2")" -ge "$1" ] && return 0; sleep 0.1; done
    return 1
}
for _ in $(seq 1 100); do grep -q 'ain ws: connected' "$tmp/ws.err" && break; sleep 0.1; done
ain_ctl '{"head": 53}' >/dev/null
wait_lines 4 "$tmp/ws.jsonl" && ok websocket_wakes_the_scanner || fail websocket_wakes_the_scanner "$(wc -l <"$tmp/ws.jsonl") lines; $(tail -3 "$tmp/ws.err")"
ain_ctl '{"ws_close_all": true}' >/dev/null
for _ in $(seq 1 100); do [ "$(grep -c 'ain ws: connected' "$tmp/ws.err")" -ge 2 ] && break; sleep 0.1; done
ain_ctl '{"head": 67}' >/dev/null
wait_lines 8 "$tmp/ws.jsonl" && ok websocket_reconnects_after_close || fail websocket_reconnects_after_close "$(wc -l <"$tmp/ws.jsonl") lines; $(tail -3 "$tmp/ws.err")"
kill "$watch_pid" && wait "$watch_pid"
rc=$?
watch_pid=
[ "$rc" -eq 0 ] && grep -q 'watch: stopped' "$tmp/ws.err" && ok sigterm_stops_cleanly || fail sigterm_stops_cleanly "exit $rc"

# 6. ocra publish: the recorded step a, rebuilt and signed from C, byte for byte: the
#    recorded-traffic server answers a send only with the recording when the tx body and the
#    signature are identical to what the real node received.
printf '2d3486a07efc1cee2c3e554cba6c25a81f7406b73bf4bf7f0166a7b8966d7aa1\n' >"$tmp/keyA"
chmod 600 "$tmp/keyA"
ain_ctl '{"reset_log": true}' >/dev/null
publish() { "$ocra" publish --rpc "$AIN_RPC_URL" --key-file "$tmp/keyA" --wait 10 "$@"; }
out=$(publish --path /apps/ocra_demo/models/sentiment-bert --timestamp 1795674823355 \
    --http-host 127.0.0.1:8099 --allow-host 127.0.0.1 tests/data/ain/step_a_spec.json 2>"$tmp/pub.err")
rc=$?
[ "$rc" -eq 0 ] && [ "$out" = 0x4de6f4bda369ee024149d93da8aa511638a0cd1de15ff5138d2213db8a44c116 ] &&
    ok publish_reproduces_recorded_tx || fail publish_reproduces_recorded_tx "exit $rc, out $out, $(cat "$tmp/pub.err")"
out=$(publish --path /apps/ocra_demo/models/sentiment-bert examples/sentiment-bert.json 2>"$tmp/pub.err")
rc=$?
case "$out" in 0x????????????????????????????????????????????????????????????????)
    [ "$rc" -eq 0 ] && grep -q 'state=FINALIZED' "$tmp/pub.err" && ok publish_waits_for_finality || fail publish_waits_for_finality "exit $rc $(cat "$tmp/pub.err")" ;;
*) fail publish_waits_for_finality "exit $rc, out '$out', $(cat "$tmp/pub.err")" ;; esac
ain_ctl '{"reset_log": true}' >/dev/null
publish --path /apps/ocra_demo/models/evil examples/hostile.json >/dev/null 2>"$tmp/pub.err"
rc=$?
sends=$(python3 -c 'import json,sys,urllib.request; print(sum(r["method"]=="ain_sendSignedTransaction" for r in json.load(urllib.request.urlopen(sys.argv[1]))))' "$AIN_CTL_URL/log")
[ "$rc" -eq 2 ] && [ "$sends" -eq 0 ] && grep -q 'name.pattern' "$tmp/pub.err" && ok publish_refuses_hostile_spec || fail publish_refuses_hostile_spec "exit $rc, sends $sends"
ain_ctl '{"send_code": 12103, "send_message": "Write rule evaluated false"}' >/dev/null
publish --path /apps/ocra_demo/models/sentiment-bert examples/sentiment-bert.json >/dev/null 2>"$tmp/pub.err"
rc=$?
ain_ctl '{"send_code": 0}' >/dev/null
[ "$rc" -eq 1 ] && grep -q '12103' "$tmp/pub.err" && ok publish_reports_node_rejection || fail publish_reports_node_rejection "exit $rc, $(cat "$tmp/pub.err")"
chmod 644 "$tmp/keyA"
publish --path /apps/ocra_demo/models/sentiment-bert examples/sentiment-bert.json >/dev/null 2>"$tmp/pub.err"
rc=$?
[ "$rc" -eq 2 ] && grep -q 'chmod 600' "$tmp/pub.err" && ok publish_refuses_open_key_file || fail publish_refuses_open_key_file "exit $rc, $(cat "$tmp/pub.err")"

ain_node_stop

# 8. Writes above a watched pattern (tests/data/ain/synth.jsonl, blocks 68..79 after the
#    recording, signed by A): null or an object at .../models or at /apps/APP, in SET op_lists
#    with ops at several depths, a prefix write the node reverted (12101) and a write it
#    reverted for the free-tier state budget (10905). Each becomes one event per model it
#    touches: a removal for every model the journal holds, the new value of every model in the
#    object; a later write below a removed model starts from nothing.
ain_node_start "$tmp" --extend tests/data/ain/synth.jsonl || exit 1
LAB='/apps/$app/models/$name'
synth_expected="69 $(tx 0x85dde364be49a0f3079158ae9d4a8c6c154a1d9112f0129f7329c2aa6c777dea:0) /apps/ocra_demo/models/k1 accepted False
70 $(tx 0x04c7ca7e730e06789cdcbf4ec9af8027fec8de38a0811ab3e622c86bb285a61c:0) /apps/ocra_demo/models/k2 accepted False
71 $(tx 0xc13d1e090ecd03728167a80a930793e5099aac7c0ecb730c8b60eb7064b4620f:0:evil) /apps/ocra_demo/models/evil accepted True
71 $(tx 0xc13d1e090ecd03728167a80a930793e5099aac7c0ecb730c8b60eb7064b4620f:0:k1) /apps/ocra_demo/models/k1 accepted True
71 $(tx 0xc13d1e090ecd03728167a80a930793e5099aac7c0ecb730c8b60eb7064b4620f:0:k2) /apps/ocra_demo/models/k2 accepted True
71 $(tx 0xc13d1e090ecd03728167a80a930793e5099aac7c0ecb730c8b60eb7064b4620f:0:sentiment-bert) /apps/ocra_demo/models/sentiment-bert accepted True
72 $(tx 0xc8902a5fe3c03af4caf3c54dee518b921f71c36eed654380a0c27adf5a71381a:0) /apps/ocra_demo/models/k2 accepted False
73 $(tx 0x54ccbd7085443fcdfeda13fd00a840b031cab444de2687488d292197a9ee406d:0:k2) /apps/ocra_demo/models/k2 accepted True
73 $(tx 0x54ccbd7085443fcdfeda13fd00a840b031cab444de2687488d292197a9ee406d:0:k3) /apps/ocra_demo/models/k3 accepted False
73 $(tx 0x54ccbd7085443fcdfeda13fd00a840b031cab444de2687488d292197a9ee406d:0:k4) /apps/ocra_demo/models/k4 accepted False
74 $(tx 0x0f337d8a0a212cd34f675022c3e8469eccca1b32269023210021bc36cf0433ab:0:k3) /apps/ocra_demo/models/k3 accepted True
74 $(tx 0x0f337d8a0a212cd34f675022c3e8469eccca1b32269023210021bc36cf0433ab:0:k4) /apps/ocra_demo/models/k4 accepted True
74 $(tx 0x0f337d8a0a212cd34f675022c3e8469eccca1b32269023210021bc36cf0433ab:0:k5) /apps/ocra_demo/models/k5 accepted False
74 $(tx 0x0f337d8a0a212cd34f675022c3e8469eccca1b32269023210021bc36cf0433ab:1) /apps/ocra_demo/models/k5 accepted False
74 $(tx 0x0f337d8a0a212cd34f675022c3e8469eccca1b32269023210021bc36cf0433ab:2) /apps/ocra_demo/models/k6 accepted False
74 $(tx 0x0f337d8a0a212cd34f675022c3e8469eccca1b32269023210021bc36cf0433ab:3:version) /apps/ocra_demo/model/version accepted False
74 $(tx 0x0f337d8a0a212cd34f675022c3e8469eccca1b32269023210021bc36cf0433ab:4) /apps/ocra_demo/models/k6 accepted False
75 $(tx 0x7c1f1cc3c949b94580942594e6a8087a82f57938c8c2d1b411a724f09a3e5d95:0:models/m1) /apps/ocra_lab/models/m1 accepted False
75 $(tx 0x7c1f1cc3c949b94580942594e6a8087a82f57938c8c2d1b411a724f09a3e5d95:0:models/m2) /apps/ocra_lab/models/m2 accepted False
76 $(tx 0x9b54863ee47bdf42041e29bd5608434c20a0147785176c4f8db8f727e2f9ae2f:0:models/m1) /apps/ocra_lab/models/m1 accepted True
76 $(tx 0x9b54863ee47bdf42041e29bd5608434c20a0147785176c4f8db8f727e2f9ae2f:0:models/m2) /apps/ocra_lab/models/m2 accepted True
76 $(tx 0x9b54863ee47bdf42041e29bd5608434c20a0147785176c4f8db8f727e2f9ae2f:1) /apps/ocra_lab/models/m2 accepted False"
# synth FILE: "block id path status removed" of the events after the recording.
synth() {
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["block"] > 67:
        print(e["block"], e["event"], e["path"], e["status"], e["removed"])' "$1"
}
watch_lab() { watch_once "$@" --path "$LAB" --allow $A --allow $B; }
watch_lab "$tmp/j20.db" >"$tmp/synth.jsonl" 2>"$tmp/synth.err"
if [ "$(synth "$tmp/synth.jsonl")" = "$synth_expected" ]; then ok writes_above_a_pattern_are_one_event_per_model; else
    fail writes_above_a_pattern_are_one_event_per_model "$(diff <(echo "$synth_expected") <(synth "$tmp/synth.jsonl")); $(tail -3 "$tmp/synth.err")"; fi
[ "$(summary "$tmp/synth.jsonl" | sed -n 1,9p)" = "$expected" ] && ok recorded_events_unchanged_by_the_extension ||
    fail recorded_events_unchanged_by_the_extension "$(summary "$tmp/synth.jsonl" | sed -n 1,9p)"
n=$(tx 0xc8902a5fe3c03af4caf3c54dee518b921f71c36eed654380a0c27adf5a71381a:0)
got=$(field "$tmp/synth.jsonl" "$n" 'json.dumps(e["spec"])')
[ "$got" = '{"modelVersion": "2.0.0"}' ] && ok write_below_a_removed_model_starts_from_nothing ||
    fail write_below_a_removed_model_starts_from_nothing "$got"
p1=$(tx 0x0f337d8a0a212cd34f675022c3e8469eccca1b32269023210021bc36cf0433ab:1)
got=$(field "$tmp/synth.jsonl" "$p1" 'e["spec"]["name"], e["spec"]["modelVersion"]')
[ "$got" = "('k5', '1.0.1')" ] && ok op_list_write_below_merges_into_the_same_txs_object ||
    fail op_list_write_below_merges_into_the_same_txs_object "$got"
got=$(field "$tmp/synth.jsonl" "$(tx 0x0f337d8a0a212cd34f675022c3e8469eccca1b32269023210021bc36cf0433ab:3:version)" 'e["spec"]["modelVersion"]')
[ "$got" = 3.0.0 ] && ok object_above_a_pattern_without_variables || fail object_above_a_pattern_without_variables "$got"
# 7 (first half). AIN keeps k2's eleven-argument command as keys "0".."10"; watch and events
#    print the array the spec reader makes of it, in order.
want='["python3", "serve.py", "--port", "8080", "--workers", "2", "--log-level", "info", "--model", "/models/k2", "--cpu"]'
k2=$(tx 0x04c7ca7e730e06789cdcbf4ec9af8027fec8de38a0811ab3e622c86bb285a61c:0)
got=$(field "$tmp/synth.jsonl" "$k2" 'json.dumps(e["spec"]["workload"]["command"])')
[ "$got" = "$want" ] && ok watch_prints_index_keyed_lists_as_arrays || fail watch_prints_index_keyed_lists_as_arrays "$got"
"$ocra" events --journal "$tmp/j20.db" >"$tmp/synth-events.jsonl"
got=$(field "$tmp/synth-events.jsonl" "$k2" 'json.dumps(e["spec"]["workload"]["command"])')
[ "$got" = "$want" ] && ok events_print_index_keyed_lists_as_arrays || fail events_print_index_keyed_lists_as_arrays "$got"
# A restart at every block boundary of the extension: the same events, each once.
ain_ctl '{"head": 67}' >/dev/null
watch_lab "$tmp/j21.db" >"$tmp/synth-steps.jsonl" 2>>"$tmp/synth-steps.err"
for head in $(seq 68 79); do
    ain_ctl "{\"head\": $head}" >/dev/null
    watch_lab "$tmp/j21.db" >>"$tmp/synth-steps.jsonl" 2>>"$tmp/synth-steps.err" || fail synth_restart "watch failed at head $head"
done
"$ocra" events --journal "$tmp/j21.db" >"$tmp/synth-steps-events.jsonl"
if [ "$(synth "$tmp/synth-steps.jsonl")" = "$synth_expected" ] && [ "$(wc -l <"$tmp/synth-steps-events.jsonl")" -eq 31 ]; then
    ok writes_above_a_pattern_once_across_restarts
else
    fail writes_above_a_pattern_once_across_restarts "$(synth "$tmp/synth-steps.jsonl"); $(wc -l <"$tmp/synth-steps-events.jsonl") rows"
fi
ain_node_stop

# 7. Tampered transactions: a changed body, a changed signature.
mkdir -p "$tmp/tampered"
cp -r tests/data/ain/. "$tmp/tampered/"
python3 - "$tmp/tampered/chain.jsonl" <<'PY'
import json, sys
path = sys.argv[1]
blocks = [json.loads(l) for l in open(path)]
blocks[49]["transactions"][0]["tx_body"]["operation"]["value"]["modelVersion"] = "1.0.9"
sig = blocks[50]["transactions"][0]["signature"]
i = 2 + 64 + 64 + 5  # a hex digit of s
blocks[50]["transactions"][0]["signature"] = sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1:]
with open(path, "w") as f:
    for b in blocks:
        f.write(json.dumps(b, separators=(",", ":")) + "\n")
PY
AIN_NODE_DATA=$tmp/tampered ain_node_start "$tmp" || exit 1
watch_once "$tmp/j7.db" --allow $A --allow $B >"$tmp/tampered.jsonl" 2>/dev/null
a=$(tx 0x4de6f4bda369ee024149d93da8aa511638a0cd1de15ff5138d2213db8a44c116:0)
b=$(tx 0x2295374bfde24176b70572c08d8871f56faead62d2974e9fe0e00c6255b32738:0)
got=$(field "$tmp/tampered.jsonl" "$a" 'e["status"], "does not match its body" in e["reason"]')
[ "$got" = "('rejected', True)" ] && ok tampered_body_rejected || fail tampered_body_rejected "$got"
got=$(field "$tmp/tampered.jsonl" "$b" 'e["status"], e["reason"]')
case "$got" in "('rejected', 'signature: "*) ok tampered_signature_rejected ;; *) fail tampered_signature_rejected "$got" ;; esac
# Step c is B's partial write on top of the value the forged signature shaped: rejected too.
got=$(field "$tmp/tampered.jsonl" "$c" 'e["status"], "last written by untrusted signer" in e["reason"]')
[ "$got" = "('rejected', True)" ] && ok partial_write_on_untrusted_value_rejected || fail partial_write_on_untrusted_value_rejected "$got"
# Step f rewrites the whole model, signed by A: trusted again.
f0=$(tx 0x5608350beb9fed219a3e0aca3cbaf2d354db96319ab4e86ecb2f7b6949e16c81:0)
[ "$(field "$tmp/tampered.jsonl" "$f0" 'e["status"]')" = accepted ] && ok trusted_whole_write_clears_mark || fail trusted_whole_write_clears_mark "$(field "$tmp/tampered.jsonl" "$f0" 'e')"
ain_node_stop

check_done
