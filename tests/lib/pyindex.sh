# SPDX-License-Identifier: Apache-2.0
# tests/lib/pyindex.sh: an offline PEP 503 package index on 127.0.0.1 holding real wheels of
# ocra-smoke, 1.0.0 and 1.0.1 (tests/lib/pyindex.py makes them). Source it from bash:
#
#   . tests/lib/pyindex.sh
#   pyindex_start DIR [HOLD_FILE] || exit 1
#                                 # with HOLD_FILE: wheel requests wait while that file exists
#                                 # (a "hold GET PATH" line in the log when one starts waiting)
#                                 # exports OCRA_PYINDEX_URL (http://127.0.0.1:PORT/simple),
#                                 # OCRA_PYINDEX_PID, OCRA_PYINDEX_LOG (one line per request)
#   ...
#   pyindex_stop                  # by PID
#
# The server listens on a free port of 127.0.0.1 only. A container reaches it when it shares
# the host's network (docker build --network host).

_pyindex_py="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pyindex.py"

# pyindex_start DIR [HOLD_FILE]: builds the index under DIR and serves it; waits (10 s) for the
# port.
pyindex_start() {
    local dir=${1:?usage: pyindex_start DIR [HOLD_FILE]}
    local hold=()
    [ -n "${2:-}" ] && hold=(--hold-file "$2")
    command -v python3 >/dev/null 2>&1 || { echo "pyindex.sh: no python3" >&2; return 1; }
    mkdir -p "$dir" || return 1
    python3 "$_pyindex_py" build "$dir/root" >/dev/null || return 1
    rm -f "$dir/port"
    OCRA_PYINDEX_LOG="$dir/requests.log"
    python3 "$_pyindex_py" serve "$dir/root" "$dir/port" "${hold[@]}" 2>"$OCRA_PYINDEX_LOG" &
    OCRA_PYINDEX_PID=$!
    export OCRA_PYINDEX_PID OCRA_PYINDEX_LOG
    local _
    for _ in $(seq 1 100); do
        if [ -s "$dir/port" ]; then
            OCRA_PYINDEX_URL="http://127.0.0.1:$(cat "$dir/port")/simple"
            export OCRA_PYINDEX_URL
            return 0
        fi
        kill -0 "$OCRA_PYINDEX_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "pyindex.sh: the index server did not start:" >&2
    cat "$OCRA_PYINDEX_LOG" >&2
    pyindex_stop
    return 1
}

# pyindex_stop: stops the server pyindex_start started. Safe to call twice.
pyindex_stop() {
    local pid=${OCRA_PYINDEX_PID:-}
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    OCRA_PYINDEX_PID=
}
