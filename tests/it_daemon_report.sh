#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon_report.sh: an EVM report is sent once even when the daemon dies between the
# broadcast of its reportStatus transaction and its mining (the window the log check alone
# cannot see). Against a real anvil with the ModelRegistry contract: mining is paused
# (evm_setAutomine false), a rejected event reaches the report stage, the daemon broadcasts
# its report and waits; the test SIGKILLs it while the transaction sits in anvil's pool and
# restarts it. The new attempt finds the reporter's transaction in flight (pending nonce above
# the latest) and sends nothing while it is; once anvil mines, it finds the report on-chain.
# The test counts the StatusReported logs (one) and the reporter's nonce (one transaction).
# Usage: it_daemon_report.sh path/to/ocra
set -uo pipefail
cd "$(dirname "$0")/.."
OCRA=$(realpath "$1")
source tests/lib/anvil.sh
evm_tools_or_skip

tmp=$(mktemp -d /tmp/ocra-it-report.XXXXXX)
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

contract=$(evm_registry_deploy)
"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
    "setReporter(address,bool)" "$EVM_ADDR2" true >/dev/null
printf '%s\n' "${EVM_KEY2#0x}" >"$tmp/key2"
chmod 600 "$tmp/key2"
cat >"$tmp/ocra.yaml" <<YAML
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
  workers: 2
  max_attempts: 50
  retry_base_ms: 100
  retry_max_ms: 400
  lease_ms: 1500
  poll_ms: 100
  report_wait_ms: 1000
run:
  docker_host: "unix://$tmp/no-docker.sock"
YAML
start_daemon() {
    "$OCRA" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
    daemon_pid=$!
}
events() { "$OCRA" -c "$tmp/ocra.yaml" events "$@"; }
reports() { evm_reports "$contract"; }

nonce() { "$CAST" nonce --rpc-url "$url" ${1:+--block "$1"} "$EVM_ADDR2"; }
in_pool() { [ "$(nonce pending)" -gt "$(nonce)" ]; }

# A hostile spec: rejected by validation, its way goes straight to the report stage.
"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
    "publish(string,string)" evil '{"name":"evil","modelVersion":"not a version"}' >/dev/null
[ "$(nonce)" -eq 0 ] && ok reporter_starts_with_nonce_0 || fail reporter_starts_with_nonce_0 "nonce $(nonce)"
"$CAST" rpc --rpc-url "$url" evm_setAutomine false >/dev/null
start_daemon
wait_until "the report is broadcast and sits in the pool" in_pool
ok report_broadcast_not_mined
sleep 1.5 # past daemon.report_wait_ms: the attempt gave up waiting and retries (or is waiting)
stop_daemon # SIGKILL: the crash the window is about
start_daemon
waited() { grep -q "are not mined yet" "$tmp/daemon.log"; }
wait_until "the new attempt sees the transaction in flight" waited &&
    ok restarted_attempt_sees_the_report_in_flight ||
    fail restarted_attempt_sees_the_report_in_flight "$(tail -5 "$tmp/daemon.log")"
[ "$(( $(nonce pending) - $(nonce) ))" -eq 1 ] && ok no_second_transaction_while_in_flight ||
    fail no_second_transaction_while_in_flight "pending $(nonce pending), latest $(nonce)"
"$CAST" rpc --rpc-url "$url" evm_setAutomine true >/dev/null
"$CAST" rpc --rpc-url "$url" evm_mine >/dev/null
reported() { [ "$(events --status reported | wc -l)" -eq 1 ]; }
wait_until "the event is reported" reported && ok event_reported || fail event_reported "$(events)"
[ "$(reports | wc -l)" -eq 1 ] && ok one_report_on_chain || fail one_report_on_chain "$(reports)"
[ "$(nonce)" -eq 1 ] && ok one_transaction_sent || fail one_transaction_sent "nonce $(nonce)"
ev=$(events --status reported | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["event"])')
"$OCRA" -c "$tmp/ocra.yaml" lineage --json "$ev" >"$tmp/lineage.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
last = [s for s in d["stages"] if s["stage"] == "report"][-1]
assert last["outcome"] == "done" and last["output"].get("already") is True, last
' "$tmp/lineage.json" && ok last_attempt_found_the_report_already_there ||
    fail last_attempt_found_the_report_already_there "$(head -c 800 "$tmp/lineage.json")"
kill -0 "$daemon_pid" 2>/dev/null && ok daemon_kept_running || fail daemon_kept_running "exited"
check_done
