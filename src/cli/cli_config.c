/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_config.c: `ocra config check|doc|default`: validate a configuration file, print the
 * reference of every key (docs/CONFIG.md), print the commented default file.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/base.h"
#include "sched/sched.h"

/* The configured nodes taken together (GPUs need a model, names are unique); no discovery. */
static int
check_inventory(const char *path, struct ocra_config *cfg)
{
    struct ocra_sched_inventory inv;
    struct ocra_err err = {0};
    int status = OCRA_CLI_OK;

    cfg->inventory_local = false;
    if (ocra_cli_inventory(cfg, &inv, &err) < 0)
        status = ocra_cli_fail(OCRA_CLI_USAGE, "%s: %s", path, err.msg);
    ocra_sched_inventory_fini(&inv);
    return status;
}

static int
check_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    struct ocra_config_problems probs = {0};
    struct ocra_config cfg;
    struct ocra_err err = {0};
    const char *path = ctx->config_path;
    int status = OCRA_CLI_OK;

    if (argc > 2)
        return ocra_cli_fail(OCRA_CLI_USAGE, "config check: one FILE at most");
    if (argc == 2)
        path = argv[1];
    if (!path && access("ocra.yaml", F_OK) == 0)
        path = "ocra.yaml";
    if (!path)
        return ocra_cli_fail(OCRA_CLI_USAGE, "config check: no file: give FILE, -c FILE or "
                                             "$OCRA_CONFIG, or run it where ocra.yaml is");
    if (ocra_config_load(path, &cfg, &probs, &err) < 0) {
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "%s\n", probs.lines[i]);
        status = ocra_cli_fail(err.code == EINVAL ? OCRA_CLI_USAGE : OCRA_CLI_FAIL, "%s", err.msg);
    } else if (check_inventory(path, &cfg) == OCRA_CLI_OK) {
        printf("%s: ok\n", path);
    } else {
        status = OCRA_CLI_USAGE;
    }
    ocra_config_problems_fini(&probs);
    ocra_config_fini(&cfg);
    return status;
}

static int
doc_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    char *doc = ocra_config_doc_markdown();

    (void)ctx;
    (void)argv;
    if (argc > 1) {
        free(doc);
        return ocra_cli_fail(OCRA_CLI_USAGE, "config doc: takes no arguments");
    }
    fputs(doc, stdout);
    free(doc);
    return OCRA_CLI_OK;
}

static int
default_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    char *yaml = ocra_config_default_yaml();

    (void)ctx;
    (void)argv;
    if (argc > 1) {
        free(yaml);
        return ocra_cli_fail(OCRA_CLI_USAGE, "config default: takes no arguments");
    }
    fputs(yaml, stdout);
    free(yaml);
    return OCRA_CLI_OK;
}

static const struct ocra_cli_cmd config_children[] = {
    {"check", "validate a configuration file",
     "usage: ocra config check [FILE]\n"
     "\n"
     "Validates FILE (default: -c FILE, else $OCRA_CONFIG, else ./ocra.yaml) and prints\n"
     "`FILE: ok`, or each problem as `FILE:LINE: KEY: PROBLEM` on standard error.\n"
     "Unknown keys are errors, with a suggestion when one is close.\n"
     "\n"
     "examples:\n"
     "  ocra config check /etc/ocra/ocra.yaml\n"
     "  ocra -c ocra.yaml config check\n"
     "\n"
     "exit status: 0 valid, 1 unreadable, 2 invalid or a usage error.\n",
     check_run, NULL},
    {"doc", "print the reference of every configuration key",
     "usage: ocra config doc\n"
     "\n"
     "Prints the configuration reference, generated from the table ocra reads its\n"
     "configuration with; docs/CONFIG.md is this output.\n"
     "\n"
     "examples:\n"
     "  ocra config doc | less\n"
     "  ocra config doc | grep run.runner\n",
     doc_run, NULL},
    {"default", "print the commented default configuration",
     "usage: ocra config default\n"
     "\n"
     "Prints the commented default ocra.yaml (what `ocra init` writes; etc/ocra.yaml).\n"
     "\n"
     "examples:\n"
     "  ocra config default > ocra.yaml\n",
     default_run, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

const struct ocra_cli_cmd ocra_cli_config_cmd = {
    "config", "configuration tools",
    "usage: ocra config SUBCOMMAND [ARGS...]\n"
    "\n"
    "Configuration tools. ocra reads one YAML file; docs/CONFIG.md lists every key.\n",
    NULL, config_children};
