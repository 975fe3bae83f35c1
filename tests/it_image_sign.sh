#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_image_sign.sh IT_IMAGE_SIGN OCRA: starts a real docker-registry on 127.0.0.1
# (tests/lib/registry.sh), makes two ECDSA P-256 key pairs with the openssl CLI (one as
# "EC PRIVATE KEY", one PKCS#8), runs the signing test binary, checks one signature it made
# with `openssl dgst -verify` (an implementation independent of ocra's), then `ocra sign` and
# `ocra verify` and their exit statuses. Stops the registry by PID on exit. 77 (skip) without
# docker-registry, openssl, python3 or curl.
set -u
bin=${1:?usage: it_image_sign.sh PATH_TO_IT_IMAGE_SIGN PATH_TO_OCRA}
ocra=${2:?usage: it_image_sign.sh PATH_TO_IT_IMAGE_SIGN PATH_TO_OCRA}
. "$(dirname "$0")/lib/registry.sh"
registry_or_skip
for t in openssl python3 curl; do
    command -v "$t" >/dev/null 2>&1 || { echo "skip: $t is not installed" >&2; exit 77; }
done
tmp=$(mktemp -d /tmp/it-image-sign.XXXXXX)
cleanup() {
    registry_stop_all
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL $*" >&2
    failed=1
}
failed=0

registry_start "$tmp/reg" || exit 1
host=127.0.0.1:$REGISTRY_PORT
(umask 077
 openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/k1.pem" 2>/dev/null
 openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/k2.pem" 2>/dev/null)
openssl ec -in "$tmp/k1.pem" -pubout -out "$tmp/p1.pem" 2>/dev/null
openssl pkey -in "$tmp/k2.pem" -pubout -out "$tmp/p2.pem" 2>/dev/null

OCRA_IT_TMP=$tmp OCRA_REG_URL=$REGISTRY_URL OCRA_REG_DATA=$tmp/reg/data \
    OCRA_SIGN_KEY=$tmp/k1.pem OCRA_SIGN_PUB=$tmp/p1.pem \
    OCRA_SIGN_KEY2=$tmp/k2.pem OCRA_SIGN_PUB2=$tmp/p2.pem "$bin"
status=$?
[ "$status" -eq 0 ] || { tail -n 20 "$tmp/reg/registry.log" >&2; exit "$status"; }

# openssl checks the signature of the payload that ocra pushed, and the payload's claims
digest=$(cat "$tmp/signed.digest")
curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$REGISTRY_URL/v2/ocra/signed/manifests/sha256-${digest#sha256:}.sig" >"$tmp/sig.json" ||
    fail "GET signature manifest"
python3 - "$tmp" <<'PY' || fail "signature manifest layout"
import json, sys, base64
d = sys.argv[1]
m = json.load(open(d + "/sig.json"))
assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json", m
(l,) = m["layers"]
assert l["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json", l
open(d + "/sig.der", "wb").write(base64.b64decode(l["annotations"]["dev.cosignproject.cosign/signature"]))
open(d + "/payload.digest", "w").write(l["digest"])
PY
curl -sf "$REGISTRY_URL/v2/ocra/signed/blobs/$(cat "$tmp/payload.digest")" >"$tmp/payload.json" ||
    fail "GET payload"
openssl dgst -sha256 -verify "$tmp/p1.pem" -signature "$tmp/sig.der" "$tmp/payload.json" \
    >/dev/null || fail "openssl dgst -verify of ocra's signature"
python3 - "$tmp/payload.json" "$host/ocra/signed" "$digest" <<'PY' || fail "payload claims"
import json, sys
p = json.load(open(sys.argv[1]))
c = p["critical"]
assert c["type"] == "cosign container image signature", p
assert c["identity"]["docker-reference"] == sys.argv[2], p
assert c["image"]["docker-manifest-digest"] == sys.argv[3], p
assert "optional" in p, p
PY

# the CLI: 0 verified, 1 cannot read, 2 verification failed or usage
expect() {
    local want=$1
    shift
    "$ocra" "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    [ "$got" -eq "$want" ] || fail "ocra $* -> $got, want $want: $(cat "$tmp/err")"
}
expect 0 verify "$host/ocra/signed@$digest" --key "$tmp/p1.pem" \
    --annotation io.ocra.event-id=ain:0:0xabc:0
grep -q "^verified ocra/signed@$digest" "$tmp/out" || fail "verify output: $(cat "$tmp/out")"
expect 0 verify "$host/ocra/signed:1.2.0" --key "$tmp/p1.pem"
expect 2 verify "$host/ocra/signed@$digest" --key "$tmp/p1.pem" \
    --annotation io.ocra.event-id=ain:0:0xdef:0
grep -q "verification failed" "$tmp/err" || fail "no reason: $(cat "$tmp/err")"
expect 2 verify "$host/ocra/signed@$digest" --key "$tmp/p2.pem"
expect 2 verify "$host/ocra/unsigned:1" --key "$tmp/p1.pem"
expect 2 verify "$host/ocra/signed" --key "$tmp/p1.pem" # neither tag nor digest
expect 2 verify "$host/ocra/signed:1.2.0"               # no key
expect 1 verify "127.0.0.1:1/ocra/signed:1.2.0" --key "$tmp/p1.pem"
# ocra sign, then verify; a group-readable private key is refused
expect 0 sign "$host/ocra/unsigned:1" --key "$tmp/k2.pem" --annotation by=it_image_sign
expect 0 verify "ocra/unsigned:1" --registry "$REGISTRY_URL" --key "$tmp/p2.pem"
expect 2 verify "$host/ocra/unsigned:1" --key "$tmp/p1.pem"
chmod 640 "$tmp/k1.pem"
expect 2 sign "$host/ocra/unsigned:1" --key "$tmp/k1.pem"
grep -q "group or others" "$tmp/err" || fail "group-readable key: $(cat "$tmp/err")"

[ "$failed" -eq 0 ] || exit 1
echo "ok openssl cross-check and ocra sign/verify"
exit 0
