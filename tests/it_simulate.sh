#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_simulate.sh OCRA: `ocra simulate` as a user runs it over the trimmed openb fixtures of
# tests/data/sched: the table's shape (a header, one row per policy, in the order asked),
# the exact counts, and the exit statuses: 2 for a bad CSV (with FILE:LINE: COLUMN: PROBLEM),
# a missing file, an unknown policy or missing options; 0 for --help. Run from the
# repository root (ctest does).
set -u
ocra=${1:?usage: it_simulate.sh PATH_TO_OCRA}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
d=tests/data/sched

. "$(dirname "$0")/lib/check.sh"

expect all_policies 0 "$ocra" simulate --nodes $d/nodes.csv --pods $d/pods.csv --no-departures &&
    has all_policies "$tmp/out" "nodes 31 (147 GPUs), pods 500, departures no"
# the table: a summary line, a header, one row per policy with 7 columns
if awk 'NR == 2 && $1 == "policy" && $7 == "decisions/s" {h = 1}
        NR > 2 && NF == 7 && $2 == 500 && $3 + $4 == 500 {rows++}
        END {exit !(h && rows == 4 && NR == 6)}' "$tmp/out"; then
    ok table_shape
else
    fail table_shape "$(cat "$tmp/out")"
fi
if awk '$1 == "first-fit" && $3 == 206 && $4 == 294 && $6 == "4.05" {f = 1}
        $1 == "fgd" && $3 == 209 {g = 1} END {exit !(f && g)}' "$tmp/out"; then
    ok exact_counts
else
    fail exact_counts "$(cat "$tmp/out")"
fi
expect two_policies 0 "$ocra" simulate -n $d/nodes.csv -p $d/pods_multigpu.csv -P fgd -P first-fit &&
    if [ "$(awk 'NR > 2 {print $1}' "$tmp/out" | tr '\n' ' ')" = "fgd first-fit " ]; then
        ok two_policies
    else
        fail two_policies "$(cat "$tmp/out")"
    fi
expect departures 0 "$ocra" simulate -n $d/nodes.csv -p $d/pods.csv -P best-fit &&
    has departures "$tmp/out" "departures yes"

printf 'sn,cpu_milli,memory_mib,gpu,model\nn1,64000,262144,2,T4\nn2,64x,1,1,T4\n' >"$tmp/bad.csv"
expect bad_csv 2 "$ocra" simulate --nodes "$tmp/bad.csv" --pods $d/pods.csv &&
    has bad_csv "$tmp/err" "bad.csv:3: cpu_milli: not an integer: \"64x\""
printf 'name,cpu_milli,memory_mib,num_gpu\n' >"$tmp/badpods.csv"
expect bad_pods 2 "$ocra" simulate --nodes $d/nodes.csv --pods "$tmp/badpods.csv" &&
    has bad_pods "$tmp/err" "badpods.csv:1: gpu_milli: missing column"
expect missing_file 2 "$ocra" simulate --nodes "$tmp/none.csv" --pods $d/pods.csv && ok missing_file
expect bad_policy 2 "$ocra" simulate -n $d/nodes.csv -p $d/pods.csv --policy worst-fit &&
    has bad_policy "$tmp/err" "first-fit, best-fit, cheapest or fgd"
expect no_pods 2 "$ocra" simulate --nodes $d/nodes.csv && ok no_pods
expect extra_arg 2 "$ocra" simulate -n $d/nodes.csv -p $d/pods.csv extra && ok extra_arg
expect help 0 "$ocra" simulate --help && has help "$tmp/out" "exit status: 0 simulated"
expect listed 0 "$ocra" --help && has listed "$tmp/out" "simulate"

# --- autoscale (begin)
# `ocra simulate --autoscale` over the first 1,200 requests of the Azure LLM conv trace
# (tests/data/sched/requests.csv): the shape of the report and its invariants, not timings.
r=$d/requests.csv
as_check() { # NAME MAX: the timeline and the summary agree and respect the bounds
    awk -v max="$2" '
        /^[0-9][0-9]:[0-9][0-9] / { split($3, m, "/"); rows++; arr += $2; w += $4
            if ($4 > $2 || m[1] > m[2] + 0.05 || m[2] > m[3] + 0.05 || m[3] > max || m[1] < 0) bad++ }
        /^requests / { req = $2; gsub(",", "", req); waited = $4 }
        /^replicas: max / { rmax = $3; gsub(",", "", rmax) }
        /wait p50/ { for (i = 1; i <= NF; i++) if ($i ~ /^p[0-9]+$/ || $i == "max") v[$i] = $(i + 1) + 0 }
        END { exit !(rows > 0 && !bad && arr == 1200 && req == 1200 && w == waited &&
                     rmax <= max && v["p50"] <= v["p90"] && v["p90"] <= v["p99"] && v["p99"] <= v["max"]) }
    ' "$tmp/out"
}
expect as_default 0 "$ocra" simulate --autoscale --trace $r --bucket-s 60 &&
    has as_default "$tmp/out" "autoscale replay: $r, 1200 requests over 4.2 min"
if as_check as_invariants 16; then ok as_invariants; else fail as_invariants "$(cat "$tmp/out")"; fi
if [ "$(grep -c '^0[0-9]:[0-9][0-9] ' "$tmp/out")" -eq 5 ]; then ok as_buckets; else fail as_buckets "$(cat "$tmp/out")"; fi
expect as_small 0 "$ocra" simulate --autoscale --trace $r --max 3 --min 2 --target 2 --slots 2 &&
    if as_check as_small 3 && grep -q '^replicas: max 3,' "$tmp/out"; then ok as_small; else fail as_small "$(cat "$tmp/out")"; fi
# enough warm replicas from the start: nobody waits, and nothing scales
expect as_no_wait 0 "$ocra" simulate --autoscale --trace $r --min 8 --max 8 --slots 1024 &&
    has as_no_wait "$tmp/out" "requests 1200, waited 0 (0.00 %)"
has as_no_scale "$tmp/out" "scale-ups 0, scale-downs 0"
# the placer bounds the replicas: 8 GPUs each, on the fixture's nodes that have 8
n8=$(awk -F, 'NR > 1 && $4 >= 8' $d/nodes.csv | wc -l)
expect as_placer 0 "$ocra" simulate --autoscale --trace $r --nodes $d/nodes.csv --replica-gpus 8 \
    --max 64 --service-ms 20000 --policy first-fit &&
    has as_placer "$tmp/out" "placement: first-fit, 8 GPU(s) per replica, on 31 nodes"
if as_check as_placer_bound "$n8" && grep -Eq "^replicas: max $n8,.*placement failures [1-9]" "$tmp/out"; then
    ok as_placer_bound
else
    fail as_placer_bound "$n8 nodes with 8 GPUs: $(cat "$tmp/out")"
fi
expect as_no_trace 2 "$ocra" simulate --autoscale && has as_no_trace "$tmp/err" "--autoscale needs --trace CSV"
expect as_bounds 2 "$ocra" simulate --autoscale --trace $r --min 5 --max 2 &&
    has as_bounds "$tmp/err" "--min 5 is above --max 2"
expect as_target 2 "$ocra" simulate --autoscale --trace $r --target 0 && has as_target "$tmp/err" "--target"
printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.1,10,x\n' >"$tmp/badtrace.csv"
expect as_bad_trace 2 "$ocra" simulate --autoscale --trace "$tmp/badtrace.csv" &&
    has as_bad_trace "$tmp/err" "badtrace.csv:2: GeneratedTokens: not an integer"
expect as_help 0 "$ocra" simulate --help && has as_help "$tmp/out" "--autoscale"
# --- autoscale (end)

# --- jobs (begin)
# `ocra simulate --jobs` on hand-computed traces. One node of 8 GPUs; a (6 GPUs, 0..100), b (8
# GPUs, submitted at 1), c (2 GPUs for 10 s, submitted at 2). fifo: b waits for a (100..200),
# c for b (200..210): JCTs 100, 199, 208, average 169, waits 0, 99, 198, makespan 210, GPU
# use 1420 of 8 * 210 GPU-seconds. backfill: c fits beside a and ends at 12, before b's
# reservation at 100, so it starts at once: JCTs 100, 199, 10, average 103, makespan 200.
printf 'sn,cpu_milli,memory_mib,gpu,model\nn1,64000,262144,8,T4\n' >"$tmp/node1.csv"
printf 'sn,cpu_milli,memory_mib,gpu,model\nn1,64000,262144,8,T4\nn2,64000,262144,8,T4\n' >"$tmp/node2.csv"
printf 'name,submit,duration,gpus\na,0,100,6\nb,1,100,8\nc,2,10,2\n' >"$tmp/jobs.csv"
jobs_row() { # NAME POLICY FIELDS: the row of POLICY reads FIELDS (jobs .. util%)
    if awk -v p="$2" -v want="$3" '$1 == p { $1 = ""; $NF = ""; $(NF - 1) = ""; got = $0 }
            END { gsub(/^ +| +$/, "", got); exit got != want }' "$tmp/out"; then
        ok "$1"
    else
        fail "$1" "want $2 $3 in: $(cat "$tmp/out")"
    fi
}
expect jobs_table 0 "$ocra" simulate --jobs "$tmp/jobs.csv" --nodes "$tmp/node1.csv" \
    --policy fifo --policy backfill &&
    has jobs_table "$tmp/out" "jobs 3, nodes 1 (8 GPUs)"
jobs_row jobs_fifo fifo "3 169.0 199.0 208.0 99.0 210 84.52"
jobs_row jobs_backfill backfill "3 103.0 100.0 199.0 33.0 200 88.75"
if [ "$(awk 'NR > 2 {print $1}' "$tmp/out" | tr '\n' ' ')" = "fifo backfill " ]; then
    ok jobs_policies_in_order
else
    fail jobs_policies_in_order "$(cat "$tmp/out")"
fi
# --json: one object per policy, exactly the documented keys
expect jobs_json 0 "$ocra" simulate --jobs "$tmp/jobs.csv" --nodes "$tmp/node1.csv" --json &&
    if python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
keys = ["policy", "jobs", "jct_avg_s", "jct_p50_s", "jct_p95_s", "wait_avg_s", "makespan_s", "gpu_util",
        "preemptions"]
assert [o["policy"] for o in d] == ["fifo", "backfill", "fair", "sjf"], d
assert all(sorted(o) == sorted(keys) for o in d), d
f, b = d[0], d[1]
assert (f["jobs"], f["jct_avg_s"], f["jct_p50_s"], f["jct_p95_s"], f["wait_avg_s"], f["makespan_s"]) == (3, 169, 199, 208, 99, 210), f
assert abs(f["gpu_util"] - 1420 / 1680) < 1e-9, f
assert (b["jct_avg_s"], b["wait_avg_s"], b["makespan_s"]) == (103, 33, 200), b
' "$tmp/out"; then ok jobs_json_keys; else fail jobs_json_keys "$(cat "$tmp/out")"; fi
# the same trace in ISO-8601 times gives the same numbers
printf 'name,submit,duration,gpus\na,2024-03-01T10:00:00Z,100,6\nb,2024-03-01T10:00:01Z,100,8\nc,2024-03-01 10:00:02,10,2\n' >"$tmp/jobs_iso.csv"
expect jobs_iso 0 "$ocra" simulate --jobs "$tmp/jobs_iso.csv" --nodes "$tmp/node1.csv" -P backfill &&
    jobs_row jobs_iso backfill "3 103.0 100.0 199.0 33.0 200 88.75"
# told that c runs 200 s, backfill may not start it before b: fifo's numbers
printf 'name,submit,duration,gpus,estimate\na,0,100,6,\nb,1,100,8,\nc,2,10,2,200\n' >"$tmp/jobs_est.csv"
expect jobs_estimate 0 "$ocra" simulate --jobs "$tmp/jobs_est.csv" --nodes "$tmp/node1.csv" -P backfill &&
    jobs_row jobs_estimate backfill "3 169.0 199.0 208.0 99.0 210 84.52"
# a 12-GPU job on two 8-GPU nodes takes both whole nodes: the 1-GPU job waits for it
printf 'name,submit,duration,gpus\ng,0,100,12\ns,0,10,1\n' >"$tmp/jobs_gang.csv"
expect jobs_gang 0 "$ocra" simulate --jobs "$tmp/jobs_gang.csv" --nodes "$tmp/node2.csv" -P fifo &&
    jobs_row jobs_gang fifo "2 105.0 100.0 110.0 50.0 110 91.48"
printf 'name,submit,duration,gpus\nbig,0,100,20\n' >"$tmp/jobs_big.csv"
expect jobs_never_fits 2 "$ocra" simulate --jobs "$tmp/jobs_big.csv" --nodes "$tmp/node2.csv" &&
    has jobs_never_fits "$tmp/err" "request big: no set of nodes can ever host it: a gang of 20 GPUs takes whole nodes, and the 2 nodes that pass its filters have 16 GPUs in all"
printf 'name,submit,duration,gpus\na,0,100,6\nb,1,x,8\n' >"$tmp/jobs_bad.csv"
expect jobs_bad_row 2 "$ocra" simulate --jobs "$tmp/jobs_bad.csv" --nodes "$tmp/node1.csv" &&
    has jobs_bad_row "$tmp/err" "jobs_bad.csv:3: duration: not an integer: \"x\""
printf 'name,submit,duration\na,0,100\n' >"$tmp/jobs_nogpus.csv"
expect jobs_no_column 2 "$ocra" simulate --jobs "$tmp/jobs_nogpus.csv" --nodes "$tmp/node1.csv" &&
    has jobs_no_column "$tmp/err" "jobs_nogpus.csv:1: gpus: missing column"
expect jobs_bad_policy 2 "$ocra" simulate --jobs "$tmp/jobs.csv" --nodes "$tmp/node1.csv" -P fgd &&
    has jobs_bad_policy "$tmp/err" "fifo, backfill, fair or sjf"
expect jobs_no_nodes 2 "$ocra" simulate --jobs "$tmp/jobs.csv" && has jobs_no_nodes "$tmp/err" "--jobs needs --nodes"
expect jobs_help 0 "$ocra" simulate --help && has jobs_help "$tmp/out" "--jobs FILE"
# Preemption on one node of 8: p (8 GPUs, 100 s, priority 0) and h (8 GPUs, 20 s, priority 10,
# submitted at 10). Preemptible, p stops at 10 with 90 s left, h runs 10..30, p resumes at 30
# and ends at 120: JCTs 120 and 20, no queueing delay (p's first start counts), makespan 120,
# every GPU busy throughout, 1 preemption under every policy. Not preemptible, h waits for p:
# JCTs 100 and 110, h waits 90 s, 0 preemptions.
printf 'name,submit,duration,gpus,priority,preemptible\np,0,100,8,0,true\nh,10,20,8,10,false\n' >"$tmp/jobs_pre.csv"
printf 'name,submit,duration,gpus,priority,preemptible\np,0,100,8,0,false\nh,10,20,8,10,false\n' >"$tmp/jobs_nopre.csv"
expect jobs_preempt 0 "$ocra" simulate --jobs "$tmp/jobs_pre.csv" --nodes "$tmp/node1.csv" --json &&
    if python3 -c '
import json, sys
for o in json.load(open(sys.argv[1])):
    got = (o["jobs"], o["jct_avg_s"], o["jct_p95_s"], o["wait_avg_s"], o["makespan_s"], o["preemptions"])
    assert got == (2, 70, 120, 0, 120, 1), o
    assert abs(o["gpu_util"] - 1) < 1e-9, o
' "$tmp/out"; then ok jobs_preempt_resumes; else fail jobs_preempt_resumes "$(cat "$tmp/out")"; fi
expect jobs_no_preempt 0 "$ocra" simulate --jobs "$tmp/jobs_nopre.csv" --nodes "$tmp/node1.csv" -P fifo &&
    jobs_row jobs_no_preempt fifo "2 105.0 100.0 110.0 45.0 120 100.00" &&
    if awk '$1 == "fifo" { exit $NF != 0 }' "$tmp/out"; then ok jobs_no_preempt_count; else
        fail jobs_no_preempt_count "$(cat "$tmp/out")"; fi
# --- jobs (end)

check_done
