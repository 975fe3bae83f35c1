#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_multihost.sh OCRA: one ocra over two Docker engines, each a private dockerd in its own
# network namespace reached over TCP with TLS client certificates (docs/RUNNING.md, "Docker
# hosts"). The namespaces hang off a bridge of the test's own on a private /29 of 10.213.0.0/16
# (root side .1, the engines .2 and .3); the docker-registry listens on .1 only, so the engines
# pull from it over the test subnet. The certificates (a CA, a server certificate per engine
# with its address in subjectAltName, one client certificate) are made with openssl.
# Cases: a workload run on node gpu-b runs on gpu-b's engine (asked directly, and absent on
# gpu-a's), its image pulled there by digest; a client without a certificate is refused; node
# gpu-b's dockerd killed by PID: `ocra nodes` shows it down, a run on it fails naming the
# node, gpu-a still runs; gpu-b started again: up. Then the daemon (tests/lib/pipeline.sh:
# anvil, the package index, a registry on the bridge's address, a local dockerd for builds)
# with first-fit over [gpu-b, gpu-a]: an event is placed on gpu-b and its workload runs on
# gpu-b's engine (pulled there by digest); gpu-b's dockerd killed: /api/v1/nodes and
# ocra_node_up{node="gpu-b"} say down, the event waits (not dead, not run elsewhere), a new
# event is placed on gpu-a and reported; the daemon restarted meanwhile: the waiting event's
# complete stage finds gpu-b silent and waits again (not dead); gpu-b's dockerd started again:
# up, and the waiting event is judged by what its engine recorded and reported. Exits 77 saying why when network
# namespaces, dockerd, docker-registry or openssl are not to be had. Removes every namespace,
# link and process it made, by name and PID. Run from the repository root (ctest does).
set -u
ocra=${1:?usage: it_multihost.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
agent=${2:?usage: it_multihost.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
case $ocra in /*) ;; *) ocra="$PWD/$ocra" ;; esac
case $agent in /*) ;; *) agent="$PWD/$agent" ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
skip() {
    echo "it_multihost: skipped: $1"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root (network namespaces and dockerd need root)"
command -v ip >/dev/null 2>&1 || skip "no ip (Debian package iproute2)"
command -v openssl >/dev/null 2>&1 || skip "no openssl"
command -v docker-registry >/dev/null 2>&1 || skip "no docker-registry (Debian package docker-registry)"
command -v dockerd >/dev/null 2>&1 || skip "no dockerd (Debian package docker.io)"
command -v sqlite3 >/dev/null 2>&1 || skip "no sqlite3"

# shellcheck source=tests/lib/dockerd.sh
. "$here/lib/dockerd.sh"
# shellcheck source=tests/lib/registry.sh
. "$here/lib/registry.sh"
# shellcheck source=tests/lib/pyindex.sh
. "$here/lib/pyindex.sh"
# shellcheck source=tests/lib/anvil.sh
. "$here/lib/anvil.sh"
# shellcheck source=tests/lib/build_env.sh
. "$here/lib/build_env.sh"
# shellcheck source=tests/lib/pipeline.sh
. "$here/lib/pipeline.sh"
evm_tools_or_skip
tmp=$(mktemp -d /tmp/ocra-mh.XXXXXX)
# shellcheck source=tests/lib/check.sh
. "$here/lib/check.sh"

# names of our own, short enough for an interface (15 bytes)
tag=$$
ns1=ocra-mh-$tag-a ns2=ocra-mh-$tag-b br=ocmh$tag
made_ns=() made_links=()
pid1='' pid2='' dir1=$tmp/e1 dir2=$tmp/e2 daemon_pid='' services='' p_dir='' p_pid=''

stop_engine() { # DIR PID: the engine (PID may be empty: one that failed to start), then
    # whatever it left mounted under DIR
    [ -d "$1" ] || return 0
    OCRA_DOCKERD_DIR=$1 OCRA_DOCKERD_PID=$2
    dockerd_stop
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [ -n "$daemon_pid" ]; then
        kill -TERM "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    if [ -n "$services" ]; then
        OCRA_DOCKERD_DIR=$p_dir OCRA_DOCKERD_PID=$p_pid
        pipeline_services_stop
    fi
    stop_engine "$dir1" "$pid1"
    stop_engine "$dir2" "$pid2"
    registry_stop_all
    local x
    for x in "${made_links[@]}"; do ip link del "$x" 2>/dev/null; done
    for x in "${made_ns[@]}"; do ip netns del "$x" 2>/dev/null; done
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! ip netns add "$ns1" 2>"$tmp/netns.err"; then
    skip "cannot create a network namespace here: $(head -c 200 "$tmp/netns.err")"
fi
made_ns+=("$ns1")
ip netns add "$ns2" || exit 1
made_ns+=("$ns2")

# a /29 of 10.213.0.0/16 that no interface here has yet
net=
for _ in $(seq 1 50); do
    c=$((RANDOM % 256)).$(((RANDOM % 32) * 8))
    if ! ip -4 addr show | grep -qF "inet 10.213.${c%.*}.$((${c#*.} + 1))/"; then
        net=10.213.${c%.*}
        base=${c#*.}
        break
    fi
done
[ -n "$net" ] || { echo "it_multihost: no free 10.213.x.y/29" >&2; exit 1; }
root_ip=$net.$((base + 1)) ip1=$net.$((base + 2)) ip2=$net.$((base + 3))

ip link add "$br" type bridge && made_links+=("$br") || exit 1
ip addr add "$root_ip/29" dev "$br" && ip link set "$br" up || exit 1
i=0
for pair in "$ns1:$ip1" "$ns2:$ip2"; do
    i=$((i + 1))
    n=${pair%%:*} a=${pair#*:}
    ip link add "${br}r$i" type veth peer name "${br}n$i" && made_links+=("${br}r$i") || exit 1
    ip link set "${br}r$i" master "$br" && ip link set "${br}r$i" up &&
        ip link set "${br}n$i" netns "$n" &&
        ip -n "$n" addr add "$a/29" dev "${br}n$i" && ip -n "$n" link set "${br}n$i" up &&
        ip -n "$n" link set lo up || exit 1
done

# certificates: a CA, a server certificate per engine (its address in subjectAltName), a client
pki=$tmp/pki
mkdir -p "$pki"
ossl() { openssl "$@" >>"$pki/openssl.log" 2>&1 || { echo "it_multihost: openssl $1 failed: $(tail -3 "$pki/openssl.log")" >&2; exit 1; }; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ocra test CA" \
    -keyout "$pki/ca-key.pem" -out "$pki/ca.pem"
for who in e1:"$ip1" e2:"$ip2" client:; do
    name=${who%%:*} addr=${who#*:}
    mkdir -p "$pki/$name"
    ossl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$pki/$name/key.pem" -out "$pki/$name/req.pem"
    if [ -n "$addr" ]; then
        printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$addr" >"$pki/$name/ext"
    else
        printf 'extendedKeyUsage=clientAuth\n' >"$pki/$name/ext"
    fi
    ossl x509 -req -in "$pki/$name/req.pem" -CA "$pki/ca.pem" -CAkey "$pki/ca-key.pem" \
        -CAcreateserial -days 2 -extfile "$pki/$name/ext" -out "$pki/$name/cert.pem"
    cp "$pki/ca.pem" "$pki/$name/ca.pem"
    cp "$pki/$name/cert.pem" "$pki/$name/server-cert.pem"
    cp "$pki/$name/key.pem" "$pki/$name/server-key.pem"
done
chmod 600 "$pki"/*/key.pem "$pki"/*/server-key.pem

# the registry on the bridge's address only
OCRA_REGISTRY_ADDR=$root_ip registry_start "$tmp/reg" || exit 1
reg=$root_ip:$REGISTRY_PORT

start_engine() { # N: engine N in its namespace, tcp://ADDR:2376 with TLS
    local n=$1 ns ip dir
    if [ "$n" = 1 ]; then ns=$ns1 ip=$ip1 dir=$dir1; else ns=$ns2 ip=$ip2 dir=$dir2; fi
    local rc try
    # a second try: an engine restarted after a SIGKILL may find the containerd it left still
    # going down ("timeout waiting for containerd to start")
    for try in 1 2; do
        OCRA_DOCKERD_NETNS=$ns OCRA_DOCKERD_TCP=$ip:2376 OCRA_DOCKERD_TLS_DIR=$pki/e$n \
            OCRA_DOCKERD_ARGS="--insecure-registry $net.$base/29" dockerd_start "$dir"
        rc=$?
        [ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no private dockerd}"
        [ "$rc" -eq 0 ] && break
        stop_engine "$dir" ""
        [ "$try" -eq 2 ] && { echo "it_multihost: engine $n did not start" >&2; exit 1; }
    done
    if [ "$n" = 1 ]; then pid1=$OCRA_DOCKERD_PID; else pid2=$OCRA_DOCKERD_PID; fi
}
start_engine 1
start_engine 2
unset DOCKER_HOST
# the test's own look at an engine, over its TCP endpoint with the client certificate
tls=(--tlsverify --tlscacert "$pki/ca.pem" --tlscert "$pki/client/cert.pem" --tlskey "$pki/client/key.pem")
d1() { docker -H "tcp://$ip1:2376" "${tls[@]}" "$@"; }
d2() { docker -H "tcp://$ip2:2376" "${tls[@]}" "$@"; }

# the base image, pushed from engine 1 to the registry: a digest reference
DOCKER_HOST=unix://$dir1/docker.sock base_image_ensure >/dev/null
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no base image}"
[ "$rc" -eq 0 ] || { echo "it_multihost: no base image" >&2; exit 1; }
d1 tag "$OCRA_BASE_IMAGE" "$reg/ocra-test/mh:1" && d1 push "$reg/ocra-test/mh:1" >"$tmp/push.log" 2>&1 ||
    { echo "it_multihost: push failed: $(tail -5 "$tmp/push.log")" >&2; exit 1; }
image=$(d1 image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$reg/ocra-test/mh:1" |
    grep -F "$reg/ocra-test/mh@sha256:" | head -n 1)
[ -n "$image" ] || { echo "it_multihost: no RepoDigest after the push" >&2; exit 1; }

cat >"$tmp/c.yaml" <<EOF
journal:
  path: j.db
run:
  docker_tls:
    ca: $pki/ca.pem
    cert: $pki/client/cert.pem
    key: $pki/client/key.pem
inventory:
  local: false
  nodes:
    - name: gpu-a
      cpus: 2
      memory_mib: 2048
      docker_host: "tcp://$ip1:2376"
    - name: gpu-b
      cpus: 2
      memory_mib: 2048
      docker_host: "tcp://$ip2:2376"
EOF

# the engines answer over TLS only to a client with a certificate of the CA
if docker -H "tcp://$ip2:2376" --tls --tlscacert "$pki/ca.pem" version >"$tmp/out" 2>&1; then
    fail tls_client_cert_required "an engine answered a client without a certificate"
else
    ok tls_client_cert_required
fi

# a workload on gpu-b runs on gpu-b's engine, pulled there by digest
if d2 image inspect "$image" >/dev/null 2>&1; then
    fail b_starts_without_image "engine 2 has the image before the run"
else
    ok b_starts_without_image
fi
expect run_on_b 0 "$ocra" -c "$tmp/c.yaml" run --node gpu-b --name mh-b "$image" -- \
    /bin/sh -c 'echo ran-on-b' && has run_on_b_log "$tmp/out" "ran-on-b"
if [ -n "$(d2 ps -aq --filter label=io.ocra.event-id=manual:mh-b)" ]; then
    ok container_on_b
else
    fail container_on_b "engine 2 has no container of manual:mh-b: $(d2 ps -a 2>&1 | head -5)"
fi
if [ -z "$(d1 ps -aq --filter label=io.ocra.event-id=manual:mh-b)" ]; then
    ok not_on_a
else
    fail not_on_a "engine 1 has a container of manual:mh-b"
fi
if d2 image inspect "$image" >/dev/null 2>&1; then ok pulled_on_b; else fail pulled_on_b "engine 2 lacks $image"; fi
expect nodes_up 0 "$ocra" -c "$tmp/c.yaml" nodes &&
    if sed -n '/node gpu-b/,$p' "$tmp/out" | grep -Eq "^  engine +tcp://$ip2:2376 +up"; then
        ok nodes_b_up
    else
        fail nodes_b_up "$(cat "$tmp/out")"
    fi

# a long one on gpu-b, then gpu-b's engine stops
expect run_long_b 0 "$ocra" -c "$tmp/c.yaml" run --node gpu-b --name mh-long --no-wait "$image" -- \
    /bin/sh -c 'sleep 600'
kill -KILL "$pid2"
wait "$pid2" 2>/dev/null
expect nodes_down 1 "$ocra" -c "$tmp/c.yaml" nodes &&
    if sed -n '/node gpu-b/,$p' "$tmp/out" | grep -Eq "^  engine +tcp://$ip2:2376 +down"; then
        ok nodes_b_down
    else
        fail nodes_b_down "$(cat "$tmp/out")"
    fi
# `ocra daemon --check`: one line per node's engine, the silent one failing with what to check
"$ocra" -c "$tmp/c.yaml" daemon --check >"$tmp/out" 2>"$tmp/err"
if grep -q "^ok *node gpu-a engine: tcp://$ip1:2376: .*API 1\." "$tmp/out" &&
    grep -q "^FAIL *node gpu-b engine: tcp://$ip2:2376: .*is its dockerd listening there" "$tmp/out"; then
    ok check_probes_each_node
else
    fail check_probes_each_node "$(grep -i node "$tmp/out")"
fi
expect run_on_down_b 1 "$ocra" -c "$tmp/c.yaml" run --node gpu-b --name mh-b2 "$image" -- /bin/true &&
    has run_on_down_b_names_node "$tmp/err" "node gpu-b"
expect run_on_a 0 "$ocra" -c "$tmp/c.yaml" run --node gpu-a --name mh-a --rm "$image" -- \
    /bin/sh -c 'echo ran-on-a' && has run_on_a_log "$tmp/out" "ran-on-a"

# gpu-b back: up, and the workload started before is found there again
stop_engine "$dir2" "$pid2"
pid2=
start_engine 2
expect nodes_up_again 0 "$ocra" -c "$tmp/c.yaml" nodes &&
    if sed -n '/node gpu-b/,$p' "$tmp/out" | grep -Eq "^  engine +tcp://$ip2:2376 +up"; then
        ok nodes_b_up_again
    else
        fail nodes_b_up_again "$(cat "$tmp/out")"
    fi

# bad endpoints: a clear error naming the node and the form
cat >"$tmp/bad.yaml" <<EOF
inventory:
  local: false
  nodes:
    - name: gpu-c
      docker_host: "ssh://ops@$ip2"
EOF
expect ssh_refused 1 "$ocra" -c "$tmp/bad.yaml" run --node gpu-c --name mh-c "$image" -- /bin/true &&
    has ssh_refused_says "$tmp/err" "ssh -L"
sed -i "s|ssh://ops@$ip2|tcp://$ip2:2376|; s|^run:.*||" "$tmp/bad.yaml"
expect tcp_needs_tls 2 "$ocra" -c "$tmp/bad.yaml" run --node gpu-c --name mh-c "$image" -- /bin/true &&
    has tcp_needs_tls_says "$tmp/err" "TLS client certificates"

# ---- the daemon: placement over the two engines ----------------------------------------------

export DOCKER_BUILDKIT=0
# the builds' engine (this host's), pushing to the registry on the bridge's address
OCRA_REGISTRY_ADDR=$root_ip OCRA_DOCKERD_ARGS="--insecure-registry $net.$base/29" \
    pipeline_services "$tmp/p"
rc=$?
services=1 p_dir=$OCRA_DOCKERD_DIR p_pid=$OCRA_DOCKERD_PID
[ "$rc" -eq 77 ] && skip "$OCRA_SKIP_REASON"
[ "$rc" -eq 0 ] || { fail "${PIPELINE_FAILED%%:*}" "${PIPELINE_FAILED#*: }"; check_done; exit 1; }
api_port=$(free_port)
pipeline_config "$tmp/p/ocra.yaml" "$PIPELINE_CONTRACT" "http://$PIPELINE_REGISTRY/ocra/mh" \
    "$agent" "$api_port" "daemon:
  workers: 3
  retry_base_ms: 500
  retry_max_ms: 3000
  poll_ms: 200
  lease_ms: 5000
sched:
  policy: first-fit"
python3 - "$tmp/p/ocra.yaml" "$ip1" "$ip2" "$pki" <<'PY'
import re, sys
p, ip1, ip2, pki = sys.argv[1:]
s = open(p).read()
nodes = "".join(
    "\n    - name: %s\n      cpus: 4\n      memory_mib: 16384\n      docker_host: \"tcp://%s:2376\"" % (n, ip)
    for n, ip in (("gpu-b", ip2), ("gpu-a", ip1)))
s = re.sub(r"(?m)^  local: true.*$", "  local: false\n  nodes:" + nodes, s, count=1)
s = re.sub(r"(?m)^run:$", "run:\n  docker_tls:\n    ca: %s/ca.pem\n    cert: %s/client/cert.pem\n    key: %s/client/key.pem" % (pki, pki, pki), s, count=1)
open(p, "w").write(s)
PY
cfg=$tmp/p/ocra.yaml
mkdir -p "$tmp/p/art/w"
head -c 50000 /dev/urandom >"$tmp/p/art/w/model.safetensors"
sha=$(sha256sum "$tmp/p/art/w/model.safetensors" | cut -d' ' -f1)
# spec NAME SHELL_COMMAND: a CPU-only training spec on the local base image
spec() {
    cat <<JSON
{"name": "$1", "modelVersion": "1.0.0", "baseImage": "$OCRA_BASE_IMAGE",
 "toolsAndLibraries": {"ocra-smoke": "1.0.0"},
 "artifact": {"uri": "http://127.0.0.1:$ARTIFACTS_PORT/w/model.safetensors", "sha256": "$sha",
              "size": 50000},
 "workload": {"type": "training", "gpus": 0, "command": ["sh", "-c", "$2"]}}
JSON
}
publish() { # NAME SHELL_COMMAND: prints the transaction hash
    "$CAST" send --json --rpc-url "$EVM_RPC_URL" --private-key "$EVM_KEY0" "$PIPELINE_CONTRACT" \
        "publish(string,string)" "$1" "$(spec "$1" "$2")" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["transactionHash"])'
}
q() { sqlite3 "$tmp/p/journal.db" "$1" 2>/dev/null; }
api() { curl -s -H "Authorization: Bearer $(cat "$tmp/p/keys/api.token")" "http://127.0.0.1:$api_port$1"; }
node_of() { q "SELECT node FROM allocations WHERE event_id = '$1' ORDER BY rowid LIMIT 1"; }
on_engine() { # d1|d2 EVENT: the engine has a container of EVENT
    [ -n "$("$1" ps -aq --filter "label=io.ocra.event-id=$2" 2>/dev/null)" ]
}
running_on() { # d1|d2 EVENT
    [ -n "$("$1" ps -q --filter "label=io.ocra.event-id=$2" 2>/dev/null)" ]
}
"$ocra" daemon -c "$cfg" >>"$tmp/p/daemon.out" 2>>"$tmp/p/daemon.log" &
daemon_pid=$!

wait_cmd="while [ ! -e /tmp/ocra-stop ]; do sleep 0.2; done"
tx1=$(publish mh-one "$wait_cmd") || fail publish_one "cast send failed"
ev1=
got_ev1() { ev1=$(pipeline_event_of "$ocra" "$cfg" "$tx1"); [ -n "$ev1" ]; }
# a bounded wait for the build and the start (minutes on a slow machine), not a timing check
placed_b() { got_ev1 && running_on d2 "$ev1"; }
for _ in $(seq 1 900); do placed_b && break; kill -0 "$daemon_pid" 2>/dev/null || break; sleep 1; done
if placed_b; then ok daemon_placed_on_b; else fail daemon_placed_on_b "event ${ev1:-?} not running on engine 2; $(tail -5 "$tmp/p/daemon.log")"; fi
[ "$(node_of "$ev1")" = gpu-b ] && ok daemon_allocation_b || fail daemon_allocation_b "allocation on '$(node_of "$ev1")'"
on_engine d1 "$ev1" && fail daemon_not_on_a "engine 1 has a container of $ev1" || ok daemon_not_on_a

# gpu-b's engine dies
kill -KILL "$pid2"
wait "$pid2" 2>/dev/null
b_down() { api /api/v1/nodes | python3 -c '
import json, sys
d = json.load(sys.stdin)
n = [x for x in (d if isinstance(d, list) else d.get("nodes", [])) if x.get("name") == "gpu-b"]
sys.exit(0 if n and n[0].get("engine", {}).get("up") is False else 1)'; }
wait_until "/api/v1/nodes says gpu-b is down" b_down && ok api_b_down || fail api_b_down "$(api /api/v1/nodes | head -c 600)"
metric_b() { api /metrics | grep -F 'ocra_node_up{node="gpu-b"}' | awk '{print $2}'; }
[ "$(metric_b)" = 0 ] && ok metric_b_down || fail metric_b_down "ocra_node_up{node=\"gpu-b\"} is '$(metric_b)'"
tx2=$(publish mh-two "echo two") || fail publish_two "cast send failed"
ev2=$(pipeline_wait_event "$ocra" "$cfg" "$tx2" "$daemon_pid")
[ "$(pipeline_get "$ocra" "$cfg" "$ev2" 'p.get("status")')" = reported ] && ok second_reported || fail second_reported "event ${ev2:-?}: $(pipeline_get "$ocra" "$cfg" "$ev2" 'p')"
[ "$(node_of "$ev2")" = gpu-a ] && ok second_placed_on_a || fail second_placed_on_a "allocation on '$(node_of "$ev2")'"
on_engine d1 "$ev2" && ok second_ran_on_a || fail second_ran_on_a "engine 1 has no container of $ev2"
st1=$(pipeline_get "$ocra" "$cfg" "$ev1" 'p.get("state")')
[ "$st1" != "dead" ] && [ "$st1" != "done" ] && ok first_waits_for_b || fail first_waits_for_b "state $st1"
on_engine d1 "$ev1" && fail first_not_run_elsewhere "engine 1 has a container of $ev1" || ok first_not_run_elsewhere
# the daemon restarted while gpu-b is silent: its supervisor looks at the first event again,
# whose complete stage finds the engine silent and waits for it (not retried to death)
kill -TERM "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
waits_before=$(grep -c "event=$ev1: .*waiting for its node" "$tmp/p/daemon.log")
"$ocra" daemon -c "$cfg" >>"$tmp/p/daemon.out" 2>>"$tmp/p/daemon.log" &
daemon_pid=$!
waits_again() { [ "$(grep -c "event=$ev1: .*waiting for its node" "$tmp/p/daemon.log")" -gt "$waits_before" ]; }
wait_until "the restarted daemon's look at the first event" waits_again &&
    ok restart_first_waits_for_b || fail restart_first_waits_for_b "$(grep -F "$ev1" "$tmp/p/daemon.log" | tail -3)"
st1=$(pipeline_get "$ocra" "$cfg" "$ev1" 'p.get("state")')
[ "$st1" != "dead" ] && ok restart_first_not_dead || fail restart_first_not_dead "state $st1"

# gpu-b's engine back: up, and the first event is judged by what its engine recorded
start_engine 2
b_up() { ! b_down && api /api/v1/nodes | grep -q gpu-b; }
wait_until "/api/v1/nodes says gpu-b is up" b_up && ok api_b_up || fail api_b_up "$(api /api/v1/nodes | head -c 600)"
running_on d2 "$ev1" && d2 exec "$(d2 ps -q --filter "label=io.ocra.event-id=$ev1")" touch /tmp/ocra-stop
ev1b=$(pipeline_wait_event "$ocra" "$cfg" "$tx1" "$daemon_pid")
[ "$(pipeline_get "$ocra" "$cfg" "$ev1" 'p.get("status")')" = reported ] && ok first_reported_after_b_back ||
    fail first_reported_after_b_back "event ${ev1b:-?}: $(pipeline_get "$ocra" "$cfg" "$ev1" 'p')"
[ "$(q "SELECT count(DISTINCT node) FROM allocations WHERE event_id = '$ev1'")" = 1 ] && ok first_one_node ||
    fail first_one_node "$(q "SELECT node FROM allocations WHERE event_id = '$ev1'")"
kill -0 "$daemon_pid" 2>/dev/null && ok daemon_kept_running || fail daemon_kept_running "exited"

if [ "$failed" -ne 0 ]; then
    echo "--- the daemon's log (last 30 lines)" >&2
    tail -n 30 "$tmp/p/daemon.log" >&2
    echo "--- e2/dockerd.log (last 15 lines)" >&2
    tail -n 15 "$dir2/dockerd.log" >&2
fi
check_done
