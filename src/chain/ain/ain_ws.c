/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ain_ws.c: the AIN event WebSocket over libwebsockets. Frames are JSON {type, data}: the
 * client sends REGISTER_FILTER, SET_CUSTOM_CLIENT_ID (the keep-alive: the node closes a
 * channel that hears nothing but PONG for 600 s) and PONG; the node sends EMIT_EVENT,
 * EMIT_ERROR and PING. A lost socket only makes ocra slower: the caller polls regardless.
 */
#include "chain/ain/ain_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#define RX_MAX (4u << 20)
#define MAX_VALUE_FILTERS 4 /* the node allows 5 filters per channel; one is BLOCK_FINALIZED */

struct ocra_ain_ws {
    char *url, *host, *path;
    int port;
    bool tls;
    char **patterns;
    size_t n_patterns;
    long keepalive_ms;
    struct ocra_pacer pacer; /* reconnect backoff */
    struct lws_context *ctx;
    struct lws *wsi;
    lws_sorted_usec_list_t sul_deadline, sul_reconnect, sul_keepalive;
    bool connecting, deadline_hit, woken, closing;
    int attempt; /* failed connection attempts since the last success */
    int64_t finalized;
    struct ocra_buf rx;
    char **outq; /* messages waiting for a writable socket */
    size_t n_outq;
    struct ocra_ain_ws_stats stats;
};

static void connect_now(struct ocra_ain_ws *ws);

static void
enqueue(struct ocra_ain_ws *ws, json_t *msg)
{
    ws->outq = ocra_xrealloc(ws->outq, (ws->n_outq + 1) * sizeof(*ws->outq));
    ws->outq[ws->n_outq++] = ocra_json_compact(msg);
    json_decref(msg);
    if (ws->wsi)
        lws_callback_on_writable(ws->wsi);
}

static void
clear_queue(struct ocra_ain_ws *ws)
{
    for (size_t i = 0; i < ws->n_outq; i++)
        free(ws->outq[i]);
    free(ws->outq);
    ws->outq = NULL;
    ws->n_outq = 0;
}

/* The filters, registered again on every (re)connection. */
static void
register_filters(struct ocra_ain_ws *ws)
{
    size_t n = ws->n_patterns < MAX_VALUE_FILTERS ? ws->n_patterns : MAX_VALUE_FILTERS;

    enqueue(ws, json_pack("{s:s,s:{s:s}}", "type", "SET_CUSTOM_CLIENT_ID", "data", "customClientId",
                          "ocra"));
    enqueue(ws, json_pack("{s:s,s:{s:s,s:s,s:{s:n}}}", "type", "REGISTER_FILTER", "data", "id",
                          "ocra-blocks", "type", "BLOCK_FINALIZED", "config", "block_number"));
    for (size_t i = 0; i < n; i++) {
        char id[32];

        (void)snprintf(id, sizeof(id), "ocra-value-%zu", i);
        enqueue(ws, json_pack("{s:s,s:{s:s,s:s,s:{s:s,s:s}}}", "type", "REGISTER_FILTER", "data",
                              "id", id, "type", "VALUE_CHANGED", "config", "path", ws->patterns[i],
                              "event_source", "BLOCK"));
    }
}

static void
on_frame(struct ocra_ain_ws *ws, const char *text, size_t len)
{
    json_t *f = ocra_json_parse(text, len, OCRA_JSON_JS_NUMBERS, NULL), *data;
    const char *type = ocra_json_str(f, "type"), *etype;

    ws->stats.frames++;
    data = json_object_get(f, "data");
    etype = ocra_json_str(data, "type");
    if (!type) {
        ocra_log_warn("ain ws: ignoring a frame that is not {type, data} (%zu bytes)", len);
    } else if (strcmp(type, "PING") == 0) {
        ws->stats.pings++;
        enqueue(ws, json_pack("{s:s,s:{}}", "type", "PONG", "data"));
    } else if (strcmp(type, "EMIT_ERROR") == 0) {
        ws->stats.errors++;
        ocra_log_warn("ain ws: node error code=%lld filter=%s: %s",
                      (long long)ocra_json_int(data, "code", 0),
                      ocra_json_str(data, "filter_id") ? ocra_json_str(data, "filter_id") : "-",
                      ocra_json_str(data, "message") ? ocra_json_str(data, "message") : "");
    } else if (strcmp(type, "EMIT_EVENT") == 0 && etype &&
               (strcmp(etype, "BLOCK_FINALIZED") == 0 || strcmp(etype, "VALUE_CHANGED") == 0)) {
        const json_t *bn = json_object_get(json_object_get(data, "payload"), "block_number");

        if (json_is_integer(bn) && json_integer_value(bn) > ws->finalized)
            ws->finalized = json_integer_value(bn);
        ws->woken = true;
    }
    json_decref(f);
}

static void
write_one(struct ocra_ain_ws *ws)
{
    size_t len;
    unsigned char *buf;

    if (!ws->n_outq)
        return;
    len = strlen(ws->outq[0]);
    buf = ocra_xmalloc(LWS_PRE + len);
    memcpy(buf + LWS_PRE, ws->outq[0], len);
    if (lws_write(ws->wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT) < (int)len)
        ocra_log_warn("ain ws: short write");
    free(buf);
    free(ws->outq[0]);
    memmove(ws->outq, ws->outq + 1, (ws->n_outq - 1) * sizeof(*ws->outq));
    ws->n_outq--;
    if (ws->n_outq)
        lws_callback_on_writable(ws->wsi);
}

static void
on_reconnect_due(lws_sorted_usec_list_t *sul)
{
    connect_now(lws_container_of(sul, struct ocra_ain_ws, sul_reconnect));
}

/* Schedules the next connection attempt: backoff doubling per failure, with jitter. */
static void
schedule_reconnect(struct ocra_ain_ws *ws)
{
    long ms = ocra_pacer_backoff_ms(&ws->pacer, ++ws->attempt);

    lws_sul_schedule(ws->ctx, 0, &ws->sul_reconnect, on_reconnect_due, ms * LWS_US_PER_MS);
}

static void
on_keepalive(lws_sorted_usec_list_t *sul)
{
    struct ocra_ain_ws *ws = lws_container_of(sul, struct ocra_ain_ws, sul_keepalive);

    if (ws->wsi)
        enqueue(ws, json_pack("{s:s,s:{s:s}}", "type", "SET_CUSTOM_CLIENT_ID", "data",
                              "customClientId", "ocra"));
    lws_sul_schedule(ws->ctx, 0, &ws->sul_keepalive, on_keepalive,
                     ws->keepalive_ms * LWS_US_PER_MS);
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct ocra_ain_ws *ws = lws_context_user(lws_get_context(wsi));

    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        ws->connecting = false;
        ws->attempt = 0;
        ws->stats.connects++;
        ws->stats.connected = true;
        ocra_log_info("ain ws: connected url=%s", ws->url);
        register_filters(ws);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (ws->rx.len + len <= RX_MAX)
            ocra_buf_append(&ws->rx, in, len);
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            if (ws->rx.len <= RX_MAX && ws->rx.data)
                on_frame(ws, ws->rx.data, ws->rx.len);
            ocra_buf_reset(&ws->rx);
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        write_one(ws);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        ocra_log_warn("ain ws: cannot connect url=%s: %s", ws->url,
                      in ? (const char *)in : "connection error");
        /* fallthrough */
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (ws->closing)
            break;
        if (ws->wsi == wsi || reason == LWS_CALLBACK_CLIENT_CONNECTION_ERROR) {
            if (reason == LWS_CALLBACK_CLIENT_CLOSED)
                ocra_log_info("ain ws: closed url=%s, reconnecting", ws->url);
            ws->wsi = NULL;
            ws->connecting = false;
            ws->stats.connected = false;
            clear_queue(ws);
            ocra_buf_reset(&ws->rx);
            schedule_reconnect(ws);
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"ocra-ain", callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void
connect_now(struct ocra_ain_ws *ws)
{
    struct lws_client_connect_info ci;

    if (ws->wsi || ws->connecting)
        return;
    memset(&ci, 0, sizeof(ci));
    ci.context = ws->ctx;
    ci.address = ws->host;
    ci.port = ws->port;
    ci.path = ws->path;
    ci.host = ws->host;
    ci.origin = ws->host;
    ci.ssl_connection = ws->tls ? LCCSCF_USE_SSL : 0;
    ci.local_protocol_name = protocols[0].name;
    ci.pwsi = &ws->wsi;
    ws->connecting = true;
    if (!lws_client_connect_via_info(&ci)) {
        ws->connecting = false;
        ws->wsi = NULL;
        schedule_reconnect(ws);
    }
}

/* Splits ws[s]://host[:port][/path]. */
static int
parse_url(struct ocra_ain_ws *ws, struct ocra_err *err)
{
    char *copy = ocra_xstrdup(ws->url);
    const char *prot = NULL, *host = NULL, *path = NULL;
    int port = 0, ret = -1;

    if (lws_parse_uri(copy, &prot, &host, &port, &path) != 0 || !host || !*host ||
        (strcmp(prot, "ws") != 0 && strcmp(prot, "wss") != 0)) {
        ocra_err_set(err, EINVAL, "WebSocket URL %.200s: want ws://HOST[:PORT][/PATH]", ws->url);
        goto out;
    }
    ws->tls = strcmp(prot, "wss") == 0;
    ws->host = ocra_xstrdup(host);
    ws->port = port ? port : ws->tls ? 443 : 80;
    ws->path = ocra_xasprintf("/%s", path ? path : "");
    ret = 0;
out:
    free(copy);
    return ret;
}

static void
lws_logger(int level, const char *line)
{
    (void)level;
    ocra_log_debug("libwebsockets: %.*s", (int)strcspn(line, "\n"), line);
}

struct ocra_ain_ws *
ocra_ain_ws_new(const struct ocra_ain_ws_opts *o, struct ocra_err *err)
{
    struct ocra_ain_ws *ws = ocra_xcalloc(1, sizeof(*ws));
    struct lws_context_creation_info info;

    ws->url = ocra_xstrdup(o->url);
    ws->keepalive_ms = o->keepalive_ms > 0 ? o->keepalive_ms : 240000;
    ocra_pacer_init(&ws->pacer, 0, o->backoff_ms > 0 ? o->backoff_ms : 500,
                    o->backoff_max_ms > 0 ? o->backoff_max_ms : 30000);
    ws->finalized = -1;
    ocra_buf_init(&ws->rx);
    ws->patterns = ocra_xcalloc(o->n_patterns + 1, sizeof(char *));
    for (size_t i = 0; i < o->n_patterns; i++)
        ws->patterns[ws->n_patterns++] = ocra_xstrdup(o->patterns[i]);
    if (parse_url(ws, err) < 0)
        goto fail;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_logger);
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = ws;
    info.options = ws->tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
    ws->ctx = lws_create_context(&info);
    if (!ws->ctx) {
        ocra_err_set(err, ENOMEM, "libwebsockets: cannot create a context");
        goto fail;
    }
    lws_sul_schedule(ws->ctx, 0, &ws->sul_keepalive, on_keepalive,
                     ws->keepalive_ms * LWS_US_PER_MS);
    return ws;
fail:
    ocra_ain_ws_free(ws);
    return NULL;
}

void
ocra_ain_ws_free(struct ocra_ain_ws *ws)
{
    if (!ws)
        return;
    ws->closing = true;
    if (ws->ctx)
        lws_context_destroy(ws->ctx); /* closes the socket; callbacks may still run */
    for (size_t i = 0; i < ws->n_patterns; i++)
        free(ws->patterns[i]);
    free(ws->patterns);
    clear_queue(ws);
    ocra_buf_fini(&ws->rx);
    free(ws->url);
    free(ws->host);
    free(ws->path);
    free(ws);
}

static void
on_deadline(lws_sorted_usec_list_t *sul)
{
    lws_container_of(sul, struct ocra_ain_ws, sul_deadline)->deadline_hit = true;
}

int
ocra_ain_ws_wait(struct ocra_ain_ws *ws, long timeout_ms, int64_t *finalized)
{
    ws->woken = false;
    ws->deadline_hit = false;
    if (!ws->wsi && !ws->connecting && lws_dll2_is_detached(&ws->sul_reconnect.list))
        connect_now(ws);
    lws_sul_schedule(ws->ctx, 0, &ws->sul_deadline, on_deadline,
                     (lws_usec_t)timeout_ms * LWS_US_PER_MS);
    while (!ws->woken && !ws->deadline_hit)
        if (lws_service(ws->ctx, 0) < 0)
            break;
    lws_sul_cancel(&ws->sul_deadline);
    if (finalized)
        *finalized = ws->finalized;
    return ws->woken ? 1 : 0;
}

void
ocra_ain_ws_stats(const struct ocra_ain_ws *ws, struct ocra_ain_ws_stats *out)
{
    *out = ws->stats;
}

void
ocra_ain_ws_feed(struct ocra_ain_ws *ws, const char *text, size_t len)
{
    on_frame(ws, text, len);
}

void
ocra_ain_ws_drop_queue(struct ocra_ain_ws *ws)
{
    clear_queue(ws);
}
