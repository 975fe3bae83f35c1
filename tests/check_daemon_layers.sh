#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The daemon drives its workloads through the runner interface only (src/run/run.h): no file of
# src/daemon/ calls the Docker Engine itself (ocra_image_docker_*, an Engine path such as
# "/containers" or "/images") or branches on which runner is configured (run.runner == / !=).
# Each finding is printed as file:line: text; exit 1 when there is any.
# Usage: tests/check_daemon_layers.sh [repository root]   (default: this script's ..)
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
dir=$root/src/daemon
if [ ! -d "$dir" ]; then
    echo "check_daemon_layers: no $dir" >&2
    exit 2
fi
shopt -s nullglob
files=("$dir"/*.c "$dir"/*.h)
found=0
report() { # what, pattern
    local what=$1 pat=$2 hits
    # the daemon's own tests may drive an engine to set a scene: the rule is for the daemon
    hits=$(grep -nE -- "$pat" "${files[@]}" | grep -v '_test\.c:' || true)
    [ -z "$hits" ] && return 0
    while IFS= read -r h; do
        echo "${h#"$root"/}  <- $what"
    done <<<"$hits"
    found=1
}
report "a Docker Engine call: use the runner (src/run/run.h)" '\bocra_image_docker_[a-z_]+\b'
report "a Docker Engine path: use the runner (src/run/run.h)" '"/(containers|images|events|info|version|_ping)\b'
report "a runner branch: ask the runner's supports flags" 'run\.runner[[:space:]]*[!=]='
report "a runner branch by name: ask the runner's supports flags" 'strcmp\([^,]*->name, "(docker|slurm)"\)'
if [ "$found" -ne 0 ]; then
    echo "check_daemon_layers: src/daemon must reach workloads through struct ocra_runner only" >&2
    exit 1
fi
echo "check_daemon_layers: src/daemon has no Docker Engine call and no runner branch"
