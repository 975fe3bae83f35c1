/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_events.c: `ocra events` lists the journal's events as JSON lines, the same lines
 * `ocra watch` prints, and the shared printer of those lines.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "spec/spec.h"
#include "store/store.h"

json_t *
ocra_cli_event_json(const struct ocra_store_event *ev)
{
    json_t *o = ocra_store_event_to_json(ev);

    /* AIN keeps lists as index-keyed objects ({"0":..,"1":..,"10":..,"2":..}): show the
     * arrays the spec reader makes of them */
    json_object_set_new(o, "spec", ocra_spec_lists_as_arrays(json_object_get(o, "spec")));
    /* the line format of watch and events predates seq, chain and the times: keep it */
    json_object_del(o, "seq");
    json_object_del(o, "chain");
    json_object_del(o, "observedMs");
    json_object_del(o, "updatedMs");
    return o;
}

static void
print_json_line(json_t *o)
{
    char *line = ocra_json_compact(o);

    printf("%s\n", line);
    fflush(stdout);
    free(line);
    json_decref(o);
}

void
ocra_cli_print_event(const struct ocra_store_event *ev)
{
    print_json_line(ocra_cli_event_json(ev));
}

/* The event's line with its place in the daemon's pipeline, when it has one. */
static int
print_one(const struct ocra_store_event *ev, const struct ocra_store_pipeline *p, void *arg)
{
    json_t *o = ocra_cli_event_json(ev);

    (void)arg;
    if (p)
        json_object_set_new(o, "pipeline", ocra_store_pipeline_to_json(p));
    print_json_line(o);
    return 0;
}

static int
events_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"journal", required_argument, NULL, 'j'}, {"status", required_argument, NULL, 's'},
        {"source", required_argument, NULL, 'S'},  {"limit", required_argument, NULL, 'n'},
        {"newest", no_argument, NULL, 'N'},        {NULL, 0, NULL, 0},
    };
    struct ocra_store_event_filter f = {0};
    const char *journal = NULL;
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    int c, status = ocra_cli_config(ctx);

    if (status != OCRA_CLI_OK)
        return status;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            journal = optarg;
            break;
        case 's':
            if (!ocra_store_status_known(optarg)) {
                char known[512];

                return ocra_cli_fail(OCRA_CLI_USAGE, "--status: unknown status '%s' (one of %s)",
                                     optarg, ocra_store_status_join(known, sizeof(known)));
            }
            f.status = optarg;
            break;
        case 'S':
            f.source = optarg;
            break;
        case 'N':
            f.newest_first = true;
            break;
        case 'n':
            if (ocra_parse_i64(optarg, 1, INT64_MAX, &f.limit, &err) < 0)
                return ocra_cli_fail(OCRA_CLI_USAGE, "--limit: %s", err.msg);
            break;
        default:
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help events`");
        }
    }
    if (optind < argc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "events: unexpected argument '%s'", argv[optind]);
    if (!journal)
        journal = ctx->cfg.journal_path;
    if (ocra_store_open(journal, &st, &err) < 0 ||
        ocra_store_pipeline_list(st, &f, print_one, NULL, &err) < 0)
        status = ocra_cli_fail(err.code == EINVAL ? OCRA_CLI_USAGE : OCRA_CLI_FAIL,
                               "events: %s: %s", journal, err.msg);
    ocra_store_close(st);
    return status;
}

const struct ocra_cli_cmd ocra_cli_events_cmd = {
    "events", "list the journal's events as JSON lines",
    "usage: ocra events [--journal FILE] [--status STATUS] [--source SOURCE] [--limit N]\n"
    "                   [--newest]\n"
    "\n"
    "Prints the journal's events, oldest first, one JSON line each (the lines of `ocra\n"
    "watch`): event id, block, tx hash, path, signer, trusted, status (the watcher's verdict,\n"
    "accepted or rejected), spec or reason; and, once the daemon took the event in,\n"
    "\"pipeline\": its status (detected, validated, rejected, planned, toolchain, pushed,\n"
    "signed, allocated, running, completed, failed, superseded, orphaned, timeout, reported),\n"
    "outcome, the next stage, its state (ready, claimed, waiting, queued, supervised, dead,\n"
    "done), attempts, crashes (claims whose worker died, counted apart from attempts) and\n"
    "last error.\n"
    "\n"
    "options:\n"
    "      --journal FILE    the journal (default: journal.path of the configuration)\n"
    "      --status STATUS   only events with this status: the watcher's (accepted,\n"
    "                        rejected), or the pipeline's status, outcome or state\n"
    "                        (planned, superseded, queued, dead, ...; a status not\n"
    "                        known is refused with the list)\n"
    "      --source SOURCE   only events of this source (ain:0, ...)\n"
    "      --limit N         at most N events\n"
    "      --newest          newest first\n"
    "\n"
    "\n"
    "examples:\n"
    "  ocra events --status dead            the dead letters (then `ocra retry ID`)\n"
    "  ocra events --status queued          the events waiting for room (`ocra queue`)\n"
    "  ocra events --newest --limit 20      the latest twenty\n"
    "\n"
    "exit status: 0 ok, 1 the journal cannot be read, 2 usage error.\n",
    events_run, NULL};
