/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_simulate.c: `ocra simulate --nodes CSV --pods CSV [--policy P]...` replays a node list
 * and a pod list (the Alibaba openb trace format) through the placer, once per policy, and
 * prints a table: pods placed and failed, the share of GPU capacity left unallocatable by the
 * typical pod (fragmentation, docs/RUNNING.md), the share left unallocated, and placement
 * decisions per second. Offline; the counts are the same on every machine. With --jobs it
 * replays a job trace through the queue's policies instead (sched_queue.c, the code the daemon
 * asks) and prints job completion times, queueing delay, makespan and GPU utilisation.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "sched/sched.h"

#define SIM_FILE_MAX (64u << 20)

struct sim_opts {
    const char *nodes, *pods;
    bool departures;
    enum ocra_sched_policy policies[OCRA_SCHED_N_POLICIES];
    int n_policies;
};

static int
parse_args(int argc, char **argv, struct sim_opts *o)
{
    static const struct option longopts[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"pods", required_argument, NULL, 'p'},
        {"policy", required_argument, NULL, 'P'},
        {"no-departures", no_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    enum ocra_sched_policy p;
    int c;

    o->departures = true;
    while ((c = getopt_long(argc, argv, "n:p:P:D", longopts, NULL)) != -1) {
        if (c == 'n')
            o->nodes = optarg;
        else if (c == 'p')
            o->pods = optarg;
        else if (c == 'D')
            o->departures = false;
        else if (c == 'P' && ocra_sched_policy_parse(optarg, &p) == 0 &&
                 o->n_policies < OCRA_SCHED_N_POLICIES)
            o->policies[o->n_policies++] = p;
        else if (c == 'P')
            return ocra_cli_fail(OCRA_CLI_USAGE,
                                 "simulate: --policy %s: first-fit, best-fit, cheapest or fgd "
                                 "(at most 4)",
                                 optarg);
        else
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help simulate`");
    }
    if (optind < argc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "simulate: unexpected argument '%s'", argv[optind]);
    if (!o->nodes || !o->pods)
        return ocra_cli_fail(OCRA_CLI_USAGE, "simulate: --nodes and --pods are required");
    for (int i = 0; o->n_policies == 0 && i < OCRA_SCHED_N_POLICIES; i++)
        o->policies[i] = (enum ocra_sched_policy)i;
    if (o->n_policies == 0)
        o->n_policies = OCRA_SCHED_N_POLICIES;
    return OCRA_CLI_OK;
}

/* Exit status for a failure to read or parse an input file. */
static int
input_fail(const struct ocra_err *err)
{
    int status =
        err->code == EINVAL || err->code == ENOENT || err->code == EFBIG || err->code == EISDIR
            ? OCRA_CLI_USAGE
            : OCRA_CLI_FAIL;

    return ocra_cli_fail(status, "simulate: %s", err->msg);
}

static int
load(const struct sim_opts *o, struct ocra_sched_node **nodes, size_t *n_nodes,
     struct ocra_sched_pod **pods, size_t *n_pods)
{
    struct ocra_err err = {0};
    char *text = NULL;
    size_t len = 0;
    int ret;

    if (ocra_file_read(o->nodes, SIM_FILE_MAX, &text, &len, &err) < 0)
        return input_fail(&err);
    ret = ocra_sched_nodes_parse(o->nodes, text, len, nodes, n_nodes, &err);
    free(text);
    if (ret < 0)
        return input_fail(&err);
    if (ocra_file_read(o->pods, SIM_FILE_MAX, &text, &len, &err) < 0)
        return input_fail(&err);
    ret = ocra_sched_pods_parse(o->pods, text, len, pods, n_pods, &err);
    free(text);
    if (ret < 0)
        return input_fail(&err);
    return OCRA_CLI_OK;
}

static void
print_header(const struct sim_opts *o, const struct ocra_sched_node *nodes, size_t n_nodes,
             size_t n_pods)
{
    long long gpus = 0;

    for (size_t i = 0; i < n_nodes; i++)
        gpus += nodes[i].gpu_count;
    printf("nodes %zu (%lld GPUs), pods %zu, departures %s\n", n_nodes, gpus, n_pods,
           o->departures ? "yes" : "no");
    printf("%-10s %8s %8s %8s %7s %7s %12s\n", "policy", "pods", "placed", "failed", "frag%",
           "free%", "decisions/s");
}

/* ---- --autoscale: an inference request trace through the autoscaler -------------------- */

struct as_opts {
    const char *trace, *nodes;
    enum ocra_sched_policy policy;
    /* integers, in the order of int_opts below */
    int64_t target, tolerance, min, max, up_s, down_s, interval_s, startup_s, slots, service_ms,
        prefill_us, decode_ms, base_ms, bucket_s, replica_gpus;
};

/* The integer options: name, bounds, and the field they set. */
static const struct {
    const char *name;
    int64_t min, max;
    size_t off;
} int_opts[] = {
#define AS(f) offsetof(struct as_opts, f)
    {"target", 1, 100000, AS(target)},
    {"tolerance", 0, 99, AS(tolerance)},
    {"min", 0, OCRA_SCHED_MAX_REPLICAS, AS(min)},
    {"max", 1, OCRA_SCHED_MAX_REPLICAS, AS(max)},
    {"up-cooldown-s", 0, 86400, AS(up_s)},
    {"down-cooldown-s", 0, 86400, AS(down_s)},
    {"interval-s", 1, 3600, AS(interval_s)},
    {"startup-s", 0, 3600, AS(startup_s)},
    {"slots", 1, 1024, AS(slots)},
    {"service-ms", 0, 3600000, AS(service_ms)},
    {"prefill-us", 0, 1000000, AS(prefill_us)},
    {"decode-ms", 0, 60000, AS(decode_ms)},
    {"base-ms", 0, 3600000, AS(base_ms)},
    {"bucket-s", 1, 86400, AS(bucket_s)},
    {"replica-gpus", 0, OCRA_SCHED_MAX_GPUS, AS(replica_gpus)},
#undef AS
};

static void
as_defaults(const struct ocra_config *cfg, struct as_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->policy = (enum ocra_sched_policy)cfg->sched.policy;
    o->target = cfg->autoscale.target;
    o->tolerance = cfg->autoscale.tolerance_percent;
    o->up_s = cfg->autoscale.up_cooldown_s;
    o->down_s = cfg->autoscale.down_cooldown_s;
    o->interval_s = cfg->autoscale.interval_s;
    o->min = 1;
    o->max = 16;
    o->startup_s = 30;
    o->slots = 8;
    o->prefill_us = 200;
    o->decode_ms = 30;
    o->bucket_s = 300;
    o->replica_gpus = 1;
}

static int
as_parse(int argc, char **argv, struct as_opts *o)
{
    enum { N_INT = OCRA_ARRAY_LEN(int_opts) };
    struct option longopts[N_INT + 5];
    int c, idx = 0;

    for (size_t i = 0; i < N_INT; i++)
        longopts[i] = (struct option){int_opts[i].name, required_argument, NULL, 1000 + (int)i};
    longopts[N_INT] = (struct option){"autoscale", no_argument, NULL, 'A'};
    longopts[N_INT + 1] = (struct option){"trace", required_argument, NULL, 't'};
    longopts[N_INT + 2] = (struct option){"nodes", required_argument, NULL, 'n'};
    longopts[N_INT + 3] = (struct option){"policy", required_argument, NULL, 'P'};
    longopts[N_INT + 4] = (struct option){NULL, 0, NULL, 0};
    while ((c = getopt_long(argc, argv, "t:n:P:", longopts, &idx)) != -1) {
        if (c >= 1000 && c < 1000 + N_INT) {
            const size_t i = (size_t)(c - 1000);

            if (ocra_cli_parse_int(int_opts[i].name, optarg, int_opts[i].min, int_opts[i].max,
                                   (int64_t *)((char *)o + int_opts[i].off)) != OCRA_CLI_OK)
                return OCRA_CLI_USAGE;
        } else if (c == 't') {
            o->trace = optarg;
        } else if (c == 'n') {
            o->nodes = optarg;
        } else if (c == 'P' && ocra_sched_policy_parse(optarg, &o->policy) < 0) {
            return ocra_cli_fail(OCRA_CLI_USAGE,
                                 "simulate: --policy %s: first-fit, best-fit, cheapest or fgd",
                                 optarg);
        } else if (c != 'A' && c != 'P') {
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help simulate`");
        }
    }
    if (optind < argc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "simulate: unexpected argument '%s'", argv[optind]);
    if (!o->trace)
        return ocra_cli_fail(OCRA_CLI_USAGE, "simulate: --autoscale needs --trace CSV");
    if (o->min > o->max)
        return ocra_cli_fail(OCRA_CLI_USAGE, "simulate: --min %lld is above --max %lld",
                             (long long)o->min, (long long)o->max);
    return OCRA_CLI_OK;
}

/* The nodes the replicas go on: --nodes, else enough 8-GPU nodes for --max replicas. */
static int
as_nodes(const struct as_opts *o, struct ocra_sched_node **nodes, size_t *n)
{
    struct ocra_err err = {0};
    char *text = NULL;
    size_t len = 0, k;
    int ret;

    if (o->nodes) {
        if (ocra_file_read(o->nodes, SIM_FILE_MAX, &text, &len, &err) < 0)
            return input_fail(&err);
        ret = ocra_sched_nodes_parse(o->nodes, text, len, nodes, n, &err);
        free(text);
        return ret < 0 ? input_fail(&err) : OCRA_CLI_OK;
    }
    k = (size_t)((o->max * (o->replica_gpus ? o->replica_gpus : 1) + 7) / 8);
    *nodes = ocra_xcalloc(k, sizeof(**nodes));
    for (size_t i = 0; i < k; i++) {
        (void)snprintf((*nodes)[i].name, sizeof((*nodes)[i].name), "sim-%zu", i);
        (void)snprintf((*nodes)[i].gpu_model, sizeof((*nodes)[i].gpu_model), "GPU");
        (*nodes)[i].gpu_count = 8;
        (*nodes)[i].cpu_milli = 64000;
        (*nodes)[i].ram_mib = 512 * 1024;
    }
    *n = k;
    return OCRA_CLI_OK;
}

static void
as_conf(const struct as_opts *o, struct ocra_sched_replay_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->scale.min = (int)o->min;
    c->scale.max = (int)o->max;
    c->scale.target = (double)o->target;
    c->scale.tolerance = (double)o->tolerance / 100;
    c->scale.up_cooldown_ms = o->up_s * 1000;
    c->scale.down_cooldown_ms = o->down_s * 1000;
    c->interval_ms = o->interval_s * 1000;
    c->startup_ms = o->startup_s * 1000;
    c->slots = (int)o->slots;
    c->service_ms = o->service_ms;
    c->prefill_us_per_token = o->prefill_us;
    c->decode_us_per_token = o->decode_ms * 1000;
    c->base_ms = o->base_ms;
    c->bucket_ms = o->bucket_s * 1000;
    c->replica.gpus = (int)o->replica_gpus;
    c->policy = o->policy;
}

static void
as_header(const struct as_opts *o, const struct ocra_sched_replay_conf *c,
          const struct ocra_sched_request *r, size_t n, const struct ocra_sched_node *nodes,
          size_t n_nodes)
{
    double mean = 0;
    long long gpus = 0;

    for (size_t i = 0; i < n; i++)
        mean += (double)ocra_sched_service_ms(c, &r[i]);
    for (size_t i = 0; i < n_nodes; i++)
        gpus += nodes[i].gpu_count;
    printf("autoscale replay: %s, %zu requests over %.1f min\n", o->trace, n,
           n ? (double)r[n - 1].arrival_ms / 60000.0 : 0.0);
    if (o->service_ms)
        printf("service: %lld ms per request", (long long)o->service_ms);
    else
        printf("service: %lld ms + %lld us per context token + %lld ms per generated token",
               (long long)o->base_ms, (long long)o->prefill_us, (long long)o->decode_ms);
    printf(" (mean %.2f s); %lld slots per replica; startup %lld s\n",
           n ? mean / (double)n / 1000.0 : 0.0, (long long)o->slots, (long long)o->startup_s);
    printf("control: target %lld per replica, tolerance %lld %%, replicas %lld..%lld, cooldowns "
           "up %lld s / down %lld s, step every %lld s\n",
           (long long)o->target, (long long)o->tolerance, (long long)o->min, (long long)o->max,
           (long long)o->up_s, (long long)o->down_s, (long long)o->interval_s);
    printf("placement: %s, %lld GPU(s) per replica, on %zu nodes (%lld GPUs)\n\n",
           ocra_sched_policy_name(o->policy), (long long)o->replica_gpus, n_nodes, gpus);
}

static void
as_print(const struct ocra_sched_replay_result *res)
{
    printf("%-8s %8s %20s %8s %10s\n", "time", "arrivals", "replicas min/avg/max", "waited",
           "wait p99");
    for (size_t i = 0; i < res->n_buckets; i++) {
        const struct ocra_sched_replay_bucket *b = &res->buckets[i];
        char range[32];

        (void)snprintf(range, sizeof(range), "%d/%.1f/%d", b->replicas_min, b->replicas_mean,
                       b->replicas_max);
        printf("%02lld:%02lld    %8zu %20s %8zu %7lld ms\n", (long long)(b->start_ms / 3600000),
               (long long)(b->start_ms / 60000 % 60), b->arrivals, range, b->waited,
               (long long)b->wait_p99_ms);
    }
    printf("\nrequests %zu, waited %zu (%.2f %%); wait p50 %lld ms, p90 %lld ms, p99 %lld ms, "
           "max %lld ms; median wait of those that waited %lld ms\n",
           res->requests, res->waited,
           res->requests ? 100.0 * (double)res->waited / (double)res->requests : 0.0,
           (long long)res->wait_p50_ms, (long long)res->wait_p90_ms, (long long)res->wait_p99_ms,
           (long long)res->wait_max_ms, (long long)res->waited_p50_ms);
    printf("replicas: max %d, scale-ups %zu, scale-downs %zu, replica-hours %.2f, placement "
           "failures %zu\n",
           res->replicas_max, res->scale_ups, res->scale_downs, res->replica_hours,
           res->place_failures);
}

static int
autoscale_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    struct ocra_sched_request *reqs = NULL;
    struct ocra_sched_node *nodes = NULL;
    struct ocra_sched_replay_result res = {0};
    struct ocra_sched_replay_conf conf;
    struct ocra_err err = {0};
    struct as_opts o;
    size_t n = 0, n_nodes = 0, len = 0;
    char *text = NULL;
    int status = ocra_cli_config(ctx);

    as_defaults(&ctx->cfg, &o);
    if (status == OCRA_CLI_OK)
        status = as_parse(argc, argv, &o);
    if (status == OCRA_CLI_OK && ocra_file_read(o.trace, SIM_FILE_MAX, &text, &len, &err) < 0)
        status = input_fail(&err);
    if (status == OCRA_CLI_OK && ocra_sched_requests_parse(o.trace, text, len, &reqs, &n, &err) < 0)
        status = input_fail(&err);
    if (status == OCRA_CLI_OK)
        status = as_nodes(&o, &nodes, &n_nodes);
    if (status == OCRA_CLI_OK) {
        as_conf(&o, &conf);
        as_header(&o, &conf, reqs, n, nodes, n_nodes);
        if (ocra_sched_replay(nodes, n_nodes, reqs, n, &conf, &res, &err) < 0)
            status = ocra_cli_fail(err.code == EINVAL ? OCRA_CLI_USAGE : OCRA_CLI_FAIL,
                                   "simulate: %s", err.msg);
        else
            as_print(&res);
    }
    free(res.buckets);
    free(text);
    free(reqs);
    free(nodes);
    return status;
}

/* ---- --jobs: a job trace through the queue's policies ---------------------------------- */

#define JOBS_MAX_WEIGHTS 64

struct jobs_opts {
    const char *jobs, *nodes;
    enum ocra_sched_qpolicy policies[OCRA_SCHED_Q_N_POLICIES];
    int n_policies;
    enum ocra_sched_policy place;
    int64_t aging_s;
    struct ocra_sched_weight weights[JOBS_MAX_WEIGHTS];
    size_t n_weights;
    bool json;
};

/* "OWNER=W": a fair-share weight (W > 0, up to 1e6); the string is argv's, kept. */
static int
jobs_weight(struct jobs_opts *o, char *arg)
{
    char *eq = strrchr(arg, '='), *end = NULL;
    double w;

    if (o->n_weights == JOBS_MAX_WEIGHTS)
        return ocra_cli_fail(OCRA_CLI_USAGE, "simulate: more than %d --weight options",
                             JOBS_MAX_WEIGHTS);
    if (eq && eq > arg) {
        w = strtod(eq + 1, &end);
        if (end != eq + 1 && !*end && w > 0 && w <= 1e6) {
            *eq = '\0';
            o->weights[o->n_weights++] = (struct ocra_sched_weight){arg, w};
            return OCRA_CLI_OK;
        }
    }
    return ocra_cli_fail(OCRA_CLI_USAGE,
                         "simulate: --weight %s: expected OWNER=WEIGHT, a weight in (0, 1e6]", arg);
}

static int
jobs_parse(int argc, char **argv, struct jobs_opts *o)
{
    static const struct option longopts[] = {
        {"jobs", required_argument, NULL, 'j'},    {"nodes", required_argument, NULL, 'n'},
        {"policy", required_argument, NULL, 'P'},  {"place", required_argument, NULL, 'L'},
        {"aging-s", required_argument, NULL, 'a'}, {"weight", required_argument, NULL, 'w'},
        {"json", no_argument, NULL, 'J'},          {NULL, 0, NULL, 0},
    };
    enum ocra_sched_qpolicy p;
    int c, st = OCRA_CLI_OK;

    while (st == OCRA_CLI_OK && (c = getopt_long(argc, argv, "j:n:P:", longopts, NULL)) != -1) {
        if (c == 'j')
            o->jobs = optarg;
        else if (c == 'n')
            o->nodes = optarg;
        else if (c == 'J')
            o->json = true;
        else if (c == 'a')
            st = ocra_cli_parse_int("aging-s", optarg, 0, 86400 * 365, &o->aging_s);
        else if (c == 'w')
            st = jobs_weight(o, optarg);
        else if (c == 'L' && ocra_sched_policy_parse(optarg, &o->place) < 0)
            st =
                ocra_cli_fail(OCRA_CLI_USAGE,
                              "simulate: --place %s: first-fit, best-fit, cheapest or fgd", optarg);
        else if (c == 'P' && ocra_sched_qpolicy_parse(optarg, &p) == 0 &&
                 o->n_policies < OCRA_SCHED_Q_N_POLICIES)
            o->policies[o->n_policies++] = p;
        else if (c == 'P')
            st = ocra_cli_fail(OCRA_CLI_USAGE,
                               "simulate: --policy %s: with --jobs, fifo, backfill, fair or sjf "
                               "(at most 4)",
                               optarg);
        else if (c != 'L')
            st = ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help simulate`");
    }
    if (st != OCRA_CLI_OK)
        return st;
    if (optind < argc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "simulate: unexpected argument '%s'", argv[optind]);
    if (!o->jobs || !o->nodes)
        return ocra_cli_fail(OCRA_CLI_USAGE, "simulate: --jobs needs --nodes");
    for (int i = 0; o->n_policies == 0 && i < OCRA_SCHED_Q_N_POLICIES; i++)
        o->policies[i] = (enum ocra_sched_qpolicy)i;
    if (o->n_policies == 0)
        o->n_policies = OCRA_SCHED_Q_N_POLICIES;
    return OCRA_CLI_OK;
}

static int
jobs_load(const struct jobs_opts *o, struct ocra_sched_node **nodes, size_t *n_nodes,
          struct ocra_sched_job **jobs, size_t *n_jobs)
{
    struct ocra_err err = {0};
    char *text = NULL;
    size_t len = 0;
    int ret;

    if (ocra_file_read(o->nodes, SIM_FILE_MAX, &text, &len, &err) < 0)
        return input_fail(&err);
    ret = ocra_sched_nodes_parse(o->nodes, text, len, nodes, n_nodes, &err);
    free(text);
    if (ret < 0)
        return input_fail(&err);
    if (ocra_file_read(o->jobs, SIM_FILE_MAX, &text, &len, &err) < 0)
        return input_fail(&err);
    ret = ocra_sched_jobs_parse(o->jobs, text, len, jobs, n_jobs, &err);
    free(text);
    return ret < 0 ? input_fail(&err) : OCRA_CLI_OK;
}

static json_t *
jobs_json(enum ocra_sched_qpolicy p, const struct ocra_sched_jobsim_result *r)
{
    return json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:I, s:f, s:I}", "policy",
                     ocra_sched_qpolicy_name(p), "jobs", (json_int_t)r->jobs, "jct_avg_s",
                     r->jct_avg, "jct_p50_s", r->jct_p50, "jct_p95_s", r->jct_p95, "wait_avg_s",
                     r->wait_avg, "makespan_s", (json_int_t)r->makespan, "gpu_util", r->gpu_util,
                     "preemptions", (json_int_t)r->preemptions);
}

static void
jobs_header(const struct jobs_opts *o, const struct ocra_sched_node *nodes, size_t n_nodes,
            size_t n_jobs)
{
    long long gpus = 0;

    for (size_t i = 0; i < n_nodes; i++)
        gpus += nodes[i].gpu_count;
    printf("jobs %zu, nodes %zu (%lld GPUs), placement %s, aging %s%lld s\n", n_jobs, n_nodes, gpus,
           ocra_sched_policy_name(o->place), o->aging_s ? "+1 priority per " : "off, ",
           (long long)o->aging_s);
    printf("%-9s %7s %11s %11s %11s %11s %11s %6s %11s %11s\n", "policy", "jobs", "jct_avg_s",
           "jct_p50_s", "jct_p95_s", "wait_avg_s", "makespan_s", "util%", "decisions/s",
           "preemptions");
}

static int
jobs_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    struct ocra_sched_node *nodes = NULL;
    struct ocra_sched_job *jobs = NULL;
    struct ocra_sched_jobsim_result res;
    struct jobs_opts o = {0};
    struct ocra_err err = {0};
    size_t n_nodes = 0, n_jobs = 0;
    json_t *arr = json_array();
    int status = ocra_cli_config(ctx);

    o.place = (enum ocra_sched_policy)ctx->cfg.sched.policy;
    o.aging_s = 3600;
    if (status == OCRA_CLI_OK)
        status = jobs_parse(argc, argv, &o);
    if (status == OCRA_CLI_OK)
        status = jobs_load(&o, &nodes, &n_nodes, &jobs, &n_jobs);
    if (status == OCRA_CLI_OK && !o.json)
        jobs_header(&o, nodes, n_nodes, n_jobs);
    for (int i = 0; status == OCRA_CLI_OK && i < o.n_policies; i++) {
        struct ocra_sched_queue_conf conf = {o.policies[i], o.place,     o.aging_s,
                                             o.weights,     o.n_weights, 0};

        if (ocra_sched_jobsim(nodes, n_nodes, jobs, n_jobs, &conf, &res, &err) < 0) {
            status = ocra_cli_fail(err.code == EINVAL || err.code == ENOSPC ? OCRA_CLI_USAGE
                                                                            : OCRA_CLI_FAIL,
                                   "simulate: %s", err.msg);
            break;
        }
        if (o.json)
            json_array_append_new(arr, jobs_json(o.policies[i], &res));
        else
            printf("%-9s %7zu %11.1f %11.1f %11.1f %11.1f %11lld %6.2f %11.0f %11zu\n",
                   ocra_sched_qpolicy_name(o.policies[i]), res.jobs, res.jct_avg, res.jct_p50,
                   res.jct_p95, res.wait_avg, (long long)res.makespan, 100.0 * res.gpu_util,
                   res.ns ? (double)res.decisions * 1e9 / (double)res.ns : 0.0, res.preemptions);
    }
    if (status == OCRA_CLI_OK && o.json) {
        char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

        puts(text ? text : "[]");
        free(text);
    }
    json_decref(arr);
    free(nodes);
    free(jobs);
    return status;
}

static bool
wants_jobs(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--jobs") == 0 || strncmp(argv[i], "--jobs=", 7) == 0 ||
            strcmp(argv[i], "-j") == 0)
            return true;
    return false;
}

static bool
wants_autoscale(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--autoscale") == 0)
            return true;
    return false;
}

static int
simulate_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    struct ocra_sched_node *nodes = NULL;
    struct ocra_sched_pod *pods = NULL;
    struct ocra_sched_sim_result res;
    struct ocra_err err = {0};
    struct sim_opts o = {0};
    size_t n_nodes = 0, n_pods = 0;
    int status;

    if (wants_autoscale(argc, argv))
        return autoscale_run(ctx, argc, argv);
    if (wants_jobs(argc, argv))
        return jobs_run(ctx, argc, argv);
    status = parse_args(argc, argv, &o);
    if (status == OCRA_CLI_OK)
        status = load(&o, &nodes, &n_nodes, &pods, &n_pods);
    if (status == OCRA_CLI_OK)
        print_header(&o, nodes, n_nodes, n_pods);
    for (int i = 0; status == OCRA_CLI_OK && i < o.n_policies; i++) {
        struct ocra_sched_sim_conf conf = {o.policies[i], o.departures, OCRA_SCHED_SEARCH_INDEX};

        if (ocra_sched_simulate(nodes, n_nodes, pods, n_pods, &conf, &res, &err) < 0) {
            status = ocra_cli_fail(err.code == EINVAL ? OCRA_CLI_USAGE : OCRA_CLI_FAIL,
                                   "simulate: %s", err.msg);
            break;
        }
        printf("%-10s %8zu %8zu %8zu %7.2f %7.2f %12.0f\n", ocra_sched_policy_name(o.policies[i]),
               n_pods, res.placed, res.failed, 100.0 * res.frag_share, 100.0 * res.free_share,
               res.ns ? (double)res.decisions * 1e9 / (double)res.ns : 0.0);
    }
    free(nodes);
    free(pods);
    return status;
}

const struct ocra_cli_cmd ocra_cli_simulate_cmd = {
    "simulate", "replay a GPU cluster trace through the placement policies",
    "usage: ocra simulate --nodes NODES.csv --pods PODS.csv [--policy P]... [--no-departures]\n"
    "       ocra simulate --autoscale --trace REQUESTS.csv [--nodes NODES.csv] [OPTIONS]\n"
    "       ocra simulate --jobs JOBS.csv --nodes NODES.csv [--policy Q]... [--json] [OPTIONS]\n"
    "\n"
    "Replays a pod list on a node list (the CSV format of the Alibaba openb trace,\n"
    "../shared/traces) through ocra's placer, once per policy, and prints one row each:\n"
    "pods placed and failed; frag%, the share of all GPU capacity that the trace's typical\n"
    "pod cannot use just after the last arrival (FGD, ATC'23; docs/RUNNING.md); free%, the\n"
    "share not allocated at that moment; and placement decisions per second. Pods arrive in\n"
    "creation_time order and leave at deletion_time; a pod that finds no room fails.\n"
    "\n"
    "options:\n"
    "  -n, --nodes FILE     node list: sn,cpu_milli,memory_mib,gpu,model[,gpu_mem_mib,\n"
    "                       driver,compute_cap,cost,labels]\n"
    "  -p, --pods FILE      pod list: name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
    "                       [,gpu_spec,creation_time,deletion_time]\n"
    "  -P, --policy P       first-fit, best-fit, cheapest or fgd; repeatable\n"
    "                       (default: all four)\n"
    "  -D, --no-departures  pods never leave: the FGD paper's fill-up experiment\n"
    "\n"
    "With --autoscale, replays the request arrivals of an inference trace (the Azure LLM\n"
    "inference trace: TIMESTAMP,ContextTokens,GeneratedTokens) through the autoscaler\n"
    "(docs/RUNNING.md): every --interval-s the load (requests in flight + queued) sets the\n"
    "replica count; each new replica is placed through the placer and serves after\n"
    "--startup-s; a request goes to a replica with a free slot or waits in one queue. It\n"
    "prints the replicas over time (per --bucket-s) and the requests that waited (count,\n"
    "share, wait percentiles). Defaults come from the autoscale.* and sched.policy keys.\n"
    "  -t, --trace FILE          the request trace (required)\n"
    "      --target N            load per replica aimed at (autoscale.target)\n"
    "      --tolerance PCT       dead band around the target (autoscale.tolerance_percent)\n"
    "      --min N, --max N      replica bounds (default 1 and 16)\n"
    "      --up-cooldown-s S     seconds since the last change before scaling up\n"
    "      --down-cooldown-s S   ... before scaling down\n"
    "      --interval-s S        seconds between control steps\n"
    "      --slots N             requests one replica serves at once (default 8)\n"
    "      --startup-s S         from placement to serving (default 30)\n"
    "      --service-ms MS       every request takes MS; 0 (default): the token model\n"
    "      --prefill-us US       token model: per context token (default 200)\n"
    "      --decode-ms MS        token model: per generated token (default 30)\n"
    "      --base-ms MS          token model: fixed part (default 0)\n"
    "      --replica-gpus N      GPUs per replica (default 1)\n"
    "      --nodes FILE          nodes for the replicas (default: 8-GPU nodes for --max)\n"
    "      --bucket-s S          width of a timeline row (default 300)\n"
    "\n"
    "With --jobs, replays a job trace through the queue policies (docs/RUNNING.md):\n"
    "jobs arrive at submit and run for duration; the queue decides what starts.\n"
    "Per policy: JCT avg/p50/p95, wait, makespan, GPU use, decisions/s, preemptions.\n"
    "  -j, --jobs FILE   name,submit,duration,gpus[,owner,priority,preemptible,estimate];\n"
    "                    submit: seconds or ISO-8601; the queue is told estimate, else\n"
    "                    the duration; preemptible: may yield to higher priority\n"
    "  -P, --policy Q    fifo, backfill, fair or sjf; repeatable (default all)\n"
    "      --place P     placement policy (default: sched.policy)\n"
    "      --aging-s S   +1 priority per S s waited (default 3600, 0 off)\n"
    "      --weight O=W  owner O's fair share weight, repeatable\n"
    "      --json        one object per policy: policy, jobs, jct_*_s, wait_avg_s,\n"
    "                    makespan_s, gpu_util, preemptions\n"
    "examples:\n"
    "  ocra simulate --jobs jobs.csv --nodes nodes.csv -P fifo -P backfill --json\n"
    "\n"
    "exit status: 0 simulated; 1 a runtime failure (no replica can be placed at all); 2 a\n"
    "usage error or an input file that cannot be read or parsed (`FILE:LINE: COLUMN:\n"
    "PROBLEM` on standard error).\n",
    simulate_run, NULL};
