#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ain_scan.sh BENCH_BINARY [--rounds N]: starts the recorded-traffic AIN server on loopback
# (tests/lib/ain_node.py) and runs bench/ain_scan against it; stops the server by PID.
set -euo pipefail
bench=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
cd "$(dirname "$0")/.."
. tests/lib/ain_node.sh
tmp=$(mktemp -d)
trap 'ain_node_stop; rm -rf "$tmp"' EXIT
ain_node_start "$tmp"
"$bench" --rpc "$AIN_RPC_URL" "$@"
