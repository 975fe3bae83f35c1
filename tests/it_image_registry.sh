#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_image_registry.sh IT_IMAGE_REGISTRY: starts real docker-registry instances on 127.0.0.1
# (anonymous; the same behind the fault proxy tests/lib/regproxy.py; htpasswd basic auth;
# token auth with tests/lib/token_server.py and a throwaway RSA key made with openssl), runs
# the test binary against them and stops everything by PID on exit. Exits with the test's
# status; 77 (skip) without docker-registry, htpasswd, openssl or python3.
set -u
bin=${1:?usage: it_image_registry.sh PATH_TO_IT_IMAGE_REGISTRY}
. "$(dirname "$0")/lib/registry.sh"
registry_or_skip
for t in htpasswd openssl python3 curl; do
    command -v "$t" >/dev/null 2>&1 || { echo "skip: $t is not installed" >&2; exit 77; }
done
lib=$(cd "$(dirname "$0")/lib" && pwd)
tmp=$(mktemp -d /tmp/it-image-reg.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    registry_stop_all
    rm -rf "$tmp"
}
trap cleanup EXIT

wait_file() {
    for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.05; done
    echo "$1 never appeared" >&2
    return 1
}

# anonymous, and the fault proxy in front of it
registry_start "$tmp/anon" || exit 1
export OCRA_REG_URL=$REGISTRY_URL
python3 "$lib/regproxy.py" 0 "$REGISTRY_PORT" "$tmp/proxy.port" 2>"$tmp/proxy.log" &
pids+=($!)
wait_file "$tmp/proxy.port" || exit 1
export OCRA_REG_PROXY_URL=http://127.0.0.1:$(cat "$tmp/proxy.port")

# basic auth: a bcrypt htpasswd file
htpasswd -Bbc "$tmp/htpasswd" ocra s3cret-pw 2>/dev/null
cat >"$tmp/basic.yml" <<EOF
auth:
  htpasswd:
    realm: ocra-test
    path: $tmp/htpasswd
EOF
registry_start "$tmp/basic" "$tmp/basic.yml" || exit 1
export OCRA_REG_BASIC_URL=$REGISTRY_URL

# token auth: an RSA key, its self-signed certificate as the registry's root bundle
openssl genrsa -out "$tmp/token.key" 2048 2>/dev/null
openssl req -x509 -new -key "$tmp/token.key" -subj /CN=ocra-test-token -days 2 \
    -out "$tmp/token.crt" 2>/dev/null
openssl rsa -in "$tmp/token.key" -noout -text >"$tmp/token.txt" 2>/dev/null
openssl rsa -in "$tmp/token.key" -pubout -outform DER -out "$tmp/token.pub.der" 2>/dev/null
python3 "$lib/token_server.py" "$tmp/token.txt" "$tmp/token.pub.der" ocra:s3cret-pw \
    ocra-test-registry ocra-test-issuer "$tmp/token.port" 2>"$tmp/token.log" &
pids+=($!)
wait_file "$tmp/token.port" || exit 1
cat >"$tmp/token.yml" <<EOF
auth:
  token:
    realm: http://127.0.0.1:$(cat "$tmp/token.port")/token
    service: ocra-test-registry
    issuer: ocra-test-issuer
    rootcertbundle: $tmp/token.crt
EOF
registry_start "$tmp/token" "$tmp/token.yml" || exit 1
export OCRA_REG_TOKEN_URL=$REGISTRY_URL

OCRA_IT_TMP=$tmp "$bin"
status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
    for f in anon/registry.log basic/registry.log token/registry.log proxy.log token.log; do
        echo "--- $f (last 20 lines)" >&2
        tail -n 20 "$tmp/$f" >&2
    done
fi
exit "$status"
