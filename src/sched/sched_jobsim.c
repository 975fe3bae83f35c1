/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_jobsim.c: a job trace through the queue (ocra simulate --jobs). Event driven: at each
 * second where a job arrives or ends, the ends are released first, the arrivals join the queue,
 * and the queue's policy (sched_queue.c, the same code the daemon asks) decides what starts;
 * the started jobs take exactly the allocations it chose and end at start + duration. The
 * queue is told each job's estimate, which may differ from its duration.
 */
#include "sched/sched_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Job j arrives, or ends, at t. */
struct done {
    int64_t t;
    size_t j;
};

struct jobsim {
    const struct ocra_sched_job *jobs;
    size_t n_jobs;
    struct ocra_sched_cluster *c;
    struct ocra_sched_queue *sq;
    struct done *arrivals; /* (submit, job) in time order */
    struct ocra_sched_queued *queued;
    size_t *queued_job, n_queued;
    size_t *running, n_running, *run_pos; /* run_pos[j]: j's place in running */
    struct ocra_sched_running *rv;
    struct ocra_sched_alloc *allocs; /* every started job's, job j's at alloc_first[j] */
    size_t n_allocs, cap_allocs, *alloc_first, *alloc_n;
    struct done *heap;
    size_t n_heap;
    int64_t *start;
};

static bool
done_less(const struct done *x, const struct done *y)
{
    return x->t < y->t || (x->t == y->t && x->j < y->j);
}

static void
done_push(struct jobsim *s, int64_t t, size_t j)
{
    struct done e = {t, j};
    size_t i;

    for (i = s->n_heap++; i > 0 && done_less(&e, &s->heap[(i - 1) / 2]); i = (i - 1) / 2)
        s->heap[i] = s->heap[(i - 1) / 2];
    s->heap[i] = e;
}

static struct done
done_pop(struct jobsim *s)
{
    struct done top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0, k;

    while ((k = 2 * i + 1) < s->n_heap) {
        if (k + 1 < s->n_heap && done_less(&s->heap[k + 1], &s->heap[k]))
            k++;
        if (!done_less(&s->heap[k], &last))
            break;
        s->heap[i] = s->heap[k];
        i = k;
    }
    if (s->n_heap)
        s->heap[i] = last;
    return top;
}

static int
done_cmp(const void *a, const void *b)
{
    return done_less(a, b) ? -1 : done_less(b, a);
}

static int
jobsim_init(struct jobsim *s, const struct ocra_sched_node *nodes, size_t n_nodes,
            const struct ocra_sched_job *jobs, size_t n_jobs, struct ocra_err *err)
{
    size_t n = n_jobs + 1;

    s->jobs = jobs;
    s->n_jobs = n_jobs;
    s->c = ocra_sched_cluster_new();
    for (size_t i = 0; i < n_nodes; i++)
        if (ocra_sched_cluster_add(s->c, &nodes[i], err) < 0)
            return ocra_err_wrap(err, "node list");
    for (size_t i = 0; i < n_jobs; i++) {
        struct ocra_sched_req r = {.gpus = jobs[i].gpus};

        ocra_sched_typical_add(s->c, &r, 1); /* gangs past 16 GPUs are left out */
    }
    s->arrivals = ocra_xcalloc(n, sizeof(*s->arrivals));
    for (size_t i = 0; i < n_jobs; i++)
        s->arrivals[i] = (struct done){jobs[i].submit, i};
    qsort(s->arrivals, n_jobs, sizeof(*s->arrivals), done_cmp);
    s->queued = ocra_xcalloc(n, sizeof(*s->queued));
    s->queued_job = ocra_xcalloc(n, sizeof(*s->queued_job));
    s->running = ocra_xcalloc(n, sizeof(*s->running));
    s->run_pos = ocra_xcalloc(n, sizeof(*s->run_pos));
    s->rv = ocra_xcalloc(n, sizeof(*s->rv));
    s->alloc_first = ocra_xcalloc(n, sizeof(*s->alloc_first));
    s->alloc_n = ocra_xcalloc(n, sizeof(*s->alloc_n));
    s->heap = ocra_xcalloc(n, sizeof(*s->heap));
    s->start = ocra_xcalloc(n, sizeof(*s->start));
    s->sq = ocra_sched_queue_new(s->c);
    return 0;
}

static void
jobsim_fini(struct jobsim *s)
{
    ocra_sched_queue_free(s->sq);
    ocra_sched_cluster_free(s->c);
    free(s->arrivals);
    free(s->queued);
    free(s->queued_job);
    free(s->running);
    free(s->run_pos);
    free(s->rv);
    free(s->allocs);
    free(s->alloc_first);
    free(s->alloc_n);
    free(s->heap);
    free(s->start);
}

static void
enqueue(struct jobsim *s, size_t j)
{
    const struct ocra_sched_job *job = &s->jobs[j];
    struct ocra_sched_queued *q = &s->queued[s->n_queued];

    memset(q, 0, sizeof(*q));
    q->id = job->name;
    q->owner = job->owner;
    q->priority = job->priority;
    q->submit = job->submit;
    q->req.gpus = job->gpus;
    q->estimate = job->estimate;
    q->preemptible = job->preemptible;
    s->queued_job[s->n_queued++] = j;
}

static void
finish(struct jobsim *s, size_t j)
{
    size_t pos = s->run_pos[j], last = s->running[--s->n_running];

    for (size_t k = 0; k < s->alloc_n[j]; k++)
        ocra_sched_release(s->c, &s->allocs[s->alloc_first[j] + k]);
    s->running[pos] = last;
    s->run_pos[last] = pos;
}

/* Starts job j at t on the allocations a[0..n) the queue chose. */
static void
begin(struct jobsim *s, size_t j, int64_t t, const struct ocra_sched_alloc *a, size_t n)
{
    if (s->n_allocs + n > s->cap_allocs) {
        s->cap_allocs = 2 * (s->n_allocs + n) + 64;
        s->allocs = ocra_xrealloc(s->allocs, s->cap_allocs * sizeof(*s->allocs));
    }
    s->alloc_first[j] = s->n_allocs;
    s->alloc_n[j] = n;
    for (size_t k = 0; k < n; k++) {
        if (ocra_sched_claim(s->c, &a[k], NULL) < 0)
            abort(); /* the queue chose it on this very state */
        s->allocs[s->n_allocs++] = a[k];
    }
    s->start[j] = t;
    s->run_pos[j] = s->n_running;
    s->running[s->n_running++] = j;
    done_push(s, t + s->jobs[j].duration, j);
}

/* The running jobs as the queue sees them. */
static void
running_view(struct jobsim *s)
{
    for (size_t k = 0; k < s->n_running; k++) {
        size_t j = s->running[k];
        const struct ocra_sched_job *job = &s->jobs[j];

        s->rv[k] = (struct ocra_sched_running){job->name,
                                               job->owner,
                                               &s->allocs[s->alloc_first[j]],
                                               s->alloc_n[j],
                                               s->start[j] + job->estimate,
                                               job->preemptible};
    }
}

/* One decision at t: start what the queue says, keep the rest in their order. */
static int
step(struct jobsim *s, const struct ocra_sched_queue_conf *conf, int64_t t,
     struct ocra_sched_plan *plan, struct ocra_err *err)
{
    size_t kept = 0;
    bool *go;

    running_view(s);
    if (ocra_sched_queue_decide_with(s->sq, s->c, conf, t, s->rv, s->n_running, s->queued,
                                     s->n_queued, plan, NULL, err) < 0)
        return -1; /* the error names the job: "request NAME: ..." */
    go = ocra_xcalloc(s->n_queued + 1, sizeof(*go));
    for (size_t i = 0; i < plan->n; i++) {
        const struct ocra_sched_decision *d = &plan->v[i];

        if (!d->start)
            continue;
        go[d->queued] = true;
        begin(s, s->queued_job[d->queued], t, &plan->allocs[d->alloc], d->n_allocs);
    }
    for (size_t i = 0; i < s->n_queued; i++)
        if (!go[i]) {
            s->queued[kept] = s->queued[i];
            s->queued_job[kept++] = s->queued_job[i];
        }
    s->n_queued = kept;
    free(go);
    return 0;
}

static int
int64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least q of the values at or below it. */
static double
percentile(const int64_t *v, size_t n, double q)
{
    size_t k = (size_t)ceil(q * (double)n);

    return n ? (double)v[k ? k - 1 : 0] : 0.0;
}

static void
measure(const struct jobsim *s, struct ocra_sched_jobsim_result *res)
{
    int64_t *jct = ocra_xcalloc(s->n_jobs + 1, sizeof(*jct)), first = INT64_MAX, last = 0;
    double sum = 0, wait = 0, used = 0, gpus = (double)s->c->gpu_capacity / OCRA_SCHED_MILLI;

    for (size_t j = 0; j < s->n_jobs; j++) {
        const struct ocra_sched_job *job = &s->jobs[j];
        int64_t end = s->start[j] + job->duration;
        int held = 0;

        for (size_t k = 0; k < s->alloc_n[j]; k++)
            held += s->allocs[s->alloc_first[j] + k].n_devs;
        jct[j] = end - job->submit;
        sum += (double)jct[j];
        wait += (double)(s->start[j] - job->submit);
        used += (double)held * (double)job->duration;
        first = job->submit < first ? job->submit : first;
        last = end > last ? end : last;
    }
    qsort(jct, s->n_jobs, sizeof(*jct), int64_cmp);
    res->jobs = s->n_jobs;
    res->jct_avg = s->n_jobs ? sum / (double)s->n_jobs : 0;
    res->wait_avg = s->n_jobs ? wait / (double)s->n_jobs : 0;
    res->jct_p50 = percentile(jct, s->n_jobs, 0.50);
    res->jct_p95 = percentile(jct, s->n_jobs, 0.95);
    res->makespan = s->n_jobs ? last - first : 0;
    res->gpu_util = res->makespan && gpus > 0 ? used / (gpus * (double)res->makespan) : 0;
    free(jct);
}

static int
replay(struct jobsim *s, const struct ocra_sched_queue_conf *conf,
       struct ocra_sched_jobsim_result *res, struct ocra_err *err)
{
    struct ocra_sched_plan plan;
    size_t next = 0;
    int ret = -1;

    ocra_sched_plan_init(&plan);
    while (next < s->n_jobs || s->n_heap) {
        int64_t t = s->n_heap ? s->heap[0].t : INT64_MAX;

        if (next < s->n_jobs && s->arrivals[next].t < t)
            t = s->arrivals[next].t;
        while (s->n_heap && s->heap[0].t <= t)
            finish(s, done_pop(s).j);
        while (next < s->n_jobs && s->arrivals[next].t <= t)
            enqueue(s, s->arrivals[next++].j);
        if (!s->n_queued)
            continue;
        res->decisions++;
        if (step(s, conf, t, &plan, err) < 0)
            goto out;
    }
    if (s->n_queued) { /* nothing runs and nothing started: cannot happen with a sound policy */
        ocra_err_set(err, EDEADLK, "job %s never started", s->jobs[s->queued_job[0]].name);
        goto out;
    }
    ret = 0;
out:
    ocra_sched_plan_fini(&plan);
    return ret;
}

int
ocra_sched_jobsim(const struct ocra_sched_node *nodes, size_t n_nodes,
                  const struct ocra_sched_job *jobs, size_t n_jobs,
                  const struct ocra_sched_queue_conf *conf, struct ocra_sched_jobsim_result *res,
                  struct ocra_err *err)
{
    struct jobsim s = {0};
    uint64_t t0;
    int ret = -1;

    memset(res, 0, sizeof(*res));
    if (jobsim_init(&s, nodes, n_nodes, jobs, n_jobs, err) < 0)
        goto out;
    t0 = ocra_time_mono_ns();
    if (replay(&s, conf, res, err) < 0)
        goto out;
    res->ns = ocra_time_mono_ns() - t0;
    measure(&s, res);
    ret = 0;
out:
    jobsim_fini(&s);
    return ret;
}
