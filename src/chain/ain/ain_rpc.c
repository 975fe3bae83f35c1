/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ain_rpc.c: JSON-RPC 2.0 client of an AIN node (POST /json-rpc). Every call carries
 * protoVer. The node answers in three shapes, all with HTTP 200: a JSON-RPC envelope whose
 * `result` nests the value as `result.result` (or carries an application `{code, message}`),
 * a JSON-RPC `error`, and, for protocol-version problems, a bare `{result: null, code,
 * message}` body. Transport failures, 5xx and malformed replies are retried with exponential
 * backoff and jitter; node errors are not (the same request gets the same answer). A
 * client-side rate limit keeps public nodes (about 10 reads/s per IP) happy.
 */
#include "chain/ain/ain_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http.h"

struct ocra_ain_rpc {
    char *url;
    char *proto_ver;
    long timeout_ms;
    int retries;
    struct ocra_pacer pacer;
    unsigned long requests;
    int64_t next_id;
};

struct ocra_ain_rpc *
ocra_ain_rpc_new(const struct ocra_ain_rpc_opts *o)
{
    struct ocra_ain_rpc *rpc = ocra_xcalloc(1, sizeof(*rpc));

    rpc->url = ocra_xstrdup(o->url);
    rpc->proto_ver = ocra_xstrdup(o->proto_ver ? o->proto_ver : OCRA_AIN_PROTO_VER);
    rpc->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    rpc->retries = o->retries > 0 ? o->retries : 0;
    ocra_pacer_init(&rpc->pacer, o->rate_limit, o->backoff_ms, o->backoff_max_ms);
    rpc->next_id = 1;
    return rpc;
}

void
ocra_ain_rpc_free(struct ocra_ain_rpc *rpc)
{
    if (!rpc)
        return;
    free(rpc->url);
    free(rpc->proto_ver);
    free(rpc);
}

unsigned long
ocra_ain_rpc_requests(const struct ocra_ain_rpc *rpc)
{
    return rpc->requests;
}

static char *
request_body(struct ocra_ain_rpc *rpc, const char *method, const json_t *params)
{
    json_t *p = params ? json_deep_copy(params) : json_object();
    json_t *req = json_object();
    char *body;

    json_object_set_new(p, "protoVer", json_string(rpc->proto_ver));
    json_object_set_new(req, "jsonrpc", json_string("2.0"));
    json_object_set_new(req, "id", json_integer(rpc->next_id++));
    json_object_set_new(req, "method", json_string(method));
    json_object_set_new(req, "params", p);
    body = ocra_json_compact(req);
    json_decref(req);
    return body;
}

/* A node-level error object {code, message}: fills err, returns -1. */
static int
node_error(const json_t *obj, const char *method, int64_t *node_code, struct ocra_err *err)
{
    const char *msg = ocra_json_str(obj, "message");
    int64_t code = ocra_json_int(obj, "code", 0);

    if (node_code)
        *node_code = code;
    return ocra_err_set(err, EPROTO, "%s: node error %lld: %s", method, (long long)code,
                        msg ? msg : "(no message)");
}

json_t *
ocra_ain_rpc_parse_reply(const char *method, long status, const char *body, size_t len,
                         int64_t *node_code, bool *retry, struct ocra_err *err)
{
    json_t *doc, *outer, *value = NULL;

    *retry = false;
    if (status != 200) {
        *retry = status >= 500 || status == 429;
        ocra_err_set(err, *retry ? EIO : EPROTO, "%s: HTTP %ld", method, status);
        return NULL;
    }
    doc = ocra_json_parse(body, len, OCRA_JSON_JS_NUMBERS, err);
    if (!doc || !json_is_object(doc)) {
        *retry = true;
        if (doc)
            ocra_err_set(err, EPROTO, "reply is a JSON %s, not an object",
                         ocra_json_type_name(doc));
        ocra_err_wrap(err, "%s: malformed reply", method);
        if (err)
            err->code = EPROTO;
        json_decref(doc);
        return NULL;
    }
    outer = json_object_get(doc, "result");
    if (json_object_get(doc, "error")) {
        node_error(json_object_get(doc, "error"), method, node_code, err);
    } else if (json_object_get(doc, "code") && !json_object_get(doc, "jsonrpc")) {
        node_error(doc, method, node_code, err); /* protocol-version error, a bare body */
    } else if (!json_is_object(outer)) {
        *retry = true;
        ocra_err_set(err, EPROTO, "%s: malformed reply: no result object", method);
    } else if (json_is_integer(json_object_get(outer, "code")) &&
               json_object_get(outer, "message")) {
        node_error(outer, method, node_code, err);
    } else if (!json_object_get(outer, "result")) {
        ocra_err_set(err, ENOENT, "%s: the node has no such item (beyond the head?)", method);
    } else {
        value = json_incref(json_object_get(outer, "result"));
    }
    json_decref(doc);
    return value;
}

json_t *
ocra_ain_rpc_call(struct ocra_ain_rpc *rpc, const char *method, const json_t *params,
                  int64_t *node_code, struct ocra_err *err)
{
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    char *body = request_body(rpc, method, params);
    struct ocra_http_req req = {.method = "POST",
                                .url = rpc->url,
                                .headers = headers,
                                .body = body,
                                .body_len = strlen(body),
                                .timeout_ms = rpc->timeout_ms,
                                .max_response = 32u << 20};
    json_t *value = NULL;
    bool retry = true;
    int attempt;

    for (attempt = 0;; attempt++) {
        struct ocra_http_resp resp = {0};

        retry = true;

        if (attempt > 0)
            ocra_sleep_ms(ocra_pacer_backoff_ms(&rpc->pacer, attempt));
        ocra_pacer_wait(&rpc->pacer);
        rpc->requests++;
        if (ocra_http_do(&req, &resp, err) == 0) {
            value = ocra_ain_rpc_parse_reply(method, resp.status, resp.body, resp.body_len,
                                             node_code, &retry, err);
            ocra_http_resp_fini(&resp);
        }
        if (value || !retry || attempt >= rpc->retries)
            break;
    }
    if (!value && retry && attempt > 0)
        ocra_err_wrap(err, "gave up after %d attempts", attempt + 1);
    free(body);
    return value;
}
