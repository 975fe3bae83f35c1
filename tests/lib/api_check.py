#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# api_check.py BASE_URL JOURNAL_JSONL [TOKEN]: contract tests of ocra's HTTP API against a
# server over a journal whose events are the JSON lines of JOURNAL_JSONL (`ocra events`).
# Prints "ok NAME" or "FAIL NAME: why" per check; exits 1 when any failed.
import json
import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promcheck  # noqa: E402

base, journal = sys.argv[1].rstrip("/"), sys.argv[2]
token = sys.argv[3] if len(sys.argv) > 3 else None
events = [json.loads(l) for l in open(journal)]
failed = 0


def req(path, method="GET", token=None):
    r = urllib.request.Request(base + path, method=method)
    if token:
        r.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def check(name, cond, why=""):
    global failed
    if cond:
        print("ok", name)
    else:
        failed += 1
        print("FAIL", name + ":", why)


def json_error(name, path, status, code, method="GET", token=None, mentions=None):
    st, h, body = req(path, method, token)
    try:
        e = json.loads(body)["error"]
        good = st == status and e["code"] == code and e["message"] and h.get("Content-Type") == "application/json"
        if mentions:
            good = good and mentions in e["message"]
    except (ValueError, KeyError, TypeError):
        good = False
    check(name, good, f"{method} {path}: {st} {body[:200]!r}")
    return h


st, h, body = req("/healthz")
check("healthz", st == 200 and json.loads(body) == {"status": "ok"}, f"{st} {body!r}")
st, h, body = req("/readyz")
# OCRA_API_EXPECT_UNREADY: a daemon whose dependencies are partly down answers 503
want_ready = 503 if os.environ.get("OCRA_API_EXPECT_UNREADY") else 200
check("readyz_journal_ok", st == want_ready and json.loads(body)["checks"]["journal"]["ok"] is True, f"{st} {body!r}")

# events: newest first, paging with the cursor covers everything exactly once
st, h, body = req("/api/v1/events")
got = json.loads(body)["events"] if st == 200 else []
check("events_newest_first", [e["event"] for e in got] == [e["event"] for e in reversed(events)],
      f"{st} {[e.get('event') for e in got]}")
check("events_fields", all({"event", "seq", "chain", "block", "txHash", "status", "spec", "signer"} <= set(e) for e in got), got[:1])
seen, cursor, pages = [], None, 0
while pages < 50:
    st, h, body = req("/api/v1/events?limit=2" + (f"&cursor={cursor}" if cursor else ""))
    page = json.loads(body)
    seen += [e["event"] for e in page["events"]]
    cursor, pages = page["next_cursor"], pages + 1
    if cursor is None:
        break
check("events_paging_exactly_once", seen == [e["event"] for e in reversed(events)], f"{seen}")
for status in sorted({e["status"] for e in events}):
    st, h, body = req("/api/v1/events?status=" + status)
    got = json.loads(body)["events"]
    want = [e["event"] for e in reversed(events) if e["status"] == status]
    check("events_status_" + status, [e["event"] for e in got] == want, f"{got}")

# bad parameters: 400 with a JSON error that names the parameter
json_error("events_bad_status", "/api/v1/events?status=bogus", 400, "bad_request", mentions="status")
# every state the journal has is a filter (queued, orphaned and supervised were once refused)
for status in ("queued", "orphaned", "supervised", "timeout"):
    st, h, body = req("/api/v1/events?status=" + status)
    check("events_status_known_" + status, st == 200, f"{st} {body[:200]}")
for q in ("limit=0", "limit=abc", "limit=5000", "limit=-1"):
    json_error("events_bad_" + q, "/api/v1/events?" + q, 400, "bad_request", mentions="limit")
for q in ("cursor=0", "cursor=x", "cursor=-5"):
    json_error("events_bad_" + q, "/api/v1/events?" + q, 400, "bad_request", mentions="cursor")

# one event
e0 = events[0]
st, h, body = req("/api/v1/events/" + e0["event"])
one = json.loads(body) if st == 200 else {}
check("event_by_id", st == 200 and one.get("event") == e0["event"] and one.get("txHash") == e0["txHash"]
      and one.get("status") == e0["status"], f"{st} {body[:300]!r}")
json_error("event_unknown_404", "/api/v1/events/ain:0:0xdead:0", 404, "not_found")
json_error("event_bad_id_400", "/api/v1/events/%3Cscript%3E", 400, "bad_request")

# methods, unknown paths
h = json_error("events_post_405", "/api/v1/events", 405, "method_not_allowed", method="POST", token=token)
check("events_post_405_allow", "GET" in h.get("Allow", ""), h)
json_error("unknown_api_404", "/api/v1/nope", 404, "not_found")
json_error("unknown_page_404", "/nope.html", 404, "not_found")

# retry: the token
h = json_error("retry_without_token_401", f"/api/v1/events/{e0['event']}/retry", 401 if token else 403,
               "unauthorized", method="POST")
if token:
    check("retry_401_challenge", h.get("WWW-Authenticate", "").startswith("Bearer"), h)
    json_error("retry_wrong_token_401", f"/api/v1/events/{e0['event']}/retry", 401, "unauthorized",
               method="POST", token="x" * len(token))
    st, h, body = req(f"/api/v1/events/{e0['event']}/retry", "POST", token)
    check("retry_with_token_passes_auth", st not in (401, 403), f"{st} {body!r}")
    json_error("retry_unknown_event", "/api/v1/events/ain:0:0xdead:0/retry", 404, "not_found",
               method="POST", token=token) if os.environ.get("OCRA_API_HOOKS") else None

# metrics
st, h, body = req("/metrics")
text = body.decode()
problems, fams = promcheck.check(text)
check("metrics_content_type", h.get("Content-Type", "").startswith("text/plain; version=0.0.4"), h.get("Content-Type"))
check("metrics_strict_format", st == 200 and not problems, problems[:5])
total = sum(v for (name, labels, v, w) in fams.get("ocra_events", {"samples": []})["samples"])
check("metrics_events_by_status", total == len(events), f"{total} != {len(events)}")
for fam in ("ocra_stage_duration_seconds", "ocra_build_cache_total", "ocra_registry_upload_bytes_total",
            "ocra_queue_depth", "ocra_gpus_allocated", "ocra_chain_head_lag_blocks"):
    check("metrics_family_" + fam, fam in fams, sorted(fams))

# the dashboard is embedded
st, h, body = req("/")
check("dashboard_index", st == 200 and b"/app.js" in body and h.get("Content-Type", "").startswith("text/html"), st)
st, h, body = req("/app.js")
check("dashboard_js", st == 200 and h.get("Content-Type", "").startswith("text/javascript") and b"textContent" in body, st)
check("dashboard_csp", "default-src 'self'" in h.get("Content-Security-Policy", ""), h)

sys.exit(1 if failed else 0)
