/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_plan.c: `ocra plan SPEC.json` validates a model spec and prints its build and resource
 * plan: the container image specification, how each version was resolved, the pinned
 * packages, the resources with their reasoning, the toolchain hash and the Dockerfile. Offline;
 * the same spec and configuration print the same bytes on every machine.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "daemon/daemon.h"
#include "plan/plan.h"
#include "spec/spec.h"

#define PLAN_FILE_MAX (16u << 20) /* the spec parser itself rejects anything over 64 KiB */

enum plan_format { FMT_TEXT, FMT_JSON, FMT_DOCKERFILE };

struct plan_opts {
    enum plan_format format;
    const char *name, *event_path;
    const char **http_hosts;
    size_t n_http_hosts;
    const char **allow_hosts;
    size_t n_allow_hosts;
    bool allow_file;
};

void
ocra_cli_print_problems(const char *path, const struct ocra_spec_problems *probs,
                        const char *summary)
{
    for (size_t i = 0; i < probs->n; i++)
        fprintf(stderr, "%s: %s%s%s [%s]\n", path, probs->items[i].field,
                probs->items[i].field[0] ? ": " : "", probs->items[i].text, probs->items[i].rule);
    if (probs->n == 0)
        fprintf(stderr, "%s: %s\n", path, summary);
    fprintf(stderr, "%s: cannot plan (%zu problem%s)\n", path, probs->n ? probs->n : 1,
            probs->n == 1 || probs->n == 0 ? "" : "s");
}

static int
read_event(const char *path, struct ocra_spec_event **ev)
{
    struct ocra_err err = {0};
    json_t *j = ocra_json_load_file(path, 1u << 20, OCRA_JSON_STRICT, &err);
    int ret;

    if (!j)
        return ocra_cli_fail(OCRA_CLI_USAGE, "plan: event %s: %s", path, err.msg);
    ret = ocra_spec_event_from_json(j, ev, &err);
    json_decref(j);
    if (ret < 0)
        return ocra_cli_fail(OCRA_CLI_USAGE, "plan: event %s: %s", path, err.msg);
    return OCRA_CLI_OK;
}

static void
print_plan(const struct plan_opts *o, const struct ocra_plan *plan)
{
    char *text;
    json_t *j;

    switch (o->format) {
    case FMT_DOCKERFILE:
        fputs(ocra_plan_dockerfile(plan), stdout);
        return;
    case FMT_JSON:
        j = ocra_plan_to_json(plan);
        text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        json_decref(j);
        break;
    default:
        text = ocra_plan_to_text(plan);
        break;
    }
    fputs(text, stdout);
    if (o->format == FMT_JSON)
        fputc('\n', stdout);
    free(text);
}

/* Parses, sizes and resolves; prints the plan or every problem. */
static int
plan_one(struct ocra_cli_ctx *ctx, const struct plan_opts *o, const char *path,
         const struct ocra_spec_event *ev)
{
    struct ocra_spec_problems probs = {0};
    struct ocra_spec_policy pol = {0};
    struct ocra_plan_options po = {0};
    struct ocra_plan_data *data = NULL;
    struct ocra_plan_mirror *mirrors = NULL;
    struct ocra_spec *spec = NULL;
    struct ocra_plan *plan = NULL;
    struct ocra_err err = {0};
    char *text = NULL, *name = NULL;
    json_t *doc = NULL;
    size_t len = 0;
    int status = OCRA_CLI_USAGE;

    if (ocra_file_read(path, PLAN_FILE_MAX, &text, &len, &err) < 0) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        goto out;
    }
    name = ocra_cli_default_name(o->name, path);
    pol.http_hosts = o->http_hosts;
    pol.n_http_hosts = o->n_http_hosts;
    pol.allow_hosts = o->allow_hosts;
    pol.n_allow_hosts = o->n_allow_hosts;
    pol.allow_file = o->allow_file;
    pol.default_name = name;
    if (ocra_spec_parse(text, len, &pol, &spec, &probs, &err) < 0) {
        ocra_cli_print_problems(path, &probs, err.msg);
        goto out;
    }
    if (ocra_plan_data_load(ctx->cfg.plan.data_dir, &data, &err) < 0) {
        status = ocra_cli_fail(OCRA_CLI_FAIL, "plan: %s", err.msg);
        goto out;
    }
    doc = ocra_json_parse(text, len, 0, NULL);
    mirrors = ocra_xcalloc(ctx->cfg.plan.n_mirrors + 1, sizeof(*mirrors));
    ocra_daemon_plan_options(&ctx->cfg, &po, mirrors);
    po.gpus_given = doc && ocra_plan_doc_gives_gpus(doc);
    po.event = ev;
    if (ocra_plan_new(data, spec, &po, &plan, &probs, &err) < 0) {
        ocra_cli_print_problems(path, &probs, err.msg);
        goto out;
    }
    print_plan(o, plan);
    status = OCRA_CLI_OK;
out:
    ocra_plan_free(plan);
    ocra_plan_data_free(data);
    ocra_spec_problems_fini(&probs);
    ocra_spec_free(spec);
    json_decref(doc);
    free(mirrors);
    free(name);
    free(text);
    return status;
}

static int
parse_format(const char *s, enum plan_format *f)
{
    if (!strcmp(s, "text"))
        *f = FMT_TEXT;
    else if (!strcmp(s, "json"))
        *f = FMT_JSON;
    else if (!strcmp(s, "dockerfile"))
        *f = FMT_DOCKERFILE;
    else
        return -1;
    return 0;
}

static int
parse_args(struct ocra_cli_ctx *ctx, int argc, char **argv, struct plan_opts *o)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'F'},    {"config", required_argument, NULL, 'c'},
        {"name", required_argument, NULL, 'n'},      {"event", required_argument, NULL, 'e'},
        {"http-host", required_argument, NULL, 'H'}, {"allow-host", required_argument, NULL, 'A'},
        {"allow-file", no_argument, NULL, 'f'},      {NULL, 0, NULL, 0},
    };
    int c;

    o->http_hosts = ocra_xcalloc((size_t)argc + 1, sizeof(char *));
    o->allow_hosts = ocra_xcalloc((size_t)argc + 1, sizeof(char *));
    while ((c = getopt_long(argc, argv, "F:c:n:e:H:A:f", longopts, NULL)) != -1) {
        if (c == 'F' && parse_format(optarg, &o->format) == 0)
            continue;
        if (c == 'c' && !ctx->cfg_loaded)
            ctx->config_path = optarg;
        else if (c == 'n')
            o->name = optarg;
        else if (c == 'e')
            o->event_path = optarg;
        else if (c == 'H')
            o->http_hosts[o->n_http_hosts++] = optarg;
        else if (c == 'A')
            o->allow_hosts[o->n_allow_hosts++] = optarg;
        else if (c == 'f')
            o->allow_file = true;
        else
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help plan`");
    }
    if (optind + 1 != argc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "plan: expected one SPEC file (see `ocra help plan`)");
    return OCRA_CLI_OK;
}

static int
plan_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    struct plan_opts o = {0};
    struct ocra_spec_event *ev = NULL;
    const char **hosts;
    int status;

    status = parse_args(ctx, argc, argv, &o);
    if (status == OCRA_CLI_OK)
        status = ocra_cli_config(ctx);
    if (status == OCRA_CLI_OK && o.event_path)
        status = read_event(o.event_path, &ev);
    if (status == OCRA_CLI_OK) {
        /* the configuration's spec.http_hosts, then the command line's */
        hosts = ocra_xcalloc(o.n_http_hosts + ctx->cfg.n_spec_http_hosts + 1, sizeof(*hosts));
        for (size_t i = 0; i < ctx->cfg.n_spec_http_hosts; i++)
            hosts[i] = ctx->cfg.spec_http_hosts[i];
        memcpy(hosts + ctx->cfg.n_spec_http_hosts, o.http_hosts, o.n_http_hosts * sizeof(*hosts));
        free(o.http_hosts);
        o.http_hosts = hosts;
        o.n_http_hosts += ctx->cfg.n_spec_http_hosts;
        /* artifact.allow_hosts likewise */
        hosts = ocra_xcalloc(o.n_allow_hosts + ctx->cfg.artifact.n_allow_hosts + 1, sizeof(*hosts));
        for (size_t i = 0; i < ctx->cfg.artifact.n_allow_hosts; i++)
            hosts[i] = ctx->cfg.artifact.allow_hosts[i];
        memcpy(hosts + ctx->cfg.artifact.n_allow_hosts, o.allow_hosts,
               o.n_allow_hosts * sizeof(*hosts));
        free(o.allow_hosts);
        o.allow_hosts = hosts;
        o.n_allow_hosts += ctx->cfg.artifact.n_allow_hosts;
        status = plan_one(ctx, &o, argv[argc - 1], ev);
    }
    ocra_spec_event_free(ev);
    free(o.http_hosts);
    free(o.allow_hosts);
    return status;
}

const struct ocra_cli_cmd ocra_cli_plan_cmd = {
    "plan", "plan the image and resources of a model spec",
    "usage: ocra plan [--format text|json|dockerfile] [--config FILE] [--event FILE]\n"
    "                 [--name NAME] [--http-host HOST]... [--allow-host HOST]...\n"
    "                 [--allow-file] SPEC.json\n"
    "\n"
    "Validates the model spec SPEC.json as `ocra spec check` does, then plans it offline:\n"
    "the base image (CUDA and cuDNN from the framework versions, or Ubuntu for CPU-only\n"
    "work), the pinned Python packages with their index URLs, the GPUs, CPU, RAM and shm\n"
    "with the reasoning, the toolchain hash and the Dockerfile. The same spec and\n"
    "configuration print the same bytes on every machine. docs/PLANNING.md explains every\n"
    "rule and how to override it (the plan.* keys of docs/CONFIG.md).\n"
    "\n"
    "options:\n"
    "  -F, --format FMT      text (default), json, or dockerfile (the Dockerfile alone)\n"
    "  -c, --config FILE     configuration file (the same as the global -c)\n"
    "  -e, --event FILE      the chain event (JSON) the spec came with: createdAt, the\n"
    "                        evt-<id> tag and the io.ocra.event-id label\n"
    "  -n, --name NAME       name for a spec without \"name\" (default: FILE without .json)\n"
    "  -H, --http-host HOST  also allow plain-http artifact URIs on HOST[:PORT]\n"
    "  -A, --allow-host HOST also allow artifact URIs naming HOST, an internal address or a\n"
    "                        CIDR (adds to artifact.allow_hosts)\n"
    "  -f, --allow-file      allow file: artifact URIs\n"
    "\n"
    "examples:\n"
    "  ocra plan examples/sentiment-bert.json\n"
    "  ocra plan --format dockerfile examples/seed.json\n"
    "  ocra plan --format json examples/sentiment-bert.json | jq .resources\n"
    "\n"
    "exit status: 0 planned; 1 the data tables cannot be read; 2 an invalid spec, one that\n"
    "cannot be planned (each problem on standard error as `FILE: FIELD: PROBLEM [RULE]`), or\n"
    "a usage error.\n",
    plan_run, NULL};
