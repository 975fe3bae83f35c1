#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_run_docker.sh IT_RUN_DOCKER: the docker runner and its sandbox profile (src/run) against a
# real, private dockerd (tests/lib/dockerd.sh: its own roots and socket, no default bridge, no
# iptables). Imports the cached local base image, pushes it to a docker-registry on 127.0.0.1
# (tests/lib/registry.sh) so that the engine holds it under a digest reference
# (repo@sha256:...), and runs the test binary with OCRA_IT_RUN_IMAGE (that reference) and
# OCRA_IT_RUN_TAG (the tag it was pushed under). Exits 77 (ctest skip) with the reason when it
# cannot run here: not root, no dockerd/docker/debootstrap/docker-registry, no reachable
# Debian mirror for a base image not yet cached. Stops everything it started, by PID. Run from
# the repository root (ctest does).
set -u
bin=${1:?usage: it_run_docker.sh PATH_TO_IT_RUN_DOCKER [PATH_TO_OCRA]}
case $bin in /*) ;; *) bin="$PWD/$bin" ;; esac
ocra=${2:-}
[ -z "$ocra" ] || case $ocra in /*) ;; *) ocra="$PWD/$ocra" ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
skip() {
    echo "it_run_docker: skipped: $1"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root (a private dockerd needs root)"
command -v docker-registry >/dev/null 2>&1 || skip "no docker-registry (Debian package docker-registry)"
[ -x "$bin" ] || { echo "it_run_docker: $bin is not executable" >&2; exit 1; }
# shellcheck source=tests/lib/dockerd.sh
. "$here/lib/dockerd.sh"
# shellcheck source=tests/lib/registry.sh
. "$here/lib/registry.sh"

tmp=$(mktemp -d /tmp/ocra-it-run.XXXXXX)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    registry_stop_all
    dockerd_stop
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dockerd_start "$tmp/engine"
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no private dockerd}"
[ "$rc" -eq 0 ] || { echo "it_run_docker: the private dockerd did not start" >&2; exit 1; }
base_image_ensure >/dev/null
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no base image}"
[ "$rc" -eq 0 ] || { echo "it_run_docker: no base image" >&2; exit 1; }

# A digest reference exists only for an image pushed to (or pulled from) a registry.
registry_start "$tmp/reg" || exit 1
tag="127.0.0.1:$REGISTRY_PORT/ocra-test/run-base:1"
docker tag "$OCRA_BASE_IMAGE" "$tag" && docker push "$tag" >"$tmp/push.log" 2>&1 ||
    { echo "it_run_docker: pushing the base image failed: $(tail -n 5 "$tmp/push.log")" >&2; exit 1; }
digest_ref=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$tag" |
    grep -F "127.0.0.1:$REGISTRY_PORT/ocra-test/run-base@sha256:" | head -n 1)
[ -n "$digest_ref" ] || { echo "it_run_docker: no RepoDigest after the push" >&2; exit 1; }
export OCRA_IT_RUN_IMAGE=$digest_ref OCRA_IT_RUN_TAG=$tag

t0=$SECONDS
"$bin"
status=$?
echo "# it_run_docker: the tests took $((SECONDS - t0)) s"

# `ocra run`, as an operator uses it: the profile printed, the log tail and exit code, a tag
# refused, a relaxation from the configuration.
if [ -n "$ocra" ] && [ "$status" -eq 0 ]; then
    cli_failed=0
    cli() { # NAME WANT_STATUS PATTERN ARGS...: ocra ARGS exits WANT_STATUS and prints PATTERN
        local name=$1 want=$2 pattern=$3
        shift 3
        "$ocra" "$@" >"$tmp/cli.out" 2>&1
        local got=$?
        if [ "$got" -eq "$want" ] && grep -qF -- "$pattern" "$tmp/cli.out"; then
            echo "ok $name"
        else
            echo "FAIL $name: exit $got (want $want), no '$pattern' in: $(head -c 1500 "$tmp/cli.out")"
            cli_failed=1
        fi
    }
    sock=unix://$tmp/engine/docker.sock
    cli cli_run_prints_profile_and_exit_code 1 "exit code 3" run --docker-host "$sock" \
        --event-id test:cli:1 --rm "$OCRA_IT_RUN_IMAGE" -- /bin/sh -c 'echo hello from the sandbox; exit 3'
    grep -qF "hello from the sandbox" "$tmp/cli.out" && grep -qi "read-only" "$tmp/cli.out" &&
        echo "ok cli_run_log_tail_and_profile" || { echo "FAIL cli_run_log_tail_and_profile: $(cat "$tmp/cli.out")"; cli_failed=1; }
    cli cli_run_refuses_a_tag 2 "digest" run --docker-host "$sock" "$OCRA_IT_RUN_TAG" -- /bin/true
    printf 'run:\n  docker_host: %s\n  sandbox:\n    writable_rootfs: true\n' "$sock" >"$tmp/relax.yaml"
    cli cli_run_relaxation_from_config 0 "exit code 0" -c "$tmp/relax.yaml" run --event-id test:cli:2 \
        --relax run_as_root --rm "$OCRA_IT_RUN_IMAGE" -- /bin/sh -c 'touch /written-here'
    grep -qF "run.sandbox.writable_rootfs" "$tmp/cli.out" &&
        echo "ok cli_run_names_the_relaxation" || { echo "FAIL cli_run_names_the_relaxation: $(cat "$tmp/cli.out")"; cli_failed=1; }
    cli cli_run_default_profile_blocks_writes 1 "Read-only file system" run --docker-host "$sock" \
        --event-id test:cli:3 --relax run_as_root --rm "$OCRA_IT_RUN_IMAGE" -- /bin/sh -c 'touch /written-here'
    [ "$cli_failed" -eq 0 ] || status=1
fi
if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
    echo "--- engine/dockerd.log (last 20 lines)" >&2
    tail -n 20 "$tmp/engine/dockerd.log" >&2
fi
exit "$status"
