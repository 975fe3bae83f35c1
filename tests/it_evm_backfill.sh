#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_evm_backfill.sh: backfilling 10,000 anvil blocks holding 2,000 ModelPublished events,
# interrupted three ways (a head limit mid-range, the callback stopping mid-range, kill -9 at
# a random point), then resumed: the journal ends with exactly the 2,000 events, no gap, no
# duplicate, and no event is printed twice across the runs.
# Usage: it_evm_backfill.sh path/to/it_evm
set -uo pipefail
cd "$(dirname "$0")/.."
IT=$(realpath "$1")
source tests/lib/anvil.sh
evm_tools_or_skip

work=$(mktemp -d /tmp/ocra-it-evm-bf.XXXXXX)
scan_pid=
trap '[ -n "$scan_pid" ] && kill -9 "$scan_pid" 2>/dev/null; anvil_stop; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
# cancun: no EIP-2935 history contract, whose growth slows anvil 1.7 down block after block
anvil_start --hardfork cancun --prune-history 300 || exit 1

pass=0 failed=0
ok() { echo "ok $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

url=$EVM_RPC_URL db=$work/journal.db
contract=$("$IT" deploy "$url" "$EVM_KEY0" contracts/ModelRegistry.bin) || exit 1
start=$(date +%s)
"$IT" gen "$url" "$EVM_KEY0" "$contract" 2000 10000 || { echo "FAIL gen"; exit 1; }
echo "# generated 2000 events in 10000 blocks in $(($(date +%s) - start)) s"
check chain_has_10000_blocks test "$("$CAST" block-number --rpc-url "$url")" -ge 10000

scan() { "$IT" scan "$url" "$db" "$contract" --confirmations 0 --from-block 0 \
    --allow "$EVM_ADDR0" "$@"; }

scan --to-block 4321 --batch 1000 >"$work/p1" || bad scan_to_head_limit
check head_limit_stops_mid_range test "$(tail -1 "$work/p1" | grep -o '"block":[0-9]*' | cut -d: -f2)" -le 4321
scan --stop-after 150 --batch 400 >"$work/p2" || bad scan_stop_after
check callback_stop_stops test "$(wc -l <"$work/p2")" -eq 150
"$IT" scan "$url" "$db" "$contract" --confirmations 0 --from-block 0 --allow "$EVM_ADDR0" \
    --batch 5 >"$work/p3" & # not through scan(): kill -9 must hit it_evm itself
scan_pid=$!
sleep 0.$((RANDOM % 5 + 1))
kill -9 "$scan_pid" 2>/dev/null
wait "$scan_pid" 2>/dev/null
scan_pid=
scan --batch 2000 >"$work/p4" || bad scan_resume

"$IT" list "$db" evm:31337 >"$work/list" || bad list
check journal_has_2000_events test "$(wc -l <"$work/list")" -eq 2000
check journal_ids_unique test "$(cut -d' ' -f1 "$work/list" | sort -u | wc -l)" -eq 2000
check journal_txs_unique test "$(cut -d' ' -f4 "$work/list" | sort -u | wc -l)" -eq 2000
check all_accepted test "$(grep -c ' accepted ' "$work/list")" -eq 2000
cat "$work"/p[1-4] | grep -o '"event":"[^"]*"' | sort | uniq -d >"$work/dups"
check no_event_printed_twice test ! -s "$work/dups"
check printed_names_in_chain_order bash -c "grep -o '\"path\":\"[^\"]*' '$work/p4' | \
    sed 's/.*model-//' | sort -n -c"

echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
