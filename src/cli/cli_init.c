/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_init.c: `ocra init [DIR]` writes a commented ocra.yaml and creates the journal. It is
 * idempotent: an existing ocra.yaml is kept (unless --force) and an existing journal is
 * opened and migrated, never emptied.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "store/store.h"

/* mkdir -p: creates dir and its missing parents. */
static int
make_dirs(const char *dir, struct ocra_err *err)
{
    char *copy = ocra_xstrdup(dir);
    int ret = -1;

    for (char *p = copy + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;

        *p = '\0';
        if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
            ocra_err_sys(err, "mkdir %s", copy);
            goto out;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    ret = 0;
out:
    free(copy);
    return ret;
}

static int
write_config(const char *path, bool force, struct ocra_err *err)
{
    char *yaml;
    int ret;

    if (!force && access(path, F_OK) == 0) {
        printf("kept %s (exists; --force overwrites it)\n", path);
        return 0;
    }
    yaml = ocra_config_default_yaml();
    ret = ocra_file_write_atomic(path, yaml, strlen(yaml), 0644, err);
    free(yaml);
    if (ret == 0)
        printf("wrote %s\n", path);
    return ret;
}

static int
init_dir(const char *dir, bool force)
{
    struct ocra_config_problems probs = {0};
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    struct ocra_config cfg;
    char *path = ocra_xasprintf("%s/ocra.yaml", dir);
    int status = OCRA_CLI_FAIL;

    ocra_config_init(&cfg);
    if (make_dirs(dir, &err) < 0 || write_config(path, force, &err) < 0) {
        ocra_cli_fail(OCRA_CLI_FAIL, "init: %s", err.msg);
        goto out;
    }
    ocra_config_fini(&cfg);
    if (ocra_config_load(path, &cfg, &probs, &err) < 0) {
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "%s\n", probs.lines[i]);
        status = ocra_cli_fail(OCRA_CLI_USAGE, "init: %s", err.msg);
        goto out;
    }
    if (ocra_store_open(cfg.journal_path, &st, &err) < 0) {
        ocra_cli_fail(OCRA_CLI_FAIL, "init: journal %s: %s", cfg.journal_path, err.msg);
        goto out;
    }
    printf("journal %s (schema version %d)\n", cfg.journal_path, ocra_store_schema_version(st));
    printf("next: ocra -c %s config check\n", path);
    status = OCRA_CLI_OK;
out:
    ocra_store_close(st);
    ocra_config_problems_fini(&probs);
    ocra_config_fini(&cfg);
    free(path);
    return status;
}

static int
init_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"force", no_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    bool force = false;
    int c;

    (void)ctx;
    while ((c = getopt_long(argc, argv, "f", longopts, NULL)) != -1) {
        if (c != 'f')
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help init`");
        force = true;
    }
    if (argc - optind > 1)
        return ocra_cli_fail(OCRA_CLI_USAGE, "init: one DIR at most (see `ocra help init`)");
    return init_dir(optind < argc ? argv[optind] : ".", force);
}

const struct ocra_cli_cmd ocra_cli_init_cmd = {
    "init", "write a commented ocra.yaml and create the journal",
    "usage: ocra init [--force] [DIR]\n"
    "\n"
    "Creates DIR (default: the current directory) if needed, writes DIR/ocra.yaml with\n"
    "every key at its default and its documentation as comments, and creates the SQLite\n"
    "journal that journal.path names (relative paths are relative to DIR). Running it\n"
    "again keeps an existing ocra.yaml and migrates an existing journal; it never deletes\n"
    "events.\n"
    "\n"
    "options:\n"
    "  -f, --force  overwrite an existing DIR/ocra.yaml with the defaults\n"
    "\n"
    "examples:\n"
    "  ocra init                  # ./ocra.yaml and the journal\n"
    "  ocra init /etc/ocra && ocra -c /etc/ocra/ocra.yaml config check\n"
    "\n"
    "exit status: 0 ok, 1 a file or the journal could not be written, 2 usage error or\n"
    "an existing ocra.yaml that is invalid.\n",
    init_run, NULL};
