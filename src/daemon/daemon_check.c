/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_check.c: `ocra daemon --check`. Everything the daemon needs, tried once, each with
 * a line that says what was checked and, on failure, why and what to change: the journal,
 * the signing keys (their addresses only, never the key), the chain endpoints (chain id,
 * head, the contract's code), the Docker engine, the registry images are pushed to (GET /v2/
 * with its credentials), the ocra-agent binary every image carries, and slurmrestd when the
 * Slurm runner is configured (its nodes and partitions).
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build/build.h"
#include "image/image.h"
#include "run/run.h"

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
    struct ocra_image_docker_opts o = {.socket = ocra_config_docker_socket(cfg),
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

/* build.registry: parsed, and its /v2/ answers (with the credentials the pushes use). */
static void
check_registry(struct check *c, const struct ocra_config *cfg)
{
    struct ocra_image_registry_opts ro = {.timeout_ms = 5000, .max_attempts = 1};
    struct ocra_image_registry *r = NULL;
    struct ocra_err err = {0};
    char *url = NULL, *prefix = NULL;

    if (!*cfg->build.registry) {
        say(c, false, "build.registry",
            "not set: the daemon has nowhere to push images "
            "(HOST[:PORT]/PREFIX; images go to PREFIX/<model>)");
        return;
    }
    if (ocra_build_registry_parse(cfg->build.registry, &url, &prefix, &err) < 0) {
        say(c, false, "build.registry", "%s", err.msg);
        return;
    }
    ro.url = url;
    if (!(r = ocra_image_registry_new(&ro, &err)) || ocra_image_registry_ping(r, &err) < 0)
        say(c, false, "build.registry",
            "%s: %s (is the registry running? are its credentials in the Docker config?)", url,
            err.msg);
    else
        say(c, true, "build.registry", "%s: speaks the v2 API; images go to %s/<model>", url,
            prefix);
    ocra_image_registry_free(r);
    free(url);
    free(prefix);
}

/* The ocra-agent binary that goes into every image. */
static void
check_agent(struct check *c, const struct ocra_config *cfg)
{
    char *agent = ocra_build_agent_find(cfg->build.agent);

    if (!agent)
        say(c, false, "build.agent",
            "no ocra-agent binary found (set build.agent or $OCRA_AGENT; `make install` puts it "
            "in libexec/ocra/)");
    else if (access(agent, X_OK) != 0)
        say(c, false, "build.agent", "%s: not executable: %s", agent, strerror(errno));
    else
        say(c, true, "build.agent", "%s", agent);
    free(agent);
}

/* slurmrestd, when the Slurm runner is configured: the cluster's nodes and partitions. */
static void
check_slurm(struct check *c, const struct ocra_config *cfg)
{
    const struct ocra_run_slurm_opts so = {.url = cfg->run.slurm.url,
                                           .user = cfg->run.slurm.user,
                                           .token_file = cfg->run.slurm.token_file,
                                           .partition = cfg->run.slurm.partition,
                                           .request_timeout_ms = 5000};
    struct ocra_run_slurm_inventory inv = {0};
    struct ocra_err err = {0};
    int gpus = 0;

    if (cfg->run.runner != 1)
        return;
    if (ocra_run_slurm_inventory_get(&so, &inv, &err) < 0) {
        say(c, false, "run.slurm",
            "%s: %s (is slurmrestd running? run.slurm.token_file holds a "
            "JWT from `scontrol token`)",
            *so.url ? so.url : "(run.slurm.url not set)", err.msg);
        return;
    }
    for (size_t i = 0; i < inv.n_nodes; i++)
        gpus += inv.nodes[i].gpus;
    say(c, inv.n_nodes > 0, "run.slurm", "%s: %zu node%s, %zu partition%s, %d GPU%s", so.url,
        inv.n_nodes, inv.n_nodes == 1 ? "" : "s", inv.n_parts, inv.n_parts == 1 ? "" : "s", gpus,
        gpus == 1 ? "" : "s");
    ocra_run_slurm_inventory_fini(&inv);
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
    check_registry(&c, cfg);
    check_agent(&c, cfg);
    check_slurm(&c, cfg);
    return c.failed;
}
