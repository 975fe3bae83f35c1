/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.c: global options, the command table and its dispatch, `help` and `--version`.
 * Errors are reported here, once, at the top; subcommands return an exit status.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#ifndef OCRA_VERSION
#define OCRA_VERSION "0.0.0"
#endif

static int help_run(struct ocra_cli_ctx *ctx, int argc, char **argv);
static int version_run(struct ocra_cli_ctx *ctx, int argc, char **argv);

static const struct ocra_cli_cmd help_cmd = {
    "help", "show help for a command",
    "usage: ocra help [COMMAND [SUBCOMMAND]]\n"
    "\n"
    "Shows the help of a command; without one, the list of commands.\n"
    "\n"
    "examples:\n"
    "  ocra help run\n"
    "  ocra help spec check\n",
    help_run, NULL};

static const struct ocra_cli_cmd version_cmd = {"version", "print the version",
                                                "usage: ocra version\n"
                                                "\n"
                                                "examples:\n"
                                                "  ocra version\n"
                                                "  ocra --version\n",
                                                version_run, NULL};

/* The command table: `ocra` and `ocra help` list it in this order. */
static const struct ocra_cli_cmd *const commands[] = {
    &ocra_cli_init_cmd,
    &ocra_cli_spec_cmd,
    &ocra_cli_plan_cmd,
    &ocra_cli_config_cmd,
    &ocra_cli_watch_cmd,
    &ocra_cli_events_cmd,
    &ocra_cli_publish_cmd,
    &ocra_cli_simulate_cmd,
    &ocra_cli_nodes_cmd,
    /* the scheduler queue (cli_queue.c) */
    &ocra_cli_queue_cmd,
    &ocra_cli_run_cmd,
    &ocra_cli_serve_cmd,
    &ocra_cli_sign_cmd,
    &ocra_cli_verify_cmd,
    &ocra_cli_build_cmd,
    &ocra_cli_images_cmd,
    &ocra_cli_daemon_cmd,
    &ocra_cli_lineage_cmd,
    &ocra_cli_retry_cmd,
    &help_cmd,
    &version_cmd,
};

static const char global_usage[] =
    "usage: ocra [-c FILE] [--log-format text|json] [--log-level LEVEL] COMMAND [ARGS...]\n"
    "       ocra --help | --version | help COMMAND\n"
    "\n"
    "ocra turns on-chain AI model updates into verified container images and GPU\n"
    "workloads: it watches a chain for model specs, validates them as hostile input,\n"
    "plans and builds images, runs them on GPUs, and records the lineage.\n";

static const char global_options[] =
    "\n"
    "global options:\n"
    "  -c, --config FILE      configuration file (default: $OCRA_CONFIG; without\n"
    "                         either, the built-in defaults of docs/CONFIG.md)\n"
    "      --log-format FMT   text (default) or json (one JSON object per line)\n"
    "      --log-level LEVEL  error, warn, info (default) or debug\n"
    "  -h, --help             this help; `ocra help COMMAND` for a command's\n"
    "  -V, --version          print the version\n"
    "\n"
    "exit status:\n"
    "  0  success\n"
    "  1  runtime failure (I/O error, a service that failed)\n"
    "  2  bad input or usage (invalid spec or configuration, unknown option)\n"
    "\n"
    "docs: README.md; docs/SPEC.md (model spec), CONFIG.md, CHAINS.md, PLANNING.md, BUILD.md,\n"
    "RUNNING.md\n";

int
ocra_cli_fail(int status, const char *fmt, ...)
{
    va_list ap;

    fputs("ocra: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

int
ocra_cli_parse_int(const char *name, const char *arg, int64_t min, int64_t max, int64_t *out)
{
    struct ocra_err err = {0};

    if (ocra_parse_i64(arg, min, max, out, &err) < 0)
        return ocra_cli_fail(OCRA_CLI_USAGE, "--%s: %s", name, err.msg);
    return OCRA_CLI_OK;
}

bool
ocra_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

int
ocra_cli_config(struct ocra_cli_ctx *ctx)
{
    struct ocra_config_problems probs = {0};
    struct ocra_err err = {0};
    int status = OCRA_CLI_OK;

    if (ctx->cfg_loaded || !ctx->config_path)
        return OCRA_CLI_OK;
    ocra_config_fini(&ctx->cfg);
    if (ocra_config_load(ctx->config_path, &ctx->cfg, &probs, &err) < 0) {
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "%s\n", probs.lines[i]);
        status = ocra_cli_fail(err.code == EINVAL ? OCRA_CLI_USAGE : OCRA_CLI_FAIL, "%s", err.msg);
    } else {
        ctx->cfg_loaded = true;
        ocra_log_setup(ctx->log_level_set ? ctx->log_level : ctx->cfg.log_level,
                       ctx->log_format_set ? ctx->log_format : ctx->cfg.log_format);
    }
    ocra_config_problems_fini(&probs);
    return status;
}

/* Prints one table's rows as "  prefix name   summary". */
static void
list_commands(FILE *out, const char *prefix, const struct ocra_cli_cmd *const *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct ocra_cli_cmd *c = cmds[i];
        char label[64];

        if (c->children) {
            for (const struct ocra_cli_cmd *k = c->children; k->name; k++) {
                (void)snprintf(label, sizeof(label), "%s%s %s", prefix, c->name, k->name);
                fprintf(out, "  %-22s %s\n", label, k->summary);
            }
            continue;
        }
        (void)snprintf(label, sizeof(label), "%s%s", prefix, c->name);
        fprintf(out, "  %-22s %s\n", label, c->summary);
    }
}

static void
print_global_help(FILE *out)
{
    fputs(global_usage, out);
    fputs("\ncommands:\n", out);
    list_commands(out, "", commands, OCRA_ARRAY_LEN(commands));
    fputs(global_options, out);
}

static const struct ocra_cli_cmd *
find_top(const char *name)
{
    for (size_t i = 0; i < OCRA_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

static const struct ocra_cli_cmd *
find_child(const struct ocra_cli_cmd *parent, const char *name)
{
    for (const struct ocra_cli_cmd *k = parent->children; k && k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

/* The likely command meant by a typo: as far off as unknown configuration keys may be. */
static const char *
closest(const char *name, const char *const *names, size_t n)
{
    size_t len = strlen(name);

    return ocra_str_closest(name, names, n, len / 3 > 2 ? (unsigned)(len / 3) : 2);
}

/* Refuses an unknown command (parent NULL) or subcommand of parent, with the likely one meant:
 * "no command 'evnts'; did you mean 'events'?". */
static int
no_command(const struct ocra_cli_cmd *parent, const char *name)
{
    const char *names[OCRA_ARRAY_LEN(commands) + 16], *near;
    size_t n = 0;

    if (!parent) {
        for (size_t i = 0; i < OCRA_ARRAY_LEN(commands); i++)
            names[n++] = commands[i]->name;
        near = closest(name, names, n);
        if (near)
            return ocra_cli_fail(OCRA_CLI_USAGE,
                                 "no command '%s'; did you mean '%s'? (see `ocra --help`)", name,
                                 near);
        return ocra_cli_fail(OCRA_CLI_USAGE, "no command '%s' (see `ocra --help`)", name);
    }
    for (const struct ocra_cli_cmd *k = parent->children; k->name && n < OCRA_ARRAY_LEN(names); k++)
        names[n++] = k->name;
    near = closest(name, names, n);
    if (near)
        return ocra_cli_fail(OCRA_CLI_USAGE,
                             "%s: no subcommand '%s'; did you mean '%s %s'? (see `ocra help %s`)",
                             parent->name, name, parent->name, near, parent->name);
    return ocra_cli_fail(OCRA_CLI_USAGE, "%s: no subcommand '%s' (see `ocra help %s`)",
                         parent->name, name, parent->name);
}

/* Help of a command with children: its usage, then its subcommands. */
static void
print_group_help(FILE *out, const struct ocra_cli_cmd *c)
{
    const struct ocra_cli_cmd *self[] = {c};

    fputs(c->usage, out);
    fputs("\nsubcommands:\n", out);
    list_commands(out, "", self, 1);
    fprintf(out, "\n`ocra help %s SUBCOMMAND` shows one in full.\n", c->name);
}

static int
help_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    const struct ocra_cli_cmd *c, *k;

    (void)ctx;
    if (argc < 2) {
        print_global_help(stdout);
        return OCRA_CLI_OK;
    }
    c = find_top(argv[1]);
    if (!c)
        return no_command(NULL, argv[1]);
    if (!c->children) {
        fputs(c->usage, stdout);
        return OCRA_CLI_OK;
    }
    if (argc < 3) {
        print_group_help(stdout, c);
        return OCRA_CLI_OK;
    }
    k = find_child(c, argv[2]);
    if (!k)
        return no_command(c, argv[2]);
    fputs(k->usage, stdout);
    return OCRA_CLI_OK;
}

static int
version_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    (void)argc;
    (void)argv;
    printf("ocra %s\n", OCRA_VERSION);
    return OCRA_CLI_OK;
}

/* Runs c (argv[0] is its name), descending into subcommands. */
static int
dispatch(struct ocra_cli_ctx *ctx, const struct ocra_cli_cmd *c, int argc, char **argv)
{
    const struct ocra_cli_cmd *k;

    if (!c->children) {
        if (ocra_cli_wants_help(argc, argv)) {
            fputs(c->usage, stdout);
            return OCRA_CLI_OK;
        }
        return c->run(ctx, argc, argv);
    }
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        print_group_help(argc < 2 ? stderr : stdout, c);
        return argc < 2 ? OCRA_CLI_USAGE : OCRA_CLI_OK;
    }
    k = find_child(c, argv[1]);
    if (!k)
        return no_command(c, argv[1]);
    return dispatch(ctx, k, argc - 1, argv + 1);
}

/* Parses the global options; returns -1 to go on, else the exit status. */
static int
parse_global(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},    {"log-format", required_argument, NULL, 'F'},
        {"log-level", required_argument, NULL, 'L'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            ctx->config_path = optarg;
            break;
        case 'F':
            ctx->log_format_set = true;
            if (ocra_log_format_parse(optarg, &ctx->log_format) < 0)
                return ocra_cli_fail(OCRA_CLI_USAGE, "--log-format: want text or json, got '%s'",
                                     optarg);
            break;
        case 'L':
            ctx->log_level_set = true;
            if (ocra_log_level_parse(optarg, &ctx->log_level) < 0)
                return ocra_cli_fail(OCRA_CLI_USAGE,
                                     "--log-level: want error, warn, info or debug, got '%s'",
                                     optarg);
            break;
        case 'h':
            print_global_help(stdout);
            return OCRA_CLI_OK;
        case 'V':
            return version_run(ctx, 0, NULL);
        default:
            fputs("see `ocra --help`\n", stderr);
            return OCRA_CLI_USAGE;
        }
    }
    ocra_log_setup(ctx->log_level_set ? ctx->log_level : OCRA_LOG_INFO,
                   ctx->log_format_set ? ctx->log_format : OCRA_LOG_TEXT);
    return -1;
}

int
ocra_cli_main(int argc, char **argv)
{
    struct ocra_cli_ctx ctx = {0};
    const struct ocra_cli_cmd *c;
    int status, first;

    ctx.config_path = getenv("OCRA_CONFIG");
    if (ctx.config_path && !*ctx.config_path)
        ctx.config_path = NULL;
    ocra_config_init(&ctx.cfg);
    status = parse_global(&ctx, argc, argv);
    if (status >= 0)
        goto out;
    if (optind >= argc) {
        print_global_help(stderr);
        status = OCRA_CLI_USAGE;
        goto out;
    }
    first = optind;
    c = find_top(argv[first]);
    if (!c) {
        status = no_command(NULL, argv[first]);
        goto out;
    }
    optind = 0; /* each subcommand runs its own getopt_long over its argv */
    status = dispatch(&ctx, c, argc - first, argv + first);
out:
    ocra_config_fini(&ctx.cfg);
    return status;
}
