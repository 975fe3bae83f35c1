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
# node, gpu-a still runs; gpu-b started again: up. Exits 77 saying why when network
# namespaces, dockerd, docker-registry or openssl are not to be had. Removes every namespace,
# link and process it made, by name and PID. Run from the repository root (ctest does).
set -u
ocra=${1:?usage: it_multihost.sh PATH_TO_OCRA}
case $ocra in /*) ;; *) ocra="$PWD/$ocra" ;; esac
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

# shellcheck source=tests/lib/dockerd.sh
. "$here/lib/dockerd.sh"
# shellcheck source=tests/lib/registry.sh
. "$here/lib/registry.sh"
tmp=$(mktemp -d /tmp/ocra-mh.XXXXXX)
# shellcheck source=tests/lib/check.sh
. "$here/lib/check.sh"

# names of our own, short enough for an interface (15 bytes)
tag=$$
ns1=ocra-mh-$tag-a ns2=ocra-mh-$tag-b br=ocmh$tag
made_ns=() made_links=()
pid1= pid2= dir1=$tmp/e1 dir2=$tmp/e2

stop_engine() { # DIR PID
    [ -n "$2" ] || return 0
    OCRA_DOCKERD_DIR=$1 OCRA_DOCKERD_PID=$2
    dockerd_stop
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
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
    OCRA_DOCKERD_NETNS=$ns OCRA_DOCKERD_TCP=$ip:2376 OCRA_DOCKERD_TLS_DIR=$pki/e$n \
        OCRA_DOCKERD_ARGS="--insecure-registry $reg" dockerd_start "$dir"
    local rc=$?
    [ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no private dockerd}"
    [ "$rc" -eq 0 ] || { echo "it_multihost: engine $n did not start" >&2; exit 1; }
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

if [ "$failed" -ne 0 ]; then
    echo "--- e2/dockerd.log (last 15 lines)" >&2
    tail -n 15 "$dir2/dockerd.log" >&2
fi
check_done
