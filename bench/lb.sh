#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lb.sh: requests per second and latency through the load balancer (HAProxy as ocra's daemon
# sets it up: bench_lb_front) against direct requests to one replica, in one run, with ab
# (docs/BENCHMARKS.md). The replicas are small HTTP servers that answer 200 "ok" to every
# request (a HAProxy of their own each, `http-request return`: fast enough that the hop, not
# the replica, is measured). Rows: direct to replica 0 (the baseline), through the frontend
# with 1 replica, through the frontend with 2 replicas.
# Usage: bench/lb.sh BUILD_DIR [REQUESTS [CONCURRENCY]]   e.g. build/release 20000 16
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "$1")
n=${2:-20000}
c=${3:-16}
source tests/lib/port.sh
command -v ab >/dev/null && [ -x /usr/sbin/haproxy ] ||
    { echo "lb.sh: needs ab and /usr/sbin/haproxy (apt-get install apache2-utils haproxy)"; exit 1; }
tmp=$(mktemp -d /tmp/ocra-bench-lb.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for f in "$tmp"/replica*.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    exec 3>&- 2>/dev/null || true
    sleep 0.5
    rm -rf "$tmp"
}
trap cleanup EXIT
rport=()
for r in 0 1; do
    p=$(free_port)
    rport+=("$p")
    cat >"$tmp/replica$r.cfg" <<CFG
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend replica
    bind 127.0.0.1:$p
    http-request return status 200 content-type text/plain string "ok"
CFG
    /usr/sbin/haproxy -D -p "$tmp/replica$r.pid" -f "$tmp/replica$r.cfg"
done
front=$(free_port)
# bench_lb_front lives while fd 3 is open; $1 replica ports
start_front() {
    rm -rf "$tmp/lb"
    mkdir -p "$tmp/lb"
    exec 3> >("$build/bench/bench_lb_front" "$tmp/lb" "$front" "$@" >"$tmp/front.out" 2>&1)
    for _ in $(seq 100); do grep -q ready "$tmp/front.out" 2>/dev/null && return 0; sleep 0.1; done
    echo "lb.sh: bench_lb_front did not start: $(cat "$tmp/front.out")" >&2
    exit 1
}
stop_front() {
    exec 3>&-
    for _ in $(seq 50); do [ -s "$tmp/lb/haproxy.pid" ] && kill -0 "$(cat "$tmp/lb/haproxy.pid")" 2>/dev/null || break; sleep 0.1; done
}
# run NAME URL: one ab run; prints the row
run() {
    ab -q -n "$n" -c "$c" "$2" >"$tmp/ab.out" 2>&1
    local rps p50 p99 failed non2xx
    rps=$(awk '/^Requests per second:/ { print $4 }' "$tmp/ab.out")
    p50=$(awk '$1 == "50%" { print $2 }' "$tmp/ab.out")
    p99=$(awk '$1 == "99%" { print $2 }' "$tmp/ab.out")
    failed=$(awk '/^Failed requests:/ { print $3 }' "$tmp/ab.out")
    non2xx=$(awk '/^Non-2xx responses:/ { print $3 }' "$tmp/ab.out")
    echo "$1 $rps $p50 $p99 $failed ${non2xx:-0}"
}
ab -q -n 2000 -c "$c" "http://127.0.0.1:${rport[0]}/" >/dev/null 2>&1 # warm-up
base=$(run direct "http://127.0.0.1:${rport[0]}/")
start_front "${rport[0]}"
one=$(run "lb,1-replica" "http://127.0.0.1:$front/")
stop_front
start_front "${rport[0]}" "${rport[1]}"
two=$(run "lb,2-replicas" "http://127.0.0.1:$front/")
stop_front
echo "ab -n $n -c $c, HAProxy $(/usr/sbin/haproxy -v | awk 'NR == 1 { print $3 }')"
printf '%-14s %10s %8s %8s %8s %8s %8s\n' path req/s ratio p50_ms p99_ms failed non2xx
brps=$(echo "$base" | cut -d' ' -f2)
for row in "$base" "$one" "$two"; do
    read -r name rps p50 p99 failed non2xx <<<"$row"
    printf '%-14s %10s %8s %8s %8s %8s %8s\n' "$name" "$rps" \
        "$(awk -v a="$rps" -v b="$brps" 'BEGIN { printf "%.2f", a / b }')" "$p50" "$p99" "$failed" "$non2xx"
done
