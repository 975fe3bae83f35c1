#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_daemon_api.sh: the HTTP API served by `ocra daemon` (api.listen) against a real anvil with
# the ModelRegistry contract. A valid spec (planned, then dead-lettered at the toolchain stage: no Docker engine here) and a
# hostile one (rejected, its report dead-lettered: the operator is not a reporter) go through
# the daemon; then /healthz, /readyz (the Docker engine is down: 503 naming it, the chain and a
# real docker-registry ok; the registry stopped: 503 naming it too),
# an event's lineage (pipeline, stages with attempts, report), /api/v1/images, /api/v1/nodes,
# POST retry with and without the token (202 / 401, 409 for an event that is not failed),
# /metrics (strict format, stage durations observed, failures counted, events seen) and the
# contract checks of tests/lib/api_check.py.
# Usage: it_daemon_api.sh path/to/ocra
set -uo pipefail
cd "$(dirname "$0")/.."
OCRA=$(realpath "$1")
source tests/lib/anvil.sh
source tests/lib/registry.sh
evm_tools_or_skip
registry_or_skip

tmp=$(mktemp -d /tmp/ocra-it-daemon-api.XXXXXX)
source tests/lib/check.sh
daemon_pid=
trap '[ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null; registry_stop_all; anvil_stop; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
anvil_start || exit 1
registry_start "$tmp/registry" || exit 1
url=$EVM_RPC_URL

contract=$(evm_registry_deploy)
printf '%s\n' "${EVM_KEY0#0x}" >"$tmp/key0"
printf '%s\n' "${EVM_KEY2#0x}" >"$tmp/key2"
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
printf '%s\n' "$token" >"$tmp/token"
chmod 600 "$tmp/key0" "$tmp/key2" "$tmp/token"
# api.listen takes no port 0: a port free now (the daemon logs the one it bound)
api_port=$(free_port)
cat >"$tmp/ocra.yaml" <<EOF
journal:
  path: "$tmp/journal.db"
evm:
  rpc: ["$url"]
  contract: "$contract"
  confirmations: 0
  from_block: 0
  poll_interval_ms: 100
  allow: ["$EVM_ADDR0"]
  key_file: "$tmp/key2"
daemon:
  workers: 2
  max_attempts: 2
  retry_base_ms: 100
  retry_max_ms: 200
  lease_ms: 1500
  poll_ms: 100
run:
  docker_host: "unix://$tmp/no-docker.sock"
build:
  registry: "$REGISTRY_URL/ocra"
api:
  listen: "127.0.0.1:$api_port"
  token_file: "$tmp/token"
inventory:
  local: false
  nodes:
    - {name: gpu-a, gpu_model: A100, gpus: 2, gpu_memory_mib: 40960, cpus: 16, memory_mib: 65536}
EOF

cat >"$tmp/bert.json" <<'EOF'
{"name": "bert", "modelVersion": "1.0.0", "toolsAndLibraries": {"PyTorch": "2.1.0"}}
EOF
"$OCRA" publish --chain evm --rpc "$url" --key-file "$tmp/key0" --contract "$contract" \
    "$tmp/bert.json" >/dev/null 2>"$tmp/pub.err" || fail publish_valid "$(cat "$tmp/pub.err")"
"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
    "publish(string,string)" evil '{"name":"evil","modelVersion":"not a version"}' >/dev/null

"$OCRA" daemon -c "$tmp/ocra.yaml" >"$tmp/daemon.out" 2>"$tmp/daemon.log" &
daemon_pid=$!
events() { "$OCRA" -c "$tmp/ocra.yaml" events "$@"; }
has_n() { [ "$(events --status "$1" | wc -l)" -eq "$2" ]; }
wait_until "the API listens" grep -q "api listening on" "$tmp/daemon.log"
port=$(sed -n 's/.*api listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/daemon.log" | head -1)
base="http://127.0.0.1:$port"
[ -n "$port" ] && ok daemon_serves_the_api || fail daemon_serves_the_api "$(tail -5 "$tmp/daemon.log")"
wait_until "valid event dead-lettered at toolchain (no engine)" has_n dead 2
events >"$tmp/events.jsonl"
id_of() { grep "/$1\"" "$tmp/events.jsonl" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["event"])'; }
bert=$(id_of bert)
evil=$(id_of evil)

# get PATH [curl args]: the body in $tmp/body, the status printed
get() {
    local p=$1
    shift
    curl -s -o "$tmp/body" -w '%{http_code}' "$@" "$base$p"
}
[ "$(get /healthz)" = 200 ] && ok healthz || fail healthz "$(cat "$tmp/body")"
c=$(get /readyz)
python3 - "$tmp/body" <<'PY' && [ "$c" = 503 ] && ok readyz_names_the_engine_down || fail readyz_names_the_engine_down "$c $(cat "$tmp/body")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["status"] == "not ready", d
assert d["checks"]["docker"]["ok"] is False and "no-docker.sock" in d["checks"]["docker"]["error"], d
assert d["checks"]["evm.rpc"]["ok"] is True and d["checks"]["journal"]["ok"] is True, d
assert d["checks"]["build.registry"]["ok"] is True, d
PY
# the registry goes down: once the cached answer is older than its 3 s, /readyz names it
registry_stop_all
registry_down() {
    get /readyz >/dev/null
    python3 -c 'import json,sys; c = json.load(open(sys.argv[1]))["checks"]["build.registry"]; assert not c["ok"] and "127.0.0.1" in c["error"]' "$tmp/body"
}
wait_until "readyz names the registry" registry_down && ok readyz_names_the_registry_down ||
    fail readyz_names_the_registry_down "$(cat "$tmp/body")"

c=$(get "/api/v1/events/$bert")
python3 - "$tmp/body" <<'PY' && [ "$c" = 200 ] && ok lineage_of_a_planned_event || fail lineage_of_a_planned_event "$c $(head -c 800 "$tmp/body")"
import json, sys
d = json.load(open(sys.argv[1]))
p = d["pipeline"]
# no Docker engine here: the toolchain stage fails, is retried, and is dead-lettered
assert (p["status"], p["stage"], p["state"]) == ("planned", "toolchain", "dead"), p
assert "no-docker.sock" in p["error"] or "docker" in p["error"].lower(), p
st = {s["stage"]: s for s in d["stages"]}
assert [s["stage"] for s in d["stages"]][:2] == ["validate", "plan"], d["stages"]
for k in ("stage", "state", "attempts", "startedMs", "finishedMs", "error", "output"):
    assert k in st["plan"], (k, st["plan"])
assert st["validate"]["state"] == "done" and st["validate"]["attempts"] == 1, st["validate"]
assert st["plan"]["finishedMs"] >= st["plan"]["startedMs"] > 0, st["plan"]
assert st["toolchain"]["state"] == "dead", st
for k in ("image", "allocation", "run", "report"):
    assert k in d and d[k] is None, (k, d.get(k))
PY
c=$(get "/api/v1/events/$evil")
python3 - "$tmp/body" <<'PY' && [ "$c" = 200 ] && ok lineage_of_a_dead_letter || fail lineage_of_a_dead_letter "$c $(head -c 800 "$tmp/body")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["pipeline"]["state"] == "dead" and "reportStatus" in d["pipeline"]["error"], d["pipeline"]
rep = [s for s in d["stages"] if s["stage"] == "report"][0]
assert rep["attempts"] == 2 and rep["state"] == "dead" and rep["error"], rep
PY

c=$(get /api/v1/images)
[ "$c" = 200 ] && python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["images"] == []' "$tmp/body" &&
    ok images_empty_before_a_build || fail images_empty_before_a_build "$c $(cat "$tmp/body")"
c=$(get /api/v1/nodes)
python3 - "$tmp/body" <<'PY' && [ "$c" = 200 ] && ok nodes_from_the_inventory || fail nodes_from_the_inventory "$c $(head -c 600 "$tmp/body")"
import json, sys
n = json.load(open(sys.argv[1]))["nodes"]
assert [x["name"] for x in n] == ["gpu-a"], n
assert n[0]["gpus"] == 2 and n[0]["gpu_model"] == "A100", n[0]
assert [g["index"] for g in n[0]["free"]["gpus"]] == [0, 1] and n[0]["allocations"] == [], n[0]
PY

[ "$(get "/api/v1/events/$evil/retry" -X POST)" = 401 ] && ok retry_without_token_401 || fail retry_without_token_401 "$(cat "$tmp/body")"
[ "$(get "/api/v1/events/$bert/retry" -X POST -H "Authorization: Bearer $token")" = 202 ] &&
    ok retry_of_a_dead_letter_202 || fail retry_of_a_dead_letter_202 "$(cat "$tmp/body")"
"$CAST" send -q --rpc-url "$url" --private-key "$EVM_KEY0" "$contract" \
    "setReporter(address,bool)" "$EVM_ADDR2" true >/dev/null
[ "$(get "/api/v1/events/$evil/retry" -X POST -H "Authorization: Bearer $token")" = 202 ] &&
    ok retry_with_token_202 || fail retry_with_token_202 "$(cat "$tmp/body")"
wait_until "retried event reported" has_n reported 1 && ok retried_event_reported || fail retried_event_reported "$(events --status dead)"
c=$(get "/api/v1/events/$evil")
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["report"]["tx"].startswith("0x"), d["report"]
' "$tmp/body" && ok lineage_has_the_report_tx || fail lineage_has_the_report_tx "$(head -c 800 "$tmp/body")"

get /metrics >/dev/null
python3 - "$tmp/body" <<'PY' && ok daemon_metrics || fail daemon_metrics "$(grep -E '^ocra_(stage|events_seen|queue)' "$tmp/body" | head -20)"
import sys
sys.path.insert(0, "tests/lib")
import promcheck
text = open(sys.argv[1]).read()
problems, fams = promcheck.check(text)
assert not problems, problems[:5]
def samples(f):
    return [(n, dict(l), v) for (n, l, v, w) in fams[f]["samples"]]
count = {l.get("stage"): v for (n, l, v) in samples("ocra_stage_duration_seconds") if n.endswith("_count")}
assert count.get("validate", 0) >= 2 and count.get("plan", 0) >= 1 and count.get("report", 0) >= 3, count
fail = {(l["stage"], l["kind"]): v for (n, l, v) in samples("ocra_stage_failures_total")}
assert fail.get(("report", "transient"), 0) >= 1 and fail.get(("report", "permanent"), 0) >= 1, fail
seen = {(l["chain"], l["outcome"]): v for (n, l, v) in samples("ocra_events_seen_total")}
assert sum(seen.values()) == 2, seen
assert "ocra_queue_depth" in fams and "ocra_chain_head_lag_blocks" in fams, sorted(fams)
PY
# From the first scrape: every stage's failures at zero or more, the version, the process.
python3 - "$tmp/body" <<'PY' && ok metrics_dashboards_expect || fail metrics_dashboards_expect "$(grep -E '^(ocra_build_info|process_|ocra_stage_failures_total)' "$tmp/body" | head -30)"
import sys
sys.path.insert(0, "tests/lib")
import promcheck
problems, fams = promcheck.check(open(sys.argv[1]).read())
fail = {(dict(l)["stage"], dict(l)["kind"]) for (n, l, v, w) in fams["ocra_stage_failures_total"]["samples"]}
for stage in ("validate", "plan", "toolchain", "push", "sign", "allocate", "run", "complete", "report"):
    assert (stage, "permanent") in fail and (stage, "transient") in fail, (stage, sorted(fail))
assert [dict(l)["version"] for (n, l, v, w) in fams["ocra_build_info"]["samples"]], "ocra_build_info"
for f in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"):
    assert fams[f]["samples"][0][2] > 0, f
PY
python3 tests/lib/alerts_check.py "$tmp/body" etc/prometheus/ocra.rules.yml etc/grafana/ocra.json >"$tmp/alerts.out" 2>&1 &&
    ok shipped_rules_and_dashboard_name_exported_metrics || fail shipped_rules_and_dashboard_name_exported_metrics "$(head -c 1500 "$tmp/alerts.out")"
if command -v promtool >/dev/null; then
    promtool check rules etc/prometheus/ocra.rules.yml >"$tmp/promtool.out" 2>&1 && ok promtool_check_rules ||
        fail promtool_check_rules "$(cat "$tmp/promtool.out")"
fi

events >"$tmp/events.jsonl"
OCRA_API_HOOKS=1 OCRA_API_EXPECT_UNREADY=1 python3 tests/lib/api_check.py "$base" "$tmp/events.jsonl" "$token" >"$tmp/contract.out"
[ $? -eq 0 ] && ok api_contract_against_the_daemon || fail api_contract_against_the_daemon "$(grep FAIL "$tmp/contract.out")"

kill -TERM "$daemon_pid"
wait "$daemon_pid"
rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok sigterm_stops_the_api_and_exits_0 || fail sigterm_stops_the_api_and_exits_0 "exit $rc"
grep -q "$token" "$tmp/daemon.log" "$tmp/daemon.out" && fail token_never_logged "token in the log" || ok token_never_logged
check_done
