/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_check.c: `ocra daemon --check`. Everything the daemon needs, tried once, each with
 * a line that says what was checked and, on failure, why and what to change: the journal,
 * the signing keys (their addresses only, never the key), the chain endpoints (chain id,
 * head, the contract's code), the Docker engine, the registry images are pushed to (GET /v2/
 * with its credentials), the ocra-agent binary every image carries, and slurmrestd when the
 * Slurm runner is configured (its nodes and partitions). And what the daemon would only find
 * out later, one event at a time: that the operator's account may report (a reporter on the
 * ModelRegistry; write permission on the AIN report path) and can pay for a report (its gas
 * balance against the current fee), that the agent socket directory can be used (or every
 * workload runs unreported), and that the API's listen address is not open to the network
 * without a token (the daemon refuses to start then).
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "build/build.h"
#include "image/image.h"
#include "run/run.h"
#include "spec/spec.h"

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

/* The report path of daemon.report_ain_path for watched path pattern `watch` ({app}: its
 * app; {shortid}: a placeholder); NULL when the pattern has no app. */
static char *
ain_report_path(const char *tmpl, const char *watch)
{
    const char *app = !strncmp(watch, "/apps/", 6) ? watch + 6 : NULL;
    size_t app_len = app ? strcspn(app, "/") : 0;
    struct ocra_buf b;

    if (strstr(tmpl, "{app}") && (!app_len || memchr(app, '$', app_len)))
        return NULL;
    ocra_buf_init(&b);
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "{app}", 5)) {
            ocra_buf_append(&b, app, app_len);
            p += 5;
        } else if (!strncmp(p, "{shortid}", 9)) {
            ocra_buf_puts(&b, "000000000000");
            p += 9;
        } else {
            ocra_buf_putc(&b, *p++);
        }
    }
    return ocra_buf_take(&b);
}

/* The node evaluates its write rule for a report by the operator (ain_evalRule): a rule that
 * says no makes every report fail at the node. */
static void
check_ain_report(struct check *c, const struct ocra_config *cfg)
{
    struct ocra_ain_rpc_opts ro = {.url = cfg->ain.rpc, .timeout_ms = 5000};
    struct ocra_ain_rpc *rpc = NULL;
    struct ocra_chain_key *key;
    struct ocra_err err = {0};

    if (!*cfg->ain.rpc || !cfg->daemon.report || !*cfg->ain.key_file ||
        !(key = ocra_chain_key_load(cfg->ain.key_file, &err)))
        return; /* check_key says why */
    rpc = ocra_ain_rpc_new(&ro);
    for (size_t i = 0; i < cfg->ain.n_watch; i++) {
        char *path = ain_report_path(cfg->daemon.report_ain_path, cfg->ain.watch[i].path);
        json_t *params, *r;
        int64_t node_code = 0;

        if (!path) {
            say(c, false, "ain.report", "%s: no app in %s for daemon.report_ain_path's {app}",
                cfg->daemon.report_ain_path, cfg->ain.watch[i].path);
            continue;
        }
        params = json_pack("{s:s,s:{s:s,s:s},s:s,s:I}", "ref", path, "value", "event",
                           "ocra daemon --check", "status", "completed", "address",
                           ocra_chain_key_address(key), "timestamp", (json_int_t)time(NULL) * 1000);
        r = ocra_ain_rpc_call(rpc, "ain_evalRule", params, &node_code, &err);
        json_decref(params);
        if (!r && node_code == -32601)
            say(c, true, "ain.report", "%s: not checked: the node has no ain_evalRule", path);
        else if (!r)
            say(c, false, "ain.report", "%s: %s (is the node up?)", path, err.msg);
        else if (!json_is_object(r) || ocra_json_int(r, "code", -1) != 0)
            say(c, false, "ain.report",
                "%s: %s may not write here: the node says code %lld: %.300s (the app's owner "
                "sets a write rule on the report path that lets this address write: see "
                "docs/CHAINS.md)",
                path, ocra_chain_key_address(key), (long long)ocra_json_int(r, "code", -1),
                ocra_json_str(r, "error_message") ? ocra_json_str(r, "error_message")
                                                  : "(no message)");
        else
            say(c, true, "ain.report", "%s: %s may write reports here", path,
                ocra_chain_key_address(key));
        json_decref(r);
        free(path);
    }
    ocra_ain_rpc_free(rpc);
    ocra_chain_key_free(key);
}

/* The contract must have code at the node's head; true when it has. */
static bool
check_contract(struct check *c, struct ocra_evm_rpc *rpc, const char *contract)
{
    json_t *params = json_pack("[s, s]", contract, "latest"), *code;
    struct ocra_err err = {0};
    bool ok = false;

    code = ocra_evm_rpc_call(rpc, "eth_getCode", params, NULL, &err);
    json_decref(params);
    if (!code)
        say(c, false, "evm.contract", "%s: %s", contract, err.msg);
    else if (!json_is_string(code) || strlen(json_string_value(code)) <= 2)
        say(c, false, "evm.contract", "%s: no contract code there (wrong address or chain?)",
            contract);
    else
        say(c, ok = true, "evm.contract", "%s: has code", contract);
    json_decref(code);
    return ok;
}

/* wei as people read it */
static const char *
wei_text(uint64_t wei, char *buf, size_t size)
{
    if (wei == UINT64_MAX)
        (void)snprintf(buf, size, "more than 18 ETH");
    else if (wei >= 1000000000000000ull)
        (void)snprintf(buf, size, "%.4f ETH", (double)wei / 1e18);
    else if (wei >= 1000000000ull)
        (void)snprintf(buf, size, "%llu wei (%.3g ETH)", (unsigned long long)wei,
                       (double)wei / 1e18);
    else
        (void)snprintf(buf, size, "%llu wei", (unsigned long long)wei);
    return buf;
}

/* A report's gas: what eth_estimateGas says for a report of REPORT_BYTES, or this when it
 * cannot say (the account is no reporter: the estimate reverts). */
#define REPORT_BYTES 768
#define REPORT_GAS_FALLBACK 100000u

/* The operator's balance against what one report costs at the current fee. */
static void
check_evm_balance(struct check *c, struct ocra_evm_rpc *rpc, const struct ocra_config *cfg,
                  const struct ocra_chain_key *key)
{
    const char *addr = ocra_chain_key_address(key);
    uint8_t word[32] = {0}, *data;
    char report[REPORT_BYTES + 1], have[48], need[48];
    uint64_t balance = 0, gas = 0, fee = 0, cost;
    struct ocra_err err = {0};
    size_t len;

    memset(report, 'x', REPORT_BYTES);
    report[REPORT_BYTES] = '\0';
    data =
        ocra_evm_abi_call_b32_str("reportStatus(bytes32,string)", word, report, REPORT_BYTES, &len);
    if (ocra_evm_estimate_cost(rpc, key, cfg->evm.contract, data, len, &gas, &fee, &err) < 0) {
        if (!fee) {
            say(c, false, "evm.balance", "%s: cannot read the current fee: %s", addr, err.msg);
            free(data);
            return;
        }
        gas = REPORT_GAS_FALLBACK;
    }
    free(data);
    if (ocra_evm_balance(rpc, addr, &balance, &err) < 0) {
        say(c, false, "evm.balance", "%s: %s", addr, err.msg);
        return;
    }
    cost = fee && gas > UINT64_MAX / fee ? UINT64_MAX : gas * fee;
    if (balance < cost)
        say(c, false, "evm.balance",
            "%s has %s; a report costs up to %s now (%llu gas at %llu wei/gas): send the "
            "operator's account at least that much for each report it will make",
            addr, wei_text(balance, have, sizeof(have)), wei_text(cost, need, sizeof(need)),
            (unsigned long long)gas, (unsigned long long)fee);
    else
        say(c, true, "evm.balance", "%s has %s; a report costs up to %s now", addr,
            wei_text(balance, have, sizeof(have)), wei_text(cost, need, sizeof(need)));
}

/* The operator's account must be a reporter on the contract, or every report reverts with
 * NotReporter(); and it pays for each report. */
static void
check_evm_operator(struct check *c, struct ocra_evm_rpc *rpc, const struct ocra_config *cfg)
{
    struct ocra_chain_key *key;
    struct ocra_err err = {0};
    bool reporter = false;
    const char *addr;

    if (!cfg->daemon.report || !*cfg->evm.key_file ||
        !(key = ocra_chain_key_load(cfg->evm.key_file, &err)))
        return; /* check_key says why */
    addr = ocra_chain_key_address(key);
    if (ocra_evm_call_role(rpc, cfg->evm.contract, "isReporter(address)", addr, &reporter, &err) <
        0)
        say(c, false, "evm.reporter", "%s: %s", cfg->evm.contract, err.msg);
    else if (!reporter)
        say(c, false, "evm.reporter",
            "%s (evm.key_file) is not a reporter on %s: every report would revert with "
            "NotReporter(); the contract's owner runs: cast send %s 'setReporter(address,bool)' "
            "%s true --private-key OWNER_KEY",
            addr, cfg->evm.contract, cfg->evm.contract, addr);
    else
        say(c, true, "evm.reporter", "%s may report on %s", addr, cfg->evm.contract);
    check_evm_balance(c, rpc, cfg, key);
    ocra_chain_key_free(key);
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
            if (i == 0 && *cfg->evm.contract && check_contract(c, rpc, cfg->evm.contract))
                check_evm_operator(c, rpc, cfg);
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
    /* this host's engine: the builds' and the docker runner's */
    const struct ocra_run_opts o = {.kind = OCRA_RUN_KIND_DOCKER,
                                    .docker_socket = ocra_config_docker_socket(cfg),
                                    .docker_timeout_ms = 5000};
    struct ocra_runner *dk;
    struct ocra_err err = {0};
    char what[64] = "";

    dk = ocra_run_new(&o, &err);
    if (!dk || dk->probe(dk, what, sizeof(what), &err) < 0)
        say(c, false, "docker", "%s: %s (is dockerd running? run.docker_host names its socket)",
            *host ? host : "$DOCKER_HOST or /var/run/docker.sock", err.msg);
    else
        say(c, true, "docker", "%s: %s", *host ? host : "default socket", what);
    ocra_runner_free(dk);
}

/* Each node's own engine (inventory.nodes docker_host): its URL, its TLS files, the handshake
 * and the engine's answer, one line per node naming what to fix. */
static void
check_docker_hosts(struct check *c, const struct ocra_config *cfg)
{
    struct ocra_run_host *hosts;
    size_t n;

    ocra_daemon_docker_hosts(cfg, &hosts, &n);
    for (size_t i = 0; i < n; i++) {
        const struct ocra_run_opts o = {.kind = OCRA_RUN_KIND_DOCKER,
                                        .hosts = &hosts[i],
                                        .n_hosts = 1,
                                        .docker_timeout_ms = 5000};
        struct ocra_runner *dk;
        struct ocra_err err = {0};
        char what[160] = "", name[96];

        snprintf(name, sizeof(name), "node %s engine", hosts[i].node);
        dk = ocra_run_new(&o, &err);
        if ((!dk || dk->probe(dk, what, sizeof(what), &err) < 0) && err.code == EHOSTDOWN)
            say(c, false, name,
                "%s: %s (is its dockerd listening there? tcp:// needs --tlsverify on the engine "
                "and docker_tls_ca/cert/key or run.docker_tls.* here, of the CA that signed the "
                "engine's certificate)",
                hosts[i].endpoint, err.msg);
        else if (err.code) /* the URL or the files: the message says what to fix */
            say(c, false, name, "%s: %s", hosts[i].endpoint, err.msg);
        else
            say(c, true, name, "%s: %s", hosts[i].endpoint, what);
        ocra_runner_free(dk);
    }
    for (size_t i = 0; n && i < cfg->n_nodes; i++)
        if (!*cfg->nodes[i].docker_host)
            say(c, false, "inventory.nodes",
                "node %s names no docker_host while others do: nothing is placed on it (name "
                "its engine, or remove it)",
                cfg->nodes[i].name);
    free(hosts);
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

    if (!(ocra_run_kind_supports(cfg->run.runner) & OCRA_RUN_PLACES_BY_COUNT))
        return; /* the runner places on this host's devices: no cluster to ask */
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

/* The agent socket directory: without it the workloads run, but report nothing. */
static void
check_agent_sockets(struct check *c, const struct ocra_config *cfg)
{
    const struct ocra_agentd_options o = {.dir = cfg->agent.socket_dir,
                                          .name_max = OCRA_RUN_NAME_MAX - 1};
    struct ocra_err err = {0};

    if (!*cfg->agent.socket_dir)
        say(c, true, "agent.socket_dir", "not set: workloads run without reporting to the daemon");
    else if (ocra_agentd_dir_check(&o, &err) < 0)
        say(c, false, "agent.socket_dir",
            "%s (the daemon would run every workload without its reports: set agent.socket_dir "
            "to a directory this user may create, or own and alone may write)",
            err.msg);
    else
        say(c, true, "agent.socket_dir", "%s: usable", cfg->agent.socket_dir);
}

/* What the API refuses at start (the daemon exits then): a bad address, a token file others
 * may read, a non-loopback address without a token. */
static void
check_api(struct check *c, const struct ocra_config *cfg)
{
    const struct ocra_api_opts o = {.listen = cfg->api_listen,
                                    .token_file = cfg->api_token_file,
                                    .allowed_hosts = (const char *const *)cfg->api_allowed_hosts,
                                    .n_allowed_hosts = cfg->n_api_allowed_hosts};
    struct ocra_err err = {0};
    bool loopback = false;

    if (!cfg->api_listen || !*cfg->api_listen)
        return;
    if (ocra_api_opts_check(&o, &loopback, &err) < 0)
        say(c, false, "api.listen", "%s (the daemon refuses to start with it)", err.msg);
    else
        say(c, true, "api.listen", "%s%s", cfg->api_listen,
            loopback ? " (loopback)" : ", calls need the token of api.token_file");
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
    check_ain_report(&c, cfg);
    check_evm(&c, cfg);
    check_key(&c, "evm.key_file", cfg->evm.key_file, evm && cfg->daemon.report);
    check_docker(&c, cfg);
    check_docker_hosts(&c, cfg);
    check_registry(&c, cfg);
    check_agent(&c, cfg);
    check_agent_sockets(&c, cfg);
    check_slurm(&c, cfg);
    check_api(&c, cfg);
    return c.failed;
}
