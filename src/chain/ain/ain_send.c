/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ain_send.c: writing to AIN: values in AIN form, signed SET_VALUE transactions, and the
 * wait until the transaction is final. ocra publishes model specs with it, and will report
 * run status back on-chain the same way.
 */
#include "chain/ain/ain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *encode(const json_t *v, struct ocra_buf *path, struct ocra_err *err);

/* The node's reserved characters of a state label (db/state-util.js hasReservedChar). */
static bool
reserved_char(unsigned char c)
{
    return c < 0x20 || c == 0x7f || strchr("/.$*#{}[]<>'\"` ", c) != NULL;
}

/*
 * Why the node refuses key as a state label (db/state-util.js isValidStateLabel), or NULL:
 * empty, longer than OCRA_AIN_LABEL_MAX UTF-16 code units (as JavaScript counts a string), or
 * holding a reserved character, unless it is "*" or "." or "$" and then no reserved one.
 */
static const char *
label_problem(const char *key)
{
    size_t units = 0;
    bool reserved = false, allowed;

    if (!*key)
        return "an empty key";
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        units += (*p & 0xc0) != 0x80; /* one per code point ... */
        units += (*p & 0xf8) == 0xf0; /* ... two beyond U+FFFF (a surrogate pair) */
        reserved |=
            reserved_char(*p) && !(p == (const unsigned char *)key && (*p == '.' || *p == '$'));
    }
    if (units > OCRA_AIN_LABEL_MAX)
        return "a key longer than 150 UTF-16 code units";
    allowed = !strcmp(key, "*") || ((key[0] == '.' || key[0] == '$') && key[1] && !reserved);
    if (!allowed && (reserved || reserved_char((unsigned char)key[0])))
        return "a key holding one of / . $ * # { } [ ] < > ' \" ` or a space or control "
               "character";
    return NULL;
}

/* Encodes child into out[key], with path extended by "/key" while it is encoded. */
static int
encode_member(json_t *out, const char *key, const json_t *child, struct ocra_buf *path,
              struct ocra_err *err)
{
    size_t mark = path->len;
    const char *problem = label_problem(key);
    json_t *enc;

    ocra_buf_printf(path, "/%s", key);
    if (problem) {
        ocra_err_set(err, EINVAL, "%s: AIN cannot store %s", path->data, problem);
        path->len = mark;
        path->data[mark] = '\0';
        return -1;
    }
    enc = encode(child, path, err);
    path->len = mark;
    path->data[mark] = '\0';
    if (!enc)
        return -1;
    json_object_set_new(out, key, enc);
    return 0;
}

static json_t *
encode(const json_t *v, struct ocra_buf *path, struct ocra_err *err)
{
    size_t n = json_is_array(v) ? json_array_size(v) : json_object_size(v);
    json_t *out, *val;
    const char *key;
    int rc = 0;

    if (!json_is_array(v) && !json_is_object(v))
        return json_incref((json_t *)(uintptr_t)v);
    if (n == 0) {
        ocra_err_set(err, EINVAL, "%s: AIN cannot store an empty %s", path->len ? path->data : "/",
                     json_is_array(v) ? "array" : "object");
        return NULL;
    }
    out = json_object();
    for (size_t i = 0; json_is_array(v) && i < n && rc == 0; i++) {
        char index[24];

        (void)snprintf(index, sizeof(index), "%zu", i);
        rc = encode_member(out, index, json_array_get(v, i), path, err);
    }
    json_object_foreach((json_t *)(uintptr_t)v, key, val)
    {
        if (rc == 0)
            rc = encode_member(out, key, val, path, err);
    }
    if (rc < 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *
ocra_ain_encode_value(const json_t *v, struct ocra_err *err)
{
    struct ocra_buf path;
    json_t *out;

    ocra_buf_init(&path);
    ocra_buf_reserve(&path, 64);
    path.data[0] = '\0';
    out = encode(v, &path, err);
    ocra_buf_fini(&path);
    return out;
}

bool
ocra_ain_code_transient(int64_t code)
{
    switch (code) {
    case 10701:  /* TX_ALREADY_RECEIVED: this very transaction is in the pool already */
    case 10704:  /* TX_POOL_NOT_ENOUGH_ROOM */
    case 10705:  /* TX_POOL_NOT_ENOUGH_ROOM_FOR_ACCOUNT */
    case 10715:  /* TX_POOL_NOT_ENOUGH_FREE_ROOM */
    case 10716:  /* TX_POOL_NOT_ENOUGH_FREE_ROOM_FOR_ACCOUNT */
    case 16001:  /* DB_FAILED_TO_BACKUP_DB: the node's own trouble */
    case 18001:  /* BLOCKCHAIN_NODE_NOT_SERVING: starting or syncing */
    case -32603: /* JSON-RPC internal error */
        return true;
    default:
        return code <= -32000 && code >= -32099; /* JSON-RPC server errors */
    }
}

/* Fills err for a transaction the node refused with code: EINVAL when the code is permanent,
 * EAGAIN when it is transient; the node's message on one line. Returns -1. */
static int
refused(struct ocra_err *err, const char *what, const char *hash, int64_t code, const char *msg)
{
    struct ocra_buf b;
    bool transient = ocra_ain_code_transient(code);
    int ret;

    ocra_buf_init(&b);
    ocra_buf_puts(&b, msg ? msg : "(no message)");
    for (size_t i = 0; i < b.len; i++)
        if (b.data[i] == '\n' || b.data[i] == '\r')
            b.data[i] = ' ';
    /* the node's words first: a message cut short keeps them */
    ret = ocra_err_set(err, transient ? EAGAIN : EINVAL,
                       "node code %lld (%s): %s (transaction %s %s)", (long long)code,
                       transient ? "transient: it may pass later"
                                 : "permanent: sending it again cannot help",
                       b.data, hash, what);
    ocra_buf_fini(&b);
    return ret;
}

/* The code of a receipt: top-level code, else the first non-zero of result_list. */
static int64_t
receipt_code(const json_t *r)
{
    const json_t *list = json_object_get(r, "result_list"), *item;
    const char *key;

    if (!json_is_object(list))
        return ocra_json_int(r, "code", -1);
    json_object_foreach((json_t *)(uintptr_t)list, key,
                        item) if (ocra_json_int(item, "code", -1) !=
                                  0) return ocra_json_int(item, "code", -1);
    return 0;
}

/* The message of the first failed entry of a result_list (a SET's op_list), or NULL. */
static const char *
result_message(const json_t *result)
{
    const json_t *list = json_object_get(result, "result_list"), *item;
    const char *key;

    json_object_foreach((json_t *)(uintptr_t)list, key, item)
    {
        if (ocra_json_int(item, "code", -1) != 0)
            return ocra_json_str(item, "message");
    }
    return NULL;
}

/* Polls the transaction until it is final one way or the other. */
static int
wait_final(struct ocra_ain_rpc *rpc, struct ocra_ain_tx_result *res, int64_t wait_ms,
           struct ocra_err *err)
{
    uint64_t deadline = ocra_time_mono_ns() + (uint64_t)wait_ms * 1000000u;
    json_t *params = json_pack("{s:s}", "hash", res->tx_hash);
    int ret = -1;

    for (;;) {
        json_t *tx = ocra_ain_rpc_call(rpc, "ain_getTransactionByHash", params, NULL, err);
        const char *state = ocra_json_str(tx, "state");
        const json_t *exec = json_object_get(tx, "exec_result");
        bool failed;

        if (!tx && err && err->code != ENOENT && err->code != EPROTO)
            break;
        if (state) {
            (void)snprintf(res->state, sizeof(res->state), "%s", state);
            res->block = ocra_json_int(tx, "number", -1);
            res->code = receipt_code(exec);
        }
        failed = !strcmp(res->state, "REVERTED") || !strcmp(res->state, "FAILED");
        if (failed && res->code > 0) {
            const char *msg = ocra_json_str(exec, "message");

            refused(err, res->state[0] == 'R' ? "was reverted" : "failed", res->tx_hash, res->code,
                    msg ? msg : result_message(exec));
        } else if (failed) {
            ocra_err_set(err, EPROTO, "transaction %s was %s with code %lld", res->tx_hash,
                         res->state, (long long)res->code);
        }
        json_decref(tx); /* state is gone with it; res->state holds the copy */
        if (failed)
            break;
        if (strcmp(res->state, "FINALIZED") == 0) {
            ret = 0;
            break;
        }
        if (ocra_time_mono_ns() >= deadline) {
            ocra_err_set(err, ETIMEDOUT, "transaction %s not final after %lld ms (state %s)",
                         res->tx_hash, (long long)wait_ms, res->state[0] ? res->state : "unknown");
            break;
        }
        ocra_sleep_ms(500);
    }
    json_decref(params);
    return ret;
}

/* Reads the send answer {tx_hash, result: {code, message?}} into res. */
static int
read_send_answer(const json_t *ans, struct ocra_ain_tx_result *res, struct ocra_err *err)
{
    const json_t *result = json_object_get(ans, "result");
    const char *hash = ocra_json_str(ans, "tx_hash");
    const char *msg = ocra_json_str(result, "message");

    if (!hash || strlen(hash) != 66)
        return ocra_err_set(err, EPROTO, "ain_sendSignedTransaction: answer has no tx_hash");
    (void)snprintf(res->tx_hash, sizeof(res->tx_hash), "%s", hash);
    res->code = receipt_code(result);
    if (res->code != 0)
        return refused(err, "was refused", hash, res->code, msg ? msg : result_message(result));
    return 0;
}

int
ocra_ain_send_set_value(struct ocra_ain_rpc *rpc, const struct ocra_chain_key *key,
                        int64_t chain_id, const char *ref, const json_t *value, int64_t nonce,
                        int64_t timestamp_ms, int64_t gas_price, int64_t wait_ms,
                        struct ocra_ain_tx_result *res, struct ocra_err *err)
{
    json_t *body = NULL, *params = NULL, *ans = NULL;
    char *sig = NULL, computed[67];
    int64_t node_code = 0;
    int ret = -1;

    memset(res, 0, sizeof(*res));
    res->block = -1;
    body = json_pack("{s:{s:s,s:s,s:O},s:I,s:I,s:I}", "operation", "type", "SET_VALUE", "ref", ref,
                     "value", value, "nonce", (json_int_t)nonce, "timestamp",
                     (json_int_t)(timestamp_ms ? timestamp_ms : ocra_time_wall_ms()), "gas_price",
                     (json_int_t)gas_price);
    sig = ocra_ain_sign(key, body, chain_id, err);
    if (!sig)
        goto out;
    params = json_pack("{s:O,s:s}", "tx_body", body, "signature", sig);
    ans = ocra_ain_rpc_call(rpc, "ain_sendSignedTransaction", params, &node_code, err);
    if (!ans && node_code) { /* refused before the pool: {code, message}, a JSON-RPC error */
        res->code = node_code;
        if (err)
            err->code = ocra_ain_code_transient(node_code) ? EAGAIN : EINVAL;
        goto out;
    }
    if (!ans || read_send_answer(ans, res, err) < 0)
        goto out;
    ocra_ain_tx_hash_hex(body, computed);
    if (strcasecmp(computed, res->tx_hash) != 0) {
        ocra_err_set(err, EPROTO, "node answered tx hash %s for transaction %s", res->tx_hash,
                     computed);
        goto out;
    }
    ret = wait_ms > 0 ? wait_final(rpc, res, wait_ms, err) : 0;
out:
    json_decref(ans);
    json_decref(params);
    json_decref(body);
    free(sig);
    return ret;
}
