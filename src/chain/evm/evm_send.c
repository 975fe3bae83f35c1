/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evm_send.c: sending transactions. Fills what the caller left open from the node (chain id,
 * the pending nonce, fees from the latest block's base fee, gas from eth_estimateGas plus a
 * margin), picks EIP-1559 unless the chain has no base fee, signs, sends the raw bytes and
 * polls the receipt. A send refused for its nonce (another sender raced us) is retried with a
 * fresh nonce when the caller did not fix it. Used by `ocra publish --chain evm`, deployments
 * in tests and benchmarks, and the status reports of later stages.
 */
#include "chain/evm/evm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define GWEI 1000000000ll

void
ocra_evm_send_opts_init(struct ocra_evm_send_opts *o)
{
    *o = (struct ocra_evm_send_opts){.chain_id = 0,
                                     .nonce = -1,
                                     .gas = 0,
                                     .max_fee = -1,
                                     .priority_fee = -1,
                                     .legacy = -1,
                                     .wait_ms = 0};
}

static char *
hex0x(const uint8_t *p, size_t n)
{
    char *s = ocra_xmalloc(2 * n + 3);

    s[0] = '0';
    s[1] = 'x';
    ocra_hex_encode(p, n, s + 2);
    return s;
}

static int
call_u64(struct ocra_evm_rpc *rpc, const char *method, json_t *params, uint64_t *out,
         struct ocra_err *err)
{
    json_t *v = ocra_evm_rpc_call(rpc, method, params, NULL, err);
    int ret;

    json_decref(params);
    if (!v)
        return -1;
    ret = ocra_evm_quantity(v, out, err);
    json_decref(v);
    return ret < 0 ? ocra_err_wrap(err, "%s", method) : 0;
}

static int
fill_fees(struct ocra_evm_rpc *rpc, const struct ocra_evm_send_opts *o, struct ocra_evm_tx *tx,
          struct ocra_err *err)
{
    struct ocra_evm_block latest;
    uint64_t v;

    if (ocra_evm_get_block(rpc, "latest", 0, &latest, err) < 0)
        return -1;
    tx->legacy = o->legacy >= 0 ? o->legacy != 0 : latest.base_fee < 0;
    if (tx->legacy) {
        if (o->max_fee >= 0)
            tx->max_fee = (uint64_t)o->max_fee;
        else if (call_u64(rpc, "eth_gasPrice", NULL, &tx->max_fee, err) < 0)
            return -1;
        return 0;
    }
    if (o->priority_fee >= 0)
        tx->max_priority_fee = (uint64_t)o->priority_fee;
    else
        tx->max_priority_fee =
            call_u64(rpc, "eth_maxPriorityFeePerGas", NULL, &v, NULL) == 0 ? v : (uint64_t)GWEI;
    tx->max_fee = o->max_fee >= 0 ? (uint64_t)o->max_fee
                                  : 2 * (uint64_t)(latest.base_fee > 0 ? latest.base_fee : 0) +
                                        tx->max_priority_fee;
    if (tx->max_fee < tx->max_priority_fee)
        tx->max_fee = tx->max_priority_fee;
    return 0;
}

static int
estimate_gas(struct ocra_evm_rpc *rpc, const struct ocra_chain_key *key, const char *to,
             const uint8_t *data, size_t data_len, uint64_t *gas, struct ocra_err *err)
{
    char *hex = hex0x(data, data_len);
    json_t *call = json_pack("{s:s,s:s}", "from", ocra_chain_key_address(key), "data", hex);
    uint64_t g;

    free(hex);
    if (to)
        json_object_set_new(call, "to", json_string(to));
    if (call_u64(rpc, "eth_estimateGas", json_pack("[o]", call), &g, err) < 0)
        return -1;
    *gas = g + g / 5;
    return 0;
}

/* True when the node refused a send for its nonce. */
static bool
nonce_error(const struct ocra_err *e)
{
    return e->code == EPROTO &&
           (strcasestr(e->msg, "nonce") || strcasestr(e->msg, "already known"));
}

static int
send_raw(struct ocra_evm_rpc *rpc, const struct ocra_buf *raw, const char *want_hash,
         struct ocra_err *err)
{
    char *hex = hex0x((const uint8_t *)raw->data, raw->len);
    json_t *params = json_pack("[s]", hex), *v;
    int ret = -1;

    free(hex);
    v = ocra_evm_rpc_call(rpc, "eth_sendRawTransaction", params, NULL, err);
    json_decref(params);
    if (!v)
        return -1;
    if (!json_is_string(v) || strcasecmp(json_string_value(v), want_hash) != 0)
        ocra_err_set(err, EPROTO, "eth_sendRawTransaction: node says hash %.66s, ocra %s",
                     json_is_string(v) ? json_string_value(v) : "(not a string)", want_hash);
    else
        ret = 0;
    json_decref(v);
    return ret;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int
parse_receipt(const json_t *r, struct ocra_evm_tx_result *res, struct ocra_err *err)
{
    const char *bh = ocra_json_str(r, "blockHash"), *ca = ocra_json_str(r, "contractAddress");
    uint64_t status, block, gas;

    if (ocra_evm_quantity(json_object_get(r, "status"), &status, err) < 0 ||
        ocra_evm_quantity(json_object_get(r, "blockNumber"), &block, err) < 0 ||
        ocra_evm_quantity(json_object_get(r, "gasUsed"), &gas, err) < 0 || block > INT64_MAX)
        return ocra_err_wrap(err, "receipt of %s", res->tx_hash);
    res->success = status == 1;
    res->block = (int64_t)block;
    res->gas_used = gas;
    (void)snprintf(res->block_hash, sizeof(res->block_hash), "%.66s", bh ? bh : "");
    if (ca && ocra_chain_address_valid(ca)) {
        uint8_t a[20];

        if (ocra_hex_decode(ca, a, sizeof(a), NULL) == 0)
            ocra_chain_address_format(a, res->contract);
    }
    return 0;
}

static int
wait_receipt(struct ocra_evm_rpc *rpc, struct ocra_evm_tx_result *res, int64_t wait_ms,
             struct ocra_err *err)
{
    uint64_t deadline = ocra_time_mono_ns() + (uint64_t)wait_ms * 1000000u;
    long delay = 50;

    for (;;) {
        json_t *params = json_pack("[s]", res->tx_hash);
        json_t *r = ocra_evm_rpc_call(rpc, "eth_getTransactionReceipt", params, NULL, err);
        int rc = 1;

        json_decref(params);
        if (!r)
            return ocra_err_wrap(err, "waiting for %s", res->tx_hash);
        if (json_is_object(r))
            rc = parse_receipt(r, res, err);
        json_decref(r);
        if (rc <= 0)
            return rc;
        if (ocra_time_mono_ns() >= deadline)
            return ocra_err_set(err, ETIMEDOUT, "no receipt for %s after %lld ms", res->tx_hash,
                                (long long)wait_ms);
        sleep_ms(delay);
        delay = delay * 2 > 1000 ? 1000 : delay * 2;
    }
}

/* Fills chain id, nonce, fees and gas of tx from opts and the node. */
static int
prepare(struct ocra_evm_rpc *rpc, const struct ocra_chain_key *key, const char *to,
        const struct ocra_evm_send_opts *o, struct ocra_evm_tx *tx, struct ocra_err *err)
{
    uint64_t nonce;

    tx->chain_id = o->chain_id;
    if (!tx->chain_id && ocra_evm_chain_id(rpc, &tx->chain_id, err) < 0)
        return -1;
    if (o->nonce >= 0)
        nonce = (uint64_t)o->nonce;
    else if (call_u64(rpc, "eth_getTransactionCount",
                      json_pack("[s,s]", ocra_chain_key_address(key), "pending"), &nonce, err) < 0)
        return -1;
    tx->nonce = nonce;
    if (fill_fees(rpc, o, tx, err) < 0)
        return -1;
    tx->gas = o->gas;
    if (!tx->gas && estimate_gas(rpc, key, to, tx->data, tx->data_len, &tx->gas, err) < 0)
        return -1;
    return 0;
}

/* A mined transaction that reverted: its receipt has no reason, so the call is replayed at
 * its block (eth_call), whose error carries the revert data, named from the ABI. */
static void
revert_reason(struct ocra_evm_rpc *rpc, const struct ocra_chain_key *key, const char *to,
              const uint8_t *data, size_t data_len, const struct ocra_evm_tx_result *res,
              struct ocra_err *err)
{
    char *hex = hex0x(data, data_len), block[24];
    json_t *call = json_pack("{s:s,s:s}", "from", ocra_chain_key_address(key), "data", hex), *v;
    json_t *params;
    struct ocra_err why = {0};

    free(hex);
    if (to)
        json_object_set_new(call, "to", json_string(to));
    (void)snprintf(block, sizeof(block), "0x%llx", (unsigned long long)res->block);
    params = json_pack("[o,s]", call, block);
    v = ocra_evm_rpc_call(rpc, "eth_call", params, NULL, &why);
    json_decref(params);
    json_decref(v);
    if (!v && why.code == EPROTO)
        ocra_err_set(err, EPROTO, "transaction %s reverted in block %lld: %s", res->tx_hash,
                     (long long)res->block, why.msg);
    else
        ocra_err_set(err, EPROTO, "transaction %s reverted in block %lld", res->tx_hash,
                     (long long)res->block);
}

int
ocra_evm_send(struct ocra_evm_rpc *rpc, const struct ocra_chain_key *key, const char *to,
              const uint8_t *data, size_t data_len, const struct ocra_evm_send_opts *o,
              struct ocra_evm_tx_result *res, struct ocra_err *err)
{
    struct ocra_evm_tx tx = {.create = !to, .data = data, .data_len = data_len};
    struct ocra_buf raw = {0};
    char hash[67];
    int ret = -1;

    memset(res, 0, sizeof(*res));
    res->block = -1;
    if (to && (!ocra_chain_address_valid(to) || ocra_hex_decode(to, tx.to, 20, err) < 0))
        return ocra_err_set(err, EINVAL, "send: \"%.60s\" is not an address", to);
    for (int attempt = 0; attempt < 3; attempt++) {
        ocra_buf_fini(&raw);
        if (prepare(rpc, key, to, o, &tx, err) < 0 ||
            ocra_evm_tx_sign(&tx, key, &raw, hash, err) < 0)
            goto out;
        if (send_raw(rpc, &raw, hash, err) == 0)
            break;
        if (o->nonce >= 0 || !err || !nonce_error(err) || attempt == 2)
            goto out;
    }
    (void)snprintf(res->tx_hash, sizeof(res->tx_hash), "%s", hash);
    res->nonce = tx.nonce;
    if (o->wait_ms > 0) {
        if (wait_receipt(rpc, res, o->wait_ms, err) < 0)
            goto out;
        if (!res->success) {
            revert_reason(rpc, key, to, data, data_len, res, err);
            goto out;
        }
    }
    ret = 0;
out:
    ocra_buf_fini(&raw);
    return ret;
}

static struct ocra_evm_rpc *
one_rpc(const char *url, struct ocra_err *err)
{
    const char *urls[] = {url};
    struct ocra_evm_rpc_opts ro = {.urls = urls, .n_urls = 1, .retries = 2};

    return ocra_evm_rpc_new(&ro, err);
}

int
ocra_evm_publish(const char *rpc_url, const struct ocra_chain_key *key, const char *contract,
                 const char *name, const char *spec_json, int64_t wait_ms,
                 struct ocra_evm_tx_result *res, struct ocra_err *err)
{
    struct ocra_evm_rpc *rpc = NULL;
    struct ocra_evm_send_opts o;
    json_t *spec = NULL;
    char *canon = NULL;
    uint8_t *data = NULL;
    size_t data_len;
    int ret = -1;

    if (!(spec = ocra_json_parse(spec_json, strlen(spec_json), OCRA_JSON_STRICT, err)))
        goto out;
    if (!name)
        name = ocra_json_str(spec, "name");
    if (!name || !*name || !ocra_utf8_valid(name, strlen(name))) {
        ocra_err_set(err, EINVAL, "model name must be non-empty UTF-8 (or the spec's \"name\")");
        goto out;
    }
    if (!(rpc = one_rpc(rpc_url, err)))
        goto out;
    canon = ocra_json_canonical(spec);
    data = ocra_evm_abi_call_2str("publish(string,string)", name, strlen(name), canon,
                                  strlen(canon), &data_len);
    ocra_evm_send_opts_init(&o);
    o.wait_ms = wait_ms;
    ret = ocra_evm_send(rpc, key, contract, data, data_len, &o, res, err);
out:
    if (ret < 0)
        ocra_err_wrap(err, "publish %.128s", name ? name : "(unnamed)");
    free(data);
    free(canon);
    json_decref(spec);
    ocra_evm_rpc_free(rpc);
    return ret;
}

int
ocra_evm_deploy(const char *rpc_url, const struct ocra_chain_key *key, const char *bin_hex,
                int64_t wait_ms, struct ocra_evm_tx_result *res, struct ocra_err *err)
{
    const char *hex = strncmp(bin_hex, "0x", 2) == 0 ? bin_hex + 2 : bin_hex;
    size_t n = strcspn(hex, " \t\r\n");
    struct ocra_evm_rpc *rpc = NULL;
    struct ocra_evm_send_opts o;
    uint8_t *code = NULL;
    char *trimmed = ocra_xstrndup(hex, n);
    int ret = -1;

    code = ocra_xmalloc(n / 2 + 1);
    if (n % 2 || ocra_hex_decode(trimmed, code, n / 2, err) < 0) {
        ocra_err_set(err, EINVAL, "deploy: init code is not hex");
        goto out;
    }
    if (!(rpc = one_rpc(rpc_url, err)))
        goto out;
    ocra_evm_send_opts_init(&o);
    o.wait_ms = wait_ms;
    ret = ocra_evm_send(rpc, key, NULL, code, n / 2, &o, res, err);
out:
    free(trimmed);
    free(code);
    ocra_evm_rpc_free(rpc);
    return ret < 0 ? ocra_err_wrap(err, "deploy") : 0;
}

int
ocra_evm_call_role(struct ocra_evm_rpc *rpc, const char *contract, const char *signature,
                   const char *account, bool *out, struct ocra_err *err)
{
    uint8_t h[OCRA_KECCAK256_LEN], arg[20];
    char data[2 + 8 + 64 + 1] = "0x";
    json_t *params, *v;
    const char *r;

    if (!ocra_chain_address_valid(account) || ocra_hex_decode(account, arg, 20, err) < 0)
        return ocra_err_set(err, EINVAL, "%s: \"%.60s\" is not an address", signature, account);
    ocra_keccak256(signature, strlen(signature), h);
    ocra_hex_encode(h, 4, data + 2);
    memset(data + 10, '0', 24);
    ocra_hex_encode(arg, 20, data + 34);
    params = json_pack("[{s:s,s:s},s]", "to", contract, "data", data, "latest");
    v = ocra_evm_rpc_call(rpc, "eth_call", params, NULL, err);
    json_decref(params);
    if (!v)
        return ocra_err_wrap(err, "%s", signature);
    r = json_string_value(v);
    if (!r || strlen(r) != 66 || strspn(r + 2, "0") < 63 || (r[65] != '0' && r[65] != '1')) {
        ocra_err_set(err, EPROTO, "%s: answer %.70s is not a bool (is this a ModelRegistry?)",
                     signature, r ? r : ocra_json_type_name(v));
        json_decref(v);
        return -1;
    }
    *out = r[65] == '1';
    json_decref(v);
    return 0;
}

int
ocra_evm_balance(struct ocra_evm_rpc *rpc, const char *account, uint64_t *wei, struct ocra_err *err)
{
    json_t *params = json_pack("[s,s]", account, "latest"), *v;
    const char *s;
    int ret = 0;

    v = ocra_evm_rpc_call(rpc, "eth_getBalance", params, NULL, err);
    json_decref(params);
    if (!v)
        return -1;
    s = json_string_value(v);
    if (s && !strncmp(s, "0x", 2) && strlen(s) > 18 &&
        strspn(s + 2, "0123456789abcdefABCDEF") == strlen(s + 2))
        *wei = UINT64_MAX; /* more than 18 ETH: more than any fee here */
    else
        ret = ocra_evm_quantity(v, wei, err) < 0 ? ocra_err_wrap(err, "eth_getBalance") : 0;
    json_decref(v);
    return ret;
}

int
ocra_evm_estimate_cost(struct ocra_evm_rpc *rpc, const struct ocra_chain_key *key, const char *to,
                       const uint8_t *data, size_t data_len, uint64_t *gas, uint64_t *fee,
                       struct ocra_err *err)
{
    struct ocra_evm_send_opts o;
    struct ocra_evm_tx tx = {0};

    ocra_evm_send_opts_init(&o);
    if (fill_fees(rpc, &o, &tx, err) < 0)
        return -1;
    *fee = tx.max_fee;
    return estimate_gas(rpc, key, to, data, data_len, gas, err);
}
