# SPDX-License-Identifier: Apache-2.0
# ain_node.sh: bash helpers (source this file) around tests/lib/ain_node.py, the
# recorded-traffic server that stands in for an AIN node, which cannot be installed here.
# It answers from the recording in tests/data/ain/ on 127.0.0.1 only.
#   ain_node_start DIR [ARGS...]  starts the server (ports picked by the kernel) with DIR for
#                                 its ready file and log (DIR/ain_node.log), waits until it
#                                 listens, and exports AIN_RPC_URL, AIN_WS_URL, AIN_CTL_URL,
#                                 AIN_NODE_PID; extra ARGS go to ain_node.py (--head N,
#                                 --ping-interval-ms N, --idle-close-ms N, ...). Returns 1
#                                 and prints the log when it does not come up in 10 s.
#   ain_node_stop                 stops the server started here, by its PID, and waits for it.
#   ain_ctl JSON                  POSTs JSON to the control endpoint and prints the answer.
# Call from the repository root, or set AIN_NODE_DATA to the recording folder.

ain_node_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

ain_node_start() {
    local dir=${1:?usage: ain_node_start DIR [ARGS...]}
    shift
    local data=${AIN_NODE_DATA:-$ain_node_lib_dir/../data/ain}
    local ready=$dir/ain_node.ready i
    rm -f "$ready"
    python3 "$ain_node_lib_dir/ain_node.py" --data "$data" --host 127.0.0.1 --port 0 \
        --ws-port 0 --ready-file "$ready" "$@" 2>"$dir/ain_node.log" &
    AIN_NODE_PID=$!
    export AIN_NODE_PID
    for i in $(seq 1 200); do
        [ -s "$ready" ] && break
        if ! kill -0 "$AIN_NODE_PID" 2>/dev/null; then
            break
        fi
        sleep 0.05
    done
    if [ ! -s "$ready" ]; then
        echo "ain_node: did not start; log:" >&2
        cat "$dir/ain_node.log" >&2
        ain_node_stop
        return 1
    fi
    local rpc ws
    rpc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rpc"])' "$ready")
    ws=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ws"])' "$ready")
    export AIN_RPC_URL=http://127.0.0.1:$rpc/json-rpc
    export AIN_WS_URL=ws://127.0.0.1:$ws
    export AIN_CTL_URL=http://127.0.0.1:$rpc/_ctl
}

ain_node_stop() {
    if [ -n "${AIN_NODE_PID:-}" ]; then
        kill "$AIN_NODE_PID" 2>/dev/null || true
        wait "$AIN_NODE_PID" 2>/dev/null || true
        unset AIN_NODE_PID
    fi
    return 0
}

ain_ctl() {
    local body=${1:?usage: ain_ctl JSON}
    python3 - "$AIN_CTL_URL" "$body" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(),
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode(), file=sys.stderr)
    sys.exit(1)
PY
}
