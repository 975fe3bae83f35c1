/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/sched_place.c: placement decisions per second on an openb trace, per policy, with the
 * ratio to first-fit measured in the same invocation (median of --rounds runs), in both
 * replay modes (with departures at deletion_time, and the fill-up experiment where pods never
 * leave); then pods placed and failed and the fragmentation of every policy side by side on
 * each pod list given (docs/BENCHMARKS.md, docs/RUNNING.md).
 *
 *   bench_sched_place --nodes NODES.csv --pods PODS.csv [--pods MORE.csv]... [--rounds N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "sched/sched.h"

#define MAX_LISTS 4

struct list {
    const char *path;
    struct ocra_sched_pod *pods;
    size_t n;
};

static int
load_nodes(const char *path, struct ocra_sched_node **nodes, size_t *n)
{
    struct ocra_err err = {0};
    char *text = NULL;
    size_t len = 0;
    int r = ocra_file_read(path, 64u << 20, &text, &len, &err);

    if (r == 0)
        r = ocra_sched_nodes_parse(path, text, len, nodes, n, &err);
    free(text);
    if (r < 0)
        fprintf(stderr, "bench_sched_place: %s\n", err.msg);
    return r;
}

static int
load_pods(struct list *l)
{
    struct ocra_err err = {0};
    char *text = NULL;
    size_t len = 0;
    int r = ocra_file_read(l->path, 64u << 20, &text, &len, &err);

    if (r == 0)
        r = ocra_sched_pods_parse(l->path, text, len, &l->pods, &l->n, &err);
    free(text);
    if (r < 0)
        fprintf(stderr, "bench_sched_place: %s\n", err.msg);
    return r;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Median decisions per second of `rounds` replays. */
static double
rate(const struct ocra_sched_node *nodes, size_t nn, const struct list *l, enum ocra_sched_policy p,
     bool dep, int rounds)
{
    struct ocra_sched_sim_result res;
    double r[64];

    for (int i = 0; i < rounds; i++) {
        if (ocra_sched_simulate(nodes, nn, l->pods, l->n, p, dep, &res, NULL) < 0)
            return 0;
        r[i] = (double)res.decisions * 1e9 / (double)(res.ns ? res.ns : 1);
    }
    qsort(r, (size_t)rounds, sizeof(r[0]), cmp_double);
    return r[rounds / 2];
}

static const char *
base_name(const char *path)
{
    const char *s = strrchr(path, '/');

    return s ? s + 1 : path;
}

static void
speed_table(const struct ocra_sched_node *nodes, size_t nn, const struct list *l, int rounds)
{
    printf("\n%-8s %-10s %12s %7s\n", "mode", "policy", "decisions/s", "ratio");
    for (int dep = 1; dep >= 0; dep--) {
        double base = 0;

        for (int p = 0; p < OCRA_SCHED_N_POLICIES; p++) {
            double v = rate(nodes, nn, l, (enum ocra_sched_policy)p, dep, rounds);

            if (p == OCRA_SCHED_FIRST_FIT)
                base = v;
            printf("%-8s %-10s %12.0f %7.2f\n", dep ? "replay" : "fill",
                   ocra_sched_policy_name((enum ocra_sched_policy)p), v, base > 0 ? v / base : 0);
        }
    }
}

static void
outcome_table(const struct ocra_sched_node *nodes, size_t nn, const struct list *lists, int n)
{
    struct ocra_sched_sim_result res;

    printf("\n%-30s %-6s %-10s %7s %7s %7s %7s\n", "pods", "mode", "policy", "placed", "failed",
           "frag%", "free%");
    for (int i = 0; i < n; i++) {
        for (int dep = 0; dep < 2; dep++) {
            if (dep && lists[i].n && lists[i].pods[0].creation < 0)
                continue; /* no times: the list only fills up */
            for (int p = 0; p < OCRA_SCHED_N_POLICIES; p++) {
                if (ocra_sched_simulate(nodes, nn, lists[i].pods, lists[i].n,
                                        (enum ocra_sched_policy)p, dep, &res, NULL) < 0)
                    continue;
                printf("%-30s %-6s %-10s %7zu %7zu %7.2f %7.2f\n", base_name(lists[i].path),
                       dep ? "replay" : "fill", ocra_sched_policy_name((enum ocra_sched_policy)p),
                       res.placed, res.failed, 100 * res.frag_share, 100 * res.free_share);
            }
        }
    }
}

int
main(int argc, char **argv)
{
    struct list lists[MAX_LISTS] = {{0}};
    struct ocra_sched_node *nodes = NULL;
    const char *nodes_path = NULL;
    size_t nn = 0, gpus = 0;
    int n_lists = 0, rounds = 5, ret = 1;
    int64_t v;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--nodes") == 0)
            nodes_path = argv[i + 1];
        else if (strcmp(argv[i], "--pods") == 0 && n_lists < MAX_LISTS)
            lists[n_lists++].path = argv[i + 1];
        else if (strcmp(argv[i], "--rounds") == 0 &&
                 ocra_parse_i64(argv[i + 1], 1, 63, &v, NULL) == 0)
            rounds = (int)v;
        else
            break;
    }
    if (!nodes_path || n_lists == 0) {
        fprintf(stderr, "usage: bench_sched_place --nodes CSV --pods CSV [--pods CSV]... "
                        "[--rounds 1..63]\n");
        return 2;
    }
    if (load_nodes(nodes_path, &nodes, &nn) < 0)
        goto out;
    for (int i = 0; i < n_lists; i++)
        if (load_pods(&lists[i]) < 0)
            goto out;
    for (size_t i = 0; i < nn; i++)
        gpus += (size_t)nodes[i].gpu_count;
    printf("bench/sched_place: %zu nodes, %zu GPUs; speed on %s (%zu pods), median of %d rounds\n",
           nn, gpus, base_name(lists[0].path), lists[0].n, rounds);
    speed_table(nodes, nn, &lists[0], rounds);
    outcome_table(nodes, nn, lists, n_lists);
    ret = 0;
out:
    free(nodes);
    for (int i = 0; i < n_lists; i++)
        free(lists[i].pods);
    return ret;
}
