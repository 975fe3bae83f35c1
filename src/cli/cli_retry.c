/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_retry.c: `ocra retry ID` sends a dead-lettered event back to the stage it died at, and
 * a failed (or daemon-rejected) event back to the stage that failed it, with fresh attempts.
 * A running daemon picks it up within daemon.poll_ms.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "base/base.h"
#include "store/store.h"

static int
retry_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"journal", required_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    struct ocra_store_pipeline *p = NULL;
    const char *journal = NULL;
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    int c, status = ocra_cli_config(ctx);

    if (status != OCRA_CLI_OK)
        return status;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'j')
            journal = optarg;
        else
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help retry`");
    }
    if (argc - optind != 1)
        return ocra_cli_fail(OCRA_CLI_USAGE, "retry: want exactly one event ID");
    if (!journal)
        journal = ctx->cfg.journal_path;
    if (ocra_store_open(journal, &st, &err) < 0 ||
        ocra_store_stage_retry(st, argv[optind], &err) < 0 ||
        ocra_store_pipeline_get(st, argv[optind], &p, &err) < 0) {
        status =
            ocra_cli_fail(err.code == EINVAL || err.code == ENOENT ? OCRA_CLI_USAGE : OCRA_CLI_FAIL,
                          "%s", err.msg);
    } else if (p) {
        printf("%s: ready at stage %s (status %s)\n", p->event_id, p->stage, p->status);
    }
    ocra_store_pipeline_free(p);
    ocra_store_close(st);
    return status;
}

const struct ocra_cli_cmd ocra_cli_retry_cmd = {
    "retry", "send a dead-lettered or failed event back to its failed stage",
    "usage: ocra retry [--journal FILE] EVENT_ID\n"
    "\n"
    "A dead-lettered event (`ocra events --status dead`) becomes ready again at the stage it\n"
    "died at; a failed or daemon-rejected event goes back to the stage that decided it, with\n"
    "its earlier status. Attempts start again from 1; the history keeps every earlier try\n"
    "(`ocra lineage`). A running daemon picks the event up within daemon.poll_ms.\n"
    "\n"
    "options:\n"
    "      --journal FILE   the journal (default: journal.path)\n"
    "\n"
    "examples:\n"
    "  ocra events --status dead        # find the dead letters\n"
    "  ocra retry ain:0:0x3f2c...:0\n"
    "\n"
    "exit status: 0 queued, 1 the journal failed, 2 unknown event, or one that is neither\n"
    "dead-lettered nor failed.\n",
    retry_run, NULL};
