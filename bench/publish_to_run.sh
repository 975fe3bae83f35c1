#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# publish_to_run.sh OCRA OCRA_AGENT [K] [SIZE_MIB...]: the time from a publish on the chain to a
# running container for a weight-only update on a cached toolchain, split by stage
# (docs/BENCHMARKS.md).
#
# Starts, on 127.0.0.1 and stopped by PID, what scripts/demo starts (from tests/lib): a private
# dockerd with the cached base image, a docker-registry, anvil (a block a second) with the
# ModelRegistry contract, the package index and an artifact server; writes an ocra.yaml like
# the demo's (2 confirmations, 2 workers) and starts `ocra daemon`. A first publish builds the
# toolchain (its time is printed apart). Then, for each size (default 16 and 256 MiB), K
# (default 5) weight-only updates, one at a time: a new random weight file, the same tools, a
# new sha256, size and modelVersion. Each waits until the daemon reported the run, then reads
# `ocra lineage ID --json`.
#
# t0 is the instant `ocra publish` returned: the transaction's receipt was seen, i.e. the tx is
# mined (anvil mines a block a second). "finality+watch" is t0 to the event journaled by the
# watcher (observedMs: 2 more blocks, then the next poll); "queue" from there to the claim of
# the validate stage; each stage row is its own startedAt..finishedAt; "gaps" the sum of the
# waits between one stage's finish and the next one's claim. Totals: t0 to the run stage's
# finish (the container started: the engine answered the start call) and to the report
# stage's finish (the status is on-chain). Per row: median, min and max over the K updates,
# and the median's share of the median publish->reported total. Also the daemon's resident
# set idle (before the first publish) and its peak (VmHWM) at the end, and per size how many
# push stages handed the image to the engine and how many layers each run stage pulled.
#
# "weight upload" is the baseline of the goal "a finalized publish reaches a running container
# within the weights' upload + 2 s": after each update, the same weight file is uploaded to the
# same registry as one monolithic blob with curl (POST .../uploads/, then PUT ?digest= with the
# file; its sha256 is known from the spec), timed. The goal line compares the median
# journaled->container started (from the finalized event journaled: what follows the chain's
# finality, which ocra cannot shorten) with the median weight upload + 2000 ms.
#
# With OCRA_BEFORE=PATH (another ocra binary: the one before a change), a second daemon of that
# binary runs beside the first on the same engine, registry and chain, with its own contract,
# journal, cache, agent socket directory and reporter key; each update is published to both,
# one after the other (which goes first alternates), and a last table compares the two.
# Needs root, docker.io, docker-registry, the npm tools (scripts/install-npm-tools), python3,
# curl.
set -euo pipefail
ocra=$(realpath "${1:?usage: publish_to_run.sh OCRA OCRA_AGENT [K] [SIZE_MIB...]}")
agent=$(realpath "${2:?usage: publish_to_run.sh OCRA OCRA_AGENT [K] [SIZE_MIB...]}")
k=${3:-5}
shift $(($# < 3 ? $# : 3))
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 256)
before=${OCRA_BEFORE:+$(realpath "$OCRA_BEFORE")}
cd "$(dirname "$0")/.."
. tests/lib/dockerd.sh
. tests/lib/pyindex.sh
. tests/lib/registry.sh
. tests/lib/anvil.sh
. tests/lib/build_env.sh
evm_tools_or_skip
export DOCKER_BUILDKIT=0

tmp=$(mktemp -d /tmp/ocra-bptr.XXXXXX)
pids=()
cleanup() {
    set +e
    for p in "${pids[@]}"; do
        kill -TERM "$p"
        wait "$p"
    done
    artifacts_stop
    anvil_stop
    registry_stop_all
    pyindex_stop
    dockerd_stop
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

dockerd_start "$tmp/engine" || { echo "publish_to_run: no private dockerd: ${OCRA_SKIP_REASON:-}" >&2; exit 1; }
base_image_ensure >/dev/null
pyindex_start "$tmp/index"
registry_start "$tmp/reg"
anvil_start --block-time 1
mkdir -p "$tmp/art" "$tmp/keys"
artifacts_start "$tmp/art"
umask 077
printf '%s\n' "${EVM_KEY0#0x}" >"$tmp/keys/publisher.key"
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/keys/sign.pem" 2>/dev/null
umask 022

# daemon NAME OCRA REPORTER_KEY REPORTER_ADDR: its own ModelRegistry contract, configuration
# (the demo's: build_config's journal, spec, plan and build keys, then the rest), registry
# prefix (ocra/NAME), journal, cache and agent sockets in $tmp/NAME; `ocra daemon` started
daemon() {
    local d=$tmp/$1 contract
    mkdir -p "$d"
    contract=$("$CAST" send --json --rpc-url "$EVM_RPC_URL" --private-key "$EVM_KEY0" \
        --create "0x$(cat contracts/ModelRegistry.bin)" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["contractAddress"])')
    "$CAST" send -q --rpc-url "$EVM_RPC_URL" --private-key "$EVM_KEY0" "$contract" \
        "setReporter(address,bool)" "$4" true >/dev/null
    (umask 077 && printf '%s\n' "${3#0x}" >"$d/operator.key")
    build_config "$d/ocra.yaml" "$d/journal.db" "$agent" false
    cat >>"$d/ocra.yaml" <<YAML
  registry: "127.0.0.1:$REGISTRY_PORT/ocra/$1"
  cache_dir: "$d/cache"
  sign_key: "$tmp/keys/sign.pem"
evm:
  rpc: ["$EVM_RPC_URL"]
  contract: "$contract"
  confirmations: 2
  from_block: 0
  poll_interval_ms: 500
  allow: ["$EVM_ADDR0"]
  key_file: "$d/operator.key"
run:
  docker_host: "$DOCKER_HOST"
daemon:
  workers: 2
  retry_base_ms: 500
  retry_max_ms: 5000
  poll_ms: 200
inventory:
  local: true
agent:
  socket_dir: "$d/agent"
YAML
    "$2" daemon -c "$d/ocra.yaml" >"$d/daemon.out" 2>"$d/daemon.log" &
    pids+=($!)
    echo "$2" >"$d/ocra"
    echo $! >"$d/pid"
}
daemon after "$ocra" "$EVM_KEY1" "$EVM_ADDR1"
daemons=(after)
if [ -n "$before" ]; then
    daemon before "$before" "$EVM_KEY2" "$EVM_ADDR2"
    daemons+=(before)
fi
sleep 3
for d in "${daemons[@]}"; do
    awk '/^VmRSS:/ { print $2 }' "/proc/$(cat "$tmp/$d/pid")/status" >"$tmp/$d/rss_idle"
done

# weights NAME MIB VERSION: a new random weight file; its spec in $tmp/spec-NAME.json
weights() {
    head -c $(($2 * 1048576)) /dev/urandom >"$tmp/art/$1.bin"
    build_spec "$tmp/spec-$1.json" "$3" "$1.bin" "$(sha256sum "$tmp/art/$1.bin" | cut -d' ' -f1)" \
        "$(stat -c %s "$tmp/art/$1.bin")"
}
# publish DAEMON SPEC NAME: the spec (its model named NAME) published to DAEMON's contract;
# sets t0 (ms) and tx
publish() {
    sed "s/\"name\": \"bm\"/\"name\": \"$3\"/" "$2" >"$tmp/$1/spec.json"
    tx=$("$(cat "$tmp/$1/ocra")" -c "$tmp/$1/ocra.yaml" publish --chain evm \
        --key-file "$tmp/keys/publisher.key" "$tmp/$1/spec.json")
    t0=$(date +%s%3N)
}
# follow DAEMON T0_MS TX OUT: waits until the event is reported, writes its lineage with t0 to
# OUT
follow() {
    python3 - "$(cat "$tmp/$1/ocra")" "$tmp/$1/ocra.yaml" "$2" "$3" "$4" "$(cat "$tmp/$1/pid")" \
        "$tmp/$1/journal.db" <<'PY'
import json, os, sqlite3, subprocess, sys, time
ocra, cfg, t0, tx, out, pid, journal = sys.argv[1:8]
def q(*a):
    r = subprocess.run([ocra, "-c", cfg, *a], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""
ev, deadline = None, time.time() + 600
while time.time() < deadline:
    os.kill(int(pid), 0)
    if ev is None:
        ev = next((json.loads(l)["event"] for l in q("events").splitlines()
                   if json.loads(l).get("txHash", "").lower() == tx.lower()), None)
    if ev:
        doc = json.loads(q("lineage", "--json", ev) or "{}")
        p = doc.get("pipeline") or {}
        if p.get("state") in ("dead", "failed") or (p.get("status") == "reported" and p.get("state") == "done"):
            doc["t0Ms"] = int(t0)
            # when the watcher journaled it: `ocra lineage` does not print it, the journal has it
            db = sqlite3.connect("file:%s?mode=ro" % journal, uri=True)
            doc["observedMs"] = db.execute("SELECT observed_ms FROM events WHERE id = ?", (ev,)).fetchone()[0]
            db.close()
            json.dump(doc, open(out, "w"))
            sys.exit(0 if p.get("outcome") == "completed" else 1)
    time.sleep(0.2)
sys.exit("publish_to_run: the event of tx %s did not reach its report" % tx)
PY
}
# upload NAME: ms to upload the weight file NAME as one blob to the registry (the baseline)
r=127.0.0.1:$REGISTRY_PORT
upload() {
    local t loc sep sha
    sha=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["artifact"]["sha256"])' \
        "$tmp/spec-$1.json")
    t=$(date +%s%3N)
    loc=$(curl -sf -X POST -D - -o /dev/null "http://$r/v2/ocra/upload/blobs/uploads/" |
        tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
    case $loc in /*) loc="http://$r$loc" ;; esac
    case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T "$tmp/art/$1.bin" \
        "$loc${sep}digest=sha256:$sha" -o /dev/null
    echo $(($(date +%s%3N) - t))
}

weights first 1 1.0.0
for d in "${daemons[@]}"; do
    publish "$d" "$tmp/spec-first.json" bench-first
    follow "$d" "$t0" "$tx" "$tmp/$d/first.json"
done
n=0
for mib in "${sizes[@]}"; do
    for i in $(seq "$k"); do
        n=$((n + 1))
        weights "u$mib-$i" "$mib" "1.$mib.$i"
        order=("${daemons[@]}")
        [ $((n % 2)) -eq 0 ] && [ ${#daemons[@]} -eq 2 ] && order=(before after)
        for d in "${order[@]}"; do
            publish "$d" "$tmp/spec-u$mib-$i.json" bench
            follow "$d" "$t0" "$tx" "$tmp/$d/u$mib-$i.json"
        done
        upload "u$mib-$i" >"$tmp/upload-u$mib-$i"
        rm -f "$tmp/art/u$mib-$i.bin"
    done
done
for d in "${daemons[@]}"; do
    awk '/^VmHWM:/ { print $2 }' "/proc/$(cat "$tmp/$d/pid")/status" >"$tmp/$d/rss_peak"
done

python3 - "$tmp" "$k" "$(nproc)" "${#daemons[@]}" "${sizes[@]}" <<'PY'
import datetime, json, statistics, sys
tmp, k, cpus, nd, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5:]
daemons = ["after", "before"][:nd]
def ms(iso):
    return int(datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000 + 0.5)
def split(doc):
    rows = [s for s in doc["stages"] if s.get("outcome") == "done"]
    t0, seen = doc["t0Ms"], doc["observedMs"]
    r = {"finality+watch": seen - t0, "queue": ms(rows[0]["startedAt"]) - seen}
    gaps = 0
    for a, b in zip(rows, rows[1:]):
        gaps += ms(b["startedAt"]) - ms(a["finishedAt"])
    for s in rows:
        r[s["stage"]] = ms(s["finishedAt"]) - ms(s["startedAt"])
    r["gaps"] = gaps
    end = {s["stage"]: ms(s["finishedAt"]) for s in rows}
    r["publish->container started"] = end["run"] - t0
    r["journaled->container started"] = end["run"] - seen
    r["publish->reported"] = end["report"] - t0
    return r
def outputs(doc, stage):
    return next((s.get("output") or {} for s in doc["stages"] if s["stage"] == stage and s.get("outcome") == "done"), {})
print("bench/publish_to_run: %s CPUs; t0 = `ocra publish` returned (tx mined); 2 confirmations, a block a second" % cpus)
med = {}
for d in daemons:
    first = split(json.load(open("%s/%s/first.json" % (tmp, d))))
    print("\n== %s (%s)" % (d, open("%s/%s/ocra" % (tmp, d)).read().strip()))
    print("first publish: toolchain %d ms, publish->container started %d ms, publish->reported %d ms"
          % (first["toolchain"], first["publish->container started"], first["publish->reported"]))
    for mib in sizes:
        docs = [json.load(open("%s/%s/u%s-%d.json" % (tmp, d, mib, i))) for i in range(1, k + 1)]
        runs = [split(x) for x in docs]
        up = [int(open("%s/upload-u%s-%d" % (tmp, mib, i)).read()) for i in range(1, k + 1)]
        total = statistics.median(r["publish->reported"] for r in runs)
        print("\nweight-only update, %s MiB, %d updates (ms)" % (mib, k))
        print("%-30s %8s %8s %8s %7s" % ("stage", "median", "min", "max", "share"))
        for key in runs[0]:
            v = [r[key] for r in runs]
            print("%-30s %8d %8d %8d %6.1f%%" % (key, statistics.median(v), min(v), max(v), 100.0 * statistics.median(v) / total))
        print("%-30s %8d %8d %8d" % ("weight upload (curl)", statistics.median(up), min(up), max(up)))
        # whether the push stage handed the image to the engine, and what the run stage's pull fetched
        loaded = sum(1 for x in docs if outputs(x, "push").get("engine") == "loaded")
        pulled = [outputs(x, "run").get("layersPulled") for x in docs]
        pulled = [p for p in pulled if p is not None]
        print("engine loaded by the push stage: %d of %d; layers the run stage pulled: %s"
              % (loaded, k, " ".join(map(str, pulled)) if pulled else "not reported"))
        j = statistics.median(r["journaled->container started"] for r in runs)
        goal = statistics.median(up) + 2000
        print("goal: journaled->container started %d ms <= weight upload + 2 s = %d ms: %s (%+d ms)"
              % (j, goal, "met" if j <= goal else "missed", j - goal))
        med[(d, mib)] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    idle = int(open("%s/%s/rss_idle" % (tmp, d)).read())
    peak = int(open("%s/%s/rss_peak" % (tmp, d)).read())
    print("\ndaemon resident set: idle %.1f MiB, peak %.1f MiB (VmHWM, after all updates)" % (idle / 1024, peak / 1024))
if nd == 2:
    print("\nafter against before, medians (ms) and after/before")
    for mib in sizes:
        for key in ("push", "run", "journaled->container started", "publish->container started"):
            a, b = med[("after", mib)][key], med[("before", mib)][key]
            print("%5s MiB  %-30s %8d %8d  %6.2fx" % (mib, key, a, b, a / b if b else float("nan")))
PY
