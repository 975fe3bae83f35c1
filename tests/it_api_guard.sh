#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_api_guard.sh OCRA: what keeps hostile clients from reading or starving the HTTP API, with
# real clients against `ocra serve` and against `ocra daemon`'s API:
#   1. the Host header: a name that is not this server's (DNS rebinding) gets 421 on every
#      path; loopback names, the listen address and api.allowed_hosts are answered; on a
#      wildcard bind any IP literal is;
#   2. 70 clients trickling a request's headers a byte a second (tests/lib/slowloris.py), all
#      from one address (127.0.0.2): they are held to api.connections_per_client and /healthz
#      (from 127.0.0.1) answers;
#   3. 70 such clients from 70 addresses (127.0.1.1-70): /healthz answers, and each trickling
#      connection is closed once it has gone 10 s without a whole request;
#   and the thousands of refused and cut connections leave a few lines in the log.
# The waits are bounds against a hang, not timing checks.
set -u
ocra=${1:?usage: it_api_guard.sh PATH_TO_OCRA}
ocra=$(cd "$(dirname "$ocra")" && pwd)/$(basename "$ocra")
cd "$(dirname "$0")/.."
. tests/lib/check.sh
. tests/lib/port.sh
command -v python3 >/dev/null || { echo "python3 is needed"; exit 77; }
command -v curl >/dev/null || { echo "curl is needed"; exit 77; }
python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.1.70", 0))' 2>/dev/null ||
    { echo "cannot bind 127.0.1.70 (loopback beyond 127.0.0.1): the per-address checks need it"; exit 77; }

tmp=$(mktemp -d)
pid= loris=
stop() { # stop PIDVAR: ends the process by its id
    local p=${!1}
    [ -n "$p" ] && { kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
    eval "$1="
}
cleanup() {
    stop loris
    stop pid
    rm -rf "$tmp"
}
trap cleanup EXIT

"$ocra" events --journal "$tmp/j.db" >/dev/null || { echo "cannot create a journal"; exit 1; }
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
printf '%s\n' "$token" >"$tmp/token"
chmod 600 "$tmp/token"

# start_serve LISTEN ARGS...: ocra serve in the background on a free port; sets $pid and $port.
start_serve() {
    local listen=$1 i
    shift
    for _ in 1 2 3; do
        port=$(free_port) || return 1
        "$ocra" -c "$tmp/ocra.yaml" serve --journal "$tmp/j.db" --listen "$listen:$port" "$@" \
            >"$tmp/serve.out" 2>"$tmp/serve.err" &
        pid=$!
        for i in $(seq 100); do
            grep -q "serving the journal" "$tmp/serve.out" && return 0
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        stop pid
    done
    echo "ocra serve did not start: $(cat "$tmp/serve.err")"
    return 1
}

# code HOST PATH [CURL ARGS...]: the status of GET PATH with that Host header, to 127.0.0.1.
code() {
    local host=$1 path=$2
    shift 2
    curl -s -o "$tmp/body" -w '%{http_code}' --max-time 20 -H "Host: $host" "$@" \
        "http://127.0.0.1:$port$path"
}

# 1. The Host header.
printf 'api:\n  allowed_hosts: [ocra.internal]\n' >"$tmp/ocra.yaml"
start_serve 127.0.0.1 || exit 1
got=""
for h in "evil.example" "evil.example:$port" "10.0.0.1:$port" "127.0.0.1.evil.example" "[::2]:$port" \
    "localhost@evil.example" "ocra.internal:$port:1"; do
    got="$got $(code "$h" /healthz)"
done
[ "$got" = " 421 421 421 421 421 421 421" ] && ok wrong_host_421 || fail wrong_host_421 "$got"
code evil.example /api/v1/events >/dev/null
grep -q '"code":"misdirected"' "$tmp/body" && grep -q 'api.allowed_hosts' "$tmp/body" &&
    ok wrong_host_says_why || fail wrong_host_says_why "$(cat "$tmp/body")"
got=""
for h in "127.0.0.1:$port" "localhost:$port" "LOCALHOST" "localhost." "app.localhost:$port" \
    "127.0.0.2" "[::1]:$port" "ocra.internal" "OCRA.internal:$port"; do
    got="$got $(code "$h" /api/v1/events)"
done
[ "$got" = " 200 200 200 200 200 200 200 200 200" ] && ok right_host_200 || fail right_host_200 "$got"
[ "$(curl -s -o /dev/null -w '%{http_code}' --http1.0 -H 'Host:' "http://127.0.0.1:$port/healthz")" = 200 ] &&
    ok no_host_http10_200 || fail no_host_http10_200 "HTTP/1.0 without Host refused"
stop pid
printf 'api:\n  allowed_hosts: ["bad:80"]\n' >"$tmp/bad.yaml"
"$ocra" -c "$tmp/bad.yaml" serve --journal "$tmp/j.db" --listen 127.0.0.1:0 >"$tmp/bad.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "api.allowed_hosts" "$tmp/bad.out" && ok allowed_hosts_checked ||
    fail allowed_hosts_checked "rc=$rc $(cat "$tmp/bad.out")"
# A wildcard bind: any address of the machine is the listen address, names are still checked.
start_serve 0.0.0.0 --token-file "$tmp/token" || exit 1
a=$(code "192.0.2.7:$port" /healthz) b=$(code "192.0.2.7:$port" /metrics -H "Authorization: Bearer $token")
c=$(code "evil.example:$port" /healthz) d=$(code "evil.example:$port" /metrics -H "Authorization: Bearer $token")
[ "$a $b $c $d" = "200 200 421 421" ] && ok wildcard_bind_hosts || fail wildcard_bind_hosts "$a $b $c $d"
stop pid

# loris N [--sources PREFIX]: slowloris.py in the background against $port; status in $tmp/loris.
loris() {
    rm -f "$tmp/loris"
    python3 tests/lib/slowloris.py 127.0.0.1 "$port" "$@" >"$tmp/loris.log" 2>&1 &
    loris=$!
}
# loris_has KEY MIN: the status file says KEY >= MIN.
loris_has() {
    local v
    v=$(sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" "$tmp/loris" 2>/dev/null)
    [ -n "$v" ] && [ "$v" -ge "$2" ]
}
# healthz: /healthz answers 200 (three tries of up to 20 s: a bound, not a timing check).
healthz() {
    for _ in 1 2 3; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "http://127.0.0.1:$port/healthz")" = 200 ] &&
            return 0
    done
    return 1
}
# healthz_while_held: /healthz answers while every trickling client still holds its connection
# (none has been cut yet to make room for it).
healthz_while_held() {
    healthz && sleep 0.6 && ! loris_has cut 1
}

# 2 and 3 against the daemon's API (its workers running on the same journal).
port=$(free_port) || exit 1
cat >"$tmp/ocra.yaml" <<EOF
journal:
  path: $tmp/j.db
api:
  listen: 127.0.0.1:$port
daemon:
  report: false
agent:
  socket_dir: ""
EOF
"$ocra" -c "$tmp/ocra.yaml" daemon >"$tmp/daemon.out" 2>"$tmp/daemon.err" &
pid=$!
wait_until "the daemon's API" curl -sf --max-time 5 "http://127.0.0.1:$port/healthz" ||
    { fail daemon_api_up "$(tail -5 "$tmp/daemon.err")"; check_done; exit 1; }
[ "$(code evil.example /healthz)" = 421 ] && [ "$(code "localhost:$port" /healthz)" = 200 ] &&
    ok daemon_api_checks_host || fail daemon_api_checks_host "$(cat "$tmp/body")"

loris 70 "$tmp/loris" --source 127.0.0.2
wait_until "70 trickling clients from one address" loris_has connects 70
healthz_while_held && ok healthz_beside_one_address_trickling || fail healthz_beside_one_address_trickling \
    "/healthz did not answer: $(cat "$tmp/loris" 2>/dev/null)"
loris_has refused 1 && ok one_address_held_to_its_limit ||
    fail one_address_held_to_its_limit "$(cat "$tmp/loris" 2>/dev/null)"
stop loris

loris 70 "$tmp/loris" --sources 127.0.1.
wait_until "70 trickling clients from 70 addresses" loris_has connects 70
healthz_while_held && ok healthz_beside_70_addresses_trickling || fail healthz_beside_70_addresses_trickling \
    "/healthz did not answer: $(cat "$tmp/loris" 2>/dev/null)"
wait_until "the trickling connections cut" loris_has cut 70 && ok slow_requests_cut ||
    fail slow_requests_cut "$(cat "$tmp/loris" 2>/dev/null)"
healthz && ok healthz_after_the_cuts || fail healthz_after_the_cuts "no answer"
stop loris
grep -q "sent no whole request within 10 s" "$tmp/daemon.err" && ok slow_clients_logged ||
    fail slow_clients_logged "$(grep api "$tmp/daemon.err" | tail -3)"
# thousands of refused and cut connections, a few lines in the log
n=$(grep -c "api: " "$tmp/daemon.err")
[ "$n" -le 40 ] && ok log_not_flooded || fail log_not_flooded "$n lines: $(grep "api: " "$tmp/daemon.err" | cut -c26- | sort | uniq -c | sort -rn | head -3)"
stop pid

check_done
