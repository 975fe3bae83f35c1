/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_check.c: `ocra daemon --check`. Everything the daemon needs, tried once, each with
 * a line that says what was checked and, on failure, why and what to change: the journal,
 * the signing keys (their addresses only, never the key), the chain endpoints (chain id,
 * head, the contract's code), and the Docker engine. The registry and slurmrestd checks join
 * here when their configuration keys exist (issues 6 and 7).
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

struct check {
    ocra_daemon_check_fn *fn;
    void *arg;
    int failed;
};

static void say(struct check *c, bool ok, const char *what, const char *fmt, ...) OCRA_PRINTF(4, 5);

static void
say(struct check *c, bool ok, const char *what, const char *fmt, ...)
{
    char msg[600];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!ok)
        c->failed++;
    c->fn(ok, what, msg, c->arg);
}

static void
check_journal(struct check *c, const struct ocra_config *cfg)
{
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};

    if (ocra_store_open(cfg->journal_path, &st, &err) < 0)
        say(c, false, "journal", "%s (journal.path: a writable file)", err.msg);
    else
        say(c, true, "journal", "%s, schema %d", cfg->journal_path, ocra_store_schema_version(st));
    ocra_store_close(st);
}

static void
check_key(struct check *c, const char *key_name, const char *path, bool needed)
{
    struct ocra_chain_key *key;
    struct ocra_err err = {0};

    if (!*path) {
        if (needed)
            say(c, false, key_name,
                "not set, but daemon.report is true: reports are signed "
                "with it (or set daemon.report: false)");
        return;
    }
    if (!(key = ocra_chain_key_load(path, &err)))
        say(c, false, key_name, "%s", err.msg);
    else
        say(c, true, key_name, "%s: signer %s", path, ocra_chain_key_address(key));
    ocra_chain_key_free(key);
}

static void
check_ain(struct check *c, const struct ocra_config *cfg)
{
    struct ocra_ain_rpc_opts ro = {.url = cfg->ain.rpc, .timeout_ms = 5000};
    struct ocra_ain_rpc *rpc;
    struct ocra_err err = {0};
    json_t *v;

    if (!*cfg->ain.rpc)
        return;
    rpc = ocra_ain_rpc_new(&ro);
    v = ocra_ain_rpc_call(rpc, "ain_getLastBlockNumber", NULL, NULL, &err);
    if (!v)
        say(c, false, "ain.rpc", "%s: %s (is the node up and ain.rpc its /json-rpc URL?)",
            cfg->ain.rpc, err.msg);
    else
        say(c, true, "ain.rpc", "%s: last block %lld", cfg->ain.rpc,
            (long long)json_integer_value(v));
    json_decref(v);
    ocra_ain_rpc_free(rpc);
    if (cfg->ain.n_watch == 0)
        say(c, false, "ain.watch", "empty: the AIN watcher has no path to follow");
}

/* The contract must have code at the node's head. */
static void
check_contract(struct check *c, struct ocra_evm_rpc *rpc, const char *contract)
{
    json_t *params = json_pack("[s, s]", contract, "latest"), *code;
    struct ocra_err err = {0};

    code = ocra_evm_rpc_call(rpc, "eth_getCode", params, NULL, &err);
    json_decref(params);
    if (!code)
        say(c, false, "evm.contract", "%s: %s", contract, err.msg);
    else if (!json_is_string(code) || strlen(json_string_value(code)) <= 2)
        say(c, false, "evm.contract", "%s: no contract code there (wrong address or chain?)",
            contract);
    else
        say(c, true, "evm.contract", "%s: has code", contract);
    json_decref(code);
}

static void
check_evm(struct check *c, const struct ocra_config *cfg)
{
    for (size_t i = 0; i < cfg->evm.n_rpc; i++) {
        const char *url = cfg->evm.rpc[i];
        struct ocra_evm_rpc_opts ro = {.urls = &url, .n_urls = 1, .timeout_ms = 5000};
        struct ocra_err err = {0};
        struct ocra_evm_rpc *rpc = ocra_evm_rpc_new(&ro, &err);
        int64_t id = 0, head = 0;

        if (!rpc || ocra_evm_chain_id(rpc, &id, &err) < 0 ||
            ocra_evm_block_number(rpc, &head, &err) < 0) {
            say(c, false, "evm.rpc", "%s: %s (is the node up?)", url, err.msg);
        } else if (cfg->evm.chain_id && id != cfg->evm.chain_id) {
            say(c, false, "evm.rpc", "%s: chain id %lld, but evm.chain_id is %lld", url,
                (long long)id, (long long)cfg->evm.chain_id);
        } else {
            say(c, true, "evm.rpc", "%s: chain %lld, block %lld", url, (long long)id,
                (long long)head);
            if (i == 0 && *cfg->evm.contract)
                check_contract(c, rpc, cfg->evm.contract);
        }
        ocra_evm_rpc_free(rpc);
    }
    if (cfg->evm.n_rpc && !*cfg->evm.contract)
        say(c, false, "evm.contract", "not set: the EVM watcher needs the ModelRegistry address");
}

static void
check_docker(struct check *c, const struct ocra_config *cfg)
{
    const char *host = cfg->run.docker_host;
    struct ocra_image_docker_opts o = {.socket = *host ? host + strlen("unix://") : NULL,
                                       .timeout_ms = 5000};
    struct ocra_image_docker *dk;
    struct ocra_err err = {0};

    dk = ocra_image_docker_new(&o, &err);
    if (!dk)
        say(c, false, "docker", "%s: %s (is dockerd running? run.docker_host names its socket)",
            *host ? host : "$DOCKER_HOST or /var/run/docker.sock", err.msg);
    else
        say(c, true, "docker", "%s: API %s", *host ? host : "default socket",
            ocra_image_docker_api_version(dk));
    ocra_image_docker_free(dk);
}

int
ocra_daemon_check(const struct ocra_config *cfg, ocra_daemon_check_fn *fn, void *arg)
{
    struct check c = {fn, arg, 0};
    bool evm = cfg->evm.n_rpc > 0, ain = *cfg->ain.rpc != '\0';

    check_journal(&c, cfg);
    if (!ain && !evm)
        say(&c, false, "chains",
            "none configured: set ain.rpc + ain.watch or evm.rpc + "
            "evm.contract");
    check_ain(&c, cfg);
    check_key(&c, "ain.key_file", cfg->ain.key_file, ain && cfg->daemon.report);
    check_evm(&c, cfg);
    check_key(&c, "evm.key_file", cfg->evm.key_file, evm && cfg->daemon.report);
    check_docker(&c, cfg);
    return c.failed;
}
