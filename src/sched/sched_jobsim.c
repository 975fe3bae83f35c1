/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_jobsim.c: a job trace through the queue (ocra simulate --jobs). Event driven: at each
 * second where a job arrives or ends, the ends are released first, the arrivals join the queue,
 * and the queue's policy (sched_queue.c, the same code the daemon asks) decides what starts;
 * the started jobs take exactly the allocations it chose and end at start + duration. The
 * queue is told each job's estimate, which may differ from its duration. After each decision
 * the first waiting job (in the queue's order) may preempt preemptible jobs of lower priority
 * (ocra_sched_preempt_choose(), the rule the daemon uses): they go back to the queue and, as
 * if they checkpointed, resume later with the work they had left.
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
    int64_t *start;       /* when it last started */
    int64_t *first_start; /* when it first started, for the queueing delay */
    int64_t *left;        /* seconds of work left when it last started */
    int64_t *end_at;      /* its end while it runs; ends in the heap for other times are stale */
    bool *is_running;
    size_t *victims;
    size_t preemptions;
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
    s->first_start = ocra_xcalloc(n, sizeof(*s->first_start));
    s->left = ocra_xcalloc(n, sizeof(*s->left));
    s->end_at = ocra_xcalloc(n, sizeof(*s->end_at));
    s->is_running = ocra_xcalloc(n, sizeof(*s->is_running));
    s->victims = ocra_xcalloc(n, sizeof(*s->victims));
    for (size_t i = 0; i < n_jobs; i++) {
        s->left[i] = jobs[i].duration;
        s->first_start[i] = -1;
    }
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
    free(s->first_start);
    free(s->left);
    free(s->end_at);
    free(s->is_running);
    free(s->victims);
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
    q->estimate = job->estimate - (job->duration - s->left[j]);
    q->estimate = q->estimate > 0 ? q->estimate : 1;
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
    s->is_running[j] = false;
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
    if (s->first_start[j] < 0)
        s->first_start[j] = t;
    s->run_pos[j] = s->n_running;
    s->running[s->n_running++] = j;
    s->is_running[j] = true;
    s->end_at[j] = t + s->left[j];
    done_push(s, s->end_at[j], j);
}

/* The running jobs as the queue sees them. */
static void
running_view(struct jobsim *s)
{
    for (size_t k = 0; k < s->n_running; k++) {
        size_t j = s->running[k];
        const struct ocra_sched_job *job = &s->jobs[j];

        s->rv[k] =
            (struct ocra_sched_running){job->name,
                                        job->owner,
                                        &s->allocs[s->alloc_first[j]],
                                        s->alloc_n[j],
                                        s->start[j] + job->estimate - (job->duration - s->left[j]),
                                        job->preemptible,
                                        job->priority,
                                        s->start[j]};
    }
}

static bool preempt(struct jobsim *s, const struct ocra_sched_queue_conf *conf, int64_t t,
                    const size_t *wait, size_t n_wait);

/*
 * One decision at t: start what the queue says, keep the rest in their order. *again: a job
 * was preempted for a waiting one, so decide again.
 */
static int
step(struct jobsim *s, const struct ocra_sched_queue_conf *conf, int64_t t,
     struct ocra_sched_plan *plan, bool *again, struct ocra_err *err)
{
    size_t kept = 0, n_wait = 0, *wait;
    bool *go;

    running_view(s);
    if (ocra_sched_queue_decide_with(s->sq, s->c, conf, t, s->rv, s->n_running, s->queued,
                                     s->n_queued, plan, NULL, err) < 0)
        return -1; /* the error names the job: "request NAME: ..." */
    go = ocra_xcalloc(s->n_queued + 1, sizeof(*go));
    wait = ocra_xcalloc(s->n_queued + 1, sizeof(*wait));
    for (size_t i = 0; i < plan->n; i++) {
        const struct ocra_sched_decision *d = &plan->v[i];

        if (!d->start) {
            wait[n_wait++] = s->queued_job[d->queued];
            continue;
        }
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
    *again = preempt(s, conf, t, wait, n_wait);
    free(wait);
    return 0;
}

#define PREEMPT_TRIES 8 /* waiting jobs, in the queue's order, that may try to preempt */
/*
 * A victim has run at least this long: a job (re)started at t cannot be preempted at t, so the
 * decisions at one time end even when aging orders a victim before the job that preempted it.
 */
#define PREEMPT_MIN_RUN_S 1

/*
 * After a decision at t: the first of the waiting jobs (in the queue's order, up to
 * PREEMPT_TRIES) that preemption makes room for stops its victims, which rejoin the queue
 * with the work they have left. wait[0..n_wait): the waiting jobs by position. Returns whether
 * any job was preempted.
 */
static bool
preempt(struct jobsim *s, const struct ocra_sched_queue_conf *conf, int64_t t, const size_t *wait,
        size_t n_wait)
{
    bool any = false;

    for (size_t k = 0; k < s->n_running && !any; k++)
        any = s->jobs[s->running[k]].preemptible;
    if (!any)
        return false;
    running_view(s);
    for (size_t i = 0; i < n_wait && i < PREEMPT_TRIES; i++) {
        size_t q = 0;
        int n;

        while (s->queued_job[q] != wait[i])
            q++;
        n = ocra_sched_preempt_choose(s->c, conf->place, t, PREEMPT_MIN_RUN_S, s->rv, s->n_running,
                                      &s->queued[q], s->victims);
        if (n <= 0)
            continue;
        for (int k = 0; k < n; k++) /* job indices: finish() reorders running */
            s->victims[k] = s->running[s->victims[k]];
        for (int k = 0; k < n; k++) {
            size_t j = s->victims[k];

            finish(s, j);
            s->left[j] -= t - s->start[j];
            enqueue(s, j);
            s->preemptions++;
        }
        return true;
    }
    return false;
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
    /* a preempted job resumed with what it had left: its end is its last start plus that */
    double sum = 0, wait = 0, used = 0, gpus = (double)s->c->gpu_capacity / OCRA_SCHED_MILLI;

    for (size_t j = 0; j < s->n_jobs; j++) {
        const struct ocra_sched_job *job = &s->jobs[j];
        int64_t end = s->start[j] + s->left[j];
        int held = 0;

        for (size_t k = 0; k < s->alloc_n[j]; k++)
            held += s->allocs[s->alloc_first[j] + k].n_devs;
        jct[j] = end - job->submit;
        sum += (double)jct[j];
        wait += (double)(s->first_start[j] - job->submit);
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
    res->preemptions = s->preemptions;
    free(jct);
}

static int
replay(struct jobsim *s, const struct ocra_sched_queue_conf *conf,
       struct ocra_sched_jobsim_result *res, struct ocra_err *err)
{
    struct ocra_sched_plan plan;
    size_t next = 0;
    bool again = false;
    int ret = -1;

    ocra_sched_plan_init(&plan);
    while (next < s->n_jobs || s->n_heap) {
        int64_t t = s->n_heap ? s->heap[0].t : INT64_MAX;

        if (next < s->n_jobs && s->arrivals[next].t < t)
            t = s->arrivals[next].t;
        while (s->n_heap && s->heap[0].t <= t) {
            struct done e = done_pop(s);

            if (s->is_running[e.j] && s->end_at[e.j] == e.t) /* else a preempted run's */
                finish(s, e.j);
        }
        while (next < s->n_jobs && s->arrivals[next].t <= t)
            enqueue(s, s->arrivals[next++].j);
        if (!s->n_queued)
            continue;
        do {
            res->decisions++;
            if (step(s, conf, t, &plan, &again, err) < 0)
                goto out;
        } while (again);
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
