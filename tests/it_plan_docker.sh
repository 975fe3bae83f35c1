#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_plan_docker.sh OCRA: a Dockerfile that `ocra plan --format dockerfile` generates for a
# CPU-only plan builds with a real Docker engine, offline, and gives the image the plan says.
#
# Starts a private dockerd (tests/lib/dockerd.sh: its own data and exec roots, no default
# bridge, no iptables), imports the local base image ocra-test/bookworm-python:2 (made once
# with debootstrap, cached in $OCRA_TEST_CACHE, default /var/cache/ocra-test), serves an
# offline package index with one real wheel, ocra-smoke 1.0.0, on 127.0.0.1
# (tests/lib/pyindex.sh), plans a CPU-only spec whose baseImage is that image with
# plan.pip_index_url pointing at the index, builds with `docker build --network host` (pip
# reaches 127.0.0.1 only), and checks the image: labels, ENV, USER, EXPOSE and CMD as
# planned, ocra_smoke importable under `docker run --network none`, the wheel fetched from the
# local index, and a rebuild that reuses every layer. Exits 77 (ctest skip) with the reason
# when it cannot run here: not root, no dockerd/docker/debootstrap, no reachable Debian mirror.
# Stops everything it started, by PID. Run from the repository root (ctest does).
set -u
ocra=${1:?usage: it_plan_docker.sh PATH_TO_OCRA}
case $ocra in /*) ;; *) ocra="$PWD/$ocra" ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/dockerd.sh
. "$here/lib/dockerd.sh"
# shellcheck source=tests/lib/pyindex.sh
. "$here/lib/pyindex.sh"

passed=0 failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
finish() {
    echo "$passed passed, $failed failed ($((SECONDS - t0)) s)"
    [ "$failed" -eq 0 ] && exit 0
    exit 1
}
skip() {
    echo "it_plan_docker: skipped: $1"
    exit 77
}

t0=$SECONDS
[ "$(id -u)" -eq 0 ] || skip "not root (a private dockerd needs root)"
command -v python3 >/dev/null 2>&1 || skip "no python3"
[ -x "$ocra" ] || { echo "it_plan_docker: $ocra is not executable" >&2; exit 1; }

tmp=$(mktemp -d /tmp/ocra-plan-docker.XXXXXX)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    pyindex_stop
    dockerd_stop
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export DOCKER_BUILDKIT=0 # the classic builder, as the Engine API's POST /build uses it
image="ocra-test/plan-cpu:1"

# --- the engine, the base image, the index --------------------------------------------------
dockerd_start "$tmp/engine"
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no private dockerd}"
[ "$rc" -eq 0 ] || { fail dockerd_start "the private dockerd did not start"; finish; }
ok dockerd_start

# Not in $(...): the skip reason is set in this shell.
base_image_ensure >/dev/null
rc=$?
[ "$rc" -eq 77 ] && skip "${OCRA_SKIP_REASON:-no base image}"
base=${OCRA_BASE_IMAGE:-}
[ "$rc" -eq 0 ] || { fail base_image "could not make or import the base image"; finish; }
ok base_image

pyindex_start "$tmp/index" || { fail pyindex "the package index did not start"; finish; }
ok pyindex

# --- the plan -------------------------------------------------------------------------------
cat >"$tmp/ocra.yaml" <<YAML
plan:
  pip_index_url: "$OCRA_PYINDEX_URL"
  allowed_tools: ["ocra-smoke"]
  base_images: ["${base%:*}"]
YAML
cat >"$tmp/plan-cpu.json" <<JSON
{
  "name": "plan-cpu",
  "modelVersion": "1.0.0",
  "baseImage": "$base",
  "toolsAndLibraries": {"ocra-smoke": "1.0.0"},
  "workload": {
    "gpus": 0,
    "command": ["python3", "-c", "import ocra_smoke; print('smoke', ocra_smoke.__version__)"],
    "port": 8080
  }
}
JSON
mkdir -p "$tmp/ctx"
if "$ocra" plan --config "$tmp/ocra.yaml" --format dockerfile "$tmp/plan-cpu.json" \
    >"$tmp/ctx/Dockerfile" 2>"$tmp/plan.err" &&
    "$ocra" plan --config "$tmp/ocra.yaml" --format json "$tmp/plan-cpu.json" \
        >"$tmp/plan.json" 2>>"$tmp/plan.err"; then
    ok plan_dockerfile
else
    fail plan_dockerfile "ocra plan failed: $(head -c 600 "$tmp/plan.err")"
    finish
fi
if grep -qxF "FROM $base" "$tmp/ctx/Dockerfile"; then ok dockerfile_from_local_base; else
    fail dockerfile_from_local_base "no 'FROM $base' in: $(head -c 600 "$tmp/ctx/Dockerfile")"; fi
if grep -qF "\"--index-url\", \"$OCRA_PYINDEX_URL\", \"ocra-smoke==1.0.0\"" "$tmp/ctx/Dockerfile"; then
    ok dockerfile_uses_local_index
else
    fail dockerfile_uses_local_index "no pip install of ocra-smoke==1.0.0 from $OCRA_PYINDEX_URL"
fi

# --- the build ------------------------------------------------------------------------------
tb=$SECONDS
if docker build --network host -t "$image" "$tmp/ctx" >"$tmp/build.log" 2>&1; then
    ok docker_build
    echo "# docker build took $((SECONDS - tb)) s"
else
    fail docker_build "docker build failed; the end of its log:
$(tail -n 25 "$tmp/build.log")"
    finish
fi
if docker image inspect "$image" >"$tmp/inspect.json" 2>"$tmp/inspect.err"; then
    ok image_exists
else
    fail image_exists "$(cat "$tmp/inspect.err")"
    finish
fi
if grep -qF "GET /simple/ocra-smoke/ocra_smoke-1.0.0-py3-none-any.whl " "$OCRA_PYINDEX_LOG"; then
    ok wheel_from_local_index
else
    fail wheel_from_local_index "the index served no wheel: $(head -c 600 "$OCRA_PYINDEX_LOG")"
fi

# Labels, ENV, USER, EXPOSE and CMD of the image against the generated Dockerfile and the
# plan's JSON (one line per check: "ok NAME" or "FAIL NAME: WHY").
python3 - "$tmp/ctx/Dockerfile" "$tmp/plan.json" "$tmp/inspect.json" >"$tmp/checks" 2>&1 <<'PY'
import json, sys
dockerfile, plan, inspect = open(sys.argv[1]).read(), json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
cfg = inspect[0]["Config"]
labels, env, user, expose, cmd = {}, {}, None, [], None
for line in dockerfile.splitlines():
    word, _, rest = line.partition(" ")
    if word == "LABEL":      # LABEL "k"="v", both JSON strings
        k, _, v = rest.partition("=")
        labels[json.loads(k)] = json.loads(v)
    elif word == "ENV":      # ENV K="v"
        k, _, v = rest.partition("=")
        env[k] = json.loads(v)
    elif word == "USER":
        user = rest
    elif word == "EXPOSE":
        expose.append(rest if "/" in rest else rest + "/tcp")
    elif word == "CMD":
        cmd = json.loads(rest)
def check(name, good, why):
    print(("ok %s" % name) if good else ("FAIL %s: %s" % (name, why)))
got = cfg.get("Labels") or {}
check("labels_as_planned", labels and all(got.get(k) == v for k, v in labels.items()),
      "planned %s, image has %s" % (labels, got))
check("label_spec_hash", got.get("io.ocra.spec-hash") == plan["image"]["specHash"],
      "%s != %s" % (got.get("io.ocra.spec-hash"), plan["image"]["specHash"]))
check("label_toolchain_hash", got.get("io.ocra.toolchain-hash") == plan["toolchain"]["hash"],
      "%s != %s" % (got.get("io.ocra.toolchain-hash"), plan["toolchain"]["hash"]))
have = dict(e.split("=", 1) for e in cfg.get("Env") or [])
check("env_as_planned", env and all(have.get(k) == v for k, v in env.items()),
      "planned %s, image has %s" % (env, have))
check("env_matches_toolchain", all(have.get(k) == v for k, v in plan["toolchain"]["spec"]["env"].items()),
      "toolchain env %s, image has %s" % (plan["toolchain"]["spec"]["env"], have))
check("user_as_planned", user is not None and cfg.get("User") == user, "planned %r, image has %r" % (user, cfg.get("User")))
check("expose_as_planned", expose == ["8080/tcp"] and sorted((cfg.get("ExposedPorts") or {})) == expose,
      "planned %s, image has %s" % (expose, cfg.get("ExposedPorts")))
check("cmd_as_planned", cmd is not None and cfg.get("Cmd") == cmd, "planned %s, image has %s" % (cmd, cfg.get("Cmd")))
PY
while IFS= read -r line; do
    case $line in
    "ok "*) ok "${line#ok }" ;;
    "FAIL "*) n=${line#FAIL }; fail "${n%%:*}" "${n#*: }" ;;
    *) fail image_checks "$line" ;;
    esac
done <"$tmp/checks"

# --- the image runs, offline ----------------------------------------------------------------
out=$(docker run --rm --network none "$image" python3 -c 'import ocra_smoke; print(ocra_smoke.__version__)' 2>&1)
if [ "$out" = "1.0.0" ]; then ok run_imports_ocra_smoke; else fail run_imports_ocra_smoke "printed: $out"; fi
out=$(docker run --rm --network none "$image" 2>&1)
if [ "$out" = "smoke 1.0.0" ]; then ok run_default_cmd; else fail run_default_cmd "printed: $out"; fi
out=$(docker run --rm --network none "$image" id -u 2>&1)
if [ "$out" = "65532" ]; then ok run_as_planned_user; else fail run_as_planned_user "id -u printed: $out"; fi

# --- a rebuild of the same Dockerfile reuses every layer: the same image ------------------
id1=$(docker image inspect -f '{{.Id}}' "$image")
if docker build --network host -t "$image" "$tmp/ctx" >"$tmp/rebuild.log" 2>&1 &&
    [ "$(docker image inspect -f '{{.Id}}' "$image")" = "$id1" ]; then
    ok rebuild_same_image
else
    fail rebuild_same_image "a second build gave another image: $(tail -n 5 "$tmp/rebuild.log")"
fi

finish
