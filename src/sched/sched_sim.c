/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_sim.c: trace replay through the placer. Arrivals in creation-time order (file order
 * on ties and without times); placed pods wait in a min-heap keyed by deletion time, and
 * before each arrival every pod due to leave by then is released, so capacity freed at a
 * second serves the arrivals of that second. Everything is allocated before the timed loop;
 * the loop itself allocates nothing.
 */
#include "sched/sched_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ev {
    int64_t t;
    size_t pod;
};

struct sim {
    struct ocra_sched_cluster *c;
    const struct ocra_sched_pod *pods;
    struct ocra_sched_alloc *allocs;
    struct ev *arrivals, *heap;
    size_t n_heap;
};

static int
ev_cmp(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;

    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->pod < y->pod ? -1 : x->pod > y->pod;
}

static bool
ev_less(const struct ev *x, const struct ev *y)
{
    return x->t < y->t || (x->t == y->t && x->pod < y->pod);
}

static void
heap_push(struct sim *s, struct ev e)
{
    size_t i = s->n_heap++;

    while (i > 0 && ev_less(&e, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
}

static struct ev
heap_pop(struct sim *s)
{
    struct ev top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0;

    for (;;) {
        size_t k = 2 * i + 1;

        if (k >= s->n_heap)
            break;
        if (k + 1 < s->n_heap && ev_less(&s->heap[k + 1], &s->heap[k]))
            k++;
        if (!ev_less(&s->heap[k], &last))
            break;
        s->heap[i] = s->heap[k];
        i = k;
    }
    if (s->n_heap)
        s->heap[i] = last;
    return top;
}

static void
pod_req(const struct ocra_sched_pod *p, struct ocra_sched_req *r)
{
    memset(r, 0, sizeof(*r));
    r->gpus = p->gpus;
    r->gpu_milli = p->gpu_milli;
    r->gpu_model = p->gpu_spec[0] ? p->gpu_spec : NULL;
    r->cpu_milli = p->cpu_milli;
    r->ram_mib = p->ram_mib;
}

static int
sim_init(struct sim *s, const struct ocra_sched_node *nodes, size_t n_nodes,
         const struct ocra_sched_pod *pods, size_t n_pods, struct ocra_err *err)
{
    struct ocra_sched_req r;

    s->c = ocra_sched_cluster_new();
    s->pods = pods;
    s->allocs = ocra_xcalloc(n_pods + 1, sizeof(*s->allocs));
    s->arrivals = ocra_xcalloc(n_pods + 1, sizeof(*s->arrivals));
    s->heap = ocra_xcalloc(n_pods + 1, sizeof(*s->heap));
    for (size_t i = 0; i < n_nodes; i++)
        if (ocra_sched_cluster_add(s->c, &nodes[i], err) < 0)
            return ocra_err_wrap(err, "node list");
    for (size_t i = 0; i < n_pods; i++) {
        pod_req(&pods[i], &r);
        ocra_sched_typical_add(s->c, &r, 1);
        s->arrivals[i].t = pods[i].creation < 0 ? 0 : pods[i].creation;
        s->arrivals[i].pod = i;
    }
    qsort(s->arrivals, n_pods, sizeof(*s->arrivals), ev_cmp);
    (void)ocra_sched_frag_share(s->c); /* builds fgd's classes before the clock starts */
    return 0;
}

static void
sim_fini(struct sim *s)
{
    ocra_sched_cluster_free(s->c);
    free(s->allocs);
    free(s->arrivals);
    free(s->heap);
}

/* The timed event loop. */
static void
sim_run(struct sim *s, size_t n_pods, enum ocra_sched_policy policy, bool departures,
        struct ocra_sched_sim_result *res)
{
    struct ocra_sched_req r;

    for (size_t k = 0; k < n_pods; k++) {
        const struct ev *a = &s->arrivals[k];
        const struct ocra_sched_pod *p = &s->pods[a->pod];

        while (s->n_heap && s->heap[0].t <= a->t) {
            struct ev d = heap_pop(s);

            ocra_sched_release(s->c, &s->allocs[d.pod]);
        }
        pod_req(p, &r);
        res->decisions++;
        if (ocra_sched_place(s->c, policy, &r, &s->allocs[a->pod], NULL) < 0) {
            res->failed++;
            continue;
        }
        res->placed++;
        if (departures && p->deletion >= 0)
            heap_push(s, (struct ev){p->deletion, a->pod});
    }
}

static uint64_t
thread_cpu_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
ocra_sched_simulate(const struct ocra_sched_node *nodes, size_t n_nodes,
                    const struct ocra_sched_pod *pods, size_t n_pods,
                    const struct ocra_sched_sim_conf *conf, struct ocra_sched_sim_result *res,
                    struct ocra_err *err)
{
    struct sim s = {0};
    uint64_t t0, c0;
    int ret = -1;

    if ((unsigned)conf->policy >= OCRA_SCHED_N_POLICIES ||
        (unsigned)conf->search > OCRA_SCHED_SEARCH_SCAN) {
        ocra_err_set(err, EINVAL, "simulate: no policy %d or search %d", (int)conf->policy,
                     (int)conf->search);
        goto out;
    }
    if (sim_init(&s, nodes, n_nodes, pods, n_pods, err) < 0)
        goto out;
    ocra_sched_cluster_set_search(s.c, conf->search);
    memset(res, 0, sizeof(*res));
    c0 = thread_cpu_ns();
    t0 = ocra_time_mono_ns();
    sim_run(&s, n_pods, conf->policy, conf->departures, res);
    res->ns = ocra_time_mono_ns() - t0;
    res->cpu_ns = thread_cpu_ns() - c0;
    res->frag_share = ocra_sched_frag_share(s.c);
    res->free_share = ocra_sched_free_share(s.c);
    res->frag_of_free = res->free_share > 0 ? res->frag_share / res->free_share : 0.0;
    ret = 0;
out:
    sim_fini(&s);
    return ret;
}
