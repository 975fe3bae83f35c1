/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sched_csv.c: feeds arbitrary bytes to the openb node and pod list parsers (the first
 * byte picks which, the rest is the file). Besides memory errors it checks their promises: a
 * failure is EINVAL with a "name:..." message and no output; a success gives rows within the
 * documented bounds. Parsed lists are replayed through the simulator under every policy,
 * which checks the placer's accounting (placed + failed is the pod count and no share is
 * outside [0, 1]) and that the capacity index chooses as the scan of every node does (the
 * same counts and shares). Any broken promise aborts.
 */
#include "sched/sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_nodes(const struct ocra_sched_node *n, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!n[i].name[0] || n[i].gpu_count < 0 || n[i].gpu_count > OCRA_SCHED_MAX_GPUS ||
            n[i].cpu_milli < 0 || n[i].ram_mib < 0 || n[i].n_labels > OCRA_SCHED_LABELS_MAX)
            abort();
}

/* A fixed small cluster for the pods, or the parsed nodes with three fixed pods. */
static void
replay(const struct ocra_sched_node *nodes, size_t nn, const struct ocra_sched_pod *pods, size_t np)
{
    struct ocra_sched_sim_result res, scan;
    struct ocra_err err = {0};

    for (int p = 0; p < OCRA_SCHED_N_POLICIES; p++) {
        for (int dep = 0; dep < 2; dep++) {
            struct ocra_sched_sim_conf conf = {(enum ocra_sched_policy)p, dep,
                                               OCRA_SCHED_SEARCH_INDEX};

            if (ocra_sched_simulate(nodes, nn, pods, np, &conf, &res, &err) < 0)
                return; /* a node the cluster refuses (e.g. a 65th model): an explained error */
            if (res.placed + res.failed != np || res.free_share < 0 || res.free_share > 1 ||
                res.frag_share < 0 || res.frag_share > res.free_share + 1e-9)
                abort();
            /* the capacity index and the scan of every node make the same choices */
            conf.search = OCRA_SCHED_SEARCH_SCAN;
            if (ocra_sched_simulate(nodes, nn, pods, np, &conf, &scan, &err) < 0 ||
                scan.placed != res.placed || scan.frag_share != res.frag_share ||
                scan.free_share != res.free_share)
                abort();
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char fixed_nodes[] = "sn,cpu_milli,memory_mib,gpu,model\n"
                                      "a,8000,1000,2,T4\nb,4000,500,8,G2\nc,1000,100,0,\n";
    static const char fixed_pods[] = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n"
                                     "p,100,10,1,500,\nq,100,10,2,1000,G2\nr,10,1,0,0,\n";
    struct ocra_sched_node *nodes = NULL;
    struct ocra_sched_pod *pods = NULL;
    struct ocra_err err = {0};
    size_t nn = 0, np = 0;
    int r;

    if (size < 1 || size > 64 * 1024)
        return 0;
    if (data[0] & 1)
        r = ocra_sched_nodes_parse("f", (const char *)data + 1, size - 1, &nodes, &nn, &err);
    else
        r = ocra_sched_pods_parse("f", (const char *)data + 1, size - 1, &pods, &np, &err);
    if (r < 0) {
        if (err.code != EINVAL || strncmp(err.msg, "f", 1) != 0 || nodes || pods)
            abort();
        return 0;
    }
    if (nodes) {
        check_nodes(nodes, nn);
        if (ocra_sched_pods_parse("p", fixed_pods, sizeof(fixed_pods) - 1, &pods, &np, NULL))
            abort();
    } else if (ocra_sched_nodes_parse("n", fixed_nodes, sizeof(fixed_nodes) - 1, &nodes, &nn,
                                      NULL)) {
        abort();
    }
    if (nn <= 256 && np <= 2048)
        replay(nodes, nn, pods, np);
    free(nodes);
    free(pods);
    return 0;
}
