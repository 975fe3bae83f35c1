#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# weight_update.sh OCRA OCRA_AGENT [SIZE_MIB...]: a weight-only model update on one registry,
# ocra against `docker build` + `docker push` and against the floor (docs/BENCHMARKS.md).
#
# Starts, on 127.0.0.1 and stopped by PID: a private dockerd (tests/lib/dockerd.sh) with the
# cached base image, the offline package index, one docker-registry and an artifact server
# (python3 -m http.server). Builds the toolchain once (untimed). Then for each size (default
# 256 and 1024 MiB) of a random artifact, on the same registry and repository, times:
#   ocra fetch+build  `ocra build` from the artifact URI: fetch over loopback http with sha256
#                     and size check, weight layer, upload, agent layer, config, manifest, tags
#   ocra build        the same for a new event with the artifact already verified in the cache
#                     (what the build stage does after the fetch stage): plain tar weight layer
#   ocra build gzip   the same with build.weight_gzip: true
#   docker            `docker build` (FROM the toolchain image, COPY the artifact) + `docker push`
#   floor             `sha256sum` of the file + one monolithic blob upload of it with curl
# and "cache hit -> tags": from the toolchain cache hit to the last tag, in the ocra build run,
# "upload -> tags": from the weight layer uploaded to the last tag (agent layer, config,
# manifest, tags), "upload": the weight layer's own upload in that run (from the step line just
# before `weight layer: uploaded`: the artifact opened for it, or, when the layer goes through a
# file, `weight layer: written`) and "beyond": cache hit -> tags less that upload, what the
# update costs beyond the weights' upload (the goal is under 0.1 s).
# With OCRA_BEFORE=PATH (another ocra binary: the one before a change), the "ocra build" run is
# also timed with it, for another event, in the same invocation, and a second table compares.
# Ratios are against the baselines of the same invocation. Needs root, docker.io,
# docker-registry, debootstrap (or the cached base image), python3, curl.
set -euo pipefail
ocra=$(realpath "${1:?usage: weight_update.sh OCRA OCRA_AGENT [SIZE_MIB...]}")
agent=$(realpath "${2:?usage: weight_update.sh OCRA OCRA_AGENT [SIZE_MIB...]}")
shift 2
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(256 1024)
cd "$(dirname "$0")/.."
. tests/lib/dockerd.sh
. tests/lib/pyindex.sh
. tests/lib/registry.sh
. tests/lib/build_env.sh
export DOCKER_BUILDKIT=0

tmp=$(mktemp -d /tmp/ocra-bwu.XXXXXX)
before_rows=()
cleanup() {
    set +e
    artifacts_stop
    registry_stop_all
    pyindex_stop
    dockerd_stop
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

dockerd_start "$tmp/engine" || { echo "weight_update: no private dockerd: ${OCRA_SKIP_REASON:-}" >&2; exit 1; }
base_image_ensure >/dev/null
pyindex_start "$tmp/index"
registry_start "$tmp/reg"
r=127.0.0.1:$REGISTRY_PORT
mkdir -p "$tmp/art"
artifacts_start "$tmp/art"

build_config "$tmp/tar.yaml" "$tmp/journal.db" "$agent" false
build_config "$tmp/gzip.yaml" "$tmp/journal.db" "$agent" true
spec() { build_spec "$@"; }
event() { # FILE BLOCK VERSION
    cat >"$1" <<JSON
{"eventId": "evm:31337:0x$(printf '%064x' "$2"):0", "modelVersion": "$3",
 "timestamp": $((1700000000000 + $2 * 1000)), "chain": "evm", "chainId": 31337,
 "blockNumber": $2, "txHash": "0x$(printf '%064x' "$2")", "logIndex": 0}
JSON
}
# ocra_run NAME CONFIG SPEC EVENT CACHE [OCRA]: times one `ocra build`; its stderr in
# $tmp/NAME.err
ocra_run() {
    local t
    t=$(now)
    "${6:-$ocra}" -c "$2" build "$3" --registry "$r/ocra/bm" --event "$4" --cache "$5" \
        --no-record >"$tmp/$1.out" 2>"$tmp/$1.err"
    secs "$t" "$(now)"
}
# from the toolchain cache hit to the last tag, from the elapsed times on ocra's lines
hit_to_tags() {
    awk '/toolchain: .*cache hit/ { h = $1 + 0 } / tag: / { t = $1 + 0 } END { printf "%.2f", t - h }' "$1"
}
# from the weight layer uploaded to the last tag
upload_to_tags() {
    awk '/weight layer: uploaded/ { u = $1 + 0 } / tag: / { t = $1 + 0 } END { printf "%.2f", t - u }' "$1"
}
# the weight layer's upload: from the step line before `weight layer: uploaded` to that line
upload_span() {
    awk '/weight layer: uploaded/ { s = $1 - p } { p = $1 + 0 } END { printf "%.2f", s }' "$1"
}
# cache hit -> tags less the weight layer's upload
beyond() {
    awk -v a="$(hit_to_tags "$1")" -v b="$(upload_span "$1")" 'BEGIN { printf "%.2f", a - b }'
}
before=${OCRA_BEFORE:+$(realpath "$OCRA_BEFORE")}

# the toolchain, once (untimed)
head -c 1024 /dev/urandom >"$tmp/art/seed.bin"
spec "$tmp/seed.json" 0.1 seed.bin "$(sha256sum "$tmp/art/seed.bin" | cut -d' ' -f1)" 1024
event "$tmp/seed-ev.json" 1 0.1
ocra_run seed "$tmp/tar.yaml" "$tmp/seed.json" "$tmp/seed-ev.json" "$tmp/cache-seed" >/dev/null
tc=$(awk '$1 == "toolchain" { print $2 }' "$tmp/seed.out")
tc=${tc%@*}

printf '%-6s %9s %9s %9s %9s %9s %9s %9s %9s %9s   %-s\n' MiB "ocra+f" ocra "ocra-gz" docker floor \
    "hit→tags" "upl→tags" upload beyond "docker/ocra  ocra/floor  ocra+f/floor  gz/tar"
for mib in "${sizes[@]}"; do
    f=w$mib.bin
    head -c $((mib << 20)) /dev/urandom >"$tmp/art/$f"
    sha=$(sha256sum "$tmp/art/$f" | cut -d' ' -f1)
    size=$((mib << 20))
    cache="$tmp/cache-$mib"
    spec "$tmp/s1.json" "$mib.1" "$f" "$sha" "$size"
    spec "$tmp/s2.json" "$mib.2" "$f" "$sha" "$size"
    spec "$tmp/s3.json" "$mib.3" "$f" "$sha" "$size"
    spec "$tmp/s4.json" "$mib.4" "$f" "$sha" "$size"
    event "$tmp/e1.json" $((mib * 10 + 1)) "$mib.1"
    event "$tmp/e2.json" $((mib * 10 + 2)) "$mib.2"
    event "$tmp/e3.json" $((mib * 10 + 3)) "$mib.3"
    event "$tmp/e4.json" $((mib * 10 + 4)) "$mib.4"
    sync
    t_full=$(ocra_run full "$tmp/tar.yaml" "$tmp/s1.json" "$tmp/e1.json" "$cache")
    t_ocra=$(ocra_run tar "$tmp/tar.yaml" "$tmp/s2.json" "$tmp/e2.json" "$cache")
    hit=$(hit_to_tags "$tmp/tar.err")
    upl=$(upload_to_tags "$tmp/tar.err")
    span=$(upload_span "$tmp/tar.err")
    past=$(beyond "$tmp/tar.err")
    if [ -n "$before" ]; then # its own cache: its layer descriptors are its own
        cp -l "$cache/sha256/$sha" "$tmp/before-$sha" 2>/dev/null || cp "$cache/sha256/$sha" "$tmp/before-$sha"
        mkdir -p "$tmp/cache-before-$mib/sha256"
        mv "$tmp/before-$sha" "$tmp/cache-before-$mib/sha256/$sha"
        t_before=$(ocra_run before "$tmp/tar.yaml" "$tmp/s4.json" "$tmp/e4.json" \
            "$tmp/cache-before-$mib" "$before")
        before_rows+=("$(printf '%-6s %9s %9s %9s %9s %9s' "$mib" "$t_before" \
            "$(hit_to_tags "$tmp/before.err")" "$(upload_to_tags "$tmp/before.err")" \
            "$(upload_span "$tmp/before.err")" "$(beyond "$tmp/before.err")")")
        sed "s/^/    [$mib MiB, before] /" "$tmp/before.err" >>"$tmp/breakdown-before"
        rm -rf "$tmp/cache-before-$mib"
    fi
    t_gz=$(ocra_run gzip "$tmp/gzip.yaml" "$tmp/s3.json" "$tmp/e3.json" "$cache")

    mkdir -p "$tmp/ctx"
    ln -f "$tmp/art/$f" "$tmp/ctx/$f"
    printf 'FROM %s\nCOPY %s /opt/ocra/model/%s\n' "$tc" "$f" "$f" >"$tmp/ctx/Dockerfile"
    t=$(now)
    docker build -q -t "$r/ocra/bm:docker-$mib" "$tmp/ctx" >"$tmp/docker.log" 2>&1
    docker push "$r/ocra/bm:docker-$mib" >>"$tmp/docker.log" 2>&1
    t_docker=$(secs "$t" "$(now)")

    t=$(now)
    fsha=$(sha256sum "$tmp/art/$f" | cut -d' ' -f1)
    loc=$(curl -sf -X POST -D - -o /dev/null "http://$r/v2/ocra/floor/blobs/uploads/" |
        tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
    case $loc in /*) loc="http://$r$loc" ;; esac
    case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T "$tmp/art/$f" \
        "$loc${sep}digest=sha256:$fsha" -o /dev/null
    t_floor=$(secs "$t" "$(now)")

    printf '%-6s %9s %9s %9s %9s %9s %9s %9s %9s %9s   %9s  %10s  %12s  %6s\n' "$mib" "$t_full" \
        "$t_ocra" "$t_gz" "$t_docker" "$t_floor" "$hit" "$upl" "$span" "$past" \
        "$(awk -v a="$t_docker" -v b="$t_ocra" 'BEGIN { printf "%.1fx", a / b }')" \
        "$(awk -v a="$t_ocra" -v b="$t_floor" 'BEGIN { printf "%.2fx", a / b }')" \
        "$(awk -v a="$t_full" -v b="$t_floor" 'BEGIN { printf "%.2fx", a / b }')" \
        "$(awk -v a="$t_gz" -v b="$t_ocra" 'BEGIN { printf "%.2fx", a / b }')"
    if [ -n "$before" ]; then
        before_rows[-1]+=$(printf '   %9s  %11s  %10s' \
            "$(awk -v a="$t_docker" -v b="$t_before" 'BEGIN { printf "%.1fx", a / b }')" \
            "$(awk -v a="$t_before" -v b="$t_floor" 'BEGIN { printf "%.2fx", a / b }')" \
            "$(awk -v a="$t_before" -v b="$t_ocra" 'BEGIN { printf "%.2fx", a / b }')")
    fi
    sed "s/^/    [$mib MiB, ocra build] /" "$tmp/tar.err" >>"$tmp/breakdown"
    rm -rf "$tmp/ctx" "$cache" "$tmp/art/$f"
    docker image rm "$r/ocra/bm:docker-$mib" >/dev/null 2>&1 || true
done
if [ -n "$before" ]; then
    echo "before ($before): the ocra column's build with that binary, same invocation"
    printf '%-6s %9s %9s %9s %9s %9s   %-s\n' MiB before "hit→tags" "upl→tags" upload beyond \
        "docker/before  before/floor  before/ocra"
    printf '%s\n' "${before_rows[@]}"
fi
echo "where the ocra build run spends its time (seconds since it started):"
cat "$tmp/breakdown"
[ -z "$before" ] || cat "$tmp/breakdown-before"
echo "seconds, wall clock; ocra+f: fetch over loopback http + build; ocra: artifact already"
echo "verified in the cache; floor: sha256sum + one monolithic curl upload of the same bytes"
