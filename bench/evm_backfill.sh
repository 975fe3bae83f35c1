#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# evm_backfill.sh: makes a local anvil chain of 10,000 blocks holding 2,000 ModelPublished
# events (tests/it_evm gen) and runs bench_evm_backfill against it (docs/BENCHMARKS.md).
# Usage: bench/evm_backfill.sh BUILD_DIR [bench args...]   e.g. build/release
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "$1"); shift
source tests/lib/anvil.sh
evm_tools_or_skip
trap anvil_stop EXIT
anvil_start --hardfork cancun --prune-history 300
contract=$("$build/tests/it_evm" deploy "$EVM_RPC_URL" "$EVM_KEY0" contracts/ModelRegistry.bin)
"$build/tests/it_evm" gen "$EVM_RPC_URL" "$EVM_KEY0" "$contract" 2000 10000
"$build/bench/bench_evm_backfill" "$EVM_RPC_URL" "$contract" --events 2000 "$@"
