#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""openb_jobs.py: an openb pod list (Alibaba cluster-trace-gpu-v2023, the FGD paper's trace)
as a job trace for `ocra simulate --jobs`: name,submit,duration,gpus,owner.

  submit   = creation_time / SPEEDUP (seconds; SPEEDUP > 1 compresses the arrivals, the
             usual way to raise a trace's load without changing its jobs)
  duration = deletion_time - scheduled_time (the time the pod ran; at least 1)
  gpus     = num_gpu
  owner    = qos (LS, BE, Burstable, Guaranteed): the trace names no tenants, and its QoS
             classes are the closest thing to one, so fair share has owners to share between

Pods without GPUs, and pods that never ran (no scheduled_time or deletion_time), are left
out. Pods that share a GPU (gpu_milli < 1000) are left out unless --shared, which counts each
as one whole GPU (the job replay allocates whole GPUs). Python standard library only.

  python3 bench/openb_jobs.py ../shared/traces/openb_pod_list_default.csv --speedup 100 >jobs.csv
"""
import argparse
import csv
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pods", help="openb_pod_list_*.csv with creation_time, scheduled_time, deletion_time")
    ap.add_argument("--speedup", type=float, default=1.0, help="divide submit times by this (default 1)")
    ap.add_argument("--shared", action="store_true", help="keep GPU-sharing pods as 1 whole GPU")
    a = ap.parse_args()
    if a.speedup <= 0:
        sys.exit("openb_jobs.py: --speedup must be > 0")
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["name", "submit", "duration", "gpus", "owner"])
    kept = skipped = 0
    with open(a.pods, newline="") as f:
        for row in csv.DictReader(f):
            gpus = int(row["num_gpu"] or 0)
            milli = int(row["gpu_milli"] or 0)
            if gpus < 1 or not row.get("scheduled_time") or not row.get("deletion_time") or (
                milli < 1000 and not a.shared
            ):
                skipped += 1
                continue
            duration = max(1, int(row["deletion_time"]) - int(row["scheduled_time"]))
            submit = int(int(row["creation_time"]) / a.speedup)
            out.writerow([row["name"], submit, duration, gpus, row.get("qos") or ""])
            kept += 1
    print(f"openb_jobs.py: {kept} jobs, {skipped} pods left out", file=sys.stderr)


if __name__ == "__main__":
    main()
