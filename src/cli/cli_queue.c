/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_queue.c: `ocra queue [--json]` shows the scheduler queue: the events that wait for room
 * on the cluster, in the order the queue's policy would start them, each with its owner,
 * priority, GPUs asked, why it waits, its estimated start when known and how long it has
 * waited. The text is rendered from the same JSON document as --json and /api/v1/queue
 * (ocra_daemon_queue_json()). Read only: nothing is started or allocated.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "daemon/daemon.h"
#include "store/store.h"

/* "in 5m" / "now" / "-" for an estimated start (ms) against now (ms). */
static void
start_text(json_t *v, int64_t now, char *out, size_t n)
{
    int64_t s;

    if (!json_is_integer(v)) {
        snprintf(out, n, "-");
        return;
    }
    s = ((int64_t)json_integer_value(v) - now) / 1000;
    if (s <= 0)
        snprintf(out, n, "now");
    else if (s < 120)
        snprintf(out, n, "in %llds", (long long)s);
    else if (s < 7200)
        snprintf(out, n, "in %lldm", (long long)(s / 60));
    else
        snprintf(out, n, "in %lldh", (long long)(s / 3600));
}

static void
print_text(json_t *doc)
{
    int64_t now = (int64_t)json_integer_value(json_object_get(doc, "now"));
    json_t *q = json_object_get(doc, "queued"), *it;
    size_t i;

    printf("policy %s, %lld queued\n", json_string_value(json_object_get(doc, "policy")),
           json_integer_value(json_object_get(doc, "depth")));
    if (json_array_size(q) == 0)
        return;
    printf("%-4s %-44s %-14s %4s %4s %8s %-9s %-9s %s\n", "POS", "EVENT", "OWNER", "PRIO", "GPUS",
           "WAITED", "START", "WAIT", "REASON");
    json_array_foreach(q, i, it)
    {
        const char *owner = json_string_value(json_object_get(it, "owner"));
        char start[32];

        start_text(json_object_get(it, "estimatedStart"), now, start, sizeof(start));
        printf("%-4lld %-44.44s %-14.14s %4lld %4lld %7llds %-9s %-9s %s\n",
               json_integer_value(json_object_get(it, "position")),
               json_string_value(json_object_get(it, "event")), owner ? owner : "-",
               json_integer_value(json_object_get(it, "priority")),
               json_integer_value(json_object_get(it, "gpus")),
               json_integer_value(json_object_get(it, "waitedS")), start,
               json_string_value(json_object_get(it, "wait")),
               json_string_value(json_object_get(it, "reason")));
    }
}

static int
queue_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'J'},
        {"journal", required_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    const char *journal = NULL;
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    json_t *doc = NULL;
    bool as_json = false;
    int c, status = ocra_cli_config(ctx);

    if (status != OCRA_CLI_OK)
        return status;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'J')
            as_json = true;
        else if (c == 'j')
            journal = optarg;
        else
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help queue`");
    }
    if (optind < argc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "queue: unexpected argument '%s'", argv[optind]);
    if (!journal)
        journal = ctx->cfg.journal_path;
    if (access(journal, F_OK) != 0) { /* never created here: an empty queue */
        doc = json_pack("{s:s, s:i, s:I, s:[]}", "policy", "-", "depth", 0, "now",
                        (json_int_t)ocra_time_wall_ms(), "queued");
    } else if (ocra_store_open(journal, &st, &err) < 0 ||
               !(doc = ocra_daemon_queue_json(&ctx->cfg, st, &err))) {
        status = ocra_cli_fail(OCRA_CLI_FAIL, "queue: %s: %s", journal, err.msg);
    }
    if (doc && as_json) {
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);

        printf("%s\n", text);
        free(text);
    } else if (doc) {
        print_text(doc);
    }
    json_decref(doc);
    ocra_store_close(st);
    return status;
}

const struct ocra_cli_cmd ocra_cli_queue_cmd = {
    "queue", "show the events waiting for room on the cluster, in the order they start",
    "usage: ocra queue [--json] [--journal FILE]\n"
    "\n"
    "Shows the scheduler queue: the events whose allocate stage found no room (state\n"
    "queued; no attempt used, no worker held), in the order the queue's policy\n"
    "(sched.queue.policy: fifo, backfill, fair, sjf) would start them. Per event: its\n"
    "position, owner (the publisher, else the app), priority (sched.queue.priorities),\n"
    "GPUs asked, how long it has waited, its estimated start when the running workloads\n"
    "declare workload.maxDuration, and why it waits: room (no node has room now), order\n"
    "(behind the head, fifo), priority, fair (an owner with a smaller share goes first),\n"
    "reserved (starting would delay the head's reservation), never (fits no node: its\n"
    "allocate stage fails it). The daemon starts them as capacity frees; this command\n"
    "only reads the journal and the inventory. The journal is never created.\n"
    "\n"
    "options:\n"
    "      --json           one JSON document instead of text (the /api/v1/queue shape)\n"
    "      --journal FILE   the journal (default: journal.path of the configuration)\n"
    "\n"
    "examples:\n"
    "  ocra queue\n"
    "  ocra queue --json | jq '.queued[] | {event, position, wait, reason}'\n"
    "  ocra -c /etc/ocra/ocra.yaml queue --journal /var/lib/ocra/journal.db\n"
    "\n"
    "exit status: 0 shown; 1 the journal or the inventory cannot be read; 2 usage error.\n",
    queue_run, NULL};
