#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_nodes.sh OCRA: `ocra nodes` as a user runs it: configured nodes with the source of each
# figure, this machine discovered (and why it has no GPUs without NVML), a journal on disk
# that it reads but never creates, the allocations held in it (written with SQLite as the
# allocator records them) shown per device, free capacity, orphans, --json, and the exit
# statuses of a bad inventory (2, file:line: key). Run from the repository root (ctest does).
set -u
ocra=${1:?usage: it_nodes.sh PATH_TO_OCRA}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "$0")/lib/check.sh"

command -v python3 >/dev/null || { echo "skip: python3 (writes the journal's rows) is missing"; exit 77; }

cat >"$tmp/c.yaml" <<'EOF'
journal:
  path: j.db
inventory:
  local: false
  nodes:
    - name: gpu-a
      gpu_model: A100-40GB
      gpus: 4
      gpu_memory_mib: 40960
      compute_capability: "8.0"
      driver: "535.104.05"
      cpus: 32
      memory_mib: 262144
      labels: ["zone=a", "tier=gold"]
      cost: "2.5"
    - name: cpu-b
      cpus: 8
      memory_mib: 16384
EOF

expect configured 0 "$ocra" -c "$tmp/c.yaml" nodes && has configured "$tmp/out" "node gpu-a"
has gpus_line "$tmp/out" "4 x A100-40GB"
if grep -Eq '^  driver +535\.104\.05 +\[config\]$' "$tmp/out" &&
    grep -Eq '^  cost +2\.5 per GPU-hour +\[config\]$' "$tmp/out" &&
    grep -Eq '^  labels +zone=a,tier=gold +\[config\]$' "$tmp/out" &&
    grep -Eq '^  compute cap +unknown +\[-\]$' <(sed -n '/node cpu-b/,$p' "$tmp/out"); then
    ok sources
else
    fail sources "$(cat "$tmp/out")"
fi
has no_journal "$tmp/out" "journal $tmp/j.db: none yet, so nothing is allocated"
if [ ! -e "$tmp/j.db" ]; then ok not_created; else fail not_created "ocra nodes created the journal"; fi

# this machine: without NVML it has 0 GPUs and says why
printf 'inventory:\n  local: true\n' >"$tmp/local.yaml"
OCRA_NVML_LIB=/nonexistent/libnvidia-ml.so.1 expect local 0 "$ocra" -c "$tmp/local.yaml" nodes &&
    has local "$tmp/out" "0 GPUs: /nonexistent/libnvidia-ml.so.1 not found (no NVIDIA driver)"
if grep -Eq '^  cpus +[0-9]+ +\[proc\]$' "$tmp/out" && grep -Eq '^  memory +[0-9]+ MiB +\[proc\]$' "$tmp/out"; then
    ok local_proc
else
    fail local_proc "$(cat "$tmp/out")"
fi
expect real_nvml 0 "$ocra" -c "$tmp/local.yaml" nodes
if grep -q 'GPUs *\[nvml\]' "$tmp/out" || grep -q 'x .*\[nvml\]' "$tmp/out"; then
    ok real_nvml # a machine with a GPU: its devices came from NVML
else
    has real_nvml "$tmp/out" "0 GPUs: libnvidia-ml.so.1 not found"
fi

# a journal with held allocations, as the allocator writes them
expect journal_created 0 "$ocra" -c "$tmp/c.yaml" events && ok journal_created
python3 - "$tmp/j.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO events (id, source, chain, block_number, tx_hash, op_index, trusted,"
           " status, observed_ms, created_ms, updated_ms) VALUES"
           " ('evm:1:0xab:0', 'evm:1', 'evm:1', 1, '0xab', 0, 1, 'allocated', 0, 0, 0)")
rows = [(0, 'gpu-a', '[0,1]', 1000, 40960, 4000, 16384, 'held'),
        (1, 'gpu-a', '[2]', 500, 8192, 1000, 1024, 'held'),
        (2, 'gone', '[0]', 1000, 1, 0, 0, 'held'),
        (3, 'gpu-a', '[3]', 1000, 40960, 0, 0, 'released')]
for r in rows:
    db.execute("INSERT INTO allocations (event_id, replica, node, devices, gpu_milli, gpu_mem_mib,"
               " cpu_milli, ram_mib, state, created_ms, released_ms) VALUES"
               " ('evm:1:0xab:0', ?, ?, ?, ?, ?, ?, ?, ?, 0, CASE WHEN ?8 = 'held' THEN NULL ELSE 1 END)", r)
db.commit()
EOF
expect held 0 "$ocra" -c "$tmp/c.yaml" nodes &&
    has held "$tmp/out" "gpu 0        held (0 milli, 0 MiB free) by evm:1:0xab:0#0 (1000 milli, 40960 MiB)"
has shared "$tmp/out" "gpu 2        shared (500 milli, 32768 MiB free) by evm:1:0xab:0#1 (500 milli, 8192 MiB)"
has released_is_free "$tmp/out" "gpu 3        free (1000 milli, 40960 MiB free)"
has free_line "$tmp/out" "free         27 CPUs, 244736 MiB RAM; 2 allocation(s) held"
has orphan "$tmp/out" "orphan: evm:1:0xab:0#2 holds devices on node gone, which the inventory lacks"

expect json 0 "$ocra" -c "$tmp/c.yaml" nodes --json
if python3 - "$tmp/out" <<'EOF'; then ok json_shape; else fail json_shape "$(cat "$tmp/out")"; fi
import json, sys
d = json.load(open(sys.argv[1]))
a, b = d["nodes"]
assert a["name"] == "gpu-a" and a["gpus"] == 4 and a["gpu_model"] == "A100-40GB"
assert a["sources"]["gpus"] == "config" and b["sources"]["gpus"] is None
assert a["cost_per_gpu_hour"] == "2.5" and a["compute_capability"] == "8.0"
assert [x["devices"] for x in a["allocations"]] == [[0, 1], [2]]
assert [g["free_milli"] for g in a["free"]["gpus"]] == [0, 0, 500, 1000]
assert [x["node"] for x in d["orphans"]] == ["gone"] and b["allocations"] == []
EOF

printf 'inventory:\n  nodes:\n    - name: x\n      driver: "5x"\n      gpus: 40\n' >"$tmp/bad.yaml"
expect bad_config 2 "$ocra" -c "$tmp/bad.yaml" nodes &&
    has bad_config "$tmp/err" "bad.yaml:4: inventory.nodes[0].driver: want a driver version"
printf 'inventory:\n  local: false\n  nodes:\n    - name: x\n      gpus: 2\n' >"$tmp/nomodel.yaml"
expect no_model 2 "$ocra" -c "$tmp/nomodel.yaml" nodes &&
    has no_model "$tmp/err" "inventory.nodes[0]: node x: GPUs without a model"
expect check_no_model 2 "$ocra" config check "$tmp/nomodel.yaml" &&
    has check_no_model "$tmp/err" "nomodel.yaml: inventory.nodes[0]: node x: GPUs without a model"
expect check_ok 0 "$ocra" config check "$tmp/c.yaml" && has check_ok "$tmp/out" "c.yaml: ok"
printf 'inventory:\n  local: false\n  nodes:\n    - name: x\n    - name: x\n' >"$tmp/twice.yaml"
expect twice 2 "$ocra" -c "$tmp/twice.yaml" nodes && has twice "$tmp/err" "inventory.nodes[1]: node x: listed twice"
expect extra_arg 2 "$ocra" nodes extra && ok extra_arg
expect help 0 "$ocra" nodes --help && has help "$tmp/out" "its source in brackets"
expect listed 0 "$ocra" --help && has listed "$tmp/out" "nodes"

check_done
