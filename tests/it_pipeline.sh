#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_pipeline.sh OCRA OCRA_AGENT: `ocra daemon` through every stage (validate, plan, toolchain,
# push, sign, allocate, run, complete, report) against real services on 127.0.0.1: a private
# dockerd with the cached base image, a docker-registry, anvil with the ModelRegistry contract,
# the offline package index and an artifact server (the setup of scripts/demo, shared through
# tests/lib/pipeline.sh). Checked:
#  1. end to end: `ocra publish` -> reported/completed; the StatusReported log read back with
#     cast (completed, exit code 0); the lineage has the 9 stages done once; the image is in
#     the registry by the lineage's digest with tags <modelVersion> and evt-<short id>;
#     `ocra verify` passes with the signing key's public key; the push stage handed the image
#     to the engine (docker load beside the upload) and the run stage's pull downloaded no
#     layer; an update below build.engine_load_min_mib (3 MiB here) is not handed over and its
#     run stage pulls; with the toolchain image removed from the engine, the next version is
#     not handed over and its run stage pulls its layers;
#  2. supersession: 1.0.0 and 1.0.1 of one model published while the daemon is stopped -> only
#     1.0.1 runs; 1.0.0 ends superseded, is reported so, and no container was made for it;
#  3. crash safety: N weight-only updates published while the daemon is SIGKILLed at random
#     moments and restarted: every event terminal once, one image manifest (evt-* tag), one
#     container and one on-chain report per event, none lost (N is 50 unless one event takes
#     so long that 50 would need more than about 8 minutes; the test says which N and why);
#  4. an artifact whose sha256 does not match ends rejected without blocking the next event;
#     its on-chain reason tells nothing of what the artifact server answered (the journal has it);
#  5. the registry stopped mid-pipeline (before the event's toolchain stage): the daemon
#     retries and the event completes once it is back;
#  6. (it_pipeline_faults, sections "1 6 7") the chain RPC answering 503 for a while
#     (tests/lib/rpcproxy.py --fail-file): the event completes, reported once, the daemon runs on;
#  7. (it_pipeline_faults) the Docker engine restarted while the daemon's toolchain build is in
#     `pip install` (the index holds the wheel: tests/lib/pyindex.py --hold-file): the toolchain
#     stage retries, the event completes, reported once.
# The third argument picks the sections (default "1 4 5 2 3": ctest it_pipeline).
# Exits 77 (skip) with the reason when docker, the registry or the EVM tools cannot run here.
# Stops everything it started, by PID.
set -u
ocra=${1:?usage: it_pipeline.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT [SECTIONS]}
agent=${2:?usage: it_pipeline.sh PATH_TO_OCRA PATH_TO_OCRA_AGENT [SECTIONS]}
# SECTIONS: which of the numbered sections below run, in their order in this file (1 starts
# the daemon; the default is the pipeline test, "1 6 7" the faults test: it_pipeline_faults)
sections=" ${3:-1 4 5 2 3} "
want() { case $sections in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
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

# shellcheck disable=SC2317 # called by the EXIT trap
pipeline_test_cleanup() {
    [ -n "${proxy_pid:-}" ] && kill "$proxy_pid" 2>/dev/null
    pipeline_daemon_kill
}
pipeline_test_begin it_pipeline ocra-pipe
pipeline_config "$tmp/ocra.yaml" "$contract" "$registry/ocra/pipe" "$agent" "$(registry_free_port)" \
    "daemon:
  workers: 2
  max_attempts: 40
  retry_base_ms: 300
  retry_max_ms: 2000
  lease_ms: 3000
  poll_ms: 200"
# images of 3 MiB or more are handed to the engine as they are pushed, smaller ones are not
sed -i 's|^  sign_key: keys/sign.pem$|&\n  engine_load_min_mib: 3|' "$tmp/ocra.yaml"
grep -q '^  engine_load_min_mib: 3$' "$tmp/ocra.yaml" || { fail services "no build.engine_load_min_mib in $tmp/ocra.yaml"; finish; }
ok services

start_daemon() {
    "$ocra" daemon -c "$tmp/ocra.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
    daemon_pid=$!
}
# weights DIR: a fresh weight file DIR/model.safetensors on the artifact server; sets sha, size
weights() {
    mkdir -p "$tmp/art/$1"
    head -c "${2:-200000}" /dev/urandom >"$tmp/art/$1/model.safetensors"
    sha=$(sha256sum "$tmp/art/$1/model.safetensors" | cut -d' ' -f1)
    size=$(stat -c %s "$tmp/art/$1/model.safetensors")
}
# publish NAME VERSION DIR [SHA]: prints the tx hash
publish() {
    pipeline_spec "$tmp/spec.json" "$1" "$2" "$3/model.safetensors" "${4:-$sha}" "$size"
    "$ocra" -c "$tmp/ocra.yaml" publish --chain evm --key-file "$tmp/keys/publisher.key" \
        "$tmp/spec.json" 2>>"$tmp/publish.err"
}
events() { "$ocra" -c "$tmp/ocra.yaml" events 2>/dev/null; }
# event_of TX: the event id journaled for the transaction
event_of() { pipeline_event_of "$ocra" "$tmp/ocra.yaml" "$1"; }
# pipe ID EXPR: a Python expression over p (the event's pipeline object)
pipe() { pipeline_get "$ocra" "$tmp/ocra.yaml" "$1" "$2"; }
# wait_event TX [SECONDS]: the tx's event id, once it is terminal
wait_event() { pipeline_wait_event "$ocra" "$tmp/ocra.yaml" "$1" "$daemon_pid" "${2:-900}"; }
short_of() { printf '%s' "$1" | sha256sum | cut -c1-12; }
key_of() { evm_event_key "$1"; }
containers_of() { docker ps -aq --filter "label=io.ocra.event-id=$1" | wc -l; }
tags_of() { curl -s "$REGISTRY_URL/v2/$1/tags/list" | python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin).get("tags") or []))'; }

if want 1; then
# --- 1. end to end ---------------------------------------------------------------------------
start_daemon
weights e2e 4000000
t1=$SECONDS
tx=$(publish e2e-model 1.0.0 e2e) || { fail publish "ocra publish failed: $(tail -3 "$tmp/publish.err")"; finish; }
id=$(wait_event "$tx")
one_event_s=$((SECONDS - t1))
echo "  one event (toolchain built, not cached): ${one_event_s} s"
if [ -z "$id" ]; then
    fail e2e_reported "the event of $tx was never journaled"
    finish
fi
"$ocra" -c "$tmp/ocra.yaml" lineage --json "$id" >"$tmp/lineage.json"
evm_reports "$contract" >"$tmp/reports"
python3 - "$tmp/lineage.json" "$tmp/reports" "$EVM_ADDR1" >"$tmp/e2e.out" <<'PY'
import hashlib, json, sys
doc = json.load(open(sys.argv[1]))
reports = [l.split(" ", 2) for l in open(sys.argv[2]).read().splitlines()]
p = doc["pipeline"]
def check(name, cond, why):
    print(("ok " if cond else "FAIL ") + name + ("" if cond else ": " + why))
check("e2e_reported_completed", p.get("status") == "reported" and p.get("outcome") == "completed", json.dumps(p))
want = ["validate", "plan", "toolchain", "push", "sign", "allocate", "run", "complete", "report"]
done = [s["stage"] for s in doc.get("stages", []) if s.get("outcome") == "done"]
check("e2e_nine_stages_done_once", done == want, " ".join(done))
key = "0x" + hashlib.sha256(doc["event"]["event"].encode()).hexdigest()
mine = [r for r in reports if r[0].lower() == key]
check("e2e_one_report_on_chain", len(mine) == 1, "%d StatusReported logs for %s" % (len(mine), key))
st = json.loads(mine[0][2]) if mine else {}
check("e2e_report_by_operator", bool(mine) and mine[0][1].lower() == sys.argv[3].lower(), str(mine))
check("e2e_report_status_completed", st.get("status") == "completed", json.dumps(st))
check("e2e_report_exit_code_0", st.get("exitCode") == 0, json.dumps(st))
push = next((s.get("output") or {} for s in doc["stages"] if s["stage"] == "push" and s.get("outcome") == "done"), {})
run = next((s.get("output") or {} for s in doc["stages"] if s["stage"] == "run" and s.get("outcome") == "done"), {})
tc = next((s.get("output") or {} for s in doc["stages"] if s["stage"] == "toolchain" and s.get("outcome") == "done"), {})
# the engine that runs it was handed the image while it was pushed: its pull downloads nothing
check("e2e_engine_loaded_while_pushed", push.get("engine") == "loaded", json.dumps(push))
check("e2e_run_pulled_no_layer", run.get("layersPulled") == 0, json.dumps(run))
print("PUSH %s %s %s" % (push.get("repo"), push.get("digest"), tc.get("toolchain")))
PY
while read -r word rest; do
    case $word in
    ok) ok "$rest" ;;
    FAIL) fail "${rest%%:*}" "${rest#*: }" ;;
    PUSH) read -r repo digest tc_ref <<<"$rest" ;;
    esac
done <"$tmp/e2e.out"
path=${repo#"$registry"/}
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$REGISTRY_URL/v2/$path/manifests/$digest")
[ "$code" = 200 ] && ok e2e_image_in_registry_by_digest || fail e2e_image_in_registry_by_digest "GET $path@$digest: HTTP $code"
tags=$(tags_of "$path")
case " $tags " in *" 1.0.0 "*) ok e2e_tag_version ;; *) fail e2e_tag_version "tags: $tags" ;; esac
case " $tags " in *" evt-$(short_of "$id") "*) ok e2e_tag_evt ;; *) fail e2e_tag_evt "tags: $tags (event $id)" ;; esac
for t in 1.0.0 "evt-$(short_of "$id")"; do
    d=$(curl -s -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "$REGISTRY_URL/v2/$path/manifests/$t" | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
    [ "$d" = "$digest" ] && ok "e2e_tag_${t%%-*}_names_digest" || fail "e2e_tag_${t%%-*}_names_digest" "$t -> $d, want $digest"
done
if expect e2e_verify 0 "$ocra" -c "$tmp/ocra.yaml" verify "$registry/$path@$digest" --key "$tmp/keys/sign.pub.pem"; then
    ok e2e_verify
fi
[ "$(containers_of "$id")" -eq 1 ] && ok e2e_one_container || fail e2e_one_container "$(containers_of "$id") containers"

# an image below build.engine_load_min_mib (3 MiB) is not handed to the engine: its run stage pulls
weights e2e1 1000000
tx=$(publish e2e-model 1.0.1 e2e1) || { fail publish "ocra publish failed: $(tail -3 "$tmp/publish.err")"; finish; }
id1=$(wait_event "$tx")
if [ -n "$id1" ]; then
    out='next((s.get("output") or {} for s in d["stages"] if s["stage"] == "%s" and s.get("outcome") == "done"), {})'
    # shellcheck disable=SC2059 # the stage's name into the expression
    got=$(pipe "$id1" "str(p.get('outcome')) + '|' + str($(printf "$out" push).get('engine')) + '|' + str($(printf "$out" run).get('layersPulled'))")
    case $got in
    "completed|not loaded: below build.engine_load_min_mib|"[1-9]*) ok e2e_small_update_not_loaded ;;
    *) fail e2e_small_update_not_loaded "outcome|engine|layersPulled: $got" ;;
    esac
else
    fail e2e_small_update_not_loaded "the event of $tx was never journaled"
fi

# an engine without the toolchain image is not handed the next version: its run stage pulls
docker rmi -f "$(docker image inspect --format '{{.Id}}' "$tc_ref")" >/dev/null 2>&1
weights e2e2 2000000
tx=$(publish e2e-model 1.0.2 e2e2) || { fail publish "ocra publish failed: $(tail -3 "$tmp/publish.err")"; finish; }
id2=$(wait_event "$tx")
if [ -n "$id2" ]; then
    out='next((s.get("output") or {} for s in d["stages"] if s["stage"] == "%s" and s.get("outcome") == "done"), {})'
    # shellcheck disable=SC2059 # the stage's name into the expression
    got=$(pipe "$id2" "str(p.get('outcome')) + '|' + str($(printf "$out" push).get('engine')) + '|' + str($(printf "$out" run).get('layersPulled'))")
    case $got in
    "completed|not loaded: the engine lacks the toolchain image|"[1-9]*) ok e2e_without_toolchain_run_pulls ;;
    *) fail e2e_without_toolchain_run_pulls "outcome|engine|layersPulled: $got" ;;
    esac
else
    fail e2e_without_toolchain_run_pulls "the event of $tx was never journaled"
fi

fi # section 1

if want 4; then
# --- 4. a permanently failing event does not block the next ---------------------------------
weights bad
served=$sha # what the artifact server answers, which is not what the spec names
tx_bad=$(publish bad-model 1.0.0 bad "$(printf '0%.0s' $(seq 64))")
weights good
tx_good=$(publish good-model 1.0.0 good)
id_bad=$(wait_event "$tx_bad")
id_good=$(wait_event "$tx_good")
if [ -n "$id_bad" ]; then
    r=$(pipe "$id_bad" 'p.get("state") + "/" + str(p.get("status")) + "/" + str(p.get("outcome"))')
    case $r in dead/* | done/reported/rejected) ok bad_artifact_rejected_or_dead ;;
    *) fail bad_artifact_rejected_or_dead "pipeline $r" ;; esac
    "$ocra" -c "$tmp/ocra.yaml" lineage --json "$id_bad" | grep -q 'sha256' &&
        ok bad_artifact_reason_names_sha256 || fail bad_artifact_reason_names_sha256 "no sha256 in its lineage"
    # on-chain, the reason says what the spec got wrong in fixed words, never what the
    # artifact's server answered (its digest, size or status: an oracle on what the daemon
    # reaches); the journal keeps the details for the operator
    if [ "$r" = done/reported/rejected ]; then
        st=$(evm_reports "$contract" | awk -v k="$(key_of "$id_bad")" 'tolower($1) == k { $1 = $2 = ""; print }')
        case $st in
        *"$served"* | *" got "* | *mismatch*) fail bad_artifact_report_tells_nothing_served "on-chain: $st" ;;
        *"is not the artifact"*) ok bad_artifact_report_tells_nothing_served ;;
        *) fail bad_artifact_report_tells_nothing_served "on-chain: '$st'" ;;
        esac
        "$ocra" -c "$tmp/ocra.yaml" lineage --json "$id_bad" | grep -q "got $served" &&
            ok bad_artifact_detail_in_journal || fail bad_artifact_detail_in_journal "no 'got $served' in its lineage"
    fi
    [ "$(containers_of "$id_bad")" -eq 0 ] && ok bad_artifact_no_container || fail bad_artifact_no_container "$(containers_of "$id_bad")"
else
    fail bad_artifact_rejected_or_dead "never terminal"
fi
if [ -n "$id_good" ] && [ "$(pipe "$id_good" 'p.get("outcome")')" = completed ]; then
    ok next_event_completes
else
    fail next_event_completes "event ${id_good:-?}: $(pipe "${id_good:-x}" 'json.dumps(p)' 2>&1)"
fi

fi # section 4

if want 5; then
# --- 5. the registry stopped mid-pipeline ---------------------------------------------------
weights fault
tx=$(publish fault-model 1.0.0 fault)
# stop the registry at once: validate and plan need none, the toolchain stage does. (Its
# toolchain is in the registry since section 1, shared by every model of the hash: the stages
# that need the registry take a moment, too short to stop it in between.)
kill "${REGISTRY_PIDS[0]}" && wait "${REGISTRY_PIDS[0]}" 2>/dev/null
REGISTRY_PIDS=()
# wait until the daemon has met the outage (an attempt failed and waits), then bring it back
met=no fid= e=
for _ in $(seq 240); do
    [ -n "$fid" ] || fid=$(event_of "$tx")
    # an attempt failed on the stopped registry: the event keeps the error while it retries
    [ -n "$fid" ] && e=$(pipe "$fid" 'p.get("state") + " " + str(p.get("error"))')
    case $e in done*) break ;; "" | *" None") ;; *) met=yes; break ;; esac
    sleep 0.5
done
echo "  registry down; the event: $e"
docker-registry serve "$tmp/reg/config.yml" >>"$tmp/reg/registry.log" 2>&1 &
REGISTRY_PIDS=($!)
wait_until "the registry is back" curl -s -o /dev/null -m 2 "$REGISTRY_URL/v2/"
fid=$(wait_event "$tx")
if [ -n "$fid" ] && [ "$(pipe "$fid" 'p.get("outcome")')" = completed ]; then
    ok registry_outage_event_completes
else
    fail registry_outage_event_completes "$(pipe "${fid:-x}" 'json.dumps(p)' 2>&1)"
fi
[ "$met" = yes ] && ok registry_outage_waited_and_retried ||
    fail registry_outage_waited_and_retried "the event never waited on the stopped registry (state: $e)"

fi # section 5

if want 2; then
# --- 2. supersession -----------------------------------------------------------------------
kill -TERM "$daemon_pid" && wait "$daemon_pid"
daemon_pid=
weights sup0
tx0=$(publish sup-model 1.0.0 sup0)
weights sup1
tx1=$(publish sup-model 1.0.1 sup1)
# both confirmed (evm.confirmations: 2) before the daemon starts: it journals them together
b1=$("$CAST" receipt --rpc-url "$EVM_RPC_URL" "$tx1" blockNumber)
confirmed() { [ "$("$CAST" block-number --rpc-url "$EVM_RPC_URL")" -ge $((b1 + 3)) ]; }
wait_until "1.0.1 confirmed" confirmed
start_daemon
id1=$(wait_event "$tx1")
id0=$(wait_event "$tx0")
if [ -n "$id0" ] && [ -n "$id1" ]; then
    [ "$(pipe "$id1" 'p.get("outcome")')" = completed ] && ok supersede_newer_completes ||
        fail supersede_newer_completes "$(pipe "$id1" 'json.dumps(p)')"
    [ "$(pipe "$id0" 'p.get("outcome")')" = superseded ] && ok supersede_older_superseded ||
        fail supersede_older_superseded "$(pipe "$id0" 'json.dumps(p)')"
    [ "$(containers_of "$id1")" -eq 1 ] && ok supersede_newer_one_container || fail supersede_newer_one_container "$(containers_of "$id1")"
    [ "$(containers_of "$id0")" -eq 0 ] && ok supersede_older_no_container || fail supersede_older_no_container "$(containers_of "$id0")"
    st=$(evm_reports "$contract" | awk -v k="$(key_of "$id0")" 'tolower($1) == k { $1 = $2 = ""; print }')
    case $st in *superseded*) ok supersede_older_reported ;; *) fail supersede_older_reported "on-chain: $st" ;; esac
else
    fail supersession "events not terminal: ${id0:-?} ${id1:-?}"
fi

fi # section 2

if want 3; then
# --- 3. crash safety --------------------------------------------------------------------------
# one weight-only update on a cached toolchain, timed, to size the loop
weights c0
t1=$SECONDS
wait_event "$(publish crash-m0 1.0.0 c0)" >/dev/null
per=$((SECONDS - t1))
[ "$per" -gt 0 ] || per=1
n=50
if [ $((per * 50 / 2)) -gt 480 ]; then # two workers
    n=$((480 * 2 / per))
    [ "$n" -ge 5 ] || n=5
    echo "  crash loop: $n events, not 50: one weight-only update takes ${per} s here (50 would take about $((per * 25)) s)"
else
    echo "  crash loop: 50 events (one weight-only update takes ${per} s here)"
fi
before=$(events | wc -l)
kills=0 published=0
: >"$tmp/crash.tx"
for i in $(seq 1 "$n"); do
    weights "c$i" 100000
    if t=$(publish "crash-m$((i % 4))" "1.$i.0" "c$i"); then
        echo "$t" >>"$tmp/crash.tx"
        published=$((published + 1))
    fi
    if [ $((RANDOM % 3)) -eq 0 ]; then
        sleep "$((RANDOM % 3)).$((RANDOM % 10))"
        pipeline_daemon_kill
        kills=$((kills + 1))
        start_daemon
    fi
done
sleep "$((RANDOM % 3)).$((RANDOM % 10))"
pipeline_daemon_kill
kills=$((kills + 1))
start_daemon
# every published event journaled (the restarted watcher may still be catching up on the last
# blocks) and every journaled event terminal
all_terminal() {
    [ "$(events | python3 -c '
import json, sys
ev = [json.loads(l)["pipeline"] for l in sys.stdin]
open_ = sum(1 for p in ev if not ((p["status"] == "reported" and p["state"] == "done") or p["state"] == "dead"))
print(open_ if len(ev) >= int(sys.argv[1]) else -1)' "$((before + published))")" -eq 0 ]
}
for _ in $(seq 60); do all_terminal && break; sleep 10; done
kill -TERM "$daemon_pid" && wait "$daemon_pid"
daemon_pid=
events >"$tmp/final.jsonl"
evm_reports "$contract" >"$tmp/reports"
docker ps -a --format '{{.Label "io.ocra.event-id"}}' >"$tmp/containers"
tags=$(tags_of ocra/pipe/crash-m0; tags_of ocra/pipe/crash-m1; tags_of ocra/pipe/crash-m2; tags_of ocra/pipe/crash-m3)
printf '%s\n' $tags | grep '^evt-' >"$tmp/evt-tags"
python3 - "$tmp/final.jsonl" "$tmp/reports" "$tmp/containers" "$tmp/evt-tags" "$tmp/crash.tx" \
    "$tmp/journal.db" "$before" "$published" "$kills" >"$tmp/crash.out" <<'PY'
import collections, hashlib, json, sqlite3, sys
events = [json.loads(l) for l in open(sys.argv[1])]
reports = collections.Counter(l.split(" ", 1)[0].lower() for l in open(sys.argv[2]).read().splitlines())
containers = collections.Counter(l.strip() for l in open(sys.argv[3]) if l.strip())
tags = collections.Counter(l.strip() for l in open(sys.argv[4]) if l.strip())
txs = set(l.strip().lower() for l in open(sys.argv[5]) if l.strip())
db = sqlite3.connect(sys.argv[6])
before, published, kills = int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
ok = True
def check(name, cond, why):
    global ok
    print(("ok " if cond else "FAIL ") + name + ("" if cond else ": " + str(why)[:600]))
    ok = ok and bool(cond)
ids = [e["event"] for e in events]
check("crash_journal_no_duplicate", len(ids) == len(set(ids)), "an event journaled twice")
mine = [e for e in events if e.get("txHash", "").lower() in txs]
check("crash_no_event_lost", len(mine) == published and len(events) == before + published,
      "journal %d (%d of the loop), published %d" % (len(events), len(mine), published))
term = [e for e in mine if (e["pipeline"]["status"] == "reported" and e["pipeline"]["state"] == "done")]
check("crash_every_event_terminal", len(term) == len(mine),
      [e["pipeline"] for e in mine if e not in term][:3])
short = lambda i: hashlib.sha256(i.encode()).hexdigest()[:12]
key = lambda i: "0x" + hashlib.sha256(i.encode()).hexdigest()
completed = [e for e in mine if e["pipeline"].get("outcome") == "completed"]
superseded = [e for e in mine if e["pipeline"].get("outcome") == "superseded"]
# the agent in the container refuses to start a version superseded on-chain meanwhile (exit 75):
# the event ends superseded (the complete stage reads the agent's refusal), its one container
# created
def refused(i):
    r = db.execute("SELECT output FROM stages WHERE event_id = ? AND stage = 'complete' AND outcome = 'done'", (i,)).fetchone()
    return bool(r and r[0] and json.loads(r[0]).get("exitCode") == 75)
refusals = [e for e in mine if e["pipeline"].get("outcome") == "superseded" and refused(e["event"])]
superseded = [e for e in superseded if e not in refusals]
other = [e for e in mine if e not in completed and e not in superseded and e not in refusals]
check("crash_outcomes_completed_refused_or_superseded", not other, [e["pipeline"] for e in other][:3])
bad_rep = [e["event"] for e in mine if reports[key(e["event"])] != 1]
check("crash_one_report_per_event", not bad_rep, [(i, reports[key(i)]) for i in bad_rep][:5])
bad_img = [e["event"] for e in completed if tags["evt-" + short(e["event"])] != 1]
check("crash_one_image_per_run_event", not bad_img, bad_img[:5])
bad_run = [e["event"] for e in completed + refusals if containers[e["event"]] != 1]
check("crash_one_container_per_run_event", not bad_run, [(i, containers[i]) for i in bad_run][:5])
sup_run = [e["event"] for e in superseded if containers[e["event"]] > 1]
check("crash_superseded_at_most_one_container", not sup_run, sup_run[:5])
done = collections.Counter(db.execute("SELECT event_id || ' ' || stage FROM stages WHERE outcome = 'done'").fetchall())
twice = [k for k, n in done.items() if n != 1]
check("crash_every_stage_done_at_most_once", not twice, twice[:5])
abandoned = db.execute("SELECT count(*) FROM stages WHERE outcome = 'abandoned'").fetchone()[0]
print("  crash loop: %d SIGKILLs; %d published, %d journaled once, all terminal; %d completed "
      "(%d evt-* manifests, %d containers for them), %d refused by the agent as superseded "
      "on-chain (exit 75, one container each), %d superseded (%d containers); %d on-chain "
      "reports for them; %d attempts abandoned by a kill" % (
      kills, published, len(mine), len(completed), sum(tags["evt-" + short(e["event"])] for e in completed),
      sum(containers[e["event"]] for e in completed), len(refusals), len(superseded),
      sum(containers[e["event"]] for e in superseded), sum(reports[key(e["event"])] for e in mine), abandoned))
PY
while read -r word rest; do
    case $word in
    ok) ok "$rest" ;;
    FAIL) fail "${rest%%:*}" "${rest#*: }" ;;
    *) echo "$word $rest" ;;
    esac
done <"$tmp/crash.out"
fi # section 3

if want 6; then
# --- 6. the chain RPC failing for a while (the faults test) ---------------------------------
# The daemon reads the chain and sends its report through tests/lib/rpcproxy.py, which answers
# 503 while $tmp/rpc-down exists; the publish goes to anvil directly.
python3 tests/lib/rpcproxy.py --upstream "$EVM_RPC_URL" --max-range 1000000 \
    --ready-file "$tmp/proxy.port" --log "$tmp/proxy.log" --fail-file "$tmp/rpc-down" &
proxy_pid=$!
wait_until "the RPC proxy listens" test -s "$tmp/proxy.port"
kill -TERM "$daemon_pid" && wait "$daemon_pid"
sed "s|$EVM_RPC_URL|http://127.0.0.1:$(cat "$tmp/proxy.port")|" "$tmp/ocra.yaml" >"$tmp/ocra-proxy.yaml"
touch "$tmp/rpc-down"
"$ocra" daemon -c "$tmp/ocra-proxy.yaml" >>"$tmp/daemon.out" 2>>"$tmp/daemon.log" &
daemon_pid=$!
weights rpcfault
tx=$(publish rpc-model 1.0.0 rpcfault)
met_outage() { [ "$(grep -c '"failed"' "$tmp/proxy.log" 2>/dev/null)" -ge 5 ]; }
wait_until "the daemon met the RPC outage" met_outage
sleep 2 # the outage goes on a little: the watcher's retries keep meeting it
rm -f "$tmp/rpc-down"
fid=$(wait_event "$tx")
if [ -n "$fid" ] && [ "$(pipe "$fid" 'p.get("outcome")')" = completed ]; then
    ok rpc_outage_event_completes
else
    fail rpc_outage_event_completes "$(pipe "${fid:-x}" 'json.dumps(p)' 2>&1)"
fi
met_outage && ok rpc_outage_met_by_the_daemon || fail rpc_outage_met_by_the_daemon "no failed request in the proxy's log"
n=$(evm_reports "$contract" | awk -v k="$(key_of "${fid:-x}")" 'tolower($1) == k' | wc -l)
[ "$n" -eq 1 ] && ok rpc_outage_one_report || fail rpc_outage_one_report "$n reports"
kill -0 "$daemon_pid" 2>/dev/null && ok rpc_outage_daemon_kept_running || fail rpc_outage_daemon_kept_running "the daemon exited"
kill -TERM "$daemon_pid" && wait "$daemon_pid"
kill "$proxy_pid" && wait "$proxy_pid" 2>/dev/null
proxy_pid=
start_daemon
fi # section 6

if want 7; then
# --- 7. the Docker engine restarted mid-build (the faults test) -----------------------------
# A fault injected in front of the real package index (allowed by the project's rules): while
# $tmp/index-hold exists, tests/lib/pyindex.py holds every request for a wheel, so the daemon's
# toolchain build (Engine API POST /build) stays inside `pip install` until the test has
# restarted the private dockerd (same directory, same socket: run.docker_host stays valid).
# The spec asks for ocra-smoke 1.0.1, which no earlier section installed: a new toolchain hash,
# so the toolchain stage must build (a cached toolchain would never reach the engine).
weights engine
touch "$tmp/index-hold"
pipeline_spec "$tmp/spec.json" engine-model 1.0.0 engine/model.safetensors "$sha" "$size" 1.0.1
tx=$("$ocra" -c "$tmp/ocra.yaml" publish --chain evm --key-file "$tmp/keys/publisher.key" \
    "$tmp/spec.json" 2>>"$tmp/publish.err") || { fail publish "ocra publish failed: $(tail -3 "$tmp/publish.err")"; finish; }
held() { grep -q '^hold GET .*/ocra_smoke-1\.0\.1-py3-none-any\.whl' "$OCRA_PYINDEX_LOG"; }
in_pip=no
for _ in $(seq 3000); do # a bound against a hang (5 min), not a timing check
    held && { in_pip=yes; break; }
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
done
eid=$(event_of "$tx")
stage=$(pipe "${eid:-x}" 'str(p.get("stage")) + "/" + str(p.get("state"))' 2>/dev/null)
echo "  the build asked the index for ocra-smoke 1.0.1: $in_pip; the event ${eid:-?} is at $stage"
[ "$in_pip" = yes ] && ok engine_restart_build_in_pip_install ||
    fail engine_restart_build_in_pip_install "the index never saw the 1.0.1 wheel requested (event ${eid:-?} at $stage)"
case $stage in toolchain/*) ok engine_restart_toolchain_stage_claimed ;;
*) fail engine_restart_toolchain_stage_claimed "the event is at $stage, not toolchain" ;; esac
dockerd_stop
echo "  dockerd stopped mid-build"
if ! dockerd_start "$tmp/engine"; then
    rm -f "$tmp/index-hold"
    fail engine_restart_dockerd_back "the private dockerd did not start again"
    finish
fi
echo "  dockerd started again on $DOCKER_HOST"
rm -f "$tmp/index-hold"
eid=$(wait_event "$tx")
"$ocra" -c "$tmp/ocra.yaml" lineage --json "${eid:-x}" >"$tmp/engine-lineage.json" 2>/dev/null
n=$(evm_reports "$contract" | awk -v k="$(key_of "${eid:-x}")" 'tolower($1) == k' | wc -l)
python3 - "$tmp/engine-lineage.json" "$n" >"$tmp/engine.out" <<'PY'
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
except ValueError:
    doc = {}
p = doc.get("pipeline") or {}
def check(name, cond, why):
    print(("ok " if cond else "FAIL ") + name + ("" if cond else ": " + str(why)[:600]))
check("engine_restart_event_completes",
      p.get("status") == "reported" and p.get("outcome") == "completed", json.dumps(p))
check("engine_restart_one_report", sys.argv[2] == "1", "%s StatusReported logs" % sys.argv[2])
tc = [s for s in doc.get("stages", []) if s["stage"] == "toolchain"]
for s in tc:
    print("  toolchain attempt %s: %s%s" % (s.get("attempt"), s.get("outcome"),
          ": " + s["error"] if s.get("error") else ""))
outcomes = [s.get("outcome") for s in tc]
done = outcomes.index("done") if "done" in outcomes else -1
check("engine_restart_toolchain_retried_then_done", done > 0 and "retry" in outcomes[:done],
      "toolchain attempts: %s" % outcomes)
# the restart's failure keeps its cause in the journal: the engine's message (the RUN step killed:
# 137) or the transport's, not a URL's query
first = (tc[0].get("error") or "") if tc else ""
check("engine_restart_retry_error_has_its_cause",
      "returned a non-zero code: 137" in first or "/build?" not in first,
      first)
out = tc[done].get("output") or {} if done >= 0 else {}
check("engine_restart_toolchain_built", out.get("built") is True and out.get("cacheHit") is False,
      json.dumps(out))
PY
while read -r word rest; do
    case $word in
    ok) ok "$rest" ;;
    FAIL) fail "${rest%%:*}" "${rest#*: }" ;;
    *) echo "$word $rest" ;;
    esac
done <"$tmp/engine.out"
kill -0 "$daemon_pid" 2>/dev/null && ok engine_restart_daemon_kept_running ||
    fail engine_restart_daemon_kept_running "the daemon exited"
fi # section 7

finish
