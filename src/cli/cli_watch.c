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
#include "store/store.h"

struct watch_opts {
    const char *chain, *rpc, *ws, *journal;
    const char **paths, **allow;
    size_t n_paths, n_allow;
    int64_t from_block, chain_id;
    bool once, from_block_set, chain_id_set;
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

/* The watch list: --path patterns (each trusting every --allow), else the config's. */
static struct ocra_ain_watch *
watch_list(const struct watch_opts *o, const struct ocra_config *cfg, size_t *n)
{
    struct ocra_ain_watch *w;

    if (o->n_paths) {
        w = ocra_xcalloc(o->n_paths, sizeof(*w));
        for (size_t i = 0; i < o->n_paths; i++)
            w[i] = (struct ocra_ain_watch){o->paths[i], o->allow, o->n_allow};
        *n = o->n_paths;
        return w;
    }
    w = ocra_xcalloc(cfg->ain.n_watch, sizeof(*w));
    for (size_t i = 0; i < cfg->ain.n_watch; i++)
        w[i] = (struct ocra_ain_watch){cfg->ain.watch[i].path,
                                       (const char *const *)cfg->ain.watch[i].allow,
                                       cfg->ain.watch[i].n_allow};
    *n = cfg->ain.n_watch;
    return w;
}

/* Waits up to ms for the next poll, in slices, so that a signal stops it promptly; a push
 * channel (the AIN event WebSocket) ends the wait early. */
static void
wait_next(struct ocra_source *src, int64_t ms)
{
    uint64_t deadline = ocra_time_mono_ns() + (uint64_t)ms * 1000000u;

    while (!stop_requested) {
        uint64_t now = ocra_time_mono_ns();
        int64_t left = now >= deadline ? 0 : (int64_t)((deadline - now) / 1000000u);

        if (left <= 0 || src->wait(src, (long)(left < 250 ? left : 250)) > 0)
            return;
    }
}

/* Polls until caught up (--once) or until a signal; failures are retried next round. */
static int
follow(struct ocra_source *src, const struct watch_opts *o, int64_t interval_ms)
{
    size_t total = 0;

    while (!stop_requested) {
        struct ocra_err err = {0};
        bool caught_up = false;
        size_t n = 0;

        if (src->poll(src, &n, &caught_up, &err) < 0) {
            if (o->once)
                return ocra_cli_fail(OCRA_CLI_FAIL, "watch: %s", err.msg);
            ocra_log_error("watch: source=%s %s (retrying in %lld ms)", src->name, err.msg,
                           (long long)interval_ms);
        }
        total += n;
        if (o->once && caught_up)
            break;
        if (!caught_up && !stop_requested)
            continue;
        wait_next(src, interval_ms);
    }
    ocra_log_info("watch: stopped source=%s events=%zu", src->name, total);
    return OCRA_CLI_OK;
}

/* The source named by --chain, reading and journaling into st. */
static struct ocra_source *
make_source(const struct watch_opts *o, const struct ocra_config *cfg, struct ocra_store *st,
            const struct ocra_ain_watch *watch, size_t n_watch, struct ocra_err *err)
{
    struct ocra_ain_source_opts ao = {.rpc_url = o->rpc,
                                      .ws_url = o->once ? NULL : o->ws,
                                      .rate_limit = (int)cfg->ain.rate_limit,
                                      .retries = 4,
                                      .chain_id = o->chain_id,
                                      .watch = watch,
                                      .n_watch = n_watch,
                                      .from_block = o->from_block,
                                      .store = st,
                                      .on_event = print_event};

    return ocra_ain_source_new(&ao, err);
}

static int
run_watch(const struct watch_opts *o, const struct ocra_config *cfg)
{
    struct ocra_ain_watch *watch = NULL;
    struct ocra_source *src = NULL;
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    int status = OCRA_CLI_USAGE;
    size_t n_watch = 0;

    watch = watch_list(o, cfg, &n_watch);
    if (n_watch == 0) {
        ocra_cli_fail(status, "watch: no --path given and no ain.watch in the configuration");
        goto out;
    }
    if (ocra_store_open(o->journal, &st, &err) < 0) {
        status = ocra_cli_fail(OCRA_CLI_FAIL, "watch: journal %s: %s", o->journal, err.msg);
        goto out;
    }
    src = make_source(o, cfg, st, watch, n_watch, &err);
    if (!src) {
        ocra_cli_fail(status, "watch: %s", err.msg);
        goto out;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    ocra_log_info("watch: source=%s rpc=%s patterns=%zu journal=%s", src->name, o->rpc, n_watch,
                  o->journal);
    status = follow(src, o, cfg->ain.poll_interval_ms);
out:
    if (src)
        src->free(src);
    ocra_store_close(st);
    free(watch);
    return status;
}

static int
parse_opts(int argc, char **argv, struct watch_opts *o)
{
    static const struct option longopts[] = {
        {"chain", required_argument, NULL, 'C'},    {"rpc", required_argument, NULL, 'r'},
        {"ws", required_argument, NULL, 'w'},       {"path", required_argument, NULL, 'p'},
        {"allow", required_argument, NULL, 'a'},    {"from-block", required_argument, NULL, 'f'},
        {"once", no_argument, NULL, '1'},           {"journal", required_argument, NULL, 'j'},
        {"chain-id", required_argument, NULL, 'i'}, {NULL, 0, NULL, 0},
    };
    struct ocra_err err = {0};
    int c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'C':
            o->chain = optarg;
            break;
        case 'r':
            o->rpc = optarg;
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
        case 'f':
            if (ocra_parse_i64(optarg, -1, INT64_MAX, &o->from_block, &err) < 0)
                return ocra_cli_fail(OCRA_CLI_USAGE, "--from-block: %s", err.msg);
            o->from_block_set = true;
            break;
        case 'i':
            if (ocra_parse_i64(optarg, 0, 100, &o->chain_id, &err) < 0)
                return ocra_cli_fail(OCRA_CLI_USAGE, "--chain-id: %s", err.msg);
            o->chain_id_set = true;
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
    if (optind < argc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "watch: unexpected argument '%s'", argv[optind]);
    return OCRA_CLI_OK;
}

/* Fills what the command line left out from the configuration and checks the result. */
static int
complete_opts(struct watch_opts *o, const struct ocra_config *cfg)
{
    if (o->chain && strcmp(o->chain, "ain") != 0)
        return ocra_cli_fail(OCRA_CLI_USAGE, "watch: --chain %s: only ain is supported yet",
                             o->chain);
    if (!o->rpc && cfg->ain.rpc && *cfg->ain.rpc)
        o->rpc = cfg->ain.rpc;
    if (!o->rpc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "watch: no --rpc URL and no ain.rpc configured");
    if (!o->ws && cfg->ain.ws && *cfg->ain.ws)
        o->ws = cfg->ain.ws;
    if (!o->from_block_set)
        o->from_block = cfg->ain.from_block;
    if (!o->chain_id_set)
        o->chain_id = cfg->ain.chain_id;
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
    o.paths = ocra_xcalloc((size_t)argc, sizeof(char *));
    o.allow = ocra_xcalloc((size_t)argc, sizeof(char *));
    status = parse_opts(argc, argv, &o);
    if (status == OCRA_CLI_OK)
        status = complete_opts(&o, &ctx->cfg);
    if (status == OCRA_CLI_OK)
        status = run_watch(&o, &ctx->cfg);
    free(o.paths);
    free(o.allow);
    return status;
}

const struct ocra_cli_cmd ocra_cli_watch_cmd = {
    "watch", "follow a chain and print each model-spec write as a JSON line",
    "usage: ocra watch [--chain ain] [--rpc URL] [--ws URL] [--path PATTERN]... [--allow ADDR]...\n"
    "                  [--from-block N] [--chain-id N] [--journal FILE] [--once]\n"
    "\n"
    "Reads the chain's finalized blocks after the journal's cursor and, for every successful\n"
    "SET_VALUE under a watched PATTERN, journals an event and prints it as one JSON line:\n"
    "event id (ain:<chain_id>:<tx_hash>:<op_index>), block number and hash, tx hash, model\n"
    "path, signer, trusted, status (accepted or rejected), the model's merged spec (null when\n"
    "removed) or the rejection reason. A write below a model (.../NAME/modelVersion) is merged\n"
    "into the model's last value. The signer is recovered from each signature and must be in\n"
    "the allowlist; otherwise the event is journaled as rejected. Each event is journaled\n"
    "exactly once: a restart resumes after the last whole block.\n"
    "\n"
    "options (each defaults to the configuration's ain.* keys, see docs/CHAINS.md):\n"
    "      --chain ain        the chain kind (only ain yet)\n"
    "      --rpc URL          the node's JSON-RPC endpoint, e.g. http://127.0.0.1:8081/json-rpc\n"
    "      --ws URL           the node's event WebSocket (ws://HOST:5100); accepted, not yet "
    "used:\n"
    "                         the scanner polls every ain.poll_interval_ms\n"
    "      --path PATTERN     a watched pattern, /apps/APP/models/$name ($var: one segment);\n"
    "                         repeatable; replaces ain.watch\n"
    "      --allow ADDR       a trusted signer for the --path patterns; repeatable\n"
    "      --from-block N     where a new journal starts (-1: the current head)\n"
    "      --chain-id N       the chain id in event ids and signatures (default 0)\n"
    "      --journal FILE     the SQLite journal (default: journal.path)\n"
    "      --once             stop when caught up with the head, instead of following\n"
    "\n"
    "exit status: 0 ok (stopped by --once or a signal), 1 the node or the journal failed\n"
    "(with --once), 2 usage error.\n",
    watch_run, NULL};
