/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_simulate.c: `ocra simulate --nodes CSV --pods CSV [--policy P]...` replays a node list
 * and a pod list (the Alibaba openb trace format) through the placer, once per policy, and
 * prints a table: pods placed and failed, the share of GPU capacity left unallocatable by the
 * typical pod (fragmentation, docs/RUNNING.md), the share left unallocated, and placement
 * decisions per second. Offline; the counts are the same on every machine.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
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

    (void)ctx;
    status = parse_args(argc, argv, &o);
    if (status == OCRA_CLI_OK)
        status = load(&o, &nodes, &n_nodes, &pods, &n_pods);
    if (status == OCRA_CLI_OK)
        print_header(&o, nodes, n_nodes, n_pods);
    for (int i = 0; status == OCRA_CLI_OK && i < o.n_policies; i++) {
        if (ocra_sched_simulate(nodes, n_nodes, pods, n_pods, o.policies[i], o.departures, &res,
                                &err) < 0) {
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
    "exit status: 0 simulated; 1 a runtime failure; 2 a usage error or an input file that\n"
    "cannot be read or parsed (`FILE:LINE: COLUMN: PROBLEM` on standard error).\n",
    simulate_run, NULL};
