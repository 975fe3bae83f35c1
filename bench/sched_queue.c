/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/sched_queue.c: queue decisions per second. A cluster of --nodes 8-GPU nodes is filled
 * to the brim with running workloads (1, 2, 4 and 8 GPUs, each with an expected end, eight
 * owners); then ocra_sched_queue_decide() decides over Q queued requests (1, 2, 4, 8 GPUs and
 * 16-GPU gangs of whole nodes, eight owners, three priorities, estimates from a minute to ten
 * hours), for each Q of --queued and each policy. A decision is one call over the whole queue,
 * as the daemon makes one whenever capacity is released or a request arrives: it orders the
 * queue, tries what can start, computes the head's reservation, the backfill checks, every
 * request's reason and the estimated starts of the first 64 past the head. The baseline, in the
 * same run, is Q bare placement attempts (ocra_sched_place) of the same requests on the same
 * cluster: the cost of merely asking the placer about each queued request once. Each policy is
 * timed through ocra_sched_queue_decide() (which copies the cluster every call) and through
 * ocra_sched_queue_decide_with() (the copies kept, as the daemon can). Times are the
 * median of --rounds, in the thread's CPU time (the same on a busy host).
 *
 *   bench_sched_queue [--nodes N] [--queued Q]... [--rounds R]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "sched/sched.h"

#define MAX_Q 8

static const char *const owners[] = {"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"};

struct bench {
    struct ocra_sched_cluster *c;
    struct ocra_sched_running *run;
    struct ocra_sched_alloc *allocs;
    size_t n_run;
    char (*ids)[24];
    struct ocra_sched_queued *q;
    size_t n_q;
};

static uint64_t rng = 88172645463325252u;

static uint64_t
next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t
cpu_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
setup(struct bench *b, size_t n_nodes, size_t max_q)
{
    static const int sizes[] = {1, 1, 1, 2, 2, 4, 8};
    struct ocra_sched_node node;
    struct ocra_err err = {0};

    b->c = ocra_sched_cluster_new();
    for (size_t i = 0; i < n_nodes; i++) {
        memset(&node, 0, sizeof(node));
        (void)snprintf(node.name, sizeof(node.name), "n%zu", i);
        (void)snprintf(node.gpu_model, sizeof(node.gpu_model), "A100");
        node.gpu_count = 8;
        node.gpu_mem_mib = 81920;
        node.cpu_milli = 128000;
        node.ram_mib = 1 << 20;
        if (ocra_sched_cluster_add(b->c, &node, &err) < 0) {
            fprintf(stderr, "bench_sched_queue: %s\n", err.msg);
            return -1;
        }
    }
    b->allocs = ocra_xcalloc(n_nodes * 8, sizeof(*b->allocs));
    b->run = ocra_xcalloc(n_nodes * 8, sizeof(*b->run));
    for (int misses = 0; misses < 64;) { /* fill until 64 placements in a row find no room */
        struct ocra_sched_req r = {.gpus = sizes[next_rand() % OCRA_ARRAY_LEN(sizes)]};
        struct ocra_sched_running *w = &b->run[b->n_run];

        if (ocra_sched_place(b->c, OCRA_SCHED_BEST_FIT, &r, &b->allocs[b->n_run], NULL) < 0) {
            misses++;
            continue;
        }
        misses = 0;
        w->id = "running";
        w->owner = owners[next_rand() % 8];
        w->allocs = &b->allocs[b->n_run];
        w->n_allocs = 1;
        w->end = 1000000 + 60 + (int64_t)(next_rand() % 36000);
        b->n_run++;
    }
    b->ids = ocra_xcalloc(max_q, sizeof(*b->ids));
    b->q = ocra_xcalloc(max_q, sizeof(*b->q));
    for (size_t i = 0; i < max_q; i++) {
        static const int qsizes[] = {1, 1, 1, 2, 2, 4, 8, 16};
        struct ocra_sched_queued *q = &b->q[i];

        (void)snprintf(b->ids[i], sizeof(b->ids[i]), "q%zu", i);
        q->id = b->ids[i];
        q->owner = owners[next_rand() % 8];
        q->priority = (int)(next_rand() % 3);
        q->submit = 1000000 - 3600 + (int64_t)(next_rand() % 3600);
        q->req.gpus = qsizes[next_rand() % OCRA_ARRAY_LEN(qsizes)];
        q->estimate = 60 + (int64_t)(next_rand() % 36000);
    }
    return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static uint64_t
median(uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_u64);
    return v[n / 2];
}

/* CPU ns of Q bare placement attempts (what succeeds is given back at once). */
static uint64_t
baseline(struct bench *b, size_t n_q)
{
    struct ocra_sched_alloc a;
    uint64_t t0 = cpu_ns();

    for (size_t i = 0; i < n_q; i++) {
        struct ocra_sched_req r = b->q[i].req;

        if (r.gpus > 8)
            r.gpus = 8; /* a gang asks the placer for one of its nodes */
        if (ocra_sched_place(b->c, OCRA_SCHED_BEST_FIT, &r, &a, NULL) == 0)
            ocra_sched_release(b->c, &a);
    }
    return cpu_ns() - t0;
}

/* Median CPU ns of a decision; with kept (non-NULL), through the kept scratch copies. */
static int
one(struct bench *b, enum ocra_sched_qpolicy p, size_t n_q, int rounds, uint64_t *ns,
    struct ocra_sched_plan *plan, struct ocra_sched_queue *kept)
{
    struct ocra_sched_queue_conf conf = {p, OCRA_SCHED_BEST_FIT, 3600, NULL, 0, 64};
    uint64_t t[32];
    struct ocra_err err = {0};

    for (int r = 0; r < rounds; r++) {
        uint64_t t0 = cpu_ns();
        int rc = kept ? ocra_sched_queue_decide_with(kept, b->c, &conf, 1000000, b->run, b->n_run,
                                                     b->q, n_q, plan, NULL, &err)
                      : ocra_sched_queue_decide(b->c, &conf, 1000000, b->run, b->n_run, b->q, n_q,
                                                plan, NULL, &err);

        if (rc < 0) {
            fprintf(stderr, "bench_sched_queue: %s\n", err.msg);
            return -1;
        }
        t[r] = cpu_ns() - t0;
    }
    *ns = median(t, rounds);
    return 0;
}

int
main(int argc, char **argv)
{
    struct bench b = {0};
    struct ocra_sched_plan plan;
    size_t qs[MAX_Q] = {0}, n_qs = 0, n_nodes = 1000, max_q = 0;
    struct ocra_sched_queue *kept = NULL;
    int rounds = 5, ret = 1;

    for (int i = 1; i + 1 < argc; i += 2) {
        long long v = strtoll(argv[i + 1], NULL, 10);

        if (strcmp(argv[i], "--nodes") == 0 && v > 0 && v <= 65536)
            n_nodes = (size_t)v;
        else if (strcmp(argv[i], "--queued") == 0 && v > 0 && v <= 1000000 && n_qs < MAX_Q)
            qs[n_qs++] = (size_t)v;
        else if (strcmp(argv[i], "--rounds") == 0 && v > 0 && v <= 31)
            rounds = (int)v;
        else {
            fprintf(stderr, "usage: bench_sched_queue [--nodes N] [--queued Q]... [--rounds R]\n");
            return 2;
        }
    }
    if (!n_qs) {
        qs[n_qs++] = 1000;
        qs[n_qs++] = 10000;
        qs[n_qs++] = 100000;
    }
    for (size_t i = 0; i < n_qs; i++)
        max_q = qs[i] > max_q ? qs[i] : max_q;
    if (setup(&b, n_nodes, max_q) < 0)
        goto out;
    ocra_sched_plan_init(&plan);
    printf("bench/sched_queue: %zu nodes of 8 GPUs, %zu running workloads (%.1f %% of GPUs "
           "held), median of %d rounds, CPU time\n",
           n_nodes, b.n_run, 100.0 * (1.0 - ocra_sched_free_share(b.c)), rounds);
    printf("%-9s %8s %10s %12s %12s %14s %10s %12s %10s\n", "policy", "queued", "started",
           "decisions/s", "ms/decision", "ns/request", "vs place", "kept dec/s", "vs place");
    kept = ocra_sched_queue_new(b.c);
    for (size_t k = 0; k < n_qs; k++) {
        uint64_t base[32], bns;

        for (int r = 0; r < rounds; r++)
            base[r] = baseline(&b, qs[k]);
        bns = median(base, rounds);
        printf("%-9s %8zu %10s %12.1f %12.3f %14.1f %10s\n", "place", qs[k], "-", 1e9 / (double)bns,
               (double)bns / 1e6, (double)bns / (double)qs[k], "1.00");
        for (int p = 0; p < OCRA_SCHED_Q_N_POLICIES; p++) {
            uint64_t ns, kns;

            if (one(&b, (enum ocra_sched_qpolicy)p, qs[k], rounds, &ns, &plan, NULL) < 0 ||
                one(&b, (enum ocra_sched_qpolicy)p, qs[k], rounds, &kns, &plan, kept) < 0)
                goto out_plan;
            printf("%-9s %8zu %10zu %12.1f %12.3f %14.1f %10.2f %12.1f %10.2f\n",
                   ocra_sched_qpolicy_name((enum ocra_sched_qpolicy)p), qs[k], plan.n_start,
                   1e9 / (double)ns, (double)ns / 1e6, (double)ns / (double)qs[k],
                   (double)ns / (double)bns, 1e9 / (double)kns, (double)kns / (double)bns);
        }
    }
    ret = 0;
out_plan:
    ocra_sched_plan_fini(&plan);
    ocra_sched_queue_free(kept);
out:
    ocra_sched_cluster_free(b.c);
    free(b.allocs);
    free(b.run);
    free(b.ids);
    free(b.q);
    return ret;
}
