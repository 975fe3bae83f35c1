/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_serve.c: `ocra serve`, the HTTP API and dashboard over a journal without the pipeline:
 * a read-only window on what a daemon (running or stopped) recorded, e.g. on another host
 * with a copy of the journal: lineage, images and nodes come from the daemon's read-only
 * hooks; readiness checks the journal only and retry is `ocra daemon`'s (501 here).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "daemon/daemon.h"

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int
serve_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"journal", required_argument, NULL, 'j'},
        {"listen", required_argument, NULL, 'l'},
        {"token-file", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    struct ocra_api_opts o = {0};
    struct ocra_api *api;
    struct ocra_err err = {0};
    int c, status = ocra_cli_config(ctx);

    if (status != OCRA_CLI_OK)
        return status;
    o.journal = ctx->cfg.journal_path;
    o.listen = ctx->cfg.api_listen;
    o.token_file = ctx->cfg.api_token_file;
    o.allowed_hosts = (const char *const *)ctx->cfg.api_allowed_hosts;
    o.n_allowed_hosts = ctx->cfg.n_api_allowed_hosts;
    o.connections_per_client = (unsigned)ctx->cfg.api_connections_per_client;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            o.journal = optarg;
            break;
        case 'l':
            o.listen = optarg;
            break;
        case 't':
            o.token_file = optarg;
            break;
        default:
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help serve`");
        }
    }
    if (optind < argc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "serve: unexpected argument '%s'", argv[optind]);
    if (access(o.journal, R_OK) < 0)
        return ocra_cli_fail(OCRA_CLI_FAIL, "serve: journal %s: %s", o.journal, strerror(errno));
    api = ocra_daemon_api_new(&ctx->cfg, NULL, &o, &err);
    if (!api)
        return ocra_cli_fail(err.code == EINVAL || err.code == EACCES ? OCRA_CLI_USAGE
                                                                      : OCRA_CLI_FAIL,
                             "serve: %s", err.msg);
    printf("serving the journal %s at http://%.*s:%u/ (Ctrl-C stops)\n", o.journal,
           (int)(strrchr(o.listen, ':') - o.listen), o.listen, ocra_api_port(api));
    fflush(stdout);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!stop)
        pause();
    ocra_daemon_api_free(api);
    return OCRA_CLI_OK;
}

const struct ocra_cli_cmd ocra_cli_serve_cmd = {
    "serve", "serve the HTTP API and dashboard over a journal (read only)",
    "usage: ocra serve [--journal FILE] [--listen HOST:PORT] [--token-file FILE]\n"
    "\n"
    "Serves the HTTP API, /metrics and the dashboard over the journal, without watching\n"
    "chains or running the pipeline (`ocra daemon` serves the same API while it works).\n"
    "Endpoints: /healthz, /readyz, /metrics, /api/v1/events?status=&limit=&cursor=,\n"
    "/api/v1/events/ID, /api/v1/images, /api/v1/nodes, POST /api/v1/events/ID/retry, and the\n"
    "dashboard at /. See docs/API.md.\n"
    "\n"
    "options:\n"
    "      --journal FILE      the journal (default: journal.path of the configuration)\n"
    "      --listen HOST:PORT  the address (default: api.listen, 127.0.0.1:8380); port 0\n"
    "                          picks a free one, printed on the first line\n"
    "      --token-file FILE   the bearer token for mutating calls (default: api.token_file);\n"
    "                          required when HOST is not a loopback address\n"
    "\n"
    "examples:\n"
    "  ocra serve --journal /var/lib/ocra/journal.db\n"
    "  ocra serve --listen 0.0.0.0:8080 --token-file /etc/ocra/api.token\n"
    "\n"
    "exit status: 0 stopped by a signal, 1 the server could not start, 2 usage or bad\n"
    "listen address or token file.\n",
    serve_run, NULL};
