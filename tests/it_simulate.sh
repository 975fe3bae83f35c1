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
        $1 == "fgd" && $3 == 210 {g = 1} END {exit !(f && g)}' "$tmp/out"; then
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

check_done
