/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_nodes.c: `ocra nodes [--json]` shows the inventory: each node's GPUs, CPUs, RAM, labels
 * and cost with where each figure came from (config, proc, nvml, slurm, ...), why a figure is
 * missing (no NVML), and from the journal which events hold which devices and what is free.
 * The text is rendered from the same JSON document as --json (ocra_sched_nodes_json()), with
 * a warning per stray container (ocra_daemon_strays(): ocra's labels, no live run).
 * The inventory itself is built by ocra_daemon_inventory() (the HTTP API shows it too).
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "daemon/daemon.h"
#include "run/run.h"
#include "sched/sched.h"
#include "store/store.h"

_Static_assert(OCRA_SCHED_FIRST_FIT == 0 && OCRA_SCHED_BEST_FIT == 1 && OCRA_SCHED_CHEAPEST == 2 &&
                   OCRA_SCHED_FGD == 3,
               "sched.policy's choices (src/config/config_table.c) are in this order");

/* What the Slurm source saw, kept for the partitions of the report (one command, one run). */
static struct ocra_run_slurm_inventory slurm_seen;

/* Slurm's own view, beside ocra's journal: partitions and each node's GPUs in use. */
static json_t *
slurm_json(void)
{
    json_t *parts, *nodes;

    if (!slurm_seen.nodes && !slurm_seen.parts)
        return NULL;
    parts = json_array();
    nodes = json_array();
    for (size_t i = 0; i < slurm_seen.n_parts; i++) {
        const struct ocra_run_slurm_partition *p = &slurm_seen.parts[i];

        json_array_append_new(parts, json_pack("{s:s, s:s, s:i, s:i, s:i, s:i}", "name", p->name,
                                               "state", p->state, "nodes", p->n_nodes, "gpus",
                                               p->gpus_total, "gpus_allocated", p->gpus_alloc,
                                               "gpus_free", p->gpus_total - p->gpus_alloc));
    }
    for (size_t i = 0; i < slurm_seen.n_nodes; i++) {
        const struct ocra_run_slurm_node *n = &slurm_seen.nodes[i];

        json_array_append_new(nodes, json_pack("{s:s, s:s, s:s, s:i, s:i}", "name", n->node.name,
                                               "state", n->state, "partitions", n->partitions,
                                               "gpus", n->gpus, "gpus_allocated", n->gpus_alloc));
    }
    return json_pack("{s:o, s:o}", "partitions", parts, "nodes", nodes);
}

int
ocra_cli_inventory(const struct ocra_config *cfg, struct ocra_sched_inventory *inv,
                   struct ocra_err *err)
{
    return ocra_daemon_inventory(cfg, inv, &slurm_seen, err);
}

/*
 * The containers with ocra's labels that belong to no live run, judged as the daemon's
 * reconcile judges them (by slurmctld, or by the journal when it exists): {"strays": [...]}
 * or, when the runner's engine cannot be listed from here, {"note": why}.
 */
static json_t *
strays_json(const struct ocra_config *cfg, const char *journal)
{
    struct ocra_daemon_stray *s = NULL;
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    json_t *list;
    size_t n = 0;

    if (access(journal, F_OK) == 0 && ocra_store_open(journal, &st, &err) < 0)
        return json_pack("{s:s}", "note", err.msg);
    if (ocra_daemon_strays(cfg, st, &s, &n, &err) < 0) {
        ocra_store_close(st);
        return json_pack("{s:s}", "note", err.msg);
    }
    list = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct ocra_run_container *c = &s[i].c;
        json_t *j =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", c->name, "id", c->id, "event",
                      c->event_id, "runner", c->runner, "state", c->state, "why", s[i].why);

        if (c->slurm_job)
            json_object_set_new(j, "slurm_job", json_integer(c->slurm_job));
        if (!strcmp(c->runner, "docker"))
            json_object_set_new(j, "replica", json_integer(c->replica));
        json_array_append_new(list, j);
    }
    free(s);
    ocra_store_close(st);
    return json_pack("{s:o}", "strays", list);
}

/* ---- text ------------------------------------------------------------------------------ */

static const char *
src_of(json_t *node, const char *fig)
{
    const char *s = json_string_value(json_object_get(json_object_get(node, "sources"), fig));

    return s ? s : "-";
}

/* One line: a label, a value and its source in brackets. */
static void
line(const char *label, const char *value, const char *source)
{
    printf("  %-12s %-40s [%s]\n", label, value, source);
}

/* A figure of the node as text: its value (number or string) and unit, or "unknown". */
static void
figure(json_t *n, const char *label, const char *key, const char *unit, const char *fig)
{
    json_t *j = json_object_get(n, key);
    char v[128];

    if (json_is_integer(j))
        (void)snprintf(v, sizeof(v), "%lld%s", json_integer_value(j), unit);
    else if (json_is_real(j))
        (void)snprintf(v, sizeof(v), "%g%s", json_real_value(j), unit);
    else if (json_is_string(j))
        (void)snprintf(v, sizeof(v), "%s%s", json_string_value(j), unit);
    else
        (void)snprintf(v, sizeof(v), "unknown");
    line(label, v, src_of(n, fig));
}

static void
print_figures(json_t *n)
{
    json_t *labels = json_object_get(n, "labels"), *it;
    const char *model = json_string_value(json_object_get(n, "gpu_model"));
    size_t i, off = 0;
    char v[128];

    if (model)
        (void)snprintf(v, sizeof(v), "%lld x %s", json_integer_value(json_object_get(n, "gpus")),
                       model);
    else
        (void)snprintf(v, sizeof(v), "0");
    line("gpus", v, src_of(n, "gpus"));
    figure(n, "gpu memory", "gpu_memory_mib", " MiB per GPU", "gpu_memory");
    figure(n, "driver", "driver", "", "driver");
    figure(n, "compute cap", "compute_capability", "", "compute_capability");
    figure(n, "cpus", "cpus", "", "cpus");
    figure(n, "memory", "memory_mib", " MiB", "memory");
    figure(n, "cost", "cost_per_gpu_hour", " per GPU-hour", "cost");
    v[0] = '\0';
    json_array_foreach(labels, i, it)
    {
        off +=
            (size_t)snprintf(v + off, sizeof(v) - off, "%s%s", i ? "," : "", json_string_value(it));
        if (off >= sizeof(v))
            break;
    }
    line("labels", v[0] ? v : "none", src_of(n, "labels"));
}

/* Which allocations (of allocs) hold device d; printed as "e1#0 (500 milli)". */
static void
print_holders(json_t *allocs, long long d)
{
    json_t *a, *dev;
    size_t i, k;

    json_array_foreach(allocs, i, a)
    {
        json_array_foreach(json_object_get(a, "devices"), k, dev)
        {
            if (json_integer_value(dev) != d)
                continue;
            printf(" %s#%lld (%lld milli, %lld MiB)",
                   json_string_value(json_object_get(a, "event")),
                   json_integer_value(json_object_get(a, "replica")),
                   json_integer_value(json_object_get(a, "gpu_milli")),
                   json_integer_value(json_object_get(a, "gpu_memory_mib")));
        }
    }
}

static void
print_allocation(json_t *n)
{
    json_t *fr = json_object_get(n, "free"), *allocs = json_object_get(n, "allocations"), *g;
    size_t i;

    if (!fr)
        return;
    printf("  %-12s %g CPUs, %lld MiB RAM; %zu allocation(s) held\n", "free",
           json_real_value(json_object_get(fr, "cpus")),
           json_integer_value(json_object_get(fr, "memory_mib")), json_array_size(allocs));
    json_array_foreach(json_object_get(fr, "gpus"), i, g)
    {
        long long d = json_integer_value(json_object_get(g, "index"));
        long long m = json_integer_value(json_object_get(g, "free_milli"));

        printf("  gpu %-8lld %s (%lld milli, %lld MiB free)", d,
               m == 1000 ? "free"
               : m == 0  ? "held"
                         : "shared",
               m, json_integer_value(json_object_get(g, "free_memory_mib")));
        if (m < 1000) {
            printf(" by");
            print_holders(allocs, d);
        }
        printf("\n");
    }
}

/* A warning per stray container: what it is, why it is a stray, and what removes it. */
static void
print_strays(json_t *containers)
{
    const char *note = json_string_value(json_object_get(containers, "note"));
    json_t *s;
    size_t i;

    if (note)
        printf("\ncontainers: not checked: %s\n", note);
    json_array_foreach(json_object_get(containers, "strays"), i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));

        printf("%swarning: stray container %s (%s, %s runner, event %s) belongs to no live run: "
               "%s; the daemon removes it at its next reconcile (run.reconcile_interval_s), or "
               "`docker rm -f %s` on its node\n",
               i ? "" : "\n", name, json_string_value(json_object_get(s, "state")),
               json_string_value(json_object_get(s, "runner")),
               json_string_value(json_object_get(s, "event")),
               json_string_value(json_object_get(s, "why")),
               *name ? name : json_string_value(json_object_get(s, "id")));
    }
}

/* The node's own Docker engine, when it names one: up, or down and why. */
static void
print_engine(const json_t *e)
{
    if (!e)
        return;
    if (json_is_true(json_object_get(e, "up")))
        printf("  %-12s %s up\n", "engine", json_string_value(json_object_get(e, "endpoint")));
    else
        printf("  %-12s %s down: %s (no new placements on this node until it answers)\n", "engine",
               json_string_value(json_object_get(e, "endpoint")),
               json_string_value(json_object_get(e, "error")));
}

static void
print_text(json_t *doc, const char *journal)
{
    json_t *n, *orphans = json_object_get(doc, "orphans");
    size_t i;

    json_array_foreach(json_object_get(doc, "nodes"), i, n)
    {
        const char *note = json_string_value(json_object_get(n, "note"));

        printf("%snode %s\n", i ? "\n" : "", json_string_value(json_object_get(n, "name")));
        print_figures(n);
        print_engine(json_object_get(n, "engine"));
        if (note)
            printf("  %-12s %s\n", "note", note);
        print_allocation(n);
    }
    json_array_foreach(json_object_get(json_object_get(doc, "slurm"), "partitions"), i, n)
        printf("%sslurm partition %s (%s): %lld node(s), %lld of %lld GPUs free\n", i ? "" : "\n",
               json_string_value(json_object_get(n, "name")),
               json_string_value(json_object_get(n, "state")),
               json_integer_value(json_object_get(n, "nodes")),
               json_integer_value(json_object_get(n, "gpus_free")),
               json_integer_value(json_object_get(n, "gpus")));
    json_array_foreach(json_object_get(json_object_get(doc, "slurm"), "nodes"), i, n)
        printf("slurm node %s (%s, partitions %s): %lld of %lld GPUs allocated by Slurm\n",
               json_string_value(json_object_get(n, "name")),
               json_string_value(json_object_get(n, "state")),
               json_string_value(json_object_get(n, "partitions")),
               json_integer_value(json_object_get(n, "gpus_allocated")),
               json_integer_value(json_object_get(n, "gpus")));
    if (json_array_size(json_object_get(doc, "nodes")) == 0)
        printf("no nodes (set inventory.nodes, or inventory.local: true)\n");
    if (!orphans)
        printf("\njournal %s: none yet, so nothing is allocated\n", journal);
    json_array_foreach(orphans, i, n)
        printf("\norphan: %s#%lld holds devices on node %s, which the inventory lacks\n",
               json_string_value(json_object_get(n, "event")),
               json_integer_value(json_object_get(n, "replica")),
               json_string_value(json_object_get(n, "node")));
    print_strays(json_object_get(doc, "containers"));
}

/* ---- the command ----------------------------------------------------------------------- */

struct nodes_opts {
    bool json;
    const char *journal;
};

static int
parse_args(int argc, char **argv, struct nodes_opts *o)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'J'},
        {"journal", required_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'J')
            o->json = true;
        else if (c == 'j')
            o->journal = optarg;
        else
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help nodes`");
    }
    if (optind < argc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "nodes: unexpected argument '%s'", argv[optind]);
    return OCRA_CLI_OK;
}

/* The report, with the journal's allocations when the journal exists (never creates it). */
static json_t *
report(struct ocra_cli_ctx *ctx, const struct ocra_sched_inventory *inv, const char *journal,
       struct ocra_err *err)
{
    struct ocra_sched_allocator *a = NULL;
    struct ocra_store *st = NULL;
    json_t *doc = NULL;

    if (access(journal, F_OK) != 0)
        return ocra_sched_nodes_json(inv, NULL, err);
    if (ocra_store_open(journal, &st, err) == 0 &&
        ocra_sched_allocator_open(st, inv, (enum ocra_sched_policy)ctx->cfg.sched.policy,
                                  ctx->cfg.sched.gpu_memory_headroom_mib, &a, err) == 0)
        doc = ocra_sched_nodes_json(inv, a, err);
    ocra_sched_allocator_free(a);
    ocra_store_close(st);
    return doc;
}

static int
nodes_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    struct ocra_sched_inventory inv;
    struct nodes_opts o = {false, NULL};
    struct ocra_err err = {0};
    json_t *doc = NULL, *sj;
    char *text;
    int status = ocra_cli_config(ctx);

    if (status == OCRA_CLI_OK)
        status = parse_args(argc, argv, &o);
    if (status != OCRA_CLI_OK)
        return status;
    if (!o.journal)
        o.journal = ctx->cfg.journal_path;
    if (ocra_cli_inventory(&ctx->cfg, &inv, &err) < 0)
        status = ocra_cli_fail(OCRA_CLI_USAGE, "nodes: %s", err.msg);
    else if (!(doc = report(ctx, &inv, o.journal, &err)))
        status = ocra_cli_fail(OCRA_CLI_FAIL, "nodes: %s: %s", o.journal, err.msg);
    if (doc && (sj = slurm_json()))
        json_object_set_new(doc, "slurm", sj);
    if (doc)
        json_object_set_new(doc, "containers", strays_json(&ctx->cfg, o.journal));
    /* each node's own engine asked now: a silent one is down, and so is the exit status */
    if (doc && ocra_daemon_hosts_json(&ctx->cfg, json_object_get(doc, "nodes"), 0) > 0 &&
        status == OCRA_CLI_OK)
        status = OCRA_CLI_FAIL;
    if (doc && o.json) {
        text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s\n", text);
        free(text);
    } else if (doc) {
        print_text(doc, o.journal);
    }
    json_decref(doc);
    ocra_sched_inventory_fini(&inv);
    ocra_run_slurm_inventory_fini(&slurm_seen);
    return status;
}

const struct ocra_cli_cmd ocra_cli_nodes_cmd = {
    "nodes", "show the GPU nodes, where each figure came from, and what is allocated",
    "usage: ocra nodes [--json] [--journal FILE]\n"
    "\n"
    "Shows the inventory ocra places on: the nodes of inventory.nodes in the configuration\n"
    "and, with inventory.local (the default), this machine (CPUs and RAM from /proc, GPUs\n"
    "through NVML, libnvidia-ml.so.1, loaded at run time), and with run.slurm.url the\n"
    "Slurm cluster's nodes and their GPU gres through slurmrestd, with its partitions and\n"
    "the GPUs Slurm has free. Per node: GPU model, count and\n"
    "memory, driver, compute capability, CPUs, RAM, labels and cost per GPU-hour, each with\n"
    "its source in brackets (config, proc, nvml, slurm; - when unknown); a note when a\n"
    "figure is missing (\"0 GPUs: libnvidia-ml.so.1 not found\"); and from the journal\n"
    "what is free and which events hold which GPUs (event#replica). Then a warning for each\n"
    "stray container on the runner's engine: one that carries ocra's labels but belongs to\n"
    "no live run (its Slurm job ended or is unknown to slurmctld, its docker run ended, a\n"
    "replica without an allocation); the daemon removes those at start and every\n"
    "run.reconcile_interval_s (docs/RUNNING.md, Stray containers). The journal is read,\n"
    "never created. A node that names its own Docker engine (docker_host) shows it and\n"
    "whether it answers now (\"engine tcp://10.0.0.2:2376 up\"); a silent one is down and\n"
    "takes no new placements until it answers.\n"
    "\n"
    "options:\n"
    "      --json           one JSON document instead of text (the /api/v1/nodes shape,\n"
    "                       with \"containers\": {\"strays\": [...]} or {\"note\": why})\n"
    "      --journal FILE   the journal (default: journal.path of the configuration)\n"
    "\n"
    "examples:\n"
    "  ocra nodes\n"
    "  ocra nodes --json | jq '.nodes[] | {name, gpus, gpu_model}'\n"
    "\n"
    "exit status: 0 shown; 1 the journal cannot be read, or a node's engine does not\n"
    "answer; 2 usage error or an invalid inventory in the configuration.\n",
    nodes_run, NULL};
