#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_fetch.sh IT_FETCH: the artifact fetch (src/build/build_fetch.c) against a misbehaving
# artifact server (tests/lib/artifact_server.py) on this machine, configured from an ocra.yaml
# as the daemon configures it (tests/it_fetch.c). Checked:
#  1. two fetches of one digest at once in one process, as two workers of a daemon, the
#     first from a hostile URL that keeps writing while the second runs: the victim's fetch is
#     verified, the hostile one rejected, and the cache holds exactly the verified bytes (it
#     used to hold the hostile bytes under the victim's digest); no temporary or lock is
#     left; a temporary a crashed fetch left is removed by the next fetch of its digest;
#  2. the operator's limits, enforced while streaming: artifact.max_size_mib against a body
#     without a length, a Content-Length over it and a declared artifact.size over it (no
#     request made); artifact.min_rate_kib against a trickle; artifact.deadline_s against a
#     transfer that never ends;
#  3. destinations: a host name that resolves to an internal address is refused when the
#     connection is about to be made (no request reaches the server) unless
#     artifact.allow_hosts lists the name or a CIDR of the address; a literal one is refused
#     already by spec validation; an HTTP status is never a verdict on the artifact.
# Exits 77 (skip) with the reason when it cannot run here. Stops what it started, by PID.
set -u
fetch=${1:?usage: it_fetch.sh PATH_TO_IT_FETCH}
case $fetch in /*) ;; *) fetch="$PWD/$fetch" ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib/check.sh"

skip() {
    echo "it_fetch: skipped: $1"
    exit 77
}
t0=$SECONDS
command -v python3 >/dev/null 2>&1 || skip "no python3"

tmp=$(mktemp -d /tmp/ocra-fetch.XXXXXX)
pids=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

finish() {
    echo "($((SECONDS - t0)) s)"
    check_done
    exit $?
}

# server_start ADDR NAME: an artifact server bound to ADDR; its port in $tmp/NAME.port, its
# log in $tmp/NAME.log. Returns non-zero when it did not start.
server_start() {
    python3 "$here/lib/artifact_server.py" "$tmp/art" "$tmp/$2.port" "$1" 2>"$tmp/$2.log" &
    pids+=($!)
    for _ in $(seq 300); do
        [ -s "$tmp/$2.port" ] && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# config FILE YAML...: an ocra.yaml of the given lines (relative to nothing: absolute paths)
config() {
    local f=$1
    shift
    printf '%s\n' "$@" >"$f"
}

# spec FILE URI [SIZE]: a spec whose artifact is w.bin's digest at URI
spec() {
    local size=${3:+, \"size\": $3}
    cat >"$1" <<JSON
{"name": "m", "modelVersion": "1.0.0", "toolsAndLibraries": {"PyTorch": "2.1.0"},
 "artifact": {"uri": "$2", "sha256": "$sha"$size}}
JSON
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
# leftovers DIR: the temporaries and locks a fetch left in DIR/sha256
leftovers() { find "$1/sha256" -name '.tmp.*' -o -name '.lock.*' 2>/dev/null; }
run() { "$fetch" "$@" >"$tmp/out" 2>"$tmp/err"; }

mkdir -p "$tmp/art"
head -c 2000000 /dev/urandom >"$tmp/art/w.bin"
sha=$(sha_of "$tmp/art/w.bin")
server_start 127.0.0.1 s1 || { fail server "the artifact server did not start: $(tail -3 "$tmp/s1.log")"; finish; }
port=$(cat "$tmp/s1.port")
base=http://127.0.0.1:$port
ok services

# --- 1. two fetches of one digest, one hostile ---------------------------------------------
config "$tmp/loop.yaml" "spec:" "  http_hosts: [\"127.0.0.1:$port\"]" \
    "artifact:" "  allow_hosts: [\"127.0.0.1\"]"
cache=$tmp/c1
spec "$tmp/victim.json" "$base/files/w.bin" 2000000
spec "$tmp/hostile.json" "$base/hostile/w.bin?mark=$tmp/mark&wait=$cache/sha256/$sha" 2000000
run "$tmp/loop.yaml" "$cache" "$tmp/hostile.json" "$tmp/victim.json" "$tmp/mark"
has race_victim_verified "$tmp/out" "fetch 2: ok $cache/sha256/$sha"
has race_hostile_rejected "$tmp/out" "fetch 1: rejected: artifact: what artifact.uri served"
if [ -f "$cache/sha256/$sha" ] && [ "$(sha_of "$cache/sha256/$sha")" = "$sha" ]; then
    ok race_cache_holds_the_verified_bytes
else
    fail race_cache_holds_the_verified_bytes "the cache's file has sha256 $(sha_of "$cache/sha256/$sha" 2>&1); output: $(cat "$tmp/out")"
fi
left=$(leftovers "$cache")
[ -z "$left" ] && ok race_leaves_no_temporary || fail race_leaves_no_temporary "$left"

# a crashed fetch's temporary is removed by the next fetch of its digest
mkdir -p "$tmp/c2/sha256"
printf 'half of something' >"$tmp/c2/sha256/.tmp.$sha.4242"
run "$tmp/loop.yaml" "$tmp/c2" "$tmp/victim.json"
has stale_fetch_verified "$tmp/out" "fetch 1: ok"
left=$(leftovers "$tmp/c2")
[ -z "$left" ] && ok stale_temporary_removed || fail stale_temporary_removed "$left"

# --- 2. the operator's limits --------------------------------------------------------------
config "$tmp/small.yaml" "spec:" "  http_hosts: [\"127.0.0.1:$port\"]" \
    "artifact:" "  allow_hosts: [\"127.0.0.1\"]" "  max_size_mib: 1"
spec "$tmp/endless.json" "$base/endless?fast=1"
run "$tmp/small.yaml" "$tmp/c3" "$tmp/endless.json"
has max_size_body_refused "$tmp/out" "fetch 1: error EFBIG: fetch: artifact larger than 1048576 bytes, the operator's maximum (artifact.max_size_mib)"
has max_size_body_rejected "$tmp/out" "fetch 1: rejected:"
left=$(leftovers "$tmp/c3")
[ -z "$left" ] && ok max_size_leaves_no_temporary || fail max_size_leaves_no_temporary "$left"
spec "$tmp/big.json" "$base/big"
run "$tmp/small.yaml" "$tmp/c3" "$tmp/big.json"
has max_size_content_length_refused "$tmp/out" "fetch 1: error EFBIG"
spec "$tmp/declared.json" "$base/files/w.bin?declared" 2000000
run "$tmp/small.yaml" "$tmp/c3" "$tmp/declared.json"
has max_size_declared_rejected "$tmp/out" "artifact.size 2000000 is over the operator's maximum of 1048576 bytes"
if grep -q 'declared' "$tmp/s1.log"; then fail max_size_declared_no_request "the server was asked"; else
    ok max_size_declared_no_request; fi

config "$tmp/slow.yaml" "spec:" "  http_hosts: [\"127.0.0.1:$port\"]" \
    "artifact:" "  allow_hosts: [\"127.0.0.1\"]" "  min_rate_kib: 4" "  min_rate_window_s: 2"
spec "$tmp/trickle.json" "$base/trickle/w.bin" 2000000
run "$tmp/slow.yaml" "$tmp/c4" "$tmp/trickle.json"
has min_rate_trickle_ends "$tmp/out" "fetch 1: error ETIMEDOUT"
has min_rate_names_the_keys "$tmp/out" "artifact.min_rate_kib"
if grep -q rejected "$tmp/out"; then fail min_rate_is_transient "$(cat "$tmp/out")"; else ok min_rate_is_transient; fi

config "$tmp/deadline.yaml" "spec:" "  http_hosts: [\"127.0.0.1:$port\"]" \
    "artifact:" "  allow_hosts: [\"127.0.0.1\"]" "  min_rate_kib: 1" "  deadline_s: 2"
spec "$tmp/slow-endless.json" "$base/endless"
run "$tmp/deadline.yaml" "$tmp/c5" "$tmp/slow-endless.json"
has deadline_ends_the_transfer "$tmp/out" "fetch 1: error ETIMEDOUT"
has deadline_names_the_key "$tmp/out" "artifact.deadline_s"
left=$(leftovers "$tmp/c5")
[ -z "$left" ] && ok deadline_leaves_no_temporary || fail deadline_leaves_no_temporary "$left"

# --- 3. destinations -----------------------------------------------------------------------
config "$tmp/default.yaml" "spec:" "  http_hosts: [\"127.0.0.1:$port\"]"
run "$tmp/default.yaml" "$tmp/c6" "$tmp/victim.json"
has literal_loopback_invalid_spec "$tmp/out" "fetch 1: invalid spec"
has literal_loopback_rule "$tmp/out" "uri.address"

# A host name that this machine resolves to one of its own internal addresses (the host name
# in /etc/hosts, usually); an artifact server listens there.
internal() { python3 -c 'import ipaddress, sys; a = ipaddress.ip_address(sys.argv[1]); sys.exit(not (a.is_private or a.is_loopback or a.is_link_local))' "$1"; }
name= addr=
for n in "$(hostname 2>/dev/null)" "$(hostname -f 2>/dev/null)" localhost.localdomain; do
    case $n in "" | localhost | *.localhost) continue ;; esac
    a=$(getent ahostsv4 "$n" 2>/dev/null | awk 'NR == 1 { print $1 }')
    [ -n "$a" ] && internal "$a" || continue
    [ "$a" != 127.0.0.1 ] && ! server_start "$a" s2 && continue
    [ -n "$a" ] && name=$n addr=$a && break
done
if [ -z "$name" ]; then
    echo "# no host name here resolves to a local address: the connect-time checks are not run"
else
    [ "$addr" = 127.0.0.1 ] && nport=$port || nport=$(cat "$tmp/s2.port")
    log=$tmp/s1.log
    [ "$addr" = 127.0.0.1 ] || log=$tmp/s2.log
    echo "# $name resolves to $addr"
    spec "$tmp/named.json" "http://$name:$nport/files/w.bin?via-name" 2000000
    config "$tmp/named.yaml" "spec:" "  http_hosts: [\"$name:$nport\"]"
    run "$tmp/named.yaml" "$tmp/c7" "$tmp/named.json"
    has name_to_internal_refused "$tmp/out" "fetch 1: error EACCES"
    has name_to_internal_says_where "$tmp/out" "refused to connect to $addr"
    has name_to_internal_rejected "$tmp/out" "fetch 1: rejected: artifact.uri may not be fetched"
    if grep -q 'via-name' "$log"; then fail name_to_internal_no_request "the server was asked: $(grep via-name "$log")"; else
        ok name_to_internal_no_request; fi
    config "$tmp/named-allow.yaml" "spec:" "  http_hosts: [\"$name:$nport\"]" \
        "artifact:" "  allow_hosts: [\"$name\"]"
    run "$tmp/named-allow.yaml" "$tmp/c8" "$tmp/named.json"
    has name_allowed_by_name "$tmp/out" "fetch 1: ok"
    config "$tmp/cidr-allow.yaml" "spec:" "  http_hosts: [\"$name:$nport\"]" \
        "artifact:" "  allow_hosts: [\"$addr/32\"]"
    run "$tmp/cidr-allow.yaml" "$tmp/c9" "$tmp/named.json"
    has name_allowed_by_cidr "$tmp/out" "fetch 1: ok"
fi

# an HTTP status is the journal's business: never a verdict (nothing of it goes on-chain)
spec "$tmp/status.json" "$base/status/403" 2000000
run "$tmp/loop.yaml" "$tmp/c10" "$tmp/status.json"
has status_is_an_error "$tmp/out" "fetch 1: error EACCES: fetch: artifact: HTTP 403"
if grep -q rejected "$tmp/out"; then fail status_is_no_verdict "$(cat "$tmp/out")"; else ok status_is_no_verdict; fi

finish
