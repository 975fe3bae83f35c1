/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evm_rpc.c: JSON-RPC 2.0 client of EVM nodes over libcurl (src/http). Endpoints are tried in
 * order of preference: a transport failure, a 5xx, a 429 or a malformed reply moves on to the
 * next one, and after a round over all of them the client backs off (exponential, jittered)
 * before the next round. The endpoint that answered stays current. Node errors are not retried
 * (the same request gets the same answer) but those naming a provider limit ("query returned
 * more than 10000 results", "block range too large", code -32005) become E2BIG so that
 * eth_getLogs callers split the range. Also the typed calls the scanner and sender use.
 */
#include "chain/evm/evm.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/http.h"

#define MAX_RESPONSE (64u << 20)

struct ocra_evm_rpc {
    char **urls;
    size_t n_urls, current;
    long timeout_ms;
    int retries;
    struct ocra_pacer pacer; /* rate limit and retry backoff */
    unsigned long requests;
    int64_t next_id;
};

struct ocra_evm_rpc *
ocra_evm_rpc_new(const struct ocra_evm_rpc_opts *o, struct ocra_err *err)
{
    struct ocra_evm_rpc *rpc;

    if (!o->n_urls)
        return ocra_err_set(err, EINVAL, "evm rpc: no endpoint URL"), NULL;
    for (size_t i = 0; i < o->n_urls; i++)
        if (!o->urls[i] ||
            (strncmp(o->urls[i], "http://", 7) != 0 && strncmp(o->urls[i], "https://", 8) != 0))
            return ocra_err_set(err, EINVAL, "evm rpc: \"%.200s\" is not an http(s) URL",
                                o->urls[i] ? o->urls[i] : ""),
                   NULL;
    rpc = ocra_xcalloc(1, sizeof(*rpc));
    rpc->urls = ocra_xcalloc(o->n_urls, sizeof(*rpc->urls));
    for (size_t i = 0; i < o->n_urls; i++)
        rpc->urls[i] = ocra_xstrdup(o->urls[i]);
    rpc->n_urls = o->n_urls;
    rpc->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    rpc->retries = o->retries > 0 ? o->retries : 0;
    ocra_pacer_init(&rpc->pacer, o->rate_limit, o->backoff_ms, o->backoff_max_ms);
    rpc->next_id = 1;
    return rpc;
}

void
ocra_evm_rpc_free(struct ocra_evm_rpc *rpc)
{
    if (!rpc)
        return;
    for (size_t i = 0; i < rpc->n_urls; i++)
        free(rpc->urls[i]);
    free(rpc->urls);
    free(rpc);
}

unsigned long
ocra_evm_rpc_requests(const struct ocra_evm_rpc *rpc)
{
    return rpc->requests;
}

/* True when a node error reads like a provider's result or range limit. */
static bool
limit_error(int64_t code, const char *msg)
{
    static const char *const words[] = {"limit",  "too many", "too large",     "range",
                                        "exceed", "max",      "response size", "more than"};
    char low[256];
    size_t i;

    if (code == -32005)
        return true;
    for (i = 0; msg && msg[i] && i + 1 < sizeof(low); i++)
        low[i] = (char)tolower((unsigned char)msg[i]);
    low[i] = '\0';
    for (i = 0; i < OCRA_ARRAY_LEN(words); i++)
        if (strstr(low, words[i]))
            return true;
    return false;
}

/* A node error; a reverted call's data (a custom error's selector and arguments) is named
 * from the contract's ABI first, the node's own words after it. */
static int
node_error(const json_t *e, const char *method, int64_t *node_code, struct ocra_err *err)
{
    const char *msg = ocra_json_str(e, "message");
    int64_t code = ocra_json_int(e, "code", 0);
    char revert[512];

    if (node_code)
        *node_code = code;
    if (ocra_evm_revert_describe_hex(ocra_json_str(e, "data"), revert, sizeof(revert)))
        return ocra_err_set(err, EPROTO,
                            "%s: the contract reverted with %s (node error %lld: %.180s)", method,
                            revert, (long long)code, msg ? msg : "(no message)");
    return ocra_err_set(err, limit_error(code, msg) ? E2BIG : EPROTO, "%s: node error %lld: %.180s",
                        method, (long long)code, msg ? msg : "(no message)");
}

/* Interprets one HTTP reply; *retry says whether another endpoint or round may help. */
static json_t *
parse_reply(const char *method, const struct ocra_http_resp *resp, int64_t *node_code, bool *retry,
            struct ocra_err *err)
{
    json_t *doc, *value = NULL;

    *retry = false;
    if (resp->status == 413)
        return ocra_err_set(err, E2BIG, "%s: HTTP 413 (request or reply too large)", method), NULL;
    if (resp->status != 200) {
        *retry = resp->status >= 500 || resp->status == 429;
        ocra_err_set(err, *retry ? EIO : EPROTO, "%s: HTTP %ld", method, resp->status);
        if (*retry || !resp->body_len)
            return NULL; /* a 4xx with a JSON-RPC error body is read below */
    }
    doc = ocra_json_parse(resp->body, resp->body_len, 0, err);
    if (!json_is_object(doc)) {
        *retry = resp->status == 200;
        ocra_err_set(err, EPROTO, "%s: malformed reply (not a JSON object)", method);
    } else if (json_is_object(json_object_get(doc, "error"))) {
        node_error(json_object_get(doc, "error"), method, node_code, err);
    } else if (resp->status != 200) {
        ocra_err_set(err, EPROTO, "%s: HTTP %ld", method, resp->status);
    } else if (!json_object_get(doc, "result")) {
        *retry = true;
        ocra_err_set(err, EPROTO, "%s: malformed reply: no result", method);
    } else {
        value = json_incref(json_object_get(doc, "result"));
    }
    json_decref(doc);
    return value;
}

static char *
request_body(struct ocra_evm_rpc *rpc, const char *method, const json_t *params)
{
    json_t *p = params ? json_incref((json_t *)(uintptr_t)params) : json_array();
    json_t *req = json_pack("{s:s,s:I,s:s,s:o}", "jsonrpc", "2.0", "id", (json_int_t)rpc->next_id++,
                            "method", method, "params", p);
    char *body = ocra_json_compact(req);

    json_decref(req);
    return body;
}

/* One request to endpoint i. */
static json_t *
call_once(struct ocra_evm_rpc *rpc, size_t i, const char *method, const char *body,
          int64_t *node_code, bool *retry, struct ocra_err *err)
{
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    struct ocra_http_req req = {.method = "POST",
                                .url = rpc->urls[i],
                                .headers = headers,
                                .body = body,
                                .body_len = strlen(body),
                                .timeout_ms = rpc->timeout_ms,
                                .max_response = MAX_RESPONSE};
    struct ocra_http_resp resp = {0};
    json_t *value = NULL;

    ocra_pacer_wait(&rpc->pacer);
    rpc->requests++;
    *retry = true;
    if (ocra_http_do(&req, &resp, err) < 0) {
        if (err && err->code == EFBIG) {
            err->code = E2BIG; /* a reply over our cap: ask for less */
            *retry = false;
        }
        return NULL;
    }
    value = parse_reply(method, &resp, node_code, retry, err);
    ocra_http_resp_fini(&resp);
    return value;
}

json_t *
ocra_evm_rpc_call(struct ocra_evm_rpc *rpc, const char *method, const json_t *params,
                  int64_t *node_code, struct ocra_err *err)
{
    char *body = request_body(rpc, method, params);
    json_t *value = NULL;
    bool retry = true;
    int round;

    for (round = 0; round <= rpc->retries && retry && !value; round++) {
        if (round > 0)
            ocra_sleep_ms(ocra_pacer_backoff_ms(&rpc->pacer, round));
        for (size_t k = 0; k < rpc->n_urls && retry && !value; k++) {
            size_t i = (rpc->current + k) % rpc->n_urls;

            value = call_once(rpc, i, method, body, node_code, &retry, err);
            if (value || !retry)
                rpc->current = i; /* it answered: keep using it */
        }
        /* next round starts again at the most preferred endpoint */
        if (!value && retry)
            rpc->current = 0;
    }
    if (!value && retry && (round > 1 || rpc->n_urls > 1))
        ocra_err_wrap(err, "gave up after %d round(s) over %zu endpoint(s)", round, rpc->n_urls);
    free(body);
    return value;
}

/* ---- typed calls ------------------------------------------------------------------------ */

int
ocra_evm_quantity(const json_t *v, uint64_t *out, struct ocra_err *err)
{
    const char *s = json_string_value(v);
    uint64_t n = 0;
    size_t len;

    if (!s || strncmp(s, "0x", 2) != 0 || (len = strlen(s + 2)) == 0 || len > 16)
        return ocra_err_set(err, EPROTO, "not a quantity: %.40s", s ? s : ocra_json_type_name(v));
    for (const char *p = s + 2; *p; p++) {
        int d = isdigit((unsigned char)*p) ? *p - '0'
                : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
                : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10
                                           : -1;
        if (d < 0)
            return ocra_err_set(err, EPROTO, "not a quantity: %.40s", s);
        n = n << 4 | (uint64_t)d;
    }
    *out = n;
    return 0;
}

/* A quantity result that fits int64. */
static int
call_quantity(struct ocra_evm_rpc *rpc, const char *method, const json_t *params, int64_t *out,
              struct ocra_err *err)
{
    json_t *v = ocra_evm_rpc_call(rpc, method, params, NULL, err);
    uint64_t n;
    int ret = -1;

    if (!v)
        return -1;
    if (ocra_evm_quantity(v, &n, err) == 0 && n <= INT64_MAX) {
        *out = (int64_t)n;
        ret = 0;
    } else if (ret < 0) {
        ocra_err_wrap(err, "%s", method);
    }
    json_decref(v);
    return ret;
}

int
ocra_evm_chain_id(struct ocra_evm_rpc *rpc, int64_t *out, struct ocra_err *err)
{
    return call_quantity(rpc, "eth_chainId", NULL, out, err);
}

int
ocra_evm_block_number(struct ocra_evm_rpc *rpc, int64_t *out, struct ocra_err *err)
{
    return call_quantity(rpc, "eth_blockNumber", NULL, out, err);
}

static bool
hash_valid(const char *s)
{
    return s && strlen(s) == 66 && strncmp(s, "0x", 2) == 0 && ocra_hex_is(s + 2, 64);
}

/* Copies a 0x hash lowercased. */
static void
hash_copy(char dst[67], const char *src)
{
    for (size_t i = 0; i < 66; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[66] = '\0';
}

static int
parse_block(const json_t *b, struct ocra_evm_block *out, struct ocra_err *err)
{
    const char *hash = ocra_json_str(b, "hash"), *parent = ocra_json_str(b, "parentHash");
    const json_t *fee = json_object_get(b, "baseFeePerGas");
    uint64_t n, f = 0;

    if (ocra_evm_quantity(json_object_get(b, "number"), &n, err) < 0 || n > INT64_MAX)
        return ocra_err_wrap(err, "block number");
    if (!hash_valid(hash) || !hash_valid(parent))
        return ocra_err_set(err, EPROTO, "block %llu: malformed hash or parentHash",
                            (unsigned long long)n);
    if (fee && !json_is_null(fee) && (ocra_evm_quantity(fee, &f, err) < 0 || f > INT64_MAX))
        return ocra_err_wrap(err, "block %llu: baseFeePerGas", (unsigned long long)n);
    out->number = (int64_t)n;
    hash_copy(out->hash, hash);
    hash_copy(out->parent, parent);
    out->base_fee = fee && !json_is_null(fee) ? (int64_t)f : -1;
    return 0;
}

int
ocra_evm_get_block(struct ocra_evm_rpc *rpc, const char *tag, int64_t number,
                   struct ocra_evm_block *out, struct ocra_err *err)
{
    char num[24];
    json_t *params, *b;
    int ret = -1;

    (void)snprintf(num, sizeof(num), "0x%llx", (unsigned long long)number);
    params = json_pack("[s,b]", tag ? tag : num, 0);
    b = ocra_evm_rpc_call(rpc, "eth_getBlockByNumber", params, NULL, err);
    json_decref(params);
    if (!b)
        return -1;
    if (json_is_null(b))
        ocra_err_set(err, ENOENT, "block %s: none", tag ? tag : num);
    else if (!json_is_object(b))
        ocra_err_set(err, EPROTO, "block %s: not an object", tag ? tag : num);
    else if (parse_block(b, out, err) == 0)
        ret = 0;
    json_decref(b);
    return ret;
}

static json_t *
get_logs_once(struct ocra_evm_rpc *rpc, int64_t from, int64_t to, const char *address,
              const char *topic0, struct ocra_err *err)
{
    char f[24], t[24];
    json_t *filter, *params, *logs;

    (void)snprintf(f, sizeof(f), "0x%llx", (unsigned long long)from);
    (void)snprintf(t, sizeof(t), "0x%llx", (unsigned long long)to);
    filter = json_pack("{s:s,s:s}", "fromBlock", f, "toBlock", t);
    if (address)
        json_object_set_new(filter, "address", json_string(address));
    if (topic0)
        json_object_set_new(filter, "topics", json_pack("[s]", topic0));
    params = json_pack("[o]", filter);
    logs = ocra_evm_rpc_call(rpc, "eth_getLogs", params, NULL, err);
    json_decref(params);
    if (logs && !json_is_array(logs)) {
        json_decref(logs);
        return ocra_err_set(err, EPROTO, "eth_getLogs: result is not a list"), NULL;
    }
    return logs;
}

json_t *
ocra_evm_get_logs(struct ocra_evm_rpc *rpc, int64_t from, int64_t to, const char *address,
                  const char *topic0, unsigned *requests, struct ocra_err *err)
{
    json_t *logs, *lo, *hi;
    int64_t mid;

    if (requests)
        (*requests)++;
    logs = get_logs_once(rpc, from, to, address, topic0, err);
    if (logs || !err || err->code != E2BIG || from >= to) {
        if (!logs)
            ocra_err_wrap(err, "eth_getLogs [%lld, %lld]", (long long)from, (long long)to);
        return logs;
    }
    /* over a provider limit: halve the range */
    mid = from + (to - from) / 2;
    lo = ocra_evm_get_logs(rpc, from, mid, address, topic0, requests, err);
    if (!lo)
        return NULL;
    hi = ocra_evm_get_logs(rpc, mid + 1, to, address, topic0, requests, err);
    if (!hi) {
        json_decref(lo);
        return NULL;
    }
    json_array_extend(lo, hi);
    json_decref(hi);
    return lo;
}
