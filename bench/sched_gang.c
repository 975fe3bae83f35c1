/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/sched_gang.c: gang placement decisions per second on an openb node list, at its size
 * and at copies of it N times over (--scale). The cluster is first filled, best-fit, with the
 * pods of --pods (in trace order, copied as often as the nodes; pods that do not fit are left
 * out) until half of its GPU capacity is allocated, so that whole free nodes are scattered
 * among busy ones. Then the queue decides (ocra_sched_queue_decide_with(), backfill, the copies
 * kept as the daemon keeps them) over one queued gang of twice the largest node's GPUs: the
 * fewest whole free nodes, one topology group when one can host it. The baseline, in the same
 * run and on the same cluster, is the same decision over a request of the largest node's GPUs
 * (single-node placement). Rates are the median of --rounds, in decisions per second of the
 * thread's CPU time (the same on a busy host); both requests must start in every decision.
 *
 *   bench_sched_gang --nodes NODES.csv --pods PODS.csv [--scale N]... [--rounds N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "sched/sched.h"

#define MAX_SCALES 8

static int64_t
cpu_ns(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int
load(const char *nodes_path, const char *pods_path, struct ocra_sched_node **nodes, size_t *nn,
     struct ocra_sched_pod **pods, size_t *np)
{
    struct ocra_err err = {0};
    char *text = NULL;
    size_t len = 0;
    int r = ocra_file_read(nodes_path, 64u << 20, &text, &len, &err);

    if (r == 0)
        r = ocra_sched_nodes_parse(nodes_path, text, len, nodes, nn, &err);
    free(text);
    text = NULL;
    if (r == 0)
        r = ocra_file_read(pods_path, 64u << 20, &text, &len, &err);
    if (r == 0)
        r = ocra_sched_pods_parse(pods_path, text, len, pods, np, &err);
    free(text);
    if (r < 0)
        fprintf(stderr, "bench_sched_gang: %s\n", err.msg);
    return r;
}

/* The nodes `scale` times over, half filled with the pods (as often), best-fit. */
static struct ocra_sched_cluster *
build(const struct ocra_sched_node *nodes, size_t nn, const struct ocra_sched_pod *pods, size_t np,
      int scale, int *max_gpus)
{
    struct ocra_sched_cluster *c = ocra_sched_cluster_new();
    struct ocra_sched_node n;
    struct ocra_sched_alloc a;
    size_t tried = 0;

    *max_gpus = 0;
    for (int k = 0; k < scale; k++)
        for (size_t i = 0; i < nn; i++) {
            n = nodes[i];
            (void)snprintf(n.name, sizeof(n.name), "%.50s-%d", nodes[i].name, k);
            if (ocra_sched_cluster_add(c, &n, NULL) < 0)
                abort();
            if (n.gpu_count > *max_gpus)
                *max_gpus = n.gpu_count;
        }
    for (int k = 0; k < scale; k++)
        for (size_t i = 0; i < np; i++) {
            struct ocra_sched_req r = {.gpus = pods[i].gpus,
                                       .gpu_milli = pods[i].gpu_milli,
                                       .gpu_model = pods[i].gpu_spec[0] ? pods[i].gpu_spec : NULL,
                                       .cpu_milli = pods[i].cpu_milli,
                                       .ram_mib = pods[i].ram_mib};

            if (++tried % 64 == 0 && ocra_sched_free_share(c) <= 0.5)
                return c;
            (void)ocra_sched_place(c, OCRA_SCHED_BEST_FIT, &r, &a, NULL);
        }
    return c;
}

/* Median decisions per CPU second over a request of gpus; -1 when it does not start. */
static double
rate(struct ocra_sched_queue *kept, const struct ocra_sched_cluster *c, int gpus, int reps,
     int rounds, size_t *n_nodes)
{
    struct ocra_sched_queue_conf conf = {.policy = OCRA_SCHED_Q_BACKFILL,
                                         .place = OCRA_SCHED_BEST_FIT};
    struct ocra_sched_queued q = {.id = "r", .req = {.gpus = gpus}, .estimate = 3600};
    struct ocra_sched_plan p;
    struct ocra_err err = {0};
    double v[64];

    ocra_sched_plan_init(&p);
    for (int i = 0; i < rounds; i++) {
        int64_t t0 = cpu_ns();

        for (int k = 0; k < reps; k++)
            if (ocra_sched_queue_decide_with(kept, c, &conf, 0, NULL, 0, &q, 1, &p, NULL, &err) <
                    0 ||
                p.n_start != 1) {
                fprintf(stderr, "bench_sched_gang: %d GPUs did not start: %s\n", gpus, err.msg);
                ocra_sched_plan_fini(&p);
                return -1;
            }
        v[i] = (double)reps * 1e9 / (double)(cpu_ns() - t0 + 1);
    }
    *n_nodes = p.n_allocs;
    ocra_sched_plan_fini(&p);
    qsort(v, (size_t)rounds, sizeof(v[0]), cmp_double);
    return v[rounds / 2];
}

int
main(int argc, char **argv)
{
    const char *nodes_path = NULL, *pods_path = NULL;
    int scales[MAX_SCALES], n_scales = 0, rounds = 5;
    struct ocra_sched_node *nodes = NULL;
    struct ocra_sched_pod *pods = NULL;
    size_t nn = 0, np = 0;
    int64_t v;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--nodes") == 0)
            nodes_path = argv[i + 1];
        else if (strcmp(argv[i], "--pods") == 0)
            pods_path = argv[i + 1];
        else if (strcmp(argv[i], "--rounds") == 0 &&
                 ocra_parse_i64(argv[i + 1], 1, 63, &v, NULL) == 0)
            rounds = (int)v;
        else if (strcmp(argv[i], "--scale") == 0 && n_scales < MAX_SCALES &&
                 ocra_parse_i64(argv[i + 1], 1, 100, &v, NULL) == 0)
            scales[n_scales++] = (int)v;
        else {
            fprintf(stderr, "usage: bench_sched_gang --nodes NODES.csv --pods PODS.csv "
                            "[--scale N]... [--rounds N]\n");
            return 2;
        }
    }
    if (!nodes_path || !pods_path) {
        fprintf(stderr, "bench_sched_gang: --nodes and --pods are required\n");
        return 2;
    }
    if (n_scales == 0) {
        scales[0] = 1;
        scales[1] = 10;
        n_scales = 2;
    }
    if (load(nodes_path, pods_path, &nodes, &nn, &pods, &np) < 0)
        return 1;
    printf("%-6s %7s %6s %16s %16s %6s %6s\n", "scale", "nodes", "alloc", "single/s", "gang/s",
           "ratio", "gangN");
    for (int s = 0; s < n_scales; s++) {
        int max_gpus, reps = 20000 / scales[s];
        struct ocra_sched_cluster *c = build(nodes, nn, pods, np, scales[s], &max_gpus);
        struct ocra_sched_queue *kept = ocra_sched_queue_new(c);
        size_t n1 = 0, ng = 0;
        double one = rate(kept, c, max_gpus, reps, rounds, &n1);
        double gang = rate(kept, c, 2 * max_gpus, reps, rounds, &ng);

        if (one < 0 || gang < 0 || n1 != 1 || ng != 2)
            return 1;
        printf("%-6d %7zu %5.0f%% %16.0f %16.0f %6.2f %6zu\n", scales[s],
               ocra_sched_cluster_size(c), 100.0 * (1.0 - ocra_sched_free_share(c)), one, gang,
               gang / one, ng);
        ocra_sched_queue_free(kept);
        ocra_sched_cluster_free(c);
    }
    free(nodes);
    free(pods);
    return 0;
}
