# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# tests/lib/pipeline.sh: what scripts/demo and tests/it_pipeline.sh share to run `ocra daemon`
# through every stage (source it after dockerd.sh, anvil.sh, registry.sh, pyindex.sh and
# build_env.sh; the functions after pipeline_services want the services it starts):
#
#   pipeline_services DIR        # starts the private dockerd (DIR/engine, with the base image),
#                                # the package index (DIR/index; it holds wheel requests while
#                                # DIR/index-hold exists), a docker-registry (DIR/reg),
#                                # anvil (1 s blocks) and the artifact server (DIR/art), deploys
#                                # the contract and writes DIR/keys; sets PIPELINE_REGISTRY
#                                # (127.0.0.1:port; $OCRA_REGISTRY_ADDR:port with that set, see
#                                # registry.sh) and PIPELINE_CONTRACT. Returns 0; 77 when
#                                # dockerd or the base image cannot run here (OCRA_SKIP_REASON);
#                                # 1 with PIPELINE_FAILED="check: why"
#   pipeline_services_stop       # stops what pipeline_services started, by PID
#   pipeline_contract            # deploys ModelRegistry with key 0 (owner, publisher), makes
#                                # key 1 a reporter; prints the contract's address
#   pipeline_keys DIR            # DIR/{publisher.key,operator.key,sign.pem,sign.pub.pem,api.token}
#   pipeline_config FILE CONTRACT REPO AGENT API_PORT [EXTRA_YAML]
#                                # the daemon's configuration (paths relative to FILE's folder:
#                                # journal.db, cache/, keys/ from pipeline_keys DIR=that/keys)
#   pipeline_config_serve FILE   # edits FILE for workloads that serve and report load: agent
#                                # heartbeats every second, host networking (the only way to
#                                # serve a port: no bridge here), one node of 8 CPUs and 32 GiB
#                                # (the docker runner runs here whatever the inventory says)
#   pipeline_spec FILE NAME VERSION ARTIFACT SHA256 SIZE [SMOKE_VERSION]
#                                # a spec FROM the local base image whose workload checks the
#                                # weights it finds against SHA256 and exits 0 (ARTIFACT: a
#                                # path on the artifact server; SMOKE_VERSION: the ocra-smoke
#                                # wheel its toolchain installs, 1.0.0 unless given; another
#                                # version means another toolchain hash)
#   pipeline_event_of OCRA CONFIG TX   # the event id journaled for the transaction TX
#   pipeline_get OCRA CONFIG ID EXPR   # a Python expression over d (the event's
#                                # `ocra lineage --json`) and p (its pipeline object)
#   pipeline_wait_event OCRA CONFIG TX DAEMON_PID [SECONDS]
#                                # the tx's event id once it is terminal (reported and done, or
#                                # dead); bounded (default 900 s: a build), not a timing check;
#                                # fails at once when DAEMON_PID exited
#   pipeline_finish DIR          # a test's end: its time since $t0, the tail of DIR/daemon.log
#                                # when a check failed, the tally (check.sh); exits with it
#   pipeline_daemon_kill         # SIGKILLs the daemon of $daemon_pid (a crash), reaps it and
#                                # empties daemon_pid
#   pipeline_test_begin NAME PREFIX
#                                # the prologue of a test of the daemon on these services: skip
#                                # (exit 77 naming why) unless root with python3, curl, openssl,
#                                # sqlite3, docker-registry and the EVM tools; sets t0, tmp
#                                # (/tmp/PREFIX.XXXXXX), daemon_pid; defines skip, finish and
#                                # cleanup (on EXIT: the hook pipeline_test_cleanup when the test
#                                # defines one, the daemon by SIGTERM, the services, tmp unless
#                                # $KEEP); starts the services and sets registry and contract

pipeline_services() {
    local dir=${1:?usage: pipeline_services DIR} rc=0
    PIPELINE_FAILED=
    dockerd_start "$dir/engine" || rc=$?
    [ "$rc" -eq 77 ] && OCRA_SKIP_REASON=${OCRA_SKIP_REASON:-no private dockerd} && return 77
    [ "$rc" -eq 0 ] || { PIPELINE_FAILED="dockerd_start: the private dockerd did not start"; return 1; }
    base_image_ensure >/dev/null || rc=$?
    [ "$rc" -eq 77 ] && OCRA_SKIP_REASON=${OCRA_SKIP_REASON:-no base image} && return 77
    [ "$rc" -eq 0 ] || { PIPELINE_FAILED="base_image: could not make or import the base image"; return 1; }
    pyindex_start "$dir/index" "$dir/index-hold" || { PIPELINE_FAILED="pyindex: the package index did not start"; return 1; }
    registry_start "$dir/reg" || { PIPELINE_FAILED="registry: docker-registry did not start"; return 1; }
    PIPELINE_REGISTRY=${OCRA_REGISTRY_ADDR:-127.0.0.1}:$REGISTRY_PORT
    anvil_start --block-time 1 || { PIPELINE_FAILED="anvil: anvil did not start"; return 1; }
    mkdir -p "$dir/art"
    artifacts_start "$dir/art" || { PIPELINE_FAILED="artifacts: the artifact server did not start"; return 1; }
    PIPELINE_CONTRACT=$(pipeline_contract) || { PIPELINE_FAILED="contract: ModelRegistry not deployed"; return 1; }
    pipeline_keys "$dir/keys" || { PIPELINE_FAILED="keys: no keys"; return 1; }
}

pipeline_services_stop() {
    artifacts_stop
    registry_stop_all
    pyindex_stop
    anvil_stop
    dockerd_stop
}

pipeline_contract() {
    local contract
    contract=$(evm_registry_deploy) || return 1
    "$CAST" send -q --rpc-url "$EVM_RPC_URL" --private-key "$EVM_KEY0" "$contract" \
        "setReporter(address,bool)" "$EVM_ADDR1" true >/dev/null || return 1
    echo "$contract"
}

pipeline_keys() {
    local dir=${1:?usage: pipeline_keys DIR}
    mkdir -p "$dir" || return 1
    (
        umask 077
        printf '%s\n' "${EVM_KEY0#0x}" >"$dir/publisher.key" # anvil's public development keys:
        printf '%s\n' "${EVM_KEY1#0x}" >"$dir/operator.key"  # never fund them anywhere real
        openssl ecparam -name prime256v1 -genkey -noout -out "$dir/sign.pem" 2>/dev/null &&
            openssl rand -hex 32 >"$dir/api.token"
    ) || return 1
    openssl ec -in "$dir/sign.pem" -pubout -out "$dir/sign.pub.pem" 2>/dev/null
}

pipeline_config() {
    cat >"$1" <<YAML
# Written by tests/lib/pipeline.sh; every key is in docs/CONFIG.md. Relative paths are
# relative to this file's directory.
journal:
  path: journal.db
spec:
  http_hosts: ["127.0.0.1:$ARTIFACTS_PORT"]   # the artifact server: plain http allowed there
artifact:
  allow_hosts: ["127.0.0.1"]   # and on loopback, which artifacts may not come from unless listed
plan:
  pip_index_url: "$OCRA_PYINDEX_URL"
  allowed_tools: ["ocra-smoke"]
  base_images: ["${OCRA_BASE_IMAGE%:*}"]   # the specs' baseImage: the local test image
evm:
  rpc: ["$EVM_RPC_URL"]
  contract: "$2"
  confirmations: 2             # acted on once 2 blocks are on top
  from_block: 0
  poll_interval_ms: 500
  allow: ["$EVM_ADDR0"]        # the publishers the operator trusts
  key_file: keys/operator.key  # signs the status reports
build:
  registry: "$3"
  cache_dir: cache
  agent: "$4"
  sign_key: keys/sign.pem
run:
  docker_host: "$DOCKER_HOST"
api:
  listen: "127.0.0.1:$5"
  token_file: keys/api.token
agent:
  socket_dir: agent            # the workload reports its completion through it
inventory:
  local: true                  # this machine is the node the workload runs on
${6:-daemon:
  workers: 2
  retry_base_ms: 500
  retry_max_ms: 5000
  poll_ms: 200}
YAML
}

pipeline_spec() {
    local file
    file=$(basename "$4")
    cat >"$1" <<JSON
{
  "name": "$2",
  "modelVersion": "$3",
  "baseImage": "$OCRA_BASE_IMAGE",
  "toolsAndLibraries": {"ocra-smoke": "${7:-1.0.0}"},
  "artifact": {
    "uri": "http://127.0.0.1:$ARTIFACTS_PORT/$4",
    "sha256": "$5",
    "size": $6
  },
  "workload": {
    "gpus": 0,
    "command": ["python3", "-c", "import hashlib, os, ocra_smoke; d = os.environ['OCRA_MODEL_DIR']; h = hashlib.sha256(open(os.path.join(d, '$file'), 'rb').read()).hexdigest(); print('$2: weights', h, 'for', os.environ['OCRA_EVENT_ID']); assert h == '$5'"]
  }
}
JSON
}


pipeline_event_of() {
    "$1" -c "$2" events 2>/dev/null | python3 -c '
import json, sys
for l in sys.stdin:
    e = json.loads(l)
    if e.get("txHash", "").lower() == sys.argv[1].lower(): print(e["event"])' "$3"
}

pipeline_get() {
    "$1" -c "$2" lineage --json "$3" 2>/dev/null |
        python3 -c 'import json, sys; d = json.load(sys.stdin); p = d.get("pipeline", {}); print(eval(sys.argv[1]))' "$4"
}

pipeline_wait_event() {
    local ocra=$1 cfg=$2 tx=$3 pid=$4 id='' _
    for _ in $(seq 1 "${5:-900}"); do
        [ -n "$id" ] || id=$(pipeline_event_of "$ocra" "$cfg" "$tx")
        if [ -n "$id" ] && [ "$(pipeline_get "$ocra" "$cfg" "$id" '"yes" if (p.get("status") == "reported" and p.get("state") == "done") or p.get("state") == "dead" else "no"')" = yes ]; then
            echo "$id"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "  the daemon exited" >&2; return 1; }
        sleep 1
    done
    echo "  gave up waiting for $tx (event ${id:-not journaled})" >&2
    [ -n "$id" ] && echo "$id"
    return 1
}

pipeline_finish() {
    echo "($((SECONDS - t0)) s)"
    if [ "$failed" -ne 0 ] && [ -s "$1/daemon.log" ]; then
        echo "the end of the daemon's log:"
        tail -n 40 "$1/daemon.log"
    fi
    check_done
    exit $?
}

pipeline_daemon_kill() {
    if [ -n "$daemon_pid" ]; then
        kill -KILL "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
        daemon_pid=
    fi
}

pipeline_test_begin() {
    PIPELINE_TEST=${1:?usage: pipeline_test_begin NAME PREFIX}
    local prefix=${2:?usage: pipeline_test_begin NAME PREFIX} t rc=0
    skip() {
        echo "$PIPELINE_TEST: skipped: $1"
        exit 77
    }
    finish() { pipeline_finish "$tmp"; }
    # shellcheck disable=SC2317 # called by the EXIT trap
    cleanup() {
        declare -F pipeline_test_cleanup >/dev/null && pipeline_test_cleanup
        if [ -n "$daemon_pid" ]; then
            kill -TERM "$daemon_pid" 2>/dev/null
            wait "$daemon_pid" 2>/dev/null
        fi
        pipeline_services_stop
        [ -n "${KEEP:-}" ] || rm -rf --one-file-system "$tmp"
    }
    t0=$SECONDS
    [ "$(id -u)" -eq 0 ] || skip "not root (a private dockerd needs root)"
    for t in python3 curl openssl sqlite3; do
        command -v "$t" >/dev/null 2>&1 || skip "no $t"
    done
    registry_or_skip
    evm_tools_or_skip
    tmp=$(mktemp -d "/tmp/$prefix.XXXXXX")
    daemon_pid=
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    export DOCKER_BUILDKIT=0
    pipeline_services "$tmp" || rc=$?
    [ "$rc" -eq 77 ] && skip "$OCRA_SKIP_REASON"
    [ "$rc" -eq 0 ] || { fail "${PIPELINE_FAILED%%:*}" "${PIPELINE_FAILED#*: }"; finish; }
    registry=$PIPELINE_REGISTRY
    contract=$PIPELINE_CONTRACT
}

pipeline_config_serve() {
    python3 - "${1:?usage: pipeline_config_serve FILE}" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r"(?m)^(  socket_dir: agent.*)$", r"\1\n  heartbeat_s: 1", s, count=1)
s = re.sub(r"(?m)^(  docker_host: .*)$", r"\1\n  sandbox:\n    network_host: true", s, count=1)
s = re.sub(r"(?m)^  local: true.*$",
           "  local: false\n  nodes:\n    - name: it-node\n      cpus: 8\n      memory_mib: 32768", s,
           count=1)
open(p, "w").write(s)
PY
}
