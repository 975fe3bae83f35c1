/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_lineage.c: `ocra lineage ID` answers "which chain event produced this, through which
 * stages, with what result": the journaled event, its place in the pipeline, and every
 * stage attempt with its times, worker, outcome, output (plan summary, image digest and tags,
 * allocation, run result, report transaction) and error, then the runs (runner, job id, node,
 * state, exit code and log tail). Text for people, --json for tools.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "lb/lb.h"
#include "store/store.h"

static int
collect(const struct ocra_store_stage_row *r, void *arg)
{
    json_t *rows = arg, *o = json_object(), *out = NULL;
    char t[32];

    json_object_set_new(o, "stage", json_string(r->stage));
    json_object_set_new(o, "attempt", json_integer(r->attempt));
    json_object_set_new(o, "worker", json_string(r->worker));
    json_object_set_new(o, "startedAt",
                        json_string(ocra_time_iso8601(r->started_ms, t, sizeof(t))));
    json_object_set_new(o, "finishedAt",
                        r->finished_ms
                            ? json_string(ocra_time_iso8601(r->finished_ms, t, sizeof(t)))
                            : json_null());
    json_object_set_new(o, "outcome", r->outcome ? json_string(r->outcome) : json_null());
    if (r->output)
        out = ocra_json_parse(r->output, strlen(r->output), 0, NULL);
    json_object_set_new(o, "output", out ? out : json_null());
    if (r->error)
        json_object_set_new(o, "error", json_string(r->error));
    json_object_set_new(o, "ms", json_integer(r->finished_ms ? r->finished_ms - r->started_ms : 0));
    json_array_append_new(rows, o);
    return 0;
}

/* One line for people out of a stage's output: the facts that matter, else the JSON. */
static void
print_output(const json_t *out)
{
    const json_t *sum = json_object_get(out, "summary");
    const char *s;
    char *text;

    if (!out || json_is_null(out))
        return;
    if (sum) {
        printf("      plan: %s, toolchain %.12s, %lld x %s\n", ocra_json_str(sum, "baseImage"),
               ocra_json_str(sum, "toolchainHash"), (long long)ocra_json_int(sum, "gpus", 0),
               *ocra_json_str(sum, "gpuModel") ? ocra_json_str(sum, "gpuModel") : "CPU");
        return;
    }
    if ((s = ocra_json_str(out, "verdict")))
        printf("      %s: %s\n", s, ocra_json_str(out, "reason"));
    if ((s = ocra_json_str(out, "digest")))
        printf("      image: %s\n", s);
    if ((s = ocra_json_str(out, "node")))
        printf("      node: %s\n", s);
    if ((s = ocra_json_str(out, "tx")))
        printf("      %s report tx: %s%s\n", ocra_json_str(out, "chain"), s,
               json_is_true(json_object_get(out, "already")) ? " (already on-chain)" : "");
    if (ocra_json_str(out, "verdict") || ocra_json_str(out, "digest") || ocra_json_str(out, "tx"))
        return;
    text = ocra_json_compact(out);
    printf("      %.200s%s\n", text, strlen(text) > 200 ? "..." : "");
    free(text);
}

/* The workloads the run stage started: runner, job id, node, state, exit code, log tail. */
static void
print_runs(const json_t *runs)
{
    const json_t *r, *res;
    const char *tail;
    size_t i;

    if (!json_array_size(runs))
        return;
    printf("runs:\n");
    json_array_foreach(runs, i, r)
    {
        res = json_object_get(r, "result");
        printf("  %s %s on %s: %s", ocra_json_str(r, "runner"), ocra_json_str(r, "id"),
               ocra_json_str(r, "node") ? ocra_json_str(r, "node") : "-",
               ocra_json_str(r, "state"));
        if (json_is_object(res))
            printf(", exit code %lld, %lld ms", (long long)ocra_json_int(res, "exitCode", -1),
                   (long long)ocra_json_int(res, "durationMs", 0));
        printf("\n");
        if ((tail = ocra_json_str(res, "logTail")) && *tail)
            for (const char *p = tail, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
                nl = strchr(p, '\n');
                printf("      | %.*s\n", (int)(nl ? nl - p : (ptrdiff_t)strlen(p)), p);
            }
    }
}

static void
print_text(const json_t *doc)
{
    const json_t *ev = json_object_get(doc, "event"), *p = json_object_get(doc, "pipeline");
    const json_t *row;
    size_t i;

    printf("event    %s\n", ocra_json_str(ev, "event"));
    printf("block    %lld %s\ntx       %s\n", (long long)ocra_json_int(ev, "block", 0),
           ocra_json_str(ev, "blockHash"), ocra_json_str(ev, "txHash"));
    printf("model    %s (signer %s, %s)\n", ocra_json_str(ev, "path"), ocra_json_str(ev, "signer"),
           json_is_true(json_object_get(ev, "trusted")) ? "trusted" : "not trusted");
    printf("watcher  %s%s%s\n", ocra_json_str(ev, "status"),
           ocra_json_str(ev, "reason") ? ": " : "",
           ocra_json_str(ev, "reason") ? ocra_json_str(ev, "reason") : "");
    if (!p) {
        printf("pipeline not taken in yet (the daemon has not seen it)\n");
        return;
    }
    printf("pipeline %s%s%s, stage %s (%s, attempts %lld, crashes %lld)\n",
           ocra_json_str(p, "status"), ocra_json_str(p, "outcome") ? " / " : "",
           ocra_json_str(p, "outcome") ? ocra_json_str(p, "outcome") : "",
           ocra_json_str(p, "stage") ? ocra_json_str(p, "stage") : "-", ocra_json_str(p, "state"),
           (long long)ocra_json_int(p, "attempts", 0), (long long)ocra_json_int(p, "crashes", 0));
    if (ocra_json_str(p, "error"))
        printf("error    %s\n", ocra_json_str(p, "error"));
    printf("stages:\n");
    json_array_foreach(json_object_get(doc, "stages"), i, row)
    {
        printf("  %-9s #%lld %-10s %s %6lld ms  %s\n", ocra_json_str(row, "stage"),
               (long long)ocra_json_int(row, "attempt", 0),
               ocra_json_str(row, "outcome") ? ocra_json_str(row, "outcome") : "running",
               ocra_json_str(row, "startedAt"), (long long)ocra_json_int(row, "ms", 0),
               ocra_json_str(row, "worker"));
        if (ocra_json_str(row, "error") &&
            !ocra_json_str(json_object_get(row, "output"), "verdict"))
            printf("      error: %s\n", ocra_json_str(row, "error"));
        print_output(json_object_get(row, "output"));
    }
    print_runs(json_object_get(doc, "runs"));
    if (ocra_json_str(doc, "frontend"))
        printf("frontend %s (load balancer)\n", ocra_json_str(doc, "frontend"));
}

/* A served model's load balancer frontend (docs/RUNNING.md, Load balancing), from the
 * frontends file the daemon keeps in lb.dir: "frontend": "addr:port" while the model (every
 * version of it: the journal's model key) holds one. */
static int
frontend(const struct ocra_config *cfg, const char *model, json_t *doc, struct ocra_err *err)
{
    int port;

    if ((!cfg->lb.haproxy[0] && !cfg->lb.socket[0]) || !model)
        return 0;
    if ((port = ocra_lb_frontend_lookup(cfg->lb.dir, model, err)) < 0)
        return -1;
    if (port > 0)
        json_object_set_new(doc, "frontend", json_sprintf("%s:%d", cfg->lb.bind, port));
    return 0;
}

static int
lineage(const struct ocra_config *cfg, struct ocra_store *st, const char *id, bool as_json,
        struct ocra_err *err)
{
    struct ocra_store_event *ev = NULL;
    struct ocra_store_pipeline *p = NULL;
    json_t *doc = NULL, *rows = json_array(), *runs;
    char *text;
    int ret = -1;

    if (ocra_store_event_get(st, id, &ev, err) < 0 ||
        ocra_store_pipeline_get(st, id, &p, err) < 0 ||
        ocra_store_stage_history(st, id, collect, rows, err) < 0)
        goto out;
    if (!ev) {
        ocra_err_set(err, ENOENT, "no event %s in the journal (see `ocra events`)", id);
        goto out;
    }
    doc = json_object();
    json_object_set_new(doc, "event", ocra_cli_event_json(ev));
    if (p)
        json_object_set_new(doc, "pipeline", ocra_store_pipeline_to_json(p));
    json_object_set(doc, "stages", rows);
    if (!(runs = ocra_store_runs_json(st, id, err)))
        goto out;
    json_object_set_new(doc, "runs", runs);
    if (frontend(cfg, p ? p->model : NULL, doc, err) < 0)
        goto out;
    if (as_json) {
        text = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        printf("%s\n", text);
        free(text);
    } else {
        print_text(doc);
    }
    ret = 0;
out:
    json_decref(doc);
    json_decref(rows);
    ocra_store_pipeline_free(p);
    ocra_store_event_free(ev);
    return ret;
}

static int
lineage_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"journal", required_argument, NULL, 'j'},
        {"json", no_argument, NULL, 'J'},
        {NULL, 0, NULL, 0},
    };
    const char *journal = NULL;
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    bool as_json = false;
    int c, status = ocra_cli_config(ctx);

    if (status != OCRA_CLI_OK)
        return status;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'j')
            journal = optarg;
        else if (c == 'J')
            as_json = true;
        else
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help lineage`");
    }
    if (argc - optind != 1)
        return ocra_cli_fail(OCRA_CLI_USAGE, "lineage: want exactly one event ID");
    if (!journal)
        journal = ctx->cfg.journal_path;
    if (ocra_store_open(journal, &st, &err) < 0 ||
        lineage(&ctx->cfg, st, argv[optind], as_json, &err) < 0)
        status = ocra_cli_fail(err.code == ENOENT ? OCRA_CLI_USAGE : OCRA_CLI_FAIL, "lineage: %s",
                               err.msg);
    ocra_store_close(st);
    return status;
}

const struct ocra_cli_cmd ocra_cli_lineage_cmd = {
    "lineage", "show an event's way through the pipeline, stage by stage",
    "usage: ocra lineage [--journal FILE] [--json] EVENT_ID\n"
    "\n"
    "Prints the journaled chain event (block, tx, model path, signer, the watcher's verdict),\n"
    "its place in the daemon's pipeline (status, outcome, next stage, state, attempts,\n"
    "crashes, last error) and every stage attempt in order: start time, duration, worker,\n"
    "outcome (done, retry, dead, waiting, superseded, abandoned by a worker that died: a\n"
    "crash, not an attempt; released at shutdown),\n"
    "error, and its output: the plan summary, the image digest and tags, the allocation, the\n"
    "run result, the report transaction. Then the runs the run stage journaled: runner, job\n"
    "id (container id or Slurm job id), node, state, exit code, duration and the log tail.\n"
    "\n"
    "options:\n"
    "      --journal FILE   the journal (default: journal.path)\n"
    "      --json           one JSON document: {event, pipeline, stages: [...], runs: [...]}\n"
    "\n"
    "examples:\n"
    "  ocra lineage ain:0:0x3f2c...:0\n"
    "  ocra lineage --json ain:0:0x3f2c...:0 | jq '.runs'\n"
    "\n"
    "exit status: 0 ok, 1 the journal cannot be read, 2 usage error or unknown event.\n",
    lineage_run, NULL};
