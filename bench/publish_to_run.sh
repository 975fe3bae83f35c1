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
# Needs root, docker.io, docker-registry, the npm tools (scripts/install-npm-tools), python3.
set -euo pipefail
ocra=$(realpath "${1:?usage: publish_to_run.sh OCRA OCRA_AGENT [K] [SIZE_MIB...]}")
agent=$(realpath "${2:?usage: publish_to_run.sh OCRA OCRA_AGENT [K] [SIZE_MIB...]}")
k=${3:-5}
shift $(($# < 3 ? $# : 3))
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 256)
cd "$(dirname "$0")/.."
. tests/lib/dockerd.sh
. tests/lib/pyindex.sh
. tests/lib/registry.sh
. tests/lib/anvil.sh
. tests/lib/build_env.sh
evm_tools_or_skip
export DOCKER_BUILDKIT=0

tmp=$(mktemp -d /tmp/ocra-bptr.XXXXXX)
daemon_pid=
cleanup() {
    set +e
    if [ -n "$daemon_pid" ]; then
        kill -TERM "$daemon_pid"
        wait "$daemon_pid"
    fi
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
contract=$("$CAST" send --json --rpc-url "$EVM_RPC_URL" --private-key "$EVM_KEY0" \
    --create "0x$(cat contracts/ModelRegistry.bin)" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["contractAddress"])')
"$CAST" send -q --rpc-url "$EVM_RPC_URL" --private-key "$EVM_KEY0" "$contract" \
    "setReporter(address,bool)" "$EVM_ADDR1" true >/dev/null
umask 077
printf '%s\n' "${EVM_KEY0#0x}" >"$tmp/keys/publisher.key"
printf '%s\n' "${EVM_KEY1#0x}" >"$tmp/keys/operator.key"
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/keys/sign.pem" 2>/dev/null
umask 022

# the demo's configuration: build_config's journal, spec, plan and build keys, then the rest
cfg=$tmp/ocra.yaml
build_config "$cfg" "$tmp/journal.db" "$agent" false
cat >>"$cfg" <<YAML
  registry: "127.0.0.1:$REGISTRY_PORT/ocra/bench"
  cache_dir: "$tmp/cache"
  sign_key: "$tmp/keys/sign.pem"
evm:
  rpc: ["$EVM_RPC_URL"]
  contract: "$contract"
  confirmations: 2
  from_block: 0
  poll_interval_ms: 500
  allow: ["$EVM_ADDR0"]
  key_file: "$tmp/keys/operator.key"
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
  socket_dir: "$tmp/agent"
YAML
"$ocra" daemon -c "$cfg" >"$tmp/daemon.out" 2>"$tmp/daemon.log" &
daemon_pid=$!
sleep 3
rss_idle=$(awk '/^VmRSS:/ { print $2 }' "/proc/$daemon_pid/status")

# publish NAME VERSION MIB: a new weight file, its spec published; sets t0 (ms) and tx
n=0
publish() {
    n=$((n + 1))
    head -c $(($3 * 1048576)) /dev/urandom >"$tmp/art/w$n.bin"
    build_spec "$tmp/spec$n.json" "$2" "w$n.bin" "$(sha256sum "$tmp/art/w$n.bin" | cut -d' ' -f1)" \
        "$(stat -c %s "$tmp/art/w$n.bin")"
    sed -i "s/\"name\": \"bm\"/\"name\": \"$1\"/" "$tmp/spec$n.json"
    tx=$("$ocra" -c "$cfg" publish --chain evm --key-file "$tmp/keys/publisher.key" "$tmp/spec$n.json")
    t0=$(date +%s%3N)
}
# follow T0_MS TX OUT: waits until the event is reported, writes its lineage with t0 to OUT
follow() {
    python3 - "$ocra" "$cfg" "$1" "$2" "$3" "$daemon_pid" "$tmp/journal.db" <<'PY'
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

publish bench-first 1.0.0 1
follow "$t0" "$tx" "$tmp/first.json"
for mib in "${sizes[@]}"; do
    for i in $(seq "$k"); do
        publish bench "1.$mib.$i" "$mib"
        follow "$t0" "$tx" "$tmp/u$mib-$i.json"
    done
done
rss_peak=$(awk '/^VmHWM:/ { print $2 }' "/proc/$daemon_pid/status")

python3 - "$tmp" "$k" "$rss_idle" "$rss_peak" "$(nproc)" "${sizes[@]}" <<'PY'
import datetime, json, statistics, sys
tmp, k, idle, peak, cpus, sizes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6:]
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
first = split(json.load(open("%s/first.json" % tmp)))
print("bench/publish_to_run: %s CPUs; t0 = `ocra publish` returned (tx mined); 2 confirmations, a block a second" % cpus)
print("first publish (toolchain built): toolchain %d ms, publish->container started %d ms, publish->reported %d ms"
      % (first["toolchain"], first["publish->container started"], first["publish->reported"]))
def outputs(doc, stage):
    return next((s.get("output") or {} for s in doc["stages"] if s["stage"] == stage and s.get("outcome") == "done"), {})
for mib in sizes:
    docs = [json.load(open("%s/u%s-%d.json" % (tmp, mib, i))) for i in range(1, k + 1)]
    runs = [split(d) for d in docs]
    total = statistics.median(r["publish->reported"] for r in runs)
    print("\nweight-only update, %s MiB, %d updates (ms)" % (mib, k))
    print("%-30s %8s %8s %8s %7s" % ("stage", "median", "min", "max", "share"))
    for key in runs[0]:
        v = [r[key] for r in runs]
        print("%-30s %8d %8d %8d %6.1f%%" % (key, statistics.median(v), min(v), max(v), 100.0 * statistics.median(v) / total))
    # whether the push stage handed the image to the engine, and what the run stage's pull fetched
    loaded = sum(1 for d in docs if outputs(d, "push").get("engine") == "loaded")
    pulled = [outputs(d, "run").get("layersPulled") for d in docs]
    pulled = [p for p in pulled if p is not None]
    print("engine loaded by the push stage: %d of %d; layers the run stage pulled: %s"
          % (loaded, k, " ".join(map(str, pulled)) if pulled else "not reported"))
print("\ndaemon resident set: idle %.1f MiB, peak %.1f MiB (VmHWM, after all updates)" % (idle / 1024, peak / 1024))
PY
