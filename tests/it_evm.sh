#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_evm.sh: the EVM source against a real anvil. The committed contract artifacts match a
# fresh solcjs compile; publishes from C and from cast are seen exactly once, only when
# confirmed, trusted per the operator allowlist; a reorg of unconfirmed blocks never emits
# the orphaned event but does emit its replacement; a reorg past the confirmation depth is
# reported as a finality violation and the orphaned event is marked; ocra's signed
# transactions equal cast's byte for byte and anvil accepts them; hostile logs from a contract
# that emits crafted ModelPublished data are rejected cleanly.
# Also the CLI: `ocra publish --chain evm` and `ocra watch --chain evm`.
# Usage: it_evm.sh path/to/it_evm [path/to/ocra]
set -uo pipefail
cd "$(dirname "$0")/.."
IT=$(realpath "$1")
OCRA=${2:+$(realpath "$2")}
source tests/lib/anvil.sh
evm_tools_or_skip

work=$(mktemp -d /tmp/ocra-it-evm.XXXXXX)
trap 'anvil_stop; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
anvil_start || exit 1

pass=0 failed=0
ok() { echo "ok $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

url=$EVM_RPC_URL
db=$work/journal.db
scan() { "$IT" scan "$url" "$db" "$contract" --confirmations 3 --allow "$EVM_ADDR0" "$@"; }
mine() { anvil_rpc anvil_mine "[\"$(printf '0x%x' "$1")\"]" >/dev/null; }
count() { grep -c "$1" "$2" || true; }

# --- contract artifacts
evm_compile "$work/fresh"
check artifacts_match_fresh_solcjs_compile \
    cmp -s "$work/fresh/ModelRegistry.bin" contracts/ModelRegistry.bin
check abi_matches_fresh_solcjs_compile \
    cmp -s "$work/fresh/ModelRegistry.abi.json" contracts/ModelRegistry.abi.json

# --- deploy from C, publish from C and from cast
contract=$("$IT" deploy "$url" "$EVM_KEY0" contracts/ModelRegistry.bin)
check deploy_from_c_gives_a_contract test -n "$contract"
"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
    "setPublisher(address,bool)" "$EVM_ADDR1" true >/dev/null
"$IT" scan "$url" "$db" "$contract" --confirmations 3 --from-block 0 >/dev/null # sets the cursor
"$IT" publish "$url" "$EVM_KEY0" "$contract" bert '{"name":"bert","modelVersion":"1.0"}' >"$work/pub"
"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY1" "$contract" \
    "publish(string,string)" llama '{"modelVersion":"2.0"}' >/dev/null
if "$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY2" "$contract" \
    "publish(string,string)" nope '{}' >/dev/null 2>&1; then
    bad contract_refuses_non_publishers
else
    ok contract_refuses_non_publishers
fi
scan >"$work/s1"
check unconfirmed_publishes_are_not_emitted test "$(wc -l <"$work/s1")" -eq 0
mine 3
scan >"$work/s2"
check confirmed_publishes_emitted_once test "$(wc -l <"$work/s2")" -eq 2
check c_publish_is_accepted_and_trusted grep -q '"path":"'"$contract"'/bert".*"trusted":true,"status":"accepted","spec":{"modelVersion":"1.0","name":"bert"}' "$work/s2"
check cast_publish_untrusted_by_operator grep -q '/llama".*"status":"rejected".*not in the operator allowlist' "$work/s2"
check event_id_is_chain_block_hash_log_index grep -qE '"event":"evm:31337:0x[0-9a-f]{64}:[0-9]+"' "$work/s2"
scan >"$work/s3"
check rescan_emits_nothing_new test "$(wc -l <"$work/s3")" -eq 0

# --- reorg of unconfirmed blocks: the orphan is never emitted, the replacement is
snap=$(anvil_rpc evm_snapshot | tr -d '"')
"$IT" publish "$url" "$EVM_KEY0" "$contract" orphan '{"modelVersion":"6.6.6"}' >/dev/null
mine 1
scan >"$work/r1"
anvil_rpc evm_revert "[\"$snap\"]" >/dev/null
"$IT" publish "$url" "$EVM_KEY0" "$contract" replacement '{"modelVersion":"7.0"}' >/dev/null
mine 3
scan >"$work/r2"
check orphaned_unconfirmed_event_never_emitted \
    test "$(cat "$work/r1" "$work/r2" | count orphan -)" -eq 0
check replacement_event_emitted_once test "$(count '/replacement"' "$work/r2")" -eq 1
"$IT" list "$db" evm:31337 >"$work/l1"
check journal_has_no_orphan test "$(count orphan "$work/l1")" -eq 0

# --- reorg past the confirmation depth: reported, orphan marked, new chain journaled
snap=$(anvil_rpc evm_snapshot | tr -d '"')
"$IT" publish "$url" "$EVM_KEY0" "$contract" deep '{"modelVersion":"8.0"}' >/dev/null
mine 5
scan >"$work/d1"
check deep_event_emitted_when_confirmed test "$(count '/deep"' "$work/d1")" -eq 1
anvil_rpc evm_revert "[\"$snap\"]" >/dev/null
"$IT" publish "$url" "$EVM_KEY0" "$contract" other '{"modelVersion":"9.0"}' >/dev/null
mine 8
scan >"$work/d2" 2>"$work/d2.err"
check finality_violation_reported grep -q '"finalityViolation":true,"orphaned":1' "$work/d2"
check finality_violation_logged_loudly grep -q 'finality violation' "$work/d2.err"
check new_chain_event_journaled test "$(count '/other"' "$work/d2")" -eq 1
"$IT" list "$db" evm:31337 >"$work/l2"
check orphaned_final_event_marked_rejected grep -q ' rejected ' <(grep "$(grep -o '"event":"[^"]*' "$work/d1" | cut -d'"' -f4)" "$work/l2")

# --- signed transactions: byte for byte equal to cast's, and accepted by anvil
data=$("$CAST" calldata "publish(string,string)" tx '{"modelVersion":"1"}')
nonce=$("$CAST" nonce --rpc-url "$url" "$EVM_ADDR0")
ours=$("$IT" mktx "$EVM_KEY0" 31337 "$nonce" 200000 30000000000 1000000000 "$contract" "$data")
theirs=$("$CAST" mktx --rpc-url "$url" --private-key "$EVM_KEY0" --nonce "$nonce" \
    --gas-limit 200000 --gas-price 30000000000 --priority-gas-price 1000000000 --chain 31337 \
    "$contract" "publish(string,string)" tx '{"modelVersion":"1"}')
check eip1559_tx_equals_cast_mktx test "$ours" = "$theirs"
ours_l=$("$IT" mktx "$EVM_KEY0" 31337 "$nonce" 200000 30000000000 0 "$contract" "$data" legacy)
theirs_l=$("$CAST" mktx --rpc-url "$url" --legacy --private-key "$EVM_KEY0" --nonce "$nonce" \
    --gas-limit 200000 --gas-price 30000000000 --chain 31337 \
    "$contract" "publish(string,string)" tx '{"modelVersion":"1"}')
check legacy_eip155_tx_equals_cast_mktx test "$ours_l" = "$theirs_l"
check anvil_accepts_ocra_signed_tx \
    grep -q '"status":"0x1"' <("$CAST" publish --rpc-url "$url" "$ours")

# --- hostile logs: a contract emitting crafted ModelPublished logs
# runtime: calldatacopy(0,0,size); log3(96, size-96, mload(0), mload(32), mload(64))
echo 6014600a5f3960145ff3365f5f376040516020515f51606036036060a300 >"$work/evil.bin"
evil=$("$IT" deploy "$url" "$EVM_KEY0" "$work/evil.bin")
topic0=$("$CAST" keccak 'ModelPublished(bytes32,address,string,string)')
pub=$("$CAST" abi-encode 'f(address)' "$EVM_ADDR0")
emit() { # name_hash data
    "$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$evil" \
        "0x${topic0#0x}${1#0x}${pub#0x}${2#0x}" >/dev/null
}
h=$("$CAST" keccak fine)
valid=$("$CAST" abi-encode 'f(string,string)' fine '{"modelVersion":"1"}')
emit "$h" "$valid"
emit "$h" "0x$(printf '%064x%064x' 4096 64)${valid:130}"                 # offset past the end
emit "$h" "${valid:0:130}$(printf '%064x' 65535)${valid:194}"             # length past the end
emit "$("$CAST" keccak evil)" "$("$CAST" abi-encode 'f(string,bytes)' evil 0xfffe80)" # not UTF-8
emit "$h" "0x$(printf '%064x' 64)"                                        # truncated
emit "$("$CAST" keccak forged)" "$valid"                                  # name hash forged
mine 3
"$IT" scan "$url" "$work/evil.db" "$evil" --confirmations 3 --from-block 0 \
    --allow "$EVM_ADDR0" >"$work/h1" 2>"$work/h1.err"
rc=$?
check hostile_logs_scan_cleanly test "$rc" -eq 0
check hostile_logs_all_journaled test "$(wc -l <"$work/h1")" -eq 6
check hostile_valid_log_accepted test "$(count '"status":"accepted"' "$work/h1")" -eq 1
check hostile_offset_rejected grep -q 'offset out of bounds' "$work/h1"
check hostile_length_rejected grep -q 'length past the end' "$work/h1"
check hostile_non_utf8_rejected grep -q 'spec is not valid UTF-8' "$work/h1"
check hostile_truncated_rejected grep -q 'cannot hold 2 offsets' "$work/h1"
check hostile_forged_name_hash_rejected grep -q 'is not keccak256(name)' "$work/h1"

# a call that reverts but is mined (fixed gas, no estimate): the error names the contract's
# error, from a replay of the call at its block, not only "reverted"
"$IT" publish-gas "$url" "$EVM_KEY2" "$contract" mined '{"modelVersion":"1.0"}' 200000 \
    >/dev/null 2>"$work/mined.err"
check mined_revert_fails test $? -ne 0
check mined_revert_names_the_error grep -qE 'transaction 0x[0-9a-f]{64} reverted in block [0-9]+: eth_call: the contract reverted with NotPublisher\(\)' "$work/mined.err"

# --- the CLI: ocra publish --chain evm, ocra watch --chain evm
if [ -n "$OCRA" ]; then
    printf '%s\n' "${EVM_KEY0#0x}" >"$work/key0"
    chmod 600 "$work/key0"
    tx=$("$OCRA" publish --chain evm --rpc "$url" --key-file "$work/key0" --contract "$contract" \
        --wait 30 examples/sentiment-bert.json 2>"$work/cli.err")
    check cli_publish_prints_tx_hash grep -qE '^0x[0-9a-f]{64}$' <<<"$tx"
    "$OCRA" publish --chain evm --rpc "$url" --key-file "$work/key0" --contract "$contract" \
        examples/hostile.json >/dev/null 2>"$work/cli-hostile.err"
    check cli_publish_refuses_hostile_spec test $? -eq 2
    check cli_publish_says_which_key_signs \
        grep -q "publish: signing as $EVM_ADDR0 with the key in $work/key0 (--key-file)" "$work/cli.err"
    # Without --key-file the operator's key (evm.key_file) signs, and says so; account 2 is no
    # publisher: the contract's custom error comes back by name from the ABI, not as hex.
    printf '%s\n' "${EVM_KEY2#0x}" >"$work/key2"
    chmod 600 "$work/key2"
    printf 'evm:\n  rpc: ["%s"]\n  contract: "%s"\n  key_file: key2\n' "$url" "$contract" >"$work/op.yaml"
    "$OCRA" -c "$work/op.yaml" publish --chain evm --wait 30 examples/sentiment-bert.json \
        >/dev/null 2>"$work/cli-op.err"
    check cli_publish_non_publisher_exits_1 test $? -eq 1
    check cli_publish_names_the_operator_key grep -q \
        "publish: signing as $EVM_ADDR2 with the operator's key (evm.key_file = $work/key2 from $work/op.yaml" "$work/cli-op.err"
    check cli_publish_names_the_contract_error grep -q \
        'the contract reverted with NotPublisher(): the sending account is not a publisher' "$work/cli-op.err"
    check cli_publish_failure_names_the_signer grep -q \
        "signed by $EVM_ADDR2, the operator's key from evm.key_file" "$work/cli-op.err"
    mine 3
    "$OCRA" watch --chain evm --rpc "$url" --contract "$contract" --confirmations 3 \
        --allow "$EVM_ADDR0" --from-block 0 --once --journal "$work/cli.db" >"$work/cli.jsonl" 2>>"$work/cli.err"
    check cli_watch_sees_cli_publish grep -q '/sentiment-bert".*"trusted":true,"status":"accepted"' "$work/cli.jsonl"
    check cli_watch_json_lines_like_ain grep -q '"event":"evm:31337:0x' "$work/cli.jsonl"
    "$OCRA" events --journal "$work/cli.db" --source evm:31337 >"$work/cli-events.jsonl"
    check cli_events_lists_the_journal test "$(wc -l <"$work/cli-events.jsonl")" -eq "$(wc -l <"$work/cli.jsonl")"
    "$OCRA" watch --chain evm --rpc "$url" --once --journal "$work/cli.db" >/dev/null 2>"$work/cli-usage.err"
    check cli_watch_evm_needs_contract test $? -eq 2

    # --- provider limits and failover: the first endpoint is dead, the second (a proxy in front
    # of anvil) refuses eth_getLogs over more than 8 blocks as hosted providers do.
    python3 tests/lib/rpcproxy.py --upstream "$url" --max-range 8 --ready-file "$work/proxy.port" \
        --log "$work/proxy.log" 2>"$work/proxy.err" &
    proxy_pid=$!
    for _ in $(seq 1 100); do [ -s "$work/proxy.port" ] && break; sleep 0.05; done
    dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    "$OCRA" watch --chain evm --rpc "http://127.0.0.1:$dead" --rpc "http://127.0.0.1:$(cat "$work/proxy.port")" \
        --contract "$contract" --confirmations 3 --allow "$EVM_ADDR0" --from-block 0 --once \
        --journal "$work/limits.db" >"$work/limits.jsonl" 2>"$work/limits.err"
    rc=$?
    kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null
    check failover_and_split_ranges_exit_0 test "$rc" -eq 0
    check failover_and_split_ranges_same_events cmp -s <(cut -d, -f1 "$work/cli.jsonl" | sort) <(cut -d, -f1 "$work/limits.jsonl" | sort)
    check provider_limit_was_hit grep -q '"refused": true' "$work/proxy.log"
    check split_ranges_within_limit python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = [r for r in rows if not r["refused"]]
assert ok and all(r["to"] - r["from"] + 1 <= 8 for r in ok)
# the accepted ranges cover every block once, without gaps
ok.sort(key=lambda r: r["from"])
assert all(a["to"] + 1 == b["from"] for a, b in zip(ok, ok[1:])), ok' "$work/proxy.log"

    # --- a node that answers every request with a JSON-RPC error (a proxy in front of anvil,
    # --error-file): the watcher backs off between failed polls, the delay doubling per failure
    # in a row, instead of polling again at once.
    python3 tests/lib/rpcproxy.py --upstream "$url" --ready-file "$work/eproxy.port" \
        --log "$work/eproxy.log" --error-file "$work/erring" 2>"$work/eproxy.err" &
    eproxy_pid=$!
    for _ in $(seq 1 100); do [ -s "$work/eproxy.port" ] && break; sleep 0.05; done
    printf 'evm:\n  poll_interval_ms: 100\n' >"$work/fast.yaml"
    "$OCRA" -c "$work/fast.yaml" watch --chain evm --rpc "http://127.0.0.1:$(cat "$work/eproxy.port")" \
        --contract "$contract" --confirmations 3 --allow "$EVM_ADDR0" --from-block 0 \
        --journal "$work/erring.db" >/dev/null 2>"$work/erring.err" &
    watch_pid=$!
    # the node errs once the watcher's first poll has read logs: that poll also asked for the
    # `finalized` block, and an error there means "no such tag here" (confirmations are counted
    # instead, unannounced), not a failed poll
    for _ in $(seq 1 600); do grep -qs '"from"' "$work/eproxy.log" && break; sleep 0.05; done
    touch "$work/erring"
    # until the watcher has announced 6 retries (a bound against a hang, not a timing check)
    for _ in $(seq 1 1200); do
        [ "$(count 'retrying in' "$work/erring.err")" -ge 6 ] && break
        kill -0 "$watch_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$watch_pid" 2>/dev/null; wait "$watch_pid" 2>/dev/null
    kill "$eproxy_pid" 2>/dev/null; wait "$eproxy_pid" 2>/dev/null
    # Each failed poll is one request (a node's error is not retried within the poll); the
    # proxy logs when each came, the watcher the delay it announced after each failure. Every
    # request comes at least the announced delay after the one before, so that the requests
    # are bounded by the time the node erred: 50-100 ms after the first failure (the 100 ms
    # interval, 50-100 % jitter), doubled per failure, is at most 1 + log2(span / 50 ms + 1)
    # requests over a span. A watcher that polls again at once makes one request per round
    # trip: many more, each sooner than announced.
    check erring_node_gets_bounded_requests python3 -c '
import json, math, re, sys
t = [r["t"] for r in map(json.loads, open(sys.argv[1])) if "errored" in r]
# the first failing poll may have passed `latest` before the node began to err: its
# `finalized` query errs (taken as "no such tag": confirmations counted, nothing announced) and
# its next request fails the poll within the same poll, sooner than any delay (>= 50 ms)
if len(t) > 1 and (t[1] - t[0]) * 1000 < 50:
    t = t[1:]
d = [int(x) for x in re.findall(r"retrying in (\d+) ms", open(sys.argv[2]).read())]
assert len(t) >= 6 and len(d) >= len(t) - 1, ("requests", len(t), "announced", len(d))
early = [(i, round((b - a) * 1000, 1), w) for i, (a, b, w) in enumerate(zip(t, t[1:], d)) if (b - a) * 1000 + 1 < w]
assert not early, ("requests sooner than announced (index, gap ms, delay ms)", early[:5])
span = (t[-1] - t[0]) * 1000
assert len(t) <= 1 + math.log2((span + len(t)) / 50 + 1), ("requests", len(t), "in ms", span)' \
        "$work/eproxy.log" "$work/erring.err"
    check erring_node_retry_delays_grow python3 -c '
import re, sys
d = [int(x) for x in re.findall(r"retrying in (\d+) ms", open(sys.argv[1]).read())]
# 50-100, 100-200, 200-400 ... ms: never shorter than the one before, the sixth longer than the first
assert len(d) >= 6 and all(a <= b for a, b in zip(d, d[1:])) and d[5] > d[0], d' "$work/erring.err"
fi

echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
