#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_scripts.sh: the README's commands as a new user meets them.
#  1. scripts/install-deps installs per group only what the command needs: the demo's group
#     has the Docker engine, the registry and node but no Slurm, clang or chromium; the test
#     group has them all (checked against a dpkg-query that says nothing is installed).
#  2. scripts/demo and scripts/test need root: run by another user they run themselves again
#     with sudo (a stand-in sudo records the call) or, without sudo, say to run them as root;
#     they never fail with "sudo: command not found".
#  3. A run waiting for another that makes the base image says what it waits for.
# Usage: it_scripts.sh
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
tmp=$(mktemp -d /tmp/ocra-it-scripts.XXXXXX)
holder=
# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
    [ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
. tests/lib/check.sh

# --- 1. groups
mkdir -p "$tmp/nodpkg"
printf '#!/bin/sh\nexit 1\n' >"$tmp/nodpkg/dpkg-query"
chmod 755 "$tmp/nodpkg/dpkg-query"
deps() { PATH="$tmp/nodpkg:$PATH" scripts/install-deps --missing "$@"; }
words() { tr ' ' '\n' <<<"$1"; }
demo=$(deps demo) test=$(deps test) all=$(deps) build=$(deps build)
for p in docker.io docker-registry debootstrap openssl cmake libsecp256k1-dev; do
    words "$demo" | grep -qx "$p" && ok "demo_group_has_$p" || fail "demo_group_has_$p" "$demo"
done
for p in slurmd slurmrestd munge clang-14 clang-format-14 chromium groff-base; do
    words "$demo" | grep -qx "$p" && fail "demo_group_lacks_$p" "$demo" || ok "demo_group_lacks_$p"
    words "$test" | grep -qx "$p" && ok "test_group_has_$p" || fail "test_group_has_$p" "$test"
done
words "$build" | grep -qx docker.io && fail build_group_lacks_docker "$build" || ok build_group_lacks_docker
[ "$all" = "$test" ] && ok no_group_means_everything || fail no_group_means_everything "$all"
[ "$(words "$test" | sort | uniq -d)" = "" ] && ok each_package_once || fail each_package_once "$test"
expect unknown_group_is_usage_error 2 scripts/install-deps --missing bogus &&
    has unknown_group_named "$tmp/err" "unknown group or option bogus (groups: build demo test)"

# --- 2. root, or sudo: run as nobody with a stand-in sudo, then with no sudo at all
mkdir -p "$tmp/co/scripts" "$tmp/withsudo" "$tmp/nosudo"
cp scripts/demo scripts/test "$tmp/co/scripts/"
chmod -R a+rX "$tmp"
cat >"$tmp/withsudo/sudo" <<EOF
#!/bin/sh
printf '%s\n' "\$@" >"$tmp/sudo.args"
EOF
chmod 755 "$tmp/withsudo/sudo"
chmod a+w "$tmp"
for t in bash sh id realpath dirname printf; do ln -s "$(command -v "$t")" "$tmp/nosudo/$t"; done
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env PATH="$1" "${@:2}"; }
if ! command -v setpriv >/dev/null; then
    echo "skip: setpriv (util-linux) is needed to run the scripts as another user"
else
    for s in demo test; do
        rm -f "$tmp/sudo.args"
        as_nobody "$tmp/withsudo:/usr/bin:/bin" bash "$tmp/co/scripts/$s" --keep >"$tmp/out" 2>"$tmp/err"
        [ "$(head -1 "$tmp/sudo.args" 2>/dev/null)" = "--preserve-env=$([ $s = demo ] && echo OCRA_DEMO_BUILD,)OCRA_TEST_CACHE" ] &&
            [ "$(sed -n 2p "$tmp/sudo.args")" = "$tmp/co/scripts/$s" ] &&
            [ "$(sed -n 3p "$tmp/sudo.args")" = "--keep" ] &&
            ok "${s}_reruns_itself_with_sudo" || fail "${s}_reruns_itself_with_sudo" "$(cat "$tmp/sudo.args" "$tmp/err" 2>&1)"
        has "${s}_says_why_it_uses_sudo" "$tmp/err" "needs root"
        expect "${s}_without_sudo_exits_2" 2 as_nobody "$tmp/nosudo" bash "$tmp/co/scripts/$s" &&
            has "${s}_without_sudo_says_run_as_root" "$tmp/err" "there is no sudo here: run it as root"
        grep -q "command not found" "$tmp/err" && fail "${s}_never_command_not_found" "$(cat "$tmp/err")" ||
            ok "${s}_never_command_not_found"
    done
fi

# --- 3. the base image lock: another run holds it; this one says what it waits for
cache=$tmp/cache
mkdir -p "$cache"
: >"$tmp/hold"
flock "$cache/lock" sh -c "while [ -e '$tmp/hold' ]; do sleep 0.1; done" &
holder=$!
wait_until "the stand-in run holds the lock" sh -c "! flock -n '$cache/lock' true"
(
    export OCRA_TEST_CACHE=$cache DOCKER_HOST=unix://$tmp/no-docker.sock
    . tests/lib/dockerd.sh
    tar -C "$tmp" -cf "$cache/bookworm-python-$OCRA_BASE_IMAGE_VERSION.tar" cache/lock
    base_image_ensure >/dev/null 2>"$tmp/lock.err"
) &
waiter=$!
wait_until "the waiting run said so" grep -q "waiting for another run that is making the base image" "$tmp/lock.err"
rm -f "$tmp/hold"
wait "$holder"
holder=
wait "$waiter"
has lock_wait_names_the_lock "$tmp/lock.err" "(it holds $cache/lock; about 40 s)"
has lock_wait_says_when_done "$tmp/lock.err" "the other run finished the base image"
cd "$top" || exit 1
check_done
