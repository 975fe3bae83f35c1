# SPDX-License-Identifier: Apache-2.0
# tests/lib/slurm.sh: a private, one-node Slurm cluster for integration tests (real services,
# docs/ARCHITECTURE.md "Conventions"):
# munged, slurmctld, slurmd and slurmrestd from the Debian packages (munge, slurmctld, slurmd,
# slurm-client, slurmrestd, slurm-wlm-jwt-plugin), all on 127.0.0.1 at free ports, with the
# configuration, keys, state, logs, sockets and pid files under DIR. The system's /etc/slurm,
# /etc/munge and services are never used. Source it from bash:
#
#   . tests/lib/slurm.sh
#   slurm_start DIR [GPUS]  || exit $?  # 77: cannot run here, reason in $OCRA_SKIP_REASON
#   ... scontrol, squeue, sbatch (SLURM_CONF is exported) and curl $SLURM_REST_URL ...
#   slurm_stop                          # by PID, in reverse order
#
# The node, `ocra-n1`, has GPUS (default 4) fake GPUs: gres.conf with AutoDetect=off and File=
# character device nodes made under DIR/dev, so Slurm hands out gpu gres and sets
# CUDA_VISIBLE_DEVICES without any GPU present. No cgroups (proctrack/linuxproc, task/none):
# it runs in a container without systemd. slurmrestd serves openapi/v0.0.38 with JWT auth
# (AuthAltTypes=auth/jwt); it refuses to run as root, so it runs as nobody.
#
# The cluster runs ocra's epilog (etc/slurm/ocra-epilog, docs/RUNNING.md) after every job
# through DIR/epilog, once a test has named the engine the jobs use:
#
#   slurm_epilog_engine "$DOCKER_HOST"  # the epilog removes each ended job's containers there
#   slurm_epilog off | on               # a test that checks what else removes them
#
# Exported by slurm_start: SLURM_CONF, SLURM_REST_URL (http://127.0.0.1:PORT),
# SLURM_REST_USER (slurm), SLURM_TOKEN_FILE (a JWT from `scontrol token`, mode 0600),
# SLURM_PARTITION (ocra), SLURM_NODE (ocra-n1), SLURM_DIR. SLURM_MIN_JOB_AGE (seconds, default
# 600) sets how long slurmctld remembers a finished job.

. "$(dirname "${BASH_SOURCE[0]}")/port.sh"

SLURM_PIDS=()
_SLURM_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

_slurm_log() { echo "slurm.sh: $*" >&2; }

_slurm_skip() {
    OCRA_SKIP_REASON=$1
    _slurm_log "cannot run here: $1"
    return 77
}

_slurm_free_port() { free_port; }

# _slurm_wait_for SECONDS PID DESCRIPTION COMMAND...: until COMMAND succeeds, while PID lives.
_slurm_wait_for() {
    local secs=$1 pid=$2 what=$3
    shift 3
    for _ in $(seq $((secs * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            _slurm_log "$what exited while starting"
            return 1
        fi
        sleep 0.2
    done
    _slurm_log "$what did not come up within $secs s"
    return 1
}

_slurm_conf() {
    local dir=$1 ctld_port=$2 slurmd_port=$3 gpus=$4 cpus=$5
    cat <<CONF
# A private test cluster made by tests/lib/slurm.sh; never the system's.
ClusterName=ocratest
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$dir/jwt.key
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
MinJobAge=${SLURM_MIN_JOB_AGE:-600}
KillWait=30
Epilog=$dir/epilog
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=ocra-n1 NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=1024 Gres=gpu:$gpus State=UNKNOWN
PartitionName=ocra Nodes=ocra-n1 Default=YES MaxTime=INFINITE State=UP
CONF
}

# slurm_start DIR [GPUS]: starts the cluster and waits (60 s at most) until the node is idle
# and slurmrestd answers.
slurm_start() {
    local dir=${1:?usage: slurm_start DIR [GPUS]} gpus=${2:-4} c
    [ "$(id -u)" -eq 0 ] || { _slurm_skip "not root (slurmd runs jobs as their users)"; return; }
    for c in munged slurmctld slurmd slurmrestd scontrol squeue; do
        command -v "$c" >/dev/null 2>&1 ||
            { _slurm_skip "no $c (Debian packages munge slurmctld slurmd slurm-client slurmrestd)"; return; }
    done
    [ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/auth_jwt.so ] || [ -n "$(find /usr/lib -name auth_jwt.so -print -quit 2>/dev/null)" ] ||
        { _slurm_skip "no auth/jwt plugin (Debian package slurm-wlm-jwt-plugin)"; return; }
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd) || return 1
    SLURM_DIR=$dir
    # slurmrestd runs as nobody: it must reach slurm.conf and the munge socket
    chmod 755 "$dir"
    mkdir -p "$dir/munge" "$dir/state" "$dir/spool/ocra-n1" "$dir/dev" "$dir/jobs" || return 1
    chmod 700 "$dir/state"
    chmod 755 "$dir/munge"
    chmod 1777 "$dir/jobs"

    # the fake GPUs: character devices (1,3 is /dev/null's number) that Slurm stats only
    local i
    for i in $(seq 0 $((gpus - 1))); do
        mknod "$dir/dev/nvidia$i" c 1 3 2>/dev/null || { _slurm_skip "mknod is not allowed here (fake GPU device nodes)"; return; }
    done
    local ctld_port slurmd_port rest_port cpus
    ctld_port=$(_slurm_free_port) && slurmd_port=$(_slurm_free_port) && rest_port=$(_slurm_free_port) || return 1
    cpus=$(nproc)
    _slurm_conf "$dir" "$ctld_port" "$slurmd_port" "$gpus" "$cpus" >"$dir/slurm.conf"
    {
        echo "AutoDetect=off"
        echo "NodeName=ocra-n1 Name=gpu File=$dir/dev/nvidia[0-$((gpus - 1))]"
    } >"$dir/gres.conf"
    # ocra's epilog, with this cluster's engine once a test names it (slurm_epilog_engine)
    cat >"$dir/epilog" <<EPILOG
#!/bin/sh
# the test cluster's epilog (tests/lib/slurm.sh): ocra's, with DIR/epilog.conf
[ -e "$dir/epilog.off" ] || [ ! -e "$dir/epilog.conf" ] && exit 0
OCRA_EPILOG_CONF="$dir/epilog.conf" exec "$_SLURM_REPO/etc/slurm/ocra-epilog"
EPILOG
    chmod 755 "$dir/epilog"
    chmod 644 "$dir/slurm.conf" "$dir/gres.conf"
    SLURM_CONF=$dir/slurm.conf
    export SLURM_CONF SLURM_DIR

    # munge: its own key and socket
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none && chmod 400 "$dir/munge/munge.key" || return 1
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed" >"$dir/munge/start.log" 2>&1 || {
        _slurm_log "munged did not start: $(tail -n 5 "$dir/munge/start.log" "$dir/munge/munged.log" 2>/dev/null)"
        return 1
    }
    _slurm_track_pidfile "$dir/munge/munged.pid"
    chmod 755 "$dir/munge"

    # the JWT key: read by slurmctld (SlurmUser) only
    dd if=/dev/urandom of="$dir/jwt.key" bs=32 count=1 status=none && chmod 600 "$dir/jwt.key" || return 1

    slurmctld -D -i -f "$dir/slurm.conf" >"$dir/slurmctld.out" 2>&1 &
    SLURM_PIDS+=("$!")
    local ctld=$!
    _slurm_wait_for 30 "$ctld" slurmctld scontrol ping || { _slurm_dump "$dir"; return 1; }
    # slurmd reads cgroup.conf and gres.conf from the directory of slurm.conf
    slurmd -D -N ocra-n1 -f "$dir/slurm.conf" >"$dir/slurmd.out" 2>&1 &
    SLURM_PIDS+=("$!")
    local sd=$!
    _slurm_wait_for 60 "$sd" "slurmd (node idle)" _slurm_node_idle || { _slurm_dump "$dir"; return 1; }

    SLURM_TOKEN_FILE=$dir/token
    (umask 077 && scontrol token username=slurm lifespan=7200 >"$dir/token.out" 2>&1) || {
        _slurm_log "scontrol token failed: $(cat "$dir/token.out")"
        return 1
    }
    sed -n 's/^SLURM_JWT=//p' "$dir/token.out" >"$SLURM_TOKEN_FILE"
    rm -f "$dir/token.out"
    [ -s "$SLURM_TOKEN_FILE" ] || { _slurm_log "scontrol token printed no SLURM_JWT"; return 1; }

    # slurmrestd refuses root: it drops to nobody (-u) after binding its socket
    SLURM_REST_URL=http://127.0.0.1:$rest_port
    SLURM_JWT=daemon \
        slurmrestd -f "$dir/slurm.conf" -a rest_auth/jwt -s openapi/v0.0.38 -u nobody \
        "127.0.0.1:$rest_port" >"$dir/slurmrestd.log" 2>&1 &
    SLURM_PIDS+=("$!")
    local rest=$!
    _slurm_wait_for 30 "$rest" slurmrestd _slurm_rest_ping || { _slurm_dump "$dir"; return 1; }
    SLURM_REST_USER=slurm SLURM_PARTITION=ocra SLURM_NODE=ocra-n1
    export SLURM_REST_URL SLURM_REST_USER SLURM_TOKEN_FILE SLURM_PARTITION SLURM_NODE
    return 0
}

_slurm_track_pidfile() {
    local f=$1
    for _ in $(seq 25); do
        [ -s "$f" ] && { SLURM_PIDS+=("$(cat "$f")"); return 0; }
        sleep 0.2
    done
    return 1
}

_slurm_node_idle() {
    sinfo -h -n ocra-n1 -o '%t' 2>/dev/null | grep -qx idle
}

_slurm_rest_ping() {
    curl -sf -m 2 -H "X-SLURM-USER-NAME: slurm" -H "X-SLURM-USER-TOKEN: $(cat "$SLURM_TOKEN_FILE")" \
        "$SLURM_REST_URL/slurm/v0.0.38/ping" -o /dev/null
}

_slurm_dump() {
    local f
    for f in slurmctld.log slurmctld.out slurmd.log slurmd.out slurmrestd.log munge/munged.log; do
        [ -s "$1/$f" ] && { echo "--- $f (last 15 lines)"; tail -n 15 "$1/$f"; } >&2
    done
}

# slurm_epilog_engine DOCKER_HOST: the engine (unix://PATH) the epilog removes containers on.
slurm_epilog_engine() {
    printf 'DOCKER_HOST=%s\n' "${1:?usage: slurm_epilog_engine unix:///path}" >"$SLURM_DIR/epilog.conf"
}

# slurm_epilog off|on: whether the epilog removes anything (it is on once an engine is named).
slurm_epilog() {
    case ${1:?usage: slurm_epilog off|on} in
    off) : >"$SLURM_DIR/epilog.off" ;;
    *) rm -f "$SLURM_DIR/epilog.off" ;;
    esac
}

# slurm_stop: stops what slurm_start started, newest first, by PID; waits until each is gone.
slurm_stop() {
    local i pid
    for ((i = ${#SLURM_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${SLURM_PIDS[$i]}
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    SLURM_PIDS=()
}
