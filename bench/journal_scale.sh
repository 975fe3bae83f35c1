#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# journal_scale.sh BUILD_DIR [SIZES] [DIR]: what reading and starting on a large journal costs,
# by journal size (docs/BENCHMARKS.md).
#
# SIZES is a comma-separated list of event counts (default 1000,100000,1000000); the first is
# the baseline the ratios are taken against. For each size the journal DIR/journal-N.db
# (default DIR /tmp/ocra-bench-scale) is used as it is, or first written by
# BUILD_DIR/bench/bench_journal_gen (a realistic mix: about 80 % reported, dead letters, failed
# runs, 1 % in flight; 1,000,000 events take about 9.5 GB and an hour or more on two cores).
# Then, with BUILD_DIR/src/cli/ocra, the median of 5 runs of:
#   /metrics (serve)             curl against `ocra serve` on the journal
#   ?status=dead                 /api/v1/events?status=dead, its first page (50 events)
#   ?status=dead, page 2         the page after it (cursor=next_cursor)
#   ?status=claimed              a status one event has (the expired claim): the list's worst
#                                case when it had to look at every event
#   ocra events --limit 50       the whole command, oldest first
#   ocra events --status dead    the whole command, --limit 50 --newest
#   ocra lineage ID              the whole command, for an event in the middle of the journal
# and the median of 3 of:
#   daemon start                 `ocra daemon` (2 workers, a configured GPU node, no chain, no
#                                reports) from exec to its "daemon started" line, on a fresh
#                                copy of the journal each time (the copy and its sync to disk
#                                are not timed)
#   /metrics (daemon)            curl against that daemon once it started (its workers busy
#                                with the journal's events in flight)
# Prints the machine's load before and after, one row per operation with the seconds at each
# size and the ratio of each size to the baseline. Exits 0; 1 when a journal or server cannot
# be made.
set -euo pipefail
build=$(realpath "${1:?usage: journal_scale.sh BUILD_DIR [SIZES] [DIR]}")
IFS=, read -r -a sizes <<<"${2:-1000,100000,1000000}"
dir=${3:-/tmp/ocra-bench-scale}
ocra=$build/src/cli/ocra
cd "$(dirname "$0")/.."
. tests/lib/port.sh
mkdir -p "$dir"
tmp=$(mktemp -d /tmp/ocra-bscale.XXXXXX)
pid=
cleanup() {
    set +e
    [ -n "$pid" ] && { kill "$pid"; wait "$pid"; }
    rm -rf "$tmp"
}
trap cleanup EXIT

now_ns() { date +%s%N; }
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# timed N CMD...: the median wall time of N runs of CMD, in seconds
timed() {
    local n=$1 i t0
    shift
    for i in $(seq "$n"); do
        t0=$(now_ns)
        "$@" >/dev/null
        echo "$(($(now_ns) - t0))" | awk '{printf "%.4f\n", $1 / 1e9}'
    done | median
}
# http N URL: the median of curl's total time for N GETs of URL (each must answer 200)
http() {
    local i
    for i in $(seq "$1"); do
        curl -sf -o /dev/null -w '%{time_total}\n' --max-time 120 "$2" || echo 999
    done | median
}

# serve J: ocra serve on journal J; sets $pid and $base
serve() {
    "$ocra" serve --journal "$1" --listen 127.0.0.1:0 >"$tmp/serve.out" 2>"$tmp/serve.err" &
    pid=$!
    for _ in $(seq 600); do
        base=$(sed -n 's|.* at \(http://[^ ]*\)/ .*|\1|p' "$tmp/serve.out")
        [ -n "$base" ] && return 0
        sleep 0.1
    done
    echo "ocra serve did not start: $(cat "$tmp/serve.err")" >&2
    return 1
}

# daemon_start J: seconds from exec of ocra daemon on a copy of J to its "daemon started" line,
# then the seconds of a GET /metrics of that daemon (one line: "START METRICS")
daemon_start() {
    local port t0 t m
    cp "$1" "$tmp/start.db"
    sync "$tmp/start.db" # the copy's writeback is not the start's
    port=$(free_port)
    cat >"$tmp/start.yaml" <<EOF
journal:
  path: $tmp/start.db
api:
  listen: 127.0.0.1:$port
daemon:
  report: false
agent:
  socket_dir: ""
inventory:
  local: false
  nodes:
    - name: gpu-1
      gpu_model: A100-80GB
      gpus: 8
      gpu_memory_mib: 81920
      compute_capability: "8.0"
      driver: "535.104.05"
      cpus: 64
      memory_mib: 524288
EOF
    t0=$(now_ns)
    "$ocra" -c "$tmp/start.yaml" daemon >/dev/null 2>"$tmp/daemon.err" &
    pid=$!
    until grep -q "daemon started" "$tmp/daemon.err"; do
        kill -0 "$pid" 2>/dev/null || { echo "ocra daemon: $(tail -3 "$tmp/daemon.err")" >&2; return 1; }
        sleep 0.005
    done
    t=$(($(now_ns) - t0))
    m=$(curl -sf -o /dev/null -w '%{time_total}' --max-time 120 "http://127.0.0.1:$port/metrics" || echo 999)
    kill "$pid"
    wait "$pid" || true
    pid=
    rm -f "$tmp"/start.db*
    echo "$t $m" | awk '{printf "%.4f %s\n", $1 / 1e9, $2}'
}

ops=("/metrics (serve)" "/metrics (daemon)" "?status=dead" "?status=dead, page 2"
    "?status=claimed" "ocra events --limit 50" "ocra events --status dead" "ocra lineage ID"
    "daemon start")
declare -A t
echo "bench/journal_scale: $ocra, journals in $dir"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
for n in "${sizes[@]}"; do
    j=$dir/journal-$n.db
    if [ ! -f "$j" ]; then
        echo "writing $j ..."
        "$build/bench/bench_journal_gen" --events "$n" "$j" | sed 's/^/  /'
    fi
    id=$(printf 'ain:0:0x%064x:0' $((n / 2 + 1)))
    serve "$j"
    t[$n,0]=$(http 5 "$base/metrics")
    t[$n,2]=$(http 5 "$base/api/v1/events?status=dead")
    cursor=$(curl -sf "$base/api/v1/events?status=dead" | sed -n 's/.*"next_cursor":"\([0-9]*\)".*/\1/p')
    t[$n,3]=$(http 5 "$base/api/v1/events?status=dead&cursor=${cursor:-1}")
    t[$n,4]=$(http 5 "$base/api/v1/events?status=claimed")
    kill "$pid"
    wait "$pid" || true
    pid=
    t[$n,5]=$(timed 5 "$ocra" events --journal "$j" --limit 50)
    t[$n,6]=$(timed 5 "$ocra" events --journal "$j" --status dead --limit 50 --newest)
    t[$n,7]=$(timed 5 "$ocra" lineage --journal "$j" "$id")
    for _ in 1 2 3; do daemon_start "$j"; done >"$tmp/starts"
    t[$n,8]=$(cut -d' ' -f1 "$tmp/starts" | median)
    t[$n,1]=$(cut -d' ' -f2 "$tmp/starts" | median)
done

printf '%-28s' "operation"
for n in "${sizes[@]}"; do printf ' %12s' "$n ev (s)"; done
for n in "${sizes[@]:1}"; do printf ' %10s' "x $n"; done
printf '\n'
for i in "${!ops[@]}"; do
    printf '%-28s' "${ops[$i]}"
    for n in "${sizes[@]}"; do printf ' %12s' "${t[$n,$i]}"; done
    for n in "${sizes[@]:1}"; do
        printf ' %10s' "$(awk -v a="${t[$n,$i]}" -v b="${t[${sizes[0]},$i]}" 'BEGIN {printf "%.1fx", a / b}')"
    done
    printf '\n'
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
