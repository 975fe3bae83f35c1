# SPDX-License-Identifier: Apache-2.0
# tests/lib/dockerd.sh: a private Docker engine and a locally made base image for integration
# tests (real services, docs/ARCHITECTURE.md "Conventions"). Source it from bash:
#
#   . tests/lib/dockerd.sh
#   dockerd_start DIR   || exit $?   # 77: cannot run here, reason in $OCRA_SKIP_REASON
#   base_image_ensure || ...          # ocra-test/bookworm-python:1 (made once and cached),
#                                     # printed and in $OCRA_BASE_IMAGE
#   ...
#   dockerd_stop                      # by PID; unmounts what is left under DIR
#
# dockerd_start installs nothing. The engine has its own --data-root, --exec-root, pidfile and
# unix socket under DIR, no default bridge and no iptables rules: containers and builds must
# use --network none or host. dockerd starts its own containerd under DIR/exec when no system
# containerd socket exists; either way it gets a containerd namespace of its own.
#
# A remote-like engine: with OCRA_DOCKERD_NETNS=NAME (an existing network namespace) dockerd
# runs in it (nsenter --net); with OCRA_DOCKERD_TCP=ADDR:PORT it also listens there with
# --tlsverify and the PEM files of OCRA_DOCKERD_TLS_DIR (ca.pem, server-cert.pem,
# server-key.pem: clients must show a certificate of that CA); OCRA_DOCKERD_ARGS adds flags
# (--insecure-registry ADDR:PORT for a test registry on the namespace's subnet). The unix
# socket under DIR stays, for the test's own checks.
#
# Environment read: OCRA_TEST_CACHE (base image cache, default /var/cache/ocra-test),
# OCRA_DEBIAN_MIRROR (default: the first Debian URI in /etc/apt/sources.list*, else
# http://deb.debian.org/debian). Exported by dockerd_start: DOCKER_HOST, OCRA_DOCKERD_PID,
# OCRA_DOCKERD_DIR.

# The base image's version: bump it when base_image_ensure changes what goes into the image.
OCRA_BASE_IMAGE_VERSION=2
OCRA_BASE_IMAGE_REF="ocra-test/bookworm-python:${OCRA_BASE_IMAGE_VERSION}"

_dockerd_log() { echo "dockerd.sh: $*" >&2; }

# _dockerd_skip REASON: sets $OCRA_SKIP_REASON and returns 77 (ctest's skip status).
_dockerd_skip() {
    OCRA_SKIP_REASON=$1
    _dockerd_log "cannot run here: $1"
    return 77
}

# dockerd_start DIR: starts the engine, waits (60 s at most) until it answers.
dockerd_start() {
    local dir=${1:?usage: dockerd_start DIR}
    [ "$(id -u)" -eq 0 ] || { _dockerd_skip "not root (dockerd needs root)"; return; }
    command -v dockerd >/dev/null 2>&1 || { _dockerd_skip "no dockerd binary (Debian package docker.io)"; return; }
    command -v docker >/dev/null 2>&1 || { _dockerd_skip "no docker client (Debian package docker.io)"; return; }
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd) || return 1
    # containerd's socket lives at DIR/exec/containerd/containerd.sock.ttrpc; a unix socket
    # path has at most 107 bytes.
    if [ ${#dir} -gt 60 ]; then
        _dockerd_log "DIR is too long for a unix socket path (${#dir} > 60 bytes): $dir"
        return 1
    fi
    local ns
    ns="ocra-test-$(basename "$dir" | tr -c 'a-zA-Z0-9\n' -)"
    local -a pre=() extra=()
    # nsenter, not `ip netns exec`: that one mounts a sysfs of its own, without the cgroups
    [ -n "${OCRA_DOCKERD_NETNS:-}" ] && pre=(nsenter "--net=/var/run/netns/$OCRA_DOCKERD_NETNS")
    if [ -n "${OCRA_DOCKERD_TCP:-}" ]; then
        local t=${OCRA_DOCKERD_TLS_DIR:?OCRA_DOCKERD_TCP needs OCRA_DOCKERD_TLS_DIR}
        extra=(-H "tcp://$OCRA_DOCKERD_TCP" --tlsverify --tlscacert "$t/ca.pem"
            --tlscert "$t/server-cert.pem" --tlskey "$t/server-key.pem")
    fi
    # shellcheck disable=SC2206 # flags split on purpose
    [ -n "${OCRA_DOCKERD_ARGS:-}" ] && extra+=($OCRA_DOCKERD_ARGS)
    "${pre[@]}" dockerd \
        --data-root "$dir/data" \
        --exec-root "$dir/exec" \
        --pidfile "$dir/dockerd.pid" \
        -H "unix://$dir/docker.sock" \
        --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
        --containerd-namespace "$ns" --containerd-plugins-namespace "$ns-plugins" \
        "${extra[@]}" >"$dir/dockerd.log" 2>&1 &
    OCRA_DOCKERD_PID=$!
    OCRA_DOCKERD_DIR=$dir
    export OCRA_DOCKERD_PID OCRA_DOCKERD_DIR
    local _
    for _ in $(seq 1 120); do
        if ! kill -0 "$OCRA_DOCKERD_PID" 2>/dev/null; then
            _dockerd_log "dockerd exited while starting; the end of $dir/dockerd.log:"
            tail -n 20 "$dir/dockerd.log" >&2
            OCRA_DOCKERD_PID=
            return 1
        fi
        if docker -H "unix://$dir/docker.sock" version >/dev/null 2>&1; then
            export DOCKER_HOST="unix://$dir/docker.sock"
            return 0
        fi
        sleep 0.5
    done
    _dockerd_log "dockerd did not answer within 60 s; the end of $dir/dockerd.log:"
    tail -n 20 "$dir/dockerd.log" >&2
    dockerd_stop
    return 1
}

# _dockerd_wait_gone PID SECONDS: waits until PID has exited; 1 when it is still alive.
_dockerd_wait_gone() {
    local pid=$1 n=$(($2 * 10))
    while [ "$n" -gt 0 ]; do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
        n=$((n - 1))
    done
    ! kill -0 "$pid" 2>/dev/null
}

# dockerd_stop: stops the engine that dockerd_start started (SIGTERM, then SIGKILL after
# 30 s), then the containerd it started if that outlived it, then unmounts whatever is still
# mounted under DIR (overlay layers, netns, shm of killed containers). Safe to call twice.
dockerd_stop() {
    local dir=${OCRA_DOCKERD_DIR:-} pid=${OCRA_DOCKERD_PID:-}
    local ctd=
    [ -n "$dir" ] && [ -s "$dir/exec/containerd/containerd.pid" ] &&
        ctd=$(cat "$dir/exec/containerd/containerd.pid" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        if ! _dockerd_wait_gone "$pid" 30; then
            _dockerd_log "dockerd $pid ignored SIGTERM for 30 s; SIGKILL"
            kill -KILL "$pid" 2>/dev/null
            _dockerd_wait_gone "$pid" 5
        fi
        wait "$pid" 2>/dev/null
    fi
    # The containerd dockerd started is its child; it normally stops with dockerd.
    if [ -n "$ctd" ] && kill -0 "$ctd" 2>/dev/null &&
        grep -qF -- "$dir/exec/containerd" "/proc/$ctd/cmdline" 2>/dev/null; then
        kill -TERM "$ctd" 2>/dev/null
        _dockerd_wait_gone "$ctd" 10 || kill -KILL "$ctd" 2>/dev/null
    fi
    if [ -n "$dir" ]; then
        local m
        # Deepest first; mount points are field 5 of mountinfo (octal escapes for spaces).
        awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
            while read -r m; do
                umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ||
                    _dockerd_log "could not unmount $m"
            done
    fi
    OCRA_DOCKERD_PID=
    unset DOCKER_HOST
}

# _debian_mirror: the Debian archive apt uses here (not the security archive).
_debian_mirror() {
    if [ -n "${OCRA_DEBIAN_MIRROR:-}" ]; then
        echo "$OCRA_DEBIAN_MIRROR"
        return
    fi
    local uri
    uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' | grep -v -- '-security' | head -n 1)
    [ -z "$uri" ] && uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break } }' |
        grep -v -- '-security' | head -n 1)
    echo "${uri:-http://deb.debian.org/debian}"
}

# base_image_ensure: makes sure the engine has ocra-test/bookworm-python:1, prints its
# reference and sets $OCRA_BASE_IMAGE to it (call it outside $(...) to keep that and
# $OCRA_SKIP_REASON). The root file system (debootstrap --variant=minbase --include=python3,python3-pip
# bookworm from the local Debian mirror, about 40 s) is cached as a tar in
# $OCRA_TEST_CACHE/bookworm-python-<version>.tar and made again only when missing; each new
# engine imports the tar (a few seconds). The image is a plain Debian with python3 and pip, PEP 668
# marker (EXTERNALLY-MANAGED) included: the planner's Dockerfile for a spec's baseImage must cope
# with it. apt's lists and archives are dropped. Returns 77 (reason in $OCRA_SKIP_REASON) when there is
# no debootstrap or the mirror cannot be reached.
base_image_ensure() {
    local ref=$OCRA_BASE_IMAGE_REF
    if docker image inspect "$ref" >/dev/null 2>&1; then
        export OCRA_BASE_IMAGE=$ref
        echo "$ref"
        return 0
    fi
    local cache=${OCRA_TEST_CACHE:-/var/cache/ocra-test}
    local tarball="$cache/bookworm-python-${OCRA_BASE_IMAGE_VERSION}.tar"
    mkdir -p "$cache" || return 1
    (
        # One maker at a time; a second waits and then finds the tar, and says what it waits for
        # rather than nothing for a minute.
        if ! flock -n 9; then
            _dockerd_log "waiting for another run that is making the base image (it holds $cache/lock; about 40 s)"
            flock 9 || exit 1
            _dockerd_log "the other run finished the base image"
        fi
        [ -s "$tarball" ] && exit 0
        command -v debootstrap >/dev/null 2>&1 ||
            { echo "no debootstrap (Debian package debootstrap)" >"$cache/skip.$$"; exit 77; }
        local mirror root log rc
        mirror=$(_debian_mirror)
        root="$cache/root.$$"
        log="$cache/debootstrap.log"
        rm -rf --one-file-system "$root"
        _dockerd_log "making the base image with debootstrap from $mirror (about 40 s)"
        debootstrap --variant=minbase --include=python3,python3-pip bookworm "$root" "$mirror" >"$log" 2>&1
        rc=$?
        # debootstrap mounts /proc and /sys in the target; never leave one behind.
        awk -v d="$root/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
            while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
        if [ "$rc" -ne 0 ]; then
            rm -rf --one-file-system "$root"
            if grep -qE "Failed getting release file|Couldn't download|Failed getting release signature|Release file .* is expired" "$log"; then
                echo "debootstrap cannot reach the Debian mirror $mirror (see $log)" >"$cache/skip.$$"
                exit 77
            fi
            _dockerd_log "debootstrap failed ($rc); the end of $log:"
            tail -n 20 "$log" >&2
            exit 1
        fi
        rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
        tar -C "$root" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rc=$?
        rm -rf --one-file-system "$root" "$tarball.tmp"
        exit "$rc"
    ) 9>"$cache/lock"
    local rc=$?
    if [ "$rc" -eq 77 ]; then
        OCRA_SKIP_REASON=$(cat "$cache/skip.$$" 2>/dev/null)
        rm -f "$cache/skip.$$"
        _dockerd_log "cannot run here: $OCRA_SKIP_REASON"
        return 77
    fi
    [ "$rc" -eq 0 ] || return "$rc"
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        "$tarball" "$ref" >/dev/null || return 1
    export OCRA_BASE_IMAGE=$ref
    echo "$ref"
}
