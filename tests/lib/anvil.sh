# SPDX-License-Identifier: Apache-2.0
# anvil.sh: sourced by the EVM tests and benchmark. Finds the npm tools (anvil, cast, solcjs)
# that scripts/install-npm-tools put in tests/evm/node_modules, starts a private anvil on
# 127.0.0.1 at a free port (exporting EVM_RPC_URL), compiles the ModelRegistry contract, and
# stops anvil by the PID it started. A machine without the tools exits 77 (ctest skip).
#
#   source tests/lib/anvil.sh
#   evm_tools_or_skip            # sets ANVIL CAST SOLCJS, or exits 77 saying why
#   anvil_start [anvil args...]  # sets ANVIL_PID ANVIL_PORT EVM_RPC_URL; anvil_stop on EXIT is up to you
#   evm_compile OUTDIR           # OUTDIR/ModelRegistry.abi.json and .bin
#   anvil_rpc METHOD PARAMS_JSON # one JSON-RPC call through cast
#   evm_reports CONTRACT         # the contract's StatusReported logs, one "eventKey reporter
#                                # status" line each (the daemon's on-chain reports)
#   evm_event_key ID             # the eventKey of ocra event ID: 0x + sha256 of the id
#   evm_registry_deploy          # deploys contracts/ModelRegistry.bin with key 0 (owner and
#                                # publisher) on $EVM_RPC_URL; prints its address

. "$(dirname "${BASH_SOURCE[0]}")/port.sh"

# Anvil's well-known development keys (public test keys; never fund them anywhere real).
EVM_KEY0=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
EVM_ADDR0=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
EVM_KEY1=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
EVM_ADDR1=0x70997970C51812dc3A010C7d01b50e0d17dc79C8
EVM_KEY2=0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a
EVM_ADDR2=0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC

_evm_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# The native binary of an @foundry-rs tool when its platform package is there (no node wrapper
# between us and the process we stop by PID), else the npm wrapper.
_evm_native() {
    local mods=$1 tool=$2 arch
    case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
    local native=$mods/@foundry-rs/$tool-linux-$arch/bin/$tool
    if [ -x "$native" ]; then echo "$native"; else echo "$mods/.bin/$tool"; fi
}

evm_tools_or_skip() {
    local mods=${OCRA_EVM_NODE_MODULES:-$_evm_root/tests/evm/node_modules}
    ANVIL=$(_evm_native "$mods" anvil) CAST=$(_evm_native "$mods" cast) SOLCJS=$mods/.bin/solcjs
    local t
    for t in "$ANVIL" "$CAST" "$SOLCJS"; do
        if [ ! -x "$t" ] || ! "$t" --version >/dev/null 2>&1; then
            echo "skip: $t is missing or does not run; run scripts/install-npm-tools" >&2
            exit 77
        fi
    done
    command -v node >/dev/null || { echo "skip: node is not installed" >&2; exit 77; }
}

# A port nobody listens on (anvil still fails if another process takes it first: retried).
_evm_free_port() { free_port; }

anvil_start() {
    local log try
    log=$(mktemp /tmp/ocra-anvil.XXXXXX.log)
    for try in 1 2 3 4 5 6 7 8 9 10; do
        ANVIL_PORT=$(_evm_free_port) || break
        "$ANVIL" --host 127.0.0.1 --port "$ANVIL_PORT" "$@" >"$log" 2>&1 &
        ANVIL_PID=$!
        EVM_RPC_URL=http://127.0.0.1:$ANVIL_PORT
        export EVM_RPC_URL ANVIL_PID ANVIL_PORT
        for _ in $(seq 100); do
            if "$CAST" chain-id --rpc-url "$EVM_RPC_URL" >/dev/null 2>&1; then
                return 0
            fi
            kill -0 "$ANVIL_PID" 2>/dev/null || break
            sleep 0.1
        done
        anvil_stop
    done
    echo "anvil did not start; its log:" >&2
    tail -20 "$log" >&2
    return 1
}

anvil_stop() {
    if [ -n "${ANVIL_PID:-}" ]; then
        kill "$ANVIL_PID" 2>/dev/null || true
        wait "$ANVIL_PID" 2>/dev/null || true
        ANVIL_PID=
    fi
}

anvil_rpc() {
    "$CAST" rpc --rpc-url "$EVM_RPC_URL" "$1" --raw "${2:-[]}"
}

evm_reports() {
    "$CAST" logs --rpc-url "$EVM_RPC_URL" --from-block 0 --address "${1:?usage: evm_reports CONTRACT}" \
        --json 'StatusReported(bytes32,address,string)' |
        python3 -c '
import json, sys
for log in json.load(sys.stdin):
    t = log["topics"]
    data = bytes.fromhex(log["data"][2:])
    n = int.from_bytes(data[32:64], "big")
    print(t[1], "0x" + t[2][-40:], data[64:64 + n].decode())'
}

evm_registry_deploy() {
    "$CAST" send --json --rpc-url "$EVM_RPC_URL" --private-key "$EVM_KEY0" \
        --create "0x$(cat "$_evm_root/contracts/ModelRegistry.bin")" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["contractAddress"])'
}

evm_event_key() { printf '0x%s' "$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)"; }

# Compiles contracts/ModelRegistry.sol exactly as the committed artifacts were made.
evm_compile() {
    local out=$1 tmp
    tmp=$(mktemp -d)
    (cd "$_evm_root" && "$SOLCJS" --optimize --abi --bin -o "$tmp" contracts/ModelRegistry.sol) >/dev/null
    mkdir -p "$out"
    cp "$tmp"/contracts_ModelRegistry_sol_ModelRegistry.abi "$out/ModelRegistry.abi.json"
    cp "$tmp"/contracts_ModelRegistry_sol_ModelRegistry.bin "$out/ModelRegistry.bin"
    rm -rf "$tmp"
}
