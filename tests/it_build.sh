#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_build.sh OCRA OCRA_AGENT [IT_BUILD]: `ocra build` end to end against real services on 127.0.0.1: a
# private dockerd (tests/lib/dockerd.sh) with the cached base image, the offline package
# index (tests/lib/pyindex.sh), two docker-registry instances (tests/lib/registry.sh) and an
# artifact server (python3 -m http.server, allowed through spec.http_hosts).
#
# Checked: build -> push -> `docker pull repo@digest` -> `docker run --network none` shows the
# model file (its sha256) and `ocra-agent --version`, and the default command runs through the
# agent; tags <version> and evt-<short id> name the digest; the manifest's annotations carry
# the event; the same model image assembled again (fresh cache) and on a second registry (the
# toolchain copied byte for byte) has the identical digest; a second event (another block
# time) with only another artifact reports a toolchain cache hit, the engine builds nothing, the
# agent layer of the first build is reused and only the weight layer differs; an artifact sha256 or size mismatch is rejected with the reason and nothing is
# pushed; `ocra images` lists the records; `ocra verify` passes, and fails once the journal's
# record of an annotation differs. Exits 77 (skip) with the reason when it cannot run here.
# Stops everything it started, by PID.
set -u
ocra=${1:?usage: it_build.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
agent=${2:?usage: it_build.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
case $ocra in /*) ;; *) ocra="$PWD/$ocra" ;; esac
case $agent in /*) ;; *) agent="$PWD/$agent" ;; esac
step=${3:-}
case $step in /* | "") ;; *) step="$PWD/$step" ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib/dockerd.sh"
. "$here/lib/pyindex.sh"
. "$here/lib/registry.sh"
. "$here/lib/check.sh"
. "$here/lib/build_env.sh"

skip() {
    echo "it_build: skipped: $1"
    exit 77
}
t0=$SECONDS
[ "$(id -u)" -eq 0 ] || skip "not root (a private dockerd needs root)"
for t in python3 curl openssl; do
    command -v "$t" >/dev/null 2>&1 || skip "no $t"
done
registry_or_skip

tmp=$(mktemp -d /tmp/ocra-build.XXXXXX)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    artifacts_stop
    registry_stop_all
    pyindex_stop
    dockerd_stop
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export DOCKER_BUILDKIT=0

finish() {
    echo "($((SECONDS - t0)) s)"
    check_done
    exit $?
}

# --- services -----------------------------------------------------------------------------
dockerd_start "$tmp/engine"
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no private dockerd}"
[ "$rc" -eq 0 ] || { fail dockerd_start "the private dockerd did not start"; finish; }
base_image_ensure >/dev/null
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no base image}"
[ "$rc" -eq 0 ] || { fail base_image "could not make or import the base image"; finish; }
pyindex_start "$tmp/index" || { fail pyindex "the package index did not start"; finish; }
# registry 1 logs every request: the second event's requests are read there
OCRA_REGISTRY_ACCESS_LOG=1 registry_start "$tmp/reg1" || { fail registry "registry 1 did not start"; finish; }
r1=127.0.0.1:$REGISTRY_PORT
registry_start "$tmp/reg2" || { fail registry "registry 2 did not start"; finish; }
r2=127.0.0.1:$REGISTRY_PORT
mkdir -p "$tmp/art"
artifacts_start "$tmp/art" || { fail artifacts "the artifact server did not start"; finish; }
ok services

# --- inputs -------------------------------------------------------------------------------
head -c 3000000 /dev/urandom >"$tmp/art/w1.bin"
head -c 2000000 /dev/urandom >"$tmp/art/w2.bin"
sha1=$(sha256sum "$tmp/art/w1.bin" | cut -d' ' -f1)
sha2=$(sha256sum "$tmp/art/w2.bin" | cut -d' ' -f1)
(umask 077 && openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/key.pem" 2>/dev/null)
openssl ec -in "$tmp/key.pem" -pubout -out "$tmp/pub.pem" 2>/dev/null
build_config "$tmp/ocra.yaml" "$tmp/journal.db" "$agent"
# spec FILE VERSION ARTIFACT SHA SIZE: the default command lists the model directory
spec() {
    build_spec "$@" "[\"python3\", \"-c\", \"import os, ocra_smoke; print('model', sorted(os.listdir(os.environ['OCRA_MODEL_DIR'])), os.environ['OCRA_EVENT_ID'])\"]"
}
# event FILE BLOCK VERSION [TIMESTAMP_MS]
event() {
    cat >"$1" <<JSON
{"eventId": "evm:31337:0x$(printf '%064x' "$2"):0", "modelVersion": "$3",
 "timestamp": ${4:-1700000000000}, "chain": "evm", "chainId": 31337, "blockNumber": $2,
 "blockHash": "0x$(printf '%064x' "$2")", "txHash": "0x$(printf '%064x' $(($2 + 1000)))",
 "logIndex": 0, "signer": "0x00112233445566778899aabbccddeeff00112233",
 "ref": "0x5fbdb2315678afecb367f032d93f642f64180aa3"}
JSON
}
spec "$tmp/s1.json" 1.0.0 w1.bin "$sha1" 3000000
spec "$tmp/s2.json" 2.0.0 w2.bin "$sha2" 2000000
spec "$tmp/bad_sha.json" 3.0.0 w1.bin "$sha2" 3000000
spec "$tmp/bad_size.json" 4.0.0 w1.bin "$sha1" 2999999
event "$tmp/e1.json" 42 1.0.0
event "$tmp/e2.json" 43 2.0.0 1700000600000 # ten minutes later: another layer mtime
event "$tmp/e3.json" 44 3.0.0
event "$tmp/e4.json" 45 4.0.0
# sql STATEMENT: runs it on the journal (python3's sqlite3), rows as a|b lines
sql() {
    python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); rows = c.execute(sys.argv[2]).fetchall(); c.commit()
rows and print("\n".join("|".join(map(str, r)) for r in rows))' "$tmp/journal.db" "$1"
}
short() { python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest()[:12])' "$1"; }
evt1=evt-$(short "evm:31337:0x$(printf '%064x' 42):0")
build() { "$ocra" -c "$tmp/ocra.yaml" build "$@"; }
# manifest HOST REPO REF: the manifest's bytes on stdout
manifest() {
    curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$1/v2/$2/manifests/$3"
}

# --- build, push, pull, run ---------------------------------------------------------------
if expect build_first 0 build "$tmp/s1.json" --registry "$r1/ocra/bm" --event "$tmp/e1.json" \
    --sign-key "$tmp/key.pem" --cache "$tmp/cache1"; then
    ok build_first
else
    echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; tail -n 30 "$tmp/err"; finish
fi
cp "$tmp/out" "$tmp/build1.out"
d1=$(awk '$1 == "digest" { print $2 }' "$tmp/build1.out")
has toolchain_built "$tmp/build1.out" "(built)"
up1=$(awk '$1 == "uploaded" { print $2 }' "$tmp/build1.out")
[ "${up1:-0}" -gt 2000000 ] && ok first_build_counts_uploaded_bytes ||
    fail first_build_counts_uploaded_bytes "uploaded '$up1' (the weight layer alone is 3 MB)"
has tag_version_printed "$tmp/build1.out" "tag $r1/ocra/bm:1.0.0"
has tag_event_printed "$tmp/build1.out" "tag $r1/ocra/bm:$evt1"
has signed "$tmp/build1.out" "signature sha256:"
has fetch_verified "$tmp/err" "fetch: artifact: verified"
for t in 1.0.0 "$evt1"; do
    got=$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$r1/v2/ocra/bm/manifests/$t" | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
    if [ "$got" = "$d1" ]; then ok "tag_$t"; else fail "tag_$t" "names $got, want $d1"; fi
done

if docker pull "$r1/ocra/bm@$d1" >"$tmp/pull.log" 2>&1; then ok pull_by_digest; else
    fail pull_by_digest "$(tail -n 5 "$tmp/pull.log")"; finish; fi
img="$r1/ocra/bm@$d1"
got=$(docker run --rm --network none --entrypoint sha256sum "$img" /opt/ocra/model/w1.bin 2>&1 | cut -d' ' -f1)
if [ "$got" = "$sha1" ]; then ok run_model_file; else fail run_model_file "sha256sum printed: $got"; fi
got=$(docker run --rm --network none --entrypoint /opt/ocra/bin/ocra-agent "$img" --version 2>&1)
case $got in "ocra-agent "*) ok run_agent_version ;; *) fail run_agent_version "printed: $got" ;; esac
# Run by hand, without ocra's agent socket: the agent says so on stderr and runs the workload.
got=$(docker run --rm --network none "$img" 2>"$tmp/agent.err")
if [ "$got" = "model ['w1.bin'] evm:31337:0x$(printf '%064x' 42):0" ] &&
    grep -q "no daemon socket" "$tmp/agent.err"; then ok run_default_cmd_via_agent; else
    fail run_default_cmd_via_agent "printed: $got; stderr: $(cat "$tmp/agent.err")"; fi

manifest "$r1" ocra/bm "$d1" >"$tmp/m1.json"
python3 - "$tmp/m1.json" "$(printf '%064x' 1042)" >"$tmp/checks" 2>&1 <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); a = m.get("annotations", {})
want = {"io.ocra.event-id": "evm:31337:0x%064x:0" % 42, "io.ocra.chain": "evm:31337",
        "io.ocra.block": "42", "io.ocra.tx": "0x" + sys.argv[2],
        "io.ocra.signer": "0x00112233445566778899aabbccddeeff00112233",
        "org.opencontainers.image.version": "1.0.0", "org.opencontainers.image.revision": "0x" + sys.argv[2]}
bad = {k: (a.get(k), v) for k, v in want.items() if a.get(k) != v}
for k in ("io.ocra.spec-hash", "io.ocra.toolchain-hash", "org.opencontainers.image.created",
          "org.opencontainers.image.source", "org.opencontainers.image.base.name",
          "org.opencontainers.image.base.digest"):
    if not a.get(k): bad[k] = "missing"
print("ok annotations" if not bad else "FAIL annotations: %s" % bad)
mt = [l["mediaType"] for l in m["layers"]]
print("ok weight_layer_plain_tar" if mt[-2] == "application/vnd.oci.image.layer.v1.tar" else "FAIL weight_layer_plain_tar: %s" % mt)
print("ok agent_layer_gzip" if mt[-1].endswith("+gzip") else "FAIL agent_layer_gzip: %s" % mt)
PY
while IFS= read -r line; do
    case $line in "ok "*) ok "${line#ok }" ;; "FAIL "*) n=${line#FAIL }; fail "${n%%:*}" "${n#*: }" ;;
    *) fail checks "$line" ;; esac
done <"$tmp/checks"

# --- the same inputs, again and on a second registry: the same digest ---------------------
if expect build_again 0 build "$tmp/s1.json" --registry "$r1/ocra/bm" --event "$tmp/e1.json" \
    --cache "$tmp/cache2" --no-record; then
    d=$(awk '$1 == "digest" { print $2 }' "$tmp/out")
    if [ "$d" = "$d1" ]; then ok same_digest_rebuilt; else fail same_digest_rebuilt "$d != $d1"; fi
fi
# one step on its own, as the daemon runs them (tests/it_build.c): the model step of a fresh
# build whose layers the cache describes and the registry holds needs no artifact
if [ -n "$step" ]; then
    rm -f "$tmp/cache1/sha256/$sha1"
    if expect step_model_without_artifact 0 env OCRA_HTTP_HOST="127.0.0.1:$ARTIFACTS_PORT" OCRA_ALLOW_HOST=127.0.0.1 \
        "$step" model "http://$r1" ocra/bm "$tmp/s1.json" "$tmp/e1.json" "$tmp/cache1" "$agent"; then
        has step_model_same_digest "$tmp/out" "digest $d1"
        has step_model_uploads_nothing_the_registry_has "$tmp/out" "uploaded 0"
        if [ -e "$tmp/cache1/sha256/$sha1" ]; then fail step_model_no_fetch "the artifact was fetched"; else
            ok step_model_no_fetch; fi
    fi
    if expect step_fetch 0 env OCRA_HTTP_HOST="127.0.0.1:$ARTIFACTS_PORT" OCRA_ALLOW_HOST=127.0.0.1 \
        "$step" fetch "http://$r1" ocra/bm "$tmp/s1.json" "$tmp/e1.json" "$tmp/cache1" "$agent" &&
        [ "$(sha256sum <"$tmp/cache1/sha256/$sha1" | cut -d' ' -f1)" = "$sha1" ]; then
        ok step_fetch_refills_cache
    else
        fail step_fetch_refills_cache "no verified artifact in the cache"
    fi
fi

# on a terminal (script(1) gives it one): a self-updating line per transfer, bytes and rate
if command -v script >/dev/null 2>&1; then
    script -qfec "$ocra -c $tmp/ocra.yaml build $tmp/s1.json --registry $r1/ocra/bm \
        --event $tmp/e1.json --cache $tmp/cache4 --no-record" /dev/null >"$tmp/tty.out" 2>&1
    if grep -qaE $'\r  fetch +artifact .* / 2\.9 MiB  .*B/s' "$tmp/tty.out"; then ok tty_progress; else
        fail tty_progress "no progress line in: $(tr '\r' '\n' <"$tmp/tty.out" | head -c 600)"; fi
    has tty_digest "$tmp/tty.out" "digest $d1"
fi
if expect images_text 0 "$ocra" -c "$tmp/ocra.yaml" images; then
    has images_text_lists "$tmp/out" "$d1  $r1/ocra/bm"
fi
# the same cache again: the layers' descriptors are cached, nothing is written or uploaded
if expect build_cached 0 build "$tmp/s1.json" --registry "$r1/ocra/bm" --event "$tmp/e1.json" \
    --cache "$tmp/cache1" --no-record; then
    has cached_weight_layer_not_rewritten "$tmp/err" "weight layer: already in the registry"
    has cached_artifact_not_refetched "$tmp/err" "fetch: artifact: cache hit"
    has cached_same_digest "$tmp/out" "digest $d1"
    has cached_uploads_nothing "$tmp/out" "uploaded 0 bytes"
fi
tc=$(awk '$1 == "toolchain" { print $2 }' "$tmp/build1.out")
tc_tag=${tc#*/ocra/toolchain:}
tc_tag=${tc_tag%@*}
# the toolchain copied byte for byte (it is an input of the model image) to registry 2
python3 - "$r1" "$r2" "ocra/toolchain" "$tc_tag" <<'PY' || fail copy_toolchain "copy failed"
import json, sys, urllib.request as u
src, dst, repo, tag = sys.argv[1:]
acc = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
r = u.urlopen(u.Request("http://%s/v2/%s/manifests/%s" % (src, repo, tag), headers={"Accept": acc}))
body, mt = r.read(), r.headers["Content-Type"]
m = json.loads(body)
for d in [m["config"]] + m["layers"]:
    blob = u.urlopen("http://%s/v2/%s/blobs/%s" % (src, repo, d["digest"])).read()
    loc = u.urlopen(u.Request("http://%s/v2/%s/blobs/uploads/" % (dst, repo), method="POST")).headers["Location"]
    if loc.startswith("/"): loc = "http://" + dst + loc
    sep = "&" if "?" in loc else "?"
    u.urlopen(u.Request(loc + sep + "digest=" + d["digest"], data=blob, method="PUT",
                        headers={"Content-Type": "application/octet-stream"}))
u.urlopen(u.Request("http://%s/v2/%s/manifests/%s" % (dst, repo, tag), data=body, method="PUT",
                    headers={"Content-Type": mt}))
PY
if expect build_other_registry 0 build "$tmp/s1.json" --registry "$r2/ocra/bm" --event "$tmp/e1.json" \
    --cache "$tmp/cache3" --no-record; then
    d=$(awk '$1 == "digest" { print $2 }' "$tmp/out")
    if [ "$d" = "$d1" ]; then ok same_digest_other_registry; else fail same_digest_other_registry "$d != $d1"; fi
    has other_registry_toolchain_hit "$tmp/out" "(cache hit)"
fi

# an engine that has the toolchain image under the registry's name pushes it, builds nothing
# (eng/m: its toolchain repository, eng/toolchain, is not in registry 2 yet)
docker tag "$r1/ocra/toolchain:$tc_tag" "$r2/eng/toolchain:$tc_tag"
if expect build_toolchain_from_engine 0 build "$tmp/s1.json" --registry "$r2/eng/m" \
    --event "$tmp/e1.json" --cache "$tmp/cache3" --no-record; then
    has toolchain_pushed_from_engine "$tmp/out" "(pushed from the engine)"
    has toolchain_found_in_engine "$tmp/err" "toolchain: $r2/eng/toolchain:$tc_tag: found in the engine"
fi

# a registry with basic auth (htpasswd): anonymous is refused; with the Docker config the
# native pushes and the engine's push of the toolchain both carry the credentials
if command -v htpasswd >/dev/null 2>&1; then
    htpasswd -Bbc "$tmp/htpasswd" ocra s3cret-pw 2>/dev/null
    printf 'auth:\n  htpasswd:\n    realm: ocra-test\n    path: %s\n' "$tmp/htpasswd" >"$tmp/auth.yml"
    if registry_start "$tmp/reg3" "$tmp/auth.yml"; then
        r3=127.0.0.1:$REGISTRY_PORT
        mkdir -p "$tmp/dockercfg"
        printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$r3" "$(printf ocra:s3cret-pw | base64)" \
            >"$tmp/dockercfg/config.json"
        docker tag "$r1/ocra/toolchain:$tc_tag" "$r3/ocra/toolchain:$tc_tag"
        if expect auth_anonymous_refused 1 build "$tmp/s1.json" --registry "$r3/ocra/bm" \
            --event "$tmp/e1.json" --cache "$tmp/cache3" --no-record; then
            has auth_anonymous_reason "$tmp/err" "registry wants credentials"
        fi
        if expect build_basic_auth 0 env DOCKER_CONFIG="$tmp/dockercfg" "$ocra" -c "$tmp/ocra.yaml" \
            build "$tmp/s1.json" --registry "$r3/ocra/bm" --event "$tmp/e1.json" \
            --cache "$tmp/cache3" --no-record; then
            has auth_toolchain_pushed_by_engine "$tmp/out" "(pushed from the engine)"
            has auth_same_digest "$tmp/out" "digest $d1"
        fi
        # Docker credential helpers: the store for all registries (credsStore), then one
        # registry's own (credHelpers) ahead of the store; the helper gets the registry's
        # address on its input, as the docker CLI gives it.
        mkdir -p "$tmp/helpers" "$tmp/dockercfg2" "$tmp/dockercfg3"
        cat >"$tmp/helpers/docker-credential-ocratest" <<EOF
#!/bin/sh
[ "\$1" = get ] || exit 1
read -r server
echo "\$server" >>"$tmp/helper.asked"
[ "\$server" = "$r3" ] || { echo "credentials not found in native keychain"; exit 1; }
printf '{"ServerURL":"%s","Username":"ocra","Secret":"s3cret-pw"}\\n' "\$server"
EOF
        printf '#!/bin/sh\necho nothing here; exit 1\n' >"$tmp/helpers/docker-credential-empty"
        chmod +x "$tmp/helpers"/docker-credential-*
        printf '{"credsStore": "ocratest"}\n' >"$tmp/dockercfg2/config.json"
        printf '{"credsStore": "empty", "credHelpers": {"%s": "ocratest"}}\n' "$r3" >"$tmp/dockercfg3/config.json"
        for cfg in dockercfg2 dockercfg3; do
            : >"$tmp/helper.asked"
            if expect "build_cred_helper_$cfg" 0 env PATH="$tmp/helpers:$PATH" DOCKER_CONFIG="$tmp/$cfg" \
                "$ocra" -c "$tmp/ocra.yaml" build "$tmp/s1.json" --registry "$r3/ocra/bm" \
                --event "$tmp/e1.json" --cache "$tmp/cache3" --no-record; then
                has "cred_helper_${cfg}_same_digest" "$tmp/out" "digest $d1"
                grep -qx "$r3" "$tmp/helper.asked" && ok "cred_helper_${cfg}_asked_for_the_registry" ||
                    fail "cred_helper_${cfg}_asked_for_the_registry" "$(cat "$tmp/helper.asked")"
            fi
        done
        printf '{"credsStore": "absent"}\n' >"$tmp/dockercfg2/config.json"
        if expect cred_helper_missing 2 env DOCKER_CONFIG="$tmp/dockercfg2" "$ocra" -c "$tmp/ocra.yaml" \
            build "$tmp/s1.json" --registry "$r3/ocra/bm" --event "$tmp/e1.json" --cache "$tmp/cache3" \
            --no-record; then
            has cred_helper_missing_named "$tmp/err" "docker-credential-absent, which is not in PATH"
        fi
        if grep -qF s3cret-pw "$tmp/out" "$tmp/err"; then fail auth_password_not_printed "in the output"; else
            ok auth_password_not_printed; fi
    else
        fail registry "registry 3 (basic auth) did not start"
    fi
else
    echo "# htpasswd (apache2-utils) missing: the basic-auth registry is not checked"
fi

# --- a second event sharing the toolchain: cache hit, nothing built, only the weights differ
docker image ls -a -q --no-trunc | sort >"$tmp/images.before"
log0=$(wc -l <"$tmp/reg1/registry.log")
if expect build_second_event 0 build "$tmp/s2.json" --registry "$r1/ocra/bm" \
    --event "$tmp/e2.json" --sign-key "$tmp/key.pem" --cache "$tmp/cache1"; then
    cp "$tmp/out" "$tmp/build2.out"
    has second_event_toolchain_cache_hit "$tmp/build2.out" "(cache hit)"
    has second_event_cache_hit_reported "$tmp/err" "toolchain: $r1/ocra/toolchain:$tc_tag: cache hit"
    # the agent layer does not depend on the event: the one of the first build is used
    has second_event_agent_layer_reused "$tmp/err" "agent layer: already in the registry"
    # its manifest names a new layer: no tag can name it yet, the tags are put without a HEAD
    heads=$(tail -n +$((log0 + 1)) "$tmp/reg1/registry.log" |
        grep -cE '"HEAD /v2/ocra/bm/manifests/(2\.0\.0|evt-)' || true)
    if [ "$heads" -eq 0 ]; then ok second_event_tags_put_without_head; else
        fail second_event_tags_put_without_head "$heads HEAD requests for its tags"; fi
    docker image ls -a -q --no-trunc | sort >"$tmp/images.after"
    if cmp -s "$tmp/images.before" "$tmp/images.after"; then ok engine_built_nothing; else
        fail engine_built_nothing "the engine's images changed: $(diff "$tmp/images.before" "$tmp/images.after" | head -5)"; fi
    d2=$(awk '$1 == "digest" { print $2 }' "$tmp/build2.out")
    manifest "$r1" ocra/bm "$d2" >"$tmp/m2.json"
    python3 - "$tmp/m1.json" "$tmp/m2.json" >"$tmp/checks" 2>&1 <<'PY'
import json, sys
a, b = (json.load(open(p))["layers"] for p in sys.argv[1:])
diff = [i for i in range(max(len(a), len(b))) if i >= len(a) or i >= len(b) or a[i] != b[i]]
print("ok only_weight_layer_differs" if len(a) == len(b) and diff == [len(a) - 2]
      else "FAIL only_weight_layer_differs: layers that differ: %s of %d" % (diff, len(a)))
PY
    while IFS= read -r line; do
        case $line in "ok "*) ok "${line#ok }" ;; "FAIL "*) n=${line#FAIL }; fail "${n%%:*}" "${n#*: }" ;;
        *) fail checks "$line" ;; esac
    done <"$tmp/checks"
fi

# --- artifact mismatches: rejected with the reason, nothing pushed -----------------------
for c in "bad_sha e3 3.0.0 artifact sha256 mismatch: want $sha2 got $sha1" \
    "bad_size e4 4.0.0 artifact size mismatch: want 2999999 bytes"; do
    read -r name ev ver reason <<<"$c"
    if expect "$name" 2 build "$tmp/$name.json" --registry "$r1/ocra/bm" --event "$tmp/$ev.json" \
        --cache "$tmp/cache1"; then
        has "${name}_reason" "$tmp/err" "$reason"
        code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
            "http://$r1/v2/ocra/bm/manifests/$ver")
        if [ "$code" = 404 ]; then ok "${name}_nothing_pushed"; else fail "${name}_nothing_pushed" "tag $ver: HTTP $code"; fi
    fi
done
if ls "$tmp/cache1/sha256/" | grep -q tmp; then fail mismatch_no_temp_left "$(ls -a "$tmp/cache1/sha256")"; else ok mismatch_no_temp_left; fi

# --- a spec without an artifact: an image with the agent layer only ------------------------
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); del d["artifact"]; d["modelVersion"] = "5.0.0"; json.dump(d, open(sys.argv[2], "w"))' \
    "$tmp/s1.json" "$tmp/noart.json"
if expect build_without_artifact 0 build "$tmp/noart.json" --registry "$r1/ocra/bm" \
    --cache "$tmp/cache1" --no-record; then
    d=$(awk '$1 == "digest" { print $2 }' "$tmp/out")
    got=$(manifest "$r1" ocra/bm "$d" | python3 -c 'import json, sys; m = json.load(sys.stdin); print(len(m["layers"]) - len(json.load(open(sys.argv[1]))["layers"]), m["annotations"]["io.ocra.event-id"][:6])' "$tmp/m1.json")
    if [ "$got" = "-1 local:" ]; then ok without_artifact_agent_only_local_event; else
        fail without_artifact_agent_only_local_event "layers vs the first image, event: $got"; fi
fi

# --- the journal: images, verify ------------------------------------------------------------
if expect images 0 "$ocra" -c "$tmp/ocra.yaml" images --json; then
    python3 - "$tmp/out" "$d1" "${d2:-none}" >"$tmp/checks" 2>&1 <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))
ids = [r["imageId"] for r in recs]
print("ok images_lists_both" if ids == sys.argv[2:4] else "FAIL images_lists_both: %s" % ids)
r = recs[0]
good = r["digest"] == sys.argv[2] and r["signature"] and r["aiModelVersion"] == "1.0.0" and r["toolchain"]["built"]
print("ok image_record" if good else "FAIL image_record: %s" % r)
PY
    while IFS= read -r line; do
        case $line in "ok "*) ok "${line#ok }" ;; "FAIL "*) n=${line#FAIL }; fail "${n%%:*}" "${n#*: }" ;;
        *) fail checks "$line" ;; esac
    done <"$tmp/checks"
fi
n=$(sql "SELECT count(*) FROM images WHERE build_log LIKE '%Step%'")
if [ "$n" = 1 ]; then ok build_log_kept; else fail build_log_kept "$n rows with a build log"; fi

if expect verify_ok 0 "$ocra" -c "$tmp/ocra.yaml" verify "$r1/ocra/bm@$d1" --key "$tmp/pub.pem"; then
    has verify_uses_journal "$tmp/out" "annotations match the journal's record"
fi
sql "UPDATE images SET record = json_set(record, '\$.annotations.\"io.ocra.block\"', '99') WHERE digest = '$d1'"
if expect verify_journal_differs 2 "$ocra" -c "$tmp/ocra.yaml" verify "$r1/ocra/bm:1.0.0" --key "$tmp/pub.pem"; then
    has verify_names_annotation "$tmp/err" "io.ocra.block"
fi

# --- --event-id: the journal's event gives the provenance, and the record links to it -------
sql "INSERT INTO events (id, source, chain, block_number, tx_hash,
    op_index, signer, trusted, path, status, observed_ms, created_ms, updated_ms) VALUES
    ('ain:0:0xfeed:0', 'ain:0', 'ain:0', 77, '0xfeed', 0, '0xabc', 1, '/apps/a/models/bm',
    'accepted', 1700000000000, 0, 0)"
if expect build_event_id 0 build "$tmp/s1.json" --registry "$r1/ocra/bm" \
    --event-id ain:0:0xfeed:0 --cache "$tmp/cache1"; then
    d=$(awk '$1 == "digest" { print $2 }' "$tmp/out")
    manifest "$r1" ocra/bm "$d" >"$tmp/m3.json"
    got=$(python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["annotations"]; print(a["io.ocra.chain"], a["io.ocra.block"], a["io.ocra.tx"], a["io.ocra.signer"], a["org.opencontainers.image.source"])' "$tmp/m3.json")
    if [ "$got" = "ain:0 77 0xfeed 0xabc ain:0/apps/a/models/bm" ]; then ok event_id_provenance; else
        fail event_id_provenance "annotations: $got"; fi
    n=$(sql "SELECT count(*) FROM images WHERE digest = '$d' AND event_id = 'ain:0:0xfeed:0'")
    if [ "$n" = 1 ]; then ok record_links_journal_event; else fail record_links_journal_event "$n rows"; fi
fi

finish
