#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_run_slurm.sh IT_RUN_SLURM OCRA: the slurm runner (src/run/run_slurm.c) against a real,
# private Slurm cluster (tests/lib/slurm.sh: munged, slurmctld, slurmd with 4 fake GPUs in
# gres.conf, slurmrestd with JWT auth, all on 127.0.0.1) and a private dockerd
# (tests/lib/dockerd.sh) whose socket the job user (slurm) may use. The local base image is
# pushed to a docker-registry on 127.0.0.1 (tests/lib/registry.sh) so that the engine holds it
# under a digest reference. Checks, through `ocra run --runner slurm`: a gpu:2 job is
# submitted through slurmrestd, its workload sees CUDA_VISIBLE_DEVICES with two indices and
# runs in the sandbox, and the exit code and log tail come back; a second start for the same
# event adopts the job (one job of that name in slurmctld); a job asking for more GPUs than a
# node has is refused with a clear error and nothing is submitted; a cancelled job reports
# stopped and leaves no container (the runner's reap by the job's labels, under CPU hogs, with
# a planted container the job script cannot know; then the cluster's epilog,
# etc/slurm/ocra-epilog, for a job nobody waits for). The C program checks the API: inventory,
# job state, stop. Then a container left on purpose (a Slurm job slurmctld never knew) is a
# warning in `ocra nodes` and is removed by the daemon's reconcile at start (counted in
# /metrics), while a running job's container is left alone. IT_SLURM_HOGS (default 2) sets the
# number of CPU hogs of the cancel test; IT_SLURM_CLEANUP_WAIT_S (default 120) bounds each
# wait for a container to go (twice that for the daemon's start). Exits 77 with the reason when it cannot run here.
# Stops everything it started, by PID. Run from the repository root.
set -u
bin=${1:?usage: it_run_slurm.sh PATH_TO_IT_RUN_SLURM PATH_TO_OCRA}
ocra=${2:?usage: it_run_slurm.sh PATH_TO_IT_RUN_SLURM PATH_TO_OCRA}
case $bin in /*) ;; *) bin="$PWD/$bin" ;; esac
case $ocra in /*) ;; *) ocra="$PWD/$ocra" ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
skip() {
    echo "it_run_slurm: skipped: $1"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root (a private dockerd and slurmd need root)"
command -v docker-registry >/dev/null 2>&1 || skip "no docker-registry (Debian package docker-registry)"
getent passwd slurm >/dev/null 2>&1 || skip "no user slurm (made by the Debian package slurm-wlm-basic-plugins)"
# shellcheck source=tests/lib/dockerd.sh
. "$here/lib/dockerd.sh"
# shellcheck source=tests/lib/registry.sh
. "$here/lib/registry.sh"
# shellcheck source=tests/lib/slurm.sh
. "$here/lib/slurm.sh"
# shellcheck source=tests/lib/check.sh
. "$here/lib/check.sh"

tmp=$(mktemp -d /tmp/ocra-it-slurm.XXXXXX)
# the job user (slurm) reaches the engine's socket and the job directory through it
chmod 755 "$tmp"
# shellcheck disable=SC2317 # called by the EXIT trap
hogs=()
cleanup() {
    [ -n "${bg:-}" ] && { kill "$bg" 2>/dev/null; wait "$bg" 2>/dev/null; }
    [ -n "${dpid:-}" ] && { kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null; }
    hogs_stop 2>/dev/null
    slurm_stop
    registry_stop_all
    dockerd_stop
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

slurm_start "$tmp/slurm" 4
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no Slurm}"
[ "$rc" -eq 0 ] || { echo "it_run_slurm: the private Slurm cluster did not start" >&2; exit 1; }
dockerd_start "$tmp/engine"
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no private dockerd}"
[ "$rc" -eq 0 ] || { echo "it_run_slurm: the private dockerd did not start" >&2; exit 1; }
chmod 755 "$tmp/engine"
chgrp slurm "$tmp/engine/docker.sock" && chmod 660 "$tmp/engine/docker.sock" || exit 1
slurm_epilog_engine "$DOCKER_HOST" # the cluster's epilog removes ended jobs' containers there
base_image_ensure >/dev/null
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no base image}"
[ "$rc" -eq 0 ] || { echo "it_run_slurm: no base image" >&2; exit 1; }
registry_start "$tmp/reg" || exit 1
tag="127.0.0.1:$REGISTRY_PORT/ocra-test/slurm-base:1"
docker tag "$OCRA_BASE_IMAGE" "$tag" && docker push "$tag" >"$tmp/push.log" 2>&1 ||
    { echo "it_run_slurm: pushing the base image failed: $(tail -n 5 "$tmp/push.log")" >&2; exit 1; }
image=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$tag" |
    grep -F "127.0.0.1:$REGISTRY_PORT/ocra-test/slurm-base@sha256:" | head -n 1)
[ -n "$image" ] || { echo "it_run_slurm: no RepoDigest after the push" >&2; exit 1; }

jobs=$SLURM_DIR/jobs
cfg=$tmp/ocra.yaml
cat >"$cfg" <<YAML
run:
  slurm:
    url: $SLURM_REST_URL
    user: $SLURM_REST_USER
    token_file: $SLURM_TOKEN_FILE
    partition: $SLURM_PARTITION
    docker_host: $DOCKER_HOST
    workdir: $jobs
    poll_interval_ms: 200
YAML
# jobs_named NAME: how many jobs of that name slurmctld holds, in any state
jobs_named() { squeue -h --states=all --name "$1" -o %i | wc -l; }
t0=$SECONDS

# 1. a GPU job: gpu:2, the indices in its environment, the sandbox, the exit code, the log
probe='echo "cvd=$CUDA_VISIBLE_DEVICES uid=$(id -u)"; touch /written 2>/dev/null || echo rootfs-read-only; echo to-stderr >&2; exit 3'
expect slurm_gpu_job_exit_code 1 "$ocra" -c "$cfg" run --runner slurm --gpus 2 --event-id test:slurm:1 \
    "$image" -- /bin/sh -c "$probe" && has slurm_gpu_job_exit_code "$tmp/out" "exit code 3"
cp "$tmp/out" "$tmp/first.out"
sed 's/^/# /' "$tmp/first.out"
if grep -Eq '^cvd=[0-9]+,[0-9]+ uid=65532$' "$tmp/first.out"; then ok slurm_workload_sees_two_gpu_indices
else fail slurm_workload_sees_two_gpu_indices "$(cat "$tmp/first.out" "$tmp/err")"; fi
has slurm_workload_root_is_read_only "$tmp/first.out" "rootfs-read-only"
has slurm_log_tail_has_stderr "$tmp/first.out" "to-stderr"
has slurm_profile_printed "$tmp/first.out" "root filesystem:   read-only"
has slurm_runner_printed "$tmp/first.out" "runner:            slurm ($SLURM_REST_URL, partition $SLURM_PARTITION"
has slurm_gpus_printed "$tmp/first.out" "gpus:              2, the devices the runner allocates"
name=$(sed -n 's/^started \(ocra-[0-9a-f]\{12\}\) (Slurm job [0-9]*)$/\1/p' "$tmp/first.out")
[ -n "$name" ] && ok slurm_job_named_after_event || fail slurm_job_named_after_event "$(cat "$tmp/first.out")"
job=$(squeue -h --states=all --name "$name" -o '%i %T %b' 2>&1)
case $job in *" COMPLETED "*gpu:2* | *" FAILED "*gpu:2*) ok slurm_job_asked_gres_gpu_2 ;;
*) fail slurm_job_asked_gres_gpu_2 "squeue: $job" ;; esac

# 2. the same event again: adopted, not submitted twice
expect slurm_second_start_adopts 1 "$ocra" -c "$cfg" run --runner slurm --gpus 2 --event-id test:slurm:1 \
    "$image" -- /bin/sh -c "$probe" && has slurm_second_start_adopts "$tmp/out" "adopted $name"
has slurm_adopted_exit_code "$tmp/out" "exit code 3"
n=$(jobs_named "$name")
[ "$n" -eq 1 ] && ok slurm_one_job_per_event || fail slurm_one_job_per_event "$n jobs named $name"

# 2b. two starts of one event at once: both end with the same job, and only one runs
"$ocra" -c "$cfg" run --runner slurm --no-wait --event-id test:slurm:race "$image" -- sleep 30 >"$tmp/race1.out" 2>&1 &
r1=$!
"$ocra" -c "$cfg" run --runner slurm --no-wait --event-id test:slurm:race "$image" -- sleep 30 >"$tmp/race2.out" 2>&1
wait "$r1"
j1=$(sed -n 's/^.* (Slurm job \([0-9]*\))$/\1/p' "$tmp/race1.out")
j2=$(sed -n 's/^.* (Slurm job \([0-9]*\))$/\1/p' "$tmp/race2.out")
rname=$(sed -n 's/^[a-z]* \(ocra-[0-9a-f]*\) (Slurm job.*/\1/p' "$tmp/race1.out")
# active: pending or running (the cancelled one may still be COMPLETING while the epilog runs)
live=$(squeue -h --name "$rname" -t PENDING,CONFIGURING,RUNNING -o %i | wc -l)
if [ -n "$j1" ] && [ "$j1" = "$j2" ] && [ "$live" -eq 1 ]; then ok slurm_racing_starts_keep_one_job
else fail slurm_racing_starts_keep_one_job "jobs '$j1' and '$j2', $live active: $(squeue --states=all)"; fi
echo "# racing starts: $(grep -h 'Slurm job' "$tmp/race1.out" "$tmp/race2.out" | tr '\n' ';') $(squeue -h --states=all --name "$rname" | wc -l) job(s) submitted"
scancel --name "$rname"

# 3. more GPUs than any node has: refused, nothing submitted
expect slurm_too_many_gpus_refused 1 "$ocra" -c "$cfg" run --runner slurm --gpus 9 --event-id test:slurm:9 \
    "$image" -- /bin/true && has slurm_too_many_gpus_refused "$tmp/err" "asks for 9 GPUs"
sed 's/^/# /' "$tmp/err"
has slurm_too_many_gpus_names_the_largest "$tmp/err" "partition $SLURM_PARTITION has 4"
name9=$(sed -n 's/^started \(ocra-[0-9a-f]*\).*/\1/p' "$tmp/out")
refused=$(sed -n 's/^.*slurm run \(ocra-[0-9a-f]\{12\}\): .*/\1/p' "$tmp/err")
[ -z "$name9" ] && [ -n "$refused" ] && [ "$(jobs_named "$refused")" -eq 0 ] && ok slurm_refused_job_not_submitted ||
    fail slurm_refused_job_not_submitted "$(squeue --states=all)"
# Slurm's own answer, past the pre-check: a gres the node does not have
if sbatch --gres=gpu:9 --wrap true >"$tmp/sb.out" 2>&1; then
    fail slurm_itself_refuses_too_many "sbatch accepted gpu:9"
else ok slurm_itself_refuses_too_many; fi

# 4. a cancelled job: `ocra run` reports stopped, and no container of the job is left, however
# the job script's trap fared (Slurm's KillWait cuts it short on a busy node): the runner
# removes every container labelled with the job's id once Slurm says the job ended. With CPU
# hogs pinned to the cores beside it (IT_SLURM_HOGS, default 2), and the epilog off: a
# container planted with the job's labels, which the script knows nothing of, stands for one
# its trap could not remove. No timing: bounded waits for each condition.
# within SECS DESC CMD...: polls CMD until it succeeds, for at most SECS seconds (the bound is
# in time, not in tries: a loaded machine makes each `docker ps` slow); not a timing check
within() {
    local secs=$1 end=$((SECONDS + $1)) desc=$2
    shift 2
    while [ "$SECONDS" -lt "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "  gave up waiting $secs s: $desc" >&2
    return 1
}
cleanup_s=${IT_SLURM_CLEANUP_WAIT_S:-120}
short_of() { printf '%s' "$1" | sha256sum | cut -c1-12; }
# job_containers ID: the containers labelled with Slurm job ID, in any state
job_containers() { docker ps -aq --filter label=io.ocra.runner=slurm --filter "label=io.ocra.slurm-job=$1" | wc -l; }
# running_job EVENT OUT: waits until the job `ocra run` printed to OUT runs and its container
# (named after the event and job) does; prints the job id
running_job() {
    local jid cname
    for _ in $(seq 600); do
        jid=$(sed -n 's/^started ocra-[0-9a-f]* (Slurm job \([0-9]*\))$/\1/p' "$2")
        cname=ocra-$(short_of "$1")-$jid
        [ -n "$jid" ] && [ "$(squeue -h -j "$jid" -o %T 2>/dev/null)" = RUNNING ] &&
            [ -n "$(docker ps -q --filter "name=^/$cname\$" 2>/dev/null)" ] && { echo "$jid"; return 0; }
        sleep 0.2
    done
    echo "${jid:-0}"
    return 1
}
# plant EVENT JOB NAME: a container with the labels ocra gives Slurm job JOB's, under NAME
plant() {
    docker run -d --network none --name "$3" --label "io.ocra.event-id=$1" \
        --label io.ocra.runner=slurm --label "io.ocra.slurm-job=$2" --label "io.ocra.image=$image" \
        "$image" sleep 300 >/dev/null
}
hogs_start() {
    local i
    for i in $(seq 1 "${IT_SLURM_HOGS:-2}"); do
        if command -v taskset >/dev/null 2>&1; then
            taskset -c $(((i - 1) % $(nproc))) yes >/dev/null &
        else
            yes >/dev/null &
        fi
        hogs+=("$!")
    done
}
hogs_stop() {
    local p
    for p in "${hogs[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    hogs=()
}
slurm_epilog off
hogs_start
echo "# section 4 under $(echo "${hogs[@]}" | wc -w) CPU hog(s): load $(cut -d' ' -f1 /proc/loadavg)"
"$ocra" -c "$cfg" run --runner slurm --event-id test:slurm:cancel "$image" -- sleep 300 >"$tmp/bg.out" 2>"$tmp/bg.err" &
bg=$!
id=$(running_job test:slurm:cancel "$tmp/bg.out") || fail slurm_cancel_job_runs "$(cat "$tmp/bg.out" "$tmp/bg.err"; squeue)"
cname=ocra-$(short_of test:slurm:cancel)-$id
[ "$(docker inspect -f '{{index .Config.Labels "io.ocra.slurm-job"}}' "$cname" 2>&1)" = "$id" ] &&
    ok slurm_container_labelled_with_job_id ||
    fail slurm_container_labelled_with_job_id "$(docker inspect -f '{{.Config.Labels}}' "$cname" 2>&1)"
plant test:slurm:cancel "$id" "$cname-left" || fail slurm_plant "docker run failed"
scancel "$id"
wait "$bg"
st=$?
bg=
sed 's/^/# /' "$tmp/bg.out" | tail -n 3
[ "$st" -eq 1 ] && grep -q "^stopped: " "$tmp/bg.out" && ok slurm_cancelled_job_reports_stopped ||
    fail slurm_cancelled_job_reports_stopped "exit $st: $(cat "$tmp/bg.out" "$tmp/bg.err")"
no_job_containers() { [ "$(job_containers "$1")" -eq 0 ]; }
if within "$cleanup_s" "no container of job $id" no_job_containers "$id"; then
    ok slurm_cancel_removes_container
else
    fail slurm_cancel_removes_container "$(job_containers "$id") left: $(docker ps -a; tail -n 5 "$jobs"/*-"$id".out; cat "$tmp/bg.err")"
fi
hogs_stop

# 4b. the epilog (etc/slurm/ocra-epilog, as slurm.conf's Epilog): a job nobody waits for
# (`ocra run --no-wait`) is cancelled; by the time Slurm says CANCELLED (the epilog runs before
# the job leaves COMPLETING) no container of the job is left on the node, the planted one
# included; a container labelled with another job is not the epilog's
slurm_epilog on
expect slurm_epilog_job_started 0 "$ocra" -c "$cfg" run --runner slurm --no-wait --event-id test:slurm:epilog "$image" -- sleep 300
cp "$tmp/out" "$tmp/epilog.out"
eid=$(running_job test:slurm:epilog "$tmp/epilog.out") || fail slurm_epilog_job_runs "$(cat "$tmp/epilog.out"; squeue)"
plant test:slurm:epilog "$eid" "ocra-$(short_of test:slurm:epilog)-$eid-left" || fail slurm_plant "docker run failed"
# a container left on purpose: its job record gone (slurmctld never knew job 999999); the
# reconcile of section 7 finds it
left_name=ocra-$(short_of test:slurm:left)-999999
plant test:slurm:left 999999 "$left_name" || fail slurm_plant "docker run failed"
scancel "$eid"
cancelled() { [ "$(squeue -h --states=all -j "$1" -o %T 2>/dev/null)" = CANCELLED ]; }
wait_until "job $eid CANCELLED" cancelled "$eid" || fail slurm_epilog_job_cancelled "$(squeue --states=all)"
if within "$cleanup_s" "no container of job $eid" no_job_containers "$eid"; then
    ok slurm_epilog_removes_job_containers
else
    fail slurm_epilog_removes_job_containers "$(job_containers "$eid") left: $(docker ps -a)"
fi
[ -n "$(docker ps -q --filter "name=^/$left_name\$")" ] && ok slurm_epilog_leaves_other_jobs ||
    fail slurm_epilog_leaves_other_jobs "$left_name is gone"

# 5. ocra nodes lists the Slurm node with its GPU gres and the partition with its free GPUs
printf 'inventory:\n  local: false\n' >>"$cfg"
if "$ocra" -c "$cfg" nodes --journal "$tmp/none.db" >"$tmp/nodes.out" 2>&1 &&
    grep -q "^node ocra-n1" "$tmp/nodes.out" && grep -q "\[slurm\]" "$tmp/nodes.out" &&
    grep -q "^slurm partition $SLURM_PARTITION (UP): 1 node(s), [0-9] of 4 GPUs free" "$tmp/nodes.out"; then
    ok nodes_lists_slurm
else
    fail nodes_lists_slurm "$(cat "$tmp/nodes.out")"
fi
"$ocra" -c "$cfg" nodes --json --journal "$tmp/none.db" >"$tmp/nodes.json" 2>&1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); p=d["slurm"]["partitions"][0]; assert p["gpus"]==4 and p["gpus_free"]==4-p["gpus_allocated"], p' "$tmp/nodes.json" &&
    ok nodes_json_slurm || fail nodes_json_slurm "$(head -c 600 "$tmp/nodes.json")"

# 6. the API: inventory, job state, stop
SLURM_JOBS_DIR=$jobs OCRA_IT_RUN_IMAGE=$image "$bin"
st=$?
[ "$st" -eq 0 ] && ok slurm_api_tests || fail slurm_api_tests "it_run_slurm exited $st"

# 7. the reconcile: `ocra nodes` warns about the container left on purpose in 4b (Slurm no
# longer knows its job) and not about a running job's; the daemon (run.runner slurm) removes
# it at start, counts it in /metrics, and leaves the running job's container alone
"$ocra" -c "$cfg" run --runner slurm --no-wait --event-id test:slurm:live "$image" -- sleep 300 >"$tmp/live.out" 2>&1
lid=$(running_job test:slurm:live "$tmp/live.out") || fail slurm_live_job_runs "$(cat "$tmp/live.out"; squeue)"
live_name=ocra-$(short_of test:slurm:live)-$lid
api_port=$(free_port)
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/api.token")
dcfg=$tmp/daemon.yaml
sed "s/^run:$/run:\n  runner: slurm/" "$cfg" >"$dcfg"
cat >>"$dcfg" <<YAML
journal:
  path: $tmp/journal.db
api:
  listen: "127.0.0.1:$api_port"
  token_file: $tmp/api.token
agent:
  socket_dir: $tmp/agent
YAML
expect nodes_warns_stray 0 "$ocra" -c "$dcfg" nodes &&
    has nodes_warns_stray "$tmp/out" "warning: stray container $left_name (running, slurm runner, event test:slurm:left) belongs to no live run: Slurm no longer knows job 999999"
grep -q "stray container $live_name" "$tmp/out" && fail nodes_no_warning_for_live_job "$(cat "$tmp/out")" ||
    ok nodes_no_warning_for_live_job
"$ocra" -c "$dcfg" nodes --json >"$tmp/nodes2.json" 2>&1
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["containers"]["strays"]; assert [(x["name"], x["slurm_job"]) for x in s] == [(sys.argv[2], 999999)], s' \
    "$tmp/nodes2.json" "$left_name" && ok nodes_json_strays || fail nodes_json_strays "$(head -c 800 "$tmp/nodes2.json")"
"$ocra" daemon -c "$dcfg" >"$tmp/daemon.out" 2>"$tmp/daemon.log" &
dpid=$!
left_gone() { [ -z "$(docker ps -aq --filter "name=^/$left_name\$")" ]; }
if within $((cleanup_s * 2)) "$left_name removed" left_gone; then ok reconcile_removes_stray; else
    fail reconcile_removes_stray "$(docker ps -a; tail -n 20 "$tmp/daemon.log")"; fi
[ -n "$(docker ps -q --filter "name=^/$live_name\$")" ] && ok reconcile_leaves_live_job ||
    fail reconcile_leaves_live_job "$live_name is gone: $(tail -n 20 "$tmp/daemon.log")"
has reconcile_logged "$tmp/daemon.log" "reconcile: removed stray container $left_name"
metric() {
    curl -s -H "Authorization: Bearer $(cat "$tmp/api.token")" "http://127.0.0.1:$api_port/metrics" |
        awk -v want="$1" '$1 == want { print $2 }'
}
counted() { [ "$(metric 'ocra_stray_containers_removed_total{runner="slurm"}')" = 1 ]; }
within "$cleanup_s" "the metric" counted && ok reconcile_metric_counted ||
    fail reconcile_metric_counted "$(curl -s -H "Authorization: Bearer $(cat "$tmp/api.token")" "http://127.0.0.1:$api_port/metrics" | grep stray)"
[ "$(metric 'ocra_stray_containers{runner="slurm"}')" = 0 ] && ok reconcile_none_left ||
    fail reconcile_none_left "ocra_stray_containers: $(metric 'ocra_stray_containers{runner="slurm"}')"
kill -TERM "$dpid"
wait "$dpid"
rc=$?
dpid=
[ "$rc" -eq 0 ] && ok reconcile_daemon_exits_0 || fail reconcile_daemon_exits_0 "exit $rc: $(tail -n 20 "$tmp/daemon.log")"
scancel "$lid"
echo "# it_run_slurm: the tests took $((SECONDS - t0)) s"
if ! check_done; then
    _slurm_dump "$SLURM_DIR"
    exit 1
fi
