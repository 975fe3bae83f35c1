# SPDX-License-Identifier: Apache-2.0
# tests/lib/build_env.sh: what the `ocra build` test and bench/weight_update share (source it
# after registry.sh and pyindex.sh): an artifact server on 127.0.0.1 and the configuration and
# model spec that build against the local base image and package index.
#
#   artifacts_start DIR     # serves DIR (python3 -m http.server); sets ARTIFACTS_PORT
#   artifacts_stop          # by PID; safe to call twice
#   build_config FILE JOURNAL AGENT [GZIP]   # journal, spec.http_hosts, artifact.allow_hosts,
#                                            # plan.*, build.*
#   build_spec FILE VERSION NAME SHA256 SIZE [COMMAND_JSON]  # artifact NAME of the server

ARTIFACTS_PID=

artifacts_start() {
    local dir=${1:?usage: artifacts_start DIR} try
    for try in 1 2 3 4 5; do # a free port may be taken before the server binds it
        ARTIFACTS_PORT=$(registry_free_port) || return 1
        (cd "$dir" && exec python3 -m http.server --bind 127.0.0.1 "$ARTIFACTS_PORT") \
            >"$dir.log" 2>&1 &
        ARTIFACTS_PID=$!
        for _ in $(seq 50); do
            kill -0 "$ARTIFACTS_PID" 2>/dev/null || break
            if curl -s -o /dev/null "http://127.0.0.1:$ARTIFACTS_PORT/"; then
                sleep 0.1 # the answer was ours only if the server is still running
                kill -0 "$ARTIFACTS_PID" 2>/dev/null && return 0
                break
            fi
            sleep 0.1
        done
        artifacts_stop
    done
    echo "build_env.sh: the artifact server did not start: $(tail -n 3 "$dir.log")" >&2
    return 1
}

artifacts_stop() {
    [ -n "$ARTIFACTS_PID" ] && kill "$ARTIFACTS_PID" 2>/dev/null && wait "$ARTIFACTS_PID" 2>/dev/null
    ARTIFACTS_PID=
}

build_config() {
    cat >"$1" <<YAML
journal:
  path: "$2"
spec:
  http_hosts: ["127.0.0.1:$ARTIFACTS_PORT"]
artifact:
  allow_hosts: ["127.0.0.1"]   # the artifact server is on loopback, refused unless listed
plan:
  pip_index_url: "$OCRA_PYINDEX_URL"
  allowed_tools: ["ocra-smoke"]
  base_images: ["${OCRA_BASE_IMAGE%:*}"]
build:
  agent: "$3"
  weight_gzip: ${4:-false}
YAML
}

build_spec() {
    cat >"$1" <<JSON
{"name": "bm", "modelVersion": "$2", "baseImage": "$OCRA_BASE_IMAGE",
 "toolsAndLibraries": {"ocra-smoke": "1.0.0"},
 "artifact": {"uri": "http://127.0.0.1:$ARTIFACTS_PORT/$3", "sha256": "$4", "size": $5},
 "workload": {"gpus": 0, "command": ${6:-[\"python3\", \"-c\", \"print('serve')\"]}}}
JSON
}
