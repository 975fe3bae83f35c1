# SPDX-License-Identifier: Apache-2.0
# registry.sh: sourced by the image tests. Starts real docker-registry instances (Debian
# package docker-registry) on 127.0.0.1 at free ports, each with its own storage directory and
# an optional auth section, and stops them by the PIDs it started. A machine without the
# package exits 77 (ctest skip).
#
#   source tests/lib/registry.sh
#   registry_or_skip                  # exits 77 saying why when docker-registry is missing
#   registry_start DIR [AUTH_YAML]    # sets REGISTRY_PORT REGISTRY_URL; AUTH_YAML: a file
#                                     # holding an `auth:` section, pasted into the config
#   registry_stop_all                 # stops every registry this shell started
#
# With OCRA_REGISTRY_ACCESS_LOG=1 in the environment, a registry started then writes one line per
# request (method, path with its query, status) to DIR/registry.log. With OCRA_REGISTRY_ADDR (an
# address of this machine, e.g. the root side of a test network namespace's veth) it listens
# there instead of 127.0.0.1, and REGISTRY_URL names that address.

. "$(dirname "${BASH_SOURCE[0]}")/port.sh"

REGISTRY_PIDS=()

registry_or_skip() {
    if ! command -v docker-registry >/dev/null 2>&1; then
        echo "skip: docker-registry is not installed (Debian package docker-registry)" >&2
        exit 77
    fi
}

registry_free_port() { free_port; }

_registry_config() {
    local dir=$1 port=$2 auth=$3
    cat <<CFG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: $([ -n "${OCRA_REGISTRY_ACCESS_LOG:-}" ] && echo false || echo true)
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: ${OCRA_REGISTRY_ADDR:-127.0.0.1}:$port
  secret: ocra-test-secret-not-for-production
CFG
    if [ -n "$auth" ]; then cat "$auth"; fi
}

registry_start() {
    local dir=$1 auth=${2:-} try pid
    mkdir -p "$dir/data"
    for try in 1 2 3 4 5; do
        REGISTRY_PORT=$(registry_free_port) || break
        _registry_config "$dir" "$REGISTRY_PORT" "$auth" >"$dir/config.yml"
        docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
        pid=$!
        REGISTRY_URL=http://${OCRA_REGISTRY_ADDR:-127.0.0.1}:$REGISTRY_PORT
        for _ in $(seq 100); do
            # any HTTP answer (200 or 401) means it listens
            if curl -s -o /dev/null -m 2 "$REGISTRY_URL/v2/"; then
                REGISTRY_PIDS+=("$pid")
                export REGISTRY_PORT REGISTRY_URL
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    echo "docker-registry did not start; its log:" >&2
    tail -20 "$dir/registry.log" >&2
    return 1
}

registry_stop_all() {
    local pid
    for pid in "${REGISTRY_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    REGISTRY_PIDS=()
}
