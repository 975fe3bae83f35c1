/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_routes.c: the endpoints. Each route validates its parameters strictly (a bad one is a
 * 400 naming it), reads the journal or asks the host through a hook, and answers JSON.
 */
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 1000

static int
respond_json(struct ocra_api_resp *resp, unsigned status, json_t *body)
{
    resp->status = status;
    resp->media_type = "application/json";
    resp->body = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    resp->len = resp->body ? strlen(resp->body) : 0;
    json_decref(body);
    return 0;
}

static int OCRA_PRINTF(4, 5) respond_error(struct ocra_api_resp *resp, unsigned status,
                                           const char *code, const char *fmt, ...)
{
    char msg[OCRA_ERR_MAX + 512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return respond_json(resp, status,
                        json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

/* Maps a hook's or the store's error to an HTTP status. */
static int
respond_err(struct ocra_api_resp *resp, const struct ocra_err *err)
{
    switch (err->code) {
    case ENOENT:
        respond_error(resp, 404, "not_found", "%s", err->msg);
        break;
    case EINVAL:
        respond_error(resp, 400, "bad_request", "%s", err->msg);
        break;
    case EBUSY:
    case EEXIST:
        respond_error(resp, 409, "conflict", "%s", err->msg);
        break;
    case EAGAIN:
        respond_error(resp, 503, "unavailable", "%s", err->msg);
        break;
    default:
        respond_error(resp, 500, "internal", "%s", err->msg);
        break;
    }
    return 0;
}

static bool
method_is(const struct ocra_api_req *req, struct ocra_api_resp *resp, const char *want)
{
    if (strcmp(req->method, want) == 0 ||
        (strcmp(want, "GET") == 0 && !strcmp(req->method, "HEAD")))
        return true;
    resp->allow = strcmp(want, "GET") == 0 ? "GET, HEAD" : want;
    respond_error(resp, 405, "method_not_allowed", "%s %s: use %s", req->method, req->path, want);
    return false;
}

static bool
need_journal(struct ocra_api_ctx *ctx, struct ocra_api_resp *resp)
{
    if (ctx->st)
        return true;
    respond_error(resp, 503, "unavailable", "the journal cannot be opened (see the log)");
    return false;
}

/* ---- /healthz, /readyz, /metrics ----------------------------------------------------------- */

static int
route_readyz(struct ocra_api_ctx *ctx, struct ocra_api_resp *resp)
{
    json_t *checks = json_object();
    bool ok = true;

    if (ctx->hooks.ready)
        ok = ctx->hooks.ready(ctx->hooks.arg, checks);
    json_object_set_new(checks, "journal",
                        ctx->st ? json_pack("{s:b}", "ok", 1)
                                : json_pack("{s:b,s:s}", "ok", 0, "error", "cannot open"));
    ok = ok && ctx->st;
    return respond_json(
        resp, ok ? 200 : 503,
        json_pack("{s:s,s:o}", "status", ok ? "ready" : "not ready", "checks", checks));
}

static void
count_one(const char *status, const char *chain, int64_t n, void *arg)
{
    ocra_metrics_set(arg, (const char *const[]){status, chain}, (double)n);
}

static void
count_pipeline(const char *state, const char *status, const char *outcome, int64_t n, void *arg)
{
    const struct ocra_metrics_std *std = ocra_metrics_std();

    ocra_metrics_set(std->pipeline, (const char *const[]){state, status, outcome}, (double)n);
    if (!strcmp(state, "ready"))
        ((int64_t *)arg)[0] += n;
    else if (!strcmp(state, "queued"))
        ((int64_t *)arg)[1] += n;
}

/* The journal's gauges come from the counters it keeps (a few rows, whatever its size). */
static int
route_metrics(struct ocra_api_ctx *ctx, struct ocra_api_resp *resp)
{
    const struct ocra_metrics_std *std = ocra_metrics_std();
    struct ocra_err err = {0};
    int64_t ready[2] = {0, 0}; /* ready, queued */
    struct ocra_buf b;

    if (ctx->st) {
        ocra_metrics_clear(std->events);
        ocra_metrics_clear(std->pipeline);
        if (ocra_store_event_counts(ctx->st, count_one, std->events, &err) < 0 ||
            ocra_store_pipeline_counts(ctx->st, count_pipeline, ready, &err) < 0) {
            ocra_log_warn("api: metrics: %s", err.msg);
        } else {
            ocra_metrics_set(std->queue_depth, NULL, (double)ready[0]);
            ocra_metrics_set(std->sched_queue_depth, NULL, (double)ready[1]);
        }
    }
    ocra_buf_init(&b);
    ocra_metrics_write(ctx->metrics, &b);
    resp->status = 200;
    resp->media_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->len = b.len;
    resp->body = ocra_buf_take(&b);
    return 0;
}

/* ---- events ------------------------------------------------------------------------------ */

struct list_ctx {
    json_t *arr;
    int64_t last_seq;
};

static int
list_one(const struct ocra_store_event *ev, const struct ocra_store_pipeline *p, void *arg)
{
    struct list_ctx *lc = arg;
    json_t *o = ocra_store_event_to_json(ev);

    json_object_set_new(o, "pipeline", p ? ocra_store_pipeline_to_json(p) : json_null());
    json_array_append_new(lc->arr, o);
    lc->last_seq = ev->seq;
    return 0;
}

static int
route_events(struct ocra_api_ctx *ctx, const struct ocra_api_req *req, struct ocra_api_resp *resp)
{
    struct ocra_store_event_filter f = {.newest_first = true, .limit = LIMIT_DEFAULT};
    const char *status = req->query(req->conn, "status");
    const char *limit = req->query(req->conn, "limit");
    const char *cursor = req->query(req->conn, "cursor");
    struct list_ctx lc = {0};
    struct ocra_err err = {0};
    char next[24];

    if (status && !ocra_store_status_known(status)) {
        char known[512];

        return respond_error(resp, 400, "bad_request",
                             "status: unknown status \"%.64s\" (one of %s)", status,
                             ocra_store_status_join(known, sizeof(known)));
    }
    if (limit && ocra_parse_i64(limit, 1, LIMIT_MAX, &f.limit, NULL) < 0)
        return respond_error(resp, 400, "bad_request", "limit: want an integer 1..%d", LIMIT_MAX);
    if (cursor && ocra_parse_i64(cursor, 1, INT64_MAX, &f.before_seq, NULL) < 0)
        return respond_error(resp, 400, "bad_request",
                             "cursor: want the next_cursor of an earlier page");
    if (!need_journal(ctx, resp))
        return 0;
    f.status = status;
    lc.arr = json_array();
    if (ocra_store_pipeline_list(ctx->st, &f, list_one, &lc, &err) < 0) {
        json_decref(lc.arr);
        return respond_err(resp, &err);
    }
    snprintf(next, sizeof(next), "%lld", (long long)lc.last_seq);
    return respond_json(resp, 200,
                        json_pack("{s:o,s:o}", "events", lc.arr, "next_cursor",
                                  (int64_t)json_array_size(lc.arr) == f.limit && lc.last_seq > 1
                                      ? json_string(next)
                                      : json_null()));
}

static bool
event_id_valid(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > 512)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
              (id[i] >= '0' && id[i] <= '9') || id[i] == ':' || id[i] == '-' || id[i] == '_' ||
              id[i] == '.'))
            return false;
    return true;
}

static int
route_event(struct ocra_api_ctx *ctx, const char *id, struct ocra_api_resp *resp)
{
    struct ocra_store_event *ev = NULL;
    struct ocra_err err = {0};
    json_t *o;

    if (!event_id_valid(id))
        return respond_error(resp, 400, "bad_request", "event id: not a valid event id");
    if (!need_journal(ctx, resp))
        return 0;
    if (ocra_store_event_get(ctx->st, id, &ev, &err) < 0)
        return respond_err(resp, &err);
    if (!ev)
        return respond_error(resp, 404, "not_found", "no event %s in the journal", id);
    o = ocra_store_event_to_json(ev);
    ocra_store_event_free(ev);
    if (ctx->hooks.lineage && ctx->hooks.lineage(ctx->hooks.arg, ctx->st, id, o, &err) < 0) {
        json_decref(o);
        return respond_err(resp, &err);
    }
    return respond_json(resp, 200, o);
}

static int
route_retry(struct ocra_api_ctx *ctx, const struct ocra_api_req *req, const char *id,
            struct ocra_api_resp *resp)
{
    struct ocra_err err = {0};

    if (!req->authorized || !ctx->token_configured) {
        resp->auth_challenge = true;
        return respond_error(resp, ctx->token_configured ? 401 : 403, "unauthorized",
                             ctx->token_configured
                                 ? "a valid bearer token is required (Authorization: Bearer ...)"
                                 : "mutating calls are disabled: set api.token_file");
    }
    if (!event_id_valid(id))
        return respond_error(resp, 400, "bad_request", "event id: not a valid event id");
    if (!need_journal(ctx, resp))
        return 0;
    if (!ctx->hooks.retry)
        return respond_error(resp, 501, "not_implemented", "retry is served by ocra daemon");
    if (ctx->hooks.retry(ctx->hooks.arg, ctx->st, id, &err) < 0)
        return respond_err(resp, &err);
    return respond_json(resp, 202, json_pack("{s:s,s:s}", "event", id, "status", "retrying"));
}

static int
route_list_hook(struct ocra_api_ctx *ctx, const struct ocra_api_req *req, bool images,
                struct ocra_api_resp *resp)
{
    const char *limit = req->query(req->conn, "limit");
    int64_t n = LIMIT_DEFAULT;
    struct ocra_err err = {0};
    json_t *arr;

    if (limit && ocra_parse_i64(limit, 1, LIMIT_MAX, &n, NULL) < 0)
        return respond_error(resp, 400, "bad_request", "limit: want an integer 1..%d", LIMIT_MAX);
    if (!need_journal(ctx, resp))
        return 0;
    if (images ? !ctx->hooks.images : !ctx->hooks.nodes)
        return respond_error(resp, 501, "not_implemented", "%s are served by ocra daemon",
                             images ? "images" : "nodes");
    arr = images ? ctx->hooks.images(ctx->hooks.arg, ctx->st, n, &err)
                 : ctx->hooks.nodes(ctx->hooks.arg, ctx->st, &err);
    if (!arr)
        return respond_err(resp, &err);
    return respond_json(resp, 200, json_pack("{s:o}", images ? "images" : "nodes", arr));
}

static int
route_queue(struct ocra_api_ctx *ctx, struct ocra_api_resp *resp)
{
    struct ocra_err err = {0};
    json_t *doc;

    if (!need_journal(ctx, resp))
        return 0;
    if (!ctx->hooks.queue)
        return respond_error(resp, 501, "not_implemented", "the queue is served by ocra daemon");
    if (!(doc = ctx->hooks.queue(ctx->hooks.arg, ctx->st, &err)))
        return respond_err(resp, &err);
    return respond_json(resp, 200, doc);
}

/* GET /api/v1/nodes/history?hours=H: each node's allocated GPUs over the last H hours (1..720,
 * default 24), from the journal's allocations, as step points [t_ms, gpus]: the level at the
 * window's start, one point per change, and the level now. */
struct history {
    json_t *nodes;  /* [{name, points}] */
    json_t *points; /* the current node's */
    char node[128];
    int64_t from, to, level_milli;
};

static void
history_close(struct history *h, int64_t to)
{
    if (!h->points)
        return;
    json_array_append_new(h->points,
                          json_pack("[I,f]", (json_int_t)to, (double)h->level_milli / 1000.0));
    json_array_append_new(h->nodes, json_pack("{s:s,s:o}", "name", h->node, "points", h->points));
    h->points = NULL;
}

static int
history_change(const char *node, int64_t t, int64_t gpu_milli, void *arg)
{
    struct history *h = arg;

    if (!h->points || strcmp(node, h->node) != 0) {
        history_close(h, h->to);
        (void)snprintf(h->node, sizeof(h->node), "%s", node);
        h->points = json_array();
        h->level_milli = 0;
    }
    if (t > h->from && json_array_size(h->points) == 0) /* the level when the window opened */
        json_array_append_new(
            h->points, json_pack("[I,f]", (json_int_t)h->from, (double)h->level_milli / 1000.0));
    h->level_milli += gpu_milli;
    if (t >= h->from)
        json_array_append_new(h->points,
                              json_pack("[I,f]", (json_int_t)t, (double)h->level_milli / 1000.0));
    return 0;
}

static int
route_nodes_history(struct ocra_api_ctx *ctx, const struct ocra_api_req *req,
                    struct ocra_api_resp *resp)
{
    const char *hours = req->query(req->conn, "hours");
    int64_t n = 24, now = ocra_time_wall_ms();
    struct history h = {.nodes = json_array(), .to = now};
    struct ocra_err err = {0};

    if (hours && ocra_parse_i64(hours, 1, 720, &n, NULL) < 0) {
        json_decref(h.nodes);
        return respond_error(resp, 400, "bad_request", "hours: want an integer 1..720");
    }
    if (!need_journal(ctx, resp)) {
        json_decref(h.nodes);
        return 0;
    }
    h.from = now - n * 3600 * 1000;
    if (ocra_store_alloc_changes(ctx->st, h.from, history_change, &h, &err) < 0) {
        json_decref(h.points);
        json_decref(h.nodes);
        return respond_err(resp, &err);
    }
    history_close(&h, now);
    return respond_json(resp, 200,
                        json_pack("{s:I,s:I,s:o}", "from", (json_int_t)h.from, "to",
                                  (json_int_t)now, "nodes", h.nodes));
}

/* ---- the dashboard ----------------------------------------------------------------------- */

static int
route_links(struct ocra_api_ctx *ctx, struct ocra_api_resp *resp)
{
    json_t *links = ctx->hooks.links ? ctx->hooks.links(ctx->hooks.arg) : NULL;

    if (!links)
        links = json_pack("{s:n,s:n,s:n}", "tx", "address", "digest");
    return respond_json(resp, 200, links);
}

static bool
route_asset(const char *path, struct ocra_api_resp *resp)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (const struct ocra_api_asset *a = ocra_api_assets; a->path; a++) {
        if (strcmp(a->path, path) == 0) {
            resp->status = 200;
            resp->media_type = a->media_type;
            resp->static_body = a->data;
            resp->len = a->len;
            return true;
        }
    }
    return false;
}

/* ---- the router -------------------------------------------------------------------------- */

void
ocra_api_route(struct ocra_api_ctx *ctx, const struct ocra_api_req *req, struct ocra_api_resp *resp)
{
    static const char events[] = "/api/v1/events/";
    const char *p = req->path;

    if (!req->host_ok) {
        respond_error(resp, 421, "misdirected",
                      "Host %.100s is not a name of this server: use a loopback name, the listen "
                      "address, or add the name to api.allowed_hosts",
                      req->host);
        return;
    }
    if (!req->authorized && ctx->token_configured && strcmp(p, "/healthz") != 0 &&
        (ctx->token_for_all ||
         (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0))) {
        resp->auth_challenge = true;
        respond_error(resp, 401, "unauthorized", "a valid bearer token is required");
        return;
    }
    if (strcmp(p, "/healthz") == 0) {
        if (method_is(req, resp, "GET"))
            respond_json(resp, 200, json_pack("{s:s}", "status", "ok"));
    } else if (strcmp(p, "/readyz") == 0) {
        if (method_is(req, resp, "GET"))
            route_readyz(ctx, resp);
    } else if (strcmp(p, "/metrics") == 0) {
        if (method_is(req, resp, "GET"))
            route_metrics(ctx, resp);
    } else if (strcmp(p, "/api/v1/events") == 0) {
        if (method_is(req, resp, "GET"))
            route_events(ctx, req, resp);
    } else if (strncmp(p, events, sizeof(events) - 1) == 0) {
        const char *id = p + sizeof(events) - 1;
        size_t n = strlen(id);

        if (n > 6 && strcmp(id + n - 6, "/retry") == 0) {
            char *copy = ocra_xstrndup(id, n - 6);

            if (method_is(req, resp, "POST"))
                route_retry(ctx, req, copy, resp);
            free(copy);
        } else if (method_is(req, resp, "GET")) {
            route_event(ctx, id, resp);
        }
    } else if (strcmp(p, "/api/v1/nodes/history") == 0) {
        if (method_is(req, resp, "GET"))
            route_nodes_history(ctx, req, resp);
    } else if (strcmp(p, "/api/v1/images") == 0 || strcmp(p, "/api/v1/nodes") == 0) {
        if (method_is(req, resp, "GET"))
            route_list_hook(ctx, req, strcmp(p, "/api/v1/images") == 0, resp);
    } else if (strcmp(p, "/api/v1/queue") == 0) {
        if (method_is(req, resp, "GET"))
            route_queue(ctx, resp);
    } else if (strcmp(p, "/api/v1/links") == 0) {
        if (method_is(req, resp, "GET"))
            route_links(ctx, resp);
    } else if (strncmp(p, "/api/", 5) == 0) {
        respond_error(resp, 404, "not_found", "no endpoint %.200s", p);
    } else if (!(method_is(req, resp, "GET") && route_asset(p, resp))) {
        if (!resp->status)
            respond_error(resp, 404, "not_found", "no page %.200s", p);
    }
}
