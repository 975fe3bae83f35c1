/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_watch.c: `ocra watch` follows a chain's finalized blocks and prints one JSON line per
 * model-spec write under the watched patterns, journaling each (accepted or rejected, with
 * the reason) exactly once: a restart resumes after the journal's cursor.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "chain/ain/ain.h"
#include "chain/evm/evm.h"
#include "daemon/daemon.h"
#include "store/store.h"

struct watch_opts {
    const char *chain, *ws, *journal, *contract;
    const char **rpcs, **paths, **allow; /* --rpc: endpoints in order of preference */
    size_t n_rpcs, n_paths, n_allow;
    int64_t from_block, chain_id, confirmations;
    bool once, evm, from_block_set, chain_id_set, confirmations_set;
};

/* What a source borrows from run_watch() for its whole life. */
struct watch_state {
    struct ocra_ain_watch *watch;
    size_t n_watch;
    const char *const *allow;
    size_t n_allow;
    struct ocra_evm_source_opts evm;
    struct ocra_daemon_source_opts so;
};

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int
print_event(const struct ocra_store_event *ev, void *arg)
{
    (void)arg;
    ocra_cli_print_event(ev);
    return stop_requested ? 1 : 0;
}

/* A reorg the EVM source saw, as one JSON line beside the events. */
static void
print_reorg(const struct ocra_evm_reorg *r, void *arg)
{
    (void)arg;
    printf("{\"reorg\":{\"block\":%lld,\"depth\":%lld,\"finalityViolation\":%s,"
           "\"orphanedEvents\":%zu}}\n",
           (long long)r->block, (long long)r->depth, r->finality_violation ? "true" : "false",
           r->n_orphaned);
    fflush(stdout);
}

/* The watch list: --path patterns (each trusting every --allow), else the config's. */
static struct ocra_ain_watch *
watch_list(const struct watch_opts *o, const struct ocra_config *cfg, size_t *n)
{
    struct ocra_ain_watch *w;

    if (!o->n_paths)
        return ocra_daemon_watch_list(cfg, n);
    w = ocra_xcalloc(o->n_paths, sizeof(*w));
    for (size_t i = 0; i < o->n_paths; i++)
        w[i] = (struct ocra_ain_watch){o->paths[i], o->allow, o->n_allow};
    *n = o->n_paths;
    return w;
}

static struct ocra_source *
make_source(const struct watch_opts *o, const struct ocra_config *cfg, struct ocra_store *st,
            struct watch_state *ws, struct ocra_err *err)
{
    ws->so = (struct ocra_daemon_source_opts){.evm = o->evm,
                                              .rpcs = o->rpcs,
                                              .n_rpcs = o->n_rpcs,
                                              .ws = o->once ? NULL : o->ws,
                                              .contract = o->contract,
                                              .watch = ws->watch,
                                              .n_watch = ws->n_watch,
                                              .allow = ws->allow,
                                              .n_allow = ws->n_allow,
                                              .chain_id = o->chain_id,
                                              .from_block = o->from_block,
                                              .confirmations = o->confirmations,
                                              .store = st,
                                              .on_event = print_event,
                                              .on_reorg = print_reorg};
    return ocra_daemon_source_new(&ws->so, cfg, &ws->evm, err);
}

/* --from-block only places a journal's first cursor: with a cursor there already, say on stderr
 * that it is not used and where the watch resumes instead. */
static void
note_from_block(const struct watch_opts *o, struct ocra_store *st, const char *source)
{
    struct ocra_store_cursor cur;
    struct ocra_err err = {0};
    bool have = false;

    if (!o->from_block_set || ocra_store_cursor_get(st, source, &cur, &have, &err) < 0 || !have)
        return;
    fprintf(stderr,
            "ocra: watch: --from-block %lld ignored: the journal %s already has a cursor for %s at "
            "block %lld, so the watch resumes at block %lld (give a new --journal to start "
            "elsewhere)\n",
            (long long)o->from_block, o->journal, source, (long long)cur.block_number,
            (long long)cur.block_number + 1);
}

static int
run_watch(const struct watch_opts *o, const struct ocra_config *cfg)
{
    struct watch_state ws = {0};
    struct ocra_source *src = NULL;
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    int status = OCRA_CLI_USAGE;
    size_t total = 0;

    if (!o->evm) {
        ws.watch = watch_list(o, cfg, &ws.n_watch);
        if (ws.n_watch == 0) {
            ocra_cli_fail(status, "watch: no --path given and no ain.watch in the configuration");
            goto out;
        }
    }
    ws.allow = o->n_allow ? o->allow : (const char *const *)cfg->evm.allow;
    ws.n_allow = o->n_allow ? o->n_allow : cfg->evm.n_allow;
    if (ocra_store_open(o->journal, &st, &err) < 0) {
        status = ocra_cli_fail(OCRA_CLI_FAIL, "watch: journal %s: %s", o->journal, err.msg);
        goto out;
    }
    src = make_source(o, cfg, st, &ws, &err);
    if (!src) {
        status = ocra_cli_fail(err.code == EINVAL ? OCRA_CLI_USAGE : OCRA_CLI_FAIL, "watch: %s",
                               err.msg);
        goto out;
    }
    note_from_block(o, st, src->name);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    ocra_log_info("watch: source=%s rpc=%s journal=%s", src->name, o->rpcs[0], o->journal);
    status = OCRA_CLI_OK;
    if (ocra_daemon_follow(src, o->evm ? cfg->evm.poll_interval_ms : cfg->ain.poll_interval_ms,
                           o->once, &stop_requested, NULL, NULL, &total, &err) < 0)
        status = ocra_cli_fail(OCRA_CLI_FAIL, "watch: %s", err.msg);
    ocra_log_info("watch: stopped source=%s events=%zu", src->name, total);
out:
    if (src)
        src->free(src);
    ocra_store_close(st);
    free(ws.watch);
    return status;
}

static int
parse_int(const char *name, const char *arg, int64_t min, int64_t max, int64_t *out, bool *set)
{
    *set = true;
    return ocra_cli_parse_int(name, arg, min, max, out);
}

static int
parse_opts(int argc, char **argv, struct watch_opts *o)
{
    static const struct option longopts[] = {
        {"chain", required_argument, NULL, 'C'},
        {"rpc", required_argument, NULL, 'r'},
        {"ws", required_argument, NULL, 'w'},
        {"path", required_argument, NULL, 'p'},
        {"allow", required_argument, NULL, 'a'},
        {"from-block", required_argument, NULL, 'f'},
        {"once", no_argument, NULL, '1'},
        {"journal", required_argument, NULL, 'j'},
        {"chain-id", required_argument, NULL, 'i'},
        {"contract", required_argument, NULL, 'K'},
        {"confirmations", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    int c, rc = OCRA_CLI_OK;

    while (rc == OCRA_CLI_OK && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'C':
            o->chain = optarg;
            break;
        case 'r':
            o->rpcs[o->n_rpcs++] = optarg;
            break;
        case 'w':
            o->ws = optarg;
            break;
        case 'p':
            o->paths[o->n_paths++] = optarg;
            break;
        case 'a':
            o->allow[o->n_allow++] = optarg;
            break;
        case 'K':
            o->contract = optarg;
            break;
        case 'f':
            rc = parse_int("from-block", optarg, -1, INT64_MAX, &o->from_block, &o->from_block_set);
            break;
        case 'i':
            rc = parse_int("chain-id", optarg, 0, INT64_MAX, &o->chain_id, &o->chain_id_set);
            break;
        case 'n':
            rc = parse_int("confirmations", optarg, 0, 100000, &o->confirmations,
                           &o->confirmations_set);
            break;
        case '1':
            o->once = true;
            break;
        case 'j':
            o->journal = optarg;
            break;
        default:
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help watch`");
        }
    }
    if (rc == OCRA_CLI_OK && optind < argc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "watch: unexpected argument '%s'", argv[optind]);
    return rc;
}

/* --chain, else the one chain the configuration sets up (AIN when both or neither). */
static int
pick_chain(struct watch_opts *o, const struct ocra_config *cfg)
{
    if (!o->chain)
        o->chain = !*cfg->ain.rpc && cfg->evm.n_rpc ? "evm" : "ain";
    if (strcmp(o->chain, "evm") == 0)
        o->evm = true;
    else if (strcmp(o->chain, "ain") != 0)
        return ocra_cli_fail(OCRA_CLI_USAGE, "watch: --chain %s: want ain or evm", o->chain);
    return OCRA_CLI_OK;
}

/* Fills what the command line left out from the chain's configuration keys. */
static int
complete_opts(struct watch_opts *o, const struct ocra_config *cfg)
{
    int rc = pick_chain(o, cfg);

    if (rc != OCRA_CLI_OK)
        return rc;
    if (!o->n_rpcs && !o->evm && *cfg->ain.rpc)
        o->rpcs[o->n_rpcs++] = cfg->ain.rpc;
    for (size_t i = 0; !o->n_rpcs && o->evm && i < cfg->evm.n_rpc; i++)
        o->rpcs[o->n_rpcs++] = cfg->evm.rpc[i];
    if (!o->n_rpcs)
        return ocra_cli_fail(OCRA_CLI_USAGE, "watch: no --rpc URL and no %s.rpc configured",
                             o->chain);
    if (!o->ws && !o->evm && *cfg->ain.ws)
        o->ws = cfg->ain.ws;
    if (!o->contract && o->evm && *cfg->evm.contract)
        o->contract = cfg->evm.contract;
    if (o->evm && !o->contract)
        return ocra_cli_fail(OCRA_CLI_USAGE, "watch: --chain evm needs --contract or evm.contract");
    if (!o->from_block_set)
        o->from_block = o->evm ? cfg->evm.from_block : cfg->ain.from_block;
    if (!o->chain_id_set)
        o->chain_id = o->evm ? cfg->evm.chain_id : cfg->ain.chain_id;
    if (!o->confirmations_set)
        o->confirmations = cfg->evm.confirmations;
    if (!o->journal)
        o->journal = cfg->journal_path;
    for (size_t i = 0; i < o->n_allow; i++)
        if (!ocra_chain_address_valid(o->allow[i]))
            return ocra_cli_fail(OCRA_CLI_USAGE, "--allow %s: want 0x and 40 hex digits",
                                 o->allow[i]);
    return OCRA_CLI_OK;
}

static int
watch_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    struct watch_opts o = {0};
    int status = ocra_cli_config(ctx);

    if (status != OCRA_CLI_OK)
        return status;
    o.rpcs = ocra_xcalloc((size_t)argc + ctx->cfg.evm.n_rpc + 1, sizeof(char *));
    o.paths = ocra_xcalloc((size_t)argc, sizeof(char *));
    o.allow = ocra_xcalloc((size_t)argc, sizeof(char *));
    status = parse_opts(argc, argv, &o);
    if (status == OCRA_CLI_OK)
        status = complete_opts(&o, &ctx->cfg);
    if (status == OCRA_CLI_OK)
        status = run_watch(&o, &ctx->cfg);
    free(o.rpcs);
    free(o.paths);
    free(o.allow);
    return status;
}

const struct ocra_cli_cmd ocra_cli_watch_cmd = {
    "watch", "follow a chain and print each model-spec write as a JSON line",
    "usage: ocra watch [--chain ain] [--rpc URL] [--ws URL] [--path PATTERN]... [--allow ADDR]...\n"
    "                  [--from-block N] [--chain-id N] [--journal FILE] [--once]\n"
    "       ocra watch --chain evm [--rpc URL]... --contract ADDR [--confirmations N]\n"
    "                  [--allow ADDR]... [--from-block N] [--chain-id N] [--journal FILE] "
    "[--once]\n"
    "\n"
    "Reads the chain's final blocks after the journal's cursor, journals every model-spec\n"
    "write as an event, exactly once (a restart resumes after the last whole block), and\n"
    "prints it as one JSON line: event id, block number and hash, tx hash, model path, signer,\n"
    "trusted, status (accepted or rejected), the spec (null when removed) or the reason.\n"
    "\n"
    "AIN (ain:<chain_id>:<tx_hash>:<op_index>): every successful SET_VALUE under a watched\n"
    "PATTERN; a write below a model (.../NAME/modelVersion) is merged into the model's last\n"
    "value. A write above the models (.../models = null or an object) is one event per model\n"
    "it removes or writes (id ...:<op_index>:<the model's path below the write>). The signer\n"
    "is recovered from each signature and must be in the allowlist. Lists in a spec (AIN's\n"
    "index-keyed objects) are printed as arrays.\n"
    "EVM (evm:<chain_id>:<block_hash>:<log_index>): every ModelPublished log of the\n"
    "ModelRegistry contract, once its block is --confirmations deep (or final by the\n"
    "evm.finality tag); a reorg drops unconfirmed events and prints a {\"reorg\": ...} line;\n"
    "the publisher must be in the allowlist as well as the contract's.\n"
    "\n"
    "options (each defaults to the configuration's ain.* or evm.* keys, see docs/CHAINS.md):\n"
    "      --chain ain|evm    the chain kind (default: the one configured; ain)\n"
    "      --rpc URL          the node's JSON-RPC endpoint; EVM: repeatable, in order of\n"
    "                         preference (the next one takes over when one fails)\n"
    "      --ws URL           AIN: the node's event WebSocket (ws://HOST:5100): a\n"
    "                         BLOCK_FINALIZED wakes the scanner at once; without it (or while\n"
    "                         it is down) the scanner polls every ain.poll_interval_ms\n"
    "      --path PATTERN     AIN: a watched pattern, /apps/APP/models/$name ($var: one\n"
    "                         segment); repeatable; replaces ain.watch\n"
    "      --allow ADDR       a trusted signer (AIN: for the --path patterns) or publisher\n"
    "                         (EVM); repeatable\n"
    "      --contract ADDR    EVM: the ModelRegistry contract\n"
    "      --confirmations N  EVM: blocks on top before a log counts (default 12)\n"
    "      --from-block N     where a new journal starts (-1: the current final head); a\n"
    "                         journal with a cursor resumes after it (stderr says so)\n"
    "      --chain-id N       the chain id (AIN default 0; EVM default: the node's)\n"
    "      --journal FILE     the SQLite journal (default: journal.path)\n"
    "      --once             stop when caught up with the head, instead of following\n"
    "\n"
    "examples:\n"
    "  ocra watch --once                    # the configured AIN watch, up to the head\n"
    "  ocra watch --chain evm --rpc http://127.0.0.1:8545 --contract 0x5FbD...0aa3\n"
    "  ocra watch --path '/apps/my_app/models/$name' --allow 0xAbC... | jq .status\n"
    "\n"
    "exit status: 0 ok (stopped by --once or a signal), 1 the node or the journal failed\n"
    "(with --once), 2 usage error.\n",
    watch_run, NULL};
