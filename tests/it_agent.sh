#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_agent.sh OCRA_AGENT IT_AGENT_SERVER: the static ocra-agent as the entrypoint of a real
# image in a private dockerd (tests/lib/dockerd.sh), talking to a real src/agentd server
# (it_agent_server) through the socket directory bind-mounted read-only at /run/ocra. The image
# follows the contract of docs/AGENT.md (agent at /opt/ocra/bin/ocra-agent, Entrypoint [agent,
# "--"], the OCRA_* environment); every container runs in the sandbox: --network none
# --read-only --cap-drop ALL --security-opt no-new-privileges --user 65532:65532. Cases:
# current (the workload runs; check, started, heartbeat, completed with its exit code reach the
# server), the load file (told as OCRA_LOAD_FILE, its number in the heartbeats, bad content
# warned once and not sent), superseded (refused with status 75, the workload does not run),
# forced, unknown, no socket, docker stop (SIGTERM reaches the workload, which exits 42), a
# daemon restart while the workload runs (the completed report reaches the new server), a
# server that accepts and never answers (the workload still runs), and one that answers with an
# overlong broken line (not obeyed). Exits 77 (ctest skip) with the reason when it cannot run here. Stops everything
# it started, by PID. Run from the repository root (ctest does).
set -u
agent=${1:?usage: it_agent.sh PATH_TO_OCRA_AGENT PATH_TO_IT_AGENT_SERVER}
server=${2:?usage: it_agent.sh PATH_TO_OCRA_AGENT PATH_TO_IT_AGENT_SERVER}
case $agent in /*) ;; *) agent="$PWD/$agent" ;; esac
case $server in /*) ;; *) server="$PWD/$server" ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
skip() {
    echo "it_agent: skipped: $1"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root (a private dockerd needs root)"
[ -x "$agent" ] && [ -x "$server" ] || { echo "it_agent: $agent or $server is not executable" >&2; exit 1; }
# shellcheck source=tests/lib/dockerd.sh
. "$here/lib/dockerd.sh"
# shellcheck source=tests/lib/check.sh
. "$here/lib/check.sh"

tmp=$(mktemp -d /tmp/ocra-it-agent.XXXXXX)
server_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid"
    dockerd_stop
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dockerd_start "$tmp/engine"
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no private dockerd}"
[ "$rc" -eq 0 ] || { echo "it_agent: the private dockerd did not start" >&2; exit 1; }
base_image_ensure >/dev/null
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no base image}"
[ "$rc" -eq 0 ] || { echo "it_agent: no base image" >&2; exit 1; }

# The image, built to the contract of docs/AGENT.md.
event="evm:31337:0x5e1f0a6b2c7d8e9f00112233445566778899aabbccddeeff0011223344556677:3"
image=ocra-test/agent:1
mkdir -p "$tmp/ctx"
cp "$agent" "$tmp/ctx/ocra-agent"
cat >"$tmp/ctx/Dockerfile" <<EOF
FROM $OCRA_BASE_IMAGE
COPY ocra-agent /opt/ocra/bin/ocra-agent
ENV OCRA_EVENT_ID=$event OCRA_MODEL_NAME=sentiment-bert OCRA_MODEL_VERSION=1.0.0 OCRA_MODEL_DIR=/opt/ocra/model
USER 65532:65532
ENTRYPOINT ["/opt/ocra/bin/ocra-agent", "--"]
CMD ["sh", "-c", "echo WORKLOAD RAN"]
EOF
export DOCKER_BUILDKIT=0
docker build --network none -t "$image" "$tmp/ctx" >"$tmp/build.log" 2>&1 ||
    { echo "it_agent: docker build failed: $(tail -n 5 "$tmp/build.log")" >&2; exit 1; }
sandbox=(--network none --read-only --cap-drop ALL --security-opt no-new-privileges --user 65532:65532)

# server_start NAME VERDICT: a fresh server with its socket directory $tmp/NAME, heartbeat 1 s.
server_start() {
    dir="$tmp/$1"
    "$server" "$dir" "$2" 1 "$event" >"$dir.out" 2>&1 &
    server_pid=$!
    local _
    for _ in $(seq 1 100); do
        grep -q '^ready' "$dir.out" 2>/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "it_agent: the server did not start: $(cat "$dir.out")" >&2
    exit 1
}
server_stop() {
    kill -TERM "$server_pid" && wait "$server_pid"
    server_pid=
}
# run_agent [DOCKER_OPTION...] [-- CMD...]: docker run of the image in the sandbox with $dir
# at /run/ocra, bounded; stdout in $tmp/out, stderr in $tmp/err.
run_agent() {
    local opts=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    timeout 120 docker run --rm "${sandbox[@]}" -v "$dir:/run/ocra:ro" "${opts[@]}" "$image" "$@" \
        >"$tmp/out" 2>"$tmp/err"
}
# start_detached NAME CMD...: container $name in the background; waits (60 s at most) until the
# server has its started report.
start_detached() {
    local check=$1
    shift
    docker run -d --name "$name" "${sandbox[@]}" -v "$dir:/run/ocra:ro" "$image" "$@" >/dev/null ||
        fail "$check" "docker run -d failed"
    for _ in $(seq 1 300); do
        grep -q "^started" "$dir.out" && return 0
        sleep 0.2
    done
    fail "$check" "no started report within 60 s"
}
# status NAME WANT GOT
status() {
    if [ "$3" -eq "$2" ]; then ok "$1"; else fail "$1" "exit $3, want $2; stderr: $(head -c 600 "$tmp/err")"; fi
}
lacks() { # NAME FILE PATTERN
    if grep -qF -- "$3" "$2"; then fail "$1" "'$3' in: $(head -c 600 "$2")"; else ok "$1"; fi
}

# current: the workload waits until the server has logged a heartbeat (no timing threshold),
# then exits 7; the report of its exit code and the peer's uid reach the server.
server_start current current
run_agent -- sh -c 'until grep -q heartbeat /run/ocra/log; do sleep 0.2; done; echo WORKLOAD RAN; exit 7'
status current_exit_status 7 $?
has current_workload_ran "$tmp/out" "WORKLOAD RAN"
has current_check "$dir.out" "check event=$event model=sentiment-bert version=1.0.0"
has current_check_peer_uid "$dir.out" "uid=65532"
has current_started "$dir.out" "started pid="
has current_heartbeat "$dir.out" "heartbeat uptime_ms="
has current_completed "$dir.out" "completed exit_code=7 signal=0"
server_stop
if [ -e "$dir/agent.sock" ]; then fail current_stop_removes_socket "$dir/agent.sock is left"; else ok current_stop_removes_socket; fi

# load: the workload is told OCRA_LOAD_FILE, writes 5 there and waits until a heartbeat carried
# it; then writes a bad value and waits for 3 more heartbeats: they carry no load, and the agent
# warned once.
server_start load current
run_agent --tmpfs /tmp:rw,mode=1777 -- sh -c 'echo "load file: $OCRA_LOAD_FILE"
echo 5 >"$OCRA_LOAD_FILE"
until grep -q "load=5" /run/ocra/log; do sleep 0.2; done
echo x7 >"$OCRA_LOAD_FILE"
n=$(grep -c heartbeat /run/ocra/log)
until [ "$(grep -c heartbeat /run/ocra/log)" -ge $((n + 3)) ]; do sleep 0.2; done'
status load_exit_status 0 $?
has load_file_told "$tmp/out" "load file: /tmp/ocra-load"
has load_in_heartbeat "$dir.out" "load=5"
if [ "$(grep -c 'load file /tmp/ocra-load: not a whole number' "$tmp/err")" -eq 1 ]; then
    ok load_bad_warned_once
else
    fail load_bad_warned_once "stderr: $(head -c 600 "$tmp/err")"
fi
if grep heartbeat "$dir.out" | tail -n 2 | grep -q "load="; then
    fail load_bad_not_sent "$(grep heartbeat "$dir.out" | tail -n 2)"
else
    ok load_bad_not_sent
fi
server_stop

# superseded: refused with the documented status; the workload did not run.
server_start superseded superseded:1.0.1
run_agent
status superseded_exit_75 75 $?
lacks superseded_workload_not_run "$tmp/out" "WORKLOAD RAN"
has superseded_message "$tmp/err" "superseded on-chain by version 1.0.1"
has superseded_checked "$dir.out" "check event=$event"
lacks superseded_no_started "$dir.out" "started"
# the refusal reaches the daemon over the socket before the exit (the daemon's complete stage
# decides supersession from it, never from the log)
has superseded_refused_report "$dir.out" "refused reason=superseded current=1.0.1"

# forced: the same answer, OCRA_AGENT_FORCE=1: it runs, and says so in its started report.
run_agent -e OCRA_AGENT_FORCE=1
status forced_exit_0 0 $?
has forced_workload_ran "$tmp/out" "WORKLOAD RAN"
has forced_started "$dir.out" "forced=1"
has forced_completed "$dir.out" "completed exit_code=0"
server_stop

# unknown: the daemon does not know the event: it runs, with a warning.
server_start unknown unknown
run_agent
status unknown_exit_0 0 $?
has unknown_workload_ran "$tmp/out" "WORKLOAD RAN"
has unknown_warning "$tmp/err" "does not know event"
server_stop

# no socket: the image run by hand (an empty directory at /run/ocra): it runs, with a warning.
dir="$tmp/empty"
mkdir -p "$dir"
run_agent -- sh -c 'echo WORKLOAD RAN; exit 3'
status nosocket_exit_3 3 $?
has nosocket_workload_ran "$tmp/out" "WORKLOAD RAN"
has nosocket_warning "$tmp/err" "no daemon socket at /run/ocra/agent.sock"

# docker stop: SIGTERM to the agent (PID 1) reaches the workload, which traps it and exits 42.
server_start term current
name=ocra-it-agent-term
start_detached term_run sh -c 'trap "exit 42" TERM; echo waiting; while :; do sleep 0.2; done'
docker stop -t 60 "$name" >/dev/null
status term_exit_42 42 "$(docker inspect -f '{{.State.ExitCode}}' "$name")"
has term_completed "$dir.out" "completed exit_code=42"
docker logs "$name" >"$tmp/out" 2>&1
has term_workload_ran "$tmp/out" "waiting"
docker rm -f "$name" >/dev/null
server_stop

# restart: the daemon goes away while the workload runs and comes back (a new server on the
# same directory); the agent reconnects and its completed report reaches the new server.
server_start restart current
name=ocra-it-agent-restart
start_detached restart_run sh -c 'until grep -q "^back" /run/ocra/log; do sleep 0.2; done; exit 9'
server_stop
server_start restart current
echo back >>"$dir/log"
status restart_exit_9 9 "$(timeout 120 docker wait "$name")"
has restart_completed_reaches_new_server "$dir.out" "completed exit_code=9"
docker rm -f "$name" >/dev/null
server_stop

# mute: a server that accepts and never answers: the workload still runs, after the bounded
# check; the agent says why.
server_start mute mute
run_agent -- sh -c 'echo WORKLOAD RAN; exit 5'
status mute_exit_5 5 $?
has mute_workload_ran "$tmp/out" "WORKLOAD RAN"
has mute_warning "$tmp/err" "no answer in time"
server_stop

# garbage: a reply that starts like "superseded" but is broken and overlong is not obeyed.
server_start garbage garbage
run_agent -- sh -c 'echo WORKLOAD RAN; exit 6'
status garbage_exit_6 6 $?
has garbage_workload_ran "$tmp/out" "WORKLOAD RAN"
has garbage_warning "$tmp/err" "Message too long"
server_stop

check_done
