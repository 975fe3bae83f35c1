#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_dashboard.sh OCRA: what an on-call engineer reads on the dashboard, in headless Debian
# chromium, over `ocra serve` and a journal filled by `ocra watch` from the recorded AIN chain
# (tests/lib/ain_node.py). Two accepted events are given the daemon's lineage with sqlite3, as
# the daemon journals it (stages, image, run): one completed with a log tail, one dead-lettered
# at its toolchain stage. Checked in the DOM: the stage bar's labels and legend, each stage's
# time against the same stage in recent events, the error banner with the cause and a retry
# button (clicked, with a wrong and the right token), the run's log tail, links to a block explorer and the registry (api.explorer_tx_url,
# api.explorer_address_url, api.registry_url), absolute times on hover, the status filter in the URL, and the
# images, nodes and queue pages. Screenshots go to $OCRA_TEST_ARTIFACTS (default
# build/test-artifacts).
set -u
ocra=${1:?usage: it_dashboard.sh PATH_TO_OCRA}
ocra=$(cd "$(dirname "$ocra")" && pwd)/$(basename "$ocra")
cd "$(dirname "$0")/.."
. tests/lib/ain_node.sh
. tests/lib/check.sh
. tests/lib/chromium.sh
command -v python3 >/dev/null || { echo "it_dashboard: skipped: python3 is needed"; exit 77; }
command -v sqlite3 >/dev/null || { echo "it_dashboard: skipped: no sqlite3 (Debian package sqlite3)"; exit 77; }
chromium_find || { echo "it_dashboard: skipped: no chromium (scripts/install-deps test installs the Debian package)"; exit 77; }

tmp=$(mktemp -d)
serve_pid=
artifacts=${OCRA_TEST_ARTIFACTS:-$PWD/build/test-artifacts}
mkdir -p "$artifacts"
cleanup() {
    if [ -n "$serve_pid" ]; then
        kill "$serve_pid" 2>/dev/null
        wait "$serve_pid" 2>/dev/null
    fi
    ain_node_stop
    rm -rf "$tmp"
}
trap cleanup EXIT

A=0x22fF60c8E1bEdeED288BBA0c4b1344B1A6115aB2
ain_node_start "$tmp" || exit 1
"$ocra" watch --rpc "$AIN_RPC_URL" --path '/apps/ocra_demo/models/$name' --from-block 0 --once \
    --journal "$tmp/j.db" --allow $A >/dev/null 2>"$tmp/watch.err" || { cat "$tmp/watch.err"; exit 1; }
ain_node_stop
mapfile -t acc < <(sqlite3 "$tmp/j.db" "SELECT id FROM events WHERE status = 'accepted' ORDER BY seq")
nrej=$(sqlite3 "$tmp/j.db" "SELECT count(*) FROM events WHERE status = 'rejected'")
[ "${#acc[@]}" -ge 2 ] && [ "$nrej" -ge 1 ] || { echo "the recorded chain gave ${#acc[@]} accepted, $nrej rejected events"; exit 1; }
ok_ev=${acc[0]} dead_ev=${acc[1]}
digest=sha256:$(printf 'dashboard' | sha256sum | cut -d' ' -f1)
now=$(($(date +%s) * 1000 - 60000))

# The daemon's lineage of the two events: stage attempts, an image, a run with its log tail.
stage() { # EVENT STAGE START_OFFSET_MS DURATION_MS OUTCOME [ERROR]
    printf "INSERT INTO stages (event_id, stage, attempt, worker, started_ms, finished_ms, outcome, error) VALUES ('%s', '%s', 1, 'w1', %d, %d, '%s', %s);\n" \
        "$1" "$2" $((now + $3)) $((now + $3 + $4)) "$5" "${6:-NULL}"
}
{
    echo "BEGIN;"
    echo "INSERT INTO pipeline (event_id, model, version, status, outcome, stage, state, created_ms, updated_ms) VALUES ('$ok_ev', 'demo', '1.0.0', 'reported', 'completed', NULL, 'done', $now, $now);"
    t=0
    for s in validate:40 plan:200 toolchain:1500 push:900 sign:60 allocate:30 run:20000 complete:50 report:700; do
        stage "$ok_ev" "${s%%:*}" $t "${s#*:}" done
        t=$((t + ${s#*:}))
    done
    echo "INSERT INTO images (digest, repo, tags, event_id, created_ms, event, registry) VALUES ('$digest', 'ocra/demo', '[\"1.0.0\"]', '$ok_ev', $now, '$ok_ev', '127.0.0.1:5000');"
    echo "INSERT INTO runs (id, event_id, image_digest, runner, node, gpus, state, result, created_ms, started_ms, finished_ms, updated_ms) VALUES ('c0ffee', '$ok_ev', '$digest', 'docker', 'local', '[0]', 'succeeded', json_object('exitCode', 0, 'durationMs', 20000, 'logTail', 'epoch 1 loss 0.52' || char(10) || 'epoch 2 loss 0.31' || char(10) || 'TAIL-MARKER done'), $now, $now, $((now + 20000)), $now);"
    echo "INSERT INTO pipeline (event_id, model, version, status, stage, state, attempts, last_error, failed_stage, created_ms, updated_ms) VALUES ('$dead_ev', 'demo', '1.0.1', 'failed', 'toolchain', 'dead', 3, 'Cannot connect to the Docker daemon at unix:///nowhere.sock (toolchain: build)', 'toolchain', $now, $now);"
    stage "$dead_ev" validate 0 35 done
    stage "$dead_ev" plan 40 9000 done
    stage "$dead_ev" toolchain 9100 400 dead "'Cannot connect to the Docker daemon at unix:///nowhere.sock'"
    # GPU use over time (the nodes page, /api/v1/nodes/history): on gpu-a two GPUs from 2 h to
    # 1 h ago, then half of one GPU from 30 min ago, still held; on gpu-b one released a day ago
    # (outside the 24 h window)
    echo "INSERT INTO allocations (event_id, replica, node, devices, gpu_milli, gpu_mem_mib, cpu_milli, ram_mib, state, created_ms, released_ms) VALUES ('$ok_ev', 1, 'gpu-a', '[0,1]', 1000, 0, 0, 0, 'released', $((now - 7200000)), $((now - 3600000)));"
    echo "INSERT INTO allocations (event_id, replica, node, devices, gpu_milli, gpu_mem_mib, cpu_milli, ram_mib, state, created_ms) VALUES ('$ok_ev', 2, 'gpu-a', '[0]', 500, 0, 0, 0, 'held', $((now - 1800000)));"
    echo "INSERT INTO allocations (event_id, replica, node, devices, gpu_milli, gpu_mem_mib, cpu_milli, ram_mib, state, created_ms, released_ms) VALUES ('$ok_ev', 3, 'gpu-b', '[0]', 1000, 0, 0, 0, 'released', $((now - 100000000)), $((now - 90000000)));"
    echo "COMMIT;"
} >"$tmp/lineage.sql"
sqlite3 -bail "$tmp/j.db" <"$tmp/lineage.sql" || { echo "the lineage fixture does not fit the journal"; exit 1; }

# The dashboard's links (api.explorer_tx_url, api.explorer_address_url, api.registry_url).
cat >"$tmp/ocra.yaml" <<'YAML'
api:
  explorer_tx_url: "https://explorer.example/{chain}/tx/{tx}"
  explorer_address_url: "https://explorer.example/address/{address}"
  registry_url: "https://{registry}/v2/{repo}/manifests/{digest}"
YAML
# a template that is not http(s), or lacks its placeholder, is refused with what is wanted
printf 'api:\n  explorer_tx_url: "javascript:alert(1)//{tx}"\n' >"$tmp/bad1.yaml"
printf 'api:\n  registry_url: "https://r.example/x"\n' >"$tmp/bad2.yaml"
"$ocra" --config "$tmp/bad1.yaml" config check >"$tmp/bad1.out" 2>&1
rc1=$?
"$ocra" --config "$tmp/bad2.yaml" config check >"$tmp/bad2.out" 2>&1
rc2=$?
[ $rc1 -eq 2 ] && grep -q 'api.explorer_tx_url: want an http(s) URL with {tx}' "$tmp/bad1.out" &&
    [ $rc2 -eq 2 ] && grep -q 'api.registry_url: want an http(s) URL with {digest}' "$tmp/bad2.out" &&
    ok dashboard_link_config_checked || fail dashboard_link_config_checked "rc $rc1 $rc2: $(cat "$tmp/bad1.out" "$tmp/bad2.out")"
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
printf '%s\n' "$token" >"$tmp/token"
chmod 600 "$tmp/token"
"$ocra" --config "$tmp/ocra.yaml" serve --journal "$tmp/j.db" --listen 127.0.0.1:0 --token-file "$tmp/token" >"$tmp/serve.out" 2>"$tmp/serve.err" &
serve_pid=$!
base=
for _ in $(seq 100); do
    base=$(sed -n 's|.* at \(http://[^ ]*\)/ .*|\1|p' "$tmp/serve.out")
    [ -n "$base" ] && break
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$base" ] || { echo "ocra serve did not start: $(cat "$tmp/serve.err")"; exit 1; }

dom() { chromium_load "$tmp/chromium" "$@"; } # URL ARGS...
# check NAME DOMFILE PYTHON: PYTHON's asserts over the DOM text (in d) pass.
check() {
    local name=$1 file=$2
    python3 - "$file" "$3" >"$tmp/check.err" 2>&1 <<'PY' && ok "$name" || fail "$name" "$(tail -c 600 "$tmp/check.err")"
import re, sys
d = open(sys.argv[1], encoding="utf-8").read()
def section(tag_id):  # the element with that id, to its closing tag (not nested in itself)
    m = re.search(r'<([a-z]+) id="%s"[^>]*>.*?</\1>' % tag_id, d, re.S)
    assert m, "no #" + tag_id
    return m.group(0)
exec(sys.argv[2])
PY
}

dom "$base/#/event/$ok_ev" --dump-dom >"$tmp/ok.html"
dom "$base/#/event/$ok_ev" --screenshot="$artifacts/dashboard-event-completed.png" >/dev/null
check dashboard_stage_legend "$tmp/ok.html" '
tl = re.search(r"<div id=\"ev-timeline\">.*?</ul></div>", d, re.S)
assert tl, "no stage bar with a legend"
tl = tl.group(0)
for s in ["validate", "toolchain", "run", "report"]:
    assert re.search(r"<li data-stage=\"%s\"><i class=\"s\d\"></i>%s</li>" % (s, s), tl), ("no legend entry", s, tl[:900])
assert "<b>run</b>" in tl, ("the run segment has no label", tl[:900])
'
check dashboard_log_tail "$tmp/ok.html" '
log = section("ev-log")
assert "hidden" not in log.split(">")[0], log[:200]
assert "epoch 2 loss 0.31" in log and "TAIL-MARKER done" in log, log[:400]
'

tx=$(sqlite3 "$tmp/j.db" "SELECT tx_hash FROM events WHERE id = '$ok_ev'")
signer=$(sqlite3 "$tmp/j.db" "SELECT signer FROM events WHERE id = '$ok_ev'")
export tx signer digest
check dashboard_links "$tmp/ok.html" '
import os
lin = section("lineage")
e = os.environ
for want in ["https://explorer.example/ain:0/tx/" + e["tx"], "https://explorer.example/address/" + e["signer"],
             "https://127.0.0.1:5000/v2/ocra/demo/manifests/" + e["digest"]]:
    assert re.search(r"<a href=\"%s\" target=\"_blank\" rel=\"noopener noreferrer\" class=\"ext\">" % re.escape(want), lin), (want, lin[:1500])
'
dom "$base/#/event/$dead_ev" --dump-dom >"$tmp/dead.html"
dom "$base/#/event/$dead_ev" --screenshot="$artifacts/dashboard-event-dead.png" >/dev/null
check dashboard_error_banner "$tmp/dead.html" '
b = re.search(r"<div id=\"ev-banner\"[^>]*>.*?</div></div>", d, re.S)
assert b, ("no banner with actions", section("event-view")[:1500])
b = b.group(0)
assert "hidden" not in b.split(">")[0], b[:300]
assert "dead-lettered at toolchain" in b, b[:600]
assert "Cannot connect to the Docker daemon at unix:///nowhere.sock (toolchain: build)" in b, b[:600]
assert re.search(r"<input type=\"password\" id=\"token\"", b), b[:800]
assert re.search(r"<button type=\"button\" id=\"retry\">retry</button>", b), b[:800]
'
# plan took 9 s here against 200 ms in the completed event: its usual time is the median of
# both (4.6 s); the completed event alone has the toolchain's.
check dashboard_stage_usual "$tmp/dead.html" '
rows = re.findall(r"<tr><td>([a-z]+)</td>(.*?)</tr>", section("stages"), re.S)
got = {s: r for s, r in rows}
assert set(got) == {"validate", "plan", "toolchain"}, got
assert "data-usual=\"4600\"" in got["plan"] and "(n=2)" in got["plan"], got["plan"]
assert "data-usual=\"1500\"" in got["toolchain"] and "(n=1)" in got["toolchain"], got["toolchain"]
'

# The retry button, clicked (tests/lib/dashboard_click.py, DevTools over a pipe): it sends the
# token typed beside it. A wrong one is refused (401); the right one reaches the retry, which
# `ocra serve` leaves to the daemon (501): the page shows each answer.
click() { # TOKEN: the text beside the button after the click
    python3 tests/lib/dashboard_click.py "$CHROMIUM" "$tmp/chromium-click" "$base/#/event/$dead_ev" \
        "!!document.getElementById('retry')" \
        "document.getElementById('token').value = '$1'; document.getElementById('retry').click()" \
        "(t => t && t !== '…' ? t : '')(document.getElementById('retry-result').textContent)"
}
r_bad=$(click wrong-token-0123456789 2>"$tmp/click.err")
r_good=$(click "$token" 2>>"$tmp/click.err")
echo "  the page after retry: wrong token: $r_bad; right token: $r_good"
case "$r_bad|$r_good" in
*"retry is served by ocra daemon"*"|"*) fail dashboard_retry_button "the wrong token got through: $r_bad" ;;
*"|"*"retry is served by ocra daemon"*) [ -n "$r_bad" ] && ok dashboard_retry_button || fail dashboard_retry_button "no answer to the wrong token" ;;
*) fail dashboard_retry_button "wrong token: '$r_bad'; right token: '$r_good'; $(tail -c 400 "$tmp/click.err")" ;;
esac
grep -qF "$token" "$tmp/serve.out" "$tmp/serve.err" && fail dashboard_token_not_logged "token in the server's output" || ok dashboard_token_not_logged

dom "$base/" --dump-dom >"$tmp/list.html"
dom "$base/" --screenshot="$artifacts/dashboard-list.png" >/dev/null
check dashboard_time_on_hover "$tmp/list.html" '
rows = re.findall(r"<tr data-event=\"[^\"]+\">.*?</tr>", section("events"), re.S)
assert rows
for r in rows:
    assert re.search(r"<time datetime=\"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\" title=\"20\d\d-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC\">", r), r[:600]
assert re.search(r"<ul class=\"legend\"", section("list-view")), "no legend on the list"
'

dom "$base/#/?status=rejected" --dump-dom >"$tmp/rejected.html"
python3 tests/lib/dashboard_rows.py "$tmp/rejected.html" >"$tmp/rejected.json"
check dashboard_status_in_url "$tmp/rejected.json" "
import json
rows = json.loads(d)
assert len(rows) == $nrej, (len(rows), rows)
assert all('rejected' in t for t in rows.values()), rows
"

dom "$base/#/images" --dump-dom >"$tmp/images.html"
dom "$base/#/images" --screenshot="$artifacts/dashboard-images.png" >/dev/null
check dashboard_images_page "$tmp/images.html" "
v = section('images-view')
assert 'hidden' not in v.split('>')[0], v[:200]
assert 'data-digest=\"$digest\"' in v and '127.0.0.1:5000/ocra/demo' in v and '$ok_ev' in v, v[:1200]
assert re.search(r'<section id=\"list-view\" hidden', d), 'the events list shows on the images page'
"

dom "$base/#/queue" --dump-dom >"$tmp/queue.html"
check dashboard_queue_page "$tmp/queue.html" "
assert re.search(r'<section id=\"queue-view\">', d), 'the queue page does not show the queue'
assert re.search(r'<section id=\"list-view\" hidden', d) and re.search(r'<section id=\"nodes-view\" hidden', d), 'other sections show'
"
dom "$base/#/nodes" --dump-dom >"$tmp/nodes.html"
dom "$base/#/nodes" --screenshot="$artifacts/dashboard-nodes.png" >/dev/null
check dashboard_nodes_page "$tmp/nodes.html" "
assert re.search(r'<section id=\"nodes-view\">', d), 'the nodes page does not show the nodes'
assert re.search(r'<section id=\"queue-view\" hidden', d) and re.search(r'<section id=\"list-view\" hidden', d), 'other sections show'
"
# GPU use over time, from the journal (not since the page opened): the window's start level,
# each change, the level now; a node with nothing in the window has no line
curl -s -H "Authorization: Bearer $token" "$base/api/v1/nodes/history?hours=24" >"$tmp/history.json"
python3 - "$tmp/history.json" "$now" <<'PY' && ok nodes_history_api || fail nodes_history_api "$(head -c 600 "$tmp/history.json")"
import json, sys
d, now = json.load(open(sys.argv[1])), int(sys.argv[2])
nodes = {n["name"]: n["points"] for n in d["nodes"]}
assert list(nodes) == ["gpu-a"], list(nodes)
want = [[d["from"], 0], [now - 7200000, 2], [now - 3600000, 0], [now - 1800000, 0.5], [d["to"], 0.5]]
assert nodes["gpu-a"] == want, (nodes["gpu-a"], want)
PY
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base/api/v1/nodes/history?hours=0")
[ "$code" = 400 ] && ok nodes_history_bad_hours || fail nodes_history_bad_hours "hours=0: $code"
check dashboard_nodes_history "$tmp/nodes.html" "
m = re.search(r'<svg class=\"history\"[^>]*>', d)
assert m, 'no GPU history chart on the nodes page'
assert 'data-node=\"gpu-a\"' in m.group(0) and 'data-points=\"5\"' in m.group(0) and 'data-now=\"0.5\"' in m.group(0), m.group(0)
assert 'data-node=\"gpu-b\"' not in d.split('nodes-view')[1], 'gpu-b has no allocation in the window'
"
ls "$artifacts"/dashboard-event-dead.png "$artifacts"/dashboard-images.png >/dev/null 2>&1 && ok dashboard_screenshots ||
    fail dashboard_screenshots "none in $artifacts"

check_done
