/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_daemon.c: `ocra daemon` runs the watchers and the stage machine until SIGTERM or
 * SIGINT, then drains and exits 0; SIGHUP reloads the configuration file. `--check` tries
 * the configuration's services once and explains each failure. The signals are blocked in
 * every thread and taken synchronously by the main thread (sigtimedwait), which also runs
 * the supervisor's tick.
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
#include "daemon/daemon.h"

/* Every configuration loaded by SIGHUP stays alive until exit: a worker may still read the
 * one it started its stage with. */
struct configs {
    struct ocra_config **v;
    size_t n;
};

static void
print_check(bool ok, const char *what, const char *msg, void *arg)
{
    (void)arg;
    printf("%-4s %s: %s\n", ok ? "ok" : "FAIL", what, msg);
    fflush(stdout);
}

static int
check(const struct ocra_config *cfg)
{
    int failed = ocra_daemon_check(cfg, print_check, NULL);

    if (failed)
        return ocra_cli_fail(OCRA_CLI_FAIL, "daemon --check: %d check%s failed", failed,
                             failed == 1 ? "" : "s");
    printf("all checks passed\n");
    return OCRA_CLI_OK;
}

/* Loads the file again; on success the daemon takes the new configuration. */
static void
reload(struct ocra_cli_ctx *ctx, struct ocra_daemon *d, struct configs *cs)
{
    struct ocra_config *cfg = ocra_xcalloc(1, sizeof(*cfg));
    struct ocra_config_problems probs = {0};
    struct ocra_err err = {0};

    if (!ctx->config_path) {
        ocra_log_warn("daemon: SIGHUP without a configuration file: nothing to reload");
        free(cfg);
        return;
    }
    if (ocra_config_load(ctx->config_path, cfg, &probs, &err) < 0) {
        for (size_t i = 0; i < probs.n; i++)
            ocra_log_error("reload: %s", probs.lines[i]);
        ocra_log_error("reload: %s: keeping the running configuration", err.msg);
        ocra_config_problems_fini(&probs);
        ocra_config_fini(cfg);
        free(cfg);
        return;
    }
    ocra_config_problems_fini(&probs);
    cs->v = ocra_xrealloc(cs->v, (cs->n + 1) * sizeof(*cs->v));
    cs->v[cs->n++] = cfg;
    if (!ctx->log_level_set)
        ocra_log_setup(cfg->log_level, ctx->log_format_set ? ctx->log_format : cfg->log_format);
    ocra_daemon_reload(d, cfg);
    ocra_log_info("reload: %s loaded (workers, journal and chain sources change at restart)",
                  ctx->config_path);
}

/* Ticks every daemon.poll_ms until SIGTERM or SIGINT; SIGHUP reloads. */
static int
supervise(struct ocra_cli_ctx *ctx, struct ocra_daemon *d, const sigset_t *set, struct configs *cs)
{
    const struct ocra_config *cfg = &ctx->cfg;

    for (;;) {
        struct ocra_err err = {0};
        int64_t ms = cs->n ? cs->v[cs->n - 1]->daemon.poll_ms : cfg->daemon.poll_ms;
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        int sig = sigtimedwait(set, NULL, &ts);

        if (sig == SIGTERM || sig == SIGINT) {
            ocra_log_info("daemon: %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return 0;
        }
        if (sig == SIGHUP)
            reload(ctx, d, cs);
        if (ocra_daemon_tick(d, &err) < 0)
            ocra_log_error("daemon: journal: %s", err.msg);
    }
}

static int
run_daemon(struct ocra_cli_ctx *ctx)
{
    struct ocra_daemon_opts o = {.cfg = &ctx->cfg};
    struct ocra_daemon_stats s;
    struct ocra_daemon *d = NULL;
    struct configs cs = {0};
    struct ocra_err err = {0};
    sigset_t set;
    int status = OCRA_CLI_FAIL;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* blocked before any thread starts, so that every thread inherits the mask */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (ocra_daemon_new(&o, &d, &err) < 0 || ocra_daemon_start(d, &err) < 0) {
        ocra_cli_fail(OCRA_CLI_FAIL, "daemon: %s", err.msg);
        goto out;
    }
    supervise(ctx, d, &set, &cs);
    ocra_daemon_stop(d);
    ocra_daemon_stats(d, &s);
    ocra_log_info("daemon: stopped claims=%lu done=%lu retried=%lu dead=%lu waiting=%lu", s.claimed,
                  s.done, s.retried, s.dead, s.waiting);
    status = OCRA_CLI_OK;
out:
    ocra_daemon_free(d);
    for (size_t i = 0; i < cs.n; i++) {
        ocra_config_fini(cs.v[i]);
        free(cs.v[i]);
    }
    free(cs.v);
    return status;
}

static int
daemon_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"journal", required_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    const char *journal = NULL;
    bool check_only = false;
    int c, status;

    while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
        if (c == 'c' && !ctx->cfg_loaded)
            ctx->config_path = optarg;
        else if (c == 'k')
            check_only = true;
        else if (c == 'j')
            journal = optarg;
        else
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help daemon`");
    }
    if (optind < argc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "daemon: unexpected argument '%s'", argv[optind]);
    if ((status = ocra_cli_config(ctx)) != OCRA_CLI_OK)
        return status;
    if (journal) {
        free(ctx->cfg.journal_path);
        ctx->cfg.journal_path = ocra_xstrdup(journal);
    }
    return check_only ? check(&ctx->cfg) : run_daemon(ctx);
}

const struct ocra_cli_cmd ocra_cli_daemon_cmd = {
    "daemon", "watch the chains and carry every model update through the pipeline",
    "usage: ocra daemon [-c FILE] [--journal FILE] [--check]\n"
    "\n"
    "Watches the configured chains (AIN: ain.rpc and ain.watch; EVM: evm.rpc and\n"
    "evm.contract), journals every model-spec write, and carries each event through the\n"
    "stages validate, plan, toolchain, push, sign, allocate, run, complete and report, with\n"
    "daemon.workers worker threads. Each stage's result is one journal transaction; a crash\n"
    "resumes at the first unfinished stage. Transient failures retry with backoff\n"
    "(daemon.retry_base_ms, daemon.retry_max_ms) up to daemon.max_attempts, then the event\n"
    "is dead-lettered (`ocra events --status dead`, `ocra retry ID`). A killed or crashed\n"
    "daemon is no failed attempt: the next start takes over its stages at once and runs\n"
    "them again (up to daemon.max_crashes deaths per stage). A newer version of a\n"
    "model supersedes an older one before allocation. Outcomes are reported on the event's\n"
    "chain. docs/ARCHITECTURE.md describes the stage machine and its guarantees.\n"
    "It serves the HTTP API, /metrics and the dashboard at api.listen (default\n"
    "127.0.0.1:8380; empty: none), with readiness checks and retry (docs/API.md).\n"
    "\n"
    "signals: SIGTERM, SIGINT: drain (running stages finish, nothing new is claimed; a\n"
    "complete stage waiting for its workload is checkpointed: the workload runs on and the\n"
    "next start waits for it again) and exit 0. SIGHUP: reload the configuration file;\n"
    "retry, lease, poll, report and planner settings take effect for the next stage attempt;\n"
    "daemon.workers, journal.path and the chain sources need a restart.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE    the configuration file (as the global option)\n"
    "      --journal FILE   the journal (default: journal.path)\n"
    "      --check          validate the configuration and try each service once: the\n"
    "                       journal, chain RPC endpoints and contract, signing keys, the\n"
    "                       Docker engine, the registry, the ocra-agent binary, and\n"
    "                       slurmrestd with run.runner slurm; prints one line per check\n"
    "\n"
    "examples:\n"
    "  ocra -c /etc/ocra/ocra.yaml daemon --check    # before the first start\n"
    "  ocra -c /etc/ocra/ocra.yaml daemon\n"
    "  kill -HUP $(pidof ocra)                      # reload the configuration\n"
    "\n"
    "exit status: 0 drained after a signal (--check: every check passed), 1 a check failed\n"
    "or the daemon could not start, 2 invalid configuration or usage.\n",
    daemon_run, NULL};
