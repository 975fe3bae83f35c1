#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_ain_rpc.sh IT_AIN_RPC: runs the JSON-RPC client test binary against the recorded-traffic
# server (tests/lib/ain_node.py, standing in for an AIN node, which cannot be installed
# here), started on 127.0.0.1 for this run and stopped by its PID on exit. Exits with the
# test's status; 77 (skip) when python3 is missing. Run from the repository root (ctest does).
set -u
bin=${1:?usage: it_ain_rpc.sh PATH_TO_IT_AIN_RPC}
if ! command -v python3 >/dev/null 2>&1; then
    echo "skip: python3 is needed for the recorded-traffic AIN server" >&2
    exit 77
fi
. "$(dirname "$0")/lib/ain_node.sh"
tmp=$(mktemp -d)
trap 'ain_node_stop; rm -rf "$tmp"' EXIT
ain_node_start "$tmp" || exit 1
"$bin"
status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
    echo "--- ain_node log (last 40 lines)" >&2
    tail -n 40 "$tmp/ain_node.log" >&2
fi
exit "$status"
