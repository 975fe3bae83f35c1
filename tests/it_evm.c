/* SPDX-License-Identifier: Apache-2.0 */
/*
 * it_evm.c: the C side of the EVM integration tests (tests/it_evm.sh) and of the backfill
 * benchmark's chain generation: small subcommands over the evm module's public API, run
 * against a real anvil. Events print as the JSON lines of `ocra watch`.
 *
 *   it_evm deploy URL KEY BINFILE                       prints the contract address
 *   it_evm publish URL KEY CONTRACT NAME SPEC           prints "tx block"
 *   it_evm publish-gas URL KEY CONTRACT NAME SPEC GAS   the same call with a fixed gas limit (no
 *                                                       estimate: a revert is mined)
 *   it_evm gen URL KEY CONTRACT EVENTS BLOCKS           EVENTS publishes in BLOCKS blocks
 *   it_evm mktx KEY CHAIN NONCE GAS MAXFEE PRIO TO DATA [legacy]   prints the raw tx
 *   it_evm scan URL JOURNAL CONTRACT [--confirmations N] [--from-block N] [--to-block N]
 *               [--batch N] [--allow ADDR]... [--stop-after N] [--follow MS]
 *   it_evm list JOURNAL SOURCE                          "id block status" per event
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "chain/evm/evm.h"
#include "store/store.h"

static int
fail(const struct ocra_err *err)
{
    fprintf(stderr, "it_evm: %s\n", err->msg);
    return 1;
}

static int64_t
num(const char *s)
{
    int64_t v = 0;

    if (ocra_parse_i64(s, INT64_MIN, INT64_MAX, &v, NULL) < 0) {
        fprintf(stderr, "it_evm: bad number %s\n", s);
        exit(2);
    }
    return v;
}

static int
cmd_deploy(char **argv)
{
    struct ocra_err err = {0};
    struct ocra_chain_key *key = ocra_chain_key_from_hex(argv[1], &err);
    struct ocra_evm_tx_result res;
    char *bin = NULL;
    int rc = 1;

    if (key && ocra_file_read(argv[2], 1 << 20, &bin, NULL, &err) == 0 &&
        ocra_evm_deploy(argv[0], key, bin, 30000, &res, &err) == 0) {
        printf("%s\n", res.contract);
        rc = 0;
    }
    free(bin);
    ocra_chain_key_free(key);
    return rc ? fail(&err) : 0;
}

static int
cmd_publish(char **argv)
{
    struct ocra_err err = {0};
    struct ocra_chain_key *key = ocra_chain_key_from_hex(argv[1], &err);
    struct ocra_evm_tx_result res;
    int rc = 1;

    if (key && ocra_evm_publish(argv[0], key, argv[2], argv[3], argv[4], 30000, &res, &err) == 0) {
        printf("%s %lld\n", res.tx_hash, (long long)res.block);
        rc = 0;
    }
    ocra_chain_key_free(key);
    return rc ? fail(&err) : 0;
}

/* publish(name, spec) sent with a fixed gas limit, so that a call that reverts is mined: the
 * error must then give the reason, from a replay of the call. */
static int
cmd_publish_gas(char **argv)
{
    struct ocra_err err = {0};
    struct ocra_chain_key *key = ocra_chain_key_from_hex(argv[1], &err);
    const char *url = argv[0];
    struct ocra_evm_rpc_opts ro = {.urls = &url, .n_urls = 1};
    struct ocra_evm_rpc *rpc = key ? ocra_evm_rpc_new(&ro, &err) : NULL;
    struct ocra_evm_send_opts o;
    struct ocra_evm_tx_result res;
    size_t len = 0;
    uint8_t *data = ocra_evm_abi_call_2str("publish(string,string)", argv[3], strlen(argv[3]),
                                           argv[4], strlen(argv[4]), &len);
    int rc = 1;

    ocra_evm_send_opts_init(&o);
    o.gas = (uint64_t)num(argv[5]);
    o.wait_ms = 30000;
    if (rpc && ocra_evm_send(rpc, key, argv[2], data, len, &o, &res, &err) == 0) {
        printf("%s %lld\n", res.tx_hash, (long long)res.block);
        rc = 0;
    }
    free(data);
    ocra_evm_rpc_free(rpc);
    ocra_chain_key_free(key);
    return rc ? fail(&err) : 0;
}

/*
 * n filler blocks: anvil's anvil_mine slows down with the chain's length (about 7 ms a block at
 * 10,000 blocks) while automining a transaction stays under 1 ms, so each filler block holds a
 * 1-wei transfer between anvil's unlocked development accounts.
 */
/* anvil automines asynchronously: waits for block `want` so that each transaction gets its own. */
static int
wait_block(struct ocra_evm_rpc *rpc, int64_t want, struct ocra_err *err)
{
    int64_t head = -1;

    while (head < want) {
        struct timespec ts = {0, 200000};

        if (ocra_evm_block_number(rpc, &head, err) < 0)
            return -1;
        if (head < want)
            nanosleep(&ts, NULL);
    }
    return 0;
}

static int
filler(struct ocra_evm_rpc *rpc, int64_t n, int64_t *head, struct ocra_err *err)
{
    json_t *p =
        json_pack("[{s:s,s:s,s:s,s:s}]", "from", "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720", "to",
                  "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955", "value", "0x1", "gas", "0x5208");
    int ret = 0;

    for (int64_t i = 0; i < n && ret == 0; i++) {
        json_t *v = ocra_evm_rpc_call(rpc, "eth_sendTransaction", p, NULL, err);

        ret = v ? wait_block(rpc, ++*head, err) : -1;
        json_decref(v);
    }
    json_decref(p);
    return ret;
}

/* EVENTS publishes, each in its own block followed by empty ones, BLOCKS in all. */
static int
cmd_gen(char **argv)
{
    const char *urls[] = {argv[0]};
    struct ocra_evm_rpc_opts ro = {.urls = urls, .n_urls = 1, .retries = 2};
    struct ocra_err err = {0};
    struct ocra_chain_key *key = ocra_chain_key_from_hex(argv[1], &err);
    struct ocra_evm_rpc *rpc = key ? ocra_evm_rpc_new(&ro, &err) : NULL;
    int64_t events = num(argv[3]), blocks = num(argv[4]), gap = events ? blocks / events - 1 : 0;
    struct ocra_evm_send_opts o;
    struct ocra_evm_tx_result res;
    int64_t head = 0;
    int rc = 1;

    ocra_evm_send_opts_init(&o);
    o.gas = 200000;
    o.max_fee = 50000000000;
    o.priority_fee = 1000000000;
    if (!rpc || ocra_evm_chain_id(rpc, &o.chain_id, &err) < 0 ||
        ocra_evm_block_number(rpc, &head, &err) < 0)
        goto out;
    for (int64_t i = 0; i < events; i++) {
        char name[32], spec[96];
        size_t len;
        uint8_t *data;

        (void)snprintf(name, sizeof(name), "model-%lld", (long long)i);
        (void)snprintf(spec, sizeof(spec), "{\"modelVersion\":\"1.0.%lld\",\"name\":\"%s\"}",
                       (long long)i, name);
        data = ocra_evm_abi_call_2str("publish(string,string)", name, strlen(name), spec,
                                      strlen(spec), &len);
        o.nonce = i == 0 ? -1 : (int64_t)res.nonce + 1;
        rc = ocra_evm_send(rpc, key, argv[2], data, len, &o, &res, &err);
        free(data);
        if (rc < 0 || wait_block(rpc, ++head, &err) < 0 || filler(rpc, gap, &head, &err) < 0)
            goto out;
    }
    rc = filler(rpc, blocks - head, &head, &err);
out:
    ocra_evm_rpc_free(rpc);
    ocra_chain_key_free(key);
    return rc ? fail(&err) : 0;
}

static int
cmd_mktx(int argc, char **argv)
{
    struct ocra_err err = {0};
    struct ocra_chain_key *key = ocra_chain_key_from_hex(argv[0], &err);
    struct ocra_evm_tx tx = {.chain_id = num(argv[1]),
                             .nonce = (uint64_t)num(argv[2]),
                             .gas = (uint64_t)num(argv[3]),
                             .max_fee = (uint64_t)num(argv[4]),
                             .max_priority_fee = (uint64_t)num(argv[5]),
                             .legacy = argc > 8 && strcmp(argv[8], "legacy") == 0};
    size_t dn = strlen(argv[7]) > 2 ? (strlen(argv[7]) - 2) / 2 : 0;
    uint8_t *data = ocra_xmalloc(dn + 1);
    struct ocra_buf raw = {0};
    char hash[67], *hex = NULL;
    int rc = 1;

    tx.data = data;
    tx.data_len = dn;
    if (key && ocra_hex_decode(argv[6], tx.to, 20, &err) == 0 &&
        (dn == 0 || ocra_hex_decode(argv[7], data, dn, &err) == 0) &&
        ocra_evm_tx_sign(&tx, key, &raw, hash, &err) == 0) {
        hex = ocra_xmalloc(2 * raw.len + 1);
        ocra_hex_encode((const uint8_t *)raw.data, raw.len, hex);
        printf("0x%s\n", hex);
        rc = 0;
    }
    free(hex);
    free(data);
    ocra_buf_fini(&raw);
    ocra_chain_key_free(key);
    return rc ? fail(&err) : 0;
}

/* ---- scan ------------------------------------------------------------------------------ */

struct scan_state {
    int64_t stop_after, seen;
};

static int
print_event(const struct ocra_store_event *ev, void *arg)
{
    struct scan_state *st = arg;
    json_t *spec = ev->spec ? ocra_json_parse(ev->spec, strlen(ev->spec), 0, NULL) : NULL;
    json_t *o = json_pack("{s:s,s:I,s:s,s:s,s:I,s:s,s:s,s:b,s:s,s:o}", "event", ev->id, "block",
                          (json_int_t)ev->block_number, "blockHash", ev->block_hash, "txHash",
                          ev->tx_hash, "opIndex", (json_int_t)ev->op_index, "path", ev->path,
                          "signer", ev->signer ? ev->signer : "", "trusted", ev->trusted, "status",
                          ev->status, "spec", spec ? spec : json_null());
    char *line;

    if (ev->reason)
        json_object_set_new(o, "reason", json_string(ev->reason));
    line = ocra_json_compact(o);
    printf("%s\n", line);
    fflush(stdout);
    free(line);
    json_decref(o);
    return st->stop_after > 0 && ++st->seen >= st->stop_after;
}

static void
print_reorg(const struct ocra_evm_reorg *r, void *arg)
{
    (void)arg;
    printf("{\"reorg\":{\"block\":%lld,\"depth\":%lld,\"finalityViolation\":%s,"
           "\"orphaned\":%zu}}\n",
           (long long)r->block, (long long)r->depth, r->finality_violation ? "true" : "false",
           r->n_orphaned);
    fflush(stdout);
}

static void
parse_scan_flags(int argc, char **argv, struct ocra_evm_source_opts *o, struct scan_state *st,
                 const char **allow, long *follow_ms)
{
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--confirmations") == 0)
            o->confirmations = num(argv[i + 1]);
        else if (strcmp(argv[i], "--from-block") == 0)
            o->from_block = num(argv[i + 1]);
        else if (strcmp(argv[i], "--to-block") == 0)
            o->to_block = num(argv[i + 1]);
        else if (strcmp(argv[i], "--batch") == 0)
            o->batch_blocks = num(argv[i + 1]);
        else if (strcmp(argv[i], "--allow") == 0 && o->n_allow < 8)
            allow[o->n_allow++] = argv[i + 1];
        else if (strcmp(argv[i], "--stop-after") == 0)
            st->stop_after = num(argv[i + 1]);
        else if (strcmp(argv[i], "--follow") == 0)
            *follow_ms = (long)num(argv[i + 1]);
        else if (strcmp(argv[i], "--finality") == 0)
            o->finality = strcmp(argv[i + 1], "finalized") == 0 ? OCRA_EVM_FINALITY_FINALIZED
                          : strcmp(argv[i + 1], "safe") == 0    ? OCRA_EVM_FINALITY_SAFE
                                                                : OCRA_EVM_FINALITY_DEPTH;
    }
}

/* Polls until caught up; with --follow MS keeps polling for that long. */
static int
cmd_scan(int argc, char **argv)
{
    const char *urls[] = {argv[0]}, *allow[8];
    struct scan_state st = {0};
    struct ocra_evm_source_opts o = {.rpc_urls = urls,
                                     .n_rpc_urls = 1,
                                     .contract = argv[2],
                                     .confirmations = -1,
                                     .from_block = 0,
                                     .to_block = -1,
                                     .allow = allow,
                                     .on_event = print_event,
                                     .on_reorg = print_reorg,
                                     .arg = &st,
                                     .poll_ms = 100};
    struct ocra_err err = {0};
    struct ocra_store *store = NULL;
    struct ocra_source *src = NULL;
    long follow_ms = 0;
    uint64_t end;
    int rc = 1;

    parse_scan_flags(argc, argv, &o, &st, allow, &follow_ms);
    if (ocra_store_open(argv[1], &store, &err) < 0)
        goto out;
    o.store = store;
    if (!(src = ocra_evm_source_new(&o, &err)))
        goto out;
    end = ocra_time_mono_ns() + (uint64_t)follow_ms * 1000000u;
    for (;;) {
        size_t n = 0;
        bool caught_up = false;

        if (src->poll(src, &n, &caught_up, &err) < 0)
            goto out;
        if (!caught_up || ocra_time_mono_ns() >= end)
            break;
        src->wait(src, 100);
    }
    rc = 0;
out:
    if (src)
        src->free(src);
    ocra_store_close(store);
    return rc ? fail(&err) : 0;
}

static int
list_one(const struct ocra_store_event *ev, void *arg)
{
    (void)arg;
    printf("%s %lld %s %s\n", ev->id, (long long)ev->block_number, ev->status, ev->tx_hash);
    return 0;
}

static int
cmd_list(char **argv)
{
    struct ocra_store_event_filter f = {.source = argv[1]};
    struct ocra_err err = {0};
    struct ocra_store *store = NULL;
    int rc = 1;

    if (ocra_store_open(argv[0], &store, &err) == 0 &&
        ocra_store_event_list(store, &f, list_one, NULL, &err) == 0)
        rc = 0;
    ocra_store_close(store);
    return rc ? fail(&err) : 0;
}

int
main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";

    ocra_log_setup(OCRA_LOG_WARN, OCRA_LOG_TEXT);
    if (strcmp(cmd, "deploy") == 0 && argc == 5)
        return cmd_deploy(argv + 2);
    if (strcmp(cmd, "publish") == 0 && argc == 7)
        return cmd_publish(argv + 2);
    if (strcmp(cmd, "publish-gas") == 0 && argc == 8)
        return cmd_publish_gas(argv + 2);
    if (strcmp(cmd, "gen") == 0 && argc == 7)
        return cmd_gen(argv + 2);
    if (strcmp(cmd, "mktx") == 0 && argc >= 10)
        return cmd_mktx(argc - 2, argv + 2);
    if (strcmp(cmd, "scan") == 0 && argc >= 5)
        return cmd_scan(argc - 2, argv + 2);
    if (strcmp(cmd, "list") == 0 && argc == 4)
        return cmd_list(argv + 2);
    fprintf(stderr,
            "usage: it_evm deploy|publish|publish-gas|gen|mktx|scan|list ... (see it_evm.c)\n");
    return 2;
}
