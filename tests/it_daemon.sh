#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon.sh: `ocra daemon` against a real anvil with the ModelRegistry contract.
#  1. --check explains each failure (wrong contract, no Docker engine, an operator that is no
#     reporter or has no gas, an unusable agent socket directory, an API open to the network
#     without a token), resolves relative paths against the file's directory, and never prints
#     a key.
#  2. Publishes through `ocra publish` and cast: a valid spec is validated and planned and waits
#     at the first stage not wired yet; a hostile spec (rejected by validation) and a publish by
#     a publisher outside the operator's allowlist (rejected by the watcher) go to the report
#     stage, whose reportStatus reverts while the operator is not a reporter: they retry, end in
#     dead letter with the contract's error, and do not block the valid event. After setReporter,
#     `ocra retry` sends them back and each is reported once; the test reads the StatusReported
#     logs back with cast. `ocra lineage` shows the stages, SIGTERM drains and exits 0.
#  3. Crash safety: 50 publishes while the daemon is SIGKILLed at random moments and restarted;
#     at the end every event is journaled once, in its expected state, each stage done exactly
#     once, and every rejected event has exactly one report on-chain. The counts are printed.
# Usage: it_daemon.sh path/to/ocra
set -uo pipefail
cd "$(dirname "$0")/.."
OCRA=$(realpath "$1")
source tests/lib/anvil.sh
evm_tools_or_skip

tmp=$(mktemp -d /tmp/ocra-it-daemon.XXXXXX)
source tests/lib/check.sh
daemon_pid=
stop_daemon() {
    if [ -n "$daemon_pid" ]; then
        kill -KILL "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
        daemon_pid=
    fi
}
trap 'stop_daemon; anvil_stop; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
anvil_start || exit 1
url=$EVM_RPC_URL

# --- the contract; key 1 may publish (the contract's list) but is not in the operator's
contract=$(evm_registry_deploy)
"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
    "setPublisher(address,bool)" "$EVM_ADDR1" true >/dev/null
for k in 0 2; do
    v=EVM_KEY$k
    printf '%s\n' "${!v#0x}" >"$tmp/key$k"
    chmod 600 "$tmp/key$k"
done

# config FILE [extra YAML]: the daemon's configuration; the operator reports with key 2
config() {
    cat >"$1" <<EOF
journal:
  path: "$tmp/journal.db"
evm:
  rpc: ["$url"]
  contract: "$contract"
  confirmations: 0
  from_block: 0
  poll_interval_ms: 100
  allow: ["$EVM_ADDR0"]
  key_file: "$tmp/key2"
daemon:
  workers: 3
  max_attempts: 3
  retry_base_ms: 100
  retry_max_ms: 400
  lease_ms: 1500
  poll_ms: 100
run:
  docker_host: "unix://$tmp/no-docker.sock"
${2:-}
EOF
}
config "$tmp/ocra.yaml"

start_daemon() {
    "$OCRA" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
    daemon_pid=$!
}
# events: the journal's events as JSON lines
events() { "$OCRA" -c "$tmp/ocra.yaml" events "$@"; }
count_status() { events --status "$1" | wc -l; }
has_n() { [ "$(count_status "$1")" -eq "$2" ]; }
# reports: the StatusReported logs of the contract, one "eventKey reporter status" line each
reports() { evm_reports "$contract"; }

key_of() { evm_event_key "$1"; }

# --- 1. --check
expect check_fails_without_docker 1 "$OCRA" daemon -c "$tmp/ocra.yaml" --check &&
    ok check_fails_without_docker
has check_evm_rpc_ok "$tmp/out" "ok   evm.rpc: $url: chain 31337"
has check_contract_has_code "$tmp/out" "ok   evm.contract: $contract: has code"
has check_key_shows_signer_only "$tmp/out" "ok   evm.key_file: $tmp/key2: signer $EVM_ADDR2"
has check_docker_failure_explained "$tmp/out" "FAIL docker: unix://$tmp/no-docker.sock"
has check_docker_failure_hint "$tmp/out" "is dockerd running? run.docker_host names its socket"
if grep -qi "${EVM_KEY2#0x}" "$tmp/out" "$tmp/err"; then fail check_never_prints_the_key "key in output"; else ok check_never_prints_the_key; fi
has check_registry_unset_explained "$tmp/out" "FAIL build.registry: not set: the daemon has nowhere to push images"
has check_agent_found "$tmp/out" "ok   build.agent: "
# what the daemon would refuse later, caught by --check: the operator (key 2) is not a
# reporter on the contract (every report would revert with NotReporter())
has check_not_reporter_explained "$tmp/out" "FAIL evm.reporter: $EVM_ADDR2 (evm.key_file) is not a reporter on $contract: every report would revert with NotReporter()"
has check_not_reporter_fix "$tmp/out" "cast send $contract 'setReporter(address,bool)' $EVM_ADDR2 true"
has check_balance_ok "$tmp/out" "ok   evm.balance: $EVM_ADDR2 has "
# a registry and slurmrestd that do not answer: each named, with what to look at
config "$tmp/svc.yaml" "build:
  registry: \"127.0.0.1:9/ocra\""
sed -i "s|^run:\$|run:\\n  runner: slurm\\n  slurm:\\n    url: \"http://127.0.0.1:9\"\\n    user: root\\n    token_file: \"$tmp/no-token\"|" "$tmp/svc.yaml"
expect check_services_fail 1 "$OCRA" daemon -c "$tmp/svc.yaml" --check &&
    has check_registry_down_explained "$tmp/out" "FAIL build.registry: http://127.0.0.1:9: " &&
    has check_registry_hint "$tmp/out" "is the registry running?" &&
    has check_slurm_down_explained "$tmp/out" "FAIL run.slurm: http://127.0.0.1:9: " &&
    has check_slurm_hint "$tmp/out" "is slurmrestd running?"
config "$tmp/bad.yaml"
sed -i "s/contract: \"$contract\"/contract: \"$EVM_ADDR1\"/" "$tmp/bad.yaml"
expect check_wrong_contract 1 "$OCRA" daemon -c "$tmp/bad.yaml" --check &&
    has check_wrong_contract_explained "$tmp/out" "FAIL evm.contract: $EVM_ADDR1: no contract code there"
# an operator that is a reporter but has no gas: the balance against a report's cost
printf '%s\n' 5f0a6ec1b5c3a7e1b3f0d1a2c4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f801 >"$tmp/key-poor"
chmod 600 "$tmp/key-poor"
poor=$("$CAST" wallet address --private-key 0x5f0a6ec1b5c3a7e1b3f0d1a2c4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f801)
"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
    "setReporter(address,bool)" "$poor" true >/dev/null
config "$tmp/poor.yaml"
sed -i "s|key_file: \"$tmp/key2\"|key_file: \"$tmp/key-poor\"|" "$tmp/poor.yaml"
expect check_poor_operator_fails 1 "$OCRA" daemon -c "$tmp/poor.yaml" --check &&
    has check_poor_operator_is_reporter "$tmp/out" "ok   evm.reporter: $poor may report on $contract" &&
    has check_poor_operator_balance_explained "$tmp/out" "FAIL evm.balance: $poor has 0 wei; a report costs up to " &&
    has check_poor_operator_balance_fix "$tmp/out" "send the operator's account at least that much"
# relative paths resolve against the configuration file's directory, also with `-c ocra.yaml`
# run from there: the agent socket directory is then absolute and usable
mkdir -p "$tmp/rel"
config "$tmp/rel/ocra.yaml" "agent:
  socket_dir: run"
(cd "$tmp/rel" && "$OCRA" daemon -c ocra.yaml --check >"$tmp/out" 2>"$tmp/err")
has check_relative_socket_dir_resolved "$tmp/out" "ok   agent.socket_dir: $tmp/rel/run: usable"
# an agent socket directory that cannot be used: under a file; shared with other users
: >"$tmp/afile"
mkdir -p "$tmp/shared" && chmod 1777 "$tmp/shared"
config "$tmp/sock.yaml" "agent:
  socket_dir: \"$tmp/afile/run\"
api:
  listen: \"0.0.0.0:8089\""
expect check_bad_socket_dir_fails 1 "$OCRA" daemon -c "$tmp/sock.yaml" --check &&
    has check_socket_dir_under_file "$tmp/out" "FAIL agent.socket_dir: $tmp/afile/run: cannot create it: $tmp/afile is not a directory" &&
    has check_socket_dir_consequence "$tmp/out" "the daemon would run every workload without its reports" &&
    has check_open_api_without_token "$tmp/out" "FAIL api.listen: listen 0.0.0.0:8089 is not a loopback address: set api.token_file" &&
    has check_open_api_refused "$tmp/out" "the daemon refuses to start with it"
sed -i "s|$tmp/afile/run|$tmp/shared|" "$tmp/sock.yaml"
expect check_shared_socket_dir_fails 1 "$OCRA" daemon -c "$tmp/sock.yaml" --check &&
    has check_shared_socket_dir_explained "$tmp/out" "FAIL agent.socket_dir: $tmp/shared: an existing directory must belong to uid"
printf 'daemon:\n  workers: many\n' >"$tmp/invalid.yaml"
expect daemon_invalid_config_is_usage_error 2 "$OCRA" daemon -c "$tmp/invalid.yaml" &&
    has daemon_invalid_config_names_key "$tmp/err" "daemon.workers"

# a chain node that is down at start is retried; it never stops the daemon
config "$tmp/down.yaml"
sed -i "s|rpc: \[\"$url\"\]|rpc: [\"http://127.0.0.1:9\"]|; s|$tmp/journal.db|$tmp/down.db|" "$tmp/down.yaml"
"$OCRA" daemon -c "$tmp/down.yaml" 2>"$tmp/down.log" &
daemon_pid=$!
wait_until "the watcher retried" grep -q "watch: .*retrying in" "$tmp/down.log"
kill -0 "$daemon_pid" 2>/dev/null && ok node_down_at_start_does_not_stop_the_daemon ||
    fail node_down_at_start_does_not_stop_the_daemon "$(tail -3 "$tmp/down.log")"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok node_down_sigterm_exits_0 || fail node_down_sigterm_exits_0 "exit $rc"

# --- 2. the wired stages, dead letters, retry, reports read back, drain
cat >"$tmp/bert.json" <<'EOF'
{"name": "bert", "modelVersion": "1.0.0", "toolsAndLibraries": {"PyTorch": "2.1.0"}}
EOF
"$OCRA" publish --chain evm --rpc "$url" --key-file "$tmp/key0" --contract "$contract" \
    "$tmp/bert.json" >/dev/null 2>"$tmp/pub.err" || fail publish_valid "$(cat "$tmp/pub.err")"
"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
    "publish(string,string)" evil '{"name":"evil","modelVersion":"not a version"}' >/dev/null
"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY1" "$contract" \
    "publish(string,string)" stranger '{"modelVersion":"1.0"}' >/dev/null
start_daemon
wait_until "3 events journaled" has_n accepted 2
wait_until "valid event planned" has_n planned 1
wait_until "three dead letters (the valid event at toolchain, both rejections at report)" has_n dead 3
events >"$tmp/ev1.jsonl"
bert=$(grep '/bert"' "$tmp/ev1.jsonl" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["event"])')
evil=$(grep '/evil"' "$tmp/ev1.jsonl" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["event"])')
stranger=$(grep '/stranger"' "$tmp/ev1.jsonl" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["event"])')
pipe() { grep -F "\"event\":\"$1\"" "$tmp/ev1.jsonl" | python3 -c "import json,sys; p=json.loads(sys.stdin.readline())['pipeline']; print(($2))"; }
# No registry is configured here (tests/it_pipeline.sh has one): a valid event is planned and
# dead-lettered at the toolchain stage at once, with the reason, an operator's fix away.
[ "$(pipe "$bert" 'p["status"], p["stage"], p["state"], p["attempts"]')" = "('planned', 'toolchain', 'dead', 1)" ] &&
    ok valid_event_planned_then_dead_without_registry || fail valid_event_planned_then_dead_without_registry "$(pipe "$bert" p)"
pipe "$bert" 'p["error"]' | grep -q 'build.registry is not set' &&
    ok dead_letter_names_the_missing_setting || fail dead_letter_names_the_missing_setting "$(pipe "$bert" p)"
[ "$(pipe "$evil" 'p["status"], p["outcome"], p["stage"], p["state"], p["attempts"]')" = "('rejected', 'rejected', 'report', 'dead', 3)" ] &&
    ok hostile_spec_rejected_then_report_dead_after_3_attempts || fail hostile_spec_rejected_then_report_dead_after_3_attempts "$(pipe "$evil" p)"
pipe "$evil" 'p["error"]' | grep -q 'reportStatus on' &&
    ok dead_letter_keeps_last_error || fail dead_letter_keeps_last_error "$(pipe "$evil" p)"
# the contract's custom error by name (from the ABI), not as "custom error 0xe5ce9c09"
pipe "$evil" 'p["error"]' | grep -q 'the contract reverted with NotReporter(): the sending account is not a reporter' &&
    ok dead_letter_names_the_contract_error || fail dead_letter_names_the_contract_error "$(pipe "$evil" p)"
grep -q 'NotReporter()' "$tmp/daemon.log" && ok daemon_log_names_the_contract_error ||
    fail daemon_log_names_the_contract_error "$(grep -m1 reportStatus "$tmp/daemon.log")"
[ "$(pipe "$stranger" 'p["status"], p["state"]')" = "('rejected', 'dead')" ] &&
    ok untrusted_publisher_goes_to_report || fail untrusted_publisher_goes_to_report "$(pipe "$stranger" p)"
[ "$(reports | wc -l)" -eq 0 ] && ok nothing_reported_while_not_a_reporter || fail nothing_reported_while_not_a_reporter "$(reports)"

"$OCRA" -c "$tmp/ocra.yaml" lineage "$bert" >"$tmp/lineage.txt" 2>&1
has lineage_shows_validate "$tmp/lineage.txt" "validate  #1 done"
has lineage_shows_plan_summary "$tmp/lineage.txt" "plan: "
has lineage_shows_dead_toolchain "$tmp/lineage.txt" "build.registry is not set"
"$OCRA" -c "$tmp/ocra.yaml" lineage --json "$evil" >"$tmp/lineage.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
st = [(s["stage"], s["outcome"]) for s in d["stages"]]
assert st == [("validate", "done"), ("report", "retry"), ("report", "retry"), ("report", "dead")], st
assert "version.pep440" in d["stages"][0]["output"]["reason"] or "modelVersion" in d["stages"][0]["output"]["reason"], d["stages"][0]
' "$tmp/lineage.json" && ok lineage_json_has_every_attempt || fail lineage_json_has_every_attempt "$(head -c 800 "$tmp/lineage.json")"
expect lineage_unknown_event 2 "$OCRA" -c "$tmp/ocra.yaml" lineage evm:1:0x0:0 && ok lineage_unknown_event

"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
    "setReporter(address,bool)" "$EVM_ADDR2" true >/dev/null
expect retry_dead_letter 0 "$OCRA" -c "$tmp/ocra.yaml" retry "$evil" &&
    has retry_says_where "$tmp/out" "ready at stage report"
expect retry_watcher_rejected_dead_letter 0 "$OCRA" -c "$tmp/ocra.yaml" retry "$stranger" &&
    ok retry_watcher_rejected_dead_letter
wait_until "both reported" has_n reported 2
reports >"$tmp/reports1"
[ "$(wc -l <"$tmp/reports1")" -eq 2 ] && ok each_rejection_reported_once || fail each_rejection_reported_once "$(cat "$tmp/reports1")"
grep -q "^$(key_of "$evil") $(echo "$EVM_ADDR2" | tr A-F a-f) .*\"status\":\"rejected\"" <(tr A-F a-f <"$tmp/reports1") &&
    ok report_read_back_with_cast || fail report_read_back_with_cast "$(cat "$tmp/reports1")"
grep -q "not in the operator allowlist" "$tmp/reports1" &&
    ok report_carries_the_reason || fail report_carries_the_reason "$(cat "$tmp/reports1")"

kill -TERM "$daemon_pid"
wait "$daemon_pid"
rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok sigterm_drains_and_exits_0 || fail sigterm_drains_and_exits_0 "exit $rc; log: $(tail -5 "$tmp/daemon.log")"
has drain_logged "$tmp/daemon.log" "SIGTERM: draining"
if grep -qi "${EVM_KEY2#0x}" "$tmp/daemon.log"; then fail key_never_logged "key in log"; else ok key_never_logged; fi

# --- 3. crash safety: 50 publishes, SIGKILL at random moments, restart each time
n_valid=0 n_bad=0
start_daemon
kills=0
for i in $(seq 1 50); do
    if [ $((i % 3)) -eq 0 ]; then
        "$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
            "publish(string,string)" "bad$i" "{\"name\":\"bad$i\",\"modelVersion\":\"v$i!\"}" >/dev/null
        n_bad=$((n_bad + 1))
    else
        printf '{"name": "m%d", "modelVersion": "1.0.%d", "toolsAndLibraries": {"PyTorch": "2.1.0"}}\n' "$i" "$i" >"$tmp/m.json"
        "$OCRA" publish --chain evm --rpc "$url" --key-file "$tmp/key0" --contract "$contract" \
            "$tmp/m.json" >/dev/null 2>>"$tmp/pub.err"
        n_valid=$((n_valid + 1))
    fi
    if [ $((RANDOM % 4)) -eq 0 ]; then
        sleep "0.$((RANDOM % 10))"
        stop_daemon # SIGKILL
        kills=$((kills + 1))
        start_daemon
    fi
done
sleep "0.$((RANDOM % 10))"
stop_daemon
kills=$((kills + 1))
start_daemon
want_planned=$((n_valid + 1)) want_reported=$((n_bad + 2))
wait_until "every event settled" has_n reported "$want_reported"
wait_until "every valid event planned" has_n dead "$want_planned"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok sigterm_after_crash_loop_exits_0 || fail sigterm_after_crash_loop_exits_0 "exit $rc; log: $(tail -5 "$tmp/daemon.log")"

events >"$tmp/final.jsonl"
reports >"$tmp/reports2"
python3 - "$tmp/final.jsonl" "$tmp/reports2" "$tmp/journal.db" "$n_valid" "$n_bad" "$kills" <<'EOF'
import collections, hashlib, json, sqlite3, sys
events = [json.loads(l) for l in open(sys.argv[1])]
reports = [l.split(" ", 2) for l in open(sys.argv[2]).read().splitlines()]
db = sqlite3.connect(sys.argv[3])
n_valid, n_bad, kills = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
ids = [e["event"] for e in events]
assert len(ids) == len(set(ids)), "an event journaled twice"
assert len(ids) == n_valid + n_bad + 3, (len(ids), n_valid, n_bad)
planned = [e for e in events if e["pipeline"]["status"] == "planned"]
reported = [e for e in events if e["pipeline"]["status"] == "reported"]
assert len(planned) == n_valid + 1 and all(e["pipeline"]["state"] == "dead" and e["pipeline"]["stage"] == "toolchain" for e in planned), planned
assert len(reported) == n_bad + 2 and all(e["pipeline"]["outcome"] == "rejected" and e["pipeline"]["state"] == "done" for e in reported)
# each stage done exactly once per event; attempts cut short by a kill were abandoned, not done twice
done = collections.Counter(db.execute("SELECT event_id || ' ' || stage FROM stages WHERE outcome = 'done'").fetchall())
twice = [k for k, n in done.items() if n != 1]
assert not twice, twice
for e in planned:
    for stage in ("validate", "plan"):
        assert done[(e["event"] + " " + stage,)] == 1, (e["event"], stage)
for e in reported:
    assert done[(e["event"] + " report",)] == 1, e["event"]
abandoned = db.execute("SELECT count(*) FROM stages WHERE outcome = 'abandoned'").fetchone()[0]
open_rows = db.execute("SELECT count(*) FROM stages WHERE outcome IS NULL").fetchone()[0]
assert open_rows == 0, open_rows
# exactly one on-chain report per reported event, and none for the others
keys = collections.Counter(r[0].lower() for r in reports)
for e in reported:
    k = "0x" + hashlib.sha256(e["event"].encode()).hexdigest()
    assert keys[k] == 1, (e["event"], keys[k])
assert sum(keys.values()) == len(reported), (sum(keys.values()), len(reported))
print(f"  crash loop: {kills} SIGKILLs; {len(ids)} events journaled once; {len(planned)} planned "
      f"(dead-lettered at toolchain: no registry here), {len(reported)} rejected and reported; {sum(keys.values())} "
      f"on-chain reports, one per reported event; {abandoned} attempts abandoned by a kill and "
      f"taken over; every stage done exactly once")
EOF
[ $? -eq 0 ] && ok crash_loop_every_event_once_and_one_report_each || fail crash_loop_every_event_once_and_one_report_each "see above"

check_done
