#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_toolchain.sh OCRA OCRA_AGENT: the toolchain image that models share, and the base image
# policy, through `ocra daemon` against real services on 127.0.0.1 (tests/lib/pipeline.sh: a
# private dockerd with the cached base image, a docker-registry with its access log, anvil with
# the ModelRegistry contract, the offline package index, an artifact server). Checked:
#  1. two models with the same toolchain hash, published together (two workers): one toolchain
#     build, the other event's toolchain stage a cache hit, one toolchain image in the engine;
#     one toolchain repository (<prefix>/toolchain) in the registry and none per model; each
#     model repository got every toolchain layer by a cross-repository mount (the registry's
#     access log: POST .../blobs/uploads/?mount=<digest>&from=<prefix>/toolchain, 201), none
#     uploaded; the toolchain image holds nothing of the first model (no io.ocra.event-id, not
#     its command); both events complete.
#  2. a spec whose baseImage is another model's image, by its name in build.registry -> rejected
#     at plan (plan.base_image_model); from a registry plan.base_images does not allow ->
#     rejected at plan (plan.base_image); the same model image through another name of the
#     registry that the operator allowed (localhost:PORT/), by digest -> rejected at plan (the
#     journal's images table), by tag -> rejected at the toolchain stage (the base carries
#     io.ocra.event-id) before anything is pushed. Each is reported on-chain once, rejected,
#     with its reason; no repository is made for them.
# Exits 77 (skip) with the reason when docker, the registry or the EVM tools cannot run here.
# Stops everything it started, by PID.
set -u
ocra=${1:?usage: it_toolchain.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
agent=${2:?usage: it_toolchain.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT}
case $ocra in /*) ;; *) ocra="$PWD/$ocra" ;; esac
case $agent in /*) ;; *) agent="$PWD/$agent" ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib/dockerd.sh"
. "$here/lib/pyindex.sh"
. "$here/lib/registry.sh"
. "$here/lib/anvil.sh"
. "$here/lib/check.sh"
. "$here/lib/build_env.sh"
. "$here/lib/pipeline.sh"

export OCRA_REGISTRY_ACCESS_LOG=1 # the registry logs every request: the mounts are seen there
pipeline_test_begin it_toolchain ocra-toolchain
port=${registry##*:}
prefix=ocra/tc
pipeline_config "$tmp/ocra.yaml" "$contract" "$registry/$prefix" "$agent" "$(registry_free_port)" \
    "daemon:
  workers: 2
  max_attempts: 6
  retry_base_ms: 300
  retry_max_ms: 2000
  poll_ms: 200"
# The operator also allows the registry under another of its names, localhost (say, for a
# mirror there): a name the model-registry rule cannot know, left to the later checks.
python3 - "$tmp/ocra.yaml" "localhost:$port/" <<'PY' || { fail config "could not edit the configuration"; finish; }
import re, sys
p, extra = sys.argv[1:]
s = open(p).read()
s, n = re.subn(r'(?m)^(  base_images: \[)(.*?)\]', lambda m: '%s%s, "%s"]' % (m.group(1), m.group(2), extra), s, count=1)
assert n == 1
open(p, "w").write(s)
PY
ok services

"$ocra" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
daemon_pid=$!
# weights DIR: a fresh weight file DIR/model.safetensors on the artifact server; sets sha, size
weights() {
    mkdir -p "$tmp/art/$1"
    head -c 100000 /dev/urandom >"$tmp/art/$1/model.safetensors"
    sha=$(sha256sum "$tmp/art/$1/model.safetensors" | cut -d' ' -f1)
    size=$(stat -c %s "$tmp/art/$1/model.safetensors")
}
# publish NAME [BASE]: a spec of NAME (weights in NAME/), with BASE as its baseImage when given;
# prints the tx hash
publish() {
    weights "$1"
    pipeline_spec "$tmp/spec.json" "$1" 1.0.0 "$1/model.safetensors" "$sha" "$size"
    if [ -n "${2:-}" ]; then
        python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d["baseImage"] = sys.argv[2]; json.dump(d, open(sys.argv[1], "w"))' \
            "$tmp/spec.json" "$2"
    fi
    "$ocra" -c "$tmp/ocra.yaml" publish --chain evm --key-file "$tmp/keys/publisher.key" \
        "$tmp/spec.json" 2>>"$tmp/publish.err"
}
wait_event() { pipeline_wait_event "$ocra" "$tmp/ocra.yaml" "$1" "$daemon_pid" "${2:-900}"; }
lineage() { "$ocra" -c "$tmp/ocra.yaml" lineage --json "$1" 2>/dev/null; }
# checks FILE: turns the "ok NAME" / "FAIL NAME: why" lines of a python check into the tally
checks() {
    while IFS= read -r line; do
        case $line in "ok "*) ok "${line#ok }" ;; "FAIL "*) n=${line#FAIL }; fail "${n%%:*}" "${n#*: }" ;;
        *) echo "  $line" ;; esac
    done <"$1"
}

# --- 1. two models, one toolchain -------------------------------------------------------------
tx_a=$(publish alpha) || { fail publish "ocra publish failed: $(tail -3 "$tmp/publish.err")"; finish; }
tx_b=$(publish beta) || { fail publish "ocra publish failed: $(tail -3 "$tmp/publish.err")"; finish; }
id_a=$(wait_event "$tx_a")
id_b=$(wait_event "$tx_b")
lineage "${id_a:-x}" >"$tmp/alpha.json"
lineage "${id_b:-x}" >"$tmp/beta.json"
docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -c 'toolchain' >"$tmp/engine-toolchains"
python3 - "$tmp/alpha.json" "$tmp/beta.json" "$REGISTRY_URL" "$prefix" "$tmp/reg/registry.log" \
    "$(cat "$tmp/engine-toolchains")" >"$tmp/one.out" 2>&1 <<'PY'
import json, re, sys, urllib.parse, urllib.request as u
pa, pb, reg, prefix, log, engine_n = sys.argv[1:]
def check(name, cond, why):
    print(("ok " if cond else "FAIL ") + name + ("" if cond else ": " + str(why)[:600]))
def load(p):
    try:
        return json.load(open(p))
    except ValueError:
        return {}
docs = [load(pa), load(pb)]
for name, d in zip(("alpha", "beta"), docs):
    p = d.get("pipeline") or {}
    check(name + "_completed", p.get("status") == "reported" and p.get("outcome") == "completed",
          json.dumps(p))
tc = [next((s.get("output") or {} for s in d.get("stages", [])
            if s["stage"] == "toolchain" and s.get("outcome") == "done"), {}) for d in docs]
built = [o.get("built") is True for o in tc]
check("one_toolchain_build", built.count(True) == 1, [json.dumps({k: o.get(k) for k in ("toolchain", "built", "cacheHit")}) for o in tc])
check("other_toolchain_cache_hit", [o.get("cacheHit") for o in tc].count(True) == 1, tc)
refs = {o.get("toolchain") for o in tc}
want_ref = re.compile(r"^127\.0\.0\.1:\d+/%s/toolchain:[0-9a-f]{64}$" % re.escape(prefix))
check("one_toolchain_ref_shared", len(refs) == 1 and all(r and want_ref.match(r) for r in refs), refs)
check("one_toolchain_image_in_engine", engine_n == "1", "%s toolchain images in the engine" % engine_n)
cat = json.load(u.urlopen(reg + "/v2/_catalog?n=1000")).get("repositories") or []
check("registry_one_toolchain_repository", sorted(r for r in cat if "toolchain" in r) == [prefix + "/toolchain"], cat)
tag = next(iter(refs)).rsplit(":", 1)[1] if refs and None not in refs else "none"
acc = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
try:
    m = json.load(u.urlopen(u.Request("%s/v2/%s/toolchain/manifests/%s" % (reg, prefix, tag), headers={"Accept": acc})))
    cfg = json.load(u.urlopen("%s/v2/%s/toolchain/blobs/%s" % (reg, prefix, m["config"]["digest"])))
except OSError as e:
    m, cfg = {"layers": []}, {}
    check("toolchain_in_registry", False, "%s/toolchain:%s: %s" % (prefix, tag, e))
layers = [l["digest"] for l in m["layers"]]
c = cfg.get("config") or {}
labels = c.get("Labels") or {}
check("toolchain_has_no_model_label", "io.ocra.event-id" not in labels and "io.ocra.spec-hash" not in labels, labels)
check("toolchain_label_is_its_hash", labels.get("io.ocra.toolchain-hash") == tag, labels)
cmd = json.dumps(c.get("Cmd"))
check("toolchain_has_no_model_command", "alpha" not in cmd and "beta" not in cmd and not c.get("ExposedPorts"), cmd)
reqs = []
for line in open(log, errors="replace"):
    r = re.search(r'"(POST|PUT|PATCH) (\S+) HTTP/[\d.]+" (\d+)', line)
    if r:
        path, _, query = r.group(2).partition("?")
        reqs.append((r.group(1), path, dict(urllib.parse.parse_qsl(query)), int(r.group(3))))
for name in ("alpha", "beta"):
    repo = "%s/%s" % (prefix, name)
    up = "/v2/%s/blobs/uploads/" % repo
    mounted = {q.get("mount") for meth, path, q, st in reqs
               if meth == "POST" and path == up and st == 201 and q.get("from") == prefix + "/toolchain"}
    uploaded = {q.get("digest") for meth, path, q, st in reqs if meth == "PUT" and path.startswith(up)}
    check(name + "_toolchain_layers_mounted", layers and set(layers) <= mounted,
          "%d of %d layers mounted" % (len(set(layers) & mounted), len(layers)))
    check(name + "_toolchain_layers_not_uploaded", not (set(layers) & uploaded),
          sorted(set(layers) & uploaded))
push = next((s.get("output") or {} for s in docs[0].get("stages", []) if s["stage"] == "push" and s.get("outcome") == "done"), {})
print("ALPHA %s" % push.get("digest"))
PY
checks "$tmp/one.out"
digest=$(awk '$1 == "ALPHA" { print $2 }' "$tmp/one.out")
case $digest in sha256:*) ;; *) fail alpha_digest "no digest of alpha's image"; finish ;; esac

# --- 2. the base image policy -----------------------------------------------------------------
# The engine must reach the registry by its other name, or the last case checks nothing.
if docker pull "localhost:$port/$prefix/alpha:1.0.0" >"$tmp/pull.log" 2>&1; then ok alias_pullable; else
    fail alias_pullable "$(tail -3 "$tmp/pull.log")"; finish; fi
docker image rm "localhost:$port/$prefix/alpha:1.0.0" >/dev/null 2>&1 # the build pulls it itself
cases="thief-name $registry/$prefix/alpha@$digest plan in-ocra's-model-registry
thief-registry evil.example:5000/x/base:1 plan is-not-allowed-as-a-base
thief-digest localhost:$port/$prefix/alpha@$digest plan the-journal's-images
thief-tag localhost:$port/$prefix/alpha:1.0.0 toolchain is-an-ocra-model-image"
while read -r name base _ _; do
    tx=$(publish "$name" "$base") || fail "${name}_publish" "$(tail -3 "$tmp/publish.err")"
    echo "$name $tx" >>"$tmp/thieves"
done <<<"$cases"
while read -r name base stage reason; do
    tx=$(awk -v n="$name" '$1 == n { print $2 }' "$tmp/thieves")
    id=$(wait_event "${tx:-none}")
    lineage "${id:-x}" >"$tmp/$name.json"
    n=$(evm_reports "$contract" | awk -v k="$(evm_event_key "${id:-x}")" 'tolower($1) == k' | wc -l)
    code=$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/$prefix/$name/tags/list")
    python3 - "$tmp/$name.json" "$name" "$stage" "${reason//-/ }" "$n" "$code" >"$tmp/$name.out" 2>&1 <<'PY'
import json, sys
path, name, stage, reason, n, code = sys.argv[1:]
def check(what, cond, why):
    print(("ok " if cond else "FAIL ") + name + "_" + what + ("" if cond else ": " + str(why)[:600]))
try:
    d = json.load(open(path))
except ValueError:
    d = {}
p = d.get("pipeline") or {}
check("rejected", p.get("status") == "reported" and p.get("outcome") == "rejected", json.dumps(p))
verdicts = [s for s in d.get("stages", []) if (s.get("output") or {}).get("verdict") == "rejected"]
where = verdicts[0]["stage"] if verdicts else None
why = (verdicts[0].get("output") or {}).get("reason", "") if verdicts else ""
check("rejected_at_" + stage, where == stage, "rejected at %s" % where)
check("reason_says_why", reason in why, why)
check("reported_once", n == "1", "%s StatusReported logs" % n)
check("nothing_pushed", code == "404", "GET tags/list of its repository: HTTP %s" % code)
print("  %s: %s" % (name, why))
PY
    checks "$tmp/$name.out"
done <<<"$cases"
kill -0 "$daemon_pid" 2>/dev/null && ok daemon_kept_running || fail daemon_kept_running "the daemon exited"

finish
