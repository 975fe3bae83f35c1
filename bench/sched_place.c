/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/sched_place.c: placement decisions per second on an openb trace, per policy, through
 * the capacity index and through the scan of every node (the baseline, the placer before the
 * index) in the same invocation, in both replay modes (with departures at deletion_time, and
 * the fill-up experiment where pods never leave), on the node list and on copies of it N times
 * over (--scale; the pods stay the same), so the table shows how the cost of a decision grows
 * with the nodes. Rates are the median of --rounds replays, in decisions per second of the
 * thread's CPU time. Then pods placed and failed and the fragmentation of every policy side by
 * side on each pod list given, with the GPUs fgd leaves unallocatable against best-fit's; with
 * --inflate, the same comparison on the FGD paper's workload (the list shuffled and drawn from
 * up to PERCENT of the GPUs, --seeds times) (docs/BENCHMARKS.md, docs/RUNNING.md). The index
 * must choose as the scan does: the benchmark fails when the two disagree on any count or share.
 *
 *   bench_sched_place --nodes NODES.csv --pods PODS.csv [--pods MORE.csv]... [--rounds N]
 *                     [--scale N]... [--inflate PERCENT [--seeds N]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "sched/sched.h"

#define MAX_LISTS 4
#define MAX_SCALES 8

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

/* The node list `times` times over, copy r's names suffixed "-r" (copy 0 keeps them). */
static struct ocra_sched_node *
replicate(const struct ocra_sched_node *nodes, size_t nn, int times)
{
    struct ocra_sched_node *v = ocra_xcalloc(nn * (size_t)times, sizeof(*v));

    for (int r = 0; r < times; r++) {
        for (size_t i = 0; i < nn; i++) {
            struct ocra_sched_node *n = &v[(size_t)r * nn + i];

            *n = nodes[i];
            if (r > 0)
                (void)snprintf(n->name, sizeof(n->name), "%.50s-%d", nodes[i].name, r);
        }
    }
    return v;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static bool
same_outcome(const struct ocra_sched_sim_result *a, const struct ocra_sched_sim_result *b)
{
    return a->placed == b->placed && a->failed == b->failed && a->frag_share == b->frag_share &&
           a->free_share == b->free_share;
}

/*
 * Median decisions per CPU second of `rounds` replays with each search, the rounds of the two
 * interleaved so that both see the same load; *same: whether their outcomes agree.
 */
static void
rates(const struct ocra_sched_node *nodes, size_t nn, const struct list *l,
      enum ocra_sched_policy p, bool dep, int rounds, double out[2], double *frag, bool *same)
{
    struct ocra_sched_sim_result res[2];
    double r[2][64];

    for (int i = 0; i < rounds; i++) {
        for (int s = 0; s < 2; s++) {
            struct ocra_sched_sim_conf conf = {
                p, dep, s ? OCRA_SCHED_SEARCH_SCAN : OCRA_SCHED_SEARCH_INDEX};

            if (ocra_sched_simulate(nodes, nn, l->pods, l->n, &conf, &res[s], NULL) < 0) {
                *same = false;
                return;
            }
            r[s][i] = (double)res[s].decisions * 1e9 / (double)(res[s].cpu_ns ? res[s].cpu_ns : 1);
        }
        *same = *same && same_outcome(&res[0], &res[1]);
        *frag = res[0].frag_share;
    }
    for (int s = 0; s < 2; s++) {
        qsort(r[s], (size_t)rounds, sizeof(r[s][0]), cmp_double);
        out[s] = r[s][rounds / 2];
    }
}

static const char *
base_name(const char *path)
{
    const char *s = strrchr(path, '/');

    return s ? s + 1 : path;
}

/* fgd's unallocatable GPUs against best-fit's, in GPUs and as the share fgd leaves fewer. */
static void
fgd_line(const char *what, double fgd, double best_fit, size_t gpus)
{
    printf("%s: fgd %.0f, best-fit %.0f GPUs unallocatable: %.1f %% fewer\n", what,
           fgd * (double)gpus, best_fit * (double)gpus, 100 * (1 - fgd / best_fit));
}

/* One table per scale; base[mode][policy][search]: the rates at the first scale. */
static bool
speed_table(const struct ocra_sched_node *nodes, size_t nn, const struct list *l, int rounds,
            int scale, int first_scale, double base[2][OCRA_SCHED_N_POLICIES][2])
{
    struct ocra_sched_node *v = replicate(nodes, nn, scale);
    double frag[OCRA_SCHED_N_POLICIES];
    size_t gpus = 0;
    bool same = true;

    for (size_t i = 0; i < nn; i++)
        gpus += (size_t)nodes[i].gpu_count * (size_t)scale;
    printf("\nscale %dx: %zu nodes, %zu GPUs\n", scale, nn * (size_t)scale, gpus);
    printf("%-8s %-10s %12s %12s %8s %8s %8s\n", "mode", "policy", "scan/s", "index/s", "speedup",
           "scan", "index");
    for (int dep = 1; dep >= 0; dep--) {
        for (int p = 0; p < OCRA_SCHED_N_POLICIES; p++) {
            double r[2] = {0, 0};

            rates(v, nn * (size_t)scale, l, (enum ocra_sched_policy)p, dep, rounds, r, &frag[p],
                  &same);
            if (scale == first_scale) {
                base[dep][p][0] = r[0];
                base[dep][p][1] = r[1];
            }
            printf("%-8s %-10s %12.0f %12.0f %8.2f %8.2f %8.2f\n", dep ? "replay" : "fill",
                   ocra_sched_policy_name((enum ocra_sched_policy)p), r[1], r[0], r[0] / r[1],
                   r[1] / base[dep][p][1], r[0] / base[dep][p][0]);
        }
    }
    fgd_line("fill", frag[OCRA_SCHED_FGD], frag[OCRA_SCHED_BEST_FIT], gpus);
    free(v);
    return same;
}

static void
outcome_table(const struct ocra_sched_node *nodes, size_t nn, size_t gpus, const struct list *lists,
              int n)
{
    struct ocra_sched_sim_result res;
    double frag[OCRA_SCHED_N_POLICIES];

    printf("\n%-30s %-6s %-10s %7s %7s %7s %7s\n", "pods", "mode", "policy", "placed", "failed",
           "frag%", "free%");
    for (int i = 0; i < n; i++) {
        for (int dep = 0; dep < 2; dep++) {
            if (dep && lists[i].n && lists[i].pods[0].creation < 0)
                continue; /* no times: the list only fills up */
            for (int p = 0; p < OCRA_SCHED_N_POLICIES; p++) {
                struct ocra_sched_sim_conf conf = {(enum ocra_sched_policy)p, dep,
                                                   OCRA_SCHED_SEARCH_INDEX};

                frag[p] = 0;
                if (ocra_sched_simulate(nodes, nn, lists[i].pods, lists[i].n, &conf, &res, NULL) <
                    0)
                    continue;
                frag[p] = res.frag_share;
                printf("%-30s %-6s %-10s %7zu %7zu %7.2f %7.2f\n", base_name(lists[i].path),
                       dep ? "replay" : "fill", ocra_sched_policy_name((enum ocra_sched_policy)p),
                       res.placed, res.failed, 100 * res.frag_share, 100 * res.free_share);
            }
            if (!dep)
                fgd_line(base_name(lists[i].path), frag[OCRA_SCHED_FGD], frag[OCRA_SCHED_BEST_FIT],
                         gpus);
        }
    }
}

static uint64_t
rnd(uint64_t *s) /* xorshift64*: the same draws on every machine */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/*
 * The FGD paper's workload (its simulator's "workload tuning"): the pod list shuffled, then pods
 * drawn from it at random appended until the GPUs asked for reach `ratio` times the cluster's;
 * no times, so the list only fills up. Caller frees *out.
 */
static size_t
inflate(const struct list *l, int64_t capacity, double ratio, uint64_t seed,
        struct ocra_sched_pod **out)
{
    size_t n = l->n, cap = 4 * n + 16;
    struct ocra_sched_pod *v = ocra_xcalloc(cap, sizeof(*v));
    int64_t asked = 0;

    for (size_t i = 0; i < n; i++) {
        v[i] = l->pods[i];
        asked += (int64_t)v[i].gpus * v[i].gpu_milli;
    }
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rnd(&seed) % i);
        struct ocra_sched_pod t = v[i - 1];

        v[i - 1] = v[j];
        v[j] = t;
    }
    while (n < cap) {
        const struct ocra_sched_pod *p = &l->pods[rnd(&seed) % l->n];

        if ((double)(asked + p->gpu_milli) > ratio * (double)capacity)
            break;
        asked += (int64_t)p->gpus * p->gpu_milli;
        v[n++] = *p;
    }
    for (size_t i = 0; i < n; i++)
        v[i].creation = v[i].deletion = -1;
    *out = v;
    return n;
}

/* fgd against best-fit on the paper's workload: one row per seed, then the means. */
static void
paper_table(const struct ocra_sched_node *nodes, size_t nn, size_t gpus, const struct list *l,
            double ratio, int seeds)
{
    static const enum ocra_sched_policy pol[2] = {OCRA_SCHED_FGD, OCRA_SCHED_BEST_FIT};
    double sum[2] = {0, 0};

    printf("\n%s shuffled and drawn from up to %.0f %% of the GPUs, pods never leave\n",
           base_name(l->path), 100 * ratio);
    printf("%-6s %7s %9s %9s %7s\n", "seed", "pods", "fgd frag%", "bf frag%", "fewer%");
    for (int k = 1; k <= seeds; k++) {
        struct ocra_sched_sim_result res[2];
        struct ocra_sched_pod *pods;
        uint64_t seed = UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)k;
        size_t n = inflate(l, (int64_t)gpus * OCRA_SCHED_MILLI, ratio, seed, &pods);

        for (int p = 0; p < 2; p++) {
            struct ocra_sched_sim_conf conf = {pol[p], false, OCRA_SCHED_SEARCH_INDEX};

            if (ocra_sched_simulate(nodes, nn, pods, n, &conf, &res[p], NULL) < 0)
                memset(&res[p], 0, sizeof(res[p]));
            sum[p] += res[p].frag_share;
        }
        free(pods);
        printf("%-6d %7zu %9.2f %9.2f %7.1f\n", k, n, 100 * res[0].frag_share,
               100 * res[1].frag_share, 100 * (1 - res[0].frag_share / res[1].frag_share));
    }
    fgd_line("mean", sum[0] / seeds, sum[1] / seeds, gpus);
}

static int
usage(void)
{
    fprintf(stderr, "usage: bench_sched_place --nodes CSV --pods CSV [--pods CSV]... "
                    "[--rounds 1..63] [--scale 1..100]... [--inflate PERCENT [--seeds 1..100]]\n"
                    "  default scales: 1 and 10 (the first given is the base of the last two "
                    "columns)\n"
                    "  --inflate 130: also fgd against best-fit on the first list shuffled and "
                    "drawn from up to 130 %% of the GPUs (the FGD paper's workload), --seeds "
                    "times (10)\n");
    return 2;
}

int
main(int argc, char **argv)
{
    static double base[2][OCRA_SCHED_N_POLICIES][2];
    struct list lists[MAX_LISTS] = {{0}};
    struct ocra_sched_node *nodes = NULL;
    const char *nodes_path = NULL;
    size_t nn = 0;
    int n_lists = 0, rounds = 5, ret = 1, scales[MAX_SCALES], n_scales = 0, inflate_pct = 0;
    int seeds = 10;
    size_t gpus = 0;
    bool same = true;
    int64_t v;

    for (int i = 1; i < argc; i += 2) {
        if (i + 1 == argc)
            return usage();
        if (strcmp(argv[i], "--nodes") == 0)
            nodes_path = argv[i + 1];
        else if (strcmp(argv[i], "--pods") == 0 && n_lists < MAX_LISTS)
            lists[n_lists++].path = argv[i + 1];
        else if (strcmp(argv[i], "--rounds") == 0 &&
                 ocra_parse_i64(argv[i + 1], 1, 63, &v, NULL) == 0)
            rounds = (int)v;
        else if (strcmp(argv[i], "--scale") == 0 && n_scales < MAX_SCALES &&
                 ocra_parse_i64(argv[i + 1], 1, 100, &v, NULL) == 0)
            scales[n_scales++] = (int)v;
        else if (strcmp(argv[i], "--inflate") == 0 &&
                 ocra_parse_i64(argv[i + 1], 1, 400, &v, NULL) == 0)
            inflate_pct = (int)v;
        else if (strcmp(argv[i], "--seeds") == 0 &&
                 ocra_parse_i64(argv[i + 1], 1, 100, &v, NULL) == 0)
            seeds = (int)v;
        else
            return usage();
    }
    if (!nodes_path || n_lists == 0)
        return usage();
    if (n_scales == 0) {
        scales[n_scales++] = 1;
        scales[n_scales++] = 10;
    }
    if (load_nodes(nodes_path, &nodes, &nn) < 0)
        goto out;
    for (int i = 0; i < n_lists; i++)
        if (load_pods(&lists[i]) < 0)
            goto out;
    printf("bench/sched_place: %s (%zu nodes); speed on %s (%zu pods), median of %d rounds, "
           "decisions per CPU second\n"
           "speedup: index/scan; scan, index: the rate against the same search at %dx\n",
           base_name(nodes_path), nn, base_name(lists[0].path), lists[0].n, rounds, scales[0]);
    for (int s = 0; s < n_scales; s++)
        same = speed_table(nodes, nn, &lists[0], rounds, scales[s], scales[0], base) && same;
    for (size_t i = 0; i < nn; i++)
        gpus += (size_t)nodes[i].gpu_count;
    outcome_table(nodes, nn, gpus, lists, n_lists);
    if (inflate_pct)
        paper_table(nodes, nn, gpus, &lists[0], inflate_pct / 100.0, seeds);
    printf("\nindex and scan outcomes (placed, failed, frag, free) at every scale: %s\n",
           same ? "identical" : "DIFFERENT");
    ret = same ? 0 : 1;
out:
    free(nodes);
    for (int i = 0; i < n_lists; i++)
        free(lists[i].pods);
    return ret;
}
