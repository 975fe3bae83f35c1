#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_api.sh OCRA: the HTTP API, /metrics and the dashboard of `ocra serve` over a journal
# filled by `ocra watch` from the recorded AIN chain (tests/lib/ain_node.py): the contract of
# every endpoint with bad parameters and the token check (tests/lib/api_check.py), the strict
# Prometheus format check (tests/lib/promcheck.py), the refusal of an open non-loopback bind,
# and the dashboard in headless Debian chromium: the DOM shows the events with their status
# and an event page shows its lineage; a screenshot is saved in $OCRA_TEST_ARTIFACTS
# (default build/test-artifacts).
set -u
ocra=${1:?usage: it_api.sh PATH_TO_OCRA}
ocra=$(cd "$(dirname "$ocra")" && pwd)/$(basename "$ocra")
cd "$(dirname "$0")/.."
. tests/lib/ain_node.sh
. tests/lib/check.sh
. tests/lib/chromium.sh
command -v python3 >/dev/null || { echo "python3 is needed"; exit 77; }

tmp=$(mktemp -d)
serve_pid=
artifacts=${OCRA_TEST_ARTIFACTS:-$PWD/build/test-artifacts}
mkdir -p "$artifacts"
stop_serve() {
    if [ -n "$serve_pid" ]; then
        kill "$serve_pid" 2>/dev/null
        wait "$serve_pid" 2>/dev/null
        serve_pid=
    fi
}
cleanup() {
    stop_serve
    ain_node_stop
    rm -rf "$tmp"
}
trap cleanup EXIT

# start_serve ARGS...: ocra serve in the background; sets $serve_pid and $base.
start_serve() {
    "$ocra" serve --journal "$tmp/j.db" "$@" >"$tmp/serve.out" 2>"$tmp/serve.err" &
    serve_pid=$!
    for _ in $(seq 100); do
        base=$(sed -n 's|.* at \(http://[^ ]*\)/ .*|\1|p' "$tmp/serve.out")
        [ -n "$base" ] && return 0
        kill -0 "$serve_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "ocra serve did not start: $(cat "$tmp/serve.err")"
    return 1
}

A=0x22fF60c8E1bEdeED288BBA0c4b1344B1A6115aB2
ain_node_start "$tmp" || exit 1
# Only A is trusted: B's writes are journaled as rejected, so the journal has both statuses.
"$ocra" watch --rpc "$AIN_RPC_URL" --path '/apps/ocra_demo/models/$name' --from-block 0 --once \
    --journal "$tmp/j.db" --allow $A >/dev/null 2>"$tmp/watch.err" || { cat "$tmp/watch.err"; exit 1; }
"$ocra" events --journal "$tmp/j.db" >"$tmp/events.jsonl"
n=$(wc -l <"$tmp/events.jsonl")
[ "$n" -ge 4 ] && grep -q '"rejected"' "$tmp/events.jsonl" && ok journal_filled ||
    fail journal_filled "$n events: $(cat "$tmp/events.jsonl")"

# 1. The contract with a token configured (loopback: only mutating calls need it).
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
printf '%s\n' "$token" >"$tmp/token"
chmod 600 "$tmp/token"
start_serve --listen 127.0.0.1:0 --token-file "$tmp/token" || exit 1
python3 tests/lib/api_check.py "$base" "$tmp/events.jsonl" "$token" | sed 's/^/  /'
[ "${PIPESTATUS[0]}" -eq 0 ] && ok api_contract_with_token || fail api_contract_with_token "see above"
grep -q "$token" "$tmp/serve.out" "$tmp/serve.err" && fail token_never_logged "token in output" || ok token_never_logged

# 2. The dashboard in headless chromium (the same server).
if ! chromium_find; then
    fail dashboard_dom "chromium not installed (scripts/install-deps test installs the Debian package chromium)"
else
    dom() { chromium_load "$tmp/chromium" "$@"; } # URL ARGS...
    dom "$base/" --dump-dom >"$tmp/list.html"
    python3 tests/lib/dashboard_rows.py "$tmp/list.html" >"$tmp/rows.json"
    python3 - "$tmp/rows.json" "$tmp/events.jsonl" <<'PY' && ok dashboard_lists_events || fail dashboard_lists_events "$(head -c 600 "$tmp/list.html")"
import json, sys
rows = json.load(open(sys.argv[1]))
events = [json.loads(l) for l in open(sys.argv[2])]
assert set(rows) == {e["event"] for e in events}, sorted(rows)
for e in events:
    assert e["status"] in rows[e["event"]], (e["event"], rows[e["event"]])
PY
    e0=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["event"])' "$tmp/events.jsonl")
    tx0=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["txHash"])' "$tmp/events.jsonl")
    dom "$base/#/event/$e0" --dump-dom >"$tmp/event.html"
    grep -q "data-k=\"tx\"" "$tmp/event.html" && grep -q "$tx0" "$tmp/event.html" &&
        ok dashboard_event_lineage || fail dashboard_event_lineage "$(grep -o '<ol id="lineage".\{0,400\}' "$tmp/event.html")"
    dom "$base/" --screenshot="$artifacts/dashboard.png" >/dev/null
    [ -s "$artifacts/dashboard.png" ] && ok dashboard_screenshot || fail dashboard_screenshot "no $artifacts/dashboard.png"
    dom "$base/#/event/$e0" --screenshot="$artifacts/dashboard-event.png" >/dev/null
fi
stop_serve

# 3. Without a token file, mutating calls are refused (403), reads work.
start_serve --listen 127.0.0.1:0 || exit 1
python3 tests/lib/api_check.py "$base" "$tmp/events.jsonl" >"$tmp/notoken.out"
[ $? -eq 0 ] && ok api_contract_without_token || fail api_contract_without_token "$(grep FAIL "$tmp/notoken.out")"
stop_serve

# 4. Beyond loopback: refused without a token; with one, every call but /healthz needs it.
"$ocra" serve --journal "$tmp/j.db" --listen 0.0.0.0:0 >"$tmp/open.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "not a loopback address" "$tmp/open.out" && ok open_bind_needs_token ||
    fail open_bind_needs_token "rc=$rc $(cat "$tmp/open.out")"
start_serve --listen 0.0.0.0:0 --token-file "$tmp/token" || exit 1
port=${base##*:}
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
c1=$(code "http://127.0.0.1:$port/api/v1/events")
c2=$(code -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/events")
c3=$(code "http://127.0.0.1:$port/healthz")
c4=$(code "http://127.0.0.1:$port/metrics")
[ "$c1 $c2 $c3 $c4" = "401 200 200 401" ] && ok open_bind_token_for_all || fail open_bind_token_for_all "$c1 $c2 $c3 $c4"
stop_serve

# 5. A token file others can read is refused.
chmod 644 "$tmp/token"
"$ocra" serve --journal "$tmp/j.db" --listen 127.0.0.1:0 --token-file "$tmp/token" >"$tmp/perm.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "readable by group or others" "$tmp/perm.out" && ok token_file_mode_checked ||
    fail token_file_mode_checked "rc=$rc $(cat "$tmp/perm.out")"

check_done
