#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_image_docker.sh IT_IMAGE_DOCKER OCRA: the Docker Engine API client (src/image/image_docker.c)
# against a real, private dockerd. Starts the engine (tests/lib/dockerd.sh: its own data and
# exec roots and socket, no default bridge, no iptables), imports the cached local base image,
# serves the offline package index (tests/lib/pyindex.sh), starts two docker-registry instances
# on 127.0.0.1 (anonymous, and htpasswd basic auth; tests/lib/registry.sh), makes a CPU-only
# plan's Dockerfile with `ocra plan --format dockerfile`, and runs the test binary, which
# builds, inspects, tags, pushes and removes through the Engine API only. Exits 77 (ctest
# skip) with the reason when it cannot run here: not root, no dockerd/docker/debootstrap,
# docker-registry, htpasswd, python3 or curl, no reachable Debian mirror. Stops everything it
# started, by PID. Run from the repository root (ctest does).
set -u
bin=${1:?usage: it_image_docker.sh PATH_TO_IT_IMAGE_DOCKER PATH_TO_OCRA}
ocra=${2:?usage: it_image_docker.sh PATH_TO_IT_IMAGE_DOCKER PATH_TO_OCRA}
case $bin in /*) ;; *) bin="$PWD/$bin" ;; esac
case $ocra in /*) ;; *) ocra="$PWD/$ocra" ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
skip() {
    echo "it_image_docker: skipped: $1"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root (a private dockerd needs root)"
for t in python3 docker-registry htpasswd curl; do
    command -v "$t" >/dev/null 2>&1 || skip "no $t"
done
[ -x "$bin" ] && [ -x "$ocra" ] || { echo "it_image_docker: $bin or $ocra is not executable" >&2; exit 1; }
# shellcheck source=tests/lib/dockerd.sh
. "$here/lib/dockerd.sh"
# shellcheck source=tests/lib/pyindex.sh
. "$here/lib/pyindex.sh"
# shellcheck source=tests/lib/registry.sh
. "$here/lib/registry.sh"

tmp=$(mktemp -d /tmp/ocra-it-dk.XXXXXX)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    registry_stop_all
    pyindex_stop
    dockerd_stop
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dockerd_start "$tmp/engine"
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no private dockerd}"
[ "$rc" -eq 0 ] || { echo "it_image_docker: the private dockerd did not start" >&2; exit 1; }
# Pushes go to plain-http registries on 127.0.0.1: the engine must count 127.0.0.0/8 as
# insecure (its default).
if ! docker info --format '{{json .RegistryConfig.InsecureRegistryCIDRs}}' | grep -qF '127.0.0.0/8'; then
    echo "it_image_docker: the engine does not treat 127.0.0.0/8 as an insecure registry" >&2
    exit 1
fi
base_image_ensure >/dev/null
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no base image}"
[ "$rc" -eq 0 ] || { echo "it_image_docker: no base image" >&2; exit 1; }
pyindex_start "$tmp/index" || { echo "it_image_docker: the package index did not start" >&2; exit 1; }

registry_start "$tmp/reg" || exit 1
export OCRA_REG_PORT=$REGISTRY_PORT
htpasswd -Bbc "$tmp/htpasswd" ocra s3cret-pw 2>/dev/null
cat >"$tmp/basic.yml" <<YAML
auth:
  htpasswd:
    realm: ocra-test
    path: $tmp/htpasswd
YAML
registry_start "$tmp/reg-basic" "$tmp/basic.yml" || exit 1
export OCRA_REG_BASIC_PORT=$REGISTRY_PORT

# The plan's Dockerfile, as it_plan_docker.sh makes it.
cat >"$tmp/ocra.yaml" <<YAML
plan:
  pip_index_url: "$OCRA_PYINDEX_URL"
  allowed_tools: ["ocra-smoke"]
  base_images: ["${OCRA_BASE_IMAGE%:*}"]
YAML
cat >"$tmp/spec.json" <<JSON
{
  "name": "it-docker",
  "modelVersion": "1.0.0",
  "baseImage": "$OCRA_BASE_IMAGE",
  "toolsAndLibraries": {"ocra-smoke": "1.0.0"},
  "workload": {"gpus": 0, "command": ["python3", "-c", "import ocra_smoke"], "port": 8080}
}
JSON
if ! "$ocra" plan --config "$tmp/ocra.yaml" --format dockerfile "$tmp/spec.json" \
    >"$tmp/Dockerfile" 2>"$tmp/plan.err"; then
    echo "it_image_docker: ocra plan failed: $(head -c 600 "$tmp/plan.err")" >&2
    exit 1
fi
export OCRA_IT_PLAN_DOCKERFILE=$tmp/Dockerfile OCRA_IT_TMP=$tmp

t0=$SECONDS
"$bin"
status=$?
echo "# it_image_docker: the tests took $((SECONDS - t0)) s"
if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
    for f in engine/dockerd.log reg/registry.log reg-basic/registry.log; do
        echo "--- $f (last 20 lines)" >&2
        tail -n 20 "$tmp/$f" >&2
    done
fi
exit "$status"
